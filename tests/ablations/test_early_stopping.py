"""early_stopping: label noise, stop/restored epoch bookkeeping with Keras' EarlyStopping, the verdict, a smoke run."""

import numpy as np
import pandas as pd
import pytest

from ablations import early_stopping
from ablations.engine.train import TrialFit
from ablations.engine.train.members import MemberOptimizer, MemberStopping, PackTraining, fit_members
from ablations.engine.runner import run_ablation
from ablations.engine.verdict import REGIME
from models.stacked import StackedMLP
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)


def test_noisy_labels_replace_an_exact_fraction_with_fixed_draws():
    y = np.repeat(np.arange(10), 50)
    noisy = early_stopping.noisy_labels(y, 0.3, 10)
    changed = noisy != y
    # 150 labels are redrawn; about a tenth of them draw their own class again.
    assert 110 <= changed.sum() <= 150
    assert noisy.min() >= 0 and noisy.max() <= 9
    np.testing.assert_array_equal(noisy, early_stopping.noisy_labels(y, 0.3, 10))
    np.testing.assert_array_equal(early_stopping.noisy_labels(y, 0.0, 10), y)
    assert y[0] == 0  # the input is not modified


def test_stopping_split_is_carved_from_the_training_data():
    config = {"data": "digits", "n_train": 100, "label_noise": 0.0, "stop_fraction": 0.2, "seed": 0}
    data, (x_fit, y_fit), (x_stop, y_stop) = early_stopping._data(config)
    assert len(x_fit) == 80 and len(x_stop) == 20
    np.testing.assert_array_equal(np.concatenate([x_fit, x_stop]), data.x_train)
    assert len(np.unique(y_stop)) == 10  # balanced: two of each class


def _overfitting_fit(patience=None, rule=None):
    """A wide net memorizing 40 random labels: its validation loss rises after a few epochs. Returns (fit, restored epoch)."""
    rule = rule or (MemberStopping("val_loss", patience) if patience else None)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 10)).astype("float32")
    y = rng.integers(0, 3, 80)
    stack = StackedMLP(10, 3, depth=2, width=128, activations=["relu"], initializers=["glorot_uniform"], seed=0)
    fits = fit_members(
        stack, {"train": (x[:40], y[:40]), "val": (x[40:60], y[40:60]), "heldout": (x[60:], y[60:])}, training=PackTraining(60, 20),
        seeds=[0], optimizers=[MemberOptimizer("adam", 1e-2)], stopping=[rule],
    )
    return fits.trials[0], fits.restored_epochs[0]


def test_early_stopping_restores_the_epoch_with_the_lowest_validation_loss():
    fit, restored = _overfitting_fit(patience=3)
    val_loss = np.asarray(fit.history["val_loss"])
    best = int(np.argmin(val_loss[1:])) + 1
    metrics = early_stopping.stop_metrics(fit, restored, epochs=60)
    assert metrics["stop_epoch"] == fit.epochs_run < 60
    assert metrics["restored_epoch"] == best
    assert metrics["stop_epoch"] == metrics["restored_epoch"] + 3  # patience epochs without improvement
    assert metrics["epochs_saved"] == 60 - metrics["stop_epoch"]
    # The returned weights are the restored ones: their scores are the history's at that epoch.
    assert fit.final["final_val_loss"] == pytest.approx(val_loss[best], rel=1e-5)
    assert metrics["heldout_error_restored"] == pytest.approx(1 - fit.history["heldout_accuracy"][best], abs=1e-6)
    assert metrics["heldout_error_at_stop"] == pytest.approx(1 - fit.history["heldout_accuracy"][fit.epochs_run], abs=1e-6)
    assert metrics["final_val_error"] == metrics["heldout_error_restored"]  # final_val_* is the held-out split


def test_without_stopping_every_epoch_runs_and_nothing_is_restored():
    fit, restored = _overfitting_fit(patience=0)
    assert restored is None
    metrics = early_stopping.stop_metrics(fit, restored, epochs=60)
    assert metrics["stop_epoch"] == metrics["restored_epoch"] == 60 and metrics["epochs_saved"] == 0
    assert metrics["heldout_error_at_stop"] == metrics["heldout_error_restored"]


def test_stop_metrics_reads_the_history_at_the_right_epochs():
    accuracy = [0.1, 0.5, 0.8, 0.7, 0.6, 0.55]
    history = {"heldout_accuracy": accuracy, "heldout_loss": [2.3, 1.0, 0.5, 0.7, 0.9, 1.1]}
    final = {
        "final_loss": 0.1, "final_train_loss": 0.1, "final_accuracy": 1.0, "final_train_error": 0.0,
        "final_heldout_loss": 0.5, "final_heldout_accuracy": 0.8, "final_heldout_error": 0.2,
        "final_val_loss": 0.4, "final_val_accuracy": 0.9,
    }
    fit = TrialFit(history=history, epochs_run=5, diverged=False, final=final)
    metrics = early_stopping.stop_metrics(fit, 2, epochs=50)
    assert metrics["restored_epoch"] == 2 and metrics["stop_epoch"] == 5 and metrics["epochs_saved"] == 45
    assert metrics["heldout_error_at_stop"] == pytest.approx(0.45)
    assert metrics["heldout_loss_at_stop"] == 1.1
    assert metrics["min_heldout_error"] == pytest.approx(0.2) and metrics["min_heldout_error_epoch"] == 2


def test_the_lecture_rule_looks_every_5_epochs_goes_on_through_ties_and_stops_at_the_first_rise():
    from ablations.engine.train.members import _Stoppers

    # Stopping-split accuracy after epochs 1..15; the looks come after epochs 5, 10 and 15 only (0.9 after epoch 7
    # is never seen). Epoch 10 ties epoch 5; epoch 15 is a rise of the error.
    accuracy = [0.5, 0.1, 0.1, 0.1, 0.6, 0.1, 0.9, 0.1, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.55]
    lecture = early_stopping.stopping_rule({"stopping": "lecture", "monitor": "val_accuracy"})
    assert (lecture.patience, lecture.every, lecture.rise_only) == (1, 5, True)
    stops = {}
    for name, rule in (("lecture", lecture), ("a tie stops (Keras)", MemberStopping("val_accuracy", 1, every=5))):
        stoppers = _Stoppers([rule])
        for epoch, value in enumerate(accuracy):
            _, stopped = stoppers.update(epoch, {"val_accuracy": np.array([value])}, np.array([0]))
            if stopped[0]:
                stops[name] = (epoch + 1, stoppers.restored_epochs()[0])
                break
    # (stop epoch, restored epoch), from 1: the lecture keeps the weights of the look before the rise.
    assert stops == {"lecture": (15, 10), "a tie stops (Keras)": (10, 5)}
    assert early_stopping.stopping_rule({"stopping": "none", "monitor": "val_accuracy"}) is None
    assert early_stopping.stopping_rule({"stopping": "patience_20", "monitor": "val_loss"}) == MemberStopping("val_loss", 20)


def test_the_lecture_rule_on_a_net_that_overfits_restores_the_look_before_the_first_rise():
    fit, restored = _overfitting_fit(rule=early_stopping.stopping_rule({"stopping": "lecture", "monitor": "val_accuracy"}))
    error = 1 - np.asarray(fit.history["val_accuracy"])  # index: epoch
    stop = fit.epochs_run
    assert stop < 60 and stop % 5 == 0 and restored == stop - 5 and error[stop] > error[restored]
    looks = list(range(5, stop, 5))
    assert all(error[later] <= error[earlier] for earlier, later in zip(looks, looks[1:]))  # no rise before
    # The weights it returns are those of the restored look: they score what the history logged there.
    assert fit.final["final_heldout_accuracy"] == pytest.approx(fit.history["heldout_accuracy"][restored], abs=1e-6)


def _trials(gains, spread=0.002):
    """Per label noise: no-stopping error 0.3 and stopped trials (lecture, patience 5) whose restored error is 0.3 - gain.

    Seed s shifts the restored error by ``spread * s``; the overlong arm fits its training labels exactly.
    """
    rows = []
    for noise, gain in gains.items():
        for seed in range(3):
            rows.append((noise, "none", seed, 0.3, 0.3, 1.0, 0.2, 100, 100, 0.0))
            for rule, stop in (("lecture", 15), ("patience_5", 15)):
                restored = 0.3 - gain + spread * seed
                rows.append((noise, rule, seed, restored, restored + 0.01, 0.8, restored, stop, 10, 0.1))
    columns = [
        "label_noise", "stopping", "seed", "final_val_error", "heldout_error_at_stop", "final_val_loss", "min_heldout_error",
        "stop_epoch", "restored_epoch", "final_train_error",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["heldout_error_restored"] = frame["final_val_error"]
    frame["heldout_loss_restored"] = frame["final_val_loss"]
    frame["epochs"] = 100
    frame["epochs_saved"] = 100 - frame["stop_epoch"]
    frame["data"], frame["monitor"] = "digits", "val_loss"
    return frame


def test_verdict_judges_the_lecture_rule_on_noisy_labels_with_patience_rules_as_extensions():
    result = early_stopping.verdict(_trials({0.0: -0.01, 0.3: 0.1}))
    # Clean labels are declared a boundary before the run: shown (on the wrong side here), never deciding; Keras's
    # patience rules are judged beside the lecture's, never deciding either.
    assert result.outcome == "reproduced"
    assert [(check.condition, check.role) for check in result.checks] == [
        ("label_noise=0.0", "boundary"), ("label_noise=0.0", "extension"), ("label_noise=0.3", "claim"), ("label_noise=0.3", "extension"),
    ]
    lecture_part = "held-out error, overlong − restored (lecture's rule)"
    assert result.where("reproduced") == [f"label_noise=0.3: {lecture_part}"] and result.where("not reproduced") == []
    assert result.where("not reproduced", role="boundary") == [f"label_noise=0.0: {lecture_part}"]
    lecture, patience = result.checks[2], result.checks[3]
    assert result.headline == lecture and len(result.table) == 4
    # Per seed: 0.1 - 0.002 s; n = 3 seeds.
    assert lecture.effect.n == 3 and lecture.effect.mean == pytest.approx(0.098)
    assert lecture.part == lecture_part
    assert patience.part == "held-out error, overlong − restored (Keras, patience 5)" and patience.outcome == "reproduced"
    row = result.table[2]
    assert row[REGIME] == "overfits (train 0.000, held-out 0.300)"
    assert row["overlong rise above its minimum"] == "+0.100" and row["epochs saved"] == "85 of 100" and row["restoring adds"] == "+0.010"
    # Restored 0.2 + 0.002 s against the overlong run's best, 0.2.
    assert row["regret (restored − best in hindsight)"].startswith("+0.002 [")


def test_verdict_reproduced_not_reproduced_and_inconclusive():
    assert early_stopping.verdict(_trials({0.0: 0.05, 0.3: 0.1})).outcome == "reproduced"
    assert early_stopping.verdict(_trials({0.1: -0.02})).outcome == "not reproduced"
    # Seeds that disagree: +0.02, -0.03, -0.08.
    assert early_stopping.verdict(_trials({0.3: 0.02}, spread=0.05)).outcome == "inconclusive"
    # Clean labels alone: nothing can decide, whatever the boundary shows.
    assert early_stopping.verdict(_trials({0.0: 0.05})).outcome == "inconclusive"
    no_stopping = _trials({0.0: 0.02})
    empty = early_stopping.verdict(no_stopping[no_stopping["stopping"] == "none"])
    assert empty.outcome == "inconclusive" and empty.checks == () and "stopping=none" in empty.summary
    # Without the lecture's rule in the grid, Keras's rules are shown and nothing decides.
    trials = _trials({0.3: 0.1})
    keras_only = early_stopping.verdict(trials[trials["stopping"] != "lecture"])
    assert keras_only.outcome == "inconclusive" and [c.role for c in keras_only.checks] == ["extension"]
    assert "no stopping=lecture arm" in keras_only.summary


def test_smoke_run_logs_stop_and_restored_epochs(tracker):
    ablation = early_stopping.ABLATION
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 2
    for metric in ("stop_epoch", "restored_epoch", "heldout_error_at_stop", "heldout_error_restored", "epochs_saved", "final_val_error", "final_accuracy"):
        assert f"metrics.{metric}" in children
    overlong = children[children["params.stopping"] == "none"].iloc[0]
    assert overlong["metrics.stop_epoch"] == overlong["metrics.restored_epoch"] == 12 and overlong["metrics.epochs_saved"] == 0
    stopped = children[children["params.stopping"] == "lecture"].iloc[0]
    stop, restored = int(stopped["metrics.stop_epoch"]), int(stopped["metrics.restored_epoch"])
    assert restored in (5, 10) and restored <= stop <= 12 and stopped["metrics.epochs_saved"] == 12 - stop
    # Same seed, same batches: the callback only watches, so up to its stop the stopped run's curves are the
    # overlong run's, number for number; the weights it returns score what the overlong run scored at the restored epoch.
    curves = {}
    for name in ("val_accuracy", "val_loss", "heldout_accuracy", "heldout_loss", "loss"):
        long, short = (history(tracker, run["run_id"], name) for run in (overlong, stopped))
        assert sorted(long) == list(range(13)) and sorted(short) == list(range(stop + 1))
        np.testing.assert_array_equal([long[step] for step in sorted(short)], [short[step] for step in sorted(short)], err_msg=name)
        curves[name] = long
    assert stopped["metrics.heldout_error_restored"] == pytest.approx(1 - curves["heldout_accuracy"][restored], abs=1e-6)
    assert stopped["metrics.heldout_error_at_stop"] == pytest.approx(1 - curves["heldout_accuracy"][stop], abs=1e-6)
    assert overlong["metrics.final_val_error"] == pytest.approx(1 - curves["heldout_accuracy"][12], abs=1e-6)
    assert overlong["metrics.min_heldout_error"] == pytest.approx(min(1 - curves["heldout_accuracy"][e] for e in range(1, 13)), abs=1e-6)
    # The lecture's rule watches the stopping split's error (its accuracy here), not cross-entropy, after epochs 5
    # and 10: a rise of the error at 10 stops there and keeps the weights of 5; else it trains on and keeps 10.
    accuracy = curves["val_accuracy"]
    assert (stop, restored) == ((10, 5) if accuracy[10] < accuracy[5] else (12, 10))
    # Twelve epochs of two steps leave the net far from fitting its 80 examples: high bias, whatever the gap.
    assert (children["metrics.final_train_error"] >= 0.5).all()
    assert set(assert_diagnoses_follow_the_logged_errors(children)) == {"high bias"}

    parent = assert_verdict_logged(tracker, result, children)
    # One check, one seed: its effect is held-out error after overlong training minus after restoring.
    (check,) = result.verdict.checks
    assert check.effect.n == 1 and check.condition == "label_noise=0.0"
    assert check.effect.mean == pytest.approx(overlong["metrics.final_val_error"] - stopped["metrics.heldout_error_restored"], abs=1e-12)
    assert result.verdict.effect == check.effect.mean
    # The overlong arm is far from fitting its training data: it does not overfit.
    assert check.details[REGIME].startswith("does not overfit")
    selections = assert_selected_on_validation(tracker, result, ablation, children)
    assert set(selections) == {"digits/0.0"}
    assert sum(k.endswith("test_error") for k in parent.data.metrics) == 1
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/learning_curves_with_stops.png"}


def history(tracker, run_id, metric):
    """{step: value} of one metric of one run."""
    return {m.step: m.value for m in tracker.client.get_metric_history(run_id, metric)}
