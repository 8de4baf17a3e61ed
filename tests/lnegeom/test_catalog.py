"""Every catalogue metric against its derived curvature (lnegeom.catalog docstrings).

Two independent paths: the symbolic one (exact, zero decided by ``is_zero``) and
the numeric torch one (MetricField from the lambdified metric, autodiff) at random
points, both against the same closed forms.  Conventions: docs/math.md §1.
"""

import numpy as np
import pytest
import sympy as sp
import torch

from lnegeom import catalog
from lnegeom.catalog import CATALOG, SYMBOLS
from lnegeom.symbolic import SymbolicMetric, is_zero

S = SYMBOLS
t_ = S["t"]
x_, y_ = S["x"], S["y"]

NAMES = list(CATALOG)


@pytest.fixture(scope="module")
def entries():
    return {name: CATALOG[name]() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_symbolic_scalar_and_ricci(entries, name):
    m, exp = entries[name].metric, entries[name].expected
    if "scalar" in exp:
        assert is_zero(m.scalar() - exp["scalar"]), (name, m.scalar(), exp["scalar"])
    if "ricci" in exp:
        diff = m.ricci() - exp["ricci"]
        assert all(is_zero(e) for e in diff), (name, m.ricci())


# the entries with a closed-form Kretschmann scalar (Kerr's is slow: below)
KRETSCHMANN = [
    "sphere2", "sphere2_radius", "sphere3", "sphere3_radius", "hyperbolic_plane", "hyperbolic3",
    "flat_polar", "flat_spherical", "schwarzschild", "s2_times_r",
    "conformal_trig", "warped_transcendental", "sphere_stereographic", "sphere_stereographic_3",
    "lorentzian_exp_trig", "lorentzian_exp_trig_4",
]


@pytest.mark.parametrize("name", KRETSCHMANN)
def test_symbolic_kretschmann(entries, name):
    m, exp = entries[name].metric, entries[name].expected
    assert is_zero(m.kretschmann() - exp["kretschmann"]), (name, m.kretschmann())


@pytest.mark.slow
def test_kerr_kretschmann(entries):
    m, exp = entries["kerr"].metric, entries["kerr"].expected
    assert is_zero(m.kretschmann() - exp["kretschmann"])


@pytest.mark.parametrize("name", NAMES)
def test_numeric_torch_path_matches_closed_form(name):
    errors = catalog.numeric_errors(name)
    assert "scalar" in errors or "ricci" in errors, name
    for key, err in errors.items():
        assert err < (1e-8 if key == "kretschmann" else 1e-9), (name, key, err)


def test_unit_three_sphere_ricci_is_2g(entries):
    m = entries["sphere3"].metric
    assert all(is_zero(e) for e in m.ricci() - 2 * m.matrix)
    assert m.scalar() == 6


def test_schwarzschild_ricci_exactly_zero(entries):
    ric = entries["schwarzschild"].metric.ricci()
    assert ric == sp.zeros(4, 4)  # literally zero, no simplification needed
    assert entries["schwarzschild"].metric.scalar() == 0


def test_kerr_ricci_exactly_zero(entries):
    assert entries["kerr"].metric.ricci() == sp.zeros(4, 4)


def test_unit_sphere_values(entries):
    assert entries["sphere2"].metric.scalar() == 2
    assert entries["hyperbolic_plane"].metric.scalar() == -2
    assert entries["nil"].metric.scalar() == sp.Rational(-1, 2)
    assert entries["sol"].metric.scalar() == -2


@pytest.mark.parametrize("n", [2, 3])
def test_lne_stated_at_origin(entries, n):
    m, exp = entries[f"lne_stated_{n}"].metric, entries[f"lne_stated_{n}"].expected
    at0 = m.scalar().subs({c: 0 for c in m.coords})
    assert sp.simplify(at0 - exp["scalar_at_0"]) == 0


def test_flrw_with_curvature_reduces_to_flat():
    m = catalog.flrw(0).metric
    a = S["a(t)"]
    assert is_zero(m.scalar() - 6 * (a.diff(t_, 2) / a + a.diff(t_) ** 2 / a**2))


def test_every_closed_form_kretschmann_is_checked(entries):
    have = {n for n, e in entries.items() if "kretschmann" in e.expected}
    assert have == set(KRETSCHMANN) | {"kerr"}


# ------------------------------------------- transcendental functions of trig coordinates
# Metrics with exp/non-rational functions of sin, cos of a coordinate (and the rational
# stereographic sphere, for contrast).  The parametrised tests above pick them up through
# CATALOG; the tests below add more numeric points, the symbolic path against the numeric
# one, and checks of the closed forms themselves.
TRANSCENDENTAL = [
    "conformal_trig", "warped_transcendental", "sphere_stereographic", "sphere_stereographic_3",
    "lorentzian_exp_trig", "lorentzian_exp_trig_4",
]


def test_transcendental_entries_registered():
    for name in TRANSCENDENTAL:
        assert name in CATALOG and name in catalog.SAMPLE_BOXES, name
        assert set(CATALOG[name]().expected) == {"scalar", "ricci", "kretschmann"}, name
        assert (name in catalog.LORENTZIAN) == name.startswith("lorentzian"), name
    for fn in ("conformal_trig", "warped_transcendental", "sphere_stereographic", "lorentzian_exp_trig"):
        assert fn in catalog.__all__


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_transcendental_numeric_torch_matches_closed_form(name, seed):
    """Torch autodiff of the lambdified metric vs the closed forms at 8 more random points."""
    errors = catalog.numeric_errors(name, k=8, seed=seed)
    assert set(errors) == {"scalar", "ricci", "kretschmann"}, name
    for key, err in errors.items():
        assert err < (1e-8 if key == "kretschmann" else 1e-9), (name, key, err)


@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_transcendental_symbolic_matches_numeric(entries, name):
    """The symbolic R and Ric, lambdified, vs torch autodiff of the metric (no closed form involved)."""
    m = entries[name].metric.subs(catalog.NUMERIC_PARAMS)
    pts = catalog.sample_points(name, k=6, seed=3)
    curv = m.metric_field("torch", check=name not in catalog.LORENTZIAN).curvature(torch.as_tensor(pts))
    np.testing.assert_allclose(m.lambdify("scalar", "numpy")(pts), curv.scalar.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m.lambdify("ricci", "numpy")(pts), curv.ricci.numpy(), rtol=1e-9, atol=1e-9)


def test_exp_sin_conformal_scalar():
    """g = e^{sin x} δ (conformal_trig with u = sin(x)/2): R = e^{−sin x} sin x, symbolically."""
    want = sp.exp(-sp.sin(x_)) * sp.sin(x_)
    e = catalog.conformal_trig(sp.sin(x_) / 2)
    assert e.metric.matrix == sp.exp(sp.sin(x_)) * sp.eye(2)
    assert sp.simplify(e.expected["scalar"] - want) == 0
    assert is_zero(SymbolicMetric((x_, y_), sp.exp(sp.sin(x_)) * sp.eye(2)).scalar() - want)


@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_transcendental_closed_forms_consistent(entries, name):
    """The closed forms among themselves: R = tr(g⁻¹ Ric); in dimension 2 Ric = (R/2) g and K = R² (C5)."""
    m, exp = entries[name].metric, entries[name].expected
    g = m.matrix
    assert sp.simplify((g.inv() * exp["ricci"]).trace() - exp["scalar"]) == 0, name
    if m.n == 2:
        assert sp.simplify(exp["ricci"] - exp["scalar"] / 2 * g) == sp.zeros(2, 2), name
        assert sp.simplify(exp["kretschmann"] - exp["scalar"] ** 2) == 0, name


def test_lorentzian_exp_trig_4_is_flrw_flat_with_a_exp_sin():
    """lorentzian_exp_trig(4) is flrw_flat with a(t) = e^{sin t}: same metric, same closed forms."""
    sub = {S["a(t)"]: sp.exp(sp.sin(t_))}
    fl, le = catalog.flrw_flat(), catalog.lorentzian_exp_trig(4)
    assert sp.simplify(fl.metric.matrix.subs(sub) - le.metric.matrix) == sp.zeros(4, 4)
    assert sp.simplify(fl.expected["scalar"].subs(sub).doit() - le.expected["scalar"]) == 0
    assert sp.simplify(fl.expected["ricci"].subs(sub).doit() - le.expected["ricci"]) == sp.zeros(4, 4)
    # d = 3: the classical flat-FLRW Kretschmann 12((ä/a)² + (ȧ/a)⁴)
    a = sp.exp(sp.sin(t_))
    k12 = 12 * ((a.diff(t_, 2) / a) ** 2 + (a.diff(t_) / a) ** 4)
    assert sp.simplify(k12 - le.expected["kretschmann"]) == 0


@pytest.mark.parametrize("n", [2, 3])
def test_stereographic_is_pullback_of_the_round_sphere(n):
    """(C6): the inverse stereographic projection pulls δ on ℝⁿ⁺¹ back to catalog.sphere_stereographic(n)."""
    m = catalog.sphere_stereographic(n).metric
    rho = S["R_0"]
    X = m.coords
    s = sum(c**2 for c in X)
    emb = [rho * 2 * c / (1 + s) for c in X] + [rho * (s - 1) / (1 + s)]
    flat = SymbolicMetric(sp.symbols(f"w_1:{n + 2}", real=True), sp.eye(n + 1))
    back = flat.pullback(emb, X)
    assert all(sp.cancel(e) == 0 for e in back.matrix - m.matrix)
    assert is_zero(back.scalar() - n * (n - 1) / rho**2)
