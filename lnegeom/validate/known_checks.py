"""Known curvature values: every catalogue metric, symbolic and numeric, against its closed form."""

from __future__ import annotations

import sympy as sp

from ..catalog import CATALOG, NUMERIC_PARAMS, SAMPLE_BOXES, numeric_errors
from ..curvature import MetricError
from ..symbolic import is_zero
from .base import CheckResult, Context, check

SECTION = "curvature"


@check("known-symbolic", "Catalogue metrics: symbolic curvature = derived closed forms", SECTION)
def known_symbolic(ctx: Context) -> CheckResult:
    names = [n for n in CATALOG if not (ctx.quick and n == "kerr")]
    failures, checked = [], 0
    for name in names:
        entry = CATALOG[name]()
        m, exp = entry.metric, entry.expected
        if "scalar" in exp:
            checked += 1
            if not is_zero(m.scalar() - exp["scalar"]):
                failures.append(f"{name}: R")
        if "ricci" in exp:
            checked += 1
            if not all(is_zero(e) for e in m.ricci() - exp["ricci"]):
                failures.append(f"{name}: Ric")
        if "scalar_at_0" in exp:
            checked += 1
            if sp.cancel(m.scalar().subs({c: 0 for c in m.coords}) - exp["scalar_at_0"]) != 0:
                failures.append(f"{name}: R(0)")
    return CheckResult(
        "known-symbolic", "Catalogue metrics: symbolic curvature = derived closed forms", SECTION, not failures,
        measured={"metrics": len(names), "identities checked": checked, "failed": failures or "none"},
        expected={"failed": "none"},
        criterion="difference reduces exactly to 0 (rational cancellation, no blanket simplify)",
        details=("Metrics: " + ", ".join(names) + ". Expected values are derived in the docstrings of "
                 "lnegeom.catalog (e.g. unit 2-sphere R = 2, unit 3-sphere Ric = 2g, hyperbolic plane R = −2, "
                 "Schwarzschild and Kerr Ricci-flat, Nil R = −1/2, Sol R = −2)."),
    )


@check("known-numeric", "Catalogue metrics: torch autodiff path = closed forms at random points", SECTION)
def known_numeric(ctx: Context) -> CheckResult:
    worst: dict[str, float] = {}
    for name in CATALOG:
        for key, err in numeric_errors(name, k=2 if ctx.quick else 6, seed=ctx.seed).items():
            worst[f"{name}:{key}"] = err
    top = max(worst.values())
    arg = max(worst, key=worst.get)
    return CheckResult(
        "known-numeric", "Catalogue metrics: torch autodiff path = closed forms at random points", SECTION,
        top < 1e-8, measured={"max rel. error": top, "worst": arg, "comparisons": len(worst)},
        expected={"max rel. error": 0.0}, criterion="< 1e-8 (float64 autodiff vs lambdified closed form)",
    )


@check("symbolic-verify", "Catalogue metrics: exact Γ, Ric, R = torch autodiff at random points (verify)", SECTION)
def symbolic_verify(ctx: Context) -> CheckResult:
    """Every catalogue metric through :meth:`SymbolicMetric.verify`: the exact results against
    an independent path (autodiff of the lambdified matrix), parameters drawn at random."""
    names = [n for n in CATALOG if not (ctx.quick and n == "kerr")]
    failures, worst, points = [], {}, 0
    for i, name in enumerate(names):
        m = CATALOG[name]().metric
        funcs = {f: v for f, v in NUMERIC_PARAMS.items() if isinstance(f, sp.core.function.AppliedUndef)}
        if m.matrix.atoms(sp.core.function.AppliedUndef):
            m = m.subs({f: v for f, v in funcs.items() if m.matrix.has(f)})
        try:
            v = m.verify(points=2 if ctx.quick else 4, seed=ctx.seed + i, box=SAMPLE_BOXES.get(name))
        except MetricError as exc:
            failures.append(f"{name}: {exc}")
            continue
        points += len(v.points)
        worst[name] = max(v.max_rel_error.values())
    top = max(worst, key=worst.get) if worst else "none"
    return CheckResult(
        "symbolic-verify", "Catalogue metrics: exact Γ, Ric, R = torch autodiff at random points (verify)",
        SECTION, not failures,
        measured={"metrics": len(names), "points": points, "max rel. error": worst.get(top, 0.0),
                  "worst": top, "failed": failures or "none"},
        expected={"failed": "none"},
        criterion="|exact − autodiff| ≤ 1e-9 + 1e-7·scale for every component of Γ, Ric and R",
        details=("SymbolicMetric.verify lambdifies the exact results and compares them with float64 "
                 "torch.func derivatives of the lambdified matrix; parameters are random in [0.5, 1.5], "
                 "a(t) and u(x, y) fixed as in lnegeom.catalog.NUMERIC_PARAMS."),
    )
