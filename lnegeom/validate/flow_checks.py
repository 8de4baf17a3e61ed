"""Checks of Ricci–DeTurck flow on grids (docs/math.md §3), computed with the library's solver.

All on the periodic torus; each check reports measured numbers beside the
theoretical ones, with fixed, stated fit windows and a semilog plot.

- flow-torus-decay — flat torus, background δ: a small smooth perturbation
   decays, mode k at the rate kᵀ g∞⁻¹ k with g∞ the measured limit metric.
- flow-growing-L — the slowest rate (2π/L)² vanishes as L grows; before the
   boundary is felt a Gaussian bump decays like the ℝⁿ heat kernel,
   ‖h‖ ∝ (σ² + 2t)^{−n/4}: exponential decay needs a spectral gap.
- flow-gauge — an exact pull-back φ*δ is flat, static under Ricci flow and
   decaying under Ricci–DeTurck flow; gauge-invariant curvature quantities of a
   generic perturbation decay alike under both.
- flow-conformal-2d — the tensor Ricci flow of e^{2u}δ against the scalar flow
   ∂_t u = e^{−2u}Δu solved independently.
- flow-linear-spectrum — the spectrum of the linearised Ricci–DeTurck operator
   (:mod:`lnegeom.linearize`) at flat backgrounds against the analytic symbol
   and the nonlinear flow's rate.
- flow-nonlinear-amplitude — the amplitude at which the measured rate leaves
   the linear one by 5 %.
"""

from __future__ import annotations

import itertools
import math
from typing import Optional

import numpy as np

from ..curvature import curvature_from_derivatives
from ..domains import Torus
from ..fields import CoordinateMap
from ..flow import flow_rhs, solve_flow
from ..linearize import decay_rates
from .base import CheckResult, Context, check, fit_decay_rate, relative_error, save_figure

SECTION = "flow"
AMPLITUDE = 1e-3
WINDOW = (5.0, 16.0)  # with L = 2π the slowest rate is ≈ 1: e^{-11}, 4.8 decades (4.4 at rate 0.93)


def _decay_run(n: int, N: int, nonzero_mean: bool):
    L = 2 * math.pi
    T = Torus(n, N, L)
    x = T.points()
    rng = np.random.default_rng(7 + n)
    S = rng.normal(size=(n, n))
    S = (S + S.T) / 2
    S /= np.abs(S).max()
    mean = np.eye(n)
    if nonzero_mean:
        mean = mean + 0.2 * np.diag(np.linspace(0.5, -0.5, n))
        mean[0, 1] = mean[1, 0] = 0.15
    g0 = mean + AMPLITUDE * np.cos(x[..., 0])[..., None, None] * S  # mode m = (1, 0, ...)
    res = solve_flow(g0, (0.0, WINDOW[1]), domain=T, t_eval=np.linspace(0.0, WINDOW[1], 65), diagnostics=False)
    if res.status != 0:
        raise RuntimeError(res.message)
    g_inf = T.mean(res.g[-1])
    norms = np.array([T.l2_norm(g - g_inf) for g in res.g])
    w = (res.t >= WINDOW[0]) & (res.t <= WINDOW[1])
    rate = -float(np.polyfit(res.t[w], np.log(norms[w]), 1)[0])
    k = np.zeros(n)
    k[0] = 2 * math.pi / L
    theory = float(k @ np.linalg.solve(g_inf, k))
    return dict(T=T, res=res, g_inf=g_inf, norms=norms, rate=rate, theory=theory,
                decades=float(np.log10(norms[w][0] / norms[w][-1])))


@check("flow-torus-decay", "Flat torus, background δ: decay rate kᵀ g∞⁻¹ k of a small perturbation", SECTION)
def torus_decay_rate(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    cases = [("n=2, zero mean, 16²", 2, 16, False), ("n=2, non-zero mean, 16²", 2, 16, True)]
    if not ctx.quick:
        cases.append(("n=3, zero mean, 8³", 3, 8, False))
    measured, expected, g_infs = {}, {}, {}
    worst, decades = 0.0, []
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, n, N, nz in cases:
        r = _decay_run(n, N, nz)
        err = relative_error(r["rate"], r["theory"])
        worst = max(worst, err)
        decades.append(r["decades"])
        measured[f"rate ({label})"] = r["rate"]
        measured[f"rel. err ({label})"] = err
        expected[f"kᵀ g∞⁻¹ k ({label})"] = r["theory"]
        g_infs[label] = np.round(r["g_inf"], 8).tolist()
        t = r["res"].t
        line, = ax.semilogy(t, r["norms"], "o", ms=3, label=f"{label}: fit {r['rate']:.6f}")
        i0 = np.argmin(np.abs(t - WINDOW[0]))
        ax.semilogy(t, r["norms"][i0] * np.exp(-r["theory"] * (t - t[i0])), "-", color=line.get_color(), lw=1,
                    label=f"theory slope {r['theory']:.6f}")
    ax.axvspan(*WINDOW, color="grey", alpha=0.12, label="fit window")
    ax.set_xlabel("t")
    ax.set_ylabel("‖g(t) − g∞‖_L²")
    ax.set_title("Ricci–DeTurck flow on T = [0, 2π)ⁿ, background δ")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(ctx.plot_path("flow_torus_decay.png"), dpi=110)
    plt.close(fig)
    measured["g∞"] = g_infs
    measured["decades in window"] = min(decades)
    passed = worst < 1e-3 and min(decades) >= 4
    return CheckResult(
        "flow-torus-decay", "Flat torus, background δ: decay rate kᵀ g∞⁻¹ k of a small perturbation", SECTION,
        passed, measured=measured, expected=expected,
        criterion=(f"relative error < 1e-3, least-squares fit of log ‖g − g∞‖ over t ∈ [{WINDOW[0]:g}, {WINDOW[1]:g}] "
                   "(≥ 4 decades); g∞ = grid mean of g at the last time"),
        details=(f"g0 = mean + {AMPLITUDE:g}·cos(x₁)·S (mode k = (2π/L, 0, ...), L = 2π, S a fixed symmetric matrix); "
                 "the mean is δ (zero-mean perturbation: g∞ ≈ δ, rate |k|² = 1) or a non-diagonal constant "
                 "(g∞ ≠ δ, rate kᵀ g∞⁻¹ k ≠ 1). Solver: solve_flow, method 'etd' (the default exponential "
                 "integrator, rtol 1e-6, atol 1e-10)."),
        plots=["plots/flow_torus_decay.png"],
    )


# =========================================================================
# shared helpers of checks 3–8
# =========================================================================
S2 = np.array([[0.6, -0.8], [-0.8, 0.3]])  # a fixed symmetric direction (n = 2)
S3 = np.array([[0.6, -0.8, 0.2], [-0.8, 0.3, 0.5], [0.2, 0.5, -0.4]])  # (n = 3)



def _solve(g0: np.ndarray, T: Torus, t_eval: np.ndarray, **kw):
    """solve_flow from t = 0 over ``t_eval``; a failure raises with the solver's message."""
    res = solve_flow(g0, (0.0, float(t_eval[-1])), domain=T, t_eval=t_eval, **kw)
    if res.status != 0:
        raise RuntimeError(res.message)
    return res


def _slowest_mode_rate(g_inf: np.ndarray, T: Torus, modes) -> float:
    """min over the integer wave vectors m of kᵀ g∞⁻¹ k, k = 2π m / L (the slowest linear rate at g∞)."""
    ks = [2 * math.pi * np.asarray(m, float) / np.asarray(T.L) for m in modes]
    return float(min(k @ np.linalg.solve(g_inf, k) for k in ks))


def _unit_modes(n: int) -> list[tuple[int, ...]]:
    """The wave vectors ±e_a: the slowest non-constant modes of a near-δ metric."""
    return [tuple(int(a == b) for b in range(n)) for a in range(n)]


def _random_perturbation(T: Torus, seed: int) -> np.ndarray:
    """A fixed zero-mean symmetric field with content at every wave vector m with |m|_∞ = 1,
    normalised to max_x ‖h(x)‖₂ = 1 (operator norm)."""
    rng = np.random.default_rng(seed)
    x = T.points()
    n = T.n
    h = np.zeros(tuple(T.shape) + (n, n))
    for m in itertools.product((-1, 0, 1), repeat=n):
        if not any(m) or next(v for v in m if v) < 0:  # one of ±m
            continue
        phase = sum(2 * math.pi * mi / Li * x[..., a] for a, (mi, Li) in enumerate(zip(m, T.L)))
        B = rng.normal(size=(n, n))
        h += np.cos(phase + rng.uniform(0, 2 * math.pi))[..., None, None] * (B + B.T) / 2
    return h / np.abs(np.linalg.eigvalsh(h)).max()



# =========================================================================
# check 3 — growing L: the rate vanishes like L⁻²; on a large domain the decay is a power law
# =========================================================================
BUMP_SIGMA = 1.0
BUMP_AMPLITUDE = 1e-3
RATE_WINDOW_TAU = (4.0, 12.0)  # fit window in τ = (2π/L)² t: e^{−8} = 3.5 decades at the slowest rate


def periodic_gaussian(T: Torus, sigma: float) -> np.ndarray:
    r"""The periodised Gaussian Σ_{j∈ℤⁿ} exp(−|x − c − jL|² / (2σ²)), c the centre of the torus.

    It is exactly periodic, with Fourier coefficients ∝ e^{−|k|²σ²/2}; under ∂_t h = Δh it stays a
    periodised Gaussian, of width (σ² + 2t)^{1/2} and peak (σ²/(σ² + 2t))^{n/2}.  Images |j|_∞ ≤ 3
    are summed (the next ones weigh ≤ exp(−(3.5 L)²/(2σ²)))."""
    x = T.points()
    out = np.ones(T.shape)
    for a in range(T.n):
        xa = x[..., a] - T.L[a] / 2
        out = out * sum(np.exp(-((xa - j * T.L[a]) ** 2) / (2 * sigma**2)) for j in range(-3, 4))
    return out


def _gaussian_torus_norm(n: int, L: float, sigma: float, t: np.ndarray) -> np.ndarray:
    """‖h(t)‖_L² of the exact solution of ∂_t h = Δh on [0, L)ⁿ from a periodised Gaussian of peak 1
    (Parseval: Σ_m |ĥ_m|² e^{−2|k|²t} with ĥ_m = (2πσ²)^{n/2} L^{−n} e^{−|k|²σ²/2})."""
    m = np.arange(-200, 201)
    k2 = (2 * math.pi * m / L) ** 2
    one = np.exp(-2 * k2[None, :] * (sigma**2 / 2 + np.asarray(t, float)[:, None])).sum(axis=1)
    return np.sqrt((2 * math.pi * sigma**2) ** n / L**n * one**n)


def growing_L_rates(Ls: list[float], Ns: list[int], *, sigma: float = BUMP_SIGMA,
                    window: tuple[float, float] = RATE_WINDOW_TAU, samples: int = 49) -> dict:
    """Late-time decay rates of a Gaussian bump of width σ on 2-D tori [0, L)² of growing L.

    For each L: g0 = δ + a·G_σ·S, Ricci–DeTurck flow to τ = (2π/L)² t = window[1], the rate of
    ‖g − g∞‖ fitted over τ ∈ window, beside kᵀ g∞⁻¹ k for k = (2π/L) e_a; then the exponent p of
    rate ∝ L^p (least squares in log–log; theory −2)."""
    runs = []
    for L, N in zip(Ls, Ns):
        T = Torus(2, N, L)
        lam = (2 * math.pi / L) ** 2
        t = np.linspace(0.0, window[1] / lam, samples)
        res = _solve(np.eye(2) + BUMP_AMPLITUDE * periodic_gaussian(T, sigma)[..., None, None] * S2, T, t,
                     diagnostics=False)
        g_inf = T.mean(res.g[-1])
        norms = np.array([T.l2_norm(g - g_inf) for g in res.g])
        rate, decades = fit_decay_rate(res.t * lam, norms, window)
        runs.append(dict(L=L, N=N, t=res.t, norms=norms, rate=rate * lam, decades=decades,
                         theory=_slowest_mode_rate(g_inf, T, _unit_modes(2)), seconds=res.seconds))
    p = float(np.polyfit(np.log(Ls), np.log([r["rate"] for r in runs]), 1)[0])
    return dict(runs=runs, exponent=p)


def gaussian_power_law(n: int, L: float, N: int, *, sigma: float = BUMP_SIGMA, samples: int = 12,
                       t_late: float = 0.0) -> dict:
    r"""L² decay of a Gaussian bump before the boundary is felt: ‖g(t) − δ‖ ∝ (σ² + 2t)^{−p}, theory p = n/4.

    Fit window: σ² + 2t ∈ [σ², L²/32] (``samples`` log-spaced times), where the periodic images
    change ‖h‖² by at most 2n·e^{−L²/(4(σ²+2t))} ≤ 2n·e^{−8}; the same fit of the exact linear
    solution on this torus (:func:`_gaussian_torus_norm`) gives the exponent the images leave.
    ``t_late`` > 0 continues the run (linearly spaced) to show the saturation at the mean."""
    T = Torus(n, N, L)
    S = S2 if n == 2 else S3
    s2_end = L**2 / 32
    t = (np.geomspace(sigma**2, s2_end, samples) - sigma**2) / 2
    t[0] = 0.0
    t_fit_end = float(t[-1])
    if t_late > t_fit_end:
        t = np.concatenate([t, np.linspace(t_fit_end, t_late, 25)[1:]])
    res = _solve(np.eye(n) + BUMP_AMPLITUDE * periodic_gaussian(T, sigma)[..., None, None] * S, T, t,
                 diagnostics=False)
    norms = np.array([T.l2_norm(g - np.eye(n)) for g in res.g])
    w = res.t <= t_fit_end + 1e-12
    s2 = sigma**2 + 2 * res.t
    p = -float(np.polyfit(np.log(s2[w]), np.log(norms[w]), 1)[0])
    exact = BUMP_AMPLITUDE * np.linalg.norm(S) * _gaussian_torus_norm(n, L, sigma, res.t)
    p_torus = -float(np.polyfit(np.log(s2[w]), np.log(exact[w]), 1)[0])
    return dict(n=n, L=L, N=N, t=res.t, s2=s2, norms=norms, exact=exact, exponent=p, exponent_torus=p_torus,
                fit_s2=(sigma**2, s2_end), seconds=res.seconds,
                max_dev_exact=float(np.max(np.abs(norms / exact - 1))))


@check("flow-growing-L", "Growing L: rate ∝ L⁻² → 0; on a large domain a bump decays like (σ² + 2t)^{−n/4}", SECTION)
def growing_L(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    title = "Growing L: rate ∝ L⁻² → 0; on a large domain a bump decays like (σ² + 2t)^{−n/4}"
    Ls, Ns = ([8.0, 12.0, 16.0], [20, 30, 40]) if ctx.quick else ([8.0, 12.0, 16.0, 24.0], [20, 30, 40, 58])
    scan = growing_L_rates(Ls, Ns)
    laws = [gaussian_power_law(2, 12.0, 30)] if ctx.quick else [gaussian_power_law(2, 16.0, 40, t_late=60.0),
                                                                 gaussian_power_law(3, 10.0, 24)]
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.3))
    measured, expected = {}, {}
    worst_rate = 0.0
    for r in scan["runs"]:
        lab = f"L = {r['L']:g} ({r['N']}²)"
        err = relative_error(r["rate"], r["theory"])
        worst_rate = max(worst_rate, err)
        measured[f"rate ({lab})"] = r["rate"]
        expected[f"kᵀ g∞⁻¹ k, k = 2π/L ({lab})"] = r["theory"]
        lam = (2 * math.pi / r["L"]) ** 2
        line, = axs[0].semilogy(r["t"] * lam, r["norms"] / r["norms"][0], "o", ms=2.5,
                                label=f"{lab}: rate {r['rate']:.5f}")
        axs[0].semilogy(r["t"] * lam, np.exp(-(r["t"] - r["t"][-1]) * r["theory"]) * r["norms"][-1] / r["norms"][0],
                        "-", lw=0.8, color=line.get_color())
    axs[0].axvspan(*RATE_WINDOW_TAU, color="grey", alpha=0.12, label="fit window")
    axs[0].set_xlabel("τ = (2π/L)² t")
    axs[0].set_ylabel("‖g − g∞‖ / ‖g0 − g∞‖")
    axs[0].set_title("late-time decay, Gaussian bump σ = 1")
    axs[0].legend(fontsize=7)
    Lg = np.array(Ls)
    axs[1].loglog(Lg, [r["rate"] for r in scan["runs"]], "o", label=f"measured: exponent {scan['exponent']:.5f}")
    axs[1].loglog(Lg, (2 * math.pi / Lg) ** 2, "-", lw=1, label="(2π/L)²")
    axs[1].set_xlabel("L")
    axs[1].set_ylabel("slowest decay rate")
    axs[1].set_title("the spectral gap closes as L → ∞")
    axs[1].legend(fontsize=8)
    worst_p, worst_dev = 0.0, 0.0
    for law in laws:
        n = law["n"]
        lab = f"n={n}, L={law['L']:g}, {law['N']}^{n}"
        worst_p = max(worst_p, relative_error(law["exponent"], n / 4))
        worst_dev = max(worst_dev, law["max_dev_exact"])
        measured[f"power-law exponent ({lab})"] = law["exponent"]
        expected[f"n/4 ({lab})"] = n / 4
        expected[f"exponent of the exact linear solution on this torus ({lab})"] = law["exponent_torus"]
        measured[f"max |‖h‖/‖h‖_exact − 1| ({lab})"] = law["max_dev_exact"]
        line, = axs[2].loglog(law["s2"], law["norms"], "o", ms=2.5, label=f"{lab}: exponent {law['exponent']:.5f}")
        axs[2].loglog(law["s2"], law["norms"][0] * law["s2"] ** (-n / 4), "-", lw=0.8, color=line.get_color(),
                      label=f"(σ² + 2t)^(−{n}/4) (ℝ^{n})")
    axs[2].axvspan(*laws[0]["fit_s2"], color="grey", alpha=0.12, label="fit window (n=2)")
    axs[2].set_xlabel("σ² + 2t")
    axs[2].set_ylabel("‖g − δ‖_L²")
    axs[2].set_title("before the boundary is felt: a power law")
    axs[2].legend(fontsize=7)
    for ax in axs:
        ax.grid(True, which="both", alpha=0.3)
    plot = save_figure(fig, ctx, "flow_growing_L.png")
    law_text = ", ".join(f"{law['exponent']:.5f} (n = {law['n']}, theory {law['n'] / 4:g})" for law in laws)
    measured["rate exponent p (rate ∝ L^p)"] = scan["exponent"]
    expected["rate exponent p"] = -2.0
    measured["max rel. err of the rates"] = worst_rate
    measured["decades in the rate window"] = min(r["decades"] for r in scan["runs"])
    passed = (worst_rate < 1e-3 and abs(scan["exponent"] + 2.0) < 5e-3 and worst_p < 2e-3 and worst_dev < 1e-3
              and measured["decades in the rate window"] >= 3)
    return CheckResult(
        "flow-growing-L", title, SECTION, passed, measured=measured, expected=expected,
        criterion=("rates: relative error < 1e-3, fit of log ‖g − g∞‖ over τ = (2π/L)² t ∈ "
                   f"[{RATE_WINDOW_TAU[0]:g}, {RATE_WINDOW_TAU[1]:g}] (≥ 3 decades); |p + 2| < 5e-3 (log–log fit "
                   "over the L's); power law: fit of log ‖g − δ‖ against log(σ² + 2t) over σ² + 2t ∈ [σ², L²/32], "
                   "|exponent/(n/4) − 1| < 2e-3 (the periodic images bias it by ≤ 7.3e-4, computed from the exact "
                   "linear solution on the torus) and ‖g − δ‖ within 1e-3 (= the amplitude, the size of the "
                   "nonlinear terms) of that exact solution"),
        details=(f"g0 = δ + {BUMP_AMPLITUDE:g}·G_σ·S, G_σ the periodised Gaussian of width σ = {BUMP_SIGMA:g} "
                 "(non-zero integral), S a fixed symmetric matrix; Ricci–DeTurck flow, background δ, solver 'etd'. "
                 f"The slowest rate on [0, L)² is (2π/L)² → 0: measured exponent {scan['exponent']:.5f}. "
                 "Before the periodic images are felt the L² norm follows the ℝⁿ heat kernel, "
                 f"(σ² + 2t)^{{−n/4}}: measured exponents {law_text}"
                 " — an algebraic, not exponential, decay; afterwards it saturates at the mean (the non-zero "
                 "integral) and only the non-constant part decays, exponentially, at (2π/L)². So the paper's "
                 "'exponential, unlike fractional powers' holds only where the linearised operator has a spectral "
                 "gap (a compact domain); on ℝⁿ the rate is 0 and the decay a power law."),
        plots=[plot],
    )


# =========================================================================
# check 4 — gauge: a pull-back of δ is flat, static under Ricci flow, decaying under Ricci–DeTurck
# =========================================================================
GAUGE_EPS = 0.15
GAUGE_AMPLITUDE = 0.05
GAUGE_WINDOW = (4.0, 10.0)  # e^{−6}: 2.6 decades at rate 1 (5.2 for ∫|Rm|² at rate 2)


def torus_diffeomorphism(eps: float = GAUGE_EPS) -> CoordinateMap:
    r"""φ(x) = x + ε u(x) with the 2π-periodic u = (sin(x₂ + 0.3), 0.7 sin x₁ + 0.4 cos(x₁ + x₂)).

    Its Lipschitz bound Λ = ε(1 + 0.7 + 0.4√2) < 1 makes it a diffeomorphism of ℝ² (the
    :class:`~lnegeom.fields.CoordinateMap` claim) commuting with the 2π-translations: a
    diffeomorphism of the torus T² = [0, 2π)², isotopic to the identity."""
    phi = CoordinateMap(linear=np.eye(2), shift=np.zeros(2),
                        amplitudes=[[eps, 0.0], [0.0, 0.7 * eps], [0.0, 0.4 * eps]],
                        wavevectors=[[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], phases=[0.3, 0.0, math.pi / 2])
    if not phi.strength < 1:
        raise ValueError(f"eps = {eps!r} gives strength {phi.strength:.3g} >= 1: φ need not be a diffeomorphism")
    return phi


def pullback_of_delta(T: Torus, phi: CoordinateMap) -> np.ndarray:
    """φ*δ = DφᵀDφ at the grid points, with Dφ the exact derivative (:meth:`CoordinateMap.jacobian`)."""
    D = phi.jacobian(T.points())
    return np.einsum("...ki,...kj->...ij", D, D)


def gauge_run(N: int, *, t_end: float = GAUGE_WINDOW[1], samples: int = 41, N_linear: int = 7) -> dict:
    """Check 4's numbers on T² = [0, 2π)² with N² points (see :func:`gauge`)."""
    T = Torus(2, N, 2 * math.pi)
    t = np.linspace(0.0, t_end, samples)
    g_pb = pullback_of_delta(T, torus_diffeomorphism())
    out: dict = {"T": T, "t": t}
    for flow in ("ricci", "ricci-deturck"):
        res = _solve(g_pb, T, t, flow=flow)
        g_inf = T.mean(res.g[-1])
        out[f"pb {flow}"] = dict(
            res=res, g_inf=g_inf, nonconst=np.array([T.l2_norm(g - T.mean(g)) for g in res.g]),
            to_limit=np.array([T.l2_norm(g - g_inf) for g in res.g]),
            change=T.l2_norm(res.g[-1] - g_pb) / T.l2_norm(g_pb - T.mean(g_pb)),
            max_rm=res.diagnostics["max_rm"], lam1=_slowest_mode_rate(g_inf, T, _unit_modes(2)))
    g_gen = np.eye(2) + GAUGE_AMPLITUDE * _random_perturbation(T, 3)
    for flow in ("ricci", "ricci-deturck"):
        res = _solve(g_gen, T, t, flow=flow)
        d = res.diagnostics
        out[f"gen {flow}"] = dict(
            res=res, max_rm=d["max_rm"], int_rm2=d["int_rm2"],
            nonconst=np.array([T.l2_norm(g - T.mean(g)) for g in res.g]),
            rate_max_rm=fit_decay_rate(t, d["max_rm"], GAUGE_WINDOW)[0],
            rate_int_rm2=fit_decay_rate(t, d["int_rm2"], GAUGE_WINDOW)[0])
    out["gen lam1"] = _slowest_mode_rate(T.mean(out["gen ricci-deturck"]["res"].g[-1]), T, _unit_modes(2))
    a, b = out["gen ricci"], out["gen ricci-deturck"]
    out["int_rm2 rel. diff"] = float(np.max(np.abs(a["int_rm2"] / b["int_rm2"] - 1)))
    out["max_rm rel. diff"] = float(np.max(np.abs(a["max_rm"] / b["max_rm"] - 1)))
    # linearised at δ on an odd grid (no Nyquist modes): the kernel of each flow
    Tl = Torus(2, N_linear, 2 * math.pi)
    delta = np.broadcast_to(np.eye(2), tuple(Tl.shape) + (2, 2)).copy()
    out["N_linear"] = N_linear
    out["zero modes ricci"] = decay_rates(delta, Tl, flow="ricci").n_zero
    out["zero modes ricci-deturck"] = decay_rates(delta, Tl).n_zero
    return out


@check("flow-gauge", "Gauge: a pull-back φ*δ is flat; static under Ricci flow, decays under Ricci–DeTurck", SECTION)
def gauge(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    title = "Gauge: a pull-back φ*δ is flat; static under Ricci flow, decays under Ricci–DeTurck"
    N = 11 if ctx.quick else 17  # odd: no Nyquist mode, whose removal is not gauge-covariant
    r = gauge_run(N)
    t = r["t"]
    pr, pd = r["pb ricci"], r["pb ricci-deturck"]
    gr, gd = r["gen ricci"], r["gen ricci-deturck"]
    rate_pb, dec_pb = fit_decay_rate(t, pd["to_limit"], GAUGE_WINDOW)
    max_rm_pb = max(float(pr["max_rm"].max()), float(pd["max_rm"][0]))
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.3))
    ax = axs[0]
    ax.semilogy(t, pr["nonconst"], "s", ms=3, label="Ricci: ‖g − mean g‖ (static)")
    ax.semilogy(t, pd["to_limit"], "o", ms=3, label=f"Ricci–DeTurck: ‖g − g∞‖, rate {rate_pb:.5f}")
    ax.semilogy(t, np.maximum(pr["max_rm"], 1e-17), "--", label="Ricci: max |Rm|_g")
    ax.semilogy(t, np.maximum(pd["max_rm"], 1e-17), ":", label="Ricci–DeTurck: max |Rm|_g")
    ax.axvspan(*GAUGE_WINDOW, color="grey", alpha=0.12, label="fit window")
    ax.set_title(f"g0 = φ*δ (exact pull-back, ε = {GAUGE_EPS:g}), {N}²")
    ax = axs[1]
    for lab, d, mk in (("Ricci", gr, "s"), ("Ricci–DeTurck", gd, "o")):
        ax.semilogy(t, d["max_rm"], mk, ms=3, fillstyle="none", label=f"{lab}: max |Rm|_g, rate {d['rate_max_rm']:.4f}")
        ax.semilogy(t, d["int_rm2"], mk + "-", ms=2, lw=0.6,
                    label=f"{lab}: ∫|Rm|²_g dV_g, rate {d['rate_int_rm2']:.4f}")
        ax.semilogy(t, d["nonconst"], mk + "--", ms=2, lw=0.6, label=f"{lab}: ‖g − mean g‖")
    ax.axvspan(*GAUGE_WINDOW, color="grey", alpha=0.12)
    ax.set_title(f"g0 = δ + {GAUGE_AMPLITUDE:g}·h (generic, zero mean)")
    for ax in axs:
        ax.set_xlabel("t")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    plot = save_figure(fig, ctx, "flow_gauge.png")
    lam = r["gen lam1"]
    Nl = r["N_linear"]
    measured = {
        "pull-back: max |Rm|_g (t = 0 and along Ricci flow)": max_rm_pb,
        "pull-back, Ricci flow: ‖g(T) − g(0)‖ / ‖g(0) − mean‖": pr["change"],
        "pull-back, Ricci–DeTurck: rate of ‖g − g∞‖": rate_pb,
        "pull-back, Ricci–DeTurck: decades in window": dec_pb,
        "pull-back, Ricci–DeTurck: max |Rm|_g along the flow": float(pd["max_rm"].max()),
        "generic, rate of max |Rm|_g (Ricci, Ricci–DeTurck)": [gr["rate_max_rm"], gd["rate_max_rm"]],
        "generic, rate of ∫|Rm|²_g dV_g (Ricci, Ricci–DeTurck)": [gr["rate_int_rm2"], gd["rate_int_rm2"]],
        "generic: max rel. difference of ∫|Rm|² dV between the flows": r["int_rm2 rel. diff"],
        "generic: max rel. difference of max |Rm| between the flows": r["max_rm rel. diff"],
        "generic, Ricci flow: ‖g(T) − mean g(T)‖ / ‖g(0) − mean‖": float(gr["nonconst"][-1] / gr["nonconst"][0]),
        f"zero modes of the linearisation at δ, {Nl}² (Ricci, Ricci–DeTurck)":
            [r["zero modes ricci"], r["zero modes ricci-deturck"]],
    }
    expected = {
        "pull-back: max |Rm|_g": 0.0,
        "pull-back, Ricci flow: relative change": 0.0,
        "pull-back, Ricci–DeTurck: rate kᵀ g∞⁻¹ k (k = e₁, e₂)": pd["lam1"],
        "generic, rate of max |Rm|_g: λ₁ = kᵀ g∞⁻¹ k": lam,
        "generic, rate of ∫|Rm|²_g dV_g: 2λ₁": 2 * lam,
        "generic: difference between the flows (gauge-invariant quantities)": 0.0,
        "zero modes (Ricci: 2(N² − 1) gauge directions L_Xδ + 3 flat; Ricci–DeTurck: 3 flat)":
            [2 * Nl**2 + 1, 3],
    }
    rate_errs = [relative_error(rate_pb, pd["lam1"])] + [relative_error(d["rate_max_rm"], lam) for d in (gr, gd)] \
        + [relative_error(d["rate_int_rm2"], 2 * lam) for d in (gr, gd)]
    measured["max rel. err of the rates"] = max(rate_errs)
    passed = (max_rm_pb < 1e-12 and pr["change"] < 1e-11 and max(rate_errs) < 1e-2 and dec_pb >= 2.5
              and r["int_rm2 rel. diff"] < 1e-5 and r["max_rm rel. diff"] < 1e-2
              and float(pd["max_rm"].max()) < 1e-3 * float(gd["max_rm"][0])
              and gr["nonconst"][-1] > 0.5 * gr["nonconst"][0]
              and [r["zero modes ricci"], r["zero modes ricci-deturck"]] == [2 * Nl**2 + 1, 3])
    return CheckResult(
        "flow-gauge", title, SECTION, passed, measured=measured, expected=expected,
        criterion=("pull-back: max |Rm| < 1e-12 (machine precision: |∂²g| = O(1)) and relative change under Ricci "
                   f"flow < 1e-11; rates fitted over t ∈ [{GAUGE_WINDOW[0]:g}, {GAUGE_WINDOW[1]:g}] within 1e-2 "
                   "(the rate-2λ₁ modes bias the fit by ≤ e^{−4λ₁} relative) and ≥ 2.5 decades; ∫|Rm|² dV of "
                   "the two flows within 1e-5 (10 × the solver's rtol) and max |Rm| (a grid maximum, not exactly "
                   "invariant) within 1e-2; "
                   "along Ricci–DeTurck from φ*δ, max |Rm| < 1e-3 of the generic one (it stays a pull-back of δ "
                   "to grid accuracy); under Ricci flow the generic ‖g − mean g‖ keeps > 1/2 of its start; "
                   "zero-mode counts exact"),
        details=(f"φ(x) = x + ε u(x), ε = {GAUGE_EPS:g}, u = (sin(x₂ + 0.3), 0.7 sin x₁ + 0.4 cos(x₁ + x₂)) on "
                 f"[0, 2π)², {N}² grid; φ*δ = DφᵀDφ with Dφ exact. Ricci flow leaves φ*δ where it is (−2 Ric = 0: "
                 "the pull-back is a stationary point in a non-decaying gauge direction); Ricci–DeTurck flow "
                 "(background δ) moves it along the diffeomorphisms (harmonic map flow of φ) to a constant metric "
                 f"(g∞ = {np.round(pd['g_inf'], 6).tolist()}). A generic zero-mean perturbation "
                 f"(amplitude {GAUGE_AMPLITUDE:g}, all |m|_∞ = 1 modes): the two flows differ by a diffeomorphism, "
                 "so the gauge-invariant max |Rm|_g and ∫|Rm|²_g dV_g agree and decay at λ₁ and 2λ₁ under both, "
                 "while under Ricci flow g itself does not converge to a constant metric. Linearised at δ on an "
                 f"odd {Nl}² grid (no Nyquist modes): Ricci flow has the gauge kernel, Ricci–DeTurck only the "
                 "3 constant modes. Solver: solve_flow defaults (method 'etd', rtol 1e-6, atol 1e-10)."),
        plots=[plot],
    )


# =========================================================================
# check 5 — 2-D cross-check: the tensor flow of e^{2u}δ against the scalar flow ∂_t u = e^{−2u}Δu
# =========================================================================
def _u0(T: Torus, amplitude: float) -> np.ndarray:
    """u0 = a·(sin x₁ cos x₂ + 0.6 cos(x₂ + 0.5) + 0.3 sin(x₁ + 0.2)) on [0, 2π)²."""
    x = T.points()
    X, Y = x[..., 0], x[..., 1]
    return amplitude * (np.sin(X) * np.cos(Y) + 0.6 * np.cos(Y + 0.5) + 0.3 * np.sin(X + 0.2))


def scalar_conformal_flow(u0: np.ndarray, L: float, t_eval: np.ndarray, *, rtol: float = 1e-11,
                          atol: float = 1e-12) -> np.ndarray:
    r"""∂_t u = e^{−2u} Δu on the periodic square [0, L)², solved on its own: Δ by a 2-D FFT
    (symbol −|k|²), time by :func:`scipy.integrate.solve_ivp` (DOP853).  Returns u at ``t_eval``,
    shape ``[T, N, N]``."""
    from scipy.integrate import solve_ivp

    N = u0.shape[0]
    if u0.shape != (N, N):
        raise ValueError(f"u0 must be a square N×N grid, got shape {u0.shape}")
    k = 2 * math.pi * np.fft.fftfreq(N, L / N)
    k2 = k[:, None] ** 2 + k[None, :] ** 2

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        u = y.reshape(N, N)
        return (np.exp(-2 * u) * np.fft.ifft2(-k2 * np.fft.fft2(u)).real).ravel()

    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), u0.ravel(), method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol)
    if sol.status != 0:
        raise RuntimeError(f"scalar flow failed: {sol.message}")
    return sol.y.T.reshape(-1, N, N)


def conformal_run(N: int, amplitude: float, t_end: float, *, samples: int = 9) -> dict:
    """Check 5's numbers: plain Ricci flow of e^{2u0}δ (RK45 at rtol 1e-9 and 1e-7, and the default
    'etd' at rtol 1e-6) against :func:`scalar_conformal_flow` on the same grid."""
    L = 2 * math.pi
    T = Torus(2, N, L)
    t = np.linspace(0.0, t_end, samples)
    u0 = _u0(T, amplitude)
    u = scalar_conformal_flow(u0, L, t)
    e2u = np.exp(2 * u)
    g0 = np.exp(2 * u0)[..., None, None] * np.eye(2)
    out: dict = {"T": T, "t": t, "u": u, "amplitude": amplitude}
    for key, kw in (("RK45 1e-9", dict(method="RK45", rtol=1e-9, atol=1e-12)),
                    ("RK45 1e-7", dict(method="RK45", rtol=1e-7, atol=1e-10)),
                    ("etd 1e-6", dict(method="etd", rtol=1e-6, atol=1e-9))):
        res = _solve(g0, T, t, flow="ricci", diagnostics=False, **kw)
        g = res.g
        diff = np.abs(g - e2u[..., None, None] * np.eye(2)).max(axis=(-1, -2)) / e2u
        out[key] = dict(res=res, diff_t=diff.reshape(len(t), -1).max(axis=1), diff=float(diff.max()),
                        u_tensor=0.5 * np.log(g[..., 0, 0]))
    g = out["RK45 1e-9"]["res"].g
    out["conformal defect"] = float(max(np.abs(g[..., 0, 1]).max(), np.abs(g[..., 0, 0] - g[..., 1, 1]).max())
                                    / g[..., 0, 0].min())
    # the DeTurck field of each saved metric (background δ): W = g^ij Γ^k_ij
    out["max |W|"] = float(max(np.abs(flow_rhs(gi, T, return_parts=True)[2]).max() for gi in g))
    area = np.array([T.integral(np.sqrt(np.linalg.det(gi))) for gi in g])
    out["area change"] = float(np.ptp(area) / area[0])
    out["u decay"] = np.array([T.l2_norm(ui - T.mean(ui)) for ui in u])
    return out


@check("flow-conformal-2d", "2-D cross-check: Ricci flow of e^{2u}δ vs the scalar flow ∂ₜu = e^{−2u}Δu", SECTION)
def conformal_2d(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    title = "2-D cross-check: Ricci flow of e^{2u}δ vs the scalar flow ∂ₜu = e^{−2u}Δu"
    N, amp, t_end = (20, 0.2, 1.0) if ctx.quick else (24, 0.5, 2.0)
    r = conformal_run(N, amp, t_end)
    t = r["t"]
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.3))
    axs[0].semilogy(t, r["u decay"], "o-", label="scalar flow: ‖u − ū‖")
    ut = r["RK45 1e-9"]["u_tensor"]
    axs[0].semilogy(t, [r["T"].l2_norm(v - r["T"].mean(v)) for v in ut], "x", ms=8,
                    label="tensor flow: ‖½ log g₁₁ − mean‖")
    axs[0].set_ylabel("L² norm")
    axs[0].set_title(f"u0 amplitude {amp:g}, {N}² grid")
    for key, mk in (("RK45 1e-9", "o-"), ("RK45 1e-7", "s-"), ("etd 1e-6", "^-")):
        axs[1].semilogy(t[1:], r[key]["diff_t"][1:], mk, ms=4, label=f"solve_flow {key}: max {r[key]['diff']:.2e}")
    axs[1].set_ylabel("max_x |g − e^{2u}δ| / e^{2u}")
    axs[1].set_title("tensor vs scalar flow")
    for ax in axs:
        ax.set_xlabel("t")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    plot = save_figure(fig, ctx, "flow_conformal_2d.png")
    tight, mid, etd = r["RK45 1e-9"]["diff"], r["RK45 1e-7"]["diff"], r["etd 1e-6"]["diff"]
    floor = 1e-6 if not ctx.quick else 1e-7
    passed = (tight < floor and mid < 20 * 1e-7 + tight and etd < 20 * 1e-6 + tight
              and r["conformal defect"] < 1e-12 and r["max |W|"] < 1e-11 and r["area change"] < 1e-8)
    return CheckResult(
        "flow-conformal-2d", title, SECTION, passed,
        measured={"max rel. difference, RK45 rtol 1e-9": tight, "max rel. difference, RK45 rtol 1e-7": mid,
                  "max rel. difference, etd rtol 1e-6": etd,
                  "conformal defect max(|g₁₂|, |g₁₁ − g₂₂|)/min g₁₁": r["conformal defect"],
                  "max |W| (DeTurck field, background δ) along the solution": r["max |W|"],
                  "relative change of the area ∫√det g dx": r["area change"],
                  "‖u − ū‖ at t = 0 and at the end": [float(r["u decay"][0]), float(r["u decay"][-1])]},
        expected={"max rel. difference": 0.0, "conformal defect": 0.0, "max |W|": 0.0,
                  "area change (Gauss–Bonnet: d/dt Area = −∫R dA = −4πχ(T²) = 0)": 0.0},
        criterion=(f"over t ∈ [0, {t_end:g}] ({len(t)} times) and all grid points: difference < {floor:g} with RK45 "
                   "at rtol 1e-9 (the spatial floor: the tensor code differentiates e^{2u}, the scalar one u), and "
                   "within 20 × rtol of that floor at rtol 1e-7 (RK45) and 1e-6 (etd, the default): the "
                   "remaining difference is time-integration error; conformal defect < 1e-12, |W| < 1e-11, "
                   "area change < 1e-8"),
        details=(f"u0 = {amp:g}·(sin x₁ cos x₂ + 0.6 cos(x₂ + 0.5) + 0.3 sin(x₁ + 0.2)) on [0, 2π)², {N}² grid. "
                 "Compared under plain Ricci flow ∂_t g = −2 Ric = −R g: in 2-D Ric = (R/2) g, so a conformal "
                 "metric stays conformal, and with R = −2e^{−2u}Δu, ∂_t(e^{2u}) = −R e^{2u} is exactly "
                 "∂_t u = e^{−2u}Δu. Ricci–DeTurck flow with background δ gives the same solution here: "
                 "for g = e^{2u}δ in 2-D, W^k = g^ij Γ^k_ij = e^{−2u}(2∂_k u − 2∂_k u) = 0 (measured above). "
                 "The scalar flow is solved independently: 2-D FFT Laplacian, scipy solve_ivp DOP853 at "
                 "rtol 1e-11. The tensor flow: solve_flow, flow='ricci'."),
        plots=[plot],
    )


# =========================================================================
# check 6 — linearised theory: the spectrum of the linearised operator vs the nonlinear flow
# =========================================================================
SPECTRUM_A = np.array([[1.0, 0.7], [0.7, 1.0]])  # slowest mode m = ±(1, 1): kᵀA⁻¹k = 0.6/0.51; next 1/0.51
SPECTRUM_WINDOW = (6.0, 16.0)  # ≥ 4 decades; the next rate is ≥ 1.67× the slowest: bias ≤ e^{−0.78·6}
SPECTRUM_AMPLITUDE = 1e-3


def _symbol_spectrum(A: np.ndarray, T: Torus) -> np.ndarray:
    """kᵀ A⁻¹ k over every Fourier mode of an odd grid, each n(n+1)/2 times, ascending (m = 0 included)."""
    n = T.n
    ms = np.stack(np.meshgrid(*[np.fft.fftfreq(N, 1.0 / N) for N in T.shape], indexing="ij"), -1).reshape(-1, n)
    k = 2 * math.pi * ms / np.asarray(T.L)
    vals = np.einsum("qa,ab,qb->q", k, np.linalg.inv(A), k)
    return np.sort(np.repeat(vals, n * (n + 1) // 2))


def spectrum_run(N: int, *, t_end: float = SPECTRUM_WINDOW[1], samples: int = 65) -> dict:
    """Check 6's numbers on an odd N² grid of [0, 2π)²: for each stationary flat background ḡ (the
    constant A with background δ; φ*δ as its own background) the spectrum of the linearised
    Ricci–DeTurck operator at ḡ, the decay rate of the nonlinear flow from ḡ + a·h (zero-mean h),
    and the spectrum at the flow's own limit g∞ (ḡ + O(a): the rate it should decay at)."""
    if N % 2 == 0:
        raise ValueError(f"N = {N} is even: use an odd N (the Nyquist modes add spurious zero modes)")
    T = Torus(2, N, 2 * math.pi)
    t = np.linspace(0.0, t_end, samples)
    h = SPECTRUM_AMPLITUDE * _random_perturbation(T, 5)
    gA = np.broadcast_to(SPECTRUM_A, tuple(T.shape) + (2, 2)).copy()
    g_pb = pullback_of_delta(T, torus_diffeomorphism())
    out: dict = {"T": T}
    for key, g_bg, bg in (("A", gA, None), ("pull-back", g_pb, g_pb)):
        spec = decay_rates(g_bg, T, background=bg)
        res = _solve(g_bg + h, T, t, background=bg, diagnostics=False)
        gamma = None if bg is None else curvature_from_derivatives(bg, T.gradient(bg), T.hessian(bg)).christoffel
        speed = np.array([T.l2_norm(flow_rhs(g, T, background_christoffel=gamma)) for g in res.g])
        rate, decades = fit_decay_rate(res.t, speed, SPECTRUM_WINDOW)
        at_limit = decay_rates(res.g[-1], T, background=bg)
        out[key] = dict(spectrum=spec, at_limit=at_limit, t=res.t, speed=speed, rate=rate, decades=decades)
    sym = _symbol_spectrum(SPECTRUM_A, T)[3:]
    out["A"]["symbol"] = sym
    out["A"]["symbol err"] = float(np.max(np.abs(out["A"]["spectrum"].rates - sym) / sym))
    iso = _symbol_spectrum(np.eye(2), T)[3:27]  # |k|² ∈ {1, 2}, each 12 times
    out["pull-back"]["symbol"] = iso
    out["pull-back"]["symbol err"] = float(np.max(np.abs(out["pull-back"]["spectrum"].rates[:24] - iso) / iso))
    return out


@check("flow-linear-spectrum", "Linearised Ricci–DeTurck operator: spectrum vs the nonlinear flow's rate", SECTION)
def linear_spectrum(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    title = "Linearised Ricci–DeTurck operator: spectrum vs the nonlinear flow's rate"
    N = 9 if ctx.quick else 13
    r = spectrum_run(N)
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.3))
    measured, expected = {}, {}
    ok = True
    for key, _lab in (("A", f"constant A = {SPECTRUM_A.tolist()}"), ("pull-back", "φ*δ, its own background")):
        d = r[key]
        spec, lim = d["spectrum"], d["at_limit"]
        slow = spec.slowest
        mult = int(np.sum(np.abs(spec.rates - slow) <= 1e-8 * slow))
        err_lim = relative_error(d["rate"], lim.slowest)
        measured[f"{key}: zero modes found"] = spec.n_zero
        expected[f"{key}: zero modes n(n+1)/2"] = 3
        measured[f"{key}: slowest linear rate at ḡ (multiplicity)"] = [slow, mult]
        if key == "A":
            expected[f"{key}: slowest kᵀA⁻¹k, m = ±(1, 1) (multiplicity 2·3)"] = [float(d["symbol"][0]), 6]
            ok &= mult == 6
            measured[f"{key}: max rel. err of all {spec.rates.size} rates vs the symbol kᵀA⁻¹k"] = d["symbol err"]
        else:
            expected[f"{key}: slowest |k|² = 1 (φ is an isometry onto (T², δ)), multiplicity 4·3"] = [1.0, 12]
            ok &= mult == 12
            measured[f"{key}: max rel. err of the 24 slowest rates vs |k|² ∈ {{1, 2}}"] = d["symbol err"]
        measured[f"{key}: rate of the nonlinear flow (‖∂_t g‖)"] = d["rate"]
        expected[f"{key}: slowest linear rate at the flow's limit g∞"] = lim.slowest
        measured[f"{key}: rel. difference flow vs linear at g∞"] = err_lim
        measured[f"{key}: decades in window"] = d["decades"]
        ok &= (spec.n_zero == 3 and lim.n_zero == 3 and d["symbol err"] < 1e-7 and err_lim < 1e-4
               and d["decades"] >= 4)
        line, = axs[0].semilogy(d["t"], d["speed"] / d["speed"][0], "o", ms=3,
                                label=f"{key}: flow rate {d['rate']:.6f}")
        i0 = int(np.argmin(np.abs(d["t"] - SPECTRUM_WINDOW[0])))
        axs[0].semilogy(d["t"], d["speed"][i0] / d["speed"][0] * np.exp(-lim.slowest * (d["t"] - d["t"][i0])), "-",
                        lw=0.8, color=line.get_color(), label=f"{key}: linear e^(−{lim.slowest:.6f} t)")
        rates = spec.rates[spec.rates < 12]
        axs[1].plot(np.arange(rates.size), rates, ".", ms=4, label=f"{key} ({spec.n_zero} zero modes excluded)")
    axs[1].plot(np.arange(60), r["A"]["symbol"][:60], "k_", ms=6, label="kᵀA⁻¹k (A)")
    axs[0].axvspan(*SPECTRUM_WINDOW, color="grey", alpha=0.12, label="fit window")
    axs[0].set_xlabel("t")
    axs[0].set_ylabel("‖∂_t g‖ / ‖∂_t g(0)‖")
    axs[0].set_title(f"nonlinear flow from ḡ + {SPECTRUM_AMPLITUDE:g}·h, {N}²")
    axs[1].set_xlabel("index")
    axs[1].set_ylabel("decay rate −Re λ")
    axs[1].set_title("spectrum of the linearised operator (rates < 12)")
    for ax in axs:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    plot = save_figure(fig, ctx, "flow_linear_spectrum.png")
    return CheckResult(
        "flow-linear-spectrum", title, SECTION, bool(ok), measured=measured, expected=expected,
        criterion=("exactly 3 zero modes (|λ| ≤ 1e-8 max |λ|) at ḡ and at g∞; linear rates vs the analytic ones "
                   "within 1e-7 (finite-difference Jacobian: ~1e-9); the slowest rate's multiplicity exact; the "
                   f"nonlinear flow's rate (fit of log ‖∂_t g‖ over t ∈ [{SPECTRUM_WINDOW[0]:g}, "
                   f"{SPECTRUM_WINDOW[1]:g}], ≥ 4 decades) within 1e-4 of the slowest linear rate at its limit g∞"),
        details=(f"Odd {N}² grid of [0, 2π)² (no Nyquist modes). J = dense central-difference Jacobian of the "
                 "Ricci–DeTurck right-hand side (lnegeom.linearize, eps 1e-6), eigenvalues by scipy.linalg.eigvals. "
                 "Backgrounds: the constant A (background δ; Γ̃ = 0, so J is A⁻¹-weighted Laplacian on each "
                 f"component), and φ*δ with φ of check flow-gauge (ε = {GAUGE_EPS:g}) as its own background "
                 "(W = 0, Ric = 0: stationary); its spectrum is that of (T², δ) since φ is an isometry. "
                 f"The flow starts at ḡ + {SPECTRUM_AMPLITUDE:g}·h (h zero mean, |m|_∞ = 1 modes) and ends on "
                 "a nearby flat g∞; its rate is that of the linearisation at g∞, which differs from the one at ḡ "
                 "by O(amplitude) for φ*δ (the limit's moduli shift) and O(amplitude²) for A. The fit is biased "
                 "by ~1e-5 (the next modes, and the slowest cluster splitting at g∞). Solver: solve_flow "
                 "defaults (method 'etd', rtol 1e-6, atol 1e-10); with the second-order 'etd2' around φ*δ the "
                 "steps must be bounded (9²: 3.4e-4 off with its default step control, 7e-6 with steps ≤ 0.05): "
                 "exponential integrators are exact only on the frozen constant-coefficient part."),
        plots=[plot],
    )


# =========================================================================
# check 8 — nonlinear regime: where the measured rate leaves the linear one
# =========================================================================
AMPLITUDE_WINDOW = (4.0, 12.0)  # e^{−8}: 3.5 decades at rate 1
DEPARTURE = 0.05


def _crossing(a: np.ndarray, d: np.ndarray, level: float) -> Optional[float]:
    """The first amplitude where d(a) reaches ``level`` (log–log interpolation), or None."""
    above = np.nonzero(d > level)[0]
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(a[0])
    la, ld = np.log(a[i - 1 : i + 1]), np.log(d[i - 1 : i + 1])
    return float(np.exp(la[0] + (math.log(level) - ld[0]) * (la[1] - la[0]) / (ld[1] - ld[0])))


def amplitude_scan(N: int, amplitudes: list[float], *, samples: int = 33) -> dict:
    """Check 8's numbers on an odd N² grid of [0, 2π)²: the rate of ‖g − g∞‖ over the fixed window from
    g0 = δ + a·h (h zero mean, |m|_∞ = 1 modes, max_x ‖h(x)‖₂ = 1) for each amplitude a, against the
    linear rate at δ (the slowest rate of the Jacobian's spectrum) and kᵀ g∞⁻¹ k at the limit reached."""
    T = Torus(2, N, 2 * math.pi)
    spec = decay_rates(np.broadcast_to(np.eye(2), tuple(T.shape) + (2, 2)).copy(), T)
    h = _random_perturbation(T, 11)
    t = np.linspace(0.0, AMPLITUDE_WINDOW[1], samples)
    runs = []
    for a in amplitudes:
        res = _solve(np.eye(2) + a * h, T, t, diagnostics=False)
        g_inf = T.mean(res.g[-1])
        norms = np.array([T.l2_norm(g - g_inf) for g in res.g])
        rate, decades = fit_decay_rate(res.t, norms, AMPLITUDE_WINDOW)
        runs.append(dict(a=a, t=res.t, norms=norms, rate=rate, decades=decades, g_inf=g_inf,
                         at_limit=_slowest_mode_rate(g_inf, T, _unit_modes(2)), l2=T.l2_norm(a * h)))
    a = np.array(amplitudes)
    dep = np.array([abs(r["rate"] / spec.slowest - 1) for r in runs])
    small = (dep > 30 * dep[0]) & (a <= 0.3)  # above the window's floor (the a → 0 departure), below the 5 % regime
    p = float(np.polyfit(np.log(a[small]), np.log(dep[small]), 1)[0]) if small.sum() >= 2 else math.nan
    return dict(T=T, spectrum=spec, runs=runs, amplitudes=a, departure=dep,
                departure_limit=np.array([abs(r["rate"] / r["at_limit"] - 1) for r in runs]),
                threshold=_crossing(a, dep, DEPARTURE), exponent=p, fit_amplitudes=a[small].tolist())


@check("flow-nonlinear-amplitude", "Nonlinear regime: amplitude where the decay rate leaves the linear one by 5 %",
       SECTION)
def nonlinear_amplitude(ctx: Context) -> CheckResult:
    import matplotlib.pyplot as plt

    title = "Nonlinear regime: amplitude where the decay rate leaves the linear one by 5 %"
    N, amps = (9, [1e-3, 0.1, 0.3, 0.6, 0.9]) if ctx.quick else (15, [1e-3, 0.03, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9])
    r = amplitude_scan(N, amps)
    lin = r["spectrum"].slowest
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.3))
    for run in r["runs"]:
        axs[0].semilogy(run["t"], run["norms"] / run["norms"][0], ".-", lw=0.6, ms=3,
                        label=f"a = {run['a']:g}: rate {run['rate']:.4f}")
    axs[0].semilogy(run["t"], np.exp(-lin * run["t"]), "k--", lw=0.8, label=f"linear e^(−{lin:.4f} t)")
    axs[0].axvspan(*AMPLITUDE_WINDOW, color="grey", alpha=0.12, label="fit window")
    axs[0].set_xlabel("t")
    axs[0].set_ylabel("‖g − g∞‖ / ‖g0 − g∞‖")
    axs[0].set_title(f"g0 = δ + a·h on [0, 2π)², {N}²")
    a = r["amplitudes"]
    axs[1].loglog(a, r["departure"], "o-", label="|rate / linear rate at δ − 1|")
    axs[1].loglog(a, r["departure_limit"], "s--", ms=4, label="|rate / kᵀg∞⁻¹k − 1| (linear about the limit)")
    axs[1].axhline(DEPARTURE, color="r", lw=0.8, label="5 %")
    if r["threshold"] is not None:
        axs[1].axvline(r["threshold"], color="r", ls=":", lw=0.8, label=f"a* = {r['threshold']:.3f}")
    if math.isfinite(r["exponent"]):
        fa = np.array(r["fit_amplitudes"])
        i = int(np.argmin(np.abs(a - fa[-1])))
        axs[1].loglog(a, r["departure"][i] * (a / a[i]) ** 2, "k:", lw=0.8, label="∝ a²")
    axs[1].set_xlabel("amplitude a = max_x ‖g0(x) − δ‖₂")
    axs[1].set_ylabel("relative departure of the rate")
    axs[1].set_title(f"fit window t ∈ [{AMPLITUDE_WINDOW[0]:g}, {AMPLITUDE_WINDOW[1]:g}]")
    for ax in axs:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    plot = save_figure(fig, ctx, "flow_nonlinear_amplitude.png")
    thr = r["threshold"]
    dep = r["departure"]
    passed = (r["spectrum"].n_zero == 3 and abs(lin - 1.0) < 1e-8 and dep[0] < 1e-4 and thr is not None
              and bool(np.all(np.diff(dep) > 0)) and abs(r["exponent"] - 2.0) < 0.2
              and min(run["decades"] for run in r["runs"]) >= 3)
    return CheckResult(
        "flow-nonlinear-amplitude", title, SECTION, passed,
        measured={"amplitudes a": a.tolist(), "rates": [run["rate"] for run in r["runs"]],
                  "departure |rate/linear − 1|": dep.tolist(),
                  "departure from kᵀg∞⁻¹k (linear about the limit)": r["departure_limit"].tolist(),
                  "threshold a* (departure = 5 %)": thr,
                  "‖a* h‖_L² / 2π (RMS of g0 − δ at a*)": (None if thr is None
                                                          else thr * r["runs"][0]["l2"] / amps[0] / (2 * math.pi)),
                  "exponent of departure ∝ a^p": r["exponent"],
                  "linear rate at δ (Jacobian spectrum), zero modes": [lin, r["spectrum"].n_zero]},
        expected={"linear rate |k|² = 1 (k = e₁, e₂), zero modes": [1.0, 3],
                  "departure as a → 0": 0.0, "exponent p (g∞ − δ = O(a²))": 2.0},
        criterion=(f"fixed fit window t ∈ [{AMPLITUDE_WINDOW[0]:g}, {AMPLITUDE_WINDOW[1]:g}] (≥ 3 decades) for every "
                   "a; linear rate from the spectrum of the Jacobian at δ = 1 within 1e-8 with 3 zero modes; "
                   "departure < 1e-4 at the smallest a; departure increasing in a; |p − 2| < 0.2 (log–log fit "
                   "over a ≤ 0.3 where the departure is ≥ 30× its a → 0 floor); the 5 % crossing a* is inside the "
                   "scanned range (log–log interpolation)"),
        details=("g0 = δ + a·h, h a fixed zero-mean symmetric field with all |m|_∞ = 1 modes on [0, 2π)², "
                 "scaled to max_x ‖h(x)‖₂ = 1, so g0 is positive definite for a < 1; Ricci–DeTurck flow, "
                 "background δ, solve_flow defaults (method 'etd', rtol 1e-6, atol 1e-10; the rates change by "
                 "< 1e-6 at rtol 1e-7). "
                 "The rate of the nonlinear flow departs from the linear one like a²: part of it is the limit "
                 "metric g∞ ≠ δ (its mean moves at second order), the rest the nonlinear transient inside the "
                 f"window. The departure reaches 5 % at a* = {thr if thr is None else round(thr, 3)} "
                 "(pointwise relative size of the perturbation)."),
        plots=[plot],
    )
