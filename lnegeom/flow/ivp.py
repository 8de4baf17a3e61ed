r"""The :mod:`scipy.integrate` solvers behind the flow's stepper interface: :class:`ScipyStepper`.

``method`` = ``"RK45"``, ``"RK23"``, ``"DOP853"``, ``"Radau"``, ``"BDF"``, ``"LSODA"`` of
:func:`~lnegeom.flow.solve_flow`: the flattened state is handed to the corresponding
:mod:`scipy.integrate` solver class (the ones behind ``solve_ivp``), stepped one accepted step at a
time so that failures return the partial result.

On a domain that holds its boundary (the :class:`~lnegeom.box.Box`) the state is the packed
interior unknowns (:meth:`~lnegeom.domains.Domain.pack`), the boundary values stay those of the
initial metric, and the implicit methods get the Jacobian pattern of the right-hand side
(:func:`~lnegeom.flow.flow_jac_sparsity`): BDF and Radau a sparse forward-difference Jacobian
on it (:func:`lnegeom.box.sparse_fd_jacobian`, one evaluation per column group, steps
1.5e-8·max(1, |y|): scipy's own ``num_jac`` scales its steps by ``atol`` for components that are
0, e.g. g₁₂ of a diagonal metric, and returns a wrong Jacobian with a small ``atol``), LSODA the
band ``lband``/``uband`` of that pattern.  Elsewhere the state is the whole field, flattened.
"""

from __future__ import annotations

from typing import Any, Optional, cast

import numpy as np

from ..box import Box, column_groups, sparse_fd_jacobian
from ..domains import Torus
from ..layout import components_first
from .checks import first_true, metric_problem
from .diagnostics import diagnostics_of
from .rhs import FlowRHS, NonFiniteRHS, flow_jac_sparsity
from .stepper import FlowStepper

__all__ = ["SCIPY_METHODS", "ScipyStepper"]

SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")


class ScipyStepper(FlowStepper):
    """A :mod:`scipy.integrate` solver class (``method``) over the flow's unknowns, numpy, no batch.

    ``solver`` is the scipy object; its dense output gives the states at the save times.
    """

    def __init__(self, rhs: FlowRHS, g0: np.ndarray, t0: float, t_bound: float, *, method: str, rtol: float,
                 atol: float, first_step: Optional[float], max_step: float, max_steps: int, dealias: bool,
                 reference: Any) -> None:
        import scipy.integrate as si

        super().__init__(rhs, t0, max_steps=max_steps, reference=reference)
        self.method, self.dealias = method, dealias
        self._g0 = self._g = g0
        self._dense: Any = None
        domain = rhs.domain
        kw: dict[str, Any] = dict(rtol=rtol, atol=atol, max_step=max_step)
        if first_step is not None:
            kw["first_step"] = first_step
        if domain.holds_boundary:
            y0 = domain.pack(g0)
            if method in ("BDF", "Radau"):
                pattern = flow_jac_sparsity(cast(Box, domain))
                groups = column_groups(pattern)
                kw["jac"] = lambda t, y: sparse_fd_jacobian(lambda v: self.fun(t, v), y, pattern, groups)
            elif method == "LSODA":
                coo = flow_jac_sparsity(cast(Box, domain)).tocoo()
                kw["lband"] = int(np.max(coo.row - coo.col))
                kw["uband"] = int(np.max(coo.col - coo.row))
        else:
            y0 = g0.reshape(-1)
        self.solver = getattr(si, method)(self.fun, t0, y0, t_bound, **kw)

    def to_field(self, y: np.ndarray) -> np.ndarray:
        """The metric field of the solver's state ``y``."""
        domain = self.rhs.domain
        if domain.holds_boundary:
            return domain.unpack(y, self._g0)
        return y.reshape(self._g0.shape)

    def evaluate(self, g: np.ndarray) -> np.ndarray:
        """∂_t g (dealiased with ``dealias``), raising :class:`~lnegeom.flow.NonFiniteRHS` naming the
        point if it is not finite."""
        self.nfev += 1
        out = self.rhs(g)
        if self.dealias:
            out = cast(Torus, self.rhs.domain).filter(out)
        fin = np.isfinite(out)
        if not np.all(fin):
            domain = self.rhs.domain
            n = domain.n
            idx = first_true(~fin)
            raise NonFiniteRHS(idx, float(out[idx]), f"non-finite right-hand side ∂_t g_{idx[n]}{idx[n + 1]} = "
                                                     f"{out[idx]} at {domain.describe_point(idx[:n])}")
        return out

    def fun(self, t: float, y: np.ndarray) -> np.ndarray:
        """The right-hand side of the solver's unknowns."""
        out = self.evaluate(self.to_field(y))
        return self.rhs.domain.pack(out) if self.rhs.domain.holds_boundary else out.reshape(-1)

    @property
    def g(self) -> np.ndarray:
        return self._g

    def step(self) -> None:
        if self.nsteps >= self.max_steps:
            return self.fail(f"max_steps = {self.max_steps} reached at t = {self.t:.6g}")
        solver = self.solver
        t_old = solver.t
        msg = solver.step()
        if solver.status == "failed":
            return self.fail(f"{self.method} failed at t = {solver.t:.6g}: {msg}")
        u = self.to_field(solver.y)
        problem = metric_problem(components_first(u, 2), self.rhs.domain)
        if problem is not None:
            return self.fail(f"flow stopped at t = {solver.t:.6g} (step from t = {t_old:.6g}): {problem}; "
                             f"returning the results up to t = {t_old:.6g}")
        self.nsteps += 1
        self.t = self.t_try = solver.t
        self._g, self._dense = u, None
        if solver.status == "finished":
            self.status = "finished"

    def sample(self, t: float, diagnose: bool) -> tuple[Any, Optional[dict]]:
        """The metric at a time ``t`` of the last step, by the solver's dense output."""
        if self._dense is None:
            self._dense = self.solver.dense_output()
        g = self.to_field(self._dense(t))
        return g, (diagnostics_of(self.rhs, g, self.reference) if diagnose else None)

