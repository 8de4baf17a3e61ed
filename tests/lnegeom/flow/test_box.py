"""The box with a held boundary: 4th-order finite differences, quadrature, the solver's packed
unknowns and Jacobian pattern, bad input, and the flow-box-dirichlet and flow-lne-box checks of
`lnegeom validate` on small grids."""

import math
from fractions import Fraction

import numpy as np
import pytest

from lnegeom.box import Box, column_groups, fd_weights, sparse_fd_jacobian
from lnegeom.curvature import MetricError
from lnegeom.domains import Domain, GridTooCoarseError, Torus
from lnegeom.flow import flow_jac_sparsity, flow_rhs, solve_flow
from lnegeom.flow.checks import metric_problem
from lnegeom.layout import components_first, components_last, packing
from lnegeom.linearize import linearized_jacobian
from lnegeom.validate.box_checks import (
    dirichlet_decay,
    discrete_dirichlet_rates,
    lne_box,
    lne_box_study,
    parity_projection,
)

SYM = np.array([[0.6, -0.8], [-0.8, 0.3]])


def _bump(B, h):
    """δ + ∏ sin(π(x − lo)/L)·h: a smooth perturbation vanishing on the boundary."""
    x = B.points()
    s = np.prod([np.sin(math.pi * (x[..., a] - B.origin[a]) / B.L[a]) for a in range(B.n)], axis=0)
    return np.eye(B.n) + s[..., None, None] * h


def _order(errs, Ns):
    return float(np.log(errs[-2] / errs[-1]) / np.log(Ns[-1] / Ns[-2]))


# ---------------------------------------------------------------- stencils and derivatives
def test_stencil_weights_are_the_classical_ones():
    assert fd_weights([-2, -1, 0, 1, 2], 1) == [Fraction(1, 12), Fraction(-2, 3), 0, Fraction(2, 3), Fraction(-1, 12)]
    assert [12 * w for w in fd_weights(range(5), 1)] == [-25, 48, -36, 16, -3]
    assert [12 * w for w in fd_weights(range(6), 2)] == [45, -154, 214, -156, 61, -10]
    assert [12 * w for w in fd_weights([-2, -1, 0, 1, 2], 2)] == [-1, 16, -30, 16, -1]


def test_derivatives_exact_for_quartics_everywhere():
    # every stencil is exact for polynomials of degree <= 4, the boundary ones included
    B = Box(2, 9, L=[1.3, 0.8], origin=[-0.4, 0.2])
    x, y = B.points()[..., 0], B.points()[..., 1]
    f = x**4 - 2 * x**2 * y**2 + 3 * x * y**3 - y**4 + x * y - 0.5
    grad = B.gradient(f)
    hess = B.hessian(f)
    scale = np.abs(f).max()
    assert np.abs(grad[..., 0] - (4 * x**3 - 4 * x * y**2 + 3 * y**3 + y)).max() < 1e-11 * scale
    assert np.abs(grad[..., 1] - (-4 * x**2 * y + 9 * x * y**2 - 4 * y**3 + x)).max() < 1e-11 * scale
    assert np.abs(hess[..., 0, 0] - (12 * x**2 - 4 * y**2)).max() < 1e-10 * scale
    assert np.abs(hess[..., 1, 1] - (-4 * x**2 + 18 * x * y - 12 * y**2)).max() < 1e-10 * scale
    assert np.abs(hess[..., 0, 1] - (-8 * x * y + 9 * y**2 + 1)).max() < 1e-10 * scale
    assert np.array_equal(hess[..., 0, 1], hess[..., 1, 0])


def test_repeated_first_derivative_is_fourth_order_up_to_the_boundary():
    # D1·D1 (the DeTurck term differentiates W = O(∂g) again): the boundary rows of D1 carry the
    # central stencil's leading error, so the error does not jump there and D1·D1 stays O(h⁴)
    errs = []
    Ns = (16, 32, 64)
    for N in Ns:
        D1, _ = Box(2, N).stencil_matrices(0)
        x = np.linspace(0.0, 1.0, N + 1)
        errs.append(np.abs(D1 @ (D1 @ np.sin(2 * x + 0.5)) + 4 * np.sin(2 * x + 0.5)).max())
    assert abs(_order(errs, Ns) - 4) <= 0.3, errs


def test_derivative_layout_matches_the_torus():
    B = Box(3, 7)
    g = np.broadcast_to(np.eye(3), (*B.shape, 3, 3))
    assert B.gradient(g).shape == (*B.shape, 3, 3, 3)
    assert B.hessian(g).shape == (*B.shape, 3, 3, 3, 3)


@pytest.mark.parametrize("n,Ns", [(2, (16, 32, 64)), (3, (12, 24))])
def test_finite_difference_order_by_grid_refinement(n, Ns):
    errs = {k: [] for k in ("d1 interior", "d2 interior", "mixed interior", "d1 boundary", "d2 boundary",
                            "mixed boundary")}
    for N in Ns:
        B = Box(n, N, L=1.0, origin=-0.3)
        x = B.points()
        X, Y = x[..., 0], x[..., 1]
        f = np.sin(2 * X + 0.5) * np.cos(1.5 * Y + 0.3)
        exact = {"d1": 2 * np.cos(2 * X + 0.5) * np.cos(1.5 * Y + 0.3), "d2": -4 * f,
                 "mixed": -3 * np.cos(2 * X + 0.5) * np.sin(1.5 * Y + 0.3)}
        H = B.hessian(f)
        num = {"d1": B.gradient(f)[..., 0], "d2": H[..., 0, 0], "mixed": H[..., 0, 1]}
        for k in exact:
            e = np.abs(num[k] - exact[k])
            errs[f"{k} interior"].append(e[2:-2].max())  # the central 5-point stencils along x
            errs[f"{k} boundary"].append(max(e[:2].max(), e[-2:].max()))  # the one-sided ones
    for k, v in errs.items():
        p = _order(v, Ns)
        if "interior" in k:
            assert abs(p - 4) <= 0.3, (k, p, v)
        else:
            assert p >= 3.7, (k, p, v)  # stated order 4


def test_torch_tensors_give_the_same_derivatives():
    torch = pytest.importorskip("torch")
    B = Box(2, 9)
    x = B.points()
    f = (np.sin(x[..., 0]) * np.cos(x[..., 1]))[..., None] * np.array([1.0, -2.0])
    ft = torch.tensor(f)
    assert np.abs(B.gradient(ft).numpy() - B.gradient(f)).max() < 1e-13
    assert np.abs(B.hessian(ft).numpy() - B.hessian(f)).max() < 1e-12


# ---------------------------------------------------------------- quadrature, grid, resolution
def test_quadrature_exact_for_cubics_and_fourth_order():
    B = Box(2, 10, L=[1.0, 2.0], origin=[0.5, -1.0])
    x, y = B.points()[..., 0], B.points()[..., 1]
    assert B.integral(x**3 * y**2 - y**3 + 2) == pytest.approx((1.5**4 - 0.5**4) / 4 * (1 + 1) / 3 - 0 + 4, rel=1e-13)
    assert B.volume == 2.0 and B.mean(np.ones(B.shape)) == pytest.approx(1.0, rel=1e-14)
    exact = (math.exp(1.5) - math.exp(0.5)) * (math.sin(1.0) - math.sin(-1.0))
    errs = []
    Ns = (8, 16, 32)
    for N in Ns:
        Bn = Box(2, N, L=[1.0, 2.0], origin=[0.5, -1.0])
        p = Bn.points()
        errs.append(abs(Bn.integral(np.exp(p[..., 0]) * np.cos(p[..., 1])) - exact))
    assert abs(_order(errs, Ns) - 4) <= 0.3, errs
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    gA = np.broadcast_to(A, (*B.shape, 2, 2))
    assert B.integral(np.ones(B.shape), metric=gA) == pytest.approx(2.0 * math.sqrt(np.linalg.det(A)), rel=1e-14)


def test_grid_geometry_and_point_description():
    B = Box(2, 8, L=2.0, origin=-1.0)
    assert B.shape == (9, 9) and B.spacing == (0.25, 0.25) and B.holds_boundary
    x = B.points()
    assert x[0, 0].tolist() == [-1.0, -1.0] and x[-1, -1].tolist() == [1.0, 1.0]
    assert B.interior_mask().sum() == 49
    assert B.describe_point((0, 3)) == "grid point (0, 3) (boundary), x = [-1, -0.25]"
    assert "(interior)" in B.describe_point((4, 4))
    assert repr(B) == "Box(n=2, N=8, L=2, origin=-1)"
    with pytest.raises(ValueError, match="at least 7 intervals"):
        Box(2, 6)
    with pytest.raises(ValueError, match="side length"):
        Box(2, 8, L=0.0)


def test_resolution_check():
    B = Box(2, 16)
    x = B.points()
    assert B.too_coarse(_bump(B, 1e-3 * SYM)) is None
    assert B.too_coarse(np.broadcast_to(np.eye(2), (*B.shape, 2, 2)) + x[..., :1, None]) is None  # linear
    g = np.eye(2) + 1e-3 * np.sin(2 * math.pi * 5 * x[..., 0])[..., None, None] * SYM  # 3.2 points per wave
    with pytest.raises(GridTooCoarseError, match=r"axis 0 .*grid steps.*Box\(n=2, N=16"):
        B.check_resolution(g, name="initial metric g0")
    with pytest.raises(GridTooCoarseError, match="initial metric g0"):
        solve_flow(g, (0, 0.01), domain=B)


# ---------------------------------------------------------------- the solver's unknowns
def test_pack_unpack_round_trip():
    B = Box(2, 7, L=[1.0, 1.5])
    rng = np.random.default_rng(0)
    A = rng.normal(size=(*B.shape, 2, 2))
    g = A + np.swapaxes(A, -1, -2)
    y = B.pack(g)
    assert y.shape == (B.n_unknowns,) == (6 * 6 * 3,)
    assert np.array_equal(B.unpack(y, g), g)
    # the layout: interior grid-major, then (0,0), (0,1), (1,1)
    assert y[:3].tolist() == [g[1, 1, 0, 0], g[1, 1, 0, 1], g[1, 1, 1, 1]]
    like = np.diag([2.0, 3.0])
    h = B.unpack(y, like)
    assert np.array_equal(h[0], np.broadcast_to(like, (8, 2, 2)))
    assert np.array_equal(h[1:-1, 1:-1], g[1:-1, 1:-1])
    with pytest.raises(ValueError, match="unknowns"):
        B.unpack(y[:-1], g)
    with pytest.raises(ValueError, match="pack needs"):
        B.pack(g[1:])


def test_jac_sparsity_covers_the_numerical_jacobian_2d():
    B = Box(2, 8, L=1.2)
    x = B.points()
    g = _bump(B, 0.1 * SYM) + 0.05 * x[..., 0, None, None] * np.eye(2)
    J = linearized_jacobian(g, B)
    P = flow_jac_sparsity(B).toarray()
    assert P.shape == J.shape == (B.n_unknowns,) * 2
    assert np.abs(J[P == 0]).max() == 0.0
    assert (np.abs(J) > 1e-8 * np.abs(J).max()).sum() > 0.85 * P.sum()  # and the pattern is tight


def test_jac_sparsity_covers_sampled_columns_3d():
    B = Box(3, 7)
    rng = np.random.default_rng(2)
    S = rng.normal(size=(3, 3))
    g = _bump(B, 0.1 * (S + S.T))
    y0 = B.pack(g)
    P = flow_jac_sparsity(B).tocsc()

    def F(y):
        return B.pack(flow_rhs(B.unpack(y, g), B))

    # columns at a corner point, next to a face, and in the middle; every component
    for point in ((1, 1, 1), (1, 3, 5), (3, 3, 3)):
        q0 = np.ravel_multi_index(tuple(i - 1 for i in point), (6, 6, 6)) * 6
        for q in range(q0, q0 + 6):
            e = np.zeros_like(y0)
            e[q] = 1e-6
            col = (F(y0 + e) - F(y0 - e)) / 2e-6
            outside = np.ones(col.size, bool)
            outside[P.indices[P.indptr[q]:P.indptr[q + 1]]] = False
            assert np.abs(col[outside]).max() == 0.0, (point, q)


def test_sparse_fd_jacobian_with_zero_components():
    # a diagonal metric has g_12 = 0: the steps must not scale with |y| (scipy's num_jac with atol does)
    B = Box(2, 8)
    g = _bump(B, 1e-3 * np.eye(2))
    P = flow_jac_sparsity(B)
    groups = column_groups(P)
    assert groups.max() + 1 < B.n_unknowns
    J = sparse_fd_jacobian(lambda y: B.pack(flow_rhs(B.unpack(y, g), B)), B.pack(g), P, groups).toarray()
    Jd = linearized_jacobian(g, B)
    assert np.abs(J - Jd).max() < 1e-5 * np.abs(Jd).max()


# ---------------------------------------------------------------- the flow on the box
def test_box_flow_holds_the_boundary_and_defaults_to_bdf():
    B = Box(2, 8, L=1.0)
    g0 = _bump(B, 1e-2 * SYM) + 0.1 * B.points()[..., 1, None, None] * np.eye(2)
    res = solve_flow(g0, (0, 0.02), domain=B, t_eval=[0.01, 0.02])
    assert res.status == 0 and res.method == "BDF"
    edge = ~B.interior_mask()
    assert np.array_equal(res.g[-1][edge], g0[edge])
    assert np.abs(res.g[-1] - g0).max() > 1e-4
    for method in ("Radau", "LSODA"):
        other = solve_flow(g0, (0, 0.02), domain=B, t_eval=[0.02], method=method, rtol=1e-8, atol=1e-12,
                           diagnostics=False)
        assert other.status == 0
        assert np.abs(other.g[-1] - res.g[-1]).max() < 1e-5, method


def test_flat_conformal_metric_is_stationary_to_fourth_order():
    # g = |φ'(z)|² δ with φ' = 1/(z − z0) holomorphic on the box: flat, and W = 0 (conformal in 2-D),
    # so F(g) = 0 and the discrete F(g) is the O(h⁴) truncation error
    errs = []
    Ns = (32, 64)
    for N in Ns:
        B = Box(2, N, L=1.0)
        z = B.points()[..., 0] + 1j * B.points()[..., 1]
        g = (1 / np.abs(z - (-1.0 - 0.8j)) ** 2)[..., None, None] * np.eye(2)
        errs.append(np.abs(flow_rhs(g, B)[B.interior_mask()]).max())  # largest next to a corner
    assert errs[-1] < 1e-5 and abs(_order(errs, Ns) - 4) < 0.3, errs


def test_bad_input_on_the_box():
    B = Box(2, 8)
    g0 = _bump(B, 1e-3 * SYM)
    with pytest.raises(ValueError, match="weakly parabolic.*ricci-deturck"):
        solve_flow(g0, (0, 1), domain=B, flow="ricci")
    with pytest.raises(ValueError, match="needs a periodic Torus"):
        solve_flow(g0, (0, 1), domain=B, method="etd")
    with pytest.raises(ValueError, match="dealias"):
        solve_flow(g0, (0, 1), domain=B, dealias=True)
    bad = g0.copy()
    bad[3, 5] = [[1.0, 0.0], [0.0, -0.25]]
    with pytest.raises(MetricError, match=r"grid point \(3, 5\) \(interior\).*eigenvalue -0\.25"):
        solve_flow(bad, (0, 1), domain=B)


# ---------------------------------------------------------------- check 2
def test_check2_dirichlet_rate_and_its_fourth_order_error():
    theory = 2 * math.pi**2
    runs = [dirichlet_decay(2, N) for N in (8, 12, 16)]
    errs = [abs(r["rel_err"]) for r in runs]
    assert all(r["theory"] == pytest.approx(theory) for r in runs)
    assert max(errs) < 2e-3 and errs[0] > errs[1] > errs[2], errs
    assert abs(_order(errs[1:], (12, 16)) - 4) <= 0.3, errs
    assert min(r["decades"] for r in runs) > 4


def test_check2_time_error_is_negligible_against_the_discrete_eigenvalue():
    # an off-diagonal perturbation excites one branch of the discrete operator only: the flow's
    # rate equals its slowest eigenvalue, so the whole deviation from 2π² is spatial
    discrete = discrete_dirichlet_rates(2, 8)
    r = dirichlet_decay(2, 8, S=np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert abs(r["rate"] / discrete.min() - 1) < 1e-6
    assert abs(discrete.min() / (2 * math.pi**2) - 1) > 5e-4


# ---------------------------------------------------------------- check 7
def test_check7_lne_box_essentials():
    B, g, a = lne_box(2, 8)
    lam = np.linalg.eigvalsh(g)[..., 0]
    assert lam.min() == pytest.approx(1 - 2 * math.tanh(a) ** 2, rel=1e-12) and lam.min() > 0.25
    assert a < math.atanh(1 / math.sqrt(2))
    r = lne_box_study(8, (1e-2, 1.01), analyse=1e-2)
    assert r["speed"][-1] < 1e-6 * r["speed"][0]  # the unperturbed flow reached its limit
    assert np.abs(r["g_inf"] - g).max() > 0.1  # g_LNE is not stationary
    assert r["sym_err"] < 1e-12
    small, big = r["scan"]
    assert small["decays"] and small["norms"][-1] < 1e-4 * small["norms"][0]
    assert big["status"] == "not positive definite at t = 0" and not big["decays"]
    lin = r["lin"]["by_class"]
    assert lin[(-1, 1)] < lin[(1, -1)] < lin[(1, 1)]
    for cls, d in small["classes"].items():
        assert abs(d["rate"] / lin[cls] - 1) < (5e-3 if cls == (1, 1) else 1e-3), (cls, d["rate"], lin[cls])


def test_parity_projections_split_a_field():
    B, g, a = lne_box(2, 8)
    rng = np.random.default_rng(3)
    h = rng.normal(size=g.shape)
    h = h + np.swapaxes(h, -1, -2)
    parts = [parity_projection(h, e, s) for e in (1, -1) for s in (1, -1)]
    rest = h - sum(parts)  # the 2-D class
    assert np.abs(parity_projection(rest, 1, 1)).max() < 1e-14
    for p in parts:
        for q in parts:
            if p is not q:
                assert abs(np.sum(p * q)) < 1e-12 * np.sum(h * h)
    assert np.abs(parity_projection(g, 1, 1) - g).max() < 1e-15  # g_LNE is D4-symmetric


# ---------------------------------------------------------------- one domain interface, one layout vocabulary
def test_domain_is_an_abstract_base_with_capabilities():
    with pytest.raises(TypeError, match="abstract"):
        Domain()

    class OnlyPoints(Domain):
        def points(self):
            return np.zeros((1, 1))

    with pytest.raises(TypeError, match="abstract"):
        OnlyPoints()
    T, B = Torus(2, 8), Box(2, 8)
    assert (T.spectral, T.holds_boundary, T.default_method) == (True, False, "etd")
    assert (B.spectral, B.holds_boundary, B.default_method) == (False, True, "BDF")
    assert T.n_unknowns == 8 * 8 * 3 and B.n_unknowns == 7 * 7 * 3


@pytest.mark.parametrize("domain", [Box(2, 9, L=[1.3, 0.8], origin=[-0.4, 0.2]), Box(3, 7), Torus(2, 8), Torus(3, 5)],
                         ids=repr)
def test_gradient_hessian_and_integral_agree_in_both_layouts(domain):
    n = domain.n
    f = np.random.default_rng(3).normal(size=(*domain.shape, 2, 3))  # grid first, then rest = (2, 3)
    f_last = np.moveaxis(f, (n, n + 1), (0, 1))  # [2, 3, *grid]

    def grid_first(d):  # [*deriv, 2, 3, *grid] -> [*grid, *deriv, 2, 3]
        return np.moveaxis(d, tuple(range(d.ndim - n, d.ndim)), tuple(range(n)))

    scale = np.abs(domain.hessian(f)).max()
    assert np.abs(grid_first(domain.gradient(f_last, grid_last=True)) - domain.gradient(f)).max() <= 1e-13 * scale
    assert np.abs(grid_first(domain.hessian(f_last, grid_last=True)) - domain.hessian(f)).max() <= 1e-13 * scale
    assert np.allclose(np.asarray(domain.integral(f_last, grid_last=True)), domain.integral(f), rtol=1e-14, atol=0)


def test_layout_helpers_and_the_one_symmetric_packing():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    A = rng.normal(size=(5, 4, 3, 3))
    g = A + np.swapaxes(A, -1, -2)  # [*grid, 3, 3]
    gf = components_first(g, 2)
    assert gf.shape == (3, 3, 5, 4) and np.array_equal(components_last(gf, 2), g)
    pk = packing(3)
    assert pk is packing(3) and pk.size == 6 and pk.pairs[:3] == [(0, 0), (0, 1), (0, 2)]
    for u in (gf, torch.as_tensor(gf)):  # numpy and torch, component axes first or last
        assert np.array_equal(np.asarray(pk.unpack(pk.pack(u))), gf)
    v = pk.pack(g, axis=-2)
    assert v.shape == (5, 4, 6) and np.array_equal(pk.unpack(v, axis=-1), g)
    assert v[1, 2].tolist() == [g[1, 2, i, j] for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))]


def test_the_state_check_names_the_point_and_component():
    B = Box(2, 8)
    g = np.broadcast_to(np.eye(2), (*B.shape, 2, 2)).copy()
    assert metric_problem(components_first(g, 2), B) is None
    bad = g.copy()
    bad[3, 5] = [[1.0, 2.0], [2.0, 1.0]]
    assert "positive definite at grid point (3, 5) (interior)" in metric_problem(components_first(bad, 2), B)
    bad[2, 4, 0, 1] = bad[2, 4, 1, 0] = np.nan
    assert "non-finite value g_01 = nan at grid point (2, 4)" in metric_problem(components_first(bad, 2), B)
