"""FociResult.plot: the FOCI score path (matplotlib, Agg backend)."""

import sys

import numpy as np
import pytest

from chatterjee import ConstantInputWarning, FociResult, foci
from chatterjee._results import FociPathPlot

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(result, **kwargs):
    """``result.plot(...)``."""
    return result.plot(**kwargs)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2])
    return X, y


def test_foci_result_has_the_plot_method():
    assert issubclass(FociResult, FociPathPlot)
    assert callable(FociResult.plot)
    result = FociResult(np.array([1]), np.array([0.5]), np.array([0.5]), np.array([1]))
    assert result.plot.__func__ is FociPathPlot.plot


def test_plot_draws_the_score_path(data):
    X, y = data
    result = foci(X, y, random_state=0)
    ax = plot(result)
    assert isinstance(ax, matplotlib.axes.Axes)
    (line,) = ax.get_lines()[:1]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(result.selected) + 1))
    np.testing.assert_allclose(line.get_ydata(), result.scores)
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == [str(j) for j in result.selected]


def test_plot_uses_column_names_and_the_given_axes(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    result = foci(frame, y, random_state=0)
    _, given = plt.subplots()
    ax = plot(result, ax=given)
    assert ax is given
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == [f"x{j}" for j in result.selected]


def test_plot_labels_groups(data):
    X, y = data
    groups = ["a", "a", "b", "c", "d", "d"]
    result = foci(X, y, groups=groups, random_state=0)
    ax = plot(result)
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == [str(label) for label in result.selected]


def test_plot_of_an_empty_selection():
    X = np.random.default_rng(1).normal(size=(50, 3))
    with pytest.warns(ConstantInputWarning):
        result = foci(X, np.ones(50), random_state=0)
    assert len(result.selected) == 0
    ax = plot(result)
    assert "nothing selected" in ax.get_title()


def test_plot_without_matplotlib_says_what_to_install(data, monkeypatch):
    X, y = data
    result = foci(X, y, random_state=0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="needs matplotlib"):
        plot(result)
