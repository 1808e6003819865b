"""The bad-input matrix shared by xi, codec and lcodec, and the accepted input types."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from scipy import stats

from chatterjee import ConstantInputWarning, codec, lcodec, xi

N = 12
RNG = np.random.default_rng(0)
X_DATA = RNG.normal(size=N)
Y_DATA = X_DATA + RNG.normal(size=N)
Z_DATA = RNG.normal(size=(N, 2))
W_DATA = RNG.normal(size=N)  # conditioning set


def good_data(fn):
    """Valid data arguments of ``fn``."""
    if fn == "xi":
        return {"x": X_DATA, "y": Y_DATA}
    return {"y": Y_DATA, "z": Z_DATA, "x": W_DATA}


def run(fn, **overrides):
    """Call ``fn`` on good data with some arguments replaced."""
    kwargs = good_data(fn)
    kwargs.update(overrides)
    kwargs.setdefault("random_state", 0)
    return {"xi": xi, "codec": codec, "lcodec": lcodec}[fn](**kwargs)


# Every data argument of every function: (function, argument name, good value).
ARGUMENTS = [("xi", "x", X_DATA), ("xi", "y", Y_DATA),
             ("codec", "y", Y_DATA), ("codec", "z", Z_DATA), ("codec", "x", W_DATA),
             ("lcodec", "y", Y_DATA), ("lcodec", "z", Z_DATA), ("lcodec", "x", W_DATA)]
ARG_IDS = [f"{fn}-{name}" for fn, name, _ in ARGUMENTS]
FUNCTIONS = ["xi", "codec", "lcodec"]


def _with(value, row, entry):
    bad = np.array(value, dtype=float)
    if bad.ndim == 1:
        bad[row] = entry
    else:
        bad[row, -1] = entry
    return bad


# --- NaN --------------------------------------------------------------------------

@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_nan_raise(fn, name, value):
    with pytest.raises(ValueError, match=f"`{name}`.*NaN"):
        run(fn, **{name: _with(value, 3, np.nan)}, nan_policy="raise")


@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_nan_propagate(fn, name, value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run(fn, **{name: _with(value, 3, np.nan)})  # the default policy
    assert math.isnan(result.statistic) and math.isnan(result.pvalue)
    result = run(fn, **{name: _with(value, 3, np.nan)}, nan_policy="propagate")
    assert math.isnan(result.statistic)


@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_nan_omit_equals_dropping_rows(fn, name, value):
    rows = [0, 5, 11]
    bad = _with(value, rows, np.nan)
    omitted = run(fn, **{name: bad}, nan_policy="omit")
    keep = np.setdiff1d(np.arange(N), rows)
    dropped = run(fn, **{key: v[keep] for key, v in good_data(fn).items()})
    assert omitted.statistic == dropped.statistic
    assert omitted.n_samples == N - len(rows) == dropped.n_samples
    assert np.isfinite(omitted.statistic)


@pytest.mark.parametrize("fn", ["codec", "lcodec"])
def test_nan_omit_with_ties_uses_the_same_draws(fn):
    """Omitting rows is the same as dropping them, random tie-breaking included."""
    z = np.repeat(np.arange(6.0), 5)
    y = np.arange(30.0) % 7
    bad_y = y.copy()
    bad_y[[2, 13]] = np.nan
    keep = np.setdiff1d(np.arange(30), [2, 13])
    for seed in range(3):
        omitted = run(fn, y=bad_y, z=z, x=None, nan_policy="omit", random_state=seed)
        dropped = run(fn, y=y[keep], z=z[keep], x=None, random_state=seed)
        assert omitted.statistic == dropped.statistic


def test_nan_omit_too_few_rows_left():
    x = np.array([1.0, np.nan, 2.0, np.nan])
    with pytest.raises(ValueError, match="3 samples.*NaN"):
        xi(x, [1.0, 2.0, 3.0, 4.0], nan_policy="omit")


def test_nan_in_one_column_of_a_block():
    z = Z_DATA.copy()
    z[4, 0] = np.nan  # one coordinate of a multi-column block
    assert math.isnan(codec(Y_DATA, z).statistic)
    with pytest.raises(ValueError, match="`z`"):
        codec(Y_DATA, z, nan_policy="raise")


# --- other bad values -------------------------------------------------------------

@pytest.mark.parametrize("entry", [np.inf, -np.inf])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit", "raise"])
@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_infinite(fn, name, value, entry, nan_policy):
    with pytest.raises(ValueError, match=f"`{name}`.*infinite"):
        run(fn, **{name: _with(value, 2, entry)}, nan_policy=nan_policy)


@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_mismatched_lengths(fn, name, value):
    with pytest.raises(ValueError, match=f"`{name}`.*same number of samples|"
                                         f"same number of samples.*`{name}`"):
        run(fn, **{name: value[:-1]})


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("n", [1, 2])
def test_too_few_samples(fn, n):
    args = {"x": X_DATA[:n], "y": Y_DATA[:n]} if fn == "xi" else \
        {"y": Y_DATA[:n], "z": Z_DATA[:n], "x": None}
    with pytest.raises(ValueError, match="At least 3 samples"):
        run(fn, **args)


@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_empty(fn, name, value):
    def empty(v):
        return np.empty((0,) + np.shape(v)[1:])

    with pytest.raises(ValueError, match="is empty"):  # all of them empty
        run(fn, **{key: empty(v) for key, v in good_data(fn).items()})
    with pytest.raises(ValueError, match="is empty"):
        run(fn, **{key: [] for key in good_data(fn)})
    with pytest.raises(ValueError, match=f"`{name}` is empty"):
        run(fn, **{name: empty(value)})  # only this one: it is named


# codec's and lcodec's y may hold labels: a categorical response (test_categorical.py)
NUMERIC_ONLY = [(fn, name, value) for fn, name, value in ARGUMENTS
                if name != "y" or fn == "xi"]


@pytest.mark.parametrize(("fn", "name", "value"), NUMERIC_ONLY,
                         ids=[f"{fn}-{name}" for fn, name, _ in NUMERIC_ONLY])
def test_non_numeric(fn, name, value):
    strings = np.asarray(value).astype(str)
    with pytest.raises(TypeError, match=f"`{name}` must be numeric"):
        run(fn, **{name: strings})
    with pytest.raises(TypeError, match=f"`{name}` must be numeric"):
        run(fn, **{name: ["a"] * N})


@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_complex(fn, name, value):
    with pytest.raises(TypeError, match=f"`{name}` is complex"):
        run(fn, **{name: np.asarray(value) + 1j})


@pytest.mark.parametrize("kind", ["csr_matrix", "csr_array", "coo_matrix"])
@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_sparse(fn, name, value, kind):
    sparse = getattr(scipy.sparse, kind)(np.atleast_2d(value).T if np.ndim(value) == 1
                                         else value)
    with pytest.raises(TypeError, match=f"`{name}` is sparse"):
        run(fn, **{name: sparse})


@pytest.mark.parametrize(("fn", "name", "value"), ARGUMENTS, ids=ARG_IDS)
def test_three_dimensional(fn, name, value):
    cube = np.reshape(np.repeat(np.asarray(value, dtype=float), 2), (N, -1, 2))
    with pytest.raises(ValueError, match=f"`{name}`.*(dimension|D)"):
        run(fn, **{name: cube})


@pytest.mark.parametrize(("fn", "name"), [("xi", "x"), ("xi", "y"), ("codec", "y"),
                                          ("lcodec", "y")])
def test_one_dimensional_arguments_reject_matrices(fn, name):
    with pytest.raises(ValueError, match=f"`{name}` must be one-dimensional"):
        run(fn, **{name: np.ones((N, 2))})


@pytest.mark.parametrize(("fn", "name"), [("codec", "z"), ("lcodec", "z"), ("codec", "x")])
def test_feature_block_without_columns(fn, name):
    with pytest.raises(ValueError, match=f"`{name}` has no columns"):
        run(fn, **{name: np.empty((N, 0))})


@pytest.mark.parametrize(("fn", "name"), [("xi", "x"), ("xi", "y"), ("codec", "y"),
                                          ("codec", "z"), ("lcodec", "y"), ("lcodec", "z")])
@pytest.mark.parametrize("conditional", [False, True])
def test_required_argument_none(fn, name, conditional):
    extra = {} if fn == "xi" else {"x": W_DATA if conditional else None}
    with pytest.raises(TypeError, match=f"`{name}` is required"):
        run(fn, **{name: None}, **extra)


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("policy", ["ignore", "", None, "RAISE"])
def test_bad_nan_policy(fn, policy):
    with pytest.raises(ValueError, match="nan_policy"):
        run(fn, nan_policy=policy)


@pytest.mark.parametrize(("fn", "method"), [
    ("xi", "exact"), ("xi", None), ("xi", 3), ("xi", stats.BootstrapMethod()),
    ("codec", "asymptotic"), ("codec", "exact"), ("codec", 3)])
def test_bad_method(fn, method):
    kwargs = {"x": None} if fn == "codec" else {}
    with pytest.raises(ValueError, match="method"):
        run(fn, method=method, **kwargs)


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("random_state", ["0", 1.5, True, [1, 2], object()])
def test_bad_random_state(fn, random_state):
    with pytest.raises(TypeError, match="random_state"):
        run(fn, random_state=random_state)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_accepted_random_states(fn):
    """int, NumPy int, Generator, RandomState and None all work."""
    for random_state in (3, np.int64(3), np.random.default_rng(3),
                         np.random.RandomState(3), None):
        assert np.isfinite(run(fn, random_state=random_state).statistic)
    assert (run(fn, random_state=np.int32(3)).statistic
            == run(fn, random_state=3).statistic)


@pytest.mark.parametrize("value", ["yes", 2, None])
def test_bad_y_continuous(value):
    with pytest.raises(ValueError, match="y_continuous"):
        xi(X_DATA, Y_DATA, y_continuous=value)


@pytest.mark.parametrize("noise_scale", [0, 0.0, -1e-4, 0.2, 1.0, np.nan, np.inf])
def test_lcodec_bad_noise_scale(noise_scale):
    with pytest.raises(ValueError, match="noise_scale"):
        lcodec(Y_DATA, Z_DATA, noise_scale=noise_scale)


@pytest.mark.parametrize("n_repeats", [0, -1, 1.5, 2.0, True, "3", None])
def test_lcodec_bad_n_repeats(n_repeats):
    with pytest.raises(ValueError, match="n_repeats"):
        lcodec(Y_DATA, Z_DATA, n_repeats=n_repeats)


def test_lcodec_accepts_edge_parameters():
    assert np.isfinite(lcodec(Y_DATA, Z_DATA, noise_scale=0.1, random_state=0).statistic)
    result = lcodec(Y_DATA, Z_DATA, n_repeats=np.int64(3), random_state=0)
    assert result.statistics.shape == (3,)


# --- accepted input types -----------------------------------------------------------

def _tied(seed=1):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 3, size=(40, 2))
    x = rng.integers(0, 3, size=40)
    y = z[:, 0] + x + rng.integers(0, 2, size=40)
    return y, z, x


@pytest.mark.parametrize("fn", ["codec", "lcodec"])
def test_lists_pandas_and_dtypes_match_numpy(fn):
    y, z, x = _tied()
    estimator = {"codec": codec, "lcodec": lcodec}[fn]
    expected = estimator(y.astype(float), z.astype(float), x.astype(float), random_state=4)
    index = np.random.default_rng(0).permutation(40) + 100  # labels must be ignored
    variants = [
        (y.tolist(), z.tolist(), x.tolist()),
        (pd.Series(y, index=index), pd.DataFrame(z, index=index, columns=["a", "b"]),
         pd.Series(x, index=index, name="x")),
        (pd.Series(y), pd.DataFrame({"a": z[:, 0].astype(np.int8), "b": z[:, 1] * 1.0}),
         pd.DataFrame({"x": x})),
        (y.astype(np.int32), z.astype(np.uint8), x.astype(np.int16)),
        (y.astype(np.float32), z.astype(np.float32), x.astype(np.float32)),
        (y[:, None], z, x[:, None]),  # column vectors
    ]
    for args in variants:
        assert estimator(*args, random_state=4).statistic == expected.statistic


def test_xi_lists_pandas_and_dtypes_match_numpy():
    y, z, _ = _tied()
    x = z[:, 0]
    expected = xi(x.astype(float), y.astype(float), random_state=2)
    for args in [(x.tolist(), y.tolist()), (pd.Series(x), pd.Series(y, index=y[::-1])),
                 (x.astype(np.float32), y.astype(np.int8)), (x[:, None], y[:, None])]:
        assert xi(*args, random_state=2) == expected
    assert xi(x == 1, y, random_state=2) == xi((x == 1).astype(float), y, random_state=2)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_float32_equals_float64_of_the_same_values(fn):
    rng = np.random.default_rng(5)
    values = {"x": rng.normal(size=50).astype(np.float32),
              "y": rng.normal(size=50).astype(np.float32),
              "z": rng.normal(size=(50, 2)).astype(np.float32)}
    if fn == "xi":
        values.pop("z")
    single = run(fn, **values)
    double = run(fn, **{k: v.astype(np.float64) for k, v in values.items()})
    assert single.statistic == double.statistic
    assert single.pvalue == double.pvalue or math.isnan(single.pvalue)


def test_negative_zero_equals_zero():
    """-0.0 and 0.0 are the same point: a duplicate, not two distinct sites."""
    y = np.arange(6.0)
    z = np.array([[0.0, 1.0], [-0.0, 1.0], [3, 3], [5, 5], [0, -0.0], [-0.0, 0.0]])
    positive = np.abs(z)
    for seed in range(5):
        assert (codec(y, z, random_state=seed).statistic
                == codec(y, positive, random_state=seed).statistic)


# --- constant response ----------------------------------------------------------------

@pytest.mark.parametrize(("fn", "conditional"), [
    ("xi", False), ("codec", False), ("codec", True), ("lcodec", False), ("lcodec", True)])
def test_constant_y(fn, conditional):
    extra = {} if fn == "xi" else {"x": W_DATA if conditional else None}
    with pytest.warns(ConstantInputWarning, match="`y` is constant"):
        result = run(fn, y=np.full(N, -1.25), **extra)
    assert math.isnan(result.statistic) and math.isnan(result.pvalue)
    assert result.n_samples == N


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_constant_y_after_omitting_nan(fn):
    y = np.r_[np.full(N - 1, 2.0), np.nan]
    with pytest.warns(ConstantInputWarning):
        result = run(fn, y=y, nan_policy="omit")
    assert math.isnan(result.statistic)
    assert result.n_samples == N - 1


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_result_unpacks_as_statistic_and_pvalue(fn):
    result = run(fn)
    statistic, pvalue = result
    assert statistic == result.statistic == result[0]
    assert pvalue == result.pvalue or (math.isnan(pvalue) and math.isnan(result.pvalue))
    assert len(result) == 2
    assert isinstance(statistic, float)
