"""The Unlearner's cost model: exact matrix-free products, preconditioned solves,
bounded curvature samples, cached factors and bounded memory."""

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call, hessian, jacrev  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from chatterjee.unlearn import Slice, SliceMap, Unlearner  # noqa: E402
from chatterjee.unlearn._data import TrainingData  # noqa: E402
from chatterjee.unlearn import unlearner as unlearner_module  # noqa: E402
from chatterjee.unlearn.curvature import (  # noqa: E402
    BlockObjective,
    conjugate_gradients,
    damped_newton_step,
    forward_flops,
)
from chatterjee.unlearn.kfac import KroneckerFactors, KroneckerPreconditioner  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


class Decoder(nn.Module):
    """A one-block decoder: embeddings, causal attention by F.scaled_dot_product_attention
    with nn.Linear q/k/v projections, a layer norm and a vocabulary head."""

    def __init__(self, vocab=11, width=8, context=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.q, self.k, self.v = (nn.Linear(width, width) for _ in range(3))
        self.out = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens):
        h = self.embed(tokens) + self.position(torch.arange(tokens.shape[1]))
        split = [f(h).unflatten(-1, (2, -1)).transpose(1, 2) for f in (self.q, self.k, self.v)]
        attended = nn.functional.scaled_dot_product_attention(*split, is_causal=True)
        h = h + self.out(attended.transpose(1, 2).flatten(2))
        return self.head(self.norm(h))


def sequence_loss(outputs, targets):
    return nn.functional.cross_entropy(outputs.flatten(0, 1), targets.flatten())


def explicit_gauss_newton(model, loss_fn, X, y, block, theta):
    """J^T H J of the mean loss over the block, from the full Jacobian and Hessian."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def outputs(th):
        return functional_call(model, block.scatter(params, th), (X,))

    out = outputs(theta)
    J = jacrev(lambda th: outputs(th).reshape(-1))(theta)
    H = hessian(lambda o: loss_fn(o.reshape(out.shape), y))(out.reshape(-1).detach())
    return J.T @ H @ J


CASES = {
    "decoder, cross-entropy over positions (analytic output Hessian)": (
        lambda: Decoder().double().eval(),
        lambda g: (torch.randint(0, 11, (7, 6), generator=g),
                   torch.randint(0, 11, (7, 6), generator=g)),
        sequence_loss,
        [Slice("q", 1), Slice("v", 3), Slice("out", 0), Slice("head", 5)]),
    "mlp, mean squared error (double backward)": (
        lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double(),
        lambda g: (torch.randn(9, 4, generator=g, dtype=torch.float64),
                   torch.randn(9, 3, generator=g, dtype=torch.float64)),
        nn.MSELoss(),
        [Slice("0", 2), Slice("2", 1)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gauss_newton_products_equal_the_explicit_matrix(case):
    make_model, make_data, loss_fn, chosen = CASES[case]
    torch.manual_seed(0)
    model = make_model()
    X, y = make_data(torch.Generator().manual_seed(1))
    block = SliceMap(model).block(chosen)
    objective = BlockObjective(model, loss_fn, TrainingData((X, y), batch_size=4),
                               torch.arange(len(X)), 0.0, block)
    theta = objective.theta
    explicit = explicit_gauss_newton(model, loss_fn, X, y, block, theta)
    vectors = torch.randn(3, theta.numel(), dtype=torch.float64)
    products = objective._products(theta, vectors, "gauss_newton")
    assert torch.allclose(products, vectors @ explicit, rtol=1e-10,
                          atol=1e-10 * float(explicit.abs().max()))
    assert objective.cost["product_samples"] == 3 * len(X)


def test_products_do_not_grow_with_the_outputs():
    """A product costs one pass per sample whatever the number of outputs: the count
    of product samples is the same for 3 and 300 classes."""
    counts = []
    for classes in (3, 300):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, classes)).double()
        X, y = torch.randn(20, 5, dtype=torch.float64), torch.randint(0, classes, (20,))
        objective = BlockObjective(model, nn.CrossEntropyLoss(), TrainingData((X, y)),
                                   torch.arange(20), 0.0,
                                   SliceMap(model).block([Slice("0", 0), Slice("0", 1)]))
        objective._products(objective.theta, torch.randn(2, 12, dtype=torch.float64),
                            "gauss_newton")
        counts.append(dict(objective.cost))
    assert counts[0] == counts[1] == {"product_samples": 40}


def test_kronecker_preconditioner_solves_in_fewer_products():
    """On inputs of very different scales (an ill-conditioned curvature), conjugate
    gradients preconditioned by K-FAC reach the same solution in far fewer products."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 10)).double()
    scales = torch.logspace(0, 2, 30, dtype=torch.float64)
    X = torch.randn(300, 30, dtype=torch.float64) * scales + 3
    y = torch.randint(0, 10, (300,))
    slice_map = SliceMap(model)
    data = TrainingData((X, y), batch_size=128)
    block = slice_map.block(slice_map.slices)
    objective = BlockObjective(model, nn.CrossEntropyLoss(), data, torch.arange(300), 1e-3,
                               block)
    factors = KroneckerFactors(model, nn.CrossEntropyLoss(), slice_map.layers,
                               data.batches(torch.arange(300)), torch.Generator())
    preconditioner = KroneckerPreconditioner(factors, slice_map, block, objective.params)
    theta = objective.theta
    b = torch.randn(theta.numel(), dtype=torch.float64)
    exact = torch.linalg.solve(objective.hessian(theta, kind="gauss_newton"), b)
    products = {}
    for name, precondition in (("plain", None),
                               ("kfac", lambda r: preconditioner(r, 1e-3))):
        count = [0]

        def matvec(v):
            count[0] += 1
            return objective.hessian_vector(theta, v, kind="gauss_newton")
        x, negative = conjugate_gradients(matvec, b, tol=1e-9 * float(b.norm()),
                                          max_iter=5000, precondition=precondition)
        assert negative is None
        assert torch.allclose(x, exact, rtol=0, atol=1e-6 * float(exact.abs().max()))
        products[name] = count[0]
    assert products["kfac"] < products["plain"] / 3


def test_curvature_sample_is_bounded_and_factors_are_reused():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 40)).double()
    X, y = torch.randn(300, 5, dtype=torch.float64), torch.randint(0, 40, (300,))
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-2,
                  selection="gradient", max_slices=6, curvature="gauss_newton",
                  curvature_samples=50, max_dense=1, random_state=0)
    first = u.forget(3)
    factors = u._kronecker[1]
    assert factors.n_samples == 50
    assert first.timings["backward_samples"] >= 50        # the factors, once
    assert first.timings["product_samples"] % 50 == 0     # products over 50 samples only
    assert first.timings["cached_bytes"] >= factors.nbytes() > 0
    second = u.forget(4)
    assert u._kronecker[1] is factors                     # reused across calls
    assert second.timings["backward_samples"] < first.timings["backward_samples"]
    with torch.no_grad():                                 # an outside change: recomputed
        model[0].bias.add_(1e-3)
    u.forget(5)
    assert u._kronecker[1] is not factors


def test_forward_flops_counts_the_matrix_products():
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    # two per multiply-add, never below twice the parameters (the biases' additions)
    assert forward_flops(model, torch.randn(7, 10)) == 2 * (10 * 20 + 20 + 20 * 3 + 3)
    wide = nn.Sequential(nn.Linear(10, 20))
    assert forward_flops(wide, torch.randn(7, 5, 10)) == 2 * 5 * 10 * 20   # 5 positions
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1))
    assert forward_flops(conv, torch.randn(2, 1, 8, 8)) == 2 * 4 * 9 * 64


@pytest.mark.parametrize("compute", [0.05, 0.1, 0.4])
def test_a_pass_keeps_to_its_compute_budget(monkeypatch, compute):
    """Without the small-model floor, a pass costs about ``compute`` epochs: the
    curvature sample is an eighth of the budget, the step is checked on twice as many,
    and the conjugate-gradient iterations fill the rest (at least one)."""
    monkeypatch.setattr(unlearner_module, "_SMALL_MODEL_FLOPS", 0)
    torch.manual_seed(0)
    n = 4000
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 300)).double()
    X, y = torch.randn(n, 6, dtype=torch.float64), torch.randint(0, 300, (n,))
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-2,
                  selection="gradient", max_slices=8, compute=compute, random_state=0)
    u.forget(0)                                    # the factors are built here
    report = u.forget([1, 2])
    budget = int(compute * n)
    m = max(32, budget // 8)
    assert report.passes[0]["solver"] == "cg"
    iterations = max(1, (budget - 3 * 2 * m) // (2 * m))
    assert report.timings["product_samples"] <= iterations * m
    assert report.timings["product_samples"] % m == 0
    # gradients: the removed samples (twice: loss and slices), the scope before and
    # after the pass; no pass over the retained data
    assert report.timings["backward_samples"] <= 2 * 2 + 2 * 2 * m
    spent = (report.timings["backward_samples"] + 2 * report.timings["product_samples"]
             + report.timings["forward_samples"] / 3)
    assert spent <= 1.5 * budget


def test_selection_of_a_large_removal_keeps_to_the_budget(monkeypatch):
    """L-FOCI's perturbed copies of a large removal cost at most a pass's budget in
    forward passes: a random subset of the removed samples is perturbed."""
    monkeypatch.setattr(unlearner_module, "_SMALL_MODEL_FLOPS", 0)
    torch.manual_seed(0)
    n = 3000
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    X, y = torch.randn(n, 6, dtype=torch.float64), torch.randint(0, 3, (n,))
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), n_perturbations=100,
                  random_state=0)
    report = u.forget(list(range(200)))
    budget = int(0.1 * n)
    removed = 2 * 200                                     # their loss, before and after
    checks = report.timings["forward_samples"] - removed - 100 * (3 * budget // 100)
    assert 0 <= checks <= 13 * 2 * max(32, budget // 8)   # the step checks, at most 13
    assert report.slices


class _NoisyQuadratic:
    """0.5 x^T x - b^T x, evaluated with a relative error of ``noise`` (as a loss summed
    in float32 is), for :func:`damped_newton_step`."""

    weight_decay = 0.0

    def __init__(self, b, noise):
        self.b, self.noise, self.calls = b, noise, 0

    def value(self, x):
        self.calls += 1
        exact = 1.0 + float(0.5 * x.double() @ x.double() - self.b.double() @ x.double())
        return exact * (1 + self.noise * (-1) ** self.calls)

    def dense_is_cheap(self, theta, kind, budget=None):
        return False

    def hessian_vector(self, theta, v, *, kind="exact"):
        return v.double()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_rise_within_rounding_is_no_rise(dtype):
    """A step whose true decrease (here 5e-13) is below the rounding of the model's
    dtype is accepted as computed in float32, where the objective cannot resolve it,
    and halved in float64, where the 2e-12 rise of the noise is a real one."""
    b = torch.full((4,), 5e-7, dtype=dtype)
    objective = _NoisyQuadratic(b, noise=1e-12)
    theta = torch.zeros(4, dtype=dtype)
    step, info = damped_newton_step(objective, theta, -b, cg_iterations=5)
    assert info["solver"] == "cg" and info["accepted"]
    if dtype == torch.float32:
        assert "backtracked" not in info and torch.allclose(step, b)
    else:
        assert info["backtracked"] >= 1 and float(step.norm()) < float(b.norm())


def test_only_the_layers_a_block_uses_get_input_factors():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 3)).double()
    X, y = torch.randn(300, 5, dtype=torch.float64), torch.randint(0, 3, (300,))
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-2,
                  selection=[("4", 0), ("4", 1)], max_dense=1, random_state=0)
    u.forget(3)
    factors = u._kronecker[1]
    assert set(factors._input) == {"4"} and set(factors.factors) == {"0", "2", "4"}
    assert u.reports[0].timings["forward_samples"] >= factors.n_samples   # counted


def test_a_fractional_block_is_capped_in_parameters(monkeypatch):
    monkeypatch.setattr(unlearner_module, "_MAX_BLOCK", 20)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    X, y = torch.randn(50, 5, dtype=torch.float64), torch.randint(0, 3, (50,))
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), selection="gradient",
                  max_parameters=0.9, random_state=0)
    assert u.max_parameters == 20
    assert u.forget(0).n_parameters <= 20
    assert Unlearner(model, nn.CrossEntropyLoss(), (X, y), max_parameters=40,
                     random_state=0).max_parameters == 40     # a count is a count


def test_factors_are_sampled_beyond_the_budget_and_decomposed_when_used():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 10)).double()
    X, y = torch.randn(64, 5, dtype=torch.float64), torch.randint(0, 10, (64,))
    layers = SliceMap(model).layers
    data = TrainingData((X, y), batch_size=32)
    exact = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, data.batches(
        torch.arange(64)), torch.Generator().manual_seed(0))
    sampled = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, data.batches(
        torch.arange(64)), torch.Generator().manual_seed(0), sampled=True)
    assert (exact.kind, exact.backward_samples) == ("fisher", 640)
    assert (sampled.kind, sampled.backward_samples) == ("sampled_fisher", 64)
    # same input factor, an unbiased estimate of the same output factor
    assert torch.equal(exact.factors["0"][0], sampled.factors["0"][0])
    G, G_sampled = exact.factors["2"][2], sampled.factors["2"][2]
    assert float((G - G_sampled).norm()) < 0.5 * float(G.norm())
    assert not sampled.factors.decomposed or set(sampled.factors.decomposed) == {"0", "2"}
    fresh = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, data.batches(
        torch.arange(64)), torch.Generator())
    assert not fresh.factors.decomposed and fresh.mean_curvature() > 0
    fresh.solve("2", torch.arange(3), torch.randn(3, 9, dtype=torch.float64), 1e-3)
    assert set(fresh.factors.decomposed) == {"2"}          # only the layer solved with


def test_conjugate_gradient_steps_backtrack_without_new_products():
    """A step from a curvature sample that underestimates the curvature raises the
    objective: it is halved (a value check each) instead of solved again."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1)).double()
    X = torch.randn(400, 4, dtype=torch.float64)
    X[:40] *= 0.1                                   # the curvature sample: small inputs
    y = X @ torch.tensor([1.0, -2.0, 0.5, 1.0], dtype=torch.float64) + 1
    slice_map = SliceMap(model)
    objective = BlockObjective(model, lambda o, t: ((o[:, 0] - t) ** 2).mean(),
                               TrainingData((X, y), batch_size=400), torch.arange(400),
                               0.0, slice_map.block(slice_map.slices),
                               curvature_samples=torch.arange(40))
    theta = objective.theta
    step, info = damped_newton_step(objective, theta, objective.gradient(theta),
                                    kind="gauss_newton", max_dense=0, cg_iterations=5)
    assert info["solver"] == "cg" and info["accepted"] and info["backtracked"] >= 2
    assert info["objective_after"] < info["objective_before"]
    assert objective.cost["product_samples"] <= 5 * 40      # one solve


class LargestAllocation(TorchDispatchMode):
    """Records the largest tensor any operation creates while active (views and
    in-place results, which share an input's storage, allocate nothing)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {_storage(t) for t in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for tensor in (out if isinstance(out, (tuple, list)) else (out,)):
            if isinstance(tensor, torch.Tensor) and (
                    _storage(tensor) is None or _storage(tensor) not in inputs):
                self.largest = max(self.largest, tensor.numel() * tensor.element_size())
        return out


def _storage(tensor):
    """Where a tensor's data lives, or None for one without storage (a functorch
    wrapper): counted as allocated."""
    try:
        return tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_a_partial_block_never_copies_its_layers_weight(layer):
    """Rows of a wide layer enter curvature products through a hook on the layer: no
    tensor of a weight's size is made (the former copy with the rows replaced made
    three per product: the weight, its tangent and its gradient), and the products
    are unchanged."""
    torch.manual_seed(0)
    if layer == "linear":
        model = nn.Sequential(nn.Linear(6, 512), nn.Tanh(), nn.Linear(512, 512),
                              nn.Tanh(), nn.Linear(512, 3)).double()
        X, wide = torch.randn(20, 6, dtype=torch.float64), "2"
    else:
        model = nn.Sequential(nn.Conv2d(2, 64, 3, padding=1), nn.Tanh(),
                              nn.Conv2d(64, 64, 3, padding="same"), nn.Tanh(),
                              nn.Flatten(), nn.Linear(64 * 16, 3)).double()
        X, wide = torch.randn(20, 2, 4, 4, dtype=torch.float64), "2"
    y = torch.randint(0, 3, (20,))
    slice_map = SliceMap(model)
    block = slice_map.block([Slice(wide, 3), Slice(wide, 7), Slice("4" if layer == "linear"
                                                                 else "5", 1)])
    objective = BlockObjective(model, nn.CrossEntropyLoss(), TrainingData((X, y)),
                               torch.arange(20), 0.0, block)
    theta = objective.theta
    v = torch.randn(theta.numel(), dtype=torch.float64)
    weight_bytes = model[2].weight.numel() * 8
    with LargestAllocation() as recorder:
        product = objective.hessian_vector(theta, v, kind="gauss_newton")
    assert recorder.largest < weight_bytes
    params = {name: p.detach() for name, p in model.named_parameters()}
    explicit = explicit_gauss_newton(model, nn.CrossEntropyLoss(), X, y, block, theta) @ v
    assert torch.allclose(product, explicit, rtol=1e-10, atol=1e-12)
    moved = theta + 1e-2 * v                       # away from the weights too
    assert objective.value(moved) == pytest.approx(
        float(nn.CrossEntropyLoss()(functional_call(
            model, block.scatter(params, moved), (X,)), y)), rel=1e-12)


class AllocatedShapes(TorchDispatchMode):
    """Records the shape of every tensor an operation allocates while active."""

    def __init__(self):
        super().__init__()
        self.shapes = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {_storage(t) for t in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and (
                    _storage(tensor) is None or _storage(tensor) not in inputs):
                self.shapes.add(tuple(tensor.shape))
        return out


@pytest.mark.parametrize("noise", [None, 0.01])
def test_a_call_copies_only_the_parameters_it_writes(noise):
    """The rollback of a failed call keeps the values the call overwrites, not a copy
    of the whole model: a wide layer outside the block is never copied (a state-dict
    snapshot took 1x the parameters' bytes at every call), and a failure after the
    step and the noise are written still restores the model bit for bit."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 509), nn.Tanh(), nn.Linear(509, 3)).double()
    X, y = torch.randn(400, 8, dtype=torch.float64), torch.randint(0, 3, (400,))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-3,
                  selection=[Slice("2", 0), Slice("2", 2)], noise=noise,
                  curvature_samples=64, random_state=0)
    with AllocatedShapes() as recorder:
        report = u.forget(5)
    assert report.n_parameters == 2 * 510
    assert (509, 8) not in recorder.shapes
    assert not torch.equal(model[2].weight, state["2.weight"])

    model.load_state_dict(state)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-3,
                  selection=[Slice("2", 0), Slice("2", 2)], noise=noise,
                  curvature_samples=64, random_state=0)
    mean_loss, calls = u._mean_loss, []

    def failing_after_the_writes(indices):
        calls.append(1)
        if len(calls) == 2:         # the removed loss after: the step (and noise) written
            raise FloatingPointError("boom")
        return mean_loss(indices)
    u._mean_loss = failing_after_the_writes
    with pytest.raises(FloatingPointError, match="boom"):
        u.forget(5)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_no_tensor_beyond_the_memory_bound_on_a_mid_size_model():
    """No single tensor of a call goes beyond 4x the parameters' bytes + 1 GiB, the
    bound on a call's extra memory. On this 25-layer, 9.9M-parameter MLP the former
    subspace basis (float64, a direction per layer: 26 x 9.9M x 8 bytes) took 2 GB."""
    torch.manual_seed(0)
    layers = [nn.Linear(640, 640) if i % 2 == 0 else nn.ReLU() for i in range(48)]
    model = nn.Sequential(*layers, nn.Linear(640, 10))
    X, y = torch.randn(300, 640), torch.randint(0, 10, (300,))
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-3,
                  selection="gradient", max_slices=64, acceleration="subspace",
                  curvature="gauss_newton", curvature_samples=64, n_perturbations=16,
                  random_state=0)
    with LargestAllocation() as recorder:
        report = u.forget(7)
    assert report.passes and report.passes[0]["n_directions"] >= 1
    assert recorder.largest <= 4 * parameter_bytes + 2**30
