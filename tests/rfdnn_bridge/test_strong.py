"""Tests of the strong approximation P-28 (rfdnn_bridge.strong; docs/math.md §2).

Tolerances: the cached model (DEFAULT_STEPS Adam steps) is measured at a mean
relative error ‖G − g⁻¹‖_F/‖g⁻¹‖_F of 0.1–0.6 % for s ≤ 0.5 and 0.6–1.6 %
for s ≤ 0.9 with s uniform (max ~9 %, reached as s → 0.9), n = 1…64; the
tests ask mean < 3 % and max < 20 % for s uniform in [0, 0.9).
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rfdnn_bridge import strong
from rfdnn_bridge.strong import MAX_N, StrongInverse, strong_apply, strong_error


def _exact_inverse(t: torch.Tensor) -> torch.Tensor:
    s = (t * t).sum(-1)
    eye = torch.eye(t.shape[-1], dtype=t.dtype)
    return eye + t.unsqueeze(-1) * t.unsqueeze(-2) / (1.0 - s)[:, None, None]


def _random_t(rows: int, n: int, s_max: float, seed: int, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    d = torch.randn(rows, n, generator=gen, dtype=dtype)
    d = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True)
    s = torch.rand(rows, 1, generator=gen, dtype=dtype) * s_max
    return d * s.sqrt()


def _perturbed(n: int, seed: int) -> StrongInverse:
    """An untrained model whose last layer is non-zero (so G is not just I + t tᵀ)."""
    model = StrongInverse(n, hidden=8, seed=seed).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        last = model.mlp[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=gen, dtype=torch.float64))
        last.bias.copy_(torch.randn(last.bias.shape, generator=gen, dtype=torch.float64))
    return model


@given(n=st.integers(1, 10), rows=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_matrix_symmetric_and_shapes(n, rows, seed):
    model = _perturbed(n, seed)
    t = _random_t(rows, n, 0.95, seed)
    v = torch.randn(rows, n, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    with torch.no_grad():
        big = model.matrix(t)
        gv = model.apply(t, v)
    assert big.shape == (rows, n, n)
    assert torch.equal(big, big.transpose(1, 2))  # exactly, not approximately
    assert gv.shape == (rows, n)
    torch.testing.assert_close(gv, (big @ v.unsqueeze(-1)).squeeze(-1))
    assert model.packed(t).shape == (rows, n * (n + 1) // 2)


@given(n=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_loss_equals_dense_objective(n, seed):
    model = _perturbed(n, seed)
    t = _random_t(6, n, 0.95, seed)
    eye = torch.eye(n, dtype=torch.float64)
    g = eye - t.unsqueeze(-1) * t.unsqueeze(-2)
    with torch.no_grad():
        dense = ((eye - g @ model.matrix(t)) ** 2).sum((-2, -1)).mean()
        torch.testing.assert_close(model.loss(t), dense)


def test_untrained_model_is_the_weak_approximation():
    t = _random_t(4, 5, 0.9, 0)
    with torch.no_grad():
        big = StrongInverse(5).double().matrix(t)
    torch.testing.assert_close(big, torch.eye(5, dtype=torch.float64) + t.unsqueeze(-1) * t.unsqueeze(-2))


@pytest.mark.parametrize("n", [3, 8])
def test_cached_model_close_to_exact(n):
    x = torch.atanh(_random_t(500, n, 0.9, 7, torch.float32))
    err = strong_error(x)
    assert err.shape == (500,)
    assert float(err.mean()) < 0.03
    assert float(err.max()) < 0.2


def test_strong_mode_matches_exact_inverse_and_shapes():
    n = 8
    t = _random_t(40, n, 0.9, 3, torch.float32)
    x = torch.atanh(t)
    v = torch.randn(40, n, generator=torch.Generator().manual_seed(4))
    out = strong_apply(x, v, "w")
    assert out.shape == v.shape and out.dtype == torch.float32
    exact = (_exact_inverse(t) @ v.unsqueeze(-1)).squeeze(-1)
    rel = torch.linalg.vector_norm(out - exact, dim=-1) / torch.linalg.vector_norm(exact, dim=-1)
    assert float(rel.mean()) < 0.03
    assert not out.requires_grad


def test_float64_path():
    n = 8
    t = _random_t(20, n, 0.9, 5)
    x = torch.atanh(t)
    v = torch.randn(20, n, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    out64 = strong_apply(x, v, "w")
    assert out64.dtype == torch.float64 and out64.shape == (20, n)
    out32 = strong_apply(x.float(), v.float(), "w")
    torch.testing.assert_close(out64.float(), out32, rtol=1e-4, atol=1e-5)  # same weights, other precision
    assert strong_error(x).dtype == torch.float64


def test_loss_decreases_with_training():
    model = StrongInverse(4, hidden=16, seed=1)
    t = model.sample(512, 0.95, torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = float(model.loss(t))
    model.fit(steps=150)
    with torch.no_grad():
        after = float(model.loss(t))
    assert after < 0.2 * before


def test_fit_is_deterministic():
    a, b = StrongInverse(4, hidden=16, seed=3), StrongInverse(4, hidden=16, seed=3)
    la, lb = a.fit(steps=30), b.fit(steps=30)
    assert la == lb
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = StrongInverse(4, hidden=16, seed=4)
    c.fit(steps=30)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_too_large_group_raises_before_training(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking n")

    monkeypatch.setattr(StrongInverse, "fit", no_training)
    n = MAX_N + 1
    x = torch.zeros(2, n)
    with pytest.raises(ValueError) as info:
        strong_apply(x, torch.ones(2, n), "layer3.weight")
    msg = str(info.value)
    assert "layer3.weight" in msg and str(n) in msg and str(MAX_N) in msg
    assert "exact" in msg and "weak" in msg and "channel" in msg
    with pytest.raises(ValueError, match=str(n)):
        strong_error(x, "layer3.weight")
    with pytest.raises(ValueError):
        StrongInverse(n)


def test_empty_group_is_identity():
    v = torch.ones(1, 0)
    assert strong_apply(torch.zeros(1, 0), v, "b").shape == (1, 0)
    assert strong_error(torch.zeros(1, 0)).shape == (1,)


def test_first_use_under_inference_mode():
    x = torch.atanh(_random_t(3, 2, 0.5, 0, torch.float32))
    strong._CACHE.pop((2, torch.float32, torch.device("cpu")), None)
    with torch.inference_mode():
        out = strong_apply(x, torch.ones(3, 2), "p")
    assert out.shape == (3, 2)
    assert strong_apply(x, torch.ones(3, 2), "p").shape == (3, 2)


def test_cache_reuses_models():
    x = torch.atanh(_random_t(3, 3, 0.5, 0, torch.float32))
    strong_error(x)
    first = strong._CACHE[(3, torch.float32, torch.device("cpu"))]
    strong_error(x)
    assert strong._CACHE[(3, torch.float32, torch.device("cpu"))] is first


def test_fit_rejects_bad_arguments():
    model = StrongInverse(2)
    with pytest.raises(ValueError):
        model.fit(steps=0)
    with pytest.raises(ValueError):
        model.fit(s_max=1.0)
