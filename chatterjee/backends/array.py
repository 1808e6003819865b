"""Exact self-excluded nearest neighbours in an array library (PyTorch, CuPy), on its device.

The same rule as the CPU backend (:mod:`.cpu`): the neighbour of point i is drawn
uniformly among *all* points j != i at the minimal Euclidean distance, with one
uniform draw ``u_i`` per point. The draws come from the same NumPy Generator, in the
same order, and are copied to the device, so a seed gives the CPU path's draws.

* One dimension: one stable sort, the CPU algorithm written against the array
  namespace (the same graph as the CPU path, ties included).
* Two to six dimensions: a uniform grid over (at most four of) the dimensions
  (:func:`nearest_neighbors_grid`). A point looks at the points of its cell and of
  the cells around it, and keeps its nearest when no point outside them can be as
  near; the other rows are searched again in a grid of twice the cell size, and the
  last few by brute force. Points with exact copies draw among them directly.
* More dimensions: chunked brute force (:func:`nearest_neighbors_brute`), a block of
  query rows against all points at a time, sized from the memory limit
  (:func:`set_memory_limit`). A matrix product (``|a|^2 + |b|^2 - 2ab``) with a
  rigorous bound on its rounding only shortlists the points that can be nearest.
* Whatever the search, the distances that decide are summed column by column from
  exact squared differences, in the same order, so equal distances are equal bit for
  bit and every search gives the same graph. Rows whose minimum is attained more
  than once draw among those points in index order.
* Forward selection: :class:`ListedBaseSearch` searches joint spaces of up to four
  dimensions with the grid (each candidate starting from the cell width the last one
  settled on); for wider ones it lists each point's nearest neighbours in the
  selected block once per step, a candidate then scans only that list, and rows the
  list cannot certify go to the brute force.
"""

import importlib
import itertools
import math

import numpy as np
from array_api_compat import array_namespace, device, is_torch_array

from .._ranks import sorted_groups
from .._validation import to_numpy

_MEMORY_LIMIT = 1 << 30
# Floats held per (query row, point) pair in a brute-force block (the approximate
# distances, the matrix product, a temporary and the shortlist mask) or in a block
# of ListedBaseSearch's lists (the distances, one column's differences, their squares).
_FLOATS_PER_PAIR = 4
# Length of the neighbour lists of ListedBaseSearch: at least _MIN_LISTED, up to
# _LISTED_PER_ROOT * sqrt(n) when the memory limit allows.
_MIN_LISTED, _LISTED_PER_ROOT = 32, 4
# The grid search: the most dimensions it searches (more go to the brute force) and
# the most it bins (ListedBaseSearch lists neighbours beyond that), the number
# of points a point should find in its own cell on average, the share of points
# beyond the grid's box on each side of each dimension (they join the border cells),
# device bytes per candidate pair, largest cell id, the rows left to brute force and
# the most corrections of the first guess of the cell width; cells are looked up in
# a table when there are at most _DENSE_CELLS per point.
_GRID_MAX_DIMS, _GRID_BINNED = 6, 4
_GRID_OCCUPANCY = 1.5
_GRID_TAIL = 0.005
_BYTES_PER_PAIR = 96
_MAX_CELLS = 1 << 62
_BRUTE_ROWS = 64
_WIDTH_CORRECTIONS = 6
_DENSE_CELLS = 16
# Relative margin that keeps a grid's certificate exact under rounding.
_GRID_MARGIN = 1e-12


def set_memory_limit(nbytes):
    """Set the memory one block of a device search may use, in bytes.

    A brute-force block of B query rows against n points holds about ``32 * B * n``
    bytes, a block of the grid search about ``_BYTES_PER_PAIR`` bytes per candidate
    pair; blocks are sized to stay under this limit (at least one row, whose pairs
    may exceed it). Default: 1 GiB.

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
    """The memory one device search block may use, in bytes (see :func:`set_memory_limit`)."""
    return _MEMORY_LIMIT


def on_device(values, like):
    """``values`` (NumPy) as an array of ``like``'s library on ``like``'s device."""
    return array_namespace(like).asarray(values, device=device(like))


def _draw_below(u, counts):
    """``floor(u * counts)`` kept below ``counts`` (guards the rounding of u * counts)."""
    xp = array_namespace(u)
    drawn = xp.astype(xp.floor(u * xp.astype(counts, xp.float64)), xp.int64)
    return xp.minimum(drawn, counts - 1)


def nearest_neighbors(points, u):
    """Nearest neighbour of every point of ``points`` (n, d): sort, grid or brute force.

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
    if points.shape[1] <= _GRID_MAX_DIMS:
        return nearest_neighbors_grid(points, u)
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


def _pair_distances(columns, queries, candidates):
    """Squared distances of pairs of points, summed column by column as in the brute force.

    Parameters
    ----------
    columns : list of arrays of shape (n,)
        The coordinates, one array per dimension.
    queries, candidates : int64 arrays of shape (m,)
        The pairs' points.
    """
    distances = None
    for column in columns:
        delta = column[queries] - column[candidates]
        distances = delta * delta if distances is None else distances + delta * delta
    return distances


def _nearest_in_pairs(local, candidate, distances, u, n):
    """Each row's drawn nearest candidate among its pairs (the brute force's tie rule).

    Parameters
    ----------
    local : int64 array of shape (m,)
        Row (0 .. n_rows - 1) of each pair, in increasing order.
    candidate : int64 array of shape (m,)
        Point of each pair (an index below ``n``).
    distances : array of shape (m,)
    u : array of shape (n_rows,)
        The rows' draws.
    n : int
        Number of points.

    Returns
    -------
    found : array of shape (n_rows,), int64
        The ``floor(u * ties)``-th point at the row's minimum, in index order (0 for
        a row without pairs).
    minima : array of shape (n_rows,)
        The rows' minimal distances (inf for a row without pairs).
    """
    xp = array_namespace(distances)
    dev = device(distances)
    n_rows = u.shape[0]
    minima = _segment_min(distances, local, n_rows)
    at_minimum = distances == minima[local]
    found = xp.zeros(n_rows, dtype=xp.int64, device=dev)
    hits = xp.nonzero(at_minimum)[0]
    found[local[hits]] = candidate[hits]
    # Pairs at the minimum per row, from the running count at the rows' bounds.
    each = xp.arange(n_rows, device=dev)
    through = xp.concat((xp.zeros(1, dtype=xp.int64, device=dev),
                         xp.cumulative_sum(xp.astype(at_minimum, xp.int64))))
    ties = (through[xp.searchsorted(local, each, side="right")]
            - through[xp.searchsorted(local, each, side="left")])
    tied = xp.nonzero(ties > 1)[0]
    if tied.shape[0]:
        pairs = xp.nonzero(at_minimum & (ties > 1)[local])[0]
        keys = xp.sort(local[pairs] * n + candidate[pairs])
        size = ties[tied]
        found[tied] = keys[xp.cumulative_sum(size) - size + _draw_below(u[tied], size)] % n
    return found, minima


def nearest_neighbors_brute(points, u, rows=None):
    """Exact nearest neighbours by chunked brute force (bounded memory).

    A block of rows against all points at a time: a matrix product shortlists the
    points that can be nearest, exact column-by-column sums decide among them
    (:class:`_ProductFilter`).

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
    search = _ProductFilter(points)
    step = _rows_per_block(n)
    for first in range(0, rows.shape[0], step):
        neighbors[first:first + step] = search.neighbors(rows[first:first + step], u)
    return neighbors


class _ProductFilter:
    """Brute force in many dimensions: a matrix product shortlists, exact sums decide.

    Squared distances ``|a|^2 + |b|^2 - 2 a.b`` of the centred points come from one
    matrix product per block. Their rounding error, and that of the centring, is at
    most ``err = 4 (d + 6) 2^-53 (|a| + max |b|)^2`` for a row a, so a point whose
    approximate distance exceeds the row's smallest by more than ``2 err`` (plus a
    relative margin that covers the rounding of the exact sums) cannot be its
    nearest. Only the shortlisted points get exact column-by-column distances, which
    decide as in :func:`_squared_distances`: the graph is the plain brute force's,
    ties included.
    """

    def __init__(self, points):
        xp = array_namespace(points)
        self.n, dims = points.shape
        self.columns = [points[:, c] for c in range(dims)]
        self.centred = points - xp.mean(points, axis=0)
        self.norms = xp.sum(self.centred * self.centred, axis=1)
        self.lengths = xp.sqrt(self.norms)
        self.longest = xp.max(self.lengths)
        self.error = 4 * (dims + 6) * 2.0**-53
        self.margin = 8 * (dims + 4) * 2.0**-53

    def neighbors(self, block, u):
        """Drawn nearest neighbour of each point in ``block`` (indices) among all points."""
        xp = array_namespace(block)
        approximate = (self.norms[block][:, None] + self.norms[None, :]
                       - 2 * (self.centred[block, :] @ self.centred.T))
        approximate[xp.arange(block.shape[0], device=device(block)), block] = xp.inf
        error = self.error * (self.lengths[block] + self.longest) ** 2
        reach = xp.min(approximate, axis=1) * (1 + self.margin) + (2 + self.margin) * error
        local, candidate = xp.nonzero(approximate <= reach[:, None])
        distances = _pair_distances(self.columns, block[local], candidate)
        return _nearest_in_pairs(local, candidate, distances, u[block], self.n)[0]


def nearest_neighbors_grid(points, u):
    """Exact nearest neighbours through a uniform grid of cubic cells (bounded memory).

    The cells bin the (at most ``_GRID_BINNED``) most spread-out dimensions; the
    others only add distance. They span the box of each dimension's central quantiles
    (points beyond it join the border cells) and their width is chosen so that a
    point finds about ``_GRID_OCCUPANCY`` points in its own cell. A point's nearest
    neighbour is looked for in its cell and the cells around it (3^g cells for g
    binned dimensions), except for points with exact copies, which draw among them
    (:func:`_neighbors_among_copies`); it is kept when it is nearer,
    with a margin for rounding, than any point outside those cells can be. The rows it
    cannot certify (isolated points, empty surroundings) are searched again in a grid
    of twice the width, and once few are left, by brute force. Distances are summed
    as in :func:`nearest_neighbors_brute` and ties are broken by the same rule, so the
    graph is the same.

    Parameters
    ----------
    points : array of shape (n, d)
        Finite float64 coordinates on the device, n >= 2, d >= 2.
    u : array of shape (n,)
        One uniform [0, 1) draw per point, on the same device.

    Returns
    -------
    array of shape (n,), int64
    """
    return _grid_search(points, u)[0]


def _grid_search(points, u, width=None):
    """:func:`nearest_neighbors_grid`, from a guess of the cell width.

    Parameters
    ----------
    points, u
        As for :func:`nearest_neighbors_grid`.
    width : float or None
        First guess of the cell width (the one returned for a similar point cloud),
        corrected as needed; None: guessed from the spread of the points.

    Returns
    -------
    neighbors : array of shape (n,), int64
    width : float or None
        The first grid's cell width (None when no grid was used).
    """
    xp = array_namespace(points)
    n = points.shape[0]
    neighbors, single = _neighbors_among_copies(points, u)
    rows = xp.nonzero(single)[0]
    ordered = xp.sort(points, axis=0)
    tail = int(_GRID_TAIL * (n - 1))
    lower, upper = to_numpy(ordered[tail, :]), to_numpy(ordered[n - 1 - tail, :])
    # A dimension constant on its central points (a sparse column) spans its range.
    flat = upper <= lower
    lower[flat], upper[flat] = to_numpy(ordered[0, :])[flat], to_numpy(ordered[n - 1, :])[flat]
    quartiles = [to_numpy(ordered[i * (n - 1) // 4, :]) for i in (1, 2, 3)]
    # The most spread-out dimensions are binned; the others only add distance.
    spread = [(quartiles[2][k] - quartiles[0][k], upper[k] - lower[k])
              for k in range(points.shape[1])]
    dims = sorted(sorted((k for k in range(points.shape[1]) if upper[k] > lower[k]),
                         key=lambda k: spread[k], reverse=True)[:_GRID_BINNED])
    first_width = None
    if dims and rows.shape[0] > _BRUTE_ROWS:
        grid = _first_grid(points, rows, dims, lower, upper, quartiles, width)
        first_width = grid.width
        while True:
            found, sure = grid.search(rows, u)
            neighbors[rows[sure]] = found[sure]
            rows = rows[~sure]
            if grid.covers_all or rows.shape[0] <= _BRUTE_ROWS:
                break
            grid = _Grid(points, dims, lower, upper, quartiles[1], 2 * grid.width)
    if rows.shape[0]:
        neighbors[rows] = nearest_neighbors_brute(points, u, rows=rows)
    return neighbors, first_width


def _neighbors_among_copies(points, u):
    """Neighbours of the points that have exact copies, drawn among those copies.

    A point with copies is at distance 0 from them and from nothing else, so its
    neighbour is the ``floor(u * copies)``-th other copy in index order: the brute
    force's rule. Searching for it would cost a pair per copy and row (n^2 pairs for
    a column that is mostly zeros).

    Returns
    -------
    neighbors : array of shape (n,), int64
        Set for the points with copies.
    single : array of shape (n,), bool
        True for the points without a copy (to be searched for).
    """
    xp = array_namespace(points)
    dev = device(points)
    n = points.shape[0]
    order = xp.arange(n, device=dev)
    for c in reversed(range(points.shape[1])):  # stable: equal rows stay in index order
        order = order[xp.argsort(points[:, c][order], stable=True)]
    rows = points[order, :]
    opens = xp.concat((xp.ones(1, dtype=xp.bool, device=dev),
                       xp.any(rows[1:, :] != rows[:-1, :], axis=1)))
    start = xp.nonzero(opens)[0]
    group = xp.cumulative_sum(xp.astype(opens, xp.int64)) - 1
    size = (xp.concat((start[1:], xp.full(1, n, dtype=start.dtype, device=dev))) - start)[group]
    first = start[group]
    others = xp.maximum(size - 1, 1)
    pick = _draw_below(u[order], others)
    pick = pick + xp.astype(pick >= xp.arange(n, device=dev) - first, xp.int64)
    neighbors = xp.empty(n, dtype=xp.int64, device=dev)
    neighbors[order] = order[xp.where(size > 1, first + pick, xp.arange(n, device=dev))]
    single = xp.empty(n, dtype=xp.bool, device=dev)
    single[order] = size == 1
    return neighbors, single


def _first_grid(points, rows, dims, lower, upper, quartiles, width=None):
    """A grid in which a row finds about ``_GRID_OCCUPANCY`` points in its cell.

    Without a guess, the first width spreads half of the points per dimension evenly
    over the box of the quartiles (the wider box when a dimension has no quartile
    spread). The occupancy the points see is measured and the width corrected, a few
    times at most (skewed or heavy-tailed data need several corrections; duplicated
    rows may never reach it).
    """
    n, g = points.shape[0], len(dims)
    if width is None:
        spread = [quartiles[2][k] - quartiles[0][k] for k in dims]
        share = 0.5
        if min(spread) <= 0:
            spread, share = [float(upper[k] - lower[k]) for k in dims], 1.0
        # The geometric mean of the spreads: their product may overflow or underflow.
        side = math.exp(sum(math.log(s) for s in spread) / g)
        width = side * (_GRID_OCCUPANCY / n) ** (1 / g) / share
    for _ in range(_WIDTH_CORRECTIONS):
        grid = _Grid(points, dims, lower, upper, quartiles[1], width)
        seen = grid.occupancy(rows)
        if _GRID_OCCUPANCY / 1.25 <= seen <= 1.25 * _GRID_OCCUPANCY:
            return grid
        width *= min(32.0, max(1 / 32, (_GRID_OCCUPANCY / seen) ** (1 / g)))
    return _Grid(points, dims, lower, upper, quartiles[1], width)


class _Grid:
    """Points binned into the cubic cells of width ``width`` over the dimensions ``dims``.

    Cells are counted from ``lower``; the first and last cell of a dimension also hold
    the points beyond the box. A box that would need more than ``_MAX_CELLS`` cells
    (too many to number in int64) is narrowed around the ``median``. The points are
    held sorted by cell (their *positions*), so that a cell's points are contiguous
    and neighbouring rows read nearby memory.
    """

    def __init__(self, points, dims, lower, upper, median, width):
        xp = array_namespace(points)
        dev = device(points)
        # Up to _MAX_CELLS cells in all: a wider box is narrowed around the median.
        most = int(_MAX_CELLS ** (1 / len(dims)))
        counts = [min(most, int((upper[k] - lower[k]) // width) + 1) for k in dims]
        lower = [max(lower[k], min(median[k], upper[k] - most * width / 2) - most * width / 2)
                 if count == most else lower[k] for k, count in zip(dims, counts)]
        self.width = width
        self.covers_all = max(counts) <= 2
        coords = xp.take(points, xp.asarray(dims, device=dev), axis=1)
        self.lower = xp.asarray(lower, dtype=xp.float64, device=dev)
        self.counts = xp.asarray(counts, dtype=xp.int64, device=dev)
        strides = [math.prod(counts[j + 1:]) for j in range(len(dims))]
        self.strides = xp.asarray(strides, dtype=xp.int64, device=dev)
        # Clipped as floats: a far point's cell number would overflow int64.
        cells = xp.floor((coords - self.lower) / width)
        cells = xp.astype(xp.minimum(xp.maximum(cells, 0.0),
                                     xp.astype(self.counts - 1, xp.float64)), xp.int64)
        ids = xp.sum(cells * self.strides, axis=1)
        self.order = xp.argsort(ids, stable=True)
        self.position = xp.empty_like(self.order)
        self.position[self.order] = xp.arange(points.shape[0], device=dev)
        self.sorted_ids = ids[self.order]
        self.cells, self.coords = cells[self.order, :], coords[self.order, :]
        self.columns = [points[:, c][self.order] for c in range(points.shape[1])]
        # Where each cell's run starts, as a table when there are few cells per point.
        n_cells = math.prod(counts)
        self.cell_start = None if n_cells > _DENSE_CELLS * points.shape[0] else xp.searchsorted(
            self.sorted_ids, xp.arange(n_cells + 1, device=dev), side="left")
        self.offsets = xp.asarray(list(itertools.product((-1, 0, 1), repeat=len(dims))),
                                  dtype=xp.int64, device=dev)

    def occupancy(self, rows):
        """Mean number of points (itself included) one of ``rows`` finds in its own cell."""
        xp = array_namespace(rows)
        ids = self.sorted_ids[self.position[rows]]
        count = (xp.searchsorted(self.sorted_ids, ids, side="right")
                 - xp.searchsorted(self.sorted_ids, ids, side="left"))
        return float(xp.mean(xp.astype(count, xp.float64)))

    def search(self, rows, u):
        """Nearest neighbours of ``rows`` among the cells around them, and which are sure.

        Returns
        -------
        found : array of shape (len(rows),), int64
            The drawn nearest neighbour among the points of the surrounding cells.
        sure : array of shape (len(rows),), bool
            True where no point outside those cells can be as near: ``found`` is then
            the neighbour a search of all points draws.
        """
        xp = array_namespace(rows)
        n_rows, n_cells = rows.shape[0], self.offsets.shape[0]
        found = xp.empty(n_rows, dtype=xp.int64, device=device(rows))
        sure = xp.empty(n_rows, dtype=xp.bool, device=device(rows))
        # Rows in the order of their cells: blocks of neighbouring rows.
        in_order = xp.argsort(self.position[rows])
        positions = self.position[rows][in_order]
        step = max(1, _MEMORY_LIMIT // (8 * n_cells * (self.offsets.shape[1] + 6)))
        for first in range(0, n_rows, step):
            block = positions[first:first + step]
            start, count = self._surrounding_cells(block)
            # Split the block where its candidate pairs fill the memory limit.
            totals = xp.cumulative_sum(xp.sum(count, axis=1))
            budget = max(1, _MEMORY_LIMIT // _BYTES_PER_PAIR)
            pieces = int(totals[-1]) // budget
            cuts = xp.searchsorted(totals, budget * xp.arange(1, pieces + 1, device=device(rows)),
                                   side="right")
            cuts = sorted({0, block.shape[0], *to_numpy(cuts).tolist()})
            for a, b in itertools.pairwise(cuts):
                f, s = self._nearest_among(block[a:b], start[a:b, :], count[a:b, :], u)
                found[in_order[first + a:first + b]] = f
                sure[in_order[first + a:first + b]] = s
        return found, sure

    def _surrounding_cells(self, positions):
        """For each row and each of the 3^g cells around its own: first position, size."""
        xp = array_namespace(positions)
        near = self.cells[positions, :][:, None, :] + self.offsets[None, :, :]
        inside = xp.all((near >= 0) & (near < self.counts), axis=2)
        ids = xp.where(inside, xp.sum(near * self.strides, axis=2), 0)
        if self.cell_start is None:
            start = xp.searchsorted(self.sorted_ids, ids, side="left")
            stop = xp.searchsorted(self.sorted_ids, ids, side="right")
        else:
            start, stop = self.cell_start[ids], self.cell_start[ids + 1]
        return start, xp.where(inside, stop - start, 0)

    def _nearest_among(self, positions, start, count, u):
        """:meth:`search` for rows (by position) whose candidate pairs fit in memory."""
        xp = array_namespace(positions)
        dev = device(positions)
        n_rows = positions.shape[0]
        per_row = xp.sum(count, axis=1)
        flat = xp.reshape(count, (-1,))
        through = xp.cumulative_sum(flat)
        n_pairs = int(through[-1])
        if n_pairs == 0:
            return xp.zeros(n_rows, dtype=xp.int64, device=dev), xp.zeros(
                n_rows, dtype=xp.bool, device=dev)
        # Pair p: slot (row, cell), then the candidate's position in that cell's run.
        before = through - flat
        filled = xp.nonzero(flat)[0]
        opens = xp.zeros(n_pairs, dtype=xp.int64, device=dev)
        opens[before[filled]] = 1
        slot = filled[xp.cumulative_sum(opens) - 1]
        candidate = xp.reshape(start, (-1,))[slot] + xp.arange(n_pairs, device=dev) - before[slot]
        local = slot // self.offsets.shape[0]
        query = positions[local]
        distances = _pair_distances(self.columns, query, candidate)
        distances = xp.where(candidate == query, xp.inf, distances)
        found, minima = _nearest_in_pairs(local, self.order[candidate], distances,
                                          u[self.order[positions]], self.order.shape[0])
        has_pairs = per_row > 0
        bound = self._certified_distance(positions)
        sure = has_pairs & (bound > 0) & (minima < bound * bound * (1 - _GRID_MARGIN))
        return found, sure

    def _certified_distance(self, positions):
        """Distance below which no point outside a row's surrounding cells can be.

        A point two or more cells away in some dimension is at least this far, up to a
        relative margin for the rounding of the cell numbers. Inf when the cells around
        a row reach the first and last cell of every dimension.
        """
        xp = array_namespace(positions)
        x = self.coords[positions, :]
        cell = xp.astype(self.cells[positions, :], xp.float64)
        margin = _GRID_MARGIN * (xp.abs(x) + xp.abs(self.lower) + (cell + 3) * self.width)
        below = x - (self.lower + (cell - 1) * self.width) - margin
        above = (self.lower + (cell + 2) * self.width) - x - margin
        below = xp.where(cell >= 2, below, xp.inf)
        above = xp.where(cell + 3 <= xp.astype(self.counts, xp.float64), above, xp.inf)
        return xp.min(xp.minimum(below, above), axis=1)


def _segment_min(values, segments, n_segments):
    """Minimum of ``values`` over each segment ``0 .. n_segments - 1`` (inf where empty)."""
    xp = array_namespace(values)
    minima = xp.full(n_segments, xp.inf, dtype=values.dtype, device=device(values))
    if is_torch_array(values):
        return minima.scatter_reduce_(0, segments, values, reduce="amin")
    if isinstance(values, np.ndarray):
        np.minimum.at(minima, segments, values)
        return minima
    import cupyx

    cupyx.scatter_min(minima, segments, values)
    return minima


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

    A joint space of at most ``_GRID_BINNED`` dimensions is searched with the grid
    (:func:`nearest_neighbors_grid`), each candidate starting from the cell width the
    previous one settled on. For wider ones, each point's k nearest
    neighbours in the base block are listed once, with their squared base distances
    (brute force, chunked). A candidate adds its squared differences over the list;
    a row is settled when its best joint distance is attained once and is below its
    k-th base distance, which every unlisted point's joint distance reaches. Other
    rows (ties, crowded or isolated points) are searched by brute force on the joint
    space, and points with exact copies draw among them
    (:func:`_neighbors_among_copies`). Distances are summed column by column, base
    first, in every search, so all see the same values and give the same graph.

    Parameters
    ----------
    base : array of shape (n, d)
        The selected block (finite float64), n >= 2.
    """

    def __init__(self, base):
        self.base = base
        self.listed = None
        self.width = None

    def _list_neighbors(self):
        """List each point's k nearest neighbours in the base (once, when first needed)."""
        base = self.base
        xp = array_namespace(base)
        n = base.shape[0]
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
            One uniform [0, 1) draw per point (NumPy; copied to the device).

        Returns
        -------
        array of shape (n,), int64
        """
        xp = array_namespace(block)
        n = block.shape[0]
        if self.base.shape[1] + block.shape[1] <= _GRID_BINNED:
            neighbors, self.width = _grid_search(xp.concat((self.base, block), axis=1),
                                                 on_device(u, block), self.width)
            return neighbors
        if self.listed is None:
            self._list_neighbors()
        joint = self.base_d2
        for c in range(block.shape[1]):
            column = block[:, c]
            delta = column[self.listed] - column[:, None]
            joint = joint + delta * delta
        best = xp.argmin(joint, axis=1)
        minima = xp.min(joint, axis=1)
        once = xp.sum(xp.astype(joint == minima[:, None], xp.int64), axis=1) == 1
        points, u = xp.concat((self.base, block), axis=1), on_device(u, block)
        copies, single = _neighbors_among_copies(points, u)
        neighbors = xp.where(single, self.listed[xp.arange(n, device=device(block)), best],
                             copies)
        unsure = xp.nonzero(single & ~(once & (minima < self.bound)))[0]
        if unsure.shape[0]:
            neighbors[unsure] = nearest_neighbors_brute(points, u, rows=unsure)
        return neighbors
