r"""The array layouts of the project and the one packing of symmetric tensors.

Two layouts of the same field, numpy or torch alike (array API, :mod:`lnegeom._array`):

* **components last** (the user-facing layout of :mod:`lnegeom.curvature`, :mod:`lnegeom.domains` and
  :func:`lnegeom.flow.solve_flow`): the batch or grid axes first, then the tensor indices,
  ``g[*grid, i, j]``;
* **components first** (the layout of the flow's inner loop, ``layout="batch-last"`` of
  :func:`~lnegeom.curvature.ricci_from_derivatives`): ``g[i, j, *grid]``, so that every pointwise
  contraction runs over contiguous rows.

:func:`components_first` and :func:`components_last` convert between them (views, no copies).

A symmetric n×n tensor has n(n+1)/2 independent components g_ij, i ≤ j, taken in
``numpy.triu_indices`` order (g_00, g_01, …, g_11, …): :class:`SymmetricPacking` packs and unpacks
them along any axis pair, the spectral flow state and the packed unknowns of
:meth:`lnegeom.domains.Domain.pack` alike.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from array_api_compat import device as _device

from ._array import array_namespace

__all__ = ["components_first", "components_last", "SymmetricPacking", "packing"]


def components_first(x: Any, k: int) -> Any:
    """Move the last ``k`` axes (tensor components) to the front: ``[*grid, i, j]`` → ``[i, j, *grid]``."""
    xp = array_namespace(x)
    for _ in range(k):
        x = xp.moveaxis(x, -1, 0)
    return x


def components_last(x: Any, k: int) -> Any:
    """Inverse of :func:`components_first`: ``[i, j, *grid]`` → ``[*grid, i, j]``."""
    xp = array_namespace(x)
    for _ in range(k):
        x = xp.moveaxis(x, 0, -1)
    return x


class SymmetricPacking:
    """The n(n+1)/2 components g_ij, i ≤ j (``numpy.triu_indices`` order), of symmetric tensors.

    Attributes
    ----------
    n:
        The dimension.
    pairs:
        The packed components (i, j), i ≤ j, in order.
    weights:
        The weight of each packed component in a mean over all n² entries (1/n² on the diagonal,
        2/n² off it).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        rows, cols = np.triu_indices(n)
        self.upper = [int(i * n + j) for i, j in zip(rows, cols)]
        pos = {(int(i), int(j)): q for q, (i, j) in enumerate(zip(rows, cols))}
        self.full = [pos[(min(i, j), max(i, j))] for i in range(n) for j in range(n)]
        self.pairs = list(zip(rows.tolist(), cols.tolist()))
        self.weights = np.array([1.0 if i == j else 2.0 for i, j in self.pairs]) / n**2
        self._cache: dict = {}

    @property
    def size(self) -> int:
        """n(n+1)/2."""
        return len(self.pairs)

    def _index(self, which: str, like: Any) -> Any:
        """The index list ``which`` as an integer array of the namespace and device of ``like`` (cached)."""
        key = (which, type(like), str(_device(like)))
        if key not in self._cache:
            self._cache[key] = array_namespace(like).asarray(getattr(self, which), device=_device(like))
        return self._cache[key]

    def pack(self, u: Any, axis: int = 0) -> Any:
        """``u[..., n, n, ...]`` (the component axes at ``axis`` and ``axis + 1``; negative counts from
        the end) → ``[..., s, ...]`` (a copy)."""
        xp = array_namespace(u)
        shp = tuple(u.shape)
        if axis < 0:
            axis += len(shp)
        flat = xp.reshape(u, shp[:axis] + (self.n * self.n,) + shp[axis + 2:])
        return xp.take(flat, self._index("upper", u), axis=axis)

    def unpack(self, v: Any, axis: int = 0) -> Any:
        """Inverse of :meth:`pack`: the symmetric ``[..., n, n, ...]`` from ``v[..., s, ...]`` (a copy)."""
        xp = array_namespace(v)
        if axis < 0:
            axis += v.ndim
        full = xp.take(v, self._index("full", v), axis=axis)
        shp = tuple(full.shape)
        return xp.reshape(full, shp[:axis] + (self.n, self.n) + shp[axis + 1:])


@lru_cache(maxsize=None)
def packing(n: int) -> SymmetricPacking:
    """The :class:`SymmetricPacking` of dimension ``n`` (one shared instance per n)."""
    return SymmetricPacking(n)
