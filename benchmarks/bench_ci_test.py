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

``--coverage``: the asymptotic method's 95 % confidence intervals on designs whose
T is known, with and without the bias correction. X standard normal in d
dimensions, s = (X1 + ... + Xd) / sqrt(d), Z and e standard normal:
"independent" Y = e (T = 0); "gaussian" Y = s + Z + e (T = 0.304, by quadrature:
:func:`gaussian_T`); "noiseless" Y = s + Z (T = 1); "marginal" T(Y, Z) without X for
Y = Z + e (T = 0.310). Mean and standard deviation of the estimate, mean standard
error, coverage, rejection rate of T = 0 at 0.05, CPU seconds per call.
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


def gaussian_T(a, b, sigma, nodes=200):
    """Population T(Y, Z | X) for Y = a s + b Z + sigma e (s, Z, e standard normal),
    or T(Y, Z) with a = 0. With G(t) = P(Y >= t | .) and t drawn from Y's law,
    T = int E[G_XZ^2] - E[G_X^2] over int E[G_X] - E[G_X^2]; each E[Phi(m + c V)^2]
    is a bivariate normal probability, integrated over t by Gauss-Hermite nodes."""
    from scipy.stats import multivariate_normal

    def mean_square(m, c):
        h, rho = m / np.sqrt(1 + c * c), c * c / (1 + c * c)
        return multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf(
            np.column_stack([h, h]))

    u, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    t = np.sqrt(a * a + b * b + sigma * sigma) * u
    rest = np.sqrt(b * b + sigma * sigma)
    joint = mean_square(-t / sigma, np.sqrt(a * a + b * b) / sigma)
    if a > 0:
        given2, given1 = mean_square(-t / rest, a / rest), norm.cdf(-t / np.hypot(rest, a))
    else:
        given1 = norm.sf(t / np.sqrt(b * b + sigma * sigma))
        given2 = given1**2
    return float(w @ (joint - given2)) / float(w @ (given1 - given2))


def coverage_design(kind, n, d, rng):
    """(y, z, x, T) of a design with a known T (see the module docstring)."""
    x = rng.normal(size=(n, d))
    z = rng.normal(size=n)
    s = x.sum(axis=1) / np.sqrt(d)
    if kind == "independent":
        return rng.normal(size=n), z, x, 0.0
    if kind == "gaussian":
        return s + z + rng.normal(size=n), z, x, gaussian_T(1, 1, 1)
    if kind == "noiseless":
        return s + z, z, x, 1.0
    return z + rng.normal(size=n), z, None, gaussian_T(0, 1, 1)


def coverage(args):
    print(f"95 % intervals of method='asymptotic', {args.reps} replications")
    print()
    print("| design | n | d | bias correction | T | mean estimate | sd | mean se "
          "| coverage | rejects T = 0 | CPU s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.n:
        for kind in ("independent", "gaussian", "noiseless", "marginal"):
            for d in (args.d if kind != "marginal" else [1]):
                for corrected in (False, True):
                    estimates, errors, covered, rejected = [], [], [], []
                    start = time.process_time()
                    for rep in range(args.reps):
                        y, z, x, truth = coverage_design(kind, n, d,
                                                         np.random.default_rng(rep))
                        result = codec(y, z, x, method="asymptotic",
                                       bias_correction=corrected, random_state=rep)
                        low, high = result.confidence_interval()
                        estimates.append(result.statistic)
                        errors.append(result.standard_error)
                        covered.append(low <= truth <= high)
                        rejected.append(result.pvalue <= 0.05)
                    seconds = (time.process_time() - start) / args.reps
                    print(f"| {kind} | {n} | {d if x is not None else '-'} | "
                          f"{'yes' if corrected else 'no'} | {truth:.3f} | "
                          f"{np.mean(estimates):.3f} | {np.std(estimates):.3f} | "
                          f"{np.mean(errors):.3f} | {np.mean(covered):.3f} | "
                          f"{np.mean(rejected):.3f} | {seconds:.2f} |", flush=True)


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
    parser.add_argument("--coverage", action="store_true",
                        help="the confidence intervals' coverage instead")
    parser.add_argument("--method", default="permutation",
                        choices=["permutation", "asymptotic", "asymptotic-raw"])
    args = parser.parse_args()
    if args.coverage:
        coverage(args)
        return
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
                        options = {"method": PermutationMethod(
                            n_resamples=args.resamples, rng=rep)}
                    else:
                        options = {"method": "asymptotic",
                                   "bias_correction": args.method == "asymptotic"}
                    codec_rejections += codec(y, z, x, random_state=rep,
                                              **options).pvalue <= 0.05
                    linear_rejections += partial_correlation_pvalue(y, z, x) <= 0.05
                seconds = (time.process_time() - start) / args.reps
                print(f"| {kind} | {n} | {d} | {codec_rejections / args.reps:.3f} | "
                      f"{linear_rejections / args.reps:.3f} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
