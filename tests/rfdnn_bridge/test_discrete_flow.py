"""rfdnn_bridge.discrete_flow: the Gram identity, the flow residual N and the gate (docs/math.md §4)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lnegeom.lne import LNEMetric
from rfdnn_bridge.discrete_flow import check_shifts, flow_residual, gate, gram_norms, sym_gram_norms

D64 = torch.float64


@st.composite
def outer_sums(draw):
    g, m, n = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 9))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    c = torch.randn(g, m, m, generator=gen, dtype=D64)
    return (c + c.transpose(-1, -2), torch.randn(g, m, n, generator=gen, dtype=D64),
            torch.randn(g, n, generator=gen, dtype=D64))


@given(outer_sums(), st.booleans())
def test_gram_identities_equal_dense_frobenius_norms(p, with_diag):
    c, v, d = p
    d = d if with_diag else None
    dense = torch.einsum("gab,gai,gbj->gij", c, v, v) + (torch.diag_embed(d) if with_diag else 0)
    total, rows = sym_gram_norms(c, v, d)
    torch.testing.assert_close(total, (dense**2).sum((-1, -2)), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rows, (dense**2).sum(-1), rtol=1e-10, atol=1e-10)
    cd = torch.diagonal(c, dim1=-2, dim2=-1)
    dense_diag = torch.einsum("ga,gai,gaj->gij", cd, v, v) + (torch.diag_embed(d) if with_diag else 0)
    torch.testing.assert_close(gram_norms(cd, v, d)[0], (dense_diag**2).sum((-1, -2)), rtol=1e-10, atol=1e-10)


def _dense_residual(x, x_prev, tau, shifts, proxy, flow_eta):
    (k1, k2), (j1, j2) = shifts
    n = x_prev.shape[-1]

    def g(xa):
        t = torch.tanh(xa)
        return torch.eye(n, dtype=D64) - torch.outer(t, t)

    out = []
    for i in range(x_prev.shape[0]):
        if proxy == "paper":
            p = (g(x["k1"][i]) - g(x["k2"][i])) / (k1 - k2) - (g(x["j1"][i]) - g(x["j2"][i])) / (j1 - j2)
        else:
            w_prev = x_prev[i] / tau[i]
            p = -2 * flow_eta * torch.as_tensor(LNEMetric(float(tau[i])).ricci_matrix(w_prev))
        out.append(g(x["k1"][i]) - g(x_prev[i]) - p)
    return torch.stack(out)


@st.composite
def trajectories(draw):
    g, n = draw(st.integers(1, 3)), draw(st.integers(2, 8))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    tau = 0.3 + torch.rand(g, generator=gen, dtype=D64)
    w = 0.3 * torch.randn(g, n, generator=gen, dtype=D64) / n**0.5
    step = draw(st.sampled_from([1e-1, 1e-3]))
    x = {k: tau[:, None] * (w + step * torch.randn(g, n, generator=gen, dtype=D64)) for k in ("k1", "k2", "j1", "j2")}
    x_prev = tau[:, None] * (w + step * torch.randn(g, n, generator=gen, dtype=D64))
    shifts = draw(st.sampled_from([((1, 0), (1, 0)), ((2, -1), (1, -1)), ((1, -1), (-2, 1))]))
    return x, x_prev, tau, shifts


@given(trajectories(), st.sampled_from(["paper", "ricci"]))
def test_flow_residual_equals_the_dense_transcription(p, proxy):
    x, x_prev, tau, shifts = p
    total, rows = flow_residual(x, x_prev, tau, shifts, proxy=proxy, flow_eta=0.01)
    dense = _dense_residual(x, x_prev, tau, shifts, proxy, 0.01)
    scale = float((dense**2).sum()) + 1e-300
    assert float((total - (dense**2).sum((-1, -2))).abs().max()) <= 1e-9 * scale
    assert float((rows - (dense**2).sum(-1)).abs().max()) <= 1e-9 * scale
    assert bool((total > 0).all())  # N ≠ 0 along a trajectory (docs/math.md §4)


@pytest.mark.parametrize("proxy", ["paper", "ricci"])
def test_float32_residual_keeps_its_digits_when_steps_are_tiny(proxy):
    """Terms of size s, N ~ 1e-12: the difference form keeps float32 at ~1e-6 relative error."""
    gen = torch.Generator().manual_seed(0)
    n, tau = 200, torch.tensor([0.7], dtype=D64)
    w = 0.05 * torch.randn(1, n, generator=gen, dtype=D64)
    x = {k: tau[:, None] * (w + 1e-5 * torch.randn(1, n, generator=gen, dtype=D64)) for k in ("k1", "k2", "j1", "j2")}
    x_prev = tau[:, None] * w
    shifts = ((2, -1), (1, -1))
    ref, ref_rows = flow_residual(x, x_prev, tau, shifts, proxy=proxy, flow_eta=1e-9)
    dense = _dense_residual(x, x_prev, tau, shifts, proxy, 1e-9)
    torch.testing.assert_close(ref, (dense**2).sum((-1, -2)), rtol=1e-7, atol=0)
    got, got_rows = flow_residual({k: v.float() for k, v in x.items()}, x_prev.float(), tau.float(), shifts,
                                  proxy=proxy, flow_eta=1e-9)
    assert float(ref) < 1e-8
    assert abs(float(got) / float(ref) - 1) < 1e-3
    assert float((got_rows.double() - ref_rows).abs().sum()) < 1e-3 * float(ref)


def test_gate_kinds():
    total = torch.tensor([0.5, 2.0])
    rows = torch.tensor([[0.1, 0.4], [1.5, 0.5]])
    assert gate(total, rows, 1.0, "group").flatten().tolist() == [1.0, 0.0]
    assert gate(total, rows, 1.0, "element").tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert gate(total, rows, 0.0, "off").flatten().tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown gate 'x'"):
        gate(total, rows, 1.0, "x")


@pytest.mark.parametrize("shifts", [((1, 1), (1, 0)), ((0, 4), (1, 0)), ((1, 0),), ((1.5, 0), (1, 0))])
def test_bad_shifts(shifts):
    with pytest.raises(ValueError, match="shifts"):
        check_shifts(shifts)


def test_named_shifts_and_the_three_pass_variant():
    from rfdnn_bridge.discrete_flow import NAMED_SHIFTS, check_shifts

    assert check_shifts("central") == ((1, -1), (1, -1)) and check_shifts("forward") == ((1, 0), (1, 0))
    with pytest.raises(ValueError, match=r"unknown shifts 'backward'; the named ones are \['central', 'forward'\]"):
        check_shifts("backward")
    assert set(NAMED_SHIFTS) == {"central", "forward"}


def test_on_one_axis_the_papers_proxy_cancels_and_the_translation_sets_agree():
    """1-D signals (translate dims=(-1, -1)): the row and column translations move the same axis, so
    w|k_a = w|j_a and P-32's two difference quotients cancel; N is then the same for the central and
    the one-sided translations whenever k1 agrees (here 1 in both)."""
    from rfdnn_bridge.discrete_flow import check_shifts, flow_residual

    gen = torch.Generator().manual_seed(0)
    x_prev = 0.3 * torch.randn(2, 7, generator=gen, dtype=torch.float64)
    by_shift = {s: 0.3 * torch.randn(2, 7, generator=gen, dtype=torch.float64) for s in (-1, 0, 1)}
    ns = []
    for name in ("central", "forward"):
        (k1, k2), (j1, j2) = check_shifts(name)
        x = {"k1": by_shift[k1], "k2": by_shift[k2], "j1": by_shift[j1], "j2": by_shift[j2]}  # one axis
        n, _ = flow_residual(x, x_prev, torch.ones(2, dtype=torch.float64), check_shifts(name), rows=False)
        ns.append(n)
    torch.testing.assert_close(ns[0], ns[1], rtol=1e-12, atol=1e-15)
    # with a second axis they differ
    x2 = {"k1": by_shift[1], "k2": by_shift[-1], "j1": by_shift[0], "j2": x_prev}
    n2, _ = flow_residual(x2, x_prev, torch.ones(2, dtype=torch.float64), check_shifts("central"), rows=False)
    assert not torch.allclose(n2, ns[0])
