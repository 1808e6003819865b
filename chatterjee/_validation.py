"""Turning user input into checked float64 arrays, and seeds into Generators.

Every public function funnels its data through :func:`check_samples`, so all of them
accept the same inputs (lists, NumPy arrays, pandas objects, any numeric dtype) and
reject the same bad ones with messages that name the offending argument.
"""

import numbers
import warnings

import numpy as np

MIN_SAMPLES = 3
NAN_POLICIES = ("propagate", "raise", "omit")


class ConstantInputWarning(RuntimeWarning):
    """The coefficient is undefined because the response does not vary."""


def check_random_state(random_state):
    """Turn ``random_state`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        ``None`` gives fresh OS entropy; an int seeds a new Generator; a Generator is
        used as it is (and advanced); a legacy ``RandomState`` is advanced once to
        seed a new Generator, so that repeated calls with the same instance differ,
        as in scikit-learn.

    Returns
    -------
    numpy.random.Generator
    """
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        if isinstance(random_state, bool):
            raise TypeError("`random_state` must be None, an int or a Generator, not bool.")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    raise TypeError(
        "`random_state` must be None, an int, a numpy.random.Generator or a "
        f"numpy.random.RandomState, not {type(random_state).__name__}."
    )


def _to_numeric_array(value, name):
    if value is None:
        raise TypeError(f"`{name}` is required, got None.")
    module = type(value).__module__
    if module.startswith("scipy.sparse") or hasattr(value, "tocsr"):
        raise TypeError(f"`{name}` is sparse; pass a dense array (e.g. `{name}.toarray()`).")
    if module.startswith(("torch", "cupy")):
        raise TypeError(
            f"`{name}` is a {module.split('.')[0]} array; convert it to NumPy first "
            "(GPU arrays are handled by the GPU backends, not by this function)."
        )
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"`{name}` could not be read as an array: {exc}") from None
    if np.iscomplexobj(array):
        raise TypeError(f"`{name}` is complex; only real numbers are supported.")
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False)
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except (ValueError, TypeError):
            pass
    raise TypeError(f"`{name}` must be numeric, got dtype {array.dtype}.")


def _as_column_block(array, name, *, matrix):
    """Shape a validated array as (n,) for a response or (n, d) for a feature block."""
    if matrix:
        if array.ndim == 1:
            return array[:, None]
        if array.ndim == 2:
            if array.shape[1] == 0:
                raise ValueError(f"`{name}` has no columns.")
            return array
        raise ValueError(f"`{name}` must be 1-D or 2-D, got {array.ndim} dimensions.")
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be one-dimensional (one value per sample), got shape "
            f"{array.shape}."
        )
    return array


def check_samples(arrays, *, nan_policy="propagate", min_samples=MIN_SAMPLES):
    """Validate paired samples given as ``{name: (value, is_matrix)}``.

    Parameters
    ----------
    arrays : dict
        Maps an argument name to ``(value, is_matrix)``. ``is_matrix`` False means a
        one-dimensional response, True a 1-D or 2-D block of features. A value of
        None with ``is_matrix`` True is skipped (an absent conditioning set).
    nan_policy : {'propagate', 'raise', 'omit'}
        What to do with NaN: return NaN, raise, or drop the rows that hold one.
    min_samples : int
        Fewest rows that are accepted after NaN rows are dropped.

    Returns
    -------
    checked : dict
        The same names mapped to C-contiguous float64 arrays (absent ones to None).
    has_nan : bool
        True when NaN remained and ``nan_policy`` is ``'propagate'``.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"`nan_policy` must be one of {NAN_POLICIES}, got {nan_policy!r}.")
    checked = {}
    n_rows = None
    first = None
    for name, (value, matrix) in arrays.items():
        if value is None and matrix:
            checked[name] = None
            continue
        array = _as_column_block(_to_numeric_array(value, name), name, matrix=matrix)
        if array.shape[0] == 0:
            raise ValueError(f"`{name}` is empty.")
        if n_rows is None:
            n_rows, first = array.shape[0], name
        elif array.shape[0] != n_rows:
            raise ValueError(
                f"`{first}` and `{name}` must have the same number of samples, got "
                f"{n_rows} and {array.shape[0]}."
            )
        if np.isinf(array).any():
            raise ValueError(f"`{name}` contains infinite values.")
        checked[name] = array

    present = {name: a for name, a in checked.items() if a is not None}
    nan_rows = np.zeros(n_rows, dtype=bool)
    for name, array in present.items():
        row_has_nan = np.isnan(array) if array.ndim == 1 else np.isnan(array).any(axis=1)
        if nan_policy == "raise" and row_has_nan.any():
            raise ValueError(f"`{name}` contains NaN (nan_policy='raise').")
        nan_rows |= row_has_nan
    has_nan = bool(nan_rows.any())
    if has_nan and nan_policy == "omit":
        keep = ~nan_rows
        present = {name: a[keep] for name, a in present.items()}
        has_nan = False
    n_left = next(iter(present.values())).shape[0]
    if n_left < min_samples:
        raise ValueError(
            f"At least {min_samples} samples are needed, got {n_left}"
            + (" after dropping rows with NaN." if nan_policy == "omit" else ".")
        )
    for name, array in present.items():
        # Adding 0.0 turns -0.0 into 0.0, so equal points are equal bit for bit.
        checked[name] = np.ascontiguousarray(array + 0.0)
    return checked, has_nan


def warn_constant(what, consequence="the coefficient is undefined and NaN is returned"):
    """Warn that the response does not vary, saying what is returned instead."""
    warnings.warn(
        f"{what}; {consequence}.",
        ConstantInputWarning,
        stacklevel=3,
    )
