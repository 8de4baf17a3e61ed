"""rfdnn_bridge.optim: RFDNN and LNEPreconditioner (docs/math.md §2, §4).

Each rule is checked against an independent float64 computation: plain SGD
(lne=False equals torch.optim.SGD), a dense solve of g = I − t tᵀ for the
transform, the order of operations of the module docstring, closures,
state_dict continuation, τ policy and errors, autocast, and a short training
run in every mode.  Algorithm 2 step by step: tests/rfdnn_bridge/test_algorithm2.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lnegeom.lne import LNEMetricError
from rfdnn_bridge.layers import quantize_model
from rfdnn_bridge.lne_grad import list_modes
from rfdnn_bridge.optim import RFDNN, LNEPreconditioner, lne_param_groups, rfdnn_closure, translate

D64 = torch.float64


def _net(seed: int = 0, dtype=D64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4)).to(dtype)


def _batch(seed: int = 1, dtype=D64):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(5, 1, 8, 8, generator=gen, dtype=dtype), torch.randint(0, 4, (5,), generator=gen)


def _train(model, opt, steps=4, closure=False, seed=1):
    x, y = _batch(seed, next(model.parameters()).dtype)
    lf = nn.CrossEntropyLoss()
    for _ in range(steps):
        if closure:
            opt.step(rfdnn_closure(model, lf, x, y, opt))
        else:
            opt.zero_grad()
            lf(model(x), y).backward()
            opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _close(a, b, tol=1e-12):
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- plain path
@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True, weight_decay=1e-2),
                                dict(momentum=0.5, dampening=0.3, weight_decay=1e-3)])
def test_lne_false_is_torch_sgd(kw):
    a, b = _net(), _net()
    _close(_train(a, RFDNN(a.parameters(), lr=0.1, lne=False, **kw)),
           _train(b, torch.optim.SGD(b.parameters(), lr=0.1, **kw)))


def _dense_step(w, v, tau, lr, wd=0.0):
    t = torch.tanh(tau * w.reshape(-1))
    g = torch.eye(t.numel(), dtype=D64) - torch.outer(t, t)
    u = torch.linalg.solve(g, v.reshape(-1)).reshape(w.shape)
    return w - lr * (u + wd * w)


def test_one_exact_step_is_a_dense_solve_plus_decoupled_weight_decay():
    model = _net()
    ref = copy.deepcopy(model)
    x, y = _batch()
    lf = nn.CrossEntropyLoss()
    lf(ref(x), y).backward()
    expected = [_dense_step(p.detach(), p.grad, 0.3, 0.1, 1e-2) for p in ref.parameters()]
    _close(_train(model, RFDNN(model.parameters(), lr=0.1, weight_decay=1e-2, tau=0.3), steps=1), expected)


def test_momentum_accumulates_transformed_gradients():
    model = _net()
    ref = copy.deepcopy(model)
    x, y = _batch()
    lf = nn.CrossEntropyLoss()
    lr, mu, tau = 0.1, 0.9, 0.3
    bufs = None
    for _ in range(3):
        for p in ref.parameters():
            p.grad = None
        lf(ref(x), y).backward()
        with torch.no_grad():
            us = [(w.detach() - _dense_step(w.detach(), w.grad, tau, 1.0)) for w in ref.parameters()]
            bufs = us if bufs is None else [mu * b + u for b, u in zip(bufs, us)]
            for p, b in zip(ref.parameters(), bufs):
                p -= lr * b
    _close(_train(model, RFDNN(model.parameters(), lr=lr, momentum=mu, tau=tau), steps=3),
           [p.detach() for p in ref.parameters()], tol=1e-10)


@pytest.mark.parametrize("flow", [False, True])
def test_step_closure_equals_closure_free_loop(flow):
    a, b = _net(), _net()
    opt_a = RFDNN(a.parameters(), lr=0.1, momentum=0.9, mode="weak", flow=flow)
    opt_b = RFDNN(b.parameters(), lr=0.1, momentum=0.9, mode="weak", flow=flow)
    got = _train(a, opt_a, closure=True)
    if flow:  # the flow needs its passes: compare with a second closure-driven run instead
        _close(got, _train(b, opt_b, closure=True))
        return
    _close(got, _train(b, opt_b, closure=False))


def test_preconditioner_closure_is_not_bypassed():
    """The closure is evaluated before the transform: step(closure) == the closure-free loop, != plain SGD."""
    runs = []
    for closure in (True, False):
        m = _net()
        runs.append(_train(m, LNEPreconditioner(torch.optim.SGD(m.parameters(), lr=0.1), tau=0.3), closure=closure))
    _close(runs[0], runs[1])
    m = _net()
    plain = _train(m, torch.optim.SGD(m.parameters(), lr=0.1))
    assert max(float((u - v).abs().max()) for u, v in zip(runs[0], plain)) > 1e-4


@pytest.mark.parametrize("kw", [dict(mode="exact"), dict(mode="weak", group="channel", momentum=0.9, weight_decay=1e-3),
                                dict(mode="curvature", tau="auto", momentum=0.9, nesterov=True)])
def test_preconditioner_on_sgd_equals_rfdnn(kw):
    kw = {"tau": 0.3, **kw}
    sgd = {k: kw.pop(k) for k in ("momentum", "weight_decay", "nesterov") if k in kw}
    a, b = _net(), _net()
    _close(_train(a, RFDNN(a.parameters(), lr=0.1, **sgd, **kw)),
           _train(b, LNEPreconditioner(torch.optim.SGD(b.parameters(), lr=0.1, **sgd), **kw)))


def test_param_groups_and_names():
    model = _net()
    groups = [
        {"params": [model[0].weight, model[3].weight], "param_names": ["conv.w", "fc.w"], "mode": "weak"},
        {"params": [model[0].bias, model[3].bias], "param_names": ["conv.b", "fc.b"], "lne": False, "lr": 0.01},
    ]
    opt = RFDNN(groups, lr=0.1)
    _train(model, opt, steps=1)
    assert set(opt.diagnostics) == {"conv.w", "fc.w"}
    for d in opt.diagnostics.values():
        assert 0 < float(d["s"]) < 1 and float(d["norm_ratio"]) >= 1.0 - 1e-12
    opt2 = RFDNN(_net().named_parameters(), lr=0.1)
    _train(_net(), opt2, steps=0)


# --------------------------------------------------------------------------- state
@pytest.mark.parametrize("flow", [False, True])
def test_state_dict_round_trip_continues_identically(flow):
    kw = dict(lr=0.05, momentum=0.9, tau="auto", tau_every=2, flow=flow, shifts=((1, 0), (1, 0)))
    model = _net()
    opt = RFDNN(model.parameters(), **kw)
    _train(model, opt, steps=3, closure=True)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    cont = _train(model, opt, steps=3, closure=True, seed=2)
    fresh = _net(seed=5)
    fresh.load_state_dict(saved_model)
    opt2 = RFDNN(fresh.parameters(), **kw)
    opt2.load_state_dict(saved_opt)
    _close(_train(fresh, opt2, steps=3, closure=True, seed=2), cont, tol=0.0)


def test_state_saved_before_an_option_existed_loads_with_its_default():
    model = _net()
    opt = RFDNN(model.parameters(), lr=0.05, flow=True, shifts=((1, 0), (1, 0)), eps="auto")
    _train(model, opt, steps=1, closure=True)
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:
        del group["eps_factor"]  # as saved by a version without this option
    opt2 = RFDNN(model.parameters(), lr=0.05, flow=True, shifts=((1, 0), (1, 0)), eps="auto", eps_factor=2.0)
    opt2.load_state_dict(old)
    assert all(g["eps_factor"] == 2.0 for g in opt2.param_groups)
    _train(model, opt2, steps=1, closure=True)


def test_preconditioner_state_dict_round_trip():
    model = _net()
    opt = LNEPreconditioner(torch.optim.Adam(model.parameters(), lr=1e-2), tau="auto", tau_every=2)
    _train(model, opt, steps=3)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    cont = _train(model, opt, steps=3, seed=2)
    fresh = _net(seed=5)
    fresh.load_state_dict(saved_model)
    opt2 = LNEPreconditioner(torch.optim.Adam(fresh.parameters(), lr=1e-2), tau="auto", tau_every=2)
    opt2.load_state_dict(saved_opt)
    _close(_train(fresh, opt2, steps=3, seed=2), cont, tol=0.0)


# --------------------------------------------------------------------------- τ policy
def test_auto_tau_follows_its_schedule():
    model = _net()
    opt = RFDNN(model.parameters(), lr=1e-4, tau="auto", target_s=0.4, tau_every=3)
    _train(model, opt, steps=7)
    for p in model.parameters():
        assert opt.state[p]["tau_updates"] == 3  # steps 0, 3, 6 (tiny lr: s never reaches s_max)
    for d in opt.diagnostics.values():
        assert abs(float(d["s"]) - 0.4) < 1e-3


def test_auto_tau_resolves_early_when_s_exceeds_s_max():
    model = _net()
    opt = RFDNN(model.parameters(), lr=0.0, tau="auto", target_s=0.5, s_max=0.6, tau_every=1000)
    _train(model, opt, steps=1)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)  # s grows beyond s_max with the held τ
    _train(model, opt, steps=1)
    assert all(opt.state[p]["tau_updates"] == 2 for p in model.parameters())
    assert all(abs(float(d["s"]) - 0.5) < 1e-3 for d in opt.diagnostics.values())


def test_fixed_tau_too_large_names_the_parameter_s_and_the_largest_tau():
    model = _net()
    opt = RFDNN(model.named_parameters(), lr=0.1, tau=5.0)
    with pytest.raises(LNEMetricError, match=r"0\.weight.*s = .*tau <"):
        _train(model, opt, steps=1)


def test_clipping_bounds_weights_and_the_fixed_tau_bound_keeps_s_below_one():
    model = _net()
    c = 0.05
    n_max = max(p.numel() for p in model.parameters())
    tau = 0.99 * math.atanh(1 / math.sqrt(n_max)) / c  # s <= n tanh²(τ c) < 1 for every parameter
    with torch.no_grad():
        for p in model.parameters():
            p.clamp_(-c, c)
    opt = RFDNN(model.parameters(), lr=0.5, momentum=0.9, tau=tau, clip=c)
    _train(model, opt, steps=6)
    for p in model.parameters():
        assert float(p.abs().max()) <= c
        assert float((torch.tanh(tau * p) ** 2).sum()) < 1


@pytest.mark.parametrize("kw, match", [
    (dict(mode="nope"), "unknown LNE mode 'nope'"),
    (dict(group="row"), "unknown group 'row'"),
    (dict(tau=-1.0), "tau must be"),
    (dict(tau="big"), "tau must be"),
    (dict(gate="maybe"), "unknown gate 'maybe'"),
    (dict(proxy="x"), "unknown proxy 'x'"),
    (dict(n_grad="x"), "unknown n_grad 'x'"),
    (dict(shifts=((1, 1), (1, 0))), "k1 - k2 = 0"),
    (dict(shifts=((5, 0), (1, 0))), "fewer than 4 pixels"),
    (dict(target_s=1.0), "target_s must lie in"),
    (dict(eps=-1.0), "eps must be >= 0"),
    (dict(nesterov=True), "nesterov=True needs momentum"),
])
def test_bad_options_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        RFDNN(_net().parameters(), lr=0.1, **kw)


def test_nan_gradient_and_missing_flow_closure_are_errors():
    model = _net()
    opt = RFDNN(model.named_parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model[0].weight.grad[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=r"'0\.weight'.*NaN"):
        opt.step()
    opt = RFDNN(model.parameters(), lr=0.1, flow=True)
    with pytest.raises(ValueError, match="rfdnn_closure"):
        opt.step()
    with pytest.raises(ValueError, match="rfdnn_closure"):
        opt.step(lambda: 0.0)


# --------------------------------------------------------------------------- Algorithm 2 basics
def test_translate_zero_fills():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = translate(x, (1, -2))
    assert torch.equal(y[0, 0, 1:, :2], x[0, 0, :3, 2:])
    assert float(y[0, 0, 0].abs().sum()) == 0 and float(y[0, 0, :, 2:].abs().sum()) == 0
    assert torch.equal(translate(x, (0, 0)), x) and float(translate(x, (4, 0)).abs().sum()) == 0


def test_flow_regulariser_is_not_identically_zero_and_counts_passes():
    model = _net()
    opt = RFDNN(model.parameters(), lr=0.1, flow=True)
    x, y = _batch()
    calls = []
    inner = rfdnn_closure(model, nn.CrossEntropyLoss(), x, y, opt)

    def closure(shift=(0, 0), create_graph=False):
        calls.append(tuple(shift))
        return inner(shift, create_graph)

    for _ in range(2):
        opt.step(closure)
    assert len(calls) == 10  # main + 4 distinct translations, twice
    assert all(float(d["N"].max()) > 0 for d in opt.diagnostics.values())


# --------------------------------------------------------------------------- dtype / device
def test_autocast_bfloat16_training_step():
    model = _net(dtype=torch.float32)
    opt = RFDNN(model.named_parameters(), lr=0.1, momentum=0.9)
    x, y = _batch(dtype=torch.float32)
    for _ in range(2):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(d["s"].dtype == torch.float32 and float(d["s"]) < 1 for d in opt.diagnostics.values())


@pytest.mark.gpu
@pytest.mark.parametrize("flow", [False, True])
def test_cuda_matches_cpu(flow):
    kw = dict(lr=0.1, momentum=0.9, mode="weak", flow=flow, shifts=((1, 0), (1, 0)))
    a, b = _net(), _net().cuda()
    cpu = _train(a, RFDNN(a.parameters(), **kw), closure=True)
    x, y = (t.cuda() for t in _batch())
    opt = RFDNN(b.parameters(), **kw)
    for _ in range(4):
        opt.step(rfdnn_closure(b, nn.CrossEntropyLoss(), x, y, opt))
    _close([p.detach().cpu() for p in b.parameters()], cpu, tol=1e-9)


# --------------------------------------------------------------------------- training
def _digits(n_train=1200, n_test=400):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    return X[:n_train], y[:n_train], X[-n_test:], y[-n_test:]


@pytest.mark.parametrize("mode", sorted(set(list_modes()) | {"flow"}))
def test_trains_a_quantized_cnn_on_digits_in_every_mode(mode):
    Xtr, ytr, Xte, yte = _digits()
    torch.manual_seed(0)
    model = quantize_model(
        nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)),
        weights="clipped",
    )
    kw = dict(flow=True, mode="weak", shifts=((1, 0), (1, 0))) if mode == "flow" else dict(mode=mode)
    if mode == "strong":  # P-28 only for groups of at most 64 weights: one metric per output channel
        kw["group"] = "channel"
    opt = RFDNN(model.named_parameters(), lr=0.05, momentum=0.9, **kw)
    lf = nn.CrossEntropyLoss()
    with torch.no_grad():
        before = float(lf(model(Xtr), ytr))
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        perm = torch.randperm(len(Xtr), generator=gen)
        for i in range(0, len(Xtr), 50):
            idx = perm[i:i + 50]
            opt.step(rfdnn_closure(model, lf, Xtr[idx], ytr[idx], opt))
    with torch.no_grad():
        after = float(lf(model(Xtr), ytr))
        acc = float((model(Xte).argmax(1) == yte).float().mean())
    assert after < 0.5 * before and acc > 0.5, (mode, before, after, acc)


def test_lne_param_groups_split_quantized_weights_from_the_rest():
    model = quantize_model(nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 2)))
    groups = lne_param_groups(model, mode="weak")
    assert groups[0]["param_names"] == ["2.weight"] and groups[0]["mode"] == "weak" and groups[0]["lne"]
    assert set(groups[1]["param_names"]) == {"0.weight", "0.bias", "2.bias", "4.weight", "4.bias"}
    assert not groups[1]["lne"]
    assert lne_param_groups(model, "weights")[0]["param_names"] == ["0.weight", "2.weight", "4.weight"]
    assert len(lne_param_groups(model, "all")) == 1
    with pytest.raises(ValueError, match="no quantized layer"):
        lne_param_groups(_net())
    with pytest.raises(ValueError, match="unknown which='some'"):
        lne_param_groups(model, "some")
    opt = RFDNN(groups, lr=0.1)
    x = torch.randn(3, 4)
    opt.step(rfdnn_closure(model, lambda out, y: out.pow(2).mean(), x, None, opt))
    assert set(opt.diagnostics) == {"2.weight"}


@pytest.mark.parametrize("factor", [3.0, 1.5])
def test_auto_eps_gates_on_a_multiple_of_the_running_mean_of_n(factor):
    from rfdnn_bridge.algorithm2 import EPS_AUTO_DECAY

    model = _net()
    opt = RFDNN(model.named_parameters(), lr=0.3, flow=True, shifts=((1, 0), (1, 0)), eps="auto", alpha=0.0,
                eps_factor=factor)
    x, y = _batch()
    ema, passes = {}, []
    for step in range(12):
        gen = torch.Generator().manual_seed(step)  # a different batch each step: N varies
        xb = torch.rand(5, 1, 8, 8, generator=gen, dtype=D64)
        opt.step(rfdnn_closure(model, nn.CrossEntropyLoss(), xb, y, opt))
        for name, d in opt.diagnostics.items():
            n = d["N"]
            ema[name] = n.clone() if name not in ema else EPS_AUTO_DECAY * ema[name] + (1 - EPS_AUTO_DECAY) * n
            expected = (n <= factor * ema[name]).to(n.dtype)
            assert torch.equal(d["gate"], expected), (step, name)
            passes.append(float(d["gate"].min()))
    assert passes[0] == 1.0 and min(passes) == 0.0  # the first step passes; some later step is gated
    with pytest.raises(ValueError, match="eps must be a number >= 0 or 'auto'"):
        RFDNN(model.parameters(), eps="sometimes")
    with pytest.raises(ValueError, match="eps_factor must be > 0"):
        RFDNN(model.parameters(), eps="auto", eps_factor=0.0)


@pytest.mark.parametrize("n_grad", ["direct", "double"])
def test_translated_passes_leave_batchnorm_running_stats_alone(n_grad):
    """Also with n_grad="double", whose kept graphs saved the statistics (an in-place restore broke
    its backward: "modified by an inplace operation"); the layer keeps its own buffer tensors."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4))
    ref = copy.deepcopy(model)
    buffers = [id(b) for b in model.buffers()]
    opt = RFDNN(model.parameters(), lr=0.0, flow=True, n_grad=n_grad)  # 5 passes, lr 0: only BN buffers could move
    x, y = _batch(dtype=torch.float32)
    opt.step(rfdnn_closure(model, nn.CrossEntropyLoss(), x, y, opt))
    ref(x)  # one training-mode forward on the untranslated batch
    bn, bn_ref = model[1], ref[1]
    assert int(bn.num_batches_tracked) == 1 and [id(b) for b in model.buffers()] == buffers
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_parameters_continue_exactly_after_a_reload(dtype):
    torch.manual_seed(0)
    w = torch.nn.Parameter((0.05 * torch.randn(2000)).to(dtype))
    grads = [torch.randn(2000).to(dtype) for _ in range(6)]

    def run(opt, gs):
        for g in gs:
            w.grad = g.clone()
            opt.step()

    opt = RFDNN([w], lr=0.05, momentum=0.9)
    run(opt, grads[:3])
    saved_w, saved = w.detach().clone(), copy.deepcopy(opt.state_dict())
    run(opt, grads[3:])
    expected = w.detach().clone()
    with torch.no_grad():
        w.copy_(saved_w)
    opt2 = RFDNN([w], lr=0.05, momentum=0.9)
    opt2.load_state_dict(saved)
    assert opt2.state[w]["tau"].dtype == torch.float32
    run(opt2, grads[3:])
    assert torch.equal(w.detach(), expected)


# --------------------------------------------------------------------------- options checked, refused steps
@pytest.mark.parametrize("kw, match", [
    (dict(lr=math.nan), r"lr must be a finite number >= 0, got lr=nan"),
    (dict(lr=math.inf), r"lr=inf"),
    (dict(lr=-0.1), r"lr=-0\.1"),
    (dict(weight_decay=-1e-4), r"weight_decay=-0\.0001"),
    (dict(weight_decay=math.inf), r"weight_decay=inf"),
    (dict(momentum=-0.5), r"momentum=-0\.5"),
    (dict(dampening=math.nan), r"dampening=nan"),
    (dict(alpha=-0.1), r"alpha=-0\.1"),
    (dict(alpha=math.nan), r"alpha=nan"),
    (dict(flow_eta=math.inf), r"flow_eta=inf"),
    (dict(tentative_lr=-1.0), r"tentative_lr=-1\.0"),
    (dict(momentum=0.9, dampening=0.1, nesterov=True), r"dampening=0\.1"),
])
def test_sgd_and_flow_options_are_checked_per_group(kw, match):
    with pytest.raises(ValueError, match=match):
        RFDNN(_net().parameters(), **{"lr": 0.1, **kw})
    # the same value in a param group of its own is refused just as well
    group = {"params": list(_net().parameters()), **kw}
    with pytest.raises(ValueError, match=match):
        RFDNN([group], lr=0.1)


def test_optimizer_wide_options_in_a_param_group_are_refused_not_ignored():
    model = quantize_model(_net(), "sign")
    with pytest.raises(ValueError, match=r"flow is an option of the whole optimizer.*RFDNN\(\.\.\.\) itself"):
        RFDNN(lne_param_groups(model, which="weights", mode="weak", flow=True), lr=0.1)
    with pytest.raises(ValueError, match=r"n_grad, shifts are options of the whole optimizer"):
        RFDNN([{"params": list(model.parameters()), "shifts": ((1, 0), (1, 0)), "n_grad": "none"}], lr=0.1)
    with pytest.raises(ValueError, match=r"unknown param-group option\(s\) \['eps_fator'\].*'eps_factor'"):
        RFDNN([{"params": list(model.parameters()), "eps_fator": 10}], lr=0.1)
    # a refused group leaves the optimizer as it was, and extra keys torch and users use are kept
    opt = RFDNN([{"params": [model[0].weight], "name": "conv", "initial_lr": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="lr=-1"):
        opt.add_param_group({"params": [model[-1].weight], "lr": -1})
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["name"] == "conv"


def test_nan_gradient_of_a_plain_sgd_group_is_refused_too():
    model = _net()
    opt = RFDNN(lne_param_groups(model, which="weights"), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model[0].bias.grad[1] = math.inf  # the bias is in the lne=False group
    with pytest.raises(ValueError, match=r"'0\.bias'.*NaN or inf"):
        opt.step()
    _close([p.detach() for p in model.parameters()], before, tol=0)
    pre = LNEPreconditioner(torch.optim.SGD(lne_param_groups(model, which="weights"), lr=0.1))
    with pytest.raises(ValueError, match=r"'0\.bias'.*NaN or inf"):
        pre.step()
    _close([p.detach() for p in model.parameters()], before, tol=0)


@pytest.mark.parametrize("kw", [dict(flow=True, eps="auto", tau="auto", momentum=0.9),
                                dict(flow=True, eps="auto", gate="element", tau_every=1),
                                dict(tau="auto", tau_every=1, momentum=0.9)])
def test_a_refused_step_changes_no_state(kw):
    """A NaN batch in the middle of a run raises, and the run then continues exactly as the run
    that never saw that batch (weights, τ, x_prev, the gate's running mean, momentum)."""
    lf = nn.CrossEntropyLoss()
    batches = [_batch(seed) for seed in (1, 2, 3, 4)]
    bad_x = batches[0][0].clone()
    bad_x[0, 0, 0, 0] = math.nan

    def run(with_bad: bool):
        model = _net()
        opt = RFDNN(lne_param_groups(model, which="weights"), lr=0.1, **kw)
        for i, (x, y) in enumerate(batches):
            if with_bad and i == 2:
                with pytest.raises(ValueError, match="NaN or inf"):
                    opt.step(rfdnn_closure(model, lf, bad_x, y, opt))
            opt.step(rfdnn_closure(model, lf, x, y, opt))
        return model, opt

    (m0, o0), (m1, o1) = run(False), run(True)
    _close(list(m1.parameters()), list(m0.parameters()), tol=0)
    for p0, p1 in zip(m0.parameters(), m1.parameters()):
        s0, s1 = o0.state[p0], o1.state[p1]
        assert s0.keys() == s1.keys()
        for key in s0:
            if isinstance(s0[key], torch.Tensor):
                torch.testing.assert_close(s1[key], s0[key], rtol=0, atol=0)
                assert bool(torch.isfinite(s1[key]).all())
            else:
                assert s1[key] == s0[key]


@pytest.mark.parametrize("wrapper", [False, True])
def test_a_mode_edited_in_param_groups_takes_effect_and_an_unknown_one_is_refused(wrapper):
    """Modes are resolved once per value of (mode, eta, eta_relative), not once per group: an edited
    group steps as a group built with the new options would, and an unknown mode refuses the step
    with every weight and state entry as before."""
    x, y = _batch()
    lf = nn.CrossEntropyLoss()

    def stepped(edit):
        model = _net()
        opt = (LNEPreconditioner(torch.optim.SGD(model.parameters(), lr=0.1), mode="exact") if wrapper
               else RFDNN(model.parameters(), lr=0.1, mode="exact"))
        opt.zero_grad()
        lf(model(x), y).backward()
        opt.step()
        opt.param_groups[0].update(edit)
        opt.zero_grad()
        lf(model(x), y).backward()
        return model, opt

    model, opt = stepped(dict(mode="curvature", eta=0.05))
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    ref, ref_opt = stepped({})
    ref_opt.param_groups[0].update(mode="curvature", eta=0.05)  # same edit, stepped the same way
    ref_opt.step()
    _close(list(model.parameters()), list(ref.parameters()), tol=0)
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    weak, weak_opt = stepped(dict(mode="weak"))
    weak_opt.step()
    assert any(not torch.equal(p, q) for p, q in zip(weak.parameters(), model.parameters()))

    bad, bad_opt = stepped(dict(mode="nosuch"))
    weights = [p.detach().clone() for p in bad.parameters()]
    state = copy.deepcopy(bad_opt.state_dict())
    with pytest.raises(ValueError, match="unknown LNE mode 'nosuch'"):
        bad_opt.step()
    _close([p.detach() for p in bad.parameters()], weights, tol=0)
    assert str(bad_opt.state_dict()) == str(state)


def test_load_state_dict_refuses_an_unknown_mode_before_loading_anything():
    model = _net(dtype=torch.float16)
    opt = RFDNN(model.parameters(), lr=0.1, mode="weak", tau="auto", tau_every=1)
    x, y = _batch(dtype=torch.float16)
    lf = nn.CrossEntropyLoss()
    lf(model(x).float(), y).backward()
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    saved["param_groups"][0]["mode"] = "nosuch"
    saved["param_groups"][0]["lr"] = 0.5
    kept = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="unknown LNE mode 'nosuch'"):
        opt.load_state_dict(saved)
    assert str(opt.state_dict()) == str(kept) and opt.param_groups[0]["lr"] == 0.1
