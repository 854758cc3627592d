"""Least squares on Gaussian radial basis functions, fitted in closed form (numpy and scipy, no Keras).

The lecture's generic features φ_i(x) = exp(-||x - μ_i||² / λ), plus an
intercept. The centers μ_i are the first p points of the Halton sequence on
[-1, 1]^d (well spread, and the centers of p features are among those of 2p);
the width λ shrinks with p, λ = (bandwidth · 2 / p^(1/d))², so neighbouring
bumps overlap alike at every p. Beyond p + 1 = n features the system is
underdetermined and `fit_rbf` returns the minimum-norm interpolant.

Example:

>>> coefficients, centers, width = fit_rbf(x_train, y_train, p=16, bandwidth=1.0)
>>> prediction = rbf_predict(x_val, coefficients, centers, width)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc


def rbf_centers(p: int, dim: int) -> np.ndarray:
    """The first ``p`` points of the (unscrambled) Halton sequence, mapped to [-1, 1]^dim.

    The sequence's first point, the corner, is skipped; in 1-D the centers
    are 0, -0.5, 0.5, -0.75, 0.25, ...

    Args:
        p: Number of centers.
        dim: Dimension of the inputs.

    Returns:
        ``(p, dim)`` centers.
    """
    return 2.0 * qmc.Halton(d=dim, scramble=False).random(p + 1)[1:] - 1.0


def rbf_width(p: int, dim: int, bandwidth: float) -> float:
    """λ of φ = exp(-||x - μ||² / λ): (bandwidth · center spacing)², the spacing 2 / p^(1/dim).

    Args:
        p: Number of centers.
        dim: Dimension of the inputs.
        bandwidth: The width in units of the center spacing.
    """
    return (bandwidth * 2.0 / p ** (1.0 / dim)) ** 2


def rbf_design(x: np.ndarray, centers: np.ndarray, width: float) -> np.ndarray:
    """[1, φ_1(x), ..., φ_p(x)]: an intercept column then one Gaussian RBF feature per center.

    Args:
        x: ``(n, dim)`` inputs.
        centers: ``(p, dim)`` centers μ_i.
        width: λ.

    Returns:
        The ``(n, p + 1)`` design matrix.
    """
    squared = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=-1)
    return np.hstack([np.ones((len(x), 1)), np.exp(-squared / width)])


def fit_rbf(x: np.ndarray, y: np.ndarray, p: int, bandwidth: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Least squares on p RBF features plus an intercept, in float64 (minimum norm when p + 1 > n).

    Args:
        x: ``(n, dim)`` training inputs.
        y: ``(n,)`` training targets.
        p: Number of features.
        bandwidth: The width in units of the center spacing (see `rbf_width`).

    Returns:
        (coefficients, the intercept's first; centers; λ).
    """
    dim = x.shape[1]
    centers, width = rbf_centers(p, dim), rbf_width(p, dim, bandwidth)
    coefficients = np.linalg.lstsq(rbf_design(x.astype(np.float64), centers, width), y.astype(np.float64), rcond=None)[0]
    return coefficients, centers, width


def rbf_predict(x: np.ndarray, coefficients: np.ndarray, centers: np.ndarray, width: float) -> np.ndarray:
    """The fit's predictions at ``x``, in float64.

    Args:
        x: ``(n, dim)`` inputs.
        coefficients, centers, width: What `fit_rbf` returns.
    """
    return rbf_design(x.astype(np.float64), centers, width) @ coefficients
