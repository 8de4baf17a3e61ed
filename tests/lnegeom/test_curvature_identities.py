"""Curvature identities, property-tested over random smooth metrics and points.

Every identity of docs/math.md §1's curvature is checked on metrics drawn by
:func:`lnegeom.testing.metric_fields` / :func:`lnegeom.testing.smooth_metrics`
(positive definite everywhere by construction) at points of a box, through
the public assertion helpers of :mod:`lnegeom.testing` (this suite is their
first user; tests/lnegeom/test_testing.py shows that they do fail on broken input).

Tolerances are those of the helpers (module docstring of lnegeom.testing):
rtol 1e-10 · (size of the terms summed) in float64, where the observed
round-off is ~1e-15; the finite-difference backend adds its error model.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lnegeom.testing import (
    assert_backends_agree,
    assert_contracted_bianchi,
    assert_coordinate_invariance,
    assert_curvature_identities,
    assert_ricci_symmetric,
    assert_riemann_symmetries,
    assert_scaling,
    coordinate_maps,
    metric_fields,
    points,
    smooth_metrics,
)

DIMS = [2, 3, 4]
BOX = dict(low=-2.0, high=2.0)


def share(fraction: float) -> settings:
    """A fraction of the active hypothesis profile's example budget (ci/dev/nightly), at least 3."""
    return settings(max_examples=max(3, int(settings.default.max_examples * fraction)))


@pytest.mark.parametrize("n", DIMS)
@given(data=st.data())
def test_riemann_symmetries_and_first_bianchi(n, data):
    # R_mijk = -R_mjik = -R_kijm, R_mijk = R_jkmi, R^l_ijk + R^l_jki + R^l_kij = 0
    g = data.draw(metric_fields(n), label="g")
    x = data.draw(points(n, count=3, **BOX), label="x")
    assert_riemann_symmetries(g, x)


@pytest.mark.parametrize("n", DIMS)
@given(data=st.data())
def test_ricci_symmetric(n, data):
    g = data.draw(metric_fields(n), label="g")
    x = data.draw(points(n, count=3, **BOX), label="x")
    assert_ricci_symmetric(g, x)


@pytest.mark.parametrize("n", DIMS)
@share(0.5)
@given(data=st.data())
def test_contracted_second_bianchi(n, data):
    # ∇^j Ric_jk = ½ ∂_k R (third derivatives of g by nested forward-mode autodiff)
    g = data.draw(metric_fields(n), label="g")
    x = data.draw(points(n, count=2, **BOX), label="x")
    assert_contracted_bianchi(g, x)


@pytest.mark.parametrize("n", DIMS)
@given(data=st.data())
def test_scaling(n, data):
    # R(c² g) = R(g) / c², Ric(c² g) = Ric(g)
    g = data.draw(metric_fields(n), label="g")
    x = data.draw(points(n, count=2, **BOX), label="x")
    c = data.draw(st.floats(0.25, 4.0), label="c")
    assert_scaling(g, x, c)


@pytest.mark.parametrize("n", [2, 3])
@given(data=st.data())
def test_scaling_finite_difference_backend(n, data):
    g = data.draw(metric_fields(n, backend="numpy"), label="g")
    x = data.draw(points(n, count=1, **BOX), label="x")
    assert_scaling(g, x, 3.0)


@pytest.mark.parametrize("n", DIMS)
@share(0.5)
@given(data=st.data())
def test_coordinate_invariance(n, data):
    # R_{φ*g}(x) = R_g(φ(x)) and Ric_{φ*g}(x) = Jᵀ Ric_g(φ(x)) J for diffeomorphisms φ
    g = data.draw(metric_fields(n), label="g")
    phi = data.draw(coordinate_maps(n, strength=0.8), label="phi")
    x = data.draw(points(n, count=2, **BOX), label="x")
    assert_coordinate_invariance(g, phi, x)


@pytest.mark.parametrize("n", DIMS)
@share(0.5)
@given(data=st.data())
def test_numpy_finite_differences_agree_with_torch_autodiff(n, data):
    # tolerance: see assert_backends_agree (FD round-off ~5 ε|g|/h² on ∂²g, carried by g⁻¹)
    s = data.draw(smooth_metrics(n), label="s")
    x = data.draw(points(n, count=2, **BOX), label="x")
    assert_backends_agree(s.torch, s.numpy, x)


@pytest.mark.parametrize("n", DIMS)
@share(0.5)
@given(data=st.data())
def test_float32_agrees_loosely_with_float64(n, data):
    s = data.draw(smooth_metrics(n), label="s")
    x = data.draw(points(n, count=2, **BOX), label="x")
    # absolute term: float32 derivatives of a saturated tanh carry an *absolute* error ~ ε₃₂ times
    # the unsaturated derivative size, so R may be off by ~ ε₃₂ n |g⁻¹| (|∂²g| + |g⁻¹| |∂g|²)
    lo, _ = s.eigenvalue_bounds
    size = n * (s.derivative_bound(2) / lo + (s.derivative_bound(1) / lo) ** 2)
    atol = 1e-4 * n * size / lo
    assert_backends_agree(s.torch, s.field("torch", dtype=torch.float32), x, atol=atol)


@pytest.mark.parametrize("n", [2, 3])
@given(data=st.data())
def test_float32_identities(n, data):
    g = data.draw(metric_fields(n, dtype=torch.float32), label="g")
    x = data.draw(points(n, count=2, **BOX), label="x")
    assert_riemann_symmetries(g, x)
    assert_ricci_symmetric(g, x)


@pytest.mark.parametrize("n", [2, 3])
@share(0.5)
@given(data=st.data())
def test_float32_coordinate_invariance(n, data):
    # also a regression test: MetricField.pullback once produced a float32 metric that was
    # asymmetric at 1e-7 and rejected by its own symmetry check
    s = data.draw(smooth_metrics(n), label="s")
    phi = data.draw(coordinate_maps(n, strength=0.5), label="phi")
    x = data.draw(points(n, count=2, **BOX), label="x")
    lo, _ = s.eigenvalue_bounds
    size = n * (s.derivative_bound(2) / lo + (s.derivative_bound(1) / lo) ** 2)
    g32 = s.field("torch", dtype=torch.float32)
    # float32 round-off (relative ~1e-7, amplified by cond g and by the Jacobian of phi), plus the
    # absolute error of float32 derivatives of a saturated tanh (see test_float32_agrees_loosely...)
    assert_coordinate_invariance(g32, phi, x, atol=1e-3 * n * size / lo)


@share(0.25)
@given(data=st.data())
def test_all_identities_together(data):
    s = data.draw(smooth_metrics(3), label="s")
    phi = data.draw(coordinate_maps(3), label="phi")
    x = data.draw(points(3, count=2, **BOX), label="x")
    assert_curvature_identities(s.torch, x, phi=phi, other=s.numpy, c=0.5)


def test_identities_on_the_round_sphere():
    # a fixed, curved example (R = 2 on the unit 2-sphere, docs/math.md §1) alongside the random ones
    from lnegeom import MetricField

    sphere = MetricField(
        lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2
    )
    x = np.array([[0.7, 0.1], [1.9, -2.0]])
    np.testing.assert_allclose(sphere.scalar(x).numpy(), 2.0, atol=1e-12)
    assert_curvature_identities(sphere, x, phi=lambda y: torch.stack([y[0] + 0.2 * torch.sin(y[1]), y[1]]))
