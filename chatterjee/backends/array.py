"""Exact self-excluded nearest neighbours in an array library (PyTorch, CuPy), on its device.

The same rule as the CPU backend (:mod:`.cpu`): the neighbour of point i is drawn
uniformly among *all* points j != i at the minimal Euclidean distance, with one
uniform draw ``u_i`` per point. The draws come from the same NumPy Generator, in the
same order, and are copied to the device, so a seed gives the CPU path's draws.

* One dimension: one stable sort, the CPU algorithm written against the array
  namespace (the same graph as the CPU path, ties included).
* Two or more dimensions: chunked brute force. Squared distances are summed column
  by column from exact squared differences (never ``|a|^2 + |b|^2 - 2ab``), so equal
  distances are equal bit for bit; a block of query rows against all points is held
  at a time, sized from the memory limit (:func:`set_memory_limit`). Rows whose
  minimum is attained more than once draw among those points in index order.
* Forward selection: :class:`ListedBaseSearch` lists each point's nearest neighbours
  in the selected block once per step; a candidate then scans only that list, and
  rows the list cannot certify go to the brute force.
"""

import importlib
import math

from array_api_compat import array_namespace, device, is_torch_array

from .._ranks import sorted_groups

_MEMORY_LIMIT = 1 << 30
# Floats held per (query row, point) pair in a brute-force block: the distances, one
# column's differences, their squares and the tie mask.
_FLOATS_PER_PAIR = 4
# Length of the neighbour lists of ListedBaseSearch: at least _MIN_LISTED, up to
# _LISTED_PER_ROOT * sqrt(n) when the memory limit allows.
_MIN_LISTED, _LISTED_PER_ROOT = 32, 4


def set_memory_limit(nbytes):
    """Set the memory one brute-force block may use on the device, in bytes.

    A block of B query rows against n points holds about ``32 * B * n`` bytes; B is
    chosen to stay under this limit (at least one row). Default: 1 GiB.

    Parameters
    ----------
    nbytes : int
        The new limit, positive.

    Returns
    -------
    int
        The previous limit.
    """
    global _MEMORY_LIMIT
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError(f"The memory limit must be a positive int, got {nbytes!r}.")
    previous, _MEMORY_LIMIT = _MEMORY_LIMIT, nbytes
    return previous


def get_memory_limit():
    """The memory one brute-force block may use, in bytes (see :func:`set_memory_limit`)."""
    return _MEMORY_LIMIT


def on_device(values, like):
    """``values`` (NumPy) as an array of ``like``'s library on ``like``'s device."""
    return array_namespace(like).asarray(values, device=device(like))


def moderate_scale(points):
    """Rescale by a power of two when squared distances would overflow or underflow.

    The device twin of :func:`.cpu.moderate_scale`: multiplying every coordinate by
    the same power of two is exact, so the graph and its ties are kept.
    """
    xp = array_namespace(points)
    largest = float(xp.max(xp.abs(points)))
    if largest == 0 or 2.0**-300 <= largest <= 2.0**300:
        return points
    exponent = math.frexp(largest)[1]
    return points * 2.0**-exponent


def _draw_below(u, counts):
    """``floor(u * counts)`` kept below ``counts`` (guards the rounding of u * counts)."""
    xp = array_namespace(u)
    drawn = xp.astype(xp.floor(u * xp.astype(counts, xp.float64)), xp.int64)
    return xp.minimum(drawn, counts - 1)


def nearest_neighbors(points, u):
    """Nearest neighbour of every point of ``points`` (n, d): sort for d = 1, else brute force.

    Parameters
    ----------
    points : array of shape (n, d)
        Finite float64 coordinates on the device, n >= 2.
    u : array of shape (n,)
        One uniform [0, 1) draw per point, on the same device.

    Returns
    -------
    array of shape (n,), int64
    """
    if points.shape[1] == 1:
        return nearest_neighbors_1d(points[:, 0], u)
    return nearest_neighbors_brute(points, u)


def nearest_neighbors_1d(values, u):
    """Nearest neighbours of a sample of scalars by sorting (as :func:`.cpu.nearest_neighbors_1d`).

    Parameters
    ----------
    values : array of shape (n,)
    u : array of shape (n,)

    Returns
    -------
    array of shape (n,), int64
    """
    xp = array_namespace(values)
    dev = device(values)
    n = values.shape[0]
    order, sorted_values, group, start, end = sorted_groups(values, stable=True)
    group_values = xp.take(sorted_values, start)
    infinity = xp.full(1, xp.inf, dtype=xp.float64, device=dev)
    gap_left = xp.concat((infinity, group_values[1:] - group_values[:-1]))
    gap_right = xp.concat((gap_left[1:], infinity))

    # Sorted positions [lo, hi) hold the candidates and the point itself.
    lone = end - start == 1
    take_left = lone & (gap_left <= gap_right)
    take_right = lone & (gap_right <= gap_left)
    lo = xp.where(take_left, xp.roll(start, 1), start)
    hi = xp.where(take_right, xp.roll(end, -1), end)

    lo, hi = xp.take(lo, group), xp.take(hi, group)
    pick = lo + _draw_below(xp.take(u, order), hi - lo - 1)
    pick = pick + xp.astype(pick >= xp.arange(n, device=dev), xp.int64)
    neighbors = xp.empty(n, dtype=xp.int64, device=dev)
    neighbors[order] = xp.take(order, pick)
    return neighbors


def _rows_per_block(n):
    return max(1, _MEMORY_LIMIT // (8 * _FLOATS_PER_PAIR * n))


def _squared_distances(queries, points):
    """(q, n) squared distances, summed column by column from exact differences."""
    distances = None
    for c in range(points.shape[1]):
        delta = queries[:, c, None] - points[None, :, c]
        if distances is None:
            distances = delta * delta
        else:
            distances += delta * delta
    return distances


def _draw_among_minima(distances, u):
    """Column of each row's minimum, drawn uniformly (in index order) when tied."""
    xp = array_namespace(distances)
    nearest = xp.argmin(distances, axis=1)
    minima = xp.min(distances, axis=1)
    tie = distances == minima[:, None]
    tied = xp.nonzero(xp.sum(tie, axis=1) > 1)[0]
    if tied.shape[0]:
        cumulative = xp.cumulative_sum(xp.astype(tie[tied, :], xp.int64), axis=1)
        draw = _draw_below(xp.take(u, tied), cumulative[:, -1])
        nearest[tied] = xp.sum(xp.astype(cumulative <= draw[:, None], xp.int64), axis=1)
    return nearest


def nearest_neighbors_brute(points, u, rows=None):
    """Exact nearest neighbours by chunked brute force (bounded memory).

    Parameters
    ----------
    points : array of shape (n, d)
    u : array of shape (n,)
    rows : int64 array or None
        Only these points' neighbours are searched for (None: all).

    Returns
    -------
    array of shape (n,) or (len(rows),), int64
    """
    xp = array_namespace(points)
    dev = device(points)
    n = points.shape[0]
    rows = xp.arange(n, device=dev) if rows is None else rows
    neighbors = xp.empty(rows.shape[0], dtype=xp.int64, device=dev)
    step = _rows_per_block(n)
    for first in range(0, rows.shape[0], step):
        block = rows[first:first + step]
        distances = _squared_distances(xp.take(points, block, axis=0), points)
        distances[xp.arange(block.shape[0], device=dev), block] = xp.inf
        neighbors[first:first + step] = _draw_among_minima(distances, xp.take(u, block))
    return neighbors


def _smallest(distances, k):
    """The k smallest entries of each row and their columns, in increasing order."""
    if is_torch_array(distances):
        import torch

        return torch.topk(distances, k, dim=1, largest=False, sorted=True)
    library = importlib.import_module(type(distances).__module__.split(".")[0])
    columns = library.argpartition(distances, k - 1, axis=1)[:, :k]
    values = library.take_along_axis(distances, columns, axis=1)
    order = library.argsort(values, axis=1)
    return (library.take_along_axis(values, order, axis=1),
            library.take_along_axis(columns, order, axis=1))


class ListedBaseSearch:
    """Exact nearest neighbours in ``(base, candidate)`` for many candidates, on the device.

    Each point's k nearest neighbours in the base block are listed once, with their
    squared base distances (brute force, chunked). A candidate adds its squared
    differences over the list; a row is settled when its best joint distance is
    attained once and is below its k-th base distance, which every unlisted point's
    joint distance reaches. Other rows (ties, crowded or isolated points) are searched
    by brute force on the joint space. Distances are summed column by column, base
    first, in both searches, so both see the same values.

    Parameters
    ----------
    base : array of shape (n, d)
        The selected block (finite float64), n >= 2.
    """

    def __init__(self, base):
        xp = array_namespace(base)
        n = base.shape[0]
        self.base = base
        # A one-dimensional base needs about sqrt(n) listed points to settle most
        # rows; the lists and a candidate's pass over them stay within the limit.
        k = min(n - 1, max(_MIN_LISTED, min(_LISTED_PER_ROOT * math.isqrt(n),
                                             _rows_per_block(n))))
        self.listed = xp.empty((n, k), dtype=xp.int64, device=device(base))
        self.base_d2 = xp.empty((n, k), dtype=xp.float64, device=device(base))
        step = _rows_per_block(n)
        for first in range(0, n, step):
            block = xp.arange(first, min(first + step, n), device=device(base))
            distances = _squared_distances(base[first:first + step, :], base)
            distances[xp.arange(block.shape[0], device=device(base)), block] = xp.inf
            values, columns = _smallest(distances, k)
            self.base_d2[first:first + step, :] = values
            self.listed[first:first + step, :] = xp.astype(columns, xp.int64)
        self.bound = self.base_d2[:, -1] if k < n - 1 else xp.full(n, xp.inf,
                                                                    device=device(base))

    def neighbors(self, block, u):
        """Nearest neighbour of every point in the space ``(base, block)``.

        Parameters
        ----------
        block : array of shape (n, g)
            The candidate's column(s).
        u : ndarray of shape (n,)
            One uniform [0, 1) draw per point (NumPy; copied to the device when
            some row needs it).

        Returns
        -------
        array of shape (n,), int64
        """
        xp = array_namespace(block)
        n = block.shape[0]
        joint = self.base_d2
        for c in range(block.shape[1]):
            column = block[:, c]
            delta = column[self.listed] - column[:, None]
            joint = joint + delta * delta
        best = xp.argmin(joint, axis=1)
        minima = xp.min(joint, axis=1)
        once = xp.sum(xp.astype(joint == minima[:, None], xp.int64), axis=1) == 1
        neighbors = self.listed[xp.arange(n, device=device(block)), best]
        unsure = xp.nonzero(~(once & (minima < self.bound)))[0]
        if unsure.shape[0]:
            neighbors[unsure] = nearest_neighbors_brute(
                xp.concat((self.base, block), axis=1), on_device(u, block), rows=unsure
            )
        return neighbors
