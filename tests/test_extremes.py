"""No silent wrong answers: extreme magnitudes, huge n, masked and exotic inputs.

Each input here once gave a wrong number without a word (or an error that named no
argument); each now gets the right answer or a clear error.
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from chatterjee import (
    FOCISelector,
    LFOCISelector,
    codec,
    foci,
    lcodec,
    lfoci,
    markov_blanket,
    markov_blankets,
    xi,
)
from chatterjee.backends import nearest_neighbors, safe_scale
from chatterjee.xi import _null_std

RNG = np.random.default_rng(7)
Z = RNG.normal(size=(500, 2))
Y = Z[:, 0] + Z[:, 1]
X6 = RNG.normal(size=(300, 6))
Y6 = X6[:, 0] * X6[:, 1] + np.sin(X6[:, 2])


def brute_force_neighbors(points):
    """The nearest neighbour of each point by an O(n^2) search (no ties expected)."""
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d2, np.inf)
    return d2.argmin(axis=1)


# --- xi's null variance past int64 -------------------------------------------------

def test_xi_null_variance_does_not_wrap_past_int64():
    # sum L (n - L) = n^3 / 6 for tie-free y, past 2**63 here: it wrapped in int64.
    n = 4_000_000
    R = np.arange(1, n + 1)
    L = n + 1 - R
    assert _null_std(R, L, n, y_continuous=False) * math.sqrt(n) == pytest.approx(
        math.sqrt(2 / 5), rel=1e-9)


def test_xi_pvalue_at_large_n_matches_the_continuous_formula():
    n = 4_000_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    y = np.sin(3 * x) + 8 * rng.normal(size=n)
    ties_formula = xi(x, y, random_state=0)
    continuous = xi(x, y, y_continuous=True, random_state=0)
    assert ties_formula.pvalue < 1e-30
    assert ties_formula.pvalue == pytest.approx(continuous.pvalue, rel=1e-6)


# --- neighbour search at extreme magnitudes ----------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_one_far_outlier_leaves_codec_unchanged(backend):
    if backend == "torch":
        torch = pytest.importorskip("torch")
    far = Z.copy()
    far[0] = (1e200, 0.0)
    y, z = (Y, far) if backend == "numpy" else (torch.tensor(Y), torch.tensor(far))
    moved = codec(y, z, backend=backend, random_state=0).statistic
    # The far point is nobody's nearest neighbour: only its own term changes.
    assert moved == pytest.approx(codec(Y, Z, random_state=0).statistic, abs=0.01)
    assert moved > 0.9


def test_one_far_outlier_keeps_the_exact_graph():
    far = Z.copy()
    far[0] = (1e200, 0.0)
    graph = nearest_neighbors(far, np.random.default_rng(0))
    expected = brute_force_neighbors(Z)  # the others' neighbours are unchanged
    assert np.array_equal(graph[1:], expected[1:])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_columns_spanning_200_orders_of_magnitude(backend):
    if backend == "torch":
        torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    # Log-uniform magnitudes from 1e-100 to 1e100: neighbours decided at every scale.
    points = 10.0 ** rng.uniform(-100, 100, size=(300, 2)) * rng.choice([-1, 1], (300, 2))
    # np.hypot neither overflows nor underflows: the distances a search must respect.
    distances = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(distances, np.inf)
    data = points if backend == "numpy" else torch.tensor(points)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = np.asarray(nearest_neighbors(data, np.random.default_rng(0)))
    found = distances[np.arange(300), graph]
    nearest = distances.min(axis=1)
    assert np.all(found <= nearest * (1 + 1e-12))
    assert np.mean(found == nearest) > 0.95  # and not by ties everywhere


def test_safe_scale_is_a_power_of_two_and_keeps_ordinary_data():
    ordinary = RNG.normal(size=(50, 3))
    assert safe_scale(ordinary) is ordinary
    for factor in (1e200, 1e-200, 1e300):
        raw = ordinary * factor
        scaled = safe_scale(raw)
        assert np.all(np.isfinite(scaled))
        assert np.array_equal(np.frexp(scaled)[0], np.frexp(raw)[0])  # same mantissas
        assert np.unique(np.frexp(scaled)[1] - np.frexp(raw)[1]).size == 1  # one shift


def test_unresolvable_range_warns():
    points = np.array([[1e300, 0.0], [0.0, 0.0], [1e-300, 0.0], [2e-300, 0.0]])
    with pytest.warns(RuntimeWarning, match="orders of magnitude"):
        safe_scale(points)


# --- standardize at extreme magnitudes --------------------------------------------

@pytest.mark.parametrize("factor", [1e160, 1e-300, 2.0**1000])
@pytest.mark.parametrize("standardize", ["scale", "bounded"])
def test_selection_ignores_the_unit(factor, standardize):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for select in (foci, lfoci):
            expected = select(X6, Y6, standardize=standardize, random_state=0).selected
            got = select(X6 * factor, Y6, standardize=standardize, random_state=0).selected
            assert got.tolist() == expected.tolist()
        blanket = markov_blanket(X6, Y6, standardize=standardize, random_state=0).blanket
        assert markov_blanket(X6 * factor, Y6, standardize=standardize,
                              random_state=0).blanket.tolist() == blanket.tolist()
        support = FOCISelector(random_state=0, standardize=standardize).fit(
            X6, Y6).get_support()
        assert np.array_equal(FOCISelector(random_state=0, standardize=standardize).fit(
            X6 * factor, Y6).get_support(), support)


# --- masked arrays and other exotic inputs -----------------------------------------

def test_masked_entries_are_missing_values():
    x = np.ma.array(np.arange(10.0), mask=[0] * 9 + [1])
    x.data[9] = 1e6  # hidden behind the mask: must never be used
    y = np.arange(10.0) % 4
    assert math.isnan(xi(x, y).statistic)
    with pytest.raises(ValueError, match="`x`.*NaN"):
        xi(x, y, nan_policy="raise")
    omitted = xi(x, y, nan_policy="omit", random_state=0)
    assert omitted == xi(np.arange(9.0), y[:9], random_state=0)
    masked_y = np.ma.array(Y, mask=np.arange(500) == 3)
    assert codec(masked_y, Z, nan_policy="omit", random_state=0) == codec(
        np.delete(Y, 3), np.delete(Z, 3, axis=0), random_state=0)


def test_integers_float64_cannot_tell_apart_are_refused():
    with pytest.raises(ValueError, match="`x`.*2\\*\\*53"):
        xi(np.array([2**60, 2**60 + 1, 2**60 + 2, 5]), [1.0, 2.0, 3.0, 4.0])
    big_but_distinct = np.array([2**60, 2**61, 2**62, 5])
    assert xi(big_but_distinct, [1.0, 2.0, 3.0, 4.0]).statistic is not None


def test_values_beyond_float64_are_refused():
    wide = np.array([np.longdouble("1e400"), 1, 2])
    if not np.isfinite(wide[0]):
        pytest.skip("long double is float64 here")
    with pytest.raises(ValueError, match="`x`.*float64 range"):
        xi(wide, [1.0, 2.0, 3.0])


def test_torch_inputs_of_every_kind():
    torch = pytest.importorskip("torch")
    y, z = torch.tensor(Y), torch.tensor(Z)
    expected = codec(Y, Z, random_state=0).statistic
    # bfloat16 on the CPU goes to NumPy through float64 (the values are rounded).
    low = codec(y.to(torch.bfloat16), z.to(torch.bfloat16), random_state=0).statistic
    assert low == pytest.approx(expected, abs=0.05)
    assert codec(y.to(torch.bfloat16), z, backend="torch", random_state=0).statistic \
        == pytest.approx(expected, abs=0.05)
    with pytest.raises(ValueError, match="`z` is a meta tensor"):
        codec(y, z.to("meta"))
    graded = torch.tensor(X6, requires_grad=True)
    for selector in (FOCISelector(random_state=0), LFOCISelector(random_state=0)):
        support = selector.fit(graded, torch.tensor(Y6)).get_support()
        assert np.array_equal(support, selector.fit(X6, Y6).get_support())
        assert selector.transform(graded).shape == (300, support.sum())


@pytest.mark.parametrize(("call", "name"), [
    (lambda: codec(Y, Z, random_state=-1), "random_state"),
    (lambda: foci(X6, Y6, random_state=-1), "random_state"),
    (lambda: lfoci(X6, Y6, noise_scale="1e-3"), "noise_scale"),
    (lambda: lcodec(Y, Z, noise_scale="1e-3"), "noise_scale"),
    (lambda: markov_blanket(X6, Y6, randomized=True, noise_scale="1e-3"), "noise_scale"),
    (lambda: foci(X6, Y6, n_jobs=0), "n_jobs"),
    (lambda: foci(X6, Y6, n_jobs=1.5), "n_jobs"),
    (lambda: codec(Y, Z, workers=0), "workers"),
    (lambda: codec(Y, Z, workers=1.5), "workers"),
    (lambda: lcodec(Y, Z, workers=-2), "workers"),
    (lambda: markov_blankets(X6[:, :1]), "data"),
    (lambda: markov_blankets(X6[:, :, None]), "data"),
])
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()


# --- nan_policy everywhere ---------------------------------------------------------

def _with_nan():
    X, y = X6.copy(), Y6.copy()
    X[4, 0] = np.nan
    y[9] = np.nan
    return X, y


def test_selections_take_nan_policy():
    X, y = _with_nan()
    keep = np.ones(300, dtype=bool)
    keep[[4, 9]] = False
    for select in (foci, lfoci):
        with pytest.raises(ValueError, match="NaN"):
            select(X, y, random_state=0)
        with pytest.raises(ValueError, match="`nan_policy`"):
            select(X, y, nan_policy="propagate")
        assert select(X, y, nan_policy="omit", random_state=0).selected.tolist() == \
            select(X6[keep], Y6[keep], random_state=0).selected.tolist()
    assert markov_blanket(X, y, nan_policy="omit", random_state=0).blanket.tolist() == \
        markov_blanket(X6[keep], Y6[keep], random_state=0).blanket.tolist()
    data = np.column_stack([X, y])
    with pytest.raises(ValueError, match="NaN"):
        markov_blankets(data, random_state=0)
    assert np.array_equal(markov_blankets(data, nan_policy="omit", random_state=0),
                          markov_blankets(np.column_stack([X6, Y6])[keep], random_state=0))


def test_selectors_reject_nan_unless_told():
    X, y = _with_nan()
    keep = np.ones(300, dtype=bool)
    keep[[4, 9]] = False
    with pytest.raises(ValueError, match="NaN"):
        FOCISelector(random_state=0).fit(X, y)
    selector = FOCISelector(random_state=0, nan_policy="omit").fit(X, y)
    assert np.array_equal(selector.get_support(),
                          FOCISelector(random_state=0).fit(X6[keep], Y6[keep]).get_support())
    assert np.isnan(selector.transform(X)).any()  # transform passes NaN through


# --- names for DataFrames ----------------------------------------------------------

def test_markov_blanket_of_a_dataframe_names_its_members():
    frame = pd.DataFrame(X6, columns=[f"v{j}" for j in range(6)])
    named = markov_blanket(frame, Y6, random_state=0)
    plain = markov_blanket(X6, Y6, random_state=0)
    assert named.blanket.tolist() == [f"v{j}" for j in plain.blanket]
    assert named.blanket_columns.tolist() == plain.blanket.tolist()
    assert plain.blanket_columns.tolist() == plain.blanket.tolist()
    grouped = markov_blanket(X6, Y6, groups=[0, 0, 1, 2, 3, 4], random_state=0)
    assert set(grouped.blanket_columns) == {
        j for j, g in enumerate([0, 0, 1, 2, 3, 4]) if g in grouped.blanket}
