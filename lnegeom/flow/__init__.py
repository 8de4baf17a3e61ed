r"""Ricci and Ricci–DeTurck flow of metric fields on grids (docs/math.md §3).

:func:`solve_flow` integrates

* Ricci–DeTurck flow (P-9), ``flow="ricci-deturck"``:
  ∂_t g_ij = −2 Ric_ij(g) + (L_W g)_ij,  W^k = g^ij (Γ^k_ij(g) − Γ^k_ij(g̃)),
  with a fixed background metric g̃ (default δ);
* plain Ricci flow (P-6), ``flow="ricci"``: ∂_t g = −2 Ric(g),

on a grid :class:`~lnegeom.domains.Domain`.  The package follows the seam of
:func:`scipy.integrate.solve_ivp` and its ``OdeSolver`` classes:

* :mod:`lnegeom.flow.rhs` — the right-hand side (:func:`flow_rhs`, :class:`FlowRHS`,
  :func:`rhs_from_derivatives`; the Lie derivative and why DeTurck), the background's
  Christoffel symbols (:func:`background_christoffel`) and the Jacobian pattern on a box
  (:func:`flow_jac_sparsity`);
* :mod:`lnegeom.flow.diagnostics` — :func:`flow_diagnostics`;
* :mod:`lnegeom.flow.stepper` — the stepper interface :class:`FlowStepper` (``step()``, ``t``,
  ``g``, ``status``, ``nfev``, ``nsteps``, ``nrejected``);
* :mod:`lnegeom.flow.etd` — the exponential steppers on the torus, :class:`ETDRK4Stepper`
  (``method="etd"`` = ``"etd4"``) and :class:`ETDRK2Stepper` (``"etd2"``), their step control
  (:data:`SAFETY`, :data:`MIN_FACTOR`, :data:`MAX_FACTOR`, :data:`BAD_STATE_FACTOR`,
  :data:`MIN_RELATIVE_STEP`) and :func:`phi_functions`;
* :mod:`lnegeom.flow.ivp` — :class:`ScipyStepper`, the :mod:`scipy.integrate` solvers (BDF with
  the sparse Jacobian on the box);
* :mod:`lnegeom.flow.checks` — what the solver refuses, and the state check during a run;
* :mod:`lnegeom.flow.solve` — :func:`solve_flow` (one loop over a stepper) and :class:`FlowResult`.

Backends
--------
One formulation serves numpy and torch (array API, :mod:`lnegeom._array`;
contractions by :func:`lnegeom.curvature.einsum_last`; layouts by :mod:`lnegeom.layout`): a
torch ``g0`` runs the whole ETD stepper in torch on its device (float64), and ``batch=True``
flows B metrics ``g0[B, *grid, n, n]`` in one run (one shared step size).
"""

from .diagnostics import flow_diagnostics
from .etd import (
    BAD_STATE_FACTOR,
    MAX_FACTOR,
    MIN_FACTOR,
    MIN_RELATIVE_STEP,
    SAFETY,
    ETDRK2Stepper,
    ETDRK4Stepper,
    ETDStepper,
    phi_functions,
    step_factor,
)
from .ivp import ScipyStepper
from .rhs import FLOWS, FlowRHS, NonFiniteRHS, background_christoffel, flow_jac_sparsity, flow_rhs, rhs_from_derivatives
from .solve import METHODS, FlowResult, solve_flow
from .stepper import FlowStepper

__all__ = [
    "FlowResult", "solve_flow", "flow_rhs", "flow_diagnostics", "phi_functions", "FLOWS", "METHODS",
    "background_christoffel", "rhs_from_derivatives", "FlowRHS", "NonFiniteRHS", "flow_jac_sparsity",
    "FlowStepper", "ETDStepper", "ETDRK4Stepper", "ETDRK2Stepper", "ScipyStepper", "step_factor",
    "SAFETY", "MIN_FACTOR", "MAX_FACTOR", "BAD_STATE_FACTOR", "MIN_RELATIVE_STEP",
]
