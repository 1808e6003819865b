"""L-CODEC: CODEC on data whose ties are broken by tiny noise."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chatterjee import ConstantInputWarning, codec, lcodec

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def same(a, b):
    """Equal, or both NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        return function(*args, **kwargs)


def _nn_tie_free(values):
    """Distinct 1-D values where no point is equally far from both of its neighbours."""
    gaps = np.diff(np.sort(values))
    return bool((gaps > 0).all() and (gaps[1:] != gaps[:-1]).all())


distinct_values = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=3, max_size=60,
    unique=True).map(np.array)
tie_free_1d = distinct_values.filter(_nn_tie_free)


@SETTINGS
@given(z=tie_free_1d, data=st.data(),
       noise_scale=st.sampled_from([1e-8, 1e-4, 0.1]), seed=st.integers(0, 2**32 - 1))
def test_equals_codec_on_tie_free_1d(z, data, noise_scale, seed):
    """Noise below every decisive gap keeps each 1-D neighbour: exact equality."""
    y = np.array(data.draw(hnp.arrays(np.int64, z.size, elements=st.integers(-5, 5))),
                 dtype=float)
    expected = _quiet(codec, y, z, random_state=0).statistic
    result = _quiet(lcodec, y, z, noise_scale=noise_scale, random_state=seed)
    assert same(result.statistic, expected)


@SETTINGS
@given(z=tie_free_1d, y=distinct_values, seed=st.integers(0, 2**32 - 1))
def test_perturbing_a_tie_free_response_changes_nothing(z, y, seed):
    n = min(z.size, y.size)
    z, y = z[:n], y[:n]
    assume(_nn_tie_free(z))
    expected = codec(y, z).statistic
    assert lcodec(y, z, perturb_response=True, random_state=seed).statistic == expected


@SETTINGS
@given(n=st.integers(3, 40), data=st.data(), seed=st.integers(0, 2**32 - 1),
       conditional=st.booleans())
def test_invariant_under_increasing_transform_of_y(n, data, seed, conditional):
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(-20, 20))) / 4.0
    z = data.draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(0, 3))).astype(float)
    x = (data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2))).astype(float)
         if conditional else None)
    before = _quiet(lcodec, y, z, x, random_state=seed, n_repeats=2).statistics
    after = _quiet(lcodec, np.exp(y) + y**3, z, x, random_state=seed,
                   n_repeats=2).statistics
    np.testing.assert_array_equal(before, after)


@SETTINGS
@given(n=st.integers(3, 40), data=st.data(), seed=st.integers(0, 2**32 - 1),
       n_repeats=st.integers(1, 6))
def test_repeats_and_seeds(n, data, seed, n_repeats):
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 4))).astype(float)
    z = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 3))).astype(float)
    assume(np.unique(y).size > 1)  # constant y: see test_constant_y_is_nan_with_warning
    result = _quiet(lcodec, y, z, n_repeats=n_repeats, random_state=seed)
    assert result.statistics.shape == (n_repeats,)
    assert same(result.statistic, float(np.mean(result.statistics)))
    assert math.isnan(result.pvalue)
    assert result.n_samples == n
    again = _quiet(lcodec, y, z, n_repeats=n_repeats, random_state=seed)
    np.testing.assert_array_equal(again.statistics, result.statistics)
    assert same(again.statistic, result.statistic)
    if not math.isnan(result.statistic):
        assert result.statistic <= 1 + 1e-12


def test_repeats_vary_on_tied_data_and_seeds_matter():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 4, size=300).astype(float)
    y = z + rng.integers(0, 3, size=300)
    result = lcodec(y, z, n_repeats=20, random_state=1)
    assert np.unique(result.statistics).size > 10
    assert result.statistic == result.statistics.mean()
    assert lcodec(y, z, random_state=1).statistic != lcodec(y, z, random_state=2).statistic
    generator = np.random.default_rng(3)  # a Generator is advanced between calls
    assert (lcodec(y, z, random_state=generator).statistic
            != lcodec(y, z, random_state=generator).statistic)


def test_perturb_response_with_binary_y():
    """Documented: perturbing a binary y makes its ranks random, so a y that is a
    function of z no longer gives T near 1; without it, lcodec equals codec."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=1000)
    y = (z > 0).astype(float)
    exact = codec(y, z).statistic
    assert exact > 0.95
    assert lcodec(y, z, random_state=0).statistic == exact
    perturbed = lcodec(y, z, perturb_response=True, n_repeats=5, random_state=0)
    assert perturbed.statistic < 0.7
    assert np.ptp(perturbed.statistics) > 0  # ranks of y now vary with the noise


def test_matches_codec_in_expectation_on_duplicated_points():
    """Duplicated rows only (distinct sites are never equidistant): the noise picks a
    uniform duplicate, as codec's tie-breaking does, so the means agree."""
    rng = np.random.default_rng(2)
    sites = rng.normal(size=(40, 2))
    z = np.repeat(sites, 4, axis=0)
    y = z[:, 0] + 0.5 * rng.normal(size=z.shape[0])
    x = np.repeat(rng.normal(size=40), 4)  # duplicated conditioning set too
    for conditional in (None, x):
        noisy = lcodec(y, z, conditional, n_repeats=400, random_state=3).statistics
        exact = np.array([codec(y, z, conditional, random_state=s).statistic
                          for s in range(400)])
        se = math.hypot(noisy.std(ddof=1), exact.std(ddof=1)) / math.sqrt(400)
        assert abs(noisy.mean() - exact.mean()) <= 4.5 * se
        assert exact.std() > 0


@pytest.mark.parametrize("conditional", [False, True])
def test_constant_y_is_nan_with_warning(conditional):
    z = np.arange(8.0)
    x = np.arange(8.0)[::-1] if conditional else None
    with pytest.warns(ConstantInputWarning, match="constant"):
        result = lcodec(np.full(8, 2.0), z, x, n_repeats=3, random_state=0)
    assert math.isnan(result.statistic)


@pytest.mark.parametrize("y", [np.arange(10.0), np.r_[0.0, np.ones(9)],
                               np.r_[np.ones(9), 0.0]])
def test_response_with_extreme_first_value_is_not_constant(y):
    """Only a constant y is undefined, whatever the position of its extremes."""
    z = np.random.default_rng(4).normal(size=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = lcodec(y, z, random_state=0)
    assert result.statistic == codec(y, z).statistic
