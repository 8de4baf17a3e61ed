r"""The one numeric curvature algebra: ``(g, ∂g, ∂²g) -> Γ, Rm, Ric, R``.

Every numeric path of the project (automatic differentiation at points,
finite differences, and later spectral derivatives on grids) differs only in
*how it obtains* the metric and its first two derivatives.  This module turns
those arrays into curvature, written once against the array API so that numpy
arrays and torch tensors (CPU or GPU, batched over any leading axes) share
the same code.

Conventions (MATH.md §1, used everywhere in the project)
--------------------------------------------------------
Array layout, with ``...`` any batch shape and ``n`` the dimension:

* ``g[..., i, j]`` = g_ij,
* ``dg[..., a, i, j]`` = ∂_a g_ij,
* ``d2g[..., a, b, i, j]`` = ∂_a ∂_b g_ij,
* ``christoffel[..., k, i, j]`` = Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij),
* ``riemann[..., l, i, j, k]`` = R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik
  + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp,
* ``ricci[..., j, k]`` = Ric_jk = R^p_pjk,
* ``scalar[...]`` = R = g^jk Ric_jk.

With these, the unit round 2-sphere has R = +2 and Ric = (n − 1) g on the
unit n-sphere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array import array_namespace

__all__ = [
    "Curvature",
    "christoffel",
    "christoffel_derivative",
    "riemann",
    "curvature_from_derivatives",
    "check_metric_array",
    "MetricError",
]


class MetricError(ValueError):
    """A metric array that is malformed, singular or not positive definite."""


def check_metric_array(
    g: Any, *, require_pd: bool = True, atol: float = 1e-10, points: Any = None, name: str = "metric"
) -> None:
    """Validate a batch of metric matrices ``g[..., n, n]``.

    Raises :class:`MetricError` naming the offending value if ``g`` is not
    square, not symmetric, not finite, or (``require_pd``) not positive
    definite at some batch index (the index — or, when ``points[..., n]``
    is given, the point itself — and the smallest eigenvalue are named, with
    the fix).
    """
    xp = array_namespace(g)
    if g.ndim < 2 or g.shape[-1] != g.shape[-2]:
        raise MetricError(
            f"{name} must be a square matrix per point, got shape {tuple(g.shape)}; "
            "pass an array of shape (..., n, n)"
        )
    batch_shape = tuple(g.shape[:-2])

    n2 = g.shape[-1] * g.shape[-2]

    def at_point(batch_index: int) -> str:
        """Name a batch position: the point itself when ``points`` is given."""
        if not batch_shape:
            return "the point"
        pos = tuple(int(i) for i in np.unravel_index(batch_index, batch_shape))
        if points is not None:
            return "point x = [" + ", ".join(f"{float(v):.6g}" for v in points[pos]) + "]"
        return f"batch index {pos}"

    def where(flat_index: int) -> str:
        """Name an entry of g, flattened over the batch and matrix axes."""
        i, j = divmod(flat_index % n2, g.shape[-1])
        return f"{at_point(flat_index // n2)}, entry (i, j) = ({i}, {j})"

    finite = xp.isfinite(g)
    if not bool(xp.all(finite)):
        idx = int(xp.argmin(xp.reshape(xp.astype(finite, xp.int8), (-1,))))
        value = float(xp.reshape(g, (-1,))[idx])
        raise MetricError(
            f"{name} has a non-finite entry g_ij = {value} at {where(idx)}; "
            "check the metric function there (division by zero, overflow, NaN input)"
        )
    if g.shape[-1] > 0:
        diff = xp.reshape(xp.abs(g - xp.matrix_transpose(g)), (-1,))
        idx = int(xp.argmax(diff))
        asym, scale = float(diff[idx]), float(xp.max(xp.abs(g)))
        tol = max(atol, 64 * float(xp.finfo(g.dtype).eps))  # round-off of a float32 product J^T g J passes
        if asym > tol * max(1.0, scale):
            raise MetricError(
                f"{name} is not symmetric: |g_ij - g_ji| = {asym:.3e} at {where(idx)}; "
                "symmetrise it, e.g. (g + g.T) / 2"
            )
    if require_pd:
        lam = xp.linalg.eigvalsh(g)[..., 0]
        if not bool(xp.all(lam > 0)):
            flat = xp.reshape(lam, (-1,))
            idx = int(xp.argmin(flat))
            raise MetricError(
                f"{name} is not positive definite at {at_point(idx)}: smallest "
                f"eigenvalue {float(flat[idx]):.6g} <= 0; a Riemannian metric needs all "
                "eigenvalues > 0 (move the point or change the metric's parameters)"
            )

def _first_kind(dg):
    """Γ_lij = ½ (∂_i g_jl + ∂_j g_il − ∂_l g_ij), returned as ``[..., l, i, j]``."""
    xp = array_namespace(dg)
    # dg[..., a, i, j] = ∂_a g_ij
    term_i = xp.einsum("...ijl->...lij", dg)  # ∂_i g_jl
    term_j = xp.einsum("...jil->...lij", dg)  # ∂_j g_il
    return 0.5 * (term_i + term_j - dg)


def christoffel(g_inv, dg):
    """Christoffel symbols Γ^k_ij = g^kl Γ_lij (MATH.md §1), shape ``[..., k, i, j]``."""
    xp = array_namespace(g_inv, dg)
    return xp.einsum("...kl,...lij->...kij", g_inv, _first_kind(dg))


def christoffel_derivative(g_inv, dg, d2g, gamma=None):
    """∂_m Γ^k_ij, shape ``[..., m, k, i, j]``.

    ∂_m Γ^k_ij = ∂_m g^kl Γ_lij + g^kl ∂_m Γ_lij with ∂_m g^kl = −g^ka ∂_m g_ab g^bl,
    i.e. ∂_m Γ^k_ij = g^kl (∂_m Γ_lij − ∂_m g_la Γ^a_ij).
    """
    xp = array_namespace(g_inv, dg, d2g)
    if gamma is None:
        gamma = christoffel(g_inv, dg)
    # ∂_m Γ_lij = ½ (∂_m∂_i g_jl + ∂_m∂_j g_il − ∂_m∂_l g_ij)
    d_first = 0.5 * (
        xp.einsum("...mijl->...mlij", d2g)
        + xp.einsum("...mjil->...mlij", d2g)
        - d2g
    )
    corr = xp.einsum("...mla,...aij->...mlij", dg, gamma)
    return xp.einsum("...kl,...mlij->...mkij", g_inv, d_first - corr)


def riemann(gamma, dgamma):
    """R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp, ``[..., l, i, j, k]``."""
    xp = array_namespace(gamma, dgamma)
    d_term = xp.einsum("...iljk->...lijk", dgamma)
    quad = xp.einsum("...pjk,...lip->...lijk", gamma, gamma)
    return d_term - xp.einsum("...lijk->...ljik", d_term) + quad - xp.einsum("...lijk->...ljik", quad)


@dataclass
class Curvature:
    """Curvature of a metric at a batch of points (arrays of numpy or torch).

    Attributes follow the layout of the module docstring.  Derived tensors
    (lowered Riemann, Einstein, Kretschmann) are computed on first access.
    """

    g: Any
    g_inv: Any
    christoffel: Any
    riemann: Any
    ricci: Any
    scalar: Any
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def riemann_lowered(self):
        """R_mijk = g_ml R^l_ijk, shape ``[..., m, i, j, k]``."""
        if "rl" not in self._cache:
            xp = array_namespace(self.g)
            self._cache["rl"] = xp.einsum("...ml,...lijk->...mijk", self.g, self.riemann)
        return self._cache["rl"]

    @property
    def einstein(self):
        """G_jk = Ric_jk − ½ R g_jk."""
        return self.ricci - 0.5 * self.scalar[..., None, None] * self.g

    @property
    def kretschmann(self):
        """K = R_abcd R^abcd."""
        xp = array_namespace(self.g)
        low = self.riemann_lowered
        gi = self.g_inv
        up = xp.einsum("...ae,...bf,...cg,...dh,...efgh->...abcd", gi, gi, gi, gi, low)
        return xp.sum(xp.reshape(low * up, (*low.shape[:-4], -1)), axis=-1)


def curvature_from_derivatives(g, dg, d2g, *, check: bool = True) -> Curvature:
    """Curvature from a metric and its first two coordinate derivatives.

    Parameters
    ----------
    g, dg, d2g:
        Arrays ``[..., n, n]``, ``[..., n, n, n]``, ``[..., n, n, n, n]`` in the
        layout of the module docstring (numpy or torch, any batch shape).
    check:
        Validate ``g`` first (square, symmetric, finite, positive definite);
        raises :class:`MetricError` naming the bad value.
    """
    xp = array_namespace(g, dg, d2g)
    n = g.shape[-1]
    if dg.shape[-3:] != (n, n, n) or d2g.shape[-4:] != (n, n, n, n):
        raise MetricError(
            f"derivative shapes {tuple(dg.shape)} / {tuple(d2g.shape)} do not match a metric "
            f"of dimension n={n}; expected (..., {n}, {n}, {n}) and (..., {n}, {n}, {n}, {n})"
        )
    if check:
        check_metric_array(g)
    g_inv = xp.linalg.inv(g)
    gamma = christoffel(g_inv, dg)
    dgamma = christoffel_derivative(g_inv, dg, d2g, gamma)
    rm = riemann(gamma, dgamma)
    ric = xp.einsum("...ppjk->...jk", rm)
    scal = xp.einsum("...jk,...jk->...", g_inv, ric)
    return Curvature(g=g, g_inv=g_inv, christoffel=gamma, riemann=rm, ricci=ric, scalar=scal)
