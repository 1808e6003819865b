"""Markov blankets by forward selection (FOCI) and backward pruning, and blanket graphs."""

from dataclasses import dataclass, field

import numpy as np

from ._validation import check_n_jobs, check_noise_scale, check_random_state, check_samples
from .codec import codec
from .foci import (
    FociResult,
    Progress,
    check_foci_args,
    check_selection_nan_policy,
    foci,
    prepare_features,
    standardize_columns,
)
from .lcodec import lcodec

__all__ = ["BlanketResult", "markov_blanket", "markov_blankets", "plot_blanket_graph"]


@dataclass(frozen=True)
class BlanketResult:
    """Result of :func:`markov_blanket`.

    Attributes
    ----------
    blanket : ndarray
        The estimated Markov blanket, in the order of ``X``'s columns: column names
        for a pandas DataFrame, else column indices; group labels when ``groups``
        was given.
    forward : FociResult
        The forward selection it started from.
    pruned : ndarray
        Members of the forward selection removed by the backward pass, in the
        order they were removed.
    pruning_scores : ndarray of float
        T_n(Y, X_m | X_rest) of each removed member at its removal (all <= 0).
    reduced : ndarray
        Labels of the groups that ``group_features`` replaced by their norm (empty
        when it is None).
    blanket_columns : ndarray of int
        The columns of ``X`` that the blanket's members span, sorted.
    """

    blanket: np.ndarray
    forward: FociResult
    pruned: np.ndarray
    pruning_scores: np.ndarray
    reduced: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    blanket_columns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


GROUP_FEATURES = (None, "norm", "auto")


def reduce_groups(features, y, labels, members, group_features, standardize, rng,
                  n_neighbors=1, y_type="continuous", ties="random"):
    """Replace multi-column groups by their Euclidean norm (see :func:`markov_blanket`).

    Parameters
    ----------
    features : ndarray of shape (n, p)
        The scaled features.
    y : ndarray of shape (n,)
    labels : ndarray
        Group labels, sorted; ``members[g]`` are the columns of ``labels[g]``.
    members : list of ndarray of int
    group_features : {'norm', 'auto'}
        'norm' reduces every group of two or more non-constant columns; 'auto' only
        those whose norm is at least as dependent with y as the whole block
        (T_n(Y, norm) >= T_n(Y, block), one :func:`codec` each).
    standardize : {'scale', 'bounded'} or None
        Applied to each norm, as to the other columns.
    rng : numpy.random.Generator
    n_neighbors : int, default=1
        k of the coefficients that 'auto' compares.
    y_type : {'continuous', 'categorical'}, default='continuous'
        How they compare the response (see :func:`codec`).
    ties : {'random', 'average'}, default='random'
        Their rule for equally near neighbours (see :func:`codec`).

    Returns
    -------
    features : ndarray of shape (n, p')
    groups : ndarray of shape (p',)
        The label of each new column.
    members : list of ndarray of int
        The columns of each label in the new features.
    reduced : ndarray
        The labels that were reduced.
    """
    columns, groups, new_members, reduced = [], [], [], []
    start = 0
    for label, cols in zip(labels.tolist(), members):
        block = features[:, cols]
        block = block[:, np.ptp(block, axis=0) > 0]
        if block.shape[1] >= 2:
            norm = np.linalg.norm(block, axis=1)[:, None]
            if np.ptp(norm) > 0:
                norm = standardize_columns(norm, standardize)
            if group_features == "norm" or (
                codec(y, norm, y_type=y_type, ties=ties, n_neighbors=n_neighbors,
                      random_state=rng).statistic
                >= codec(y, block, y_type=y_type, ties=ties, n_neighbors=n_neighbors,
                         random_state=rng).statistic
            ):
                reduced.append(label)
                block = norm
        if block.shape[1] == 0:  # all constant: keep one column, FOCI warns about it
            block = features[:, cols[:1]]
        columns.append(block)
        groups.extend([label] * block.shape[1])
        new_members.append(np.arange(start, start + block.shape[1]))
        start += block.shape[1]
    return (np.hstack(columns), np.asarray(groups), new_members,
            np.asarray(reduced, dtype=labels.dtype))


def markov_blanket(X, y, *, y_type="auto", groups=None, prune=True, randomized=False,
                   standardize="scale", group_features=None, ties="random", n_neighbors=1,
                   noise_scale=1e-4, nan_policy="raise", random_state=None, n_jobs=None,
                   verbose=0):
    """Estimate the Markov blanket of ``y`` among the columns (or groups) of ``X``.

    The Markov blanket is the smallest set S of variables such that y is
    independent of the others given X_S. Forward selection (:func:`foci`) finds a
    set whose addition stops raising T_n(Y, X_S); the backward pass then drops, one
    at a time, the member m with the lowest T_n(Y, X_m | X_{S - m}) while that value
    is <= 0 (a member that adds nothing once the others are known: typically one
    picked early that later picks made redundant).

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        Candidate variables.
    y : array_like of shape (n_samples,)
        The target variable: numbers or class labels.
    y_type : {'auto', 'continuous', 'categorical'}, default='auto'
        How the target is compared: by its order or by class membership (see
        :func:`codec`). A discrete variable coded by integers (the states of a
        Bayesian network) is categorical: pass 'categorical'.
    groups : array_like of shape (n_features,), default=None
        A label per column; columns with the same label form one variable (see
        :func:`foci`). The blanket is then a set of labels.
    prune : bool, default=True
        Run the backward pass.
    randomized : bool, default=False
        Use L-FOCI for the forward pass (ties broken by noise drawn once, see
        :func:`lfoci`) and :func:`lcodec` with fresh noise for the backward pass.
        Fresh noise matters: with the forward pass's noise, a member admitted by a
        lucky draw would look useful again to the backward pass.
    standardize : {'scale', 'bounded'} or None, default='scale'
        Column scaling, as in :func:`foci`.
    group_features : {None, 'norm', 'auto'}, default=None
        How a group of several columns enters the neighbour searches. None: as its
        block of (scaled) columns. 'norm': rotation-invariant features, each group
        replaced by the Euclidean norm of its scaled block (with the default
        ``standardize='scale'``, the distance from the block's mean in standard
        deviations; with None, from the origin), then scaled like a column. 'auto':
        a group is replaced by its norm only when T_n(Y, norm) >= T_n(Y, block),
        i.e. when the norm keeps at least the dependence on y that the block shows.
        Requires ``groups``.
        See Notes.
    n_neighbors : int, default=1
        k of the k-nearest-neighbour coefficient (see :func:`codec`) used by the
        forward pass, the backward pass and ``group_features='auto'``. 1 is FOCI's
        coefficient. k > 1 needs NumPy data, is not available with
        ``randomized=True`` (L-CODEC has no k-nearest-neighbour version), and is
        slower (a k-d tree per candidate). On the bullseye network,
        ``group_features='norm'`` with ``n_neighbors=5`` recovers the blanket more
        reliably than with 1 (see the benchmarks in the documentation).
    ties : {'random', 'average'}, default='random'
        Equally near neighbours in the forward and backward passes: drawn at
        random, or averaged so that tied data give one blanket for every seed (see
        :func:`foci`). Not available with ``randomized=True``, whose noise is the
        tie-breaking.
    noise_scale : float, default=1e-4
        Noise of the randomized variant (ignored otherwise).
    nan_policy : {'raise', 'omit'}, default='raise'
        Rows with NaN in ``X`` or ``y``: raise an error, or drop them.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds every random choice.
    n_jobs : int, default=None
        Parallel jobs over the candidates of each forward step (joblib).
    verbose : int, default=0
        Progress report on stderr, as in :func:`foci`: the forward pass's steps,
        then the pruning rounds (a tqdm bar each at 1 when tqdm is installed, else
        lines). Changes no result.

    Returns
    -------
    BlanketResult

    See Also
    --------
    markov_blankets : the blanket of every variable, as a graph.

    Notes
    -----
    Nearest neighbours in the joint space of several multi-column groups lose their
    resolution fast: with groups of 3 columns, the 1-nearest neighbour of 5000 points
    in 6 or 9 dimensions says little about any one direction. When only a group's
    magnitude carries information (a point whose distance from a centre is the
    variable, its direction being noise, as in :func:`~chatterjee.datasets.make_bullseye`),
    the other directions swamp the graph and the forward pass stops after one group.
    ``group_features='norm'`` states that assumption and removes those directions;
    it loses whatever the direction of a group carries, so it is a modelling choice,
    not a default. ``'auto'`` checks each group on its marginal dependence with y
    only: a direction that matters only jointly with other groups goes unnoticed.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import markov_blanket
    >>> rng = np.random.default_rng(0)
    >>> a, b, c = rng.normal(size=(3, 2000))
    >>> y = a + b ** 2 + 0.3 * rng.normal(size=2000)   # parents a, b
    >>> child = y + 0.3 * rng.normal(size=2000)        # a child of y
    >>> X = np.column_stack([a, b, c, child])
    >>> markov_blanket(X, y, random_state=0).blanket
    array([0, 1, 3])
    """
    if prune not in (True, False) or randomized not in (True, False):
        raise ValueError("`prune` and `randomized` must be True or False.")
    if randomized:
        noise_scale = check_noise_scale(noise_scale)
    if group_features not in GROUP_FEATURES:
        raise ValueError(
            f"`group_features` must be None, 'norm' or 'auto', got {group_features!r}."
        )
    if group_features is not None and groups is None:
        raise ValueError("`group_features` needs `groups`.")
    if randomized and ties != "random":
        raise ValueError("`ties='average'` is not available with `randomized=True` "
                         "(L-FOCI breaks ties with its noise); use randomized=False.")
    if randomized and n_neighbors != 1:
        raise ValueError(
            "`n_neighbors` > 1 is not available with `randomized=True` (L-CODEC has "
            "no k-nearest-neighbour version); use randomized=False."
        )
    X_checked, y, labels, members, _, names, categorical = check_foci_args(
        X, y, groups, None, True, standardize, nan_policy=nan_policy, y_type=y_type,
        stacklevel=4)
    y_type = "categorical" if categorical else "continuous"     # y holds the codes
    # Names are shown for a DataFrame's columns; groups are shown by their labels.
    shown = labels if names is None or groups is not None else names
    original = members
    rng = check_random_state(random_state)
    features = prepare_features(X_checked, standardize, None, rng)
    reduced = np.empty(0, dtype=labels.dtype)
    if group_features is not None:
        features, groups, members, reduced = reduce_groups(
            features, y, labels, members, group_features, standardize, rng, n_neighbors,
            y_type, ties)
    # L-FOCI's noise goes on the standardized features (standardize=None: no rescaling).
    searched = prepare_features(features, None, noise_scale, rng) if randomized \
        else features
    forward = foci(searched, y, y_type=y_type, groups=groups, standardize=None,
                   ties=ties, n_neighbors=n_neighbors, random_state=rng, n_jobs=n_jobs,
                   verbose=verbose)
    label_position = {label: position for position, label in enumerate(labels.tolist())}
    kept = [label_position[label] for label in forward.selected.tolist()]
    pruned, pruning_scores = [], []
    with Progress(verbose if prune and len(kept) > 1 else 0, total=len(kept) - 1,
                  desc="blanket pruning", unit="round") as progress:
        while prune and len(kept) > 1:
            scores = []
            for member in kept:
                rest = np.concatenate([members[other] for other in kept if other != member])
                block, given = features[:, members[member]], features[:, rest]
                scores.append(
                    lcodec(y, block, given, y_type=y_type, noise_scale=noise_scale,
                           random_state=rng).statistic
                    if randomized
                    else codec(y, block, given, y_type=y_type, ties=ties,
                               n_neighbors=n_neighbors, random_state=rng).statistic
                )
            weakest = int(np.nanargmin(scores))
            progress.update()
            if not scores[weakest] <= 0:
                progress.step(f"[blanket] pruning done: every member adds dependence "
                              f"(lowest T(y, it | rest) = {scores[weakest]:.4f})",
                              "done")
                break
            pruned.append(kept.pop(weakest))
            pruning_scores.append(scores[weakest])
            progress.step(f"[blanket] pruned {labels[pruned[-1]]}: "
                          f"T(y, it | rest) = {scores[weakest]:.4f}",
                          f"pruned {labels[pruned[-1]]}")
    kept = sorted(kept)
    columns = np.sort(np.concatenate([original[k] for k in kept] + [np.empty(0, int)]))
    return BlanketResult(
        shown[np.asarray(kept, dtype=np.int64)],
        forward,
        shown[np.asarray(pruned, dtype=np.int64)],
        np.asarray(pruning_scores),
        reduced,
        columns.astype(np.int64),
    )


def markov_blankets(data, *, groups=None, symmetric=None, n_jobs=None, verbose=0,
                    **options):
    """The Markov blanket of every variable given all the others: a dependency graph.

    Parameters
    ----------
    data : array_like of shape (n_samples, n_features)
        One column per variable (NumPy array or pandas DataFrame).
    groups : array_like of shape (n_features,), default=None
        A label per column; columns with the same label form one variable.
    symmetric : {None, 'and', 'or'}, default=None
        The blanket relation is symmetric in theory but its estimates need not be.
        None keeps the directed estimate (row i lists the blanket of variable i);
        'and' keeps an edge found in both directions, 'or' in either.
    n_jobs : int, default=None
        Parallel jobs over the target variables (joblib): each variable's blanket is
        one task, coarse enough to ship to other processes or machines
        (``joblib.parallel_config(backend="dask")``). None means 1 unless in a
        :obj:`joblib.parallel_config` context; -1 means all processors. The graph
        does not depend on it, nor on the backend: each variable's blanket draws
        from its own seed, spawned from ``random_state``.
    **options
        Passed to :func:`markov_blanket` (``y_type``, ``ties``, ``prune``, ``randomized``,
        ``standardize``, ``group_features``, ``n_neighbors``, ``noise_scale``,
        ``random_state``). ``nan_policy='omit'`` drops the rows of ``data`` that hold
        NaN once, for every variable.
    verbose : int, default=0
        Progress report on stderr, off by default: one step per variable (a tqdm
        bar at 1 when tqdm is installed, else one line per blanket; see
        :func:`foci`). The blankets of the individual variables report nothing.
        Changes no result.

    Returns
    -------
    adjacency : ndarray of bool of shape (n_variables, n_variables), or DataFrame
        ``adjacency[i, j]`` is True when variable j is in the blanket of variable i.
        A pandas DataFrame labelled by variable when ``data`` is a DataFrame or
        ``groups`` are given and pandas is installed.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import markov_blankets
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=3000)
    >>> b = a + 0.5 * rng.normal(size=3000)     # chain a -> b -> c
    >>> c = b + 0.5 * rng.normal(size=3000)
    >>> markov_blankets(np.column_stack([a, b, c]), symmetric="and", random_state=0)
    array([[False,  True, False],
           [ True, False,  True],
           [False,  True, False]])
    """
    if symmetric not in (None, "and", "or"):
        raise ValueError(f"`symmetric` must be None, 'and' or 'or', got {symmetric!r}.")
    column_names = getattr(data, "columns", None)
    nan_policy = check_selection_nan_policy(options.pop("nan_policy", "raise"))
    values = check_samples({"data": (data, True)}, nan_policy=nan_policy)[0]["data"]
    if values.shape[1] < 2:
        raise ValueError(
            f"`data` must have at least 2 columns (a target and a candidate), got "
            f"{values.shape[1]}."
        )
    if groups is None:
        groups = np.arange(values.shape[1])
        names = None if column_names is None else [str(c) for c in column_names]
    else:
        groups = np.asarray(groups)
        if groups.shape != (values.shape[1],):
            raise ValueError("`groups` must give one label per column of `data`.")
        names = [str(label) for label in np.unique(groups)]
    labels = np.unique(groups)
    for label in labels:
        if (groups == label).sum() != 1:
            raise ValueError(
                "Each target variable must be one column: the coefficient's response "
                f"is scalar, and variable {label!r} has {(groups == label).sum()} columns."
            )
    n_jobs = check_n_jobs(n_jobs)
    seeds = check_random_state(options.pop("random_state", None)).integers(
        np.iinfo(np.int64).max, size=labels.size)
    from sklearn.utils.parallel import Parallel, delayed

    adjacency = np.zeros((labels.size, labels.size), dtype=bool)
    blankets = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_blanket_of)(values, groups, label, seed, options)
        for label, seed in zip(labels, seeds))
    with Progress(verbose, total=labels.size, desc="Markov blankets",
                  unit="variable") as progress:
        for i, blanket in enumerate(blankets):
            adjacency[i, np.searchsorted(labels, blanket)] = True
            progress.update()
            if progress.active:
                name = labels[i] if names is None else names[i]
                members = [labels[j] if names is None else names[j]
                           for j in np.flatnonzero(adjacency[i])]
                progress.step(f"[blankets] {i + 1}/{labels.size}: blanket of {name}: "
                              f"{', '.join(map(str, members)) or '(empty)'}",
                              f"{name}: {len(members)} members")
    if symmetric == "and":
        adjacency &= adjacency.T
    elif symmetric == "or":
        adjacency |= adjacency.T
    if names is not None:
        try:
            import pandas as pd
        except ImportError:
            return adjacency
        return pd.DataFrame(adjacency, index=names, columns=names)
    return adjacency


def _blanket_of(values, groups, label, seed, options):
    """The blanket (labels) of the one-column variable ``label`` among the others: one
    task of :func:`markov_blankets`."""
    target = groups == label
    return markov_blanket(values[:, ~target], values[:, target][:, 0],
                          groups=groups[~target], random_state=seed, n_jobs=1,
                          **options).blanket


def plot_blanket_graph(adjacency, labels=None, *, ax=None):
    """Draw a blanket graph (from :func:`markov_blankets`) on a circle.

    Requires matplotlib. Edges found in both directions are drawn as plain lines,
    one-way edges as arrows from a variable to a member of its blanket.

    Parameters
    ----------
    adjacency : array_like of bool of shape (m, m) or DataFrame
    labels : sequence of str, default=None
        Node names (a DataFrame's index by default, else 0..m-1).
    ax : matplotlib Axes, default=None
        Where to draw (a new figure when None).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if labels is None:
        labels = list(getattr(adjacency, "index", range(len(adjacency))))
    adjacency = np.asarray(adjacency, dtype=bool)
    m = adjacency.shape[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    angle = 2 * np.pi * np.arange(m) / max(m, 1)
    xy = np.column_stack([np.cos(angle), np.sin(angle)])
    for i in range(m):
        for j in range(m):
            if not adjacency[i, j] or (adjacency[j, i] and j < i):
                continue
            if adjacency[j, i]:
                ax.plot(*xy[[i, j]].T, color="0.3", zorder=1)
            else:
                ax.annotate("", xy=xy[j], xytext=xy[i], zorder=1,
                            arrowprops={"arrowstyle": "->", "color": "0.5"})
    ax.scatter(*xy.T, s=600, color="white", edgecolor="black", zorder=2)
    for (x, y), label in zip(xy, labels):
        ax.text(x, y, str(label), ha="center", va="center", zorder=3)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax
