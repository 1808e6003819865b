"""The asymptotic test of codec, its confidence interval and the bias correction."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import multivariate_normal, norm, rankdata

from chatterjee import codec
from chatterjee.backends import neighbors_in_order


def gaussian_T(sigma=1.0, nodes=120):
    """Population T(Y, Z | X) for Y = X + Z + sigma e, all standard normal.

    With G(t) = P(Y >= t | .), T = int E[G_XZ^2] - E[G_X^2] over int E[G_X] -
    E[G_X^2] (t ~ Y), and E[Phi(m + s V)^2] is a bivariate normal probability.
    """
    def mean(m, s):                                # E[Phi(m + s V)]
        return norm.cdf(m / np.sqrt(1 + s * s))

    def mean_square(m, s):                         # E[Phi(m + s V)^2]
        h, rho = m / np.sqrt(1 + s * s), s * s / (1 + s * s)
        law = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]])
        return law.cdf(np.column_stack([h, h]))

    u, w = np.polynomial.hermite_e.hermegauss(nodes)
    t, w = np.sqrt(2 + sigma**2) * u, w / w.sum()   # t ~ Y
    rest = np.sqrt(1 + sigma**2)                      # sd of Y given X
    joint = mean_square(-t / sigma, np.sqrt(2) / sigma)
    given = mean_square(-t / rest, 1 / rest)
    return float(w @ (joint - given) / (w @ (mean(-t / rest, 1 / rest) - given)))


def test_gaussian_truth_matches_a_large_sample():
    rng = np.random.default_rng(0)
    x, z, e = rng.normal(size=(3, 100_000))
    assert abs(codec(x + z + e, z, x).statistic - gaussian_T()) < 0.01


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
    truth = gaussian_T()
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
