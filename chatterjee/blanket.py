"""Markov blankets by forward selection (FOCI) and backward pruning, and blanket graphs."""

from dataclasses import dataclass, field

import numpy as np

from ._response import CategoricalResponse, response_of
from ._validation import check_n_jobs, check_noise_scale, check_random_state, check_samples
from .backends import (
    nearest_neighbor_graphs,
    neighbors_from_draws,
    repeats_a_value,
    shared_base_search,
)
from .codec import ConditionalResampler, agreement, check_n_neighbors, codec
from .foci import (
    FociResult,
    Progress,
    check_foci_args,
    check_selection_nan_policy,
    foci,
    prepare_features,
    score_blocks,
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
        The forward selection it started from (the tested search's grow phase:
        its members in the order they entered, ``gains`` T_n(Y, X_m | X_S) at their
        entry and ``scores`` T_n(Y, X_S) after it).
    pruned : ndarray
        Members of the forward selection removed by the backward pass, in the
        order they were removed.
    pruning_scores : ndarray of float
        T_n(Y, X_m | X_rest) of each removed member at its removal (all <= 0 for
        the untested search; the tested one drops members whose test fails).
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
#: Neighbours of the tested search's coefficient unless ``n_neighbors`` is given.
TESTED_NEIGHBORS = 5
#: Resampled coefficients per test of the tested search, at most, looked at after
#: every ``NULL_BATCH``: a z-score outside [0, 2 z_alpha] decides early.
NULL_DRAWS = 30
NULL_BATCH = 10
#: When no single candidate passes, the pairs among this many best are tried.
PAIR_POOL = 5
#: The candidates with the largest T_n that a grow step ranks by their excess (a
#: draw each; ranking every candidate cost 25 % more CPU on a 50-node SEM, F1 equal).
EXCESS_POOL = 10
#: Knots of each conditioning variable's cubic spline in the covariance test.
SPLINE_KNOTS = 5
#: The share of ``alpha`` that the covariance test takes on continuous data.
COVARIANCE_SHARE = 0.2


class _CovarianceTests:
    """Generalised covariance measures of Y and candidates given X_S (Shah and
    Peters), made robust to a wrong regression of Y, in three directions.

    Y's ranks and their normal scores are regressed on X_S by least squares on
    additive cubic splines (5 knots at quantiles per variable): the residuals d of
    the ranks and e of the scores, and the residual v of e squared on the same
    splines (the spread of Y given X_S). A candidate enters as its conditional ranks
    r given X_S (:meth:`~chatterjee.codec.ConditionalResampler.conditional_ranks`;
    without X_S, its ranks), through r - 1/2 and its square, centred. Three products
    are tested, each by its mean over its standard error with a two-sided normal
    p-value:

    * d (r - 1/2): a shift of Y with the candidate (a correlation given X_S; the
      ranks are bounded, which keeps the product's tails light at small n);
    * e ((r - 1/2)^2, centred): Y rises or falls with the candidate's distance from
      its conditional median (a parent through a square, a cosine, an absolute
      value);
    * v (r - 1/2): Y's spread changes with the candidate (a child through such an
      even function: it tells the size of Y, not its sign).

    The candidate's p-value is the smallest of the three times 3 (Bonferroni).
    Under conditional independence each product has mean zero when either
    regression of Y is right or the conditional ranks are uniform given X_S (where
    the rank test of :func:`~chatterjee.codec.codec` is calibrated), so a regression
    that misses interactions costs power, not level. A block of several columns gets
    its smallest p-value times its number of columns.
    """

    def __init__(self, features, ranks):
        from scipy.stats import norm, rankdata

        self.features = features
        n = features.shape[0]
        self.ranks = rankdata(ranks) / n
        self.scores = norm.ppf(self.ranks - 0.5 / n)
        self._splines = {}

    def _spline(self, column):
        if column not in self._splines:
            from sklearn.preprocessing import SplineTransformer

            self._splines[column] = SplineTransformer(
                n_knots=SPLINE_KNOTS, knots="quantile", include_bias=False
            ).fit_transform(self.features[:, [column]])
        return self._splines[column]

    def condition_on(self, columns, resampler):
        """Fix X_S (``columns``) and its ConditionalResampler (None when S is empty)."""
        n = self.features.shape[0]
        design = np.column_stack([np.ones(n)] + [self._spline(int(c)) for c in columns])
        # Least squares through the small Gram matrix (a thin SVD of the design costs
        # far more); directions it cannot resolve are left out.
        values, vectors = np.linalg.eigh(design.T @ design)
        kept = values > values[-1] * 1e-12
        solve = vectors[:, kept] / values[kept]

        def residual_of(target):
            return target - design @ (solve @ (vectors[:, kept].T @ (design.T @ target)))

        self.rank_residual = residual_of(self.ranks)
        self.residual = residual_of(self.scores)
        self.spread = residual_of(self.residual ** 2)
        self.resampler = resampler

    def pvalues(self, blocks, rng):
        """The p-value of each block (a list of column arrays) given X_S."""
        from scipy.stats import norm, rankdata

        columns = np.concatenate(blocks)
        values = self.features[:, columns]
        if self.resampler is None:
            centred = rankdata(values, axis=0) / values.shape[0]
            centred -= centred.mean(axis=0)
        else:
            centred = self.resampler.conditional_ranks(values, rng) - 0.5
        squared = centred ** 2
        squared -= squared.mean(axis=0)
        pvalues = np.ones(columns.shape[0])
        for of_y, of_candidate in ((self.rank_residual, centred),
                                   (self.residual, squared), (self.spread, centred)):
            products = of_y[:, None] * of_candidate
            deviation = products.std(axis=0)
            statistic = np.sqrt(products.shape[0]) * products.mean(axis=0) / np.where(
                deviation > 0, deviation, np.inf)
            pvalues = np.minimum(pvalues, 2 * norm.sf(np.abs(statistic)))
        pvalues = np.minimum(1.0, 3 * pvalues)
        ends = np.cumsum([block.shape[0] for block in blocks])
        return np.array([min(1.0, part.min() * part.shape[0])
                         for part in np.split(pvalues, ends[:-1])])


def _zscore(statistic, null):
    """(statistic - mean) / sd of the values ``null``. When they are equal within
    rounding (1e-12; tied data can give every draw the same graph): +inf above
    them, -inf below, 0 at their value."""
    null = np.asarray(null)
    excess = statistic - np.mean(null)
    if np.ptp(null) > 1e-12:
        return excess / np.std(null, ddof=1)
    return 0.0 if abs(excess) <= 1e-12 else float(np.copysign(np.inf, excess))


class _BlanketTests:
    """T_n(Y, block | X_S) and its test for the tested search of :func:`markov_blanket`.

    ``condition_on(S)`` fixes the conditioning set; ``statistics`` scores candidate
    blocks given it; ``excess`` ranks them; ``zscore`` compares one block's T with
    coefficients of the block drawn from an estimate of its law given X_S (a
    :class:`~chatterjee.codec.ConditionalResampler`), as a z-score: (T - their
    mean) / their standard deviation; ``rank_zscore`` tests a block by its
    conditional ranks, as :func:`~chatterjee.codec.codec` does.
    """

    def __init__(self, features, response, *, n_neighbors, ties, rng, parallel,
                 n_workers, progress, critical):
        self.features, self.response, self.rng = features, response, rng
        # Without repeated values no two distances tie (almost surely), and the faster
        # drawn search gives the averaged graphs.
        self.tie_free = not repeats_a_value(features)
        self.ties = "random" if self.tie_free else ties
        self.n_neighbors, self.critical = n_neighbors, critical
        self.parallel, self.n_workers, self.progress = parallel, n_workers, progress
        null, self.scale = response.unconditional_terms(0.0)
        self.null = -null            # T(Y, Z) = (agreement - null) / scale
        self._references = {}

    def condition_on(self, columns, resampler=None):
        """Fix X_S (``columns`` of the features), with X_S's ConditionalResampler when
        it is already built; False when Y is a function of X_S (then no block can add
        dependence)."""
        self.base = self.features[:, columns]
        if columns.shape[0]:
            self.reference = self.graph_agreement(columns)
            self.denominator = self.response.self_total() - self.reference
        else:
            self.reference, self.denominator = self.null, self.scale
        self._resampler, self._search = resampler, None
        return self.denominator > 0

    def remember(self, columns, agreement_of_graph):
        """Keep the agreement of the graph of ``columns`` (a joint graph a step has
        just scored) for when they become X_S."""
        self._references[tuple(columns.tolist())] = agreement_of_graph

    def graph_agreement(self, columns):
        """The agreement of the graph of the features' ``columns``, kept for the next
        time they come (the shrink tests the member it has just scored, and the
        blanket a grow step ends with)."""
        key = tuple(columns.tolist())
        if key not in self._references:
            graph, = nearest_neighbor_graphs([self.features[:, columns]], self.rng,
                                             workers=1, n_neighbors=self.n_neighbors,
                                             ties=self.ties)
            self._references[key] = agreement(self.response, graph)
        return self._references[key]

    @property
    def search(self):
        """The search of X_S joined with a block, built when first needed (None when
        X_S is empty and ties are drawn)."""
        if self._search is None and (self.base.shape[1] or self.ties == "average"):
            self._search = shared_base_search(self.base, workers=1,
                                              n_neighbors=self.n_neighbors, ties=self.ties)
        return self._search

    def statistics(self, blocks, desc):
        """T_n(Y, block | X_S) of each block (a list of column arrays)."""
        seeds = self.rng.integers(np.iinfo(np.int64).max, size=len(blocks))
        agreements = score_blocks(self.response, self.features, blocks, seeds,
                                  self.search, self.n_neighbors, self.parallel,
                                  self.n_workers, self.progress, desc)
        return (agreements - self.reference) / self.denominator

    def agreement_of(self, statistic):
        """The agreement of a joint graph whose T_n(Y, block | X_S) is ``statistic``."""
        return statistic * self.denominator + self.reference

    def _statistic_of(self, values):
        """T_n(Y, values | X_S) for a block's values (n, q), with a drawn graph."""
        return (agreement(self.response, self._graph(values)) - self.reference) \
            / self.denominator

    @property
    def resampler(self):
        """The ConditionalResampler of X_S, built when a draw is first needed."""
        if self._resampler is None:
            self._resampler = ConditionalResampler(
                self.base if self.base.shape[1] else None, self.base.shape[0], workers=1,
                search=self._search if self.ties == "random" else None)
        return self._resampler

    def excess(self, blocks, statistics):
        """Each block's T_n minus that of one draw of the block given X_S: its
        ranking. T_n is biased down for a block that X_S does not predict (its
        neighbours in (X_S, block) are farther in X_S than those in X_S alone), and
        the more so the larger X_S; the draw's T_n carries the same bias."""
        return np.array([statistic - self._statistic_of(
            next(self.resampler.draws(self.features[:, columns], self.rng)))
            for columns, statistic in zip(blocks, statistics)])

    def rank_zscore(self, columns):
        """The z-score of T_n(Y, ranks | X_S) among the T_n of permutations of the
        ranks, the block entering as its conditional ranks given X_S
        (:meth:`~chatterjee.codec.ConditionalResampler.conditional_ranks`; without
        X_S, as it is)."""
        values = self.features[:, columns]
        if self.base.shape[1]:
            values = self.resampler.conditional_ranks(values, self.rng)
        statistic = self._statistic_of(values)
        permutations = (values[self.rng.permutation(values.shape[0])]
                        for _ in range(NULL_DRAWS))
        return self._score(statistic, permutations)

    def _graph(self, values):
        shape = values.shape[0] if self.n_neighbors == 1 else (values.shape[0],
                                                                self.n_neighbors)
        u = self.rng.random(shape)
        return (neighbors_from_draws(values, u) if self.search is None
                else self.search.neighbors(values, u))

    def _score(self, statistic, draws):
        """The z-score of ``statistic`` among the T_n of ``draws`` of the block: up
        to ``NULL_DRAWS`` of them, fewer when it is far from the critical value."""
        null = []
        while len(null) < NULL_DRAWS:
            null.extend(self._statistic_of(next(draws)) for _ in range(NULL_BATCH))
            score = _zscore(statistic, null)
            if not 0 <= score <= 2 * self.critical:
                break
        return score

    def zscore(self, columns, statistic):
        """The z-score of a block's T_n among coefficients of its draws given X_S:
        up to ``NULL_DRAWS`` of them, fewer when it is far from the critical value."""
        return self._score(statistic,
                           self.resampler.draws(self.features[:, columns], self.rng))


def _admitted(tests, statistics, remaining, members, step, most_correlated):
    """The candidates a grow step admits, as positions in ``remaining`` and the
    agreements of their joint graphs: the best one when its test passes; else the
    one ``most_correlated()`` returns (the covariance test's choice, or None); else
    the best pair among the ``PAIR_POOL`` best when the pair's test passes (two
    variables that matter only together, or whose single gains are too weak to
    pass); else none."""
    excess = np.full(len(remaining), -np.inf)
    pool = np.argsort(-statistics, kind="stable")[:EXCESS_POOL]
    excess[pool] = tests.excess([members[remaining[m]] for m in pool], statistics[pool])
    best = int(np.argmax(excess))
    if tests.zscore(members[remaining[best]], statistics[best]) >= tests.critical:
        return [best], [tests.agreement_of(statistics[best])]
    correlated = most_correlated()
    if correlated is not None:
        return [correlated], [tests.agreement_of(statistics[correlated])]
    pool = np.argsort(-excess, kind="stable")[:PAIR_POOL]
    pairs = [(a, b) for i, a in enumerate(pool.tolist()) for b in pool[i + 1:].tolist()]
    if not pairs:
        return [], []
    blocks = [np.concatenate([members[remaining[a]], members[remaining[b]]])
              for a, b in pairs]
    pair_statistics = tests.statistics(blocks, f"{step}, pairs")
    top = int(np.argmax(tests.excess(blocks, pair_statistics)))
    if not tests.zscore(blocks[top], pair_statistics[top]) >= tests.critical:
        return [], []
    first, second = pairs[top]                  # the better single candidate first
    return [first, second], [tests.agreement_of(statistics[first]),
                             tests.agreement_of(pair_statistics[top])]


def _grow_shrink(features, members, response, *, alpha, prune, n_neighbors, ties, rng,
                 n_jobs, verbose):
    """The grow-shrink search of :func:`markov_blanket` with ``alpha``.

    Grow: add what :func:`_admitted` admits until it admits nothing. Shrink (with
    ``prune``): while the blanket has two members or more, take the member with the
    smallest T_n(Y, X_m | X_rest) and drop it when the z-score of its conditional
    ranks (:meth:`_BlanketTests.rank_zscore`) falls short of the critical value and
    the covariance test (continuous data) does not reject, else stop.
    See the Notes of :func:`markov_blanket`.

    Returns
    -------
    picked : list of int
        Positions in ``members`` in the order they were added.
    gains, scores : list of float
        T_n(Y, X_m | X_S) at each admission, and T_n(Y, X_S) after it.
    kept : list of int
        The positions left after the shrink.
    pruned : list of int
    pruning_scores : list of float
        T_n(Y, X_m | X_rest) of each dropped member when it was dropped.
    """
    from joblib import effective_n_jobs
    from scipy.stats import norm
    from sklearn.utils.parallel import Parallel

    n_workers = effective_n_jobs(n_jobs)
    parallel = Parallel(n_jobs=n_jobs, prefer="threads") if n_workers > 1 else None
    critical = float(norm.isf(alpha))

    def columns_of(positions):
        return np.concatenate([members[m] for m in positions] + [np.empty(0, np.int64)])

    remaining = [m for m in range(len(members)) if members[m].shape[0]]
    picked, gains, scores = [], [], []
    with Progress(verbose, desc="blanket", unit="candidate") as progress:
        tests = _BlanketTests(features, response, n_neighbors=n_neighbors, ties=ties,
                              rng=rng, parallel=parallel, n_workers=n_workers,
                              progress=progress, critical=critical)
        # On continuous data each decision is two tests, at levels that add up to
        # alpha: most of it for CODEC's, which sees any dependence.
        covariance = None
        if tests.tie_free and not isinstance(response, CategoricalResponse):
            covariance = _CovarianceTests(features, response.R)
            tests.critical = critical = float(norm.isf(alpha * (1 - COVARIANCE_SHARE)))

        def correlated(member, given, resampler):
            """Whether the covariance test rejects for ``member`` given ``given``
            (whose ConditionalResampler is ``resampler``)."""
            if covariance is None:
                return False
            covariance.condition_on(columns_of(given), resampler)
            return covariance.pvalues([members[member]], rng)[0] <= alpha * COVARIANCE_SHARE

        while remaining and tests.condition_on(columns_of(picked)):
            step = f"blanket step {len(picked) + 1}"

            def most_correlated():
                """The candidate the covariance test admits, or None."""
                if covariance is None:
                    return None
                covariance.condition_on(columns_of(picked),
                                        tests.resampler if picked else None)
                pvalues = covariance.pvalues([members[m] for m in remaining], rng)
                best = int(np.argmin(pvalues))
                return best if pvalues[best] <= alpha * COVARIANCE_SHARE else None

            statistics = tests.statistics([members[m] for m in remaining], step)
            chosen, agreements = _admitted(tests, statistics, remaining, members, step,
                                           most_correlated)
            if not chosen:
                progress.step(f"[blanket] step {len(picked) + 1}: no candidate passes "
                              f"its test, stop", "stopped")
                break
            reference, denominator = tests.reference, tests.denominator
            for position, agreement_now in zip(chosen, agreements):
                # T(Y, X_m | X_S): the second of a pair given S and the first
                gains.append(float((agreement_now - reference) / denominator))
                reference = agreement_now
                denominator = tests.response.self_total() - agreement_now
                scores.append(float((agreement_now - tests.null) / tests.scale))
                progress.step(f"[blanket] step {len(picked) + 1}: added "
                              f"{remaining[position]}, gain T = {gains[-1]:.4f}",
                              f"added {remaining[position]}")
                picked.append(remaining[position])
                tests.remember(columns_of(picked), agreement_now)
            for position in sorted(chosen, reverse=True):
                remaining.pop(position)
        kept, pruned, pruning_scores = list(picked), [], []
        while prune and len(kept) > 1:
            # X_rest joined with a member is the whole blanket: one graph per round.
            joint = tests.graph_agreement(columns_of(kept))
            statistics = []
            for member in kept:
                tests.condition_on(columns_of([m for m in kept if m != member]))
                statistics.append(float((joint - tests.reference) / tests.denominator))
            weakest = int(np.argmin(statistics))
            rest = [m for m in kept if m != kept[weakest]]
            resampler = ConditionalResampler(features[:, columns_of(rest)],
                                             features.shape[0], workers=1)
            if correlated(kept[weakest], rest, resampler):
                break
            tests.condition_on(columns_of(rest), resampler)
            if tests.rank_zscore(members[kept[weakest]]) >= critical:
                break
            pruned.append(kept.pop(weakest))
            pruning_scores.append(float(statistics[weakest]))
            progress.step(f"[blanket] pruned {pruned[-1]}: T(y, it | rest) = "
                          f"{statistics[weakest]:.4f}", f"pruned {pruned[-1]}")
    return picked, gains, scores, kept, pruned, pruning_scores


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


def markov_blanket(X, y, *, alpha=0.01, y_type="auto", groups=None, prune=True,
                   randomized=False, standardize="scale", group_features=None,
                   ties=None, n_neighbors=None, noise_scale=1e-4, nan_policy="raise",
                   random_state=None, n_jobs=None, verbose=0):
    """Estimate the Markov blanket of ``y`` among the columns (or groups) of ``X``.

    The Markov blanket is the smallest set S of variables such that y is
    independent of the others given X_S. The default search grows and shrinks S
    with tests of conditional independence built on T_n(Y, X_m | X_S) (an IAMB,
    Tsamardinos et al. 2003, with the coefficient's test): a candidate enters when
    it is the best of its step and its test rejects at level ``alpha``; a member
    leaves when, given the others, its test no longer rejects (Notes).
    ``alpha=None`` gives the untested search: forward selection (:func:`foci`)
    until no candidate raises T_n(Y, X_S), then a backward pass that drops, one at
    a time, the member with the lowest T_n(Y, X_m | X_{S - m}) while it is <= 0.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        Candidate variables.
    y : array_like of shape (n_samples,)
        The target variable: numbers or class labels.
    alpha : float or None, default=0.01
        Level of each test of the tested search; None: the untested search.
    y_type : {'auto', 'continuous', 'categorical'}, default='auto'
        How the target is compared: by its order or by class membership (see
        :func:`codec`). A discrete variable coded by integers (the states of a
        Bayesian network) is categorical: pass 'categorical'.
    groups : array_like of shape (n_features,), default=None
        A label per column; columns with the same label form one variable (see
        :func:`foci`). The blanket is then a set of labels.
    prune : bool, default=True
        Run the backward pass (the shrink).
    randomized : bool, default=False
        Break ties by noise as L-FOCI does (:func:`lfoci`). Untested search: L-FOCI
        for the forward pass and :func:`lcodec` with fresh noise for the backward
        pass (with the forward pass's noise, a member admitted by a lucky draw
        would look useful again). Tested search: both passes on the features with
        noise drawn once.
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
    n_neighbors : int, default=None
        k of the k-nearest-neighbour coefficient (see :func:`codec`) used by the
        forward pass, the backward pass and ``group_features='auto'``. None: 5 for
        the tested search (its tests have more power than with 1 on the benchmark
        networks; the documentation's tables), 1 (FOCI's coefficient) for the
        untested search and with ``randomized=True``. k > 1 needs NumPy data, is
        not available with ``randomized=True`` (L-CODEC has no k-nearest-neighbour
        version), and is slower (k neighbours per point). On the bullseye network,
        ``group_features='norm'`` with ``n_neighbors=5`` recovers the blanket more
        reliably than with 1 (see the benchmarks in the documentation).
    ties : {'random', 'average'} or None, default=None
        Equally near neighbours in the forward and backward passes: drawn at
        random, or averaged so that tied data (discrete variables) give one
        coefficient for every seed (see :func:`foci`). None: 'average', or
        'random' with ``randomized=True``, whose noise is the tie-breaking ('average'
        is not available there).
    noise_scale : float, default=1e-4
        Noise of the randomized variant (ignored otherwise).
    nan_policy : {'raise', 'omit'}, default='raise'
        Rows with NaN in ``X`` or ``y``: raise an error, or drop them.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds every random choice.
    n_jobs : int, default=None
        Parallel jobs (threads) over the candidates of each forward step (joblib).
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
    The tested search (``alpha`` given). At each step every candidate m gets T_n(Y,
    X_m | X_S), and the 10 with the largest get one draw X_m* each from an estimate
    of its law given X_S (its local linear fit on X_S plus residuals permuted within
    cells of nearby points, :meth:`~chatterjee.codec.ConditionalResampler.draws`).
    Given X_S, T_n is biased downwards for a candidate that X_S does not predict (its
    neighbours in (X_S, X_m) are farther in X_S than X_S's own neighbours), the more
    so as S grows, while a candidate that X_S predicts well keeps T_n near 0: the
    search ranks these 10 by T_n(X_m) - T_n(X_m*), which carries the same bias on
    both sides. The best candidate is then tested:
    its T_n among up to 30 coefficients of such draws, as a z-score (the null law of
    T_n is close to normal), against the normal quantile z_alpha; the draws stop
    after 10 or 20 when the z-score is negative or above 2 z_alpha. The draws favour
    power: they keep their level where X_m given X_S is smooth or sharp with slowly
    varying noise (see :func:`codec`), not where it is bimodal. When the best
    candidate fails, the best pair among the 5 best is tested as one block (two
    parents of y whose single gains are too weak given a child of y, say), and the
    search stops when it fails too. The shrink takes the member with the lowest T_n
    given the others and drops it while its test fails; that test is :func:`codec`'s
    conditional test (the member enters as its ranks given the others, compared with
    permutations of them), which keeps its level where the draws of the grow phase
    do not: a cause of a member through a non-monotone link (``m = abs(e) + noise``
    makes e bimodal given m) passes the grow phase's test too often, and is dropped
    here.

    On continuous data (no repeated value in the features, a response that is not
    categorical) each decision joins a second test, built on the generalised
    covariance measure of Shah and Peters: the residuals of Y's ranks and of their
    normal scores from an additive cubic-spline regression on X_S, and the residual
    of the latter's square (Y's spread), times the candidate's conditional ranks
    given X_S and their distance from 1/2, in three products (a shift, an even link
    from a parent, an even link to a child), each averaged and divided by its
    standard error, Bonferroni over the three. Its level holds when either the regressions or the conditional ranks
    are right, and it has the power of a partial correlation against effects that
    shift the correlation of Y and the candidate, which the nearest-neighbour
    coefficient lacks (weak linear effects given several others), and power against
    squares, cosines and absolute values given several others. A grow step admits the best candidate by T when its
    test passes at level 0.8 ``alpha``, else the candidate with the smallest
    covariance p-value when it is at most 0.2 ``alpha``, else tries the pairs; the
    shrink keeps the weakest member (and stops) when either test rejects at these
    levels. The levels of a decision's two tests add up to ``alpha`` (a grow step
    that tries the pairs adds a third test, at 0.8 ``alpha``), each for a candidate
    chosen among many: like IAMB's, the blanket's error rates are not those of one
    test.

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

    References
    ----------
    I. Tsamardinos, C. F. Aliferis and A. Statnikov, "Algorithms for large scale
    Markov blanket discovery", FLAIRS (2003).

    R. D. Shah and J. Peters, "The hardness of conditional independence testing and
    the generalised covariance measure", Annals of Statistics 48 (2020) 1514-1538.

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
    if alpha is not None and not (isinstance(alpha, (float, int, np.floating))
                                  and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise ValueError(f"`alpha` must be None or a number in (0, 1), got {alpha!r}.")
    if n_neighbors is None:
        n_neighbors = TESTED_NEIGHBORS if alpha is not None and not randomized else 1
    if group_features not in GROUP_FEATURES:
        raise ValueError(
            f"`group_features` must be None, 'norm' or 'auto', got {group_features!r}."
        )
    if group_features is not None and groups is None:
        raise ValueError("`group_features` needs `groups`.")
    if ties is None:
        ties = "random" if randomized else "average"
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
    if alpha is not None:
        picked, gains, scores, kept, pruned, pruning_scores = _grow_shrink(
            searched, members, response_of(y, categorical), alpha=alpha, prune=prune,
            n_neighbors=check_n_neighbors(n_neighbors, y.shape[0], y), ties=ties,
            rng=rng, n_jobs=n_jobs, verbose=verbose)
        columns = np.concatenate([original[m] for m in picked] + [np.empty(0, int)])
        forward = FociResult(
            labels[np.asarray(picked, dtype=np.int64)], np.asarray(scores),
            np.asarray(gains), columns.astype(np.int64),
            None if names is None or groups is not None else names[columns],
            y.shape[0])
        return _blanket_result(shown, original, kept, forward, pruned, pruning_scores,
                               reduced)
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
    return _blanket_result(shown, original, kept, forward, pruned, pruning_scores, reduced)


def _blanket_result(shown, original, kept, forward, pruned, pruning_scores, reduced):
    """The BlanketResult of the positions kept and pruned (``shown``: their labels,
    ``original[k]``: the columns of ``X`` of position k)."""
    kept = sorted(kept)
    columns = np.sort(np.concatenate([original[k] for k in kept] + [np.empty(0, int)]))
    return BlanketResult(
        shown[np.asarray(kept, dtype=np.int64)],
        forward,
        shown[np.asarray(pruned, dtype=np.int64)],
        np.asarray(pruning_scores, dtype=float),
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
        Passed to :func:`markov_blanket` (``alpha``, ``y_type``, ``ties``, ``prune``,
        ``randomized``, ``standardize``, ``group_features``, ``n_neighbors``,
        ``noise_scale``, ``random_state``). ``nan_policy='omit'`` drops the rows of ``data`` that hold
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
