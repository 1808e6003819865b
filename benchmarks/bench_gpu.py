#!/usr/bin/env python
"""Array backends (PyTorch, CuPy) against the NumPy backend, on the same machine.

Run from the repository root::

    python benchmarks/bench_gpu.py                          # codec n=1e6, foci n=1e5 p=100
    python benchmarks/bench_gpu.py --codec-n 20000 --foci-n 2000 --foci-p 10   # smoke test

The device is CUDA when PyTorch sees one (else the CPU, and the script says so);
``--library cupy`` times CuPy arrays instead of PyTorch tensors. Timed:

1. CODEC T(Y, Z | X) with X ~ N(0, I_3), Z ~ N(0, 1), Y = X1 X2 + sin(Z) + 0.3 e.
2. FOCI on R FOCI's vignette data (y = X1 X2 + sin(X1 X3) + X4^2, p columns),
   ``stop=True``.

Each call is made once untimed (warm-up, value check), then timed ``--repeats`` times
(median shown; device work is synchronized before the clock stops). The table gives
NumPy time / device time. Values must agree to 1e-12 and selections exactly; the
script exits with status 1 otherwise.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatterjee import codec, foci  # noqa: E402


def codec_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    z = rng.normal(size=n)
    return x[:, 0] * x[:, 1] + np.sin(z) + 0.3 * rng.normal(size=n), z, x


def foci_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, X[:, 0] * X[:, 1] + np.sin(X[:, 0] * X[:, 2]) + X[:, 3] ** 2


def device_tools(library):
    """(to_device, synchronize, device description) for PyTorch or CuPy."""
    if library == "cupy":
        import cupy

        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        return cupy.asarray, cupy.cuda.Device().synchronize, f"cupy on {name}"
    import torch

    if torch.cuda.is_available():
        device = "cuda"
        description = f"torch on {torch.cuda.get_device_name(0)}"
    else:
        device = "cpu"
        description = f"torch on the CPU (no CUDA device), {torch.get_num_threads()} threads"

    def synchronize():
        if device == "cuda":
            torch.cuda.synchronize()

    return (lambda a: torch.asarray(a, device=device)), synchronize, description


def timed(function, repeats, synchronize):
    """(value of a warm-up call, median seconds of ``repeats`` timed calls)."""
    value = function()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize()
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec-n", type=float, default=1e6)
    parser.add_argument("--foci-n", type=float, default=1e5)
    parser.add_argument("--foci-p", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--library", choices=("torch", "cupy"), default="torch")
    parser.add_argument("--skip-numpy", action="store_true",
                        help="time the device only (no ratios, no value checks)")
    args = parser.parse_args(argv)
    to_device, synchronize, description = device_tools(args.library)
    print(f"device: {description}", flush=True)

    rows, failures = [], []

    def compare(task, size, on_numpy, on_device, same):
        value_d, time_d = timed(on_device, args.repeats, synchronize)
        if args.skip_numpy:
            rows.append((task, size, "-", f"{time_d:.3f}", "-"))
            return
        value_n, time_n = timed(on_numpy, args.repeats, lambda: None)
        rows.append((task, size, f"{time_n:.3f}", f"{time_d:.3f}", f"{time_n / time_d:.2f}x"))
        if not same(value_n, value_d):
            failures.append(f"{task} {size}: numpy {value_n} vs device {value_d}")
        print(f"{task} {size}: numpy {time_n:.3f} s, device {time_d:.3f} s", flush=True)

    n = int(args.codec_n)
    y, z, x = codec_data(n)
    y_d, z_d, x_d = (to_device(v) for v in (y, z, x))
    compare("codec T(Y, Z | X), d_x = 3", f"n={n}",
            lambda: codec(y, z, x, random_state=0).statistic,
            lambda: codec(y_d, z_d, x_d, random_state=0, backend=args.library).statistic,
            lambda a, b: abs(a - b) <= 1e-12)

    n, p = int(args.foci_n), args.foci_p
    X, y = foci_data(n, p)
    X_d, y_d = to_device(X), to_device(y)
    compare("foci, stop=True", f"n={n}, p={p}",
            lambda: foci(X, y, random_state=0, n_jobs=-1).selected.tolist(),
            lambda: foci(X_d, y_d, random_state=0, backend=args.library).selected.tolist(),
            lambda a, b: a == b)

    print(f"\n| task | size | numpy (s) | {args.library} (s) | numpy / {args.library} |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for failure in failures:
        print(f"VALUE CHECK FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
