"""FOCISelector and LFOCISelector: scikit-learn's estimator checks, pipelines, grid
search, pandas in and out, and agreement with :func:`chatterjee.foci.foci` /
:func:`chatterjee.foci.lfoci` on the same data and seed."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    parametrize_with_checks,
)

import chatterjee
from chatterjee.foci import foci, lfoci
from chatterjee.selectors import FOCISelector, LFOCISelector

SELECTORS = [FOCISelector, LFOCISelector]
FUNCTIONS = {FOCISelector: foci, LFOCISelector: lfoci}


@parametrize_with_checks([FOCISelector(), LFOCISelector()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("check", [
    check_param_validation,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_dataframe_column_names_consistency,
], ids=lambda check: check.__name__)
@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
def test_named_sklearn_checks(Selector, check):
    if check is not check_param_validation:
        pytest.importorskip("pandas")
    check(Selector.__name__, Selector(random_state=0))


def _data(seed=0, n=300, p=6, discrete=False):
    """y depends on columns 1 and 4 (on 1 and the last one when p < 5)."""
    rng = np.random.default_rng(seed)
    second = min(4, p - 1)
    if discrete:
        X = rng.integers(0, 4, size=(n, p)).astype(float)
        y = X[:, 1] + 2 * X[:, second] + 0.1 * rng.normal(size=n)
    else:
        X = rng.normal(size=(n, p))
        y = 2 * X[:, 1] - X[:, second] + 0.2 * rng.normal(size=n)
    assert y.argmin() != 0  # (the known foci bug: see test_first_y_is_the_minimum)
    return X, y


@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("stop", [True, False])
def test_attributes_agree_with_the_function(Selector, discrete, stop):
    X, y = _data(1, discrete=discrete)
    selector = Selector(random_state=5, stop=stop).fit(X, y)
    expected = FUNCTIONS[Selector](X, y, random_state=5, stop=stop)
    np.testing.assert_array_equal(selector.selected_features_, expected.selected)
    np.testing.assert_array_equal(selector.scores_, expected.scores)
    np.testing.assert_array_equal(selector.gains_, expected.gains)
    support = np.isin(np.arange(X.shape[1]), expected.selected)
    np.testing.assert_array_equal(selector.support_, support)
    np.testing.assert_array_equal(selector.get_support(), support)
    np.testing.assert_array_equal(selector.get_support(indices=True),
                                  np.sort(expected.selected))
    assert selector.n_features_in_ == X.shape[1]
    assert not hasattr(selector, "feature_names_in_")
    np.testing.assert_array_equal(selector.transform(X), X[:, support])
    np.testing.assert_array_equal(selector.get_feature_names_out(),
                                  [f"x{j}" for j in np.flatnonzero(support)])
    if stop:
        assert set(expected.selected[:2].tolist()) == {1, 4}


@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
def test_parameters_reach_the_function(Selector):
    X, y = _data(2, n=200)
    params = dict(max_features=3, stop=False, standardize="bounded", random_state=3)
    if Selector is LFOCISelector:
        params["noise_scale"] = 0.05
    selector = Selector(**params).fit(X, y)
    expected = FUNCTIONS[Selector](X, y, **params)
    np.testing.assert_array_equal(selector.selected_features_, expected.selected)
    np.testing.assert_array_equal(selector.scores_, expected.scores)
    assert selector.selected_features_.shape == (3,)
    unscaled = Selector(standardize=None, random_state=3, stop=False).fit(X, y)
    np.testing.assert_array_equal(
        unscaled.scores_,
        FUNCTIONS[Selector](X, y, standardize=None, random_state=3, stop=False).scores)


@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
def test_pandas_in_and_out(Selector):
    pd = pytest.importorskip("pandas")
    X, y = _data(3)
    columns = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
    frame = pd.DataFrame(X, columns=columns)
    selector = Selector(random_state=0).set_output(transform="pandas")
    selector.fit(frame, pd.Series(y, name="target"))
    np.testing.assert_array_equal(selector.feature_names_in_, columns)
    picked = [columns[j] for j in selector.selected_features_]
    assert set(picked) >= {"beta", "eps"}
    expected = [c for c in columns if c in picked]  # output keeps the input order
    out = selector.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == expected
    pd.testing.assert_frame_equal(out, frame[expected])
    assert list(selector.get_feature_names_out()) == expected
    # The same as on the bare array, with the same seed.
    plain = clone(selector).set_output(transform="default").fit(X, y)
    np.testing.assert_array_equal(plain.selected_features_, selector.selected_features_)
    np.testing.assert_array_equal(plain.scores_, selector.scores_)
    with pytest.raises(ValueError, match="feature names"):
        selector.transform(frame[columns[::-1]])


def test_pipeline_with_linear_regression():
    X, y = _data(4, n=240)
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("selector", FOCISelector(random_state=0)),
        ("model", LinearRegression()),
    ]).fit(X[:160], y[:160])
    support = pipe.named_steps["selector"].get_support()
    assert support[1] and support[4]
    assert pipe.named_steps["model"].coef_.shape == (support.sum(),)
    assert pipe.score(X[160:], y[160:]) > 0.9
    assert pipe.predict(X[160:]).shape == (80,)


def test_pipeline_with_nearest_neighbours_on_a_nonlinear_target():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 8))
    y = np.sin(2 * X[:, 2]) + X[:, 6] ** 2 + 0.1 * rng.normal(size=400)
    assert y.argmin() != 0
    selector = LFOCISelector(random_state=0)
    pipe = Pipeline([("selector", selector), ("model", KNeighborsRegressor(10))])
    pipe.fit(X[:300], y[:300])
    assert set(pipe.named_steps["selector"].selected_features_[:2]) == {2, 6}
    everything = KNeighborsRegressor(10).fit(X[:300], y[:300])
    # Dropping the 6 noise columns helps nearest neighbours a lot.
    assert pipe.score(X[300:], y[300:]) > everything.score(X[300:], y[300:]) + 0.2


def test_grid_search_over_max_features():
    X, y = _data(6, n=150, p=5)
    pipe = Pipeline([
        ("selector", FOCISelector(random_state=0, stop=False)),
        ("model", LinearRegression()),
    ])
    search = GridSearchCV(pipe, {"selector__max_features": [1, 2, 3]}, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (3,)
    # Both informative columns are needed; a third (noise) one changes little.
    assert scores[1] > scores[0] + 0.1
    assert search.best_params_["selector__max_features"] in (2, 3)
    best = search.best_estimator_.named_steps["selector"]
    assert set(best.selected_features_[:2]) == {1, 4}


@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
def test_max_features_above_n_features_raises_at_fit(Selector):
    X, y = _data(7, n=60, p=4)
    with pytest.raises(ValueError, match="max_features"):
        Selector(max_features=5).fit(X, y)
    assert Selector(max_features=4, random_state=0).fit(X, y).selected_features_.size >= 1


@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("params", [
    {"max_features": 0}, {"max_features": 2.5}, {"standardize": "none"},
    {"stop": "yes"}, {"n_jobs": 1.5},
])
def test_invalid_parameters_raise_at_fit(Selector, params):
    X, y = _data(8, n=60, p=4)
    with pytest.raises(ValueError, match=next(iter(params))):
        Selector(**params).fit(X, y)


@pytest.mark.parametrize("noise_scale", [0, 0.2])
def test_lfoci_selector_noise_scale_is_validated(noise_scale):
    X, y = _data(8, n=60, p=4)
    with pytest.raises(ValueError, match="noise_scale"):
        LFOCISelector(noise_scale=noise_scale).fit(X, y)


@pytest.mark.parametrize("Selector", SELECTORS, ids=lambda s: s.__name__)
def test_n_jobs_does_not_change_the_selector(Selector):
    X, y = _data(9, n=150, p=5, discrete=True)
    one = Selector(random_state=2, stop=False, n_jobs=1).fit(X, y)
    two = Selector(random_state=2, stop=False, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.selected_features_, two.selected_features_)
    np.testing.assert_array_equal(one.scores_, two.scores_)
    np.testing.assert_array_equal(one.gains_, two.gains_)


def test_constant_target_selects_nothing():
    X, _ = _data(10, n=50, p=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: "No features selected"
        with pytest.warns(chatterjee.ConstantInputWarning):
            selector = FOCISelector().fit(X, np.ones(50))
        assert selector.selected_features_.shape == (0,)
        assert not selector.support_.any()
        assert selector.transform(X).shape == (50, 0)


def test_first_y_is_the_minimum():
    X, y = _data(11, n=200)
    first = y.argmin()
    X[[0, first]], y[[0, first]] = X[[first, 0]], y[[first, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", chatterjee.ConstantInputWarning)
        selector = FOCISelector(random_state=0).fit(X, y)
    assert set(selector.selected_features_[:2]) == {1, 4}
