"""Perturbations of the samples to remove, and the (activation, loss) table they give.

Mehta et al. perturb a sample, pass the copies through the network and record, for
each copy, the loss (the response) and every unit's activation (the candidates):
L-FOCI on that table finds the slices the sample's loss depends on.
"""

import torch

from .curvature import check_finite
from .slices import record_activations

__all__ = ["gaussian_perturbation", "perturbation_table", "token_replacement"]


def gaussian_perturbation(scale):
    """Perturb by adding ``N(0, scale^2)`` noise to every input entry.

    Parameters
    ----------
    scale : float
        Standard deviation of the noise, in the units of the inputs.

    Returns
    -------
    callable
        ``perturb(inputs, n_copies, generator)`` → Tensor of shape
        ``(n_copies, *inputs.shape)``.
    """
    if not scale > 0:
        raise ValueError(f"the perturbation scale must be > 0, got {scale!r}")

    def perturb(inputs, n_copies, generator):
        noise = torch.randn((n_copies, *inputs.shape), generator=generator,
                            dtype=inputs.dtype)
        return inputs.unsqueeze(0) + scale * noise.to(inputs.device)
    return perturb


def token_replacement(vocab_size, *, rate=0.15, protected=()):
    """Perturb token sequences by replacing each token, with probability ``rate``,
    by one drawn uniformly from the vocabulary.

    Parameters
    ----------
    vocab_size : int
        Tokens are drawn from ``range(vocab_size)`` minus ``protected``.
    rate : float, default=0.15
        Probability of replacing each position.
    protected : sequence of int, default=()
        Token ids never replaced and never drawn (padding, class tokens).

    Returns
    -------
    callable
        ``perturb(inputs, n_copies, generator)`` for integer inputs.
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate!r}")
    protected = torch.as_tensor(sorted(set(protected)), dtype=torch.long)
    allowed = torch.ones(vocab_size, dtype=torch.bool)
    allowed[protected] = False
    choices = torch.nonzero(allowed)[:, 0]
    if choices.numel() == 0:
        raise ValueError("every token is protected: nothing to replace with")

    def perturb(inputs, n_copies, generator):
        copies = inputs.unsqueeze(0).expand(n_copies, *inputs.shape).clone()
        replace = torch.rand(copies.shape, generator=generator) < rate
        replace &= ~torch.isin(copies.cpu(), protected)
        drawn = choices[torch.randint(choices.numel(), copies.shape, generator=generator)]
        copies[replace.to(copies.device)] = drawn[replace].to(copies.device, copies.dtype)
        return copies
    return perturb


def perturbation_table(model, loss_fn, layers, inputs, targets, perturb, n_copies,
                       generator, *, position_mask=None, batch_size=1024):
    """Losses and activations of ``n_copies`` perturbed versions of a set of samples.

    Every copy perturbs all k samples at once; a copy's response is the mean loss over
    the k samples and its features are the activations averaged over them (for k = 1,
    the sample's own).

    Parameters
    ----------
    model, loss_fn
        The model (in eval mode) and the mean-reduced loss.
    layers : dict
        :attr:`SliceMap.layers`.
    inputs, targets : Tensor
        The k samples to remove (leading dimension k).
    perturb : callable
        ``perturb(inputs, n_copies, generator)`` → ``(n_copies, k, ...)``.
    n_copies : int
    generator : torch.Generator
    position_mask : callable, optional
        ``position_mask(inputs) -> bool Tensor (batch, positions)``: positions that
        count when a linear layer's activations are averaged over a sequence.
    batch_size : int
        Copies times samples per forward pass.

    Returns
    -------
    activations : Tensor of shape (n_copies, n_columns)
    losses : Tensor of shape (n_copies,)
    column_slices : list of Slice

    Raises
    ------
    FloatingPointError
        If a loss is not finite.
    """
    k = inputs.shape[0]
    copies = perturb(inputs, n_copies, generator)
    if copies.shape[:2] != (n_copies, k):
        raise ValueError(f"the perturbation returned shape {tuple(copies.shape)}; expected "
                         f"({n_copies}, {k}, ...)")
    flat = copies.reshape(n_copies * k, *copies.shape[2:])
    per_batch = max(1, batch_size // k) * k
    activations, losses, column_slices = [], [], None
    with torch.no_grad():
        for start in range(0, flat.shape[0], per_batch):
            chunk = flat[start:start + per_batch]
            mask = position_mask(chunk) if position_mask is not None else None
            values, slices, outputs = record_activations(model, layers, chunk,
                                                          position_mask=mask)
            if column_slices is None:
                column_slices = slices
            elif slices != column_slices:
                raise ValueError("the model called its layers differently on different "
                                 "batches; activations cannot be tabulated")
            copies_here = chunk.shape[0] // k
            activations.append(values.reshape(copies_here, k, -1).mean(1))
            outputs = outputs.reshape(copies_here, k, *outputs.shape[1:])
            losses.append(torch.stack([loss_fn(out, targets) for out in outputs]))
    losses = check_finite(torch.cat(losses), "loss of the perturbed samples")
    return torch.cat(activations), losses, column_slices

