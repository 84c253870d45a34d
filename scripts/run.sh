#!/usr/bin/env bash
# The main job (README.md): builds supra-serve and runs it on the model shipped
# with the repository (tests/data/models/mha, a tiny random SUPRA model: its
# text is gibberish, but every path of the engine runs). Until the gRPC server
# lands this runs the engine-level supra-generate command; extra arguments are
# passed to it, e.g.  scripts/run.sh --prompt "Bonjour" --max_tokens 20
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSUPRA_BUILD_TESTS=OFF -DSUPRA_CUDA=OFF \
  -DSUPRA_BUILD_SERVER=OFF
cmake --build build/release -j"$(nproc)" --target supra-generate
model=${SUPRA_MODEL:-tests/data/models/mha}
if [[ $# -eq 0 ]]; then
  set -- --prompt "The quick brown fox" --max_tokens 32
fi
exec build/release/engine/cli/supra-generate --model "$model" "$@"
