r"""Optimizers with the LNE natural gradient and the paper's discrete Ricci flow (docs/math.md §2, §4).

* :class:`RFDNN` — a ``torch.optim.Optimizer``: SGD (momentum, Nesterov, weight
  decay) on the LNE natural gradient g(w)⁻¹ ∂L of every parameter of its
  ``lne=True`` groups, and with ``flow=True`` the paper's Algorithm 2 (the
  translated passes, the discrete flow's regulariser N and its gate).
* :class:`LNEPreconditioner` — the same transform in front of *any*
  ``torch.optim`` optimizer (Adam, SGD, …).
* :func:`rfdnn_closure`, :func:`translate` — the closure Algorithm 2 needs; the passes themselves,
  N, its gate and its gradient live in :mod:`rfdnn_bridge.algorithm2` (this module is SGD on the
  transformed gradients).

The order of operations, per parameter and step (one convention for both classes)::

    v  = ∂L/∂w                      the straight-through gradient (all-reduced under DDP)
    v += α ∇_w N                    flow=True: the regulariser's gradient (n_grad)
    u  = g(w)⁻¹ v                   the LNE transform at the current latent w (lne_grad modes)
    u *= 1[N ≤ ε]                   flow=True: the gate (P-36), per group or element-wise
    d  = u + weight_decay · w       weight decay is NOT preconditioned (an L2 pull on w)
    d  = momentum / Nesterov on d   (torch.optim.SGD's rule: the buffer holds transformed steps)
    w ← w − lr · d
    w ← clamp(w, −clip, clip)       latent clipping, after the update

Weight decay is added after the transform so that the metric acts on the
loss's gradient only (decoupled from the metric, as AdamW decouples it from
the second moments); momentum accumulates transformed gradients, so the
metric of each step is the one at that step's weights.  Latent clipping
bounds s: with |w_i| ≤ c, s ≤ n·tanh²(τc), so a fixed τ < artanh(1/√n)/c keeps
g positive definite for ever; otherwise clipping parks weights at ±c, where s
stays large, and the next step's check fails (fixed τ) or τ is re-solved
(``tau="auto"``).

τ schedule (``tau="auto"``): per group, τ is solved so that s = ``target_s``
(:func:`rfdnn_bridge.lne_grad.auto_tau`) at the first step and then every
``tau_every`` steps — not every step — and held in between; it is re-solved
early when the held τ gives s > ``s_max`` (the weights grew).  A fixed τ is
checked every step: s ≥ 1 raises an error naming the parameter, s and the
largest admissible τ.

Algorithm 2 (``flow=True``; docs/math.md §4, :mod:`rfdnn_bridge.discrete_flow`).
``step(closure)`` calls ``closure(shift, create_graph)`` once on the batch
(the main pass, whose gradient is the update's v) and once per distinct
translation among k1, k2 (rows) and j1, j2 (columns), ``shifts=((k1, k2),
(j1, j2))`` (default ((1, −1), (1, −1)): central differences, 5 passes; a
zero translation reuses the main pass, so ((1, 0), (1, 0)) takes 3).  For each
translation a: the tentative step w|a = w − lr_t ∂L(x|a)/∂w (plain gradient,
lr_t = ``tentative_lr`` or the group's lr) and t_a = tanh(τ w|a); then the
residual N of the flow equation (proxy ``"paper"`` = P-32 or ``"ricci"`` =
−2 ``flow_eta`` Ric), its gate, and its gradient.  The paper leaves these
open; our choices, all switchable:

* how N's gradient reaches w (``n_grad``): ``"direct"`` (default) through
  t_a = tanh(τ (w − lr_t G_a)) with the translated gradients G_a and the
  previous step's state held fixed — O(n·m²), no extra pass; ``"double"`` also
  through G_a (double backward: ``closure(create_graph=True)``); ``"none"``
  (Algorithm 2 as printed: N only gates);
* the loss is L + α N (``alpha``, default 0.1) — a guess: the paper gives no α;
* the gate threshold ``eps`` (default ∞: the gate is open): the paper gives
  no ε, and N's scale depends on lr, τ and n — calibrate it on the N values in
  :attr:`RFDNN.diagnostics` of a warm-up, or use ``eps="auto"``: per group, N ≤
  ``eps_factor`` (default 3) × the running mean of N (an exponential moving average, decay 0.99), which
  closes the gate on the steps whose residual is unusually large; ``gate="group"`` (the paper) or
  ``"element"`` (weight i passes iff its row of the residual has N_i ≤ ε/n);
* the metric of the update is g at the current weights (as without flow), the
  state kept between steps is x_prev = τ w|k1 (O(n) per group).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, Optional, Sequence, Union

import torch
from torch import nn

from lnegeom.lne import rowdot

from .algorithm2 import N_GRADS, FlowInfo, flow_passes, frozen_running_stats, rfdnn_closure, takes_shift, translate
from .checks import finite_at_least
from .discrete_flow import GATES, PROXIES, check_shifts
from .lne_grad import (
    GROUPS,
    LNEMode,
    as_groups,
    get_mode,
    group_param_names,
    resolve_tau,
    scheduled_tau,
    working_dtype,
)

__all__ = [
    "RFDNN", "LNEPreconditioner", "OPTIMIZER_WIDE", "rfdnn_closure", "translate", "lne_param_groups",
    "frozen_running_stats", "N_GRADS",
]

#: the per-group options of the LNE transform (shared by RFDNN and LNEPreconditioner)
LNE_DEFAULTS: dict[str, Any] = dict(
    lne=True, mode="exact", tau="auto", group="tensor", target_s=0.5, tau_every=100, s_max=0.95, eta=0.1,
    eta_relative=True,
)


# --------------------------------------------------------------------------- helpers
def lne_param_groups(model: nn.Module, which: str = "quantized", **options: Any) -> list[dict[str, Any]]:
    """Two named param groups of ``model``: the metric's parameters (``lne=True``) and the rest
    (``lne=False``, plain SGD) — pass the result to :class:`RFDNN` in place of ``model.parameters()``.

    ``which``: ``"quantized"`` (default: the latent ``.weight`` of every quantized layer of
    :mod:`rfdnn_bridge.layers`, the paper's layer-wise metric), ``"weights"`` (every parameter
    with ≥ 2 dimensions: conv and linear weights) or ``"all"``.  ``options`` (``mode``, ``tau``,
    ``lr``, …) go into the ``lne=True`` group.  A group with no parameter is left out.
    """
    from .layers import QuantLayer

    choices = ("quantized", "weights", "all")
    if which not in choices:
        raise ValueError(f"unknown which={which!r}; the choices are {list(choices)}")
    owner = {id(m.weight): m for m in model.modules() if isinstance(m, QuantLayer) and m.weight_quantizer is not None}
    lne: tuple[list[nn.Parameter], list[str]] = ([], [])
    rest: tuple[list[nn.Parameter], list[str]] = ([], [])
    for name, p in model.named_parameters():
        take = (which == "all") or (which == "weights" and p.ndim >= 2) or (which == "quantized" and id(p) in owner)
        target = lne if take else rest
        target[0].append(p)
        target[1].append(name)
    if which == "quantized" and not lne[0]:
        raise ValueError(
            "lne_param_groups(which='quantized'): the model has no quantized layer "
            "(rfdnn_bridge.layers.quantize_model); use which='weights' or which='all'"
        )
    groups = [{"params": lne[0], "param_names": lne[1], "lne": True, **options}]
    if rest[0]:
        groups.append({"params": rest[0], "param_names": rest[1], "lne": False})
    return groups


#: keys a param group may hold besides the optimizer's options (torch's schedulers add initial_lr)
_GROUP_EXTRA_KEYS = frozenset({"params", "param_names", "name", "initial_lr"})
#: options of RFDNN that hold for the whole optimizer, not per group
OPTIMIZER_WIDE = ("flow", "shifts", "n_grad", "diagnostics")


def _check_group_keys(group: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Refuse keys of a param group that the optimizer would not read (they would be ignored)."""
    wide = sorted(k for k in group if k in OPTIMIZER_WIDE)
    if wide:
        raise ValueError(
            f"{', '.join(wide)} {'is an option' if len(wide) == 1 else 'are options'} of the whole optimizer, "
            f"not of a param group: pass {', '.join(f'{k}=...' for k in wide)} to RFDNN(...) itself"
        )
    unknown = sorted(k for k in group if k not in defaults and k not in _GROUP_EXTRA_KEYS)
    if unknown:
        raise ValueError(f"unknown param-group option(s) {unknown}; the options are {sorted(defaults)}")


def _check_sgd_options(cfg: Mapping[str, Any]) -> None:
    """torch.optim.SGD's options of one group, checked as torch does and more (finite values)."""
    for key in ("lr", "momentum", "weight_decay", "dampening"):
        finite_at_least(key, cfg[key])
    if cfg["nesterov"] and (cfg["momentum"] <= 0 or cfg["dampening"] != 0):
        raise ValueError(
            f"nesterov=True needs momentum > 0 and dampening = 0, got momentum={cfg['momentum']!r}, "
            f"dampening={cfg['dampening']!r}"
        )


def _group_mode(cfg: Mapping[str, Any]) -> LNEMode:
    """The LNE mode of a param group, built from its options (``mode``, ``eta``, ``eta_relative``)."""
    return get_mode(cfg["mode"], eta=cfg["eta"], eta_relative=cfg["eta_relative"])


class _GroupModes:
    """The param groups' LNE modes, each resolved once per value of its options ``(mode, eta,
    eta_relative)`` (modes hold nothing else, so groups with the same options share one): a group
    added, replaced, reordered or edited in place is served its own mode — or its error — with no
    per-step lookup by name."""

    def __init__(self) -> None:
        self._by_options: dict[tuple[Any, ...], LNEMode] = {}

    def __call__(self, cfg: Mapping[str, Any]) -> LNEMode:
        key = (cfg["mode"], cfg["eta"], cfg["eta_relative"])
        mode = self._by_options.get(key)
        if mode is None:
            mode = self._by_options[key] = _group_mode(cfg)
        return mode


def _check_options(cfg: Mapping[str, Any]) -> None:
    """Clear errors for bad per-group options (each names the value and the valid range); an
    unknown mode or a bad ``eta`` is refused by resolving the mode."""
    _group_mode(cfg)
    if cfg["group"] not in GROUPS:
        raise ValueError(f"unknown group {cfg['group']!r}; the groups are {list(GROUPS)}")
    tau = cfg["tau"]
    if isinstance(tau, str):
        if tau != "auto":
            raise ValueError(f"tau must be a number > 0 or 'auto', got tau={tau!r}")
    elif not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0 or 'auto', got tau={tau!r}")
    if not 0.0 < cfg["target_s"] < 1.0:
        raise ValueError(f"target_s must lie in (0, 1), got target_s={cfg['target_s']!r}")
    if not cfg["target_s"] <= cfg["s_max"] < 1.0:
        raise ValueError(f"s_max must lie in [target_s, 1), got s_max={cfg['s_max']!r}")
    if not (isinstance(cfg["tau_every"], int) and cfg["tau_every"] >= 1):
        raise ValueError(f"tau_every must be an integer >= 1, got tau_every={cfg['tau_every']!r}")
    if not math.isfinite(float(cfg["eta"])):
        raise ValueError(f"eta must be finite, got eta={cfg['eta']!r}")


def _workspace(work: dict, p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-parameter buffer shaped like ``like``, reused across steps (not part of the state)."""
    buf = work.get(p)
    if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = work[p] = torch.empty_like(like)
    return buf


def _precondition(
    p: torch.Tensor,
    grad: torch.Tensor,
    cfg: Mapping[str, Any],
    mode: LNEMode,
    state: dict,
    name: str,
    flow: Optional[FlowInfo] = None,
    diagnostics: Optional[dict] = None,
    workspace: Optional[dict] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(u = g(w)⁻¹ v · gate, ok) for one parameter of a group with options ``cfg`` and the
    resolved ``mode``, computed in float32 or wider, u cast back to ``grad.dtype``.  ``ok[G]`` is
    False where s ≥ 1 or v is not finite — cheap to form (t·v is non-finite iff some v_i is:
    NaN·t = NaN, ±inf·0 = NaN) and checked once for all parameters by :func:`_raise_if_bad`
    before any weight moves."""
    work = working_dtype(p, grad)
    wg, vg = as_groups(p, cfg["group"], work), as_groups(grad, cfg["group"], work)
    if flow is not None:
        pre = flow.pre
    else:
        buf = None if workspace is None else _workspace(workspace, p, wg)
        pre = scheduled_tau(wg, cfg, state, buf)
    if flow is not None and flow.v_add is not None:
        vg = vg + flow.v_add
    ok = (pre.s < 1.0) & torch.isfinite(rowdot(pre.t, vg))
    out = mode.transform(pre, vg, name)
    if flow is not None:
        out = out * flow.mask
    if diagnostics is not None:
        raw = torch.linalg.vector_norm(vg, dim=-1)
        new = torch.linalg.vector_norm(out, dim=-1)
        entry = dict(s=pre.s, tau=pre.tau, norm_ratio=new / torch.where(raw > 0, raw, torch.ones_like(raw)))
        entry.update(mode.diagnostics(pre, name))
        if flow is not None:
            entry.update(N=flow.n_total, gate=flow.mask.expand_as(out).mean(-1))
        diagnostics[name] = entry
    return out.reshape(p.shape).to(grad.dtype), ok


def _raise_if_bad(
    checks: Sequence[tuple[torch.Tensor, torch.Tensor, Mapping[str, Any], dict, str, torch.Tensor]],
) -> None:
    """One synchronisation for all parameters; on failure, the precise error for the first bad one."""
    if not checks or bool(torch.cat([ok.to(checks[0][-1].device) for *_, ok in checks]).all()):
        return
    for p, grad, cfg, state, name, ok in checks:
        if bool(ok.all()):
            continue
        step = state.get("step", 0)
        if not bool(torch.isfinite(grad).all()):
            raise ValueError(
                f"parameter {name!r}: the gradient has NaN or inf entries at step {step}; "
                f"lower the learning rate, clip the gradients, or check the loss"
            )
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"parameter {name!r}: the weight has NaN or inf entries at step {step}")
        wg = as_groups(p, cfg["group"], working_dtype(p))
        resolve_tau(wg, state["tau"], name=name, group=cfg["group"])  # raises: s, the largest τ
        raise ValueError(f"parameter {name!r}: the gradient overflows at step {step} (t·v is not finite)")


def _finite_flag(grad: torch.Tensor) -> torch.Tensor:
    """``ok`` of a parameter outside the metric (plain SGD): its gradient is finite, shape [1]."""
    return torch.isfinite(grad).all().reshape(1)


@contextmanager
def _restored_on_error(state: MutableMapping[Any, dict]) -> Iterator[None]:
    """Undo every change to the optimizer's per-parameter ``state`` if the block raises.

    A shallow copy suffices: before the weights move, a step only *assigns* state entries
    (τ, x_prev, n_ema, counters) — buffers updated in place (momentum) are touched after."""
    saved = {p: dict(st) for p, st in state.items()}
    try:
        yield
    except BaseException:
        for p in list(state):
            if p in saved:
                state[p].clear()
                state[p].update(saved[p])
            else:
                del state[p]
        raise


def _sgd_foreach(
    params: list, ds: list[torch.Tensor] | tuple[torch.Tensor, ...], group: Mapping[str, Any], states: list[dict]
) -> None:
    """torch.optim.SGD's rule on the (transformed) gradients ``ds``, fused over the group, then
    latent clipping (module docstring)."""
    if not params:
        return
    if group["weight_decay"] != 0:
        ds = torch._foreach_add(ds, params, alpha=group["weight_decay"])
    mu = group["momentum"]
    if mu != 0:
        held: list[Optional[torch.Tensor]] = []  # None: the buffer is created from this step's d
        for d, st in zip(ds, states):
            buf = st.get("momentum_buffer")
            if buf is None:
                st["momentum_buffer"] = d.detach().clone()
            held.append(buf)
        old = [i for i, b in enumerate(held) if b is not None]
        if old:
            ob = [b for b in held if b is not None]
            torch._foreach_mul_(ob, mu)
            torch._foreach_add_(ob, [ds[i] for i in old], alpha=1.0 - group["dampening"])
        bufs: list[torch.Tensor] = [st["momentum_buffer"] for st in states]
        ds = torch._foreach_add(ds, bufs, alpha=mu) if group["nesterov"] else bufs
    torch._foreach_add_(params, ds, alpha=-group["lr"])
    if group["clip"] is not None:
        torch._foreach_clamp_min_(params, -group["clip"])
        torch._foreach_clamp_max_(params, group["clip"])


# --------------------------------------------------------------------------- RFDNN
class RFDNN(torch.optim.Optimizer):
    r"""SGD on the LNE natural gradient, optionally with the paper's discrete Ricci flow (Algorithm 2).

    A drop-in for ``torch.optim.SGD``: ``RFDNN(model.parameters(), lr=0.1,
    momentum=0.9)`` preconditions every parameter (module docstring for the
    order of operations, the τ schedule and Algorithm 2).  Put the parameters
    that should stay plain SGD (biases, BatchNorm, float layers) in a group
    with ``lne=False``.  Passing ``model.named_parameters()`` gives named
    diagnostics and error messages.

    Parameters
    ----------
    lr, momentum, dampening, nesterov, weight_decay:
        As ``torch.optim.SGD``.
    lne:
        Apply the LNE transform to the group (``False``: plain SGD).
    mode:
        An :func:`rfdnn_bridge.lne_grad.list_modes` name: ``exact`` (default),
        ``weak`` (the paper's experiments), ``curvature``, ``radial``, ``layer_lr``, ``strong``.
    tau, target_s, tau_every, s_max:
        ``"auto"`` (default: s = ``target_s`` per group, re-solved every
        ``tau_every`` steps or when s > ``s_max``) or a fixed τ > 0.
    group:
        ``"tensor"`` (one metric per parameter, the paper) or ``"channel"``.
    eta, eta_relative:
        The step of the ``curvature`` mode, M = g − 2η Ric; by default in units
        of ‖Ric‖ per group (``eta_relative=True``: the Ricci term is at most
        2·eta relative to I, whatever the layer's size — an absolute η is far
        too strong in large layers, ‖Ric‖ ≈ (n − 1)τ²).
    clip:
        Latent clipping bound c (``None``: no clipping).
    flow:
        Run Algorithm 2; then :meth:`step` needs a closure
        ``closure(shift, create_graph)`` (:func:`rfdnn_closure`).
    shifts:
        ``((k1, k2), (j1, j2))``, 0 < |k1 − k2|, |j1 − j2| < 4. Or a name: ``"central"`` (the
        default, 5 passes a step) or ``"forward"`` ((1, 0), (1, 0): 3 passes).
    alpha, eps, eps_factor, gate, proxy, flow_eta, tentative_lr, n_grad:
        Algorithm 2's choices (module docstring).
    diagnostics:
        Record :attr:`diagnostics` each step (two norms per group).

    Attributes
    ----------
    diagnostics : dict
        After each step, parameter name → ``{"s", "tau", "norm_ratio"}`` (and
        ``"N"``, ``"gate"`` — the pass fraction — with ``flow=True``), per-group tensors.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        lne: bool = True,
        mode: str = "exact",
        tau: Union[float, str] = "auto",
        group: str = "tensor",
        target_s: float = 0.5,
        tau_every: int = 100,
        s_max: float = 0.95,
        eta: float = 0.1,
        eta_relative: bool = True,
        clip: Optional[float] = None,
        flow: bool = False,
        shifts: Union[str, Sequence[Sequence[int]]] = ((1, -1), (1, -1)),
        alpha: float = 0.1,
        eps: float = math.inf,
        eps_factor: float = 3.0,
        gate: str = "group",
        proxy: str = "paper",
        flow_eta: float = 0.01,
        tentative_lr: Optional[float] = None,
        n_grad: str = "direct",
        diagnostics: bool = True,
    ) -> None:
        if n_grad not in N_GRADS:
            raise ValueError(f"unknown n_grad {n_grad!r}; the choices are {list(N_GRADS)}")
        self.flow = bool(flow)
        self.shifts = check_shifts(shifts)
        self.n_grad = n_grad
        self.record = bool(diagnostics)
        self.diagnostics: dict[str, dict[str, torch.Tensor]] = {}
        self._work: dict[torch.Tensor, torch.Tensor] = {}  # per-parameter t buffers (not state)
        self._mode_of = _GroupModes()  # each param group's LNE mode, resolved once per value of its options
        self._held_work_state: dict[Any, dict[str, torch.Tensor]] = {}  # between the load_state_dict hooks
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay,
            lne=lne, mode=mode, tau=tau, group=group, target_s=target_s, tau_every=tau_every, s_max=s_max,
            eta=eta, eta_relative=eta_relative, clip=clip, alpha=alpha, eps=eps,
            eps_factor=eps_factor, gate=gate, proxy=proxy, flow_eta=flow_eta,
            tentative_lr=tentative_lr,
        )
        super().__init__(params, defaults)
        self.register_load_state_dict_pre_hook(RFDNN._hold_work_state)
        self.register_load_state_dict_post_hook(RFDNN._after_load)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """As torch's, and every option of the group is checked here, before the group is added:
        an unknown key (a typo, or an optimizer-wide option such as ``flow``) is refused, never
        ignored.  The group's LNE mode is resolved here (:func:`rfdnn_bridge.lne_grad.get_mode`), and
        again only when ``mode``, ``eta`` or ``eta_relative`` of a group is changed."""
        if isinstance(param_group, Mapping):
            _check_group_keys(param_group, self.defaults)
        super().add_param_group(param_group)
        cfg = self.param_groups[-1]
        try:
            _check_sgd_options(cfg)
            self._mode_of(self._check_group(cfg))
        except ValueError:
            self.param_groups.pop()
            raise

    def _check_group(self, cfg: Mapping[str, Any]) -> Mapping[str, Any]:
        """``cfg`` once every option of it is checked."""
        _check_options(cfg)
        if cfg["gate"] not in GATES:
            raise ValueError(f"unknown gate {cfg['gate']!r}; the gates are {list(GATES)}")
        if cfg["proxy"] not in PROXIES:
            raise ValueError(f"unknown proxy {cfg['proxy']!r}; the proxies are {list(PROXIES)}")
        if cfg["clip"] is not None and not cfg["clip"] > 0:
            raise ValueError(f"clip must be > 0 or None, got clip={cfg['clip']!r}")
        eps = cfg["eps"]
        if isinstance(eps, str):
            if eps != "auto":
                raise ValueError(f"eps must be a number >= 0 or 'auto', got eps={eps!r}")
        elif not eps >= 0:
            raise ValueError(f"eps must be >= 0 (the gate passes iff N <= eps), got eps={eps!r}")
        if not cfg["eps_factor"] > 0:
            raise ValueError(f"eps_factor must be > 0 (eps='auto' passes iff N <= eps_factor x mean N), "
                             f"got eps_factor={cfg['eps_factor']!r}")
        finite_at_least("alpha", cfg["alpha"])
        finite_at_least("flow_eta", cfg["flow_eta"])
        if cfg["tentative_lr"] is not None:
            finite_at_least("tentative_lr", cfg["tentative_lr"])
        return cfg

    #: state kept in the working dtype (float32 or wider), whatever the parameter's dtype
    _WORK_STATE = ("tau", "x_prev", "n_ema")

    # ``load_state_dict`` is torch's, with two hooks (registered in ``__init__``): options missing
    # from an older state take this optimizer's defaults, a saved group whose mode cannot be resolved
    # is refused before anything is loaded, and τ, x_prev and N's running mean keep their saved
    # dtype — torch casts floating state to the parameter's dtype, which for float16/bfloat16
    # parameters would round them and break an exact continuation.
    @staticmethod
    def _hold_work_state(opt: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
        """Pre-hook: refuse a saved group with a mode that cannot be resolved (before torch changes
        anything) and hold the saved working-dtype entries (torch casts its copies; restored by
        :meth:`_after_load`)."""
        assert isinstance(opt, RFDNN)
        for group in state_dict["param_groups"]:
            opt._mode_of({**opt.defaults, **group})
        opt._held_work_state = {
            idx: {k: v for k, v in st.items() if k in opt._WORK_STATE and isinstance(v, torch.Tensor)}
            for idx, st in state_dict["state"].items()
        }

    @staticmethod
    def _after_load(opt: torch.optim.Optimizer) -> None:
        """Post-hook: defaults for options an older state lacks, and the held working
        state in place of torch's cast copies (a copy, on the parameter's device, in its saved dtype)."""
        assert isinstance(opt, RFDNN)
        for group in opt.param_groups:  # a state saved before an option existed gets its default
            for key, value in opt.defaults.items():
                group.setdefault(key, value)
        params = [p for g in opt.param_groups for p in g["params"]]
        held, opt._held_work_state = opt._held_work_state, {}
        for idx, saved in held.items():
            p = params[int(idx)]
            for k, v in saved.items():
                opt.state[p][k] = v.to(p.device, copy=True)

    # ------------------------------------------------------------------ step
    @torch.no_grad()
    def step(self, closure: Optional[Callable[..., Any]] = None) -> Any:
        """One step.  ``closure`` is evaluated here (gradients included) *before* the transform,
        so a closure never bypasses it; with ``flow=True`` it is required (module docstring).

        A refused step (NaN/inf gradient in any group, s ≥ 1 at a fixed τ, an error in the
        closure) raises and changes no state: no weight moves, and τ, Algorithm 2's x_prev and
        the gate's running mean of N are as before the call."""
        if self.flow and (closure is None or not takes_shift(closure)):
            raise ValueError(
                "RFDNN(flow=True).step needs closure(shift=(0, 0), create_graph=False) that runs the "
                "model on the translated batch and back-propagates: build it with "
                "rfdnn_bridge.optim.rfdnn_closure(model, loss_fn, x, y, optimizer)"
            )
        modes = [self._mode_of(group) for group in self.param_groups]  # an unknown mode refuses the step here
        with _restored_on_error(self.state):
            loss, work, diag = self._transform(closure, modes)
        for group, items in work:
            _sgd_foreach([p for p, _, _ in items], [d for _, d, _ in items], group, [st for _, _, st in items])
            for _, _, state in items:
                state["step"] = state.get("step", 0) + 1
        if diag is not None:
            self.diagnostics = diag
        return loss

    def _transform(self, closure: Optional[Callable[..., Any]], modes: list[LNEMode]
                   ) -> tuple[Any, list, Optional[dict]]:
        """The closure's passes and the transformed gradients of every group, all checked; the
        weights are not touched."""
        flows: dict[torch.Tensor, FlowInfo] = {}
        loss = None
        if self.flow:
            assert closure is not None  # step() refuses flow=True without a closure
            with torch.enable_grad():
                loss, flows = flow_passes(self.param_groups, self.state, self.shifts, self.n_grad, closure)
        elif closure is not None:
            with torch.enable_grad():
                loss = closure()
        diag: Optional[dict] = {} if self.record else None
        work, checks = [], []
        for index, (group, mode) in enumerate(zip(self.param_groups, modes, strict=True)):
            items = []
            for p, name in zip(group["params"], group_param_names(group, index)):
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError(f"parameter {name!r}: sparse gradients are not supported")
                state = self.state[p]
                if group["lne"]:
                    d, ok = _precondition(p, p.grad, group, mode, state, name, flows.get(p), diag, self._work)
                else:
                    d, ok = p.grad, _finite_flag(p.grad)
                checks.append((p, p.grad, group, state, name, ok))
                items.append((p, d, state))
            work.append((group, items))
        _raise_if_bad(checks)
        return loss, work, diag


# --------------------------------------------------------------------------- wrapper
class LNEPreconditioner:
    r"""The LNE transform in front of any ``torch.optim`` optimizer.

    ``opt = LNEPreconditioner(torch.optim.Adam(model.parameters(), lr=1e-3), mode="weak")``;
    then ``opt.step()`` replaces every ``.grad`` of the inner optimizer's
    parameters by g(w)⁻¹ ``.grad`` (module docstring for τ and the options;
    per-group overrides of ``lne``, ``mode``, ``tau``, … can be set as keys of
    the inner optimizer's param groups) and steps the inner optimizer.  With a
    closure, the closure is evaluated *here* and the inner optimizer is
    stepped without it — delegating ``step(closure)`` would let the closure
    recompute the gradients after the transform and silently drop it.
    Weight decay and momentum are the inner optimizer's, so they act after
    the transform (as in :class:`RFDNN`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, diagnostics: bool = True, **options: Any) -> None:
        unknown = set(options) - set(LNE_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown LNE options {sorted(unknown)}; the options are {sorted(LNE_DEFAULTS)}")
        self.optimizer = optimizer
        self.defaults = {**LNE_DEFAULTS, **options}
        self.record = bool(diagnostics)
        self.diagnostics: dict[str, dict[str, torch.Tensor]] = {}
        self.lne_state: dict[int, dict] = {}
        self._work: dict[torch.Tensor, torch.Tensor] = {}
        for group in optimizer.param_groups:
            _check_options(self._cfg(group))
        # each inner param group's LNE mode, resolved once per value of its options (groups the inner
        # optimizer adds or loads later, or edited ones, included)
        self._mode_of = _GroupModes()

    def _cfg(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {k: group.get(k, v) for k, v in self.defaults.items()}

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        diag: Optional[dict] = {} if self.record else None
        k, out, checks = 0, [], []
        with _restored_on_error(self.lne_state):
            for index, group in enumerate(self.optimizer.param_groups):
                cfg = self._cfg(group)
                mode = self._mode_of(cfg)
                for p, name in zip(group["params"], group_param_names(group, index)):
                    state = self.lne_state.setdefault(k, {})
                    k += 1
                    if p.grad is None:
                        continue
                    if not cfg["lne"]:
                        checks.append((p, p.grad, cfg, state, name, _finite_flag(p.grad)))
                        continue
                    d, ok = _precondition(p, p.grad, cfg, mode, state, name, None, diag, self._work)
                    checks.append((p, p.grad, cfg, state, name, ok))
                    out.append((p, d, state))
            _raise_if_bad(checks)
        for p, d, state in out:
            p.grad.copy_(d)  # d may live in a reused workspace: never hand it out as .grad
            state["step"] = state.get("step", 0) + 1
        if diag is not None:
            self.diagnostics = diag
        self.optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "lne_state": {k: dict(v) for k, v in self.lne_state.items()}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.lne_state = {int(k): dict(v) for k, v in state_dict["lne_state"].items()}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        return f"LNEPreconditioner({opts},\n{self.optimizer!r})"
