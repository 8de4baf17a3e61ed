"""The interface of the flow's integrators, after :class:`scipy.integrate.OdeSolver`.

A :class:`FlowStepper` holds the state of one run: ``t``, ``g`` (the metric at ``t``, grid axes
first), ``status`` (``"running"``, ``"finished"`` or ``"failed"``, with ``message``), and the counts
``nfev``, ``nsteps``, ``nrejected``.  :meth:`FlowStepper.step` advances by one accepted step (or
fails, keeping the last good state); :meth:`FlowStepper.current` and :meth:`FlowStepper.sample`
give the state to record, with its diagnostics.  :func:`lnegeom.flow.solve_flow` is one loop over
a stepper: the ETD steppers of :mod:`lnegeom.flow.etd` on a spectral domain, the
:mod:`scipy.integrate` solvers of :mod:`lnegeom.flow.ivp` otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional

from .diagnostics import diagnostics_of
from .rhs import FlowRHS

__all__ = ["FlowStepper"]


class FlowStepper(ABC):
    """One integrator of the flow of ``rhs`` from ``t0``.

    Attributes
    ----------
    t:
        The time of the last accepted step (``t0`` before the first).
    t_try:
        The time the step under way tries to reach (named when the right-hand side fails).
    status:
        ``"running"``, ``"finished"`` (the end reached) or ``"failed"`` (``message`` says why).
    nfev, nsteps, nrejected:
        Right-hand-side evaluations, accepted and rejected steps.
    max_steps:
        The step budget; reaching it fails the run.
    reference:
        The metric the ``l2`` diagnostic is measured against.
    """

    def __init__(self, rhs: FlowRHS, t0: float, *, max_steps: int, reference: Any) -> None:
        self.rhs = rhs
        self.t = self.t_try = float(t0)
        self.max_steps = max_steps
        self.reference = reference
        self.status = "running"
        self.message = ""
        self.nfev = self.nsteps = self.nrejected = 0

    @property
    @abstractmethod
    def g(self) -> Any:
        """The metric at :attr:`t`, ``[*batch, *grid, n, n]`` (after a failure: the last good state)."""

    @abstractmethod
    def step(self) -> None:
        """Advance by one accepted step, or set ``status = "failed"`` and ``message``."""

    def fail(self, message: str) -> None:
        """Stop the run: ``status = "failed"`` with ``message``."""
        self.status, self.message = "failed", message

    def current(self, diagnose: bool) -> tuple[Any, Optional[dict]]:
        """The metric at :attr:`t` and, with ``diagnose``, its diagnostics."""
        g = self.g
        return g, (diagnostics_of(self.rhs, g, self.reference) if diagnose else None)

    def sample(self, t: float, diagnose: bool) -> tuple[Any, Optional[dict]]:
        """The metric at a time ``t`` of the last step, and its diagnostics; this stepper lands on
        every such time, so ``t`` is :attr:`t`."""
        if t != self.t:
            raise ValueError(f"{type(self).__name__} lands on its save times: asked for t = {t}, it is at {self.t}")
        return self.current(diagnose)
