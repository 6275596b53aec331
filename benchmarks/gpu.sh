#!/usr/bin/env bash
# On a machine with a GPU, from the repository root: build with the CUDA kernels, run one call down each path
# (also under compute-sanitizer), the CUDA tests, the slow >2^31-element test, the GPU benchmarks and a profile.
# Logs go to $OUT (default ./gpu-logs), at most eight files. CUDAARCHS (default: this GPU's) picks what is built.
# Needs torch with CUDA, a CUDA toolkit, scikit-build-core, pybind11, pytest, hypothesis, pytest-benchmark;
# uses pytest-xdist and pytest-timeout when they are installed.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}  # the interpreter that has torch with CUDA
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
export CUDAARCHS=${CUDAARCHS:-${arch}-real}
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv | tee "$OUT/info.txt"

start=$(date +%s)
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$PY" -m pip install --no-build-isolation --no-deps -v -C cmake.define.RANKSEG_CUDA=ON . \
  >"$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; }
echo "build ($CUDAARCHS): $(( $(date +%s) - start )) s" | tee -a "$OUT/info.txt"

cd "$(mktemp -d)"  # run against the installed package, not the source tree
"$PY" -c "import json, rankseg; print(json.dumps(rankseg.build_info()))" | tee -a "$OUT/info.txt"

timeout 60 "$PY" "$REPO/benchmarks/cuda_smoke.py" 2>&1 | tee "$OUT/smoke.log"
parallel=()
"$PY" -c "import xdist, pytest_timeout" 2>/dev/null && parallel=(-n 8 --timeout 120)
# test_cuda.py, and the device-parametrised tests' CUDA cases (-k matches test_cuda.py's module name too).
timeout 200 "$PY" -m pytest -q -p no:cacheprovider --tb=short -rf "${parallel[@]}" -k cuda "$REPO/tests/test_cuda.py" \
  "$REPO/tests/test_rma.py" "$REPO/tests/test_fitting.py" "$REPO/tests/test_calibration.py" \
  2>&1 | tee "$OUT/cuda_tests.log" | tail -40
if command -v compute-sanitizer >/dev/null; then
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 "$PY" "$REPO/benchmarks/cuda_smoke.py" \
    >"$OUT/sanitizer.log" 2>&1
  echo "compute-sanitizer memcheck: exit $?" | tee -a "$OUT/sanitizer.log"
  tail -5 "$OUT/sanitizer.log"
fi
timeout 60 "$PY" -m pytest -q -p no:cacheprovider -m slow "$REPO/tests/test_cuda.py" 2>&1 | tee "$OUT/cuda_slow.log" | tail -3
timeout 150 "$PY" -m pytest -q -p no:cacheprovider "$REPO/benchmarks/bench_cuda.py" --benchmark-columns=min,median \
  2>&1 | tee "$OUT/bench.log" | sed -n '/ratios of best-of-rounds/,/^$/p'
PYTHONPATH="$REPO/benchmarks" timeout 60 "$PY" "$REPO/benchmarks/profile_cuda.py" 2>&1 | grep -v Warn | tee "$OUT/profile.log"
echo "total: $(( $(date +%s) - start )) s"
