"""Training data in the three forms users hold it, behind one small interface."""

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["TrainingData", "as_tensors"]


class TrainingData:
    """Indexed access to ``(inputs, targets)`` given as tensors, a Dataset or a DataLoader.

    Parameters
    ----------
    data : tuple of (Tensor, Tensor), torch.utils.data.Dataset or DataLoader
        The training set. A DataLoader contributes its ``dataset`` (its sampler and
        shuffling are ignored: unlearning addresses samples by their index in the
        dataset) and its ``batch_size`` as the evaluation batch size.
    batch_size : int, optional
        Samples per batch when the whole set is swept (loss, gradient, curvature).
        Defaults to the DataLoader's batch size, else 1024.
    """

    def __init__(self, data, *, batch_size=None):
        loader_batch = None
        if isinstance(data, DataLoader):
            loader_batch = data.batch_size
            data = data.dataset
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(
                isinstance(part, torch.Tensor) for part in data):
            inputs, targets = data
            if inputs.shape[0] != targets.shape[0]:
                raise ValueError(
                    f"inputs and targets have {inputs.shape[0]} and {targets.shape[0]} "
                    "rows; they must have the same number")
            self._tensors = (inputs, targets)
            self._dataset = None
            n_samples = inputs.shape[0]
        elif isinstance(data, Dataset):
            try:
                n_samples = len(data)
            except TypeError as error:
                raise TypeError("the training Dataset must define __len__") from error
            self._tensors = None
            self._dataset = data
        else:
            raise TypeError(
                "train_data must be an (inputs, targets) pair of tensors, a "
                f"torch.utils.data.Dataset or a DataLoader; got {type(data).__name__}")
        if n_samples < 2:
            raise ValueError(f"train_data has {n_samples} sample(s); at least 2 are needed")
        self.n_samples = int(n_samples)
        self.batch_size = int(batch_size or loader_batch or 1024)

    def __len__(self):
        return self.n_samples

    def get(self, indices):
        """The ``(inputs, targets)`` tensors of the samples at ``indices`` (1-D int)."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if self._tensors is not None:
            inputs, targets = self._tensors
            return inputs[indices], targets[indices]
        items = [self._dataset[int(i)] for i in indices]
        inputs = torch.stack([torch.as_tensor(item[0]) for item in items])
        targets = torch.stack([torch.as_tensor(item[1]) for item in items])
        return inputs, targets

    def batches(self, indices):
        """Yield ``(inputs, targets)`` over ``indices`` in batches of ``batch_size``."""
        indices = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        for start in range(0, indices.numel(), self.batch_size):
            yield self.get(indices[start:start + self.batch_size])

    def targets(self):
        """All targets, in dataset order (used by class removal)."""
        if self._tensors is not None:
            return self._tensors[1]
        return torch.stack([torch.as_tensor(self._dataset[i][1])
                            for i in range(self.n_samples)])


def as_tensors(data):
    """All of ``data`` (any form :class:`TrainingData` takes) as ``(inputs, targets)``."""
    data = data if isinstance(data, TrainingData) else TrainingData(data)
    return data.get(torch.arange(data.n_samples))
