"""Command line: ``lnegeom validate`` (also ``python -m lnegeom validate``)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

__all__ = ["main", "OneLineParser", "UsageError", "positive_int", "output_folder", "run_cli"]


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(Exception):
    """A bad command line: reported as one line ``<prog>: error: <message>``, exit status 2."""


def positive_int(text: str) -> int:
    """argparse type of counts (``--seeds``, ``--epochs``, ``--batch-size``, …): an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def output_folder(path: Path, option: str = "--out") -> Path:
    """``path`` as an output folder, created if needed; a :class:`UsageError` if it is a file or
    cannot be created or written."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, not a folder; pass a folder (it is created if missing)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot create the folder ({err.strerror or err})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder is not writable; pass another one")
    return path


def run_cli(prog: str, command: Callable[[], int]) -> int:
    """``command()``, with a :class:`UsageError` turned into one line on stderr and exit status 2."""
    try:
        return command()
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="lnegeom", description="Geometry toolkit for LNE metrics and Ricci flow.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="run the numerical checks and write a report (JSON, markdown, PNG plots)")
    v.add_argument("--out", type=Path, default=Path("lnegeom-report"),
                   help="report folder (default: ./lnegeom-report/)")
    v.add_argument("--quick", action="store_true", help="smaller sizes (seconds instead of minutes)")
    v.add_argument("--only", default=None,
                   help="comma-separated check ids or sections to run (see --list)")
    v.add_argument("--list", action="store_true", help="list the checks and exit")
    v.add_argument("--seed", type=int, default=0, help="random seed for sampled points (default 0)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return run_cli("lnegeom", lambda: _validate(args))
    return 2  # pragma: no cover - argparse enforces the subcommand


def _validate(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from rich.console import Console

    from .validate import (
        REGISTRY,
        Context,
        ValidationInterrupted,
        print_summary,
        publish_report,
        run_checks,
        write_report,
    )

    console = Console(width=max(140, Console().width))
    if args.list:
        for e in REGISTRY.values():
            console.print(f"{e.id:28s} {e.section:12s} {e.title}")
        return 0
    ids = None
    if args.only is not None:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        sections = {e.section for e in REGISTRY.values()}
        unknown = [w for w in wanted if w not in REGISTRY and w not in sections]
        if unknown:
            raise UsageError(f"--only: unknown check or section {', '.join(unknown)}; "
                             f"the checks are {', '.join(REGISTRY)}; the sections {', '.join(sorted(sections))}")
        if not wanted:
            raise UsageError(f"--only {args.only!r} names no check; see lnegeom validate --list")
        ids = [e.id for e in REGISTRY.values() if e.id in wanted or e.section in wanted]
    out = output_folder(args.out)
    # the checks write into a staging folder; the report replaces the previous one only when whole
    ctx = Context(out=Path(tempfile.mkdtemp(prefix=".validate-", dir=out)), quick=args.quick, seed=args.seed)
    try:
        results = run_checks(ctx, ids, progress=not args.no_progress)
    except ValidationInterrupted as stop:
        write_report(ctx, stop.results, not_run=stop.not_run)
        partial = out / "incomplete"
        shutil.rmtree(partial, ignore_errors=True)
        os.replace(ctx.out, partial)
        print_summary(stop.results, console)
        console.print(f"[red]interrupted[/] after {len(stop.results)} of {len(stop.results) + len(stop.not_run)} "
                      f"checks: the previous report in {out} is untouched; this run's partial report, marked "
                      f"incomplete, is in {partial}")
        return 130
    except BaseException:
        shutil.rmtree(ctx.out, ignore_errors=True)
        raise
    write_report(ctx, results)
    publish_report(ctx.out, out)
    shutil.rmtree(out / "incomplete", ignore_errors=True)  # an older partial report is superseded
    jpath, mpath = out / "report.json", out / "report.md"
    print_summary(results, console)
    n_fail = sum(not r.passed for r in results)
    console.print(f"report: {mpath} and {jpath}" + (f" — [red]{n_fail} check(s) failed[/]" if n_fail else
                                                     " — [green]all checks passed[/]"))
    return 1 if n_fail else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
