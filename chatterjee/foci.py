"""FOCI and L-FOCI: forward selection of features by conditional dependence."""

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from array_api_compat import array_namespace, device

from ._response import encode_response, response_of
from ._results import FociPathPlot
from ._validation import (
    check_backend,
    check_n_jobs,
    check_noise_scale,
    check_random_state,
    check_samples,
    to_numpy,
    warn_constant,
)
from .backends import neighbors_from_draws, safe_scale, shared_base_search
from .codec import (
    agreement,
    check_n_neighbors,
    check_ties,
    dependence_terms,
    ratio_or_nan,
)
from .lcodec import noise_scales

__all__ = ["FociResult", "foci", "lfoci"]

STANDARDIZE_OPTIONS = ("scale", "bounded", None)

logger = logging.getLogger("chatterjee")

#: With a progress bar, the candidates of a step are scored in about this many rounds
#: per job, so that the bar moves during a long step.
PROGRESS_ROUNDS = 20


def _tqdm():
    """The ``tqdm`` progress bar class, or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Progress report of a long loop, following the ``verbose`` convention.

    ``verbose=0``: silent. ``verbose=1``: a tqdm bar on stderr when tqdm is
    installed, else one line per step. ``verbose>=2``: one line per step. A line
    is an INFO record of the ``"chatterjee"`` logger when that logger has a handler
    and is enabled for INFO, else it is written to stderr. Reporting never touches
    the random state, so it cannot change a result.

    Parameters
    ----------
    verbose : int
    total : int
        Units of the bar (see :meth:`reset`).
    desc : str
        The bar's label.
    unit : str
        What the bar counts.
    """

    def __init__(self, verbose, total=None, desc=None, unit="it"):
        verbose = int(verbose or 0)
        tqdm = _tqdm() if verbose == 1 else None
        self.lines = verbose >= 1 and tqdm is None
        self.bar = None
        if tqdm is not None:
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                            dynamic_ncols=True, delay=0 if total else 1e9)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def active(self):
        """Whether anything is reported."""
        return self.bar is not None or self.lines

    def reset(self, total, desc=None):
        """Start a new round of ``total`` units on the bar (lines: nothing)."""
        if self.bar is not None:
            if desc is not None:
                self.bar.set_description_str(desc, refresh=False)
            self.bar.delay = 0
            self.bar.reset(total=total)

    def update(self, n=1):
        """Advance the bar by ``n`` units (lines: nothing)."""
        if self.bar is not None:
            self.bar.update(n)

    def step(self, line, postfix=None):
        """Report a finished step: ``line`` as a line, ``postfix`` on the bar."""
        if self.bar is not None:
            if postfix is not None:
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.refresh()
        elif self.lines:
            if logger.hasHandlers() and logger.isEnabledFor(logging.INFO):
                logger.info(line)
            else:
                print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass(frozen=True)
class FociResult(FociPathPlot):
    """Result of :func:`foci` and :func:`lfoci`.

    Attributes
    ----------
    selected : ndarray
        The picked candidates in pick order: 0-based column indices, or group labels
        when ``groups`` was given.
    scores : ndarray of float
        T_n(Y, X_S) after each pick, S being the candidates picked so far (R FOCI's
        ``stepT``). With ``stop=False`` it can decrease.
    gains : ndarray of float
        T_n(Y, X_j | X_S) of each pick given the candidates picked before it (the
        first is the unconditional T_n(Y, X_j)).
    selected_columns : ndarray of int
        The columns of the picked candidates, in pick order (equal to ``selected``
        without groups).
    feature_names : ndarray of str or None
        Names of ``selected_columns``, when the input had column names.
    n_samples : int
        Rows used.

    Methods
    -------
    plot(ax=None)
        Draw the score path (``scores`` against the picks); needs matplotlib.
    """

    selected: np.ndarray
    scores: np.ndarray
    gains: np.ndarray
    selected_columns: np.ndarray
    feature_names: np.ndarray | None = field(default=None)
    n_samples: int = 0


def standardize_columns(X, standardize):
    """Scale columns as R FOCI does: ``'scale'``, ``'bounded'`` or None (raw).

    Each column is first multiplied by the power of two that brings its largest
    magnitude into [0.5, 1): exact, so the result is R FOCI's bit for bit, and the
    mean, the standard deviation and the range can neither overflow (columns near
    1e160) nor underflow (near 1e-300).
    """
    if standardize is None:
        return X
    xp = array_namespace(X)
    shift = -np.frexp(to_numpy(xp.max(xp.abs(X), axis=0)))[1]
    half = shift // 2  # two factors: 2**shift alone may not be a float
    X = (X * xp.asarray(np.ldexp(1.0, half), device=device(X))
         * xp.asarray(np.ldexp(1.0, shift - half), device=device(X)))
    if standardize == "scale":
        return (X - xp.mean(X, axis=0)) / xp.std(X, axis=0, correction=1)
    if standardize == "bounded":
        low = xp.min(X, axis=0)
        return (X - low) / (xp.max(X, axis=0) - low)


def constant_columns(X):
    """Boolean NumPy mask of the columns of ``X`` (any array library) that do not vary."""
    xp = array_namespace(X)
    return to_numpy(xp.max(X, axis=0) == xp.min(X, axis=0))


def prepare_features(X, standardize, noise_scale, rng):
    """The features FOCI searches: standardized, optionally jittered, safely scaled.

    Constant columns are left as they are. With ``noise_scale`` (L-FOCI), Gaussian
    noise below each column's smallest decisive difference breaks ties (see
    :func:`chatterjee.lcodec`); it is drawn on the host and copied to ``X``'s device.
    Returns a new float64 array in ``X``'s library.
    """
    xp = array_namespace(X)
    usable = xp.asarray(np.flatnonzero(~constant_columns(X)), device=device(X))
    X = xp.asarray(X, dtype=xp.float64, copy=True)
    columns = standardize_columns(xp.take(X, usable, axis=1), standardize)
    if noise_scale is not None:
        noise = rng.normal(size=(X.shape[0], usable.shape[0]))
        columns = columns + xp.asarray(noise * noise_scales(columns, noise_scale),
                                       device=device(X))
    X[:, usable] = columns
    return safe_scale(X)


def _check_groups(groups, p):
    """Candidate labels (sorted) and, for each, its columns; each column alone if None."""
    if groups is None:
        return np.arange(p), [np.array([j]) for j in range(p)]
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != p:
        raise ValueError(
            f"`groups` must give one label per column of `X` ({p}), got shape "
            f"{groups.shape}."
        )
    labels, inverse = np.unique(groups, return_inverse=True)
    return labels, [np.flatnonzero(inverse == g) for g in range(labels.shape[0])]


SELECTION_NAN_POLICIES = ("raise", "omit")


def check_selection_nan_policy(nan_policy):
    """Validate the ``nan_policy`` of a selection: 'raise' or 'omit'."""
    if nan_policy not in SELECTION_NAN_POLICIES:
        raise ValueError(
            f"`nan_policy` must be 'raise' or 'omit', got {nan_policy!r} (a selection "
            "cannot propagate NaN)."
        )
    return nan_policy


def check_foci_args(X, y, groups, max_features, stop, standardize, backend="numpy",
                    nan_policy="raise", y_type="auto", stacklevel=5):
    """Validate FOCI's arguments; X and y come back in the backend's library (a
    categorical y as class codes, see :func:`_response.encode_response`)."""
    if standardize not in STANDARDIZE_OPTIONS:
        raise ValueError(
            f"`standardize` must be 'scale', 'bounded' or None, got {standardize!r}."
        )
    if stop not in (True, False):
        raise ValueError(f"`stop` must be True or False, got {stop!r}.")
    names = getattr(X, "columns", None)
    names = None if names is None else np.asarray([str(c) for c in names], dtype=object)
    y, categorical = encode_response(y, y_type, stacklevel=stacklevel)
    data, _ = check_samples({"X": (X, True), "y": (y, False)},
                            nan_policy=check_selection_nan_policy(nan_policy),
                            backend=check_backend(backend, X, y))
    X, y = data["X"], data["y"]
    labels, members = _check_groups(groups, X.shape[1])
    if max_features is None:
        max_features = labels.shape[0]
    elif (
        not isinstance(max_features, (int, np.integer))
        or isinstance(max_features, bool)
        or not 1 <= max_features <= labels.shape[0]
    ):
        what = "groups" if groups is not None else "features"
        raise ValueError(
            f"`max_features` must be an integer between 1 and the number of {what} "
            f"({labels.shape[0]}), got {max_features!r}."
        )
    return X, y, labels, members, int(max_features), names, categorical


def _neighbor_agreements(response, X, candidates, seeds, search, n_neighbors):
    """``sum_i s(i, N(i))`` (for k > 1: its mean over the k nearest) per candidate."""
    agreements = np.empty(len(candidates))
    for position, (columns, seed) in enumerate(zip(candidates, seeds)):
        agreements[position] = agreement(
            response, _candidate_graph(X, columns, seed, search, n_neighbors)
        )
    return agreements


def score_blocks(response, X, blocks, seeds, search, n_neighbors, parallel, n_workers,
                 progress, desc):
    """The agreements of the candidate blocks in (X_S, block), in parallel chunks.

    Parameters
    ----------
    response, X, search, n_neighbors
        As for :func:`_candidate_graph` (``search`` holds X_S).
    blocks : list of ndarray of int
        The columns of each candidate.
    seeds : ndarray of int
        One seed per candidate: its tie-breaking draws.
    parallel : sklearn.utils.parallel.Parallel or None
        Thread jobs (None: this thread).
    n_workers : int
        The jobs it runs at once: the candidates are cut into that many chunks.
    progress : Progress
        Its bar moves in rounds during the step; the result does not depend on the
        chunks.
    desc : str
        The bar's label.

    Returns
    -------
    ndarray of shape (len(blocks),)
    """
    from sklearn.utils.parallel import delayed

    progress.reset(len(blocks), desc)
    n_chunks = max(1, min(n_workers, len(blocks)))
    rounds = PROGRESS_ROUNDS if progress.bar is not None else 1
    chunks = [chunk for chunk in np.array_split(
        np.arange(len(blocks)), min(len(blocks), n_chunks * rounds)) if chunk.shape[0]]
    parts = []
    for first in range(0, len(chunks), n_chunks):
        calls = [(response, X, [blocks[i] for i in chunk], seeds[chunk], search,
                  n_neighbors) for chunk in chunks[first:first + n_chunks]]
        # one job runs in this thread: through a joblib backend (dask) each chunk
        # would become a task of its own
        parts.extend([_neighbor_agreements(*call) for call in calls] if parallel is None
                     else parallel(delayed(_neighbor_agreements)(*call)
                                   for call in calls))
        progress.update(sum(chunk.shape[0] for chunk in chunks[first:first + n_chunks]))
    return np.concatenate(parts)


def _candidate_graph(X, columns, seed, search, n_neighbors):
    """Neighbour graph of X_S joined with the candidate's columns (X_S empty: search None).

    Each candidate draws its tie-breaking uniforms from its own seed, on the host,
    whatever the backend: n of them, or an (n, k) array for the k nearest.
    """
    xp = array_namespace(X)
    block = xp.take(X, xp.asarray(columns, device=device(X)), axis=1)
    n = block.shape[0]
    u = np.random.default_rng(seed).random(n if n_neighbors == 1 else (n, n_neighbors))
    if search is not None:
        return search.neighbors(block, u)
    return neighbors_from_draws(block, u)


#: ``lookahead=2`` scores pairs when the best single candidate's gain is below
#: ``WEAK_GAIN / sqrt(n)``: within the reach of the best of many independent
#: candidates (under independence T_n's standard deviation is about ``1 / sqrt(n)``,
#: and ``1.4 / sqrt(n)`` given one variable; measured at n = 500 and 2000).
WEAK_GAIN = 4.0
#: Pairs scored by a look-ahead step: at most this many times the candidates left
#: (all pairs when they fit, else all pairs among the best single candidates).
PAIR_BUDGET = 25


def _best_pair(agreements, seeds, remaining, members, reference, gain, scale, rng,
               score, weak):
    """The look-ahead of a step: the best pair when its joint gain is not weak (above
    ``weak``) and beats twice the best single gain, as picks
    ``[(position, columns, seed, agreement)]`` (the better single first, the second's
    columns the pair's), or None.

    Pairs are formed among the ``m`` best single candidates, ``m (m - 1) / 2`` at
    most ``PAIR_BUDGET`` times the candidates left (all of them when that allows).
    """
    count = len(remaining)
    budget = PAIR_BUDGET * count
    pool_size = min(count, int((1 + np.sqrt(1 + 8 * budget)) / 2))
    pool = np.sort(np.argsort(-agreements, kind="stable")[:pool_size])
    pairs = [(a, b) for i, a in enumerate(pool) for b in pool[i + 1:]]
    pair_seeds = rng.integers(np.iinfo(np.int64).max, size=len(pairs))
    pair_agreements = score([np.concatenate([members[remaining[a]], members[remaining[b]]])
                             for a, b in pairs], pair_seeds)
    best = int(np.argmax(pair_agreements))
    pair_gain = (pair_agreements[best] - reference) / scale
    if not pair_gain > max(2 * gain, weak):
        return None
    first, second = sorted(pairs[best], key=lambda c: -agreements[c])
    return [(first, members[remaining[first]], seeds[first], agreements[first]),
            (second, np.concatenate([members[remaining[first]], members[remaining[second]]]),
             pair_seeds[best], pair_agreements[best])]


def _select(X, y, *, y_type, groups, max_features, stop, standardize, n_neighbors,
            nan_policy, random_state, n_jobs, verbose, backend, ties="random",
            lookahead=1, noise_scale=None):
    from joblib import effective_n_jobs
    from sklearn.utils.parallel import Parallel

    n_jobs = check_n_jobs(n_jobs)
    X, y, labels, members, max_features, names, categorical = check_foci_args(
        X, y, groups, max_features, stop, standardize, backend, nan_policy, y_type
    )
    on_host = isinstance(X, np.ndarray)
    xp = array_namespace(X)
    n = X.shape[0]
    n_neighbors = check_n_neighbors(n_neighbors, n, X)
    average = check_ties(ties) == "average"
    if isinstance(lookahead, bool) or lookahead not in (1, 2):
        raise ValueError(f"`lookahead` must be 1 or 2, got {lookahead!r}.")
    rng = check_random_state(random_state)
    response = response_of(y, categorical)

    def result(picked, scores, gains):
        columns = np.concatenate([members[c] for c in picked] + [np.empty(0, int)])
        return FociResult(labels[np.asarray(picked, dtype=np.int64)], np.asarray(scores),
                          np.asarray(gains), columns.astype(np.int64),
                          None if names is None else names[columns], n)

    if response.is_constant():
        warn_constant("`y` is constant", "no feature can add dependence, none is selected")
        return result([], [], [])

    constant = constant_columns(X)
    if constant.any():
        warnings.warn(
            f"Columns {np.flatnonzero(constant).tolist()} of `X` are constant and "
            "cannot be selected.",
            UserWarning,
            stacklevel=3,
        )
    members = [columns[~constant[columns]] for columns in members]
    X = prepare_features(X, standardize, noise_scale, rng)

    remaining = [c for c in range(labels.shape[0]) if members[c].shape[0]]
    # Device searches run one at a time: threads would multiply the device memory.
    n_workers = effective_n_jobs(n_jobs) if on_host else 1
    parallel = Parallel(n_jobs=n_jobs, prefer="threads") if n_workers > 1 else None
    picked, scores, gains = [], [], []
    agreement_prev, graph_prev = None, None
    # Q(S) = T_n(Y, X_S) = (agreement - null) / scale: gains in T's units
    null, scale = response.unconditional_terms(0.0)
    null = -null
    start = time.perf_counter()
    name = "L-FOCI" if noise_scale is not None else "FOCI"
    what = "group" if groups is not None else "feature"

    with Progress(verbose, desc=name, unit="candidate") as progress:
        while remaining and len(picked) < max_features:
            seeds = rng.integers(np.iinfo(np.int64).max, size=len(remaining))
            base = np.concatenate([members[c] for c in picked] + [np.empty(0, int)])
            base = xp.take(X, xp.asarray(base, device=device(X)), axis=1)
            # the first step searches the candidates alone (averaged: from no base)
            search = (shared_base_search(base, n_neighbors=n_neighbors, ties=ties)
                      if picked or average else None)
            step = f"{name} step {len(picked) + 1}"
            agreements = score_blocks(response, X, [members[c] for c in remaining], seeds,
                                      search, n_neighbors, parallel, n_workers, progress,
                                      step)
            best = int(np.argmax(agreements))  # first maximum: the lowest label
            reference = null if agreement_prev is None else agreement_prev
            # (position in remaining, its graph's columns, seed, agreement) per pick
            picks = [(best, members[remaining[best]], seeds[best], agreements[best])]
            gain = (agreements[best] - reference) / scale
            weak = WEAK_GAIN / np.sqrt(n)
            if (lookahead == 2 and len(remaining) >= 2 and max_features - len(picked) >= 2
                    and gain < weak):
                picks = _best_pair(
                    agreements, seeds, remaining, members, reference, gain, scale, rng,
                    lambda blocks, draws, search=search, step=step: score_blocks(
                        response, X, blocks, draws, search, n_neighbors, parallel,
                        n_workers, progress, f"{step}, pairs"),
                    weak) or picks
            if stop and picks[-1][3] <= reference:   # Q(S + picks) <= Q(S)
                progress.step(
                    f"[{name.lower()}] step {len(picked) + 1}: no {what} adds dependence, "
                    f"stop ({time.perf_counter() - start:.2f} s)",
                    f"stopped after {len(picked)} picks",
                )
                break
            chosen = [remaining[position] for position, *_ in picks]
            for candidate, (_, columns, seed, agreement_now) in zip(chosen, picks):
                graph = _candidate_graph(X, columns, seed, search, n_neighbors)
                numerator, denominator = dependence_terms(response, graph)
                scores.append(numerator / denominator)
                gains.append(
                    scores[-1]
                    if graph_prev is None
                    else ratio_or_nan(*dependence_terms(response, graph, graph_prev), True)
                )
                picked.append(candidate)
                remaining.remove(candidate)
                agreement_prev, graph_prev = agreement_now, graph
                if progress.active:
                    label = labels[candidate]
                    shown = (f"{label} ({names[label]})"
                             if names is not None and groups is None else f"{label}")
                    progress.step(
                        f"[{name.lower()}] step {len(picked)}: {what} {shown}, "
                        f"T = {scores[-1]:.4f}, gain = {gains[-1]:.4f}, "
                        f"{time.perf_counter() - start:.2f} s",
                        f"picked {shown}, T = {scores[-1]:.3f}",
                    )
    return result(picked, scores, gains)


_SHARED_DOC = """
    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        Candidate features (NumPy array, pandas DataFrame, nested lists).
    y : array_like of shape (n_samples,)
        The response: numbers, or class labels (strings, booleans, pandas
        Categorical, any hashable values).
    y_type : {'auto', 'continuous', 'categorical'}, default='auto'
        How the response is compared (see :func:`codec`): by its order, or by class
        membership only, so that the selection does not depend on how classes are
        named or numbered. 'auto': categorical for labels that are not numbers and
        for two-valued numbers, continuous for other numbers, with a warning when
        those look like integer class codes.
    groups : array_like of shape (n_features,), default=None
        A label per column: columns with the same label form one candidate (a
        multi-dimensional variable such as an embedding or a 3-D position), picked
        or left as a whole. ``selected`` then holds labels, in sorted order of
        precedence on equal scores. None: every column is its own candidate.
    max_features : int, default=None
        Most candidates to select (None: all of them). It caps the selection with
        ``stop=True`` too, as R FOCI does in practice.
    stop : bool, default=True
        Stop at the first step whose best candidate adds no dependence
        (T_n(Y, X_j | X_S) <= 0). False ranks features until ``max_features``.
    lookahead : {1, 2}, default=1
        1: FOCI's greedy step. 2: at a step whose best candidate adds little
        (a gain in T_n below ``4 / sqrt(n)``, where the best of many independent
        candidates can reach), also score pairs of candidates (all pairs up to 51
        candidates, else the pairs among the best single candidates, 25 per
        candidate), and add the best pair when its joint gain is above
        ``4 / sqrt(n)`` and more than twice the best single gain: features that
        matter only together (y = X1 X2, XOR) then enter together. Such a step
        costs up to 25 times a plain one.
    standardize : {'scale', 'bounded'} or None, default='scale'
        Column scaling before the neighbour searches, as in R FOCI: 'scale' centres
        and divides by the standard deviation (n - 1), 'bounded' maps to [0, 1],
        None keeps the raw values. Constant columns are never selected (a warning
        names them).{extra}
    n_neighbors : int, default=1
        k for the k-nearest-neighbour coefficient (see :func:`codec`): each
        candidate is scored by the mean of min(R_i, R_j) over the k nearest
        neighbours j of every point. 1 is FOCI. k > 1 needs NumPy data and is
        slower than k = 1: each point keeps k neighbours, and its lists of the
        selected block's nearest points are (k + 1) / 2 times longer.
    nan_policy : {'raise', 'omit'}, default='raise'
        Rows with NaN in ``X`` or ``y``: raise an error, or drop them.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds every random choice. The same seed gives the same selection
        whatever ``n_jobs`` is.
    n_jobs : int, default=None
        Candidates of a step are scored in parallel through joblib (threads by
        default; ``joblib.parallel_config`` can send them to dask or Ray). None
        means 1 unless in a joblib context; -1 means all cores.
    verbose : int, default=0
        Progress report on stderr, off by default. 1: a progress bar of the
        candidates scored at each step, with the last pick, when tqdm is installed
        (``pip install tqdm``, or the ``progress`` extra), else one line per step. 2 or more:
        one line per step. A line goes to the ``"chatterjee"`` logger (level INFO)
        when logging is configured for it, else straight to stderr. Reporting
        changes no result, whatever ``n_jobs`` is.
    backend : {'auto', 'numpy', 'torch', 'cupy'}, default='auto'
        The array library that does the work. 'auto' follows ``X`` and ``y``:
        PyTorch tensors and CuPy arrays are searched on their device (CPU or GPU),
        in float64 whatever their dtype, and the candidates of a step one after the
        other (``n_jobs`` applies to NumPy only); anything else with NumPy. The same
        seed draws the same tie-breaking uniforms on every backend.

    Returns
    -------
    FociResult
        ``selected`` (pick order), ``scores`` (T_n(Y, X_S) after each pick),
        ``gains`` (T_n(Y, X_j | X_S) of each pick), ``selected_columns``,
        ``feature_names``.
"""


def foci(X, y, *, y_type="auto", groups=None, max_features=None, stop=True,
         standardize="scale", ties="random", lookahead=1, n_neighbors=1,
         nan_policy="raise", random_state=None, n_jobs=None, verbose=0, backend="auto"):
    """Feature Ordering by Conditional Independence (Azadkia and Chatterjee).

    Greedy forward selection: at each step add the feature j that maximizes
    T_n(Y, X_{S + j}), and stop when the best one does not raise it (equivalently,
    when T_n(Y, X_j | X_S) <= 0). Equal scores go to the lowest column index.
    Nearest-neighbour ties are broken uniformly at random (see :func:`codec`).
    {params}
    Notes
    -----
    On tie-free data the selection and ``scores`` equal R FOCI 0.1.3's
    ``selectedVar`` and ``stepT``. A constant response selects nothing (with a
    :class:`ConstantInputWarning`); R returns NULL.

    The selected block's nearest-neighbour list is computed once per step and
    shared by all candidates, so a candidate costs one pass over that list
    instead of a new k-d tree (see :class:`backends.cpu.SharedBaseSearch`).

    References
    ----------
    M. Azadkia and S. Chatterjee, "A simple measure of conditional dependence",
    Annals of Statistics 49 (2021) 3070-3102.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import foci
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 6))
    >>> y = X[:, 1] * X[:, 4] + np.sin(X[:, 1])
    >>> foci(X, y, random_state=0).selected
    array([1, 4])
    """
    return _select(X, y, y_type=y_type, groups=groups, max_features=max_features, stop=stop,
                   standardize=standardize, n_neighbors=n_neighbors,
                   nan_policy=nan_policy, random_state=random_state, n_jobs=n_jobs,
                   verbose=verbose, backend=backend, ties=ties, lookahead=lookahead)


def lfoci(X, y, *, y_type="auto", groups=None, max_features=None, stop=True,
          standardize="scale", noise_scale=1e-4, lookahead=1, n_neighbors=1,
          nan_policy="raise", random_state=None, n_jobs=None, verbose=0, backend="auto"):
    """L-FOCI: FOCI on tie-broken features, for data with many ties (Mehta et al.).

    The features are standardized, then Gaussian noise far below each column's
    smallest decisive difference is added once (as in :func:`lcodec`), and the
    FOCI loop runs on the result. Every candidate of a step is compared on the same
    noisy data; the response keeps its ties (its ranks need no randomness).
    {params}
    See Also
    --------
    foci : the exact selection with uniform random tie-breaking.
    lcodec : the randomized coefficient.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import lfoci
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 3, size=(2000, 8))     # discrete features: many ties
    >>> y = X[:, 2] + 2 * X[:, 5] + rng.integers(0, 2, size=2000)
    >>> lfoci(X, y, random_state=0).selected
    array([5, 2])
    """
    noise_scale = check_noise_scale(noise_scale)
    return _select(X, y, y_type=y_type, groups=groups, max_features=max_features, stop=stop,
                   standardize=standardize, n_neighbors=n_neighbors,
                   nan_policy=nan_policy, random_state=random_state, n_jobs=n_jobs,
                   verbose=verbose, backend=backend, lookahead=lookahead,
                   noise_scale=noise_scale)


foci.__doc__ = foci.__doc__.replace("{params}", _SHARED_DOC.replace("{extra}", """
    ties : {'random', 'average'}, default='random'
        Nearest neighbours at equal distance: drawn uniformly ('random', FOCI's
        rule) or all averaged ('average': each candidate's score is the
        expectation of its 'random' score over the draws, so tied features give
        one selection for every seed; NumPy data only, and without the shared
        search of a step, so slower). See :func:`codec`."""))
lfoci.__doc__ = lfoci.__doc__.replace("{params}", _SHARED_DOC.replace("{extra}", """
    noise_scale : float, default=1e-4
        Noise standard deviation of each column, as a fraction of its smallest
        decisive difference (see :func:`lcodec`). In (0, 0.1]."""))
