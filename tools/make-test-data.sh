#!/usr/bin/env bash
# Regenerates everything under tests/data: the test tokenizer, the tiny random
# SUPRA models in every checkpoint format, and the float64 NumPy goldens.
#
#   tools/make-test-data.sh            (from anywhere; writes <repo>/tests/data)
#
# Needs Debian's /usr/bin/python3 (3.11) with python3-numpy, python3-torch (1.13)
# and python3-sentencepiece: `scripts/install-deps.sh --tools` installs them.
# Set PYTHON to use another interpreter with the same packages. Takes about a
# minute on one core. Deterministic: fixed seeds, one thread.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-/usr/bin/python3}"

# One BLAS/OpenMP thread: the float64 sums then run in the same order every time.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONDONTWRITEBYTECODE=1 PYTHONHASHSEED=0

cd "$repo"
"$python" tools/testdata/make_all.py tests/data
du -sh tests/data
