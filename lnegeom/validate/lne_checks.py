"""Checks of the LNE construction (docs/math.md §2), computed with the library's own code.

What the report shows: the Bregman divergence is matched to third order by
the Hessian metric H and only to second order by the paper's stated metric
g = I − t tᵀ (P-16); H is flat; g is not Ricci-flat (R(0) = −n(n−1)τ²); and the
O(n) closed-form Ricci tensor agrees with the generic autodiff path and with
the symbolic path.
"""

from __future__ import annotations

import numpy as np
import torch

from ..lne import HessianMetric, LNEMetric, taylor_discrepancy
from .base import CheckResult, Context, check

SECTION = "curvature"
TAU = 1.0


def _points_with_s_below(rng: np.random.Generator, n: int, count: int, tau: float, s_max: float = 0.9) -> np.ndarray:
    """Random ξ ∈ ℝⁿ with s = |tanh(τξ)|² uniform in [0, s_max]: t = √s z/|z|, ξ = artanh(t)/τ."""
    z = rng.normal(size=(count, n))
    s = rng.uniform(0.0, s_max, size=(count, 1))
    return np.arctanh(np.sqrt(s) * z / np.linalg.norm(z, axis=1, keepdims=True)) / tau


@check("lne-taylor", "Bregman divergence vs ½ dξᵀ M dξ (Taylor orders)", SECTION)
def taylor_orders(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    # a generic point (at ξ = 0 both orders are 4: the cubic term and g − H vanish there) and a
    # direction with off-diagonal weight ((t·v)² − Σ t_i² v_i² far from 0)
    n = 4
    xi = np.array([0.3, 0.2, -0.1, 0.25])
    v = np.array([1.0, 1.0, -1.0, 1.0]) / 2.0
    eps = np.logspace(-2, -4, 9)
    res = taylor_discrepancy(xi, v, TAU, eps=eps)
    oh, og = float(res["order_H"]), float(res["order_g"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(res["eps"], res["err_H"], "o-", label=f"M = H = diag(sech²τξ): slope {oh:.2f}")
    ax.loglog(res["eps"], res["err_g"], "s-", label=f"M = g = I − ttᵀ: slope {og:.2f}")
    ax.set_xlabel("ε = |dξ|")
    ax.set_ylabel("|D[ξ+ε v : ξ] − ½ ε² vᵀ M v|")
    ax.set_title(f"Taylor error of the Bregman divergence (n={n}, τ={TAU})")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = ctx.plot_path("lne_taylor_orders.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    passed = abs(oh - 3.0) <= 0.15 and abs(og - 2.0) <= 0.15
    return CheckResult(
        "lne-taylor", "Bregman divergence vs ½ dξᵀ M dξ (Taylor orders)", SECTION, passed,
        measured={"order(H)": oh, "order(g)": og},
        expected={"order(H)": 3.0, "order(g)": 2.0},
        criterion="|order − expected| ≤ 0.15 (least-squares log-log fit over 9 steps ε ∈ [1e-4, 1e-2])",
        details=(f"At ξ = {xi.tolist()}, unit direction v = {v.tolist()}, τ = {TAU}. "
                 "The Hessian metric H matches the Bregman divergence to third order; the paper's stated "
                 "metric g = I − ttᵀ (P-16) differs from it at second order through its off-diagonal entries "
                 "−t_i t_j, so P-16 is not the second-order term of P-15."),
        plots=["plots/lne_taylor_orders.png"],
    )


@check("hessian-flat", "Hessian metric H = diag(sech²τξ) is flat", SECTION)
def hessian_flat(ctx: Context) -> CheckResult:
    rng = ctx.rng()
    worst = 0.0
    dims = range(2, 5 if ctx.quick else 7)
    for n in dims:
        x = torch.as_tensor(rng.normal(scale=0.8, size=(8, n)))
        rm = HessianMetric(TAU).metric_field(n).curvature(x).riemann
        worst = max(worst, float(rm.abs().max()))
    return CheckResult(
        "hessian-flat", "Hessian metric H = diag(sech²τξ) is flat", SECTION, worst < 1e-10,
        measured={"max |R^l_ijk|": worst}, expected={"max |R^l_ijk|": 0.0},
        criterion="< 1e-10 at 8 random points per n (autodiff, float64)",
        details=f"n = {list(dims)}; H is separable (each g_ii depends on ξ_i only), hence flat.",
    )


@check("lne-origin", "g = I − ttᵀ at ξ = 0: R = −n(n−1)τ² (not Ricci-flat)", SECTION)
def lne_origin(ctx: Context) -> CheckResult:
    ns = list(range(2, 9))
    measured, expected, closed = [], [], []
    for n in ns:
        m = LNEMetric(TAU)
        r_auto = float(m.metric_field(n).scalar(torch.zeros(1, n, dtype=torch.float64))[0])
        measured.append(r_auto)
        closed.append(float(m.scalar(np.zeros(n))))
        expected.append(-n * (n - 1) * TAU**2)
    err = max(abs(a - e) / abs(e) for a, e in zip(measured, expected))
    err_c = max(abs(a - e) / abs(e) for a, e in zip(closed, expected))
    return CheckResult(
        "lne-origin", "g = I − ttᵀ at ξ = 0: R = −n(n−1)τ² (not Ricci-flat)", SECTION,
        err < 1e-10 and err_c < 1e-12,
        measured={"R(0) autodiff, n=2..8": measured, "max rel. err (autodiff)": err,
                  "max rel. err (closed form)": err_c},
        expected={"R(0) = −n(n−1)τ²": expected},
        criterion="relative error < 1e-10",
        details=("At ξ = 0 the stated LNE metric has the curvature of hyperbolic space of sectional curvature −τ²: "
                 "it is not Ricci-flat, contrary to the paper's Section 4.1."),
    )


@check("lne-closed-vs-autodiff", "O(n) closed-form Ricci of g vs generic autodiff, n = 2..8", SECTION)
def lne_closed_vs_autodiff(ctx: Context) -> CheckResult:
    rng = ctx.rng()
    count = 4 if ctx.quick else 16
    worst_ric = worst_r = 0.0
    for n in range(2, 9):
        m = LNEMetric(TAU)
        xi = _points_with_s_below(rng, n, count, TAU, 0.9)
        curv = m.metric_field(n).curvature(torch.as_tensor(xi))
        ric_c = np.asarray(m.ricci_matrix(xi))
        r_c = np.asarray(m.scalar(xi))
        scale = np.abs(curv.ricci.numpy()).max(axis=(-1, -2))
        worst_ric = max(worst_ric, float(np.max(np.abs(ric_c - curv.ricci.numpy()).max(axis=(-1, -2)) / scale)))
        worst_r = max(worst_r, float(np.max(np.abs(r_c - curv.scalar.numpy()) / np.abs(curv.scalar.numpy()))))
    passed = worst_ric < 1e-9 and worst_r < 1e-9
    return CheckResult(
        "lne-closed-vs-autodiff", "O(n) closed-form Ricci of g vs generic autodiff, n = 2..8", SECTION, passed,
        measured={"max rel. err Ric": worst_ric, "max rel. err R": worst_r},
        expected={"max rel. err": 0.0}, criterion="< 1e-9 (float64)",
        details=(f"{count} random points per n with s = |t|² uniform in [0, 0.9]. Closed form: "
                 "Ric = diag(a) + β u uᵀ (docs/math.md §2), O(n); autodiff: Riemann from ∂²g by torch.func "
                 "(n⁴ entries)."),
    )


@check("lne-closed-vs-symbolic", "O(n) closed-form Ricci of g vs the symbolic path, n = 2..4", SECTION)
def lne_closed_vs_symbolic(ctx: Context) -> CheckResult:
    rng = ctx.rng()
    worst = 0.0
    ns = [2, 3] if ctx.quick else [2, 3, 4]
    for n in ns:
        m = LNEMetric(TAU)
        sym = m.symbolic(n, tau_value=True)
        ric_fn = sym.lambdify("ricci", backend="numpy")
        r_fn = sym.lambdify("scalar", backend="numpy")
        for xi in _points_with_s_below(rng, n, 3, TAU, 0.9):
            ric_s = np.asarray(ric_fn(xi), dtype=float)
            r_s = float(r_fn(xi))
            err_ric = np.abs(ric_s - np.asarray(m.ricci_matrix(xi))).max() / np.abs(ric_s).max()
            err_r = abs(r_s - float(m.scalar(xi))) / abs(r_s)
            worst = max(worst, float(err_ric), float(err_r))
    return CheckResult(
        "lne-closed-vs-symbolic", "O(n) closed-form Ricci of g vs the symbolic path, n = 2..4", SECTION,
        worst < 1e-10, measured={"max rel. err (Ric, R)": worst}, expected={"max rel. err": 0.0},
        criterion="< 1e-10 at 3 random points per n",
        details=f"n = {ns}; symbolic Ricci by sympy, lambdified to numpy.",
    )


@check("lne-scalar-slice", "Scalar curvature of g = I − ttᵀ over a 2-D slice", SECTION)
def lne_scalar_slice(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    m = LNEMetric(TAU)
    a = np.arctanh(np.sqrt(0.5)) / TAU  # the square [-a, a]² touches s = 1 at its corners
    k = 81 if ctx.quick else 201
    u = np.linspace(-1.2 * a, 1.2 * a, k)
    X, Y = np.meshgrid(u, u, indexing="xy")
    xi = np.stack([X, Y], axis=-1)
    t = np.tanh(TAU * xi)
    s = (t**2).sum(-1)
    inside = s < 0.995
    R = np.full(X.shape, np.nan)
    R[inside] = np.asarray(m.scalar(xi[inside]))
    # the n = 2 closed form of docs/math.md §2, an independent formula
    R2 = -2 * TAU**2 * (1 - t[..., 0] ** 2) * (1 - t[..., 1] ** 2) / (1 - s) ** 2
    err = float(np.nanmax(np.abs(R[inside] - R2[inside]) / np.abs(R2[inside])))
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    im = ax.pcolormesh(X, Y, np.log10(-R), shading="auto", cmap="viridis")
    ax.contour(X, Y, s, levels=[1.0], colors="red", linewidths=1.5)
    fig.colorbar(im, ax=ax, label="log₁₀(−R)")
    ax.set_title(f"R of g = I − ttᵀ, n = 2, τ = {TAU} (red: s = 1, g degenerate)")
    ax.set_xlabel("ξ₁")
    ax.set_ylabel("ξ₂")
    fig.tight_layout()
    path = ctx.plot_path("lne_scalar_slice.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    r0 = float(m.scalar(np.zeros(2)))
    return CheckResult(
        "lne-scalar-slice", "Scalar curvature of g = I − ttᵀ over a 2-D slice", SECTION, err < 1e-12,
        measured={"R(0)": r0, "max R on slice": float(np.nanmax(R)), "min R on slice": float(np.nanmin(R)),
                  "max rel. err vs n=2 formula": err},
        expected={"R(0)": -2 * TAU**2, "sign": "R < 0 everywhere, R → −∞ as s → 1"},
        criterion="O(n) closed form = −2τ²(1−t₁²)(1−t₂²)/(1−s)² to 1e-12",
        details="R is negative everywhere on the slice and diverges at the red curve s = 1, where g degenerates.",
        plots=["plots/lne_scalar_slice.png"],
    )


@check("lne-weak-inverse", "Weak approximation (P-29) error vs the exact s/(1−s)", SECTION)
def lne_weak_inverse(ctx: Context) -> CheckResult:
    rng = ctx.rng()
    n = 6
    rows, worst = [], 0.0
    for s_target in (0.01, 0.1, 0.5, 0.9):
        xi = _points_with_s_below(rng, n, 1, TAU, s_target)[0]
        m = LNEMetric(TAU)
        t = np.tanh(TAU * xi)
        s = float(t @ t)
        v = rng.normal(size=n)
        exact = np.linalg.solve(np.eye(n) - np.outer(t, t), v)  # dense reference, independent of lne.py
        weak = np.asarray(m.weak_inverse_apply(xi, v))
        measured = np.linalg.norm(exact - weak)
        theory = abs(t @ v) * np.sqrt(s) * s / (1 - s)  # |t (t·v)| s/(1−s)
        worst = max(worst, abs(measured - theory) / theory)
        rows.append((s, measured, theory))
    return CheckResult(
        "lne-weak-inverse", "Weak approximation (P-29) error vs the exact s/(1−s)", SECTION, worst < 1e-8,
        measured={"s": [r[0] for r in rows], "|g⁻¹v − weak(v)|": [r[1] for r in rows]},
        expected={"|t|·|t·v|·s/(1−s)": [r[2] for r in rows]},
        criterion="relative difference < 1e-8 (dense numpy solve as reference)",
        details="The weak approximation's error grows like s/(1−s): fine for s ≪ 1, useless as s → 1.",
    )
