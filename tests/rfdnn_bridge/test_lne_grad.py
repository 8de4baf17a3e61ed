"""rfdnn_bridge.lne_grad: the LNE natural gradient (docs/math.md §2, §4).

Each O(n) mode is checked against dense float64 linear algebra built from
lnegeom's dense helpers (``LNEMetric.matrix``, ``ricci_matrix``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from lnegeom.lne import LNEMetric, LNEMetricError
from rfdnn_bridge.lne_grad import auto_tau, list_modes, lne_transform

D64 = torch.float64


@st.composite
def problem(draw, rows_max: int = 3, n_max: int = 6, s_max: float = 0.9):
    """(tau, w[rows, n], v[rows, n]) float64 with s < s_max in every row and for the whole tensor."""
    rows = draw(st.integers(1, rows_max))
    n = draw(st.integers(1, n_max))
    tau = draw(st.floats(0.2, 2.0))
    seed = draw(st.integers(0, 2**31 - 1))
    s0 = draw(st.floats(0.0, s_max))
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(rows * n, generator=gen, dtype=D64)
    t = math.sqrt(s0) * z / torch.linalg.vector_norm(z)  # whole-tensor s = s0, so every row too
    w = (torch.atanh(t) / tau).reshape(rows, n)
    v = torch.randn(rows, n, generator=gen, dtype=D64)
    return tau, w, v


def _dense_rows(mat_fn, w, v):
    return torch.stack([torch.linalg.solve(mat_fn(w[i]), v[i]) for i in range(w.shape[0])])


def _groups(w, v, group):
    return (w.reshape(1, -1), v.reshape(1, -1)) if group == "tensor" else (w, v)


# --------------------------------------------------------------------------- identities
@given(problem(), st.sampled_from(["tensor", "channel"]))
def test_exact_matches_dense_solve(p, group):
    tau, w, v = p
    out, diag = lne_transform(v, w, mode="exact", tau=tau, group=group)
    wg, vg = _groups(w, v, group)
    ref = _dense_rows(LNEMetric(tau).matrix, wg, vg).reshape(v.shape)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(diag.s, LNEMetric(tau).s(wg))


@given(problem(), st.sampled_from(["tensor", "channel"]))
def test_exact_minus_weak_is_p29_error(p, group):
    tau, w, v = p
    exact, _ = lne_transform(v, w, mode="exact", tau=tau, group=group)
    weak, _ = lne_transform(v, w, mode="weak", tau=tau, group=group)
    wg, vg = _groups(w, v, group)
    t = torch.tanh(tau * wg)
    s = (t * t).sum(-1, keepdim=True)
    expected = (t * (t * vg).sum(-1, keepdim=True) * s / (1 - s)).reshape(v.shape)
    torch.testing.assert_close(exact - weak, expected, rtol=1e-9, atol=1e-12)


@given(problem(), st.sampled_from(["tensor", "channel"]), st.floats(0.0, 0.5))
def test_curvature_matches_dense_solve(p, group, eta):
    tau, w, v = p
    out, _ = lne_transform(v, w, mode="curvature", tau=tau, group=group, eta=eta)
    m = LNEMetric(tau)
    wg, vg = _groups(w, v, group)
    ref = _dense_rows(lambda x: m.matrix(x) - 2 * eta * m.ricci_matrix(x), wg, vg).reshape(v.shape)
    torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-8)


def test_curvature_auto_tau_uses_tau_squared_scaling():
    """Per-group τ: Ric_τ(w) = τ² Ric_1(τ w) — compare with LNEMetric(τ_g).ricci_matrix row by row."""
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(3, 5, generator=gen, dtype=D64) * torch.tensor([[0.1], [1.0], [4.0]], dtype=D64)
    v = torch.randn(3, 5, generator=gen, dtype=D64)
    out, diag = lne_transform(v, w, mode="curvature", tau="auto", group="channel", eta=0.3)
    for i in range(3):
        m = LNEMetric(float(diag.tau[i]))
        ref = torch.linalg.solve(m.matrix(w[i]) - 0.6 * m.ricci_matrix(w[i]), v[i])
        torch.testing.assert_close(out[i], ref, rtol=1e-8, atol=1e-10)


def test_curvature_eta_zero_is_exact():
    w = torch.randn(4, 3, dtype=D64) * 0.2
    v = torch.randn(4, 3, dtype=D64)
    a, _ = lne_transform(v, w, mode="curvature", tau=1.0, eta=0.0)
    b, _ = lne_transform(v, w, mode="exact", tau=1.0)
    torch.testing.assert_close(a, b)


@given(problem(rows_max=1), st.floats(-3.0, -1e-3))
def test_curvature_backward_flow_pd_check_agrees_with_eigvalsh(p, eta):
    tau, w, v = p
    m = LNEMetric(tau)
    dense = m.matrix(w[0]) - 2 * eta * m.ricci_matrix(w[0])
    lam_min = float(torch.linalg.eigvalsh(dense).min())
    scale = float(torch.linalg.matrix_norm(dense, ord=2))
    if abs(lam_min) < 1e-8 * max(scale, 1.0):
        return  # numerically singular: either answer is acceptable
    if lam_min > 0:
        out, _ = lne_transform(v, w, mode="curvature", tau=tau, eta=eta)
        ref = torch.linalg.solve(dense, v[0])
        torch.testing.assert_close(out[0], ref, rtol=1e-6, atol=1e-6 * float(ref.abs().max()))
    else:
        with pytest.raises(ValueError, match="not positive definite"):
            lne_transform(v, w, mode="curvature", tau=tau, eta=eta)


def test_radial_and_layer_lr_formulas():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(2, 7, generator=gen, dtype=D64)
    v = torch.randn(2, 7, generator=gen, dtype=D64)
    rad, diag = lne_transform(v, w, mode="radial", tau="auto", group="channel")
    s = diag.s[:, None]
    wh = w / torch.linalg.vector_norm(w, dim=-1, keepdim=True)
    torch.testing.assert_close(rad, v + wh * (wh * v).sum(-1, keepdim=True) * s / (1 - s))
    lr, _ = lne_transform(v, w, mode="layer_lr", tau="auto", group="channel")
    ex, _ = lne_transform(v, w, mode="exact", tau="auto", group="channel")
    lam = (v * ex).sum(-1, keepdim=True) / (v * v).sum(-1, keepdim=True)
    torch.testing.assert_close(lr, lam * v)
    assert bool(((lam >= 1) & (lam <= 1 / (1 - s))).all())


def test_radial_direct_method_on_lnegeom():
    """LNEMetric.radial_inverse_apply (added for this module): numpy and torch agree; ξ = 0 gives v."""
    m = LNEMetric(0.3)
    xi = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    v = np.array([[1.0, 2.0, 3.0], [1.0, -1.0, 0.5]])
    out_np = m.radial_inverse_apply(xi, v)
    out_t = m.radial_inverse_apply(torch.tensor(xi), torch.tensor(v))
    np.testing.assert_allclose(out_np, out_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(out_np[1], v[1])
    s = float(m.s(xi[0]))
    wh = xi[0] / np.linalg.norm(xi[0])
    np.testing.assert_allclose(out_np[0], v[0] + wh * (wh @ v[0]) * s / (1 - s), rtol=1e-12)


def test_exact_approaches_radial_as_n_grows():
    """docs/math.md §2: at fixed s, τ ~ √s/‖w‖ makes each τ w_i small, so t ∥ w and exact → radial."""
    diffs = []
    gen = torch.Generator().manual_seed(0)
    for n in (10, 100, 1000, 10000):
        w = torch.randn(n, generator=gen, dtype=D64)
        v = torch.randn(n, generator=gen, dtype=D64)
        ex, d = lne_transform(v, w, mode="exact", tau="auto", target_s=0.5)
        rad, _ = lne_transform(v, w, mode="radial", tau="auto", target_s=0.5)
        diffs.append(float(torch.linalg.vector_norm(ex - rad) / torch.linalg.vector_norm(ex)))
    assert all(b < a for a, b in zip(diffs, diffs[1:])), diffs
    assert diffs[-1] < 1e-4, diffs


@given(problem(), st.sampled_from(list_modes()))
def test_channel_grouping_is_per_row_tensor_transform(p, mode):
    tau, w, v = p
    out, diag = lne_transform(v, w, mode=mode, tau=tau, group="channel", eta=0.1)
    rows = [lne_transform(v[i], w[i], mode=mode, tau=tau, group="tensor", eta=0.1)[0] for i in range(w.shape[0])]
    torch.testing.assert_close(out, torch.stack(rows), rtol=1e-12, atol=1e-14)
    assert diag.s.shape == (w.shape[0],)


@pytest.mark.parametrize("mode", ["exact", "weak", "curvature", "radial", "layer_lr"])
@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
def test_half_precision_matches_float32_cast_back(mode, low):
    gen = torch.Generator().manual_seed(2)
    w = (torch.randn(8, 32, generator=gen) * 0.05).to(low)
    v = torch.randn(8, 32, generator=gen).to(low)
    out, diag = lne_transform(v, w, mode=mode, tau="auto", group="channel")
    ref, _ = lne_transform(v.float(), w.float(), mode=mode, tau="auto", group="channel")
    assert out.dtype == low and bool(torch.isfinite(out).all())
    assert diag.s.dtype == torch.float32
    torch.testing.assert_close(out, ref.to(low), rtol=0, atol=0)


def test_conv_weight_shapes_and_diagnostics():
    w = torch.randn(4, 3, 3, 3, dtype=D64) * 0.05
    v = torch.randn_like(w)
    out, diag = lne_transform(v, w, tau=1.0, group="channel")
    assert out.shape == w.shape and diag.tau.shape == (4,)
    torch.testing.assert_close(diag.amplification, 1 / (1 - diag.s))
    torch.testing.assert_close(diag.diagonally_dominant, LNEMetric(1.0).is_diagonally_dominant(w.reshape(4, -1)))
    ratio = torch.linalg.vector_norm(out.reshape(4, -1), dim=-1) / torch.linalg.vector_norm(v.reshape(4, -1), dim=-1)
    torch.testing.assert_close(diag.norm_ratio, ratio)


# --------------------------------------------------------------------------- τ
@given(st.integers(1, 4), st.integers(1, 50), st.floats(-3.0, 3.0), st.integers(0, 2**31 - 1), st.floats(0.05, 0.95))
def test_auto_tau_reaches_target(rows, n, log_scale, seed, target):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, n, generator=gen, dtype=D64) ** 3 * 10.0**log_scale  # heavy-tailed rows
    tau = auto_tau(w, target)
    s = (torch.tanh(tau[:, None] * w) ** 2).sum(-1)
    nonzero = (w != 0).any(-1)
    torch.testing.assert_close(s[nonzero], torch.full_like(s[nonzero], target), rtol=0, atol=1e-6)


def test_auto_tau_zero_group_and_float32():
    w = torch.zeros(2, 4)
    w[1] = torch.tensor([1e-3, -2.0, 30.0, 0.5])
    _, diag = lne_transform(torch.ones_like(w), w, tau="auto", group="channel", target_s=0.7)
    assert float(diag.tau[0]) == 0.0 and float(diag.s[0]) == 0.0
    assert abs(float(diag.s[1]) - 0.7) < 1e-6


# --------------------------------------------------------------------------- errors
def test_error_s_at_least_one_names_parameter_and_max_tau():
    w = torch.ones(10, dtype=D64)
    with pytest.raises(LNEMetricError, match=r"'layer1.weight'.*s = .*tau\* = ") as info:
        lne_transform(torch.ones_like(w), w, tau=1.0, name="layer1.weight")
    assert isinstance(info.value, ValueError)
    tau_star = float(LNEMetric(1.0).max_tau(w))
    assert f"{tau_star:.6g}" in str(info.value)


@pytest.mark.parametrize("bad", ["grad", "weight"])
def test_error_nonfinite(bad):
    w = torch.randn(5) * 0.1
    g = torch.randn(5)
    (g if bad == "grad" else w)[2] = float("nan")
    with pytest.raises(ValueError, match=rf"'fc': {bad} has NaN or inf"):
        lne_transform(g, w, name="fc")


def test_error_unknown_mode_and_group():
    w = torch.randn(5) * 0.1
    listed = r"'curvature', 'exact', 'layer_lr', 'radial', 'strong', 'weak'"
    with pytest.raises(ValueError, match=r"unknown LNE mode 'natural'.*" + listed):
        lne_transform(w, w, mode="natural")
    with pytest.raises(ValueError, match="unknown group"):
        lne_transform(w, w, group="row")
    with pytest.raises(ValueError, match="tau must be"):
        lne_transform(w, w, tau="sometimes")
    with pytest.raises(ValueError, match="target_s"):
        lne_transform(w, w, tau="auto", target_s=1.0)


def test_error_curvature_not_pd_names_eta_and_group():
    w = torch.full((2, 3), 0.3, dtype=D64)
    w[1] = 0.01
    with pytest.raises(ValueError, match=r"not positive definite for parameter 'conv', group 0 \(eta = -50\)"):
        lne_transform(torch.ones_like(w), w, mode="curvature", tau=1.0, eta=-50.0, group="channel", name="conv")


@given(problem(rows_max=1), st.floats(0.01, 0.5))
def test_relative_eta_bounds_the_ricci_term_and_equals_the_absolute_step(p, eta):
    """eta_relative: η_abs = eta/ρ with ρ >= ‖Ric‖₂, so ‖M − g‖₂ = 2η_abs‖Ric‖₂ <= 2·eta (dense check)."""
    tau, w, v = p
    metric = LNEMetric(tau)
    ric = torch.as_tensor(metric.ricci_matrix(w[0]))
    a, beta, u = LNEMetric(1.0).ricci_parts(tau * w[0])
    rho = float((tau**2 * a).abs().max() + beta * tau**2 * (u * u).sum())
    assume(rho > 1e-12)
    norm = float(torch.linalg.matrix_norm(ric, ord=2))
    assert norm <= rho * (1 + 1e-9) + 1e-12
    rel, _ = lne_transform(v, w, mode="curvature", tau=tau, eta=eta, eta_relative=True)
    ab, _ = lne_transform(v, w, mode="curvature", tau=tau, eta=eta / rho)
    torch.testing.assert_close(rel, ab, rtol=1e-10, atol=1e-12)



def test_backward_curvature_step_with_a_flat_group_is_not_refused():
    """eta < 0, relative: a zero channel has Ric = 0, so its η is 0 and M = g = I there (positive definite)."""
    gen = torch.Generator().manual_seed(0)
    w = 0.1 * torch.randn(3, 8, generator=gen, dtype=D64)
    w[1] = 0.0
    v = torch.randn(3, 8, generator=gen, dtype=D64)
    out, _ = lne_transform(v, w, mode="curvature", tau="auto", group="channel", eta=-0.01, eta_relative=True)
    torch.testing.assert_close(out[1], v[1])
    with pytest.raises(ValueError, match="1 or 3 values"):
        lne_transform(v, w, tau=torch.tensor([0.1, 0.2]), group="channel")
