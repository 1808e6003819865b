"""
FOCI on the vignette: the score path
====================================

The example of the R FOCI vignette: ``y = X0 X1 + sin(X0 X2) + X3^2`` with 100
independent normal features, of which only the first four matter. FOCI picks one
feature at a time, the one that adds the most to T_n(Y, X_S), and stops when
nothing adds.
"""

import matplotlib.pyplot as plt

from chatterjee import foci
from chatterjee.datasets import make_foci_vignette

X, y = make_foci_vignette(n_samples=2000, n_features=100, random_state=0)
result = foci(X, y, random_state=0)
print("selected columns, in pick order:", result.selected)
print("T_n(Y, X_S) after each pick:", result.scores.round(3))
print("gain of each pick, T_n(Y, X_j | X_S):", result.gains.round(3))

# %%
# The score path: T_n(Y, X_S) after each step, labelled by the feature added. X3
# alone explains the most (X3^2 is a term of its own); X1 and X2 are useless
# without X0, so they come after it.
ax = result.plot()
ax.set_ylim(0, 1)
plt.tight_layout()

# %%
# With ``stop=False`` FOCI keeps ranking features past the stop rule: the score
# stops rising (and falls) once only noise columns are left.
ranked = foci(X, y, stop=False, max_features=8, random_state=0)
fig, ax = plt.subplots(figsize=(6, 3.5))
ranked.plot(ax=ax)
ax.axvline(len(result.selected) + 0.5, color="C3", linestyle="--", label="FOCI stops")
ax.legend()
fig.tight_layout()
