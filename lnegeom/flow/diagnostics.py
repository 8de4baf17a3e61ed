r"""Diagnostics of a metric field along the flow: distance to a reference, curvature, DeTurck field.

:func:`flow_diagnostics` is the public entry (one field, grid axes first);
:func:`diagnostics_from_parts` computes the same numbers from the parts a right-hand-side
evaluation has already produced (components first), which is how the steppers record them at
no extra evaluation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as _device

from .._array import array_namespace, to_numpy
from ..curvature import RicciParts, curvature_from_derivatives, einsum_last, inverse_last
from ..domains import Domain
from ..layout import components_first, components_last
from .rhs import FlowRHS

__all__ = ["flow_diagnostics", "diagnostics_from_parts", "diagnostics_of", "reference_components_first"]


def reference_components_first(reference: Any, n: int, like: Any) -> Any:
    """A reference metric (``None`` = δ, n×n, or a field ``[*grid, n, n]``) in the namespace, dtype and
    device of ``like``, broadcastable against ``[n, n, ..., *grid]``."""
    xp = array_namespace(like)
    ref = np.eye(n) if reference is None else to_numpy(reference)
    ref = xp.asarray(ref, dtype=like.dtype, device=_device(like))
    if ref.ndim == 2:
        return xp.reshape(ref, (n, n) + (1,) * n)
    return components_first(ref, 2)


def diagnostics_from_parts(domain: Domain, g: Any, parts: RicciParts, W: Any, reference: Any) -> dict:
    """The diagnostics of :func:`flow_diagnostics` for ``g[i, j, *batch, *grid]`` with its
    :class:`~lnegeom.curvature.RicciParts` and W (components first; ``reference`` from
    :func:`reference_components_first`); values ``[*batch]`` (numpy)."""
    xp = array_namespace(g)
    n = domain.n

    def ax(x):
        return tuple(range(x.ndim - n, x.ndim))

    rm2 = parts.rm_norm_sq
    if rm2 is None:  # n ≥ 4: the Weyl part needs the full Riemann tensor
        dg, d2g = domain.gradient(g, grid_last=True), domain.hessian(g, grid_last=True)
        curv = curvature_from_derivatives(components_last(g, 2), components_last(dg, 3), components_last(d2g, 4),
                                          check=False)
        rm2 = curv.kretschmann
    _, det = inverse_last(g)
    w2 = einsum_last("k...,k...->...", einsum_last("l...,kl...->k...", W, g), W)
    if reference.ndim < g.ndim:  # a reference without the batch axes
        reference = xp.reshape(reference, (n, n) + (1,) * (g.ndim - reference.ndim) + tuple(reference.shape[2:]))
    diff = g - reference
    out = {
        "l2": xp.sqrt(domain.integral(xp.sum(diff * diff, axis=(0, 1)), grid_last=True)),
        "max_rm": xp.sqrt(xp.clip(xp.max(rm2, axis=ax(rm2)), min=0.0)),
        "int_rm2": domain.integral(rm2 * xp.sqrt(det), grid_last=True),
        "min_scalar": xp.min(parts.scalar, axis=ax(parts.scalar)),
        "max_scalar": xp.max(parts.scalar, axis=ax(parts.scalar)),
        "min_eig": xp.min(xp.linalg.eigvalsh(components_last(g, 2))[..., 0], axis=ax(det)),
        "max_w": xp.sqrt(xp.clip(xp.max(w2, axis=ax(w2)), min=0.0)),
        "mean_g": components_last(domain.integral(g, grid_last=True) / domain.volume, 2),
    }
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in ((k, to_numpy(v)) for k, v in out.items())}


def diagnostics_of(rhs: FlowRHS, g: Any, reference: Any) -> dict:
    """The diagnostics of ``g[*grid, n, n]`` for the flow of ``rhs`` (one evaluation of it)."""
    _, parts, W = rhs.components_first(components_first(g, 2))
    return diagnostics_from_parts(rhs.domain, parts.g, parts, W, reference_components_first(reference, rhs.domain.n, g))


def flow_diagnostics(g: Any, domain: Domain, *, reference: Any = None, flow: str = "ricci-deturck",
                     background_christoffel: Any = None) -> dict:
    r"""Diagnostics of one metric field ``g[*grid, n, n]`` (numpy or torch).

    Keys: ``l2`` = ‖g − reference‖_L² (Frobenius, dx; reference = δ when
    ``None``), ``max_rm`` = max |Rm|_g, ``int_rm2`` = ∫ |Rm|²_g dV_g,
    ``min_scalar`` / ``max_scalar`` (R), ``min_eig`` (smallest eigenvalue of g
    over the grid), ``max_w`` = max |W|_g (DeTurck field, 0 for Ricci flow),
    ``mean_g`` (grid mean of g, n×n).  |Rm|² comes from Ric and R for n ≤ 3
    (|Rm|² = R² in 2-D, 4|Ric|² − R² in 3-D) and from the Riemann tensor for n ≥ 4.
    """
    return diagnostics_of(FlowRHS(domain, flow, background_christoffel), g, reference)
