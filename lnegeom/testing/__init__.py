r"""Property-based testing of metrics: hypothesis strategies and curvature assertions.

In the spirit of ``hypothesis.extra.numpy``: this package gives

* **strategies** (:mod:`lnegeom.testing.strategies`) that draw the objects a
  geometry test needs — constant SPD matrices (:func:`spd_matrices`), smooth
  metric fields that are positive definite *everywhere*
  (:func:`smooth_metrics`, :func:`metric_fields`, :func:`grid_metric_fields`),
  band-limited periodic perturbations of a prescribed L² norm
  (:func:`perturbations`), smooth invertible coordinate changes
  (:func:`coordinate_maps`) and points in a box (:func:`points`); the fields
  and maps drawn are the data objects :class:`SmoothMetric` and
  :class:`CoordinateMap` of :mod:`lnegeom.fields` (with :func:`l2_norm`);
* **assertion helpers** (:mod:`lnegeom.testing.assertions`) that check the
  curvature identities of a user's metric and, when one fails, say *which*
  identity, *where* (the point) and *by how much* (the largest residual, the
  tolerance, the tensor index): :func:`assert_riemann_symmetries`,
  :func:`assert_ricci_symmetric`, :func:`assert_contracted_bianchi`,
  :func:`assert_scaling`, :func:`assert_coordinate_invariance`,
  :func:`assert_backends_agree` and :func:`assert_curvature_identities` (all
  of them);
* **differential testing of exact curvature**: :func:`symbolic_metrics` draws
  random sympy metrics (:class:`SymbolicMetricSample` of
  :mod:`lnegeom.testing.samples`, from the grammar of
  :mod:`lnegeom.testing.grammar`: polynomials, rational functions, exp, log,
  sqrt, rational powers, trigonometric and hyperbolic functions and their
  compositions, Riemannian or Lorentzian, non-degenerate on a box) and
  :func:`assert_symbolic_matches_autodiff` compares Γ, Ric and R of
  :class:`~lnegeom.symbolic.SymbolicMetric` with torch autodiff of the same
  matrix at points, naming the metric, point, component and both values.

Every name is importable from ``lnegeom.testing`` itself.

The conventions (docs/math.md §1) and the tolerances of the assertions are
spelled out in :mod:`lnegeom.testing.assertions`.

Example
-------
>>> from hypothesis import given, settings
>>> from lnegeom.testing import metric_fields, points, assert_curvature_identities
>>> @settings(max_examples=3, deadline=None)
... @given(metric_fields(2), points(2))
... def test_identities(g, x):
...     assert_curvature_identities(g, x)
>>> test_identities()
"""

from ..fields import CoordinateMap, SmoothMetric, l2_norm
from .assertions import (
    SymbolicRefusal,
    assert_backends_agree,
    assert_contracted_bianchi,
    assert_coordinate_invariance,
    assert_curvature_identities,
    assert_ricci_symmetric,
    assert_riemann_symmetries,
    assert_scaling,
    assert_symbolic_matches_autodiff,
)
from .samples import SymbolicMetricSample
from .strategies import (
    coordinate_maps,
    grid_metric_fields,
    metric_fields,
    perturbations,
    points,
    smooth_metrics,
    spd_matrices,
    symbolic_metrics,
)

__all__ = [
    # data objects drawn by the strategies
    "SmoothMetric",
    "CoordinateMap",
    "SymbolicMetricSample",
    # strategies
    "spd_matrices",
    "smooth_metrics",
    "metric_fields",
    "grid_metric_fields",
    "perturbations",
    "coordinate_maps",
    "points",
    "symbolic_metrics",
    # utilities
    "l2_norm",
    # assertions
    "assert_riemann_symmetries",
    "assert_ricci_symmetric",
    "assert_contracted_bianchi",
    "assert_scaling",
    "assert_coordinate_invariance",
    "assert_backends_agree",
    "assert_curvature_identities",
    "assert_symbolic_matches_autodiff",
    "SymbolicRefusal",
]
