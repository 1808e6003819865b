"""Permutation p-values shared by the statistics, and validation of ``method``."""

_DEFAULT_RESAMPLES = 9999


def _permutation_method(method, rng):
    from scipy.stats import PermutationMethod

    if isinstance(method, PermutationMethod):
        return method
    return PermutationMethod(n_resamples=_DEFAULT_RESAMPLES, rng=rng)


def check_method(method, allowed):
    """Validate ``method``: one of the strings in ``allowed`` or a PermutationMethod."""
    if method is None and None in allowed:
        return None
    if isinstance(method, str):
        if method.lower() in allowed:
            return method.lower()
    elif type(method).__name__ == "PermutationMethod":
        return method
    names = " or ".join(repr(m) for m in allowed if m is not None)
    raise ValueError(
        f"`method` must be {names} or a `scipy.stats.PermutationMethod`, got {method!r}."
    )


def permutation_pvalue(statistic_of_ranks, R, method, rng):
    """Permutation test of a statistic that depends on the data only through ranks.

    Permuting y permutes its ranks, so each resample costs a gather, not a re-rank.

    Returns
    -------
    statistic, pvalue, null_distribution
    """
    from scipy.stats import permutation_test

    method = _permutation_method(method, rng)
    result = permutation_test(
        (R,),
        statistic_of_ranks,
        permutation_type="pairings",
        alternative="greater",
        vectorized=True,
        axis=-1,
        **method._asdict(),
    )
    return float(result.statistic), float(result.pvalue), result.null_distribution
