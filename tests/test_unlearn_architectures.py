"""The benchmark architectures at tiny widths through the Unlearner with its defaults:
a CIFAR-style ResNet-18 with BatchNorm, a nanoGPT-style byte-level decoder on the
standard library's own sources (a document removal), and the wide MLP."""

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
from torch import nn  # noqa: E402

from chatterjee.unlearn import Unlearner  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from unlearn_models import (  # noqa: E402
    ByteGPT,
    ResNet18,
    WideMLP,
    classification_loss,
    sequence_loss,
    stdlib_sequences,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def trained(model, loss_fn, X, y, steps=60, lr=0.01):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(X), y).backward()
        optimizer.step()
    return model.eval()


def buffers(model):
    return {name: b.clone() for name, b in model.named_buffers()}


def parameters(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_resnet_with_batchnorm_forgets_with_the_defaults():
    torch.manual_seed(0)
    X = torch.randn(96, 1, 8, 8)
    y = (X[:, 0, :4].mean((1, 2)) > 0).long() + 2 * (X[:, 0, 4:].mean((1, 2)) > 0).long()
    model = trained(ResNet18(width=2, n_classes=4), classification_loss, X, y)
    model.train()                                   # the caller's mode is kept
    statistics = buffers(model)
    u = Unlearner(model, classification_loss, (X, y), random_state=0)
    for removal in (lambda: u.forget(5), lambda: u.forget([1, 2, 3]),
                    lambda: u.forget_class(1)):
        before = parameters(model)
        report = removal()
        assert report.passes[0]["accepted"] and report.slices
        assert not torch.equal(parameters(model), before)
        assert report.removed_loss_after >= report.removed_loss_before - 1e-6
    assert model.training and all(m.training for m in model.modules())
    for name, value in buffers(model).items():     # BatchNorm statistics untouched
        assert torch.equal(value, statistics[name])
    assert u.n_retained == 96 - 4 - int((y == 1).sum() - (y[[1, 2, 3, 5]] == 1).sum())


def test_byte_decoder_forgets_a_document_of_the_standard_library():
    train, _, documents = stdlib_sequences(n_train=48, n_test=4, context=12,
                                           per_document=6, seed=0)
    torch.manual_seed(0)
    model = trained(ByteGPT(width=16, layers=1, heads=2, context=12), sequence_loss,
                    *train, steps=40)
    u = Unlearner(model, sequence_loss, train, random_state=0)
    assert u.curvature == "gauss_newton" and u.step_control == "subsample"
    report = u.forget(0)
    assert report.passes[0]["accepted"]
    path, sequences = max(documents, key=lambda document: len(document[1]))
    sequences = [i for i in sequences.tolist() if i != 0]
    report = u.forget(sequences)                    # a document: all its sequences
    assert report.passes[0]["accepted"] and report.slices
    assert report.removed_loss_after > report.removed_loss_before
    assert report.timings["product_samples"] > 0   # products through attention


def test_wide_mlp_forgets_within_its_block_cap():
    torch.manual_seed(0)
    X = torch.randn(64, 1, 32, 32)
    y = (X.flatten(1)[:, :10].sum(1) > 0).long()
    model = trained(WideMLP(width=32), classification_loss, X, y, steps=30)
    u = Unlearner(model, classification_loss, (X, y), random_state=0)
    report = u.forget([0, 1])
    assert report.passes[0]["accepted"] and report.n_parameters <= u.max_parameters
    assert isinstance(model.net[1], nn.Linear)
