"""Timing helpers shared by the benchmarks: device synchronisation and round-robin repetitions."""

from __future__ import annotations

import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work (no-op on CPU), so that wall-clock times mean something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_robin_times(
    fns: list[Callable[[], object]], device: torch.device, warmup: int, repeats: int
) -> list[list[float]]:
    """Seconds of each call of each function, ``repeats`` rounds run round-robin so that drift of a
    loaded machine hits all alike (after ``warmup`` calls of each)."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            ts.append(time.perf_counter() - t0)
    return times
