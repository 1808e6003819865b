"""FOCI speed: chatterjee against xicorpy, side by side in one process.

Run ``python benchmarks/bench_foci.py`` (``--quick`` for a smoke run). Prints a
Markdown table of medians and ratios, checks that the selections agree, and breaks
chatterjee's time down into its parts.

Data as in R FOCI's vignette: X ~ N(0, 1), y = X1*X2 + sin(X1*X3) + X4^2. Both
libraries get X standardized as R does (xicorpy does not standardize), so the
selections must be identical.
"""

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import time

import numpy as np

import chatterjee
from chatterjee import foci


def vignette_data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 0] * X[:, 2]) + X[:, 3] ** 2
    return X, y


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def profile_breakdown(X, y):
    """Share of chatterjee's FOCI time per part, from cProfile."""
    profiler = cProfile.Profile()
    profiler.enable()
    foci(X, y, random_state=0)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    parts = {
        "shared-base kernels (per candidate)": ("cpu.py", "neighbors"),
        "base neighbour lists (once per step)": ("cpu.py", "__init__"),
        "1-D sorts (first step)": ("cpu.py", "nearest_neighbors_1d"),
    }
    rows = []
    for label, (file, function) in parts.items():
        cumulative = sum(
            value[3]
            for (path, _, name), value in stats.stats.items()
            if path.endswith(file) and name == function
        )
        rows.append((label, cumulative, cumulative / total))
    return total, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    args = parser.parse_args()

    from importlib.metadata import version

    import xicorpy

    print(f"chatterjee {chatterjee.__version__}, xicorpy {version('xicorpy')}, "
          f"numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs\n")
    sizes = [(300, 20), (500, 10)] if args.quick else [(2000, 100), (10_000, 50)]
    repeats = 1 if args.quick else 3

    print("| n | p | xicorpy (s) | chatterjee n_jobs=1 (s) | chatterjee n_jobs=-1 (s) "
          "| xicorpy / chatterjee(-1) | same selection |")
    print("|---|---|---|---|---|---|---|")
    for n, p in sizes:
        X, y = vignette_data(n, p)
        Xs = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
        foci(X[:50], y[:50])  # warm-up: imports, compiled kernels
        t_xi, picked_xi = median_time(
            lambda: xicorpy.select_features_using_foci(y, Xs), repeats
        )
        t_one, ours = median_time(lambda: foci(X, y, random_state=0, n_jobs=1), repeats)
        t_all, ours_all = median_time(
            lambda: foci(X, y, random_state=0, n_jobs=-1), repeats
        )
        same = list(map(int, picked_xi)) == ours.selected.tolist() == \
            ours_all.selected.tolist()
        print(f"| {n} | {p} | {t_xi:.3f} | {t_one:.3f} | {t_all:.3f} | "
              f"{t_xi / t_all:.1f}x | {same} ({ours.selected.tolist()}) |")

    n, p = sizes[0]
    X, y = vignette_data(n, p)
    total, rows = profile_breakdown(X, y)
    print(f"\nWhere chatterjee's time goes (n={n}, p={p}, n_jobs=1, under cProfile: "
          f"{total:.3f} s)")
    for label, seconds, share in rows:
        print(f"- {label}: {seconds:.3f} s ({share:.0%})")


if __name__ == "__main__":
    main()
