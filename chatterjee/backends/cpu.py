"""Exact self-excluded nearest neighbours on the CPU, with uniform random tie-breaking.

The neighbour of point i is drawn uniformly among *all* points j != i at the minimal
Euclidean distance from i, measured on the raw coordinates. Every point consumes one
uniform draw ``u_i`` whether or not it has a tie, so tie-free data give the same graph
for every seed and the random stream never depends on the path taken.

* One dimension: one sort. Equal values form groups; a point with company picks
  another member of its group, a lone point picks among the members of the nearer
  neighbouring group (of both when they are equally far).
* Two or more dimensions: ``scipy.spatial.cKDTree``. Duplicate rows are folded into
  distinct *sites* with multiplicities; a site's neighbour is drawn among the sites at
  its minimal distance with probability proportional to their multiplicity, then a
  member of the chosen site uniformly. When the query does not show the whole set of
  equidistant sites (the farthest returned one is still at the minimal distance),
  the query is repeated for those rows with more neighbours until it does. Rows
  whose second neighbour is strictly nearer than the third need no tie handling.
* Forward selection: :class:`SharedBaseSearch` reuses the selected block's structure
  for every candidate of a step (compiled kernels in ``_joint.pyx``), with the same
  tie rule, for the nearest neighbour and the k nearest.
* k nearest neighbours (:func:`k_nearest_neighbors`): a k-d tree on the sites, the
  points strictly nearer than the k-th distance taken, the rest drawn uniformly
  without replacement among all points at that distance (k uniforms per point). In
  one dimension (:func:`k_nearest_neighbors_1d`) a sort settles the points without a
  tie at the k-th distance.
"""

import math

import numpy as np

_FIRST_QUERY_K = 3
_MIN_ROWS_PER_THREAD = 4096
# Neighbour lists of SharedBaseSearch: length bounds and a budget of entries in all.
# Neighbour lists hold _MAX_LISTED entries per point, (k + 1) / 2 times that for k.
_MIN_LISTED, _MAX_LISTED, _LISTED_BUDGET = 16, 64, 1 << 23
# Most neighbours per point the compiled kernels keep (their buffers' size).
_MAX_KERNEL_NEIGHBORS = 64
# Points per cell, on average, of the grid that a one-column base and a one-column
# candidate share for the k nearest neighbours.
_GRID_OCCUPANCY = 4
# Most points a one-dimensional sweep visits before it leaves a row to another search.
_MAX_SWEEP = 1024
# Up to this many unsure rows are searched exhaustively (about the cost of one k-d
# tree on the joint space, whatever n), more with that tree.
_EXHAUSTIVE_ROWS = 128
# A shared base with more duplicated rows than this is searched with the k-d tree.
_CROWDED = 0.25
# From this many dimensions on, distinct points are searched by the exact
# shortlisting brute force (BLAS matrix products): a k-d tree's query cost grows
# towards n^2 there (n = 10^4, both on two cores: 16 dimensions 0.73 s against 0.51 s,
# 24: 1.08 against 0.65; at 12 the tree is faster; benchmarks/bench_core.py --only wide).
_BRUTE_DIMS = 16


def _query(tree, points, k, workers):
    """``tree.query`` that stays on one thread for small batches (threads cost more)."""
    if points.shape[0] < _MIN_ROWS_PER_THREAD:
        workers = 1
    return tree.query(points, k=k, workers=workers)


def _draw_below(u, counts):
    """``floor(u * counts)`` kept below ``counts`` (guards the rounding of u * counts)."""
    return np.minimum(np.floor(u * counts).astype(np.int64), counts - 1)


def nearest_neighbors_1d(values, u):
    """Nearest neighbours of a sample of scalars by sorting.

    Parameters
    ----------
    values : ndarray of shape (n,)
    u : ndarray of shape (n,)
        One uniform [0, 1) draw per point.

    Returns
    -------
    ndarray of shape (n,), int64
    """
    n = values.shape[0]
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts_group[1:])
    start = np.flatnonzero(starts_group)
    end = np.append(start[1:], n)
    group_values = sorted_values[start]
    gap_left = np.full(start.shape[0], np.inf)
    gap_left[1:] = group_values[1:] - group_values[:-1]
    gap_right = np.append(gap_left[1:], np.inf)

    # Sorted positions [lo, hi) hold the candidates and the point itself.
    lone = end - start == 1
    take_left = lone & (gap_left <= gap_right)
    take_right = lone & (gap_right <= gap_left)
    lo = np.where(take_left, np.roll(start, 1), start)
    hi = np.where(take_right, np.roll(end, -1), end)

    group = np.cumsum(starts_group) - 1
    position = np.arange(n)
    lo, hi = lo[group], hi[group]
    pick = lo + _draw_below(u[order], hi - lo - 1)
    pick += pick >= position
    neighbors = np.empty(n, dtype=np.int64)
    neighbors[order] = order[pick]
    return neighbors


def k_nearest_neighbors_1d(values, u):
    """The k nearest neighbours of a sample of scalars by sorting.

    A point's k nearest lie among the k + 1 sorted positions on each side of it;
    when the (k + 1)-th nearest of those is strictly farther than the k-th, they are
    the k nearest, with no tie to break. The other points (ties at the k-th
    distance) are left to :func:`k_nearest_neighbors`, with its tie rule, so the
    graph is the one it gives.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Finite values whose squared differences neither overflow nor underflow
        (:func:`~chatterjee.backends.safe_scale` sees to it).
    u : ndarray of shape (n, k)
        Uniform [0, 1) draws, ``1 <= k < n``.

    Returns
    -------
    ndarray of shape (n, k), int64
        Row i holds the k neighbours of point i (in no set order).
    """
    n, k = u.shape
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    window = np.arange(n)[:, None] + np.concatenate([np.arange(-k - 1, 0),
                                                     np.arange(1, k + 2)])
    inside = (window >= 0) & (window < n)
    window = np.clip(window, 0, n - 1)
    distance = np.where(inside, np.abs(ordered[window] - ordered[:, None]), np.inf)
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k + 1]
    kth = np.take_along_axis(distance, nearest, axis=1)
    neighbors = np.empty((n, k), dtype=np.int64)
    neighbors[order] = order[np.take_along_axis(window, nearest[:, :k], axis=1)]
    tied = order[kth[:, k - 1] == kth[:, k]]
    if tied.shape[0]:
        neighbors[tied] = k_nearest_neighbors(values[:, None], u, workers=1, rows=tied)
    return neighbors


def _nearest_sites(tree, sites, queries, dist, idx, weights, u, workers):
    """For each query site, draw a site among the others at minimal distance.

    Parameters
    ----------
    tree : scipy.spatial.cKDTree
        Built on ``sites`` (distinct points).
    sites : ndarray of shape (m, d)
    queries : ndarray of shape (q,)
        Indices of the query sites.
    dist, idx : ndarray of shape (q, k)
        The result of ``tree.query(sites[queries], k)``.
    weights : ndarray of shape (m,) or None
        Multiplicity of each site (None: all one).
    u : ndarray of shape (q,)
        One uniform draw per query.
    workers : int
        Threads for further queries.

    Returns
    -------
    site : ndarray of shape (q,)
        The drawn site.
    offset : ndarray of shape (q,)
        Which member of the drawn site, in ``[0, weights[site])``.
    """
    n_sites = sites.shape[0]
    site = np.empty(queries.shape[0], dtype=np.int64)
    offset = np.zeros(queries.shape[0], dtype=np.int64)
    pending = np.arange(queries.shape[0])
    while True:
        k = idx.shape[1]
        other = idx != queries[pending, None]
        nearest = np.where(other, dist, np.inf).min(axis=1)
        done = (dist[:, -1] > nearest) | (k >= n_sites)
        rows = np.flatnonzero(done)
        candidate = other[rows] & (dist[rows] == nearest[rows, None])
        w = candidate if weights is None else np.where(candidate, weights[idx[rows]], 0)
        cumulative = np.cumsum(w, axis=1, dtype=np.int64)
        draw = _draw_below(u[pending[rows]], cumulative[:, -1])
        column = (cumulative <= draw[:, None]).sum(axis=1)
        site[pending[rows]] = idx[rows, column]
        if weights is not None:
            before = cumulative[np.arange(rows.shape[0]), column] - w[np.arange(rows.shape[0]), column]
            offset[pending[rows]] = draw - before
        pending = pending[~done]
        if pending.shape[0] == 0:
            return site, offset
        k = min(4 * k, n_sites)
        dist, idx = _query(tree, sites[queries[pending]], k, workers)


def _may_have_duplicates(points):
    """False only if no two rows are equal: checked on one projection, by sorting.

    Equal rows have equal projections, so distinct projections rule duplicates out;
    equal projections send the caller to the exact (slower) duplicate handling.
    """
    weights = 1.0 + 0.6180339887498949 * np.arange(points.shape[1])
    projection = np.sort(points @ weights)
    return bool((projection[1:] == projection[:-1]).any())


def nearest_neighbors_cpu(points, u, workers=-1, rows=None):
    """Nearest neighbours of points in two or more dimensions: a k-d tree
    (:func:`nearest_neighbors_kdtree`), or for distinct points in
    :data:`_BRUTE_DIMS` dimensions or more the exact brute force of the device path
    (:func:`.array.nearest_neighbors_brute`, on NumPy arrays), which is faster there
    and gives the same graph on data without equidistant neighbours (among those it
    draws in index order, the k-d tree in its query order: both uniformly).

    Parameters and returns as :func:`nearest_neighbors_kdtree` (``workers`` does not
    apply to the brute force, whose matrix products use the BLAS threads).
    """
    if points.shape[1] >= _BRUTE_DIMS and not _may_have_duplicates(points):
        from .array import nearest_neighbors_brute

        return nearest_neighbors_brute(points, u, rows=rows)
    return nearest_neighbors_kdtree(points, u, workers=workers, rows=rows)


def nearest_neighbors_kdtree(points, u, workers=-1, rows=None):
    """Nearest neighbours of points in two or more dimensions with a k-d tree.

    Parameters
    ----------
    points : ndarray of shape (n, d)
    u : ndarray of shape (n,)
        One uniform [0, 1) draw per point.
    workers : int
        Threads for the queries (SciPy's meaning; -1 is all cores).
    rows : ndarray of int or None
        Only these points' neighbours are needed (None: all). Without duplicate
        rows only they are queried.

    Returns
    -------
    ndarray of shape (n,) or (len(rows),), int64
    """
    from scipy.spatial import cKDTree

    n = points.shape[0]
    if not _may_have_duplicates(points):
        queries = np.arange(n) if rows is None else rows
        tree = cKDTree(points)
        dist, idx = _query(tree, points[queries], min(_FIRST_QUERY_K, n), workers)
        # Distinct points: column 0 is the point itself, and a strictly nearer
        # second column is the answer. Only the other rows need tie handling.
        neighbors = idx[:, 1].astype(np.int64)
        tied = np.flatnonzero((dist[:, 1] == dist[:, -1]) | (dist[:, 1] == 0))
        if tied.shape[0]:
            neighbors[tied], _ = _nearest_sites(
                tree, points, queries[tied], dist[tied], idx[tied], None,
                u[queries[tied]], workers,
            )
        return neighbors

    # Fold duplicate rows into distinct sites with multiplicities (a k-d tree
    # crowded with duplicates is slow to query).
    members = np.lexsort(points.T[::-1])  # equal rows become neighbours
    ordered = points[members]
    new_site = np.empty(n, dtype=bool)
    new_site[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=new_site[1:])
    first_member = np.flatnonzero(new_site)
    sites = ordered[first_member]
    counts = np.diff(np.append(first_member, n))
    inverse = np.empty(n, dtype=np.int64)
    inverse[members] = np.cumsum(new_site) - 1
    rank_in_site = np.empty(n, dtype=np.int64)
    rank_in_site[members] = np.arange(n) - first_member[inverse[members]]

    neighbors = np.empty(n, dtype=np.int64)
    shared = counts[inverse] > 1
    own = inverse[shared]
    pick = _draw_below(u[shared], counts[own] - 1)
    pick += pick >= rank_in_site[shared]
    neighbors[shared] = members[first_member[own] + pick]

    lone_sites = np.flatnonzero(counts == 1)
    if lone_sites.shape[0]:
        lone_points = members[first_member[lone_sites]]
        site_tree = cKDTree(sites)
        dist, idx = _query(
            site_tree, sites[lone_sites], min(_FIRST_QUERY_K, sites.shape[0]), workers
        )
        site, offset = _nearest_sites(
            site_tree, sites, lone_sites, dist, idx, counts, u[lone_points], workers
        )
        neighbors[lone_points] = members[first_member[site] + offset]
    return neighbors if rows is None else neighbors[rows]


def _shared_row_fraction(points):
    """Fraction of rows that equal another row."""
    ordered = points[np.lexsort(points.T[::-1])]
    equal_next = np.all(ordered[1:] == ordered[:-1], axis=1)
    shared = np.zeros(points.shape[0], dtype=bool)
    shared[1:] |= equal_next
    shared[:-1] |= equal_next
    return shared.mean()


def _quantile_cells(ordered, values):
    """The m = sqrt(n / ``_GRID_OCCUPANCY``) cells of a column on one axis of a square
    grid of about ``_GRID_OCCUPANCY`` points per cell: their lower edges, at
    quantiles of ``ordered`` (the column sorted), and the cell of each value."""
    m = max(1, math.isqrt(ordered.shape[0] // _GRID_OCCUPANCY))
    edges = np.ascontiguousarray(ordered[np.arange(m) * ordered.shape[0] // m])
    return edges, np.searchsorted(edges, values, side="right").astype(np.int64) - 1


class SharedBaseSearch:
    """Exact nearest neighbours in ``(base, candidate)`` for many candidates.

    Forward selection asks, at every step, for the neighbour graph of the selected
    block X_S joined with each remaining candidate (one column, or a group of
    columns); the base block's structure is prepared once per step and shared by all
    candidates, in compiled kernels:

    * a one-dimensional base is sorted; each point walks outwards through the
      sorted base values, nearest gap first, until the gap alone exceeds its best
      joint distance (one neighbour);
    * a base of two or more dimensions gets each point's nearest base neighbours
      listed once, in increasing distance; a candidate scans a list only until the
      base distance exceeds the best joint distance, and a row is certified when
      that distance is below the base distance of every unlisted point.

    Rows that neither can settle within a bounded number of steps (isolated points,
    crowded base values) are searched exhaustively when they are few, otherwise with
    a k-d tree on the joint space.

    Distances are summed column by column in the same order everywhere, so equal
    distances are recognised as equal and ties are broken uniformly at random.

    For k nearest neighbours the kernels keep each row's k nearest so far. A
    one-column base and a one-column candidate share a grid of quantile cells, each
    point visiting rings of cells until the unvisited ones are farther than its k-th
    nearest (in the plane the sorted sweep visits far more points). Other candidates
    scan lists (k + 1) / 2 times longer, built for the second candidate of a search
    (one candidate alone is searched faster with a k-d tree on the joint space), any
    base included. A row whose k-th distance lies within a relative 1e-12 of a
    distance left out goes to :func:`k_nearest_neighbors`, as do the rows the
    kernels cannot certify, so the graph is the one that function gives, tie rule
    included, at a fraction of its cost.

    Parameters
    ----------
    base : ndarray of shape (n, d)
        The shared block (finite float64).
    workers : int, default=-1
        Threads for the k-d tree queries.
    n_neighbors : int, default=1
        k, the neighbours sought per point.
    """

    def __init__(self, base, workers=-1, n_neighbors=1):
        d = base.shape[1]
        self.base = np.ascontiguousarray(base)
        self.workers = workers
        self.n_neighbors = n_neighbors
        self.lists, self.searched = None, 0
        # Mostly duplicated rows (discrete features) defeat both kernels; the
        # k-d tree search folds duplicates into sites and handles them fast.
        self.crowded = (d == 0 or n_neighbors > _MAX_KERNEL_NEIGHBORS
                        or _shared_row_fraction(self.base) > _CROWDED)
        if self.crowded:
            return
        if d == 1:
            self.order = np.argsort(self.base[:, 0], kind="stable")
            self.sorted_base = np.ascontiguousarray(self.base[self.order, 0])
            if n_neighbors > 1:
                self.grid = _quantile_cells(self.sorted_base, self.base[:, 0])
            return
        if n_neighbors == 1:
            self.lists = self._list_neighbors()

    def _list_neighbors(self):
        """Each point's nearest base neighbours, their squared base distances, and
        the bound below which a joint distance is certified."""
        from scipy.spatial import cKDTree

        n, d = self.base.shape
        k = min(n - 1, max(_MIN_LISTED, min(_MAX_LISTED * (1 + self.n_neighbors) // 2,
                                            _LISTED_BUDGET // n)))
        _, idx = _query(cKDTree(self.base), self.base, k + 1, self.workers)
        # Drop each point itself; where k + 1 duplicates hid it, drop the farthest.
        keep = idx != np.arange(n)[:, None]
        keep[keep.all(axis=1), -1] = False
        listed = np.ascontiguousarray(idx[keep].reshape(n, k), dtype=np.int64)
        base_d2 = np.zeros(listed.shape)
        for c in range(d):
            delta = self.base[listed, c] - self.base[:, c, None]
            base_d2 += delta * delta
        # Unlisted points are at least this far in the base space; the margin covers
        # the rounding difference between the tree's distances and these sums.
        bound = base_d2.max(axis=1) * (1 - 1e-12) if k < n - 1 else np.full(n, np.inf)
        return listed, base_d2, bound

    def nearest_in_base(self, k):
        """The ``k`` nearest points of every point in the base, itself first, from
        the lists when they are built and long enough (else None), shape (n, k)."""
        if self.lists is None or self.lists[0].shape[1] < k - 1:
            return None
        listed = self.lists[0]
        return np.column_stack((np.arange(listed.shape[0]), listed[:, :k - 1]))

    def neighbors(self, block, u):
        """The nearest neighbour(s) of every point in the space ``(base, block)``.

        Parameters
        ----------
        block : ndarray of shape (n,) or (n, g)
            The candidate's column(s).
        u : ndarray of shape (n,), or (n, k) for k neighbours
            Uniform [0, 1) draws for tie-breaking (see :func:`nearest_neighbors_kdtree`
            and :func:`k_nearest_neighbors`).

        Returns
        -------
        ndarray of shape (n,), or (n, k) for k neighbours, int64
        """
        block = np.ascontiguousarray(block.reshape(block.shape[0], -1), dtype=np.float64)
        if self.n_neighbors > 1:
            return self._k_neighbors(block, u)
        from ._joint import nearest_exhaustive, nearest_listed, nearest_sorted_base

        n = block.shape[0]
        if self.crowded:
            return nearest_neighbors_cpu(
                np.column_stack((self.base, block)), u, workers=self.workers
            )
        neighbors = np.empty(n, dtype=np.int64)
        unsure = np.zeros(n, dtype=np.int8)
        if self.base.shape[1] == 1:
            nearest_sorted_base(self.sorted_base, self.order, block[self.order], u,
                                _MAX_SWEEP, neighbors, unsure)
        else:
            nearest_listed(block, *self.lists, u, neighbors, unsure)
        rows = np.flatnonzero(unsure)
        if rows.shape[0] <= _EXHAUSTIVE_ROWS:
            nearest_exhaustive(self.base, block, rows, u, neighbors)
        else:
            neighbors[rows] = nearest_neighbors_cpu(
                np.column_stack((self.base, block)), u, workers=self.workers, rows=rows
            )
        return neighbors

    def _k_neighbors(self, block, u):
        """The k nearest neighbours (k = ``u.shape[1]``): the kernels settle the rows
        without a tie at the k-th distance; the k-d tree search of
        :func:`k_nearest_neighbors` takes the rest, with its tie rule. A one-column
        base and candidate use the grid; other candidates the lists, built for the
        second of them."""
        from ._joint import k_nearest_exhaustive, k_nearest_grid, k_nearest_listed

        if u.shape[1] != self.n_neighbors:
            raise ValueError(f"`u` must have {self.n_neighbors} columns, got {u.shape[1]}.")
        on_grid = self.base.shape[1] == 1 and block.shape[1] == 1
        if not (self.crowded or on_grid):
            self.searched += 1
        if self.crowded or (not on_grid and self.searched == 1):
            return k_nearest_neighbors(np.column_stack((self.base, block)), u,
                                       workers=self.workers)
        n, k = u.shape
        neighbors = np.empty((n, k), dtype=np.int64)
        unsure = np.zeros(n, dtype=np.int8)
        if on_grid:
            base_edges, base_cell = self.grid
            column_edges, column_cell = _quantile_cells(np.sort(block[:, 0]), block[:, 0])
            m = base_edges.shape[0]
            cell = base_cell * m + column_cell
            cell_start = np.zeros(m * m + 1, dtype=np.int64)
            np.cumsum(np.bincount(cell, minlength=m * m), out=cell_start[1:])
            k_nearest_grid(self.base[:, 0], block[:, 0], base_edges, column_edges,
                           base_cell, column_cell, cell_start,
                           np.argsort(cell, kind="stable"), _MAX_SWEEP, neighbors, unsure)
        else:
            if self.lists is None:
                self.lists = self._list_neighbors()      # threads may race: same lists
            k_nearest_listed(block, *self.lists, neighbors, unsure)
        rows = np.flatnonzero(unsure)
        if rows.shape[0] <= _EXHAUSTIVE_ROWS:
            k_nearest_exhaustive(self.base, block, rows, neighbors, unsure)
            rows = np.flatnonzero(unsure)
        if rows.shape[0]:
            neighbors[rows] = k_nearest_neighbors(np.column_stack((self.base, block)), u,
                                                  workers=self.workers, rows=rows)
        return neighbors


def _fold_sites(points):
    """Distinct rows of ``points`` (sites) and, for each, its member rows.

    Returns
    -------
    sites : ndarray of shape (m, d)
    counts : ndarray of shape (m,)
        Members of each site.
    members : ndarray of shape (n,)
        Row indices grouped by site, in increasing order within a site: site s holds
        ``members[first[s]:first[s] + counts[s]]``.
    first : ndarray of shape (m,)
    """
    n = points.shape[0]
    if not _may_have_duplicates(points):
        ones = np.ones(n, dtype=np.int64)
        return points, ones, np.arange(n), np.arange(n)
    members = np.lexsort(points.T[::-1])  # stable: equal rows keep their index order
    ordered = points[members]
    new_site = np.empty(n, dtype=bool)
    new_site[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=new_site[1:])
    first = np.flatnonzero(new_site)
    return ordered[first], np.diff(np.append(first, n)), members, first


def _draw_subset(pool, size, u):
    """``size`` entries of ``pool`` drawn uniformly without replacement (partial Fisher-Yates).

    Step j swaps entry j with entry ``j + floor(u[j] * (len(pool) - j))``, so the draw
    uses the first ``size`` uniforms of ``u``.
    """
    pool = pool.copy()
    for j in range(size):
        r = j + min(int(u[j] * (pool.shape[0] - j)), pool.shape[0] - j - 1)
        pool[j], pool[r] = pool[r], pool[j]
    return pool[:size]


def k_nearest_neighbors(points, u, workers=-1, rows=None):
    """The k nearest neighbours of every point (self excluded), with a k-d tree.

    Every point closer to point i than its k-th nearest distance d_k is taken; the
    rest are drawn uniformly without replacement among *all* points j != i at
    distance exactly d_k (duplicates counted one by one). Point i takes its
    draws from row i of ``u`` (``k`` uniforms per point, whatever the data).

    Duplicate rows are folded into sites with multiplicities. Each site's tree query
    is repeated with four times more sites until the farthest returned site lies
    beyond d_k, so the set tied at d_k is complete. Sites whose k nearest are
    decided without a tie (the common case for continuous data) are handled in
    bulk; the others one point at a time.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        Finite float64 coordinates.
    u : ndarray of shape (n, k)
        Uniform [0, 1) draws, ``1 <= k < n``.
    workers : int, default=-1
        Threads for the queries (SciPy's meaning).
    rows : ndarray of int, default=None
        Only these points' neighbours are needed (None: all); only their sites are
        queried.

    Returns
    -------
    ndarray of shape (n, k), or (len(rows), k), int64
        Row i holds the indices of the k neighbours of point i (in no set order).
    """
    from scipy.spatial import cKDTree

    n, k = u.shape
    sites, counts, members, first = _fold_sites(points)
    n_sites = sites.shape[0]
    tree = cKDTree(sites)
    neighbors = np.empty((n, k), dtype=np.int64)
    if rows is None:
        pending = np.arange(n_sites)
    else:
        site_of = np.empty(n, dtype=np.int64)
        site_of[members] = np.repeat(np.arange(n_sites), counts)
        pending = np.unique(site_of[rows])
    width = min(k + 2, n_sites)
    while pending.shape[0]:
        dist, idx = _query(tree, sites[pending], width, workers)
        dist, idx = dist.reshape(-1, width), idx.reshape(-1, width)  # width 1: 1-D
        weight = counts[idx] - (idx == pending[:, None])
        cumulative = np.cumsum(weight, axis=1)
        column = np.minimum((cumulative < k).sum(axis=1), width - 1)
        kth = dist[np.arange(pending.shape[0]), column]
        complete = (dist[:, -1] > kth) | (width == n_sites)
        within = dist <= kth[:, None]
        # No tie to break: exactly k other points at distance <= d_k, none duplicated.
        plain = complete & (counts[pending] == 1) & (within.sum(axis=1) == k + 1) \
            & (np.where(within, counts[idx], 1) == 1).all(axis=1)
        settled = np.flatnonzero(plain)
        if settled.shape[0]:
            listed = idx[settled, :k + 1]
            others = listed != pending[settled, None]
            neighbors[members[first[pending[settled]]]] = \
                members[first[listed[others].reshape(-1, k)]]
        for row in np.flatnonzero(complete & ~plain):
            near = idx[row, dist[row] < kth[row]]
            tied = idx[row, dist[row] == kth[row]]
            near = np.concatenate([members[first[s]:first[s] + counts[s]] for s in near]
                                  + [np.empty(0, np.int64)])
            tied = np.sort(np.concatenate([members[first[s]:first[s] + counts[s]]
                                           for s in tied]))
            site = pending[row]
            for i in members[first[site]:first[site] + counts[site]]:
                near_i, tied_i = near[near != i], tied[tied != i]
                neighbors[i, :near_i.shape[0]] = near_i
                neighbors[i, near_i.shape[0]:] = _draw_subset(
                    tied_i, k - near_i.shape[0], u[i])
        pending = pending[~complete]
        width = min(4 * width, n_sites)
    return neighbors if rows is None else neighbors[rows]


class TiedNeighbors:
    """Every point's neighbours with the probability that random tie-breaking draws
    each (divided by k), stored by sites so that large tied groups stay linear.

    Point i's weights are the same for all members of one site (a set of equal
    rows) except i itself, which never counts: point i in site ``owner[e]`` gives
    weight ``weight[e]`` to every member j != i of site ``target[e]``, for every
    entry e of its site. The weights of point i sum to 1.

    Attributes
    ----------
    site_of : ndarray of shape (n,)
        The site of each point.
    counts, members, first : ndarray
        As :func:`_fold_sites` returns them.
    owner, target : ndarray of shape (n_entries,), int64
    weight : ndarray of shape (n_entries,), float64
    """

    def __init__(self, site_of, counts, members, first, owner, target, weight):
        self.site_of, self.counts, self.members, self.first = (site_of, counts, members,
                                                               first)
        self.owner, self.target, self.weight = owner, target, weight

    def pairs(self):
        """Every (point, entry) pair: ``point`` (n_pairs,) and ``entry`` (n_pairs,).

        Their number is the sum over sites of members times entries: about n times
        the number of equidistant sites a point has (n for a constant column).
        """
        sizes = self.counts[self.owner]
        entry = np.repeat(np.arange(self.owner.shape[0]), sizes)
        starts = np.cumsum(sizes) - sizes
        rank = np.arange(entry.shape[0]) - np.repeat(starts, sizes)
        point = self.members[self.first[self.owner[entry]] + rank]
        return point, entry


def tied_neighbors(points, k=1, workers=-1):
    """The k nearest neighbours of every point, averaged over all tie-breakings.

    Every point strictly nearer to point i than its k-th nearest distance d_k gets
    weight 1/k; the t points at exactly d_k share the remaining ``(k - s) / k``
    equally (s: the points strictly nearer), which is the probability that the
    uniform draws of :func:`k_nearest_neighbors` (k = 1: of
    :func:`nearest_neighbors_kdtree`) pick each of them, over k. Self excluded,
    duplicates counted one by one.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        Finite float64 coordinates.
    k : int, default=1
        ``1 <= k < n``.
    workers : int, default=-1
        Threads for the queries (SciPy's meaning).

    Returns
    -------
    TiedNeighbors
    """
    from scipy.spatial import cKDTree

    sites, counts, members, first = _fold_sites(points)
    n_sites = sites.shape[0]
    site_of = np.empty(points.shape[0], dtype=np.int64)
    site_of[members] = np.repeat(np.arange(n_sites), counts)
    tree = cKDTree(sites)
    owners, targets, weights = [], [], []
    pending = np.arange(n_sites)
    width = min(k + 2, n_sites)
    while pending.shape[0]:
        dist, idx = _query(tree, sites[pending], width, workers)
        dist, idx = dist.reshape(-1, width), idx.reshape(-1, width)
        others = counts[idx] - (idx == pending[:, None])     # points other than self
        cumulative = np.cumsum(others, axis=1)
        column = np.minimum((cumulative < k).sum(axis=1), width - 1)
        kth = dist[np.arange(pending.shape[0]), column]
        complete = (dist[:, -1] > kth) | (width == n_sites)
        rows = np.flatnonzero(complete)
        d, i, o = dist[rows], idx[rows], others[rows]
        strict = (d < kth[rows, None]) & (o > 0)
        tied = (d == kth[rows, None]) & (o > 0)
        nearer = np.where(strict, o, 0).sum(axis=1)
        at_kth = np.where(tied, o, 0).sum(axis=1)
        share = (k - nearer) / (k * at_kth)
        row, col = np.nonzero(strict | tied)
        owners.append(pending[rows][row])
        targets.append(i[row, col])
        weights.append(np.where(strict[row, col], 1.0 / k, share[row]))
        pending = pending[~complete]
        width = min(4 * width, n_sites)
    return TiedNeighbors(site_of, counts, members, first, np.concatenate(owners),
                         np.concatenate(targets), np.concatenate(weights))


def local_cells(points, size):
    """A partition of the points into cells of ``size`` to ``2 * size - 1`` nearby
    points: recursive splits of a cell at the median of its widest coordinate (equal
    values stay together, so a cell of identical points is never split). All cells
    of one depth are split at once.

    Parameters
    ----------
    points : ndarray of shape (n, d)
    size : int

    Returns
    -------
    ndarray of shape (n,), int64
        The cell of each point, numbered from 0.
    """
    n = points.shape[0]
    cell = np.zeros(n, dtype=np.int64)
    pending = np.arange(n)                  # points of cells still to be looked at
    n_cells = 1
    while pending.shape[0]:
        pending = pending[np.argsort(cell[pending], kind="stable")]
        _, starts, counts = np.unique(cell[pending], return_index=True,
                                      return_counts=True)
        groups = starts.shape[0]
        coordinates = points[pending]
        spread = (np.maximum.reduceat(coordinates, starts)
                  - np.minimum.reduceat(coordinates, starts))
        of_point = np.repeat(np.arange(groups), counts)
        values = coordinates[np.arange(pending.shape[0]),
                             np.argmax(spread, axis=1)[of_point]]
        ordered = values[np.lexsort((values, of_point))]
        low = starts + (counts - 1) // 2     # the middle value, or the lower of two
        high = np.minimum(low + 1, values.shape[0] - 1)
        median = np.where(counts % 2 == 1, ordered[low], (ordered[low] + ordered[high]) / 2)
        lower = values < median[of_point]
        none_lower = np.bincount(of_point, weights=lower, minlength=groups) == 0
        lower |= none_lower[of_point] & (values <= median[of_point])
        split = ((counts >= 2 * size)
                 & (np.bincount(of_point, weights=lower, minlength=groups) < counts))
        # A split cell keeps its number for its upper part; its lower part is new.
        new_id = np.full(groups, -1)
        new_id[split] = n_cells + np.arange(np.count_nonzero(split))
        n_cells += np.count_nonzero(split)
        moved = split[of_point] & lower
        cell[pending[moved]] = new_id[of_point[moved]]
        pending = pending[split[of_point]]
    return np.unique(cell, return_inverse=True)[1].astype(np.int64)


def nearest_including_self(points, k, workers=-1):
    """Indices of the ``k`` nearest points of every point, itself included (ties in
    the k-d tree's order), shape (n, k)."""
    from scipy.spatial import cKDTree

    return _query(cKDTree(points), points, k, workers)[1].astype(np.int64)


def ordered_neighbors(points, k, workers=-1):
    """The k nearest neighbours of every point in order of distance, self excluded
    (ties in the k-d tree's order), and their squared distances.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        Finite float64 coordinates, ``k < n``.
    k : int
    workers : int, default=-1

    Returns
    -------
    neighbors : ndarray of shape (n, k), int64
        Column j holds each point's (j + 1)-th nearest neighbour.
    squared_distances : ndarray of shape (n, k)
    """
    from scipy.spatial import cKDTree

    n = points.shape[0]
    dist, idx = _query(cKDTree(points), points, k + 1, workers)
    # A duplicate may come before the point itself: drop the point where it is
    # listed, else the farthest of the k + 1.
    keep = idx != np.arange(n)[:, None]
    keep[keep.all(axis=1), -1] = False
    return idx[keep].reshape(n, k).astype(np.int64), dist[keep].reshape(n, k) ** 2
