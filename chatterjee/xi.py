"""Chatterjee's rank correlation xi_n(x -> y) and its p-values."""

import math

import numpy as np

from ._permutation import check_method, permutation_pvalue
from ._ranks import is_constant, max_ranks
from ._results import XiResult
from ._validation import check_random_state, check_samples, warn_constant

__all__ = ["xi"]


def _xi_from_ranks(r_by_x, l_sum, n, y_continuous):
    """xi from the ranks of y in x order; ``l_sum = sum L_i (n - L_i)``; any leading axes."""
    total_variation = np.abs(np.diff(r_by_x, axis=-1)).sum(axis=-1)
    if y_continuous:
        return 1 - 3 * total_variation / (n**2 - 1)
    return 1 - n * total_variation / (2 * l_sum)


def _null_std(R, L, n, y_continuous):
    """Asymptotic standard deviation of xi under independence (Chatterjee 2021, Thm 2.2)."""
    if y_continuous:
        return math.sqrt(2 / 5) / math.sqrt(n)
    # Floats throughout: sum L (n - L) reaches n**3 / 4, past int64 beyond n ~ 3.3e6.
    L = L.astype(np.float64)
    i = np.arange(1, n + 1, dtype=np.float64)
    u = np.sort(R).astype(np.float64)
    v = np.cumsum(u)
    an = 1 / n**4 * np.sum((2 * n - 2 * i + 1) * u**2)
    bn = 1 / n**5 * np.sum((v + (n - i) * u) ** 2)
    cn = 1 / n**3 * np.sum((2 * n - 2 * i + 1) * u)
    dn = 1 / n**3 * np.sum(L * (n - L))
    return math.sqrt((an - 2 * bn + cn**2) / dn**2) / math.sqrt(n)


def xi(x, y, *, y_continuous=False, method="asymptotic", nan_policy="propagate",
       random_state=None):
    r"""Chatterjee's rank correlation xi_n(x -> y).

    xi measures how well y is a measurable function of x: it is 0 in the limit when
    they are independent and 1 when y is a noiseless function of x. It is not
    symmetric.

    Parameters
    ----------
    x, y : array_like of shape (n,)
        Paired samples (lists, NumPy arrays, pandas Series; any real dtype).
    y_continuous : bool, default=False
        If True, assume y has no ties and use the simpler formula (1.1) of
        Chatterjee (2021) and its N(0, 2/5) null; otherwise formula (1.2), valid with
        ties in y.
    method : {'asymptotic', 'permutation'} or scipy.stats.PermutationMethod
        How to compute the one-sided p-value: the normal limit under independence,
        or a permutation test ('permutation' uses 9999 resamples drawn from
        ``random_state``).
    nan_policy : {'propagate', 'raise', 'omit'}, default='propagate'
        NaN in the input: return NaN, raise, or drop the pairs that hold one.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the random order given to tied x values (and the permutations when
        ``method='permutation'``). Tie-free x gives the same answer for every seed.

    Returns
    -------
    XiResult
        ``statistic`` and ``pvalue`` (unpacks as a pair), ``n_samples`` and, for
        permutation tests, ``null_distribution``.

    See Also
    --------
    scipy.stats.chatterjeexi : the same statistic; ties in x are broken by sort order.
    codec : the multivariate, conditional generalization T_n(Y, Z | X).

    Notes
    -----
    Sort the pairs by x, breaking ties in x uniformly at random, and let
    :math:`r_i = \#\{j : y_j \le y_{(i)}\}`, :math:`l_i = \#\{j : y_j \ge y_{(i)}\}`:

    .. math::

        \xi_n = 1 - \frac{n \sum_{i=1}^{n-1} |r_{i+1} - r_i|}{2 \sum_i l_i (n - l_i)}.

    A constant y makes the coefficient undefined: NaN is returned with a
    :class:`ConstantInputWarning`. Fewer than 3 pairs raise ``ValueError``.

    References
    ----------
    S. Chatterjee, "A new coefficient of correlation", JASA 116 (2021) 2009-2022.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import xi
    >>> x = np.linspace(-2, 2, 201)
    >>> res = xi(x, x**2)
    >>> round(res.statistic, 4)
    0.9703
    >>> statistic, pvalue = res
    >>> pvalue < 1e-10
    True
    """
    if y_continuous not in (True, False):
        raise ValueError("`y_continuous` must be True or False.")
    method = check_method(method, ("asymptotic", "permutation"))
    data, has_nan = check_samples(
        {"x": (x, False), "y": (y, False)}, nan_policy=nan_policy
    )
    x, y = data["x"], data["y"]
    n = x.shape[0]
    if has_nan:
        return XiResult(np.nan, np.nan, n_samples=n)
    rng = check_random_state(random_state)
    R, L = max_ranks(y)
    if is_constant(R, L):
        warn_constant("`y` is constant")
        return XiResult(np.nan, np.nan, n_samples=n)

    shuffle = rng.permutation(n)
    order = shuffle[np.argsort(x[shuffle], kind="stable")]
    r_by_x = R[order].astype(np.float64)
    l_sum = np.sum((n - L) * L, dtype=np.float64)

    if method == "asymptotic":
        statistic = float(_xi_from_ranks(r_by_x, l_sum, n, y_continuous))
        std = _null_std(R, L, n, y_continuous)
        from scipy.special import ndtr

        return XiResult(statistic, float(ndtr(-statistic / std)), n_samples=n)

    statistic, pvalue, null = permutation_pvalue(
        lambda r, axis: _xi_from_ranks(r, l_sum, n, y_continuous), r_by_x, method, rng
    )
    return XiResult(statistic, pvalue, n_samples=n, null_distribution=null)
