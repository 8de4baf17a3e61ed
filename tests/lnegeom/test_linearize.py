"""The linearised flow operator (lnegeom.linearize): spectrum against the analytic symbol, zero modes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings

from lnegeom.curvature import MetricError
from lnegeom.domains import Torus
from lnegeom.flow import flow_rhs
from lnegeom.linearize import decay_rates, linearized_jacobian, pack_metric, unpack_metric
from lnegeom.testing import spd_matrices

L = 2 * math.pi
A2 = np.array([[1.0, 0.7], [0.7, 1.0]])


def _const(A, T):
    return np.broadcast_to(A, tuple(T.shape) + A.shape).copy()


def _symbol(A, T):
    """kᵀA⁻¹k over every Fourier mode of the grid, each n(n+1)/2 times, ascending (m = 0 first)."""
    n = T.n
    ms = np.stack(np.meshgrid(*[np.fft.fftfreq(N, 1.0 / N) for N in T.shape], indexing="ij"), -1).reshape(-1, n)
    k = 2 * math.pi * ms / np.asarray(T.L)
    return np.sort(np.repeat(np.einsum("qa,ab,qb->q", k, np.linalg.inv(A), k), n * (n + 1) // 2))


def test_pack_unpack_round_trip_and_layout():
    T = Torus(2, 5, L)
    rng = np.random.default_rng(0)
    B = rng.normal(size=(*T.shape, 2, 2))
    g = B + np.swapaxes(B, -1, -2)
    y = pack_metric(g, T)
    assert y.shape == (5 * 5 * 3,)
    assert y[:3].tolist() == [g[0, 0, 0, 0], g[0, 0, 0, 1], g[0, 0, 1, 1]]  # grid-major, pairs i <= j
    assert np.array_equal(unpack_metric(y, T, g), g)
    with pytest.raises(ValueError, match=r"needs \(75,\)"):
        unpack_metric(y[:-1], T, g)


@pytest.mark.parametrize("n,N", [(2, 7), (3, 3)])
def test_constant_metric_spectrum_is_the_symbol_with_multiplicity(n, N):
    # odd N: no Nyquist mode, so every Fourier mode is resolved and the whole spectrum is kᵀA⁻¹k
    A = A2 if n == 2 else np.array([[1.3, 0.2, -0.1], [0.2, 0.8, 0.05], [-0.1, 0.05, 1.1]])
    T = Torus(n, N, [L, 4.0, 5.0][:n])
    spec = decay_rates(_const(A, T), T)
    npairs = n * (n + 1) // 2
    sym = _symbol(A, T)
    assert spec.n_zero == npairs  # counted, not assumed
    assert np.abs(spec.zero_eigenvalues).max() < 1e-12 * np.abs(spec.eigenvalues).max()
    assert spec.rates.size == sym.size - npairs
    assert np.max(np.abs(spec.rates - sym[npairs:]) / sym[npairs:]) < 1e-8
    assert spec.max_imag < 1e-12
    # the slowest mode and its multiplicity: ±m pairs give 2 real modes per component
    slow = spec.slowest
    assert slow == pytest.approx(sym[npairs], rel=1e-8)
    assert np.sum(np.abs(spec.rates - slow) < 1e-8) == np.sum(np.abs(sym - sym[npairs]) < 1e-8)


def test_lowest_rates_on_the_2d_torus_are_the_analytic_symbol():
    T = Torus(2, 7, L)
    spec = decay_rates(_const(A2, T), T, n_zero=3)
    # A⁻¹ = [[1, −0.7], [−0.7, 1]] / 0.51: m = ±(1, 1) → 0.6/0.51 (×6), ±(1, 0), ±(0, 1) → 1/0.51 (×12)
    assert spec.rates[:6] == pytest.approx([0.6 / 0.51] * 6, rel=1e-9)
    assert spec.rates[6:18] == pytest.approx([1 / 0.51] * 12, rel=1e-9)
    assert spec.rates[18] > 1 / 0.51 + 0.5


def test_jacobian_applied_to_a_mode_is_the_laplacian():
    # at δ the linearised Ricci–DeTurck flow is ∂_t h = Δh: J h = −|k|² h for h = cos(k·x) S
    T = Torus(2, 7, L)
    delta = _const(np.eye(2), T)
    J = linearized_jacobian(delta, T)
    x = T.points()
    S = np.array([[0.6, -0.8], [-0.8, 0.3]])
    h = np.cos(x[..., 0] + 2 * x[..., 1])[..., None, None] * S
    Jh = unpack_metric(J @ pack_metric(h, T), T, delta)
    assert np.abs(Jh + 5.0 * h).max() < 1e-8
    # and it is the derivative of flow_rhs along h
    eps = 1e-7
    fd = (flow_rhs(delta + eps * h, T) - flow_rhs(delta - eps * h, T)) / (2 * eps)
    assert np.abs(Jh - fd).max() < 1e-7


def test_even_grid_has_extra_nyquist_zero_modes():
    # on the Nyquist modes the DeTurck term (first derivatives) vanishes: 6 extra neutral modes in 2-D
    T = Torus(2, 8, L)
    spec = decay_rates(_const(A2, T), T)
    assert spec.n_zero == 9
    sym = _symbol(A2, T)  # the resolved modes keep their rates
    assert spec.rates[:6] == pytest.approx([sym[3]] * 6, rel=1e-9)


def test_plain_ricci_flow_has_the_gauge_kernel():
    # linearised Ricci flow at δ: kernel = the gauge directions L_X δ (2 per non-constant mode) + 3 constants
    N = 7
    T = Torus(2, N, L)
    ricci = decay_rates(_const(np.eye(2), T), T, flow="ricci")
    assert ricci.n_zero == 2 * (N * N - 1) + 3
    assert ricci.rates[:4] == pytest.approx([1.0] * 4, rel=1e-9)  # the conformal directions f·δ, rate |k|²
    assert ricci.rates[4] == pytest.approx(2.0, rel=1e-9)


def test_pullback_as_its_own_background_has_the_spectrum_of_the_flat_torus():
    from lnegeom.validate.flow_checks import pullback_of_delta, torus_diffeomorphism

    T = Torus(2, 9, L)
    g = pullback_of_delta(T, torus_diffeomorphism())
    assert np.abs(flow_rhs(g, T, background_christoffel=None)).max() > 1e-3  # background δ: not stationary
    J = linearized_jacobian(g, T, background=g)
    spec = decay_rates(g, T, background=g, jacobian=J)
    assert spec.n_zero == 3
    # φ is an isometry (T², φ*δ) → (T², δ): rates |k|² = 1 (×12), 2 (×12)
    assert spec.rates[:12] == pytest.approx([1.0] * 12, rel=1e-7)
    assert spec.rates[12:24] == pytest.approx([2.0] * 12, rel=1e-7)
    with pytest.raises(ValueError, match="expected 4 zero modes but found 3"):
        decay_rates(g, T, background=g, n_zero=4, jacobian=J)


@settings(max_examples=5, deadline=None)
@given(spd_matrices(2, min_eig=0.4, max_eig=2.5))
def test_random_constant_spd_metric_spectrum(A):
    T = Torus(2, 5, 3.0)
    spec = decay_rates(_const(A, T), T)
    sym = _symbol(A, T)
    assert spec.n_zero == 3
    assert np.max(np.abs(spec.rates - sym[3:]) / sym[3:]) < 1e-8


def test_a_domain_with_pack_and_unpack_is_used():
    calls = {"pack": 0, "unpack": 0}

    class ComponentMajorTorus(Torus):
        """Packs component-major instead of grid-major: the spectrum must not change."""

        def pack(self, g):
            calls["pack"] += 1
            iu = np.triu_indices(self.n)
            return np.moveaxis(g[..., iu[0], iu[1]], -1, 0).reshape(-1)

        def unpack(self, y, like):
            calls["unpack"] += 1
            iu = np.triu_indices(self.n)
            comp = np.moveaxis(y.reshape(len(iu[0]), *self.shape), 0, -1)
            g = np.array(like, dtype=float)
            g[..., iu[0], iu[1]] = comp
            g[..., iu[1], iu[0]] = comp
            return g

    T = ComponentMajorTorus(2, 5, L)
    spec = decay_rates(_const(A2, T), T)
    assert calls["pack"] > 0 and calls["unpack"] > 0
    sym = _symbol(A2, T)
    assert spec.n_zero == 3 and np.max(np.abs(spec.rates - sym[3:]) / sym[3:]) < 1e-8


def test_box_with_held_boundary_has_no_zero_modes_and_the_dirichlet_rate():
    # a box [0, π]² whose boundary is held at δ: the slowest rate is the first Dirichlet eigenvalue
    # n (π/L)² = 2 of each of the 3 components (4th-order finite differences: 2e-3 on 9² points)
    box = pytest.importorskip("lnegeom.box")
    B = box.Box(2, 8, L=math.pi)
    spec = decay_rates(_const(np.eye(2), B), B)
    assert spec.n_zero == 0
    assert spec.rates[:3] == pytest.approx([2.0] * 3, rel=3e-3)
    assert spec.rates[3] > 4.5


def test_bad_input_is_named():
    T = Torus(2, 5, L)
    g = _const(np.eye(2), T)
    with pytest.raises(ValueError, match="unknown flow 'yamabe'"):
        linearized_jacobian(g, T, flow="yamabe")
    with pytest.raises(ValueError, match=r"g_bg must have shape \(5, 5, 2, 2\)"):
        linearized_jacobian(g[:4], T)
    bad = g.copy()
    bad[2, 3] = [[1.0, 0.0], [0.0, -0.5]]
    with pytest.raises(MetricError, match="smallest eigenvalue -0.5"):
        linearized_jacobian(bad, T)
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        linearized_jacobian(g, T, eps=0.0)
    with pytest.raises(ValueError, match="background must be None"):
        linearized_jacobian(g, T, background=np.eye(3))
    with pytest.raises(ValueError, match="dense Jacobian is limited"):
        linearized_jacobian(_const(np.eye(3), Torus(3, 12, L)), Torus(3, 12, L))
