"""The k-nearest-neighbour coefficient (``n_neighbors``) against a brute-force reference.

T_{n,k} replaces each min(R_i, R_N(i)) by its mean over the k nearest neighbours of
i (see :func:`chatterjee.codec`). Tie-free data have one k-nearest set per point, so
the statistic is checked exactly; ties at the k-th distance must be drawn uniformly.
"""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from chatterjee import FOCISelector, codec, foci, lfoci, markov_blanket
from chatterjee.backends import nearest_neighbors


def reference(y, z, x=None, k=1):
    """T_{n,k} by brute force: full distance matrices and sorted neighbour lists."""
    n = y.shape[0]
    R = (y[None, :] <= y[:, None]).sum(axis=1)
    L = (y[None, :] >= y[:, None]).sum(axis=1)

    def mean_min(points):
        points = points.reshape(n, -1)
        distances = cdist(points, points)
        np.fill_diagonal(distances, np.inf)
        nearest = np.argsort(distances, axis=1)[:, :k]
        return np.minimum(R[:, None], R[nearest]).mean(axis=1)

    if x is None:
        return (n * mean_min(z) - L.astype(float) ** 2).sum() / (L * (n - L)).sum()
    joint, given = mean_min(np.column_stack((x, z))), mean_min(x)
    return (joint - given).sum() / (R - given).sum()


@pytest.fixture
def sample():
    rng = np.random.default_rng(7)
    x, z = rng.normal(size=(2, 400, 2))
    y = x[:, 0] * z[:, 1] + np.sin(z[:, 0]) + 0.3 * rng.normal(size=400)
    return y, z, x


def test_one_neighbor_is_the_current_estimator(sample):
    y, z, x = sample
    tied = np.round(z, 1)  # ties: the draws matter
    for args in ((y, z), (y, z, x), (y, tied), (y, tied, np.round(x, 1))):
        assert codec(*args, n_neighbors=1, random_state=3) == codec(*args, random_state=3)
    X = np.column_stack((x, z, np.round(x, 1)))
    a, b = foci(X, y, n_neighbors=1, random_state=0), foci(X, y, random_state=0)
    np.testing.assert_array_equal(a.selected, b.selected)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.gains, b.gains)


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_matches_brute_force_on_tie_free_data(sample, k):
    y, z, x = sample
    for args in ((y, z), (y, z, x), (y, z[:, 0]), (y, z[:, 0], x[:, 0])):
        expected = reference(*args, k=k)
        for seed in (0, 1):
            got = codec(*args, n_neighbors=k, random_state=seed).statistic
            assert got == pytest.approx(expected, abs=1e-12)


def test_permutation_pvalue_uses_the_k_nearest_graph(sample):
    y, z, _ = sample
    result = codec(y, z, n_neighbors=4, method="permutation", random_state=0)
    assert result.statistic == pytest.approx(reference(y, z, k=4), abs=1e-12)
    assert result.pvalue < 0.01
    assert result.null_distribution.mean() == pytest.approx(0, abs=0.01)


def test_invariant_to_monotone_response_and_row_order(sample):
    y, z, x = sample
    k = 5
    for args in ((z,), (z, x)):
        base = codec(y, *args, n_neighbors=k, random_state=0).statistic
        assert codec(np.exp(y), *args, n_neighbors=k, random_state=0).statistic == base
        order = np.random.default_rng(1).permutation(y.shape[0])
        permuted = codec(y[order], *(a[order] for a in args), n_neighbors=k,
                         random_state=0).statistic
        assert permuted == pytest.approx(base, abs=1e-12)


def test_graph_respects_the_kth_distance_with_duplicates():
    """Strictly nearer points are all taken; the rest lie exactly at the k-th distance."""
    rng = np.random.default_rng(5)
    points = rng.integers(0, 4, size=(300, 2)).astype(float)  # heavy duplicates
    points[:40] = rng.normal(size=(40, 2))
    distances = cdist(points, points)
    np.fill_diagonal(distances, np.inf)
    for k in (1, 2, 7, 30):
        graph = nearest_neighbors(points, np.random.default_rng(k), n_neighbors=k)
        assert graph.shape == ((300, k) if k > 1 else (300,))
        assert graph.dtype == np.int64
        graph = graph.reshape(300, k)
        kth = np.sort(distances, axis=1)[:, k - 1]
        for i, row in enumerate(graph):
            assert len(set(row.tolist())) == k and i not in row
            assert (distances[i, row] <= kth[i]).all()
            nearer = np.flatnonzero(distances[i] < kth[i])
            assert set(nearer.tolist()) <= set(row.tolist())


def test_ties_at_the_kth_distance_are_uniform():
    """One point strictly nearest, five tied (one a duplicate): k = 3 takes two of five."""
    points = np.array([[0, 0], [0.5, 0.1], [1, 0], [-1, 0], [0, 1], [0, -1], [1, 0],
                       [5, 5]], dtype=float)
    tied = [2, 3, 4, 5, 6]
    pairs = {pair: 0 for pair in itertools.combinations(tied, 2)}
    for seed in range(1000):
        row = nearest_neighbors(points, np.random.default_rng(seed), n_neighbors=3)[0]
        assert 1 in row
        pairs[tuple(sorted(set(row.tolist()) - {1}))] += 1
    assert stats.chisquare(list(pairs.values())).pvalue > 0.001


def test_draws_exactly_n_times_k_uniforms():
    points = np.repeat(np.arange(10.0), 3)[:, None] * [1.0, 2.0]  # every point tied
    rng, expected = np.random.default_rng(0), np.random.default_rng(0)
    nearest_neighbors(points, rng, n_neighbors=4)
    expected.random((30, 4))
    assert rng.random() == expected.random()


@pytest.mark.parametrize("bad", [0, -1, 2.5, 3.0, True, "3", None, 50])
def test_bad_n_neighbors(sample, bad):
    y, z, x = sample
    y, z, x = y[:50], z[:50], x[:50]
    with pytest.raises(ValueError, match="n_neighbors"):
        codec(y, z, x, n_neighbors=bad)
    with pytest.raises(ValueError, match="n_neighbors"):
        foci(np.column_stack((x, z)), y, n_neighbors=bad)


def test_device_arrays_name_the_option():
    torch = pytest.importorskip("torch")
    y, z = torch.randn(2, 50, dtype=torch.float64)
    with pytest.raises(NotImplementedError, match="backend='numpy'"):
        codec(y, z, n_neighbors=3, backend="torch")
    assert codec(y, z, n_neighbors=3, backend="numpy").statistic == pytest.approx(
        reference(y.numpy(), z.numpy(), k=3), abs=1e-12)


def test_foci_scores_are_the_k_nearest_coefficient():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 5))
    y = X[:, 1] * X[:, 3] + 0.2 * rng.normal(size=600)
    for select in (foci, lfoci):
        result = select(X, y, n_neighbors=5, standardize=None, random_state=0)
        assert set(result.selected.tolist()) >= {1, 3}
    result = foci(X, y, n_neighbors=5, standardize=None, random_state=0)
    for step in range(result.selected.shape[0]):
        expected = reference(y, X[:, result.selected[:step + 1]], k=5)
        assert result.scores[step] == pytest.approx(expected, abs=1e-12)
    gain = reference(y, X[:, result.selected[1]], X[:, result.selected[:1]], k=5)
    assert result.gains[1] == pytest.approx(gain, abs=1e-12)


def test_selector_and_blanket_take_n_neighbors():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 4))
    y = np.cos(X[:, 0]) + X[:, 2] ** 2 + 0.1 * rng.normal(size=500)
    selector = FOCISelector(n_neighbors=5, random_state=0).fit(X, y)
    assert set(selector.selected_features_.tolist()) >= {0, 2}
    blanket = markov_blanket(X, y, n_neighbors=5, random_state=0).blanket
    np.testing.assert_array_equal(blanket, [0, 2])
    with pytest.raises(ValueError, match="randomized"):
        markov_blanket(X, y, n_neighbors=5, randomized=True)
