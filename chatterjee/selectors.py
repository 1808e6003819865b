"""scikit-learn feature selectors built on FOCI and L-FOCI."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._response import Y_TYPES, encode_response
from ._validation import BACKENDS, _library, check_backend, to_numpy
from .foci import foci, lfoci

__all__ = ["FOCISelector", "LFOCISelector"]


class _BaseFOCISelector(SelectorMixin, BaseEstimator):
    _parameter_constraints: dict = {
        "y_type": [StrOptions(set(Y_TYPES))],
        "groups": ["array-like", None],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "stop": ["boolean", StrOptions({"auto"})],
        "lookahead": [Interval(Integral, 1, 2, closed="both")],
        "standardize": [StrOptions({"scale", "bounded"}), None],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "nan_policy": [StrOptions({"raise", "omit"})],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "backend": [StrOptions(set(BACKENDS))],
    }

    #: The selection function (foci or lfoci); the estimator's parameters are exactly
    #: its keyword arguments.
    _selection = None

    def _select(self, X, y, categorical):
        """Run the selection on validated arrays (y: numbers or class codes) and
        return a FociResult."""
        params = self.get_params(deep=False)
        params["y_type"] = "categorical" if categorical else "continuous"
        if params["stop"] == "auto":
            params["stop"] = self.max_features is None
        return self._selection(X, y, **params)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Select features of X by forward selection on their dependence with y.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Training features (n_samples >= 3); a PyTorch tensor or CuPy array
            stays on its device with ``backend='auto'``.
        y : array_like of shape (n_samples,)
            The target: numbers, or class labels (strings, booleans, pandas
            Categorical, ...; see ``y_type``).

        Returns
        -------
        self : object
            The fitted selector.
        """
        y, categorical = encode_response(y, self.y_type, stacklevel=4)
        if self._on_device(X):
            # The selection validates the data; only the bookkeeping is done here.
            if X.ndim != 2:
                raise ValueError(f"Expected a 2-D `X`, got {X.ndim} dimensions.")
            self.n_features_in_ = X.shape[1]
        elif self.nan_policy == "omit":  # the selection drops the rows with NaN
            X = validate_data(self, _host(X), ensure_min_samples=3, dtype=np.float64,
                              ensure_all_finite="allow-nan")
            y = check_array(_host(y), ensure_2d=False, dtype=np.float64,
                            ensure_all_finite="allow-nan", input_name="y")
        else:
            X, y = validate_data(self, _host(X), _host(y), y_numeric=True,
                                 ensure_min_samples=3, dtype=np.float64)
        n_candidates = X.shape[1] if self.groups is None else np.unique(self.groups).size
        if self.max_features is not None and self.max_features > n_candidates:
            raise ValueError(
                f"max_features={self.max_features} exceeds the number of "
                f"{'features' if self.groups is None else 'groups'} ({n_candidates})."
            )
        result = self._select(X, y, categorical)
        self.selected_features_ = result.selected_columns
        self.selected_groups_ = result.selected
        self.scores_ = result.scores
        self.gains_ = result.gains
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[result.selected_columns] = True
        return self

    def _on_device(self, X):
        """True when X is a tensor that the chosen backend keeps in its own library."""
        library = check_backend(self.backend, X)
        return library != "numpy" and _library(X) == library

    def transform(self, X):
        """Keep the selected features of X.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features_in_)
            A PyTorch tensor or CuPy array comes back as one, on its device.

        Returns
        -------
        array of shape (n_samples, n_selected_features)
        """
        if not self._on_device(X):
            return super().transform(_host(X))
        check_is_fitted(self)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {tuple(X.shape)}, expected {self.n_features_in_} features."
            )
        return X[:, np.flatnonzero(self.support_).tolist()]

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = self.nan_policy == "omit"
        return tags


def _host(values):
    """PyTorch and CuPy data as NumPy (detached, bfloat16 widened); the rest as given."""
    return values if _library(values) == "numpy" else to_numpy(values)


def _parameters_doc(noise):
    """The Parameters and Attributes sections shared by both selectors."""
    noise_entry = """
    noise_scale : float, default=1e-4
        Noise standard deviation per column, as a fraction of its smallest decisive
        difference; in (0, 0.1]."""
    ties_entry = """
    ties : {{'random', 'average'}}, default='random'
        Equally near neighbours: one drawn at random (FOCI's rule; the selection
        can depend on ``random_state`` when features have ties), or all averaged,
        so that one selection comes out for every seed (NumPy data; slower; see
        :func:`chatterjee.foci`)."""
    seeds = "the noise" if noise else "the tie-breaking among equally near neighbours"
    return f"""Parameters
    ----------
    y_type : {{'auto', 'continuous', 'categorical'}}, default='auto'
        How the target is compared (see :func:`chatterjee.codec`): 'categorical'
        by class membership only, so the selection does not depend on how the
        classes are named or numbered (classification); 'continuous' by its order
        (regression). 'auto': categorical for labels that are not numbers
        (strings, booleans, pandas Categorical, objects) and for two-valued
        numbers; continuous for other numbers, with a ``UserWarning`` when they
        look like integer class codes (pass ``y_type='categorical'`` for a
        classifier's integer labels).
    groups : array-like of shape (n_features,), default=None
        A label per feature: features with the same label are selected or dropped
        together (a multi-dimensional variable). None: each feature alone.
    max_features : int, default=None
        Number of features (or groups) to select. None: as many as add
        dependence (see ``stop``).
    stop : bool or 'auto', default='auto'
        True: stop when the best candidate adds no dependence (then
        ``max_features`` is a cap). False: rank until ``max_features``. 'auto':
        True when ``max_features`` is None, else False, so that a given
        ``max_features`` selects exactly that many and can be tuned in a grid
        search.
    lookahead : {{1, 2}}, default=1
        2: when the best single feature adds little, also score pairs and add the
        best pair if it adds much more together (features that matter only
        jointly, such as y = X1 X2); up to 25 times the cost of such a step (see
        :func:`chatterjee.foci`).
    standardize : {{'scale', 'bounded'}} or None, default='scale'
        Column scaling before the neighbour searches (as R FOCI).{noise_entry if noise else ties_entry}
    n_neighbors : int, default=1
        k of the k-nearest-neighbour coefficient (see :func:`chatterjee.codec`);
        1 is FOCI's. k > 1 needs NumPy data and is slower (a k-d tree per
        candidate); it must be below the number of samples.
    nan_policy : {{'raise', 'omit'}}, default='raise'
        Rows with NaN in ``fit``: rejected (scikit-learn's default), or dropped
        from the selection. With 'omit', ``transform`` passes NaN through.
    random_state : int, RandomState instance or None, default=None
        Seeds {seeds}.
    n_jobs : int, default=None
        Parallel jobs over the candidates of a step (joblib). None means 1 unless
        in a :obj:`joblib.parallel_config` context; -1 means all processors.
    verbose : int, default=0
        Progress report on stderr during ``fit``, off by default: 1 shows a tqdm
        progress bar when tqdm is installed (``pip install tqdm``, or the ``progress`` extra),
        else one line per step; 2 or more, one line per step (see
        :func:`chatterjee.foci`). It changes no selection.
    backend : {{'auto', 'numpy', 'torch', 'cupy'}}, default='auto'
        The array library of the neighbour searches. 'auto' follows X: PyTorch
        tensors and CuPy arrays are searched on their device (and ``transform``
        returns one), anything else with NumPy.
""" + _ATTRIBUTES


_ATTRIBUTES = """
    Attributes
    ----------
    support_ : ndarray of shape (n_features_in_,), dtype=bool
        Mask of the selected features.
    selected_features_ : ndarray of int
        Indices of the selected features, in the order they were picked (a group's
        columns together).
    selected_groups_ : ndarray
        Labels of the selected groups in pick order (without ``groups``, the same
        as ``selected_features_``).
    scores_ : ndarray of float
        T_n(Y, X_S) after each pick (R FOCI's ``stepT``).
    gains_ : ndarray of float
        T_n(Y, X_j | X_S) of each pick given the earlier picks.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when X had string column names.
"""


class FOCISelector(_BaseFOCISelector):
    __doc__ = """Select features with FOCI (Azadkia and Chatterjee's forward selection).

    Greedily adds the feature that most increases the dependence T_n(Y, X_S) and
    stops when no feature adds any. Model-free: it finds the features y depends
    on, whatever the form of the dependence.

    """ + _parameters_doc(noise=False) + """
    See Also
    --------
    chatterjee.foci : the function behind this selector.
    LFOCISelector : the randomized variant of Mehta et al. (ties broken by noise).
    sklearn.feature_selection.SequentialFeatureSelector : model-based forward selection.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import FOCISelector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 5))
    >>> y = np.cos(X[:, 0]) + X[:, 3] ** 2
    >>> selector = FOCISelector(random_state=0).fit(X, y)
    >>> selector.get_support()
    array([ True, False, False,  True, False])
    >>> selector.transform(X).shape
    (500, 2)
    """

    _parameter_constraints: dict = {
        **_BaseFOCISelector._parameter_constraints,
        "ties": [StrOptions({"random", "average"})],
    }

    def __init__(self, *, y_type="auto", groups=None, max_features=None, stop="auto",
                 lookahead=1, standardize="scale", ties="random", n_neighbors=1,
                 nan_policy="raise", random_state=None, n_jobs=None, verbose=0,
                 backend="auto"):
        self.y_type = y_type
        self.groups = groups
        self.max_features = max_features
        self.stop = stop
        self.lookahead = lookahead
        self.standardize = standardize
        self.ties = ties
        self.n_neighbors = n_neighbors
        self.nan_policy = nan_policy
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    _selection = staticmethod(foci)


class LFOCISelector(_BaseFOCISelector):
    __doc__ = """Select features with L-FOCI: FOCI on tie-broken features.

    For features with many ties (counts, categories, binarized attributes): tiny
    Gaussian noise breaks the ties once, then FOCI runs (see :func:`chatterjee.lfoci`).

    """ + _parameters_doc(noise=True) + """
    See Also
    --------
    chatterjee.lfoci : the function behind this selector.
    FOCISelector : the exact variant.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import LFOCISelector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 4, size=(1000, 6))
    >>> y = X[:, 1] + 3 * X[:, 4] + rng.integers(0, 2, size=1000)
    >>> selector = LFOCISelector(random_state=0).fit(X, y)
    >>> selector.selected_features_[:2]                # the two real features first
    array([4, 1])
    """

    _parameter_constraints: dict = {
        **_BaseFOCISelector._parameter_constraints,
        "noise_scale": [Interval(Real, 0, 0.1, closed="right")],
    }

    def __init__(self, *, y_type="auto", groups=None, max_features=None, stop="auto",
                 lookahead=1, standardize="scale", noise_scale=1e-4, n_neighbors=1,
                 nan_policy="raise", random_state=None, n_jobs=None, verbose=0,
                 backend="auto"):
        self.y_type = y_type
        self.groups = groups
        self.max_features = max_features
        self.stop = stop
        self.lookahead = lookahead
        self.standardize = standardize
        self.noise_scale = noise_scale
        self.n_neighbors = n_neighbors
        self.nan_policy = nan_policy
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    _selection = staticmethod(lfoci)
