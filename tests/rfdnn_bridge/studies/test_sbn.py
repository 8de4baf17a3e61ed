"""The stochastic-binary-network study (rfdnn_bridge.studies.sbn): exact enumeration, estimators, mirror descent."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lnegeom.lne import mirror_map
from rfdnn_bridge.studies import sbn


def _problem(depth: int, seed: int = 1, loss: str = "squared"):
    rng = np.random.default_rng(seed)
    net = sbn.make_net(rng, depth, loss=loss)
    return net, rng.standard_normal(net.n_params), rng


# --------------------------------------------------------------------------- exact enumeration
@pytest.mark.parametrize("depth", [1, 2])
def test_enumeration_matches_monte_carlo(depth):
    net, theta, rng = _problem(depth)
    exact = sbn.exact(theta, net, 0.7)["loss"]
    losses = sbn.sample_losses(theta, net, 0.7, 200_000, rng)
    se = losses.std(ddof=1) / math.sqrt(losses.size)
    assert abs(losses.mean() - exact) < 4.5 * se


@pytest.mark.parametrize("depth,loss", [(0, "linear"), (1, "squared"), (2, "squared")])
def test_exact_gradient_matches_finite_differences(depth, loss):
    net, theta, _ = _problem(depth, loss=loss)
    s, h = 0.8, 1e-5
    e = sbn.exact(theta, net, s)
    eye = np.eye(net.n_params)
    fd = [(sbn.exact(theta + h * eye[i], net, s)["loss"] - sbn.exact(theta - h * eye[i], net, s)["loss"]) / (2 * h)
          for i in range(net.n_params)]
    np.testing.assert_allclose(e["grad_theta"], fd, rtol=1e-6, atol=1e-8)
    # the μ-parametrised enumeration gives the same loss and ∂L/∂μ, and its own finite differences agree
    mu = sbn.mu_of(theta, s)
    loss_mu, g_mu = sbn.exact_mu(mu, net, s)
    assert loss_mu == pytest.approx(e["loss"], abs=1e-12)
    np.testing.assert_allclose(g_mu, e["grad_mu"], atol=1e-12)
    fd_mu = [(sbn.exact_mu(mu + h * eye[i], net, s)[0] - sbn.exact_mu(mu - h * eye[i], net, s)[0]) / (2 * h)
             for i in range(net.n_params)]
    np.testing.assert_allclose(g_mu, fd_mu, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- estimators
def test_reinforce_is_unbiased():
    net, theta, rng = _problem(1)
    g = sbn.exact(theta, net, 1.0)["grad_theta"]
    smp = sbn.estimates(theta, net, 1.0, 200_000, rng)["reinforce"]
    se = smp.std(0, ddof=1) / math.sqrt(smp.shape[0])
    assert np.all(np.abs(smp.mean(0) - g) < 4.5 * se)


def test_st_exact_for_one_stochastic_layer_with_linear_loss():
    # depth 0: o = vᵀx with stochastic binary v and L linear in v: every sample of the ST,
    # (∂L/∂v) · dμ/dθ, is the exact gradient
    net, theta, rng = _problem(0, loss="linear")
    g = sbn.exact(theta, net, 0.6)["grad_theta"]
    est = sbn.estimates(theta, net, 0.6, 500, rng)
    np.testing.assert_allclose(est["st"], np.broadcast_to(g, est["st"].shape), rtol=1e-12, atol=1e-14)
    # a deterministic rule at the noisy argument θ − z is not: its bias is far above the sampling floor
    stats = sbn.decompose(est["clipped"], g)
    assert stats["bias2"] > 20 * stats["floor"]


def test_st_unbiased_only_for_the_output_layer_of_a_one_hidden_layer_net():
    # depth 1, linear loss: E[o] = Σ_j μ_vj E[h_j] is linear in the output weights (ST unbiased there), but
    # E[h_j] = E_W[2F(W_j x) − 1] is not multilinear-with-slope-F′ in the first-layer means (ST biased there)
    net, theta, rng = _problem(1, loss="linear")
    g = sbn.exact(theta, net, 1.0)["grad_theta"]
    smp = sbn.estimates(theta, net, 1.0, 100_000, rng)["st"]
    z = np.abs(smp.mean(0) - g) / (smp.std(0, ddof=1) / math.sqrt(smp.shape[0]) + 1e-300)
    out = slice(net.n_params - 2, None)
    assert np.all(z[out] < 4.5)
    assert z[:out.start].min() > 6  # every first-layer coordinate is biased


def test_mse_decomposition_on_estimates():
    net, theta, rng = _problem(2)
    e = sbn.exact(theta, net, 0.5)
    for smp in sbn.estimates(theta, net, 0.5, 2_000, rng).values():
        d = sbn.decompose(smp, e["grad_theta"])
        assert d["mse"] == pytest.approx(d["bias2"] + d["var"], rel=1e-10)


# --------------------------------------------------------------------------- mirror descent
def _psi(mu, s):
    """Ψ(μ) = 2s Σ [p log p + q log q], p = (1 + μ)/2, q = 1 − p (by hand, scalar)."""
    p, q = (1 + mu) / 2, (1 - mu) / 2
    return 2 * s * (p * math.log(p) + q * math.log(q))


def test_psi_prime_is_the_derivative_of_the_potential_and_inverts_mu_of():
    mu, s, h = np.array([-0.9, -0.2, 0.0, 0.5, 0.99]), 0.7, 1e-6
    fd = [(_psi(m + h, s) - _psi(m - h, s)) / (2 * h) for m in mu]
    np.testing.assert_allclose(sbn.psi_prime(mu, s), fd, rtol=1e-7, atol=1e-9)
    theta = np.array([-3.0, 0.4, 2.5])
    np.testing.assert_allclose(sbn.psi_prime(sbn.mu_of(theta, s), s), theta, rtol=1e-12)


def test_mirror_step_is_the_bregman_argmin():
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(3)
    mu, g, s, eta = rng.uniform(-0.95, 0.95, 6), 3 * rng.standard_normal(6), 0.8, 0.4
    new = sbn.mirror_step(mu, g, eta, s)
    for m0, gi, m1 in zip(mu, g, new):
        def obj(m):  # η g m + D_Ψ(m ‖ m0), all from Ψ's own formula
            return eta * gi * m + _psi(m, s) - _psi(m0, s) - float(sbn.psi_prime(m0, s)) * (m - m0)

        ref = minimize_scalar(obj, bounds=(-1 + 1e-12, 1 - 1e-12), method="bounded", options={"xatol": 1e-12}).x
        assert m1 == pytest.approx(ref, abs=1e-7)
    np.testing.assert_allclose(sbn.psi_prime(new, s) - sbn.psi_prime(mu, s), -eta * g, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 21])
def test_mirror_descent_equals_latent_step_with_grad_mu(seed):
    net, _, rng = _problem(1, seed=seed)
    s = 1.0
    theta0 = 0.5 * rng.standard_normal(net.n_params)
    md = sbn.mirror_descent(theta0, net, s, eta=0.2, steps=50)
    tau = 1.0 / (2 * s)
    # μ(θ) = tanh(θ/2s) is τ times the LNE potential's mirror map ∇Φ(θ) = tanh(τθ)/τ
    np.testing.assert_allclose(sbn.mu_of(md["latent"], s), np.tanh(tau * md["latent"]), atol=1e-15)
    np.testing.assert_allclose(sbn.mu_of(md["latent"], s), tau * np.asarray(mirror_map(md["latent"], tau)), atol=1e-15)
    # step by step, in μ-space (no ε/(1 − μ²) loss whatever |θ| reaches)
    for k in range(51):
        np.testing.assert_allclose(md["md_mu"][k], sbn.mu_of(md["latent"][k], s), rtol=0, atol=sbn.MD_TOL)
    np.testing.assert_allclose(md["loss_latent"], md["loss_md"], atol=1e-12)
    # the ∂L/∂θ step departs measurably, and ends at a different loss
    assert np.linalg.norm(md["latent"][-1] - md["grad_theta"][-1]) > 0.1
    assert abs(md["loss_latent"][-1] - md["loss_grad_theta"][-1]) > 1e-3
    assert md["loss_latent"][-1] < md["loss_latent"][0]


def test_mirror_descent_with_saturated_means():
    # θ0 = 40, s = 1: tanh(20) rounds to 1 in float64; the latent iteration is unaffected, μ-space stays in
    # [−MU_EDGE, MU_EDGE] and agrees in μ
    net, _, _ = _problem(1)
    md = sbn.mirror_descent(np.full(net.n_params, 40.0), net, 1.0, eta=0.2, steps=5)
    assert np.all(np.isfinite(md["latent"])) and np.abs(md["latent"]).min() > 35
    assert np.abs(md["md_mu"]).max() <= sbn.MU_EDGE
    np.testing.assert_allclose(md["md_mu"], sbn.mu_of(md["latent"], 1.0), rtol=0, atol=sbn.MD_TOL)
    np.testing.assert_allclose(md["loss_latent"], md["loss_md"], atol=1e-12)


def test_expectation_and_grad_by_hand():
    # two weights, f(W) = w1 + 2 w1 w2: E f = μ1 + 2 μ1 μ2, ∂/∂μ = (1 + 2μ2, 2μ1)
    theta, s = np.array([0.3, -1.1]), 0.6
    W, logp = sbn.weight_configs(theta, s)
    mu = sbn.mu_of(theta, s)
    e, g = sbn.expectation_and_grad(W[:, 0] + 2 * W[:, 0] * W[:, 1], W, logp)
    assert e == pytest.approx(mu[0] + 2 * mu[0] * mu[1], abs=1e-14)
    np.testing.assert_allclose(g, [1 + 2 * mu[1], 2 * mu[0]], atol=1e-14)


def test_z_scores_guard_zero_standard_error():
    z = sbn.z_scores(np.tile([1.0, 2.0, 3.0], (4, 1)), np.array([1.0, 0.0, 3.0]))
    np.testing.assert_array_equal(z, [0.0, np.inf, 0.0])
    assert sbn.z_scores(np.array([[0.0], [2.0]]), np.array([0.0]))[0] == pytest.approx(1.0)


# --------------------------------------------------------------------------- properties
@settings(deadline=None, max_examples=25)
@given(st.integers(0, 2**31), st.floats(0.05, 5.0), st.floats(0.1, 6.0), st.integers(0, 2))
def test_enumeration_probabilities_sum_to_one(seed, s, scale, depth):
    net, theta, _ = _problem(depth, seed=seed)
    W, logp = sbn.weight_configs(scale * theta, s)
    assert np.exp(logp.sum(1)).sum() == pytest.approx(1.0, abs=1e-12)
    _, dist = sbn.conditional_loss(W, net, s, return_dist=True)
    np.testing.assert_allclose(dist.sum(-1), 1.0, atol=1e-12)
    assert dist.min() >= 0


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 2**31), st.integers(2, 50), st.integers(1, 6), st.floats(0.01, 100.0))
def test_mse_is_bias2_plus_variance(seed, m, p, scale):
    rng = np.random.default_rng(seed)
    d = sbn.decompose(scale * rng.standard_normal((m, p)) + rng.standard_normal(p), rng.standard_normal(p))
    assert d["mse"] == pytest.approx(d["bias2"] + d["var"], rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- validation and the report
def test_validation_errors(tmp_path):
    net, theta, _ = _problem(1)
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="s="):
            sbn.exact(theta, net, bad)
    big = sbn.Net(np.ones((2, 3)), np.ones(2), (4, 4, 4))
    with pytest.raises(ValueError, match=f"{2 ** (big.n_params + 12)} configurations"):
        sbn.exact(np.zeros(big.n_params), big, 1.0)
    wide = sbn.Net(np.ones((2, 24)), np.ones(2), ())  # 2^24 configurations, but 2^24 × 24 floats
    with pytest.raises(ValueError, match=f"{wide.peak_bytes} bytes > limit {sbn.MAX_BYTES}"):
        sbn.exact(np.zeros(wide.n_params), wide, 1.0)
    assert wide.peak_bytes == 8 * 2**24 * 24
    many = sbn.Net(np.ones((50_000, 2)), np.ones(50_000), (3,))  # transition array 2^9 · N · 8 · 3 floats
    assert many.n_configs <= sbn.MAX_CONFIGS and many.peak_bytes == 8 * 2**9 * 50_000 * 8 * 3
    with pytest.raises(ValueError, match="bytes > limit"):
        many.check_enumerable()
    with pytest.raises(ValueError, match="m="):
        sbn.sample_losses(theta, net, 1.0, True, np.random.default_rng(0))
    with pytest.raises(ValueError, match="steps="):
        sbn.mirror_descent(theta, net, 1.0, 0.1, 0)
    with pytest.raises(ValueError, match="loss="):
        sbn.Net(np.ones((2, 3)), np.ones(2), (2,), loss="hinge")
    with pytest.raises(ValueError, match="seed="):
        sbn.run(tmp_path, seed=-1)


def test_numpy_scalars_accepted():
    net, theta, _ = _problem(1)
    assert sbn.exact(theta, net, np.float32(1.0))["loss"] == sbn.exact(theta, net, 1.0)["loss"]
    assert sbn.sample_losses(theta, net, np.float64(0.5), np.int64(7), np.random.default_rng(0)).shape == (7,)


def test_run_quick_writes_report(tmp_path):
    data = sbn.run(tmp_path, quick=True, progress=False)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == data
    md = (tmp_path / "report.md").read_text()
    for png in data["plots"]:
        assert (tmp_path / png).stat().st_size > 1000
        assert f"({png})" in md
    assert data["mirror"]["max_deviation"] <= data["mirror"]["tolerance"] == sbn.MD_TOL
    for row in data["sweep"]:
        for v in row["estimators"].values():
            assert v["mse"] == pytest.approx(v["bias2"] + v["var"], rel=1e-9)
        assert row["z_threshold"] > 2.5
    assert all(abs(c["z"]) < 5 for c in data["enumeration_check"])
    passed = sum(r["estimators"]["reinforce"]["max_z"] <= r["z_threshold"] for r in data["sweep"])
    assert f"passes in {passed} of {len(data['sweep'])} settings" in md
    assert ("(no evidence of bias)" in md) == (passed == len(data["sweep"]))
    assert "equals mirror descent" in md
