# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled kernels of :class:`chatterjee.backends.cpu.SharedBaseSearch`.

A candidate is a block of one or more columns. Distances are squared Euclidean,
summed column by column in the same order in all kernels (base columns first, then
the candidate's columns), so equal distances are recognised as equal whichever
kernel measured them. The k-nearest kernels follow the tie rule of the k-d tree
search instead: a row whose k-th distance lies within ``SLACK`` of a distance left
out (which the tree, with square roots of sums in another order, may see as a tie)
is left to that search.
"""

from libc.math cimport floor, INFINITY
from libc.stdint cimport int64_t

# Relative slack between the k-d tree's ordering of distances and our sums.
cdef double SLACK = 1e-12


cdef inline int64_t _draw(double u, int64_t count) noexcept nogil:
    cdef int64_t r = <int64_t> floor(u * count)
    return r if r < count else count - 1


cdef inline double _add_block_d2(double d2, const double[:, ::1] block, Py_ssize_t i,
                                 Py_ssize_t j) noexcept nogil:
    """``d2`` plus the squared distance of rows i and j of ``block``, column by column."""
    cdef double d
    cdef Py_ssize_t col
    for col in range(block.shape[1]):
        d = block[j, col] - block[i, col]
        d2 = d2 + d * d
    return d2


def nearest_listed(const double[:, ::1] block, const int64_t[:, ::1] listed,
                   const double[:, ::1] base_d2, const double[::1] bound,
                   const double[::1] u, int64_t[::1] out, char[::1] unsure):
    """Nearest joint neighbour among each row's listed base neighbours.

    ``listed[i]`` holds base neighbours of i in increasing base distance, whose
    squared base distances are ``base_d2[i]``. Rows whose nearest joint distance is
    not certified below ``bound[i]`` (the base distance of the unlisted points) are
    flagged in ``unsure`` and left for another search.
    """
    cdef Py_ssize_t n = listed.shape[0], k = listed.shape[1], i, j, stop
    cdef double best, d2
    cdef int64_t count, r
    with nogil:
        for i in range(n):
            best = INFINITY
            count = 0
            stop = k
            for j in range(k):
                if base_d2[i, j] * (1 - SLACK) > best:
                    stop = j
                    break
                d2 = _add_block_d2(base_d2[i, j], block, i, listed[i, j])
                if d2 < best:
                    best = d2
                    count = 1
                    out[i] = listed[i, j]
                elif d2 == best:
                    count += 1
            unsure[i] = stop == k and not best < bound[i]
            if count > 1 and not unsure[i]:
                r = _draw(u[i], count)
                for j in range(stop):
                    if _add_block_d2(base_d2[i, j], block, i, listed[i, j]) == best:
                        if r == 0:
                            out[i] = listed[i, j]
                            break
                        r -= 1


def nearest_exhaustive(const double[:, ::1] base, const double[:, ::1] block,
                       const int64_t[::1] rows, const double[::1] u, int64_t[::1] out):
    """Nearest joint neighbour of the given rows among all points, by brute force."""
    cdef Py_ssize_t n = base.shape[0], a, i, j
    cdef double best, d2
    cdef int64_t count, r
    with nogil:
        for a in range(rows.shape[0]):
            i = rows[a]
            best = INFINITY
            count = 0
            for j in range(n):
                if j == i:
                    continue
                d2 = _add_block_d2(_add_block_d2(0.0, base, i, j), block, i, j)
                if d2 < best:
                    best = d2
                    count = 1
                    out[i] = j
                elif d2 == best:
                    count += 1
            if count > 1:
                r = _draw(u[i], count)
                for j in range(n):
                    if j != i and \
                            _add_block_d2(_add_block_d2(0.0, base, i, j), block, i, j) == best:
                        if r == 0:
                            out[i] = j
                            break
                        r -= 1


def nearest_sorted_base(const double[::1] sorted_base, const int64_t[::1] order,
                        const double[:, ::1] sorted_block, const double[::1] u,
                        Py_ssize_t max_scan, int64_t[::1] out, char[::1] unsure):
    """Nearest joint neighbour when the base is one-dimensional.

    Both the base and the candidate block are given in the base's sorted order
    (``sorted_base[k]`` and ``sorted_block[k]`` belong to point ``order[k]``). Walks
    outwards from each point through the sorted base values, always taking the side
    with the smaller base gap, and stops once the squared gap alone exceeds the best
    joint distance: exact, duplicates included. A row that needs more than
    ``max_scan`` steps (a base crowded with near-duplicates) is flagged in ``unsure``
    (indexed by point) and left for another search.
    """
    cdef Py_ssize_t n = sorted_base.shape[0], k, lo, hi, j, scanned, found
    cdef double best, b, gap_lo, gap_hi, g2, d2
    cdef int64_t count, r, seen
    cdef int second_pass
    with nogil:
        for k in range(n):
            b = sorted_base[k]
            best = INFINITY
            count = 0
            r = -1
            found = -1
            unsure[order[k]] = 0
            for second_pass in range(2):
                lo = k - 1
                hi = k + 1
                seen = 0
                scanned = 0
                while True:
                    gap_lo = b - sorted_base[lo] if lo >= 0 else INFINITY
                    gap_hi = sorted_base[hi] - b if hi < n else INFINITY
                    if gap_lo <= gap_hi:
                        if lo < 0:
                            break
                        g2 = gap_lo * gap_lo
                        j = lo
                        lo -= 1
                    else:
                        g2 = gap_hi * gap_hi
                        j = hi
                        hi += 1
                    if g2 > best:
                        break
                    if scanned == max_scan:
                        unsure[order[k]] = 1
                        break
                    scanned += 1
                    d2 = _add_block_d2(g2, sorted_block, k, j)
                    if second_pass:
                        if d2 == best:
                            if seen == r:
                                found = j
                                break
                            seen += 1
                    elif d2 < best:
                        best = d2
                        count = 1
                        found = j
                    elif d2 == best:
                        count += 1
                if count < 2 or unsure[order[k]]:
                    break
                r = _draw(u[order[k]], count)
            if found >= 0:
                out[order[k]] = order[found]


cdef inline double _keep_nearest(double d2, int64_t j, double* best, int64_t* index,
                                 Py_ssize_t k) noexcept nogil:
    """Offer point j at squared distance ``d2`` to the ascending k nearest so far
    (``best``, ``index``); return the distance that this leaves out: ``d2`` itself,
    or the former k-th that it pushes out (INFINITY while fewer than k are kept)."""
    cdef Py_ssize_t m
    cdef double out = best[k - 1]
    if d2 >= out:
        return d2
    m = k - 1
    while m > 0 and best[m - 1] > d2:
        best[m] = best[m - 1]
        index[m] = index[m - 1]
        m -= 1
    best[m] = d2
    index[m] = j
    return out


cdef inline bint _undecided(double kth, double left_out) noexcept nogil:
    """Whether fewer than k were found or the nearest distance left out may tie with
    the k-th kept: equal within ``SLACK``, as the k-d tree's distances (square roots
    of sums in another order) may make them; the row is left to the k-d tree
    search, whose tie rule is the reference."""
    return kth == INFINITY or left_out <= kth * (1 + SLACK)


def k_nearest_listed(const double[:, ::1] block, const int64_t[:, ::1] listed,
                     const double[:, ::1] base_d2, const double[::1] bound,
                     int64_t[:, ::1] out, char[::1] unsure):
    """The k nearest joint neighbours (k: ``out``'s width) among each row's listed
    base neighbours, as :func:`nearest_listed` finds the nearest. A row is flagged
    in ``unsure`` when its k-th joint distance is not certified below ``bound[i]``
    or when a distance left out is within ``SLACK`` of it."""
    cdef Py_ssize_t n = listed.shape[0], width = listed.shape[1], k = out.shape[1]
    cdef Py_ssize_t i, j, m, stop
    cdef double best[64]
    cdef int64_t index[64]
    cdef double left_out
    with nogil:
        for i in range(n):
            for m in range(k):
                best[m] = INFINITY
            left_out = INFINITY
            stop = width
            for j in range(width):
                if base_d2[i, j] * (1 - SLACK) > best[k - 1] * (1 + SLACK):
                    stop = j
                    break
                left_out = min(left_out, _keep_nearest(
                    _add_block_d2(base_d2[i, j], block, i, listed[i, j]), listed[i, j],
                    best, index, k))
            if stop == width:
                left_out = min(left_out, bound[i])
            unsure[i] = _undecided(best[k - 1], left_out)
            if not unsure[i]:
                for m in range(k):
                    out[i, m] = index[m]


def k_nearest_exhaustive(const double[:, ::1] base, const double[:, ::1] block,
                         const int64_t[::1] rows, int64_t[:, ::1] out, char[::1] unsure):
    """The k nearest joint neighbours of the given rows among all points, by brute
    force; a row that meets a near tie stays flagged in ``unsure``, the others are
    cleared."""
    cdef Py_ssize_t n = base.shape[0], k = out.shape[1], a, i, j, m
    cdef double best[64]
    cdef int64_t index[64]
    cdef double left_out
    with nogil:
        for a in range(rows.shape[0]):
            i = rows[a]
            for m in range(k):
                best[m] = INFINITY
            left_out = INFINITY
            for j in range(n):
                if j != i:
                    left_out = min(left_out, _keep_nearest(
                        _add_block_d2(_add_block_d2(0.0, base, i, j), block, i, j), j,
                        best, index, k))
            unsure[i] = _undecided(best[k - 1], left_out)
            if not unsure[i]:
                for m in range(k):
                    out[i, m] = index[m]


def k_nearest_grid(const double[::1] base, const double[::1] column,
                   const double[::1] base_edges, const double[::1] column_edges,
                   const int64_t[::1] base_cell, const int64_t[::1] column_cell,
                   const int64_t[::1] cell_start, const int64_t[::1] cell_points,
                   Py_ssize_t max_scan, int64_t[:, ::1] out, char[::1] unsure):
    """The k nearest neighbours (k: ``out``'s width) in the plane of a one-column base
    and a one-column candidate, on a grid of quantile cells.

    Cell (a, b) holds the points with ``base_edges[a] <= base < base_edges[a + 1]``
    and likewise for the column (the last edges are open); its points are
    ``cell_points[cell_start[a * m + b]:cell_start[a * m + b + 1]]``. Each point
    visits rings of cells around its own until the gap to the nearest unvisited
    cell, squared, exceeds its k-th squared distance. Rows that meet a near tie or
    visit more than ``max_scan`` points are flagged in ``unsure``.
    """
    cdef Py_ssize_t n = base.shape[0], k = out.shape[1], m = base_edges.shape[0]
    cdef Py_ssize_t i, j, r, a, b, da, db, cell, p, m_, scanned
    cdef double best[64]
    cdef int64_t index[64]
    cdef double gap, side, d, left_out
    with nogil:
        for i in range(n):
            for m_ in range(k):
                best[m_] = INFINITY
            left_out = INFINITY
            scanned = 0
            r = 0
            while True:
                for da in range(-r, r + 1):
                    a = base_cell[i] + da
                    if a < 0 or a >= m:
                        continue
                    for db in range(-r, r + 1):
                        if da != -r and da != r and db != -r and db != r:
                            continue
                        b = column_cell[i] + db
                        if b < 0 or b >= m:
                            continue
                        cell = a * m + b
                        for p in range(cell_start[cell], cell_start[cell + 1]):
                            j = cell_points[p]
                            if j == i:
                                continue
                            scanned += 1
                            d = base[j] - base[i]
                            d = d * d
                            side = column[j] - column[i]
                            left_out = min(left_out, _keep_nearest(
                                d + side * side, j, best, index, k))
                # The gap from the point to the cells outside the rings visited.
                gap = INFINITY
                if base_cell[i] - r > 0:
                    gap = min(gap, base[i] - base_edges[base_cell[i] - r])
                if base_cell[i] + r + 1 < m:
                    gap = min(gap, base_edges[base_cell[i] + r + 1] - base[i])
                if column_cell[i] - r > 0:
                    gap = min(gap, column[i] - column_edges[column_cell[i] - r])
                if column_cell[i] + r + 1 < m:
                    gap = min(gap, column_edges[column_cell[i] + r + 1] - column[i])
                if gap == INFINITY:
                    break
                if gap * gap > best[k - 1] * (1 + SLACK):
                    left_out = min(left_out, gap * gap)
                    break
                if scanned > max_scan:
                    left_out = 0.0
                    break
                r += 1
            unsure[i] = _undecided(best[k - 1], left_out)
            if not unsure[i]:
                for m_ in range(k):
                    out[i, m_] = index[m_]
