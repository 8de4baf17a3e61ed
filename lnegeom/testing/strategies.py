r"""Hypothesis strategies for geometry tests (see :mod:`lnegeom.testing`).

Constant SPD matrices (:func:`spd_matrices`), smooth metric fields that are
positive definite *everywhere* (:func:`smooth_metrics`,
:func:`metric_fields`, :func:`grid_metric_fields`), band-limited periodic
perturbations of a prescribed L² norm (:func:`perturbations`), smooth
invertible coordinate changes (:func:`coordinate_maps`), points in a box
(:func:`points`) and random sympy metrics (:func:`symbolic_metrics`, built by
the grammar of :mod:`lnegeom.testing.grammar`).  The objects drawn are the
data objects of :mod:`lnegeom.fields` and
:class:`~lnegeom.testing.samples.SymbolicMetricSample`.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from ..fields import PROFILES, CoordinateMap, SmoothMetric, grid_shape, symmetric_part
from ..fields import l2_norm as _l2_norm  # perturbations() has a keyword argument of that name
from ..metric import MetricField
from .grammar import Grammar, diagonal_entry, off_diagonal_entry
from .samples import SIGNATURES, SymbolicMetricSample

__all__ = [
    "spd_matrices",
    "smooth_metrics",
    "metric_fields",
    "grid_metric_fields",
    "perturbations",
    "coordinate_maps",
    "points",
    "symbolic_metrics",
]

_TWO_PI = 2.0 * math.pi


# =========================================================================
# helpers for the strategies
# =========================================================================
def _check_dim(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or int(n) < 1:
        raise InvalidArgument(f"dimension n must be an integer >= 1, got {n!r}")
    return int(n)


def _check_eig_range(min_eig: float, max_eig: float, what: str = "eig") -> None:
    if not (0 < min_eig <= max_eig < math.inf):
        raise InvalidArgument(
            f"need 0 < min_{what} <= max_{what} < inf, got min_{what}={min_eig!r}, max_{what}={max_eig!r}"
        )


def _skew_to_orthogonal(k: np.ndarray) -> np.ndarray:
    """Cayley transform (I − K)⁻¹(I + K) of a skew-symmetric K: orthogonal, the identity for K = 0.

    I − K is invertible because the eigenvalues of K are imaginary.
    """
    eye = np.eye(k.shape[0])
    return np.linalg.solve(eye - k, eye + k)


@st.composite
def _orthogonal(draw: Callable, n: int) -> np.ndarray:
    angles = draw(
        hnp.arrays(np.float64, (n * (n - 1) // 2,), elements=st.floats(-2.0, 2.0))
    )
    k = np.zeros((n, n))
    k[np.triu_indices(n, 1)] = angles
    return _skew_to_orthogonal(k - k.T)


# =========================================================================
# constant SPD matrices
# =========================================================================
def spd_matrices(n: int, *, min_eig: float = 0.5, max_eig: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    r"""Constant symmetric positive-definite matrices ``A[n, n]`` (float64).

    ``A = Q diag(λ) Qᵀ`` with eigenvalues λ_i ∈ [min_eig, max_eig] and
    ``Q = (I − K)⁻¹(I + K)`` (Cayley transform), K skew-symmetric with
    entries in [−2, 2]; hence the
    condition number is at most ``max_eig / min_eig`` (up to rounding,
    ~1e-15 relative).  As a constant metric, A is flat (docs/math.md §1: all
    curvature vanishes).  Shrinks towards ``min_eig · I``.

    Example
    -------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None)
    ... @given(spd_matrices(3, min_eig=1.0, max_eig=10.0))
    ... def test_cond(a):
    ...     assert np.linalg.cond(a) <= 10.0 + 1e-9
    >>> test_cond()
    """
    n = _check_dim(n)
    _check_eig_range(min_eig, max_eig)

    @st.composite
    def _draw(draw: Callable) -> np.ndarray:
        lam = draw(hnp.arrays(np.float64, (n,), elements=st.floats(min_eig, max_eig)))
        q = draw(_orthogonal(n))
        return symmetric_part((q * lam) @ q.T)

    return _draw()


# =========================================================================
# smooth metric fields
# =========================================================================
def _grid_shape(n: int, shape: Union[int, Sequence[int]]) -> tuple[int, ...]:
    try:
        return grid_shape(n, shape)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def smooth_metrics(
    n: int,
    *,
    min_eig: float = 0.5,
    max_eig: float = 2.0,
    amplitude: float = 0.5,
    modes: int = 3,
    max_frequency: float = 1.5,
    period: Optional[float] = None,
    bandwidth: int = 1,
    profiles: Sequence[str] = PROFILES,
) -> st.SearchStrategy[SmoothMetric]:
    r"""Smooth metric fields, positive definite everywhere, as :class:`SmoothMetric` specs.

    Draws ``g(x) = A + Σ_{k=1}^{m} a_k f_k(w_k·x + φ_k) S_k`` (see
    :class:`SmoothMetric`) with

    * ``A`` from :func:`spd_matrices` (eigenvalues in [min_eig, max_eig]);
    * 1 ≤ m ≤ ``modes`` terms; ``S_k`` symmetric, normalised to ‖S_k‖₂ = 1
      (or 0); ``f_k`` from ``profiles`` (``cos`` and/or ``tanh``);
    * coefficients rescaled so that Σ|a_k| ≤ amplitude · λ_min(A); hence for
      every x ∈ ℝⁿ (Weyl's inequality)
      (1 − amplitude) λ_min(A) ≤ λ_min(g(x)) ≤ λ_max(g(x)) ≤ (1 + amplitude) λ_max(A),
      so cond g(x) ≤ (1 + amplitude)/(1 − amplitude) · max_eig/min_eig;
    * wave vectors with entries in [−max_frequency, max_frequency]; or, when
      ``period = L`` is given, w_k ∈ (2π/L) ℤⁿ with |integer|_∞ ≤ ``bandwidth``
      and only ``cos`` profiles, so that g is L-periodic in every coordinate.

    Derivatives are bounded: |∂^α g| ≤ amplitude · λ_min(A) · C_α |w|_∞^{|α|}.
    Curvature follows docs/math.md §1.

    Example
    -------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None)
    ... @given(smooth_metrics(2, amplitude=0.9))
    ... def test_pd(s):
    ...     lo, hi = s.eigenvalue_bounds
    ...     assert lo >= 0.1 * 0.5 - 1e-12
    >>> test_pd()
    """
    n = _check_dim(n)
    _check_eig_range(min_eig, max_eig)
    if not (0.0 <= amplitude < 1.0):
        raise InvalidArgument(f"amplitude must lie in [0, 1) to keep g positive definite, got {amplitude!r}")
    if int(modes) < 1:
        raise InvalidArgument(f"modes must be >= 1, got {modes!r}")
    profiles = tuple(profiles)
    if not profiles or any(p not in PROFILES for p in profiles):
        raise InvalidArgument(f"profiles must be a non-empty subset of {PROFILES}, got {profiles!r}")
    if period is not None:
        if not (period > 0):
            raise InvalidArgument(f"period must be > 0, got {period!r}")
        if profiles != ("cos",) and "cos" not in profiles:
            raise InvalidArgument("a periodic field needs the 'cos' profile")
        profiles = ("cos",)
        if int(bandwidth) < 0:
            raise InvalidArgument(f"bandwidth must be >= 0, got {bandwidth!r}")
    elif not (max_frequency >= 0):
        raise InvalidArgument(f"max_frequency must be >= 0, got {max_frequency!r}")
    modes = int(modes)
    n_sym = n * (n + 1) // 2
    iu = np.triu_indices(n)

    @st.composite
    def _draw(draw: Callable) -> SmoothMetric:
        a = draw(spd_matrices(n, min_eig=min_eig, max_eig=max_eig))
        m = draw(st.integers(1, modes))
        coef = draw(hnp.arrays(np.float64, (m,), elements=st.floats(-1.0, 1.0)))
        total = float(np.sum(np.abs(coef)))
        coef = coef * (amplitude * float(np.linalg.eigvalsh(a)[0]) / max(1.0, total))
        raw = draw(hnp.arrays(np.float64, (m, n_sym), elements=st.floats(-1.0, 1.0)))
        dirs = np.zeros((m, n, n))
        for k in range(m):
            s = np.zeros((n, n))
            s[iu] = raw[k]
            s = s + np.triu(s, 1).T
            norm = np.linalg.norm(s, 2)
            dirs[k] = s / norm if norm > 0 else s
        if period is None:
            waves = draw(hnp.arrays(np.float64, (m, n), elements=st.floats(-max_frequency, max_frequency)))
        else:
            ints = draw(hnp.arrays(np.int64, (m, n), elements=st.integers(-int(bandwidth), int(bandwidth))))
            waves = ints * (_TWO_PI / period)
        phases = draw(hnp.arrays(np.float64, (m,), elements=st.floats(0.0, _TWO_PI)))
        prof = tuple(draw(st.sampled_from(profiles)) for _ in range(m))
        return SmoothMetric(a, coef, dirs, waves, phases, prof)

    return _draw()


def metric_fields(
    n: int,
    *,
    backend: str = "torch",
    dtype: Any = None,
    min_eig: float = 0.5,
    max_eig: float = 2.0,
    amplitude: float = 0.5,
    modes: int = 3,
    max_frequency: float = 1.5,
    period: Optional[float] = None,
    bandwidth: int = 1,
    profiles: Sequence[str] = PROFILES,
) -> st.SearchStrategy[MetricField]:
    r"""Smooth metrics, positive definite everywhere, as :class:`~lnegeom.metric.MetricField` objects.

    ``smooth_metrics(n, ...).map(lambda s: s.field(backend, dtype=dtype))``:
    the field and its guarantee are those of :func:`smooth_metrics`.
    ``backend="torch"`` (autodiff; ``dtype`` default float64) or ``"numpy"``
    (finite differences).  To give *both* backends the same field, draw
    :func:`smooth_metrics` and use its ``.torch`` and ``.numpy``.  The field's
    ``name`` is the exact ``repr`` of its :class:`SmoothMetric`.

    Example
    -------
    >>> from hypothesis import given, settings
    >>> from lnegeom.testing import assert_ricci_symmetric
    >>> @settings(max_examples=5, deadline=None)
    ... @given(metric_fields(3), points(3, count=2))
    ... def test_ricci(g, x):
    ...     assert_ricci_symmetric(g, x)
    >>> test_ricci()
    """
    if backend not in ("torch", "numpy"):
        raise InvalidArgument(f"unknown backend {backend!r}; choose 'torch' or 'numpy'")
    return smooth_metrics(
        n, min_eig=min_eig, max_eig=max_eig, amplitude=amplitude, modes=modes,
        max_frequency=max_frequency, period=period, bandwidth=bandwidth, profiles=profiles,
    ).map(lambda s: s.field(backend, dtype=dtype))


def grid_metric_fields(
    n: int,
    shape: Union[int, Sequence[int]],
    L: float,
    *,
    min_eig: float = 0.5,
    max_eig: float = 2.0,
    amplitude: float = 0.5,
    modes: int = 3,
    bandwidth: int = 1,
) -> st.SearchStrategy[np.ndarray]:
    r"""L-periodic smooth metrics sampled on the grid of [0, L)ⁿ -> arrays ``[*shape, n, n]``.

    The field is :func:`smooth_metrics` with ``period=L`` (wave vectors
    2π m/L, |m|_∞ ≤ ``bandwidth``, cos profiles), evaluated at
    x = L·j/N (j = 0..N−1 along each axis; ``shape`` an int or n ints).
    Positive definite at every grid point with the bounds of
    :func:`smooth_metrics`.  Its Fourier content is |m|_∞ ≤ ``bandwidth``
    (exactly representable when N > 2·bandwidth).  For the spec as well, use
    ``smooth_metrics(n, period=L).map(lambda s: (s, s.on_grid(shape, L)))``.

    Example
    -------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None)
    ... @given(grid_metric_fields(2, 8, 1.0))
    ... def test_grid(g):
    ...     assert g.shape == (8, 8, 2, 2) and np.linalg.eigvalsh(g).min() > 0
    >>> test_grid()
    """
    n = _check_dim(n)
    shape = _grid_shape(n, shape)
    if not (L > 0):
        raise InvalidArgument(f"L must be > 0, got {L!r}")
    return smooth_metrics(
        n, min_eig=min_eig, max_eig=max_eig, amplitude=amplitude, modes=modes,
        period=L, bandwidth=bandwidth, profiles=("cos",),
    ).map(lambda s: s.on_grid(shape, L))


# =========================================================================
# perturbations on a periodic grid
# =========================================================================
def perturbations(
    n: int,
    shape: Union[int, Sequence[int]],
    L: float,
    *,
    l2_norm: float = 0.1,
    bandwidth: int = 2,
    zero_mean: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    r"""Band-limited symmetric periodic perturbations h on [0, L)ⁿ with a prescribed L² norm.

    Returns arrays ``h[*shape, n, n]`` on the grid x = L·j/N with

    * h_ij = h_ji exactly at every grid point;
    * Fourier content only at wave vectors 2π m/L with |m|_∞ ≤ ``bandwidth``
      (checked by FFT along the spatial axes);
    * (∫_{[0,L)ⁿ} |h(x)|²_F dx)^{1/2} = ``l2_norm`` to rounding, computed by
      :func:`l2_norm` — exact for this band-limited h since every
      N_i ≥ 2·bandwidth + 1 is required;
    * the mean ∫ h dx / Lⁿ = 0 when ``zero_mean`` (the m = 0 mode removed).

    The Fourier coefficients are independent Gaussians weighted by
    (1 + |m|²)^{−s/2}, with the seed and the decay s ∈ [0, 2] drawn by
    hypothesis.  Pointwise, max_x |h(x)|_F ≤ √M ‖h‖ / L^{n/2} with
    M = (2·bandwidth + 1)ⁿ modes (Cauchy–Schwarz on the Fourier sum and
    Parseval), so g + h stays positive definite if √M ‖h‖ / L^{n/2} < λ_min(g).

    Example
    -------
    >>> from hypothesis import given, settings
    >>> from lnegeom.fields import l2_norm
    >>> @settings(max_examples=5, deadline=None)
    ... @given(perturbations(2, 8, 2.0, l2_norm=0.3, bandwidth=2, zero_mean=True))
    ... def test_norm(h):
    ...     assert abs(l2_norm(h, 2.0) - 0.3) < 1e-12
    ...     assert abs(h.mean(axis=(0, 1))).max() < 1e-12
    >>> test_norm()
    """
    norm_target = l2_norm
    n = _check_dim(n)
    shape = _grid_shape(n, shape)
    bandwidth = int(bandwidth)
    if bandwidth < 0:
        raise InvalidArgument(f"bandwidth must be >= 0, got {bandwidth}")
    if any(N < 2 * bandwidth + 1 for N in shape):
        raise InvalidArgument(
            f"grid {shape} cannot represent bandwidth {bandwidth} exactly; every axis needs "
            f"N >= 2*bandwidth + 1 = {2 * bandwidth + 1} points"
        )
    if not (L > 0):
        raise InvalidArgument(f"L must be > 0, got {L!r}")
    if not (norm_target >= 0 and math.isfinite(norm_target)):
        raise InvalidArgument(f"l2_norm must be finite and >= 0, got {norm_target!r}")
    if zero_mean and bandwidth == 0 and norm_target > 0:
        raise InvalidArgument("zero_mean with bandwidth 0 leaves only h = 0; raise bandwidth or set l2_norm=0")

    modes = list(itertools.product(range(-bandwidth, bandwidth + 1), repeat=n))
    if zero_mean:
        modes = [m for m in modes if any(m)]

    @st.composite
    def _draw(draw: Callable) -> np.ndarray:
        seed = draw(st.integers(0, 2**32 - 1))
        decay = draw(st.floats(0.0, 2.0))
        if norm_target == 0:
            return np.zeros((*shape, n, n))
        rng = np.random.default_rng(seed)
        coef = np.zeros((*shape, n, n), dtype=np.complex128)
        for m in modes:
            w = (1.0 + sum(q * q for q in m)) ** (-decay / 2)
            z = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
            coef[tuple(q % N for q, N in zip(m, shape))] = w * z
        h = np.fft.ifftn(coef, axes=tuple(range(n))).real  # content at ±m only: still |m|_∞ ≤ B
        h = symmetric_part(h)
        return h * (norm_target / _l2_norm(h, L))

    return _draw()


# =========================================================================
# coordinate changes
# =========================================================================
def coordinate_maps(
    n: int,
    *,
    strength: float = 0.5,
    min_singular: float = 0.5,
    max_singular: float = 2.0,
    modes: int = 2,
    max_frequency: float = 1.5,
    max_shift: float = 1.0,
) -> st.SearchStrategy[CoordinateMap]:
    r"""Smooth diffeomorphisms φ(x) = A x + b + Σ_k u_k sin(w_k·x + ψ_k) of ℝⁿ (:class:`CoordinateMap`).

    A = Q₁ diag(σ) Q₂ (optionally with a reflection, so orientation-reversing
    maps occur) with singular values σ ∈ [min_singular, max_singular];
    b ∈ [−max_shift, max_shift]ⁿ; 1 ≤ m ≤ ``modes`` terms with wave vectors
    in [−max_frequency, max_frequency]ⁿ; the amplitudes u_k are rescaled so
    that Λ = Σ_k |u_k||w_k| ≤ strength · σ_min(A).  By the proof in
    :class:`CoordinateMap`, with ``strength < 1`` every drawn φ is a
    diffeomorphism of ℝⁿ and (1 − strength) σ_min(A) ≤ σ_min(Dφ(x)) for all x.

    Example
    -------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None)
    ... @given(coordinate_maps(2, strength=0.9))
    ... def test_invertible(phi):
    ...     assert np.linalg.svd(phi.jacobian(np.zeros(2)), compute_uv=False).min() > 0
    >>> test_invertible()
    """
    n = _check_dim(n)
    if not (0.0 <= strength < 1.0):
        raise InvalidArgument(f"strength must lie in [0, 1) for φ to be a diffeomorphism, got {strength!r}")
    _check_eig_range(min_singular, max_singular, "singular")
    if int(modes) < 1:
        raise InvalidArgument(f"modes must be >= 1, got {modes!r}")
    modes = int(modes)

    @st.composite
    def _draw(draw: Callable) -> CoordinateMap:
        sv = draw(hnp.arrays(np.float64, (n,), elements=st.floats(min_singular, max_singular)))
        q1, q2 = draw(_orthogonal(n)), draw(_orthogonal(n))
        if draw(st.booleans()):
            q1 = q1.copy()
            q1[:, 0] = -q1[:, 0]
        a = (q1 * sv) @ q2.T
        b = draw(hnp.arrays(np.float64, (n,), elements=st.floats(-max_shift, max_shift)))
        m = draw(st.integers(1, modes))
        u = draw(hnp.arrays(np.float64, (m, n), elements=st.floats(-1.0, 1.0)))
        w = draw(hnp.arrays(np.float64, (m, n), elements=st.floats(-max_frequency, max_frequency)))
        phases = draw(hnp.arrays(np.float64, (m,), elements=st.floats(0.0, _TWO_PI)))
        lam = float(np.sum(np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1)))
        budget = strength * float(np.min(sv))
        if lam > budget:
            u = u * (budget / lam)
        return CoordinateMap(a, b, u, w, phases)

    return _draw()


# =========================================================================
# points
# =========================================================================
def points(n: int, *, count: int = 1, low: float = -1.0, high: float = 1.0) -> st.SearchStrategy[np.ndarray]:
    r"""``count`` points of the box [low, high]ⁿ as a float64 array ``[count, n]``.

    Pass them straight to a :class:`~lnegeom.metric.MetricField` or to the
    assertion helpers (which check all points in one batch).

    Example
    -------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None)
    ... @given(points(3, count=4, low=0.0, high=2.0))
    ... def test_box(x):
    ...     assert x.shape == (4, 3) and (x >= 0).all() and (x <= 2).all()
    >>> test_box()
    """
    n = _check_dim(n)
    if int(count) < 1:
        raise InvalidArgument(f"count must be >= 1, got {count!r}")
    if not (low <= high):
        raise InvalidArgument(f"need low <= high, got {low!r}, {high!r}")
    return hnp.arrays(np.float64, (int(count), n), elements=st.floats(low, high, allow_subnormal=False))


# =========================================================================
# random symbolic metrics: differential testing of lnegeom.symbolic
# =========================================================================
def _default_coords(n: int) -> tuple:
    import sympy as sp

    return tuple(sp.Symbol(f"x{i}", real=True) for i in range(n))


_BOXES = ((-1.0, 1.0), (-0.5, 1.0), (0.25, 1.25), (-1.5, 0.5), (0.5, 1.5))
_BAD_ATOMS = ("Abs", "sign", "Piecewise", "re", "im", "zoo", "nan", "I")


def symbolic_metrics(
    n: int = 2,
    *,
    signature: str = "riemannian",
    max_depth: int = 2,
    off_diagonal: float = 0.5,
    max_functions: Optional[int] = None,
    num_points: int = 3,
    max_cond: float = 1e4,
) -> st.SearchStrategy[SymbolicMetricSample]:
    r"""Random metrics as sympy matrices, non-degenerate on a box: :class:`SymbolicMetricSample`.

    For differential testing of :mod:`lnegeom.symbolic` (exact curvature)
    against torch autodiff (:func:`assert_symbolic_matches_autodiff`).

    **Grammar.**  Entries are built from the coordinates x0..x(n−1) by
    affine maps, products and squares (leaves); sin, cos, tan, sinh, cosh,
    tanh, atan, exp; log, sqrt and rational powers of positive terms;
    quotients a / (c + b²) (rational functions); sums and products; and
    nested to ``max_depth`` function applications.  Most diagonal entries
    are *composites* outer(inner(arg)) — a non-rational outer function (exp,
    sqrt, log, a rational power) of a trigonometric or hyperbolic function of
    the coordinates, e.g. ``exp(sin(x0))``, ``log(3 + cos(x0*x1))``,
    ``sqrt(2 + sinh(x1))``, ``(cos(x0) + 2)**(3/2)`` — because that is where
    exact rational-function engines have to work hardest.  On a box
    coordinate with low > 0 also powers like ``tanh(x0)**(3/2)`` and
    ``sqrt(sin(x1))`` occur.

    **Well-defined and non-degenerate by construction.**  Every term carries
    interval bounds on the box; log, sqrt and rational powers are only
    applied to terms bounded below by a positive number (``c + f²``,
    ``2 + sin f``, ``exp f``, ``cosh f``, ...), arguments of exp, sinh, cosh,
    tan are kept small (divided by an integer otherwise).  Diagonal entries are
    positive (g₀₀ negative for ``"lorentzian"``: signature (−, +, …, +)),
    with lower bounds L_i; off-diagonal entries are 0, a rational constant or
    c·f with |g_ij| ≤ q·min(L_i, L_j)/(n − 1), q ≤ ``off_diagonal`` < 1.  By
    Gershgorin's theorem (and continuity in q) g is then non-degenerate with
    the stated signature on the whole box.  As a safety net
    :meth:`SymbolicMetricSample.nondegeneracy_problem` is checked on a grid
    and at the points (|λ| ≥ 1e-3, cond ≤ ``max_cond``); draws that fail it
    (rare: bounds are conservative) are rejected with ``assume``.

    Parameters
    ----------
    n:
        Dimension (≥ 1; 2..4 is the intended range).
    signature:
        ``"riemannian"``, ``"lorentzian"`` or ``"any"`` (either).
    max_depth:
        Maximum nesting of function applications per entry (≥ 0).  The
        default 2 keeps :class:`~lnegeom.symbolic.SymbolicMetric` well under
        a second for n = 2; use 1 for n ≥ 4.
    off_diagonal:
        q in [0, 1): the off-diagonal budget (0: diagonal metrics).
    max_functions:
        At most this many off-diagonal entries depend on the coordinates (the
        others are constants or 0); default 1 for n ≥ 3, all for n ≤ 2.
    num_points:
        Number of points drawn in the box (``sample.points``).
    max_cond:
        Reject draws with cond(g) above this on the box.

    Example
    -------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=3, deadline=None)
    ... @given(symbolic_metrics(2, signature="any", max_depth=1))
    ... def test_symbolic(s):
    ...     assert s.nondegeneracy_problem() is None
    >>> test_symbolic()
    """
    n = _check_dim(n)
    if signature not in SIGNATURES + ("any",):
        raise InvalidArgument(f"signature must be 'riemannian', 'lorentzian' or 'any', got {signature!r}")
    if signature == "lorentzian" and n < 2:
        raise InvalidArgument("a Lorentzian metric needs n >= 2")
    if not isinstance(max_depth, (int, np.integer)) or max_depth < 0:
        raise InvalidArgument(f"max_depth must be an integer >= 0, got {max_depth!r}")
    if not (0.0 <= off_diagonal < 1.0):
        raise InvalidArgument(f"off_diagonal must lie in [0, 1), got {off_diagonal!r}")
    if int(num_points) < 1:
        raise InvalidArgument(f"num_points must be >= 1, got {num_points!r}")
    if not (max_cond > 1):
        raise InvalidArgument(f"max_cond must be > 1, got {max_cond!r}")
    if max_functions is None:
        max_functions = n * (n - 1) // 2 if n <= 2 else 1
    depth = int(max_depth)
    sigs = SIGNATURES if signature == "any" else (signature,)

    @st.composite
    def _draw(draw: Callable) -> SymbolicMetricSample:
        import sympy as sp
        from hypothesis import assume
        sig = draw(st.sampled_from(sigs))
        coords = _default_coords(n)
        box = tuple(draw(st.sampled_from(_BOXES)) for _ in range(n))
        gr = Grammar(draw, coords, box)
        diag = [diagonal_entry(gr, depth) for _ in range(n)]
        m = sp.zeros(n, n)
        for i, t in enumerate(diag):
            m[i, i] = -t.e if (sig == "lorentzian" and i == 0) else t.e
        if n > 1 and off_diagonal > 0:
            left = int(max_functions)
            for i in range(n):
                for j in range(i + 1, n):
                    bound = off_diagonal * min(diag[i].lo, diag[j].lo) / (n - 1)
                    e, is_fn = off_diagonal_entry(gr, bound, left)
                    left -= int(is_fn)
                    m[i, j] = m[j, i] = e
        assume(not any(m.has(getattr(sp, a)) for a in _BAD_ATOMS))  # sympy auto-simplified into |x|, ...
        pts = [
            [draw(st.floats(lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo), allow_subnormal=False)) for lo, hi in box]
            for _ in range(int(num_points))
        ]
        # through its own text, so that the repr reproduces the very same expression trees
        sample = SymbolicMetricSample.parse(str(m), signature=sig, box=box, points=pts)
        assume(sample.nondegeneracy_problem(max_cond=max_cond) is None)
        return sample

    return _draw()

