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

Conventions: MATH.md §1 (see :mod:`lnegeom.curvature`).

Example
-------
>>> import torch
>>> from lnegeom.metric import MetricField
>>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0])**2])), n=2)
>>> float(sphere.scalar(torch.tensor([[1.0, 0.3]], dtype=torch.float64))[0])  # doctest: +ELLIPSIS
2.0...
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .curvature import Curvature, MetricError, check_metric_array, curvature_from_derivatives
from .derivatives import autodiff_derivatives, batched_jacfwd, finite_difference_derivatives

__all__ = ["MetricField", "MetricError"]


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
        Validate g at every evaluated point (square, symmetric, finite,
        positive definite); errors name the point and the eigenvalue.
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

    # ------------------------------------------------------------------ points
    def _points(self, x):
        """Normalise points to shape ``[B, n]``; returns (points, batch_shape)."""
        if self.backend == "torch":
            import torch

            if not torch.is_tensor(x):
                x = torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)
            else:
                x = x.to(dtype=self.dtype)
        else:
            x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != self.n:
            raise ValueError(
                f"{self.name}: points must have a last axis of {self.n} coordinates, "
                f"got shape {tuple(x.shape)}"
            )
        batch = tuple(x.shape[:-1])
        return x.reshape(-1, self.n), batch

    def _check_point_values(self, g, pts):
        if self.check:
            check_metric_array(g, points=pts, name=self.name)

    # ------------------------------------------------------------------ values
    def __call__(self, x):
        """g at points ``x[..., n]`` -> ``[..., n, n]``."""
        pts, batch = self._points(x)
        if self.backend == "torch":
            from torch.func import vmap

            g = vmap(self.fn)(pts)
        else:
            g = np.stack([np.asarray(self.fn(p), dtype=np.float64) for p in pts])
        self._check_shape(g)
        self._check_point_values(g, pts)
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
            g, dg, d2g = autodiff_derivatives(self.fn, pts)
        elif self.derivatives_fn is not None:
            parts = [self.derivatives_fn(p) for p in pts]
            g, dg, d2g = (np.stack([np.asarray(q[i], dtype=np.float64) for q in parts]) for i in range(3))
        else:
            g, dg, d2g = finite_difference_derivatives(self.fn, pts, h=self.fd_step)
        self._check_shape(g)
        self._check_point_values(g, pts)
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
