"""The driver of the flow: :func:`solve_flow` (one loop over a stepper) and its :class:`FlowResult`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .._array import array_namespace, is_torch_array, to_numpy
from ..checkpoint import FlowCheckpoint
from ..domains import Domain
from .checks import check_constant_or_field, check_metric_field, check_step_options
from .etd import ETDRK2Stepper, ETDRK4Stepper
from .ivp import SCIPY_METHODS, ScipyStepper
from .rhs import FLOWS, FlowRHS, NonFiniteRHS, RhsFunction, background_christoffel
from .stepper import FlowStepper

__all__ = ["FlowResult", "solve_flow", "METHODS", "ETD_METHODS", "ETD_STEPPERS"]

#: the ETD steppers by method name ("etd" = "etd4")
ETD_STEPPERS = {"etd4": ETDRK4Stepper, "etd2": ETDRK2Stepper}
ETD_METHODS = ("etd", "etd4", "etd2")
METHODS = ETD_METHODS + SCIPY_METHODS


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
    rhs: Optional[RhsFunction] = None,
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
        ``"auto"`` (default): the domain's ``default_method``, ``"etd"`` on a
        Torus, ``"BDF"`` (sparse Jacobian, see :mod:`lnegeom.flow.ivp`) on a
        :class:`~lnegeom.box.Box`.
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
    rhs:
        The function that evaluates the flow from g, ∂g, ∂²g (components first), with the
        signature of :func:`~lnegeom.flow.rhs_from_derivatives` (the default): every method,
        and the diagnostics, evaluate the flow through it (e.g. to inject a fault in a test).

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
        method = domain.default_method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {('auto',) + METHODS}")
    if flow == "ricci" and domain.holds_boundary:
        raise ValueError(
            f"flow='ricci' on {domain!r}: pure Ricci flow is only weakly parabolic (its symbol vanishes on the "
            "gauge directions L_X g), so with the boundary held it is not well posed; use flow='ricci-deturck'")
    if dealias and not domain.spectral:
        raise ValueError(f"dealias=True needs a spectral domain (Torus) with a filter; {domain!r} has none")
    t_span = tuple(float(v) for v in t_span)
    if len(t_span) != 2 or not all(math.isfinite(v) for v in t_span) or not t_span[1] > t_span[0]:
        raise ValueError(f"t_span must be (t0, t1) with finite t1 > t0, got {t_span}")
    t0, t1 = t_span
    g = check_metric_field(g0, domain, batch)
    n = domain.n
    if check_resolution:
        for b, gb in enumerate(to_numpy(g) if batch else to_numpy(g)[None]):
            domain.check_resolution(gb, name=f"initial metric g0[{b}]" if batch else "initial metric g0")
    bg_gamma = None
    if background is not None:
        bg = check_constant_or_field(background, "background", domain)
        check_metric_field(np.broadcast_to(bg, tuple(domain.shape) + (n, n)), domain, name="background")
        bg_gamma = background_christoffel(bg, domain)
    if reference is None:
        reference = np.eye(n) if background is None else bg
    else:
        reference = check_constant_or_field(reference, "reference", domain)
    if t_eval is not None:
        t_eval = np.asarray(t_eval, dtype=np.float64).ravel()
        if t_eval.size == 0 or not np.all(np.isfinite(t_eval)):
            raise ValueError(f"t_eval must hold at least one finite time, got t_eval={t_eval}; "
                             "pass None to save every accepted step")
        if np.any(np.diff(t_eval) <= 0) or t_eval[0] < t0 or t_eval[-1] > t1:
            raise ValueError(f"t_eval must be strictly increasing within t_span = {t_span}")
    check_step_options(rtol=rtol, atol=atol, first_step=first_step, max_step=max_step, fixed_step=fixed_step,
                       max_steps=max_steps)
    if fixed_step is not None and method not in ETD_METHODS:
        raise ValueError(f"fixed_step is only available with method in {ETD_METHODS}, got method={method!r}")
    if method in ETD_METHODS and not domain.spectral:
        raise ValueError(f"method={method!r} needs a periodic Torus domain (its principal part is diagonal in "
                         f"Fourier space); for {domain!r} use a scipy method such as 'BDF'")
    if method not in ETD_METHODS and (batch or is_torch_array(g)):
        raise ValueError(f"method={method!r} runs on numpy arrays without a batch; use method='etd' for "
                         "torch tensors and batched runs")
    if method == "etd":
        method = "etd4"

    xp = array_namespace(g)
    saved_t: list[float] = []
    saved_g: list[Any] = []
    diags: list[dict] = []
    ck = None
    if checkpoint is not None:
        ck = FlowCheckpoint(checkpoint, flow=flow, method=method, resume_from=(t0, to_numpy(g)))

    def record(t: float, state: tuple[Any, Optional[dict]]) -> None:
        u, diag = state
        saved_t.append(float(t))
        saved_g.append(xp.asarray(u, copy=True))
        if diag is not None:
            diags.append(diag)
        if ck is not None and not (ck.resumed and len(saved_t) == 1 and t == t0):  # t0 is its last record
            ck.append(t, to_numpy(u))

    flow_of = FlowRHS(domain, flow, bg_gamma, rhs)
    stepper: Optional[FlowStepper] = None
    try:
        if method in ETD_METHODS:
            stops = list(t_eval[t_eval > t0]) if t_eval is not None else [t1]
            stepper = ETD_STEPPERS[method](
                flow_of, g, t0, t_stops=stops, t_span_length=t1 - t0, rtol=rtol, atol=atol, first_step=first_step,
                max_step=max_step, fixed_step=fixed_step, max_steps=max_steps, dealias=dealias, batch=batch,
                reference=reference)
        else:
            stepper = ScipyStepper(flow_of, g, t0, t1, method=method, rtol=rtol, atol=atol, first_step=first_step,
                                   max_step=max_step, max_steps=max_steps, dealias=dealias, reference=reference)
        _drive(stepper, t0, t_eval, diagnostics, record)
        status, message = (-1, stepper.message) if stepper.status == "failed" else (0, f"reached t = {stepper.t:.6g}")
    except NonFiniteRHS as e:
        t, t_try = (stepper.t, stepper.t_try) if stepper is not None else (t0, t0)
        status = -1
        message = (f"flow stopped: {e.where} during the step from t = {t:.6g} (t = {t_try:.6g} attempted); "
                   f"returning the results up to t = {t:.6g}")
    if stepper is None:  # the initial state's right-hand side is not finite
        t_last, g_last, counts = t0, g, (0, 0, 0)
    else:
        t_last, g_last, counts = stepper.t, stepper.g, (stepper.nfev, stepper.nsteps, stepper.nrejected)
    dkeys = diags[0].keys() if diags else []
    return FlowResult(
        t=np.array(saved_t), g=xp.stack(saved_g) if saved_g else xp.zeros((0,) + tuple(g.shape), dtype=g.dtype),
        diagnostics={k: np.array([d[k] for d in diags]) for k in dkeys},
        status=status, message=message, nfev=counts[0], nsteps=counts[1], nrejected=counts[2],
        t_last=t_last, g_last=g_last, method=method, flow=flow, seconds=time.perf_counter() - start,
    )


def _drive(stepper: FlowStepper, t0: float, t_eval: Optional[np.ndarray], diagnostics: bool,
           record: Callable[[float, tuple[Any, Optional[dict]]], None]) -> None:
    """The one loop over a stepper: record the start (unless ``t_eval`` begins later), step until
    finished or failed, and record every accepted step, the last one at t1 included (``t_eval``
    None, as :func:`scipy.integrate.solve_ivp`), or the states at the times of ``t_eval`` (the
    stepper's :meth:`~FlowStepper.sample`)."""
    if t_eval is None or t_eval[0] == t0:
        record(t0, stepper.current(diagnostics))
    targets = t_eval[t_eval > t0] if t_eval is not None else None
    i = 0
    while stepper.status == "running":
        stepper.step()
        if stepper.status == "failed":
            return
        if targets is None:
            record(stepper.t, stepper.current(diagnostics))
            continue
        while i < len(targets) and targets[i] <= stepper.t:
            record(float(targets[i]), stepper.sample(float(targets[i]), diagnostics))
            i += 1
