"""augmentation: layers per data set, fixed step budget, the verdict's pairing, and a smoke run."""

import keras
import numpy as np
import pandas as pd
import pytest

from ablations import augmentation
from ablations.engine.runner import run_ablation
from models import AugmentationPipeline, SignalAugmentation
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)

BASE = {name: param.default for name, param in augmentation.PARAMS.items()} | {"seed": 0}


def test_each_data_set_gets_its_kind_of_augmentation():
    assert augmentation.augmentation_layer({**BASE, "augment": False}) is None
    assert isinstance(augmentation.augmentation_layer({**BASE, "data": "digits"}), AugmentationPipeline)
    signal = augmentation.augmentation_layer({**BASE, "data": "mnist1d", "scale_spread": 0.2})
    assert isinstance(signal, SignalAugmentation)
    assert signal.scale_range == (0.8, 1.2) and signal.max_shift == 3 and signal.noise_std == 0.05


@pytest.mark.parametrize("data", ["digits", "mnist1d"])
def test_augmentation_changes_training_inputs_only(data):
    config = {**BASE, "data": data, "n_train": 20}
    x = augmentation._dataset(config).x_train[:8]
    layer = augmentation.augmentation_layer(config)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), x)


def test_images_keep_their_zero_background_for_the_constant_fill():
    data = augmentation._dataset({**BASE, "data": "digits", "n_train": 50})
    assert data.x_train.shape[1:] == (8, 8, 1)
    assert data.x_train.min() == 0.0 and data.x_train.max() <= 1.0
    # Signals are standardized instead.
    signals = augmentation._dataset({**BASE, "data": "mnist1d", "n_train": 50})
    assert signals.x_train.shape[1:] == (40, 1)


def test_every_training_size_gets_the_same_number_of_steps():
    assert augmentation.epochs_for({"n_train": 100, "batch_size": 64, "train_steps": 1000}) == 500
    assert augmentation.epochs_for({"n_train": 100, "batch_size": 64, "train_steps": 999}) == 500
    assert augmentation.epochs_for({"n_train": 1000, "batch_size": 64, "train_steps": 1000}) == 63
    assert augmentation.epochs_for({"n_train": 1000, "batch_size": 64, "train_steps": 5}) == 1


def _trials(gains):
    """Plain held-out error about 0.3; the augmented one lower by about ``gains[data][n_train]``."""
    rows = []
    for data, by_size in gains.items():
        for n_train, gain in by_size.items():
            for seed in range(3):
                plain = 0.3 + 0.001 * seed
                rows.append((data, False, n_train, seed, plain, 0.0))
                rows.append((data, True, n_train, seed, plain - gain + 0.002 * seed, 0.05))
    frame = pd.DataFrame(rows, columns=["data", "augment", "n_train", "seed", "final_val_error", "final_train_error"])
    frame["final_gap"] = frame["final_val_error"] - frame["final_train_error"]
    frame["final_val_loss"] = 3 * frame["final_val_error"]
    return frame


def test_paired_gains_match_plain_and_augmented_of_the_same_seed_and_size():
    pairs = augmentation.paired_gains(_trials({"mnist1d": {100: 0.1, 1000: 0.02}}))
    assert len(pairs) == 6
    small = pairs[pairs["n_train"] == 100].sort_values("seed")
    np.testing.assert_allclose(small["error_gain"], [0.1, 0.098, 0.096])
    np.testing.assert_allclose(small["gap_gain"], small["error_gain"] + 0.05)


def test_verdict_reproduced_on_one_data_set_names_the_other():
    result = augmentation.verdict(_trials({"mnist1d": {100: 0.1, 1000: 0.05}, "digits": {100: -0.02, 1000: -0.01}}))
    assert result.outcome == "reproduced"
    assert "mnist1d: reproduced" in result.summary and "digits: not reproduced" in result.summary
    assert "largest at the smallest size" in result.summary
    assert len(result.table) == 4


def test_verdict_reports_when_the_gain_is_not_largest_at_the_smallest_size():
    result = augmentation.verdict(_trials({"mnist1d": {100: 0.02, 1000: 0.1}}))
    assert result.outcome == "reproduced"
    assert "not largest at the smallest size" in result.summary


def test_verdict_not_reproduced_when_augmentation_never_helps():
    assert augmentation.verdict(_trials({"digits": {100: -0.02, 300: -0.03}})).outcome == "not reproduced"


def test_smoke_run_logs_gap_verdict_figures_and_one_test_score(tracker):
    ablation = augmentation.ABLATION
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 2
    runs = children.set_index("params.augment")
    assert sorted(runs.index) == ["False", "True"]
    for metric in ("final_val_error", "final_train_error", "final_gap", "final_accuracy", "final_val_accuracy"):
        assert f"metrics.{metric}" in children
    np.testing.assert_array_equal(runs["metrics.final_gap"], runs["metrics.final_val_error"] - runs["metrics.final_train_error"])
    np.testing.assert_allclose(runs["metrics.final_train_error"], 1 - runs["metrics.final_accuracy"], atol=1e-7)
    # Paired by seed: with and without augmentation, training starts from the same net and runs as many steps.
    curves = [{m.step: m.value for m in tracker.client.get_metric_history(runs.loc[arm, "run_id"], "val_loss")} for arm in ("False", "True")]
    assert sorted(curves[0]) == sorted(curves[1]) and curves[0][0] == curves[1][0]
    assert runs.loc["False", "metrics.epochs_run"] == runs.loc["True", "metrics.epochs_run"] == augmentation.epochs_for(ablation.resolve("smoke").trials()[0])
    # Twenty steps of a tiny CNN leave it near chance on ten classes: high bias, whatever the gap.
    assert (runs["metrics.final_train_error"] >= 0.5).all()
    assert set(assert_diagnoses_follow_the_logged_errors(children)) == {"high bias"}

    parent = assert_verdict_logged(tracker, result, children)
    # The verdict's effect: held-out error without augmentation minus with it.
    gain = runs.loc["False", "metrics.final_val_error"] - runs.loc["True", "metrics.final_val_error"]
    assert result.verdict.effect == pytest.approx(gain, abs=1e-12)
    assert set(assert_selected_on_validation(tracker, result, ablation, children)) == {"digits/100"}
    assert sum(k.endswith("test_error") for k in parent.data.metrics) == 1
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/error_and_gap_vs_n_train.png", "figures/augmented_examples.png"}
