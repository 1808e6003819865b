"""L-CODEC: CODEC on data whose ties are broken by tiny Gaussian noise (Mehta et al. 2022)."""

import numpy as np
from array_api_compat import array_namespace, device

from ._response import is_numeric_labels, response_of
from ._results import CodecResult
from ._validation import check_noise_scale, check_random_state, check_workers
from .backends import nearest_neighbor_graphs, nearest_neighbors
from .codec import check_codec_data, dependence_terms, ratio_or_nan

__all__ = ["lcodec"]


def decisive_gaps(block):
    """Smallest non-zero difference that decides an order or a neighbour, per column.

    For each column: the smallest non-zero gap between its distinct sorted values,
    and the smallest non-zero difference between the two gaps around a value (which
    decides a one-dimensional nearest neighbour). Noise well below it keeps every
    strict order and every one-dimensional nearest neighbour, and breaks only ties.

    Parameters
    ----------
    block : array of shape (n, d)
        NumPy, PyTorch or CuPy (computed on its device).

    Returns
    -------
    ndarray of shape (d,)
        NaN for a constant column (NumPy, on the host).
    """
    xp = array_namespace(block)
    gaps = np.full(block.shape[1], np.nan)
    for j in range(block.shape[1]):
        values = xp.sort(xp.unique_values(block[:, j]))
        steps = values[1:] - values[:-1]
        differences = xp.abs(steps[1:] - steps[:-1])
        decisive = xp.concat((steps, differences[differences > 0]))
        if decisive.shape[0]:
            gaps[j] = float(xp.min(decisive))
    return gaps


def noise_scales(block, noise_scale):
    """Standard deviation of the noise for each column of ``block``."""
    gaps = decisive_gaps(block)
    if np.isnan(gaps).all():
        return np.full(gaps.shape, noise_scale)
    # A constant column takes the finest scale of its block, so it cannot swamp the
    # differences that decide neighbours in the other columns.
    return noise_scale * np.where(np.isnan(gaps), np.nanmin(gaps), gaps)


def lcodec(y, z, x=None, *, y_type="auto", noise_scale=1e-4, n_repeats=1,
           perturb_response=False, nan_policy="propagate", workers=-1, backend="auto",
           random_state=None):
    r"""Randomized CODEC (L-CODEC): T_n(Y, Z | X) on tie-broken data.

    Adds independent Gaussian noise to X and Z, far below the smallest difference
    that decides an order or a one-dimensional neighbour, so distinct values keep
    their relations and only ties are broken; then computes :func:`codec`. The noise
    makes each tied point's neighbour uniformly distributed over the tied group, so
    the result agrees in expectation with :func:`codec`'s uniform tie-breaking on
    duplicated points. Averaging ``n_repeats`` draws lowers the variance.

    Parameters
    ----------
    y : array_like of shape (n,)
        The response: numbers or class labels.
    z : array_like of shape (n,) or (n, q)
        The variables whose added dependence is measured.
    x : array_like of shape (n,) or (n, p), default=None
        The conditioning variables; None computes the unconditional T_n(Y, Z).
    y_type : {'auto', 'continuous', 'categorical'}, default='auto'
        How the response is compared: by its order or by class membership (see
        :func:`codec`).
    noise_scale : float, default=1e-4
        Standard deviation of the noise of each column, as a fraction of that
        column's smallest decisive difference (see Notes). Must be in (0, 0.1].
    n_repeats : int, default=1
        Number of independent noise draws; ``statistic`` is their mean and
        ``statistics`` holds each one.
    perturb_response : bool, default=False
        Also add noise to Y, as in the paper's code. This breaks ties in Y too and
        so changes the estimand for a discrete Y: ranks of tied responses become
        random instead of shared, which lowers T (a binary Y that is a function of
        Z no longer gives T near 1). Leave it off unless you want to reproduce
        that code. Not available for a categorical response (its classes have no
        order to perturb).
    nan_policy : {'propagate', 'raise', 'omit'}, default='propagate'
        NaN in the input: return NaN, raise, or drop the rows that hold one.
    workers : int, default=-1
        Threads for the nearest-neighbour search (-1: all cores).
    backend : {'auto', 'numpy', 'torch', 'cupy'}, default='auto'
        The array library that does the work ('auto': that of the inputs; see
        :func:`codec`). The noise is drawn on the host from ``random_state`` and
        copied to the device, so every backend adds the same noise.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the noise (and any tie the noise could not break).

    Returns
    -------
    CodecResult
        ``statistic`` (mean over repeats), ``statistics`` (each repeat),
        ``n_samples``; ``pvalue`` is NaN.

    See Also
    --------
    codec : the exact coefficient with uniform random tie-breaking.

    Notes
    -----
    For column j the noise has standard deviation ``noise_scale * g_j`` where
    :math:`g_j` is the smallest non-zero value among the gaps between its distinct
    sorted values and the differences between consecutive gaps. Hence on tie-free
    one-dimensional data L-CODEC equals CODEC. A constant column takes the smallest
    :math:`g` of its block. In several dimensions the noise breaks duplicates
    exactly as uniform draws would; equidistant distinct points are broken by the
    noise too, which is close to, but not exactly, uniform. Should the noise fail to
    separate two points (values so large that it falls below their float spacing),
    the exact uniform rule of :func:`codec` decides.

    Speed: :func:`codec` folds duplicated points into weighted sites, so on data
    with many exact duplicates it is faster than L-CODEC (whose noise makes every
    point distinct); L-CODEC is faster where ties are equidistant distinct points,
    such as sparse grids (see the benchmarks in the documentation).

    References
    ----------
    R. Mehta, S. Pal, V. Singh and S. N. Ravi, "Deep Unlearning via Randomized
    Conditionally Independent Hessians", CVPR 2022, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import codec, lcodec
    >>> rng = np.random.default_rng(0)
    >>> z = rng.integers(0, 5, size=500)          # heavily tied
    >>> y = z + rng.integers(0, 3, size=500)
    >>> res = lcodec(y, z, n_repeats=50, random_state=0)
    >>> round(res.statistic, 2), res.statistics.shape
    (0.55, (50,))
    """
    noise_scale = check_noise_scale(noise_scale)
    workers = check_workers(workers)
    if not isinstance(n_repeats, (int, np.integer)) or isinstance(n_repeats, bool) \
            or n_repeats < 1:
        raise ValueError(f"`n_repeats` must be a positive integer, got {n_repeats!r}.")
    if perturb_response not in (True, False):
        raise ValueError("`perturb_response` must be True or False.")
    if perturb_response and y_type == "auto" and is_numeric_labels(y):
        y_type = "continuous"       # the paper's code: a binary y is perturbed too
    y, z, x, has_nan, categorical = check_codec_data(y, z, x, nan_policy, backend,
                                                     y_type)
    if perturb_response and categorical:
        raise ValueError("`perturb_response=True` needs an ordered response; `y` is "
                         "categorical (classes have no order to perturb).")
    n = y.shape[0]
    if has_nan:
        return CodecResult(np.nan, np.nan, n_samples=n)
    rng = check_random_state(random_state)
    xp = array_namespace(y)

    def on_device(values):
        return xp.asarray(values, device=device(y))

    block = z if x is None else xp.concat((x, z), axis=1)
    block_scales = on_device(noise_scales(block, noise_scale))
    y_scale = noise_scales(y[:, None], noise_scale)[0]
    response = response_of(y, categorical)
    if response.is_constant():  # jitter would invent an order that is not there
        return CodecResult(ratio_or_nan(0.0, 0.0, x is not None), n_samples=n)

    p = 0 if x is None else x.shape[1]
    statistics = np.empty(n_repeats)
    for repeat in range(n_repeats):
        if perturb_response:
            response = response_of(y + on_device(rng.normal(scale=y_scale, size=n)),
                                   False)
        noisy = block + on_device(rng.normal(size=block.shape)) * block_scales
        if x is None:
            terms = dependence_terms(response, nearest_neighbors(noisy, rng, workers=workers))
        else:
            given, joint = nearest_neighbor_graphs((noisy[:, :p], noisy), rng,
                                                   workers=workers)
            terms = dependence_terms(response, joint, given)
        statistics[repeat] = ratio_or_nan(*terms, x is not None)
    return CodecResult(float(statistics.mean()), n_samples=n, statistics=statistics)
