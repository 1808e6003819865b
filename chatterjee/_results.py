"""Result objects: attribute access, and tuple unpacking as ``(statistic, pvalue)``."""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class _StatisticResult:
    statistic: float
    pvalue: float = np.nan

    def __iter__(self):
        return iter((self.statistic, self.pvalue))

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return (self.statistic, self.pvalue)[index]


@dataclass(frozen=True)
class XiResult(_StatisticResult):
    """Result of :func:`chatterjee.xi`.

    Unpacks as ``statistic, pvalue = result``, like :func:`scipy.stats.chatterjeexi`.

    Attributes
    ----------
    statistic : float
        Chatterjee's xi_n(x -> y).
    pvalue : float
        One-sided p-value against independence (large xi is evidence of dependence).
    n_samples : int
        Rows used (after dropping NaN rows with ``nan_policy='omit'``).
    null_distribution : ndarray or None
        The permutation null distribution, when a permutation method was used.
    """

    n_samples: int = 0
    null_distribution: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CodecResult(_StatisticResult):
    """Result of :func:`chatterjee.codec` and :func:`chatterjee.lcodec`.

    Unpacks as ``statistic, pvalue = result``; ``pvalue`` is NaN unless a permutation
    test was asked for.

    Attributes
    ----------
    statistic : float
        T_n(Y, Z | X), or T_n(Y, Z) without a conditioning set. For L-CODEC, the mean
        over the randomized repeats.
    pvalue : float
        Permutation p-value against independence (given X for the conditional
        coefficient), or NaN.
    n_samples : int
        Rows used (after dropping NaN rows with ``nan_policy='omit'``).
    statistics : ndarray or None
        L-CODEC only: the value of each randomized repeat.
    null_distribution : ndarray or None
        The permutation null distribution, when a permutation method was used.
    """

    n_samples: int = 0
    statistics: np.ndarray | None = field(default=None, repr=False)
    null_distribution: np.ndarray | None = field(default=None, repr=False)


class FociPathPlot:
    """The ``plot`` method of :class:`chatterjee.FociResult`: the FOCI score path."""

    def plot(self, ax=None):
        """Draw the FOCI score path: T_n(Y, X_S) after each pick.

        Step k shows the score of the first k picks; each step is labelled by the
        feature it added (its column name when the input had names, else its column
        index or group label). Requires matplotlib (``pip install matplotlib``, or the ``plot`` extra).

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw (a new figure when None).

        Returns
        -------
        matplotlib.axes.Axes
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                "FociResult.plot needs matplotlib: pip install matplotlib "
                "(or the plot extra: pip install -e '.[plot]' in a clone)"
            ) from error

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        scores = np.asarray(self.scores, dtype=np.float64)
        steps = np.arange(1, len(scores) + 1)
        names = self.feature_names
        if names is not None and len(names) == len(self.selected):
            labels = [str(name) for name in names]
        else:
            labels = [str(label) for label in self.selected]
        ax.plot(steps, scores, marker="o", color="C0")
        ax.axhline(0.0, color="0.7", linewidth=0.8, zorder=0)
        ax.set_xticks(steps, labels, rotation=45 if len(steps) > 6 else 0,
                      ha="right" if len(steps) > 6 else "center")
        ax.set_xlim(0.5, max(len(steps), 1) + 0.5)
        ax.set_xlabel("feature added at each step")
        ax.set_ylabel("T_n(Y, X_S)")
        ax.set_title("FOCI score path" if len(steps) else "FOCI score path (nothing selected)")
        return ax
