"""Nearest-neighbour graphs: the only place where neighbours are searched for.

The statistics ask this module for the self-excluded 1-nearest-neighbour graph of a
point cloud, with ties (duplicate points, equidistant points) broken uniformly at
random among all points at the minimal distance.
"""

from concurrent.futures import ThreadPoolExecutor

from .cpu import moderate_scale, nearest_neighbors_1d, nearest_neighbors_kdtree

__all__ = ["nearest_neighbor_graphs", "nearest_neighbors"]


def nearest_neighbors(points, rng, *, workers=-1):
    """Self-excluded nearest neighbour of every point, ties broken uniformly at random.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        Finite float64 coordinates, n >= 2. Distances are Euclidean on these raw
        coordinates (no scaling).
    rng : numpy.random.Generator
        Source of the tie-breaking draws: exactly ``n`` uniforms are taken from it,
        whatever the data, so later draws do not depend on how many ties there were.
    workers : int, default=-1
        Threads for the k-d tree queries (-1: all cores). The result does not depend
        on it.

    Returns
    -------
    ndarray of shape (n,), int64
        ``neighbors[i]`` is the index of the drawn nearest neighbour of point i.
    """
    return nearest_neighbor_graphs([points], rng, workers=workers)[0]


def nearest_neighbor_graphs(clouds, rng, *, workers=-1):
    """:func:`nearest_neighbors` of several point clouds, searched side by side.

    The draws are taken from ``rng`` cloud by cloud, in order, before any search,
    so the graphs are the same as from successive :func:`nearest_neighbors` calls.
    Unless ``workers == 1`` the searches run in parallel threads (tree building and
    querying release the GIL).

    Parameters
    ----------
    clouds : sequence of ndarray of shape (n, d_k)
    rng : numpy.random.Generator
    workers : int, default=-1

    Returns
    -------
    list of ndarray of shape (n,), int64
    """
    draws = [rng.random(points.shape[0]) for points in clouds]

    def search(points, u):
        if points.shape[1] == 1:
            return nearest_neighbors_1d(points[:, 0], u)
        return nearest_neighbors_kdtree(moderate_scale(points), u, workers=workers)

    if workers == 1 or len(clouds) == 1:
        return [search(points, u) for points, u in zip(clouds, draws)]
    with ThreadPoolExecutor(len(clouds)) as pool:
        return list(pool.map(search, clouds, draws))
