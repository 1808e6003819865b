"""The array backends (PyTorch on the CPU here; CuPy where a GPU is present).

On tie-free data the device search must give the NumPy backend's graph, hence its
statistics to 1e-12 and FOCI's selections; on tied data every drawn neighbour must be
at the minimal distance, drawn uniformly, and where the two backends order tied
points alike (one dimension, duplicated rows) the graphs must be the same.

``CHATTERJEE_TEST_DEVICE=cuda`` runs the PyTorch tests on a GPU instead (the tests of
CPU tensors under ``backend="auto"`` keep their CPU tensors).
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial.distance import cdist

from chatterjee import (
    CodecResult,
    FociResult,
    FOCISelector,
    LFOCISelector,
    codec,
    foci,
    lcodec,
    lfoci,
)
from chatterjee._validation import check_backend
from chatterjee.backends import array as device_search
from chatterjee.backends import nearest_neighbors, set_memory_limit

torch = pytest.importorskip("torch")
DEVICE = os.environ.get("CHATTERJEE_TEST_DEVICE", "cpu")


def tensor(values):
    return torch.asarray(values, device=DEVICE)


def host(values):
    return values.cpu().numpy()


def as_torch(*values):
    return [None if v is None else tensor(v) for v in values]


def minimal_sets(points):
    """Boolean (n, n): entry [i, j] is True when j != i is at i's minimal distance."""
    distances = cdist(points, points, "sqeuclidean")
    np.fill_diagonal(distances, np.inf)
    return distances == distances.min(axis=1, keepdims=True)


def device_graph(points, seed):
    graph = nearest_neighbors(tensor(points), np.random.default_rng(seed))
    assert isinstance(graph, torch.Tensor) and graph.dtype == torch.int64
    assert graph.device == tensor([0]).device
    return host(graph)


def cpu_graph(points, seed):
    return nearest_neighbors(np.ascontiguousarray(points, dtype=np.float64),
                             np.random.default_rng(seed))


@pytest.fixture
def small_blocks():
    """A limit that forces many brute-force blocks; the default is restored after."""
    previous = set_memory_limit(1 << 14)
    yield
    set_memory_limit(previous)


# --- the search ------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_tie_free_graph_equals_cpu(dim, small_blocks):
    points = np.random.default_rng(dim).normal(size=(300, dim))
    np.testing.assert_array_equal(device_graph(points, 0), cpu_graph(points, 0))


@pytest.mark.parametrize("dim", [1, 3])
def test_duplicated_rows_give_the_cpu_graph(dim):
    """Ties among duplicates only: both backends draw among the copies in index order."""
    points = np.random.default_rng(1).integers(0, 2, size=(200, dim)).astype(float)
    for seed in range(3):
        np.testing.assert_array_equal(device_graph(points, seed), cpu_graph(points, seed))


def test_one_dimensional_ties_give_the_cpu_graph():
    values = np.random.default_rng(2).integers(0, 40, size=(500, 1)) * 0.5
    for seed in range(3):
        np.testing.assert_array_equal(device_graph(values, seed), cpu_graph(values, seed))


def test_equidistant_points_draw_within_the_tie_set(small_blocks):
    grid = np.random.default_rng(3).integers(0, 6, size=(400, 2)).astype(float)
    grid = np.unique(grid, axis=0)  # distinct points with many equidistant neighbours
    allowed = minimal_sets(grid)
    for seed in range(5):
        chosen = device_graph(grid, seed)
        assert allowed[np.arange(grid.shape[0]), chosen].all()


def test_tie_breaking_is_uniform():
    """The centre of a plus sign has four neighbours at distance 1: each drawn ~1/4."""
    plus = np.array([[0.0, 0.0], [1, 0], [-1, 0], [0, 1], [0, -1]])
    counts = np.bincount([device_graph(plus, seed)[0] for seed in range(800)],
                         minlength=5)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:]).pvalue > 1e-3


def test_listed_base_search_matches_brute_force(small_blocks):
    """Joint spaces up to four dimensions go to the grid, wider ones to the lists."""
    rng = np.random.default_rng(4)
    for base, block in [
        (rng.normal(size=(400, 1)), rng.normal(size=(400, 1))),
        (rng.normal(size=(400, 2)), rng.normal(size=(400, 2))),
        (rng.integers(0, 3, size=(400, 2)) * 1.0, rng.integers(0, 3, size=(400, 1)) * 1.0),
        (rng.normal(size=(400, 4)), rng.normal(size=(400, 1))),
        (rng.normal(size=(400, 3)), rng.normal(size=(400, 3))),
        (rng.integers(0, 3, size=(400, 4)) * 1.0, rng.integers(0, 3, size=(400, 1)) * 1.0),
    ]:
        joint = np.hstack((base, block))
        allowed = minimal_sets(joint)
        search = device_search.ListedBaseSearch(tensor(base))
        u = rng.random(400)
        chosen = host(search.neighbors(tensor(block), u))
        assert allowed[np.arange(400), chosen].all()
        brute = device_search.nearest_neighbors_brute(tensor(joint), tensor(u))
        np.testing.assert_array_equal(chosen, host(brute))
        if allowed.sum(axis=1).max() == 1:
            np.testing.assert_array_equal(chosen, cpu_graph(joint, 0))


# --- the grid search (two to four dimensions) ----------------------------------------

def _clouds():
    rng = np.random.default_rng(6)
    normal = rng.normal(size=(2000, 3))
    return {
        "normal 2-d": rng.normal(size=(3000, 2)),
        "normal 4-d": rng.normal(size=(2000, 4)),
        "cauchy": rng.standard_cauchy(size=(2000, 3)),
        "far outliers": np.vstack((normal[:1950], 1e6 * normal[1950:])),
        "skewed": rng.exponential(size=(2000, 3)) ** 3,
        "lattice with ties": rng.integers(0, 4, size=(2000, 2)) * 0.25,
        "duplicated rows": np.vstack((normal[:1000], normal[:1000])),
        "a constant column": np.column_stack((normal[:, :2], np.full(2000, 3.0))),
        "far clusters": np.vstack((normal[:1900], 1e4 + 1e-3 * normal[1900:])),
        "one coordinate tiny": normal * [1.0, 1e-9, 1.0],
        "sparse columns": normal * (rng.random((2000, 3)) < [0.004, 0.003, 1.0]),
    }


CLOUDS = _clouds()


def reference_graph(points, u):
    """The rule, spelled out in NumPy: distances summed column by column, the
    floor(u * ties)-th point at the minimum in index order."""
    distances = sum((points[:, None, c] - points[None, :, c]) ** 2
                    for c in range(points.shape[1]))
    np.fill_diagonal(distances, np.inf)
    graph = np.empty(len(points), dtype=np.int64)
    for i, row in enumerate(distances):
        tied = np.flatnonzero(row == row.min())
        graph[i] = tied[min(int(u[i] * len(tied)), len(tied) - 1)]
    return graph


def grid_and_brute(points, seed):
    """The grid's and the brute force's graphs, both checked against the reference."""
    u = np.random.default_rng(seed).random(points.shape[0])
    expected = reference_graph(points, u)
    graphs = (host(device_search.nearest_neighbors_grid(tensor(points), tensor(u))),
              host(device_search.nearest_neighbors_brute(tensor(points), tensor(u))))
    for graph in graphs:
        np.testing.assert_array_equal(graph, expected)
    return graphs


@pytest.fixture
def grid_blocks():
    """A limit that splits the grid's rows into many blocks and pieces."""
    previous = set_memory_limit(1 << 18)
    yield
    set_memory_limit(previous)


@pytest.mark.parametrize("name", CLOUDS)
def test_grid_gives_the_brute_force_graph(name, grid_blocks):
    """Same distances, same tie rule: the same graph, ties included, on hard shapes."""
    grid, brute = grid_and_brute(CLOUDS[name], 0)
    np.testing.assert_array_equal(grid, brute)


@pytest.mark.parametrize("name", ["cauchy", "far clusters", "lattice with ties"])
@pytest.mark.parametrize("table", [True, False])
def test_grid_levels_and_cell_lookups(name, table, monkeypatch):
    """Every row searched by the grid (coarser and coarser until all are certified),
    cells found in the table or by binary search."""
    monkeypatch.setattr(device_search, "_BRUTE_ROWS", 0)
    if not table:
        monkeypatch.setattr(device_search, "_DENSE_CELLS", 0)
    brute_calls = []
    brute = device_search.nearest_neighbors_brute
    monkeypatch.setattr(device_search, "nearest_neighbors_brute",
                        lambda *args, **kwargs: brute_calls.append(1) or brute(*args, **kwargs))
    points = tensor(CLOUDS[name])
    u = tensor(np.random.default_rng(1).random(points.shape[0]))
    grid = host(device_search.nearest_neighbors_grid(points, u))
    assert not brute_calls
    np.testing.assert_array_equal(grid, host(brute(points, u)))


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    lattice=hnp.arrays(np.int8, st.tuples(st.integers(70, 240), st.integers(2, 4)),
                       elements=st.integers(-3, 3)),
    scale=st.sampled_from([1.0, 0.1, 3e5, 1e-7]),
    seed=st.integers(0, 2**16),
)
def test_grid_on_tied_lattices_property(lattice, scale, seed):
    """Points on a small lattice: many equidistant neighbours and duplicated rows."""
    grid, brute = grid_and_brute(lattice * scale + 0.5, seed)
    np.testing.assert_array_equal(grid, brute)


# --- the brute force (a matrix product shortlists, exact sums decide) -----------------

def _wide_clouds():
    rng = np.random.default_rng(7)
    normal = rng.normal(size=(600, 12))
    return {
        "normal 8-d": rng.normal(size=(600, 8)),
        "normal 64-d": rng.normal(size=(600, 64)),
        "far from the origin": 1e6 + normal,
        "binary lattice": rng.integers(0, 2, size=(600, 10)) * 1.0,
        "duplicated rows": np.repeat(normal[:200], 3, axis=0),
        "tiny spread": 1.0 + 1e-12 * normal,
        "mixed scales": normal * np.logspace(-8, 8, 12),
        "cauchy": rng.standard_cauchy(size=(600, 9)),
        "near ties": np.vstack((normal[:300], normal[:300] * (1 + 1e-15))),
    }


WIDE_CLOUDS = _wide_clouds()


@pytest.mark.parametrize("name", WIDE_CLOUDS)
def test_brute_force_gives_the_reference_graph(name, small_blocks):
    points = WIDE_CLOUDS[name]
    u = np.random.default_rng(2).random(points.shape[0])
    graph = device_search.nearest_neighbors_brute(tensor(points), tensor(u))
    np.testing.assert_array_equal(host(graph), reference_graph(points, u))


def test_brute_force_of_some_rows():
    points = WIDE_CLOUDS["binary lattice"]
    u = np.random.default_rng(3).random(points.shape[0])
    rows = np.array([5, 0, 599, 17])
    graph = device_search.nearest_neighbors_brute(tensor(points), tensor(u),
                                                  rows=tensor(rows))
    np.testing.assert_array_equal(host(graph), reference_graph(points, u)[rows])


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    lattice=hnp.arrays(np.int8, st.tuples(st.integers(2, 120), st.integers(2, 12)),
                       elements=st.integers(-2, 2)),
    scale=st.sampled_from([1.0, 1e-5, 3e7]),
    offset=st.sampled_from([0.0, 1e4]),
    seed=st.integers(0, 2**16),
)
def test_brute_force_on_tied_lattices_property(lattice, scale, offset, seed):
    points = lattice * scale + offset
    u = np.random.default_rng(seed).random(points.shape[0])
    graph = device_search.nearest_neighbors_brute(tensor(points), tensor(u))
    np.testing.assert_array_equal(host(graph), reference_graph(points, u))


def test_huge_and_tiny_coordinates_keep_their_graph():
    points = np.random.default_rng(5).normal(size=(100, 3))
    for scale in (1e200, 1e-200):
        np.testing.assert_array_equal(device_graph(points * scale, 0),
                                      cpu_graph(points, 0))


def test_memory_limit_is_checked():
    with pytest.raises(ValueError, match="positive int"):
        set_memory_limit(0)


# --- the statistics ----------------------------------------------------------------------

def _codec_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    z = rng.normal(size=n)
    y = x[:, 0] * x[:, 1] + np.sin(z) + 0.3 * rng.normal(size=n)
    return y, z, x


@pytest.mark.parametrize("conditional", [False, True])
def test_codec_on_torch_equals_numpy(conditional):
    y, z, x = _codec_data()
    x = x if conditional else None
    expected = codec(y, z, x, random_state=0)
    result = codec(*as_torch(y, z, x), backend="torch", random_state=0)
    assert isinstance(result, CodecResult)
    assert isinstance(result.statistic, float)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.n_samples == expected.n_samples


def test_codec_multidimensional_z_and_permutation_pvalue():
    y, _, x = _codec_data()
    expected = codec(y, x, method="permutation", random_state=1)
    result = codec(*as_torch(y, x), backend="torch", method="permutation", random_state=1)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.pvalue == expected.pvalue


def test_codec_tied_data_agree_in_distribution():
    rng = np.random.default_rng(6)
    z = rng.integers(0, 4, size=(300, 2)).astype(float)
    y = z.sum(axis=1) + rng.integers(0, 2, size=300)
    z[:, 1] += rng.integers(0, 2, size=300) * 0.5
    on_numpy = [codec(y, z, random_state=s).statistic for s in range(30)]
    on_torch = [codec(*as_torch(y, z), backend="torch", random_state=s).statistic for s in range(30)]
    assert stats.mannwhitneyu(on_numpy, on_torch).pvalue > 1e-3


def test_float32_tensors_are_computed_in_float64():
    y, z, x = _codec_data()
    y32, z32, x32 = (v.astype(np.float32) for v in (y, z, x))
    expected = codec(y32, z32, x32, random_state=0).statistic
    assert codec(*as_torch(y32, z32, x32), backend="torch", random_state=0).statistic == pytest.approx(
        expected, abs=1e-12)


def test_nan_policy_with_tensors():
    y, z, x = _codec_data()
    y = y.copy()
    y[[3, 50]] = np.nan
    assert np.isnan(codec(*as_torch(y, z, x), backend="torch").statistic)
    with pytest.raises(ValueError, match="`y` contains NaN"):
        codec(*as_torch(y, z, x), backend="torch", nan_policy="raise")
    omitted = codec(*as_torch(y, z, x), backend="torch", nan_policy="omit", random_state=0)
    assert omitted.n_samples == 398
    assert omitted.statistic == pytest.approx(
        codec(y, z, x, nan_policy="omit", random_state=0).statistic, abs=1e-12)


def test_lcodec_on_torch_equals_numpy():
    rng = np.random.default_rng(7)
    z = rng.integers(0, 5, size=(300, 2))
    y = z[:, 0] + rng.integers(0, 3, size=300)
    expected = lcodec(y, z[:, 1], z[:, 0], n_repeats=3, random_state=0)
    result = lcodec(*as_torch(y, z[:, 1], z[:, 0]), backend="torch", n_repeats=3, random_state=0)
    np.testing.assert_allclose(result.statistics, expected.statistics, atol=1e-12)


def test_backend_argument():
    y, z, x = _codec_data()
    expected = codec(y, z, x, random_state=0).statistic
    assert codec(y, z, x, backend="torch", random_state=0).statistic == pytest.approx(
        expected, abs=1e-12)
    assert codec(*as_torch(y, z, x), backend="numpy", random_state=0).statistic == expected
    with pytest.raises(ValueError, match="`backend` must be one of"):
        codec(y, z, backend="jax")


def test_auto_reads_cpu_tensors_with_numpy(monkeypatch):
    """CPU tensors take the (faster) NumPy search under 'auto'; the device search is
    never entered."""
    y, z, x = _codec_data()
    expected = codec(y, z, x, random_state=0).statistic

    def refuse(*args, **kwargs):
        raise AssertionError("the device search was used for CPU tensors")
    monkeypatch.setattr(device_search, "nearest_neighbors", refuse)
    monkeypatch.setattr(device_search, "ListedBaseSearch", refuse)
    assert check_backend("auto", *as_torch(y, z, x)) == "numpy"
    assert codec(*as_torch(y, z, x), random_state=0).statistic == expected
    X, target = _foci_data(n=300, p=5)
    reduced = LFOCISelector(random_state=0).fit(*as_torch(X, target)).transform(
        torch.asarray(X))
    assert isinstance(reduced, np.ndarray)


def test_complex_tensor_is_rejected():
    with pytest.raises(TypeError, match="`z` is complex"):
        codec(torch.zeros(5), torch.zeros(5, dtype=torch.complex128))


# --- selection -----------------------------------------------------------------------------

def _foci_data(n=400, p=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 0] * X[:, 2]) + X[:, 3] ** 2
    return X, y


@pytest.mark.parametrize("select", [foci, lfoci])
def test_foci_on_torch_makes_the_same_selection(select, small_blocks):
    X, y = _foci_data()
    expected = select(X, y, random_state=0, stop=False, max_features=5)
    result = select(*as_torch(X, y), backend="torch", random_state=0, stop=False, max_features=5)
    assert isinstance(result, FociResult)
    np.testing.assert_array_equal(result.selected, expected.selected)
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-12)
    np.testing.assert_allclose(result.gains, expected.gains, atol=1e-12)


def test_foci_with_groups_and_ties_on_torch():
    rng = np.random.default_rng(8)
    X = rng.integers(0, 3, size=(300, 6))
    y = X[:, 2] + 2 * X[:, 5] + rng.integers(0, 2, size=300)
    groups = [0, 0, 1, 1, 2, 2]
    result = foci(*as_torch(X, y), backend="torch", groups=groups, random_state=0)
    assert result.selected[0] == 2 and set(result.selected) <= {0, 1, 2}


@pytest.mark.parametrize("Selector", [FOCISelector, LFOCISelector])
def test_selectors_take_tensors(Selector):
    X, y = _foci_data(n=300, p=5)
    expected = Selector(random_state=0).fit(X, y)
    selector = Selector(random_state=0, backend="torch").fit(*as_torch(X, y))
    np.testing.assert_array_equal(selector.support_, expected.support_)
    assert selector.n_features_in_ == 5
    reduced = selector.transform(tensor(X))
    assert isinstance(reduced, torch.Tensor) and reduced.device == tensor([0]).device
    np.testing.assert_array_equal(host(reduced), expected.transform(X))
    with pytest.raises(ValueError, match="expected 5 features"):
        selector.transform(torch.zeros(3, 4))


# --- CuPy, on a GPU --------------------------------------------------------------------------

@pytest.fixture
def cupy():
    module = pytest.importorskip("cupy")
    try:
        if module.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no CUDA device")
    except module.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    return module


@pytest.mark.gpu
def test_cupy_codec_and_foci_equal_numpy(cupy):
    y, z, x = _codec_data()
    result = codec(cupy.asarray(y), cupy.asarray(z), cupy.asarray(x), random_state=0)
    assert result.statistic == pytest.approx(
        codec(y, z, x, random_state=0).statistic, abs=1e-12)
    X, y = _foci_data()
    np.testing.assert_array_equal(
        foci(cupy.asarray(X), cupy.asarray(y), random_state=0).selected,
        foci(X, y, random_state=0).selected,
    )


@pytest.mark.gpu
def test_cuda_tensors_stay_on_the_device():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    points = np.random.default_rng(9).normal(size=(500, 3))
    graph = nearest_neighbors(torch.asarray(points, device="cuda"),
                              np.random.default_rng(0))
    assert graph.is_cuda
    np.testing.assert_array_equal(graph.cpu().numpy(), cpu_graph(points, 0))
