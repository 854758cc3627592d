import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, Ridge

from ablations.collinearity import (
    ABLATION,
    PARAMS,
    PREDICTIONS_STABLE,
    TRUE_COEFFICIENT,
    PATH_LAMBDAS,
    bootstrap_fits,
    lasso_path,
    ols,
    reference_ols,
    relative_difference,
    ridge_path,
    verdict,
)
from ablations.engine.runner import run_ablation
from ablations.engine.data.synthetic import load_collinear
from tests.ablations.smoke_checks import assert_diagnoses_follow_the_logged_errors, assert_verdict_logged


def sample(correlation, n_features=2, n=120, seed=0):
    raw = load_collinear(n_samples=n, n_features=n_features, correlation=correlation, noise=1.0, data_seed=seed)
    return raw.x, raw.y


def config(**overrides):
    values = {name: param.default for name, param in PARAMS.items()}
    values.update(seed=0, bootstraps=30)
    values.update(overrides)
    return values


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


def test_ridge_shrinks_coefficients_monotonically():
    x, y = sample(0.99, 2)
    _, coefficients = ridge_path(x, y, PATH_LAMBDAS)
    norms = np.linalg.norm(coefficients, axis=1)
    assert np.all(np.diff(norms) <= 1e-12)


def test_bootstrap_fits_shapes_and_determinism():
    cfg = config(n_features=6, correlation=0.9, bootstraps=12)
    fits = bootstrap_fits(cfg)
    n_val = len(fits["x_val"])
    assert fits["ols_coef"].shape == (12, 6) and fits["ols_pred"].shape == (12, n_val)
    assert fits["ridge_coef"].shape == (12, len(PATH_LAMBDAS) + 1, 6)
    assert fits["lasso_pred"].shape == (12, len(PATH_LAMBDAS) + 1, n_val)
    np.testing.assert_array_equal(bootstrap_fits(cfg)["ols_coef"], fits["ols_coef"])
    # Training split only: 60% of the 200 examples.
    assert len(fits["y"]) == 120


def test_collinearity_inflates_coefficient_spread_not_prediction_spread():
    low, high = bootstrap_fits(config(correlation=0.0)), bootstrap_fits(config(correlation=0.999))
    coef_ratio = high["ols_coef"].std(axis=0).mean() / low["ols_coef"].std(axis=0).mean()
    pred_ratio = high["ols_pred"].std(axis=0).mean() / low["ols_pred"].std(axis=0).mean()
    assert coef_ratio > 10
    assert 0.7 < pred_ratio < 1.4


def _trials(coef_std_high=2.0, pred_std_high=0.15, ridge_std_high=0.2, zeros_high=0.3, seeds=(0, 1, 2, 3, 4)):
    rows = []
    for n_features in (2, 6):
        for seed in seeds:
            jitter = 1 + 0.01 * seed
            for correlation, coef, pred, ridge, zeros in (
                (0.0, 0.09, 0.15, 0.09, 0.0),
                (0.999, coef_std_high, pred_std_high, ridge_std_high, zeros_high),
            ):
                rows.append(
                    {
                        "n_features": n_features, "correlation": correlation, "seed": seed, "penalty_lambda": 1.0,
                        "ols_coef_std": coef * jitter, "ols_pred_std": pred * jitter, "ridge_coef_std": ridge * jitter,
                        "ridge_pred_std": pred, "lasso_coef_std": coef / 2, "lasso_zero_fraction": zeros * jitter,
                        "lasso_drops_any_fraction": zeros, "ols_sign_flip_fraction": 0.3, "final_val_error": 0.2,
                        "ols_lstsq_relative_difference": 1e-15,
                    }
                )
    return pd.DataFrame(rows)


def test_verdict_outcomes():
    assert verdict(_trials()).outcome == "reproduced"
    unstable_predictions = verdict(_trials(pred_std_high=0.6))
    assert unstable_predictions.outcome == "not reproduced" and "prediction spread" in unstable_predictions.summary
    assert "ridge does not shrink" in verdict(_trials(ridge_std_high=3.0)).summary
    assert "LASSO zeroes no more" in verdict(_trials(zeros_high=0.0)).summary
    assert "coefficient spread" in verdict(_trials(coef_std_high=0.5)).summary
    # Predictions whose spread ratio straddles the ±25% band over too few seeds: inconclusive.
    frame = _trials(seeds=(0, 1))
    frame.loc[(frame["correlation"] > 0) & (frame["seed"] == 1), "ols_pred_std"] = 0.21
    assert verdict(frame).outcome == "inconclusive"


def test_smoke_run_logs_spreads_paths_clouds_and_verdict(tracker):
    result = run_ablation(ABLATION, ABLATION.resolve("smoke"), tracker=tracker, progress=False)
    runs = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(runs) == 4
    assert runs["metrics.ols_lstsq_relative_difference"].max() < 1e-6
    by_trial = runs.set_index([runs["params.n_features"].astype(int), runs["params.correlation"].astype(float)]).sort_index()
    assert list(by_trial.index) == [(2, 0.0), (2, 0.999), (6, 0.0), (6, 0.999)]
    low, high = by_trial.xs(0.0, level=1), by_trial.xs(0.999, level=1)
    # The claim in numbers, per number of features (one seed, 50 bootstraps, float64: no training involved):
    # ρ = 0.999 inflates the coefficients' variance by about 1 / (1 - ρ²) = 500, so their spread grows more
    # than tenfold, while the predictions' spread moves by less than PREDICTIONS_STABLE; ridge shrinks the
    # coefficients' spread and LASSO zeroes more coefficients.
    coef_growth = high["metrics.ols_coef_std"] / low["metrics.ols_coef_std"]
    pred_growth = high["metrics.ols_pred_std"] / low["metrics.ols_pred_std"]
    assert (coef_growth > 10).all() and (high["metrics.ols_coef_std"] > TRUE_COEFFICIENT).all()
    assert pred_growth.between(1 / PREDICTIONS_STABLE, PREDICTIONS_STABLE).all()
    assert (high["metrics.ridge_coef_std"] < high["metrics.ols_coef_std"]).all()
    assert (high["metrics.lasso_zero_fraction"] > low["metrics.lasso_zero_fraction"]).all()
    # Hence, with margins to spare, the verdict; its effect is the mean log10 growth of the coefficient spread
    # minus that of the prediction spread.
    assert result.verdict.outcome == "reproduced"
    assert result.verdict.effect == pytest.approx(float(np.mean(np.log10(coef_growth) - np.log10(pred_growth))), rel=1e-9)
    assert_diagnoses_follow_the_logged_errors(runs)
    path = tracker.client.get_metric_history(runs["run_id"].iloc[0], "path_lambda")
    assert sorted(m.value for m in path) == pytest.approx(sorted(PATH_LAMBDAS))
    cloud = tracker.client.list_artifacts(high["run_id"].iloc[0], "bootstrap")
    assert [a.path for a in cloud] == ["bootstrap/bootstrap_coefficients.csv"]

    parent = assert_verdict_logged(tracker, result, runs)
    assert "test_error" not in parent.data.metrics  # no configuration to select: no test score
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/coefficient_clouds.png", "figures/spread_vs_correlation.png", "figures/ridge_lasso_paths.png"}
