"""Forward quantizers (docs/math.md §5): values, levels, the tie rule, zero tensors, dtypes, validation."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rfdnn_bridge.quantizers import (
    check_bits,
    dorefa_activations,
    dorefa_weights,
    magnitude_sign,
    q_k,
    quantize_k,
    sign_pm1,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, width=64)


def test_sign_pm1_values_and_zero():
    x = np.array([-1e30, -1.0, -0.0, 0.0, 1e-300, 1e30])
    np.testing.assert_array_equal(sign_pm1(x), [-1, -1, 1, 1, 1, 1])
    t = torch.tensor([-1e30, -0.0, 0.0, 2.0])
    assert torch.equal(sign_pm1(t), torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    assert np.isnan(sign_pm1(np.array([np.nan])))[0]


def test_quantize_k_formula_at_chosen_points():
    x = np.array([-2.0, -1.0, 0.5, 2.0])  # max|x| = 2 -> r = x/4 + 1/2 = 0, .25, .625, 1
    # k = 2: n = 3, round(3r) = 0, round(.75)=1, round(1.875)=2, 3 -> 2/3*j - 1
    np.testing.assert_allclose(quantize_k(x, 2), [-1.0, -1 / 3, 1 / 3, 1.0])
    # k = 1: n = 1, round(r) = 0, 0, 1, 1
    np.testing.assert_allclose(quantize_k(x, 1), [-1.0, -1.0, 1.0, 1.0])


def test_tie_rule_k1_at_zero_differs_from_q1():
    """Round half to even: Qk at k = 1, x = 0 gives −1, Q1 gives +1."""
    for x in (np.array([0.0, 1.0, -1.0]), torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)):
        assert float(quantize_k(x, 1)[0]) == -1.0
        assert float(sign_pm1(x)[0]) == 1.0
    # half-to-even at k = 2: r = 1/2 -> round(1.5) = 2 -> +1/3
    assert float(quantize_k(np.array([0.0, 1.0]), 2)[0]) == pytest.approx(1 / 3)


def test_zero_tensor_is_finite():
    for f in (lambda z: quantize_k(z, 1), lambda z: quantize_k(z, 3), lambda z: dorefa_weights(z, 2)):
        for z in (np.zeros(4), torch.zeros(4)):
            out = f(z)
            assert bool((out == out).all())  # no NaN
    np.testing.assert_array_equal(quantize_k(np.zeros(3), 1), [-1.0] * 3)
    np.testing.assert_allclose(quantize_k(np.zeros(3), 2), [1 / 3] * 3)
    np.testing.assert_array_equal(dorefa_weights(np.zeros(3), 1), [0.0] * 3)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_exactly_2_to_k_levels(k):
    x = np.linspace(-3, 3, 20001)
    lv_q = np.unique(quantize_k(x, k))
    np.testing.assert_allclose(lv_q, -1 + 2 * np.arange(2**k) / (2**k - 1), atol=1e-12)
    lv_w = np.unique(dorefa_weights(x, k))
    assert lv_w.size == 2**k
    if k >= 2:
        np.testing.assert_allclose(lv_w, -1 + 2 * np.arange(2**k) / (2**k - 1), atol=1e-12)
    lv_a = np.unique(dorefa_activations(x, k))
    np.testing.assert_allclose(lv_a, np.arange(2**k) / (2**k - 1), atol=1e-12)


@given(arrays(np.float64, st.integers(1, 30), elements=finite), st.integers(1, 5))
def test_numpy_and_torch_agree(x, k):
    t = torch.from_numpy(x)
    for f in (quantize_k, dorefa_weights, dorefa_activations):
        np.testing.assert_allclose(f(t, k).numpy(), f(x, k), atol=1e-12)
    np.testing.assert_array_equal(sign_pm1(t).numpy(), sign_pm1(x))


@given(arrays(np.float64, st.integers(1, 30), elements=finite), st.integers(1, 5))
def test_levels_within_range(x, k):
    q = quantize_k(x, k)
    assert np.all(np.abs(q) <= 1 + 1e-12)
    j = (q + 1) * (2**k - 1) / 2
    np.testing.assert_allclose(j, np.round(j), atol=1e-9)
    a = dorefa_activations(x, k)
    assert np.all((a >= 0) & (a <= 1))


def test_dorefa_weights_k1_and_k2_values():
    x = np.array([-2.0, 0.0, 1.0, 3.0])
    np.testing.assert_allclose(dorefa_weights(x, 1), np.mean(np.abs(x)) * np.array([-1, 1, 1, 1]))
    t = np.tanh(x)
    r = t / (2 * np.max(np.abs(t))) + 0.5
    np.testing.assert_allclose(dorefa_weights(x, 2), 2 * np.round(3 * r) / 3 - 1)
    np.testing.assert_allclose(dorefa_activations(np.array([-1.0, 0.2, 0.5, 0.9, 5.0]), 2), [0, 1 / 3, 2 / 3, 1, 1])
    # q_k itself, half to even: 3 * 0.5 = 1.5 -> 2
    np.testing.assert_allclose(q_k(np.array([0.5]), 2), [2 / 3])


def test_extremes():
    x = np.array([-1e30, 0.0, 1e30])
    np.testing.assert_allclose(quantize_k(x, 2), [-1.0, 1 / 3, 1.0])
    np.testing.assert_allclose(dorefa_weights(x, 2), [-1.0, 1 / 3, 1.0])
    np.testing.assert_allclose(dorefa_activations(x, 2), [0.0, 0.0, 1.0])


def test_magnitude_sign_per_channel_and_no_grad_through_alpha():
    W = torch.tensor([[[1.0, -3.0]], [[0.0, -0.5]]], requires_grad=True)  # [2, 1, 2]
    out = magnitude_sign(W)
    assert torch.allclose(out, torch.tensor([[[2.0, -2.0]], [[0.25, -0.25]]]))
    out.sum().backward()  # sign has zero derivative, alpha is detached -> zero grad
    assert torch.count_nonzero(W.grad) == 0
    Wn = np.array([[1.0, -3.0], [0.0, -0.5]])
    np.testing.assert_allclose(magnitude_sign(Wn), [[2.0, -2.0], [0.25, -0.25]])
    with pytest.raises(ValueError, match="ndim"):
        magnitude_sign(np.float64(1.0) * np.ones(()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtypes_preserved(dtype):
    x = torch.linspace(-2, 2, 17, dtype=dtype)
    for out in (sign_pm1(x), quantize_k(x, 2), dorefa_weights(x, 2), dorefa_weights(x, 1),
                dorefa_activations(x, 3), magnitude_sign(x.reshape(1, -1))):
        assert out.dtype == dtype and out.shape[-1] == 17
    assert torch.unique(quantize_k(x, 2)).numel() == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, 2.0, "2", None, True])
def test_bad_bits(bad):
    for f in (quantize_k, dorefa_weights, dorefa_activations):
        with pytest.raises(ValueError, match="k"):
            f(np.ones(3), bad)
    with pytest.raises(ValueError, match="k must be an integer"):
        check_bits(bad)
    assert check_bits(np.int64(3)) == 3


@pytest.mark.gpu
def test_quantizers_cuda():
    x = torch.linspace(-2, 2, 101, device="cuda")
    for f in (lambda z: quantize_k(z, 2), lambda z: dorefa_weights(z, 3), lambda z: dorefa_activations(z, 2), sign_pm1):
        out = f(x)
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), f(x.cpu()))


@pytest.mark.parametrize("dtype, top", [(torch.float16, 11), (torch.bfloat16, 8), (torch.float32, 24),
                                        (torch.float64, 53)])
def test_bit_widths_the_dtype_cannot_hold_are_refused(dtype, top):
    from rfdnn_bridge.estimators import get_estimator
    from rfdnn_bridge.quantizers import max_bits

    assert max_bits(dtype, torch) == top
    x = torch.linspace(-1, 1, 50, dtype=torch.float64).to(dtype)
    for fn in (quantize_k, dorefa_weights, dorefa_activations):
        levels = torch.unique(fn(x, top).to(torch.float64))
        assert bool(torch.isfinite(levels).all())  # at the largest width the output is still finite
        if top < 53:
            with pytest.raises(ValueError, match=rf"k={top + 1} bits need 2\^{top + 1} levels, more than "
                                                 rf"{dtype} holds exactly \(at most k={top}\)"):
                fn(x, top + 1)
    with pytest.raises(ValueError, match="no floating dtype holds 2\\^128 levels"):
        get_estimator("dorefa_w", k=128)
