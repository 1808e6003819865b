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

``G`` needs output cotangents whose second moment is the loss's curvature in the
outputs. With at most :data:`EXACT_FISHER_CLASSES` outputs per sample, that curvature
is taken exactly for any loss: the columns of a square root of each sample's loss
Hessian, one backward pass each. For a softmax cross-entropy over many outputs (a
language model's positions) the curvature is ``diag(p) - p p^T`` per position: with
at most :data:`EXACT_FISHER_CLASSES` classes it is exact, one backward pass per class
with targets weighted by ``p``; beyond, one backward pass with targets drawn from ``p``
(a Monte Carlo Fisher, unbiased). For any other loss with many outputs, the gradients
of the true targets are used (the empirical Fisher): a cruder approximation, which
only preconditions (the Unlearner's conjugate-gradient solve uses exact products).

The eigendecomposition of a layer's ``A`` is computed when the layer is first solved
with (a layer no block touches is never decomposed) and kept, in the model's dtype, so
that the inverse of ``A (x) G[S, S] + damping`` on any subset S of a layer's units
costs one small eigendecomposition of ``G[S, S]`` and a few matrix products. Beyond
:data:`EIGH_DIMENSION` rows (a convolution with 512 input channels has a 4609 x 4609
``A``: half a minute of CPU to decompose), the damping is factored and ``A`` is only
Cholesky-factorized.
"""

import collections
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import hessian, vmap

from .curvature import cross_entropy_class_dim
from .slices import unfused_attention

__all__ = ["EIGH_DIMENSION", "EXACT_FISHER_CLASSES", "KroneckerFactors",
           "KroneckerPreconditioner"]

#: Up to this many outputs per sample, the loss curvature in the outputs is taken
#: exactly for any loss (one backward pass per output), and up to this many classes
#: for a cross-entropy over positions (one per class); beyond, a cross-entropy's is
#: sampled (one target per position).
EXACT_FISHER_CLASSES = 16

#: Layers whose input factor A has at most this many rows are solved exactly through
#: its eigendecomposition; larger ones with factored damping (see
#: :meth:`KroneckerFactors.solve`).
EIGH_DIMENSION = 2048


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
        convolutions without groups get factors (a layer called several times counts
        each call's positions as more positions); the others (3-D and grouped
        convolutions, the output projection of ``nn.MultiheadAttention``, which its
        module applies without calling it) are left out.
    batches : iterable of (Tensor, Tensor)
        The curvature sample, batch by batch.
    generator : torch.Generator
        Draws the Monte Carlo targets (cross-entropy with many classes).
    sampled : bool, default=False
        Take a cross-entropy's curvature from one sampled target per position even
        with at most :data:`EXACT_FISHER_CLASSES` classes (one backward pass per sample
        instead of one per class).

    Attributes
    ----------
    factors : mapping of str to tuple
        Per layer name: ``(eigenvalues_A, eigenvectors_A, G)``, ``A`` and ``G`` as
        above (``G`` kept whole: subsets of units take its sub-blocks); ``A`` is
        decomposed when its layer is first looked up.
    n_samples : int
        Samples the factors average over.
    kind : str
        ``"fisher"`` (exact), ``"sampled_fisher"`` or ``"empirical_fisher"``.
    backward_samples : int
        Backward passes the factors took, counted per sample (one per cotangent).
    """

    def __init__(self, model, loss_fn, layers, batches, generator, *, sampled=False):
        self.layers = {name: layer for name, layer in layers.items() if _supported(layer)}
        self._model, self._batches = model, []      # the sample's inputs, kept
        sums = {name: None for name in self.layers}
        n_samples, kind, self.backward_samples = 0, None, 0
        self.cost = collections.Counter()
        for inputs, targets in batches:
            self._batches.append(inputs)
            batch_kind, moments, passes = self._batch_moments(model, loss_fn, inputs,
                                                              targets, generator, sampled)
            kind = kind or batch_kind
            n_samples += inputs.shape[0]
            self.backward_samples += passes * inputs.shape[0]
            for name, summed in moments.items():
                previous = sums[name]
                if previous is None:
                    sums[name] = list(summed)
                else:                   # in place: a G of 8192 units is 268 MB
                    previous[0] += summed[0]
                    previous[1].add_(summed[1])
                    previous[2] += summed[2]
        self.n_samples, self.kind = n_samples, kind
        self._gradient, self._input_trace, self._width, self._input = {}, {}, {}, {}
        for name, summed in sums.items():
            if summed is None:          # the layer was not called on these samples
                continue
            squares, gradient_moment, positions, width = summed
            # symmetric up to rounding, and eigh and Cholesky read one triangle only
            self._gradient[name] = gradient_moment.div_(n_samples)
            self._input_trace[name] = float(squares) / positions   # the trace of A
            self._width[name] = width
        self.factors = _Decomposed(self)
        self._whole, self._cholesky = {}, {}

    def input_factor(self, name):
        """The input factor ``A`` of a layer (computed when first asked for)."""
        if name not in self._input:
            self.prepare([name])
        return self._input[name]

    def _taken_input(self, name):
        """``A`` of a layer, computed if need be, and no longer kept."""
        self.prepare([name])
        return self._input.pop(name)

    def prepare(self, names):
        """Compute the input factors of the layers ``names`` not computed yet, all in
        one forward pass over the curvature sample (counted in ``cost`` as
        ``"forward_samples"``)."""
        wanted = [name for name in dict.fromkeys(names)
                  if name in self._gradient and name not in self._input]
        if not wanted:
            return
        sums = {name: [0, 0] for name in wanted}

        def hook_for(name):
            def hook(module, args, output):
                module = self.layers[name].module
                patches = _input_patches(module, args[0].detach())
                if module.bias is not None and self.layers[name].bias is not None:
                    patches = torch.cat([patches, torch.ones_like(patches[..., :1])], -1)
                flat = patches.reshape(-1, patches.shape[-1])
                if sums[name][1] == 0:
                    sums[name][0] = flat.T @ flat
                else:           # in place: an 8193-wide layer's moment is 268 MB
                    sums[name][0].addmm_(flat.T, flat)
                sums[name][1] += flat.shape[0]
            return hook

        handles = [self.layers[name].module.register_forward_hook(hook_for(name))
                   for name in wanted]
        try:
            with torch.no_grad(), unfused_attention():
                for inputs in self._batches:
                    self._model(inputs)
                    self.cost["forward_samples"] += inputs.shape[0]
        finally:
            for handle in handles:
                handle.remove()
        for name, (moment, positions) in sums.items():
            self._input[name] = moment.div_(positions)

    def solve(self, name, units, right, damping, *, unit_wise=False):
        """``(A (x) G[S, S] + damping I)^{-1}`` applied to a units-by-input matrix.

        With ``unit_wise``, ``G[S, S]`` is replaced by its diagonal: each unit's own
        block ``G_uu A``, the units uncoupled. For a layer whose ``A`` has more than
        :data:`EIGH_DIMENSION` rows (and not ``unit_wise``), the damping is factored
        instead (Martens and Grosse 2015, section 6.3):
        ``(A + pi sqrt(damping) I)^{-1} (x) (G[S, S] + sqrt(damping) / pi I)^{-1}``
        with ``pi^2`` the ratio of the factors' mean eigenvalues, by two Cholesky
        factorizations, a tenth of the cost of an eigendecomposition.

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
        if not unit_wise and right.shape[1] > EIGH_DIMENSION:
            return self._factored_solve(name, units, right, damping)
        eigenvalues_a, vectors_a, G = self.factors[name]
        if unit_wise:
            scale = torch.diagonal(G)[units].clamp_min(0)[:, None] * eigenvalues_a + damping
            return (((right.to(G.dtype) @ vectors_a) / scale) @ vectors_a.T).to(right.dtype)
        if units.numel() == G.shape[0]:         # the whole layer: decomposed once
            if name not in self._whole:
                self._whole[name] = _eigh(G)
            eigenvalues_g, vectors_g = self._whole[name]
        else:
            eigenvalues_g, vectors_g = _eigh(G[units][:, units])
        scale = eigenvalues_g.clamp_min(0)[:, None] * eigenvalues_a[None, :] + damping
        rotated = vectors_g.T @ right.to(G.dtype) @ vectors_a
        return (vectors_g @ (rotated / scale) @ vectors_a.T).to(right.dtype)

    def _factored_solve(self, name, units, right, damping):
        """The factored-damping solve of :meth:`solve`; the Cholesky factor of the
        damped ``A`` is kept for the next solve with the same damping, instead of
        ``A``."""
        G = self._gradient[name]
        mean_a = self._input_trace[name] / right.shape[1]
        mean_g = float(torch.diagonal(G)[units].double().mean())
        pi = (mean_a / mean_g) ** 0.5 if mean_a > 0 and mean_g > 0 else 1.0
        root = damping ** 0.5
        kept = self._cholesky.get(name)
        if kept is None or kept[0] != pi * root:
            # A is factorized in its own memory and is recomputed (one forward
            # pass) if another damping needs it
            kept = self._cholesky[name] = (pi * root, _shifted_cholesky(
                lambda: self._taken_input(name), pi * root))
        left = torch.cholesky_solve(right.to(G.dtype), _shifted_cholesky(
            lambda: G[units][:, units], root / pi))
        # left A^-1 by two triangular solves on the kept factor L (A = L L^T), which
        # read L in place; cholesky_solve would copy it to column-major first
        factor = kept[1]
        half = torch.linalg.solve_triangular(factor.mT, left.to(factor.dtype), upper=True,
                                             left=False)
        solved = torch.linalg.solve_triangular(factor, half, upper=False, left=False)
        return solved.to(right.dtype)

    def nbytes(self):
        """Bytes the factors hold (with the decompositions kept)."""
        tensors = [*self._gradient.values(), *self._input.values(), *self._batches]
        tensors += [factor for _, factor in self._cholesky.values()]
        tensors += [t for factor in self.factors.decomposed.values() for t in factor[:2]]
        tensors += [t for pair in self._whole.values() for t in pair]
        return sum(t.numel() * t.element_size() for t in tensors)

    def mean_curvature(self):
        """Average eigenvalue of the factored blocks (the scale of the others)."""
        values = [self._input_trace[name] / self._width[name]
                  * float(torch.diagonal(G).mean()) for name, G in self._gradient.items()]
        return sum(values) / len(values) if values else 0.0

    # ------------------------------------------------------------------------------
    def _batch_moments(self, model, loss_fn, inputs, targets, generator, sampled):
        """Per layer of a batch: the summed squared norms of its inputs (the trace of
        the input moment), the summed gradient moment, the positions and the input
        width."""
        captured = {name: [] for name in self.layers}     # every call: (input, output)

        def hook_for(name):
            def hook(module, args, output):
                if output.requires_grad:
                    captured[name].append((args[0].detach(), output))
            return hook

        handles = [layer.module.register_forward_hook(hook_for(name))
                   for name, layer in self.layers.items()]
        try:
            with torch.enable_grad(), unfused_attention():
                outputs = model(inputs)
        finally:
            for handle in handles:
                handle.remove()
        calls = [(name, index) for name, seen in captured.items()
                 for index in range(len(seen))]
        cotangents, kind = _output_cotangents(outputs, targets, loss_fn, generator, sampled)
        gradients = {call: [] for call in calls}
        for number, cotangent in enumerate(cotangents):
            found = torch.autograd.grad(outputs, [captured[n][i][1] for n, i in calls],
                                        cotangent, retain_graph=number + 1 < len(cotangents),
                                        allow_unused=True)
            for call, g in zip(calls, found):
                if g is not None:
                    gradients[call].append(g)
        moments = {}
        for name, index in calls:
            if not gradients[(name, index)]:
                continue
            module = self.layers[name].module
            # a layer called several times: each call's positions are more positions
            patches = _input_patches(module, captured[name][index][0])  # (b, positions, fan_in)
            if module.bias is not None and self.layers[name].bias is not None:
                patches = torch.cat([patches, torch.ones_like(patches[..., :1])], -1)
            flat = patches.reshape(-1, patches.shape[-1])
            squares = torch.linalg.vector_norm(flat, dtype=torch.float64) ** 2
            gradient_moment = 0
            for g in gradients[(name, index)]:                    # (b, positions, units)
                per_sample = _output_positions(module, g)
                flat_g = per_sample.reshape(-1, per_sample.shape[-1])
                gradient_moment = gradient_moment + flat_g.T @ flat_g
            summed = (squares, gradient_moment, flat.shape[0])
            if name in moments:         # another call of the layer: more positions
                summed = tuple(a + b for a, b in zip(moments[name], summed))
            moments[name] = (*summed[:3], flat.shape[1])
        return kind, moments, len(cotangents)


class _Decomposed(Mapping):
    """Layer name -> ``(eigenvalues_A, eigenvectors_A, G)``, decomposing ``A`` on the
    first lookup of its layer."""

    def __init__(self, factors):
        self._factors, self.decomposed = factors, {}

    def __getitem__(self, name):
        if name not in self.decomposed:
            A, G = self._factors.input_factor(name), self._factors._gradient[name]
            eigenvalues, eigenvectors = _eigh(A)
            self.decomposed[name] = (eigenvalues.clamp_min(0), eigenvectors, G)
        return self.decomposed[name]

    def __iter__(self):
        return iter(self._factors._gradient)

    def __len__(self):
        return len(self._factors._gradient)

    def __contains__(self, name):
        return name in self._factors._gradient


def _shifted_cholesky(fresh, shift):
    """The Cholesky factor of ``M + shift I``, computed in the memory of the matrix M
    that ``fresh()`` returns (a 8193-row factor is 268 MB in float32), in its dtype;
    while rounding leaves it indefinite, the shift grows tenfold on a fresh M."""
    while True:
        matrix = fresh()
        matrix.diagonal().add_(shift)
        factor, failed = torch.linalg.cholesky_ex(matrix, out=(matrix, torch.empty(
            (), dtype=torch.int32, device=matrix.device)))
        if not int(failed):
            return factor
        shift *= 10


def _eigh(matrix):
    """Eigendecomposition of a symmetric matrix, computed in float64 (float32's
    iteration fails to converge on the many equal eigenvalues of a factor with dead
    units) and returned in the matrix's dtype."""
    eigenvalues, vectors = torch.linalg.eigh(0.5 * (matrix + matrix.T).double())
    return eigenvalues.to(matrix.dtype), vectors.to(matrix.dtype)


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


def _output_cotangents(outputs, targets, loss_fn, generator, sampled=False):
    """Cotangents of the outputs whose outer products average to the loss curvature.

    Summed over the cotangents, the outer products are each sample's curvature of its
    loss in its outputs (exactly, or in expectation for sampled targets); see the
    module docstring for the kinds. ``sampled``: a cross-entropy's from one sampled
    target whatever the number of classes.
    """
    batch = outputs.shape[0]
    dim = cross_entropy_class_dim(outputs.detach(), targets, loss_fn)
    if outputs[0].numel() <= EXACT_FISHER_CLASSES and not (sampled and dim is not None):
        return _hessian_roots(outputs.detach(), targets, loss_fn), "fisher"
    if dim is None:
        loss = loss_fn(outputs, targets) * batch        # per-sample losses, summed
        (gradient,) = torch.autograd.grad(loss, outputs, retain_graph=True)
        return [gradient.detach()], "empirical_fisher"
    logits = outputs.detach().movedim(dim, -1)
    probabilities = torch.softmax(logits.double(), -1).to(logits.dtype)
    classes = logits.shape[-1]
    # Per sample the loss is a mean over its T positions: its curvature in one
    # position's logits is (diag p - p p^T) / T, the second moment of these cotangents
    # scaled by 1 / sqrt(T).
    per_position = (logits[0].numel() // classes) ** -0.5
    if classes <= EXACT_FISHER_CLASSES and not sampled:
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


class KroneckerPreconditioner:
    """``(K-FAC + damping)^{-1}`` on a parameter block, for conjugate gradients.

    Each layer's part of the block (the weight rows and bias entries of some of its
    units) is solved with :meth:`KroneckerFactors.solve`; parameters of layers without
    factors are divided by the mean K-FAC curvature plus the damping.

    Parameters
    ----------
    factors : KroneckerFactors
    slice_map : SliceMap
    block : Block
        The block the vectors live on (its ``rows`` order is the vectors' layout).
    params : dict of str to Tensor
        The model's parameters by name (for shapes).
    """

    def __init__(self, factors, slice_map, block, params):
        self.factors = factors
        factors.prepare(name for name, layer in slice_map.layers.items()
                        if layer.weight in block.rows)
        self.fallback = factors.mean_curvature()
        offsets, start = {}, 0
        for name, rows in block.rows.items():
            count = rows.numel() * params[name][0].numel()
            offsets[name] = (start, count, rows)
            start += count
        self.size = start
        self.layers, covered = [], set()
        for layer_name, layer in slice_map.layers.items():
            if layer_name not in factors.factors or layer.weight not in offsets:
                continue
            if layer.bias is not None and not torch.equal(offsets[layer.bias][2],
                                                          offsets[layer.weight][2]):
                continue                # bias and weight rows of different units
            self.layers.append((layer_name, offsets[layer.weight],
                                None if layer.bias is None else offsets[layer.bias]))
            covered.update(name for name in (layer.weight, layer.bias) if name is not None)
        self.uncovered = [offsets[name][:2] for name in offsets if name not in covered]

    def __call__(self, vector, damping):
        """The preconditioned ``vector`` (same dtype), for curvature + ``damping`` I."""
        out = torch.empty_like(vector)
        for name, (w_start, w_count, units), bias in self.layers:
            weight = vector[w_start:w_start + w_count].reshape(units.numel(), -1)
            right = weight if bias is None else torch.cat(
                [weight, vector[bias[0]:bias[0] + bias[1]][:, None]], 1)
            solved = self.factors.solve(name, units, right, damping)
            out[w_start:w_start + w_count] = solved[:, :weight.shape[1]].reshape(-1)
            if bias is not None:
                out[bias[0]:bias[0] + bias[1]] = solved[:, -1]
        for start, count in self.uncovered:
            out[start:start + count] = vector[start:start + count] / (self.fallback + damping)
        return out


def _hessian_roots(outputs, targets, loss_fn):
    """Columns of a square root of each sample's loss Hessian in its (few) outputs."""
    shape = outputs.shape[1:]

    def sample_loss(output, target):
        return loss_fn(output.reshape(1, *shape), target.unsqueeze(0))

    flat = outputs.reshape(outputs.shape[0], -1)
    hessians = vmap(hessian(sample_loss))(flat, targets)
    eigenvalues, vectors = torch.linalg.eigh(0.5 * (hessians + hessians.transpose(1, 2)))
    roots = vectors * eigenvalues.clamp_min(0).sqrt()[:, None, :]
    return [roots[:, :, k].reshape(outputs.shape) for k in range(flat.shape[1])]
