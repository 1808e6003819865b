"""How well a model has forgotten: accuracies, membership inference, distances to retraining.

The metrics follow the evaluation protocol of SalUn / Unlearn-Sparse (forget, retain and
test accuracy, SVC membership-inference efficacy and their average gap to a retrained
model) and the loss attack of the NeurIPS 2023 unlearning challenge's starting kit.

For every metric the ideal value is the one the model *retrained without the forget set*
gets, not an extreme: forgetting more than retraining would (forget accuracy far below
test accuracy, membership efficacy near 1) is itself a visible trace of the removal.

Models are classifiers returning logits of shape ``(n, n_classes)``; a single logit
column (or a 1-D output) is read as the logit of class 1 in a binary problem. Data
arguments take any form :class:`~chatterjee.unlearn._data.TrainingData` takes. Models
are evaluated in ``eval()`` mode under ``torch.no_grad()`` and each module's own
training flag is restored afterwards.
"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score
from sklearn.svm import SVC

from .._validation import check_random_state
from ._data import TrainingData
from .slices import preserved_modes

__all__ = [
    "accuracy",
    "average_gap",
    "evaluate",
    "gap_closed",
    "membership_scores",
    "mia_efficacy",
    "parameter_distance",
    "simple_mia",
]

MIA_FEATURES = ("confidence", "loss", "entropy", "modified_entropy", "correctness")
EVALUATION_KEYS = ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy")


def _predict(model, data, n_samples=None):
    """Logits (as ``(n, n_classes)``, float64) and targets of the first ``n_samples``."""
    data = data if isinstance(data, TrainingData) else TrainingData(data)
    n_samples = data.n_samples if n_samples is None else min(n_samples, data.n_samples)
    device = next(model.parameters()).device
    logits, targets = [], []
    with preserved_modes(model), torch.no_grad():
        model.eval()
        for inputs, batch_targets in data.batches(torch.arange(n_samples)):
            logits.append(model(inputs.to(device)).detach().cpu())
            targets.append(batch_targets.cpu())
    logits = torch.cat(logits).to(torch.float64)
    if logits.ndim == 1 or logits.shape[1] == 1:
        logits = logits.reshape(-1, 1)
        logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
    return logits, torch.cat(targets).reshape(-1).long()


def _accuracy(logits, targets):
    return float((logits.argmax(dim=1) == targets).double().mean())


def _features(logits, targets, kind):
    """One membership feature per sample, as a ``(n, 1)`` NumPy array."""
    log_probs = torch.log_softmax(logits, dim=1)
    probs = log_probs.exp()
    true = torch.nn.functional.one_hot(targets, logits.shape[1]).bool()
    if kind == "confidence":
        values = probs[true]
    elif kind == "loss":
        values = -log_probs[true]
    elif kind == "entropy":
        values = -(probs * log_probs).sum(dim=1)
    elif kind == "modified_entropy":
        # Song & Mittal (2021): -(1 - p_y) log p_y - sum_{j != y} p_j log(1 - p_j)
        log_complement = torch.log1p(-probs.clamp(max=1 - 1e-16))
        values = (-(1 - probs) * log_probs * true
                  - probs * log_complement * ~true).sum(dim=1)
    elif kind == "correctness":
        values = (logits.argmax(dim=1) == targets).double()
    else:
        raise ValueError(f"features must be one of {MIA_FEATURES}; got {kind!r}")
    return values.numpy().reshape(-1, 1)


def accuracy(model, data):
    """Fraction of ``data`` that ``model`` classifies correctly.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    data : tuple of (Tensor, Tensor), Dataset or DataLoader
        Samples and their integer class labels.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.metrics import accuracy
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> model.weight.data = torch.eye(2)
    >>> inputs = torch.tensor([[1., 0.], [0., 1.], [3., 2.], [0., 5.]])
    >>> accuracy(model, (inputs, torch.tensor([0, 1, 1, 1])))
    0.75
    """
    return _accuracy(*_predict(model, data))


def _svc_efficacy(shadow_members, shadow_nonmembers, targets):
    """Fraction of ``targets`` an RBF SVC, fit on the shadow features, calls non-member."""
    features = np.concatenate([shadow_members, shadow_nonmembers])
    labels = np.concatenate([np.ones(len(shadow_members)), np.zeros(len(shadow_nonmembers))])
    attack = SVC(C=3, kernel="rbf", gamma="auto").fit(features, labels)
    return float(1 - attack.predict(targets).mean())


def mia_efficacy(model, forget, retain, test, *, features="confidence"):
    """Membership-inference efficacy on the forget set (SVC attack of SalUn / Unlearn-Sparse).

    An ``SVC(C=3, kernel="rbf", gamma="auto")`` is fit to tell members (the first
    ``len(test)`` retain samples, label 1) from non-members (the test samples, label 0)
    by one per-sample feature of the model's output; the efficacy is the fraction of the
    forget set it predicts to be non-members. The attack is deterministic.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    forget, retain, test : tuple of (Tensor, Tensor), Dataset or DataLoader
        Forget set, retain set (training members) and held-out test set.
    features : {"confidence", "loss", "entropy", "modified_entropy", "correctness"}
        The per-sample feature: softmax probability of the true label (what the papers
        report), cross-entropy of the true label, entropy of the softmax, modified
        entropy (Song & Mittal 2021), or 1 when the prediction is correct, else 0.

    Returns
    -------
    float
        Efficacy in [0, 1]. The target is the retrained model's efficacy, not 1: a
        value far above it means the forget set now looks *less* like training data
        than never-seen data does.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.metrics import mia_efficacy
    >>> labels = torch.arange(40) % 2
    >>> sure = (10.0 * torch.nn.functional.one_hot(labels)).double()  # memorised
    >>> unsure = 0.3 * sure                                           # never seen
    >>> echo = torch.nn.Linear(2, 2).double()
    >>> echo.weight.data, echo.bias.data = torch.eye(2).double(), torch.zeros(2).double()
    >>> mia_efficacy(echo, (sure, labels), (sure, labels), (unsure, labels))
    0.0
    >>> mia_efficacy(echo, (unsure, labels), (sure, labels), (unsure, labels))
    1.0
    """
    if features not in MIA_FEATURES:
        raise ValueError(f"features must be one of {MIA_FEATURES}; got {features!r}")
    test_logits, test_targets = _predict(model, test)
    retain_logits, retain_targets = _predict(model, retain, len(test_targets))
    forget_logits, forget_targets = _predict(model, forget)
    return _svc_efficacy(_features(retain_logits, retain_targets, features),
                         _features(test_logits, test_targets, features),
                         _features(forget_logits, forget_targets, features))


def simple_mia(model, forget, test, *, random_state=None):
    """Loss-based membership attack of the NeurIPS 2023 unlearning challenge starting kit.

    Per-sample cross-entropy losses of the forget set (label 1) and the test set
    (label 0), the larger set randomly subsampled to the size of the smaller, are fed to
    a ``LogisticRegression``; the score is its mean accuracy over a 10-split
    ``StratifiedShuffleSplit`` cross-validation.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    forget, test : tuple of (Tensor, Tensor), Dataset or DataLoader
        Forget set and held-out test set.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the subsampling and the cross-validation splits.

    Returns
    -------
    float
        Attack accuracy in [0, 1]. The target is the retrained model's value (about 0.5
        when forget and test samples are alike), not the lowest possible value.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.metrics import simple_mia
    >>> labels = torch.arange(40) % 2
    >>> sure = (10.0 * torch.nn.functional.one_hot(labels)).double()
    >>> echo = torch.nn.Linear(2, 2).double()
    >>> echo.weight.data, echo.bias.data = torch.eye(2).double(), torch.zeros(2).double()
    >>> simple_mia(echo, (sure, labels), (0.1 * sure, labels), random_state=0)
    1.0
    """
    rng = check_random_state(random_state)
    forget_losses = _features(*_predict(model, forget), "loss")
    test_losses = _features(*_predict(model, test), "loss")
    size = min(len(forget_losses), len(test_losses))
    forget_losses = forget_losses[rng.permutation(len(forget_losses))[:size]]
    test_losses = test_losses[rng.permutation(len(test_losses))[:size]]
    losses = np.concatenate([forget_losses, test_losses])
    members = np.concatenate([np.ones(size), np.zeros(size)])
    splits = StratifiedShuffleSplit(n_splits=10, random_state=int(rng.integers(2**31 - 1)))
    return float(cross_val_score(LogisticRegression(), losses, members, cv=splits,
                                 scoring="accuracy").mean())


def _scaled_confidence(logits, targets):
    """LiRA's logit-scaled confidence of the true class, ``log p_y - log(1 - p_y)``,
    computed as ``z_y - logsumexp(z_j, j != y)`` (no rounding of p near 1)."""
    true = logits.gather(1, targets[:, None])[:, 0]
    others = logits.scatter(1, targets[:, None], float("-inf"))
    return (true - torch.logsumexp(others, dim=1)).numpy()


def membership_scores(model, data, reference_models):
    """Per-example membership scores against models trained without the samples.

    The offline likelihood-ratio attack of Carlini et al. (LiRA, IEEE S&P 2022) with its
    global variance: for each sample, the logit-scaled confidence of its label,
    ``phi = log p_y - log(1 - p_y)``, under ``model`` is compared with its values under
    the ``reference_models``, all trained without the sample (different seeds):
    ``score = (phi - mean_i) / sd``, with ``mean_i`` the sample's mean over the
    references and ``sd`` the square root of the per-sample variances averaged over the
    samples (stable with few references). A score near 0 means the model is as
    confident on the sample as models that never saw it; a model trained on the sample
    scores high where it memorised it. For unlearning, ``data`` is the forget set and
    the references are retrained models: an unlearned model should score like one more
    of them, not lower (forgetting more than retraining is itself a trace). This is the
    one-sided test against "retrained" only; U-LiRA (Hayes et al., 2024) also fits the
    "unlearned" distribution by running the unlearning in shadow models that saw each
    sample, at tens of models per sample.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The samples to score (at least 2).
    reference_models : sequence of torch.nn.Module
        At least 2 classifiers trained without ``data``.

    Returns
    -------
    numpy.ndarray of shape (n_samples,)
        The scores; ``scipy.stats.norm.sf(score)`` is the one-sided p-value of "the
        model is like the references on this sample".

    Raises
    ------
    ValueError
        Fewer than 2 reference models, or references that agree exactly on every sample
        (no spread to compare with).

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.metrics import membership_scores
    >>> labels = torch.tensor([0, 1, 0, 1])
    >>> inputs = torch.nn.functional.one_hot(labels).double()
    >>> def scaled(scale):
    ...     layer = torch.nn.Linear(2, 2, bias=False).double()
    ...     layer.weight.data = scale * torch.eye(2).double()
    ...     return layer
    >>> references = [scaled(1.0), scaled(2.0), scaled(3.0)]
    >>> membership_scores(scaled(6.0), (inputs, labels), references).round(3)
    array([4., 4., 4., 4.])
    """
    reference_models = list(reference_models)
    if len(reference_models) < 2:
        raise ValueError("membership_scores needs at least 2 reference models, got "
                         f"{len(reference_models)}")
    phi = _scaled_confidence(*_predict(model, data))
    references = np.stack([_scaled_confidence(*_predict(reference, data))
                           for reference in reference_models])
    sd = float(np.sqrt(references.var(axis=0, ddof=1).mean()))
    if not sd > 0:
        raise ValueError("the reference models agree exactly on every sample: their "
                         "spread is 0, so no score can be computed")
    return (phi - references.mean(axis=0)) / sd


def evaluate(model, forget, retain, test, *, features="confidence"):
    """Forget, retain and test accuracy and MIA efficacy, in one pass over each set.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    forget, retain, test : tuple of (Tensor, Tensor), Dataset or DataLoader
        Forget set, retain set and held-out test set.
    features : str, default="confidence"
        Feature of the membership attack, see :func:`mia_efficacy`.

    Returns
    -------
    dict
        ``forget_accuracy``, ``retain_accuracy``, ``test_accuracy`` and
        ``mia_efficacy``, all in [0, 1]. Compare them to the retrained model's with
        :func:`average_gap`.
    """
    if features not in MIA_FEATURES:
        raise ValueError(f"features must be one of {MIA_FEATURES}; got {features!r}")
    forget_logits, forget_targets = _predict(model, forget)
    retain_logits, retain_targets = _predict(model, retain)
    test_logits, test_targets = _predict(model, test)
    shadow = len(test_targets)
    efficacy = _svc_efficacy(
        _features(retain_logits[:shadow], retain_targets[:shadow], features),
        _features(test_logits, test_targets, features),
        _features(forget_logits, forget_targets, features))
    return {
        "forget_accuracy": _accuracy(forget_logits, forget_targets),
        "retain_accuracy": _accuracy(retain_logits, retain_targets),
        "test_accuracy": _accuracy(test_logits, test_targets),
        "mia_efficacy": efficacy,
    }


def average_gap(evaluation, reference):
    """SalUn's "Avg. Gap": mean absolute difference of the four metrics, in percentage points.

    Parameters
    ----------
    evaluation, reference : dict
        Results of :func:`evaluate` for the unlearned and for the retrained model.

    Returns
    -------
    float
        ``100 * mean(|evaluation[k] - reference[k]|)`` over forget, retain and test
        accuracy and MIA efficacy; 0 means indistinguishable from retraining by these
        metrics.

    Examples
    --------
    >>> from chatterjee.unlearn.metrics import average_gap
    >>> retrained = {"forget_accuracy": 0.90, "retain_accuracy": 1.0,
    ...              "test_accuracy": 0.90, "mia_efficacy": 0.20}
    >>> round(average_gap(dict(retrained, forget_accuracy=0.98), retrained), 9)
    2.0
    """
    missing = [key for key in EVALUATION_KEYS if key not in evaluation or key not in reference]
    if missing:
        raise KeyError(f"both evaluations need the keys {EVALUATION_KEYS}; missing {missing}")
    return 100 * float(np.mean([abs(evaluation[key] - reference[key])
                                for key in EVALUATION_KEYS]))


def _flat_parameters(model_or_vector, name):
    if isinstance(model_or_vector, torch.nn.Module):
        return torch.cat([p.detach().reshape(-1).to(torch.float64).cpu()
                          for p in model_or_vector.parameters()])
    if isinstance(model_or_vector, torch.Tensor):
        return model_or_vector.detach().reshape(-1).to(torch.float64).cpu()
    raise TypeError(f"{name} must be a torch.nn.Module or a flat parameter tensor; "
                    f"got {type(model_or_vector).__name__}")


def parameter_distance(model_a, model_b):
    """Euclidean distance between the parameters of two models of the same architecture.

    Parameters
    ----------
    model_a, model_b : torch.nn.Module
        Models with the same named parameters and shapes (buffers such as BatchNorm
        running statistics are not parameters and are ignored).

    Returns
    -------
    float
        ``||w_a - w_b||_2`` over all parameters, computed in float64.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.metrics import parameter_distance
    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> a.weight.data, a.bias.data = torch.tensor([[0., 0.]]), torch.tensor([0.])
    >>> b.weight.data, b.bias.data = torch.tensor([[3., 0.]]), torch.tensor([4.])
    >>> parameter_distance(a, b)
    5.0
    """
    params_a, params_b = dict(model_a.named_parameters()), dict(model_b.named_parameters())
    if params_a.keys() != params_b.keys():
        raise ValueError(
            "the models have different parameters: "
            f"{sorted(params_a.keys() ^ params_b.keys())} are in only one of them")
    for key, value in params_a.items():
        if value.shape != params_b[key].shape:
            raise ValueError(f"parameter {key!r} has shape {tuple(value.shape)} in model_a "
                             f"and {tuple(params_b[key].shape)} in model_b")
    return float(torch.linalg.vector_norm(
        _flat_parameters(model_a, "model_a") - _flat_parameters(model_b, "model_b")))


def gap_closed(original, unlearned, retrained):
    """Fraction of the parameter distance from the original to the retrained model closed.

    Parameters
    ----------
    original, unlearned, retrained : torch.nn.Module or Tensor
        The trained model, the unlearned model and the model retrained without the
        forget set, each as a model or as a tensor of all its parameters (flattened in
        ``model.parameters()`` order).

    Returns
    -------
    float
        ``1 - ||w_unlearned - w_retrained|| / ||w_original - w_retrained||``: 1 when the
        unlearned model is the retrained one, 0 when it is still the original, negative
        when it moved further away.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.metrics import gap_closed
    >>> gap_closed(torch.tensor([0., 0.]), torch.tensor([3., 0.]), torch.tensor([4., 0.]))
    0.75
    """
    w_original = _flat_parameters(original, "original")
    w_unlearned = _flat_parameters(unlearned, "unlearned")
    w_retrained = _flat_parameters(retrained, "retrained")
    if not w_original.numel() == w_unlearned.numel() == w_retrained.numel():
        raise ValueError(
            "original, unlearned and retrained have "
            f"{w_original.numel()}, {w_unlearned.numel()} and {w_retrained.numel()} "
            "parameters; they must have the same architecture")
    gap = torch.linalg.vector_norm(w_original - w_retrained)
    if gap == 0:
        raise ValueError("the original and retrained parameters are identical: "
                         "there is no gap to close")
    return float(1 - torch.linalg.vector_norm(w_unlearned - w_retrained) / gap)
