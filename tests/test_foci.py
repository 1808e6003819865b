"""FOCI and L-FOCI forward selection, and the shared-base neighbour search behind them.

* Every ``f*`` call of the R FOCI 0.1.3 reference files gives R's exact selection and
  ``stepT`` (R's values were printed with %.17g; we match to about 1e-16 and test 1e-9).
* ``gains`` and ``scores`` are checked against :func:`chatterjee.codec.codec` on
  tie-free data, where the neighbour graphs are unique, so they must agree to rounding.
* The stop rule, the cap ``max_features``, the lowest-index rule for equal scores,
  ``n_jobs`` invariance (threads and loky), bad input, and ``verbose``.
* :class:`~chatterjee.backends.cpu.SharedBaseSearch` against brute force (scipy's
  cdist): every neighbour lies in the minimal joint-distance set, including rows
  that the base block cannot certify, and ties are drawn uniformly.

Everything is seeded: the hypothesis tests run derandomized, without a database.
"""

import json
import logging
import subprocess
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import cdist

import chatterjee
from chatterjee.backends.cpu import SharedBaseSearch
from chatterjee.codec import codec
from chatterjee.foci import FociResult, foci, lfoci

# Same location as tests/conftest.py: shared/reference/foci beside the repository root.
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "foci"
MISSING_REFERENCE = (
    f"R FOCI reference values not found in {REFERENCE_DIR} "
    "(shared/reference/foci/ beside the repository root)."
)

DETERMINISTIC = settings(max_examples=20, deadline=None, derandomize=True, database=None)


def assert_same_result(a, b):
    """Bit-identical selections, scores and gains."""
    np.testing.assert_array_equal(a.selected, b.selected)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.gains, b.gains)


def scale_like_r(X, standardize):
    """R FOCI's column scaling, written out independently of the library."""
    if standardize == "scale":
        return (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    if standardize == "bounded":
        low = X.min(axis=0)
        return (X - low) / (X.max(axis=0) - low)
    return X


# --------------------------------------------------------------------------------------
# R FOCI reference calls
# --------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _foci_reference_params():
    if not REFERENCE_DIR.is_dir():
        return [pytest.param(None, id="reference-missing",
                             marks=pytest.mark.skip(reason=MISSING_REFERENCE))]
    params = []
    for path in sorted(REFERENCE_DIR.glob("f*.json")):
        for index, call in enumerate(_load(path)["calls"]):
            if call["fn"] == "foci":
                params.append(pytest.param((path.name, index),
                                           id=f"{path.stem.split('_')[0]}-{index}"))
    if not params:
        return [pytest.param(None, id="no-foci-cases", marks=pytest.mark.skip(
            reason=f"no foci calls in f*.json in {REFERENCE_DIR}"))]
    return params


@pytest.fixture
def reference_folder(request):
    """The reference folder: tests/conftest.py's ``reference_dir`` fixture when it is
    there (it skips when the folder is absent), else located the same way here."""
    try:
        return Path(request.getfixturevalue("reference_dir"))
    except pytest.FixtureLookupError:
        if not REFERENCE_DIR.is_dir():
            pytest.skip(MISSING_REFERENCE)
        return REFERENCE_DIR


def _reference_call(folder, case):
    name, index = case
    data = _load(folder / name)
    call = data["calls"][index]
    inputs = data["inputs"]
    X = np.column_stack([np.asarray(inputs[c], dtype=np.float64) for c in call["X"]])
    y = np.asarray(inputs[call["Y"]], dtype=np.float64)
    args = call["args"]
    kwargs = dict(
        max_features=args["num_features"],
        stop=args["stop"],
        standardize=None if args["standardize"] == "none" else args["standardize"],
    )
    return X, y, kwargs, call


@pytest.mark.parametrize("case", _foci_reference_params())
def test_foci_matches_r_reference(reference_folder, case):
    X, y, kwargs, call = _reference_call(reference_folder, case)
    expected = call["r_result"]
    result = foci(X, y, random_state=0, **kwargs)
    assert isinstance(result, FociResult)
    assert result.n_samples == X.shape[0]
    if expected["null"]:
        assert result.selected.shape == (0,)
        assert result.scores.shape == (0,)
        return
    assert result.selected.tolist() == expected["selected_0based"]
    np.testing.assert_allclose(result.scores, expected["stepT"], rtol=0, atol=1e-9)
    assert result.gains.shape == result.scores.shape
    assert result.gains[0] == result.scores[0]
    if X.shape[0] <= 500:  # the small cases again, as a DataFrame: R's names come back
        pd = pytest.importorskip("pandas")
        named = foci(pd.DataFrame(X, columns=call["X"]), y, random_state=0, **kwargs)
        assert named.feature_names.tolist() == expected["names"]
        assert_same_result(named, result)


# --------------------------------------------------------------------------------------
# gains and scores against codec (tie-free data: the graphs are unique)
# --------------------------------------------------------------------------------------

def _signal_data(seed, n=300, p=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 5.0, size=p)
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + 0.3 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("standardize", ["scale", "bounded", None])
def test_gains_and_scores_equal_codec(standardize):
    X, y = _signal_data(1)
    result = foci(X, y, stop=False, max_features=4, standardize=standardize,
                  random_state=0)
    Xs = scale_like_r(X, standardize)
    assert result.selected.shape == (4,)
    chosen = []
    for step, j in enumerate(result.selected):
        if step == 0:
            expected_gain = codec(y, Xs[:, j]).statistic
        else:
            expected_gain = codec(y, Xs[:, j], Xs[:, chosen]).statistic
        chosen.append(j)
        assert result.gains[step] == pytest.approx(expected_gain, abs=1e-12, rel=0)
        assert result.scores[step] == pytest.approx(
            codec(y, Xs[:, chosen]).statistic, abs=1e-12, rel=0)
    assert result.scores[-1] == pytest.approx(
        codec(y, Xs[:, result.selected]).statistic, abs=1e-12, rel=0)


def test_tie_free_result_does_not_depend_on_the_seed():
    X, y = _signal_data(2, n=200)
    first = foci(X, y, stop=False, random_state=0)
    for seed in (1, 12345, np.random.default_rng(7)):
        assert_same_result(foci(X, y, stop=False, random_state=seed), first)


# --------------------------------------------------------------------------------------
# the stop rule, max_features, equal scores
# --------------------------------------------------------------------------------------

def test_stop_selects_nothing_when_no_first_step_is_positive():
    # Seed found by a search: with it, every single column has T_n(y, X_j) <= 0, the
    # case where R FOCI returns NULL.
    rng = np.random.default_rng([11, 15])
    X = rng.normal(size=(50, 3))
    y = rng.normal(size=50)
    first_step = [codec(y, X[:, j]).statistic for j in range(3)]
    assert max(first_step) <= 0
    for standardize in ("scale", "bounded", None):
        result = foci(X, y, standardize=standardize, random_state=0)
        assert result.selected.shape == (0,)
        assert result.selected.dtype == np.int64
        assert result.scores.shape == result.gains.shape == (0,)
        assert result.n_samples == 50
        ranked = foci(X, y, stop=False, standardize=standardize, random_state=0)
        assert sorted(ranked.selected.tolist()) == [0, 1, 2]
        assert ranked.scores[0] == pytest.approx(max(first_step), abs=1e-12)


def test_stop_true_is_the_prefix_of_stop_false_up_to_the_first_non_increase():
    for seed in (0, 1, 2, 4):  # (seed 3 puts the minimum of y first: see below)
        X, y = _signal_data(seed, n=200)
        ranked = foci(X, y, stop=False, random_state=seed)
        stopped = foci(X, y, stop=True, random_state=seed)
        scores = np.concatenate(([0.0], ranked.scores))
        not_up = np.flatnonzero(scores[1:] <= scores[:-1])
        k = not_up[0] if not_up.size else ranked.selected.shape[0]
        np.testing.assert_array_equal(stopped.selected, ranked.selected[:k])
        np.testing.assert_array_equal(stopped.scores, ranked.scores[:k])
        np.testing.assert_array_equal(stopped.gains, ranked.gains[:k])
        assert np.all(stopped.gains > 0)
        assert np.all(np.diff(stopped.scores) > 0)


def test_pure_noise_rarely_selects():
    # y independent of 5 noise columns, n = 500, 20 seeds. FOCI makes its first pick
    # whenever one of the 5 unconditional T is positive (probability ~ 1 - 2**-5),
    # and each later pick needs a positive conditional gain, so about 1.5 picks are
    # expected (1.55 observed with these seeds; per-run counts 1-3). The bound 2.5 is
    # more than 5 standard errors of the mean away from that, while a stop rule that
    # does not stop would give 5.
    counts = []
    for seed in range(20):
        rng = np.random.default_rng([7, seed])
        X = rng.normal(size=(500, 5))
        y = rng.normal(size=500)
        counts.append(foci(X, y, random_state=seed).selected.shape[0])
    assert np.mean(counts) <= 2.5, counts
    assert max(counts) < 5, counts


@pytest.mark.parametrize("select", [foci, lfoci], ids=["foci", "lfoci"])
def test_response_whose_first_value_is_its_minimum(select):
    X, y = _signal_data(3)  # with this seed, y[0] happens to be the minimum of y
    assert y.argmin() == 0
    shifted = np.roll(np.arange(y.shape[0]), 1)  # the same rows, y[0] no longer first
    expected = select(X[shifted], y[shifted], random_state=0)
    assert expected.selected.shape[0] >= 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", chatterjee.ConstantInputWarning)
        result = select(X, y, random_state=0)
    if select is foci:  # tie-free data: the row order does not matter
        np.testing.assert_array_equal(result.selected, expected.selected)
        np.testing.assert_allclose(result.scores, expected.scores, rtol=0, atol=1e-12)
    else:
        assert result.selected.shape[0] >= 3


@pytest.mark.parametrize("stop", [True, False])
def test_max_features_caps_the_selection(stop):
    X, y = _signal_data(8)
    full = foci(X, y, stop=stop, random_state=0)
    if not stop:
        assert sorted(full.selected.tolist()) == list(range(X.shape[1]))
    assert full.selected.shape[0] >= 2
    for cap in range(1, full.selected.shape[0] + 1):
        capped = foci(X, y, stop=stop, max_features=cap, random_state=0)
        assert capped.selected.shape == (cap,)
        np.testing.assert_array_equal(capped.selected, full.selected[:cap])
        np.testing.assert_array_equal(capped.scores, full.scores[:cap])
        np.testing.assert_array_equal(capped.gains, full.gains[:cap])
    numpy_int = foci(X, y, stop=stop, max_features=np.int64(2), random_state=0)
    np.testing.assert_array_equal(numpy_int.selected, full.selected[:2])
    if stop:  # a cap beyond the natural stop changes nothing
        assert_same_result(foci(X, y, max_features=X.shape[1], random_state=0), full)


@pytest.mark.parametrize("first, second", [(0, 3), (1, 2), (2, 4), (3, 4)])
def test_equal_scores_go_to_the_lowest_column_index(first, second):
    rng = np.random.default_rng([5, first, second])
    n, p = 300, 5
    X = rng.normal(size=(n, p))
    signal = rng.normal(size=n)
    X[:, first] = X[:, second] = signal
    y = np.cos(signal) + signal + 0.1 * rng.normal(size=n)
    for standardize in ("scale", None):
        result = foci(X, y, standardize=standardize, random_state=0)
        assert result.selected[0] == first
        # Right after its twin the copy adds nothing (the neighbours in (s, s) are
        # those in s), so the stop rule never takes it at the second step.
        assert result.selected[1:2].tolist() != [second]
        ranked = foci(X, y, stop=False, standardize=standardize, random_state=0)
        assert ranked.selected[0] == first


def test_two_identical_columns_that_add_equally_pick_the_first():
    # y depends on a and b; b appears twice (columns 3 and 1): after a, the copy at
    # column 1 wins the tie with column 3 (equal scores at the second step).
    rng = np.random.default_rng(9)
    n = 400
    a, b, noise = rng.normal(size=(3, n))
    X = np.column_stack((noise, b, a, b))
    y = 3 * a + b + 0.05 * rng.normal(size=n)
    result = foci(X, y, random_state=0)
    assert result.selected.tolist()[:2] == [2, 1]


# --------------------------------------------------------------------------------------
# n_jobs invariance
# --------------------------------------------------------------------------------------

def _tied_data(seed=5, n=150, p=5):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(n, p)).astype(float)
    y = X[:, 0] + X[:, 2] * X[:, 3] + rng.integers(0, 2, size=n)
    return X, y


def test_tie_breaking_randomness_matters_on_tied_data():
    # Guards the n_jobs tests below: on these data the seed changes the result.
    X, y = _tied_data()
    results = [foci(X, y, stop=False, random_state=seed) for seed in range(4)]
    assert len({tuple(np.round(r.scores, 12)) for r in results}) > 1


@pytest.mark.parametrize("data", ["continuous", "tied"])
@pytest.mark.parametrize("select", [foci, lfoci], ids=["foci", "lfoci"])
def test_n_jobs_does_not_change_the_result(data, select):
    X, y = _tied_data() if data == "tied" else _signal_data(4, n=150, p=5)
    reference = select(X, y, stop=False, random_state=3, n_jobs=None)
    for n_jobs in (1, 2, -1):
        assert_same_result(select(X, y, stop=False, random_state=3, n_jobs=n_jobs),
                           reference)
    stopped = select(X, y, random_state=3)
    assert_same_result(select(X, y, random_state=3, n_jobs=2), stopped)


def test_n_jobs_invariance_under_a_loky_context():
    X, y = _tied_data(seed=6, n=120, p=4)
    reference = foci(X, y, stop=False, random_state=11)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        assert_same_result(foci(X, y, stop=False, random_state=11), reference)
        assert_same_result(lfoci(X, y, stop=False, random_state=11),
                           lfoci(X, y, stop=False, random_state=11, n_jobs=1))


# --------------------------------------------------------------------------------------
# SharedBaseSearch against brute force
# --------------------------------------------------------------------------------------

def _joint_d2(base, column):
    joint = np.column_stack((base, column))
    d2 = cdist(joint, joint, "sqeuclidean")
    np.fill_diagonal(d2, np.inf)
    return d2


def _check_minimal(base, column, seed, rtol):
    """Neighbours of SharedBaseSearch lie in each row's minimal joint-distance set.

    ``rtol`` 0 for data whose squared distances are exact in binary64 (integers,
    dyadic values): then the set is exact. Otherwise a relative slack of 1e-12
    covers the different summation orders of cdist and the search.
    """
    n = column.shape[0]
    search = SharedBaseSearch(np.ascontiguousarray(base, dtype=np.float64))
    u = np.random.default_rng(seed).random(n)
    neighbors = search.neighbors(np.ascontiguousarray(column, dtype=np.float64), u)
    assert neighbors.shape == (n,)
    assert neighbors.dtype == np.int64
    assert np.all(neighbors != np.arange(n))
    d2 = _joint_d2(base, column)
    nearest = d2.min(axis=1)
    chosen = d2[np.arange(n), neighbors]
    if rtol == 0:
        np.testing.assert_array_equal(chosen, nearest)
    else:
        assert np.all(chosen <= nearest * (1 + rtol))
    return d2


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("n", [5, 60, 400])
def test_shared_base_continuous(d, n):
    rng = np.random.default_rng([d, n])
    base = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d)
    column = rng.normal(size=n) * 2
    for seed in range(2):
        d2 = _check_minimal(base, column, seed, rtol=1e-12)
    assert np.all((d2 == d2.min(axis=1, keepdims=True)).sum(axis=1) == 1)  # tie-free


@pytest.mark.parametrize("d", [1, 2])
def test_shared_base_tied_integers_distinct_base(d):
    rng = np.random.default_rng(d)
    if d == 1:
        base = rng.permutation(300).astype(float)[:, None]
    else:
        grid = np.array([(a, b) for a in range(20) for b in range(10)], dtype=float)
        base = grid[rng.permutation(grid.shape[0])]
    column = rng.integers(0, 3, size=base.shape[0]).astype(float)
    for seed in range(3):
        d2 = _check_minimal(base, column, seed, rtol=0)
    assert ((d2 == d2.min(axis=1, keepdims=True)).sum(axis=1) > 1).sum() > 20  # ties


@pytest.mark.parametrize("integer_column", [True, False])
def test_shared_base_with_duplicate_rows(integer_column):
    rng = np.random.default_rng(3)
    n = 250
    base = rng.integers(0, 4, size=(n, 2)).astype(float)  # many duplicate rows
    column = (rng.integers(0, 3, size=n).astype(float) if integer_column
              else rng.normal(size=n))
    for seed in range(3):
        _check_minimal(base, column, seed, rtol=0 if integer_column else 1e-12)


def _assert_base_cannot_certify(base, d2):
    """Every row's nearest joint distance exceeds every base distance: whatever
    neighbour list the base search keeps, no row is settled by it."""
    base_d2 = cdist(base, base, "sqeuclidean")
    assert d2.min() > base_d2.max()


@pytest.mark.parametrize("n", [300, 2500])
@pytest.mark.parametrize("d", [1, 2])
def test_shared_base_fallback_narrow_base_wide_column(n, d):
    rng = np.random.default_rng([n, d])
    base = rng.normal(size=(n, d)) * 1e-10
    column = rng.normal(size=n)
    d2 = _check_minimal(base, column, 0, rtol=1e-12)
    _assert_base_cannot_certify(base, d2)


@pytest.mark.parametrize("n", [300, 2500])
def test_shared_base_fallback_with_exact_ties(n):
    # Base values i * 2**-20, column 3 * i (shuffled): the joint neighbours of i are
    # i - 1 and i + 1, at exactly the same squared distance 9 + 2**-40.
    order = np.random.default_rng(n).permutation(n).astype(float)
    base = (order * 2.0**-20)[:, None]
    column = 3.0 * order
    for seed in range(2):
        d2 = _check_minimal(base, column, seed, rtol=0)
    _assert_base_cannot_certify(base, d2)
    assert ((d2 == d2.min(axis=1, keepdims=True)).sum(axis=1) == 2).sum() == n - 2


def _uniformity_pvalue(base, column, draws, seed):
    """Chi-square p-value of the tie draws, pooled over rows with several minima."""
    n = column.shape[0]
    search = SharedBaseSearch(base)
    d2 = _joint_d2(base, column)
    minimal = d2 == d2.min(axis=1, keepdims=True)
    rows = np.flatnonzero(minimal.sum(axis=1) > 1)
    assert rows.size > 10
    counts = np.zeros((n, n), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for _ in range(draws):
        counts[np.arange(n), search.neighbors(column, rng.random(n))] += 1
    assert np.all(counts[~minimal] == 0)  # never outside the minimal set
    statistic, dof = 0.0, 0
    for i in rows:
        observed = counts[i, minimal[i]]
        expected = draws / observed.size
        assert observed.min() > 0
        statistic += ((observed - expected) ** 2 / expected).sum()
        dof += observed.size - 1
    return stats.chi2.sf(statistic, dof)


def test_shared_base_ties_are_uniform_listed_rows():
    rng = np.random.default_rng(21)
    grid = np.array([(a, b) for a in range(16) for b in range(10)], dtype=float)
    base = grid[rng.permutation(grid.shape[0])]
    column = rng.integers(0, 3, size=base.shape[0]).astype(float)
    assert _uniformity_pvalue(base, column, draws=600, seed=1) > 1e-3


def test_shared_base_ties_are_uniform_fallback_rows():
    n = 200
    order = np.random.default_rng(22).permutation(n).astype(float)
    base = (order * 2.0**-20)[:, None]
    assert _uniformity_pvalue(base, 3.0 * order, draws=600, seed=2) > 1e-3


def test_shared_base_ties_are_uniform_duplicate_base():
    rng = np.random.default_rng(23)
    base = rng.integers(0, 3, size=(120, 2)).astype(float)
    column = rng.integers(0, 2, size=120).astype(float)
    assert _uniformity_pvalue(base, column, draws=600, seed=3) > 1e-3


def _k_cases():
    """(base, column) pairs: continuous, one-column bases (the grid of cells, with
    sparse cells and repeated values), narrow bases (fallback rows), heavy tails,
    ties on a grid and duplicated rows."""
    rng = np.random.default_rng(31)
    n = 700
    yield rng.normal(size=(n, 1)), rng.normal(size=n)
    yield rng.standard_t(1, size=(n, 1)), rng.standard_t(1, size=n)  # sparse cells
    repeated = rng.normal(size=(n, 1))
    repeated[:60] = repeated[60:120]                                # equal cell edges
    yield repeated, rng.normal(size=n)
    yield rng.normal(size=(n, 1)), rng.normal(size=(n, 2))          # two-column block
    yield rng.normal(size=(n, 3)), rng.standard_t(1, size=n)        # far outliers
    yield rng.normal(size=(n, 5)) * 1e-9, rng.normal(size=n)          # base certifies nothing
    grid = np.array([(a, b) for a in range(35) for b in range(20)], dtype=float)
    yield grid[rng.permutation(n)], rng.integers(0, 3, size=n).astype(float)
    yield rng.permutation(n).astype(float)[:, None], rng.integers(0, 2, size=n) * 1.0
    yield rng.integers(0, 4, size=(n, 2)).astype(float), rng.normal(size=n)
    # Tenths: distances equal in exact arithmetic round apart by an ulp (0 + 1.3^2
    # and 0.5^2 + 1.2^2), which the k-d tree's square roots may tie.
    yield rng.integers(0, 30, size=(n, 1)) / 10, rng.integers(0, 30, size=n) / 10
    yield rng.integers(0, 8, size=(n, 3)) / 10, rng.integers(0, 8, size=n) / 10
    yield rng.integers(0, 5, size=(n, 8)) / 10, rng.integers(0, 5, size=n) / 10


@pytest.mark.parametrize("k", [2, 5])
def test_shared_base_k_neighbors_equal_the_kdtree_search(k):
    # Every candidate of a search gives k_nearest_neighbors's graph for the same
    # draws, row for row (tie rule included), from the first candidate (a k-d tree
    # on the joint points) to those that use the lists.
    from chatterjee.backends.cpu import k_nearest_neighbors

    for base, column in _k_cases():
        search = SharedBaseSearch(np.ascontiguousarray(base), n_neighbors=k)
        rng = np.random.default_rng(k)
        for scale in (1.0, 0.1, 10.0):
            u = rng.random((base.shape[0], k))
            found = search.neighbors(column * scale, u)
            expected = k_nearest_neighbors(np.column_stack((base, column * scale)), u)
            assert found.shape == expected.shape
            np.testing.assert_array_equal(np.sort(found, axis=1),
                                          np.sort(expected, axis=1))


@pytest.mark.parametrize("k", [1, 3, 6])
def test_k_neighbors_1d_and_rows_equal_the_kdtree_search(k):
    from chatterjee.backends.cpu import k_nearest_neighbors, k_nearest_neighbors_1d

    rng = np.random.default_rng(k)
    for values in (rng.normal(size=500), rng.integers(0, 6, size=500) * 0.5,
                   np.where(rng.random(500) < 0.5, rng.normal(size=500).round(1),
                            rng.normal(size=500)), rng.normal(size=k + 1)):
        u = rng.random((values.shape[0], k))
        expected = k_nearest_neighbors(values[:, None], u)
        np.testing.assert_array_equal(np.sort(k_nearest_neighbors_1d(values, u), axis=1),
                                      np.sort(expected, axis=1))
        rows = rng.choice(values.shape[0], size=min(40, values.shape[0]), replace=False)
        np.testing.assert_array_equal(k_nearest_neighbors(values[:, None], u, rows=rows),
                                      expected[rows])


# --------------------------------------------------------------------------------------
# L-FOCI
# --------------------------------------------------------------------------------------

def _discrete_data(seed, n=600, p=6):
    rng = np.random.default_rng([3, seed])
    X = rng.integers(0, 4, size=(n, p))
    y = X[:, 1] + 2 * X[:, 4] + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lfoci_finds_the_features_of_discrete_data(seed):
    X, y = _discrete_data(seed)
    result = lfoci(X, y, random_state=seed)
    assert result.selected.tolist()[:2] == [4, 1]
    assert result.scores[1] > 0.8
    capped = lfoci(X, y, max_features=2, random_state=seed)
    assert capped.selected.tolist() == [4, 1]


def test_lfoci_is_reproducible_and_randomized():
    X, y = _discrete_data(0, n=300)
    first = lfoci(X, y, stop=False, random_state=4)
    assert_same_result(lfoci(X, y, stop=False, random_state=4), first)
    others = [lfoci(X, y, stop=False, random_state=seed) for seed in (5, 6, 7)]
    assert any(not np.array_equal(o.scores, first.scores) for o in others)


def test_lfoci_first_step_equals_foci_on_tie_free_data():
    # The noise is far below every column's decisive gap: one-dimensional orders and
    # neighbours are kept, so the first pick and its score are FOCI's.
    X, y = _signal_data(5, n=300)
    exact = foci(X, y, random_state=0)
    jittered = lfoci(X, y, random_state=0)
    assert jittered.selected[0] == exact.selected[0]
    assert jittered.scores[0] == exact.scores[0]


@pytest.mark.parametrize("noise_scale", [0, -1e-3, 0.2, 1.0, np.nan])
def test_lfoci_rejects_bad_noise_scale(noise_scale):
    X, y = _discrete_data(0, n=50)
    with pytest.raises(ValueError, match="noise_scale"):
        lfoci(X, y, noise_scale=noise_scale)


def test_lfoci_accepts_the_largest_noise_scale():
    X, y = _discrete_data(0, n=200)
    assert lfoci(X, y, noise_scale=0.1, random_state=0).selected.shape[0] >= 1


# --------------------------------------------------------------------------------------
# hypothesis properties
# --------------------------------------------------------------------------------------

@DETERMINISTIC
@given(n=st.integers(20, 200), p_noise=st.integers(1, 5), position=st.integers(0, 5),
       seed=st.integers(0, 2**32 - 1),
       standardize=st.sampled_from(["scale", "bounded", None]))
def test_noiseless_monotone_feature_is_picked_first(n, p_noise, position, seed,
                                                    standardize):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    position %= p_noise + 1
    X = np.insert(rng.normal(size=(n, p_noise)), position, y**3 + y, axis=1)
    result = foci(X, y, standardize=standardize, random_state=seed)
    assert result.selected[0] == position
    first_step = [codec(y, X[:, j]).statistic for j in range(X.shape[1])]
    assert result.scores[0] == pytest.approx(max(first_step), abs=1e-12)


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(30, 150), p=st.integers(1, 5))
def test_tie_free_selection_is_seed_free_and_consistent(seed, n, p):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.sin(2 * X[:, 0]) + 0.5 * rng.normal(size=n)
    a = foci(X, y, stop=False, random_state=1)
    b = foci(X, y, stop=False, random_state=2)
    assert_same_result(a, b)
    assert sorted(a.selected.tolist()) == list(range(p))
    assert a.gains[0] == a.scores[0]
    assert np.all(np.isfinite(a.scores)) and np.all(np.isfinite(a.gains))
    assert np.all(a.scores <= 1)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("standardize", ["scale", "bounded", None])
@pytest.mark.parametrize("select", [foci, lfoci], ids=["foci", "lfoci"])
def test_constant_columns_warn_and_are_never_selected(standardize, select):
    rng = np.random.default_rng(8)
    n = 200
    X = rng.normal(size=(n, 5))
    X[:, 2] = 3.5
    X[:, 4] = 0.0
    y = X[:, 2] + X[:, 0] + X[:, 3] ** 2 + 0.1 * rng.normal(size=n)
    with pytest.warns(UserWarning, match=r"\[2, 4\]"):
        result = select(X, y, stop=False, standardize=standardize, random_state=0)
    assert sorted(result.selected.tolist()) == [0, 1, 3]
    assert np.all(np.isfinite(result.scores)) and np.all(np.isfinite(result.gains))
    with pytest.warns(UserWarning, match=r"\[2, 4\]"):
        stopped = select(X, y, standardize=standardize, random_state=0)
    assert set(stopped.selected.tolist()) <= {0, 1, 3}
    assert {0, 3} <= set(stopped.selected.tolist())


def test_all_columns_constant_selects_nothing():
    X = np.ones((20, 3))
    y = np.arange(20.0)[::-1]
    with pytest.warns(UserWarning, match=r"\[0, 1, 2\]"):
        result = foci(X, y, stop=False)
    assert result.selected.shape == (0,)


@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize("select", [foci, lfoci], ids=["foci", "lfoci"])
def test_constant_y_warns_and_selects_nothing(stop, select):
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.warns(chatterjee.ConstantInputWarning):
        result = select(X, np.full(30, 2.0), stop=stop, random_state=0)
    assert result.selected.shape == result.scores.shape == result.gains.shape == (0,)


@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_raises(where, bad):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    if where == "X":
        X[4, 1] = bad
    else:
        y[7] = bad
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinite"):
        foci(X, y)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="samples"):
        foci(np.zeros((10, 2)), np.arange(9.0))


@pytest.mark.parametrize("shape", ["1d", "2d"])
def test_single_feature(shape):
    rng = np.random.default_rng(1)
    x = rng.normal(size=100)
    y = x**2 + 0.1 * rng.normal(size=100)
    result = foci(x if shape == "1d" else x[:, None], y, random_state=0)
    assert result.selected.tolist() == [0]
    assert result.scores[0] == pytest.approx(codec(y, x).statistic, abs=1e-12)


def test_three_samples_work_two_raise():
    X = np.array([[0.0, 1.0], [1.0, 0.5], [3.0, 0.0]])
    y = np.array([1.0, 0.0, 2.0])
    assert foci(X, y, stop=False, random_state=0).selected.shape == (2,)
    with pytest.raises(ValueError, match="3 samples"):
        foci(X[:2], y[:2])
    with pytest.raises(ValueError, match="3 samples"):
        lfoci(X[:2], y[:2])


@pytest.mark.parametrize("max_features", [0, -1, 4, 2.5, True, False, "2", 2.0])
def test_bad_max_features_raise(max_features):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="max_features"):
        foci(X, X[:, 0], max_features=max_features)


@pytest.mark.parametrize("standardize", ["none", "Scale", "minmax", 1, True])
def test_bad_standardize_raises(standardize):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="standardize"):
        foci(X, X[:, 0], standardize=standardize)


@pytest.mark.parametrize("stop", [None, "yes", 2, 0.5])
def test_bad_stop_raises(stop):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="stop"):
        foci(X, X[:, 0], stop=stop)


def test_dataframe_input_gives_names():
    pd = pytest.importorskip("pandas")
    X, y = _signal_data(6, n=200, p=5)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    named = foci(frame, pd.Series(y), random_state=0)
    plain = foci(X, y, random_state=0)
    assert_same_result(named, plain)
    assert plain.feature_names is None
    assert named.feature_names.tolist() == [frame.columns[j] for j in plain.selected]


# --------------------------------------------------------------------------------------
# verbose
# --------------------------------------------------------------------------------------

def test_verbose_prints_one_line_per_step(capsys):
    X, y = _signal_data(7, n=150, p=5)
    foci(X, y, random_state=0, verbose=0)
    assert capsys.readouterr() == ("", "")
    # verbose=2: lines even with tqdm installed, on stderr (stdout stays clean)
    result = foci(X, y, stop=False, max_features=3, random_state=0, verbose=2)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 3
    for step, (line, j) in enumerate(zip(lines, result.selected), start=1):
        assert f"step {step}" in line
        assert f"feature {j}" in line


def _without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_verbose_without_tqdm_prints_lines_and_says_when_it_stops(capsys, monkeypatch):
    _without_tqdm(monkeypatch)
    X, y = _signal_data(7, n=150, p=5)
    result = lfoci(X, y, random_state=0, verbose=1)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == len(result.selected) + 1
    assert all(line.startswith("[l-foci] step") for line in lines)
    assert "no feature adds dependence" in lines[-1]


def test_verbose_with_tqdm_draws_a_bar_on_stderr(capsys):
    pytest.importorskip("tqdm")
    X, y = _signal_data(7, n=150, p=5)
    result = foci(X, y, random_state=0, verbose=1)
    out, err = capsys.readouterr()
    assert out == ""
    assert f"FOCI step {len(result.selected) + 1}" in err
    assert "candidate" in err and "[foci]" not in err


def test_verbose_lines_go_to_the_chatterjee_logger_when_configured(capsys, caplog,
                                                                    monkeypatch):
    _without_tqdm(monkeypatch)
    caplog.set_level(logging.INFO, logger="chatterjee")
    X, y = _signal_data(7, n=150, p=5)
    result = foci(X, y, stop=False, max_features=2, random_state=0, verbose=1)
    records = [r for r in caplog.records if r.name == "chatterjee"]
    assert [r.levelno for r in records] == [logging.INFO] * 2
    assert f"feature {result.selected[0]}" in records[0].getMessage()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("select", [foci, lfoci])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_progress_changes_no_result(select, n_jobs, monkeypatch, capsys):
    X, y = _signal_data(8, n=200, p=40)
    reference = select(X, y, random_state=0, n_jobs=1)
    for verbose in (1, 2):
        assert_same_result(select(X, y, random_state=0, n_jobs=n_jobs, verbose=verbose),
                           reference)
    _without_tqdm(monkeypatch)
    assert_same_result(select(X, y, random_state=0, n_jobs=n_jobs, verbose=1), reference)
    ranked = select(X, y, stop=False, max_features=4, random_state=1, n_jobs=n_jobs)
    assert_same_result(select(X, y, stop=False, max_features=4, random_state=1,
                              n_jobs=n_jobs, verbose=2), ranked)


def test_quiet_selection_does_not_import_tqdm():
    script = (
        "import sys, numpy as np\n"
        "from chatterjee import foci, markov_blanket\n"
        "X = np.random.default_rng(0).normal(size=(60, 3))\n"
        "foci(X, X[:, 0] + X[:, 1], random_state=0)\n"
        "markov_blanket(X, X[:, 0], random_state=0)\n"
        "assert 'tqdm' not in sys.modules\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


# --------------------------------------------------------------------------------------
# the public namespace
# --------------------------------------------------------------------------------------

def test_public_names_are_the_functions_whatever_the_import_order():
    # The submodules share the functions' names; importing one first must not leave
    # the module where the function should be (run in a fresh interpreter).
    script = (
        "import chatterjee.foci, chatterjee.codec, chatterjee.lcodec\n"
        "from chatterjee import foci, codec, lcodec, lfoci\n"
        "assert all(callable(f) for f in (foci, codec, lcodec, lfoci)), "
        "(foci, codec, lcodec, lfoci)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_one_job_runs_in_this_thread_whatever_the_joblib_backend(monkeypatch):
    """With n_jobs=1 no candidate goes through joblib: under a dask backend each chunk
    would be shipped as a task of its own (markov_blankets runs its targets that way)."""
    import joblib
    import sklearn.utils.parallel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = X[:, 0] + np.sin(X[:, 1]) + 0.1 * rng.normal(size=300)
    expected = foci(X, y, random_state=0).selected

    def no_parallel(*args, **kwargs):
        raise AssertionError("joblib.Parallel used for one job")
    monkeypatch.setattr(sklearn.utils.parallel, "Parallel", no_parallel)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        np.testing.assert_array_equal(foci(X, y, n_jobs=1, random_state=0).selected,
                                      expected)
