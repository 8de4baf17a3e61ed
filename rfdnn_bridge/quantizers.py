"""Forward quantizers (docs/math.md §5; the paper's Section 7.1) and DoReFa's.

All functions take numpy arrays or torch tensors (any float dtype, CPU or
GPU; written against the array API) and return the same kind, dtype and
shape.  They are *forward* maps only: the pseudo-gradients live in
:mod:`rfdnn_bridge.backward_rules` and :mod:`rfdnn_bridge.estimators`.

Rounding rule
-------------
``round`` is **round-half-to-even** (``numpy.round`` and ``torch.round``
both).  The one tie that matters: at ``k = 1`` and ``x = 0``,
``Qk`` gives ``2·round(½) − 1 = −1`` while ``Q1 = sign_pm1`` gives ``+1``.

Zero tensors
------------
``Qk`` and DoReFa's weight quantizer divide by ``max|x|`` (resp.
``max|tanh x|``).  When that maximum is 0 it is replaced by 1, so a zero
tensor is quantized exactly like the zeros inside a nonzero tensor (each entry
goes to the midpoint ``r = ½`` — for ``Qk`` that is ``−1`` at ``k = 1`` by the
tie rule and ``1/(2^k − 1)`` for ``k ≥ 2``).  No NaN is produced.
"""

from __future__ import annotations

import math
import numbers

from array_api_compat import array_namespace, is_torch_array

from .backward_rules import safe_max_abs

__all__ = [
    "check_bits",
    "check_bit_width",
    "max_bits",
    "sign_pm1",
    "q_k",
    "quantize_k",
    "dorefa_weights",
    "dorefa_activations",
    "magnitude_sign",
    "magnitude_scale",
]


def check_bits(k, name: str = "k") -> int:
    """Return ``k`` as an ``int`` if it is an integer ≥ 1, else raise ``ValueError`` naming it."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or int(k) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={k!r}")
    return int(k)


def sign_pm1(x):
    """Q1 (P-37): ``sign(x) ∈ {−1, +1}`` with ``sign(0) = +1`` (also ``−0.0 → +1``); NaN stays NaN."""
    xp = array_namespace(x)
    s = xp.sign(x)
    return xp.where(s == 0, 1.0, s)


def max_bits(dtype, xp) -> int:
    """The largest k whose 2^k levels a floating ``dtype`` holds exactly: the integers
    0 … 2^k − 1 that ``q_k`` rounds to are exact iff k ≤ the significand's bits p
    (p = 11 for float16, 8 for bfloat16, 24 for float32, 53 for float64)."""
    return int(round(-math.log2(float(xp.finfo(dtype).eps)))) + 1


def check_bit_width(k, name: str = "k") -> int:
    """``k`` as an ``int`` if it is a bit width some floating dtype holds: 1 ≤ k ≤ 53 (float64's
    significand; a narrower dtype is checked where it is used, :func:`q_k`)."""
    k = check_bits(k, name)
    if k > 53:
        raise ValueError(f"{name}={k!r}: no floating dtype holds 2^{k} levels exactly (float64: {name} <= 53)")
    return k


def q_k(r, k: int):
    """DoReFa's ``q_k(r) = round((2^k − 1) r) / (2^k − 1)`` (round half to even), for ``r ∈ [0, 1]``.

    Refuses k above :func:`max_bits` of ``r``'s dtype: there (2^k − 1)·r is no longer an exact
    integer, or overflows (float16 with k = 16 gives inf, float32 with k = 128 NaN)."""
    xp = array_namespace(r)
    k = check_bits(k)
    top = max_bits(r.dtype, xp)
    if k > top:
        raise ValueError(
            f"k={k} bits need 2^{k} levels, more than {r.dtype} holds exactly (at most k={top}); "
            f"use k <= {top} or compute in a wider dtype"
        )
    n = float(2**k - 1)
    return xp.round(r * n) / n


def quantize_k(x, k: int):
    """Qk (P-38): ``2/(2^k − 1) · round((2^k − 1)(x/(2 max|x|) + ½)) − 1``.

    ``max|x|`` is over the whole tensor (0 replaced by 1, see the module
    docstring); round half to even.  Output levels: the ``2^k`` values
    ``−1 + 2j/(2^k − 1)``, ``j = 0 … 2^k − 1``.
    """
    k = check_bits(k)
    return 2.0 * q_k(x / (2.0 * safe_max_abs(x)) + 0.5, k) - 1.0


def dorefa_weights(x, k: int):
    """DoReFa weight quantizer (Zhou et al. 2016).

    * ``k = 1``: ``mean|x| · sign(x)`` (``sign(0) = +1``; the mean over the whole tensor);
    * ``k ≥ 2``: ``2 q_k(tanh x / (2 max|tanh x|) + ½) − 1`` — ``2^k`` levels in ``[−1, 1]``.
    """
    k = check_bits(k)
    xp = array_namespace(x)
    if k == 1:
        return xp.mean(xp.abs(x)) * sign_pm1(x)
    t = xp.tanh(x)
    return 2.0 * q_k(t / (2.0 * safe_max_abs(t)) + 0.5, k) - 1.0


def dorefa_activations(x, k: int):
    """DoReFa activation quantizer: ``q_k(clip(x, 0, 1))`` — ``2^k`` levels in ``[0, 1]``."""
    k = check_bits(k)
    xp = array_namespace(x)
    return q_k(xp.clip(x, 0.0, 1.0), k)


def magnitude_scale(W):
    """``α = mean|W|`` per output channel, over all dimensions but the first (``α = |W|`` for a 1-D
    ``W``), ``keepdims`` so that it broadcasts against ``W``; detached for torch tensors."""
    xp = array_namespace(W)
    if W.ndim < 1:
        raise ValueError(f"magnitude_sign needs W with at least one dimension, got W.ndim={W.ndim}")
    a = xp.abs(W)
    if is_torch_array(W):
        a = a.detach()
    return xp.mean(a, axis=tuple(range(1, W.ndim)), keepdims=True) if W.ndim > 1 else a


def magnitude_sign(W):
    """XNOR-style scaled sign: ``α · sign(W)``, ``α = mean|W|`` per output channel.

    The mean runs over all dimensions but the first (``W`` of shape
    ``[out, …]``; a 1-D ``W`` gives ``α = |W|`` elementwise).  For torch
    tensors ``α`` is detached: no gradient flows through it (:func:`magnitude_scale`).
    """
    return magnitude_scale(W) * sign_pm1(W)
