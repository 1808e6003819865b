"""Calibration and power of CODEC's conditional independence test, against partial correlation.

``codec(y, z, x, method=PermutationMethod(n_resamples=B))`` on null designs (Y and Z
both depend on X, Y independent of Z given X) and an alternative, with X standard
normal in d = 1, 2, 3 dimensions and s = X1 + ... + Xd:

smooth
    Y = sin(2 X1) + 0.5 (X2^2 + ... + Xd^2) + 0.5 e, Z = cos X1 + tanh s + 0.5 h.
sharp
    Y = sin(3 s) + 0.2 e, Z = |s| + 0.2 h: Z points along the direction of X in which Y
    varies (the case that defeats plain local permutations).
ancestor
    Z = E, X1 = |E| + 0.3 g, Y = sin(2 X1) + 0.5 (X2^2 + ... + Xd^2) + 0.3 e: Z is a
    cause of X1 through |.|, so its law given X is bimodal (about +-X1).
hetero
    Z = X1 h + 0.1 g (its spread varies with X), Y = sin X1 + tanh s + 0.3 e.
alternative
    the smooth design with 0.6 cos(2 Z) added to Y.

The rejection rate at level 0.05 over ``--reps`` replications (seeded by replication),
for CODEC's test (``--method permutation``, the conditional permutation test;
``asymptotic``, the normal test with bias correction; ``asymptotic-raw``, the normal
test of the uncorrected T_n) and for Fisher's z test of the partial correlation of Y
and Z given X (linear). Under the null the rate should be within binomial noise of 0.05 (about
[0.02, 0.09] for 200 replications). Run ``python benchmarks/bench_ci_test.py``
(``--n 200 1000 --reps 200 --resamples 199`` takes about 15 minutes on 2 cores).
"""

import argparse
import time

import numpy as np
from scipy.stats import PermutationMethod, norm

from chatterjee import codec


def design(kind, n, d, rng):
    x = rng.normal(size=(n, d))
    if kind == "ancestor":
        z = rng.normal(size=n)
        x[:, 0] = np.abs(z) + 0.3 * rng.normal(size=n)
        return (np.sin(2 * x[:, 0]) + 0.5 * (x[:, 1:] ** 2).sum(axis=1)
                + 0.3 * rng.normal(size=n)), z, x
    s = x.sum(axis=1)
    if kind == "hetero":
        z = x[:, 0] * rng.normal(size=n) + 0.1 * rng.normal(size=n)
        return np.sin(x[:, 0]) + np.tanh(s) + 0.3 * rng.normal(size=n), z, x
    if kind == "sharp":
        return np.sin(3 * s) + 0.2 * rng.normal(size=n), np.abs(s) + 0.2 * rng.normal(size=n), x
    z = np.cos(x[:, 0]) + np.tanh(s) + 0.5 * rng.normal(size=n)
    y = np.sin(2 * x[:, 0]) + 0.5 * (x[:, 1:] ** 2).sum(axis=1) + 0.5 * rng.normal(size=n)
    if kind == "alternative":
        y = y + 0.6 * np.cos(2 * z)
    return y, z, x


def partial_correlation_pvalue(y, z, x):
    n = y.shape[0]
    design_matrix = np.column_stack([np.ones(n), x])
    ry = y - design_matrix @ np.linalg.lstsq(design_matrix, y, rcond=None)[0]
    rz = z - design_matrix @ np.linalg.lstsq(design_matrix, z, rcond=None)[0]
    r = np.corrcoef(ry, rz)[0, 1]
    return 2 * norm.sf(abs(np.arctanh(r)) * np.sqrt(n - x.shape[1] - 3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--d", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--kinds", nargs="+", default=["smooth", "sharp", "ancestor", "hetero", "alternative"])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=199)
    parser.add_argument("--method", default="permutation",
                        choices=["permutation", "asymptotic", "asymptotic-raw"])
    args = parser.parse_args()
    about = (f"{args.resamples} resamples per test" if args.method == "permutation"
             else f"method={args.method}")
    print(f"Rejection rate at level 0.05, {args.reps} replications, {about}")
    print()
    print("| design | n | d | CODEC test | partial correlation | CPU s per test |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in args.kinds:
        for n in args.n:
            for d in args.d:
                codec_rejections, linear_rejections = 0, 0
                start = time.process_time()
                for rep in range(args.reps):
                    y, z, x = design(kind, n, d, np.random.default_rng(rep))
                    if args.method == "permutation":
                        options = dict(method=PermutationMethod(
                            n_resamples=args.resamples, rng=rep))
                    else:
                        options = dict(method="asymptotic",
                                       bias_correction=args.method == "asymptotic")
                    codec_rejections += codec(y, z, x, random_state=rep,
                                              **options).pvalue <= 0.05
                    linear_rejections += partial_correlation_pvalue(y, z, x) <= 0.05
                seconds = (time.process_time() - start) / args.reps
                print(f"| {kind} | {n} | {d} | {codec_rejections / args.reps:.3f} | "
                      f"{linear_rejections / args.reps:.3f} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
