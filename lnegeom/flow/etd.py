r"""Exponential time differencing on a spectral domain: :class:`ETDRK4Stepper` and :class:`ETDRK2Stepper`.

``method="etd"`` (default, = ``"etd4"``) and ``"etd2"`` of :func:`~lnegeom.flow.solve_flow`, on a
torus: the right-hand side is split as F(g) = 𝓛 g + N(g) with the constant-coefficient
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

Step control (both): the step is accepted when the RMS norm of the estimate over all n²
entries and grid points, scaled by ``atol + rtol·max(|u_n|, |u_{n+1}|)``
componentwise (as in :func:`scipy.integrate.solve_ivp`; the largest over a
batch), is ≤ 1; the next step is h·:data:`SAFETY`·err^{−1/p} (p = 4 for etd4, 2 for
etd2), clipped to [:data:`MIN_FACTOR` h, :data:`MAX_FACTOR` h] (:func:`step_factor`), and the
solution is advanced with the higher-order value (local extrapolation).  A stage that is not
finite or not positive definite rejects the step (h·:data:`BAD_STATE_FACTOR`).  Since λ ≤ 0 is
real, the φ-functions come from their Taylor series for |z| < 1 and from expm1 and
the recurrence φ_{k+1} = (φ_k − 1/k!)/z for |z| ≥ 1 (:func:`phi_functions`)
— no cancellation, no contour integral (the instability Kassam & Trefethen
2005 remove that way does not arise for real z ≤ 0).  The stiff linear part
is integrated exactly, so the step size is set by the (small) remainder N.

The steppers run in the namespace of the initial metric (numpy, or torch on its device,
float64), with any batch axes: ``g0[B, *grid, n, n]`` flows B metrics with one shared step.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Optional, cast

import numpy as np
from array_api_compat import device as _device

from .._array import array_namespace, is_torch_array
from ..curvature import RicciParts
from ..domains import Torus
from ..layout import components_first, components_last, packing
from .checks import describe_index, first_true, metric_problem
from .diagnostics import diagnostics_from_parts, reference_components_first
from .rhs import FlowRHS, NonFiniteRHS
from .stepper import FlowStepper

__all__ = ["phi_functions", "step_factor", "ETDStepper", "ETDRK4Stepper", "ETDRK2Stepper", "SAFETY", "MIN_FACTOR",
           "MAX_FACTOR", "BAD_STATE_FACTOR", "MIN_RELATIVE_STEP", "FIRST_STEP_FRACTION", "LANDING_TOLERANCE"]

#: step control of the ETD steppers (module docstring): the next step is SAFETY · err^{−1/p} times the
#: last, clipped to [MIN_FACTOR, MAX_FACTOR]; a step whose state is not a metric is retried at
#: BAD_STATE_FACTOR times; below MIN_RELATIVE_STEP · max(1, |t|) the stepper gives up
SAFETY = 0.9
MIN_FACTOR = 0.2
MAX_FACTOR = 5.0
BAD_STATE_FACTOR = 0.25
MIN_RELATIVE_STEP = 1e-14
#: without ``first_step``, the first step is this fraction of the time span (at most ``max_step``)
FIRST_STEP_FRACTION = 1e-3
#: a step within this fraction of max(1, |t_stop|) of a stop time lands on it
LANDING_TOLERANCE = 1e-12


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


def step_factor(err: float, order: int) -> float:
    """The next step over the last one for the error norm ``err`` of a method of ``order``."""
    if err == 0:
        return MAX_FACTOR
    if not math.isfinite(err):
        return MIN_FACTOR
    return min(MAX_FACTOR, max(MIN_FACTOR, SAFETY * err ** (-1.0 / order)))


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


class ETDStepper(FlowStepper):
    """The exponential steppers' common part: the state as the spectrum of the n(n+1)/2 components
    g_ij, i ≤ j (any batch axes, then the grid axes; numpy or torch), the frozen operator, the step
    control and the landing on the stop times.  Subclasses give :attr:`order` (of the error
    estimate), :meth:`coefficients` and :meth:`advance`.

    Parameters
    ----------
    rhs:
        The flow on a spectral domain (:class:`~lnegeom.domains.Torus`).
    g0:
        The initial metric ``[*batch, *grid, n, n]`` (validated, symmetric, float64).
    t0:
        The start time.
    t_stops:
        The increasing times > t0 to land on exactly; the run finishes at the last.
    t_span_length:
        t1 − t0 of the run (it sets the default first step).
    rtol, atol, max_step, max_steps, reference:
        As in :func:`~lnegeom.flow.solve_flow`.
    first_step:
        The first step; default :data:`FIRST_STEP_FRACTION` of ``t_span`` (at most ``max_step``).
    fixed_step:
        Steps of exactly this size, no error control (the last before each stop shortened).
    dealias, batch:
        As in :func:`~lnegeom.flow.solve_flow`.
    """

    order: int

    def __init__(self, rhs: FlowRHS, g0: Any, t0: float, *, t_stops: list, t_span_length: float, rtol: float,
                 atol: float, first_step: Optional[float], max_step: float, fixed_step: Optional[float],
                 max_steps: int, dealias: bool, batch: bool, reference: Any) -> None:
        super().__init__(rhs, t0, max_steps=max_steps, reference=reference)
        xp = array_namespace(g0)
        self.domain = cast(Torus, rhs.domain)
        self.batch, self.t_stops = batch, t_stops
        self.rtol, self.atol, self.max_step, self.fixed_step = rtol, atol, max_step, fixed_step
        self.pk = packing(self.domain.n)
        mask = self.domain.filter_symbol() if dealias else self.domain.nyquist_free_symbol()
        self.mask = None if mask is None else xp.asarray(mask, dtype=g0.dtype, device=_device(g0))
        self.weights = xp.asarray(self.pk.weights, dtype=g0.dtype, device=_device(g0))
        self.reference_first = reference_components_first(reference, self.domain.n, g0)
        self.h = fixed_step if fixed_step is not None else (
            first_step or min(FIRST_STEP_FRACTION * t_span_length, max_step))
        self._stop = 0  # index of the next stop time
        if not t_stops:  # t_eval = [t0]: nothing to integrate
            self.status = "finished"
        self._lam_of: Optional[_Stage] = None  # the state the frozen operator belongs to
        self._lam: Any = None
        self._coefs: Optional[tuple] = None
        self._coefs_h: Optional[float] = None
        U0 = self.fft(self.pk.pack(components_first(g0, 2)))
        self.u = self.stage(U0 if self.mask is None else U0 * self.mask)

    # ---- the scheme ------------------------------------------------------------------------------
    @abstractmethod
    def coefficients(self, lam: Any, h: float) -> tuple:
        """The Fourier multipliers of one step of size h (z = hλ)."""

    @abstractmethod
    def advance(self, u: _Stage, lam: Any, c: tuple) -> tuple[_Stage, Any]:
        """One step from ``u`` with the multipliers ``c``: (new state, error spectrum)."""

    # ---- states ----------------------------------------------------------------------------------
    def fft(self, v: Any) -> Any:
        return self.domain.fft(v, grid_last=True)

    def ifft(self, V: Any) -> Any:
        return self.domain.ifft(V, grid_last=True)

    def stage(self, V: Any, evaluate: bool = True) -> _Stage:
        """The state with spectrum ``V``: its values, checked (:class:`_BadState`), and with
        ``evaluate`` the right-hand side (:class:`~lnegeom.flow.NonFiniteRHS` naming the point if
        not finite)."""
        if not evaluate:
            st = _Stage(V=V, v=self.ifft(V))
            self._check(st.v)
            return st
        v, dv, d2v = self.domain.spectral_derivatives(V, grid_last=True)
        st = _Stage(V=V, v=v)
        self._check(v)
        return self.evaluate(st, dv, d2v)

    def _check(self, v: Any) -> None:
        problem = metric_problem(self.pk.unpack(v), self.domain, self.batch)
        if problem is not None:
            raise _BadState(problem)

    def evaluate(self, st: _Stage, dv: Any = None, d2v: Any = None) -> _Stage:
        """Fill in ``st.Fh``, ``st.parts``, ``st.W`` (no-op if done)."""
        if st.Fh is not None:
            return st
        if dv is None:
            _, dv, d2v = self.domain.spectral_derivatives(st.V, grid_last=True)
        pk = self.pk
        xp = array_namespace(st.v)
        self.nfev += 1
        rhs, st.parts, st.W = self.rhs.from_derivatives(pk.unpack(st.v), pk.unpack(dv, axis=1),
                                                        pk.unpack(d2v, axis=2))
        F = pk.pack(rhs)
        fin = xp.isfinite(F)
        if not bool(xp.all(fin)):
            idx = first_true(~fin)
            i, j = pk.pairs[idx[0]]
            raise NonFiniteRHS(idx, float(F[idx]), f"non-finite right-hand side ∂_t g_{i}{j} = {float(F[idx])} at "
                                                   f"{describe_index(self.domain, idx[1:], self.batch)}")
        st.Fh = self.fft(F)
        if self.mask is not None:
            st.Fh = st.Fh * self.mask
        return st

    def symbol(self, st: _Stage) -> Any:
        """λ(k) = −kᵀ A k with A = the grid mean of g⁻¹ at ``st`` (one A per batch member)."""
        g_inv = cast(RicciParts, st.parts).g_inv
        A = components_last(self.domain.integral(g_inv, grid_last=True) / self.domain.volume, 2)
        return self.domain.symbol(0.5 * (A + array_namespace(A).matrix_transpose(A)))

    def err_norm(self, err: Any, v: Any, v_new: Any) -> float:
        """RMS of err / (atol + rtol·max(|v|, |v_new|)) over all n² entries and the grid, max over the batch."""
        xp = array_namespace(err)
        q = (err / (self.atol + self.rtol * xp.maximum(xp.abs(v), xp.abs(v_new)))) ** 2
        q = xp.sum(q, axis=tuple(range(q.ndim - self.domain.n, q.ndim)))  # [s, *batch]
        w = xp.reshape(self.weights, (-1,) + (1,) * (q.ndim - 1))
        ms = xp.sum(w * q, axis=0) / math.prod(self.domain.shape)
        return float(xp.sqrt(xp.max(ms)))

    @property
    def g(self) -> Any:
        return components_last(self.pk.unpack(self.u.v), 2)

    def current(self, diagnose: bool) -> tuple[Any, Optional[dict]]:
        """The metric at :attr:`t`; its diagnostics from the parts of its right-hand side (evaluated
        once, and reused by the next step)."""
        st, diag = self.u, None
        if diagnose:
            self.evaluate(st)
            diag = diagnostics_from_parts(self.domain, self.pk.unpack(st.v), cast(RicciParts, st.parts), st.W,
                                          self.reference_first)
        return self.g, diag

    # ---- the step --------------------------------------------------------------------------------
    def step(self) -> None:
        t = self.t
        while True:
            if self.nsteps + self.nrejected >= self.max_steps:
                return self.fail(f"max_steps = {self.max_steps} reached at t = {t:.6g}")
            stop = self.t_stops[self._stop]
            h_try = min(self.h, self.max_step, stop - t)
            last = h_try >= stop - t - LANDING_TOLERANCE * max(1.0, abs(stop))
            if last:
                h_try = stop - t
            self.t_try = t + h_try
            u = self.evaluate(self.u)
            if self._lam_of is not u:  # freeze the principal part at the current state
                self._lam, self._lam_of, self._coefs = self.symbol(u), u, None
            if self._coefs is None or self._coefs_h != h_try:
                self._coefs, self._coefs_h = self.coefficients(self._lam, h_try), h_try
            try:
                y, err_hat = self.advance(u, self._lam, self._coefs)
            except _BadState as e:
                if self.fixed_step is not None or h_try < MIN_RELATIVE_STEP * max(1.0, abs(t)):
                    return self.fail(f"flow stopped at t = {t:.6g} (step to t = {t + h_try:.6g}): {e}; "
                                     f"returning the results up to t = {t:.6g}")
                self.nrejected += 1
                self.h = BAD_STATE_FACTOR * h_try
                continue
            if self.fixed_step is None:
                err = self.err_norm(self.ifft(err_hat), u.v, y.v)
                factor = step_factor(err, self.order)
                if not err <= 1.0:
                    self.nrejected += 1
                    self.h = h_try * factor
                    continue
                self.h = h_try * factor if not last else max(self.h, h_try * factor)  # a shortened last step keeps h
            self.t = stop if last else t + h_try
            self.u = y
            self.nsteps += 1
            if last:
                self._stop += 1
                if self._stop == len(self.t_stops):
                    self.status = "finished"
            return


class ETDRK4Stepper(ETDStepper):
    """ETDRK4 (Cox–Matthews) with the FSAL-embedded third-order method (``method="etd4"``)."""

    order = 4

    def coefficients(self, lam: Any, h: float) -> tuple:
        z = h * lam
        E, p1, p2, p3 = phi_functions(z, 3)
        E2, q1 = phi_functions(0.5 * z, 1)
        return (E, E2, 0.5 * h * q1,
                h * (p1 - 3.0 * p2 + 4.0 * p3), 2.0 * h * (p2 - 2.0 * p3), h * (4.0 * p3 - p2))

    def advance(self, u: _Stage, lam: Any, c: tuple) -> tuple[_Stage, Any]:
        E, E2, Q, F1, F2, F3 = c
        U = u.V
        Nu = u.Fh - lam * U
        A = E2 * U + Q * Nu
        Na = self.stage(A).Fh - lam * A
        B = E2 * U + Q * Na
        Nb = self.stage(B).Fh - lam * B
        C = E2 * A + Q * (2.0 * Nb - Nu)
        Nc = self.stage(C).Fh - lam * C
        Y = E * U + F1 * Nu + F2 * (Na + Nb) + F3 * Nc
        y = self.stage(Y)
        return y, F3 * (Nc - (y.Fh - lam * Y))


class ETDRK2Stepper(ETDStepper):
    """ETDRK2 (Cox–Matthews) with the embedded exponential Euler (``method="etd2"``)."""

    order = 2

    def coefficients(self, lam: Any, h: float) -> tuple:
        E, p1, p2 = phi_functions(h * lam, 2)
        return E, h * p1, h * p2

    def advance(self, u: _Stage, lam: Any, c: tuple) -> tuple[_Stage, Any]:
        E, P1, P2 = c
        Nu = u.Fh - lam * u.V
        A = E * u.V + P1 * Nu
        a = self.stage(A)
        corr = P2 * ((a.Fh - lam * A) - Nu)
        return self.stage(A + corr, evaluate=False), corr
