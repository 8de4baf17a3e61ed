r"""The paper's *strong approximation* of g⁻¹ (P-28; docs/math.md §2) as an LNE-gradient mode.

The LNE metric of one group is g = I − t tᵀ, t = tanh(τ w) ∈ ℝⁿ, s = |t|² < 1,
with the exact inverse (Sherman–Morrison) g⁻¹ = I + t tᵀ/(1 − s).  The paper's
P-28 replaces g⁻¹ by a learned matrix: a small MLP whose n(n + 1)/2 outputs
fill the diagonal and the strictly lower triangle of a **symmetric** matrix G
(mirrored to the upper triangle), trained to minimise

    L = ‖I − g G‖²_F,

so that G ≈ g⁻¹ and the transformed gradient is G v.

Parametrisation (:class:`StrongInverse`).  g depends on the weights only
through t, so the MLP's input is t, together with the scalar s = |t|² computed
from it.  Its packed output r ∈ ℝ^{n(n+1)/2} enters as

    G = I + sym((1 + r) ∘ tri(t tᵀ)),

where tri(·) packs the diagonal and strict lower triangle, ∘ is the entrywise
product and sym(·) mirrors the lower triangle to the upper one.  The last
layer starts at zero, so training starts *at the paper's weak approximation*
P-29 (G = I + t tᵀ, r = 0) and learns an entrywise correction; the exact
inverse is r_ij = s/(1 − s) for every entry.  Why this and not a plain MLP
t ↦ G: the target's off-diagonal part t_i t_j/(1 − s) is a product of inputs
times a function with a pole at s = 1, which a ReLU/SiLU MLP of modest width
does not represent well — measured at n = 16 with the same budget (1000 Adam
steps, s ≤ 0.9), a plain MLP (G = I + MLP(t), or with t tᵀ fed as features)
ends at about 25 % mean relative error; this one, after the cache's 600
steps, at 0.1–0.6 % for s uniform in [0, 0.5] and 0.6–1.6 % for s uniform
in [0, 0.9] (n = 1…64; at exactly s = 0.9 it is 0.7–6.5 %).  The price is an
inductive bias: G − I is entrywise proportional to t tᵀ (diagonal
included), which the exact inverse satisfies.  Each entry still has its own
learned output, so the network is P-28's MLP filling the triangle.

Training (:meth:`StrongInverse.fit`): Adam with a cosine learning-rate decay
on random t — a uniformly random direction scaled to s drawn uniformly in
[0, s_max] — minimising the batch mean of L (evaluated in closed form,
:meth:`StrongInverse.loss`; equal to forming g densely).  Note that
L = ‖g (G − g⁻¹)‖²_F weights an error along t by the small eigenvalue 1 − s of
g, so accuracy degrades as s → 1 (see :meth:`StrongInverse.error`).

Why only small groups (:data:`MAX_N`): the MLP has n(n + 1)/2 outputs and G v
forms G, so time and memory are O(n²) per group, against O(n) for the
``exact`` and ``weak`` modes, and first-use training grows with n (about 6 s of
CPU at n = 64).  A group with n > MAX_N is refused with a ``ValueError``
before anything is trained.

Use as a mode (:class:`rfdnn_bridge.lne_grad.Strong`): :func:`strong_apply` maps
x = τ w and v of shape [G, n] (one metric per row) to G(t) v.
It evaluates a :class:`StrongInverse` from a module-level cache keyed by
(n, dtype, device), trained on first use with a fixed seed and
:data:`DEFAULT_STEPS` steps (always on the CPU in float32, then copied to the
requested dtype and device, so every dtype/device uses the same weights).
:func:`strong_error` reports the per-row relative error against the exact
inverse for diagnostics.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["MAX_N", "DEFAULT_STEPS", "StrongInverse", "strong_apply", "strong_error"]

#: Largest group size the strong approximation accepts: the MLP's output has
#: n(n + 1)/2 = 2080 entries at n = 64 and G v costs O(n²) per group.
MAX_N = 64
#: Training steps of the cached models (first use: n = 16 about 1.3 s of CPU, n = 64 about 6 s).
DEFAULT_STEPS = 600
_SEED = 0


class StrongInverse(torch.nn.Module):
    """P-28: an MLP t ↦ symmetric G ≈ g⁻¹ = (I − t tᵀ)⁻¹ for groups of size ``n`` (module docstring).

    ``hidden`` is the width of the two hidden layers; ``seed`` fixes the
    initial weights and the training samples (the global RNG is not touched).
    Inputs ``t`` have shape [B, n] with |t|² < 1.
    """

    def __init__(self, n: int, hidden: int = 64, *, seed: int = 0) -> None:
        super().__init__()
        if not 1 <= n <= MAX_N:
            raise ValueError(f"StrongInverse needs 1 <= n <= MAX_N = {MAX_N}, got n={n}")
        self.n = n
        self.seed = seed
        rows, cols = torch.tril_indices(n, n)
        slot = torch.empty(n, n, dtype=torch.long)  # slot[i, j] = packed index of (max(i,j), min(i,j))
        slot[rows, cols] = torch.arange(rows.numel())
        slot[cols, rows] = torch.arange(rows.numel())
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("slot", slot.reshape(-1), persistent=False)
        self.register_buffer("mult", torch.where(rows == cols, 1.0, 2.0), persistent=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.mlp = torch.nn.Sequential(
                torch.nn.Linear(n + 1, hidden),
                torch.nn.SiLU(),
                torch.nn.Linear(hidden, hidden),
                torch.nn.SiLU(),
                torch.nn.Linear(hidden, rows.numel()),
            )
        last = self.mlp[-1]
        torch.nn.init.zeros_(last.weight)  # r = 0: start at the weak approximation P-29
        torch.nn.init.zeros_(last.bias)

    def packed(self, t: torch.Tensor) -> torch.Tensor:
        """The packed triangle of R = G − I: (1 + r) ∘ tri(t tᵀ), shape [B, n(n + 1)/2]."""
        s = (t * t).sum(-1, keepdim=True)
        r = self.mlp(torch.cat([t, s], -1))
        return (1.0 + r) * (t.index_select(1, self.rows) * t.index_select(1, self.cols))

    def _full(self, packed: torch.Tensor) -> torch.Tensor:
        # entries (i, j) and (j, i) read the same packed slot: exactly symmetric
        return packed.index_select(1, self.slot).reshape(-1, self.n, self.n)

    def matrix(self, t: torch.Tensor) -> torch.Tensor:
        """G = I + sym((1 + r) ∘ tri(t tᵀ)), shape [B, n, n]; exactly symmetric."""
        return torch.eye(self.n, dtype=t.dtype, device=t.device) + self._full(self.packed(t))

    def apply(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """G v row by row, shape [B, n] (shadows ``nn.Module.apply``, which this model does not need)."""
        return (self.matrix(t) @ v.unsqueeze(-1)).squeeze(-1)

    def loss(self, t: torch.Tensor) -> torch.Tensor:
        """The P-28 objective: the batch mean of ‖I − g G‖²_F, g = I − t tᵀ.

        With G = I + R (R symmetric), u = R t and w = t + u,
        I − g G = −R + t wᵀ, so ‖I − g G‖²_F = ‖R‖²_F − 2 u·w + s |w|² —
        the same number as forming g and g G densely (checked in the tests),
        at O(n²) per row with a single n×n tensor instead of several.
        """
        packed = self.packed(t)
        u = (self._full(packed) * t.unsqueeze(-2)).sum(-1)
        w = t + u
        frob = (self.mult * packed * packed).sum(-1)
        return (frob - 2.0 * (u * w).sum(-1) + (t * t).sum(-1) * (w * w).sum(-1)).mean()

    def sample(self, batch: int, s_max: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``batch`` random t: uniform direction on the sphere, s = |t|² uniform in [0, ``s_max``]."""
        p = next(self.parameters())
        d = torch.randn(batch, self.n, generator=generator, dtype=p.dtype, device=p.device)
        d = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True)
        s = torch.rand(batch, 1, generator=generator, dtype=p.dtype, device=p.device) * s_max
        return d * s.sqrt()

    def fit(self, steps: int = DEFAULT_STEPS, batch: int = 256, s_max: float = 0.95, lr: float = 1e-2) -> float:
        """Train with Adam (cosine-decayed ``lr``) on fresh random t each step; returns the final batch loss.

        Samples come from a generator seeded with ``seed``, so two fresh
        models with the same arguments end with identical weights.  Training
        runs with one intra-op thread (restored afterwards): the tensors are
        tiny, so threads bring nothing, and on a busy machine they slowed the
        training tenfold; one thread also makes the rounding independent of
        the machine's thread count.
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got steps={steps!r}")
        if not 0.0 <= s_max < 1.0:
            raise ValueError(f"s_max must lie in [0, 1) (g is singular at s = 1), got s_max={s_max!r}")
        p = next(self.parameters())
        gen = torch.Generator(device=p.device).manual_seed(self.seed)
        opt = torch.optim.Adam(self.parameters(), lr=lr, foreach=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(steps):
                loss = self.loss(self.sample(batch, s_max, gen))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        finally:
            torch.set_num_threads(threads)
        return loss.item()

    def error(self, t: torch.Tensor) -> torch.Tensor:
        """Per-row relative error ‖G − g⁻¹‖_F / ‖g⁻¹‖_F against Sherman–Morrison, shape [B].

        The Frobenius form bounds the error of G v for every v
        (‖G v − g⁻¹ v‖ ≤ ‖G − g⁻¹‖_F ‖v‖) and does not depend on a choice of v.
        """
        s = (t * t).sum(-1)
        exact = torch.eye(self.n, dtype=t.dtype, device=t.device) + t.unsqueeze(-1) * t.unsqueeze(-2) / (
            1.0 - s
        )[:, None, None]
        diff = torch.linalg.matrix_norm(self.matrix(t) - exact)
        return diff / torch.linalg.matrix_norm(exact)


_CACHE: dict[tuple[int, torch.dtype, torch.device], StrongInverse] = {}


def _check_n(n: int, name: str) -> None:
    if n > MAX_N:
        raise ValueError(
            f"lne_transform(mode='strong'): parameter {name!r} has a group of n = {n} elements, but the "
            f"strong approximation (P-28) is limited to n <= MAX_N = {MAX_N} (its MLP has n(n+1)/2 outputs, "
            f"O(n^2) time and memory); use mode='exact' or mode='weak', or group='channel' to make smaller groups"
        )


def _model(n: int, dtype: torch.dtype, device: torch.device) -> StrongInverse:
    """The cached trained model for (n, dtype, device), trained on first use (module docstring)."""
    key = (n, dtype, device)
    if key not in _CACHE:
        # callers may be under no_grad or inference_mode: build normal, trainable tensors
        with torch.inference_mode(False), torch.enable_grad():
            base = (n, torch.float32, torch.device("cpu"))
            if base not in _CACHE:
                model = StrongInverse(n, seed=_SEED)
                model.fit()
                _CACHE[base] = model.eval().requires_grad_(False)
            if key != base:
                copy = StrongInverse(n, seed=_SEED).to(dtype=dtype, device=device)
                copy.load_state_dict(_CACHE[base].state_dict())
                _CACHE[key] = copy.eval().requires_grad_(False)
    return _CACHE[key]


def strong_apply(x: torch.Tensor, v: torch.Tensor, name: str = "<unnamed>") -> torch.Tensor:
    """P-28 as an LNE mode: G(t) v per row, t = tanh(x), x = τ w of shape [G, n].

    Computed without autograd in the dtype and on the device of ``x``.  Raises a
    ``ValueError`` naming ``name`` when n > :data:`MAX_N`, before any training.
    """
    n = x.shape[-1]
    _check_n(n, name)
    if n == 0:
        return v.clone()
    with torch.no_grad():
        return _model(n, x.dtype, x.device).apply(torch.tanh(x), v.to(x.dtype))


def strong_error(x: torch.Tensor, name: str = "<unnamed>") -> torch.Tensor:
    """Per-row relative error ‖G − g⁻¹‖_F/‖g⁻¹‖_F of the cached model at t = tanh(x), shape [G]."""
    n = x.shape[-1]
    _check_n(n, name)
    if n == 0:
        return x.new_zeros(x.shape[0])
    with torch.no_grad():
        return _model(n, x.dtype, x.device).error(torch.tanh(x))
