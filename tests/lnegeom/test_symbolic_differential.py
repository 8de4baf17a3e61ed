"""Differential tests of ``lnegeom.symbolic``: exact (sympy) curvature against torch autodiff.

Random metrics from :func:`lnegeom.testing.symbolic_metrics` (a grammar of polynomials,
rational functions, exp, log, sqrt, rational powers, sin/cos/tan, sinh/cosh/tanh, atan and
their compositions, constant and coordinate-dependent off-diagonal terms, Riemannian and
Lorentzian), checked by :func:`lnegeom.testing.assert_symbolic_matches_autodiff` (Γ^k_ij,
Ric_jk and R at points of the metric's box).  The autodiff reference only lambdifies the
*entries* of the matrix; it does not use ``lnegeom.symbolic``.

The bug class this net is for: a non-rational function (exp, sqrt, log, a non-integer power)
of a trigonometric or hyperbolic function of a coordinate, e.g. exp(sin x) δ, for which an exact
engine can silently give a wrong answer (it did: R = 0 for exp(sin x) δ instead of
e^{-sin x} sin x).  The deterministic cases below and the ``@example``\\ s run in every profile,
so the derandomized ``ci`` profile (12 examples) catches that class too; the grammar also puts
such composites in most diagonal entries (checked by ``test_grammar_covers_the_bug_class``).

n = 4 runs only in the ``nightly`` profile (``HYPOTHESIS_PROFILE=nightly``).  Conventions:
docs/math.md §1 (layouts of ``lnegeom.curvature``).
"""

import contextlib
import os
import signal
import time
import warnings

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from lnegeom import MetricError
from lnegeom.symbolic import SymbolicMetric
from lnegeom.testing import (
    SymbolicMetricSample,
    SymbolicRefusal,
    assert_symbolic_matches_autodiff,
    symbolic_metrics,
)

NIGHTLY = "nightly" in (settings.get_current_profile_name(), os.environ.get("HYPOTHESIS_PROFILE"))
ALL = ("christoffel", "ricci", "scalar", "riemann")
# Generated examples on which SymbolicMetric takes longer than TIME_LIMIT seconds, or which it
# refuses (a MetricError: no answer, not a wrong one), are skipped with a warning that names them;
# LNEGEOM_SYMBOLIC_STRICT=1 makes both failures.  Explicit examples always run to the end.
TIME_LIMIT = float(os.environ.get("LNEGEOM_SYMBOLIC_TIME_LIMIT", "10" if NIGHTLY else "3"))  # 0: no limit
# The generated examples of one test together get at most BUDGET seconds (0: no limit); past it the
# rest are rejected unchecked, with a warning.  Without it a loaded machine, on which most draws take
# over TIME_LIMIT, has hypothesis draw ~460 of them before it gives up: 20 minutes for one test.
BUDGET = float(os.environ.get("LNEGEOM_SYMBOLIC_BUDGET", "0" if NIGHTLY else "60"))
_spent: dict[str, float] = {}
_failing: set[str] = set()  # tests with a failing example: hypothesis replays it, the budget must not reject it
# outside the nightly profile a few generated 3-D metrics per test, with at most two function
# applications per metric (the explicit examples always run): random 3-D metrics cost seconds
# each, and hypothesis keeps drawing after every skipped (too slow) one
# rejected draws (too slow, refused, over BUDGET) are expected here: not a filter that rejects too much
BUDGETED = settings(suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.filter_too_much])
FEW_3D = settings(BUDGETED, max_examples=settings.default.max_examples if NIGHTLY else 3)
FUNCS_3D = None if NIGHTLY else 2
STRICT = os.environ.get("LNEGEOM_SYMBOLIC_STRICT", "").lower() in ("1", "true", "yes")


class SlowSymbolicWarning(UserWarning):
    """SymbolicMetric exceeded TIME_LIMIT on a generated metric (a performance problem, not a wrong answer)."""


class SymbolicRefusalWarning(UserWarning):
    """SymbolicMetric refused a generated (valid, elementary) metric."""


class _TooSlow(BaseException):  # not an Exception: nothing on the way may swallow it
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    """Raise _TooSlow in the block after ``seconds``, and again every 0.5 s until it ends: an alarm
    that lands in a ``__del__`` or a weakref callback is printed and swallowed by Python."""
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return
    done = False

    def on_alarm(signum, frame):
        if not done:
            raise _TooSlow

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        done = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_generated(s, explicit=(), check=assert_symbolic_matches_autodiff):
    """check(s), skipping (with a warning) a generated example that is too slow or refused."""
    if STRICT or any(s is e for e in explicit):
        check(s)
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    if BUDGET and test not in _failing and _spent.get(test, 0.0) > BUDGET:
        reject()
    start = time.perf_counter()
    try:
        with _time_limit(TIME_LIMIT):
            check(s)
    except _TooSlow:
        warnings.warn(f"SymbolicMetric took over {TIME_LIMIT:g} s; example skipped: {s!r}", SlowSymbolicWarning,
                      stacklevel=2)
        reject()
    except SymbolicRefusal as exc:
        warnings.warn(f"example skipped: {exc}", SymbolicRefusalWarning, stacklevel=2)
        reject()
    except Exception:
        _failing.add(test)
        raise
    finally:
        _spent[test] = _spent.get(test, 0.0) + time.perf_counter() - start
        if BUDGET and _spent[test] > BUDGET:
            warnings.warn(f"generated examples of {test} took {_spent[test]:.0f} s, over the budget of "
                          f"{BUDGET:g} s (LNEGEOM_SYMBOLIC_BUDGET); the rest are rejected unchecked",
                          SlowSymbolicWarning, stacklevel=2)


def sample(matrix: str, **kw) -> SymbolicMetricSample:
    return SymbolicMetricSample.parse(matrix, **kw)


# ------------------------------------------------------------------ the bug class, deterministic
# (matrix, a closed form of R computed by the textbook formulas below, or None)
x0, x1 = sp.symbols("x0 x1", real=True)


def conformal_scalar(phi):
    """g = φ δ in 2-D (φ = e^{2u}): R = −2 e^{−2u} Δu = −Δ(log φ) / φ."""
    lg = sp.log(phi)
    return -(sp.diff(lg, x0, 2) + sp.diff(lg, x1, 2)) / phi


def warped_scalar(f):
    """g = dx0² + f(x0) dx1²: R = 2K = −2 (√f)'' / √f."""
    h = sp.sqrt(f)
    return -2 * sp.diff(h, x0, 2) / h


BUG_CLASS = {
    "exp(sin x) delta": ("Matrix([[exp(sin(x0)), 0], [0, exp(sin(x0))]])", conformal_scalar(sp.exp(sp.sin(x0)))),
    "diag(1, exp(tanh x))": ("Matrix([[1, 0], [0, exp(tanh(x0))]])", warped_scalar(sp.exp(sp.tanh(x0)))),
    "diag(1, log(3 + sin x))": ("Matrix([[1, 0], [0, log(3 + sin(x0))]])", warped_scalar(sp.log(3 + sp.sin(x0)))),
    "sqrt(2 + sin x) delta": ("Matrix([[sqrt(2 + sin(x0)), 0], [0, sqrt(2 + sin(x0))]])",
                              conformal_scalar(sp.sqrt(2 + sp.sin(x0)))),
    "exp(sin x cos y) delta": ("Matrix([[exp(sin(x0)*cos(x1)), 0], [0, exp(sin(x0)*cos(x1))]])",
                               conformal_scalar(sp.exp(sp.sin(x0) * sp.cos(x1)))),
    "exp(sinh x) delta": ("Matrix([[exp(sinh(x0)), 0], [0, exp(sinh(x0))]])", conformal_scalar(sp.exp(sp.sinh(x0)))),
}


@pytest.mark.parametrize("name", list(BUG_CLASS))
def test_bug_class_matches_autodiff_and_closed_form(name):
    matrix, closed_form = BUG_CLASS[name]
    s = sample(matrix)
    assert_symbolic_matches_autodiff(s, quantities=ALL)
    pts = np.asarray(s.points)
    expected = sp.lambdify((x0, x1), closed_form, "numpy")(pts[:, 0], pts[:, 1])
    got = s.symbolic().lambdify("scalar", "numpy")(pts)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12, err_msg=f"R of {name} != closed form")


# the same class in Lorentzian signature, with off-diagonal terms and in 3-D
LORENTZIAN_BUG_CLASS = [
    sample("Matrix([[-1, 0], [0, exp(2*sin(x0))]])", signature="lorentzian"),
    sample("Matrix([[-sqrt(2 + cos(x1)), 0], [0, log(3 + sinh(x0))]])", signature="lorentzian"),
]
OFF_DIAGONAL_BUG_CLASS = [
    sample("Matrix([[exp(sin(x0)), 1/4], [1/4, exp(sin(x0))]])"),
    sample("Matrix([[sqrt(2 + sin(x0)), x1/8], [x1/8, 1]])"),
]
THREE_D_BUG_CLASS = [
    sample("Matrix([[exp(sin(x0)), 0, 0], [0, 1, 0], [0, 0, log(3 + cos(x1*x2))]])"),
    sample("Matrix([[-exp(sinh(x1)), 0, 0], [0, 1, 1/4], [0, 1/4, sqrt(2 + sin(x0))]])", signature="lorentzian"),
]


# ------------------------------------------------------------------ property tests
@BUDGETED
@given(symbolic_metrics(2, signature="riemannian"))
@example(OFF_DIAGONAL_BUG_CLASS[0])
@example(OFF_DIAGONAL_BUG_CLASS[1])
def test_symbolic_matches_autodiff_2d_riemannian(s):
    check_generated(s, OFF_DIAGONAL_BUG_CLASS)


@BUDGETED
@given(symbolic_metrics(2, signature="lorentzian"))
@example(LORENTZIAN_BUG_CLASS[0])
@example(LORENTZIAN_BUG_CLASS[1])
def test_symbolic_matches_autodiff_2d_lorentzian(s):
    check_generated(s, LORENTZIAN_BUG_CLASS)


@FEW_3D
@given(symbolic_metrics(3, signature="riemannian", max_depth=1, max_functions=FUNCS_3D))
@example(THREE_D_BUG_CLASS[0])
def test_symbolic_matches_autodiff_3d_riemannian(s):
    check_generated(s, THREE_D_BUG_CLASS)


@FEW_3D
@given(symbolic_metrics(3, signature="lorentzian", max_depth=1, max_functions=FUNCS_3D))
@example(THREE_D_BUG_CLASS[1])
def test_symbolic_matches_autodiff_3d_lorentzian(s):
    check_generated(s, THREE_D_BUG_CLASS)


@pytest.mark.slow
@pytest.mark.skipif(not NIGHTLY, reason="n = 4 runs in the nightly hypothesis profile only")
@BUDGETED
@given(symbolic_metrics(4, signature="any", max_depth=1))
def test_symbolic_matches_autodiff_4d_nightly(s):
    check_generated(s)


# ------------------------------------------------------------------ a plain-sympy reference (n = 2)
def textbook_curvature(coords, g):
    """Γ^k_ij, Ric_jk, R by the formulas of docs/math.md §1 with sympy.diff only (no simplification)."""
    n = len(coords)
    gi = g.adjugate() / g.det()
    dg = [[[sp.diff(g[i, j], coords[a]) for j in range(n)] for i in range(n)] for a in range(n)]
    gam = [[[sum(gi[k, l] * (dg[i][j][l] + dg[j][i][l] - dg[l][i][j]) for l in range(n)) / 2
             for j in range(n)] for i in range(n)] for k in range(n)]

    def riem(l, i, j, k):  # R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp
        return (sp.diff(gam[l][j][k], coords[i]) - sp.diff(gam[l][i][k], coords[j])
                + sum(gam[p][j][k] * gam[l][i][p] - gam[p][i][k] * gam[l][j][p] for p in range(n)))

    ric = [[sum(riem(p, p, j, k) for p in range(n)) for k in range(n)] for j in range(n)]
    scal = sum(gi[j, k] * ric[j][k] for j in range(n) for k in range(n))
    return gam, ric, scal


def assert_matches_textbook(s):
    gam, ric, scal = textbook_curvature(s.coords, sp.Matrix(s.matrix))
    ref = sp.lambdify(s.coords, [gam, ric, scal], "numpy", cse=True)
    try:
        sm = s.symbolic()
        exact = [sm.christoffel().tolist(), sm.ricci().tolist(), sm.scalar()]
    except MetricError as exc:
        raise SymbolicRefusal(f"lnegeom.symbolic refused the metric: {exc}\n  metric: {s!r}") from exc
    mine = sp.lambdify(s.coords, exact, "numpy")
    for p in s.points:
        for what, a, b in zip(("Christoffel", "Ricci", "R"), ref(*p), mine(*p)):
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-9 * (1 + np.abs(a).max()),
                                       err_msg=f"{what} at x = {p} of {s!r}")


REFERENCE_EXAMPLES = [sample(BUG_CLASS["exp(sin x) delta"][0]), sample(BUG_CLASS["diag(1, log(3 + sin x))"][0])]


@settings(max_examples=min(settings.default.max_examples, 12))
@given(symbolic_metrics(2, signature="any", max_depth=1))
@example(REFERENCE_EXAMPLES[0])
@example(REFERENCE_EXAMPLES[1])
def test_symbolic_matches_plain_sympy_reference(s):
    check_generated(s, REFERENCE_EXAMPLES, assert_matches_textbook)


# ------------------------------------------------------------------ the strategy keeps its promises
BUG_OUTER = (sp.exp, sp.log)
TRIG_HYP = (sp.sin, sp.cos, sp.tan, sp.sinh, sp.cosh, sp.tanh)


def in_bug_class(expr) -> bool:
    """Has a non-rational function (exp, log, a non-integer power) of a trig/hyperbolic function
    of the coordinates."""
    for node in sp.preorder_traversal(expr):
        outer = isinstance(node, BUG_OUTER) or (isinstance(node, sp.Pow) and not node.exp.is_Integer)
        if outer and any(a.free_symbols for a in node.args[0].atoms(*TRIG_HYP)):
            return True
    return False


@given(symbolic_metrics(2, signature="any", max_depth=2), st.data())
def test_strategy_promises(s, data):
    n = s.n
    assert s.signature in ("riemannian", "lorentzian")
    assert s.matrix.is_symmetric() and s.matrix.free_symbols <= set(s.coords)
    assert not s.matrix.has(sp.Abs, sp.sign, sp.Piecewise, sp.I)
    assert eval(repr(s)).matrix == s.matrix  # the repr reproduces the sample
    assert s.nondegeneracy_problem() is None
    # anywhere in the box, not only at the checked grid and points
    lo, hi = np.array(s.box).T
    t = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    x = lo + (hi - lo) * np.array(t)
    lam = np.linalg.eigvalsh(s.evaluate(x))
    assert int((lam < 0).sum()) == (s.signature == "lorentzian") and np.abs(lam).min() > 0, (x, lam)
    # torch (reference) and numpy evaluations agree
    g_t = s.field()(torch.as_tensor(x[None]))[0].numpy()
    np.testing.assert_allclose(g_t, s.evaluate(x), rtol=1e-12, atol=1e-14)


def test_grammar_covers_the_bug_class():
    """Most draws (not only a lucky few) contain the bug class, in every dimension."""
    for n in (2, 3, 4):
        hits = []

        @settings(max_examples=30, database=None, derandomize=True)
        @given(symbolic_metrics(n, signature="any", max_depth=1))
        def collect(s):
            hits.append(in_bug_class(s.matrix))

        collect()
        assert len(hits) >= 15 and np.mean(hits) >= 0.6, (n, np.mean(hits))


def test_strategy_arguments_are_checked():
    for kw in (dict(signature="euclidean"), dict(max_depth=-1), dict(off_diagonal=1.0), dict(num_points=0)):
        with pytest.raises(InvalidArgument):
            symbolic_metrics(2, **kw)
    with pytest.raises(InvalidArgument):
        symbolic_metrics(1, signature="lorentzian")


def test_sample_validation_and_repr():
    s = sample("Matrix([[1, 0], [0, cosh(x0)**2]])")
    assert s.n == 2 and s.box == ((-1.0, 1.0), (-1.0, 1.0)) and len(s.points) == 4
    assert eval(repr(s)).points == s.points
    assert s.symbolic().scalar() == -2
    with pytest.raises(ValueError, match="shape"):
        SymbolicMetricSample(s.coords, sp.eye(3))
    with pytest.raises(ValueError, match="not coordinates"):
        sample("Matrix([[1, 0], [0, a]])")
    with pytest.raises(ValueError, match="inside the box"):
        sample("Matrix([[1, 0], [0, 1]])", points=[[2.0, 0.0]])
    assert "lorentzian" in sample("Matrix([[1, 0], [0, 1]])", signature="lorentzian").nondegeneracy_problem()
    assert "degenerate" in sample("Matrix([[1, 0], [0, x0**2]])").nondegeneracy_problem()


# ------------------------------------------------------------------ the assertion can fail, and says where
class _Sabotaged(SymbolicMetric):
    """A SymbolicMetric with a wrong Ricci component (and optionally a wrong Γ)."""

    def __init__(self, *a, wrong_gamma=False, **kw):
        super().__init__(*a, **kw)
        self._wrong_gamma = wrong_gamma

    def ricci(self):
        r = sp.Matrix(super().ricci())
        r[0, 1] = r[1, 0] = r[0, 1] + sp.Rational(1, 1000) * self.coords[0]
        return r

    def christoffel(self):
        g = super().christoffel()
        if not self._wrong_gamma:
            return g
        m = sp.MutableDenseNDimArray(g)
        m[1, 0, 1] = m[1, 1, 0] = 0
        return m


def test_assertion_names_quantity_component_point_and_values():
    m = _Sabotaged((x0, x1), sp.diag(1, sp.exp(2 * x0)), wrong_gamma=True)
    pts = np.array([[0.5, 0.25], [-0.5, 0.1]])
    with pytest.raises(AssertionError) as info:
        assert_symbolic_matches_autodiff(m, pts)
    msg = str(info.value)
    assert "Christoffel symbol Gamma^k_ij component (k,i,j) = (1, 0, 1)" in msg
    assert "Ricci tensor Ric_jk component (j,k) = (0, 1) at x = [" in msg and "2 of 2 point(s) fail" in msg
    assert "symbolic = " in msg and "autodiff = " in msg and "tolerance" in msg
    assert "exp(2*x0)" in msg  # names the metric
    # a relative error of 1e-3 in one component is far outside the tolerance, 0 is inside it
    assert_symbolic_matches_autodiff(SymbolicMetric((x0, x1), sp.diag(1, sp.exp(2 * x0))), pts)


def test_assertion_reports_a_failing_symbolic_path():
    class Broken(SymbolicMetric):
        def scalar(self):
            return sp.Symbol("_s")

    with pytest.raises(AssertionError, match=r"symbolic path .* failed evaluating its scalar curvature R.*_s"):
        assert_symbolic_matches_autodiff(Broken((x0, x1), sp.eye(2)), [[0.1, 0.2]])
    class Refusing(SymbolicMetric):
        def ricci(self):
            raise MetricError("cannot do this one")

    with pytest.raises(SymbolicRefusal, match=r"refused the metric \(computing its Ricci tensor Ric_jk\): cannot do"):
        assert_symbolic_matches_autodiff(Refusing((x0, x1), sp.eye(2)), [[0.1, 0.2]])
    with pytest.raises(TypeError, match="points are required"):
        assert_symbolic_matches_autodiff(SymbolicMetric((x0, x1), sp.eye(2)))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_composite_terms_are_bounded_away_from_zero(data):
    """The grammar's composites are positive terms: log(1 + u²) has lower bound log 1 = 0 and used to be
    returned as one (then 1/p divided by zero); now log(c + p) with p > 1 wherever its bound allows 0."""
    from lnegeom.testing.grammar import Grammar

    x0, x1 = sp.symbols("x0 x1")
    gr = Grammar(data.draw, (x0, x1), ((-1.0, 1.0), (0.25, 1.25)))
    t = gr.composite(0)
    assert 0.0 < t.lo <= t.hi
