"""dropout: the expectation check, the verdict's arithmetic, the trial helper, and a smoke run."""

import math

import keras
import numpy as np
import pandas as pd
import pytest

from ablations import dropout
from ablations.engine.train import epochs_to_reach, fit_trial
from ablations.engine.runner import run_ablation
from ablations.engine.stats import summarize
from models import build_mlp
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)


def _probe(seed=0, n=64, features=20):
    return np.random.default_rng(seed).normal(size=(n, features)).astype("float32")


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_inverted_dropout_keeps_the_expected_next_layer_z(keep_prob):
    model = build_mlp((20,), 3, depth=2, width=64, keep_prob=keep_prob, seed=0)
    check = dropout.expectation_check(model, _probe(), samples=400)
    # Pure Monte Carlo noise gives a ratio near 1; a biased mean would give hundreds.
    assert 0.7 < check["expectation_rms_ratio"] < dropout.EXPECTATION_TOLERANCE
    # Without the 1/keep rescale, E[a W] shrinks by keep: the biases start at 0, so z is off by 1 - keep.
    assert check["unscaled_relative_deviation"] == pytest.approx(1 - keep_prob, abs=0.03)
    assert check["expectation_relative_deviation"] < 0.1 * (1 - keep_prob) + 0.05


def test_expectation_check_finds_input_dropout_and_skips_nets_without_dropout():
    with_input = build_mlp((20,), 3, depth=1, width=32, input_keep_prob=0.8, seed=0)
    assert dropout.expectation_check(with_input, _probe(), samples=200)["unscaled_relative_deviation"] == pytest.approx(0.2, abs=0.03)
    plain = build_mlp((20,), 3, depth=1, width=32, seed=0)
    assert all(math.isnan(v) for v in dropout.expectation_check(plain, _probe(), samples=10).values())


def test_epochs_to_reach_counts_from_initialization_and_ignores_nan():
    assert epochs_to_reach([2.3, 1.1, 0.6, 0.4, 0.5], 0.5) == 3.0
    assert epochs_to_reach([0.3, 0.2], 0.5) == 0.0
    assert math.isnan(epochs_to_reach([math.nan, 2.0, math.nan], 1.0))


def test_fit_trial_scores_the_training_split_without_dropout():
    x = _probe(1, n=200)
    y = (x[:, 0] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = build_mlp((20,), 2, depth=1, width=64, keep_prob=0.3, seed=0)
    fit = fit_trial(model, x[:150], y[:150], x[150:], y[150:], epochs=5, batch_size=32, seed=0, learning_rate=1e-2)
    assert fit.epochs_run == 5 and len(fit.history["loss"]) == 6 and math.isnan(fit.history["loss"][0])
    probabilities = keras.ops.convert_to_numpy(model(x[:150], training=False))
    clean_loss = float(np.mean(-np.log(probabilities[np.arange(150), y[:150]])))
    # The final "train" numbers are the trained net's in inference mode, not the running mean with masks.
    assert fit.final["final_train_loss"] == pytest.approx(clean_loss, rel=1e-4)
    assert fit.final["final_accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == y[:150]))
    assert fit.final["final_train_error"] == pytest.approx(1 - fit.final["final_accuracy"])
    assert fit.history["train_loss"][-1] == pytest.approx(clean_loss, rel=1e-4)
    assert fit.final["final_loss"] == fit.history["loss"][-1]


def test_fit_trial_counts_weight_penalties_in_the_training_loss():
    x = _probe(2, n=100)
    y = (x[:, 1] > 0).astype("int64")
    losses = {}
    for l2 in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        model = build_mlp((20,), 2, depth=1, width=16, l2=l2, seed=0)
        fit = fit_trial(model, x, y, x, y, epochs=1, batch_size=100, seed=0, learning_rate=1e-9)
        losses[l2] = (fit.history["loss"][1], fit.history["train_loss"][1])
    # With a (practically) frozen net, the penalty is the whole difference of the running loss...
    assert losses[10.0][0] - losses[0.0][0] > 1.0
    # ...and the scored training loss leaves it out.
    assert losses[10.0][1] == pytest.approx(losses[0.0][1], rel=1e-4)


def _trials(rows):
    """Synthetic trial frames: (keep, input_keep, n_train, seed, val_error, train_error, epochs_to_target)."""
    columns = ["keep_prob", "input_keep_prob", "n_train", "seed", "final_val_error", "final_train_error", "epochs_to_target"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["final_gap"] = frame["final_val_error"] - frame["final_train_error"]
    frame["epochs"] = 100
    frame["target_loss"] = 1.0
    frame["expectation_rms_ratio"] = np.where((frame["keep_prob"] < 1) | (frame["input_keep_prob"] < 1), 1.05, np.nan)
    frame["unscaled_relative_deviation"] = np.where(frame["keep_prob"] < 1, 0.5, np.nan)
    return frame


def _grid(error_gain, ratio, sizes=(250, 1000), seeds=(0, 1, 2)):
    rows = []
    for n in sizes:
        for seed in seeds:
            jitter = 0.002 * seed
            rows.append((1.0, 1.0, n, seed, 0.5 + jitter, 0.0, 10.0))
            treated_epochs = 10.0 * ratio if 10.0 * ratio <= 100 else np.nan
            rows.append((0.5, 1.0, n, seed, 0.5 - error_gain + 2 * jitter, 0.1, treated_epochs + seed if treated_epochs == treated_epochs else np.nan))
            rows.append((0.5, 0.8, n, seed, 0.5 - error_gain + 0.03, 0.2, np.nan))
    return _trials(rows)


def test_verdict_reproduced_when_error_falls_and_epochs_double():
    result = dropout.verdict(_grid(error_gain=0.05, ratio=2.0))
    assert result.outcome == "reproduced"
    assert result.effect == pytest.approx(0.05, abs=0.01)
    assert "Iterations: reproduced" in result.summary and "Overfitting: reproduced" in result.summary
    assert len(result.table) == 2
    assert result.table[0]["input keep 0.8 vs 1.0: error change"] == "+0.026"


def test_verdict_not_reproduced_when_dropout_is_five_times_slower():
    result = dropout.verdict(_grid(error_gain=0.05, ratio=5.0))
    assert result.outcome == "not reproduced"
    assert "Iterations: not reproduced" in result.summary


def test_verdict_not_reproduced_when_dropout_raises_the_held_out_error():
    result = dropout.verdict(_grid(error_gain=-0.05, ratio=2.0))
    assert result.outcome == "not reproduced"
    assert "does not help at n_train=250, 1000" in result.summary


def test_never_reaching_the_target_is_a_lower_bound():
    # 20x the baseline's 10 epochs would be 200 > 100 epochs: censored at 101, a lower bound of ~10x.
    result = dropout.verdict(_grid(error_gain=0.05, ratio=20.0))
    assert "at least x10" in result.summary and "Iterations: not reproduced" in result.summary
    # A lower bound inside the "about doubles" band decides nothing.
    assert dropout.iterations_status(summarize([2.0, 2.2]), lower_bound=True) == "inconclusive"
    assert dropout.iterations_status(summarize([2.0, 2.2, 2.1]), lower_bound=False) == "reproduced"
    assert dropout.iterations_status(summarize([1.1, 1.2]), lower_bound=False) == "not reproduced"


def test_smoke_run_logs_trials_verdict_figures_and_one_test_score(tracker):
    ablation = dropout.ABLATION
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 4
    runs = children.set_index([children["params.n_train"].astype(int), children["params.keep_prob"].astype(float)]).sort_index()
    assert list(runs.index) == [(100, 0.5), (100, 1.0), (200, 0.5), (200, 1.0)]
    for metric in ("final_val_error", "final_train_error", "final_gap", "epochs_to_target", "expectation_rms_ratio", "final_val_loss"):
        assert f"metrics.{metric}" in children
    np.testing.assert_array_equal(runs["metrics.final_gap"], runs["metrics.final_val_error"] - runs["metrics.final_train_error"])
    # Errors are 1 - accuracy on the 100 or 200 training examples: multiples of 1/n_train.
    train_errors = runs["metrics.final_train_error"] * runs.index.get_level_values(0)
    np.testing.assert_allclose(train_errors, np.round(train_errors), atol=1e-4)
    # The expectation check runs on nets with dropout only: within Monte Carlo error of z with the rescale,
    # off by about 1 - keep = 0.5 without it.
    dropped, plain = runs.xs(0.5, level=1), runs.xs(1.0, level=1)
    assert (dropped["metrics.expectation_rms_ratio"] < dropout.EXPECTATION_TOLERANCE).all()
    np.testing.assert_allclose(dropped["metrics.unscaled_relative_deviation"], 0.5, atol=0.05)
    assert plain[["metrics.expectation_rms_ratio", "metrics.unscaled_relative_deviation"]].isna().all().all()
    # Four epochs of one or two steps leave every net near chance on ten classes: high bias, whatever the gap.
    assert (runs["metrics.final_train_error"] >= 0.5).all()
    assert set(assert_diagnoses_follow_the_logged_errors(children)) == {"high bias"}
    for n_train in (100, 200):
        # Paired by seed: with and without dropout, training starts from the same net.
        start = [history_at(tracker, runs.loc[(n_train, keep), "run_id"], "val_loss") for keep in (0.5, 1.0)]
        assert sorted(start[0]) == [0, 4]  # initialization, then every SCORE_EVERY epochs and the last
        assert start[0][0] == start[1][0]

    assert_verdict_logged(tracker, result, children)
    # The verdict's effect: held-out error without dropout minus with keep 0.5, paired by size, averaged.
    gains = plain["metrics.final_val_error"] - dropped["metrics.final_val_error"]
    assert result.verdict.effect == pytest.approx(gains.mean(), abs=1e-12)
    # One selection (lowest validation loss) and one test score per training-set size, never more.
    selections = assert_selected_on_validation(tracker, result, ablation, children)
    assert set(selections) == {"digits/100", "digits/200"}
    tests = {k for k in tracker.client.get_run(result.parent_run_id).data.metrics if k.endswith("test_error")}
    assert tests == {"digits/100/test_error", "digits/200/test_error"}
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/error_and_gap_vs_keep.png", "figures/training_loss_curves.png"}


def history_at(tracker, run_id, metric):
    """{step: value} of one metric of one run."""
    return {m.step: m.value for m in tracker.client.get_metric_history(run_id, metric)}
