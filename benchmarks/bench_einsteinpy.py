"""Ricci tensor and scalar of every EinsteinPy predefined metric: lnegeom vs EinsteinPy.

Run with ``bash benchmarks/run.sh einsteinpy`` (it makes ``benchmarks/.venv-bench``
with einsteinpy; einsteinpy is not a requirement of lnegeom).

The metrics are discovered from ``einsteinpy.symbolic.predefined`` (every public
function whose name is not all lower case, as its own ``find`` does), each built with
its default arguments; those that cannot be built are listed with the reason.  Each
tool runs in a fresh interpreter (no shared sympy cache), timed from the metric
object to the last component (imports and building the metric excluded):

* ours:       ``m = SymbolicMetric(metric.syms, metric.tensor())``; ``m.ricci()``,
  ``m.scalar()``;
* EinsteinPy: ``ric = RicciTensor.from_metric(metric)``; ``ric.simplify()``;
  ``R = RicciScalar.from_riccitensor(ric)``; ``R.simplify()`` — as its users do.

Where that EinsteinPy run times out, a second one, *raw*, is made so that agreement
can still be decided: the same ``RicciTensor.from_metric`` and
``RicciScalar.from_riccitensor``, without ``.simplify()`` and with EinsteinPy's own
internal simplify calls (each Riemann component, the Ricci contraction, the index
change, the inverse metric; see ``_disable_einsteinpy_simplify``) made the identity.
Its components are unsimplified but exact, and agreement with them is decided
exactly as below, the bottom-up rational-function reduction (``field`` in
``_symcheck``) first, since ``is_zero``/``cancel`` expand these large expressions
whole.  The row then says e.g. ``exact (raw)``; the EinsteinPy and ratio columns
still give the timed-out simplified run (``>T``), the raw column the raw run's
seconds (not comparable to the others: nothing is simplified).  The raw run and its
check together have ``--raw-budget`` seconds per metric.

Agreement of the n(n+1)/2 Ricci components and the scalar is decided exactly (see
``benchmarks/_symcheck.py``: ``lnegeom.symbolic.is_zero`` of the difference, then
``cancel``, then ``simplify`` under a time limit); components none of them shows
to be 0 are *undecided*, and then only the separate numeric check (random points,
parameters random positive rationals; labelled numeric, never exact) can say
``numeric-only`` or ``DISAGREE``.

Where lnegeom fails or times out on a metric, EinsteinPy is not run on it (there is
nothing to compare).  Exit status: 1 if any metric DISAGREEs or lnegeom fails on a
metric EinsteinPy can build; else 0.

Usage: python benchmarks/bench_einsteinpy.py [--only NAME ...] [--timeout S]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _symcheck as sc  # noqa: E402


def _predefined():
    from einsteinpy.symbolic import predefined

    names = []
    for name in sorted(dir(predefined)):
        obj = getattr(predefined, name)
        if name.startswith("_") or name.islower() or not inspect.isfunction(obj):
            continue
        names.append(name)
    return predefined, names


def _build(name: str):
    predefined, _ = _predefined()
    m = getattr(predefined, name)()
    if m.config != "ll":
        m = m.lower_config()
    return m


def _worker(tool: str, name: str) -> None:
    """Compute Ricci tensor and scalar of one metric in this (fresh) interpreter; print JSON."""
    m = _build(name)
    n = len(m.syms)
    if tool == "ours":
        from lnegeom.symbolic import SymbolicMetric

        t0 = time.perf_counter()
        sm = SymbolicMetric(m.syms, m.tensor())
        ric = sm.ricci()
        R = sm.scalar()
        dt = time.perf_counter() - t0
        comps = [[ric[i, j] for j in range(n)] for i in range(n)]
    elif tool == "einsteinpy":
        from einsteinpy.symbolic import RicciScalar, RicciTensor

        t0 = time.perf_counter()
        rt = RicciTensor.from_metric(m)
        rt.simplify()
        rs = RicciScalar.from_riccitensor(rt)
        rs.simplify()
        R = rs.expr
        dt = time.perf_counter() - t0
        arr = rt.tensor()
        comps = [[arr[i, j] for j in range(n)] for i in range(n)]
    elif tool == "einsteinpy-raw":
        from einsteinpy.symbolic import RicciScalar, RicciTensor

        skipped = _disable_einsteinpy_simplify()
        t0 = time.perf_counter()
        rt = RicciTensor.from_metric(m)
        rs = RicciScalar.from_riccitensor(rt)
        R = rs.expr
        dt = time.perf_counter() - t0
        arr = rt.tensor()
        comps = [[arr[i, j] for j in range(n)] for i in range(n)]
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    out = {"time": dt, "ricci": [[sc.dump(e) for e in row] for row in comps], "scalar": sc.dump(R)}
    if tool == "einsteinpy-raw":
        out["skipped_simplify"] = skipped[0]
    print(json.dumps(out))


def _disable_einsteinpy_simplify():
    """Make EinsteinPy's own internal ``simplify`` calls the identity (this process only).

    ``RicciTensor.from_metric`` / ``RicciScalar.from_riccitensor`` simplify internally
    even without ``.simplify()``: ``RiemannCurvatureTensor.from_christoffels`` calls
    ``sympy.simplify`` on each of the n⁴ components, ``RicciTensor.from_riemann`` and
    ``RicciScalar.from_riccitensor`` call ``helpers.simplify_sympy_array``, the index
    change to 'ul' calls ``simplify`` (tensor.py) and ``MetricTensor.inv`` calls
    ``sympy.simplify`` on the inverse.  Those are all its call sites (einsteinpy 0.4, by
    reading einsteinpy/symbolic/*.py): the modules' ``sympy`` is replaced by a proxy
    whose ``simplify`` returns its argument, and tensor.py's imported ``simplify`` too.
    Everything else — ChristoffelSymbols.from_metric (``Matrix.inv``, ``diff``), the
    Riemann formula, the contractions — is EinsteinPy's own code, unchanged.  Returns a
    one-element list counting the skipped calls."""
    import types

    import einsteinpy.symbolic.helpers as helpers
    import einsteinpy.symbolic.metric as metric
    import einsteinpy.symbolic.riemann as riemann
    import einsteinpy.symbolic.tensor as tensor
    import sympy

    count = [0]

    def identity(expr, *args, **kwargs):
        count[0] += 1
        return expr

    class _SympyNoSimplify(types.ModuleType):
        def __getattr__(self, name):
            return getattr(sympy, name)

    proxy = _SympyNoSimplify("sympy")
    proxy.simplify = identity
    for mod in (helpers, metric, riemann):
        assert mod.sympy is sympy, mod
        mod.sympy = proxy
    assert tensor.simplify is sympy.simplify
    tensor.simplify = identity
    return count


def _run(tool: str, name: str, timeout: float):
    """(seconds, result dict) or (None, 'timeout') or (None, 'error: ...')."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, name]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if out.returncode != 0:
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        return None, "error: " + (lines[-1] if lines else f"exit {out.returncode}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["time"], d


def _fmt_t(t, status, timeout):
    if t is not None:
        return f"{t:9.3f}"
    word = {"timeout": ">" + str(int(timeout)), "not run": "-"}.get(status, "error")
    return f"{word:>9s}"


def _short(msg: str, head: int = 160, tail: int = 340) -> str:
    return msg if len(msg) <= head + tail + 5 else msg[:head] + " [...] " + msg[-tail:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "NAME"), help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", default=None, help="predefined metric names to run")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per EinsteinPy run")
    ap.add_argument("--ours-timeout", type=float, default=60.0, help="seconds per lnegeom run")
    ap.add_argument("--check-budget", type=float, default=60.0,
                    help="seconds per metric for the exact agreement check")
    ap.add_argument("--raw-budget", type=float, default=300.0,
                    help="seconds per metric for the unsimplified EinsteinPy run and its check, "
                         "where the simplified run timed out")
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return 0
    try:
        _, names = _predefined()
    except ImportError:
        print("einsteinpy is not installed here; run `bash benchmarks/run.sh einsteinpy` "
              "(it makes benchmarks/.venv-bench)")
        return 1
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f"unknown metric(s) {unknown}; predefined: {names}")
            return 1
        names = [n for n in names if n in args.only]

    import einsteinpy
    import sympy as sp

    print(f"EinsteinPy {einsteinpy.__version__}, sympy {sp.__version__}: {len(names)} predefined metrics "
          f"in einsteinpy.symbolic.predefined")
    print("Ricci tensor + scalar, symbolic; seconds, each run in a fresh interpreter; "
          f"timeouts {int(args.ours_timeout)} s (lnegeom), {int(args.timeout)} s (EinsteinPy)")
    head = (f"{'metric':28s} {'n':>2s}  {'agreement':18s} {'numeric':8s} {'lnegeom':>9s} {'EinsteinPy':>10s} "
            f"{'ratio':>9s} {'raw':>8s}")
    print(head)
    print("-" * len(head))
    rows, notes, unbuilt = [], [], []
    t_start = time.perf_counter()
    for name in names:
        try:
            m = _build(name)
        except Exception as exc:
            unbuilt.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        coords, n = tuple(m.syms), len(m.syms)
        to, ro = _run("ours", name, args.ours_timeout)
        agreement, numeric = "-", "-"
        traw = None
        if to is None:
            # nothing to compare with: EinsteinPy is not run (saves its timeout)
            te, re_ = None, "not run"
            agreement = "lnegeom error" if ro.startswith("error") else "lnegeom timeout"
            notes.append(f"{name}: lnegeom {_short(ro)}; EinsteinPy not run")
        else:
            te, re_ = _run("einsteinpy", name, args.timeout)
            if te is None:
                agreement = "peer " + ("timeout" if re_ == "timeout" else "error")
            if re_ == "timeout":
                # decide agreement against EinsteinPy's unsimplified result instead
                t_raw0 = time.monotonic()
                traw, rraw = _run("einsteinpy-raw", name, min(args.timeout, args.raw_budget / 2))
                if traw is None:
                    notes.append(f"{name}: EinsteinPy timed out ({int(args.timeout)} s) with .simplify(), "
                                 f"and its unsimplified run: {_short(rraw)} (agreement not checked)")
            elif te is None:
                notes.append(f"{name}: EinsteinPy {_short(re_)} (agreement not checked)")
        peer = re_ if te is not None else (rraw if traw is not None else None)
        if to is not None and peer is not None:
            raw = te is None
            labels, ours, theirs = [], [], []
            for i in range(n):
                for j in range(i, n):
                    labels.append(f"Ric[{i},{j}]")
                    ours.append(sc.load(ro["ricci"][i][j]))
                    theirs.append(sc.load(peer["ricci"][i][j]))
            labels.append("R")
            ours.append(sc.load(ro["scalar"]))
            theirs.append(sc.load(peer["scalar"]))
            g = [sc.plain(e) for row in m.tensor().tolist() for e in row]
            t_chk0 = time.monotonic()
            if raw:
                left = args.raw_budget - (time.monotonic() - t_raw0)
                nb = max(5.0, min(60.0, left / 4))
                eb = max(5.0, left - nb)
                res = sc.compare(ours, theirs, coords, labels=labels, metric=g, budget=eb,
                                 methods=("field", "is_zero", "cancel", "simplify"),
                                 per_component=min(60.0, eb), numeric_budget=nb)
            else:
                res = sc.compare(ours, theirs, coords, labels=labels, metric=g, budget=args.check_budget)
            agreement, numeric = res["agreement"], res["numeric"]
            if raw:
                agreement += " (raw)"
                used: dict[str, int] = {}
                for meth in res["methods"].values():
                    if meth:
                        used[meth] = used.get(meth, 0) + 1
                notes.append(
                    f"{name}: EinsteinPy timed out ({int(args.timeout)} s) with .simplify(); agreement "
                    f"checked against its unsimplified result (RicciTensor.from_metric + "
                    f"RicciScalar.from_riccitensor, no .simplify(), its {peer['skipped_simplify']} "
                    f"internal simplify calls disabled; {traw:.1f} s, components up to "
                    f"{max(len(x) for x in [*(c for r in peer['ricci'] for c in r), peer['scalar']])} "
                    f"chars srepr): {res['agreement']} for {len(labels) - len(res['undecided'])}/"
                    f"{len(labels)} components (" + ", ".join(f"{k} {v}" for k, v in sorted(used.items()))
                    + f"), check {time.monotonic() - t_chk0:.0f} s")
            if res["undecided"]:
                notes.append(f"{name}: exact check undecided for {', '.join(res['undecided'])}")
            if res["differ"]:
                notes.append(f"{name}: DISAGREE (numerically, relative error) in "
                             + ", ".join(f"{k} ({v:.2g})" for k, v in res["differ"].items()))
                if res["conflict"]:
                    notes.append(f"{name}: !! shown 0 exactly yet numerically different: {res['conflict']}")
            if numeric == "n/a":
                notes.append(f"{name}: numeric check not done: {res['numeric_detail']}")
        ratio = f"{te / to:8.1f}x" if to and te else (f"{'>' + format(args.timeout / to, '.0f')}x".rjust(9)
                                                      if to and re_ == "timeout" else f"{'-':>9s}")
        raw_col = f"{traw:8.2f}" if traw is not None else f"{'-':>8s}"
        print(f"{name:28s} {n:2d}  {agreement:18s} {numeric:8s} {_fmt_t(to, ro, args.ours_timeout)} "
              f"{_fmt_t(te, re_, args.timeout):>10s} {ratio} {raw_col}", flush=True)
        rows.append((name, agreement, to, te, ro, re_))

    print("-" * len(head))
    both = [(to, te) for _, _, to, te, _, _ in rows if to is not None and te is not None]
    so, se = sum(t for t, _ in both), sum(t for _, t in both)
    timed_out = [(to, name) for name, _, to, te, _, re_ in rows if to is not None and te is None and re_ == "timeout"]
    if both:
        print(f"{'total (both finished, ' + str(len(both)) + ')':60s} {so:9.3f} {se:10.3f} {se / so:8.1f}x")
    if timed_out:
        so2 = so + sum(t for t, _ in timed_out)
        se2 = se + args.timeout * len(timed_out)
        print(f"{'total incl. EinsteinPy timeouts (' + str(len(both) + len(timed_out)) + ')':60s} "
              f"{so2:9.3f} {'>' + format(se2, '.1f'):>10s} {'>' + format(se2 / so2, '.1f'):>8s}x"
              f"   (a timeout counts as {int(args.timeout)} s)")
    counts: dict[str, int] = {}
    for _, a, *_ in rows:
        counts[a] = counts.get(a, 0) + 1
    print("agreement: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if unbuilt:
        print("could not be constructed with default arguments:")
        for name, why in unbuilt:
            print(f"  {name}: {why}")
    if notes:
        print("notes:")
        for ln in notes:
            print("  " + ln)
    print(f"wall time {time.perf_counter() - t_start:.0f} s")
    bad = [name for name, a, *_ in rows if a.startswith("DISAGREE")]
    ours_failed = [name for name, a, to, *_ in rows if to is None]
    if bad:
        print(f"DISAGREE: {', '.join(bad)}")
    if ours_failed:
        print(f"lnegeom failed on: {', '.join(ours_failed)}")
    return 1 if bad or ours_failed else 0


if __name__ == "__main__":
    sys.exit(main())
