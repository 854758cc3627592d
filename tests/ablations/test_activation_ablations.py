"""linear_collapse, activation_composition and vanishing_gradients: math and smoke runs."""

import math

import keras
import numpy as np
import pytest

from ablations import activation_composition, linear_collapse, vanishing_gradients
from ablations.engine.runner import run_ablation
from models import build_mlp
from tests.ablations.smoke_checks import assert_diagnoses_follow_the_logged_errors, assert_verdict_logged


def test_deep_linear_net_equals_its_composed_affine_map():
    model = build_mlp((4,), 3, depth=6, width=16, activation="linear", output_activation="linear", seed=0)
    # Non-zero biases, so the bias composition is exercised too.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.random.default_rng(1).normal(size=bias.shape).astype("float32")])
    x = np.random.default_rng(2).normal(size=(100, 4)).astype("float32")
    kernel, bias = linear_collapse.composed_affine_map(model)
    assert kernel.shape == (4, 3) and bias.shape == (3,)
    np.testing.assert_allclose(model(x).numpy(), x @ kernel + bias, rtol=1e-4, atol=1e-5)
    _, relative = linear_collapse.collapse_deviation(model, x)
    assert relative < 1e-5


def test_relu_net_is_not_its_composed_map():
    model = build_mlp((4,), 3, depth=3, width=16, activation="relu", output_activation="linear", seed=0)
    x = np.random.default_rng(2).normal(size=(100, 4)).astype("float32")
    _, relative = linear_collapse.collapse_deviation(model, x)
    assert relative > 0.05


def test_relu_is_idempotent_and_sigmoid_is_not():
    assert activation_composition.idempotence_error("relu", 5.0, 1001) == 0.0
    assert activation_composition.idempotence_error("relu6", 10.0, 1001) == 0.0
    assert activation_composition.idempotence_error("sigmoid", 5.0, 1001) > 0.1
    assert activation_composition.idempotence_error("tanh", 5.0, 1001) > 0.01


def test_composed_sigmoid_squashes_range_and_slope():
    rows = activation_composition.composition_profile("sigmoid", 3, 5.0, 2001)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    slope = lambda v: sigmoid(v) * (1 - sigmoid(v))  # noqa: E731
    x = np.linspace(-5, 5, 2001)
    assert rows[0]["max_derivative"] == pytest.approx(0.25, rel=1e-6)
    # Chain rule by hand: (σ∘σ)'(x) = σ'(σ(x)) σ'(x), each factor at most 1/4.
    assert rows[1]["max_derivative"] == pytest.approx(np.max(slope(sigmoid(x)) * slope(x)), rel=1e-9)
    assert rows[1]["max_derivative"] < 1 / 16
    widths = [row["range_width"] for row in rows]
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] == pytest.approx(sigmoid(sigmoid(5)) - sigmoid(sigmoid(-5)), rel=1e-9)


def test_tanh_keeps_its_unit_slope_at_zero():
    rows = activation_composition.composition_profile("tanh", 4, 5.0, 2001)
    assert all(row["max_derivative"] == pytest.approx(1.0, abs=1e-9) for row in rows)
    assert rows[-1]["mean_derivative"] < rows[0]["mean_derivative"]


def _assert_smoke_run(ablation, tracker, expected_trials, figure_names):
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == expected_trials == len(result.trials)
    assert children[f"metrics.{ablation.objective}"].notna().all()
    parent = assert_verdict_logged(tracker, result, children)
    artifacts = {a.path for a in tracker.client.list_artifacts(result.parent_run_id)}
    assert {"verdict.json", "trials.csv", "aggregates.csv", "figures"} <= artifacts
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert {f"figures/{name}.png" for name in figure_names} <= figures
    verdict = tracker.load_json(result.parent_run_id, "verdict.json")
    assert verdict["outcome"] == result.verdict.outcome and verdict["table"]
    assert not any(k.endswith("test_error") for k in parent.data.metrics)  # nothing is selected here: no test score
    return result, children


def test_linear_collapse_smoke_run(tracker):
    result, children = _assert_smoke_run(linear_collapse.ABLATION, tracker, 3, ["decision_boundaries"])
    by_model = children.set_index("params.model")
    assert sorted(by_model.index) == sorted(linear_collapse.MODELS)
    assert by_model.loc["deep_linear", "metrics.collapse_relative_deviation"] < linear_collapse.TOLERANCE
    assert by_model.loc["relu_net", "metrics.collapse_relative_deviation"] > 1e-3
    for column in ("final_accuracy", "final_val_accuracy"):
        assert by_model[f"metrics.{column}"].between(0, 1).all()
    # The verdict's effect is the ReLU net's validation accuracy over the deep linear net's, from the logged numbers.
    gain = by_model.loc["relu_net", "metrics.final_val_accuracy"] - by_model.loc["deep_linear", "metrics.final_val_accuracy"]
    assert result.verdict.effect == pytest.approx(gain, abs=1e-12)
    # Moons are not linearly separable (noise 0.15): both linear models misclassify over 5% of their own
    # training points, and less than that again on validation (no gap to speak of): high bias.
    diagnoses = assert_diagnoses_follow_the_logged_errors(children).set_axis(children["params.model"])
    linear = by_model.loc[["deep_linear", "logistic"]]
    train_error, val_error = 1 - linear["metrics.final_accuracy"], 1 - linear["metrics.final_val_accuracy"]
    assert (train_error > 0.05).all() and (val_error <= 2 * train_error).all()
    assert diagnoses["deep_linear"] == diagnoses["logistic"] == "high bias"
    deep_id = by_model.loc["deep_linear", "run_id"]
    history = tracker.client.get_metric_history(deep_id, "val_loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2, 3]
    assert history_at(tracker, deep_id, "val_accuracy")[3] == by_model.loc["deep_linear", "metrics.final_val_accuracy"]
    models = [a.path for a in tracker.client.list_artifacts(deep_id, "model")]
    assert models == ["model/model.keras"]


def test_activation_composition_smoke_run(tracker):
    result, children = _assert_smoke_run(activation_composition.ABLATION, tracker, 3, ["compositions", "derivative_vs_k"])
    assert sorted(children["params.activation"]) == ["relu", "sigmoid", "tanh"]
    relu = children[children["params.activation"] == "relu"]
    assert relu["metrics.idempotence_error"].iloc[0] == 0.0
    # Pure arithmetic on fixed grids, no training: the outcome is not luck.
    assert result.verdict.outcome == "reproduced"
    assert "tags.diagnosis" not in children or children["tags.diagnosis"].isna().all()  # no train/validation errors
    history = tracker.client.get_metric_history(relu["run_id"].iloc[0], "range_width")
    assert sorted(m.step for m in history) == [1, 2, 3]


def test_vanishing_gradients_smoke_run(tracker):
    result, children = _assert_smoke_run(
        vanishing_gradients.ABLATION, tracker, 4, ["grad_ratio_vs_depth", "learning_curves_deepest", "grad_norm_heatmaps_glorot_uniform"]
    )
    runs = children.set_index(["params.activation", "params.depth"]).sort_index()
    assert list(runs.index) == [("relu", "2"), ("relu", "5"), ("sigmoid", "2"), ("sigmoid", "5")]
    run_id = runs.loc[("sigmoid", "5"), "run_id"]
    # Gradient norms per layer at initialization (step 0) and after the epoch (step 1).
    first = history_at(tracker, run_id, "grad_norm/dense_0")
    assert sorted(first) == [0, 1]
    last = history_at(tracker, run_id, "grad_norm/output")
    assert runs.loc[("sigmoid", "5"), "metrics.init_grad_ratio"] == pytest.approx(first[0] / last[0], rel=1e-12)
    assert {"dead_fraction/act_4", "saturated_fraction/act_0", "val_accuracy"} <= set(tracker.client.get_run(run_id).data.metrics)
    # At initialization (fixed seeds, no training involved): sigmoid's first/last ratio falls with depth
    # to below 1e-2 at depth 5, while ReLU's stays within a decade of 1 at both depths.
    ratio = runs["metrics.init_grad_ratio"]
    assert ratio[("sigmoid", "5")] < 1e-2 and ratio[("sigmoid", "5")] < ratio[("sigmoid", "2")] < 1
    assert ratio["relu"].between(vanishing_gradients.KEEPS_THRESHOLD, 10).all()
    assert (runs["metrics.init_dead_fraction"] < 0.5).all() and (runs.loc["sigmoid", "metrics.init_dead_fraction"] == 0).all()
    # The verdict's effect is sigmoid's slope of log10(ratio) per added layer, from the logged ratios.
    slope = (math.log10(ratio[("sigmoid", "5")]) - math.log10(ratio[("sigmoid", "2")])) / 3
    assert result.verdict.effect == pytest.approx(slope, rel=1e-9)
    # One epoch of five steps leaves every net near chance on MNIST-1D's ten classes: high bias, whatever the gap.
    assert (runs["metrics.final_accuracy"] < 0.5).all()
    assert set(assert_diagnoses_follow_the_logged_errors(children)) == {"high bias"}


def history_at(tracker, run_id, metric):
    """{step: value} of one metric of one run."""
    return {m.step: m.value for m in tracker.client.get_metric_history(run_id, metric)}


def test_vanishing_gradients_verdict_names_failing_initializers():
    import pandas as pd

    rows = []
    for initializer, relu_decay in (("he_normal", 0.0), ("glorot_uniform", -0.3)):
        for seed in (0, 1):
            for depth in (2, 10):
                for activation, decay in (("sigmoid", -0.6), ("relu", relu_decay)):
                    ratio = 10 ** (decay * depth + 0.01 * seed)
                    rows.append({"initializer": initializer, "activation": activation, "seed": seed, "depth": depth,
                                 "init_grad_ratio": ratio, "init_log10_grad_ratio": math.log10(ratio),
                                 "init_dead_fraction": 0.0, "final_dead_fraction": 0.1})
    verdict = vanishing_gradients.verdict(pd.DataFrame(rows))
    assert verdict.outcome == "reproduced"
    assert "not under glorot_uniform" in verdict.summary
    assert verdict.effect == pytest.approx(-0.6, abs=1e-9)
    only_glorot = pd.DataFrame([r for r in rows if r["initializer"] == "glorot_uniform"])
    assert vanishing_gradients.verdict(only_glorot).outcome == "not reproduced"
