"""Ranks of the response with R's tie rule (``ties.method = "max"``)."""

from array_api_compat import array_namespace, device


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
    order = xp.argsort(y, stable=False)
    sorted_y = xp.take(y, order)
    starts_group = xp.concat(
        (xp.ones(1, dtype=xp.bool, device=dev), sorted_y[1:] != sorted_y[:-1])
    )
    group_start = xp.nonzero(starts_group)[0]
    group_end = xp.concat((group_start[1:], xp.full(1, n, dtype=group_start.dtype,
                                                    device=dev)))
    group = xp.cumulative_sum(xp.astype(starts_group, xp.int64)) - 1
    R = xp.empty(n, dtype=xp.int64, device=dev)
    L = xp.empty(n, dtype=xp.int64, device=dev)
    R[order] = xp.astype(xp.take(group_end, group), xp.int64)
    L[order] = n - xp.astype(xp.take(group_start, group), xp.int64)
    return R, L


def is_constant(R, L):
    """True when every response value is equal (y[0] is both the largest and smallest)."""
    n = R.shape[0]
    return bool(int(R[0]) == n and int(L[0]) == n)
