r"""Smooth metric fields and coordinate changes with proven bounds, for the library and its tests.

* :class:`SmoothMetric`: g(x) = A + Σ_k a_k f_k(w_k·x + φ_k) S_k, positive
  definite on all of ℝⁿ (Weyl's inequality), for both backends
  (:class:`~lnegeom.metric.MetricField` with torch autodiff or numpy finite
  differences) and on periodic grids;
* :class:`CoordinateMap`: φ(x) = A x + b + Σ_k u_k sin(w_k·x + ψ_k), a
  diffeomorphism of ℝⁿ when its strength is below 1 (proof in the class);
* :func:`l2_norm`: the L² norm of a field on the grid of [0, L)ⁿ.

These are plain data objects: the hypothesis strategies of
:mod:`lnegeom.testing` draw them, the validation report
(:mod:`lnegeom.validate`) builds them directly.  This module does not need
hypothesis.  Conventions: docs/math.md §1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import numpy as np

from ._array import is_torch_array
from .metric import MetricField

__all__ = ["SmoothMetric", "CoordinateMap", "l2_norm", "grid_shape", "symmetric_part", "PROFILES"]

#: the profiles f_k of a :class:`SmoothMetric` (both bounded by 1)
PROFILES = ("cos", "tanh")


def symmetric_part(a: np.ndarray) -> np.ndarray:
    """½ (a + aᵀ) over the last two axes."""
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _tolist(a: np.ndarray) -> list:
    return np.asarray(a).tolist()


def grid_shape(n: int, shape: Union[int, Sequence[int]]) -> tuple[int, ...]:
    """The grid shape of n axes: ``shape`` an int (the same on every axis) or n positive ints."""
    shape = (int(shape),) * n if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if len(shape) != n or any(s < 1 for s in shape):
        raise ValueError(f"grid shape {shape} must have n={n} positive entries")
    return shape


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
        bad = [p for p in profiles if p not in PROFILES]
        if bad:
            raise ValueError(f"unknown profiles {bad}; choose from {PROFILES}")
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
        return symmetric_part(g)

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
        shape = grid_shape(self.n, shape)
        axes = [np.arange(N) * (L / N) for N in shape]
        x = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        return self.evaluate(x)

    def __repr__(self) -> str:
        return (
            f"SmoothMetric(base={_tolist(self.base)}, coefficients={_tolist(self.coefficients)}, "
            f"directions={_tolist(self.directions)}, wavevectors={_tolist(self.wavevectors)}, "
            f"phases={_tolist(self.phases)}, profiles={self.profiles!r})"
        )



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

