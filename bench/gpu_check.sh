#!/usr/bin/env bash
# One-command GPU verification of the CUDA backend on a machine with a CUDA device (see
# docs/GPU.md): builds fastgen._C for that Python, runs the gpu-marked tests and the other CUDA
# tests, then the GPU benchmark, writing everything under $OUT (or /tmp/fastgen_gpu_check).
#
#   FASTGEN_DATA_DIR  folder holding mnist_test_10k.npz (default: ../shared/data)
#   BENCH_ARGS        extra arguments for the benchmark (default: --repeats 5)
#   SKIP_BENCH=1      tests only
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/fastgen_gpu_check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
status=0

echo "== device"
nvidia-smi -L || true
"$py" -c "import cupy, torch; print('cupy', cupy.__version__, '| torch', torch.__version__, '|', torch.cuda.get_device_name())" || status=1

echo "== build (fastgen._C for this Python)"
"$py" -m pip install -q --no-build-isolation --no-deps -e . > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }

echo "== gpu tests (each op's in tests/ops/test_<op>.py or tests/torch/test_torch_<op>.py, the backend's in tests/cuda/)"
"$py" -m pytest -m gpu tests -q -p no:cacheprovider -rs 2>&1 | tee "$out/pytest_gpu.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== CUDA build and host tests (no GPU needed, but nvcc is here)"
"$py" -m pytest tests/cuda -q -p no:cacheprovider -m "not gpu" 2>&1 | tail -5 | tee "$out/pytest_cuda_host.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

if [ "${SKIP_BENCH:-0}" != "1" ]; then
  echo "== benchmark"
  slug=$("$py" -c "import cupy, re; n = cupy.cuda.runtime.getDeviceProperties(0)['name']; n = n.decode() if isinstance(n, bytes) else n; print(re.sub(r'[^a-z0-9]+', '-', n.lower()).strip('-'))")
  # shellcheck disable=SC2086
  "$py" -m bench rbm --device cuda --json --out "$out/$slug.json" ${BENCH_ARGS:---repeats 5} 2>&1 | tee "$out/bench_cuda.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
echo "== done (status $status); files in $out"
exit $status
