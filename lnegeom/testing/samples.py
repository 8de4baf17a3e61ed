r"""The data object of :func:`lnegeom.testing.symbolic_metrics`: a sympy metric with a box where it is non-degenerate.

:class:`SymbolicMetricSample` and :func:`lambdified_matrix`, the reference
path of :func:`lnegeom.testing.assert_symbolic_matches_autodiff` (the
matrix's entries through ``sympy.lambdify`` only, without
:mod:`lnegeom.symbolic`).  sympy is imported on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..fields import symmetric_part
from ..metric import MetricField

__all__ = ["SymbolicMetricSample", "lambdified_matrix", "SIGNATURES"]

#: the signatures of a sample: g positive definite, or of signature (−, +, …, +)
SIGNATURES = ("riemannian", "lorentzian")
_MAX_PARSE_DIM = 10


@dataclass(frozen=True, eq=False, repr=False)
class SymbolicMetricSample:
    r"""A metric given by a sympy matrix, with a box of coordinates where it is non-degenerate.

    ``coords`` (sympy Symbols x⁰..xⁿ⁻¹), ``matrix`` (a symmetric
    ``sympy.ImmutableMatrix`` g_ij(x)), ``signature`` (``"riemannian"``: g
    positive definite; ``"lorentzian"``: signature (−, +, …, +), the
    coordinate x⁰ timelike), ``box`` (one ``(low, high)`` pair per coordinate:
    every entry is defined and smooth on the box) and ``points`` (points of
    the box, ``[count, n]``, at which tests evaluate curvature; by default
    four fixed points).  Drawn by :func:`symbolic_metrics`; check with
    :func:`assert_symbolic_matches_autodiff`.

    :meth:`symbolic` gives the :class:`~lnegeom.symbolic.SymbolicMetric`
    (the path under test), :meth:`field` a torch-autodiff
    :class:`~lnegeom.metric.MetricField` of the *same* matrix built without
    :mod:`lnegeom.symbolic` (``sympy.lambdify`` of the entries only: the
    reference), :meth:`evaluate` the matrix with numpy.  The ``repr`` is
    exact and can be pasted back into Python (with
    ``from lnegeom.testing import SymbolicMetricSample``) to reproduce a
    falsifying example.

    Example
    -------
    >>> s = SymbolicMetricSample.parse("Matrix([[exp(sin(x0)), 0], [0, exp(sin(x0))]])")
    >>> s.n, s.signature, s.box
    (2, 'riemannian', ((-1.0, 1.0), (-1.0, 1.0)))
    >>> print(s.nondegeneracy_problem())
    None
    >>> s.evaluate([0.0, 0.0])
    array([[1., 0.],
           [0., 1.]])
    """

    coords: Any
    matrix: Any
    signature: str = "riemannian"
    box: Any = None
    points: Any = None

    def __post_init__(self) -> None:
        import sympy as sp
        coords = (self.coords,) if isinstance(self.coords, sp.Symbol) else tuple(self.coords)
        if not all(isinstance(c, sp.Symbol) for c in coords) or len(set(coords)) != len(coords):
            raise ValueError(f"coords must be distinct sympy Symbols, got {self.coords!r}")
        n = len(coords)
        matrix = sp.ImmutableMatrix(self.matrix)
        if matrix.shape != (n, n):
            raise ValueError(f"{n} coordinates but a matrix of shape {matrix.shape}")
        extra = matrix.free_symbols - set(coords)
        if extra:
            raise ValueError(f"the matrix contains symbols {sorted(map(str, extra))} that are not coordinates")
        if self.signature not in SIGNATURES:
            raise ValueError(f"signature must be one of {SIGNATURES}, got {self.signature!r}")
        box = ((-1.0, 1.0),) * n if self.box is None else tuple((float(lo), float(hi)) for lo, hi in self.box)
        if len(box) != n or not all(lo < hi for lo, hi in box):
            raise ValueError(f"box must give n = {n} pairs (low, high) with low < high, got {self.box!r}")
        if self.points is None:
            lo, hi = np.array(box).T
            frac = 0.1 + 0.8 * np.random.default_rng(0).random((4, n))
            pts = lo + (hi - lo) * frac
        else:
            pts = np.asarray(self.points, dtype=np.float64).reshape(-1, n)
        lo, hi = np.array(box).T
        if pts.shape[0] < 1 or not np.all((pts >= lo) & (pts <= hi)):
            raise ValueError(f"points must be a non-empty [count, {n}] array inside the box {box}")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "points", tuple(tuple(float(v) for v in p) for p in pts))

    @classmethod
    def parse(
        cls, matrix: str, coords: Union[str, Sequence[str], None] = None, **kw: Any
    ) -> "SymbolicMetricSample":
        """Build a sample from the text of a sympy matrix, e.g. ``"Matrix([[1, 0], [0, exp(x0)]])"``.

        ``coords``: the coordinate names (a string ``"x y"`` or a sequence);
        default ``x0, x1, ...`` up to the size of the matrix.  All coordinates
        are real sympy Symbols.  Other keywords go to the constructor.
        """
        import sympy as sp
        if coords is None:
            names = [f"x{i}" for i in range(_MAX_PARSE_DIM)]
        else:
            names = coords.replace(",", " ").split() if isinstance(coords, str) else list(coords)
        syms = [sp.Symbol(s, real=True) for s in names]
        m = sp.Matrix(sp.sympify(matrix, locals={s.name: s for s in syms}))
        if coords is None:
            syms = syms[: m.rows]
        return cls(tuple(syms), m, **kw)

    # ---------------------------------------------------------------- facts
    @property
    def n(self) -> int:
        """Dimension."""
        return len(self.coords)

    def __repr__(self) -> str:
        names = " ".join(c.name for c in self.coords)
        return (
            f"SymbolicMetricSample.parse({str(self.matrix)!r}, coords={names!r}, "
            f"signature={self.signature!r}, box={self.box!r}, points={self.points!r})"
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # hypothesis prints falsifying examples with this
        p.text(repr(self))

    # ------------------------------------------------------------ evaluation
    def symbolic(self, **kw: Any) -> Any:
        """The :class:`~lnegeom.symbolic.SymbolicMetric` of the matrix (keywords go to it)."""
        from ..symbolic import SymbolicMetric

        kw.setdefault("name", "SymbolicMetricSample")
        return SymbolicMetric(self.coords, self.matrix, **kw)

    def evaluate(self, x: Any) -> np.ndarray:
        """g at points ``x[..., n]`` with numpy (``sympy.lambdify`` of the entries) -> ``[..., n, n]``."""
        return lambdified_matrix(self.coords, self.matrix, "numpy")(x)

    def torch_fn(self) -> Callable:
        """One point ``x[n]`` -> ``g[n, n]`` with torch ops (vmap/jacfwd safe), built from the entries only."""
        return lambdified_matrix(self.coords, self.matrix, "torch")

    def field(self, **kw: Any) -> MetricField:
        """Torch-autodiff :class:`~lnegeom.metric.MetricField` of the matrix (the reference path).

        The positivity check of the field is off for Lorentzian samples.
        """
        kw.setdefault("check", self.signature == "riemannian")
        kw.setdefault("name", repr(self))
        return MetricField(self.torch_fn(), self.n, backend="torch", **kw)

    def nondegeneracy_problem(
        self, *, max_cond: float = 1e4, min_abs_eig: float = 1e-3, grid: int = 3
    ) -> Optional[str]:
        """``None`` if g is finite, non-degenerate and of the right signature at the sample points
        and on a ``grid``ⁿ grid of the box (corners included), with
        min |λ| ≥ ``min_abs_eig`` and cond(g) = max |λ| / min |λ| ≤ ``max_cond``;
        otherwise a sentence naming the first bad point.
        """
        axes = [np.linspace(lo, hi, grid) for lo, hi in self.box]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.n)
        x = np.concatenate([np.asarray(self.points), mesh])
        with np.errstate(all="ignore"):
            try:
                g = self.evaluate(x)
            except Exception as exc:  # e.g. a complex value
                return f"the matrix cannot be evaluated on the box: {type(exc).__name__}: {exc}"
        want_neg = 1 if self.signature == "lorentzian" else 0
        for p, gp in zip(x, g):
            where = "x = [" + ", ".join(f"{v:.6g}" for v in p) + "]"
            if not np.all(np.isfinite(gp)):
                return f"g is not finite at {where}"
            lam = np.linalg.eigvalsh(symmetric_part(gp))
            a = np.abs(lam)
            if int(np.sum(lam < 0)) != want_neg:
                return f"g has eigenvalues {lam} at {where}, not of {self.signature} signature"
            if a.min() < min_abs_eig or a.max() > max_cond * a.min():
                cond = a.max() / a.min() if a.min() > 0 else math.inf
                return f"g is nearly degenerate at {where}: eigenvalues {lam} (cond {cond:.3g})"
        return None


def lambdified_matrix(coords: Sequence[Any], matrix: Any, backend: str) -> Callable:
    """x -> g(x) from ``sympy.lambdify`` of the entries: numpy ``x[..., n] -> [..., n, n]``,
    torch one point ``x[n] -> [n, n]`` (constants take x's dtype)."""
    import sympy as sp
    n = len(coords)
    entries = [_numeric_atoms_to_floats(matrix[i, j]) for i in range(n) for j in range(n)]
    raw = sp.lambdify(list(coords), entries, modules=backend)
    if backend == "torch":
        import torch

        def fn_t(x: Any) -> Any:
            args = [x[i] for i in range(n)]
            zero = torch.zeros_like(args[0])
            return torch.stack([zero + v for v in raw(*args)]).reshape(n, n)

        return fn_t

    def fn_np(x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        base = np.zeros(x.shape[:-1])
        vals = [np.asarray(v, dtype=np.float64) + base for v in raw(*(x[..., i] for i in range(n)))]
        return np.stack(vals, axis=-1).reshape(*x.shape[:-1], n, n)

    return fn_np


def _numeric_atoms_to_floats(expr: Any) -> Any:
    """Constant subexpressions such as sqrt(2), log(3), exp(1/2) as 20-digit Floats: the torch
    printer would emit ``torch.sqrt(2)``, which fails on a Python int."""
    import sympy as sp
    expr = sp.sympify(expr)
    consts = {a: sp.Float(a.evalf(20), 20) for a in expr.atoms(sp.Function, sp.Pow, sp.NumberSymbol)
              if a.is_number and not a.is_Rational}
    return expr.xreplace(consts) if consts else expr

