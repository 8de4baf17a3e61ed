"""SymbolicMetric: API, errors, consistency, pullback, rationalisation, numeric agreement.

Conventions: docs/math.md §1.
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
    m = catalog.nil().metric
    assert m.n == 3 and m.coords == (SYMBOLS["x"], SYMBOLS["y"], SYMBOLS["z"])
    assert isinstance(m.matrix, sp.Matrix)
    assert isinstance(m.christoffel(), sp.Array) and m.christoffel().shape == (3, 3, 3)
    assert isinstance(m.riemann(), sp.Array) and m.riemann().shape == (3, 3, 3, 3)
    assert isinstance(m.ricci(), sp.Matrix) and m.ricci().shape == (3, 3)
    assert isinstance(m.einstein(), sp.Matrix)
    assert isinstance(m.scalar(), sp.Expr) and isinstance(m.kretschmann(), sp.Expr)
    assert m.ricci() is m.ricci()  # cached


def test_sphere_christoffel_values():
    # Γ^θ_φφ = −sin θ cos θ, Γ^φ_θφ = cot θ (docs/math.md §1 convention, index order [k, i, j])
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
        ((th, ph), sp.Matrix([[sp.sin(th) ** 2, sp.sin(th) * sp.cos(th)], [sp.sin(th) * sp.cos(th), sp.cos(th) ** 2]]),
         "singular"),
        ((x, y), sp.zeros(2), "singular"),
        ((x, y), sp.diag(1, sp.nan), r"g\[1,1\] = nan is not finite"),
        ((x, y), sp.diag(sp.oo, 1), "not finite"),
        ((x, y), sp.diag(1, sp.zoo * x), "not finite"),
        ((x, y), sp.diag(1, 1 + sp.I * x), r"g\[1,1\] = .*I.* is complex"),
        ((x, y), sp.diag(1, sp.exp(sp.I * x)), "complex"),
        ((x, y), sp.diag(1, 1 + sp.Abs(x)), r"contains Abs\(x\)"),
        ((x, y), sp.diag(1, sp.Piecewise((1, x > 0), (2, True))), "Piecewise"),
        ((x, y), sp.diag(1, 2 + sp.sign(x)), "sign"),
        ((x, y), sp.diag(1, 2 + sp.floor(x)), "not smooth"),
    ],
)
def test_bad_input(coords, matrix, match):
    with pytest.raises(MetricError, match=match):
        SymbolicMetric(coords, matrix)


def test_subs_rejects_coordinates_and_lambdify_names_free_parameters():
    m = catalog.schwarzschild().metric
    with pytest.raises(MetricError, match="pullback"):
        m.subs({SYMBOLS["r"]: 3})
    with pytest.raises(MetricError, match=r"\['M'\]"):
        m.lambdify("metric")
    with pytest.raises(MetricError, match=r"a\(t\)"):
        catalog.flrw_flat().metric.lambdify("scalar", "torch")
    with pytest.raises(ValueError, match="what must be"):
        m.subs({SYMBOLS["M"]: 1}).lambdify("riemann")


# ------------------------------------------------------------------ consistency
@pytest.mark.parametrize("name", ["sphere3", "nil", "flrw", "sol", "lne_stated_2"])
def test_ricci_is_trace_of_riemann_and_symmetries(name):
    m = catalog.CATALOG[name]().metric
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
    on = catalog.CATALOG[name]().metric
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
    back = catalog.flat_polar().metric.pullback(
        {SYMBOLS["r"]: sp.sqrt(x**2 + y**2), SYMBOLS["theta"]: sp.atan2(y, x)}, (x, y))
    assert back.matrix == sp.eye(2)
    assert back.scalar() == 0


def test_scalar_invariant_under_coordinate_change():
    H = catalog.hyperbolic_plane().metric
    u, v = sp.symbols("u v", real=True)
    P = H.pullback([u + v**2, sp.exp(v)], (u, v))
    assert P.matrix != H.matrix
    assert P.scalar() == -2
    S2 = catalog.sphere2().metric
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
    m = catalog.CATALOG[name]().metric.subs(FIX)
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
    np.testing.assert_allclose(ct.christoffel.numpy(), [np.array(G(*p), dtype=float) for p in pts],
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ct.riemann.numpy(), [np.array(Rm(*p), dtype=float) for p in pts], rtol=1e-9, atol=1e-9)


def test_derivatives_layout_matches_autodiff():
    m = catalog.nil().metric
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

    m = catalog.schwarzschild().metric.subs({SYMBOLS["M"]: 1})
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
        sp.diag(-1, sp.cos(t) ** 2, sp.cos(t) ** 2 * sp.sinh(chi) ** 2,
                sp.cos(t) ** 2 * sp.sinh(chi) ** 2 * sp.sin(th) ** 2),
    )
    assert ads.scalar() == -12
    assert ads.ricci() == -3 * ads.matrix


# ------------------------------------------------------------------ transcendental functions of sines
# Non-rational functions of sin q / sinh q: the cosine parametrisation must not apply to q (sin q
# = ±√(1 − cos² q) inside exp, √, log is not rational in cos q); the engine keeps q and reduces
# sin² + cos² = 1 among its generators.  Expected values from R = −2 e^{−2u} Δu (conformal, 2-D)
# and K = −f''/f, R = 2K (warped, 2-D).
def _conformal_R(u):
    return sp.exp(-2 * u) * -2 * (sp.diff(u, x, 2) + sp.diff(u, y, 2))


def _warped_R(f2):
    f = sp.sqrt(f2)
    return -2 * sp.diff(f, x, 2) / f


@pytest.mark.parametrize(
    "g, expected",
    [
        (sp.exp(sp.sin(x)) * sp.eye(2), sp.exp(-sp.sin(x)) * sp.sin(x)),
        (sp.exp(2 * sp.sin(x) * sp.cos(y)) * sp.eye(2), _conformal_R(sp.sin(x) * sp.cos(y))),
        (sp.sqrt(2 + sp.sin(x)) * sp.eye(2), _conformal_R(sp.log(2 + sp.sin(x)) / 4)),
        (sp.exp(sp.sinh(x)) * sp.eye(2), _conformal_R(sp.sinh(x) / 2)),
        (sp.diag(1, sp.exp(sp.tanh(x))), _warped_R(sp.exp(sp.tanh(x)))),
        (sp.diag(1, sp.log(3 + sp.sin(x))), _warped_R(sp.log(3 + sp.sin(x)))),
        (sp.diag(1, (2 + sp.cos(x)) ** sp.Rational(3, 2)), _warped_R((2 + sp.cos(x)) ** sp.Rational(3, 2))),
        (sp.diag(1, sp.exp(sp.sin(2 * x))), _warped_R(sp.exp(sp.sin(2 * x)))),
    ],
    ids=["exp(sin x)", "exp(2 sin x cos y)", "sqrt(2+sin x)", "exp(sinh x)", "exp(tanh x)",
         "log(3+sin x)", "(2+cos x)^3/2", "exp(sin 2x)"],
)
def test_transcendental_of_trig_exact_and_verified(g, expected):
    m = SymbolicMetric((x, y), g, verify=3)
    R = m.scalar()
    assert R.free_symbols <= {x, y}, f"internal symbols leaked: {R.free_symbols}"
    pts = np.random.default_rng(1).uniform(0.2, 1.2, size=(5, 2))
    f_R, f_E = sp.lambdify((x, y), R), sp.lambdify((x, y), expected)
    for p in pts:
        assert abs(f_R(*p) - f_E(*p)) <= 1e-11 * max(1.0, abs(f_E(*p)))
    for comp in sp.flatten(m.christoffel()) + list(m.ricci()):
        assert comp.free_symbols <= {x, y}


def test_exp_of_sine_is_not_rationalized_but_exp_of_cosine_is():
    assert SymbolicMetric((x, y), sp.exp(sp.sin(x)) * sp.eye(2)).rationalized == ()
    assert SymbolicMetric((x, y), sp.exp(sp.sinh(x)) * sp.eye(2)).rationalized == ()
    m = SymbolicMetric((th, ph), sp.diag(1, sp.exp(sp.cos(th))))
    assert m.rationalized == (th,)
    # K = −f''/f with f = e^{cos θ / 2}
    f = sp.exp(sp.cos(th) / 2)
    assert is_zero(m.scalar() + 2 * sp.diff(f, th, 2) / f)
    m.verify()


def test_rationalize_off_still_reduces_sin2_cos2():
    m = SymbolicMetric((th, ph), sp.diag(1, sp.sin(th) ** 2), rationalize=False)
    assert m.scalar() == 2
    # a zero that only sin² + cos² = 1 reveals, in an entry: the metric is flat, Ric is literally 0
    g = sp.diag(1, (sp.sin(x) ** 2 + sp.cos(x) ** 2) * y**2)
    flat = SymbolicMetric((x, y), g, rationalize=False)
    assert flat.scalar() == 0 and flat.ricci() == sp.zeros(2)
    # (√b)² = b in the field: √(2 + x²) δ = e^{2u} δ, u = log(2 + x²)/4, R = −2e^{−2u}u''
    # = (x² − 2)/(2 + x²)^{5/2}, with a single radical left
    sq = SymbolicMetric((x, y), sp.sqrt(2 + x**2) * sp.eye(2))
    assert sp.cancel(sq.scalar() - (x**2 - 2) / (2 + x**2) ** sp.Rational(5, 2)) == 0
    assert sq.scalar().count(sp.sqrt(2 + x**2)) <= 1


def test_trig_normal_maps_every_sine_back():
    e = sp.exp(sp.sin(x)) * (sp.sin(x) ** 2 + sp.cos(x) ** 2) + sp.sqrt(2 + sp.sin(x)) * sp.cos(x)
    out = trig_normal(e)
    assert out.free_symbols == {x}
    assert is_zero(out - sp.exp(sp.sin(x)) - sp.sqrt(2 + sp.sin(x)) * sp.cos(x))


def test_engine_refuses_a_generator_of_a_hidden_symbol():
    from lnegeom.symbolic import _Engine

    q = sp.Symbol("q")
    with pytest.raises(MetricError, match="internal error"):
        _Engine((x,), [[sp.exp(q * x)]], hidden=[q])


# ------------------------------------------------------------------ verify
def test_verify_passes_on_catalogue_and_reports():
    m = catalog.schwarzschild().metric
    v = m.verify(points=3, box=catalog.SAMPLE_BOXES["schwarzschild"], params={"M": 0.4})
    assert v.points.shape == (3, 4) and v.params == {"M": 0.4}
    assert set(v.max_rel_error) == {"christoffel", "ricci", "scalar"}
    assert max(v.max_rel_error.values()) < 1e-10


@pytest.mark.parametrize("what", ["gam", "ric", "R"])
def test_verify_catches_a_wrong_result(what):
    m = SymbolicMetric((th, ph), sp.diag(1, sp.sin(th) ** 2))
    m.christoffel(), m.ricci(), m.scalar()
    if what == "gam":
        G = sp.MutableDenseNDimArray(m._cache["gam"])
        G[1, 0, 1] = 2 * G[1, 0, 1]
        m._cache["gam"] = sp.Array(G)
        match = r"christoffel\[1, 0, 1\]"
    elif what == "ric":
        m._cache["ric"] = m._cache["ric"] + sp.diag(0, sp.cos(th) ** 2 / 10)
        match = r"ricci\[1, 1\]"
    else:
        m._cache["R"] = m._cache["R"] * (1 + sp.sin(th) / 100)
        match = r"scalar\[\] = "
    with pytest.raises(MetricError, match=match):
        m.verify()


def test_verify_errors():
    with pytest.raises(MetricError, match=r"a\(t\)"):
        catalog.flrw_flat().metric.verify()
    m = catalog.sphere2().metric
    with pytest.raises(ValueError, match="points"):
        m.verify(points=0)
    with pytest.raises(ValueError, match="box"):
        m.verify(box=[(1, 0), (0, 1)])
    with pytest.raises(ValueError, match="rtol"):
        m.verify(rtol=float("nan"))
    with pytest.raises(ValueError, match="verify must be"):
        SymbolicMetric((th, ph), sp.diag(1, sp.sin(th) ** 2), verify="yes")
    # no admissible point: log of a negative number everywhere in the box
    bad = SymbolicMetric((x, y), sp.diag(1, sp.log(x)))
    with pytest.raises(MetricError, match="no point"):
        bad.verify(box=[(-2, -1), (0, 1)])


def test_coordinate_namesake_with_other_assumptions_is_refused():
    plain_x = sp.Symbol("x")  # not the real=True coordinate x of this module
    with pytest.raises(MetricError, match="not the coordinate 'x'"):
        SymbolicMetric((x, y), sp.diag(1, plain_x**2))


def test_hidden_zero_determinant_is_refused():
    # tanh x − sinh x / cosh x ≡ 0: singular, whichever way it is found
    with pytest.raises(MetricError, match="singular"):
        SymbolicMetric((x, y), sp.diag(1, sp.tanh(x) - sp.sinh(x) / sp.cosh(x)))
    # atan x + atan(1/x) − π/2 ≡ 0 for x > 0: independent generators to the field, a zero only
    # sampling reveals
    z0 = sp.atan(x) + sp.atan(1 / x) - sp.pi / 2
    with pytest.raises(MetricError, match="vanishes at every sampled point"):
        SymbolicMetric((x, y), sp.Matrix([[1, 0], [0, z0]]))


@pytest.mark.parametrize(
    "entry",
    [sp.log(2 * x), sp.log(x * (1 + x)), sp.exp(x * (1 + x)), 2 + sp.sin(x * (1 + y)), sp.sqrt(x * (1 + x)),
     sp.atan(x * (2 + x)), (x * (1 + x)) ** sp.Rational(2, 3), sp.exp(sp.sin(x * (1 + x))), 2**x, x**sp.pi],
    ids=str,
)
def test_unexpanded_function_arguments(entry):
    # the field expands function arguments when it collects generators: entries are expanded alike
    m = SymbolicMetric((x, y), sp.diag(1 + y**2, entry))
    m.verify(points=3)


# ------------------------------------------------------------------ the plain path
def test_special_functions_take_the_plain_path():
    # besselj's derivatives are new functions at every order: no field holds them
    m = SymbolicMetric((x, y), sp.diag(1, 2 + sp.besselj(0, x) ** 2))
    assert m.path == "plain"
    f = sp.sqrt(2 + sp.besselj(0, x) ** 2)
    expected = -2 * sp.diff(f, x, 2) / f
    for p in (0.3, 1.1, 2.7):
        assert abs(float(m.scalar().subs(x, p)) - float(expected.subs(x, p))) < 1e-12
    with pytest.raises(MetricError, match="torch"):
        m.verify()  # torch cannot evaluate besselj: said, not guessed
    e = SymbolicMetric((x, y), sp.diag(1, sp.exp(sp.erf(x))), verify=3)
    assert e.path == "plain"


@pytest.mark.parametrize("name", ["sphere3", "schwarzschild", "nil", "lne_stated_2", "conformal_trig",
                                  "lorentzian_exp_trig_4"])
def test_plain_path_agrees_with_the_field(name):
    fast = catalog.CATALOG[name]().metric
    plain = SymbolicMetric(fast.coords, fast.matrix)
    plain._to_plain()
    assert fast.path == "field" and plain.path == "plain"
    assert is_zero(fast.scalar() - plain.scalar())
    assert _all_zero(fast.ricci() - plain.ricci())
    assert _all_zero(fast.christoffel() - plain.christoffel())
    assert _all_zero(fast.riemann() - plain.riemann())
    assert is_zero(fast.kretschmann() - plain.kretschmann())


def test_field_that_cannot_close_falls_back(monkeypatch):
    from lnegeom import symbolic

    def refuse(self):
        raise symbolic._NotClosed("test: the field cannot hold a derivative")

    monkeypatch.setattr(symbolic._Engine, "ricci", refuse)
    m = SymbolicMetric((th, ph), sp.diag(1, sp.sin(th) ** 2))
    assert m.path == "field"
    assert sp.simplify(m.scalar() - 2) == 0
    assert m.path == "plain"


def test_constant_products_are_compressed_and_mapped_back():
    # Kerr–Newman-like constants: G Q²/(4π ε₀ c⁴) is one generator of the field
    G, Q, eps0, c, M_ = sp.symbols("G Q epsilon_0 c M", positive=True)
    rq2 = G * Q**2 / (4 * sp.pi * eps0 * c**4)
    f = 1 - 2 * M_ / y + rq2 / y**2
    m = SymbolicMetric((x, y, th, ph), sp.diag(-f, 1 / f, y**2, y**2 * sp.sin(th) ** 2))
    assert m.scalar() == 0  # Reissner–Nordström: traceless energy-momentum
    assert m.ricci().free_symbols <= {G, Q, eps0, c, M_, x, y, th}
    m.verify(points=2, box=[(0, 1), (3, 5), (0.3, 2.8), (0, 1)], params={"M": 1.0, "c": 1.0})
