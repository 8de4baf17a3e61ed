"""Cost of the straight-through estimators, inside a layer and bare (not a test).

1. Inside a layer: forward + backward of a ``QuantConv2d`` with a ResNet-20 layer shape
   (16 → 16 channels, 3×3, padding 1, input ``batch``×16×32×32, batch 128 by default) with each
   registered estimator, as a ratio to the same layer with the clipped STE. Weight estimators
   quantize the weight (16·16·3·3 = 2304 elements, so the convolution dominates); activation
   estimators (DoReFa activations, Yin et al.'s binarized-ReLU STEs) quantize the layer's *input*
   (batch·16384 elements) on top of clipped-STE weights, and are compared with the clipped STE
   in that same slot (row ``clipped`` / ``act``). Any deterministic estimator above 1.2× its
   reference is flagged.
2. Bare: forward + backward of the estimator alone on a 2²⁴-element tensor, as a ratio to the
   clipped STE, for reference.

Each timing is the fastest of ``--repeats`` runs after ``--warmup`` runs of each case; the
repeats go round-robin over all cases (slow drifts hit every case alike), and each ratio is
the fastest time over the reference's fastest time. CUDA timings are synchronised. On a
shared CPU, rerun, or use ``--threads 1`` on an idle machine, before believing a flag.
``torch.set_num_threads(--threads)`` fixes the CPU thread count (default: the number of cores
torch sees), so that numbers from different runs compare.

Usage::

    python benchmarks/bench_estimators.py                    # CPU, batch 128
    python benchmarks/bench_estimators.py --batch 32 --threads 2
    python benchmarks/bench_estimators.py --device cuda      # when a GPU is available
"""

from __future__ import annotations

import argparse
import sys

import torch
from _timing import round_robin_times

ACTIVATION_ESTIMATORS = {"dorefa_a", "yin_identity", "yin_relu", "yin_clipped_relu"}
STOCHASTIC_ESTIMATORS = {"stochastic_binary"}  # draw noise in the forward: not held to the 1.2× bound
FLAG_RATIO = 1.2


def _summarise(times: list[list[float]], ref: int) -> list[tuple[float, float]]:
    """(fastest time, fastest time / the reference's fastest time) per case.

    Interference on a shared CPU only ever adds time, so the minimum over the
    round-robin repeats is the most repeatable estimate of each case's own cost
    (the convention of ``timeit``); medians scattered by ±30 % here.
    """
    best_ref = min(times[ref])
    return [(min(ts), min(ts) / best_ref) for ts in times]


def _layer_step(layer, x):
    def step():
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()
    return step


def _bare_step(est, x):
    def step():
        x.grad = None
        est(x).sum().backward()
    return step


def main(argv=None) -> int:
    from rfdnn_bridge.estimators import get_estimator, list_estimators
    from rfdnn_bridge.layers import QuantConv2d

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, …")
    ap.add_argument("--batch", type=int, default=128, help="input batch of the ResNet-20 layer (default 128)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="torch.set_num_threads for CPU runs (default: %(default)s, torch's default here)")
    ap.add_argument("--bare-log2", type=int, default=24, help="bare estimator tensor has 2**N elements (default 24)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a deterministic estimator is flagged")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    names = list_estimators(aliases=False)
    if "clipped" not in names:
        print("the registry has no 'clipped' estimator to compare with", file=sys.stderr)
        return 2
    names = ["clipped"] + [n for n in names if n != "clipped"]

    x_layer = torch.randn(args.batch, 16, 32, 32, device=device)
    x_bare = torch.randn(2 ** args.bare_log2, device=device, requires_grad=True)
    slots = [(n, n in ACTIVATION_ESTIMATORS) for n in names]
    if any(act for _, act in slots):
        slots.insert(1, ("clipped", True))  # reference for the activation slot
    layer_steps, bare_steps = [], []
    for name, activation in slots:
        quant = dict(weights="clipped", activations=name) if activation else dict(weights=name)
        layer = QuantConv2d(16, 16, 3, padding=1, bias=False, device=device, **quant).train()
        layer_steps.append(_layer_step(layer, x_layer))
        bare_steps.append(_bare_step(get_estimator(name).to(device).train(), x_bare))
    # the estimator alone on the very tensor it quantizes inside the layer (the weight
    # 16x16x3x3, or the layer input for an activation estimator): its extra cost over the
    # clipped STE, added to the clipped layer's time, bounds the in-layer ratio without
    # the convolution's own timing noise
    own_steps = []
    for name, activation in slots:
        shape = tuple(x_layer.shape) if activation else (16, 16, 3, 3)
        own_steps.append(_bare_step(get_estimator(name).to(device).train(),
                                    torch.randn(shape, device=device, requires_grad=True)))
    t_layers = round_robin_times(layer_steps, device, args.warmup, args.repeats)
    t_bares = round_robin_times(bare_steps, device, args.warmup, args.repeats)
    t_owns = round_robin_times(own_steps, device, args.warmup, args.repeats)
    ref_of = {act: i for i, (name, act) in enumerate(slots) if name == "clipped"}
    rows = []
    for i, (name, act) in enumerate(slots):
        (tl, rl), = _summarise([t_layers[i], t_layers[ref_of[act]]], 1)[:1]
        (tb, rb), = _summarise([t_bares[i], t_bares[ref_of[act]]], 1)[:1]
        extra = min(t_owns[i]) - min(t_owns[ref_of[act]])
        implied = 1.0 + extra / min(t_layers[ref_of[act]])
        rows.append((name, "act" if act else "weight", tl, rl, tb, rb, min(t_owns[i]), implied))

    hdr = (f"{'estimator':<18} {'slot':<6} {'layer ms':>9} {'ratio':>6} {'own ms':>8} {'implied':>7} "
           f"{'bare ms':>9} {'ratio':>6}  flag")
    print(f"device {device}, threads {torch.get_num_threads()}, layer input {args.batch}x16x32x32, "
          f"bare tensor 2^{args.bare_log2}, fastest of {args.repeats} (warm-up {args.warmup}); "
          f"ratios to the clipped STE in the same slot (fastest over fastest); 'own ms': the estimator "
          f"alone on the tensor it quantizes in the layer; 'implied' = 1 + (own − own of clipped)/layer "
          f"time of clipped: the in-layer ratio free of the convolution's timing noise (flags use it)")
    print(hdr)
    print("-" * len(hdr))
    flagged = []
    for name, slot, t_layer, r_layer, t_bare, r_bare, t_own, implied in rows:
        flag = ""
        if implied > FLAG_RATIO and name != "clipped":
            if name in STOCHASTIC_ESTIMATORS:
                flag = "(stochastic)"
            else:
                flag = f"> {FLAG_RATIO}x"
                flagged.append(name)
        elif r_layer > FLAG_RATIO and name != "clipped":
            flag = f"measured > {FLAG_RATIO}x, implied not: timing noise of the convolution"
        print(f"{name:<18} {slot:<6} {1e3 * t_layer:9.2f} {r_layer:6.2f} {1e3 * t_own:8.3f} {implied:7.3f} "
              f"{1e3 * t_bare:9.2f} {r_bare:6.2f}  {flag}")
    if flagged:
        print(f"deterministic estimators above {FLAG_RATIO}x the clipped STE inside the layer: {', '.join(flagged)}")
    else:
        print(f"no deterministic estimator above {FLAG_RATIO}x the clipped STE inside the layer")
    return 1 if (flagged and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
