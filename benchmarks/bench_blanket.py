"""Markov blankets: recovery on the bullseye network, and the blanket graph in parallel.

Run ``python benchmarks/bench_blanket.py`` (``--seeds 3`` for a quicker run) for the
bullseye part, ``--parts parallel`` for the second part. Bullseye: ten
seeds of ``make_bullseye(n_samples=5000, dim=3)``; the true blanket of y is
{2, 3, 4, 5} and {0, 1} lie outside it. Three views of the same data:

* raw grouped features: each variable is its 3-D block of coordinates, a point on a
  sphere whose radius is the variable and whose direction is pure noise;
* ``group_features="norm"``: each group reduced to the norm of its standardized
  block, the documented opt-in for rotation-invariant groups (a user who knows the
  direction is noise); ``group_features="auto"``: a group is reduced only when its
  norm is more dependent on y than the block;
* single raw coordinates (no groups), what a selector that ignores groups sees;
* the raw grouped and ``group_features="norm"`` views again with ``n_neighbors=5``:
  the 5-nearest-neighbour coefficient (exact search only, as ``randomized=True``
  has no k-nearest-neighbour version).

Each view runs exact (FOCI) and, with one neighbour, randomized (L-FOCI) blanket
search with backward pruning. The paper's Table 1 (raw data): a CMI search reached TPR 0.75, FPR 0.50 in
5124 s; L-CODEC with that search TPR 1.00, FPR 0.50 in 402 s.

Parallel: ``markov_blankets`` of a nonlinear structural equation model (a random DAG
over ``--p`` variables, each the sum of sin, square, tanh, |x| or cos of up to three
parents plus Gaussian noise; ``--n`` samples), with ``n_jobs=1``, with ``n_jobs=2``
(joblib's process backend) and, when ``distributed`` is installed, through
``joblib.parallel_config(backend="dask")`` on a local cluster of two one-thread
workers. Wall seconds (median of ``--repeats``), their ratio to ``n_jobs=1``, and a
check that every graph is the same.
"""

import argparse
import statistics
import time

import joblib
import numpy as np

from chatterjee import markov_blanket, markov_blankets
from chatterjee.datasets import make_bullseye

LINKS = (np.sin, np.square, np.tanh, np.abs, np.cos)


def nonlinear_sem(p, n, seed, max_parents=3, noise=0.3):
    """Samples of a random DAG over ``p`` variables (in topological order): each
    variable is the sum of a random link function of each of up to ``max_parents``
    earlier variables plus N(0, noise^2); returns (data, parents)."""
    rng = np.random.default_rng(seed)
    data = np.empty((n, p))
    parents = []
    for j in range(p):
        chosen = rng.choice(j, size=min(j, int(rng.integers(0, max_parents + 1))),
                            replace=False) if j else np.empty(0, int)
        total = np.zeros(n)
        for k in chosen:
            standardized = (data[:, k] - data[:, k].mean()) / data[:, k].std()
            total += LINKS[rng.integers(len(LINKS))](standardized)
        data[:, j] = total + noise * rng.normal(size=n) if chosen.size else rng.normal(size=n)
        parents.append(sorted(chosen.tolist()))
    return data, parents


def parallel_part(args):
    data, _ = nonlinear_sem(args.p, args.n, seed=0)
    runs = {"n_jobs=1": lambda: markov_blankets(data, n_jobs=1, random_state=0),
            "n_jobs=2 (processes)": lambda: markov_blankets(data, n_jobs=2, random_state=0)}
    cluster = None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("distributed is not installed: no dask row")
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)

        def on_dask():
            with joblib.parallel_config(backend="dask"):
                return markov_blankets(data, random_state=0)
        runs["dask, 2 workers"] = on_dask
    times, graphs = {}, {}
    for name, run in runs.items():
        run()                           # warm: worker start, imports
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            graphs[name] = run()
            seconds.append(time.perf_counter() - start)
        times[name] = statistics.median(seconds)
    if cluster is not None:
        client.close()
        cluster.close()
    same = all(np.array_equal(graph, graphs["n_jobs=1"]) for graph in graphs.values())
    print(f"markov_blankets of a nonlinear SEM, p = {args.p}, n = {args.n} "
          f"(median of {args.repeats}; every graph the same: {same})")
    print("| run | wall s | ratio to n_jobs=1 |")
    print("|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.2f} | {seconds / times['n_jobs=1']:.2f} |")


def views(data):
    """Name: (X, groups, group_features, n_neighbors)."""
    return {
        "raw grouped (3-D blocks)": (data.X, data.groups, None, 1),
        'raw grouped, group_features="norm"': (data.X, data.groups, "norm", 1),
        'raw grouped, group_features="auto"': (data.X, data.groups, "auto", 1),
        "raw coordinates, no groups": (data.X, None, None, 1),
        "raw grouped, n_neighbors=5": (data.X, data.groups, None, 5),
        'raw grouped, group_features="norm", n_neighbors=5':
            (data.X, data.groups, "norm", 5),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", nargs="+", default=["bullseye"],
                        choices=["bullseye", "parallel"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--p", type=int, default=20, help="variables (parallel part)")
    parser.add_argument("--n", type=int, default=2000, help="samples (parallel part)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if "bullseye" in args.parts:
        bullseye_part(args)
    if "parallel" in args.parts:
        parallel_part(args)


def bullseye_part(args):
    truth, outside = {2, 3, 4, 5}, {0, 1}
    rows = {}
    for seed in range(args.seeds):
        data = make_bullseye(n_samples=5000, random_state=seed)
        for name, (X, groups, reduce, k) in views(data).items():
            for randomized in (False, True) if k == 1 else (False,):
                options = {"n_neighbors": k}
                if reduce is not None:
                    options["group_features"] = reduce
                start = time.perf_counter()
                result = markov_blanket(X, data.y, groups=groups, randomized=randomized,
                                        random_state=seed, **options)
                elapsed = time.perf_counter() - start
                found = set(result.blanket.tolist())
                if groups is None and X.shape[1] == 18:  # coordinates -> variables
                    found = {column // 3 for column in found}
                rows.setdefault((name, randomized), []).append(
                    (len(found & truth) / 4, len(found & outside) / 2, elapsed)
                )
    print(f"| features | method | TPR | FPR | time per run (s) |  ({args.seeds} seeds)")
    print("|---|---|---:|---:|---:|")
    for (name, randomized), values in rows.items():
        tpr, fpr, seconds = np.mean(values, axis=0)
        method = "L-FOCI + pruning" if randomized else "FOCI + pruning"
        print(f"| {name} | {method} | {tpr:.2f} | {fpr:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
