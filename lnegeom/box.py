r"""The box [lo, lo + L]ⁿ with 4th-order finite differences and a held (Dirichlet) boundary.

:class:`Box` is the second grid :class:`~lnegeom.domains.Domain` beside the
periodic :class:`~lnegeom.domains.Torus`: a metric field lives on the
tensor grid x_j = lo + j·h, j = 0..N (h = L/N, boundary points included),
grid axes first (``g[*shape, n, n]``), and the flow solver
(:func:`lnegeom.flow.solve_flow`) evolves the interior points only, the
boundary values staying those of the initial metric (docs/math.md §3: "a box
[0, L]ⁿ with the boundary held at the background").

Derivatives
-----------
Along each axis, ∂ and ∂² are the matrices D1, D2 of finite-difference
stencils, exact for every polynomial of degree ≤ 4 (weights solved exactly in
rational arithmetic, :func:`fd_weights`):

* interior (2 ≤ j ≤ N − 2): the 5-point central stencils
  f′ ≈ (f₋₂ − 8f₋₁ + 8f₊₁ − f₊₂)/(12h),
  f″ ≈ (−f₋₂ + 16f₋₁ − 30f₀ + 16f₊₁ − f₊₂)/(12h²), error O(h⁴);
* j ∈ {0, 1, N − 1, N}: one-sided / off-centred 6-point stencils, also O(h⁴):
  for f″ the ones exact for quintics (e.g. (45f₀ − 154f₁ + 214f₂ − 156f₃ +
  61f₄ − 10f₅)/(12h²) at j = 0); for f′ the ones exact for quartics whose
  leading error term is that of the central stencil, −h⁴f⁽⁵⁾/30.

Why the matched first derivative: the flow differentiates twice along the same
axis in D1(D1 g) (the DeTurck term ∂_a W, W built from ∂g).  The error of D1 is
h⁴ times a smooth function where one stencil is used; a boundary row with a
different error constant (say the 5-point one-sided stencil) makes that error
jump by O(h⁴) between rows 1 and 2, and the outer D1 turns the jump into an
O(h³) error next to the boundary.  With the leading error matched the jump is
O(h⁵) and D1·D1 is O(h⁴) up to the boundary.

Mixed second derivatives are ∂_a ∂_b = D1_a D1_b (a ≠ b), O(h⁴) everywhere.
Every grid point gets a value (the curvature is needed on the boundary too:
the DeTurck term differentiates W, which is built from ∂g).  The derivatives
are written against the array API, so torch tensors work as well as numpy
arrays.

Quadrature
----------
:meth:`Box.integral` is the tensor product of the 4th-order Gregory
(end-corrected trapezoid) rule h·(17/48, 59/48, 43/48, 49/48, 1, …, 1,
49/48, 43/48, 59/48, 17/48), exact for cubics, error O(h⁴).

The held boundary, as the solver sees it
----------------------------------------
The unknowns are the components g_ij, i ≤ j, at the interior points
(:meth:`~lnegeom.domains.Domain.pack`, grid-major, then the pairs in
``numpy.triu_indices`` order); :meth:`~lnegeom.domains.Domain.unpack`
rebuilds the full symmetric field with the boundary values of a given field.
:func:`lnegeom.flow.flow_jac_sparsity` is the dependency pattern of the packed
right-hand side of the flow for these stencils, for the sparse Jacobians of
:class:`scipy.integrate.BDF` and :class:`~scipy.integrate.Radau`
(:func:`column_groups`, :func:`sparse_fd_jacobian`).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ._array import array_namespace
from .domains import Domain, GridTooCoarseError

__all__ = ["Box", "fd_weights", "column_groups", "sparse_fd_jacobian", "MIN_INTERVALS"]

#: the 6-point boundary stencils and the quadrature's 4 end weights per side need ≥ 8 points per axis
MIN_INTERVALS = 7
#: Gregory end weights of the 4th-order quadrature (the rest are 1)
_GREGORY = (Fraction(17, 48), Fraction(59, 48), Fraction(43, 48), Fraction(49, 48))
#: 6th undivided central difference and 2nd undivided difference (resolution estimate)
_DELTA6 = np.array([1.0, -6.0, 15.0, -20.0, 15.0, -6.0, 1.0])
_DELTA2 = np.array([1.0, -2.0, 1.0])


def fd_weights(offsets: Sequence[int], order: int, *, match: Optional[tuple] = None) -> list[Fraction]:
    r"""Exact weights w_k with Σ_k w_k f(x₀ + s_k h) ≈ h^order f^{(order)}(x₀).

    Solves the Vandermonde system Σ_k w_k s_k^p / p! = [p = order], p = 0..m − 1 (m = len(s)),
    in rational arithmetic (Gauss–Jordan on :class:`fractions.Fraction`): exact for polynomials of
    degree < m, error O(h^{m − order}).  With ``match = (offsets_ref, weights_ref)`` the last moment
    (p = m − 1) is instead set equal to that of the reference stencil: the stencil is exact for
    degree < m − 1 and has the *same leading error term* as the reference (used for the boundary
    rows of :class:`Box`'s first derivative, see there).
    """
    s = [Fraction(int(v)) for v in offsets]
    m = len(s)
    if len(set(s)) != m or not 0 <= order < m - (match is not None):
        raise ValueError(f"need distinct offsets and 0 <= order < len(offsets), got {list(offsets)}, {order}")
    rhs = [Fraction(int(p == order)) for p in range(m)]
    if match is not None:
        ref_s, ref_w = match
        moment = sum((Fraction(w) * Fraction(int(v)) ** (m - 1) for v, w in zip(ref_s, ref_w)), Fraction(0))
        rhs[m - 1] = moment / math.factorial(m - 1)
    A = [[s[k] ** p / math.factorial(p) for k in range(m)] + [rhs[p]] for p in range(m)]
    for col in range(m):
        piv = next(r for r in range(col, m) if A[r][col] != 0)
        A[col], A[piv] = A[piv], A[col]
        pv = A[col][col]
        A[col] = [v / pv for v in A[col]]
        for r in range(m):
            if r != col and A[r][col] != 0:
                f = A[r][col]
                A[r] = [a - f * b for a, b in zip(A[r], A[col])]
    return [A[k][m] for k in range(m)]


def _stencil_matrix(M: int, order: int, width: int, central: int, matched: bool = False) -> np.ndarray:
    """(M×M) matrix of h^order ∂^order: ``central``-point centred stencils where they fit, else
    ``width``-point stencils shifted to stay on the grid (``matched``: with the leading error
    term of the central stencil, :func:`fd_weights`)."""
    D = np.zeros((M, M))
    half = central // 2
    ref = tuple(range(-half, half + 1))
    match = (ref, fd_weights(ref, order)) if matched else None
    cache: dict = {}
    for j in range(M):
        if half <= j <= M - 1 - half:
            start, size = j - half, central
            offs, mt = ref, None
        else:
            size = width
            start = 0 if j < half else M - size
            offs, mt = tuple(range(start - j, start - j + size)), match
        if offs not in cache:
            cache[offs] = [float(w) for w in fd_weights(offs, order, match=mt)]
        D[j, start:start + size] = cache[offs]
    return D


class Box(Domain):
    r"""The box ∏_a [lo_a, lo_a + L_a] with N_a intervals per axis and 4th-order finite differences.

    Parameters
    ----------
    n:
        Dimension (2 or 3 in the checks; any n ≥ 1 works).
    N:
        **Intervals** per axis (an int or n ints), at least :data:`MIN_INTERVALS` = 7: the
        grid has N + 1 points per axis, boundary included, spacing h = L/N (so doubling N
        halves h and keeps every old point — unlike :class:`~lnegeom.domains.Torus`, whose N
        counts points).
    L:
        Side length(s) L_a > 0.
    origin:
        The lower corner lo_a (a float, or n floats); the box is [lo_a, lo_a + L_a].

    Attributes
    ----------
    shape:
        ``(N_1 + 1, ..., N_n + 1)``.
    spacing:
        h_a = L_a / N_a.
    volume:
        ∏ L_a.
    holds_boundary:
        ``True``: the flow keeps the boundary values and evolves the interior
        (:meth:`~lnegeom.domains.Domain.pack` / :meth:`~lnegeom.domains.Domain.unpack`).
    spectral:
        ``False`` (finite differences).
    default_method:
        ``"BDF"``: the stiff scipy method with the sparse Jacobian.
    order:
        4, the order of every stencil and of the quadrature.

    Examples
    --------
    >>> import numpy as np
    >>> B = Box(2, 16, L=np.pi)
    >>> x = B.points()
    >>> f = np.sin(x[..., 0]) * np.cos(x[..., 1])
    >>> err = np.abs(B.hessian(f)[..., 0, 1] + np.cos(x[..., 0]) * np.sin(x[..., 1])).max()
    >>> bool(err < 1e-3)
    True
    """

    holds_boundary = True
    spectral = False
    default_method = "BDF"
    order = 4

    def __init__(self, n: int, N: int | Sequence[int], L: float | Sequence[float] = 1.0,
                 origin: float | Sequence[float] = 0.0) -> None:
        n = int(n)
        if n < 1:
            raise ValueError(f"dimension n must be >= 1, got {n}")
        Ns = self._per_axis(N, n, int)
        Ls = self._per_axis(L, n, float)
        los = self._per_axis(origin, n, float)
        if len(Ns) != n or len(Ls) != n or len(los) != n:
            raise ValueError(f"N, L and origin need 1 or n = {n} entries, "
                             f"got N = {N!r}, L = {L!r}, origin = {origin!r}")
        if any(v < MIN_INTERVALS for v in Ns):
            raise ValueError(
                f"need at least {MIN_INTERVALS} intervals per axis (N counts intervals, N + 1 points), got N = {Ns}: "
                "the 6-point one-sided stencils and the 4th-order quadrature's end weights must fit")
        if any(not (v > 0 and math.isfinite(v)) for v in Ls):
            raise ValueError(f"the side length L must be finite and > 0, got L = {Ls}")
        if any(not math.isfinite(v) for v in los):
            raise ValueError(f"the origin must be finite, got {los}")
        self.n, self.N, self.L, self.origin = n, Ns, Ls, los
        self.shape = tuple(v + 1 for v in Ns)
        self.spacing = tuple(l / m for l, m in zip(Ls, Ns))
        self.volume = float(np.prod(Ls))
        self._D1 = [_stencil_matrix(M, 1, 6, 5, matched=True) / h for M, h in zip(self.shape, self.spacing)]
        self._D2 = [_stencil_matrix(M, 2, 6, 5) / h**2 for M, h in zip(self.shape, self.spacing)]
        self._w = []
        for M, h in zip(self.shape, self.spacing):
            w = np.ones(M)
            w[:4] = [float(v) for v in _GREGORY]
            w[-4:] = [float(v) for v in reversed(_GREGORY)]
            self._w.append(h * w)

    def __repr__(self) -> str:
        def one(v: tuple) -> str:  # one value for every axis, else the tuple
            return f"{v[0]:.6g}" if len(set(v)) == 1 else str(v)

        N = self.N[0] if len(set(self.N)) == 1 else self.N
        return f"Box(n={self.n}, N={N}, L={one(self.L)}, origin={one(self.origin)})"

    # ---- grid ---------------------------------------------------------------------
    def axes(self) -> list[np.ndarray]:
        """The coordinates lo_a + j·h_a, j = 0..N_a, of each axis."""
        return [lo + np.arange(M) * h for lo, M, h in zip(self.origin, self.shape, self.spacing)]

    def points(self) -> np.ndarray:
        """Grid coordinates, boundary included, shape ``[*shape, n]``."""
        return np.stack(np.meshgrid(*self.axes(), indexing="ij"), axis=-1)

    def interior_mask(self) -> np.ndarray:
        """Boolean ``[*shape]``: True at the points the flow evolves."""
        mask = np.zeros(self.shape, dtype=bool)
        mask[self._evolved()] = True
        return mask

    def describe_point(self, index: Sequence[int]) -> str:
        """'grid point (i, j) (interior|boundary), x = [..]' for a grid index."""
        idx = tuple(int(i) for i in index)
        x = [lo + i * h for lo, i, h in zip(self.origin, idx, self.spacing)]
        where = "boundary" if any(i in (0, M - 1) for i, M in zip(idx, self.shape)) else "interior"
        return f"grid point {idx} ({where}), x = [" + ", ".join(f"{v:.6g}" for v in x) + "]"

    # ---- derivatives ------------------------------------------------------------------
    def stencil_matrices(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """(D1, D2) of ``axis``: the (N + 1)×(N + 1) matrices of ∂ and ∂² (copies)."""
        return self._D1[axis].copy(), self._D2[axis].copy()

    def _along(self, D: np.ndarray, f: Any, axis: int) -> Any:
        """Apply the 1-D operator D along grid axis ``axis`` (numpy or any array-API array)."""
        if isinstance(f, np.ndarray):
            return np.moveaxis(np.tensordot(D, f, axes=([1], [axis])), 0, axis)
        from array_api_compat import device

        xp = array_namespace(f)
        Dx = xp.asarray(D, dtype=f.dtype, device=device(f))
        return xp.moveaxis(xp.tensordot(Dx, f, axes=([1], [axis])), 0, axis)

    def _grid_last(self, op: Callable[[Any], Any], f: Any) -> Any:
        """The grid-first operator ``op`` on ``f[*rest, *shape]``, its new axes moved before ``rest``
        (views around one call of ``op``)."""
        xp = array_namespace(f)
        n, r = self.n, f.ndim - self.n
        out = op(xp.moveaxis(f, tuple(range(r, f.ndim)), tuple(range(n))))
        return xp.moveaxis(out, tuple(range(n)), tuple(range(out.ndim - n, out.ndim)))

    def gradient(self, f: Any, *, grid_last: bool = False) -> Any:
        """∂_a f by 4th-order differences, shape ``[*shape, n, *rest]`` (numpy or array-API input); with
        ``grid_last``, ``f[*rest, *shape]`` gives ``[n, *rest, *shape]``."""
        f = self._check_field(f, grid_last=grid_last)
        if grid_last:
            return self._grid_last(self.gradient, f)
        xp = array_namespace(f)
        return xp.stack([self._along(self._D1[a], f, a) for a in range(self.n)], axis=self.n)

    def hessian(self, f: Any, *, grid_last: bool = False) -> Any:
        """∂_a ∂_b f, shape ``[*shape, n, n, *rest]``: D2_a on the diagonal, D1_a D1_b off it (symmetric);
        with ``grid_last``, ``f[*rest, *shape]`` gives ``[n, n, *rest, *shape]``."""
        f = self._check_field(f, grid_last=grid_last)
        if grid_last:
            return self._grid_last(self.hessian, f)
        xp = array_namespace(f)
        first = [self._along(self._D1[a], f, a) for a in range(self.n)]
        rows: list[list[Any]] = [[None] * self.n for _ in range(self.n)]
        for a in range(self.n):
            rows[a][a] = self._along(self._D2[a], f, a)
            for b in range(a + 1, self.n):
                rows[a][b] = rows[b][a] = self._along(self._D1[a], first[b], a)
        return xp.stack([xp.stack(r, axis=self.n) for r in rows], axis=self.n)

    # ---- integrals ----------------------------------------------------------------------
    def integral(self, f: Any, metric: Any = None, *, grid_last: bool = False) -> Any:
        """∫ f dx over the box by the 4th-order Gregory rule (exact for cubics; module docstring); with
        ``metric`` = g, ∫ f dV_g, dV_g = √det g dx.  Returns an array of shape ``rest`` (a float for
        scalar fields).  With ``grid_last``: ``f[*rest, *shape]`` (numpy; no ``metric``)."""
        if grid_last:
            if metric is not None:
                raise ValueError("integral(grid_last=True) takes no metric")
            f = np.asarray(self._check_field(np.asarray(f), grid_last=True))
            return self.integral(np.moveaxis(f, tuple(range(f.ndim - self.n, f.ndim)), tuple(range(self.n))))
        f = np.asarray(self._check_field(np.asarray(f)), dtype=np.float64)
        if metric is not None:
            w = self.volume_element(self._check_field(np.asarray(metric), "metric"))
            f = f * np.reshape(w, w.shape + (1,) * (f.ndim - self.n))
        for a in range(self.n):
            f = np.tensordot(self._w[a], f, axes=([0], [0]))
        return float(f) if np.ndim(f) == 0 else f

    # ---- resolution --------------------------------------------------------------------
    def too_coarse(self, f: Any, *, tol: float = 1e-2, name: str = "field") -> Optional[str]:
        r"""Why the stencils cannot resolve ``f``, or ``None`` if they can.

        For a Fourier mode of θ = k h radians per grid step, the 4th-order second difference errs by
        the relative amount (2 sin(θ/2))⁴/90 ≈ θ⁴/90, which is the ratio of the 6th and the 2nd
        undivided differences over 90.  Along each axis this estimates the relative truncation
        error e_a = ‖Δ⁶_a f‖ / (90 ‖Δ²_a f‖) (ℓ² over the points where Δ⁶ fits, all components);
        the grid resolves f when every e_a ≤ ``tol`` (default 1 %: wavelengths ≥ 6.5 h).  Content
        below 1e-9 · max|f| in Δ⁶ (rounding level) is ignored, so linear fields pass.
        """
        f = np.asarray(self._check_field(np.asarray(f), name), dtype=np.float64)
        scale = float(np.abs(f).max()) if f.size else 0.0
        worst = None
        for a in range(self.n):
            moved = np.moveaxis(f, a, 0)
            M = moved.shape[0]
            d6 = sum(c * moved[k:M - 6 + k] for k, c in enumerate(_DELTA6))
            d2 = sum(c * moved[k + 2:M - 4 + k] for k, c in enumerate(_DELTA2))  # the same points
            n6, n2 = float(np.sqrt(np.sum(d6 * d6))), float(np.sqrt(np.sum(d2 * d2)))
            if n6 <= 1e-9 * scale * math.sqrt(d6.size):
                continue
            err = n6 / (90.0 * n2) if n2 > 0 else math.inf
            if err > tol and (worst is None or err > worst[1]):
                worst = (a, err)
        if worst is None:
            return None
        a, err = worst
        h = self.spacing[a]
        root = (90.0 * err) ** 0.25 / 2.0
        theta = 2.0 * math.asin(root) if root < 1.0 else math.pi
        lam_min = 2.0 * math.pi / (2.0 * math.asin((90.0 * tol) ** 0.25 / 2.0))
        return (
            f"grid too coarse for the {name}: along axis {a} the 4th-order second difference has an estimated "
            f"relative truncation error {err:.2e} (‖Δ⁶f‖/(90‖Δ²f‖), tolerance {tol:.1e}), i.e. content down to "
            f"wavelength about {2.0 * math.pi * h / theta:.4g} ({2.0 * math.pi / theta:.3g} grid steps), while the "
            f"stencils of {self!r} (spacing h = {h:.4g}) need wavelengths >= {lam_min:.3g} h = {lam_min * h:.4g}; "
            "refine the grid (larger N) or smooth the field")

    def check_resolution(self, f: Any, *, tol: float = 1e-2, name: str = "field") -> None:
        """Raise :class:`~lnegeom.domains.GridTooCoarseError` with the message of :meth:`too_coarse` if any."""
        msg = self.too_coarse(f, tol=tol, name=name)
        if msg is not None:
            raise GridTooCoarseError(msg)


def column_groups(pattern) -> np.ndarray:
    """Greedy colouring of the columns of a sparsity ``pattern``: columns of one group share no row.

    One evaluation of F per group then gives all those columns of a finite-difference Jacobian
    (Curtis–Powell–Reid).  Returns the group of each column (0-based)."""
    import scipy.sparse as sp

    P = sp.csc_matrix(pattern, dtype=np.float64)
    P.data[:] = 1.0
    conflicts = (P.T @ P).tocsr()  # columns sharing a row
    M = P.shape[1]
    groups = np.full(M, -1, dtype=np.int64)
    for q in range(M):
        used = groups[conflicts.indices[conflicts.indptr[q]:conflicts.indptr[q + 1]]]
        taken = np.zeros(int(used.max()) + 2 if used.size else 1, dtype=bool)
        taken[used[used >= 0]] = True
        groups[q] = int(np.argmin(taken))
    return groups


def sparse_fd_jacobian(fun, y: np.ndarray, pattern, groups: np.ndarray, f0: Optional[np.ndarray] = None):
    r"""Forward-difference Jacobian ∂F/∂y on a sparsity ``pattern`` (``scipy.sparse.csc_matrix``).

    Column q uses the step h_q = 2⁻²⁶ · max(1, |y_q|) (the unknowns are metric components of
    natural scale 1, so a component that happens to be 0 still gets a step of 1.5e-8: error
    ~ h_q |F″| + 2⁻⁵³ |F| / h_q); the columns of one group of :func:`column_groups` are perturbed
    together, so the cost is one evaluation of ``fun`` per group (plus ``f0 = fun(y)`` if not given).
    """
    import scipy.sparse as sp

    y = np.asarray(y, dtype=np.float64)
    P = sp.csc_matrix(pattern)
    f0 = fun(y) if f0 is None else f0
    h = 2.0**-26 * np.maximum(1.0, np.abs(y))
    h = (y + h) - y  # representable steps
    rows, cols, vals = [], [], []
    for grp in range(int(groups.max()) + 1):
        members = np.flatnonzero(groups == grp)
        yp = y.copy()
        yp[members] += h[members]
        df = fun(yp) - f0
        for q in members:
            r = P.indices[P.indptr[q]:P.indptr[q + 1]]
            rows.append(r)
            cols.append(np.full(r.size, q))
            vals.append(df[r] / h[q])
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=P.shape)
