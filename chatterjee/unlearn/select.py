"""Rules that choose which parameter slices a removal updates."""

import warnings

import numpy as np

from ..foci import lfoci
from .slices import Slice

__all__ = ["SELECTIONS", "cap_slices", "lfoci_slices", "rank_by_gradient"]

SELECTIONS = ("lfoci", "gradient", "random", "full")


def lfoci_slices(activations, losses, column_slices, *, max_slices=None, random_state=None):
    """The slices whose activations L-FOCI selects for the loss, in selection order.

    A slice with several activation columns (a module called more than once) is one
    grouped candidate. Constant columns (units the perturbation does not move) are
    never selected.

    Parameters
    ----------
    activations : ndarray of shape (n_copies, n_columns)
    losses : ndarray of shape (n_copies,)
    column_slices : list of Slice
        The slice of each column.
    max_slices : int, optional
        Cap on the number selected.
    random_state : numpy.random.Generator

    Returns
    -------
    list of Slice
    """
    candidates = sorted(set(column_slices))
    group_of = {s: g for g, s in enumerate(candidates)}
    grouped = len(candidates) < len(column_slices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant units and a flat loss are expected
        result = lfoci(np.asarray(activations, dtype=np.float64),
                       np.asarray(losses, dtype=np.float64), y_type="continuous",
                       groups=[group_of[s] for s in column_slices] if grouped else None,
                       max_features=max_slices, random_state=random_state)
    if grouped:
        return [candidates[g] for g in result.selected]
    return [column_slices[j] for j in result.selected]


def rank_by_gradient(slice_map, gradients):
    """Slices in decreasing order of the norm of a gradient restricted to them.

    Parameters
    ----------
    slice_map : SliceMap
    gradients : dict of str to Tensor
        A gradient for each parameter name (missing names count as zero).

    Returns
    -------
    list of Slice
    """
    norms = []
    for s in slice_map.slices:
        layer = slice_map.layers[s.module]
        total = 0.0
        for name in (layer.weight, layer.bias):
            if name is not None and name in gradients:
                total += float((gradients[name][s.unit].double() ** 2).sum())
        norms.append(total)
    order = np.argsort(-np.asarray(norms), kind="stable")
    return [slice_map.slices[i] for i in order]


def cap_slices(ranked, slice_map, *, max_slices=None, max_parameters=None):
    """Take slices in order while they fit the caps (a slice too large is skipped; the
    first slice is always taken).

    Parameters
    ----------
    ranked : list of Slice
    slice_map : SliceMap
    max_slices, max_parameters : int, optional

    Returns
    -------
    list of Slice
    """
    chosen, used = [], 0
    for s in ranked:
        if max_slices is not None and len(chosen) >= max_slices:
            break
        size = slice_map.size(s)
        if chosen and max_parameters is not None and used + size > max_parameters:
            continue
        chosen.append(s)
        used += size
    return chosen


def check_explicit(selection, slice_map):
    """Validate a user-given list of slices (``Slice`` or ``(module, unit)`` pairs)."""
    slices = []
    for item in selection:
        if not isinstance(item, Slice):
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise ValueError("an explicit selection is a list of Slice objects or "
                                 f"(module_name, unit) pairs; got {item!r}")
            item = Slice(str(item[0]), int(item[1]))
        slice_map.index(item)
        slices.append(item)
    if not slices:
        raise ValueError("the explicit selection is empty")
    return list(dict.fromkeys(slices))
