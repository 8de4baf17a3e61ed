"""Small reference models for the RF-DNN experiments, all quantizable with :func:`~rfdnn_bridge.layers.quantize_model`.

* :class:`MLP` — fully connected, ReLU between layers (flattens its input).
* :class:`SmallCNN` — three 3×3 convolutions, BatchNorm, ReLU, one 2×2 max-pool, global average
  pooling and a linear head; for 8×8 digits (``dims=2``, input ``[B, C, H, W]``) or 1-D signals
  (``dims=1``, input ``[B, C, L]``).
* :func:`resnet` / :func:`resnet20` — the CIFAR ResNets of He et al. (2016, §4.2): a 3×3 stem
  with 16·``width``/16 channels, 3 stages of (depth − 2)/6 basic blocks with 16, 32, 64 channels
  (times ``width``/16), the first block of stages 2 and 3 with stride 2, global average pooling
  and a linear head.  Shortcuts are **option A** by default (the paper's CIFAR choice: identity,
  and where the shape changes the input subsampled with stride 2 and zero-padded in channels —
  parameter free; resnet20 has 269,722 parameters); ``shortcut="B"`` uses 1×1-conv + BN
  projections there instead (272,474 parameters for resnet20).

Every learnable convolution / linear layer is a plain ``nn.Conv2d`` / ``nn.Linear`` (the 1-D
convolutions of ``SmallCNN(dims=1)`` are ``nn.Conv2d`` with 1×k kernels on a height-1 image,
numerically a ``Conv1d``), so ``quantize_model(model, weights="clipped")`` replaces all of them.

``act``: the nonlinearity, ``"relu"`` (default) or ``"hardtanh"``.  Binary *activations* (1W1A)
need ``"hardtanh"``: a layer quantizes its input with a sign, and sign(ReLU(x)) is +1 everywhere,
so behind a ReLU every quantized layer sees a constant and the network stays at chance (the
binary-network convention, BN → hardtanh → sign; :func:`~rfdnn_bridge.experiments.train.build_model`
picks it when activations are quantized).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "SmallCNN", "BasicBlock", "ResNet", "resnet", "resnet20", "ACTIVATIONS"]

#: the nonlinearities the models take (``act=``)
ACTIVATIONS = {"relu": nn.ReLU, "hardtanh": nn.Hardtanh}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown act {name!r}; use one of {list(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Fully connected network ``in_features → hidden[0] → … → classes`` with ReLU between layers.

    The input is flattened from dimension 1 on, so ``[B, 1, 8, 8]`` digits work with
    ``in_features=64``.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (128, 128), classes: int = 10,
                 act: str = "relu") -> None:
        super().__init__()
        sizes = [int(in_features), *(int(h) for h in hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), _act(act)]
        layers.append(nn.Linear(sizes[-1], int(classes)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.flatten(x, 1))


class SmallCNN(nn.Module):
    """Conv(16)–BN–ReLU, Conv(32)–BN–ReLU, max-pool 2, Conv(64)–BN–ReLU, global average pool, Linear.

    ``dims=2``: 3×3 convolutions on ``[B, in_channels, H, W]`` (8×8 digits: 8 → 4 after the pool).
    ``dims=1``: kernel-3 convolutions along the signal ``[B, in_channels, L]``; implemented as
    ``nn.Conv2d`` with 1×3 kernels on ``[B, C, 1, L]`` so that :func:`quantize_model` (which
    replaces ``nn.Conv2d``/``nn.Linear`` only) quantizes them.  Any H, W or L ≥ 2 works.
    """

    def __init__(self, in_channels: int = 1, classes: int = 10, dims: int = 2, act: str = "relu") -> None:
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(
                f"SmallCNN: dims must be 1 (signals [B, C, L]) or 2 (images [B, C, H, W]), got dims={dims!r}"
            )
        self.dims = dims
        k, pad, pool = ((3, 3), (1, 1), (2, 2)) if dims == 2 else ((1, 3), (0, 1), (1, 2))
        chans = [int(in_channels), 16, 32, 64]
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            blocks += [nn.Conv2d(a, b, k, padding=pad, bias=False), nn.BatchNorm2d(b), _act(act)]
            if i == 1:
                blocks.append(nn.MaxPool2d(pool))
        self.features = nn.Sequential(*blocks)
        self.fc = nn.Linear(chans[-1], int(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 1:
            if x.ndim != 3:
                raise ValueError(f"SmallCNN(dims=1) expects [B, C, L], got shape {tuple(x.shape)}")
            x = x.unsqueeze(2)
        elif x.ndim != 4:
            raise ValueError(f"SmallCNN(dims=2) expects [B, C, H, W], got shape {tuple(x.shape)}")
        x = self.features(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers with a shortcut (He et al. 2016): ``relu(bn(conv(relu(bn(conv(x))))) + sc(x))``.

    ``shortcut="A"``: where stride ≠ 1 or the channels change, ``sc(x)`` is ``x[:, :, ::2, ::2]``
    zero-padded to ``planes`` channels (no parameters); ``"B"``: a 1×1 conv (stride) + BN there.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "A", act: str = "relu") -> None:
        super().__init__()
        self.act1, self.act2 = _act(act), _act(act)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - in_planes
        self.proj: nn.Module | None = None
        self.option = shortcut
        if (stride != 1 or in_planes != planes) and shortcut == "B":
            self.proj = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            return self.proj(x)
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad > 0:
            lo = self.pad // 2
            x = F.pad(x, (0, 0, 0, 0, lo, self.pad - lo))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self._shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: stem conv, 3 stages of ``blocks`` :class:`BasicBlock` s, global average pool, linear head."""

    def __init__(self, blocks: int, classes: int = 10, width: int = 16, shortcut: str = "A", in_channels: int = 3,
                 act: str = "relu") -> None:
        super().__init__()
        self.act = _act(act)
        widths = (width, 2 * width, 4 * width)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages: list[nn.Module] = []
        in_planes = width
        for i, planes in enumerate(widths):
            layer = []
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layer.append(BasicBlock(in_planes, planes, stride, shortcut, act))
                in_planes = planes
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(widths[-1], int(classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet(depth: int = 20, classes: int = 10, width: int = 16, shortcut: str = "A", in_channels: int = 3,
           act: str = "relu") -> ResNet:
    """CIFAR ResNet of ``depth`` = 6k + 2 layers (20, 32, 44, 56, 110, …): k basic blocks per stage.

    ``width`` is the first stage's channels (16 in the paper; the stages have width, 2·width,
    4·width).  ``shortcut``: ``"A"`` (parameter-free, the paper's CIFAR choice) or ``"B"`` (1×1-conv
    projections where the shape changes).  ``act``: ``"relu"`` or ``"hardtanh"`` (module docstring).
    Raises ``ValueError`` for any other depth.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(
            f"resnet: depth must be 6k + 2 with k >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got depth={depth!r}"
        )
    if shortcut not in ("A", "B"):
        raise ValueError(f"resnet: shortcut must be 'A' or 'B', got shortcut={shortcut!r}")
    if not (isinstance(width, int) and width >= 1):
        raise ValueError(f"resnet: width must be a positive integer, got width={width!r}")
    return ResNet((depth - 2) // 6, classes=classes, width=width, shortcut=shortcut, in_channels=in_channels, act=act)


def resnet20(classes: int = 10, **kwargs) -> ResNet:
    """ResNet-20 for CIFAR (option-A shortcuts: 269,722 parameters with 10 classes)."""
    return resnet(20, classes=classes, **kwargs)
