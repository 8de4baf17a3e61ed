r"""Assertion helpers for curvature identities, with the tolerances they use.

:func:`assert_riemann_symmetries`, :func:`assert_ricci_symmetric`,
:func:`assert_contracted_bianchi`, :func:`assert_scaling`,
:func:`assert_coordinate_invariance`, :func:`assert_backends_agree` and
:func:`assert_curvature_identities` (all of them) check a numeric metric and,
when an identity fails, say which, where and by how much;
:func:`assert_symbolic_matches_autodiff` compares the exact curvature of
:mod:`lnegeom.symbolic` with torch autodiff (:class:`SymbolicRefusal` when the
exact engine refuses the metric).

Conventions (docs/math.md §1)
-----------------------------
Γ^k_ij = ½ g^kl (∂_i g_jl + ∂_j g_il − ∂_l g_ij),
R^l_ijk = ∂_i Γ^l_jk − ∂_j Γ^l_ik + Γ^p_jk Γ^l_ip − Γ^p_ik Γ^l_jp,
Ric_jk = R^p_pjk, R = g^jk Ric_jk (unit 2-sphere: R = +2).
The lowered tensor is R_mijk = g_ml R^l_ijk.  With this index placement the
*derivative pair* is (i, j) and the *endomorphism pair* is (m, k), so the
algebraic symmetries read

* R_mijk = −R_mjik            (antisymmetry in i, j),
* R_mijk = −R_kijm            (antisymmetry in m, k),
* R_mijk = R_jkmi             (pair symmetry),
* R^l_ijk + R^l_jki + R^l_kij = 0   (first Bianchi identity),

and Ric_jk = Ric_kj, ∇ʲ Ric_jk = ½ ∂_k R (contracted second Bianchi identity),
R(c² g) = R(g)/c², Ric(c² g) = Ric(g), and for a diffeomorphism φ with
Jacobian J = Dφ: R_{φ*g}(x) = R_g(φ(x)), Ric_{φ*g}(x) = Jᵀ Ric_g(φ(x)) J.

(Note: R_mijk = −R_mikj, a form sometimes quoted, belongs to the index
placement R^l_kij of other texts; it is *false* with docs/math.md §1's.)

Tolerances
----------
Every check compares a residual with ``atol + floor + rtol · scale(x)``, where
``scale(x)`` is the size of the *terms that are summed* into the quantity
checked (not only of the result, which can vanish by cancellation, e.g. for a
flat metric in curvilinear coordinates).  For R^l_ijk the term size is

    T(x) = n · ( max|g⁻¹| · max|∂²g| + max|g⁻¹| · max|∂g| · max|Γ| + max|Γ|² ) + max|R^l_ijk|

(the first three terms when the metric's derivatives are available), lowered
quantities carry an extra factor n · max|g|, the scalar one of n · max|g⁻¹|.
The default ``rtol`` follows the precision: 1e-10 for float64 (the observed
round-off on random fields with cond g up to ~300 is ≤ 1e-15 · scale, a
margin of 1e5), 1e-4 for float32 (observed ≤ 5e-7 · scale); ``atol``
defaults to 0.  ``floor`` is √(smallest normal number) of the dtype (below it
products underflow: ~1e-19 in float32, 1e-154 in float64) plus, in backend
comparisons, the finite-difference error model of :func:`assert_backends_agree`.
Every failure message spells out the tolerance it used.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .._array import is_torch_array, to_numpy
from ..curvature import Curvature, curvature_from_derivatives
from ..metric import MetricField
from .samples import SymbolicMetricSample, lambdified_matrix

__all__ = [
    "assert_riemann_symmetries",
    "assert_ricci_symmetric",
    "assert_contracted_bianchi",
    "assert_scaling",
    "assert_coordinate_invariance",
    "assert_backends_agree",
    "assert_curvature_identities",
    "assert_symbolic_matches_autodiff",
    "SymbolicRefusal",
]


MetricLike = Union[MetricField, Curvature, Any]

_RTOL = {64: 1e-10, 32: 1e-4}


def _bits(a: Any) -> int:
    dt = a.dtype
    try:
        return int(np.dtype(dt).itemsize * 8)
    except TypeError:  # torch dtype
        return int(dt.itemsize * 8)


def _default_rtol(*arrays: Any) -> float:
    return max(_RTOL.get(_bits(a), 1e-2) for a in arrays)


def _np(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a), dtype=np.float64)


def _maxabs(a: np.ndarray, keep: int = 1) -> np.ndarray:
    """max |a| over all but the first ``keep`` axes."""
    a = np.abs(a)
    return a.reshape(*a.shape[:keep], -1).max(axis=-1) if a.ndim > keep else a


class _Curv:
    """Flattened numpy view of a curvature evaluation, with the tolerance scales."""

    def __init__(self, curv: Curvature, pts: Optional[np.ndarray], dg: Any = None, d2g: Any = None) -> None:
        g = _np(curv.g)
        n = g.shape[-1]
        self.n = n
        self.bits = _bits(curv.riemann)
        # below √tiny products underflow: an absolute floor, negligible for any sensible curvature
        self.underflow = float(np.sqrt(np.finfo({16: np.float16, 32: np.float32}.get(self.bits, np.float64)).tiny))
        self.rtol_default = _default_rtol(curv.riemann)
        self.g = g.reshape(-1, n, n)
        self.B = self.g.shape[0]
        self.g_inv = _np(curv.g_inv).reshape(-1, n, n)
        self.gamma = _np(curv.christoffel).reshape(-1, n, n, n)
        self.riemann = _np(curv.riemann).reshape(-1, n, n, n, n)
        self.ricci = _np(curv.ricci).reshape(-1, n, n)
        self.scalar = _np(curv.scalar).reshape(-1)
        self.pts = None if pts is None else np.asarray(pts, dtype=np.float64).reshape(-1, n)
        gi, ga = _maxabs(self.g_inv), _maxabs(self.gamma)
        t = ga**2
        if d2g is not None:
            t = t + gi * _maxabs(_np(d2g).reshape(self.B, -1))
        if dg is not None:
            t = t + gi * _maxabs(_np(dg).reshape(self.B, -1)) * ga
        # size of the terms summed into R^l_ijk (module docstring)
        self.t_up = n * t + _maxabs(self.riemann)
        self.t_low = n * _maxabs(self.g) * self.t_up
        self.t_scalar = n * gi * self.t_up
        self.fd = np.zeros(self.B)  # finite-difference error floor for R^l_ijk (set by _evaluate)

    @property
    def fd_ricci(self) -> np.ndarray:
        return self.n * self.fd

    @property
    def fd_scalar(self) -> np.ndarray:
        return self.n**2 * _maxabs(self.g_inv) * self.fd

    @property
    def lowered(self) -> np.ndarray:
        # computed here, not via Curvature.riemann_lowered (which caches)
        return np.einsum("bml,blijk->bmijk", self.g, self.riemann)


def _points_np(x: Any, n: int) -> np.ndarray:
    return np.asarray(to_numpy(x), dtype=np.float64).reshape(-1, n)


def _evaluate(metric: MetricLike, x: Any) -> _Curv:
    """Curvature (and derivatives when available) of a metric, or a ready Curvature."""
    if isinstance(metric, Curvature):
        n = metric.g.shape[-1]
        return _Curv(metric, None if x is None else _points_np(x, n))
    if x is None:
        raise TypeError("points x are required when a metric (not a Curvature) is given")
    if isinstance(metric, MetricField):
        g, dg, d2g = metric.derivatives(x)
        curv = curvature_from_derivatives(g, dg, d2g, check=False)
        c = _Curv(curv, _points_np(x, metric.n), dg, d2g)
        if _is_fd(metric):
            # finite-difference round-off on ∂²g: ~ ε max|g| / h² (stencil weights ~5), carried by g⁻¹ into R
            h = float(getattr(metric, "fd_step", 1e-3))
            c.fd = _FD_SAFETY * np.finfo(np.float64).eps / h**2 * c.n * _maxabs(c.g) * _maxabs(c.g_inv)
        return c
    curv = metric.curvature(x)
    return _Curv(curv, _points_np(x, curv.g.shape[-1]))


def _fmt_point(c: _Curv, b: int) -> str:
    if c.pts is None:
        return f"batch index {b}"
    return "x = [" + ", ".join(f"{v:.6g}" for v in c.pts[b]) + "]"


def _check(
    failures: list,
    name: str,
    expr: str,
    resid: np.ndarray,
    scale: np.ndarray,
    c: _Curv,
    atol: float,
    rtol: float,
    index_names: str = "",
    floor: Any = 0.0,
) -> None:
    """Append a message to ``failures`` if ``|resid| > atol + floor + rtol·scale`` at some point."""
    B = resid.shape[0]
    r = np.abs(resid).reshape(B, -1)
    nonfinite = ~np.isfinite(r)
    r = np.where(nonfinite, np.inf, r)
    rmax = r.max(axis=1) if r.shape[1] else np.zeros(B)
    floor = np.maximum(np.broadcast_to(np.asarray(floor, dtype=np.float64), (B,)), c.underflow)
    tol = atol + floor + rtol * np.where(np.isfinite(scale), scale, 0.0)
    bad = rmax > tol
    if not bad.any():
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(bad, rmax / np.where(tol > 0, tol, 1e-300), -1.0)
    b = int(np.argmax(ratio))
    flat = int(np.argmax(r[b]))
    shape = resid.shape[1:]
    idx = np.unravel_index(flat, shape) if shape else ()
    where = f" at index ({index_names}) = {tuple(int(i) for i in idx)}" if index_names else ""
    value = "not finite" if nonfinite[b].any() else f"{rmax[b]:.3e}"
    fl = f" + finite-difference floor {floor[b]:.1e}" if floor[b] > c.underflow else ""
    failures.append(
        f"{name} fails at {_fmt_point(c, b)}: max |{expr}| = {value} "
        f"(tolerance {tol[b]:.3e} = atol {atol:.1e} + rtol {rtol:.1e} * scale {scale[b]:.3e}{fl})"
        f"{where}; {int(bad.sum())} of {B} point(s) fail"
    )


def _raise(failures: list) -> None:
    if len(failures) == 1:
        raise AssertionError(failures[0])
    if failures:
        raise AssertionError(
            f"{len(failures)} curvature identities fail:\n" + "\n".join(f"  - {f}" for f in failures)
        )


def _riemann_failures(c: _Curv, atol: float, rtol: float) -> list:
    fails: list = []
    low = c.lowered
    _check(fails, "Riemann antisymmetry in (i, j)", "R_mijk + R_mjik",
           low + np.einsum("bmjik->bmijk", low), c.t_low, c, atol, rtol, "m,i,j,k")
    _check(fails, "Riemann antisymmetry in (m, k)", "R_mijk + R_kijm",
           low + np.einsum("bkijm->bmijk", low), c.t_low, c, atol, rtol, "m,i,j,k")
    _check(fails, "Riemann pair symmetry", "R_mijk - R_jkmi",
           low - np.einsum("bjkmi->bmijk", low), c.t_low, c, atol, rtol, "m,i,j,k")
    r = c.riemann
    cyc = r + np.einsum("bljki->blijk", r) + np.einsum("blkij->blijk", r)
    _check(fails, "first Bianchi identity", "R^l_ijk + R^l_jki + R^l_kij",
           cyc, c.t_up, c, atol, rtol, "l,i,j,k")
    return fails


def assert_riemann_symmetries(
    metric: MetricLike, x: Any = None, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert the algebraic symmetries of Riemann at the points ``x[..., n]``.

    With R_mijk = g_ml R^l_ijk and docs/math.md §1's index placement:
    R_mijk = −R_mjik, R_mijk = −R_kijm (the two antisymmetries),
    R_mijk = R_jkmi (pair symmetry) and R^l_ijk + R^l_jki + R^l_kij = 0
    (first Bianchi).  ``metric`` is a :class:`~lnegeom.metric.MetricField`
    (or any object with ``curvature(x)``), or a ready
    :class:`~lnegeom.curvature.Curvature` (then ``x`` only labels the points).
    Tolerance: ``atol + rtol · scale`` with the term scale of the module
    docstring; ``rtol`` defaults by dtype (1e-10 float64, 1e-4 float32).
    Raises ``AssertionError`` naming the identity, the point, the largest
    residual and its index.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_riemann_symmetries(sphere, [[1.0, 0.3], [0.5, 2.0]])
    """
    c = _evaluate(metric, x)
    _raise(_riemann_failures(c, atol, c.rtol_default if rtol is None else rtol))


def _ricci_failures(c: _Curv, atol: float, rtol: float) -> list:
    fails: list = []
    _check(fails, "Ricci symmetry", "Ric_jk - Ric_kj", c.ricci - np.swapaxes(c.ricci, -1, -2),
           c.n * c.t_up, c, atol, rtol, "j,k")
    return fails


def assert_ricci_symmetric(
    metric: MetricLike, x: Any = None, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert Ric_jk = Ric_kj (Ric_jk = R^p_pjk, docs/math.md §1) at the points ``x[..., n]``.

    Symmetry of Ricci is the contraction of the pair symmetry; a failure
    usually means a non-symmetric metric or inconsistent derivatives.
    ``metric`` and the tolerances as in :func:`assert_riemann_symmetries`.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> g = MetricField(lambda x: torch.eye(2, dtype=x.dtype) * torch.exp(x[0] * x[1]), 2)
    >>> assert_ricci_symmetric(g, [[0.1, 0.2]])
    """
    c = _evaluate(metric, x)
    _raise(_ricci_failures(c, atol, c.rtol_default if rtol is None else rtol))


def _bianchi2_failures(metric: Any, x: Any, atol: float, rtol: Optional[float]) -> list:
    c = _evaluate(metric, x)
    rt = c.rtol_default if rtol is None else rtol
    div, half_dr = metric.ricci_divergence(x)
    div = _np(div).reshape(c.B, c.n)
    half_dr = _np(half_dr).reshape(c.B, c.n)
    resid = div - half_dr
    # terms of ∇ʲRic_jk: g^ij ∂_i Ric_jk and g^ij Γ Ric; a cheap proxy for |∂Ric| is T^{3/2} (its dimension)
    size_both = np.abs(div).max(axis=1) + np.abs(half_dr).max(axis=1)
    gi, gr = _maxabs(c.g_inv), 2 * _maxabs(c.gamma) * _maxabs(c.ricci)
    scale = size_both + c.n**2 * gi * (c.t_up**1.5 + gr)
    if np.any(np.abs(resid).max(axis=1) > atol + c.underflow + rt * scale) and hasattr(metric, "curvature_gradient"):
        # the proxy can underestimate |∂Ric| (e.g. for tiny perturbations of a flat metric, where
        # both sides cancel at linear order): judge again with the actual size of ∂Ric
        _, d_ric, d_r = metric.curvature_gradient(x)
        d_size = _maxabs(_np(d_ric).reshape(c.B, -1)) + 0.5 * _maxabs(_np(d_r).reshape(c.B, -1))
        scale = np.maximum(scale, size_both + c.n**2 * gi * (d_size + gr))
    fails: list = []
    _check(fails, "contracted second Bianchi identity", "nabla^j Ric_jk - (1/2) d_k R",
           resid, scale, c, atol, rt, "k")
    return fails


def assert_contracted_bianchi(
    metric: MetricField, x: Any, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert the contracted second Bianchi identity ∇ʲ Ric_jk = ½ ∂_k R at ``x[..., n]``.

    ∇ʲ Ric_jk = g^ij (∂_i Ric_jk − Γ^p_ij Ric_pk − Γ^p_ik Ric_jp) and ∂_k R
    come from :meth:`~lnegeom.metric.MetricField.ricci_divergence` (third
    derivatives of g by autodiff: torch backend only).  The scale adds
    n² max|g⁻¹| (|∂Ric| + 2 max|Γ| max|Ric|) to the sizes of both sides.
    |∂Ric| is first estimated by T^{3/2} (its dimension); only if that
    check fails is the actual max|∂Ric| + ½ max|∂R| computed by
    :meth:`~lnegeom.metric.MetricField.curvature_gradient` (a second
    third-derivative pass) and the larger scale used.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> g = MetricField(lambda x: torch.eye(2, dtype=x.dtype) * torch.exp(torch.sin(x[0]) * x[1]), 2)
    >>> assert_contracted_bianchi(g, [[0.1, 0.2], [1.0, -0.5]])
    """
    _raise(_bianchi2_failures(metric, x, atol, rtol))


def _scaling_failures(metric: Any, x: Any, c: float, atol: float, rtol: Optional[float]) -> list:
    if not (c > 0 and math.isfinite(c)):
        raise ValueError(f"scale factor c must be finite and > 0, got {c!r}")
    a = _evaluate(metric, x)
    b = _evaluate(metric.scaled(c * c), x)
    rt = a.rtol_default if rtol is None else rtol
    fails: list = []
    _check(fails, "scaling identity R(c^2 g) = R(g)/c^2" + f" (c = {c:g})", "R(c^2 g) - R(g)/c^2",
           b.scalar - a.scalar / (c * c), np.maximum(a.t_scalar / (c * c), b.t_scalar), a, atol, rt,
           floor=np.maximum(a.fd_scalar / (c * c), b.fd_scalar))
    _check(fails, "Ricci scaling identity Ric(c^2 g) = Ric(g)" + f" (c = {c:g})", "Ric(c^2 g)_jk - Ric(g)_jk",
           b.ricci - a.ricci, a.n * np.maximum(a.t_up, b.t_up), a, atol, rt, "j,k",
           floor=np.maximum(a.fd_ricci, b.fd_ricci))
    return fails


def assert_scaling(
    metric: MetricField, x: Any, c: float = 2.0, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert R(c² g) = R(g)/c² and Ric(c² g) = Ric(g) at ``x[..., n]`` (uses ``metric.scaled(c²)``).

    Γ is invariant under constant rescaling, hence R^l_ijk and Ric_jk are, and
    R = g^jk Ric_jk picks up g⁻¹ → g⁻¹/c² (docs/math.md §1).

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_scaling(sphere, [[1.0, 0.3]], c=3.0)     # R: 2 -> 2/9
    """
    _raise(_scaling_failures(metric, x, c, atol, rtol))


def _invariance_failures(metric: Any, phi: Callable, x: Any, atol: float, rtol: Optional[float]) -> list:
    import torch
    from torch.func import jacfwd, vmap

    n = metric.n
    dtype = getattr(metric, "dtype", torch.float64)
    device = getattr(metric, "device", None)
    xt = x if is_torch_array(x) else torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
    xt = xt.to(dtype=dtype).reshape(-1, n)
    y = vmap(phi)(xt)
    jac = _np(vmap(jacfwd(phi))(xt))  # J[b, i, a] = ∂_a φ^i
    pulled = _evaluate(metric.pullback(phi), xt)
    target = _evaluate(metric, y)
    target.pts = pulled.pts  # report the point x where the pull-back is evaluated
    rt = pulled.rtol_default if rtol is None else rtol
    jn = _maxabs(jac)
    fails: list = []
    _check(fails, "coordinate invariance of the scalar curvature R_{phi*g}(x) = R_g(phi(x))",
           "R_{phi*g}(x) - R_g(phi(x))", pulled.scalar - target.scalar,
           np.maximum(pulled.t_scalar, target.t_scalar), pulled, atol, rt)
    _check(fails, "tensorial transformation of Ricci Ric_{phi*g}(x) = J^T Ric_g(phi(x)) J",
           "Ric_{phi*g}(x)_ab - (J^T Ric_g(phi(x)) J)_ab",
           pulled.ricci - np.einsum("bia,bij,bjc->bac", jac, target.ricci, jac),
           n * np.maximum(pulled.t_up, n * n * jn**2 * target.t_up), pulled, atol, rt, "a,b")
    return fails


def assert_coordinate_invariance(
    metric: MetricField, phi: Callable, x: Any, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert R_{φ*g}(x) = R_g(φ(x)) and Ric_{φ*g}(x) = Jᵀ Ric_g(φ(x)) J at ``x[..., n]``.

    (φ*g)_ab(x) = ∂_a φ^i ∂_b φ^j g_ij(φ(x)) (:meth:`~lnegeom.metric.MetricField.pullback`,
    torch backend), J = Dφ(x).  Scalar curvature is a scalar and Ricci a
    (0,2)-tensor, so both identities hold for every diffeomorphism φ (e.g.
    from :func:`coordinate_maps`); ``phi`` maps a torch point ``x[n]`` to
    ``y[n]`` and must be vmap/jacfwd-compatible.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_coordinate_invariance(sphere, lambda x: torch.stack([x[0] + 0.1 * x[1] ** 2, x[1]]), [[1.0, 0.2]])
    """
    _raise(_invariance_failures(metric, phi, x, atol, rtol))


_FD_SAFETY = 50.0


def _is_fd(metric: Any) -> bool:
    return getattr(metric, "backend", None) == "numpy" and getattr(metric, "derivatives_fn", None) is None


def _backend_failures(a: Any, b: Any, x: Any, atol: float, rtol: Optional[float]) -> list:
    ca, cb = _evaluate(a, x), _evaluate(b, x)
    if rtol is None:
        rtol = max(ca.rtol_default, cb.rtol_default, *(1e-6 for m in (a, b) if _is_fd(m)))
    label = f"{getattr(a, 'backend', '?')}/{_dtype_name(ca)} vs {getattr(b, 'backend', '?')}/{_dtype_name(cb)}"
    fails: list = []
    ca.underflow = max(ca.underflow, cb.underflow)
    # a perturbation δg of relative size ε moves R by ~ ε cond(g) T: the comparison scale carries cond(g)
    cond = ca.n * np.maximum(_maxabs(ca.g) * _maxabs(ca.g_inv), _maxabs(cb.g) * _maxabs(cb.g_inv))
    t = np.maximum(ca.t_up, cb.t_up) * cond
    _check(fails, f"backend agreement on the metric ({label})", "g_a - g_b", ca.g - cb.g,
           _maxabs(ca.g), ca, atol, rtol, "i,j")
    _check(fails, f"backend agreement on Riemann ({label})", "R^l_ijk(a) - R^l_ijk(b)",
           ca.riemann - cb.riemann, t, ca, atol, rtol, "l,i,j,k", floor=np.maximum(ca.fd, cb.fd))
    _check(fails, f"backend agreement on Ricci ({label})", "Ric_jk(a) - Ric_jk(b)",
           ca.ricci - cb.ricci, ca.n * t, ca, atol, rtol, "j,k", floor=np.maximum(ca.fd_ricci, cb.fd_ricci))
    _check(fails, f"backend agreement on the scalar curvature ({label})", "R(a) - R(b)",
           ca.scalar - cb.scalar, np.maximum(ca.t_scalar, cb.t_scalar) * cond, ca, atol, rtol,
           floor=np.maximum(ca.fd_scalar, cb.fd_scalar))
    return fails


def _dtype_name(c: _Curv) -> str:
    return f"float{c.bits}"


def assert_backends_agree(
    reference: MetricField, other: MetricField, x: Any, *, atol: float = 0.0, rtol: Optional[float] = None
) -> None:
    r"""Assert two metric fields give the same g, R^l_ijk, Ric_jk and R at ``x[..., n]``.

    Typical use: the torch (autodiff) and numpy (finite-difference) fields of
    one :class:`SmoothMetric`, or float32 against float64.

    Tolerance ``atol + floor + rtol · scale``.  A relative perturbation ε of
    g moves R^l_ijk by about ε · cond(g) · T, so here the scale is the term
    size T of the module docstring times n · max|g| · max|g⁻¹|.  The default
    ``rtol`` is that of the less precise side: 1e-10 (float64, autodiff or
    exact derivatives), 1e-4 (float32; observed float32-vs-float64
    differences ≤ 1e-6 · scale), 1e-6 when a side uses finite differences.
    Caveat for float32: a function whose derivative torch evaluates with an
    *absolute* rather than relative error — e.g. a saturated tanh, whose
    derivative is computed as 1 − tanh² — loses all relative accuracy where
    that derivative is small; pass an ``atol`` of about ε₃₂ times the
    unsaturated derivative size (see :meth:`SmoothMetric.derivative_bound`).

    Finite differences (the numpy backend without exact derivatives) add an
    absolute floor.  The 4th-order stencils of :mod:`lnegeom.derivatives`
    with step h have round-off ≈ ε |g| · (Σ|weights|)/(12 h²) ≈ 5 ε |g| / h²
    on ∂²g (≈ 1e-9 |g| for h = 1e-3), which g⁻¹ carries into R^l_ijk, and
    truncation error ≈ h⁴ |∂⁶g| / 90 — relative to ∂²g only ≈ h⁴|w|⁴/90 ≈ 1e-14
    for the wave numbers |w| ≲ 3 of :func:`smooth_metrics`, covered by rtol.
    The floor is 50 · ε/h² · n · max|g| · max|g⁻¹| for R^l_ijk (times n for
    Ric, n² max|g⁻¹| for R); the observed differences on random fields
    (cond g up to ~300) stay below 1/50 of it.

    Example
    -------
    >>> from lnegeom.fields import SmoothMetric
    >>> s = SmoothMetric(base=[[2.0, 0.3], [0.3, 1.0]], coefficients=[0.4],
    ...                  directions=[[[1.0, 0.0], [0.0, -1.0]]], wavevectors=[[1.0, 0.5]],
    ...                  phases=[0.2], profiles=("cos",))
    >>> assert_backends_agree(s.torch, s.numpy, [[0.1, 0.2]])
    """
    _raise(_backend_failures(reference, other, x, atol, rtol))


def assert_curvature_identities(
    metric: MetricField,
    x: Any,
    *,
    phi: Optional[Callable] = None,
    other: Optional[MetricField] = None,
    c: float = 2.0,
    bianchi: Optional[bool] = None,
    atol: float = 0.0,
    rtol: Optional[float] = None,
) -> None:
    r"""Run every identity check on ``metric`` at ``x[..., n]`` and report *all* failures at once.

    Always: Riemann symmetries and first Bianchi
    (:func:`assert_riemann_symmetries`), Ricci symmetry
    (:func:`assert_ricci_symmetric`), scaling with factor ``c``
    (:func:`assert_scaling`).  ``bianchi`` (default: when the metric has the
    torch backend) adds the contracted second Bianchi identity
    (:func:`assert_contracted_bianchi`); ``phi`` adds coordinate invariance
    under φ (:func:`assert_coordinate_invariance`); ``other`` adds agreement
    with a second field (:func:`assert_backends_agree`).  Conventions:
    docs/math.md §1.

    Example
    -------
    >>> import torch
    >>> from lnegeom.metric import MetricField
    >>> sphere = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2])), 2)
    >>> assert_curvature_identities(sphere, [[1.0, 0.3]], phi=lambda x: x + 0.1 * torch.sin(x.flip(0)))
    """
    cv = _evaluate(metric, x)
    rt = cv.rtol_default if rtol is None else rtol
    fails = _riemann_failures(cv, atol, rt) + _ricci_failures(cv, atol, rt)
    fails += _scaling_failures(metric, x, c, atol, rtol)
    if bianchi is None:
        bianchi = getattr(metric, "backend", "torch") == "torch" and hasattr(metric, "ricci_divergence")
    if bianchi:
        fails += _bianchi2_failures(metric, x, atol, rtol)
    if phi is not None:
        fails += _invariance_failures(metric, phi, x, atol, rtol)
    if other is not None:
        fails += _backend_failures(metric, other, x, atol, rtol)
    _raise(fails)


# =========================================================================
# random symbolic metrics: differential testing of lnegeom.symbolic
# =========================================================================
class SymbolicRefusal(AssertionError):
    """Raised by :func:`assert_symbolic_matches_autodiff` when :class:`~lnegeom.symbolic.SymbolicMetric`
    *refuses* the metric: a :class:`~lnegeom.curvature.MetricError` while building it or computing
    the exact Γ, Ric, R (not a wrong answer, but not an answer either).  An ``AssertionError``, so
    it fails a test unless caught."""


_QUANTITIES = ("christoffel", "ricci", "scalar", "riemann")
_QUANTITY_TEXT = {
    "christoffel": ("Christoffel symbol Gamma^k_ij", "k,i,j"),
    "riemann": ("Riemann tensor R^l_ijk", "l,i,j,k"),
    "ricci": ("Ricci tensor Ric_jk", "j,k"),
    "scalar": ("scalar curvature R", ""),
}


def _symbolic_values(sm: Any, what: str, pts: np.ndarray, backend: str) -> np.ndarray:
    """A curvature quantity of a SymbolicMetric at points ``pts[B, n]``: ``lambdify`` of the
    SymbolicMetric for Ricci / R, ``sympy.lambdify`` of its arrays for Γ and Riemann."""
    import sympy as sp
    n = sm.n
    if what in ("ricci", "scalar"):
        fn = sm.lambdify(what, backend)
        if backend == "torch":
            import torch

            return _np(fn(torch.as_tensor(pts, dtype=torch.float64)))
        return np.asarray(fn(pts), dtype=np.float64)
    arr = sm.christoffel() if what == "christoffel" else sm.riemann()
    flat = [sp.sympify(e) for e in sp.flatten(arr.tolist())]
    free = set().union(*(e.free_symbols for e in flat)) - set(sm.coords)
    if free:
        raise ValueError(f"the symbolic {what} still contains the symbols {sorted(map(str, free))}")
    fn = sp.lambdify(list(sm.coords), flat, modules="numpy")
    out = np.empty((pts.shape[0], len(flat)))
    for b, p in enumerate(pts):
        out[b] = [complex(v).real if abs(complex(v).imag) == 0 else np.nan for v in fn(*p)]
    return out.reshape(pts.shape[0], *(n,) * (3 if what == "christoffel" else 4))


def assert_symbolic_matches_autodiff(
    metric: Any,
    points: Any = None,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    quantities: Sequence[str] = ("christoffel", "ricci", "scalar"),
    backend: str = "numpy",
) -> None:
    r"""Assert that exact (sympy) curvature equals torch-autodiff curvature at ``points``.

    ``metric`` is a :class:`SymbolicMetricSample` (``points`` default: its
    own) or a :class:`~lnegeom.symbolic.SymbolicMetric` (``points[B, n]``
    required).  The symbolic side is the path under test: Γ^k_ij from
    ``christoffel()`` (and R^l_ijk from ``riemann()`` if asked) through
    ``sympy.lambdify``, Ric_jk and R through ``SymbolicMetric.lambdify``
    (``backend`` "numpy" or "torch").  The reference is a
    :class:`~lnegeom.metric.MetricField` of the *same matrix* lambdified by
    sympy alone, differentiated by torch autodiff in float64 — it does not
    use :mod:`lnegeom.symbolic`.  Layouts: those of :mod:`lnegeom.curvature`
    (``christoffel[k, i, j]`` = Γ^k_ij, docs/math.md §1).

    A component passes if |symbolic − autodiff| ≤ atol + rtol · scale(x),
    with scale the size of the terms summed into the quantity at x (as in
    the module docstring, with G = max|Γ|, g⁻¹ = max|g⁻¹|, ∂g = max|∂g|,
    ∂²g = max|∂²g|): n·g⁻¹·∂g + G for Γ, T = n(g⁻¹ ∂²g + g⁻¹ ∂g G + G²)
    plus max|Rm| for Riemann, n·T + max|Ric| for Ricci, n²·g⁻¹·(n·T) + |R| for R,
    each times the condition number n·max|g|·max|g⁻¹| (round-off of the
    symbolic inverse).  Observed float64 differences on random draws are
    ≤ 1e-13 · scale, so the default ``rtol = 1e-8`` has a wide margin while
    an error in a formula (relative size ~1) is far outside it.

    Raises ``AssertionError`` naming the metric (its exact ``repr``), the
    quantity, the component, the point and both values, for the worst
    component of each failing quantity; also when the symbolic path raises
    or leaves symbols other than the coordinates.  When ``SymbolicMetric``
    refuses the metric (a ``MetricError`` while computing the exact results)
    the ``AssertionError`` is a :class:`SymbolicRefusal`, which a test may
    catch to tell "no answer" from a wrong one.  A non-finite *reference*
    (points outside the metric's domain) raises ``ValueError``.

    Example
    -------
    >>> s = SymbolicMetricSample.parse("Matrix([[1, 0], [0, cosh(x0)**2]])")   # hyperbolic plane
    >>> assert_symbolic_matches_autodiff(s)
    """
    from ..symbolic import SymbolicMetric

    bad = [q for q in quantities if q not in _QUANTITIES]
    if bad or not quantities:
        raise ValueError(f"quantities must be a non-empty subset of {_QUANTITIES}, got {tuple(quantities)!r}")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    make: Callable[[], Any]
    if isinstance(metric, SymbolicMetricSample):
        label = repr(metric)
        make = metric.symbolic
        if points is None:
            points = metric.points
    elif isinstance(metric, SymbolicMetric):
        if points is None:
            raise TypeError("points are required when a SymbolicMetric (not a SymbolicMetricSample) is given")
        label = f"{metric!r} with matrix {metric.matrix}"
        make = lambda: metric  # noqa: E731
    else:
        raise TypeError(f"metric must be a SymbolicMetricSample or a SymbolicMetric, got {type(metric).__name__}")
    coords = metric.coords
    n = len(coords)
    pts = np.asarray(to_numpy(points), dtype=np.float64).reshape(-1, n)

    # reference: torch autodiff of the lambdified entries
    import torch

    ref_field = MetricField(lambdified_matrix(coords, metric.matrix, "torch"), n, check=False, name=label)
    g, dg, d2g = ref_field.derivatives(torch.as_tensor(pts, dtype=torch.float64))
    ref = curvature_from_derivatives(g, dg, d2g, check=False)
    ref_vals = {"christoffel": _np(ref.christoffel), "riemann": _np(ref.riemann),
                "ricci": _np(ref.ricci), "scalar": _np(ref.scalar)}
    for q in quantities:
        v = ref_vals[q].reshape(pts.shape[0], -1)
        if not np.all(np.isfinite(v)):
            b = int(np.argmin(np.all(np.isfinite(v), axis=1)))
            raise ValueError(f"the autodiff reference {_QUANTITY_TEXT[q][0]} is not finite at x = {pts[b].tolist()}: "
                             f"the points are outside the domain of {label}")

    # the path under test: first the exact results (a MetricError here is the engine refusing the
    # metric), then their numeric evaluation (any error here is a failure of the results)
    from ..curvature import MetricError

    sym_vals: dict = {}
    stage = "building the SymbolicMetric"
    try:
        sm = make()
        for q in quantities:
            stage = f"computing its {_QUANTITY_TEXT[q][0]}"
            {"christoffel": sm.christoffel, "riemann": sm.riemann, "ricci": sm.ricci, "scalar": sm.scalar}[q]()
    except MetricError as exc:
        raise SymbolicRefusal(
            f"lnegeom.symbolic refused the metric ({stage}): {exc}\n  metric: {label}"
        ) from exc
    except Exception as exc:
        raise AssertionError(
            f"symbolic path (lnegeom.symbolic) failed {stage}: {type(exc).__name__}: {exc}\n  metric: {label}"
        ) from exc
    try:
        with np.errstate(all="ignore"):
            for q in quantities:
                stage = f"evaluating its {_QUANTITY_TEXT[q][0]}"
                sym_vals[q] = _symbolic_values(sm, q, pts, backend)
    except Exception as exc:
        raise AssertionError(
            f"symbolic path (lnegeom.symbolic) failed {stage}: {type(exc).__name__}: {exc}\n  metric: {label}"
        ) from exc

    # tolerance scales per point
    B = pts.shape[0]
    g_np, gi = _np(ref.g).reshape(B, -1), _np(ref.g_inv).reshape(B, -1)
    mg, mgi = np.abs(g_np).max(axis=1), np.abs(gi).max(axis=1)
    md1 = np.abs(_np(dg).reshape(B, -1)).max(axis=1)
    md2 = np.abs(_np(d2g).reshape(B, -1)).max(axis=1)

    def size(q: str) -> np.ndarray:
        a = np.abs(ref_vals[q].reshape(B, -1))
        s = np.abs(np.nan_to_num(sym_vals[q].reshape(B, -1), nan=0.0, posinf=0.0, neginf=0.0))
        return np.maximum(a.max(axis=1), s.max(axis=1))

    big_g = np.maximum(np.abs(ref_vals["christoffel"].reshape(B, -1)).max(axis=1),
                       size("christoffel") if "christoffel" in sym_vals else 0.0)
    t = n * (mgi * md2 + mgi * md1 * big_g + big_g**2)
    cond = n * mg * mgi
    scales = {
        "christoffel": n * mgi * md1 + big_g,
        "riemann": t + np.abs(ref_vals["riemann"].reshape(B, -1)).max(axis=1),
        "ricci": n * t + np.abs(ref_vals["ricci"].reshape(B, -1)).max(axis=1),
        "scalar": n**2 * mgi * n * t + np.abs(ref_vals["scalar"].reshape(B, -1)).max(axis=1),
    }
    failures = []
    for q in quantities:
        s_v = sym_vals[q].reshape(B, -1)
        r_v = ref_vals[q].reshape(B, -1)
        if s_v.shape != r_v.shape:
            failures.append(f"{_QUANTITY_TEXT[q][0]}: symbolic shape {sym_vals[q].shape[1:]} "
                            f"!= autodiff shape {ref_vals[q].shape[1:]}")
            continue
        scale = np.maximum(scales[q], size(q)) * cond
        tol = atol + rtol * scale
        diff = np.abs(s_v - r_v)
        diff = np.where(np.isfinite(diff), diff, np.inf)
        bad = ~(diff <= tol[:, None])
        if not bad.any():
            continue
        ratio = np.where(bad, diff / np.where(tol > 0, tol, 1e-300)[:, None], -1.0)
        b, flat = (int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
        name, idx_names = _QUANTITY_TEXT[q]
        shape = ref_vals[q].shape[1:]
        comp = f" component ({idx_names}) = {tuple(int(i) for i in np.unravel_index(flat, shape))}" if shape else ""
        where = "x = [" + ", ".join(f"{v:.17g}" for v in pts[b]) + "]"
        failures.append(
            f"{name}{comp} at {where}: symbolic = {float(s_v[b, flat]):.17g}, autodiff = {float(r_v[b, flat]):.17g}, "
            f"|difference| = {diff[b, flat]:.3e} > tolerance {tol[b]:.3e} "
            f"(= atol {atol:.1e} + rtol {rtol:.1e} * scale {scale[b]:.3e}); "
            f"{int(bad.any(axis=1).sum())} of {B} point(s) fail"
        )
    if failures:
        head = "symbolic curvature (lnegeom.symbolic) disagrees with torch autodiff"
        raise AssertionError(head + ":\n" + "\n".join(f"  - {f}" for f in failures) + f"\n  metric: {label}")
