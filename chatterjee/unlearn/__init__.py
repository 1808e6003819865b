"""Deep unlearning: remove training samples from a trained PyTorch model.

:class:`Unlearner` updates the parameter slices that L-FOCI finds most dependent on the
samples to remove (Mehta et al., CVPR 2022) by a block Newton step on the retained
objective, with optional calibrated noise. :mod:`~chatterjee.unlearn.metrics` and
:mod:`~chatterjee.unlearn.baselines` hold what is needed to judge the result.

Needs torch (the ``torch`` extra: ``pip install -e ".[torch]"`` in a clone);
``import chatterjee`` does not import this subpackage.
"""

from . import baselines, metrics
from .noise import RemovalBudget, guo_constant, guo_removal_budget, sekhari_noise_std
from .perturb import gaussian_perturbation, token_replacement
from .slices import Slice, SliceMap
from .unlearner import ForgetReport, Unlearner

__all__ = [
           "ForgetReport",
           "RemovalBudget",
           "Slice",
           "SliceMap",
           "Unlearner",
           "baselines",
           "gaussian_perturbation",
           "guo_constant",
           "guo_removal_budget",
           "metrics",
           "sekhari_noise_std",
           "token_replacement",
]
