"""RFDNN and LNEPreconditioner under DistributedDataParallel: 2 CPU processes, gloo backend.

DDP averages the gradients over ranks, so with equal halves of a global batch
and a mean loss the all-reduced gradient is the full-batch gradient: the
transform, acting after the all-reduce, must give every rank the same weights
and those of a single process on the whole batch.  Algorithm 2's translated
passes are all-reduced one by one (each closure call is a DDP backward), so
they stay in step as well.
"""

from __future__ import annotations

import os
import traceback

import pytest
import torch
import torch.distributed as dist
from torch import nn

from rfdnn_bridge.optim import LNEPreconditioner, RFDNN, rfdnn_closure

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch.distributed with gloo is not available"
)

STEPS = 3
CASES = {
    "lne": lambda ps: RFDNN(ps, lr=0.1, momentum=0.9, mode="exact", tau="auto"),
    "flow": lambda ps: RFDNN(ps, lr=0.1, mode="weak", flow=True, shifts=((1, 0), (1, 0)), alpha=0.1),
    "wrapper": lambda ps: LNEPreconditioner(torch.optim.SGD(ps, lr=0.1, momentum=0.9), mode="weak"),
}
DOUBLE = lambda ps: RFDNN(ps, lr=0.1, mode="weak", flow=True, shifts=((1, 0), (1, 0)), n_grad="double")  # noqa: E731


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4)).double()


def _batch():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(8, 1, 8, 8, generator=gen, dtype=torch.float64), torch.randint(0, 4, (8,), generator=gen)


def _train(model: nn.Module, opt, x, y, flow: bool, module: nn.Module) -> list[torch.Tensor]:
    lf = nn.CrossEntropyLoss()
    trace = []
    for _ in range(STEPS):
        if flow:
            opt.step(rfdnn_closure(model, lf, x, y, opt))
        else:
            opt.zero_grad()
            lf(model(x), y).backward()
            opt.step()
        trace.append(torch.cat([p.detach().reshape(-1) for p in module.parameters()]).clone())
    return trace


def _worker(rank: int, world: int, init: str, out: str, case: str) -> None:
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
        model = _model()
        ddp = nn.parallel.DistributedDataParallel(model)
        x, y = _batch()
        half = len(x) // world
        xs, ys = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
        opt = (DOUBLE if case == "flow-double" else CASES[case])(model.named_parameters())
        trace = _train(ddp, opt, xs, ys, case.startswith("flow"), model)
        torch.save(trace, os.path.join(out, f"rank{rank}.pt"))
        dist.destroy_process_group()
    except BaseException:  # surface the traceback in the parent
        with open(os.path.join(out, f"rank{rank}.err"), "w") as f:
            f.write(traceback.format_exc())
        raise


def _spawn(tmp_path, case):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    init = f"file://{tmp_path / 'store'}"
    procs = [ctx.Process(target=_worker, args=(r, 2, init, str(tmp_path), case)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.terminate()
    errors = [f.read_text() for f in sorted(tmp_path.glob("rank*.err"))]
    assert not hung, f"DDP workers hung; errors: {errors}"
    return procs, errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_ddp_ranks_agree_and_equal_one_process_on_the_whole_batch(tmp_path, case):
    procs, errors = _spawn(tmp_path, case)
    assert all(p.exitcode == 0 for p in procs), "\n".join(errors)

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    model = _model()
    x, y = _batch()
    single = _train(model, CASES[case](model.named_parameters()), x, y, case.startswith("flow"), model)
    for step in range(STEPS):
        assert torch.equal(ranks[0][step], ranks[1][step]), f"ranks differ at step {step}"
        torch.testing.assert_close(ranks[0][step], single[step], rtol=1e-12, atol=1e-12)


def test_double_backward_under_ddp_is_a_clear_error(tmp_path):
    """DDP's all-reduce does not support create_graph=True: the error says so and names the way out."""
    procs, errors = _spawn(tmp_path, "flow-double")
    assert all(p.exitcode != 0 for p in procs) and errors
    assert all("under DDP use n_grad='direct'" in e for e in errors)
