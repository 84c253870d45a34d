#!/usr/bin/env bash
# The main job (README.md): installs the packages, builds supra-server and
# supra-cli, and serves the model shipped with the repository
# (tests/data/models/mha, a tiny random SUPRA model: its text is gibberish,
# but every path of the server runs) on 0.0.0.0:50051 in the foreground.
# Ctrl-C (SIGINT) or SIGTERM drains and stops it. Extra arguments go to
# supra-server, e.g.  scripts/run.sh --listen 127.0.0.1:6000 --token_file tokens.txt
# Other model directory: SUPRA_MODEL=/models/mistral-supra scripts/run.sh --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cuda=OFF
if [[ " $* " == *" --device cuda"* || " $* " == *" --device=cuda"* ]]; then cuda=ON; fi
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSUPRA_BUILD_TESTS=OFF -DSUPRA_BUILD_SERVER=ON \
  -DSUPRA_CUDA=$cuda
cmake --build build/release -j"$(nproc)" --target supra-server supra-cli
model=${SUPRA_MODEL:-tests/data/models/mha}
echo "run.sh: serving $model; try: build/release/client/supra-cli --target localhost:50051 generate \"Once upon a time\""
exec build/release/server/supra-server --model_dir "$model" "$@"
