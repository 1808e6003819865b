"""A removal that leaves a class without samples: refit the classifier's output layer.

Once no retained sample has class c, retraining ends with a model that never predicts c.
The retained objective restricted to the output layer, with the features below it held
fixed, is convex for a convex loss (cross-entropy over class scores), and its optimum
moves the class's scores far from the trained model's: too far for a local quadratic
model of the whole network (the influence-function regime), close to what retraining
does with the same features. It is solved by L-BFGS on the retained samples' features,
computed once.
"""

import torch
from torch import nn

from .curvature import check_finite

__all__ = ["output_layer", "refit_output_layer"]


def output_layer(model, slice_map, inputs):
    """The name of the sliced ``nn.Linear`` whose output is the model's output on
    ``inputs`` (the same tensor, returned as it is), with inputs and outputs of shape
    (batch, features); None if there is none."""
    outputs = []
    handles = [layer.module.register_forward_hook(
        lambda module, args, output, name=name: outputs.append((name, args[0], output)))
        for name, layer in slice_map.layers.items() if type(layer.module) is nn.Linear]
    try:
        with torch.no_grad():
            result = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    for name, features, output in outputs:
        if output is result and features.ndim == 2 and output.ndim == 2:
            return name
    return None


def refit_output_layer(model, layer, loss_fn, data, indices, weight_decay, *,
                       max_iter=100):
    """Minimise the mean loss over ``indices`` plus ``weight_decay / 2`` times the
    squared norm of the layer's weight and bias, over that layer alone, in place.

    The features (the layer's inputs) are computed once, in float64; the problem is
    solved by L-BFGS with a strong Wolfe line search in float64, from the current
    weights, until every gradient entry is below 1e-6 or after ``max_iter``
    iterations, and the result is written back in the model's dtype.

    Parameters
    ----------
    model : torch.nn.Module
        In evaluation mode.
    layer : slices._Layer
        The output layer (:func:`output_layer`), from the model's ``SliceMap``.
    loss_fn : callable
    data : TrainingData
    indices : Tensor of int
        The retained samples (or a random subsample of them).
    weight_decay : float
    max_iter : int, default=100
        Most L-BFGS iterations.

    Returns
    -------
    dict
        ``objective_before``, ``objective_after`` and ``gradient_norm`` at the end.
    """
    module = layer.module
    features, targets = [], []
    handle = module.register_forward_hook(
        lambda _, args, output: features.append(args[0].detach().double()))
    try:
        with torch.no_grad():
            for inputs, batch_targets in data.batches(indices):
                model(inputs)
                targets.append(batch_targets)
    finally:
        handle.remove()
    features, targets = torch.cat(features), torch.cat(targets)
    weight = module.weight.detach().double().clone().requires_grad_()
    trained = [weight]
    bias = None
    if module.bias is not None:
        bias = module.bias.detach().double().clone().requires_grad_(layer.bias is not None)
        if layer.bias is not None:
            trained.append(bias)

    def objective():
        outputs = nn.functional.linear(features, weight, bias)
        value = loss_fn(outputs, targets)
        return value + 0.5 * weight_decay * sum((t ** 2).sum() for t in trained)

    optimizer = torch.optim.LBFGS(trained, lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-6, tolerance_change=0.0,
                                  line_search_fn="strong_wolfe")
    def closure():
        optimizer.zero_grad()
        value = check_finite(objective(), "output layer loss")
        value.backward()
        return value

    with torch.no_grad():
        before = float(check_finite(objective(), "output layer loss"))
    optimizer.step(closure)
    value = objective()
    gradients = torch.autograd.grad(value, trained)
    after = float(check_finite(value.detach(), "output layer loss"))
    with torch.no_grad():
        for parameter, fitted in zip((module.weight, module.bias), (weight, bias)):
            if parameter is not None and fitted is not None and fitted.requires_grad:
                parameter.copy_(fitted)
    return {"objective_before": before, "objective_after": after,
            "gradient_norm": float(torch.sqrt(sum((g ** 2).sum() for g in gradients)))}
