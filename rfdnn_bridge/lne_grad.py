r"""The LNE natural gradient g(w)⁻¹ ∂L for torch tensors (docs/math.md §2, §4; P-17, P-27, P-29).

:func:`lne_transform` maps a parameter's gradient through the inverse of the
paper's LNE metric g(w) = I − t tᵀ, t = tanh(τ w), s = |t|², one metric per
*group*: the whole flattened tensor (``group="tensor"``, as in the paper) or
one metric per output channel (``group="channel"``, the rows of dim 0).
Every LNE formula comes from :class:`lnegeom.lne.LNEMetric` (array-API, so it
runs on the torch tensors directly); nothing n×n is formed, every mode is
O(n) per group.

Per-group τ.  g depends on w only through x = τ w, and so does every method of
``LNEMetric(1)`` evaluated at x except the curvature, which is a tensor in the
w coordinates: with ξ' = τ ξ, g_τ(ξ) = g_1(ξ') as matrices and the Ricci
tensor is invariant under constant rescaling of the metric, so
Ric_τ(ξ) = τ² Ric_1(τ ξ) (check: at ξ = 0, Ric = −(n − 1) τ² I, docs/math.md §2).
That lets one ``LNEMetric(1.0)`` serve a different τ per group.

Modes: each is an :class:`LNEMode` object, resolved once from its name and
options by :func:`get_mode` (``list_modes()`` gives the names; the optimizers
resolve a param group's mode when the group is added), whose
:meth:`LNEMode.transform` maps the prepared t, s at x = τ w and v, the group's
gradient, to the transformed gradient:

``exact``
    Sherman–Morrison, g⁻¹ v = v + t (t·v)/(1 − s)  (``LNEMetric.inverse_apply``).
``weak``
    The paper's P-29, v + t (t·v); error t (t·v) s/(1 − s)
    (``LNEMetric.weak_inverse_apply``; P-29 is justified only where g is
    diagonally dominant — reported in the diagnostics).
``curvature``
    One explicit Ricci-flow step of the metric, M = g − 2η Ric(g), inverted
    exactly in O(n) by Woodbury (derivation in :class:`Curvature`; docs/math.md §4).
``radial``
    The large-layer limit of ``exact`` (docs/math.md §2): v + ŵ (ŵ·v) s/(1 − s),
    ŵ = w/|w| — only the radial component of v is amplified, by 1/(1 − s)
    (``LNEMetric.radial_inverse_apply``).
``strong``
    The paper's strong approximation P-28: a small MLP fills the lower
    triangle and diagonal of a symmetric G ≈ g⁻¹ trained to minimise
    ‖I − g G‖² (:mod:`rfdnn_bridge.strong`; groups of at most
    ``strong.MAX_N`` = 64 weights, O(n²); its error against ``exact`` is
    ``strong.strong_error``).
``layer_lr``
    A per-group scalar λ v with λ = vᵀ g⁻¹ v / vᵀ v = 1 + (t·v)²/((1 − s)|v|²)
    ≈ 1 + s/(1 − s) · cos²(w, v): the Rayleigh quotient of g⁻¹ at v, i.e. the
    scalar step whose first-order loss decrease ⟨v, λ v⟩ equals that of the
    natural-gradient step ⟨v, g⁻¹ v⟩ (docs/math.md §2: the LNE gradient as an
    effective per-layer learning rate); λ ∈ [1, 1/(1 − s)].

``radial`` and ``layer_lr`` are the two cheap baselines docs/math.md §2 asks any
claim about the LNE gradient to beat.

τ policy: a fixed τ > 0 must give s < 1 in every group (else a ``ValueError``
naming the parameter, s and the largest admissible τ, from
``LNEMetric.check``); ``tau="auto"`` solves s(τ) = ``target_s`` per group
(:func:`auto_tau`).

Precision: t, s and 1/(1 − s) are computed in float32 or wider (float16 and
bfloat16 inputs are upcast; float64 stays float64); the result is cast back
to ``grad.dtype``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Optional, Union

import torch

from lnegeom.lne import (
    LNEMetric,
    LNEMetricError,
    inverse_apply_t,
    radial_inverse_apply_t,
    rowdot,
    weak_inverse_apply_t,
)

from .strong import strong_apply, strong_error

__all__ = [
    "lne_transform", "list_modes", "get_mode", "auto_tau", "LNEDiagnostics",
    "LNEMode", "Exact", "Weak", "Curvature", "Radial", "LayerLR", "Strong",
    "resolve_tau", "as_groups", "working_dtype", "Prepared", "scheduled_tau", "group_param_names",
    "GROUPS",
]

GROUPS = ("tensor", "channel")
_UNIT = LNEMetric(1.0, check=False)  # all groups: x = τ w (module docstring)

@dataclass
class Prepared:
    """t = tanh(x) and s = |t|² at x = τ w of a group batch ``[G, n]``: tanh once per step.

    ``x`` is formed on demand from ``tau[G]`` and ``w[G, n]``.  ``scratch=True``
    means ``t`` lives in a workspace the modes may overwrite (the optimizer's
    per-parameter buffer): read ``t`` before :meth:`LNEMode.transform`, not after.
    """

    t: torch.Tensor
    s: torch.Tensor
    tau: torch.Tensor
    w: torch.Tensor
    scratch: bool = False

    @property
    def x(self) -> torch.Tensor:
        return self.tau[:, None] * self.w

    @classmethod
    def at(cls, w: torch.Tensor, tau: torch.Tensor, out: Optional[torch.Tensor] = None) -> "Prepared":
        """At x = τ w, computing t into ``out`` when given (then ``scratch``)."""
        t = torch.mul(w, tau[:, None], out=out) if out is not None else w * tau[:, None]
        t = torch.tanh(t, out=t)
        return cls(t, rowdot(t, t), tau, w, out is not None)



@dataclass
class LNEDiagnostics:
    """Per-group diagnostics of one :func:`lne_transform` call (tensors of shape ``[G]``, float32+).

    ``s`` = |t|²; ``tau`` the temperature used; ``amplification`` = 1/(1 − s)
    (the largest eigenvalue of g⁻¹); ``diagonally_dominant`` the P-29
    condition max|t_i|·‖t‖₁ < 1; ``norm_ratio`` = ‖transformed‖/‖raw‖ (1 where
    the raw gradient is zero).
    """

    mode: str
    group: str
    s: torch.Tensor
    tau: torch.Tensor
    amplification: torch.Tensor
    diagonally_dominant: torch.Tensor
    norm_ratio: torch.Tensor


# --------------------------------------------------------------------------- modes
class LNEMode(ABC):
    """How a param group's gradients are mapped through (an approximation of) g(w)⁻¹: geoopt's
    ``egrad2rgrad`` seam.

    A mode is resolved once from its name and options (:func:`get_mode`; the optimizers do it when
    a param group is added) and then applied to every parameter of the group by :meth:`transform`.
    Subclasses set :attr:`name` and :attr:`options` (their constructor's keywords, which
    :func:`get_mode` passes on) and implement :meth:`transform`.
    """

    #: the mode's name in :func:`list_modes` and in the optimizers' ``mode=`` option
    name: ClassVar[str]
    #: the keyword options of the constructor (:func:`get_mode` passes these on, ignores the others)
    options: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        """The transformed gradient ``[G, n]`` of ``v[G, n]`` at the prepared x = τ w of the same
        groups (``pre.tau`` the per-group τ).  ``param`` names the parameter in error messages."""

    def diagnostics(self, pre: Prepared, param: str = "<unnamed>") -> dict[str, torch.Tensor]:
        """Per-group diagnostics of this mode that the optimizers record with the others (none here)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.options)})"


class Exact(LNEMode):
    """``exact``: Sherman–Morrison, g⁻¹ v = v + t (t·v)/(1 − s) (``LNEMetric.inverse_apply``)."""

    name = "exact"

    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        return inverse_apply_t(pre.t, pre.s, v, overwrite_t=pre.scratch)


class Weak(LNEMode):
    """``weak``: the paper's P-29, v + t (t·v) (``LNEMetric.weak_inverse_apply``)."""

    name = "weak"

    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        return weak_inverse_apply_t(pre.t, v, overwrite_t=pre.scratch)


class Radial(LNEMode):
    """``radial``: v + ŵ (ŵ·v) s/(1 − s), ŵ = w/|w| (``LNEMetric.radial_inverse_apply``)."""

    name = "radial"

    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        return radial_inverse_apply_t(pre.x, pre.s, v)


class LayerLR(LNEMode):
    """``layer_lr``: λ v with λ = vᵀ g⁻¹ v / vᵀ v = 1 + (t·v)²/((1 − s)|v|²), 1 where v = 0."""

    name = "layer_lr"

    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        vv = rowdot(v, v)
        tv = rowdot(pre.t, v)
        safe = torch.where(vv > 0, vv, torch.ones_like(vv))
        lam = torch.where(vv > 0, 1.0 + tv * tv / ((1.0 - pre.s) * safe), torch.ones_like(vv))  # vᵀg⁻¹v / vᵀv
        return lam[:, None] * v


class Strong(LNEMode):
    """``strong``: the paper's P-28, a trained MLP's G ≈ g⁻¹ (:func:`rfdnn_bridge.strong.strong_apply`;
    groups of at most ``strong.MAX_N`` weights); its diagnostics add ``strong_error``, the
    relative error of G against g⁻¹ (:func:`rfdnn_bridge.strong.strong_error`)."""

    name = "strong"

    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        return strong_apply(pre.x, v, param)

    def diagnostics(self, pre: Prepared, param: str = "<unnamed>") -> dict[str, torch.Tensor]:
        return {"strong_error": strong_error(pre.x, param)}  # x is formed from τ and w, not from t


class Curvature(LNEMode):
    r"""``curvature``: (g − 2η Ric)⁻¹ v in O(n) by Woodbury (docs/math.md §2, §4).

    ``eta_relative=True`` measures η in units of the curvature's size: η = eta/ρ
    per group with ρ = max_i |a_i| + β|u|² ≥ ‖Ric‖₂ (Ric ≤ 0 here), so the
    Ricci term 2η|Ric| is at most 2·eta relative to I whatever n and τ — an
    absolute η that suits one layer is far too strong for a larger one, since
    ‖Ric‖ grows like (n − 1) τ² (docs/math.md §2).

    Ric = diag(a) + β u uᵀ (``LNEMetric.ricci_parts``, scaled by τ² per group),
    so with δ = 1 − 2η a, U = [t, u] (n×2) and C = diag(1, 2ηβ):

        M = g − 2η Ric = diag(δ) − t tᵀ − 2ηβ u uᵀ = D − U C Uᵀ,  D = diag(δ),

    diagonal plus rank two.  Woodbury in the form that needs no C⁻¹:

        M⁻¹ = D⁻¹ + D⁻¹ U (I₂ − C K)⁻¹ C Uᵀ D⁻¹,  K = Uᵀ D⁻¹ U (2×2),

    (check: M · M⁻¹ = I − U C Uᵀ D⁻¹ + U (I − C K)(I − C K)⁻¹ C Uᵀ D⁻¹ = I).
    Applied to v: y = Uᵀ (v/δ), z = (I − C K)⁻¹ C y, M⁻¹ v = (v + U z)/δ.

    Positive definiteness.  Ric ≤ 0 here (Gauss equation with the convex F:
    in a frame of principal curvatures κ_i > 0, Ric_ii = −κ_i Σ_{j≠i} κ_j), so
    for η ≥ 0, M = g + 2η|Ric| is PD whenever g is.  For η < 0 (backward
    flow) the inertia is counted exactly (Haynsworth, C invertible):
    n₊(M) = n₊(D) + n₊(C⁻¹ − K) − n₊(C⁻¹); M is PD iff n₊(M) = n and
    det(C⁻¹ − K) ≠ 0 (2×2 sign counts, O(n)); otherwise a ``ValueError`` names
    the parameter, the group and η.
    """

    name = "curvature"
    options = ("eta", "eta_relative")

    def __init__(self, eta: float = 0.01, eta_relative: bool = False) -> None:
        self.eta = float(eta)
        self.eta_relative = bool(eta_relative)

    def transform(self, pre: Prepared, v: torch.Tensor, param: str = "<unnamed>") -> torch.Tensor:
        tau, eta, relative = pre.tau, self.eta, self.eta_relative
        a, beta, u = _UNIT.ricci_parts(pre.x)
        tau2 = tau * tau
        a = a * tau2[:, None]
        u = u * tau[:, None]  # β u uᵀ scales by τ²: put one τ in u
        t = pre.t
        eta_g: float | torch.Tensor = eta  # with ``eta_relative``: per group, [G, 1]
        if relative:
            rho = a.abs().amax(-1) + beta * (u * u).sum(-1)
            big = rho > torch.finfo(rho.dtype).eps  # below that, 2η Ric is under I's rounding: η = 0
            eta_g = torch.where(big, eta / torch.where(big, rho, torch.ones_like(rho)), torch.zeros_like(rho))[:, None]
            beta = beta[:, None]
        delta = 1.0 - 2.0 * eta_g * a
        c2 = 2.0 * eta_g * beta
        if relative:
            c2 = c2[:, 0]
        if bool(torch.as_tensor(eta_g < 0.0).any()):
            _check_curvature_pd(delta, t, u, c2, float(torch.as_tensor(eta_g).min()), param)
        inv_d = 1.0 / delta
        k11 = (t * t * inv_d).sum(-1)
        k12 = (t * u * inv_d).sum(-1)
        k22 = (u * u * inv_d).sum(-1)
        y1 = (t * v * inv_d).sum(-1)
        y2 = (u * v * inv_d).sum(-1)
        # S = I − C K = [[1 − k11, −k12], [−c2 k12, 1 − c2 k22]];  z = S⁻¹ (y1, c2 y2)
        s11, s12, s21, s22 = 1.0 - k11, -k12, -c2 * k12, 1.0 - c2 * k22
        det = s11 * s22 - s12 * s21
        r1, r2 = y1, c2 * y2
        z1 = (s22 * r1 - s12 * r2) / det
        z2 = (s11 * r2 - s21 * r1) / det
        return (v + t * z1[:, None] + u * z2[:, None]) * inv_d


_MODES: dict[str, type[LNEMode]] = {cls.name: cls for cls in (Exact, Weak, Curvature, Radial, LayerLR, Strong)}
#: every option some mode reads (``get_mode`` refuses others)
_MODE_OPTIONS = frozenset(k for cls in _MODES.values() for k in cls.options)


def list_modes() -> list[str]:
    """The names of the LNE modes (:func:`get_mode`, :func:`lne_transform`'s ``mode``)."""
    return sorted(_MODES)


def get_mode(name: str, **options: Any) -> LNEMode:
    """The LNE mode ``name`` (one of :func:`list_modes`) built with its options (``eta`` and
    ``eta_relative`` for ``curvature``).  Options another mode reads are ignored, so one set of
    options (a param group's) serves every mode; an option no mode reads is a ``TypeError``, an
    unknown name a ``ValueError`` listing the modes."""
    cls = _MODES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown LNE mode {name!r}; the modes are {list_modes()}")
    unknown = sorted(set(options) - _MODE_OPTIONS)
    if unknown:
        raise TypeError(f"unknown LNE mode option(s) {unknown}; the options are {sorted(_MODE_OPTIONS)}")
    return cls(**{k: options[k] for k in cls.options if k in options})

def _check_curvature_pd(
    delta: torch.Tensor, t: torch.Tensor, u: torch.Tensor, c2: torch.Tensor, eta: float, name: str
) -> None:
    """Raise unless D − U C Uᵀ (see :class:`Curvature`) is positive definite in every group."""
    n = delta.shape[-1]
    ok_d = (delta != 0).all(-1)
    safe = torch.where(delta != 0, delta, torch.ones_like(delta))
    k11 = (t * t / safe).sum(-1)
    k12 = (t * u / safe).sum(-1)
    k22 = (u * u / safe).sum(-1)
    # P = C⁻¹ − K = [[1 − k11, −k12], [−k12, 1/c2 − k22]] (symmetric 2×2); where c2 = 0 the
    # Ricci term is absent and M = D − t tᵀ: rank one, n₊(M) = n₊(D) + n₊(1 − k11) − 1
    rank2 = c2 != 0
    p11, p22 = 1.0 - k11, 1.0 / torch.where(rank2, c2, torch.ones_like(c2)) - k22
    det = torch.where(rank2, p11 * p22 - k12 * k12, p11)
    tr = p11 + p22
    n_pos_p2 = torch.where(det > 0, torch.where(tr > 0, 2, 0), torch.ones_like(det, dtype=torch.long))
    n_pos_p = torch.where(rank2, n_pos_p2, (p11 > 0).long())
    n_pos_c = 1 + (c2 > 0).long()
    n_pos = (delta > 0).sum(-1) + n_pos_p - n_pos_c
    ok = ok_d & (det != 0) & (n_pos == n)
    if not bool(ok.all()):
        bad = int(torch.nonzero(~ok)[0, 0])
        raise ValueError(
            f"lne_transform(mode='curvature'): g - 2*eta*Ric is not positive definite for "
            f"parameter {name!r}, group {bad} (eta = {eta:g}); Ric <= 0 for this metric, so "
            f"use eta >= 0 (forward Ricci flow) or a smaller |eta|"
        )


# --------------------------------------------------------------------------- τ
def auto_tau(
    w_groups: torch.Tensor, target_s: float = 0.5, *, tol: Optional[float] = None, max_iter: int = 50
) -> torch.Tensor:
    r"""Per-row τ with s(τ) = Σ_i tanh²(τ w_i) = ``target_s``, ``w_groups[G, n]`` -> ``τ[G]``.

    s(τ) increases from 0 to the number of non-zero w_i, so the root is unique
    for 0 < target_s < 1 as soon as w ≠ 0.  Bracket (tanh² x ≤ x² and
    s ≥ tanh²(τ max|w_i|)): τ_lo = √target/‖w‖₂ ≤ τ* ≤ τ_hi = artanh(√target)/max|w_i|.
    Then safeguarded Newton, vectorised over the groups: a Newton step with
    ds/dτ = 2 Σ t_i (1 − t_i²) w_i, replaced by bisection whenever it leaves
    the bracket; stops when every |s − target| ≤ ``tol`` (default
    max(1e-9, 8 eps of the dtype): 1e-9 in float64, ~1e-6 in float32) or its
    bracket has shrunk to rounding (typically 2–6 iterations).  Rows with
    w = 0 get τ = 0 (g = I, the τ → 0 limit: no τ reaches the target there).
    Computed in the dtype of ``w_groups``.
    """
    if not (0.0 < float(target_s) < 1.0):
        raise ValueError(
            f"target_s must lie in (0, 1) (g is positive definite iff s < 1), got target_s={target_s!r}"
        )
    w = w_groups
    eps = torch.finfo(w.dtype).eps
    tol = max(1e-9, 8.0 * eps) if tol is None else float(tol)
    norm = torch.linalg.vector_norm(w, dim=-1)
    amax = w.abs().amax(-1)
    zero = norm == 0
    one = torch.ones_like(norm)
    norm, amax = torch.where(zero, one, norm), torch.where(zero, one, amax)
    root = math.sqrt(target_s)
    lo = root / norm
    hi = math.atanh(root) / amax
    tau = lo.clone()
    for _ in range(max_iter):
        t = _UNIT.t(tau[:, None] * w)
        s = (t * t).sum(-1)
        f = s - target_s
        if bool(((f.abs() <= tol) | (hi - lo <= 4.0 * eps * tau) | zero).all()):
            break
        lo = torch.where(f < 0, tau, lo)
        hi = torch.where(f > 0, tau, hi)
        ds = 2.0 * (t * (1.0 - t * t) * w).sum(-1)
        newton = tau - f / torch.where(ds > 0, ds, one)
        inside = (ds > 0) & (newton > lo) & (newton < hi)
        tau = torch.where(inside, newton, 0.5 * (lo + hi))
    return torch.where(zero, torch.zeros_like(tau), tau)



# --------------------------------------------------------------------------- building blocks
def working_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float32 or wider: the promoted dtype of ``tensors``, at least float32 (module docstring)."""
    dt = torch.float32
    for x in tensors:
        dt = torch.promote_types(dt, x.dtype)
    return dt


def as_groups(x: torch.Tensor, group: str, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``x`` detached and reshaped to ``[G, n]``: one row per metric (``group`` = "tensor" | "channel")."""
    rows = x.shape[0] if (group == "channel" and x.ndim > 0) else 1
    return x.detach().to(working_dtype(x) if dtype is None else dtype).reshape(rows, -1)


def resolve_tau(
    wg: torch.Tensor,
    tau: Union[float, str, torch.Tensor],
    *,
    target_s: float = 0.5,
    name: str = "<unnamed>",
    group: str = "tensor",
) -> torch.Tensor:
    """Per-row τ ``[G]`` for the grouped weights ``wg[G, n]``: ``"auto"`` (:func:`auto_tau`), or a
    fixed number / per-row tensor checked for s < 1 (``LNEMetricError`` naming the parameter, s and
    the largest admissible τ)."""
    rows = wg.shape[0]
    if isinstance(tau, str):
        if tau != "auto":
            raise ValueError(f"tau must be a number > 0 or 'auto', got tau={tau!r}")
        return auto_tau(wg, target_s)
    if isinstance(tau, torch.Tensor):
        flat = tau.detach().reshape(-1)
        if flat.numel() not in (1, rows):
            raise ValueError(f"parameter {name!r}: a per-group tau needs 1 or {rows} values (one per group), "
                             f"got {flat.numel()}")
        taus = flat.to(device=wg.device, dtype=wg.dtype).expand(rows).clone()
        if not bool((taus >= 0).all() & torch.isfinite(taus).all()):
            raise ValueError(f"parameter {name!r}: per-group tau must be finite and >= 0, got {taus.tolist()}")
        s = _UNIT.s(taus[:, None] * wg)
        bad = s >= 1.0
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            top = float(LNEMetric(1.0, check=False).max_tau(wg[i]))
            raise LNEMetricError(
                f"parameter {name!r} (group={group!r}, row {i}): s = |tanh(tau*w)|^2 = {float(s[i]):.6g} >= 1 "
                f"with tau = {float(taus[i]):.6g}; the metric is positive definite only for s < 1: "
                f"use tau < {top:.6g} there, or tau='auto'"
            )
        return taus
    try:
        LNEMetric(tau).check(wg)
    except LNEMetricError as err:
        raise LNEMetricError(f"parameter {name!r} (group={group!r}): {err}") from None
    return torch.full((rows,), float(tau), dtype=wg.dtype, device=wg.device)


# --------------------------------------------------------------------------- API
def lne_transform(
    grad: torch.Tensor,
    w: torch.Tensor,
    *,
    mode: str = "exact",
    tau: Union[float, str, torch.Tensor] = 1.0,
    group: str = "tensor",
    eta: float = 0.01,
    target_s: float = 0.5,
    name: Optional[str] = None,
    eta_relative: bool = False,
) -> tuple[torch.Tensor, LNEDiagnostics]:
    r"""The LNE natural gradient g(w)⁻¹ ``grad`` per group (module docstring; docs/math.md §2, §4).

    Parameters
    ----------
    grad, w:
        The gradient and the (latent) weight, same shape, any float dtype.
    mode:
        One of :func:`list_modes`: ``exact``, ``weak``, ``curvature``,
        ``radial``, ``layer_lr``, ``strong`` (module docstring).
    tau:
        A fixed temperature τ > 0 (every group must have s < 1), a tensor of
        per-group temperatures (shape ``[G]``, same check), or ``"auto"``: per
        group, s = ``target_s`` (:func:`auto_tau`).
    group:
        ``"tensor"`` (one metric for the flattened tensor, the paper) or
        ``"channel"`` (one metric per slice ``w[i]`` along dim 0).
    eta:
        Step of the Ricci-flow mode ``curvature``: M = g − 2η Ric.
    eta_relative:
        Measure ``eta`` in units of ‖Ric‖ per group (:class:`Curvature`).
    target_s:
        The s aimed at by ``tau="auto"``, in (0, 1).
    name:
        The parameter's name, used in error messages.

    Returns
    -------
    ``(transformed, diagnostics)``: the transformed gradient (shape and dtype of
    ``grad``) and an :class:`LNEDiagnostics`.

    Raises
    ------
    ValueError
        Unknown mode or group (listing the valid ones); shape mismatch; NaN/inf in
        ``grad`` or ``w``; s ≥ 1 for a fixed τ (:class:`lnegeom.lne.LNEMetricError`,
        naming s and the largest admissible τ); ``curvature`` with g − 2η Ric not
        positive definite.
    """
    label = "<unnamed>" if name is None else name
    lne_mode = get_mode(mode, eta=eta, eta_relative=eta_relative)
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; the groups are {list(GROUPS)}")
    if grad.shape != w.shape:
        raise ValueError(f"parameter {label!r}: grad shape {tuple(grad.shape)} != weight shape {tuple(w.shape)}")
    eta = float(eta)
    if not math.isfinite(eta):
        raise ValueError(f"eta must be finite, got eta={eta!r}")
    for what, arr in (("grad", grad), ("weight", w)):
        if not bool(torch.isfinite(arr).all()):
            raise ValueError(f"parameter {label!r}: {what} has NaN or inf entries")

    work = working_dtype(grad, w)
    wg, vg = as_groups(w, group, work), as_groups(grad, group, work)
    taus = resolve_tau(wg, tau, target_s=target_s, name=label, group=group)
    pre = Prepared.at(wg, taus)
    out = lne_mode.transform(pre, vg, label)
    x, s = pre.x, pre.s
    raw = torch.linalg.vector_norm(vg, dim=-1)
    new = torch.linalg.vector_norm(out, dim=-1)
    diag = LNEDiagnostics(
        mode=mode,
        group=group,
        s=s,
        tau=taus,
        amplification=1.0 / (1.0 - s),
        diagonally_dominant=_UNIT.is_diagonally_dominant(x),
        norm_ratio=torch.where(raw > 0, new / torch.where(raw > 0, raw, torch.ones_like(raw)), torch.ones_like(raw)),
    )
    return out.reshape(grad.shape).to(grad.dtype), diag


def scheduled_tau(
    wg: torch.Tensor, cfg: Mapping[str, Any], state: dict, out: Optional[torch.Tensor] = None
) -> Prepared:
    """t, s at x = τ w of one parameter, with the per-group τ (``.tau``) of the schedule of
    :mod:`rfdnn_bridge.optim` (fixed, or solved for ``target_s`` every ``tau_every`` steps and early
    when s > ``s_max``).

    tanh is evaluated once per step (it dominates the transform's cost on CPU) unless τ is
    re-solved; ``out`` is a reusable workspace for t.  State: "tau", "tau_updates", "step".
    """
    tau = cfg["tau"]
    held = state.get("tau")
    if tau != "auto":
        if held is None or held.dtype != wg.dtype or held.device != wg.device:
            held = state["tau"] = torch.full((wg.shape[0],), float(tau), dtype=wg.dtype, device=wg.device)
        return Prepared.at(wg, held, out)
    if held is not None and state.get("step", 0) % cfg["tau_every"] != 0:
        held = held.to(device=wg.device, dtype=wg.dtype)
        pre = Prepared.at(wg, held, out)
        if bool((pre.s <= cfg["s_max"]).all()):
            state["tau"] = held
            return pre
    held = auto_tau(wg, cfg["target_s"])
    state["tau_updates"] = state.get("tau_updates", 0) + 1
    pre = Prepared.at(wg, held, out)
    state["tau"] = held
    return pre


def group_param_names(group: Mapping[str, Any], index: int) -> list[str]:
    """The names of a param group's parameters (``param_names``, or ``group<i>.param<j>``)."""
    names = group.get("param_names")
    return list(names) if names else [f"group{index}.param{j}" for j in range(len(group["params"]))]
