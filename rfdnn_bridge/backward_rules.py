"""The production backward rules of the straight-through estimator family, written once.

Every function takes the latent input ``x`` and the incoming gradient ``g``
(``∂L/∂Q(x)``) and returns the pseudo-gradient that flows to ``x``.  They are
written against the array API (``array_api_compat.array_namespace``), so the
same formula runs on numpy arrays (the reference) and on torch tensors (the
``torch.autograd.Function`` backward of :mod:`rfdnn_bridge.estimators` calls
exactly these functions).  Each rule is a single elementwise expression
(``dorefa_w_grad`` with ``through_max=True`` adds one reduction).

Conventions shared by all rules
-------------------------------
* Gates use ``where``, not multiplication by an indicator: where a rule is
  identically zero (``|x| > c`` for the clipped STE, …) the output is exactly
  0 even if ``g`` is NaN or infinite there — the behaviour of torch's own
  ``hardtanh`` / ``relu`` backward.  Where a gate is open, a NaN (or inf) in
  ``g`` propagates (it is multiplied by the pseudo-derivative), so NaNs are
  never hidden where the estimator does pass gradient.
* The output has the dtype and device of ``g`` / ``x`` (python-float
  parameters do not promote).
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace

__all__ = [
    "identity_grad",
    "clipped_grad",
    "dorefa_w_grad",
    "dorefa_a_grad",
    "approxsign_grad",
    "swishsign_grad",
    "reste_grad",
    "yin_identity_grad",
    "yin_relu_grad",
    "yin_clipped_relu_grad",
    "stochastic_binary_grad",
    "mirror_tanh_grad",
    "ede_grad",
    "rbnn_grad",
    "scaled_sign_grad",
    "safe_max_abs",
]


def identity_grad(x, g):
    """Identity STE (Hinton; Bengio et al. 2013): ``g``."""
    return g


def clipped_grad(x, g, c: float = 1.0):
    """Clipped STE (Courbariaux et al. 2016, eq. 1): ``g · 1[|x| ≤ c]`` (closed at ``|x| = c``)."""
    xp = array_namespace(x, g)
    return xp.where(xp.abs(x) <= c, g, 0.0)


def safe_max_abs(t):
    """``max|t|`` over the whole tensor, with 0 replaced by 1 (no division by zero).

    A zero tensor is then quantized like the exact zeros of a nonzero tensor
    (every entry maps to the midpoint ``r = ½``).
    """
    xp = array_namespace(t)
    m = xp.max(xp.abs(t))
    return xp.where(m > 0, m, 1.0)


def dorefa_w_grad(x, g, through_max: bool = True):
    """DoReFa weights, k ≥ 2 (Zhou et al. 2016): straight through the rounding.

    With ``t = tanh x``, ``M = max|t|`` (:func:`safe_max_abs`) the forward is
    ``2 q_k(t/(2M) + ½) − 1``; treating ``q_k`` as the identity,

    * ``through_max=False``: ``g (1 − t²) / M``;
    * ``through_max=True`` (the authors' tensorpack code, which differentiates
      ``tf.reduce_max``): additionally
      ``− share · sign(t)(1 − t²) · Σ_j g_j t_j / M²`` where ``share`` spreads
      the max's derivative evenly over the entries attaining it (as
      ``tf.reduce_max`` and ``torch.amax`` do).
    """
    xp = array_namespace(x, g)
    t = xp.tanh(x)
    d = 1.0 - t * t
    M = safe_max_abs(t)
    out = g * d / M
    if through_max:
        a = xp.abs(t)
        hit = xp.astype(a == xp.max(a), x.dtype)
        share = hit / xp.sum(hit)
        out = out - share * xp.sign(t) * d * (xp.sum(g * t) / (M * M))
    return out


def dorefa_a_grad(x, g):
    """DoReFa activations: ``g · 1[0 ≤ x ≤ 1]`` (the derivative of the clip, closed interval)."""
    xp = array_namespace(x, g)
    return xp.where((x >= 0) & (x <= 1), g, 0.0)


def approxsign_grad(x, g):
    """ApproxSign (Bi-Real Net, Liu et al. 2018): ``g · (2 − 2|x|) · 1[|x| ≤ 1]``."""
    xp = array_namespace(x, g)
    a = xp.abs(x)
    return xp.where(a <= 1, g * (2.0 - 2.0 * a), 0.0)


def swishsign_grad(x, g, beta: float = 5.0):
    """SwishSign (BNN+, Darabi et al.): ``g · β(2 − βx·tanh(βx/2)) / (1 + cosh βx)``.

    ``βx`` is clipped to ``[−700, 700]`` first: beyond it the true value is
    below 1e-300 and the unclipped expression would give ``inf/inf = NaN``.
    """
    xp = array_namespace(x, g)
    y = xp.clip(beta * x, -700.0, 700.0)
    return g * (beta * (2.0 - y * xp.tanh(0.5 * y)) / (1.0 + xp.cosh(y)))


def reste_grad(x, g, o: float = 3.0, t: float = 1.5, m: float = 0.1):
    """ReSTE (Wu et al., ICCV 2023), following the seed table exactly.

    ``g · m^{(1−o)/o}`` for ``|x| ≤ m`` (the secant slope ``m^{1/o}/m`` of the
    surrogate ``|x|^{1/o}`` over ``[0, m]``, as in the authors' code; the
    boundary ``|x| = m`` belongs to this branch, so the rule jumps there),
    ``g · (1/o)|x|^{(1−o)/o}`` for ``m < |x| ≤ t``, and 0 for ``|x| > t``.
    With ``o = 1`` this is the clipped STE with ``c = t``.
    """
    xp = array_namespace(x, g)
    a = xp.abs(x)
    p = (1.0 - o) / o
    inner = xp.where(a <= m, m**p, (1.0 / o) * xp.maximum(a, m) ** p)  # maximum: no 0**negative
    return xp.where(a <= t, g * inner, 0.0)


def yin_identity_grad(x, g):
    """Yin et al. 2019, identity STE for the binarized ReLU: ``g``."""
    return g


def yin_relu_grad(x, g):
    """Yin et al. 2019, ReLU STE: ``g · 1[x > 0]``."""
    xp = array_namespace(x, g)
    return xp.where(x > 0, g, 0.0)


def yin_clipped_relu_grad(x, g):
    """Yin et al. 2019, clipped-ReLU STE: ``g · 1[0 < x < 1]`` (open interval)."""
    xp = array_namespace(x, g)
    return xp.where((x > 0) & (x < 1), g, 0.0)


def stochastic_binary_grad(x, g, s: float = 1.0):
    """Stochastic binary ST (Shekhovtsov & Yanush 2021): ``g · 2σ′(x/s)/s``.

    Written as ``g · (2/s) e/(1 + e)²`` with ``e = exp(−|x|/s)`` (the same
    function: ``σ′(z) = e^{−|z|}/(1 + e^{−|z|})²``), which underflows to 0
    instead of overflowing for large ``|x|``.
    """
    xp = array_namespace(x, g)
    e = xp.exp(xp.abs(x) * (-1.0 / s))
    return g * ((2.0 / s) * e / ((1.0 + e) * (1.0 + e)))


def mirror_tanh_grad(x, g):
    """Mirror-descent tanh (Ajanthan et al. 2021): ``∂L/∂u`` goes to the latent ``x`` unchanged (no sech²)."""
    return g



def ede_grad(x, g, t: float, k: float):
    """IR-Net's Error Decay Estimator (Qin et al., CVPR 2020): ``g · k t (1 − tanh²(t x))``, the
    derivative of ``k tanh(t x)``; the authors anneal ``t`` from 0.1 to 10 with ``k = max(1/t, 1)``."""
    xp = array_namespace(x, g)
    e = xp.exp(xp.abs(x) * (-2.0 * t))  # 1 − tanh²(z) = 4e/(1 + e)², e = exp(−2|z|): no cancellation, no overflow
    return g * ((4.0 * k * t) * e / ((1.0 + e) * (1.0 + e)))


def rbnn_grad(x, g, t: float, k: float):
    """RBNN's training-aware approximation (Lin et al., NeurIPS 2020): ``g · k max(0, √2 t − t²|x|)``,
    the derivative of ``k(√2 t x − t² x|x|/2)`` on ``|x| < √2/t`` (``k sign(x)`` beyond)."""
    xp = array_namespace(x, g)
    slope = xp.maximum(math.sqrt(2.0) * t - (t * t) * xp.abs(x), 0.0)
    return xp.where(slope > 0, g * (k * slope), 0.0)


def scaled_sign_grad(x, g, rule, axes=None):
    """The exact gradient of ``α(x) · q(x)`` with ``α = mean|x|`` over ``axes`` (all: ``None``) and
    ``q`` a sign whose pseudo-derivative is ``rule(x, g)``::

        α · rule(x, g) + sign(x)/N · Σ g · sign(x)      (Σ, N over the same axes)

    (ReSTE's ``BinarizeConv2d`` with the scale, ``axes=None``).  ``sign(0) = +1`` as in the forward.
    """
    xp = array_namespace(x, g)
    one = xp.ones_like(g)
    s = xp.where(x >= 0, one, -one)  # in g's dtype (a python-scalar where would give the default dtype)
    if axes is None:
        alpha = xp.mean(xp.abs(x))
        back = xp.mean(g * s)
    else:
        alpha = xp.mean(xp.abs(x), axis=axes, keepdims=True)
        back = xp.mean(g * s, axis=axes, keepdims=True)
    return alpha * rule(x, g) + s * back
