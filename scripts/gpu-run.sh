#!/usr/bin/env bash
# One GPU run on the device machine (see README "GPU work"): every GPU test,
# the engine benchmark, the GEMV micro-benchmark and the PyTorch baseline,
# with full logs under $OUT and a short summary last. Expects the binaries
# bundled in .device/ by shared/tools/device-bundle.
set -uo pipefail
out=${OUT:-/tmp/supra-gpu-run}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1
timeout ${TEST_TIMEOUT:-240} .device/run supra_cuda_tests --gtest_brief=1 > "$out/gpu_tests.log" 2>&1
echo "supra_cuda_tests exit $?" >> "$out/summary.txt"
timeout ${BENCH_TIMEOUT:-200} .device/run supra-bench-engine ${BENCH_ARGS:-} --json "$out/bench_engine.json" \
  > "$out/bench_engine.log" 2>&1
echo "supra-bench-engine exit $?" >> "$out/summary.txt"
if [[ -z ${SKIP_TORCH:-} ]]; then
  PYTHONUNBUFFERED=1 timeout ${TORCH_TIMEOUT:-120} python3 bench/baselines/supra_torch.py --bench --batches 1,8,64 \
    --json "$out/torch.json" > "$out/torch.log" 2>&1
  echo "torch baseline exit $?" >> "$out/summary.txt"
fi
cat "$out/gpu.txt" "$out/summary.txt"
grep -E "^\[  (FAILED|PASSED|SKIPPED) |tests ran" "$out/gpu_tests.log" | tail -30
cat "$out/bench_engine.log"
tail -15 "$out/torch.log" 2>/dev/null
