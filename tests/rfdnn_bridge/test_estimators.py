"""The STE family (docs/estimators/index.md): forward values, backward rules vs the table,
numpy reference == torch backward, surrogates, schedules, registry, parameters, dtypes."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rfdnn_bridge import backward_rules as R
from rfdnn_bridge.estimators import Estimator, get_estimator, list_estimators, register_estimator

PTS = [-1e30, -2.0, -1.5, -1.0, -0.7, -0.1, -0.05, 0.0, 0.05, 0.1, 0.3, 1.0, 1.2, 1.5, 2.0, 1e30]
ALL = ["identity", "clipped", "dorefa_w", "dorefa_a", "approxsign", "swishsign", "magnitude_sign", "reste",
       "yin_identity", "yin_relu", "yin_clipped_relu", "stochastic_binary", "mirror_tanh", "ede", "rbnn", "ternary",
       "progressive_sign"]


def sig(z):
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _sech2(z):
    return 0.0 if abs(z) > 350 else 1.0 / math.cosh(z) ** 2


# independent hand-written derivatives of the table (scalar, plain math)
HAND = {
    "identity": lambda x: 1.0,
    "clipped": lambda x: 1.0 if abs(x) <= 1 else 0.0,
    "magnitude_sign": lambda x: 1.0 if abs(x) <= 1 else 0.0,
    "dorefa_a": lambda x: 1.0 if 0 <= x <= 1 else 0.0,
    "approxsign": lambda x: (2 - 2 * abs(x)) if abs(x) <= 1 else 0.0,
    "swishsign": lambda x: 0.0 if abs(5 * x) > 700 else 5 * (2 - 5 * x * math.tanh(2.5 * x)) / (1 + math.cosh(5 * x)),
    "reste": lambda x: (0.1 ** (-2 / 3) if abs(x) <= 0.1 else (abs(x) ** (-2 / 3) / 3 if abs(x) <= 1.5 else 0.0)),
    "yin_identity": lambda x: 1.0,
    "yin_relu": lambda x: 1.0 if x > 0 else 0.0,
    "yin_clipped_relu": lambda x: 1.0 if 0 < x < 1 else 0.0,
    "stochastic_binary": lambda x: 2 * sig(x) * (1 - sig(x)) if abs(x) < 700 else 0.0,
    "mirror_tanh": lambda x: 1.0,
    "dorefa_w": lambda x: 1.0,  # k = 1 default: identity through sign, scale stopped
    # IR-Net's EDE at its first epoch: t = 0.1, k = max(1/t, 1) = 10, so k t (1 − tanh²(t x)) = sech²(x/10)
    "ede": lambda x: _sech2(0.1 * x),
    # RBNN at its first epoch: t = 0.01, k = 100: 100 · max(0, √2 · 0.01 − 1e-4 |x|)
    "rbnn": lambda x: max(0.0, 100 * (math.sqrt(2) * 0.01 - 1e-4 * abs(x))),
    "ternary": lambda x: 1.0 if abs(x) <= 1 else 0.0,  # larq's ste_tern: the clipped STE
    "progressive_sign": lambda x: 1.0,  # bitorch: straight through
}
SIGN_FWD = {n: (lambda x: 1.0 if x >= 0 else -1.0) for n in
            ["identity", "clipped", "approxsign", "swishsign", "reste", "ede", "rbnn"]}
SIGN_FWD.update({n: (lambda x: 1.0 if x > 0 else 0.0) for n in ["yin_identity", "yin_relu", "yin_clipped_relu"]})


def _grad(est, x, g=None):
    x = x.clone().requires_grad_(True)
    y = est(x)
    y.backward(torch.ones_like(y) if g is None else g)
    return y.detach(), x.grad


def test_registry_names_and_errors():
    assert sorted(ALL) == list_estimators(aliases=False)
    assert list_estimators() == sorted([*ALL, "ste", "ste_tern", "irnet"])  # aliases are names get_estimator accepts
    assert type(get_estimator("ste")) is type(get_estimator("identity"))
    with pytest.raises(ValueError, match=r"unknown estimator 'stee'; known: .*ste \(alias of identity\)"):
        get_estimator("stee")
    for n in ALL:
        e = get_estimator(n)
        assert isinstance(e, Estimator) and isinstance(e, torch.nn.Module) and e.name == n
        assert get_estimator(e) is e
        assert isinstance(e.bits, int) and e.bits >= 1
    assert get_estimator("ste").name == "identity"
    with pytest.raises(ValueError, match="unknown estimator 'nope'.*clipped.*reste"):
        get_estimator("nope")
    with pytest.raises(ValueError, match="parameters"):
        get_estimator(get_estimator("clipped"), c=2.0)
    with pytest.raises(TypeError):
        get_estimator(3)
    with pytest.raises(TypeError):
        register_estimator("x")(int)
    assert get_estimator("clipped", c=0.5).c == 0.5
    assert get_estimator("clipped").latent_clip == 1.0 and get_estimator("identity").latent_clip is None
    assert get_estimator("clipped", c=0.5, latent_clip=None).latent_clip is None
    assert get_estimator("dorefa_w", k=3).bits == 3 and get_estimator("dorefa_a", k=4).bits == 4


@pytest.mark.parametrize("name", sorted(HAND))
def test_backward_rule_matches_table_at_chosen_points(name):
    est = get_estimator(name)
    x = torch.tensor(PTS, dtype=torch.float64)
    want = torch.tensor([HAND[name](v) for v in PTS], dtype=torch.float64)
    g = torch.full_like(x, 0.7)
    torch.testing.assert_close(est.backward_rule(x, g), 0.7 * want, rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(est.backward_rule(x.numpy(), g.numpy()), 0.7 * want.numpy(), rtol=1e-12, atol=1e-300)
    if name in ("stochastic_binary", "mirror_tanh", "progressive_sign"):
        est.eval()  # deterministic forward, same backward
    y, gx = _grad(est, x, g)
    torch.testing.assert_close(gx, 0.7 * want, rtol=1e-12, atol=1e-300)
    if name in SIGN_FWD:
        assert y.tolist() == [SIGN_FWD[name](v) for v in PTS]


def test_forward_values_special():
    x = torch.tensor(PTS, dtype=torch.float64)
    s = torch.where(x >= 0, 1.0, -1.0).double()
    torch.testing.assert_close(get_estimator("dorefa_w")(x), x.abs().mean() * s)
    w = get_estimator("dorefa_w", k=2)(x)
    assert set(np.round(w.numpy(), 12).tolist()) <= set(np.round([-1.0, -1 / 3, 1 / 3, 1.0], 12).tolist())
    assert w[7] == pytest.approx(1 / 3) and w[0] == -1.0 and w[-1] == 1.0
    a = get_estimator("dorefa_a", k=2)(x)
    assert a[7] == 0.0 and a[0] == 0.0 and a[-1] == 1.0 and a[10] == pytest.approx(1 / 3)
    W = torch.tensor([[2.0, -4.0], [0.0, 1.0]])
    torch.testing.assert_close(get_estimator("magnitude_sign")(W), torch.tensor([[3.0, -3.0], [0.5, 0.5]]))
    torch.testing.assert_close(get_estimator("reste", scale=True)(W), torch.tensor([[1.75, -1.75], [1.75, 1.75]]))
    m = get_estimator("mirror_tanh", beta=2.0)
    torch.testing.assert_close(m(x), torch.tanh(2 * x))
    m.eval()
    torch.testing.assert_close(m(x), s)


def test_magnitude_sign_gradient_is_clipped_ste_unscaled():
    W = torch.tensor([[2.0, -0.5], [0.25, 1.0]], requires_grad=True)
    get_estimator("magnitude_sign")(W).sum().backward()
    torch.testing.assert_close(W.grad, torch.tensor([[0.0, 1.0], [1.0, 1.0]]))


# ---------------------------------------------------------------- one formula: numpy == torch, and vs hand formulas

RULES = {
    "clipped_grad": (lambda x, g: R.clipped_grad(x, g, 0.8), lambda x: abs(x) <= 0.8),
    "approxsign_grad": (R.approxsign_grad, HAND["approxsign"]),
    "swishsign_grad": (lambda x, g: R.swishsign_grad(x, g, 5.0), HAND["swishsign"]),
    "reste_grad": (lambda x, g: R.reste_grad(x, g, 2.0, 1.2, 0.2),
                   lambda x: 0.2 ** -0.5 if abs(x) <= 0.2 else (0.5 * abs(x) ** -0.5 if abs(x) <= 1.2 else 0)),
    "stochastic_binary_grad": (lambda x, g: R.stochastic_binary_grad(x, g, 0.5),
                               lambda x: 2 * sig(x / 0.5) * (1 - sig(x / 0.5)) / 0.5 if abs(x) < 300 else 0.0),
    "dorefa_a_grad": (R.dorefa_a_grad, HAND["dorefa_a"]),
    "yin_relu_grad": (R.yin_relu_grad, HAND["yin_relu"]),
    "yin_clipped_relu_grad": (R.yin_clipped_relu_grad, HAND["yin_clipped_relu"]),
    "ede_grad": (lambda x, g: R.ede_grad(x, g, 2.0, 0.5), lambda x: 0.5 * 2.0 * _sech2(2.0 * x)),
    "rbnn_grad": (lambda x, g: R.rbnn_grad(x, g, 1.5, 1.0), lambda x: max(0.0, math.sqrt(2) * 1.5 - 2.25 * abs(x))),
}


@pytest.mark.parametrize("rule", sorted(RULES))
@given(x=arrays(np.float64, st.integers(1, 20), elements=st.floats(-3, 3, width=64)))
def test_reference_numpy_equals_torch_and_hand(rule, x):
    f, hand = RULES[rule]
    g = np.linspace(-1.0, 2.0, x.size)
    ref = f(x, g)
    assert isinstance(ref, np.ndarray)
    tor = f(torch.from_numpy(x), torch.from_numpy(g))
    np.testing.assert_allclose(tor.numpy(), ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ref, g * np.array([float(hand(v)) for v in x]), rtol=1e-9, atol=1e-300)


def test_dorefa_w_reference_numpy_equals_torch():
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=50), rng.normal(size=50)
    for tm in (True, False):
        np.testing.assert_allclose(R.dorefa_w_grad(torch.from_numpy(x), torch.from_numpy(g), tm).numpy(),
                                   R.dorefa_w_grad(x, g, tm), rtol=1e-12)
    t = np.tanh(x)
    M = np.max(np.abs(t))
    np.testing.assert_allclose(R.dorefa_w_grad(x, g, False), g * (1 - t**2) / M)  # hand formula
    i = np.argmax(np.abs(t))
    want = g * (1 - t**2) / M
    want[i] -= np.sign(t[i]) * (1 - t[i] ** 2) * np.sum(g * t) / M**2
    np.testing.assert_allclose(R.dorefa_w_grad(x, g, True), want)


# ---------------------------------------------------------------- surrogates


def _surrogate_estimators():
    return [get_estimator("approxsign"), get_estimator("swishsign"), get_estimator("swishsign", beta=1.3),
            get_estimator("stochastic_binary", s=0.7), get_estimator("dorefa_w", k=2),
            get_estimator("dorefa_w", k=3, through_max=False)]


@pytest.mark.parametrize("est", _surrogate_estimators(), ids=repr)
def test_backward_equals_surrogate_derivative(est):
    x = torch.tensor([-2.5, -1.0, -0.6, -0.2, 0.0, 0.15, 0.4, 0.8, 0.999, 1.7], dtype=torch.float64)
    g = torch.linspace(-1, 1, x.numel(), dtype=torch.float64)
    xs = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(est.surrogate(xs), xs, g)
    est.eval()
    _, gx = _grad(est, x, g)
    torch.testing.assert_close(gx, auto, rtol=1e-10, atol=1e-12)
    if est.name == "dorefa_w" and not est.through_max:
        return  # the surrogate detaches the max: not a function gradcheck can compare with finite differences
    if est.name != "approxsign":  # ApproxSign's surrogate has kinks at 0, ±1: checked away from them below
        assert torch.autograd.gradcheck(est.surrogate, (x.clone().requires_grad_(True),))
    else:
        assert torch.autograd.gradcheck(est.surrogate, (torch.tensor([-1.7, -0.6, 0.3, 0.8, 2.0], dtype=torch.float64,
                                                                      requires_grad=True),))


def test_surrogate_none_where_no_smooth_function():
    for n in ["magnitude_sign", "yin_relu", "mirror_tanh", "dorefa_a"]:
        assert get_estimator(n).surrogate(torch.zeros(2)) is None
    assert get_estimator("dorefa_w", k=1).surrogate(torch.zeros(2)) is None


_KINK_PARAMS = ("c", "m", "t")


_WITH_SURROGATE = [e for e in [get_estimator(n) for n in list_estimators()] + [
    get_estimator("clipped", c=0.7), get_estimator("reste", o=1.0), get_estimator("reste", o=2.5, t=1.2, m=0.3),
    get_estimator("dorefa_w", k=2)] if e.surrogate(torch.zeros(1)) is not None]


def test_the_smooth_estimators_all_have_a_surrogate():
    assert {e.name for e in _WITH_SURROGATE} >= {"identity", "clipped", "approxsign", "swishsign", "reste",
                                                  "stochastic_binary", "dorefa_w"}


@pytest.mark.parametrize("est", _WITH_SURROGATE, ids=repr)
def test_every_surrogate_derivative_is_the_backward_rule(est):
    x = 3.0 * (2.0 * torch.rand(400, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 1.0)
    kinks = torch.tensor([0.0, 1.0] + [float(getattr(est, k)) for k in _KINK_PARAMS if hasattr(est, k)],
                         dtype=torch.float64)
    x = x[(x.abs()[:, None] - kinks).abs().min(1).values > 1e-3].requires_grad_(True)
    (auto,) = torch.autograd.grad(est.surrogate(x).sum(), x)
    torch.testing.assert_close(auto, est.backward_rule(x.detach(), torch.ones_like(x)), rtol=1e-10, atol=1e-12)


def test_dorefa_through_max_differs_only_at_the_max():
    x = torch.tensor([0.3, -1.2, 0.7, 0.1], dtype=torch.float64)
    g = torch.tensor([1.0, 0.5, -2.0, 0.3], dtype=torch.float64)
    a = get_estimator("dorefa_w", k=2, through_max=True).backward_rule(x, g)
    b = get_estimator("dorefa_w", k=2, through_max=False).backward_rule(x, g)
    assert torch.equal((a != b).nonzero().flatten(), torch.tensor([1]))
    z = get_estimator("dorefa_w", k=2).backward_rule(torch.zeros(3), torch.ones(3))  # zero tensor: finite
    assert torch.isfinite(z).all()


# ---------------------------------------------------------------- ReSTE


def test_reste_o1_is_clipped_with_c_t():
    x = torch.tensor(PTS + [1.49, 1.51, -1.5], dtype=torch.float64)
    g = torch.linspace(-1, 1, x.numel(), dtype=torch.float64)
    for t in (1.5, 0.8):
        r = get_estimator("reste", o=1.0, t=t, m=0.1).backward_rule(x, g)
        torch.testing.assert_close(r, get_estimator("clipped", c=t).backward_rule(x, g), rtol=0, atol=0)


def test_reste_jump_at_m():
    e = get_estimator("reste")  # o = 3, m = 0.1
    x = torch.tensor([0.1, 0.1 + 1e-9], dtype=torch.float64)
    r = e.backward_rule(x, torch.ones(2, dtype=torch.float64))
    assert r[0] == pytest.approx(0.1 ** (-2 / 3)) and r[1] == pytest.approx(0.1 ** (-2 / 3) / 3, rel=1e-6)


def test_reste_schedule():
    E = 10
    e = get_estimator("reste", epochs=E)
    assert e.o == 1.0
    assert e.schedule(E) == pytest.approx(3.0)
    assert e.schedule(E / 2) == pytest.approx(1 + 2 * (1 - math.cos(math.pi / 4)))
    seen = []
    for ep in range(E + 3):
        e.on_epoch_end(ep)
        seen.append(e.o)
    assert seen[0] == pytest.approx(1 + 2 * (1 - math.cos(math.pi / (2 * E))))
    assert seen[E - 1] == pytest.approx(3.0) and seen[-1] == pytest.approx(3.0)
    assert all(a < b for a, b in zip(seen[:E - 1], seen[1:E]))
    f = get_estimator("reste", o=2.0)
    f.on_epoch_end(5)
    assert f.o == 2.0
    assert get_estimator("reste", epochs=4, o_end=5.0).schedule(4) == pytest.approx(5.0)


# ---------------------------------------------------------------- stochastic binary, mirror tanh


def test_stochastic_binary_mean_by_monte_carlo():
    s = 0.6
    x = torch.tensor([-1.5, -0.3, 0.0, 0.4, 2.0], dtype=torch.float64)
    N = 20000
    gen = torch.Generator().manual_seed(1234)
    est = get_estimator("stochastic_binary", s=s, generator=gen)
    samples = est(x.expand(N, -1).contiguous())
    assert set(samples.unique().tolist()) <= {-1.0, 1.0}
    mean = samples.mean(0)
    want = 2 * torch.sigmoid(x / s) - 1
    se = torch.sqrt((1 - want**2) / N)  # std of a ±1 variable with mean mu: sqrt(1 - mu^2)
    assert ((mean - want).abs() <= 5 * se + 1e-12).all(), (mean, want)
    # seeded: same generator seed, same draw
    a = get_estimator("stochastic_binary", generator=torch.Generator().manual_seed(7))(x)
    b = get_estimator("stochastic_binary", generator=torch.Generator().manual_seed(7))(x)
    assert torch.equal(a, b)


def test_stochastic_binary_eval_modes():
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5], dtype=torch.float64)
    e = get_estimator("stochastic_binary", s=2.0).eval()
    assert e(x).tolist() == [-1.0, 1.0, 1.0, 1.0]
    m = get_estimator("stochastic_binary", s=2.0, eval_mode="mean").eval()
    torch.testing.assert_close(m(x), 2 * torch.sigmoid(x / 2.0) - 1)
    _, gx = _grad(m, x)
    torch.testing.assert_close(gx, 2 * torch.sigmoid(x / 2) * (1 - torch.sigmoid(x / 2)) / 2)
    e.train()
    big = torch.tensor([-1e30, 1e30])
    assert e(big).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="eval_mode"):
        get_estimator("stochastic_binary", eval_mode="median")


def test_mirror_beta_growth_and_backward():
    e = get_estimator("mirror_tanh", beta=1.0)
    for _ in range(199):
        e.on_step()
    assert e.beta == 1.0
    e.on_step()
    assert e.beta == pytest.approx(1.02)
    for _ in range(1000):
        e.on_step()
    assert e.beta == pytest.approx(1.02**6)
    x = torch.tensor([-3.0, 0.0, 0.5, 4.0], dtype=torch.float64)
    y, gx = _grad(e, x, torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(y, torch.tanh(e.beta * x))
    torch.testing.assert_close(gx, torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64))  # no sech^2


# ---------------------------------------------------------------- parameters, NaN, dtypes, device


@pytest.mark.parametrize("name,params,word", [
    ("clipped", {"c": 0}, "c=0"), ("clipped", {"c": -1.0}, "c=-1.0"), ("magnitude_sign", {"c": float("nan")}, "c=nan"),
    ("dorefa_w", {"k": 0}, "k=0"), ("dorefa_w", {"k": 1.5}, "k=1.5"), ("dorefa_a", {"k": "2"}, "k='2'"),
    ("swishsign", {"beta": 0.0}, "beta=0.0"), ("stochastic_binary", {"s": -0.1}, "s=-0.1"),
    ("reste", {"t": 0}, "t=0"), ("reste", {"m": 2.0}, "m=2.0"), ("reste", {"o": 0.5}, "o=0.5"),
    ("reste", {"epochs": 0}, "epochs=0"), ("mirror_tanh", {"beta": -1}, "beta=-1"),
    ("mirror_tanh", {"every": 0}, "every=0"), ("clipped", {"latent_clip": 0.0}, "latent_clip=0.0"),
    ("ede", {"t_min": 0}, "t_min=0"), ("ede", {"t_min": 2.0, "t_max": 1.0}, "t_max must be >= t_min"),
    ("rbnn", {"epochs": 0}, "epochs=0"), ("ternary", {"threshold": -0.1}, "threshold=-0.1"),
    ("progressive_sign", {"beta": float("inf")}, "beta=inf"),
])
def test_bad_parameters(name, params, word):
    with pytest.raises(ValueError, match=word.replace("(", r"\(")):
        get_estimator(name, **params)


@pytest.mark.parametrize("name", ALL)
def test_nan_policy(name):
    """NaN in g propagates where the rule passes gradient, becomes 0 where the rule is identically 0."""
    est = get_estimator(name).eval()
    x = torch.tensor([0.5, 5.0], dtype=torch.float64)
    g = torch.tensor([float("nan"), float("nan")], dtype=torch.float64)
    _, gx = _grad(est, x, g)
    assert torch.isnan(gx[0])
    closed = {"clipped", "magnitude_sign", "approxsign", "reste", "dorefa_a", "yin_clipped_relu", "ternary"}
    if name in closed:
        assert gx[1] == 0.0
    else:
        assert torch.isnan(gx[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", ALL)
def test_dtypes(name, dtype):
    est = get_estimator(name)
    x = torch.linspace(-2, 2, 9, dtype=dtype).reshape(3, 3)
    y, gx = _grad(est, x)
    assert y.dtype == dtype and gx.dtype == dtype and gx.shape == x.shape
    assert torch.isfinite(y).all() and torch.isfinite(gx).all()
    ref = est.backward_rule(x.double(), torch.ones_like(x, dtype=torch.float64))
    tol = {torch.bfloat16: 3e-2, torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(gx.double(), ref, rtol=tol, atol=tol)


def test_extreme_inputs_finite():
    x = torch.tensor([-1e30, 1e30, -3e38, 3e38], dtype=torch.float32)
    for n in ALL:
        est = get_estimator(n).eval()
        _, gx = _grad(est, x)
        assert torch.isfinite(gx).all(), n


@pytest.mark.gpu
@pytest.mark.parametrize("name", ALL)
def test_cuda_matches_cpu(name):
    est = get_estimator(name).eval()
    x = torch.linspace(-2, 2, 33, dtype=torch.float32)
    g = torch.linspace(1, -1, 33, dtype=torch.float32)
    yc, gc = _grad(est, x, g)
    yg, gg = _grad(est, x.cuda(), g.cuda())
    assert gg.device.type == "cuda"
    torch.testing.assert_close(yg.cpu(), yc)
    torch.testing.assert_close(gg.cpu(), gc)
    tr = get_estimator("stochastic_binary", generator=torch.Generator(device="cuda").manual_seed(0))
    assert set(tr(x.cuda()).unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("name, kw, step", [("reste", dict(epochs=10), lambda e: e.on_epoch_end(3)),
                                            ("mirror_tanh", dict(every=2), lambda e: [e.on_step() for _ in range(5)])])
def test_schedules_are_in_the_models_state_dict(name, kw, step):
    """A user's own checkpoint (model.state_dict()) keeps the schedule: reloading gives the same
    backward, and the schedule continues from where it was."""
    from rfdnn_bridge.layers import quantize_model

    def model():
        torch.manual_seed(0)
        return quantize_model(torch.nn.Sequential(torch.nn.Linear(4, 3)), weights=get_estimator(name, **kw), skip=None)

    a = model()
    est = a[0].weight_quantizer
    step(est)
    moved = est.get_extra_state()
    assert moved != model()[0].weight_quantizer.get_extra_state()  # the schedule did move
    b = model()
    b.load_state_dict(a.state_dict())
    assert b[0].weight_quantizer.get_extra_state() == moved
    x = torch.randn(6, 4)
    for m in (a, b):
        m.zero_grad()
        m(x).square().sum().backward()
    torch.testing.assert_close(b[0].weight.grad, a[0].weight.grad, rtol=0, atol=0)
    with pytest.raises(ValueError, match="does not hold this estimator's"):
        b[0].weight_quantizer.set_extra_state({"nope": 1})
    # estimators without a schedule add nothing to the state_dict
    plain = quantize_model(torch.nn.Sequential(torch.nn.Linear(4, 3)), weights="clipped", skip=None)
    assert not any(k.endswith("_extra_state") for k in plain.state_dict())



# ---------------------------------------------------------------- the estimators the field compares against today
@pytest.mark.parametrize("name, t_min, t_max", [("ede", 0.1, 10.0), ("rbnn", 0.01, 10.0)])
def test_annealed_estimators_follow_their_schedule_and_hand_rule(name, t_min, t_max):
    """t = t_min · 10^{(e/E) log10(t_max/t_min)}, k = max(1/t, 1); the backward at each epoch is the
    authors' formula with that t and k (written out here by hand)."""
    est = get_estimator(name, epochs=4)
    x = torch.tensor([-3.0, -0.4, 0.0, 0.05, 0.9, 2.5], dtype=torch.float64)
    for e in range(5):
        t = t_min * 10 ** (e / 4 * math.log10(t_max / t_min))
        assert est.t == pytest.approx(t, rel=1e-12)
        k = max(1 / t, 1.0)
        if name == "ede":
            want = [k * t * (1 - math.tanh(t * v) ** 2) for v in x.tolist()]
        else:
            want = [k * max(0.0, math.sqrt(2) * t - t * t * abs(v)) for v in x.tolist()]
        _, gx = _grad(est, x)
        torch.testing.assert_close(gx, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-15)
        est.on_epoch_end(e)
    assert est.t == pytest.approx(t_max)  # capped at the end
    est.on_epoch_end(10)
    assert est.t == pytest.approx(t_max)


def test_ternary_forward_fixed_and_twn_threshold():
    x = torch.tensor([-2.0, -0.5, -0.04, 0.0, 0.03, 0.06, 0.7], dtype=torch.float64)
    assert get_estimator("ternary")(x).tolist() == [-1, -1, 0, 0, 0, 1, 1]  # Δ = 0.05
    twn = get_estimator("ste_tern", twn=True)  # Δ = 0.7 · mean|x| = 0.7 · 3.33/7 ≈ 0.333
    assert 0.7 * x.abs().mean().item() == pytest.approx(0.333, abs=1e-3)
    assert twn(x).tolist() == [-1, -1, 0, 0, 0, 0, 1]
    assert get_estimator("ternary").latent_clip == 1.0 and get_estimator("ternary").bits == 2


def test_progressive_sign_sharpens_to_sign():
    est = get_estimator("progressive_sign", epochs=5)
    x = torch.tensor([-1.0, -0.2, 0.0, 0.05, 0.5], dtype=torch.float64)
    torch.testing.assert_close(est(x), x.clamp(-1, 1))  # T = 0 at the start: hardtanh(x)
    for e in range(5):
        est.on_epoch_end(e)
    temperature = 1 - 4.0 ** (-10.0)  # p = 1: 1 − α^(−β)
    assert est.temperature == pytest.approx(temperature)
    torch.testing.assert_close(est(x), (x / (1 - temperature)).clamp(-1, 1))
    assert est(x).tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]  # 4^-10 ≈ 1e-6: sign but at 0 (bitorch's hardtanh)
    est.eval()
    assert est(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]  # evaluation: sign, sign(0) = +1


def test_reste_scale_true_takes_the_authors_gradient_through_the_scale():
    """reste(scale=True): d/dx [α(x) sign(x)] with α = mean|x| = α · rule + sign(x)/N · Σ g sign(x), checked
    against autograd of α · (the rule's surrogate), whose derivative is the rule."""
    est = get_estimator("reste", scale=True)
    x = torch.tensor([[0.3, -1.2, 0.05], [0.7, -0.02, 1.7]], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[1.0, -0.5, 2.0], [0.25, 1.5, -1.0]], dtype=torch.float64)
    (got,) = torch.autograd.grad(est(x), x, g)
    plain = get_estimator("reste")
    s = torch.where(x >= 0, 1.0, -1.0).double().detach()
    want = x.abs().mean().detach() * plain.backward_rule(x.detach(), g) + s * (g * s).mean()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    xs = x.detach().clone().requires_grad_(True)  # the same by autograd: α(x) · F(x), F the rule's surrogate,
    alpha = xs.abs().mean()                       # with F's value replaced by sign(x) (the forward)
    forward_value = (plain.surrogate(xs) - plain.surrogate(xs).detach() + s)
    (auto,) = torch.autograd.grad((alpha * forward_value * g).sum(), xs)
    torch.testing.assert_close(got, auto, rtol=1e-10, atol=1e-12)
    (unscaled,) = torch.autograd.grad(plain(x), x, g)  # scale=False keeps the seed table's rule
    torch.testing.assert_close(unscaled, plain.backward_rule(x.detach(), g))


def test_magnitude_sign_grad_scale_is_larqs_alpha_times_the_ste():
    W = torch.tensor([[2.0, -0.5], [0.25, 1.0]], requires_grad=True)
    get_estimator("magnitude_sign", grad_scale=True)(W).sum().backward()
    alpha = torch.tensor([[1.25], [0.625]])  # mean|W| per output channel
    torch.testing.assert_close(W.grad, alpha * torch.tensor([[0.0, 1.0], [1.0, 1.0]]))


@pytest.mark.parametrize("name", ["ede", "rbnn", "progressive_sign"])
def test_annealed_estimators_get_the_runs_epochs_and_keep_their_schedule(name):
    from rfdnn_bridge.experiments.train import RunConfig, build_model

    model = build_model(RunConfig(method=name, epochs=7, model="mlp"), (1, 8, 8), 10)
    ests = [m for m in model.modules() if isinstance(m, Estimator)]
    assert ests and all(e.epochs == 7 for e in ests)
    for e in ests:
        e.on_epoch_end(2)
    state = model.state_dict()
    fresh = build_model(RunConfig(method=name, epochs=7, model="mlp"), (1, 8, 8), 10)
    fresh.load_state_dict(state)
    assert [e.get_extra_state() for e in fresh.modules() if isinstance(e, Estimator)] == \
        [e.get_extra_state() for e in ests]
