"""Bop, the latent-free optimizer for binary weights, and a larq-style ``CaseOptimizer``.

* :class:`Bop` — Helwegen et al. 2019, "Latent weights do not exist: rethinking binarized
  neural network optimization" (NeurIPS 2019, arXiv:1906.02107), as a ``torch.optim.Optimizer``
  with larq's defaults. It keeps an exponential moving average of each weight's gradient and
  flips a binary weight when that average is strong enough and agrees in sign with the weight.
* :class:`CaseOptimizer` — drives several optimizers over disjoint parameter sets of one model
  (Bop on the binary weights, Adam on everything else), like ``larq.optimizers.CaseOptimizer``.
* :func:`is_binary_weight` — the predicate that picks the ``.weight`` of 1-bit quantized layers.
* :func:`bop_optimizer` — the usual combination, ``CaseOptimizer`` with Bop on the binary weights
  and a default optimizer (Adam, lr 1e-3) on the rest.

Typical use, after quantizing the model with a sign-type weight estimator::

    model = quantize_model(model, weights="ste")
    opt = bop_optimizer(model, threshold=1e-6, gamma=1e-3)
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

Learning-rate schedulers: :class:`CaseOptimizer` is not a ``torch.optim.Optimizer`` (torch's
schedulers reject it with ``TypeError``, and Bop's groups have no ``lr`` to schedule anyway);
attach a scheduler to the sub-optimizer it is meant for, e.g. ``StepLR(opt.optimizers[1], 10)``
— ``CaseOptimizer.step`` calls each sub-optimizer's own ``step``, so the scheduler sees them.
Bop's ``gamma`` and ``threshold`` live in its ``param_groups`` and can be changed between steps.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from .layers import QuantLayer
from .quantizers import sign_pm1

__all__ = ["Bop", "CaseOptimizer", "is_binary_weight", "bop_optimizer", "Predicate", "Factory"]

Predicate = Callable[[str, nn.Parameter, nn.Module], bool]
"""``predicate(name, param, module) -> bool``: ``name`` qualified as in ``model.named_parameters()``."""
Factory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
"""``factory(params) -> Optimizer``: builds the optimizer for the parameters a case claimed."""


def _check_hyper(name: str, value: Any, *, low: float, low_inclusive: bool, high: float = math.inf) -> None:
    """``value`` a real number (not bool, not NaN) in the interval; ``ValueError`` naming it otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (value >= low if low_inclusive else value > low) and value <= high
    if not ok:
        rng = f"{'[' if low_inclusive else '('}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a number in {rng}, got {name}={value!r}")


class Bop(torch.optim.Optimizer):
    r"""Binary optimizer (Bop) of Helwegen et al. 2019.

    For every parameter ``w`` with gradient ``g`` (per parameter group ``threshold`` τ and
    adaptivity rate ``gamma`` γ), each :meth:`step` does, elementwise::

        m ← (1 − γ) · m + γ · g                      (m starts at 0)
        w ← −w   where |m| > τ and sign(m) = sign(w)  (i.e. m · sign(w) > τ)

    A flip is what a gradient-descent step would push towards: the averaged gradient says the
    loss decreases when ``w`` moves towards the opposite sign. There is no learning rate and no
    latent weight magnitude — the weight *is* its sign.

    **Parameters must hold ±1 values.** On the first step of each parameter (when its state is
    created) Bop binarizes it in place, ``w ← sign(w)`` with ``sign(0) = +1`` (see
    :meth:`binarize_`, which can also be called up front so that the forward pass before the
    first step already sees ±1). Sign-type weight estimators (``"ste"``, ``"clipped"``, …) then
    forward the weight unchanged; their backward, evaluated at ``|w| = 1``, hands Bop the
    gradient with respect to the binary weight (``"clipped"``'s gate ``|w| ≤ 1`` passes it).

    The property ``last_flips`` gives, per parameter group, the flips of the last :meth:`step`
    (``flipped``, ``total``, ``fraction``; counted on the device, read lazily).

    The state of a parameter is its moving average ``"m"``; ``state_dict`` /
    ``load_state_dict`` are the standard ``Optimizer`` ones. Sparse gradients are rejected.

    Parameters
    ----------
    params
        Parameters or parameter-group dicts, as for any ``torch.optim.Optimizer``.
    threshold : float, default 1e-8
        τ ≥ 0; larger values make flips rarer (larq's default); ``math.inf`` never flips.
    gamma : float, default 1e-4
        γ in (0, 1]; the rate of the moving average (larq's default). γ = 1 means m = g.

    References
    ----------
    K. Helwegen, J. Widdicombe, L. Geiger, Z. Liu, K.-T. Cheng, R. Nusselder, "Latent Weights
    Do Not Exist: Rethinking Binarized Neural Network Optimization", NeurIPS 2019.
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict], threshold: float = 1e-8,
                 gamma: float = 1e-4) -> None:
        self._flip_counts: list[tuple[torch.Tensor | int, int]] = []
        super().__init__(params, dict(threshold=threshold, gamma=gamma))

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """As ``Optimizer.add_param_group``; also validates the group's ``threshold`` and ``gamma``."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        _check_hyper("threshold", group["threshold"], low=0.0, low_inclusive=True)
        _check_hyper("gamma", group["gamma"], low=0.0, low_inclusive=False, high=1.0)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_flip_counts", [])  # not pickled: diagnostics of the last step only

    @staticmethod
    @torch.no_grad()
    def binarize_(params: Iterable[torch.Tensor]) -> None:
        """Set every tensor of ``params`` to ``sign(w)`` in place, ``sign(0) = +1`` (also ``−0.0``)."""
        for p in params:
            p.copy_(sign_pm1(p))

    @property
    def last_flips(self) -> list[dict[str, float]]:
        """Per group: ``flipped``, ``total`` and ``fraction`` of the last :meth:`step` (empty before the first)."""
        out = []
        for flipped, total in self._flip_counts:
            n = int(flipped)
            out.append({"flipped": n, "total": total, "fraction": n / total if total else 0.0})
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Bop update of every parameter that has a gradient; returns ``closure()`` if given.

        The closure (re-evaluating the loss and calling ``backward``) runs under
        ``torch.enable_grad()`` before the update.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        counts: list[tuple[torch.Tensor | int, int]] = []
        for group in self.param_groups:
            threshold, gamma = group["threshold"], group["gamma"]
            flipped: torch.Tensor | int = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Bop does not support sparse gradients")
                state = self.state[p]
                if not state:
                    self.binarize_([p])
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["m"]
                m.mul_(1.0 - gamma).add_(p.grad, alpha=gamma)
                flip = m * sign_pm1(p) > threshold
                p.copy_(torch.where(flip, -p, p))
                flipped = flipped + flip.sum()
            counts.append((flipped, sum(p.numel() for p in group["params"])))
        self._flip_counts = counts
        return loss


class CaseOptimizer:
    """Several optimizers over disjoint parameter sets of one model (cf. larq's ``CaseOptimizer``).

    ``CaseOptimizer(model, (predicate, factory), ..., default=None)``. Every parameter of
    ``model`` (frozen ones included, shared ones once) is offered, in ``model.named_modules()``
    order, to the cases in order; the first ``predicate(name, param, module)`` that returns true
    claims it (``module`` is the module that owns the parameter directly). Parameters no case
    claims go to ``default``. Each case's (and the default's) claimed parameters are then given,
    as one list, to its ``factory``, which must return a ``torch.optim.Optimizer``.

    Raises ``ValueError`` when a parameter is unclaimed and ``default`` is ``None`` (the message
    lists the unclaimed names) and when a case claims no parameter at all (an empty case is
    almost always a mistake: the model was quantized after the optimizer was built, or the
    predicate does not match what it should). A default that receives nothing is simply not
    built.

    Attributes
    ----------
    optimizers : list of torch.optim.Optimizer
        The cases' optimizers, in case order, then the default's (if built).
    param_names : list of list of str
        The qualified names of the parameters each optimizer received, aligned with ``optimizers``.
    """

    def __init__(self, model: nn.Module, *cases: tuple[Predicate, Factory], default: Factory | None = None) -> None:
        for i, case in enumerate(cases):
            if not (isinstance(case, tuple) and len(case) == 2 and all(callable(c) for c in case)):
                raise TypeError(f"case {i} must be a (predicate, factory) pair of callables, got {case!r}")
        if default is not None and not callable(default):
            raise TypeError(f"default must be an optimizer factory or None, got {default!r}")

        claimed: list[list[tuple[str, nn.Parameter]]] = [[] for _ in cases]
        unclaimed: list[tuple[str, nn.Parameter]] = []
        seen: set[int] = set()
        for mod_name, module in model.named_modules():
            for name, param in module.named_parameters(prefix=mod_name, recurse=False):
                if id(param) in seen:
                    continue
                seen.add(id(param))
                for i, (predicate, _) in enumerate(cases):
                    if predicate(name, param, module):
                        claimed[i].append((name, param))
                        break
                else:
                    unclaimed.append((name, param))

        empty = [i for i, c in enumerate(claimed) if not c]
        if empty:
            raise ValueError(f"case(s) {empty} claimed no parameter of the model "
                             f"(predicates: {[_name(cases[i][0]) for i in empty]})")
        if unclaimed and default is None:
            raise ValueError(f"parameters claimed by no case and no default optimizer given: "
                             f"{[n for n, _ in unclaimed]}")

        self._labels: list[str] = [f"case {i} ({_name(p)})" for i, (p, _) in enumerate(cases)]
        builds: list[tuple[Factory, list[tuple[str, nn.Parameter]]]] = [(f, c) for (_, f), c in zip(cases, claimed)]
        if unclaimed and default is not None:  # unclaimed parameters without a default are refused above
            self._labels.append("default")
            builds.append((default, unclaimed))
        self.optimizers: list[torch.optim.Optimizer] = []
        self.param_names: list[list[str]] = []
        for label, (factory, named) in zip(self._labels, builds):
            opt = factory([p for _, p in named])
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError(f"the factory of {label} returned {type(opt).__name__}, not a torch.optim.Optimizer")
            self.optimizers.append(opt)
            self.param_names.append([n for n, _ in named])

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """All sub-optimizers' parameter groups, concatenated (the same dicts: edits take effect)."""
        return [g for opt in self.optimizers for g in opt.param_groups]

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Evaluate ``closure`` once (under ``torch.enable_grad()``), then step every sub-optimizer.

        The sub-optimizers are stepped without a closure. Returns the closure's loss (or ``None``).
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """``zero_grad`` on every sub-optimizer."""
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> list[dict[str, Any]]:
        """The sub-optimizers' state dicts, in the order of :attr:`optimizers`."""
        return [opt.state_dict() for opt in self.optimizers]

    def load_state_dict(self, state_dicts: Sequence[dict[str, Any]]) -> None:
        """Load a list produced by :meth:`state_dict` of a ``CaseOptimizer`` built the same way."""
        if len(state_dicts) != len(self.optimizers):
            raise ValueError(f"expected {len(self.optimizers)} optimizer state dicts, got {len(state_dicts)}")
        for opt, sd in zip(self.optimizers, state_dicts):
            opt.load_state_dict(sd)

    def __repr__(self) -> str:
        parts = []
        for label, names, opt in zip(self._labels, self.param_names, self.optimizers):
            body = repr(opt).replace("\n", "\n    ")
            parts.append(f"  {label}: {len(names)} parameter tensor(s)\n    {body}")
        return "CaseOptimizer(\n" + "\n".join(parts) + "\n)"


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def is_binary_weight(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """True for the ``.weight`` of a quantized layer (:class:`~rfdnn_bridge.layers.QuantLayer`) with 1-bit weights."""
    return isinstance(module, QuantLayer) and param is module.weight and module.weight_bits == 1


def _adam(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


def bop_optimizer(model: nn.Module, *, threshold: float = 1e-8, gamma: float = 1e-4,
                  default: Factory | None = _adam) -> CaseOptimizer:
    """A :class:`CaseOptimizer`: :class:`Bop` on the binary weights (:func:`is_binary_weight`), ``default`` on the rest.

    ``default`` defaults to ``torch.optim.Adam(params, lr=1e-3)``; ``None`` requires every
    parameter to be a binary weight. Build it *after* ``quantize_model`` (which creates new
    parameters). larq's defaults (τ = 1e-8, γ = 1e-4) suit long trainings; short ones want a
    larger γ (e.g. 1e-3 … 1e-2).
    """

    def bop(params: list[nn.Parameter]) -> Bop:
        return Bop(params, threshold=threshold, gamma=gamma)

    return CaseOptimizer(model, (is_binary_weight, bop), default=default)
