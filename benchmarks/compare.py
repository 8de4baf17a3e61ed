"""Before/after: run benchmark scripts of two revisions side by side and print the ratios of their times.

Run:  python benchmarks/compare.py --against REV [--rounds k] [--args "--quick"] NAME [NAME ...]
      (or ``bash benchmarks/run.sh --against REV flow optim``)

``REV`` (a commit, tag or branch) is exported with ``git archive`` into a temporary folder; NAME is a
script ``benchmarks/bench_NAME.py``.  Each round runs the script on the packages of ``REV`` and on
those of the working tree, one after the other (the order alternates between rounds, so that drift
of a loaded machine hits both alike): the same script, the working tree's, with ``PYTHONPATH`` set
to the tree whose ``lnegeom`` / ``rfdnn_bridge`` it is to import, so that only the library differs
(``--own-scripts``: each revision runs its own script instead).

The scripts print their timings as text; this one pairs the lines of the two outputs by their
*label* (the line with every number replaced by ``#``) and every duration on a paired line (a number
followed by ``s``, ``ms``, ``µs`` or ``us``, not a bound such as ``< 5 s``) by its position, takes the
median over the rounds and prints ``after / before`` per duration, the whole script's wall time, and
per script the geometric mean of the ratios.  A ratio above 1 is a slowdown.  Lines present in only
one output are not paired.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
_NUMBER = r"[-+]?\d+(?:[.,]\d+)*(?:\.\d+)?(?:[eE][-+]?\d+)?"
_DURATION = re.compile(rf"({_NUMBER})\s*(µs|us|ms|s)\b")
_UNIT = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}
_BOUNDS = ("<", ">", "≤", "≥")  # "ETD < 5 s": a target the script states, not a measurement


def durations(output: str) -> dict[tuple[str, int], list[float]]:
    """``{(label, occurrence): [seconds, ...]}`` for every line of ``output`` that holds a duration."""
    found: dict[tuple[str, int], list[float]] = {}
    seen: dict[str, int] = {}
    for line in output.splitlines():
        values = [float(m.group(1).replace(",", "")) * _UNIT[m.group(2)] for m in _DURATION.finditer(line)
                  if not line[:m.start()].rstrip().endswith(_BOUNDS)]
        if not values:
            continue
        label = " ".join(re.sub(_NUMBER, "#", line).split())
        k = seen.get(label, 0)
        seen[label] = k + 1
        found[(label, k)] = values
    return found


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` under ``into`` (``git archive``; refuses an unknown revision by name)."""
    proc = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"compare: error: cannot export revision {rev!r}: {proc.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(proc.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_script(tree: Path, name: str, args: list[str], scripts: Optional[Path] = None) -> tuple[float, str]:
    """Wall time and stdout of ``bench_<name>.py`` of ``scripts`` (default: ``tree``) importing the packages
    of ``tree``."""
    script = (scripts or tree) / "benchmarks" / f"bench_{name}.py"
    if not script.is_file():
        raise SystemExit(f"compare: error: {script} does not exist (names are bench_NAME.py without bench_/.py)")
    env = dict(os.environ, PYTHONPATH=str(tree))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *args], cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"compare: error: {script} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _fmt(seconds: float) -> str:
    return f"{seconds:9.3f} s " if seconds >= 1 else f"{1e3 * seconds:9.3f} ms"


def compare(name: str, before: Path, after: Path, args: list[str], rounds: int, own_scripts: bool = False
            ) -> list[float]:
    """Print the paired durations of one script; return its ratios (after / before)."""
    walls: dict[str, list[float]] = {"before": [], "after": []}
    outs: dict[str, list[dict[tuple[str, int], list[float]]]] = {"before": [], "after": []}
    for r in range(rounds):
        order = [("before", before), ("after", after)]
        for which, tree in order if r % 2 == 0 else order[::-1]:
            wall, out = run_script(tree, name, args, None if own_scripts else after)
            walls[which].append(wall)
            outs[which].append(durations(out))
    keys = [k for k in outs["after"][0] if all(k in o for o in outs["before"] + outs["after"])]
    print(f"\n== bench_{name}.py {' '.join(args)}  ({rounds} round{'s' * (rounds > 1)}, medians)")
    print(f"{'line (numbers as #)':<70} {'before':>12} {'after':>12} {'after/before':>13}")
    ratios = []
    for key in keys:
        for i in range(len(outs["after"][0][key])):
            vals = [[o[key][i] for o in outs[w] if len(o[key]) > i] for w in ("before", "after")]
            if not all(vals):
                continue
            b, a = statistics.median(vals[0]), statistics.median(vals[1])
            if b <= 0 or a <= 0:
                continue
            ratios.append(a / b)
            print(f"{key[0][:68] + (f' [{i}]' if i else ''):<70} {_fmt(b)} {_fmt(a)} {a / b:12.3f}x")
    wb, wa = statistics.median(walls["before"]), statistics.median(walls["after"])
    print(f"{'whole script (wall, imports included)':<70} {_fmt(wb)} {_fmt(wa)} {wa / wb:12.3f}x")
    if ratios:
        gm = math.exp(statistics.fmean(math.log(x) for x in ratios))
        print(f"geometric mean over {len(ratios)} paired durations: {gm:.3f}x "
              f"(min {min(ratios):.3f}x, max {max(ratios):.3f}x)")
    return ratios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", required=True, metavar="REV", help="the revision to compare with (before)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side (default 2)")
    ap.add_argument("--args", default="--quick", help='arguments for every script (default "--quick")')
    ap.add_argument("--own-scripts", action="store_true", help="each revision runs its own benchmark script")
    ap.add_argument("names", nargs="+", help="benchmark names: flow, optim, ... (bench_NAME.py)")
    opts = ap.parse_args(argv)
    if opts.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {opts.rounds}")
    args = shlex.split(opts.args)
    with tempfile.TemporaryDirectory(prefix="bench-before-") as tmp:
        before = export(opts.against, Path(tmp))
        print(f"before: {opts.against} (exported to {before}); after: the working tree {ROOT}")
        every = []
        for name in opts.names:
            every += compare(name, before, ROOT, args, opts.rounds, opts.own_scripts)
    if every:
        gm = math.exp(statistics.fmean(math.log(x) for x in every))
        print(f"\nall scripts: geometric mean after/before = {gm:.3f}x over {len(every)} paired durations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
