"""A categorical response: the discrete-kernel coefficient, labels of every kind, and
the rule of ``y_type='auto'``."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatterjee import (
    FOCISelector,
    LFOCISelector,
    codec,
    foci,
    lcodec,
    lfoci,
    markov_blanket,
)


def brute_neighbors(points):
    """Self-excluded nearest neighbour by the full distance matrix (tie-free data)."""
    distances = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(distances, np.inf)
    return distances.argmin(axis=1)


def brute_categorical(y, z, x=None):
    """The discrete-kernel T_n written from its formula, O(n**2)."""
    n = len(y)
    same_joint = (y == y[brute_neighbors(z if x is None else np.column_stack([x, z]))])
    if x is None:
        pairs = sum(np.sum(y == c) ** 2 for c in np.unique(y)) / n
        return (same_joint.sum() - pairs) / (n - pairs)
    same_given = y == y[brute_neighbors(x)]
    return (same_joint.sum() - same_given.sum()) / (n - same_given.sum())


def brute_ordered_terms(y, z, x=None):
    """Numerator and denominator of the ordered T_n (codec's scale), O(n**2)."""
    n = len(y)
    R = (y[None, :] <= y[:, None]).sum(axis=1)
    L = (y[None, :] >= y[:, None]).sum(axis=1)
    joint = np.minimum(R, R[brute_neighbors(z if x is None else np.column_stack([x, z]))])
    if x is None:
        return joint.sum() - (L @ L) / n, (L @ (n - L)) / n
    given = np.minimum(R, R[brute_neighbors(x)])
    return joint.sum() - given.sum(), R.sum() - given.sum()


def design(n=300, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=(2, n, 1))
    score = np.sin(2 * x[:, 0]) + z[:, 0] + 0.5 * rng.normal(size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return y, z, x


@pytest.mark.parametrize("conditional", [False, True])
def test_equals_its_formula(conditional):
    y, z, x = design()
    expected = brute_categorical(y, z, x if conditional else None)
    value = codec(y, z, x if conditional else None, y_type="categorical",
                  random_state=0).statistic
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("conditional", [False, True])
def test_two_classes_pool_the_ordered_coefficient_with_either_class_on_top(conditional):
    y, z, x = design(classes=2, seed=1)
    x = x if conditional else None
    top_one = np.asarray(brute_ordered_terms(y, z, x)) / np.sum(y == 1)
    top_zero = np.asarray(brute_ordered_terms(1 - y, z, x)) / np.sum(y == 0)
    pooled = (top_one[0] + top_zero[0]) / (top_one[1] + top_zero[1])
    assert codec(y, z, x, y_type="categorical").statistic == pytest.approx(pooled, rel=1e-12)
    # and, by default, two-valued numbers are categorical
    assert codec(y, z, x).statistic == codec(y, z, x, y_type="categorical").statistic


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), classes=st.integers(2, 6), data=st.data())
def test_invariant_to_relabelling(seed, classes, data):
    """Any renaming of the classes (to numbers or strings) gives the same value and
    selection, draw for draw, on data with ties in the features."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(120, 4)).astype(float)       # tied features
    y = (X[:, 0] + rng.integers(0, 2, size=120)) % classes
    names = data.draw(st.permutations(range(classes)))
    as_strings = data.draw(st.booleans())
    relabelled = np.array([f"c{names[v]}" if as_strings else names[v] * 7 + 3
                           for v in y.astype(int)], dtype=object if as_strings else int)
    for args in ((X[:, :1],), (X[:, 1:2], X[:, :1])):
        assert (codec(y, *args, y_type="categorical", random_state=seed).statistic
                == codec(relabelled, *args, y_type="categorical",
                         random_state=seed).statistic)
        assert (lcodec(y, *args, y_type="categorical", random_state=seed).statistic
                == lcodec(relabelled, *args, y_type="categorical",
                          random_state=seed).statistic)
    first = foci(X, y, y_type="categorical", random_state=seed)
    second = foci(X, relabelled, y_type="categorical", random_state=seed)
    np.testing.assert_array_equal(first.selected, second.selected)
    np.testing.assert_array_equal(first.scores, second.scores)


def test_limits_independence_and_function():
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.normal(size=(n, 2))
    labels = np.array(["setosa", "versicolor", "virginica"])
    independent = labels[rng.integers(0, 3, size=n)]
    assert abs(codec(independent, x, random_state=0).statistic) < 0.05
    function = labels[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    assert codec(function, x, random_state=0).statistic > 0.95
    # given x0, the other coordinate completes a function of both; noise adds nothing
    assert codec(function, x[:, 1], x[:, 0], random_state=0).statistic > 0.9
    noisy = labels[(x[:, 0] + rng.normal(size=n) > 0).astype(int)]
    assert abs(codec(noisy, rng.normal(size=n), x[:, 0], random_state=0).statistic) < 0.05


def test_labels_of_every_kind_are_the_same_classes():
    pd = pytest.importorskip("pandas")
    y, z, x = design(seed=2)
    expected = codec(y, z, x, y_type="categorical", random_state=0).statistic
    strings = np.array(["a", "b", "c", "d"])[y]
    for labels in (strings, strings.tolist(), pd.Series(strings),
                   pd.Categorical(strings), pd.Series(strings, dtype="string"),
                   np.array([b"a", b"b", b"c", b"d"])[y],
                   np.array([7, 2.5, "b", ("t",)], dtype=object)[y]):
        assert codec(labels, z, x, random_state=0).statistic == expected
    boolean = y > 1
    assert (codec(boolean, z, x, random_state=0).statistic
            == codec(boolean.astype(int), z, x, y_type="categorical",
                     random_state=0).statistic)


def test_missing_labels_follow_nan_policy():
    y, z, _ = design(seed=4)
    labels = np.array(["a", "b", "c", "d"], dtype=object)[y]
    labels[[3, 10]] = None
    kept = np.ones(len(y), dtype=bool)
    kept[[3, 10]] = False
    assert np.isnan(codec(labels, z).statistic)
    assert (codec(labels, z, nan_policy="omit", random_state=0).statistic
            == codec(labels[kept], z[kept], random_state=0).statistic)
    with pytest.raises(ValueError, match="`y` contains NaN"):
        codec(labels, z, nan_policy="raise")


def test_auto_warns_on_integer_codes_only():
    rng = np.random.default_rng(5)
    z = rng.normal(size=300)
    codes = rng.integers(0, 5, size=300)
    with pytest.warns(UserWarning, match="5 distinct integers.*y_type='categorical'"):
        codec(codes, z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        codec(codes, z, y_type="continuous")
        codec(codes, z, y_type="categorical")
        codec(z + rng.normal(size=300), z)                   # measurements
        codec(rng.integers(0, 400, size=300), z)             # integers that rarely repeat
        codec(codes.astype(str), z)                          # labels


def test_invalid_y_type_and_perturbed_classes():
    y, z, _ = design()
    with pytest.raises(ValueError, match="`y_type` must be one of"):
        codec(y, z, y_type="nominal")
    with pytest.raises(ValueError, match="perturb_response=True.*categorical"):
        lcodec(y.astype(str), z, perturb_response=True)
    # the paper's code perturbs a binary response: still possible with numbers
    binary = (y > 1).astype(float)
    assert np.isfinite(lcodec(binary, z, perturb_response=True, random_state=0).statistic)


def wine():
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True)


@pytest.mark.parametrize("selector", [FOCISelector, LFOCISelector])
def test_selectors_do_not_depend_on_class_names(selector):
    """The issue's wine example: renaming the classes changed FOCI's selection."""
    X, y = wine()
    renamed = np.array([2, 0, 1])[y]
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    fitted = [selector(y_type="categorical", random_state=0).fit(X, y),
              selector(y_type="categorical", random_state=0).fit(X, renamed),
              selector(random_state=0).fit(X, names)]
    for other in fitted[1:]:
        np.testing.assert_array_equal(fitted[0].selected_features_,
                                      other.selected_features_)
        np.testing.assert_array_equal(fitted[0].scores_, other.scores_)


def test_selector_in_a_pipeline_with_string_labels():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = wine()
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    pipeline = make_pipeline(StandardScaler(), FOCISelector(random_state=0),
                             LogisticRegression(max_iter=1000))
    search = GridSearchCV(pipeline, {"fociselector__max_features": [2, 4, 6]}, cv=3)
    search.fit(X, labels)
    assert set(search.predict(X)) <= set(labels)
    selected = search.best_estimator_.named_steps["fociselector"].support_.sum()
    assert selected == search.best_params_["fociselector__max_features"]
    # each candidate kept its own number of features: the grid was not a no-op
    assert len(set(np.round(search.cv_results_["mean_test_score"], 12))) > 1


def test_max_features_selects_exactly_that_many_with_the_default_stop():
    """A given max_features is the number selected ('auto' stop), so tuning it works;
    stop=True keeps FOCI's stopping rule, with max_features a cap."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    sizes = {k: FOCISelector(max_features=k, random_state=0).fit(X, y).support_.sum()
             for k in (2, 5, 8)}
    assert sizes == {2: 2, 5: 5, 8: 8}
    stopped = FOCISelector(random_state=0).fit(X, y).support_.sum()
    capped = FOCISelector(max_features=8, stop=True, random_state=0).fit(X, y)
    assert capped.support_.sum() == stopped < 8


def test_markov_blanket_of_a_class_label():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1500, 6))
    labels = np.where(X[:, 1] + np.sin(2 * X[:, 4]) > 0.3, "yes", "no")
    assert markov_blanket(X, labels, random_state=0).blanket.tolist() == [1, 4]


def test_lfoci_takes_labels():
    rng = np.random.default_rng(7)
    X = rng.integers(0, 3, size=(800, 5))
    labels = np.array(["red", "green", "blue"])[np.minimum(X[:, 3] + X[:, 0], 2)]
    assert sorted(lfoci(X, labels, random_state=0).selected.tolist()) == [0, 3]


@pytest.mark.parametrize("selector", [FOCISelector, LFOCISelector])
def test_selectors_take_labels_of_every_kind(selector):
    pd = pytest.importorskip("pandas")
    X, y = wine()
    expected = selector(y_type="categorical", random_state=0).fit(X, y).selected_features_
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    for labels in (pd.Categorical(names), pd.Series(names, dtype="string"), names.tolist()):
        fitted = selector(random_state=0).fit(X, labels)
        np.testing.assert_array_equal(fitted.selected_features_, expected)
    binary = y == 1
    np.testing.assert_array_equal(
        selector(random_state=0).fit(X, binary).selected_features_,
        selector(y_type="categorical", random_state=0).fit(X, binary.astype(int))
        .selected_features_)


def test_the_class_code_warning_points_at_the_caller():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(120, 3))
    codes = rng.integers(0, 4, size=120)
    calls = [lambda: codec(codes, X), lambda: lcodec(codes, X), lambda: foci(X, codes),
             lambda: lfoci(X, codes), lambda: markov_blanket(X, codes),
             lambda: FOCISelector().fit(X, codes)]
    for call in calls:
        with pytest.warns(UserWarning, match="distinct integers") as record:
            call()
        assert record[0].filename == __file__
