"""Scalar curvature, symbolically: lnegeom's SymbolicMetric vs EinsteinPy, OGRePy, GraviPy.

Run with ``bash benchmarks/run.sh symbolic`` (it makes ``benchmarks/.venv-bench`` with
einsteinpy and, best-effort, gravipy and OGRePy; none is a requirement of lnegeom).
Peers that do not import are left out and named.  OGRePy needs Python >= 3.12: where
the venv's Python is older, run.sh gives it a venv of its own,
``benchmarks/.venv-bench/peer-ogrepy`` (sympy + OGRePy only), and its worker runs there.

For each metric, each tool runs in a fresh interpreter (no shared sympy cache), timed
from the coordinate symbols and the sympy matrix to the scalar (imports excluded),
each the way its documentation shows, with its default simplification:

* ours:       ``SymbolicMetric(coords, g).scalar()``;
* EinsteinPy: ``RicciScalar.from_metric(MetricTensor(g, coords))`` then ``.simplify()``;
* OGRePy:     ``Metric(coords=Coordinates(*coords), components=g).ricci_scalar()``
  (it applies ``sympy.simplify`` — its ``options.simplify_func`` — to the Christoffel
  symbols, Riemann, Ricci and the scalar as it goes);
* GraviPy:    ``g = MetricTensor('g', Coordinates('x', coords), g)``,
  ``Christoffel('Ga', g)``, ``Ricci('Ri', g).scalar()`` (``together().simplify()``
  on every Christoffel symbol of the first kind, Ricci component and the scalar).

Agreement with each peer is decided exactly by ``benchmarks/_symcheck.py``
(``lnegeom.symbolic.is_zero`` of the difference, then ``cancel``, then ``simplify``);
when none of them shows 0 it is *undecided* and a numeric check at random points (the
sampling boxes below, parameters random positive rationals) says ``numeric-only`` or
``DISAGREE``: columns E, O, G give the agreement with EinsteinPy, OGRePy, GraviPy
(x exact, ~ numeric-only, ! DISAGREE, ? undecided, T timed out, - not run).

Targets, against the fastest installed peer on each metric: >= 2x on every metric,
>= 10x in total.  Exit status 1 if a target is missed or any peer DISAGREEs.

Usage: python benchmarks/bench_symbolic.py [--only NAME ...] [--peers P ...] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _symcheck as sc  # noqa: E402

# name -> (factory expression evaluated with lnegeom.catalog, sampling box for the numeric check)
METRICS = {
    "schwarzschild": ("catalog.schwarzschild().metric", [(-2, 2), (2.5, 8), (0.3, 2.8), (-3, 3)]),
    "flrw_k": ("catalog.flrw().metric", [(0.1, 2), (0.1, 1.5), (0.3, 2.8), (-3, 3)]),
    "sphere3": ("catalog.sphere3().metric", [(0.3, 2.8), (0.3, 2.8), (-3, 3)]),
    "nil": ("catalog.nil().metric", [(-2, 2)] * 3),
    "sol": ("catalog.sol().metric", [(-1, 1)] * 3),
    "lne_I-tt^T_n2": ("catalog.lne_stated(2).metric", [(-0.6, 0.6)] * 2),
    "lne_I-tt^T_n3": ("catalog.lne_stated(3).metric", [(-0.45, 0.45)] * 3),
}

# peer -> (module to import, label)
PEERS = {
    "einsteinpy": ("einsteinpy", "EinsteinPy"),
    "ogrepy": ("OGRePy", "OGRePy"),
    "gravipy": ("gravipy", "GraviPy"),
}
SIDE_VENVS = {"ogrepy": os.path.join(HERE, ".venv-bench", "peer-ogrepy", "bin", "python")}
QUIET = {"OGREPY_DISABLE_WELCOME": "True", "OGREPY_DISABLE_UPDATE_CHECK": "True"}


def _scalar(tool: str, coords, g):
    """The scalar curvature by ``tool``, as its users compute it."""
    import sympy as sp

    if tool == "ours":
        from lnegeom.symbolic import SymbolicMetric

        return SymbolicMetric(coords, g).scalar()
    if tool == "einsteinpy":
        from einsteinpy.symbolic import MetricTensor, RicciScalar

        rs = RicciScalar.from_metric(MetricTensor(g.tolist(), coords))
        rs.simplify()
        return rs.expr
    if tool == "ogrepy":
        import OGRePy as og

        metric = og.Metric(coords=og.Coordinates(*coords), components=sp.Matrix(g))
        return metric.ricci_scalar().components(warn=False)[0]
    if tool == "gravipy":
        from gravipy import tensorial as gp

        x = gp.Coordinates("x", list(coords))
        metric = gp.MetricTensor("g", x, sp.Matrix(g))
        gp.Christoffel("Ga", metric)
        return gp.Ricci("Ri", metric).scalar()
    raise ValueError(tool)


_MODULES = {"ours": "lnegeom.symbolic", "einsteinpy": "einsteinpy.symbolic", "ogrepy": "OGRePy",
            "gravipy": "gravipy.tensorial"}


def _worker(tool: str) -> None:
    """Read {coords, matrix} (srepr) on stdin, compute one scalar curvature; print JSON."""
    import importlib

    req = json.loads(sys.stdin.read())
    coords, g = tuple(sc.load(req["coords"])), sc.load(req["matrix"])
    importlib.import_module(_MODULES[tool])  # imports are not timed
    t0 = time.perf_counter()
    R = _scalar(tool, coords, g)
    dt = time.perf_counter() - t0
    print(json.dumps({"time": dt, "result": sc.dump(R),
                      "python": "%d.%d" % sys.version_info[:2]}))


def _find_peers(wanted):
    """peer -> interpreter for the peers that import (here, or in their side venv)."""
    found, missing = {}, {}
    env = {**os.environ, **QUIET}
    for peer in wanted:
        mod = PEERS[peer][0]
        for py in (sys.executable, SIDE_VENVS.get(peer)):
            if py and os.path.exists(py) and subprocess.run(
                    [py, "-c", f"import {mod}, sympy"], env=env, capture_output=True).returncode == 0:
                found[peer] = py
                break
        else:
            missing[peer] = f"`import {mod}` fails here" + (
                f" and in {os.path.relpath(SIDE_VENVS[peer])}" if peer in SIDE_VENVS else "")
    return found, missing


def _run(tool: str, py: str, payload: str, timeout: float):
    """(seconds, result) or (None, 'timeout' / 'error: ...')."""
    cmd = [py, os.path.abspath(__file__), "--worker", tool]
    try:
        out = subprocess.run(cmd, input=payload, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, **QUIET})
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if out.returncode != 0:
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        said = [ln for ln in out.stdout.strip().splitlines() if ln.strip()]  # OGRePy prints its errors
        msg = (lines[-1] if lines else f"exit {out.returncode}") + (f" ({said[-1]})" if said else "")
        return None, "error: " + (msg if len(msg) < 500 else msg[:160] + " [...] " + msg[-340:])
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["time"], d


MARK = {"exact": "x", "numeric-only": "~", "DISAGREE": "!", "undecided": "?", "timeout": "T"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", metavar="TOOL", help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", default=None, help="metric names to run")
    ap.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS), help="peers to try")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per peer run")
    args = ap.parse_args()
    if args.worker:
        _worker(args.worker)
        return 0
    from lnegeom import catalog  # noqa: F401  (used by eval)

    peers, missing = _find_peers(args.peers)
    if not peers:
        print("no peer (einsteinpy, OGRePy, gravipy) imports here; run `bash benchmarks/run.sh symbolic` "
              "(it makes benchmarks/.venv-bench)")
        return 1
    import sympy as sp

    names = args.only or list(METRICS)
    print(f"Scalar curvature R = g^jk Ric_jk, symbolic (sympy {sp.__version__}); seconds, each run in a "
          f"fresh interpreter; timeout {int(args.timeout)} s per peer run")
    for peer, py in peers.items():
        v = subprocess.run([py, "-c", f"import importlib.metadata as m, sys; "
                                      f"print(m.version('{PEERS[peer][0]}'), '%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, env={**os.environ, **QUIET}).stdout.split()
        print(f"  peer {PEERS[peer][1]} {v[0] if v else '?'} (Python {v[1] if len(v) > 1 else '?'}"
              f"{', side venv' if py != sys.executable else ''})")
    for peer, why in missing.items():
        print(f"  peer {PEERS[peer][1]}: not installed ({why}); left out")
    labs = [PEERS[p][1] for p in peers]
    head = (f"{'metric':15s} {'lnegeom':>8s} " + " ".join(f"{lab:>10s} {'ratio':>7s}" for lab in labs)
            + f" {'fastest':>11s} {'ratio':>7s}  agree " + "".join(lab[0] for lab in labs))
    print(head)
    print("-" * len(head))
    tot_o, tot_p, tot_op = 0.0, {p: 0.0 for p in peers}, {p: 0.0 for p in peers}
    ran = {p: 0 for p in peers}
    tot_fast = 0.0
    timeouts = {p: 0 for p in peers}
    failures, disagree, notes = [], [], []
    for name in names:
        m = eval(METRICS[name][0])
        payload = json.dumps({"coords": sc.dump(sp.Tuple(*m.coords)), "matrix": sc.dump(m.matrix)})
        to, ro = _run("ours", sys.executable, payload, args.timeout)
        if to is None:
            print(f"{name:15s} lnegeom {ro}")
            failures.append(name)
            continue
        ours = sc.load(ro["result"])
        times, marks = {}, ""
        for peer, py in peers.items():
            tp, rp = _run(peer, py, payload, args.timeout)
            if tp is None:
                if rp == "timeout":
                    times[peer] = None
                    timeouts[peer] += 1
                    marks += "T"
                else:
                    marks += "-"
                    notes.append(f"{name}: {PEERS[peer][1]} {rp}")
                continue
            times[peer] = tp
            res = sc.compare([ours], [sc.load(rp["result"])], m.coords, labels=["R"],
                             metric=[e for e in m.matrix], box=METRICS[name][1])
            marks += MARK[res["agreement"]]
            if res["agreement"] == "DISAGREE":
                disagree.append(f"{name} vs {PEERS[peer][1]}")
            if res["agreement"] != "exact":
                notes.append(f"{name} vs {PEERS[peer][1]}: {res['agreement']} "
                             f"(numeric {res['numeric']} {res['numeric_detail'] or res['differ']})")
        # timeouts count as the timeout (so ratios against them are lower bounds)
        eff = {p: (t if t is not None else args.timeout) for p, t in times.items()}
        cells = []
        for peer in peers:
            if peer not in times:
                cells.append(f"{'error':>10s} {'-':>7s}")
            else:
                gt = "" if times[peer] is not None else ">"
                cells.append(f"{gt + format(eff[peer], '.3f'):>10s} {gt + format(eff[peer] / to, '.1f') + 'x':>7s}")
        tot_o += to
        for p in eff:
            tot_p[p] += eff[p]
            tot_op[p] += to
            ran[p] += 1
        if eff:
            fp = min(eff, key=eff.get)
            gt = "" if times[fp] is not None else ">"
            fast_t = eff[fp]
            tot_fast += fast_t
            ratio = fast_t / to
            fcell = f"{PEERS[fp][1]:>11s} {gt + format(ratio, '.1f') + 'x':>7s}"
            if ratio < 2:
                failures.append(name)
        else:
            fcell = f"{'-':>11s} {'-':>7s}"
            failures.append(name)
        print(f"{name:15s} {to:8.3f} " + " ".join(cells) + f" {fcell}  {'':5s} {marks}", flush=True)
    print("-" * len(head))
    tcells = []
    done = {p for p in peers if ran[p] and ran[p] == max(ran.values())}
    for p in peers:
        if not ran[p]:
            tcells.append(f"{'-':>10s} {'-':>7s}")
            continue
        gt = ">" if timeouts[p] else ""
        star = "" if p in done else "*"
        tcells.append(f"{gt + format(tot_p[p], '.3f') + star:>10s} "
                      f"{gt + format(tot_p[p] / tot_op[p], '.1f') + 'x':>7s}")
    total_ratio = tot_fast / tot_o if tot_o else 0.0
    print(f"{'total':15s} {tot_o:8.3f} " + " ".join(tcells)
          + f" {'per metric':>11s} {format(total_ratio, '.1f') + 'x':>7s}")
    if any(p not in done for p in peers):
        print("  (* : that peer failed on some metrics; its total and ratio are over the metrics it ran)")
    if done:
        fastest_total = min(done, key=tot_p.get)
        print(f"fastest peer in total: {PEERS[fastest_total][1]} ({tot_p[fastest_total]:.3f} s, "
              f"{tot_p[fastest_total] / tot_op[fastest_total]:.1f}x lnegeom's time); the 'fastest' column takes "
              f"the fastest peer on each metric ({tot_fast:.3f} s in all)")
    if any(timeouts.values()):
        print("  (> : a peer timed out; its time counts as the timeout, so its ratio is a lower bound)")
    if notes:
        print("notes:")
        for ln in notes:
            print("  " + ln)
    met = not failures and not disagree and total_ratio >= 10
    why = ", ".join(failures + disagree) if failures or disagree else "total ratio"
    print(f"targets vs the fastest peer: >= 2x on every metric, >= 10x in total, no disagreement -> "
          f"{'met' if met else 'NOT met (' + why + ')'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
