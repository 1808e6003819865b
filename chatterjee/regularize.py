"""Spurious-feature regularization: adversarial heads on the attributes L-FOCI selects.

Mehta et al. (CVPR 2022, section 6) regularize a network against spurious attributes
with gradient-reversal discriminators, but only for the attributes in the Markov
blanket of the target among all attributes: those are the ones a network can use as
shortcuts. This module needs torch (``pip install chatterjee[torch]``); importing
``chatterjee`` does not import it.
"""

import numpy as np
import torch

from .blanket import markov_blanket

__all__ = ["AdversarialHeads", "GradientReversal", "select_spurious_attributes"]


def select_spurious_attributes(attributes, target, *, randomized=True, random_state=None,
                               **options):
    """The attributes to regularize against: the target's Markov blanket among them.

    Parameters
    ----------
    attributes : array_like of shape (n_samples, n_attributes)
        Attribute values (binary or discrete attributes are typical; L-FOCI breaks
        their ties).
    target : array_like of shape (n_samples,)
        The label the network predicts (numeric codes for a classification).
    randomized : bool, default=True
        Use L-FOCI (the paper's choice for discrete attributes).
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the search.
    **options
        Passed to :func:`chatterjee.markov_blanket`.

    Returns
    -------
    ndarray of int
        Column indices of the selected attributes, sorted.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee.regularize import select_spurious_attributes
    >>> rng = np.random.default_rng(0)
    >>> label = rng.integers(0, 2, size=2000)
    >>> shortcut = np.where(rng.random(2000) < 0.9, label, 1 - label)  # follows the label
    >>> unrelated = rng.integers(0, 2, size=(2000, 3))
    >>> select_spurious_attributes(np.column_stack([unrelated, shortcut]), label,
    ...                            random_state=0)
    array([3])
    """
    result = markov_blanket(attributes, target, randomized=randomized,
                            random_state=random_state, **options)
    return np.asarray(result.blanket, dtype=np.int64)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs, alpha):
        ctx.alpha = alpha
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.alpha * grad_output, None


class GradientReversal(torch.nn.Module):
    """Identity in the forward pass; multiplies gradients by ``-alpha`` going back.

    Placed between a feature extractor and a head that predicts an attribute, it
    makes the extractor *remove* the information the head uses (Ganin and
    Lempitsky, 2015).

    Parameters
    ----------
    alpha : float, default=1.0
        Strength of the reversal (>= 0).

    Examples
    --------
    >>> import torch
    >>> from chatterjee.regularize import GradientReversal
    >>> x = torch.ones(3, requires_grad=True)
    >>> GradientReversal(alpha=0.5)(x).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """

    def __init__(self, alpha=1.0):
        super().__init__()
        if not alpha >= 0:
            raise ValueError(f"`alpha` must be >= 0, got {alpha!r}.")
        self.alpha = float(alpha)

    def forward(self, x):
        return _ReverseGradient.apply(x, self.alpha)


class AdversarialHeads(torch.nn.Module):
    """Gradient-reversal classifiers, one per selected attribute, on shared features.

    ``heads(features)`` returns one logit tensor per attribute; ``heads.loss(features,
    attributes)`` returns the summed cross-entropy. Add that loss to the task loss:
    the heads learn to predict the attributes while the reversed gradients push the
    feature extractor to forget them.

    Parameters
    ----------
    n_features : int
        Width of the features the heads read.
    n_classes : sequence of int
        Number of levels of each selected attribute (its values must be 0..k-1).
    alpha : float, default=1.0
        Gradient-reversal strength.
    hidden : int, default=32
        Width of each head's hidden layer.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.regularize import AdversarialHeads
    >>> heads = AdversarialHeads(8, [2, 3])
    >>> [logits.shape for logits in heads(torch.zeros(5, 8))]
    [torch.Size([5, 2]), torch.Size([5, 3])]
    """

    def __init__(self, n_features, n_classes, alpha=1.0, hidden=32):
        super().__init__()
        if len(n_classes) == 0 or min(n_classes) < 2:
            raise ValueError("`n_classes` needs at least one attribute with >= 2 levels.")
        self.reversal = GradientReversal(alpha)
        self.heads = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(n_features, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, k))
            for k in n_classes
        )

    def forward(self, features):
        reversed_features = self.reversal(features)
        return [head(reversed_features) for head in self.heads]

    def loss(self, features, attributes):
        """Summed cross-entropy of the heads; ``attributes`` has one column per head."""
        return sum(
            torch.nn.functional.cross_entropy(logits, attributes[:, k].long())
            for k, logits in enumerate(self(features))
        )
