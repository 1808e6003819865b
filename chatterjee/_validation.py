"""Turning user input into checked float64 arrays, and seeds into Generators.

Every public function funnels its data through :func:`check_samples`, so all of them
accept the same inputs (lists, NumPy arrays, pandas objects, PyTorch tensors, CuPy
arrays, any numeric dtype) and reject the same bad ones with messages that name the
offending argument. The checked arrays belong to the chosen backend's library
(:func:`check_backend`): PyTorch and CuPy data stay on their device, as float64.
"""

import importlib
import numbers
import warnings

import numpy as np
from array_api_compat import array_namespace, is_cupy_array, is_torch_array

MIN_SAMPLES = 3
NAN_POLICIES = ("propagate", "raise", "omit")
BACKENDS = ("auto", "numpy", "cupy", "torch")


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
        if random_state is not None and random_state < 0:
            raise ValueError(f"`random_state` must be a non-negative int, got {random_state}.")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    raise TypeError(
        "`random_state` must be None, an int, a numpy.random.Generator or a "
        f"numpy.random.RandomState, not {type(random_state).__name__}."
    )


def check_noise_scale(noise_scale):
    """Validate L-CODEC's ``noise_scale``: a real number in (0, 0.1]."""
    if isinstance(noise_scale, bool) or not isinstance(noise_scale, numbers.Real) \
            or not 0 < noise_scale <= 0.1:
        raise ValueError(f"`noise_scale` must be a number in (0, 0.1], got {noise_scale!r}.")
    return float(noise_scale)


def check_workers(workers):
    """Validate ``workers`` (threads of a k-d tree query): -1 (all cores) or >= 1."""
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) \
            or not (workers == -1 or workers >= 1):
        raise ValueError(
            f"`workers` must be -1 (all cores) or a positive integer, got {workers!r}."
        )
    return int(workers)


def check_n_jobs(n_jobs):
    """Validate joblib's ``n_jobs``: None or a nonzero integer (negative: all cores but
    ``-n_jobs - 1``)."""
    if n_jobs is not None and (isinstance(n_jobs, bool)
                               or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ValueError(f"`n_jobs` must be None or a nonzero integer, got {n_jobs!r}.")
    return n_jobs


def _on_cpu(value):
    """True for a PyTorch tensor in CPU memory."""
    return is_torch_array(value) and value.device.type == "cpu"


def _library(value):
    """'torch' or 'cupy' for a tensor or array of those libraries, else 'numpy'."""
    if is_torch_array(value):
        return "torch"
    if is_cupy_array(value):
        return "cupy"
    return "numpy"


def check_backend(backend, *values):
    """The library that does the work: ``backend``, or for 'auto' the inputs' own.

    Parameters
    ----------
    backend : {'auto', 'numpy', 'cupy', 'torch'}
        'auto' follows the inputs: PyTorch tensors on an accelerator (CUDA, MPS) give
        'torch', CuPy arrays 'cupy', anything else 'numpy' — including PyTorch tensors
        in CPU memory, which the NumPy backend reads without a copy and searches
        several times faster (compiled k-d trees against the device search).
    *values : objects
        The inputs (None is skipped).

    Returns
    -------
    str
        'numpy', 'cupy' or 'torch'.
    """
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        found = {_library(v) for v in values if v is not None and not _on_cpu(v)}
        found -= {"numpy"}
        if len(found) > 1:
            raise TypeError(
                "The inputs mix PyTorch tensors and CuPy arrays; pass one kind, or "
                "choose `backend`."
            )
        return found.pop() if found else "numpy"
    if backend != "numpy":
        try:
            importlib.import_module(backend)
        except ImportError:
            raise ImportError(
                f"backend={backend!r} needs the {backend} package, which is not installed."
            ) from None
    return backend


def to_numpy(array):
    """A NumPy copy (or view) of a NumPy, PyTorch or CuPy array.

    PyTorch floats that NumPy has no type for (bfloat16, float8) become float64.
    """
    if is_torch_array(array):
        import torch

        array = array.detach()
        if array.is_floating_point() and array.dtype not in (torch.float16, torch.float32,
                                                             torch.float64):
            array = array.to(torch.float64)
        return array.cpu().numpy()
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def _from_numpy(array, backend):
    """A float64 NumPy array as an array of ``backend`` (PyTorch: its default device)."""
    if backend == "numpy":
        return array
    return importlib.import_module(backend).asarray(array)


def _to_numeric_array(value, name, backend="numpy"):
    if value is None:
        raise TypeError(f"`{name}` is required, got None.")
    module = type(value).__module__
    if module.startswith("scipy.sparse") or hasattr(value, "tocsr"):
        raise TypeError(f"`{name}` is sparse; pass a dense array (e.g. `{name}.toarray()`).")
    library = _library(value)
    if library == "torch" and value.device.type == "meta":
        raise ValueError(f"`{name}` is a meta tensor, which holds no values.")
    if library != "numpy":
        if library != backend:
            return _to_numeric_array(to_numpy(value), name, backend)
        xp = array_namespace(value)
        if xp.isdtype(value.dtype, "complex floating"):
            raise TypeError(f"`{name}` is complex; only real numbers are supported.")
        if library == "torch":
            value = value.detach()
        return xp.astype(value, xp.float64)
    return _from_numpy(_to_numpy_float64(value, name), backend)


def _to_numpy_float64(value, name):
    if np.ma.isMaskedArray(value):
        # Masked entries are missing values: NaN, then ``nan_policy`` decides.
        array = _to_numpy_float64(np.ma.getdata(value), name).copy()
        array[np.ma.getmaskarray(value)] = np.nan
        return array
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"`{name}` could not be read as an array: {exc}") from None
    if np.iscomplexobj(array):
        raise TypeError(f"`{name}` is complex; only real numbers are supported.")
    if array.dtype.kind in "biuf":
        with np.errstate(over="ignore"):  # overflow is reported below, naming `name`
            converted = array.astype(np.float64, copy=False)
        _check_float64_keeps(array, converted, name)
        return converted
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except (ValueError, TypeError):
            pass
    raise TypeError(f"`{name}` must be numeric, got dtype {array.dtype}.")


def _check_float64_keeps(array, converted, name):
    """Refuse values that float64 cannot hold: ranks and distances would be wrong."""
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        if np.any(np.isinf(converted) & np.isfinite(array)):
            raise ValueError(f"`{name}` holds values beyond the float64 range (1.8e308).")
    elif array.dtype.kind in "iu" and array.dtype.itemsize >= 8 and array.size:
        largest = max(abs(int(array.min())), abs(int(array.max())))
        if largest > 2**53 and np.unique(converted).size != np.unique(array).size:
            raise ValueError(
                f"`{name}` holds integers beyond 2**53 that float64 cannot tell apart; "
                "subtract an offset or rescale them first."
            )


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


def check_samples(arrays, *, nan_policy="propagate", min_samples=MIN_SAMPLES,
                  backend="numpy"):
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
    backend : {'numpy', 'cupy', 'torch'}
        The library of the checked arrays (see :func:`check_backend`). Tensors of
        that library stay on their device; other inputs are converted (to PyTorch's
        default device). Every dtype, float32 included, becomes float64.

    Returns
    -------
    checked : dict
        The same names mapped to float64 arrays of ``backend`` (C-contiguous for
        NumPy; absent ones to None).
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
        array = _as_column_block(_to_numeric_array(value, name, backend), name,
                                 matrix=matrix)
        if array.shape[0] == 0:
            raise ValueError(f"`{name}` is empty.")
        if n_rows is None:
            n_rows, first = array.shape[0], name
        elif array.shape[0] != n_rows:
            raise ValueError(
                f"`{first}` and `{name}` must have the same number of samples, got "
                f"{n_rows} and {array.shape[0]}."
            )
        xp = array_namespace(array)
        if bool(xp.any(xp.isinf(array))):
            raise ValueError(f"`{name}` contains infinite values.")
        checked[name] = array

    present = {name: a for name, a in checked.items() if a is not None}
    nan_rows = None
    for name, array in present.items():
        row_has_nan = xp.isnan(array) if array.ndim == 1 else xp.any(xp.isnan(array),
                                                                       axis=1)
        if nan_policy == "raise" and bool(xp.any(row_has_nan)):
            raise ValueError(f"`{name}` contains NaN (nan_policy='raise').")
        nan_rows = row_has_nan if nan_rows is None else nan_rows | row_has_nan
    has_nan = bool(xp.any(nan_rows))
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
        array = array + 0.0
        checked[name] = np.ascontiguousarray(array) if backend == "numpy" else array
    return checked, has_nan


def warn_constant(what, consequence="the coefficient is undefined and NaN is returned"):
    """Warn that the response does not vary, saying what is returned instead."""
    warnings.warn(
        f"{what}; {consequence}.",
        ConstantInputWarning,
        stacklevel=3,
    )
