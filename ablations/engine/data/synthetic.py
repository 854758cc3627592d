"""Synthetic regression sets: noisy smooth functions and collinear features.

Registered with `register_dataset` when `ablations.engine.data` is imported,
so `load_dataset("noisy_1d")`, `load_dataset("noisy_2d")` and
`load_dataset("collinear")` work like the bundled sets; the noiseless targets
and the loaders are here for the ablations that use them directly.

- ``noisy_1d``: x uniform on [-1, 1], y = sin(3x) + 0.5 cos(7x) + noise: a
  smooth curve with a few bumps, which a handful of Gaussian RBF features
  fit and a few hundred overfit.
- ``noisy_2d``: x uniform on [-1, 1]^2, y = sin(2.5 x1) cos(2.5 x2) + 0.3 x1
  + noise.
- ``collinear``: ``n_features`` equicorrelated Gaussian features (every pair
  has correlation ``correlation``), y = sum of the features (every true
  coefficient is 1) + noise. Two features is the lecture's "duas features quase
  colineares"; six is in the spirit of its franchise data (several features
  measuring much the same thing).

Example:

>>> from ablations.engine.data import load_dataset
>>> ds = load_dataset("collinear", n_features=2, correlation=0.99, standardize=False)
>>> ds.x_train.shape[1], ds.num_classes
(2, 0)
"""

from __future__ import annotations

import numpy as np

from ablations.engine.data.core import DataError, RawData, is_int, is_real
from ablations.engine.data.registry import register_dataset

NOISY_1D_NOISE = 0.3
NOISY_2D_NOISE = 0.3


def noisy_1d_function(x: np.ndarray) -> np.ndarray:
    """The noiseless target of ``noisy_1d``, for x of shape (N, 1)."""
    return np.sin(3.0 * x[:, 0]) + 0.5 * np.cos(7.0 * x[:, 0])


def noisy_2d_function(x: np.ndarray) -> np.ndarray:
    """The noiseless target of ``noisy_2d``, for x of shape (N, 2)."""
    return np.sin(2.5 * x[:, 0]) * np.cos(2.5 * x[:, 1]) + 0.3 * x[:, 0]


def _check(n_samples: object, noise: object, data_seed: object) -> None:
    if not is_int(n_samples, minimum=1):
        raise DataError(f"n_samples must be a positive integer; got {n_samples!r}.")
    # `not noise >= 0` also rejects NaN.
    if not is_real(noise) or not noise >= 0:
        raise DataError(f"noise must be a number >= 0; got {noise!r}.")
    if not is_int(data_seed, minimum=0):
        raise DataError(f"data_seed must be a non-negative integer; got {data_seed!r}.")


def _noisy_function(function, dim: int, n_samples: int, noise: float, data_seed: int) -> RawData:
    rng = np.random.default_rng(data_seed)
    x = rng.uniform(-1.0, 1.0, size=(n_samples, dim))
    y = function(x) + rng.normal(0.0, noise, size=n_samples)
    return RawData(x=x, y=y, num_classes=0)


@register_dataset("noisy_1d", source="generated")
def load_noisy_1d(*, n_samples: int = 200, noise: float = NOISY_1D_NOISE, data_seed: int = 0) -> RawData:
    """x ~ U[-1, 1], y = sin(3x) + 0.5 cos(7x) + N(0, noise²)."""
    _check(n_samples, noise, data_seed)
    return _noisy_function(noisy_1d_function, 1, n_samples, noise, data_seed)


@register_dataset("noisy_2d", source="generated")
def load_noisy_2d(*, n_samples: int = 400, noise: float = NOISY_2D_NOISE, data_seed: int = 0) -> RawData:
    """x ~ U[-1, 1]², y = sin(2.5 x1) cos(2.5 x2) + 0.3 x1 + N(0, noise²)."""
    _check(n_samples, noise, data_seed)
    return _noisy_function(noisy_2d_function, 2, n_samples, noise, data_seed)


def equicorrelated_features(n_samples: int, n_features: int, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """Standard normal features whose every pair has correlation ``correlation``.

    x_j = sqrt(ρ) z + sqrt(1 - ρ) e_j with one shared factor z and independent
    e_j, all N(0, 1): var(x_j) = 1 and cov(x_j, x_k) = ρ.
    """
    shared = rng.normal(size=(n_samples, 1))
    own = rng.normal(size=(n_samples, n_features))
    return np.sqrt(correlation) * shared + np.sqrt(1.0 - correlation) * own


@register_dataset("collinear", source="generated")
def load_collinear(
    *,
    n_samples: int = 200,
    n_features: int = 2,
    correlation: float = 0.9,
    noise: float = 1.0,
    data_seed: int = 0,
) -> RawData:
    """Equicorrelated features, y = x_1 + ... + x_n + N(0, noise²).

    Args:
        n_samples: Examples generated (train, validation and test together).
        n_features: Number of features, >= 2.
        correlation: Correlation of every pair of features, in [0, 1).
        noise: Standard deviation of the additive noise.
        data_seed: Seed of the draw.
    """
    _check(n_samples, noise, data_seed)
    if not is_int(n_features, minimum=2):
        raise DataError(f"n_features must be an integer >= 2; got {n_features!r}.")
    if not is_real(correlation) or not 0.0 <= correlation < 1.0:
        raise DataError(f"correlation must be a number in [0, 1); got {correlation!r}.")
    rng = np.random.default_rng(data_seed)
    x = equicorrelated_features(n_samples, int(n_features), float(correlation), rng)
    y = x.sum(axis=1) + rng.normal(0.0, noise, size=n_samples)
    return RawData(x=x, y=y, num_classes=0)
