"""Run the registered checks and write the report (JSON, markdown, console table)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import traceback
from pathlib import Path
from typing import Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .base import REGISTRY, CheckResult, Context

__all__ = ["run_checks", "write_report", "publish_report", "print_summary", "ValidationInterrupted"]


class ValidationInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_checks`: carries the results of the checks that finished and
    the ids of those that did not run, so that a partial report can be written."""

    def __init__(self, results: list[CheckResult], not_run: list[str]):
        super().__init__(f"interrupted after {len(results)} of {len(results) + len(not_run)} checks")
        self.results, self.not_run = results, not_run


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) > 6:
        return f"[{', '.join(_fmt(x) for x in v[:6])}, …]"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def run_checks(ctx: Context, ids: Iterable[str] | None = None, progress: bool = True,
               console: Console | None = None) -> list[CheckResult]:
    """Run the checks ``ids`` (default: all registered) with a progress bar.

    A check that raises is recorded as failed with the traceback, so one bad
    check never hides the others' results.
    """
    entries = list(REGISTRY.values()) if ids is None else [REGISTRY[i] for i in ids]
    results: list[CheckResult] = []
    console = console or Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("validate", total=len(entries))
        for i, e in enumerate(entries):
            bar.update(task, description=f"{e.section}: {e.title}")
            t0 = time.perf_counter()
            try:
                res = e.fn(ctx)
            except KeyboardInterrupt:
                raise ValidationInterrupted(results, [x.id for x in entries[i:]]) from None
            except Exception as exc:  # recorded, reported, and counted as a failure
                res = CheckResult(e.id, e.title, e.section, False, {}, {}, "runs without error",
                                  error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            res.seconds = time.perf_counter() - t0
            results.append(res)
            bar.advance(task)
    return results


def publish_report(stage: Path, out: Path) -> None:
    """Move a report written into ``stage`` into ``out``, replacing the previous one: the plots
    folder first, then report.md, then report.json (whose presence marks a whole report);
    files of the previous report that the new one does not have are removed."""
    old_plots, new_plots = out / "plots", stage / "plots"
    for name in ("report.json", "report.md"):
        (out / name).unlink(missing_ok=True)
    if old_plots.exists():
        shutil.rmtree(old_plots)
    if new_plots.exists():
        os.replace(new_plots, old_plots)
    os.replace(stage / "report.md", out / "report.md")
    os.replace(stage / "report.json", out / "report.json")
    shutil.rmtree(stage, ignore_errors=True)


def write_report(ctx: Context, results: list[CheckResult], not_run: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``ctx.out``; with ``not_run`` (an interrupted
    run) the report is marked incomplete (``meta.complete`` false, a banner in the markdown) and
    does not count as passed."""
    import lnegeom

    ctx.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "lnegeom_version": lnegeom.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": ctx.quick,
        "seed": ctx.seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": not not_run,
        "passed": all(r.passed for r in results) and not not_run,
        "n_checks": len(results),
        "n_failed": sum(not r.passed for r in results),
        "not_run": list(not_run),
    }
    jpath = ctx.out / "report.json"
    jpath.write_text(json.dumps({"meta": meta, "checks": [r.to_json() for r in results]}, indent=2))

    lines = ["# lnegeom validation report", "",
             f"{meta['n_checks']} checks, {meta['n_failed']} failed "
             f"(lnegeom {meta['lnegeom_version']}, Python {meta['python']}, "
             f"{'quick' if ctx.quick else 'default'} sizes, seed {ctx.seed}).", "",
             "Conventions: docs/math.md §1 — Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij), "
             "R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp, Ric_jk = R^p_pjk.", ""]
    if not_run:
        lines[2:2] = [f"**INCOMPLETE: interrupted after {len(results)} of {len(results) + len(not_run)} checks**; "
                      f"not run: {', '.join(not_run)}.", ""]
    sections: dict[str, list[CheckResult]] = {}
    for r in results:
        sections.setdefault(r.section, []).append(r)
    for sec, rs in sections.items():
        lines += [f"## {sec}", "", "| check | result | measured | expected | criterion |", "|---|---|---|---|---|"]
        for r in rs:
            meas = "; ".join(f"{k} = {_fmt(v)}" for k, v in r.measured.items())
            exp = "; ".join(f"{k} = {_fmt(v)}" for k, v in r.expected.items())
            lines.append(f"| {r.title} | {'PASS' if r.passed else 'FAIL'} | {meas} | {exp} | {r.criterion} |")
        lines.append("")
        for r in rs:
            if r.details or r.plots or r.error:
                lines += [f"### {r.title}", ""]
                if r.details:
                    lines += [r.details, ""]
                for p in r.plots:
                    lines += [f"![{r.title}]({p})", ""]
                if r.error:
                    lines += ["```", r.error.strip(), "```", ""]
    mpath = ctx.out / "report.md"
    mpath.write_text("\n".join(lines))
    return jpath, mpath


def print_summary(results: list[CheckResult], console: Console | None = None) -> None:
    """Print one row per check: section, check, PASS/FAIL, key numbers, time."""
    console = console or Console()
    table = Table(title="lnegeom validate")
    for col in ("section", "check", "result", "measured", "expected", "s"):
        table.add_column(col, overflow="fold")
    for r in results:
        status = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
        meas = "; ".join(f"{k}={_fmt(v)}" for k, v in list(r.measured.items())[:3])
        exp = "; ".join(f"{k}={_fmt(v)}" for k, v in list(r.expected.items())[:3])
        if r.error:
            meas = r.error.splitlines()[0]
        table.add_row(r.section, r.title, status, meas, exp, f"{r.seconds:.1f}")
    console.print(table)
