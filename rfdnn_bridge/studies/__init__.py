"""Estimator studies of the three STE papers, as runnable experiments (``rfdnn study NAME``).

* :mod:`~rfdnn_bridge.studies.yin` — Yin et al. (ICLR 2019): coarse gradients of a binarized-ReLU
  network against the true population gradient.
* :mod:`~rfdnn_bridge.studies.sbn` — Shekhovtsov & Yanush (2021): stochastic binary networks, the
  bias/variance of ST gradients against exact enumeration, and the mirror-descent view.
* :mod:`~rfdnn_bridge.studies.reste` — ReSTE (Wu et al., ICCV 2023): estimating error against
  gradient stability, with the LNE gradient added.

Every study module has ``run(out, *, seed=0, quick=False, progress=True) -> dict``: it writes
``report.json``, ``report.md`` and PNG plots into ``out`` and returns the JSON content.  Every number
in a report is computed by the run; ``quick=True`` is a tiny version for tests and notebooks.
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["STUDIES", "run_study", "write_report", "progress_bar", "cosine", "check_seed", "z_score"]

#: study name → (module, one-line description)
STUDIES: dict[str, tuple[str, str]] = {
    "yin": ("rfdnn_bridge.studies.yin", "Yin et al. 2019: coarse gradients of STEs vs the population gradient"),
    "sbn": ("rfdnn_bridge.studies.sbn", "Shekhovtsov & Yanush 2021: ST gradients in stochastic binary networks"),
    "reste": ("rfdnn_bridge.studies.reste", "ReSTE 2023: estimating error vs gradient stability, with LNE"),
}


def run_study(name: str, out: Path, **kwargs: Any) -> dict:
    """Run the study ``name`` (a key of :data:`STUDIES`) into folder ``out``."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; the studies are {list(STUDIES)}")
    module = importlib.import_module(STUDIES[name][0])
    return module.run(Path(out), **kwargs)


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if obj != obj else ("inf" if obj > 0 else "-inf")  # strict JSON: NaN → null, ±inf → string
    return obj


def write_report(out: Path, data: dict, markdown: str) -> dict:
    """Write ``out/report.json`` (``data``, numpy values converted, NaN → null, ±inf → "inf"/"-inf") and
    ``out/report.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean = _jsonable(data)
    (out / "report.json").write_text(json.dumps(clean, indent=2, allow_nan=False))
    (out / "report.md").write_text(markdown)
    return clean


def cosine(a: Any, b: Any, eps: float = 1e-12) -> Any:
    """Row-wise (last axis) cosine of ``a`` and ``b``; NaN where either norm is ≤ ``eps`` or not finite —
    an undefined angle is never reported as a number."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > eps) & (nb > eps) & np.isfinite(na) & np.isfinite(nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, (a * b).sum(-1) / np.where(ok, na * nb, 1.0), np.nan)


def check_seed(seed: Any) -> int:
    """A seed (``numbers.Integral``, not bool) ``>= 0`` as ``int``, else ``ValueError`` naming it."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got seed={seed!r}")
    return int(seed)


def z_score(diff: Any, se: Any, atol: float = 0.0) -> Any:
    """``|diff| / se`` element-wise; where ``se = 0``: 0 if ``|diff| ≤ atol``, else ``inf`` — never NaN."""
    import numpy as np

    diff, se = np.abs(np.asarray(diff, dtype=np.float64)), np.asarray(se, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff <= atol, 0.0, np.inf))


@contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields ``advance(n=1)``.  Disabled: a no-op."""
    if not enabled:
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
