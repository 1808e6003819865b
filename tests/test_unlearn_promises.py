"""The Unlearner's promises: module modes restored (by the metrics and baselines too), a
failed call changes nothing, only integer indices accepted."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn

import chatterjee.unlearn.unlearner as unlearner_module
from chatterjee.unlearn import Unlearner, baselines, metrics

pytestmark = pytest.mark.usefixtures("one_thread")


def batchnorm_model():
    """A small network with a BatchNorm layer whose running statistics have values."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    X = torch.randn(64, 5)
    y = torch.randint(0, 2, (64,))
    model.train()
    for _ in range(3):
        model(X)
    return model, X, y


def modes(model):
    return [module.training for module in model.modules()]


# --- 5: every module's own mode is restored -------------------------------------------

@pytest.mark.parametrize("fail", [False, True])
def test_each_module_keeps_its_own_mode(monkeypatch, fail):
    model, X, y = batchnorm_model()
    model[1].eval()                          # a frozen BatchNorm in a training model
    before = modes(model)
    if fail:
        def failing(*args, **kwargs):
            raise RuntimeError("boom")
        monkeypatch.setattr(unlearner_module, "damped_newton_step", failing)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-2,
                  selection="gradient", max_slices=2, random_state=0)
    if fail:
        with pytest.raises(RuntimeError, match="boom"):
            u.forget(3)
    else:
        u.forget(3)
    assert modes(model) == before
    assert model.training and not model[1].training


# --- 6: a non-finite loss, gradient or step is an error, and changes nothing ----------

def mlp_problem(n=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    y = (X[:, 0] + X[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    return model, X, y


class Poisoned:
    """Cross-entropy that turns non-finite after ``healthy`` calls (None: never): its
    value (``"nan"``, ``"inf"``) or only its gradient (``"gradient"``)."""

    def __init__(self, how):
        self.how, self.healthy, self.calls = how, None, 0

    def __call__(self, outputs, targets):
        self.calls += 1
        loss = nn.functional.cross_entropy(outputs, targets)
        if self.healthy is None or self.calls <= self.healthy:
            return loss
        if self.how == "nan":
            return loss * float("nan")
        if self.how == "inf":
            return loss + float("inf")
        return loss + 0.0 * torch.sqrt(0.0 * outputs.sum())   # d sqrt(x) at 0: nan


OPTIONS = {
    "lfoci-dense": {"n_perturbations": 10, "max_passes": 2},
    "subspace-cg": {"selection": "gradient", "max_slices": 1, "max_passes": 2,
                    "acceleration": "subspace", "max_dense": 1},
}


def snapshot(model, u):
    return ({k: v.clone() for k, v in model.state_dict().items()}, modes(model),
            list(u.removed), u.n_retained, len(u.reports), u._retained_sum)


def assert_unchanged(model, u, before):
    state, training, removed, n_retained, n_reports, cache = before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert modes(model) == training
    assert (u.removed, u.n_retained, len(u.reports)) == (removed, n_retained, n_reports)
    assert u._retained_sum is cache


@pytest.mark.parametrize("how", ["nan", "inf"])
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_non_finite_loss_at_any_call_changes_nothing(how, options):
    model, X, y = mlp_problem()
    reference = copy.deepcopy(model)
    runs = []
    for net in (model, reference):
        loss = Poisoned(how)
        u = Unlearner(net, loss, (X, y), weight_decay=1e-2, random_state=0, **options)
        u.forget(1)                                  # a cache and a removal to keep
        runs.append((u, loss))
    (u, loss), (u_reference, loss_reference) = runs
    loss_reference.calls = 0
    u_reference.forget([3, 7])                       # healthy: count the loss calls
    assert loss_reference.calls > 10
    model.train()
    before = snapshot(model, u)
    for healthy in range(loss_reference.calls):      # the first call to the last
        loss.healthy, loss.calls = healthy, 0
        with pytest.raises(FloatingPointError, match="non-finite"):
            u.forget([3, 7])
        assert_unchanged(model, u, before)
    loss.healthy = None                              # and then it works, as if never tried
    u.forget([3, 7])          # (the rollback invalidated the cache: rounding differs)
    assert u.removed == [1, 3, 7]
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12)
               for a, b in zip(model.parameters(), reference.parameters()))


def test_non_finite_gradient_of_a_finite_loss_changes_nothing():
    model, X, y = mlp_problem()
    loss = Poisoned("gradient")
    u = Unlearner(model, loss, (X, y), weight_decay=1e-2, selection="full", random_state=0)
    before = snapshot(model, u)
    loss.healthy = 0
    with pytest.raises(FloatingPointError, match="gradient became non-finite"):
        u.forget(3)
    assert_unchanged(model, u, before)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_model_is_refused(dtype):
    model, X, y = mlp_problem()
    with pytest.raises(TypeError, match=rf"{dtype}.*float32 or float64.*model\.float\(\)"):
        Unlearner(model.to(dtype), nn.CrossEntropyLoss(), (X.to(dtype), y))


# --- 7: only integer indices and labels -----------------------------------------------

def small_unlearner():
    model, X, y = mlp_problem(n=30)
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, y), weight_decay=1e-2,
                  selection="gradient", max_slices=1, random_state=0)
    return model, y, u


@pytest.mark.parametrize("bad, error", [
    (2.0, TypeError), (None, TypeError), ({1: 2}, TypeError), ({1, 2}, TypeError),
    ("12", TypeError), (True, TypeError), ([1, 2.0], TypeError), ([True], TypeError),
    ([None], TypeError), (np.array([1.0, 2.0]), TypeError), (np.array([True]), TypeError),
    (torch.tensor([1.0]), TypeError), (torch.tensor([True]), TypeError),
    (np.array([[1, 2]]), ValueError), (torch.tensor([[1, 2]]), ValueError),
], ids=repr)
def test_forget_refuses_what_is_not_integer_indices(bad, error):
    model, _, u = small_unlearner()
    before = snapshot(model, u)
    with pytest.raises(error, match="indices"):
        u.forget(bad)
    assert_unchanged(model, u, before)


@pytest.mark.parametrize("good", [
    3, np.int64(3), [3, 4], (3, 4), range(3, 5), np.array([3, 4]),
    np.array([3, 4], dtype=np.int32), torch.tensor([3, 4]), torch.tensor(3),
], ids=repr)
def test_forget_takes_integer_indices(good):
    _, _, u = small_unlearner()
    report = u.forget(good)
    expected = [3] if np.ndim(good) == 0 else [3, 4]
    assert report.indices == expected and u.removed == expected
    assert all(type(i) is int for i in u.removed)


@pytest.mark.parametrize("bad", [None, "1", [1], 1.0, True, torch.tensor([1])], ids=repr)
def test_forget_class_refuses_what_is_not_an_integer_label(bad):
    model, _, u = small_unlearner()
    before = snapshot(model, u)
    with pytest.raises(TypeError, match="label must be an integer"):
        u.forget_class(bad)
    assert_unchanged(model, u, before)


def test_forget_class_needs_one_label_per_sample():
    model, X, y = mlp_problem(n=30)
    one_hot = nn.functional.one_hot(y, 2).double()      # class 1 is column 1, not 0
    u = Unlearner(model, nn.CrossEntropyLoss(), (X, one_hot), weight_decay=1e-2,
                  selection="gradient", max_slices=1, random_state=0)
    with pytest.raises(ValueError, match="one class label per sample"):
        u.forget_class(1)
    assert u.removed == []


@pytest.mark.parametrize("label", [1, np.int64(1), torch.tensor(1)], ids=repr)
def test_forget_class_takes_an_integer_label(label):
    _, y, u = small_unlearner()
    assert u.forget_class(label).indices == torch.nonzero(y == 1)[:, 0].tolist()


# --- 7: the metrics and baselines restore every module's own mode too ------------------

LOSS = nn.CrossEntropyLoss()
RECIPE = {"epochs": 1, "batch_size": 64, "random_state": 0}
REMOVED = [3, 4, 5]


def splits(X, y):
    """Forget, retain and test sets."""
    return (X[:20], y[:20]), (X[20:44], y[20:44]), (X[44:], y[44:])


MODE_CALLS = {
    "accuracy": lambda model, X, y: metrics.accuracy(model, (X, y)),
    "mia_efficacy": lambda model, X, y: metrics.mia_efficacy(model, *splits(X, y)),
    "simple_mia": lambda model, X, y: metrics.simple_mia(
        model, splits(X, y)[0], splits(X, y)[2], random_state=0),
    "evaluate": lambda model, X, y: metrics.evaluate(model, *splits(X, y)),
    "train": lambda model, X, y: baselines.train(model, LOSS, (X, y), optimizer="sgd",
                                                 **RECIPE),
    "train-lbfgs": lambda model, X, y: baselines.train(
        model, LOSS, (X, y), optimizer="lbfgs", max_iter=2, tol=1e3),
    "retrain": lambda model, X, y: baselines.retrain(lambda: model, LOSS, (X, y), REMOVED,
                                                     optimizer="sgd", **RECIPE),
    "fine_tune": lambda model, X, y: baselines.fine_tune(model, LOSS, (X, y), REMOVED,
                                                         **RECIPE),
    "neg_grad": lambda model, X, y: baselines.neg_grad(model, LOSS, (X, y), REMOVED,
                                                       **RECIPE),
    "neg_grad+": lambda model, X, y: baselines.neg_grad(model, LOSS, (X, y), REMOVED,
                                                        retain_weight=0.5, **RECIPE),
    "full_newton": lambda model, X, y: baselines.full_newton(
        model, LOSS, (X, y), REMOVED, weight_decay=1e-2, random_state=0),
}


@pytest.mark.parametrize("call", MODE_CALLS.values(), ids=MODE_CALLS.keys())
def test_metrics_and_baselines_keep_each_module_mode(call):
    model, X, y = batchnorm_model()
    model[1].eval()                          # a frozen BatchNorm in a training model
    before = modes(model)
    result = call(model, X, y)
    assert modes(model) == before            # the model given (or built, for retrain)
    if isinstance(result, nn.Module):        # and the model returned
        assert modes(result) == before
