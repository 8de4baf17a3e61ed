"""Ricci(–DeTurck) flow on the periodic torus: spectral derivatives, the solver, the `flow-torus-decay`
check of `lnegeom validate`."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lnegeom.checkpoint import CheckpointError, load_checkpoint
from lnegeom.curvature import MetricError, curvature_from_derivatives, ricci_from_derivatives
from lnegeom.domains import GridTooCoarseError, Torus
from lnegeom.flow import flow_diagnostics, flow_rhs, phi_functions, rhs_from_derivatives, solve_flow
from lnegeom.testing import grid_metric_fields, l2_norm, perturbations

L = 2 * math.pi
SYM = np.array([[0.6, -0.8], [-0.8, 0.3]])


def _mode_field(T, m, amp, h):
    """amp·cos(k·x)·h with k = 2π m / L."""
    x = T.points()
    phase = sum(2 * math.pi * mi / Li * x[..., a] for a, (mi, Li) in enumerate(zip(m, T.L)))
    return amp * np.cos(phase)[..., None, None] * h


@pytest.fixture
def one_torch_thread():
    """Run torch on one CPU thread (small grids: thread start-up and, on a busy machine, waiting dominate)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit_rate(T, res, window):
    """Measured g∞ (grid mean at the last time), and the decay rate of ‖g − g∞‖ fitted over ``window``."""
    g_inf = T.mean(res.g[-1])
    norms = np.array([T.l2_norm(g - g_inf) for g in res.g])
    w = (res.t >= window[0]) & (res.t <= window[1])
    slope = np.polyfit(res.t[w], np.log(norms[w]), 1)[0]
    return g_inf, -slope, norms[w][0] / norms[w][-1]


# ---------------------------------------------------------------- spectral derivatives
@pytest.mark.parametrize("n,N", [(2, 12), (3, 8)])
def test_spectral_derivatives_exact_for_band_limited(n, N):
    T = Torus(n, N, [1.0, 2.0, 3.0][:n])
    x = T.points()
    rng = np.random.default_rng(1)
    f = np.zeros(T.shape)
    df = np.zeros((*T.shape, n))
    d2f = np.zeros((*T.shape, n, n))
    for _ in range(5):
        m = rng.integers(-(N // 2 - 1), N // 2, size=n)  # strictly below Nyquist
        k = 2 * np.pi * m / np.array(T.L)
        c, s = rng.normal(size=2)
        ph = x @ k
        f += c * np.cos(ph) + s * np.sin(ph)
        df += (-c * np.sin(ph) + s * np.cos(ph))[..., None] * k
        d2f += (-c * np.cos(ph) - s * np.sin(ph))[..., None, None] * np.outer(k, k)
    assert np.abs(T.gradient(f) - df).max() < 1e-12 * np.abs(df).max()
    assert np.abs(T.hessian(f) - d2f).max() < 1e-12 * np.abs(d2f).max()
    # layout: [*grid, a, *rest] with a metric-shaped field
    g = np.zeros((*T.shape, n, n)) + f[..., None, None]
    assert T.gradient(g).shape == (*T.shape, n, n, n)
    assert T.hessian(g).shape == (*T.shape, n, n, n, n)


@settings(max_examples=4)
@given(grid_metric_fields(2, 8, 3.0, bandwidth=1))
def test_spectral_derivatives_of_grid_metric_fields_agree_with_a_finer_grid(g):
    # a band-limited field (|m| ≤ 1) is its own interpolant: its derivatives on 8² equal those
    # of the same trigonometric polynomial on 16² at the shared points
    T8, T16 = Torus(2, 8, 3.0), Torus(2, 16, 3.0)
    G = np.fft.fftn(g, axes=(0, 1))
    Gf = np.zeros((16, 16, 2, 2), dtype=complex)
    for i in range(-1, 2):
        for j in range(-1, 2):
            Gf[i % 16, j % 16] = G[i % 8, j % 8] * 4
    g16 = np.fft.ifftn(Gf, axes=(0, 1)).real
    assert np.abs(g16[::2, ::2] - g).max() < 1e-13
    assert np.abs(T16.hessian(g16)[::2, ::2] - T8.hessian(g)).max() < 1e-12


def test_spectral_derivative_converges_geometrically_on_a_smooth_non_band_limited_field():
    errs = []
    for N in (8, 16, 32):
        T = Torus(1, N, L)
        x = T.points()[..., 0]
        f = np.exp(np.sin(x))
        errs.append(np.abs(T.gradient(f)[..., 0] - np.cos(x) * f).max())
    assert errs[0] > 1e-4 and errs[1] < 1e-2 * errs[0] and errs[2] < 1e-12, errs


def test_integrals_and_norms():
    T = Torus(2, 16, L)
    x = T.points()
    assert T.integral(np.cos(x[..., 0]) ** 2) == pytest.approx(2 * math.pi**2, rel=1e-14)
    h = _mode_field(T, (1, 2), 0.1, SYM)
    assert T.l2_norm(h) == pytest.approx(l2_norm(h, L), rel=1e-14)
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    gA = np.broadcast_to(A, (*T.shape, 2, 2))
    assert T.integral(np.ones(T.shape), metric=gA) == pytest.approx(L**2 * math.sqrt(np.linalg.det(A)), rel=1e-14)


def test_phi_functions_accurate_across_the_series_switch():
    z = -np.array([0.0, 1e-8, 0.05, 0.3, 0.9999999, 1.0, 1.5, 2.0, 50.0, 3000.0])
    E, p1, p2, p3 = phi_functions(z, 3)

    def series(zz, k, terms=60):
        return sum(zz**j / math.factorial(j + k) for j in range(terms))

    for zi, a, b, c in zip(z, p1, p2, p3):
        if zi > -5:
            assert a == pytest.approx(series(zi, 1), rel=1e-14, abs=1e-300)
            assert b == pytest.approx(series(zi, 2), rel=1e-14, abs=1e-300)
            assert c == pytest.approx(series(zi, 3), rel=1e-14, abs=1e-300)
    assert p1[-2] == pytest.approx((1 - math.exp(-50)) / 50, rel=1e-14)
    assert p3[-2] == pytest.approx((math.exp(-50) - 1 + 50 - 50**2 / 2) / -(50**3), rel=1e-14)
    assert np.all(E == np.exp(z))
    # the same numbers from torch (one formulation)
    Et, q1, q2, q3 = phi_functions(torch.as_tensor(z), 3)
    for x, y in ((E, Et), (p1, q1), (p2, q2), (p3, q3)):
        assert np.abs(x - y.numpy()).max() <= 1e-16 * np.abs(x).max()


# ---------------------------------------------------------------- right-hand side
@st.composite
def _metric_jets(draw):
    """(n, batch shape, g, ∂g, ∂²g): random SPD metrics with derivatives of the right symmetries."""
    n = draw(st.integers(1, 4))
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    A = rng.normal(size=batch + (n, n))
    g = A @ np.swapaxes(A, -1, -2) + 0.3 * np.eye(n)
    dg = scale * rng.normal(size=batch + (n, n, n))
    dg = dg + np.swapaxes(dg, -1, -2)
    d2g = scale * rng.normal(size=batch + (n, n, n, n))
    d2g = d2g + np.swapaxes(d2g, -1, -2)
    d2g = d2g + np.swapaxes(d2g, -3, -4)
    return n, batch, g, dg, d2g


@settings(max_examples=25)
@given(_metric_jets(), st.sampled_from(["numpy", "torch"]), st.sampled_from(["batch-first", "batch-last"]))
def test_ricci_from_derivatives_matches_the_riemann_path(jet, backend, layout):
    n, batch, g, dg, d2g = jet
    ref = curvature_from_derivatives(g, dg, d2g)
    args = (g, dg, d2g)
    if layout == "batch-last":
        args = tuple(np.moveaxis(a, tuple(range(len(batch))), tuple(range(a.ndim - len(batch), a.ndim)))
                     for a in args)
    if backend == "torch":
        args = tuple(torch.as_tensor(a) for a in args)
    p = ricci_from_derivatives(*args, layout=layout)
    ric, gam, scal = (np.asarray(x) for x in (p.ricci, p.christoffel, p.scalar))
    if layout == "batch-last":
        ric = np.moveaxis(ric, (0, 1), (-2, -1))
        gam = np.moveaxis(gam, (0, 1, 2), (-3, -2, -1))
    # the size of the terms summed: |g⁻¹| |∂²g| + |g⁻¹|² |∂g|² (Ric), times |g⁻¹| (R), squared (|Rm|²)
    gi = max(1.0, np.abs(ref.g_inv).max())
    size = gi * np.abs(d2g).max() + (gi * np.abs(dg).max()) ** 2
    assert np.abs(ric - ref.ricci).max() <= 1e-12 * size
    assert np.abs(gam - ref.christoffel).max() <= 1e-12 * gi * np.abs(dg).max()
    assert np.abs(scal - ref.scalar).max() <= 1e-12 * gi * size
    if n <= 3:
        assert np.abs(np.asarray(p.rm_norm_sq) - ref.kretschmann).max() <= 1e-11 * (gi**2 * size) ** 2
    else:
        assert p.rm_norm_sq is None


def test_ricci_from_derivatives_rejects_bad_layouts_and_shapes():
    g = np.eye(2)[None]
    with pytest.raises(ValueError, match="layout must be"):
        ricci_from_derivatives(g, np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2, 2)), layout="grid-first")
    with pytest.raises(MetricError, match="derivative shapes"):
        ricci_from_derivatives(np.eye(2), np.zeros((3, 2, 2)), np.zeros((2, 2, 2, 2)), layout="batch-last")


def test_rhs_vanishes_for_a_constant_metric():
    T = Torus(3, 6, 1.5)
    A = np.array([[1.3, 0.2, -0.1], [0.2, 0.8, 0.05], [-0.1, 0.05, 1.1]])
    g = np.broadcast_to(A, (*T.shape, 3, 3)).copy()
    for fl in ("ricci", "ricci-deturck"):
        assert np.abs(flow_rhs(g, T, flow=fl)).max() == 0.0


def test_constant_non_diagonal_metric_stays_put():
    T = Torus(2, 8, L)
    A = np.array([[1.3, 0.4], [0.4, 0.7]])
    g0 = np.broadcast_to(A, (*T.shape, 2, 2)).copy()
    res = solve_flow(g0, (0, 5), domain=T, t_eval=[1, 5])
    assert res.status == 0
    assert np.abs(res.g - A).max() < 1e-14
    assert res.diagnostics["max_rm"].max() < 1e-14


def test_principal_part_is_the_laplacian():
    # linearisation at δ: ∂_t h = Δ h for h = ε cos(k·x) S, to O(ε²)
    T = Torus(2, 16, L)
    eps = 1e-6
    h = _mode_field(T, (1, 2), eps, SYM)
    rhs = flow_rhs(np.eye(2) + h, T)
    assert np.abs(rhs - (-5.0) * h).max() < 1e-3 * eps


# ---------------------------------------------------------------- the flow-torus-decay check
WINDOW = (6.0, 16.0)  # fit window: e^{-10} ≈ 4.5e-5, 4.3 decades for rate 1


def test_check1_zero_mean_single_mode_decay_rate():
    T = Torus(2, 16, L)
    g0 = np.eye(2) + _mode_field(T, (1, 0), 1e-3, SYM)
    res = solve_flow(g0, (0, 16), domain=T, t_eval=np.linspace(0, 16, 65), diagnostics=False)
    assert res.status == 0, res.message
    g_inf, rate, decades = _fit_rate(T, res, WINDOW)
    k = np.array([1.0, 0.0])  # 2π/L
    theory = k @ np.linalg.solve(g_inf, k)
    assert np.log10(decades) >= 4
    assert abs(rate - theory) / theory < 1e-3, (rate, theory)
    assert np.abs(g_inf - np.eye(2)).max() < 1e-5  # zero-mean, small: g∞ ≈ δ


def test_check1_in_three_dimensions_with_a_non_diagonal_limit():
    T = Torus(3, 7, L)
    A = np.array([[1.1, 0.15, 0.0], [0.15, 0.9, -0.1], [0.0, -0.1, 1.0]])
    S3 = np.array([[0.6, -0.8, 0.2], [-0.8, 0.3, 0.5], [0.2, 0.5, -0.4]])
    g0 = A + _mode_field(T, (0, 1, 0), 1e-3, S3)
    res = solve_flow(g0, (0, 16), domain=T, t_eval=np.linspace(0, 16, 65), diagnostics=False)
    assert res.status == 0, res.message
    g_inf, rate, decades = _fit_rate(T, res, WINDOW)
    k = np.array([0.0, 1.0, 0.0])
    theory = k @ np.linalg.solve(g_inf, k)
    assert np.log10(decades) >= 4
    assert abs(rate - theory) / theory < 1e-3, (rate, theory)
    assert np.abs(g_inf - A).max() < 1e-5 and abs(theory - 1.0) > 0.05  # g∞ ≈ A ≠ δ: the rate is not |k|²

@settings(max_examples=3)
@given(perturbations(2, 12, L, l2_norm=6e-3, bandwidth=1, zero_mean=True))
def test_check1_zero_mean_perturbations_decay_at_the_slowest_rate(h):
    T = Torus(2, 12, L)
    res = solve_flow(np.eye(2) + h, (0, 16), domain=T, t_eval=np.linspace(0, 16, 65), diagnostics=False)
    assert res.status == 0, res.message
    g_inf, rate, decades = _fit_rate(T, res, WINDOW)
    H = np.fft.fftn(h, axes=(0, 1))
    present = [m for m in [(1, 0), (0, 1), (1, 1), (1, -1)] if np.abs(H[m]).max() > 1e-8 * np.abs(H).max()]
    theory = min(np.array(m, float) @ np.linalg.solve(g_inf, np.array(m, float)) for m in present)
    assert np.log10(decades) >= 4
    assert abs(rate - theory) / theory < 1e-3, (rate, theory, present)


def test_check1_nonzero_mean_converges_to_a_flat_metric_other_than_delta():
    T = Torus(2, 16, L)
    A = np.array([[1.2, 0.3], [0.3, 0.9]])
    g0 = A + _mode_field(T, (1, 0), 1e-3, SYM)
    res = solve_flow(g0, (0, 20), domain=T, t_eval=np.linspace(0, 20, 81))
    assert res.status == 0, res.message
    g_inf, rate, _ = _fit_rate(T, res, (4.0, 18.0))
    theory = np.array([1.0, 0.0]) @ np.linalg.solve(g_inf, np.array([1.0, 0.0]))
    assert np.abs(g_inf - np.eye(2)).max() > 0.1
    assert np.abs(g_inf - A).max() < 1e-5
    assert abs(rate - theory) / theory < 1e-3, (rate, theory, g_inf)
    assert abs(theory - 1.0) > 0.05  # the rate really is kᵀ g∞⁻¹ k, not |k|²
    d = res.diagnostics
    assert d["max_rm"][-1] < 1e-6 * d["max_rm"][0]
    assert abs(d["min_eig"][-1] - np.linalg.eigvalsh(A)[0]) < 1e-6


@pytest.mark.parametrize("method,order,amp", [("etd4", 4.0, 0.3), ("etd2", 2.0, 1.0)])
def test_time_step_order(method, order, amp):
    # a nonlinear run (modes of amplitude 0.2·amp, 0.15·amp), fixed steps h = 1/4, 1/8, 1/16 against h = 1/128.
    # Cox–Matthews ETDRK4 loses some order at large amplitude (stiff remainder (g⁻¹ − A)∂²g; measured
    # 3.3–3.9 at amp = 1): amp = 0.3 is in its asymptotic regime
    T = Torus(2, 12, L)
    g0 = (np.eye(2) + _mode_field(T, (1, 0), 0.2 * amp, np.array([[1, 0.3], [0.3, -0.5]]))
          + _mode_field(T, (1, 1), 0.15 * amp, np.array([[0.2, -0.4], [-0.4, 0.7]])))
    t1 = 1.0

    def run(h):
        return solve_flow(g0, (0, t1), domain=T, fixed_step=h, t_eval=[t1], diagnostics=False, method=method).g[-1]

    ref = run(t1 / 128)
    hs = np.array([t1 / 4, t1 / 8, t1 / 16])
    errs = [T.l2_norm(run(h) - ref) for h in hs]
    measured = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(measured - order) <= 0.2, (measured, errs)


@pytest.mark.parametrize("method", ["etd", "etd2", "RK45"])
def test_without_t_eval_every_step_is_saved_the_last_at_t1(method):
    """As solve_ivp: with t_eval None the result holds every accepted step, the one at t1 included."""
    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (1, 1), 1e-2, SYM)
    res = solve_flow(g0, (0, 0.5), domain=T, method=method)
    assert res.status == 0 and res.t[0] == 0 and res.t[-1] == 0.5 and len(res.t) == res.nsteps + 1
    assert np.all(np.diff(res.t) > 0) and np.array_equal(res.g[-1], res.g_last) and res.t_last == 0.5
    assert len(res.diagnostics["l2"]) == len(res.t)


@pytest.mark.parametrize("method", ["etd", "RK45"])
def test_t_eval_at_the_start_only_saves_the_start(method):
    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (1, 1), 1e-2, SYM)
    res = solve_flow(g0, (0, 0.5), domain=T, method=method, t_eval=[0.0])
    assert res.status == 0 and list(res.t) == [0.0] and np.abs(res.g[0] - g0).max() < 1e-15


@pytest.mark.parametrize("dealias", [False, True])
def test_etd_and_rk45_agree(dealias):
    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (1, 1), 1e-2, SYM)
    kw = dict(t_eval=[0.5], rtol=1e-6, atol=1e-9, diagnostics=False, dealias=dealias)
    a = solve_flow(g0, (0, 0.5), domain=T, **kw)
    b = solve_flow(g0, (0, 0.5), domain=T, method="RK45", **kw)
    assert a.status == b.status == 0
    assert np.abs(a.g[-1] - b.g[-1]).max() < 1e-7


def test_plain_ricci_flow_runs_and_curvature_decays():
    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (1, 0), 1e-2, SYM)
    res = solve_flow(g0, (0, 3), domain=T, flow="ricci", t_eval=[0, 3])
    assert res.status == 0 and res.flow == "ricci"
    assert res.diagnostics["max_rm"][-1] < 0.2 * res.diagnostics["max_rm"][0]
    assert np.all(res.diagnostics["max_w"] == 0)


def test_checkpoint_and_resume(tmp_path):
    T = Torus(2, 12, L)
    g0 = np.eye(2) + _mode_field(T, (1, 1), 1e-3, SYM)
    path = tmp_path / "ck.npz"
    tol = dict(rtol=1e-7, atol=1e-10, diagnostics=False)
    solve_flow(g0, (0, 1), domain=T, t_eval=[0.5, 1.0], checkpoint=path, **tol)
    data = load_checkpoint(path)
    assert data["t_last"] == 1.0 and data["g"].shape == (2, 12, 12, 2, 2) and list(data["t"]) == [0.5, 1.0]
    resumed = solve_flow(data["g_last"], (data["t_last"], 2.0), domain=T, t_eval=[1.5, 2.0], checkpoint=path, **tol)
    direct = solve_flow(g0, (0, 2), domain=T, t_eval=[0.5, 1.0, 1.5, 2.0], **tol)
    assert np.abs(resumed.g[-1] - direct.g[-1]).max() < 1e-8
    data = load_checkpoint(path)  # resumed from its own last state: the history is extended
    assert list(data["t"]) == [0.5, 1.0, 1.5, 2.0] and data["t_last"] == 2.0
    np.testing.assert_allclose(data["g"], direct.g, atol=1e-8)
    # any other start begins a fresh history
    solve_flow(g0, (0, 0.5), domain=T, t_eval=[0.5], checkpoint=path, **tol)
    assert list(load_checkpoint(path)["t"]) == [0.5]


def test_checkpoint_is_atomic_appended_and_used_as_given(tmp_path, monkeypatch):
    import os

    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (1, 0), 1e-3, SYM)
    path = tmp_path / "run.ck"  # no .npz suffix is added
    ts = np.linspace(0.01, 1.0, 100)
    solve_flow(g0, (0, 1), domain=T, t_eval=ts, checkpoint=path, diagnostics=False)
    assert path.exists() and not (tmp_path / "run.ck.npz").exists()
    # the main file holds one state whatever the history's length; the history grows by one record per time
    size_100 = path.stat().st_size
    solve_flow(g0, (0, 1), domain=T, t_eval=ts[:3], checkpoint=path, diagnostics=False)
    assert path.stat().st_size == size_100
    assert (tmp_path / "run.ck.history").stat().st_size == 3 * (1 + g0.size) * 8
    # a kill while the new version is written (here: the rename fails) leaves the previous one readable
    before = load_checkpoint(path)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        solve_flow(before["g_last"], (before["t_last"], 2.0), domain=T, t_eval=[1.5, 2.0], checkpoint=path,
                   diagnostics=False)
    monkeypatch.undo()
    after = load_checkpoint(path)  # the appended record beyond the count is ignored
    assert after["count"] == 3 and after["t_last"] == before["t_last"]
    np.testing.assert_array_equal(after["g"], before["g"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ck", "run.ck.history"]  # no temp file left


def test_a_corrupt_checkpoint_is_named_with_the_fix(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.npz' is not a readable solve_flow checkpoint.*delete"):
        load_checkpoint(path)
    T = Torus(2, 8, L)
    g0 = np.broadcast_to(np.eye(2), (*T.shape, 2, 2)).copy()
    solve_flow(g0, (0, 0.1), domain=T, t_eval=[0.05, 0.1], checkpoint=path, diagnostics=False)
    history = tmp_path / "bad.npz.history"
    history.write_bytes(history.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"holds 0 of the 2 saved times.*delete"):
        load_checkpoint(path)


@pytest.mark.parametrize("kw, match", [
    (dict(rtol=0.0), r"rtol must be a finite number > 0, got rtol=0\.0"),
    (dict(atol=-1e-9), r"atol=-1e-09"),
    (dict(rtol=math.nan), r"rtol=nan"),
    (dict(fixed_step=-0.1), r"fixed_step must be a finite number > 0, got fixed_step=-0\.1"),
    (dict(first_step=0.0), r"first_step=0\.0"),
    (dict(max_step=-1.0), r"max_step must be a number > 0"),
    (dict(max_steps=0), r"max_steps must be an integer >= 1"),
    (dict(t_eval=[]), r"t_eval must hold at least one finite time"),
    (dict(t_eval=[0.5, math.nan]), r"t_eval must hold at least one finite time"),
    (dict(background=np.eye(3)), r"background must be a constant 2×2 matrix or a field of shape \(8, 8, 2, 2\)"),
    (dict(reference=np.eye(3)), r"reference must be a constant 2×2 matrix"),
])
def test_step_options_that_cannot_be_honoured_are_refused(kw, match):
    T = Torus(2, 8, L)
    g0 = np.broadcast_to(np.eye(2), (*T.shape, 2, 2)).copy()
    with pytest.raises(ValueError, match=match):
        solve_flow(g0, (0, 1), domain=T, **kw)


# ---------------------------------------------------------------- bad input and failures
def test_not_positive_definite_names_point_and_eigenvalue():
    T = Torus(2, 8, L)
    g0 = np.broadcast_to(np.eye(2), (*T.shape, 2, 2)).copy()
    g0[3, 5] = [[1.0, 0.0], [0.0, -0.25]]
    with pytest.raises(MetricError, match=r"grid point \(3, 5\).*eigenvalue -0\.25"):
        solve_flow(g0, (0, 1), domain=T)


def test_too_coarse_grid_is_refused():
    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (3, 0), 1e-3, SYM)  # m = 3 > (2/3)·4
    with pytest.raises(GridTooCoarseError, match=r"wavelength 2\.094.*Torus\(n=2, N=8"):
        solve_flow(g0, (0, 1), domain=T)
    assert Torus(2, 16, L).too_coarse(np.eye(2) + _mode_field(Torus(2, 16, L), (3, 0), 1e-3, SYM)) is None


def test_shape_and_t_span_errors():
    T = Torus(2, 8, L)
    g0 = np.broadcast_to(np.eye(2), (*T.shape, 2, 2)).copy()
    with pytest.raises(ValueError, match="grid axes first"):
        solve_flow(g0[:4], (0, 1), domain=T)
    with pytest.raises(ValueError, match="t_span"):
        solve_flow(g0, (1, 0), domain=T)
    with pytest.raises(ValueError, match="unknown flow"):
        solve_flow(g0, (0, 1), domain=T, flow="yamabe")


@pytest.mark.parametrize("method,backend", [("etd", "numpy"), ("etd", "torch"), ("etd2", "numpy"), ("RK45", "numpy")])
def test_nan_during_the_flow_stops_with_partial_result(method, backend, one_torch_thread):
    T = Torus(2, 8, L)
    g0 = np.eye(2) + _mode_field(T, (1, 0), 1e-3, SYM)
    real_core = rhs_from_derivatives
    calls = {"n": 0}

    def poisoned(domain, g, *args):  # the one right-hand side of every method; components first
        rhs, parts, W = real_core(domain, g, *args)
        calls["n"] += 1
        if calls["n"] > 30:
            rhs = rhs * 1.0
            rhs[0, 1, 3, 5] = float("nan")
        return rhs, parts, W

    start = torch.as_tensor(g0) if backend == "torch" else g0
    res = solve_flow(start, (0, 10), domain=T, t_eval=np.linspace(0, 10, 101), method=method, rhs=poisoned)
    assert res.status == -1
    assert "grid point (3, 5)" in res.message and "t = " in res.message and "non-finite" in res.message
    assert len(res.t) >= 2 and res.g.shape[0] == len(res.t) and len(res.diagnostics["l2"]) == len(res.t)
    assert res.t_last < 10 and bool(np.all(np.isfinite(np.asarray(res.g_last))))
    if backend == "torch":  # the same run, the same message as numpy
        calls["n"] = 0
        ref = solve_flow(g0, (0, 10), domain=T, t_eval=np.linspace(0, 10, 101), method=method, rhs=poisoned)
        assert res.message == ref.message and res.t_last == ref.t_last


def test_nan_in_one_batch_member_names_it():
    T = Torus(2, 8, L)
    g0 = np.stack([np.eye(2) + _mode_field(T, (1, 0), a, SYM) for a in (1e-3, 2e-3)])
    real_core = rhs_from_derivatives
    calls = {"n": 0}

    def poisoned(domain, g, *args):  # g[i, j, member, *grid]
        rhs, parts, W = real_core(domain, g, *args)
        calls["n"] += 1
        if calls["n"] > 20:
            rhs = rhs * 1.0
            rhs[1, 1, 1, 2, 6] = float("inf")
        return rhs, parts, W

    res = solve_flow(g0, (0, 5), domain=T, t_eval=np.linspace(0, 5, 11), batch=True, rhs=poisoned)
    assert res.status == -1
    assert "batch member 1, grid point (2, 6)" in res.message and "∂_t g_11 = inf" in res.message
    assert res.g.shape[1:] == (2, 8, 8, 2, 2) and res.g_last.shape == (2, 8, 8, 2, 2)
    assert res.diagnostics["l2"].shape == (len(res.t), 2)


# ---------------------------------------------------------------- backends and batches
def _bumpy(T, amp=0.05):
    x = T.points()
    return (np.eye(2) + _mode_field(T, (1, 1), amp, SYM)
            + amp * 0.6 * np.sin(2 * x[..., 1])[..., None, None] * np.array([[0.3, 0.1], [0.1, -0.7]]))


def test_flow_rhs_and_diagnostics_agree_between_numpy_and_torch(one_torch_thread):
    T = Torus(2, 16, L)
    g = _bumpy(T, 0.2)
    for fl in ("ricci", "ricci-deturck"):
        a = flow_rhs(g, T, flow=fl)
        b = flow_rhs(torch.as_tensor(g), T, flow=fl)
        assert isinstance(b, torch.Tensor)
        assert np.abs(a - b.numpy()).max() <= 1e-14 * np.abs(a).max()
    da, db = flow_diagnostics(g, T), flow_diagnostics(torch.as_tensor(g), T)
    for k in da:
        assert np.allclose(da[k], db[k], rtol=1e-13, atol=1e-15), k


@pytest.mark.parametrize("method,tol", [("etd4", dict(rtol=1e-6, atol=1e-10)), ("etd2", dict(rtol=1e-4, atol=1e-7))])
def test_numpy_and_torch_runs_agree(method, tol, one_torch_thread):
    T = Torus(2, 16, L)
    g0 = _bumpy(T)
    te = np.linspace(0, 3, 7)
    a = solve_flow(g0, (0, 3), domain=T, t_eval=te, method=method, **tol)
    b = solve_flow(torch.as_tensor(g0), (0, 3), domain=T, t_eval=te, method=method, **tol)
    assert a.status == b.status == 0 and (a.nsteps, a.nfev) == (b.nsteps, b.nfev)
    assert isinstance(b.g, torch.Tensor) and b.g.dtype == torch.float64 and b.g.shape == a.g.shape
    rel = np.abs(a.g - b.g.numpy()).max() / np.abs(a.g - np.eye(2)).max()
    assert rel < 1e-10, rel
    for k in a.diagnostics:
        assert np.allclose(a.diagnostics[k], b.diagnostics[k], rtol=1e-10, atol=1e-14), k


def test_batch_matches_single_runs(one_torch_thread):
    T = Torus(2, 12, L)
    members = [_bumpy(T, 0.05), _bumpy(T, 0.02), np.swapaxes(_bumpy(T, 0.04), 0, 1)]
    G = np.stack(members)
    te = [0.5, 1.0]
    # fixed steps: exactly the runs one by one, in numpy and in torch
    fixed = solve_flow(torch.as_tensor(G), (0, 1), domain=T, t_eval=te, fixed_step=0.125, batch=True)
    assert fixed.g.shape == (2, 3, 12, 12, 2, 2) and fixed.diagnostics["l2"].shape == (2, 3)
    assert fixed.diagnostics["mean_g"].shape == (2, 3, 2, 2)
    for k, m in enumerate(members):
        one = solve_flow(m, (0, 1), domain=T, t_eval=te, fixed_step=0.125)
        assert np.abs(fixed.g[:, k].numpy() - one.g).max() < 1e-14
        assert np.allclose(fixed.diagnostics["l2"][:, k], one.diagnostics["l2"], rtol=1e-13)
    # adaptive: one shared step size, the error norm the largest over the batch
    adaptive = solve_flow(G, (0, 1), domain=T, t_eval=te, batch=True, rtol=1e-8, atol=1e-12)
    assert adaptive.status == 0 and isinstance(adaptive.g, np.ndarray)
    for k, m in enumerate(members):
        one = solve_flow(m, (0, 1), domain=T, t_eval=te, rtol=1e-8, atol=1e-12)
        assert adaptive.nsteps >= one.nsteps
        assert np.abs(adaptive.g[:, k] - one.g).max() < 1e-8


def test_batch_and_backend_errors():
    T = Torus(2, 8, L)
    g0 = _bumpy(T)
    with pytest.raises(ValueError, match=r"batch=True g0 must have shape \(B,\)"):
        solve_flow(g0, (0, 1), domain=T, batch=True)
    with pytest.raises(ValueError, match="numpy arrays without a batch"):
        solve_flow(torch.as_tensor(g0), (0, 1), domain=T, method="RK45")
    with pytest.raises(ValueError, match="numpy arrays without a batch"):
        solve_flow(g0[None], (0, 1), domain=T, method="BDF", batch=True)
    bad = np.stack([g0, g0])
    bad[1, 2, 3] = [[1.0, 0.0], [0.0, -0.5]]
    with pytest.raises(MetricError, match=r"batch member 1, grid point \(2, 3\).*eigenvalue -0\.5"):
        solve_flow(bad, (0, 1), domain=T, batch=True)


@pytest.mark.gpu
def test_gpu_run_agrees_with_numpy():
    T = Torus(2, 32, L)
    g0 = _bumpy(T)
    te = np.linspace(0, 2, 5)
    a = solve_flow(g0, (0, 2), domain=T, t_eval=te)
    b = solve_flow(torch.as_tensor(g0, device="cuda"), (0, 2), domain=T, t_eval=te)
    assert b.g.device.type == "cuda" and b.status == 0
    assert np.abs(a.g - b.g.cpu().numpy()).max() / np.abs(a.g - np.eye(2)).max() < 1e-10
    G = torch.as_tensor(np.stack([g0, _bumpy(T, 0.02)]), device="cuda")
    c = solve_flow(G, (0, 2), domain=T, t_eval=te, batch=True)
    assert c.status == 0 and c.g.shape == (5, 2, 32, 32, 2, 2)


# ---------------------------------------------------------------- grid refinement
def test_grid_refinement_band_limited_agrees_to_rounding():
    # |m| ≤ 1 at amplitude 1e-3: the flow creates harmonics of size ε^|m|, so N = 16 and 32 (same fixed
    # steps) hold the same trigonometric polynomial up to rounding; N = 8 aliases the ε⁴ harmonics
    S2 = np.array([[0.2, 0.5], [0.5, -0.4]])
    out = {}
    for N in (8, 16, 32):
        T = Torus(2, N, L)
        g0 = np.eye(2) + _mode_field(T, (1, 0), 1e-3, SYM) + _mode_field(T, (1, 1), 1e-3, S2)
        out[N] = solve_flow(g0, (0, 1), domain=T, fixed_step=0.125, t_eval=[1.0], diagnostics=False).g[-1]
    assert np.abs(out[32][::2, ::2] - out[16]).max() < 1e-14
    assert np.abs(out[16][::2, ::2] - out[8]).max() < 1e-12


def test_grid_refinement_converges_geometrically_for_a_smooth_metric():
    def g_smooth(T):
        x = T.points()
        a, b = x[..., 0], x[..., 1]
        g = np.empty(T.shape + (2, 2))
        g[..., 0, 0] = np.exp(0.4 * np.cos(a))
        g[..., 1, 1] = np.exp(0.3 * np.sin(a + b))
        g[..., 0, 1] = g[..., 1, 0] = 0.2 * np.sin(a) * np.cos(b)
        return g

    out = {}
    for N in (8, 12, 16, 24, 48):
        T = Torus(2, N, L)
        out[N] = solve_flow(g_smooth(T), (0, 0.5), domain=T, fixed_step=0.0625, t_eval=[0.5], diagnostics=False,
                            check_resolution=False).g[-1]
    errs = np.array([np.abs(out[48][:: 48 // N, :: 48 // N] - out[N]).max() for N in (8, 12, 16, 24)])
    # geometric: a constant factor per added point (ratios 63, 45 measured for +4), not a power of N
    assert errs[0] > 1e-4 and errs[-1] < 1e-8, errs
    assert np.all(errs[1:3] / errs[0:2] < 1 / 20), errs
    assert np.log(errs[0] / errs[-1]) / np.log(24 / 8) > 10, errs


def test_even_grid_nyquist_mode_does_not_spoil_the_rate():
    """On an even grid the Nyquist mode has no first derivative, so nothing would damp what the quadratic
    terms alias into it (the rate would drop to ~0.03 here); the stepper removes it, and an even and an
    odd grid measure the same rate."""
    rates = []
    for N in (16, 15):
        rng = np.random.default_rng(3)
        T = Torus(2, N, L)
        x = T.points()
        g0 = np.broadcast_to(np.eye(2), T.shape + (2, 2)).copy()
        for m1 in range(-5, 6):
            for m2 in range(0, 6):
                if 0 < m1 * m1 + m2 * m2 <= 25 and (m2 > 0 or m1 > 0):
                    S = rng.normal(size=(2, 2))
                    phase = m1 * x[..., 0] + m2 * x[..., 1] + rng.uniform(0, 2 * math.pi)
                    g0 += 0.01 * np.cos(phase)[..., None, None] * (S + S.T) / 2
        res = solve_flow(g0, (0.0, 16.0), domain=T, t_eval=np.linspace(0.0, 16.0, 33), diagnostics=False)
        rates.append(_fit_rate(T, res, (5.0, 16.0))[1])
    assert abs(rates[0] - rates[1]) < 1e-3 * rates[1], rates


@given(err=st.floats(0, 1e6, allow_nan=False), order=st.sampled_from([2, 3]))
def test_step_control_factor_is_the_clipped_safety_rule(err, order):
    from lnegeom.flow import MAX_FACTOR, MIN_FACTOR, SAFETY
    from lnegeom.flow import step_factor as _step_factor

    f = _step_factor(err, order)
    assert MIN_FACTOR <= f <= MAX_FACTOR
    if err > 0:
        assert f == pytest.approx(min(MAX_FACTOR, max(MIN_FACTOR, SAFETY * err ** (-1.0 / order))))
    assert _step_factor(math.inf, order) == MIN_FACTOR and _step_factor(math.nan, order) == MIN_FACTOR
