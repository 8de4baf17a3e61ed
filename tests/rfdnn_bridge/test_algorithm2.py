"""The fast RF-DNN operator (``rfdnn_bridge.optim.RFDNN``) against a slow literal dense reference.

``tests/rfdnn_bridge/rfdnn_literal.py`` transcribes one step of the discrete Ricci flow inside a network
(docs/math.md §4, Algorithm 2) with n×n matrices, python loops and ``torch.linalg.solve``; here the
fast operator and the literal run from identical copies of a tiny float64 CNN on a fixed batch
of digits for 4 steps, and weights, N per group row and the gate are compared after every step.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from .rfdnn_literal import LiteralRFDNN, literal_translate

STEPS = 4
W_RTOL, W_ATOL = 1e-9, 1e-13
N_RTOL, N_ATOL = 1e-6, 1e-15  # the fast N (Gram identity) loses ~eps·s²/N: seen up to 1e-7


# --------------------------------------------------------------------------- fixtures
class TinyCNN(nn.Module):
    """Conv2d(1, 2, 3) → ReLU → AvgPool2d(2) → Linear(18, 10) on 8×8 inputs.

    (The pool keeps fc.weight at n = 180, so the literal's dense 180×180 matrices stay cheap.)
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(18, 10)

    def forward(self, x):
        return self.fc(F.avg_pool2d(F.relu(self.conv(x)), 2).flatten(1))


_BATCH = None


def batch():
    global _BATCH
    if _BATCH is None:
        from sklearn.datasets import load_digits

        d = load_digits()
        idx = [0, 11, 23, 35, 47, 59]
        x = torch.tensor(d.data[idx] / 16.0, dtype=torch.float64).reshape(-1, 1, 8, 8)
        y = torch.tensor(d.target[idx], dtype=torch.long)
        _BATCH = (x, y)
    return _BATCH


def make_model(quantized: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = TinyCNN().double()
    if quantized:
        from rfdnn_bridge.layers import quantize_model

        quantize_model(model, weights="clipped", skip=None)
    return model


WEIGHTS = ["conv.weight", "fc.weight"]
BIASES = ["conv.bias", "fc.bias"]


def group_specs(kind: str, bias_opts: dict | None = None) -> list[dict]:
    """Parameter groups by name: 'wb' = weights lne, biases plain SGD; 'all' = one lne group."""
    if kind == "all":
        return [dict(params=WEIGHTS + BIASES)]
    if kind == "wb":
        return [dict(params=list(WEIGHTS)), dict(params=list(BIASES), lne=False, **(bias_opts or {}))]
    raise ValueError(kind)


def fast_groups(model: nn.Module, specs: list[dict]) -> list[dict]:
    named = dict(model.named_parameters())
    out = []
    for g in specs:
        d = {k: v for k, v in g.items() if k != "params"}
        d["params"] = [named[name] for name in g["params"]]
        d["param_names"] = list(g["params"])
        out.append(d)
    return out


# --------------------------------------------------------------------------- the cases
BASE = dict(flow=True, lr=0.1, tau=1.0, gate="group", eps=math.inf, proxy="paper", n_grad="direct",
            alpha=0.0, shifts=((1, 0), (1, 0)), mode="exact", group="tensor")
S11 = ((1, 0), (1, 0))
S21 = ((2, -1), (1, -1))

# eps="auto": chosen between observed N values (from an ungated literal run), so the gate
# really passes some rows / elements and blocks others.
CASES = {
    "tensor-exact-paper-none-s11": dict(
        quant=False, groups="wb", opts=dict(group="tensor", tau=0.4, n_grad="none", shifts=S11)),
    "tensor-weak-paper-direct-s21-all-nesterov-wd": dict(
        quant=True, groups="all", opts=dict(group="tensor", tau=0.4, mode="weak", n_grad="direct",
                                            alpha=1.0, shifts=S21, momentum=0.9, nesterov=True,
                                            weight_decay=5e-4)),
    "tensor-exact-paper-double-s21": dict(
        quant=False, groups="wb", opts=dict(group="tensor", tau=0.4, n_grad="double", alpha=1.0,
                                            shifts=S21)),
    "tensor-exact-ricci-none-element-gate": dict(
        quant=False, groups="wb", opts=dict(group="tensor", tau=0.4, proxy="ricci", flow_eta=1e-4,
                                            n_grad="none", gate="element", eps="auto", shifts=S21)),
    "channel-exact-paper-direct-s21-group-gate-quant": dict(
        quant=True, groups="wb", opts=dict(group="channel", n_grad="direct", alpha=1.0, shifts=S21,
                                           gate="group", eps="auto")),
    "channel-weak-paper-direct-s11-element-gate-momentum": dict(
        quant=False, groups="wb", opts=dict(group="channel", mode="weak", n_grad="direct", alpha=1.0,
                                            shifts=S11, gate="element", eps="auto", momentum=0.9,
                                            dampening=0.1)),
    "channel-exact-ricci-direct-s21-quant": dict(
        quant=True, groups="wb", opts=dict(group="channel", proxy="ricci", flow_eta=1e-4,
                                           n_grad="direct", alpha=1.0, shifts=S21, gate="off")),
    "channel-weak-ricci-double-element-gate": dict(
        quant=False, groups="wb", opts=dict(group="channel", mode="weak", proxy="ricci", flow_eta=1e-4,
                                            n_grad="double", alpha=0.5, shifts=S11, gate="element",
                                            eps="auto")),
    "channel-exact-paper-double-s11-quant-nesterov-biasgroup": dict(
        quant=True, groups="wb", bias_opts=dict(lr=0.05, momentum=0.5, weight_decay=1e-2),
        opts=dict(group="channel", tau=0.5, lr=0.05, n_grad="double", alpha=1.0, shifts=S11, gate="off",
                  momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "channel-exact-paper-direct-s21-tentative-lr-wd": dict(
        quant=False, groups="wb", opts=dict(group="channel", n_grad="direct", alpha=2.0, shifts=S21,
                                            lr=0.05, tentative_lr=0.3, weight_decay=1e-3,
                                            gate="group", eps="auto")),
}


def case_opts(case: dict, eps=None) -> dict:
    opts = dict(BASE)
    opts.update(case["opts"])
    if opts["eps"] == "auto":
        opts["eps"] = eps
    return opts


def run_literal(case: dict, opts: dict, steps: int = STEPS):
    model = make_model(case["quant"])
    x, y = batch()
    lit = LiteralRFDNN(model, F.cross_entropy, x, y, group_specs(case["groups"], case.get("bias_opts")),
                       **opts)
    history = []
    for _ in range(steps):
        lit.step()
        history.append(dict(
            weights={k: p.detach().clone() for k, p in model.named_parameters()},
            diag=copy.deepcopy(lit.diagnostics),
        ))
    return history


def gate_values(history, gate: str) -> np.ndarray:
    """The quantities the gate compares with eps (N per row, or n·N_i per element)."""
    vals = []
    for h in history:
        for d in h["diag"].values():
            if gate == "group":
                vals.extend(d["N"].tolist())
            else:
                n = d["N_elem"].shape[-1]
                vals.extend((n * d["N_elem"]).reshape(-1).tolist())
    return np.asarray(vals)


def pick_eps(case: dict) -> float:
    """An eps in the widest gap between the middle half of the ungated gate values."""
    opts = case_opts(case)
    probe = dict(opts, eps=math.inf)
    v = np.sort(gate_values(run_literal(case, probe), opts["gate"]))
    v = v[v > 0]
    lo, hi = len(v) // 4, max(len(v) * 3 // 4, len(v) // 4 + 1)
    gaps = np.log(v[lo + 1:hi + 1]) - np.log(v[lo:hi])
    i = lo + int(np.argmax(gaps))
    return float(math.sqrt(v[i] * v[i + 1]))


def run_fast(case: dict, opts: dict, steps: int = STEPS):
    from rfdnn_bridge.optim import RFDNN, rfdnn_closure

    model = make_model(case["quant"])
    x, y = batch()
    fast_opts = {k: v for k, v in opts.items()}
    opt = RFDNN(fast_groups(model, group_specs(case["groups"], case.get("bias_opts"))), **fast_opts)
    closure = rfdnn_closure(model, F.cross_entropy, x, y, opt)
    history = []
    for _ in range(steps):
        opt.step(closure)
        history.append(dict(
            weights={k: p.detach().clone() for k, p in model.named_parameters()},
            diag={k: {kk: (vv.detach().clone() if torch.is_tensor(vv) else vv) for kk, vv in d.items()}
                  for k, d in opt.diagnostics.items()},
        ))
    return history


# --------------------------------------------------------------------------- self-checks of the literal
def test_literal_translate():
    x = torch.arange(2 * 3 * 4, dtype=torch.float64).reshape(2, 3, 4)
    out = literal_translate(x, (1, -2))
    assert out[0, 0].abs().sum() == 0  # row 0 has no source (r − 1 < 0)
    assert out[1, 2, 0] == x[1, 1, 2] and out[1, 2, 1] == x[1, 1, 3]
    assert out[1, 2, 2] == 0 and out[1, 2, 3] == 0
    assert torch.equal(literal_translate(x, (0, 0)), x)


def test_literal_plain_groups_match_torch_sgd():
    """All groups lne=False: the literal is torch.optim.SGD (momentum, nesterov, weight decay)."""
    x, y = batch()
    m1, m2 = make_model(False), make_model(False)
    groups = [dict(params=WEIGHTS, lne=False, momentum=0.9, nesterov=True, weight_decay=1e-3),
              dict(params=BIASES, lne=False, lr=0.05, momentum=0.5, dampening=0.2)]
    lit = LiteralRFDNN(m1, F.cross_entropy, x, y, groups, lr=0.1)
    named = dict(m2.named_parameters())
    sgd = torch.optim.SGD([dict(params=[named[k] for k in WEIGHTS], momentum=0.9, nesterov=True,
                                weight_decay=1e-3),
                           dict(params=[named[k] for k in BIASES], lr=0.05, momentum=0.5, dampening=0.2)],
                          lr=0.1)
    for _ in range(3):
        lit.step()
        sgd.zero_grad()
        F.cross_entropy(m2(x), y).backward()
        sgd.step()
        for (k, a), (_, b) in zip(m1.named_parameters(), m2.named_parameters()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15, msg=k)


def test_literal_first_step_is_natural_gradient():
    """alpha = 0, gate off: one step is w − lr g⁻¹ G0 (Sherman–Morrison via lnegeom), N > 0."""
    from lnegeom.lne import LNEMetric

    x, y = batch()
    model = make_model(False)
    ref = make_model(False)
    F.cross_entropy(ref(x), y).backward()
    lit = LiteralRFDNN(model, F.cross_entropy, x, y, group_specs("wb"), group="channel", tau=1.0,
                       gate="off", alpha=0.0, shifts=S21)
    lit.step()
    refp = dict(ref.named_parameters())
    for k, p in model.named_parameters():
        w0 = refp[k].detach()
        if k in WEIGHTS:
            rows = w0.reshape(w0.shape[0], -1)
            u = LNEMetric(1.0).inverse_apply(rows, refp[k].grad.reshape(rows.shape)).reshape(w0.shape)
        else:
            u = refp[k].grad
        torch.testing.assert_close(p.detach(), w0 - 0.1 * u, rtol=1e-12, atol=1e-15, msg=k)
        if k in WEIGHTS:
            assert (lit.diagnostics[k]["N"] > 0).all()


def test_literal_n_grad_variants_differ():
    """alpha∇N really moves the weights in the chosen cases: none ≠ direct ≠ double."""
    case = dict(quant=False, groups="wb", opts=dict(group="channel", alpha=1.0, shifts=S21))
    res = {}
    for ng in ("none", "direct", "double"):
        h = run_literal(case, case_opts(case) | {"n_grad": ng}, steps=2)
        res[ng] = h[-1]["weights"]["fc.weight"]
    for a, b in (("none", "direct"), ("direct", "double")):
        rel = float((res[a] - res[b]).norm() / res[a].norm())
        assert rel > 1e-8, (a, b, rel)


# --------------------------------------------------------------------------- fast vs literal
@pytest.mark.parametrize("name", list(CASES))
def test_fast_matches_literal(name):
    pytest.importorskip("rfdnn_bridge.optim")
    case = CASES[name]
    eps = pick_eps(case) if case["opts"].get("eps") == "auto" else None
    opts = case_opts(case, eps)
    lit = run_literal(case, opts)
    if eps is not None:
        # the gate is exercised (some pass, some fail) and no value sits on the threshold
        v = gate_values(lit, opts["gate"])
        assert (v <= eps).any() and (v > eps).any(), (eps, v.min(), v.max())
        assert np.min(np.abs(np.log(v[v > 0] / eps))) > 1e-6
    fast = run_fast(case, opts)
    for step, (hl, hf) in enumerate(zip(lit, fast), start=1):
        for k, wl in hl["weights"].items():
            torch.testing.assert_close(hf["weights"][k], wl, rtol=W_RTOL, atol=W_ATOL,
                                       msg=lambda m, k=k, step=step: f"{name}: weights {k} step {step}: {m}")
        for k, dl in hl["diag"].items():
            assert k in hf["diag"], f"{name}: no diagnostics for {k}"
            df = hf["diag"][k]
            assert (dl["N"] > 0).all()
            torch.testing.assert_close(df["N"].reshape(-1).to(torch.float64), dl["N"], rtol=N_RTOL,
                                       atol=N_ATOL,
                                       msg=lambda m, k=k, step=step: f"{name}: N {k} step {step}: {m}")
            torch.testing.assert_close(df["gate"].reshape(-1).to(torch.float64), dl["gate"], rtol=0,
                                       atol=1e-12,
                                       msg=lambda m, k=k, step=step: f"{name}: gate {k} step {step}: {m}")
            tau = torch.as_tensor(df["tau"], dtype=torch.float64).reshape(-1)
            assert torch.allclose(tau, torch.full_like(tau, float(opts["tau"])))


@pytest.mark.parametrize("shifts,per_step", [(S11, 3), (S21, 5), (((0, 1), (2, 0)), 3)])
def test_identity_translations_reuse_main_pass(shifts, per_step):
    pytest.importorskip("rfdnn_bridge.optim")
    from rfdnn_bridge.optim import RFDNN, rfdnn_closure

    x, y = batch()
    model = make_model(False)
    opt = RFDNN(fast_groups(model, group_specs("wb")), lr=0.1, tau=1.0, group="channel", shifts=shifts,
                n_grad="direct", alpha=1.0, flow=True)
    inner = rfdnn_closure(model, F.cross_entropy, x, y, opt)
    calls = []

    def counted(*args, **kwargs):
        calls.append((args, kwargs))
        return inner(*args, **kwargs)

    for step in range(1, 3):
        opt.step(counted)
        assert len(calls) == per_step * step
    # and the literal makes the same number of passes
    lit = LiteralRFDNN(make_model(False), F.cross_entropy, x, y, group_specs("wb"), group="channel",
                       shifts=shifts)
    lit.step()
    assert lit.calls == per_step
