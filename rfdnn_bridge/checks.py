"""Checks of user-supplied numbers, one place for the messages: each names the value and the range."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["positive", "finite_at_least"]


def positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite real number > 0, else ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    return float(value)


def finite_at_least(name: str, value: Any, low: float = 0.0) -> None:
    """Refuse ``value`` unless it is a real number, finite and >= ``low`` (the message names it)."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
          and float(value) >= low)
    if not ok:
        raise ValueError(f"{name} must be a finite number >= {low:g}, got {name}={value!r}")
