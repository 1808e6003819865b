"""Reference training and the retrain / fine-tune / NegGrad(+) / SCRUB / SSD / SalUn
baselines."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from chatterjee.unlearn.baselines import (fine_tune, neg_grad, neg_grad_plus, retrain,
                                          salun, scrub, ssd, train)
from chatterjee.unlearn.metrics import accuracy, parameter_distance

CE = torch.nn.CrossEntropyLoss()
WEIGHT_DECAY = 1e-3


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    inputs, targets = load_digits(return_X_y=True)
    return torch.tensor(inputs / 16), torch.tensor(targets)


@pytest.fixture(scope="module")
def small(digits):
    inputs, targets = digits
    return inputs[:300], targets[:300]


def logistic():
    return torch.nn.Linear(64, 10).double()


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(16, 10)).double()


def objective_gradient_norm(model, data, weight_decay):
    inputs, targets = data
    params = list(model.parameters())
    value = CE(model(inputs), targets) + weight_decay / 2 * sum((p ** 2).sum() for p in params)
    grads = torch.autograd.grad(value, params)
    return torch.cat([g.reshape(-1) for g in grads]).norm().item()


@pytest.fixture(scope="module")
def trained(small):
    torch.manual_seed(0)
    return train(logistic(), CE, small, weight_decay=WEIGHT_DECAY, optimizer="lbfgs")


def state(model):
    return {key: value.clone() for key, value in model.state_dict().items()}


def assert_same_state(before, model):
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_lbfgs_reaches_the_exact_optimum_of_logistic_regression(digits):
    inputs, targets = digits
    n = len(targets)
    torch.manual_seed(0)
    model = train(logistic(), CE, digits, weight_decay=WEIGHT_DECAY, optimizer="lbfgs",
                  tol=1e-11)
    assert objective_gradient_norm(model, digits, WEIGHT_DECAY) < 1e-10
    # sklearn penalises the intercept too when it is a constant feature
    augmented = np.hstack([inputs.numpy(), np.ones((n, 1))])
    reference = LogisticRegression(C=1 / (n * WEIGHT_DECAY), fit_intercept=False, tol=1e-10,
                                   max_iter=10_000).fit(augmented, targets.numpy())
    ours = torch.cat([model.weight, model.bias[:, None]], dim=1).detach().numpy()
    np.testing.assert_allclose(ours, reference.coef_, atol=2e-5)


def test_lbfgs_warns_when_the_tolerance_is_not_reached(small):
    with pytest.warns(RuntimeWarning, match="gradient norm"):
        train(logistic(), CE, small, weight_decay=WEIGHT_DECAY, optimizer="lbfgs",
              max_iter=1)


def test_minibatch_training_learns_and_restores_the_training_flag(small):
    model = mlp().eval()
    train(model, CE, small, epochs=30, lr=1e-2, random_state=0)
    assert not model.training
    assert accuracy(model, small) > 0.9
    sgd = train(logistic(), CE, small, optimizer="sgd", lr=0.1, epochs=10, random_state=0)
    assert accuracy(sgd, small) > 0.9


class SpyDataset(torch.utils.data.Dataset):
    def __init__(self, data):
        self.data, self.seen = data, set()

    def __len__(self):
        return len(self.data[1])

    def __getitem__(self, index):
        self.seen.add(index)
        return self.data[0][index], self.data[1][index]


def test_retrain_never_reads_removed_samples(small):
    spy = SpyDataset(small)
    removed = [3, 17, 150, 299]
    model = retrain(logistic, CE, spy, removed, epochs=2, random_state=0)
    assert spy.seen == set(range(300)) - set(removed)
    assert isinstance(model, torch.nn.Linear)


def test_retrain_equals_training_on_the_retained_subset(small, trained):
    inputs, targets = small
    removed = torch.tensor([0, 5, 77, 200])
    keep = np.setdiff1d(np.arange(300), removed.numpy())
    retrained = retrain(logistic, CE, small, removed, weight_decay=WEIGHT_DECAY,
                        optimizer="lbfgs", random_state=1)
    direct = train(logistic(), CE, (inputs[keep], targets[keep]), weight_decay=WEIGHT_DECAY,
                   optimizer="lbfgs", random_state=2)
    # both optima within tol / weight_decay = 1e-7 of the exact one
    assert parameter_distance(retrained, direct) < 2e-7
    assert parameter_distance(retrained, trained) > 1e-3


def test_seeded_runs_are_reproducible_and_leave_global_rng_alone(small, trained):
    global_state = torch.get_rng_state()
    first = retrain(mlp, CE, small, [1, 2, 3], epochs=2, random_state=5)
    second = retrain(mlp, CE, small, [1, 2, 3], epochs=2, random_state=5)
    other = retrain(mlp, CE, small, [1, 2, 3], epochs=2, random_state=6)
    assert parameter_distance(first, second) == 0
    assert parameter_distance(first, other) > 0
    generator_seeded = retrain(mlp, CE, small, [1, 2, 3], epochs=2,
                               random_state=np.random.default_rng(5))
    assert parameter_distance(first, generator_seeded) == 0
    for method in (fine_tune, neg_grad):
        a = method(trained, CE, small, [4, 8], epochs=1, random_state=3)
        b = method(trained, CE, small, [4, 8], epochs=1, random_state=3)
        assert parameter_distance(a, b) == 0
    assert torch.equal(global_state, torch.get_rng_state())


@pytest.mark.parametrize("method, kwargs", [
    (fine_tune, {"epochs": 1}),
    (fine_tune, {"epochs": 1, "optimizer": "adam", "weight_decay": 1e-3}),
    (neg_grad, {"epochs": 1}),
    (neg_grad, {"epochs": 1, "retain_weight": 0.5}),
])
def test_baselines_return_a_new_model_and_leave_the_input_untouched(small, trained,
                                                                    method, kwargs):
    before = state(trained)
    trained.train()
    unlearned = method(trained, CE, small, [0, 10, 20], random_state=0, **kwargs)
    assert unlearned is not trained
    assert trained.training and unlearned.training
    assert_same_state(before, trained)
    assert parameter_distance(unlearned, trained) > 0


def forget_loss(model, data, indices):
    with torch.no_grad():
        return CE(model(data[0][indices]), data[1][indices]).item()


def test_neg_grad_raises_forget_loss_and_neg_grad_plus_keeps_utility(small, trained):
    forget = list(range(30))
    retain = (small[0][30:], small[1][30:])
    ascent = neg_grad(trained, CE, small, forget, epochs=20, lr=0.1, random_state=0)
    plus = neg_grad(trained, CE, small, forget, epochs=10, lr=0.1, retain_weight=0.8,
                    random_state=0)
    original_loss = forget_loss(trained, small, forget)
    assert forget_loss(ascent, small, forget) > 10 * original_loss
    assert forget_loss(plus, small, forget) > 1.5 * original_loss
    assert accuracy(ascent, retain) < 0.8
    assert accuracy(plus, retain) > 0.95


def test_fine_tune_trains_on_retained_samples_only(small, trained):
    spy = SpyDataset(small)
    fine_tune(trained, CE, spy, [7, 9], epochs=1, random_state=0)
    assert spy.seen == set(range(300)) - {7, 9}


@pytest.mark.parametrize("removed, error, match", [
    ([0, 300], ValueError, r"\[0, 300\)"),
    ([-1], ValueError, r"\[0, 300\)"),
    ([4, 5, 4], ValueError, "duplicate"),
    (list(range(300)), ValueError, "every training sample"),
    ([], ValueError, "nothing to remove"),
    ([1.0, 2.0], TypeError, "integer"),
])
@pytest.mark.parametrize("method", ["retrain", "fine_tune", "neg_grad", "neg_grad_plus",
                                    "scrub", "ssd", "salun"])
def test_bad_removed_indices(small, trained, method, removed, error, match):
    call = {
        "retrain": lambda: retrain(logistic, CE, small, removed, epochs=1),
        "fine_tune": lambda: fine_tune(trained, CE, small, removed, epochs=1),
        "neg_grad": lambda: neg_grad(trained, CE, small, removed, epochs=1),
        "neg_grad_plus": lambda: neg_grad_plus(trained, CE, small, removed, epochs=1),
        "scrub": lambda: scrub(trained, CE, small, removed, epochs=1),
        "ssd": lambda: ssd(trained, CE, small, removed),
        "salun": lambda: salun(trained, CE, small, removed, epochs=1),
    }[method]
    with pytest.raises(error, match=match):
        call()


def test_bad_options(small, trained):
    with pytest.raises(ValueError, match="optimizer"):
        train(logistic(), CE, small, optimizer="rmsprop")
    with pytest.raises(ValueError, match="optimizer"):
        fine_tune(trained, CE, small, [0], optimizer="lbfgs")
    with pytest.raises(ValueError, match="retain_weight"):
        neg_grad(trained, CE, small, [0], retain_weight=1.5)
    with pytest.raises(TypeError, match="unexpected training keywords"):
        retrain(logistic, CE, small, [0], learning_rate=0.1)


# --- SCRUB, SSD, SalUn and NegGrad+ with the papers' defaults --------------------------

FORGET = list(range(30))


def memorizing_mlp():
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10)).double()


@pytest.fixture(scope="module")
def net(small):
    """An MLP that fits its 300 training digits (forget loss near 0)."""
    torch.manual_seed(0)
    return train(memorizing_mlp(), CE, small, epochs=40, lr=1e-2, random_state=0)


def retain_set(data):
    return data[0][len(FORGET):], data[1][len(FORGET):]


# Each method at its defaults, with fewer passes where the defaults take many.
NEW_METHODS = {
    "scrub": (scrub, {}),
    "ssd": (ssd, {}),
    "salun": (salun, {"epochs": 2}),
    "neg_grad_plus": (neg_grad_plus, {"epochs": 2}),
}


@pytest.mark.parametrize("name", NEW_METHODS)
def test_new_baselines_run_at_their_defaults_reproducibly(small, name):
    method, kwargs = NEW_METHODS[name]
    torch.manual_seed(0)
    model = mlp()                                     # dropout: the torch seed matters
    model[0].weight.data *= 5                         # a forget set with some gradient
    before = state(model)
    global_state = torch.get_rng_state()
    first = method(model, CE, small, FORGET, random_state=3, **kwargs)
    second = method(model, CE, small, FORGET, random_state=np.random.default_rng(3),
                    **kwargs)
    other = method(model, CE, small, FORGET, random_state=4, **kwargs)
    assert first is not model and type(first) is type(model)
    assert_same_state(before, model)
    assert torch.equal(global_state, torch.get_rng_state())
    assert parameter_distance(first, second) == 0
    assert parameter_distance(first, model) > 0
    if name == "ssd":                                 # deterministic: no training
        assert parameter_distance(first, other) == 0
    else:
        assert parameter_distance(first, other) > 0


@pytest.mark.parametrize("name", NEW_METHODS)
def test_new_baselines_restore_each_module_mode(name):
    method, kwargs = NEW_METHODS[name]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 3))
    inputs, targets = torch.randn(70, 5), torch.randint(0, 3, (70,))
    model(inputs)                                     # running statistics with values
    model[1].eval()                                   # frozen, in a training model
    modes = [module.training for module in model.modules()]
    result = method(model, CE, (inputs, targets), [0, 1, 2], random_state=0, **kwargs)
    assert [module.training for module in model.modules()] == modes
    assert [module.training for module in result.modules()] == modes


def test_scrub_raises_forget_loss_and_keeps_retain_accuracy(small, net):
    unlearned = scrub(net, CE, small, FORGET, lr=0.05, epochs=5, max_epochs=4,
                      batch_size=32, forget_batch_size=16, random_state=0)
    assert forget_loss(unlearned, small, FORGET) > 5 * forget_loss(net, small, FORGET)
    assert accuracy(unlearned, retain_set(small)) > 0.95
    # without max-steps SCRUB only distils the teacher on the retain set
    distilled = scrub(net, CE, small, FORGET, lr=0.05, epochs=5, max_epochs=0,
                      batch_size=32, random_state=0)
    assert forget_loss(distilled, small, FORGET) < forget_loss(unlearned, small, FORGET)


def squared_batch_gradients(model, data, indices, batch_size=128):
    """SSD's importance, written out: mean over batches of the squared batch gradient."""
    params = list(model.parameters())
    totals = [torch.zeros_like(p) for p in params]
    batches = [indices[start:start + batch_size]
               for start in range(0, len(indices), batch_size)]
    for batch in batches:
        loss = CE(model(data[0][batch]), data[1][batch])
        for total, grad in zip(totals, torch.autograd.grad(loss, params)):
            total += grad ** 2
    return [total / len(batches) for total in totals]


def test_ssd_dampens_only_parameters_more_important_to_the_forget_set(small, net):
    alpha, lam = 10.0, 1.0
    dampened = ssd(net, CE, small, FORGET, selection_weighting=alpha,
                   dampening_constant=lam)
    full = squared_batch_gradients(net, small, list(range(300)))
    forgotten = squared_batch_gradients(net, small, FORGET)
    n_selected = 0
    for before, after, i_d, i_f in zip(net.parameters(), dampened.parameters(), full,
                                       forgotten):
        selected = i_f > alpha * i_d
        n_selected += int(selected.sum())
        assert torch.equal(after[~selected], before[~selected])     # bit for bit
        beta = lam * i_d[selected] / i_f[selected]
        assert (beta < 1).all()                                      # alpha > lam
        torch.testing.assert_close(after[selected], before[selected] * beta)
    assert 0 < n_selected < sum(p.numel() for p in net.parameters()) / 2
    assert forget_loss(dampened, small, FORGET) > 5 * forget_loss(net, small, FORGET)
    assert accuracy(dampened, retain_set(small)) > 0.7
    # a stricter selection dampens fewer parameters and keeps more accuracy
    strict = ssd(net, CE, small, FORGET, selection_weighting=50.0)
    assert accuracy(strict, retain_set(small)) > 0.9
    assert parameter_distance(strict, net) < parameter_distance(dampened, net)


def test_salun_updates_only_the_salient_half_and_forgets(small, net):
    unlearned = salun(net, CE, small, FORGET, lr=0.05, batch_size=16, random_state=0)
    params = list(net.parameters())
    # saliency: |sum over the forget batches (16 + 14 samples) of the batch gradients|
    forget_loss_sum = sum(CE(net(small[0][batch]), small[1][batch])
                          for batch in (FORGET[:16], FORGET[16:]))
    saliency = torch.cat([g.abs().reshape(-1)
                          for g in torch.autograd.grad(forget_loss_sum, params)])
    changed = torch.cat([(a != b).reshape(-1)
                         for a, b in zip(unlearned.parameters(), params)])
    assert 0.45 * changed.numel() < changed.sum() <= changed.numel() // 2
    assert saliency[changed].min() >= saliency.median()
    assert forget_loss(unlearned, small, FORGET) > 10 * forget_loss(net, small, FORGET)
    assert accuracy(unlearned, retain_set(small)) > 0.95
    everything = salun(net, CE, small, FORGET, lr=0.05, batch_size=16, mask_ratio=1.0,
                       epochs=1, random_state=0)
    moved = torch.cat([(a != b).reshape(-1)
                       for a, b in zip(everything.parameters(), params)])
    assert moved.float().mean() > 0.9


def test_neg_grad_plus_is_neg_grad_with_the_papers_defaults(small, net):
    plus = neg_grad_plus(net, CE, small, FORGET, epochs=1, random_state=0)
    same = neg_grad(net, CE, small, FORGET, epochs=1, lr=0.01, retain_weight=0.9999,
                    batch_size=128, momentum=0.0, weight_decay=5e-4, random_state=0)
    assert parameter_distance(plus, same) == 0
    stronger = neg_grad_plus(net, CE, small, FORGET, retain_weight=0.8, lr=0.05,
                             batch_size=32, random_state=0)
    assert forget_loss(stronger, small, FORGET) > 2 * forget_loss(net, small, FORGET)
    assert accuracy(stronger, retain_set(small)) > 0.95


@pytest.mark.parametrize("method, kwargs, error, match", [
    (scrub, {"temperature": 0.0}, ValueError, "temperature"),
    (scrub, {"alpha": -1.0}, ValueError, "alpha"),
    (scrub, {"gamma": float("nan")}, ValueError, "gamma"),
    (scrub, {"max_epochs": -1}, ValueError, "max_epochs"),
    (scrub, {"epochs": 1.5}, TypeError, "epochs"),
    (scrub, {"forget_batch_size": 0}, ValueError, "forget_batch_size"),
    (scrub, {"optimizer": "lbfgs"}, ValueError, "optimizer"),
    (scrub, {"lr": "0.1"}, TypeError, "lr"),
    (ssd, {"selection_weighting": 0.0}, ValueError, "selection_weighting"),
    (ssd, {"dampening_constant": -1.0}, ValueError, "dampening_constant"),
    (ssd, {"batch_size": 0}, ValueError, "batch_size"),
    (ssd, {"random_state": -1}, ValueError, "random_state"),
    (salun, {"mask_ratio": 0.0}, ValueError, "mask_ratio"),
    (salun, {"mask_ratio": 1.5}, ValueError, "mask_ratio"),
    (salun, {"mask_ratio": 1e-9}, ValueError, "mask_ratio"),
    (salun, {"optimizer": "rmsprop"}, ValueError, "optimizer"),
    (salun, {"epochs": 0}, ValueError, "epochs"),
    (neg_grad_plus, {"retain_weight": 1.5}, ValueError, "retain_weight"),
])
def test_new_baselines_name_bad_arguments(small, net, method, kwargs, error, match):
    with pytest.raises(error, match=match):
        method(net, CE, small, FORGET, **kwargs)


def test_scrub_and_salun_need_classifier_outputs(small):
    regression = torch.nn.Linear(64, 1).double()
    targets = small[1].double()
    with pytest.raises(ValueError, match="logits"):
        scrub(torch.nn.Sequential(regression, torch.nn.Flatten(0)), torch.nn.MSELoss(),
              (small[0], targets), FORGET)
    with pytest.raises(TypeError, match="integer class labels"):
        salun(regression, torch.nn.MSELoss(), (small[0], targets[:, None]), FORGET)
