r"""The linearised Ricci(–DeTurck) flow around a background metric field (docs/math.md §3).

For a metric field ḡ on a grid domain, the flow ∂_t g = F(g) of
:func:`lnegeom.flow.flow_rhs` linearises to ∂_t h = J h, J = DF(ḡ).  When
ḡ is stationary (F(ḡ) = 0) a small perturbation decays like e^{λ t} along
each eigenvector of J, so the decay rates are −Re λ.

Unknowns
--------
J acts on the *packed* unknowns y of :meth:`~lnegeom.domains.Domain.pack`:
for every evolved grid point (all of them on the :class:`~lnegeom.domains.Torus`,
the interior of a box whose boundary is held), the components g_ij with i ≤ j
(row-major over the grid, then over the pairs (i, j) in ``numpy.triu_indices``
order, :class:`~lnegeom.layout.SymmetricPacking`).  A change of y_ij (i < j) changes
both g_ij and g_ji, and F is read back the same way, so J is the matrix of
F' restricted to symmetric fields; its eigenvalues do not depend on that
choice of coordinates.

Finite differences
------------------
Column q of J is the central difference

    J e_q ≈ (F(ḡ + ε e_q) − F(ḡ − ε e_q)) / (2ε),   ε = ``eps`` · max(1, max |ḡ|),

exact for the parts of F of degree ≤ 2 in ε, with truncation error
ε²/6 · |F′′′(ḡ)[e_q, e_q, e_q]| plus rounding of order u·|F-terms|/ε
(u = 2⁻⁵³).  Measured (``tests/lnegeom/test_linearize.py``): with the default
``eps = 1e-6`` the resolved eigenvalues at a constant metric agree with the
symbol kᵀA⁻¹k to ~1e-9 relative and the zero modes come out below ~1e-12
of the largest |λ|; with ``eps = 1e-4`` the cubic truncation error lifts the
zero modes at a non-constant background to ~1e-8 of the largest |λ|.  The
cost is 2 evaluations of F per unknown, e.g. 2 · 3 · 15² = 1350 for a 2-D
15² grid (about 2 s).

Constant metrics
----------------
At a constant metric A with a constant background (Γ̃ = 0) the
linearised Ricci–DeTurck flow is ∂_t h = A^ab ∂_a ∂_b h (A^ab the inverse
of A; see :mod:`lnegeom.flow`): on the torus [0, L)ⁿ the Fourier mode
k = 2π m / L of every one of the n(n+1)/2 components decays at the rate
kᵀ A⁻¹ k, each real Fourier pair (cos, sin) giving 2 · n(n+1)/2 equal
eigenvalues, and the n(n+1)/2 constant modes (m = 0) are the zero modes:
the nearby flat metrics A + H the flow can settle on.

Even grids: the Nyquist modes
-----------------------------
On a torus grid with an even N the first derivative of the Nyquist mode
m_a = N/2 is set to zero while its pure second derivative is kept
(:mod:`lnegeom.domains`).  The DeTurck term L_W g is built from first
derivatives and vanishes there, while −2 Ric keeps its gauge part: on the
Nyquist modes the discrete operator is the weakly parabolic Ricci one, with
extra zero modes (6 on a 2-D grid, besides the 3 constant ones).  Use an
odd N to linearise on the resolved modes only; :func:`decay_rates` counts
whatever zero modes it finds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import scipy.linalg

from .curvature import check_metric_array
from .domains import Domain
from .flow import FLOWS, background_christoffel, flow_rhs

__all__ = ["LinearSpectrum", "linearized_jacobian", "decay_rates", "pack_metric", "unpack_metric"]

_MAX_UNKNOWNS = 6000  # J is then 288 MB and its dense eigen-decomposition takes minutes


def pack_metric(g: Any, domain: Domain) -> np.ndarray:
    """The packed unknowns of a metric field, :meth:`domain.pack <lnegeom.domains.Domain.pack>`: the
    components i ≤ j at every evolved grid point (the interior of a box that holds its boundary),
    1-D, grid-major."""
    return domain.pack(g)


def unpack_metric(y: Any, domain: Domain, like: Any) -> np.ndarray:
    """Inverse of :func:`pack_metric`, :meth:`domain.unpack <lnegeom.domains.Domain.unpack>`: the
    symmetric field ``[*grid, n, n]`` with components from ``y`` and the values it does not pack (a
    held boundary) taken from ``like``."""
    return domain.unpack(y, like)


def linearized_jacobian(g_bg: Any, domain: Domain, *, flow: str = "ricci-deturck", background: Any = None,
                        eps: float = 1e-6) -> np.ndarray:
    r"""Dense Jacobian J = DF(ḡ) of the flow's right-hand side on the packed unknowns.

    Parameters
    ----------
    g_bg:
        The metric field ḡ ``[*grid, n, n]`` to linearise around (symmetric positive definite).
    domain:
        The grid domain (e.g. :class:`~lnegeom.domains.Torus`).
    flow:
        ``"ricci-deturck"`` or ``"ricci"``, as in :func:`lnegeom.flow.solve_flow`.
    background:
        The DeTurck background g̃, as in :func:`~lnegeom.flow.solve_flow`: ``None`` (δ), a constant
        n×n matrix, or a field; pass ``g_bg`` itself to linearise a metric around itself
        (then W(ḡ) = 0).
    eps:
        Relative central-difference step (module docstring: the resolved eigenvalues to ~1e-9
        relative for the default).

    Returns
    -------
    numpy.ndarray
        J of shape ``[M, M]``, M = number of packed unknowns (:func:`pack_metric`);
        J[:, q] = ∂F_packed / ∂y_q.
    """
    if flow not in FLOWS:
        raise ValueError(f"unknown flow {flow!r}; choose one of {FLOWS}")
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be finite and > 0, got {eps!r}")
    g_bg = np.asarray(g_bg, dtype=np.float64)
    n = domain.n
    if g_bg.shape != tuple(domain.shape) + (n, n):
        raise ValueError(f"g_bg must have shape {tuple(domain.shape) + (n, n)} for {domain!r}, got {g_bg.shape}")
    check_metric_array(g_bg, name="g_bg", describe=domain.describe_point)
    gamma_bg = background_christoffel(background, domain)
    y0 = pack_metric(g_bg, domain)
    M = y0.size
    if M > _MAX_UNKNOWNS:
        raise ValueError(f"{M} packed unknowns on {domain!r}: a dense Jacobian is limited to {_MAX_UNKNOWNS}; "
                         "use a coarser grid")
    step = eps * max(1.0, float(np.abs(g_bg).max()))

    def F(y: np.ndarray) -> np.ndarray:
        g = unpack_metric(y, domain, g_bg)
        return pack_metric(flow_rhs(g, domain, flow=flow, background_christoffel=gamma_bg), domain)

    J = np.empty((M, M))
    for q in range(M):
        yp = y0.copy()
        yp[q] += step
        ym = y0.copy()
        ym[q] -= step
        J[:, q] = (F(yp) - F(ym)) / (2.0 * step)
    return J


@dataclass
class LinearSpectrum:
    """Spectrum of the linearised flow (:func:`decay_rates`).

    Attributes
    ----------
    rates:
        Decay rates −Re λ of the non-zero modes, ascending (the slowest first; a negative value
        would be a growing mode).
    n_zero:
        How many eigenvalues were counted as zero modes (|λ| ≤ ``zero_threshold``).
    zero_eigenvalues:
        Those eigenvalues (complex).
    eigenvalues:
        All eigenvalues of J (complex), sorted by −Re λ.
    zero_threshold:
        The absolute threshold used: ``zero_tol`` · max |λ|.
    max_imag:
        max |Im λ| / max |λ| (0 for a self-adjoint-like operator such as at a constant metric).
    """

    rates: np.ndarray
    n_zero: int
    zero_eigenvalues: np.ndarray
    eigenvalues: np.ndarray
    zero_threshold: float
    max_imag: float

    @property
    def slowest(self) -> float:
        """The smallest non-zero decay rate (the spectral gap of the flow)."""
        return float(self.rates[0])


def decay_rates(g_bg: Any, domain: Domain, *, flow: str = "ricci-deturck", background: Any = None,
                n_zero: Optional[int] = None, zero_tol: float = 1e-8, eps: float = 1e-6,
                jacobian: Optional[np.ndarray] = None) -> LinearSpectrum:
    r"""Decay rates −Re λ of the linearised flow around ``g_bg``, zero modes excluded.

    The eigenvalues λ of J = DF(ḡ) (:func:`linearized_jacobian`, dense, all of them by
    :func:`scipy.linalg.eigvals`) with |λ| ≤ ``zero_tol`` · max |λ| are the zero modes: on the torus
    around a flat metric there are n(n+1)/2 of them, the directions of the nearby flat metrics
    (for the Ricci–DeTurck flow; plain Ricci flow adds the gauge directions L_X ḡ).  They are
    counted, not assumed; with ``n_zero`` given, a different count raises :class:`ValueError`.

    ``jacobian``: a J computed before (for the same ``g_bg``, ``domain``, ``flow``, ``background``).
    """
    if not (0 < zero_tol < 1):
        raise ValueError(f"zero_tol must lie in (0, 1), got {zero_tol!r}")
    J = linearized_jacobian(g_bg, domain, flow=flow, background=background, eps=eps) if jacobian is None \
        else np.asarray(jacobian, dtype=np.float64)
    if J.ndim != 2 or J.shape[0] != J.shape[1]:
        raise ValueError(f"jacobian must be a square matrix, got shape {J.shape}")
    lam = scipy.linalg.eigvals(J)
    lam = lam[np.argsort(-lam.real, kind="stable")]
    scale = float(np.abs(lam).max()) if lam.size else 0.0
    threshold = zero_tol * scale
    zero = np.abs(lam) <= threshold
    found = int(zero.sum())
    if n_zero is not None and found != n_zero:
        small = np.sort(np.abs(lam))[: max(n_zero, found) + 2]
        raise ValueError(f"expected {n_zero} zero modes but found {found} eigenvalues with |λ| <= {threshold:.3g} "
                         f"(zero_tol {zero_tol:g} × max |λ| {scale:.4g}); smallest |λ|: {np.round(small, 12).tolist()}")
    return LinearSpectrum(
        rates=-lam[~zero].real, n_zero=found, zero_eigenvalues=lam[zero], eigenvalues=lam,
        zero_threshold=threshold, max_imag=float(np.abs(lam.imag).max() / scale) if scale > 0 else 0.0,
    )
