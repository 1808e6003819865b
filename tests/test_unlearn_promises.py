"""The Unlearner's promises: module modes restored, a failed call changes nothing,
only integer indices accepted."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn

import chatterjee.unlearn.unlearner as unlearner_module
from chatterjee.unlearn import Unlearner

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
