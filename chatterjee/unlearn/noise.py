"""Noise calibrations for (epsilon, delta) removal, as pure functions, and a budget.

Two calibrations from the literature, each valid only under its assumptions:

- Guo et al. (2020), certified removal: the model is trained on an objective
  perturbed by ``b . w`` with ``b ~ N(0, sigma^2 I)``; removals by Newton steps stay
  (epsilon, delta)-certified while the accumulated gradient residual norms (of the
  sum-form objective) stay below ``sigma * epsilon / c`` with
  ``c = sqrt(2 ln(1.5 / delta))``. Needs a strongly convex, twice-differentiable loss.
- Sekhari et al. (2021): Gaussian noise on the updated weights with standard deviation
  ``(gamma / epsilon) sqrt(2 ln(1.25 / delta))``, ``gamma = 2 M L^2 m^2 / (lambda^3 n^2)``
  for m removals out of n, M-Lipschitz Hessians, L-Lipschitz losses and
  lambda-strong convexity.

For a deep network neither assumption holds: the noise is then a heuristic that
perturbs the updated parameters, and certifies nothing.
"""

import math

__all__ = ["RemovalBudget", "guo_constant", "guo_removal_budget", "sekhari_noise_std"]


def _check_privacy(epsilon, delta):
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def guo_constant(delta):
    """Guo et al.'s ``c = sqrt(2 ln(1.5 / delta))``.

    Examples
    --------
    >>> round(guo_constant(1e-4), 3)
    4.385
    """
    _check_privacy(1.0, delta)
    return math.sqrt(2 * math.log(1.5 / delta))


def guo_removal_budget(sigma, epsilon, delta):
    """The total gradient residual norm that keeps removals (epsilon, delta)-certified.

    Parameters
    ----------
    sigma : float
        Standard deviation of the objective perturbation used in training.
    epsilon, delta : float
        The certificate; ``epsilon > 0`` and ``0 < delta < 1``.

    Returns
    -------
    float
        ``sigma * epsilon / c``: the budget for the sum of the residual norms
        ``||grad L(w; D')||`` of the sum-form objective, one per removal.

    Examples
    --------
    >>> round(guo_removal_budget(1.0, 1.0, 1e-4), 3)
    0.228
    """
    _check_privacy(epsilon, delta)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    return sigma * epsilon / guo_constant(delta)


def sekhari_noise_std(n_samples, n_removed, weight_decay, epsilon, delta, *,
                      hessian_lipschitz=0.25, loss_lipschitz=1.0):
    """Sekhari et al.'s output-noise standard deviation for m removals out of n.

    Parameters
    ----------
    n_samples : int
        Size of the original training set (n).
    n_removed : int
        Removals the noise must cover (m), 1 <= m < n.
    weight_decay : float
        Strong-convexity constant lambda > 0 (the weight decay).
    epsilon, delta : float
        The (epsilon, delta) target.
    hessian_lipschitz, loss_lipschitz : float
        M and L; the defaults (0.25 and 1) hold for logistic regression on inputs of
        norm at most 1.

    Returns
    -------
    float

    Examples
    --------
    >>> f"{sekhari_noise_std(50_000, 1, 0.01, 0.1, 0.01):.2e}"
    '6.22e-03'
    """
    _check_privacy(epsilon, delta)
    if not (1 <= n_removed < n_samples):
        raise ValueError(f"need 1 <= n_removed < n_samples, got {n_removed} and {n_samples}")
    if not weight_decay > 0:
        raise ValueError(f"weight_decay must be > 0 for this calibration, got {weight_decay!r}")
    gamma = (2 * hessian_lipschitz * loss_lipschitz ** 2 * n_removed ** 2
             / (weight_decay ** 3 * n_samples ** 2))
    return gamma / epsilon * math.sqrt(2 * math.log(1.25 / delta))


class RemovalBudget:
    """A running (epsilon, delta) budget over sequential removals (Guo et al.).

    Parameters
    ----------
    sigma : float
        Standard deviation of the training-time objective perturbation.
    epsilon, delta : float

    Examples
    --------
    >>> budget = RemovalBudget(sigma=1.0, epsilon=1.0, delta=1e-4)
    >>> budget.spend(0.1)
    False
    >>> budget.spend(0.2)     # 0.3 > 0.228: retraining is due
    True
    """

    def __init__(self, sigma, epsilon, delta):
        self.total = guo_removal_budget(sigma, epsilon, delta)
        self.spent = 0.0

    @property
    def remaining(self):
        """What is left of the budget (negative once exceeded)."""
        return self.total - self.spent

    @property
    def retrain_due(self):
        """Whether the accumulated residuals exceed the budget."""
        return self.spent > self.total

    def spend(self, residual_norm):
        """Add one removal's gradient residual norm; return :attr:`retrain_due`."""
        if not residual_norm >= 0:
            raise ValueError(f"residual_norm must be >= 0, got {residual_norm!r}")
        self.spent += float(residual_norm)
        return self.retrain_due
