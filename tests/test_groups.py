"""Grouped candidates in FOCI, L-FOCI and the selectors."""

import numpy as np
import pytest

from chatterjee import FOCISelector, LFOCISelector, codec, foci, lfoci


def _embedding_data(seed, n=1500):
    """y depends on the 3-D variable 1 through its norm and on the 2-D variable 3."""
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 1, 2, 3]
    groups = np.repeat(np.arange(len(sizes)), sizes)
    X = rng.normal(size=(n, groups.size))
    radius = np.linalg.norm(X[:, groups == 1], axis=1)
    y = np.sin(2 * radius) + X[:, groups == 3].sum(axis=1) ** 2 + 0.1 * rng.normal(size=n)
    return X, y, groups


@pytest.mark.parametrize("select", [foci, lfoci])
def test_singleton_groups_equal_the_ungrouped_selection(select):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 6))
    y = X[:, 2] * X[:, 4] + np.cos(X[:, 0]) + 0.2 * rng.normal(size=400)
    plain = select(X, y, stop=False, random_state=0)
    grouped = select(X, y, groups=np.arange(6), stop=False, random_state=0)
    np.testing.assert_array_equal(plain.selected, grouped.selected)
    np.testing.assert_array_equal(plain.selected_columns, grouped.selected_columns)
    np.testing.assert_array_equal(plain.scores, grouped.scores)
    np.testing.assert_array_equal(plain.gains, grouped.gains)


def test_groups_are_picked_whole_and_scores_are_codec_of_the_blocks():
    X, y, groups = _embedding_data(0)
    result = foci(X, y, groups=groups, random_state=0)
    assert list(result.selected[:2]) in ([1, 3], [3, 1])
    columns = np.concatenate([np.flatnonzero(groups == g) for g in result.selected])
    np.testing.assert_array_equal(result.selected_columns, columns)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    for step in range(result.selected.size):
        block = np.concatenate(
            [np.flatnonzero(groups == g) for g in result.selected[: step + 1]]
        )
        assert result.scores[step] == pytest.approx(
            codec(y, Xs[:, block]).statistic, abs=1e-12
        )


def test_string_labels_and_lowest_label_wins_ties():
    rng = np.random.default_rng(1)
    n = 300
    signal = rng.normal(size=(n, 2))
    X = np.hstack([signal, signal, rng.normal(size=(n, 1))])  # two identical groups
    y = signal.sum(axis=1) ** 2
    groups = np.array(["b", "b", "a", "a", "c"])
    result = foci(X, y, groups=groups, max_features=1, random_state=0)
    assert result.selected.tolist() == ["a"]
    assert result.selected_columns.tolist() == [2, 3]


def test_grouped_bad_input():
    X, y, groups = _embedding_data(2, n=50)
    with pytest.raises(ValueError, match="groups"):
        foci(X, y, groups=groups[:-1])
    with pytest.raises(ValueError, match="max_features.*groups"):
        foci(X, y, groups=groups, max_features=6)
    Xc = X.copy()
    Xc[:, groups == 2] = 1.0  # a whole group constant: never a candidate
    with pytest.warns(UserWarning, match="constant"):
        result = foci(Xc, y, groups=groups, stop=False, random_state=0)
    assert 2 not in result.selected.tolist() and result.selected.size == 4


@pytest.mark.parametrize("Selector", [FOCISelector, LFOCISelector])
def test_selector_with_groups(Selector):
    X, y, groups = _embedding_data(4, n=800)
    selector = Selector(groups=groups, random_state=0).fit(X, y)
    chosen = set(selector.selected_groups_[:2].tolist())
    assert chosen == {1, 3}
    np.testing.assert_array_equal(
        selector.support_, np.isin(groups, selector.selected_groups_)
    )
    assert selector.transform(X).shape[1] == selector.support_.sum()
    with pytest.raises(ValueError, match="groups"):
        Selector(groups=groups, max_features=9).fit(X, y)
