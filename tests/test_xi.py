"""Chatterjee's xi: agreement with scipy.stats.chatterjeexi, p-values, random ties."""

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from chatterjee import ConstantInputWarning, xi


def _tie_free(rng, n):
    x = rng.normal(size=n)
    assert np.unique(x).size == n
    return x


def _response(rng, x, kind):
    noise = rng.normal(size=x.shape)
    if kind == "continuous":
        return np.sin(2 * x) + 0.5 * noise
    y = np.round(x + noise)  # integers: many ties in y
    if np.unique(y).size == 1:  # tiny n: keep y non-constant
        y[0] += 1
    return y


@pytest.mark.parametrize("n", [3, 4, 10, 57, 500])
@pytest.mark.parametrize("y_continuous", [True, False])
@pytest.mark.parametrize("kind", ["continuous", "discrete"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_scipy_asymptotic(n, y_continuous, kind, dtype):
    rng = np.random.default_rng([n, y_continuous, kind == "discrete"])
    x = _tie_free(rng, n).astype(dtype)
    y = _response(rng, x.astype(np.float64), kind).astype(dtype)
    assert np.unique(x).size == n  # still tie-free after the cast
    expected = stats.chatterjeexi(x.astype(np.float64), y.astype(np.float64),
                                  y_continuous=y_continuous)
    result = xi(x, y, y_continuous=y_continuous, random_state=0)
    assert isinstance(result.statistic, float)
    assert abs(result.statistic - expected.statistic) <= 1e-12
    assert abs(result.pvalue - expected.pvalue) <= 1e-12
    assert result.pvalue == pytest.approx(float(expected.pvalue), rel=1e-9)
    assert result.n_samples == n
    statistic, pvalue = result
    assert (statistic, pvalue) == (result.statistic, result.pvalue)


@pytest.mark.parametrize("n", [3, 5, 20, 1000])
def test_identity_closed_form(n):
    """y = x (tie-free, increasing): xi = 1 - 3 / (n + 1) with either formula."""
    x = np.random.default_rng(n).permutation(n).astype(float)
    for y_continuous in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            statistic = xi(x, x, y_continuous=y_continuous).statistic
        assert statistic == pytest.approx(1 - 3 / (n + 1), abs=1e-12)
    # y sorted in the data's own order (its first entry is the minimum) is not constant.
    assert xi(np.arange(n), np.arange(n)).statistic == pytest.approx(1 - 3 / (n + 1))


def test_known_sign_and_size():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, size=2000)
    assert xi(x, np.cos(x)).statistic > 0.95       # noiseless, non-monotone
    assert xi(np.cos(x), x).statistic < 0.6         # not symmetric: x is not f(cos x)
    independent = xi(x, rng.normal(size=x.size))
    assert abs(independent.statistic) < 0.06
    assert independent.pvalue > 1e-3


def test_tie_free_answer_does_not_depend_on_seed():
    rng = np.random.default_rng(3)
    x = _tie_free(rng, 50)
    y = np.round(rng.normal(size=50))
    values = {xi(x, y, random_state=seed).statistic for seed in range(10)}
    assert len(values) == 1


# --- permutation p-values ----------------------------------------------------------

def _xi_rows(x, ys):
    """xi (formula 1.2) of each row of ys against x (tie-free), from the definition."""
    n = x.size
    ys = ys[:, np.argsort(x)]
    r = (ys[:, None, :] <= ys[:, :, None]).sum(axis=-1)  # r_i = #{j : y_j <= y_i}
    l = (ys[:, None, :] >= ys[:, :, None]).sum(axis=-1)
    variation = np.abs(np.diff(r, axis=-1)).sum(axis=-1)
    return 1 - n * variation / (2 * np.sum(l * (n - l), axis=-1))


def _methods(seed, n_resamples=999):
    """Two identical PermutationMethod objects (their Generators must not be shared)."""
    return tuple(stats.PermutationMethod(n_resamples=n_resamples,
                                         rng=np.random.default_rng(seed))
                 for _ in range(2))


@pytest.mark.parametrize("y_continuous", [True, False])
@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_permutation_equals_scipy_on_sorted_x(y_continuous, strength):
    """With x in increasing order both implementations permute the same sequence, so
    the same PermutationMethod rng gives the very same p-value."""
    rng = np.random.default_rng(11)
    x = np.sort(_tie_free(rng, 40))
    y = strength * x + rng.normal(size=40)
    ours_method, scipy_method = _methods(5)
    ours = xi(x, y, y_continuous=y_continuous, method=ours_method)
    theirs = stats.chatterjeexi(x, y, y_continuous=y_continuous, method=scipy_method)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.pvalue == theirs.pvalue
    assert ours.null_distribution.shape == (999,)


def test_permutation_close_to_scipy_on_unsorted_x():
    rng = np.random.default_rng(12)
    x = _tie_free(rng, 60)
    y = 0.3 * x + rng.normal(size=60)
    ours_method, scipy_method = _methods(6, n_resamples=4999)
    ours = xi(x, y, method=ours_method)
    theirs = stats.chatterjeexi(x, y, method=scipy_method)
    p = theirs.pvalue
    assert 0.005 < p < 0.995  # the comparison below is informative
    assert abs(ours.pvalue - p) <= 4.5 * math.sqrt(2 * p * (1 - p) / 4999) + 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_permutation_test_small_n(seed):
    """n = 6: 720 < n_resamples, so both run the exhaustive test."""
    rng = np.random.default_rng(seed)
    x = _tie_free(rng, 6)
    y = rng.normal(size=6)
    ours_method, scipy_method = _methods(seed, n_resamples=9999)
    ours = xi(x, y, method=ours_method)
    theirs = stats.chatterjeexi(x, y, method=scipy_method)
    assert ours.pvalue == pytest.approx(theirs.pvalue, abs=1e-12)
    # The null distribution is xi over all 720 rearrangements of y.
    brute = np.sort(_xi_rows(x, y[list(itertools.permutations(range(6)))]))
    np.testing.assert_allclose(np.sort(ours.null_distribution), brute, atol=1e-12)
    assert ours.pvalue == pytest.approx(np.mean(brute >= ours.statistic - 1e-12))


def test_permutation_string_method():
    rng = np.random.default_rng(13)
    x = _tie_free(rng, 80)
    y = 0.25 * x + rng.normal(size=80)
    first = xi(x, y, method="permutation", random_state=4)
    again = xi(x, y, method="PERMUTATION", random_state=4)
    assert first.pvalue == again.pvalue
    assert first.null_distribution.shape == (9999,)
    np.testing.assert_array_equal(first.null_distribution, again.null_distribution)
    _, scipy_method = _methods(4, n_resamples=9999)
    p = stats.chatterjeexi(x, y, method=scipy_method).pvalue
    assert 0.005 < p < 0.995
    assert abs(first.pvalue - p) <= 4.5 * math.sqrt(2 * p * (1 - p) / 9999) + 1e-3
    # Strong dependence: no permutation reaches the observed value.
    strong = xi(x, np.exp(x), method="permutation", random_state=4)
    assert strong.pvalue == pytest.approx(1 / 10000)


# --- ties in x ---------------------------------------------------------------------

def _xi_of_order(order, y):
    """xi (formula 1.2) of y arranged in the given order, computed from scratch."""
    n = len(y)
    r = np.array([np.sum(y <= y[i]) for i in order], dtype=float)
    l = np.array([np.sum(y >= y[i]) for i in order], dtype=float)
    return 1 - n * np.abs(np.diff(r)).sum() / (2 * np.sum(l * (n - l)))


def _all_tie_orders(x):
    """Every increasing arrangement of x (all orders within each group of ties)."""
    groups = [np.flatnonzero(x == value) for value in np.unique(x)]
    for parts in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield [i for part in parts for i in part]


def test_ties_in_x_seed_behaviour():
    rng = np.random.default_rng(21)
    x = rng.integers(0, 5, size=60).astype(float)
    y = rng.normal(size=60) + x
    assert xi(x, y, random_state=7) == xi(x, y, random_state=7)
    assert (xi(x, y, random_state=np.random.default_rng(7))
            == xi(x, y, random_state=np.random.default_rng(7)))
    values = {xi(x, y, random_state=seed).statistic for seed in range(20)}
    assert len(values) > 10
    generator = np.random.default_rng(8)  # a Generator is advanced: calls differ
    assert xi(x, y, random_state=generator) != xi(x, y, random_state=generator)


def test_ties_in_x_uniform_over_orders():
    """Random tie-breaking draws every increasing arrangement with equal probability:
    the values over seeds follow the exhaustive distribution, mean included."""
    x = np.array([2.0, 0, 1, 0, 2, 0, 1, 2])
    y = np.array([0.3, -1.2, 0.8, 2.2, -0.4, 0.1, 1.7, -2.5])
    exhaustive = np.array([_xi_of_order(order, y) for order in _all_tie_orders(x)])
    assert exhaustive.size == 6 * 2 * 6
    support, expected_counts = np.unique(np.round(exhaustive, 12), return_counts=True)
    assert support.size > 5

    n_seeds = 2000
    values = np.round([xi(x, y, random_state=s).statistic for s in range(n_seeds)], 12)
    assert np.isin(values, support).all(), "a value no tie order can produce"
    observed = np.array([(values == s).sum() for s in support])
    chi2 = stats.chisquare(observed, expected_counts / expected_counts.sum() * n_seeds)
    assert chi2.pvalue > 1e-4

    exact_mean = exhaustive.mean()
    se = values.std(ddof=1) / math.sqrt(n_seeds)
    assert abs(values.mean() - exact_mean) <= 4.5 * se


# --- degenerate input --------------------------------------------------------------

@pytest.mark.parametrize("method", ["asymptotic", "permutation"])
def test_constant_y_is_nan_with_warning(method):
    x = np.arange(10.0)
    with pytest.warns(ConstantInputWarning, match="constant"):
        result = xi(x, np.full(10, 3.5), method=method, random_state=0)
    assert math.isnan(result.statistic) and math.isnan(result.pvalue)
    assert result.n_samples == 10


@pytest.mark.parametrize("y", [[0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 2.0],
                               [5.0, 1.0, 5.0, 5.0]])
def test_nearly_constant_y_is_not_constant(y):
    """One differing value is enough: a finite result and no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = xi(np.arange(4.0), y)
    assert np.isfinite(result.statistic) and np.isfinite(result.pvalue)
    expected = stats.chatterjeexi(np.arange(4.0), y)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
