"""input_normalization: the feature scaling, best-learning-rate selection, divergence handling, verdict, smoke run."""

import math

import keras
import numpy as np
import pandas as pd
import pytest

from ablations import input_normalization
from ablations.engine.train import TrialTraining, fit_trial
from ablations.engine.runner import run_ablation
from ablations.engine.verdict import REGIME
from models import build_mlp
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)


def test_feature_scales_span_the_decades_geometrically_in_a_fixed_order():
    scales = input_normalization.feature_scales(41, 4.0)
    assert scales.min() == pytest.approx(0.01) and scales.max() == pytest.approx(100.0)
    np.testing.assert_allclose(np.diff(np.sort(np.log10(scales))), 0.1, atol=1e-6)
    assert not np.all(np.diff(scales) > 0)  # shuffled, not sorted
    np.testing.assert_array_equal(scales, input_normalization.feature_scales(41, 4.0))
    np.testing.assert_array_equal(input_normalization.feature_scales(5, 0.0), np.ones(5, np.float32))


def test_badly_scaled_features_differ_by_the_scale_factors():
    config = {"data": "mnist1d", "n_train": 200, "decades": 4.0}
    data, x_train, x_val, _ = input_normalization.badly_scaled(config)
    assert np.all(data.mean == 0) and np.all(data.std == 1)  # loaded without standardization
    ratio = x_train.std(axis=0) / data.x_train.std(axis=0)
    np.testing.assert_allclose(ratio, input_normalization.feature_scales(40, 4.0), rtol=1e-5)
    assert x_train.std(axis=0).max() / x_train.std(axis=0).min() > 5000


def test_normalization_layer_is_adapted_on_the_training_split_only():
    config = {name: p.default for name, p in input_normalization.PARAMS.items()} | {"seed": 0, "n_train": 200, "epochs": 1, "width": 8}
    _, x_train, x_val, _ = input_normalization.badly_scaled(config)
    _, arms = input_normalization._features(config)
    np.testing.assert_array_equal(arms[False][0], x_train)  # the raw arm trains on the badly scaled features
    normalized, normalized_val, _ = arms[True]
    np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(normalized.std(axis=0), 1, atol=1e-2)
    # The validation split is shifted and scaled by the training split's statistics, not its own.
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    np.testing.assert_allclose(normalized_val, (x_val - mean) / std, rtol=1e-3, atol=1e-3)


def test_loss_rise_fraction_counts_rises_and_non_finite_losses():
    assert input_normalization.loss_rise_fraction([2.0, 1.5, 1.6, 1.2, 1.3]) == 0.5
    assert input_normalization.loss_rise_fraction([2.0, 1.0, math.nan, math.nan]) == pytest.approx(2 / 3)
    assert input_normalization.loss_rise_fraction([1.0]) == 0.0


def test_fit_trial_stops_once_the_loss_diverges():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32") * 1e4
    y = (x[:, 0] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = build_mlp((4,), 2, depth=1, width=8, activation="linear", seed=0)
    fit = fit_trial(model, (x, y), (x, y), training=TrialTraining(epochs=50, batch_size=16, seed=0, optimizer="sgd", learning_rate=1e3))
    assert fit.diverged and fit.epochs_run < 50
    assert fit.final["diverged"] == 1.0 and not math.isfinite(fit.final["final_loss"])
    assert 0.0 <= fit.final["final_val_error"] <= 1.0  # a diverged run still has an error to select on


def _trials(rows):
    columns = ["decades", "normalize", "learning_rate", "seed", "epochs_to_target", "final_train_loss", "diverged"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["reached_target"] = frame["epochs_to_target"].notna().astype(float)
    frame["epochs"] = 30
    frame["target_loss"] = 1.0
    frame["final_val_loss"] = frame["final_train_loss"]
    frame["final_loss"] = frame["final_train_loss"]
    # A net that fits the target overfits (0.1 vs 0.5); one that does not sits near chance.
    frame["final_train_error"] = np.where(frame["epochs_to_target"].notna(), 0.1, 0.9)
    frame["final_val_error"] = np.where(frame["epochs_to_target"].notna(), 0.5, 0.9)
    frame["data"], frame["optimizer"] = "mnist1d", "sgd"
    return frame


def _grid(raw_epochs, normalized_epochs, decades=(4.0,), seeds=3):
    """Per learning rate (0.01, 0.1, 1.0), the epochs to target of each arm (None = never; "nan" = diverged); seed s adds s."""
    rows = []
    for decade in decades:
        for seed in range(seeds):
            for normalize, epochs in ((False, raw_epochs), (True, normalized_epochs)):
                for rate, value in zip((0.01, 0.1, 1.0), epochs):
                    diverged = value == "nan"
                    reached = None if value in (None, "nan") else value + seed
                    loss = math.nan if diverged else (0.5 if reached is not None else 1.5)
                    rows.append((decade, normalize, rate, seed, reached, loss, float(diverged)))
    return _trials(rows)


def test_best_learning_rate_is_the_fastest_and_never_counts_as_epochs_plus_one():
    best = input_normalization.best_learning_rates(_grid([25, None, "nan"], [20, 8, None]))
    raw = best[~best["normalize"]].iloc[0]
    normalized = best[best["normalize"]].iloc[0]
    assert raw["best_learning_rate"] == 0.01 and raw["best_epochs"] == 25 and raw["usable_rates"] == 1 and raw["diverged_rates"] == 1
    assert normalized["best_learning_rate"] == 0.1 and normalized["best_epochs"] == 8 and normalized["usable_rates"] == 2
    assert (raw["best_train_error"], raw["best_val_error"]) == (0.1, 0.5)
    never = input_normalization.best_learning_rates(_grid([None, None, None], [8, 8, 8]))
    assert never[~never["normalize"]]["best_epochs"].eq(31).all()


EIGHT_SEEDS = 8
"""The usable-rates check is a median's (a difference of counts): its order-statistic interval needs n ≥ 6 seeds
at 95% to be bounded at all; with 3 seeds it is the whole range, ± the grid's 3 rates."""
SAVED = "data=mnist1d, optimizer=sgd, decades=4.0: epochs to training loss 1 saved (raw − normalized, of 30)"
USABLE = "data=mnist1d, optimizer=sgd, decades=4.0: learning rates usable, normalized − raw"


def test_verdict_reproduced_when_normalized_is_faster_and_usable_at_more_rates():
    # Seed s adds s epochs to both arms: raw 20-27 epochs at 0.01 (within the 30), normalized 3-10 at 0.1.
    result = input_normalization.verdict(_grid([20, None, "nan"], [15, 3, None], decades=(0.0, 4.0), seeds=EIGHT_SEEDS))
    assert result.outcome == "reproduced"
    faster, stabler = result.claim_checks
    assert faster.condition == stabler.condition == "data=mnist1d, optimizer=sgd, decades=4.0"
    assert (faster.effect.mean, faster.effect.n, faster.lower_bound) == (17.0, 8, False) and result.headline is faster
    assert stabler.effect.mean == 1.0 and stabler.effect.std == 0.0 and stabler.interval == (1.0, 1.0)
    # The raw arm at its best rate (0.01) fits the target: it overfits.
    assert faster.details[REGIME] == "overfits (train 0.100, held-out 0.500)"
    assert faster.details["usable lrs raw / normalized"] == "1.0 / 2.0 of 3"
    # The control is reported, not judged.
    assert "control data=mnist1d, optimizer=sgd, decades=0.0" in result.notes


def test_verdict_three_seeds_cannot_tell_the_usable_rates_nor_identical_epochs_saved():
    # The same arms over 3 seeds: three of three seeds at +1 rate are a sign test's 1/4 chance, so the median's
    # interval is the whole range, ± 3 rates. The epochs saved are 17 on every seed (a seed shifts both arms):
    # a t-interval would have zero width and decide; identical values take the median's interval, unbounded too.
    result = input_normalization.verdict(_grid([20, None, "nan"], [3, 3, None], decades=(0.0, 4.0)))
    assert result.outcome == "inconclusive"
    assert result.where("inconclusive") == [SAVED, USABLE] and result.where("reproduced") == []
    assert result.checks[0].effect.std == 0.0 and math.isinf(result.checks[0].interval[1])
    assert result.checks[1].effect.n == 3 and result.checks[1].interval == (-3.0, 3.0)
    # Seeds that differ in the epochs saved give a t-interval, which three of them can decide.
    spread = _grid([20, None, "nan"], [3, 3, None], decades=(0.0, 4.0))
    spread.loc[spread["normalize"], "epochs_to_target"] -= spread.loc[spread["normalize"], "seed"]
    assert input_normalization.verdict(spread).where("reproduced") == [SAVED]


def test_verdict_partly_reproduced_when_normalizing_is_faster_but_usable_at_no_more_rates():
    # The same two rates usable in both arms on every seed: a difference of exactly 0, within ± one rate,
    # shows no effect beside the reproduced speed-up (the new rule: partly reproduced, nothing on the wrong side).
    result = input_normalization.verdict(_grid([25, 20, None], [12, 10, None], seeds=EIGHT_SEEDS))
    assert result.outcome == "partly reproduced"
    assert result.where("reproduced") == [SAVED]
    assert result.where("no effect") == [USABLE] and result.where("not reproduced") == []


def test_verdict_no_effect_when_raw_features_train_as_fast():
    # Both arms the same on every seed: 0 epochs saved and 0 extra rates, each within ± its smallest effect.
    result = input_normalization.verdict(_grid([8, 10, None], [8, 10, None], seeds=EIGHT_SEEDS))
    assert result.outcome == "not reproduced (no effect)"
    assert result.where("no effect") == [SAVED, USABLE] and result.where("not reproduced") == []
    assert result.checks[0].details[REGIME].startswith("overfits")
    # Over 3 seeds the same values on every seed decide nothing: neither the epochs nor the usable rates.
    three = input_normalization.verdict(_grid([8, 10, None], [8, 10, None]))
    assert three.outcome == "inconclusive"
    assert three.where("inconclusive") == [SAVED, USABLE]


def test_verdict_without_badly_scaled_features_or_a_normalized_arm_is_inconclusive():
    control = input_normalization.verdict(_grid([8, 10, None], [8, 10, None], decades=(0.0,)))
    assert control.outcome == "inconclusive" and control.checks == () and "No badly scaled condition" in control.summary
    raw_only = _grid([8, 10, None], [8, 10, None])
    assert input_normalization.verdict(raw_only[~raw_only["normalize"]]).outcome == "inconclusive"


def test_verdict_seeds_that_disagree_on_speed_are_unclear_and_the_same_usable_rates_show_no_effect():
    # Normalized 10-13 epochs faster on seeds 0-3, 2 slower on seeds 4-7: the epochs saved straddle 0 and
    # the band (unclear); the same one rate usable on every seed: no effect, so the claim shows none.
    frame = _grid([10, None, None], [12, None, None], seeds=EIGHT_SEEDS)
    frame.loc[~frame["normalize"] & (frame["seed"] < 4) & (frame["learning_rate"] == 0.01), "epochs_to_target"] = 25
    result = input_normalization.verdict(frame)
    assert [c.outcome for c in result.claim_checks] == ["inconclusive", "no effect"]
    assert result.outcome == "not reproduced (no effect)"


BRACKET = "data=mnist1d, optimizer=sgd, decades=4.0: {} arm's best learning rate inside the grid: seeds at an edge"


def test_an_arms_best_learning_rate_at_an_edge_of_the_grid_fails_its_sanity_check():
    # Raw is fastest at 0.01, the grid's smallest rate (its optimum may lie below); normalized at 0.1, inside.
    result = input_normalization.verdict(_grid([20, None, "nan"], [15, 3, None], seeds=EIGHT_SEEDS))
    assert [f"{check.condition}: {check.part}" for check in result.sanity_failures] == [BRACKET.format("raw")]
    assert result.sanity_failures[0].effect.mean == EIGHT_SEEDS and result.sanity_failures[0].details["grid"] == "0.01 to 1"
    assert result.where("reproduced", role="sanity") == [BRACKET.format("normalized")]
    # The claim's outcome is read from the claim checks alone; the runner then fails the run loudly (widen the grid).
    assert result.outcome == "reproduced"
    # A raw arm that never reaches the target has no best rate to bracket: noted, not checked.
    never = input_normalization.verdict(_grid([None, None, "nan"], [20, 8, None]))
    assert not never.sanity_failures and "the raw arm never reached the target, so it has no best rate to bracket" in never.notes
    # Two rates cannot bracket anything: noted, not checked.
    two = _grid([20, 10, None], [15, 3, None])
    two = input_normalization.verdict(two[two["learning_rate"] < 1.0])
    assert not [c for c in two.checks if c.role == "sanity"] and "a grid of 2 learning rates cannot bracket" in two.notes


def test_a_raw_arm_that_never_reaches_the_target_gives_a_lower_bound():
    check = input_normalization.verdict(_grid([None, None, "nan"], [20, 8, None])).checks[0]
    # Raw counts as 31 epochs: at least 23 saved, with no upper end.
    assert check.lower_bound and check.effect.mean == pytest.approx(23 - 1) and check.interval[1] == math.inf
    assert check.measured.startswith("≥ +22.0")


def test_a_lower_bound_wholly_above_zero_reproduces_faster():
    check = input_normalization.verdict(_grid([None, None, "nan"], [20, 8, None])).checks[0]
    assert check.outcome == "reproduced"


def test_smoke_run_logs_speed_and_stability_metrics(tracker):
    ablation = input_normalization.ABLATION
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 4
    for metric in ("epochs_to_target", "final_loss", "final_train_loss", "diverged", "loss_rise_fraction", "final_val_error", "final_accuracy"):
        assert f"metrics.{metric}" in children
    children["diagnosis"] = assert_diagnoses_follow_the_logged_errors(children)
    runs = children.set_index(["params.normalize", children["params.learning_rate"].astype(float)]).sort_index()
    assert list(runs.index) == [("False", 0.01), ("False", 0.1), ("True", 0.01), ("True", 0.1)]
    epochs, target = 3, 2.0
    censored = {}
    for key, run in runs.iterrows():
        loss = history_at(tracker, run["run_id"], "loss")
        assert sorted(loss) == list(range(epochs + 1)) and math.isnan(loss[0])
        # Speed and stability metrics are the logged training-loss curve's.
        reached = [step for step in range(1, epochs + 1) if loss[step] <= target]
        assert run["metrics.epochs_to_target"] == reached[0] if reached else math.isnan(run["metrics.epochs_to_target"])
        assert run["metrics.reached_target"] == float(bool(reached))
        curve = [loss[step] for step in range(1, epochs + 1)]
        assert run["metrics.loss_rise_fraction"] == input_normalization.loss_rise_fraction(curve)
        assert run["metrics.diverged"] == float(not math.isfinite(curve[-1]))
        censored[key] = reached[0] if reached else epochs + 1
    for arm in ("False", "True"):
        # The learning rates of one arm start from the same net.
        starts = [history_at(tracker, runs.loc[(arm, rate), "run_id"], "val_loss")[0] for rate in (0.01, 0.1)]
        assert starts[0] == starts[1]
    # Three SGD epochs on raw pixels scaled over 4 decades leave the net near chance: high bias, whatever the gap.
    assert (runs.loc["False", "metrics.final_train_error"] >= 0.5).all()
    assert set(runs.loc["False", "diagnosis"]) == {"high bias"}

    assert_verdict_logged(tracker, result, children)
    # Two checks, one seed: epochs to the target at the raw arm's best rate minus at the normalized arm's, and
    # the learning rates that reach it, normalized minus raw.
    best = {arm: min(censored[(arm, rate)] for rate in (0.01, 0.1)) for arm in ("False", "True")}
    usable = {arm: sum(censored[(arm, rate)] <= epochs and runs.loc[(arm, rate), "metrics.diverged"] == 0 for rate in (0.01, 0.1)) for arm in ("False", "True")}
    faster, stabler = result.verdict.checks
    assert faster.effect.mean == result.verdict.effect == best["False"] - best["True"]
    assert stabler.effect.mean == usable["True"] - usable["False"]
    assert faster.lower_bound == (best["False"] > epochs and best["True"] <= epochs)
    assert faster.details[REGIME].startswith("does not overfit")
    assert set(assert_selected_on_validation(tracker, result, ablation, children)) == {"digits/4.0"}
    parent = tracker.client.get_run(result.parent_run_id)
    assert sum(k.endswith("test_error") for k in parent.data.metrics) == 1
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/speed_vs_learning_rate.png", "figures/learning_curves_best_rate.png"}


def history_at(tracker, run_id, metric):
    """{step: value} of one metric of one run."""
    return {m.step: m.value for m in tracker.client.get_metric_history(run_id, metric)}
