#!/usr/bin/env bash
# On a machine with a GPU, from the repository root: build with the CUDA kernels, run the CUDA tests (and the
# rest of the suite), then the GPU benchmarks, and print the table. Logs go to $OUT (default ./gpu-logs).
# Needs torch with CUDA, a CUDA toolkit, scikit-build-core, pybind11, pytest, hypothesis, pytest-benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

start=$(date +%s)
RANKSEG_CUDA=ON pip install --no-build-isolation --no-deps -v . >"$OUT/build.log" 2>&1 \
  || { tail -50 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
export RANKSEG_UNVERIFIED_CUDA_KERNELS=1  # the kernels under test
cd "$OUT"  # run against the installed package, not the source tree
python -c "import json, rankseg; print(json.dumps(rankseg.build_info()))" | tee build_info.json
REPO=$(cd - >/dev/null && pwd)

timeout 300 python -m pytest -x -q -p no:cacheprovider "$REPO/tests/test_cuda.py" 2>&1 | tee cuda_tests.log | tail -25
timeout 120 python -m pytest -q -p no:cacheprovider -m slow "$REPO/tests/test_cuda.py" 2>&1 | tee cuda_slow.log | tail -5
timeout 240 python -m pytest -q -p no:cacheprovider "$REPO/benchmarks/bench_cuda.py" --benchmark-columns=min,median \
  2>&1 | tee bench.log | sed -n '/ratios of best-of-rounds/,$p'
