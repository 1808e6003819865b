"""The Unlearner: exactness where the answer is known, the seed code's bugs, bad input."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import itertools

from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from chatterjee.unlearn import (
    RemovalBudget,
    Slice,
    SliceMap,
    Unlearner,
    sekhari_noise_std,
    token_replacement,
)
from chatterjee.unlearn._data import TrainingData
from chatterjee.unlearn.kfac import KroneckerFactors
from chatterjee.unlearn.curvature import (
    BlockObjective,
    damped_newton_step,
    layer_directions,
)

WD = 1e-2


pytestmark = pytest.mark.usefixtures("one_thread")


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def fit(model, loss_fn, X, y, weight_decay=WD, tol=1e-11):
    """Full-batch L-BFGS to a tight gradient norm, then Newton polish."""
    params = list(model.parameters())
    opt = torch.optim.LBFGS(params, max_iter=500, tolerance_grad=1e-14,
                            tolerance_change=0, history_size=50, line_search_fn="strong_wolfe")

    def objective():
        return loss_fn(model(X), y) + weight_decay / 2 * sum((p ** 2).sum() for p in params)

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss
    for _ in range(10):
        opt.step(closure)
        if torch.cat([p.grad.reshape(-1) for p in params]).norm() < tol:
            break
    return model


def logistic_problem(n=240, d=6, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    W = torch.randn(d, classes, generator=gen, dtype=torch.float64)
    y = (X @ W + 0.5 * torch.randn(n, classes, generator=gen, dtype=torch.float64)).argmax(1)
    torch.manual_seed(seed)
    model = fit(nn.Linear(d, classes).double(), nn.CrossEntropyLoss(), X, y)
    return model, X, y


def retrained(model, X, y, removed, loss_fn=None):
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    keep = torch.tensor([i for i in range(len(X)) if i not in set(removed)])
    copy = type(model)(model.in_features, model.out_features).double()
    copy.load_state_dict(model.state_dict())
    return fit(copy, loss_fn, X[keep], y[keep])


def clone(model):
    import copy
    return copy.deepcopy(model)


# --- exactness ------------------------------------------------------------------------

def test_least_squares_newton_is_exact():
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(80, 4, generator=gen, dtype=torch.float64)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]], dtype=torch.float64) \
        + 0.1 * torch.randn(80, 1, generator=gen, dtype=torch.float64)
    loss_fn = nn.MSELoss()
    torch.manual_seed(1)
    model = fit(nn.Linear(4, 1).double(), loss_fn, X, y)
    # the retrained model in closed form: (2/m) A^T (A w - y) + WD w = 0 on the m kept rows
    keep = torch.tensor([i for i in range(80) if i not in (5, 17)])
    A = torch.cat([X[keep], torch.ones(78, 1, dtype=torch.float64)], 1)
    target = torch.linalg.solve(2 / 78 * A.T @ A + WD * torch.eye(5, dtype=torch.float64),
                                2 / 78 * A.T @ y[keep])[:, 0]
    u = Unlearner(model, loss_fn, (X, y), weight_decay=WD, selection="full",
                  objective="retained", random_state=0)
    report = u.forget([5, 17])
    assert torch.allclose(flat(model), target, atol=1e-12, rtol=0)
    assert report.retained_gradient_norm_after < 1e-12
    assert report.passes[0]["damping"] == 0.0


def test_logistic_full_newton_close_to_retraining():
    model, X, y = logistic_problem()
    original = flat(model).clone()
    target = retrained(model, X, y, [3])
    report = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                       selection="full", random_state=0).forget(3)
    error = (flat(model) - flat(target)).norm() / flat(target).norm()
    assert error < 1e-3
    gap = 1 - (flat(model) - flat(target)).norm() / (original - flat(target)).norm()
    assert gap > 0.95
    assert report.removed_loss_after > report.removed_loss_before   # removal raises it
    assert report.n_parameters == sum(p.numel() for p in model.parameters())


def test_iterated_passes_reduce_the_retained_gradient():
    model, X, y = logistic_problem(classes=5)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, selection="gradient",
                  max_slices=1, max_passes=6, random_state=0)
    report = u.forget(10)
    norms = [p["retained_gradient_norm"] for p in report.passes]
    assert len(report.passes) == 6
    assert all(b <= a * (1 + 1e-9) for a, b in itertools.pairwise(norms))
    assert norms[-1] < 0.2 * report.retained_gradient_norm_before
    for earlier, later in itertools.pairwise(report.passes):   # Gauss-Southwell: never the
        assert later["slices"] != earlier["slices"]           # block just solved exactly
    objectives = [(p["objective_before"], p["objective_after"]) for p in report.passes]
    assert all(after <= before for before, after in objectives)


def least_squares_problem(n=120, d=5, outputs=3, seed=2):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    X[:, 1] += 0.9 * X[:, 0]                      # correlated inputs: coupled slices
    y = X @ torch.randn(d, outputs, generator=gen, dtype=torch.float64) \
        + torch.randn(n, outputs, generator=gen, dtype=torch.float64)
    torch.manual_seed(seed)
    loss_fn = nn.MSELoss()
    return fit(nn.Linear(d, outputs).double(), loss_fn, X, y), loss_fn, X, y


def test_subspace_pass_is_the_minimizer_over_the_block_and_layer_direction():
    # On a quadratic objective one accelerated pass lands on the exact minimizer over
    # span(block coordinates, the layer's block-Jacobi direction), computed here by hand.
    # For least squares the Kronecker-factored unit blocks are exact, so the direction
    # is the Newton step of the block-diagonal Hessian: with uncoupled output units that
    # is the full Newton step, and the pass retrains exactly.
    model, loss_fn, X, y = least_squares_problem()
    keep = torch.tensor([i for i in range(len(X)) if i != 7])
    w0 = flat(model).clone()
    target = retrained(model, X, y, [7], loss_fn)

    def retained_objective(w):
        W, b = w[:15].reshape(3, 5), w[15:]
        return loss_fn(X[keep] @ W.T + b, y[keep]) + WD / 2 * (w ** 2).sum()
    g = torch.func.grad(retained_objective)(w0)
    H = torch.func.hessian(retained_objective)(w0)
    units = [[5 * u + j for j in range(5)] + [15 + u] for u in range(3)]
    direction = torch.zeros(18, dtype=torch.float64)
    for rows in units:
        direction[rows] = torch.linalg.solve(H[rows][:, rows], g[rows])
    block = torch.zeros(18, 6, dtype=torch.float64)
    block[units[0], torch.arange(6)] = 1.0
    basis = torch.cat([block, direction[:, None]], 1)
    coefficients = torch.linalg.solve(basis.T @ H @ basis, -basis.T @ g)

    u = Unlearner(model, loss_fn, (X, y), weight_decay=WD, selection=[("", 0)],
                  objective="retained", acceleration="subspace", random_state=0)
    report = u.forget(7)
    assert torch.allclose(flat(model), w0 + basis @ coefficients, atol=1e-10, rtol=0)
    assert torch.allclose(flat(model), flat(target), atol=1e-9, rtol=0)
    assert report.passes[0]["n_directions"] == 1
    assert report.n_parameters == 18 and len(report.slices) == 3
    assert report.slices[0] == Slice("", 0)


def test_subspace_passes_converge_faster_than_block_passes():
    # the class rows of a softmax are coupled: block passes converge slowly
    model, X, y = logistic_problem(classes=5)
    target = retrained(model, X, y, [10])
    gaps = {}
    for acceleration in (None, "subspace"):
        copy = clone(model)
        u = Unlearner(copy, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                      selection="gradient", max_slices=1, max_passes=4,
                      acceleration=acceleration, random_state=0)
        report = u.forget(10)
        assert all(p["accepted"] for p in report.passes)
        gaps[acceleration] = float((flat(copy) - flat(target)).norm())
        if acceleration:   # the earlier steps and the gradient
            assert [p["n_directions"] for p in report.passes] == [1, 2, 3, 4]
    assert gaps["subspace"] < 0.5 * gaps[None]


def test_subspace_first_pass_is_at_least_as_good_as_the_block():
    model, X, y = logistic_problem(classes=5)
    values = {}
    for acceleration in (None, "subspace"):
        u = Unlearner(clone(model), nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                      selection="gradient", max_slices=2, acceleration=acceleration,
                      objective="retained", random_state=0)
        report = u.forget([4, 9])
        values[acceleration] = report.passes[0]["objective_after"]
    assert values["subspace"] < values[None]


def test_large_block_enters_the_subspace_by_its_newton_step():
    """A block too large for a dense solve (here: max_dense=1) enters the accelerated
    pass by its own Newton step, computed by preconditioned conjugate gradients; the
    pass minimizes over that step and the layer direction by a small dense solve. On
    least squares the layer direction is the full Newton step: the pass retrains
    exactly, as the dense pass over the block does."""
    model, loss_fn, X, y = least_squares_problem()
    target = retrained(model, X, y, [7], loss_fn)
    results = []
    for max_dense in (4096, 1):
        copy = clone(model)
        u = Unlearner(copy, loss_fn, (X, y), weight_decay=WD, selection=[("", 0)],
                      objective="retained", acceleration="subspace", max_dense=max_dense,
                      random_state=0)
        report = u.forget(7)
        assert report.passes[0]["solver"] == "cholesky"
        assert report.passes[0]["n_directions"] == (1 if max_dense > 1 else 2)
        results.append(flat(copy))
    for result in results:
        assert torch.allclose(result, flat(target), atol=1e-9, rtol=0)


# --- slices and hooks -----------------------------------------------------------------

class TwoIdentical(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.second(torch.relu(self.first(x)))))


def test_identical_layers_keep_separate_slices():
    torch.manual_seed(0)              # unit 2 of "second" is not dead (ReLU) at this seed
    model = TwoIdentical().double()
    slice_map = SliceMap(model)
    assert len(slice_map) == 10
    rows = slice_map.block([Slice("second", 2)]).rows
    assert set(rows) == {"second.weight", "second.bias"}
    assert rows["second.weight"].tolist() == [2]
    X = torch.randn(50, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (50,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Unlearner(model, nn.CrossEntropyLoss(), (X, y), selection=[("second", 2)],
              random_state=0).forget(0)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed <= {"second.weight", "second.bias"}
    assert not torch.equal(before["second.weight"][2], after["second.weight"][2])
    assert torch.equal(before["second.weight"][[0, 1, 3]], after["second.weight"][[0, 1, 3]])


class Reused(nn.Module):
    """One layer called twice, one never called, a convolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.shared = nn.Linear(12, 12)
        self.unused = nn.Linear(12, 12)
        self.head = nn.Linear(12, 2)

    def forward(self, x):
        h = torch.relu(self.conv(x)).flatten(1)          # (B, 3 * 2 * 2)
        h = torch.relu(self.shared(torch.relu(self.shared(h))))
        return self.head(h)


def test_hooks_handle_reused_and_unused_modules():
    torch.manual_seed(0)
    from chatterjee.unlearn.slices import record_activations
    model = Reused().double()
    slice_map = SliceMap(model)
    values, columns, outputs = record_activations(model, slice_map.layers,
                                                  torch.randn(7, 1, 4, 4, dtype=torch.float64))
    assert values.shape == (7, 3 + 12 + 12 + 2)
    assert outputs.shape == (7, 2)
    assert columns.count(Slice("shared", 0)) == 2
    assert Slice("unused", 0) not in columns
    X = torch.randn(60, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (60,))
    report = Unlearner(model, nn.CrossEntropyLoss(), (X, y), n_perturbations=64,
                       random_state=0).forget(1)
    assert report.slices and all(s.module != "unused" for s in report.slices)


def test_model_without_sliceable_layers_is_refused():
    model = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(ValueError, match="no trainable nn.Linear"):
        Unlearner(model, nn.CrossEntropyLoss(), (torch.zeros(5, dtype=torch.long),
                                                 torch.zeros(5, dtype=torch.long)))


# --- atomicity, bookkeeping, bad input ------------------------------------------------

@pytest.mark.parametrize("acceleration", [None, "subspace"])
def test_failed_step_leaves_model_bit_identical(monkeypatch, acceleration):
    model, X, y = logistic_problem()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                  selection="gradient", max_slices=1, max_passes=2,
                  acceleration=acceleration, random_state=0)
    import chatterjee.unlearn.unlearner as module
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:       # the first pass has already written the model
            raise RuntimeError("boom")
        return damped_newton_step(*args, **kwargs)
    monkeypatch.setattr(module, "damped_newton_step", failing)
    with pytest.raises(RuntimeError, match="boom"):
        u.forget(4)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model.training
    assert u.removed == [] and u.n_retained == len(X) and u.reports == []


def test_retained_gradient_is_downdated_between_calls_unless_the_model_changed():
    model, X, y = logistic_problem()
    cached, fresh = clone(model), clone(model)
    options = {"weight_decay": WD, "selection": "gradient", "max_slices": 1,
               "random_state": 0}
    u_cached = Unlearner(cached, nn.CrossEntropyLoss(), (X, y), **options)
    u_fresh = Unlearner(fresh, nn.CrossEntropyLoss(), (X, y), **options)
    sizes = []
    sweep = u_cached._loss_gradient
    u_cached._loss_gradient = lambda indices: sizes.append(len(indices)) or sweep(indices)

    def both(indices):
        u_fresh._retained_sum = None                 # always a pass over the data
        del sizes[:]
        a, b = u_cached.forget(indices), u_fresh.forget(indices)
        assert torch.allclose(flat(cached), flat(fresh), atol=1e-13, rtol=0)
        assert a.retained_gradient_norm_before == pytest.approx(
            b.retained_gradient_norm_before, rel=1e-12)
        return sizes.count(u_cached.n_retained)      # passes over the retained data

    assert both(3) == 2                  # first call: before and after the step
    assert both([7, 8]) == 1             # downdated: only the pass after the step
    with torch.no_grad():                # the caller changes the model: recomputed
        cached.weight[0, 0] += 0.1
        fresh.weight[0, 0] += 0.1
    assert both(11) == 2


@pytest.mark.parametrize("acceleration", [None, "subspace"])
def test_subsample_step_control_never_passes_over_the_retained_data(acceleration):
    model, X, y = logistic_problem(n=300, classes=4)
    options = {"weight_decay": WD, "selection": "gradient", "max_slices": 2,
               "curvature": "gauss_newton", "curvature_samples": 40,
               "acceleration": acceleration, "max_passes": 3, "random_state": 0}
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), step_control="subsample", **options)
    touched, samples = [], []
    make = u._objective
    u._objective = lambda scope, *rest: samples.append((scope, rest[-1])) or make(scope, *rest)
    sweep = u.data.batches
    u.data.batches = lambda indices: touched.append(len(indices)) or sweep(indices)
    for indices in (3, [7, 8, 9]):
        before = flat(model).clone()
        report = u.forget(indices)
        assert not torch.equal(flat(model), before)
        assert report.removed_loss_after > report.removed_loss_before
        assert np.isnan(report.retained_gradient_norm_before)
        assert np.isnan(report.retained_gradient_norm_after)
        targets = [p["target_gradient_norm"] for p in report.passes]
        # after the last pass the subsample's gradient is not computed (nothing needs it)
        assert all(np.isfinite(targets[:-1])) and np.isnan(targets[-1])
        # Without acceleration the passes are block Newton steps on the subsample's
        # quadratic model; the accelerated passes' layer directions come from K-FAC
        # factors of another curvature sample (computed once per model, not per pass),
        # so on this 300-sample problem they only keep the gradient from growing.
        assert targets[-2] < targets[0] * (1 if acceleration is None else 1.1)
        assert all(p["objective_after"] <= p["objective_before"] for p in report.passes)
    assert max(touched) <= 80            # removed samples and the subsample only
    for scope, curvature in samples:     # the step is checked on 40 more samples
        assert len(scope) == 80 and len(curvature) == 40
        assert set(curvature.tolist()) < set(scope.tolist())


def test_subsample_step_control_takes_the_influence_step_of_the_curvature_sample():
    # least squares: the step is w_0 + H_S^-1 (k / (n - k)) (mean removed gradient +
    # weight_decay w_0), H_S the Hessian on the curvature sample, accepted undamped
    model, loss_fn, X, y = least_squares_problem()
    untouched = clone(model)
    u = Unlearner(model, loss_fn, (X, y), weight_decay=WD, selection="full",
                  curvature_samples=50, step_control="subsample", random_state=0)
    samples = []
    make = u._objective
    u._objective = lambda scope, *rest: samples.append(rest[-1]) or make(scope, *rest)
    removed = [4, 50]
    report = u.forget(removed)
    assert report.passes[0]["damping"] == 0.0 and report.passes[0]["accepted"]
    w0 = flat(untouched)
    shapes = [p.shape for p in untouched.parameters()]

    def objective(w, rows):
        weight, bias = w[:-shapes[1].numel()].reshape(shapes[0]), w[-shapes[1].numel():]
        return loss_fn(X[rows] @ weight.T + bias, y[rows]) + WD / 2 * (w ** 2).sum()
    curvature_sample, = (s for s in samples if s is not None)   # the pass's objective
    H = torch.func.hessian(objective)(w0, curvature_sample)
    influence = len(removed) / (120 - len(removed)) * torch.func.grad(objective)(
        w0, torch.tensor(removed))
    assert torch.allclose(flat(model), w0 + torch.linalg.solve(H, influence),
                          atol=1e-12, rtol=0)
    # with no subsample, the scope is every retained sample: the "retained" control
    results = []
    for control in ("retained", "subsample"):
        copy_ = clone(untouched)
        report = Unlearner(copy_, loss_fn, (X, y), weight_decay=WD, selection="gradient",
                           max_slices=1, max_passes=2, step_control=control,
                           random_state=0).forget(removed)
        results.append((flat(copy_), report.retained_gradient_norm_after))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-13, rtol=0)
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-10)


def test_n_is_decremented_and_bad_indices_refused():
    model, X, y = logistic_problem(n=60)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, selection="gradient",
                  max_slices=1, random_state=0)
    u.forget(2)
    u.forget([5, 7])
    assert u.n_retained == 57 and u.removed == [2, 5, 7]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for bad, error in [(60, "out of range"), (-1, "out of range"), (5, "already removed"),
                       ([8, 8], "duplicates"), ([], "no index"),
                       (list(set(range(60)) - {2, 5, 7}), "no training sample")]:
        with pytest.raises(ValueError, match=error):
            u.forget(bad)
    with pytest.raises(TypeError, match="integers"):
        u.forget([1.5])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert u.n_retained == 57


@pytest.mark.parametrize("kwargs, match", [
    ({"selection": "best"}, "selection must be one of"),
    ({"selection": [("nope", 0)]}, "not a slice of this model"),
    ({"max_parameters": 1.5}, "max_parameters"),
    ({"max_parameters": 0}, "max_parameters"),
    ({"max_passes": 0}, "max_passes"),
    ({"acceleration": "momentum"}, "acceleration"),
    ({"n_perturbations": 3}, "n_perturbations"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"noise": "laplace"}, "noise must be"),
    ({"noise": "sekhari", "delta": 1.0}, "delta"),
    ({"curvature": "fisher"}, "curvature"),
    ({"objective": "exact"}, "objective must be"),
    ({"step_control": "model"}, "step_control must be"),
    ({"step_control": "subsample", "objective": "retained"}, "needs objective='influence'"),
])
def test_bad_options(kwargs, match):
    model, X, y = logistic_problem(n=30)
    with pytest.raises(ValueError, match=match):
        Unlearner(model, nn.CrossEntropyLoss(), (X, y), **kwargs)


def test_bad_data_refused():
    model = nn.Linear(3, 2).double()
    with pytest.raises(ValueError, match="same number"):
        Unlearner(model, nn.CrossEntropyLoss(), (torch.zeros(5, 3), torch.zeros(4)))
    with pytest.raises(TypeError, match="train_data must be"):
        Unlearner(model, nn.CrossEntropyLoss(), np.zeros((5, 3)))


def test_dataset_and_loader_match_tensors():
    model, X, y = logistic_problem(n=80)
    results = []
    for data in [(X, y), TensorDataset(X, y), DataLoader(TensorDataset(X, y), batch_size=16,
                                                           shuffle=True)]:
        copy = clone(model)
        Unlearner(copy, nn.CrossEntropyLoss(), data, weight_decay=WD, n_perturbations=64,
                  random_state=3).forget([1, 2])
        results.append(flat(copy))
    assert torch.allclose(results[0], results[1], atol=1e-12)
    assert torch.allclose(results[0], results[2], atol=1e-12)


def test_same_seed_same_answer():
    model, X, y = logistic_problem(n=100)
    a, b = clone(model), clone(model)
    ra = Unlearner(a, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, n_perturbations=64,
                   noise=1e-3, random_state=7).forget(9)
    rb = Unlearner(b, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, n_perturbations=64,
                   noise=1e-3, random_state=7).forget(9)
    assert ra.slices == rb.slices
    assert torch.equal(flat(a), flat(b))


# --- selection rules and caps ---------------------------------------------------------

def test_max_parameters_as_count_or_fraction():
    model, X, y = logistic_problem(n=30, classes=4)
    total = SliceMap(model).n_parameters
    for value, expected in [(10, 10), (10.0, 10), (0.5, total // 2), (1.0, total)]:
        u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), max_parameters=value)
        assert u.max_parameters == expected


def test_lfoci_selects_within_caps():
    model, X, y = logistic_problem(n=150, classes=4)
    slice_map = SliceMap(model)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, n_perturbations=128,
                  max_parameters=0.5, random_state=0)
    report = u.forget(0)
    assert 1 <= len(report.slices) <= 2      # 4 slices of 7 parameters, cap 14
    assert report.n_parameters == 7 * len(report.slices)
    assert all(s in slice_map.slices for s in report.slices)
    assert report.timings["total"] >= report.timings["newton"] > 0


def test_gradient_rule_picks_the_largest_gradient_rows():
    model, X, y = logistic_problem(n=150, classes=4)
    loss = nn.CrossEntropyLoss()(model(X[[11]]), y[[11]])
    weight, bias = torch.autograd.grad(loss, [model.weight, model.bias])
    norms = (weight ** 2).sum(1) + bias ** 2
    best = int(norms.argmax())
    report = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                       selection="gradient", max_slices=1, random_state=0).forget(11)
    assert report.slices == [Slice("", best)]


def test_forget_class_removes_every_sample_of_the_class():
    model, X, y = logistic_problem(n=120, classes=3)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, selection="full",
                  random_state=0)
    before = (model(X[y == 1]).argmax(1) == 1).double().mean()
    report = u.forget_class(1)
    assert sorted(report.indices) == torch.nonzero(y == 1)[:, 0].tolist()
    after = (model(X[y == 1]).argmax(1) == 1).double().mean()
    assert after < before
    with pytest.raises(ValueError, match="no remaining"):
        u.forget_class(1)


def test_forget_class_of_a_linear_classifier_is_exact_retraining():
    # the model is its output layer: the convex retained problem is retraining itself
    model, X, y = logistic_problem(n=240, classes=3)
    expected = retrained(model, X, y, torch.nonzero(y == 1)[:, 0].tolist())
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, random_state=0)
    report = u.forget_class(1)
    assert report.passes[0]["solver"] == "output layer (L-BFGS)"
    assert report.n_parameters == 3 * 7
    with torch.no_grad():
        # to the refit's stopping rule: gradient entries below 1e-6, curvature at least
        # the weight decay, 1e-2
        torch.testing.assert_close(model(X), expected(X), rtol=0, atol=2e-4)


def two_layer_classifier(seed=0, n=300, classes=3):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    y = (X[:, :classes] + 0.3 * torch.randn(n, classes, generator=gen,
                                            dtype=torch.float64)).argmax(1)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, classes)).double()
    return fit(model, nn.CrossEntropyLoss(), X, y), X, y


def head_gradient(model, X, y, keep, decay):
    """Largest entry of the gradient of the refit's documented objective (mean
    cross-entropy over ``keep`` plus ``decay / 2`` times the head's squared norm) over
    the head of :func:`two_layer_classifier`, written out."""
    with torch.no_grad():
        features = torch.tanh(model[0](X[keep]))
        residual = torch.softmax(model[2](features), 1) - nn.functional.one_hot(y[keep], 3)
        gradient_w = residual.T @ features / keep.sum() + decay * model[2].weight
        gradient_b = residual.mean(0) + decay * model[2].bias
    return float(max(gradient_w.abs().max(), gradient_b.abs().max()))


def test_forget_class_refits_the_output_layer_alone():
    model, X, y = two_layer_classifier()
    first = [p.detach().clone() for p in model[0].parameters()]
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, random_state=0)
    u.forget_class(2)
    assert all(torch.equal(a, b) for a, b in zip(first, model[0].parameters()))
    assert head_gradient(model, X, y, y != 2, WD) < 1e-6
    with torch.no_grad():
        assert not (model(X[y == 2]).argmax(1) == 2).any()


def test_forget_class_without_weight_decay_refits_with_the_default_penalty():
    # separable features: without a penalty the refit has no minimum and the layer's
    # norm would grow as far as the iterations go
    model, X, y = two_layer_classifier()
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), random_state=0)
    report = u.forget_class(2)
    keep = y != 2
    assert head_gradient(model, X, y, keep, 1.0 / int(keep.sum())) < 1e-6
    assert report.removed_loss_after < 30


def test_forget_class_without_an_output_layer_takes_newton_passes():
    model, X, y = two_layer_classifier()
    wrapped = nn.Sequential(model, nn.LogSoftmax(1))      # the output is not a Linear's
    u = Unlearner(wrapped, nn.NLLLoss(), (X, y), weight_decay=WD, random_state=0)
    assert u.forget_class(2).passes[0]["solver"] != "output layer (L-BFGS)"


@pytest.mark.parametrize("max_passes", [1, 2])
def test_one_pass_takes_the_gradients_of_its_block_only(max_passes):
    # memory: a single pass on a subsample takes its gradients in the block's
    # coordinates (no gradient of a whole weight matrix), equal to the block's entries
    # of the full gradients; later passes rank all slices and need them all
    model, X, y = two_layer_classifier(n=300)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                  selection=[("2", 0), ("2", 1)], curvature_samples=40,
                  max_passes=max_passes, random_state=0)
    full_gradients, checked = [], []
    sweep, block_influence = u._loss_gradient, u._block_influence
    u._loss_gradient = lambda indices: full_gradients.append(len(indices)) or sweep(indices)

    def checked_influence(removed, scope, retained, slices):
        gradient, offset = block_influence(removed, scope, retained, slices)
        block, params = u.slice_map.block(slices), dict(model.named_parameters())
        k = len(removed) / len(retained)
        influence = {name: (g + WD * params[name].detach()) * k
                     for name, g in sweep(removed).items()}
        scope_gradient = {name: g + WD * params[name].detach()
                          for name, g in sweep(scope).items()}
        assert torch.allclose(gradient, -block.gather(influence), rtol=1e-12, atol=1e-15)
        assert torch.allclose(offset, block.gather(scope_gradient) + block.gather(influence),
                              rtol=1e-12, atol=1e-15)
        checked.append(True)
        return gradient, offset
    u._block_influence = checked_influence
    u.forget(4)
    if max_passes == 1:
        assert checked and not full_gradients
    else:
        assert not checked and full_gradients


def test_failed_class_removal_leaves_model_bit_identical(monkeypatch):
    model, X, y = two_layer_classifier()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, random_state=0)
    import chatterjee.unlearn.unlearner as module
    refit = module.refit_output_layer

    def failing(*args, **kwargs):
        refit(*args, **kwargs)          # the layer is written, then the call fails
        raise FloatingPointError("boom")
    monkeypatch.setattr(module, "refit_output_layer", failing)
    with pytest.raises(FloatingPointError, match="boom"):
        u.forget_class(2)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert u.removed == [] and u.reports == []


# --- BatchNorm, dtype, tokens ---------------------------------------------------------

@pytest.mark.parametrize("acceleration", [None, "subspace"])
def test_batchnorm_uses_running_statistics_and_is_never_updated(acceleration):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    X = torch.randn(64, 5)
    y = torch.randint(0, 2, (64,))
    model.train()
    for _ in range(5):                       # give the running statistics values
        model(X)
    bn_state = {k: v.clone() for k, v in model[1].state_dict().items()}
    report = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-2,
                       n_perturbations=64, acceleration=acceleration, max_passes=2,
                       random_state=0).forget(3)
    assert all(s.module in ("0", "3") for s in report.slices)
    assert all(p["accepted"] for p in report.passes)
    assert all(torch.equal(bn_state[k], v) for k, v in model[1].state_dict().items())
    assert model.training


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(90, 5, generator=gen).to(dtype)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = fit(nn.Linear(5, 2).to(dtype), nn.CrossEntropyLoss(), X, y, tol=1e-5)
    report = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                       selection="full", random_state=0).forget(0)
    assert model.weight.dtype == dtype
    assert report.passes[0]["accepted"]
    assert report.retained_gradient_norm_after < 0.1 * report.retained_gradient_norm_before


class TinyTransformer(nn.Module):
    def __init__(self, vocab=20, width=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width, padding_idx=0)
        self.encoder = nn.TransformerEncoderLayer(width, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(width, 2)

    def forward(self, tokens):
        mask = tokens == 0
        h = self.encoder(self.embed(tokens), src_key_padding_mask=mask)
        keep = (~mask).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1))


def test_token_model_with_replacement_perturbations_and_padding_mask():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(2, 20, (80, 6), generator=gen)
    tokens[:40, 4:] = 0                                  # padding
    labels = (tokens == 5).any(1).long()
    torch.manual_seed(0)
    model = TinyTransformer()
    perturb = token_replacement(20, rate=0.3, protected=[0])
    from chatterjee.unlearn.slices import record_activations
    model.eval()
    with torch.no_grad():         # as in the perturbation table (no attention fast path)
        values, columns, _ = record_activations(model, SliceMap(model).layers, tokens[:5],
                                                position_mask=tokens[:5] != 0)
    assert {c.module for c in columns} == {"encoder.self_attn.out_proj", "encoder.linear1",
                                           "encoder.linear2", "head"}
    assert values.shape == (5, 8 + 16 + 8 + 2)
    copies = perturb(tokens[:2], 50, torch.Generator().manual_seed(1))
    assert copies.shape == (50, 2, 6) and bool((copies[:, 0, 4:] == 0).all())
    # the default perturbation of token ids: replacements from the embedding's
    # vocabulary, its padding index left alone
    default = Unlearner(model, nn.CrossEntropyLoss(), (tokens, labels))._perturb
    copies = default(tokens[[0, 50]], 200, torch.Generator().manual_seed(1))
    assert bool((copies[:, 0, 4:] == 0).all()) and int(copies.max()) < 20
    changed = copies[:, 1] != tokens[50]
    assert 0.05 < float(changed.double().mean()) < 0.15 and bool((copies[:, 1] != 0).all())
    u = Unlearner(model, nn.CrossEntropyLoss(), (tokens, labels), weight_decay=1e-3,
                  perturbation=perturb, position_mask=lambda t: t != 0, n_perturbations=64,
                  max_parameters=200, random_state=0)
    report = u.forget(3)
    assert report.slices and {s.module for s in report.slices} <= {
        "encoder.self_attn.out_proj", "encoder.linear1", "encoder.linear2", "head"}
    assert report.n_parameters <= 200
    assert report.passes[0]["accepted"]
    assert report.passes[0]["objective_after"] < report.passes[0]["objective_before"]


# --- curvature and the solve ----------------------------------------------------------

def test_block_hessian_is_the_full_hessian_sub_block():
    torch.manual_seed(0)
    model = Reused().double()
    X = torch.randn(20, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (20,))
    loss_fn = nn.CrossEntropyLoss()
    slice_map = SliceMap(model)
    chosen = [Slice("conv", 1), Slice("shared", 3), Slice("head", 0)]
    block = slice_map.block(chosen)
    objective = BlockObjective(model, loss_fn, TrainingData((X, y), batch_size=7),
                               torch.arange(20), 0.1, block)
    H = objective.hessian(objective.theta)
    params = {n: p.detach() for n, p in model.named_parameters()}

    def full_loss(theta):
        p = block.scatter(params, theta)
        return loss_fn(torch.func.functional_call(model, p, (X,)), y)
    reference = torch.autograd.functional.hessian(full_loss, objective.theta)
    reference = reference + 0.1 * torch.eye(len(objective.theta), dtype=torch.float64)
    assert torch.allclose(H, reference, atol=1e-10)
    G = objective.hessian(objective.theta, kind="gauss_newton")
    assert float(torch.linalg.eigvalsh(G)[0]) >= 0.1 - 1e-9   # PSD plus weight decay
    v = torch.randn(len(objective.theta), dtype=torch.float64)
    assert torch.allclose(objective.hessian_vector(objective.theta, v), H @ v, atol=1e-10)


@pytest.mark.parametrize("model_kind", ["mlp", "conv", "transformer"])
def test_gauss_newton_matrix_equals_its_products(model_kind):
    """The linear-layer assembly (MLP) and the per-sample Jacobians (convolution,
    attention) give the matrix of the Gauss-Newton products."""
    torch.manual_seed(1)
    if model_kind == "mlp":
        model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double()
        X = torch.randn(40, 6, dtype=torch.float64)
        chosen = [Slice("0", 1), Slice("0", 4), Slice("2", 0), Slice("2", 2)]
    elif model_kind == "conv":
        model = Reused().double()
        X = torch.randn(40, 1, 4, 4, dtype=torch.float64)
        chosen = [Slice("conv", 2), Slice("head", 1)]
    else:
        model = TinyTransformer().double().eval()
        X = torch.randint(1, 20, (40, 5))
        X[:10, 3:] = 0
        chosen = [Slice("encoder.self_attn.out_proj", 1), Slice("encoder.linear1", 3),
                  Slice("head", 0)]
    y = torch.randint(0, 3 if model_kind == "mlp" else 2, (40,))
    objective = BlockObjective(model, nn.CrossEntropyLoss(), TrainingData((X, y), batch_size=16),
                               torch.arange(40), 0.01, SliceMap(model).block(chosen))
    p = len(objective.theta)
    products = objective._products(objective.theta, torch.eye(p, dtype=torch.float64),
                                   "gauss_newton")
    assert (objective._linear_gauss_newton(objective.theta) is None) == (model_kind != "mlp")
    assert objective._jacobian_gauss_newton(objective.theta) is not None
    G = objective.hessian(objective.theta, kind="gauss_newton")
    assert torch.allclose(G, 0.5 * (products + products.T), atol=1e-12)


def test_kronecker_factors_and_layer_directions():
    """K-FAC factors from first principles; one direction per layer (the gradient
    preconditioned unit by unit), merged when fewer directions are allowed."""
    torch.manual_seed(2)
    model = Reused().double()
    X = torch.randn(30, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (30,))
    loss_fn = nn.CrossEntropyLoss()
    slice_map = SliceMap(model)
    data = TrainingData((X, y), batch_size=8)
    objective = BlockObjective(model, loss_fn, data, torch.arange(30), 0.05,
                               slice_map.block(slice_map.slices))
    layers = slice_map.layers
    factors = KroneckerFactors(model, loss_fn, layers, data.batches(torch.arange(30)),
                               torch.Generator())
    assert set(factors.factors) == {"conv", "shared", "head"}   # "unused" is never called
    with torch.no_grad():
        h = torch.relu(model.conv(X)).flatten(1)
        h = torch.relu(model.shared(torch.relu(model.shared(h))))
        p = torch.softmax(model.head(h), 1)
    inputs = torch.cat([h, torch.ones(30, 1, dtype=torch.float64)], 1)
    eigenvalues, vectors, G = factors.factors["head"]
    A = vectors @ torch.diag(eigenvalues) @ vectors.T
    assert torch.allclose(A, inputs.T @ inputs / 30, atol=1e-12)
    # for a linear head the output Jacobian is the identity: G = mean_i (diag p - p p^T)
    fisher = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    assert torch.allclose(G, fisher.mean(0), atol=1e-12)

    gradient = {name: torch.randn_like(param) for name, param in model.named_parameters()
                if name.split(".")[0] != "unused"}
    gradient.update({name: torch.zeros_like(param) for name, param in
                     model.named_parameters() if name.startswith("unused")})
    directions = layer_directions(objective, gradient, layers, factors, max_directions=8)
    assert len(directions) == 3          # conv, shared, head; "unused" has no gradient
    damping = 0.05 + 1e-8 * factors.mean_curvature() + torch.finfo(torch.float64).tiny
    zero = {n: torch.zeros_like(g) for n, g in gradient.items()}
    for direction, name in zip(directions, ("conv", "shared", "head")):
        layer = layers[name]
        R = torch.cat([gradient[layer.weight].reshape(layer.n_units, -1),
                       gradient[layer.bias][:, None]], 1)
        diagonal = torch.diagonal(factors.factors[name][2])
        width = R.shape[1]
        blocks = factors.factors[name]
        A = blocks[1] @ torch.diag(blocks[0]) @ blocks[1].T
        expected = torch.stack([torch.linalg.solve(
            diagonal[u] * A + damping * torch.eye(width, dtype=torch.float64), R[u])
            for u in range(layer.n_units)])
        weight = expected[:, :-1].reshape(gradient[layer.weight].shape)
        assert torch.allclose(direction, objective.block.gather(
            {**zero, layer.weight: weight, layer.bias: expected[:, -1]}), atol=1e-8)
    merged = layer_directions(objective, gradient, layers, factors, max_directions=1)
    assert len(merged) == 1 and torch.allclose(merged[0], sum(directions))


def test_conjugate_gradients_match_cholesky():
    model, X, y = logistic_problem(n=100, classes=3)
    slice_map = SliceMap(model)
    block = slice_map.block(slice_map.slices)
    objective = BlockObjective(model, nn.CrossEntropyLoss(), TrainingData((X, y)),
                               torch.arange(1, 100), WD, block)
    theta = objective.theta
    g = objective.gradient(theta)
    dense, info_dense = damped_newton_step(objective, theta, g)
    cg, info_cg = damped_newton_step(objective, theta, g, max_dense=1)
    assert info_dense["solver"] == "cholesky" and info_cg["solver"] == "cg"
    assert torch.allclose(dense, cg, atol=1e-9)


def test_indefinite_block_never_raises_the_objective():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    X = torch.randn(60, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (60,))               # random labels, short training: far from
    opt = torch.optim.SGD(model.parameters(), lr=0.5)   # an optimum, indefinite curvature
    for _ in range(30):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(X), y).backward()
        opt.step()
    slice_map = SliceMap(model)
    objective = BlockObjective(model, nn.CrossEntropyLoss(), TrainingData((X, y)),
                               torch.arange(60), 0.0, slice_map.block(slice_map.slices[:16]))
    theta = objective.theta
    eigenvalues = torch.linalg.eigvalsh(objective.hessian(theta))
    assert float(eigenvalues[0]) < 0
    step, info = damped_newton_step(objective, theta, objective.gradient(theta))
    assert info["damping"] > 0
    assert info["objective_after"] <= info["objective_before"]
    assert objective.value(theta + step) <= objective.value(theta)


# --- noise ----------------------------------------------------------------------------

def test_noise_options():
    model, X, y = logistic_problem(n=100)
    strong = fit(clone(model), nn.CrossEntropyLoss(), X, y, weight_decay=1.0)
    u = Unlearner(strong, nn.CrossEntropyLoss(), (X, y), weight_decay=1.0,
                  selection="full", noise="sekhari", epsilon=1.0, delta=1e-3,
                  budget=RemovalBudget(sigma=10.0, epsilon=1.0, delta=1e-3), random_state=0)
    first = u.forget(0)
    second = u.forget(1)
    assert first.noise_std == pytest.approx(sekhari_noise_std(100, 1, 1.0, 1.0, 1e-3))
    assert second.noise_std == pytest.approx(4 * first.noise_std)   # m = 2 removals
    assert first.retrain_due is False and u.budget.spent > 0
    quiet, noisy = clone(model), clone(model)
    Unlearner(quiet, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, selection="full",
              random_state=0).forget(0)
    report = Unlearner(noisy, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                       selection="full", noise=0.01, random_state=0).forget(0)
    difference = flat(noisy) - flat(quiet)
    assert report.noise_std == 0.01
    assert 0.5 < float(difference.std()) / 0.01 < 1.5


def test_full_newton_baseline_leaves_the_input_alone():
    from chatterjee.unlearn.baselines import full_newton
    model, X, y = logistic_problem(n=80)
    before = flat(model).clone()
    direct = clone(model)
    Unlearner(direct, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, selection="full",
              random_state=0).forget([4, 6])
    result = full_newton(model, nn.CrossEntropyLoss(), (X, y), [4, 6], weight_decay=WD,
                         random_state=0)
    assert torch.equal(flat(model), before)
    assert torch.equal(flat(result), flat(direct))


def test_influence_objective_is_the_influence_update_off_the_optimum():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(120, 5, generator=gen, dtype=torch.float64)
    y = (X[:, 0] + 0.3 * torch.randn(120, generator=gen, dtype=torch.float64) > 0).long()
    model = nn.Linear(5, 2).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(20):                       # stopped well before the optimum
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(X), y).backward()
        opt.step()
    removed = [7, 30]
    keep = torch.tensor([i for i in range(120) if i not in removed])
    w = flat(model)

    def retained_objective(theta):
        W, b = theta[:10].reshape(2, 5), theta[10:]
        return nn.CrossEntropyLoss()(X[keep] @ W.T + b, y[keep]) + WD / 2 * (theta ** 2).sum()

    def removed_sum(theta):
        W, b = theta[:10].reshape(2, 5), theta[10:]
        losses = nn.CrossEntropyLoss(reduction="sum")(X[removed] @ W.T + b, y[removed])
        return losses + len(removed) * WD / 2 * (theta ** 2).sum()
    H = torch.autograd.functional.hessian(retained_objective, w)
    g = torch.autograd.functional.jacobian(removed_sum, w)
    expected = w + torch.linalg.solve(H, g) / (120 - len(removed))
    influence, retained = clone(model), clone(model)
    report = Unlearner(influence, nn.CrossEntropyLoss(), (X, y), weight_decay=WD,
                       selection="full", objective="influence", random_state=0).forget(removed)
    assert report.passes[0]["damping"] == 0.0
    assert torch.allclose(flat(influence), expected, atol=1e-10)
    Unlearner(retained, nn.CrossEntropyLoss(), (X, y), weight_decay=WD, selection="full",
              objective="retained", random_state=0).forget(removed)
    assert not torch.allclose(flat(retained), expected, atol=1e-4)   # it trains further
