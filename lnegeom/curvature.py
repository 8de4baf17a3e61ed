r"""The one numeric curvature algebra: ``(g, ∂g, ∂²g) -> Γ, Rm, Ric, R``.

Every numeric path of the project (automatic differentiation at points,
finite differences, and later spectral derivatives on grids) differs only in
*how it obtains* the metric and its first two derivatives.  This module turns
those arrays into curvature, written once against the array API so that numpy
arrays and torch tensors (CPU or GPU, batched over any leading axes) share
the same code.

Conventions (docs/math.md §1, used everywhere in the project)
-------------------------------------------------------------
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

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

import numpy as np

from ._array import Array, array_namespace, is_torch_array
from .layout import components_first, components_last

if TYPE_CHECKING:
    import torch

__all__ = [
    "Curvature",
    "christoffel",
    "christoffel_derivative",
    "riemann",
    "curvature_from_derivatives",
    "RicciParts",
    "ricci_from_derivatives",
    "einsum_last",
    "check_metric_array",
    "MetricError",
]


class MetricError(ValueError):
    """A metric array that is malformed, singular or not positive definite."""


def check_metric_array(
    g: Any, *, require_pd: bool = True, atol: float = 1e-10, points: Any = None, name: str = "metric",
    describe: Optional[Callable[[tuple], str]] = None,
) -> None:
    """Validate a batch of metric matrices ``g[..., n, n]``: the one metric validator of the project
    (:class:`~lnegeom.metric.MetricField`, :func:`~lnegeom.flow.solve_flow`'s metric fields on the
    torus and the box, :func:`~lnegeom.linearize.linearized_jacobian`), with one tolerance policy:
    |g_ij − g_ji| ≤ max(``atol``, 64 ε) · max(1, max |g|) (ε of g's dtype) and every eigenvalue > 0.

    Raises :class:`MetricError` naming the offending value if ``g`` is not
    square, not symmetric, not finite, or (``require_pd``) not positive
    definite at some batch index (the index — or, when ``points[..., n]``
    is given, the point itself, or ``describe(index)``, e.g. a grid point —
    and the smallest eigenvalue are named, with the fix).
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
        if describe is not None:
            return describe(pos)
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
                "symmetrise it, e.g. (g + g.swapaxes(-1, -2)) / 2"
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

def _first_kind(dg: Array):
    """Γ_lij = ½ (∂_i g_jl + ∂_j g_il − ∂_l g_ij), returned as ``[..., l, i, j]``."""
    xp = array_namespace(dg)
    # dg[..., a, i, j] = ∂_a g_ij
    term_i = xp.einsum("...ijl->...lij", dg)  # ∂_i g_jl
    term_j = xp.einsum("...jil->...lij", dg)  # ∂_j g_il
    return 0.5 * (term_i + term_j - dg)


def christoffel(g_inv: Array, dg: Array):
    """Christoffel symbols Γ^k_ij = g^kl Γ_lij (docs/math.md §1), shape ``[..., k, i, j]``."""
    xp = array_namespace(g_inv, dg)
    return xp.einsum("...kl,...lij->...kij", g_inv, _first_kind(dg))


def christoffel_derivative(g_inv: Array, dg: Array, d2g: Array, gamma: Optional[Array] = None):
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


def riemann(gamma: Array, dgamma: Array):
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


def curvature_from_derivatives(g: Array, dg: Array, d2g: Array, *, check: bool = True) -> Curvature:
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


# =========================================================================
# Ricci without the Riemann tensor
# =========================================================================
@dataclass
class RicciParts:
    """Γ, Ric and R of a metric at a batch of points, without the Riemann tensor.

    Arrays in the layout that was passed to :func:`ricci_from_derivatives`
    (``layout="batch-first"``: ``g_inv[..., i, j]``, ``christoffel[..., k, i, j]``,
    ``ricci[..., i, j]``, ``scalar[...]``; ``"batch-last"``: the component
    indices first, ``g_inv[i, j, ...]``, ``christoffel[k, i, j, ...]``, ...).
    ``rm_norm_sq`` is |Rm|²_g = R_abcd R^abcd, available in closed form for
    n ≤ 3 (``None`` for n ≥ 4; use :func:`curvature_from_derivatives`).
    """

    g: Any
    g_inv: Any
    christoffel: Any
    ricci: Any
    scalar: Any
    rm_norm_sq: Any


def einsum_last(spec: str, *operands: Array):
    """``einsum`` for arrays whose batch axes come last (``"kl...,lij...->kij..."``).

    numpy: :func:`numpy.einsum` (its inner loop then runs over the contiguous batch).
    torch: a sum over the values of the contracted indices of products of slices,
    each a batch-sized elementwise product — for many points and a small n several
    times faster than ``torch.einsum``, which would route the contraction through a
    batched product of tiny matrices.  The batch parts of the operands broadcast
    against each other (aligned from the right).
    """
    if not is_torch_array(operands[0]):
        return np.einsum(spec, *operands)
    tensors = cast("list[torch.Tensor]", list(operands))  # torch: all operands are tensors
    lhs, out = spec.replace("...", "").split("->")
    ins = lhs.split(",")
    order = list(out) + [c for c in dict.fromkeys("".join(ins)) if c not in out]
    nb = max(x.ndim - len(s) for s, x in zip(ins, tensors))
    dims: dict = {}
    prepared = []
    for s, x in zip(ins, tensors):
        while len(set(s)) < len(s):  # a repeated index: take the diagonal
            c = next(c for c in s if s.count(c) > 1)
            i, j = s.index(c), s.index(c, s.index(c) + 1)
            x = x.diagonal(dim1=i, dim2=j).movedim(-1, i)
            s = s[:j] + s[j + 1:]
        nbatch = x.ndim - len(s)
        x = x.permute(*sorted(range(len(s)), key=lambda q: order.index(s[q])), *range(len(s), x.ndim))
        dims.update({c: x.shape[k] for k, c in enumerate(sorted(s, key=order.index))})
        for pos, c in enumerate(order):  # singleton axes for the indices this operand lacks
            if c not in s:
                x = x.unsqueeze(pos)
        for _ in range(nb - nbatch):
            x = x.unsqueeze(len(order))
        prepared.append(x)
    summed = order[len(out):]
    total = None
    for values in itertools.product(*(range(dims[c]) for c in summed)):
        index = (slice(None),) * len(out) + tuple(values)
        term = prepared[0][index]
        for x in prepared[1:]:
            term = term * x[index]
        total = term if total is None else total + term
    return total


def inverse_last(g: Array):
    """g⁻¹ and det g of ``g[i, j, ...]`` (components first): cofactors for n ≤ 3, else ``linalg.inv``."""
    xp = array_namespace(g)
    n = g.shape[0]
    if n == 1:
        det = g[0, 0]
        return xp.stack([xp.stack([1.0 / det])]), det
    if n == 2:
        a, b, c, d = g[0, 0], g[0, 1], g[1, 0], g[1, 1]
        det = a * d - b * c
        return xp.stack([xp.stack([d, -b]), xp.stack([-c, a])]) / det, det
    if n == 3:
        # adj[i][j] = cofactor C_ji
        cof = [[g[(j + 1) % 3, (k + 1) % 3] * g[(j + 2) % 3, (k + 2) % 3]
                - g[(j + 1) % 3, (k + 2) % 3] * g[(j + 2) % 3, (k + 1) % 3] for k in range(3)] for j in range(3)]
        det = g[0, 0] * cof[0][0] + g[0, 1] * cof[0][1] + g[0, 2] * cof[0][2]
        return xp.stack([xp.stack([cof[j][i] for j in range(3)]) for i in range(3)]) / det, det
    gf = components_last(g, 2)
    return components_first(xp.linalg.inv(gf), 2), xp.linalg.det(gf)


def ricci_from_derivatives(
    g: Array, dg: Array, d2g: Array, *, layout: str = "batch-first", g_inv: Optional[Array] = None
) -> RicciParts:
    r"""Γ, Ric, R (and |Rm|² for n ≤ 3) from g, ∂g, ∂²g, without forming the Riemann tensor.

    Same conventions as :func:`curvature_from_derivatives` (which it matches
    to rounding), at O(n⁴) work per point instead of O(n⁵) and without the
    n⁴ Riemann entries:

        Ric_ij = ∂_k Γ^k_ij − ∂_j Γ^k_ik + Γ^k_kl Γ^l_ij − Γ^k_jl Γ^l_ik,

    with the derivatives of Γ written algebraically in g, ∂g, ∂²g
    (M_a = g⁻¹ ∂_a g, Γ_lij = ½ (∂_i g_jl + ∂_j g_il − ∂_l g_ij)):

    * ∂_k Γ^k_ij = ½ g^kl (∂_k∂_i g_jl + ∂_k∂_j g_il − ∂_k∂_l g_ij) − c_b Γ^b_ij,
      c_b = g^ka ∂_k g_ab  (from ∂_k g^kl = −g^ka ∂_k g_ab g^bl);
    * ∂_j Γ^k_ik = ∂_i ∂_j log √det g = ½ tr(g⁻¹ ∂_i∂_j g) − ½ tr(M_j M_i);
    * Γ^k_kl = ½ tr M_l.

    R = g^ij Ric_ij.  For n = 2, |Rm|² = R²; for n = 3 (no Weyl part),
    |Rm|² = 4 |Ric|²_g − R² (both from Rm = Ric ⊙ g − (R/4) g ⊙ g in 3-D and
    R_1212 = (R/2) det g in 2-D); ``None`` for n ≥ 4.

    Parameters
    ----------
    g, dg, d2g:
        ``layout="batch-first"`` (the module convention): ``g[..., i, j]``,
        ``dg[..., a, i, j]``, ``d2g[..., a, b, i, j]``.  ``layout="batch-last"``:
        the component indices first, ``g[i, j, ...]``, ``dg[a, i, j, ...]``,
        ``d2g[a, b, i, j, ...]`` — for many points of a small n this is the
        fast layout (every contraction runs over contiguous batch rows).
        g symmetric; dg symmetric in (i, j); d2g symmetric in (a, b) and (i, j).
    layout:
        ``"batch-first"`` or ``"batch-last"``; the result comes in the same layout.
    g_inv:
        g⁻¹ if already known (same layout).
    """
    if layout == "batch-first":
        first, last = components_first, components_last
        gi = None if g_inv is None else first(g_inv, 2)
        p = ricci_from_derivatives(first(g, 2), first(dg, 3), first(d2g, 4), layout="batch-last", g_inv=gi)
        return RicciParts(g=g, g_inv=last(p.g_inv, 2), christoffel=last(p.christoffel, 3),
                          ricci=last(p.ricci, 2), scalar=p.scalar, rm_norm_sq=p.rm_norm_sq)
    if layout != "batch-last":
        raise ValueError(f"layout must be 'batch-first' or 'batch-last', got {layout!r}")
    xp = array_namespace(g, dg, d2g)
    n = g.shape[0]
    if tuple(dg.shape[:3]) != (n, n, n) or tuple(d2g.shape[:4]) != (n, n, n, n):
        raise MetricError(
            f"derivative shapes {tuple(dg.shape)} / {tuple(d2g.shape)} do not match a metric of dimension "
            f"n={n} in the batch-last layout; expected ({n}, {n}, {n}, ...) and ({n}, {n}, {n}, {n}, ...)"
        )
    if g_inv is None:
        g_inv, _ = inverse_last(g)
    es = einsum_last
    first_kind = 0.5 * (es("ijl...->lij...", dg) + es("jil...->lij...", dg) - dg)  # Γ_lij
    gam = es("kl...,lij...->kij...", g_inv, first_kind)  # Γ^k_ij
    M = es("kl...,alb...->akb...", g_inv, dg)  # (g⁻¹ ∂_a g)^k_b
    P = es("kl...,kijl...->ij...", g_inv, d2g)  # g^kl ∂_k∂_i g_jl
    lap = es("kl...,klij...->ij...", g_inv, d2g)  # g^kl ∂_k∂_l g_ij
    tr_d2 = es("kl...,ijkl...->ij...", g_inv, d2g)  # tr(g⁻¹ ∂_i∂_j g)
    c = es("kka...->a...", M)  # c_b = g^ka ∂_k g_ab = (M_k)^k_b summed over k
    v = 0.5 * es("akk...->a...", M)  # Γ^k_ka = ½ tr M_a
    div_gam = 0.5 * (P + es("ij...->ji...", P) - lap) - es("b...,bij...->ij...", c, gam)
    d_logdet = 0.5 * tr_d2 - 0.5 * es("jkb...,ibk...->ij...", M, M)
    ric = (div_gam - d_logdet + es("l...,lij...->ij...", v, gam) - es("kjl...,lik...->ij...", gam, gam))
    ric = 0.5 * (ric + es("ij...->ji...", ric))
    scal = es("ij...,ij...->...", g_inv, ric)
    if n == 1:
        rm2 = xp.zeros_like(scal)
    elif n == 2:
        rm2 = scal * scal
    elif n == 3:
        ric_up = es("ik...,kj...->ij...", es("ik...,kj...->ij...", g_inv, ric), g_inv)
        rm2 = 4.0 * es("ij...,ij...->...", ric_up, ric) - scal * scal
    else:
        rm2 = None
    return RicciParts(g=g, g_inv=g_inv, christoffel=gam, ricci=ric, scalar=scal, rm_norm_sq=rm2)
