"""Reference training and unlearning baselines: retrain, FT, NegGrad(+), SCRUB, SSD, SalUn.

:func:`train` is the training recipe the other functions share; it trains its model in
place. The baselines never modify the model they are given: they return a new model.
:func:`scrub`, :func:`ssd`, :func:`salun` and :func:`neg_grad_plus` take classifiers:
the model returns logits with the classes along dimension 1 and ``loss_fn`` is a
cross-entropy on integer labels, as ``torch.nn.CrossEntropyLoss()``.

The training objective is ``F(w) = mean loss + (weight_decay / 2) ||w||^2`` over all
trainable parameters, with ``loss_fn(outputs, targets)`` a mean over the batch (e.g.
``torch.nn.CrossEntropyLoss()``). Data arguments take any form
:class:`~chatterjee.unlearn._data.TrainingData` takes; ``removed`` holds indices into it.

Randomness (shuffling, dropout, the initialisation in :func:`retrain`) comes from
``random_state``: None, an int or a :class:`numpy.random.Generator`. It seeds a private
torch generator state, so seeded runs are reproducible and torch's global random state is
left as it was.
"""

import copy
import inspect
import numbers
import warnings

import numpy as np
import torch

from .._validation import check_random_state
from ._data import TrainingData
from .curvature import conjugate_gradients
from .slices import preserved_modes

__all__ = ["fine_tune", "full_newton", "neg_grad", "neg_grad_plus", "retrain", "salun",
           "scrub", "ssd", "train"]

OPTIMIZERS = ("adam", "sgd", "lbfgs")


def _as_data(train_data):
    return train_data if isinstance(train_data, TrainingData) else TrainingData(train_data)


def _retained_indices(removed, n_samples):
    """Check ``removed`` (indices into ``n_samples`` samples) and return the other indices."""
    removed = np.asarray(removed).reshape(-1)
    if removed.size == 0:
        raise ValueError("removed is empty: there is nothing to remove")
    if removed.dtype.kind not in "iu":
        raise TypeError(f"removed must hold integer indices; got dtype {removed.dtype}")
    out_of_range = removed[(removed < 0) | (removed >= n_samples)]
    if out_of_range.size:
        raise ValueError(f"removed indices must lie in [0, {n_samples}); got "
                         f"{out_of_range[:5].tolist()}")
    if np.unique(removed).size != removed.size:
        values, counts = np.unique(removed, return_counts=True)
        raise ValueError(f"removed has duplicate indices: {values[counts > 1][:5].tolist()}")
    if removed.size == n_samples:
        raise ValueError("removed holds every training sample: nothing would be left")
    return torch.as_tensor(np.setdiff1d(np.arange(n_samples), removed))


def _forget_and_retained(removed, n_samples):
    """The removed indices in their given order and the retained ones, both checked."""
    retained = _retained_indices(removed, n_samples)
    return torch.as_tensor(np.asarray(removed).reshape(-1), dtype=torch.long), retained


def _check_number(name, value, *, low=0.0, high=None, low_open=True, high_open=False):
    """Raise unless ``value`` is a real number in the interval from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or not np.isfinite(value):
        interval = ("(" if low_open else "[") + f"{low}, " + (
            "inf)" if high is None else f"{high}" + (")" if high_open else "]"))
        raise ValueError(f"{name} must lie in {interval}; got {value}")


def _check_count(name, value, *, minimum=1):
    """Raise unless ``value`` is an int of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}")


def _check_optimizer(optimizer):
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}")


def _in_batches(indices, batch_size):
    """``indices`` in order, in slices of ``batch_size``."""
    for start in range(0, indices.numel(), batch_size):
        yield indices[start:start + batch_size]


def _epoch_batches(indices, batch_size, rng):
    """One pass over ``indices`` in a fresh random order, in minibatches."""
    yield from _in_batches(indices[torch.as_tensor(rng.permutation(indices.numel()))],
                           batch_size)


def _device(model):
    return next(model.parameters()).device


def _trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


def _torch_seed(rng):
    return int(rng.integers(2**63 - 1))


def _minibatch_optimizer(params, optimizer, lr, weight_decay, momentum):
    # Both optimizers add weight_decay * w to the gradient: the (weight_decay/2)||w||^2 term.
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")


def _fit_minibatch(model, loss_fn, data, indices, *, weight_decay, epochs, batch_size, lr,
                   optimizer, momentum, rng):
    device = _device(model)
    optim = _minibatch_optimizer(_trainable(model), optimizer, lr, weight_decay, momentum)
    for _ in range(epochs):
        for batch in _epoch_batches(indices, batch_size, rng):
            inputs, targets = data.get(batch)
            optim.zero_grad()
            loss_fn(model(inputs.to(device)), targets.to(device)).backward()
            optim.step()


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _fit_lbfgs(model, loss_fn, data, indices, *, weight_decay, max_iter, tol):
    device = _device(model)
    params = _trainable(model)

    def make_lbfgs():
        return torch.optim.LBFGS(params, lr=1, max_iter=20, history_size=20,
                                 tolerance_grad=0.0, tolerance_change=0.0,
                                 line_search_fn="strong_wolfe")

    def terms():
        """The objective as a sum of terms: weighted batch losses, then the penalty."""
        for inputs, targets in data.batches(indices):
            loss = loss_fn(model(inputs.to(device)), targets.to(device))
            yield loss * (targets.shape[0] / indices.numel())
        if weight_decay:
            yield weight_decay / 2 * sum(p.pow(2).sum() for p in params)

    def objective():
        """F(w); leaves its gradient in the parameters' ``.grad``."""
        for p in params:
            p.grad = None
        total = 0.0
        for term in terms():
            term.backward()
            total = total + term.detach()
        return total

    def gradient():
        objective()
        return _flat(p.grad for p in params)

    def hessian_vector(vector):
        product = torch.zeros_like(vector)
        for term in terms():
            grads = torch.autograd.grad(term, params, create_graph=True,
                                        materialize_grads=True)
            product += _flat(torch.autograd.grad(_flat(grads) @ vector, params,
                                                 materialize_grads=True))
        return product

    def parameters():
        return _flat(p.detach() for p in params)

    def write(flat):
        with torch.no_grad():
            for p, piece in zip(params, flat.split([p.numel() for p in params])):
                p.copy_(piece.view_as(p))

    def newton_step(grad_norm):
        """A truncated Newton step (CG on Hessian-vector products); undone unless it
        lowers the gradient norm. Returns the new norm, or None when it was undone."""
        before, grad = parameters(), gradient()
        forcing = min(0.5, grad_norm ** 0.5) * grad_norm
        step, _ = conjugate_gradients(hessian_vector, -grad, tol=max(tol / 2, forcing),
                                      max_iter=min(grad.numel(), 500))
        write(before + step)
        new_norm = float(torch.linalg.vector_norm(gradient()))
        if new_norm < grad_norm:
            return new_norm
        write(before)
        return None

    # L-BFGS in chunks of 20 iterations. Near the optimum its curvature pairs fall under
    # torch's fixed threshold and its line search under the rounding of F, and progress
    # slows to a crawl: a chunk that does not halve the gradient norm is followed by a
    # Newton step, which needs only gradients, as long as Newton steps help.
    grad_norm = float(torch.linalg.vector_norm(gradient()))
    iterations, newton_helps = 0, True
    optim = make_lbfgs()
    while grad_norm > tol and iterations < max_iter:
        previous, before = grad_norm, parameters()
        done = optim.state[params[0]].get("n_iter", 0)
        optim.step(objective)
        iterations += optim.state[params[0]]["n_iter"] - done
        grad_norm = float(torch.linalg.vector_norm(gradient()))
        stalled = torch.equal(before, parameters())
        if grad_norm > previous / 2 and newton_helps:
            newton_norm = newton_step(grad_norm)
            newton_helps = newton_norm is not None
            if newton_helps:
                grad_norm, optim = newton_norm, make_lbfgs()
                iterations += 1
                continue
        if stalled:
            break
    if grad_norm > tol:
        warnings.warn(f"L-BFGS stopped after {iterations} iterations with gradient norm "
                      f"{grad_norm:.3g} > tol = {tol:.3g}", RuntimeWarning, stacklevel=3)


def _fit(model, loss_fn, data, indices, *, weight_decay, epochs, batch_size, lr, optimizer,
         momentum, tol, max_iter, rng):
    """Train ``model`` in place on the samples ``data[indices]``, seeded by ``rng``."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")
    with preserved_modes(model), torch.random.fork_rng(devices=[]):
        model.train()
        torch.manual_seed(_torch_seed(rng))
        if optimizer == "lbfgs":
            _fit_lbfgs(model, loss_fn, data, indices, weight_decay=weight_decay,
                       max_iter=max_iter, tol=tol)
        else:
            _fit_minibatch(model, loss_fn, data, indices, weight_decay=weight_decay,
                           epochs=epochs, batch_size=batch_size, lr=lr,
                           optimizer=optimizer, momentum=momentum, rng=rng)
    return model


def train(model, loss_fn, train_data, *, weight_decay=0.0, epochs=10, batch_size=64,
          lr=1e-3, optimizer="adam", momentum=0.9, tol=1e-10, max_iter=1000,
          random_state=None):
    """Train ``model`` in place: the reference recipe that retraining repeats.

    Parameters
    ----------
    model : torch.nn.Module
        The model to train; it is modified in place.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch.
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The training set.
    weight_decay : float, default=0.0
        Coefficient of the ``(weight_decay / 2) ||w||^2`` term of the objective.
    epochs : int, default=10
        Passes over the data ("adam" and "sgd").
    batch_size : int, default=64
        Minibatch size ("adam" and "sgd"); the samples are reshuffled every epoch.
    lr : float, default=1e-3
        Learning rate ("adam" and "sgd").
    optimizer : {"adam", "sgd", "lbfgs"}, default="adam"
        "adam" and "sgd" (with ``momentum``) for minibatch training of deep models.
        "lbfgs" minimises the full-batch objective with L-BFGS and a strong-Wolfe line
        search in the model's dtype until the gradient norm of the objective is at most
        ``tol``: exact training for convex models (e.g. logistic regression in
        float64), so that retraining reproduces the unique optimum. Where L-BFGS slows
        down near the optimum, truncated Newton steps (conjugate gradients on
        Hessian-vector products) take over while they lower the gradient norm. The
        model should be deterministic in training mode (no dropout).
    momentum : float, default=0.9
        Momentum of "sgd".
    tol : float, default=1e-10
        Gradient-norm target of "lbfgs" (suited to float64; float32 models reach about
        1e-5 at best).
    max_iter : int, default=1000
        Most L-BFGS (and Newton) iterations; a RuntimeWarning says when ``tol`` was not
        reached.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the shuffling and any randomness of the model (dropout).

    Returns
    -------
    torch.nn.Module
        ``model``, trained; each module's own training flag is as it was.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.baselines import train
    >>> inputs = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]], dtype=torch.float64)
    >>> labels = torch.tensor([0, 0, 1, 1])
    >>> model = torch.nn.Linear(1, 2).double()
    >>> model = train(model, torch.nn.CrossEntropyLoss(), (inputs, labels),
    ...               weight_decay=0.1, optimizer="lbfgs", random_state=0)
    >>> (model(inputs).argmax(dim=1) == labels).all().item()
    True
    """
    data = _as_data(train_data)
    return _fit(model, loss_fn, data, torch.arange(data.n_samples),
                weight_decay=weight_decay, epochs=epochs, batch_size=batch_size, lr=lr,
                optimizer=optimizer, momentum=momentum, tol=tol, max_iter=max_iter,
                rng=check_random_state(random_state))


def retrain(make_model, loss_fn, train_data, removed, *, random_state=None, **train_kwargs):
    """Retrain from scratch without the removed samples: the gold standard of unlearning.

    Parameters
    ----------
    make_model : callable
        ``make_model()`` returns a freshly initialised model of the original
        architecture; it is called under the seeded random state, so the
        initialisation is reproducible too.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch.
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set.
    removed : int, sequence or Tensor of int
        Indices of the samples to leave out (distinct, at least one kept).
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the initialisation and the training.
    **train_kwargs
        The training recipe: keywords of :func:`train`.

    Returns
    -------
    torch.nn.Module
        The new model, trained on the retained samples only (the removed ones are
        never read).
    """
    data = _as_data(train_data)
    retained = _retained_indices(removed, data.n_samples)
    rng = check_random_state(random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_torch_seed(rng))
        model = make_model()
    recipe = {name: parameter.default
              for name, parameter in inspect.signature(train).parameters.items()
              if parameter.kind is parameter.KEYWORD_ONLY and name != "random_state"}
    unknown = train_kwargs.keys() - recipe.keys()
    if unknown:
        raise TypeError(f"unexpected training keywords {sorted(unknown)}; "
                        f"expected some of {sorted(recipe)}")
    recipe.update(train_kwargs)
    return _fit(model, loss_fn, data, retained, rng=rng, **recipe)


def fine_tune(model, loss_fn, train_data, removed, *, epochs=5, lr=1e-2, weight_decay=0.0,
              batch_size=64, optimizer="sgd", momentum=0.9, random_state=None):
    """Fine-tuning (FT): continue training a copy of ``model`` on the retained samples.

    Relies on catastrophic forgetting of the removed samples; the NeurIPS 2023 starting
    kit uses 5 epochs of SGD (lr 0.1, momentum 0.9, weight decay 5e-4).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model; it is not modified.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch.
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set.
    removed : int, sequence or Tensor of int
        Indices of the samples to forget.
    epochs, lr, weight_decay, batch_size, momentum : see :func:`train`
    optimizer : {"sgd", "adam"}, default="sgd"
        Minibatch optimizer.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the shuffling and dropout.

    Returns
    -------
    torch.nn.Module
        The fine-tuned copy.
    """
    data = _as_data(train_data)
    retained = _retained_indices(removed, data.n_samples)
    _check_optimizer(optimizer)
    return _fit(copy.deepcopy(model), loss_fn, data, retained, weight_decay=weight_decay,
                epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                momentum=momentum, tol=None, max_iter=None,
                rng=check_random_state(random_state))


def _cycle_shuffled(indices, batch_size, rng):
    """Endless minibatches of ``indices``, reshuffled on every pass."""
    while True:
        yield from _epoch_batches(indices, batch_size, rng)


def neg_grad(model, loss_fn, train_data, removed, *, epochs=5, lr=1e-4, retain_weight=0.0,
             batch_size=64, optimizer="sgd", momentum=0.9, weight_decay=0.0,
             random_state=None):
    """Gradient ascent on the forget set (NegGrad), or NegGrad+ with a retain term.

    With ``retain_weight = 0`` each step ascends the loss of a forget batch; an epoch is
    one pass over the forget set. Cheap, but utility collapses quickly unless ``lr`` and
    ``epochs`` are small. With ``retain_weight = beta > 0`` (NegGrad+, Kurmanji et al.
    2023) each step minimises ``beta * loss(retain batch) - (1 - beta) * loss(forget
    batch)``; an epoch is one pass over the retain set, the forget batches cycling.
    :func:`neg_grad_plus` is NegGrad+ with the paper's hyperparameters.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model; it is not modified.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch.
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set.
    removed : int, sequence or Tensor of int
        Indices of the samples to forget.
    epochs : int, default=5
        Passes over the forget set (NegGrad) or the retain set (NegGrad+).
    lr : float, default=1e-4
        Learning rate.
    retain_weight : float in [0, 1], default=0.0
        ``beta`` of NegGrad+; 0 is plain gradient ascent.
    batch_size : int, default=64
        Samples per forget (and retain) batch.
    optimizer : {"sgd", "adam"}, default="sgd"
        Minibatch optimizer.
    momentum : float, default=0.9
        Momentum of "sgd".
    weight_decay : float, default=0.0
        Weight decay of the optimizer (a ``(weight_decay / 2) ||w||^2`` term).
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the shuffling and dropout.

    Returns
    -------
    torch.nn.Module
        The unlearned copy.
    """
    data = _as_data(train_data)
    forget, retained = _forget_and_retained(removed, data.n_samples)
    if not 0 <= retain_weight <= 1:
        raise ValueError(f"retain_weight must lie in [0, 1]; got {retain_weight}")
    rng = check_random_state(random_state)
    model = copy.deepcopy(model)
    device = _device(model)
    optim = _minibatch_optimizer(_trainable(model), optimizer, lr, weight_decay, momentum)

    def batch_loss(indices):
        inputs, targets = data.get(indices)
        return loss_fn(model(inputs.to(device)), targets.to(device))

    steps_per_epoch = -(-(forget if retain_weight == 0 else retained).numel() // batch_size)
    forget_batches = _cycle_shuffled(forget, batch_size, rng)
    retain_batches = _cycle_shuffled(retained, batch_size, rng)
    with preserved_modes(model), torch.random.fork_rng(devices=[]):
        model.train()
        torch.manual_seed(_torch_seed(rng))
        for _ in range(epochs * steps_per_epoch):
            loss = -(1 - retain_weight) * batch_loss(next(forget_batches))
            if retain_weight:
                loss = loss + retain_weight * batch_loss(next(retain_batches))
            optim.zero_grad()
            loss.backward()
            optim.step()
    return model


def neg_grad_plus(model, loss_fn, train_data, removed, *, retain_weight=0.9999, epochs=5,
                  lr=0.01, weight_decay=5e-4, batch_size=128, optimizer="sgd", momentum=0.0,
                  random_state=None):
    """NegGrad+ (Kurmanji et al., NeurIPS 2023) with the paper's large-scale defaults.

    Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded Machine
    Unlearning", NeurIPS 2023. Each step minimises ``beta * CE(retain batch) - (1 -
    beta) * CE(forget batch)``; an epoch is one pass over the retain set, the forget
    batches cycling. This is :func:`neg_grad` with ``retain_weight = beta``, here with
    the defaults of the authors' large-scale (CIFAR-10) NegGrad+ runs, github.com/
    meghdadk/SCRUB, ``VGG_experiments.ipynb`` and ``MIA_experiments.ipynb``:
    ``beta = 0.9999``, 5 epochs of plain SGD (no momentum) with learning rate 0.01,
    weight decay 5e-4 and batches of 128 retain and 128 forget samples. Their
    small-scale runs used ``beta = 0.95``, 10 epochs and weight decay 0.1.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier; it is not modified.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch (cross-entropy).
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set.
    removed : int, sequence or Tensor of int
        Indices of the samples to forget.
    retain_weight : float in [0, 1], default=0.9999
        ``beta``: 1 is fine-tuning on the retain set, 0 plain gradient ascent.
    epochs : int, default=5
        Passes over the retain set.
    lr : float, default=0.01
        Learning rate.
    weight_decay : float, default=5e-4
        Weight decay of the optimizer.
    batch_size : int, default=128
        Samples per retain and per forget batch.
    optimizer : {"sgd", "adam"}, default="sgd"
        Minibatch optimizer.
    momentum : float, default=0.0
        Momentum of "sgd".
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the shuffling and dropout.

    Returns
    -------
    torch.nn.Module
        The unlearned copy.
    """
    return neg_grad(model, loss_fn, train_data, removed, epochs=epochs, lr=lr,
                    retain_weight=retain_weight, batch_size=batch_size, optimizer=optimizer,
                    momentum=momentum, weight_decay=weight_decay, random_state=random_state)


def _distillation_kl(student_logits, teacher_logits, temperature):
    """``KL(teacher || student)`` between the softmaxes at ``temperature`` (classes along
    dimension 1), times ``temperature ** 2``, averaged over the batch (and positions)."""
    if student_logits.ndim < 2:
        raise ValueError("scrub needs logits with the classes along dimension 1; the "
                         f"model returned outputs of shape {tuple(student_logits.shape)}")
    log_student = torch.log_softmax(student_logits / temperature, dim=1)
    log_teacher = torch.log_softmax(teacher_logits / temperature, dim=1)
    pointwise = torch.nn.functional.kl_div(log_student, log_teacher, reduction="none",
                                           log_target=True)
    return pointwise.sum(dim=1).mean() * temperature ** 2


def scrub(model, loss_fn, train_data, removed, *, epochs=3, max_epochs=2, alpha=0.001,
          gamma=0.99, temperature=4.0, lr=5e-4, momentum=0.9, weight_decay=5e-4,
          batch_size=256, forget_batch_size=512, optimizer="sgd", random_state=None):
    """SCRUB (Kurmanji et al., NeurIPS 2023): distillation that disobeys on the forget set.

    Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded Machine
    Unlearning", NeurIPS 2023. The teacher is a frozen copy of ``model`` in evaluation
    mode; the student starts as another copy and is trained. Each of the first
    ``max_epochs`` epochs begins with a max-epoch: one pass over the forget set whose
    steps maximise ``d(x) = KL(teacher(x) || student(x))``; every epoch then makes a
    min-epoch: one pass over the retain set minimising ``alpha * d(x) + gamma *
    loss_fn``. Both use one optimizer, as in the authors' code. ``d`` compares the
    softmaxes at ``temperature`` and is scaled by ``temperature ** 2`` (Hinton's
    distillation loss, the authors' ``DistillKL``).

    The defaults are those of the authors' large-scale (CIFAR-10, ResNet-18 and
    All-CNN) runs, github.com/meghdadk/SCRUB, ``large_scale_unlearning.ipynb``:
    ``sgda_epochs = 3``, ``msteps = 2``, ``kd_T = 4``, ``alpha = 0.001``, ``gamma =
    0.99``, SGD with learning rate 5e-4, momentum 0.9 and weight decay 5e-4, forget
    batches of 512 and retain batches of 256. Their learning-rate decay (x0.1 after
    epochs 3, 5 and 9) never acts within 3 epochs and is left out. Their small-scale
    runs used Adam, ``kd_T = 2``, ``alpha = 0.5``, ``gamma = 1``, ``msteps = 3``, 10
    epochs and weight decay 0.1. The rewinding variant SCRUB+R is not implemented.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier (the teacher); it is not modified. It returns logits
        with the classes along dimension 1.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch (cross-entropy).
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set.
    removed : int, sequence or Tensor of int
        Indices of the samples to forget.
    epochs : int, default=3
        Min-epochs (passes over the retain set).
    max_epochs : int, default=2
        Max-epochs (passes over the forget set), one at the start of each of the first
        ``max_epochs`` epochs; 0 leaves only distillation on the retain set.
    alpha : float, default=0.001
        Weight of the distillation term on the retain set.
    gamma : float, default=0.99
        Weight of ``loss_fn`` on the retain set.
    temperature : float, default=4.0
        Softmax temperature of the divergence (``kd_T``).
    lr : float, default=5e-4
        Learning rate.
    momentum : float, default=0.9
        Momentum of "sgd".
    weight_decay : float, default=5e-4
        Weight decay of the optimizer.
    batch_size : int, default=256
        Samples per retain batch.
    forget_batch_size : int, default=512
        Samples per forget batch.
    optimizer : {"sgd", "adam"}, default="sgd"
        Minibatch optimizer.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the shuffling and dropout.

    Returns
    -------
    torch.nn.Module
        The student: the unlearned copy.
    """
    data = _as_data(train_data)
    forget, retained = _forget_and_retained(removed, data.n_samples)
    _check_count("epochs", epochs)
    _check_count("max_epochs", max_epochs, minimum=0)
    _check_number("alpha", alpha, low_open=False)
    _check_number("gamma", gamma, low_open=False)
    _check_number("temperature", temperature)
    _check_number("lr", lr)
    _check_count("batch_size", batch_size)
    _check_count("forget_batch_size", forget_batch_size)
    _check_optimizer(optimizer)
    rng = check_random_state(random_state)
    student = copy.deepcopy(model)
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    device = _device(student)
    optim = _minibatch_optimizer(_trainable(student), optimizer, lr, weight_decay, momentum)

    def step(loss):
        optim.zero_grad()
        loss.backward()
        optim.step()

    with preserved_modes(student), torch.random.fork_rng(devices=[]):
        student.train()
        torch.manual_seed(_torch_seed(rng))
        for epoch in range(epochs):
            if epoch < max_epochs:
                for batch in _epoch_batches(forget, forget_batch_size, rng):
                    inputs = data.get(batch)[0].to(device)
                    with torch.no_grad():
                        teacher_logits = teacher(inputs)
                    step(-_distillation_kl(student(inputs), teacher_logits, temperature))
            for batch in _epoch_batches(retained, batch_size, rng):
                inputs, targets = data.get(batch)
                inputs, targets = inputs.to(device), targets.to(device)
                with torch.no_grad():
                    teacher_logits = teacher(inputs)
                outputs = student(inputs)
                step(gamma * loss_fn(outputs, targets)
                     + alpha * _distillation_kl(outputs, teacher_logits, temperature))
    return student


def _squared_batch_gradients(model, loss_fn, data, indices, batch_size):
    """Per trainable parameter, the mean over minibatches of ``indices`` (in order) of the
    squared gradient of the batch loss."""
    device = _device(model)
    params = _trainable(model)
    totals = [torch.zeros_like(p) for p in params]
    n_batches = 0
    for batch in _in_batches(indices, batch_size):
        inputs, targets = data.get(batch)
        loss = loss_fn(model(inputs.to(device)), targets.to(device))
        for total, grad in zip(totals, torch.autograd.grad(loss, params,
                                                           materialize_grads=True)):
            total += grad.pow(2)
        n_batches += 1
    return [total / n_batches for total in totals]


def ssd(model, loss_fn, train_data, removed, *, selection_weighting=10.0,
        dampening_constant=1.0, batch_size=128, random_state=None):
    """Selective Synaptic Dampening (SSD; Foster et al., AAAI 2024), without training.

    SSD rescales the parameters far more important to the forget set than to the
    training set. Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without
    Retraining Through Selective Synaptic Dampening", AAAI 2024. The importance of each
    parameter is the diagonal of the Fisher information, estimated as the mean squared
    gradient: ``I_D`` over the full training set, ``I_f`` over the forget set. Every
    parameter with ``I_f > alpha * I_D`` is multiplied by ``beta = min(lambda * I_D /
    I_f, 1)``; the others are left exactly as they were. Importances are computed in
    evaluation mode (no dropout, BatchNorm on its running statistics), as in the
    authors' code.

    The defaults are the paper's for all its ResNet-18 CIFAR tasks, found by a TPE
    search (``alpha = 10``, ``lambda = 1``; its ViTs used ``alpha = 5``), with the
    authors' estimator (github.com/if-loops/selective-synaptic-dampening, ``ssd.py``
    and ``forget_random_main.py``): the gradient of the mean loss of each minibatch of
    128, squared, averaged over the minibatches. ``batch_size=1`` gives the per-sample
    empirical Fisher diagonal of the paper's equations.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier; it is not modified.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch (cross-entropy).
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set (the forget set included): its importance is ``I_D``.
    removed : int, sequence or Tensor of int
        Indices of the samples to forget.
    selection_weighting : float, default=10.0
        ``alpha``: a parameter is dampened when ``I_f > alpha * I_D``.
    dampening_constant : float, default=1.0
        ``lambda``: a selected parameter is multiplied by ``min(lambda * I_D / I_f, 1)``.
    batch_size : int, default=128
        Samples per minibatch of the importance estimates.
    random_state : None, int or numpy.random.Generator, default=None
        Accepted for the baselines' common signature; SSD is deterministic.

    Returns
    -------
    torch.nn.Module
        The dampened copy.
    """
    data = _as_data(train_data)
    forget, _ = _forget_and_retained(removed, data.n_samples)
    _check_number("selection_weighting", selection_weighting)
    _check_number("dampening_constant", dampening_constant)
    _check_count("batch_size", batch_size)
    check_random_state(random_state)
    model = copy.deepcopy(model)
    with preserved_modes(model):
        model.eval()
        full_importance = _squared_batch_gradients(model, loss_fn, data,
                                                   torch.arange(data.n_samples), batch_size)
        forget_importance = _squared_batch_gradients(model, loss_fn, data, forget,
                                                     batch_size)
    with torch.no_grad():
        for param, full, forgotten in zip(_trainable(model), full_importance,
                                          forget_importance):
            selected = forgotten > selection_weighting * full
            scale = (dampening_constant * full[selected] / forgotten[selected]).clamp(max=1)
            param[selected] = param[selected] * scale
    return model


def salun(model, loss_fn, train_data, removed, *, epochs=10, lr=0.013, mask_ratio=0.5,
          batch_size=256, momentum=0.9, weight_decay=5e-4, optimizer="sgd",
          random_state=None):
    """SalUn (Fan et al., ICLR 2024): random-label fine-tuning of the salient weights only.

    Fan, Liu, Zhang, Wei, Wong and Liu, "SalUn: Empowering Machine Unlearning via
    Gradient-based Weight Saliency", ICLR 2024. The saliency of a weight is the
    magnitude of its gradient of the forget loss, computed in evaluation mode at the
    original weights, summed over forget batches (the authors' ``generate_mask.py``);
    the ``mask_ratio`` most salient of all trainable weights (one ranking across the
    whole model) form the mask. Training then fits the forget samples, each epoch with
    fresh labels drawn uniformly from the other classes, together with the retain
    samples and their true labels, in shuffled minibatches of both; gradients outside
    the mask are zeroed and those weights are kept exactly at their original values
    (weight decay and momentum do not move them either).

    The defaults are the authors' for random forgetting on CIFAR-10 with ResNet-18
    (github.com/OPTML-Group/Unlearn-Saliency, ``Classification/README.md`` and
    ``arg_parser.py``): mask ``with_0.5.pt`` (the top half), 10 epochs of SGD with
    learning rate 0.013, momentum 0.9, weight decay 5e-4, batches of 256 (their
    learning-rate milestones, epochs 91 and 136, are never reached). Adaptations: the
    random labels avoid the true class, as in the paper (their CIFAR-10 code draws from
    all classes), and forget and retain samples share shuffled minibatches, as in their
    CIFAR-100 code and the paper's objective (their CIFAR-10 code makes a forget pass
    then a retain pass each epoch).

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier; it is not modified. It returns logits with the classes
        along dimension 1.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch: a cross-entropy on integer
        class labels.
    train_data : tuple of (Tensor, Tensor), Dataset or DataLoader
        The full training set, with integer class labels.
    removed : int, sequence or Tensor of int
        Indices of the samples to forget.
    epochs : int, default=10
        Passes over the whole training set (forget samples relabelled).
    lr : float, default=0.013
        Learning rate.
    mask_ratio : float in (0, 1], default=0.5
        Fraction of the trainable weights that are updated; 1 is plain random-label
        fine-tuning.
    batch_size : int, default=256
        Samples per minibatch, for the saliency and the training.
    momentum : float, default=0.9
        Momentum of "sgd".
    weight_decay : float, default=5e-4
        Weight decay of the optimizer.
    optimizer : {"sgd", "adam"}, default="sgd"
        Minibatch optimizer.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the random labels, the shuffling and dropout.

    Returns
    -------
    torch.nn.Module
        The unlearned copy.
    """
    data = _as_data(train_data)
    forget, _ = _forget_and_retained(removed, data.n_samples)
    _check_count("epochs", epochs)
    _check_number("lr", lr)
    _check_number("mask_ratio", mask_ratio, high=1.0)
    _check_count("batch_size", batch_size)
    _check_optimizer(optimizer)
    rng = check_random_state(random_state)
    model = copy.deepcopy(model)
    device = _device(model)
    params = _trainable(model)

    # The saliency map, and the labels and number of classes on the way.
    saliency = [torch.zeros_like(p) for p in params]
    forget_targets, n_classes = [], None
    with preserved_modes(model):
        model.eval()
        for batch in _in_batches(forget, batch_size):
            inputs, targets = data.get(batch)
            if targets.is_floating_point() or targets.is_complex() or targets.ndim != 1:
                raise TypeError("salun needs integer class labels, one per sample; got "
                                f"targets of dtype {targets.dtype} and shape "
                                f"{tuple(targets.shape)}")
            outputs = model(inputs.to(device))
            if outputs.ndim != 2 or outputs.shape[1] < 2:
                raise ValueError("salun needs logits of shape (batch, classes) with at "
                                 f"least 2 classes; got {tuple(outputs.shape)}")
            n_classes = outputs.shape[1]
            grads = torch.autograd.grad(loss_fn(outputs, targets.to(device)), params,
                                        materialize_grads=True)
            for total, grad in zip(saliency, grads):
                total += grad
            forget_targets.append(targets)
    forget_targets = torch.cat(forget_targets).long().cpu()
    magnitudes = torch.cat([s.abs().reshape(-1) for s in saliency])
    n_salient = int(magnitudes.numel() * mask_ratio)
    if n_salient == 0:
        raise ValueError(f"mask_ratio={mask_ratio} selects none of the "
                         f"{magnitudes.numel()} trainable weights")
    salient = torch.zeros(magnitudes.numel(), dtype=torch.bool, device=magnitudes.device)
    salient[torch.argsort(magnitudes, descending=True, stable=True)[:n_salient]] = True
    masks = [piece.view_as(p) for piece, p in
             zip(salient.split([p.numel() for p in params]), params)]
    del saliency, magnitudes, salient

    originals = [p.detach().clone() for p in params]
    optim = _minibatch_optimizer(params, optimizer, lr, weight_decay, momentum)
    new_labels = torch.full((data.n_samples,), -1, dtype=torch.long)
    everything = torch.arange(data.n_samples)
    with preserved_modes(model), torch.random.fork_rng(devices=[]):
        model.train()
        torch.manual_seed(_torch_seed(rng))
        for _ in range(epochs):
            shift = torch.as_tensor(rng.integers(1, n_classes, size=forget.numel()))
            new_labels[forget] = (forget_targets + shift) % n_classes
            for batch in _epoch_batches(everything, batch_size, rng):
                inputs, targets = data.get(batch)
                relabel = new_labels[batch].to(targets.device)
                targets = torch.where(relabel >= 0, relabel.to(targets.dtype), targets)
                optim.zero_grad()
                loss_fn(model(inputs.to(device)), targets.to(device)).backward()
                for p, mask in zip(params, masks):
                    if p.grad is not None:
                        p.grad.mul_(mask)
                optim.step()
                with torch.no_grad():
                    for p, mask, original in zip(params, masks, originals):
                        p.copy_(torch.where(mask, p, original))
    return model


def full_newton(model, loss_fn, train_data, removed, *, weight_decay=0.0, **options):
    """One Newton step on every sliced parameter (influence-function removal).

    The :class:`~chatterjee.unlearn.Unlearner` with ``selection="full"``: for a
    strongly convex objective this is Guo et al.'s removal update, exact for least
    squares. Returns a new model; the input is not modified.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable
    train_data : (Tensor, Tensor), Dataset or DataLoader
    removed : int or sequence of int
    weight_decay : float, default=0.0
    **options
        Passed to :class:`~chatterjee.unlearn.Unlearner` (``curvature``,
        ``curvature_samples``, ``max_dense``, ``random_state``, ...).

    Returns
    -------
    torch.nn.Module
    """
    from .unlearner import Unlearner

    unlearned = copy.deepcopy(model)
    Unlearner(unlearned, loss_fn, train_data, weight_decay=weight_decay, selection="full",
              **options).forget(removed)
    return unlearned
