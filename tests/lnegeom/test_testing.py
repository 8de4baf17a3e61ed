"""The public ``lnegeom.testing`` module: strategies keep their promises, assertions can fail.

* strategies: SPD spectra, positive definiteness everywhere (on sample points,
  against the stated Weyl bounds), torch = numpy evaluation, periodicity,
  L² norm / symmetry / bandwidth of perturbations (checked by FFT),
  invertibility of coordinate maps (Jacobian bound, inverse round trip);
* assertion helpers: each one raises ``AssertionError`` naming the right
  identity, the point and the index on a deliberately broken input, and is
  sharp enough to see a corruption of 1e-6 relative.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from torch.func import jacfwd

from lnegeom import Curvature, MetricField
from lnegeom.testing import (
    CoordinateMap,
    SmoothMetric,
    assert_backends_agree,
    assert_contracted_bianchi,
    assert_coordinate_invariance,
    assert_curvature_identities,
    assert_ricci_symmetric,
    assert_riemann_symmetries,
    assert_scaling,
    coordinate_maps,
    grid_metric_fields,
    l2_norm,
    metric_fields,
    perturbations,
    points,
    smooth_metrics,
    spd_matrices,
)


# ------------------------------------------------------------------ strategies
@given(n=st.integers(1, 4), data=st.data())
def test_spd_matrices_spectrum(n, data):
    lo = data.draw(st.floats(0.1, 2.0), label="lo")
    hi = data.draw(st.floats(lo, 10.0), label="hi")
    a = data.draw(spd_matrices(n, min_eig=lo, max_eig=hi), label="a")
    assert a.shape == (n, n) and a.dtype == np.float64
    assert np.array_equal(a, a.T)
    lam = np.linalg.eigvalsh(a)
    assert lam[0] >= lo * (1 - 1e-12) and lam[-1] <= hi * (1 + 1e-12)


@given(n=st.integers(1, 4), amplitude=st.floats(0.0, 0.95), data=st.data())
def test_smooth_metrics_positive_definite_everywhere(n, amplitude, data):
    s = data.draw(smooth_metrics(n, amplitude=amplitude, min_eig=0.3, max_eig=3.0), label="s")
    lo, hi = s.eigenvalue_bounds
    assert lo >= (1 - amplitude) * 0.3 * (1 - 1e-12) and hi <= (1 + amplitude) * 3.0 * (1 + 1e-12)
    # far-apart points as well as the unit box: the bound holds on all of ℝⁿ
    x = np.concatenate([data.draw(points(n, count=16), label="x"),
                        data.draw(points(n, count=16, low=-1e3, high=1e3), label="far")])
    g = s.evaluate(x)
    assert np.array_equal(g, np.swapaxes(g, -1, -2))
    lam = np.linalg.eigvalsh(g)
    assert lam.min() >= lo - 1e-12 and lam.max() <= hi + 1e-12 and lam.min() > 0


@given(s=smooth_metrics(3), x=points(3, count=4, low=-5, high=5))
def test_smooth_metric_backends_and_repr_describe_one_field(s, x):
    g_np = s.evaluate(x)
    g_t = torch.func.vmap(s.torch_fn)(torch.as_tensor(x))
    np.testing.assert_allclose(g_t.numpy(), g_np, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(s.numpy(x), g_np, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(s.torch(x).numpy(), g_np, rtol=1e-13, atol=1e-13)
    again = eval(repr(s), {"SmoothMetric": SmoothMetric})  # the repr reproduces the field exactly
    assert np.array_equal(again.evaluate(x), g_np)


@given(s=smooth_metrics(3), x=points(3, count=3, low=-3, high=3))
def test_smooth_metric_derivative_bounds(s, x):
    g, dg, d2g = s.torch.derivatives(x)
    assert np.abs(dg.numpy()).max() <= s.derivative_bound(1) + 1e-12
    assert np.abs(d2g.numpy()).max() <= s.derivative_bound(2) + 1e-12


def test_metric_fields_backend_and_dtype():
    @settings(max_examples=3)
    @given(metric_fields(2), metric_fields(2, backend="numpy"), metric_fields(2, dtype=torch.float32))
    def check(a, b, c):
        assert isinstance(a, MetricField) and a.backend == "torch" and a.dtype == torch.float64
        assert b.backend == "numpy" and c.dtype == torch.float32
        assert c(np.zeros((1, 2))).dtype == torch.float32
        assert a.name.startswith("SmoothMetric(")

    check()


@given(L=st.floats(0.5, 5.0), data=st.data())
def test_periodic_smooth_metrics_are_periodic(L, data):
    s = data.draw(smooth_metrics(2, period=L, bandwidth=2), label="s")
    assert s.profiles == ("cos",) * len(s.profiles)
    x = data.draw(points(2, count=4), label="x")
    shift = data.draw(st.lists(st.integers(-3, 3), min_size=2, max_size=2), label="shift")
    np.testing.assert_allclose(s.evaluate(x + L * np.array(shift)), s.evaluate(x), atol=1e-10)


def _fft_support(field: np.ndarray, n: int) -> np.ndarray:
    """|FFT| over the spatial axes, maximised over the matrix entries -> [*shape]."""
    return np.abs(np.fft.fftn(field, axes=tuple(range(n)))).max(axis=(-1, -2))


def _wavenumbers(shape):
    return np.stack(np.meshgrid(*[np.fft.fftfreq(N, 1.0 / N) for N in shape], indexing="ij"), axis=-1)


@given(n=st.integers(1, 3), data=st.data())
def test_grid_metric_fields(n, data):
    N, B = 7, 2
    g = data.draw(grid_metric_fields(n, N, 2.0, bandwidth=B), label="g")
    assert g.shape == (N,) * n + (n, n)
    assert np.linalg.eigvalsh(g).min() > 0
    spec = _fft_support(g, n)
    outside = np.abs(_wavenumbers(g.shape[:n])).max(axis=-1) > B
    assert spec[outside].max(initial=0.0) <= 1e-10 * spec.max()


@given(n=st.integers(1, 3), bandwidth=st.integers(0, 3), zero_mean=st.booleans(),
       norm=st.floats(1e-3, 10.0), L=st.floats(0.5, 4.0), data=st.data())
def test_perturbations_norm_symmetry_bandwidth(n, bandwidth, zero_mean, norm, L, data):
    if zero_mean and bandwidth == 0:
        bandwidth = 1
    shape = tuple(data.draw(st.integers(2 * bandwidth + 1, 2 * bandwidth + 4), label="N") for _ in range(n))
    h = data.draw(perturbations(n, shape, L, l2_norm=norm, bandwidth=bandwidth, zero_mean=zero_mean), label="h")
    assert h.shape == shape + (n, n)
    assert np.array_equal(h, np.swapaxes(h, -1, -2))
    # L² norm (∫ |h|_F² dx)^{1/2}: rectangle rule, and independently by Parseval on the FFT
    assert l2_norm(h, L) == pytest.approx(norm, rel=1e-12)
    hat = np.fft.fftn(h, axes=tuple(range(n)))
    ntot, cell = np.prod(shape), np.prod([L / N for N in shape])
    assert math.sqrt(cell * np.sum(np.abs(hat) ** 2) / ntot) == pytest.approx(norm, rel=1e-12)
    # Fourier content only at |m|_∞ ≤ bandwidth
    spec = np.abs(hat).max(axis=(-1, -2))
    m = np.abs(_wavenumbers(shape)).max(axis=-1)
    assert spec[m > bandwidth].max(initial=0.0) <= 1e-12 * spec.max()
    if zero_mean:
        assert np.abs(h.mean(axis=tuple(range(n)))).max() <= 1e-13 * norm / math.sqrt(L**n)
    # exactness of the rectangle rule: refine the grid by evaluating the same trigonometric
    # polynomial on a twice finer grid (zero padding in Fourier space) -> the same norm
    fine_shape = tuple(2 * N for N in shape)
    pad = np.zeros(fine_shape + (n, n), dtype=complex)
    for idx in itertools.product(*[range(-bandwidth, bandwidth + 1)] * n):
        pad[tuple(q % F for q, F in zip(idx, fine_shape))] = hat[tuple(q % N for q, N in zip(idx, shape))]
    fine = np.fft.ifftn(pad, axes=tuple(range(n))).real * (np.prod(fine_shape) / ntot)
    assert l2_norm(fine, L) == pytest.approx(norm, rel=1e-10)


def test_perturbations_zero_norm_and_bad_grid():
    @settings(max_examples=2)
    @given(perturbations(2, 5, 1.0, l2_norm=0.0))
    def zero(h):
        assert not h.any()

    zero()
    with pytest.raises(InvalidArgument, match="N >= 2"):
        perturbations(2, 4, 1.0, bandwidth=2).example()


@given(n=st.integers(1, 4), strength=st.floats(0.0, 0.95), data=st.data())
def test_coordinate_maps_are_diffeomorphisms(n, strength, data):
    phi = data.draw(coordinate_maps(n, strength=strength), label="phi")
    assert phi.strength <= strength * (1 + 1e-12)
    lo, hi = phi.jacobian_singular_value_bounds
    sv_a = np.linalg.svd(phi.linear, compute_uv=False)
    assert lo >= (1 - strength) * sv_a[-1] * (1 - 1e-12) > 0
    x = np.concatenate([data.draw(points(n, count=8, low=-3, high=3), label="x"),
                        data.draw(points(n, count=4, low=-1e3, high=1e3), label="far")])
    sv = np.linalg.svd(phi.jacobian(x), compute_uv=False)
    assert sv.min() >= lo * (1 - 1e-12) and sv.max() <= hi * (1 + 1e-12)
    # the analytic Jacobian is the one torch differentiates, and torch = numpy
    xt = torch.as_tensor(x)
    np.testing.assert_allclose(torch.func.vmap(jacfwd(phi))(xt).numpy(), phi.jacobian(x), atol=1e-12)
    np.testing.assert_allclose(phi(xt).numpy(), phi(x), rtol=1e-14, atol=1e-12)
    # invertible: the Banach iteration of CoordinateMap.inverse recovers x
    y = phi(x)
    np.testing.assert_allclose(phi.inverse(y), x, rtol=1e-10, atol=1e-10)


@given(count=st.integers(1, 5), lo=st.floats(-10, 0), width=st.floats(0, 10), data=st.data())
def test_points_in_box(count, lo, width, data):
    x = data.draw(points(3, count=count, low=lo, high=lo + width), label="x")
    assert x.shape == (count, 3) and x.dtype == np.float64
    assert (x >= lo).all() and (x <= lo + width).all()


def test_invalid_arguments_are_rejected_eagerly():
    with pytest.raises(InvalidArgument, match="amplitude"):
        smooth_metrics(2, amplitude=1.0)
    with pytest.raises(InvalidArgument, match="strength"):
        coordinate_maps(2, strength=1.0)
    with pytest.raises(InvalidArgument, match="min_eig"):
        spd_matrices(2, min_eig=0.0)
    with pytest.raises(InvalidArgument, match="zero_mean"):
        perturbations(2, 5, 1.0, bandwidth=0, zero_mean=True)


# ------------------------------------------------- assertions on broken input
S2 = SmoothMetric(
    base=[[1.5, 0.2], [0.2, 1.0]], coefficients=[0.3, -0.2],
    directions=[[[1.0, 0.0], [0.0, -1.0]], [[0.0, 1.0], [1.0, 0.0]]],
    wavevectors=[[1.0, 0.5], [-0.3, 1.2]], phases=[0.1, 0.7], profiles=("cos", "tanh"),
)
S4 = SmoothMetric(
    base=np.diag([1.0, 1.5, 2.0, 1.2]), coefficients=[0.3, 0.25],
    directions=[np.eye(4)[::-1] / 1.0, np.diag([1.0, -1.0, 0.5, 0.0])],
    wavevectors=[[1.0, 0.5, -0.2, 0.3], [0.1, -0.7, 0.9, 0.4]], phases=[0.3, 1.1], profiles=("cos", "cos"),
)
X2 = np.array([[0.3, -0.4], [1.1, 0.2]])
X4 = np.array([[0.2, -0.1, 0.5, 0.3]])


def _copy(c: Curvature, **changes) -> Curvature:
    fields = dict(g=c.g, g_inv=c.g_inv, christoffel=c.christoffel, riemann=c.riemann, ricci=c.ricci, scalar=c.scalar)
    fields.update(changes)
    return Curvature(**fields)


def test_helpers_pass_on_correct_input():
    assert_curvature_identities(S2.torch, X2, phi=lambda x: x + 0.2 * torch.sin(x.flip(0)), other=S2.numpy)
    assert_riemann_symmetries(S4.torch.curvature(X4), X4)


def test_corrupted_riemann_antisymmetry_is_named_with_point_and_index():
    c = S2.torch.curvature(X2)
    r = c.riemann.clone()
    r[1, 0, 0, 1, 1] += 1e-3  # R^0_011 at the second point, without its partner R^0_101
    with pytest.raises(AssertionError) as err:
        assert_riemann_symmetries(_copy(c, riemann=r), X2)
    msg = str(err.value)
    assert "Riemann antisymmetry in (i, j) fails at x = [1.1, 0.2]" in msg
    assert "max |R_mijk + R_mjik| = " in msg
    assert "index (m,i,j,k) = (" in msg


def test_broken_first_bianchi_only():
    # add ε_mijk (totally antisymmetric, n = 4): it has both antisymmetries and the pair
    # symmetry of Riemann, but its cyclic sum is 3ε ≠ 0 -> only the first Bianchi identity fails
    c = S4.torch.curvature(X4)
    eps = np.zeros((4, 4, 4, 4))
    for p in itertools.permutations(range(4)):
        eps[p] = np.linalg.det(np.eye(4)[list(p)])
    low_extra = torch.as_tensor(1e-6 * eps)
    r = c.riemann + torch.einsum("...lm,mijk->...lijk", c.g_inv, low_extra)
    with pytest.raises(AssertionError) as err:
        assert_riemann_symmetries(_copy(c, riemann=r), X4)
    msg = str(err.value)
    assert msg.startswith("first Bianchi identity fails at x = [0.2, -0.1, 0.5, 0.3]")
    assert "max |R^l_ijk + R^l_jki + R^l_kij| = " in msg and "(l,i,j,k) = (" in msg
    assert "antisymmetry" not in msg and "pair symmetry" not in msg


def test_broken_pair_symmetry():
    # a tensor antisymmetric in (i,j) and in (m,k) but not pair-symmetric
    c = S4.torch.curvature(X4)
    a = np.zeros((4, 4))
    a[0, 1], a[1, 0] = 1.0, -1.0
    b = np.zeros((4, 4))
    b[2, 3], b[3, 2] = 1.0, -1.0
    low = np.einsum("mk,ij->mijk", a, b)  # A_mk B_ij: antisymmetric in both pairs, A ≠ B
    r = c.riemann + torch.einsum("...lm,mijk->...lijk", c.g_inv, torch.as_tensor(1e-5 * low))
    with pytest.raises(AssertionError, match=r"Riemann pair symmetry fails .*max \|R_mijk - R_jkmi\|"):
        assert_riemann_symmetries(_copy(c, riemann=r), X4)


def test_tolerance_is_sharp():
    # a corruption of 1e-6 relative to max|R| is caught (the float64 default rtol is 1e-10)
    c = S2.torch.curvature(X2)
    r = c.riemann.clone()
    r[0, 1, 0, 1, 0] += 1e-6 * float(c.riemann.abs().max())
    with pytest.raises(AssertionError, match="Riemann antisymmetry in"):
        assert_riemann_symmetries(_copy(c, riemann=r), X2)


def test_non_finite_riemann_is_reported():
    c = S2.torch.curvature(X2)
    r = c.riemann.clone()
    r[0, 0, 0, 1, 1] = float("nan")
    with pytest.raises(AssertionError, match="not finite"):
        assert_riemann_symmetries(_copy(c, riemann=r), X2)


def test_ricci_asymmetry_named():
    c = S2.torch.curvature(X2)
    ric = c.ricci.clone()
    ric[0, 0, 1] += 1e-4
    expected = r"Ricci symmetry fails at x = \[0.3, -0.4\]: max \|Ric_jk - Ric_kj\| = 1.000e-04"
    with pytest.raises(AssertionError, match=expected):
        assert_ricci_symmetric(_copy(c, ricci=ric), X2)


class _WrongDivergence(MetricField):
    def ricci_divergence(self, x):
        div, half_dr = super().ricci_divergence(x)
        return div, half_dr * 1.001  # as if ∂R had a wrong factor


class _WrongScaling(MetricField):
    def scaled(self, c2):
        return super().scaled(c2**1.01)  # as if scaled() used c^2.02


class _WrongPullback(MetricField):
    def pullback(self, phi, name=None):
        fn = self.fn

        def pulled(x):
            J = jacfwd(phi)(x)
            return J @ fn(phi(x)) @ J.T  # Jacobian on the wrong side

        return MetricField(pulled, self.n)


def test_broken_contracted_bianchi_named():
    g = _WrongDivergence(S2.torch_callable(), 2)
    with pytest.raises(AssertionError, match=r"contracted second Bianchi identity fails at x = \[.*index \(k\)"):
        assert_contracted_bianchi(g, X2)


def test_broken_scaling_named():
    g = _WrongScaling(S2.torch_callable(), 2)
    with pytest.raises(AssertionError, match=r"scaling identity R\(c\^2 g\) = R\(g\)/c\^2 \(c = 2\) fails"):
        assert_scaling(g, X2, 2.0)


def test_broken_pullback_named():
    g = _WrongPullback(S2.torch_callable(), 2)
    phi = CoordinateMap(linear=[[1.0, 0.8], [0.0, 1.0]], shift=[0.0, 0.0],
                        amplitudes=[[0.1, 0.2]], wavevectors=[[1.0, -1.0]], phases=[0.0])
    with pytest.raises(AssertionError, match=r"coordinate invariance of the scalar curvature .* fails at x = \["):
        assert_coordinate_invariance(g, phi, X2)


def test_backends_disagreeing_named():
    other = SmoothMetric(S2.base, S2.coefficients * (1 + 1e-3), S2.directions, S2.wavevectors, S2.phases, S2.profiles)
    with pytest.raises(AssertionError, match=r"backend agreement on Riemann \(torch/float64 vs numpy/float64\) fails"):
        assert_backends_agree(S2.torch, other.numpy, X2)


def test_all_failures_reported_together():
    g = _WrongScaling(S2.torch_callable(), 2)
    other = SmoothMetric(S2.base, S2.coefficients * 1.01, S2.directions, S2.wavevectors, S2.phases, S2.profiles)
    with pytest.raises(AssertionError) as err:
        assert_curvature_identities(g, X2, other=other.torch)
    msg = str(err.value)
    assert "curvature identities fail:" in msg
    assert "scaling identity" in msg and "backend agreement on Riemann" in msg
    assert "first Bianchi" not in msg and "contracted second Bianchi" not in msg
