"""Unlearning metrics: accuracies, membership inference, gaps to retraining."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chatterjee.unlearn.metrics import (
    accuracy,
    average_gap,
    evaluate,
    gap_closed,
    membership_scores,
    mia_efficacy,
    parameter_distance,
    simple_mia,
)

FEATURES = ("confidence", "loss", "entropy", "modified_entropy", "correctness")


pytestmark = pytest.mark.usefixtures("one_thread")


def echo_model(n_classes):
    """A classifier whose logits are its inputs."""
    model = torch.nn.Linear(n_classes, n_classes).double()
    model.weight.data = torch.eye(n_classes, dtype=torch.float64)
    model.bias.data = torch.zeros(n_classes, dtype=torch.float64)
    return model


def logits_data(n, *, member, seed, n_classes=4):
    """Logits like a memorising model's on its training samples (confident and right)
    or on unseen samples (noisy, often wrong), with their labels."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(n_classes, (n,), generator=gen)
    one_hot = torch.nn.functional.one_hot(labels, n_classes).double()
    if member:
        return 8.0 * one_hot + 0.1 * torch.randn(n, n_classes, generator=gen,
                                                 dtype=torch.float64), labels
    return 1.0 * one_hot + torch.randn(n, n_classes, generator=gen,
                                       dtype=torch.float64), labels


def test_accuracy_of_hand_built_model_in_every_data_form():
    model = echo_model(3)
    inputs = torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 1], [0, 2, 1], [5, 0, 0]]).double()
    targets = torch.tensor([0, 1, 1, 1, 2])
    assert accuracy(model, (inputs, targets)) == pytest.approx(0.6)
    dataset = torch.utils.data.TensorDataset(inputs, targets)
    assert accuracy(model, dataset) == pytest.approx(0.6)
    assert accuracy(model, torch.utils.data.DataLoader(dataset, batch_size=2)) == \
        pytest.approx(0.6)


def test_accuracy_restores_training_flag_and_binary_single_logit():
    model = torch.nn.Linear(1, 1).double()
    model.weight.data, model.bias.data = torch.ones(1, 1).double(), torch.zeros(1).double()
    model.train()
    inputs = torch.tensor([[-1.], [2.], [3.], [-4.]]).double()
    assert accuracy(model, (inputs, torch.tensor([0, 1, 0, 0]))) == pytest.approx(0.75)
    assert model.training
    model.eval()
    accuracy(model, (inputs, torch.tensor([0, 1, 0, 0])))
    assert not model.training


@pytest.mark.parametrize("features", FEATURES)
def test_mia_efficacy_tells_memorised_from_unseen(features):
    model = echo_model(4)
    retain = logits_data(200, member=True, seed=1)
    test = logits_data(200, member=False, seed=2)
    memorised = mia_efficacy(model, logits_data(100, member=True, seed=3), retain, test,
                             features=features)
    unseen = mia_efficacy(model, logits_data(100, member=False, seed=4), retain, test,
                          features=features)
    assert 0 <= memorised <= 0.05
    assert unseen >= 0.45
    assert unseen - memorised >= 0.4


def test_mia_efficacy_uses_first_test_size_retain_samples_as_shadow_members():
    model = echo_model(4)
    test = logits_data(100, member=False, seed=2)
    # Members first, then unseen-looking samples beyond the shadow set: they must not count.
    member_x, member_y = logits_data(100, member=True, seed=1)
    other_x, other_y = logits_data(300, member=False, seed=5)
    retain = (torch.cat([member_x, other_x]), torch.cat([member_y, other_y]))
    forget = logits_data(100, member=False, seed=4)
    assert mia_efficacy(model, forget, retain, test) == \
        mia_efficacy(model, forget, (member_x, member_y), test)


def test_mia_efficacy_bad_feature():
    model = echo_model(4)
    data = logits_data(10, member=True, seed=0)
    with pytest.raises(ValueError, match="features"):
        mia_efficacy(model, data, data, data, features="probability")


def test_simple_mia_memorised_near_one_unseen_near_half_and_seeded():
    model = echo_model(4)
    test = logits_data(200, member=False, seed=2)
    memorised = simple_mia(model, logits_data(300, member=True, seed=3), test, random_state=0)
    unseen = simple_mia(model, logits_data(300, member=False, seed=4), test, random_state=0)
    assert memorised >= 0.95
    assert 0.35 <= unseen <= 0.65
    forget = logits_data(300, member=False, seed=4)
    assert simple_mia(model, forget, test, random_state=7) == \
        simple_mia(model, forget, test, random_state=7)
    # the test set may be the larger one: it is subsampled instead
    assert simple_mia(model, logits_data(50, member=True, seed=3), test,
                      random_state=0) >= 0.9


def test_evaluate_matches_the_single_metrics_and_average_gap():
    model = echo_model(4)
    forget = logits_data(60, member=True, seed=3)
    retain = logits_data(150, member=True, seed=1)
    test = logits_data(100, member=False, seed=2)
    result = evaluate(model, forget, retain, test)
    assert result == {
        "forget_accuracy": accuracy(model, forget),
        "retain_accuracy": accuracy(model, retain),
        "test_accuracy": accuracy(model, test),
        "mia_efficacy": mia_efficacy(model, forget, retain, test),
    }
    assert all(0 <= value <= 1 for value in result.values())
    assert average_gap(result, dict(result)) == 0
    shifted = dict(result, test_accuracy=result["test_accuracy"] - 0.1,
                   mia_efficacy=result["mia_efficacy"] + 0.3)
    assert average_gap(shifted, result) == pytest.approx(10.0)
    with pytest.raises(KeyError, match="mia_efficacy"):
        average_gap({"forget_accuracy": 1.0}, result)


def test_parameter_distance_and_architecture_check():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = np.sqrt(sum(((pa - pb) ** 2).sum().item()
                           for pa, pb in zip(a.parameters(), b.parameters())))
    assert parameter_distance(a, b) == pytest.approx(expected)
    assert parameter_distance(a, a) == 0
    with pytest.raises(ValueError, match="shape"):
        parameter_distance(a, torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="different parameters"):
        parameter_distance(a, torch.nn.Linear(3, 2, bias=False))


def test_gap_closed_extremes_models_and_vectors():
    torch.manual_seed(0)
    original, retrained, other = (torch.nn.Linear(3, 2) for _ in range(3))
    assert gap_closed(original, retrained, retrained) == pytest.approx(1.0)
    assert gap_closed(original, original, retrained) == pytest.approx(0.0)
    flat = torch.nn.utils.parameters_to_vector
    assert gap_closed(flat(original.parameters()), other, flat(retrained.parameters())) == \
        pytest.approx(gap_closed(original, other, retrained))
    halfway = 0.5 * (flat(original.parameters()) + flat(retrained.parameters()))
    assert gap_closed(original, halfway, retrained) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no gap"):
        gap_closed(original, other, original)
    with pytest.raises(ValueError, match="same architecture"):
        gap_closed(original, torch.nn.Linear(4, 2), retrained)
    with pytest.raises(TypeError, match="unlearned"):
        gap_closed(original, [1.0], retrained)


def shifted_echo(shift):
    """An echo model whose logits are its inputs plus ``shift``."""
    model = echo_model(len(shift))
    model.bias.data = torch.as_tensor(shift, dtype=torch.float64)
    return model


def test_membership_scores_equal_the_likelihood_ratio_formula():
    logits, labels = logits_data(30, member=False, seed=3)
    rng = np.random.default_rng(0)
    references = [shifted_echo(rng.normal(size=4)) for _ in range(5)]
    model = shifted_echo(rng.normal(size=4))
    scores = membership_scores(model, (logits, labels), references)

    def phi(shift):      # from the probabilities, another route than the code's
        p = torch.softmax(logits + torch.as_tensor(shift), 1).numpy()
        p_true = p[np.arange(len(labels)), labels.numpy()]
        return np.log(p_true) - np.log(p.sum(1) - p_true)
    values = np.stack([phi(r.bias.data) for r in references])
    sd = np.sqrt(np.mean(values.var(axis=0, ddof=1)))
    np.testing.assert_allclose(scores, (phi(model.bias.data) - values.mean(0)) / sd,
                               rtol=1e-9, atol=1e-9)


def test_membership_scores_flag_the_training_samples_of_a_memorising_model():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(80, 30, generator=gen, dtype=torch.float64)
    y = torch.randint(3, (80,), generator=gen)          # labels are noise: memorised

    def trained(rows, seed):
        torch.manual_seed(seed)
        model = torch.nn.Linear(30, 3).double()
        opt = torch.optim.LBFGS(model.parameters(), max_iter=200,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X[rows]), y[rows]) + 1e-3 * (
                model.weight ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        return model
    forget, rest = torch.arange(20), torch.arange(20, 80)
    # references see half of the other samples each, as shadow models do
    references = [trained(rest[torch.randperm(60, generator=gen)[:40]], seed)
                  for seed in range(6)]
    held_out = trained(rest[torch.randperm(60, generator=gen)[:40]], 99)
    member = trained(torch.arange(80), 0)
    forget_set = (X[forget], y[forget])
    member_score = membership_scores(member, forget_set, references).mean()
    held_out_score = membership_scores(held_out, forget_set, references).mean()
    assert abs(held_out_score) < 1 and member_score > held_out_score + 1.5


def test_membership_scores_need_references_with_a_spread():
    logits, labels = logits_data(10, member=False, seed=1)
    with pytest.raises(ValueError, match="at least 2"):
        membership_scores(echo_model(4), (logits, labels), [echo_model(4)])
    with pytest.raises(ValueError, match="spread is 0"):
        membership_scores(echo_model(4), (logits, labels), [echo_model(4), echo_model(4)])
