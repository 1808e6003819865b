"""Kronecker-factored (K-FAC) curvature of the sliced layers, computed once and reused.

For a layer with weight ``W`` (units x fan-in) and bias ``b``, the Gauss-Newton
curvature of the mean training loss over ``(W, b)`` is approximated by ``A (x) G``
(Martens and Grosse, 2015): ``A`` the second moment of the layer's inputs (patches
for a convolution) with a 1 appended for the bias, averaged over samples and
positions; ``G`` the second moment of the gradients of a sample's loss in the layer's
outputs, summed over positions and averaged over samples (Grosse and Martens 2016 for
convolutions; the "expand" setting of Eschenhagen et al. 2023 for layers applied to
sequences). In matrix form the curvature times a unit-by-input matrix ``V`` is
``G V A``.

``G`` needs gradients whose second moment is the loss's curvature in the outputs. For
a softmax cross-entropy that curvature is the Fisher information of the categorical
distribution, ``diag(p) - p p^T`` per position: with at most
:data:`EXACT_FISHER_CLASSES` classes it is taken exactly, one backward pass per class
with targets weighted by ``p``; beyond, by one backward pass with targets drawn from
``p`` (a Monte Carlo Fisher, unbiased). For any other loss, the gradients of the true
targets are used (the empirical Fisher): a cruder approximation, which only
preconditions (the Unlearner's conjugate-gradient solve uses exact products).

The eigendecompositions of ``A`` and ``G`` are kept (in the model's dtype), so that the
inverse of ``A (x) G[S, S] + damping`` on any subset S of a layer's units costs one
small eigendecomposition of ``G[S, S]`` and a few matrix products.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .slices import unfused_attention

__all__ = ["EXACT_FISHER_CLASSES", "KroneckerFactors"]

#: Up to this many classes the Fisher of a cross-entropy is taken exactly (one
#: backward pass per class); beyond, by sampling one target per position.
EXACT_FISHER_CLASSES = 16


class KroneckerFactors:
    """K-FAC factors of every sliced layer, from one pass over a curvature sample.

    Parameters
    ----------
    model : torch.nn.Module
        In the mode the curvature is wanted in (the Unlearner uses ``eval()``).
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch.
    layers : dict of str to _Layer
        :attr:`SliceMap.layers`. Linear layers (on inputs of any rank) and 1-D and 2-D
        convolutions without groups get factors; the others (3-D and grouped
        convolutions, the output projection of ``nn.MultiheadAttention``, which its
        module applies without calling it) are left out.
    batches : iterable of (Tensor, Tensor)
        The curvature sample, batch by batch.
    generator : torch.Generator
        Draws the Monte Carlo targets (cross-entropy with many classes).

    Attributes
    ----------
    factors : dict of str to tuple
        Per layer name: ``(eigenvalues_A, eigenvectors_A, G)``, ``A`` and ``G`` as
        above (``G`` kept whole: subsets of units take its sub-blocks).
    n_samples : int
        Samples the factors average over.
    kind : str
        ``"fisher"`` (exact), ``"sampled_fisher"`` or ``"empirical_fisher"``.
    """

    def __init__(self, model, loss_fn, layers, batches, generator):
        self.layers = {name: layer for name, layer in layers.items() if _supported(layer)}
        sums = {name: None for name in self.layers}
        n_samples, kind = 0, None
        for inputs, targets in batches:
            batch_kind, moments = self._batch_moments(model, loss_fn, inputs, targets,
                                                      generator)
            kind = kind or batch_kind
            n_samples += inputs.shape[0]
            for name, (input_moment, gradient_moment, positions) in moments.items():
                previous = sums[name]
                sums[name] = ((input_moment, gradient_moment, positions) if previous is None
                              else (previous[0] + input_moment, previous[1] + gradient_moment,
                                    previous[2] + positions))
        self.n_samples, self.kind = n_samples, kind
        self.factors = {}
        for name, summed in sums.items():
            if summed is None:          # the layer was not called on these samples
                continue
            input_moment, gradient_moment, positions = summed
            A = input_moment / positions
            G = gradient_moment / n_samples
            eigenvalues, eigenvectors = torch.linalg.eigh(0.5 * (A + A.T))
            self.factors[name] = (eigenvalues.clamp_min(0), eigenvectors, 0.5 * (G + G.T))

    def solve(self, name, units, right, damping):
        """``(A (x) G[S, S] + damping I)^{-1}`` applied to a units-by-input matrix.

        Parameters
        ----------
        name : str
            The layer.
        units : LongTensor
            The subset S of its units (sorted).
        right : Tensor of shape (len(units), fan_in + has_bias)
            Weight rows of the units, with the bias entry as the last column.
        damping : float
            Added to every eigenvalue (weight decay plus any damping), > 0.

        Returns
        -------
        Tensor
            Same shape as ``right``.
        """
        eigenvalues_a, vectors_a, G = self.factors[name]
        eigenvalues_g, vectors_g = torch.linalg.eigh(G[units][:, units])
        scale = eigenvalues_g.clamp_min(0)[:, None] * eigenvalues_a[None, :] + damping
        rotated = vectors_g.T @ right.to(G.dtype) @ vectors_a
        return (vectors_g @ (rotated / scale) @ vectors_a.T).to(right.dtype)

    def mean_curvature(self):
        """Average eigenvalue of the factored blocks (the scale of the others)."""
        values = [float(ea.mean()) * float(torch.diagonal(G).mean())
                  for ea, _, G in self.factors.values()]
        return sum(values) / len(values) if values else 0.0

    # ------------------------------------------------------------------------------
    def _batch_moments(self, model, loss_fn, inputs, targets, generator):
        """Summed input moments (with position counts) and gradient moments of a batch."""
        captured = {}

        def hook_for(name):
            def hook(module, args, output):
                if name not in captured and output.requires_grad:  # a reused layer: its first call
                    captured[name] = (args[0].detach(), output)
            return hook

        handles = [layer.module.register_forward_hook(hook_for(name))
                   for name, layer in self.layers.items()]
        try:
            with torch.enable_grad(), unfused_attention():
                outputs = model(inputs)
        finally:
            for handle in handles:
                handle.remove()
        names = list(captured)
        cotangents, kind = _output_cotangents(outputs, targets, loss_fn, generator)
        gradients = {name: [] for name in names}
        for index, cotangent in enumerate(cotangents):
            found = torch.autograd.grad(outputs, [captured[n][1] for n in names], cotangent,
                                        retain_graph=index + 1 < len(cotangents),
                                        allow_unused=True)
            for name, g in zip(names, found):
                if g is not None:
                    gradients[name].append(g)
        moments = {}
        for name, (layer_input, _) in captured.items():
            if not gradients[name]:
                continue
            module = self.layers[name].module
            patches = _input_patches(module, layer_input)          # (b, positions, fan_in)
            if module.bias is not None and self.layers[name].bias is not None:
                patches = torch.cat([patches, torch.ones_like(patches[..., :1])], -1)
            flat = patches.reshape(-1, patches.shape[-1])
            input_moment = flat.T @ flat
            gradient_moment = 0
            for g in gradients[name]:                          # (b, positions, units)
                per_sample = _output_positions(module, g)
                flat_g = per_sample.reshape(-1, per_sample.shape[-1])
                gradient_moment = gradient_moment + flat_g.T @ flat_g
            moments[name] = (input_moment, gradient_moment, flat.shape[0])
        return kind, moments


def _supported(layer):
    module = layer.module
    if layer.hooked is not module:
        return False
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.groups == 1 \
        and module.padding_mode == "zeros"


def _input_patches(module, layer_input):
    """The layer's inputs as (batch, positions, fan_in) (patches for a convolution)."""
    if isinstance(module, nn.Linear):
        return layer_input.reshape(layer_input.shape[0], -1, layer_input.shape[-1])
    if isinstance(module, nn.Conv1d):
        layer_input = layer_input.unsqueeze(2)
        kernel, dilation = (1, *module.kernel_size), (1, *module.dilation)
        padding, stride = (0, *module.padding), (1, *module.stride)
    else:
        kernel, dilation = module.kernel_size, module.dilation
        padding, stride = module.padding, module.stride
    if isinstance(padding, str):            # 'same' / 'valid' (stride 1)
        padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation)) \
            if padding == "same" else (0, 0)
    patches = F.unfold(layer_input, kernel, dilation=dilation, padding=padding,
                       stride=stride)                              # (b, fan_in, positions)
    return patches.transpose(1, 2)


def _output_positions(module, gradient):
    """Output gradients as (batch, positions, units)."""
    if isinstance(module, nn.Linear):
        return gradient.reshape(gradient.shape[0], -1, gradient.shape[-1])
    return gradient.reshape(gradient.shape[0], gradient.shape[1], -1).transpose(1, 2)


def cross_entropy_class_dim(outputs, targets, loss_fn):
    """The class dimension if ``loss_fn`` is a mean softmax cross-entropy, else None.

    Integer targets with one dimension fewer than the outputs are checked against
    :func:`torch.nn.functional.cross_entropy` with the classes in dimension 1 (PyTorch's
    layout), then in the last dimension (a language model's logits, flattened by the
    loss): the one that reproduces the loss, to 1e-6, is the class dimension.
    """
    if targets.is_floating_point() or outputs.ndim != targets.ndim + 1:
        return None
    with torch.no_grad():
        value = float(loss_fn(outputs, targets))
        for dim in dict.fromkeys((1, outputs.ndim - 1)):
            moved = outputs.movedim(dim, -1)
            if moved.shape[:-1] != targets.shape:
                continue
            reference = float(F.cross_entropy(moved.reshape(-1, moved.shape[-1]),
                                              targets.reshape(-1)))
            if abs(reference - value) <= 1e-6 * max(1.0, abs(value)):
                return dim
    return None


def _output_cotangents(outputs, targets, loss_fn, generator):
    """Cotangents of the outputs whose outer products average to the loss curvature.

    Each cotangent is the gradient of a per-sample loss in the outputs (so their
    second moment, summed over cotangents, is the per-sample curvature); see the
    module docstring for the three kinds.
    """
    batch = outputs.shape[0]
    dim = cross_entropy_class_dim(outputs.detach(), targets, loss_fn)
    if dim is None:
        loss = loss_fn(outputs, targets) * batch        # per-sample losses, summed
        (gradient,) = torch.autograd.grad(loss, outputs, retain_graph=True)
        return [gradient.detach()], "empirical_fisher"
    logits = outputs.detach().movedim(dim, -1)
    probabilities = torch.softmax(logits.double(), -1).to(logits.dtype)
    classes = logits.shape[-1]
    # Per sample the loss is a mean over its positions.
    per_position = 1.0 / (logits[0].numel() // classes)
    if classes <= EXACT_FISHER_CLASSES:
        # sum_c p_c (e_c - p)(e_c - p)^T = diag(p) - p p^T
        root = probabilities.sqrt()
        cotangents = [((F.one_hot(torch.full_like(targets, c), classes).to(logits.dtype)
                        - probabilities) * root[..., c:c + 1] * per_position).movedim(-1, dim)
                      for c in range(classes)]
        return cotangents, "fisher"
    drawn = torch.multinomial(probabilities.reshape(-1, classes).double(), 1,
                              generator=generator).reshape(targets.shape)
    cotangent = (probabilities - F.one_hot(drawn, classes).to(logits.dtype)) * per_position
    return [cotangent.movedim(-1, dim)], "sampled_fisher"
