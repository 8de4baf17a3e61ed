"""Training throughput of a quantized ResNet-20 on CIFAR-10-shaped tensors: STE vs RF-DNN.

    python benchmarks/bench_throughput.py [--device cuda] [--batch 128] [--steps 20] [--quick]

Random tensors in CIFAR-10's shape ([B, 3, 32, 32], 10 classes) — no data needed.  Prints images per
second for the clipped STE with SGD, for the LNE gradient alone (``lne-weak``) and for the paper's
RF-DNN step (``rfdnn``: Algorithm 2, 5 passes by default; ``rfdnn[shifts=forward]``: 3 passes), side
by side in one run (round-robin blocks of steps), and the ratios to the STE: images per second and the
time of an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from _timing import round_robin_times

from rfdnn_bridge.experiments.models import resnet20
from rfdnn_bridge.experiments.train import RunConfig, build_optimizer, method_spec
from rfdnn_bridge.layers import quantize_model
from rfdnn_bridge.optim import rfdnn_closure


def _stepper(method: str, x: torch.Tensor, y: torch.Tensor, device: torch.device, steps: int):
    spec = method_spec(method)
    torch.manual_seed(0)
    model = quantize_model(resnet20(), weights=spec.estimator).to(device)
    opt = build_optimizer(model, RunConfig(method=method, lr=0.1, momentum=0.9), spec)
    loss_fn = torch.nn.CrossEntropyLoss()
    flow = bool(spec.options.get("flow"))

    def run() -> None:
        for _ in range(steps):
            if flow:
                opt.step(rfdnn_closure(model, loss_fn, x, y, opt))
            else:
                opt.zero_grad()
                loss_fn(model(x), y).backward()
                opt.step()

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed block")
    ap.add_argument("--reps", type=int, default=3, help="round-robin blocks")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--quick", action="store_true", help="batch 16, 2 steps, 2 blocks")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.reps = 16, 2, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    name = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if name.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here")
        return 2
    device = torch.device(name)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(device)
    methods = ["clipped", "lne-weak", "rfdnn", "rfdnn[shifts=forward]"]
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"quantized ResNet-20, batch {args.batch}, {args.steps} steps x {args.reps} blocks")
    fns = [_stepper(m, x, y, device, args.steps) for m in methods]
    times = [statistics.median(t) for t in round_robin_times(fns, device, 1, args.reps)]
    ref = args.batch * args.steps / times[0]
    print(f"{'method':<22} {'images/s':>10} {'vs clipped STE':>15} {'time per epoch vs STE':>22}")
    for m, t in zip(methods, times):
        ips = args.batch * args.steps / t
        print(f"{m:<22} {ips:10.1f} {ips / ref:14.3f}x {t / times[0]:21.2f}x")
    print("rfdnn: Algorithm 2 with the central translations (5 forward-backward passes a step); "
          "rfdnn[shifts=forward]: one-sided translations (3 passes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
