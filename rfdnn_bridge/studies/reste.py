r"""ReSTE (Wu et al., ICCV 2023): estimating error against gradient stability, with the LNE gradient.

Every sign-type estimator is a *surrogate* forward :math:`F` whose derivative is its backward rule
(:mod:`rfdnn_bridge.reference`): identity :math:`F(x) = x`; clipped :math:`F(x) = \mathrm{clip}(x, -c, c)`;
ApproxSign :math:`F(x) = 2x - x|x|` on :math:`[-1, 1]`; SwishSign
:math:`2\sigma(\beta x)(1 + \beta x(1 - \sigma(\beta x))) - 1`; stochastic binary :math:`\tanh(x/2s)`;
ReSTE :math:`F(x) = \mathrm{sign}(x)\,\min(|x|, t)^{1/o}` for :math:`|x| > m` and the secant
:math:`x\,m^{(1-o)/o}` for :math:`|x| \le m` (so :math:`F' =` ``reste_grad``; :math:`o = 1` is the clipped STE with
:math:`c = t`).  ``magnitude_sign`` and ``dorefa_w`` (k = 1) share the clipped / identity backward and are
not listed separately; ``mirror_tanh`` has no sign forward in training and is left out.

The two indicators (the paper's, over a sample :math:`w_1, \dots, w_N` of latent weights):

* **estimating error** :math:`E = \frac1N \sum_i |\mathrm{sign}(w_i) - F(w_i)|` (mean absolute difference,
  not squared);
* **stability indicator** :math:`S = \mathrm{Var}_i[F'(w_i)] = \frac1N\sum_i (F'(w_i) - \overline{F'})^2`,
  the population variance of the backward pseudo-derivative (the rule with incoming gradient 1);
  smaller is more stable.

Latent-weight distributions: ``gaussian`` :math:`N(0, 0.5^2)` and ``uniform`` :math:`U(-1, 1)`
(BinaryConnect's clipped range).  ReSTE is swept over :math:`o \in [1, 4]`.

**Gradient angle** (the comparable measure that includes LNE, which has no element-wise surrogate).
A tiny network with binary weights :math:`b = (W_1 \in \{\pm1\}^{3\times4}, W_2 \in \{\pm1\}^{1\times3})`,
:math:`f(x) = W_2 \tanh(W_1 x / 2) / \sqrt3`, squared loss on 32 samples of a random binary teacher plus noise.
The reference is the exact gradient of the smoothed loss of the stochastic binary network,

.. math:: \bar L(w) = \mathbb E_{b}[L(b)],\quad P(b_i = +1) = \sigma(w_i / s),\quad
          \partial_{w_i} \bar L = \sum_b L(b)\,p(b)\,\frac{b_i - \mu_i}{2s},\ \mu_i = \tanh(w_i/2s),

computed by enumerating all :math:`2^{15}` weight configurations (:math:`s = 0.5`).  Each estimator's gradient
is its backward rule applied to :math:`\partial L/\partial Q` at :math:`Q = \mathrm{sign}(w)`; the LNE gradient
is :func:`rfdnn_bridge.lne_grad.lne_transform` (mode ``exact``, ``tau="auto"``, one metric per layer) of the
identity-STE gradient.  The measure is the angle :math:`\arccos\langle \hat g, \nabla \bar L\rangle /
(|\hat g||\nabla \bar L|)` in degrees (90° for a zero gradient), averaged over random draws of
:math:`w \sim N(0, 0.5^2)`, data and teacher.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..estimators import ClippedSTE, Estimator, IdentitySTE, ReSTE, get_estimator
from ..lne_grad import lne_transform
from . import progress_bar, write_report

__all__ = [
    "ESTIMATORS", "surrogate", "estimating_error", "stability", "sample_weights",
    "smoothed_grad", "angle_deg", "gradient_angles", "run",
]

#: (label, registry name, parameters) of the estimators compared as points
ESTIMATORS: tuple[tuple[str, str, dict], ...] = (
    ("identity", "identity", {}),
    ("clipped", "clipped", {}),
    ("approxsign", "approxsign", {}),
    ("swishsign", "swishsign", {}),
    ("stochastic_binary", "stochastic_binary", {}),
    ("reste(o=3)", "reste", {}),
)
DISTRIBUTIONS = {"gaussian": "N(0, 0.5²)", "uniform": "U(−1, 1)"}
SMOOTH_S = 0.5
SHAPES = ((3, 4), (1, 3))


def surrogate(est: Estimator, x: np.ndarray) -> np.ndarray:
    """The surrogate forward :math:`F` of ``est`` (module docstring) at ``x``; ``ValueError`` if it has none."""
    x = np.asarray(x, dtype=np.float64)
    if isinstance(est, ReSTE):
        a = np.abs(x)
        return np.where(a <= est.m, x * est.m ** ((1.0 - est.o) / est.o),
                        np.sign(x) * np.minimum(a, est.t) ** (1.0 / est.o))
    if isinstance(est, ClippedSTE):
        return np.clip(x, -est.c, est.c)
    if isinstance(est, IdentitySTE):
        return x.copy()
    out = est.surrogate(torch.from_numpy(x))
    if out is None:
        raise ValueError(f"estimator {est.name!r} has no element-wise surrogate")
    return out.numpy()


def _check_sample(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64).ravel()
    if w.size == 0 or not np.isfinite(w).all():
        raise ValueError(f"the weight sample must be non-empty and finite, got size {w.size}")
    return w


def estimating_error(est: Estimator, w: np.ndarray) -> float:
    r""":math:`E = \operatorname{mean}_i |\mathrm{sign}(w_i) - F(w_i)|` with sign(0) = +1."""
    w = _check_sample(w)
    return float(np.mean(np.abs(np.where(w >= 0, 1.0, -1.0) - surrogate(est, w))))


def stability(est: Estimator, w: np.ndarray) -> float:
    r""":math:`S = \mathrm{Var}_i[F'(w_i)]`, the population variance of ``est.backward_rule(w, 1)``."""
    w = _check_sample(w)
    return float(np.var(est.backward_rule(w, np.ones_like(w))))


def sample_weights(dist: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` latent weights from ``dist`` (``"gaussian"``: N(0, 0.5²); ``"uniform"``: U(−1, 1))."""
    if dist == "gaussian":
        return rng.normal(0.0, 0.5, n)
    if dist == "uniform":
        return rng.uniform(-1.0, 1.0, n)
    raise ValueError(f"unknown distribution {dist!r}; the distributions are {list(DISTRIBUTIONS)}")


def smoothed_grad(loss_of: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor, s: float) -> torch.Tensor:
    r"""Exact :math:`\nabla_w \mathbb E_b[L(b)]`, :math:`P(b_i = +1) = \sigma(w_i/s)`, by enumerating
    :math:`\{\pm1\}^n`; ``loss_of`` maps configurations ``[K, n]`` to losses ``[K]``."""
    if not s > 0:
        raise ValueError(f"the smoothing scale must be > 0, got s={s!r}")
    n = w.numel()
    if n > 20:
        raise ValueError(f"enumeration needs at most 20 weights, got n={n}")
    codes = torch.arange(2**n)[:, None] >> torch.arange(n)
    b = ((codes & 1) * 2 - 1).to(w.dtype)
    with torch.no_grad():
        losses = loss_of(b)
    wl = w.detach().clone().requires_grad_(True)
    logp = torch.nn.functional.logsigmoid(b * wl / s).sum(dim=1)
    (grad,) = torch.autograd.grad((logp.exp() * losses).sum(), wl)
    return grad


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between ``a`` and ``b`` in degrees (90 if either is zero)."""
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return 90.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb)))))


def gradient_angles(loss_of: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor,
                    estimators: dict[str, Estimator], shapes: Sequence[tuple[int, ...]], *,
                    s: float = SMOOTH_S, tau: float | str = "auto") -> dict[str, float]:
    """Angle (degrees) of each estimator's gradient, and of ``"lne"`` (the LNE-transformed identity-STE
    gradient, one metric per layer of ``shapes``), with the exact smoothed gradient :func:`smoothed_grad`."""
    ref = smoothed_grad(loss_of, w, s)
    q = torch.where(w >= 0, 1.0, -1.0).to(w.dtype).requires_grad_(True)
    (g_q,) = torch.autograd.grad(loss_of(q[None])[0], q)
    out = {label: angle_deg(est.backward_rule(w, g_q), ref) for label, est in estimators.items()}
    parts, start = [], 0
    for shape in shapes:
        k = math.prod(shape)
        parts.append(lne_transform(g_q[start:start + k].reshape(shape), w[start:start + k].reshape(shape),
                                   mode="exact", tau=tau)[0].reshape(-1))
        start += k
    out["lne"] = angle_deg(torch.cat(parts), ref)
    return out


def _tiny_problem(gen: torch.Generator, n_data: int = 32) -> Callable[[torch.Tensor], torch.Tensor]:
    (h, d), _ = SHAPES
    x = torch.randn(n_data, d, generator=gen, dtype=torch.float64)
    teacher = torch.where(torch.rand(h * d + h, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)

    def loss_of(b: torch.Tensor) -> torch.Tensor:
        w1, w2 = b[:, : h * d].reshape(-1, h, d), b[:, h * d:].reshape(-1, 1, h)
        hid = torch.tanh(x @ w1.transpose(1, 2) / 2.0)  # [K, N, h]
        return (hid @ w2.transpose(1, 2))[..., 0] / math.sqrt(h)

    y = loss_of(teacher[None])[0] + 0.1 * torch.randn(n_data, generator=gen, dtype=torch.float64)
    return lambda b: ((loss_of(b) - y) ** 2).mean(dim=1)


def _plot(out: Path, data: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep, pts = data["sweep"], data["estimators"]
    fig, axes = plt.subplots(1, len(DISTRIBUTIONS), figsize=(11, 4.2))
    for ax, dist in zip(axes, DISTRIBUTIONS):
        ax.plot([r[dist]["error"] for r in sweep], [r[dist]["stability"] for r in sweep], "-o", ms=3,
                label="ReSTE, o = 1 … 4")
        for lab in (sweep[0], sweep[-1]):
            ax.annotate(f"o={lab['o']:g}", (lab[dist]["error"], lab[dist]["stability"]), fontsize=8)
        for label, row in pts.items():
            ax.plot(row[dist]["error"], row[dist]["stability"], "s", label=label)
        ax.set(xlabel="estimating error  mean|sign(w) − F(w)|", ylabel="stability  Var[F′(w)]",
               title=f"w ~ {DISTRIBUTIONS[dist]}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "equilibrium.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot([r["o"] for r in sweep], [r["angle"] for r in sweep], "-o", ms=3, label="ReSTE")
    for i, (label, row) in enumerate({**pts, "lne (exact, identity STE)": data["lne"]}.items()):
        ax.axhline(row["angle"], ls="--", color=f"C{i + 1}", label=label)
    ax.set(xlabel="ReSTE exponent o", ylabel="mean angle to exact smoothed gradient (°)",
           title="gradient angle on a tiny binary network")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "angles.png", dpi=110)
    plt.close(fig)
    return ["equilibrium.png", "angles.png"]


def _trend(a: float, b: float) -> str:
    return "rises" if b > a else "falls" if b < a else "stays"


def _angle(row: dict) -> str:
    se = row["angle_se"]
    return f"{row['angle']:.2f}" + ("" if se is None else f" ± {se:.2f}")


def _markdown(data: dict) -> str:
    sweep, pts, lne = data["sweep"], data["estimators"], data["lne"]
    dists = list(DISTRIBUTIONS)
    head = "| estimator | " + " | ".join(f"E {d} | S {d}" for d in dists) + " | angle (°) |"
    rows = [head, "|" + "---|" * (2 * len(dists) + 2)]
    for label, r in pts.items():
        rows.append(f"| {label} | " + " | ".join(f"{r[d]['error']:.4f} | {r[d]['stability']:.4f}" for d in dists)
                    + f" | {_angle(r)} |")
    rows.append("| lne (exact, identity STE) | " + " | ".join("— | —" for _ in dists) + f" | {_angle(lne)} |")
    sw = ["| o | " + " | ".join(f"E {d} | S {d}" for d in dists) + " | angle (°) |",
          "|" + "---|" * (2 * len(dists) + 2)]
    for r in sweep:
        sw.append(f"| {r['o']:.2f} | " + " | ".join(f"{r[d]['error']:.4f} | {r[d]['stability']:.4f}" for d in dists)
                  + f" | {_angle(r)} |")
    first, last = sweep[0], sweep[-1]
    says = []
    for d in dists:
        e0, e1, s0, s1 = first[d]["error"], last[d]["error"], first[d]["stability"], last[d]["stability"]
        says.append(f"- For w ~ {DISTRIBUTIONS[d]}, as o grows from {first['o']:g} to {last['o']:g} the estimating "
                    f"error {_trend(e0, e1)} from {e0:.4f} to {e1:.4f} while the stability indicator "
                    f"{_trend(s0, s1)} from {s0:.4f} to {s1:.4f}.")
    best = min(sweep, key=lambda r: r["angle"])
    says.append(f"- On the tiny network ReSTE's mean angle is smallest at o = {best['o']:.2f} ({best['angle']:.2f}°); "
                f"at o = {first['o']:g} it is {first['angle']:.2f}°, at o = {last['o']:g} {last['angle']:.2f}°.")
    ranked = sorted([*pts.items(), ("lne", lne)], key=lambda kv: kv[1]["angle"])
    pos = [k for k, _ in ranked].index("lne") + 1
    says.append(f"- The LNE-transformed identity-STE gradient has mean angle {lne['angle']:.2f}° against "
                f"{pts['identity']['angle']:.2f}° for the identity STE itself (paired difference over the same draws "
                f"{_angle({'angle': lne['minus_identity'], 'angle_se': lne['minus_identity_se']})}°); it ranks {pos} of {len(ranked)} "
                f"(smallest angle: {ranked[0][0]}, {ranked[0][1]['angle']:.2f}°).")
    return "\n".join([
        "# ReSTE study: estimating error vs gradient stability, with LNE",
        "",
        "Wu et al. (ICCV 2023) trade the *estimating error* of an estimator's surrogate forward F against the "
        "*stability* of its backward pseudo-derivative F′. This report measures both for the STE family and "
        "ReSTE's exponent o, and adds the LNE gradient through a gradient-angle measure.",
        "",
        "## Definitions",
        "",
        "- Estimating error E = mean_i |sign(w_i) − F(w_i)| (mean absolute, not squared), over "
        f"{data['n_weights']} latent weights drawn from each distribution: "
        + ", ".join(f"{k} = {v}" for k, v in DISTRIBUTIONS.items()) + ".",
        "- Stability indicator S = Var_i[F′(w_i)], the population variance of the backward rule with incoming "
        "gradient 1 (smaller is more stable).",
        f"- Angle: mean over {data['trials']} draws of the angle between an estimator's gradient on a tiny binary "
        "network (15 binary weights) and the exact gradient of the stochastic-binary smoothed loss "
        f"E_b[L(b)], P(b_i = +1) = σ(w_i/s), s = {data['smooth_s']:g}, by enumeration. LNE has no element-wise "
        "surrogate, so it has no E or S here; it is the exact LNE transform (τ auto, per layer) of the "
        "identity-STE gradient.",
        "",
        "## Estimators",
        "",
        "E: estimating error, S: stability indicator, per distribution; angle: mean ± standard error over the "
        "draws.",
        "",
        *rows,
        "",
        "## ReSTE o-sweep",
        "",
        *sw,
        "",
        "## Findings (computed)",
        "",
        *says,
        "",
        "![equilibrium](equilibrium.png)",
        "",
        "![angles](angles.png)",
        "",
    ])


def run(out: Path, *, seed: int = 0, quick: bool = False, progress: bool = True,
        o_values: Sequence[float] | None = None) -> dict:
    """Compute the indicators, the o-sweep and the gradient angles; write ``report.json``, ``report.md``,
    ``equilibrium.png`` and ``angles.png`` into ``out``; return the JSON content.

    ``o_values`` (default: ``linspace(1, 4)``, 31 points, 7 when ``quick``) must all be ≥ 1.
    """
    out = Path(out)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got seed={seed!r}")
    o_values = [float(o) for o in (np.linspace(1.0, 4.0, 7 if quick else 31) if o_values is None else o_values)]
    if not o_values:
        raise ValueError("o_values must not be empty")
    for o in o_values:
        if not (math.isfinite(o) and o >= 1.0):
            raise ValueError(f"every ReSTE exponent must be finite and >= 1, got o={o!r}")
    n_weights, trials = (4_000, 3) if quick else (200_000, 150)

    rng = np.random.default_rng(seed)
    samples = {d: sample_weights(d, n_weights, rng) for d in DISTRIBUTIONS}
    ests = {label: get_estimator(name, **params) for label, name, params in ESTIMATORS}
    sweep_ests = {o: ReSTE(o=o) for o in o_values}

    def indicators(est: Estimator) -> dict:
        return {d: {"error": estimating_error(est, w), "stability": stability(est, w)} for d, w in samples.items()}

    points = {label: indicators(est) for label, est in ests.items()}
    sweep = [{"o": o, **indicators(est)} for o, est in sweep_ests.items()]

    gen = torch.Generator().manual_seed(seed)
    angle_ests = {**ests, **{f"o={o}": est for o, est in sweep_ests.items()}}
    angles: dict[str, list[float]] = {k: [] for k in [*angle_ests, "lne"]}
    with progress_bar(trials, "ReSTE study: gradient angles", enabled=progress) as advance:
        for _ in range(trials):
            loss_of = _tiny_problem(gen)
            w = 0.5 * torch.randn(sum(math.prod(s) for s in SHAPES), generator=gen, dtype=torch.float64)
            for k, v in gradient_angles(loss_of, w, angle_ests, SHAPES).items():
                angles[k].append(v)
            advance()

    def summary(k: str) -> dict:
        a = np.asarray(angles[k])
        return {"angle": float(a.mean()), "angle_se": float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else None}

    for label in ests:
        points[label].update(summary(label))
    for row in sweep:
        row.update(summary(f"o={row['o']}"))

    diff = np.asarray(angles["lne"]) - np.asarray(angles["identity"])
    lne = {**summary("lne"), "minus_identity": float(diff.mean()),
           "minus_identity_se": float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else None}
    data = {"seed": seed, "quick": quick, "n_weights": n_weights, "trials": trials, "smooth_s": SMOOTH_S,
            "distributions": DISTRIBUTIONS, "estimators": points, "sweep": sweep, "lne": lne}
    out.mkdir(parents=True, exist_ok=True)
    data["plots"] = _plot(out, data)
    return write_report(out, data, _markdown(data))
