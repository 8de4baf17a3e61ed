"""The ReSTE study (rfdnn_bridge.studies.reste): indicators, surrogates, the angle measure, the report."""

import json
import math
from itertools import product

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rfdnn_bridge.estimators import ClippedSTE, IdentitySTE, ReSTE, get_estimator
from rfdnn_bridge.studies import reste

torch.set_num_threads(1)


# --------------------------------------------------------------------------- indicators by hand
def test_clipped_error_zero_at_plus_minus_one():
    w = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    assert reste.estimating_error(ClippedSTE(), w) == 0.0
    assert reste.estimating_error(IdentitySTE(), 2 * w) == pytest.approx(1.0)  # |±1 − ±2| = 1


def test_identity_error_on_uniform_grid_is_one_half():
    # midpoints of n bins of [−1, 1]: mean |sign(w) − w| = mean (1 − |w|) = 1/2 exactly
    n = 1000
    w = -1.0 + (np.arange(n) + 0.5) * (2.0 / n)
    assert reste.estimating_error(IdentitySTE(), w) == pytest.approx(0.5, abs=1e-12)


def test_stability_by_hand():
    w = np.array([0.5, -0.5, 2.0, -2.0])
    assert reste.stability(ClippedSTE(), w) == pytest.approx(0.25)  # indicator half 1, half 0
    assert reste.stability(IdentitySTE(), w) == 0.0
    # ReSTE o = 2, m = 0.1, t = 1.5 at |w| = 0.25 (F' = ½·0.25^{−½} = 1) and |w| = 1 (F' = ½)
    assert reste.stability(ReSTE(o=2.0), np.array([0.25, -1.0])) == pytest.approx(0.0625)


# --------------------------------------------------------------------------- surrogate' = backward rule
CASES = [get_estimator(name, **p) for _, name, p in reste.ESTIMATORS] + [
    ReSTE(o=1.0), ReSTE(o=2.5), ReSTE(o=4.0, t=1.2, m=0.3), ClippedSTE(c=0.7),
    get_estimator("swishsign", beta=2.0), get_estimator("stochastic_binary", s=0.3),
]


@pytest.mark.parametrize("est", CASES, ids=lambda e: f"{e.name}({e.extra_repr()})")
def test_surrogate_derivative_is_backward_rule(est):
    kinks = [0.0, 1.0] + [getattr(est, k) for k in ("c", "m", "t") if hasattr(est, k)]
    x = np.linspace(-3.0, 3.0, 1201)
    x = x[np.min(np.abs(np.abs(x)[:, None] - np.array(kinks)[None]), axis=1) > 1e-3]
    h = 1e-6
    fd = (reste.surrogate(est, x + h) - reste.surrogate(est, x - h)) / (2 * h)
    np.testing.assert_allclose(fd, est.backward_rule(x, np.ones_like(x)), rtol=1e-5, atol=1e-5)


def test_surrogate_missing_raises():
    with pytest.raises(ValueError, match="dorefa_w"):
        reste.surrogate(get_estimator("dorefa_w"), np.zeros(3))


FIXED = np.random.default_rng(1).normal(0.0, 0.7, 500)


@settings(deadline=None, max_examples=25)
@given(st.floats(1.0, 4.0), st.floats(0.0, 3.0))
def test_reste_error_decreases_in_o(o, step):
    o2 = min(o + step, 4.0)
    assert reste.estimating_error(ReSTE(o=o2), FIXED) <= reste.estimating_error(ReSTE(o=o), FIXED) + 1e-12


@settings(deadline=None, max_examples=25)
@given(st.floats(0.2, 3.0), st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=20))
def test_reste_o1_is_clipped_with_c_t(t, xs):
    x = np.array(xs)
    r, c = ReSTE(o=1.0, t=t, m=min(0.1, t)), ClippedSTE(c=t)
    np.testing.assert_allclose(reste.surrogate(r, x), reste.surrogate(c, x), atol=1e-12)
    np.testing.assert_array_equal(r.backward_rule(x, np.ones_like(x)), c.backward_rule(x, np.ones_like(x)))
    assert reste.estimating_error(r, x) == pytest.approx(reste.estimating_error(c, x))


# --------------------------------------------------------------------------- the angle measure
def test_angles_on_a_linear_model_by_hand():
    a, y, s, tau = np.array([0.8, -1.3, 0.5]), 0.4, 0.7, 0.8
    w = np.array([0.3, -0.6, 0.9])
    at = torch.tensor(a)
    angles = reste.gradient_angles(lambda b: (b @ at - y) ** 2, torch.tensor(w), {"identity": IdentitySTE()},
                                   [(3,)], s=s, tau=tau)

    mu = np.tanh(w / (2 * s))
    ref = np.zeros(3)
    for b in product([-1.0, 1.0], repeat=3):
        b = np.array(b)
        p = np.prod(1 / (1 + np.exp(-b * w / s)))
        ref += (a @ b - y) ** 2 * p * (b - mu) / (2 * s)
    ste = 2 * (a @ np.sign(w) - y) * a
    t = np.tanh(tau * w)
    lne = np.linalg.solve(np.eye(3) - np.outer(t, t), ste)

    def ang(u, v):
        return math.degrees(math.acos(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))

    assert angles["identity"] == pytest.approx(ang(ste, ref), abs=1e-9)
    assert angles["lne"] == pytest.approx(ang(lne, ref), abs=1e-9)
    assert abs(angles["lne"] - angles["identity"]) > 1e-3  # the transform does change the direction


def test_angle_deg_undefined_is_nan():
    assert math.isnan(reste.angle_deg(torch.zeros(3), torch.ones(3)))
    assert math.isnan(reste.angle_deg(torch.tensor([1.0, math.nan]), torch.ones(2)))
    assert math.isnan(reste.angle_deg(torch.ones(2), torch.tensor([math.inf, 0.0])))
    assert reste.angle_deg(torch.ones(2), -torch.ones(2)) == pytest.approx(180.0)
    assert reste.angle_deg(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == pytest.approx(45.0)


def test_angle_summary_skips_and_counts_undefined():
    a = [10.0, math.nan, 30.0, 20.0]
    ref = [12.0, 5.0, math.nan, 18.0]
    r = reste.angle_summary(a, ref)
    assert r["angle"] == pytest.approx(20.0) and r["n_undefined"] == 1
    assert r["angle_se"] == pytest.approx(10.0 / math.sqrt(3))
    assert r["minus_ref"] == pytest.approx(0.0)  # paired over draws 0 and 3 only: (−2 + 2)/2
    assert r["minus_ref_se"] == pytest.approx(2.0)
    assert reste.angle_summary([math.nan], [1.0])["angle"] is None


def test_smoothed_grad_matches_torch_autograd_enumeration():
    # the shared numpy enumeration (sbn) against autograd of Σ_b p(b) L(b) with P(b = +1) = σ(w/s)
    gen = torch.Generator().manual_seed(4)
    a, w, s = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen,
                                                                                dtype=torch.float64), 0.4
    def loss_of(b):
        return torch.tanh(b @ a) ** 2
    b = torch.tensor(list(product([-1.0, 1.0], repeat=5)), dtype=torch.float64)
    wl = w.clone().requires_grad_(True)
    (want,) = torch.autograd.grad((torch.nn.functional.logsigmoid(b * wl / s).sum(1).exp() * loss_of(b)).sum(), wl)
    torch.testing.assert_close(reste.smoothed_grad(loss_of, w, s), want, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- validation and the run
def test_invalid_inputs():
    with pytest.raises(ValueError, match="o=0.5"):
        reste.run("/nonexistent", o_values=[0.5], progress=False)
    with pytest.raises(ValueError, match="'cauchy'"):
        reste.sample_weights("cauchy", 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="s=0"):
        reste.smoothed_grad(lambda b: b.sum(1), torch.zeros(2), 0)
    with pytest.raises(ValueError, match="size 0"):
        reste.stability(IdentitySTE(), np.array([]))


def test_run_quick_writes_report(tmp_path):
    data = reste.run(tmp_path, quick=True, progress=False)
    assert json.loads((tmp_path / "report.json").read_text()) == data
    md = (tmp_path / "report.md").read_text()
    for png in data["plots"]:
        assert (tmp_path / png).stat().st_size > 1000 and f"({png})" in md
    errs = [r["gaussian"]["error"] for r in data["sweep"]]
    assert errs == sorted(errs, reverse=True) and data["sweep"][0]["o"] == 1.0 and data["sweep"][-1]["o"] == 4.0
    assert 0.0 <= data["lne"]["angle"] <= 180.0
    assert f"falls from {errs[0]:.4f} to {errs[-1]:.4f}" in md
    # the stochastic-binary estimator smooths at the reference's s (B2)
    assert dict((lab, p) for lab, _, p in reste.ESTIMATORS)["stochastic_binary"] == {"s": reste.SMOOTH_S}
    assert f"uses s = {reste.SMOOTH_S:g}" in md
    # comparisons are paired differences with a computed verdict, not ranks
    ident = data["estimators"]["identity"]
    assert ident["minus_ref"] == 0.0 and data["reference"] == "identity"
    lne = data["lne"]
    verdict = ("indistinguishable" if abs(lne["minus_ref"]) < 2 * lne["minus_ref_se"]
               else "smaller" if lne["minus_ref"] < 0 else "larger")
    assert f"{lne['minus_ref']:+.2f} ± {lne['minus_ref_se']:.2f}° ({verdict})" in md
    assert "ranks" not in md and "smallest at" not in md
