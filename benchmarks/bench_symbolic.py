"""Scalar curvature, symbolically: lnegeom's SymbolicMetric vs EinsteinPy.

Run with ``bash benchmarks/run.sh`` (it makes ``benchmarks/.venv-bench`` with
einsteinpy; einsteinpy is not a requirement of lnegeom).

For each metric, each tool runs in a fresh interpreter (no shared sympy cache):

* ours:       ``SymbolicMetric(coords, g).scalar()`` (construction included);
* EinsteinPy: ``RicciScalar.from_metric(MetricTensor(g, coords))`` then
  ``.simplify()``, as its documentation and users do.

Agreement: the difference of the two results is reduced exactly by
``lnegeom.symbolic.is_zero`` (cancel after sin² = 1 − cos²); if that cannot show
zero (e.g. EinsteinPy's simplify rewrote tanh into exp), both are evaluated at
random points instead and the table says which check was used.

Usage: python benchmarks/bench_symbolic.py [--only NAME ...] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import sympy as sp

# name -> (factory expression evaluated in the worker, sampling box for the numeric check)
METRICS = {
    "schwarzschild": ("catalog.schwarzschild()", [(-2, 2), (2.5, 8), (0.3, 2.8), (-3, 3)]),
    "flrw_k": ("catalog.flrw()", [(0.1, 2), (0.1, 1.5), (0.3, 2.8), (-3, 3)]),
    "sphere3": ("catalog.sphere3()", [(0.3, 2.8), (0.3, 2.8), (-3, 3)]),
    "nil": ("catalog.nil()", [(-2, 2)] * 3),
    "sol": ("catalog.sol()", [(-1, 1)] * 3),
    "lne_I-tt^T_n2": ("catalog.lne_stated(2)", [(-0.6, 0.6)] * 2),
    "lne_I-tt^T_n3": ("catalog.lne_stated(3)", [(-0.45, 0.45)] * 3),
}


def _worker(tool: str, name: str) -> None:
    """Compute one scalar curvature in this (fresh) interpreter; print JSON."""
    from lnegeom import catalog  # noqa: F401  (used by eval)

    m = eval(METRICS[name][0])
    coords, g = m.coords, m.matrix
    if tool == "ours":
        from lnegeom.symbolic import SymbolicMetric

        t0 = time.perf_counter()
        R = SymbolicMetric(coords, g).scalar()
        dt = time.perf_counter() - t0
    else:
        from einsteinpy.symbolic import MetricTensor, RicciScalar

        t0 = time.perf_counter()
        metric = MetricTensor(g.tolist(), coords)
        rs = RicciScalar.from_metric(metric)
        rs.simplify()
        R = rs.expr
        dt = time.perf_counter() - t0
    print(json.dumps({"time": dt, "result": sp.srepr(R)}))


def _run(tool: str, name: str, timeout: float):
    cmd = [sys.executable, __file__, "--worker", tool, name]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None, None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{tool} on {name} failed:\n{exc.stderr}") from exc
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["time"], d["result"]


def _agree(name: str, ours: sp.Expr, theirs: sp.Expr) -> str:
    from lnegeom import catalog  # noqa: F401
    from lnegeom.catalog import SYMBOLS
    from lnegeom.symbolic import is_zero

    try:
        if is_zero(ours - theirs):
            return "exact"
    except Exception:
        pass
    # numeric check at random points with the parameters fixed
    m = eval(METRICS[name][0])
    t = SYMBOLS["t"]
    fix = {SYMBOLS["M"]: sp.Rational(1, 2), SYMBOLS["k"]: sp.Rational(1, 3), SYMBOLS["tau"]: sp.Rational(7, 10),
           SYMBOLS["a(t)"]: sp.exp(t / 3) + t**2 / 5}
    f1 = sp.lambdify(m.coords, ours.subs(fix).doit(), "numpy")
    f2 = sp.lambdify(m.coords, theirs.subs(fix).doit(), "numpy")
    rng = np.random.default_rng(1)
    lo, hi = np.array(METRICS[name][1], dtype=float).T
    pts = lo + (hi - lo) * rng.random((8, len(lo)))
    a = np.array([f1(*p) for p in pts], dtype=float)
    b = np.array([f2(*p) for p in pts], dtype=float)
    ok = np.allclose(a, b, rtol=1e-9, atol=1e-9)
    return "numeric" if ok else "DIFFER"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "NAME"), help=argparse.SUPPRESS)
    ap.add_argument("--only", nargs="*", default=None, help="metric names to run")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per EinsteinPy run")
    args = ap.parse_args()
    if args.worker:
        _worker(*args.worker)
        return 0
    try:
        import einsteinpy  # noqa: F401
    except ImportError:
        print("einsteinpy is not installed here; run `bash benchmarks/run.sh` (it makes benchmarks/.venv-bench)")
        return 1
    names = args.only or list(METRICS)
    print("Scalar curvature R = g^jk Ric_jk, symbolic; seconds, each run in a fresh interpreter")
    print(f"{'metric':16s} {'lnegeom':>9s} {'EinsteinPy':>11s} {'ratio':>8s}  agree")
    tot_o = tot_e = 0.0
    failures = []
    for name in names:
        to, ro = _run("ours", name, args.timeout)
        te, re_ = _run("einsteinpy", name, args.timeout)
        if te is None:
            print(f"{name:16s} {to:9.3f} {'>' + str(int(args.timeout)):>11s} {'>':>8s}  (EinsteinPy timed out)")
            tot_o += to
            tot_e += args.timeout
            continue
        ours, theirs = eval(ro, dict(vars(sp))), eval(re_, dict(vars(sp)))  # srepr round trip
        agree = _agree(name, ours, theirs)
        ratio = te / to
        tot_o += to
        tot_e += te
        print(f"{name:16s} {to:9.3f} {te:11.3f} {ratio:7.1f}x  {agree}")
        if ratio < 2 or agree == "DIFFER":
            failures.append(name)
    total_ratio = tot_e / tot_o
    print(f"{'total':16s} {tot_o:9.3f} {tot_e:11.3f} {total_ratio:7.1f}x")
    met = not failures and total_ratio >= 10
    why = ", ".join(failures) if failures else "total ratio"
    print(f"targets: >= 2x on every metric, >= 10x in total -> {'met' if met else 'NOT met (' + why + ')'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
