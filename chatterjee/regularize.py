"""Spurious-feature regularization: adversarial heads on the attributes L-FOCI selects.

Mehta et al. (CVPR 2022, section 6) regularize a network against spurious attributes
with gradient-reversal discriminators, but only for the attributes in the Markov
blanket of the target among all attributes: those are the ones a network can use as
shortcuts. :func:`train_with_adversaries` trains a network with such heads; by
default its encoder uses a bounded "confusion" objective instead of the plain
reversal, which did not remove the shortcut in our digits experiment
(``docs/spurious.md``). This module needs torch (the ``torch`` extra);
importing ``chatterjee`` does not import it.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from .blanket import markov_blanket

__all__ = ["AdversarialFit", "AdversarialHeads", "GradientReversal", "reversal_schedule",
           "select_spurious_attributes", "train_with_adversaries"]


def select_spurious_attributes(attributes, target, *, randomized=True, random_state=None,
                               **options):
    """The attributes to regularize against: the target's Markov blanket among them.

    Parameters
    ----------
    attributes : array_like of shape (n_samples, n_attributes)
        Attribute values (binary or discrete attributes are typical; L-FOCI breaks
        their ties).
    target : array_like of shape (n_samples,)
        The label the network predicts (class codes or names). It is compared as a
        categorical response (``y_type='categorical'``, see
        :func:`chatterjee.codec`), so an attribute that splits the classes into
        non-contiguous sets (odd and even digits, say) is seen as well as a
        threshold of the codes. Pass ``y_type='continuous'`` in ``options`` for
        an ordered target.
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
    options.setdefault("y_type", "categorical")
    result = markov_blanket(attributes, target, randomized=randomized,
                            random_state=random_state, **options)
    return result.blanket_columns


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



def reversal_schedule(progress, max_alpha=1.0, gamma=10.0):
    """Reversal strength that ramps from 0 to ``max_alpha`` over training (DANN).

    ``max_alpha * (2 / (1 + exp(-gamma * progress)) - 1)``, the schedule of Ganin et
    al. (2016): the adversaries get to learn the attributes before the feature
    extractor is pushed hard to hide them.

    Parameters
    ----------
    progress : float
        Fraction of training done, in [0, 1].
    max_alpha : float, default=1.0
        Strength reached at the end (>= 0).
    gamma : float, default=10.0
        Steepness of the ramp (> 0).

    Returns
    -------
    float
        The reversal strength at ``progress``.

    Examples
    --------
    >>> from chatterjee.regularize import reversal_schedule
    >>> [round(reversal_schedule(p, max_alpha=2.0), 3) for p in (0.0, 0.1, 0.5, 1.0)]
    [0.0, 0.924, 1.973, 2.0]
    """
    if not 0 <= progress <= 1:
        raise ValueError(f"`progress` must be in [0, 1], got {progress!r}.")
    if not max_alpha >= 0:
        raise ValueError(f"`max_alpha` must be >= 0, got {max_alpha!r}.")
    if not gamma > 0:
        raise ValueError(f"`gamma` must be > 0, got {gamma!r}.")
    return float(max_alpha * (2.0 / (1.0 + np.exp(-gamma * progress)) - 1.0))


class AdversarialHeads(torch.nn.Module):
    """Gradient-reversal classifiers, one per selected attribute, on shared features.

    ``heads(features)`` returns one logit tensor per attribute; ``heads.loss(features,
    attributes)`` returns the summed cross-entropy. Add that loss to the task loss:
    the heads learn to predict the attributes while the reversed gradients push the
    feature extractor to forget them.

    With ``n_labels`` set, each head also reads the one-hot task label
    (``heads(features, labels)``): the heads can then only exploit what the features
    say about an attribute *beyond* the label, and the feature extractor is pushed
    towards features independent of the attribute given the label. Use it for
    spurious attributes, which are correlated with the label: an unconditional head
    predicts them from the label information itself, and hiding them would mean
    hiding the label.

    Parameters
    ----------
    n_features : int
        Width of the features the heads read.
    n_classes : sequence of int
        Number of levels of each selected attribute (its values must be 0..k-1).
    alpha : float, default=1.0
        Gradient-reversal strength (settable later as ``heads.alpha``).
    hidden : int, default=32
        Width of each head's hidden layer.
    n_labels : int, default=None
        Number of task classes the heads are conditioned on; None: unconditional.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.regularize import AdversarialHeads
    >>> heads = AdversarialHeads(8, [2, 3])
    >>> [logits.shape for logits in heads(torch.zeros(5, 8))]
    [torch.Size([5, 2]), torch.Size([5, 3])]
    >>> conditional = AdversarialHeads(8, [2], n_labels=10)
    >>> conditional(torch.zeros(5, 8), torch.arange(5))[0].shape
    torch.Size([5, 2])
    """

    def __init__(self, n_features, n_classes, alpha=1.0, hidden=32, n_labels=None):
        super().__init__()
        if len(n_classes) == 0 or min(n_classes) < 2:
            raise ValueError("`n_classes` needs at least one attribute with >= 2 levels.")
        if n_labels is not None and n_labels < 2:
            raise ValueError(f"`n_labels` must be None or >= 2, got {n_labels!r}.")
        self.n_labels = n_labels
        self.reversal = GradientReversal(alpha)
        width = n_features + (n_labels or 0)
        self.heads = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, k))
            for k in n_classes
        )

    @property
    def alpha(self):
        """Current gradient-reversal strength."""
        return self.reversal.alpha

    @alpha.setter
    def alpha(self, value):
        if not value >= 0:
            raise ValueError(f"`alpha` must be >= 0, got {value!r}.")
        self.reversal.alpha = float(value)

    def forward(self, features, labels=None, reverse=True):
        inputs = self.reversal(features) if reverse else features
        if self.n_labels is not None:
            if labels is None:
                raise ValueError("These heads are conditioned on the label: pass `labels`.")
            onehot = torch.nn.functional.one_hot(labels.long(), self.n_labels)
            inputs = torch.cat([inputs, onehot.to(inputs.dtype)], dim=1)
        return [head(inputs) for head in self.heads]

    def loss(self, features, attributes, labels=None):
        """Summed cross-entropy of the heads; ``attributes`` has one column per head."""
        return sum(
            torch.nn.functional.cross_entropy(logits, attributes[:, k].long())
            for k, logits in enumerate(self(features, labels))
        )


@dataclass
class AdversarialFit:
    """Result of :func:`train_with_adversaries`.

    Attributes
    ----------
    heads : AdversarialHeads or None
        The trained adversaries (None when no attribute was regularized).
    alphas : list of float
        Reversal strength used in each epoch.
    task_loss : list of float
        Mean task cross-entropy of each epoch.
    adversary_loss : list of float
        Mean summed cross-entropy of the heads in each epoch (NaN without heads).
    """

    heads: object
    alphas: list = field(default_factory=list)
    task_loss: list = field(default_factory=list)
    adversary_loss: list = field(default_factory=list)


def train_with_adversaries(encoder, classifier, x, y, attributes=None, *, selected=(),
                           objective="confusion", max_alpha=1.0, schedule="dann",
                           conditional=True, adversary_steps=1, epochs=30, batch_size=64,
                           lr=3e-3, hidden=32, random_state=None):
    """Train ``classifier(encoder(x))`` on ``y`` with adversaries on some attributes.

    One :class:`AdversarialHeads` head per selected attribute learns to predict it
    from the encoder's features (and the label, when ``conditional``); the encoder
    is trained on the task loss plus ``alpha`` times an adversarial term:

    * ``objective='reversal'``: the paper's gradient reversal. Encoder, classifier
      and heads take one joint step on task loss + heads' cross-entropy, the
      reversal layer flipping the heads' gradient into the encoder. The encoder
      *maximizes* the heads' cross-entropy, which it can do by making the heads
      confidently wrong rather than uninformed; in our experiments the attribute
      stayed readable from the features (see ``docs/spurious.md``).
    * ``objective='confusion'`` (default): the encoder minimizes the cross-entropy
      of the heads' predictions against the attribute's training frequencies
      (given the label, when ``conditional``), which is smallest when the heads
      can do no better than those frequencies; the heads are trained separately,
      on detached features. The term is bounded, so the game does not diverge
      (Alvi et al., 2018, "Turning a blind eye").

    ``adversary_steps`` head updates are made per minibatch (with 'reversal', the
    first is the joint step). With no attribute selected the same loop trains the
    plain network, so that every arm of a comparison gets the same budget.
    ``encoder`` and ``classifier`` are trained in place (Adam).

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps ``x`` to a 2-d feature tensor.
    classifier : torch.nn.Module
        Maps the features to task logits.
    x : torch.Tensor
        Inputs, first dimension the samples.
    y : torch.Tensor of int
        Task labels, 0..n_labels-1.
    attributes : torch.Tensor of int of shape (n_samples, n_attributes), default=None
        Attribute values, 0..k-1 in each column; needed when ``selected`` is not empty.
    selected : sequence of int, default=()
        Columns of ``attributes`` to regularize against, e.g. from
        :func:`select_spurious_attributes`.
    objective : {'confusion', 'reversal'}, default='confusion'
        The encoder's adversarial term (see above).
    max_alpha : float, default=1.0
        Weight of the adversarial term (its final value under a schedule).
    schedule : {'dann', 'constant'}, default='dann'
        'dann' ramps the weight with :func:`reversal_schedule` over the epochs;
        'constant' uses ``max_alpha`` throughout.
    conditional : bool, default=True
        Condition the heads on the task label (see :class:`AdversarialHeads`).
    adversary_steps : int, default=1
        Head updates per minibatch (>= 1).
    epochs, batch_size : int, default=30, 64
        Passes over the data and minibatch size.
    lr : float, default=3e-3
        Adam learning rate, for all parts.
    hidden : int, default=32
        Width of the heads' hidden layer.
    random_state : None or int, default=None
        Seeds the heads' initialization and the minibatch order.

    Returns
    -------
    AdversarialFit

    Examples
    --------
    >>> import torch
    >>> from chatterjee.regularize import train_with_adversaries
    >>> g = torch.Generator().manual_seed(0)
    >>> a = torch.randint(0, 2, (200, 2), generator=g)
    >>> y = a[:, 0].clone()                     # the label is attribute 0
    >>> x = torch.cat([a.float(), torch.randn(200, 3, generator=g)], dim=1)
    >>> _ = torch.manual_seed(0)
    >>> encoder, classifier = torch.nn.Linear(5, 4), torch.nn.Linear(4, 2)
    >>> fit = train_with_adversaries(encoder, classifier, x, y, a, selected=[1],
    ...                              epochs=3, random_state=0)
    >>> len(fit.task_loss), round(fit.alphas[-1], 3)
    (3, 1.0)
    """
    if objective not in ("confusion", "reversal"):
        raise ValueError(f"`objective` must be 'confusion' or 'reversal', got {objective!r}.")
    if schedule not in ("dann", "constant"):
        raise ValueError(f"`schedule` must be 'dann' or 'constant', got {schedule!r}.")
    if adversary_steps < 1:
        raise ValueError(f"`adversary_steps` must be >= 1, got {adversary_steps!r}.")
    selected = [int(k) for k in selected]
    y = y.long()
    n_labels = int(y.max()) + 1
    generator = torch.Generator().manual_seed(
        int(np.random.default_rng(random_state).integers(2**31)))
    heads = None
    parameters = [*encoder.parameters(), *classifier.parameters()]
    if selected:
        if attributes is None:
            raise ValueError("`attributes` is needed when `selected` is not empty.")
        attributes = attributes[:, selected].long()
        levels = [max(int(attributes[:, k].max()) + 1, 2) for k in range(len(selected))]
        with torch.no_grad():
            width = encoder(x[:2]).shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
            heads = AdversarialHeads(width, levels, alpha=0.0, hidden=hidden,
                                     n_labels=n_labels if conditional else None)
        head_optimizer = torch.optim.Adam(heads.parameters(), lr=lr)
        if objective == "reversal":
            parameters += list(heads.parameters())
        else:
            priors = _attribute_frequencies(attributes, y if conditional else None,
                                            levels, n_labels)
    optimizer = torch.optim.Adam(parameters, lr=lr)
    fit = AdversarialFit(heads)
    for epoch in range(epochs):
        alpha = max_alpha if schedule == "constant" else \
            reversal_schedule(epoch / max(epochs - 1, 1), max_alpha)
        task_total, adversary_total, n_batches = 0.0, 0.0, 0
        for batch in torch.randperm(len(y), generator=generator).split(batch_size):
            features = encoder(x[batch])
            loss = torch.nn.functional.cross_entropy(classifier(features), y[batch])
            task_total += float(loss.detach())
            extra_steps = 0
            if heads is not None:
                labels = y[batch] if conditional else None
                if objective == "reversal":
                    heads.alpha = alpha
                    adversary = heads.loss(features, attributes[batch], labels)
                    extra_steps = adversary_steps - 1
                else:
                    logits = heads(features, labels, reverse=False)
                    adversary = sum(
                        -(prior[y[batch] if conditional else 0]
                          * torch.log_softmax(logit, dim=1)).sum(dim=1).mean()
                        for prior, logit in zip(priors, logits))
                    adversary = alpha * adversary
                    extra_steps = adversary_steps
                adversary_total += float(adversary.detach())
                loss = loss + adversary
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for _ in range(extra_steps):
                head_optimizer.zero_grad()
                heads.loss(features.detach(), attributes[batch], labels).backward()
                head_optimizer.step()
            n_batches += 1
        fit.alphas.append(alpha)
        fit.task_loss.append(task_total / n_batches)
        fit.adversary_loss.append(adversary_total / n_batches if heads is not None
                                  else float("nan"))
    return fit


def _attribute_frequencies(attributes, labels, levels, n_labels):
    """Per attribute, a (n_labels, k) (or (1, k) without labels) table of P(A = a | Y)."""
    rows = labels if labels is not None else torch.zeros(len(attributes), dtype=torch.long)
    n_rows = n_labels if labels is not None else 1
    tables = []
    for k, n_levels in enumerate(levels):
        counts = torch.zeros(n_rows, n_levels)
        counts.index_put_((rows, attributes[:, k]), torch.ones(len(rows)), accumulate=True)
        tables.append((counts + 1e-3) / (counts + 1e-3).sum(dim=1, keepdim=True))
    return tables
