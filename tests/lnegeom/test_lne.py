"""The LNE construction (docs/math.md §2): potential, Bregman divergence, H and g = I − t tᵀ.

Every closed form in :mod:`lnegeom.lne` is checked against an independent
computation: dense numpy linear algebra for the inverse, the weak
approximation and the spectrum; the generic autodiff curvature path
(``MetricField.curvature``, full Riemann tensor from torch.func derivatives)
for the O(n) Ricci tensor and scalar curvature.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lnegeom.curvature import MetricError
from lnegeom.lne import (
    HessianMetric,
    LNEMetric,
    LNEMetricError,
    bregman,
    mirror_map,
    potential,
    taylor_discrepancy,
)

# --------------------------------------------------------------------------- strategies
taus = st.floats(0.1, 3.0)


@st.composite
def admissible(draw, n_min: int = 1, n_max: int = 8, batch: int = 1, s_max: float = 0.97):
    """(tau, xi[batch, n]) with s = |tanh(tau xi)|² < 1 chosen directly: t = √s₀ z/|z|, ξ = artanh(t)/τ."""
    n = draw(st.integers(n_min, n_max))
    tau = draw(taus)
    rows = []
    for _ in range(batch):
        z = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n)))
        if np.linalg.norm(z) < 1e-3:
            z = np.ones(n)
        s0 = draw(st.floats(0.0, s_max))
        t = math.sqrt(s0) * z / np.linalg.norm(z)
        rows.append(np.arctanh(t) / tau)
    return tau, np.array(rows)


def _point(n: int, tau: float, s0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    return np.arctanh(math.sqrt(s0) * z / np.linalg.norm(z)) / tau


# --------------------------------------------------------------------------- P-14, P-15
def test_potential_and_mirror_map():
    xi = np.array([[0.3, -1.2, 2.0], [0.0, 5.0, -0.7]])
    tau = 0.8
    naive = np.sum(np.log(np.cosh(tau * xi)), axis=-1) / tau**2
    np.testing.assert_allclose(potential(xi, tau), naive, rtol=1e-14)
    # ∇Φ = tanh(τξ)/τ, by autograd of the torch path
    x = torch.tensor(xi, requires_grad=True)
    potential(x, tau).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), mirror_map(xi, tau), rtol=1e-14)
    # no overflow where cosh does: log cosh x ≈ |x| − log 2
    big = potential(np.array([1e4, -1e4]), 1.0)
    assert np.isfinite(big) and abs(big - (2e4 - 2 * math.log(2))) < 1e-9


@given(admissible(batch=2, s_max=0.99), st.floats(-3, 3))
def test_bregman_matches_definition(case, scale):
    tau, xi = case
    xn = xi + scale * np.roll(xi, 1, axis=0) + 0.1 * scale
    phi = lambda z: np.sum(np.log(np.cosh(tau * z)), axis=-1) / tau**2  # noqa: E731
    naive = phi(xn) - phi(xi) - np.sum(np.tanh(tau * xi) / tau * (xn - xi), axis=-1)
    d = bregman(xn, xi, tau)
    assert np.all(d >= 0)
    np.testing.assert_allclose(d, naive, rtol=1e-9, atol=1e-12 * (1 + np.abs(phi(xn)).max()))


def test_bregman_small_difference_keeps_relative_accuracy():
    # D[ξ + εv : ξ] = ½ ε² vᵀHv (1 + O(ε)); the naive difference of potentials
    # would lose everything at ε = 1e-9 (terms of size 1, result 1e-18).
    tau, xi, v = 1.3, np.array([0.4, -0.9, 1.7]), np.array([1.0, 2.0, -0.5])
    hdiag = HessianMetric(tau).diagonal(xi)
    for eps in (1e-5, 1e-7, 1e-9):
        xn = xi + eps * v
        dv = xn - xi  # the step actually represented (exact subtraction)
        d = bregman(xn, xi, tau)
        np.testing.assert_allclose(d, 0.5 * np.sum(hdiag * dv * dv), rtol=10 * eps)
    # float32 too (naive float32 would give 0 or noise)
    d32 = bregman(torch.tensor(xi + 1e-4 * v, dtype=torch.float32), torch.tensor(xi, dtype=torch.float32), tau)
    assert d32.dtype == torch.float32
    exact = float(bregman(np.float32(xi + 1e-4 * v).astype(np.float64), np.float32(xi).astype(np.float64), tau))
    np.testing.assert_allclose(float(d32), exact, rtol=1e-3)


def test_bregman_gradient_by_autograd():
    # ∇_{ξ'} D[ξ' : ξ] = ∇Φ(ξ') − ∇Φ(ξ), through both branches (|τ δ| below and above 1)
    tau = 1.5
    xi = torch.tensor([0.2, -0.4, 3.0, 0.0], dtype=torch.float64)
    xn = torch.tensor([0.2 + 1e-6, 1.5, -2.0, 1e-3], dtype=torch.float64, requires_grad=True)
    bregman(xn, xi, tau).backward()
    expect = (torch.tanh(tau * xn.detach()) - torch.tanh(tau * xi)) / tau
    np.testing.assert_allclose(xn.grad.numpy(), expect.numpy(), rtol=1e-9, atol=1e-15)


def test_bregman_large_steps_do_not_overflow():
    # cosh overflows beyond |x| ≈ 710; here |τξ| reaches 1600
    d = bregman(np.array([500.0, -800.0]), np.array([-300.0, 2.0]), 2.0)
    # per coordinate: log cosh y − log cosh x − (y − x) tanh x, with log cosh z = |z| − log 2 for |z| ≫ 1
    c1 = (1000 - math.log(2)) - (600 - math.log(2)) - 1600 * (-1.0)
    c2 = (1600 - math.log(2)) - math.log(math.cosh(4.0)) + 1604 * math.tanh(4.0)
    np.testing.assert_allclose(d, (c1 + c2) / 4, rtol=1e-12)


# --------------------------------------------------------------------------- Taylor (H vs g)
def test_taylor_orders_hessian_3_lne_2():
    rng = np.random.default_rng(7)
    for tau in (0.5, 1.0, 2.0):
        xi = rng.normal(size=6) * 0.6 / tau
        v = rng.normal(size=6)
        r = taylor_discrepancy(xi, v, tau)
        assert abs(r["order_H"] - 3.0) < 0.15, r["order_H"]
        assert abs(r["order_g"] - 2.0) < 0.15, r["order_g"]
        # g's error is the off-diagonal part of ½ ε² vᵀ(H − g)v = ½ ε² ((t·v)² − Σ t_i² v_i²)
        t = np.tanh(tau * xi)
        lead = 0.5 * abs((t @ v) ** 2 - np.sum(t * t * v * v))
        np.testing.assert_allclose(r["err_g"][-1] / r["eps"][-1] ** 2, lead, rtol=1e-2)


def test_taylor_orders_at_origin_are_4():
    # t = 0: g = H = I and the cubic term −(τ/3) Σ t_i (1 − t_i²) v_i³ vanishes
    r = taylor_discrepancy(np.zeros(4), np.array([1.0, -2.0, 0.5, 1.0]), 1.0)
    assert abs(r["order_H"] - 4.0) < 0.15 and abs(r["order_g"] - 4.0) < 0.15


def test_taylor_single_coordinate_direction_has_no_off_diagonal_weight():
    # v along one axis: vᵀgv = vᵀHv, so g is as good as H (order 3 for both)
    r = taylor_discrepancy(np.array([0.3, -0.5, 0.2]), np.array([0.0, 1.0, 0.0]), 1.0)
    assert abs(r["order_H"] - 3.0) < 0.15 and abs(r["order_g"] - 3.0) < 0.15


# --------------------------------------------------------------------------- g: algebra
@given(admissible(batch=3, s_max=0.99))
def test_inverse_against_numpy(case):
    tau, xi = case
    m = LNEMetric(tau)
    g = m.matrix(xi)
    inv = np.linalg.inv(g)
    scale = np.abs(inv).max()
    np.testing.assert_allclose(m.inverse_matrix(xi), inv, atol=1e-10 * scale)
    v = np.random.default_rng(0).normal(size=xi.shape)
    np.testing.assert_allclose(m.inverse_apply(xi, v), np.einsum("bij,bj->bi", inv, v), atol=1e-10 * scale)


@given(admissible(batch=3, s_max=0.99))
def test_weak_approximation_error_is_exact(case):
    tau, xi = case
    m = LNEMetric(tau)
    v = np.random.default_rng(1).normal(size=xi.shape)
    t = m.t(xi)
    weak = v + t * np.sum(t * v, axis=-1, keepdims=True)
    np.testing.assert_allclose(m.weak_inverse_apply(xi, v), weak, rtol=1e-13, atol=1e-13)
    err_dense = np.einsum(
        "bij,bj->bi", np.linalg.inv(m.matrix(xi)) - (np.eye(xi.shape[-1]) + t[:, :, None] * t[:, None, :]), v
    )
    scale = 1 + np.abs(err_dense).max()
    np.testing.assert_allclose(m.weak_error_apply(xi, v), err_dense, atol=1e-9 * scale)
    np.testing.assert_allclose(
        m.weak_inverse_apply(xi, v) + m.weak_error_apply(xi, v), m.inverse_apply(xi, v), atol=1e-12 * scale
    )


@given(admissible(n_max=6, batch=4, s_max=0.99))
def test_diagonal_dominance_against_dense(case):
    tau, xi = case
    m = LNEMetric(tau)
    g = m.matrix(xi)
    diag = np.abs(np.diagonal(g, axis1=-2, axis2=-1))
    off = np.sum(np.abs(g), axis=-1) - diag
    direct = np.all(diag > off, axis=-1)
    fast = m.is_diagonally_dominant(xi)
    # skip knife-edge cases where the two evaluations round differently
    t = np.abs(m.t(xi))
    margin = np.abs(t.max(-1) * t.sum(-1) - 1) > 1e-12
    np.testing.assert_array_equal(fast[margin], direct[margin])


def test_diagonal_dominance_examples():
    m = LNEMetric(1.0)
    t_small = np.arctanh(np.array([0.3, 0.3, 0.3]))  # |t_i|·‖t‖₁ = 0.27
    t_big = np.arctanh(np.array([0.5, 0.5, 0.5]))  # 0.75 ... still < 1
    t_no = np.arctanh(np.array([0.55, 0.55, 0.55, 0.2]))  # 0.55·1.85 > 1, s = 0.9475 < 1
    assert m.is_diagonally_dominant(np.stack([t_small, t_big])).tolist() == [True, True]
    assert not bool(m.is_diagonally_dominant(t_no))
    assert float(m.s(t_no)) < 1  # positive definite but not dominant: P-29's condition is stronger


@given(admissible(batch=2, s_max=0.99))
def test_spectrum_and_determinant(case):
    tau, xi = case
    m = LNEMetric(tau)
    n = xi.shape[-1]
    s = m.s(xi)
    eig = np.linalg.eigvalsh(m.matrix(xi))
    expect = np.sort(np.concatenate([np.ones((len(s), n - 1)), (1 - s)[:, None]], axis=1), axis=1)
    np.testing.assert_allclose(eig, expect, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m.matrix(xi)), 1 - s, atol=1e-12)


# --------------------------------------------------------------------------- curvature
def _autodiff(m: LNEMetric, xi: np.ndarray):
    c = m.metric_field(xi.shape[-1]).curvature(torch.tensor(xi, dtype=torch.float64))
    return c.ricci.numpy(), c.scalar.numpy()


def _assert_curvature_matches(m: LNEMetric, xi: np.ndarray):
    ric, R = _autodiff(m, xi)
    scale = 1 + np.abs(ric).max()
    np.testing.assert_allclose(m.ricci_matrix(xi), ric, atol=1e-10 * scale)
    np.testing.assert_allclose(m.scalar(xi), R, atol=1e-10 * (1 + np.abs(R).max()))
    v = np.random.default_rng(3).normal(size=xi.shape)
    np.testing.assert_allclose(m.ricci_apply(xi, v), np.einsum("...ij,...j->...i", ric, v), atol=1e-10 * scale * 10)


@pytest.mark.parametrize("n", range(2, 9))
def test_closed_form_ricci_matches_autodiff_fixed_points(n):
    tau = 0.9
    xi = np.stack([_point(n, tau, s0, seed) for seed, s0 in enumerate((0.0, 0.2, 0.6, 0.9, 0.99))])
    _assert_curvature_matches(LNEMetric(tau), xi)


@given(admissible(n_min=2, n_max=8, batch=3))
def test_closed_form_ricci_matches_autodiff(case):
    tau, xi = case
    _assert_curvature_matches(LNEMetric(tau), xi)


@given(admissible(n_min=2, n_max=6, batch=2, s_max=0.99))
def test_scalar_is_gauss_equation(case):
    # independent dense evaluation of R = −(m² − |h|²_g), h = D/√(1 − s), m = tr(g⁻¹h)
    tau, xi = case
    m = LNEMetric(tau)
    gi = np.linalg.inv(m.matrix(xi))
    s = m.s(xi)
    h = HessianMetric(tau).matrix(xi) * tau / np.sqrt(1 - s)[:, None, None]
    gh = gi @ h
    mean = np.trace(gh, axis1=-2, axis2=-1)
    R = -(mean**2 - np.trace(gh @ gh, axis1=-2, axis2=-1))
    np.testing.assert_allclose(m.scalar(xi), R, rtol=1e-9)
    ric = -(mean[:, None, None] * h - h @ gi @ h)
    np.testing.assert_allclose(m.ricci_matrix(xi), ric, rtol=1e-9, atol=1e-9 * np.abs(ric).max())


@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_curvature_at_origin_is_hyperbolic(n, tau):
    m = LNEMetric(tau)
    np.testing.assert_allclose(m.ricci_matrix(np.zeros(n)), -(n - 1) * tau**2 * np.eye(n), atol=1e-14)
    np.testing.assert_allclose(m.scalar(np.zeros(n)), -n * (n - 1) * tau**2, rtol=1e-14, atol=1e-14)


@given(taus, st.floats(-1, 1), st.floats(-1, 1))
def test_two_dimensional_scalar_formula(tau, a, b):
    t = np.array([a, b]) * 0.7
    xi = np.arctanh(t) / tau
    R = -2 * tau**2 * (1 - t[0] ** 2) * (1 - t[1] ** 2) / (1 - t @ t) ** 2
    np.testing.assert_allclose(LNEMetric(tau).scalar(xi), R, rtol=1e-11)


def test_lne_metric_is_not_ricci_flat_and_hessian_metric_is_flat():
    rng = np.random.default_rng(5)
    for n in (2, 3, 5):
        xi = np.stack([_point(n, 1.2, s0, k) for k, s0 in enumerate((0.1, 0.5, 0.8))])
        ric, R = _autodiff(LNEMetric(1.2), xi)
        assert np.all(R < -1e-3)  # strictly negative: not Ricci-flat (cf. the paper's Section 4.1)
        assert np.abs(ric).max() > 1e-2
        hx = torch.tensor(rng.normal(size=(4, n)), dtype=torch.float64)
        c = HessianMetric(1.2).metric_field(n).curvature(hx)
        assert float(c.riemann.abs().max()) < 1e-12
        assert float(c.scalar.abs().max()) < 1e-12


def test_hessian_metric_basics():
    h = HessianMetric(2.0)
    xi = np.array([[0.1, -0.4, 30.0]])
    np.testing.assert_allclose(h.diagonal(xi), 1 - np.tanh(2 * xi) ** 2, atol=1e-15)
    assert h.diagonal(np.array([400.0]))[0] == 0.0  # no overflow warning/NaN
    np.testing.assert_allclose(h.matrix(xi)[0], np.diag(h.diagonal(xi)[0]))
    v = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(h.inverse_apply(xi[:, :2], v[:, :2]), v[:, :2] * np.cosh(2 * xi[:, :2]) ** 2)
    np.testing.assert_allclose(h.metric_field(3)(xi).numpy(), h.matrix(xi), atol=1e-15)


# --------------------------------------------------------------------------- backends, batches, dtypes
def _all_outputs(m: LNEMetric, xi, v, tau):
    return {
        "potential": potential(xi, tau),
        "mirror_map": mirror_map(xi, tau),
        "bregman": bregman(xi + 0.3 * v, xi, tau),
        "H.diagonal": HessianMetric(tau).diagonal(xi),
        "H.matrix": HessianMetric(tau).matrix(xi),
        "t": m.t(xi),
        "s": m.s(xi),
        "check": m.check(xi),
        "matrix": m.matrix(xi),
        "inverse_apply": m.inverse_apply(xi, v),
        "inverse_matrix": m.inverse_matrix(xi),
        "weak_inverse_apply": m.weak_inverse_apply(xi, v),
        "weak_error_apply": m.weak_error_apply(xi, v),
        "is_diagonally_dominant": m.is_diagonally_dominant(xi),
        "ricci_parts": m.ricci_parts(xi),
        "ricci_parts_and_scalar": m.ricci_parts_and_scalar(xi),
        "ricci_apply": m.ricci_apply(xi, v),
        "ricci_matrix": m.ricci_matrix(xi),
        "scalar": m.scalar(xi),
    }


def _compare(a, b, name):
    if isinstance(a, tuple):
        for k, (x, y) in enumerate(zip(a, b)):
            _compare(x, y, f"{name}[{k}]")
        return
    assert torch.is_tensor(b), name
    bn = b.detach().cpu().numpy()
    assert bn.shape == np.shape(a), name
    if bn.dtype == bool:
        np.testing.assert_array_equal(bn, a, err_msg=name)
    else:
        np.testing.assert_allclose(bn, a, rtol=1e-12, atol=1e-12, err_msg=name)


@given(admissible(batch=2, s_max=0.95))
def test_numpy_equals_torch_for_every_function(case):
    tau, xi = case
    v = np.random.default_rng(2).normal(size=xi.shape)
    m = LNEMetric(tau)
    out_np = _all_outputs(m, xi, v, tau)
    out_t = _all_outputs(m, torch.tensor(xi), torch.tensor(v), tau)
    for k in out_np:
        _compare(out_np[k], out_t[k], k)


@pytest.mark.gpu
def test_numpy_equals_torch_cuda():
    tau, n = 0.7, 6
    xi = np.stack([_point(n, tau, s0, k) for k, s0 in enumerate((0.0, 0.3, 0.9))])
    v = np.random.default_rng(4).normal(size=xi.shape)
    m = LNEMetric(tau)
    out_np = _all_outputs(m, xi, v, tau)
    out_t = _all_outputs(m, torch.tensor(xi, device="cuda"), torch.tensor(v, device="cuda"), tau)
    for k in out_np:
        _compare(out_np[k], out_t[k], k)


@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_batch_shapes(batch):
    n, tau = 5, 0.6
    rng = np.random.default_rng(6)
    xi = rng.normal(size=(*batch, n)) * 0.3
    v = rng.normal(size=(*batch, n))
    m = LNEMetric(tau)
    out = _all_outputs(m, xi, v, tau)
    vec = (*batch, n)
    mat = (*batch, n, n)
    shapes = {
        "potential": batch, "mirror_map": vec, "bregman": batch, "H.diagonal": vec, "H.matrix": mat,
        "t": vec, "s": batch, "check": batch, "matrix": mat, "inverse_apply": vec, "inverse_matrix": mat,
        "weak_inverse_apply": vec, "weak_error_apply": vec, "is_diagonally_dominant": batch,
        "ricci_apply": vec, "ricci_matrix": mat, "scalar": batch,
    }
    for k, shape in shapes.items():
        assert np.shape(out[k]) == shape, k
    a, beta, u = out["ricci_parts"]
    assert a.shape == vec and np.shape(beta) == batch and u.shape == vec
    assert np.shape(out["ricci_parts_and_scalar"][3]) == batch
    # batched results equal the per-point ones
    flat = xi.reshape(-1, n)
    per_point = np.array([m.scalar(p) for p in flat]).reshape(batch)
    np.testing.assert_allclose(out["scalar"], per_point, rtol=1e-13)
    # broadcasting one direction against a batch of points
    if batch:
        v0 = v.reshape(-1, n)[0]
        np.testing.assert_allclose(m.inverse_apply(xi, v0), m.inverse_apply(xi, np.broadcast_to(v0, xi.shape)))


def test_dtypes():
    m = LNEMetric(0.5)
    x32 = torch.randn(4, 7, dtype=torch.float32) * 0.3
    assert m.inverse_apply(x32, torch.randn(4, 7)).dtype == torch.float32
    assert m.scalar(x32).dtype == torch.float32
    x16 = x32.to(torch.bfloat16)
    assert m.s(x16).dtype == torch.float32  # s and 1/(1 − s) in at least float32
    assert m.inverse_apply(x16, x16).dtype == torch.float32
    assert m.s([[1, 2], [0, 1]]).dtype == np.float64  # python ints -> float64
    assert m.s(torch.tensor([1, 2])).dtype == torch.float64
    assert potential(np.float16([0.5, 1.0]), 1.0).dtype == np.float32
    np.testing.assert_allclose(m.scalar(x32).numpy(), m.scalar(x32.double()).numpy(), rtol=1e-4)


def test_large_n_is_linear_memory():
    # n = 2·10⁶: an n×n array would need 32 TB; the O(n) methods must not form it
    n = 2_000_000
    x = torch.randn(n, dtype=torch.float32) * (0.5 / math.sqrt(n))
    m = LNEMetric(1.0)
    g = torch.randn(n, dtype=torch.float32)
    out = m.inverse_apply(x, g)
    assert out.shape == (n,) and torch.isfinite(out).all()
    assert torch.isfinite(m.scalar(x)) and torch.isfinite(m.ricci_apply(x, g)).all()
    s = float(m.s(x))
    # Ric ≈ −(n−1)τ²/(1 − s)·I for τ ≪ 1 (docs/math.md §2): check on the diagonal part
    a, beta, u = m.ricci_parts(x)
    np.testing.assert_allclose(float(a.mean()), -(n - 1) / (1 - s), rtol=1e-3)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_bad_tau(bad):
    for ctor in (LNEMetric, HessianMetric):
        with pytest.raises(ValueError, match="tau"):
            ctor(bad)
    with pytest.raises(ValueError, match="tau"):
        potential(np.zeros(2), bad)
    with pytest.raises(ValueError, match="tau"):
        taylor_discrepancy(np.zeros(2), np.ones(2), bad)


def test_s_at_least_one_names_s_tau_and_admissible_tau():
    m = LNEMetric(2.0)
    xi = np.array([[0.1, 0.1, 0.0], [0.8, -0.9, 0.5]])
    with pytest.raises(LNEMetricError, match=r"s = .*>= 1 with tau = 2.*tau\* = ") as info:
        m.inverse_apply(xi, np.ones(3))
    assert isinstance(info.value, MetricError)
    assert "batch index (1,)" in str(info.value)
    assert "Fix:" in str(info.value)
    tau_star = float(str(info.value).split("tau* = ")[1].split(" ")[0])
    # τ* solves s(τ*) = 1: just below it g is positive definite, just above it is not
    np.testing.assert_allclose(LNEMetric(tau_star).s(xi[1]), 1.0, atol=1e-5)
    LNEMetric(tau_star * 0.999).check(xi)
    np.testing.assert_allclose(m.max_tau(xi[1]), tau_star, rtol=1e-5)
    # every guarded method raises
    for call in (m.inverse_matrix, m.scalar, m.ricci_matrix, m.ricci_parts, m.check):
        with pytest.raises(LNEMetricError):
            call(xi)
    for call in (m.weak_inverse_apply, m.weak_error_apply, m.ricci_apply):
        with pytest.raises(LNEMetricError):
            call(xi, np.ones(3))
    # the dense matrix itself is defined (indefinite) and check=False skips the test
    assert np.linalg.eigvalsh(m.matrix(xi[1]))[0] < 0
    assert np.isfinite(LNEMetric(0.1, check=False).inverse_apply(xi, np.ones(3))).all()


def test_s_at_one_by_rounding_single_coordinate():
    with pytest.raises(LNEMetricError, match="rounding"):
        LNEMetric(1.0).check(torch.tensor([0.0, 40.0], dtype=torch.float64))


def test_nan_and_inf_input_are_named():
    m = LNEMetric(1.0)
    for x in (np.array([0.1, np.nan]), torch.tensor([[0.0, 0.1], [float("nan"), 0.0]]), np.array([np.inf, 0.0, 0.0])):
        with pytest.raises(LNEMetricError, match="NaN"):
            m.check(x)
        with pytest.raises(LNEMetricError, match="NaN"):
            m.scalar(x)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., n\)"):
        LNEMetric(1.0).s(np.float64(0.3))
    with pytest.raises(ValueError, match="one point"):
        taylor_discrepancy(np.zeros((2, 3)), np.ones((2, 3)), 1.0)


# --------------------------------------------------------------------------- symbolic path
def _symbolic_closed_form(n: int):
    """The closed form of lnegeom.lne in sympy (LNEMetric.closed_form_symbolic), τ a symbol."""
    sp = pytest.importorskip("sympy")
    tau = sp.Symbol("tau", positive=True)
    coords = sp.symbols(f"xi1:{n + 1}", real=True)
    ric, scal = LNEMetric.closed_form_symbolic(coords, tau)
    return tau, coords, ric, scal


@pytest.mark.parametrize("n", [2, 3, 4])
def test_closed_form_is_exactly_the_symbolic_curvature(n):
    # exact identity, τ symbolic: SymbolicMetric's Ricci and R minus the closed form ≡ 0 as
    # rational functions of T_i = tanh(τ ξ_i) and τ (the only atoms either side contains)
    pytest.importorskip("lnegeom.symbolic")
    sp = pytest.importorskip("sympy")
    sm = LNEMetric(1.0).symbolic(n)
    tau, coords, ric, scal = _symbolic_closed_form(n)
    T = sp.symbols(f"T1:{n + 1}")
    rep = {sp.tanh(tau * x): Ti for x, Ti in zip(coords, T)}

    def vanishes(expr) -> bool:
        e = sp.sympify(expr).xreplace(rep)
        assert not (e.free_symbols & set(coords)), e.free_symbols
        return sp.cancel(sp.together(e)) == 0

    assert vanishes(sm.scalar() - scal)
    assert not vanishes(sm.scalar() - scal + tau**2 * T[0])  # the comparison is not vacuous
    ric_sym = sm.ricci()
    for i in range(n):
        for j in range(i, n):
            assert vanishes(ric_sym[i, j] - ric[i, j]), (i, j)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_closed_form_matches_symbolic_numerically(n):
    pytest.importorskip("lnegeom.symbolic")
    sp = pytest.importorskip("sympy")
    tau_value = 0.8
    m = LNEMetric(tau_value)
    sm = m.symbolic(n)
    tau = sp.Symbol("tau", positive=True)
    coords = list(sp.symbols(f"xi1:{n + 1}", real=True))
    f_ric = sp.lambdify(coords, sm.ricci().subs(tau, tau_value), "numpy")
    f_scal = sp.lambdify(coords, sp.sympify(sm.scalar()).subs(tau, tau_value), "numpy")
    for k, s0 in enumerate((0.0, 0.3, 0.8, 0.99)):
        xi = _point(n, tau_value, s0, k)
        r_sym = np.array(f_ric(*xi), dtype=np.float64)
        np.testing.assert_allclose(m.ricci_matrix(xi), r_sym, atol=1e-10 * (1 + np.abs(r_sym).max()))
        np.testing.assert_allclose(m.scalar(xi), float(f_scal(*xi)), rtol=1e-10, atol=1e-12)
    # at the origin, R = −n(n − 1)τ² exactly (τ symbolic, and τ substituted)
    r0 = sp.sympify(sm.scalar()).subs({c: 0 for c in coords})
    assert sp.simplify(r0 + n * (n - 1) * tau**2) == 0
    r0_num = sp.sympify(m.symbolic(n, tau_value=True).scalar()).subs({c: 0 for c in coords})
    assert r0_num == -n * (n - 1) * sp.Rational(4, 5) ** 2
