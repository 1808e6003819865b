"""The response's side of the coefficients: ranks of an ordered y, classes of a nominal y.

Every coefficient of the package is a ratio of sums of a similarity ``s(i, j)`` of
the responses of a point and its nearest neighbour (Azadkia and Chatterjee's
construction; Huang, Deb and Sen's kernel partial correlation):

* an ordered (continuous) response: ``s(i, j) = min(R_i, R_j)`` with
  ``R_i = #{k : Y_k <= Y_i}``, the integral over thresholds t of
  ``1{Y_i >= t} 1{Y_j >= t}``;
* a nominal (categorical) response: ``s(i, j) = 1{Y_i = Y_j}``, the discrete kernel,
  which depends only on which samples share a class, never on the classes' names or
  codes.

:func:`encode_response` decides which one a ``y`` is (``y_type``) and turns labels
into codes; :func:`response_of` builds the object the statistics sum over.
"""

import numbers
import warnings

import numpy as np
from array_api_compat import array_namespace

from ._ranks import is_constant, max_ranks
from ._validation import _library, to_numpy

Y_TYPES = ("auto", "continuous", "categorical")

#: ``y_type="auto"`` warns when a numeric y holds at most this many distinct integers
#: (and repeats them): such a y is more often class codes than a measurement.
MOST_CODES = 100


class OrderedResponse:
    """An ordered response: similarity ``min(R_i, R_j)`` of its max-ranks.

    Parameters
    ----------
    y : array of shape (n,)
        Finite float64 values (NumPy, PyTorch or CuPy).
    """

    def __init__(self, y):
        self.R, self.L = max_ranks(y)
        self.n = y.shape[0]

    @property
    def values(self):
        """The per-sample values whose pairwise similarity is summed (the ranks R)."""
        return self.R

    @staticmethod
    def similarity(a, b):
        """``s`` of paired values, elementwise."""
        xp = array_namespace(a)
        return xp.minimum(a, b)

    def averaged_agreement(self, tied, values=None):
        """``sum_i sum_j w_ij s(i, j)`` over the weights of a
        :class:`~chatterjee.backends.TiedNeighbors` (NumPy); ``values`` replaces
        :attr:`values` (a permutation of them)."""
        point, entry = tied.pairs()
        target = tied.target[entry]
        values = np.asarray(self.values if values is None else values)
        # site by site, the values in increasing order, to sum s(i, .) over a site
        span = int(values.max()) + 1
        keys = tied.site_of * span + values
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        within = self._within_site(keys, values[order], target * span, values[point],
                                   tied.counts[target])
        within -= np.where(target == tied.site_of[point],
                           self.similarity(values[point], values[point]), 0)
        return float(tied.weight[entry] @ within)

    @staticmethod
    def _within_site(keys, sorted_values, site_key, value, count):
        """``sum_{j in site} min(value, R_j)`` for each (site, value) query."""
        start = np.searchsorted(keys, site_key)
        below = np.searchsorted(keys, site_key + value)     # R_j < value before it
        prefix = np.concatenate(([0], np.cumsum(sorted_values)))
        return (prefix[below] - prefix[start]
                + value * (start + count - below)).astype(np.float64)

    def is_constant(self):
        """True when every response value is equal."""
        return is_constant(self.R, self.L)

    def self_total(self):
        """``sum_i s(i, i)``."""
        xp = array_namespace(self.R)
        return float(xp.sum(self.R))

    def unconditional_terms(self, agree):
        """Numerator and denominator of T_n(Y, Z) from ``sum_i s(i, M(i))``
        (``sum_i sum_j s(i, j) = sum_i L_i**2``)."""
        xp = array_namespace(self.L)
        L = xp.astype(self.L, xp.float64)
        return agree - float(L @ L) / self.n, float(L @ (self.n - L)) / self.n


class CategoricalResponse(OrderedResponse):
    """A nominal response: similarity ``1{Y_i = Y_j}`` of its class codes.

    Parameters
    ----------
    y : array of shape (n,)
        Finite float64 class codes (NumPy, PyTorch or CuPy).
    """

    def __init__(self, y):
        super().__init__(y)          # the max-ranks of the codes count the classes
        xp = array_namespace(y)
        self.codes = xp.astype(y, xp.int64)

    @property
    def values(self):
        """The class codes."""
        return self.codes

    @staticmethod
    def similarity(a, b):
        xp = array_namespace(a)
        return xp.astype(a == b, xp.int64)

    def self_total(self):
        return float(self.n)

    @staticmethod
    def _within_site(keys, sorted_values, site_key, value, count):
        """``#{j in site : Y_j = value}`` for each (site, value) query."""
        return (np.searchsorted(keys, site_key + value, side="right")
                - np.searchsorted(keys, site_key + value)).astype(np.float64)

    def unconditional_terms(self, agree):
        """With ``sum_i sum_j 1{Y_i = Y_j} = sum_c n_c**2 = sum_i n_{Y_i}``, where
        ``n_{Y_i} = R_i + L_i - n`` is the size of sample i's class."""
        xp = array_namespace(self.R)
        pairs = float(xp.sum(self.R + self.L - self.n)) / self.n
        return agree - pairs, self.n - pairs


def response_of(y, categorical):
    """The response object of checked float64 ``y`` (codes when ``categorical``)."""
    return CategoricalResponse(y) if categorical else OrderedResponse(y)


def check_y_type(y_type):
    """Validate ``y_type``."""
    if y_type not in Y_TYPES:
        raise ValueError(f"`y_type` must be one of {Y_TYPES}, got {y_type!r}.")
    return y_type


def encode_response(y, y_type, name="y", stacklevel=3):
    """Decide whether ``y`` is nominal and, if so, replace its labels by codes.

    Parameters
    ----------
    y : array_like of shape (n,)
        The response as the user gave it.
    y_type : {'auto', 'continuous', 'categorical'}
        'auto' takes strings, booleans, pandas Categorical, other non-numeric labels
        and numbers with exactly two distinct values as categorical, other numbers
        as continuous, with a ``UserWarning`` when they look like class codes (at
        most :data:`MOST_CODES` distinct integers, each twice on average).
    name : str
        The argument's name in messages.
    stacklevel : int
        Of the warning: 3 points at the caller of the function that calls this one.

    Returns
    -------
    values : array_like
        ``y`` itself when continuous; else float64 codes ``0, 1, ...`` of the
        classes in sorted order of their labels (in order of first appearance when
        the labels cannot be sorted), NaN where the label is missing (None, NaN,
        ``pandas.NA``), for :func:`check_samples` and ``nan_policy`` to handle.
    categorical : bool
    """
    check_y_type(y_type)
    if y_type == "continuous" or y is None or hasattr(y, "tocsr"):
        return y, False                 # None and sparse y: check_samples explains
    if y_type == "auto" and is_numeric_labels(y):
        distinct, integral, n_finite = _distinct_values(y)
        if distinct != 2:
            if integral and 3 <= distinct <= min(MOST_CODES, n_finite // 2):
                warnings.warn(
                    f"`{name}` holds {distinct} distinct integers, which are ranked as "
                    "ordered numbers. If they are class labels, pass "
                    "y_type='categorical' (the answer then does not depend on how the "
                    "classes are numbered); if they are measurements, pass "
                    "y_type='continuous' to silence this warning.",
                    UserWarning,
                    stacklevel=stacklevel,
                )
            return y, False
    return _codes(y, name), True


def is_numeric_labels(y):
    """True for numbers (not booleans), including object arrays that hold only numbers
    and missing values; False for labels."""
    dtype = getattr(y, "dtype", None)
    if dtype is not None and str(dtype) == "category":
        return False
    if hasattr(y, "is_floating_point"):            # a PyTorch tensor
        return str(y.dtype) != "torch.bool"
    array = _host_array(y)
    if array.dtype.kind in "iufc":
        return True
    if array.dtype.kind != "O":
        return False
    return all(_is_missing(v) or (isinstance(v, numbers.Number) and not isinstance(v, bool))
               for v in array.ravel().tolist())


def _host_array(y):
    """``y`` as a NumPy array: tensors copied to the host, masked entries as None,
    pandas labels as objects (missing ones as NaN or ``pandas.NA``)."""
    if _library(y) != "numpy":
        return to_numpy(y)
    if np.ma.isMaskedArray(y):
        array = np.ma.getdata(y).astype(object)
        array[np.ma.getmaskarray(y)] = None
        return array
    return np.asarray(y)


def _is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # noqa: PLR0124  (NaN; pandas.NA raises TypeError)
    except TypeError:
        return True


def _codes(y, name):
    array = _host_array(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be one-dimensional (one label per sample), got shape "
            f"{array.shape}."
        )
    if array.dtype.kind in "biufUS":       # NumPy's own sort: fast, NaN the only gap
        missing = np.isnan(array) if array.dtype.kind == "f" else np.zeros(len(array), bool)
        codes = np.full(len(array), np.nan)
        codes[~missing] = np.unique(array[~missing], return_inverse=True)[1]
        return codes
    labels = array.tolist()
    missing = np.array([_is_missing(v) for v in labels], dtype=bool)
    present = [v for v, m in zip(labels, missing) if not m]
    try:
        classes = sorted(set(present))
    except TypeError:                               # mixed label types
        classes = list(dict.fromkeys(present))
    code_of = {label: float(code) for code, label in enumerate(classes)}
    return np.array([np.nan if m else code_of[v] for v, m in zip(labels, missing)],
                    dtype=np.float64)


def _distinct_values(y):
    """Number of distinct finite values of a numeric ``y``, whether they are all
    integers, and how many finite values there are (``(3, False, n)`` as soon as
    its first values show three distinct ones, not all integers: a measurement)."""
    array = _host_array(y)
    if np.iscomplexobj(array):          # check_samples explains
        return 0, False, 0
    head = _finite_floats(array.ravel()[:1024])
    if np.unique(head).size > 2 and not np.all(head == np.round(head)):
        return 3, False, array.size
    array = _finite_floats(array.ravel())
    return (np.unique(array).size, bool(np.all(array == np.round(array))),
            int(array.size))


def _finite_floats(array):
    if array.dtype.kind == "O":
        array = np.array([np.nan if _is_missing(v) else float(v) for v in array])
    array = np.asarray(array, dtype=np.float64)
    return array[np.isfinite(array)]
