r"""``MetricField``: a metric given as a callable ``x -> g(x)``.

A metric field is a small object with a few methods (in the spirit of geoopt's
manifolds): evaluate it, get its curvature at a batch of points, pull it back
by a coordinate change.

Two backends share the one curvature algebra of :mod:`lnegeom.curvature`:

* ``backend="torch"`` (default): ``fn`` maps a tensor ``x[n]`` to ``g[n, n]``
  written with torch operations; derivatives by ``torch.func`` (exact),
  float64 by default, on the device of the points (CPU or CUDA).
* ``backend="numpy"``: ``fn`` maps a numpy ``x[n]`` to ``g[n, n]``;
  derivatives either supplied (``derivatives=``, e.g. lambdified from a
  :class:`~lnegeom.symbolic.SymbolicMetric`) or by 4th-order finite differences.

Conventions: docs/math.md §1 (see :mod:`lnegeom.curvature`).

Example
-------
>>> import torch
>>> from lnegeom.metric import MetricField
>>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0])**2])), n=2)
>>> float(sphere.scalar(torch.tensor([[1.0, 0.3]], dtype=torch.float64))[0])  # doctest: +ELLIPSIS
2.0...
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ._array import array_namespace, is_torch_array
from .curvature import Curvature, MetricError, check_metric_array, curvature_from_derivatives
from .derivatives import autodiff_derivatives, batched_jacfwd, finite_difference_derivatives

__all__ = ["MetricField", "MetricError"]


def _is_complex(a: Any) -> bool:
    """Whether ``a`` (numpy array or torch tensor) has a complex dtype."""
    return bool(a.is_complex()) if is_torch_array(a) else bool(np.iscomplexobj(a))


def _first_true(mask: Any) -> int:
    """Flat index of the first True entry of a boolean numpy array or torch tensor (0 if none)."""
    xp = array_namespace(mask)
    return int(xp.argmax(xp.reshape(xp.astype(mask, xp.int8), (-1,))))


def _fmt(v: Any) -> str:
    """A scalar entry (real or complex, numpy or torch) for an error message."""
    v = v.item() if hasattr(v, "item") else v
    return f"{v:.6g}" if isinstance(v, (int, float, complex)) else str(v)


def _coords(p: Any) -> str:
    """'[x0, x1, ...]' of one point (real or complex)."""
    return "[" + ", ".join(_fmt(v) for v in p) + "]"


def _complex_detail(a: Any) -> tuple[Optional[int], str]:
    """(flat index, value) of the first entry of the complex array ``a`` with a nonzero imaginary part,
    or ``(None, "")`` when all imaginary parts are zero."""
    imag = a.imag != 0
    if not bool(imag.any()):
        return None, ""
    k = _first_true(imag)
    return k, _fmt(a.reshape(-1)[k])


class MetricField:
    """A Riemannian metric ``g(x)`` on an open set of ℝⁿ, given by a callable.

    Parameters
    ----------
    fn:
        One point ``x[n]`` -> matrix ``g[n, n]`` (torch ops for the torch
        backend, numpy for the numpy backend).  Batching is added by
        ``torch.func.vmap``, so write ``fn`` for a single point.
    n:
        Dimension (number of coordinates).
    backend:
        ``"torch"`` or ``"numpy"``.
    dtype, device:
        Torch dtype (default float64) and device used when points are given as
        numpy arrays or lists.
    derivatives:
        numpy backend only: callable ``x[n] -> (g, ∂g, ∂²g)`` with exact
        derivatives; otherwise finite differences with step ``fd_step``.
    check:
        Validate the points (finite) and g at every evaluated point (square,
        symmetric, finite, positive definite) and its derivatives (finite);
        errors name the point (index and coordinates), the entry and the
        eigenvalue.  Complex points, dtypes or values of ``fn`` are always
        refused (a metric is real), whatever ``check``.
    """

    def __init__(
        self,
        fn: Callable,
        n: int,
        *,
        backend: str = "torch",
        dtype=None,
        device=None,
        derivatives: Optional[Callable] = None,
        fd_step: float = 1e-3,
        check: bool = True,
        name: str = "metric",
    ) -> None:
        if backend not in ("torch", "numpy"):
            raise ValueError(f"unknown backend {backend!r}; choose 'torch' or 'numpy'")
        if int(n) < 1:
            raise ValueError(f"dimension n must be >= 1, got {n}")
        if derivatives is not None and backend != "numpy":
            raise ValueError("derivatives= is only used by the numpy backend (torch differentiates fn)")
        if dtype is not None:
            self._check_dtype(dtype, name)
        self.fn = fn
        self.n = int(n)
        self.backend = backend
        self.derivatives_fn = derivatives
        self.fd_step = fd_step
        self.check = check
        self.name = name
        if backend == "torch":
            import torch

            self.dtype = dtype or torch.float64
            self.device = device
        else:
            self.dtype = np.float64
            self.device = None

    @staticmethod
    def _check_dtype(dtype: Any, name: str) -> None:
        """Refuse a complex (or, for torch, non-floating) ``dtype``: a metric is real."""
        try:
            import torch

            is_torch_dtype = isinstance(dtype, torch.dtype)
        except ImportError:  # pragma: no cover - torch is a dependency
            is_torch_dtype = False
        if is_torch_dtype:
            bad = dtype.is_complex or not dtype.is_floating_point
        else:
            try:
                bad = np.dtype(dtype).kind == "c"
            except TypeError:
                bad = False
        if bad:
            raise MetricError(
                f"{name}: dtype={dtype} is not a real floating dtype; a metric and its coordinates are real: "
                "use dtype=torch.float64 (the default) or torch.float32"
            )

    def _where(self, b: int, pts: Any, batch: tuple) -> str:
        """Name point ``b`` of the flattened points ``pts[B, n]``: coordinates and index in ``batch``."""
        where = f"point x = {_coords(pts[b])}"
        if batch:
            where += f" (index {tuple(int(i) for i in np.unravel_index(b, batch))} of the points)"
        return where

    def _refuse_complex_points(self, x: Any) -> None:
        """Raise :class:`MetricError` for complex points ``x[..., n]``, naming an entry with an imaginary part."""
        if not _is_complex(x):
            return
        k, value = _complex_detail(x)
        if k is None:
            detail = "all imaginary parts are zero: pass x.real"
        else:
            shape = tuple(x.shape)
            idx = tuple(int(i) for i in np.unravel_index(k, shape))
            b, a = (idx[:-1], idx[-1]) if len(shape) > 1 else ((), idx[0])
            at = f"point index {b}, " if b else ""
            detail = (f"e.g. x_{a} = {value} at {at}coordinate {a}; pass x.real only if the imaginary parts "
                      "are rounding noise, otherwise fix how the points are computed")
        raise MetricError(
            f"{self.name}: the points x have a complex dtype ({x.dtype}); coordinates are real, "
            f"they are never cast silently ({detail})"
        )

    # ------------------------------------------------------------------ points
    def _points(self, x):
        """Normalise points to shape ``[B, n]``; returns (points, batch_shape).

        Complex points are refused; with ``check``, so are non-finite ones.
        """
        if self.backend == "torch":
            import torch

            if not torch.is_tensor(x):
                x = np.asarray(x)
                self._refuse_complex_points(x)
                x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
            else:
                self._refuse_complex_points(x)
                x = x.to(dtype=self.dtype)
        else:
            x = x.detach().cpu().numpy() if is_torch_array(x) else np.asarray(x)
            self._refuse_complex_points(x)
            x = x.astype(np.float64)
        if x.ndim == 0 or x.shape[-1] != self.n:
            raise ValueError(
                f"{self.name}: points must have a last axis of {self.n} coordinates, "
                f"got shape {tuple(x.shape)}"
            )
        batch = tuple(x.shape[:-1])
        pts = x.reshape(-1, self.n)
        if self.check:
            xp = array_namespace(pts)
            finite = xp.isfinite(pts)
            if not bool(xp.all(finite)):
                b, a = divmod(_first_true(~finite), self.n)
                raise MetricError(
                    f"{self.name}: non-finite coordinate x_{a} = {_fmt(pts[b, a])} at "
                    f"{self._where(b, pts, batch)}; every coordinate must be finite: check how the points were "
                    "computed (a division by zero or overflow upstream), or drop that point"
                )
        return pts, batch

    def _real_numpy(self, value: Any, what: str, point: Any, where: Optional[Callable[[], str]] = None) -> np.ndarray:
        """``value`` as a float64 array; a complex one is refused, naming the entry and the point
        (``where()``, called only on error, describes it; default: its coordinates)."""
        a = np.asarray(value)
        if np.iscomplexobj(a):
            k, v = _complex_detail(a)
            if k is None:
                entry = "all imaginary parts are zero: return the real part"
            else:
                idx = tuple(int(i) for i in np.unravel_index(k, a.shape))
                entry = (f"entry {idx} = {v}; a complex value usually means a square root or log of a negative "
                         "number: restrict the metric to where it is real")
            at = where() if where is not None else f"point x = {_coords(point)}"
            raise MetricError(
                f"{self.name}: {what} returned a complex array ({a.dtype}) at {at}; "
                f"a metric is real and is never cast silently ({entry})"
            )
        return a.astype(np.float64)

    def _near(self, p: np.ndarray, pts: np.ndarray, batch: tuple) -> str:
        """Name an evaluation point ``p``: one of ``pts`` or a finite-difference stencil point near one."""
        b = int(np.argmin(np.abs(pts - p).max(axis=-1)))
        if np.array_equal(pts[b], p):
            return self._where(b, pts, batch)
        return f"x = {_coords(p)}, a finite-difference stencil point of {self._where(b, pts, batch)}"

    def _refuse_complex_values(self, g: Any, pts: Any, batch: tuple, what: str = "fn") -> None:
        """Raise :class:`MetricError` if the batch ``g[B, n, n]`` is complex, naming the point and entry."""
        if not _is_complex(g):
            return
        k, value = _complex_detail(g)
        if k is None:
            where, detail = "", "all imaginary parts are zero: return the real part"
        else:
            b, rest = divmod(k, self.n * self.n)
            i, j = divmod(rest, self.n)
            where = f" at {self._where(b, pts, batch)}"
            detail = (f"entry (i, j) = ({i}, {j}) is {value}; a complex value usually means a square root or log "
                      "of a negative number: restrict the metric to where it is real")
        raise MetricError(
            f"{self.name}: {what} returned a complex metric ({g.dtype}){where}; a metric is real and is never "
            f"cast silently ({detail})"
        )

    def _check_point_values(self, g, pts, batch: tuple = ()) -> None:
        """With ``check``: g finite (naming index, coordinates and entry), square, symmetric, SPD."""
        if not self.check:
            return
        xp = array_namespace(g)
        finite = xp.isfinite(g)
        if not bool(xp.all(finite)):
            k = _first_true(~finite)
            b, rest = divmod(k, self.n * self.n)
            i, j = divmod(rest, self.n)
            index = f" (index {tuple(int(q) for q in np.unravel_index(b, batch))} of the points)" if batch else ""
            raise MetricError(
                f"{self.name} has a non-finite entry g_ij = {_fmt(xp.reshape(g, (-1,))[k])} at point x = "
                f"{_coords(pts[b])}, entry (i, j) = ({i}, {j}){index}; check the metric function there "
                "(division by zero, overflow, NaN input) or move the point"
            )
        check_metric_array(g, points=pts, name=self.name)

    def _check_derivative_values(self, dg, d2g, pts, batch: tuple) -> None:
        """With ``check``: ∂g and ∂²g finite, naming the component, the point and the likely cause."""
        if not self.check:
            return
        n = self.n
        if self.backend == "torch":
            cause = ("fn is not twice differentiable there (e.g. sqrt or abs at 0, or a removable singularity "
                     "written as 0/0); move the point or rewrite fn")
        elif self.derivatives_fn is not None:
            cause = "the derivatives= callable returned it: check its formulas there"
        else:
            cause = (f"the finite-difference stencil (up to 2·fd_step = {2 * self.fd_step:g} away in each "
                     "coordinate) reached a singularity or a NaN of fn: move the point away from it or lower "
                     "fd_step, or pass exact derivatives=")
        for arr, order, labels in ((dg, 1, "a, i, j"), (d2g, 2, "a, b, i, j")):
            xp = array_namespace(arr)
            finite = xp.isfinite(arr)
            if bool(xp.all(finite)):
                continue
            k = _first_true(~finite)
            per = n ** (order + 2)
            b, rest = divmod(k, per)
            comp = tuple(int(q) for q in np.unravel_index(rest, (n,) * (order + 2)))
            sym = "∂_a g_ij" if order == 1 else "∂_a ∂_b g_ij"
            raise MetricError(
                f"{self.name}: the derivative {sym} with ({labels}) = {comp} is "
                f"{_fmt(xp.reshape(arr, (-1,))[k])} at {self._where(b, pts, batch)}, where g itself is finite; "
                f"{cause}"
            )

    # ------------------------------------------------------------------ values
    def __call__(self, x):
        """g at points ``x[..., n]`` -> ``[..., n, n]``."""
        pts, batch = self._points(x)
        if self.backend == "torch":
            from torch.func import vmap

            g = vmap(self.fn)(pts)
            self._refuse_complex_values(g, pts, batch)
        else:
            g = np.stack([self._real_numpy(self.fn(p), "fn", p, lambda b=b: self._where(b, pts, batch))
                          for b, p in enumerate(pts)])
        self._check_shape(g)
        self._check_point_values(g, pts, batch)
        return g.reshape(*batch, self.n, self.n)

    def _check_shape(self, g):
        if tuple(g.shape[-2:]) != (self.n, self.n):
            raise MetricError(
                f"{self.name}: fn returned matrices of shape {tuple(g.shape[-2:])} for "
                f"n={self.n} coordinates; it must return an ({self.n}, {self.n}) matrix"
            )

    def derivatives(self, x):
        """``(g, ∂g, ∂²g)`` at points ``x[..., n]`` (layout of :mod:`lnegeom.curvature`)."""
        pts, batch = self._points(x)
        if self.backend == "torch":
            try:
                g, dg, d2g = autodiff_derivatives(self.fn, pts)
            except RuntimeError as err:  # jacfwd refuses complex outputs: say which point and entry
                if "complex" in str(err):
                    from torch.func import vmap

                    self._refuse_complex_values(vmap(self.fn)(pts), pts, batch)
                raise
        elif self.derivatives_fn is not None:
            parts = [self.derivatives_fn(p) for p in pts]
            g, dg, d2g = (
                np.stack([self._real_numpy(q[i], f"derivatives= ({('g', 'dg', 'd2g')[i]})", p,
                                           lambda b=b: self._where(b, pts, batch))
                          for b, (q, p) in enumerate(zip(parts, pts))])
                for i in range(3)
            )
        else:
            def real_fn(p: np.ndarray) -> np.ndarray:
                return self._real_numpy(self.fn(p), "fn", p, lambda: self._near(p, pts, batch))

            g, dg, d2g = finite_difference_derivatives(real_fn, pts, h=self.fd_step)
        self._check_shape(g)
        self._check_point_values(g, pts, batch)
        self._check_derivative_values(dg, d2g, pts, batch)
        n = self.n
        return (
            g.reshape(*batch, n, n),
            dg.reshape(*batch, n, n, n),
            d2g.reshape(*batch, n, n, n, n),
        )

    def curvature(self, x) -> Curvature:
        """Christoffel, Riemann, Ricci and scalar curvature at points ``x[..., n]``."""
        g, dg, d2g = self.derivatives(x)
        return curvature_from_derivatives(g, dg, d2g, check=False)

    def scalar(self, x):
        """Scalar curvature R at points ``x[..., n]``."""
        return self.curvature(x).scalar

    def ricci(self, x):
        """Ricci tensor Ric_jk at points ``x[..., n]``."""
        return self.curvature(x).ricci

    # ------------------------------------------------- third-order quantities
    def _require_torch(self, what: str):
        if self.backend != "torch":
            raise NotImplementedError(f"{what} needs third derivatives; use backend='torch'")

    def curvature_gradient(self, x):
        """Ricci, scalar and their first derivatives by autodiff (torch backend).

        Returns ``(curv, dRic[..., a, j, k], dR[..., a])`` with ``curv`` the
        :class:`Curvature` at ``x``; used for the contracted second Bianchi
        identity ∇ʲ Ric_jk = ½ ∂_k R.
        """
        self._require_torch("curvature_gradient")
        import torch

        pts, batch = self._points(x)
        n = self.n

        def ric_and_scalar(p):
            g, dg, d2g = autodiff_derivatives(self.fn, p[None])
            c = curvature_from_derivatives(g[0], dg[0], d2g[0], check=False)
            return torch.cat([c.ricci.reshape(-1), c.scalar.reshape(1)])

        val, jac = batched_jacfwd(ric_and_scalar, 1, pts)
        curv = self.curvature(pts)
        d_ric = jac[:, :, : n * n].reshape(-1, n, n, n)
        d_r = jac[:, :, n * n]
        return curv, d_ric.reshape(*batch, n, n, n), d_r.reshape(*batch, n)

    def ricci_divergence(self, x):
        """(∇ʲ Ric_jk, ½ ∂_k R) at points ``x[..., n]``; equal by the contracted Bianchi identity.

        ∇_i Ric_jk = ∂_i Ric_jk − Γ^p_ij Ric_pk − Γ^p_ik Ric_jp, contracted with g^ij.
        """
        import torch

        curv, d_ric, d_r = self.curvature_gradient(x)
        gam, ric, gi = curv.christoffel, curv.ricci, curv.g_inv
        shape = d_ric.shape[:-3]
        gam = gam.reshape(*shape, *gam.shape[-3:])
        ric = ric.reshape(*shape, *ric.shape[-2:])
        gi = gi.reshape(*shape, *gi.shape[-2:])
        nabla = (
            d_ric
            - torch.einsum("...pij,...pk->...ijk", gam, ric)
            - torch.einsum("...pik,...jp->...ijk", gam, ric)
        )
        return torch.einsum("...ij,...ijk->...k", gi, nabla), 0.5 * d_r

    # ------------------------------------------------------ coordinate change
    def pullback(self, phi: Callable, name: Optional[str] = None) -> "MetricField":
        """The pull-back φ*g: (φ*g)_ab(x) = ∂_a φ^i(x) g_ij(φ(x)) ∂_b φ^j(x).

        ``phi`` maps a point ``x[n]`` to ``y[n]`` with torch operations (torch
        backend only; the Jacobian comes from ``torch.func.jacfwd``).
        """
        self._require_torch("pullback")
        from torch.func import jacfwd

        fn = self.fn

        def pulled(x):
            J = jacfwd(phi)(x)  # J[i, a] = ∂_a φ^i
            h = J.T @ fn(phi(x)) @ J
            # symmetrise: the product is symmetric only up to rounding (~1e-7 in float32,
            # which the symmetry check of check_metric_array would reject)
            return 0.5 * (h + h.T)

        return MetricField(
            pulled, self.n, dtype=self.dtype, device=self.device, check=self.check,
            name=name or f"pullback of {self.name}",
        )

    def scaled(self, c2: float) -> "MetricField":
        """The metric c²·g (for the scaling identity R(c² g) = R(g)/c²)."""
        fn, der = self.fn, self.derivatives_fn
        scaled_der = None if der is None else (lambda x: tuple(c2 * np.asarray(a) for a in der(x)))
        return MetricField(
            lambda x: c2 * fn(x), self.n, backend=self.backend,
            dtype=self.dtype if self.backend == "torch" else None, device=self.device,
            derivatives=scaled_der, fd_step=self.fd_step, check=self.check, name=f"{c2}*{self.name}",
        )

    def __repr__(self) -> str:
        return f"MetricField(name={self.name!r}, n={self.n}, backend={self.backend!r})"
