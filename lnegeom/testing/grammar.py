r"""The interval-arithmetic grammar behind :func:`lnegeom.testing.symbolic_metrics`.

A :class:`Term` is a sympy expression in the coordinates together with bounds
lo ≤ e(x) ≤ hi on the sampling box, kept conservative through every rule
(interval products, the ranges of sin and cos from their critical points,
monotone functions at the ends).  :class:`Grammar` draws terms with a
hypothesis ``draw`` function: leaves (coordinates, affine maps, products,
squares), real terms (trigonometric and hyperbolic functions, exp, log, sqrt,
rational powers of positive terms, sums, products, quotients a / (c + b²))
and positive terms (lo > 0), which are the only arguments given to log, sqrt
and rational powers.  :func:`diagonal_entry` and :func:`off_diagonal_entry`
build the entries of a metric from them; the strategy turns the bounds into a
Gershgorin certificate of non-degeneracy.  sympy is imported on first use.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from hypothesis import strategies as st

__all__ = ["Term", "Grammar", "diagonal_entry", "off_diagonal_entry"]


class Term:
    """A sympy expression with bounds ``lo <= e(x) <= hi`` on the box (conservative)."""

    __slots__ = ("e", "lo", "hi")

    def __init__(self, e: Any, lo: float, hi: float) -> None:
        self.e, self.lo, self.hi = e, float(lo), float(hi)

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))


def _iv_mul(a: Term, b: Term) -> tuple:
    v = (a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi)
    return min(v), max(v)


def _iv_periodic(f: Callable, lo: float, hi: float, crit0: float) -> tuple:
    """Range of sin (crit0 = π/2) or cos (crit0 = 0) on [lo, hi]: endpoints and critical points."""
    vals = [f(lo), f(hi)]
    k = math.ceil((lo - crit0) / math.pi)
    while crit0 + k * math.pi <= hi:
        vals.append(f(crit0 + k * math.pi))
        k += 1
    return min(vals), max(vals)


def _iv_square(t: Term) -> tuple:
    lo2 = 0.0 if t.lo <= 0 <= t.hi else min(t.lo**2, t.hi**2)
    return lo2, t.mag**2


_TAME = 2.0  # exp, sinh, cosh, tan get arguments within [-_TAME, _TAME] (tan: [-1.2, 1.2])


def _apply(name: str, t: Term) -> Term:
    """Apply a unary function with interval bounds; arguments too large are first divided by an integer."""
    import sympy as sp
    limit = 1.2 if name == "tan" else _TAME
    if name in ("exp", "sinh", "cosh", "tan") and t.mag > limit:
        k = math.ceil(t.mag / limit)  # scale the argument down by an integer (no extra function layer)
        t = Term(t.e / k, t.lo / k, t.hi / k)
    lo, hi = t.lo, t.hi
    if name == "sin":
        return Term(sp.sin(t.e), *_iv_periodic(math.sin, lo, hi, math.pi / 2))
    if name == "cos":
        return Term(sp.cos(t.e), *_iv_periodic(math.cos, lo, hi, 0.0))
    if name == "cosh":
        return Term(sp.cosh(t.e), 1.0 if lo <= 0 <= hi else min(math.cosh(lo), math.cosh(hi)), math.cosh(t.mag))
    mono = {"tan": (sp.tan, math.tan), "sinh": (sp.sinh, math.sinh), "tanh": (sp.tanh, math.tanh),
            "atan": (sp.atan, math.atan), "exp": (sp.exp, math.exp)}
    f_sp, f_m = mono[name]
    return Term(f_sp(t.e), f_m(lo), f_m(hi))


def _power(p: Term, r: Any) -> Term:
    """p**r for a positive term p and a rational r."""
    a, b = p.lo**float(r), p.hi**float(r)
    return Term(p.e**r, min(a, b), max(a, b))


_TRIG_HYP = ("sin", "cos", "tan", "sinh", "cosh", "tanh")
_BOUNDED = ("sin", "cos", "tanh", "atan")


class Grammar:
    """Draws expressions in the coordinates; ``draw`` is hypothesis's draw function."""

    def __init__(self, draw: Callable, coords: tuple, box: tuple) -> None:
        self.draw, self.coords, self.box = draw, coords, box
        self.positive = [i for i, (lo, _) in enumerate(box) if lo > 0]

    def pick(self, options: Sequence) -> Any:
        return self.draw(st.sampled_from(options))

    def rational(self, options: Sequence) -> Any:
        import sympy as sp
        return sp.Rational(self.pick(options))

    # -- leaves: coordinate-dependent, no functions
    def leaf(self) -> Term:
        n = len(self.coords)
        i = self.draw(st.integers(0, n - 1))
        x = Term(self.coords[i], *self.box[i])
        kind = self.pick(("x", "x", "affine", "product", "square"))
        if kind == "x":
            return x
        if kind == "affine":
            a, b = self.rational(("2", "1/2", "-1", "3/2")), self.rational(("1/2", "-1/3", "1"))
            lo, hi = sorted((float(a) * x.lo + float(b), float(a) * x.hi + float(b)))
            return Term(a * x.e + b, lo, hi)
        if kind == "square":
            return Term(x.e**2, *_iv_square(x))
        j = self.draw(st.integers(0, n - 1))
        y = Term(self.coords[j], *self.box[j])
        if i == j:
            return Term(x.e**2, *_iv_square(x))
        return Term(x.e * y.e, *_iv_mul(x, y))

    # -- real-valued terms
    def real(self, depth: int) -> Term:
        import sympy as sp
        if depth <= 0:
            return self.leaf()
        kind = self.pick(("trig", "trig", "nonrational", "trig", "nonrational", "exp", "leaf",
                          "product", "sum", "quotient", "posatom"))
        if kind == "leaf":
            return self.leaf()
        if kind == "trig":
            return _apply(self.pick(_TRIG_HYP + ("atan",)), self.real(depth - 1))
        if kind == "exp":
            return _apply("exp", self.real(depth - 1))
        if kind == "nonrational":  # log, sqrt, rational powers of positive terms: real, possibly < 1
            p = self.positive_term(depth - 1)
            how = self.pick(("log", "sqrt", "power"))
            if how == "log":
                return Term(sp.log(p.e), math.log(p.lo), math.log(p.hi))
            return _power(p, sp.Rational(1, 2) if how == "sqrt" else self.rational(("3/2", "1/3", "-1/2", "2/3")))
        if kind == "posatom":
            return self.positive_atom(depth) if self.positive else self.leaf()
        a, b = self.real(depth - 1), self.real(depth - 1)
        if kind == "product":
            return Term(a.e * b.e, *_iv_mul(a, b))
        if kind == "sum":
            return Term(a.e + b.e, a.lo + b.lo, a.hi + b.hi)
        # quotient: a rational function of the terms, a / (c + b²)
        c = self.rational(("1", "2", "1/2"))
        s_lo, s_hi = _iv_square(b)
        den = Term(c + b.e**2, float(c) + s_lo, float(c) + s_hi)
        q = Term(1, 1.0 / den.hi, 1.0 / den.lo)
        lo, hi = _iv_mul(a, q)
        return Term(a.e / den.e, lo, hi)

    def positive_atom(self, depth: int) -> Term:
        """A function of a coordinate with a positive box: x, sin x, tanh x, sinh x, atan x, log(1 + x),
        to a rational power (``tanh(x)**(3/2)``, ``sqrt(sin(x))``, ...)."""
        i = self.pick(self.positive)
        x = Term(self.coords[i], *self.box[i])
        f = self.pick(("tanh", "sin", "sinh", "x", "atan"))
        t = x if f == "x" else _apply(f, x)
        r = self.rational(("3/2", "1/2", "1/3", "5/2", "-1/2", "2/3"))
        return _power(t, r)

    # -- positive terms (lo > 0)
    def positive_term(self, depth: int) -> Term:
        t = self._positive_term(depth)
        if not (1e-3 <= t.lo <= t.hi <= 1e3):  # nested powers and products can spread the range too far
            t = self.composite(0)
        return t

    def _positive_term(self, depth: int) -> Term:
        import sympy as sp
        if depth <= 0:  # (no constants: functions of constants would only add constant atoms)
            kind = self.pick(("shift", "exp", "posatom"))
            if kind == "posatom" and not self.positive:
                kind = "shift"
            if kind == "posatom":
                return self.positive_atom(0)
            f = self.leaf()
        else:
            kind = self.pick(("composite", "shift", "exp", "bounded", "cosh", "power", "log", "product", "sum",
                              "inverse", "posatom", "composite"))
            if kind in ("shift", "exp", "bounded", "cosh"):
                f = self.real(depth - 1)
        if kind == "composite":
            return self.composite(depth)
        if kind == "shift":  # c + f²
            c = self.rational(("1", "2", "1/2"))
            lo, hi = _iv_square(f)
            return Term(c + f.e**2, float(c) + lo, float(c) + hi)
        if kind == "exp":
            return _apply("exp", f)
        if kind == "cosh":
            return _apply("cosh", f)
        if kind == "bounded":  # c + u(f), u bounded: 2 + sin f, 3 + atan f, ...
            u = _apply(self.pick(_BOUNDED), f)
            c = max(1, math.ceil(0.5 - u.lo)) + self.draw(st.integers(0, 1))
            return Term(c + u.e, c + u.lo, c + u.hi)
        if kind == "posatom":
            return self.positive_atom(depth) if self.positive else self.composite(depth)
        p = self.positive_term(depth - 1)
        if kind == "power":
            return _power(p, self.rational(("1/2", "3/2", "1/3", "-1/2", "2/3", "5/2")))
        if kind == "log":  # log(c + p) >= log(c) > 0 for c >= 1 (log(1 + p) > 0)
            c = self.rational(("2", "1", "3"))
            return Term(sp.log(c + p.e), math.log(float(c) + p.lo), math.log(float(c) + p.hi))
        if kind == "inverse":
            return Term(1 / p.e, 1.0 / p.hi, 1.0 / p.lo)
        q = self.positive_term(depth - 1)
        if kind == "product":
            return Term(p.e * q.e, p.lo * q.lo, p.hi * q.hi)
        return Term(p.e + q.e, p.lo + q.lo, p.hi + q.hi)

    def composite(self, depth: int) -> Term:
        """outer(inner(arg)): a non-rational function (exp, sqrt, log, rational power) of a
        trigonometric or hyperbolic function of the coordinates — e.g. exp(sin(x0)),
        log(3 + cos(x0*x1)), sqrt(2 + sinh(x1)), (2 + tanh(x0))**(3/2)."""
        import sympy as sp
        arg = self.leaf() if depth <= 1 else self.real(depth - 2)
        u = _apply(self.pick(_TRIG_HYP), arg)
        outer = self.pick(("exp", "sqrt", "log", "power", "log_square", "power_square"))
        if outer == "exp":
            k = self.rational(("1", "-1", "1/2", "2"))
            return _apply("exp", Term(k * u.e, *sorted((float(k) * u.lo, float(k) * u.hi))))
        if outer in ("log_square", "power_square"):  # log(c + u²), (c + u²)**r
            c = self.rational(("1", "2", "1/2"))
            lo, hi = _iv_square(u)
            p = Term(c + u.e**2, float(c) + lo, float(c) + hi)
        else:  # c + u with c making it >= 1/2 (c = 0 for cosh)
            c = max(0, math.ceil(0.5 - u.lo)) + self.draw(st.integers(0, 1))
            p = Term(c + u.e, c + u.lo, c + u.hi)
        if outer in ("log", "log_square"):
            c2 = 1 if p.lo > 1 else 2  # log(p) > 0 needs p > 1 everywhere (p.lo = 1 allows log p = 0): log(c2 - 1 + p)
            return Term(sp.log(c2 - 1 + p.e), math.log(c2 - 1 + p.lo), math.log(c2 - 1 + p.hi))
        if outer == "sqrt":
            return _power(p, sp.Rational(1, 2))
        return _power(p, self.rational(("3/2", "1/3", "-1/2", "2/3", "5/2")))


def diagonal_entry(gr: Grammar, depth: int) -> Term:
    kind = gr.pick(("composite", "composite", "positive", "composite", "product", "const", "positive"))
    if kind == "composite":
        return gr.composite(depth)
    if kind == "positive":
        return gr.positive_term(depth)
    if kind == "product":
        a, b = gr.composite(max(depth - 1, 0)), gr.positive_term(max(depth - 1, 0))
        return Term(a.e * b.e, a.lo * b.lo, a.hi * b.hi)
    c = gr.rational(("1", "2", "1/2", "3"))
    return Term(c, float(c), float(c))


def off_diagonal_entry(gr: Grammar, bound: float, functions_left: int) -> tuple:
    """An entry with |e| <= bound on the box: 0, a constant, or c·f with f a leaf or a bounded
    function of a leaf (sin, cos, tanh, atan, exp) and |c·f| <= bound.  Kept simple on purpose:
    coordinate-dependent off-diagonal terms make the exact inverse metric (and everything after it)
    much more expensive, so the grammar's depth goes into the diagonal."""
    import sympy as sp
    kind = gr.pick(("function", "constant", "zero", "function"))
    if kind == "zero" or bound <= 0:
        return sp.S.Zero, False
    q = gr.pick((1.0, 0.5))
    sign = gr.pick((1, -1))
    if kind == "constant" or functions_left <= 0:
        c = _simple_rational(q * bound)
        return (sign * c, False) if c != 0 else (sp.S.Zero, False)
    f = gr.leaf()
    how = gr.pick(("leaf", "sin", "cos", "tanh", "atan", "exp"))
    if how != "leaf":
        f = _apply(how, f)
    c = _simple_rational(q * bound / max(f.mag, 1e-300))
    return (sign * c * f.e, True) if c != 0 else (sp.S.Zero, False)


def _simple_rational(bound: float) -> Any:
    """The largest 2^-k (k >= 0, k <= 12) not above ``bound``, or 0: small coefficients with small
    denominators (coefficients like 13/256 make exact rational arithmetic much slower)."""
    import sympy as sp
    if not bound > 0 or bound < 2.0**-12:
        return sp.S.Zero
    k = max(0, math.ceil(-math.log2(bound)))
    return sp.Rational(1, 2**k)

