#!/usr/bin/env python
"""Speed of chatterjee's statistics core against its peers, side by side in one process.

Run from the repository root (``make bench`` installs the peers first)::

    python benchmarks/bench_core.py            # the full run (a few minutes)
    python benchmarks/bench_core.py --quick    # smaller n, a smoke test

What is timed
-------------
1. CODEC T(Y, Z | X), X ~ N(0, I_3), Z ~ N(0, 1), Y = X1 X2 + sin(Z) + 0.3 e:
   ``chatterjee.codec`` against xicorpy's ``compute_conditional_dependence`` and
   against the bare cost of the two neighbour searches CODEC needs
   (``cKDTree(A).query(A, k=2, workers=-1)`` for A = X and A = (X, Z)).
2. xi at n = 1e6 (continuous x, y): ``chatterjee.xi`` against
   ``scipy.stats.chatterjeexi``.
3. L-CODEC against exact CODEC on heavily tied data.
4. Nearest-neighbour graphs of wide X: the k-d tree against the brute force.
5. The k nearest neighbours of (X_S, candidate) for k = 5 (the blanket search's
   coefficient): the shared-base kernels against a k-d tree on the joint points.
6. ``import chatterjee`` (and first use of ``chatterjee.codec``) in fresh
   interpreters.

Each sample is the mean of enough back-to-back calls to last ``--min-time`` seconds;
the table shows the median (and minimum) of 5 samples, 3 for calls slower than
``--slow`` seconds. Peers are run interleaved, round by round, in rotating order, so
that a change of machine load hits all of them alike. Every implementation is called
once before timing; that call also provides the value checks. The script exits with
status 1 when a value check fails (a missed speed target is only reported).
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# Benchmark this working tree's package, whether or not it is installed.
sys.path.insert(0, str(REPO))

import chatterjee  # noqa: E402

# The public functions, looked up once (codec first, so that a lazily loading package
# cannot hand back its submodule ``chatterjee.codec`` instead of the function).
codec, lcodec, xi = chatterjee.codec, chatterjee.lcodec, chatterjee.xi
assert all(map(callable, (codec, lcodec, xi))), "chatterjee's public names are not functions"

VALUE_TOLERANCE = 1e-12


# --------------------------------------------------------------------------- helpers


def fmt_time(seconds):
    if seconds < 0:
        return "-" + fmt_time(-seconds)
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def fmt_n(n):
    exponent = round(math.log10(n))
    return f"1e{exponent}" if 10**exponent == n else str(n)


def fmt_ratio(ratio):
    return f"{ratio:.2f}x"


class Timing:
    """Samples of one implementation: seconds per call."""

    def __init__(self, name, first, value, number):
        self.name, self.first, self.value, self.number = name, first, value, number
        self.samples = []

    @property
    def median(self):
        return statistics.median(self.samples)

    @property
    def min(self):
        return min(self.samples)


def time_group(impls, args):
    """Time callables side by side; return ``{name: Timing}`` in the given order.

    Each callable is called once first (warm-up; its return value is kept for the
    value checks). Calls faster than ``args.min_time`` are repeated back to back within
    a sample. Rounds run every implementation once, in rotating order.
    """
    timings = {}
    for name, fn in impls.items():
        gc.collect()
        start = time.perf_counter()
        value = fn()
        first = time.perf_counter() - start
        number = 1 if first >= args.min_time else max(1, math.ceil(args.min_time / first))
        timings[name] = Timing(name, first, value, number)
    wanted = {
        name: (args.slow_repeats if t.first >= args.slow else args.repeats)
        for name, t in timings.items()
    }
    names = list(impls)
    for round_index in range(max(wanted.values())):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            timing = timings[name]
            if len(timing.samples) >= wanted[name]:
                continue
            fn = impls[name]
            gc.collect()
            start = time.perf_counter()
            for _ in range(timing.number):
                fn()
            timing.samples.append((time.perf_counter() - start) / timing.number)
    return timings


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def runs(timing):
    return f"{len(timing.samples)}×{timing.number}"


class Report:
    def __init__(self):
        self.targets = []
        self.checks_failed = 0

    def check(self, label, a, b, tol=VALUE_TOLERANCE):
        diff = abs(a - b)
        ok = diff <= tol or (math.isnan(a) and math.isnan(b))
        self.checks_failed += not ok
        print(f"- value check, {label}: {a:.15g} vs {b:.15g}, |diff| = {diff:.1e} "
              f"{'<=' if ok else '>'} {tol:g}: {'OK' if ok else 'FAIL'}")

    def target(self, what, n, ratio, target, met=None):
        self.targets.append((what, fmt_n(n), fmt_ratio(ratio), target,
                             "-" if met is None else "yes" if met else "**no**"))


# --------------------------------------------------------------------------- environment


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "chatterjee"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return rev + (" (chatterjee/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def version(distribution):
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version(distribution)
    except PackageNotFoundError:
        return "not installed"


def print_environment(args):
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    blas_env = {k: v for k, v in os.environ.items()
                if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    print("## chatterjee core benchmark" + (" (--quick)" if args.quick else ""))
    print()
    print(f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"- machine: {cpu_model()}, os.cpu_count() = {os.cpu_count()}, "
          f"usable = {usable}; {platform.platform()}")
    print(f"- python {platform.python_version()}; chatterjee {chatterjee.__version__} "
          f"@ {git_revision()} ({Path(chatterjee.__file__).parent})")
    print(f"- numpy {version('numpy')}, scipy {version('scipy')}, "
          f"scikit-learn {version('scikit-learn')}, pandas {version('pandas')}, "
          f"xicorpy {version('xicorpy')}")
    print(f"- BLAS/threading environment: {blas_env or 'none set'}")
    print(f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- timing: median of {args.repeats} samples ({args.slow_repeats} for calls "
          f"over {args.slow:g} s), each sample >= {args.min_time:g} s of back-to-back "
          "calls; samples shown as samples×calls")
    print()


# --------------------------------------------------------------------------- benchmarks


def codec_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    z = rng.normal(size=(n, 1))
    y = x[:, 0] * x[:, 1] + np.sin(z[:, 0]) + 0.3 * rng.normal(size=n)
    return y, z, x


def bench_codec(args, report):
    from scipy.spatial import cKDTree
    from xicorpy import compute_conditional_dependence

    def bare(x, xz, workers):
        cKDTree(x).query(x, k=2, workers=workers)
        cKDTree(xz).query(xz, k=2, workers=workers)

    print("### 1. CODEC T(Y, Z | X): X in R^3, Z in R^1, continuous")
    print()
    rows, checks = [], []
    for n in args.codec_n:
        y, z, x = codec_data(n)
        xz = np.hstack((x, z))
        impls = {
            "chatterjee.codec (workers=-1)":
                lambda: codec(y, z, x, random_state=0).statistic,
            "chatterjee.codec (workers=1)":
                lambda: codec(y, z, x, workers=1, random_state=0).statistic,
            "xicorpy compute_conditional_dependence":
                lambda: float(compute_conditional_dependence(y, z, x)),
            "bare cKDTree build+query k=2, X and (X,Z) (workers=-1)":
                lambda: bare(x, xz, -1),
            "bare cKDTree build+query k=2, X and (X,Z) (workers=1)":
                lambda: bare(x, xz, 1),
        }
        t = time_group(impls, args)
        ours, ours1, peer, floor, floor1 = t.values()
        for timing in t.values():
            rows.append((fmt_n(n), timing.name, fmt_time(timing.median), fmt_time(timing.min),
                         runs(timing), fmt_ratio(timing.median / ours.median)))
        checks.append((n, ours.value, peer.value, ours1.value))
        speedup = peer.median / ours.median
        overhead = ours.median / floor.median
        report.target("CODEC: xicorpy / chatterjee", n, speedup, ">= 2x", speedup >= 2)
        report.target("CODEC: chatterjee / bare k-d tree (workers=-1)", n, overhead,
                      "<= 1.3x", overhead <= 1.3)
        report.target("CODEC: chatterjee / bare k-d tree, both workers=1 (info)", n,
                      ours1.median / floor1.median, "-")
    print(table(("n", "implementation", "median", "min", "runs", "÷ chatterjee"), rows))
    print()
    for n, ours, peer, ours1 in checks:
        report.check(f"n={fmt_n(n)} chatterjee vs xicorpy", ours, peer)
        report.check(f"n={fmt_n(n)} chatterjee workers=-1 vs workers=1", ours, ours1, 0.0)
    print()


def bench_xi(args, report):
    from scipy.stats import chatterjeexi

    n = args.xi_n
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)
    y = np.sin(x) + rng.normal(size=n)
    impls = {
        "chatterjee.xi": lambda: tuple(xi(x, y)),
        "scipy.stats.chatterjeexi": lambda: tuple(map(float, chatterjeexi(x, y))),
    }
    t = time_group(impls, args)
    ours, peer = t.values()
    print(f"### 2. xi(x -> y), continuous x and y, n = {fmt_n(n)}")
    print()
    print(table(("implementation", "median", "min", "runs", "÷ chatterjee"),
                [(tm.name, fmt_time(tm.median), fmt_time(tm.min), runs(tm),
                  fmt_ratio(tm.median / ours.median)) for tm in t.values()]))
    print()
    report.check("xi statistic, chatterjee vs scipy", ours.value[0], peer.value[0])
    report.check("xi p-value, chatterjee vs scipy", ours.value[1], peer.value[1])
    print()
    ratio = ours.median / peer.median
    report.target("xi: chatterjee / scipy.stats.chatterjeexi", n, ratio, "<= 1x", ratio <= 1)


def tied_cases(scale):
    """(label, y, z) with heavily tied z; ``scale`` divides the sample sizes."""
    rng = np.random.default_rng(2)
    n = 10**5 // scale
    z = rng.integers(0, 100, size=(n, 2)).astype(float)
    yield ("(a) grid {0..99}^2, dense: ~n/1e4 duplicates per site",
           np.sin(z[:, 0] / 10) + z[:, 1] / 50 + 0.3 * rng.normal(size=n), z)
    z = rng.integers(0, 1000, size=(n, 2)).astype(float)
    yield ("(a') grid {0..999}^2, sparse: mostly singletons, equidistant neighbours",
           np.sin(z[:, 0] / 100) + z[:, 1] / 500 + 0.3 * rng.normal(size=n), z)
    z = rng.integers(0, 2, size=(n, 3)).astype(float)
    yield ("(b) binary z, d = 3: 8 sites, all duplicates",
           z @ np.array([1.0, 2.0, 4.0]) + rng.normal(size=n), z)
    n = 10**6 // scale
    z = rng.integers(0, 10, size=n).astype(float)
    yield ("(c) 1-D z with 10 distinct values", z + 3 * rng.normal(size=n), z)


def bench_ties(args, report):
    print("### 3. L-CODEC vs exact CODEC on heavily tied z, unconditional T(Y, Z)")
    print()
    rows = []
    for label, y, z in tied_cases(args.tie_scale):
        impls = {
            "codec": lambda: codec(y, z, random_state=0).statistic,
            "lcodec": lambda: lcodec(y, z, random_state=0).statistic,
        }
        exact, randomized = time_group(impls, args).values()
        d = 1 if z.ndim == 1 else z.shape[1]
        sites = np.unique(z, axis=0).shape[0]
        rows.append((label, fmt_n(y.shape[0]), d, sites,
                     f"{fmt_time(exact.median)} ({runs(exact)})",
                     f"{fmt_time(randomized.median)} ({runs(randomized)})",
                     fmt_ratio(randomized.median / exact.median),
                     f"{exact.value:.4f}", f"{randomized.value:.4f}"))
    print(table(("case", "n", "d", "distinct z", "codec (exact)", "lcodec (1 repeat)",
                 "lcodec ÷ codec", "T codec", "T lcodec"), rows))
    print()
    print("T codec and T lcodec differ by design (random tie-breaking vs jitter); they "
          "agree in expectation on duplicated points.")
    print()


def bench_wide(args, report):
    print("### 4. Nearest-neighbour graphs of wide X: k-d tree against the brute force")
    print()
    from chatterjee.backends import array, cpu, safe_scale

    rows = []
    for d in (8, 12, 16, 24):
        for n in args.wide_n:
            points = safe_scale(np.random.default_rng(d).normal(size=(n, d)))
            u = np.random.default_rng(1).random(n)
            impls = {"k-d tree": lambda: cpu.nearest_neighbors_kdtree(points, u, workers=-1),
                     "brute force": lambda: array.nearest_neighbors_brute(points, u)}
            tree, brute = time_group(impls, args).values()
            same = bool(np.array_equal(tree.value, brute.value))
            report.checks_failed += not same
            used = "brute force" if d >= cpu._BRUTE_DIMS else "k-d tree"
            rows.append((d, fmt_n(n), f"{fmt_time(tree.median)} ({runs(tree)})",
                         f"{fmt_time(brute.median)} ({runs(brute)})",
                         fmt_ratio(brute.median / tree.median), same, used))
    print(table(("d", "n", "k-d tree", "brute force", "brute ÷ tree",
                 "same graph", "codec uses"), rows))
    print()
    print("Wall time, both on every core: the k-d tree queries in threads, the brute "
          "force in BLAS matrix products.")
    print()


def bench_shared(args, report):
    print("### 5. k nearest neighbours of (X_S, candidate): shared base against a "
          "k-d tree per candidate")
    print()
    from chatterjee.backends import cpu

    k = 5
    rows = []
    for d in (1, 2, 3, 5, 8, 12):
        for n in args.wide_n:
            rng = np.random.default_rng([d, n])
            base = rng.normal(size=(n, d))
            candidate = rng.normal(size=n)
            u = rng.random((n, k))
            start = time.perf_counter()
            search = cpu.SharedBaseSearch(base, workers=1, n_neighbors=k)
            search.neighbors(rng.normal(size=n), u)     # the first candidate
            search.neighbors(rng.normal(size=n), u)     # builds the lists
            prepared = time.perf_counter() - start
            joint = np.column_stack((base, candidate))
            impls = {"k-d tree": lambda: cpu.k_nearest_neighbors(joint, u, workers=1),
                     "shared base": lambda: search.neighbors(candidate, u)}
            tree, shared = time_group(impls, args).values()
            same = bool(np.array_equal(np.sort(tree.value, axis=1),
                                       np.sort(shared.value, axis=1)))
            report.checks_failed += not same
            rows.append((d, fmt_n(n), f"{fmt_time(tree.median)} ({runs(tree)})",
                         f"{fmt_time(shared.median)} ({runs(shared)})",
                         fmt_ratio(tree.median / shared.median), fmt_time(prepared),
                         same))
    print(table(("d of X_S", "n", "k-d tree", "shared base", "tree ÷ shared",
                 "first two candidates", "same graph"), rows))
    print()
    print(f"k = {k}, one thread, a standard normal X_S and candidate; wall time per "
          "candidate after the first two (the first is searched with a k-d tree, the "
          "second builds the neighbour lists of X_S: their time, once per step, is "
          "the column before last).")
    print()


IMPORT_SNIPPETS = (
    ("interpreter start (`python -c pass`)", "pass"),
    ("`import chatterjee`", "import chatterjee"),
    ("`import chatterjee; chatterjee.codec`", "import chatterjee; chatterjee.codec"),
    ("`import numpy` (reference)", "import numpy"),
    ("`import xicorpy` (peer)", "import xicorpy"),
)

PROBE = """
import json, sys
heavy = ("numpy", "scipy", "scipy.spatial", "scipy.stats", "sklearn", "pandas", "torch", "cupy")
import chatterjee
after_import = [m for m in heavy if m in sys.modules]
chatterjee.codec
after_codec = [m for m in heavy if m in sys.modules]
print(json.dumps([after_import, after_codec, chatterjee.__file__]))
"""


def bench_import(args, report):
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        env = dict(os.environ)
        # Bytecode goes to a private cache (warmed below), never into the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))

        def launcher(code):
            return lambda: subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                                          check=True, stdout=subprocess.DEVNULL)

        impls = {label: launcher(code) for label, code in IMPORT_SNIPPETS}
        saved = args.min_time
        args.min_time = 0  # one process per sample
        t = time_group(impls, args)
        args.min_time = saved
        probe = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=REPO,
                               capture_output=True, text=True, check=True).stdout
    base = next(iter(t.values())).median
    print("### 6. Import time, fresh interpreter per sample (bytecode cache warm)")
    print()
    print(table(("command", "median", "min", "runs", "minus interpreter start"),
                [(tm.name, fmt_time(tm.median), fmt_time(tm.min), runs(tm),
                  "-" if i == 0 else fmt_time(tm.median - base))
                 for i, tm in enumerate(t.values())]))
    print()
    after_import, after_codec, location = json.loads(probe)
    print(f"- heavy modules loaded by `import chatterjee`: {', '.join(after_import) or 'none'}; "
          f"after `chatterjee.codec`: {', '.join(after_codec) or 'none'} "
          f"(subprocesses imported {location})")
    print()


def profile_codec(args):
    """cProfile of one chatterjee.codec call at the largest CODEC size."""
    import cProfile
    import io
    import pstats

    n = max(args.codec_n)
    y, z, x = codec_data(n)
    codec(y, z, x, random_state=0)  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    codec(y, z, x, random_state=0)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(f"### Profile: chatterjee.codec(y, z, x) at n = {fmt_n(n)} (cProfile, by own time)")
    print()
    print("```")
    print("\n".join(line.rstrip() for line in out.getvalue().strip().splitlines()
                    if line.strip() and not line.startswith(("   Ordered", "   List"))))
    print("```")
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller n and shorter samples: a smoke run of a few seconds")
    parser.add_argument("--repeats", type=int, default=5, help="samples per timing")
    parser.add_argument("--slow-repeats", type=int, default=3,
                        help="samples for calls slower than --slow seconds")
    parser.add_argument("--slow", type=float, default=1.5,
                        help="threshold (s) above which --slow-repeats applies")
    parser.add_argument("--min-time", type=float, default=None,
                        help="shortest sample (s); calls are repeated to reach it")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of chatterjee.codec at the largest n")
    parser.add_argument("--only", nargs="+", choices=("codec", "xi", "ties", "wide", "shared",
                                                   "import"),
                        help="run only these sections")
    args = parser.parse_args(argv)
    if args.quick:
        args.codec_n, args.xi_n, args.tie_scale = (10**3, 10**4), 10**5, 100
        args.wide_n = (10**3,)
        args.min_time = 0.05 if args.min_time is None else args.min_time
    else:
        args.codec_n, args.xi_n, args.tie_scale = (10**4, 10**5), 10**6, 1
        args.wide_n = (2 * 10**3, 10**4)
        args.min_time = 0.2 if args.min_time is None else args.min_time
    sections = args.only or ("codec", "xi", "ties", "wide", "shared", "import")

    report = Report()
    print_environment(args)
    start = time.perf_counter()
    for section in ("codec", "xi", "ties", "wide", "shared", "import"):
        if section in sections:
            globals()[f"bench_{section}"](args, report)
    if args.profile:
        profile_codec(args)
    if report.targets:
        print("### Ratios against targets")
        print()
        print(table(("ratio (medians)", "n", "value", "target", "met"), report.targets))
        print()
    print(f"- load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"total {time.perf_counter() - start:.0f} s")
    if report.checks_failed:
        print(f"\n{report.checks_failed} value check(s) FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
