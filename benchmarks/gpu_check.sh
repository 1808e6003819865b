#!/usr/bin/env bash
# The GPU checks in one run: the array-backend tests on the CUDA device, then the
# device benchmark against NumPy on the same machine (PyTorch, and CuPy when it is
# installed). Needs a CUDA build of PyTorch importable by `python`, with chatterjee
# and its test dependencies. Extra arguments go to bench_gpu.py, e.g.
#
#     bash benchmarks/gpu_check.sh                                  # the full sizes
#     bash benchmarks/gpu_check.sh --codec-n 1e5 --foci-n 1e4 --foci-p 20
#
# Exits with status 1 when a test fails or a device value differs from NumPy's.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
status=0
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'" || exit 1
CHATTERJEE_TEST_DEVICE=cuda python -m pytest -q tests/test_backends_array.py || status=1
python benchmarks/bench_gpu.py "$@" || status=1
if python -c "import cupy" 2>/dev/null; then
    python benchmarks/bench_gpu.py --library cupy "$@" || status=1
fi
exit "$status"
