"""Smoke-level checks of MetricField: backends, shapes and error messages."""

import numpy as np
import pytest
import torch

from lnegeom import MetricError, MetricField


def _sphere_torch(x):
    return torch.diag(torch.stack([torch.ones_like(x[0]), torch.sin(x[0]) ** 2]))


def _sphere_numpy(x):
    return np.diag([1.0, np.sin(x[0]) ** 2])


def test_sphere_scalar_both_backends():
    # unit 2-sphere in (θ, φ): g = dθ² + sin²θ dφ², R = 2 (MATH.md §1)
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
    with pytest.raises(MetricError, match=r"non-finite entry g_ij = inf at point x = \[0, 1\], entry \(i, j\) = \(1, 1\)"):
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
