r"""``SymbolicMetric``: exact curvature of a metric given by a sympy matrix.

Conventions (docs/math.md §1, the same as :mod:`lnegeom.curvature`)
-------------------------------------------------------------------
Coordinates x^1..x^n, metric g_ij, inverse g^ij, summation over repeated indices:

* Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij)          (``christoffel()[k, i, j]``)
* R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp   (``riemann()[l, i, j, k]``)
* Ric_jk = R^p_pjk                                            (``ricci()[j, k]``)
* R = g^jk Ric_jk                                             (``scalar()``)
* G_jk = Ric_jk − ½ R g_jk                                    (``einstein()``)
* K = R_abcd R^abcd                                           (``kretschmann()``)

so that the unit round 2-sphere has R = +2 and Ric = (n − 1) g on the unit n-sphere.

How it is computed (and why it is fast)
---------------------------------------
No blanket ``simplify``.  Every component is kept as a *reduced rational
function* in a sparse fraction field (``sympy.polys.fields``) whose generators
are the coordinates, the parameters and the non-polynomial atoms of the metric
(``tanh(τξ)``, ``exp(z)``, ``a(t)``, ``a'(t)``, ...).  The field is closed under
the coordinate derivations ∂_a up to the order needed (derivatives of the atoms
are computed once by sympy and expressed in the field), and every sum or
product is reduced by a polynomial gcd — i.e. ``cancel`` is applied to every
intermediate result, which decides zero exactly as long as the generators are
algebraically independent.

The one common dependency that breaks this is sin² + cos² = 1.  With
``rationalize="auto"`` every coordinate q that enters the matrix only through
cos q and even powers of sin q is replaced by x = cos q (likewise cosh q and
even powers of sinh q by x = cosh q, with dx/dq = sinh q, sinh² = x² − 1), i.e. the metric is
pulled back by q = arccos x (g_xx = g_qq / (1 − x²); rows of q divided by
−sin q), all curvature is computed rationally in x, and tensors are mapped back
with the Jacobian dx/dq = −sin q per covariant index (1/(−sin q) per
contravariant index; Christoffel symbols get the extra term cos q / sin q in
Γ^q_qq), then x = cos q is substituted.  tanh(cq) and exp(cq) need no such
change: they are closed under differentiation (∂ tanh = c(1 − tanh²),
∂ exp = c exp), so they already are independent generators of a differential
field.  (Measured: substituting u = tanh(τξ) by hand made R of I − t tᵀ slower,
0.77 s against 0.52 s at n = 3, and w = e^z for Sol changed nothing; so only the
cosine substitution is done.  It pays: Kerr's Ricci tensor takes 0.4 s with it,
3.5 s without, and only with it are the components literally 0.)

Ricci is computed directly, only for j ≤ k,
Ric_jk = ∂_p Γ^p_jk − ∂_j ∂_k log√|det g| + Γ^p_pq Γ^q_jk − Γ^p_jq Γ^q_pk,
with Γ^p_pk = ∂_k log√|det g| = ∂_k det g / (2 det g).  The full Riemann tensor
is built only when asked (R^l_ijk for i < j, the rest by antisymmetry).

Example
-------
>>> import sympy as sp
>>> th, ph = sp.symbols("theta phi")
>>> S2 = SymbolicMetric((th, ph), sp.diag(1, sp.sin(th)**2))
>>> S2.scalar()
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import sympy as sp
from sympy import QQ
from sympy.polys.fields import sfield

from .curvature import MetricError

__all__ = ["SymbolicMetric", "Verification", "trig_normal", "is_zero", "MetricError"]

_WHATS = ("metric", "derivatives", "christoffel", "ricci", "scalar")


# --------------------------------------------------------------------------
# exact zero test / normal form for rational functions of sin, cos
# --------------------------------------------------------------------------
def _trig_to_sincos(expr: sp.Expr) -> sp.Expr:
    """Rewrite tan, cot, sec, csc by sin and cos (and likewise tanh, ... by sinh, cosh)."""
    for f, (s_, c_) in ((sp.tan, (1, -1)), (sp.cot, (-1, 1)), (sp.sec, (0, -1)), (sp.csc, (-1, 0))):
        for S, C, F in ((sp.sin, sp.cos, f), (sp.sinh, sp.cosh, _HYP_OF[f])):
            if expr.has(F):
                expr = expr.replace(F, lambda a, S=S, C=C, s_=s_, c_=c_: S(a) ** s_ * C(a) ** c_)
    return expr


_HYP_OF = {sp.tan: sp.tanh, sp.cot: sp.coth, sp.sec: sp.sech, sp.csc: sp.csch}
# (sine, cosine, s² as a function of c): circular s² = 1 − c², hyperbolic s² = c² − 1
_KINDS = ((sp.sin, sp.cos, 1), (sp.sinh, sp.cosh, -1))


def _parity_split_poly(P, si: int, s2):
    """Split a polynomial P(s, ...) into (E, O) with P ≡ E + s·O modulo s² = ``s2``."""
    R = P.ring
    even: dict = {}
    odd: dict = {}
    reduced = []
    pw = {0: R.one}
    for monom, coeff in P.terms():
        e = monom[si]
        m = monom[:si] + (0,) + monom[si + 1:]
        h = e // 2
        if h == 0:
            target = odd if e % 2 else even
            target[m] = target.get(m, R.domain.zero) + coeff
        else:
            if h not in pw:
                pw[h] = s2 ** h
            reduced.append((e % 2, R({m: coeff}) * pw[h]))
    E = R({m: c for m, c in even.items() if c})
    O = R({m: c for m, c in odd.items() if c})
    for par, term in reduced:
        if par:
            O += term
        else:
            E += term
    return E, O


def _split_s(F, s, c, sign: int = 1):
    """F ∈ K(s, c, ...) with s² = sign·(1 − c²)  ->  (A, B) s-free with F = A + s·B."""
    return _split_quadratic(F, s, (F.field.ring.one - c.numer ** 2) * sign)


def _split_quadratic(F, s, s2):
    """F ∈ K(s, ...) with s² = ``s2`` (a polynomial free of s)  ->  (A, B) s-free, F = A + s·B."""
    K = F.field
    R = K.ring
    si = R.gens.index(s.numer)
    Ne, No = _parity_split_poly(F.numer, si, s2)
    De, Do = _parity_split_poly(F.denom, si, s2)
    if not Do:
        return K.new(Ne, De), K.new(No, De)
    # multiply by the conjugate De − s Do
    B = De * De - s2 * Do * Do
    if not B:
        raise ZeroDivisionError(f"denominator vanishes identically modulo {s.as_expr()}² = {s2.as_expr()}")
    return K.new(Ne * De - s2 * No * Do, B), K.new(No * De - Ne * Do, B)


def _trig_parts(expr: sp.Expr):
    """Decompose a rational function of sin, cos, sinh, cosh of independent arguments.

    Returns (parts, pairs): ``pairs`` lists (sine, argument A, c) with c the dummy
    standing for the cosine of A; ``parts`` maps a parity tuple e (one entry per pair)
    to a sine-free field element, with expr = Σ_e parts[e] Π sine(A)^e.
    """
    expr = _norm(_trig_to_sincos(sp.sympify(expr)))
    pairs, rep, s_syms = [], {}, []
    for S, C, sign in _KINDS:
        for A in sorted({f.args[0] for f in expr.atoms(S, C)}, key=sp.default_sort_key):
            s, c = sp.Dummy("s"), sp.Dummy("c")
            rep[S(A)], rep[C(A)] = s, c
            pairs.append((S, A, c, sign))
            s_syms.append(s)
    m = len(pairs)
    K, elems = sfield([expr.xreplace(rep), *s_syms, *(p[2] for p in pairs)], domain=QQ)
    parts = {(): elems[0]}
    for j, (_, _, _, sign) in enumerate(pairs):
        s_el, c_el = elems[1 + j], elems[1 + m + j]
        new = {}
        for key, val in parts.items():
            if not val:
                continue
            A, B = _split_s(val, s_el, c_el, sign)
            if A:
                new[key + (0,)] = A
            if B:
                new[key + (1,)] = B
        parts = new
    parts = {k: v for k, v in parts.items() if v}
    return parts, [(S, A, c, s) for (S, A, c, _), s in zip(pairs, s_syms)]


def trig_normal(expr: sp.Expr) -> sp.Expr:
    """Canonical form of a rational function of sines and cosines (circular or hyperbolic).

    Writes expr = Σ_e A_e(cos) Π sin(A)^{e_A}, e_A ∈ {0, 1}, reducing sin² = 1 − cos²
    (sinh² = cosh² − 1), with each A_e a reduced fraction (``cancel``); tan, sec, tanh, ...
    are written by sin, cos, sinh, cosh first.  Exact and cheap; it decides zero for
    rational functions of these of algebraically independent arguments.
    """
    parts, pairs = _trig_parts(expr)
    out = sp.S.Zero
    for key, val in parts.items():
        term = _field_to_trig(val, pairs)
        for (S, A, _, _), e in zip(pairs, key):
            if e:
                term = term * S(A)
        out += term
    return out


def _field_to_trig(F, pairs) -> sp.Expr:
    """A field element, rational in c = cos A for (sine, A, c, s) in ``pairs``, as an expression.

    Powers of (1 − c²) (resp. c² − 1) in numerator and denominator are written as
    sin² A (sinh² A).  The sine's stand-in s (``None`` where there is none) may still
    occur inside other generators (exp(s), √(2 + s), ...): it is mapped back to sin A too.
    """
    if not F:
        return sp.S.Zero
    R = F.field.ring
    num, den = F.numer, F.denom
    sin_pow = sp.S.One
    back = {}
    for S, A, c, s in pairs:
        back[c] = sp.cos(A) if S is sp.sin else sp.cosh(A)
        if s is not None:
            back[s] = S(A)
        if c not in R.symbols:
            continue
        f = R.one - R(c) ** 2
        if S is sp.sinh:
            f = -f
        p = 0
        for sign in (1, -1):
            poly = num if sign == 1 else den
            while not poly.is_ground:
                quo, rem = poly.div(f)
                if rem:
                    break
                poly = quo
                p += sign
            if sign == 1:
                num = poly
            else:
                den = poly
        if p:
            sin_pow = sin_pow * S(A) ** (2 * p)
    return (num.as_expr() / den.as_expr()).xreplace(back) * sin_pow


def is_zero(expr: sp.Expr) -> bool:
    """Exact test expr ≡ 0 for rational functions of the coordinates, parameters,
    functions, sin/cos and sinh/cosh (cancel after sin² = 1 − cos², sinh² = cosh² − 1;
    see :func:`trig_normal`)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    # tanh of arguments that occur in no other function, none a multiple or shift of
    # another, are algebraically independent generators: cancel decides zero directly
    # (the fast path for the LNE metric I − ttᵀ)
    tanhs = expr.atoms(sp.tanh)
    if tanhs:
        others = [f for f in expr.atoms(sp.Function) if not isinstance(f, sp.tanh)]
        args = list({f.args[0] for f in tanhs})
        related = any(
            (a / b).is_number or (a - b).is_number
            for i, a in enumerate(args) for b in args[i + 1:]
        )  # tanh(2x) is a rational function of tanh(x): not independent
        if not related and not any(a.free_symbols & f.free_symbols for f in others for a in args):
            rep = {f: sp.Dummy() for f in tanhs}
            return sp.cancel(sp.together(expr.xreplace(rep))) == 0
    parts, _ = _trig_parts(expr)
    return not parts


def _split_exp(expr: sp.Expr) -> sp.Expr:
    """exp(a + b) -> exp(a) exp(b), so that exponentials share generators."""
    return expr.replace(
        lambda e: isinstance(e, sp.exp) and e.args[0].is_Add,
        lambda e: sp.Mul(*[sp.exp(a) for a in e.args[0].args]),
    )


def _norm(expr: sp.Expr) -> sp.Expr:
    """Normalise an entry for the fraction field: rational numbers, expanded arguments of
    functions and radicals, logarithms with positive numeric factors split off
    (log 2x = log 2 + log x, as the field's own expansion does, so that an entry and the
    generators agree), powers and exponentials of sums split (b^(1−γ) = b·b^(−γ))."""
    expr = _rationalize_floats(sp.sympify(expr))
    # the field expands the arguments of functions and radicals when it collects its
    # generators; expand them here too, or the entry would not be found among them
    expr = expr.replace(
        lambda e: (e.is_Function or (e.is_Pow and not e.exp.is_Integer)) and not e.is_Atom,
        lambda e: e.func(*[sp.expand(a) for a in e.args]),
    )
    if expr.has(sp.log):
        expr = expr.replace(lambda e: isinstance(e, sp.log), sp.expand_log)
    # b^(1 − γ) -> b · b^(−γ): powers with symbolic exponents share one generator b^γ
    expr = expr.replace(
        lambda e: e.is_Pow and e.exp.is_Add and not e.exp.is_number,
        lambda e: sp.Mul(*[sp.Pow(e.base, a) for a in e.exp.args]),
    )
    return _split_exp(expr) if expr.has(sp.exp) else expr


def _rationalize_floats(expr: sp.Expr) -> sp.Expr:
    """Replace Float atoms by rationals (exact arithmetic over QQ)."""
    fl = expr.atoms(sp.Float)
    if not fl:
        return expr
    return expr.xreplace({f: sp.nsimplify(f, rational=True) for f in fl})


# --------------------------------------------------------------------------
# what an entry may contain
# --------------------------------------------------------------------------
#: elementary functions whose derivatives are again elementary: the engine's generators
_ELEMENTARY = (
    sp.exp, sp.log,
    sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc,
    sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch,
    sp.asin, sp.acos, sp.atan, sp.acot, sp.asinh, sp.acosh, sp.atanh, sp.acoth,
)
_NON_FINITE = (sp.nan, sp.oo, -sp.oo, sp.zoo)


def _unsupported_function(expr: sp.Expr) -> Optional[sp.Expr]:
    """The first function application in ``expr`` the engine has no derivative rule for.

    Allowed: the elementary functions above, powers, undefined functions a(t) and their
    derivatives a'(t) (sympy ``Derivative`` of an undefined function).  Refused: Abs,
    sign, Piecewise, floor, Min/Max, re/im, special functions, ... (not smooth, or their
    derivatives leave the field).
    """
    for f in sorted(expr.atoms(sp.Function, sp.Derivative, sp.Subs, sp.Integral), key=sp.default_sort_key):
        if isinstance(f, _ELEMENTARY) or isinstance(f, sp.core.function.AppliedUndef):
            continue
        if isinstance(f, sp.Derivative) and isinstance(f.expr, sp.core.function.AppliedUndef):
            continue
        return f
    return None


#: functions that are not smooth (or not real-analytic maps of reals): refused outright
_NON_SMOOTH = (
    sp.Abs, sp.sign, sp.Piecewise, sp.floor, sp.ceiling, sp.frac, sp.Min, sp.Max, sp.re, sp.im,
    sp.arg, sp.conjugate, sp.Heaviside, sp.DiracDelta,
)


class _NotClosed(MetricError):
    """The fraction field cannot hold a derivative: the slower plain path takes over."""


def _check_entry(name: str, i: int, j: int, e: sp.Expr) -> bool:
    """Raise :class:`MetricError` for an entry that is not finite, not real or not smooth;
    return True if it needs the plain path (a smooth function outside the field, e.g. besselj)."""
    where = f"{name}: g[{i},{j}] = {e}"
    if any(e.has(v) for v in _NON_FINITE):
        raise MetricError(f"{where} is not finite (contains nan, oo or zoo); a metric's entries are finite functions")
    if e.has(sp.I) or any(not n.is_real for n in e.atoms(sp.Number) if n.is_real is not None):
        raise MetricError(
            f"{where} is complex (contains I); a metric here is real — write its entries with real "
            "functions (e.g. cos, sin instead of exp(I x))"
        )
    rough = sorted(e.atoms(*_NON_SMOOTH), key=sp.default_sort_key)
    if rough:
        raise MetricError(
            f"{where} contains {rough[0]} ({type(rough[0]).__name__}), which is not smooth: curvature needs "
            "second derivatives of every entry; write the entry with smooth functions (e.g. sqrt(x**2 + eps) "
            "for Abs(x)) or split the domain"
        )
    return _unsupported_function(e) is not None


def _compress_constants(entries: list, coords: Sequence[sp.Symbol]) -> tuple[list, dict]:
    """Replace each product of two or more constants (a subexpression free of the coordinates,
    such as G Q²/(4π ε₀ c⁴)) by one new symbol; returns (entries, {symbol: product}).

    Every parameter is a variable of the field's polynomial ring, and the cost of its gcds
    grows steeply with their number: Kerr–Newman with c, G, ε₀, π and Q written out takes
    over a minute, with κ = G Q²/(4π ε₀ c⁴) half a second.  Mapping κ back is a ring
    homomorphism, so results stay exact; a cancellation that needs κ's own structure
    (rare: a product of constants that also occurs split up) is left unreduced.
    """
    cset = set(coords)
    names: dict = {}

    def is_product(e) -> bool:
        if not e.is_Mul or e.free_symbols & cset:
            return False
        _, rest = e.as_coeff_Mul()
        factors = [f for f in sp.Mul.make_args(rest) if not f.is_Rational]
        return len(factors) >= 2 and not e.has(sp.I) and not any(f.is_Add for f in factors)

    def name(e):
        coeff, rest = e.as_coeff_Mul()
        if rest not in names:
            names[rest] = sp.Dummy(f"kappa{len(names)}")
        return coeff * names[rest]

    out = [[e.replace(is_product, name) if e.free_symbols - cset else e for e in row] for row in entries]
    return out, {v: k for k, v in names.items()}


def _check_namesakes(name: str, coords: Sequence[sp.Symbol], M: sp.Matrix) -> None:
    """Refuse a free symbol that has a coordinate's name but is another symbol (other
    assumptions): the metric would silently be constant in that coordinate."""
    by_name = {c.name: c for c in coords}
    for sym in sorted(M.free_symbols, key=sp.default_sort_key):
        c = by_name.get(getattr(sym, "name", None))
        if c is not None and sym != c:
            raise MetricError(
                f"{name}: the matrix contains a symbol {sym.name!r} ({sym.assumptions0 or 'no assumptions'}) "
                f"that is not the coordinate {c.name!r} ({c.assumptions0 or 'no assumptions'}); "
                "build the matrix from the same Symbol objects as the coordinates"
            )


# --------------------------------------------------------------------------
# the differential fraction field of one metric
# --------------------------------------------------------------------------
class _Engine:
    r"""Exact rational-function curvature of a metric in given coordinates.

    Elements live in one sparse fraction field K over QQ; ∂_a is the derivation
    ∂_a f = Σ_γ (∂f/∂γ) ∂_a γ over the generators γ of K.
    """

    def __init__(
        self,
        coords: Sequence[sp.Symbol],
        entries: Sequence[Sequence[sp.Expr]],
        order: int = 2,
        hidden: Iterable[sp.Symbol] = (),
    ):
        self.coords = tuple(coords)
        # symbols that depend on the coordinates but are not among them (the original q of a
        # coordinate computed in x = cos q): a generator holding one would be differentiated
        # as a constant, so its presence is an error, never a guess
        hidden = set(hidden)
        self.n = n = len(coords)
        entries = [[_norm(e) for e in row] for row in entries]
        flat = [entries[i][j] for i in range(n) for j in range(i, n)]
        cset = set(self.coords)
        pool = list(flat)
        derivs: dict = {}
        K = None
        for _level in range(order + 1):
            K, _ = sfield(pool + list(self.coords), domain=QQ)
            new = []
            for gsym in K.symbols:
                if gsym in derivs or gsym in cset:
                    continue
                if gsym.free_symbols & hidden:
                    raise MetricError(
                        f"internal error: the generator {gsym} depends on {gsym.free_symbols & hidden}, "
                        "which are not coordinates of the field; please report this metric"
                    )
                if not (gsym.free_symbols & cset):
                    derivs[gsym] = None  # constant
                    continue
                ds = [_norm(sp.diff(gsym, x)) for x in self.coords]
                for d in ds:
                    bad = _unsupported_function(d)
                    if bad is not None:
                        raise _NotClosed(f"the derivative of {gsym} contains {bad}, which the field cannot hold")
                derivs[gsym] = ds
                new.extend(d for d in ds if d != 0)
            pool.extend(new)
        K, _ = sfield(pool + list(self.coords), domain=QQ)
        self.K = K
        R = K.ring
        self.zero, self.one = K.zero, K.one
        # derivative table: for each coordinate a, list of (generator index, ∂_a gen as field elt)
        self._dtab: list = [[] for _ in range(n)]
        self._missing: list = [[] for _ in range(n)]
        for idx, gsym in enumerate(K.symbols):
            if gsym in cset:
                a = self.coords.index(gsym)
                self._dtab[a].append((idx, K.one))
                continue
            ds = derivs.get(gsym, "?")
            if ds == "?":
                if not (gsym.free_symbols & cset):
                    ds = None
                else:
                    ds = [_norm(sp.diff(gsym, x)) for x in self.coords]
            if ds is None:
                continue
            for a, d in enumerate(ds):
                if d == 0:
                    continue
                try:
                    self._dtab[a].append((idx, K.from_expr(d)))
                except Exception:  # needs a generator beyond the closure
                    self._missing[a].append(gsym)
        self._gens = R.gens
        self._poly_d = [all(v.denom == 1 for _, v in self._dtab[a]) for a in range(n)]
        self._rels = self._relations()
        self.g = [[self.reduce(K.from_expr(entries[i][j])) if j >= i else None for j in range(n)] for i in range(n)]
        for i in range(n):
            for j in range(i):
                self.g[i][j] = self.g[j][i]
        self._cache: dict = {}

    # ------------------------------------------------- sin² + cos² = 1 in K
    def _relations(self) -> list:
        """The quadratic relations s² = P among K's generators, as (s, P) with P a polynomial
        free of s: √b with b in the ring (w² = b), then sin A, cos A with one argument
        (sin² = 1 − cos²) and sinh A, cosh A (sinh² = cosh² − 1)."""
        K = self.K
        R = K.ring
        where = {sym: gen for sym, gen in zip(K.symbols, K.gens)}
        rels = []
        for sym, gen in where.items():
            if sym.is_Pow and sym.exp == sp.S.Half:
                try:
                    b = R.from_expr(sym.base)
                except Exception:  # the radicand is not a polynomial in the generators
                    continue
                if gen.numer.degree() <= 0 and not b.degree(R.gens[K.gens.index(gen)]) > 0:
                    rels.append((gen, b))
        for sym, gen in where.items():
            for S, C, sign in _KINDS:
                if isinstance(sym, S) and C(*sym.args) in where:
                    c = where[C(*sym.args)].numer
                    rels.append((gen, (R.one - c**2) * sign))
        return rels

    def reduce(self, F):
        r"""Normal form of F modulo the quadratic relations of K's generators
        (:meth:`_relations`: (√b)² = b, sin²A + cos²A = 1, cosh²A − sinh²A = 1):
        F = Σ_e A_e Π s^{e_s}, e_s ∈ {0, 1}, each A_e free of the s (:func:`_split_quadratic`).
        The reduction is a ring homomorphism onto the functions, so it never changes a value;
        it makes a zero that only these identities reveal literally zero (coordinates left as
        they are by the cosine parametrisation, ``rationalize=False``, sines inside exp or √).
        """
        if not self._rels or not F:
            return F
        parts = {(): F}
        for s_el, s2 in self._rels:
            new = {}
            for key, val in parts.items():
                A, B = _split_quadratic(val, s_el, s2)
                if A:
                    new[key + (0,)] = A
                if B:
                    new[key + (1,)] = B
            parts = new
        out = self.zero
        for key, val in parts.items():
            for (s_el, _), e in zip(self._rels, key):
                if e:
                    val = val * s_el
            out = out + val
        return out

    def shortest(self, F):
        """F's normal form (:meth:`reduce`) if it is zero or has fewer terms, else F as it is.

        Both are exact; the normal form rationalises denominators in the sines, which can
        make a nonzero result longer than the unreduced one.
        """
        G = self.reduce(F)
        if not G:
            return G
        size = lambda E: len(E.numer.terms()) + len(E.denom.terms())  # noqa: E731
        return G if size(G) <= size(F) else F

    # ----------------------------------------------------------- calculus
    def _dpoly(self, P, a: int):
        """∂_a of a polynomial: a PolyElement when all needed ∂_a γ are polynomial."""
        tab = self._dtab[a]
        if self._missing[a]:
            used = {self.K.symbols.index(s) for s in self._missing[a]}
            if any(P.degree(self._gens[i]) > 0 for i in used):
                raise _NotClosed(
                    f"cannot differentiate the generator(s) {self._missing[a]} to the order needed "
                    "within the field"
                )
        if self._poly_d[a]:
            out = P.ring.zero
            for idx, dv in tab:
                if P.degree(self._gens[idx]) > 0:
                    out += P.diff(self._gens[idx]) * dv.numer
            return out
        out = self.zero
        for idx, dv in tab:
            if P.degree(self._gens[idx]) > 0:
                out += self.K.new(P.diff(self._gens[idx])) * dv
        return out

    def d(self, F, a: int):
        """∂_a F for a field element F."""
        if not F:
            return self.zero
        num, den = F.numer, F.denom
        dn = self._dpoly(num, a)
        if den.is_ground:
            if isinstance(dn, type(num)):
                return self.K.new(dn, den)
            return dn / self.K.new(den)
        dd = self._dpoly(den, a)
        if isinstance(dn, type(num)) and isinstance(dd, type(num)):
            return self.K.new(dn * den - num * dd, den * den)
        return (self._as_field(dn) * self.K.new(den) - self.K.new(num) * self._as_field(dd)) / self.K.new(den * den)

    def _as_field(self, x):
        return x if hasattr(x, "denom") else self.K.new(x)

    @staticmethod
    def fsum(terms: Iterable):
        """Sum of field elements, adding numerators over equal denominators first."""
        groups: dict = {}
        field = None
        for t in terms:
            if not t:
                continue
            field = t.field
            key = t.denom
            groups[key] = groups[key] + t.numer if key in groups else t.numer
        if field is None:
            return None
        vals = [field.new(num, den) for den, num in groups.items() if num]
        if not vals:
            return field.zero
        return reduce(lambda x, y: x + y, vals)

    def sum(self, terms: Iterable):
        s = self.fsum(terms)
        return self.zero if s is None else s

    # ------------------------------------------------------------ algebra
    def blocks(self) -> list[list[int]]:
        """Connected components of the non-zero pattern of g (block-diagonal structure)."""
        n = self.n
        seen = [False] * n
        out = []
        for s in range(n):
            if seen[s]:
                continue
            comp, stack = [], [s]
            seen[s] = True
            while stack:
                i = stack.pop()
                comp.append(i)
                for j in range(n):
                    if not seen[j] and self.g[i][j]:
                        seen[j] = True
                        stack.append(j)
            out.append(sorted(comp))
        return out

    @property
    def diagonal(self) -> bool:
        return all(len(b) == 1 for b in self.blocks())

    def inverse_and_det(self):
        """(g^ij, det g); 1/g_ii on 1×1 blocks, adjugate/det on 2×2, Gauss–Jordan beyond."""
        if "inv" in self._cache:
            return self._cache["inv"], self._cache["det"]
        n = self.n
        inv = [[self.zero] * n for _ in range(n)]
        det = self.one
        for b in self.blocks():
            m = len(b)
            if m == 1:
                i = b[0]
                gi = self.g[i][i]
                if not gi:
                    det = self.zero
                    continue
                inv[i][i] = 1 / gi
                det = det * gi
                continue
            A = [[self.g[i][j] for j in b] for i in b]
            if m == 2:
                dB = self.reduce(A[0][0] * A[1][1] - A[0][1] * A[1][0])
                if not dB:
                    det = self.zero
                    continue
                r = 1 / dB
                sub = [[A[1][1] * r, -A[0][1] * r], [-A[1][0] * r, A[0][0] * r]]
            else:
                sub, dB = self._gauss_jordan(A)
                if sub is None:
                    det = self.zero
                    continue
            det = det * dB
            for p, i in enumerate(b):
                for q, j in enumerate(b):
                    inv[i][j] = sub[p][q]
        self._cache["inv"], self._cache["det"] = inv, det
        return inv, det

    def _gauss_jordan(self, A):
        m = len(A)
        M = [list(row) + [self.one if i == j else self.zero for j in range(m)] for i, row in enumerate(A)]
        det = self.one
        for col in range(m):
            for r in range(col, m):
                M[r][col] = self.reduce(M[r][col])
            piv = next((r for r in range(col, m) if M[r][col]), None)
            if piv is None:
                return None, self.zero
            if piv != col:
                M[col], M[piv] = M[piv], M[col]
                det = -det
            p = M[col][col]
            det = det * p
            pinv = 1 / p
            M[col] = [v * pinv for v in M[col]]
            for r in range(m):
                if r != col and M[r][col]:
                    f = M[r][col]
                    M[r] = [vr - f * vc for vr, vc in zip(M[r], M[col])]
        return [row[m:] for row in M], det

    def dg(self):
        """dg[a][i][j] = ∂_a g_ij."""
        if "dg" not in self._cache:
            n = self.n
            out = [[[None] * n for _ in range(n)] for _ in range(n)]
            for a in range(n):
                for i in range(n):
                    for j in range(i, n):
                        out[a][i][j] = out[a][j][i] = self.d(self.g[i][j], a)
            self._cache["dg"] = out
        return self._cache["dg"]

    def christoffel(self):
        """gam[k][i][j] = Γ^k_ij = g^kl Γ_lij, Γ_lij = ½(∂_i g_jl + ∂_j g_il − ∂_l g_ij)."""
        if "gam" in self._cache:
            return self._cache["gam"]
        n = self.n
        dg = self.dg()
        inv, _ = self.inverse_and_det()
        half = self.K.new(self.K.ring.one, self.K.ring(2))
        first = [[[None] * n for _ in range(n)] for _ in range(n)]
        for l in range(n):
            for i in range(n):
                for j in range(i, n):
                    v = self.sum([dg[i][j][l], dg[j][i][l], -dg[l][i][j]])
                    first[l][i][j] = first[l][j][i] = v * half if v else self.zero
        gam = [[[None] * n for _ in range(n)] for _ in range(n)]
        for k in range(n):
            for i in range(n):
                for j in range(i, n):
                    v = self.sum(inv[k][l] * first[l][i][j] for l in range(n) if inv[k][l] and first[l][i][j])
                    gam[k][i][j] = gam[k][j][i] = self.reduce(v)
        self._cache["gam"] = gam
        return gam

    def dchristoffel(self):
        """dgam[a][k][i][j] = ∂_a Γ^k_ij."""
        if "dgam" in self._cache:
            return self._cache["dgam"]
        n = self.n
        gam = self.christoffel()
        out = [[[[None] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
        for a in range(n):
            for k in range(n):
                for i in range(n):
                    for j in range(i, n):
                        out[a][k][i][j] = out[a][k][j][i] = self.d(gam[k][i][j], a)
        self._cache["dgam"] = out
        return out

    def ricci(self):
        """Ric_jk = ∂_p Γ^p_jk − ∂_j L_k + L_q Γ^q_jk − Γ^p_jq Γ^q_pk, L_k = ∂_k det/(2 det)."""
        if "ric" in self._cache:
            return self._cache["ric"]
        n = self.n
        gam = self.christoffel()
        _, det = self.inverse_and_det()
        two_det = det * 2
        L = [self.d(det, k) / two_det for k in range(n)]
        ric = [[None] * n for _ in range(n)]
        for j in range(n):
            for k in range(j, n):
                terms = [self.d(gam[p][j][k], p) for p in range(n)]
                terms.append(-self.d(L[k], j))
                terms.extend(L[q] * gam[q][j][k] for q in range(n) if L[q] and gam[q][j][k])
                terms.extend(
                    -(gam[p][j][q] * gam[q][p][k])
                    for p in range(n)
                    for q in range(n)
                    if gam[p][j][q] and gam[q][p][k]
                )
                ric[j][k] = ric[k][j] = self.sum(terms)
        self._cache["ric"] = ric
        return ric

    def scalar(self):
        """R = g^jk Ric_jk."""
        if "R" not in self._cache:
            inv, _ = self.inverse_and_det()
            ric = self.ricci()
            n = self.n
            terms = []
            for j in range(n):
                for k in range(j, n):
                    if inv[j][k] and ric[j][k]:
                        t = inv[j][k] * ric[j][k]
                        terms.append(t if j == k else t * 2)
            self._cache["R"] = self.sum(terms)
        return self._cache["R"]

    def riemann(self):
        """rm[l][i][j][k] = R^l_ijk, computed for i < j and filled by antisymmetry."""
        if "rm" in self._cache:
            return self._cache["rm"]
        n = self.n
        gam = self.christoffel()
        dgam = self.dchristoffel()
        rm = [[[[self.zero] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
        for l in range(n):
            for i in range(n):
                for j in range(i + 1, n):
                    for k in range(n):
                        terms = [dgam[i][l][j][k], -dgam[j][l][i][k]]
                        for p in range(n):
                            if gam[p][j][k] and gam[l][i][p]:
                                terms.append(gam[p][j][k] * gam[l][i][p])
                            if gam[p][i][k] and gam[l][j][p]:
                                terms.append(-(gam[p][i][k] * gam[l][j][p]))
                        v = self.sum(terms)
                        rm[l][i][j][k] = v
                        rm[l][j][i][k] = -v
        self._cache["rm"] = rm
        return rm

    def kretschmann(self):
        """K = R_abcd R^abcd.

        With S^{lk}_{ij} = g^{kc} R^l_ijc (antisymmetric in l,k and in i,j),
        K = Σ S^{lk}_{ij} S^{ij}_{lk} = 4 Σ_{l<k, i<j} S^{lk}_{ij} S^{ij}_{lk}.
        Diagonal metrics: S^{ij}_{lk} = (g_ll g^jj / g_ii g^kk) S^{lk}_{ij} by pair symmetry,
        so K = 4 Σ g_ll g^ii g^jj g^kk (R^l_ijk)².
        """
        if "K" in self._cache:
            return self._cache["K"]
        n = self.n
        rm = self.riemann()
        inv, _ = self.inverse_and_det()
        pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
        terms = []
        if self.diagonal:
            for (l, k) in pairs:
                for (i, j) in pairs:
                    v = rm[l][i][j][k]
                    if v:
                        terms.append(self.g[l][l] * inv[i][i] * inv[j][j] * inv[k][k] * v * v)
        else:
            S = {}
            for (l, k) in pairs:
                for (i, j) in pairs:
                    S[(l, k, i, j)] = self.sum(
                        inv[k][c] * rm[l][i][j][c] for c in range(n) if inv[k][c] and rm[l][i][j][c]
                    )
            for (l, k) in pairs:
                for (i, j) in pairs:
                    a, b = S[(l, k, i, j)], S[(i, j, l, k)]
                    if a and b:
                        terms.append(a * b)
        self._cache["K"] = self.sum(terms) * 4
        return self._cache["K"]


# --------------------------------------------------------------------------
# the slower exact path
# --------------------------------------------------------------------------
class _PlainEngine:
    r"""Curvature by plain sympy differentiation, ``cancel`` after every step.

    Used where the fraction field cannot hold the derivatives (special functions such as
    besselj, whose derivatives are new functions at every order).  It follows the
    textbook formulas of the module docstring literally (Ric_jk = ∂_p Γ^p_jk − ∂_k Γ^p_pj
    + Γ^p_pq Γ^q_jk − Γ^p_kq Γ^q_pj), independently of :class:`_Engine`; components are
    exact but reduced only as far as ``cancel`` goes.
    """

    K = None

    def __init__(self, coords: Sequence[sp.Symbol], matrix: sp.Matrix) -> None:
        self.coords = tuple(coords)
        self.n = n = len(coords)
        self.g = [[sp.cancel(matrix[i, j]) for j in range(n)] for i in range(n)]
        self._cache: dict = {}

    @staticmethod
    def _c(e: sp.Expr) -> sp.Expr:
        return sp.cancel(e)

    def inverse_and_det(self):
        if "inv" not in self._cache:
            M = sp.Matrix(self.g)
            det = self._c(M.det(method="berkowitz"))
            if det == 0:
                inv = None
            else:
                adj = M.adjugate(method="berkowitz")
                inv = [[self._c(adj[i, j] / det) for j in range(self.n)] for i in range(self.n)]
            self._cache["inv"], self._cache["det"] = inv, det
        return self._cache["inv"], self._cache["det"]

    def christoffel(self):
        if "gam" not in self._cache:
            n, X, g = self.n, self.coords, self.g
            inv, _ = self.inverse_and_det()
            dg = [[[sp.diff(g[i][j], X[a]) for j in range(n)] for i in range(n)] for a in range(n)]
            gam = [[[None] * n for _ in range(n)] for _ in range(n)]
            for k in range(n):
                for i in range(n):
                    for j in range(i, n):
                        v = sum(inv[k][l] * (dg[i][j][l] + dg[j][i][l] - dg[l][i][j]) for l in range(n)) / 2
                        gam[k][i][j] = gam[k][j][i] = self._c(v)
            self._cache["gam"] = gam
        return self._cache["gam"]

    def ricci(self):
        if "ric" not in self._cache:
            n, X = self.n, self.coords
            G = self.christoffel()
            ric = [[None] * n for _ in range(n)]
            for j in range(n):
                for k in range(j, n):
                    v = sum(sp.diff(G[p][j][k], X[p]) - sp.diff(G[p][p][j], X[k]) for p in range(n))
                    v += sum(G[p][p][q] * G[q][j][k] - G[p][k][q] * G[q][p][j] for p in range(n) for q in range(n))
                    ric[j][k] = ric[k][j] = self._c(v)
            self._cache["ric"] = ric
        return self._cache["ric"]

    def scalar(self):
        if "R" not in self._cache:
            inv, _ = self.inverse_and_det()
            ric = self.ricci()
            self._cache["R"] = self._c(sum(inv[j][k] * ric[j][k] for j in range(self.n) for k in range(self.n)))
        return self._cache["R"]

    def riemann(self):
        if "rm" not in self._cache:
            n, X = self.n, self.coords
            G = self.christoffel()
            rm = [[[[sp.S.Zero] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
            for l in range(n):
                for i in range(n):
                    for j in range(i + 1, n):
                        for k in range(n):
                            v = sp.diff(G[l][j][k], X[i]) - sp.diff(G[l][i][k], X[j])
                            v += sum(G[p][j][k] * G[l][i][p] - G[p][i][k] * G[l][j][p] for p in range(n))
                            v = self._c(v)
                            rm[l][i][j][k], rm[l][j][i][k] = v, -v
            self._cache["rm"] = rm
        return self._cache["rm"]

    def kretschmann(self):
        """K = R_mijk R^mijk with R_mijk = g_ml R^l_ijk, the indices of R^l_ijk raised one at a time."""
        if "K" not in self._cache:
            n, g = self.n, self.g
            inv, _ = self.inverse_and_det()
            rm = self.riemann()
            N = range(n)
            lower = {(m, i, j, k): sum(g[m][l] * rm[l][i][j][k] for l in N)
                     for m in N for i in N for j in N for k in N}
            up = {(l, i, j, k): rm[l][i][j][k] for l in N for i in N for j in N for k in N}
            for axis in (1, 2, 3):
                up = {
                    idx: sum(inv[idx[axis]][c] * up[idx[:axis] + (c,) + idx[axis + 1:]] for c in N)
                    for idx in up
                }
            self._cache["K"] = self._c(sum(lower[idx] * up[idx] for idx in up))
        return self._cache["K"]


def _falls_back(method: Callable) -> Callable:
    """Run a result method; if the field cannot hold a derivative it needs, switch the
    metric to the plain path (:class:`_PlainEngine`) and run it again."""
    from functools import wraps

    @wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except _NotClosed:
            if self._plain:
                raise
            self._to_plain()
            return method(self, *args, **kwargs)

    return run


# --------------------------------------------------------------------------
# rationalisation q -> x = cos q
# --------------------------------------------------------------------------
def _cos_rationalize(entries, n: int, qpos: int, q: sp.Symbol, x: sp.Symbol, hyperbolic: bool = False):
    """The metric pulled back by q = arccos x (or q = arcosh x), or None if q does not qualify.

    q qualifies if every entry depends on q only through sin q, cos q (sinh q, cosh q) and,
    after dividing row and column q by dx/dq = −sin q (sinh q), only even powers of the
    sine remain, which become 1 − x² (x² − 1): g_xx = g_qq/sin²q, g_xj = g_qj/(−sin q).
    Every occurrence must be reachable this way: cos q may sit anywhere (inside exp(cos q)
    it becomes exp(x), whose x-derivative sympy knows), but sin q only as a rational factor
    — exp(sin q), √(2 + sin q) or log(3 + sin q) disqualify q.
    """
    S, C = (sp.sinh, sp.cosh) if hyperbolic else (sp.sin, sp.cos)
    s = sp.Dummy("s")
    J = s if hyperbolic else -s
    rep = {S(q): s, C(q): x}
    items = []
    for i in range(n):
        for j in range(i, n):
            e = entries[i][j]
            if e.has(q):
                e = _trig_to_sincos(e).xreplace(rep)
                if q in e.free_symbols:
                    return None
            m = (i == qpos) + (j == qpos)
            if m:
                e = e / J ** m
            items.append((i, j, e))
    K, elems = sfield([e for _, _, e in items] + [s, x], domain=QQ)
    s_el, c_el = elems[-2], elems[-1]
    out = [[None] * n for _ in range(n)]
    for (i, j, _), F in zip(items, elems):
        A, B = _split_s(F, s_el, c_el, -1 if hyperbolic else 1)
        if B:
            return None
        e = A.as_expr()
        if s in e.free_symbols:
            # sin q inside exp, sqrt, log, ... (exp(sin q), √(2 + sin q)): in x = cos q that is
            # an algebraic function √(1 − x²) the field does not hold, so q is kept as it is
            return None
        out[i][j] = out[j][i] = e
    return out


# --------------------------------------------------------------------------
# lambdify helpers
# --------------------------------------------------------------------------
def _numeric_constants(expr: sp.Expr) -> sp.Expr:
    """Replace numeric non-rational subexpressions (sqrt(2), log(3), ...) by Floats."""
    return expr.replace(
        lambda e: (e.is_Pow or e.is_Function) and e.is_number and not e.is_Rational,
        lambda e: sp.Float(e.evalf(20), 17),
    )


# --------------------------------------------------------------------------
class SymbolicMetric:
    r"""A metric g_ij(x) given as a sympy matrix in coordinates x^1..x^n.

    Parameters
    ----------
    coords:
        The n coordinate symbols (``sympy.Symbol``, distinct).
    matrix:
        An n×n symmetric sympy matrix (or nested lists); entries may contain
        parameters (any other symbols) and functions (e.g. ``a(t)``).
    name:
        Used in messages and by :meth:`metric_field`.
    rationalize:
        With ``"auto"`` (or True) every coordinate q entering only through cos q and
        even powers of sin q is computed in x = cos q, likewise cosh/sinh in x = cosh q
        (see the module docstring; :attr:`rationalized` lists them); with False, never.
    simplify:
        Apply ``sympy.simplify`` to every returned component (slow; off by default —
        results are already reduced rational functions).
    verify:
        True (4 points) or a number of points: run :meth:`verify` at once, i.e. check
        Γ, Ric and R against torch autodiff at random points and raise on disagreement.

    Notes
    -----
    Conventions: docs/math.md §1 (module docstring).  Floats in the matrix are turned
    into rationals.  Results are cached.  Raises :class:`~lnegeom.curvature.MetricError`
    on malformed input (naming the offending value).
    """

    def __init__(
        self,
        coords: Sequence[sp.Symbol],
        matrix: Any,
        *,
        name: str = "metric",
        rationalize: Union[str, bool] = "auto",
        simplify: bool = False,
        verify: Union[bool, int] = False,
    ) -> None:
        coords = tuple(coords) if not isinstance(coords, sp.Symbol) else (coords,)
        for c in coords:
            if not isinstance(c, sp.Symbol):
                raise MetricError(
                    f"{name}: coordinate {c!r} (type {type(c).__name__}) is not a sympy Symbol; "
                    "pass symbols, e.g. sympy.symbols('r theta')"
                )
        if len(set(coords)) != len(coords):
            raise MetricError(f"{name}: coordinates must be distinct, got {coords}")
        try:
            M = sp.Matrix(matrix)
        except Exception as exc:  # pragma: no cover - sympy's message is informative
            raise MetricError(f"{name}: cannot build a matrix from {matrix!r}: {exc}") from exc
        if M.rows != M.cols:
            raise MetricError(f"{name}: the metric matrix must be square, got shape {M.shape}")
        if M.rows != len(coords):
            raise MetricError(
                f"{name}: {len(coords)} coordinates {coords} but the matrix is {M.rows}×{M.cols}; "
                "their numbers must agree"
            )
        if rationalize not in ("auto", True, False):
            raise ValueError(f"rationalize must be 'auto', True or False, got {rationalize!r}")
        M = M.applyfunc(lambda e: _rationalize_floats(sp.sympify(e)))
        n = M.rows
        plain = False
        for i in range(n):
            for j in range(n):
                plain |= _check_entry(name, i, j, M[i, j])
        _check_namesakes(name, coords, M)
        for i in range(n):
            for j in range(i + 1, n):
                # is_zero treats trigonometric/tanh atoms of related arguments as independent;
                # only in the error path, let sympy's simplify have the final word
                diff = M[i, j] - M[j, i]
                if M[i, j] != M[j, i] and not is_zero(diff) and sp.simplify(diff) != 0:
                    raise MetricError(
                        f"{name}: the matrix is not symmetric: g[{i},{j}] = {M[i, j]} but "
                        f"g[{j},{i}] = {M[j, i]}; a metric is symmetric"
                    )
        self.coords: tuple = coords
        self.matrix: sp.Matrix = M
        self.n: int = n
        self.name = name
        self.rationalize = rationalize
        self.simplify = simplify
        self._cache: dict = {}
        self._plain = False
        if plain:
            self._to_plain()
        else:
            try:
                self._build_engine(rationalize)
            except _NotClosed:
                self._to_plain()
        _, det = self._eng.inverse_and_det()
        if not det:
            raise MetricError(
                f"{name}: the metric is singular: det g ≡ 0 for the matrix {M.tolist()}; "
                "a metric must be invertible"
            )
        self._check_numerically_regular()
        if verify is not False and verify is not None:
            if isinstance(verify, bool) or not isinstance(verify, int) or verify < 1:
                if verify is not True:
                    raise ValueError(f"verify must be a bool or a number of points >= 1, got {verify!r}")
                verify = 4
            self.verify(points=verify)

    def _build_engine(self, rationalize) -> None:
        """The fast path: constants compressed, the cosine parametrisation where it applies,
        one differential fraction field (:class:`_Engine`)."""
        n, M, coords, name = self.n, self.matrix, self.coords, self.name
        entries, self._constants = _compress_constants([[M[i, j] for j in range(n)] for i in range(n)], coords)
        self._trig: dict = {}  # position -> (q, x, hyperbolic)
        if rationalize:
            circ = (sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc)
            hyp = (sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch)
            for pos, q in enumerate(coords):
                for kind, funcs in ((False, circ), (True, hyp)):
                    if not any(f.args[0] == q for e in M for f in e.atoms(*funcs)):
                        continue
                    x = sp.Dummy(f"{'cosh' if kind else 'cos'}_{q.name}", real=True)
                    out = _cos_rationalize(entries, n, pos, q, x, kind)
                    if out is not None:
                        entries = out
                        self._trig[pos] = (q, x, kind)
                    break
        self.work_coords = tuple(self._trig[p][1] if p in self._trig else c for p, c in enumerate(coords))
        try:
            self._eng = _Engine(self.work_coords, entries, hidden=[self._trig[p][0] for p in self._trig])
        except MetricError:
            raise
        except Exception as exc:
            raise MetricError(
                f"{name}: cannot treat the entries of {M.tolist()} as rational functions of the "
                f"coordinates, parameters and elementary functions: {exc}"
            ) from exc

    def _to_plain(self) -> None:
        """Switch to the slower exact path (:class:`_PlainEngine`), dropping what was cached."""
        self._plain = True
        self._constants, self._trig = {}, {}
        self.work_coords = self.coords
        self._eng = _PlainEngine(self.coords, self.matrix)
        self._cache = {}

    @property
    def path(self) -> str:
        """``"field"`` (the fast differential fraction field) or ``"plain"`` (sympy
        differentiation + cancel, for functions outside the field such as besselj)."""
        return "plain" if self._plain else "field"

    def _check_numerically_regular(self, tries: int = 3) -> None:
        """Refuse a metric whose det g is nonzero in the field but vanishes as a function.

        The field treats its generators as independent; a dependency it does not reduce
        (log 2x = log 2 + log x, tanh x = sinh x / cosh x, exp(x)·exp(−x), ...) can hide a
        zero.  Only where the field has non-rational generators, g is evaluated at a few
        random points (parameters random in [0.5, 1.5]): singular at every finite point
        means singular.
        """
        import numpy as np

        if not self._plain and all(isinstance(gs, sp.Symbol) for gs in self._eng.K.symbols):
            return
        if self.matrix.atoms(sp.core.function.AppliedUndef, sp.Derivative):
            return
        free = sorted(self.matrix.free_symbols - set(self.coords), key=sp.default_sort_key)
        rng = np.random.default_rng(12345)
        # mpmath, which sympy has loaded already (numpy/scipy printing would import scipy.special:
        # a second at first use) and which evaluates special functions too
        fn = sp.lambdify(list(self.coords) + free, list(self.matrix), modules="mpmath")
        finite = 0
        for _ in range(10 * tries):
            args = list(rng.uniform(0.3, 1.3, size=self.n)) + list(rng.uniform(0.5, 1.5, size=len(free)))
            try:
                G = np.array([complex(v) for v in fn(*args)]).reshape(self.n, self.n)
            except Exception:  # a function mpmath cannot evaluate here (or at all): no numeric check
                continue
            if not np.isfinite(G).all() or np.any(G.imag != 0):  # log of a negative number, ...
                continue
            G = G.real
            sv = np.linalg.svd(G, compute_uv=False)
            if sv[-1] > 1e-12 * max(sv[0], 1e-300):
                return
            finite += 1
            if finite >= tries:
                raise MetricError(
                    f"{self.name}: the metric is singular: det g vanishes at every sampled point although "
                    f"its entries {self.matrix.tolist()} do not reduce to a singular matrix (a dependency "
                    "among exp/log/trigonometric functions hides a zero); simplify the entries"
                )

    # ------------------------------------------------------------ mapping back
    @property
    def rationalized(self) -> tuple:
        """The coordinates computed in x = cos q or x = cosh q (rationalize='auto')."""
        return tuple(self._trig[p][0] for p in sorted(self._trig))

    def _back(self, F, lower: Sequence[int] = (), upper: Sequence[int] = (), extra=None) -> sp.Expr:
        """Map a component from work coordinates back: × (dx/dq)^m, m = #lower − #upper per q.

        dx/dq = −sin q: (dx/dq)^m = (−1)^m (1 − x²)^(m div 2) sin(q)^(m mod 2);
        dx/dq = sinh q (x = cosh q): (x² − 1)^(m div 2) sinh(q)^(m mod 2).
        ``extra`` (already divided by the sine factor) is added to the rational part.
        """
        if self._plain:
            return self._post(F)
        if not self._trig:
            return self._post(self._eng.shortest(F).as_expr())
        K = self._eng.K
        coef = F
        sin_factor = sp.S.One
        for pos, (q, x, hyp) in self._trig.items():
            m = sum(1 for i in lower if i == pos) - sum(1 for i in upper if i == pos)
            if m == 0:
                continue
            h, e = m // 2, m % 2
            if h:
                coef = coef * K.from_expr(x**2 - 1 if hyp else 1 - x**2) ** h
            if m % 2 and not hyp:
                coef = -coef
            if e:
                sin_factor = sin_factor * (sp.sinh(q) if hyp else sp.sin(q))
        if extra is not None:
            coef = coef + extra
        return self._post(self._to_trig(self._eng.shortest(coef)) * sin_factor)

    def _to_trig(self, F) -> sp.Expr:
        """Field element in the work coordinates -> expression in the original ones."""
        pairs = [(sp.sinh if hyp else sp.sin, q, x, None) for q, x, hyp in self._trig.values()]
        return _field_to_trig(F, pairs)

    def _post(self, e: sp.Expr) -> sp.Expr:
        if self._constants:
            e = e.xreplace(self._constants)
        return sp.simplify(e) if self.simplify else e

    # ----------------------------------------------------------------- results
    @_falls_back
    def christoffel(self) -> sp.Array:
        """Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij) as ``Array[k, i, j]``."""
        if "gam" not in self._cache:
            n = self.n
            gam = self._eng.christoffel()
            K = self._eng.K
            out = [[[None] * n for _ in range(n)] for _ in range(n)]
            for k in range(n):
                for i in range(n):
                    for j in range(i, n):
                        extra = None
                        if i == j == k and k in self._trig:
                            # inhomogeneous term (∂q/∂x)(∂²x/∂q²) = cos q / sin q = sin q · x/(1 − x²)
                            # (x = cosh q: cosh q / sinh q = sinh q · x/(x² − 1))
                            _, x, hyp = self._trig[k]
                            extra = K.from_expr(x / (x**2 - 1) if hyp else x / (1 - x**2))
                        out[k][i][j] = out[k][j][i] = self._back(gam[k][i][j], (i, j), (k,), extra)
            self._cache["gam"] = sp.Array(out)
        return self._cache["gam"]

    @_falls_back
    def riemann(self) -> sp.Array:
        """R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp as ``Array[l, i, j, k]``."""
        if "rm" not in self._cache:
            n = self.n
            rm = self._eng.riemann()
            out = [[[[sp.S.Zero] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
            for l in range(n):
                for i in range(n):
                    for j in range(i + 1, n):
                        for k in range(n):
                            v = self._back(rm[l][i][j][k], (i, j, k), (l,))
                            out[l][i][j][k] = v
                            out[l][j][i][k] = -v
            self._cache["rm"] = sp.Array(out)
        return self._cache["rm"]

    @_falls_back
    def ricci(self) -> sp.Matrix:
        """Ric_jk = R^p_pjk (symmetric ``Matrix[j, k]``)."""
        if "ric" not in self._cache:
            n = self.n
            ric = self._eng.ricci()
            out = sp.zeros(n, n)
            for j in range(n):
                for k in range(j, n):
                    out[j, k] = out[k, j] = self._back(ric[j][k], (j, k))
            self._cache["ric"] = out
        return self._cache["ric"]

    @_falls_back
    def scalar(self) -> sp.Expr:
        """Scalar curvature R = g^jk Ric_jk."""
        if "R" not in self._cache:
            self._cache["R"] = self._back(self._eng.scalar())
        return self._cache["R"]

    @_falls_back
    def einstein(self) -> sp.Matrix:
        """Einstein tensor G_jk = Ric_jk − ½ R g_jk."""
        if "G" not in self._cache:
            n = self.n
            eng = self._eng
            ric, R = eng.ricci(), eng.scalar()
            half_R = R / 2
            out = sp.zeros(n, n)
            for j in range(n):
                for k in range(j, n):
                    out[j, k] = out[k, j] = self._back(ric[j][k] - half_R * eng.g[j][k], (j, k))
            self._cache["G"] = out
        return self._cache["G"]

    @_falls_back
    def kretschmann(self) -> sp.Expr:
        """Kretschmann scalar K = R_abcd R^abcd."""
        if "K" not in self._cache:
            self._cache["K"] = self._back(self._eng.kretschmann())
        return self._cache["K"]

    @_falls_back
    def inverse(self) -> sp.Matrix:
        """g^ij."""
        if "inv" not in self._cache:
            inv, _ = self._eng.inverse_and_det()
            n = self.n
            out = sp.zeros(n, n)
            for i in range(n):
                for j in range(i, n):
                    out[i, j] = out[j, i] = self._back(inv[i][j], (), (i, j))
            self._cache["inv"] = out
        return self._cache["inv"]

    # --------------------------------------------------------- transformations
    def pullback(
        self,
        mapping: Union[Sequence[sp.Expr], Mapping[sp.Symbol, sp.Expr]],
        new_coords: Sequence[sp.Symbol],
        name: Optional[str] = None,
    ) -> "SymbolicMetric":
        r"""The pull-back φ*g, (φ*g)_ab = ∂_a φ^i g_ij(φ) ∂_b φ^j.

        ``mapping`` gives the old coordinates as functions of ``new_coords``: a sequence
        φ^1..φ^n in the order of ``self.coords``, or a dict {old: expression}.  The
        number of new coordinates may be smaller (induced metric on a submanifold).
        Each entry is reduced cheaply (:func:`trig_normal`; plain ``cancel`` if that fails).
        """
        new_coords = tuple(new_coords)
        if isinstance(mapping, Mapping):
            missing = [c for c in self.coords if c not in mapping]
            if missing:
                raise MetricError(f"pullback: the mapping gives no expression for the coordinate(s) {missing}")
            phi = [sp.sympify(mapping[c]) for c in self.coords]
        else:
            phi = [sp.sympify(e) for e in mapping]
        if len(phi) != self.n:
            raise MetricError(
                f"pullback: need {self.n} expressions (one per old coordinate {self.coords}), got {len(phi)}"
            )
        J = sp.Matrix([[sp.diff(p, y) for y in new_coords] for p in phi])
        G = self.matrix.xreplace(dict(zip(self.coords, phi)))
        P = J.T * G * J
        m = len(new_coords)
        out = sp.zeros(m, m)
        for a in range(m):
            for b in range(a, m):
                out[a, b] = out[b, a] = _cheap_simplify(P[a, b])
        return SymbolicMetric(
            new_coords, out, name=name or f"pullback of {self.name}",
            rationalize=self.rationalize, simplify=self.simplify,
        )

    def subs(self, values: Mapping) -> "SymbolicMetric":
        """The metric with parameters (symbols or functions such as a(t)) fixed."""
        bad = [k for k in values if k in self.coords]
        if bad:
            raise MetricError(
                f"{self.name}: subs() fixes parameters, not coordinates {bad}; use pullback() to change coordinates"
            )
        M = self.matrix.subs(values).doit()
        return SymbolicMetric(self.coords, M, name=self.name, rationalize=self.rationalize, simplify=self.simplify)

    # ---------------------------------------------------------------- numerics
    def _derivative_exprs(self):
        if "dexprs" not in self._cache:
            n, X, M = self.n, self.coords, self.matrix
            dg = [[[sp.diff(M[i, j], X[a]) for j in range(n)] for i in range(n)] for a in range(n)]
            d2g = [[[[sp.diff(dg[a][i][j], X[b]) for j in range(n)] for i in range(n)] for b in range(n)]
                   for a in range(n)]
            self._cache["dexprs"] = (dg, d2g)
        return self._cache["dexprs"]

    def lambdify(self, what: str = "metric", backend: str = "numpy") -> Callable:
        """A numeric function of one point ``x[n]`` (or a batch ``x[..., n]``).

        ``what``: ``"metric"`` -> g[..., n, n]; ``"derivatives"`` -> (g, ∂g, ∂²g) in the layout
        of :mod:`lnegeom.curvature` (dg[a, i, j] = ∂_a g_ij, d2g[a, b, i, j] = ∂_a ∂_b g_ij);
        ``"christoffel"`` -> Γ[..., k, i, j] = Γ^k_ij; ``"ricci"`` -> Ric[..., n, n]; ``"scalar"`` -> R[...].
        ``backend``: ``"numpy"`` or ``"torch"`` (built with ``torch.stack``, so usable under
        ``torch.func.vmap``/``jacfwd``; constants take x's dtype and device).  Common subexpressions
        are shared (``cse``).
        """
        if what not in _WHATS:
            raise ValueError(f"what must be one of {_WHATS}, got {what!r}")
        if backend not in ("numpy", "torch"):
            raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
        key = ("lam", what, backend)
        if key in self._cache:
            return self._cache[key]
        n = self.n
        if what == "metric":
            exprs, shapes = list(self.matrix), [(n, n)]
        elif what == "derivatives":
            dg, d2g = self._derivative_exprs()
            flat_dg = [dg[a][i][j] for a in range(n) for i in range(n) for j in range(n)]
            flat_d2 = [d2g[a][b][i][j] for a in range(n) for b in range(n) for i in range(n) for j in range(n)]
            exprs, shapes = list(self.matrix) + flat_dg + flat_d2, [(n, n), (n, n, n), (n, n, n, n)]
        elif what == "christoffel":
            exprs, shapes = list(sp.flatten(self.christoffel())), [(n, n, n)]
        elif what == "ricci":
            exprs, shapes = list(self.ricci()), [(n, n)]
        else:
            exprs, shapes = [self.scalar()], [()]
        exprs = [_numeric_constants(sp.sympify(e)) for e in exprs]
        free = set().union(*(e.free_symbols for e in exprs)) - set(self.coords)
        funcs = set().union(*(e.atoms(sp.core.function.AppliedUndef) for e in exprs))
        if free or funcs:
            names = sorted(map(str, free | funcs))
            raise MetricError(
                f"{self.name}: cannot evaluate numerically, the expressions still contain {names}; "
                f"fix them first with .subs({{...}})"
            )
        if backend == "torch":
            raw = sp.lambdify(list(self.coords), exprs, modules="torch", cse=True)
        else:
            raw = sp.lambdify(list(self.coords), exprs, modules="numpy", cse=True)
        sizes = [math.prod(s) for s in shapes]
        fn = _wrap_lambdified(raw, n, shapes, sizes, backend)
        fn.__doc__ = f"{what} of {self.name} at x[..., {n}] ({backend})"
        self._cache[key] = fn
        return fn

    def metric_field(self, backend: str = "torch", **kw):
        """A :class:`lnegeom.metric.MetricField` of this metric (parameters must be fixed).

        numpy backend: exact derivatives, ``derivatives=self.lambdify("derivatives")``.
        """
        from .metric import MetricField

        kw.setdefault("name", self.name)
        if backend == "torch":
            return MetricField(self.lambdify("metric", "torch"), self.n, backend="torch", **kw)
        if backend == "numpy":
            kw.setdefault("derivatives", self.lambdify("derivatives", "numpy"))
            return MetricField(self.lambdify("metric", "numpy"), self.n, backend="numpy", **kw)
        raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")


    # ------------------------------------------------------------ cross-check
    def verify(
        self,
        points: int = 4,
        *,
        seed: int = 0,
        box: Optional[Sequence[tuple[float, float]]] = None,
        params: Optional[Mapping] = None,
        rtol: float = 1e-7,
        atol: float = 1e-9,
    ) -> "Verification":
        r"""Check Γ, Ric and R against torch autodiff of the metric at random points.

        The exact results (:meth:`christoffel`, :meth:`ricci`, :meth:`scalar`) are lambdified
        and compared with :class:`lnegeom.metric.MetricField` (float64 ``torch.func``
        derivatives of the lambdified matrix, an independent path) at ``points`` random
        points of ``box`` (per coordinate (low, high); default (0.3, 1.3), away from the
        usual r = 0 or θ = 0) where g is finite, real and well conditioned.  Parameters
        (free symbols) take the values in ``params`` or random ones in [0.5, 1.5]
        (negative for symbols declared negative).  Undefined functions a(t) must be fixed
        with :meth:`subs` first.  A component passes when
        |exact − autodiff| ≤ atol + rtol·scale, scale = the largest |value| of that tensor
        at that point (at least 1; for Ric and R at least max|Γ|²·max|g⁻¹|, the size of the
        terms that cancel in them).

        Returns a :class:`Verification` (points, parameter values, worst relative error
        per tensor); raises :class:`MetricError` naming the tensor, component, point and
        both values on the first disagreement.
        """
        import numpy as np

        from .metric import MetricField

        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise ValueError(f"verify: points must be an integer >= 1, got {points!r}")
        for nm, v in (("rtol", rtol), ("atol", atol)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"verify: {nm} must be a finite number >= 0, got {v!r}")
        n, X = self.n, list(self.coords)
        results = {"christoffel": self.christoffel(), "ricci": self.ricci(), "scalar": self.scalar()}
        exprs = {k: [_numeric_constants(sp.sympify(e)) for e in (sp.flatten(v) if k != "scalar" else [v])]
                 for k, v in results.items()}
        everything = list(self.matrix) + [e for v in exprs.values() for e in v]
        funcs = set().union(*(e.atoms(sp.core.function.AppliedUndef) for e in everything))
        if funcs:
            raise MetricError(
                f"{self.name}: verify() needs numbers, but the metric contains the functions "
                f"{sorted(map(str, funcs))}; fix them first with .subs({{...}})"
            )
        free = sorted(set().union(*(e.free_symbols for e in everything)) - set(X), key=sp.default_sort_key)
        rng = np.random.default_rng(seed)
        values = {}
        for p in free:
            if params is not None and p in params:
                values[p] = float(params[p])
            elif params is not None and str(p) in params:
                values[p] = float(params[str(p)])
            else:
                v = float(rng.uniform(0.5, 1.5))
                values[p] = -v if p.is_negative else v
        args = X + list(values)
        vals = list(values.values())

        def numeric(exprs_, backend):
            raw = sp.lambdify(args, exprs_, modules=backend if backend == "torch" else ["scipy", "numpy"], cse=True)
            if backend == "torch":
                import torch

                consts = [torch.tensor(v, dtype=torch.float64) for v in vals]
                return lambda *xs: raw(*xs, *consts)
            return lambda *xs: raw(*xs, *vals)

        exprs_m = [_numeric_constants(e) for e in self.matrix]
        try:
            g_t = _wrap_lambdified(numeric(exprs_m, "torch"), n, [(n, n)], [n * n], "torch")
        except Exception as exc:  # sympy's torch printer knows no besselj, gamma, ...
            raise MetricError(
                f"{self.name}: verify() cannot write the metric with torch ({str(exc).splitlines()[0]}); it "
                "needs entries that torch can evaluate (elementary functions)"
            ) from exc
        g_np = _wrap_lambdified(numeric(exprs_m, "numpy"), n, [(n, n)], [n * n], "numpy")
        box = [(0.3, 1.3)] * n if box is None else [tuple(map(float, b)) for b in box]
        if len(box) != n or any(not (lo < hi) for lo, hi in box):
            raise ValueError(
                f"verify: box must give (low, high) with low < high for each of the {n} coordinates, got {box}"
            )
        lo, hi = np.array(box).T
        cand = rng.uniform(lo, hi, size=(max(50, 20 * points), n))
        with np.errstate(all="ignore"):
            G = np.asarray(g_np(cand), dtype=np.complex128) + 0  # complex values show a bad point
            ok = np.isfinite(G).all(axis=(-2, -1)) & (np.abs(G.imag) == 0).all(axis=(-2, -1))
            Gr = np.where(ok[:, None, None], G.real, np.eye(n))
            sv = np.linalg.svd(Gr, compute_uv=False)
            ok &= sv[:, -1] > 1e-6 * sv[:, 0]
        pts = cand[ok][:points]
        if len(pts) == 0:
            raise MetricError(
                f"{self.name}: verify() found no point of the box {box} where the metric is finite, real "
                f"and non-degenerate (parameters {values}); pass box=[(low, high), ...] inside its domain"
            )
        # any signature: the points were chosen non-degenerate above
        field = MetricField(g_t, n, backend="torch", name=self.name, check=False)
        try:
            curv = field.curvature(pts)
        except (NameError, TypeError, AttributeError) as exc:
            raise MetricError(
                f"{self.name}: verify() cannot differentiate the metric with torch ({exc}); it needs entries "
                "that torch can evaluate (elementary functions)"
            ) from exc
        auto = {
            "christoffel": curv.christoffel.detach().cpu().numpy(),
            "ricci": curv.ricci.detach().cpu().numpy(),
            "scalar": curv.scalar.detach().cpu().numpy(),
        }
        shapes = {"christoffel": (n, n, n), "ricci": (n, n), "scalar": ()}
        gam_scale = np.abs(auto["christoffel"]).reshape(len(pts), -1).max(axis=1) ** 2
        gam_scale = gam_scale * np.abs(curv.g_inv.detach().cpu().numpy()).reshape(len(pts), -1).max(axis=1)
        worst = {}
        for key, ex in exprs.items():
            fn = _wrap_lambdified(numeric(ex, "numpy"), n, [shapes[key]], [max(1, math.prod(shapes[key]))], "numpy")
            with np.errstate(all="ignore"):
                exact = np.asarray(fn(pts), dtype=np.float64).reshape(auto[key].shape)
            diff = np.abs(exact - auto[key]).reshape(len(pts), -1)
            scale = np.maximum(1.0, np.maximum(np.abs(exact), np.abs(auto[key])).reshape(len(pts), -1).max(axis=1))
            if key != "christoffel":
                # Ric and R are sums of ∂Γ and ΓΓ terms that may cancel (Ric = 0 for Kerr):
                # their rounding error scales with |Γ|², not with the result
                scale = np.maximum(scale, gam_scale)
            bad = ~(diff <= atol + rtol * scale[:, None])  # NaN counts as a disagreement
            worst[key] = float(np.nanmax(diff / scale[:, None])) if np.isfinite(diff).all() else math.inf
            if bad.any():
                b, c = map(int, np.argwhere(bad)[0])
                idx = np.unravel_index(c, shapes[key]) if shapes[key] else ()
                raise MetricError(
                    f"{self.name}: verify() failed: exact {key}{list(map(int, idx))} = "
                    f"{exact.reshape(len(pts), -1)[b, c]!r} but torch autodiff gives "
                    f"{auto[key].reshape(len(pts), -1)[b, c]!r} at x = {pts[b].tolist()} "
                    f"(parameters {dict((str(k), v) for k, v in values.items())}; tolerance "
                    f"{atol} + {rtol}·{scale[b]:.3g}); the symbolic result is wrong — please report this metric"
                )
        return Verification(self.name, pts, {str(k): v for k, v in values.items()}, worst)

    def __repr__(self) -> str:
        return f"SymbolicMetric(name={self.name!r}, coords={self.coords}, n={self.n})"


@dataclass(frozen=True)
class Verification:
    """What :meth:`SymbolicMetric.verify` checked: the points (rows), the parameter
    values used and the worst relative discrepancy per tensor (all within tolerance)."""

    name: str
    points: Any
    params: dict
    max_rel_error: dict


def _cheap_simplify(e: sp.Expr) -> sp.Expr:
    """Reduce an entry cheaply: trig normal form (exact) if it has sin/cos, else ``cancel``."""
    try:
        if e.has(sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc):
            return trig_normal(e)
        return sp.cancel(e)
    except Exception:
        return e


def _wrap_lambdified(raw: Callable, n: int, shapes, sizes, backend: str) -> Callable:
    """Turn a lambdified list-valued function of n scalars into x[..., n] -> array(s)."""
    if backend == "torch":
        import torch

        def fn(x):
            if not torch.is_tensor(x):
                x = torch.as_tensor(x, dtype=torch.float64)
            args = [x[..., i] for i in range(n)]
            zero = torch.zeros_like(args[0]) if n else None
            vals = raw(*args)
            vals = [v if torch.is_tensor(v) and v.shape == zero.shape else zero + v for v in vals]
            flat = torch.stack(vals, dim=-1)
            return _split(flat, shapes, sizes, lambda t, s: t.reshape(tuple(t.shape[:-1]) + tuple(s)))

    else:
        import numpy as np

        def fn(x):
            x = np.asarray(x, dtype=np.float64)
            args = [x[..., i] for i in range(n)]
            base = np.zeros(x.shape[:-1])
            vals = [np.broadcast_to(np.asarray(v, dtype=np.float64) + base, base.shape) for v in raw(*args)]
            flat = np.stack(vals, axis=-1)
            return _split(flat, shapes, sizes, lambda t, s: t.reshape(tuple(t.shape[:-1]) + tuple(s)))

    return fn


def _split(flat, shapes, sizes, reshape):
    outs = []
    start = 0
    for s, k in zip(shapes, sizes):
        outs.append(reshape(flat[..., start:start + k], s))
        start += k
    return outs[0] if len(outs) == 1 else tuple(outs)
