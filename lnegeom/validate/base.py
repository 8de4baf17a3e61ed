"""Check registry and result type for ``lnegeom validate``.

A check is a function ``(ctx: Context) -> CheckResult`` registered with
:func:`check`; each section's checks live in their own module of this
package and import the library as a user would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["CheckResult", "Context", "check", "REGISTRY", "relative_error", "fit_decay_rate", "save_figure"]


@dataclass
class CheckResult:
    """Outcome of one check: measured numbers beside the theoretical ones."""

    id: str
    title: str
    section: str
    passed: bool
    measured: dict[str, Any]
    expected: dict[str, Any]
    criterion: str
    details: str = ""
    plots: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class Context:
    """What a check may use: output folder, size preset, random seed."""

    out: Path
    quick: bool = False
    seed: int = 0

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def plot_path(self, name: str) -> Path:
        (self.out / "plots").mkdir(parents=True, exist_ok=True)
        return self.out / "plots" / name


@dataclass
class _Entry:
    id: str
    title: str
    section: str
    fn: Callable[[Context], CheckResult]


REGISTRY: dict[str, _Entry] = {}


def check(id: str, title: str, section: str):
    """Register a check function under ``id`` (unique)."""

    def deco(fn: Callable[[Context], CheckResult]):
        if id in REGISTRY:
            raise ValueError(f"check id {id!r} registered twice")
        REGISTRY[id] = _Entry(id, title, section, fn)
        return fn

    return deco


def relative_error(measured: float, expected: float) -> float:
    """|measured − expected| / max(|expected|, tiny)."""
    return abs(measured - expected) / max(abs(expected), 1e-300)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    return obj


def fit_decay_rate(t: np.ndarray, y: np.ndarray, window: tuple[float, float]) -> tuple[float, float]:
    """(−slope of the least-squares fit of log y against t over ``window``, decades of y in the window)."""
    w = (t >= window[0] - 1e-12) & (t <= window[1] + 1e-12)
    if w.sum() < 3:
        raise ValueError(f"fit window {window} holds {int(w.sum())} saved times; need at least 3")
    rate = -float(np.polyfit(t[w], np.log(y[w]), 1)[0])
    return rate, float(np.log10(y[w][0] / y[w][-1]))


def save_figure(fig: Any, ctx: Context, name: str) -> str:
    """Save a matplotlib figure under the report's ``plots/`` and close it; returns the relative path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(ctx.plot_path(name), dpi=110)
    plt.close(fig)
    return f"plots/{name}"
