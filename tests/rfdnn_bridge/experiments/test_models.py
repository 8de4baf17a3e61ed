"""rfdnn_bridge.experiments.models: shapes, parameter counts, depth check, quantization."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rfdnn_bridge.experiments.models import MLP, SmallCNN, resnet, resnet20
from rfdnn_bridge.layers import QuantConv2d, QuantLayer, QuantLinear, quantize_model


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_mlp_shape():
    torch.manual_seed(0)
    m = MLP(64, hidden=(32, 16), classes=10)
    assert m(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert [l.out_features for l in m.modules() if isinstance(l, nn.Linear)] == [32, 16, 10]
    assert MLP(7, hidden=(), classes=3)(torch.randn(2, 7)).shape == (2, 3)


def test_smallcnn_2d_digits():
    m = SmallCNN(in_channels=1, classes=10)
    assert m(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    with pytest.raises(ValueError, match="dims"):
        SmallCNN(dims=3)


def test_smallcnn_1d_signals():
    torch.manual_seed(0)
    m = SmallCNN(in_channels=2, classes=5, dims=1).eval()
    x = torch.randn(3, 2, 40)
    assert m(x).shape == (3, 5)
    with pytest.raises(ValueError, match=r"\[B, C, L\]"):
        m(torch.randn(3, 2, 1, 40))
    # the 1×3 Conv2d is a Conv1d: same numbers as F.conv1d on the signal
    conv = m.features[0]
    ref = torch.nn.functional.conv1d(x, conv.weight[:, :, 0], padding=1)
    assert torch.allclose(conv(x.unsqueeze(2))[:, :, 0], ref, atol=1e-5)


@pytest.mark.parametrize("depth", [8, 20, 32])
def test_resnet_shape(depth):
    m = resnet(depth, classes=7)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert len(m.layer1) == (depth - 2) // 6


def test_resnet20_parameter_count():
    # He et al. (2016) Table 6: 0.27M.  Option A (parameter-free shortcuts): exactly 269,722.
    assert _count(resnet20()) == 269_722
    assert _count(resnet20(shortcut="B")) == 272_474  # + two 1×1 projections with BN
    m = resnet20()
    widths = [m.layer1[0].conv1.out_channels, m.layer2[0].conv1.out_channels, m.layer3[0].conv1.out_channels]
    assert widths == [16, 32, 64]
    assert _count(resnet(20, width=32)) > 4 * 269_722 * 0.9


@pytest.mark.parametrize("depth", [19, 21, 0, 2, 7])
def test_resnet_bad_depth(depth):
    with pytest.raises(ValueError, match=f"depth={depth}"):
        resnet(depth)


def test_resnet_bad_shortcut():
    with pytest.raises(ValueError, match="shortcut"):
        resnet(20, shortcut="C")


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda: MLP(64, (32, 32), 10), torch.randn(4, 1, 8, 8)),
        (lambda: SmallCNN(1, 10), torch.randn(4, 1, 8, 8)),
        (lambda: SmallCNN(3, 4, dims=1), torch.randn(4, 3, 32)),
        (lambda: resnet(8), torch.randn(2, 3, 32, 32)),
        (lambda: resnet20(shortcut="B"), torch.randn(2, 3, 16, 16)),
    ],
    ids=["mlp", "cnn2d", "cnn1d", "resnet8", "resnet20B"],
)
def test_quantize_model_runs(make, x):
    torch.manual_seed(0)
    model = make()
    n_float = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    quantize_model(model, weights="clipped")
    quant = [m for m in model.modules() if isinstance(m, QuantLayer)]
    # everything but the first and last layer (the default skip) is quantized
    assert len(quant) == n_float - 2
    assert all(isinstance(m, (QuantConv2d, QuantLinear)) for m in quant)
    out = model(x)
    assert out.shape[0] == x.shape[0] and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_quantize_all_layers():
    model = quantize_model(SmallCNN(1, 10), weights="clipped", skip=None)
    assert sum(isinstance(m, QuantLayer) for m in model.modules()) == 4
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("make, x", [
    (lambda act: SmallCNN(1, 10, act=act), torch.rand(8, 1, 8, 8)),
    (lambda act: MLP(64, (32, 32), 10, act=act), torch.rand(8, 64)),
    (lambda act: resnet(8, 10, width=4, in_channels=1, act=act), torch.rand(4, 1, 8, 8)),
])
def test_binary_activations_see_both_signs_only_behind_hardtanh(make, x):
    """1W1A: a quantized layer takes the sign of its input; behind a ReLU that sign is constant."""
    def inputs_of_quantized_layers(act):
        torch.manual_seed(0)
        model = quantize_model(make(act), weights="clipped", activations="clipped")
        seen = []
        for m in model.modules():
            if isinstance(m, QuantLayer):
                m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
        model.train()(x)
        return seen

    relu, hard = inputs_of_quantized_layers("relu"), inputs_of_quantized_layers("hardtanh")
    assert relu and all((t >= 0).all() for t in relu)  # sign(relu(.)) is +1 everywhere: nothing to learn from
    assert all((t < 0).any() and (t > 0).any() for t in hard)


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="unknown act 'gelu'"):
        SmallCNN(act="gelu")
