"""Parameter slices: one per output unit of a linear or convolutional layer.

A slice is the set of parameters that produce one activation: the weight row and
bias entry of an output unit of :class:`torch.nn.Linear`, the filter and bias entry of
an output channel of a convolution. Slices are keyed by the module's name in
``model.named_modules()`` and the unit index, never by the module's ``repr`` (two
identically configured layers keep separate slices), and their parameters are
addressed through ``model.named_parameters()`` names.
"""

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Slice", "SliceMap", "record_activations"]

HOOKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, order=True)
class Slice:
    """One output unit of a layer: ``module`` (its name in the model) and ``unit``."""

    module: str
    unit: int

    def __str__(self):
        return f"{self.module}[{self.unit}]"


@dataclass(frozen=True)
class _Layer:
    name: str
    module: nn.Module
    weight: str
    bias: str | None
    n_units: int
    unit_size: int
    hooked: nn.Module        # the module whose forward hook sees this layer's output


def _attention_projections(model):
    """``nn.MultiheadAttention`` applies its ``out_proj`` without calling it: map each
    such projection to the attention module, whose first output is the projection's."""
    return {id(module.out_proj): module for module in model.modules()
            if isinstance(module, nn.MultiheadAttention)}


class SliceMap:
    """The slices of a model and the parameter entries behind each.

    Parameters
    ----------
    model : torch.nn.Module
        Its :class:`~torch.nn.Linear` and ``Conv1d/2d/3d`` layers with trainable
        weights are sliced (the output projection of :class:`~torch.nn.MultiheadAttention`
        included); every other parameter (BatchNorm, embeddings, layer norms, the packed
        query/key/value projection of attention) is never selected or updated.

    Raises
    ------
    ValueError
        If the model has no such layer.
    """

    def __init__(self, model):
        names = {id(param): name for name, param in model.named_parameters()}
        attention = _attention_projections(model)
        layers = []
        for name, module in model.named_modules():
            if not isinstance(module, HOOKABLE) or not module.weight.requires_grad:
                continue
            bias = module.bias
            layers.append(_Layer(
                name=name, module=module, weight=names[id(module.weight)],
                bias=names[id(bias)] if bias is not None and bias.requires_grad else None,
                n_units=module.weight.shape[0],
                unit_size=module.weight[0].numel() + (bias is not None and bias.requires_grad),
                hooked=attention.get(id(module), module)))
        if not layers:
            raise ValueError(
                "the model has no trainable nn.Linear or nn.Conv1d/2d/3d layer: there are "
                "no parameter slices to unlearn with")
        self.layers = {layer.name: layer for layer in layers}
        self.slices = [Slice(layer.name, unit) for layer in layers
                       for unit in range(layer.n_units)]
        self._position = {s: i for i, s in enumerate(self.slices)}

    def __len__(self):
        return len(self.slices)

    def index(self, item):
        """Position of a :class:`Slice` (or a ``(module, unit)`` pair) in :attr:`slices`."""
        key = item if isinstance(item, Slice) else Slice(*item)
        try:
            return self._position[key]
        except KeyError:
            raise ValueError(f"{key} is not a slice of this model (modules with slices: "
                             f"{', '.join(self.layers)})") from None

    def size(self, item):
        """Number of parameters of one slice."""
        return self.layers[self.slices[self.index(item)].module].unit_size

    @property
    def n_parameters(self):
        """Number of parameters in all slices together."""
        return sum(layer.n_units * layer.unit_size for layer in self.layers.values())

    def block(self, slices):
        """The parameter entries of ``slices``: a :class:`Block`."""
        rows = {}
        for item in slices:
            layer = self.layers[self.slices[self.index(item)].module]
            unit = item.unit if isinstance(item, Slice) else item[1]
            for param in (layer.weight, layer.bias):
                if param is not None:
                    rows.setdefault(param, set()).add(unit)
        return Block({name: torch.tensor(sorted(units)) for name, units in rows.items()})


class Block:
    """Rows of named parameters, flattened into one vector in a fixed order.

    Shared parameters (one tensor used by two layers) appear once.

    Parameters
    ----------
    rows : dict of str to LongTensor
        For each parameter name, the sorted indices along its first dimension.
    """

    def __init__(self, rows):
        self.rows = rows

    def size(self, params):
        """Length of the flat block vector for the parameter dict ``params``."""
        return sum(params[name][rows].numel() for name, rows in self.rows.items())

    def gather(self, params):
        """The block's entries of ``params`` (a name-to-tensor dict), as one vector."""
        return torch.cat([params[name][rows].reshape(-1) for name, rows in self.rows.items()])

    def scatter(self, params, theta):
        """A copy of ``params`` with the block replaced by ``theta`` (differentiable).

        ``theta`` is split (not sliced), so a backward pass gives each piece its own
        gradient instead of a full-length one per parameter; a parameter whose rows
        are all in the block is ``theta``'s piece itself, without a copy.
        """
        out = dict(params)
        counts = [len(rows) * params[name][0].numel() for name, rows in self.rows.items()]
        for (name, rows), piece in zip(self.rows.items(), theta.split(counts)):
            base = params[name]
            piece = piece.reshape((len(rows),) + tuple(base.shape[1:]))
            out[name] = piece if len(rows) == base.shape[0] else base.index_put((rows,), piece)
        return out

    def write(self, model, theta):
        """Write ``theta`` into the model's parameters, in place (row by row: no copy
        of a whole parameter)."""
        params = dict(model.named_parameters())
        counts = [len(rows) * params[name][0].numel() for name, rows in self.rows.items()]
        with torch.no_grad():
            for (name, rows), piece in zip(self.rows.items(), theta.split(counts)):
                target = params[name]
                target.index_copy_(0, rows.to(target.device),
                                   piece.reshape((len(rows),) + tuple(target.shape[1:]))
                                   .to(target.dtype))


@contextlib.contextmanager
def unfused_attention():
    """Attention by plain operations: no fused fast path, no fused kernel.

    The fused fast path of transformer layers (eval mode, no autograd) calls no
    submodule, so their hooks would not fire; the fused kernels of
    ``torch.nn.functional.scaled_dot_product_attention`` have no forward-mode
    derivative (Jacobian-vector products fail). Both are turned off: attention is
    computed by its mathematical definition, with the same values.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mha = torch.backends.mha
    enabled = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        mha.set_fastpath_enabled(enabled)


@contextlib.contextmanager
def preserved_modes(model):
    """Restore every module's own ``training`` flag on exit, on success and failure.

    ``model.train(was_training)`` would not do: it is recursive, so a module the user
    froze in ``eval()`` inside a training model (a BatchNorm, a dropout layer) would come
    back in training mode. The body may switch modes freely.

    Parameters
    ----------
    model : torch.nn.Module
        Its modules' ``training`` flags, as found on entry, are set back on exit.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn.slices import preserved_modes
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    >>> _ = model[1].eval()
    >>> with preserved_modes(model):
    ...     _ = model.train()
    >>> model.training, model[1].training
    (True, False)
    """
    modes = {module: module.training for module in model.modules()}
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def record_activations(model, layers, inputs, *, position_mask=None):
    """Per-unit activations of ``layers`` on a batch, one column per unit and call.

    Outputs are taken before any nonlinearity that follows the layer (the layer's own
    output). Positions (the spatial dimensions of a convolution, the token dimension of
    a linear layer applied to a sequence) are averaged, leaving out positions where
    ``position_mask`` is False. A module called several times in one forward pass
    contributes one set of columns per call; a module never called contributes none.

    Parameters
    ----------
    model : torch.nn.Module
    layers : dict of str to _Layer
        From :attr:`SliceMap.layers`.
    inputs : Tensor
        A batch of model inputs.
    position_mask : Tensor of bool, shape (batch, positions), optional
        Which sequence positions count (padding excluded).

    Returns
    -------
    activations : Tensor of shape (batch, n_columns)
    column_slices : list of Slice
        The slice each column belongs to.
    outputs : Tensor
        The model's output on ``inputs``.
    """
    recorded = []

    def hook_for(layer):
        def hook(module, args, output):
            if layer.hooked is not layer.module:              # attention: (output, weights)
                output = output[0]
                if not layer.hooked.batch_first and output.ndim == 3:
                    output = output.transpose(0, 1)
            if isinstance(layer.module, nn.Linear):
                values = output.reshape(output.shape[0], -1, output.shape[-1])
                if position_mask is not None and values.shape[1] == position_mask.shape[1]:
                    weights = position_mask.to(values.dtype).unsqueeze(-1)
                    values = (values * weights).sum(1) / weights.sum(1).clamp_min(1)
                else:
                    values = values.mean(1)
            else:
                values = output.reshape(output.shape[0], output.shape[1], -1).mean(-1)
            recorded.append((layer.name, values.detach()))
        return hook

    handles = [layer.hooked.register_forward_hook(hook_for(layer))
               for layer in layers.values()]
    try:
        with unfused_attention():
            outputs = model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    columns = [values for _, values in recorded]
    column_slices = [Slice(name, unit) for name, values in recorded
                     for unit in range(values.shape[1])]
    if not columns:
        raise ValueError("no sliced layer was called in the model's forward pass")
    return torch.cat(columns, dim=1), column_slices, outputs
