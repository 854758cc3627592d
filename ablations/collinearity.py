"""Collinearity: nearly collinear features make coefficients unstable, not predictions.

The lecture's claim ("duas features quase colineares", "instabilidade dos
coeficientes"): when features are nearly collinear, a small change of the data
gives completely different regression coefficients (high variance) but almost
the same predictions; the model could drop some features without harm. L2
(ridge) shrinks that variance; L1 (LASSO) drops redundant features.

Run it: ``ablate run collinearity --profile quick``.

Data (set "collinear"): 2 or 6 standard normal features, every pair correlated
ρ = 0, 0.9, 0.99, 0.999, and y = x_1 + ... + x_n + N(0, 1) (every true
coefficient 1). A trial draws 200 examples (60/20/20% training, validation,
test), keeps ``n_train`` training ones (120, or 18: few per coefficient, where
OLS overfits), fits OLS on 200 bootstrap resamples of them, and measures the
spread (sd across resamples) of each coefficient and of the predictions at the
validation inputs. Ridge and LASSO (`models.linear`: the lecture's J, a sum of
squares, plus λ‖β‖₂² or λ‖β‖₁) are compared with it at λ = 1; their paths over
λ = 0.01 ... 10⁴ are logged.

The verdict (fixed before any run) checks, per number of features and training
size, the largest ρ against the smallest, over seeds (a seed draws a data set;
its bootstrap gives it one spread per estimator):

1. coefficients unstable: OLS's coefficient spread grows (log10 growth above 0);
2. ... so much that resamples flip signs: at the largest ρ it exceeds the true
   coefficient (log10 of the ratio above 0: the spread is positive and skewed);
3. predictions stable: OLS's prediction spread changes by less than 25% either
   way (the lecture's "quase não muda");
4. L2 shrinks the variance: ridge's coefficient spread lies below OLS's at the
   largest ρ. For a fixed design this holds for every λ > 0 (ridge's covariance
   (X'X + λI)⁻¹X'X(X'X + λI)⁻¹ σ² lies below OLS's (X'X)⁻¹ σ²): a sanity check;
5. L1 drops redundant features: LASSO's share of exact zeros grows.

Beside them, not judged: OLS's prediction spread off the training data's
manifold (validation features shuffled apart) and its regime at the largest ρ.
Nothing is judged if OLS differs from `numpy.linalg.lstsq`. No test score: ρ is
a property of the data, not a configuration to select.

What to expect (quick profile): from ρ = 0 to 0.999 the OLS coefficient spread
grows about twentyfold or more (theory for two features: √(1/(1 - ρ²)) ≈ 22),
to a few times the true coefficient (over a third of the bootstrap coefficients
flip sign), while the prediction spread moves by a few percent. At λ = 1 ridge
cuts the coefficient spread at ρ = 0.999 about tenfold, and LASSO zeroes a
third to a half of the coefficients there (almost none at ρ = 0). With 18
training examples every spread is larger, ridge's cut deeper, the
prediction-spread ratio less precise, and OLS with 6 features overfits.
"""

from __future__ import annotations

import tempfile
from itertools import product
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine.data import load_dataset
from ablations.engine.effects import per_seed, seed_differences, select
from ablations.engine.lineage import serving
from ablations.engine.plots import metric_history, panel_grid
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import REGIME, Check, SmallestEffect, Verdict, regime
from models.linear import bootstrap_paths, bootstrap_spread, ols, reference_ols, relative_difference

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
ESTIMATORS = (("ols", "OLS", "tab:blue"), ("ridge", "ridge", "tab:orange"), ("lasso", "LASSO", "tab:green"))
"""Each estimator's metric prefix, name in figures, and color."""

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
        "n_features": [2, 6, 20], "n_train": [24, 120], "correlation": [0.0, 0.5, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999], "bootstraps": 1000,
        "seeds": 30,  # the pilot's 27 for the coefficient sd's growth at n_train=18 (README: How many seeds)
    },
}


# ------------------------------------------------------------------ the trial


def bootstrap_fits(config: dict) -> dict[str, np.ndarray]:
    """`models.linear.bootstrap_paths` at the validation inputs (λ: `PATH_LAMBDAS`, then ``penalty_lambda``), ``ols_pred_off`` and the data."""
    # Features are N(0, 1) by construction; not standardizing keeps every true coefficient exactly 1.
    settings = {name: config[name] for name in ("n_samples", "n_features", "correlation", "noise", "n_train")}
    data = load_dataset("collinear", **settings, data_seed=config["seed"], split_seed=config["seed"], standardize=False)
    x, y, x_val = data.x_train.astype(np.float64), data.y_train.astype(np.float64), data.x_val.astype(np.float64)
    # Each column permuted on its own: inputs unlike the training data wherever its features were correlated.
    shuffle = np.random.default_rng([config["seed"], 11])
    x_off = np.column_stack([shuffle.permutation(column) for column in x_val.T])
    lambdas = np.array([*PATH_LAMBDAS, config["penalty_lambda"]])
    fits = bootstrap_paths(x, y, x_val, lambdas, resamples=config["bootstraps"], rng=np.random.default_rng([config["seed"], 7]))
    fits["ols_pred_off"] = np.asarray([b + x_off @ beta for b, beta in zip(fits["ols_intercept"], fits["ols_coef"])])
    fits.update(x=x, y=y, x_val=x_val, y_val=data.y_val.astype(np.float64))
    return fits


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Bootstrap spreads of OLS, ridge and LASSO; the ridge and LASSO paths as per-λ steps."""
    results = []
    for index, config in enumerate(configs):
        artifact = context.artifact_loggers[index] if context.artifact_loggers else None
        with serving([index]):  # the data it loads is this trial's alone
            fits = bootstrap_fits(config)
            results.append(_metrics(fits))
            _log_paths(fits, context.loggers[index])
            if artifact is not None and config["seed"] == 0:
                _save_cloud(fits, artifact)
    return results


def _metrics(fits: dict[str, np.ndarray]) -> dict[str, float]:
    """The trial's spreads (ridge and LASSO at ``penalty_lambda``), OLS's errors and its agreement with lstsq."""
    x, y, x_val, y_val = fits["x"], fits["y"], fits["x_val"], fits["y_val"]
    intercept, coefficients = ols(x, y)
    scale = float(np.var(y))  # errors as MSE over the training targets' variance
    ridge, lasso = fits["ridge_coef"][:, -1], fits["lasso_coef"][:, -1]
    metrics = {
        "final_train_error": float(np.mean((intercept + x @ coefficients - y) ** 2) / scale),
        "final_val_error": float(np.mean((intercept + x_val @ coefficients - y_val) ** 2) / scale),
        "ols_lstsq_relative_difference": relative_difference(np.concatenate([[intercept], coefficients]), reference_ols(x, y)),
        "ols_coef_std": bootstrap_spread(fits["ols_coef"]),
        "ols_pred_std": bootstrap_spread(fits["ols_pred"]),
        "ols_pred_off_std": bootstrap_spread(fits["ols_pred_off"]),
        "ols_sign_flip_fraction": float(np.mean(fits["ols_coef"] * TRUE_COEFFICIENT < 0)),
        "lasso_zero_fraction": float(np.mean(lasso == 0.0)),
        "lasso_drops_any_fraction": float(np.mean(np.any(lasso == 0.0, axis=1))),
        "condition_number": float(np.linalg.cond(x - x.mean(axis=0))),
        "sample_correlation": float(np.mean(np.corrcoef(x.T)[np.triu_indices(x.shape[1], 1)])),
    }
    for name, samples in (("ridge", ridge), ("lasso", lasso)):
        metrics.update({f"{name}_coef_std": bootstrap_spread(samples), f"{name}_coef_mean": float(np.mean(samples))})
        metrics[f"{name}_pred_std"] = bootstrap_spread(fits[f"{name}_pred"][:, -1])
    for name, samples in (("ols", fits["ols_coef"]), ("ridge", ridge), ("lasso", lasso)):
        for j, spread in enumerate(np.std(samples, axis=0, ddof=1)):
            metrics[f"{name}_coef_std/x{j + 1}"] = float(spread)
    return metrics


def _log_paths(fits: dict[str, np.ndarray], log) -> None:
    """The ridge and LASSO paths, one step per λ of `PATH_LAMBDAS`: spreads, LASSO's zeros, mean coefficients."""
    for step, value in enumerate(PATH_LAMBDAS):
        row = {"path_lambda": value, "lasso_zero_fraction_path": float(np.mean(fits["lasso_coef"][:, step] == 0.0))}
        for name, part in product(("ridge", "lasso"), ("coef", "pred")):
            row[f"{name}_{part}_std_path"] = bootstrap_spread(fits[f"{name}_{part}"][:, step])
        for name, j in product(("ridge", "lasso"), range(fits["x"].shape[1])):
            row[f"{name}_coef_mean/x{j + 1}"] = float(np.mean(fits[f"{name}_coef"][:, step, j]))
        log(row, step)


def _save_cloud(fits: dict[str, np.ndarray], log_artifact) -> None:
    """The bootstrap coefficients (ridge and LASSO at ``penalty_lambda``), for the coefficient-cloud figure."""
    samples = {"ols": fits["ols_coef"], "ridge": fits["ridge_coef"][:, -1], "lasso": fits["lasso_coef"][:, -1]}
    columns = {f"{name}_x{j + 1}": values[:, j] for name, values in samples.items() for j in range(values.shape[1])}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bootstrap_coefficients.csv"
        pd.DataFrame(columns).to_csv(path, index=False)
        log_artifact(str(path), "bootstrap")


# ------------------------------------------------------------------ verdict


def _checks(label: str, group: pd.DataFrame) -> list[Check]:
    """The five checks of one condition, each over seeds (n = seeds: a seed draws the data, whose bootstrap gives one spread)."""
    low, high = group["correlation"].min(), group["correlation"].max()
    coef, pred, ridge = (per_seed(group, "correlation", metric) for metric in ("ols_coef_std", "ols_pred_std", "ridge_coef_std"))
    at_high = select(group, {"correlation": high})
    # OLS is the fit without the remedy (ridge, LASSO); read where it is judged, at the largest ρ.
    details = {REGIME: regime(float(at_high["final_train_error"].mean()), float(at_high["final_val_error"].mean()))}
    span, decades = f"ρ {low:g} → {high:g}", {"smallest": A_TENTH_DECADE, "spec": "+.2f", "details": details}
    growth = summarize(np.log10(coef[high] / coef[low]).dropna())
    # On a log scale, as the growth: the spread is positive and skewed, and its seed-to-seed sd grows with it.
    spread = summarize(np.log10(coef[high] / TRUE_COEFFICIENT).dropna())
    predictions = summarize((pred[high] / pred[low]).dropna())
    ridge_cut = summarize(np.log10(ridge[high] / coef[high]).dropna())
    more_zeros = summarize(seed_differences(group, "correlation", high, low, "lasso_zero_fraction"))
    return [
        Check.above(label, f"log10 growth of OLS coefficient sd ({span})", growth, **decades),
        Check.above(label, f"log10 OLS coefficient sd ÷ true coefficient {TRUE_COEFFICIENT:g} at ρ = {high:g}", spread, **decades),
        Check.within(
            label, f"ratio of OLS prediction sd ({span})", predictions, 1 / PREDICTIONS_STABLE, PREDICTIONS_STABLE,
            smallest=PREDICTIONS_CHANGE, null=1.0, spec=".3f", details=details,
        ),
        # A theorem for a fixed design: ridge's coefficient covariance lies below OLS's. Shown, never evidence.
        Check.below(label, f"log10 ridge ÷ OLS coefficient sd at ρ = {high:g}", ridge_cut, role="sanity", **decades),
        Check.above(label, f"LASSO zero fraction gained ({span})", more_zeros, smallest=ZEROS_GAINED, spec="+.2f", details=details),
    ]


def _note(label: str, group: pd.DataFrame) -> str:
    """What the checks do not show: sign flips, ridge's size, how often LASSO drops a feature, predictions off the data."""
    at_high = select(group, {"correlation": group["correlation"].max()})
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
    """Per number of features and training size: coefficient spread explodes with ρ, prediction spread does not; ridge shrinks it; LASSO zeroes."""
    if trials.empty or trials["correlation"].nunique() < 2:
        return Verdict([], notes="The grid needs at least two correlations.")
    solver = float(trials["ols_lstsq_relative_difference"].max())
    if not solver < SOLVER_TOLERANCE:
        return Verdict([], notes=f"OLS differs from numpy.linalg.lstsq by {solver:.1e} (relative): its spreads are not judged.")
    checks, notes = [], []
    # The largest training size first: the headline is the lecture's setting, many examples per coefficient.
    groups = sorted(trials.groupby(["n_features", "n_train"]), key=lambda item: (item[0][0], -item[0][1]))
    for (n_features, n_train), group in groups:
        label = f"{int(n_features)} features, n_train={int(n_train)}"
        checks.extend(_checks(label, group))
        notes.append(_note(label, group))
    return Verdict(checks, notes="; ".join(notes) + f". OLS matches numpy.linalg.lstsq to {solver:.0e}.")


# ------------------------------------------------------------------ figures


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    return {"coefficient_clouds": _clouds(trials, client), "spread_vs_correlation": _spreads(trials), "ridge_lasso_paths": _paths(trials, client)}


def _clouds(trials: pd.DataFrame, client) -> plt.Figure:
    """β1 against β2 across bootstrap resamples, per correlation (first seed), OLS vs ridge vs LASSO."""
    counts, correlations = sorted(trials["n_features"].unique()), sorted(trials["correlation"].unique())
    fig, axes = panel_grid(len(counts) * len(correlations), (3.3, 3.3), columns=len(correlations), sharex="row", sharey="row")
    for row, n_features in enumerate(counts):
        for col, correlation in enumerate(correlations):
            ax = axes[row][col]
            run = select(trials, {"n_features": n_features, "correlation": correlation, "seed": 0})
            ax.set_title(f"{n_features} features, ρ = {correlation:g}", fontsize=9)
            ax.set(xlabel="β₁", ylabel="β₂")
            if run.empty:
                continue
            with tempfile.TemporaryDirectory() as folder:
                cloud = pd.read_csv(client.download_artifacts(run["run_id"].iloc[0], "bootstrap/bootstrap_coefficients.csv", folder))
            for name, label, color in ESTIMATORS:
                ax.scatter(cloud[f"{name}_x1"], cloud[f"{name}_x2"], s=5, alpha=0.5, color=color, label=label)
            ax.scatter([TRUE_COEFFICIENT], [TRUE_COEFFICIENT], marker="*", s=90, color="black", label="truth", zorder=3)
            spreads = f"OLS coef sd {run['ols_coef_std'].iloc[0]:.2g}\nOLS pred sd {run['ols_pred_std'].iloc[0]:.2g}"
            ax.text(0.02, 0.02, spreads, transform=ax.transAxes, fontsize=7, va="bottom")
        axes[row][0].legend(fontsize=7, loc="upper right")
    lam = float(trials["penalty_lambda"].iloc[0])
    fig.suptitle(f"Coefficients across {int(trials['bootstraps'].iloc[0])} bootstrap resamples (first seed; ridge and LASSO at λ = {lam:g})")
    return fig


def _spreads(trials: pd.DataFrame) -> plt.Figure:
    """Spread of coefficients and of predictions against correlation (mean ± sd over seeds)."""
    counts = sorted(trials["n_features"].unique())
    fig, axes = panel_grid(len(counts), (5, 3.8))
    for ax, n_features in zip(axes[0], counts):
        group = trials[trials["n_features"] == n_features]
        correlations = sorted(group["correlation"].unique())
        xs = range(len(correlations))
        for (name, label, color), (part, style) in product(ESTIMATORS, (("coef", "-"), ("pred", "--"))):
            curve = group.groupby("correlation")[f"{name}_{part}_std"].agg(["mean", "std"]).reindex(correlations)
            what = "coefficients" if part == "coef" else "predictions"
            ax.errorbar(xs, curve["mean"], yerr=curve["std"].fillna(0), ls=style, marker="o", ms=3, color=color, label=f"{label} {what}", capsize=2)
        ax.set(yscale="log", xticks=list(xs), xticklabels=[f"{c:g}" for c in correlations])
        ax.set(xlabel="correlation ρ of the features", ylabel="sd across bootstrap resamples")
        ax.set_title(f"{n_features} features (λ = {float(group['penalty_lambda'].iloc[0]):g} for ridge/LASSO)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Coefficients become unstable as ρ → 1; predictions do not")
    return fig


def _paths(trials: pd.DataFrame, client) -> plt.Figure:
    """Ridge and LASSO paths (mean coefficient over resamples ± sd) at the largest correlation, first seed."""
    counts = sorted(trials["n_features"].unique())
    fig, axes = panel_grid(2 * len(counts), (5, 3.6), columns=2)
    for row, n_features in enumerate(counts):
        group = select(trials, {"n_features": n_features, "seed": trials["seed"].min()})
        correlation = group["correlation"].max()
        run_id = select(group, {"correlation": correlation})["run_id"].iloc[0]
        lambdas = metric_history(client, run_id, "path_lambda")[1]
        for ax, (name, label, _) in zip(axes[row], ESTIMATORS[1:]):
            sd = np.array(metric_history(client, run_id, f"{name}_coef_std_path")[1])
            for j in range(int(n_features)):
                mean = np.array(metric_history(client, run_id, f"{name}_coef_mean/x{j + 1}")[1])
                line = ax.plot(lambdas, mean, lw=1.2, label=f"β{j + 1}")[0]
                ax.fill_between(lambdas, mean - sd, mean + sd, color=line.get_color(), alpha=0.08)
            ax.axvspan(0.01, 10, color="gray", alpha=0.1, label="lecture's λ grid")
            ax.axvline(float(group["penalty_lambda"].iloc[0]), color="black", ls=":", lw=1)
            ax.axhline(TRUE_COEFFICIENT, color="gray", ls="--", lw=0.8)
            ax.set(xscale="log", xlabel="λ  (J = Σ squared errors)", ylabel="coefficient: mean ± sd over resamples")
            ax.set_title(f"{'Ridge' if name == 'ridge' else label} path, {n_features} features, ρ = {correlation:g}", fontsize=9)
            ax.legend(fontsize=7, ncol=2)
    fig.suptitle("Ridge shrinks every coefficient smoothly; LASSO sets some exactly to 0")
    return fig


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
    params=PARAMS, profiles=PROFILES, run=run, verdict=verdict, figures=figures,
    # NumPy work is cheap next to the runner's per-pack overhead: one pack per number of features.
    pack_key=pack_all_but("correlation", "seed"),
    objective="final_val_error", reference=REFERENCE,
)
