"""The batched L-BFGS solver and the Approach 3 objective."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

from scalingkit.fit import ParametricFit, batched_lbfgs, huber, huber_objective
from scalingkit.fit.objective import initial_grid, log_loss_model


def _rosen_rows(x, rows):
    return np.array([rosen(r) for r in x]), np.array([rosen_der(r) for r in x])


@pytest.mark.parametrize("dim", [2, 4])
def test_batched_lbfgs_matches_scipy_on_rosenbrock(dim):
    rng = np.random.default_rng(dim)
    x0 = rng.uniform(-2, 2, size=(6, dim))
    res = batched_lbfgs(_rosen_rows, x0, gtol=1e-9)
    assert res.success.all(), res.message
    for i in range(6):
        ref = minimize(rosen, x0[i], jac=rosen_der, method="L-BFGS-B")
        assert res.fun[i] <= ref.fun + 1e-10
    if dim == 2:  # the 2-D function has a single minimum, at (1, 1)
        np.testing.assert_allclose(res.x, 1.0, atol=1e-4)


def test_batched_rows_are_independent():
    """A row's result does not depend on which other rows share the batch."""
    x0 = np.array([[-1.2, 1.0], [2.0, 2.0], [0.5, -1.5]])
    together = batched_lbfgs(_rosen_rows, x0)
    alone = batched_lbfgs(_rosen_rows, x0[1:2])
    np.testing.assert_array_equal(together.x[1], alone.x[0])
    assert together.nit[1] == alone.nit[0]


def test_batched_lbfgs_rejects_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        batched_lbfgs(_rosen_rows, np.zeros(3))


def _data(m=40, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(15, 23, m), rng.uniform(18, 27, m), rng.uniform(0.6, 1.6, m))


@pytest.mark.parametrize("delta", [1e-3, 0.1, np.inf])
def test_objective_value_and_gradient(delta):
    ln, ld, ll = _data()
    theta = np.array([[6.0, 7.5, 0.6, 0.34, 0.36], [3.0, 2.0, -0.5, 0.1, 0.2]])
    f, g = huber_objective(theta, ln, ld, ll, delta)
    pred, _ = log_loss_model(theta, ln, ld)
    np.testing.assert_allclose(f, huber(pred - ll, delta).sum(1), rtol=1e-12)
    h = 1e-6
    num = np.stack([(huber_objective(theta + h * e, ln, ld, ll, delta)[0]
                     - huber_objective(theta - h * e, ln, ld, ll, delta)[0]) / (2 * h)
                    for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-9)


def test_weights_equal_duplicated_points():
    ln, ld, ll = _data(10)
    theta = np.array([[6.0, 7.5, 0.6, 0.34, 0.36]])
    w = np.arange(10, dtype=float) % 3
    fw, gw = huber_objective(theta, ln, ld, ll, 1e-3, w[None, :])
    idx = np.repeat(np.arange(10), w.astype(int))
    fd, gd = huber_objective(theta, ln[idx], ld[idx], ll[idx], 1e-3)
    np.testing.assert_allclose(fw, fd, rtol=1e-12)
    np.testing.assert_allclose(gw, gd, rtol=1e-10)


@pytest.mark.parametrize("size,n", [("full", 4500), ("small", 243)])
def test_initial_grid_sizes(size, n):
    grid = initial_grid(size)
    assert grid.shape == (n, 5)
    assert grid[:, 3].min() == 0 and grid[:, 3].max() == 2


def test_custom_grid_shape_checked():
    with pytest.raises(ValueError, match=r"shape \(n_starts, 5\)"):
        ParametricFit(grid=np.zeros((3, 4))).fit(*np.exp(_data(12)))
