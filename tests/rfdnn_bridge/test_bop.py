"""Tests of rfdnn_bridge.bop: the Bop update rule, CaseOptimizer partition / step / state, and training."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from rfdnn_bridge.bop import Bop, CaseOptimizer, bop_optimizer, is_binary_weight
from rfdnn_bridge.layers import QuantLinear, quantize_model


def _param(values) -> nn.Parameter:
    return nn.Parameter(torch.tensor(values, dtype=torch.float64))


# --------------------------------------------------------------------------- Bop update rule

def test_bop_update_rule_by_hand():
    w = _param([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0])
    opt = Bop([w], threshold=0.1, gamma=0.5)
    g1 = torch.tensor([0.4, -0.4, -0.4, 0.4, 0.1, -0.1, 0.0], dtype=torch.float64)
    w.grad = g1.clone()
    opt.step()
    m1 = 0.5 * g1  # m0 = 0
    torch.testing.assert_close(opt.state[w]["m"], m1, rtol=0, atol=0)
    # flip exactly where |m| > 0.1 and sign(m) == sign(w): elements 0 and 1 (m = ±0.2 agrees);
    # 2, 3 disagree in sign; 4, 5 have |m| = 0.05 ≤ τ; 6 has m = 0.
    torch.testing.assert_close(w.detach(), torch.tensor([-1.0, 1.0, 1.0, -1.0, 1.0, -1.0, 1.0], dtype=torch.float64))
    assert opt.last_flips == [{"flipped": 2, "total": 7, "fraction": 2 / 7}]

    g2 = torch.tensor([0.0, 0.0, -0.2, 0.2, 0.2, -0.2, 1.0], dtype=torch.float64)
    w.grad = g2.clone()
    opt.step()
    m2 = 0.5 * m1 + 0.5 * g2
    torch.testing.assert_close(opt.state[w]["m"], m2)
    # m2 = [0.1, -0.1, -0.3, 0.3, 0.15, -0.15, 0.5]: 0, 1 at |m| = τ (no flip), 2, 3 disagree,
    # 4, 5, 6 agree with |m| > τ.
    torch.testing.assert_close(w.detach(), torch.tensor([-1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0], dtype=torch.float64))
    assert opt.last_flips[0]["flipped"] == 3


def test_bop_binarizes_on_first_step_and_binarize_():
    w = _param([0.3, -2.0, 0.0, -0.0])
    opt = Bop([w], threshold=math.inf)
    w.grad = torch.ones_like(w)
    opt.step()
    assert w.detach().tolist() == [1.0, -1.0, 1.0, 1.0]  # sign(0) = sign(−0) = +1
    assert opt.last_flips[0]["flipped"] == 0

    v = torch.tensor([-0.5, 0.0, 7.0])
    Bop.binarize_([v])
    assert v.tolist() == [-1.0, 1.0, 1.0]


def test_bop_skips_params_without_grad():
    a, b = _param([1.0, 1.0]), _param([0.5, -0.5])
    opt = Bop([a, b], threshold=0.0, gamma=1.0)
    a.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    opt.step()
    assert a.detach().tolist() == [-1.0, 1.0]
    assert b.detach().tolist() == [0.5, -0.5] and b not in opt.state
    assert opt.last_flips == [{"flipped": 1, "total": 4, "fraction": 0.25}]


@pytest.mark.parametrize("kwargs, bad", [
    (dict(threshold=-1e-3), "threshold=-0.001"),
    (dict(threshold=float("nan")), "threshold=nan"),
    (dict(gamma=0.0), "gamma=0.0"),
    (dict(gamma=1.5), "gamma=1.5"),
    (dict(gamma=True), "gamma=True"),
])
def test_bop_validates_hyperparameters(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        Bop([_param([1.0])], **kwargs)
    with pytest.raises(ValueError, match=bad):  # per-group values too
        Bop([{"params": [_param([1.0])], **kwargs}])


def test_bop_param_groups_with_different_thresholds():
    a, b = _param([1.0, -1.0, 1.0]), _param([1.0, -1.0, 1.0])
    opt = Bop([{"params": [a]}, {"params": [b], "threshold": 0.5}], threshold=0.05, gamma=0.5)
    assert [g["threshold"] for g in opt.param_groups] == [0.05, 0.5]
    grad = torch.tensor([0.2, -0.2, 0.02], dtype=torch.float64)  # m = [0.1, -0.1, 0.01]
    a.grad, b.grad = grad.clone(), grad.clone()
    opt.step()
    assert a.detach().tolist() == [-1.0, 1.0, 1.0]
    assert b.detach().tolist() == [1.0, -1.0, 1.0]
    assert [f["flipped"] for f in opt.last_flips] == [2, 0]


def test_bop_rejects_sparse_gradients():
    emb = nn.Embedding(4, 2, sparse=True)
    opt = Bop(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()


def test_bop_deepcopy_keeps_working():
    w = _param([1.0, -1.0])
    opt = copy.deepcopy(Bop([w]))
    assert opt.last_flips == []


# --------------------------------------------------------------------------- CaseOptimizer

class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 8)
        self.hid = QuantLinear(8, 8, weights="ste")
        self.norm = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.norm(self.hid(torch.tanh(self.inp(x)))))


def _batch(seed: int, n: int = 16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _train_steps(model, opt, seeds) -> None:
    for s in seeds:
        x, y = _batch(s)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_is_binary_weight():
    net = _Net()
    mods = dict(net.named_modules())
    assert is_binary_weight("hid.weight", net.hid.weight, net.hid)
    assert not is_binary_weight("hid.bias", net.hid.bias, net.hid)
    assert not is_binary_weight("inp.weight", net.inp.weight, mods["inp"])
    two_bit = QuantLinear(2, 2, weights="dorefa_w", weight_params={"k": 2})
    assert not is_binary_weight("weight", two_bit.weight, two_bit)
    float_weights = QuantLinear(2, 2, weights=None, activations="ste")
    assert not is_binary_weight("weight", float_weights.weight, float_weights)
    one_bit = QuantLinear(2, 2, weights="dorefa_w")
    assert is_binary_weight("weight", one_bit.weight, one_bit)
    assert not is_binary_weight("weight", two_bit.weight, one_bit)  # another layer's weight


def test_case_optimizer_partition_and_repr():
    net = _Net()
    opt = bop_optimizer(net)
    assert [type(o) for o in opt.optimizers] == [Bop, torch.optim.Adam]
    assert opt.param_names[0] == ["hid.weight"]
    assert opt.param_names[1] == ["inp.weight", "inp.bias", "hid.bias", "norm.weight", "norm.bias",
                                  "out.weight", "out.bias"]
    assert opt.optimizers[0].param_groups[0]["params"][0] is net.hid.weight
    assert len(opt.param_groups) == 2 and opt.param_groups[0] is opt.optimizers[0].param_groups[0]
    text = repr(opt)
    assert "is_binary_weight" in text and "Bop" in text and "Adam" in text and "default" in text


def test_case_optimizer_first_case_wins_and_shared_params_once():
    net = _Net()
    net.tied = net.out  # the same module (and parameters) under a second name
    everything = (lambda n, p, m: True, lambda ps: torch.optim.SGD(ps, lr=0.1))
    opt = CaseOptimizer(net, (is_binary_weight, Bop), everything)
    assert opt.param_names[0] == ["hid.weight"]
    assert len(opt.param_names[1]) == 7 and len(opt.optimizers) == 2  # default unused: not built


def test_case_optimizer_unclaimed_parameters_are_named():
    net = _Net()
    with pytest.raises(ValueError, match=r"'norm\.weight'.*'out\.bias'"):
        CaseOptimizer(net, (is_binary_weight, Bop),
                      (lambda n, p, m: n.startswith(("inp.", "hid.")), lambda ps: torch.optim.SGD(ps, lr=0.1)))


def test_case_optimizer_rejects_empty_case_and_bad_factory():
    with pytest.raises(ValueError, match="claimed no parameter"):
        bop_optimizer(nn.Linear(2, 2))  # nothing binary: quantized after building the optimizer?
    with pytest.raises(TypeError, match="not a torch.optim.Optimizer"):
        CaseOptimizer(_Net(), (is_binary_weight, list), default=Bop)
    with pytest.raises(TypeError, match="pair"):
        CaseOptimizer(_Net(), is_binary_weight)


def test_case_optimizer_closure_once_and_same_as_plain_step():
    torch.manual_seed(0)
    a = _Net()
    b = copy.deepcopy(a)
    opt_a, opt_b = bop_optimizer(a, gamma=0.5, threshold=0.0), bop_optimizer(b, gamma=0.5, threshold=0.0)
    x, y = _batch(1)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        opt_a.zero_grad()
        loss = nn.functional.cross_entropy(a(x), y)
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt_a.step(closure)
    assert calls == [True]
    _train_steps(b, opt_b, [1])
    assert loss is not None and loss.requires_grad
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert opt_a.optimizers[0].last_flips[0]["flipped"] > 0


def test_zero_grad():
    net = _Net()
    opt = bop_optimizer(net)
    x, y = _batch(0)
    nn.functional.cross_entropy(net(x), y).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in net.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_identical_continuation():
    torch.manual_seed(0)
    a = _Net()
    opt_a = bop_optimizer(a, threshold=1e-4, gamma=0.1)
    _train_steps(a, opt_a, range(3))
    saved = copy.deepcopy(opt_a.state_dict())
    b = copy.deepcopy(a)
    opt_b = bop_optimizer(b, threshold=1e-4, gamma=0.1)
    opt_b.load_state_dict(saved)
    m_a, m_b = opt_a.optimizers[0].state[a.hid.weight]["m"], opt_b.optimizers[0].state[b.hid.weight]["m"]
    torch.testing.assert_close(m_b, m_a)
    _train_steps(a, opt_a, range(3, 8))
    _train_steps(b, opt_b, range(3, 8))
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    with pytest.raises(ValueError, match="expected 2"):
        opt_b.load_state_dict(saved[:1])

    # Bop alone, two groups, random gradients: the continuation depends on the loaded m
    g = torch.Generator().manual_seed(0)
    w1, w2 = _param([1.0, -1.0, 1.0, -1.0]), _param([-1.0, 1.0])
    bop = Bop([{"params": [w1]}, {"params": [w2], "gamma": 0.3}], threshold=0.05, gamma=0.2)
    w1.grad, w2.grad = torch.randn(4, generator=g).double(), torch.randn(2, generator=g).double()
    bop.step()
    v1, v2 = _param(w1.tolist()), _param(w2.tolist())
    bop2 = Bop([{"params": [v1]}, {"params": [v2]}])
    bop2.load_state_dict(copy.deepcopy(bop.state_dict()))  # torch shares same-dtype state tensors
    assert [g["gamma"] for g in bop2.param_groups] == [0.2, 0.3]
    flips = 0
    for _ in range(6):
        w1.grad, w2.grad = torch.randn(4, generator=g).double(), torch.randn(2, generator=g).double()
        v1.grad, v2.grad = w1.grad.clone(), w2.grad.clone()
        bop.step()
        bop2.step()
        assert w1.tolist() == v1.tolist() and w2.tolist() == v2.tolist()
        assert bop.last_flips == bop2.last_flips
        flips += sum(f["flipped"] for f in bop.last_flips)
    assert flips > 0


def test_lr_schedulers_attach_to_sub_optimizers():
    net = _Net()
    opt = bop_optimizer(net)
    with pytest.raises(TypeError, match="not an Optimizer"):
        torch.optim.lr_scheduler.StepLR(opt, step_size=1)  # documented: not an Optimizer
    sched = torch.optim.lr_scheduler.StepLR(opt.optimizers[1], step_size=1, gamma=0.5)
    _train_steps(net, opt, [0])
    sched.step()
    assert opt.optimizers[1].param_groups[0]["lr"] == pytest.approx(5e-4)


# --------------------------------------------------------------------------- training on digits

@pytest.fixture(scope="module")
def single_thread():
    """Tiny models: intra-op threads only add contention (10-100x slower on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits(single_thread):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    return x[perm[:1400]], y[perm[:1400]], x[perm[1400:]], y[perm[1400:]]


def _fit_digits(model, opt, digits, epochs: int = 5, batch: int = 64) -> tuple[float, int]:
    """Train; return (test accuracy, total Bop flips)."""
    xtr, ytr, xte, yte = digits
    bop = next(o for o in opt.optimizers if isinstance(o, Bop))
    flips = 0
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            flips += sum(f["flipped"] for f in bop.last_flips)
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    return acc, flips


def _all_binary_mlp(h: int = 128) -> nn.Module:
    """Every weight binary, no bias, no affine normalisation: the binary weights are all that learns."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, h, bias=False), nn.BatchNorm1d(h, affine=False), nn.Hardtanh(),
                          nn.Linear(h, h, bias=False), nn.BatchNorm1d(h, affine=False), nn.Hardtanh(),
                          nn.Linear(h, 10, bias=False), nn.BatchNorm1d(10, affine=False))
    return quantize_model(model, weights="ste", skip=None)


def test_bop_trains_an_all_binary_mlp_on_digits(digits):
    model = _all_binary_mlp()
    opt = bop_optimizer(model, threshold=1e-5, gamma=1e-3, default=None)
    assert len(opt.optimizers) == 1 and len(opt.param_names[0]) == 3
    acc, flips = _fit_digits(model, opt, digits)
    assert all(set(p.unique().tolist()) == {-1.0, 1.0} for p in model.parameters())
    assert flips > 500
    assert acc > 0.85  # measured 0.95 (seeds 0–2: 0.945–0.965)

    # control: the same network with Bop never flipping stays near chance (measured 0.06–0.21)
    frozen = _all_binary_mlp()
    acc0, flips0 = _fit_digits(frozen, bop_optimizer(frozen, threshold=math.inf, default=None), digits)
    assert flips0 == 0 and acc0 < 0.4


def test_bop_optimizer_with_float_first_last_layers(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.Hardtanh(),
                          nn.Linear(128, 128), nn.BatchNorm1d(128), nn.Hardtanh(), nn.Linear(128, 10))
    quantize_model(model, weights="ste")  # first and last layers stay float (Adam)
    opt = bop_optimizer(model, threshold=1e-6, gamma=1e-3)
    assert opt.param_names[0] == ["3.weight"]
    acc, flips = _fit_digits(model, opt, digits, epochs=3)
    assert flips > 0 and acc > 0.85
