"""Azadkia and Chatterjee's conditional dependence coefficient T_n(Y, Z | X), exactly."""

import warnings

import numpy as np
from array_api_compat import array_namespace

from ._permutation import check_method, permutation_pvalue
from ._response import encode_response, response_of
from ._results import CodecResult
from ._validation import (
    ConstantInputWarning,
    check_backend,
    check_random_state,
    check_samples,
    check_workers,
    to_numpy,
    warn_constant,
)
from .backends import (
    TiedNeighbors,
    local_cells,
    nearest_including_self,
    nearest_neighbor_graphs,
    neighbors_in_order,
    repeats_a_value,
)

__all__ = ["codec"]


def dependence_terms(response, joint, given=None):
    """Numerator and denominator of T_n from the response and neighbour graphs.

    For an ordered response both are ``n**2`` times R FOCI's Q and S, so
    ``numerator / denominator`` is T_n and the numerator of T(Y, Z) for a set Z is
    ``n**2 * Q_n(Y, Z)`` as FOCI uses it.

    Parameters
    ----------
    response : OrderedResponse or CategoricalResponse
        See :mod:`chatterjee._response` (its arrays in any array library: the sums
        run on its device).
    joint : array of shape (n,) or (n, k)
        Nearest neighbour (or k nearest) of each point in the space of (X, Z), or of
        Z alone.
    given : array of shape (n,) or (n, k), or None
        Nearest neighbour (or k nearest) of each point in the space of X; None for
        T_n(Y, Z).

    Returns
    -------
    numerator, denominator : float
    """
    return terms_of_agreements(
        response, agreement(response, joint),
        None if given is None else agreement(response, given))


def terms_of_agreements(response, agree_joint, agree_given=None):
    """:func:`dependence_terms` from the agreements ``sum_i s(i, M(i))`` and
    ``sum_i s(i, N(i))`` (None for T_n(Y, Z))."""
    if agree_given is None:
        return response.unconditional_terms(agree_joint)
    return agree_joint - agree_given, response.self_total() - agree_given


#: Neighbours whose agreements the bias correction extrapolates to distance zero.
_EXTRAPOLATED = 6


def corrected_agreement(response, points, rng, workers=-1):
    """``sum_i s(i, G(i))`` extrapolated to neighbours at distance zero.

    The agreement with the j-th nearest neighbour, j = 1, ..., 6, is fitted by least
    squares as a line in the mean squared distance to the j-th neighbour; the
    intercept is returned. Its bias (the response of a neighbour differs from that
    of the point itself) is of the order of that distance, so the intercept removes
    its leading term (:func:`codec`, Notes). Points with a repeated coordinate (where
    equidistant neighbours occur) are searched in a random order drawn from ``rng``,
    so such neighbours are ordered at random, not by row; other data take no draw.
    When the mean distances do not grow with j (all six neighbours of every point
    are duplicates), there is nothing to extrapolate: the mean over the six.
    """
    n = points.shape[0]
    order = rng.permutation(n) if repeats_a_value(points) else np.arange(n)
    shuffled, squared = neighbors_in_order(points[order], _EXTRAPOLATED,
                                           workers=workers)
    neighbors = np.empty_like(shuffled)
    neighbors[order] = order[shuffled]
    agreements = np.array([agreement(response, neighbors[:, j])
                           for j in range(_EXTRAPOLATED)])
    spread = squared.mean(axis=0)
    if not spread[-1] > spread[0]:
        return float(agreements.mean())
    _, intercept = np.polyfit(spread / spread[-1], agreements, 1)
    return float(intercept)


def agreement(response, graph):
    """``sum_i s(i, graph(i))`` as a float, with the response's similarity s
    (``min(R_i, R_j)``, or ``1{Y_i = Y_j}`` for classes): exact for a drawn graph
    (an integer below 2**53), rounded for averaged weights.

    For a k-nearest-neighbour graph of shape (n, k) (NumPy), the mean over each
    row's neighbours: ``sum_i sum_j s(i, graph[i, j]) / k``; for a
    :class:`~chatterjee.backends.TiedNeighbors` (``ties='average'``), the sum
    weighted by the probability of each neighbour under random tie-breaking.
    """
    if isinstance(graph, TiedNeighbors):
        return response.averaged_agreement(graph)
    values = response.values
    if graph.ndim == 2:
        return float(response.similarity(values[:, None], values[graph]).sum()) \
            / graph.shape[1]
    xp = array_namespace(values)
    return float(xp.sum(response.similarity(values, xp.take(values, graph))))


def check_n_neighbors(n_neighbors, n_samples, data):
    """Validate ``n_neighbors`` (an int in [1, n_samples)) for data of that library."""
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) \
            or not 1 <= n_neighbors < n_samples:
        raise ValueError(
            f"`n_neighbors` must be an integer between 1 and n_samples - 1 "
            f"({n_samples - 1}), got {n_neighbors!r}."
        )
    if n_neighbors > 1 and not isinstance(data, np.ndarray):
        raise NotImplementedError(
            "n_neighbors > 1 is implemented for NumPy data only; use backend='numpy' "
            "(PyTorch and CuPy data are then copied to the host)."
        )
    return int(n_neighbors)


def ratio_or_nan(numerator, denominator, conditional):
    """T_n = numerator / denominator, or NaN with a warning when it is undefined."""
    if denominator == 0:
        warn_constant(
            "`y` is constant given `x`" if conditional else "`y` is constant"
        )
        return np.nan
    return float(numerator / denominator)


def check_codec_data(y, z, x, nan_policy, backend="numpy", y_type="auto"):
    """Validate the inputs of codec and lcodec: y (n,), z (n, q), x (n, p) or None.

    They come back as float64 arrays of the backend's library (for 'auto', that of
    the inputs), on its device; a categorical y as class codes (see
    :func:`_response.encode_response`), with the flag ``categorical``.
    """
    if z is None:  # check_samples would take it for an absent block
        raise TypeError("`z` is required, got None.")
    y, categorical = encode_response(y, y_type, stacklevel=4)
    data, has_nan = check_samples(
        {"y": (y, False), "z": (z, True), "x": (x, True)}, nan_policy=nan_policy,
        backend=check_backend(backend, y, z, x),
    )
    return data["y"], data["z"], data["x"], has_nan, categorical


TIES = ("random", "average")


def check_ties(ties):
    """Validate ``ties``: 'random' or 'average'."""
    if ties not in TIES:
        raise ValueError(f"`ties` must be 'random' or 'average', got {ties!r}.")
    return ties


def codec(y, z, x=None, *, y_type="auto", ties="random", n_neighbors=1, method=None,
          bias_correction=None, nan_policy="propagate", workers=-1, backend="auto",
          random_state=None):
    r"""Azadkia and Chatterjee's coefficient T_n(Y, Z | X), or T_n(Y, Z).

    T measures how much Z adds to X for predicting Y: it is 0 in the limit if and
    only if Y is independent of Z given X, and 1 if and only if Y is a measurable
    function of (X, Z). Without ``x`` it measures the dependence of Y on Z.

    Parameters
    ----------
    y : array_like of shape (n,)
        The response: numbers, or class labels (strings, booleans, pandas
        Categorical, any hashable values).
    z : array_like of shape (n,) or (n, q)
        The variables whose added dependence is measured.
    x : array_like of shape (n,) or (n, p), default=None
        The conditioning variables; None computes the unconditional T_n(Y, Z).
    y_type : {'auto', 'continuous', 'categorical'}, default='auto'
        How the response is compared. 'continuous': by its order (Azadkia and
        Chatterjee's T). 'categorical': by class membership only (Notes), so the
        answer does not depend on how the classes are named or numbered. 'auto':
        categorical for labels that are not numbers (strings, booleans, pandas
        Categorical, objects) and for numbers with exactly two distinct values,
        continuous for other numbers, with a ``UserWarning`` when those are at most
        100 distinct integers that repeat (likely class codes): pass ``y_type`` to
        decide.
    ties : {'random', 'average'}, default='random'
        Nearest neighbours at equal distance (duplicate or equidistant points):
        'random' draws one uniformly (Azadkia and Chatterjee's rule; the answer
        depends on the seed); 'average' averages the response's term over all of
        them, which is the expectation of the 'random' numerator and denominator
        over the draws, so tied data give one answer for every seed (NumPy data
        only). Without ties both are the same.
    n_neighbors : int, default=1
        k, the number of nearest neighbours of each point whose ranks are averaged
        (see Notes). 1 is Azadkia and Chatterjee's coefficient; larger k trades some
        of its sensitivity to sharp dependence for power against noisy dependence.
        An integer in [1, n - 1]; k > 1 needs ``backend='numpy'`` (device arrays
        raise ``NotImplementedError``) and searches a k-d tree with exact ties,
        slower than the tuned 1-nearest-neighbour path.
    method : str, scipy.stats.PermutationMethod or None, default=None
        None computes no p-value (``pvalue`` is NaN). 'permutation' without ``x``: a
        permutation test of the independence of Y and Z (9999 resamples by default);
        it reuses the neighbour graph, so each resample costs O(n). With ``x``: a
        test of the conditional independence of Y and Z given X (999 resamples by
        default; needs ``ties='random'``), in which Z enters as its ranks given X and
        these are permuted (Notes); each resample searches the joint graph again,
        O(n log n). 'asymptotic': a one-sided normal test of T = 0 with a standard
        error from random halvings of the sample (Notes), about 50 times the cost of
        T itself; it also gives ``standard_error`` and
        :meth:`~chatterjee.CodecResult.confidence_interval`. Needs n >= 20.
    bias_correction : bool or None, default=None
        Extrapolate each neighbour term to neighbours at distance zero (Notes),
        which removes most of T_n's bias at the cost of a larger variance. None:
        True with ``method='asymptotic'`` (whose p-value and interval assume an
        unbiased estimate), False otherwise. Needs ``n_neighbors=1`` and NumPy
        data, and is not combined with the permutation tests (they are exact
        without it).
    nan_policy : {'propagate', 'raise', 'omit'}, default='propagate'
        NaN in the input: return NaN, raise, or drop the rows that hold one (R's
        ``na.rm = TRUE`` is ``'omit'``).
    workers : int, default=-1
        Threads for the nearest-neighbour search (-1: all cores). The result does
        not depend on it.
    backend : {'auto', 'numpy', 'torch', 'cupy'}, default='auto'
        The array library that does the work. 'auto' follows the inputs: PyTorch
        tensors and CuPy arrays are searched on their device (CPU or GPU), in
        float64 whatever their dtype; anything else with NumPy (sorting and k-d
        trees). See the backends page of the documentation.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the tie-breaking among equally near neighbours (and the permutations).
        Data without such ties give the same answer for every seed and backend.

    Returns
    -------
    CodecResult
        ``statistic`` and ``pvalue`` (unpacks as a pair), ``n_samples`` and, with
        ``method='asymptotic'``, ``standard_error`` and ``confidence_interval()``.

    See Also
    --------
    lcodec : the randomized variant of Mehta et al. (ties broken by noise).
    xi : Chatterjee's coefficient for one scalar predictor.

    Notes
    -----
    With :math:`R_i = \#\{j : Y_j \le Y_i\}`, :math:`L_i = \#\{j : Y_j \ge Y_i\}`,
    N(i) the nearest neighbour of :math:`X_i` among the :math:`X_j` and M(i) that of
    :math:`(X_i, Z_i)` among the :math:`(X_j, Z_j)` (Euclidean, raw coordinates,
    self excluded),

    .. math::

        T_n = \frac{\sum_i [\min(R_i, R_{M(i)}) - \min(R_i, R_{N(i)})]}
                   {\sum_i [R_i - \min(R_i, R_{N(i)})]},
        \qquad
        T_n(Y, Z) = \frac{\sum_i [n \min(R_i, R_{M(i)}) - L_i^2]}
                         {\sum_i L_i (n - L_i)}.

    Ties among nearest neighbours (duplicate points, equidistant points) are broken
    uniformly at random among all points at the minimal distance in the space being
    searched, with one draw of N shared by numerator and denominator. This corrects
    R FOCI 0.1.3, which draws the joint-space ties by their distance in X alone and
    draws N twice. On tie-free data the values equal R's. The draws are ``n``
    uniforms per graph from ``random_state``: first N's, then M's.

    With ``n_neighbors=k``, :math:`N_k(i)` and :math:`M_k(i)` are the sets of the k
    nearest neighbours (self excluded) and each :math:`\min(R_i, R_{N(i)})` is
    replaced by its mean over them (the k-nearest-neighbour graph version of Deb,
    Ghosal and Sen; Azadkia and Chatterjee's remark; Lin and Han):

    .. math::

        T_{n,k} = \frac{\sum_i [\bar m_i^{M} - \bar m_i^{N}]}
                       {\sum_i [R_i - \bar m_i^{N}]},
        \qquad
        T_{n,k}(Y, Z) = \frac{\sum_i [n \bar m_i^{M} - L_i^2]}
                             {\sum_i L_i (n - L_i)},
        \qquad
        \bar m_i^{G} = \frac{1}{k} \sum_{j \in G_k(i)} \min(R_i, R_j).

    k = 1 is T_n. The points strictly nearer than the k-th distance are all in
    :math:`G_k(i)`; the others are drawn uniformly without replacement among all
    points at exactly the k-th distance (duplicates counted one by one). Each graph
    then takes ``n * k`` uniforms, as an (n, k) array whose row i serves point i;
    N's before M's.

    A categorical response replaces :math:`\min(R_i, R_j)` by the discrete kernel
    :math:`1\{Y_i = Y_j\}` (Huang, Deb and Sen's kernel partial correlation; the
    thresholds :math:`1\{Y \ge t\}` of Azadkia and Chatterjee become class
    indicators):

    .. math::

        T_n = \frac{\sum_i [1\{Y_i = Y_{M(i)}\} - 1\{Y_i = Y_{N(i)}\}]}
                   {\sum_i [1 - 1\{Y_i = Y_{N(i)}\}]},
        \qquad
        T_n(Y, Z) = \frac{\sum_i 1\{Y_i = Y_{M(i)}\} - \sum_c n_c^2 / n}
                         {n - \sum_c n_c^2 / n},

    with :math:`n_c` the size of class c. Its limit is
    :math:`\sum_c E[\mathrm{Var}(P(Y = c \mid X, Z) \mid X)] /
    \sum_c E[\mathrm{Var}(1\{Y = c\} \mid X)]`: 0 if and only if Y is
    independent of Z given X, 1 if and only if Y is a function of (X, Z). For two
    classes it has the same limit as the ordered T; the estimate pools the two
    ordered ones (either class on top, the same neighbours): the sum of their
    numerators over the sum of their denominators, each divided by the size of
    the class on top. It therefore does not depend on which class is on top.

    The conditional test (``method`` with ``x``) replaces Z by its conditional ranks
    given X and permutes them, keeping Y, X and the graph of X: each Z_i's residual
    from the local linear fit of Z on X (least squares over the max(8, 2(p + 1))
    nearest points of X_i) is ranked among the residuals of its 20 nearest
    neighbours in X, ties split by a uniform draw, giving U_i in [0, 1]. When the
    law of the residual varies slowly with X, U is uniform and independent of X
    whatever its shape (skewed, bimodal, discrete), so permuting U draws it under
    conditional independence; Y is independent of Z given X if and only if it is of
    U (a one-to-one function of Z given X). The p-value counts T_n(Y, U | X) among
    its values for the permutations; ``null_distribution`` holds those values (to
    compare with T_n(Y, U | X), not with ``statistic``, which is T_n(Y, Z | X)).
    Resampling Z itself (its local fit plus residuals permuted within cells of
    nearby X) was calibrated on smooth and sharp designs but rejected 18 % of true
    nulls at level 5 % when Z causes X through a non-monotone link (``X = abs(Z)
    + noise``: Z given X bimodal); plain local permutations of Y or of Z are not valid
    for T either (permuting Y rejected 0-1 % with X in 3 dimensions, permuting Z
    10-17 %). The rank test's calibration, on smooth, sharp, bimodal and
    heteroscedastic designs with X of 1-3 dimensions, is in the documentation's
    tables; its power is lower than the residual resampling's on smooth
    alternatives (0.25 against 0.43 in one design at n = 1000).

    The asymptotic test (``method='asymptotic'``) rests on T_n being asymptotically
    normal around its mean with a variance of order 1 / n (Shi, Drton and Han under
    conditional independence; Gao, Han and Li in general). The variance is estimated
    without its closed form: the sample is split at random into two halves of
    m = floor(n / 2) points, T is computed on each (with its own ranks and graphs),
    and :math:`\mathrm{Var}(T_n) \approx (m / n) E[(T_1 - T_2)^2] / 2`, averaged over
    50 splits. The halves are independent samples, so the estimate includes the
    randomness of the neighbour graphs, which a bootstrap misses (Lin and Han). The
    p-value is :math:`1 - \Phi(T_n / \mathrm{se})` and the interval
    :math:`T_n \pm z\,\mathrm{se}`, clipped to [0, 1]; both need T_n's bias to be
    small against the standard error.

    That bias comes from the neighbours: :math:`\min(R_i, R_{G(i)})` estimates
    :math:`\int G_w(t)^2 d\mu(t)`, with :math:`G_w(t) = P(Y \ge t \mid W = w)`,
    only as the neighbour's W approaches :math:`W_i`, and the error is to leading
    order proportional to the squared distance between them. It is negligible
    against :math:`1 / \sqrt{n}` only in fewer than four dimensions (Azadkia, Chen
    and Han), and at the sample sizes of practice it is not: under conditional
    independence with X in 2 or 3 dimensions T_n is typically 1 to 3 standard errors
    below 0. ``bias_correction=True`` computes each agreement sum
    :math:`\sum_i s(i, G_j(i))` with the j-th nearest neighbour, j = 1, ..., 6,
    and extrapolates it, by least squares in the mean squared j-th-neighbour
    distance, to distance zero (a generalized jackknife over the order of the
    neighbours; Azadkia, Chen and Han instead subtract a ridge-regression estimate
    of the bias). Equidistant neighbours are ordered at random (``random_state``). The
    documentation tabulates its calibration and the intervals' coverage.

    T_n is not clipped: it can be negative, and erratic for tiny n. A constant
    response (or one constant given X) leaves T undefined: NaN with a
    :class:`ConstantInputWarning` (R FOCI returns 1).

    References
    ----------
    M. Azadkia and S. Chatterjee, "A simple measure of conditional dependence",
    Annals of Statistics 49 (2021) 3070-3102.

    H. Shi, M. Drton and F. Han, "On Azadkia-Chatterjee's conditional dependence
    coefficient", Bernoulli 30 (2024) 851-877.

    M. Gao, F. Han and Q. Li, "Limit theorems of Azadkia-Chatterjee's conditional
    graph correlation", arXiv:2606.15433 (2026).

    M. Azadkia, L. Chen and F. Han, "Bias correction for Chatterjee's graph-based
    correlation coefficient", arXiv:2508.09040 (2025).

    Z. Lin and F. Han, "On the failure of the bootstrap for Chatterjee's rank
    correlation", Biometrika 111 (2024) 1063-1070.

    Z. Huang, N. Deb and B. Sen, "Kernel partial correlation coefficient - a
    measure of conditional dependence", JMLR 23 (2022) 1-58.

    N. Deb, P. Ghosal and B. Sen, "Measuring association on topological spaces using
    kernels and geometric graphs", arXiv:2010.01768 (2020).

    Z. Lin and F. Han, "On boosting the power of Chatterjee's rank correlation",
    Biometrika 110 (2023) 283-299.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import codec
    >>> rng = np.random.default_rng(0)
    >>> x, z = rng.normal(size=(2, 2000))
    >>> y = x + z
    >>> round(codec(y, z, x).statistic, 2)  # z completes x: close to 1
    0.97
    >>> round(codec(y, z).statistic, 2)     # z alone explains half of y
    0.28
    """
    method = check_method(method, (None, "permutation", "asymptotic"))
    if bias_correction is None:
        bias_correction = method == "asymptotic"
    elif not isinstance(bias_correction, (bool, np.bool_)):
        raise ValueError(
            f"`bias_correction` must be True, False or None, got {bias_correction!r}.")
    workers = check_workers(workers)
    y, z, x, has_nan, categorical = check_codec_data(y, z, x, nan_policy, backend,
                                                     y_type)
    n = y.shape[0]
    n_neighbors = check_n_neighbors(n_neighbors, n, y)
    ties = check_ties(ties)
    if has_nan:
        return CodecResult(np.nan, np.nan, n_samples=n)
    if bias_correction and (n_neighbors != 1 or method == "permutation"
                            or ties != "random" or n <= _EXTRAPOLATED):
        raise ValueError(
            "`bias_correction` (on by default with method='asymptotic'; pass "
            "bias_correction=False to go without) extrapolates the terms of the first "
            f"{_EXTRAPOLATED} neighbours: it needs more than {_EXTRAPOLATED} samples, "
            "n_neighbors=1 and ties='random', and the permutation tests need no "
            "correction."
        )
    if method == "permutation" and x is not None and ties != "random":
        raise ValueError("The conditional permutation test needs `ties='random'`.")
    if method == "asymptotic" and (n < _FEWEST_ASYMPTOTIC or n_neighbors >= n // 2):
        raise ValueError(
            f"method='asymptotic' needs at least {_FEWEST_ASYMPTOTIC} samples and "
            f"n_neighbors below half of them (it halves the sample), got n = {n} and "
            f"n_neighbors = {n_neighbors}.")
    rng = check_random_state(random_state)
    response = response_of(y, categorical)
    options = {"workers": workers, "n_neighbors": n_neighbors, "ties": ties,
               "bias_correction": bias_correction}
    terms, (given, joint) = _terms_and_graphs(response, z, x, rng, **options)
    statistic = ratio_or_nan(*terms, x is not None)
    if method is None or np.isnan(statistic):
        return CodecResult(statistic, n_samples=n)
    if method == "asymptotic":
        from scipy.stats import norm

        standard_error = _halving_standard_error(
            to_numpy(y), to_numpy(z), None if x is None else to_numpy(x), categorical,
            rng, **options)
        # a standard error of 0 (every half gives the same T): T itself decides
        z_score = (statistic / standard_error if standard_error != 0
                   else np.inf * statistic if statistic != 0 else 0.0)
        return CodecResult(statistic, float(norm.sf(z_score)), n_samples=n,
                           standard_error=standard_error)
    if x is not None:
        on_host = response if isinstance(y, np.ndarray) else response_of(
            to_numpy(y), categorical)
        pvalue, null = _conditional_permutation_test(
            on_host, to_numpy(z), to_numpy(x), to_numpy(given), method, rng,
            workers=workers, n_neighbors=n_neighbors)
        return CodecResult(statistic, pvalue, n_samples=n, null_distribution=null)

    values = to_numpy(response.values)
    if not isinstance(joint, TiedNeighbors):
        joint = to_numpy(joint)
    denominator = terms[1]
    pairs = response.unconditional_terms(0.0)[0]        # -sum_ij s(i, j) / n
    similarity = response.similarity

    def statistic_of_values(permuted, axis):
        if isinstance(joint, TiedNeighbors):
            agree = np.array([response.averaged_agreement(joint, row)
                              for row in permuted.reshape(-1, n)]).reshape(
                                  permuted.shape[:-1])
        elif joint.ndim == 1:
            agree = similarity(permuted, permuted[..., joint]).sum(axis=-1)
        else:
            agree = similarity(permuted[..., None], permuted[..., joint]).sum(
                axis=(-2, -1)) / n_neighbors
        return (agree + pairs) / denominator

    _, pvalue, null = permutation_pvalue(statistic_of_values, values, method, rng)
    return CodecResult(statistic, pvalue, n_samples=n, null_distribution=null)


#: Fewest samples of the asymptotic method (it halves the sample).
_FEWEST_ASYMPTOTIC = 20
#: Random halvings of the sample behind the asymptotic standard error.
_HALVINGS = 50


def _terms_and_graphs(response, z, x, rng, *, workers, n_neighbors, ties,
                      bias_correction):
    """Numerator and denominator of T_n, and the graphs of X and of (X, Z) (or of Z)
    behind them (None with the bias correction, which extrapolates agreements)."""
    xp = array_namespace(z)
    joint = z if x is None else xp.concat((x, z), axis=1)
    if bias_correction:
        agree_given = (None if x is None
                       else corrected_agreement(response, x, rng, workers))
        return terms_of_agreements(
            response, corrected_agreement(response, joint, rng, workers),
            agree_given), (None, None)
    graphs = nearest_neighbor_graphs([joint] if x is None else [x, joint], rng,
                                     workers=workers, n_neighbors=n_neighbors, ties=ties)
    given = None if x is None else graphs[0]
    return dependence_terms(response, graphs[-1], given), (given, graphs[-1])


def _halving_standard_error(y, z, x, categorical, rng, **options):
    """Standard error of T_n from T on the two halves of random splits of the sample.

    The halves are independent samples of size m = floor(n / 2), so
    ``E[(T_1 - T_2)**2] = 2 Var(T_m)``; T_n is asymptotically normal with variance of
    order 1 / n, so ``Var(T_n) ~ (m / n) Var(T_m)``. Averaged over 50 splits (NumPy
    data: y codes, z and x as checked). Splits with a half whose response is
    constant (T undefined) are skipped; NaN when all are.
    """
    n = y.shape[0]
    m = n // 2
    differences = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        for _ in range(_HALVINGS):
            order = rng.permutation(n)
            halves = [order[:m], order[m:2 * m]]
            first, second = (
                ratio_or_nan(*_terms_and_graphs(
                    response_of(y[half], categorical), z[half],
                    None if x is None else x[half], rng, **options)[0], x is not None)
                for half in halves)
            differences.append(first - second)
    differences = np.asarray(differences)
    differences = differences[~np.isnan(differences)]
    if differences.shape[0] == 0:
        return np.nan
    return float(np.sqrt(np.mean(differences**2) / 2 * m / n))


#: Cells of the conditional permutation: this many nearby points of X, up to twice.
_CELL_SIZE = 10
#: Fewest neighbours of a local linear fit of Z on X (at least 2 (p + 1) in p dims).
_LOCAL_FIT = 8
#: Neighbours among which a residual is ranked (:meth:`ConditionalResampler.conditional_ranks`).
_RANKED = 20
#: Resamples of the conditional test without a PermutationMethod.
_CONDITIONAL_RESAMPLES = 999


class ConditionalResampler:
    """Draws of variables Z from an estimate of their law given X (None: their own).

    A draw is the local linear fit of Z on X (least squares over the
    ``max(8, 2 (p + 1))`` nearest points of each point, itself included; minimum norm
    where a neighbourhood is degenerate) plus the residuals permuted within cells of
    10 to 19 nearby points of X (:func:`~chatterjee.backends.local_cells`); without
    X, a permutation of Z. The fit's weights and the cells depend on X only, so one
    resampler serves many Z.

    Parameters
    ----------
    x : ndarray of shape (n, p) or None
    n_samples : int
    workers : int, default=-1
        Threads for the neighbour search of the fit.
    search : SharedBaseSearch, optional
        A search whose base is ``x``: its lists of nearest points serve the fit and
        the ranks when they are built.
    """

    def __init__(self, x, n_samples, workers=-1, search=None):
        self.n, self.search = n_samples, search
        if x is None:
            self.near = None
            cells = np.zeros(n_samples, dtype=np.int64)
        else:
            p = x.shape[1]
            self.x, self.workers = x, workers
            self.near = self._near(min(self.n, max(_LOCAL_FIT, 2 * (p + 1))))
            design = np.concatenate([np.ones(self.near.shape + (1,)),
                                     x[self.near] - x[:, None, :]], axis=2)
            self.weights = np.linalg.pinv(design)[:, 0, :]   # the intercept's row
            cells = local_cells(x, _CELL_SIZE)
        self.cells = cells
        self.order = np.argsort(cells, kind="stable")
        self._ranked = None

    def _listed(self, k):
        """Each point and its k - 1 nearest from the search's lists, or None."""
        return None if self.search is None else self.search.nearest_in_base(k)

    def _near(self, k):
        near = self._listed(k)
        return nearest_including_self(self.x, k, self.workers) if near is None else near

    def fitted(self, z):
        """The local linear fit of each column of ``z`` (n, q) at every point."""
        if self.near is None:
            return np.zeros_like(z)
        return np.einsum("ik,ikq->iq", self.weights, z[self.near])

    def conditional_ranks(self, z, rng):
        """Each column of ``z`` (n, q) as its randomized rank given X, in [0, 1].

        The residual of the local linear fit of a point is ranked among those of its
        ``_RANKED`` nearest neighbours in X (self excluded), ties split by a uniform
        draw: ``(#{below} + V (#{tied} + 1)) / (_RANKED + 1)``. When the law of the
        residual is locally constant, the rank is uniform and independent of X
        whatever that law (skewed, bimodal, discrete), so a permutation of the ranks
        is a draw of them given X. Takes ``n * q`` uniforms from ``rng``.
        """
        if self.near is None:
            raise ValueError("conditional ranks need conditioning variables")
        if self._ranked is None:
            # Other points only: with repeated rows the k-d tree may list a duplicate
            # before the point itself.
            m = min(self.n - 1, _RANKED)
            near = self._listed(m + 1)
            self._ranked = (neighbors_in_order(self.x, m, workers=self.workers)[0]
                            if near is None else near[:, 1:])
        residuals = z - self.fitted(z)
        around = residuals[self._ranked]                        # (n, m, q)
        below = (around < residuals[:, None, :]).sum(axis=1)
        tied = (around == residuals[:, None, :]).sum(axis=1)
        return (below + rng.random(z.shape) * (tied + 1)) / (self._ranked.shape[1] + 1)

    def draws(self, z, rng):
        """Endless draws of ``z`` (n, q) given X, each taking ``n`` uniforms from
        ``rng``."""
        fitted = self.fitted(z)
        residuals = z - fitted
        order, cells = self.order, self.cells
        while True:
            shuffled = order[np.argsort(cells[order] + rng.random(self.n), kind="stable")]
            permutation = np.empty_like(order)
            permutation[order] = shuffled
            yield fitted + residuals[permutation]


def _conditional_permutation_test(response, z, x, given, method, rng, *, workers,
                                  n_neighbors):
    """p-value of H0: Y independent of Z given X, and the null distribution.

    Z enters as its conditional ranks given X
    (:meth:`ConditionalResampler.conditional_ranks`); the statistic is T_n(Y, ranks |
    X), compared with its values for permutations of the ranks (Y, X and the graph
    of X stay). The p-value counts the observed value as one of the draws.
    """
    n_resamples = _CONDITIONAL_RESAMPLES
    if not isinstance(method, str):
        n_resamples = int(method.n_resamples)
        drawn = getattr(method, "rng", None)
        if drawn is None:
            drawn = getattr(method, "random_state", None)
        rng = rng if drawn is None else check_random_state(drawn)
    ranks = ConditionalResampler(x, z.shape[0], workers).conditional_ranks(z, rng)
    agree_given = agreement(response, given)           # X's graph does not change
    denominator = response.self_total() - agree_given

    def statistic_of(values):
        joint, = nearest_neighbor_graphs([np.concatenate((x, values), axis=1)], rng,
                                         workers=workers, n_neighbors=n_neighbors)
        return ratio_or_nan(agreement(response, joint) - agree_given, denominator, True)

    statistic = statistic_of(ranks)
    null = np.array([statistic_of(ranks[rng.permutation(ranks.shape[0])])
                     for _ in range(n_resamples)])
    tolerance = 1e-12 * max(1.0, abs(statistic))
    pvalue = (1 + np.count_nonzero(null >= statistic - tolerance)) / (n_resamples + 1)
    return float(pvalue), null
