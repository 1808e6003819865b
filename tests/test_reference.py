"""Agreement with the R package FOCI (CODEC) and XICOR (xi).

``c*`` files hold tie-free data, where R's answer is deterministic and ours must equal
it to rounding. ``t*`` files hold data with ties, where R breaks nearest-neighbour
ties at random: there the mean of our randomized answers over many seeds must match
the exact (or Monte Carlo) expectation under uniform random tie-breaking.
"""

import numpy as np
import pytest

from chatterjee import codec, lcodec, xi

N_SEEDS = 200
N_STANDARD_ERRORS = 4.5


def _compute(fn, data, seed=None):
    if fn == "xi":
        return xi(data["z"][:, 0], data["y"], random_state=seed).statistic
    estimator = {"codec": codec, "lcodec": lcodec}[fn]
    # R ranks every response, a binary one included
    return estimator(data["y"], data["z"], data["x"], y_type="continuous",
                     random_state=seed).statistic


def test_exact_case_matches_r(exact_call):
    call = exact_call["call"]
    assert call["fn"] in ("codec", "xi")
    value = _compute(call["fn"], exact_call, seed=0)
    assert value == pytest.approx(call["r_value"], rel=0, abs=1e-12)


def test_exact_case_does_not_depend_on_seed(exact_call):
    """Tie-free data: every seed gives R's value (bit for bit across our seeds)."""
    call = exact_call["call"]
    values = {_compute(call["fn"], exact_call, seed=s) for s in (1, 2, 12345)}
    assert len(values) == 1


def xi_expectation_uniform_ties(x, y):
    """Exact E[xi_n] when ties in x are ordered uniformly at random.

    Written independently of the package: by linearity, a within-group adjacent pair
    is a uniformly drawn ordered pair of distinct members of the group, and the pair
    across a group boundary is (uniform member of the lower group, uniform member of
    the upper group), drawn independently.
    """
    n = len(y)
    R = (y[None, :] <= y[:, None]).sum(axis=1).astype(float)
    L = (y[None, :] >= y[:, None]).sum(axis=1).astype(float)
    groups = [R[x == value] for value in np.unique(x)]
    expected_variation = 0.0
    for group in groups:
        expected_variation += np.abs(group[:, None] - group[None, :]).sum() / len(group)
    for lower, upper in zip(groups[:-1], groups[1:]):
        expected_variation += np.abs(lower[:, None] - upper[None, :]).mean()
    return 1 - n * expected_variation / (2 * np.sum(L * (n - L)))


def _expectation(call):
    """The expected value under uniform tie-breaking and its Monte Carlo standard error."""
    if "exact_expectation_uniform_ties" in call:
        return call["exact_expectation_uniform_ties"], 0.0
    if "mc_uniform_ties_2000runs" in call:
        mc = call["mc_uniform_ties_2000runs"]
        return mc["mean"], mc["sd"] / np.sqrt(2000)
    return None, None


def _assert_mean_matches(values, expected, expected_se, label):
    se = np.hypot(values.std(ddof=1) / np.sqrt(values.size), expected_se)
    deviation = values.mean() - expected
    assert abs(deviation) <= N_STANDARD_ERRORS * se + 1e-12, (
        f"{label}: mean over {values.size} seeds {values.mean():.6f} vs expected "
        f"{expected:.6f} ({deviation / se if se else np.inf:.2f} standard errors of "
        f"{se:.2e})"
    )


@pytest.mark.parametrize("estimator", ["codec", "lcodec"])
def test_ties_mean_matches_uniform_tie_breaking(ties_codec_call, estimator):
    ties_call = ties_codec_call
    call = ties_call["call"]
    expected, expected_se = _expectation(call)
    assert expected is not None, "codec tie case without an expectation"
    values = np.array([_compute(estimator, ties_call, seed) for seed in range(N_SEEDS)])
    assert np.isfinite(values).all()
    _assert_mean_matches(values, expected, expected_se, f"{ties_call['file']} {estimator}")
    ties = call["nn_tie_counts"]
    if sum(counts["duplicates"] + counts["equidistant"] for counts in ties.values()):
        assert values.std() > 0  # genuine neighbour ties: the seeds must matter
    else:
        assert np.ptp(values) <= 1e-12  # ties in Y only: no randomness at all


def test_ties_average_is_the_exact_expectation(ties_codec_call):
    """Unconditional T_n has a draw-free denominator, so ties='average' is E[T_n] under
    uniform tie-breaking exactly: R FOCI's exact expectation where the file has one."""
    call = ties_codec_call["call"]
    average = codec(ties_codec_call["y"], ties_codec_call["z"], ties_codec_call["x"],
                    y_type="continuous", ties="average").statistic
    expected, expected_se = _expectation(call)
    if ties_codec_call["x"] is None and expected_se == 0.0:
        assert average == pytest.approx(expected, rel=1e-12)
    else:   # a ratio of expectations: near the Monte Carlo mean of the ratios
        assert abs(average - expected) < 0.05


def test_ties_xi_mean(ties_xi_call):
    ties_call = ties_xi_call
    call = ties_call["call"]
    x, y = ties_call["z"][:, 0], ties_call["y"]
    expected = xi_expectation_uniform_ties(x, y)
    r_values = np.asarray(call["r_values"], dtype=float)
    # The expectation formula is checked against XICOR's own random tie-breaking ...
    _assert_mean_matches(r_values, expected, 0.0, f"{ties_call['file']} R's xi")
    # ... is ties="average" exactly ...
    assert xi(x, y, ties="average").statistic == pytest.approx(expected, rel=1e-12)
    # ... and our randomized xi against the formula and against R's sample.
    values = np.array([_compute("xi", ties_call, seed) for seed in range(N_SEEDS)])
    _assert_mean_matches(values, expected, 0.0, f"{ties_call['file']} xi")
    _assert_mean_matches(values, r_values.mean(),
                         r_values.std(ddof=1) / np.sqrt(r_values.size),
                         f"{ties_call['file']} xi vs R")
    assert values.std() > 0


def test_reference_folder_is_complete(reference_dir):
    """Guard against silently testing nothing: the expected case files are there."""
    names = {path.name[:3] for path in reference_dir.glob("*.json")}
    assert {"c01", "c03", "c10", "c19", "t01", "t03", "t05"} <= names
