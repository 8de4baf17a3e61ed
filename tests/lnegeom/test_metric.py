"""Smoke-level checks of MetricField: backends, shapes and error messages."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lnegeom import MetricError, MetricField


def _sphere_torch(x):
    return torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2]))


def _sphere_numpy(x):
    return np.diag([1.0, np.sin(x[0]) ** 2])


def test_sphere_scalar_both_backends():
    # unit 2-sphere in (θ, φ): g = dθ² + sin²θ dφ², R = 2 (docs/math.md §1)
    pts = np.array([[0.4, 0.1], [1.2, 2.0], [2.5, -1.0]])
    rt = MetricField(_sphere_torch, 2).scalar(pts)
    rn = MetricField(_sphere_numpy, 2, backend="numpy").scalar(pts)
    assert rt.dtype == torch.float64
    np.testing.assert_allclose(rt.numpy(), 2.0, atol=1e-12)
    np.testing.assert_allclose(rn, 2.0, atol=1e-7)


def test_batch_shape_is_kept():
    pts = torch.rand(3, 4, 2, dtype=torch.float64) + 0.5
    c = MetricField(_sphere_torch, 2).curvature(pts)
    assert c.riemann.shape == (3, 4, 2, 2, 2, 2)
    assert c.scalar.shape == (3, 4)


def test_wrong_coordinate_count_named():
    with pytest.raises(ValueError, match="3 coordinates"):
        MetricField(lambda x: torch.eye(3, dtype=x.dtype), 3).scalar(torch.zeros(5, 2))


def test_not_positive_definite_names_point_and_eigenvalue():
    m = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), x[0]])), 2)
    with pytest.raises(MetricError, match=r"point x = \[-0.5, 0\].*eigenvalue -0.5"):
        m.scalar(torch.tensor([[1.0, 0.0], [-0.5, 0.0]]))


@pytest.mark.gpu
def test_curvature_on_cuda_matches_cpu():
    pts = torch.tensor([[0.4, 0.1], [1.2, 2.0]], dtype=torch.float64)
    cpu = MetricField(_sphere_torch, 2).curvature(pts)
    gpu = MetricField(_sphere_torch, 2, device="cuda").curvature(pts.cuda())
    assert gpu.scalar.device.type == "cuda"
    torch.testing.assert_close(gpu.riemann.cpu(), cpu.riemann)


def test_float32_points_are_promoted_to_the_field_dtype():
    c = MetricField(_sphere_torch, 2).curvature(torch.tensor([[1.0, 0.3]], dtype=torch.float32))
    assert c.scalar.dtype == torch.float64
    c32 = MetricField(_sphere_torch, 2, dtype=torch.float32).curvature(torch.tensor([[1.0, 0.3]]))
    assert c32.scalar.dtype == torch.float32
    torch.testing.assert_close(c32.scalar, torch.tensor([2.0]), rtol=1e-4, atol=1e-4)


def test_non_finite_metric_names_point_and_entry():
    m = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), 1.0 / x[0]])), 2)
    with pytest.raises(MetricError,
                       match=r"non-finite entry g_ij = inf at point x = \[0, 1\], entry \(i, j\) = \(1, 1\)"):
        m(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


def test_non_symmetric_metric_names_point_and_entry():
    m = MetricField(lambda x: torch.stack([torch.stack([torch.ones_like(x[0]), x[0]]),
                                           torch.stack([torch.zeros_like(x[0]), torch.ones_like(x[0])])]), 2)
    with pytest.raises(MetricError, match=r"not symmetric: \|g_ij - g_ji\| = 5.000e-01 at point x = \[0.5, 0\]"):
        m(torch.tensor([[0.0, 0.0], [0.5, 0.0]]))


def test_non_square_metric_is_rejected():
    m = MetricField(lambda x: torch.ones(2, 3, dtype=x.dtype), 2)
    with pytest.raises(MetricError, match=r"\(2, 2\) matrix"):
        m(torch.zeros(1, 2))
    from lnegeom.curvature import check_metric_array

    with pytest.raises(MetricError, match="square matrix per point, got shape"):
        check_metric_array(np.ones((4, 2, 3)))


def test_numpy_batch_index_is_named_without_points():
    from lnegeom.curvature import check_metric_array

    g = np.stack([np.eye(2), np.diag([1.0, -2.0])])
    with pytest.raises(MetricError, match=r"batch index \(1,\): smallest eigenvalue -2"):
        check_metric_array(g)


# ---------------------------------------------------------------- non-finite and complex input is refused
def _fmt_point(p):
    return r"\[" + ", ".join(re.escape(f"{float(v):.6g}") for v in p) + r"\]"


def _eye_numpy(x):
    return np.eye(2)


def _eye_torch(x):
    return torch.eye(2, dtype=x.dtype)


@given(
    backend=st.sampled_from(["numpy", "torch"]),
    batch=st.sampled_from([(3,), (2, 3)]),
    data=st.data(),
)
def test_non_finite_point_is_named_with_index_and_coordinate(backend, batch, data):
    # a constant metric would silently give R = 0 at a NaN point
    flat = data.draw(st.integers(0, int(np.prod(batch)) - 1), label="point")
    a = data.draw(st.integers(0, 1), label="coordinate")
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
    pts = np.full(batch + (2,), 0.5)
    idx = tuple(int(i) for i in np.unravel_index(flat, batch))
    pts[idx + (a,)] = bad
    m = MetricField(_eye_numpy if backend == "numpy" else _eye_torch, 2, backend=backend)
    with pytest.raises(MetricError, match=(
        rf"non-finite coordinate x_{a} = {re.escape(f'{bad:.6g}')} at point x = {_fmt_point(pts[idx])} "
        rf"\(index {re.escape(str(idx))} of the points\); every coordinate must be finite"
    )):
        m.scalar(pts if backend == "numpy" else torch.as_tensor(pts))


@given(
    backend=st.sampled_from(["numpy", "torch"]),
    flat=st.integers(0, 5),
    entry=st.tuples(st.integers(0, 1), st.integers(0, 1)),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
)
def test_non_finite_metric_entry_is_named_with_point_index(backend, flat, entry, bad):
    i, j = entry
    pts = np.stack([np.arange(6.0), np.zeros(6)], axis=-1).reshape(2, 3, 2)  # point k has x_0 = k
    idx = tuple(int(q) for q in np.unravel_index(flat, (2, 3)))
    mask = np.zeros((2, 2), dtype=bool)
    mask[i, j] = True

    def g_numpy(x):
        return np.where(mask & (x[0] == flat), bad, np.eye(2))

    def g_torch(x):
        eye = torch.eye(2, dtype=x.dtype)
        return torch.where(torch.as_tensor(mask) & (x[0] == flat), torch.full_like(eye, bad), eye)

    m = MetricField(g_numpy if backend == "numpy" else g_torch, 2, backend=backend)
    match = (rf"non-finite entry g_ij = {re.escape(f'{bad:.6g}')} at point x = \[{flat}, 0\], "
             rf"entry \(i, j\) = \({i}, {j}\) \(index {re.escape(str(idx))} of the points\)")
    with pytest.raises(MetricError, match=match):
        m(pts)
    with np.errstate(invalid="ignore"), pytest.raises(MetricError, match=match):
        m.scalar(pts)  # finite differences of inf first, then the check


@pytest.mark.parametrize("check", [True, False])
def test_complex_metric_is_refused_not_cast_numpy(check):
    m = MetricField(lambda x: np.diag([1.0, 1.0 + 1j * x[0]]), 2, backend="numpy", check=check)
    pts = np.array([[0.0, 0.1], [0.4, 0.1]])
    match = (r"fn returned a complex array \(complex128\) at point x = \[0, 0.1\] \(index \(0,\) of the points\); "
             r"a metric is real and is never cast silently \(all imaginary parts are zero")
    with pytest.raises(MetricError, match=match):
        m(pts)
    with pytest.raises(MetricError, match=r"complex array.*x = \[0.4, 0.1\] \(index \(0,\).*entry \(1, 1\) = 1\+0.4j"):
        m.scalar(pts[1:])  # finite differences: the first evaluation is the point itself
    der = MetricField(_eye_numpy, 2, backend="numpy", check=check,
                      derivatives=lambda x: (np.eye(2), np.zeros((2, 2, 2)),
                                             np.zeros((2, 2, 2, 2)) + (1e-3j * x[0] if x[0] else 0)))
    with pytest.raises(MetricError, match=r"derivatives= \(d2g\) returned a complex array .*index \(1,\).*"
                                          r"entry \(0, 0, 0, 0\) = 0\+0.0004j"):
        der.scalar(pts)


@pytest.mark.parametrize("check", [True, False])
def test_complex_metric_is_refused_torch(check):
    m = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), 1 + 1j * x[0]])), 2, check=check)
    pts = torch.tensor([[0.0, 0.1], [0.4, 0.1]], dtype=torch.float64)
    match = (r"fn returned a complex metric \(torch.complex128\) at point x = \[0.4, 0.1\] \(index \(1,\) of the "
             r"points\); a metric is real and is never cast silently \(entry \(i, j\) = \(1, 1\) is 1\+0.4j")
    with pytest.raises(MetricError, match=match):
        m(pts)
    with pytest.raises(MetricError, match=match):  # not jacfwd's RuntimeError
        m.scalar(pts)
    with pytest.raises(MetricError, match=r"dtype=torch.complex128 is not a real floating dtype.*torch.float64"):
        MetricField(_eye_torch, 2, dtype=torch.complex128)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("kind", ["numpy", "torch", "list"])
def test_complex_points_are_refused_not_cast(backend, kind):
    pts = np.array([[0.5, 0.5], [0.5, 0.5 + 2j]])
    x = {"numpy": pts, "torch": torch.as_tensor(pts), "list": pts.tolist()}[kind]
    m = MetricField(_eye_numpy if backend == "numpy" else _eye_torch, 2, backend=backend, check=False)
    with pytest.raises(MetricError, match=(r"the points x have a complex dtype .*complex128.*; coordinates are real.*"
                                           r"x_1 = 0.5\+2j at point index \(1,\), coordinate 1; pass x.real only if")):
        m.scalar(x)
    with pytest.raises(MetricError, match=r"all imaginary parts are zero: pass x.real"):
        m(pts.real + 0j)


def test_non_finite_derivatives_are_named_with_the_cause():
    # torch: sqrt has an infinite derivative at 0 (curvature was NaN)
    m = MetricField(lambda x: torch.diag(torch.stack([torch.ones_like(x[0]), 1 + torch.sqrt(x[0])])), 2)
    with pytest.raises(MetricError, match=(r"derivative ∂_a g_ij with \(a, i, j\) = \(0, 1, 1\) is inf at point "
                                           r"x = \[0, 0\], where g itself is finite; fn is not twice differentiable")):
        m.scalar(torch.tensor([0.0, 0.0], dtype=torch.float64))
    # numpy finite differences: the stencil reaches the pole at x_0 = 0
    fd = MetricField(lambda x: np.diag([1.0, 1.0 / x[0]]), 2, backend="numpy")
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(MetricError, match=r"\(0, 1, 1\) is -?inf at point x = \[0.001, 0\].*finite-difference "
                                              r"stencil .*lower fd_step"):
            fd.scalar(np.array([[0.5, 0.0], [0.001, 0.0]])[1:])
    der = MetricField(_eye_numpy, 2, backend="numpy",
                      derivatives=lambda x: (np.eye(2), np.zeros((2, 2, 2)), np.full((2, 2, 2, 2), np.nan)))
    with pytest.raises(MetricError, match=r"∂_a ∂_b g_ij with \(a, b, i, j\) = \(0, 0, 0, 0\) is nan.*derivatives="):
        der.scalar(np.zeros(2))
