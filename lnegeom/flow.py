r"""Ricci and Ricci–DeTurck flow of metric fields on grids (MATH.md §3).

:func:`solve_flow` integrates

* Ricci–DeTurck flow (P-9), ``flow="ricci-deturck"``:
  ∂_t g_ij = −2 Ric_ij(g) + (L_W g)_ij,  W^k = g^ij (Γ^k_ij(g) − Γ^k_ij(g̃)),
  with a fixed background metric g̃ (default δ);
* plain Ricci flow (P-6), ``flow="ricci"``: ∂_t g = −2 Ric(g).

The curvature is computed by the one numeric algebra
:func:`lnegeom.curvature.curvature_from_derivatives`, fed with the domain's
derivatives (spectral on :class:`~lnegeom.domains.Torus`), the grid points
being the batch.

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
mode e^{ik·x} of a small perturbation decays like e^{−kᵀ g∞⁻¹ k t}.  Plain ``"ricci"`` flow is accepted on the torus (it is well
posed there through DeTurck's trick), but its pure-gauge modes do not decay
and its time stepping has no parabolic smoothing in those directions.

Time stepping
-------------
``method="etd"`` (default): the right-hand side is split as
F(g) = 𝓛 g + N(g) with the constant-coefficient operator
𝓛 = A^ab ∂_a ∂_b, A = the grid mean of g^ab at the start of each step
(the principal part frozen at the mean metric), diagonal in Fourier space
with symbol λ(k) = −kᵀ A k, and N(g) = F(g) − 𝓛 g.  One step of size h of
the exponential Runge–Kutta scheme ETDRK2 (Cox & Matthews 2002):

    a       = e^{hλ} u_n + h φ1(hλ) N(u_n)                (ETD1, exponential Euler)
    u_{n+1} = a + h φ2(hλ) (N(a) − N(u_n))                (ETDRK2, order 2)

with φ1(z) = (e^z − 1)/z, φ2(z) = (e^z − 1 − z)/z².  The difference of the
two, h φ2(hλ)(N(a) − N(u_n)), is the local error estimate of the embedded
first-order ETD1 (local error O(h²)); the step is accepted when its RMS
norm, scaled by ``atol + rtol·|u|`` componentwise (as in
:func:`scipy.integrate.solve_ivp`), is ≤ 1, and the next step is
h·0.9·err^{−1/2} (clipped to [0.2 h, 5 h]).  The solution is advanced with
the second-order value (local extrapolation).  Since λ ≤ 0 is real, the
φ-functions are evaluated from their Taylor series for |z| < 0.1 (12
terms) and from ``expm1`` otherwise — no cancellation and no contour
integral needed.  The stiff linear part is integrated exactly, so the step
size is set by the (small) nonlinear remainder only.

``method`` = ``"RK45"``, ``"RK23"``, ``"DOP853"``, ``"Radau"``, ``"BDF"``,
``"LSODA"``: the flattened state is handed to the corresponding
:mod:`scipy.integrate` solver class (the ones behind ``solve_ivp``), stepped
here so that failures return the partial result.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ._array import array_namespace
from .curvature import MetricError, curvature_from_derivatives
from .domains import Domain

__all__ = ["FlowResult", "solve_flow", "flow_rhs", "flow_diagnostics", "phi_functions", "FLOWS", "METHODS"]

FLOWS = ("ricci-deturck", "ricci")
_SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
METHODS = ("etd",) + _SCIPY_METHODS


@dataclass
class FlowResult:
    """Result of :func:`solve_flow`, shaped like scipy's ``OdeResult``.

    Attributes
    ----------
    t:
        Saved times, shape ``[T]``.
    g:
        Saved metric fields, shape ``[T, *grid, n, n]``.
    diagnostics:
        Dict of arrays of length T (see :func:`flow_diagnostics`).
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
    extra: dict = field(default_factory=dict)

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
def _background_christoffel(background: Any, domain: Domain) -> Optional[np.ndarray]:
    """Γ^k_ij(g̃) on the grid, or ``None`` for a constant background (Γ̃ = 0)."""
    if background is None:
        return None
    bg = np.asarray(background, dtype=np.float64)
    if bg.ndim == 2:
        return None
    dg = domain.gradient(bg)
    d2g = domain.hessian(bg)
    return curvature_from_derivatives(bg, dg, d2g, check=False).christoffel


def flow_rhs(g: Any, domain: Domain, *, flow: str = "ricci-deturck", background_christoffel: Any = None,
             return_parts: bool = False):
    r"""∂_t g for Ricci(–DeTurck) flow on a grid, ``g[*grid, n, n]`` → ``[*grid, n, n]``.

    ``background_christoffel`` is Γ^k_ij(g̃) as ``[*grid, k, i, j]`` (``None``:
    a constant background, Γ̃ = 0).  With ``return_parts`` also returns the
    :class:`~lnegeom.curvature.Curvature` and the DeTurck field W^k
    (``[*grid, n]``, zeros for plain Ricci flow).
    """
    xp = array_namespace(g)
    dg = domain.gradient(g)
    d2g = domain.hessian(g)
    curv = curvature_from_derivatives(g, dg, d2g, check=False)
    rhs = -2.0 * curv.ricci
    if flow == "ricci-deturck":
        gam = curv.christoffel
        if background_christoffel is not None:
            gam = gam - background_christoffel
        W = xp.einsum("...ij,...kij->...k", curv.g_inv, gam)
        dW = domain.gradient(W)  # [..., i, k] = ∂_i W^k
        rhs = (rhs + xp.einsum("...k,...kij->...ij", W, dg)
               + xp.einsum("...kj,...ik->...ij", g, dW) + xp.einsum("...ik,...jk->...ij", g, dW))
    elif flow == "ricci":
        W = xp.zeros(g.shape[:-1], dtype=g.dtype)
    else:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
    rhs = 0.5 * (rhs + xp.matrix_transpose(rhs))
    if return_parts:
        return rhs, curv, W
    return rhs


def _rm_norm_sq(curv) -> Any:
    """|Rm|²_g = R_mijk R^mijk at every point (index raising one at a time)."""
    xp = array_namespace(curv.g)
    low = curv.riemann_lowered
    gi = curv.g_inv
    up = xp.einsum("...ae,...ebcd->...abcd", gi, low)
    up = xp.einsum("...bf,...afcd->...abcd", gi, up)
    up = xp.einsum("...cf,...abfd->...abcd", gi, up)
    up = xp.einsum("...df,...abcf->...abcd", gi, up)
    return xp.sum(xp.reshape(low * up, (*low.shape[:-4], -1)), axis=-1)


def flow_diagnostics(g: np.ndarray, domain: Domain, *, reference: Any = None, flow: str = "ricci-deturck",
                     background_christoffel: Any = None) -> dict:
    r"""Diagnostics of one metric field ``g[*grid, n, n]``.

    Keys: ``l2`` = ‖g − reference‖_L² (Frobenius, dx; reference = δ when
    ``None``), ``max_rm`` = max |Rm|_g, ``int_rm2`` = ∫ |Rm|²_g dV_g,
    ``min_scalar`` / ``max_scalar`` (R), ``min_eig`` (smallest eigenvalue of g
    over the grid), ``max_w`` = max |W|_g (DeTurck field, 0 for Ricci flow),
    ``mean_g`` (grid mean of g, n×n).
    """
    n = g.shape[-1]
    ref = np.eye(n) if reference is None else np.asarray(reference)
    _, curv, W = flow_rhs(g, domain, flow=flow, background_christoffel=background_christoffel, return_parts=True)
    rm2 = _rm_norm_sq(curv)
    w2 = np.einsum("...k,...kl,...l->...", W, g, W)
    return {
        "l2": domain.l2_norm(g - ref),
        "max_rm": float(np.sqrt(max(float(np.max(rm2)), 0.0))),
        "int_rm2": float(domain.integral(rm2, metric=g)),
        "min_scalar": float(np.min(curv.scalar)),
        "max_scalar": float(np.max(curv.scalar)),
        "min_eig": float(np.min(np.linalg.eigvalsh(g)[..., 0])),
        "max_w": float(np.sqrt(max(float(np.max(w2)), 0.0))),
        "mean_g": domain.mean(g),
    }


# =========================================================================
# φ-functions
# =========================================================================
def phi_functions(z: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""(e^z, φ1(z), φ2(z)) for real z ≤ 0 (any shape), accurate to rounding.

    φ1(z) = (e^z − 1)/z, φ2(z) = (e^z − 1 − z)/z²; Taylor series
    φ_k(z) = Σ_j z^j/(j + k)! (12 terms) for |z| < 0.1, ``expm1`` otherwise.
    """
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 0.1
    zs = np.where(small, z, 0.0)
    p1 = np.zeros_like(z)
    p2 = np.zeros_like(z)
    for j in reversed(range(12)):
        p1 = p1 * zs + 1.0 / math.factorial(j + 1)
        p2 = p2 * zs + 1.0 / math.factorial(j + 2)
    zb = np.where(small, 1.0, z)
    em1 = np.expm1(zb)
    phi1 = np.where(small, p1, em1 / zb)
    phi2 = np.where(small, p2, (em1 - zb) / zb**2)
    return np.exp(z), phi1, phi2


# =========================================================================
# the solver
# =========================================================================
def _first_bad(mask: np.ndarray) -> tuple:
    idx = int(np.argmax(np.reshape(mask, (-1,))))
    return tuple(int(i) for i in np.unravel_index(idx, mask.shape))


def _check_input(g0: Any, domain: Domain) -> np.ndarray:
    g0 = np.asarray(g0, dtype=np.float64)
    n = domain.n
    if g0.shape != tuple(domain.shape) + (n, n):
        raise ValueError(
            f"g0 must have shape {tuple(domain.shape) + (n, n)} (grid axes first, then n×n) "
            f"for {domain!r}, got {g0.shape}"
        )
    if not np.all(np.isfinite(g0)):
        idx = _first_bad(~np.isfinite(g0))
        raise MetricError(f"g0 has a non-finite entry {g0[idx]} at {domain.describe_point(idx[:n])}")
    asym = np.abs(g0 - np.swapaxes(g0, -1, -2))
    if asym.max() > 1e-12 * max(1.0, np.abs(g0).max()):
        idx = _first_bad(asym == asym.max())
        raise MetricError(
            f"g0 is not symmetric: |g_ij − g_ji| = {asym.max():.3e} at {domain.describe_point(idx[:n])}; "
            "symmetrise it, e.g. (g + g.swapaxes(-1, -2)) / 2"
        )
    lam = np.linalg.eigvalsh(g0)[..., 0]
    if not np.all(lam > 0):
        idx = _first_bad(lam == lam.min())
        raise MetricError(
            f"g0 is not positive definite at {domain.describe_point(idx)}: smallest eigenvalue "
            f"{lam.min():.6g} <= 0; a Riemannian metric needs all eigenvalues > 0"
        )
    return 0.5 * (g0 + np.swapaxes(g0, -1, -2))


def _state_problem(g: np.ndarray, domain: Domain) -> Optional[str]:
    """None if g is finite and positive definite everywhere, else what is wrong and where."""
    n = domain.n
    fin = np.isfinite(g)
    if not np.all(fin):
        idx = _first_bad(~fin)
        return f"non-finite value g_{idx[n]}{idx[n + 1]} = {g[idx]} at {domain.describe_point(idx[:n])}"
    try:  # fast path: a Cholesky factorisation exists iff g is positive definite
        np.linalg.cholesky(g)
        return None
    except np.linalg.LinAlgError:
        pass
    lam = np.linalg.eigvalsh(g)[..., 0]
    if not np.all(lam > 0):
        idx = _first_bad(lam == lam.min())
        return (f"the metric stopped being positive definite at {domain.describe_point(idx)} "
                f"(smallest eigenvalue {lam.min():.6g})")
    return None


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
    method: str = "etd",
    first_step: Optional[float] = None,
    max_step: float = math.inf,
    fixed_step: Optional[float] = None,
    reference: Any = None,
    dealias: bool = False,
    check_resolution: bool = True,
    diagnostics: bool = True,
    checkpoint: Any = None,
    max_steps: int = 1_000_000,
) -> FlowResult:
    r"""Integrate Ricci–DeTurck (or Ricci) flow of a metric field on a grid domain.

    Parameters
    ----------
    g0:
        Initial metric ``[*grid, n, n]`` (grid axes first), symmetric positive
        definite at every grid point.
    t_span:
        ``(t0, t1)`` with t1 > t0.
    flow:
        ``"ricci-deturck"`` (default) or ``"ricci"``.
    background:
        The DeTurck background g̃: ``None`` (δ), a constant n×n SPD matrix
        (Γ̃ = 0), or a field ``[*grid, n, n]``.
    domain:
        A :class:`~lnegeom.domains.Domain`, e.g. ``Torus(2, 32, 2 * np.pi)``.
    t_eval:
        Times at which to save g (sorted, within ``t_span``); ``None``: every
        accepted step.  The ETD stepper lands on each of them exactly.
    rtol, atol:
        Tolerances of the local error estimate, as in
        :func:`scipy.integrate.solve_ivp`.
    method:
        ``"etd"`` (exponential ETDRK2 with embedded ETD1, see the module
        docstring) or a :func:`scipy.integrate.solve_ivp` method name.
    first_step, max_step:
        Initial and largest step (``etd`` and scipy).
    fixed_step:
        ``etd`` only: take steps of exactly this size (no error control; the
        last step before each save time is shortened), for convergence studies.
    reference:
        Metric (n×n or field) against which the ``l2`` diagnostic is measured;
        default: the background (δ when ``background`` is None).
    dealias:
        Apply the 2/3 rule to the right-hand side (``etd`` and scipy).
    check_resolution:
        Refuse a ``g0`` with content the grid cannot resolve
        (:meth:`~lnegeom.domains.Torus.check_resolution`).
    diagnostics:
        Compute the diagnostics at each saved time.
    checkpoint:
        A path: after every saved time, the last state and the saved data so
        far are written there (``numpy.savez``); resume by calling again with
        ``g0`` = ``data["g_last"]`` and ``t_span = (data["t_last"], t1)``.
    max_steps:
        Safety limit on the number of steps.

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
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    t_span = tuple(float(v) for v in t_span)
    if len(t_span) != 2 or not all(math.isfinite(v) for v in t_span) or not t_span[1] > t_span[0]:
        raise ValueError(f"t_span must be (t0, t1) with finite t1 > t0, got {t_span}")
    t0, t1 = t_span
    g = _check_input(g0, domain)
    n = domain.n
    if check_resolution and hasattr(domain, "check_resolution"):
        domain.check_resolution(g, name="initial metric g0")
    bg_gamma = None
    if background is not None:
        bg = np.asarray(background, dtype=np.float64)
        if bg.shape == (n, n):
            _check_input(np.broadcast_to(bg, tuple(domain.shape) + (n, n)), domain)
        else:
            _check_input(bg, domain)
        bg_gamma = _background_christoffel(bg, domain)
    if reference is None:
        reference = np.eye(n) if background is None else np.asarray(background, dtype=np.float64)
    if t_eval is not None:
        t_eval = np.asarray(t_eval, dtype=np.float64).ravel()
        if np.any(np.diff(t_eval) <= 0) or t_eval[0] < t0 or t_eval[-1] > t1:
            raise ValueError(f"t_eval must be strictly increasing within t_span = {t_span}")
    if fixed_step is not None and method != "etd":
        raise ValueError("fixed_step is only available with method='etd'")

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
    saved_g: list[np.ndarray] = []
    diags: list[dict] = []

    def save(t: float, u: np.ndarray) -> None:
        saved_t.append(float(t))
        saved_g.append(u.copy())
        if diagnostics:
            diags.append(flow_diagnostics(u, domain, reference=reference, flow=flow, background_christoffel=bg_gamma))
        if checkpoint is not None:
            np.savez(checkpoint, t=np.array(saved_t), g=np.array(saved_g), t_last=t, g_last=u,
                     flow=flow, method=method)

    if t_eval is None or t_eval[0] == t0:
        save(t0, g)
    targets = list(t_eval[t_eval > t0]) if t_eval is not None else [t1]

    state = {"t": t0, "g": g, "status": 0, "message": "", "nsteps": 0, "nrejected": 0}
    try:
        if method == "etd":
            _run_etd(rhs, domain, state, targets, t_eval is not None, save, rtol, atol,
                     first_step, max_step, fixed_step, max_steps, t1)
        else:
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
        t=np.array(saved_t), g=np.array(saved_g) if saved_g else np.zeros((0,) + g.shape),
        diagnostics={k: np.array([d[k] for d in diags]) for k in dkeys},
        status=state["status"], message=state["message"], nfev=counter["nfev"], nsteps=state["nsteps"],
        nrejected=state["nrejected"], t_last=state["t"], g_last=state["g"], method=method, flow=flow,
        seconds=time.perf_counter() - start,
    )


def _err_norm(err: np.ndarray, u: np.ndarray, u_new: np.ndarray, rtol: float, atol: float) -> float:
    scale = atol + rtol * np.maximum(np.abs(u), np.abs(u_new))
    return float(np.sqrt(np.mean((err / scale) ** 2)))


def _run_etd(rhs, domain, state, targets, save_at_targets, save, rtol, atol, first_step, max_step,
             fixed_step, max_steps, t1) -> None:
    u = state["g"]
    t = state["t"]
    n = domain.n
    h = fixed_step if fixed_step is not None else (first_step or min(1e-3 * (t1 - t), max_step))
    cache: dict = {}
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
        # the frozen principal part A^ab ∂a∂b, A = mean g^-1
        A = domain.mean(np.linalg.inv(u))
        A = 0.5 * (A + A.T)
        key = (h_try, A.tobytes())
        if cache.get("key") != key:
            lam = domain.symbol(A)
            E, p1, p2 = phi_functions(h_try * lam)
            cache.update(key=key, lam=lam, E=E, p1=h_try * p1, p2=h_try * p2)
        lam, E, hp1, hp2 = cache["lam"], cache["E"], cache["p1"], cache["p2"]
        bc = (slice(None),) * n + (None, None)
        U = domain.fft(u)
        Nu = rhs(u, t) - domain.ifft(lam[bc] * U)
        a = domain.ifft(E[bc] * U + hp1[bc] * domain.fft(Nu))
        problem = _state_problem(a, domain)
        if problem is None:
            Na = rhs(a, t + h_try) - domain.apply_symbol(a, lam)
            corr = domain.apply_symbol(Na - Nu, hp2)
            u_new = a + corr
            u_new = 0.5 * (u_new + np.swapaxes(u_new, -1, -2))
            problem = _state_problem(u_new, domain)
        if problem is not None:
            if fixed_step is not None or h_try < 1e-14 * max(1.0, abs(t)):
                state["status"] = -1
                state["message"] = (f"flow stopped at t = {t:.6g} (step to t = {t + h_try:.6g}): {problem}; "
                                    f"returning the results up to t = {t:.6g}")
                return
            state["nrejected"] += 1
            h = 0.25 * h_try
            continue
        if fixed_step is None:
            err = _err_norm(corr, u, u_new, rtol, atol)
            if err > 1.0:
                state["nrejected"] += 1
                h = h_try * max(0.2, 0.9 * err ** -0.5)
                continue
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** -0.5))
            h_next = h_try * factor
            if not last:
                h = h_next
            else:
                h = max(h, h_next)  # a shortened last step does not shrink the next
        t = target if last else t + h_try
        u = u_new
        state["t"], state["g"] = t, u
        state["nsteps"] += 1
        if last:
            target_i += 1
            if save_at_targets:
                save(t, u)
        elif not save_at_targets:
            save(t, u)


def _run_scipy(rhs, domain, state, targets, save_at_targets, save, rtol, atol, first_step, max_step,
               method, max_steps, t1) -> None:
    import scipy.integrate as si

    shape = state["g"].shape
    solver_cls = getattr(si, method)
    y0 = state["g"].reshape(-1)

    def fun(t, y):
        return rhs(y.reshape(shape), t).reshape(-1)

    kw = dict(rtol=rtol, atol=atol, max_step=max_step)
    if first_step is not None:
        kw["first_step"] = first_step
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
        u = solver.y.reshape(shape)
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
                save(targets[target_i], dense(targets[target_i]).reshape(shape))
                target_i += 1
        else:
            save(solver.t, u)
        state["t"], state["g"], state["t_try"] = solver.t, u, solver.t
