"""Reference training and the retrain / fine-tune / NegGrad(+) baselines."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from chatterjee.unlearn.baselines import fine_tune, neg_grad, retrain, train
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
@pytest.mark.parametrize("method", ["retrain", "fine_tune", "neg_grad"])
def test_bad_removed_indices(small, trained, method, removed, error, match):
    call = {
        "retrain": lambda: retrain(logistic, CE, small, removed, epochs=1),
        "fine_tune": lambda: fine_tune(trained, CE, small, removed, epochs=1),
        "neg_grad": lambda: neg_grad(trained, CE, small, removed, epochs=1),
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
