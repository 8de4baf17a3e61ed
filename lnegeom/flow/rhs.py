r"""The right-hand side of Ricci and Ricci–DeTurck flow on a grid (docs/math.md §3).

* Ricci–DeTurck flow (P-9), ``flow="ricci-deturck"``:
  ∂_t g_ij = −2 Ric_ij(g) + (L_W g)_ij,  W^k = g^ij (Γ^k_ij(g) − Γ^k_ij(g̃)),
  with a fixed background metric g̃ (default δ);
* plain Ricci flow (P-6), ``flow="ricci"``: ∂_t g = −2 Ric(g).

The curvature comes from :func:`lnegeom.curvature.ricci_from_derivatives`
(Γ, Ric, R straight from g, ∂g, ∂²g without forming the Riemann tensor; the
same conventions as, and equal to rounding to,
:func:`~lnegeom.curvature.curvature_from_derivatives`), fed with the domain's
derivatives (spectral on :class:`~lnegeom.domains.Torus`), the grid points
being the batch.  Internally fields carry their component indices first and
the grid axes last (``g[i, j, *batch, *grid]``, :mod:`lnegeom.layout`), so
that every pointwise contraction runs over contiguous rows; on a spectral
domain only the n(n+1)/2 components i ≤ j are transformed, ∂g and ∂²g come
from one forward and one batched inverse FFT, and ∂W from one more pair.

The Lie derivative
------------------
For a vector field W and a 2-tensor g, (L_W g)(X, Y) = W(g(X, Y)) −
g([W, X], Y) − g(X, [W, Y]).  With X = ∂_i, Y = ∂_j and
[W, ∂_i] = −(∂_i W^k) ∂_k this is, in coordinates,

    (L_W g)_ij = W^k ∂_k g_ij + g_kj ∂_i W^k + g_ik ∂_j W^k,

which is how the right-hand side computes it (∂W by the domain's
derivative).  Equivalently L_W g_ij = ∇_i W_j + ∇_j W_i.

Why DeTurck
-----------
The principal part of −2 Ric(g) is g^ab ∂_a ∂_b g_ij − ∂_i Γ_j − ∂_j Γ_i
(Γ_j = g_jk g^ab Γ^k_ab); the second group is a pure gauge term, which makes
Ricci flow only weakly parabolic (its symbol has a kernel along
diffeomorphism directions).  L_W g with the W above adds exactly +∂_i Γ_j +
∂_j Γ_i at the principal level, leaving g^ab ∂_a ∂_b g_ij: strongly parabolic.
At a constant metric g∞ (with a constant background, Γ̃ = 0) the
linearisation is ∂_t h = g∞^ab ∂_a ∂_b h, so on the flat torus a Fourier
mode e^{ik·x} of a small perturbation decays like e^{−kᵀ g∞⁻¹ k t}.  Plain
``"ricci"`` flow is accepted on the torus (it is well posed there through
DeTurck's trick), but its pure-gauge modes do not decay and its time
stepping has no parabolic smoothing in those directions.

The Jacobian pattern
--------------------
On a domain that holds its boundary (the :class:`~lnegeom.box.Box`), the
implicit scipy methods get the dependency pattern of the packed right-hand
side, :func:`flow_jac_sparsity`, computed from the domain's stencils.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, cast

import numpy as np
from array_api_compat import device as _device

from .._array import array_namespace
from ..box import Box
from ..curvature import RicciParts, curvature_from_derivatives, einsum_last, ricci_from_derivatives
from ..domains import Domain, Torus
from ..layout import components_first, components_last, packing

__all__ = ["FLOWS", "NonFiniteRHS", "background_christoffel", "rhs_from_derivatives", "RhsFunction", "FlowRHS",
           "flow_rhs", "flow_jac_sparsity"]

FLOWS = ("ricci-deturck", "ricci")


class NonFiniteRHS(RuntimeError):
    """The right-hand side is not finite at a grid point (``where`` says which; ``index`` and ``value``)."""

    def __init__(self, index: tuple, value: float, where: str) -> None:
        super().__init__(where)
        self.index, self.value, self.where = index, value, where


def background_christoffel(background: Any, domain: Domain) -> Optional[np.ndarray]:
    """Γ^k_ij(g̃) on the grid (``[*grid, k, i, j]``), or ``None`` for δ or a constant n×n background (Γ̃ = 0)."""
    if background is None:
        return None
    bg = np.asarray(background, dtype=np.float64)
    n = domain.n
    if bg.shape == (n, n):
        return None
    if bg.shape != tuple(domain.shape) + (n, n):
        raise ValueError(f"background must be None, an {n}×{n} matrix or a field of shape "
                         f"{tuple(domain.shape) + (n, n)}, got {bg.shape}")
    dg = domain.gradient(bg)
    d2g = domain.hessian(bg)
    return curvature_from_derivatives(bg, dg, d2g, check=False).christoffel


def rhs_from_derivatives(domain: Domain, g: Any, dg: Any, d2g: Any, flow: str, background_christoffel: Any):
    r"""∂_t g from g, ∂g, ∂²g, all with the component indices first (``g[i, j, *batch, *grid]``).

    −2 Ric by :func:`~lnegeom.curvature.ricci_from_derivatives` (no Riemann tensor), plus for
    Ricci–DeTurck L_W g = W^k ∂_k g_ij + g_kj ∂_i W^k + g_ik ∂_j W^k with
    W^k = g^ij (Γ^k_ij − Γ̃^k_ij) (``background_christoffel`` = Γ̃ as ``[k, i, j, *grid]``, or
    ``None``) and ∂W by the domain's derivative.  Returns ``(rhs, parts, W)``.

    Every method of :func:`~lnegeom.flow.solve_flow` evaluates the flow through this function, or
    through the one passed as its ``rhs=`` (same signature and result, e.g. to inject a fault).
    """
    xp = array_namespace(g)
    parts = ricci_from_derivatives(g, dg, d2g, layout="batch-last")
    rhs = -2.0 * parts.ricci
    if flow == "ricci-deturck":
        gam = parts.christoffel
        if background_christoffel is not None:
            gam = gam - background_christoffel
        W = einsum_last("ij...,kij...->k...", parts.g_inv, gam)
        dW = domain.gradient(W, grid_last=True)  # [i, k, ...] = ∂_i W^k
        X = einsum_last("kj...,ik...->ij...", g, dW)
        rhs = rhs + einsum_last("k...,kij...->ij...", W, dg) + X + einsum_last("ij...->ji...", X)
    elif flow == "ricci":
        W = xp.zeros(tuple(g.shape[1:]), dtype=g.dtype, device=_device(g))
    else:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
    return rhs, parts, W


#: the signature of :func:`rhs_from_derivatives` (and of ``solve_flow(rhs=...)``)
RhsFunction = Callable[[Domain, Any, Any, Any, str, Any], tuple]


class FlowRHS:
    """∂_t g of one flow on one domain: the domain, the flow, the background's Γ̃ and the function
    that evaluates it (:func:`rhs_from_derivatives` unless another is given).

    ``background_christoffel`` is Γ̃ as ``[*grid, k, i, j]`` (``None``: a constant background); it
    is moved to the components-first layout once per device and dtype.
    """

    def __init__(self, domain: Domain, flow: str = "ricci-deturck", background_christoffel: Any = None,
                 core: Optional[RhsFunction] = None) -> None:
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
        self.domain, self.flow = domain, flow
        self.background_christoffel = background_christoffel
        self.core: RhsFunction = rhs_from_derivatives if core is None else core
        self._background: dict = {}

    def background_first(self, like: Any) -> Any:
        """Γ̃ as ``[k, i, j, *grid]`` in the namespace, device and dtype of ``like`` (``None`` if none)."""
        if self.background_christoffel is None:
            return None
        key = (str(_device(like)), str(like.dtype))
        if key not in self._background:
            xp = array_namespace(like)
            bg = xp.asarray(self.background_christoffel, dtype=like.dtype, device=_device(like))
            self._background[key] = components_first(bg, 3)
        return self._background[key]

    def from_derivatives(self, g: Any, dg: Any, d2g: Any):
        """``(rhs, parts, W)`` from g, ∂g, ∂²g, components first."""
        return self.core(self.domain, g, dg, d2g, self.flow, self.background_first(g))

    def components_first(self, g: Any):
        """``(rhs, parts, W)`` for ``g[i, j, *batch, *grid]`` (symmetrised first): spectral (one forward
        FFT of the i ≤ j components) on a spectral domain, the domain's derivatives otherwise."""
        g = 0.5 * (g + einsum_last("ij...->ji...", g))
        domain = self.domain
        if domain.spectral:
            torus = cast(Torus, domain)
            pk = packing(domain.n)
            v = pk.pack(g)
            _, dv, d2v = torus.spectral_derivatives(torus.fft(v, grid_last=True))
            g, dg, d2g = pk.unpack(v), pk.unpack(dv, axis=1), pk.unpack(d2v, axis=2)  # contiguous copies
        else:
            dg, d2g = domain.gradient(g, grid_last=True), domain.hessian(g, grid_last=True)
        return self.from_derivatives(g, dg, d2g)

    def __call__(self, g: Any, return_parts: bool = False):
        """∂_t g for ``g[*grid, n, n]`` (grid axes first); see :func:`flow_rhs`."""
        rhs, parts, W = self.components_first(components_first(g, 2))
        rhs = components_last(rhs, 2)
        if return_parts:
            parts = RicciParts(g=g, g_inv=components_last(parts.g_inv, 2),
                               christoffel=components_last(parts.christoffel, 3),
                               ricci=components_last(parts.ricci, 2), scalar=parts.scalar,
                               rm_norm_sq=parts.rm_norm_sq)
            return rhs, parts, components_last(W, 1)
        return rhs


def flow_rhs(g: Any, domain: Domain, *, flow: str = "ricci-deturck", background_christoffel: Any = None,
             return_parts: bool = False):
    r"""∂_t g for Ricci(–DeTurck) flow on a grid, ``g[*grid, n, n]`` → ``[*grid, n, n]``.

    numpy or torch (a torch ``g`` needs a spectral domain, the :class:`~lnegeom.domains.Torus`).
    ``background_christoffel`` is Γ^k_ij(g̃) as ``[*grid, k, i, j]`` (``None``:
    a constant background, Γ̃ = 0).  With ``return_parts`` also returns a
    :class:`~lnegeom.curvature.RicciParts` (g⁻¹, Γ, Ric, R, |Rm|² for n ≤ 3; grid
    axes first) and the DeTurck field W^k (``[*grid, n]``, zeros for plain Ricci flow).
    """
    return FlowRHS(domain, flow, background_christoffel)(g, return_parts=return_parts)


def flow_jac_sparsity(domain: Box):
    r"""Dependency pattern of the packed flow right-hand side on a :class:`~lnegeom.box.Box` (boundary
    held): a ``scipy.sparse.csr_matrix`` of 0/1, shape (``domain.n_unknowns``,) × 2, unknowns as in
    :meth:`~lnegeom.domains.Domain.pack`.

    ∂_t g at a point uses g, ∂_a g (D1), ∂_a² g (D2), ∂_a ∂_b g (D1_a D1_b) and ∂_a W with W built
    from g and ∂g (D1_a D1_c).  So it depends on every component at the points reached by
    D1, D2 or D1² along one axis, or by D1 ⊗ D1 in one coordinate plane (the mixed-derivative
    corners); entry (p, q) is 1 when unknown q is within that reach of unknown p.  D1, D2 are the
    domain's ``stencil_matrices(axis)``.
    """
    import scipy.sparse as sp

    inner = slice(1, -1)
    full_1d, first_1d = [], []
    for axis in range(domain.n):
        D1, D2 = domain.stencil_matrices(axis)
        eye = np.eye(D1.shape[0])
        full_1d.append(sp.csr_matrix(((eye + np.abs(D1) + np.abs(D2) + np.abs(D1) @ np.abs(D1)) > 0)[inner, inner]))
        first_1d.append(sp.csr_matrix(((eye + np.abs(D1)) > 0)[inner, inner]))
    eyes = [sp.identity(M - 2, format="csr") for M in domain.shape]

    def kron_all(mats):
        out = mats[0]
        for m in mats[1:]:
            out = sp.kron(out, m, format="csr")
        return out

    pattern = None
    for a in range(domain.n):
        for b in range(a, domain.n):
            mats = list(eyes)
            if a == b:
                mats[a] = full_1d[a]
            else:
                mats[a], mats[b] = first_1d[a], first_1d[b]
            term = kron_all(mats)
            pattern = term if pattern is None else pattern + term
    comps = packing(domain.n).size
    out = sp.kron(pattern, np.ones((comps, comps)), format="csr")
    out.data[:] = 1.0
    return out
