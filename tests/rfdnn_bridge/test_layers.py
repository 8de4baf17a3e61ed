"""Quantized layers, model conversion, latent clipping, summaries (rfdnn_bridge.layers)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rfdnn_bridge.estimators import get_estimator
from rfdnn_bridge.layers import (
    QuantConv2d,
    QuantLinear,
    clip_latent_weights,
    epoch_end,
    model_summary,
    quantize_model,
    step_end,
)


def _nonzero(t: torch.Tensor) -> torch.Tensor:
    """Keep random weights away from 0, where sign conventions (sign(0) = 0 or +1) differ."""
    with torch.no_grad():
        t.add_(torch.where(t >= 0, 0.05, -0.05).to(t.dtype))
    return t


# -- QuantLinear / QuantConv2d vs the functional ops on sign(W) ------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_quantlinear_identity_forward_and_gradient(dtype):
    torch.manual_seed(0)
    layer = QuantLinear(7, 5, weights="identity", dtype=dtype)
    _nonzero(layer.weight.data).mul_(3)  # some |w| > 1
    x = torch.randn(4, 7, dtype=dtype)
    y = layer(x)
    assert y.dtype == dtype
    torch.testing.assert_close(y, F.linear(x, torch.sign(layer.weight), layer.bias))
    g = torch.randn_like(y)
    y.backward(g)
    # identity STE: ∂L/∂W_latent = ∂L/∂Q(W) = gᵀ x, everywhere
    torch.testing.assert_close(layer.weight.grad, g.T @ x)
    torch.testing.assert_close(layer.bias.grad, g.sum(0))


def test_quantlinear_clipped_gradient_is_the_estimators_rule():
    torch.manual_seed(1)
    layer = QuantLinear(6, 4, weights="clipped", dtype=torch.float64)
    with torch.no_grad():
        _nonzero(layer.weight.uniform_(-2, 2))
    assert (layer.weight.abs() > 1).any() and (layer.weight.abs() < 1).any()
    x = torch.randn(3, 6, dtype=torch.float64)
    y = layer(x)
    torch.testing.assert_close(y, F.linear(x, torch.sign(layer.weight), layer.bias))
    g = torch.randn_like(y)
    y.backward(g)
    grad_q = g.T @ x
    expected = grad_q * (layer.weight.detach().abs() <= 1)
    torch.testing.assert_close(layer.weight.grad, expected)
    assert (layer.weight.grad[layer.weight.detach().abs() > 1] == 0).all()
    rule = get_estimator("clipped").backward_rule(layer.weight.detach(), grad_q)
    torch.testing.assert_close(layer.weight.grad, rule)


@pytest.mark.parametrize("name", ["identity", "clipped", "approxsign"])
def test_quantconv2d_matches_conv2d_on_sign_weights(name):
    torch.manual_seed(2)
    conv = QuantConv2d(3, 4, 3, stride=1, padding=1, weights=name, dtype=torch.float64)
    with torch.no_grad():
        _nonzero(conv.weight.uniform_(-1.5, 1.5))
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    y = conv(x)
    w_sign = torch.sign(conv.weight.detach()).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    y_ref = F.conv2d(x_ref, w_sign, conv.bias.detach(), padding=1)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    rule = get_estimator(name).backward_rule(conv.weight.detach(), w_sign.grad)
    torch.testing.assert_close(conv.weight.grad, rule)
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_estimator_object_and_params():
    est = get_estimator("clipped")
    layer = QuantLinear(3, 2, weights=est)
    assert layer.weight_quantizer is est
    assert layer.latent_clip == est.latent_clip
    with pytest.raises(ValueError):
        QuantLinear(3, 2, weights=est, weight_params={"c": 1.0})
    with pytest.raises(TypeError):
        QuantLinear(3, 2, weights=3.0)
    float_weights = QuantLinear(3, 2, weights=None)
    assert float_weights.weight_bits == 32
    x = torch.randn(2, 3)
    torch.testing.assert_close(float_weights(x), F.linear(x, float_weights.weight, float_weights.bias))
    assert "weights=clipped" in repr(layer)


@pytest.mark.parametrize("act", ["dorefa_a", "yin_relu"])
def test_activation_estimator_in_a_layer(act):
    torch.manual_seed(3)
    layer = QuantLinear(5, 3, weights="identity", activations=act, dtype=torch.float64)
    _nonzero(layer.weight.data)
    x = (1.5 * torch.randn(4, 5, dtype=torch.float64)).requires_grad_(True)
    ref = get_estimator(act)
    xq = ref(x.detach())
    assert layer.activation_bits == ref.bits
    y = layer(x)
    torch.testing.assert_close(y, F.linear(xq, torch.sign(layer.weight), layer.bias))
    g = torch.randn_like(y)
    y.backward(g)
    grad_xq = g @ torch.sign(layer.weight.detach())
    torch.testing.assert_close(x.grad, ref.backward_rule(x.detach(), grad_xq))


def test_bfloat16_forward():
    layer = QuantConv2d(2, 3, 3, padding=1, dtype=torch.bfloat16)
    x = torch.randn(1, 2, 5, 5, dtype=torch.bfloat16)
    y = layer(x)
    assert y.dtype == torch.bfloat16 and y.shape == (1, 3, 5, 5) and torch.isfinite(y.float()).all()
    lin = QuantLinear(4, 2, activations="dorefa_a", dtype=torch.bfloat16)
    assert lin(torch.randn(3, 4, dtype=torch.bfloat16)).dtype == torch.bfloat16


# -- quantize_model on a small CNN for 8×8 digits --------------------------------------------

def _digits_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Linear(32, 10),
    )


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return (x - 0.3) / 0.4, torch.tensor(d.target)


def test_quantize_model_replaces_the_right_layers():
    torch.manual_seed(4)
    model = _digits_cnn()
    float_params = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = quantize_model(model)
    assert out is model  # in place
    kinds = {n: type(m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    assert kinds == {"0": nn.Conv2d, "3": QuantConv2d, "7": QuantConv2d, "12": QuantLinear, "15": nn.Linear}
    for n, p in model.named_parameters():  # latent weights and biases copied
        torch.testing.assert_close(p.detach(), float_params[n])
    assert model[3].bias is None and model[12].bias is not None
    assert model[3].padding == (1, 1) and model[3].weight_quantizer.name == "clipped"
    # a list of names keeps exactly those
    m2 = quantize_model(_digits_cnn(), weights="identity", skip=["0"])
    assert type(m2[0]) is nn.Conv2d and type(m2[15]) is QuantLinear
    assert m2[15].weight_quantizer.name == "identity"
    m3 = quantize_model(_digits_cnn(), skip=None)
    assert all(type(m3[i]) in (QuantConv2d, QuantLinear) for i in (0, 3, 7, 12, 15))
    with pytest.raises(KeyError):
        quantize_model(_digits_cnn(), skip=["nope"])
    # estimator objects are copied per layer
    est = get_estimator("clipped")
    m4 = quantize_model(_digits_cnn(), weights=est)
    assert m4[3].weight_quantizer is not m4[7].weight_quantizer


def test_quantize_model_nested_and_shared():
    inner = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(inner, nn.ReLU(), inner), nn.Linear(4, 2))
    quantize_model(model)
    assert type(model[1][0]) is QuantLinear and model[1][0] is model[1][2]  # sharing preserved
    single = quantize_model(nn.Linear(3, 2), skip=None)
    assert type(single) is QuantLinear


@pytest.fixture
def one_thread():
    """Tiny convolutions run faster single-threaded (and do not fight a busy CI machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_quantized_digits_cnn_trains_with_latent_clipping(digits, one_thread):
    x, y = digits
    torch.manual_seed(0)
    model = quantize_model(_digits_cnn(), weights="clipped")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    losses = []
    for epoch in range(2):
        for _ in range(20):
            idx = torch.randint(0, len(x), (64,), generator=g)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert clip_latent_weights(model) == 3
            step_end(model)
            losses.append(loss.item())
            for m in (model[3], model[7], model[12]):
                c = m.latent_clip
                assert c is not None and m.weight.abs().max() <= c
        epoch_end(model, epoch)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.5


def test_clip_latent_is_noop_without_bound():
    layer = QuantLinear(3, 2, weights="identity")
    with torch.no_grad():
        layer.weight.fill_(5.0)
    assert layer.latent_clip is None
    layer.clip_latent_()
    assert (layer.weight == 5.0).all()
    clipped = QuantLinear(3, 2, weights="clipped")
    with torch.no_grad():
        clipped.weight.fill_(5.0)
    clipped.clip_latent_()
    assert (clipped.weight == clipped.latent_clip).all()


# -- summary ---------------------------------------------------------------------------------

def test_model_summary_by_hand():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 2, bias=False))
    quantize_model(model, weights="clipped")  # quantizes only the middle layer
    s = model_summary(model)
    assert [r.name for r in s.rows] == ["0", "2", "3"]
    r0, r2, r3 = s.rows
    assert (r0.weight_bits, r0.params, r0.memory_bits) == (32, 40, 40 * 32)
    assert (r2.type, r2.weight_bits, r2.activation_bits) == ("QuantLinear", 1, 32)
    assert (r2.params, r2.quantized_params, r2.memory_bits, r2.float_bits) == (72, 64, 64 * 1 + 8 * 32, 72 * 32)
    assert (r3.params, r3.memory_bits) == (16, 16 * 32)
    assert s.total_params == 128 and s.quantized_params == 64
    assert s.memory_bits == 40 * 32 + 64 + 8 * 32 + 16 * 32 == 2112
    assert s.float_bits == 128 * 32
    assert s.compression == pytest.approx(4096 / 2112)
    text = str(s)
    assert "QuantLinear" in text and "Total" in text and "compression 1.94x" in text
    lines = text.splitlines()
    assert len({len(line) for line in lines[:6]}) == 1  # header, rule, 3 rows, rule: aligned


def test_model_summary_with_activation_bits_and_batchnorm():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3), nn.Conv2d(2, 1, 1))
    quantize_model(model, activations="dorefa_a")
    s = model_summary(model)
    bn, q = s.rows[1], s.rows[2]
    assert bn.type == "BatchNorm2d" and bn.params == 4 and bn.weight_bits == 32
    assert q.activation_bits == 2  # dorefa_a's default k
    assert q.weight_bits == 1
    assert q.memory_bits == 36 * 1 + 2 * 32  # 2·2·3·3 one-bit weights + 2 float32 biases


# -- GPU --------------------------------------------------------------------------------------

@pytest.mark.gpu
def test_cuda_matches_cpu():
    torch.manual_seed(5)
    cpu = QuantConv2d(3, 4, 3, padding=1, weights="clipped", dtype=torch.float64)
    _nonzero(cpu.weight.data)
    gpu = QuantConv2d.from_float(cpu, weights="clipped").cuda()
    assert gpu.weight.device.type == "cuda"
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    y_cpu, y_gpu = cpu(x), gpu(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu)
    g = torch.randn_like(y_cpu)
    y_cpu.backward(g)
    y_gpu.backward(g.cuda())
    torch.testing.assert_close(gpu.weight.grad.cpu(), cpu.weight.grad)
    model = quantize_model(_digits_cnn()).cuda()
    out = model(torch.randn(8, 1, 8, 8, device="cuda"))
    out.sum().backward()
    clip_latent_weights(model)
    assert out.shape == (8, 10)


def test_quantize_model_gives_each_stochastic_layer_its_own_noise():
    gen = torch.Generator().manual_seed(7)
    est = get_estimator("stochastic_binary", generator=gen)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4))
    quantize_model(model, weights=est)
    a, b = model[1], model[2]
    with torch.no_grad():
        a.weight.zero_()
        b.weight.zero_()
    wa, wb = a.quantized_weight(), b.quantized_weight()
    assert not torch.equal(wa, wb)  # independent draws, not one shared generator state
    again = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4))
    quantize_model(again, weights=get_estimator("stochastic_binary", generator=torch.Generator().manual_seed(7)))
    with torch.no_grad():
        again[1].weight.zero_()
    torch.testing.assert_close(again[1].quantized_weight(), wa)  # reproducible from the one seed


def test_skip_container_keeps_its_subtree_and_rejects_layerless_names():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.ReLU()), nn.Linear(3, 3))
    quantize_model(model, skip=["1"])
    assert type(model[1][0]) is nn.Linear
    assert type(model[0]) is QuantLinear and type(model[2]) is QuantLinear
    with pytest.raises(ValueError, match="no nn.Linear/nn.Conv2d"):
        quantize_model(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), skip=["1"])
