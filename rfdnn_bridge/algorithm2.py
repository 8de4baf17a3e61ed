"""Algorithm 2 of Chen et al. (docs/math.md §4): the translated passes, the discrete flow's residual N,
its gate and its gradient — what :class:`rfdnn_bridge.optim.RFDNN` adds to the LNE step with
``flow=True``.

* :func:`rfdnn_closure`, :func:`translate`, :func:`frozen_running_stats` — the closure the passes need;
* :func:`flow_passes` — one step's passes and, per parameter of the ``lne`` groups, a :class:`FlowInfo`
  (τ with the prepared t and s, α∇N, the gate's mask, N) that the update of :mod:`rfdnn_bridge.optim` reads.

The choices the paper leaves open (how N's gradient reaches w, α, ε, the gate, the proxy) are
described in :mod:`rfdnn_bridge.optim` and docs/optim.md.
"""

from __future__ import annotations

import inspect
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, MutableMapping, Optional, Sequence, Union, cast

import torch
from torch import nn

from .discrete_flow import flow_residual, gate
from .lne_grad import Prepared, as_groups, scheduled_tau, working_dtype

__all__ = [
    "translate", "rfdnn_closure", "frozen_running_stats", "flow_passes", "FlowInfo", "N_GRADS", "EPS_AUTO_DECAY",
    "epsilon", "run_pass", "takes_shift",
]

#: how N's gradient reaches the weights (:class:`rfdnn_bridge.optim.RFDNN`'s ``n_grad``)
N_GRADS = ("direct", "double", "none")


def translate(x: torch.Tensor, shift: Sequence[int], dims: Sequence[int] = (-2, -1)) -> torch.Tensor:
    """``x`` shifted by ``shift = (dk, dj)`` pixels along ``dims`` (rows, columns), zero-filled.

    ``out[..., r, c] = x[..., r − dk, c − dj]`` where that index is inside, else 0.
    For 1-D signals ``[B, C, L]`` use ``dims=(-1, -1)`` (both shifts move the signal).
    """
    out = x
    for k, dim in zip(shift, dims):
        k = int(k)
        if k == 0:
            continue
        n = out.shape[dim]
        if abs(k) >= n:
            out = torch.zeros_like(out)
            continue
        pad_shape = list(out.shape)
        pad_shape[dim] = abs(k)
        pad = out.new_zeros(pad_shape)
        if k > 0:
            out = torch.cat([pad, out.narrow(dim, 0, n - k)], dim)
        else:
            out = torch.cat([out.narrow(dim, -k, n + k), pad], dim)
    return out


def rfdnn_closure(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    dims: Sequence[int] = (-2, -1),
) -> Callable[..., torch.Tensor]:
    """The closure for :meth:`RFDNN.step` on the batch ``(x, y)``.

    ``closure(shift=(0, 0), create_graph=False)`` zeroes the gradients, runs
    ``loss_fn(model(translate(x, shift, dims)), y)``, back-propagates (with
    ``create_graph`` for ``n_grad="double"``) and returns the loss, detached.
    Translated passes leave the running statistics of normalisation layers as
    they were (:func:`frozen_running_stats`).
    It is also a valid closure for any torch optimizer (``closure()``).
    """

    def closure(shift: Sequence[int] = (0, 0), create_graph: bool = False) -> torch.Tensor:
        optimizer.zero_grad()
        if tuple(shift) == (0, 0):
            loss = loss_fn(model(x), y)
            loss.backward(create_graph=create_graph)
        else:
            with frozen_running_stats(model, keep_graph=create_graph):  # restored after the backward, which reads them
                loss = loss_fn(model(translate(x, shift, dims)), y)
                loss.backward(create_graph=create_graph)
        return loss.detach()

    return closure


@contextmanager
def frozen_running_stats(model: nn.Module, keep_graph: bool = False) -> Iterator[None]:
    """Normalisation layers normalise with the batch's statistics as usual, but their running
    statistics (used at evaluation) are restored afterwards: the translated passes of Algorithm 2
    must not move them, or a model trained with ``flow=True`` would be evaluated with statistics
    drawn mostly from zero-filled shifted batches — a confound against the other methods.

    By default the statistics are copied back in place.  With ``keep_graph`` (a pass whose graph is
    kept, ``n_grad="double"``) the layers run on copies and get their own tensors back untouched:
    the graphs of earlier passes saved those tensors, and an in-place restore would invalidate them
    ("modified by an inplace operation" in the backward through the gradients)."""
    own = [(m, _running_stats(m)) for m in model.modules()
           if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats and m.running_mean is not None]
    before = [tuple(buf.clone() for buf in bufs) for _, bufs in own]
    if keep_graph:
        for (m, _), copies in zip(own, before):
            m.running_mean, m.running_var, m.num_batches_tracked = copies
    try:
        yield
    finally:
        for (m, bufs), values in zip(own, before):
            if keep_graph:
                m.running_mean, m.running_var, m.num_batches_tracked = bufs
            else:
                with torch.no_grad():
                    for buf, value in zip(bufs, values):
                        buf.copy_(value)


def _running_stats(m: nn.modules.batchnorm._NormBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Running mean, variance and count of a normalisation layer that tracks them (so none is None)."""
    mean, var, count = m.running_mean, m.running_var, m.num_batches_tracked
    return cast(torch.Tensor, mean), cast(torch.Tensor, var), cast(torch.Tensor, count)


@dataclass
class FlowInfo:
    """What Algorithm 2's passes hand to the update of one parameter."""

    pre: Prepared  # x = τ w, t, s at the current weights, τ [G]
    v_add: Optional[torch.Tensor]  # α ∇N, [G, n]
    mask: torch.Tensor  # gate, [G, 1] or [G, n]
    n_total: torch.Tensor  # [G]


def flow_passes(
    param_groups: Sequence[Mapping[str, Any]],
    state_of: MutableMapping[torch.Tensor, dict],
    shifts: tuple[tuple[int, int], tuple[int, int]],
    n_grad: str,
    closure: Callable[..., Any],
) -> tuple[Any, dict[torch.Tensor, FlowInfo]]:
    """One step of Algorithm 2's passes: ``closure`` on the batch (the main pass, whose gradient is left
    in ``.grad``) and on each distinct translation, then N, its gate and α∇N for every parameter of
    the ``lne`` groups.  Updates each parameter's state ("x_prev", "n_ema", τ's); returns the main
    pass's loss and the :class:`FlowInfo` per parameter."""
    double = n_grad == "double"
    with warnings.catch_warnings():
        # backward(create_graph=True) warns about the parameter <-> .grad cycle; it is broken below
        warnings.filterwarnings("ignore", message=".*create_graph=True.*reference cycle.*")
        loss = run_pass(closure, (0, 0), double)
        main = {p: p.grad.clone() for g in param_groups for p in g["params"] if p.grad is not None}
        lne = [(p, g) for g in param_groups if g["lne"] for p in g["params"] if p in main]
        (k1, k2), (j1, j2) = shifts
        keys = {"k1": (k1, 0), "k2": (k2, 0), "j1": (0, j1), "j2": (0, j2)}
        by_shift = {(0, 0): {p: main[p] for p, _ in lne}}
        for shift in keys.values():
            if shift not in by_shift:
                run_pass(closure, shift, double)
                by_shift[shift] = {
                    p: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for p, _ in lne
                }
    for p, g in main.items():
        p.grad = g.detach()

    flows: dict[torch.Tensor, FlowInfo] = {}
    total = None
    targets = []
    for p, cfg in lne:
        state = state_of[p]
        work = working_dtype(p)
        wg = as_groups(p, cfg["group"], work)
        pre = scheduled_tau(wg, cfg, state)
        taus = pre.tau
        x_prev = state.get("x_prev")
        if x_prev is None:
            x_prev = taus[:, None] * wg
        lr_t = cfg["lr"] if cfg["tentative_lr"] is None else cfg["tentative_lr"]
        take = cfg["alpha"] != 0 and n_grad != "none"
        w = p.to(work).reshape(wg.shape) if double else wg.clone().requires_grad_(take)

        def grouped(a: torch.Tensor) -> torch.Tensor:
            a = a.to(work).reshape(wg.shape)
            return a if double else a.detach()

        x = {k: taus[:, None] * (w - lr_t * grouped(by_shift[sh][p])) for k, sh in keys.items()}
        element = cfg["gate"] == "element"
        n_total, n_rows = flow_residual(
            x, x_prev.to(work), taus, shifts, proxy=cfg["proxy"], flow_eta=cfg["flow_eta"], rows=element
        )
        if take:  # one autograd call for all parameters: Σ α N (direct: leaves w; double: p itself)
            term = cfg["alpha"] * n_total.sum()
            total = term if total is None else total + term
            targets.append((p, p if double else w))
        state["x_prev"] = x["k1"].detach()
        rows_norms = n_rows.detach() if element and n_rows is not None else None  # rows=element above
        mask = gate(n_total.detach(), rows_norms, epsilon(cfg, state, n_total), cfg["gate"])
        flows[p] = FlowInfo(pre, None, mask, n_total.detach())
    if total is not None:
        grads = torch.autograd.grad(total, [t for _, t in targets], allow_unused=True)
        for (p, _), gp in zip(targets, grads):
            if gp is not None:
                info = flows[p]
                info.v_add = gp.detach().to(info.pre.tau.dtype).reshape(info.mask.shape[0], -1)
    return loss, flows


#: ``eps="auto"``: decay of the running mean of N that the threshold is a multiple of
EPS_AUTO_DECAY = 0.99


def epsilon(cfg: Mapping[str, Any], state: dict, n_total: torch.Tensor) -> Union[float, torch.Tensor]:
    """The gate's threshold: ``eps`` itself, or for ``eps="auto"`` ``eps_factor`` times an
    exponential moving average of the group's N (decay EPS_AUTO_DECAY, started at the first N;
    state "n_ema") — scale-free, since N's size depends on lr, τ and n."""
    if cfg["eps"] != "auto":
        return cfg["eps"]
    n = n_total.detach()
    ema = state.get("n_ema")
    ema = n.clone() if ema is None else EPS_AUTO_DECAY * ema.to(n) + (1.0 - EPS_AUTO_DECAY) * n
    state["n_ema"] = ema
    return cfg["eps_factor"] * ema


def run_pass(closure: Callable[..., Any], shift: tuple[int, int], double: bool) -> Any:
    """One pass of Algorithm 2; a failing double backward gets the likely reason attached."""
    if not double:
        return closure(shift=shift, create_graph=False)
    try:
        return closure(shift=shift, create_graph=True)
    except RuntimeError as err:
        raise RuntimeError(
            f"{err}\n(RFDNN n_grad='double' back-propagates through the gradients with create_graph=True; "
            f"torch.nn.parallel.DistributedDataParallel's gradient all-reduce does not support that, nor does "
            f"a module that changes a tensor its backward saved in place — under DDP use n_grad='direct')"
        ) from err


def takes_shift(closure: Callable[..., Any]) -> bool:
    """Whether ``closure`` accepts ``shift=`` (Algorithm 2's closure, :func:`rfdnn_closure`)."""
    try:
        params = inspect.signature(closure).parameters
    except (TypeError, ValueError):
        return True
    return "shift" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
