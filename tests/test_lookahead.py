"""lookahead=2: features that matter only together enter together."""

import numpy as np
import pytest

from chatterjee import FOCISelector, foci, lfoci


def interaction(kind, seed, n=800, p=20):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    signal = X[:, 3] * X[:, 11] if kind == "product" else np.sign(X[:, 3] * X[:, 11])
    return X, signal + 0.5 * rng.normal(size=n)


@pytest.mark.parametrize("kind", ["product", "xor"])
def test_pairs_that_matter_only_together_are_found(kind):
    found = {1: 0, 2: 0}
    for seed in range(3):
        X, y = interaction(kind, seed)
        for lookahead in (1, 2):
            selected = foci(X, y, lookahead=lookahead, random_state=seed).selected
            found[lookahead] += set(selected[:2].tolist()) == {3, 11}
    assert found[2] == 3
    assert found[1] < 3                      # the greedy step alone misses them


def test_strong_single_features_are_picked_as_before():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 10))
    y = np.sin(X[:, 2]) + X[:, 7] + 0.2 * rng.normal(size=600)
    assert (foci(X, y, lookahead=2, random_state=0).selected.tolist()
            == foci(X, y, random_state=0).selected.tolist() == [7, 2])


def test_pair_respects_max_features_and_scores_both_members():
    X, y = interaction("product", 0)
    assert len(foci(X, y, lookahead=2, max_features=1, random_state=0).selected) == 1
    result = lfoci(X, y, lookahead=2, random_state=0)
    assert set(result.selected[:2].tolist()) == {3, 11}
    assert result.scores[1] > 0.3 and result.gains[1] > 0.3   # the pair's joint gain
    selector = FOCISelector(lookahead=2, random_state=0).fit(X, y)
    assert set(selector.selected_features_[:2].tolist()) == {3, 11}


@pytest.mark.parametrize("lookahead", [0, 3, True, 1.5])
def test_invalid_lookahead(lookahead):
    X, y = interaction("product", 0, n=50, p=12)
    with pytest.raises(ValueError, match="`lookahead` must be 1 or 2"):
        foci(X, y, lookahead=lookahead)
