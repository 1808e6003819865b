"""The retained training objective restricted to a parameter block: value, gradient,
curvature, and the damped Newton solve.

Everything is computed with :mod:`torch.func` on a functional copy of the model in
which only the block is a variable, so the block Hessian is exactly the sub-block of
the full Hessian (no finite differences, no stored training gradients).
"""

import collections
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, hessian, jacrev, jvp, vjp, vmap
from torch.utils.flop_counter import FlopCounterMode

from .slices import SliceMap, unfused_attention

__all__ = ["ACTIVATION_BUDGET", "DENSE_PRODUCTS", "BlockObjective", "SubspaceObjective",
           "activation_bytes", "check_finite", "forward_flops", "conjugate_gradients",
           "cross_entropy_class_dim", "damped_newton_step", "layer_directions",
           "output_curvature"]

#: A dense block is built only when that takes at most this many curvature-vector
#: products (its size, for the exact Hessian) or output gradients per sample (the
#: Gauss-Newton matrix from Jacobians); otherwise conjugate gradients solve the step.
DENSE_PRODUCTS = 256

#: Bytes of activations (with their tangents) one batched curvature product may hold.
ACTIVATION_BUDGET = 512 * 2**20


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


def output_curvature(outputs, targets, loss_fn):
    """``u -> H u`` for the Hessian H of the batch loss in the outputs.

    For a mean softmax cross-entropy (:func:`cross_entropy_class_dim`) it is
    ``(p * u - p * sum(p * u)) / m`` over the class dimension, m the number of
    predictions averaged (samples times positions): no pass through the loss. For
    any other loss, a double backward pass through the loss alone.
    """
    dim = cross_entropy_class_dim(outputs, targets, loss_fn)
    if dim is None:
        _, hessian_vector = vjp(grad(lambda o: loss_fn(o, targets)), outputs)
        return lambda u: hessian_vector(u)[0]
    p = torch.softmax(outputs, dim)
    scale = outputs.shape[dim] / outputs.numel()
    return lambda u: scale * (p * u - p * (p * u).sum(dim, keepdim=True))


def activation_bytes(model, inputs):
    """Bytes of the outputs of every module of ``model`` for one sample of ``inputs``.

    A forward pass's stored activations are about this per sample; a curvature-vector
    product holds them and their tangents (about three times as much).
    """
    total = [0]

    def count(module, args, output):
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * output.element_size()

    handles = [module.register_forward_hook(count) for module in model.modules()]
    try:
        with torch.no_grad(), unfused_attention():
            model(inputs[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def forward_flops(model, inputs):
    """Floating-point operations of a forward pass of one sample of ``inputs``, as
    :class:`torch.utils.flop_counter.FlopCounterMode` counts them (matrix products and
    convolutions); at least twice the parameter count."""
    floor = 2 * sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), unfused_attention(), counter:
        model(inputs[:1])
    return max(floor, counter.get_total_flops())


class BlockObjective:
    """F_r(w) = mean retained loss + (weight_decay / 2) ||w||^2, as a function of a block.

    Parameters
    ----------
    model : torch.nn.Module
        Evaluated with its current mode (the caller puts it in ``eval()``: BatchNorm
        uses its running statistics, dropout is off).
    loss_fn : callable
        ``loss_fn(outputs, targets)``, a mean over the batch.
    data : TrainingData
    retained : LongTensor
        Indices of the samples the objective sums over.
    weight_decay : float
    block : Block
        The parameter entries that vary.
    curvature_samples : LongTensor, optional
        Indices (a subset of ``retained``) over which curvature is averaged; all
        retained samples by default.
    offset : Tensor, optional
        A fixed block vector c: the objective becomes ``F_r(w) - c . w_block`` (its
        gradient ``grad F_r - c``). With c the full training gradient at the original
        weights, the minimizer removes the samples' influence without training the
        model further.
    sample_bytes : int, optional
        Activation bytes of one sample (:func:`activation_bytes`; measured when first
        needed if not given): curvature products carry as many vectors at once as
        :data:`ACTIVATION_BUDGET` allows.
    cost : collections.Counter, optional
        Incremented with the samples passed: ``"forward_samples"`` (losses),
        ``"backward_samples"`` (gradients, one per output for a dense Gauss-Newton
        block) and ``"product_samples"`` (one per sample and curvature-vector product).
    slice_map : SliceMap, optional
        The model's slices (built from the model if not given).
    """

    def __init__(self, model, loss_fn, data, retained, weight_decay, block, *,
                 curvature_samples=None, offset=None, sample_bytes=None, cost=None,
                 slice_map=None):
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.retained = retained
        self.curvature_samples = retained if curvature_samples is None else curvature_samples
        self.weight_decay = float(weight_decay)
        self.block = block
        self.params = {name: p.detach() for name, p in model.named_parameters()}
        self.buffers = {name: b.detach() for name, b in model.named_buffers()}
        self.theta = block.gather(self.params)
        rest = sum(float(p.reshape(-1) @ p.reshape(-1)) for p in self.params.values())
        self._norm_rest = rest - float((self.theta ** 2).sum())
        self.offset = torch.zeros_like(self.theta) if offset is None else offset.to(self.theta)
        self._sample_bytes = sample_bytes
        self.cost = collections.Counter() if cost is None else cost
        self._row_layers = _row_layers(model, block,
                                       SliceMap(model) if slice_map is None else slice_map)

    def _call(self, params, inputs):
        """The model's output with ``params`` (transformer layers unfused)."""
        with unfused_attention():
            return functional_call(self.model, (params, self.buffers), (inputs,))

    def _block_call(self, theta, inputs):
        """The model's output with the block at ``theta`` (differentiable in ``theta``).

        A parameter wholly in the block is ``theta``'s piece itself. The rows of a
        linear or convolutional layer's weight and bias that are only partly in the
        block enter by a forward hook on the layer, which adds what their change does
        to those units' outputs: no copy of the full weight (for a 8192 x 8192 layer,
        268 MB per copy, and as many for each tangent and gradient). Other parameters
        (shared ones, layers applied without being called) are copied with the rows
        replaced.
        """
        counts = [len(rows) * self.params[name][0].numel()
                  for name, rows in self.block.rows.items()]
        params, changes = dict(self.params), {}
        for (name, rows), piece in zip(self.block.rows.items(), theta.split(counts)):
            base = self.params[name]
            piece = piece.reshape((len(rows),) + tuple(base.shape[1:]))
            if len(rows) == base.shape[0]:
                params[name] = piece
            elif name in self._row_layers:
                changes[name] = piece - base[rows]
            else:
                params[name] = base.index_put((rows,), piece)
        handles = []
        for module, weight, bias, rows in {id(v[0]): v for v in (
                self._row_layers[name] for name in changes)}.values():
            handles.append(module.register_forward_hook(     # before any other hook
                _row_change_hook(changes[weight], changes.get(bias), rows), prepend=True))
        try:
            return self._call(params, inputs)
        finally:
            for handle in handles:
                handle.remove()

    def _batch_loss(self, theta, inputs, targets):
        return self.loss_fn(self._block_call(theta, inputs), targets)

    def _sweep(self, indices):
        total = indices.numel()
        for inputs, targets in self.data.batches(indices):
            yield inputs, targets, inputs.shape[0] / total

    def value(self, theta):
        """F_r at ``theta`` (the full weight-decay term included)."""
        self.cost["forward_samples"] += self.retained.numel()
        with torch.no_grad():
            loss = sum(float(self._batch_loss(theta, x, t)) * w
                       for x, t, w in self._sweep(self.retained))
        penalty = self._norm_rest + float((theta.double() ** 2).sum())
        shift = float(self.offset.double() @ theta.double())
        return loss + 0.5 * self.weight_decay * penalty - shift

    def gradient(self, theta):
        """The gradient of F_r with respect to the block at ``theta``."""
        self.cost["backward_samples"] += self.retained.numel()
        total = torch.zeros_like(theta)
        for x, t, w in self._sweep(self.retained):
            total += w * grad(self._batch_loss)(theta, x, t)
        return total + self.weight_decay * theta - self.offset

    def dense_is_cheap(self, theta, kind, budget=None):
        """Whether building the dense block is cheap: within ``budget`` backward passes
        per sample (a curvature product counts two; the exact Hessian takes one product
        per parameter, the Gauss-Newton matrix one backward pass per model output or
        one product per parameter, the fewer), or, without a budget, at most
        :data:`DENSE_PRODUCTS` products or output gradients per sample."""
        if budget is not None:
            per_sample = 2 * theta.numel()
            if kind == "gauss_newton":
                per_sample = min(per_sample, self._outputs_per_sample())
            return per_sample * self.curvature_samples.numel() <= budget
        if theta.numel() <= DENSE_PRODUCTS:
            return True
        return kind == "gauss_newton" and self._outputs_per_sample() <= DENSE_PRODUCTS

    def _outputs_per_sample(self):
        inputs, _ = self.data.get(self.curvature_samples[:1])
        with torch.no_grad():
            return self._call(self.params, inputs).numel()

    def _vectors_per_product(self, batch):
        """How many vectors one batched product may carry within the activation budget."""
        if self._sample_bytes is None:
            inputs, _ = self.data.get(self.curvature_samples[:1])
            self._sample_bytes = max(1, activation_bytes(self.model, inputs))
        return max(1, ACTIVATION_BUDGET // (3 * self._sample_bytes * batch))

    def _products(self, theta, vectors, kind):
        """Curvature times each row of ``vectors``, averaged over the curvature samples."""
        def hessian_product(x, t):
            # reverse over reverse: double backward is defined for more operations
            # than forward over reverse (e.g. mse_loss)
            return vjp(lambda th: grad(self._batch_loss)(th, x, t), theta)[1]

        def gauss_newton_product(x, t):
            def outputs(th):
                return self._block_call(th, x)
            out, pullback = vjp(outputs, theta)
            loss_curvature = output_curvature(out.detach(), t, self.loss_fn)

            def product(v):          # J^T H J v: one jvp and one vjp, whatever the outputs
                jv = jvp(outputs, (theta,), (v,))[1]
                return pullback(loss_curvature(jv))[0]
            return product

        make = hessian_product if kind == "exact" else gauss_newton_product
        self.cost["product_samples"] += self.curvature_samples.numel() * vectors.shape[0]
        total = torch.zeros_like(vectors)
        for x, t, w in self._sweep(self.curvature_samples):
            product = vmap(_first_of(make(x, t)))
            step = self._vectors_per_product(x.shape[0])
            for start in range(0, vectors.shape[0], step):
                total[start:start + step] += w * product(vectors[start:start + step])
        return total + self.weight_decay * vectors

    def hessian(self, theta, *, kind="exact", chunk_size=64):
        """The dense block curvature matrix (float64).

        ``kind="exact"``: the Hessian, from Hessian-vector products ``chunk_size``
        columns at a time. ``kind="gauss_newton"``: the generalized Gauss-Newton matrix
        (positive semi-definite for convex losses). When every parameter of the block
        belongs to an :class:`~torch.nn.Linear` layer called once on (batch, features)
        inputs, it is assembled from the per-sample Jacobians ``J_i`` of the outputs
        (unit output gradients times layer inputs) as ``sum_i J_i^T A_i J_i``, with
        ``A_i`` the Hessian of sample i's loss in the outputs: one backward pass per
        output instead of one product per parameter, if the model has at most twice as
        many outputs per sample as the block has parameters. Otherwise it is built
        from products like the exact Hessian.
        """
        matrix = None
        # Jacobians cost a backward pass per output, products about two per parameter
        if kind == "gauss_newton" and self._outputs_per_sample() <= 2 * theta.numel():
            matrix = self._linear_gauss_newton(theta)
            if matrix is None:
                matrix = self._jacobian_gauss_newton(theta)
            if matrix is not None:          # one backward pass per output and sample
                self.cost["backward_samples"] += (self.curvature_samples.numel()
                                                  * self._outputs_per_sample())
        if matrix is None:
            p = theta.numel()
            eye = torch.eye(p, dtype=theta.dtype, device=theta.device)
            columns = [self._products(theta, eye[start:start + chunk_size], kind)
                       for start in range(0, p, chunk_size)]
            matrix = torch.cat(columns).double()
        return 0.5 * (matrix + matrix.T)

    def _linear_gauss_newton(self, theta, max_entries=2 ** 23):
        """The Gauss-Newton block from layer inputs and unit Jacobians, or None when the
        block is not made of linear layers applied once to (batch, features) inputs."""
        segments = []
        for name, rows in self.block.rows.items():
            owner, _, attribute = name.rpartition(".")
            module = self.model.get_submodule(owner)
            if not isinstance(module, torch.nn.Linear) or attribute not in ("weight", "bias"):
                return None
            segments.append((module, attribute, rows))
        modules = list(dict.fromkeys(module for module, _, _ in segments))
        p = theta.numel()
        total = torch.zeros(p, p, dtype=torch.float64, device=theta.device)
        for x, t, w in self._sweep(self.curvature_samples):
            per_chunk = max(1, max_entries // (p * 16))
            for start in range(0, x.shape[0], per_chunk):
                xs, ts = x[start:start + per_chunk], t[start:start + per_chunk]
                pieces = self._unit_jacobians(theta, xs, ts, modules, segments)
                if pieces is None:
                    return None
                J, A = pieces               # in the model's dtype; the sum is float64
                total += (w / x.shape[0]) * (J.reshape(-1, p).T
                                             @ torch.bmm(A, J).reshape(-1, p)).double()
        return total + self.weight_decay * torch.eye(p, dtype=torch.float64,
                                                     device=theta.device)

    def _jacobian_gauss_newton(self, theta, max_entries=2 ** 23):
        """The Gauss-Newton block from per-sample Jacobians of the outputs in the block
        (``torch.func.jacrev`` under ``vmap``: one backward pass per output), for any
        architecture; None if the model cannot be called per sample under ``vmap``."""
        p = theta.numel()

        def outputs(th, x):
            out = self._block_call(th, x.unsqueeze(0))
            return out.reshape(-1), out

        total = torch.zeros(p, p, dtype=torch.float64, device=theta.device)
        with warnings.catch_warnings():
            # operations without a batching rule run in a loop (slower, still exact)
            warnings.filterwarnings("ignore", message="There is a performance drop")
            try:
                for x, t, w in self._sweep(self.curvature_samples):
                    with torch.no_grad():       # chunks of at most max_entries in J
                        K = outputs(theta, x[0])[0].numel()
                    per_chunk = max(1, max_entries // (p * K))
                    for start in range(0, x.shape[0], per_chunk):
                        xs, ts = x[start:start + per_chunk], t[start:start + per_chunk]
                        J, out = vmap(jacrev(outputs, has_aux=True),
                                      in_dims=(None, 0))(theta, xs)
                        A = self._output_hessians(out.detach().reshape(xs.shape[0], -1),
                                                  ts, out.shape[2:])
                        total += (w / x.shape[0]) * (
                            J.reshape(-1, p).T @ torch.bmm(A, J).reshape(-1, p)).double()
            except (RuntimeError, NotImplementedError):
                return None  # an operation without a batching rule: use products
        return total + self.weight_decay * torch.eye(p, dtype=torch.float64,
                                                     device=theta.device)

    def _unit_jacobians(self, theta, x, t, modules, segments):
        """Per-sample output Jacobians over the block (b, K, p) and loss Hessians in the
        outputs (b, K, K); None if a layer is not called once on 2-D input."""
        layer_jacobians, A = self._layer_jacobians(theta, x, t, modules)
        if len(layer_jacobians) != len(modules):
            return None
        b, K = A.shape[:2]
        pieces = []
        for module, attribute, rows in segments:
            inputs, jz = layer_jacobians[module]
            jz = jz[:, :, rows]
            if attribute == "weight":
                pieces.append((jz[..., None] * inputs[:, None, None, :]).reshape(b, K, -1))
            else:
                pieces.append(jz)
        return torch.cat(pieces, dim=2), A

    def _layer_jacobians(self, theta, x, t, modules):
        """For each of ``modules`` called once on (batch, features) inputs: its inputs
        (b, in) and the per-sample Jacobians of the model's outputs in the module's
        outputs (b, K, out); and the loss Hessians in the outputs (b, K, K). Modules
        called otherwise (or not at all) are left out."""
        captured = {module: [] for module in modules}
        handles = [module.register_forward_hook(
            lambda module, args, out: captured[module].append((args[0], out)))
            for module in modules]
        try:
            with torch.enable_grad():
                out = self._block_call(theta.detach().requires_grad_(), x)
        finally:
            for handle in handles:
                handle.remove()
        eligible = [m for m in modules
                    if len(captured[m]) == 1 and captured[m][0][0].ndim == 2
                    and captured[m][0][1].requires_grad]
        b, shape = x.shape[0], out.shape[1:]
        flat = out.reshape(b, -1)
        K = flat.shape[1]
        jacobians = {}
        if eligible:
            cotangents = torch.eye(K, dtype=flat.dtype,
                                   device=flat.device)[:, None, :].expand(K, b, K)
            unit_grads = torch.autograd.grad(flat, [captured[m][0][1] for m in eligible],
                                             grad_outputs=cotangents, is_grads_batched=True,
                                             allow_unused=True)
            jacobians = {m: (captured[m][0][0].detach(), g.permute(1, 0, 2))
                         for m, g in zip(eligible, unit_grads) if g is not None}
        return jacobians, self._output_hessians(flat.detach(), t, shape)

    def _output_hessians(self, flat_outputs, targets, shape):
        """Hessians (b, K, K) of each sample's loss in its flattened outputs."""
        def sample_loss(output, target):
            return self.loss_fn(output.reshape(1, *shape), target.unsqueeze(0))
        return vmap(hessian(sample_loss))(flat_outputs, targets)

    def hessian_vector(self, theta, vector, *, kind="exact"):
        """Curvature times one vector (float64 in and out)."""
        return self._products(theta, vector.to(theta.dtype).unsqueeze(0), kind)[0].double()


class SubspaceObjective:
    """A block objective widened by a few directions over all parameters.

    The variables are the coordinates ``c = (a, b)`` of a step ``s = E_P a + Q b`` in
    the full sliced-parameter vector: ``a`` moves the block P entry by entry (as a
    :class:`BlockObjective` on P does), ``b`` moves along an orthonormal basis Q of the
    ``directions`` with their P entries removed, so the basis is orthonormal and a
    damping ``mu I`` in ``c`` is a damping ``mu I`` of the step. A Newton step in
    ``c`` minimizes the local quadratic model over span(P, directions). With the
    earlier steps of a removal as directions, block Newton passes become a block Krylov
    (subspace-accelerated) method; with per-layer preconditioned gradients
    (:func:`layer_directions`), a block-Jacobi correction, as a coarse space
    accelerates block (domain-decomposition) solvers.

    The block curvature comes from ``block_objective`` (so its fast assembly is kept);
    its coupling to the directions costs one curvature-vector product per direction.
    The basis is kept in the model's dtype, one vector over all sliced parameters per
    direction; only matrices of the subspace's size are float64.

    Parameters
    ----------
    block_objective : BlockObjective or None
        The objective on P; None for no block (the directions only).
    full_objective : BlockObjective
        The same objective on every sliced parameter (same data, curvature samples and
        offset); its block must contain P.
    directions : list of Tensor
        Vectors over ``full_objective``'s block. Linearly dependent ones (after P is
        removed) are dropped.
    """

    def __init__(self, block_objective, full_objective, directions):
        self.block_objective, self.full = block_objective, full_objective
        full_block = full_objective.block
        device = full_objective.theta.device
        index = {name: torch.zeros(full_objective.params[name].shape, dtype=torch.float64,
                                   device=device) for name in full_block.rows}
        size = full_objective.theta.numel()
        if block_objective is None:
            self.positions = torch.zeros(0, dtype=torch.long, device=device)
        else:
            numbered = full_block.scatter(index, torch.arange(size, dtype=torch.float64,
                                                              device=device))
            self.positions = block_objective.block.gather(numbered).long()
        self.Q = _orthonormal_outside(directions, self.positions, size, device,
                                      full_objective.theta.dtype)
        self.n_block = self.positions.numel()
        self.theta = torch.zeros(self.n_block + self.Q.shape[1],
                                 dtype=full_objective.theta.dtype, device=device)

    def step_in_full(self, c):
        """The step ``E_P a + Q b`` over the full block (in the basis's dtype)."""
        c = c.to(self.Q.dtype)
        step = self.Q @ c[self.n_block:]
        step[self.positions] += c[:self.n_block]
        return step

    def restrict(self, vector):
        """A full-block vector (a gradient) in the coordinates: ``(vector[P], Q^T vector)``
        (float64)."""
        vector = vector.to(self.Q.dtype)
        return torch.cat([vector[self.positions], self.Q.T @ vector]).double()

    def value(self, c):
        """The objective at the step ``c``."""
        full = self.full
        return full.value(full.theta + self.step_in_full(c).to(full.theta.dtype))

    def hessian(self, c, *, kind="exact"):
        """The dense curvature in the coordinates, at ``c = 0`` (float64)."""
        if bool(c.any()):
            raise ValueError("the subspace curvature is built at c = 0 only")
        full = self.full
        block = (None if self.block_objective is None else
                 self.block_objective.hessian(self.block_objective.theta, kind=kind))
        if not self.Q.shape[1]:
            return block
        products = full._products(full.theta, self.Q.T.to(full.theta.dtype), kind)
        inner = (products.to(self.Q.dtype) @ self.Q).double()
        if block is None:
            return 0.5 * (inner + inner.T)
        cross = products[:, self.positions].double()
        matrix = torch.cat([torch.cat([block, cross.T], 1), torch.cat([cross, inner], 1)])
        return 0.5 * (matrix + matrix.T)

    def dense_is_cheap(self, c, kind, budget=None):
        """As the block's (the directions add one product each); always without one."""
        return self.block_objective is None or self.block_objective.dense_is_cheap(
            self.block_objective.theta, kind, budget)

    def hessian_vector(self, c, vector, *, kind="exact"):
        """Curvature times one coordinate vector (float64 in and out)."""
        full = self.full
        product = full.hessian_vector(full.theta, self.step_in_full(vector), kind=kind)
        return self.restrict(product)


def layer_directions(objective, gradient, layers, factors, *, max_directions):
    """Search directions for :class:`SubspaceObjective`: one per sliced layer.

    A layer with K-FAC factors contributes its gradient preconditioned by them plus the
    weight decay, ``(A (x) G + weight_decay I)^{-1} grad``: a block-Jacobi (per-layer
    Newton) direction. Other layers contribute their gradient. With more layers than
    ``max_directions``, consecutive layers share a direction (their pieces together).

    Parameters
    ----------
    objective : BlockObjective
        The objective on every sliced parameter.
    gradient : dict of str to Tensor
        The objective's gradient by parameter name.
    layers : dict of str to _Layer
        The sliced layers (:attr:`SliceMap.layers`).
    factors : KroneckerFactors
    max_directions : int

    Returns
    -------
    list of Tensor
        Vectors over ``objective``'s block (in its dtype), none of them zero.
    """
    floor = 1e-8 * factors.mean_curvature() + torch.finfo(torch.float64).tiny
    damping = objective.weight_decay + floor
    factors.prepare(layers)
    pieces = []
    for name, layer in layers.items():
        names = [param for param in (layer.weight, layer.bias) if param is not None]
        piece = {param: gradient[param] for param in names}
        if name in factors.factors and len(names) == 1 + (layer.module.bias is not None):
            R = torch.cat([gradient[param].reshape(layer.n_units, -1) for param in names], 1)
            Z = factors.solve(name, torch.arange(layer.n_units), R, damping, unit_wise=True)
            width = gradient[layer.weight][0].numel()
            piece[layer.weight] = Z[:, :width].reshape(gradient[layer.weight].shape)
            if layer.bias is not None:
                piece[layer.bias] = Z[:, width]
        pieces.append(piece)
    groups = max(1, min(max_directions, len(pieces)))
    directions = []
    for group in range(groups):
        members = pieces[group * len(pieces) // groups:(group + 1) * len(pieces) // groups]
        merged = {param: torch.zeros_like(g) for param, g in gradient.items()}
        for piece in members:
            merged.update({param: value.to(gradient[param].dtype)
                           for param, value in piece.items()})
        vector = objective.block.gather(merged)
        if bool(vector.any()):
            directions.append(vector)
    return directions


def _orthonormal_outside(directions, positions, size, device, dtype, rtol=None):
    """An orthonormal basis (size, r) in ``dtype`` of the directions with the entries
    at ``positions`` zeroed; directions that add less than ``rtol`` of their norm
    (default: 1e-8 in float64, 1e-4 in float32) are dropped."""
    if rtol is None:
        rtol = 1e-8 if dtype == torch.float64 else 1e-4
    basis = []
    for direction in directions:
        v = direction.to(device=device, dtype=dtype).clone()
        v[positions] = 0.0
        norm = float(v.norm())
        for q in basis:                      # twice for numerical orthogonality
            v -= (q @ v) * q
        for q in basis:
            v -= (q @ v) * q
        if norm > 0 and float(v.norm()) > rtol * norm:
            basis.append(v / v.norm())
    if not basis:
        return torch.zeros(size, 0, dtype=dtype, device=device)
    return torch.stack(basis, 1)


def damped_newton_step(objective, theta, gradient, *, kind="exact", max_dense=4096,
                       cg_iterations=250, cg_tolerance=1e-10, max_damping_tries=12,
                       preconditioner=None, dense_budget=None):
    """A Newton step on the block that never lets the retained objective rise.

    Solves ``(H + mu I) s = -g`` in float64, by Cholesky on the dense block when that
    is cheap (:meth:`BlockObjective.dense_is_cheap` with ``dense_budget``, and at most
    ``max_dense`` parameters), and otherwise by conjugate gradients on
    curvature-vector products (no p x p matrix), preconditioned by ``preconditioner``
    when given. ``mu`` starts at 0 (a pure Newton step) or, for an indefinite block,
    just above ``-lambda_min``; while the step raises F_r, ``mu`` grows tenfold (a
    dense block) or the step is halved (conjugate gradients: no new products). If no
    trial lowers F_r, the step is zero. A rise within ten rounding units of the
    model's dtype (relative to F_r; 1e-13 at least) counts as none: for a float32
    model the objective is not resolved more finely.

    Parameters
    ----------
    preconditioner : callable, optional
        ``(vector, damping) -> approximately (H + damping I)^{-1} vector`` with H the
        block curvature *without* weight decay (the damping passed includes it), such
        as a :class:`~chatterjee.unlearn.kfac.KroneckerPreconditioner`.
    dense_budget : int, optional
        Backward-pass samples the dense block may take to build (see
        :meth:`BlockObjective.dense_is_cheap`).

    Returns
    -------
    step : Tensor
        In the block's dtype.
    info : dict
        ``damping`` (final mu), ``solver`` ("cholesky" or "cg"), ``curvature_min`` (the
        smallest eigenvalue of a dense block that is not positive definite, else
        None), ``accepted`` (bool),
        ``objective_before`` and ``objective_after``.

    Raises
    ------
    FloatingPointError
        If the objective (at ``theta`` or at a trial step), the gradient, the curvature
        or a step is not finite.
    """
    g = check_finite(gradient.double(), "gradient")
    before = check_finite(objective.value(theta), "objective")
    info = {"objective_before": before, "curvature_min": None}
    scale = float(g.abs().max()) if g.numel() else 0.0
    if scale == 0.0:
        return torch.zeros_like(theta), {**info, "damping": 0.0, "solver": None,
                                         "accepted": False, "objective_after": before}
    if theta.numel() <= max_dense and objective.dense_is_cheap(theta, kind, dense_budget):
        H = check_finite(objective.hessian(theta, kind=kind), "curvature")
        lam_max = float(H.diagonal().abs().max())
        mu = 0.0
        undamped, failed = torch.linalg.cholesky_ex(H)
        if failed != 0:                                    # indefinite: shift past lambda_min
            eigenvalues = torch.linalg.eigvalsh(H)
            lam_min, lam_max = float(eigenvalues[0]), float(eigenvalues[-1].abs())
            info["curvature_min"] = lam_min
            floor = max(lam_max, 1e-12) * 1e-10
            mu = floor - lam_min + max(abs(lam_min), floor) * 1e-3
        eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        info["solver"] = "cholesky"

        def solve(damping):
            factor = (undamped if damping == 0.0 and failed == 0
                      else torch.linalg.cholesky(H + damping * eye))
            return -torch.cholesky_solve(g.unsqueeze(1), factor)[:, 0]
    else:
        lam_max = None
        mu = 0.0
        info["solver"] = "cg"

        def solve(damping):
            precondition = None
            if preconditioner is not None:
                # a floor keeps it invertible without weight decay or damping
                total = objective.weight_decay + damping + 1e-8 * preconditioner.fallback
                precondition = lambda r: preconditioner(r.to(theta.dtype), total).double()  # noqa: E731
            x, negative = conjugate_gradients(
                lambda v: check_finite(objective.hessian_vector(theta, v, kind=kind),
                                       "curvature") + damping * v,
                g, tol=cg_tolerance * float(g.norm()), max_iter=cg_iterations,
                precondition=precondition)
            if negative is not None:
                raise _NegativeCurvature(2 * -negative + 1e-12)
            return -x

    bump = max(lam_max or scale, 1e-12) * 1e-6
    # a rise below the rounding of a loss summed in the model's dtype is no rise
    slack = max(1e-13, 10 * torch.finfo(theta.dtype).eps) * abs(before)
    step = None
    for _ in range(max_damping_tries):
        if step is None or lam_max is not None:
            try:
                step = check_finite(solve(mu), "Newton step")
            except _NegativeCurvature as error:
                mu = max(10 * mu, error.needed, bump)
                continue
        candidate = theta + step.to(theta.dtype)
        after = check_finite(objective.value(candidate), "objective")
        if after <= before + slack:
            return step.to(theta.dtype), {**info, "damping": mu, "accepted": True,
                                          "objective_after": after}
        if lam_max is None:         # conjugate gradients: backtrack along the step
            step = 0.5 * step
            info["backtracked"] = info.get("backtracked", 0) + 1
        else:
            mu = max(10 * mu, bump)
    return torch.zeros_like(theta), {**info, "damping": mu, "accepted": False,
                                     "objective_after": before}


def _row_layers(model, block, slice_map):
    """Parameters of ``block`` whose rows can enter through a forward hook: a weight
    or bias of a linear or convolutional layer of ``slice_map`` (no groups, zero
    padding) that the model calls as a module and that no other module shares. Name ->
    (module, weight name, bias name, rows)."""
    owners = collections.Counter(id(p) for _, p in model.named_parameters(
        remove_duplicate=False))
    params = dict(model.named_parameters())
    found = {}
    for layer in slice_map.layers.values():
        module = layer.module
        if layer.hooked is not module or layer.weight not in block.rows:
            continue
        if not isinstance(module, nn.Linear) and (
                getattr(module, "groups", 1) != 1 or module.padding_mode != "zeros"):
            continue
        names = [name for name in (layer.weight, layer.bias) if name is not None]
        if any(owners[id(params[name])] > 1 or name not in block.rows for name in names):
            continue
        entry = (module, layer.weight, layer.bias, block.rows[layer.weight])
        found.update({name: entry for name in names})
    return found


def _row_change_hook(weight_change, bias_change, rows):
    """A forward hook adding, to the outputs of units ``rows`` of a linear or
    convolutional layer, what the change of their weights (and biases) does."""
    def hook(module, args, output):
        x = args[0]
        if isinstance(module, nn.Linear):
            extra = F.linear(x, weight_change, bias_change)
            return output.index_add(-1, rows.to(output.device), extra)
        convolve = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[weight_change.ndim - 2]
        extra = convolve(x, weight_change, bias_change, module.stride, module.padding,
                         module.dilation)
        return output.index_add(1, rows.to(output.device), extra)
    return hook


def check_finite(value, what):
    """``value`` (a float or a tensor) if it is finite, else a FloatingPointError
    naming ``what`` (the loss, a gradient, ...)."""
    finite = (math.isfinite(value) if isinstance(value, float)
              else bool(torch.isfinite(value).all()))
    if not finite:
        raise FloatingPointError(f"the {what} became non-finite (nan or inf); check the "
                                 "loss function and the model for overflow")
    return value


def _first_of(product):
    """``product`` with a one-element tuple result unwrapped (as vjp returns them)."""
    def first(vector):
        value = product(vector)
        return value[0] if isinstance(value, tuple) else value
    return first


class _NegativeCurvature(ArithmeticError):
    def __init__(self, needed):
        super().__init__(f"negative curvature: damping of at least {needed} is needed")
        self.needed = needed


def conjugate_gradients(matvec, b, *, tol, max_iter, precondition=None):
    """Solve ``A x = b`` for symmetric ``A`` by (preconditioned) conjugate gradients.

    Stops once ``||A x - b|| <= tol``, after ``max_iter`` products, or at a direction
    ``d`` of non-positive curvature.

    Parameters
    ----------
    matvec : callable
        ``v -> A v``.
    b : Tensor
    tol : float
    max_iter : int
    precondition : callable, optional
        ``r -> M^{-1} r`` for a symmetric positive definite ``M`` that resembles ``A``.

    Returns
    -------
    x : Tensor
        The iterate reached.
    curvature : float or None
        ``d . A d / d . d`` of the non-positive direction met, else None.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    z = r if precondition is None else precondition(r)
    d = z.clone()
    rz = float(r @ z)
    for _ in range(max_iter):
        if float(r.norm()) <= tol:
            break
        Ad = matvec(d)
        curvature = float(d @ Ad)
        if curvature <= 0:
            return x, curvature / float(d @ d)
        alpha = rz / curvature
        x += alpha * d
        r -= alpha * Ad
        z = r if precondition is None else precondition(r)
        rz_new = float(r @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, None
