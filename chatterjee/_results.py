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
        Permutation p-value against independence, or NaN.
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
