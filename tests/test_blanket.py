"""Markov blankets: forward selection, backward pruning and the blanket graph."""

import sys

import numpy as np
import pytest

from chatterjee import markov_blanket, markov_blankets, plot_blanket_graph
from chatterjee.datasets import make_bullseye


def _linear_gaussian_dag(n, seed):
    """a -> c <- b, c -> d, and an isolated e: blankets a:{b,c}, b:{a,c}, c:{a,b,d}, d:{c}."""
    rng = np.random.default_rng(seed)
    a, b, e = rng.normal(size=(3, n))
    c = a + b + 0.3 * rng.normal(size=n)
    d = c + 0.3 * rng.normal(size=n)
    return np.column_stack([a, b, c, d, e])


def test_blanket_graph_of_a_linear_gaussian_dag():
    data = _linear_gaussian_dag(3000, 0)
    truth = np.zeros((5, 5), dtype=bool)
    for i, j in [(0, 1), (0, 2), (1, 2), (2, 3)]:
        truth[i, j] = truth[j, i] = True
    found = markov_blankets(data, symmetric="and", random_state=0)
    np.testing.assert_array_equal(found, truth)
    directed = markov_blankets(data, random_state=0)
    assert directed.dtype == bool and directed.shape == (5, 5)
    assert not directed.diagonal().any()
    np.testing.assert_array_equal(
        markov_blankets(data, symmetric="or", random_state=0), directed | directed.T
    )


def test_bullseye_blanket_on_the_block_norms():
    tpr, fpr = [], []
    for seed in range(3):
        data = make_bullseye(n_samples=5000, random_state=seed)
        norms = np.linalg.norm(data.X.reshape(-1, 6, 3), axis=2)
        found = set(markov_blanket(norms, data.y, random_state=seed).blanket.tolist())
        tpr.append(len(found & {2, 3, 4, 5}) / 4)
        fpr.append(len(found & {0, 1}) / 2)
    assert np.mean(tpr) >= 0.75 and np.mean(fpr) <= 0.5


def test_bullseye_blanket_with_rotation_invariant_group_features():
    # Raw 3-D blocks: only the radius of each block matters, its direction is noise.
    tpr, fpr = [], []
    for seed in range(3):
        data = make_bullseye(n_samples=5000, random_state=seed)
        result = markov_blanket(data.X, data.y, groups=data.groups,
                                group_features="norm", random_state=seed)
        np.testing.assert_array_equal(result.reduced, np.arange(6))
        found = set(result.blanket.tolist())
        tpr.append(len(found & {2, 3, 4, 5}) / 4)
        fpr.append(len(found & {0, 1}) / 2)
    assert np.mean(tpr) >= 0.75 and np.mean(fpr) <= 0.5


def test_group_norms_equal_the_norm_columns_given_directly():
    data = make_bullseye(n_samples=1500, random_state=4)
    blocks = data.X.reshape(-1, 6, 3)
    blocks = (blocks - blocks.mean(axis=0)) / blocks.std(axis=0, ddof=1)
    norms = np.linalg.norm(blocks, axis=2)
    for randomized in (False, True):
        direct = markov_blanket(norms, data.y, randomized=randomized, random_state=1)
        reduced = markov_blanket(data.X, data.y, groups=data.groups,
                                 group_features="norm", randomized=randomized,
                                 random_state=1)
        np.testing.assert_array_equal(reduced.blanket, direct.blanket)
        np.testing.assert_array_equal(reduced.forward.selected, direct.forward.selected)
        np.testing.assert_allclose(reduced.forward.scores, direct.forward.scores)


def test_auto_group_features_keep_a_block_whose_direction_matters():
    rng = np.random.default_rng(0)
    n = 2000
    direction = rng.normal(size=(n, 3))                       # y depends on a coordinate
    radius = rng.uniform(0.5, 1, size=n)[:, None] * _unit(rng.normal(size=(n, 3)))
    noise = rng.normal(size=(n, 2))
    y = direction[:, 0] + np.linalg.norm(radius, axis=1) + 0.1 * rng.normal(size=n)
    X = np.hstack([direction, radius, noise])
    groups = np.array(["d", "d", "d", "r", "r", "r", "z", "z"])
    result = markov_blanket(X, y, groups=groups, group_features="auto", random_state=0)
    assert "d" not in result.reduced and "r" in result.reduced
    assert {"d", "r"} <= set(result.blanket.tolist())
    assert markov_blanket(X, y, groups=groups, random_state=0).reduced.size == 0


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_grouped_blanket_returns_labels():
    data = make_bullseye(n_samples=1000, random_state=0)
    result = markov_blanket(data.X, data.y, groups=data.groups, random_state=0)
    assert set(result.blanket.tolist()) <= set(range(6))
    assert result.blanket.size >= 1
    assert result.forward.selected.size >= result.blanket.size


def test_pruning_removes_a_member_made_redundant():
    # y depends on (u, v); w = u + v is picked first (it explains most of y), then u and
    # v; given u and v, w adds nothing, and the backward pass must see that.
    rng = np.random.default_rng(5)
    n = 3000
    u, v = rng.uniform(-1, 1, size=(2, n))
    w = u + v + 0.05 * rng.normal(size=n)
    y = np.sin(3 * u) + v + 0.05 * rng.normal(size=n)
    X = np.column_stack([w, u, v])
    for alpha in (0.01, None):
        kept = markov_blanket(X, y, alpha=alpha, random_state=0)
        unpruned = markov_blanket(X, y, alpha=alpha, prune=False, random_state=0)
        assert set(unpruned.blanket.tolist()) == set(unpruned.forward.selected.tolist())
        if 0 in unpruned.blanket.tolist():
            assert 0 in kept.pruned.tolist()
            if alpha is None:
                assert np.all(kept.pruning_scores <= 0)
        assert set(kept.blanket.tolist()) == {1, 2}


def test_randomized_blanket_on_tied_data_is_seeded():
    rng = np.random.default_rng(2)
    X = rng.integers(0, 3, size=(1500, 5)).astype(float)
    y = X[:, 1] + 2 * X[:, 3] + rng.normal(size=1500) * 0.2
    first = markov_blanket(X, y, randomized=True, random_state=4)
    again = markov_blanket(X, y, randomized=True, random_state=4)
    np.testing.assert_array_equal(first.blanket, again.blanket)
    assert {1, 3} <= set(first.blanket.tolist())


def test_dataframe_in_labelled_adjacency_out():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_linear_gaussian_dag(1500, 1), columns=list("abcde"))
    found = markov_blankets(frame, symmetric="and", random_state=0)
    assert list(found.index) == list("abcde") and list(found.columns) == list("abcde")
    assert found.loc["c", "d"] and not found.loc["e"].any()


def test_bad_input():
    data = _linear_gaussian_dag(100, 0)
    with pytest.raises(ValueError, match="symmetric"):
        markov_blankets(data, symmetric="both")
    with pytest.raises(ValueError, match="prune"):
        markov_blanket(data[:, 1:], data[:, 0], prune="yes")
    with pytest.raises(ValueError, match="noise_scale"):
        markov_blanket(data[:, 1:], data[:, 0], randomized=True, noise_scale=1.0)
    with pytest.raises(ValueError, match="one column"):
        markov_blankets(data, groups=[0, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="group_features"):
        markov_blanket(data[:, 1:], data[:, 0], groups=[0, 0, 1, 1],
                       group_features="radius")
    with pytest.raises(ValueError, match="needs `groups`"):
        markov_blanket(data[:, 1:], data[:, 0], group_features="norm")


def test_plot_blanket_graph():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    adjacency = np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=bool)
    ax = plot_blanket_graph(adjacency, labels=["a", "b", "c"])
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["a", "b", "c"]
    assert len(ax.lines) == 1  # a - b, found both ways
    assert len([t for t in ax.texts if not t.get_text()]) == 1  # the arrow b -> c


def test_progress_changes_no_blanket(capsys, monkeypatch):
    X, y = _chain_with_a_child(0)
    reference = markov_blanket(X, y, random_state=0)
    for verbose in (1, 2):
        found = markov_blanket(X, y, random_state=0, verbose=verbose)
        np.testing.assert_array_equal(found.blanket, reference.blanket)
        np.testing.assert_array_equal(found.forward.scores, reference.forward.scores)
    out, err = capsys.readouterr()
    assert out == "" and "[blanket] step 1" in err
    markov_blanket(X, y, alpha=None, random_state=0, verbose=2)
    out, err = capsys.readouterr()
    assert out == "" and "[foci] step 1" in err and "[blanket]" in err
    data = np.column_stack([X, y])
    graph = markov_blankets(data, random_state=0)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    np.testing.assert_array_equal(markov_blankets(data, random_state=0, verbose=1), graph)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == ""
    assert len(lines) == data.shape[1]  # one per variable, the inner blankets are quiet
    assert lines[0].startswith(f"[blankets] 1/{data.shape[1]}: blanket of 0")


def _chain_with_a_child(seed, n=2000):
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    y = a + b ** 2 + 0.3 * rng.normal(size=n)
    child = y + 0.3 * rng.normal(size=n)
    return np.column_stack([a, b, c, child]), y


def test_markov_blankets_are_the_same_for_any_n_jobs_and_backend():
    """Each variable's blanket is one joblib task with its own seed: the graph does not
    depend on how many jobs run them, nor on the backend."""
    import joblib

    rng = np.random.default_rng(3)
    a, b, e = rng.normal(size=(3, 1000))
    c = np.sin(a) + b ** 2 + 0.3 * rng.normal(size=1000)
    d = c + 0.3 * rng.normal(size=1000)
    data = np.column_stack([a, b, c, d, e])
    options = {"randomized": True, "random_state": 7}      # seeds matter with noise
    serial = markov_blankets(data, n_jobs=1, **options)
    assert markov_blankets(data, **options).tolist() == serial.tolist()
    assert markov_blankets(data, n_jobs=2, **options).tolist() == serial.tolist()
    with joblib.parallel_config(backend="threading", n_jobs=2):
        assert markov_blankets(data, **options).tolist() == serial.tolist()
    assert serial[2, [0, 1, 3]].all()          # c's parents and child


def _nonlinear_dag(n, seed):
    """a -> y <- b (sin, square), y -> c (tanh), c <- d, e -> a, and a noise f:
    the blanket of y is {a, b, c, d}."""
    rng = np.random.default_rng(seed)
    e, b, d, f = rng.normal(size=(4, n))
    a = np.abs(e) + 0.3 * rng.normal(size=n)
    y = np.sin(2 * a) + b ** 2 + 0.3 * rng.normal(size=n)
    c = np.tanh(y) + d + 0.3 * rng.normal(size=n)
    return np.column_stack([a, b, c, d, e, f]), y


def test_tested_blanket_of_a_nonlinear_dag():
    # The parents always, never the cause of a parent (e: a = |e| + noise, so e given
    # a is bimodal, where resampled tests fail) nor the noise; the child and its
    # other parent carry little given the parents (y's noise is 0.3) and are found
    # in some seeds only.
    found = []
    for seed in range(4):
        X, y = _nonlinear_dag(2000, seed)
        blanket = set(markov_blanket(X, y, random_state=seed).blanket.tolist())
        assert {0, 1} <= blanket <= {0, 1, 2, 3}, (seed, blanket)
        found.append(blanket)
    assert {0, 1, 2, 3} in found


def test_tested_blanket_is_empty_for_an_independent_target():
    # Columns that depend on each other, none on y: the best of them is tested at
    # each seed; a level of 0.01 per test lets few through.
    found = 0
    for seed in range(20):
        X, _ = _nonlinear_dag(500, seed)
        y = np.random.default_rng(100 + seed).normal(size=500)
        found += markov_blanket(X, y, random_state=seed).blanket.size > 0
    assert found <= 4


@pytest.mark.slow
def test_blanket_tests_are_calibrated_under_conditional_independence():
    # The z-test of one candidate: Z and Y both depend on X (nonlinearly), not on
    # each other. Its rejection rate at level 0.05 must be near 0.05 (200 seeds:
    # [0.02, 0.09] holds a calibrated test's rate with probability 0.98).
    from chatterjee._response import response_of
    from chatterjee.blanket import _BlanketTests
    from chatterjee.foci import Progress

    rejected = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(1000, 2))
        z = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.5 * rng.normal(size=1000)
        y = np.cos(x[:, 0]) + np.abs(x[:, 1]) + 0.5 * rng.normal(size=1000)
        features = np.column_stack([x, z])
        features = (features - features.mean(0)) / features.std(0)
        tests = _BlanketTests(features, response_of(y, False), n_neighbors=5,
                              ties="random", rng=rng, parallel=None, n_workers=1,
                              progress=Progress(0), critical=1.6449)
        tests.condition_on(np.array([0, 1]))
        statistic = tests.statistics([np.array([2])], "test")[0]
        rejected.append(tests.zscore(np.array([2]), statistic) >= tests.critical)
    assert 0.02 <= np.mean(rejected) <= 0.09


def test_alpha_is_checked():
    X, y = _nonlinear_dag(200, 0)
    for alpha in (0, 1, -0.1, "0.05", True):
        with pytest.raises(ValueError, match="`alpha`"):
            markov_blanket(X, y, alpha=alpha)


def _covariance_pvalue(y, z, x, rng):
    """The covariance test's p-value for z given x (all continuous)."""
    from scipy.stats import rankdata

    from chatterjee.blanket import _CovarianceTests
    from chatterjee.codec import ConditionalResampler

    features = np.column_stack([x, z])
    covariance = _CovarianceTests(features, rankdata(y))
    columns = np.arange(x.shape[1])
    covariance.condition_on(columns, ConditionalResampler(x, x.shape[0], workers=1))
    return covariance.pvalues([np.array([x.shape[1]])], rng)[0]


def test_covariance_test_keeps_its_level_when_the_regression_of_y_is_wrong():
    """Y depends on X through an interaction, which the additive regression misses;
    Z depends on X too but not on Y given X. A partial correlation would reject
    (the residuals of Y and Z both carry x1 * x2); the conditional ranks of Z keep
    the level (conservatively here: neighbouring ranks are negatively correlated,
    which the standard error ignores and the misfit of Y brings out), and a linear
    effect of Z is found."""
    rejected, spread_rejected, found = [], [], []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(500, 2))
        z = x[:, 0] * x[:, 1] + np.sin(x[:, 0]) + 0.5 * rng.normal(size=500)
        y = x[:, 0] * x[:, 1] + 0.5 * rng.normal(size=500)
        rejected.append(_covariance_pvalue(y, z, x, rng) <= 0.05)
        # Y's spread follows the interaction too: the additive regression of the
        # squared residual misses it, the conditional ranks of Z keep the level.
        spread = 0.3 * x[:, 0] + (0.3 + np.abs(x[:, 0] * x[:, 1])) * rng.normal(size=500)
        spread_rejected.append(_covariance_pvalue(spread, z, x, rng) <= 0.05)
        if seed < 30:
            found.append(_covariance_pvalue(y + 0.4 * z, z, x, rng) <= 0.05)
    assert np.mean(rejected) <= 0.09
    assert np.mean(spread_rejected) <= 0.09
    assert np.mean(found) >= 0.9


def test_covariance_test_sees_even_links():
    """A parent through a square and a child through a cosine given X: no shift in
    correlation (the first direction alone found 0.10 and 0.06 of these), found by
    the distance from the conditional median and by Y's spread."""
    square, cosine = [], []
    for seed in range(30):
        rng = np.random.default_rng([7, seed])
        x = rng.normal(size=(500, 2))
        z = rng.normal(size=500)
        y = x[:, 0] + 0.4 * z ** 2 + 0.5 * rng.normal(size=500)
        square.append(_covariance_pvalue(y, z, x, rng) <= 0.05)
        y = x[:, 0] + 0.5 * rng.normal(size=500)
        child = np.cos(y) + x[:, 1] + 0.3 * rng.normal(size=500)
        cosine.append(_covariance_pvalue(y, child, x, rng) <= 0.05)
    assert np.mean(square) >= 0.9
    assert np.mean(cosine) >= 0.8


def test_tested_blanket_finds_weak_linear_parents():
    """Eight parents of 0.25 each (a linear-Gaussian node with a wide blanket, as in
    magic-niab), beside eight independent columns: the covariance test finds the
    weak parents that the nearest-neighbour coefficient misses given the others."""
    recalls, strays = [], 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(2000, 16))
        y = 0.25 * X[:, :8].sum(axis=1) + rng.normal(size=2000)
        blanket = set(markov_blanket(X, y, random_state=seed).blanket.tolist())
        strays += len(blanket - set(range(8)))
        recalls.append(len(blanket & set(range(8))) / 8)
    assert np.mean(recalls) >= 0.9
    assert strays <= 1


def test_zscore_among_equal_draws_is_signed_infinity_or_zero():
    import warnings

    from chatterjee.blanket import _zscore

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _zscore(0.5, [0.2, 0.2, 0.2]) == np.inf
        assert _zscore(0.1, [0.2, 0.2, 0.2]) == -np.inf
        assert _zscore(0.2, [0.2, 0.2, 0.2]) == 0.0
        assert _zscore(0.1 + 0.2, [0.3, 0.1 + 0.2, 0.3]) == 0.0      # rounding
    assert _zscore(1.0, [0.0, 1.0, 2.0]) == 0.0
    assert _zscore(3.0, [0.0, 1.0, 2.0]) == pytest.approx(2.0)
