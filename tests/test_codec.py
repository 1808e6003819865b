"""Properties of CODEC T_n(Y, Z | X) and its permutation test."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from chatterjee import ConstantInputWarning, codec

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def same(a, b):
    """Equal, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _statistic(y, z, x=None, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        return codec(y, z, x, random_state=seed).statistic


@st.composite
def tied_data(draw, conditional=None):
    """Small integer data: ties in y, duplicate and equidistant points in z and x."""
    n = draw(st.integers(3, 40))
    q = draw(st.integers(1, 3))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(-40, 40))) / 4.0
    z = draw(hnp.arrays(np.int64, (n, q), elements=st.integers(-3, 3))).astype(float)
    if conditional is None:
        conditional = draw(st.booleans())
    x = None
    if conditional:
        p = draw(st.integers(1, 2))
        x = draw(hnp.arrays(np.int64, (n, p), elements=st.integers(-3, 3))).astype(float)
    return y, z, x, draw(st.integers(0, 2**32 - 1))


@st.composite
def continuous_data(draw):
    """Tie-free z and x (Gaussian), y continuous or discrete (ties in y are harmless)."""
    n = draw(st.integers(3, 120))
    q = draw(st.integers(1, 3))
    p = draw(st.integers(0, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    z = rng.normal(size=(n, q))
    x = rng.normal(size=(n, p)) if p else None
    y = z[:, 0] + rng.normal(size=n) + (x[:, 0] if p else 0)
    if draw(st.booleans()):
        y = np.round(y)
    return y, z, x


MONOTONE = {
    "exp": np.exp,
    "cubic": lambda v: v**3 + v,
    "affine": lambda v: 3 * v - 7,
    "rank": lambda v: stats.rankdata(v, method="dense"),
    "arctan": np.arctan,
}


@SETTINGS
@given(data=tied_data(), transform=st.sampled_from(sorted(MONOTONE)))
def test_invariant_under_increasing_transform_of_y(data, transform):
    """T depends on y only through its ranks: exact equality, ties anywhere."""
    y, z, x, seed = data
    before = _statistic(y, z, x, seed)
    after = _statistic(MONOTONE[transform](y), z, x, seed)
    assert same(before, after)


@SETTINGS
@given(data=tied_data())
def test_invariant_under_isotropic_scaling_of_features(data):
    """Scaling all features by a power of two (and shifting) keeps every distance
    tie: same graph, same value."""
    y, z, x, seed = data
    before = _statistic(y, z, x, seed)
    after = _statistic(y, 2 * z + 1, None if x is None else 2 * x - 3, seed)
    assert same(before, after)
    for exponent in (-700, 700):  # squared distances would underflow / overflow
        after = _statistic(y, np.ldexp(z, exponent),
                           None if x is None else np.ldexp(x, exponent), seed)
        assert same(before, after)


@SETTINGS
@given(data=continuous_data(), perm_seed=st.integers(0, 2**32 - 1))
def test_row_permutation_on_tie_free_data(data, perm_seed):
    y, z, x = data
    perm = np.random.default_rng(perm_seed).permutation(y.size)
    before = _statistic(y, z, x, seed=5)
    after = _statistic(y[perm], z[perm], None if x is None else x[perm], seed=5)
    if math.isnan(before):
        assert math.isnan(after)
    else:
        assert after == pytest.approx(before, rel=0, abs=1e-12)
    # Tie-free features: the seed does not matter either.
    assert same(_statistic(y, z, x, seed=6), before)


@SETTINGS
@given(data=tied_data())
def test_at_most_one(data):
    y, z, x, seed = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        statistic = codec(y, z, x, random_state=seed).statistic
    if math.isnan(statistic):
        # Only a response that is constant (given x) leaves T undefined.
        assert any(issubclass(w.category, ConstantInputWarning) for w in caught)
        if x is None:
            assert np.unique(y).size == 1
    else:
        assert statistic <= 1 + 1e-12
        assert not caught


@SETTINGS
@given(data=tied_data())
def test_same_seed_same_value(data):
    y, z, x, seed = data
    first = _statistic(y, z, x, seed)
    assert same(first, _statistic(y, z, x, seed))
    assert same(first, _statistic(y, z, x, np.random.default_rng(seed)))


def test_different_seeds_differ_with_ties():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 4, size=(300, 2)).astype(float)
    y = z.sum(axis=1) + rng.normal(size=300)
    x = rng.integers(0, 3, size=300).astype(float)
    assert len({_statistic(y, z, None, s) for s in range(10)}) == 10
    assert len({_statistic(y, z, x, s) for s in range(10)}) == 10


def test_tie_free_values_do_not_depend_on_seed():
    rng = np.random.default_rng(1)
    x, z = rng.normal(size=(2, 200))
    y = x * z + rng.normal(size=200)
    assert len({_statistic(y, z, None, s) for s in range(5)}) == 1
    assert len({_statistic(y, z, x, s) for s in range(5)}) == 1


FUNCTIONS = {  # f, dimension of z, lower bound for T at n = 2000
    "square": (lambda z: z[:, 0] ** 2, 1, 0.9),
    "sine": (lambda z: np.sin(3 * z[:, 0]), 1, 0.9),
    "product-2d": (lambda z: z[:, 0] * z[:, 1], 2, 0.9),
    "norm-3d": (lambda z: np.linalg.norm(z, axis=1), 3, 0.8),  # slower in 3-D
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_noiseless_function_tends_to_one(name):
    f, q, bound = FUNCTIONS[name]
    means = []
    for n in (50, 2000):
        values = [_statistic(f(z), z) for z in
                  (np.random.default_rng([n, s]).normal(size=(n, q)) for s in range(3))]
        means.append(np.mean(values))
    assert means[1] > bound
    assert means[1] > means[0] + 0.02


def test_noiseless_conditional_tends_to_one():
    values = {}
    for n in (50, 2000):
        rng = np.random.default_rng(n)
        x, z = rng.normal(size=(2, n))
        values[n] = _statistic(x + z, z, x)
        # Given x, z is all that is missing; without z there is nothing to add.
        assert _statistic(x + z, x, x) == pytest.approx(0.0, abs=1e-12)
    assert values[2000] > 0.9
    assert values[2000] > values[50]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_independence_tends_to_zero(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    y = rng.normal(size=n)
    z = rng.normal(size=(n, 2))
    x = rng.normal(size=n)
    assert abs(_statistic(y, z)) < 0.06
    # Y depends on X only: T(Y, Z | X) is near zero while T(Y, Z) is not.
    y_from_x = x + 0.3 * rng.normal(size=n)
    z_from_x = x + 0.3 * rng.normal(size=n)
    assert abs(_statistic(y_from_x, z_from_x, x)) < 0.1
    assert _statistic(y_from_x, z_from_x) > 0.3


# --- permutation p-values ------------------------------------------------------------

def _method(seed, n_resamples=199):
    return stats.PermutationMethod(n_resamples=n_resamples, rng=np.random.default_rng(seed))


def test_permutation_small_under_dependence():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 2))
    y = z[:, 0] + 0.5 * rng.normal(size=200)
    result = codec(y, z, method=_method(0, 999), random_state=0)
    assert result.pvalue == pytest.approx(1 / 1000)
    assert result.statistic == codec(y, z, random_state=0).statistic
    assert result.null_distribution.shape == (999,)
    assert result.null_distribution.max() < result.statistic


def test_permutation_roughly_uniform_under_independence():
    pvalues = []
    for seed in range(40):
        rng = np.random.default_rng([7, seed])
        y = np.round(rng.normal(size=80))  # ties in y too
        z = rng.normal(size=(80, 2))
        pvalues.append(codec(y, z, method=_method(seed), random_state=seed).pvalue)
    pvalues = np.array(pvalues)
    assert ((pvalues > 0) & (pvalues <= 1)).all()
    assert stats.kstest(pvalues, "uniform").pvalue > 1e-3
    assert 0.3 < pvalues.mean() < 0.7


@pytest.mark.parametrize("seed", [0, 1])
def test_permutation_matches_brute_force(seed):
    """Same permutations as scipy.stats.permutation_test recomputing codec each time."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 5, size=(50, 2)).astype(float)  # ties: the graph is shared
    y = np.round(z[:, 0] + rng.normal(size=50))
    ours = codec(y, z, method=_method(seed), random_state=seed)
    brute = stats.permutation_test(
        (y,), lambda yy: codec(yy, z, random_state=seed).statistic,
        permutation_type="pairings", alternative="greater", vectorized=False,
        n_resamples=199, rng=np.random.default_rng(seed))
    assert ours.statistic == pytest.approx(brute.statistic, abs=1e-12)
    np.testing.assert_allclose(ours.null_distribution, brute.null_distribution,
                               rtol=0, atol=1e-12)
    assert ours.pvalue == brute.pvalue


def test_permutation_string_method_is_reproducible():
    rng = np.random.default_rng(4)
    z = rng.normal(size=100)
    y = 0.3 * z + rng.normal(size=100)
    first = codec(y, z, method="permutation", random_state=9)
    again = codec(y, z, method="permutation", random_state=9)
    assert first.null_distribution.shape == (9999,)
    assert first.pvalue == again.pvalue
    assert 0 < first.pvalue < 1


def test_no_pvalue_by_default():
    rng = np.random.default_rng(5)
    z = rng.normal(size=50)
    result = codec(z + rng.normal(size=50), z)
    assert math.isnan(result.pvalue)
    assert result.null_distribution is None
    assert result.n_samples == 50


# --- the conditional permutation test ---------------------------------------------

def _conditional_null_by_brute_force(y, z, x, n_resamples, rng):
    """The conditional test written out: per-point least squares over the k nearest
    points, each residual ranked among those of its 20 nearest neighbours (ties
    split by a uniform), permutations of the ranks, nearest neighbours from all
    pairwise distances, T from its formula. Returns T of the ranks and of each
    permutation."""
    from scipy.spatial.distance import cdist
    from scipy.stats import rankdata

    n, p = x.shape
    k = max(8, 2 * (p + 1))
    order = np.argsort(cdist(x, x), axis=1, kind="stable")
    near = order[:, :k]
    fitted = np.empty(n)
    for i in range(n):
        design = np.column_stack([np.ones(k), x[near[i]] - x[i]])
        fitted[i] = np.linalg.lstsq(design, z[near[i]], rcond=None)[0][0]
    residuals = z - fitted
    around = residuals[order[:, 1:21]]
    below = (around < residuals[:, None]).sum(axis=1)
    tied = (around == residuals[:, None]).sum(axis=1)
    ranks = (below + rng.random((n, 1))[:, 0] * (tied + 1)) / 21
    R = rankdata(y, "max")

    def nearest(points):
        distances = cdist(points, points)
        np.fill_diagonal(distances, np.inf)
        return distances.argmin(axis=1)

    N = nearest(x)

    def statistic(values):
        rng.random(n)                         # the joint graph's tie-breaking draws
        M = nearest(np.column_stack([x, values]))
        numerator = (np.minimum(R, R[M]) - np.minimum(R, R[N])).sum()
        return numerator / (R - np.minimum(R, R[N])).sum()

    observed = statistic(ranks)
    return observed, np.array([statistic(ranks[rng.permutation(n)])
                               for _ in range(n_resamples)])


def test_conditional_pvalue_equals_a_brute_force_resampling():
    from scipy.stats import PermutationMethod

    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 2))
    z = np.cos(x[:, 0]) + 0.5 * rng.normal(size=60)
    y = np.sin(2 * x[:, 0]) + x[:, 1] + 0.5 * rng.normal(size=60)
    result = codec(y, z, x, method=PermutationMethod(n_resamples=30), random_state=3)
    rng = np.random.default_rng(3)
    rng.random(60), rng.random(60)            # the observed graphs' draws (N, then M)
    observed, null = _conditional_null_by_brute_force(y, z, x, 30, rng)
    np.testing.assert_allclose(result.null_distribution, null, rtol=1e-12)
    assert result.pvalue == (1 + np.count_nonzero(null >= observed - 1e-12)) / 31
    again = codec(y, z, x, method=PermutationMethod(n_resamples=30), random_state=3)
    assert again.pvalue == result.pvalue


def test_conditional_ranks_never_rank_a_point_among_its_duplicates_as_itself():
    """With repeated rows of X a k-d tree may list a duplicate before the point
    itself; a residual is still ranked among other points only."""
    from chatterjee.codec import ConditionalResampler

    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(300, 2)).astype(float)
    resampler = ConditionalResampler(x, 300, workers=1)
    ranks = resampler.conditional_ranks(rng.normal(size=(300, 1)), rng)
    assert not (resampler._ranked == np.arange(300)[:, None]).any()
    assert ((0 <= ranks) & (ranks <= 1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["smooth", "sharp", "ancestor"])
def test_conditional_test_is_calibrated_on_nonlinear_nulls(kind):
    """Y and Z both depend on X (smoothly; sharply along one direction, where plain
    local permutations of Y or Z fail; or Z a cause of X through |.|, so that Z given
    X is bimodal, where a residual resampling fails), Y independent of Z given X: the
    rejection rate at 5 % stays near 5 %, and an added effect of Z on Y is found."""
    from scipy.stats import PermutationMethod

    def sample(rng, effect=0.0, n=150):
        x = rng.normal(size=(n, 2))
        if kind == "ancestor":
            z = rng.normal(size=n)
            x[:, 0] = np.abs(z) + 0.3 * rng.normal(size=n)
            return np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.3 * rng.normal(size=n), z, x
        s = x.sum(axis=1)
        if kind == "sharp":
            y, z = np.sin(3 * s) + 0.2 * rng.normal(size=n), np.abs(s)
            z = z + 0.2 * rng.normal(size=n)
        else:
            z = np.cos(x[:, 0]) + np.tanh(s) + 0.5 * rng.normal(size=n)
            y = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2 + 0.5 * rng.normal(size=n)
        return y + effect * np.cos(2 * z), z, x

    # n = 500 for the ancestor: the former residual resampling held 0.06 at n = 150
    # and rejected 0.18 at n = 500
    n = 500 if kind == "ancestor" else 150
    pvalues = [codec(*sample(np.random.default_rng(rep), n=n),
                     method=PermutationMethod(n_resamples=39), random_state=rep).pvalue
               for rep in range(150)]
    assert 0.005 <= np.mean(np.array(pvalues) <= 0.05) <= 0.11
    assert 0.4 <= np.mean(pvalues) <= 0.6
    if kind == "smooth":
        found = [codec(*sample(np.random.default_rng(rep), effect=1.2, n=400),
                       method=PermutationMethod(n_resamples=39), random_state=rep).pvalue
                 for rep in range(20)]
        assert np.mean(np.array(found) <= 0.05) >= 0.8


def test_conditional_test_needs_random_ties():
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 50))
    with pytest.raises(ValueError, match="ties='random'"):
        codec(y, z, x, method="permutation", ties="average")


def test_conditional_test_takes_the_permutation_methods_seed_zero():
    from scipy.stats import PermutationMethod

    rng = np.random.default_rng(2)
    x, z, y = rng.normal(size=(3, 80))
    seeded = [codec(y, z, x, method=PermutationMethod(n_resamples=20, rng=0),
                    random_state=seed).null_distribution for seed in (1, 2)]
    np.testing.assert_array_equal(*seeded)
