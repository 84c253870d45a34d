#!/usr/bin/env bash
# The test command (README.md; .ci/run calls exactly this). On a fresh Debian 12
# machine it installs the Debian packages it needs, builds everything with
# warnings as errors, runs the whole GoogleTest suite through ctest, then
# rebuilds the engine suites with ASan+UBSan (and the CPU backend's with
# TSan) and runs them again.
#
#   scripts/test.sh              everything
#   SUPRA_SKIP_SANITIZERS=1 scripts/test.sh   skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
trap 'echo "test.sh: ${SECONDS}s"' EXIT
root=$(pwd)
jobs=$(nproc)

scripts/install-deps.sh

# Line tables (-g1) are all a failure's backtrace needs, and cost a fifth less
# compile time than full debug info; the sanitizer builds also use -O1 (the
# level ASan recommends): 36 % off their heaviest files on 2 cores.
flags_test=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CUDA_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG")
flags_sanitize=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG")

echo "== build (RelWithDebInfo, -Werror) =="
cmake -S "$root" -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags_test[@]}" -DSUPRA_WERROR=ON \
  -DSUPRA_BUILD_TESTS=ON
cmake --build build/test -j"$jobs"
echo "== tests =="
ctest --test-dir build/test --output-on-failure -j"$jobs" --timeout 600

if [[ -z ${SUPRA_SKIP_SANITIZERS:-} ]]; then
  # The engine suites parse untrusted files and do index arithmetic; the
  # server's reactors manage their own lifetimes across threads. They run
  # again under ASan+UBSan (CPU only, to keep CI short).
  suites=(supra_model_tests supra_checkpoint_tests supra_tokenizer_tests supra_tokenizer_parity_tests
    supra_sampling_tests supra_cpu_tests supra_runtime_tests supra_serving_tests supra_server_tests)
  echo "== ASan+UBSan: ${suites[*]} =="
  cmake -S "$root" -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags_sanitize[@]}" \
    -DSUPRA_SANITIZE=address -DSUPRA_CUDA=OFF -DSUPRA_BUILD_SERVER=ON -DSUPRA_WERROR=ON -DSUPRA_BUILD_TESTS=ON
  cmake --build build/asan -j"$jobs" --target "${suites[@]}"
  labels=$(IFS='|'; echo "${suites[*]}")
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/asan --output-on-failure -j"$jobs" -L "^($labels)\$" --timeout 900

  # The CPU backend's thread pool and the request loop are the multi-threaded engine code.
  echo "== TSan: supra_cpu_tests supra_serving_tests =="
  cmake -S "$root" -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags_sanitize[@]}" \
    -DSUPRA_SANITIZE=thread -DSUPRA_CUDA=OFF -DSUPRA_BUILD_SERVER=OFF -DSUPRA_WERROR=ON -DSUPRA_BUILD_TESTS=ON
  cmake --build build/tsan -j"$jobs" --target supra_cpu_tests supra_serving_tests
  TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" ctest --test-dir build/tsan --output-on-failure -j"$jobs" \
    -L "^(supra_cpu_tests|supra_serving_tests)\$" --timeout 900
fi
