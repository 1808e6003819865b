"""Nearest-neighbour graphs: the only place where neighbours are searched for.

The statistics ask this module for the self-excluded 1-nearest-neighbour graph of a
point cloud, with ties (duplicate points, equidistant points) broken uniformly at
random among all points at the minimal distance. The search follows the array's
library: NumPy arrays go to the CPU code (:mod:`.cpu`: sorting and k-d trees),
PyTorch tensors and CuPy arrays stay on their device (:mod:`.array`: sorting, an
exact uniform grid, chunked exact brute force; NumPy points in 16 dimensions or more
take that brute force too). Both take the same uniform draws from the Generator.

The k-nearest-neighbour graphs (``n_neighbors > 1``) are searched on the CPU only
(:func:`.cpu.k_nearest_neighbors`); device arrays raise ``NotImplementedError``. So
are the graphs averaged over every tie-breaking (``ties='average'``,
:func:`averaged_neighbors`).
"""

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from array_api_compat import array_namespace

from .cpu import (
    SharedBaseSearch,
    TiedNeighbors,
    k_nearest_neighbors,
    k_nearest_neighbors_1d,
    local_cells,
    nearest_including_self,
    nearest_neighbors_1d,
    nearest_neighbors_cpu,
    ordered_neighbors,
    tied_neighbors,
)

__all__ = [
    "AveragedSearch",
    "TiedNeighbors",
    "averaged_neighbors",
    "get_memory_limit",
    "nearest_neighbor_graphs",
    "nearest_neighbors",
    "neighbors_from_draws",
    "neighbors_in_order",
    "repeats_a_value",
    "safe_scale",
    "set_memory_limit",
    "shared_base_search",
]


# safe_scale takes the largest coordinate to about 2**_TOP_EXPONENT. Distinct values
# of magnitude at least s differ by at least s * 2**-53, whose square is a normal
# float (>= 2**-1022) when s >= _SMALLEST_SAFE: such data need no exact gap check.
_TOP_EXPONENT = 480
_SMALLEST_SAFE = 2.0**-458


def set_memory_limit(nbytes):
    """Set the device memory one search block may use (see :func:`.array.set_memory_limit`).

    Parameters
    ----------
    nbytes : int
        The new limit in bytes (default 1 GiB).

    Returns
    -------
    int
        The previous limit.
    """
    from . import array

    return array.set_memory_limit(nbytes)


def get_memory_limit():
    """The device memory one search block may use, in bytes."""
    from . import array

    return array.get_memory_limit()


def _cpu_only(points, what="n_neighbors > 1"):
    """Raise NotImplementedError for a search of device arrays that only the CPU does."""
    if not isinstance(points, np.ndarray):
        raise NotImplementedError(
            f"{what} is implemented for NumPy data only; use backend='numpy' "
            "(PyTorch and CuPy data are then copied to the host)."
        )


def averaged_neighbors(points, *, workers=-1, n_neighbors=1):
    """Self-excluded nearest neighbour(s) of every point, averaged over tie-breaking.

    Each point gets every point at its minimal distance with equal weight (for k
    nearest: the points nearer than the k-th distance with weight 1/k, those at it
    sharing the rest), which is the probability that :func:`nearest_neighbors`
    draws it. Sums over these weights are the expectations of sums over the drawn
    graph: no random draw is taken.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        Finite float64 coordinates (NumPy only), n >= 2.
    workers : int, default=-1
    n_neighbors : int, default=1

    Returns
    -------
    TiedNeighbors
        See :class:`.cpu.TiedNeighbors`.
    """
    _cpu_only(points, "ties='average'")
    return tied_neighbors(safe_scale(points), n_neighbors, workers=workers)


def repeats_a_value(points):
    """Whether some column of ``points`` (n, d) holds a value twice: the data where
    equidistant neighbours occur (without repeated values they tie with probability
    0)."""
    return bool((np.diff(np.sort(points, axis=0), axis=0) == 0).any())


def neighbors_in_order(points, k, *, workers=-1):
    """The k nearest neighbours of every point, nearest first, and their squared
    distances (NumPy only; self excluded, ties in the k-d tree's order, distances
    of the coordinates scaled by :func:`safe_scale`).

    Returns
    -------
    neighbors, squared_distances : ndarrays of shape (n, k)
        See :func:`.cpu.ordered_neighbors`.
    """
    _cpu_only(points, "the bias correction")
    return ordered_neighbors(safe_scale(points), k, workers=workers)


def neighbors_from_draws(points, u, *, workers=-1):
    """Nearest neighbour(s) of every point, given its tie-breaking draws.

    Parameters
    ----------
    points : array of shape (n, d)
        Finite float64 coordinates (NumPy, PyTorch or CuPy), n >= 2.
    u : ndarray of shape (n,) or (n, k)
        Uniform [0, 1) draws (NumPy; copied to the points' device): one per point
        for the nearest neighbour, k per point for the k nearest (NumPy points
        only, see :func:`.cpu.k_nearest_neighbors`).
    workers : int, default=-1
        Threads for the k-d tree queries (NumPy only).

    Returns
    -------
    array of shape (n,) or (n, k), int64
        In the library and on the device of ``points``.
    """
    if u.ndim == 2:
        _cpu_only(points)
        if points.shape[1] == 1:
            return k_nearest_neighbors_1d(safe_scale(points)[:, 0], u)
        return k_nearest_neighbors(safe_scale(points), u, workers=workers)
    if isinstance(points, np.ndarray):
        if points.shape[1] == 1:
            return nearest_neighbors_1d(points[:, 0], u)
        return nearest_neighbors_cpu(safe_scale(points), u, workers=workers)
    from . import array

    return array.nearest_neighbors(safe_scale(points), array.on_device(u, points))


def nearest_neighbors(points, rng, *, workers=-1, n_neighbors=1):
    """Self-excluded nearest neighbour of every point, ties broken uniformly at random.

    Parameters
    ----------
    points : array of shape (n, d)
        Finite float64 coordinates (NumPy, PyTorch or CuPy), n >= 2. Distances are
        Euclidean on these raw coordinates (no scaling).
    rng : numpy.random.Generator
        Source of the tie-breaking draws: exactly ``n`` uniforms are taken from it,
        whatever the data, so later draws do not depend on how many ties there were.
    workers : int, default=-1
        Threads for the k-d tree queries (-1: all cores). The result does not depend
        on it.
    n_neighbors : int, default=1
        k > 1 gives the k nearest neighbours of every point (NumPy only): those
        strictly nearer than the k-th distance, and the rest drawn uniformly without
        replacement among all points at that distance. Exactly ``n * k`` uniforms
        are then taken, as an (n, k) array whose row i serves point i.

    Returns
    -------
    array of shape (n,), or (n, k) for k > 1, int64
        ``neighbors[i]`` is the index of the drawn nearest neighbour of point i (row
        i: its k nearest), in the library and on the device of ``points``.
    """
    return nearest_neighbor_graphs([points], rng, workers=workers,
                                   n_neighbors=n_neighbors)[0]


def nearest_neighbor_graphs(clouds, rng, *, workers=-1, n_neighbors=1, ties="random"):
    """:func:`nearest_neighbors` of several point clouds, searched side by side.

    The draws are taken from ``rng`` cloud by cloud, in order, before any search,
    so the graphs are the same as from successive :func:`nearest_neighbors` calls.
    For NumPy clouds, unless ``workers == 1`` the searches run in parallel threads
    (tree building and querying release the GIL); device clouds are searched in turn.

    Parameters
    ----------
    clouds : sequence of arrays of shape (n, d_k)
    rng : numpy.random.Generator
    workers : int, default=-1
    n_neighbors : int, default=1
        See :func:`nearest_neighbors`.
    ties : {'random', 'average'}, default='random'
        'average': the graphs of :func:`averaged_neighbors` (NumPy only); no draw is
        taken from ``rng``.

    Returns
    -------
    list of arrays of shape (n,) or (n, k), int64, or of TiedNeighbors
    """
    if ties == "average":
        return [averaged_neighbors(points, workers=workers, n_neighbors=n_neighbors)
                for points in clouds]
    if n_neighbors > 1:
        for points in clouds:
            _cpu_only(points)
    draws = [rng.random(points.shape[0] if n_neighbors == 1
                        else (points.shape[0], n_neighbors)) for points in clouds]

    def search(points, u):
        return neighbors_from_draws(points, u, workers=workers)

    if workers == 1 or len(clouds) == 1 or not isinstance(clouds[0], np.ndarray):
        return [search(points, u) for points, u in zip(clouds, draws)]
    with ThreadPoolExecutor(len(clouds)) as pool:
        return list(pool.map(search, clouds, draws))


def safe_scale(points):
    """Multiply by a power of two so that no squared distance overflows or underflows.

    Neighbour searches compare sums of squared coordinate differences, which overflow
    to inf beyond about 1e154 and underflow to 0 below about 1e-162. Data that reach
    either end are rescaled so that their largest coordinate is about
    ``2**(480 - log2(d) / 2)``: squared distances (and the norms the device search
    forms) stay finite, and differences down to about 1e-290 times the largest
    coordinate keep a nonzero square. One far outlier therefore does not turn the
    other points into ties. Multiplying by a power of two is exact, so graphs and
    ties are those of the raw coordinates. When even this range is not enough (two
    distinct points nearer than ``2**-511`` after scaling), a ``RuntimeWarning``
    says that such points are taken as tied.

    Parameters
    ----------
    points : array of shape (n, d)
        Finite float64 coordinates (NumPy, PyTorch or CuPy).

    Returns
    -------
    array of shape (n, d)
        ``points`` itself when no scaling is needed, else a scaled copy.
    """
    xp = array_namespace(points)
    magnitude = xp.abs(points)
    largest = float(xp.max(magnitude))
    if largest == 0:
        return points
    smallest = float(xp.min(xp.where(magnitude > 0, magnitude, xp.inf)))
    top = _TOP_EXPONENT - math.ceil(math.log2(max(points.shape[1], 1)) / 2)
    if largest <= 2.0**top and smallest >= _SMALLEST_SAFE:
        return points
    shift = top - math.frexp(largest)[1]
    if math.ldexp(smallest, shift) < _SMALLEST_SAFE:
        ordered = xp.sort(points, axis=0)
        gaps = ordered[1:, :] - ordered[:-1, :]
        gap = float(xp.min(xp.where(gaps > 0, gaps, xp.inf)))
        if math.ldexp(gap, shift) < 2.0**-511:
            warnings.warn(
                "The coordinates span too many orders of magnitude for squared "
                f"distances in float64 (largest {largest:.3g}, distinct values "
                f"{gap:.3g} apart): points nearer than about "
                f"{math.ldexp(2.0**-511, -shift):.3g} are taken as tied. Transform "
                "the columns (e.g. with a logarithm) to resolve them.",
                RuntimeWarning,
                stacklevel=2,
            )
    half = shift // 2  # two factors: 2**shift alone may not be a float
    return points * 2.0**half * 2.0**(shift - half)


class AveragedSearch:
    """:func:`averaged_neighbors` in ``(base, candidate)``, one k-d tree per candidate.

    Parameters
    ----------
    base : ndarray of shape (n, d)
        The shared block (d may be 0: the candidate alone).
    workers, n_neighbors : int
    """

    def __init__(self, base, *, workers=-1, n_neighbors=1):
        _cpu_only(base, "ties='average'")
        self.base, self.workers, self.n_neighbors = base, workers, n_neighbors

    def neighbors(self, block, u=None):
        """The averaged neighbours in ``(base, block)``; ``u`` is not used."""
        joint = np.column_stack((self.base, block.reshape(block.shape[0], -1)))
        return averaged_neighbors(joint, workers=self.workers,
                                  n_neighbors=self.n_neighbors)


def shared_base_search(base, *, workers=-1, n_neighbors=1, ties="random"):
    """A search for the neighbours in ``(base, candidate)`` of many candidates.

    Parameters
    ----------
    base : array of shape (n, d)
        The shared block (finite float64; NumPy, PyTorch or CuPy).
    workers : int, default=-1
        Threads for the k-d tree queries (NumPy only).
    n_neighbors : int, default=1
        k > 1: a search of the k nearest neighbours, with draws ``u`` of shape
        (n, k) (NumPy only).
    ties : {'random', 'average'}, default='random'
        'average': an :class:`AveragedSearch` (NumPy only; ``base`` may have no
        columns).

    Returns
    -------
    object
        Its ``neighbors(block, u)`` gives the graph of ``(base, block)`` for the
        draws ``u`` (in the block's library): :class:`.cpu.SharedBaseSearch` for
        NumPy, :class:`.array.ListedBaseSearch` otherwise.
    """
    if ties == "average":
        return AveragedSearch(base, workers=workers, n_neighbors=n_neighbors)
    if n_neighbors > 1:
        _cpu_only(base)
    if isinstance(base, np.ndarray):
        return SharedBaseSearch(base, workers=workers, n_neighbors=n_neighbors)
    from . import array

    return array.ListedBaseSearch(base)
