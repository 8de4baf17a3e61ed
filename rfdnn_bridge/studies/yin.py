r"""Yin et al. (ICLR 2019): coarse gradients of straight-through estimators on a binarized-ReLU network.

**Model** (docs/estimators/index.md, "Notes from the sources"; the paper's Section 2).  A one-hidden-layer network
:math:`y = v^\top \sigma(Z w)` with binary activation :math:`\sigma(x) = 1[x > 0]`, input
:math:`Z \in \mathbb R^{m\times n}` with i.i.d. :math:`N(0, 1)` entries (rows :math:`z_i`), teacher
:math:`(v^*, w^*)`, :math:`\|w^*\| = 1`, and sample loss
:math:`\ell(v, w; Z) = \tfrac12 (v^\top\sigma(Zw) - y^*)^2`, :math:`y^* = v^{*\top}\sigma(Zw^*)`.

**Population loss.**  For rows :math:`i \ne j` the rows are independent and
:math:`P(z\cdot w > 0) = \tfrac12`, so :math:`E[\sigma(z_i\cdot w)\sigma(z_j\cdot w')] = \tfrac14`.  For
:math:`i = j`, project :math:`z` onto the plane of :math:`w, w'`: it is rotation invariant there, and the set
:math:`\{z\cdot w > 0, z\cdot w' > 0\}` is a wedge of angle :math:`\pi - \theta`, so
:math:`E[\sigma(z\cdot w)\sigma(z\cdot w')] = (\pi - \theta)/(2\pi)`, :math:`\theta = \angle(w, w')`.  Hence
:math:`E[\sigma\sigma^\top] = \tfrac14(I + 11^\top)` and
:math:`E[\sigma\sigma^{*\top}] = \tfrac14((1 - 2\theta/\pi) I + 11^\top)`, and expanding the square,

.. math:: f(v, w) = E_Z\,\ell = \tfrac18\big[v^\top(I + 11^\top)v - 2v^\top((1 - \tfrac{2\theta}{\pi})I + 11^\top)v^*
          + v^{*\top}(I + 11^\top)v^*\big],

with :math:`\theta = \angle(w, w^*)`; :math:`f` depends on :math:`w` only through its direction.

**True gradient.**  :math:`\nabla_v f = \tfrac14[(I + 11^\top)v - ((1 - 2\theta/\pi)I + 11^\top)v^*]`, which is
also :math:`E_Z[\sigma(Zw)(v^\top\sigma(Zw) - y^*)]` (differentiation under :math:`E` is fine in :math:`v`).
In :math:`w`, :math:`\partial f/\partial\theta = v^\top v^*/(2\pi)` and, with :math:`\hat w = w/\|w\|` and
:math:`e = (w^* - \cos\theta\,\hat w)/\sin\theta` the unit vector of :math:`w^*` orthogonal to :math:`w`,
:math:`\nabla_w\theta = -e/\|w\|`, so

.. math:: \nabla_w f = -\frac{v^\top v^*}{2\pi\|w\|}\,e .

It is undefined at :math:`\theta \in \{0, \pi\}` (:math:`f` has a cone-shaped kink in :math:`w` there); we
return :math:`0` there (when :math:`\sin\theta < 10^{-9}`), the minimum-norm element of the Clarke
subdifferential (a ball of radius :math:`|v^\top v^*|/(2\pi\|w\|)` in the plane orthogonal to :math:`w`).  The
sample loss is piecewise constant in :math:`w`, so its true :math:`w`-gradient is 0 almost surely: the
population gradient is *not* the expectation of a sampled gradient — hence the STEs.

**Coarse gradient** (the paper's eq. for :math:`\tilde\partial_w`): :math:`\sigma'` is replaced by the STE's
:math:`\mu'`, :math:`\tilde g_w = Z^\top(\mu'(Zw)\odot v)(v^\top\sigma(Zw) - y^*)`; the backward rules are those of
:mod:`rfdnn_bridge.backward_rules` (``yin_identity_grad``: :math:`\mu' = 1`; ``yin_relu_grad``: :math:`1[x > 0]`;
``yin_clipped_relu_grad``: :math:`1[0 < x < 1]`).  All three STEs are indicators :math:`\mu' = 1[z\cdot w \in A]`,
so with :math:`r = \sum_j v_j\sigma_j - \sum_j v^*_j\sigma^*_j` and independence of rows,

.. math:: E[\tilde g_w] = \|v\|^2\alpha + \tfrac12((1^\top v)^2 - \|v\|^2)\beta - (v^\top v^*)\gamma
          - \tfrac12((1^\top v)(1^\top v^*) - v^\top v^*)\beta,

:math:`\alpha = E[z\,1_A\,1[z\cdot w>0]]`, :math:`\beta = E[z\,1_A]`, :math:`\gamma = E[z\,1_A\,1[z\cdot w^*>0]]`.
Writing :math:`z\cdot\hat w = g_1`, :math:`z\cdot e = g_2` (independent standard normals), :math:`\varphi, \Phi`
the standard normal density and cdf, :math:`s = 1/\|w\|`:

* identity (:math:`A = \mathbb R`): :math:`\beta = 0`, :math:`\alpha = \hat w/\sqrt{2\pi}`,
  :math:`\gamma = w^*/\sqrt{2\pi}`, so :math:`E\tilde g = (\|v\|^2\hat w - (v^\top v^*)w^*)/\sqrt{2\pi}`;
* ReLU (:math:`A = (0, \infty)`): :math:`\alpha = \beta = \hat w/\sqrt{2\pi}`, and the wedge integral
  :math:`E[z\,1[z\cdot a>0]1[z\cdot b>0]] = (a + b)/(2\sqrt{2\pi})` for unit :math:`a, b` gives
  :math:`\gamma = (\hat w + w^*)/(2\sqrt{2\pi})`, so
  :math:`E\tilde g = \frac{1}{2\sqrt{2\pi}}[(\|v\|^2 + (1^\top v)^2 - (1^\top v)(1^\top v^*))\hat w - (v^\top v^*)w^*]`;
* clipped ReLU (:math:`A = (0, s)` in :math:`g_1`): :math:`\alpha = \beta = (\varphi(0) - \varphi(s))\hat w` and,
  integrating :math:`g_1\varphi(g_1)\Phi(g_1\cot\theta)` by parts,
  :math:`\gamma = [\tfrac12\varphi(0) - \varphi(s)\Phi(s\cot\theta)]\hat w
  + (\Phi(s/\sin\theta) - \tfrac12)\,w^*/\sqrt{2\pi}`
  (limits :math:`\Phi(\pm\infty)` at :math:`\theta \in \{0, \pi\}`; :math:`s \to \infty` gives the ReLU case).

These are the paper's closed forms up to notation (its lemmas on the expected coarse gradients); the tests
check each against Monte Carlo.  The :math:`e`-component of each is :math:`-(v^\top v^*)\sin\theta` times a
positive factor, so all three correlate non-negatively with :math:`\nabla_w f` (the paper's descent-direction
result for ReLU / clipped ReLU).  **Stationary points of** :math:`f`: besides the global minima
:math:`(v^*, c\,w^*)`, :math:`c > 0` (:math:`f = 0`; at :math:`(v^*, -c\,w^*)`, :math:`\theta = \pi`, instead
:math:`f = \|v^*\|^2/2`), :math:`\theta = \pi` with :math:`v = (I + 11^\top)^{-1}(11^\top - I)v^*
= -v^* + \tfrac{2(1^\top v^*)}{m+1}1` is a spurious local minimum when :math:`v^\top v^* < 0`.  There the
ReLU and clipped-ReLU coarse gradients vanish, the identity one is
:math:`(\|v\|^2 + v^\top v^*)\hat w/\sqrt{2\pi} \ne 0`: the identity STE does not stay put (the paper's
instability).

**Study** (defaults ours; the paper's numbers are not reproduced exactly): :math:`m = 20, n = 10`, teacher
:math:`v^* \sim N(0, I)`, :math:`w^*` uniform on the sphere; coarse gradient descent on the *population*
(expected) coarse gradient in closed form, :math:`v` with the true :math:`\nabla_v f`, step 0.1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.special import ndtr

from ..backward_rules import yin_clipped_relu_grad, yin_identity_grad, yin_relu_grad
from . import check_seed, cosine, progress_bar, write_report, z_score

__all__ = [
    "STES", "population_loss", "population_grad", "sample_loss_and_grads", "expected_coarse_grad",
    "coarse_grad_closed_form", "spurious_local_min", "coarse_gradient_descent", "run",
]

#: STE name → backward rule ``rule(x, g) = g · μ′(x)`` of :mod:`rfdnn_bridge.backward_rules`
STES: dict[str, Callable] = {
    "identity": yin_identity_grad,
    "relu": yin_relu_grad,
    "clipped_relu": yin_clipped_relu_grad,
}
_SQ2PI = math.sqrt(2.0 * math.pi)
_SIN_EPS = 1e-9


def _check(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray):
    """Validate and convert: ``v [..., m]``, ``w [..., n]``, ``v_star [m]``, ``w_star [n]`` unit, ``w ≠ 0``."""
    v, w = np.asarray(v, dtype=np.float64), np.asarray(w, dtype=np.float64)
    v_star, w_star = np.asarray(v_star, dtype=np.float64), np.asarray(w_star, dtype=np.float64)
    if v_star.ndim != 1 or w_star.ndim != 1:
        raise ValueError(f"v_star and w_star must be vectors, got shapes {v_star.shape}, {w_star.shape}")
    if v.shape[-1:] != v_star.shape or w.shape[-1:] != w_star.shape:
        raise ValueError(f"shape mismatch: v {v.shape} vs v_star {v_star.shape}, w {w.shape} vs w_star {w_star.shape}")
    if not abs(np.linalg.norm(w_star) - 1.0) < 1e-8:
        raise ValueError(f"w_star must have unit norm, got ‖w_star‖ = {np.linalg.norm(w_star)!r}")
    if not (np.isfinite(v).all() and np.isfinite(w).all()):
        raise ValueError("v and w must be finite")
    if (np.linalg.norm(w, axis=-1) == 0).any():
        raise ValueError("w = 0: the angle θ(w, w_star) is undefined")
    return v, w, v_star, w_star


def _geometry(w: np.ndarray, w_star: np.ndarray):
    """``(‖w‖, ŵ, cos θ, sin θ, θ, e)``: ``e`` the unit part of ``w_star`` orthogonal to ``w`` (0 if sin θ ≈ 0)."""
    norm = np.linalg.norm(w, axis=-1, keepdims=True)
    w_hat = w / norm
    cos = w_hat @ w_star
    perp = w_star - cos[..., None] * w_hat
    sin = np.linalg.norm(perp, axis=-1)
    e = np.where(sin[..., None] > _SIN_EPS, perp / np.maximum(sin, _SIN_EPS)[..., None], 0.0)
    return norm[..., 0], w_hat, cos, sin, np.arctan2(sin, cos), e


def population_loss(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    r"""Closed-form :math:`f(v, w) = E_Z\,\ell` (module docstring); broadcasts over leading axes of ``v, w``."""
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    theta = _geometry(w, w_star)[4]

    def quad(a, b):  # aᵀ(I + 11ᵀ)b
        return (a * b).sum(-1) + a.sum(-1) * b.sum(-1)

    return (quad(v, v) - 2.0 * (quad(v, v_star) - 2.0 * theta / math.pi * (v @ v_star))
            + quad(v_star, v_star)) / 8.0


def population_grad(v: np.ndarray, w: np.ndarray, v_star: np.ndarray,
                    w_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""True :math:`(\nabla_v f, \nabla_w f)`; :math:`\nabla_w f = 0` at :math:`\theta \in \{0, \pi\}` (see module)."""
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    norm, _, _, _, theta, e = _geometry(w, w_star)
    gv = (v + v.sum(-1, keepdims=True) - (1.0 - 2.0 * theta / math.pi)[..., None] * v_star - v_star.sum()) / 4.0
    gw = -((v @ v_star) / (2.0 * math.pi * norm))[..., None] * e
    return gv, gw


def sample_loss_and_grads(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray,
                          Z: np.ndarray, ste: str = "relu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per-sample :math:`(\ell, \partial_v\ell, \tilde g_w)` for inputs ``Z [..., m, n]`` (one ``v [m], w [n]``).

    :math:`\partial_v \ell = \sigma(Zw)\,r` is the true gradient; the true :math:`w`-gradient is 0 a.e., so the
    third output is the STE's coarse gradient :math:`Z^\top(\mu'(Zw)\odot v)\,r`, :math:`r = v^\top\sigma(Zw) - y^*`.
    """
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    if v.ndim != 1 or w.ndim != 1:
        raise ValueError(f"v and w must be single vectors (the batch is in Z), got shapes {v.shape}, {w.shape}")
    if ste not in STES:
        raise ValueError(f"unknown STE {ste!r}; the STEs are {list(STES)}")
    Z = np.asarray(Z, dtype=np.float64)
    if Z.shape[-2:] != (v.shape[-1], w.shape[-1]):
        raise ValueError(f"Z must have shape [..., m={v.shape[-1]}, n={w.shape[-1]}], got {Z.shape}")
    x = Z @ w
    s = (x > 0).astype(np.float64)
    r = s @ v - (Z @ w_star > 0) @ v_star
    g = STES[ste](x, v * r[..., None])
    return 0.5 * r ** 2, s * r[..., None], np.einsum("...mn,...m->...n", Z, g)


def expected_coarse_grad(ste: str, v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray,
                         samples: int, rng: np.random.Generator,
                         chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo :math:`E_Z[\tilde g_w]` over ``samples`` draws of ``Z``: ``(mean, standard error)`` per entry."""
    if samples < 2:
        raise ValueError(f"need samples ≥ 2 for a standard error, got samples={samples}")
    m, n = np.shape(v)[-1], np.shape(w)[-1]
    total, total_sq, done = np.zeros(n), np.zeros(n), 0
    while done < samples:
        b = min(chunk, samples - done)
        g = sample_loss_and_grads(v, w, v_star, w_star, rng.standard_normal((b, m, n)), ste)[2]
        total += g.sum(0)
        total_sq += (g ** 2).sum(0)
        done += b
    mean = total / samples
    var = (total_sq - samples * mean ** 2) / (samples - 1)
    return mean, np.sqrt(np.maximum(var, 0.0) / samples)


def coarse_grad_closed_form(ste: str, v: np.ndarray, w: np.ndarray, v_star: np.ndarray,
                            w_star: np.ndarray) -> np.ndarray:
    r""":math:`E_Z[\tilde g_w]` in closed form for ``ste`` (module docstring); broadcasts over leading axes."""
    if ste not in STES:
        raise ValueError(f"unknown STE {ste!r}; the STEs are {list(STES)}")
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    return _coarse(ste, v, w, v_star, w_star)


def _coarse(ste: str, v, w, v_star, w_star) -> np.ndarray:
    norm, w_hat, cos, sin, _, _ = _geometry(w, w_star)
    vv, vs = (v * v).sum(-1), v @ v_star
    sv, ss = v.sum(-1), v_star.sum()
    if ste == "identity":
        return (vv[..., None] * w_hat - vs[..., None] * w_star) / _SQ2PI
    if ste == "relu":
        return ((vv + sv ** 2 - sv * ss)[..., None] * w_hat - vs[..., None] * w_star) / (2.0 * _SQ2PI)
    s = 1.0 / norm
    phi0, phis = 1.0 / _SQ2PI, np.exp(-0.5 * s ** 2) / _SQ2PI
    with np.errstate(divide="ignore", invalid="ignore"):
        sin_safe = np.maximum(sin, 1e-300)
        big = ndtr(s / sin_safe) - 0.5
        cot_term = ndtr(s * cos / sin_safe)
    ab = (phi0 - phis)  # α = β = ab · ŵ
    gamma_hat, gamma_star = 0.5 * phi0 - phis * cot_term, big / _SQ2PI
    coef_hat = ab * (vv + 0.5 * (sv ** 2 - vv) - 0.5 * (sv * ss - vs)) - vs * gamma_hat
    return coef_hat[..., None] * w_hat - (vs * gamma_star)[..., None] * w_star


def spurious_local_min(v_star: np.ndarray, w_star: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    r"""The stationary point :math:`v = -v^* + \tfrac{2(1^\top v^*)}{m+1}1`, :math:`w = -w^*` (:math:`\theta = \pi`);
    third output: whether it is a local minimum (:math:`v^\top v^* < 0`)."""
    v_star, w_star = np.asarray(v_star, dtype=np.float64), np.asarray(w_star, dtype=np.float64)
    v = -v_star + 2.0 * v_star.sum() / (v_star.size + 1) * np.ones_like(v_star)
    return v, -w_star, bool(v @ v_star < 0)


def coarse_gradient_descent(ste: str, v0: np.ndarray, w0: np.ndarray, v_star: np.ndarray, w_star: np.ndarray,
                            *, lr: float = 0.1, steps: int = 2000,
                            advance: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    r"""Population coarse gradient descent :math:`v \leftarrow v - \eta\nabla_v f`,
    :math:`w \leftarrow w - \eta E[\tilde g_w]` (closed forms), for a batch of starts ``v0 [S, m]``, ``w0 [S, n]``.

    Single vectors ``v0 [m]``, ``w0 [n]`` are one start.  Returns final ``v, w``, ``loss [steps+1, S]``
    (:math:`f` along the path), ``theta [steps+1, S]``, ``w_norm [steps+1, S]`` (:math:`\|w\|`) and
    ``cos [steps, S]`` (cosine of :math:`E[\tilde g_w]` with :math:`\nabla_w f` before each step; NaN where
    :math:`\nabla_w f = 0`).  ``ValueError`` if an iterate hits :math:`w = 0`.
    """
    if not (lr > 0 and steps >= 0):
        raise ValueError(f"need lr > 0 and steps ≥ 0, got lr={lr!r}, steps={steps!r}")
    v, w = np.atleast_2d(np.array(v0, dtype=np.float64)), np.atleast_2d(np.array(w0, dtype=np.float64))
    if v.ndim != 2 or v.shape[:-1] != w.shape[:-1]:
        raise ValueError(f"v0 and w0 must be [S, m] and [S, n] (or [m] and [n]) with the same S, "
                         f"got shapes {np.shape(v0)}, {np.shape(w0)}")
    coarse_grad_closed_form(ste, v, w, v_star, w_star)  # validates ste and the rest
    shape = (steps + 1, len(v))
    loss, theta, w_norm, cos = np.empty(shape), np.empty(shape), np.empty(shape), np.empty((steps, len(v)))
    for t in range(steps + 1):
        loss[t] = population_loss(v, w, v_star, w_star)
        geo = _geometry(w, w_star)
        w_norm[t], theta[t] = geo[0], geo[4]
        if t == steps:
            break
        gv, gw = population_grad(v, w, v_star, w_star)
        cg = _coarse(ste, v, w, v_star, w_star)
        cos[t] = cosine(cg, gw)
        v, w = v - lr * gv, w - lr * cg
        if advance is not None:
            advance(1)
    return {"v": v, "w": w, "loss": loss, "theta": theta, "w_norm": w_norm, "cos": cos}


def _teacher(rng: np.random.Generator, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``v* ~ N(0, I_m)``, ``w*`` uniform on the sphere, redrawn until the spurious local minimum exists."""
    while True:
        v_star, w_star = rng.standard_normal(m), rng.standard_normal(n)
        w_star /= np.linalg.norm(w_star)
        if spurious_local_min(v_star, w_star)[2]:
            return v_star, w_star


def _stats(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    return {"mean": float(x.mean()), "min": float(x.min()), "median": float(np.median(x)),
            "frac_positive": float((x > 0).mean()), "count": int(x.size)}


def run(out: Path, *, seed: int = 0, quick: bool = False, progress: bool = True) -> dict:
    """Run the study into ``out`` (module docstring): writes report.json, report.md and four PNGs.
    ``ValueError`` unless ``seed`` is an integer ``>= 0`` (not a bool)."""
    out, seed = Path(out), check_seed(seed)
    rng = np.random.default_rng(seed)
    m, n, lr = 20, 10, 0.1
    starts, steps, n_random, mc_points, mc_samples, n_spur, spur_steps = (
        (12, 300, 200, 2, 2000, 8, 200) if quick else (200, 2000, 5000, 4, 40000, 50, 1000))
    v_star, w_star = _teacher(rng, m, n)
    f0 = float(population_loss(np.zeros(m), w_star, v_star, w_star))
    tol = 1e-3 * f0
    cfg = {"m": m, "n": n, "lr": lr, "starts": starts, "steps": steps, "random_points": n_random,
           "mc_points": mc_points, "mc_samples": mc_samples, "spurious_starts": n_spur,
           "spurious_steps": spur_steps, "success_tol": tol, "f0": f0, "seed": seed, "quick": quick,
           "gradient": "population (closed-form expected coarse gradient)"}

    # 1. closed-form expected coarse gradient vs Monte Carlo
    mc = {}
    pts_v, pts_w = rng.standard_normal((mc_points, m)), rng.standard_normal((mc_points, n))
    with progress_bar(len(STES) * mc_points, "yin: Monte Carlo checks", enabled=progress) as advance:
        for ste in STES:
            z = []
            for v, w in zip(pts_v, pts_w):
                mean, se = expected_coarse_grad(ste, v, w, v_star, w_star, mc_samples, rng)
                z.append(np.max(z_score(mean - coarse_grad_closed_form(ste, v, w, v_star, w_star), se, atol=1e-12)))
                advance(1)
            mc[ste] = {"max_abs_z": float(max(z))}

    # 2. cosine with the true gradient at random (v, w)
    rv, rw = rng.standard_normal((n_random, m)), rng.standard_normal((n_random, n))
    true_w = population_grad(rv, rw, v_star, w_star)[1]
    random_cos = {ste: _stats(cosine(coarse_grad_closed_form(ste, rv, rw, v_star, w_star), true_w))
                  for ste in STES}

    # 3. coarse gradient descent from random starts; 4. near the spurious local minimum
    v0, w0 = rng.standard_normal((starts, m)), rng.standard_normal((starts, n))
    v_loc, w_loc, _ = spurious_local_min(v_star, w_star)
    sv0 = v_loc + 0.01 * rng.standard_normal((n_spur, m))
    sw0 = w_loc + 0.01 * rng.standard_normal((n_spur, n))
    f_loc = float(population_loss(v_loc, w_loc, v_star, w_star))
    runs, spur, descent = {}, {}, {}
    with progress_bar(len(STES) * (steps + spur_steps), "yin: coarse gradient descent", enabled=progress) as adv:
        for ste in STES:
            r = coarse_gradient_descent(ste, v0, w0, v_star, w_star, lr=lr, steps=steps, advance=adv)
            s = coarse_gradient_descent(ste, sv0, sw0, v_star, w_star, lr=lr, steps=spur_steps, advance=adv)
            runs[ste], spur[ste] = r, s
            final = r["loss"][-1]
            descent[ste] = {
                "successes": int((final < tol).sum()),
                "spurious": int(((final >= tol) & (r["theta"][-1] > math.pi / 2)).sum()),
                "median_final_loss": float(np.median(final)),
                "trajectory_cos": _stats(r["cos"].ravel()),
                "trajectory_cos_median_first": float(np.nanmedian(r["cos"][0])),
            }
            below = s["theta"] < math.pi / 2
            spur[ste] = {
                "escaped": int(below.any(0).sum()),
                "median_crossings": float(np.median((below[1:] != below[:-1]).sum(0))),
                "median_min_w_norm": float(np.median(s["w_norm"].min(0))),
                "final_v_distance": float(np.median(np.linalg.norm(s["v"] - v_loc, axis=1))),
                "max_loss_increase": float((s["loss"].max(0) - s["loss"][0]).max()),
                "median_final_loss": float(np.median(s["loss"][-1])),
                "coarse_grad_norm_at_min": float(np.linalg.norm(
                    coarse_grad_closed_form(ste, v_loc, w_loc, v_star, w_star))),
                "_loss": s["loss"], "_theta": s["theta"],
            }
    data = {"config": cfg, "f_spurious": f_loc, "monte_carlo": mc, "random_cos": random_cos,
            "descent": descent,
            "spurious": {k: {a: b for a, b in d.items() if not a.startswith("_")} for k, d in spur.items()}}
    pngs = _plot(out, runs, spur, data)
    data["plots"] = pngs
    return write_report(out, data, _markdown(data))


def _plot(out: Path, runs: dict, spur: dict, data: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = ["cosine_trajectory.png", "success_rate.png", "loss_curves.png", "spurious_minimum.png"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for ste, r in runs.items():
        c = r["cos"]
        ok = np.isfinite(c).any(1)
        steps = np.arange(len(c))[ok]
        q = np.nanpercentile(c[ok], [10, 50, 90], axis=1)
        ax.plot(steps, q[1], label=ste)
        ax.fill_between(steps, q[0], q[2], alpha=0.2)
    ax.set(xlabel="step", ylabel="cos(E coarse grad_w, grad_w f)", xscale="symlog",
           title="cosine along the trajectories (median, 10–90%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / names[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    stes = list(runs)
    total = data["config"]["starts"]
    ax.bar(stes, [data["descent"][s]["successes"] / total for s in stes], label="global minimum")
    ax.bar(stes, [data["descent"][s]["spurious"] / total for s in stes],
           bottom=[data["descent"][s]["successes"] / total for s in stes], label="θ > π/2, not converged")
    ax.set(ylabel="fraction of starts", ylim=(0, 1), title="coarse gradient descent outcomes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / names[1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for ste, r in runs.items():
        ax.plot(np.median(r["loss"], axis=1), label=ste)
    ax.axhline(data["config"]["success_tol"], color="gray", ls=":", label="success tolerance")
    ax.set(xlabel="step", ylabel="population loss f (median over starts)", yscale="log", title="loss curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / names[2], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ste, s in spur.items():
        axes[0].plot(s["_loss"][:, 0], label=ste, lw=1)
        axes[1].plot(s["_theta"][:, 0], label=ste, lw=1)
    axes[0].set(xlabel="step", ylabel="f", yscale="log", title="one start near the spurious minimum")
    axes[1].set(xlabel="step", ylabel="θ(w, w*)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / names[3], dpi=100)
    plt.close(fig)
    return names


def _markdown(d: dict) -> str:
    c = d["config"]
    rows = "\n".join(
        f"| {s} | {d['descent'][s]['successes']}/{c['starts']} | {d['descent'][s]['spurious']}/{c['starts']} "
        f"| {d['random_cos'][s]['mean']:.3f} | {d['random_cos'][s]['min']:.3f} "
        f"| {d['descent'][s]['trajectory_cos']['median']:.3f} | {d['descent'][s]['trajectory_cos']['min']:.3f} "
        f"| {d['spurious'][s]['escaped']}/{c['spurious_starts']} | {d['spurious'][s]['coarse_grad_norm_at_min']:.3g} "
        f"| {d['monte_carlo'][s]['max_abs_z']:.2f} |" for s in STES)
    verdicts = []
    for s in STES:
        verdicts.append(f"- {s} STE reached the global minimum in {d['descent'][s]['successes']}/{c['starts']} "
                        f"starts; its expected coarse gradient had a positive cosine with the true gradient at "
                        f"{100 * d['random_cos'][s]['frac_positive']:.1f}% of the random points.")
    for s in STES:
        sp = d["spurious"][s]
        kind = "unstable" if sp["escaped"] > 0 or sp["max_loss_increase"] > 1e-9 else "stable"
        verdicts.append(f"- Near the spurious local minimum the {s} STE is {kind}: it reached θ < π/2 "
                        f"in {sp['escaped']}/{c['spurious_starts']} perturbed starts (median "
                        f"{sp['median_crossings']:g} crossings of θ = π/2; min ‖w‖ along the path median "
                        f"{sp['median_min_w_norm']:.3g}), the loss rose by up to "
                        f"{sp['max_loss_increase']:.3g} above its start, and v ended at median distance "
                        f"{sp['final_v_distance']:.3g} from the minimum's v; the expected coarse gradient there "
                        f"has norm {sp['coarse_grad_norm_at_min']:.3g}.")
    worst = max(d["monte_carlo"].values(), key=lambda x: x["max_abs_z"])["max_abs_z"]
    verdicts.append(f"- The closed-form expected coarse gradients agree with Monte Carlo "
                    f"({c['mc_samples']} samples) to within {worst:.2f} standard errors.")
    header = ("| STE | global min | θ > π/2, not converged | mean cos (random) | min cos (random) "
              "| median cos (trajectory) | min cos (trajectory) | θ < π/2 reached from spurious min "
              "| ‖E g̃_w‖ at spurious min | MC max |z| |")
    return f"""# Yin et al. (2019): coarse gradients of STEs

One hidden layer with binary activation, y = vᵀσ(Zw), σ(x) = 1[x > 0], Z ∈ ℝ^{{{c['m']}×{c['n']}}} Gaussian,
a random teacher (v*, w*). Coarse gradient descent uses the closed-form expected (population) coarse gradient in w
and the true gradient in v, step {c['lr']}, {c['steps']} steps from {c['starts']} random starts. Success: final
population loss < {c['success_tol']:.3g} (10⁻³ f(0, w*)). The spurious local minimum (θ = π) has loss
{d['f_spurious']:.3g}; {c['spurious_starts']} starts perturbed from it (σ = 0.01) run {c['spurious_steps']} steps.

{header}
|---|---|---|---|---|---|---|---|---|---|
{rows}

{chr(10).join(verdicts)}

![cosine along the trajectories](cosine_trajectory.png)
![success rate](success_rate.png)
![loss curves](loss_curves.png)
![near the spurious minimum](spurious_minimum.png)
"""
