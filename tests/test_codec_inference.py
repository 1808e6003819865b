"""The asymptotic test of codec, its confidence interval and the bias correction."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import norm, rankdata

from chatterjee import codec
from chatterjee.backends import neighbors_in_order

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_ci_test import gaussian_T  # the benchmark's quadrature

TRUTH = gaussian_T(1, 1, 1)    # T(Y, Z | X) for Y = X + Z + e, all standard normal


def test_gaussian_truth_matches_a_large_sample():
    rng = np.random.default_rng(0)
    x, z, e = rng.normal(size=(3, 100_000))
    assert abs(codec(x + z + e, z, x).statistic - TRUTH) < 0.01


def test_neighbors_in_order_skip_the_point_itself_among_duplicates():
    points = np.array([[0.0], [0.0], [1.0], [3.0], [3.5]])
    neighbors, squared = neighbors_in_order(points, 3)
    assert all(i not in row for i, row in enumerate(neighbors))
    np.testing.assert_array_equal(squared[0], [0.0, 1.0, 9.0])
    assert (np.diff(squared, axis=1) >= 0).all()


@pytest.mark.parametrize("conditional", [False, True])
def test_bias_correction_equals_its_definition(conditional):
    """The extrapolated statistic against a brute force: ranks, O(n^2) distances,
    agreement with the j-th neighbour, a least-squares line, its intercept."""
    rng = np.random.default_rng(1)
    n = 40
    x, z = rng.normal(size=(n, 2)), rng.normal(size=(n, 1))
    y = x[:, 0] + z[:, 0] + rng.normal(size=n)
    R = rankdata(y, method="max")
    L = n + 1 - rankdata(y, method="min")

    def extrapolated(points):
        distances = cdist(points, points, "sqeuclidean")
        np.fill_diagonal(distances, np.inf)
        order = np.argsort(distances, axis=1)[:, :6]
        sums = [np.minimum(R, R[order[:, j]]).sum() for j in range(6)]
        spread = np.take_along_axis(distances, order, axis=1).mean(axis=0)
        return np.polyfit(spread, sums, 1)[1]

    joint = extrapolated(np.column_stack([x, z]) if conditional else z)
    if conditional:
        given = extrapolated(x)
        expected = (joint - given) / (R.sum() - given)
    else:
        expected = (n * joint - (L**2).sum()) / (L * (n - L)).sum()
    result = codec(y, z, x if conditional else None, bias_correction=True)
    assert result.statistic == pytest.approx(expected, rel=1e-10)


def test_bias_correction_removes_most_of_the_bias_under_the_null():
    """Y and Z depend on X in 3 dimensions, Y independent of Z given X: T_n sits
    well below 0, the corrected statistic much nearer."""
    raw, corrected = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(1000, 3))
        s = x.sum(axis=1)
        z = np.cos(x[:, 0]) + np.tanh(s) + 0.5 * rng.normal(size=1000)
        y = np.sin(2 * x[:, 0]) + 0.5 * (x[:, 1:] ** 2).sum(axis=1) \
            + 0.5 * rng.normal(size=1000)
        raw.append(codec(y, z, x, random_state=seed).statistic)
        corrected.append(codec(y, z, x, bias_correction=True).statistic)
    assert np.mean(raw) < -0.05
    assert abs(np.mean(corrected)) < abs(np.mean(raw)) / 2


def test_standard_error_matches_the_spread_over_samples():
    values, errors = [], []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        x, z, e = rng.normal(size=(3, 300))
        result = codec(x + z + e, z, x, method="asymptotic", random_state=seed)
        values.append(result.statistic)
        errors.append(result.standard_error)
    assert 0.75 <= np.mean(errors) / np.std(values) <= 1.33


@pytest.mark.slow
def test_confidence_interval_covers_known_values():
    """95 % intervals around T = 0 (Y independent of X and Z) and the Gaussian T."""
    truth = TRUTH
    covered = {"independent": [], "gaussian": []}
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, z, e = rng.normal(size=(3, 500))
        for kind, y, value in (("independent", e, 0.0), ("gaussian", x + z + e, truth)):
            low, high = codec(y, z, x, method="asymptotic",
                              random_state=seed).confidence_interval()
            covered[kind].append(low <= value <= high)
    for kind, hits in covered.items():
        assert 0.88 <= np.mean(hits) <= 1.0, kind


def test_asymptotic_pvalue_is_small_under_dependence_and_reproducible():
    rng = np.random.default_rng(3)
    x, z = rng.normal(size=(2, 400))
    y = np.sin(2 * x) + np.cos(2 * z) + 0.3 * rng.normal(size=400)
    first = codec(y, z, x, method="asymptotic", random_state=7)
    assert first.pvalue < 1e-4
    again = codec(y, z, x, method="asymptotic", random_state=7)
    assert (again.statistic, again.pvalue, again.standard_error) == \
        (first.statistic, first.pvalue, first.standard_error)
    assert first.pvalue == pytest.approx(norm.sf(first.statistic / first.standard_error))
    low, high = first.confidence_interval(0.9)
    narrow = first.confidence_interval(0.5)
    assert low < narrow.low < first.statistic < narrow.high < high


def test_asymptotic_works_for_class_labels():
    rng = np.random.default_rng(4)
    x, z = rng.normal(size=(2, 300))
    labels = np.where(z + 0.3 * rng.normal(size=300) > 0, "up", "down")
    result = codec(labels, z, x, method="asymptotic", random_state=0)
    assert result.pvalue < 1e-3 and 0 < result.standard_error < 0.2


def test_inference_arguments_are_validated():
    rng = np.random.default_rng(5)
    x, z, y = rng.normal(size=(3, 100))
    with pytest.raises(ValueError, match="bias_correction"):
        codec(y, z, x, bias_correction=True, n_neighbors=3)
    with pytest.raises(ValueError, match="bias_correction"):
        codec(y, z, x, bias_correction=True, method="permutation")
    with pytest.raises(ValueError, match="bias_correction"):
        codec(y, z, x, bias_correction="yes")
    with pytest.raises(ValueError, match="at least 20"):
        codec(y[:10], z[:10], x[:10], method="asymptotic")
    with pytest.raises(ValueError, match="n_neighbors below half"):
        codec(y[:30], z[:30], x[:30], method="asymptotic", bias_correction=False,
              n_neighbors=15)
    with pytest.raises(ValueError, match="more than 6 samples"):
        codec(y[:6], z[:6], x[:6], bias_correction=True)
    with pytest.raises(ValueError, match="ties='random'"):
        codec(y, z, x, method="asymptotic", ties="average")
    nan_result = codec(np.r_[np.nan, y[1:]], z, x, method="asymptotic")
    assert np.isnan(nan_result.confidence_interval()).all()
    with pytest.raises(ValueError, match="method='asymptotic'"):
        codec(y, z, x).confidence_interval()
    result = codec(y, z, x, method="asymptotic", random_state=0)
    with pytest.raises(ValueError, match="confidence_level"):
        result.confidence_interval(1.5)


def test_zero_standard_error_gives_a_decided_pvalue():
    # Two clusters, y and z both the cluster: every half gives T = 1 exactly.
    labels = np.repeat([0.0, 1.0], 20)
    result = codec(labels, labels, method="asymptotic", random_state=0)
    assert (result.statistic, result.standard_error, result.pvalue) == (1.0, 0.0, 0.0)
    assert result.confidence_interval() == (1.0, 1.0)


def test_bias_correction_orders_equidistant_neighbours_at_random():
    """On a grid every point has equidistant neighbours: the corrected statistic
    follows random_state, not the order of the rows."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 4, size=(300, 2)).astype(float)
    y = x.sum(axis=1) + rng.normal(size=300)
    z = rng.integers(0, 3, size=300).astype(float)
    shuffle = rng.permutation(300)
    values = {seed: codec(y, z, x, bias_correction=True, random_state=seed).statistic
              for seed in (0, 1)}
    assert values[0] != values[1]
    assert codec(y, z, x, bias_correction=True, random_state=0).statistic == values[0]
    shuffled = [codec(y[shuffle], z[shuffle], x[shuffle], bias_correction=True,
                      random_state=seed).statistic for seed in range(20)]
    # the row order changes the draw, not the law: the original lies within the spread
    assert min(shuffled) <= values[0] <= max(shuffled)
