"""Spurious-feature regularization on digits with shortcut patches, end to end.

Run ``python benchmarks/bench_spurious.py`` (``--seeds 2`` for a quicker run); it
needs torch and uses scikit-learn's bundled ``load_digits`` (no download).

Data. Each 8x8 digit (pixels / 16) is padded to 12x12; each of 8 binary attributes
owns a 2x2 patch in the border, bright when the attribute is 1, so a network can
read every attribute from its input. Attributes 0-2 are spurious: in training (and
validation) they follow a rule of the label with probability 0.9 (label >= 5,
label odd, label in {0, 3, 6, 9}) and are flipped otherwise; attributes 3-7 are
label-independent coin flips. At test time every test image is shown with each of
the 8 combinations of the spurious attributes (nuisance attributes random), so the
attributes are independent of the label; a group is (label, spurious combination),
80 groups of about 50 images.

Arms, each a small MLP (144-64-32-10) trained with the same loop and budget by
:func:`chatterjee.regularize.train_with_adversaries`: no regularization;
adversarial heads on all 8 attributes; on a random subset of the size of the L-FOCI
set; on the L-FOCI set (:func:`select_spurious_attributes` on the training
attributes and labels); and, for reference, the L-FOCI set with the paper's plain
gradient reversal, and the plain network trained on the same images with
attributes independent of the label (no shortcut to learn: what the arms could
reach). The adversarial weight is tuned per arm and seed on a
validation split from the training distribution: the criterion is the worst, over
all 8 attributes, of the accuracy balanced over (label, attribute value) groups,
which needs no knowledge of which attributes are spurious. The test set is not
used for any choice.
"""

import argparse
import itertools
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from chatterjee.regularize import select_spurious_attributes, train_with_adversaries

N_ATTRIBUTES = 8
SPURIOUS = (0, 1, 2)
RULES = (lambda y: y >= 5, lambda y: y % 2 == 1, lambda y: np.isin(y, [0, 3, 6, 9]))
PATCHES = ((0, 0), (0, 10), (10, 0), (10, 10), (0, 4), (10, 6), (4, 0), (6, 10))
N_TRAIN, N_VALIDATION = 1000, 300
ALPHAS = (1.0, 3.0, 10.0)


def draw_attributes(labels, agreement, rng):
    """Spurious attributes follow their rule with probability ``agreement``."""
    spurious = [rule(labels) ^ (rng.random(len(labels)) >= agreement) for rule in RULES]
    nuisance = rng.random((len(labels), N_ATTRIBUTES - len(RULES))) < 0.5
    return np.column_stack(spurious + [nuisance]).astype(np.int64)


def render(images, attributes):
    """Pad the digits to 12x12 and paint each attribute's 2x2 border patch."""
    canvas = np.zeros((len(images), 12, 12))
    canvas[:, 2:10, 2:10] = images
    for k, (row, col) in enumerate(PATCHES):
        canvas[:, row:row + 2, col:col + 2] = attributes[:, k, None, None]
    return torch.tensor(canvas.reshape(len(images), -1), dtype=torch.float32)


def make_split(seed):
    digits = load_digits()
    images, labels = digits.images / 16.0, digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    train, validation = order[:N_TRAIN], order[N_TRAIN:N_TRAIN + N_VALIDATION]
    test = order[N_TRAIN + N_VALIDATION:]
    split = {}
    for name, rows in (("train", train), ("validation", validation)):
        attributes = draw_attributes(labels[rows], 0.9, rng)
        split[name] = (render(images[rows], attributes), labels[rows], attributes)
    copies = []
    for combination in itertools.product((0, 1), repeat=len(SPURIOUS)):
        attributes = draw_attributes(labels[test], 0.5, rng)
        attributes[:, list(SPURIOUS)] = combination
        copies.append((render(images[test], attributes), labels[test], attributes))
    split["test"] = copies
    split["test_images"] = images[test]
    return split


def without_shortcut(split, seed):
    """The same split with training attributes redrawn independent of the label."""
    images = split["train"][0].reshape(-1, 12, 12)[:, 2:10, 2:10].numpy()
    labels = split["train"][1]
    attributes = draw_attributes(labels, 0.5, np.random.default_rng([seed, 2]))
    return {**split, "train": (render(images, attributes), labels, attributes)}


def make_network(seed):
    torch.manual_seed(seed)
    encoder = torch.nn.Sequential(torch.nn.Linear(144, 64), torch.nn.ReLU(),
                                  torch.nn.Linear(64, 32), torch.nn.ReLU())
    return encoder, torch.nn.Linear(32, 10)


def predict(encoder, classifier, x):
    with torch.no_grad():
        return classifier(encoder(x)).argmax(dim=1).numpy()


def validation_score(encoder, classifier, split):
    """Worst over attributes of the accuracy balanced over (label, value) groups."""
    x, labels, attributes = split["validation"]
    correct = predict(encoder, classifier, x) == labels
    scores = []
    for k in range(N_ATTRIBUTES):
        groups = [correct[(labels == y) & (attributes[:, k] == v)]
                  for y in range(10) for v in (0, 1)]
        scores.append(np.mean([g.mean() for g in groups if len(g)]))
    return min(scores)


def test_scores(encoder, classifier, split):
    """Overall and worst-group test accuracy, and how readable the attributes stay."""
    group_accuracy, correct_all = [], []
    for x, labels, _ in split["test"]:
        correct = predict(encoder, classifier, x) == labels
        correct_all.append(correct)
        group_accuracy += [correct[labels == y].mean() for y in range(10)]
    # Probe: a fresh logistic regression reads each spurious attribute from the
    # features of one test copy with independent attributes (0.5 = forgotten).
    labels = split["test"][0][1]
    probe_attributes = draw_attributes(labels, 0.5, np.random.default_rng(0))
    with torch.no_grad():
        features = encoder(render(split["test_images"], probe_attributes)).numpy()
    probe = np.mean([cross_val_score(LogisticRegression(max_iter=1000), features,
                                     probe_attributes[:, k], cv=3).mean()
                     for k in SPURIOUS])
    return np.mean(correct_all), min(group_accuracy), probe


def fit_arm(split, selected, seed, objective, epochs):
    """Train one arm for each adversarial weight; keep the best on validation."""
    x, labels, attributes = split["train"]
    alphas = ALPHAS if len(selected) else (0.0,)
    best = None
    for alpha in alphas:
        encoder, classifier = make_network(seed)
        train_with_adversaries(encoder, classifier, x, torch.tensor(labels),
                               torch.tensor(attributes), selected=selected,
                               objective=objective, max_alpha=alpha, epochs=epochs,
                               batch_size=128, random_state=seed)
        score = validation_score(encoder, classifier, split)
        if best is None or score > best[0]:
            best = (score, alpha, encoder, classifier)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(1)
    arms = ("none", "all attributes", "random subset", "L-FOCI set",
            "L-FOCI set, gradient reversal", "reference: no shortcut in training")
    results = {arm: [] for arm in arms}
    selections = []
    for seed in range(args.seeds):
        split = make_split(seed)
        _, labels, attributes = split["train"]
        start = time.perf_counter()
        chosen = select_spurious_attributes(attributes, labels, random_state=seed)
        selections.append((chosen.tolist(), time.perf_counter() - start))
        rng = np.random.default_rng([seed, 1])
        random_subset = np.sort(rng.choice(N_ATTRIBUTES, size=len(chosen), replace=False))
        settings = {
            "none": ((), "confusion"),
            "all attributes": (range(N_ATTRIBUTES), "confusion"),
            "random subset": (random_subset, "confusion"),
            "L-FOCI set": (chosen, "confusion"),
            "L-FOCI set, gradient reversal": (chosen, "reversal"),
            "reference: no shortcut in training": ((), "confusion"),
        }
        for arm, (selected, objective) in settings.items():
            start = time.perf_counter()
            data = without_shortcut(split, seed) if arm.startswith("reference") else split
            _, alpha, encoder, classifier = fit_arm(data, list(selected), seed,
                                                    objective, args.epochs)
            elapsed = time.perf_counter() - start
            results[arm].append((*test_scores(encoder, classifier, split), alpha, elapsed))
            print(f"  seed {seed}, {arm}: test {results[arm][-1][0]:.3f}, worst group "
                  f"{results[arm][-1][1]:.3f}, weight {alpha:g}", flush=True)
        print(f"seed {seed}: L-FOCI chose {chosen.tolist()}, random subset "
              f"{random_subset.tolist()}", flush=True)

    print(f"\n{args.seeds} seeds, {args.epochs} epochs; mean ± std over seeds\n")
    print("| arm | test accuracy | worst-group accuracy | attribute probe | "
          "chosen weight (per seed) | time per arm (s) |")
    print("|---|---|---|---|---|---|")
    for arm in arms:
        values = np.array(results[arm])
        cells = [f"{values[:, j].mean():.3f} ± {values[:, j].std():.3f}" for j in range(3)]
        alphas = ", ".join(f"{a:g}" for a in values[:, 3])
        print(f"| {arm} | {' | '.join(cells)} | {alphas} | {values[:, 4].mean():.1f} |")
    print(f"\nL-FOCI selection, truth {sorted(SPURIOUS)}")
    describe("chosen", [chosen for chosen, _ in selections])
    print(f"    {np.mean([t for _, t in selections]):.2f} s per selection")


def describe(name, selections):
    truth = set(SPURIOUS)
    exact = sum(set(chosen) == truth for chosen in selections)
    found = np.mean([len(truth & set(chosen)) / len(truth) for chosen in selections])
    extra = np.mean([len(set(chosen) - truth) for chosen in selections])
    print(f"  {name}: " + "; ".join(str(chosen) for chosen in selections))
    print(f"    exactly right {exact}/{len(selections)}, share of spurious found "
          f"{found:.2f}, nuisance attributes picked {extra:.1f} per run")


if __name__ == "__main__":
    main()
