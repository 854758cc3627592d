"""Collinearity: nearly collinear features make coefficients unstable, not predictions.

The lecture's claim ("duas features quase colineares", "instabilidade dos
coeficientes"): when features are nearly collinear, a small change of the data
gives completely different regression coefficients (high variance) but almost
the same predictions; the model could drop some features without harm. L2
(ridge) shrinks that variance; L1 (LASSO) drops redundant features.

Run it:

    ablate run collinearity --profile quick

Data (`ablations.engine.data.synthetic`, set "collinear"): 2 or 6 standard normal
features whose every pair has correlation ρ = 0, 0.9, 0.99, 0.999, and
y = x_1 + ... + x_n + N(0, 1): every true coefficient is 1. Each trial draws
200 examples (60% training, 20% validation, 20% test), keeps ``n_train`` of
the training ones (all 120, or 18: few examples per coefficient, where OLS
overfits), fits ordinary least squares on B = 200 bootstrap resamples of them,
and measures the spread (standard deviation across resamples) of each
coefficient and of the predictions at the validation inputs. OLS is
scikit-learn's `LinearRegression` (the bootstrap uses the same minimum-norm
least squares through the SVD); ridge and LASSO use the lecture's convention,
J = Σᵢ (yᵢ - ŷᵢ)² (a sum) plus λ‖β‖₂² or λ‖β‖₁ with the intercept
unpenalized: ridge in closed form through the SVD (scikit-learn's
``Ridge(alpha=λ)``), LASSO exactly through the LARS path (scikit-learn's
``Lasso(alpha=λ / (2n))``). Their spread is compared with OLS's at λ = 1 (a
value of the lecture's grid), and their whole paths over λ = 0.01 ... 10⁴ are
logged. OLS's training and held-out (validation) errors are logged as MSE
over the variance of the training targets.

The verdict (fixed before any run) makes five checks per number of features
and training size, comparing the largest ρ with the smallest. Each effect is
over seeds (n = seeds: a seed draws a new data set, and its bootstrap gives
that seed one spread per estimator):

1. coefficients unstable: the log10 growth of the OLS coefficient spread, with
   a 95% interval above 0;
2. ... so much that resamples flip their signs: log10 of the OLS coefficient
   spread at the largest ρ over the true coefficient (1), with an interval
   above 0 (a log, as the growth: the spread is positive and skewed);
3. predictions stable: the ratio of the OLS prediction spreads, with an
   interval inside ×0.8 to ×1.25 (the lecture's "quase não muda": less than
   25% either way);
4. L2 shrinks the variance: log10 of ridge's coefficient spread over OLS's at
   the largest ρ, with an interval below 0. A sanity check: for a fixed design
   ridge's coefficient covariance, (X'X + λI)⁻¹X'X(X'X + λI)⁻¹ σ², lies below
   OLS's, (X'X)⁻¹ σ², for every λ > 0, so it holds by construction: shown,
   never evidence, and a failure is a bug;
5. L1 drops redundant features: the fraction of LASSO's coefficients that are
   exactly 0, largest minus smallest ρ, with an interval above 0.

The predictions are stable on inputs like the training data, where the
lecture speaks of them; the summary reports beside it, not judged, how OLS's
prediction spread grows off that manifold (the validation inputs with each
feature shuffled apart: same marginals, no correlation), where the
coefficients' spread shows. Each row also reads OLS's regime at the largest ρ
(the fit without the remedy): training against held-out error, means over
seeds. If OLS differs
from `numpy.linalg.lstsq`, nothing is judged.

There is no test-split score: the claim is about the spread of the estimates,
and ρ is a property of the data, not a configuration to select.

What to expect (quick profile): from ρ = 0 to 0.999 the OLS coefficient spread
grows about twentyfold or more (theory for two features: √(1/(1 - ρ²)) ≈ 22),
to a few times the true coefficient, so that over a third of the bootstrap
coefficients have the wrong sign, while the prediction spread moves by a few
percent. Ridge at λ = 1 cuts the coefficient spread at ρ = 0.999 about
tenfold; LASSO at λ = 1 zeroes almost none of the coefficients at ρ = 0 and a
third to a half of them at ρ = 0.999. With 18 training examples every spread
is larger, ridge's cut deeper, and the prediction-spread ratio less precise;
OLS with 6 features then overfits (training error well below held-out error),
while with 120 examples it does not.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, lars_path

from ablations.engine.data import load_dataset
from ablations.engine.effects import per_seed
from ablations.engine.lineage import serving
from ablations.engine.plots import metric_history
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import REGIME, Check, SmallestEffect, Verdict, regime

CORRELATIONS = (0.0, 0.9, 0.99, 0.999)
PATH_LAMBDAS = tuple(float(v) for v in np.logspace(-2, 4, 25))
"""λ of the ridge and LASSO paths (lecture convention, J a sum); 0.01 to 10 is the lecture's grid."""
TRUE_COEFFICIENT = 1.0
PREDICTIONS_STABLE = 1.25
"""Predictions are "stable" when their spread changes by less than this factor (25%) over the ρ grid."""
SOLVER_TOLERANCE = 1e-6
"""The most OLS may differ from numpy.linalg.lstsq (relative) for its spreads to be judged."""
A_TENTH_DECADE = SmallestEffect(0.1, "a tenth of a decade (a spread 26% larger or smaller): less is within the bootstrap's own noise")
PREDICTIONS_CHANGE = SmallestEffect(0.05, "a 5% change of the prediction spread")
ZEROS_GAINED = SmallestEffect(0.05, "one resample in twenty")

PARAMS = {
    "n_features": Param(2, "number of equicorrelated features", low=2, high=50),
    "correlation": Param(0.9, "correlation ρ of every pair of features", low=0.0, high=0.99999),
    "n_samples": Param(200, "examples drawn: 60% training, 20% validation (prediction points), 20% test", low=20, high=1_000_000),
    "n_train": Param(120, "training examples kept of the 60% training split (at most 0.6 · n_samples)", low=5, high=1_000_000),
    "noise": Param(1.0, "standard deviation of the noise added to y", low=0.0, high=100.0),
    "bootstraps": Param(200, "bootstrap resamples of the training examples", low=10, high=100_000),
    "penalty_lambda": Param(1.0, "λ of ridge and LASSO in the spread comparison (J = sum of squares)", low=0.0, high=1e6),
}

PROFILES = {
    "smoke": {"n_features": [2, 6], "correlation": [0.0, 0.999], "bootstraps": 50, "seeds": 1},
    # 18 training examples for 7 coefficients: OLS overfits there (the regime ridge and LASSO remedy).
    "quick": {"n_features": [2, 6], "n_train": [18, 120], "correlation": list(CORRELATIONS), "seeds": 5},
    "full": {
        "n_features": [2, 6, 20],
        "n_train": [24, 120],
        "correlation": [0.0, 0.5, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999],
        "bootstraps": 1000,
        "seeds": 30,  # the pilot's 27 for the coefficient sd's growth at n_train=18 (README: How many seeds)
    },
}


# ------------------------------------------------------------------ estimators


def ols(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Ordinary least squares with an intercept (scikit-learn): (intercept, coefficients)."""
    model = LinearRegression().fit(x, y)
    return float(model.intercept_), np.asarray(model.coef_, dtype=np.float64)


def ridge_path(x: np.ndarray, y: np.ndarray, lambdas) -> tuple[np.ndarray, np.ndarray]:
    """Ridge for every λ: minimizes Σ(y - b - xβ)² + λ‖β‖₂² (intercept b unpenalized).

    Through the SVD of the centered features, X = U S Vᵀ:
    β(λ) = V diag(s / (s² + λ)) Uᵀ (y - ȳ), b = ȳ - x̄ β. At λ = 0 this is
    the minimum-norm least-squares solution (singular values at round-off
    count as 0, as in `numpy.linalg.lstsq`).

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


def lasso_path(x: np.ndarray, y: np.ndarray, lambdas) -> tuple[np.ndarray, np.ndarray]:
    """LASSO for every λ: minimizes Σ(y - b - xβ)² + λ‖β‖₁ (intercept b unpenalized).

    Exact: the LARS-LASSO path (piecewise linear in λ) evaluated at each λ.
    scikit-learn's ``Lasso`` minimizes (1/2n)Σ(...)² + α‖β‖₁, the same
    problem with α = λ / (2n).

    Returns:
        Intercepts ``(L,)`` and coefficients ``(L, features)``.
    """
    n = len(y)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    alphas, _, path = lars_path(x - x_mean, y - y_mean, method="lasso")
    targets = np.asarray(lambdas, dtype=np.float64) / (2 * n)
    # np.interp needs increasing abscissae; beyond the path's largest α every coefficient is 0.
    coefficients = np.stack([np.interp(targets, alphas[::-1], path[j, ::-1], right=0.0) for j in range(x.shape[1])], axis=1)
    return y_mean - coefficients @ x_mean, coefficients


def reference_ols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[intercept, coefficients] from NumPy's least-squares solver on [1, x]."""
    return np.linalg.lstsq(np.hstack([np.ones((len(x), 1)), x]), y, rcond=None)[0]


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


# ------------------------------------------------------------------ the trial


def _dataset(config: dict):
    # Features are N(0, 1) by construction; not standardizing keeps every true coefficient exactly 1.
    return load_dataset(
        "collinear",
        n_samples=config["n_samples"],
        n_features=config["n_features"],
        correlation=config["correlation"],
        noise=config["noise"],
        data_seed=config["seed"],
        split_seed=config["seed"],
        standardize=False,
        n_train=config["n_train"],
    )


def bootstrap_fits(config: dict) -> dict[str, np.ndarray]:
    """OLS, ridge and LASSO on every bootstrap resample of the trial's training data.

    Ridge and LASSO are fitted along `PATH_LAMBDAS` and, last, at the
    trial's ``penalty_lambda``.

    Returns:
        ``ols_coef`` (B, F) and ``ols_pred`` (B, V) at the V validation
        inputs; ``ols_pred_off`` (B, V) at the same inputs with each feature
        shuffled apart (off the correlated training data's manifold: the
        same marginals, no correlation); ``ridge_coef`` / ``lasso_coef`` (B, L + 1, F) and
        ``ridge_pred`` / ``lasso_pred`` (B, L + 1, V); and the data: ``x``,
        ``y`` (training), ``x_val``, ``y_val``.
    """
    data = _dataset(config)
    x, y = data.x_train.astype(np.float64), data.y_train.astype(np.float64)
    x_val = data.x_val.astype(np.float64)
    # Each column permuted on its own: inputs unlike the training data wherever its features were correlated.
    shuffle = np.random.default_rng([config["seed"], 11])
    x_off = np.column_stack([shuffle.permutation(column) for column in x_val.T])
    lambdas = np.array([*PATH_LAMBDAS, config["penalty_lambda"]])
    rng = np.random.default_rng([config["seed"], 7])
    fits = {name: [] for name in ("ols_coef", "ols_pred", "ols_pred_off", "ridge_coef", "ridge_pred", "lasso_coef", "lasso_pred")}
    for _ in range(config["bootstraps"]):
        rows = rng.integers(0, len(y), len(y))
        # Ridge at λ = 0 is least squares (tests check it against lstsq and
        # scikit-learn); the SVD formula skips scikit-learn's per-fit overhead.
        intercept, coefficients = ridge_path(x[rows], y[rows], [0.0])
        fits["ols_coef"].append(coefficients[0])
        fits["ols_pred"].append(intercept[0] + x_val @ coefficients[0])
        fits["ols_pred_off"].append(intercept[0] + x_off @ coefficients[0])
        for name, path in (("ridge", ridge_path), ("lasso", lasso_path)):
            intercepts, coefficients = path(x[rows], y[rows], lambdas)
            fits[f"{name}_coef"].append(coefficients)
            fits[f"{name}_pred"].append(intercepts[:, None] + coefficients @ x_val.T)
    result = {name: np.asarray(values) for name, values in fits.items()}
    result.update(x=x, y=y, x_val=x_val, y_val=data.y_val.astype(np.float64))
    return result


def _spread(samples: np.ndarray) -> float:
    """Mean over entries (coefficients, or prediction points) of the standard deviation across resamples."""
    return float(np.mean(np.std(samples, axis=0, ddof=1)))


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Bootstrap spreads of OLS, ridge and LASSO; the ridge and LASSO paths as per-λ steps."""
    results = []
    for index, config in enumerate(configs):
        artifact = context.artifact_loggers[index] if context.artifact_loggers else None
        with serving([index]):  # the data it loads is this trial's alone
            results.append(_run_one(config, context.loggers[index], artifact))
    return results


def _run_one(config: dict, log, log_artifact) -> dict[str, float]:
    fits = bootstrap_fits(config)
    x, y, x_val, y_val = fits["x"], fits["y"], fits["x_val"], fits["y_val"]
    intercept, coefficients = ols(x, y)
    scale = float(np.var(y))
    ridge, lasso = fits["ridge_coef"][:, -1], fits["lasso_coef"][:, -1]
    metrics = {
        "final_train_error": float(np.mean((intercept + x @ coefficients - y) ** 2) / scale),
        "final_val_error": float(np.mean((intercept + x_val @ coefficients - y_val) ** 2) / scale),
        "ols_lstsq_relative_difference": relative_difference(np.concatenate([[intercept], coefficients]), reference_ols(x, y)),
        "ols_coef_std": _spread(fits["ols_coef"]),
        "ols_pred_std": _spread(fits["ols_pred"]),
        "ols_pred_off_std": _spread(fits["ols_pred_off"]),
        "ols_sign_flip_fraction": float(np.mean(fits["ols_coef"] * TRUE_COEFFICIENT < 0)),
        "ridge_coef_std": _spread(ridge),
        "ridge_pred_std": _spread(fits["ridge_pred"][:, -1]),
        "ridge_coef_mean": float(np.mean(ridge)),
        "lasso_coef_std": _spread(lasso),
        "lasso_pred_std": _spread(fits["lasso_pred"][:, -1]),
        "lasso_coef_mean": float(np.mean(lasso)),
        "lasso_zero_fraction": float(np.mean(lasso == 0.0)),
        "lasso_drops_any_fraction": float(np.mean(np.any(lasso == 0.0, axis=1))),
        "condition_number": float(np.linalg.cond(x - x.mean(axis=0))),
        "sample_correlation": float(np.mean(np.corrcoef(x.T)[np.triu_indices(x.shape[1], 1)])),
    }
    for name, samples in (("ols", fits["ols_coef"]), ("ridge", ridge), ("lasso", lasso)):
        for j, spread in enumerate(np.std(samples, axis=0, ddof=1)):
            metrics[f"{name}_coef_std/x{j + 1}"] = float(spread)
    for step, value in enumerate(PATH_LAMBDAS):
        row = {
            "path_lambda": value,
            "ridge_coef_std_path": _spread(fits["ridge_coef"][:, step]),
            "lasso_coef_std_path": _spread(fits["lasso_coef"][:, step]),
            "ridge_pred_std_path": _spread(fits["ridge_pred"][:, step]),
            "lasso_pred_std_path": _spread(fits["lasso_pred"][:, step]),
            "lasso_zero_fraction_path": float(np.mean(fits["lasso_coef"][:, step] == 0.0)),
        }
        for j in range(x.shape[1]):
            row[f"ridge_coef_mean/x{j + 1}"] = float(np.mean(fits["ridge_coef"][:, step, j]))
            row[f"lasso_coef_mean/x{j + 1}"] = float(np.mean(fits["lasso_coef"][:, step, j]))
        log(row, step)
    if log_artifact is not None and config["seed"] == 0:
        _save_cloud(fits["ols_coef"], ridge, lasso, log_artifact)
    return metrics


def _save_cloud(ols_coef: np.ndarray, ridge: np.ndarray, lasso: np.ndarray, log_artifact) -> None:
    """The first seed's bootstrap coefficients, for the coefficient-cloud figure."""
    columns = {}
    for name, values in (("ols", ols_coef), ("ridge", ridge), ("lasso", lasso)):
        for j in range(values.shape[1]):
            columns[f"{name}_x{j + 1}"] = values[:, j]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bootstrap_coefficients.csv"
        pd.DataFrame(columns).to_csv(path, index=False)
        log_artifact(str(path), "bootstrap")


# ------------------------------------------------------------------ verdict


def _condition(n_features: int, n_train: int) -> str:
    return f"{n_features} features, n_train={n_train}"


def _checks(label: str, group: pd.DataFrame) -> list[Check]:
    """The five checks of one condition, each over seeds (n = seeds: a seed draws the data, whose bootstrap gives one spread)."""
    low, high = group["correlation"].min(), group["correlation"].max()
    coef, pred = per_seed(group, "correlation", "ols_coef_std"), per_seed(group, "correlation", "ols_pred_std")
    ridge, zeros = per_seed(group, "correlation", "ridge_coef_std"), per_seed(group, "correlation", "lasso_zero_fraction")
    at_high = group[group["correlation"] == high]
    # OLS is the fit without the remedy (ridge, LASSO); read where it is judged, at the largest ρ.
    details = {REGIME: regime(float(at_high["final_train_error"].mean()), float(at_high["final_val_error"].mean()))}
    span = f"ρ {low:g} → {high:g}"
    growth = summarize(np.log10(coef[high] / coef[low]).dropna())
    # On a log scale, as the growth: the spread is positive and skewed, and its seed-to-seed sd grows with it.
    spread = summarize(np.log10(coef[high] / TRUE_COEFFICIENT).dropna())
    predictions = summarize((pred[high] / pred[low]).dropna())
    ridge_cut = summarize(np.log10(ridge[high] / coef[high]).dropna())
    more_zeros = summarize((zeros[high] - zeros[low]).dropna())
    return [
        Check.above(label, f"log10 growth of OLS coefficient sd ({span})", growth, smallest=A_TENTH_DECADE, spec="+.2f", details=details),
        Check.above(
            label,
            f"log10 OLS coefficient sd ÷ true coefficient {TRUE_COEFFICIENT:g} at ρ = {high:g}",
            spread,
            smallest=A_TENTH_DECADE,
            spec="+.2f",
            details=details,
        ),
        Check.within(
            label,
            f"ratio of OLS prediction sd ({span})",
            predictions,
            1 / PREDICTIONS_STABLE,
            PREDICTIONS_STABLE,
            smallest=PREDICTIONS_CHANGE,
            null=1.0,
            spec=".3f",
            details=details,
        ),
        # A theorem for a fixed design: ridge's coefficient covariance lies below OLS's. Shown, never evidence.
        Check.below(
            label, f"log10 ridge ÷ OLS coefficient sd at ρ = {high:g}", ridge_cut, smallest=A_TENTH_DECADE, spec="+.2f", role="sanity", details=details
        ),
        Check.above(label, f"LASSO zero fraction gained ({span})", more_zeros, smallest=ZEROS_GAINED, spec="+.2f", details=details),
    ]


def _note(label: str, group: pd.DataFrame) -> str:
    """What the checks do not show: sign flips, ridge's size, how often LASSO drops a feature, predictions off the data."""
    at_high = group[group["correlation"] == group["correlation"].max()]
    note = (
        f"{label}: at ρ = {at_high['correlation'].iloc[0]:g}, {at_high['ols_sign_flip_fraction'].mean():.0%} of the bootstrap OLS "
        f"coefficients have the wrong sign; ridge's coefficient sd is {at_high['ridge_coef_std'].mean():.3g} against OLS's "
        f"{at_high['ols_coef_std'].mean():.3g}; LASSO drops some feature in {at_high['lasso_drops_any_fraction'].mean():.0%} of the resamples"
    )
    if "ols_pred_off_std" not in group:
        return note
    # The lecture's stability holds for inputs like the training data; off them the coefficients' spread shows.
    spreads = group.groupby("correlation")[["ols_pred_std", "ols_pred_off_std"]].mean()
    low, high = spreads.index.min(), spreads.index.max()
    on, off = (spreads.at[high, column] / spreads.at[low, column] for column in ("ols_pred_std", "ols_pred_off_std"))
    return note + f"; OLS's prediction sd grows x{on:.2f} from ρ = {low:g} to {high:g} on inputs like the training data, x{off:.3g} off them (features shuffled apart)"


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per number of features and training size: coefficient spread explodes with ρ, prediction spread does not; ridge shrinks it; LASSO zeroes.

    Every effect is over seeds (n = seeds): a seed draws a new data set, and
    its B bootstrap resamples give that seed one spread per estimator.
    """
    if trials.empty or trials["correlation"].nunique() < 2:
        return Verdict([], notes="The grid needs at least two correlations.")
    solver = float(trials["ols_lstsq_relative_difference"].max())
    if not solver < SOLVER_TOLERANCE:
        return Verdict([], notes=f"OLS differs from numpy.linalg.lstsq by {solver:.1e} (relative): its spreads are not judged.")
    checks, notes = [], []
    # The largest training size first: the headline is the lecture's setting, many examples per coefficient.
    groups = sorted(trials.groupby(["n_features", "n_train"]), key=lambda item: (item[0][0], -item[0][1]))
    for (n_features, n_train), group in groups:
        label = _condition(int(n_features), int(n_train))
        checks.extend(_checks(label, group))
        notes.append(_note(label, group))
    return Verdict(checks, notes="; ".join(notes) + f". OLS matches numpy.linalg.lstsq to {solver:.0e}.")


# ------------------------------------------------------------------ figures


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    return {
        "coefficient_clouds": _clouds(trials, client),
        "spread_vs_correlation": _spreads(trials),
        "ridge_lasso_paths": _paths(trials, client),
    }


def _clouds(trials: pd.DataFrame, client) -> plt.Figure:
    """β1 against β2 across bootstrap resamples, per correlation (first seed), OLS vs ridge vs LASSO."""
    counts = sorted(trials["n_features"].unique())
    correlations = sorted(trials["correlation"].unique())
    fig, axes = plt.subplots(
        len(counts),
        len(correlations),
        figsize=(3.3 * len(correlations), 3.3 * len(counts)),
        squeeze=False,
        sharex="row",
        sharey="row",
        constrained_layout=True,
    )
    for row, n_features in enumerate(counts):
        for col, correlation in enumerate(correlations):
            ax = axes[row][col]
            run = trials[(trials["n_features"] == n_features) & (trials["correlation"] == correlation) & (trials["seed"] == 0)]
            ax.set_title(f"{n_features} features, ρ = {correlation:g}", fontsize=9)
            ax.set_xlabel("β₁")
            ax.set_ylabel("β₂")
            if run.empty:
                continue
            with tempfile.TemporaryDirectory() as folder:
                cloud = pd.read_csv(client.download_artifacts(run["run_id"].iloc[0], "bootstrap/bootstrap_coefficients.csv", folder))
            for name, color in (("ols", "tab:blue"), ("ridge", "tab:orange"), ("lasso", "tab:green")):
                label = "ridge" if name == "ridge" else name.upper()
                ax.scatter(cloud[f"{name}_x1"], cloud[f"{name}_x2"], s=5, alpha=0.5, color=color, label=label)
            ax.scatter([TRUE_COEFFICIENT], [TRUE_COEFFICIENT], marker="*", s=90, color="black", label="truth", zorder=3)
            ax.text(
                0.02, 0.02, f"OLS coef sd {run['ols_coef_std'].iloc[0]:.2g}\nOLS pred sd {run['ols_pred_std'].iloc[0]:.2g}",
                transform=ax.transAxes, fontsize=7, va="bottom",
            )
        axes[row][0].legend(fontsize=7, loc="upper right")
    lam = float(trials["penalty_lambda"].iloc[0])
    fig.suptitle(f"Coefficients across {int(trials['bootstraps'].iloc[0])} bootstrap resamples (first seed; ridge and LASSO at λ = {lam:g})")
    return fig


def _spreads(trials: pd.DataFrame) -> plt.Figure:
    """Spread of coefficients and of predictions against correlation (mean ± sd over seeds)."""
    counts = sorted(trials["n_features"].unique())
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3.8), squeeze=False, constrained_layout=True)
    for ax, n_features in zip(axes[0], counts):
        group = trials[trials["n_features"] == n_features]
        correlations = sorted(group["correlation"].unique())
        xs = range(len(correlations))
        for metric, label, color, style in (
            ("ols_coef_std", "OLS coefficients", "tab:blue", "-"),
            ("ols_pred_std", "OLS predictions", "tab:blue", "--"),
            ("ridge_coef_std", "ridge coefficients", "tab:orange", "-"),
            ("ridge_pred_std", "ridge predictions", "tab:orange", "--"),
            ("lasso_coef_std", "LASSO coefficients", "tab:green", "-"),
            ("lasso_pred_std", "LASSO predictions", "tab:green", "--"),
        ):
            curve = group.groupby("correlation")[metric].agg(["mean", "std"]).reindex(correlations)
            ax.errorbar(xs, curve["mean"], yerr=curve["std"].fillna(0), ls=style, marker="o", ms=3, color=color, label=label, capsize=2)
        ax.set_yscale("log")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{c:g}" for c in correlations])
        ax.set_xlabel("correlation ρ of the features")
        ax.set_ylabel("sd across bootstrap resamples")
        ax.set_title(f"{n_features} features (λ = {float(group['penalty_lambda'].iloc[0]):g} for ridge/LASSO)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Coefficients become unstable as ρ → 1; predictions do not")
    return fig


def _paths(trials: pd.DataFrame, client) -> plt.Figure:
    """Ridge and LASSO paths (mean coefficient over resamples ± sd) at the largest correlation, first seed."""
    counts = sorted(trials["n_features"].unique())
    fig, axes = plt.subplots(len(counts), 2, figsize=(10, 3.6 * len(counts)), squeeze=False, constrained_layout=True)
    for row, n_features in enumerate(counts):
        group = trials[(trials["n_features"] == n_features) & (trials["seed"] == trials["seed"].min())]
        correlation = group["correlation"].max()
        run_id = group[group["correlation"] == correlation]["run_id"].iloc[0]
        lambdas = _history(client, run_id, "path_lambda")
        for col, name in enumerate(("ridge", "lasso")):
            ax = axes[row][col]
            spread = _history(client, run_id, f"{name}_coef_std_path")
            for j in range(int(n_features)):
                mean = np.array(_history(client, run_id, f"{name}_coef_mean/x{j + 1}"))
                line = ax.plot(lambdas, mean, lw=1.2, label=f"β{j + 1}")[0]
                ax.fill_between(lambdas, mean - np.array(spread), mean + np.array(spread), color=line.get_color(), alpha=0.08)
            ax.axvspan(0.01, 10, color="gray", alpha=0.1, label="lecture's λ grid")
            ax.axvline(float(group["penalty_lambda"].iloc[0]), color="black", ls=":", lw=1)
            ax.axhline(TRUE_COEFFICIENT, color="gray", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlabel("λ  (J = Σ squared errors)")
            ax.set_ylabel("coefficient: mean ± sd over resamples")
            ax.set_title(f"{'Ridge' if name == 'ridge' else 'LASSO'} path, {n_features} features, ρ = {correlation:g}", fontsize=9)
            ax.legend(fontsize=7, ncol=2)
    fig.suptitle("Ridge shrinks every coefficient smoothly; LASSO sets some exactly to 0")
    return fig


def _history(client, run_id: str, metric: str) -> list[float]:
    return metric_history(client, run_id, metric)[1]


REFERENCE = Reference(
    citation="Hoerl and Kennard (1970), Ridge Regression: Biased Estimation for Nonorthogonal Problems, Technometrics 12(1):55-67",
    short="Hoerl & Kennard 1970",
    where="abstract (the example section was not read)",
    value='"parameter estimates based on minimum residual sum of squares have a high probability of being unsatisfactory, if '
    'not incorrect, if the prediction vectors are not orthogonal"; no value is cited here',
    regime="least squares with nonorthogonal predictors",
    here="equicorrelated Gaussian features, 2 or 6 of them, correlation 0-0.999, 18 or 120 examples, 200 bootstraps, ridge lambda 1",
    checked="read in the abstract",
)

ABLATION = Ablation(
    name="collinearity",
    claim=(
        "Nearly collinear features make regression coefficients unstable while predictions stay stable; "
        "L2 shrinks that variance, L1 drops redundant features."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # NumPy work is cheap next to the runner's per-pack overhead: one pack per number of features.
    pack_key=pack_all_but("correlation", "seed"),
    objective="final_val_error",
    reference=REFERENCE,
)
