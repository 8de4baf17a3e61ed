"""``lnegeom validate``: numerical checks of the theory, written as a user would.

Each section's checks live in a module of this package and register
themselves with :func:`~lnegeom.validate.base.check`; importing this package
registers them all.
"""

from . import box_checks, flow_checks, identity_checks, known_checks, lne_checks  # noqa: F401  (registration)
from .base import REGISTRY, CheckResult, Context, check
from .report import ValidationInterrupted, print_summary, publish_report, run_checks, write_report

__all__ = ["REGISTRY", "CheckResult", "Context", "ValidationInterrupted", "check", "print_summary", "publish_report",
           "run_checks", "write_report"]
