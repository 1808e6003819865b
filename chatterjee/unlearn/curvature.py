"""The retained training objective restricted to a parameter block: value, gradient,
curvature, and the damped Newton solve.

Everything is computed with :mod:`torch.func` on a functional copy of the model in
which only the block is a variable, so the block Hessian is exactly the sub-block of
the full Hessian (no finite differences, no stored training gradients).
"""

import torch
from torch.func import functional_call, grad, hessian, jvp, vjp, vmap

__all__ = ["BlockObjective", "conjugate_gradients", "damped_newton_step"]


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
    """

    def __init__(self, model, loss_fn, data, retained, weight_decay, block, *,
                 curvature_samples=None, offset=None):
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.retained = retained
        self.curvature_samples = retained if curvature_samples is None else curvature_samples
        self.weight_decay = float(weight_decay)
        self.block = block
        self.params = {name: p.detach() for name, p in model.named_parameters()}
        self.buffers = {name: b.detach() for name, b in model.named_buffers()}
        self.theta = block.gather(self.params)
        rest = sum(float((p ** 2).sum()) for p in self.params.values())
        self._norm_rest = rest - float((self.theta ** 2).sum())
        self.offset = torch.zeros_like(self.theta) if offset is None else offset.to(self.theta)

    def _batch_loss(self, theta, inputs, targets):
        params = self.block.scatter(self.params, theta)
        return self.loss_fn(functional_call(self.model, (params, self.buffers), (inputs,)),
                            targets)

    def _sweep(self, indices):
        total = indices.numel()
        for inputs, targets in self.data.batches(indices):
            yield inputs, targets, inputs.shape[0] / total

    def value(self, theta):
        """F_r at ``theta`` (the full weight-decay term included)."""
        with torch.no_grad():
            loss = sum(float(self._batch_loss(theta, x, t)) * w
                       for x, t, w in self._sweep(self.retained))
        penalty = self._norm_rest + float((theta.double() ** 2).sum())
        shift = float(self.offset.double() @ theta.double())
        return loss + 0.5 * self.weight_decay * penalty - shift

    def gradient(self, theta):
        """The gradient of F_r with respect to the block at ``theta``."""
        total = torch.zeros_like(theta)
        for x, t, w in self._sweep(self.retained):
            total += w * grad(self._batch_loss)(theta, x, t)
        return total + self.weight_decay * theta - self.offset

    def _products(self, theta, vectors, kind):
        """Curvature times each row of ``vectors``, averaged over the curvature samples."""
        def hessian_product(x, t):
            # reverse over reverse: double backward is defined for more operations
            # than forward over reverse (e.g. mse_loss)
            return vjp(lambda th: grad(self._batch_loss)(th, x, t), theta)[1]

        def gauss_newton_product(x, t):
            def outputs(th):
                params = self.block.scatter(self.params, th)
                return functional_call(self.model, (params, self.buffers), (x,))
            out, pullback = vjp(outputs, theta)
            _, loss_curvature = vjp(grad(lambda o: self.loss_fn(o, t)), out)

            def product(v):
                jv = jvp(outputs, (theta,), (v,))[1]
                return pullback(loss_curvature(jv)[0])[0]
            return product

        make = hessian_product if kind == "exact" else gauss_newton_product
        total = torch.zeros_like(vectors)
        for x, t, w in self._sweep(self.curvature_samples):
            total += w * vmap(_first_of(make(x, t)))(vectors)
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
        output instead of one product per parameter. Otherwise it is built from
        products like the exact Hessian.
        """
        matrix = self._linear_gauss_newton(theta) if kind == "gauss_newton" else None
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

    def _unit_jacobians(self, theta, x, t, modules, segments):
        """Per-sample output Jacobians over the block (b, K, p) and loss Hessians in the
        outputs (b, K, K); None if a layer is not called once on 2-D input."""
        captured = {module: [] for module in modules}
        handles = [module.register_forward_hook(
            lambda module, args, out: captured[module].append((args[0], out)))
            for module in modules]
        try:
            with torch.enable_grad():
                params = self.block.scatter(self.params, theta.detach().requires_grad_())
                out = functional_call(self.model, (params, self.buffers), (x,))
        finally:
            for handle in handles:
                handle.remove()
        if any(len(calls) != 1 or calls[0][0].ndim != 2 for calls in captured.values()):
            return None
        b, shape = x.shape[0], out.shape[1:]
        flat = out.reshape(b, -1)
        K = flat.shape[1]
        cotangents = torch.eye(K, dtype=flat.dtype, device=flat.device)[:, None, :].expand(K, b, K)
        unit_grads = torch.autograd.grad(flat, [captured[m][0][1] for m in modules],
                                         grad_outputs=cotangents, is_grads_batched=True)
        unit_grads = {m: g.permute(1, 0, 2) for m, g in zip(modules, unit_grads)}  # (b, K, out)
        pieces = []
        for module, attribute, rows in segments:
            jz = unit_grads[module][:, :, rows]
            if attribute == "weight":
                inputs = captured[module][0][0].detach()
                pieces.append((jz[..., None] * inputs[:, None, None, :]).reshape(b, K, -1))
            else:
                pieces.append(jz)
        J = torch.cat(pieces, dim=2)

        def sample_loss(output, target):
            return self.loss_fn(output.reshape(1, *shape), target.unsqueeze(0))
        A = vmap(hessian(sample_loss))(flat.detach(), t)
        return J, A

    def hessian_vector(self, theta, vector, *, kind="exact"):
        """Curvature times one vector (float64 in and out)."""
        return self._products(theta, vector.to(theta.dtype).unsqueeze(0), kind)[0].double()


def damped_newton_step(objective, theta, gradient, *, kind="exact", max_dense=4096,
                       cg_iterations=250, cg_tolerance=1e-10, max_damping_tries=12):
    """A Newton step on the block that never lets the retained objective rise.

    Solves ``(H + mu I) s = -g`` in float64, by Cholesky when the block has at most
    ``max_dense`` parameters and by conjugate gradients on Hessian-vector products
    otherwise. ``mu`` starts at 0 (a pure Newton step) or, for an indefinite block,
    just above ``-lambda_min``; while the step raises F_r, ``mu`` grows tenfold. If no
    damping lowers F_r, the step is zero.

    Returns
    -------
    step : Tensor
        In the block's dtype.
    info : dict
        ``damping`` (final mu), ``solver`` ("cholesky" or "cg"), ``curvature_min`` (the
        smallest eigenvalue of a dense block that is not positive definite, else
        None), ``accepted`` (bool),
        ``objective_before`` and ``objective_after``.
    """
    g = gradient.double()
    before = objective.value(theta)
    info = {"objective_before": before, "curvature_min": None}
    scale = float(g.abs().max()) if g.numel() else 0.0
    if scale == 0.0:
        return torch.zeros_like(theta), {**info, "damping": 0.0, "solver": None,
                                         "accepted": False, "objective_after": before}
    if theta.numel() <= max_dense:
        H = objective.hessian(theta, kind=kind)
        lam_max = float(H.diagonal().abs().max())
        mu = 0.0
        if torch.linalg.cholesky_ex(H).info != 0:          # indefinite: shift past lambda_min
            eigenvalues = torch.linalg.eigvalsh(H)
            lam_min, lam_max = float(eigenvalues[0]), float(eigenvalues[-1].abs())
            info["curvature_min"] = lam_min
            floor = max(lam_max, 1e-12) * 1e-10
            mu = floor - lam_min + max(abs(lam_min), floor) * 1e-3
        eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
        info["solver"] = "cholesky"

        def solve(damping):
            factor = torch.linalg.cholesky(H + damping * eye)
            return -torch.cholesky_solve(g.unsqueeze(1), factor)[:, 0]
    else:
        lam_max = None
        mu = 0.0
        info["solver"] = "cg"

        def solve(damping):
            x, negative = conjugate_gradients(
                lambda v: objective.hessian_vector(theta, v, kind=kind) + damping * v,
                g, tol=cg_tolerance * float(g.norm()), max_iter=cg_iterations)
            if negative is not None:
                raise _NegativeCurvature(2 * -negative + 1e-12)
            return -x

    bump = max(lam_max or scale, 1e-12) * 1e-6
    for _ in range(max_damping_tries):
        try:
            step = solve(mu)
        except _NegativeCurvature as error:
            mu = max(10 * mu, error.needed, bump)
            continue
        candidate = theta + step.to(theta.dtype)
        after = objective.value(candidate)
        if after <= before + 1e-13 * abs(before):
            return step.to(theta.dtype), {**info, "damping": mu, "accepted": True,
                                          "objective_after": after}
        mu = max(10 * mu, bump)
    return torch.zeros_like(theta), {**info, "damping": mu, "accepted": False,
                                     "objective_after": before}


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


def conjugate_gradients(matvec, b, *, tol, max_iter):
    """Solve ``A x = b`` for symmetric ``A`` by conjugate gradients.

    Stops once ``||A x - b|| <= tol``, after ``max_iter`` products, or at a direction
    ``d`` of non-positive curvature.

    Returns
    -------
    x : Tensor
        The iterate reached.
    curvature : float or None
        ``d . A d / d . d`` of the non-positive direction met, else None.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    d = r.clone()
    rr = float(r @ r)
    for _ in range(max_iter):
        if rr ** 0.5 <= tol:
            break
        Ad = matvec(d)
        curvature = float(d @ Ad)
        if curvature <= 0:
            return x, curvature / float(d @ d)
        alpha = rr / curvature
        x += alpha * d
        r -= alpha * Ad
        rr_new = float(r @ r)
        d = r + (rr_new / rr) * d
        rr = rr_new
    return x, None
