"""lnegeom: a geometry-first toolkit for LNE metrics, curvature and Ricci flow.

Conventions (docs/math.md §1): Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij),
R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp,
Ric_jk = R^p_pjk, R = g^jk Ric_jk (unit 2-sphere: R = +2).

The main objects: :class:`MetricField` (numeric, torch autodiff or numpy),
:class:`~lnegeom.symbolic.SymbolicMetric` (sympy; imported lazily from
``lnegeom.symbolic``), :class:`~lnegeom.lne.LNEMetric` and
:class:`~lnegeom.lne.HessianMetric` (the LNE construction); the flows:
:func:`solve_flow` on a :class:`Torus` or a :class:`Box`, and
:func:`~lnegeom.linearize.decay_rates` for the linearised spectrum.
"""

from .box import Box
from .curvature import Curvature, MetricError, curvature_from_derivatives
from .domains import Torus
from .flow import FlowResult, solve_flow
from .lne import HessianMetric, LNEMetric, LNEMetricError
from .metric import MetricField

__version__ = "0.1.0"
__all__ = [
    "Box",
    "Curvature",
    "FlowResult",
    "HessianMetric",
    "LNEMetric",
    "LNEMetricError",
    "MetricError",
    "MetricField",
    "Torus",
    "curvature_from_derivatives",
    "solve_flow",
    "__version__",
]
