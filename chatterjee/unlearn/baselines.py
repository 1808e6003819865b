"""Reference training and the standard unlearning baselines: retrain, fine-tune, NegGrad(+).

:func:`train` is the training recipe the other functions share; it trains its model in
place. The baselines never modify the model they are given: they return a trained copy.

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
import warnings

import numpy as np
import torch

from .._validation import check_random_state
from ._data import TrainingData
from .curvature import conjugate_gradients
from .slices import preserved_modes

__all__ = ["fine_tune", "full_newton", "neg_grad", "retrain", "train"]

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
        order = indices[torch.as_tensor(rng.permutation(indices.numel()))]
        for start in range(0, order.numel(), batch_size):
            inputs, targets = data.get(order[start:start + batch_size])
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
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}")
    return _fit(copy.deepcopy(model), loss_fn, data, retained, weight_decay=weight_decay,
                epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                momentum=momentum, tol=None, max_iter=None,
                rng=check_random_state(random_state))


def _cycle_shuffled(indices, batch_size, rng):
    """Endless minibatches of ``indices``, reshuffled on every pass."""
    while True:
        order = indices[torch.as_tensor(rng.permutation(indices.numel()))]
        for start in range(0, order.numel(), batch_size):
            yield order[start:start + batch_size]


def neg_grad(model, loss_fn, train_data, removed, *, epochs=5, lr=1e-4, retain_weight=0.0,
             batch_size=64, optimizer="sgd", momentum=0.9, random_state=None):
    """Gradient ascent on the forget set (NegGrad), or NegGrad+ with a retain term.

    With ``retain_weight = 0`` each step ascends the loss of a forget batch; an epoch is
    one pass over the forget set. Cheap, but utility collapses quickly unless ``lr`` and
    ``epochs`` are small. With ``retain_weight = beta > 0`` (NegGrad+, Kurmanji et al.
    2023) each step minimises ``beta * loss(retain batch) - (1 - beta) * loss(forget
    batch)``; an epoch is one pass over the retain set, the forget batches cycling.

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
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the shuffling and dropout.

    Returns
    -------
    torch.nn.Module
        The unlearned copy.
    """
    data = _as_data(train_data)
    retained = _retained_indices(removed, data.n_samples)
    forget = torch.as_tensor(np.asarray(removed).reshape(-1), dtype=torch.long)
    if not 0 <= retain_weight <= 1:
        raise ValueError(f"retain_weight must lie in [0, 1]; got {retain_weight}")
    rng = check_random_state(random_state)
    model = copy.deepcopy(model)
    device = _device(model)
    optim = _minibatch_optimizer(_trainable(model), optimizer, lr, 0.0, momentum)

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
