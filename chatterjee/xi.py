"""Chatterjee's rank correlation xi_n(x -> y) and its p-values."""

import math

import numpy as np

from ._permutation import check_method, permutation_pvalue
from ._ranks import is_constant, max_ranks
from ._results import XiResult
from ._validation import check_random_state, check_samples, warn_constant
from .codec import check_ties

__all__ = ["xi"]


def _xi_from_ranks(r_by_x, l_sum, n, y_continuous):
    """xi from the ranks of y in x order; ``l_sum = sum L_i (n - L_i)``; any leading axes."""
    total_variation = np.abs(np.diff(r_by_x, axis=-1)).sum(axis=-1)
    if y_continuous:
        return 1 - 3 * total_variation / (n**2 - 1)
    return 1 - n * total_variation / (2 * l_sum)


def _expected_variation(r_by_x, starts, ends):
    """``E[sum_i |r_(i+1) - r_(i)|]`` when the order within each run of tied x values
    is uniformly random; ``r_by_x`` in x order, the runs at ``[starts, ends)``.

    Within a run of m values, each adjacent pair is a uniform ordered pair of distinct
    members: the run contributes ``sum_{a != b} |r_a - r_b| / m``. Across a run
    boundary the pair is a uniform member of each run: ``mean |r_a - r_b|``.
    """
    n = r_by_x.shape[0]
    sizes = ends - starts
    run = np.repeat(np.arange(starts.shape[0]), sizes)
    keys = run * (n + 2) + r_by_x                  # r <= n: runs stay apart
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], r_by_x[order].astype(np.float64)
    prefix = np.concatenate(([0.0], np.cumsum(values)))
    # within runs: sum_{a < b} (v_b - v_a) = sum_j v_(j) (2 j - m + 1), j from 0
    j = np.arange(n) - starts[run]
    within = np.add.reduceat(values * (2 * j - sizes[run] + 1), starts)
    total = float(np.sum(2 * within / sizes))
    # across the boundary of runs g and g + 1: every member a of g against run g + 1
    a = np.flatnonzero(run < starts.shape[0] - 1)
    if a.shape[0]:
        nxt = run[a] + 1
        lo, hi = starts[nxt], ends[nxt]
        pos = np.searchsorted(keys, nxt * (n + 2) + values[a])      # next's r < r_a
        below, above = prefix[pos] - prefix[lo], prefix[hi] - prefix[pos]
        distance = (values[a] * (pos - lo) - below + above - values[a] * (hi - pos))
        total += float(np.sum(distance / (sizes[run[a]] * sizes[nxt])))
    return total


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


def xi(x, y, *, y_continuous=False, ties="random", method="asymptotic",
       nan_policy="propagate", random_state=None):
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
    ties : {'random', 'average'}, default='random'
        Tied x values: put in a uniformly random order (Chatterjee's rule; the
        answer depends on the seed), or averaged over all their orders: the
        expectation of the 'random' statistic, the same for every seed. Without
        ties in x both are the same.
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
    ties = check_ties(ties)
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

    l_sum = np.sum((n - L) * L, dtype=np.float64)
    if ties == "average":
        order = np.argsort(x, kind="stable")
        starts = np.flatnonzero(np.concatenate(([True], x[order][1:] != x[order][:-1])))
        ends = np.append(starts[1:], n)
        r_by_x = R[order]

        def statistic_of(r, axis=-1):
            variation = np.array([_expected_variation(row, starts, ends)
                                  for row in np.reshape(r, (-1, n))]).reshape(r.shape[:-1])
            if y_continuous:
                return 1 - 3 * variation / (n**2 - 1)
            return 1 - n * variation / (2 * l_sum)
    else:
        shuffle = rng.permutation(n)
        order = shuffle[np.argsort(x[shuffle], kind="stable")]
        r_by_x = R[order].astype(np.float64)

        def statistic_of(r, axis=-1):
            return _xi_from_ranks(r, l_sum, n, y_continuous)

    if method == "asymptotic":
        statistic = float(statistic_of(r_by_x))
        std = _null_std(R, L, n, y_continuous)
        from scipy.special import ndtr

        return XiResult(statistic, float(ndtr(-statistic / std)), n_samples=n)

    statistic, pvalue, null = permutation_pvalue(statistic_of, r_by_x, method, rng)
    return XiResult(statistic, pvalue, n_samples=n, null_distribution=null)
