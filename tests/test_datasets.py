"""The synthetic data sets of :mod:`chatterjee.datasets`.

* Shapes, dtypes, column layout and the result object of :func:`make_bullseye`.
* Seeding: the same seed gives the same data, different seeds differ, Generators and
  RandomState instances are accepted and advanced.
* Argument validation with clear errors.
* The generative structure: the bullseye's structural equations hold row by row, each
  block of columns is a point on the sphere of its variable's radius, and (with
  CODEC on whole blocks) y depends on the other variables only through its Markov
  blanket {2, 3, 4, 5}; the FOCI vignette's features are found by FOCI; the codec
  example's y is a function of X jointly and of no single column.
* ``import chatterjee.datasets`` loads neither torch nor scikit-learn.

Everything is seeded, so every run draws the same data.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatterjee import codec, foci
from chatterjee.datasets import (
    Bullseye,
    make_bullseye,
    make_codec_example,
    make_foci_vignette,
)

REPO_ROOT = Path(__file__).absolute().parents[1]
N_VARIABLES = 6


def block_norms(data):
    """The Euclidean norm of each variable's block of columns, shape (n, 6)."""
    return np.column_stack(
        [np.linalg.norm(data.X[:, data.groups == k], axis=1) for k in range(N_VARIABLES)]
    )


@pytest.fixture(scope="module")
def bullseye():
    return make_bullseye(n_samples=2000, random_state=0)


# --------------------------------------------------------------------------- bullseye


@pytest.mark.parametrize("n_samples, dim", [(1, 1), (7, 1), (50, 2), (100, 3), (20, 5)])
def test_bullseye_shapes(n_samples, dim):
    data = make_bullseye(n_samples=n_samples, dim=dim, random_state=0)
    assert isinstance(data, Bullseye)
    assert data.X.shape == (n_samples, N_VARIABLES * dim)
    assert data.y.shape == (n_samples,)
    assert data.radii.shape == (n_samples, N_VARIABLES)
    assert data.X.dtype == data.y.dtype == data.radii.dtype == np.float64
    assert data.dim == dim
    np.testing.assert_array_equal(data.groups, np.repeat(np.arange(N_VARIABLES), dim))
    assert data.groups.dtype.kind == "i"
    # Columns of one variable are contiguous: block k is columns k*dim .. (k+1)*dim-1.
    for k in range(N_VARIABLES):
        np.testing.assert_array_equal(np.flatnonzero(data.groups == k),
                                      np.arange(k * dim, (k + 1) * dim))


def test_bullseye_defaults_are_the_papers():
    data = make_bullseye(random_state=0)
    assert data.X.shape == (5000, 18)
    assert data.noise == 0.075
    assert repr(data) == (
        "Bullseye(n_samples=5000, dim=3, noise=0.075, blanket=[2, 3, 4, 5])"
    )


def test_bullseye_blanket_and_roles(bullseye):
    np.testing.assert_array_equal(bullseye.blanket, [2, 3, 4, 5])
    assert bullseye.parents == (2, 4)
    assert bullseye.children == (5,)
    assert bullseye.spouses == (3,)
    assert bullseye.outside == (0, 1)
    roles = bullseye.parents + bullseye.children + bullseye.spouses
    assert sorted(roles) == bullseye.blanket.tolist()
    assert sorted(roles + bullseye.outside) == list(range(N_VARIABLES))


def test_bullseye_unpacks(bullseye):
    X, y, groups, blanket = bullseye
    assert X is bullseye.X and y is bullseye.y
    assert groups is bullseye.groups and blanket is bullseye.blanket
    assert len(bullseye) == 4
    assert bullseye[0] is bullseye.X and bullseye[-1] is bullseye.blanket


def test_bullseye_structural_equations(bullseye):
    """Each equation's residual is U(-eps, eps) noise: within eps, filling the range."""
    r1, r2, r3, r4, r5, r6 = bullseye.radii.T
    y, eps = bullseye.y, bullseye.noise
    residuals = {
        "r2": r2 - r1,
        "r3": r3 - r1,
        "r4": r4 - r3,
        "r5": r5 - (r2 + r4) / 2,
        "y": y - (r3 + r5) / 2,
        "r6": r6 - (r4 + y) / 2,
    }
    for name, residual in residuals.items():
        assert np.abs(residual).max() <= eps * (1 + 1e-12), name
        assert residual.min() < -0.9 * eps and residual.max() > 0.9 * eps, name
        assert abs(residual.mean()) < 0.1 * eps, name
    # The noises are independent of each other.
    correlations = np.corrcoef(np.column_stack(list(residuals.values())), rowvar=False)
    assert np.abs(correlations - np.eye(6)).max() < 0.1


def test_bullseye_root_has_two_rings(bullseye):
    r1 = bullseye.radii[:, 0]
    inner = (r1 >= 0.25) & (r1 <= 0.5)
    outer = (r1 >= 0.75) & (r1 <= 1.0)
    assert np.all(inner | outer)
    assert 0.45 < inner.mean() < 0.55


def test_bullseye_blocks_are_points_on_spheres(bullseye):
    """Block k has norm r_k, and its direction is uniform and carries nothing else."""
    np.testing.assert_allclose(block_norms(bullseye), np.abs(bullseye.radii), rtol=1e-12)
    assert np.all(bullseye.radii > 0)  # noise 0.075: radii stay positive in practice
    directions = bullseye.X / np.repeat(block_norms(bullseye), bullseye.dim, axis=1)
    assert np.abs(directions.mean(axis=0)).max() < 0.06  # uniform on the sphere: mean 0
    # Directions are independent of the radii and of y.
    assert np.abs(np.corrcoef(directions.T, bullseye.y)[-1, :-1]).max() < 0.08


def test_bullseye_dim_one_is_signed_radius():
    data = make_bullseye(n_samples=500, dim=1, random_state=3)
    np.testing.assert_allclose(np.abs(data.X), np.abs(data.radii), rtol=1e-12)
    signs = np.sign(data.X)
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert 0.4 < (signs > 0).mean() < 0.6


def test_bullseye_noise_sets_the_spread():
    narrow = make_bullseye(n_samples=2000, noise=0.025, random_state=1)
    wide = make_bullseye(n_samples=2000, noise=0.125, random_state=1)
    spread = [np.abs(d.radii[:, 1] - d.radii[:, 0]).max() for d in (narrow, wide)]
    assert 0.02 < spread[0] <= 0.025 and 0.1 < spread[1] <= 0.125
    assert wide.noise == 0.125
    # A block's norm is |radius| even when large noise pushes a radius below 0.
    np.testing.assert_allclose(block_norms(wide), np.abs(wide.radii), rtol=1e-12)


def test_bullseye_blanket_explains_y_on_block_norms(bullseye):
    """On the variables' values (each block as a whole, through its norm): y depends
    strongly on the blanket and on the outside variables taken alone, but the outside
    variables add nothing once the blanket is known."""
    values = block_norms(bullseye)
    inside, outside = bullseye.blanket, list(bullseye.outside)
    y = bullseye.y
    assert codec(y, values[:, inside]).statistic > 0.7
    assert codec(y, values[:, outside]).statistic > 0.5
    assert abs(codec(y, values[:, outside], values[:, inside]).statistic) < 0.1


def test_bullseye_blanket_explains_y_on_raw_blocks(bullseye):
    """The same on the raw 3-D blocks: the blanket's 12 columns carry clear dependence,
    and the 6 outside columns add none given them (the estimate goes below 0: the
    extra random directions only spoil the neighbours)."""
    X, y, groups, blanket = bullseye
    inside = np.isin(groups, blanket)
    assert inside.sum() == 12
    assert codec(y, X[:, inside], random_state=0).statistic > 0.1
    assert codec(y, X[:, ~inside], random_state=0).statistic > 0.3
    assert codec(y, X[:, ~inside], X[:, inside], random_state=0).statistic < 0.0


# ------------------------------------------------------------------- FOCI vignette


def test_foci_vignette_shapes_and_formula():
    X, y = make_foci_vignette(n_samples=300, n_features=7, random_state=0)
    assert X.shape == (300, 7) and y.shape == (300,)
    assert X.dtype == y.dtype == np.float64
    np.testing.assert_allclose(
        y, X[:, 0] * X[:, 1] + np.sin(X[:, 0] * X[:, 2]) + X[:, 3] ** 2, rtol=0, atol=0
    )
    assert abs(X.mean()) < 0.05 and abs(X.std() - 1) < 0.05


def test_foci_vignette_defaults():
    X, y = make_foci_vignette(random_state=0)
    assert X.shape == (2000, 100) and y.shape == (2000,)


def test_foci_finds_the_vignettes_features():
    X, y = make_foci_vignette(random_state=0)
    result = foci(X, y, random_state=0)
    assert sorted(result.selected.tolist()) == [0, 1, 2, 3]
    assert result.selected[0] == 3  # X4^2 alone explains the most
    assert result.scores[-1] > 0.7


# -------------------------------------------------------------------- codec example


@pytest.mark.parametrize("n_features", [1, 2, 3])
def test_codec_example_shapes_and_formula(n_features):
    X, y, z = make_codec_example(n_samples=200, n_features=n_features, random_state=0)
    assert X.shape == (200, n_features) and y.shape == z.shape == (200,)
    assert np.all((X >= 0) & (X < 1)) and np.all((y >= 0) & (y < 1))
    np.testing.assert_allclose(y, np.mod(X.sum(axis=1), 1.0), rtol=0, atol=0)


def test_codec_example_man_page_claims():
    X, y, z = make_codec_example(n_samples=2000, random_state=0)
    assert codec(y, X).statistic > 0.85  # y is a function of x
    assert codec(y, X[:, 1], X[:, 0]).statistic > 0.85  # given x1, a function of x2
    for j in range(2):
        assert abs(codec(y, X[:, j]).statistic) < 0.1  # independent of each column
    assert abs(codec(y, z).statistic) < 0.1


def test_codec_example_vignette_three_columns():
    X, y, _ = make_codec_example(n_samples=2000, n_features=3, random_state=0)
    assert abs(codec(y, X[:, :2]).statistic) < 0.1  # independent of any two columns
    assert codec(y, X).statistic > 0.75
    assert codec(y, X[:, :2], X[:, 2]).statistic > 0.75


# ------------------------------------------------------------------------- seeding

GENERATORS = [
    pytest.param(lambda rs: make_bullseye(n_samples=50, random_state=rs), id="bullseye"),
    pytest.param(lambda rs: make_foci_vignette(n_samples=50, n_features=5,
                                               random_state=rs), id="foci_vignette"),
    pytest.param(lambda rs: make_codec_example(n_samples=50, random_state=rs),
                 id="codec_example"),
]


def arrays_of(result):
    return [np.asarray(a) for a in result] + (
        [result.radii] if isinstance(result, Bullseye) else []
    )


def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(arrays_of(a), arrays_of(b)))


@pytest.mark.parametrize("make", GENERATORS)
def test_same_seed_same_data(make):
    assert same(make(7), make(7))
    assert same(make(np.int64(7)), make(7))
    assert same(make(np.random.default_rng(7)), make(7))


@pytest.mark.parametrize("make", GENERATORS)
def test_different_seeds_differ(make):
    assert not np.array_equal(arrays_of(make(1))[0], arrays_of(make(2))[0])
    assert not np.array_equal(arrays_of(make(None))[0], arrays_of(make(None))[0])
    rng = np.random.default_rng(0)
    assert not np.array_equal(arrays_of(make(rng))[0], arrays_of(make(rng))[0])
    legacy = np.random.RandomState(0)
    first, second = make(legacy), make(legacy)
    assert not np.array_equal(arrays_of(first)[0], arrays_of(second)[0])
    assert same(make(np.random.RandomState(0)), first)


@pytest.mark.parametrize("make", GENERATORS)
def test_bad_random_state(make):
    with pytest.raises(TypeError, match="random_state"):
        make("seed")
    with pytest.raises(TypeError, match="random_state"):
        make(True)


# ---------------------------------------------------------------------- validation

BAD_COUNTS = [0, -3, 2.5, 3.0, True, "10", None, np.array([5])]


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_bullseye_rejects_bad_counts(value):
    with pytest.raises(ValueError, match="`n_samples` must be an integer >= 1"):
        make_bullseye(n_samples=value)
    with pytest.raises(ValueError, match="`dim` must be an integer >= 1"):
        make_bullseye(n_samples=10, dim=value)


@pytest.mark.parametrize("value", [0, 0.0, -0.075, np.nan, np.inf, True, "0.075", None])
def test_bullseye_rejects_bad_noise(value):
    with pytest.raises(ValueError, match="`noise` must be a finite number > 0"):
        make_bullseye(n_samples=10, noise=value)


def test_bullseye_accepts_numpy_scalars():
    data = make_bullseye(n_samples=np.int32(10), dim=np.int64(2), noise=np.float32(0.05),
                         random_state=0)
    assert data.X.shape == (10, 12)
    assert isinstance(data.noise, float)


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_foci_vignette_rejects_bad_counts(value):
    with pytest.raises(ValueError, match="`n_samples` must be an integer >= 1"):
        make_foci_vignette(n_samples=value)


@pytest.mark.parametrize("value", [3, 0, 4.0, False])
def test_foci_vignette_needs_four_features(value):
    with pytest.raises(ValueError, match="`n_features` must be an integer >= 4"):
        make_foci_vignette(n_samples=10, n_features=value)


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_codec_example_rejects_bad_counts(value):
    with pytest.raises(ValueError, match="`n_samples` must be an integer >= 1"):
        make_codec_example(n_samples=value)
    with pytest.raises(ValueError, match="`n_features` must be an integer >= 1"):
        make_codec_example(n_samples=10, n_features=value)


# -------------------------------------------------------------------------- import


def test_import_loads_neither_torch_nor_sklearn():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                      env.get("PYTHONPATH")]))
    code = (
        "import json, sys\n"
        "from chatterjee.datasets import make_bullseye\n"
        "make_bullseye(n_samples=10, random_state=0)\n"
        "print(json.dumps([m for m in ('torch', 'sklearn', 'cupy') if m in sys.modules]))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=env, cwd=REPO_ROOT, timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
