"""Result objects: attribute access, and tuple unpacking as ``(statistic, pvalue)``."""

from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

#: A confidence interval, as SciPy's results return it.
ConfidenceInterval = namedtuple("ConfidenceInterval", ["low", "high"])


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

    Unpacks as ``statistic, pvalue = result``; ``pvalue`` is NaN unless a test was
    asked for.

    Attributes
    ----------
    statistic : float
        T_n(Y, Z | X), or T_n(Y, Z) without a conditioning set (bias-corrected when
        asked). For L-CODEC, the mean over the randomized repeats.
    pvalue : float
        p-value against independence (given X for the conditional coefficient), or
        NaN.
    n_samples : int
        Rows used (after dropping NaN rows with ``nan_policy='omit'``).
    standard_error : float
        The estimated standard error of ``statistic`` (``method='asymptotic'``), or
        NaN.
    statistics : ndarray or None
        L-CODEC only: the value of each randomized repeat.
    null_distribution : ndarray or None
        The permutation null distribution, when a permutation method was used.
    """

    n_samples: int = 0
    standard_error: float = np.nan
    statistics: np.ndarray | None = field(default=None, repr=False)
    null_distribution: np.ndarray | None = field(default=None, repr=False)

    def confidence_interval(self, confidence_level=0.95):
        """A confidence interval for the population coefficient T.

        ``statistic`` plus and minus the normal quantile times ``standard_error``,
        clipped to [0, 1] (where T lies); NaN for a NaN statistic. Needs
        ``codec(..., method='asymptotic')``.

        Parameters
        ----------
        confidence_level : float, default=0.95
            In (0, 1).

        Returns
        -------
        ConfidenceInterval
            A named tuple ``(low, high)``.
        """
        from scipy.stats import norm

        if not 0 < confidence_level < 1:
            raise ValueError(
                f"`confidence_level` must be in (0, 1), got {confidence_level!r}.")
        if np.isnan(self.statistic):
            return ConfidenceInterval(np.nan, np.nan)
        if np.isnan(self.standard_error):
            raise ValueError(
                "confidence_interval needs a standard error: call codec(..., "
                "method='asymptotic')."
            )
        half_width = norm.ppf(0.5 + confidence_level / 2) * self.standard_error
        return ConfidenceInterval(float(np.clip(self.statistic - half_width, 0, 1)),
                                  float(np.clip(self.statistic + half_width, 0, 1)))


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
