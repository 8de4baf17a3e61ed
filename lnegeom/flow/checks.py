"""What :func:`~lnegeom.flow.solve_flow` refuses, and the check of the flow's state during a run.

The input checks name the entry, the grid point (and batch member) and the fix; the state check
(:func:`metric_problem`) says where a stage stopped being a finite, positive definite metric, which
makes a stepper retry or stop.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .._array import array_namespace, is_torch_array, to_numpy
from ..curvature import MetricError, check_metric_array, inverse_last
from ..domains import Domain
from ..layout import components_last, packing

__all__ = ["first_true", "describe_index", "check_metric_field", "check_constant_or_field", "check_step_options",
           "metric_problem"]


def first_true(mask: Any) -> tuple:
    """Index of the first True entry of a boolean array (numpy or torch)."""
    xp = array_namespace(mask)
    flat = xp.reshape(xp.astype(mask, xp.int8), (-1,))
    return tuple(int(i) for i in np.unravel_index(int(xp.argmax(flat)), tuple(mask.shape)))


def _entry(name: str, idx: tuple) -> str:
    """'name[i0, i1, ...]' for an index into an array."""
    return f"{name}[{', '.join(str(int(i)) for i in idx)}]"


def describe_index(domain: Domain, index: Sequence[int], batch: bool) -> str:
    """'[batch member b, ]grid point (...), x = [...]' for an index ``[b, *grid]`` or ``[*grid]``."""
    index = tuple(int(i) for i in index)
    if batch:
        return f"batch member {index[0]}, {domain.describe_point(index[1:])}"
    return domain.describe_point(index)


def _real_finite(a: Any, name: str, domain: Domain, batch: bool = False) -> np.ndarray:
    """``a`` as a float64 numpy array, refusing complex dtypes and non-finite entries.

    ``a`` is a metric field ``[*grid, n, n]`` (``[B, *grid, n, n]`` with ``batch``) or a
    constant n×n matrix; the error names the entry, the grid point (batch member) and the
    component (i, j), and what to do.
    """
    arr = to_numpy(a) if is_torch_array(a) else np.asarray(a)
    n = domain.n
    field = arr.ndim == n + 2 + int(batch)

    def where(idx: tuple) -> str:
        """Grid point / batch member and component of a full index into ``arr``."""
        comp = f"component (i, j) = ({int(idx[-2])}, {int(idx[-1])})" if arr.ndim >= 2 else "its entry"
        if not field:
            return comp + (" of the constant matrix" if arr.ndim == 2 else "")
        return f"{describe_index(domain, idx[:-2], batch)}, {comp}"

    if np.iscomplexobj(arr):
        imag = arr.imag != 0
        if np.any(imag):
            idx = first_true(imag)
            detail = (f"{_entry(name, idx)} = {complex(arr[idx]):.6g} at {where(idx)}; pass {name}.real only if "
                      f"the imaginary parts are rounding noise, otherwise fix how {name} is computed")
        else:
            detail = f"all imaginary parts are zero: pass {name}.real"
        raise MetricError(
            f"{name} has a complex dtype ({arr.dtype}); a metric is real and is never cast silently ({detail})"
        )
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of real numbers, got dtype {arr.dtype}: {err}") from err
    fin = np.isfinite(arr)
    if not np.all(fin):
        idx = first_true(~fin)
        raise MetricError(
            f"{name} has a non-finite entry {_entry(name, idx)} = {arr[idx]} at {where(idx)}; every entry must "
            f"be finite: fix how {name} is computed{' there' if field else ''} (division by zero, overflow, log "
            "or sqrt of a non-positive number) or replace the value"
        )
    return arr


def check_constant_or_field(a: Any, name: str, domain: Domain) -> np.ndarray:
    """``a`` (the background or the reference metric) as float64 numpy, refusing any shape but a
    constant n×n matrix or a field ``[*grid, n, n]``, and complex or non-finite entries."""
    n = domain.n
    shape = np.shape(a)
    if shape not in ((n, n), tuple(domain.shape) + (n, n)):
        raise ValueError(f"{name} must be a constant {n}×{n} matrix or a field of shape "
                         f"{tuple(domain.shape) + (n, n)} (grid axes first) for {domain!r}, got shape {shape}")
    return _real_finite(a, name, domain)


def check_metric_field(g0: Any, domain: Domain, batch: bool = False, name: str = "g0") -> Any:
    """Validate ``g0`` (``[*grid, n, n]``, or ``[B, *grid, n, n]`` with ``batch``); return it symmetrised,
    float64, in its own namespace (numpy, or torch on its device).  Errors call it ``name``.

    Shape, dtype and finiteness are checked here (naming the entry); symmetry and positive
    definiteness by :func:`lnegeom.curvature.check_metric_array`, the one metric validator and its
    tolerance, with the grid point (and batch member) named.
    """
    torch_in = is_torch_array(g0)
    g_np = np.asarray(g0) if not torch_in else to_numpy(g0)
    n = domain.n
    single = tuple(domain.shape) + (n, n)
    if batch:
        if g_np.ndim != len(single) + 1 or tuple(g_np.shape[1:]) != single or g_np.shape[0] < 1:
            raise ValueError(
                f"with batch=True {name} must have shape (B,) + {single} (batch axis, then grid axes, then n×n) "
                f"for {domain!r}, got {g_np.shape}"
            )
    elif g_np.shape != single:
        raise ValueError(
            f"{name} must have shape {single} (grid axes first, then n×n) "
            f"for {domain!r}, got {g_np.shape}"
        )
    g_np = _real_finite(g_np, name, domain, batch)
    check_metric_array(g_np, name=name, describe=lambda idx: describe_index(domain, idx, batch))
    if torch_in:
        import torch

        g = g0.to(torch.float64)
        return 0.5 * (g + g.transpose(-1, -2))
    return 0.5 * (g_np + np.swapaxes(g_np, -1, -2))


def check_step_options(*, rtol: Any, atol: Any, first_step: Any, max_step: Any, fixed_step: Any,
                       max_steps: Any) -> None:
    """Refuse step-control options no integrator can honour (rtol = 0 would never accept a step,
    a negative step would integrate backwards); each message names the value."""
    def positive(name: str, value: Any, finite: bool = True) -> None:
        ok = (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
              and value > 0 and (math.isfinite(value) or not finite) and not math.isnan(value))
        if not ok:
            raise ValueError(f"{name} must be a {'finite ' if finite else ''}number > 0, got {name}={value!r}")

    positive("rtol", rtol)
    positive("atol", atol)
    positive("max_step", max_step, finite=False)
    for name, value in (("first_step", first_step), ("fixed_step", fixed_step)):
        if value is not None:
            positive(name, value)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got max_steps={max_steps!r}")


def metric_problem(g: Any, domain: Domain, batch: bool = False) -> Optional[str]:
    """None if the symmetric field ``g[n, n, *batch, *grid]`` (components first, numpy or torch) is finite
    and positive definite everywhere, else what is wrong and where.

    Positive definiteness by Sylvester's criterion (leading principal minors, n ≤ 3) on the
    components-first arrays; only where that fails, or for n ≥ 4, one ``eigvalsh`` (of the same
    array, viewed components last) names the smallest eigenvalue.
    """
    xp = array_namespace(g)
    if not bool(xp.all(xp.isfinite(g))):
        pk = packing(domain.n)
        idx = first_true(~xp.isfinite(pk.pack(g)))
        i, j = pk.pairs[idx[0]]
        return f"non-finite value g_{i}{j} = {float(g[(i, j) + idx[1:]])} at {describe_index(domain, idx[1:], batch)}"
    n = g.shape[0]
    if n <= 3:  # Sylvester: all leading principal minors > 0
        ok = g[0, 0] > 0
        if n >= 2:
            ok = ok & (g[0, 0] * g[1, 1] - g[0, 1] * g[1, 0] > 0)
        if n == 3:
            ok = ok & (inverse_last(g)[1] > 0)
        if bool(xp.all(ok)):
            return None
    lam = xp.linalg.eigvalsh(components_last(g, 2))[..., 0]
    if bool(xp.all(lam > 0)):
        return None
    idx = first_true(lam == xp.min(lam))
    return (f"the metric stopped being positive definite at {describe_index(domain, idx, batch)} "
            f"(smallest eigenvalue {float(xp.min(lam)):.6g})")
