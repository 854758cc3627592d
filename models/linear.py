"""Closed-form linear regression: OLS, the ridge and LASSO paths, their bootstrap, and the penalties they use.

NumPy and scikit-learn only (no Keras; scikit-learn loads on first use, so
importing this module stays cheap). Ridge and LASSO use the lecture's
convention: J = Σᵢ (yᵢ - b - xᵢβ)² (a sum, not a mean) plus λ‖β‖₂² or λ‖β‖₁,
the intercept b unpenalized. Ridge is scikit-learn's ``Ridge(alpha=λ)`` in
closed form through the SVD; LASSO is exact through the LARS path, scikit-learn's
``Lasso(alpha=λ / (2n))``.

Example:

>>> intercepts, coefficients = ridge_path(x, y, [0.0, 1.0, 10.0])  # row 0: least squares
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ols(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Ordinary least squares with an intercept (scikit-learn's `LinearRegression`).

    Args:
        x: Features ``(n, features)``.
        y: Targets ``(n,)``.

    Returns:
        The intercept and the coefficients ``(features,)``.
    """
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(x, y)
    return float(model.intercept_), np.asarray(model.coef_, dtype=np.float64)


def ridge_path(x: np.ndarray, y: np.ndarray, lambdas: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge for every λ: minimizes Σ(y - b - xβ)² + λ‖β‖₂² (intercept b unpenalized).

    Through the SVD of the centered features, X = U S Vᵀ:
    β(λ) = V diag(s / (s² + λ)) Uᵀ (y - ȳ), b = ȳ - x̄ β. At λ = 0 this is
    the minimum-norm least-squares solution (singular values at round-off
    count as 0, as in `numpy.linalg.lstsq`).

    Args:
        x: Features ``(n, features)``.
        y: Targets ``(n,)``.
        lambdas: The L values of λ, each >= 0.

    Returns:
        Intercepts ``(L,)`` and coefficients ``(L, features)``.
    """
    x_mean, y_mean = x.mean(axis=0), y.mean()
    u, s, vt = np.linalg.svd(x - x_mean, full_matrices=False)
    projected = u.T @ (y - y_mean)
    lambdas = np.asarray(lambdas, dtype=np.float64)[:, None]
    # Singular values at round-off are zeros, as lstsq's default rcond reads them: a bootstrap resample
    # with fewer distinct rows than coefficients then gets the minimum-norm fit, not round-off over round-off.
    kept = s > s.max(initial=0.0) * max(x.shape) * np.finfo(np.float64).eps
    shrink = np.divide(s, s**2 + lambdas, out=np.zeros((len(lambdas), len(s))), where=kept & ((s**2 + lambdas) > 0))
    coefficients = (shrink * projected) @ vt
    return y_mean - coefficients @ x_mean, coefficients


def lasso_path(x: np.ndarray, y: np.ndarray, lambdas: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LASSO for every λ: minimizes Σ(y - b - xβ)² + λ‖β‖₁ (intercept b unpenalized).

    Exact: the LARS-LASSO path (piecewise linear in λ) evaluated at each λ.
    scikit-learn's ``Lasso`` minimizes (1/2n)Σ(...)² + α‖β‖₁, the same
    problem with α = λ / (2n).

    Args:
        x: Features ``(n, features)``.
        y: Targets ``(n,)``.
        lambdas: The L values of λ, each >= 0.

    Returns:
        Intercepts ``(L,)`` and coefficients ``(L, features)``.
    """
    from sklearn.linear_model import lars_path

    n = len(y)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    alphas, _, path = lars_path(x - x_mean, y - y_mean, method="lasso")
    targets = np.asarray(lambdas, dtype=np.float64) / (2 * n)
    # np.interp needs increasing abscissae; beyond the path's largest α every coefficient is 0.
    coefficients = np.stack([np.interp(targets, alphas[::-1], path[j, ::-1], right=0.0) for j in range(x.shape[1])], axis=1)
    return y_mean - coefficients @ x_mean, coefficients


def reference_ols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[intercept, coefficients] from NumPy's least-squares solver on [1, x]: a second solver to check OLS against."""
    return np.linalg.lstsq(np.hstack([np.ones((len(x), 1)), x]), y, rcond=None)[0]


def relative_difference(a: np.ndarray | float, b: np.ndarray | float) -> float:
    """max |a - b| / max |b|: how far a solution ``a`` lies from a reference ``b``; 0 where they are equal.

    Equal values give 0 also where both are infinite (``inf - inf`` is NaN);
    a reference of zero divides by 1e-30, so that any difference from it reads huge.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.array_equal(a, b):
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def bootstrap_paths(
    x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, lambdas: Sequence[float] | np.ndarray, *, resamples: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """OLS, and ridge and LASSO along ``lambdas``, fitted on each of ``resamples`` bootstrap resamples of (x, y).

    OLS is `ridge_path` at λ = 0 (minimum-norm least squares), which skips
    scikit-learn's per-fit overhead.

    Args:
        x: Features ``(n, F)``.
        y: Targets ``(n,)``.
        x_eval: The V inputs ``(V, F)`` every fit predicts at.
        lambdas: The L values of λ of ridge and LASSO.
        resamples: B, the bootstrap resamples (each n rows drawn with replacement).
        rng: Draws the resamples' rows.

    Returns:
        ``ols_intercept`` (B,), ``ols_coef`` (B, F), ``ols_pred`` (B, V);
        ``ridge_coef`` / ``lasso_coef`` (B, L, F) and ``ridge_pred`` / ``lasso_pred`` (B, L, V).
    """
    names = ("ols_intercept", "ols_coef", "ols_pred", "ridge_coef", "ridge_pred", "lasso_coef", "lasso_pred")
    fits: dict[str, list] = {name: [] for name in names}
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        intercept, coefficients = ridge_path(x[rows], y[rows], [0.0])
        fits["ols_intercept"].append(intercept[0])
        fits["ols_coef"].append(coefficients[0])
        fits["ols_pred"].append(intercept[0] + x_eval @ coefficients[0])
        for name, path in (("ridge", ridge_path), ("lasso", lasso_path)):
            intercepts, coefficients = path(x[rows], y[rows], lambdas)
            fits[f"{name}_coef"].append(coefficients)
            fits[f"{name}_pred"].append(intercepts[:, None] + coefficients @ x_eval.T)
    return {name: np.asarray(values) for name, values in fits.items()}


def bootstrap_spread(samples: np.ndarray) -> float:
    """The mean over entries (coefficients, or prediction points) of the standard deviation across resamples (axis 0)."""
    return float(np.mean(np.std(samples, axis=0, ddof=1)))


def kernel_penalty(weights: Sequence[np.ndarray], coefficients: Sequence[tuple[float, float]]) -> float:
    """λ₁·Σ|w| + λ₂·Σw² summed over weight arrays, in float64: ridge's penalty (λ₁ = 0), LASSO's (λ₂ = 0), Keras's ``L1L2``.

    Args:
        weights: The penalized arrays (a net's kernels, say), each cast to float64.
        coefficients: ``(λ₁, λ₂)`` per array.
    """
    total = 0.0
    for array, (l1, l2) in zip(weights, coefficients):
        array = np.asarray(array).astype(np.float64)
        total += l1 * np.abs(array).sum() + l2 * np.square(array).sum()
    return float(total)
