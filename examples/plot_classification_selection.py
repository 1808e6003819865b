"""
Selecting features for a classifier
===================================

Class labels have no order: ``"benign"`` is not larger than ``"malignant"``. A
``FOCISelector`` compares a categorical target by class membership only (the
discrete-kernel version of the coefficient), so string labels work as they are and
renaming or renumbering the classes changes nothing. Here it selects features of
scikit-learn's breast cancer data inside a cross-validated pipeline, beside
``SelectKBest(mutual_info_classif)`` given the same number of features.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, mutual_info_classif
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from chatterjee import FOCISelector

data = load_breast_cancer()
X = data.data
labels = data.target_names[data.target]          # "malignant" / "benign" strings
print(labels[:5])

# %%
# FOCI picks its own number of features (it stops when no candidate adds
# dependence). The names of the picks, in order:
selector = FOCISelector(random_state=0).fit(X, labels)
k = selector.support_.sum()
print(k, "features:", data.feature_names[selector.selected_features_].tolist())

# %%
# The same selection whatever the classes are called:
renamed = np.where(labels == "benign", "class A", "class B")
coded = (labels == "malignant").astype(int)
for target in (renamed, coded):
    other = FOCISelector(random_state=0).fit(X, target)
    print(np.array_equal(other.selected_features_, selector.selected_features_))

# %%
# Cross-validated accuracy of a random forest on FOCI's features and on the k
# features with the highest mutual information, each selected inside the folds.
forest = RandomForestClassifier(n_estimators=100, random_state=0)
folds = StratifiedKFold(5, shuffle=True, random_state=0)
pipelines = {
    "FOCI": make_pipeline(FOCISelector(random_state=0), forest),
    f"mutual information, k = {k}": make_pipeline(
        SelectKBest(lambda X, y: mutual_info_classif(X, y, random_state=0), k=k), forest),
    "all 30 features": forest,
}
scores = {name: cross_val_score(pipe, X, labels, cv=folds) for name, pipe in pipelines.items()}
for name, values in scores.items():
    print(f"{name}: {values.mean():.3f} ({values.std():.3f})")

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.boxplot(list(scores.values()), orientation="horizontal")
ax.set_yticks(range(1, len(scores) + 1), list(scores))
ax.set_xlabel("5-fold accuracy")
fig.tight_layout()

# %%
# ``max_features`` sets the number of features, so it can be tuned like ``k``:
# ``GridSearchCV(pipeline, {"fociselector__max_features": [2, 4, 8]})``.
