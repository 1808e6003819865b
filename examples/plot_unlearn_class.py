"""
Forgetting a class without retraining
=====================================

A small network trained on scikit-learn's 8x8 digits is asked to forget every image
of the digit 0. :class:`chatterjee.unlearn.Unlearner` removes a whole class by refitting
the network's output layer on the retained images' features; we compare the result
with the gold standard, a model retrained without those images.

This example needs torch: from a clone of the repository, ``pip install -e ".[torch]"``
(the package is not on PyPI).
"""

import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from chatterjee.unlearn import Unlearner
from chatterjee.unlearn.baselines import retrain, train
from chatterjee.unlearn.metrics import accuracy, average_gap, evaluate

torch.set_num_threads(1)
digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.2, random_state=0)
train_data = (torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train))
test_data = (torch.tensor(X_test, dtype=torch.float32), torch.tensor(y_test))


def make_model():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


loss_fn = nn.CrossEntropyLoss()
recipe = {"weight_decay": 5e-4, "epochs": 40, "batch_size": 64, "lr": 3e-3}
torch.manual_seed(0)
model = make_model()
train(model, loss_fn, train_data, random_state=0, **recipe)
original = copy.deepcopy(model)

# %%
# Forget class 0
# --------------
# ``forget_class`` removes every training image with that label in one call. A whole
# class is too large a change for a local (Newton) model of the network: the Unlearner
# refits the last layer alone on the features of the retained images, a convex problem
# whose optimum is where retraining puts that layer, and leaves the layers below as they
# are. ``weight_decay`` must be the coefficient the model was trained with.

unlearner = Unlearner(model, loss_fn, train_data, weight_decay=recipe["weight_decay"],
                      random_state=0)
report = unlearner.forget_class(0)
print(f"{len(report.indices)} images removed in {report.timings['total']:.2f} s "
      f"({report.passes[0]['solver']}, {report.n_parameters} parameters); removed loss "
      f"{report.removed_loss_before:.3f} -> {report.removed_loss_after:.1f}")

start = time.perf_counter()
retrained = retrain(make_model, loss_fn, train_data, report.indices, random_state=1,
                    **recipe)
print(f"retraining: {time.perf_counter() - start:.1f} s")

# %%
# Compare with retraining
# -----------------------
# Per-class test accuracy of the three models, and the metrics of unlearning
# benchmarks: accuracy on the forgotten, retained and test images and the efficacy of
# a membership-inference attack. The target of each metric is the retrained model's
# value; ``average_gap`` is the mean distance to it, in points.

removed = torch.tensor(report.indices)
keep = torch.ones(len(y_train), dtype=torch.bool)
keep[removed] = False
sets = ((train_data[0][removed], train_data[1][removed]),
        (train_data[0][keep], train_data[1][keep]), test_data)
reference = evaluate(retrained, *sets)
models = {"original": original, "unlearned": model, "retrained": retrained}
for name, candidate in models.items():
    scores = evaluate(candidate, *sets)
    print(f"{name:>10}: forget {scores['forget_accuracy']:.2f}, retain "
          f"{scores['retain_accuracy']:.3f}, test {scores['test_accuracy']:.3f}, MIA "
          f"{scores['mia_efficacy']:.2f}, average gap {average_gap(scores, reference):.2f}")

fig, ax = plt.subplots(figsize=(8, 3.2))
width = 0.27
for k, (name, candidate) in enumerate(models.items()):
    per_class = [accuracy(candidate, (test_data[0][test_data[1] == c],
                                      test_data[1][test_data[1] == c])) for c in range(10)]
    ax.bar(np.arange(10) + (k - 1) * width, per_class, width, label=name)
ax.set(xlabel="digit", ylabel="test accuracy", xticks=range(10), ylim=(0, 1.3),
       title="Per-class test accuracy after forgetting the digit 0")
ax.legend(loc="upper center", ncol=3)
fig.tight_layout()
plt.show()
