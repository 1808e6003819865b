"""Nearest-neighbour graphs: the only place where neighbours are searched for.

The statistics ask this module for the self-excluded 1-nearest-neighbour graph of a
point cloud, with ties (duplicate points, equidistant points) broken uniformly at
random among all points at the minimal distance. The search follows the array's
library: NumPy arrays go to the CPU code (:mod:`.cpu`: sorting and k-d trees),
PyTorch tensors and CuPy arrays stay on their device (:mod:`.array`: sorting, an
exact uniform grid, chunked exact brute force). Both take the same uniform draws from the Generator.

The k-nearest-neighbour graphs (``n_neighbors > 1``) are searched on the CPU only
(:func:`.cpu.k_nearest_neighbors`); device arrays raise ``NotImplementedError``.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .cpu import (
    JoinedSearch,
    SharedBaseSearch,
    k_nearest_neighbors,
    moderate_scale,
    nearest_neighbors_1d,
    nearest_neighbors_kdtree,
)

__all__ = [
    "get_memory_limit",
    "nearest_neighbor_graphs",
    "nearest_neighbors",
    "neighbors_from_draws",
    "safe_scale",
    "set_memory_limit",
    "shared_base_search",
]


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


def _cpu_only(points):
    """Raise NotImplementedError for a k-nearest-neighbour search of device arrays."""
    if not isinstance(points, np.ndarray):
        raise NotImplementedError(
            "n_neighbors > 1 is implemented for NumPy data only; use backend='numpy' "
            "(PyTorch and CuPy data are then copied to the host)."
        )


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
        return k_nearest_neighbors(moderate_scale(points), u, workers=workers)
    if isinstance(points, np.ndarray):
        if points.shape[1] == 1:
            return nearest_neighbors_1d(points[:, 0], u)
        return nearest_neighbors_kdtree(moderate_scale(points), u, workers=workers)
    from . import array

    return array.nearest_neighbors(array.moderate_scale(points), array.on_device(u, points))


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


def nearest_neighbor_graphs(clouds, rng, *, workers=-1, n_neighbors=1):
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

    Returns
    -------
    list of arrays of shape (n,) or (n, k), int64
    """
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
    """Rescale by a power of two when squared distances would overflow or underflow."""
    if isinstance(points, np.ndarray):
        return moderate_scale(points)
    from . import array

    return array.moderate_scale(points)


def shared_base_search(base, *, workers=-1, n_neighbors=1):
    """A search for the neighbours in ``(base, candidate)`` of many candidates.

    Parameters
    ----------
    base : array of shape (n, d)
        The shared block (finite float64; NumPy, PyTorch or CuPy).
    workers : int, default=-1
        Threads for the k-d tree queries (NumPy only).
    n_neighbors : int, default=1
        k > 1: a search of the k nearest neighbours, with draws ``u`` of shape
        (n, k) (:class:`.cpu.JoinedSearch`, NumPy only).

    Returns
    -------
    object
        Its ``neighbors(block, u)`` gives the graph of ``(base, block)`` for the
        draws ``u`` (in the block's library): :class:`.cpu.SharedBaseSearch` for
        NumPy, :class:`.array.ListedBaseSearch` otherwise.
    """
    if n_neighbors > 1:
        _cpu_only(base)
        return JoinedSearch(base, workers=workers)
    if isinstance(base, np.ndarray):
        return SharedBaseSearch(base, workers=workers)
    from . import array

    return array.ListedBaseSearch(base)
