"""chatterjee: rank-based conditional dependence.

Chatterjee's xi, Azadkia and Chatterjee's CODEC T(Y, Z | X) and its randomized
variant L-CODEC, FOCI and L-FOCI forward selection, scikit-learn selectors, and
Markov blankets.
Importing the package loads NumPy only: SciPy's and scikit-learn's heavy modules are
loaded on first use, torch and cupy never unless asked for.
"""

import importlib

# The functions share their modules' names: import them here, eagerly (they only
# need NumPy), so that ``chatterjee.codec`` is always the function, never the module.
from ._results import CodecResult, XiResult
from ._validation import ConstantInputWarning
from .blanket import BlanketResult, markov_blanket, markov_blankets, plot_blanket_graph
from .codec import codec
from .foci import FociResult, foci, lfoci
from .lcodec import lcodec
from .xi import xi

__version__ = "0.1.0"

_LAZY = {
    "FOCISelector": "chatterjee.selectors",
    "LFOCISelector": "chatterjee.selectors",
}

__all__ = [
    "BlanketResult",
    "CodecResult",
    "ConstantInputWarning",
    "FOCISelector",
    "FociResult",
    "LFOCISelector",
    "XiResult",
    "codec",
    "foci",
    "lcodec",
    "lfoci",
    "markov_blanket",
    "markov_blankets",
    "plot_blanket_graph",
    "xi",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chatterjee' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
