"""The Unlearner: select parameter slices, take a block Newton step, add noise."""

import collections
import time
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import torch

from .._validation import check_random_state
from ._data import TrainingData
from .curvature import (
    ACTIVATION_BUDGET,
    BlockObjective,
    SubspaceObjective,
    activation_bytes,
    check_finite,
    conjugate_gradients,
    damped_newton_step,
    forward_flops,
    layer_directions,
)
from .head import output_layer, refit_output_layer
from .kfac import EXACT_FISHER_CLASSES, KroneckerFactors, KroneckerPreconditioner
from .noise import sekhari_noise_std
from .perturb import gaussian_perturbation, perturbation_table, token_replacement
from .select import SELECTIONS, cap_slices, check_explicit, lfoci_slices, rank_by_gradient
from .slices import SliceMap, preserved_modes

__all__ = ["ForgetReport", "Unlearner"]


@dataclass
class ForgetReport:
    """What one :meth:`Unlearner.forget` call did.

    Attributes
    ----------
    indices : list of int
        The removed training samples.
    slices : list of Slice
        Every slice updated: the blocks chosen, in the order first chosen, then (with
        ``acceleration="subspace"``) the other slices the extra directions moved.
    n_parameters : int
        Parameters updated (the union over passes).
    passes : list of dict
        Per pass: ``slices`` (the block chosen), ``n_parameters`` (entries changed),
        ``n_directions`` (extra directions of ``acceleration="subspace"``), ``solver``
        (``"cholesky"``, ``"cg"``, or ``"output layer (L-BFGS)"``: the refit of a class
        removal, see :meth:`Unlearner.forget_class`),
        ``damping``, ``curvature_min``, ``accepted``, ``objective_before``,
        ``objective_after`` (the objective the step solves; with
        ``step_control="subsample"``, the subsample's), ``retained_gradient_norm`` and
        ``target_gradient_norm`` (the norm of that objective's gradient; the same for
        ``objective="retained"``), after the pass (nan after the last pass with
        ``step_control="subsample"``: not computed, as nothing else needs it).
    removed_loss_before, removed_loss_after : float
        Mean loss of the removed samples.
    retained_gradient_norm_before, retained_gradient_norm_after : float
        Norm of the retained objective's gradient over all sliced parameters (after
        noise, if any); nan where ``step_control="subsample"`` did not compute it.
    noise_std : float
        Standard deviation of the noise added to the updated parameters (0 if none).
    retrain_due : bool or None
        From the :class:`~chatterjee.unlearn.noise.RemovalBudget`, if one was given.
    timings : dict of str to float
        Seconds spent selecting (``"selection"``, perturbations included), on
        curvature and the solve (``"newton"``), and in all (``"total"``); and what the
        call cost in passes over samples, whatever the machine: ``"forward_samples"``
        (losses without gradient: checks, perturbed copies), ``"backward_samples"``
        (gradients; K-FAC factors, one per output cotangent; a dense Gauss-Newton
        block, one per model output) and ``"product_samples"`` (one per sample and
        curvature-vector product: a forward pass, a Jacobian-vector product and a
        backward pass), and ``"cached_bytes"``, what the Unlearner keeps between calls
        (the retained gradient sum and the K-FAC factors). See the cost model in the
        documentation.
    """

    indices: list
    slices: list = field(default_factory=list)
    n_parameters: int = 0
    passes: list = field(default_factory=list)
    removed_loss_before: float = float("nan")
    removed_loss_after: float = float("nan")
    retained_gradient_norm_before: float = float("nan")
    retained_gradient_norm_after: float = float("nan")
    noise_std: float = 0.0
    retrain_due: bool | None = None
    timings: dict = field(default_factory=dict)


class Unlearner:
    """Remove training samples from a trained PyTorch model by block Newton steps.

    The training objective is ``F(w) = mean_i loss(w, z_i) + (weight_decay / 2)
    ||w||^2``. Removing a set of k samples moves the selected parameters P by a Newton
    step, ``w_P <- w_P + (1/(n-k)) H_PP^{-1} sum_j grad_P (loss_j + (weight_decay/2)
    ||w||^2)``, with ``H_PP`` the exact block Hessian of the retained objective
    (Mehta et al., CVPR 2022, algorithm 1, without its finite-difference Hessian); for
    a model at its optimum this is ``w_P - H_PP^{-1} grad_P F_retained(w)`` (see
    ``objective``). The other parameters do not change. Which parameters P are updated is the ``selection`` rule's choice: by
    default L-FOCI finds the slices (output units of linear and convolutional layers)
    whose activations the removed samples' loss depends on, under perturbations of
    those samples.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model, with float32 or float64 parameters. It is changed in place
        by :meth:`forget`.
    loss_fn : callable
        ``loss_fn(outputs, targets)``: a mean over the batch (as
        ``torch.nn.CrossEntropyLoss()``), the loss the model was trained with.
    train_data : (Tensor, Tensor), Dataset or DataLoader
        The training set; samples are addressed by their index in it.
    weight_decay : float, default=0.0
        The L2 coefficient of the training objective.
    selection : {"lfoci", "gradient", "random", "full"} or list of Slice, default="lfoci"
        ``"lfoci"``: slices L-FOCI selects from perturbed activations.
        ``"gradient"``: slices with the largest gradient norm of the removed loss.
        ``"random"``: random slices. ``"full"``: every slice (a full Newton step on all
        linear and convolutional parameters). A list of :class:`Slice` (or
        ``(module_name, unit)`` pairs): exactly those.
    compute : float, default=0.1
        What one pass may cost, in training epochs (a sample's gradient counts one, a
        curvature-vector product two): the curvature is averaged over at most an
        eighth of ``compute * n`` samples (and ``curvature_samples``), the step is
        checked on twice as many, a dense block is built only if that fits, and the
        conjugate-gradient iterations fill the rest (at least one: the K-FAC step with
        an exact line search on the sample). The K-FAC factors take a quarter of a pass's
        budget when computed. A model whose pass costs little whatever the share of
        the epoch gets the samples whose forward passes take 2^33 floating-point
        operations (a few CPU-seconds), if that is more.
    max_passes : int, default=1
        Select-and-update passes per removal. The first pass uses the ``selection``
        rule; each later pass updates the slices where the retained objective's
        gradient is largest (the Gauss-Southwell rule of block coordinate descent,
        under the same caps), until the retained gradient norm is at most ``tol``.
        With ``"full"`` or an explicit list, every pass updates the same block.
    noise : None, float or "sekhari", default=None
        Gaussian noise added to the updated parameters after the passes: a standard
        deviation, or Sekhari et al.'s calibration for the removals so far with
        ``epsilon``, ``delta`` and ``weight_decay`` (see
        :mod:`chatterjee.unlearn.noise`; a certificate only for strongly convex
        models).
    random_state : None, int or numpy.random.Generator, default=None
        Seeds perturbations, L-FOCI, random selections, curvature subsamples and noise.

    Other Parameters
    ----------------
    n_perturbations : int, default=256
        Perturbed copies per removal for ``"lfoci"``. A copy perturbs every removed
        sample, or, when their forward passes would cost more than a pass's
        ``compute`` (three forward passes for a backward one), a random subset of them
        drawn once per call.
    perturbation : float or callable, default=0.1
        A float adds Gaussian noise with that standard deviation times the standard
        deviation of the training inputs; for integer inputs (token ids) it is the share
        of tokens replaced by random ones (:func:`~chatterjee.unlearn.token_replacement`
        over the vocabulary of the model's first ``nn.Embedding``, its ``padding_idx``
        left alone). A callable ``perturb(inputs, n_copies,
        generator)`` returns ``(n_copies, *inputs.shape)`` perturbed copies (see
        :func:`~chatterjee.unlearn.token_replacement` for token inputs).
    position_mask : callable, optional
        ``position_mask(inputs) -> bool Tensor (batch, positions)``: the sequence
        positions that count when activations are averaged (padding excluded).
    max_slices : int, optional
        Cap on the slices one pass updates (``"lfoci"``, ``"gradient"``,
        ``"random"``).
    max_parameters : int or float, default=0.3
        Cap on the parameters one pass updates: a count, or a fraction in (0, 1] of
        all sliced parameters, and then at most 2^22 (4,194,304: the solve's few
        float64 vectors of the block stay near 200 MB). Slices are taken in the rule's
        order; one that would break the cap is skipped, but the first is always
        taken.
    objective : {"influence", "retained"}, default="influence"
        What the Newton steps solve. ``"retained"``: the optimum of the retained
        objective, ``grad F_retained(w) = 0``. ``"influence"``: remove the samples'
        influence only, ``(n - k) grad F_retained(w) = n grad F(w_0)`` with ``w_0``
        the weights before the removal and F the objective over the n samples not
        yet removed: the training residual of the sum-form objective is kept. The
        two agree for a model trained to an optimum (``grad F(w_0) = 0``); for a model
        stopped before its optimum (deep networks trained by SGD), ``"retained"`` also
        trains it further on the retained data, while the first step of
        ``"influence"`` is exactly the influence-function update
        ``w + (1/(n-k)) H^-1 sum_j (grad loss_j(w) + weight_decay w)``.
    curvature : {"gauss_newton", "exact"}, default="gauss_newton"
        The generalized Gauss-Newton matrix (positive semi-definite for a convex loss,
        the Hessian for a model linear in its parameters), or the block Hessian.
    curvature_samples : int or None, default=512
        Average the curvature over at most this many retained samples drawn at random
        (None: all of them, whatever ``compute``). Curvature products then cost a
        bounded amount whatever the size of the training set. The K-FAC factors that
        precondition the conjugate-gradient solve (and give
        ``acceleration="subspace"`` its per-layer directions) are computed once on such
        a sample and reused across passes and calls; they are recomputed once a tenth
        of the samples retained when they were computed has been removed since, or
        when the model was changed outside the Unlearner.
    acceleration : {None, "subspace"}, default=None
        ``"subspace"``: each pass minimizes the quadratic model over the chosen block
        *and* a few directions over all sliced parameters: the removal's earlier steps
        and, per layer, the gradient preconditioned by the Kronecker-factored (K-FAC)
        approximation of each unit's curvature block (linear and convolutional layers;
        the plain gradient for layers without factors; neighbouring layers share a
        direction when memory allows fewer). A block too large for a dense solve enters
        by its own K-FAC-preconditioned Newton step, as one more direction, and the
        pass solves a small dense problem over the directions. Earlier steps make the
        passes a block Krylov method; the per-layer directions are a block-Jacobi
        (per-slice Newton) correction, as a coarse space accelerates a
        domain-decomposition solver. It costs one curvature-vector product per
        direction and makes the passes converge much faster when blocks are coupled
        (the class rows of a softmax), but a pass then moves every sliced parameter,
        each slice outside the block along those few directions only.
    step_control : {None, "retained", "subsample"}, default=None
        Where the passes' gradients are taken and each step is checked (damped or
        shortened until it does not raise the objective). None: ``"subsample"`` with
        ``objective="influence"``, else ``"retained"``. ``"retained"``: on all
        retained samples (a pass over them per trial step and after each pass). ``"subsample"``: on
        ``2 * curvature_samples`` random retained samples drawn once per call: the
        ``curvature_samples`` the curvature is averaged over and as many others, so
        the check also sees samples the quadratic model was not built from. The
        objective is then the subsample's, with its own influence offset, and a call
        costs the removed samples and the subsample, whatever the size of the
        training set. The first influence step needs only the removed samples'
        gradient and is computed as with ``"retained"``; the retained gradient norms
        in the report are nan (unless a ``budget`` needs them). Without
        ``curvature_samples``, or with fewer than twice as many retained samples, it
        is ``"retained"``. Meant for a few samples per call: with many passes (a
        class removal) the check on a subsample damps more than the full one, and
        progress is slower. Needs ``objective="influence"``: the retained objective
        of a subsample has its own optimum, away from the model's.
    tol : float, default=1e-10
        Stop the passes once the gradient norm of the objective solved is at most
        this.
    max_dense : int, default=4096
        Blocks with at most this many parameters, and cheap to build (within the
        pass's ``compute``; with ``curvature_samples=None``, at most 256 curvature
        products, or a Gauss-Newton block of a model with at most 256 outputs per
        sample), are solved with a dense float64 Cholesky factorization; others by
        conjugate gradients on curvature-vector products preconditioned by K-FAC (no
        p x p matrix), to a relative residual of 1e-4 when the curvature is a
        sample's (1e-10 with ``curvature_samples=None``) or until the budget is spent.
    batch_size : int, optional
        Samples per forward pass over the training data (default: the DataLoader's,
        else 1024).
    epsilon, delta : float, default=1.0, 1e-5
        The privacy target of ``noise="sekhari"``.
    budget : RemovalBudget, optional
        Charged with each removal's residual ``n_retained * ||grad F_retained||``;
        the report's ``retrain_due`` says when it is spent.

    Attributes
    ----------
    removed : list of int
        Training indices removed so far.
    n_retained : int
        Training samples left (n decreases with each removal).
    slice_map : SliceMap
        The model's slices.
    reports : list of ForgetReport
        One per successful :meth:`forget`.

    Raises
    ------
    TypeError
        If the model's parameters are not float32 or float64 (float16 and bfloat16
        cannot hold a Newton step: unlearn a ``model.float()`` copy).

    Notes
    -----
    The model is evaluated in ``eval()`` mode throughout (BatchNorm uses its running
    statistics and its parameters are never updated; dropout is off), and each module's
    own mode (``training`` flag) is restored afterwards. BatchNorm running statistics were computed with the removed
    samples and are not recomputed. A failed :meth:`forget` restores the model's
    parameters and buffers bit for bit and leaves the Unlearner's state unchanged: a
    call writes only parameter blocks, each saved just before it is written (no copy
    of the whole model is kept).

    Between calls the Unlearner keeps the retained samples' loss-gradient sum, with the
    state of the model it was computed at, and the next removal downdates it instead of
    passing over the data again. Any in-place change of the model's parameters or
    buffers (an optimizer step, ``load_state_dict``) is noticed and the sum recomputed;
    the training data must not be changed in place between calls.

    Examples
    --------
    >>> import torch
    >>> from chatterjee.unlearn import Unlearner
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> X = torch.randn(200, 5, dtype=torch.float64)
    >>> y = (X[:, 0] > 0).long()
    >>> model = torch.nn.Linear(5, 2).double()
    >>> loss_fn = torch.nn.CrossEntropyLoss()
    >>> opt = torch.optim.LBFGS(model.parameters(), max_iter=200, line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = loss_fn(model(X), y) + 0.5e-2 * sum((p ** 2).sum() for p in model.parameters())
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> u = Unlearner(model, loss_fn, (X, y), weight_decay=1e-2, selection="full",
    ...               random_state=0)
    >>> report = u.forget(3)
    >>> report.removed_loss_after > report.removed_loss_before
    True
    >>> u.n_retained
    199
    """

    def __init__(self, model, loss_fn, train_data, *, weight_decay=0.0, selection="lfoci",
                 compute=0.1, max_passes=1, noise=None, random_state=None,
                 # other parameters: what is selected
                 n_perturbations=256, perturbation=0.1, position_mask=None,
                 max_slices=None, max_parameters=0.3,
                 # the step
                 objective="influence", curvature="gauss_newton", curvature_samples=512,
                 acceleration=None, step_control=None, tol=1e-10, max_dense=4096,
                 batch_size=None,
                 # privacy
                 epsilon=1.0, delta=1e-5, budget=None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        low = sorted({str(p.dtype) for p in model.parameters()
                      if p.dtype not in (torch.float32, torch.float64)})
        if low:
            # a Newton step is below half precision's resolution, and its curvature
            # overflows: the result would be silently wrong
            raise TypeError(f"the model's parameters are {', '.join(low)}; the Unlearner "
                            "needs float32 or float64: unlearn a model.float() copy")
        if not callable(loss_fn):
            raise TypeError("loss_fn must be callable: loss_fn(outputs, targets)")
        self.model, self.loss_fn = model, loss_fn
        self.data = TrainingData(train_data, batch_size=batch_size)
        with preserved_modes(model):        # a forward pass must not touch BatchNorm
            model.eval()
            first = self.data.get([0])[0]
            self._sample_bytes = max(1, activation_bytes(model, first))
            self._sample_flops = forward_flops(model, first)
            self.slice_map = SliceMap(model)
            self._output_layer = output_layer(model, self.slice_map, first)
        if batch_size is None:              # a batch's activations (with their tangents)
            self.data.batch_size = max(1, min(self.data.batch_size,          # fit the budget
                                              ACTIVATION_BUDGET // (3 * self._sample_bytes)))
        self.weight_decay = _check_real(weight_decay, "weight_decay", low=0.0)
        if isinstance(selection, str):
            if selection not in SELECTIONS:
                raise ValueError(f"selection must be one of {SELECTIONS} or a list of "
                                 f"slices, got {selection!r}")
        else:
            selection = check_explicit(selection, self.slice_map)
        self.selection = selection
        self.n_perturbations = _check_int(n_perturbations, "n_perturbations", low=10)
        self.max_slices = None if max_slices is None else _check_int(
            max_slices, "max_slices", low=1)
        self.max_parameters = self._check_max_parameters(max_parameters)
        if objective not in ("retained", "influence"):
            raise ValueError(f"objective must be 'retained' or 'influence', got {objective!r}")
        self.objective = objective
        if curvature not in ("exact", "gauss_newton"):
            raise ValueError(f"curvature must be 'exact' or 'gauss_newton', got {curvature!r}")
        self.curvature = curvature
        self.curvature_samples = None if curvature_samples is None else _check_int(
            curvature_samples, "curvature_samples", low=1)
        self.compute = _check_real(compute, "compute", low=0.0)
        self.max_passes = _check_int(max_passes, "max_passes", low=1)
        if acceleration not in (None, "subspace"):
            raise ValueError(f"acceleration must be None or 'subspace', got {acceleration!r}")
        self.acceleration = acceleration
        if step_control is None:
            step_control = "subsample" if objective == "influence" else "retained"
        if step_control not in ("retained", "subsample"):
            raise ValueError(f"step_control must be None, 'retained' or 'subsample', "
                             f"got {step_control!r}")
        if step_control == "subsample" and objective != "influence":
            # without the influence offset the subsample's own optimum would be the target
            raise ValueError("step_control='subsample' needs objective='influence'")
        self.step_control = step_control
        self.tol = _check_real(tol, "tol", low=0.0)
        if not (noise is None or noise == "sekhari"
                or (isinstance(noise, Real) and noise >= 0)):
            raise ValueError(f"noise must be None, a standard deviation >= 0 or 'sekhari', "
                             f"got {noise!r}")
        if noise == "sekhari":
            sekhari_noise_std(self.data.n_samples, 1, self.weight_decay, epsilon, delta)
        self.noise, self.epsilon, self.delta, self.budget = noise, epsilon, delta, budget
        self.position_mask = position_mask
        self.max_dense = _check_int(max_dense, "max_dense", low=1)
        self._perturb = self._make_perturbation(perturbation)
        self._rng = check_random_state(random_state)
        self.removed = []
        self.reports = []
        self._retained_sum = None    # (model state, n, retained loss-gradient sum)
        self._kronecker = None       # (samples removed when computed, KroneckerFactors)
        self._own_state = None       # the model's state after our last removal
        self._cost = collections.Counter()   # passes over samples in the current call
        self._written = []           # what the current call overwrote (see _atomic)

    @property
    def n_retained(self):
        return self.data.n_samples - len(self.removed)

    # ----------------------------------------------------------------------------------
    def forget(self, indices):
        """Remove training samples from the model, in place and atomically.

        Any error leaves the model (parameters, buffers, every module's mode) and the
        Unlearner's state unchanged.

        Parameters
        ----------
        indices : int, or list, tuple, range, 1-D array or 1-D tensor of int
            Indices into the training data (one sample, or a batch removed together).

        Returns
        -------
        ForgetReport

        Raises
        ------
        TypeError
            ``indices`` is not an integer or a sequence of integers (a float, bool,
            None, dict, set or string, or a sequence holding one).
        ValueError
            ``indices`` empty or not one-dimensional, an index out of range, repeated
            or already removed, or a removal that would leave no training sample.
        FloatingPointError
            A loss, gradient, curvature or step became non-finite (nan or inf).
        """
        return self._atomic(self._check_indices(indices), whole_class=False)

    def _atomic(self, indices, *, whole_class):
        """:meth:`_forget` under the guarantee that an error changes nothing."""
        self._written = []      # (block, values) the call overwrote: its only writes
        rng_state, cache = self._rng.bit_generator.state, self._retained_sum
        kronecker, own_state = self._kronecker, self._own_state
        unchanged = own_state is not None and self._state() == own_state
        with preserved_modes(self.model):       # a frozen BatchNorm stays in eval()
            try:
                self.model.eval()
                report = self._forget(indices, whole_class=whole_class)
            except BaseException:
                for block, previous in reversed(self._written):
                    block.write(self.model, previous)
                self._rng.bit_generator.state, self._retained_sum = rng_state, cache
                # the values are back bit for bit: the factors stay valid if they were
                self._kronecker = kronecker
                self._own_state = self._state() if unchanged else own_state
                raise
            finally:
                self._written = []
        self.removed.extend(indices)
        self._own_state = self._state()
        self.reports.append(report)
        return report

    def forget_class(self, label):
        """Remove every remaining training sample whose target equals ``label``.

        When the model's output is that of a sliced ``nn.Linear`` layer on (batch,
        features) inputs (a classifier's head), the class is removed by refitting that
        layer alone. The retained objective over its weight and bias, with the features
        below it held fixed, is minimised by L-BFGS (at most 100 iterations) on the
        retained samples' features, computed once (a random subsample of them if they
        would take more than 512 MiB in float64). The objective is the mean loss plus
        the weight decay, or, without weight decay, ``1 / n_retained`` (scikit-learn's
        default penalty for logistic regression: separable features leave the
        unpenalized problem without a minimum). With a convex loss (cross-entropy)
        this is a convex problem. Its optimum
        moves the class's scores far beyond the reach of a local quadratic model of
        the whole network, and close to where retraining puts them; the layers below
        keep what they learnt from the class (a probe of their features could still
        find it). It costs one forward pass over the retained samples; ``selection``,
        ``max_passes`` and ``objective`` do not apply. Without such a layer, the class
        is removed as :meth:`forget` removes samples.

        Parameters
        ----------
        label : int
            A class; the training targets must hold one class label per sample.

        Returns
        -------
        ForgetReport

        Raises
        ------
        TypeError
            ``label`` is not an integer.
        ValueError
            The targets hold more than one value per sample, or no remaining sample
            has the target ``label``; and as :meth:`forget`.
        """
        if isinstance(label, (np.ndarray, torch.Tensor)) and label.ndim == 0:
            label = label.item()
        if not _is_integer(label):
            raise TypeError(f"label must be an integer class label, got {label!r}")
        targets = self.data.targets()
        if targets.numel() != targets.shape[0]:
            raise ValueError("forget_class needs one class label per sample; the targets "
                             f"have shape {tuple(targets.shape)}: pass the indices to forget")
        matches = torch.nonzero(targets.reshape(-1) == label)[:, 0]
        removed = set(self.removed)
        indices = [int(i) for i in matches if int(i) not in removed]
        if not indices:
            raise ValueError(f"no remaining training sample has target {label!r}")
        return self._atomic(self._check_indices(indices), whole_class=True)

    # ----------------------------------------------------------------------------------
    def _forget(self, indices, *, whole_class):
        started = time.perf_counter()
        timings = {"selection": 0.0, "newton": 0.0}
        self._cost = collections.Counter()
        removed = torch.tensor(indices)
        retained = self._retained(indices)
        report = ForgetReport(indices=list(indices))
        report.removed_loss_before = self._mean_loss(removed)
        if whole_class and self._output_layer is not None:
            tick = time.perf_counter()
            report.passes.append(self._refit_output_layer(retained))
            timings["newton"] += time.perf_counter() - tick
            return self._finish(report, removed, retained, report.passes[0]["slices"],
                                timings, started, all_retained=False)
        # step_control="subsample": the curvature on m random retained samples, the
        # gradients and the step check on those and m others: never on all of them
        scope, curvature = retained, None
        m = self._sample_size(len(retained))
        if self.step_control == "subsample" and m is not None and 2 * m <= len(retained):
            drawn = self._rng.choice(len(retained), 2 * m, replace=False)
            curvature = retained[torch.from_numpy(np.sort(drawn[:m]))]
            scope = retained[torch.from_numpy(np.sort(drawn))]
        chosen, offset = None, None
        if self.max_passes == 1 and self.acceleration is None and len(scope) < len(retained):
            # one pass needs the gradients of its block only: select first (the rule
            # does not read them), and take them in the block's coordinates
            tick = time.perf_counter()
            chosen = self._select(removed, None, first_pass=True)
            timings["selection"] += time.perf_counter() - tick
            gradient, offset = self._block_influence(removed, scope, retained, chosen)
        else:
            removed_gradient = self._loss_gradient(removed)
            gradient = self._scope_gradient(scope, retained,
                                            (len(indices), removed_gradient))
            if len(scope) == len(retained):
                report.retained_gradient_norm_before = _norm(gradient)
            if self.objective == "influence":
                # n / (n - k) grad F(w_0) = grad F_r(w_0) + (sum_j grad loss_j
                # + k lambda w_0) / (n - k): the target gradient at w_0 is the influence
                # of the k samples (in place: each is the size of the sliced parameters)
                k, params = len(indices), dict(self.model.named_parameters())
                for name, g in removed_gradient.items():
                    g.add_(params[name].detach(), alpha=self.weight_decay).mul_(
                        k / len(retained))
                offset = {name: g.add_(removed_gradient[name])
                          for name, g in gradient.items()}
                gradient = {name: g.neg_() for name, g in removed_gradient.items()}
            del removed_gradient
        updated, steps = [], []        # steps: the accelerated passes' full steps
        everything = self.slice_map.block(self.slice_map.slices)
        start = (everything.gather(_detached(self.model)).clone()
                 if self.acceleration == "subspace" else None)
        for number in range(self.max_passes):
            if report.passes and report.passes[-1]["target_gradient_norm"] <= self.tol:
                break
            tick = time.perf_counter()
            slices = chosen or self._select(removed, gradient, first_pass=not report.passes)
            timings["selection"] += time.perf_counter() - tick
            tick = time.perf_counter()
            sample = self._curvature_samples(retained) if curvature is None else curvature
            objective = self._objective(scope, slices, offset, sample)
            # what the pass may spend on its solve: the budget less the gradient and
            # step checks on the scope (about 3 backward-equivalents per sample)
            solve_budget = (None if sample is None else
                            max(2 * len(sample), self._pass_budget() - 3 * len(scope)))
            if self.acceleration == "subspace":
                full = self._objective(scope, self.slice_map.slices, offset, sample)
                info = self._subspace_step(objective, full, gradient, steps, retained,
                                           _cg_tolerance(sample), solve_budget)
            else:
                theta = objective.theta
                block_gradient = _in_block(objective.block, gradient).to(theta.dtype)
                preconditioner, iterations = None, _CG_ITERATIONS
                if theta.numel() > self.max_dense or not objective.dense_is_cheap(
                        theta, self.curvature, solve_budget):  # conjugate gradients
                    preconditioner = KroneckerPreconditioner(
                        self._kronecker_factors(retained), self.slice_map,
                        objective.block, objective.params)
                    if solve_budget is not None:    # a product: ~2 backward per sample
                        iterations = max(1, min(iterations,
                                                solve_budget // (2 * len(sample))))
                step, info = damped_newton_step(objective, theta, block_gradient,
                                                kind=self.curvature, max_dense=self.max_dense,
                                                preconditioner=preconditioner,
                                                cg_iterations=iterations,
                                                cg_tolerance=_cg_tolerance(sample),
                                                dense_budget=solve_budget)
                self._write(objective.block, theta + step)
                info = {**info, "n_parameters": theta.numel(), "n_directions": 0}
            timings["newton"] += time.perf_counter() - tick
            updated.extend(s for s in slices if s not in updated)
            if number + 1 == self.max_passes and len(scope) < len(retained):
                # a subsample's gradient after the last pass would serve the report only
                report.passes.append({**info, "slices": slices,
                                      "retained_gradient_norm": float("nan"),
                                      "target_gradient_norm": float("nan")})
                break
            gradient = self._scope_gradient(scope, retained)
            if len(scope) == len(retained):
                report.retained_gradient_norm_after = _norm(gradient)
            if offset is not None:
                gradient = {name: g - offset[name] for name, g in gradient.items()}
            report.passes.append({**info, "slices": slices,
                                  "retained_gradient_norm": report.retained_gradient_norm_after,
                                  "target_gradient_norm": _norm(gradient)})
        if steps:                   # the slices the extra directions moved
            changed = everything.gather(_detached(self.model)) != start
            updated.extend(s for s in self._slices_changed(everything, changed)
                           if s not in updated)
        return self._finish(report, removed, retained, updated, timings, started,
                            all_retained=len(scope) == len(retained))

    def _finish(self, report, removed, retained, updated, timings, started, *,
                all_retained):
        """Noise, the removed loss after, the budget and the timings of a call that
        updated the slices ``updated`` (``all_retained``: its gradients were taken on
        all retained samples)."""
        params = _detached(self.model)
        report.slices = updated
        block = self.slice_map.block(updated)
        report.n_parameters = block.size(params)
        report.noise_std = self._noise_std(len(removed))
        if report.noise_std > 0:
            theta = block.gather(params)
            noise = torch.from_numpy(self._rng.normal(size=theta.numel()))
            self._write(block, theta + report.noise_std * noise.to(theta))
            if all_retained:
                report.retained_gradient_norm_after = _norm(self._retained_gradient(retained))
        report.removed_loss_after = self._mean_loss(removed)
        if self.budget is not None:
            if not all_retained:
                report.retained_gradient_norm_after = _norm(self._retained_gradient(retained))
            report.retrain_due = self.budget.spend(
                len(retained) * report.retained_gradient_norm_after)
        timings["total"] = time.perf_counter() - started
        cached = [] if self._retained_sum is None else list(self._retained_sum[2].values())
        timings.update(self._cost, cached_bytes=sum(t.numel() * t.element_size() for t in cached)
                       + (0 if self._kronecker is None else self._kronecker[1].nbytes()))
        report.timings = timings
        return report

    def _refit_output_layer(self, retained):
        """The pass of a class removal: the output layer refitted on the retained
        samples' features (at most what fits in ``ACTIVATION_BUDGET`` in float64, drawn
        at random), as a report entry."""
        layer = self.slice_map.layers[self._output_layer]
        # without weight decay the refit has no minimum once the retained features are
        # separable (the layer's norm grows without bound): then scikit-learn's default
        # penalty for logistic regression (C = 1), 1 / n in this mean-loss form
        decay = self.weight_decay if self.weight_decay > 0 else 1.0 / len(retained)
        most = max(_MIN_CURVATURE_SAMPLES,
                   ACTIVATION_BUDGET // (8 * layer.module.in_features))
        if len(retained) > most:
            chosen = self._rng.choice(len(retained), most, replace=False)
            retained = retained[torch.from_numpy(np.sort(chosen))]
        self._cost["forward_samples"] += len(retained)
        slices = [s for s in self.slice_map.slices if s.module == self._output_layer]
        self._save(self.slice_map.block(slices))
        info = refit_output_layer(self.model, layer, self.loss_fn, self.data, retained,
                                  decay)
        return {"slices": slices, "n_parameters": layer.n_units * layer.unit_size,
                "n_directions": 0, "solver": "output layer (L-BFGS)", "damping": 0.0,
                "curvature_min": float("nan"), "accepted": True,
                "objective_before": info["objective_before"],
                "objective_after": info["objective_after"],
                "retained_gradient_norm": float("nan"),
                "target_gradient_norm": info["gradient_norm"]}

    def _select(self, removed, retained_gradient, *, first_pass):
        if not isinstance(self.selection, str):
            return self.selection
        if self.selection == "full":
            return list(self.slice_map.slices)
        caps = {"max_slices": self.max_slices, "max_parameters": self.max_parameters}
        if not first_pass:          # Gauss-Southwell: where the retained gradient is largest
            ranked = rank_by_gradient(self.slice_map, retained_gradient)
            return cap_slices(ranked, self.slice_map, **caps)
        if self.selection == "random":
            order = self._rng.permutation(len(self.slice_map))
            ranked = [self.slice_map.slices[i] for i in order]
            return cap_slices(ranked, self.slice_map, **caps)
        if self.selection == "lfoci":
            # the copies' forward passes take at most a pass's budget (three forward
            # passes a backward one): a large removal is represented by a random
            # subset of its samples
            most = max(1, 3 * self._pass_budget() // self.n_perturbations)
            if len(removed) > most:
                subset = self._rng.choice(len(removed), most, replace=False)
                removed = removed[torch.from_numpy(np.sort(subset))]
            inputs, targets = self.data.get(removed)
            generator = torch.Generator().manual_seed(int(self._rng.integers(2 ** 63)))
            activations, losses, columns = perturbation_table(
                self.model, self.loss_fn, self.slice_map.layers, inputs, targets,
                self._perturb, self.n_perturbations, generator,
                position_mask=self.position_mask, batch_size=self.data.batch_size)
            self._cost["forward_samples"] += self.n_perturbations * len(removed)
            ranked = lfoci_slices(activations.double().cpu().numpy(),
                                  losses.double().cpu().numpy(), columns,
                                  random_state=self._rng)
            chosen = cap_slices(ranked, self.slice_map, **caps)
            if chosen:
                return chosen
            warnings.warn("L-FOCI found no slice the removed samples' loss depends on "
                          "under the perturbations; falling back to the gradient rule",
                          RuntimeWarning, stacklevel=5)
        ranked = rank_by_gradient(self.slice_map, self._loss_gradient(removed))
        return cap_slices(ranked, self.slice_map, **caps)

    def _save(self, block):
        """Keep the model's values in ``block`` for the rollback of a failed call
        (the call writes only blocks saved first: no copy of the whole model)."""
        self._written.append((block, block.gather(_detached(self.model)).clone()))

    def _write(self, block, theta):
        """Write ``theta`` into the model's ``block``, saved first."""
        self._save(block)
        block.write(self.model, theta)

    # ----------------------------------------------------------------------------------
    def _mean_loss(self, indices):
        """Mean loss of the samples at ``indices`` under the current model."""
        self._cost["forward_samples"] += len(indices)
        with torch.no_grad():
            mean = sum(float(self.loss_fn(self.model(inputs), targets)) * inputs.shape[0]
                       for inputs, targets in self.data.batches(indices)) / len(indices)
        return check_finite(mean, "loss")

    def _kronecker_factors(self, retained):
        """The K-FAC factors of the sliced layers: computed on ``curvature_samples``
        random retained samples when first needed, then reused until a tenth of the
        samples retained then has been removed, or the model was changed elsewhere."""
        if self._own_state is not None and self._state() != self._own_state:
            self._kronecker = None              # an optimizer step, load_state_dict, ...
        if self._kronecker is not None:
            removed_then, factors = self._kronecker
            if len(self.removed) - removed_then <= 0.1 * (self.data.n_samples - removed_then):
                factors.cost = self._cost       # input factors computed later count here
                return factors
        size = self.curvature_samples
        if size is not None:        # a quarter of a pass's budget, once per refresh
            size = min(size, len(retained),
                       max(_MIN_CURVATURE_SAMPLES, self._pass_budget() // 4))
        sample = self._curvature_samples(retained, size)
        sample = retained if sample is None else sample
        generator = torch.Generator().manual_seed(int(self._rng.integers(2 ** 63)))
        # exact per class (up to 16 classes) only if that fits the budget too
        sampled = (self.curvature_samples is not None and
                   EXACT_FISHER_CLASSES * len(sample) > self._pass_budget())
        factors = KroneckerFactors(self.model, self.loss_fn, self.slice_map.layers,
                                   self.data.batches(sample), generator, sampled=sampled)
        self._cost["backward_samples"] += factors.backward_samples
        self._kronecker = (len(self.removed), factors)
        factors.cost = self._cost
        return factors

    def _curvature_samples(self, retained, size=None):
        """A random subsample of the retained samples for the curvature (``size``, by
        default :meth:`_sample_size`), or None for all of them."""
        size = self._sample_size(len(retained)) if size is None else size
        if size is None or size >= len(retained):
            return None
        chosen = self._rng.choice(len(retained), size, replace=False)
        return retained[torch.from_numpy(np.sort(chosen))]

    def _pass_budget(self):
        """Backward-pass samples (a product counts two) one pass may spend: ``compute``
        epochs, or at least the samples whose forward passes take 2^33 operations."""
        return max(int(self.compute * self.data.n_samples),
                   _SMALL_MODEL_FLOPS // self._sample_flops)

    def _sample_size(self, n_retained):
        """Samples the curvature is averaged over in a call: ``curvature_samples``, at
        most an eighth of the pass budget (a step checked on twice as many and a few
        products must fit in it), None for all retained samples."""
        if self.curvature_samples is None:
            return None
        return min(self.curvature_samples, n_retained,
                   max(_MIN_CURVATURE_SAMPLES, self._pass_budget() // 8))

    def _subspace_step(self, objective, full, gradient, steps, retained, cg_tolerance,
                       solve_budget):
        """One accelerated pass: a damped Newton step over the block of ``objective``
        and the directions (earlier ``steps`` and per-layer preconditioned gradients),
        written into the model; the full step is appended to ``steps``."""
        per_direction = full.theta.numel() * full.theta.element_size()
        budget = min(_MAX_DIRECTIONS, (2 * per_direction + _DIRECTIONS_MEMORY) // per_direction)
        factors = self._kronecker_factors(retained)
        directions = layer_directions(full, gradient, self.slice_map.layers, factors,
                                      max_directions=max(1, budget - len(steps) - 1))
        block = objective
        if objective.theta.numel() > self.max_dense or not objective.dense_is_cheap(
                objective.theta, self.curvature, solve_budget):
            # Too large for a dense solve, the block enters by its own Newton step
            # (K-FAC-preconditioned conjugate gradients): one more direction, and the
            # pass solves a small dense problem over the directions.
            iterations = _CG_ITERATIONS if solve_budget is None else max(1, min(
                _CG_ITERATIONS, solve_budget // (2 * objective.curvature_samples.numel())))
            directions.insert(0, self._block_newton_direction(objective, full, gradient,
                                                              factors, cg_tolerance,
                                                              iterations))
            block = None
        subspace = SubspaceObjective(block, full, steps + directions)
        theta = subspace.theta
        coordinates_gradient = subspace.restrict(full.block.gather(gradient))
        step, info = damped_newton_step(subspace, theta, coordinates_gradient.to(theta.dtype),
                                        kind=self.curvature,
                                        max_dense=self.max_dense if block is not None else theta.numel(),
                                        cg_tolerance=cg_tolerance, dense_budget=solve_budget)
        full_step = subspace.step_in_full(step)
        self._write(full.block, full.theta + full_step.to(full.theta.dtype))
        steps.append(full_step)
        return {**info, "n_parameters": int((full_step != 0).sum()),
                "n_directions": subspace.Q.shape[1]}

    def _block_newton_direction(self, objective, full, gradient, factors, tolerance,
                                iterations):
        """``-H_PP^{-1} g_P`` of the block P, by K-FAC-preconditioned conjugate gradients
        (stopped at a direction of negative curvature), as a vector over ``full``."""
        theta = objective.theta
        preconditioner = KroneckerPreconditioner(factors, self.slice_map, objective.block,
                                                 objective.params)
        damping = self.weight_decay + 1e-8 * preconditioner.fallback
        g = objective.block.gather(gradient).double()
        solution, _ = conjugate_gradients(
            lambda v: check_finite(objective.hessian_vector(theta, v, kind=self.curvature),
                                   "curvature"),
            g, tol=tolerance * float(g.norm()), max_iter=iterations,
            precondition=lambda r: preconditioner(r.to(theta.dtype), damping).double())
        zeros = {name: torch.zeros_like(objective.params[name]) for name in full.block.rows}
        return full.block.gather(objective.block.scatter(zeros, -solution.to(theta.dtype)))

    def _slices_changed(self, everything, changed):
        """The slices with an entry flagged in ``changed`` (a mask over the block
        ``everything`` of all slices)."""
        params = dict(self.model.named_parameters())
        zeros = {name: torch.zeros(params[name].shape, dtype=torch.float64,
                                   device=params[name].device) for name in everything.rows}
        flags = everything.scatter(zeros, changed.to(torch.float64))
        return [s for s in self.slice_map.slices
                if bool(self.slice_map.block([s]).gather(flags).any())]

    def _objective(self, retained, slices, offset, curvature):
        block = self.slice_map.block(slices)
        if offset is not None:
            offset = _in_block(block, offset)
        return BlockObjective(self.model, self.loss_fn, self.data, retained,
                              self.weight_decay, block, curvature_samples=curvature,
                              offset=offset, sample_bytes=self._sample_bytes,
                              cost=self._cost, slice_map=self.slice_map)

    def _block_influence(self, removed, scope, retained, slices):
        """The target gradient at the current weights and the influence offset of a
        single pass over ``slices`` on the subsample ``scope``, as vectors over their
        block (see ``objective="influence"``); taken through the block objective, so
        no gradient of a whole weight matrix is formed."""
        removed_objective = self._objective(removed, slices, None, None)
        theta = removed_objective.theta
        # (sum_j grad loss_j + k lambda w_0) / (n - k)
        influence = check_finite(removed_objective.gradient(theta), "loss gradient").mul_(
            len(removed) / len(retained))
        scope_gradient = check_finite(
            self._objective(scope, slices, None, None).gradient(theta), "loss gradient")
        return influence.neg(), scope_gradient.add_(influence)

    def _loss_gradient(self, indices):
        """Mean loss gradient over ``indices`` for every sliced parameter (name →
        tensor)."""
        self._cost["backward_samples"] += len(indices)
        names = list(self.slice_map.block(self.slice_map.slices).rows)
        params = dict(self.model.named_parameters())
        total = {name: torch.zeros_like(params[name]) for name in names}
        for inputs, targets in self.data.batches(indices):
            loss = self.loss_fn(self.model(inputs), targets) * (inputs.shape[0] / len(indices))
            for name, g in zip(names, torch.autograd.grad(loss, [params[n] for n in names],
                                                          allow_unused=True)):
                if g is not None:
                    total[name] += g
        return {name: check_finite(g, "loss gradient") for name, g in total.items()}

    def _retained_gradient(self, retained, removing=None):
        """Gradient of F_retained over every sliced parameter (name → tensor).

        The loss-gradient sum over the retained samples is kept with the state of the
        model it was computed at. When ``removing`` (the number of samples being removed
        now and their mean loss gradient) is given and the model has not changed since
        the last sum (the removal before this one ended with it), the sum is downdated
        instead of recomputed: no pass over the training data.
        """
        n = len(retained)
        known = self._retained_sum
        if (removing is not None and known is not None
                and known[0] == self._state() and known[1] == n + removing[0]):
            k, removed_gradient = removing
            mean = {name: (total - k * removed_gradient[name]) / n
                    for name, total in known[2].items()}
        else:
            mean = self._loss_gradient(retained)
            self._retained_sum = (self._state(), n, {name: g * n for name, g in mean.items()})
        return self._plus_decay(mean)

    def _scope_gradient(self, scope, retained, removing=None):
        """Gradient of the objective averaged over ``scope``: all ``retained`` samples
        (kept between calls, see :meth:`_retained_gradient`) or a subsample of them."""
        if len(scope) == len(retained):
            return self._retained_gradient(retained, removing)
        return self._plus_decay(self._loss_gradient(scope))

    def _plus_decay(self, mean_loss_gradient):
        """The objective's gradient from the mean loss gradient (name → tensor), in
        place: the callers pass fresh tensors."""
        params = dict(self.model.named_parameters())
        return {name: g.add_(params[name].detach(), alpha=self.weight_decay)
                for name, g in mean_loss_gradient.items()}

    def _state(self):
        """Identifies the model's current parameter and buffer values: storage and
        in-place version of every tensor (any in-place change, ours or the caller's,
        bumps a version)."""
        return tuple((t.data_ptr(), t._version) for t in
                     (*self.model.parameters(), *self.model.buffers()))

    def _noise_std(self, n_new):
        if self.noise is None:
            return 0.0
        if self.noise == "sekhari":
            return sekhari_noise_std(self.data.n_samples, len(self.removed) + n_new,
                                     self.weight_decay, self.epsilon, self.delta)
        return float(self.noise)

    def _retained(self, indices):
        mask = torch.ones(self.data.n_samples, dtype=torch.bool)
        mask[torch.tensor(self.removed + list(indices), dtype=torch.long)] = False
        return torch.nonzero(mask)[:, 0]

    def _check_indices(self, indices):
        if isinstance(indices, (np.ndarray, torch.Tensor)):
            if indices.ndim > 1:
                raise ValueError("indices must be one-dimensional, got shape "
                                 f"{tuple(indices.shape)}")
            indices = indices.tolist()
        if _is_integer(indices):
            indices = [indices]
        elif isinstance(indices, (list, tuple, range)):
            indices = list(indices)
        else:
            raise TypeError("indices must be an integer or a list, tuple, range, 1-D array "
                            f"or tensor of integers, got {type(indices).__name__}")
        if not indices:
            raise ValueError("no index to forget")
        n = self.data.n_samples
        for i in indices:
            if not _is_integer(i):
                raise TypeError(f"indices must be integers, got {i!r}")
            if not 0 <= i < n:
                raise ValueError(f"index {i} is out of range for {n} training samples")
        indices = [int(i) for i in indices]
        if len(set(indices)) != len(indices):
            raise ValueError("indices contain duplicates")
        already = sorted(set(indices) & set(self.removed))
        if already:
            raise ValueError(f"samples already removed: {already[:10]}")
        if len(indices) >= self.n_retained:
            raise ValueError("the removal would leave no training sample; retrain instead")
        return indices

    def _check_max_parameters(self, value):
        if value is None:
            return None
        total = self.slice_map.n_parameters
        if _is_integer(value):
            if value < 1:
                raise ValueError(f"max_parameters must be >= 1, got {value}")
            return int(value)
        if isinstance(value, Real) and not isinstance(value, bool):
            if 0 < value <= 1:
                return max(1, min(int(value * total), _MAX_BLOCK))
            if value > 1 and float(value).is_integer():      # a count given as a float
                return int(value)
        raise ValueError("max_parameters must be a count >= 1 or a fraction in (0, 1], "
                         f"got {value!r}")

    def _make_perturbation(self, perturbation):
        if callable(perturbation):
            return perturbation
        scale = _check_real(perturbation, "perturbation", low=0.0)
        inputs, _ = self.data.get(torch.arange(min(self.data.n_samples, 10_000)))
        if not torch.is_floating_point(inputs):
            # token ids: replace that share of them by tokens drawn from the vocabulary
            # of the model's first embedding (or the ids seen, without one)
            if self.selection != "lfoci" or scale == 0:
                return None
            if inputs.dtype == torch.bool or inputs.numel() == 0 or int(inputs.min()) < 0:
                raise ValueError("the training inputs are neither floating point nor "
                                 "token ids: pass a perturbation callable")
            embeddings = [m for m in self.model.modules() if isinstance(m, torch.nn.Embedding)]
            if not embeddings:
                return token_replacement(int(inputs.max()) + 1, rate=min(scale, 1.0))
            padding = embeddings[0].padding_idx         # padding stays padding
            return token_replacement(embeddings[0].num_embeddings, rate=min(scale, 1.0),
                                     protected=() if padding is None else (padding,))
        spread = float(inputs.double().std())
        return gaussian_perturbation(scale * (spread if spread > 0 else 1.0))


# The directions of an accelerated pass (earlier steps included) are vectors over all
# sliced parameters: at most _MAX_DIRECTIONS of them, and no more than twice the sliced
# parameters' bytes plus _DIRECTIONS_MEMORY in all.
_MAX_DIRECTIONS = 32
_DIRECTIONS_MEMORY = 512 * 2**20
# Most products of the conjugate-gradient solve that gives a large block's direction.
_CG_ITERATIONS = 250
# A block given as a fraction of the sliced parameters has at most this many.
_MAX_BLOCK = 2 ** 22
# A pass's budget is never below the samples whose forward passes take this many
# floating-point operations (a few CPU-seconds: a small model's pass costs little
# whatever the share of an epoch), and its curvature is never averaged over fewer
# than _MIN_CURVATURE_SAMPLES samples.
_SMALL_MODEL_FLOPS = 2 ** 33
_MIN_CURVATURE_SAMPLES = 32


def _in_block(block, values):
    """``values`` over ``block``: a name-to-tensor dict gathered, or already a block
    vector."""
    return values if isinstance(values, torch.Tensor) else block.gather(values)


def _cg_tolerance(curvature_sample):
    """Relative residual at which conjugate gradients stop: 1e-4 when the curvature is
    averaged over a random sample (its own error is about 1/sqrt(sample size), a few
    percent), 1e-10 when it is the exact curvature of all retained samples."""
    return 1e-10 if curvature_sample is None else 1e-4


def _detached(model):
    return {name: p.detach() for name, p in model.named_parameters()}


def _norm(gradients):
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in gradients.values())))


def _is_integer(value):
    """Whether ``value`` is an integer (a Python or NumPy one), and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_int(value, name, *, low):
    if not _is_integer(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_real(value, name, *, low):
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) \
            or value < low:
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)
