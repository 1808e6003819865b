"""Command line: ``python -m chatterjee demo``."""

import argparse
import sys
import time

import numpy as np


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


def main(argv=None):
    """Entry point of the ``chatterjee`` command."""
    parser = argparse.ArgumentParser(prog="chatterjee", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="dependence table of a bundled data set")
    demo.add_argument("--seed", type=int, default=0, help="seed for tie-breaking")
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
