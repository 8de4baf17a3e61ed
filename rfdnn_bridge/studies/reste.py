r"""ReSTE (Wu et al., ICCV 2023): estimating error against gradient stability, with the LNE gradient.

Every sign-type estimator is a *surrogate* forward :math:`F` whose derivative is its backward rule
(:mod:`rfdnn_bridge.backward_rules`): identity :math:`F(x) = x`; clipped :math:`F(x) = \mathrm{clip}(x, -c, c)`;
ApproxSign :math:`F(x) = 2x - x|x|` on :math:`[-1, 1]`; SwishSign
:math:`2\sigma(\beta x)(1 + \beta x(1 - \sigma(\beta x))) - 1`; stochastic binary :math:`\tanh(x/2s)` with
:math:`s` = :data:`SMOOTH_S`, the smoothing of the reference gradient below; ReSTE
:math:`F(x) = \mathrm{sign}(x)\,\min(|x|, t)^{1/o}` for :math:`|x| > m` and the secant
:math:`x\,m^{(1-o)/o}` for :math:`|x| \le m` (so :math:`F' =` ``reste_grad``; :math:`o = 1` is the clipped STE with
:math:`c = t`).  Each is the estimator's own ``surrogate`` method (:mod:`rfdnn_bridge.estimators`).
``magnitude_sign`` and ``dorefa_w`` (k = 1) share the clipped / identity backward and are not listed
separately; ``mirror_tanh`` has no sign forward in training and is left out.

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

computed by enumerating all :math:`2^{15}` weight configurations (:math:`s = 0.5`) with
:func:`rfdnn_bridge.studies.sbn.weight_configs` and :func:`~rfdnn_bridge.studies.sbn.expectation_and_grad`.
Each estimator's gradient is its backward rule applied to :math:`\partial L/\partial Q` at
:math:`Q = \mathrm{sign}(w)`; the LNE gradient is :func:`rfdnn_bridge.lne_grad.lne_transform` (mode ``exact``,
``tau="auto"``, one metric per layer) of the identity-STE gradient.  The measure is the angle
:math:`\arccos\langle \hat g, \nabla \bar L\rangle / (|\hat g||\nabla \bar L|)` in degrees (NaN
where a gradient is zero or not finite: those draws are left out of the means and counted, ``n_undefined``),
averaged over random draws of :math:`w \sim N(0, 0.5^2)`, data and teacher.  Estimators are compared by the
paired difference of angles to the identity STE over the same draws (mean ± standard error);
:math:`|\text{diff}| < 2\,\mathrm{SE}` is reported as indistinguishable.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..estimators import Estimator, ReSTE, get_estimator
from ..lne_grad import lne_transform
from . import check_seed, cosine, progress_bar, write_report
from .sbn import dmu_dtheta, expectation_and_grad, weight_configs

__all__ = [
    "ESTIMATORS", "surrogate", "estimating_error", "stability", "sample_weights",
    "smoothed_grad", "angle_deg", "angle_summary", "gradient_angles", "run",
]

#: the smoothing scale of the reference gradient, also the stochastic-binary estimator's s
SMOOTH_S = 0.5
#: (label, registry name, parameters) of the estimators compared as points; the first is the paired reference
ESTIMATORS: tuple[tuple[str, str, dict], ...] = (
    ("identity", "identity", {}),
    ("clipped", "clipped", {}),
    ("approxsign", "approxsign", {}),
    ("swishsign", "swishsign", {}),
    ("stochastic_binary", "stochastic_binary", {"s": SMOOTH_S}),
    ("reste(o=3)", "reste", {}),
)
DISTRIBUTIONS = {"gaussian": "N(0, 0.5²)", "uniform": "U(−1, 1)"}
SHAPES = ((3, 4), (1, 3))


def surrogate(est: Estimator, x: np.ndarray) -> np.ndarray:
    """The surrogate forward :math:`F` of ``est`` (its ``surrogate`` method) at ``x``; ``ValueError`` if it has
    none."""
    out = est.surrogate(torch.as_tensor(np.asarray(x, dtype=np.float64)))
    if out is None:
        raise ValueError(f"estimator {est.name!r} has no element-wise surrogate")
    return out.numpy().copy()


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
    :math:`\{\pm1\}^n` (:func:`~rfdnn_bridge.studies.sbn.weight_configs`,
    :func:`~rfdnn_bridge.studies.sbn.expectation_and_grad`, chained to :math:`w` by
    :math:`d\mu/dw = (1 - \mu^2)/2s`); ``loss_of`` maps configurations ``[K, n]`` to losses ``[K]``."""
    wn = w.detach().cpu().numpy().astype(np.float64).ravel()
    if wn.size > 20:
        raise ValueError(f"enumeration needs at most 20 weights, got n={wn.size}")
    W, logp = weight_configs(wn, s)
    with torch.no_grad():
        losses = loss_of(torch.from_numpy(W).to(w.dtype)).double().cpu().numpy()
    _, g_mu = expectation_and_grad(losses, W, logp)
    return torch.from_numpy(g_mu * dmu_dtheta(wn, s)).to(w.dtype)


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """The angle between ``a`` and ``b`` in degrees; NaN if either is zero or not finite
    (:func:`rfdnn_bridge.studies.cosine`)."""
    c = float(cosine(a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()))
    return math.degrees(math.acos(min(1.0, max(-1.0, c)))) if math.isfinite(c) else math.nan


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


def _mean_se(a: np.ndarray) -> tuple[float | None, float | None]:
    return (float(a.mean()) if a.size else None,
            float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else None)


def angle_summary(angles: Sequence[float], ref: Sequence[float]) -> dict:
    """Mean angle and its standard error over the defined (finite) draws, ``n_undefined`` the NaN draws, and the
    paired difference ``minus_ref`` = angle − ``ref`` angle (± ``minus_ref_se``) over the draws where both are
    defined (``None`` where there are too few)."""
    a, r = np.asarray(angles, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    ok, both = np.isfinite(a), np.isfinite(a) & np.isfinite(r)
    angle, angle_se = _mean_se(a[ok])
    diff, diff_se = _mean_se(a[both] - r[both])
    return {"angle": angle, "angle_se": angle_se, "n_undefined": int((~ok).sum()), "minus_ref": diff,
            "minus_ref_se": diff_se}


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
    ax.plot([r["o"] for r in sweep], [_nan(r["angle"]) for r in sweep], "-o", ms=3, label="ReSTE")
    for i, (label, row) in enumerate({**pts, "lne (exact, identity STE)": data["lne"]}.items()):
        ax.axhline(_nan(row["angle"]), ls="--", color=f"C{i + 1}", label=label)
    ax.set(xlabel="ReSTE exponent o", ylabel="mean angle to exact smoothed gradient (°)",
           title="gradient angle on a tiny binary network")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "angles.png", dpi=110)
    plt.close(fig)
    return ["equilibrium.png", "angles.png"]


def _trend(a: float, b: float) -> str:
    return "rises" if b > a else "falls" if b < a else "stays"


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def _pm(v: float | None, se: float | None, sign: str = "") -> str:
    """``v ± se`` (``—`` when undefined)."""
    return "—" if v is None else f"{v:{sign}.2f}" + ("" if se is None else f" ± {se:.2f}")


def _angle(row: dict) -> str:
    undefined = f" ({row['n_undefined']} undefined)" if row["n_undefined"] else ""
    return _pm(row["angle"], row["angle_se"]) + undefined


def _paired(row: dict) -> str:
    return _pm(row["minus_ref"], row["minus_ref_se"], "+")


def _verdict(row: dict) -> str:
    """``indistinguishable`` when |diff| < 2 SE, else ``smaller`` / ``larger`` (``undetermined`` without an SE)."""
    d, se = row["minus_ref"], row["minus_ref_se"]
    if d is None or se is None:
        return "undetermined"
    return "indistinguishable" if abs(d) < 2 * se else "smaller" if d < 0 else "larger"


def _markdown(data: dict) -> str:
    sweep, pts, lne = data["sweep"], data["estimators"], data["lne"]
    dists = list(DISTRIBUTIONS)
    ref = data["reference"]
    cols = " | ".join(f"E {d} | S {d}" for d in dists) + f" | angle (°) | angle − {ref} (°) |"
    rows = [f"| estimator | {cols}", "|" + "---|" * (2 * len(dists) + 3)]
    for label, r in pts.items():
        rows.append(f"| {label} | " + " | ".join(f"{r[d]['error']:.4f} | {r[d]['stability']:.4f}" for d in dists)
                    + f" | {_angle(r)} | {_paired(r)} |")
    rows.append("| lne (exact, identity STE) | " + " | ".join("— | —" for _ in dists)
                + f" | {_angle(lne)} | {_paired(lne)} |")
    sw = [f"| o | {cols}", "|" + "---|" * (2 * len(dists) + 3)]
    for r in sweep:
        sw.append(f"| {r['o']:.2f} | " + " | ".join(f"{r[d]['error']:.4f} | {r[d]['stability']:.4f}" for d in dists)
                  + f" | {_angle(r)} | {_paired(r)} |")
    first, last = sweep[0], sweep[-1]
    says = []
    for d in dists:
        e0, e1, s0, s1 = first[d]["error"], last[d]["error"], first[d]["stability"], last[d]["stability"]
        says.append(f"- For w ~ {DISTRIBUTIONS[d]}, as o grows from {first['o']:g} to {last['o']:g} the estimating "
                    f"error {_trend(e0, e1)} from {e0:.4f} to {e1:.4f} while the stability indicator "
                    f"{_trend(s0, s1)} from {s0:.4f} to {s1:.4f}.")
    by_verdict: dict[str, list[str]] = {}
    for label, r in [*((k, v) for k, v in pts.items() if k != ref), ("lne", lne),
                     *((f"ReSTE o = {r['o']:.2f}", r) for r in sweep)]:
        by_verdict.setdefault(_verdict(r), []).append(f"{label} ({_paired(r)}°)")
    says.append(f"- Gradient angle against the {ref} STE, paired over the same {data['trials']} draws (difference ± "
                "standard error; indistinguishable when |difference| < 2 SE): "
                + "; ".join(f"{v}: " + ", ".join(labels) for v, labels in by_verdict.items()) + ".")
    says.append(f"- The LNE-transformed {ref}-STE gradient: mean angle {_angle(lne)}° against {_angle(pts[ref])}° for "
                f"the {ref} STE itself, paired difference {_paired(lne)}° ({_verdict(lne)}).")
    undefined = {k: r["n_undefined"] for k, r in [*pts.items(), ("lne", lne), *((f"o={r['o']:g}", r) for r in sweep)]
                 if r["n_undefined"]}
    if undefined:
        says.append("- Draws with an undefined angle (zero or non-finite gradient), left out of the means: "
                    + ", ".join(f"{k}: {n}" for k, n in undefined.items()) + ".")
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
        f"- The stochastic-binary estimator uses s = {data['smooth_s']:g}, the smoothing of the reference gradient.",
        "",
        "## Estimators",
        "",
        "E: estimating error, S: stability indicator, per distribution; angle: mean ± standard error over the "
        f"draws; angle − {data['reference']}: the paired difference over the same draws ± its standard error.",
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
    out, seed = Path(out), check_seed(seed)
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

    ref = ESTIMATORS[0][0]
    for label in ests:
        points[label].update(angle_summary(angles[label], angles[ref]))
    for row in sweep:
        row.update(angle_summary(angles[f"o={row['o']}"], angles[ref]))
    lne = angle_summary(angles["lne"], angles[ref])
    data = {"seed": seed, "quick": quick, "n_weights": n_weights, "trials": trials, "smooth_s": SMOOTH_S,
            "reference": ref,
            "distributions": DISTRIBUTIONS, "estimators": points, "sweep": sweep, "lne": lne}
    out.mkdir(parents=True, exist_ok=True)
    data["plots"] = _plot(out, data)
    return write_report(out, data, _markdown(data))
