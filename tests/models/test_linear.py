"""Closed-form linear fits: OLS, the ridge and LASSO paths, the bootstrap of them."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso, Ridge

from ablations.engine.data.synthetic import load_collinear
from models.linear import bootstrap_paths, bootstrap_spread, kernel_penalty, lasso_path, ols, reference_ols, relative_difference, ridge_path

LAMBDAS = tuple(float(v) for v in np.logspace(-2, 4, 25))


def sample(correlation, n_features=2, n=120, seed=0):
    raw = load_collinear(n_samples=n, n_features=n_features, correlation=correlation, noise=1.0, data_seed=seed)
    return raw.x, raw.y


@pytest.mark.parametrize("n_features", [2, 6])
@pytest.mark.parametrize("correlation", [0.0, 0.9, 0.99, 0.999, 0.9999])
def test_ols_agrees_with_numpy_lstsq(correlation, n_features):
    x, y = sample(correlation, n_features)
    intercept, coefficients = ols(x, y)
    reference = reference_ols(x, y)
    assert relative_difference(np.concatenate([[intercept], coefficients]), reference) < 1e-6
    # The bootstrap's OLS (ridge at λ = 0 through the SVD) agrees too.
    intercepts, path = ridge_path(x, y, [0.0])
    assert relative_difference(np.concatenate([intercepts, path[0]]), reference) < 1e-6


def test_relative_difference_is_relative():
    assert relative_difference(np.array([1.0, 2.0 + 2e-6]), np.array([1.0, 2.0])) == pytest.approx(1e-6)


@pytest.mark.parametrize("correlation", [0.0, 0.99])
def test_ridge_path_is_scikit_learn_ridge(correlation):
    x, y = sample(correlation, 6)
    lambdas = [0.01, 1.0, 100.0]
    intercepts, coefficients = ridge_path(x, y, lambdas)
    for lam, b, beta in zip(lambdas, intercepts, coefficients):
        model = Ridge(alpha=lam, solver="svd").fit(x, y)
        np.testing.assert_allclose(beta, model.coef_, rtol=1e-8, atol=1e-10)
        assert b == pytest.approx(model.intercept_, abs=1e-10)


@pytest.mark.parametrize("correlation", [0.0, 0.9])
def test_lasso_path_is_scikit_learn_lasso_with_alpha_lambda_over_2n(correlation):
    x, y = sample(correlation, 6)
    lambdas = [0.1, 10.0, 100.0]
    intercepts, coefficients = lasso_path(x, y, lambdas)
    for lam, b, beta in zip(lambdas, intercepts, coefficients):
        model = Lasso(alpha=lam / (2 * len(y)), tol=1e-12, max_iter=1_000_000).fit(x, y)
        np.testing.assert_allclose(beta, model.coef_, atol=1e-7)
        assert b == pytest.approx(model.intercept_, abs=1e-7)


def test_lasso_zeroes_everything_at_huge_lambda_and_is_ols_at_tiny_lambda():
    x, y = sample(0.5, 6)
    _, coefficients = lasso_path(x, y, [1e-9, 1e6])
    np.testing.assert_allclose(coefficients[0], ols(x, y)[1], atol=1e-6)
    assert np.all(coefficients[1] == 0.0)


def test_ridge_path_at_zero_is_the_minimum_norm_fit_when_rows_repeat():
    # A bootstrap resample with 4 distinct rows for 6 features: rank 3 once centered. Round-off singular
    # values count as 0, as in lstsq, instead of dividing round-off by round-off.
    x, y = sample(0.9, 6, n=4)
    x, y = np.repeat(x, 3, axis=0), np.repeat(y, 3)
    intercepts, coefficients = ridge_path(x, y, [0.0])
    centered = x - x.mean(axis=0)
    np.testing.assert_allclose(coefficients[0], np.linalg.pinv(centered) @ (y - y.mean()), atol=1e-8)


def test_ridge_shrinks_coefficients_monotonically():
    x, y = sample(0.99, 2)
    _, coefficients = ridge_path(x, y, LAMBDAS)
    norms = np.linalg.norm(coefficients, axis=1)
    assert np.all(np.diff(norms) <= 1e-12)


def test_bootstrap_paths_shapes_determinism_and_fits_per_resample():
    x, y = sample(0.9, 6)
    x_eval = x[:7]
    fits = bootstrap_paths(x, y, x_eval, [0.0, 1.0, 10.0], resamples=12, rng=np.random.default_rng(3))
    assert fits["ols_intercept"].shape == (12,) and fits["ols_coef"].shape == (12, 6) and fits["ols_pred"].shape == (12, 7)
    assert fits["ridge_coef"].shape == fits["lasso_coef"].shape == (12, 3, 6)
    assert fits["ridge_pred"].shape == fits["lasso_pred"].shape == (12, 3, 7)
    again = bootstrap_paths(x, y, x_eval, [0.0, 1.0, 10.0], resamples=12, rng=np.random.default_rng(3))
    for name, values in fits.items():
        np.testing.assert_array_equal(again[name], values, err_msg=name)
    # Each resample is the rng's draw of n rows with replacement; OLS there is least squares, ridge at λ = 0 too.
    rows = np.random.default_rng(3).integers(0, len(y), len(y))
    np.testing.assert_allclose(fits["ols_coef"][0], ols(x[rows], y[rows])[1], atol=1e-9)
    np.testing.assert_allclose(fits["ridge_coef"][0, 0], fits["ols_coef"][0], atol=1e-12)
    np.testing.assert_allclose(fits["ols_pred"][0], fits["ols_intercept"][0] + x_eval @ fits["ols_coef"][0])
    np.testing.assert_allclose(fits["lasso_pred"][0, 2], lasso_path(x[rows], y[rows], [10.0])[0][0] + x_eval @ fits["lasso_coef"][0, 2])


def test_bootstrap_spread_is_the_mean_sd_across_resamples():
    samples = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    assert bootstrap_spread(samples) == pytest.approx((2.0 + 0.0) / 2)
    assert bootstrap_spread(np.ones((5, 3, 4))) == 0.0


def test_kernel_penalty_is_lambda_times_the_sums_in_float64():
    weights = [np.array([[1.0, -2.0]], np.float32), np.array([3.0, -0.5], np.float32)]
    assert kernel_penalty(weights, [(0.1, 0.0), (0.0, 0.2)]) == pytest.approx(0.1 * 3.0 + 0.2 * 9.25)
    assert kernel_penalty(weights, [(0.0, 0.0), (0.0, 0.0)]) == 0.0
    assert isinstance(kernel_penalty(weights, [(1.0, 1.0)] * 2), float)


def test_relative_difference_reads_equal_values_as_none_and_any_difference_from_zero_as_huge():
    assert relative_difference(np.array([1.0, -2.0]), np.array([2.0, -1.0])) == 0.5
    assert relative_difference(0.3, 0.1) == pytest.approx(2.0)
    assert relative_difference(0.0, 0.0) == 0.0 and relative_difference(np.inf, np.inf) == 0.0
    assert relative_difference(1e-6, 0.0) == pytest.approx(1e24)
