"""The Yin et al. study (rfdnn_bridge.studies.yin): closed forms against Monte Carlo, properties, the report."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfdnn_bridge.studies import yin, z_score

M, N = 5, 3


def _setup(seed: int, w_scale: float = 0.7):
    rng = np.random.default_rng(seed)
    v_star, w_star = rng.standard_normal(M), rng.standard_normal(N)
    w_star /= np.linalg.norm(w_star)
    return rng, v_star, w_star, rng.standard_normal(M), w_scale * rng.standard_normal(N)


@pytest.mark.parametrize("seed", [0, 1])
def test_population_loss_and_v_grad_match_monte_carlo(seed):
    rng, v_star, w_star, v, w = _setup(seed)
    Z = rng.standard_normal((100_000, M, N))
    loss, gv, _ = yin.sample_loss_and_grads(v, w, v_star, w_star, Z)
    se = loss.std(ddof=1) / math.sqrt(len(loss))
    assert abs(loss.mean() - yin.population_loss(v, w, v_star, w_star)) < 5 * se
    se_v = gv.std(0, ddof=1) / math.sqrt(len(gv))
    assert np.all(np.abs(gv.mean(0) - yin.population_grad(v, w, v_star, w_star)[0]) < 5 * se_v)


def test_w_grad_matches_finite_differences():
    _, v_star, w_star, v, w = _setup(2)
    gw = yin.population_grad(v, w, v_star, w_star)[1]
    h, eye = 1e-6, np.eye(N)
    fd = [(yin.population_loss(v, w + h * e, v_star, w_star) - yin.population_loss(v, w - h * e, v_star, w_star))
          / (2 * h) for e in eye]
    np.testing.assert_allclose(gw, fd, rtol=1e-5, atol=1e-8)
    assert np.linalg.norm(gw) > 1e-3  # not a trivial match


def test_w_grad_zero_at_kinks():
    _, v_star, w_star, v, _ = _setup(3)
    for w in (2.0 * w_star, -0.5 * w_star):
        assert np.all(yin.population_grad(v, w, v_star, w_star)[1] == 0.0)


@pytest.mark.parametrize("ste", list(yin.STES))
@pytest.mark.parametrize("w_scale", [0.4, 1.5])
def test_closed_form_coarse_grad_matches_monte_carlo(ste, w_scale):
    rng, v_star, w_star, v, w = _setup(4, w_scale)
    mean, se = yin.expected_coarse_grad(ste, v, w, v_star, w_star, 60_000, rng)
    exact = yin.coarse_grad_closed_form(ste, v, w, v_star, w_star)
    assert np.all(np.abs(mean - exact) < 5 * se)
    assert np.linalg.norm(exact) > 10 * se.max()  # the test can tell zero from the answer


def test_stes_are_the_reference_rules():
    from rfdnn_bridge import backward_rules as reference

    assert yin.STES["relu"] is reference.yin_relu_grad
    assert yin.STES["clipped_relu"] is reference.yin_clipped_relu_grad
    assert yin.STES["identity"] is reference.yin_identity_grad


def test_spurious_local_min_is_stationary_and_only_identity_moves():
    rng, v_star, w_star, _, _ = _setup(5)
    v_loc, w_loc, is_min = yin.spurious_local_min(v_star, w_star)
    assert is_min == bool(v_loc @ v_star < 0)
    gv, gw = yin.population_grad(v_loc, w_loc, v_star, w_star)
    np.testing.assert_allclose(gv, 0.0, atol=1e-12)
    for ste in ("relu", "clipped_relu"):
        np.testing.assert_allclose(yin.coarse_grad_closed_form(ste, v_loc, w_loc, v_star, w_star), 0.0, atol=1e-12)
    assert np.linalg.norm(yin.coarse_grad_closed_form("identity", v_loc, w_loc, v_star, w_star)) > 1e-3


def test_descent_reaches_global_min_from_the_teacher_neighbourhood():
    rng, v_star, w_star, _, _ = _setup(6)
    v0 = v_star + 0.1 * rng.standard_normal((4, M))
    w0 = w_star + 0.1 * rng.standard_normal((4, N))
    for ste in yin.STES:
        r = yin.coarse_gradient_descent(ste, v0, w0, v_star, w_star, lr=0.1, steps=700)
        assert r["loss"].shape == (701, 4) and r["cos"].shape == (700, 4)
        assert np.all(r["loss"][-1] < 1e-4 * r["loss"][0])


def test_validation_errors():
    _, v_star, w_star, v, w = _setup(7)
    with pytest.raises(ValueError, match="w = 0"):
        yin.population_loss(v, np.zeros(N), v_star, w_star)
    with pytest.raises(ValueError, match="unit norm"):
        yin.population_grad(v, w, v_star, 2 * w_star)
    with pytest.raises(ValueError, match="unknown STE"):
        yin.coarse_grad_closed_form("sign", v, w, v_star, w_star)
    with pytest.raises(ValueError, match="shape"):
        yin.population_loss(v[:-1], w, v_star, w_star)
    with pytest.raises(ValueError, match="Z must have shape"):
        yin.sample_loss_and_grads(v, w, v_star, w_star, np.zeros((3, N, M)))
    with pytest.raises(ValueError, match="lr"):
        yin.coarse_gradient_descent("relu", v, w, v_star, w_star, lr=0.0)


def test_batch_shape_errors_name_the_shapes():
    _, v_star, w_star, v, w = _setup(7)
    with pytest.raises(ValueError, match=r"same S, got shapes \(5,\), \(2, 3\)"):
        yin.coarse_gradient_descent("relu", v, np.stack([w, w]), v_star, w_star, steps=1)
    with pytest.raises(ValueError, match=r"same S, got shapes \(3, 5\), \(2, 3\)"):
        yin.coarse_gradient_descent("relu", np.stack([v] * 3), np.stack([w, w]), v_star, w_star, steps=1)
    with pytest.raises(ValueError, match=r"single vectors.*\(5,\), \(2, 3\)"):
        yin.sample_loss_and_grads(v, np.stack([w, w]), v_star, w_star, np.zeros((4, M, N)))
    with pytest.raises(ValueError, match=r"single vectors.*\(2, 5\), \(3,\)"):
        yin.sample_loss_and_grads(np.stack([v, v]), w, v_star, w_star, np.zeros((4, M, N)))


def test_descent_single_start_and_w_norm():
    _, v_star, w_star, v, w = _setup(8)
    r = yin.coarse_gradient_descent("relu", v, w, v_star, w_star, steps=5)
    assert r["loss"].shape == r["w_norm"].shape == (6, 1)
    assert r["w_norm"][0, 0] == pytest.approx(np.linalg.norm(w))
    assert r["w_norm"][-1, 0] == pytest.approx(np.linalg.norm(r["w"][0]))


def test_global_min_only_for_positive_multiples():
    _, v_star, w_star, _, _ = _setup(9)
    assert yin.population_loss(v_star, 3.0 * w_star, v_star, w_star) == pytest.approx(0.0, abs=1e-12)
    assert yin.population_loss(v_star, -3.0 * w_star, v_star, w_star) == pytest.approx(v_star @ v_star / 2)


def test_z_scores_never_nan():
    _, v_star, w_star, _, w = _setup(10)
    mean, se = yin.expected_coarse_grad("relu", np.zeros(M), w, v_star, w_star, 10, np.random.default_rng(0))
    assert np.all(se == 0)
    z = z_score(mean - yin.coarse_grad_closed_form("relu", np.zeros(M), w, v_star, w_star), se, atol=1e-12)
    np.testing.assert_array_equal(z, 0.0)
    z = z_score(np.array([1.0, 1.0, 1.0]) - np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.5]), atol=1e-12)
    np.testing.assert_array_equal(z, [0.0, np.inf, 2.0])


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_run_rejects_bad_seed(seed, tmp_path):
    with pytest.raises(ValueError, match=f"seed={seed!r}"):
        yin.run(tmp_path, seed=seed, quick=True, progress=False)
    assert not any(tmp_path.iterdir())


vectors = st.integers(0, 2**32 - 1)


@settings(deadline=None, max_examples=25)
@given(seed=vectors, c=st.floats(0.01, 100.0))
def test_loss_scale_invariant_nonnegative_and_zero_at_teacher(seed, c):
    _, v_star, w_star, v, w = _setup(seed)
    f = yin.population_loss(v, w, v_star, w_star)
    assert f >= 0
    assert yin.population_loss(v, c * w, v_star, w_star) == pytest.approx(f, rel=1e-9, abs=1e-12)
    assert abs(yin.population_loss(v_star, c * w_star, v_star, w_star)) < 1e-12
    for ste in yin.STES:
        np.testing.assert_allclose(yin.coarse_grad_closed_form(ste, v_star, w_star, v_star, w_star), 0.0,
                                   atol=1e-12)


@settings(deadline=None, max_examples=25)
@given(seed=vectors, scale=st.floats(0.1, 10.0))
def test_coarse_grads_never_point_against_true_grad(seed, scale):
    _, v_star, w_star, v, w = _setup(seed, scale)
    gw = yin.population_grad(v, w, v_star, w_star)[1]
    for ste in yin.STES:
        assert yin.coarse_grad_closed_form(ste, v, w, v_star, w_star) @ gw >= -1e-12


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("yin")
    return out, yin.run(out, quick=True, progress=False)


def test_run_quick_writes_consistent_report(quick_run):
    tmp_path, data = quick_run
    assert json.loads((tmp_path / "report.json").read_text()) == data
    md = (tmp_path / "report.md").read_text()
    for name in data["plots"]:
        assert (tmp_path / name).stat().st_size > 1000 and f"({name})" in md
    starts = data["config"]["starts"]
    for ste in yin.STES:
        k = data["descent"][ste]["successes"]
        assert 0 <= k <= starts
        assert f"{ste} STE reached the global minimum in {k}/{starts} starts" in md
        assert f"{data['random_cos'][ste]['mean']:.3f}" in md
        assert data["monte_carlo"][ste]["max_abs_z"] < 5
        sp = data["spurious"][ste]
        assert f"reached θ < π/2 in {sp['escaped']}/{data['config']['spurious_starts']} perturbed starts" in md
        assert sp["median_min_w_norm"] > 0 and f"min ‖w‖ along the path median {sp['median_min_w_norm']:.3g}" in md
    assert data["spurious"]["relu"]["coarse_grad_norm_at_min"] < 1e-10
    assert data["spurious"]["identity"]["coarse_grad_norm_at_min"] > 1e-3


def test_run_is_deterministic(quick_run, tmp_path):
    assert yin.run(tmp_path, quick=True, progress=False) == quick_run[1]
