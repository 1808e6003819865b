"""Command line of ``chatterjee``: ``chatterjee demo``, ``select``, ``codec``, ``blanket``,
``unlearn``.

Without a data file, ``select``, ``codec`` and ``blanket`` use scikit-learn's bundled
diabetes data (ten features and the response column ``target``); a data file named
``-`` is read from standard input.
"""

import argparse
import csv
import io
import json
import re
import sys
import time
import warnings

import numpy as np

from . import __version__

DEFAULT_DATA_HELP = (
    "CSV file with a header row (read with pandas; the separator is detected), or '-' "
    "for standard input. Without it, scikit-learn's bundled diabetes data is used: "
    "columns age, sex, bmi, bp, s1..s6 and the response 'target' (n = 442)."
)
# Separators looked for in a header line without commas.
OTHER_SEPARATORS = ";\t|"
COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
TORCH_INSTALL = ("pip install torch; from a clone of the repository, "
                 "pip install -e '.[torch]' installs it with the package")


class CliError(Exception):
    """A user error: reported as one ``chatterjee: error:`` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def _plain(text):
    """``text`` (a docstring in reST) as plain text for --help: no markup.

    ``literal``, :role:`target` and `interpreted` become their bare text.
    """
    text = re.sub(r":[\w:.-]+:`([^`]*)`", r"\1", text)
    return re.sub(r"``([^`]*)``|`([^`]*)`", lambda m: m.group(1) or m.group(2), text)


def _demo(args):
    from sklearn.datasets import load_diabetes

    from . import codec, foci, lcodec, xi

    data = load_diabetes()
    X, y, names = data.data, data.target, data.feature_names
    print(
        f"Diabetes data (scikit-learn's bundled copy): n = {X.shape[0]}, "
        f"{X.shape[1]} features, response = disease progression after one year.\n"
    )
    print("How much does each feature tell about the response?")
    header = (f"{'feature':>8}  {'xi':>7}  {'xi p-value':>10}  {'T(y, x_j)':>9}  "
              f"{'L-CODEC':>8}  {'T(y, x_j | rest)':>16}")
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    for j, name in enumerate(names):
        others = np.delete(X, j, axis=1)
        res = xi(X[:, j], y, random_state=args.seed)
        uncond = codec(y, X[:, j], random_state=args.seed).statistic
        randomized = lcodec(y, X[:, j], n_repeats=20, random_state=args.seed).statistic
        cond = codec(y, X[:, j], others, random_state=args.seed).statistic
        print(f"{name:>8}  {res.statistic:7.3f}  {res.pvalue:10.2e}  {uncond:9.3f}  "
              f"{randomized:8.3f}  {cond:16.3f}")
    print(f"\nAll features together: T(y, X) = "
          f"{codec(y, X, random_state=args.seed).statistic:.3f}"
          f"   ({time.perf_counter() - start:.2f} s in all)")
    print("xi and T near 0: no dependence; near 1: y is a function of the feature(s).")
    print("T(y, x_j | rest) <= 0: x_j adds nothing once the other features are known.")

    result = foci(X, y, random_state=args.seed)
    print("\nFOCI forward selection (stops when no feature adds dependence):")
    print(f"{'step':>4}  {'feature':>8}  {'T(y, selected)':>14}  {'gain T(y, x_j | before)':>23}")
    for step, (j, score, gain) in enumerate(
        zip(result.selected, result.scores, result.gains), start=1
    ):
        print(f"{step:>4}  {names[j]:>8}  {score:14.3f}  {gain:23.3f}")
    return 0


# ---------------------------------------------------------------- data handling

def _read_csv(path):
    """Read the CSV at ``path`` ('-': standard input) with pandas.

    The separator is a comma unless the header line has none and holds another usual
    one (;, tab, |): then it is sniffed from that line with :class:`csv.Sniffer`.
    Compressed files (which pandas reads) are read with commas.
    """
    import pandas as pd

    header = ""
    if path == "-":
        source = io.StringIO(sys.stdin.read())
        header = source.readline()
        source.seek(0)
    else:
        source = path
        if not path.lower().endswith(COMPRESSED):
            with open(path, encoding="utf-8", errors="replace", newline="") as file:
                header = file.readline()
    sep = ","
    if "," not in header and any(other in header for other in OTHER_SEPARATORS):
        try:
            sep = csv.Sniffer().sniff(header, delimiters=OTHER_SEPARATORS).delimiter
        except csv.Error:
            pass
    return pd.read_csv(source, sep=sep)


def _load_frame(path):
    """The data as a DataFrame: the CSV at ``path`` ('-': standard input), or the
    bundled diabetes data; and a description of its source."""
    import pandas as pd

    if path is None:
        from sklearn.datasets import load_diabetes

        return load_diabetes(as_frame=True).frame, "diabetes (scikit-learn, built in)"
    name = "standard input" if path == "-" else path
    try:
        frame = _read_csv(path)
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{name} is a directory, not a CSV file") from None
    except pd.errors.EmptyDataError:
        raise CliError(f"{name} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise CliError(f"cannot parse {name} as CSV: {detail}") from None
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror or exc}") from None
    if frame.shape[1] == 0:
        raise CliError(f"{name} has no columns")
    if frame.shape[0] == 0:
        raise CliError(f"{name} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame, name


def _numeric_columns(frame, exclude=()):
    """The numeric columns of ``frame`` not in ``exclude``; a note on stderr names the
    other columns, which are left out."""
    import pandas as pd

    columns = [c for c in frame.columns if c not in exclude]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    skipped = [c for c in columns if c not in numeric]
    if skipped:
        print(f"chatterjee: note: ignored {len(skipped)} non-numeric column(s): "
              f"{', '.join(skipped)}", file=sys.stderr)
    return numeric


def _check_columns(frame, names, what, labels=False):
    """Check that the explicitly named columns exist and are numeric (or, with
    ``labels``, that they exist: a response may hold class labels)."""
    import pandas as pd

    for name in names:
        if name not in frame.columns:
            available = ", ".join(frame.columns)
            hint = ("; is the file separated by something other than a comma?"
                    if frame.shape[1] == 1 else "")
            raise CliError(f"{what}: no column {name!r} (columns found: "
                           f"{available}{hint})")
        if not labels and not pd.api.types.is_numeric_dtype(frame[name]):
            raise CliError(f"{what}: column {name!r} is not numeric "
                           f"(dtype {frame[name].dtype})")


def _split_names(text, option):
    names = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in names):
        raise CliError(f"{option}: expected comma-separated column names, got {text!r}")
    return names


def _complete_rows(frame, columns, response=None):
    """The rows of ``columns`` with no missing value, as float64 (a note if some drop);
    the ``response`` column keeps its values (class labels may be text)."""
    block = frame[columns]
    complete = block.dropna()
    dropped = block.shape[0] - complete.shape[0]
    if complete.shape[0] < 2:
        raise CliError(f"fewer than 2 rows without missing values in columns "
                       f"{', '.join(columns)}")
    if dropped:
        print(f"chatterjee: note: dropped {dropped} row(s) with missing values",
              file=sys.stderr)
    numeric = [c for c in complete.columns if c != response]
    return complete.astype({c: np.float64 for c in numeric})


def _add_y_type(parser, option):
    parser.add_argument("--y-type", choices=("auto", "continuous", "categorical"),
                        default="auto",
                        help=f"compare {option} by its order or by class ('auto': text "
                             "and two-valued columns are classes)")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") \
            from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text):
    """A seed for NumPy's random generators: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _verbosity(args):
    """``verbose`` for the library: progress (on stderr) unless --no-progress or stderr
    is not a terminal."""
    if args.no_progress:
        return 0
    try:
        return 1 if sys.stderr.isatty() else 0
    except (AttributeError, ValueError):  # replaced or closed stream
        return 0


def _float(value):
    return None if not np.isfinite(value) else float(value)


# ---------------------------------------------------------------- commands

def _select(args):
    from .foci import foci, lfoci

    frame, source = _load_frame(args.data)
    _check_columns(frame, [args.target], "--target", labels=args.y_type != "continuous")
    candidates = _numeric_columns(frame, exclude=[args.target])
    if not candidates:
        raise CliError(f"no numeric column besides {args.target!r} to select from")
    data = _complete_rows(frame, [args.target] + candidates, response=args.target)
    X, y = data[candidates], data[args.target].to_numpy()

    groups = None
    if args.groups_from_prefix is not None:
        if not args.groups_from_prefix:
            raise CliError("--groups-from-prefix: the separator must not be empty")
        # A column without a non-empty prefix is a candidate of its own.
        groups = np.array([c.split(args.groups_from_prefix, 1)[0] or c for c in candidates],
                          dtype=object)
    n_candidates = len(candidates) if groups is None else len(set(groups))
    what = ("feature" if groups is None else "group") + ("s" if n_candidates != 1 else "")
    if args.max_features is not None and args.max_features > n_candidates:
        raise CliError(f"--max-features: {args.max_features} is more than the "
                       f"{n_candidates} candidate {what}")

    select = lfoci if args.randomized else foci
    name = "L-FOCI" if args.randomized else "FOCI"
    if not args.json:
        print(f"{name} on {source}: target {args.target!r}, n = {len(y)}, "
              f"{n_candidates} candidate {what}")
    start = time.perf_counter()
    result = select(X, y, y_type=args.y_type, groups=groups,
                    max_features=args.max_features, stop=not args.no_stop,
                    random_state=args.seed, verbose=_verbosity(args))
    elapsed = time.perf_counter() - start

    if groups is None:
        selected = [str(n) for n in result.feature_names]
    else:
        selected = [str(label) for label in result.selected]
    if args.json:
        output = {"selected": selected,
                  "scores": [_float(s) for s in result.scores],
                  "gains": [_float(g) for g in result.gains]}
        if groups is not None:
            output["columns"] = [str(n) for n in result.feature_names]
        print(json.dumps(output))
        return 0
    if not selected:
        print("No feature selected.")
        return 0
    width = max(8, *(len(s) for s in selected))
    header = f"{'step':>4}  {'feature':>{width}}  {'T(y, selected)':>14}  {'gain':>8}"
    print(header)
    print("-" * len(header))
    for step, (label, score, gain) in enumerate(
        zip(selected, result.scores, result.gains), start=1
    ):
        print(f"{step:>4}  {label:>{width}}  {score:14.3f}  {gain:8.3f}")
    print(f"({elapsed:.2f} s)")
    return 0


def _codec(args):
    from .codec import codec

    frame, source = _load_frame(args.data)
    z = _split_names(args.z, "--z")
    x = _split_names(args.x, "--x") if args.x is not None else []
    _check_columns(frame, [args.y], "--y", labels=args.y_type != "continuous")
    _check_columns(frame, z, "--z")
    _check_columns(frame, x, "--x")
    both = [name for name in z if name in x]
    if both:
        print(f"chatterjee: note: {', '.join(both)} in both --z and --x: given --x, "
              f"{'it adds' if len(both) == 1 else 'they add'} nothing (T is 0 in the "
              f"limit; on tied data the estimate is tie-breaking noise)", file=sys.stderr)
    used = list(dict.fromkeys([args.y] + z + x))
    data = _complete_rows(frame, used, response=args.y)
    result = codec(data[args.y].to_numpy(), data[z].to_numpy(),
                   data[x].to_numpy() if x else None, y_type=args.y_type,
                   random_state=args.seed)
    if args.json:
        print(json.dumps({"T": _float(result.statistic), "n": int(result.n_samples),
                          "y": args.y, "z": z, "x": x}))
        return 0
    given = f" | {', '.join(x)}" if x else ""
    print(f"T({args.y}, {', '.join(z)}{given}) = {result.statistic:.4f}   "
          f"n = {result.n_samples}   ({source})")
    return 0


def _blanket(args):
    from .blanket import markov_blankets, plot_blanket_graph

    if args.plot is not None:
        if not args.plot.strip():
            raise CliError("--plot: expected a file name, got an empty one")
        try:
            import matplotlib
        except ImportError:
            raise CliError("--plot needs matplotlib, which is not installed "
                           "(pip install matplotlib)") from None
        matplotlib.use("Agg")
    frame, source = _load_frame(args.data)
    columns = _numeric_columns(frame)
    if len(columns) < 2:
        raise CliError("need at least 2 numeric columns for blankets")
    data = _complete_rows(frame, columns)
    adjacency = markov_blankets(data, symmetric=args.symmetric, random_state=args.seed,
                                verbose=_verbosity(args))
    matrix = np.asarray(adjacency, dtype=bool)
    blankets = {name: [columns[j] for j in np.flatnonzero(matrix[i])]
                for i, name in enumerate(columns)}
    if args.plot is not None:
        import matplotlib.pyplot as plt

        ax = plot_blanket_graph(matrix, labels=columns)
        try:
            ax.figure.savefig(args.plot, dpi=100, bbox_inches="tight")
        except (OSError, ValueError) as exc:
            raise CliError(f"--plot: cannot save {args.plot}: {exc}") from None
        finally:
            plt.close(ax.figure)
    if args.json:
        print(json.dumps({"blankets": blankets, "symmetric": args.symmetric}))
        return 0
    print(f"Markov blankets ({source}, n = {len(data)}"
          + (f", symmetric = {args.symmetric}" if args.symmetric else "") + "):")
    width = max(len(c) for c in columns)
    for name, members in blankets.items():
        print(f"  {name:>{width}}: {', '.join(members) if members else '(empty)'}")
    if args.plot is not None:
        print(f"Graph saved to {args.plot}")
    return 0


def _unlearn(args):
    """Train a small model on the digits, remove a few samples, print what changed."""
    if not args.demo:
        raise CliError("unlearn: only the demonstration exists so far: "
                       "run 'chatterjee unlearn --demo'")
    try:
        import torch
    except ImportError:
        raise CliError("unlearn needs torch, which is not installed "
                       f"({TORCH_INSTALL})") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the demo's models are tiny: one thread is fastest
    try:
        return _unlearn_demo(args, torch)
    finally:
        torch.set_num_threads(threads)


def _unlearn_demo(args, torch):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from .unlearn import Unlearner
    from .unlearn.baselines import train
    from .unlearn.metrics import accuracy

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.2, random_state=0)
    train_data = (torch.tensor(X_train), torch.tensor(y_train))
    test_data = (torch.tensor(X_test), torch.tensor(y_test))
    loss_fn = torch.nn.CrossEntropyLoss()
    weight_decay = 1e-3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(),
                                    torch.nn.Linear(16, 10)).double()
    start = time.perf_counter()
    with warnings.catch_warnings():
        # a few L-BFGS iterations; the demo does not need the exact optimum
        warnings.simplefilter("ignore", RuntimeWarning)
        train(model, loss_fn, train_data, weight_decay=weight_decay, optimizer="lbfgs",
              max_iter=args.iterations, tol=1e-8, random_state=args.seed)
    train_seconds = time.perf_counter() - start
    accuracy_before = accuracy(model, test_data)
    unlearner = Unlearner(model, loss_fn, train_data, weight_decay=weight_decay,
                          selection=args.selection, n_perturbations=64,
                          acceleration=args.acceleration, step_control=args.step_control,
                          random_state=args.seed)
    rng = np.random.default_rng(args.seed)
    removals = []
    for index in rng.choice(len(y_train), args.removals, replace=False):
        report = unlearner.forget(int(index))
        removals.append({"index": int(index), "label": int(y_train[index]),
                         "slices": [str(s) for s in report.slices],
                         "n_parameters": int(report.n_parameters),
                         "loss_before": _float(report.removed_loss_before),
                         "loss_after": _float(report.removed_loss_after),
                         "seconds": float(report.timings["total"])})
    accuracy_after = accuracy(model, test_data)
    n_params = sum(p.numel() for p in model.parameters())
    if args.json:
        print(json.dumps({"model": "MLP 64-16-10", "n_parameters": n_params, "n_train": len(y_train),
                          "selection": args.selection, "acceleration": args.acceleration,
                          "step_control": unlearner.step_control,
                          "train_seconds": train_seconds,
                          "test_accuracy_before": accuracy_before,
                          "test_accuracy_after": accuracy_after, "removals": removals}))
        return 0
    print(f"Digits (scikit-learn's bundled copy): MLP 64-16-10 ({n_params} parameters) "
          f"trained (L-BFGS) on {len(y_train)} images in {train_seconds:.1f} s.")
    print(f"Removing {args.removals} random training samples, selection = "
          f"{args.selection!r}, acceleration = {args.acceleration!r}, step_control = "
          f"{unlearner.step_control!r}:\n")
    header = (f"{'index':>5}  {'label':>5}  {'slices':>6}  {'params':>6}  "
              f"{'loss before':>11}  {'loss after':>10}  {'time (s)':>8}  chosen slices")
    print(header)
    print("-" * len(header))
    for row in removals:
        chosen = ", ".join(row["slices"][:4]) + (", ..." if len(row["slices"]) > 4 else "")
        print(f"{row['index']:>5}  {row['label']:>5}  {len(row['slices']):>6}  "
              f"{row['n_parameters']:>6}  {row['loss_before']:11.5f}  "
              f"{row['loss_after']:10.5f}  {row['seconds']:8.2f}  {chosen}")
    print(f"\nTest accuracy: {accuracy_before:.4f} before, {accuracy_after:.4f} after.")
    print("Each removal is a Newton step on the chosen slices that takes out the sample's "
          "influence (objective='influence'): its loss rises by what the model had "
          "fitted to it.")
    return 0


# ---------------------------------------------------------------- parser

def _add_common(parser):
    parser.add_argument("data", nargs="?", default=None, metavar="data.csv",
                        help=DEFAULT_DATA_HELP)
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed for tie-breaking and randomization, an integer >= 0 "
                             "(default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON to stdout")


def _add_progress(parser):
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress report (it is shown on stderr when stderr is a "
                             "terminal: a bar with tqdm installed, else one line per "
                             "step)")


def build_parser():
    parser = _Parser(prog="chatterjee", description=_plain(__doc__),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"chatterjee {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser("demo", help="dependence table of a bundled data set")
    demo.add_argument("--seed", type=_seed, default=0,
                      help="seed for tie-breaking, an integer >= 0 (default 0)")
    demo.set_defaults(run=_demo)

    select = commands.add_parser(
        "select", help="FOCI forward selection of the columns a target depends on",
        description="FOCI (or L-FOCI) forward selection: all other numeric columns "
                    "are candidates. Without a data file it runs on scikit-learn's "
                    "diabetes data, e.g. 'chatterjee select --target target'.")
    _add_common(select)
    select.add_argument("--target", required=True, metavar="COL",
                        help="the response column ('target' in the built-in data)")
    select.add_argument("--max-features", type=_positive_int, default=None, metavar="K",
                        help="select at most K candidates")
    _add_y_type(select, "--target")
    select.add_argument("--randomized", action="store_true",
                        help="L-FOCI: break ties with a little noise (for discrete data)")
    select.add_argument("--no-stop", action="store_true",
                        help="do not stop when no candidate adds dependence: rank "
                             "candidates up to --max-features")
    select.add_argument("--groups-from-prefix", metavar="SEP", default=None,
                        help="columns sharing the text before the first SEP form one "
                             "candidate picked whole (e.g. SEP '_' groups emb_0, emb_1); "
                             "JSON output then also lists the picked 'columns'")
    _add_progress(select)
    select.set_defaults(run=_select)

    codec = commands.add_parser(
        "codec", help="Azadkia-Chatterjee coefficient T(y, z | x)",
        description="T(y, z | x), or T(y, z) without --x. Without a data file it uses "
                    "scikit-learn's diabetes data, e.g. "
                    "'chatterjee codec --y target --z bmi --x s5'.")
    _add_common(codec)
    codec.add_argument("--y", required=True, metavar="COL", help="the response column")
    codec.add_argument("--z", required=True, metavar="COLS",
                       help="comma-separated columns whose dependence is measured")
    codec.add_argument("--x", default=None, metavar="COLS",
                       help="comma-separated conditioning columns (optional)")
    _add_y_type(codec, "--y")
    codec.set_defaults(run=_codec)

    blanket = commands.add_parser(
        "blanket", help="Markov blanket of every numeric column",
        description="The Markov blanket of every numeric column given the others. "
                    "Without a data file it uses scikit-learn's diabetes data "
                    "(11 variables, target included).")
    _add_common(blanket)
    blanket.add_argument("--symmetric", choices=("and", "or"), default=None,
                         help="keep an edge found in both directions (and) or in "
                              "either (or); default: directed estimates")
    blanket.add_argument("--plot", metavar="out.png", default=None,
                         help="save the blanket graph as a picture (needs matplotlib)")
    _add_progress(blanket)
    blanket.set_defaults(run=_blanket)

    unlearn = commands.add_parser(
        "unlearn", help="remove training samples from a torch model (needs torch)",
        description="Deep unlearning with chatterjee.unlearn. '--demo' trains a small "
                    "MLP on scikit-learn's digits (seconds), removes a few random "
                    "training samples with the Unlearner and prints, per removal, the "
                    "slices updated and the removed sample's loss before and after.")
    unlearn.add_argument("--demo", action="store_true", help="run the demonstration")
    unlearn.add_argument("--removals", type=_positive_int, default=3, metavar="K",
                         help="samples to remove, one at a time (default 3)")
    unlearn.add_argument("--selection", choices=("lfoci", "gradient", "random", "full"),
                         default="lfoci", help="slice selection rule (default lfoci)")
    unlearn.add_argument("--acceleration", choices=("subspace",), default=None,
                         help="widen each block step by a few directions over all "
                              "parameters (default: pure block steps)")
    unlearn.add_argument("--step-control", choices=("retained", "subsample"),
                         default=None,
                         help="check each step on a subsample (the default), so a "
                              "removal's cost does not grow with the training set, or "
                              "on all retained samples")
    unlearn.add_argument("--iterations", type=_positive_int, default=60,
                         help="L-BFGS iterations training the demo model (default 60)")
    unlearn.add_argument("--seed", type=_seed, default=0,
                         help="seed, an integer >= 0 (default 0)")
    unlearn.add_argument("--json", action="store_true", help="print JSON to stdout")
    unlearn.set_defaults(run=_unlearn)
    return parser


def main(argv=None):
    """Entry point of the ``chatterjee`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except CliError as exc:
        print(f"chatterjee: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"chatterjee: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
