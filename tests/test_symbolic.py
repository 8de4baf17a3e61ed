"""SymbolicMetric: API, errors, consistency, pullback, rationalisation, numeric agreement.

Conventions: MATH.md §1.
"""

import numpy as np
import pytest
import sympy as sp
import torch

from lnegeom import MetricError, catalog
from lnegeom.catalog import SYMBOLS
from lnegeom.symbolic import SymbolicMetric, is_zero, trig_normal

x, y, z, r, t = sp.symbols("x y z r t", real=True)
th, ph = sp.symbols("theta phi", real=True)


def _all_zero(m):
    return all(is_zero(e) for e in sp.flatten(m))


# ------------------------------------------------------------------ API
def test_api_shapes_and_types():
    m = catalog.nil()
    assert m.n == 3 and m.coords == (SYMBOLS["x"], SYMBOLS["y"], SYMBOLS["z"])
    assert isinstance(m.matrix, sp.Matrix)
    assert isinstance(m.christoffel(), sp.Array) and m.christoffel().shape == (3, 3, 3)
    assert isinstance(m.riemann(), sp.Array) and m.riemann().shape == (3, 3, 3, 3)
    assert isinstance(m.ricci(), sp.Matrix) and m.ricci().shape == (3, 3)
    assert isinstance(m.einstein(), sp.Matrix)
    assert isinstance(m.scalar(), sp.Expr) and isinstance(m.kretschmann(), sp.Expr)
    assert m.ricci() is m.ricci()  # cached


def test_sphere_christoffel_values():
    # Γ^θ_φφ = −sin θ cos θ, Γ^φ_θφ = cot θ (MATH.md §1 convention, index order [k, i, j])
    m = SymbolicMetric((th, ph), sp.diag(1, sp.sin(th) ** 2))
    G = m.christoffel()
    assert is_zero(G[0, 1, 1] + sp.sin(th) * sp.cos(th))
    assert is_zero(G[1, 0, 1] - sp.cos(th) / sp.sin(th))
    assert G[0, 0, 0] == 0 and G[1, 1, 1] == 0
    assert m.scalar() == 2
    assert m.ricci() == sp.diag(1, sp.sin(th) ** 2)


def test_simplify_option():
    m = SymbolicMetric((th, ph), sp.diag(1, sp.sin(th) ** 2), simplify=True)
    assert m.scalar() == 2


def test_float_entries_are_made_rational():
    m = SymbolicMetric((x, y), sp.diag(0.5, 0.5) / y**2)
    assert m.scalar() == -4


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "coords, matrix, match",
    [
        ((x, y), sp.Matrix([[1, 0, 0], [0, 1, 0]]), "square"),
        ((x, y, z), sp.eye(2), "3 coordinates"),
        ((x, y), sp.Matrix([[1, x], [0, 1]]), r"not symmetric: g\[0,1\] = x"),
        ((x, sp.sin(y)), sp.eye(2), "sin"),
        ((x, x), sp.eye(2), "distinct"),
        ((x, y), sp.Matrix([[1, x], [x, x**2]]), "singular"),
        ((th, ph), sp.Matrix([[sp.sin(th) ** 2, sp.sin(th) * sp.cos(th)], [sp.sin(th) * sp.cos(th), sp.cos(th) ** 2]]), "singular"),
        ((x, y), sp.zeros(2), "singular"),
    ],
)
def test_bad_input(coords, matrix, match):
    with pytest.raises(MetricError, match=match):
        SymbolicMetric(coords, matrix)


def test_subs_rejects_coordinates_and_lambdify_names_free_parameters():
    m = catalog.schwarzschild()
    with pytest.raises(MetricError, match="pullback"):
        m.subs({SYMBOLS["r"]: 3})
    with pytest.raises(MetricError, match=r"\['M'\]"):
        m.lambdify("metric")
    with pytest.raises(MetricError, match=r"a\(t\)"):
        catalog.flrw_flat().lambdify("scalar", "torch")
    with pytest.raises(ValueError, match="what must be"):
        m.subs({SYMBOLS["M"]: 1}).lambdify("christoffel")


# ------------------------------------------------------------------ consistency
@pytest.mark.parametrize("name", ["sphere3", "nil", "flrw", "sol", "lne_stated_2"])
def test_ricci_is_trace_of_riemann_and_symmetries(name):
    m = catalog.CATALOG[name]()
    n = m.n
    Rm = m.riemann()
    ric = sp.Matrix(n, n, lambda j, k: sum(Rm[p, p, j, k] for p in range(n)))
    assert _all_zero(ric - m.ricci())
    g = m.matrix
    for l in range(n):
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    assert Rm[l, i, j, k] == -Rm[l, j, i, k]
    # lowered: R_lijk = g_lm R^m_ijk, antisymmetric in (l, k), pair-symmetric (ij) <-> (kl)
    low = lambda l, i, j, k: sum(g[l, q] * Rm[q, i, j, k] for q in range(n))  # noqa: E731
    for (l, i, j, k) in [(0, 0, 1, 1), (0, 1, 2, 2), (1, 0, 2, 1), (2, 0, 1, 0)][: 4 if n > 2 else 1]:
        if max(l, i, j, k) < n:
            assert is_zero(low(l, i, j, k) + low(k, i, j, l))
            assert is_zero(low(l, i, j, k) - low(j, k, l, i))
    G = m.einstein()
    assert _all_zero(G - (m.ricci() - m.scalar() / 2 * g))


@pytest.mark.parametrize("name", ["sphere3", "schwarzschild", "flrw", "s2_times_r", "flat_spherical"])
def test_rationalize_on_off_agree(name):
    on = catalog.CATALOG[name]()
    assert on.rationalized  # these have a trig coordinate
    off = SymbolicMetric(on.coords, on.matrix, rationalize=False)
    assert off.rationalized == ()
    assert is_zero(on.scalar() - off.scalar())
    assert _all_zero(on.ricci() - off.ricci())
    n = on.n
    for k in range(n):
        for i in range(n):
            for j in range(n):
                assert is_zero(on.christoffel()[k, i, j] - off.christoffel()[k, i, j])
    if n <= 3:
        assert all(is_zero(a - b) for a, b in zip(sp.flatten(on.riemann()), sp.flatten(off.riemann())))
    assert is_zero(on.kretschmann() - off.kretschmann())
    assert _all_zero(on.inverse() - on.matrix.inv())


def test_rationalize_skips_odd_sine():
    # g = dθ² + sin θ dφ²: sin θ to an odd power, so θ stays as it is
    m = SymbolicMetric((th, ph), sp.diag(1, 2 + sp.sin(th)))
    assert m.rationalized == ()
    f = 2 + sp.sin(th)
    # 2-D warped product with f² = 2 + sin θ: K = −(√f)''/√f
    K = -sp.diff(sp.sqrt(f), th, 2) / sp.sqrt(f)
    val = {th: 0.7, ph: 0.1}
    assert abs(float(m.scalar().subs(val)) - float((2 * K).subs(val))) < 1e-12


# ------------------------------------------------------------------ pullback
def test_pullback_polar_cartesian_both_ways():
    flat = SymbolicMetric((x, y), sp.eye(2))
    polar = flat.pullback([r * sp.cos(th), r * sp.sin(th)], (r, th))
    assert polar.matrix == sp.diag(1, r**2)
    back = catalog.flat_polar().pullback({SYMBOLS["r"]: sp.sqrt(x**2 + y**2), SYMBOLS["theta"]: sp.atan2(y, x)}, (x, y))
    assert back.matrix == sp.eye(2)
    assert back.scalar() == 0


def test_scalar_invariant_under_coordinate_change():
    H = catalog.hyperbolic_plane()
    u, v = sp.symbols("u v", real=True)
    P = H.pullback([u + v**2, sp.exp(v)], (u, v))
    assert P.matrix != H.matrix
    assert P.scalar() == -2
    S2 = catalog.sphere2()
    w = sp.Symbol("w", real=True)
    Q = S2.pullback({SYMBOLS["theta"]: sp.acos(w), SYMBOLS["phi"]: ph}, (w, ph))
    assert is_zero(Q.matrix[0, 0] - 1 / (1 - w**2))
    assert Q.scalar() == 2
    with pytest.raises(MetricError, match="need 2 expressions"):
        S2.pullback([w], (w,))


def test_pullback_to_submanifold_induced_metric():
    # the unit sphere as the graph-free embedding in flat ℝ³ (spherical coordinates at r = 1)
    E3 = SymbolicMetric((x, y, z), sp.eye(3))
    emb = [sp.sin(th) * sp.cos(ph), sp.sin(th) * sp.sin(ph), sp.cos(th)]
    S = E3.pullback(emb, (th, ph))
    assert S.matrix == sp.diag(1, sp.sin(th) ** 2)
    assert S.scalar() == 2


def test_trig_normal_and_is_zero():
    assert trig_normal(sp.sin(th) ** 2 + sp.cos(th) ** 2) == 1
    assert is_zero(sp.tan(th) * sp.cos(th) - sp.sin(th))
    assert not is_zero(sp.sin(th) - sp.cos(th))
    assert is_zero(sp.exp(2 * x + y) - sp.exp(x) ** 2 * sp.exp(y))


# ------------------------------------------------------------------ numerics
FIX = {SYMBOLS["M"]: sp.Rational(1, 2), SYMBOLS["tau"]: sp.Rational(7, 10), SYMBOLS["k"]: sp.Rational(1, 3),
       SYMBOLS["a(t)"]: sp.exp(SYMBOLS["t"] / 3) + SYMBOLS["t"] ** 2 / 5}
CASES = {
    "nil": [(-2, 2)] * 3,
    "sphere3": [(0.3, 2.8), (0.3, 2.8), (-3, 3)],
    "schwarzschild": [(-2, 2), (2.5, 8), (0.3, 2.8), (-3, 3)],
    "lne_stated_2": [(-0.6, 0.6)] * 2,
    "sol": [(-1, 1)] * 3,
}


def _pts(box, k=3, seed=3):
    lo, hi = np.array(box, dtype=float).T
    return lo + (hi - lo) * np.random.default_rng(seed).random((k, len(lo)))


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_torch_symbolic_agree(name):
    m = catalog.CATALOG[name]().subs(FIX)
    pts = _pts(CASES[name])
    lor = name == "schwarzschild"
    ric_np = m.lambdify("ricci", "numpy")(pts)
    ric_t = m.lambdify("ricci", "torch")(torch.as_tensor(pts)).numpy()
    R_np = m.lambdify("scalar", "numpy")(pts)
    R_t = m.lambdify("scalar", "torch")(torch.as_tensor(pts)).numpy()
    np.testing.assert_allclose(ric_np, ric_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R_np, R_t, rtol=1e-12, atol=1e-12)
    ct = m.metric_field("torch", check=not lor).curvature(torch.as_tensor(pts))
    cn = m.metric_field("numpy", check=not lor).curvature(pts)
    for c in (ct.ricci.numpy(), cn.ricci):
        np.testing.assert_allclose(c, ric_np, rtol=1e-9, atol=1e-9)
    for c in (ct.scalar.numpy(), cn.scalar):
        np.testing.assert_allclose(c, R_np, rtol=1e-9, atol=1e-9)
    # Kretschmann: symbolic (generic or diagonal path) vs the numeric algebra
    K = sp.lambdify(m.coords, m.kretschmann(), "numpy")
    np.testing.assert_allclose(ct.kretschmann.numpy(), [K(*p) for p in pts], rtol=1e-9, atol=1e-9)
    # Christoffel and Riemann (rationalised coordinates mapped back) vs numeric
    G = sp.lambdify(m.coords, m.christoffel().tolist(), "numpy")
    Rm = sp.lambdify(m.coords, m.riemann().tolist(), "numpy")
    np.testing.assert_allclose(ct.christoffel.numpy(), [np.array(G(*p), dtype=float) for p in pts], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ct.riemann.numpy(), [np.array(Rm(*p), dtype=float) for p in pts], rtol=1e-9, atol=1e-9)


def test_derivatives_layout_matches_autodiff():
    m = catalog.nil()
    pts = _pts(CASES["nil"], k=2)
    gt, dgt, d2gt = m.metric_field("torch").derivatives(torch.as_tensor(pts))
    der = m.lambdify("derivatives", "numpy")
    for b, p in enumerate(pts):
        g, dg, d2g = der(p)
        np.testing.assert_allclose(g, gt[b].numpy(), atol=1e-13)
        np.testing.assert_allclose(dg, dgt[b].numpy(), atol=1e-13)  # dg[a, i, j] = ∂_a g_ij
        np.testing.assert_allclose(d2g, d2gt[b].numpy(), atol=1e-13)
    gd, dgd, d2gd = m.lambdify("derivatives", "torch")(torch.as_tensor(pts))
    np.testing.assert_allclose(dgd.numpy(), dgt.numpy(), atol=1e-13)
    assert d2gd.shape == (2, 3, 3, 3, 3)


def test_torch_lambdify_vmap_jacfwd_dtype():
    from torch.func import jacfwd, vmap

    m = catalog.schwarzschild().subs({SYMBOLS["M"]: 1})
    f = m.lambdify("metric", "torch")
    x64 = torch.tensor([[0.0, 3.0, 1.0, 0.5], [1.0, 4.0, 2.0, 0.1]], dtype=torch.float64)
    g = vmap(f)(x64)
    assert g.shape == (2, 4, 4) and g.dtype == torch.float64
    J = vmap(jacfwd(f))(x64)  # [B, i, j, a]
    np.testing.assert_allclose(J[:, 1, 1, 1].numpy(), (-(2 / x64[:, 1] ** 2) / (1 - 2 / x64[:, 1]) ** 2).numpy())
    assert f(x64.float()).dtype == torch.float32  # constants take x's dtype
    assert torch.equal(f(x64)[0, 0, 1], torch.tensor(0.0, dtype=torch.float64))
    R = m.lambdify("scalar", "torch")(x64)
    assert R.shape == (2,)


def test_hyperbolic_rationalisation():
    # hyperbolic space in geodesic polar coordinates: dr² + sinh²r dΩ², constant curvature −1
    m = SymbolicMetric((r, th, ph), sp.diag(1, sp.sinh(r) ** 2, sp.sinh(r) ** 2 * sp.sin(th) ** 2))
    assert set(m.rationalized) == {r, th}
    assert m.scalar() == -6 and m.kretschmann() == 12
    assert m.ricci() == -2 * m.matrix
    off = SymbolicMetric(m.coords, m.matrix, rationalize=False)
    for k in range(3):
        for i in range(3):
            for j in range(3):
                assert is_zero(m.christoffel()[k, i, j] - off.christoffel()[k, i, j])
    # anti-de Sitter in the coordinates of EinsteinPy's tests: R = −12, Ric = −3g
    chi = sp.Symbol("chi", real=True)
    ads = SymbolicMetric(
        (t, chi, th, ph),
        sp.diag(-1, sp.cos(t) ** 2, sp.cos(t) ** 2 * sp.sinh(chi) ** 2, sp.cos(t) ** 2 * sp.sinh(chi) ** 2 * sp.sin(th) ** 2),
    )
    assert ads.scalar() == -12
    assert ads.ricci() == -3 * ads.matrix
