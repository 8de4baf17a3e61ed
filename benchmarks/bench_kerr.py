"""Kerr is Ricci-flat: every Ricci component reduces to exactly 0 (target < 60 s).

The Kerr metric in Boyer–Lindquist coordinates (lnegeom.catalog.kerr), Ricci
tensor by lnegeom.symbolic.SymbolicMetric: θ is rationalised (x = cos θ), every
component is a reduced rational function in (r, x, M, a), and a reduced rational
function is zero iff its numerator is the zero polynomial — so "== 0" below is a
proof, not a numerical check.  Also times the Kretschmann scalar and compares it
with the closed form 48 M² (r⁶ − 15a²r⁴c² + 15a⁴r²c⁴ − a⁶c⁶)/ρ¹².

Usage: python benchmarks/bench_kerr.py
"""

from __future__ import annotations

import sys
import time

import sympy as sp


def main() -> int:
    from lnegeom import catalog
    from lnegeom.symbolic import SymbolicMetric, is_zero

    ref = catalog.kerr()
    t0 = time.perf_counter()
    m = SymbolicMetric(ref.metric.coords, ref.metric.matrix, name="kerr")
    ric = m.ricci()
    t_ric = time.perf_counter() - t0
    zero = all(e == 0 for e in ric)
    print(f"Kerr (Boyer-Lindquist): Ricci tensor, 16 components, in {t_ric:.2f} s "
          f"(target < 60 s); every component exactly 0: {zero}")
    t0 = time.perf_counter()
    K = m.kretschmann()
    t_k = time.perf_counter() - t0
    ok_k = is_zero(K - ref.expected["kretschmann"])
    print(f"Kerr Kretschmann scalar in {t_k:.2f} s; equals 48M²(r⁶−15a²r⁴c²+15a⁴r²c⁴−a⁶c⁶)/ρ¹²: {ok_k}")
    print(f"  K = {sp.factor(K)}")
    return 0 if zero and ok_k and t_ric < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
