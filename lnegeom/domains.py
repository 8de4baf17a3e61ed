r"""Grids on which metric fields live: the periodic torus (spectral derivatives by FFT).

A *domain* owns a grid of points and knows how to differentiate, integrate
and measure fields sampled on it.  The flow solver (:mod:`lnegeom.flow`) and
:mod:`lnegeom.linearize` only talk to a domain through the abstract base class
:class:`Domain`: its methods and its capability attributes (``spectral``,
``holds_boundary``, ``default_method``), never its type; the
:class:`~lnegeom.box.Box` with finite differences sits beside :class:`Torus`.

Field layout
------------
The grid axes come **first**: a scalar field has shape ``[*shape]``, a metric
field ``[*shape, n, n]``, any field ``[*shape, *rest]``.  Derivatives insert
their index right after the grid axes, so that, with the grid as the batch,
they are in the layout of :mod:`lnegeom.curvature`:

* ``gradient(f)[*shape, a, *rest]`` = ∂_a f,
* ``hessian(f)[*shape, a, b, *rest]`` = ∂_a ∂_b f,

i.e. for a metric field ``dg = torus.gradient(g)`` is ``dg[..., a, i, j] = ∂_a g_ij``
and ``torus.hessian(g)`` is ``d2g[..., a, b, i, j]``.

Every domain also takes fields with the grid axes **last** (``grid_last=True``:
``f[*rest, *shape]``, derivative indices then first, ``[a, *rest, *shape]``;
the components-first layout of :mod:`lnegeom.layout`) — the layout of the flow
solver, in which every FFT runs over contiguous memory.  :class:`Torus` takes
numpy arrays or torch tensors alike (``torch.fft`` on the tensor's device);
:meth:`Torus.spectral_derivatives` returns f, ∂f and ∂²f from one spectrum in one
batched inverse FFT.

Spectral derivatives
--------------------
On Tⁿ = [0, L)ⁿ with N points per axis (x_j = L j / N) a field is the
trigonometric interpolant of its samples, f(x) = Σ_m f̂_m e^{i k_m·x} with
k_m = 2π m / L, |m_a| ≤ N/2.  Then ∂_a f has coefficients i k_a f̂ and
∂_a ∂_b f has −k_a k_b f̂ (real FFTs along the grid axes).  For even N the
Nyquist mode m_a = N/2 is not a real-valued sine/cosine pair, so its first
derivative (and mixed second derivatives through it) is set to zero; its
pure second derivative −k_a² f̂ is kept.  For a field whose content lies
strictly below Nyquist the derivatives are exact to rounding; for a smooth
(analytic) periodic field they converge geometrically in N.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional, Sequence, TypeVar

import numpy as np
from array_api_compat import device as _device

from ._array import array_namespace, is_torch_array
from .layout import packing

__all__ = ["Domain", "Torus", "GridTooCoarseError"]

_T = TypeVar("_T")


class GridTooCoarseError(ValueError):
    """A field has content the grid cannot resolve (too close to the Nyquist wavelength)."""


class Domain(ABC):
    """A grid domain: the periodic :class:`Torus` (spectral) or the :class:`~lnegeom.box.Box` (finite
    differences, boundary held).

    Subclasses set ``n`` (dimension), ``shape`` (grid points per axis), ``spacing`` (grid step per
    axis), ``volume``, the capability attributes below, and implement the abstract methods; the L²
    norms, the volume element and the packed unknowns of the flow are written in terms of these.

    Capabilities (class attributes, read by :func:`lnegeom.flow.solve_flow` and
    :mod:`lnegeom.linearize` instead of testing the type):

    ``spectral``
        Derivatives by FFT: the domain has ``fft`` / ``ifft`` / ``spectral_derivatives`` /
        ``symbol`` / ``filter`` (the ETD steppers and ``dealias`` need them).
    ``holds_boundary``
        The flow keeps the boundary values of the initial metric and evolves the interior points
        only (:meth:`pack` / :meth:`unpack` hold the evolved ones).
    ``default_method``
        The ``method`` that ``solve_flow(method="auto")`` uses on the domain.
    """

    n: int
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    volume: float
    spectral: bool = False
    holds_boundary: bool = False
    default_method: str = "BDF"

    # ---- to be provided by a subclass ---------------------------------
    @abstractmethod
    def points(self) -> np.ndarray:
        """Grid coordinates, shape ``[*shape, n]``."""

    @abstractmethod
    def gradient(self, f: Any, *, grid_last: bool = False) -> Any:
        """∂_a f, shape ``[*shape, n, *rest]``; with ``grid_last``, ``f[*rest, *shape]`` gives
        ``[n, *rest, *shape]``."""

    @abstractmethod
    def hessian(self, f: Any, *, grid_last: bool = False) -> Any:
        """∂_a ∂_b f, shape ``[*shape, n, n, *rest]``; with ``grid_last``, ``[n, n, *rest, *shape]``."""

    @abstractmethod
    def integral(self, f: Any, metric: Any = None, *, grid_last: bool = False) -> Any:
        """∫ f dx (or ∫ f dV_g with ``metric``) over the grid axes (the last n with ``grid_last``)."""

    @abstractmethod
    def check_resolution(self, f: Any, *, name: str = "field") -> None:
        """Raise :class:`GridTooCoarseError` if ``f`` is not resolved by the grid."""

    @abstractmethod
    def describe_point(self, index: Sequence[int]) -> str:
        """'grid point (i, j), x = [..]' for a grid index (in error messages)."""

    # ---- shared ----------------------------------------------------------
    @staticmethod
    def _per_axis(value: Any, n: int, conv: Callable[[Any], _T]) -> tuple[_T, ...]:
        """A constructor argument per axis: a scalar ``value`` n times, else each entry, through ``conv``."""
        return (conv(value),) * n if np.isscalar(value) else tuple(conv(v) for v in value)

    def volume_element(self, metric: Any) -> Any:
        """√det g at every grid point, shape ``[*shape]``."""
        return np.sqrt(np.linalg.det(np.asarray(metric)))

    def l2_norm(self, h: Any, metric: Any = None) -> float:
        r"""L² norm of a tensor field ``h[*shape, *rest]``.

        Without ``metric``: (∫ Σ h² dx)^{1/2}, the pointwise Frobenius norm of
        the components (for ``rest = (n, n)`` this is
        :func:`lnegeom.fields.l2_norm`).  With a metric field ``g[*shape, n, n]``
        and a symmetric 2-tensor ``h[*shape, n, n]``: (∫ g^ik g^jl h_ij h_kl dV_g)^{1/2}.
        """
        h = np.asarray(h, dtype=np.float64)
        if metric is None:
            sq = np.sum(np.reshape(h * h, (*self.shape, -1)), axis=-1)
            return float(math.sqrt(self.integral(sq)))
        gi = np.linalg.inv(np.asarray(metric))
        sq = np.einsum("...ik,...jl,...ij,...kl->...", gi, gi, h, h, optimize=True)
        return float(math.sqrt(self.integral(sq, metric=metric)))

    def mean(self, f: Any) -> Any:
        """Average of ``f`` over the grid axes (∫ f dx / volume)."""
        return self.integral(f) / self.volume

    def _check_field(self, f: Any, name: str = "field", *, grid_last: bool = False) -> Any:
        """``f`` as an array (numpy or torch kept) whose first (``grid_last``: last) n axes are the grid."""
        if not hasattr(f, "shape") or not hasattr(f, "ndim"):
            f = np.asarray(f)
        if f.ndim < self.n:
            grid = ()
        else:
            grid = tuple(f.shape[f.ndim - self.n:]) if grid_last else tuple(f.shape[: self.n])
        if grid != tuple(self.shape):
            where = "last" if grid_last else "first"
            dims = ", ".join(map(str, self.shape))
            lay = f"(..., {dims})" if grid_last else f"({dims}, ...)"
            raise ValueError(
                f"{name} has shape {tuple(f.shape)}, but the grid axes must come {where}: "
                f"expected {lay} for {self!r}"
            )
        return f


    # ---- the unknowns of the flow -------------------------------------------------------
    def _evolved(self) -> tuple[slice, ...]:
        """Index of the points the flow evolves: all of them, or the interior when ``holds_boundary``."""
        return (slice(1, -1) if self.holds_boundary else slice(None),) * self.n

    @property
    def n_unknowns(self) -> int:
        """Length of :meth:`pack`'s vector: evolved points × n(n+1)/2."""
        inner = self.shape if not self.holds_boundary else tuple(M - 2 for M in self.shape)
        return int(np.prod(inner)) * packing(self.n).size

    def pack(self, g: Any) -> np.ndarray:
        """The unknowns of a metric field ``g[*shape, n, n]``: g_ij (i ≤ j) at the evolved points (the
        interior when ``holds_boundary``), 1-D float64, grid-major (row-major over those points), then
        the pairs in ``triu_indices`` order (:class:`~lnegeom.layout.SymmetricPacking`)."""
        g = np.asarray(g, dtype=np.float64)
        full = tuple(self.shape) + (self.n, self.n)
        if g.shape != full:
            raise ValueError(f"pack needs a metric field of shape {full} for {self!r}, got {g.shape}")
        return np.reshape(packing(self.n).pack(g[self._evolved()], axis=-2), (-1,))

    def unpack(self, y: Any, like: Any) -> np.ndarray:
        """Inverse of :meth:`pack`: the symmetric field ``[*shape, n, n]`` with the evolved points from
        ``y`` and the others (the held boundary) copied from ``like`` (a field ``[*shape, n, n]`` or one
        n×n matrix)."""
        y = np.asarray(y, dtype=np.float64)
        pk = packing(self.n)
        if y.shape != (self.n_unknowns,):
            raise ValueError(f"packed vector has shape {y.shape}; {self!r} has {self.n_unknowns} unknowns "
                             f"(evolved points × n(n+1)/2 = {pk.size} components per point): it needs "
                             f"({self.n_unknowns},)")
        full = tuple(self.shape) + (self.n, self.n)
        like = np.asarray(like, dtype=np.float64)
        if like.shape not in (full, (self.n, self.n)):
            raise ValueError(f"like must be a field of shape {full} or an {self.n}×{self.n} matrix, got {like.shape}")
        g = np.array(np.broadcast_to(like, full))
        inner = g[self._evolved()]
        g[self._evolved()] = pk.unpack(np.reshape(y, inner.shape[:-2] + (pk.size,)), axis=-1)
        return g


class Torus(Domain):
    r"""The flat torus Tⁿ = [0, L)ⁿ sampled at N points per axis, with spectral derivatives.

    Parameters
    ----------
    n:
        Dimension (2 or 3; any n ≥ 1 works).
    N:
        Points per axis (an int, or n ints).  Even N is the usual choice.
    L:
        Period (side length) of the torus; a float, or n floats.

    Attributes
    ----------
    shape:
        ``(N_1, ..., N_n)``.
    spacing:
        Grid steps L_a / N_a.
    volume:
        Π L_a.

    Examples
    --------
    >>> import numpy as np
    >>> T = Torus(2, 16, 2 * np.pi)
    >>> x = T.points()
    >>> f = np.sin(x[..., 0]) * np.cos(2 * x[..., 1])
    >>> df = T.gradient(f)
    >>> bool(np.allclose(df[..., 0], np.cos(x[..., 0]) * np.cos(2 * x[..., 1])))
    True
    """

    spectral = True
    holds_boundary = False
    default_method = "etd"

    def __init__(self, n: int, N: int | Sequence[int], L: float | Sequence[float] = 2 * math.pi) -> None:
        n = int(n)
        if n < 1:
            raise ValueError(f"dimension n must be >= 1, got {n}")
        Ns = self._per_axis(N, n, int)
        Ls = self._per_axis(L, n, float)
        if len(Ns) != n or len(Ls) != n:
            raise ValueError(f"N and L need 1 or n = {n} entries, got N = {N!r}, L = {L!r}")
        if any(v < 2 for v in Ns):
            raise ValueError(f"need at least 2 points per axis, got N = {Ns}")
        if any(not (v > 0 and math.isfinite(v)) for v in Ls):
            raise ValueError(f"the period L must be finite and > 0, got L = {Ls}")
        self.n, self.shape, self.L = n, Ns, Ls
        self.spacing = tuple(l / m for l, m in zip(Ls, Ns))
        self.volume = float(np.prod(Ls))
        self.cell = float(np.prod(self.spacing))
        self._axes = tuple(range(n))
        # integer wave numbers m_a and k_a = 2π m_a / L_a on the rfft grid (last axis halved)
        ks, ms, nyq = [], [], []
        for a in range(n):
            m = np.fft.rfftfreq(Ns[a], 1.0 / Ns[a]) if a == n - 1 else np.fft.fftfreq(Ns[a], 1.0 / Ns[a])
            shp = [1] * n
            shp[a] = m.size
            ms.append(m.reshape(shp))
            ks.append((2 * math.pi / Ls[a] * m).reshape(shp))
            nyq.append((np.abs(m) == Ns[a] / 2).reshape(shp))
        self._m, self._k = ms, ks
        # i k_a with the Nyquist mode of an even axis removed
        self._ik = [1j * np.where(nq, 0.0, k) for k, nq in zip(ks, nyq)]
        self._rshape = tuple(max(k.shape[a] for k in ks) for a in range(n))
        self._wave_cache: dict = {}  # k and i k as torch tensors, per device and dtype

    def __repr__(self) -> str:
        N = self.shape[0] if len(set(self.shape)) == 1 else self.shape
        if len(set(self.L)) == 1:
            return f"Torus(n={self.n}, N={N}, L={self.L[0]:.6g})"
        return f"Torus(n={self.n}, N={N}, L={self.L})"

    # ---- grid ---------------------------------------------------------
    def points(self) -> np.ndarray:
        """Grid coordinates x = L·j/N (j = 0..N−1 per axis), shape ``[*shape, n]``."""
        axes = [np.arange(N) * (L / N) for N, L in zip(self.shape, self.L)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def wavenumbers(self) -> list[np.ndarray]:
        """k_a = 2π m_a / L_a on the real-FFT grid, each broadcastable to ``rfft_shape``."""
        return [k.copy() for k in self._k]

    @property
    def rfft_shape(self) -> tuple[int, ...]:
        """Shape of the real FFT of a scalar field (last grid axis N/2 + 1)."""
        return self._rshape

    def symbol(self, A: Any) -> Any:
        """−kᵀ A k on the real-FFT grid: the Fourier symbol of A^ab ∂_a ∂_b (A constant, symmetric).

        ``A[..., n, n]`` (numpy or torch; leading axes: several operators at once) gives
        ``[..., *rfft_shape]`` in A's namespace and device.
        """
        if not is_torch_array(A):
            A = np.asarray(A, dtype=np.float64)
        xp = array_namespace(A)
        ks = self._wave(A)["k"]
        lead = tuple(A.shape[:-2])
        out = xp.zeros(lead + self._rshape, dtype=A.dtype, device=_device(A))
        for a in range(self.n):
            for b in range(self.n):
                coef = xp.reshape(A[..., a, b], lead + (1,) * self.n)
                out = out - coef * ks[a] * ks[b]
        return out

    # ---- FFT helpers --------------------------------------------------------
    def _grid_axes(self, f: Any, grid_last: bool) -> tuple[int, ...]:
        return tuple(range(f.ndim - self.n, f.ndim)) if grid_last else self._axes

    def _wave(self, like: Any) -> dict:
        """k_a (real) and i k_a (Nyquist removed, complex) in the namespace, device and precision of ``like``."""
        if not is_torch_array(like):
            return {"k": self._k, "ik": self._ik}
        key = (str(like.device), str(like.dtype))
        cache = self._wave_cache
        if key not in cache:
            import torch

            real = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float64
            cplx = torch.complex64 if real == torch.float32 else torch.complex128
            cache[key] = {
                "k": [torch.as_tensor(k, dtype=real, device=like.device) for k in self._k],
                "ik": [torch.as_tensor(ik, dtype=cplx, device=like.device) for ik in self._ik],
            }
        return cache[key]

    def fft(self, f: Any, *, grid_last: bool = False) -> Any:
        """Real FFT along the grid axes (the first n axes, or the last n with ``grid_last``)."""
        if not hasattr(f, "shape"):
            f = np.asarray(f)
        xp = array_namespace(f)
        return xp.fft.rfftn(f, axes=self._grid_axes(f, grid_last))

    def ifft(self, F: Any, *, grid_last: bool = False) -> Any:
        """Inverse of :meth:`fft` (real field on the grid)."""
        if not hasattr(F, "shape"):
            F = np.asarray(F)
        xp = array_namespace(F)
        return xp.fft.irfftn(F, s=self.shape, axes=self._grid_axes(F, grid_last))

    def _bc(self, c: Any, rest: int, grid_last: bool = False) -> Any:
        """A grid-shaped multiplier broadcastable against ``[*grid, *rest]`` (or ``[*rest, *grid]``)."""
        if grid_last:
            return c
        xp = array_namespace(c)
        return xp.reshape(c, tuple(c.shape) + (1,) * rest)

    def apply_symbol(self, f: Any, symbol: Any, *, grid_last: bool = False) -> Any:
        """Multiply ``f`` by a Fourier ``symbol`` (shape :attr:`rfft_shape`) along the grid axes."""
        f = self._check_field(f, grid_last=grid_last)
        rest = f.ndim - self.n
        if not hasattr(symbol, "shape"):
            symbol = np.asarray(symbol)
        return self.ifft(self._bc(symbol, rest, grid_last) * self.fft(f, grid_last=grid_last), grid_last=grid_last)

    # ---- derivatives ----------------------------------------------------------
    def gradient(self, f: Any, *, grid_last: bool = False) -> Any:
        """Spectral ∂_a f, shape ``[*shape, n, *rest]`` (index a right after the grid axes);
        with ``grid_last``, ``f[*rest, *shape]`` gives ``[n, *rest, *shape]``."""
        f = self._check_field(f, grid_last=grid_last)
        xp = array_namespace(f)
        rest = f.ndim - self.n
        F = self.fft(f, grid_last=grid_last)
        iks = self._wave(f)["ik"]
        if grid_last:  # one batched inverse transform
            return self.ifft(xp.stack([ik * F for ik in iks], axis=0), grid_last=True)
        return xp.stack([self.ifft(self._bc(ik, rest) * F) for ik in iks], axis=self.n)

    def hessian(self, f: Any, *, grid_last: bool = False) -> Any:
        """Spectral ∂_a ∂_b f, shape ``[*shape, n, n, *rest]`` (symmetric in a, b);
        with ``grid_last``, ``f[*rest, *shape]`` gives ``[n, n, *rest, *shape]``."""
        f = self._check_field(f, grid_last=grid_last)
        if grid_last:
            return self.spectral_derivatives(self.fft(f, grid_last=True), grid_last=True)[2]
        xp = array_namespace(f)
        rest = f.ndim - self.n
        F = self.fft(f)
        w = self._wave(f)
        rows: list[list[Any]] = [[None] * self.n for _ in range(self.n)]
        for a in range(self.n):
            for b in range(a, self.n):
                mult = -(w["k"][a] ** 2) if a == b else w["ik"][a] * w["ik"][b]
                rows[a][b] = rows[b][a] = self.ifft(self._bc(mult, rest) * F)
        return xp.stack([xp.stack(r, axis=self.n) for r in rows], axis=self.n)

    def spectral_derivatives(self, F: Any, *, grid_last: bool = True) -> tuple[Any, Any, Any]:
        """f, ∂_a f and ∂_a ∂_b f from the spectrum ``F = fft(f)``, in one batched inverse FFT.

        With ``grid_last`` (default; ``f[*rest, *shape]``) the derivative indices come
        first: ``[*rest, *shape]``, ``[n, *rest, *shape]``, ``[n, n, *rest, *shape]``;
        otherwise they follow the grid axes as in :meth:`gradient` / :meth:`hessian`.
        Same multipliers as those (first derivatives without the Nyquist mode).
        """
        xp = array_namespace(F)
        n = self.n
        w = self._wave(F)
        rest = F.ndim - n
        pairs = [(a, b) for a in range(n) for b in range(a, n)]
        mults = [w["ik"][a] for a in range(n)]
        mults += [-(w["k"][a] ** 2) if a == b else w["ik"][a] * w["ik"][b] for a, b in pairs]
        ax = 0 if grid_last else n
        stacked = xp.stack([F] + [self._bc(m, rest, grid_last) * F for m in mults], axis=ax)
        phys = self.ifft(stacked, grid_last=grid_last)

        def at(k):
            return (slice(None),) * ax + (k,)

        where = {p: 1 + n + q for q, p in enumerate(pairs)}
        full = [where[(min(a, b), max(a, b))] for a in range(n) for b in range(n)]
        d2f = xp.take(phys, xp.asarray(full, device=_device(phys)), axis=ax)
        d2f = xp.reshape(d2f, tuple(d2f.shape[:ax]) + (n, n) + tuple(d2f.shape[ax + 1:]))
        return phys[at(0)], phys[at(slice(1, n + 1))], d2f

    def filter(self, f: Any, fraction: float = 2.0 / 3.0) -> np.ndarray:
        """Remove the Fourier content with |m_a| > fraction·N_a/2 on some axis (the 2/3 dealiasing rule)."""
        f = self._check_field(f)
        return self.apply_symbol(f, self.filter_symbol(fraction))

    def filter_symbol(self, fraction: float = 2.0 / 3.0) -> np.ndarray:
        """The Fourier mask of :meth:`filter` (1 where |m_a| ≤ fraction·N_a/2 on every axis, else 0)."""
        keep = np.ones(self._rshape, dtype=bool)
        for a in range(self.n):
            keep = keep & (np.abs(self._m[a]) <= fraction * self.shape[a] / 2)
        return keep.astype(np.float64)

    def nyquist_free_symbol(self) -> Optional[np.ndarray]:
        """The Fourier mask removing the Nyquist modes m_a = N_a/2 of the even axes (``None`` if every
        axis is odd: nothing to remove).

        Notes
        -----
        On an even axis the Nyquist mode has no first derivative (see the module docstring), so the
        DeTurck term cannot damp it and the discrete flow is only weakly parabolic there; the flow
        solver keeps it at zero."""
        if all(N % 2 for N in self.shape):
            return None
        keep = np.ones(self._rshape, dtype=bool)
        for a in range(self.n):
            keep = keep & (np.abs(self._m[a]) < self.shape[a] / 2)
        return keep.astype(np.float64)

    # ---- integrals ---------------------------------------------------------------
    def integral(self, f: Any, metric: Any = None, *, grid_last: bool = False) -> Any:
        """∫_{Tⁿ} f dx over the grid axes (rectangle rule: exact for trigonometric
        polynomials below the grid's Nyquist limit); with ``metric`` = g, ∫ f dV_g with
        dV_g = √det g dx.  Returns an array of shape ``rest`` (a float for scalar fields).

        With ``grid_last`` (``f[*rest, *shape]``, numpy or torch; no ``metric``) the result is an
        array in ``f``'s namespace and device, 0-d for a scalar field."""
        if grid_last:
            if metric is not None:
                raise ValueError("integral(grid_last=True) takes no metric")
            f = self._check_field(f, grid_last=True)
            return self.cell * array_namespace(f).sum(f, axis=self._grid_axes(f, True))
        f = self._check_field(f)
        if metric is not None:
            w = self.volume_element(self._check_field(metric, "metric"))
            f = f * np.reshape(w, w.shape + (1,) * (f.ndim - self.n))
        out = self.cell * np.sum(f, axis=self._axes)
        return float(out) if np.ndim(out) == 0 else out

    # ---- resolution -----------------------------------------------------------
    def too_coarse(self, f: Any, *, fraction: float = 2.0 / 3.0, tol: float = 1e-6,
                   name: str = "field") -> Optional[str]:
        """Why the grid is too coarse for ``f``, or ``None`` if it resolves it.

        The grid resolves ``f`` when the Fourier content of f − mean(f) with
        |m_a| > fraction·N_a/2 on some axis (wavelength shorter than
        2 L_a / (fraction·N_a)) carries at most ``tol`` of its L² norm.
        """
        f = self._check_field(f, name)
        F = self.fft(np.asarray(f, dtype=np.float64))
        power = np.abs(F) ** 2
        power = np.reshape(power, self._rshape + (-1,)).sum(axis=-1)
        power[(0,) * self.n] = 0.0  # the mean is always resolved
        # the half-spectrum axis counts twice (except m = 0 and Nyquist): irrelevant for a ratio test
        total = float(power.sum())
        if total == 0.0:
            return None
        high = np.zeros(self._rshape, dtype=bool)
        for a in range(self.n):
            high = high | (np.abs(self._m[a]) > fraction * self.shape[a] / 2)
        ratio = math.sqrt(float(power[high].sum()) / total)
        if ratio <= tol:
            return None
        # the shortest wavelength carrying a significant share of the content
        mags = np.sqrt(sum((m / L) ** 2 for m, L in zip(self._m, self.L)) * np.ones(self._rshape))
        significant = power > (tol**2) * total
        kmax = float(mags[significant].max())
        wavelength = 1.0 / kmax
        nyq = min(2 * L / N for L, N in zip(self.L, self.shape))
        return (
            f"grid too coarse for the {name}: {ratio:.2e} of its (non-constant) L² content lies above "
            f"{fraction:.3g} of the Nyquist frequency (tolerance {tol:.1e}); it has content down to "
            f"wavelength {wavelength:.4g}, while the grid {self!r} (spacing "
            f"{', '.join(f'{h:.4g}' for h in self.spacing)}) resolves wavelengths down to "
            f"{nyq / fraction:.4g} (Nyquist wavelength {nyq:.4g}); refine the grid (larger N) "
            "or smooth the field"
        )

    def check_resolution(self, f: Any, *, fraction: float = 2.0 / 3.0, tol: float = 1e-6,
                         name: str = "field") -> None:
        """Raise :class:`GridTooCoarseError` with the message of :meth:`too_coarse` if any."""
        msg = self.too_coarse(f, fraction=fraction, tol=tol, name=name)
        if msg is not None:
            raise GridTooCoarseError(msg)

    def describe_point(self, index: Sequence[int]) -> str:
        """'grid index (i, j), x = [..]' for a grid index."""
        idx = tuple(int(i) for i in index)
        x = [i * h for i, h in zip(idx, self.spacing)]
        return f"grid point {idx}, x = [" + ", ".join(f"{v:.6g}" for v in x) + "]"
