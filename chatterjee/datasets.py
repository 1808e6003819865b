"""Synthetic data sets with a known answer: the bullseye network and the FOCI examples.

* :func:`make_bullseye`: the 3-D bullseye network of Mehta et al. (CVPR 2022, Table 1),
  six variables observed as points on spheres, whose Markov blanket is known.
* :func:`make_foci_vignette`: the example of the R FOCI vignette,
  ``Y = X1 * X2 + sin(X1 * X3) + X4^2`` among ``n_features`` standard normal columns.
* :func:`make_codec_example`: the example of R FOCI's ``codec`` manual page,
  ``Y = (X1 + X2) mod 1`` with uniform X (any number of columns), and an independent Z.

Every generator draws from one :class:`numpy.random.Generator` made from
``random_state``, so the same seed gives the same data. The module needs NumPy only.
"""

import numbers
from dataclasses import dataclass, field

import numpy as np

from ._validation import check_random_state

__all__ = ["Bullseye", "make_bullseye", "make_codec_example", "make_foci_vignette"]

#: Number of variables (column blocks) of the bullseye network.
N_BULLSEYE_VARIABLES = 6


def _check_count(value, name, minimum):
    """An integer >= ``minimum`` (bool refused), as a Python int."""
    if (
        not isinstance(value, (numbers.Integral, np.integer))
        or isinstance(value, (bool, np.bool_))
        or value < minimum
    ):
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_noise(noise):
    if (
        not isinstance(noise, (numbers.Real, np.floating, np.integer))
        or isinstance(noise, (bool, np.bool_))
        or not np.isfinite(noise)
        or noise <= 0
    ):
        raise ValueError(f"`noise` must be a finite number > 0, got {noise!r}.")
    return float(noise)


@dataclass(frozen=True, repr=False)
class Bullseye:
    """The data drawn by :func:`make_bullseye`.

    Unpacks as ``X, y, groups, blanket = data``.

    Attributes
    ----------
    X : ndarray of shape (n_samples, 6 * dim)
        The observed features. Columns ``k * dim`` to ``(k + 1) * dim - 1`` hold
        variable ``k``: a point on the sphere of radius ``radii[:, k]`` in a uniformly
        random direction.
    y : ndarray of shape (n_samples,)
        The scalar target.
    groups : ndarray of shape (6 * dim,), int
        The variable (0 to 5) each column of ``X`` belongs to, i.e.
        ``numpy.repeat(numpy.arange(6), dim)``.
    blanket : ndarray of shape (4,), int
        The Markov blanket of ``y`` as sorted variable labels: ``[2, 3, 4, 5]``.
    radii : ndarray of shape (n_samples, 6)
        The latent value of each variable (the radius of its sphere). Not part of the
        unpacking. ``numpy.linalg.norm`` of block ``k`` of ``X`` is ``abs(radii[:, k])``.
    noise : float
        The half-width of the uniform noise the data were drawn with.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    blanket: np.ndarray
    radii: np.ndarray
    noise: float = field(default=0.075)

    #: Parents of ``y`` in the network (variable labels).
    parents = (2, 4)
    #: Children of ``y``.
    children = (5,)
    #: Other parents of the children of ``y`` (spouses).
    spouses = (3,)
    #: Variables outside the Markov blanket: ancestors of ``y`` that reach it only
    #: through its parents.
    outside = (0, 1)

    def __iter__(self):
        return iter((self.X, self.y, self.groups, self.blanket))

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return (self.X, self.y, self.groups, self.blanket)[index]

    @property
    def dim(self):
        """Dimension of each variable's block of columns."""
        return self.X.shape[1] // N_BULLSEYE_VARIABLES

    def __repr__(self):
        return (
            f"Bullseye(n_samples={self.X.shape[0]}, dim={self.dim}, noise={self.noise!r}, "
            f"blanket={self.blanket.tolist()})"
        )


def make_bullseye(n_samples=5000, dim=3, noise=0.075, random_state=None):
    r"""Draw the bullseye network: six variables on spheres, a target, a known blanket.

    A directed acyclic graph over six scalar variables ``r1 .. r6`` and a target ``y``;
    each variable is observed only as a point in ``R^dim`` at distance ``r_k`` from the
    origin in a uniformly random direction. This is the Markov-blanket benchmark of
    Mehta et al. (2022, Section 6, Table 1), taken from the model-augmented mutual
    information code they adapted (``bullseye_network.py``), with the
    paper's settings as defaults (5000 samples, ``dim=3``, noise 0.075).

    Parameters
    ----------
    n_samples : int, default=5000
        Number of samples (rows), at least 1.
    dim : int, default=3
        Dimension of each variable's block of columns, at least 1 (the paper uses 3;
        with 1 each variable is observed as ``+r`` or ``-r``).
    noise : float, default=0.075
        Half-width ``eps`` of the uniform noise ``U(-eps, eps)`` added in every
        structural equation; a finite number > 0. The original code accepts only
        0.025, 0.05, 0.075, 0.1 and 0.125 (the values of its mutual-information
        table); here any positive value is allowed.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds every draw (a legacy ``numpy.random.RandomState`` is accepted too).

    Returns
    -------
    Bullseye
        Unpacks as ``X, y, groups, blanket``:

        * ``X``, ndarray of shape (n_samples, 6 * dim): block ``k`` (columns
          ``k * dim`` to ``(k + 1) * dim - 1``) observes variable ``k``, i.e.
          ``r_{k+1}`` in the original numbering;
        * ``y``, ndarray of shape (n_samples,): the scalar target;
        * ``groups``, ndarray of shape (6 * dim,): the variable label (0 to 5) of each
          column;
        * ``blanket``, ndarray ``[2, 3, 4, 5]``: the Markov blanket of ``y``.

        The latent values are in ``.radii`` (n_samples, 6); ``.parents``,
        ``.children``, ``.spouses`` and ``.outside`` name the roles of the variables.

    Raises
    ------
    ValueError
        If ``n_samples`` or ``dim`` is not an integer >= 1, or ``noise`` is not a
        finite number > 0.
    TypeError
        If ``random_state`` is of an unsupported type.

    See Also
    --------
    chatterjee.foci : forward selection, which estimates a Markov blanket.

    Notes
    -----
    With ``N_*`` independent ``U(-eps, eps)`` noises (``eps = noise``) the structural
    equations are::

        r1 = U(0.25, 0.5) or U(0.75, 1.0), each with probability 1/2 (two rings)
        r2 = r1 + N2
        r3 = r1 + N3
        r4 = r3 + N4
        r5 = r2 / 2 + r4 / 2 + N5
        y  = r3 / 2 + r5 / 2 + Ny
        r6 = r4 / 2 + y / 2 + N6

    so the edges are r1 -> r2, r1 -> r3, r3 -> r4, r2 -> r5, r4 -> r5, r3 -> y,
    r5 -> y, y -> r6 and r4 -> r6. With 0-based labels (variable ``k`` is
    ``r_{k+1}``):

    ==========  ========  ===========================================
    label       variable  role
    ==========  ========  ===========================================
    0           r1        outside the blanket (ancestor through r3)
    1           r2        outside the blanket (ancestor through r5)
    2           r3        parent of y
    3           r4        spouse: the other parent of y's child r6
    4           r5        parent of y
    5           r6        child of y
    ==========  ========  ===========================================

    The Markov blanket of ``y`` is therefore ``{2, 3, 4, 5}``: given those four
    variables, ``y`` is independent of r1 and r2, although both are strongly
    dependent on ``y`` on their own. The authors' ``roc_gen.py`` scores exactly
    ``{2, 3, 4, 5}`` as true and ``{0, 1}`` as false. Each variable is observed as
    ``X_k = r_{k+1} * g / ||g||`` with ``g ~ N(0, I_dim)`` drawn afresh, so only the
    norm of a block carries information; the directions are independent noise,
    and the conditional independences among the blocks of ``X`` and ``y`` are those
    of the radii. A test or selector should treat each block of columns as one
    variable (``groups`` gives the labels); ranking single coordinates, or
    reshaping the coordinates into extra rows as the authors' FOCI branch does,
    does not recover the network.

    For ``noise`` up to about 0.074 every radius is positive, so the norm of block
    ``k`` equals ``radii[:, k]``; for larger noise the deepest variables can, rarely,
    come out negative, and the block's norm is then ``abs(radii[:, k])``.

    The paper's experiment casts the data to float16 and standardizes it before
    testing, which creates ties; apply ``X.astype(numpy.float16)`` yourself to
    reproduce that.

    References
    ----------
    .. [1] R. Mehta, S. Pal, V. Singh, S. N. Ravi. Deep Unlearning via Randomized
       Conditionally Independent Hessians. *CVPR* 2022, Section 6 and Table 1.
    .. [2] Reference [44] of [1], Section 5.3 (model-augmented conditional mutual
       information for feature selection), where the bullseye network comes from;
       code at https://github.com/syanga/model-augmented-mutual-information.

    Examples
    --------
    >>> import numpy as np
    >>> from chatterjee import codec
    >>> from chatterjee.datasets import make_bullseye
    >>> data = make_bullseye(n_samples=1000, random_state=0)
    >>> data
    Bullseye(n_samples=1000, dim=3, noise=0.075, blanket=[2, 3, 4, 5])
    >>> X, y, groups, blanket = data
    >>> X.shape, y.shape
    ((1000, 18), (1000,))
    >>> groups
    array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5])
    >>> inside = np.isin(groups, blanket)
    >>> X[:, inside].shape
    (1000, 12)

    Each block's norm is its variable's value; on those values, the blanket
    explains ``y`` and the other two variables add nothing:

    >>> radii = np.linalg.norm(X.reshape(1000, 6, 3), axis=2)
    >>> np.allclose(radii, data.radii)
    True
    >>> round(codec(y, radii[:, blanket]).statistic, 1)
    0.8
    >>> abs(codec(y, radii[:, [0, 1]], radii[:, blanket]).statistic) < 0.1
    True
    """
    n_samples = _check_count(n_samples, "n_samples", 1)
    dim = _check_count(dim, "dim", 1)
    eps = _check_noise(noise)
    rng = check_random_state(random_state)

    inner = rng.uniform(0.25, 0.5, size=n_samples)
    outer = rng.uniform(0.75, 1.0, size=n_samples)
    r1 = np.where(rng.random(n_samples) < 0.5, inner, outer)
    n2, n3, n4, n5, ny, n6 = rng.uniform(-eps, eps, size=(6, n_samples))
    r2 = r1 + n2
    r3 = r1 + n3
    r4 = r3 + n4
    r5 = 0.5 * r2 + 0.5 * r4 + n5
    y = 0.5 * r3 + 0.5 * r5 + ny
    r6 = 0.5 * r4 + 0.5 * y + n6
    radii = np.column_stack([r1, r2, r3, r4, r5, r6])

    directions = rng.standard_normal(size=(n_samples, N_BULLSEYE_VARIABLES, dim))
    lengths = np.linalg.norm(directions, axis=2, keepdims=True)
    # A zero vector has probability 0; give it a fixed direction rather than NaN.
    directions[:, :, :1] += lengths == 0
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    X = (radii[:, :, None] * directions).reshape(n_samples, N_BULLSEYE_VARIABLES * dim)

    return Bullseye(
        X=X,
        y=y,
        groups=np.repeat(np.arange(N_BULLSEYE_VARIABLES), dim),
        blanket=np.array([2, 3, 4, 5]),
        radii=radii,
        noise=eps,
    )


def make_foci_vignette(n_samples=2000, n_features=100, random_state=None):
    r"""Draw the example of the R FOCI vignette: ``Y = X1 X2 + sin(X1 X3) + X4^2``.

    All ``n_features`` columns are independent standard normal; ``y`` depends on the
    first four only, with no noise.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of samples, at least 1 (the vignette uses 2000).
    n_features : int, default=100
        Number of columns, at least 4 (the vignette uses 100).
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the draw (a legacy ``numpy.random.RandomState`` is accepted too).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Independent N(0, 1) features.
    y : ndarray of shape (n_samples,)
        ``X[:, 0] * X[:, 1] + sin(X[:, 0] * X[:, 2]) + X[:, 3] ** 2``.

    Raises
    ------
    ValueError
        If ``n_samples`` is not an integer >= 1 or ``n_features`` not one >= 4.

    See Also
    --------
    chatterjee.foci

    Notes
    -----
    **True answer.** The relevant features are columns ``{0, 1, 2, 3}`` (0-based; X1
    to X4 in the vignette), and ``y`` is a function of them, so T(Y, X_{0,1,2,3}) is
    1 in the limit. FOCI picks them in the order ``[3, 0, 1, 2]`` (R FOCI prints
    X4, X1, X2, X3): X4^2 alone explains the most, X2 and X3 are useless without
    X1. At the default size the order of the middle picks can vary with the data;
    the selected set is ``{0, 1, 2, 3}``.

    The vignette draws with R's RNG; the data here are NumPy draws of the same
    distribution, so individual values differ from R's.

    References
    ----------
    .. [1] M. Azadkia, S. Chatterjee, N. Matloff. FOCI: Feature Ordering by
       Conditional Independence. R package 0.1.3, vignette "foci".

    Examples
    --------
    >>> from chatterjee import foci
    >>> from chatterjee.datasets import make_foci_vignette
    >>> X, y = make_foci_vignette(random_state=0)
    >>> X.shape, y.shape
    ((2000, 100), (2000,))
    >>> result = foci(X, y, random_state=0)
    >>> sorted(result.selected.tolist())
    [0, 1, 2, 3]
    >>> int(result.selected[0])
    3
    """
    n_samples = _check_count(n_samples, "n_samples", 1)
    n_features = _check_count(n_features, "n_features", 4)
    rng = check_random_state(random_state)
    X = rng.standard_normal(size=(n_samples, n_features))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 0] * X[:, 2]) + X[:, 3] ** 2
    return X, y


def make_codec_example(n_samples=1000, n_features=2, random_state=None):
    r"""Draw the example of R FOCI's ``codec`` manual: ``Y = (X1 + ... + Xp) mod 1``.

    ``X`` is uniform on the unit cube ``[0, 1)^p`` and ``z`` is an independent
    standard normal variable. ``y`` is a function of all of ``X`` together but is
    independent of every proper subset of its columns.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples, at least 1 (the manual page uses 1000).
    n_features : int, default=2
        Number ``p`` of uniform columns, at least 1. 2 is the manual page's example;
        3 (with ``n_samples=10000``) is the first example of the ``codec`` vignette.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the draw (a legacy ``numpy.random.RandomState`` is accepted too).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Independent U(0, 1) columns.
    y : ndarray of shape (n_samples,)
        ``X.sum(axis=1) % 1``.
    z : ndarray of shape (n_samples,)
        N(0, 1), independent of ``X`` and ``y``.

    Raises
    ------
    ValueError
        If ``n_samples`` or ``n_features`` is not an integer >= 1.

    See Also
    --------
    chatterjee.codec

    Notes
    -----
    **True answers** (limits as ``n_samples`` grows), for ``p = n_features >= 2``:

    * T(y, X) = 1 and T(y, X | z) = 1: ``y`` is a function of ``X``;
    * T(y, X[:, j] | X[:, others]) = 1: given the other columns, ``y`` is a
      function of column ``j`` (the manual's ``codec(y, x[, 2], x[, 1])``);
    * T(y, X[:, S]) = 0 for any proper subset S of the columns: ``y`` is uniform and
      independent of them (the sum mod 1 of a uniform and anything independent of it
      is uniform);
    * T(y, z) = 0: ``z`` is independent of ``y``.

    The manual page also calls ``codec(y, z, x)`` ("y is independent of z given
    x"). That coefficient is undefined here: ``y`` is a function of ``X``, so the
    denominator of T(y, z | X) tends to 0, and the finite-sample value is erratic,
    often far below 0 (about -2.5 at 1000 samples). Convergence of T(y, X | z) to 1
    is slow for the same reason (about 0.65 at 1000 samples).

    FOCI with its stop rule may therefore select nothing: no single column has any
    dependence with ``y``. With ``p = 1``, ``y`` equals ``X[:, 0]``.

    References
    ----------
    .. [1] M. Azadkia, S. Chatterjee, N. Matloff. FOCI: Feature Ordering by
       Conditional Independence. R package 0.1.3, manual page ``codec`` and
       vignette "codec".

    Examples
    --------
    >>> from chatterjee import codec
    >>> from chatterjee.datasets import make_codec_example
    >>> X, y, z = make_codec_example(random_state=0)
    >>> X.shape, y.shape, z.shape
    ((1000, 2), (1000,), (1000,))
    >>> round(codec(y, X[:, 1], X[:, 0]).statistic, 1)
    0.9
    >>> abs(codec(y, X[:, 0]).statistic) < 0.1
    True
    >>> abs(codec(y, z).statistic) < 0.1
    True
    """
    n_samples = _check_count(n_samples, "n_samples", 1)
    n_features = _check_count(n_features, "n_features", 1)
    rng = check_random_state(random_state)
    X = rng.random(size=(n_samples, n_features))
    z = rng.standard_normal(size=n_samples)
    y = np.mod(X.sum(axis=1), 1.0)
    return X, y, z
