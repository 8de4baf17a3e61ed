"""Quantized layers built on the straight-through-estimator family (``rfdnn_bridge.estimators``).

* :class:`QuantLinear` / :class:`QuantConv2d` — drop-in subclasses of ``nn.Linear`` /
  ``nn.Conv2d``. The latent full-precision weight stays in ``.weight`` (so optimizers,
  ``state_dict`` and weight initialisation work unchanged); ``forward`` quantizes it with the
  *weight estimator* (quantized forward, the estimator's pseudo-gradient backward) and, when an
  *activation estimator* is given, quantizes the layer's input the same way, then calls
  ``F.linear`` / ``F.conv2d``. The bias is kept in full precision.
* :func:`quantize_model` — replaces every ``nn.Linear`` / ``nn.Conv2d`` of a model by its
  quantized counterpart (weights and bias copied), keeping the first and last such layer in full
  precision by default, as BinaryConnect / XNOR-Net / DoReFa / ReSTE do.
* :func:`clip_latent_weights`, :func:`step_end`, :func:`epoch_end` — the training-loop hooks:
  clamp latent weights to the estimator's ``latent_clip`` after ``optimizer.step()``, and forward
  the iteration / epoch schedules (ReSTE's exponent, mirror-descent β, …) to the estimators.
* :func:`model_summary` — a larq-style table: weight / activation bits, parameter counts and
  memory of every layer, and the compression ratio against float32.

Estimators are given by registry name (``"clipped"``, ``"reste"``, … see
``rfdnn_bridge.estimators.list_estimators()``), optionally with ``weight_params`` /
``activation_params`` passed to ``get_estimator``, or as an ``Estimator`` object. The estimators
are registered as sub-modules (``weight_quantizer``, ``input_quantizer``), so ``model.train()`` /
``model.eval()`` switch stochastic estimators between their training and evaluation forward, and
``model.to(device, dtype)`` moves any state they hold. Nothing here hard-codes a device or dtype.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence, cast

import torch
import torch.nn.functional as F
from torch import nn

from .estimators import get_estimator

__all__ = [
    "QuantLinear",
    "QuantConv2d",
    "QuantLayer",
    "quantize_model",
    "clip_latent_weights",
    "step_end",
    "epoch_end",
    "model_summary",
    "Summary",
    "SummaryRow",
]

FLOAT_BITS = 32

#: the padding modes of ``nn.Conv2d``
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def _resolve(spec, params: dict | None) -> nn.Module | None:
    """An estimator from a registry name or an object (``None`` means: no quantization)."""
    if spec is None:
        if params:
            raise ValueError("estimator parameters given without an estimator")
        return None
    if isinstance(spec, str):
        return get_estimator(spec, **(params or {}))
    if isinstance(spec, nn.Module):
        if params:
            raise ValueError("pass parameters either to the estimator object or as *_params, not both")
        return spec
    raise TypeError(f"an estimator must be a registry name, an Estimator or None, not {type(spec).__name__}")


def _bits(quantizer) -> int:
    return FLOAT_BITS if quantizer is None else int(getattr(quantizer, "bits", FLOAT_BITS))


class QuantLayer:
    """Mixin shared by :class:`QuantLinear` and :class:`QuantConv2d`.

    Attributes
    ----------
    weight_quantizer : Estimator or None
        Applied to the latent weight ``.weight`` in every forward (``None``: float weights).
    input_quantizer : Estimator or None
        Applied to the layer's input (``None``: float activations).
    """

    weight_quantizer: nn.Module | None
    input_quantizer: nn.Module | None
    weight: torch.Tensor  # the latent weight, from nn.Linear / nn.Conv2d

    def _init_quantizers(self, weights, activations, weight_params, activation_params) -> None:
        self.weight_quantizer = _resolve(weights, weight_params)
        self.input_quantizer = _resolve(activations, activation_params)

    # -- quantization ------------------------------------------------------------------------
    def quantized_weight(self) -> torch.Tensor:
        """The weight used in the forward pass (differentiable with the estimator's backward rule)."""
        return self.weight if self.weight_quantizer is None else self.weight_quantizer(self.weight)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_quantizer is None else self.input_quantizer(x)

    @property
    def weight_bits(self) -> int:
        """Bits per weight in the forward pass (32 for float weights)."""
        return _bits(self.weight_quantizer)

    @property
    def activation_bits(self) -> int:
        """Bits per input activation (32 when the input is not quantized)."""
        return _bits(self.input_quantizer)

    @property
    def latent_clip(self) -> float | None:
        """The weight estimator's latent clipping bound c (``None`` if its recipe has none)."""
        return None if self.weight_quantizer is None else getattr(self.weight_quantizer, "latent_clip", None)

    @torch.no_grad()
    def clip_latent_(self):
        """Clamp the latent weights to [−c, c], c = the estimator's ``latent_clip`` (no-op if None)."""
        c = self.latent_clip
        if c is not None:
            self.weight.clamp_(-float(c), float(c))
        return self

    def quantizers(self) -> list[nn.Module]:
        return [q for q in (self.weight_quantizer, self.input_quantizer) if q is not None]

    def _quant_repr(self) -> str:
        def name(q):
            return "None" if q is None else getattr(q, "name", type(q).__name__)

        return f"weights={name(self.weight_quantizer)}, activations={name(self.input_quantizer)}"


class QuantLinear(QuantLayer, nn.Linear):
    """``nn.Linear`` whose forward uses quantized weights (and optionally quantized inputs).

    ``QuantLinear(in_features, out_features, bias=True, *, weights="clipped", activations=None,
    weight_params=None, activation_params=None, device=None, dtype=None)``.
    ``.weight`` is the latent full-precision weight; the forward computes
    ``F.linear(A(x), W(weight), bias)`` with ``W`` / ``A`` the weight / activation estimators.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 weights="clipped", activations=None, weight_params: dict | None = None,
                 activation_params: dict | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_quantizers(weights, activations, weight_params, activation_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.quantize_input(x), self.quantized_weight(), self.bias)

    @classmethod
    def from_float(cls, module: nn.Linear, **quant) -> "QuantLinear":
        """A quantized copy of ``module`` (same shape, device, dtype; weight and bias copied)."""
        new = cls(module.in_features, module.out_features, bias=module.bias is not None,
                  device=module.weight.device, dtype=module.weight.dtype, **quant)
        _copy_params(module, new)
        return new

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


class QuantConv2d(QuantLayer, nn.Conv2d):
    """``nn.Conv2d`` whose forward uses quantized weights (and optionally quantized inputs).

    Same signature as ``nn.Conv2d`` plus the keyword-only ``weights``, ``activations``,
    ``weight_params``, ``activation_params``. Padding modes other than ``"zeros"`` pad the
    (quantized) input as ``nn.Conv2d`` does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: PaddingMode = "zeros", *,
                 weights="clipped", activations=None, weight_params: dict | None = None,
                 activation_params: dict | None = None, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode,
                         device=device, dtype=dtype)
        self._init_quantizers(weights, activations, weight_params, activation_params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantized_weight(), self.bias)

    @classmethod
    def from_float(cls, module: nn.Conv2d, **quant) -> "QuantConv2d":
        """A quantized copy of ``module`` (same hyper-parameters, device, dtype; parameters copied)."""
        new = cls(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                  padding=module.padding, dilation=module.dilation, groups=module.groups,
                  bias=module.bias is not None, padding_mode=cast(PaddingMode, module.padding_mode),
                  device=module.weight.device, dtype=module.weight.dtype, **quant)
        _copy_params(module, new)
        return new

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


@torch.no_grad()
def _copy_params(src: nn.Linear | nn.Conv2d, dst: nn.Linear | nn.Conv2d) -> None:
    dst.weight.copy_(src.weight)
    dst.weight.requires_grad_(src.weight.requires_grad)
    if src.bias is not None and dst.bias is not None:  # dst was built with bias=src.bias is not None
        dst.bias.copy_(src.bias)
        dst.bias.requires_grad_(src.bias.requires_grad)
    dst.train(src.training)


#: exact layer type -> its quantized class (subclasses, e.g. the quantized classes themselves, are not replaced)
_QUANT_OF: dict[type[nn.Module], type[QuantLinear] | type[QuantConv2d]] = {
    nn.Linear: QuantLinear,
    nn.Conv2d: QuantConv2d,
}


def _fresh(spec, index: int = 0):
    """Per-layer estimator: objects are deep-copied so layers never share schedule state.

    A copied ``torch.Generator`` (stochastic estimators) would give every layer the *same*
    noise; each copy gets its own generator, seeded ``initial_seed() + index`` (so a run
    stays reproducible from the one seed the user gave).
    """
    if not isinstance(spec, nn.Module):
        return spec
    est: Any = copy.deepcopy(spec)  # any estimator module; only stochastic ones have a generator
    gen = getattr(spec, "generator", None)
    if isinstance(gen, torch.Generator):
        own = torch.Generator(device=gen.device)
        own.manual_seed(gen.initial_seed() + index)
        est.generator = own
    return est


def quantize_model(model: nn.Module, weights="clipped", activations=None,
                   skip: str | Sequence[str] | None = "first_last", *,
                   weight_params: dict | None = None, activation_params: dict | None = None) -> nn.Module:
    """Replace every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` by :class:`QuantLinear` / :class:`QuantConv2d`.

    **In place**: the sub-modules of ``model`` are swapped (latent weights and biases copied
    from the float layers, same device and dtype, same train/eval mode); the model is also
    returned (a new module only when ``model`` is itself a single layer being replaced).

    Parameters
    ----------
    weights, activations, weight_params, activation_params
        As for :class:`QuantLinear`. An estimator *object* is deep-copied for each layer, so
        per-layer state and schedules are never shared.
    skip
        ``"first_last"`` (default) keeps the first and the last Linear/Conv2d layer — in
        ``model.named_modules()`` (registration) order — in full precision; a list of qualified
        module names (as in ``model.named_modules()``) keeps those layers, a container's name
        its whole subtree; ``None`` quantizes all. An unknown name raises ``KeyError``, a name
        with no Linear/Conv2d in it ``ValueError``.

    Only layers whose type is exactly ``nn.Linear`` / ``nn.Conv2d`` are replaced: subclasses
    (e.g. ``nn.MultiheadAttention``'s ``out_proj``, whose weight is read directly) and layers
    already quantized are left alone. Call the optimizer *after* quantizing (the parameters are
    new tensors).
    """
    named = list(model.named_modules(remove_duplicate=False))
    candidates: list[str] = []
    seen: set[int] = set()
    for name, m in named:
        if type(m) in _QUANT_OF and id(m) not in seen:
            seen.add(id(m))
            candidates.append(name)
    if skip is None:
        skipped: set[str] = set()
    elif isinstance(skip, str):
        if skip != "first_last":
            raise ValueError(f"skip must be 'first_last', a list of module names or None, not {skip!r}")
        skipped = {candidates[0], candidates[-1]} if candidates else set()
    else:
        skipped = set(skip)
        known = {name for name, _ in named}
        unknown = sorted(skipped - known)
        if unknown:
            raise KeyError(f"skip names not in the model: {unknown}")
        # a container name keeps its whole subtree; a name with no Linear/Conv2d inside is a mistake
        inside = {n: [c for c in candidates if c == n or c.startswith(n + ".") or n == ""] for n in skipped}
        empty = sorted(n for n, cs in inside.items() if not cs)
        if empty:
            raise ValueError(f"skip names with no nn.Linear/nn.Conv2d in them: {empty}; "
                             f"quantizable layers are {candidates}")
        skipped = {c for cs in inside.values() for c in cs}
    skipped_ids = {id(model.get_submodule(n)) for n in skipped}

    replaced: dict[int, nn.Module] = {}
    for name, m in named:
        if type(m) not in _QUANT_OF or id(m) in skipped_ids:
            continue
        if id(m) not in replaced:
            replaced[id(m)] = _QUANT_OF[type(m)].from_float(
                m, weights=_fresh(weights, 2 * len(replaced)), activations=_fresh(activations, 2 * len(replaced) + 1),
                weight_params=weight_params, activation_params=activation_params)
        new = replaced[id(m)]
        if name == "":
            return new
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
    return model


def _quant_layers(model: nn.Module) -> Iterable[QuantLayer]:
    return (m for m in model.modules() if isinstance(m, QuantLayer))


def _unique_quantizers(model: nn.Module) -> list[nn.Module]:
    out, seen = [], set()
    for layer in _quant_layers(model):
        for q in layer.quantizers():
            if id(q) not in seen:
                seen.add(id(q))
                out.append(q)
    return out


def clip_latent_weights(model: nn.Module) -> int:
    """Clamp the latent weights of every quantized layer to its estimator's ``latent_clip``.

    Call after each ``optimizer.step()``. Returns the number of layers that were clamped.
    """
    n = 0
    for layer in _quant_layers(model):
        if layer.latent_clip is not None:
            layer.clip_latent_()
            n += 1
    return n


def step_end(model: nn.Module) -> None:
    """Call ``on_step()`` once on every (distinct) estimator of the model — once per iteration."""
    for q in _unique_quantizers(model):
        on_step = getattr(q, "on_step", None)
        if on_step is not None:
            on_step()


def epoch_end(model: nn.Module, epoch: int) -> None:
    """Call ``on_epoch_end(epoch)`` once on every (distinct) estimator of the model."""
    for q in _unique_quantizers(model):
        on_epoch_end = getattr(q, "on_epoch_end", None)
        if on_epoch_end is not None:
            on_epoch_end(epoch)


# -- summary ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SummaryRow:
    """One layer of a :class:`Summary`.

    ``memory_bits``: quantized weights at ``weight_bits`` each, every other parameter (bias,
    batch-norm affine, float layers) at 32 bits; ``float_bits``: all parameters at 32 bits.
    """

    name: str
    type: str
    weight_bits: int
    activation_bits: int
    params: int
    quantized_params: int
    memory_bits: int
    float_bits: int


@dataclass(frozen=True)
class Summary:
    """Result of :func:`model_summary`; ``str(summary)`` is an aligned table."""

    rows: list[SummaryRow]

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def quantized_params(self) -> int:
        return sum(r.quantized_params for r in self.rows)

    @property
    def memory_bits(self) -> int:
        return sum(r.memory_bits for r in self.rows)

    @property
    def float_bits(self) -> int:
        return sum(r.float_bits for r in self.rows)

    @property
    def compression(self) -> float:
        """float32 memory / quantized memory (1.0 for a model without quantized weights)."""
        return self.float_bits / self.memory_bits if self.memory_bits else 1.0

    def __str__(self) -> str:
        head = ("Layer", "Type", "W bits", "A bits", "Params", "Memory (bits)", "Float32 (bits)")
        body = [(r.name, r.type, str(r.weight_bits), str(r.activation_bits), f"{r.params:,}",
                 f"{r.memory_bits:,}", f"{r.float_bits:,}") for r in self.rows]
        total = ("Total", "", "", "", f"{self.total_params:,}", f"{self.memory_bits:,}", f"{self.float_bits:,}")
        table = [head, *body, total]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        left = {0, 1}

        def fmt(row):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        rule = "-" * len(fmt(head))
        lines = [fmt(head), rule, *map(fmt, body), rule, fmt(total),
                 f"Quantized parameters: {self.quantized_params:,} of {self.total_params:,}",
                 f"Memory: {self.memory_bits / 8192:.2f} KiB vs {self.float_bits / 8192:.2f} KiB float32 "
                 f"(compression {self.compression:.2f}x)"]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))


def model_summary(model: nn.Module) -> Summary:
    """A larq-style summary of ``model``: one row per module that owns parameters (or quantizes).

    For a quantized layer the weight counts at the weight estimator's ``bits`` and its bias at
    32 bits; every other parameter counts at 32 bits. Buffers (batch-norm running statistics)
    are not counted. The per-channel scale of magnitude-aware estimators (``magnitude_sign``,
    DoReFa k = 1) is computed from the latent weights and is not counted either (it is
    out_channels floats per layer, negligible).
    """
    inside_quantizers = {id(sub) for layer in _quant_layers(model) for q in layer.quantizers()
                         for sub in q.modules()}
    rows = []
    for name, m in model.named_modules():
        if id(m) in inside_quantizers:
            continue  # an estimator's parameters, if any, are reported under its layer
        direct = list(m.named_parameters(recurse=False))
        is_quant = isinstance(m, QuantLayer)
        if not direct and not is_quant:
            continue
        params = sum(p.numel() for _, p in direct)
        wbits = m.weight_bits if is_quant else FLOAT_BITS
        abits = m.activation_bits if is_quant else FLOAT_BITS
        qparams = m.weight.numel() if is_quant and m.weight_quantizer is not None else 0
        if is_quant:  # parameters held by the layer's estimators (learnable scales, if any)
            extra = sum(p.numel() for q in m.quantizers() for p in q.parameters())
            params += extra
        memory = qparams * wbits + (params - qparams) * FLOAT_BITS
        rows.append(SummaryRow(name=name or type(m).__name__, type=type(m).__name__, weight_bits=wbits,
                               activation_bits=abits, params=params, quantized_params=qparams,
                               memory_bits=memory, float_bits=params * FLOAT_BITS))
    return Summary(rows)
