"""Regenerate the tutorial notebooks (without outputs; the test suite executes them).

    python tools/make_notebooks.py
"""

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent


def _notebook(cells: list) -> nbf.NotebookNode:
    """A notebook of ``cells`` with the default python3 kernel."""
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def lne_curvature() -> nbf.NotebookNode:
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    cells = [
        md("# 01 · The LNE metrics and their curvature\n\n"
           "The paper (Chen et al., arXiv 2302.03390, Section 3) builds a *linearly nearly Euclidean* "
           "metric from the potential Φ(ξ) = Σ τ⁻² log cosh(τξᵢ) (P-14). This notebook checks, with "
           "`lnegeom`'s own code, what docs/math.md §2 says about it:\n\n"
           "1. the Bregman divergence (P-15) is matched to **third** order by the Hessian metric "
           "H = diag(sech²τξ), only to **second** order by the paper's stated metric g = I − ttᵀ (P-16);\n"
           "2. H is flat;\n"
           "3. g is **not** Ricci-flat: R(0) = −n(n−1)τ², and R → −∞ as s = |t|² → 1;\n"
           "4. the O(n) closed-form Ricci tensor of g agrees with autodiff and with sympy."),
        code("import numpy as np\nimport torch\nimport matplotlib.pyplot as plt\n"
             "from lnegeom.lne import HessianMetric, LNEMetric, taylor_discrepancy\n\n"
             "tau = 1.0\nrng = np.random.default_rng(0)"),
        md("## 1. Taylor expansion of the Bregman divergence"),
        code("xi = np.array([0.3, 0.2, -0.1, 0.25])      # generic point (at ξ = 0 both orders are 4)\n"
             "v = np.array([1.0, 1.0, -1.0, 1.0]) / 2    # a direction with off-diagonal weight\n"
             "res = taylor_discrepancy(xi, v, tau, eps=np.logspace(-2, -4, 9))\n"
             "print(f\"measured order, M = H: {res['order_H']:.3f}   (theory 3)\")\n"
             "print(f\"measured order, M = g: {res['order_g']:.3f}   (theory 2)\")\n"
             "plt.loglog(res['eps'], res['err_H'], 'o-', label='M = H')\n"
             "plt.loglog(res['eps'], res['err_g'], 's-', label='M = g = I − ttᵀ')\n"
             "plt.xlabel('ε'); plt.ylabel('|D − ½ε² vᵀMv|'); plt.legend(); plt.grid(alpha=.3)\n"
             "assert abs(res['order_H'] - 3) < 0.15 and abs(res['order_g'] - 2) < 0.15"),
        md("## 2. H is flat\n\nEach diagonal entry of H depends on its own coordinate only, so every "
           "Christoffel symbol that could curve it cancels. Automatic differentiation agrees:"),
        code("x = torch.as_tensor(rng.normal(scale=0.7, size=(5, 4)))\n"
             "rm = HessianMetric(tau).metric_field(4).curvature(x).riemann\n"
             "print('max |Riemann| of H:', float(rm.abs().max()))\nassert float(rm.abs().max()) < 1e-12"),
        md("## 3. g = I − ttᵀ is curved\n\nAt ξ = 0 it has the curvature of hyperbolic space of "
           "curvature −τ², R = −n(n−1)τ² — the paper's Section 4.1 calls it Ricci-flat."),
        code("g = LNEMetric(tau)\nfor n in range(2, 7):\n"
             "    r_auto = float(g.metric_field(n).scalar(torch.zeros(1, n))[0])\n"
             "    r_closed = float(g.scalar(np.zeros(n)))\n"
             "    print(f'n={n}: autodiff R(0) = {r_auto:+.6f}, closed form {r_closed:+.6f}, '\n"
             "          f'theory {-n*(n-1)*tau**2:+.1f}')\n"
             "    assert abs(r_auto + n*(n-1)*tau**2) < 1e-10"),
        code("u = np.linspace(-1.1, 1.1, 121)\nX, Y = np.meshgrid(u, u)\nxi2 = np.stack([X, Y], -1)\n"
             "s = (np.tanh(tau * xi2) ** 2).sum(-1)\nR = np.full(X.shape, np.nan)\n"
             "R[s < 0.99] = g.scalar(xi2[s < 0.99])\n"
             "plt.figure(figsize=(5, 4))\nplt.pcolormesh(X, Y, np.log10(-R), shading='auto')\n"
             "plt.colorbar(label='log10(−R)'); plt.contour(X, Y, s, [1.0], colors='r')\n"
             "plt.title('R of I − ttᵀ (n = 2): negative, → −∞ at s = 1 (red)')"),
        md("## 4. Closed form vs autodiff vs sympy\n\nRic = diag(a) + β u uᵀ costs O(n); the generic "
           "path differentiates g twice (n⁴ Riemann entries)."),
        code("n = 6\nxi = rng.normal(scale=0.25, size=(3, n))\nprint('s =', g.s(xi))\n"
             "curv = g.metric_field(n).curvature(torch.as_tensor(xi))\n"
             "err = np.abs(g.ricci_matrix(xi) - curv.ricci.numpy()).max()\n"
             "print('max |Ric_closed − Ric_autodiff| =', err)\nassert err < 1e-10"),
        code("import sympy as sp\nsym = g.symbolic(2, tau_value=True)\nR_sym = sym.scalar()\n"
             "print('sympy: R =', R_sym)\n"
             "pt = np.array([0.4, -0.3])\n"
             "val = float(R_sym.subs(dict(zip(sym.coords, pt))))\n"
             "print('sympy', val, ' closed form', float(g.scalar(pt)))\n"
             "assert abs(val - float(g.scalar(pt))) < 1e-10"),
    ]
    return _notebook(cells)


def estimator_zoo() -> nbf.NotebookNode:
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    cells = [
        md("# 03 · The estimator zoo\n\n"
           "Every straight-through estimator in `rfdnn_bridge.estimators` is a forward quantizer plus a "
           "backward rule (a pseudo-gradient). This notebook draws, for **every registered estimator** "
           "(taken from the registry, so new ones appear here automatically), its forward Q(x) and its "
           "backward rule with incoming gradient g = 1 on [−2, 2].\n\n"
           "The input is one row (shape 1 × N), so per-tensor and per-output-channel scalings "
           "(DoReFa, magnitude-aware sign) act on the whole curve. Estimators whose forward differs "
           "between training and evaluation (stochastic binary, mirror-descent tanh) also show the "
           "evaluation forward, dashed; a stochastic training forward is drawn as the mean of 256 "
           "draws; a surrogate, where an estimator defines one, is dotted."),
        code("import math\nimport torch\nimport matplotlib.pyplot as plt\n"
             "from rfdnn_bridge.estimators import get_estimator, list_estimators\n\n"
             "torch.manual_seed(0)\nnames = list_estimators(aliases=False)\n"
             "print(len(names), 'estimators:', ', '.join(names))\n"
             "x = torch.linspace(-2, 2, 801, dtype=torch.float64).reshape(1, -1)"),
        code("ncols = 4\nnrows = math.ceil(len(names) / ncols)\n"
             "fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False,\n"
             "                         sharex=True, constrained_layout=True)\n"
             "xs = x.flatten().numpy()\n"
             "for ax, name in zip(axes.flat, names):\n"
             "    est = get_estimator(name).double()\n"
             "    with torch.no_grad():\n"
             "        est.train()\n"
             "        fwd = est(x).flatten()\n"
             "        stochastic = not torch.equal(fwd, est(x).flatten())\n"
             "        if stochastic:  # draw the mean of many samples instead of one noisy draw\n"
             "            fwd = torch.stack([est(x).flatten() for _ in range(256)]).mean(0)\n"
             "        bwd = est.backward_rule(x, torch.ones_like(x)).flatten()\n"
             "        sur = est.surrogate(x)\n"
             "        est.eval()\n"
             "        fwd_eval = est(x).flatten()\n"
             "    assert fwd.shape == bwd.shape == xs.shape and torch.isfinite(bwd).all(), name\n"
             "    label = 'forward (training, mean of 256 draws)' if stochastic else 'forward (training)'\n"
             "    ax.plot(xs, fwd.numpy(), color='C0', lw=1.2, label=label)\n"
             "    if stochastic or not torch.equal(fwd, fwd_eval):\n"
             "        ax.plot(xs, fwd_eval.numpy(), '--', color='C2', lw=1, label='forward (eval)')\n"
             "    if sur is not None:\n"
             "        ax.plot(xs, sur.detach().flatten().numpy(), ':', color='C3', lw=1.2, label='surrogate')\n"
             "    ax.plot(xs, bwd.numpy(), color='C1', lw=1.2, label='backward rule (g = 1)')\n"
             "    ax.set_title(f'{name}  ({est.bits} bit)', fontsize=9)\n"
             "    ax.axhline(0, color='k', lw=0.4); ax.axvline(0, color='k', lw=0.4)\n"
             "    ax.grid(alpha=0.3)\n"
             "for ax in list(axes.flat)[len(names):]:\n"
             "    ax.axis('off')\n"
             "handles = {}\n"
             "for ax in axes.flat:\n"
             "    for h, lab in zip(*ax.get_legend_handles_labels()):\n"
             "        handles.setdefault(lab, h)\n"
             "fig.legend(handles.values(), handles.keys(), loc='outside lower center', ncols=3, fontsize=8)\n"
             "fig.suptitle('Straight-through estimators on [−2, 2]: forward and backward rule')\n"
             "plt.show()"),
        md("Reading the grid: the identity STE passes the gradient everywhere; the clipped STE "
           "(BinaryConnect) cuts it at |x| > 1; ApproxSign and SwishSign replace the box by a "
           "triangle and a smooth bump; ReSTE (at its current exponent o) has the secant slope on "
           "|x| ≤ m, the jump at |x| = m and the cut at t; the stochastic binary estimator's backward "
           "is the derivative of its expectation."),
    ]
    return _notebook(cells)


def ricci_flow_decay() -> nbf.NotebookNode:
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    cells = [
        md("# 02 · Does a perturbed metric decay under Ricci flow?\n\n"
           "The paper (Chen et al., arXiv 2302.03390, Section 4.4) quotes exponential decay of small "
           "L² perturbations under Ricci–DeTurck flow. This notebook measures it with `lnegeom.flow.solve_flow` "
           "(docs/math.md §3) on small grids:\n\n"
           "1. flat torus: the rate of mode k is kᵀ g∞⁻¹ k, with g∞ the (measured) limit metric;\n"
           "2. a box with the boundary held at δ: the rate is the first Dirichlet eigenvalue n(π/L)²;\n"
           "3. growing L: the rate vanishes like L⁻², and on a large domain the decay is a power law;\n"
           "4. gauge: a pulled-back flat metric does not move under Ricci flow and is straightened by DeTurck's;\n"
           "7. the paper's LNE metric g = I − ttᵀ on a box."),
        code("import numpy as np\nimport matplotlib.pyplot as plt\n"
             "from lnegeom.domains import Torus\nfrom lnegeom.flow import solve_flow\n\n"
             "S = np.array([[0.6, -0.8], [-0.8, 0.3]])   # the shape of the perturbation (symmetric)\n\n"
             "def decay_rate(domain, res, reference, window):\n"
             "    \"\"\"Least-squares slope of log ‖g − reference‖_L² over the time window.\"\"\"\n"
             "    norms = np.array([domain.l2_norm(g - reference) for g in res.g])\n"
             "    w = (res.t >= window[0]) & (res.t <= window[1])\n"
             "    return -np.polyfit(res.t[w], np.log(norms[w]), 1)[0], norms"),
        md("## 1. Flat torus: rate kᵀ g∞⁻¹ k\n\n"
           "Start from a constant metric A ≠ δ plus 10⁻³·cos(x₁)·S on T² = [0, 2π)². The constant mode "
           "survives: the flow converges to a flat metric g∞ near A, and the mode k = (1, 0) decays at "
           "the rate kᵀ g∞⁻¹ k of the linearised operator g∞^ab ∂_a∂_b (background δ)."),
        code("T = Torus(2, 16, 2 * np.pi)\nx = T.points()\n"
             "A = np.array([[1.2, 0.3], [0.3, 0.9]])\n"
             "g0 = A + 1e-3 * np.cos(x[..., 0])[..., None, None] * S\n"
             "res = solve_flow(g0, (0, 16), domain=T, t_eval=np.linspace(0, 16, 65))\n"
             "print(res.message, '|', res.nsteps, 'steps')\n"
             "g_inf = T.mean(res.g[-1])\n"
             "rate, norms = decay_rate(T, res, g_inf, (5, 16))\n"
             "k = np.array([1.0, 0.0])\ntheory = k @ np.linalg.solve(g_inf, k)\n"
             "print('g∞ =', g_inf.round(6).tolist())\n"
             "print(f'measured rate {rate:.8f}, theory kᵀg∞⁻¹k = {theory:.8f}, "
             "rel. err {abs(rate / theory - 1):.1e}')\n"
             "plt.semilogy(res.t, norms, 'o', ms=3, label='‖g − g∞‖')\n"
             "plt.semilogy(res.t, norms[20] * np.exp(-theory * (res.t - res.t[20])), label='theory slope')\n"
             "plt.axvspan(5, 16, alpha=.1, color='grey', label='fit window'); plt.xlabel('t'); plt.legend()\n"
             "assert abs(rate / theory - 1) < 1e-3"),
        md("## 2. A box with the boundary held at δ: the Dirichlet rate\n\n"
           "On [0, 1]² with the boundary held, the slowest mode sin(πx₁) sin(πx₂) of the linearised operator "
           "Δ decays at the first Dirichlet eigenvalue n(π/L)² = 2π². The box uses fourth-order finite "
           "differences and scipy's BDF with the box's sparse Jacobian pattern (the default method there)."),
        code("from lnegeom.box import Box\n\n"
             "B = Box(2, 16, L=1.0)                      # 16 intervals per axis, boundary included\n"
             "xb = B.points()\n"
             "bump = np.sin(np.pi * xb[..., 0]) * np.sin(np.pi * xb[..., 1])\n"
             "g0 = np.eye(2) + 1e-3 * bump[..., None, None] * S\n"
             "res = solve_flow(g0, (0, 0.3), domain=B, t_eval=np.linspace(0, 0.3, 31), rtol=1e-8, atol=1e-12)\n"
             "print(res.message, '| method', res.method)\n"
             "rate, norms = decay_rate(B, res, np.eye(2), (0.05, 0.3))\n"
             "print(f'measured rate {rate:.5f}, 2π² = {2 * np.pi**2:.5f}, "
             "rel. err {abs(rate / (2 * np.pi**2) - 1):.1e}')\n"
             "plt.semilogy(res.t, norms, 'o', ms=3); plt.xlabel('t'); plt.ylabel('‖g − δ‖')\n"
             "assert abs(rate / (2 * np.pi**2) - 1) < 1e-2"),
        md("## 3. Growing L: no spectral gap in the limit\n\n"
           "The slowest mode on [0, L)² is k = 2π/L, so the rate (2π/L)² vanishes as the torus grows. "
           "On ℝⁿ the linearised flow is the heat equation: a bump of width σ with non-zero integral "
           "decays in L² only like (σ² + 2t)^(−n/4) — a power law, not an exponential."),
        code("rates, Ls = [], 2 * np.pi * np.array([1.0, 2.0, 4.0])\n"
             "for L in Ls:\n"
             "    TL = Torus(2, 16, L)\n"
             "    kk = 2 * np.pi / L\n"
             "    g0 = np.eye(2) + 1e-3 * np.cos(kk * TL.points()[..., 0])[..., None, None] * S\n"
             "    t_end = 11 / kk**2\n"
             "    r = solve_flow(g0, (0, t_end), domain=TL, t_eval=np.linspace(0, t_end, 23), diagnostics=False)\n"
             "    rates.append(decay_rate(TL, r, TL.mean(r.g[-1]), (t_end / 4, t_end))[0])\n"
             "    print(f'L = {L:7.3f}: rate {rates[-1]:.6f}   (2π/L)² = {kk**2:.6f}')\n"
             "p = np.polyfit(np.log(Ls), np.log(rates), 1)[0]\n"
             "print(f'rate ∝ L^{p:.4f}  (theory L^-2)')\nassert abs(p + 2) < 0.01"),
        code("L, sigma = 40.0, 2.0\nTB = Torus(2, 64, L)\nxb = TB.points()\n"
             "bump = np.exp(-((xb - L / 2) ** 2).sum(-1) / (2 * sigma**2))\n"
             "g0 = np.eye(2) + 1e-3 * bump[..., None, None] * S\n"
             "r = solve_flow(g0, (0, 30), domain=TB, t_eval=np.linspace(0, 30, 31), diagnostics=False)\n"
             "norms = np.array([TB.l2_norm(g - np.eye(2)) for g in r.g])\n"
             "w = r.t >= 3\n"
             "expo = -np.polyfit(np.log(sigma**2 + 2 * r.t[w]), np.log(norms[w]), 1)[0]\n"
             "print(f'‖h(t)‖ ∝ (σ² + 2t)^(−{expo:.4f})   (theory n/4 = 0.5)')\n"
             "fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))\n"
             "ax[0].loglog(Ls, rates, 'o-'); ax[0].set_xlabel('L'); ax[0].set_ylabel('rate')\n"
             "ax[1].loglog(sigma**2 + 2 * r.t, norms, 'o', ms=3)\n"
             "ax[1].set_xlabel('σ² + 2t'); ax[1].set_ylabel('‖g − δ‖')\n"
             "assert abs(expo - 0.5) < 0.02"),
        md("## 4. Gauge: a pulled-back flat metric\n\n"
           "φ(x) = x + ε(sin x₂, sin(x₁ + x₂)) is a diffeomorphism of T² for small ε, and φ*δ = DφᵀDφ is "
           "flat (|Rm| at rounding level) but far from δ. Ricci flow sees no curvature and leaves it where it "
           "is; Ricci–DeTurck flow with background δ moves it along diffeomorphisms back towards δ."),
        code("eps = 0.05\nx1, x2 = x[..., 0], x[..., 1]\n"
             "D = np.zeros(x.shape[:-1] + (2, 2))\n"
             "D[..., 0, 0], D[..., 0, 1] = 1.0, eps * np.cos(x2)\n"
             "D[..., 1, 0] = D[..., 1, 1] = eps * np.cos(x1 + x2)\nD[..., 1, 1] += 1.0\n"
             "g_pb = np.einsum('...ai,...aj->...ij', D, D)\n"
             "runs = {f: solve_flow(g_pb, (0, 8), domain=T, flow=f, t_eval=np.linspace(0, 8, 33))\n"
             "        for f in ('ricci', 'ricci-deturck')}\n"
             "for f, r in runs.items():\n"
             "    d = r.diagnostics\n"
             "    print(f'{f:14s} ‖g − δ‖: {d[\"l2\"][0]:.3e} → {d[\"l2\"][-1]:.3e}   "
             "max|Rm|: {d[\"max_rm\"].max():.1e}')\n"
             "    plt.semilogy(r.t, d['l2'], label=f)\n"
             "plt.xlabel('t'); plt.ylabel('‖g − δ‖'); plt.legend()\n"
             "assert runs['ricci-deturck'].diagnostics['l2'][-1] < 1e-2 * runs['ricci'].diagnostics['l2'][-1]"),
        md("## 7. The paper's LNE metric on a box\n\n"
           "g = I − ttᵀ, t = tanh(τξ), τ = 1, is positive definite on [−a, a]² while τa < atanh(1/√2); take "
           "τa = 0.8·atanh(1/√2) and hold the boundary at g. It is curved (R(0) = −2τ²), so it is not "
           "stationary: both the perturbed and the unperturbed metric flow, and the perturbation is measured "
           "against the unperturbed flow, not against g."),
        code("from lnegeom.lne import LNEMetric\nfrom lnegeom.linearize import decay_rates\n\n"
             "tau = 1.0\na = 0.8 * np.arctanh(1 / np.sqrt(2)) / tau\n"
             "BL = Box(2, 12, L=2 * a, origin=-a)\nxl = BL.points()\n"
             "g_lne = LNEMetric(tau).matrix(xl)\n"
             "print('smallest eigenvalue of g on the box:', np.linalg.eigvalsh(g_lne)[..., 0].min())\n"
             "bump = np.cos(np.pi * xl[..., 0] / (2 * a)) * np.cos(np.pi * xl[..., 1] / (2 * a))\n"
             "te = np.linspace(0, 1.5, 31)\n"
             "opts = dict(domain=BL, t_eval=te, rtol=1e-9, atol=1e-12, diagnostics=False)\n"
             "unpert = solve_flow(g_lne, (0, 1.5), **opts)\n"
             "pert = solve_flow(g_lne + 1e-3 * bump[..., None, None] * S, (0, 1.5), **opts)\n"
             "delta = np.array([BL.l2_norm(p - u) for p, u in zip(pert.g, unpert.g)])\n"
             "w = te >= 0.5\nrate = -np.polyfit(te[w], np.log(delta[w]), 1)[0]\n"
             "g_lim = unpert.g[-1]\n"
             "print('limit metric at the centre:', g_lim[6, 6].round(6).tolist())\n"
             "spec = decay_rates(g_lim, BL)\n"
             "print(f'perturbation: ‖δ‖ {delta[0]:.2e} → {delta[-1]:.2e}, rate {rate:.4f}')\n"
             "print('slowest rates of the linearised operator at the limit:', spec.rates[:4].round(4))\n"
             "plt.semilogy(te, delta, 'o', ms=3); plt.xlabel('t'); plt.ylabel('‖g_pert(t) − g_unpert(t)‖')\n"
             "assert delta[-1] < 1e-4 * delta[0] and spec.n_zero == 0 and spec.rates[0] > 0"),
    ]
    return _notebook(cells)


def rfdnn_training() -> nbf.NotebookNode:
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    cells = [
        md("# 04 · Training with RF-DNN against the straight-through estimators\n\n"
           "A tiny comparison on scikit-learn's digits, run through the same code as `rfdnn compare`: "
           "every method sees, per seed, the same initial weights and the same batches. A small MLP keeps it "
           "quick; the numbers here "
           "are far too few for a verdict (2 seeds, 2 epochs) — `docs/experiments.md` says how to run "
           "the real one."),
        code("import json, tempfile\nfrom pathlib import Path\nimport torch\n"
             "from IPython.display import Image, Markdown, display\n"
             "from rfdnn_bridge.cli import main\n\ntorch.set_num_threads(1)\n"
             "out = Path(tempfile.mkdtemp()) / 'cmp'"),
        md("## Run: the clipped STE, the LNE gradient alone, and the paper's RF-DNN"),
        code("rc = main(['compare', '--methods', 'clipped,lne-weak,rfdnn', '--seeds', '2', "
             "'--epochs', '2', '--model', 'mlp', '--out', str(out), '--no-progress', '--device', 'cpu', "
             "'--jobs', '1'])\nassert rc == 0"),
        md("## What each run recorded"),
        code("run = json.loads((out / 'rfdnn' / 'seed0' / 'run.json').read_text())\n"
             "print({k: run[k] for k in ('train_loss', 'test_accuracy', 'gate_pass', 'regulariser')})\n"
             "assert len(run['test_accuracy']) == 2 and 0 <= run['gate_pass'][-1] <= 1"),
        md("## The summary and the plots"),
        code("display(Markdown((out / 'summary.md').read_text()))\n"
             "display(Image(filename=str(out / 'learning_curves.png')))\n"
             "display(Image(filename=str(out / 'final_accuracy.png')))"),
    ]
    return _notebook(cells)


def study(number: int, name: str, title: str, intro: str, check: str) -> nbf.NotebookNode:
    """A study notebook: the quick version of ``rfdnn study <name>``, its report, plots and one check."""
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    cells = [
        md(f"# {number:02d} · {title}\n\n{intro}\n\nThis is the quick version (seconds); "
           f"`rfdnn study {name}` runs the full one. Every number below is computed by the run."),
        code("import json, tempfile\nfrom pathlib import Path\nfrom IPython.display import Image, Markdown, display\n"
             "from rfdnn_bridge.studies import run_study\n\n"
             f"out = Path(tempfile.mkdtemp()) / '{name}'\n"
             f"data = run_study('{name}', out, seed=0, quick=True, progress=False)"),
        md("## The report"),
        code("display(Markdown((out / 'report.md').read_text()))\n"
             "for png in data['plots']:\n    display(Image(filename=str(out / png)))"),
        md("## One number, checked"),
        code(check),
    ]
    return _notebook(cells)


#: the study notebooks: (number, study, title, introduction, a checked number)
STUDY_NOTEBOOKS = [
    (5, "yin", "Yin et al. (2019): coarse gradients of straight-through estimators",
     "A one-hidden-layer network with binary activations, a teacher, and the three STEs of the paper "
     "(identity, ReLU, clipped ReLU): do their coarse gradients point downhill, and does the identity "
     "STE stay near a spurious minimum?",
     "mc = max(v['max_abs_z'] for v in data['monte_carlo'].values())\n"
     "print('closed-form expected coarse gradients vs Monte Carlo: max |z| =', round(mc, 2))\n"
     "assert mc < 5"),
    (6, "sbn", "Shekhovtsov & Yanush (2021): ST gradients in stochastic binary networks",
     "Exact gradients by enumeration against the straight-through family and REINFORCE (bias, "
     "variance, MSE), and the mirror-descent view of latent weights.",
     "print('mirror descent vs the latent step with dL/dmu: max deviation', data['mirror']['max_deviation'])\n"
     "assert data['mirror']['max_deviation'] < 1e-12"),
    (7, "reste", "ReSTE (2023): estimating error against gradient stability, with LNE",
     "The two indicators of Wu et al. for every estimator and for ReSTE's exponent o, and the angle "
     "of each gradient (the LNE one included) to the exact gradient of a smoothed loss.",
     "errors = [row['gaussian']['error'] for row in data['sweep']]\n"
     "print('estimating error along o:', [round(e, 3) for e in errors])\n"
     "assert all(a >= b for a, b in zip(errors, errors[1:]))  # a larger o fits sign better"),
]


if __name__ == "__main__":
    for filename, make in [("01_lne_curvature.ipynb", lne_curvature),
                           ("02_ricci_flow_decay.ipynb", ricci_flow_decay),
                           ("03_estimator_zoo.ipynb", estimator_zoo),
                           ("04_rfdnn_training.ipynb", rfdnn_training),
                           *((f"{k:02d}_{name}_study.ipynb", lambda a=(k, name, *rest): study(*a))
                             for k, name, *rest in STUDY_NOTEBOOKS)]:
        out = ROOT / "notebooks" / filename
        nb = make()
        for i, cell in enumerate(nb.cells):  # stable cell ids: regenerating gives no spurious diff
            cell["id"] = f"cell-{i:02d}"
        nbf.write(nb, out)
        print("wrote", out)
