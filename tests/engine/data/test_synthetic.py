"""The synthetic regression sets: noisy functions and collinear features."""

import numpy as np
import pytest

from ablations.engine.data import DataError, dataset_names, load_dataset
from ablations.engine.data.synthetic import (
    equicorrelated_features,
    load_collinear,
    load_noisy_1d,
    noisy_1d_function,
    noisy_2d_function,
)


def test_sets_are_registered_by_importing_the_module():
    assert {"noisy_1d", "noisy_2d", "collinear"} <= set(dataset_names())


def test_noisy_1d_without_noise_is_the_function():
    raw = load_noisy_1d(n_samples=50, noise=0.0, data_seed=3)
    assert raw.x.shape == (50, 1) and raw.num_classes == 0
    assert np.all((raw.x >= -1) & (raw.x <= 1))
    np.testing.assert_allclose(raw.y, np.sin(3 * raw.x[:, 0]) + 0.5 * np.cos(7 * raw.x[:, 0]))


def test_noise_has_the_requested_standard_deviation():
    raw = load_noisy_1d(n_samples=20_000, noise=0.3, data_seed=0)
    residual = raw.y - noisy_1d_function(raw.x)
    assert abs(residual.std() - 0.3) < 0.01
    assert abs(residual.mean()) < 0.01


def test_noisy_2d_through_load_dataset_is_regression_and_seeded():
    first = load_dataset("noisy_2d", n_samples=100, noise=0.0, data_seed=1, standardize=False)
    again = load_dataset("noisy_2d", n_samples=100, noise=0.0, data_seed=1, standardize=False)
    other = load_dataset("noisy_2d", n_samples=100, noise=0.0, data_seed=2, standardize=False)
    assert first.num_classes == 0 and first.x_train.shape[1] == 2
    assert first.y_train.dtype == np.float32
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    np.testing.assert_allclose(first.y_train, noisy_2d_function(first.x_train.astype(np.float64)), atol=1e-5)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9, 0.99])
def test_equicorrelated_features_have_unit_variance_and_correlation_rho(rho):
    x = equicorrelated_features(50_000, 4, rho, np.random.default_rng(0))
    np.testing.assert_allclose(x.var(axis=0), 1.0, atol=0.03)
    corr = np.corrcoef(x.T)[np.triu_indices(4, 1)]
    np.testing.assert_allclose(corr, rho, atol=0.02)


def test_collinear_target_is_the_sum_of_the_features_plus_noise():
    raw = load_collinear(n_samples=200, n_features=6, correlation=0.99, noise=0.0, data_seed=4)
    assert raw.x.shape == (200, 6)
    np.testing.assert_allclose(raw.y, raw.x.sum(axis=1))
    noisy = load_collinear(n_samples=200, n_features=6, correlation=0.99, noise=1.0, data_seed=4)
    # Same draw of the features: the seed fixes x, the noise only adds to y.
    np.testing.assert_array_equal(noisy.x, raw.x)
    assert 0.8 < np.std(noisy.y - raw.y) < 1.2


def test_collinear_draws_are_paired_across_correlations():
    # The same seed gives the same latent draws for every ρ, so ablations
    # comparing correlations compare like with like.
    low = load_collinear(n_samples=10, correlation=0.0, data_seed=0, noise=0.0)
    high = load_collinear(n_samples=10, correlation=0.9, data_seed=0, noise=0.0)
    rng = np.random.default_rng(0)
    shared, own = rng.normal(size=(10, 1)), rng.normal(size=(10, 2))
    np.testing.assert_allclose(low.x, own)
    np.testing.assert_allclose(high.x, np.sqrt(0.9) * shared + np.sqrt(0.1) * own)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"correlation": 1.0}, "correlation"),
        ({"correlation": -0.1}, "correlation"),
        ({"n_features": 1}, "n_features"),
        ({"noise": -1.0}, "noise"),
        ({"n_samples": 0}, "n_samples"),
        ({"data_seed": -1}, "data_seed"),
    ],
)
def test_bad_collinear_options_name_the_problem(options, message):
    with pytest.raises(DataError, match=message):
        load_dataset("collinear", **options)


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(DataError, match="Valid choices: data_seed, n_samples, noise"):
        load_dataset("noisy_1d", rho=0.5)
