"""Command line: ``lnegeom validate`` (also ``python -m lnegeom validate``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lnegeom", description="Geometry toolkit for LNE metrics and Ricci flow.")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args)
    return 2  # pragma: no cover - argparse enforces the subcommand


def _validate(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from rich.console import Console

    from .validate import REGISTRY, Context, print_summary, run_checks, write_report

    console = Console(width=max(140, Console().width))
    if args.list:
        for e in REGISTRY.values():
            console.print(f"{e.id:28s} {e.section:12s} {e.title}")
        return 0
    ids = None
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        ids = [e.id for e in REGISTRY.values() if e.id in wanted or e.section in wanted]
        unknown = [w for w in wanted if w not in REGISTRY and w not in {e.section for e in REGISTRY.values()}]
        if unknown:
            console.print(f"[red]unknown check or section: {', '.join(unknown)}; "
                          f"known: {', '.join(REGISTRY)}[/]")
            return 2
    ctx = Context(out=args.out, quick=args.quick, seed=args.seed)
    ctx.out.mkdir(parents=True, exist_ok=True)
    results = run_checks(ctx, ids, progress=not args.no_progress)
    jpath, mpath = write_report(ctx, results)
    print_summary(results, console)
    n_fail = sum(not r.passed for r in results)
    console.print(f"report: {mpath} and {jpath}" + (f" — [red]{n_fail} check(s) failed[/]" if n_fail else
                                                     " — [green]all checks passed[/]"))
    return 1 if n_fail else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
