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
           "`lnegeom`'s own code, what MATH.md §2 says about it:\n\n"
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
             "torch.manual_seed(0)\nnames = list_estimators()\nprint(len(names), 'estimators:', ', '.join(names))\n"
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


if __name__ == "__main__":
    for filename, make in [("01_lne_curvature.ipynb", lne_curvature),
                           ("03_estimator_zoo.ipynb", estimator_zoo)]:
        out = ROOT / "notebooks" / filename
        nb = make()
        for i, cell in enumerate(nb.cells):  # stable cell ids: regenerating gives no spurious diff
            cell["id"] = f"cell-{i:02d}"
        nbf.write(nb, out)
        print("wrote", out)
