r"""Property-based testing of metrics: hypothesis strategies and curvature assertions.

In the spirit of ``hypothesis.extra.numpy``: this module gives

* **strategies** that draw the objects a geometry test needs — constant SPD
  matrices (:func:`spd_matrices`), smooth metric fields that are positive
  definite *everywhere* (:func:`smooth_metrics`, :func:`metric_fields`,
  :func:`grid_metric_fields`), band-limited periodic perturbations of a
  prescribed L² norm (:func:`perturbations`), smooth invertible coordinate
  changes (:func:`coordinate_maps`) and points in a box (:func:`points`);
* **assertion helpers** that check the curvature identities of a user's
  metric and, when one fails, say *which* identity, *where* (the point) and
  *by how much* (the largest residual, the tolerance, the tensor index):
  :func:`assert_riemann_symmetries`, :func:`assert_ricci_symmetric`,
  :func:`assert_contracted_bianchi`, :func:`assert_scaling`,
  :func:`assert_coordinate_invariance`, :func:`assert_backends_agree` and
  :func:`assert_curvature_identities` (all of them);
* **differential testing of exact curvature**: :func:`symbolic_metrics` draws
  random sympy metrics (:class:`SymbolicMetricSample`: a grammar of
  polynomials, rational functions, exp, log, sqrt, rational powers,
  trigonometric and hyperbolic functions and their compositions, Riemannian
  or Lorentzian, non-degenerate on a box) and
  :func:`assert_symbolic_matches_autodiff` compares Γ, Ric and R of
  :class:`~lnegeom.symbolic.SymbolicMetric` with torch autodiff of the same
  matrix at points, naming the metric, point, component and both values.

Conventions (docs/math.md §1)
-----------------------------
Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij),
R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp,
Ric_jk = R^p_pjk, R = g^jk Ric_jk (unit 2-sphere: R = +2).
The lowered tensor is R_mijk = g_ml R^l_ijk.  With this index placement the
*derivative pair* is (i, j) and the *endomorphism pair* is (m, k), so the
algebraic symmetries read

* R_mijk = −R_mjik            (antisymmetry in i, j),
* R_mijk = −R_kijm            (antisymmetry in m, k),
* R_mijk = R_jkmi             (pair symmetry),
* R^l_ijk + R^l_jki + R^l_kij = 0   (first Bianchi identity),

and Ric_jk = Ric_kj, ∇ʲ Ric_jk = ½ ∂_k R (contracted second Bianchi identity),
R(c² g) = R(g)/c², Ric(c² g) = Ric(g), and for a diffeomorphism φ with
Jacobian J = Dφ: R_{φ*g}(x) = R_g(φ(x)), Ric_{φ*g}(x) = Jᵀ Ric_g(φ(x)) J.

(Note: R_mijk = −R_mikj, a form sometimes quoted, belongs to the index
placement R^l_kij of other texts; it is *false* with docs/math.md §1's.)

Tolerances
----------
Every check compares a residual with ``atol + floor + rtol · scale(x)``, where
``scale(x)`` is the size of the *terms that are summed* into the quantity
checked (not only of the result, which can vanish by cancellation, e.g. for a
flat metric in curvilinear coordinates).  For R^l_ijk the term size is

    T(x) = n · ( max|g⁻¹| · max|∂²g| + max|g⁻¹| · max|∂g| · max|Γ| + max|Γ|² ) + max|R^l_ijk|

(the first three terms when the metric's derivatives are available), lowered
quantities carry an extra factor n · max|g|, the scalar one of n · max|g⁻¹|.
The default ``rtol`` follows the precision: 1e-10 for float64 (the observed
round-off on random fields with cond g up to ~300 is ≤ 1e-15 · scale, a
margin of 1e5), 1e-4 for float32 (observed ≤ 5e-7 · scale); ``atol``
defaults to 0.  ``floor`` is √(smallest normal number) of the dtype (below it
products underflow: ~1e-19 in float32, 1e-154 in float64) plus, in backend
comparisons, the finite-difference error model of :func:`assert_backends_agree`.
Every failure message spells out the tolerance it used.

Example
-------
>>> from hypothesis import given, settings
>>> from lnegeom.testing import metric_fields, points, assert_curvature_identities
>>> @settings(max_examples=3, deadline=None)
... @given(metric_fields(2), points(2))
... def test_identities(g, x):
...     assert_curvature_identities(g, x)
>>> test_identities()
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from ._array import is_torch_array, to_numpy
from .curvature import Curvature, curvature_from_derivatives
from .metric import MetricField

__all__ = [
    # data objects drawn by the strategies
    "SmoothMetric",
    "CoordinateMap",
    "SymbolicMetricSample",
    # strategies
    "spd_matrices",
    "smooth_metrics",
    "metric_fields",
    "grid_metric_fields",
    "perturbations",
    "coordinate_maps",
    "points",
    "symbolic_metrics",
    # utilities
    "l2_norm",
    # assertions
    "assert_riemann_symmetries",
    "assert_ricci_symmetric",
    "assert_contracted_bianchi",
    "assert_scaling",
    "assert_coordinate_invariance",
    "assert_backends_agree",
    "assert_curvature_identities",
    "assert_symbolic_matches_autodiff",
    "SymbolicRefusal",
]

_TWO_PI = 2.0 * math.pi
_PROFILES = ("cos", "tanh")


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


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _tolist(a: np.ndarray) -> list:
    return np.asarray(a).tolist()


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
        return _sym((q * lam) @ q.T)

    return _draw()


# =========================================================================
# smooth metric fields
# =========================================================================
@dataclass(frozen=True, eq=False, repr=False)
class SmoothMetric:
    r"""A smooth metric field on ℝⁿ that is positive definite everywhere.

    .. math::
        g(x) = A + \sum_{k=1}^{m} a_k\, f_k(w_k \cdot x + \varphi_k)\, S_k,

    with ``A = base`` SPD, ``S_k = directions[k]`` symmetric with spectral norm
    ‖S_k‖₂ ≤ 1, ``f_k ∈ {cos, tanh}`` (``profiles[k]``, both bounded by 1),
    wave vectors ``w_k`` and phases ``φ_k``.

    **Positive definiteness everywhere.**  By Weyl's inequality,
    λ_min(g(x)) ≥ λ_min(A) − Σ_k |a_k| |f_k| ‖S_k‖₂ ≥ λ_min(A) − Σ_k |a_k|
    and likewise λ_max(g(x)) ≤ λ_max(A) + Σ_k |a_k|, for *every* x ∈ ℝⁿ.
    :attr:`eigenvalue_bounds` returns these bounds; the strategies choose
    Σ|a_k| ≤ amplitude · λ_min(A) with amplitude < 1, so the lower bound is
    ≥ (1 − amplitude) λ_min(A) > 0.  The field is analytic; with only
    ``cos`` profiles and wave vectors in (2π/L) ℤⁿ it is L-periodic.

    The same field is available to both backends: :meth:`torch_fn` /
    :meth:`numpy_fn` (one point ``x[n] -> g[n, n]``), :attr:`torch` /
    :attr:`numpy` (:class:`~lnegeom.metric.MetricField` objects; the numpy
    one differentiates by finite differences), :meth:`field` for other
    dtypes, :meth:`evaluate` (vectorised numpy over ``x[..., n]``) and
    :meth:`on_grid` (a periodic grid).  The ``repr`` is exact and can be
    pasted back into Python to reproduce a falsifying example.

    Example
    -------
    >>> s = SmoothMetric(base=[[2.0, 0.0], [0.0, 1.0]], coefficients=[0.5],
    ...                  directions=[[[1.0, 0.0], [0.0, -1.0]]], wavevectors=[[1.0, 0.0]],
    ...                  phases=[0.0], profiles=("cos",))
    >>> s.eigenvalue_bounds
    (0.5, 2.5)
    >>> s.evaluate(np.zeros(2))
    array([[2.5, 0. ],
           [0. , 0.5]])
    """

    base: Any
    coefficients: Any
    directions: Any
    wavevectors: Any
    phases: Any
    profiles: tuple = ()

    def __post_init__(self) -> None:
        base = np.asarray(self.base, dtype=np.float64)
        n = base.shape[-1]
        coef = np.asarray(self.coefficients, dtype=np.float64).reshape(-1)
        m = coef.shape[0]
        dirs = np.asarray(self.directions, dtype=np.float64).reshape(m, n, n)
        waves = np.asarray(self.wavevectors, dtype=np.float64).reshape(m, n)
        phases = np.asarray(self.phases, dtype=np.float64).reshape(m)
        profiles = tuple(self.profiles) if len(self.profiles) else ("cos",) * m
        if base.shape != (n, n) or len(profiles) != m:
            raise ValueError(f"inconsistent SmoothMetric shapes: base {base.shape}, {m} terms, profiles {profiles}")
        bad = [p for p in profiles if p not in _PROFILES]
        if bad:
            raise ValueError(f"unknown profiles {bad}; choose from {_PROFILES}")
        for name, val in (("base", base), ("coefficients", coef), ("directions", dirs),
                          ("wavevectors", waves), ("phases", phases), ("profiles", profiles)):
            object.__setattr__(self, name, val)

    # ---------------------------------------------------------------- facts
    @property
    def n(self) -> int:
        """Dimension."""
        return self.base.shape[0]

    @property
    def eigenvalue_bounds(self) -> tuple[float, float]:
        """``(lo, hi)`` with lo ≤ λ_min(g(x)) ≤ λ_max(g(x)) ≤ hi for every x (Weyl)."""
        lam = np.linalg.eigvalsh(self.base)
        norms = np.array([np.linalg.norm(s, 2) for s in self.directions]) if len(self.coefficients) else np.zeros(0)
        budget = float(np.sum(np.abs(self.coefficients) * norms))
        return float(lam[0] - budget), float(lam[-1] + budget)

    def derivative_bound(self, order: int) -> float:
        """Bound on |∂^α g_ij(x)| over all x, i, j and |α| = ``order`` ≤ 3.

        |∂^α g_ij| ≤ Σ_k |a_k| C(|α|) |w_k|_∞^|α| since |(S_k)_ij| ≤ ‖S_k‖₂ ≤ 1,
        with C(q) = 1 for cos and C(q) = 1, 1, 4/(3√3), 2 = max|tanh^(q)| (q = 0..3)
        for tanh.  (Order 0 bounds the oscillating part g − A.)
        """
        if order not in (0, 1, 2, 3):
            raise ValueError(f"order must be 0..3, got {order}")
        c_tanh = (1.0, 1.0, 4.0 / (3.0 * math.sqrt(3.0)), 2.0)[order]
        c = np.array([1.0 if p == "cos" else c_tanh for p in self.profiles])
        w = np.max(np.abs(self.wavevectors), axis=1) if len(c) else np.zeros(0)
        return float(np.sum(np.abs(self.coefficients) * c * w**order))

    # ------------------------------------------------------------ evaluation
    def evaluate(self, x: Any) -> np.ndarray:
        """``g`` at points ``x[..., n]`` (numpy, vectorised) -> ``[..., n, n]``."""
        x = np.asarray(x, dtype=np.float64)
        theta = x @ self.wavevectors.T + self.phases
        is_cos = np.array([p == "cos" for p in self.profiles], dtype=bool)
        prof = np.where(is_cos, np.cos(theta), np.tanh(theta))
        g = self.base + np.einsum("...m,mij->...ij", prof * self.coefficients, self.directions)
        return _sym(g)

    def numpy_fn(self, x: np.ndarray) -> np.ndarray:
        """One point ``x[n]`` -> ``g[n, n]`` with numpy (for ``MetricField(backend="numpy")``)."""
        return self.evaluate(np.asarray(x, dtype=np.float64))

    def _torch_params(self, dtype: Any, device: Any) -> tuple:
        import torch

        conv = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        is_cos = conv(np.array([p == "cos" for p in self.profiles], dtype=np.float64))
        return (conv(self.base), conv(self.coefficients), conv(self.directions),
                conv(self.wavevectors), conv(self.phases), is_cos)

    @staticmethod
    def _torch_eval(params: tuple, x: Any) -> Any:
        import torch

        a, coef, dirs, waves, phases, is_cos = params
        theta = waves @ x + phases
        prof = is_cos * torch.cos(theta) + (1 - is_cos) * torch.tanh(theta)
        g = a + torch.einsum("m,mij->ij", prof * coef, dirs)
        return 0.5 * (g + g.T)

    def torch_fn(self, x: Any) -> Any:
        """One point ``x[n]`` -> ``g[n, n]`` with torch ops (dtype/device of ``x``; vmap/jacfwd safe)."""
        return self._torch_eval(self._torch_params(x.dtype, x.device), x)

    def torch_callable(self, dtype: Any = None, device: Any = None) -> Callable:
        """Like :meth:`torch_fn`, with the parameters converted once (outside any torch.func transform)."""
        import torch

        params = self._torch_params(dtype or torch.float64, device)
        return lambda x: self._torch_eval(params, x)

    def field(
        self, backend: str = "torch", *, dtype: Any = None, device: Any = None, fd_step: float = 1e-3
    ) -> MetricField:
        """This metric as a :class:`~lnegeom.metric.MetricField` of the given backend / dtype."""
        if backend == "torch":
            import torch

            fn = self.torch_callable(dtype or torch.float64, device)
            return MetricField(fn, self.n, dtype=dtype, device=device, name=repr(self))
        if backend == "numpy":
            return MetricField(self.numpy_fn, self.n, backend="numpy", fd_step=fd_step, name=repr(self))
        raise ValueError(f"unknown backend {backend!r}; choose 'torch' or 'numpy'")

    @property
    def torch(self) -> MetricField:
        """Torch-backend (autodiff, float64) :class:`~lnegeom.metric.MetricField`."""
        return self.field("torch")

    @property
    def numpy(self) -> MetricField:
        """Numpy-backend (finite differences) :class:`~lnegeom.metric.MetricField` of the same field."""
        return self.field("numpy")

    def on_grid(self, shape: Union[int, Sequence[int]], L: float) -> np.ndarray:
        """Sample on the periodic grid x_i = L·j_i/N_i (j_i = 0..N_i−1) of [0, L)ⁿ -> ``[*shape, n, n]``."""
        shape = _grid_shape(self.n, shape)
        axes = [np.arange(N) * (L / N) for N in shape]
        x = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        return self.evaluate(x)

    def __repr__(self) -> str:
        return (
            f"SmoothMetric(base={_tolist(self.base)}, coefficients={_tolist(self.coefficients)}, "
            f"directions={_tolist(self.directions)}, wavevectors={_tolist(self.wavevectors)}, "
            f"phases={_tolist(self.phases)}, profiles={self.profiles!r})"
        )


def _grid_shape(n: int, shape: Union[int, Sequence[int]]) -> tuple[int, ...]:
    shape = (int(shape),) * n if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if len(shape) != n or any(s < 1 for s in shape):
        raise InvalidArgument(f"grid shape {shape} must have n={n} positive entries")
    return shape


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
    profiles: Sequence[str] = _PROFILES,
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
    if not profiles or any(p not in _PROFILES for p in profiles):
        raise InvalidArgument(f"profiles must be a non-empty subset of {_PROFILES}, got {profiles!r}")
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
    profiles: Sequence[str] = _PROFILES,
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
def l2_norm(h: np.ndarray, L: float) -> float:
    r"""L² norm ‖h‖ = (∫_{[0,L)ⁿ} |h(x)|²_F dx)^{1/2} of a field ``h[*shape, n, n]`` on the grid of [0, L)ⁿ.

    |h|_F is the Frobenius norm pointwise (Σ_ij h_ij²; the Euclidean
    coordinate norm, not the g-norm).  The integral is the rectangle rule
    (cell volume Π L/N_i), which is *exact* for trigonometric polynomials with
    |m|_∞ ≤ B when every N_i > 2B (|h|² then has content |m|_∞ ≤ 2B < N_i).

    Example
    -------
    >>> h = np.ones((4, 4, 2, 2))          # |h|_F = 2 everywhere on [0, 3)²
    >>> l2_norm(h, 3.0)
    6.0
    """
    h = np.asarray(h, dtype=np.float64)
    spatial = h.shape[:-2]
    cell = float(np.prod([L / N for N in spatial]))
    return float(np.sqrt(cell * np.sum(h * h)))


_l2_norm = l2_norm  # the strategy below has a keyword argument of the same name


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
        h = _sym(h)
        return h * (norm_target / _l2_norm(h, L))

    return _draw()


# =========================================================================
# coordinate changes
# =========================================================================
@dataclass(frozen=True, eq=False, repr=False)
class CoordinateMap:
    r"""A smooth diffeomorphism of ℝⁿ: φ(x) = A x + b + Σ_k u_k sin(w_k·x + ψ_k).

    Let T(x) = Σ_k u_k sin(w_k·x + ψ_k).  Its Jacobian is
    DT(x) = Σ_k cos(w_k·x + ψ_k) u_k w_kᵀ, so for every x
    ‖DT(x)‖₂ ≤ Λ := Σ_k |u_k| |w_k| (and T is Λ-Lipschitz).

    **Claim.** If Λ ≤ s · σ_min(A) with s < 1 (``strength``), then φ is a
    diffeomorphism of ℝⁿ with σ_min(Dφ(x)) ≥ (1 − s) σ_min(A) and
    ‖Dφ(x)‖₂ ≤ (1 + s) ‖A‖₂ everywhere.

    *Proof.* Dφ = A + DT.  For a unit vector v, |Dφ v| ≥ |Av| − |DT v| ≥
    σ_min(A) − Λ ≥ (1 − s) σ_min(A) > 0, so Dφ(x) is invertible for all x
    (and the upper bound is the triangle inequality).  φ is injective:
    |φ(x) − φ(y)| ≥ σ_min(A)|x − y| − Λ|x − y| > 0 for x ≠ y.  φ is onto: for
    a given y the map F(x) = A⁻¹(y − b − T(x)) is a contraction,
    |F(x) − F(x')| ≤ ‖A⁻¹‖₂ Λ |x − x'| ≤ s |x − x'|, so by Banach's theorem it
    has a unique fixed point x*, i.e. φ(x*) = y.  The inverse is smooth by
    the inverse function theorem.  ∎  (:meth:`inverse` runs that iteration.)

    ``__call__`` works on torch tensors (vmap/jacfwd safe, so it can be given
    to :meth:`~lnegeom.metric.MetricField.pullback`) and on numpy arrays, for
    one point ``x[n]`` or a batch ``x[..., n]``.

    Example
    -------
    >>> phi = CoordinateMap(linear=[[2.0, 0.0], [0.0, 1.0]], shift=[0.0, 0.0],
    ...                     amplitudes=[[0.5, 0.0]], wavevectors=[[0.0, 1.0]], phases=[0.0])
    >>> phi.strength                          # Λ / σ_min(A) = 0.5 / 1
    0.5
    >>> y = phi(np.array([0.3, -0.2]))
    >>> np.allclose(phi.inverse(y), [0.3, -0.2])
    True
    """

    linear: Any
    shift: Any
    amplitudes: Any
    wavevectors: Any
    phases: Any

    def __post_init__(self) -> None:
        a = np.asarray(self.linear, dtype=np.float64)
        n = a.shape[0]
        u = np.asarray(self.amplitudes, dtype=np.float64).reshape(-1, n)
        m = u.shape[0]
        vals = dict(
            linear=a,
            shift=np.asarray(self.shift, dtype=np.float64).reshape(n),
            amplitudes=u,
            wavevectors=np.asarray(self.wavevectors, dtype=np.float64).reshape(m, n),
            phases=np.asarray(self.phases, dtype=np.float64).reshape(m),
        )
        if a.shape != (n, n):
            raise ValueError(f"linear part must be square, got {a.shape}")
        for k, v in vals.items():
            object.__setattr__(self, k, v)

    @property
    def n(self) -> int:
        """Dimension."""
        return self.linear.shape[0]

    @property
    def lipschitz(self) -> float:
        """Λ = Σ_k |u_k| |w_k| ≥ sup_x ‖DT(x)‖₂."""
        return float(np.sum(np.linalg.norm(self.amplitudes, axis=1) * np.linalg.norm(self.wavevectors, axis=1)))

    @property
    def strength(self) -> float:
        """s = Λ / σ_min(A); φ is a diffeomorphism when s < 1 (class docstring)."""
        smin = float(np.linalg.svd(self.linear, compute_uv=False)[-1])
        return self.lipschitz / smin if smin > 0 else math.inf

    @property
    def jacobian_singular_value_bounds(self) -> tuple[float, float]:
        """``(lo, hi)`` with lo ≤ σ_min(Dφ(x)) ≤ ‖Dφ(x)‖₂ ≤ hi for every x."""
        sv = np.linalg.svd(self.linear, compute_uv=False)
        lam = self.lipschitz
        return float(sv[-1] - lam), float(sv[0] + lam)

    def _torch_params(self, dtype: Any, device: Any) -> tuple:
        import torch

        return tuple(torch.as_tensor(a, dtype=dtype, device=device)
                     for a in (self.linear, self.shift, self.amplitudes, self.wavevectors, self.phases))

    def torch_callable(self, dtype: Any = None, device: Any = None) -> Callable:
        """φ as a torch function with its parameters converted once (for repeated use under torch.func)."""
        import torch

        a, b, u, w, ph = self._torch_params(dtype or torch.float64, device)
        return lambda x: x @ a.T + b + torch.sin(x @ w.T + ph) @ u

    def __call__(self, x: Any) -> Any:
        """φ(x) for ``x[..., n]`` (torch tensor or numpy array; same type back)."""
        if is_torch_array(x):
            import torch

            a, b, u, w, ph = self._torch_params(x.dtype, x.device)
            return x @ a.T + b + torch.sin(x @ w.T + ph) @ u
        x = np.asarray(x, dtype=np.float64)
        return x @ self.linear.T + self.shift + np.sin(x @ self.wavevectors.T + self.phases) @ self.amplitudes

    def jacobian(self, x: Any) -> np.ndarray:
        """Dφ(x)[..., i, a] = ∂_a φ^i at numpy points ``x[..., n]``."""
        x = np.asarray(x, dtype=np.float64)
        c = np.cos(x @ self.wavevectors.T + self.phases)
        return self.linear + np.einsum("...k,ki,ka->...ia", c, self.amplitudes, self.wavevectors)

    def inverse(self, y: Any, *, tol: float = 1e-13, max_iter: int = 10_000) -> np.ndarray:
        """φ⁻¹(y) for numpy ``y[..., n]`` by the contraction x ← A⁻¹(y − b − T(x)) (needs strength < 1)."""
        s = self.strength
        if not s < 1:
            raise ValueError(f"strength {s:.3g} >= 1: the fixed-point iteration need not converge")
        y = np.asarray(y, dtype=np.float64)
        ainv_t = np.linalg.inv(self.linear).T
        x = (y - self.shift) @ ainv_t
        for _ in range(max_iter):
            t = np.sin(x @ self.wavevectors.T + self.phases) @ self.amplitudes
            x_new = (y - self.shift - t) @ ainv_t
            if np.max(np.abs(x_new - x), initial=0.0) <= tol * (1.0 + np.max(np.abs(x_new), initial=0.0)):
                return x_new
            x = x_new
        raise RuntimeError("fixed-point iteration for the inverse did not converge")

    def __repr__(self) -> str:
        return (
            f"CoordinateMap(linear={_tolist(self.linear)}, shift={_tolist(self.shift)}, "
            f"amplitudes={_tolist(self.amplitudes)}, wavevectors={_tolist(self.wavevectors)}, "
            f"phases={_tolist(self.phases)})"
        )


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
# assertion helpers
# =========================================================================
MetricLike = Union[MetricField, Curvature, Any]

_RTOL = {64: 1e-10, 32: 1e-4}


def _bits(a: Any) -> int:
    dt = a.dtype
    try:
        return int(np.dtype(dt).itemsize * 8)
    except TypeError:  # torch dtype
        return int(dt.itemsize * 8)


def _default_rtol(*arrays: Any) -> float:
    return max(_RTOL.get(_bits(a), 1e-2) for a in arrays)


def _np(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a), dtype=np.float64)


def _maxabs(a: np.ndarray, keep: int = 1) -> np.ndarray:
    """max |a| over all but the first ``keep`` axes."""
    a = np.abs(a)
    return a.reshape(*a.shape[:keep], -1).max(axis=-1) if a.ndim > keep else a


class _Curv:
    """Flattened numpy view of a curvature evaluation, with the tolerance scales."""

    def __init__(self, curv: Curvature, pts: Optional[np.ndarray], dg: Any = None, d2g: Any = None) -> None:
        g = _np(curv.g)
        n = g.shape[-1]
        self.n = n
        self.bits = _bits(curv.riemann)
        # below √tiny products underflow: an absolute floor, negligible for any sensible curvature
        self.underflow = float(np.sqrt(np.finfo({16: np.float16, 32: np.float32}.get(self.bits, np.float64)).tiny))
        self.rtol_default = _default_rtol(curv.riemann)
        self.g = g.reshape(-1, n, n)
        self.B = self.g.shape[0]
        self.g_inv = _np(curv.g_inv).reshape(-1, n, n)
        self.gamma = _np(curv.christoffel).reshape(-1, n, n, n)
        self.riemann = _np(curv.riemann).reshape(-1, n, n, n, n)
        self.ricci = _np(curv.ricci).reshape(-1, n, n)
        self.scalar = _np(curv.scalar).reshape(-1)
        self.pts = None if pts is None else np.asarray(pts, dtype=np.float64).reshape(-1, n)
        gi, ga = _maxabs(self.g_inv), _maxabs(self.gamma)
        t = ga**2
        if d2g is not None:
            t = t + gi * _maxabs(_np(d2g).reshape(self.B, -1))
        if dg is not None:
            t = t + gi * _maxabs(_np(dg).reshape(self.B, -1)) * ga
        # size of the terms summed into R^l_ijk (module docstring)
        self.t_up = n * t + _maxabs(self.riemann)
        self.t_low = n * _maxabs(self.g) * self.t_up
        self.t_scalar = n * gi * self.t_up
        self.fd = np.zeros(self.B)  # finite-difference error floor for R^l_ijk (set by _evaluate)

    @property
    def fd_ricci(self) -> np.ndarray:
        return self.n * self.fd

    @property
    def fd_scalar(self) -> np.ndarray:
        return self.n**2 * _maxabs(self.g_inv) * self.fd

    @property
    def lowered(self) -> np.ndarray:
        # computed here, not via Curvature.riemann_lowered (which caches)
        return np.einsum("bml,blijk->bmijk", self.g, self.riemann)


def _points_np(x: Any, n: int) -> np.ndarray:
    return np.asarray(to_numpy(x), dtype=np.float64).reshape(-1, n)


def _evaluate(metric: MetricLike, x: Any) -> _Curv:
    """Curvature (and derivatives when available) of a metric, or a ready Curvature."""
    if isinstance(metric, Curvature):
        n = metric.g.shape[-1]
        return _Curv(metric, None if x is None else _points_np(x, n))
    if x is None:
        raise TypeError("points x are required when a metric (not a Curvature) is given")
    if isinstance(metric, MetricField):
        g, dg, d2g = metric.derivatives(x)
        curv = curvature_from_derivatives(g, dg, d2g, check=False)
        c = _Curv(curv, _points_np(x, metric.n), dg, d2g)
        if _is_fd(metric):
            # finite-difference round-off on ∂²g: ~ ε max|g| / h² (stencil weights ~5), carried by g⁻¹ into R
            h = float(getattr(metric, "fd_step", 1e-3))
            c.fd = _FD_SAFETY * np.finfo(np.float64).eps / h**2 * c.n * _maxabs(c.g) * _maxabs(c.g_inv)
        return c
    curv = metric.curvature(x)
    return _Curv(curv, _points_np(x, curv.g.shape[-1]))


def _fmt_point(c: _Curv, b: int) -> str:
    if c.pts is None:
        return f"batch index {b}"
    return "x = [" + ", ".join(f"{v:.6g}" for v in c.pts[b]) + "]"


def _check(
    failures: list,
    name: str,
    expr: str,
    resid: np.ndarray,
    scale: np.ndarray,
    c: _Curv,
    atol: float,
    rtol: float,
    index_names: str = "",
    floor: Any = 0.0,
) -> None:
    """Append a message to ``failures`` if ``|resid| > atol + floor + rtol·scale`` at some point."""
    B = resid.shape[0]
    r = np.abs(resid).reshape(B, -1)
    nonfinite = ~np.isfinite(r)
    r = np.where(nonfinite, np.inf, r)
    rmax = r.max(axis=1) if r.shape[1] else np.zeros(B)
    floor = np.maximum(np.broadcast_to(np.asarray(floor, dtype=np.float64), (B,)), c.underflow)
    tol = atol + floor + rtol * np.where(np.isfinite(scale), scale, 0.0)
    bad = rmax > tol
    if not bad.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bad, rmax / np.where(tol > 0, tol, 1e-300), -1.0)
    b = int(np.argmax(ratio))
    flat = int(np.argmax(r[b]))
    shape = resid.shape[1:]
    idx = np.unravel_index(flat, shape) if shape else ()
    where = f" at index ({index_names}) = {tuple(int(i) for i in idx)}" if index_names else ""
    value = "not finite" if nonfinite[b].any() else f"{rmax[b]:.3e}"
    fl = f" + finite-difference floor {floor[b]:.1e}" if floor[b] > c.underflow else ""
    failures.append(
        f"{name} fails at {_fmt_point(c, b)}: max |{expr}| = {value} "
        f"(tolerance {tol[b]:.3e} = atol {atol:.1e} + rtol {rtol:.1e} * scale {scale[b]:.3e}{fl})"
        f"{where}; {int(bad.sum())} of {B} point(s) fail"
    )


def _raise(failures: list) -> None:
    if len(failures) == 1:
        raise AssertionError(failures[0])
    if failures:
        raise AssertionError(
            f"{len(failures)} curvature identities fail:\n" + "\n".join(f"  - {f}" for f in failures)
        )


def _riemann_failures(c: _Curv, atol: float, rtol: float) -> list:
    fails: list = []
    low = c.lowered
    _check(fails, "Riemann antisymmetry in (i, j)", "R_mijk + R_mjik",
           low + np.einsum("bmjik->bmijk", low), c.t_low, c, atol, rtol, "m,i,j,k")
    _check(fails, "Riemann antisymmetry in (m, k)", "R_mijk + R_kijm",
           low + np.einsum("bkijm->bmijk", low), c.t_low, c, atol, rtol, "m,i,j,k")
    _check(fails, "Riemann pair symmetry", "R_mijk - R_jkmi",
           low - np.einsum("bjkmi->bmijk", low), c.t_low, c, atol, rtol, "m,i,j,k")
    r = c.riemann
    cyc = r + np.einsum("bljki->blijk", r) + np.einsum("blkij->blijk", r)
    _check(fails, "first Bianchi identity", "R^l_ijk + R^l_jki + R^l_kij",
           cyc, c.t_up, c, atol, rtol, "l,i,j,k")
    return fails


def assert_riemann_symmetries(
    metric: MetricLike, x: Any = None, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert the algebraic symmetries of Riemann at the points ``x[..., n]``.

    With R_mijk = g_ml R^l_ijk and docs/math.md §1's index placement:
    R_mijk = −R_mjik, R_mijk = −R_kijm (the two antisymmetries),
    R_mijk = R_jkmi (pair symmetry) and R^l_ijk + R^l_jki + R^l_kij = 0
    (first Bianchi).  ``metric`` is a :class:`~lnegeom.metric.MetricField`
    (or any object with ``curvature(x)``), or a ready
    :class:`~lnegeom.curvature.Curvature` (then ``x`` only labels the points).
    Tolerance: ``atol + rtol · scale`` with the term scale of the module
    docstring; ``rtol`` defaults by dtype (1e-10 float64, 1e-4 float32).
    Raises ``AssertionError`` naming the identity, the point, the largest
    residual and its index.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_riemann_symmetries(sphere, [[1.0, 0.3], [0.5, 2.0]])
    """
    c = _evaluate(metric, x)
    _raise(_riemann_failures(c, atol, c.rtol_default if rtol is None else rtol))


def _ricci_failures(c: _Curv, atol: float, rtol: float) -> list:
    fails: list = []
    _check(fails, "Ricci symmetry", "Ric_jk - Ric_kj", c.ricci - np.swapaxes(c.ricci, -1, -2),
           c.n * c.t_up, c, atol, rtol, "j,k")
    return fails


def assert_ricci_symmetric(
    metric: MetricLike, x: Any = None, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert Ric_jk = Ric_kj (Ric_jk = R^p_pjk, docs/math.md §1) at the points ``x[..., n]``.

    Symmetry of Ricci is the contraction of the pair symmetry; a failure
    usually means a non-symmetric metric or inconsistent derivatives.
    ``metric`` and the tolerances as in :func:`assert_riemann_symmetries`.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> g = MetricField(lambda x: torch.eye(2, dtype=x.dtype) * torch.exp(x[0] * x[1]), 2)
    >>> assert_ricci_symmetric(g, [[0.1, 0.2]])
    """
    c = _evaluate(metric, x)
    _raise(_ricci_failures(c, atol, c.rtol_default if rtol is None else rtol))


def _bianchi2_failures(metric: Any, x: Any, atol: float, rtol: Optional[float]) -> list:
    c = _evaluate(metric, x)
    rt = c.rtol_default if rtol is None else rtol
    div, half_dr = metric.ricci_divergence(x)
    div = _np(div).reshape(c.B, c.n)
    half_dr = _np(half_dr).reshape(c.B, c.n)
    resid = div - half_dr
    # terms of ∇ʲRic_jk: g^ij ∂_i Ric_jk and g^ij Γ Ric; a cheap proxy for |∂Ric| is T^{3/2} (its dimension)
    size_both = np.abs(div).max(axis=1) + np.abs(half_dr).max(axis=1)
    gi, gr = _maxabs(c.g_inv), 2 * _maxabs(c.gamma) * _maxabs(c.ricci)
    scale = size_both + c.n**2 * gi * (c.t_up**1.5 + gr)
    if np.any(np.abs(resid).max(axis=1) > atol + c.underflow + rt * scale) and hasattr(metric, "curvature_gradient"):
        # the proxy can underestimate |∂Ric| (e.g. for tiny perturbations of a flat metric, where
        # both sides cancel at linear order): judge again with the actual size of ∂Ric
        _, d_ric, d_r = metric.curvature_gradient(x)
        d_size = _maxabs(_np(d_ric).reshape(c.B, -1)) + 0.5 * _maxabs(_np(d_r).reshape(c.B, -1))
        scale = np.maximum(scale, size_both + c.n**2 * gi * (d_size + gr))
    fails: list = []
    _check(fails, "contracted second Bianchi identity", "nabla^j Ric_jk - (1/2) d_k R",
           resid, scale, c, atol, rt, "k")
    return fails


def assert_contracted_bianchi(
    metric: MetricField, x: Any, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert the contracted second Bianchi identity ∇ʲ Ric_jk = ½ ∂_k R at ``x[..., n]``.

    ∇ʲ Ric_jk = g^ij (∂_i Ric_jk − Γ^p_ij Ric_pk − Γ^p_ik Ric_jp) and ∂_k R
    come from :meth:`~lnegeom.metric.MetricField.ricci_divergence` (third
    derivatives of g by autodiff: torch backend only).  The scale adds
    n² max|g⁻¹| (|∂Ric| + 2 max|Γ| max|Ric|) to the sizes of both sides.
    |∂Ric| is first estimated by T^{3/2} (its dimension); only if that
    check fails is the actual max|∂Ric| + ½ max|∂R| computed by
    :meth:`~lnegeom.metric.MetricField.curvature_gradient` (a second
    third-derivative pass) and the larger scale used.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> g = MetricField(lambda x: torch.eye(2, dtype=x.dtype) * torch.exp(torch.sin(x[0]) * x[1]), 2)
    >>> assert_contracted_bianchi(g, [[0.1, 0.2], [1.0, -0.5]])
    """
    _raise(_bianchi2_failures(metric, x, atol, rtol))


def _scaling_failures(metric: Any, x: Any, c: float, atol: float, rtol: Optional[float]) -> list:
    if not (c > 0 and math.isfinite(c)):
        raise ValueError(f"scale factor c must be finite and > 0, got {c!r}")
    a = _evaluate(metric, x)
    b = _evaluate(metric.scaled(c * c), x)
    rt = a.rtol_default if rtol is None else rtol
    fails: list = []
    _check(fails, "scaling identity R(c^2 g) = R(g)/c^2" + f" (c = {c:g})", "R(c^2 g) - R(g)/c^2",
           b.scalar - a.scalar / (c * c), np.maximum(a.t_scalar / (c * c), b.t_scalar), a, atol, rt,
           floor=np.maximum(a.fd_scalar / (c * c), b.fd_scalar))
    _check(fails, "Ricci scaling identity Ric(c^2 g) = Ric(g)" + f" (c = {c:g})", "Ric(c^2 g)_jk - Ric(g)_jk",
           b.ricci - a.ricci, a.n * np.maximum(a.t_up, b.t_up), a, atol, rt, "j,k",
           floor=np.maximum(a.fd_ricci, b.fd_ricci))
    return fails


def assert_scaling(
    metric: MetricField, x: Any, c: float = 2.0, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert R(c² g) = R(g)/c² and Ric(c² g) = Ric(g) at ``x[..., n]`` (uses ``metric.scaled(c²)``).

    Γ is invariant under constant rescaling, hence R^l_ijk and Ric_jk are, and
    R = g^jk Ric_jk picks up g⁻¹ → g⁻¹/c² (docs/math.md §1).

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_scaling(sphere, [[1.0, 0.3]], c=3.0)     # R: 2 -> 2/9
    """
    _raise(_scaling_failures(metric, x, c, atol, rtol))


def _invariance_failures(metric: Any, phi: Callable, x: Any, atol: float, rtol: Optional[float]) -> list:
    import torch
    from torch.func import jacfwd, vmap

    n = metric.n
    dtype = getattr(metric, "dtype", torch.float64)
    device = getattr(metric, "device", None)
    xt = x if is_torch_array(x) else torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
    xt = xt.to(dtype=dtype).reshape(-1, n)
    y = vmap(phi)(xt)
    jac = _np(vmap(jacfwd(phi))(xt))  # J[b, i, a] = ∂_a φ^i
    pulled = _evaluate(metric.pullback(phi), xt)
    target = _evaluate(metric, y)
    target.pts = pulled.pts  # report the point x where the pull-back is evaluated
    rt = pulled.rtol_default if rtol is None else rtol
    jn = _maxabs(jac)
    fails: list = []
    _check(fails, "coordinate invariance of the scalar curvature R_{phi*g}(x) = R_g(phi(x))",
           "R_{phi*g}(x) - R_g(phi(x))", pulled.scalar - target.scalar,
           np.maximum(pulled.t_scalar, target.t_scalar), pulled, atol, rt)
    _check(fails, "tensorial transformation of Ricci Ric_{phi*g}(x) = J^T Ric_g(phi(x)) J",
           "Ric_{phi*g}(x)_ab - (J^T Ric_g(phi(x)) J)_ab",
           pulled.ricci - np.einsum("bia,bij,bjc->bac", jac, target.ricci, jac),
           n * np.maximum(pulled.t_up, n * n * jn**2 * target.t_up), pulled, atol, rt, "a,b")
    return fails


def assert_coordinate_invariance(
    metric: MetricField, phi: Callable, x: Any, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert R_{φ*g}(x) = R_g(φ(x)) and Ric_{φ*g}(x) = Jᵀ Ric_g(φ(x)) J at ``x[..., n]``.

    (φ*g)_ab(x) = ∂_a φ^i ∂_b φ^j g_ij(φ(x)) (:meth:`~lnegeom.metric.MetricField.pullback`,
    torch backend), J = Dφ(x).  Scalar curvature is a scalar and Ricci a
    (0,2)-tensor, so both identities hold for every diffeomorphism φ (e.g.
    from :func:`coordinate_maps`); ``phi`` maps a torch point ``x[n]`` to
    ``y[n]`` and must be vmap/jacfwd-compatible.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_coordinate_invariance(sphere, lambda x: torch.stack([x[0] + 0.1 * x[1] ** 2, x[1]]), [[1.0, 0.2]])
    """
    _raise(_invariance_failures(metric, phi, x, atol, rtol))


_FD_SAFETY = 50.0


def _is_fd(metric: Any) -> bool:
    return getattr(metric, "backend", None) == "numpy" and getattr(metric, "derivatives_fn", None) is None


def _backend_failures(a: Any, b: Any, x: Any, atol: float, rtol: Optional[float]) -> list:
    ca, cb = _evaluate(a, x), _evaluate(b, x)
    if rtol is None:
        rtol = max(ca.rtol_default, cb.rtol_default, *(1e-6 for m in (a, b) if _is_fd(m)))
    label = f"{getattr(a, 'backend', '?')}/{_dtype_name(ca)} vs {getattr(b, 'backend', '?')}/{_dtype_name(cb)}"
    fails: list = []
    ca.underflow = max(ca.underflow, cb.underflow)
    # a perturbation δg of relative size ε moves R by ~ ε cond(g) T: the comparison scale carries cond(g)
    cond = ca.n * np.maximum(_maxabs(ca.g) * _maxabs(ca.g_inv), _maxabs(cb.g) * _maxabs(cb.g_inv))
    t = np.maximum(ca.t_up, cb.t_up) * cond
    _check(fails, f"backend agreement on the metric ({label})", "g_a - g_b", ca.g - cb.g,
           _maxabs(ca.g), ca, atol, rtol, "i,j")
    _check(fails, f"backend agreement on Riemann ({label})", "R^l_ijk(a) - R^l_ijk(b)",
           ca.riemann - cb.riemann, t, ca, atol, rtol, "l,i,j,k", floor=np.maximum(ca.fd, cb.fd))
    _check(fails, f"backend agreement on Ricci ({label})", "Ric_jk(a) - Ric_jk(b)",
           ca.ricci - cb.ricci, ca.n * t, ca, atol, rtol, "j,k", floor=np.maximum(ca.fd_ricci, cb.fd_ricci))
    _check(fails, f"backend agreement on the scalar curvature ({label})", "R(a) - R(b)",
           ca.scalar - cb.scalar, np.maximum(ca.t_scalar, cb.t_scalar) * cond, ca, atol, rtol,
           floor=np.maximum(ca.fd_scalar, cb.fd_scalar))
    return fails


def _dtype_name(c: _Curv) -> str:
    return f"float{c.bits}"


def assert_backends_agree(
    reference: MetricField, other: MetricField, x: Any, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert two metric fields give the same g, R^l_ijk, Ric_jk and R at ``x[..., n]``.

    Typical use: the torch (autodiff) and numpy (finite-difference) fields of
    one :class:`SmoothMetric`, or float32 against float64.

    Tolerance ``atol + floor + rtol · scale``.  A relative perturbation ε of
    g moves R^l_ijk by about ε · cond(g) · T, so here the scale is the term
    size T of the module docstring times n · max|g| · max|g⁻¹|.  The default
    ``rtol`` is that of the less precise side: 1e-10 (float64, autodiff or
    exact derivatives), 1e-4 (float32; observed float32-vs-float64
    differences ≤ 1e-6 · scale), 1e-6 when a side uses finite differences.
    Caveat for float32: a function whose derivative torch evaluates with an
    *absolute* rather than relative error — e.g. a saturated tanh, whose
    derivative is computed as 1 − tanh² — loses all relative accuracy where
    that derivative is small; pass an ``atol`` of about ε₃₂ times the
    unsaturated derivative size (see :meth:`SmoothMetric.derivative_bound`).

    Finite differences (the numpy backend without exact derivatives) add an
    absolute floor.  The 4th-order stencils of :mod:`lnegeom.derivatives`
    with step h have round-off ≈ ε |g| · (Σ|weights|)/(12 h²) ≈ 5 ε |g| / h²
    on ∂²g (≈ 1e-9 |g| for h = 1e-3), which g⁻¹ carries into R^l_ijk, and
    truncation error ≈ h⁴ |∂⁶g| / 90 — relative to ∂²g only ≈ h⁴|w|⁴/90 ≈ 1e-14
    for the wave numbers |w| ≲ 3 of :func:`smooth_metrics`, covered by rtol.
    The floor is 50 · ε/h² · n · max|g| · max|g⁻¹| for R^l_ijk (times n for
    Ric, n² max|g⁻¹| for R); the observed differences on random fields
    (cond g up to ~300) stay below 1/50 of it.

    Example
    -------
    >>> s = SmoothMetric(base=[[2.0, 0.3], [0.3, 1.0]], coefficients=[0.4],
    ...                  directions=[[[1.0, 0.0], [0.0, -1.0]]], wavevectors=[[1.0, 0.5]],
    ...                  phases=[0.2], profiles=("cos",))
    >>> assert_backends_agree(s.torch, s.numpy, [[0.1, 0.2]])
    """
    _raise(_backend_failures(reference, other, x, atol, rtol))


def assert_curvature_identities(
    metric: MetricField,
    x: Any,
    *,
    phi: Optional[Callable] = None,
    other: Optional[MetricField] = None,
    c: float = 2.0,
    bianchi: Optional[bool] = None,
    atol: float = 0.0,
    rtol: Optional[float] = None,
) -> None:
    r"""Run every identity check on ``metric`` at ``x[..., n]`` and report *all* failures at once.

    Always: Riemann symmetries and first Bianchi
    (:func:`assert_riemann_symmetries`), Ricci symmetry
    (:func:`assert_ricci_symmetric`), scaling with factor ``c``
    (:func:`assert_scaling`).  ``bianchi`` (default: when the metric has the
    torch backend) adds the contracted second Bianchi identity
    (:func:`assert_contracted_bianchi`); ``phi`` adds coordinate invariance
    under φ (:func:`assert_coordinate_invariance`); ``other`` adds agreement
    with a second field (:func:`assert_backends_agree`).  Conventions:
    docs/math.md §1.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_curvature_identities(sphere, [[1.0, 0.3]], phi=lambda x: x + 0.1 * torch.sin(x.flip(0)))
    """
    cv = _evaluate(metric, x)
    rt = cv.rtol_default if rtol is None else rtol
    fails = _riemann_failures(cv, atol, rt) + _ricci_failures(cv, atol, rt)
    fails += _scaling_failures(metric, x, c, atol, rtol)
    if bianchi is None:
        bianchi = getattr(metric, "backend", "torch") == "torch" and hasattr(metric, "ricci_divergence")
    if bianchi:
        fails += _bianchi2_failures(metric, x, atol, rtol)
    if phi is not None:
        fails += _invariance_failures(metric, phi, x, atol, rtol)
    if other is not None:
        fails += _backend_failures(metric, other, x, atol, rtol)
    _raise(fails)


# =========================================================================
# random symbolic metrics: differential testing of lnegeom.symbolic
# =========================================================================
_SIGNATURES = ("riemannian", "lorentzian")
_MAX_PARSE_DIM = 10


def _sympy() -> Any:
    import sympy  # imported on first use: lnegeom.testing does not need sympy otherwise

    return sympy


def _default_coords(n: int) -> tuple:
    sp = _sympy()
    return tuple(sp.Symbol(f"x{i}", real=True) for i in range(n))


@dataclass(frozen=True, eq=False, repr=False)
class SymbolicMetricSample:
    r"""A metric given by a sympy matrix, with a box of coordinates where it is non-degenerate.

    ``coords`` (sympy Symbols x⁰..xⁿ⁻¹), ``matrix`` (a symmetric
    ``sympy.ImmutableMatrix`` g_ij(x)), ``signature`` (``"riemannian"``: g
    positive definite; ``"lorentzian"``: signature (−, +, …, +), the
    coordinate x⁰ timelike), ``box`` (one ``(low, high)`` pair per coordinate:
    every entry is defined and smooth on the box) and ``points`` (points of
    the box, ``[count, n]``, at which tests evaluate curvature; by default
    four fixed points).  Drawn by :func:`symbolic_metrics`; check with
    :func:`assert_symbolic_matches_autodiff`.

    :meth:`symbolic` gives the :class:`~lnegeom.symbolic.SymbolicMetric`
    (the path under test), :meth:`field` a torch-autodiff
    :class:`~lnegeom.metric.MetricField` of the *same* matrix built without
    :mod:`lnegeom.symbolic` (``sympy.lambdify`` of the entries only: the
    reference), :meth:`evaluate` the matrix with numpy.  The ``repr`` is
    exact and can be pasted back into Python (with
    ``from lnegeom.testing import SymbolicMetricSample``) to reproduce a
    falsifying example.

    Example
    -------
    >>> s = SymbolicMetricSample.parse("Matrix([[exp(sin(x0)), 0], [0, exp(sin(x0))]])")
    >>> s.n, s.signature, s.box
    (2, 'riemannian', ((-1.0, 1.0), (-1.0, 1.0)))
    >>> print(s.nondegeneracy_problem())
    None
    >>> s.evaluate([0.0, 0.0])
    array([[1., 0.],
           [0., 1.]])
    """

    coords: Any
    matrix: Any
    signature: str = "riemannian"
    box: Any = None
    points: Any = None

    def __post_init__(self) -> None:
        sp = _sympy()
        coords = (self.coords,) if isinstance(self.coords, sp.Symbol) else tuple(self.coords)
        if not all(isinstance(c, sp.Symbol) for c in coords) or len(set(coords)) != len(coords):
            raise ValueError(f"coords must be distinct sympy Symbols, got {self.coords!r}")
        n = len(coords)
        matrix = sp.ImmutableMatrix(self.matrix)
        if matrix.shape != (n, n):
            raise ValueError(f"{n} coordinates but a matrix of shape {matrix.shape}")
        extra = matrix.free_symbols - set(coords)
        if extra:
            raise ValueError(f"the matrix contains symbols {sorted(map(str, extra))} that are not coordinates")
        if self.signature not in _SIGNATURES:
            raise ValueError(f"signature must be one of {_SIGNATURES}, got {self.signature!r}")
        box = ((-1.0, 1.0),) * n if self.box is None else tuple((float(lo), float(hi)) for lo, hi in self.box)
        if len(box) != n or not all(lo < hi for lo, hi in box):
            raise ValueError(f"box must give n = {n} pairs (low, high) with low < high, got {self.box!r}")
        if self.points is None:
            lo, hi = np.array(box).T
            frac = 0.1 + 0.8 * np.random.default_rng(0).random((4, n))
            pts = lo + (hi - lo) * frac
        else:
            pts = np.asarray(self.points, dtype=np.float64).reshape(-1, n)
        lo, hi = np.array(box).T
        if pts.shape[0] < 1 or not np.all((pts >= lo) & (pts <= hi)):
            raise ValueError(f"points must be a non-empty [count, {n}] array inside the box {box}")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "points", tuple(tuple(float(v) for v in p) for p in pts))

    @classmethod
    def parse(
        cls, matrix: str, coords: Union[str, Sequence[str], None] = None, **kw: Any
    ) -> "SymbolicMetricSample":
        """Build a sample from the text of a sympy matrix, e.g. ``"Matrix([[1, 0], [0, exp(x0)]])"``.

        ``coords``: the coordinate names (a string ``"x y"`` or a sequence);
        default ``x0, x1, ...`` up to the size of the matrix.  All coordinates
        are real sympy Symbols.  Other keywords go to the constructor.
        """
        sp = _sympy()
        if coords is None:
            names = [f"x{i}" for i in range(_MAX_PARSE_DIM)]
        else:
            names = coords.replace(",", " ").split() if isinstance(coords, str) else list(coords)
        syms = [sp.Symbol(s, real=True) for s in names]
        m = sp.Matrix(sp.sympify(matrix, locals={s.name: s for s in syms}))
        if coords is None:
            syms = syms[: m.rows]
        return cls(tuple(syms), m, **kw)

    # ---------------------------------------------------------------- facts
    @property
    def n(self) -> int:
        """Dimension."""
        return len(self.coords)

    def __repr__(self) -> str:
        names = " ".join(c.name for c in self.coords)
        return (
            f"SymbolicMetricSample.parse({str(self.matrix)!r}, coords={names!r}, "
            f"signature={self.signature!r}, box={self.box!r}, points={self.points!r})"
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # hypothesis prints falsifying examples with this
        p.text(repr(self))

    # ------------------------------------------------------------ evaluation
    def symbolic(self, **kw: Any) -> Any:
        """The :class:`~lnegeom.symbolic.SymbolicMetric` of the matrix (keywords go to it)."""
        from .symbolic import SymbolicMetric

        kw.setdefault("name", "SymbolicMetricSample")
        return SymbolicMetric(self.coords, self.matrix, **kw)

    def evaluate(self, x: Any) -> np.ndarray:
        """g at points ``x[..., n]`` with numpy (``sympy.lambdify`` of the entries) -> ``[..., n, n]``."""
        return _lambdified_matrix(self.coords, self.matrix, "numpy")(x)

    def torch_fn(self) -> Callable:
        """One point ``x[n]`` -> ``g[n, n]`` with torch ops (vmap/jacfwd safe), built from the entries only."""
        return _lambdified_matrix(self.coords, self.matrix, "torch")

    def field(self, **kw: Any) -> MetricField:
        """Torch-autodiff :class:`~lnegeom.metric.MetricField` of the matrix (the reference path).

        The positivity check of the field is off for Lorentzian samples.
        """
        kw.setdefault("check", self.signature == "riemannian")
        kw.setdefault("name", repr(self))
        return MetricField(self.torch_fn(), self.n, backend="torch", **kw)

    def nondegeneracy_problem(
        self, *, max_cond: float = 1e4, min_abs_eig: float = 1e-3, grid: int = 3
    ) -> Optional[str]:
        """``None`` if g is finite, non-degenerate and of the right signature at the sample points
        and on a ``grid``ⁿ grid of the box (corners included), with
        min |λ| ≥ ``min_abs_eig`` and cond(g) = max |λ| / min |λ| ≤ ``max_cond``;
        otherwise a sentence naming the first bad point.
        """
        axes = [np.linspace(lo, hi, grid) for lo, hi in self.box]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.n)
        x = np.concatenate([np.asarray(self.points), mesh])
        with np.errstate(all="ignore"):
            try:
                g = self.evaluate(x)
            except Exception as exc:  # e.g. a complex value
                return f"the matrix cannot be evaluated on the box: {type(exc).__name__}: {exc}"
        want_neg = 1 if self.signature == "lorentzian" else 0
        for p, gp in zip(x, g):
            where = "x = [" + ", ".join(f"{v:.6g}" for v in p) + "]"
            if not np.all(np.isfinite(gp)):
                return f"g is not finite at {where}"
            lam = np.linalg.eigvalsh(_sym(gp))
            a = np.abs(lam)
            if int(np.sum(lam < 0)) != want_neg:
                return f"g has eigenvalues {lam} at {where}, not of {self.signature} signature"
            if a.min() < min_abs_eig or a.max() > max_cond * a.min():
                cond = a.max() / a.min() if a.min() > 0 else math.inf
                return f"g is nearly degenerate at {where}: eigenvalues {lam} (cond {cond:.3g})"
        return None


def _lambdified_matrix(coords: Sequence[Any], matrix: Any, backend: str) -> Callable:
    """x -> g(x) from ``sympy.lambdify`` of the entries: numpy ``x[..., n] -> [..., n, n]``,
    torch one point ``x[n] -> [n, n]`` (constants take x's dtype)."""
    sp = _sympy()
    n = len(coords)
    entries = [_numeric_atoms_to_floats(matrix[i, j]) for i in range(n) for j in range(n)]
    raw = sp.lambdify(list(coords), entries, modules=backend)
    if backend == "torch":
        import torch

        def fn_t(x: Any) -> Any:
            args = [x[i] for i in range(n)]
            zero = torch.zeros_like(args[0])
            return torch.stack([zero + v for v in raw(*args)]).reshape(n, n)

        return fn_t

    def fn_np(x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        base = np.zeros(x.shape[:-1])
        vals = [np.asarray(v, dtype=np.float64) + base for v in raw(*(x[..., i] for i in range(n)))]
        return np.stack(vals, axis=-1).reshape(*x.shape[:-1], n, n)

    return fn_np


def _numeric_atoms_to_floats(expr: Any) -> Any:
    """Constant subexpressions such as sqrt(2), log(3), exp(1/2) as 20-digit Floats: the torch
    printer would emit ``torch.sqrt(2)``, which fails on a Python int."""
    sp = _sympy()
    expr = sp.sympify(expr)
    consts = {a: sp.Float(a.evalf(20), 20) for a in expr.atoms(sp.Function, sp.Pow, sp.NumberSymbol)
              if a.is_number and not a.is_Rational}
    return expr.xreplace(consts) if consts else expr


# ---------------------------------------------------------------- grammar
class _Term:
    """A sympy expression with bounds ``lo <= e(x) <= hi`` on the box (conservative)."""

    __slots__ = ("e", "lo", "hi")

    def __init__(self, e: Any, lo: float, hi: float) -> None:
        self.e, self.lo, self.hi = e, float(lo), float(hi)

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))


def _iv_mul(a: _Term, b: _Term) -> tuple:
    v = (a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi)
    return min(v), max(v)


def _iv_periodic(f: Callable, lo: float, hi: float, crit0: float) -> tuple:
    """Range of sin (crit0 = π/2) or cos (crit0 = 0) on [lo, hi]: endpoints and critical points."""
    vals = [f(lo), f(hi)]
    k = math.ceil((lo - crit0) / math.pi)
    while crit0 + k * math.pi <= hi:
        vals.append(f(crit0 + k * math.pi))
        k += 1
    return min(vals), max(vals)


def _iv_square(t: _Term) -> tuple:
    lo2 = 0.0 if t.lo <= 0 <= t.hi else min(t.lo**2, t.hi**2)
    return lo2, t.mag**2


_TAME = 2.0  # exp, sinh, cosh, tan get arguments within [-_TAME, _TAME] (tan: [-1.2, 1.2])


def _apply(name: str, t: _Term) -> _Term:
    """Apply a unary function with interval bounds; arguments too large are first divided by an integer."""
    sp = _sympy()
    limit = 1.2 if name == "tan" else _TAME
    if name in ("exp", "sinh", "cosh", "tan") and t.mag > limit:
        k = math.ceil(t.mag / limit)  # scale the argument down by an integer (no extra function layer)
        t = _Term(t.e / k, t.lo / k, t.hi / k)
    lo, hi = t.lo, t.hi
    if name == "sin":
        return _Term(sp.sin(t.e), *_iv_periodic(math.sin, lo, hi, math.pi / 2))
    if name == "cos":
        return _Term(sp.cos(t.e), *_iv_periodic(math.cos, lo, hi, 0.0))
    if name == "cosh":
        return _Term(sp.cosh(t.e), 1.0 if lo <= 0 <= hi else min(math.cosh(lo), math.cosh(hi)), math.cosh(t.mag))
    mono = {"tan": (sp.tan, math.tan), "sinh": (sp.sinh, math.sinh), "tanh": (sp.tanh, math.tanh),
            "atan": (sp.atan, math.atan), "exp": (sp.exp, math.exp)}
    f_sp, f_m = mono[name]
    return _Term(f_sp(t.e), f_m(lo), f_m(hi))


def _power(p: _Term, r: Any) -> _Term:
    """p**r for a positive term p and a rational r."""
    a, b = p.lo**float(r), p.hi**float(r)
    return _Term(p.e**r, min(a, b), max(a, b))


_TRIG_HYP = ("sin", "cos", "tan", "sinh", "cosh", "tanh")
_BOUNDED = ("sin", "cos", "tanh", "atan")


class _Grammar:
    """Draws expressions in the coordinates; ``draw`` is hypothesis's draw function."""

    def __init__(self, draw: Callable, coords: tuple, box: tuple) -> None:
        self.draw, self.coords, self.box = draw, coords, box
        self.positive = [i for i, (lo, _) in enumerate(box) if lo > 0]

    def pick(self, options: Sequence) -> Any:
        return self.draw(st.sampled_from(options))

    def rational(self, options: Sequence) -> Any:
        sp = _sympy()
        return sp.Rational(self.pick(options))

    # -- leaves: coordinate-dependent, no functions
    def leaf(self) -> _Term:
        n = len(self.coords)
        i = self.draw(st.integers(0, n - 1))
        x = _Term(self.coords[i], *self.box[i])
        kind = self.pick(("x", "x", "affine", "product", "square"))
        if kind == "x":
            return x
        if kind == "affine":
            a, b = self.rational(("2", "1/2", "-1", "3/2")), self.rational(("1/2", "-1/3", "1"))
            lo, hi = sorted((float(a) * x.lo + float(b), float(a) * x.hi + float(b)))
            return _Term(a * x.e + b, lo, hi)
        if kind == "square":
            return _Term(x.e**2, *_iv_square(x))
        j = self.draw(st.integers(0, n - 1))
        y = _Term(self.coords[j], *self.box[j])
        if i == j:
            return _Term(x.e**2, *_iv_square(x))
        return _Term(x.e * y.e, *_iv_mul(x, y))

    # -- real-valued terms
    def real(self, depth: int) -> _Term:
        sp = _sympy()
        if depth <= 0:
            return self.leaf()
        kind = self.pick(("trig", "trig", "nonrational", "trig", "nonrational", "exp", "leaf",
                          "product", "sum", "quotient", "posatom"))
        if kind == "leaf":
            return self.leaf()
        if kind == "trig":
            return _apply(self.pick(_TRIG_HYP + ("atan",)), self.real(depth - 1))
        if kind == "exp":
            return _apply("exp", self.real(depth - 1))
        if kind == "nonrational":  # log, sqrt, rational powers of positive terms: real, possibly < 1
            p = self.positive_term(depth - 1)
            how = self.pick(("log", "sqrt", "power"))
            if how == "log":
                return _Term(sp.log(p.e), math.log(p.lo), math.log(p.hi))
            return _power(p, sp.Rational(1, 2) if how == "sqrt" else self.rational(("3/2", "1/3", "-1/2", "2/3")))
        if kind == "posatom":
            return self.positive_atom(depth) if self.positive else self.leaf()
        a, b = self.real(depth - 1), self.real(depth - 1)
        if kind == "product":
            return _Term(a.e * b.e, *_iv_mul(a, b))
        if kind == "sum":
            return _Term(a.e + b.e, a.lo + b.lo, a.hi + b.hi)
        # quotient: a rational function of the terms, a / (c + b²)
        c = self.rational(("1", "2", "1/2"))
        s_lo, s_hi = _iv_square(b)
        den = _Term(c + b.e**2, float(c) + s_lo, float(c) + s_hi)
        q = _Term(1, 1.0 / den.hi, 1.0 / den.lo)
        lo, hi = _iv_mul(a, q)
        return _Term(a.e / den.e, lo, hi)

    def positive_atom(self, depth: int) -> _Term:
        """A function of a coordinate with a positive box: x, sin x, tanh x, sinh x, atan x, log(1 + x),
        to a rational power (``tanh(x)**(3/2)``, ``sqrt(sin(x))``, ...)."""
        i = self.pick(self.positive)
        x = _Term(self.coords[i], *self.box[i])
        f = self.pick(("tanh", "sin", "sinh", "x", "atan"))
        t = x if f == "x" else _apply(f, x)
        r = self.rational(("3/2", "1/2", "1/3", "5/2", "-1/2", "2/3"))
        return _power(t, r)

    # -- positive terms (lo > 0)
    def positive_term(self, depth: int) -> _Term:
        t = self._positive_term(depth)
        if not (1e-3 <= t.lo <= t.hi <= 1e3):  # nested powers and products can spread the range too far
            t = self.composite(0)
        return t

    def _positive_term(self, depth: int) -> _Term:
        sp = _sympy()
        if depth <= 0:  # (no constants: functions of constants would only add constant atoms)
            kind = self.pick(("shift", "exp", "posatom"))
            if kind == "posatom" and not self.positive:
                kind = "shift"
            if kind == "posatom":
                return self.positive_atom(0)
            f = self.leaf()
        else:
            kind = self.pick(("composite", "shift", "exp", "bounded", "cosh", "power", "log", "product", "sum",
                              "inverse", "posatom", "composite"))
            if kind in ("shift", "exp", "bounded", "cosh"):
                f = self.real(depth - 1)
        if kind == "composite":
            return self.composite(depth)
        if kind == "shift":  # c + f²
            c = self.rational(("1", "2", "1/2"))
            lo, hi = _iv_square(f)
            return _Term(c + f.e**2, float(c) + lo, float(c) + hi)
        if kind == "exp":
            return _apply("exp", f)
        if kind == "cosh":
            return _apply("cosh", f)
        if kind == "bounded":  # c + u(f), u bounded: 2 + sin f, 3 + atan f, ...
            u = _apply(self.pick(_BOUNDED), f)
            c = max(1, math.ceil(0.5 - u.lo)) + self.draw(st.integers(0, 1))
            return _Term(c + u.e, c + u.lo, c + u.hi)
        if kind == "posatom":
            return self.positive_atom(depth) if self.positive else self.composite(depth)
        p = self.positive_term(depth - 1)
        if kind == "power":
            return _power(p, self.rational(("1/2", "3/2", "1/3", "-1/2", "2/3", "5/2")))
        if kind == "log":  # log(c + p) >= log(c) > 0 for c >= 1 (log(1 + p) > 0)
            c = self.rational(("2", "1", "3"))
            return _Term(sp.log(c + p.e), math.log(float(c) + p.lo), math.log(float(c) + p.hi))
        if kind == "inverse":
            return _Term(1 / p.e, 1.0 / p.hi, 1.0 / p.lo)
        q = self.positive_term(depth - 1)
        if kind == "product":
            return _Term(p.e * q.e, p.lo * q.lo, p.hi * q.hi)
        return _Term(p.e + q.e, p.lo + q.lo, p.hi + q.hi)

    def composite(self, depth: int) -> _Term:
        """outer(inner(arg)): a non-rational function (exp, sqrt, log, rational power) of a
        trigonometric or hyperbolic function of the coordinates — e.g. exp(sin(x0)),
        log(3 + cos(x0*x1)), sqrt(2 + sinh(x1)), (2 + tanh(x0))**(3/2)."""
        sp = _sympy()
        arg = self.leaf() if depth <= 1 else self.real(depth - 2)
        u = _apply(self.pick(_TRIG_HYP), arg)
        outer = self.pick(("exp", "sqrt", "log", "power", "log_square", "power_square"))
        if outer == "exp":
            k = self.rational(("1", "-1", "1/2", "2"))
            return _apply("exp", _Term(k * u.e, *sorted((float(k) * u.lo, float(k) * u.hi))))
        if outer in ("log_square", "power_square"):  # log(c + u²), (c + u²)**r
            c = self.rational(("1", "2", "1/2"))
            lo, hi = _iv_square(u)
            p = _Term(c + u.e**2, float(c) + lo, float(c) + hi)
        else:  # c + u with c making it >= 1/2 (c = 0 for cosh)
            c = max(0, math.ceil(0.5 - u.lo)) + self.draw(st.integers(0, 1))
            p = _Term(c + u.e, c + u.lo, c + u.hi)
        if outer in ("log", "log_square"):
            c2 = 1 if p.lo > 1 else 2  # log(p) > 0 needs p > 1 everywhere (p.lo = 1 allows log p = 0): log(c2 - 1 + p)
            return _Term(sp.log(c2 - 1 + p.e), math.log(c2 - 1 + p.lo), math.log(c2 - 1 + p.hi))
        if outer == "sqrt":
            return _power(p, sp.Rational(1, 2))
        return _power(p, self.rational(("3/2", "1/3", "-1/2", "2/3", "5/2")))


def _diagonal_entry(gr: _Grammar, depth: int) -> _Term:
    kind = gr.pick(("composite", "composite", "positive", "composite", "product", "const", "positive"))
    if kind == "composite":
        return gr.composite(depth)
    if kind == "positive":
        return gr.positive_term(depth)
    if kind == "product":
        a, b = gr.composite(max(depth - 1, 0)), gr.positive_term(max(depth - 1, 0))
        return _Term(a.e * b.e, a.lo * b.lo, a.hi * b.hi)
    c = gr.rational(("1", "2", "1/2", "3"))
    return _Term(c, float(c), float(c))


def _off_diagonal_entry(gr: _Grammar, bound: float, functions_left: int) -> tuple:
    """An entry with |e| <= bound on the box: 0, a constant, or c·f with f a leaf or a bounded
    function of a leaf (sin, cos, tanh, atan, exp) and |c·f| <= bound.  Kept simple on purpose:
    coordinate-dependent off-diagonal terms make the exact inverse metric (and everything after it)
    much more expensive, so the grammar's depth goes into the diagonal."""
    sp = _sympy()
    kind = gr.pick(("function", "constant", "zero", "function"))
    if kind == "zero" or bound <= 0:
        return sp.S.Zero, False
    q = gr.pick((1.0, 0.5))
    sign = gr.pick((1, -1))
    if kind == "constant" or functions_left <= 0:
        c = _simple_rational(q * bound)
        return (sign * c, False) if c != 0 else (sp.S.Zero, False)
    f = gr.leaf()
    how = gr.pick(("leaf", "sin", "cos", "tanh", "atan", "exp"))
    if how != "leaf":
        f = _apply(how, f)
    c = _simple_rational(q * bound / max(f.mag, 1e-300))
    return (sign * c * f.e, True) if c != 0 else (sp.S.Zero, False)


def _simple_rational(bound: float) -> Any:
    """The largest 2^-k (k >= 0, k <= 12) not above ``bound``, or 0: small coefficients with small
    denominators (coefficients like 13/256 make exact rational arithmetic much slower)."""
    sp = _sympy()
    if not bound > 0 or bound < 2.0**-12:
        return sp.S.Zero
    k = max(0, math.ceil(-math.log2(bound)))
    return sp.Rational(1, 2**k)


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
    if signature not in _SIGNATURES + ("any",):
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
    sigs = _SIGNATURES if signature == "any" else (signature,)

    @st.composite
    def _draw(draw: Callable) -> SymbolicMetricSample:
        from hypothesis import assume

        sp = _sympy()
        sig = draw(st.sampled_from(sigs))
        coords = _default_coords(n)
        box = tuple(draw(st.sampled_from(_BOXES)) for _ in range(n))
        gr = _Grammar(draw, coords, box)
        diag = [_diagonal_entry(gr, depth) for _ in range(n)]
        m = sp.zeros(n, n)
        for i, t in enumerate(diag):
            m[i, i] = -t.e if (sig == "lorentzian" and i == 0) else t.e
        if n > 1 and off_diagonal > 0:
            left = int(max_functions)
            for i in range(n):
                for j in range(i + 1, n):
                    bound = off_diagonal * min(diag[i].lo, diag[j].lo) / (n - 1)
                    e, is_fn = _off_diagonal_entry(gr, bound, left)
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


# ---------------------------------------------------------------- assertion
class SymbolicRefusal(AssertionError):
    """Raised by :func:`assert_symbolic_matches_autodiff` when :class:`~lnegeom.symbolic.SymbolicMetric`
    *refuses* the metric: a :class:`~lnegeom.curvature.MetricError` while building it or computing
    the exact Γ, Ric, R (not a wrong answer, but not an answer either).  An ``AssertionError``, so
    it fails a test unless caught."""


_QUANTITIES = ("christoffel", "ricci", "scalar", "riemann")
_QUANTITY_TEXT = {
    "christoffel": ("Christoffel symbol Gamma^k_ij", "k,i,j"),
    "riemann": ("Riemann tensor R^l_ijk", "l,i,j,k"),
    "ricci": ("Ricci tensor Ric_jk", "j,k"),
    "scalar": ("scalar curvature R", ""),
}


def _symbolic_values(sm: Any, what: str, pts: np.ndarray, backend: str) -> np.ndarray:
    """A curvature quantity of a SymbolicMetric at points ``pts[B, n]``: ``lambdify`` of the
    SymbolicMetric for Ricci / R, ``sympy.lambdify`` of its arrays for Γ and Riemann."""
    sp = _sympy()
    n = sm.n
    if what in ("ricci", "scalar"):
        fn = sm.lambdify(what, backend)
        if backend == "torch":
            import torch

            return _np(fn(torch.as_tensor(pts, dtype=torch.float64)))
        return np.asarray(fn(pts), dtype=np.float64)
    arr = sm.christoffel() if what == "christoffel" else sm.riemann()
    flat = [sp.sympify(e) for e in sp.flatten(arr.tolist())]
    free = set().union(*(e.free_symbols for e in flat)) - set(sm.coords)
    if free:
        raise ValueError(f"the symbolic {what} still contains the symbols {sorted(map(str, free))}")
    fn = sp.lambdify(list(sm.coords), flat, modules="numpy")
    out = np.empty((pts.shape[0], len(flat)))
    for b, p in enumerate(pts):
        out[b] = [complex(v).real if abs(complex(v).imag) == 0 else np.nan for v in fn(*p)]
    return out.reshape(pts.shape[0], *(n,) * (3 if what == "christoffel" else 4))


def assert_symbolic_matches_autodiff(
    metric: Any,
    points: Any = None,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    quantities: Sequence[str] = ("christoffel", "ricci", "scalar"),
    backend: str = "numpy",
) -> None:
    r"""Assert that exact (sympy) curvature equals torch-autodiff curvature at ``points``.

    ``metric`` is a :class:`SymbolicMetricSample` (``points`` default: its
    own) or a :class:`~lnegeom.symbolic.SymbolicMetric` (``points[B, n]``
    required).  The symbolic side is the path under test: Γ^k_ij from
    ``christoffel()`` (and R^l_ijk from ``riemann()`` if asked) through
    ``sympy.lambdify``, Ric_jk and R through ``SymbolicMetric.lambdify``
    (``backend`` "numpy" or "torch").  The reference is a
    :class:`~lnegeom.metric.MetricField` of the *same matrix* lambdified by
    sympy alone, differentiated by torch autodiff in float64 — it does not
    use :mod:`lnegeom.symbolic`.  Layouts: those of :mod:`lnegeom.curvature`
    (``christoffel[k, i, j]`` = Γ^k_ij, docs/math.md §1).

    A component passes if |symbolic − autodiff| ≤ atol + rtol · scale(x),
    with scale the size of the terms summed into the quantity at x (as in
    the module docstring, with G = max|Γ|, g⁻¹ = max|g⁻¹|, ∂g = max|∂g|,
    ∂²g = max|∂²g|): n·g⁻¹·∂g + G for Γ, T = n(g⁻¹ ∂²g + g⁻¹ ∂g G + G²)
    plus max|Rm| for Riemann, n·T + max|Ric| for Ricci, n²·g⁻¹·(n·T) + |R| for R,
    each times the condition number n·max|g|·max|g⁻¹| (round-off of the
    symbolic inverse).  Observed float64 differences on random draws are
    ≤ 1e-13 · scale, so the default ``rtol = 1e-8`` has a wide margin while
    an error in a formula (relative size ~1) is far outside it.

    Raises ``AssertionError`` naming the metric (its exact ``repr``), the
    quantity, the component, the point and both values, for the worst
    component of each failing quantity; also when the symbolic path raises
    or leaves symbols other than the coordinates.  When ``SymbolicMetric``
    refuses the metric (a ``MetricError`` while computing the exact results)
    the ``AssertionError`` is a :class:`SymbolicRefusal`, which a test may
    catch to tell "no answer" from a wrong one.  A non-finite *reference*
    (points outside the metric's domain) raises ``ValueError``.

    Example
    -------
    >>> s = SymbolicMetricSample.parse("Matrix([[1, 0], [0, cosh(x0)**2]])")   # hyperbolic plane
    >>> assert_symbolic_matches_autodiff(s)
    """
    from .symbolic import SymbolicMetric

    bad = [q for q in quantities if q not in _QUANTITIES]
    if bad or not quantities:
        raise ValueError(f"quantities must be a non-empty subset of {_QUANTITIES}, got {tuple(quantities)!r}")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    if isinstance(metric, SymbolicMetricSample):
        label = repr(metric)
        make = metric.symbolic
        if points is None:
            points = metric.points
    elif isinstance(metric, SymbolicMetric):
        if points is None:
            raise TypeError("points are required when a SymbolicMetric (not a SymbolicMetricSample) is given")
        label = f"{metric!r} with matrix {metric.matrix}"
        make = lambda: metric  # noqa: E731
    else:
        raise TypeError(f"metric must be a SymbolicMetricSample or a SymbolicMetric, got {type(metric).__name__}")
    coords = metric.coords
    n = len(coords)
    pts = np.asarray(to_numpy(points), dtype=np.float64).reshape(-1, n)

    # reference: torch autodiff of the lambdified entries
    import torch

    ref_field = MetricField(_lambdified_matrix(coords, metric.matrix, "torch"), n, check=False, name=label)
    g, dg, d2g = ref_field.derivatives(torch.as_tensor(pts, dtype=torch.float64))
    ref = curvature_from_derivatives(g, dg, d2g, check=False)
    ref_vals = {"christoffel": _np(ref.christoffel), "riemann": _np(ref.riemann),
                "ricci": _np(ref.ricci), "scalar": _np(ref.scalar)}
    for q in quantities:
        v = ref_vals[q].reshape(pts.shape[0], -1)
        if not np.all(np.isfinite(v)):
            b = int(np.argmin(np.all(np.isfinite(v), axis=1)))
            raise ValueError(f"the autodiff reference {_QUANTITY_TEXT[q][0]} is not finite at x = {pts[b].tolist()}: "
                             f"the points are outside the domain of {label}")

    # the path under test: first the exact results (a MetricError here is the engine refusing the
    # metric), then their numeric evaluation (any error here is a failure of the results)
    from .curvature import MetricError

    sym_vals: dict = {}
    stage = "building the SymbolicMetric"
    try:
        sm = make()
        for q in quantities:
            stage = f"computing its {_QUANTITY_TEXT[q][0]}"
            {"christoffel": sm.christoffel, "riemann": sm.riemann, "ricci": sm.ricci, "scalar": sm.scalar}[q]()
    except MetricError as exc:
        raise SymbolicRefusal(
            f"lnegeom.symbolic refused the metric ({stage}): {exc}\n  metric: {label}"
        ) from exc
    except Exception as exc:
        raise AssertionError(
            f"symbolic path (lnegeom.symbolic) failed {stage}: {type(exc).__name__}: {exc}\n  metric: {label}"
        ) from exc
    try:
        with np.errstate(all="ignore"):
            for q in quantities:
                stage = f"evaluating its {_QUANTITY_TEXT[q][0]}"
                sym_vals[q] = _symbolic_values(sm, q, pts, backend)
    except Exception as exc:
        raise AssertionError(
            f"symbolic path (lnegeom.symbolic) failed {stage}: {type(exc).__name__}: {exc}\n  metric: {label}"
        ) from exc

    # tolerance scales per point
    B = pts.shape[0]
    g_np, gi = _np(ref.g).reshape(B, -1), _np(ref.g_inv).reshape(B, -1)
    mg, mgi = np.abs(g_np).max(axis=1), np.abs(gi).max(axis=1)
    md1 = np.abs(_np(dg).reshape(B, -1)).max(axis=1)
    md2 = np.abs(_np(d2g).reshape(B, -1)).max(axis=1)

    def size(q: str) -> np.ndarray:
        a = np.abs(ref_vals[q].reshape(B, -1))
        s = np.abs(np.nan_to_num(sym_vals[q].reshape(B, -1), nan=0.0, posinf=0.0, neginf=0.0))
        return np.maximum(a.max(axis=1), s.max(axis=1))

    big_g = np.maximum(np.abs(ref_vals["christoffel"].reshape(B, -1)).max(axis=1),
                       size("christoffel") if "christoffel" in sym_vals else 0.0)
    t = n * (mgi * md2 + mgi * md1 * big_g + big_g**2)
    cond = n * mg * mgi
    scales = {
        "christoffel": n * mgi * md1 + big_g,
        "riemann": t + np.abs(ref_vals["riemann"].reshape(B, -1)).max(axis=1),
        "ricci": n * t + np.abs(ref_vals["ricci"].reshape(B, -1)).max(axis=1),
        "scalar": n**2 * mgi * n * t + np.abs(ref_vals["scalar"].reshape(B, -1)).max(axis=1),
    }
    failures = []
    for q in quantities:
        s_v = sym_vals[q].reshape(B, -1)
        r_v = ref_vals[q].reshape(B, -1)
        if s_v.shape != r_v.shape:
            failures.append(f"{_QUANTITY_TEXT[q][0]}: symbolic shape {sym_vals[q].shape[1:]} "
                            f"!= autodiff shape {ref_vals[q].shape[1:]}")
            continue
        scale = np.maximum(scales[q], size(q)) * cond
        tol = atol + rtol * scale
        diff = np.abs(s_v - r_v)
        diff = np.where(np.isfinite(diff), diff, np.inf)
        bad = ~(diff <= tol[:, None])
        if not bad.any():
            continue
        ratio = np.where(bad, diff / np.where(tol > 0, tol, 1e-300)[:, None], -1.0)
        b, flat = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        name, idx_names = _QUANTITY_TEXT[q]
        shape = ref_vals[q].shape[1:]
        comp = f" component ({idx_names}) = {tuple(int(i) for i in np.unravel_index(flat, shape))}" if shape else ""
        where = "x = [" + ", ".join(f"{v:.17g}" for v in pts[b]) + "]"
        failures.append(
            f"{name}{comp} at {where}: symbolic = {float(s_v[b, flat]):.17g}, autodiff = {float(r_v[b, flat]):.17g}, "
            f"|difference| = {diff[b, flat]:.3e} > tolerance {tol[b]:.3e} "
            f"(= atol {atol:.1e} + rtol {rtol:.1e} * scale {scale[b]:.3e}); "
            f"{int(bad.any(axis=1).sum())} of {B} point(s) fail"
        )
    if failures:
        head = "symbolic curvature (lnegeom.symbolic) disagrees with torch autodiff"
        raise AssertionError(head + ":\n" + "\n".join(f"  - {f}" for f in failures) + f"\n  metric: {label}")
