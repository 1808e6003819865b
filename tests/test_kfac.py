"""K-FAC factors against the exact Gauss-Newton blocks where K-FAC is exact."""

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call, hessian, jacrev  # noqa: E402

from chatterjee.unlearn.curvature import cross_entropy_class_dim  # noqa: E402
from chatterjee.unlearn import kfac  # noqa: E402
from chatterjee.unlearn.kfac import KroneckerFactors  # noqa: E402
from chatterjee.unlearn.slices import SliceMap  # noqa: E402


def exact_layer_gauss_newton(model, loss_fn, x, y, layer):
    """The Gauss-Newton block of ``loss_fn(model(x), y)`` over a layer's (W, b), with the
    parameters ordered unit by unit (weight row, then bias)."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    weight = params[layer.weight]
    units = weight.shape[0]

    def outputs(stacked):
        changed = dict(params)
        changed[layer.weight] = stacked[:, :-1].reshape(weight.shape)
        changed[layer.bias] = stacked[:, -1]
        return functional_call(model, changed, (x,))

    stacked = torch.cat([weight.reshape(units, -1), params[layer.bias][:, None]], 1)
    out = outputs(stacked)
    J = jacrev(lambda s: outputs(s).reshape(-1))(stacked).reshape(out.numel(), -1)
    H = hessian(lambda o: loss_fn(o.reshape(out.shape), y))(out.reshape(-1))
    return J.T @ H @ J


def kronecker_block(factors, name):
    eigenvalues, vectors, G = factors.factors[name]
    A = vectors @ torch.diag(eigenvalues) @ vectors.T
    return torch.kron(G, A)


CASES = {
    # one sample and one position per layer: K-FAC is the exact Gauss-Newton block
    "mlp": (lambda: nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 4)),
            lambda g: (torch.randn(1, 5, generator=g), torch.tensor([2])),
            nn.CrossEntropyLoss()),
    "conv": (lambda: nn.Sequential(nn.Conv2d(2, 3, 4), nn.Tanh(), nn.Flatten(),
                                   nn.Linear(3, 5)),
             lambda g: (torch.randn(1, 2, 4, 4, generator=g), torch.tensor([4])),
             nn.CrossEntropyLoss()),
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 3, 5), nn.Tanh(), nn.Flatten(),
                                     nn.Linear(3, 3)),
               lambda g: (torch.randn(1, 2, 5, generator=g), torch.tensor([0])),
               nn.CrossEntropyLoss()),
    # three identical positions: each position's curvature is a third of the sample's
    "repeated positions": (
        lambda: nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 9)),
        lambda g: (torch.randn(1, 1, 5, generator=g).expand(1, 3, 5), torch.tensor([[7, 7, 7]])),
        lambda o, t: nn.functional.cross_entropy(o.reshape(-1, 9), t.reshape(-1))),
    "sequence": (lambda: nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 9)),
                 lambda g: (torch.randn(1, 1, 5, generator=g), torch.tensor([[7]])),
                 lambda o, t: nn.functional.cross_entropy(o.reshape(-1, 9), t.reshape(-1))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_factors_equal_the_exact_block_for_one_sample(case):
    make_model, make_data, loss_fn = CASES[case]
    torch.manual_seed(0)
    model = make_model().double().eval()
    x, y = make_data(torch.Generator().manual_seed(1))
    x = x.double()
    layers = SliceMap(model).layers
    factors = KroneckerFactors(model, loss_fn, layers, [(x, y)], torch.Generator())
    assert factors.kind == "fisher"
    assert set(factors.factors) == set(layers)
    for name, layer in layers.items():
        exact = exact_layer_gauss_newton(model, loss_fn, x, y, layer)
        assert torch.allclose(kronecker_block(factors, name), exact, rtol=1e-10,
                              atol=1e-12 * float(exact.abs().max()))


def test_factors_average_over_samples_and_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randint(0, 3, (10,))
    layers = SliceMap(model).layers
    whole = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, [(x, y)], torch.Generator())
    split = KroneckerFactors(model, nn.CrossEntropyLoss(), layers,
                             [(x[:3], y[:3]), (x[3:], y[3:])], torch.Generator())
    assert whole.n_samples == split.n_samples == 10
    for name in layers:
        assert torch.allclose(kronecker_block(whole, name), kronecker_block(split, name))
    # the input moment is the plain mean of x x^T (with the bias's 1)
    first = torch.cat([x, torch.ones(10, 1, dtype=torch.float64)], 1)
    eigenvalues, vectors, _ = whole.factors["0"]
    assert torch.allclose(vectors @ torch.diag(eigenvalues) @ vectors.T, first.T @ first / 10)


def test_solve_inverts_the_damped_sub_block():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5)).double().eval()
    x, y = torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 5, (30,))
    layers = SliceMap(model).layers
    factors = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, [(x, y)],
                               torch.Generator())
    units = torch.tensor([0, 2, 3])
    eigenvalues, vectors, G = factors.factors["2"]
    A = vectors @ torch.diag(eigenvalues) @ vectors.T
    matrix = torch.kron(G[units][:, units], A) + 0.1 * torch.eye(3 * 7, dtype=torch.float64)
    right = torch.randn(3, 7, dtype=torch.float64)
    solved = factors.solve("2", units, right, 0.1)
    assert torch.allclose(matrix @ solved.reshape(-1), right.reshape(-1), atol=1e-10)


def test_wide_layers_use_factored_damping(monkeypatch):
    """Beyond EIGH_DIMENSION input rows, the solve inverts (A + pi sqrt(d) I) (x)
    (G_SS + sqrt(d) / pi I), without decomposing A; the factor is kept."""
    monkeypatch.setattr(kfac, "EIGH_DIMENSION", 4)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5)).double().eval()
    x, y = torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 5, (30,))
    factors = KroneckerFactors(model, nn.CrossEntropyLoss(), SliceMap(model).layers,
                               [(x, y)], torch.Generator())
    units, damping = torch.tensor([0, 2, 3]), 0.1
    A, G = factors.input_factor("2"), factors._gradient["2"]
    G_S = G[units][:, units]
    pi = (float(torch.diagonal(A).mean()) / float(torch.diagonal(G_S).mean())) ** 0.5
    matrix = torch.kron(G_S + damping ** 0.5 / pi * torch.eye(3, dtype=torch.float64),
                        A + pi * damping ** 0.5 * torch.eye(7, dtype=torch.float64))
    right = torch.randn(3, 7, dtype=torch.float64)
    solved = factors.solve("2", units, right, damping)
    assert torch.allclose(matrix @ solved.reshape(-1), right.reshape(-1), atol=1e-10)
    assert not factors.factors.decomposed and "2" in factors._cholesky
    again = factors.solve("2", units, right, damping)
    assert torch.equal(solved, again)


def test_many_classes_are_sampled_and_other_losses_use_true_targets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 40)).double().eval()
    x, y = torch.randn(50, 4, dtype=torch.float64), torch.randint(0, 40, (50,))
    layers = SliceMap(model).layers
    sampled = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, [(x, y)],
                               torch.Generator().manual_seed(0))
    assert sampled.kind == "sampled_fisher"
    again = KroneckerFactors(model, nn.CrossEntropyLoss(), layers, [(x, y)],
                             torch.Generator().manual_seed(0))
    assert torch.equal(sampled.factors["0"][2], again.factors["0"][2])   # seeded
    targets = torch.randn(50, 40, dtype=torch.float64)
    empirical = KroneckerFactors(model, nn.MSELoss(), layers, [(x, targets)],
                                 torch.Generator())
    assert empirical.kind == "empirical_fisher"
    residual = (model(x) - targets).detach() * 2 / 40       # per-sample MSE gradients
    assert torch.allclose(empirical.factors["0"][2], residual.T @ residual / 50)


def test_cross_entropy_is_recognised_in_either_layout():
    logits = torch.randn(3, 5, 7, dtype=torch.float64)
    first = torch.randint(0, 5, (3, 7))
    last = torch.randint(0, 7, (3, 5))
    assert cross_entropy_class_dim(logits, first, nn.CrossEntropyLoss()) == 1
    flattened = lambda o, t: nn.functional.cross_entropy(o.reshape(-1, 7), t.reshape(-1))  # noqa: E731
    assert cross_entropy_class_dim(logits, last, flattened) == 2
    assert cross_entropy_class_dim(logits, first, lambda o, t: (o ** 2).mean()) is None
    assert cross_entropy_class_dim(logits, logits, nn.MSELoss()) is None
