r"""A catalogue of metrics with known curvature: :class:`~lnegeom.symbolic.SymbolicMetric` and closed forms.

Each function returns a :class:`CatalogEntry`: the ``SymbolicMetric`` (``entry.metric``)
and the closed forms derived in the function's docstring (``entry.expected``, keys
``"scalar"``, and where given ``"ricci"`` (a Matrix) and ``"kretschmann"``).  The
tests compare the symbolic path and the numeric torch path against these.

Conventions: docs/math.md §1 (Ric_jk = R^p_pjk, R = g^jk Ric_jk; unit sphere R = +2).
Facts used in the derivations:

* (C1) A metric of constant sectional curvature κ in dimension n has
  Ric = (n − 1) κ g, R = n(n − 1) κ and R_abcd R^abcd = 2 n(n − 1) κ²
  (since R_abcd = κ (g_ac g_bd − g_ad g_bc)).
* (C2) In dimension 2, Ric = K g and R = 2K with K the Gaussian curvature;
  for g = dθ² + f(θ)² dφ², K = −f''/f.
* (C3) For a product metric g₁ ⊕ g₂, Ric = Ric₁ ⊕ Ric₂ and R = R₁ + R₂.
* (C4) Milnor (1976): on a 3-dim. unimodular Lie group with a left-invariant metric
  and an orthonormal frame with [e₂,e₃] = λ₁e₁, [e₃,e₁] = λ₂e₂, [e₁,e₂] = λ₃e₃,
  the Ricci tensor is diagonal with Ric(e₁, e₁) = 2μ₂μ₃ (cyclically),
  μᵢ = ½(λ₁ + λ₂ + λ₃) − λᵢ.
* (C5) In dimension 2 the curvature tensor has one independent component, so
  R_abcd = K (g_ac g_bd − g_ad g_bc) holds pointwise (K not constant, any signature)
  and R_abcd R^abcd = 4K² = R² (the computation of (C1) with κ = K at each point).
* (C6) The inverse stereographic projection of the sphere of radius ρ,
  x ↦ ρ (2x, |x|² − 1)/(1 + |x|²) ∈ ℝⁿ⁺¹, pulls the Euclidean metric back to
  4ρ² δ/(1 + |x|²)²: with s = |x|², ds = 2 x·dx, the differential is
  ρ[2dx/(1 + s) − 2x ds/(1 + s)², 2ds/(1 + s)²], whose squared length is
  ρ²[4|dx|²/(1 + s)² − 4ds²/(1 + s)³ + 4(s + 1) ds²/(1 + s)⁴] = 4ρ²|dx|²/(1 + s)².

Parameters are sympy symbols with positivity assumptions (radius, mass, spin, τ);
FLRW's scale factor is the function ``a(t)``.  :data:`CATALOG` maps names to the
functions (all with default arguments).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

import sympy as sp

from .symbolic import SymbolicMetric

__all__ = [
    "CatalogEntry",
    "sphere2",
    "sphere3",
    "hyperbolic_plane",
    "hyperbolic3",
    "flat_polar",
    "flat_spherical",
    "schwarzschild",
    "flrw_flat",
    "flrw",
    "s2_times_r",
    "nil",
    "sol",
    "conformal2d",
    "kerr",
    "lne_stated",
    "conformal_trig",
    "warped_transcendental",
    "sphere_stereographic",
    "lorentzian_exp_trig",
    "NUMERIC_PARAMS",
    "SAMPLE_BOXES",
    "LORENTZIAN",
    "sample_points",
    "numeric_errors",
    "CATALOG",
    "SYMBOLS",
]

# shared parameter symbols
t, x, y, z, r = sp.symbols("t x y z r", real=True)
theta, phi, chi = sp.symbols("theta phi chi", real=True)
M, a_spin, tau = sp.symbols("M a tau", positive=True)
radius = sp.Symbol("R_0", positive=True)
k_curv = sp.Symbol("k", real=True)
a_scale = sp.Function("a", positive=True)
u_conf = sp.Function("u", real=True)

#: the parameter symbols and functions used by the catalogue, by name
SYMBOLS = {
    "t": t, "x": x, "y": y, "z": z, "r": r, "theta": theta, "phi": phi, "chi": chi,
    "M": M, "a": a_spin, "tau": tau, "R_0": radius, "k": k_curv,
    "a(t)": a_scale(t), "u(x,y)": u_conf(x, y),
}

Number = Union[int, sp.Expr]


@dataclass(frozen=True, eq=False)
class CatalogEntry:
    """A catalogue metric with the closed forms derived in its function's docstring.

    ``metric`` is the :class:`~lnegeom.symbolic.SymbolicMetric`; ``expected`` maps
    ``"scalar"`` (R), ``"ricci"`` (Ric_jk, a ``sympy.Matrix``), ``"kretschmann"``
    (R_abcd R^abcd) and ``"scalar_at_0"`` (R at the origin), where derived, to sympy
    expressions in the metric's coordinates and parameters (conventions: docs/math.md §1).
    """

    metric: SymbolicMetric
    expected: Mapping[str, Any]


def _entry(m: SymbolicMetric, **expected: Any) -> CatalogEntry:
    return CatalogEntry(m, expected)


def sphere2(rad: Number = 1) -> CatalogEntry:
    r"""Round 2-sphere of radius ρ = ``rad``: g = ρ² (dθ² + sin²θ dφ²), coordinates (θ, φ).

    By (C2) with g = ρ²[dθ² + sin²θ dφ²] = dσ² + (ρ sin(σ/ρ))² dφ² (σ = ρθ):
    f = ρ sin(σ/ρ), f'' = −f/ρ², so K = 1/ρ².  Hence Ric = g/ρ² =
    diag(1, sin²θ), R = 2/ρ², and by (C1) Kretschmann = 4/ρ⁴.
    """
    g = rad**2 * sp.diag(1, sp.sin(theta) ** 2)
    return _entry(
        SymbolicMetric((theta, phi), g, name="sphere2"),
        scalar=2 / rad**2, ricci=sp.diag(1, sp.sin(theta) ** 2), kretschmann=4 / rad**4,
    )


def sphere3(rad: Number = 1) -> CatalogEntry:
    r"""Round 3-sphere of radius ρ: g = ρ² (dχ² + sin²χ (dθ² + sin²θ dφ²)), coordinates (χ, θ, φ).

    It is the sphere of radius ρ in ℝ⁴, of constant sectional curvature κ = 1/ρ²
    (Gauss equation: the second fundamental form is g/ρ, so
    R_abcd = (g_ac g_bd − g_ad g_bc)/ρ²).  By (C1) with n = 3:
    Ric = 2 g / ρ² (unit sphere: Ric = 2g), R = 6/ρ², Kretschmann = 12/ρ⁴.
    """
    g = rad**2 * sp.diag(1, sp.sin(chi) ** 2, sp.sin(chi) ** 2 * sp.sin(theta) ** 2)
    return _entry(
        SymbolicMetric((chi, theta, phi), g, name="sphere3"),
        scalar=6 / rad**2, ricci=2 * g / rad**2, kretschmann=12 / rad**4,
    )


def hyperbolic_plane() -> CatalogEntry:
    r"""Hyperbolic plane, upper half-plane model: g = (dx² + dy²)/y², y > 0.

    Conformal metric e^{2u}δ with u = −log y: by :func:`conformal2d`,
    K = −e^{−2u} Δu = −y² · (1/y²) = −1 (Δu = ∂_y²(−log y) = 1/y²).
    So Ric = −g, R = −2, Kretschmann = 4 (C1).
    """
    g = sp.eye(2) / y**2
    return _entry(SymbolicMetric((x, y), g, name="hyperbolic_plane"), scalar=sp.Integer(-2), ricci=-g,
                 kretschmann=sp.Integer(4))


def hyperbolic3() -> CatalogEntry:
    r"""Hyperbolic 3-space, upper half-space model: g = (dx² + dy² + dz²)/z², z > 0.

    Constant sectional curvature −1 (the isometries (x, y, z) ↦ λ(x, y, z) and
    translations in x, y act transitively; the totally geodesic plane y = 0 is the
    hyperbolic plane, curvature −1).  By (C1), n = 3: Ric = −2g, R = −6, Kretschmann = 12.
    """
    g = sp.eye(3) / z**2
    return _entry(SymbolicMetric((x, y, z), g, name="hyperbolic3"), scalar=sp.Integer(-6), ricci=-2 * g,
                 kretschmann=sp.Integer(12))


def flat_polar() -> CatalogEntry:
    r"""Euclidean plane in polar coordinates: g = dr² + r² dθ² (r > 0).

    The pull-back of δ by (r, θ) ↦ (r cos θ, r sin θ); curvature is invariant,
    so Ric = 0, R = 0 ((C2): f = r, f'' = 0).
    """
    g = sp.diag(1, r**2)
    return _entry(SymbolicMetric((r, theta), g, name="flat_polar"), scalar=sp.S.Zero, ricci=sp.zeros(2),
                 kretschmann=sp.S.Zero)


def flat_spherical() -> CatalogEntry:
    r"""Euclidean 3-space in spherical coordinates: g = dr² + r²(dθ² + sin²θ dφ²).

    The pull-back of δ by the spherical-coordinate map: Riemann ≡ 0, so Ric = 0, R = 0.
    """
    g = sp.diag(1, r**2, r**2 * sp.sin(theta) ** 2)
    return _entry(SymbolicMetric((r, theta, phi), g, name="flat_spherical"), scalar=sp.S.Zero, ricci=sp.zeros(3),
                 kretschmann=sp.S.Zero)


def schwarzschild() -> CatalogEntry:
    r"""Schwarzschild: g = −(1 − 2M/r) dt² + dr²/(1 − 2M/r) + r² dΩ², coordinates (t, r, θ, φ).

    For g = −e^{2α(r)}dt² + e^{2β(r)}dr² + r²dΩ² the Ricci components are
    Ric_tt = e^{2(α−β)}(α'' + α'² − α'β' + 2α'/r),
    Ric_rr = −α'' − α'² + α'β' + 2β'/r,
    Ric_θθ = 1 − e^{−2β}(1 + r(α' − β')),  Ric_φφ = sin²θ Ric_θθ.
    Here e^{2α} = e^{−2β} = f := 1 − 2M/r, β = −α, f' = 2M/r², f'' = −4M/r³, and
    e^{2α}(α'' + 2α'²) = f''/2, e^{2α}α' = f'/2:
    Ric_tt ∝ f''/2 + f'/r = −2M/r³ + 2M/r³ = 0; Ric_rr = −(f''/2 + f'/r)/f = 0;
    Ric_θθ = 1 − f − r f' = 1 − 1 + 2M/r − 2M/r = 0.  So Ric = 0, R = 0 (vacuum),
    and the Kretschmann scalar is the classical 48 M²/r⁶.
    """
    f = 1 - 2 * M / r
    g = sp.diag(-f, 1 / f, r**2, r**2 * sp.sin(theta) ** 2)
    return _entry(
        SymbolicMetric((t, r, theta, phi), g, name="schwarzschild"),
        scalar=sp.S.Zero, ricci=sp.zeros(4), kretschmann=48 * M**2 / r**6,
    )


def flrw_flat() -> CatalogEntry:
    r"""Spatially flat FLRW: g = −dt² + a(t)² (dx² + dy² + dz²), coordinates (t, x, y, z).

    Christoffels: Γ^t_ij = a ȧ δ_ij, Γ^i_tj = (ȧ/a) δ^i_j, others 0.  Then
    Ric_tt = −3 ä/a, Ric_ij = (a ä + 2 ȧ²) δ_ij, and with g^tt = −1, g^ij = δ^ij/a²:
    R = 3ä/a + 3(a ä + 2ȧ²)/a² = 6 (ä/a + ȧ²/a²).
    """
    a = a_scale(t)
    ad, add = a.diff(t), a.diff(t, 2)
    g = sp.diag(-1, a**2, a**2, a**2)
    sp_ = a * add + 2 * ad**2
    return _entry(
        SymbolicMetric((t, x, y, z), g, name="flrw_flat"),
        scalar=6 * (add / a + ad**2 / a**2), ricci=sp.diag(-3 * add / a, sp_, sp_, sp_),
    )


def flrw(k: Number = k_curv) -> CatalogEntry:
    r"""FLRW with spatial curvature k: g = −dt² + a(t)² (dr²/(1 − k r²) + r² dΩ²), (t, r, θ, φ).

    Write g = −dt² + a² γ with γ the 3-metric of constant curvature k (for k > 0 the
    sphere of radius 1/√k: r = sin(√k ψ)/√k; Ric_γ = 2k γ by (C1)).  The flat-FLRW
    computation gains the spatial Ricci term: Ric_tt = −3ä/a,
    Ric_ij = (a ä + 2ȧ² + 2k) γ_ij, so R = 3ä/a + 3(aä + 2ȧ² + 2k)/a²
    = 6 (ä/a + ȧ²/a² + k/a²).
    """
    a = a_scale(t)
    ad, add = a.diff(t), a.diff(t, 2)
    gamma = sp.diag(1 / (1 - k * r**2), r**2, r**2 * sp.sin(theta) ** 2)
    g = sp.diag(-1, a**2 * gamma[0, 0], a**2 * gamma[1, 1], a**2 * gamma[2, 2])
    spatial = (a * add + 2 * ad**2 + 2 * k) * gamma
    ric = sp.diag(-3 * add / a, spatial[0, 0], spatial[1, 1], spatial[2, 2])
    return _entry(
        SymbolicMetric((t, r, theta, phi), g, name="flrw"),
        scalar=6 * (add / a + ad**2 / a**2 + k / a**2), ricci=ric,
    )


def s2_times_r() -> CatalogEntry:
    r"""S² × ℝ: g = dθ² + sin²θ dφ² + dz², coordinates (θ, φ, z).

    By (C3) with the unit sphere (R = 2, Ric = diag(1, sin²θ)) and the line (flat):
    Ric = diag(1, sin²θ, 0), R = 2, Kretschmann = 4.
    """
    g = sp.diag(1, sp.sin(theta) ** 2, 1)
    return _entry(
        SymbolicMetric((theta, phi, z), g, name="s2_times_r"),
        scalar=sp.Integer(2), ricci=sp.diag(1, sp.sin(theta) ** 2, 0), kretschmann=sp.Integer(4),
    )


def nil() -> CatalogEntry:
    r"""Nil (Heisenberg group): g = dx² + dy² + (dz − x dy)², coordinates (x, y, z).

    Orthonormal coframe ω¹ = dx, ω² = dy, ω³ = dz − x dy, dual frame e₁ = ∂_x,
    e₂ = ∂_y + x ∂_z, e₃ = ∂_z, left-invariant with [e₁, e₂] = e₃, others 0.
    (C4) with λ = (0, 0, 1): μ = (½, ½, −½), so Ric(e₁,e₁) = 2μ₂μ₃ = −½,
    Ric(e₂,e₂) = 2μ₁μ₃ = −½, Ric(e₃,e₃) = 2μ₁μ₂ = ½:
    Ric = −½ (ω¹)² − ½ (ω²)² + ½ (ω³)², R = −½.
    """
    w3 = sp.Matrix([0, -x, 1])
    g = sp.diag(1, 1, 0) + w3 * w3.T
    ric = -sp.Rational(1, 2) * sp.diag(1, 1, 0) + sp.Rational(1, 2) * w3 * w3.T
    return _entry(SymbolicMetric((x, y, z), g, name="nil"), scalar=-sp.Rational(1, 2), ricci=ric)


def sol() -> CatalogEntry:
    r"""Sol: g = e^{2z} dx² + e^{−2z} dy² + dz², coordinates (x, y, z).

    Orthonormal frame e₁ = e^{−z}∂_x, e₂ = e^{z}∂_y, e₃ = ∂_z: [e₁, e₃] = e₁,
    [e₂, e₃] = −e₂, [e₁, e₂] = 0.  With f₁ = (e₁ + e₂)/√2, f₂ = (e₁ − e₂)/√2:
    [f₂, e₃] = f₁, [e₃, f₁] = −f₂, [f₁, f₂] = 0, i.e. (C4) with λ = (1, −1, 0),
    μ = (−1, 1, 0): Ric(f₁,f₁) = 2μ₂μ₃ = 0, Ric(f₂,f₂) = 2μ₁μ₃ = 0,
    Ric(e₃,e₃) = 2μ₁μ₂ = −2.  So Ric = −2 dz², R = −2.
    """
    g = sp.diag(sp.exp(2 * z), sp.exp(-2 * z), 1)
    return _entry(SymbolicMetric((x, y, z), g, name="sol"), scalar=sp.Integer(-2), ricci=sp.diag(0, 0, -2))


def conformal2d(u: sp.Expr = None) -> CatalogEntry:
    r"""2-D conformal metric g = e^{2u(x,y)} (dx² + dy²) (default u = the function u(x, y)).

    Γ^k_ij = δ^k_i ∂_j u + δ^k_j ∂_i u − δ_ij ∂_k u, and log√det g = 2u.  With
    Ric_jk = ∂_pΓ^p_jk − ∂_j∂_k log√det g + ∂_q(log√det g) Γ^q_jk − Γ^p_jq Γ^q_pk:
    Ric_xx = (u_xx − u_yy) − 2u_xx + 2(u_x² − u_y²) − 2(u_x² − u_y²) = −Δu
    (Δ = ∂_x² + ∂_y²), likewise Ric_yy = −Δu, and Ric_xy = (u_xy + u_xy) − 2u_xy
    + 2(u_x u_y + u_y u_x) − 4 u_x u_y = 0.
    So Ric = −Δu δ = K g with K = −e^{−2u} Δu, and R = −2 e^{−2u} Δu.
    """
    if u is None:
        u = u_conf(x, y)
    lap = sp.diff(u, x, 2) + sp.diff(u, y, 2)
    g = sp.exp(2 * u) * sp.eye(2)
    return _entry(
        SymbolicMetric((x, y), g, name="conformal2d"),
        scalar=-2 * sp.exp(-2 * u) * lap, ricci=-lap * sp.eye(2),
    )


def kerr() -> CatalogEntry:
    r"""Kerr in Boyer–Lindquist coordinates (t, r, θ, φ), mass M, spin a (G = c = 1).

    ρ² = r² + a² cos²θ, Δ = r² − 2Mr + a²:
    g = −(1 − 2Mr/ρ²) dt² − (4Mar sin²θ/ρ²) dt dφ + (ρ²/Δ) dr² + ρ² dθ²
    + (r² + a² + 2Ma²r sin²θ/ρ²) sin²θ dφ².
    A vacuum solution of Einstein's equations: Ric = 0, R = 0 — proved component by
    component by ``benchmarks/bench_kerr.py`` and the slow test.  Kretschmann:
    48 M² (r⁶ − 15 a²r⁴c² + 15 a⁴r²c⁴ − a⁶c⁶)/ρ¹², c = cos θ (a = 0: Schwarzschild's 48M²/r⁶).
    """
    c2 = sp.cos(theta) ** 2
    s2 = sp.sin(theta) ** 2
    rho2 = r**2 + a_spin**2 * c2
    delta = r**2 - 2 * M * r + a_spin**2
    g = sp.zeros(4, 4)
    g[0, 0] = -(1 - 2 * M * r / rho2)
    g[0, 3] = g[3, 0] = -2 * M * a_spin * r * s2 / rho2
    g[1, 1] = rho2 / delta
    g[2, 2] = rho2
    g[3, 3] = (r**2 + a_spin**2 + 2 * M * a_spin**2 * r * s2 / rho2) * s2
    c = sp.cos(theta)
    kr = 48 * M**2 * (r**6 - 15 * a_spin**2 * r**4 * c**2 + 15 * a_spin**4 * r**2 * c**4 - a_spin**6 * c**6) / rho2**6
    return _entry(SymbolicMetric((t, r, theta, phi), g, name="kerr"), scalar=sp.S.Zero, ricci=sp.zeros(4),
                 kretschmann=kr)


def lne_stated(n: int = 2) -> CatalogEntry:
    r"""The paper's stated LNE metric g = I − t tᵀ, t_i = tanh(τ ξ_i) (docs/math.md §2), coordinates ξ_1..ξ_n.

    Built by :meth:`lnegeom.lne.LNEMetric.symbolic` (τ kept as a positive symbol).
    It is the metric induced on the spacelike graph z = F(ξ), F = Σ τ⁻¹ log cosh(τξ_i),
    in Minkowski space ℝ^{n,1} (dF = Σ t_i dξ_i).  Its second fundamental form is
    h = D/√(1 − s), D = diag(τ(1 − t_i²)), s = |t|², and the Gauss equation for a
    spacelike hypersurface (timelike normal) gives R = −(m² − |h|²_g), m = tr(g⁻¹h).
    For n = 2: m² − |h|²_g = 2 det(g⁻¹h) = 2 det D / ((1 − s) det g) with det g = 1 − s, so
    R = −2τ² (1 − t₁²)(1 − t₂²)/(1 − t₁² − t₂²)².  For any n, at ξ = 0: h = τI, R = −n(n − 1)τ²
    (stored as ``expected["scalar_at_0"]``).
    """
    from .lne import LNEMetric

    lne = LNEMetric(1.0).symbolic(n)
    m = SymbolicMetric(lne.coords, lne.matrix, name=f"lne_stated_{n}")
    exp: dict = {"scalar_at_0": -n * (n - 1) * tau**2}
    tv = [sp.tanh(tau * v) for v in m.coords]
    if n == 2:
        t1, t2 = tv
        exp["scalar"] = -2 * tau**2 * (1 - t1**2) * (1 - t2**2) / (1 - t1**2 - t2**2) ** 2
    else:  # the closed form of docs/math.md §2 (derived in lnegeom.lne's module docstring)
        exp["scalar"] = LNEMetric.closed_form_symbolic(m.coords, tau)[1]
    return CatalogEntry(m, exp)


def conformal_trig(u: sp.Expr = None) -> CatalogEntry:
    r"""2-D conformal metric g = e^{2u} (dx² + dy²) with a trigonometric u (default u = sin x cos y).

    By the computation of :func:`conformal2d`, Ric = −Δu δ = K g with
    K = −e^{−2u} Δu, so R = 2K = −2 e^{−2u} Δu and Ric = (R/2) g; by (C5)
    Kretschmann = R² = 4 e^{−4u} (Δu)².  For the default u = sin x cos y,
    Δu = −sin x cos y − sin x cos y = −2u, hence Ric = 2u δ = 2 sin x cos y δ,
    R = 4u e^{−2u} = 4 sin x cos y e^{−2 sin x cos y} and Kretschmann = 16 u² e^{−4u}.
    (u = sin(x)/2 gives g = e^{sin x} δ, Δu = −sin(x)/2, R = e^{−sin x} sin x.)
    """
    if u is None:
        u = sp.sin(x) * sp.cos(y)
    u = sp.sympify(u)
    lap = sp.diff(u, x, 2) + sp.diff(u, y, 2)
    R = -2 * sp.exp(-2 * u) * lap
    g = sp.exp(2 * u) * sp.eye(2)
    return _entry(
        SymbolicMetric((x, y), g, name="conformal_trig"),
        scalar=R, ricci=-lap * sp.eye(2), kretschmann=R**2,
    )


def warped_transcendental(f: sp.Expr = None) -> CatalogEntry:
    r"""Warped product g = dr² + f(r)² dθ² with a transcendental f (default f = e^{sin r}), coordinates (r, θ).

    By (C2), K = −f''/f.  For f = e^{sin r}: f' = cos r e^{sin r},
    f'' = (cos² r − sin r) e^{sin r}, so K = sin r − cos² r.  Hence
    Ric = K g = diag(K, K e^{2 sin r}), R = 2K = 2(sin r − cos² r), and by (C5)
    Kretschmann = 4K² = 4(sin r − cos² r)².  (Any f > 0 in r may be passed; the
    expected values are then −f''/f computed by sympy.)
    """
    if f is None:
        f = sp.exp(sp.sin(r))
        K = sp.sin(r) - sp.cos(r) ** 2
    else:
        f = sp.sympify(f)
        K = -sp.diff(f, r, 2) / f
    g = sp.diag(1, f**2)
    return _entry(
        SymbolicMetric((r, theta), g, name="warped_transcendental"),
        scalar=2 * K, ricci=K * g, kretschmann=4 * K**2,
    )


def sphere_stereographic(n: int = 2, rad: Number = radius) -> CatalogEntry:
    r"""Round n-sphere of radius ρ = ``rad`` (default R_0) in stereographic coordinates: g = 4ρ² δ/(1 + |x|²)².

    Coordinates (x, y) for n = 2, (x, y, z) for n = 3 (x_1..x_n beyond).  By (C6) g is
    the metric of the sphere of radius ρ in ℝⁿ⁺¹ (minus a point), of constant sectional
    curvature κ = 1/ρ² (Gauss equation, as in :func:`sphere3`).  By (C1):
    Ric = (n − 1) g/ρ² = 4(n − 1) δ/(1 + |x|²)², R = n(n − 1)/ρ²,
    Kretschmann = 2n(n − 1)/ρ⁴ (n = 2: R = 2/ρ², K = 4/ρ⁴; n = 3: R = 6/ρ², K = 12/ρ⁴).
    """
    if n < 2:
        raise ValueError(f"sphere_stereographic: dimension n must be >= 2, got {n}")
    coords = (x, y, z)[:n] if n <= 3 else sp.symbols(f"x_1:{n + 1}", real=True)
    s = sum(c**2 for c in coords)
    g = 4 * rad**2 / (1 + s) ** 2 * sp.eye(n)
    return _entry(
        SymbolicMetric(coords, g, name="sphere_stereographic" if n == 2 else f"sphere_stereographic_{n}"),
        scalar=sp.Integer(n * (n - 1)) / rad**2, ricci=(n - 1) * g / rad**2,
        kretschmann=sp.Integer(2 * n * (n - 1)) / rad**4,
    )


def lorentzian_exp_trig(dim: int = 2) -> CatalogEntry:
    r"""Flat FLRW-like g = −dt² + e^{2 sin t} (dx_1² + … + dx_d²), d = ``dim`` − 1, coordinates (t, x[, y, z]).

    Scale factor a = e^{sin t}: H := ȧ/a = cos t, q := ä/a = cos² t − sin t.  As in
    :func:`flrw_flat` (Γ^t_ij = a ȧ δ_ij, Γ^i_tj = H δ^i_j), with d spatial dimensions:
    Ric_tt = −d ∂_t H − d H² = −d q,
    Ric_ij = (ȧ² + aä) + d ȧ² − 2ȧ² = a² (q + (d − 1) H²) δ_ij,
    R = d q + d (q + (d − 1) H²) = 2d q + d(d − 1) H²
    (d = 1: R = 2q = 2(cos² t − sin t), Ric = q g as (C2)/(C5) demand; d = 3: flrw_flat's
    6(ä/a + ȧ²/a²)).  The nonzero curvature components are R_titj = −a ä δ_ij and
    R_ijkl = a² ȧ² (δ_ik δ_jl − δ_il δ_jk) (their traces give the Ricci above), so
    R_abcd R^abcd = 4 Σ_ij (a ä δ_ij)²/a⁴ + Σ (ȧ/a)⁴ (δ_ik δ_jl − δ_il δ_jk)²
    = 4d q² + 2d(d − 1) H⁴ (d = 3: the classical 12(q² + H⁴); d = 1: R² by (C5)).
    """
    if not 2 <= dim <= 4:
        raise ValueError(f"lorentzian_exp_trig: dim must be 2, 3 or 4, got {dim}")
    d = dim - 1
    coords = (t, x, y, z)[:dim]
    a2 = sp.exp(2 * sp.sin(t))
    H, q = sp.cos(t), sp.cos(t) ** 2 - sp.sin(t)
    g = sp.diag(-1, *([a2] * d))
    ric = sp.diag(-d * q, *([a2 * (q + (d - 1) * H**2)] * d))
    return _entry(
        SymbolicMetric(coords, g, name="lorentzian_exp_trig" if dim == 2 else f"lorentzian_exp_trig_{dim}"),
        scalar=2 * d * q + d * (d - 1) * H**2, ricci=ric,
        kretschmann=4 * d * q**2 + 2 * d * (d - 1) * H**4,
    )


#: name -> factory (default arguments)
CATALOG: dict[str, Callable[[], CatalogEntry]] = {
    "sphere2": sphere2,
    "sphere2_radius": lambda: sphere2(radius),
    "sphere3": sphere3,
    "sphere3_radius": lambda: sphere3(radius),
    "hyperbolic_plane": hyperbolic_plane,
    "hyperbolic3": hyperbolic3,
    "flat_polar": flat_polar,
    "flat_spherical": flat_spherical,
    "schwarzschild": schwarzschild,
    "flrw_flat": flrw_flat,
    "flrw": flrw,
    "s2_times_r": s2_times_r,
    "nil": nil,
    "sol": sol,
    "conformal2d": conformal2d,
    "kerr": kerr,
    "lne_stated_2": lambda: lne_stated(2),
    "lne_stated_3": lambda: lne_stated(3),
    "conformal_trig": conformal_trig,
    "warped_transcendental": warped_transcendental,
    "sphere_stereographic": sphere_stereographic,
    "sphere_stereographic_3": lambda: sphere_stereographic(3),
    "lorentzian_exp_trig": lorentzian_exp_trig,
    "lorentzian_exp_trig_4": lambda: lorentzian_exp_trig(4),
}


#: concrete values of the catalogue's parameters for numeric evaluation
#: (undefined functions replaced by concrete smooth ones)
NUMERIC_PARAMS: dict = {
    M: sp.Rational(1, 2),
    a_spin: sp.Rational(3, 10),
    tau: sp.Rational(7, 10),
    radius: sp.Rational(3, 2),
    k_curv: sp.Rational(1, 3),
    a_scale(t): sp.exp(t / 3) + t**2 / 5,
    u_conf(x, y): sp.sin(x) * y / 3 + x**2 / 5,
}

#: a sampling box per catalogue entry, inside the chart and away from degeneracies
SAMPLE_BOXES: dict = {
    "sphere2": [(0.3, 2.8), (-3, 3)],
    "sphere2_radius": [(0.3, 2.8), (-3, 3)],
    "sphere3": [(0.3, 2.8), (0.3, 2.8), (-3, 3)],
    "sphere3_radius": [(0.3, 2.8), (0.3, 2.8), (-3, 3)],
    "hyperbolic_plane": [(-2, 2), (0.3, 3)],
    "hyperbolic3": [(-2, 2), (-2, 2), (0.3, 3)],
    "flat_polar": [(0.3, 3), (-3, 3)],
    "flat_spherical": [(0.3, 3), (0.3, 2.8), (-3, 3)],
    "schwarzschild": [(-2, 2), (2.5, 8), (0.3, 2.8), (-3, 3)],
    "flrw_flat": [(0.1, 2), (-2, 2), (-2, 2), (-2, 2)],
    "flrw": [(0.1, 2), (0.1, 1.5), (0.3, 2.8), (-3, 3)],
    "s2_times_r": [(0.3, 2.8), (-3, 3), (-3, 3)],
    "nil": [(-2, 2)] * 3,
    "sol": [(-1, 1)] * 3,
    "conformal2d": [(-2, 2)] * 2,
    "kerr": [(-2, 2), (2.5, 8), (0.3, 2.8), (-3, 3)],
    "lne_stated_2": [(-0.6, 0.6)] * 2,
    "lne_stated_3": [(-0.45, 0.45)] * 3,
    "conformal_trig": [(-3, 3)] * 2,
    "warped_transcendental": [(-3, 3), (-3, 3)],
    "sphere_stereographic": [(-2, 2)] * 2,
    "sphere_stereographic_3": [(-2, 2)] * 3,
    "lorentzian_exp_trig": [(-3, 3), (-2, 2)],
    "lorentzian_exp_trig_4": [(-3, 3), (-2, 2), (-2, 2), (-2, 2)],
}

#: entries with a Lorentzian signature (the positive-definiteness check is off for them)
LORENTZIAN = frozenset({"schwarzschild", "kerr", "flrw_flat", "flrw", "lorentzian_exp_trig", "lorentzian_exp_trig_4"})


def sample_points(name: str, k: int = 4, seed: int = 0):
    """``k`` uniform random points in :data:`SAMPLE_BOXES` ``[name]`` (numpy, ``[k, n]``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lo, hi = np.array(SAMPLE_BOXES[name], dtype=float).T
    return lo + (hi - lo) * rng.random((k, len(lo)))


def numeric_errors(name: str, k: int = 4, seed: int = 0) -> dict:
    """Max relative errors of the numeric torch path against the entry's closed forms.

    The metric (parameters fixed by :data:`NUMERIC_PARAMS`) is lambdified to a torch
    callable and differentiated by autodiff (:class:`~lnegeom.metric.MetricField`) at
    :func:`sample_points`; each expected closed form present (``scalar``, ``ricci``,
    ``kretschmann``) is evaluated independently by ``sympy.lambdify``.  Returns
    ``{quantity: max |numeric − expected| / max(1, |expected|)}``.
    """
    import numpy as np
    import torch

    entry = CATALOG[name]()
    m = entry.metric.subs(NUMERIC_PARAMS)
    field = m.metric_field("torch", check=name not in LORENTZIAN)
    pts = sample_points(name, k, seed)
    curv = field.curvature(torch.as_tensor(pts))
    got = {"scalar": curv.scalar, "ricci": curv.ricci, "kretschmann": curv.kretschmann}
    out = {}
    for key in ("scalar", "ricci", "kretschmann"):
        if key not in entry.expected:
            continue
        f = sp.lambdify(m.coords, sp.sympify(entry.expected[key]).subs(NUMERIC_PARAMS).doit(), "numpy")
        want = np.stack([np.broadcast_to(np.asarray(f(*p), dtype=float), got[key].shape[1:]) for p in pts])
        num = got[key].detach().numpy()
        out[key] = float(np.max(np.abs(num - want) / np.maximum(1.0, np.abs(want))))
    return out
