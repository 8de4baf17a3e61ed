r"""The LNE construction of the paper (docs/math.md §2; paper Section 3).

Everything here is written against the array API (``array-api-compat``), so
the same functions take numpy arrays or torch tensors (CPU or GPU), of any
batch shape ``[..., n]`` (the last axis holds the coordinates ξ¹..ξⁿ).  All
vector operations are O(n); n×n arrays are formed only by the explicitly
dense helpers (``matrix``, ``inverse_matrix``, ``ricci_matrix``), meant for
small n and for tests.

Precision: inputs that are not floating point (python lists, integers) are
converted to float64; float16/bfloat16 inputs are promoted to float32, so s
and 1/(1 − s) are always computed in at least float32.  Results are returned
in that working dtype (float32 in, float32 out; float64 in, float64 out).

Notation (docs/math.md §2), with τ > 0 the *temperature* and
t = tanh(τ ξ) (componentwise), s = |t|² = Σ_i t_i²:

* potential (P-14):          Φ(ξ) = Σ_i τ⁻² log cosh(τ ξ_i)
* mirror map:                ∇Φ(ξ) = tanh(τ ξ)/τ
* Bregman divergence (P-15): D[ξ' : ξ] = Φ(ξ') − Φ(ξ) − ⟨∇Φ(ξ), ξ' − ξ⟩
* Hessian metric of Φ:       H(ξ) = ∇²Φ = diag(sech²(τ ξ)) = diag(1 − t²), flat
* the paper's LNE metric (P-16): g(ξ) = I − t tᵀ, positive definite iff s < 1
* exact inverse (Sherman–Morrison): g⁻¹ = I + t tᵀ/(1 − s)
* the paper's weak approximation (P-29): g⁻¹ ≈ I + t tᵀ,
  error t tᵀ · s/(1 − s)

Curvature of g (derived here; ``tests/lnegeom/test_lne.py`` checks it against the
generic autodiff path for n = 2..8 and, as an exact sympy identity with τ
symbolic, against :class:`lnegeom.symbolic.SymbolicMetric` for n = 2, 3, 4;
it agrees with the formula of docs/math.md §2).  Write F(ξ) = Σ_i τ⁻¹ log cosh(τ ξ_i), so ∇F = t and
g = I − ∇F ∇Fᵀ: g is the metric induced on the spacelike graph z = F(ξ) in
Minkowski space ℝ^{n,1} (metric |dξ|² − dz²).  Its future unit normal is
N = (t, 1)/√(1 − s) and its second fundamental form is
h = Hess F/√(1 − s) = D/√(1 − s), D = diag(d), d_i = τ (1 − t_i²).  For a
spacelike hypersurface (⟨N, N⟩ = −1) the Gauss equation reads
R_ijkl = −(h_il h_jk − h_ik h_jl) (the opposite sign of the Euclidean case),
whence, with m = tr(g⁻¹ h) the mean curvature,

    Ric = −(m h − h g⁻¹ h),          R = −(m² − |h|²_g).

Inserting g⁻¹ = I + t tᵀ/(1 − s) and u = D t = d∘t:

    Ric = diag(a) + β u uᵀ,  β = 1/(1 − s)²,
    a_i = −m d_i/√(1 − s) + d_i²/(1 − s),
    m   = (Σ_i d_i + (t·u)/(1 − s))/√(1 − s),

so Ric is diagonal plus rank one, and R = tr(g⁻¹ Ric) is O(n):

    R = Σ_i a_i (1 + t_i²/(1 − s)) + β (|u|² + (t·u)²/(1 − s)).

At ξ = 0: Ric = −(n − 1) τ² I and R = −n(n − 1) τ² (hyperbolic space of
curvature −τ²); for n = 2, R = −2τ² (1 − t₁²)(1 − t₂²)/(1 − t₁² − t₂²)².
Conventions for Γ, Riemann, Ricci and R: docs/math.md §1 (unit 2-sphere R = +2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Sequence, cast

import numpy as np

from ._array import Array, array_namespace, is_torch_array, to_numpy
from .curvature import MetricError

if TYPE_CHECKING:
    import torch

__all__ = [
    "rowdot",
    "potential",
    "mirror_map",
    "bregman",
    "HessianMetric",
    "LNEMetric",
    "LNEMetricError",
    "taylor_discrepancy",
    "inverse_apply_t",
    "weak_inverse_apply_t",
    "radial_inverse_apply_t",
]

_LOG2 = math.log(2.0)


class LNEMetricError(MetricError):
    """The LNE metric g = I − t tᵀ is not positive definite (s ≥ 1) or the input is not finite."""


# --------------------------------------------------------------------------- helpers
def _validate_tau(tau: Any) -> float:
    try:
        value = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a positive real number, got tau={tau!r}") from None
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(
            f"tau must be a finite number > 0 (the temperature of t = tanh(tau*xi)), got tau={tau!r}"
        )
    return value


def _working(x: Any, like: Any = None):
    """``x`` as a floating array of at least float32 (float64 for non-float input).

    Python scalars/lists become numpy float64 arrays, or tensors on ``like``'s
    device when ``like`` is a torch tensor.  Returns ``(xp, x)``.
    """
    if like is not None and is_torch_array(like) and not is_torch_array(x):
        import torch

        x = torch.as_tensor(np.asarray(x), device=like.device)
    if is_torch_array(x):
        import torch

        if not x.is_floating_point():
            x = x.to(torch.float64)
        elif x.dtype in (torch.float16, torch.bfloat16):
            x = x.to(torch.float32)
    else:
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        elif x.dtype.itemsize < 4:
            x = x.astype(np.float32)
    return array_namespace(x), x


def _pair(a: Any, b: Any):
    """Two arrays in a common namespace and common (≥ float32) dtype."""
    if is_torch_array(b) and not is_torch_array(a):
        _, b = _working(b)
        _, a = _working(a, like=b)  # a numpy/list point joins the tensor's namespace and device
        xp = array_namespace(b)
    else:
        xp, a = _working(a)
        _, b = _working(b, like=a)
    dt = xp.result_type(a.dtype, b.dtype)
    return xp, xp.astype(a, dt), xp.astype(b, dt)


def _last_axis(x: Any, what: str = "xi") -> int:
    if x.ndim == 0:
        raise ValueError(f"{what} must have shape (..., n) with the n coordinates last, got a scalar")
    return int(x.shape[-1])


def _log_cosh(x, xp):
    """log cosh x = |x| + log1p(e^{−2|x|}) − log 2, without overflow."""
    a = xp.abs(x)
    return a + xp.log1p(xp.exp(-2.0 * a)) - _LOG2


def _sech2(x, xp):
    """sech² x = 4 e^{−2|x|}/(1 + e^{−2|x|})² = 1 − tanh² x, without cancellation."""
    e = xp.exp(-2.0 * xp.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


def _half_probs(x, xp):
    """p = (1 + tanh x)/2 = σ(2x), q = (1 − tanh x)/2 = σ(−2x) and log p, log q, stably."""
    e = xp.exp(-2.0 * xp.abs(x))  # in (0, 1]
    big = 1.0 / (1.0 + e)
    small = e / (1.0 + e)
    pos = x >= 0
    p = xp.where(pos, big, small)
    q = xp.where(pos, small, big)
    l1 = xp.log1p(e)
    # log σ(2x) = −softplus(−2x)
    logp = xp.where(pos, -l1, -2.0 * xp.abs(x) - l1)
    logq = xp.where(pos, -2.0 * xp.abs(x) - l1, -l1)
    return p, q, logp, logq


def _expm1_minus_id(z, xp):
    """φ(z) = eᶻ − 1 − z ≥ 0 with full relative accuracy near z = 0.

    For |z| < 0.1 the Taylor series z²/2! + … + z¹³/13! (Horner form);
    otherwise expm1(z) − z, whose relative error is then below ~20 ulp.
    """
    zc = xp.clip(z, -0.1, 0.1)
    acc = xp.ones_like(zc)
    for k in range(13, 2, -1):
        acc = 1.0 + zc / k * acc
    series = 0.5 * zc * zc * acc
    return xp.where(xp.abs(z) < 0.1, series, xp.expm1(z) - z)


def _dense_diag(a: Array, xp: Any):
    n = a.shape[-1]
    eye = xp.eye(n, dtype=a.dtype, device=_device(a))
    return eye * a[..., None, :]


def _device(x):
    from array_api_compat import device

    return device(x)


def _outer(a: Array, b: Array):
    return a[..., :, None] * b[..., None, :]


def _dot(a: Array, b: Array, xp: Any):
    """Σ_i a_i b_i over the last axis (torch: BLAS dot for one row, einsum otherwise)."""
    if is_torch_array(a) and is_torch_array(b):
        import torch

        if a.shape == b.shape and a.ndim >= 1 and a.numel() == a.shape[-1]:  # one row: BLAS dot
            return torch.dot(a.reshape(-1), b.reshape(-1)).reshape(a.shape[:-1])
        return torch.einsum("...i,...i->...", a, b)  # one fused kernel, no a*b temporary
    return xp.sum(a * b, axis=-1)


def rowdot(a: Array, b: Array):
    """Σ_i a_i b_i over the last axis, numpy or torch (the dot product every O(n) formula uses)."""
    return _dot(a, b, array_namespace(a, b))


# --------------------------------------------------------------------------- O(n) cores
def inverse_apply_t(t: Array, s: Array, v: Array, *, overwrite_t: bool = False):
    """g⁻¹ v = v + t (t·v)/(1 − s) from t and s = |t|² (Sherman–Morrison, P-27), O(n).

    The core of :meth:`LNEMetric.inverse_apply` for callers that already hold
    t and s (the optimizer computes tanh once per step).  ``[..., n]``.
    ``overwrite_t=True`` (torch) writes the result into ``t``'s memory: no
    n-sized temporaries, which on CPU cost page faults at every step.
    """
    xp = None if is_torch_array(t) and is_torch_array(v) else array_namespace(t, v)  # hot path: skip the lookup
    c = _dot(t, v, xp) / (1.0 - s)
    if overwrite_t and xp is None:  # both torch
        return cast("torch.Tensor", t).mul_(c[..., None]).add_(cast("torch.Tensor", v))
    return v + t * c[..., None]


def weak_inverse_apply_t(t: Array, v: Array, *, overwrite_t: bool = False):
    """The paper's weak approximation (P-29) from t: v + t (t·v), O(n) (``overwrite_t`` as above)."""
    xp = None if is_torch_array(t) and is_torch_array(v) else array_namespace(t, v)
    c = _dot(t, v, xp)
    if overwrite_t and xp is None:  # both torch
        return cast("torch.Tensor", t).mul_(c[..., None]).add_(cast("torch.Tensor", v))
    return v + t * c[..., None]


def radial_inverse_apply_t(xi: Array, s: Array, v: Array):
    """The large-layer limit (docs/math.md §2) from ξ and s: v + ξ̂ (ξ̂·v) s/(1 − s), ξ̂ = ξ/|ξ|, O(n)."""
    xp = None if is_torch_array(xi) and is_torch_array(v) else array_namespace(xi, v)
    sq = _dot(xi, xi, xp)
    safe = sq + (sq == 0)  # ξ = 0: s = 0 and the correction vanishes
    return v + xi * (_dot(xi, v, xp) * s / ((1.0 - s) * safe))[..., None]


# --------------------------------------------------------------------------- P-14, P-15
def potential(xi: Any, tau: float):
    r"""The convex potential Φ(ξ) = Σ_i τ⁻² log cosh(τ ξ_i) (P-14, docs/math.md §2).

    ``log cosh`` is evaluated as |x| + log1p(e^{−2|x|}) − log 2 (no overflow).
    ``xi[..., n]`` -> ``Φ[...]``.
    """
    tau = _validate_tau(tau)
    xp, xi = _working(xi)
    _last_axis(xi)
    return xp.sum(_log_cosh(tau * xi, xp), axis=-1) / tau**2


def mirror_map(xi: Any, tau: float):
    r"""The mirror map ∇Φ(ξ) = tanh(τ ξ)/τ (docs/math.md §2), componentwise, ``[..., n]``."""
    tau = _validate_tau(tau)
    xp, xi = _working(xi)
    return xp.tanh(tau * xi) / tau


def bregman(xi_new: Any, xi: Any, tau: float):
    r"""Bregman divergence of Φ (P-15): D[ξ' : ξ] = Φ(ξ') − Φ(ξ) − ⟨∇Φ(ξ), ξ' − ξ⟩.

    Per coordinate, with x = τξ_i, δ = τ(ξ'_i − ξ_i), t = tanh x and
    p = (1 + t)/2, q = (1 − t)/2 (p + q = 1),

        τ² D_i = log cosh(x + δ) − log cosh x − δ t = log(p e^{2qδ} + q e^{−2pδ}),

    the cumulant generating function of a centred two-point law.  For |δ| ≤ 1
    it is evaluated as log1p(p φ(2qδ) + q φ(−2pδ)) with φ(z) = eᶻ − 1 − z ≥ 0:
    both terms are non-negative, so there is no cancellation and the result
    keeps full relative accuracy however small ξ' − ξ is (D ≈ ½ Σ (1 − t_i²)
    (ξ'_i − ξ_i)²).  For |δ| > 1 a log-sum-exp form is used (no overflow).
    ``xi_new``, ``xi`` broadcast over ``[..., n]``; returns ``D[...]`` (≥ 0).
    """
    tau = _validate_tau(tau)
    xp, xn, x0 = _pair(xi_new, xi)
    _last_axis(x0)
    x = tau * x0
    delta = tau * (xn - x0)  # difference first: exact for nearby points
    p, q, logp, logq = _half_probs(x, xp)
    dc = xp.clip(delta, -1.0, 1.0)
    w = p * _expm1_minus_id(2.0 * q * dc, xp) + q * _expm1_minus_id(-2.0 * p * dc, xp)
    small = xp.log1p(w)
    a = logp + 2.0 * q * delta
    b = logq - 2.0 * p * delta
    big = xp.maximum(a, b) + xp.log1p(xp.exp(-xp.abs(a - b)))
    per = xp.where(xp.abs(delta) <= 1.0, small, big)
    return xp.sum(per, axis=-1) / tau**2


# --------------------------------------------------------------------------- H
class HessianMetric:
    r"""The Hessian metric of Φ: H(ξ) = ∇²Φ = diag(sech²(τ ξ)) = diag(1 − t²).

    This is the true second-order term of the Bregman divergence (P-15):
    D[ξ + dξ : ξ] = ½ dξᵀ H dξ + O(|dξ|³) (docs/math.md §2).  H is separable —
    each g_ii depends on ξ_i only — so it is the pull-back of the Euclidean
    metric by ξ ↦ (∫ sech(τ ξ_i) dξ_i)_i and is **flat** (Riemann ≡ 0).
    """

    def __init__(self, tau: float) -> None:
        self.tau = _validate_tau(tau)

    def diagonal(self, xi: Any):
        """The diagonal sech²(τ ξ_i) = 1 − t_i² (stable for large |τ ξ|), ``[..., n]``."""
        xp, xi = _working(xi)
        return _sech2(self.tau * xi, xp)

    def matrix(self, xi: Any):
        """Dense H(ξ), ``[..., n, n]`` (small n)."""
        xp, xi = _working(xi)
        return _dense_diag(_sech2(self.tau * xi, xp), xp)

    def inverse_apply(self, xi: Any, v: Any):
        """H⁻¹ v = cosh²(τ ξ) ∘ v (the mirror-descent natural gradient), O(n)."""
        xp, xi, v = _pair(xi, v)
        return v / _sech2(self.tau * xi, xp)

    def metric_field(self, n: int, **kw):
        """H as a torch :class:`~lnegeom.metric.MetricField` (generic autodiff path).

        Keyword arguments go to ``MetricField`` (``dtype``, ``device``, ``check``, ``name``).
        """
        import torch

        from .metric import MetricField

        tau = self.tau

        def fn(x):
            # 1/cosh² rather than _sech2: the |x| inside _sech2 has a wrong second
            # derivative at x = 0 under autodiff; 1/cosh² is smooth (and 0, not NaN, past overflow)
            return torch.diag_embed(1.0 / torch.cosh(tau * x) ** 2)

        kw.setdefault("name", f"Hessian metric diag(sech^2(tau*xi)) (tau={tau:g})")
        return MetricField(fn, n, **kw)

    def __repr__(self) -> str:
        return f"HessianMetric(tau={self.tau!r})"


# --------------------------------------------------------------------------- g
class LNEMetric:
    r"""The paper's stated LNE metric g(ξ) = I − t tᵀ, t = tanh(τ ξ) (P-16, docs/math.md §2).

    Eigenvalues 1 (n − 1 times, on t^⊥) and 1 − s (along t), s = |t|²;
    det g = 1 − s; positive definite iff s < 1.  All ``*_apply``, ``t``, ``s``,
    ``scalar`` and ``ricci_parts`` methods are O(n) and batch over ``[..., n]``.

    Parameters
    ----------
    tau:
        Temperature τ > 0 (``ValueError`` naming tau otherwise).
    check:
        If true (default) every method that needs s < 1 first calls
        :meth:`check` (one host sync per call on a GPU); set ``False`` in a
        hot loop once the inputs are known to be admissible.
    """

    def __init__(self, tau: float, *, check: bool = True) -> None:
        self.tau = _validate_tau(tau)
        self.validate = bool(check)

    # -------------------------------------------------------------- basics
    def t(self, xi: Any):
        """t = tanh(τ ξ), ``[..., n]``."""
        xp, xi = _working(xi)
        return xp.tanh(self.tau * xi)

    def s(self, xi: Any):
        """s = |t|² = Σ_i tanh²(τ ξ_i), ``[...]``."""
        xp, xi = _working(xi)
        _last_axis(xi)
        t = xp.tanh(self.tau * xi)
        return _dot(t, t, xp)

    def max_tau(self, xi: Any) -> np.ndarray:
        """The largest admissible τ for each point: the root τ* of s(τ) = 1 (``[...]``, numpy).

        s(τ) = Σ tanh²(τ ξ_i) increases from 0 to the number of non-zero ξ_i,
        so τ* is finite iff at least two coordinates are non-zero (``inf``
        otherwise); g is positive definite iff τ < τ*.  Solved in float64 by
        bracketing and bisection — meant for error messages, not hot loops.
        """
        x = np.asarray(to_numpy(xi), dtype=np.float64)
        flat = x.reshape(-1, x.shape[-1])
        out = np.array([_solve_tau_star(row) for row in flat])
        return out.reshape(x.shape[:-1])

    def check(self, xi: Any):
        """Raise :class:`LNEMetricError` unless g(ξ) is positive definite (s < 1) everywhere.

        Also rejects non-finite ξ (NaN, ±inf).  The message names the worst
        point's s, τ, the largest admissible τ* for that ξ (s(τ*) = 1) and the
        fix.  Returns s (``[...]``) when all points are admissible.
        """
        xp, xi = _working(xi)
        _last_axis(xi)
        t = xp.tanh(self.tau * xi)
        s = _dot(t, t, xp)
        self._raise_if_bad(xp, xi, s)
        return s

    def _raise_if_bad(self, xp, xi, s) -> None:
        """The test behind :meth:`check`, given s; one host sync in the good case."""
        # One reduction covers the good case: s is NaN iff some ξ_i is NaN (and NaN < 1
        # is false), and an infinite ξ_i gives t_i² = 1, hence s >= 1.  The diagnosis
        # below (host side) runs only on error.
        if bool(xp.all(s < 1.0)):
            return
        n = int(xi.shape[-1])
        x_all = to_numpy(xi)
        if not np.all(np.isfinite(x_all)):
            bad = np.argwhere(~np.isfinite(x_all))
            raise LNEMetricError(
                f"LNE metric: xi has non-finite entries (NaN or inf), first at index "
                f"{tuple(int(i) for i in bad[0])}; t = tanh(tau*xi) needs finite xi — check "
                "the weights/points for NaN (e.g. a diverged optimizer step)"
            )
        s_np = np.asarray(to_numpy(s), dtype=np.float64).reshape(-1)
        x_np = np.asarray(x_all, dtype=np.float64).reshape(-1, n)
        rows = np.flatnonzero(~(s_np < 1.0))
        worst = int(rows[np.argmax(s_np[rows])])
        tau_stars = np.array([_solve_tau_star(x_np[r]) for r in rows])
        tau_star = float(np.min(tau_stars))
        if s_np.size == 1:
            where = ""
        else:
            where = f" at batch index {tuple(int(i) for i in np.unravel_index(worst, tuple(s.shape)))}"
        l2 = float(np.linalg.norm(x_np[worst]))
        if math.isfinite(tau_star):
            limit = (
                f"the largest admissible tau for this xi is tau* = {tau_star:.6g} "
                f"(s(tau*) = 1; g is positive definite iff tau < tau*)"
            )
            fix = f"use tau < {tau_star:.6g} (e.g. tau = {0.9 * tau_star:.4g})"
        else:
            limit = (
                "at most one coordinate is non-zero, so s < 1 for every finite tau and "
                "s >= 1 here only by floating-point rounding of tanh(tau*xi) to +-1"
            )
            fix = "use a smaller tau (tau*max|xi| below ~9 in float64, ~4 in float32)"
        raise LNEMetricError(
            f"LNE metric g = I - t t^T is not positive definite{where}: s = |tanh(tau*xi)|^2 = "
            f"{s_np[worst]:.6g} >= 1 with tau = {self.tau:g} (n = {n}); {limit}. Fix: {fix}, "
            f"or rescale xi (tau*||xi||_2 < 1 is sufficient; here tau*||xi||_2 = {self.tau * l2:.4g})."
        )

    def _prep(self, xi: Any):
        """(xp, x = τξ, t, s, c = 1 − s), checking s < 1 when ``self.validate``."""
        xp, xi = _working(xi)
        _last_axis(xi)
        x = self.tau * xi
        t = xp.tanh(x)
        s = _dot(t, t, xp)
        if self.validate:
            self._raise_if_bad(xp, xi, s)
        return xp, x, t, s, 1.0 - s

    # -------------------------------------------------------------- dense
    def matrix(self, xi: Any):
        """Dense g = I − t tᵀ, ``[..., n, n]`` (small n).  No positivity check."""
        xp, xi = _working(xi)
        n = _last_axis(xi)
        t = xp.tanh(self.tau * xi)
        return xp.eye(n, dtype=t.dtype, device=_device(t)) - _outer(t, t)

    def inverse_matrix(self, xi: Any):
        """Dense g⁻¹ = I + t tᵀ/(1 − s), ``[..., n, n]`` (small n)."""
        xp, x, t, s, c = self._prep(xi)
        n = x.shape[-1]
        return xp.eye(n, dtype=t.dtype, device=_device(t)) + _outer(t, t) / c[..., None, None]

    # -------------------------------------------------------------- O(n) inverse
    def inverse_apply(self, xi: Any, v: Any):
        """Exact natural gradient g⁻¹ v = v + t (t·v)/(1 − s) (Sherman–Morrison), O(n).

        ``xi``, ``v`` broadcast over ``[..., n]``.
        """
        xp, xi, v = _pair(xi, v)
        xp, x, t, s, c = self._prep(xi)
        return inverse_apply_t(t, s, v)

    def weak_inverse_apply(self, xi: Any, v: Any):
        """The paper's weak approximation (P-29): g⁻¹ v ≈ v + t (t·v), O(n)."""
        xp, xi, v = _pair(xi, v)
        xp, x, t, s, c = self._prep(xi)
        return weak_inverse_apply_t(t, v)

    def weak_error_apply(self, xi: Any, v: Any):
        """Exact error of P-29: (g⁻¹ − (I + t tᵀ)) v = t (t·v) s/(1 − s), O(n)."""
        xp, xi, v = _pair(xi, v)
        xp, x, t, s, c = self._prep(xi)
        return t * (_dot(t, v, xp) * s / c)[..., None]

    def radial_inverse_apply(self, xi: Any, v: Any):
        """Large-layer limit of g⁻¹ v (docs/math.md §2): v + ξ̂ (ξ̂·v) s/(1 − s), ξ̂ = ξ/|ξ|, O(n).

        Exact when t ∥ ξ (e.g. τ → 0 at fixed s, where t ≈ τξ): then
        t tᵀ/(1 − s) = ξ̂ ξ̂ᵀ s/(1 − s).  Only the component of v along ξ is
        amplified, by 1/(1 − s).  At ξ = 0 (s = 0) it returns v.
        """
        xp, xi, v = _pair(xi, v)
        xp, x, t, s, c = self._prep(xi)
        return radial_inverse_apply_t(xi, s, v)

    def is_diagonally_dominant(self, xi: Any):
        """Strict row diagonal dominance of g (the paper's condition for P-29), ``[...]`` bool.

        Row i: |1 − t_i²| > Σ_{j≠i} |t_i t_j| ⟺ |t_i| ‖t‖₁ < 1 (using |t_i| < 1);
        evaluated as max_i |t_i| · ‖t‖₁ < 1, O(n).
        """
        xp, xi = _working(xi)
        _last_axis(xi)
        a = xp.abs(xp.tanh(self.tau * xi))
        return xp.max(a, axis=-1) * xp.sum(a, axis=-1) < 1.0

    # -------------------------------------------------------------- curvature
    def ricci_parts(self, xi: Any):
        r"""Closed-form Ricci tensor of g as diagonal plus rank one, O(n).

        Ric = diag(a) + β u uᵀ with d = τ (1 − t²), u = d∘t, β = 1/(1 − s)²,
        m = tr(g⁻¹ h) = (Σ d_i + (t·u)/(1 − s))/√(1 − s) (h = D/√(1 − s) the
        second fundamental form of the graph z = F(ξ) in Minkowski space) and
        a_i = −m d_i/√(1 − s) + d_i²/(1 − s) (module docstring, docs/math.md §2).
        d is evaluated as τ sech²(τξ) (no cancellation where |t_i| → 1).

        Returns ``(a[..., n], beta[...], u[..., n])``.
        """
        a, beta, u, _ = self.ricci_parts_and_scalar(xi)
        return a, beta, u

    def ricci_parts_and_scalar(self, xi: Any):
        r"""``(a, beta, u, R)`` in one O(n) pass: Ric = diag(a) + β u uᵀ and R = tr(g⁻¹ Ric).

        See :meth:`ricci_parts` and :meth:`scalar`; this shares t, s and d
        between the two (about half the work of calling both).
        """
        xp, x, t, s, c = self._prep(xi)
        d = self.tau * _sech2(x, xp)
        u = d * t
        mm, r = _scalar_from_sums(xp, d, t, u, c)
        a = d * (d / c[..., None] - mm[..., None])
        return a, 1.0 / (c * c), u, r

    def ricci_apply(self, xi: Any, v: Any):
        """Ric v = a∘v + β u (u·v), O(n); ``v`` broadcasts over ``[..., n]``."""
        xp, xi, v = _pair(xi, v)
        a, beta, u = self.ricci_parts(xi)
        return a * v + u * (beta * _dot(u, v, xp))[..., None]

    def ricci_matrix(self, xi: Any):
        """Dense Ric = diag(a) + β u uᵀ, ``[..., n, n]`` (small n)."""
        xp, xi = _working(xi)
        a, beta, u = self.ricci_parts(xi)
        return _dense_diag(a, xp) + beta[..., None, None] * _outer(u, u)

    def scalar(self, xi: Any):
        r"""Scalar curvature R = tr(g⁻¹ Ric) in O(n), ``[...]``.

        With g⁻¹ = I + t tᵀ/(1 − s):
        R = Σ_i a_i (1 + t_i²/(1 − s)) + β (|u|² + (t·u)²/(1 − s)) = −(m² − |h|²_g),
        evaluated from four reductions (Σ d_i, Σ d_i t_i², Σ d_i², Σ d_i² t_i²)
        without forming a.  At ξ = 0, R = −n(n − 1) τ².
        """
        xp, x, t, s, c = self._prep(xi)
        d = self.tau * _sech2(x, xp)
        return _scalar_from_sums(xp, d, t, d * t, c)[1]

    # -------------------------------------------------------------- other paths
    def metric_field(self, n: int, **kw):
        """g = I − t tᵀ as a torch :class:`~lnegeom.metric.MetricField` (generic autodiff path).

        Its ``curvature(x)`` computes the full Riemann tensor (n⁴ entries) from
        exact ``torch.func`` derivatives — the independent check of the
        closed form.  Keyword arguments go to ``MetricField``.
        """
        from .metric import MetricField

        tau = self.tau
        fn = self.matrix

        kw.setdefault("name", f"LNE metric I - t t^T (tau={tau:g})")
        return MetricField(fn, n, **kw)

    def symbolic(self, n: int, *, tau_value: bool = False):
        """g = I − t tᵀ, t_i = tanh(τ ξ_i), as a :class:`lnegeom.symbolic.SymbolicMetric`.

        Coordinates are the sympy symbols ``xi1 … xin`` (real); τ is the
        symbol ``tau`` (positive) unless ``tau_value=True``, which substitutes
        this metric's numeric τ.
        """
        import sympy as sp

        from .symbolic import SymbolicMetric

        if int(n) < 1:
            raise ValueError(f"dimension n must be >= 1, got {n}")
        n = int(n)
        coords = sp.symbols(f"xi1:{n + 1}", real=True)
        tau = sp.nsimplify(self.tau) if tau_value else sp.Symbol("tau", positive=True)
        t = sp.Matrix([sp.tanh(tau * x) for x in coords])
        return SymbolicMetric(coords, sp.eye(n) - t * t.T, name=f"LNE metric I - t t^T (n={n})")

    @staticmethod
    def closed_form_symbolic(coords, tau):
        r"""The closed-form Ricci tensor and scalar of g = I − t tᵀ as sympy expressions.

        The same formulas as :meth:`ricci_parts` and :meth:`scalar` (module docstring,
        docs/math.md §2), written in sympy with t_i = tanh(τ ξ_i) and no square roots
        (m/√(1 − s) = (Σ d_i + t·u/(1 − s))/(1 − s)); compared exactly against the
        generic symbolic curvature of :meth:`symbolic` in the tests.  Returns
        ``(Ric, R)`` (``sympy.Matrix``, ``sympy.Expr``).
        """
        import sympy as sp

        t = [sp.tanh(tau * x) for x in coords]
        d = [tau * (1 - ti**2) for ti in t]
        c = 1 - sum(ti**2 for ti in t)
        u = [di * ti for di, ti in zip(d, t)]
        tu = sum(a * b for a, b in zip(t, u))
        m_over_root_c = (sum(d) + tu / c) / c
        a = [di * (di / c - m_over_root_c) for di in d]
        n = len(coords)
        ric = sp.Matrix(n, n, lambda i, j: (a[i] if i == j else 0) + u[i] * u[j] / c**2)
        scal = sum(a[i] * (1 + t[i] ** 2 / c) for i in range(n)) + (sum(x**2 for x in u) + tu**2 / c) / c**2
        return ric, scal

    def __repr__(self) -> str:
        return f"LNEMetric(tau={self.tau!r})"


def _scalar_from_sums(xp: Any, d: Array, t: Array, u: Array, c: Array):
    r"""(M = m/√(1 − s), R) from four O(n) reductions (module docstring, docs/math.md §2).

    With S_d = Σ d_i, S_tu = t·u = Σ d_i t_i², S_dd = Σ d_i², S_uu = |u|²:
    M = (S_d + S_tu/c)/c, Σ a_i = S_dd/c − M S_d, Σ a_i t_i² = S_uu/c − M S_tu, and
    R = Σ a_i + Σ a_i t_i²/c + (S_uu + S_tu²/c)/c²   (c = 1 − s).
    """
    s_d = xp.sum(d, axis=-1)
    s_tu = _dot(t, u, xp)
    s_dd = _dot(d, d, xp)
    s_uu = _dot(u, u, xp)
    mm = (s_d + s_tu / c) / c
    r = (s_dd / c - mm * s_d) + (s_uu / c - mm * s_tu) / c + (s_uu + s_tu * s_tu / c) / (c * c)
    return mm, r


def _solve_tau_star(xi_row: np.ndarray) -> float:
    """Root τ* of Σ tanh²(τ ξ_i) = 1 (float64; ``inf`` if fewer than two ξ_i ≠ 0)."""
    a = np.abs(np.asarray(xi_row, dtype=np.float64))
    a = a[a > 0]
    if a.size < 2 or not np.all(np.isfinite(a)):
        return math.inf

    def s_of(tau: float) -> float:
        return float(np.sum(np.tanh(tau * a) ** 2))

    lo = 1.0 / float(np.linalg.norm(a))  # s(lo) < lo²‖ξ‖² = 1
    hi = 2.0 * lo
    while s_of(hi) < 1.0:
        lo, hi = hi, 2.0 * hi
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if s_of(mid) < 1.0:
            lo = mid
        else:
            hi = mid
    return hi


# --------------------------------------------------------------------------- Taylor
def taylor_discrepancy(
    xi: Any,
    direction: Any,
    tau: float,
    eps: Optional[Sequence[float]] = None,
) -> dict:
    r"""How well ½ ε² vᵀ M v approximates the Bregman divergence, for M = H and M = g.

    err_M(ε) = |D[ξ + ε v : ξ] − ½ ε² vᵀ M(ξ) v| (P-15 against P-16 / the
    Hessian metric, docs/math.md §2).  Since H = ∇²Φ is the exact second-order
    term, err_H = O(ε³) (order 3); g differs from H off the diagonal, so
    err_g ≈ ½ ε² |(t·v)² − Σ_i t_i² v_i²| (order 2) whenever v has
    off-diagonal weight.  Both need ξ generic: the cubic term of D is
    −(τ/3) ε³ Σ_i t_i (1 − t_i²) v_i³, which vanishes at ξ = 0, where also
    g = H = I, so there both orders are 4.  D is computed in float64 by the cancellation-free
    form of :func:`bregman`, so err_H is resolved down to ε ~ 1e-4.

    Parameters
    ----------
    xi, direction:
        One point ξ[n] and one direction v[n] (numpy or torch; converted to
        float64 numpy).
    eps:
        Step sizes (default ``np.logspace(-1, -3.5, 12)``).

    Returns
    -------
    dict with ``eps``, ``bregman`` (D values), ``err_H``, ``err_g``,
    ``order_H`` and ``order_g`` (least-squares slopes of log err
    against log ε).
    """
    tau = _validate_tau(tau)
    steps = np.logspace(-1, -3.5, 12) if eps is None else np.asarray(eps, dtype=np.float64)
    x = np.asarray(to_numpy(xi), dtype=np.float64)
    v = np.asarray(to_numpy(direction), dtype=np.float64)
    if x.ndim != 1 or v.shape != x.shape:
        raise ValueError(
            f"taylor_discrepancy takes one point xi[n] and one direction[n], got shapes "
            f"{x.shape} and {v.shape}"
        )
    t = np.tanh(tau * x)
    q_h = float(np.sum(_sech2(tau * x, np) * v * v))
    q_g = float(v @ v - (t @ v) ** 2)
    d = np.array([float(bregman(x + e * v, x, tau)) for e in steps])
    err_h = np.abs(d - 0.5 * steps**2 * q_h)
    err_g = np.abs(d - 0.5 * steps**2 * q_g)

    def order(err: np.ndarray) -> float:
        ok = err > 0
        if ok.sum() < 2:
            return float("nan")
        return float(np.polyfit(np.log(steps[ok]), np.log(err[ok]), 1)[0])

    return {
        "eps": steps,
        "bregman": d,
        "err_H": err_h,
        "err_g": err_g,
        "order_H": order(err_h),
        "order_g": order(err_g),
    }
