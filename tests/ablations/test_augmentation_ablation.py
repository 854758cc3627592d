"""augmentation: strengths relative to the size, fixed step budget, the verdict's checks, and a smoke run."""

import keras
import numpy as np
import pandas as pd
import pytest

from ablations import augmentation
from ablations.engine.runner import run_ablation
from ablations.engine.verdict import REGIME
from models import SignalAugmentation
from models.augmentation import RandomAffine
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)

BASE = {name: param.default for name, param in augmentation.PARAMS.items()} | {"seed": 0}


def test_strengths_are_fixed_relative_changes_mild_below_strong():
    assert augmentation.STRENGTHS["none"] == {}
    mild, strong = augmentation.STRENGTHS["mild"], augmentation.STRENGTHS["strong"]
    assert mild.keys() == strong.keys() == {"shift", "rotation", "zoom", "noise"}
    assert all(0 < mild[key] < strong[key] for key in mild)
    assert augmentation.HEADLINE == ("mnist5k", "strong")


def test_each_data_set_gets_its_kind_of_augmentation_at_the_same_relative_strength():
    assert augmentation.augmentation_layer({**BASE, "strength": "none"}, (8, 8, 1)) is None
    small = augmentation.augmentation_layer({**BASE, "strength": "strong"}, (8, 8, 1))
    large = augmentation.augmentation_layer({**BASE, "strength": "strong"}, (28, 28, 1))
    assert isinstance(small, RandomAffine) and isinstance(large, RandomAffine)
    # The same fraction of the side on 8x8 and 28x28: 0.8 and 2.8 pixels; the same angle and zoom.
    strong = augmentation.STRENGTHS["strong"]
    assert (small.shift, small.rotation, small.zoom) == (large.shift, large.rotation, large.zoom) == (strong["shift"], strong["rotation"], strong["zoom"])
    signal = augmentation.augmentation_layer({**BASE, "strength": "mild"}, (40, 1))
    assert isinstance(signal, SignalAugmentation)
    assert signal.max_shift == 2 and signal.scale_range == (0.95, 1.05) and signal.noise_std == 0.025


@pytest.mark.parametrize("data", ["digits", "mnist1d"])
@pytest.mark.parametrize("strength", ["mild", "strong"])
def test_augmentation_changes_training_inputs_only(data, strength):
    config = {**BASE, "data": data, "strength": strength, "n_train": 20}
    dataset = augmentation._dataset(config)
    x = dataset.x_train[:8]
    layer = augmentation.augmentation_layer(config, dataset.input_shape)
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


def test_the_quick_profile_covers_real_28x28_digits_and_8x8_ones_at_every_strength():
    trials = augmentation.ABLATION.resolve("quick").trials()
    assert {t["data"] for t in trials} >= {"mnist5k", "digits"}
    assert {t["strength"] for t in trials} == {"none", "mild", "strong"}
    assert max(t["n_train"] for t in trials) <= 1000 and len({t["seed"] for t in trials}) >= 2


def _trials(gains, *, spread=0.002, plain_train=0.0):
    """Held-out error without augmentation about 0.3; at a strength lower by about ``gains[(data, strength)][n_train]``."""
    rows = []
    for (data, strength), by_size in gains.items():
        for n_train, gain in by_size.items():
            for seed in range(3):
                plain = 0.3 + 0.001 * seed + 0.01 * (n_train == 100)
                rows.append((data, "none", n_train, seed, plain, plain_train))
                rows.append((data, strength, n_train, seed, plain - gain + spread * (seed - 1), 0.05))
    frame = pd.DataFrame(rows, columns=["data", "strength", "n_train", "seed", "final_val_error", "final_train_error"])
    # The arm without augmentation appears once per strength above: keep one of each.
    frame = frame.drop_duplicates(["data", "strength", "n_train", "seed"])
    frame["final_gap"] = frame["final_val_error"] - frame["final_train_error"]
    return frame


def test_paired_gains_match_each_strength_with_none_of_the_same_seed_and_size():
    pairs = augmentation.paired_gains(_trials({("mnist5k", "mild"): {100: 0.1, 300: 0.02}, ("mnist5k", "strong"): {100: 0.2, 300: 0.05}}))
    assert len(pairs) == 12
    small = pairs[(pairs["n_train"] == 100) & (pairs["strength"] == "strong")].sort_values("seed")
    np.testing.assert_allclose(small["error_gain"], [0.202, 0.2, 0.198])
    np.testing.assert_allclose(small["gap_gain"], small["error_gain"] + 0.05)


def test_verdict_reproduced_checks_every_data_set_and_strength_with_mnist5k_strong_as_headline():
    result = augmentation.verdict(
        _trials(
            {
                ("digits", "mild"): {100: 0.02, 300: 0.01},
                ("digits", "strong"): {100: 0.03, 300: 0.02},
                ("mnist5k", "mild"): {100: 0.04, 300: 0.02},
                ("mnist5k", "strong"): {100: 0.06, 300: 0.03},
            }
        )
    )
    assert result.outcome == "reproduced"
    assert [check.condition for check in result.checks] == ["mnist5k, mild", "mnist5k, strong", "digits, mild", "digits, strong"]
    assert result.headline.condition == "mnist5k, strong"
    assert result.effect == pytest.approx(0.045)
    row = result.table[1]
    assert row["gain per size"] == "n_train=100: +0.060; n_train=300: +0.030"
    assert row[REGIME] == "n_train=100: overfits (train 0.000, held-out 0.311); n_train=300: overfits (train 0.000, held-out 0.301)"
    assert "mnist5k, strong: +0.060 at n_train=100, +0.030 at n_train=300 (largest at the smallest size)" in result.notes


def test_verdict_partly_reproduced_when_augmentation_helps_28x28_digits_but_hurts_8x8_ones():
    result = augmentation.verdict(
        _trials(
            {
                ("mnist5k", "mild"): {100: 0.03, 300: 0.01},
                ("mnist5k", "strong"): {100: 0.05, 300: 0.02},
                ("digits", "mild"): {100: -0.02, 300: -0.01},
                ("digits", "strong"): {100: -0.09, 300: -0.08},
            }
        )
    )
    assert result.outcome == "partly reproduced"
    assert result.where("reproduced") == ["mnist5k, mild", "mnist5k, strong"]
    assert result.where("not reproduced") == ["digits, mild", "digits, strong"]
    assert "Failed: digits, mild" in result.summary
    # Only gains are described by size.
    assert "digits" not in result.notes


def test_verdict_not_reproduced_when_augmentation_never_helps_and_notes_nothing():
    result = augmentation.verdict(_trials({("mnist5k", "strong"): {100: -0.02, 300: -0.03}}))
    assert result.outcome == "not reproduced" and result.headline.condition == "mnist5k, strong"
    assert result.notes == ""


def test_verdict_inconclusive_when_the_gain_straddles_zero_or_the_grid_lacks_an_arm():
    noisy = augmentation.verdict(_trials({("mnist5k", "strong"): {100: 0.01, 300: -0.005}}, spread=0.05))
    assert noisy.outcome == "inconclusive"
    frame = _trials({("mnist5k", "strong"): {100: 0.1}})
    lacking = augmentation.verdict(frame[frame["strength"] != "none"])
    assert lacking.outcome == "inconclusive" and lacking.checks == ()
    assert "needs strength=none" in lacking.summary


def test_verdict_reads_the_regime_without_augmentation_and_when_the_gain_is_not_largest_at_the_smallest_size():
    result = augmentation.verdict(_trials({("digits", "strong"): {100: 0.02, 300: 0.1}}, plain_train=0.25))
    assert result.headline.condition == "digits, strong"  # no mnist5k: the first check
    assert result.table[0][REGIME].startswith("n_train=100: does not overfit (train 0.250, held-out 0.311)")
    assert "(not largest at the smallest size)" in result.notes


def test_smoke_run_logs_gap_verdict_figures_and_one_test_score(tracker):
    ablation = augmentation.ABLATION
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 3
    runs = children.set_index("params.strength")
    assert sorted(runs.index) == ["mild", "none", "strong"]
    for metric in ("final_val_error", "final_train_error", "final_gap", "final_accuracy", "final_val_accuracy"):
        assert f"metrics.{metric}" in children
    np.testing.assert_array_equal(runs["metrics.final_gap"], runs["metrics.final_val_error"] - runs["metrics.final_train_error"])
    np.testing.assert_allclose(runs["metrics.final_train_error"], 1 - runs["metrics.final_accuracy"], atol=1e-7)
    # Paired by seed: at every strength, training starts from the same net and runs as many steps.
    curves = [{m.step: m.value for m in tracker.client.get_metric_history(runs.loc[arm, "run_id"], "val_loss")} for arm in ("none", "mild", "strong")]
    assert sorted(curves[0]) == sorted(curves[1]) == sorted(curves[2]) and curves[0][0] == curves[1][0] == curves[2][0]
    assert (runs["metrics.epochs_run"] == augmentation.epochs_for(ablation.resolve("smoke").trials()[0])).all()
    # Twenty steps of a tiny CNN leave it near chance on ten classes: high bias, whatever the gap.
    assert (runs["metrics.final_train_error"] >= 0.5).all()
    assert set(assert_diagnoses_follow_the_logged_errors(children)) == {"high bias"}

    parent = assert_verdict_logged(tracker, result, children)
    # One check per strength on digits, each the held-out error without augmentation minus with it.
    assert [check.condition for check in result.verdict.checks] == ["digits, mild", "digits, strong"]
    for check, strength in zip(result.verdict.checks, ("mild", "strong")):
        gain = runs.loc["none", "metrics.final_val_error"] - runs.loc[strength, "metrics.final_val_error"]
        assert check.effect.n == 1 and check.effect.mean == pytest.approx(gain, abs=1e-12)
        assert check.details[REGIME].startswith("n_train=100: does not overfit")
    assert result.verdict.effect == result.verdict.checks[0].effect.mean
    assert set(assert_selected_on_validation(tracker, result, ablation, children)) == {"digits/100"}
    assert sum(k.endswith("test_error") for k in parent.data.metrics) == 1
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/error_and_gap_vs_n_train.png", "figures/augmented_examples.png"}
