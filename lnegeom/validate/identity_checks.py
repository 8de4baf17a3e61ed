"""Curvature identities over random smooth metrics, run as a property test (lnegeom.testing)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .. import testing
from .base import CheckResult, Context, check

SECTION = "curvature"


@check("identities", "Curvature identities on random metrics (property test)", SECTION)
def identities(ctx: Context) -> CheckResult:
    examples = 6 if ctx.quick else 30
    seen = {"examples": 0, "dims": set()}

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(data=st.data())
    def prop(data):
        n = data.draw(st.sampled_from([2, 3, 4]), label="n")
        metric = data.draw(testing.smooth_metrics(n), label="metric")
        x = data.draw(testing.points(n, count=2, low=-2.0, high=2.0), label="x")
        phi = data.draw(testing.coordinate_maps(n), label="phi")
        testing.assert_curvature_identities(metric.torch, x, phi=phi, other=metric.numpy)
        seen["examples"] += 1
        seen["dims"].add(n)

    error = None
    try:
        prop()
    except AssertionError as exc:  # hypothesis re-raises the minimal failing example
        error = str(exc)
    return CheckResult(
        "identities", "Curvature identities on random metrics (property test)", SECTION, error is None,
        measured={"examples passed": seen["examples"], "dimensions": sorted(seen["dims"]),
                  "first failure": (error or "none")[:300]},
        expected={"examples passed": examples, "first failure": "none"},
        criterion=("all identities within round-off tolerances of lnegeom.testing: Riemann antisymmetries, pair "
                   "symmetry, first Bianchi, Ricci symmetry, contracted second Bianchi, R(c²g) = R(g)/c², "
                   "invariance under a random diffeomorphism, torch autodiff = numpy finite differences"),
        details=("Metrics g(x) = A + Σ a_k f_k(w_k·x + φ_k) S_k, positive definite everywhere by construction "
                 "(lnegeom.testing.smooth_metrics), 2 points each in [−2, 2]ⁿ, n ∈ {2, 3, 4}, "
                 "derandomized hypothesis run."),
    )
