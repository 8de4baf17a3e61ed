r"""The discrete Ricci flow of the paper's Algorithm 2 in O(n·m²) (docs/math.md §4; P-32 … P-36).

Every matrix of Algorithm 2 is, up to identities that cancel, a combination
Σ_a c_a v_a v_aᵀ of m outer products (m ≤ 6), possibly plus a diagonal D, so
its squared Frobenius norm needs only the m×m Gram matrix K_ab = v_a·v_b:

    ‖D + Σ_a c_a v_a v_aᵀ‖²_F = Σ_i D_i² + 2 Σ_a c_a Σ_i D_i v_{a,i}² + Σ_{a,b} c_a c_b K_ab²,

and the squared norm of row i (the element-wise variant of the gate) is

    N_i = D_i² + 2 D_i Σ_a c_a v_{a,i}² + Σ_{a,b} c_a c_b v_{a,i} v_{b,i} K_ab,   Σ_i N_i = N,

both O(n·m²) per group and never an n×n matrix (:func:`gram_norms`).

Precision.  The terms of R are of size s while N can be 10⁻⁹: summed as
written, float32 loses every digit (N came out 0 or negative).  Since the
coefficients sum to zero, :func:`flow_residual` writes t_a = r + δ_a with
r = t_prev and δ_a = tanh(x_a) − tanh(x_prev) = tanh(x_a − x_prev)(1 − t_a r)
(no cancellation), so R = r eᵀ + e rᵀ + Σ_a c_a δ_a δ_aᵀ, e = Σ_a c_a δ_a —
every term as small as R itself — and uses the symmetric form
(:func:`sym_gram_norms`, tr(C K C K) with a non-diagonal C).

The residual (:func:`flow_residual`).  With g|a = I − t_a t_aᵀ, t_a = tanh(τ w|a)
the metric at the tentative weights w|a of translation a ∈ {k1, k2, j1, j2}:

* ``proxy="paper"`` (P-32): P = (g|k1 − g|k2)/(k1 − k2) − (g|j1 − g|j2)/(j1 − j2),
  a finite-difference *proxy*, not the Ricci tensor of g;
* ``proxy="ricci"``: P = −2 η Ric(g_prev), the closed-form Ricci tensor
  (docs/math.md §2, diagonal + rank one, τ-scaled: Ric_τ(w) = τ² Ric_1(τ w)) of the
  previous metric — one explicit Ricci-flow step of size η;

and the flow equation g(t+1)|k1 − g(t)|k1 = P (P-33, P-34) read along the
actual weight trajectory (docs/math.md §4): g(t)|k1 = I − t_prev t_prevᵀ from the
previous step's tentative weights (kept as the vector x_prev = τ w|k1; at the
first step the weights themselves, g(0) = I − t tᵀ), g(t+1)|k1 from this
step's.  The regulariser (P-35) is the squared residual

    N = ‖(g(t+1)|k1 − g(t)|k1) − P‖²_F,
    R = −t_k1 t_k1ᵀ + t_prev t_prevᵀ − P.

Read literally — g(t+1) *defined* by P-33 — N ≡ 0; along the trajectory it is
not (tested).  With k1 − k2 = 1 the coefficient of t_k1 t_k1ᵀ in R is
−1 + 1/(k1 − k2) = 0: that translation then enters only through g(t+1).

The gate (P-36): ``"group"`` passes a whole group iff N ≤ ε (the paper);
``"element"`` passes weight i iff N_i ≤ ε/n (so all pass ⇒ N ≤ ε), since a
per-layer gate can stall a whole layer; ``"off"`` always passes.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from lnegeom.lne import LNEMetric

__all__ = ["gram_norms", "sym_gram_norms", "flow_residual", "gate", "GATES", "PROXIES", "check_shifts", "NAMED_SHIFTS"]

GATES = ("group", "element", "off")
PROXIES = ("paper", "ricci")
_UNIT = LNEMetric(1.0, check=False)


def gram_norms(
    c: torch.Tensor, v: torch.Tensor, diag: Optional[torch.Tensor] = None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Squared Frobenius norm and squared row norms of D + Σ_a c_a v_a v_aᵀ per group (module docstring).

    ``c[G, m]``, ``v[G, m, n]``, ``diag[G, n]`` or ``None`` → ``(N[G], N_rows[G, n])``.
    Differentiable (plain torch), O(G·n·m²).  The diagonal case of :func:`sym_gram_norms`.
    """
    total, rows = sym_gram_norms(torch.diag_embed(c), v, diag)
    assert rows is not None  # rows=True
    return total, rows


def sym_gram_norms(
    c: torch.Tensor, v: torch.Tensor, diag: Optional[torch.Tensor] = None, *, rows: bool = True
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    r"""The same for S = D + Σ_{a,b} C_ab v_a v_bᵀ with a symmetric ``c[G, m, m]``.

    With the Gram matrix K = V Vᵀ (m×m): ‖S − D‖²_F = tr(C K C K), row i of
    S − D has squared norm v_iᵀ (C K C) v_i (v_i ∈ ℝᵐ the i-th entries), and the
    diagonal enters through S_ii = v_iᵀ C v_i:  ‖S‖² = ‖S − D‖² + Σ D_i² + 2 Σ D_i (S − D)_ii.
    ``rows=False`` skips the row norms (returned as ``None``).
    """
    k = v @ v.transpose(-1, -2)  # [G, m, m]
    ck = c @ k
    total = (ck * ck.transpose(-1, -2)).sum((-1, -2))
    out_rows = torch.einsum("gai,gab,gbi->gi", v, ck @ c, v) if rows else None
    if diag is not None:
        sii = torch.einsum("gai,gab,gbi->gi", v, c, v)
        if out_rows is not None:
            out_rows = out_rows + diag * diag + 2.0 * diag * sii
        total = total + (diag * diag).sum(-1) + 2.0 * (diag * sii).sum(-1)
    return total, out_rows


#: named translation sets: ``"central"`` (the default; 5 passes a step) and ``"forward"``
#: (one-sided differences; a zero translation reuses the main pass, so 3 passes a step)
NAMED_SHIFTS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "central": ((1, -1), (1, -1)),
    "forward": ((1, 0), (1, 0)),
}


def check_shifts(shifts: Union[str, Sequence[Sequence[int]]]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Validate ``((k1, k2), (j1, j2))``: integers with 0 < |k1 − k2| < 4 and 0 < |j1 − j2| < 4 (the paper);
    or a name of :data:`NAMED_SHIFTS`."""
    if isinstance(shifts, str):
        if shifts not in NAMED_SHIFTS:
            raise ValueError(f"unknown shifts {shifts!r}; the named ones are {sorted(NAMED_SHIFTS)} "
                             f"(or give ((k1, k2), (j1, j2)))")
        return NAMED_SHIFTS[shifts]
    try:
        (k1, k2), (j1, j2) = shifts
    except (TypeError, ValueError):
        raise ValueError(f"shifts must be ((k1, k2), (j1, j2)), got shifts={shifts!r}") from None
    vals = (k1, k2, j1, j2)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in vals):
        raise ValueError(f"shifts must be integers (pixels), got shifts={shifts!r}")
    for what, a, b in (("k1 - k2", k1, k2), ("j1 - j2", j1, j2)):
        if not 0 < abs(a - b) < 4:
            raise ValueError(
                f"shifts={shifts!r}: {what} = {a - b}; the paper's proxy (P-32) divides by it and "
                f"takes translations fewer than 4 pixels apart: use 0 < |{what}| < 4"
            )
    return (k1, k2), (j1, j2)


def flow_residual(
    x: dict[str, torch.Tensor],
    x_prev: torch.Tensor,
    tau: torch.Tensor,
    shifts: tuple[tuple[int, int], tuple[int, int]],
    *,
    proxy: str = "paper",
    flow_eta: float = 0.01,
    rows: bool = True,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    r"""N and the row norms N_i of the flow residual R (module docstring), per group.

    ``x`` maps ``"k1", "k2", "j1", "j2"`` to τ·w|a (``[G, n]``, this step's
    tentative weights times the group's τ); ``x_prev`` is τ·w|k1 of the
    previous step (``[G, n]``); ``tau[G]`` the groups' τ (for the τ-scaled
    Ricci tensor).  Differentiable in every input.  ``rows=False``: N only.
    """
    (k1, k2), (j1, j2) = shifts
    r = torch.tanh(x_prev)

    def delta(xa: torch.Tensor) -> torch.Tensor:  # tanh(x_a) − tanh(x_prev), without cancellation
        return torch.tanh(xa - x_prev) * (1.0 - torch.tanh(xa) * r)

    if proxy == "paper":
        ck, cj = 1.0 / (k1 - k2), 1.0 / (j1 - j2)
        coef = torch.tensor([-1.0 + ck, -ck, -cj, cj], dtype=r.dtype, device=r.device)
        d = torch.stack([delta(x[k]) for k in ("k1", "k2", "j1", "j2")], 1)  # [G, 4, n]
        e = (coef[None, :, None] * d).sum(1)
        c = torch.zeros(6, 6, dtype=r.dtype, device=r.device)
        c[0, 1] = c[1, 0] = 1.0
        c[2:, 2:] = torch.diag(coef)
        return sym_gram_norms(c.expand(r.shape[0], 6, 6), torch.cat([r[:, None], e[:, None], d], 1), rows=rows)
    if proxy == "ricci":
        # −P = 2η Ric_τ(w_prev) = 2η τ² (diag(a) + β u uᵀ) at x_prev (Ric_1 parts of LNEMetric(1))
        a, beta, u = _UNIT.ricci_parts(x_prev)
        scale = 2.0 * flow_eta * tau * tau
        c = torch.zeros(r.shape[0], 3, 3, dtype=r.dtype, device=r.device)
        c[:, 0, 1] = c[:, 1, 0] = c[:, 1, 1] = -1.0
        c[:, 2, 2] = scale * beta
        v = torch.stack([r, delta(x["k1"]), u], 1)
        return sym_gram_norms(c, v, diag=scale[:, None] * a, rows=rows)
    raise ValueError(f"unknown proxy {proxy!r}; the proxies are {list(PROXIES)}")


def gate(n_total: torch.Tensor, n_rows: Optional[torch.Tensor], eps, kind: str) -> torch.Tensor:
    """The pass mask of P-36, ``[G, 1]`` (``"group"``) or ``[G, n]`` (``"element"``), in {0, 1};
    ``eps`` is a number or a per-group tensor ``[G]``."""
    if kind == "off":
        return torch.ones_like(n_total)[:, None]
    if kind == "group":
        return (n_total <= eps).to(n_total.dtype)[:, None]
    if kind == "element":
        if n_rows is None:
            raise ValueError("the 'element' gate needs the row norms n_rows (flow_residual(..., rows=True))")
        eps = eps[:, None] if isinstance(eps, torch.Tensor) else eps
        return (n_rows <= eps / n_rows.shape[-1]).to(n_rows.dtype)
    raise ValueError(f"unknown gate {kind!r}; the gates are {list(GATES)}")
