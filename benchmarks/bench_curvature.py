"""Curvature libraries measured against the unlearner's cost model.

:class:`chatterjee.unlearn.curvature.BlockObjective` computes Gauss-Newton-vector
products of the retained objective over a parameter block, and
:class:`chatterjee.unlearn.kfac.KroneckerFactors` the K-FAC factors ``A`` (inputs) and
``G`` (output gradients) of every sliced layer (Linear on inputs of any rank, Conv1d,
Conv2d). This benchmark measures them against ``curvlinops-for-pytorch``
(``import curvlinops``) and ``nngeometry``. A library that is not installed is skipped
with a message.

The cost model the unlearner must obey:

(a) curvature products are matrix-free and their cost does not grow with the number of
    model outputs: for softmax cross-entropy, one jvp and one vjp through the network,
    ``J^T (diag(p) - p p^T) J v``, on a bounded curvature subsample;
(b) per-layer factors (K-FAC / EK-FAC) are computed once and reused, their
    eigendecompositions cached;
(c) no dense matrix with a dimension of the parameter count times more than a small
    constant; directions in float32;
(d) the peak extra memory of a call is at most 4x the block's parameter bytes + 1 GiB.

Parts
-----
accuracy
    A small float64 MLP, a CNN (Conv2d + BatchNorm2d in eval mode with random running
    statistics, one residual block) and a nanoGPT-style decoder (token and position
    embeddings, q/k/v projections on (batch, sequence, features) inputs,
    ``F.scaled_dot_product_attention``, LayerNorm, cross-entropy over every position).
    The explicit Gauss-Newton matrix ``sum_i J_i^T H_i J_i`` is assembled from per-sample
    Jacobians (``torch.func.jacrev``); every GGN product (the torch.func reference, the
    unlearner's own ``BlockObjective``, curvlinops, nngeometry) is compared with it on
    three blocks: all parameters, one layer (a list of parameters) and some output units
    of that layer. K-FAC / EK-FAC (the unlearner's ``kron(G, A)`` per layer included) are
    compared with the exact layer-diagonal blocks over the Linear and Conv2d parameters,
    on one sample (where K-FAC of an MLP is exact) and on the batch. Also: float32 runs,
    and what fails (with the error message).
outputs
    Seconds per GGN product and per factor build of an MLP as its number of classes
    grows (rule (a)).
cost
    Mid-size float32 models (an MLP, a nanoGPT-style decoder): CPU and wall seconds per
    product and per factor build (median of 5 after a warm-up call;
    ``time.process_time`` counts all threads), the stored factors' bytes, and the peak
    extra resident memory of one call (factor build + one product). Each method runs in
    a fresh subprocess; before the measured call glibc is told to return freed memory
    (fixed mmap threshold, heap trimmed), the kernel's peak-RSS mark is reset
    (``/proc/self/clear_refs``), and ``VmHWM`` minus the RSS before the call is the peak:
    it covers every allocation (tensors, autograd graphs, allocator slack), which a
    count of tensors would not.

The unlearner's products and factors run as the Unlearner runs them: the batch split
so that a product's activations (with their tangents) fit ``ACTIVATION_BUDGET``.

Run ``python benchmarks/bench_curvature.py`` (about 7 minutes on a 2-core CPU) or
``--quick`` (smaller mid-size models, 3 repeats: under 2 minutes); ``--parts`` picks
parts; ``--threads 1`` gives steadier timings on a shared machine (with several
threads, every parallel region waits for a thread another process holds back). The
decoder's products run under ``sdpa_kernel(SDPBackend.MATH)``: the fused CPU attention
kernel has no forward-mode derivative (the accuracy part shows the failure of the
reference and of curvlinops without it; the unlearner forces the math backend itself).
"""

import argparse
import contextlib
import copy
import ctypes
import ctypes.util
import gc
import importlib.util
import itertools
import json
import re
import statistics
import subprocess
import sys
import time
import warnings
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.data import DataLoader, TensorDataset
from unlearn_models import CausalSelfAttention

HAVE = {name: importlib.util.find_spec(module) is not None
        for name, module in [("curvlinops", "curvlinops"), ("nngeometry", "nngeometry"),
                             ("chatterjee", "chatterjee")]}
if HAVE["chatterjee"]:
    try:
        from chatterjee.unlearn._data import TrainingData
        from chatterjee.unlearn.curvature import (
            ACTIVATION_BUDGET,
            BlockObjective,
            activation_bytes,
        )
        from chatterjee.unlearn.kfac import KroneckerFactors
        from chatterjee.unlearn.slices import Block, SliceMap
    except ImportError:             # the package without its torch extra
        HAVE["chatterjee"] = False
if HAVE["curvlinops"]:
    from curvlinops import (
        EKFACLinearOperator,
        GGNLinearOperator,
        KFACLinearOperator,
        SubmatrixLinearOperator,
    )
if HAVE["nngeometry"]:
    from nngeometry.layercollection import LayerCollection
    from nngeometry.metrics import FIM
    from nngeometry.object import PMatEKFAC, PMatImplicit, PMatKFAC
    from nngeometry.object.vector import PVector

warnings.filterwarnings("ignore", message="There is a performance drop")

SMALL = {"mlp": {"widths": (8, 6, 5, 4), "n": 12},
         "cnn": {"channels": 3, "classes": 4, "image": 5, "n": 6},
         "decoder": {"vocab": 7, "context": 5, "width": 8, "heads": 2, "depth": 1,
                     "n": 3}}
MID = {"mlp": {"widths": (1024, 2048, 2048, 10), "n": 256},
       "decoder": {"vocab": 4096, "context": 64, "width": 384, "heads": 6, "depth": 4,
                   "n": 64}}
MID_QUICK = {"mlp": {"widths": (256, 512, 512, 10), "n": 128},
             "decoder": {"vocab": 1024, "context": 32, "width": 128, "heads": 4,
                         "depth": 2, "n": 32}}
#: the layer whose parameters form the "layer" and "units" blocks
LAYER = {"mlp": "2", "cnn": "conv1", "decoder": "blocks.0.attn.query"}
EXACT = 1e-10                       # agreement required of an exact product


# --------------------------------------------------------------------------- models

def make_mlp(widths):
    """Linear layers of the given widths with tanh between them."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class ResNetCNN(nn.Module):
    """A conv-BN-ReLU stem, one residual block (two conv-BN), pooling, a linear head."""

    def __init__(self, channels, classes):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        x = F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return self.head(x.mean(dim=(2, 3)))


class DecoderBlock(nn.Module):
    """Pre-LayerNorm attention and GELU MLP, each with a residual connection."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class Decoder(nn.Module):
    """A nanoGPT-style decoder (untied head). Logits are (batch, vocab, positions):
    the layout of ``nn.CrossEntropyLoss`` over sequences, which curvlinops requires."""

    def __init__(self, vocab, context, width, heads, depth):
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(DecoderBlock(width, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx):
        x = self.tokens(idx) + self.positions(torch.arange(idx.shape[-1],
                                                           device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x)).transpose(1, 2)


def build(arch, config, dtype, seed=0):
    """A model in eval mode and a batch ``(X, y)`` of ``arch`` (mlp, cnn, decoder)."""
    torch.manual_seed(seed)
    n = config["n"]
    if arch == "mlp":
        widths = config["widths"]
        model = make_mlp(widths)
        X, y = torch.randn(n, widths[0]), torch.randint(widths[-1], (n,))
    elif arch == "cnn":
        model = ResNetCNN(config["channels"], config["classes"])
        X = torch.randn(n, 3, config["image"], config["image"])
        y = torch.randint(config["classes"], (n,))
        for module in model.modules():         # eval-mode BatchNorm that is not identity
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0, 0.5)
    else:
        model = Decoder(config["vocab"], config["context"], config["width"],
                        config["heads"], config["depth"])
        X = torch.randint(config["vocab"], (n, config["context"]))
        y = torch.randint(config["vocab"], (n, config["context"]))
    model = model.to(dtype).eval()
    return model, (X.to(dtype) if X.is_floating_point() else X), y


def factor_modules(model):
    """The nn.Linear and nn.Conv2d modules (the layers K-FAC covers), by name."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, (nn.Linear, nn.Conv2d))}


def names_of(model, modules):
    """The parameter names of ``modules`` (weight, then bias), in model order."""
    owned = {id(p) for module in modules for p in module.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in owned]


@contextlib.contextmanager
def default_dtype(dtype):
    """Temporarily set torch's default dtype (nngeometry builds constants with it)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# --------------------------------------------------------------- exact references

def explicit_ggn(model, X, y):
    """The dense Gauss-Newton matrix of the mean cross-entropy over all positions, in
    the order of ``model.named_parameters()``, from per-sample Jacobians (float64)."""
    names = [name for name, _ in model.named_parameters()]
    base = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    theta = torch.cat([base[name].reshape(-1) for name in names])

    def logits(flat, x):
        params, start = {}, 0
        for name in names:
            count = base[name].numel()
            params[name] = flat[start:start + count].reshape(base[name].shape)
            start += count
        out = functional_call(model, (params, buffers), (x.unsqueeze(0),))[0]
        return out.movedim(0, -1).reshape(-1, out.shape[0])       # (positions, classes)

    J = vmap(jacrev(logits), in_dims=(None, 0))(theta, X)          # (n, s, k, P)
    p = torch.softmax(vmap(logits, in_dims=(None, 0))(theta, X), dim=-1)
    H = torch.diag_embed(p) - p[..., :, None] * p[..., None, :]
    n_terms = J.shape[0] * J.shape[1]
    G = torch.einsum("nsap,nsab,nsbq->pq", J, H, J) / n_terms
    return 0.5 * (G + G.T)


def reference_product(model, names, X, y):
    """The matrix-free GGN product ``J^T H J v`` with torch.func: one jvp and one vjp,
    the softmax cross-entropy Hessian applied analytically. Returns ``v -> Gv`` on
    flat vectors over the parameters ``names`` (vectors or (P, k) columns)."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    fixed = {**{n: p for n, p in params.items() if n not in names},
             **dict(model.named_buffers())}
    block = {name: params[name] for name in names}
    n_terms = y.numel()

    def f(theta):
        return functional_call(model, ({**fixed, **theta},), (X,))

    def product(flat):
        theta_v, start = {}, 0
        for name in names:
            count = block[name].numel()
            theta_v[name] = flat[start:start + count].reshape(block[name].shape)
            start += count
        out, pullback = vjp(f, block)
        jv = jvp(f, (block,), (theta_v,))[1]
        p = torch.softmax(out, dim=1)
        hjv = (p * jv - p * (p * jv).sum(1, keepdim=True)) / n_terms
        grads = pullback(hjv)[0]
        return torch.cat([grads[name].reshape(-1) for name in names])

    return columnwise(product)


def columnwise(product):
    """``product`` on one flat vector, extended to (P, k) matrices column by column."""
    def apply(V):
        if V.ndim == 1:
            return product(V)
        return torch.stack([product(V[:, j]) for j in range(V.shape[1])], 1)
    return apply


# ------------------------------------------------------------------ the libraries

def chatterjee_data(model, X, y):
    """The batch as the Unlearner holds it: ``TrainingData`` split into batches whose
    activations, with their tangents, fit ``ACTIVATION_BUDGET`` (the rule of
    ``Unlearner.__init__``); and the activation bytes of one sample."""
    sample_bytes = max(1, activation_bytes(model, X[:1]))
    batch_size = max(1, min(X.shape[0], ACTIVATION_BUDGET // (3 * sample_bytes)))
    return TrainingData((X, y), batch_size=batch_size), sample_bytes


def chatterjee_product(model, names, X, y, rows=None):
    """``BlockObjective._products(..., "gauss_newton")`` on the block of ``names`` (all
    rows, or ``rows`` of each)."""
    params = dict(model.named_parameters())
    block = Block({name: torch.arange(params[name].shape[0]) if rows is None else rows
                   for name in names})
    data, sample_bytes = chatterjee_data(model, X, y)
    objective = BlockObjective(model, F.cross_entropy, data, torch.arange(X.shape[0]),
                               0.0, block, sample_bytes=sample_bytes)

    def apply(V):
        vectors = (V[:, None] if V.ndim == 1 else V).T.contiguous()
        out = objective._products(objective.theta, vectors, "gauss_newton").T
        return out[:, 0] if V.ndim == 1 else out
    return apply, objective


def chatterjee_kfac(model, X, y, modules):
    """The unlearner's :class:`KroneckerFactors` of ``modules`` (sliced layers) on the
    batch, and their K-FAC product on the flat vector over the modules' parameters
    (in ``model.named_parameters()`` order): per layer, ``kron(G, A)`` times the
    units-by-input matrix ``R = [W, b]`` is ``G R A``, with ``A`` applied from its
    stored eigendecomposition."""
    layers = SliceMap(model).layers
    data, _ = chatterjee_data(model, X, y)
    factors = KroneckerFactors(model, F.cross_entropy, layers,
                               data.batches(torch.arange(X.shape[0])),
                               torch.Generator().manual_seed(0))
    name_of = {id(layer.module): name for name, layer in layers.items()}
    missing = [name_of.get(id(m), type(m).__name__) for m in modules
               if name_of.get(id(m)) not in factors.factors]
    if missing:
        raise ValueError(f"KroneckerFactors leaves out {', '.join(missing)}")

    def product(flat):
        pieces, start = [], 0
        for module in modules:
            eigenvalues, vectors, G = factors.factors[name_of[id(module)]]
            units, fan_in = module.weight.shape[0], module.weight[0].numel()
            R = flat[start:start + units * fan_in].reshape(units, fan_in)
            start += units * fan_in
            if module.bias is not None:
                R = torch.cat([R, flat[start:start + units, None]], 1)
                start += units
            Z = ((((G @ R.to(G.dtype)) @ vectors) * eigenvalues) @ vectors.T).to(flat.dtype)
            pieces.append(Z[:, :fan_in].reshape(-1))
            if module.bias is not None:
                pieces.append(Z[:, fan_in])
        return torch.cat(pieces)
    return columnwise(product), factors


def curvlinops_operator(kind, model, X, y, params, **options):
    """A curvlinops operator ("ggn", "kfac", "ekfac") on one batch, no determinism
    check (it would cost two extra passes over the data and two products)."""
    cls = {"ggn": GGNLinearOperator, "kfac": KFACLinearOperator,
           "ekfac": EKFACLinearOperator}[kind]
    return cls(model, nn.CrossEntropyLoss(), params, [(X, y)],
               check_deterministic=False, num_data=X.shape[0], **options)


def nngeometry_matrix(representation, model, X, y, modules):
    """An nngeometry Fisher (= GGN for softmax cross-entropy) over ``modules``."""
    collection = LayerCollection()
    for module in modules:
        collection.add_layer_from_model(model, module)
    loader = DataLoader(TensorDataset(X, y), batch_size=X.shape[0])
    matrix = FIM(model, loader, representation, variant="classif_logits",
                 layer_collection=collection)
    if representation is PMatEKFAC:
        matrix.update_diag(loader)       # without it, EK-FAC is K-FAC in its eigenbasis
    return matrix, collection


def nngeometry_product(matrix, collection):
    """``v -> M v`` on flat vectors for an nngeometry matrix."""
    return columnwise(lambda flat: matrix.mv(PVector(collection, vector_repr=flat))
                      .to_torch())


# ------------------------------------------------------------------ accuracy part

class Problem:
    """A small model of ``arch`` in ``dtype``, its batch, the exact GGN (float64, from
    the float64 copy of the same weights) and random test vectors.

    Blocks (flat index sets into all parameters): "all"; "layer", the parameters of
    ``LAYER[arch]`` (a list of parameters); "units", output units 0 and 2 of that layer
    (weight rows and bias entries); "linear+conv", the Linear and Conv2d parameters.
    """

    def __init__(self, arch, dtype=torch.float64, n=None):
        config = {**SMALL[arch], "n": n or SMALL[arch]["n"]}
        exact_model, X, y = build(arch, config, torch.float64)
        self.model, self.X, self.y = build(arch, config, dtype)
        if n == 1:                     # twice: the unlearner's data needs two samples
            X, y = torch.cat([X, X]), torch.cat([y, y])
            self.X, self.y = torch.cat([self.X, self.X]), torch.cat([self.y, self.y])
        with sdpa_kernel(SDPBackend.MATH):     # fused SDPA has no forward-mode AD
            self.G = explicit_ggn(exact_model, X, y)
        self.arch, self.dtype = arch, dtype
        self.params = dict(self.model.named_parameters())
        self.layer = self.model.get_submodule(LAYER[arch])
        self.linear = list(factor_modules(self.model).values())
        self.units = torch.tensor([0, 2])
        self.block_names = {"all": list(self.params),
                            "layer": names_of(self.model, [self.layer]),
                            "linear+conv": names_of(self.model, self.linear)}
        self.block_names["units"] = self.block_names["layer"]
        position, start = {}, 0
        for name, p in self.params.items():
            position[name] = torch.arange(start, start + p.numel())
            start += p.numel()
        self.blocks = {block: torch.cat([position[n] for n in names])
                       for block, names in self.block_names.items()}
        self.blocks["units"] = torch.cat([
            position[n].reshape(self.layer.weight.shape[0], -1)[self.units].reshape(-1)
            for n in self.block_names["layer"]])
        torch.manual_seed(1)
        self.V = torch.randn(self.G.shape[0], 3, dtype=torch.float64)

    def on_model_copy(self):
        """This problem on a deep copy of the model: a failed library call can leave
        its hooks on the model it was given (curvlinops EK-FAC, nngeometry)."""
        other = copy.copy(self)
        other.model = copy.deepcopy(self.model)
        other.params = dict(other.model.named_parameters())
        other.layer = other.model.get_submodule(LAYER[self.arch])
        other.linear = list(factor_modules(other.model).values())
        return other

    def product_error(self, make, block):
        """Max relative error of ``make(self, block)`` (a product on (P, k) matrices)
        against the explicit GGN block, and the product's dtype."""
        index = self.blocks[block]
        with sdpa_kernel(SDPBackend.MATH):
            out = make(self, block)(self.V[index].to(self.dtype))
        return relative_error(out, self.G[index][:, index] @ self.V[index]), \
            f"output dtype {str(out.dtype).replace('torch.', '')}"


def in_default_dtype(apply, dtype):
    """``apply`` run with torch's default dtype set to ``dtype``."""
    def run(V):
        with default_dtype(dtype):
            return apply(V)
    return run


def reference_for(problem, block):
    """The torch.func reference product on ``block``."""
    return reference_product(problem.model, problem.block_names[block], problem.X,
                             problem.y)


def chatterjee_for(problem, block):
    """``BlockObjective`` products on ``block`` (output units as block rows)."""
    rows = problem.units if block == "units" else None
    return chatterjee_product(problem.model, problem.block_names[block], problem.X,
                              problem.y, rows)[0]


def curvlinops_for(problem, block):
    """``GGNLinearOperator`` on the block's parameters; output units through
    ``SubmatrixLinearOperator`` (the whole layer's product, then sliced)."""
    op = curvlinops_operator("ggn", problem.model, problem.X, problem.y,
                             [problem.params[n] for n in problem.block_names[block]])
    if block == "units":
        local = (problem.blocks["units"] - problem.blocks["layer"][0]).tolist()
        op = SubmatrixLinearOperator(op, local, local)
    return op.__matmul__


def nngeometry_for(problem, block):
    """nngeometry's implicit Fisher over whole layers (default dtype = model dtype:
    nngeometry builds constants in the default dtype)."""
    modules = problem.linear if block == "linear+conv" else [problem.layer]
    with default_dtype(problem.dtype):
        matrix, collection = nngeometry_matrix(PMatImplicit, problem.model, problem.X,
                                               problem.y, modules)
    return in_default_dtype(nngeometry_product(matrix, collection), problem.dtype)


#: (label, maker, blocks, library needed) of the exact GGN products
PRODUCTS = [("reference torch.func", reference_for, ("all", "layer"), None),
            ("chatterjee BlockObjective", chatterjee_for, ("all", "layer", "units"),
             "chatterjee"),
            ("curvlinops GGNLinearOperator", curvlinops_for, ("all", "layer", "units"),
             "curvlinops"),
            ("nngeometry FIM implicit", nngeometry_for, ("linear+conv", "layer"),
             "nngeometry")]


def relative_error(approx, exact):
    """max |approx - exact| / max |exact|."""
    return float((approx.double() - exact).abs().max() / exact.abs().max())


def frobenius_error(approx, exact):
    """||approx - exact||_F / ||exact||_F."""
    return float(torch.linalg.norm(approx.double() - exact) / torch.linalg.norm(exact))


class Results:
    """Rows of a printed table: one per attempted computation."""

    def __init__(self):
        self.rows = []

    def attempt(self, row, compute, exact_required=True):
        """Run ``compute`` (returns an error, or None, and a note); record the row, or
        the failure with its message."""
        try:
            error, note = compute()
        except Exception as exc:  # noqa: BLE001 -- the failure is the finding
            message = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:110]}"
            self.rows.append((*row, "FAILS", message))
            return
        if error is None:
            verdict = "runs"
        else:
            verdict = f"{error:.1e}" + (" ok" if exact_required and error <= EXACT else "")
        self.rows.append((*row, verdict, note))

    def print(self, header):
        """Print the rows as aligned columns under ``header``."""
        widths = [max(len(str(r[i])) for r in self.rows + [header])
                  for i in range(len(header) - 1)]
        for row in [header] + self.rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  "
                  + str(row[-1]))


def accuracy_part():
    """Every GGN product against the explicit matrix (float64, then float32); K-FAC
    against exact blocks; the calls expected to fail."""
    results = Results()
    for arch in ("mlp", "cnn", "decoder"):
        for dtype in (torch.float64, torch.float32):
            problem = Problem(arch, dtype)
            for label, make, blocks, library in PRODUCTS:
                if library and not HAVE[library]:
                    continue
                for block in blocks if dtype == torch.float64 else blocks[:1]:
                    results.attempt((arch, label, block, str(dtype)[6:]),
                                    partial(problem.product_error, make, block),
                                    exact_required=dtype == torch.float64)
        for label, n in [("batch", None), ("1 sample", 1)]:
            kfac_checks(results, Problem(arch, n=n), label)
        unsupported_probes(results, arch)
    results.print(("arch", "method", "block", "dtype", "max rel err", "note"))
    support_summary(results.rows)


def curvlinops_kfac_for(problem, kind):
    """curvlinops K-FAC or EK-FAC (type-2, weight and bias joint) on the Linear/Conv2d
    parameters."""
    return curvlinops_operator(kind, problem.model, problem.X, problem.y,
                               [problem.params[n]
                                for n in problem.block_names["linear+conv"]],
                               fisher_type="type-2", separate_weight_and_bias=False
                               ).__matmul__


def nngeometry_kfac_for(problem, representation):
    """nngeometry's K-FAC or EK-FAC (``update_diag`` done) on the Linear/Conv2d layers."""
    with default_dtype(torch.float64):
        matrix, collection = nngeometry_matrix(representation, problem.model, problem.X,
                                               problem.y, problem.linear)
    return in_default_dtype(nngeometry_product(matrix, collection), torch.float64)


def chatterjee_kfac_for(problem):
    """The unlearner's ``KroneckerFactors`` (exact Fisher: the small models have at most
    16 classes) on the Linear/Conv2d layers."""
    return chatterjee_kfac(problem.model, problem.X, problem.y, problem.linear)[0]


def kfac_error(problem, make):
    """Relative Frobenius error of the dense matrix of ``make()`` (over the Linear/Conv2d
    parameters) against the exact GGN's layer-diagonal blocks."""
    key = torch.cat([torch.full((problem.params[name].numel(),), i)
                     for i, module in enumerate(problem.linear)
                     for name in names_of(problem.model, [module])])
    index = problem.blocks["linear+conv"]
    exact = problem.G[index][:, index] * (key[:, None] == key[None, :])
    with sdpa_kernel(SDPBackend.MATH):
        K = make()(torch.eye(index.numel(), dtype=torch.float64))
    return frobenius_error(0.5 * (K + K.T), exact), \
        f"vs exact layer blocks ({index.numel()} params)"


def kfac_checks(results, problem, label):
    """K-FAC / EK-FAC (exact output Hessians: curvlinops type-2, the unlearner's exact
    Fisher) against the exact layer-diagonal blocks of the GGN over the Linear/Conv2d
    parameters. On one sample K-FAC of an MLP is exact (one position per layer); with
    convolutions or sequences it is not (positions are averaged)."""
    candidates = []
    if HAVE["curvlinops"]:
        candidates += [(f"curvlinops {kind.upper()} type-2",
                        partial(curvlinops_kfac_for, problem.on_model_copy(), kind))
                       for kind in ("kfac", "ekfac")]
    if HAVE["nngeometry"]:
        candidates += [(f"nngeometry {kind}",
                        partial(nngeometry_kfac_for, problem.on_model_copy(), matrix))
                       for kind, matrix in (("KFAC", PMatKFAC), ("EKFAC", PMatEKFAC))]
    if HAVE["chatterjee"]:
        candidates.append(("chatterjee KroneckerFactors",
                           partial(chatterjee_kfac_for, problem.on_model_copy())))
    for method, make in candidates:
        results.attempt((problem.arch, method, f"K-FAC, {label}", "float64"),
                        partial(kfac_error, problem, make),
                        exact_required=label == "1 sample" and problem.arch == "mlp")


def support_summary(rows):
    """Per method, from the accuracy rows: what ran ("yes"), failed ("no") or was not
    tried ("-")."""
    columns = {
        "MLP": lambda arch, block, dtype: arch == "mlp" and "default dtype" not in block,
        "CNN through BN": lambda arch, block, dtype: arch == "cnn"
        and "BatchNorm" not in block,
        "BN/Embedding/LN params": lambda arch, block, dtype: arch != "mlp"
        and (block == "all" or "BatchNorm" in block or "embedding" in block),
        "decoder (math SDPA)": lambda arch, block, dtype: arch == "decoder"
        and "fused" not in block and "embedding" not in block,
        "fused SDPA": lambda arch, block, dtype: "fused" in block,
        "param list": lambda arch, block, dtype: block == "layer",
        "output units": lambda arch, block, dtype: block == "units",
        "float32": lambda arch, block, dtype: dtype == "float32",
    }
    methods = list(dict.fromkeys(row[1] for row in rows))
    table = [("method", *columns)]
    for method in methods:
        cells = []
        for keep in columns.values():
            found = [row[4] != "FAILS" for row in rows
                     if row[1] == method and keep(row[0], row[2], row[3])]
            cells.append("-" if not found else "yes" if all(found)
                         else "partly" if any(found) else "no")
        table.append((method, *cells))
    print("\nSupport (from the rows above; 'partly': some rows failed)")
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def probe(arch, call):
    """A fresh small float64 model (a failed nngeometry call leaves its hooks on the
    model) passed to ``call(model, X, y, params)``; the error is the finding."""
    model, X, y = build(arch, SMALL[arch], torch.float64)
    out = call(model, X, y, dict(model.named_parameters()))
    return None, f"returned a {type(out).__name__}"


def ones_like_params(params):
    """A float64 vector of ones over all of ``params``."""
    return torch.ones(sum(p.numel() for p in params.values()), dtype=torch.float64)


def fused_reference(model, X, y, params):
    """The reference product without the math attention backend."""
    return reference_product(model, list(params), X, y)(ones_like_params(params))


def fused_chatterjee(model, X, y, params):
    """``BlockObjective`` products without the math attention backend."""
    return chatterjee_product(model, list(params), X, y)[0](ones_like_params(params))


def fused_curvlinops(model, X, y, params):
    """curvlinops GGN products without the math attention backend."""
    return curvlinops_operator("ggn", model, X, y, list(params.values())) \
        @ ones_like_params(params)


def kfac_with(model, X, y, params, prefix=""):
    """A curvlinops K-FAC over the parameters whose names start with ``prefix``."""
    return curvlinops_operator("kfac", model, X, y,
                               [p for n, p in params.items() if n.startswith(prefix)],
                               fisher_type="type-2")


def nngeometry_on_bn(kind, model, X, y, params):
    """An nngeometry matrix ("implicit": and a product; "kfac") over a BatchNorm."""
    representation = {"implicit": PMatImplicit, "kfac": PMatKFAC}[kind]
    with default_dtype(torch.float64):
        matrix, collection = nngeometry_matrix(representation, model, X, y, [model.bn1])
        if kind == "implicit":
            return matrix.mv(PVector(collection, vector_repr=torch.ones(
                collection.numel(), dtype=torch.float64)))
        return matrix


def nngeometry_default_float32(model, X, y, params):
    """nngeometry's implicit Fisher of a float64 model, default dtype left float32."""
    matrix, collection = nngeometry_matrix(PMatImplicit, model, X, y,
                                           list(factor_modules(model).values()))
    return matrix.mv(PVector(collection, vector_repr=torch.ones(
        collection.numel(), dtype=torch.float64)))


#: (arch, method, block, call, library needed) of the calls expected to fail
PROBES = [
    ("mlp", "nngeometry FIM implicit", "all, default dtype f32",
     nngeometry_default_float32, "nngeometry"),
    ("cnn", "curvlinops KFAC type-2", "BatchNorm params",
     partial(kfac_with, prefix="bn"), "curvlinops"),
    ("cnn", "nngeometry FIM implicit", "BatchNorm params",
     partial(nngeometry_on_bn, "implicit"), "nngeometry"),
    ("cnn", "nngeometry KFAC", "BatchNorm params", partial(nngeometry_on_bn, "kfac"),
     "nngeometry"),
    ("decoder", "reference torch.func", "all, fused SDPA", fused_reference, None),
    ("decoder", "chatterjee BlockObjective", "all, fused SDPA", fused_chatterjee,
     "chatterjee"),
    ("decoder", "curvlinops GGNLinearOperator", "all, fused SDPA", fused_curvlinops,
     "curvlinops"),
    ("decoder", "curvlinops KFAC type-2", "embedding + linear", kfac_with, "curvlinops"),
]


def unsupported_probes(results, arch):
    """Run the probes of ``arch``, each on a fresh model."""
    for probe_arch, method, block, call, library in PROBES:
        if probe_arch == arch and (library is None or HAVE[library]):
            results.attempt((arch, method, block, "float64"), partial(probe, arch, call))


# -------------------------------------------------------------------- outputs part

def timed(function, repeats):
    """Median CPU seconds (time.process_time: all threads) and wall seconds of calls."""
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        function()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def outputs_part(classes, repeats):
    """CPU seconds per GGN product and per factor build against the number of classes."""
    print(f"\nMLP 256-512-512-K, batch 128, float32: CPU seconds (median of {repeats} "
          "after a warm-up call; the first call alone when it takes over 2 s)")
    methods = [("reference torch.func product", "product")]
    if HAVE["chatterjee"]:
        methods += [("chatterjee BlockObjective product", "product"),
                    ("chatterjee KroneckerFactors build", "build")]
    if HAVE["curvlinops"]:
        methods += [("curvlinops GGN product", "product"),
                    ("curvlinops KFAC type-2 build", "build"),
                    ("curvlinops KFAC mc build", "build")]
    if HAVE["nngeometry"]:
        methods += [("nngeometry FIM implicit product", "product"),
                    ("nngeometry KFAC build", "build")]
    print("  ".join([f"{'method':36s}"] + [f"K={k:<6d}" for k in classes]))
    for label, _ in methods:
        cells = []
        for k in classes:
            model, X, y = build("mlp", {"widths": (256, 512, 512, k), "n": 128},
                                torch.float32)
            try:
                call = _outputs_call(label, model, X, y)
                first = timed(call, 1)[0]                   # a warm-up, or the one call
                seconds = first if first > 2.0 else timed(call, repeats)[0]
                cells.append(f"{seconds:<8.3f}")
            except Exception as exc:  # noqa: BLE001 -- the failure is the finding
                cells.append(f"FAILS ({type(exc).__name__})")
        print("  ".join([f"{label:36s}"] + cells))


def _outputs_call(label, model, X, y):
    """A no-argument call doing one product or one factor build of method ``label``."""
    params = dict(model.named_parameters())
    names = list(params)
    modules = list(factor_modules(model).values())
    v = torch.randn(sum(p.numel() for p in params.values()))
    if label.startswith("reference"):
        product = reference_product(model, names, X, y)
        return lambda: product(v)
    if label == "chatterjee BlockObjective product":
        product = chatterjee_product(model, names, X, y)[0]
        return lambda: product(v)
    if label == "chatterjee KroneckerFactors build":
        return lambda: chatterjee_kfac(model, X, y, modules)
    if label == "curvlinops GGN product":
        op = curvlinops_operator("ggn", model, X, y, list(params.values()))
        return lambda: op @ v
    if label.startswith("curvlinops KFAC"):
        fisher = label.split()[2]
        return lambda: curvlinops_operator(
            "kfac", model, X, y, list(params.values()), fisher_type=fisher,
            separate_weight_and_bias=False).compute_kronecker_factors()
    if label == "nngeometry FIM implicit product":
        matrix, collection = nngeometry_matrix(PMatImplicit, model, X, y, modules)
        vector = PVector(collection, vector_repr=v)
        return lambda: matrix.mv(vector)
    return lambda: nngeometry_matrix(PMatKFAC, model, X, y, modules)


# ----------------------------------------------------------------------- cost part

COST_METHODS = {
    "mlp": ["reference", "chatterjee-gn", "chatterjee-kfac", "curvlinops-ggn",
            "curvlinops-kfac", "curvlinops-ekfac", "nngeometry-implicit",
            "nngeometry-kfac", "nngeometry-ekfac"],
    "decoder": ["reference", "chatterjee-gn", "chatterjee-kfac", "curvlinops-ggn",
                "curvlinops-kfac", "curvlinops-ekfac"],
}
NEEDS = {"chatterjee": "chatterjee", "curvlinops": "curvlinops", "nngeometry": "nngeometry"}


def tensor_bytes(obj, seen=None):
    """Bytes of the distinct tensors inside nested dicts, lists and tuples; their dtypes."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        if obj.data_ptr() in seen:
            return 0, set()
        seen.add(obj.data_ptr())
        return obj.numel() * obj.element_size(), {str(obj.dtype).replace("torch.", "")}
    items = obj.values() if isinstance(obj, dict) else obj \
        if isinstance(obj, (list, tuple)) else []
    total, dtypes = 0, set()
    for item in items:
        size, kinds = tensor_bytes(item, seen)
        total, dtypes = total + size, dtypes | kinds
    return total, dtypes


def prepare(method, arch, model, X, y):
    """For a cost method: ``(build, product, state, note)``. ``build()`` computes the
    factors (None for matrix-free methods), ``product(v)`` multiplies a flat float32
    vector, ``state()`` returns what is stored between calls, ``note`` names the block
    ("all params" or "Linear layers")."""
    params = dict(model.named_parameters())
    names = list(params)
    modules = list(factor_modules(model).values())
    factor_params = [params[n] for n in names_of(model, modules)]
    # type-2 costs a backward pass per class; the unlearner's factors are exact for
    # <= 16 classes (the MLP's 10), sampled beyond (the decoder's vocabulary)
    fisher = "type-2" if arch == "mlp" else "mc"
    holder = {}
    if method == "reference":
        return None, reference_product(model, names, X, y), dict, "all params"
    if method == "chatterjee-gn":
        return None, chatterjee_product(model, names, X, y)[0], dict, "all params"
    if method == "chatterjee-kfac":
        def build_ours():
            holder["product"], holder["factors"] = chatterjee_kfac(model, X, y, modules)
        return build_ours, lambda v: holder["product"](v), \
            lambda: holder["factors"].factors, \
            f"Linear layers, fisher {'exact' if arch == 'mlp' else 'mc'}"
    if method == "curvlinops-ggn":
        op = curvlinops_operator("ggn", model, X, y, list(params.values()))
        return None, op.__matmul__, dict, "all params"
    if method in ("curvlinops-kfac", "curvlinops-ekfac"):
        kind = method.split("-")[1]

        def build_curvlinops():
            op = curvlinops_operator(kind, model, X, y, factor_params, fisher_type=fisher,
                                     separate_weight_and_bias=False)
            op.compute_kronecker_factors()
            if kind == "ekfac":
                op.compute_eigenvalue_correction()
            holder["op"] = op

        def state():
            return [getattr(holder["op"], attribute, {}) for attribute in (
                "_input_covariances", "_gradient_covariances",
                "_input_covariances_eigenvectors", "_gradient_covariances_eigenvectors",
                "_corrected_eigenvalues")]
        return build_curvlinops, lambda v: holder["op"] @ v, state, \
            f"Linear layers, fisher {fisher}"
    representation = {"nngeometry-implicit": PMatImplicit, "nngeometry-kfac": PMatKFAC,
                      "nngeometry-ekfac": PMatEKFAC}[method]

    def build_nngeometry():
        holder["matrix"], holder["collection"] = nngeometry_matrix(representation, model,
                                                                   X, y, modules)

    def nng_product(v):
        return holder["matrix"].mv(PVector(holder["collection"], vector_repr=v)).to_torch()
    if representation is PMatImplicit:
        build_nngeometry()
        return None, nng_product, dict, "Linear layers"
    return build_nngeometry, nng_product, lambda: holder["matrix"].data, "Linear layers"


def _status(key):
    """A field of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        return int(re.search(rf"{key}:\s+(\d+)", status.read()).group(1)) * 1024


def exact_rss_accounting():
    """Make freed memory leave the RSS: glibc keeps freed large blocks in its heap
    (its mmap threshold grows with use), which would hide them from the peak. Fixing
    the threshold (128 KiB) and trimming the heap makes the RSS track live memory; it
    slows allocation, so it is done after the timings. Returns False off glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        m_mmap_threshold = -3
        return bool(libc.mallopt(m_mmap_threshold, 131072)) and libc.malloc_trim(0) >= 0
    except (OSError, AttributeError):
        return False


def worker(arch, method, quick):
    """Measure one cost method in this (fresh) process and print one JSON line: the
    median seconds of factor builds and of products (after a warm-up call), then the
    peak extra RSS of one call (build + product) over the RSS before it."""
    config = (MID_QUICK if quick else MID)[arch]
    repeats = 3 if quick else 5
    model, X, y = build(arch, config, torch.float32)
    record = {"model_params": sum(p.numel() for p in model.parameters())}
    with sdpa_kernel(SDPBackend.MATH):
        build_factors, product, state, note = prepare(method, arch, model, X, y)
        params = dict(model.named_parameters())
        modules = list(factor_modules(model).values())
        names = names_of(model, modules) if note.startswith("Linear") else list(params)
        size = sum(params[n].numel() for n in names)
        record.update(note=note, block_params=size)
        torch.manual_seed(2)
        v = torch.randn(size)

        def call():
            if build_factors is not None:
                build_factors()
            return product(v)
        call()                                              # warm-up
        if build_factors is not None:
            record["build_cpu"], record["build_wall"] = timed(build_factors, repeats)
        record["product_cpu"], record["product_wall"] = timed(lambda: product(v), repeats)
        record["exact_rss"] = exact_rss_accounting()
        gc.collect()
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")                                 # reset the peak mark, VmHWM
        baseline = _status("VmRSS")
        call()
        record["peak_extra"] = _status("VmHWM") - baseline
        record["state_bytes"], dtypes = tensor_bytes(state())
        record["state_dtypes"] = sorted(dtypes)
    print(json.dumps(record))


def cost_part(quick):
    """Run every cost method in its own subprocess and print the table."""
    repeats = 3 if quick else 5
    print(f"\nMid-size float32 models: CPU / wall seconds (median of {repeats}); peak "
          "extra RSS of a call (build + one product) after a warm-up call; budget (d) = 4x "
          "block bytes + 1 GiB; one subprocess per method")
    header = ("model", "method", "block", "build CPU s", "product CPU s",
              "product wall s", "peak extra MiB", "budget MiB", "stored MiB (dtype)")
    rows, failures = [], []
    for arch, methods in COST_METHODS.items():
        for method in methods:
            library = method.split("-")[0]
            if library in NEEDS and not HAVE[NEEDS[library]]:
                failures.append(f"{arch} {method}: skipped ({library} is not installed)")
                continue
            command = [sys.executable, __file__, "--worker", arch, method,
                       "--threads", str(torch.get_num_threads())] + \
                (["--quick"] if quick else [])
            try:
                done = subprocess.run(command, check=False, capture_output=True, text=True,
                                      timeout=300 if quick else 1800)
            except subprocess.TimeoutExpired:
                failures.append(f"{arch} {method}: timeout")
                continue
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                failures.append(f"{arch} {method}: FAILS {tail}")
                continue
            record = json.loads(done.stdout.strip().splitlines()[-1])
            budget = 4 * 4 * record["block_params"] + 2 ** 30
            rows.append((
                f"{arch} ({record['model_params'] / 1e6:.1f}M)", method,
                f"{record['note']} ({record['block_params'] / 1e6:.2f}M)",
                f"{record['build_cpu']:.3f}" if "build_cpu" in record else "-",
                f"{record['product_cpu']:.3f}", f"{record['product_wall']:.3f}",
                f"{record['peak_extra'] / 2 ** 20:.0f}"
                + ("" if record["peak_extra"] <= budget else " OVER")
                + ("" if record["exact_rss"] else " (heap reuse not excluded)"),
                f"{budget / 2 ** 20:.0f}",
                f"{record['state_bytes'] / 2 ** 20:.1f} "
                f"({','.join(record['state_dtypes'])})" if record["state_bytes"] else "-"))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    for failure in failures:
        print("  " + failure)


# ---------------------------------------------------------------------------- main

def versions():
    """The versions of torch and the libraries."""
    found = [f"torch {torch.__version__}"]
    for name, package in (("curvlinops", "curvlinops-for-pytorch"),
                          ("nngeometry", "nngeometry")):
        if HAVE[name]:
            from importlib.metadata import version
            found.append(f"{package} {version(package)}")
        else:
            print(f"{package} is not installed: its rows are skipped")
    return ", ".join(found)


def main():
    """Parse the arguments and run the chosen parts (or one cost worker)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller mid-size models and 3 repeats (< 2 minutes)")
    parser.add_argument("--parts", nargs="+", default=["accuracy", "outputs", "cost"],
                        choices=["accuracy", "outputs", "cost"])
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--worker", nargs=2, metavar=("ARCH", "METHOD"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        worker(*args.worker, args.quick)
        return
    print(versions(), f"| {torch.get_num_threads()} threads")
    if "accuracy" in args.parts:
        accuracy_part()
    if "outputs" in args.parts:
        outputs_part((10, 100) if args.quick else (10, 100, 1000), 3)
    if "cost" in args.parts:
        cost_part(args.quick)


if __name__ == "__main__":
    main()
