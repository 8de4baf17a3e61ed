"""Every catalogue metric against its derived curvature (lnegeom.catalog docstrings).

Two independent paths: the symbolic one (exact, zero decided by ``is_zero``) and
the numeric torch one (MetricField from the lambdified metric, autodiff) at random
points, both against the same closed forms.  Conventions: MATH.md §1.
"""

import pytest
import sympy as sp

from lnegeom import catalog
from lnegeom.catalog import CATALOG, SYMBOLS
from lnegeom.symbolic import is_zero

S = SYMBOLS
t_ = S["t"]
x_, y_ = S["x"], S["y"]

NAMES = list(CATALOG)


@pytest.fixture(scope="module")
def metrics():
    return {name: CATALOG[name]() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_symbolic_scalar_and_ricci(metrics, name):
    m = metrics[name]
    exp = m.expected
    if "scalar" in exp:
        assert is_zero(m.scalar() - exp["scalar"]), (name, m.scalar(), exp["scalar"])
    if "ricci" in exp:
        diff = m.ricci() - exp["ricci"]
        assert all(is_zero(e) for e in diff), (name, m.ricci())


# the entries with a closed-form Kretschmann scalar (Kerr's is slow: below)
KRETSCHMANN = [
    "sphere2", "sphere2_radius", "sphere3", "sphere3_radius", "hyperbolic_plane", "hyperbolic3",
    "flat_polar", "flat_spherical", "schwarzschild", "s2_times_r",
]


@pytest.mark.parametrize("name", KRETSCHMANN)
def test_symbolic_kretschmann(metrics, name):
    m = metrics[name]
    assert is_zero(m.kretschmann() - m.expected["kretschmann"]), (name, m.kretschmann())


@pytest.mark.slow
def test_kerr_kretschmann(metrics):
    m = metrics["kerr"]
    assert is_zero(m.kretschmann() - m.expected["kretschmann"])


@pytest.mark.parametrize("name", NAMES)
def test_numeric_torch_path_matches_closed_form(name):
    errors = catalog.numeric_errors(name)
    assert "scalar" in errors or "ricci" in errors, name
    for key, err in errors.items():
        assert err < (1e-8 if key == "kretschmann" else 1e-9), (name, key, err)


def test_unit_three_sphere_ricci_is_2g(metrics):
    m = metrics["sphere3"]
    assert all(is_zero(e) for e in m.ricci() - 2 * m.matrix)
    assert m.scalar() == 6


def test_schwarzschild_ricci_exactly_zero(metrics):
    ric = metrics["schwarzschild"].ricci()
    assert ric == sp.zeros(4, 4)  # literally zero, no simplification needed
    assert metrics["schwarzschild"].scalar() == 0


def test_kerr_ricci_exactly_zero(metrics):
    assert metrics["kerr"].ricci() == sp.zeros(4, 4)


def test_unit_sphere_values(metrics):
    assert metrics["sphere2"].scalar() == 2
    assert metrics["hyperbolic_plane"].scalar() == -2
    assert metrics["nil"].scalar() == sp.Rational(-1, 2)
    assert metrics["sol"].scalar() == -2


@pytest.mark.parametrize("n", [2, 3])
def test_lne_stated_at_origin(metrics, n):
    m = metrics[f"lne_stated_{n}"]
    at0 = m.scalar().subs({c: 0 for c in m.coords})
    assert sp.simplify(at0 - m.expected["scalar_at_0"]) == 0


def test_flrw_with_curvature_reduces_to_flat():
    m = catalog.flrw(0)
    a = S["a(t)"]
    assert is_zero(m.scalar() - 6 * (a.diff(t_, 2) / a + a.diff(t_) ** 2 / a**2))


def test_every_closed_form_kretschmann_is_checked(metrics):
    have = {n for n, m in metrics.items() if "kretschmann" in m.expected}
    assert have == set(KRETSCHMANN) | {"kerr"}
