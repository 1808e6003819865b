"""chatterjee: rank-based conditional dependence.

Chatterjee's xi, Azadkia and Chatterjee's CODEC T(Y, Z | X) and its randomized
variant L-CODEC, FOCI and L-FOCI forward selection, and scikit-learn selectors. Public names are loaded on first use, so ``import chatterjee`` is
cheap and imports neither SciPy's heavy modules nor torch or cupy.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "xi": "chatterjee.xi",
    "codec": "chatterjee.codec",
    "lcodec": "chatterjee.lcodec",
    "foci": "chatterjee.foci",
    "lfoci": "chatterjee.foci",
    "FociResult": "chatterjee.foci",
    "FOCISelector": "chatterjee.selectors",
    "LFOCISelector": "chatterjee.selectors",
    "XiResult": "chatterjee._results",
    "CodecResult": "chatterjee._results",
    "ConstantInputWarning": "chatterjee._validation",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chatterjee' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
