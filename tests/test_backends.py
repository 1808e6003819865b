"""The exact nearest-neighbour backend against brute force (scipy's cdist).

Every drawn neighbour must be at the minimal distance, and among several points at
that distance the draw must be uniform over the points (duplicates counted one by
one). Seeds are fixed, so the statistical checks are deterministic.
"""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from chatterjee.backends import nearest_neighbors


def minimal_sets(points):
    """Boolean (n, n): entry [i, j] is True when j != i is at i's minimal distance."""
    distances = cdist(points, points)
    np.fill_diagonal(distances, np.inf)
    return distances == distances.min(axis=1, keepdims=True)


def _neighbors(points, seed, workers=-1):
    result = nearest_neighbors(np.ascontiguousarray(points, dtype=np.float64),
                               np.random.default_rng(seed), workers=workers)
    assert result.shape == (points.shape[0],)
    assert result.dtype == np.int64
    return result


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [2, 3, 4, 10, 300])
def test_continuous_data_matches_brute_force(dim, n):
    rng = np.random.default_rng([dim, n])
    points = rng.normal(size=(n, dim)) * rng.uniform(0.1, 10, size=dim)
    candidates = minimal_sets(points)
    assert (candidates.sum(axis=1) == 1).all()  # tie-free, so the answer is unique
    expected = candidates.argmax(axis=1)
    for seed in (0, 1):
        np.testing.assert_array_equal(_neighbors(points, seed), expected)


def test_large_cloud_with_duplicate_rows():
    rng = np.random.default_rng(99)
    base = rng.normal(size=(1500, 3))
    points = np.vstack((base, base[:300], base[:50]))  # some rows 2 or 3 times
    points = points[rng.permutation(points.shape[0])]
    candidates = minimal_sets(points)
    for seed in range(3):
        chosen = _neighbors(points, seed)
        assert candidates[np.arange(points.shape[0]), chosen].all()


# --- configurations with ties --------------------------------------------------------

def _ring_radius_5():
    """The 12 integer points at distance exactly 5 from the origin."""
    ring = {(a * sa, b * sb) for a, b in ((5, 0), (0, 5), (3, 4), (4, 3))
            for sa in (1, -1) for sb in (1, -1)}
    return np.array(sorted(ring), dtype=float)


def _tied_configurations():
    rng = np.random.default_rng(2024)
    ring = _ring_radius_5()
    mixed_sites = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], dtype=float)
    mixed = np.vstack([
        np.repeat(mixed_sites, [5, 1, 3, 2], axis=0),
        [[1, 1]],                                # lone, 11 points at distance sqrt 2
        [[10, 10], [10, 12], [12, 10]],          # lone points with lone neighbours
        np.repeat([[20.0, 20.0]], 4, axis=0),    # a far group of duplicates
    ])
    yield "1d-integers-with-duplicates", np.repeat(
        np.arange(12.0), rng.integers(1, 4, size=12))[:, None]
    yield "1d-equidistant-groups", np.array([[0.0], [0], [0], [1], [2], [2], [4], [6], [7]])
    yield "1d-spaced-quarters", np.array([[0.25], [0.5], [0.75], [0.75], [1.0], [1.5]])
    yield "2d-integer-grid", np.array(list(itertools.product(range(6), range(5))), float)
    yield "3d-integer-grid", np.array(list(itertools.product(range(4), repeat=3)), float)
    yield "2d-circle-around-centre", np.vstack(([[0.0, 0.0]], ring)) * 0.5
    yield "2d-duplicated-circle-around-centre", np.vstack(
        ([[0.0, 0.0]], np.repeat(ring, np.arange(12) % 3 + 1, axis=0)))
    yield "4d-hypercube-with-centre", np.vstack(
        (np.array(list(itertools.product((0.0, 1.0), repeat=4))), [[0.5] * 4]))
    yield "2d-duplicates-and-singletons", mixed[rng.permutation(mixed.shape[0])]
    yield "2d-integer-cloud", rng.integers(0, 4, size=(60, 2)).astype(float)
    yield "3d-all-identical", np.full((7, 3), 1.5)
    yield "1d-all-identical", np.full((6, 1), -2.0)
    yield "1d-two-identical", np.zeros((2, 1))
    yield "2d-two-identical", np.ones((2, 2))
    yield "2d-two-points", np.array([[0.0, 0.0], [3.0, 4.0]])


TIED = list(_tied_configurations())


@pytest.mark.parametrize("points", [p for _, p in TIED], ids=[name for name, _ in TIED])
def test_tied_neighbors_are_uniform_over_the_minimal_set(points):
    n = points.shape[0]
    candidates = minimal_sets(points)
    sizes = candidates.sum(axis=1)
    n_seeds = 600
    counts = np.zeros((n, n), dtype=np.int64)
    for seed in range(n_seeds):
        chosen = _neighbors(points, seed)
        assert candidates[np.arange(n), chosen].all(), (
            f"seed {seed}: a neighbour outside the minimal-distance set")
        counts[np.arange(n), chosen] += 1

    tied_rows = np.flatnonzero(sizes > 1)
    if n > 2:
        assert tied_rows.size, "configuration without ties"
    chi2_total, dof, pvalues = 0.0, 0, []
    for i in tied_rows:
        observed = counts[i, candidates[i]]
        result = stats.chisquare(observed)  # uniform over the tied points
        chi2_total += result.statistic
        dof += sizes[i] - 1
        pvalues.append(result.pvalue)
    if tied_rows.size:
        assert min(pvalues) > 1e-6
        assert stats.chi2.sf(chi2_total, dof) > 1e-4


def test_ties_reach_beyond_the_first_query():
    """The centre of the duplicated ring has 24 tied points, the hypercube centre 16."""
    sizes = {name: minimal_sets(points).sum(axis=1).max() for name, points in TIED}
    assert sizes["2d-duplicated-circle-around-centre"] == 24
    assert sizes["4d-hypercube-with-centre"] == 16
    assert sizes["3d-integer-grid"] == 6
    assert sizes["2d-duplicates-and-singletons"] == 11


@pytest.mark.parametrize("points", [p for _, p in TIED], ids=[name for name, _ in TIED])
def test_same_seed_same_graph_and_workers_do_not_matter(points):
    first = _neighbors(points, 17, workers=-1)
    np.testing.assert_array_equal(_neighbors(points, 17, workers=-1), first)
    np.testing.assert_array_equal(_neighbors(points, 17, workers=1), first)
    np.testing.assert_array_equal(_neighbors(points, 17, workers=2), first)


@pytest.mark.parametrize("name", ["2d-integer-cloud", "1d-integers-with-duplicates",
                                  "2d-duplicated-circle-around-centre"])
def test_different_seeds_give_different_graphs(name):
    points = dict(TIED)[name]
    graphs = {tuple(_neighbors(points, seed)) for seed in range(10)}
    assert len(graphs) == 10


@pytest.mark.parametrize("dim", [1, 3])
def test_continuous_workers_do_not_matter(dim):
    points = np.random.default_rng(5).normal(size=(3000, dim))
    np.testing.assert_array_equal(_neighbors(points, 0, workers=1),
                                  _neighbors(points, 0, workers=-1))


@pytest.mark.parametrize("points", [p for _, p in TIED[:6]] + [
    np.random.default_rng(0).normal(size=(50, 2))])
def test_draws_exactly_n_uniforms(points):
    """The documented contract: n uniforms are taken, whatever the ties."""
    rng = np.random.default_rng(3)
    nearest_neighbors(points, rng)
    reference = np.random.default_rng(3)
    reference.random(points.shape[0])
    assert rng.random() == reference.random()


@pytest.mark.parametrize("exponent", [-1000, -700, -540, -200, 200, 540, 700, 1000])
@pytest.mark.parametrize("name", ["2d-duplicates-and-singletons", "3d-integer-grid",
                                  "4d-hypercube-with-centre", "1d-equidistant-groups"])
def test_extreme_scales_give_the_same_graph(exponent, name):
    """Scaling by a power of two is exact, so the graph must not change, even where
    squared distances would overflow (coordinates beyond ~1e154) or underflow."""
    points = dict(TIED)[name]
    scaled = np.ldexp(points, exponent)
    assert np.array_equal(np.ldexp(scaled, -exponent), points)  # nothing was rounded
    for seed in range(3):
        np.testing.assert_array_equal(_neighbors(scaled, seed), _neighbors(points, seed))


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e160, 1e300])
def test_extreme_scales_continuous(scale):
    points = np.random.default_rng(8).normal(size=(200, 3))
    np.testing.assert_array_equal(_neighbors(points * scale, 0), _neighbors(points, 0))


@pytest.mark.parametrize("d", [16, 24])
def test_wide_points_take_the_brute_force_with_the_k_d_trees_graph(d, monkeypatch):
    """From 16 dimensions on, distinct points are searched by the exact shortlisting
    brute force (faster than a k-d tree there): the same graph on tie-free data,
    for whole graphs and for the rows a forward step leaves unsure."""
    from chatterjee.backends import array, cpu, neighbors_from_draws, safe_scale

    rng = np.random.default_rng(d)
    points = rng.normal(size=(1500, d)) * np.exp(rng.normal(size=d))
    u = rng.random(1500)
    used = []
    brute = array.nearest_neighbors_brute
    monkeypatch.setattr(array, "nearest_neighbors_brute",
                        lambda *args, **kwargs: used.append(1) or brute(*args, **kwargs))
    found = neighbors_from_draws(points, u)
    assert used
    expected = cpu.nearest_neighbors_kdtree(safe_scale(points), u, workers=1)
    np.testing.assert_array_equal(found, expected)
    distances = cdist(safe_scale(points), safe_scale(points), "sqeuclidean")
    np.fill_diagonal(distances, np.inf)
    np.testing.assert_array_equal(found, distances.argmin(axis=1))
    rows = np.sort(rng.choice(1500, 200, replace=False))
    np.testing.assert_array_equal(cpu.nearest_neighbors_cpu(safe_scale(points), u, rows=rows),
                                  expected[rows])


def test_brute_force_draws_equidistant_neighbours_uniformly():
    """Distinct points with several neighbours at the minimal distance (a lattice in
    16 dimensions): each is drawn with equal frequency over the draws."""
    from chatterjee.backends import cpu

    points = np.vstack([np.zeros(16), np.eye(16), -np.eye(16)[:3]])   # origin: 19 tied
    counts = np.zeros(points.shape[0], dtype=int)
    rng = np.random.default_rng(0)
    for _ in range(1900):
        counts[cpu.nearest_neighbors_cpu(points, rng.random(points.shape[0]))[0]] += 1
    assert counts[0] == 0 and counts[1:].sum() == 1900
    assert stats.chisquare(counts[1:]).pvalue > 1e-3


def _cells_one_at_a_time(points, size):
    """The definition of ``local_cells``: split one cell at a time, at the median."""
    cell = np.zeros(points.shape[0], dtype=np.int64)
    pending, n_cells = [np.arange(points.shape[0])], 0
    while pending:
        members = pending.pop()
        column = points[members][:, int(np.argmax(np.ptp(points[members], axis=0)))]
        median = np.median(column)
        lower = column < median
        if not lower.any():
            lower = column <= median
        if members.shape[0] < 2 * size or lower.all():
            cell[members] = n_cells
            n_cells += 1
        else:
            pending += [members[lower], members[~lower]]
    return cell


@pytest.mark.parametrize("kind", ["continuous", "rounded", "discrete"])
def test_local_cells_split_at_the_medians(kind):
    from chatterjee.backends import local_cells

    rng = np.random.default_rng(7)
    for _ in range(40):
        n, d, size = int(rng.integers(1, 300)), int(rng.integers(1, 5)), int(rng.integers(1, 15))
        points = rng.normal(size=(n, d))
        if kind == "rounded":
            points = np.round(points, 1)
        elif kind == "discrete":
            points = rng.integers(0, 3, size=(n, d)).astype(float)
        cells = local_cells(points, size)
        expected = _cells_one_at_a_time(points, size)
        pairs = set(zip(cells.tolist(), expected.tolist()))
        assert len(pairs) == len(set(cells.tolist())) == len(set(expected.tolist()))
        assert sorted(set(cells.tolist())) == list(range(len(pairs)))
        if kind == "continuous":
            sizes = np.bincount(cells)
            assert sizes.max() <= max(2 * size - 1, 1) and (n < 2 * size or sizes.min() >= size)


def test_shared_search_lists_the_nearest_base_points_of_the_resampler():
    from chatterjee.backends.cpu import SharedBaseSearch, nearest_including_self

    rng = np.random.default_rng(3)
    base = rng.normal(size=(500, 3))
    search = SharedBaseSearch(base, workers=1, n_neighbors=5)
    assert search.nearest_in_base(8) is None              # lists not built yet
    for _ in range(2):
        search.neighbors(rng.normal(size=500), rng.random((500, 5)))
    np.testing.assert_array_equal(search.nearest_in_base(8),
                                  nearest_including_self(base, 8, workers=1))
    assert search.nearest_in_base(10_000) is None
