"""Ranks of the response with R's tie rule (``ties.method = "max"``)."""

from array_api_compat import array_namespace, device


def sorted_groups(values, *, stable=False):
    """Sort ``values`` and find its runs of equal values.

    Parameters
    ----------
    values : array of shape (n,)
    stable : bool, default=False
        Keep the input order among equal values.

    Returns
    -------
    order : array of shape (n,)
        The sorting permutation.
    sorted_values : array of shape (n,)
    group : array of shape (n,), int64
        The run of each sorted position (0, 1, ...).
    start, end : arrays of shape (n_groups,)
        Sorted positions ``[start, end)`` of each run.
    """
    xp = array_namespace(values)
    dev = device(values)
    n = values.shape[0]
    order = xp.argsort(values, stable=stable)
    sorted_values = xp.take(values, order)
    starts_group = xp.concat(
        (xp.ones(1, dtype=xp.bool, device=dev), sorted_values[1:] != sorted_values[:-1])
    )
    start = xp.nonzero(starts_group)[0]
    end = xp.concat((start[1:], xp.full(1, n, dtype=start.dtype, device=dev)))
    group = xp.cumulative_sum(xp.astype(starts_group, xp.int64)) - 1
    return order, sorted_values, group, start, end


def max_ranks(y):
    """Return ``R_i = #{j : y_j <= y_i}`` and ``L_i = #{j : y_j >= y_i}``.

    Ties in ``y`` never need randomness: tied values share R and L. One sort, then
    linear work, in ``y``'s array library and on its device.

    Parameters
    ----------
    y : array of shape (n,)
        Finite float64 values (NumPy, PyTorch or CuPy).

    Returns
    -------
    R, L : arrays of shape (n,), int64
    """
    xp = array_namespace(y)
    dev = device(y)
    n = y.shape[0]
    order, _, group, group_start, group_end = sorted_groups(y)
    R = xp.empty(n, dtype=xp.int64, device=dev)
    L = xp.empty(n, dtype=xp.int64, device=dev)
    R[order] = xp.astype(xp.take(group_end, group), xp.int64)
    L[order] = n - xp.astype(xp.take(group_start, group), xp.int64)
    return R, L


def is_constant(R, L):
    """True when every response value is equal (y[0] is both the largest and smallest)."""
    n = R.shape[0]
    return bool(int(R[0]) == n and int(L[0]) == n)
