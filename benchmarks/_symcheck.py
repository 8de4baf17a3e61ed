"""Agreement of two symbolic results, shared by bench_einsteinpy.py and bench_symbolic.py.

Only sympy (and mpmath, which comes with it) is imported here: bench_symbolic.py's
workers also run in interpreters that have neither numpy nor lnegeom.

Exact check, per component, of the difference d = ours − theirs:

1. ``lnegeom.symbolic.is_zero(d)`` (a reduced rational function in the coordinates,
   parameters and elementary-function atoms; sin² = 1 − cos² and sinh² = cosh² − 1
   applied).  It treats atoms as independent generators, so True is a proof;
2. else ``sympy.cancel(d) == 0``;
3. else ``sympy.simplify(d) == 0``, under a time limit.

``exact_zero(..., methods=...)`` may also ask for ``field`` (:func:`field_zero`): the
expression rebuilt bottom-up in a rational function field, reducing each node, then
the numerator reduced modulo sin² + cos² = 1 (cosh² − sinh² = 1).  It is the method
for large unsimplified expressions (EinsteinPy's raw Ricci components), on which
``is_zero`` and ``cancel``, which expand the whole numerator at once, do not finish.

If none of them shows 0, the component is *undecided* (which is not a
disagreement: simplify may just fail to see an identity).  Floats in a result (an
input metric written with ``1/2`` in Python) are read as the binary rationals they
are before the exact check.

Numeric check, separately and never called exact: every component is evaluated by
mpmath (40 digits) at random points where the metric is real, finite and
non-degenerate, with each parameter replaced by a random positive rational and each
undefined function f(x, ...) by a fixed positive smooth function.  A component
*differs* when |ours − theirs| > 1e-12 · max(1, |ours|, |theirs|) at some point.

Agreement of a whole result: ``exact`` (every component exact), ``numeric-only``
(some undecided, all agree numerically), ``DISAGREE`` (some component differs
numerically), ``undecided`` (some undecided and the numeric check could not be done).
"""

from __future__ import annotations

import random
import signal
import time
from contextlib import contextmanager

import sympy as sp
from sympy.core.function import AppliedUndef


# ------------------------------------------------------------------ transport
def plain(expr):
    """Replace subclasses of Symbol (EinsteinPy's SymbolicConstant c, G, ...) by plain
    Symbols of the same name and assumptions, so that srepr round-trips."""
    expr = sp.sympify(expr)
    rep = {s: sp.Symbol(s.name, **s.assumptions0) for s in expr.atoms(sp.Symbol)
           if type(s) not in (sp.Symbol, sp.Dummy)}
    return expr.xreplace(rep) if rep else expr


def dump(expr) -> str:
    return sp.srepr(plain(expr))


def load(text: str):
    return eval(text, dict(vars(sp)))  # srepr round trip (trusted: our own workers)


# ------------------------------------------------------------------ time limit
class _Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """Raise _Timeout after ``seconds`` of wall clock (SIGALRM; main thread only)."""
    if seconds <= 0:
        raise _Timeout()

    def handler(signum, frame):  # pragma: no cover - timing dependent
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ exact check
def _rationalize(expr):
    fl = expr.atoms(sp.Float)
    return expr.xreplace({f: sp.Rational(f) for f in fl}) if fl else expr


def _lcm(a: int, b: int) -> int:
    from math import gcd

    return a * b // gcd(a, b)


def field_zero(expr) -> bool:
    """Exact test expr ≡ 0, by reducing it bottom-up in a field of rational functions.

    Generators: the symbols; s_A, c_A for sin A, cos A (sinh A, cosh A) of each
    argument A; b^(1/q) for the radicals b^(p/q) (b itself, where it occurs, is
    (b^(1/q))^q); exp(t/q) for the terms t of the exponents; every other atom
    (functions, derivatives, tanh, I, π) an independent generator.  Each Add, Mul and
    Pow node is one field operation on its reduced operands (memoised), so sizes stay
    those of the reduced subexpressions; then the numerator of the result is reduced
    modulo {s_A² + c_A² − 1} ({c_A² − s_A² − 1}), which is a Gröbner basis (pairwise
    coprime leading terms s_A² in lex order), so the remainder is its normal form.
    True is a proof: every relation used holds, and treating generators as independent
    only loses identities (then False: undecided, not "nonzero").  The one proviso, as
    for any rational simplification: the expression must be defined somewhere, i.e. no
    denominator in it vanishes identically.
    """
    from functools import reduce
    from operator import add, mul

    from sympy import QQ
    from sympy.polys.fields import field
    from sympy.polys.orderings import lex

    expr = _rationalize(sp.sympify(expr))
    if expr == 0:
        return True
    rewrite = {sp.tan: lambda a: sp.sin(a) / sp.cos(a), sp.cot: lambda a: sp.cos(a) / sp.sin(a),
               sp.sec: lambda a: 1 / sp.cos(a), sp.csc: lambda a: 1 / sp.sin(a),
               sp.sech: lambda a: 1 / sp.cosh(a), sp.csch: lambda a: 1 / sp.sinh(a),
               sp.coth: lambda a: sp.cosh(a) / sp.sinh(a)}
    for f, g in rewrite.items():
        if expr.has(f):
            expr = expr.replace(f, g)
    hyp_args = {f.args[0] for f in expr.atoms(sp.sinh, sp.cosh)}
    if hyp_args and any(t.args[0] in hyp_args for t in expr.atoms(sp.tanh)):
        expr = expr.replace(lambda e: isinstance(e, sp.tanh) and e.args[0] in hyp_args,
                            lambda e: sp.sinh(e.args[0]) / sp.cosh(e.args[0]))

    # ---- pass 1: generators
    circ, hyp, roots, exps, atoms = {}, {}, {}, {}, {}
    seen = set()

    def exp_terms(e):
        return sp.expand(e.args[0]).as_coefficients_dict().items()

    stack = [expr]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if e is sp.E:  # exp(1), not an exp instance
            exps[sp.S.One] = exps.get(sp.S.One, 1)
        elif e.is_Number:
            continue
        elif e.is_Add or e.is_Mul:
            stack.extend(e.args)
        elif e.is_Pow and e.exp.is_Rational:
            if not e.exp.is_Integer:
                roots[e.base] = _lcm(roots.get(e.base, 1), int(e.exp.q))
            stack.append(e.base)
        elif isinstance(e, sp.exp) and all(c.is_Rational for _, c in exp_terms(e)):
            for t, c in exp_terms(e):
                exps[t] = _lcm(exps.get(t, 1), int(c.q))
        elif isinstance(e, (sp.sin, sp.cos)):
            circ.setdefault(e.args[0], None)
        elif isinstance(e, (sp.sinh, sp.cosh)):
            hyp.setdefault(e.args[0], None)
        else:
            atoms.setdefault(e, None)

    key = sp.default_sort_key
    pairs = [(A, False) for A in sorted(circ, key=key)] + [(A, True) for A in sorted(hyp, key=key)]
    m = len(pairs)
    kinds = [sorted(roots, key=key), sorted(exps, key=key), sorted(atoms, key=key)]
    syms = [sp.Dummy(f"g{i}") for i in range(2 * m + sum(map(len, kinds)))]
    K, *g = field(syms, QQ, lex)
    s_of, c_of = {}, {}
    for j, (A, hy) in enumerate(pairs):
        s_of[(A, hy)], c_of[(A, hy)] = g[j], g[m + j]
    # b -> b^(1/q); t -> exp(t/q); atom -> itself (separate maps: x and exp(x) may both occur)
    root_gen, exp_gen, atom_gen, k = {}, {}, {}, 2 * m
    for d_, keys in zip((root_gen, exp_gen, atom_gen), kinds):
        d_.update(zip(keys, g[k:k + len(keys)]))
        k += len(keys)

    # ---- pass 2: rebuild, each node one field operation
    memo = {}

    def build(e):
        r = memo.get(e)
        if r is not None:
            return r
        if e in roots:
            r = root_gen[e] ** roots[e]
        elif e is sp.E:
            r = exp_gen[sp.S.One] ** exps[sp.S.One]
        elif e.is_Number:
            r = K.ground_new(QQ.convert(e))
        elif e.is_Add:
            r = reduce(add, [build(a) for a in e.args])
        elif e.is_Mul:
            r = reduce(mul, [build(a) for a in e.args])
        elif e.is_Pow and e.exp.is_Integer:
            r = build(e.base) ** int(e.exp)
        elif e.is_Pow and e.exp.is_Rational:
            q = roots[e.base]
            r = root_gen[e.base] ** (int(e.exp.p) * (q // int(e.exp.q)))
        elif isinstance(e, sp.exp) and e not in atoms:
            r = reduce(mul, [exp_gen[t] ** int(c * exps[t]) for t, c in exp_terms(e)], K.one)
        elif isinstance(e, (sp.sin, sp.cos)):
            r = (s_of if isinstance(e, sp.sin) else c_of)[(e.args[0], False)]
        elif isinstance(e, (sp.sinh, sp.cosh)):
            r = (s_of if isinstance(e, sp.sinh) else c_of)[(e.args[0], True)]
        else:
            r = atom_gen[e]
        memo[e] = r
        return r

    F = build(expr)
    if not F:
        return True
    rg = K.ring.gens
    rel = [rg[j] ** 2 + rg[m + j] ** 2 - 1 if not hy else rg[m + j] ** 2 - rg[j] ** 2 - 1
           for j, (_, hy) in enumerate(pairs)]
    if not rel:
        return False
    return not F.numer.rem(rel) and bool(F.denom.rem(rel))


_DEFAULT_METHODS = ("is_zero", "cancel", "simplify")


def exact_zero(d, budget: float, methods=None) -> str | None:
    """Which exact method shows d ≡ 0 ('is_zero', 'cancel', 'field', 'simplify'), or None.

    methods=None: is_zero (limit: budget), cancel (min(budget, 10)), simplify (budget),
    each its own limit.  Else the named methods in that order, sharing the one budget
    (cancel still at most 10 s).
    """
    if methods is not None:
        return _exact_zero_shared(d, budget, methods)
    from lnegeom.symbolic import is_zero

    d = _rationalize(sp.sympify(d))
    if d == 0:
        return "is_zero"
    try:
        with time_limit(max(budget, 1.0)):
            if is_zero(d):
                return "is_zero"
    except Exception:
        pass
    try:
        with time_limit(min(budget, 10.0)):
            if sp.cancel(sp.together(d)) == 0:
                return "cancel"
    except Exception:
        pass
    try:
        with time_limit(budget):
            if sp.simplify(d) == 0:
                return "simplify"
    except Exception:
        pass
    return None


def _exact_zero_shared(d, budget: float, methods) -> str | None:
    from lnegeom.symbolic import is_zero

    d = _rationalize(sp.sympify(d))
    if d == 0:
        return methods[0]
    tests = {"is_zero": is_zero, "field": field_zero,
             "cancel": lambda e: sp.cancel(sp.together(e)) == 0,
             "simplify": lambda e: sp.simplify(e) == 0}
    t_end = time.monotonic() + budget
    for name in methods:
        left = t_end - time.monotonic()
        if name == "cancel":
            left = min(left, 10.0)
        if left <= 0.05:
            break
        try:
            with time_limit(left):
                if tests[name](d):
                    return name
        except Exception:
            pass
    return None


# ------------------------------------------------------------------ numeric check
def _numeric_subs(exprs, coords, rng):
    """Parameters -> random positive rationals, undefined functions -> fixed smooth
    positive functions; the same replacement for every expression."""
    cs = set(coords)
    params = sorted(set().union(*(e.free_symbols for e in exprs)) - cs, key=str)
    pvals = {p: sp.Rational(rng.randint(50, 150), 100) for p in params}
    funcs = sorted({f.func for e in exprs for f in e.atoms(AppliedUndef)}, key=str)
    out = [e.xreplace(pvals) for e in exprs]
    for F in funcs:
        nargs = {len(f.args) for e in exprs for f in e.atoms(AppliedUndef) if f.func == F}
        for k in nargs:
            xs = sp.symbols(f"_u0:{k}")
            c = [sp.Rational(rng.randint(10, 60), 100) for _ in range(2 * k + 1)]
            body = 1 + c[0] + sum(c[2 * i + 1] * xs[i] ** 2 + c[2 * i + 2] * sp.exp(xs[i] / 3)
                                  for i in range(k))
            lam = sp.Lambda(xs, body)
            out = [e.replace(lambda a, F=F, k=k: isinstance(a, AppliedUndef) and a.func == F
                             and len(a.args) == k, lambda a, lam=lam: lam(*a.args)).doit()
                   for e in out]
    return out, pvals


def numeric_compare(pairs, coords, metric=None, box=None, points: int = 6,
                    seed: int = 1, budget: float = 60.0):
    """Compare pairs (ours_i, theirs_i) at random points.

    Returns (status, detail): status 'ok' (all agree at ``points`` valid points),
    'DIFFER' (detail lists the differing component indices), or 'n/a' (detail: why).
    """
    import mpmath

    rng = random.Random(seed)
    coords = list(coords)
    n = len(coords)
    box = box or [(0.2, 1.4)] * n
    flat = [e for p in pairs for e in p]
    extra = list(metric) if metric is not None else []
    t_end = time.monotonic() + budget
    try:
        with time_limit(budget):
            subs, _ = _numeric_subs([sp.sympify(e) for e in flat + extra], coords, rng)
            funcs = [sp.lambdify(coords, _rationalize(e), modules="mpmath") for e in subs]
    except _Timeout:
        return "n/a", "numeric set-up timed out"
    except Exception as exc:
        return "n/a", f"cannot evaluate numerically: {type(exc).__name__}: {str(exc)[:120]}"
    fpairs = funcs[: len(flat)]
    fmet = funcs[len(flat):]
    differ: dict[int, float] = {}
    valid = tries = 0
    with mpmath.workdps(40):
        while valid < points and tries < 40 * points and time.monotonic() < t_end:
            tries += 1
            pt = [mpmath.mpf(lo + (hi - lo) * rng.random()) for lo, hi in box]
            try:
                if fmet:
                    gv = [complex(f(*pt)) for f in fmet]
                    if any(abs(v.imag) > 1e-20 or not mpmath.isfinite(v.real) for v in gv):
                        continue
                    k = int(round(len(gv) ** 0.5))
                    if k * k == len(gv):
                        rows = [[gv[i * k + j].real for j in range(k)] for i in range(k)]
                        if abs(mpmath.det(mpmath.matrix(rows))) < 1e-12:
                            continue
                vals = [f(*pt) for f in fpairs]
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                continue
            except Exception as exc:
                return "n/a", f"evaluation failed: {type(exc).__name__}: {str(exc)[:120]}"
            if not all(mpmath.isfinite(v) for v in vals):
                continue
            valid += 1
            for i in range(len(pairs)):
                a, b = vals[2 * i], vals[2 * i + 1]
                scale = max(1, abs(a), abs(b))
                err = abs(a - b) / scale
                if err > 1e-12:
                    differ[i] = max(differ.get(i, 0.0), float(err))
    if differ:
        return "DIFFER", differ
    if valid < points:
        return "n/a", f"only {valid} valid points of {tries} tried"
    return "ok", f"{valid} points"


# ------------------------------------------------------------------ both
def compare(ours, theirs, coords, labels=None, metric=None, box=None, budget: float = 60.0,
            methods=None, per_component: float = 20.0, numeric_budget: float | None = None):
    """Agreement of two lists of components (see the module docstring).

    budget: seconds for the exact checks of all components together, at most
    per_component each (``methods``: see :func:`exact_zero`); numeric_budget: seconds
    for the numeric check (default min(60, budget)).

    Returns a dict: agreement, numeric ('ok' / 'DIFFER' / 'n/a'), methods (label ->
    exact method or None), undecided (labels), differ (label -> relative error),
    conflict (labels shown 0 exactly that differ numerically: a bug in one check),
    numeric_detail.
    """
    labels = labels or [str(i) for i in range(len(ours))]
    ours = [sp.sympify(e) for e in ours]
    theirs = [sp.sympify(e) for e in theirs]
    t_end = time.monotonic() + budget
    found = {}
    for lab, a, b in zip(labels, ours, theirs):
        left = t_end - time.monotonic()
        found[lab] = exact_zero(a - b, min(per_component, left), methods) if left > 0 else None
    undecided = [lab for lab, m in found.items() if m is None]
    num, detail = numeric_compare(list(zip(ours, theirs)), coords, metric=metric, box=box,
                                  budget=min(60.0, budget) if numeric_budget is None
                                  else numeric_budget)
    differ = {labels[i]: e for i, e in detail.items()} if num == "DIFFER" else {}
    # a component shown 0 exactly that differs numerically: one of the two checks is wrong
    conflict = [lab for lab in differ if found.get(lab)]
    if num == "DIFFER":
        agreement = "DISAGREE"
    elif not undecided:
        agreement = "exact"
    elif num == "ok":
        agreement = "numeric-only"
    else:
        agreement = "undecided"
    return {"agreement": agreement, "numeric": num, "methods": found, "undecided": undecided,
            "differ": differ, "conflict": conflict,
            "numeric_detail": detail if num != "DIFFER" else ""}
