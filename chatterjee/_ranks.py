"""Ranks of the response with R's tie rule (``ties.method = "max"``)."""

import numpy as np


def max_ranks(y):
    """Return ``R_i = #{j : y_j <= y_i}`` and ``L_i = #{j : y_j >= y_i}``.

    Ties in ``y`` never need randomness: tied values share R and L. One sort, then
    linear work.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Finite float64 values.

    Returns
    -------
    R, L : ndarray of shape (n,), int64
    """
    n = y.shape[0]
    order = np.argsort(y)
    sorted_y = y[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    np.not_equal(sorted_y[1:], sorted_y[:-1], out=starts_group[1:])
    group_start = np.flatnonzero(starts_group)
    group_end = np.append(group_start[1:], n)
    group = np.cumsum(starts_group) - 1
    R = np.empty(n, dtype=np.int64)
    L = np.empty(n, dtype=np.int64)
    R[order] = group_end[group]
    L[order] = n - group_start[group]
    return R, L


def is_constant(R, L):
    """True when every response value is equal (y[0] is both the largest and smallest)."""
    n = R.shape[0]
    return bool(R[0] == n and L[0] == n)
