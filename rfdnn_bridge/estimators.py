"""The straight-through estimator family (docs/estimators/index.md) as torch modules.

Every estimator is a small :class:`Estimator` (a ``torch.nn.Module``) with a
quantized forward and a custom backward: ``forward(x)`` goes through one
``torch.autograd.Function`` whose backward calls ``self.backward_rule(x, g)``,
and every ``backward_rule`` is a function of :mod:`rfdnn_bridge.backward_rules`
(written once against the array API, so the numpy reference and the torch
backward are the same formula).

Registry::

    est = get_estimator("reste", epochs=200)      # by name, with parameters
    get_estimator(est) is est                     # instances pass through
    list_estimators()                             # the accepted names (aliases included)

Policies (tested in ``tests/rfdnn_bridge/test_estimators.py``)
--------------------------------------------------------------
* **NaN in the incoming gradient**: propagates where the rule passes
  gradient (``g`` is multiplied by the pseudo-derivative) and becomes exactly 0
  where the rule is identically zero (gates are ``where``, as torch's own
  ``hardtanh``/``relu`` backward) — see :mod:`rfdnn_bridge.backward_rules`.
* **sign(0) = +1** for every sign-type forward (Q1 of docs/math.md §5).
* **Parameters** are validated at construction: bit widths must be integers
  ≥ 1, scales (``c``, ``beta``, ``s``, ``t``, ``m``, ``o``…) finite and > 0;
  the ``ValueError`` names the parameter and its value.
* The backward reads the estimator's parameters at backward time (schedules
  change them only in ``on_epoch_end`` / ``on_step``, between iterations).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping

import torch

from . import backward_rules as R
from .checks import positive
from .quantizers import check_bit_width, dorefa_activations, dorefa_weights, magnitude_scale, magnitude_sign, sign_pm1

__all__ = [
    "Estimator",
    "register_estimator",
    "get_estimator",
    "list_estimators",
    "IdentitySTE",
    "ClippedSTE",
    "DoReFaWeights",
    "DoReFaActivations",
    "ApproxSign",
    "SwishSign",
    "MagnitudeSign",
    "ReSTE",
    "YinIdentity",
    "YinReLU",
    "YinClippedReLU",
    "StochasticBinary",
    "MirrorTanh",
    "EDE",
    "RBNNSign",
    "TernarySTE",
    "ProgressiveSign",
    "log_anneal",
]

_REGISTRY: dict[str, type] = {}
_ALIASES = {"ste": "identity", "ste_tern": "ternary", "irnet": "ede"}


class _EstimatorFunction(torch.autograd.Function):
    """Quantized forward ``est.quantize(x)``; backward ``est.backward_rule(x, g)``."""

    @staticmethod
    def forward(ctx, x, est):
        ctx.est = est
        ctx.save_for_backward(x)
        return est.quantize(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return ctx.est.backward_rule(x, g), None


class Estimator(torch.nn.Module):
    """Base class: a forward quantizer plus a backward rule (a pseudo-gradient).

    Attributes
    ----------
    name : str
        The registry name.
    bits : int
        Bits of the forward output (1 for the sign type).
    latent_clip : float or None
        The recipe's latent-weight bound ``c`` (clip the latent weights to
        ``[−c, c]`` after each optimizer step), ``None`` if the recipe has none.
        Every estimator accepts ``latent_clip=`` to override it.

    Subclasses implement :meth:`quantize` (the forward values, may depend on
    ``self.training``) and :meth:`backward_rule`; :meth:`forward` wires them
    into one ``torch.autograd.Function``.
    """

    name: str = "estimator"
    bits: int = 1
    #: False for the activation-only estimators (binarized ReLU, DoReFa activations): not a weight method
    for_weights: bool = True
    latent_clip: float | None = None

    def __init__(self, latent_clip: float | None | str = "default", *, default_clip: float | None = None):
        super().__init__()
        if isinstance(latent_clip, str) and latent_clip == "default":
            self.latent_clip = default_clip
        else:
            self.latent_clip = None if latent_clip is None else positive("latent_clip", latent_clip)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """The forward values (no autograd)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantized forward with the custom backward :meth:`backward_rule`."""
        return _EstimatorFunction.apply(x, self)

    def backward_rule(self, x, grad):
        """The pseudo-gradient that flows to ``x`` given ``grad = ∂L/∂Q(x)`` (numpy or torch)."""
        raise NotImplementedError

    def surrogate(self, x):
        """The smooth function whose derivative the backward is, where one exists; else ``None``."""
        return None

    def on_epoch_end(self, epoch: int) -> None:
        """Hook for per-epoch schedules (no-op by default)."""

    def on_step(self) -> None:
        """Hook for per-iteration schedules (no-op by default)."""

    def _params(self) -> dict:
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._params().items())


class _Scheduled:
    """Mixin of estimators whose schedule changes attributes during training (:meth:`on_step`,
    :meth:`on_epoch_end`): the attributes named in ``SCHEDULE`` are saved by ``state_dict()``
    (torch's ``get_extra_state``), so that a user's own checkpoint of the model keeps them."""

    SCHEDULE: tuple[str, ...] = ()

    def get_extra_state(self) -> dict:
        """The schedule's current values, saved by ``state_dict()``."""
        return {k: getattr(self, k) for k in self.SCHEDULE}

    def set_extra_state(self, state: Any) -> None:
        """Restore the schedule saved by :meth:`get_extra_state`; a state of another estimator is refused."""
        if not isinstance(state, Mapping) or set(state) != set(self.SCHEDULE):
            raise ValueError(f"{type(self).__name__}: the saved schedule {state!r} does not hold this "
                             f"estimator's {list(self.SCHEDULE)}")
        for k, v in state.items():
            setattr(self, k, v)


def register_estimator(name: str):
    """Class decorator: register an :class:`Estimator` subclass under ``name`` (sets ``cls.name``)."""

    def deco(cls):
        if not (isinstance(cls, type) and issubclass(cls, Estimator)):
            raise TypeError(f"register_estimator({name!r}) needs an Estimator subclass, got {cls!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def list_estimators(aliases: bool = True) -> list[str]:
    """The names :func:`get_estimator` accepts, sorted: every registered estimator and, with
    ``aliases=True`` (default), the other names of some of them (``"ste"`` for ``"identity"``).
    Pass ``aliases=False`` to iterate over the distinct estimators once each."""
    return sorted({*_REGISTRY, *(_ALIASES if aliases else ())})


def get_estimator(name_or_estimator, **params) -> Estimator:
    """An :class:`Estimator` by registry name (built with ``params``); an instance is returned as is.

    Raises ``ValueError`` for an unknown name (listing the known ones) or when
    ``params`` are given together with an instance.
    """
    if isinstance(name_or_estimator, Estimator):
        if params:
            raise ValueError(
                f"parameters {sorted(params)} given with an Estimator instance; build it with them instead"
            )
        return name_or_estimator
    if not isinstance(name_or_estimator, str):
        raise TypeError(f"get_estimator needs a name or an Estimator, got {name_or_estimator!r}")
    key = _ALIASES.get(name_or_estimator, name_or_estimator)
    if key not in _REGISTRY:
        known = [f"{n} (alias of {_ALIASES[n]})" if n in _ALIASES else n for n in list_estimators()]
        raise ValueError(f"unknown estimator {name_or_estimator!r}; known: {', '.join(known)}")
    return _REGISTRY[key](**params)


# --------------------------------------------------------------------------- sign type


class _SignEstimator(Estimator):
    def quantize(self, x):
        return sign_pm1(x)


@register_estimator("identity")
class IdentitySTE(_SignEstimator):
    """Identity STE (Hinton's lectures 2012; Bengio et al. 2013; also ``"ste"``).

    Forward ``sign(x)`` (``sign(0) = +1``); backward ``g``. No parameters.
    """

    def backward_rule(self, x, grad):
        return R.identity_grad(x, grad)

    def surrogate(self, x):
        """``F(x) = x``."""
        return x


@register_estimator("clipped")
class ClippedSTE(_SignEstimator):
    """Clipped STE (BinaryConnect / BNN, Courbariaux et al. 2016, eq. 1).

    Forward ``sign(x)``; backward ``g · 1[|x| ≤ c]``. ``c = 1``; the recipe
    clips latent weights to ``[−c, c]`` (``latent_clip = c``).
    """

    def __init__(self, c: float = 1.0, latent_clip="default"):
        c = positive("c", c)
        super().__init__(latent_clip, default_clip=c)
        self.c = c

    def backward_rule(self, x, grad):
        return R.clipped_grad(x, grad, self.c)

    def surrogate(self, x):
        """``F(x) = clip(x, −c, c)`` (kinks at ``±c``)."""
        return torch.clamp(x, -self.c, self.c)

    def _params(self):
        return {"c": self.c}


@register_estimator("magnitude_sign")
class MagnitudeSign(Estimator):
    """Magnitude-aware sign (XNOR-Net-style scaling, Rastegari et al. 2016).

    Forward ``α · sign(W)`` with ``α = mean|W|`` per output channel (over all
    dimensions but 0; no gradient through ``α``); backward the clipped STE
    ``g · 1[|W| ≤ c]``, ``c = 1`` (``latent_clip = c``). ``g`` is passed
    unscaled by ``α`` (the table's rule); ``grad_scale=True`` multiplies it by
    α, as larq's ``magnitude_aware_sign`` (α a constant of the backward there too).
    """

    def __init__(self, c: float = 1.0, grad_scale: bool = False, latent_clip="default"):
        c = positive("c", c)
        super().__init__(latent_clip, default_clip=c)
        self.c = c
        self.grad_scale = bool(grad_scale)

    def quantize(self, x):
        return magnitude_sign(x)

    def backward_rule(self, x, grad):
        out = R.clipped_grad(x, grad, self.c)
        return magnitude_scale(x) * out if self.grad_scale else out

    def _params(self):
        return {"c": self.c, "grad_scale": self.grad_scale}


@register_estimator("approxsign")
class ApproxSign(_SignEstimator):
    """ApproxSign (Bi-Real Net, Liu et al. 2018).

    Forward ``sign(x)``; backward ``g · (2 − 2|x|) · 1[|x| ≤ 1]``, the
    derivative of the surrogate ``F(x) = 2x − x|x|`` on ``[−1, 1]``,
    ``sign(x)`` outside. No parameters.
    """

    def backward_rule(self, x, grad):
        return R.approxsign_grad(x, grad)

    def surrogate(self, x):
        c = torch.clamp(x, -1.0, 1.0)
        return 2.0 * c - c * c.abs()


@register_estimator("swishsign")
class SwishSign(_SignEstimator):
    """SwishSign (BNN+, Darabi et al. 2018).

    Forward ``sign(x)``; backward ``g · β(2 − βx·tanh(βx/2)) / (1 + cosh βx)``,
    the derivative of ``SS_β(x) = 2σ(βx)[1 + βx(1 − σ(βx))] − 1``. ``β = 5``.
    """

    def __init__(self, beta: float = 5.0, latent_clip="default"):
        super().__init__(latent_clip)
        self.beta = positive("beta", beta)

    def backward_rule(self, x, grad):
        return R.swishsign_grad(x, grad, self.beta)

    def surrogate(self, x):
        s = torch.sigmoid(self.beta * x)
        return 2.0 * s * (1.0 + self.beta * x * (1.0 - s)) - 1.0

    def _params(self):
        return {"beta": self.beta}


@register_estimator("reste")
class ReSTE(_Scheduled, _SignEstimator):
    """ReSTE (Wu et al., ICCV 2023).

    Forward ``sign(x)``, or ``α · sign(x)`` with ``α = mean|x|`` over the whole
    tensor with ``scale=True``.  Without the scale the backward is the rule below;
    with it, as in the authors' ``BinarizeConv2d``, the gradient also flows
    through α: ``α · rule(x, g) + sign(x)/N · Σ g · sign(x)``
    (:func:`rfdnn_bridge.backward_rules.scaled_sign_grad`).
    The rule (the seed table exactly)::

        g · m^{(1−o)/o}            for |x| ≤ m   (secant slope m^{1/o}/m; |x| = m is in this branch)
        g · (1/o) |x|^{(1−o)/o}    for m < |x| ≤ t
        0                          for |x| > t

    Parameters: ``o = 3`` (fixed), ``t = 1.5``, ``m = 0.1`` (``0 < m ≤ t``,
    ``o ≥ 1``).  With ``epochs=E`` the exponent follows
    ``o(e) = 1 + (o_end − 1)(1 − cos(π e / (2E)))``, ``o_end = 3``: ``o``
    starts at ``o(0) = 1`` and ``on_epoch_end(epoch)`` (0-based index of the
    epoch just finished) sets ``o = o(epoch + 1)`` (``e`` capped at ``E``).
    ``o = 1`` is the clipped STE with ``c = t``.
    """

    def __init__(self, o: float = 3.0, t: float = 1.5, m: float = 0.1, epochs: int | None = None,
                 o_end: float = 3.0, scale: bool = False, latent_clip="default"):
        super().__init__(latent_clip)
        self.t = positive("t", t)
        self.m = positive("m", m)
        if self.m > self.t:
            raise ValueError(f"m must satisfy 0 < m <= t, got m={m!r}, t={t!r}")
        self.o_end = positive("o_end", o_end)
        if self.o_end < 1:
            raise ValueError(f"o_end must be >= 1, got o_end={o_end!r}")
        epochs = _epochs(epochs)
        self.epochs = epochs
        self.scale = bool(scale)
        if epochs is None:
            self.o = positive("o", o)
            if self.o < 1:
                raise ValueError(f"o must be >= 1, got o={o!r}")
        else:
            self.o = self.schedule(0)

    SCHEDULE = ("o",)

    def schedule(self, e: float) -> float:
        """``o(e) = 1 + (o_end − 1)(1 − cos(π e / (2E)))``, ``e`` clipped to ``[0, E]``."""
        if self.epochs is None:
            return self.o
        e = min(max(float(e), 0.0), float(self.epochs))
        return 1.0 + (self.o_end - 1.0) * (1.0 - math.cos(math.pi * e / (2.0 * self.epochs)))

    def on_epoch_end(self, epoch: int) -> None:
        if self.epochs is not None:
            self.o = self.schedule(epoch + 1)

    def quantize(self, x):
        s = sign_pm1(x)
        return x.abs().mean() * s if self.scale else s

    def backward_rule(self, x, grad):
        rule = lambda x_, g_: R.reste_grad(x_, g_, self.o, self.t, self.m)  # noqa: E731
        return R.scaled_sign_grad(x, grad, rule) if self.scale else rule(x, grad)

    def surrogate(self, x):
        """``F(x) = x · m^{(1−o)/o}`` for ``|x| ≤ m``, ``sign(x) · min(|x|, t)^{1/o}`` beyond.

        ``F`` is continuous (both branches equal ``±m^{1/o}`` at ``|x| = m``; constant ``±t^{1/o}`` beyond
        ``t``) and ``∫_0^x backward_rule(u, 1) du = F(x)``: the backward is ``F′`` except at ``|x| = m``, where
        ``F′`` jumps from the secant slope ``m^{(1−o)/o}`` to ``m^{(1−o)/o}/o`` (a kink of ``F``, no jump of
        ``F``), and at ``|x| = t``, from ``t^{(1−o)/o}/o`` to 0.
        """
        a = x.abs()
        outer = torch.sign(x) * torch.clamp(a, self.m, self.t) ** (1.0 / self.o)  # clamp: no 0**(1/o) gradient
        return torch.where(a <= self.m, x * self.m ** ((1.0 - self.o) / self.o), outer)

    def _params(self):
        return {"o": self.o, "t": self.t, "m": self.m, "epochs": self.epochs, "scale": self.scale}


# --------------------------------------------------------------------------- DoReFa


@register_estimator("dorefa_w")
class DoReFaWeights(Estimator):
    """DoReFa weights (Zhou et al. 2016), ``k`` bits (default 1).

    Forward: ``k = 1``: ``mean|x| · sign(x)``; ``k ≥ 2``:
    ``2 q_k(tanh x / (2 max|tanh x|) + ½) − 1``
    (:func:`rfdnn_bridge.quantizers.dorefa_weights`).

    Backward, straight through the rounding:

    * ``k = 1``: ``g`` (the authors' code: identity through ``sign``, the scale
      ``mean|x|`` under ``stop_gradient``);
    * ``k ≥ 2``: the true derivative of the tanh transform,
      ``g (1 − tanh²x) / M`` with ``M = max|tanh x|``, plus — with
      ``through_max=True``, the default, as the authors' tensorpack code —
      the term through ``M`` (:func:`rfdnn_bridge.backward_rules.dorefa_w_grad`).
      ``through_max=False`` treats ``M`` as a constant.
    """

    def __init__(self, k: int = 1, through_max: bool = True, latent_clip="default"):
        super().__init__(latent_clip)
        self.k = check_bit_width(k)
        self.bits = self.k
        self.through_max = bool(through_max)

    def quantize(self, x):
        return dorefa_weights(x, self.k)

    def backward_rule(self, x, grad):
        if self.k == 1:
            return R.identity_grad(x, grad)
        return R.dorefa_w_grad(x, grad, self.through_max)

    def surrogate(self, x):
        """``tanh x / max|tanh x|`` (``k ≥ 2``; the max detached unless ``through_max``); ``None`` at ``k = 1``."""
        if self.k == 1:
            return None
        t = torch.tanh(x)
        M = R.safe_max_abs(t)
        return t / (M if self.through_max else M.detach())

    def _params(self):
        return {"k": self.k, "through_max": self.through_max}


@register_estimator("dorefa_a")
class DoReFaActivations(Estimator):
    """DoReFa activations (Zhou et al. 2016), ``k`` bits (default 2).

    Forward ``q_k(clip(x, 0, 1))`` (``2^k`` levels in ``[0, 1]``, round half
    to even); backward ``g · 1[0 ≤ x ≤ 1]``.
    """

    for_weights = False

    def __init__(self, k: int = 2, latent_clip="default"):
        super().__init__(latent_clip)
        self.k = check_bit_width(k)
        self.bits = self.k

    def quantize(self, x):
        return dorefa_activations(x, self.k)

    def backward_rule(self, x, grad):
        return R.dorefa_a_grad(x, grad)

    def _params(self):
        return {"k": self.k}


# --------------------------------------------------------------------------- Yin et al. 2019


class _BinaryReLU(Estimator):
    for_weights = False

    def quantize(self, x):
        return (x > 0).to(x.dtype)


@register_estimator("yin_identity")
class YinIdentity(_BinaryReLU):
    """Yin et al. 2019: forward ``σ(x) = 1[x > 0] ∈ {0, 1}``; backward ``g`` (identity STE)."""

    def backward_rule(self, x, grad):
        return R.yin_identity_grad(x, grad)


@register_estimator("yin_relu")
class YinReLU(_BinaryReLU):
    """Yin et al. 2019: forward ``1[x > 0]``; backward ``g · 1[x > 0]`` (ReLU STE)."""

    def backward_rule(self, x, grad):
        return R.yin_relu_grad(x, grad)


@register_estimator("yin_clipped_relu")
class YinClippedReLU(_BinaryReLU):
    """Yin et al. 2019: forward ``1[x > 0]``; backward ``g · 1[0 < x < 1]`` (clipped-ReLU STE)."""

    def backward_rule(self, x, grad):
        return R.yin_clipped_relu_grad(x, grad)


# --------------------------------------------------------------------------- stochastic / mirror


@register_estimator("stochastic_binary")
class StochasticBinary(Estimator):
    """Stochastic binary straight-through (Shekhovtsov & Yanush 2021).

    Forward in training: ``sign(x − z)``, ``z ~ logistic(0, s)`` (so
    ``P(+1) = σ(x/s)``), sampled with the optional ``torch.Generator``
    ``generator`` (on ``x``'s device).  In evaluation: ``sign(x)``
    (``eval_mode="sign"``, default) or the mean ``2σ(x/s) − 1``
    (``eval_mode="mean"``).  Backward ``g · 2σ′(x/s)/s``, the derivative of the
    expectation ``2σ(x/s) − 1 = tanh(x/(2s))`` (:meth:`surrogate`).
    ``s = 1``.
    """

    _EVAL_MODES = ("sign", "mean")

    def __init__(self, s: float = 1.0, eval_mode: str = "sign", generator: torch.Generator | None = None,
                 latent_clip="default"):
        super().__init__(latent_clip)
        self.s = positive("s", s)
        if eval_mode not in self._EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {self._EVAL_MODES}, got eval_mode={eval_mode!r}")
        self.eval_mode = eval_mode
        self.generator = generator

    def quantize(self, x):
        if not self.training:
            return sign_pm1(x) if self.eval_mode == "sign" else torch.tanh(x * (0.5 / self.s))
        work = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        u = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=work)
        z = self.s * torch.logit(u)
        return sign_pm1(x.to(work) - z).to(x.dtype)

    def backward_rule(self, x, grad):
        return R.stochastic_binary_grad(x, grad, self.s)

    def surrogate(self, x):
        return 2.0 * torch.sigmoid(x / self.s) - 1.0

    def _params(self):
        return {"s": self.s, "eval_mode": self.eval_mode}


@register_estimator("mirror_tanh")
class MirrorTanh(_Scheduled, Estimator):
    """Mirror-descent tanh (Ajanthan et al. 2021, "Mirror descent view for NN quantization").

    Forward in training ``u = tanh(β x̃)`` on the latent ``x̃``; in evaluation
    ``sign(x̃)``.  Backward ``∂L/∂u`` passed to ``x̃`` unchanged (no ``sech²``
    factor): with an SGD optimizer on ``x̃`` this is the mirror-descent step.
    ``β = 1`` grows ``×growth = 1.02`` every ``every = 200`` calls of
    :meth:`on_step` (one call per optimizer iteration).
    """

    every: int
    steps: int

    def __init__(self, beta: float = 1.0, growth: float = 1.02, every: int = 200, latent_clip="default"):
        super().__init__(latent_clip)
        self.beta = positive("beta", beta)
        self.beta0 = self.beta
        self.growth = positive("growth", growth)
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got every={every!r}")
        self.every = int(every)
        self.steps = 0

    SCHEDULE = ("beta", "steps")

    def on_step(self) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.beta *= self.growth

    def quantize(self, x):
        return torch.tanh(self.beta * x) if self.training else sign_pm1(x)

    def backward_rule(self, x, grad):
        return R.mirror_tanh_grad(x, grad)

    def _params(self):
        return {"beta": self.beta, "growth": self.growth, "every": self.every}


# --------------------------------------------------------------------------- annealed sign estimators
def log_anneal(e: float, epochs: int, t_min: float, t_max: float) -> float:
    """``t(e) = t_min · 10^{(e/E) · log10(t_max / t_min)}``: from ``t_min`` at ``e = 0`` to ``t_max``
    at ``e = E``, geometrically (IR-Net's and RBNN's schedule); ``e`` clipped to ``[0, E]``."""
    e = min(max(float(e), 0.0), float(epochs))
    return t_min * 10.0 ** ((e / epochs) * math.log10(t_max / t_min))


def _epochs(epochs) -> int | None:
    if epochs is None:
        return None
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1 or None, got epochs={epochs!r}")
    return int(epochs)


class _AnnealedSign(_Scheduled, _SignEstimator):
    """Sign forward; a backward ``k · F_t′(x)`` whose sharpness ``t`` grows from ``t_min`` to
    ``t_max`` over ``epochs`` (:func:`log_anneal`) with ``k = max(1/t, 1)``.  ``on_epoch_end(e)``
    sets ``t = t(e + 1)``.  Without ``epochs`` (``None``) ``t`` stays ``t_min``;
    :func:`rfdnn_bridge.experiments.train.build_model` passes the run's epochs."""

    SCHEDULE = ("t",)
    ANNEALED = True

    def __init__(self, t_min: float, t_max: float, epochs=None, latent_clip="default"):
        super().__init__(latent_clip)
        self.t_min, self.t_max = positive("t_min", t_min), positive("t_max", t_max)
        if self.t_max < self.t_min:
            raise ValueError(f"t_max must be >= t_min, got t_min={t_min!r}, t_max={t_max!r}")
        self.epochs = _epochs(epochs)
        self.t = self.t_min

    @property
    def k(self) -> float:
        return max(1.0 / self.t, 1.0)

    def on_epoch_end(self, epoch: int) -> None:
        if self.epochs is not None:
            self.t = log_anneal(epoch + 1, self.epochs, self.t_min, self.t_max)

    def _params(self):
        return {"t_min": self.t_min, "t_max": self.t_max, "epochs": self.epochs}


@register_estimator("ede")
class EDE(_AnnealedSign):
    """IR-Net's Error Decay Estimator (Qin et al., "Forward and Backward Information Retention for
    Accurate Binary Neural Networks", CVPR 2020).

    Forward ``sign(x)``; backward ``g · k t (1 − tanh²(t x))`` — the derivative of ``k tanh(t x)``
    — with ``t`` annealed from ``t_min = 0.1`` to ``t_max = 10`` and ``k = max(1/t, 1)``: early, an
    identity-like STE over a wide range (k t = 1 at x = 0); late, a sharp approximation of sign.
    (IR-Net's weight balancing and scaling are not part of the estimator.)
    """

    def __init__(self, t_min: float = 0.1, t_max: float = 10.0, epochs=None, latent_clip="default"):
        super().__init__(t_min, t_max, epochs, latent_clip)

    def backward_rule(self, x, grad):
        return R.ede_grad(x, grad, self.t, self.k)

    def surrogate(self, x):
        return self.k * torch.tanh(self.t * x)


@register_estimator("rbnn")
class RBNNSign(_AnnealedSign):
    """RBNN's training-aware sign approximation (Lin et al., "Rotated Binary Neural Network",
    NeurIPS 2020).

    Forward ``sign(x)``; backward ``g · k max(0, √2 t − t²|x|)``, the derivative of
    ``F(x) = k(√2 t x − t² x|x|/2)`` on ``|x| < √2/t`` (``k sign(x)`` beyond, where F is flat),
    ``t`` annealed from ``t_min = 0.01`` to ``t_max = 10``, ``k = max(1/t, 1)``.
    (RBNN's rotation of the weights is not part of the estimator.)
    """

    def __init__(self, t_min: float = 0.01, t_max: float = 10.0, epochs=None, latent_clip="default"):
        super().__init__(t_min, t_max, epochs, latent_clip)

    def backward_rule(self, x, grad):
        return R.rbnn_grad(x, grad, self.t, self.k)

    def surrogate(self, x):
        r = math.sqrt(2.0) / self.t
        c = torch.clamp(x, -r, r)
        return self.k * (math.sqrt(2.0) * self.t * c - 0.5 * self.t**2 * c * c.abs())


@register_estimator("ternary")
class TernarySTE(Estimator):
    """Ternary STE (larq's ``ste_tern``; the threshold rule of TWN, Li et al. 2016).

    Forward ``sign(x) · 1[|x| > Δ]`` ∈ {−1, 0, +1} with a fixed threshold ``Δ = threshold``
    (larq's default 0.05) or, with ``twn=True``, ``Δ = 0.7 · mean|x|`` over the whole tensor
    (Ternary Weight Networks); backward the clipped STE ``g · 1[|x| ≤ c]``, ``c = 1``
    (``latent_clip = c``).  Three levels: ``bits = 2``.
    """

    bits = 2

    def __init__(self, threshold: float = 0.05, twn: bool = False, c: float = 1.0, latent_clip="default"):
        c = positive("c", c)
        super().__init__(latent_clip, default_clip=c)
        self.threshold = positive("threshold", threshold)
        self.twn = bool(twn)
        self.c = c

    def delta(self, x):
        """The threshold Δ for ``x``."""
        return 0.7 * x.abs().mean() if self.twn else self.threshold

    def quantize(self, x):
        return torch.where(x.abs() > self.delta(x), sign_pm1(x), torch.zeros_like(x))

    def backward_rule(self, x, grad):
        return R.clipped_grad(x, grad, self.c)

    def _params(self):
        return {"threshold": self.threshold, "twn": self.twn, "c": self.c}


@register_estimator("progressive_sign")
class ProgressiveSign(_Scheduled, Estimator):
    """ProgressiveSign (bitorch, hpi-xnor): a forward that sharpens into sign during training.

    Training forward ``hardtanh(x / max(1 − T, 1e-7))`` with the temperature
    ``T = 1 − α^{−β·p}`` of the training progress ``p = e/E`` (α = 4, β = 10, bitorch's
    defaults): ``hardtanh(x)`` at the start, ≈ sign at the end; evaluation forward ``sign(x)``.
    Backward ``g`` straight through (as bitorch).  ``on_epoch_end(e)`` sets ``p = (e + 1)/E``;
    without ``epochs`` ``p`` stays 0.
    """

    SCHEDULE = ("progress",)
    ANNEALED = True

    def __init__(self, alpha: float = 4.0, beta: float = 10.0, epochs=None, latent_clip="default"):
        super().__init__(latent_clip)
        self.alpha, self.beta = positive("alpha", alpha), positive("beta", beta)
        self.epochs = _epochs(epochs)
        self.progress = 0.0

    @property
    def temperature(self) -> float:
        return 1.0 - self.alpha ** (-self.beta * self.progress)

    def on_epoch_end(self, epoch: int) -> None:
        if self.epochs is not None:
            self.progress = min(1.0, (epoch + 1) / self.epochs)

    def quantize(self, x):
        if not self.training:
            return sign_pm1(x)
        return torch.clamp(x / max(1.0 - self.temperature, 1e-7), -1.0, 1.0)

    def backward_rule(self, x, grad):
        return R.identity_grad(x, grad)

    def _params(self):
        return {"alpha": self.alpha, "beta": self.beta, "epochs": self.epochs}
