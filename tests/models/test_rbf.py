"""Least squares on Gaussian radial basis functions: centers, widths, design and the closed-form fit."""

import numpy as np
import pytest

from models.rbf import fit_rbf, rbf_centers, rbf_design, rbf_predict, rbf_width


@pytest.mark.parametrize("dim", [1, 2])
def test_centers_are_nested_and_inside_the_box(dim):
    few, many = rbf_centers(4, dim), rbf_centers(32, dim)
    assert few.shape == (4, dim) and many.shape == (32, dim)
    np.testing.assert_array_equal(many[:4], few)
    assert np.all((many > -1) & (many < 1))
    assert len(np.unique(many, axis=0)) == 32


def test_first_1d_centers_are_the_van_der_corput_points():
    np.testing.assert_allclose(rbf_centers(4, 1)[:, 0], [0.0, -0.5, 0.5, -0.75])


def test_width_is_the_squared_center_spacing():
    assert rbf_width(4, 1, 1.0) == pytest.approx(0.25)  # spacing 2/4
    assert rbf_width(16, 2, 2.0) == pytest.approx(1.0)  # spacing 2/4, doubled
    assert rbf_width(8, 1, 1.0) < rbf_width(4, 1, 1.0)


def test_design_is_an_intercept_then_gaussian_bumps():
    x = np.array([[0.0], [0.5]])
    centers = np.array([[0.0], [1.0]])
    design = rbf_design(x, centers, 0.5)
    np.testing.assert_allclose(design[:, 0], 1.0)
    np.testing.assert_allclose(design[:, 1:], [[1.0, np.exp(-2.0)], [np.exp(-0.5), np.exp(-0.5)]])


def test_least_squares_fit_solves_the_normal_equations_and_interpolates_beyond_n():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(30, 1))
    y = np.sin(3 * x[:, 0]) + 0.3 * rng.normal(size=30)
    coefficients, centers, width = fit_rbf(x, y, 8, 1.0)
    design = rbf_design(x, centers, width)
    np.testing.assert_allclose(design.T @ (design @ coefficients - y), 0.0, atol=1e-8)
    # More features than points: the minimum-norm solution interpolates the noise.
    coefficients, centers, width = fit_rbf(x, y, 64, 1.0)
    assert np.mean((rbf_predict(x, coefficients, centers, width) - y) ** 2) < 1e-12 * np.var(y)


def test_predictions_are_float64_whatever_the_inputs():
    x = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
    coefficients, centers, width = fit_rbf(x, np.cos(x[:, 0]), 5, 1.0)
    assert coefficients.dtype == np.float64 and coefficients.shape == (6,)
    assert rbf_predict(x, coefficients, centers, width).dtype == np.float64


def test_importing_it_loads_no_keras():
    import subprocess
    import sys

    code = "import sys, models.rbf; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
