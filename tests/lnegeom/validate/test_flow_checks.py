"""The flow checks of `lnegeom validate` (lnegeom.validate.flow_checks): their numbers on small grids."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lnegeom.curvature import MetricError
from lnegeom.domains import Torus
from lnegeom.flow import flow_diagnostics, solve_flow
from lnegeom.validate import REGISTRY
from lnegeom.validate.flow_checks import (
    _crossing,
    _gaussian_torus_norm,
    amplitude_scan,
    conformal_run,
    gauge_run,
    gaussian_power_law,
    growing_L_rates,
    periodic_gaussian,
    pullback_of_delta,
    spectrum_run,
    torus_diffeomorphism,
)

L = 2 * math.pi
OURS = ["flow-growing-L", "flow-gauge", "flow-conformal-2d", "flow-linear-spectrum", "flow-nonlinear-amplitude"]


def test_checks_are_registered_in_the_flow_section():
    for cid in OURS + ["flow-torus-decay"]:
        assert REGISTRY[cid].section == "flow", cid


# ---------------------------------------------------------------- check 3: growing L
def test_periodic_gaussian_matches_its_fourier_series():
    T = Torus(2, 30, 12.0)
    G = periodic_gaussian(T, 1.0)
    assert T.too_coarse(G) is None
    # Parseval with the exact coefficients (2πσ²)/L² e^{−|k|²σ²/2}
    assert T.l2_norm(G) == pytest.approx(float(_gaussian_torus_norm(2, 12.0, 1.0, np.array([0.0]))[0]), rel=1e-12)
    assert G.max() == pytest.approx(1.0, abs=1e-12)


def test_growing_L_rate_vanishes_like_L_to_the_minus_2():
    r = growing_L_rates([8.0, 12.0], [20, 30])
    for run in r["runs"]:
        assert abs(run["rate"] / run["theory"] - 1) < 1e-4, run["rate"]
        assert run["theory"] == pytest.approx((2 * math.pi / run["L"]) ** 2, rel=1e-3)
        assert run["decades"] > 3.4
    assert abs(r["exponent"] + 2) < 1e-3


def test_gaussian_bump_decays_like_the_heat_kernel_power_law():
    law = gaussian_power_law(2, 12.0, 30, t_late=30.0)
    assert abs(law["exponent"] - 0.5) < 5e-4  # n/4
    assert abs(law["exponent"] - law["exponent_torus"]) < 3e-4  # the torus' exact linear solution
    assert law["max_dev_exact"] < 1e-3
    # after the boundary is felt the norm saturates at the mean: no decay to 0
    late = law["norms"][law["t"] > 20]
    assert np.ptp(late) < 0.02 * late[-1]
    assert late[-1] > 0.4 * law["norms"][0] * (law["s2"][-1]) ** -0.5


# ---------------------------------------------------------------- check 4: gauge
def test_pullback_of_delta_is_flat_to_machine_precision():
    T = Torus(2, 10, L)
    g = pullback_of_delta(T, torus_diffeomorphism())
    d = flow_diagnostics(g, T)
    assert d["max_rm"] < 1e-12
    assert T.l2_norm(g - T.mean(g)) > 1.0  # far from a constant metric
    with pytest.raises(ValueError, match="strength"):
        torus_diffeomorphism(0.5)


def test_gauge_pullback_static_under_ricci_decays_under_deturck_and_invariants_agree():
    r = gauge_run(11, t_end=8.0, samples=33)
    pr, pd = r["pb ricci"], r["pb ricci-deturck"]
    assert pr["change"] < 1e-12 and pr["max_rm"].max() < 1e-12
    assert pd["to_limit"][-1] < 1e-3 * pd["to_limit"][0]  # decays under Ricci–DeTurck ...
    assert np.abs(pd["g_inf"] - np.eye(2)).max() < 1e-6  # ... to δ (φ is isotopic to the identity)
    assert pd["max_rm"].max() < 1e-4  # stays a pull-back of δ to grid accuracy
    gr, gd = r["gen ricci"], r["gen ricci-deturck"]
    for d in (gr, gd):  # gauge-invariant quantities decay under both, at λ₁ and 2λ₁
        assert d["max_rm"][-1] < 1e-3 * d["max_rm"][0]
        assert abs(d["rate_int_rm2"] / (2 * r["gen lam1"]) - 1) < 2e-3
    assert r["int_rm2 rel. diff"] < 1e-5
    assert gr["nonconst"][-1] > 0.5 * gr["nonconst"][0]  # but g itself does not settle on a constant metric
    assert gd["nonconst"][-1] < 1e-3 * gd["nonconst"][0]
    assert (r["zero modes ricci"], r["zero modes ricci-deturck"]) == (2 * 7**2 + 1, 3)


# ---------------------------------------------------------------- check 5: conformal 2-D
def test_conformal_tensor_flow_agrees_with_the_scalar_flow():
    r = conformal_run(16, 0.1, 0.5, samples=5)
    assert r["RK45 1e-9"]["diff"] < 1e-8
    assert r["RK45 1e-7"]["diff"] < 2e-6
    assert r["etd 1e-6"]["diff"] < 2e-5
    assert r["RK45 1e-9"]["diff"] < 0.1 * r["etd 1e-6"]["diff"]  # the difference is time-integration error
    assert r["conformal defect"] < 1e-13 and r["max |W|"] < 1e-12 and r["area change"] < 1e-10
    assert r["u decay"][-1] < 0.6 * r["u decay"][0]  # the flow did something (rate ≈ 1.3 at t ≤ 0.5)


def test_scalar_flow_decays_like_the_heat_equation_for_small_u():
    from lnegeom.validate.flow_checks import scalar_conformal_flow

    T = Torus(2, 8, L)
    x = T.points()
    u0 = 1e-6 * np.cos(x[..., 0] + x[..., 1])
    u = scalar_conformal_flow(u0, L, np.array([0.0, 1.0]))
    assert np.abs(u[-1] - u0 * math.exp(-2.0)).max() < 1e-11


# ---------------------------------------------------------------- check 6: linear spectrum
def test_linear_spectrum_matches_symbol_and_nonlinear_rate():
    r = spectrum_run(9)
    a, p = r["A"], r["pull-back"]
    for d in (a, p):
        assert d["spectrum"].n_zero == 3 and d["at_limit"].n_zero == 3
        assert d["symbol err"] < 1e-7
        assert abs(d["rate"] / d["at_limit"].slowest - 1) < 2e-5
    assert a["spectrum"].slowest == pytest.approx(0.6 / 0.51, rel=1e-9)
    assert p["spectrum"].slowest == pytest.approx(1.0, rel=1e-8)
    # the limit of the perturbed pull-back is another flat metric: its rate differs at O(amplitude)
    assert 1e-6 < 1 - p["at_limit"].slowest < 1e-3
    with pytest.raises(ValueError, match="odd N"):
        spectrum_run(8)


# ---------------------------------------------------------------- check 8: amplitude scan
def test_amplitude_scan_departure_grows_like_a_squared():
    r = amplitude_scan(9, [1e-3, 0.1, 0.3])
    dep = r["departure"]
    assert r["spectrum"].slowest == pytest.approx(1.0, abs=1e-8)
    assert dep[0] < 1e-5
    assert 5e-4 < dep[1] < 3e-3 and 5e-3 < dep[2] < 2e-2
    assert abs(r["exponent"] - 2.0) < 0.1
    assert r["threshold"] is None  # 5 % is not reached below a = 0.3
    assert np.all(r["departure_limit"] < dep)  # part of the departure is the shift of the limit metric


def test_crossing_interpolates_in_log_log():
    a = np.array([0.1, 0.2, 0.4])
    d = 0.5 * a**2  # reaches 0.05 at a = √0.1
    assert _crossing(a, d, 0.05) == pytest.approx(math.sqrt(0.1), rel=1e-12)
    assert _crossing(a, d, 1.0) is None
    assert _crossing(a, d, 1e-4) == 0.1


def test_solver_agrees_with_the_check_helpers_on_the_stationary_pullback():
    # φ*δ as its own background is stationary for Ricci–DeTurck: the solver leaves it in place
    T = Torus(2, 9, L)
    g = pullback_of_delta(T, torus_diffeomorphism())
    res = solve_flow(g, (0, 2), domain=T, background=g, t_eval=[2.0], diagnostics=False)
    assert res.status == 0 and np.abs(res.g[-1] - g).max() < 1e-12


# ---------------------------------------------------------------- non-finite and complex input is refused
def _flat_g0(T):
    return np.broadcast_to(np.eye(2), (*T.shape, 2, 2)).copy()


def _grid_point(T, idx):
    coords = ", ".join(f"{i * h:.6g}" for i, h in zip(idx, T.spacing))
    return re.escape(f"grid point {tuple(idx)}, x = [{coords}]")


@given(
    point=st.tuples(st.integers(0, 7), st.integers(0, 7)),
    comp=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    member=st.sampled_from([None, 0, 2]),
)
def test_non_finite_g0_entry_is_named_with_grid_index_and_component(point, comp, bad, member):
    T = Torus(2, 8, L)
    g0 = _flat_g0(T)
    if member is None:
        g0[point + comp] = bad
        full, where = point + comp, ""
    else:
        g0 = np.stack([g0] * 3)
        g0[(member,) + point + comp] = bad
        full, where = (member,) + point + comp, f"batch member {member}, "
    with pytest.raises(MetricError, match=(
        rf"g0 has a non-finite entry g0{re.escape(str(list(full)))} = {re.escape(str(bad))} at "
        rf"{re.escape(where)}{_grid_point(T, point)}, component \(i, j\) = \({comp[0]}, {comp[1]}\); "
        r"every entry must be finite: fix how g0 is computed there"
    )):
        solve_flow(g0, (0, 1), domain=T, batch=member is not None)


@pytest.mark.parametrize("as_torch", [False, True])
def test_complex_g0_is_refused_not_cast(as_torch):
    T = Torus(2, 8, L)
    g0 = _flat_g0(T).astype(complex)
    wrap = torch.as_tensor if as_torch else np.asarray
    with pytest.raises(MetricError, match=r"g0 has a complex dtype \(complex128\); a metric is real and is never "
                                          r"cast silently \(all imaginary parts are zero: pass g0.real\)"):
        solve_flow(wrap(g0), (0, 1), domain=T)
    g0[3, 5, 1, 0] += 1e-3j
    with pytest.raises(MetricError, match=(r"g0\[3, 5, 1, 0\] = 0\+0.001j at " + _grid_point(T, (3, 5))
                                           + r", component \(i, j\) = \(1, 0\); pass g0.real only if")):
        solve_flow(wrap(g0), (0, 1), domain=T)


def test_bad_background_and_reference_are_named():
    T = Torus(2, 8, L)
    g0 = _flat_g0(T)
    const = np.array([[1.0, np.nan], [np.nan, 1.0]])
    with pytest.raises(MetricError, match=r"background has a non-finite entry background\[0, 1\] = nan at component "
                                          r"\(i, j\) = \(0, 1\) of the constant matrix; every entry must be finite"):
        solve_flow(g0, (0, 1), domain=T, background=const)
    field = _flat_g0(T)
    field[2, 1, 1, 1] = np.inf
    with pytest.raises(MetricError, match=(r"background has a non-finite entry background\[2, 1, 1, 1\] = inf at "
                                           + _grid_point(T, (2, 1)) + r", component \(i, j\) = \(1, 1\)")):
        solve_flow(g0, (0, 1), domain=T, background=field)
    with pytest.raises(MetricError, match=r"background has a complex dtype.*background\[0, 0\] = 1\+0.5j"):
        solve_flow(g0, (0, 1), domain=T, background=np.eye(2) * (1 + 0.5j))
    with pytest.raises(MetricError, match=r"background has a complex dtype.*pass background.real"):
        solve_flow(g0, (0, 1), domain=T, background=torch.as_tensor(_flat_g0(T) + 0j))
    with pytest.raises(MetricError, match=r"background is not positive definite at grid point \(4, 4\)"):
        bad = _flat_g0(T)
        bad[4, 4] = -np.eye(2)
        solve_flow(g0, (0, 1), domain=T, background=bad)  # named 'background', not 'g0'
    with pytest.raises(MetricError, match=r"reference has a complex dtype.*reference\[1, 1\] = 1\+2j"):
        solve_flow(g0, (0, 1), domain=T, reference=np.diag([1.0, 1.0 + 2j]))
    with pytest.raises(MetricError, match=r"reference has a non-finite entry reference\[0, 0\] = nan"):
        solve_flow(g0, (0, 1), domain=T, reference=np.diag([np.nan, 1.0]))
