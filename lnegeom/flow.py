r"""Ricci and Ricci–DeTurck flow of metric fields on grids (docs/math.md §3).

:func:`solve_flow` integrates

* Ricci–DeTurck flow (P-9), ``flow="ricci-deturck"``:
  ∂_t g_ij = −2 Ric_ij(g) + (L_W g)_ij,  W^k = g^ij (Γ^k_ij(g) − Γ^k_ij(g̃)),
  with a fixed background metric g̃ (default δ);
* plain Ricci flow (P-6), ``flow="ricci"``: ∂_t g = −2 Ric(g).

The curvature comes from :func:`lnegeom.curvature.ricci_from_derivatives`
(Γ, Ric, R straight from g, ∂g, ∂²g without forming the Riemann tensor; the
same conventions as, and equal to rounding to,
:func:`~lnegeom.curvature.curvature_from_derivatives`), fed with the domain's
derivatives (spectral on :class:`~lnegeom.domains.Torus`), the grid points
being the batch.  Internally fields carry their component indices first and
the grid axes last (``g[i, j, *batch, *grid]``), so that every pointwise
contraction runs over contiguous rows; on the torus only the n(n+1)/2
components i ≤ j are transformed, ∂g and ∂²g come from one forward and one
batched inverse FFT, and ∂W from one more pair.

Backends
--------
One formulation serves numpy and torch (array API, :mod:`lnegeom._array`;
contractions by :func:`lnegeom.curvature.einsum_last`): a torch ``g0`` runs
the whole ETD stepper in torch on its device (float64), and ``batch=True``
flows B metrics ``g0[B, *grid, n, n]`` in one run (one shared step size).

The Lie derivative
------------------
For a vector field W and a 2-tensor g, (L_W g)(X, Y) = W(g(X, Y)) −
g([W, X], Y) − g(X, [W, Y]).  With X = ∂_i, Y = ∂_j and
[W, ∂_i] = −(∂_i W^k) ∂_k this is, in coordinates,

    (L_W g)_ij = W^k ∂_k g_ij + g_kj ∂_i W^k + g_ik ∂_j W^k,

which is how the right-hand side computes it (∂W by the domain's spectral
derivative).  Equivalently L_W g_ij = ∇_i W_j + ∇_j W_i.

Why DeTurck
-----------
The principal part of −2 Ric(g) is g^ab ∂_a ∂_b g_ij − ∂_i Γ_j − ∂_j Γ_i
(Γ_j = g_jk g^ab Γ^k_ab); the second group is a pure gauge term, which makes
Ricci flow only weakly parabolic (its symbol has a kernel along
diffeomorphism directions).  L_W g with the W above adds exactly +∂_i Γ_j +
∂_j Γ_i at the principal level, leaving g^ab ∂_a ∂_b g_ij: strongly parabolic.
At a constant metric g∞ (with a constant background, Γ̃ = 0) the
linearisation is ∂_t h = g∞^ab ∂_a ∂_b h, so on the flat torus a Fourier
mode e^{ik·x} of a small perturbation decays like e^{−kᵀ g∞⁻¹ k t}.  Plain
``"ricci"`` flow is accepted on the torus (it is well posed there through
DeTurck's trick), but its pure-gauge modes do not decay and its time
stepping has no parabolic smoothing in those directions.

Time stepping
-------------
``method="etd"`` (default, = ``"etd4"``) and ``"etd2"``, on a torus: the
right-hand side is split as F(g) = 𝓛 g + N(g) with the constant-coefficient
operator 𝓛 = A^ab ∂_a ∂_b, A = the grid mean of g^ab at the start of each
step (the principal part frozen at the mean metric; one A per batch member),
diagonal in Fourier space with symbol λ(k) = −kᵀ A k ≤ 0, and
N(g) = F(g) − 𝓛 g.  All stages are formed in Fourier space; z = hλ.

``"etd4"`` — ETDRK4 (Cox & Matthews 2002), classical order 4:

    a       = e^{z/2} u_n + (h/2) φ1(z/2) N(u_n)
    b       = e^{z/2} u_n + (h/2) φ1(z/2) N(a)
    c       = e^{z/2} a   + (h/2) φ1(z/2) (2 N(b) − N(u_n))
    u_{n+1} = e^z u_n + h [f1 N(u_n) + 2 f2 (N(a) + N(b)) + f3 N(c)],

f1 = φ1 − 3φ2 + 4φ3, f2 = φ2 − 2φ3, f3 = −φ2 + 4φ3 (at z), with
φ_k(z) = Σ_j z^j/(j + k)!.  Error estimate: N(u_{n+1}) is needed anyway (it
is the N(u_n) of the next step — first same as last), and putting it in
place of N(c) in the last weight gives the embedded solution
û_{n+1} = u_{n+1} − h f3 (N(c) − N(u_{n+1})).  At z = 0 its weights on
(u_n, a, b, c, u_{n+1}), nodes (0, ½, ½, 1, 1), are (1/6, 1/3, 1/3, 0, 1/6),
which satisfy the conditions up to order 3 (Σ b = 1, Σ b c = ½,
Σ b c² = ⅓, Σ b A c = ⅙), so the estimate h f3 (N(c) − N(u_{n+1})) is
O(h⁴) — and costs no evaluation of F.  4 evaluations of F per accepted
step, 4 per rejected one.  Cox–Matthews schemes can lose order on stiff
parabolic problems (Hochbruck & Ostermann 2005, stiff order conditions); here
the stiff remainder in N is (g^ab − A^ab) ∂_a ∂_b g, of the size of the
metric's variation: measured (tests) order 4.0 at amplitude 0.06 and
3.3–3.9 at amplitude 0.2.

``"etd2"`` — ETDRK2 (Cox & Matthews 2002) with the embedded exponential Euler
(ETD1):

    a       = e^z u_n + h φ1(z) N(u_n)                     (ETD1, order 1)
    u_{n+1} = a + h φ2(z) (N(a) − N(u_n))                  (ETDRK2, order 2)

with local error estimate h φ2(z) (N(a) − N(u_n)) = O(h²); 2 evaluations of
F per step.

Both: the step is accepted when the RMS norm of the estimate over all n²
entries and grid points, scaled by ``atol + rtol·max(|u_n|, |u_{n+1}|)``
componentwise (as in :func:`scipy.integrate.solve_ivp`; the largest over a
batch), is ≤ 1; the next step is h·0.9·err^{−1/p} (p = 4 for etd4, 2 for
etd2, clipped to [0.2 h, 5 h]), and the solution is advanced with the
higher-order value (local extrapolation).  A stage that is not finite or not
positive definite rejects the step (h/4).  Since λ ≤ 0 is real, the
φ-functions come from their Taylor series for |z| < 1 and from expm1 and
the recurrence φ_{k+1} = (φ_k − 1/k!)/z for |z| ≥ 1 (:func:`phi_functions`)
— no cancellation, no contour integral (the instability Kassam & Trefethen
2005 remove that way does not arise for real z ≤ 0).  The stiff linear part
is integrated exactly, so the step size is set by the (small) remainder N.

``method`` = ``"RK45"``, ``"RK23"``, ``"DOP853"``, ``"Radau"``, ``"BDF"``,
``"LSODA"``: the flattened state is handed to the corresponding
:mod:`scipy.integrate` solver class (the ones behind ``solve_ivp``), stepped
here so that failures return the partial result.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from array_api_compat import device as _device

from ._array import array_namespace, is_torch_array, to_numpy
from .checkpoint import FlowCheckpoint
from .curvature import (
    MetricError,
    RicciParts,
    curvature_from_derivatives,
    einsum_last,
    inverse_last,
    ricci_from_derivatives,
)
from .domains import Domain, Torus

__all__ = ["FlowResult", "solve_flow", "flow_rhs", "flow_diagnostics", "phi_functions", "FLOWS", "METHODS"]

FLOWS = ("ricci-deturck", "ricci")
_SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
_ETD_METHODS = ("etd", "etd4", "etd2")  # "etd" = "etd4"
METHODS = _ETD_METHODS + _SCIPY_METHODS


@dataclass
class FlowResult:
    """Result of :func:`solve_flow`, shaped like scipy's ``OdeResult``.

    Attributes
    ----------
    t:
        Saved times, shape ``[T]``.
    g:
        Saved metric fields, shape ``[T, *grid, n, n]`` (``[T, B, *grid, n, n]``
        for a batch); a torch tensor on the input's device for a torch run.
    diagnostics:
        Dict of arrays of length T, ``[T, B]`` for a batch (see :func:`flow_diagnostics`).
    status:
        0: reached the end of ``t_span``; −1: failed (see ``message``).
    message:
        What happened; on failure it names the time and the grid point.
    nfev:
        Number of right-hand-side evaluations.
    nsteps:
        Accepted steps (``nrejected``: rejected ones).
    t_last, g_last:
        The last accepted time and state (on failure: the last good state).
    """

    t: np.ndarray
    g: np.ndarray
    diagnostics: dict
    status: int
    message: str
    nfev: int = 0
    nsteps: int = 0
    nrejected: int = 0
    t_last: float = 0.0
    g_last: Optional[np.ndarray] = None
    method: str = "etd"
    flow: str = "ricci-deturck"
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        """``status >= 0``."""
        return self.status >= 0


class _NonFinite(RuntimeError):
    def __init__(self, index: tuple, value: float, where: str) -> None:
        super().__init__(where)
        self.index, self.value, self.where = index, value, where


# =========================================================================
# right-hand side
# =========================================================================
def background_christoffel(background: Any, domain: Domain) -> Optional[np.ndarray]:
    """Γ^k_ij(g̃) on the grid, or ``None`` for δ or a constant n×n background (Γ̃ = 0)."""
    if background is None:
        return None
    bg = np.asarray(background, dtype=np.float64)
    n = domain.n
    if bg.shape == (n, n):
        return None
    if bg.shape != tuple(domain.shape) + (n, n):
        raise ValueError(f"background must be None, an {n}×{n} matrix or a field of shape "
                         f"{tuple(domain.shape) + (n, n)}, got {bg.shape}")
    dg = domain.gradient(bg)
    d2g = domain.hessian(bg)
    return curvature_from_derivatives(bg, dg, d2g, check=False).christoffel


def _to_last(x: Any, k: int) -> Any:
    """Move the last ``k`` axes (tensor components) to the front: ``[*grid, i, j]`` → ``[i, j, *grid]``."""
    xp = array_namespace(x)
    for _ in range(k):
        x = xp.moveaxis(x, -1, 0)
    return x


def _to_first(x: Any, k: int) -> Any:
    """Inverse of :func:`_to_last`: ``[i, j, *grid]`` → ``[*grid, i, j]``."""
    xp = array_namespace(x)
    for _ in range(k):
        x = xp.moveaxis(x, 0, -1)
    return x


class _Packing:
    """The n(n+1)/2 components g_ij, i ≤ j (``numpy.triu_indices`` order), of symmetric fields ``[n, n, ...]``."""

    def __init__(self, n: int) -> None:
        self.n = n
        rows, cols = np.triu_indices(n)
        self.upper = [int(i * n + j) for i, j in zip(rows, cols)]
        pos = {(int(i), int(j)): q for q, (i, j) in enumerate(zip(rows, cols))}
        self.full = [pos[(min(i, j), max(i, j))] for i in range(n) for j in range(n)]
        self.pairs = list(zip(rows.tolist(), cols.tolist()))
        # weight of each packed component in a mean over all n² entries
        self.weights = np.array([1.0 if i == j else 2.0 for i, j in self.pairs]) / n**2
        self._cache: dict = {}

    def _index(self, which: str, like: Any) -> Any:
        """The index list ``which`` as an integer array on the device of ``like`` (cached)."""
        key = (which, str(_device(like)))
        if key not in self._cache:
            self._cache[key] = array_namespace(like).asarray(getattr(self, which), device=_device(like))
        return self._cache[key]

    def pack(self, u: Any, axis: int = 0) -> Any:
        """``u[..., n, n, ...]`` (component axes at ``axis``) → ``[..., s, ...]``."""
        xp = array_namespace(u)
        shp = tuple(u.shape)
        flat = xp.reshape(u, shp[:axis] + (self.n * self.n,) + shp[axis + 2:])
        return xp.take(flat, self._index("upper", u), axis=axis)

    def unpack(self, v: Any, axis: int = 0) -> Any:
        """Inverse of :meth:`pack`."""
        xp = array_namespace(v)
        full = xp.take(v, self._index("full", v), axis=axis)
        shp = tuple(full.shape)
        return xp.reshape(full, shp[:axis] + (self.n, self.n) + shp[axis + 1:])


def _derivatives_last(domain: Domain, g: Any) -> tuple[Any, Any]:
    """∂g and ∂²g of a field ``g[*comp, *grid]`` as ``[a, *comp, *grid]``, ``[a, b, *comp, *grid]``,
    through the domain's (grid-first) ``gradient`` / ``hessian`` (any domain, numpy)."""
    n = domain.n
    rest = g.ndim - n
    gf = np.moveaxis(np.asarray(g), tuple(range(rest, g.ndim)), tuple(range(n)))

    def back(d, k):
        return np.moveaxis(d, tuple(range(n)), tuple(range(d.ndim - n, d.ndim)))

    return back(domain.gradient(gf), 1), back(domain.hessian(gf), 2)


def _gradient_last(domain: Domain, f: Any) -> Any:
    """∂_a f of ``f[*comp, *grid]`` as ``[a, *comp, *grid]``."""
    if isinstance(domain, Torus):
        return domain.gradient(f, grid_last=True)
    n = domain.n
    rest = f.ndim - n
    ff = np.moveaxis(np.asarray(f), tuple(range(rest, f.ndim)), tuple(range(n)))
    d = domain.gradient(ff)
    return np.moveaxis(d, tuple(range(n)), tuple(range(d.ndim - n, d.ndim)))


def _rhs_core(domain: Domain, g: Any, dg: Any, d2g: Any, flow: str, background_christoffel: Any):
    r"""∂_t g from g, ∂g, ∂²g, all with the component indices first (``g[i, j, *batch, *grid]``).

    −2 Ric by :func:`~lnegeom.curvature.ricci_from_derivatives` (no Riemann tensor), plus for
    Ricci–DeTurck L_W g = W^k ∂_k g_ij + g_kj ∂_i W^k + g_ik ∂_j W^k with
    W^k = g^ij (Γ^k_ij − Γ̃^k_ij) and ∂W by the domain's derivative.  Returns
    ``(rhs, parts, W)``.
    """
    xp = array_namespace(g)
    parts = ricci_from_derivatives(g, dg, d2g, layout="batch-last")
    rhs = -2.0 * parts.ricci
    if flow == "ricci-deturck":
        gam = parts.christoffel
        if background_christoffel is not None:
            gam = gam - background_christoffel
        W = einsum_last("ij...,kij...->k...", parts.g_inv, gam)
        dW = _gradient_last(domain, W)  # [i, k, ...] = ∂_i W^k
        X = einsum_last("kj...,ik...->ij...", g, dW)
        rhs = rhs + einsum_last("k...,kij...->ij...", W, dg) + X + einsum_last("ij...->ji...", X)
    elif flow == "ricci":
        W = xp.zeros(tuple(g.shape[1:]), dtype=g.dtype, device=_device(g))
    else:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
    return rhs, parts, W


def _rhs_last(g: Any, domain: Domain, flow: str, background_christoffel: Any):
    """:func:`_rhs_core` for ``g[i, j, *batch, *grid]``: spectral (one forward FFT of the i ≤ j
    components) on a :class:`~lnegeom.domains.Torus`, the domain's derivatives otherwise."""
    g = 0.5 * (g + einsum_last("ij...->ji...", g))
    if isinstance(domain, Torus):
        pk = _Packing(domain.n)
        v = pk.pack(g)
        _, dv, d2v = domain.spectral_derivatives(domain.fft(v, grid_last=True))
        g, dg, d2g = pk.unpack(v), pk.unpack(dv, axis=1), pk.unpack(d2v, axis=2)  # contiguous copies
    else:
        dg, d2g = _derivatives_last(domain, g)
    return _rhs_core(domain, g, dg, d2g, flow, background_christoffel)


def flow_rhs(g: Any, domain: Domain, *, flow: str = "ricci-deturck", background_christoffel: Any = None,
             return_parts: bool = False):
    r"""∂_t g for Ricci(–DeTurck) flow on a grid, ``g[*grid, n, n]`` → ``[*grid, n, n]``.

    numpy or torch (a torch ``g`` needs a :class:`~lnegeom.domains.Torus`).
    ``background_christoffel`` is Γ^k_ij(g̃) as ``[*grid, k, i, j]`` (``None``:
    a constant background, Γ̃ = 0).  With ``return_parts`` also returns a
    :class:`~lnegeom.curvature.RicciParts` (g⁻¹, Γ, Ric, R, |Rm|² for n ≤ 3; grid
    axes first) and the DeTurck field W^k (``[*grid, n]``, zeros for plain Ricci flow).
    """
    xp = array_namespace(g)
    bg = None
    if background_christoffel is not None:
        bg = _to_last(xp.asarray(background_christoffel, dtype=g.dtype, device=_device(g)), 3)
    rhs, parts, W = _rhs_last(_to_last(g, 2), domain, flow, bg)
    rhs = _to_first(rhs, 2)
    if return_parts:
        parts = RicciParts(g=g, g_inv=_to_first(parts.g_inv, 2), christoffel=_to_first(parts.christoffel, 3),
                           ricci=_to_first(parts.ricci, 2), scalar=parts.scalar, rm_norm_sq=parts.rm_norm_sq)
        return rhs, parts, _to_first(W, 1)
    return rhs


def _grid_axes(x: Any, n: int) -> tuple[int, ...]:
    return tuple(range(x.ndim - n, x.ndim))


def _integrate_last(domain: Domain, f: Any) -> Any:
    """∫ f dx of ``f[*rest, *grid]`` → ``[*rest]``."""
    if isinstance(domain, Torus):
        xp = array_namespace(f)
        return domain.cell * xp.sum(f, axis=_grid_axes(f, domain.n))
    n = domain.n
    ff = np.moveaxis(to_numpy(f), _grid_axes(f, n), tuple(range(n)))
    return np.asarray(domain.integral(ff))


def _diagnostics_last(domain: Domain, g: Any, parts: RicciParts, W: Any, reference: Any) -> dict:
    """The diagnostics of :func:`flow_diagnostics` for ``g[i, j, *batch, *grid]`` with its
    :class:`~lnegeom.curvature.RicciParts` and W (components first); values ``[*batch]`` (numpy)."""
    xp = array_namespace(g)
    n = domain.n

    def ax(x):
        return _grid_axes(x, n)

    rm2 = parts.rm_norm_sq
    if rm2 is None:  # n ≥ 4: the Weyl part needs the full Riemann tensor
        if isinstance(domain, Torus):
            dg, d2g = domain.gradient(g, grid_last=True), domain.hessian(g, grid_last=True)
        else:
            dg, d2g = _derivatives_last(domain, g)
        curv = curvature_from_derivatives(_to_first(g, 2), _to_first(dg, 3), _to_first(d2g, 4), check=False)
        rm2 = curv.kretschmann
    _, det = inverse_last(g)
    w2 = einsum_last("k...,k...->...", einsum_last("l...,kl...->k...", W, g), W)
    if reference.ndim < g.ndim:  # a reference without the batch axes
        reference = xp.reshape(reference, (n, n) + (1,) * (g.ndim - reference.ndim) + tuple(reference.shape[2:]))
    diff = g - reference
    out = {
        "l2": xp.sqrt(_integrate_last(domain, xp.sum(diff * diff, axis=(0, 1)))),
        "max_rm": xp.sqrt(xp.clip(xp.max(rm2, axis=ax(rm2)), min=0.0)),
        "int_rm2": _integrate_last(domain, rm2 * xp.sqrt(det)),
        "min_scalar": xp.min(parts.scalar, axis=ax(parts.scalar)),
        "max_scalar": xp.max(parts.scalar, axis=ax(parts.scalar)),
        "min_eig": xp.min(xp.linalg.eigvalsh(_to_first(g, 2))[..., 0], axis=ax(det)),
        "max_w": xp.sqrt(xp.clip(xp.max(w2, axis=ax(w2)), min=0.0)),
        "mean_g": _to_first(_integrate_last(domain, g) / domain.volume, 2),
    }
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in ((k, to_numpy(v)) for k, v in out.items())}


def flow_diagnostics(g: Any, domain: Domain, *, reference: Any = None, flow: str = "ricci-deturck",
                     background_christoffel: Any = None) -> dict:
    r"""Diagnostics of one metric field ``g[*grid, n, n]`` (numpy or torch).

    Keys: ``l2`` = ‖g − reference‖_L² (Frobenius, dx; reference = δ when
    ``None``), ``max_rm`` = max |Rm|_g, ``int_rm2`` = ∫ |Rm|²_g dV_g,
    ``min_scalar`` / ``max_scalar`` (R), ``min_eig`` (smallest eigenvalue of g
    over the grid), ``max_w`` = max |W|_g (DeTurck field, 0 for Ricci flow),
    ``mean_g`` (grid mean of g, n×n).  |Rm|² comes from Ric and R for n ≤ 3
    (|Rm|² = R² in 2-D, 4|Ric|² − R² in 3-D) and from the Riemann tensor for n ≥ 4.
    """
    xp = array_namespace(g)
    n = g.shape[-1]
    ref = np.eye(n) if reference is None else to_numpy(reference)
    ref = _ref_last(xp.asarray(ref, dtype=g.dtype, device=_device(g)), n)
    bg = None
    if background_christoffel is not None:
        bg = _to_last(xp.asarray(background_christoffel, dtype=g.dtype, device=_device(g)), 3)
    gl = _to_last(g, 2)
    _, parts, W = _rhs_last(gl, domain, flow, bg)
    return _diagnostics_last(domain, parts.g, parts, W, ref)


def _ref_last(ref: Any, n: int) -> Any:
    """A reference metric (n×n, or a field ``[*grid, n, n]``) broadcastable against ``[n, n, ..., *grid]``."""
    xp = array_namespace(ref)
    if ref.ndim == 2:
        return xp.reshape(ref, (n, n) + (1,) * n)
    return _to_last(ref, 2)


# =========================================================================
# φ-functions
# =========================================================================
def phi_functions(z: Any, order: int = 2) -> tuple:
    r"""(e^z, φ1(z), …, φ_order(z)) for real z ≤ 0 (any shape; numpy or torch), accurate to rounding.

    φ_k(z) = Σ_j z^j/(j + k)!, i.e. φ1(z) = (e^z − 1)/z, φ2(z) = (e^z − 1 − z)/z²,
    φ3(z) = (e^z − 1 − z − z²/2)/z³.  For |z| < 1 the Taylor series (20 terms,
    remainder < 1/20!) is summed; for |z| ≥ 1, φ1 = expm1(z)/z and the recurrence
    φ_{k+1}(z) = (φ_k(z) − 1/k!)/z, which for z ≤ −1 loses no more than a few
    units of rounding per step — the cancellation of the closed forms near z = 0
    (Kassam & Trefethen 2005) never occurs.
    """
    if not is_torch_array(z):
        z = np.asarray(z, dtype=np.float64)
    xp = array_namespace(z)
    small = xp.abs(z) < 1.0
    zs = xp.where(small, z, xp.zeros_like(z))
    zb = xp.where(small, xp.ones_like(z), z)
    out = [xp.exp(z)]
    phi_big = xp.expm1(zb) / zb
    for k in range(1, order + 1):
        series = xp.zeros_like(z)
        for j in reversed(range(20)):
            series = series * zs + 1.0 / math.factorial(j + k)
        if k > 1:
            phi_big = (phi_big - 1.0 / math.factorial(k - 1)) / zb
        out.append(xp.where(small, series, phi_big))
    return tuple(out)


# =========================================================================
# the solver
# =========================================================================
def _first_bad(mask: np.ndarray) -> tuple:
    idx = int(np.argmax(np.reshape(mask, (-1,))))
    return tuple(int(i) for i in np.unravel_index(idx, mask.shape))


def _entry(name: str, idx: tuple) -> str:
    """'name[i0, i1, ...]' for an index into an array."""
    return f"{name}[{', '.join(str(int(i)) for i in idx)}]"


def _real_finite(a: Any, name: str, domain: Domain, batch: bool = False) -> np.ndarray:
    """``a`` as a float64 numpy array, refusing complex dtypes and non-finite entries.

    ``a`` is a metric field ``[*grid, n, n]`` (``[B, *grid, n, n]`` with ``batch``) or a
    constant n×n matrix; the error names the entry, the grid point (batch member) and the
    component (i, j), and what to do.
    """
    arr = to_numpy(a) if is_torch_array(a) else np.asarray(a)
    n = domain.n
    field = arr.ndim == n + 2 + int(batch)

    def where(idx: tuple) -> str:
        """Grid point / batch member and component of a full index into ``arr``."""
        comp = f"component (i, j) = ({int(idx[-2])}, {int(idx[-1])})" if arr.ndim >= 2 else "its entry"
        if not field:
            return comp + (" of the constant matrix" if arr.ndim == 2 else "")
        return f"{_describe(domain, idx[:-2], batch)}, {comp}"

    if np.iscomplexobj(arr):
        imag = arr.imag != 0
        if np.any(imag):
            idx = _first_bad(imag)
            detail = (f"{_entry(name, idx)} = {complex(arr[idx]):.6g} at {where(idx)}; pass {name}.real only if "
                      f"the imaginary parts are rounding noise, otherwise fix how {name} is computed")
        else:
            detail = f"all imaginary parts are zero: pass {name}.real"
        raise MetricError(
            f"{name} has a complex dtype ({arr.dtype}); a metric is real and is never cast silently ({detail})"
        )
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of real numbers, got dtype {arr.dtype}: {err}") from err
    fin = np.isfinite(arr)
    if not np.all(fin):
        idx = _first_bad(~fin)
        raise MetricError(
            f"{name} has a non-finite entry {_entry(name, idx)} = {arr[idx]} at {where(idx)}; every entry must "
            f"be finite: fix how {name} is computed{' there' if field else ''} (division by zero, overflow, log "
            "or sqrt of a non-positive number) or replace the value"
        )
    return arr


def _constant_or_field(a: Any, name: str, domain: Domain) -> np.ndarray:
    """``a`` (the background or the reference metric) as float64 numpy, refusing any shape but a
    constant n×n matrix or a field ``[*grid, n, n]``, and complex or non-finite entries."""
    n = domain.n
    shape = np.shape(a)
    if shape not in ((n, n), tuple(domain.shape) + (n, n)):
        raise ValueError(f"{name} must be a constant {n}×{n} matrix or a field of shape "
                         f"{tuple(domain.shape) + (n, n)} (grid axes first) for {domain!r}, got shape {shape}")
    return _real_finite(a, name, domain)


def _check_input(g0: Any, domain: Domain, batch: bool = False, name: str = "g0") -> Any:
    """Validate ``g0`` (``[*grid, n, n]``, or ``[B, *grid, n, n]`` with ``batch``); return it symmetrised,
    float64, in its own namespace (numpy, or torch on its device).  Errors call it ``name``."""
    torch_in = is_torch_array(g0)
    g_np = np.asarray(g0) if not torch_in else to_numpy(g0)
    n = domain.n
    single = tuple(domain.shape) + (n, n)
    if batch:
        if g_np.ndim != len(single) + 1 or tuple(g_np.shape[1:]) != single or g_np.shape[0] < 1:
            raise ValueError(
                f"with batch=True {name} must have shape (B,) + {single} (batch axis, then grid axes, then n×n) "
                f"for {domain!r}, got {g_np.shape}"
            )
    elif g_np.shape != single:
        raise ValueError(
            f"{name} must have shape {single} (grid axes first, then n×n) "
            f"for {domain!r}, got {g_np.shape}"
        )
    g_np = _real_finite(g_np, name, domain, batch)
    for b, gb in enumerate(g_np if batch else g_np[None]):
        where = (lambda idx: f"batch member {b}, {domain.describe_point(idx)}") if batch else domain.describe_point
        asym = np.abs(gb - np.swapaxes(gb, -1, -2))
        if asym.max() > 1e-12 * max(1.0, np.abs(gb).max()):
            idx = _first_bad(asym == asym.max())
            raise MetricError(
                f"{name} is not symmetric: |g_ij − g_ji| = {asym.max():.3e} at {where(idx[:n])}; "
                "symmetrise it, e.g. (g + g.swapaxes(-1, -2)) / 2"
            )
        lam = np.linalg.eigvalsh(gb)[..., 0]
        if not np.all(lam > 0):
            idx = _first_bad(lam == lam.min())
            raise MetricError(
                f"{name} is not positive definite at {where(idx)}: smallest eigenvalue "
                f"{lam.min():.6g} <= 0; a Riemannian metric needs all eigenvalues > 0"
            )
    if torch_in:
        import torch

        g = g0.to(torch.float64)
        return 0.5 * (g + g.transpose(-1, -2))
    return 0.5 * (g_np + np.swapaxes(g_np, -1, -2))


def _describe(domain: Domain, index: Sequence[int], batch: bool) -> str:
    """'[batch member b, ]grid point (...), x = [...]' for an index ``[b, *grid]`` or ``[*grid]``."""
    index = tuple(int(i) for i in index)
    if batch:
        return f"batch member {index[0]}, {domain.describe_point(index[1:])}"
    return domain.describe_point(index)


def _first_bad_xp(mask: Any) -> tuple:
    """Index of the first True entry of a boolean array (numpy or torch)."""
    xp = array_namespace(mask)
    flat = xp.reshape(xp.astype(mask, xp.int8), (-1,))
    return tuple(int(i) for i in np.unravel_index(int(xp.argmax(flat)), tuple(mask.shape)))


def _problem_last(v: Any, domain: Domain, pk: _Packing, batch: bool) -> Optional[str]:
    """None if the packed field ``v[s, *batch, *grid]`` is finite and positive definite everywhere,
    else what is wrong and where."""
    xp = array_namespace(v)
    fin = xp.isfinite(v)
    if not bool(xp.all(fin)):
        idx = _first_bad_xp(~fin)
        i, j = pk.pairs[idx[0]]
        return f"non-finite value g_{i}{j} = {float(v[idx])} at {_describe(domain, idx[1:], batch)}"
    g = pk.unpack(v)
    n = pk.n
    if n <= 3:  # Sylvester: all leading principal minors > 0
        ok = g[0, 0] > 0
        if n >= 2:
            ok = ok & (g[0, 0] * g[1, 1] - g[0, 1] * g[1, 0] > 0)
        if n == 3:
            ok = ok & (inverse_last(g)[1] > 0)
        if bool(xp.all(ok)):
            return None
    lam = xp.linalg.eigvalsh(_to_first(g, 2))[..., 0]
    if bool(xp.all(lam > 0)):
        return None
    idx = _first_bad_xp(lam == xp.min(lam))
    return (f"the metric stopped being positive definite at {_describe(domain, idx, batch)} "
            f"(smallest eigenvalue {float(xp.min(lam)):.6g})")


def _state_problem(g: np.ndarray, domain: Domain) -> Optional[str]:
    """None if ``g[*grid, n, n]`` is finite and positive definite everywhere, else what is wrong and where."""
    pk = _Packing(domain.n)
    return _problem_last(pk.pack(_to_last(0.5 * (g + np.swapaxes(g, -1, -2)), 2)), domain, pk, False)


def solve_flow(
    g0: Any,
    t_span: Sequence[float],
    *,
    flow: str = "ricci-deturck",
    background: Any = None,
    domain: Domain,
    t_eval: Any = None,
    rtol: float = 1e-6,
    atol: float = 1e-10,
    method: str = "auto",
    first_step: Optional[float] = None,
    max_step: float = math.inf,
    fixed_step: Optional[float] = None,
    reference: Any = None,
    dealias: bool = False,
    check_resolution: bool = True,
    diagnostics: bool = True,
    checkpoint: Any = None,
    max_steps: int = 1_000_000,
    batch: bool = False,
) -> FlowResult:
    r"""Integrate Ricci–DeTurck (or Ricci) flow of a metric field on a grid domain.

    Parameters
    ----------
    g0:
        Initial metric ``[*grid, n, n]`` (grid axes first), symmetric positive
        definite at every grid point: a numpy array, or a torch tensor (any
        device; computed in float64), which runs the ETD stepper in torch and
        returns ``g`` / ``g_last`` as tensors on that device.  With ``batch``,
        ``[B, *grid, n, n]``.
    t_span:
        ``(t0, t1)`` with t1 > t0.
    flow:
        ``"ricci-deturck"`` (default) or ``"ricci"``.
    background:
        The DeTurck background g̃: ``None`` (δ), a constant n×n SPD matrix
        (Γ̃ = 0), or a field ``[*grid, n, n]``.
    domain:
        A :class:`~lnegeom.domains.Domain`, e.g. ``Torus(2, 32, 2 * np.pi)``,
        or ``Box(2, 16, 1.0)``: on a box (``holds_boundary``) only the
        interior points evolve and the boundary keeps the values of ``g0``;
        there ``flow="ricci"`` is refused (not parabolic) and a scipy
        method is needed.
    t_eval:
        Times at which to save g (sorted, within ``t_span``); ``None``: every
        accepted step.  The ETD stepper lands on each of them exactly.
    rtol, atol:
        Tolerances of the local error estimate, as in
        :func:`scipy.integrate.solve_ivp`.
    method:
        ``"etd"`` = ``"etd4"`` (exponential ETDRK4 with an embedded third-order
        estimate, see the module docstring), ``"etd2"`` (ETDRK2 with embedded
        ETD1) — both on a :class:`~lnegeom.domains.Torus` — or a
        :func:`scipy.integrate.solve_ivp` method name (numpy, no batch).
        ``"auto"`` (default): ``"etd"`` on a Torus, ``"BDF"`` (sparse
        Jacobian, see :func:`_run_scipy`) on a :class:`~lnegeom.box.Box`.
    first_step, max_step:
        Initial and largest step (``etd*`` and scipy).
    fixed_step:
        ``etd*`` only: take steps of exactly this size (no error control; the
        last step before each save time is shortened), for convergence studies.
    reference:
        Metric (n×n or field) against which the ``l2`` diagnostic is measured;
        default: the background (δ when ``background`` is None).
    dealias:
        Apply the 2/3 rule to the right-hand side (``etd`` and scipy); on the
        torus the ``etd*`` steppers also apply it to ``g0``.  Without it they
        still remove the Nyquist modes of even axes from ``g0`` and from the
        right-hand side: those modes have no first derivative on the grid, so
        nothing damps them (:meth:`~lnegeom.domains.Torus.nyquist_free_symbol`).
    check_resolution:
        Refuse a ``g0`` with content the grid cannot resolve
        (:meth:`~lnegeom.domains.Torus.check_resolution`).
    diagnostics:
        Compute the diagnostics at each saved time.
    checkpoint:
        A path, used as given: after every saved time the last state is written
        there atomically and the saved metric appended to ``path + ".history"``
        (:mod:`lnegeom.checkpoint`; read both with
        :func:`~lnegeom.checkpoint.load_checkpoint`).  Resume by calling again with
        ``g0 = data["g_last"]``, ``t_span = (data["t_last"], t1)`` and the same
        path: the history is then extended (any other call starts it afresh).
    max_steps:
        Safety limit on the number of steps.
    batch:
        ``g0[B, *grid, n, n]`` holds B independent initial metrics, flowed in one
        run (``etd*`` only) with one shared step size: the error norm of a step is
        the largest over the batch, and the frozen operator A is each member's
        own.  ``g`` is then ``[T, B, *grid, n, n]``, ``g_last`` ``[B, *grid, n, n]``
        and each diagnostic ``[T, B]`` (``mean_g`` ``[T, B, n, n]``); a failure of
        any member stops the run, its message naming the member.

    Returns
    -------
    FlowResult
        ``t``, ``g``, ``diagnostics``, ``status`` (0 ok, −1 failure),
        ``message`` (naming time and grid point on failure), ``nfev``,
        ``nsteps``; on failure everything saved so far is kept and
        ``g_last`` holds the last good state.
    """
    start = time.perf_counter()
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
    if method == "auto":
        method = "etd" if isinstance(domain, Torus) else "BDF"
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {('auto',) + METHODS}")
    if flow == "ricci" and getattr(domain, "holds_boundary", False):
        raise ValueError(
            f"flow='ricci' on {domain!r}: pure Ricci flow is only weakly parabolic (its symbol vanishes on the "
            "gauge directions L_X g), so with the boundary held it is not well posed; use flow='ricci-deturck'")
    if dealias and not hasattr(domain, "filter"):
        raise ValueError(f"dealias=True needs a spectral domain (Torus) with a filter; {domain!r} has none")
    t_span = tuple(float(v) for v in t_span)
    if len(t_span) != 2 or not all(math.isfinite(v) for v in t_span) or not t_span[1] > t_span[0]:
        raise ValueError(f"t_span must be (t0, t1) with finite t1 > t0, got {t_span}")
    t0, t1 = t_span
    g = _check_input(g0, domain, batch)
    n = domain.n
    if check_resolution and hasattr(domain, "check_resolution"):
        for b, gb in enumerate(to_numpy(g) if batch else to_numpy(g)[None]):
            domain.check_resolution(gb, name=f"initial metric g0[{b}]" if batch else "initial metric g0")
    bg_gamma = None
    if background is not None:
        bg = _constant_or_field(background, "background", domain)
        if bg.shape == (n, n):
            _check_input(np.broadcast_to(bg, tuple(domain.shape) + (n, n)), domain, name="background")
        else:
            _check_input(bg, domain, name="background")
        bg_gamma = background_christoffel(bg, domain)
    if reference is None:
        reference = np.eye(n) if background is None else bg
    else:
        reference = _constant_or_field(reference, "reference", domain)
    if t_eval is not None:
        t_eval = np.asarray(t_eval, dtype=np.float64).ravel()
        if t_eval.size == 0 or not np.all(np.isfinite(t_eval)):
            raise ValueError(f"t_eval must hold at least one finite time, got t_eval={t_eval}; "
                             "pass None to save every accepted step")
        if np.any(np.diff(t_eval) <= 0) or t_eval[0] < t0 or t_eval[-1] > t1:
            raise ValueError(f"t_eval must be strictly increasing within t_span = {t_span}")
    _check_step_options(rtol=rtol, atol=atol, first_step=first_step, max_step=max_step, fixed_step=fixed_step,
                        max_steps=max_steps)
    if fixed_step is not None and method not in _ETD_METHODS:
        raise ValueError(f"fixed_step is only available with method in {_ETD_METHODS}, got method={method!r}")
    if method in _ETD_METHODS and not isinstance(domain, Torus):
        raise ValueError(f"method={method!r} needs a periodic Torus domain (its principal part is diagonal in "
                         f"Fourier space); for {domain!r} use a scipy method such as 'BDF'")
    if method not in _ETD_METHODS and (batch or is_torch_array(g)):
        raise ValueError(f"method={method!r} runs on numpy arrays without a batch; use method='etd' for "
                         "torch tensors and batched runs")

    counter = {"nfev": 0}

    def rhs(u: np.ndarray, t: float) -> np.ndarray:
        counter["nfev"] += 1
        out = flow_rhs(u, domain, flow=flow, background_christoffel=bg_gamma)
        if dealias:
            out = domain.filter(out)
        fin = np.isfinite(out)
        if not np.all(fin):
            idx = _first_bad(~fin)
            raise _NonFinite(idx, float(out[idx]),
                             f"non-finite right-hand side ∂_t g_{idx[n]}{idx[n + 1]} = {out[idx]} at "
                             f"{domain.describe_point(idx[:n])}")
        return out

    saved_t: list[float] = []
    saved_g: list[Any] = []
    diags: list[dict] = []
    xp = array_namespace(g)

    ck = None
    if checkpoint is not None:
        ck = FlowCheckpoint(checkpoint, flow=flow, method="etd4" if method == "etd" else method,
                            resume_from=(t0, to_numpy(g)))

    def save(t: float, u: Any, diag: Optional[dict] = None) -> None:
        saved_t.append(float(t))
        saved_g.append(xp.asarray(u, copy=True))
        if diagnostics:
            diags.append(diag if diag is not None else
                         flow_diagnostics(u, domain, reference=reference, flow=flow, background_christoffel=bg_gamma))
        if ck is not None and not (ck.resumed and len(saved_t) == 1 and t == t0):  # t0 is its last record
            ck.append(t, to_numpy(u))

    save_first = t_eval is None or t_eval[0] == t0
    targets = list(t_eval[t_eval > t0]) if t_eval is not None else [t1]

    state = {"t": t0, "g": g, "status": 0, "message": "", "nsteps": 0, "nrejected": 0}
    try:
        if method in _ETD_METHODS:
            method = "etd4" if method == "etd" else method
            bg_last = None if bg_gamma is None else _to_last(xp.asarray(bg_gamma, device=_device(g)), 3)
            sf = _SpectralFlow(domain, flow, bg_last, dealias, batch, counter, g)
            ref = _ref_last(xp.asarray(reference, dtype=g.dtype, device=_device(g)), n)
            _run_etd(sf, state, targets, t_eval is not None, save_first, save, rtol, atol,
                     first_step, max_step, fixed_step, max_steps, t1, method, ref, diagnostics)
        else:
            if save_first:
                save(t0, g)
            _run_scipy(rhs, domain, state, targets, t_eval is not None, save, rtol, atol,
                       first_step, max_step, method, max_steps, t1)
    except _NonFinite as e:
        state["status"] = -1
        state["message"] = (f"flow stopped: {e.where} during the step from t = {state['t']:.6g} "
                            f"(t = {state.get('t_try', state['t']):.6g} attempted); returning the results up to "
                            f"t = {state['t']:.6g}")
    if state["status"] == 0 and not state["message"]:
        state["message"] = f"reached t = {state['t']:.6g}"
    dkeys = diags[0].keys() if diags else []
    return FlowResult(
        t=np.array(saved_t), g=xp.stack(saved_g) if saved_g else xp.zeros((0,) + tuple(g.shape), dtype=g.dtype),
        diagnostics={k: np.array([d[k] for d in diags]) for k in dkeys},
        status=state["status"], message=state["message"], nfev=counter["nfev"], nsteps=state["nsteps"],
        nrejected=state["nrejected"], t_last=state["t"], g_last=state["g"], method=method, flow=flow,
        seconds=time.perf_counter() - start,
    )


class _BadState(RuntimeError):
    """A stage value that is not finite or not positive definite (the step is retried smaller)."""


@dataclass
class _Stage:
    """A state of the spectral stepper: spectrum ``V`` and values ``v`` of the packed components
    (``[s, *batch, *grid]``), and once evaluated the spectrum ``Fh`` of ∂_t g with its parts."""

    V: Any
    v: Any
    Fh: Any = None
    parts: Optional[RicciParts] = None
    W: Any = None


class _SpectralFlow:
    """Ricci(–DeTurck) flow on a :class:`~lnegeom.domains.Torus` in the stepper's variables: the
    n(n+1)/2 components g_ij, i ≤ j, with any batch axes, then the grid axes (numpy or torch)."""

    def __init__(self, domain: Torus, flow: str, background_christoffel: Any, dealias: bool, batch: bool,
                 counter: dict, like: Any) -> None:
        xp = array_namespace(like)
        self.domain, self.flow, self.batch, self.counter = domain, flow, batch, counter
        self.bg = background_christoffel
        self.pk = _Packing(domain.n)
        mask = domain.filter_symbol() if dealias else domain.nyquist_free_symbol()
        self.mask = None if mask is None else xp.asarray(mask, dtype=like.dtype, device=_device(like))
        self.weights = xp.asarray(self.pk.weights, dtype=like.dtype, device=_device(like))

    def fft(self, v: Any) -> Any:
        return self.domain.fft(v, grid_last=True)

    def ifft(self, V: Any) -> Any:
        return self.domain.ifft(V, grid_last=True)

    def stage(self, V: Any, evaluate: bool = True) -> _Stage:
        """The state with spectrum ``V``: its values, checked (:class:`_BadState`), and with
        ``evaluate`` the right-hand side (:class:`_NonFinite` naming the point if not finite)."""
        if not evaluate:
            st = _Stage(V=V, v=self.ifft(V))
            problem = _problem_last(st.v, self.domain, self.pk, self.batch)
            if problem is not None:
                raise _BadState(problem)
            return st
        v, dv, d2v = self.domain.spectral_derivatives(V, grid_last=True)
        st = _Stage(V=V, v=v)
        problem = _problem_last(v, self.domain, self.pk, self.batch)
        if problem is not None:
            raise _BadState(problem)
        return self.evaluate(st, dv, d2v)

    def evaluate(self, st: _Stage, dv: Any = None, d2v: Any = None) -> _Stage:
        """Fill in ``st.Fh``, ``st.parts``, ``st.W`` (no-op if done)."""
        if st.Fh is not None:
            return st
        if dv is None:
            _, dv, d2v = self.domain.spectral_derivatives(st.V, grid_last=True)
        pk = self.pk
        xp = array_namespace(st.v)
        self.counter["nfev"] += 1
        rhs, st.parts, st.W = _rhs_core(self.domain, pk.unpack(st.v), pk.unpack(dv, axis=1),
                                        pk.unpack(d2v, axis=2), self.flow, self.bg)
        F = pk.pack(rhs)
        fin = xp.isfinite(F)
        if not bool(xp.all(fin)):
            idx = _first_bad_xp(~fin)
            i, j = pk.pairs[idx[0]]
            raise _NonFinite(idx, float(F[idx]), f"non-finite right-hand side ∂_t g_{i}{j} = {float(F[idx])} at "
                                                 f"{_describe(self.domain, idx[1:], self.batch)}")
        st.Fh = self.fft(F)
        if self.mask is not None:
            st.Fh = st.Fh * self.mask
        return st

    def symbol(self, st: _Stage) -> Any:
        """λ(k) = −kᵀ A k with A = the grid mean of g⁻¹ at ``st`` (one A per batch member)."""
        A = _to_first(_integrate_last(self.domain, st.parts.g_inv) / self.domain.volume, 2)
        return self.domain.symbol(0.5 * (A + array_namespace(A).matrix_transpose(A)))

    def err_norm(self, err: Any, v: Any, v_new: Any, rtol: float, atol: float) -> float:
        """RMS of err / (atol + rtol·max(|v|, |v_new|)) over all n² entries and the grid, max over the batch."""
        xp = array_namespace(err)
        q = (err / (atol + rtol * xp.maximum(xp.abs(v), xp.abs(v_new)))) ** 2
        q = xp.sum(q, axis=_grid_axes(q, self.domain.n))  # [s, *batch]
        w = xp.reshape(self.weights, (-1,) + (1,) * (q.ndim - 1))
        ms = xp.sum(w * q, axis=0) / math.prod(self.domain.shape)
        return float(xp.sqrt(xp.max(ms)))

    def metric(self, st: _Stage) -> Any:
        """The metric field of ``st`` with the grid axes first (``[*batch, *grid, n, n]``)."""
        return _to_first(self.pk.unpack(st.v), 2)


def _etd_coefficients(lam: Any, h: float, scheme: str) -> tuple:
    """The Fourier multipliers of one step of size h (z = hλ)."""
    z = h * lam
    if scheme == "etd2":
        E, p1, p2 = phi_functions(z, 2)
        return E, h * p1, h * p2
    E, p1, p2, p3 = phi_functions(z, 3)
    E2, q1 = phi_functions(0.5 * z, 1)
    return (E, E2, 0.5 * h * q1,
            h * (p1 - 3.0 * p2 + 4.0 * p3), 2.0 * h * (p2 - 2.0 * p3), h * (4.0 * p3 - p2))


def _etd2_step(sf: _SpectralFlow, u: _Stage, lam: Any, c: tuple) -> tuple[_Stage, Any]:
    """ETDRK2 (Cox–Matthews) with the embedded exponential Euler; returns (new state, error spectrum)."""
    E, P1, P2 = c
    Nu = u.Fh - lam * u.V
    A = E * u.V + P1 * Nu
    a = sf.stage(A)
    corr = P2 * ((a.Fh - lam * A) - Nu)
    return sf.stage(A + corr, evaluate=False), corr


def _etd4_step(sf: _SpectralFlow, u: _Stage, lam: Any, c: tuple) -> tuple[_Stage, Any]:
    """ETDRK4 (Cox–Matthews) with the FSAL-embedded third-order method; returns (new state, error spectrum)."""
    E, E2, Q, F1, F2, F3 = c
    U = u.V
    Nu = u.Fh - lam * U
    A = E2 * U + Q * Nu
    Na = sf.stage(A).Fh - lam * A
    B = E2 * U + Q * Na
    Nb = sf.stage(B).Fh - lam * B
    C = E2 * A + Q * (2.0 * Nb - Nu)
    Nc = sf.stage(C).Fh - lam * C
    Y = E * U + F1 * Nu + F2 * (Na + Nb) + F3 * Nc
    y = sf.stage(Y)
    return y, F3 * (Nc - (y.Fh - lam * Y))


_ETD_SCHEMES = {"etd2": (_etd2_step, 2), "etd4": (_etd4_step, 4)}  # step, order of the error estimate


def _check_step_options(*, rtol: Any, atol: Any, first_step: Any, max_step: Any, fixed_step: Any,
                        max_steps: Any) -> None:
    """Refuse step-control options no integrator can honour (rtol = 0 would never accept a step,
    a negative step would integrate backwards); each message names the value."""
    def positive(name: str, value: Any, finite: bool = True) -> None:
        ok = (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
              and value > 0 and (math.isfinite(value) or not finite) and not math.isnan(value))
        if not ok:
            raise ValueError(f"{name} must be a {'finite ' if finite else ''}number > 0, got {name}={value!r}")

    positive("rtol", rtol)
    positive("atol", atol)
    positive("max_step", max_step, finite=False)
    for name, value in (("first_step", first_step), ("fixed_step", fixed_step)):
        if value is not None:
            positive(name, value)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got max_steps={max_steps!r}")


#: step control of the ETD steppers (module docstring): the next step is SAFETY · err^{−1/p} times the
#: last, clipped to [MIN_FACTOR, MAX_FACTOR]; a step whose state is not a metric is retried at
#: BAD_STATE_FACTOR times; below MIN_RELATIVE_STEP · max(1, |t|) the stepper gives up
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 5.0
BAD_STATE_FACTOR = 0.25
MIN_RELATIVE_STEP = 1e-14


def _step_factor(err: float, order: int) -> float:
    """The next step over the last one for the error norm ``err`` of a method of ``order``."""
    if err == 0:
        return MAX_FACTOR
    if not math.isfinite(err):
        return MIN_FACTOR
    return min(MAX_FACTOR, max(MIN_FACTOR, SAFETY * err ** (-1.0 / order)))


def _run_etd(sf: _SpectralFlow, state: dict, targets, save_at_targets: bool, save_first: bool, save, rtol, atol,
             first_step, max_step, fixed_step, max_steps, t1, scheme: str, reference: Any,
             diagnostics: bool) -> None:
    step, est_order = _ETD_SCHEMES[scheme]
    t = state["t"]
    U0 = sf.fft(sf.pk.pack(_to_last(state["g"], 2)))
    u = sf.stage(U0 if sf.mask is None else U0 * sf.mask)

    def record(t: float, st: _Stage) -> None:
        diag = None
        if diagnostics:
            sf.evaluate(st)
            diag = _diagnostics_last(sf.domain, sf.pk.unpack(st.v), st.parts, st.W, reference)
        save(t, sf.metric(st), diag)

    try:
        if save_first:
            record(t, u)
        h = fixed_step if fixed_step is not None else (first_step or min(1e-3 * (t1 - t), max_step))
        lam_of, lam, coefs, coefs_h = None, None, None, None
        target_i = 0
        while target_i < len(targets):
            if state["nsteps"] + state["nrejected"] >= max_steps:
                state["status"] = -1
                state["message"] = f"max_steps = {max_steps} reached at t = {t:.6g}"
                return
            target = targets[target_i]
            h_try = min(h, max_step, target - t)
            last = h_try >= target - t - 1e-12 * max(1.0, abs(target))
            if last:
                h_try = target - t
            state["t_try"] = t + h_try
            sf.evaluate(u)
            if lam_of is not u:  # freeze the principal part at the current state
                lam, lam_of, coefs = sf.symbol(u), u, None
            if coefs is None or coefs_h != h_try:
                coefs, coefs_h = _etd_coefficients(lam, h_try, scheme), h_try
            try:
                y, err_hat = step(sf, u, lam, coefs)
            except _BadState as e:
                if fixed_step is not None or h_try < MIN_RELATIVE_STEP * max(1.0, abs(t)):
                    state["status"] = -1
                    state["message"] = (f"flow stopped at t = {t:.6g} (step to t = {t + h_try:.6g}): {e}; "
                                        f"returning the results up to t = {t:.6g}")
                    return
                state["nrejected"] += 1
                h = BAD_STATE_FACTOR * h_try
                continue
            if fixed_step is None:
                err = sf.err_norm(sf.ifft(err_hat), u.v, y.v, rtol, atol)
                if not err <= 1.0:
                    state["nrejected"] += 1
                    h = h_try * _step_factor(err, est_order)
                    continue
                factor = _step_factor(err, est_order)
                h = h_try * factor if not last else max(h, h_try * factor)  # a shortened last step keeps h
            t = target if last else t + h_try
            u = y
            state["t"] = t
            state["nsteps"] += 1
            if last:
                target_i += 1
                if save_at_targets:
                    record(t, u)
            elif not save_at_targets:
                record(t, u)
    finally:
        state["g"] = sf.metric(u)


def _run_scipy(rhs, domain, state, targets, save_at_targets, save, rtol, atol, first_step, max_step,
               method, max_steps, t1) -> None:
    """Step a :mod:`scipy.integrate` solver class over the flattened state.

    On a domain with ``pack``/``unpack`` (a :class:`~lnegeom.box.Box`, boundary held) the state is
    the packed interior unknowns, the boundary values stay those of the initial metric, and the
    implicit methods get the domain's Jacobian pattern (``jac_sparsity``): BDF and Radau a sparse
    forward-difference Jacobian on it (:func:`lnegeom.box.sparse_fd_jacobian`, one evaluation per
    column group, steps 1.5e-8·max(1, |y|): scipy's own ``num_jac`` scales its steps by ``atol``
    for components that are 0, e.g. g₁₂ of a diagonal metric, and returns a wrong Jacobian with a
    small ``atol``), LSODA the band ``lband``/``uband`` of that pattern.
    """
    import scipy.integrate as si

    g_start = state["g"]
    shape = g_start.shape
    solver_cls = getattr(si, method)
    kw = dict(rtol=rtol, atol=atol, max_step=max_step)
    if first_step is not None:
        kw["first_step"] = first_step
    if hasattr(domain, "pack"):
        y0 = domain.pack(g_start)

        def to_field(y):
            return domain.unpack(y, g_start)

        def fun(t, y):
            return domain.pack(rhs(to_field(y), t))

        if method in ("BDF", "Radau"):
            from .box import column_groups, sparse_fd_jacobian

            pattern = domain.jac_sparsity()
            groups = column_groups(pattern)
            kw["jac"] = lambda t, y: sparse_fd_jacobian(lambda v: fun(t, v), y, pattern, groups)
        elif method == "LSODA":
            pattern = domain.jac_sparsity().tocoo()
            kw["lband"] = int(np.max(pattern.row - pattern.col))
            kw["uband"] = int(np.max(pattern.col - pattern.row))
    else:
        y0 = g_start.reshape(-1)

        def to_field(y):
            return y.reshape(shape)

        def fun(t, y):
            return rhs(to_field(y), t).reshape(-1)

    solver = solver_cls(fun, state["t"], y0, t1, **kw)
    target_i = 0
    while solver.status == "running":
        if state["nsteps"] >= max_steps:
            state["status"], state["message"] = -1, f"max_steps = {max_steps} reached at t = {state['t']:.6g}"
            return
        t_old = solver.t
        msg = solver.step()
        if solver.status == "failed":
            state["status"] = -1
            state["message"] = f"{method} failed at t = {solver.t:.6g}: {msg}"
            return
        u = to_field(solver.y)
        problem = _state_problem(u, domain)
        if problem is not None:
            state["status"] = -1
            state["message"] = (f"flow stopped at t = {solver.t:.6g} (step from t = {t_old:.6g}): {problem}; "
                                f"returning the results up to t = {t_old:.6g}")
            return
        state["nsteps"] += 1
        if save_at_targets:
            dense = None
            while target_i < len(targets) and targets[target_i] <= solver.t:
                if dense is None:
                    dense = solver.dense_output()
                save(targets[target_i], to_field(dense(targets[target_i])))
                target_i += 1
        else:
            save(solver.t, u)
        state["t"], state["g"], state["t_try"] = solver.t, u, solver.t
