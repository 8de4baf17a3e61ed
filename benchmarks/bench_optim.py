"""Cost of the RFDNN optimizer against plain SGD, measured side by side (not a test).

a. The optimizer step alone on 1M and 10M parameters (ResNet-like shapes: 3×3 conv weights
   [C_out, C_in, 3, 3] with C up to 512, each followed by two BatchNorm-like vectors), fixed
   random gradients: RFDNN(momentum 0.9, tau="auto", diagnostics=False) per LNE mode, and with
   diagnostics=True for "exact", and LNEPreconditioner(SGD foreach, mode="exact"), each as a
   ratio to torch.optim.SGD(momentum=0.9, foreach=True).  Target: ≤ 1.5×.  τ is solved at the
   first (warm-up) step and held (tau_every=100), so the timed steps are the steady state; the
   first step's cost (the τ solve) is reported in a separate column.
b. One training step (zero_grad, forward, backward, step) of resnet20 quantized with
   quantize_model(weights="clipped") on random [B, 3, 32, 32] inputs: RFDNN(mode="weak") on all
   parameters (the drop-in use) and, where rfdnn_bridge.optim has lne_param_groups, on the quantized
   layers' latent weights only, against SGD(momentum 0.9, foreach).  Target: ≤ 1.05×.
c. One RF-DNN step (flow=True, mode="weak", rfdnn_closure) against its floor = (number of
   distinct passes) × one closure() (zero_grad, forward, backward) of the same model on the same
   batch: shifts ((1,-1),(1,-1)) → 5 passes and ((1,0),(1,0)) → 3 passes, n_grad "direct"
   (target ≤ 1.15×) and "double" (reported separately), on quantized resnet20 and on a quantized
   SmallCNN with 8×8 digits-shaped input [128, 1, 8, 8].
d. The flow regulariser N = ‖Σ_a c_a t_a t_aᵀ‖²_F with m = 6 terms via discrete_flow.gram_norms
   (O(n·m²)) against forming the dense n×n matrix (float64): time, the speed-up, and memory —
   the dense matrix's n²·8 bytes analytically on CPU (torch allocations are invisible to
   tracemalloc), and torch.cuda.max_memory_allocated above the baseline on CUDA.

Timing: the cases of each section run round-robin (one repetition of every case, then the next
round), after warm-up; each time is the median over the rounds and each ratio is the median of
the case over the median of its reference from the same rounds.  CUDA timings are synchronised.
On a shared machine, rerun before believing a single number.

Usage::

    python benchmarks/bench_optim.py --quick        # ≈ 1–2 min on a loaded 2-core CPU
    python benchmarks/bench_optim.py                # full: 1M and 10M, batch 128
    python benchmarks/bench_optim.py --device cuda --threads 4
    python benchmarks/bench_optim.py --only a,d     # some sections
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from _timing import round_robin_times, sync

MODES = ("exact", "weak", "curvature", "radial", "layer_lr")
TARGET_STEP, TARGET_TRAIN, TARGET_FLOW = 1.5, 1.05, 1.15
DENSE_LIMIT_BYTES = 2 * 1024**3  # the dense n×n float64 matrix is skipped above this


def round_robin(fns: list[Callable[[], object]], device: torch.device, warmup: int, reps: int) -> list[float]:
    """Median seconds of each function; ``reps`` rounds, each running every function once."""
    return [statistics.median(ts) for ts in round_robin_times(fns, device, warmup, reps)]


def _ms(t: float) -> str:
    """Milliseconds with their unit (benchmarks/compare.py pairs durations by unit)."""
    return f"{1e3 * t:7.2f} ms"


def _verdict(ratio: float, target: float) -> str:
    return "ok" if ratio <= target else f"> {target}x"


# --------------------------------------------------------------------------- a. step alone
def resnet_like_shapes(target: int) -> list[tuple[int, ...]]:
    """Conv weights [C_out, C_in, 3, 3] in ResNet-18 order (64 … 512 channels), each followed by
    two BN-like vectors [C_out], until ``target`` parameters; the last conv's C_out is trimmed."""
    plan = [(3, 64)] + [(64, 64)] * 4
    for c_in, c in ((64, 128), (128, 256), (256, 512)):
        plan += [(c_in, c)] + [(c, c)] * 3
    shapes: list[tuple[int, ...]] = []
    total = 0
    i = 0
    while total < target:
        c_in, c_out = plan[i % len(plan)]
        i += 1
        room = target - total
        if c_in * 9 * c_out + 2 * c_out > room:
            c_out = max(1, room // (c_in * 9 + 2))
        shapes += [(c_out, c_in, 3, 3), (c_out,), (c_out,)]
        total += c_out * c_in * 9 + 2 * c_out
    return shapes


def make_params(shapes: list[tuple[int, ...]], device: torch.device, seed: int = 0) -> list[torch.Tensor]:
    """Kaiming-like conv weights, BN weight 1 / bias 0 (plus a little noise so no group is all zero)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k, shape in enumerate(shapes):
        if len(shape) > 1:
            fan_in = math.prod(shape[1:])
            p = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
        else:
            p = (1.0 if k % 3 == 1 else 0.0) + 0.01 * torch.randn(shape, generator=gen)
        out.append(p.to(device))
    return out


def section_a(args, device: torch.device) -> None:
    from rfdnn_bridge.optim import RFDNN, LNEPreconditioner

    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    reps = args.reps or (7 if args.quick else 15)
    lr = 1e-4
    print(f"\n== a. optimizer step alone (median of {reps} round-robin reps; fixed gradients; "
          f"target <= {TARGET_STEP}x SGD)")
    hdr = f"{'params':>10} {'tensors':>7}  {'optimizer':<40} {'ms/step':>10} {'ratio':>6} {'1st step ms':>11}  verdict"
    print(hdr)
    print("-" * len(hdr))
    for size in sizes:
        shapes = resnet_like_shapes(size)
        base = make_params(shapes, device)
        gen = torch.Generator().manual_seed(1)
        grads = [(1e-2 * torch.randn(p.shape, generator=gen)).to(device) for p in base]
        n_params = sum(p.numel() for p in base)

        def fresh() -> list[torch.Tensor]:
            return [p.clone().requires_grad_(True) for p in base]

        cases: list[tuple[str, Callable[[list[torch.Tensor]], object]]] = [
            ("SGD(momentum=0.9, foreach=True)", lambda ps: torch.optim.SGD(ps, lr=lr, momentum=0.9, foreach=True)),
        ]
        for mode in MODES:
            cases.append((
                f"RFDNN {mode}",
                lambda ps, m=mode: RFDNN(ps, lr=lr, momentum=0.9, mode=m, tau="auto", diagnostics=False),
            ))
        cases.append((
            "RFDNN exact, diagnostics=True",
            lambda ps: RFDNN(ps, lr=lr, momentum=0.9, mode="exact", tau="auto", diagnostics=True),
        ))
        cases.append((
            "LNEPreconditioner(SGD foreach) exact",
            lambda ps: LNEPreconditioner(torch.optim.SGD(ps, lr=lr, momentum=0.9, foreach=True), mode="exact",
                                         tau="auto", diagnostics=False),
        ))
        fns, first = [], []
        for _, make in cases:
            ps = fresh()
            opt = make(ps)

            def step(ps=ps, opt=opt) -> None:
                for p, g in zip(ps, grads):  # LNEPreconditioner replaces .grad: reset for every case alike
                    p.grad = g
                opt.step()

            sync(device)
            t0 = time.perf_counter()
            step()  # first step: momentum buffers, τ solve
            sync(device)
            first.append(time.perf_counter() - t0)
            fns.append(step)
        times = round_robin(fns, device, warmup=1, reps=reps)
        for (name, _), t, t1 in zip(cases, times, first):
            ratio = t / times[0]
            verdict = "(reference)" if name.startswith("SGD") else _verdict(ratio, TARGET_STEP)
            print(f"{n_params:>10,} {len(shapes):>7}  {name:<40} {_ms(t)} {ratio:6.2f} {_ms(t1):>11}  {verdict}")
        del fns
        if args.profile:
            profile_step(base, grads, lr, device)


def profile_step(base, grads, lr, device) -> None:
    """torch.profiler table of RFDNN(exact) steps (self time per op)."""
    from torch.profiler import ProfilerActivity, profile

    from rfdnn_bridge.optim import RFDNN

    ps = [p.clone().requires_grad_(True) for p in base]
    opt = RFDNN(ps, lr=lr, momentum=0.9, mode="exact", tau="auto", diagnostics=False)
    for p, g in zip(ps, grads):
        p.grad = g
    opt.step()
    opt.step()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(5):
            opt.step()
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print("\nprofile of 5 RFDNN(exact) steps:")
    print(prof.key_averages().table(sort_by=key, row_limit=14))


# --------------------------------------------------------------------------- b. training step
def _quant_resnet20(device: torch.device, seed: int = 0):
    from rfdnn_bridge.experiments.models import resnet20
    from rfdnn_bridge.layers import quantize_model

    torch.manual_seed(seed)
    return quantize_model(resnet20(), weights="clipped").to(device).train()


def section_b(args, device: torch.device) -> None:
    from rfdnn_bridge.optim import RFDNN

    batch = args.batch or (32 if args.quick else 128)
    reps = args.reps or (7 if args.quick else 9)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    labels = ["SGD(momentum=0.9, foreach=True)", "RFDNN weak (all parameters)"]
    models = [_quant_resnet20(device) for _ in range(2)]
    opts = [
        torch.optim.SGD(models[0].parameters(), lr=0.01, momentum=0.9, foreach=True),
        RFDNN(models[1].parameters(), lr=0.01, momentum=0.9, mode="weak", diagnostics=False),
    ]
    try:  # the metric on the quantized layers' latent weights only, the rest plain SGD
        from rfdnn_bridge.optim import lne_param_groups
    except ImportError:
        lne_param_groups = None
    if lne_param_groups is not None:
        models.append(_quant_resnet20(device))
        opts.append(RFDNN(lne_param_groups(models[2], mode="weak"), lr=0.01, momentum=0.9, diagnostics=False))
        labels.append("RFDNN weak (lne_param_groups)")

    def train_step(model, opt) -> Callable[[], None]:
        def run() -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return run

    def step_only(model, opt) -> Callable[[], None]:
        return lambda: opt.step()  # the gradients of the last training step stay in .grad

    fns = [train_step(m, o) for m, o in zip(models, opts)]
    fns += [step_only(m, o) for m, o in zip(models, opts)]
    times = round_robin(fns, device, warmup=2, reps=reps)
    k = len(models)
    train, alone = times[:k], times[k:]
    n = sum(p.numel() for p in models[0].parameters())
    n_tensors = len(list(models[0].parameters()))
    print(f"\n== b. training step of quantized resnet20 ({n:,} parameters, {n_tensors} tensors), "
          f"batch {batch}x3x32x32 (median of {reps}; target <= {TARGET_TRAIN}x)")
    hdr = f"{'optimizer':<36} {'step ms':>10} {'ratio':>6} {'opt.step ms':>11} {'implied':>7}  verdict"
    print(hdr)
    print("-" * len(hdr))
    for i, label in enumerate(labels):
        r = train[i] / train[0]
        implied = 1 + (alone[i] - alone[0]) / train[0]
        verdict = "(reference)" if i == 0 else _verdict(implied, TARGET_TRAIN)
        print(f"{label:<36} {_ms(train[i])} {r:6.2f} {_ms(alone[i]):>11} {implied:7.3f}  {verdict}")
    print("   implied = 1 + (opt.step − SGD's opt.step) / SGD's training step: the ratio free of the "
          "forward-backward's timing noise (the verdict uses it, as bench_estimators does)")


# --------------------------------------------------------------------------- c. RF-DNN step vs floor
def section_c(args, device: torch.device) -> None:
    from rfdnn_bridge.experiments.models import SmallCNN
    from rfdnn_bridge.layers import quantize_model
    from rfdnn_bridge.optim import RFDNN, rfdnn_closure

    batch_r = args.batch or (32 if args.quick else 128)
    reps = args.reps or (3 if args.quick else 5)
    gen = torch.Generator().manual_seed(3)
    setups = [
        ("resnet20 q", lambda: _quant_resnet20(device), (batch_r, 3, 32, 32)),
        ("SmallCNN q 8x8", lambda: quantize_model(SmallCNN(1, 10), weights="clipped").to(device).train(),
         (128, 1, 8, 8)),
    ]
    configs = [
        (((1, -1), (1, -1)), 5, "direct"),
        (((1, 0), (1, 0)), 3, "direct"),
        (((1, -1), (1, -1)), 5, "double"),
        (((1, 0), (1, 0)), 3, "double"),
    ]
    print(f"\n== c. RF-DNN step (flow=True, mode=weak) vs floor = passes x one forward-backward "
          f"(median of {reps}; target <= {TARGET_FLOW}x for n_grad=direct)")
    hdr = (f"{'model':<16} {'batch':>5} {'shifts':<18} {'passes':>6} {'n_grad':<7} {'step ms':>10} {'floor ms':>10} "
           f"{'ratio':>6}  verdict")
    print(hdr)
    print("-" * len(hdr))
    for label, make, shape in setups:
        x = torch.randn(*shape, generator=gen).to(device)
        y = torch.randint(0, 10, (shape[0],), generator=gen).to(device)
        torch.manual_seed(0)
        ref_model = make()
        ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.0)
        ref_closure = rfdnn_closure(ref_model, F.cross_entropy, x, y, ref_opt)
        fns, names, errors = [lambda: ref_closure()], [], {}
        for shifts, passes, n_grad in configs:
            torch.manual_seed(0)
            model = make()
            opt = RFDNN(model.parameters(), lr=1e-3, momentum=0.9, mode="weak", flow=True, shifts=shifts,
                        n_grad=n_grad, diagnostics=False)
            closure = rfdnn_closure(model, F.cross_entropy, x, y, opt)
            try:
                opt.step(closure)
            except Exception as err:  # e.g. double backward unsupported by an estimator
                errors[len(names)] = f"{type(err).__name__}: {err}"[:90]
                names.append((shifts, passes, n_grad))
                continue
            fns.append(lambda o=opt, c=closure: o.step(c))
            names.append((shifts, passes, n_grad))
        times = round_robin(fns, device, warmup=1, reps=reps)
        t_fb = times[0]
        it = iter(times[1:])
        for i, (shifts, passes, n_grad) in enumerate(names):
            sh = str(shifts).replace(" ", "")
            if i in errors:
                print(f"{label:<16} {shape[0]:>5} {sh:<18} {passes:>6} {n_grad:<7} {'—':>10} {_ms(passes * t_fb)} "
                      f"{'—':>6}  failed: {errors[i]}")
                continue
            t = next(it)
            r = t / (passes * t_fb)
            verdict = _verdict(r, TARGET_FLOW) if n_grad == "direct" else "(double: reported only)"
            print(f"{label:<16} {shape[0]:>5} {sh:<18} {passes:>6} {n_grad:<7} {_ms(t)} {_ms(passes * t_fb)} "
                  f"{r:6.2f}  {verdict}")
        print(f"{'':<16} one forward-backward (closure) = {1e3 * t_fb:.2f} ms")


# --------------------------------------------------------------------------- d. Gram vs dense
def section_d(args, device: torch.device) -> None:
    from rfdnn_bridge.discrete_flow import gram_norms

    ns = [512, 2048, 8192]
    reps = args.reps or (3 if args.quick else 7)
    m = 6
    dtype = torch.float64
    print(f"\n== d. N = ||sum_a c_a t_a t_a^T||_F^2, m = {m}, float64: gram_norms vs the dense n x n matrix "
          f"(median of {reps})")
    if device.type == "cuda":
        mem_how = "torch.cuda.max_memory_allocated above baseline"
    else:
        mem_how = "analytic: n^2*8 B (dense), (m*n + m^2 + n)*8 B (Gram)"
    print(f"memory: {mem_how}")
    hdr = (f"{'n':>6} {'gram ms':>10} {'dense ms':>10} {'speed-up':>9} {'gram mem':>11} {'dense mem':>11} "
           f"{'rel diff':>9}  note")
    print(hdr)
    print("-" * len(hdr))
    gen = torch.Generator().manual_seed(4)
    for n in ns:
        t = torch.tanh(torch.randn(1, m, n, generator=gen, dtype=dtype)).to(device)
        c = torch.randn(1, m, generator=gen, dtype=dtype).to(device)

        def gram() -> torch.Tensor:
            return gram_norms(c, t)[0]

        def dense() -> torch.Tensor:
            mat = (t[0].T * c[0]) @ t[0]  # Σ_a c_a t_a t_aᵀ, n×n
            return torch.linalg.vector_norm(mat) ** 2

        dense_bytes = n * n * 8
        gram_bytes = (m * n + m * m + n) * 8
        if dense_bytes > DENSE_LIMIT_BYTES:
            (tg,) = round_robin([gram], device, 1, reps)
            print(f"{n:>6} {_ms(tg)} {'skipped':>10} {'':>9} {gram_bytes / 2**20:9.3f}MB {dense_bytes / 2**30:9.2f}GB "
                  f"{'':>9}  dense skipped: > {DENSE_LIMIT_BYTES / 2**30:.0f} GB")
            continue
        if device.type == "cuda":
            peak = []
            for fn in (gram, dense):
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
                fn()
                torch.cuda.synchronize(device)
                peak.append(torch.cuda.max_memory_allocated(device) - base)
            gram_bytes, dense_bytes = peak
        tg, td = round_robin([gram, dense], device, 1, reps)
        a, b = float(gram()), float(dense())
        rel = abs(a - b) / max(abs(b), 1e-300)
        print(f"{n:>6} {_ms(tg)} {_ms(td)} {td / tg:8.1f}x {gram_bytes / 2**20:9.3f}MB {dense_bytes / 2**20:9.1f}MB "
              f"{rel:9.1e}")


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1M parameters only, batch 32 for resnet20, fewer reps")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, or auto (cuda if available; default)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--reps", type=int, default=0, help="round-robin repetitions (default: per section)")
    ap.add_argument("--batch", type=int, default=0, help="resnet20 batch for b and c (default 128, quick 32)")
    ap.add_argument("--only", default="a,b,c,d", help="comma-separated sections to run (default a,b,c,d)")
    ap.add_argument("--profile", action="store_true", help="a: also print a torch.profiler table of RFDNN(exact)")
    args = ap.parse_args(argv)

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name}), threads {torch.get_num_threads()}, "
          f"{'quick' if args.quick else 'full'} run")
    sections = {"a": section_a, "b": section_b, "c": section_c, "d": section_d}
    t0 = time.perf_counter()
    for key in [s.strip() for s in args.only.split(",") if s.strip()]:
        if key not in sections:
            print(f"unknown section {key!r}; the sections are a, b, c, d", file=sys.stderr)
            return 2
        sections[key](args, device)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
