"""
CODEC and xi: the basics
========================

Chatterjee's xi_n(x -> y) and the CODEC coefficient T_n(Y, Z) both ask whether ``y``
is a function of the predictor: they are near 0 when the two are independent and
near 1 when ``y`` is a noiseless function of it, whatever the shape of the
function. Pearson's correlation only sees straight lines.
"""

import matplotlib.pyplot as plt
import numpy as np

from chatterjee import codec, xi

rng = np.random.default_rng(0)
n = 500
x = rng.uniform(-1, 1, size=n)
noise = 0.1 * rng.normal(size=n)
shapes = {
    "line": x + noise,
    "parabola": x**2 + noise,
    "sine": np.sin(4 * np.pi * x) + noise,
    "independent": rng.normal(size=n),
}

# %%
# One panel per shape, with the three coefficients. ``xi`` takes the scalar ``x``;
# ``codec(y, z)`` takes a vector predictor ``z`` (here the same single column).
fig, axes = plt.subplots(1, len(shapes), figsize=(12, 3), sharex=True)
for ax, (name, y) in zip(axes, shapes.items()):
    ax.scatter(x, y, s=4, alpha=0.6)
    ax.set_title(
        f"{name}\nxi = {xi(x, y).statistic:.2f}, "
        f"T = {codec(y, x).statistic:.2f}\nPearson = {np.corrcoef(x, y)[0, 1]:.2f}",
        fontsize=9,
    )
fig.tight_layout()

# %%
# xi comes with a p-value against independence; it unpacks like
# :func:`scipy.stats.chatterjeexi`.
statistic, pvalue = xi(x, shapes["parabola"])
print(f"parabola: xi = {statistic:.3f}, p = {pvalue:.2g}")
statistic, pvalue = xi(x, shapes["independent"])
print(f"independent: xi = {statistic:.3f}, p = {pvalue:.2g}")

# %%
# Conditional dependence
# ----------------------
# T_n(Y, Z | X) asks whether ``z`` adds to ``x`` for predicting ``y``. Here ``y``
# depends on ``x`` and ``z`` together; ``w`` is a noisy copy of ``x`` and adds nothing
# once ``x`` is known.
z = rng.uniform(-1, 1, size=n)
w = x + 0.05 * rng.normal(size=n)
y = x * z + 0.05 * rng.normal(size=n)
print(f"T(y, z)     = {codec(y, z).statistic:.3f}   (z alone says little)")
print(f"T(y, z | x) = {codec(y, z, x).statistic:.3f}   (but adds a lot to x)")
print(f"T(y, w | x) = {codec(y, w, x).statistic:.3f}   (w adds nothing to x)")
