"""Feature selection: FOCI against the usual selectors, side by side in one process.

Run ``python benchmarks/bench_selection.py`` (``--quick`` for a smoke run,
``--cases`` to choose). Peers that are not installed are skipped with a note:
``pip install mrmr-selection scikit-rebate Boruta pyHSICLasso xicorpy`` (the last is in
the ``bench`` extra).

Synthetic designs (true features known): each selector runs on a 70 % split; its
recall, precision and CPU seconds, and the score of a random forest trained on
that split with the selected features, on the other 30 %.
Real data (scikit-learn's bundled sets): 5-fold cross-validation (``--repeats``
times) with the selection inside each fold; FOCI selects its own number of features
k (its stopping rule) and the selectors that need a number get the same k in that
fold; the paired difference of FOCI's score and each selector's, fold by fold.

Selectors: FOCI (``FOCISelector`` defaults; categorical y for classes), FOCI with
``lookahead=2`` where the design is a pure interaction, mRMR (``mrmr-selection``),
``SelectKBest(mutual_info_*)``, HSIC-Lasso (``pyHSICLasso``), ReliefF
(``skrebate``), Boruta (random forest, ``BorutaPy``), an L1 model (``LassoCV`` /
L1 ``LogisticRegressionCV``), and xicorpy's FOCI. CPU is ``time.process_time`` of
this process (every library runs single-threaded), medians over seeds.
"""

import argparse
import contextlib
import io
import os
import platform
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_classification,
    make_friedman1,
)
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    RepeatedKFold,
    RepeatedStratifiedKFold,
    train_test_split,
)

import chatterjee  # noqa: E402
from chatterjee import FOCISelector  # noqa: E402


# --- designs ----------------------------------------------------------------------
def friedman(seed, n=1000, p=1000):
    X, y = make_friedman1(n_samples=n, n_features=p, noise=1.0, random_state=seed)
    return X, y, {0, 1, 2, 3, 4}, "regression"


def vignette(seed, n=2000, p=1000):
    """R FOCI's vignette: y = X1 X2 + sin(X1 X3), X standard normal."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, X[:, 0] * X[:, 1] + np.sin(X[:, 0] * X[:, 2]), {0, 1, 2}, "regression"


def product(seed, n=1000, p=50):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, X[:, 0] * X[:, 1] + 0.5 * rng.normal(size=n), {0, 1}, "regression"


def xor(seed, n=1000, p=50):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same sign", "opposite signs")
    flip = rng.random(n) < 0.1
    y[flip] = np.where(y[flip] == "same sign", "opposite signs", "same sign")
    return X, y, {0, 1}, "classification"


def toeplitz(seed, n=1000, p=200, rho=0.7):
    """Correlated features, Sigma_ij = rho^|i - j|; y depends on three of them."""
    rng = np.random.default_rng(seed)
    root = np.linalg.cholesky(rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p))))
    X = rng.normal(size=(n, p)) @ root.T
    y = np.sin(2 * X[:, 10]) + X[:, 50] ** 2 + X[:, 120] + 0.3 * rng.normal(size=n)
    return X, y, {10, 50, 120}, "regression"


def classes(count):
    def design(seed, n=1000, p=1000):
        X, y = make_classification(n_samples=n, n_features=p, n_informative=5,
                                   n_redundant=0, n_classes=count, shuffle=False,
                                   random_state=seed)
        return X, y.astype(str), {0, 1, 2, 3, 4}, "classification"
    return design


SYNTHETIC = {
    "friedman1 (p=1000)": friedman,
    "FOCI vignette (p=1000)": vignette,
    "y = X1 X2 (p=50)": product,
    "XOR, 2 classes (p=50)": xor,
    "Toeplitz 0.7 (p=200)": toeplitz,
    "2 classes (p=1000)": classes(2),
    "5 classes (p=1000)": classes(5),
}
#: ``--cases`` names: the designs' first words
CASE_KEYS = {"friedman1": "friedman1 (p=1000)", "vignette": "FOCI vignette (p=1000)",
             "product": "y = X1 X2 (p=50)", "xor": "XOR, 2 classes (p=50)",
             "toeplitz": "Toeplitz 0.7 (p=200)", "2classes": "2 classes (p=1000)",
             "5classes": "5 classes (p=1000)"}
INTERACTIONS = {"y = X1 X2 (p=50)", "XOR, 2 classes (p=50)"}


def real(name):
    loader = {"wine": load_wine, "breast cancer": load_breast_cancer,
              "digits": load_digits, "diabetes": load_diabetes}[name]
    X, y = loader(return_X_y=True)
    task = "regression" if name == "diabetes" else "classification"
    return X, (y if task == "regression" else np.char.add("class ", y.astype(str))), task


REAL = ["wine", "breast cancer", "digits", "diabetes"]


# --- selectors: (X, y, task, k, seed) -> list of column indices -----------------------
def foci_default(X, y, task, k, seed):
    return FOCISelector(random_state=seed).fit(X, y).selected_features_.tolist()


def foci_lookahead(X, y, task, k, seed):
    return FOCISelector(lookahead=2, random_state=seed).fit(X, y).selected_features_.tolist()


def mutual_information(X, y, task, k, seed):
    from sklearn.feature_selection import (
        SelectKBest,
        mutual_info_classif,
        mutual_info_regression,
    )

    score = mutual_info_classif if task == "classification" else mutual_info_regression
    selector = SelectKBest(lambda X, y: score(X, y, random_state=seed), k=k).fit(X, y)
    return np.flatnonzero(selector.get_support()).tolist()


def mrmr(X, y, task, k, seed):
    import pandas as pd
    from mrmr import mrmr_classif, mrmr_regression

    frame = pd.DataFrame(X, columns=[str(j) for j in range(X.shape[1])])
    if task == "classification":
        picked = mrmr_classif(frame, pd.Series(y), K=k, show_progress=False)
    else:
        picked = mrmr_regression(frame, pd.Series(y), K=k, show_progress=False)
    return [int(c) for c in picked]


def hsic_lasso(X, y, task, k, seed):
    from pyHSICLasso import HSICLasso

    model = HSICLasso()
    with _quiet(), contextlib.redirect_stdout(io.StringIO()):     # it prints its settings
        model.input(X, _codes(y) if task == "classification" else y)
        if task == "classification":
            model.classification(k, n_jobs=1)
        else:
            model.regression(k, n_jobs=1)
    return [int(j) for j in model.get_index()]


def relieff(X, y, task, k, seed):
    from skrebate import ReliefF

    target = _codes(y) if task == "classification" else y
    model = ReliefF(n_features_to_select=k, n_neighbors=10, n_jobs=1).fit(X, target)
    return np.argsort(-model.feature_importances_)[:k].tolist()


def boruta(X, y, task, k, seed):
    from boruta import BorutaPy

    forest = (RandomForestClassifier if task == "classification" else RandomForestRegressor)(
        n_jobs=1, max_depth=5, random_state=seed)
    model = BorutaPy(forest, n_estimators=100, random_state=seed, max_iter=30)
    with _quiet():
        model.fit(X, _codes(y) if task == "classification" else y)
    return np.flatnonzero(model.support_).tolist()


def l1(X, y, task, k, seed):
    from sklearn.linear_model import LassoCV, LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    Z = StandardScaler().fit_transform(X)
    if task == "classification":
        model = LogisticRegressionCV(Cs=10, penalty="l1", solver="saga", max_iter=500,
                                     random_state=seed)
        with _quiet():
            model.fit(Z, y)
        return np.flatnonzero(np.abs(model.coef_).sum(axis=0) > 0).tolist()
    model = LassoCV(random_state=seed).fit(Z, y)
    return np.flatnonzero(model.coef_).tolist()


def xicorpy_foci(X, y, task, k, seed):
    import xicorpy

    Z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1).clip(1e-300)
    target = _codes(y) if task == "classification" else y
    return [int(j) for j in xicorpy.select_features_using_foci(target, Z)]


def _codes(y):
    return np.unique(y, return_inverse=True)[1] if y.dtype.kind in "OUS" else y


class _quiet(warnings.catch_warnings):
    def __enter__(self):
        super().__enter__()
        warnings.simplefilter("ignore")


SELECTORS = {
    "FOCI": (foci_default, None),
    "FOCI lookahead=2": (foci_lookahead, None),
    "mRMR": (mrmr, "mrmr"),
    "MI SelectKBest": (mutual_information, None),
    "HSIC-Lasso": (hsic_lasso, "pyHSICLasso"),
    "ReliefF": (relieff, "skrebate"),
    "Boruta": (boruta, "boruta"),
    "L1": (l1, None),
    "xicorpy FOCI": (xicorpy_foci, "xicorpy"),
}
# Selectors that need a number of features get FOCI's.
NEEDS_K = {"mRMR", "MI SelectKBest", "HSIC-Lasso", "ReliefF"}


def available():
    found = {}
    for name, (function, module) in SELECTORS.items():
        try:
            if module:
                __import__(module)
            found[name] = function
        except ImportError:
            print(f"(skipped {name}: `{module}` is not installed)")
    return found


# --- scoring -------------------------------------------------------------------------
def forest(task, seed):
    if task == "classification":
        return RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed)
    return RandomForestRegressor(n_estimators=200, n_jobs=1, random_state=seed)


def downstream(X_train, y_train, X_test, y_test, columns, task, seed):
    """Accuracy or R^2 of a random forest on the selected columns."""
    if not columns:
        if task == "classification":
            values, counts = np.unique(y_train, return_counts=True)
            return float(np.mean(y_test == values[np.argmax(counts)]))
        return 1 - np.mean((y_test - y_train.mean()) ** 2) / np.var(y_test)
    model = forest(task, seed).fit(X_train[:, columns], y_train)
    return float(model.score(X_test[:, columns], y_test))


def timed(function, *args):
    start = time.process_time()
    columns = function(*args)
    return sorted(set(columns)), time.process_time() - start


def run_synthetic(selectors, names, seeds, boruta_max_p=None):
    rows = []
    for case in names:
        design = SYNTHETIC[case]
        results = {}
        for seed in seeds:
            X, y, true, task = design(seed)
            X_train, X_test, y_train, y_test = train_test_split(
                X, y, test_size=0.3, random_state=seed)
            k = None
            for name, function in selectors.items():
                if name == "FOCI lookahead=2" and case not in INTERACTIONS:
                    continue
                if name == "Boruta" and boruta_max_p is not None \
                        and X.shape[1] > boruta_max_p:
                    continue
                columns, cpu = timed(function, X_train, y_train, task, k or 5, seed)
                if name == "FOCI":
                    k = max(len(columns), 1)
                score = downstream(X_train, y_train, X_test, y_test, columns, task, seed)
                hits = len(true & set(columns))
                results.setdefault(name, []).append(
                    (hits / len(true), hits / max(len(columns), 1), score, cpu,
                     true <= set(columns)))
        for name, values in results.items():
            values = np.array(values, dtype=float)
            rows.append((case, name, *values[:, :3].mean(axis=0),
                         values[:, 4].mean(), np.median(values[:, 3])))
        print_rows(rows[-len(results):], synthetic=True)
    return rows


def run_real(selectors, names, seed, folds=5, repeats=1):
    rows = []
    for case in names:
        X, y, task = real(case)
        splitter = (RepeatedStratifiedKFold if task == "classification" else RepeatedKFold)(
            n_splits=folds, n_repeats=repeats, random_state=seed)
        results = {}
        for train, test in splitter.split(X, y):
            k = None
            for name, function in selectors.items():
                if name == "FOCI lookahead=2":
                    continue
                columns, cpu = timed(function, X[train], y[train], task, k or 5, seed)
                if name == "FOCI":
                    k = max(len(columns), 1)
                score = downstream(X[train], y[train], X[test], y[test], columns, task,
                                   seed)
                results.setdefault(name, []).append((score, len(columns), cpu))
        reference = np.array(results["FOCI"], dtype=float)[:, 0]
        for name, values in results.items():
            values = np.array(values, dtype=float)
            difference = reference - values[:, 0]        # paired, fold by fold
            rows.append((case, name, values[:, 0].mean(), values[:, 0].std(),
                         values[:, 1].mean(), np.median(values[:, 2]), difference.mean(),
                         difference.std(ddof=1) / np.sqrt(len(difference))))
        print_rows(rows[-len(results):], synthetic=False)
    return rows


def print_rows(rows, synthetic):
    for row in rows:
        if synthetic:
            case, name, recall, precision, score, all_found, cpu = row
            print(f"| {case} | {name} | {recall:.2f} | {precision:.2f} | {all_found:.2f} "
                  f"| {score:.3f} | {cpu:.2f} |", flush=True)
        else:
            case, name, score, sd, size, cpu, difference, error = row
            paired = "" if name == "FOCI" else f"{difference:+.3f} ± {error:.3f}"
            print(f"| {case} | {name} | {score:.3f} ({sd:.3f}) | {size:.1f} | {paired} | "
                  f"{cpu:.2f} |", flush=True)


def interaction_recovery(seeds, n=1000, p=50):
    """How often FOCI finds both members of y = X1 X2 (and of XOR), with and
    without the look-ahead, at n = 1000."""
    for case in sorted(INTERACTIONS):
        found = {1: 0, 2: 0}
        cpu = {1: [], 2: []}
        for seed in seeds:
            X, y, true, _ = SYNTHETIC[case](seed, n=n, p=p)
            for lookahead in (1, 2):
                columns, seconds = timed(lambda X, y, la=lookahead: FOCISelector(
                    lookahead=la, random_state=seed).fit(X, y).selected_features_.tolist(),
                    X, y)
                found[lookahead] += true <= set(columns)
                cpu[lookahead].append(seconds)
        print(f"| {case} | {len(seeds)} | {found[1] / len(seeds):.0%} | "
              f"{found[2] / len(seeds):.0%} | {np.median(cpu[1]):.2f} | "
              f"{np.median(cpu[2]):.2f} |", flush=True)


def lookahead_cost(p_values, seeds, n=1000):
    """CPU of the look-ahead on y = X1 X2 with p candidates."""
    for p in p_values:
        cpu = {1: [], 2: []}
        for seed in seeds:
            X, y, _, _ = product(seed, n=n, p=p)
            for lookahead in (1, 2):
                cpu[lookahead].append(timed(lambda X, y, la=lookahead: FOCISelector(
                    lookahead=la, random_state=seed).fit(X, y).selected_features_.tolist(),
                    X, y)[1])
        print(f"| {p} | {np.median(cpu[1]):.2f} | {np.median(cpu[2]):.2f} | "
              f"{np.median(cpu[2]) / np.median(cpu[1]):.1f}x |", flush=True)


def ties_bias_variance(replications, n=300, truth_n=200_000):
    """ties='random' against ties='average' on tied designs: mean, spread over data
    sets, the spread over seeds within one data set, and the RMSE against the value
    at n = 200,000 (computed with 'average', which has no seed noise)."""
    from chatterjee import codec

    def unconditional(rng, size):
        z = rng.integers(0, 5, size=size).astype(float)
        return z + rng.normal(size=size), z, None

    def conditional(rng, size):
        x = rng.integers(0, 4, size=size).astype(float)
        z = rng.integers(0, 3, size=size).astype(float)
        return x + z + rng.normal(size=size), z, x

    def rounded(rng, size):        # a continuous feature stored with few digits
        x = np.round(rng.normal(size=size), 1)
        return np.sin(2 * x) + 0.5 * rng.normal(size=size), x, None

    for label, design in (("T(Y, Z), Z with 5 levels", unconditional),
                          ("T(Y, Z | X), X 4 and Z 3 levels", conditional),
                          ("T(Y, Z), Z rounded to 0.1", rounded)):
        truth = codec(*design(np.random.default_rng(10**6), truth_n), ties="average",
                      y_type="continuous").statistic
        values = {"random": [], "average": []}
        within = []
        for rep in range(replications):
            y, z, x = design(np.random.default_rng(rep), n)
            values["average"].append(codec(y, z, x, ties="average",
                                           y_type="continuous").statistic)
            draws = [codec(y, z, x, y_type="continuous", random_state=seed).statistic
                     for seed in range(10)]
            values["random"].append(draws[0])
            within.append(np.std(draws, ddof=1))
        for rule, estimates in values.items():
            estimates = np.asarray(estimates)
            rmse = np.sqrt(np.mean((estimates - truth) ** 2))
            seed_sd = f"{np.mean(within):.4f}" if rule == "random" else "0"
            print(f"| {label} | {truth:.4f} | {rule} | {estimates.mean() - truth:+.4f} | "
                  f"{estimates.std(ddof=1):.4f} | {seed_sd} | {rmse:.4f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, small designs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1,
                        help="repeats of the 5-fold cross-validation on real data")
    parser.add_argument("--real-data", nargs="+", default=REAL, choices=REAL)
    parser.add_argument("--cases", nargs="+", default=list(CASE_KEYS), choices=CASE_KEYS,
                        help="synthetic designs")
    parser.add_argument("--boruta-max-p", type=int, default=None,
                        help="skip Boruta on designs with more features (it takes "
                             "minutes per selection at p = 1000)")
    parser.add_argument("--parts", nargs="+",
                        default=["synthetic", "real", "interactions", "cost", "ties"])
    args = parser.parse_args()
    print(f"chatterjee {chatterjee.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; CPU seconds by time.process_time, medians")
    selectors = available()
    seeds = range(1 if args.quick else args.seeds)
    if "synthetic" in args.parts:
        print("\n| design | selector | recall | precision | all true found | "
              "forest score (30 % test) | CPU s |\n|---|---|---|---|---|---|---|")
        names = (["y = X1 X2 (p=50)"] if args.quick
                 else [CASE_KEYS[case] for case in args.cases])
        run_synthetic(selectors, names, seeds, args.boruta_max_p)
    if "real" in args.parts:
        print("\n| data | selector | 5-fold forest score (sd) | features | "
              "FOCI minus it, paired (± se) | CPU s |\n|---|---|---|---|---|---|")
        run_real(selectors, ["wine"] if args.quick else args.real_data, seed=0,
                 repeats=args.repeats)
    if "interactions" in args.parts:
        print("\n| design (n = 1000) | seeds | both found, FOCI | with lookahead=2 | "
              "CPU s | CPU s, lookahead |\n|---|---|---|---|---|---|")
        interaction_recovery(range(2 if args.quick else 10))
    if "cost" in args.parts:
        print("\n| p (y = X1 X2, n = 1000) | CPU s, FOCI | CPU s, lookahead=2 | ratio |"
              "\n|---|---|---|---|")
        lookahead_cost([50] if args.quick else [50, 100, 1000], range(1 if args.quick else 2))
    if "ties" in args.parts:
        print("\n| design (n = 300) | value at n = 200,000 | ties | bias | sd over data "
              "sets | sd over seeds | RMSE |\n|---|---|---|---|---|---|---|")
        ties_bias_variance(20 if args.quick else 300)


if __name__ == "__main__":
    main()
