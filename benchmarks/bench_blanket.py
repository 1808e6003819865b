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

Each view runs the untested search (``alpha=None``): exact (FOCI) and, with one
neighbour, randomized (L-FOCI) forward selection with backward pruning; the raw
grouped and ``group_features="norm"`` views also run the default tested search. The paper's Table 1 (raw data): a CMI search reached TPR 0.75, FPR 0.50 in
5124 s; L-CODEC with that search TPR 1.00, FPR 0.50 in 402 s.

Networks and SEMs (``--parts networks sem``): the blankets of ``--targets`` random
variables per case, ``markov_blanket`` with its defaults (the tested search) and with
``alpha=None`` (the untested FOCI search) against IAMB (Tsamardinos et
al. 2003; grow by the most dependent candidate while its test rejects at ``--alpha``,
then shrink) with a Fisher-z partial-correlation test (continuous data) or a G^2
test (discrete data; degrees of freedom counted over the strata that occur, as
bnlearn's adjusted test), and on the SEMs up to ``--rcit-max-p`` variables and
``--rcit-max-n`` samples, when causal-learn is installed, with its RCIT (a
nonparametric test; slow). Networks: pgmpy's bundled Bayesian networks, sampled
forward at each ``--n`` (linear Gaussian ecoli70, magic-niab, arth150; discrete
asia, sachs, child, insurance, alarm, whose states are class labels:
``y_type="categorical"``). SEMs: :func:`nonlinear_sem` with ``--sem-p`` variables.
Precision, recall and F1 of each blanket against the true one (parents, children,
children's other parents; an empty blanket found for an empty truth counts 1), their
means over targets and cases, and CPU seconds per blanket (``time.process_time``).

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


GAUSSIAN_NETWORKS = ("ecoli70", "magic-niab", "arth150")
DISCRETE_NETWORKS = ("asia", "sachs", "child", "insurance", "alarm")


def true_blankets(parents):
    """Markov blankets of a DAG given as a list of parent lists."""
    p = len(parents)
    children = [[j for j in range(p) if i in parents[j]] for i in range(p)]
    return [set(parents[i]) | set(children[i])
            | {q for c in children[i] for q in parents[c] if q != i} for i in range(p)]


def network_sample(name, n, seed):
    """(data, blankets, discrete) of a pgmpy network sampled forward; discrete states
    as integer codes."""
    import logging
    import warnings

    from pgmpy.utils import get_example_model

    logging.getLogger("pgmpy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        # Its successor, pgmpy.example_models.load_model, downloads the network;
        # this one reads the copy inside pgmpy's wheel.
        warnings.simplefilter("ignore", FutureWarning)
        model = get_example_model(name)
    discrete = name in DISCRETE_NETWORKS
    frame = (model.simulate(n, seed=seed, show_progress=False) if discrete
             else model.simulate(n, seed=seed))
    nodes = sorted(frame.columns)      # one order in every process (sets of names)
    frame = frame[nodes]
    if discrete:
        data = np.column_stack([frame[c].astype("category").cat.codes.to_numpy()
                                for c in nodes]).astype(np.int64)
    else:
        data = frame.to_numpy(dtype=float)
    position = {node: i for i, node in enumerate(nodes)}
    blankets = [{position[m] for m in model.get_markov_blanket(node)} for node in nodes]
    return data, blankets, discrete


def fisher_z_pvalues(data, target, given, candidates):
    """p-values of Fisher's z test of the partial correlation of the target with each
    candidate given the columns ``given``."""
    from scipy.stats import norm

    n = data.shape[0]
    design = np.column_stack([np.ones(n), data[:, given]])
    columns = data[:, [target] + list(candidates)]
    residuals = columns - design @ np.linalg.lstsq(design, columns, rcond=None)[0]
    residuals /= np.linalg.norm(residuals, axis=0) + 1e-300
    r = np.clip(residuals[:, 1:].T @ residuals[:, 0], -0.999999, 0.999999)
    z = np.arctanh(r) * np.sqrt(max(n - len(given) - 3, 1))
    return 2 * norm.sf(np.abs(z))


def g2_pvalues(data, target, given, candidates):
    """p-values of the G^2 test of the target against each candidate given the columns
    ``given`` (degrees of freedom over the strata that occur)."""
    from scipy.stats import chi2

    n = data.shape[0]
    strata = (np.unique(data[:, given], axis=0, return_inverse=True)[1].reshape(-1)
              if given else np.zeros(n, dtype=np.int64))
    y = data[:, target]
    values = []
    for c in candidates:
        x = data[:, c]
        table = np.zeros((strata.max() + 1, x.max() + 1, y.max() + 1))
        np.add.at(table, (strata, x, y), 1)
        total = table.sum(axis=(1, 2), keepdims=True)
        expected = table.sum(axis=2, keepdims=True) * table.sum(axis=1, keepdims=True)
        expected = np.divide(expected, total, out=np.zeros_like(expected), where=total > 0)
        seen = table > 0
        g2 = 2 * (table[seen] * np.log(table[seen] / expected[seen])).sum()
        rows = (table.sum(axis=2) > 0).sum(axis=1)
        cols = (table.sum(axis=1) > 0).sum(axis=1)
        df = int(np.maximum(rows - 1, 0) @ np.maximum(cols - 1, 0))
        values.append(chi2.sf(g2, df) if df > 0 else 1.0)
    return np.asarray(values)


def iamb(data, target, test, alpha):
    """IAMB: grow by the candidate with the smallest p-value while it is below
    ``alpha``, then drop members independent of the target given the others."""
    blanket = []
    candidates = [j for j in range(data.shape[1]) if j != target]
    while candidates:
        pvalues = test(data, target, blanket, candidates)
        best = int(np.argmin(pvalues))
        if pvalues[best] >= alpha:
            break
        blanket.append(candidates.pop(best))
    for member in list(blanket):
        rest = [m for m in blanket if m != member]
        if test(data, target, rest, [member])[0] >= alpha:
            blanket = rest
    return set(blanket)


def scores(found, truth):
    """Precision, recall and F1 of a found blanket (1 for an empty truth found empty)."""
    hits = len(found & truth)
    precision = hits / len(found) if found else float(not truth)
    recall = hits / len(truth) if truth else float(not found)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def rcit_test(data):
    """causal-learn's RCIT (randomized conditional correlation test of Strobl, Zhang
    and Visweswaran) as a p-value function for :func:`iamb`, or None when causal-learn
    is not installed."""
    try:
        from causallearn.utils.cit import CIT
    except ImportError:
        return None
    np.random.seed(0)                   # RCIT draws its random features from NumPy
    cit = CIT(data, "rcit")
    return lambda data, target, given, candidates: np.array(
        [cit(target, c, list(given)) for c in candidates])


def blanket_case(data, blankets, discrete, targets, alpha, with_rcit=False):
    """Per method: lists of (precision, recall, F1, CPU seconds) over ``targets``."""
    tests = {"IAMB": g2_pvalues if discrete else fisher_z_pvalues}
    rcit = rcit_test(data) if with_rcit else None
    if rcit is not None:
        tests["IAMB, RCIT"] = rcit
    ours = {"chatterjee": {}, "chatterjee, alpha=None": {"alpha": None}}
    results = {**{name: [] for name in ours}, **{name: [] for name in tests}}
    for target in targets:
        X = np.delete(data, target, axis=1)
        columns = np.delete(np.arange(data.shape[1]), target)
        for name, options in ours.items():
            start = time.process_time()
            found = markov_blanket(X, data[:, target], random_state=0,
                                   y_type="categorical" if discrete else "continuous",
                                   **options)
            seconds = time.process_time() - start
            results[name].append(
                (*scores(set(columns[found.blanket].tolist()), blankets[target]), seconds))
        for name, test in tests.items():
            start = time.process_time()
            found = iamb(data, target, test, alpha)
            results[name].append((*scores(found, blankets[target]),
                                  time.process_time() - start))
    return results


def networks_part(args, parts):
    """The blanket table of the pgmpy networks and the SEMs."""
    cases = []
    if "networks" in parts:
        for name in GAUSSIAN_NETWORKS + DISCRETE_NETWORKS:
            family = "discrete" if name in DISCRETE_NETWORKS else "linear Gaussian"
            for n in args.n_list:
                cases.append((family, f"{name}, n = {n}",
                              lambda name=name, n=n: network_sample(name, n, seed=0)))
    if "sem" in parts:
        for p in args.sem_p:
            for n in args.n_list:
                def sample(p=p, n=n):
                    data, parents = nonlinear_sem(p, n, seed=p)
                    return data, true_blankets(parents), False
                cases.append(("nonlinear SEM", f"p = {p}, n = {n}", sample))
    rows, families = [], {}
    for family, label, sample in cases:
        data, blankets, discrete = sample()
        targets = np.random.default_rng(0).choice(
            data.shape[1], min(args.targets, data.shape[1]), replace=False)
        with_rcit = (family == "nonlinear SEM" and data.shape[1] <= args.rcit_max_p
                     and data.shape[0] <= args.rcit_max_n)
        results = blanket_case(data, blankets, discrete, targets, args.alpha, with_rcit)
        for method, values in results.items():
            mean = np.mean(values, axis=0)
            rows.append((family, label, method, *mean))
            families.setdefault((family, method), []).append(mean)
        print(f"  {family}, {label}: " + ", ".join(
            f"{method} F1 {np.mean(values, axis=0)[2]:.2f}"
            for method, values in results.items()), flush=True)
    print()
    print(f"Blankets of {args.targets} targets per case, alpha = {args.alpha} for IAMB; "
          "mean over targets; CPU seconds per blanket")
    print()
    print("| family | case | method | precision | recall | F1 | CPU s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for family, label, method, precision, recall, f1, seconds in rows:
        print(f"| {family} | {label} | {method} | {precision:.2f} | {recall:.2f} | {f1:.2f} "
              f"| {seconds:.2f} |")
    print()
    print("| family | method | mean precision | mean recall | mean F1 | CPU s |")
    print("|---|---|---:|---:|---:|---:|")
    for (family, method), means in families.items():
        precision, recall, f1, seconds = np.mean(means, axis=0)
        print(f"| {family} | {method} | {precision:.2f} | {recall:.2f} | {f1:.2f} "
              f"| {seconds:.2f} |")


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
    """Name: (X, groups, group_features, n_neighbors); n_neighbors None: the tested
    search with its defaults, else the untested one (``alpha=None``)."""
    return {
        "raw grouped (3-D blocks), tested search": (data.X, data.groups, None, None),
        'raw grouped, group_features="norm", tested search':
            (data.X, data.groups, "norm", None),
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
                        choices=["bullseye", "networks", "sem", "parallel"])
    parser.add_argument("--n-list", type=int, nargs="+", default=[500, 2000, 5000],
                        help="samples per network and SEM case")
    parser.add_argument("--sem-p", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--rcit-max-p", type=int, default=50,
                        help="IAMB with RCIT on SEMs of at most this many variables")
    parser.add_argument("--rcit-max-n", type=int, default=2000,
                        help="... and at most this many samples (it is slow)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--p", type=int, default=20, help="variables (parallel part)")
    parser.add_argument("--n", type=int, default=2000, help="samples (parallel part)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if "bullseye" in args.parts:
        bullseye_part(args)
    if {"networks", "sem"} & set(args.parts):
        networks_part(args, args.parts)
    if "parallel" in args.parts:
        parallel_part(args)


def bullseye_part(args):
    truth, outside = {2, 3, 4, 5}, {0, 1}
    rows = {}
    for seed in range(args.seeds):
        data = make_bullseye(n_samples=5000, random_state=seed)
        for name, (X, groups, reduce, k) in views(data).items():
            for randomized in (False, True) if k == 1 else (False,):
                options = {} if k is None else {"n_neighbors": k, "alpha": None}
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
        method = ("L-FOCI + pruning" if randomized else "FOCI + pruning"
                  if "tested" not in name else "tests (alpha = 0.01, k = 5)")
        print(f"| {name} | {method} | {tpr:.2f} | {fpr:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
