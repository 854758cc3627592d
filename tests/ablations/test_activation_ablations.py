"""linear_collapse, activation_composition and vanishing_gradients: math and smoke runs."""

import math

import keras
import numpy as np
import pandas as pd
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


def test_tanh_keeps_its_unit_slope_at_zero_and_loses_it_elsewhere():
    rows = activation_composition.composition_profile("tanh", 4, 5.0, 2001)
    assert all(row["max_derivative"] == pytest.approx(1.0, abs=1e-9) for row in rows)
    assert all(row["slope_at_0"] == 1.0 for row in rows)
    assert rows[-1]["mean_derivative"] < rows[0]["mean_derivative"]
    # Chain rule by hand at x = 1: (tanh^k)'(1) is the product of 1 - tanh(x_j)^2 over the iterates x_0 = 1, x_j = tanh(x_(j-1)).
    iterates = [1.0]
    for _ in range(3):
        iterates.append(np.tanh(iterates[-1]))
    expected = np.cumprod([1 - np.tanh(v) ** 2 for v in iterates])
    np.testing.assert_allclose([row["slope_at_x"] for row in rows], expected, rtol=1e-12)


def _assert_smoke_run(ablation, tracker, expected_trials, figure_names, loads_data=True):
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == expected_trials == len(result.trials)
    assert children[f"metrics.{ablation.objective}"].notna().all()
    parent = assert_verdict_logged(tracker, result, children, loads_data=loads_data)
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
    # Fixed grids of x, no data set: no dataset input.
    result, children = _assert_smoke_run(activation_composition.ABLATION, tracker, 3, ["compositions", "derivative_vs_k", "slope_decay_rate"], loads_data=False)
    assert sorted(children["params.activation"]) == ["relu", "sigmoid", "tanh"]
    relu = children[children["params.activation"] == "relu"]
    assert relu["metrics.idempotence_error"].iloc[0] == 0.0
    # Pure arithmetic on fixed grids, no training: the outcome is not luck. ReLU is idempotent and the sigmoid
    # squashes; tanh, an extension, loses its slope away from 0 (at 0 it keeps tanh'(0) = 1, the stated exception).
    assert result.verdict.outcome == "reproduced"
    assert result.verdict.where("reproduced", role="extension") == ["tanh: range narrows: width of f^3 / f", "tanh: slope vanishes: slope of f^3 / f at x = 1"]
    sigmoid = children[children["params.activation"] == "sigmoid"]
    assert result.verdict.effect == sigmoid["metrics.max_derivative_ratio"].iloc[0] < 1 / 16
    assert "tags.diagnosis" not in children or children["tags.diagnosis"].isna().all()  # no train/validation errors
    history = tracker.client.get_metric_history(relu["run_id"].iloc[0], "range_width")
    assert sorted(m.step for m in history) == [1, 2, 3]


def test_vanishing_gradients_smoke_run(tracker):
    result, children = _assert_smoke_run(
        vanishing_gradients.ABLATION, tracker, 4,
        ["signal_ratio_vs_depth", "weight_grad_ratio_vs_depth", "learning_curves_deepest", "signal_norm_heatmaps_glorot_uniform"],
    )
    runs = children.set_index(["params.activation", "params.depth"]).sort_index()
    assert list(runs.index) == [("relu", "2"), ("relu", "5"), ("sigmoid", "2"), ("sigmoid", "5")]
    run_id = runs.loc[("sigmoid", "5"), "run_id"]
    # The backpropagated signal per pre-activation, and the weight gradients beside it, at initialization (step 0) and after the epoch.
    first, last = history_at(tracker, run_id, "signal_norm/act_0"), history_at(tracker, run_id, "signal_norm/output")
    assert sorted(first) == [0, 1]
    assert runs.loc[("sigmoid", "5"), "metrics.init_signal_ratio"] == pytest.approx(first[0] / last[0], rel=1e-12)
    weight_first, weight_last = history_at(tracker, run_id, "grad_norm/dense_0"), history_at(tracker, run_id, "grad_norm/output")
    assert runs.loc[("sigmoid", "5"), "metrics.init_grad_ratio"] == pytest.approx(weight_first[0] / weight_last[0], rel=1e-12)
    assert {"dead_fraction/act_4", "saturated_fraction/act_0", "signal_norm/act_4", "val_accuracy"} <= set(tracker.client.get_run(run_id).data.metrics)
    # At initialization (fixed seeds, no training involved): sigmoid's signal ratio falls with depth
    # to below 1e-2 at depth 5, while ReLU's stays within a decade of 1 at both depths.
    ratio = runs["metrics.init_signal_ratio"]
    assert ratio[("sigmoid", "5")] < 1e-2 and ratio[("sigmoid", "5")] < ratio[("sigmoid", "2")] < 1
    assert ratio["relu"].between(0.1, 10).all()
    assert (runs["metrics.init_dead_fraction"] < 0.5).all() and (runs.loc["sigmoid", "metrics.init_dead_fraction"] == 0).all()
    # The verdict's effect is sigmoid's slope of log10(signal ratio) per added layer, from the logged ratios;
    # ReLU's slope is judged beside it, and what the vanishing costs at the deepest net.
    slope = (math.log10(ratio[("sigmoid", "5")]) - math.log10(ratio[("sigmoid", "2")])) / 3
    assert result.verdict.effect == pytest.approx(slope, rel=1e-9)
    assert [(c.condition, c.part) for c in result.verdict.checks] == [
        ("glorot_uniform", "sigmoid vanishes: log10 signal ratio per layer"),
        ("glorot_uniform", "relu keeps it: log10 signal ratio per layer"),
        ("glorot_uniform", "sigmoid trains worse at depth 5: final training loss, sigmoid − relu"),
    ]
    relu_slope = (math.log10(ratio[("relu", "5")]) - math.log10(ratio[("relu", "2")])) / 3
    assert result.verdict.checks[1].effect.mean == pytest.approx(relu_slope, rel=1e-9)
    gap = runs.loc[("sigmoid", "5"), "metrics.final_loss"] - runs.loc[("relu", "5"), "metrics.final_loss"]
    assert result.verdict.checks[2].effect.mean == pytest.approx(gap, rel=1e-9)
    # One epoch of five steps leaves every net near chance on MNIST-1D's ten classes: high bias, whatever the gap.
    assert (runs["metrics.final_accuracy"] < 0.5).all()
    assert set(assert_diagnoses_follow_the_logged_errors(children)) == {"high bias"}


def history_at(tracker, run_id, metric):
    """{step: value} of one metric of one run."""
    return {m.step: m.value for m in tracker.client.get_metric_history(run_id, metric)}


# ------------------------------------------------------------------ verdicts on synthetic tables


def _gradient_table(slopes: dict[str, dict[str, list[float]]], depths=(2, 5, 10), losses: dict[str, float] | None = None) -> pd.DataFrame:
    """Trials whose log10 first/output signal ratio is ``slope * depth`` plus an offset of the seed's own, per initializer and activation.

    The weight gradients' ratio is flat (0 per layer) for every activation, as a too-small ReLU
    initialization leaves it: the verdict must read the signal. ``losses``: final training loss per activation.
    """
    losses = {"sigmoid": 2.3, "relu": 1.3, "leaky_relu": 1.3} | (losses or {})
    rows = []
    for initializer, by_activation in slopes.items():
        for activation, per_seed in by_activation.items():
            for seed, slope in enumerate(per_seed):
                for depth in depths:
                    log_ratio = slope * depth + 0.7 * seed  # the offset cancels within the seed's fit
                    rows.append({"initializer": initializer, "activation": activation, "seed": seed, "depth": depth,
                                 "init_signal_ratio": 10**log_ratio, "init_log10_signal_ratio": log_ratio,
                                 "init_grad_ratio": 1.0, "init_log10_grad_ratio": 0.01 * seed,
                                 # a seed moves sigmoid's loss a little more than the others': the gaps spread
                                 "final_loss": losses.get(activation, 2.0) + (0.015 if activation == "sigmoid" else 0.01) * seed,
                                 "init_dead_fraction": 0.1, "final_dead_fraction": 0.2, "init_saturated_fraction": 0.0})
    return pd.DataFrame(rows)


KEEPS = {"relu": [0.01, 0.0, -0.01], "leaky_relu": [0.0, 0.01, 0.0]}
VANISHES = [-0.6, -0.7, -0.65]


def test_vanishing_gradients_reproduced_per_seed_slopes_under_each_initializer():
    trials = _gradient_table({"he_normal": {"sigmoid": VANISHES, **KEEPS}, "glorot_uniform": {"sigmoid": [-0.49, -0.5, -0.51], **KEEPS}})
    verdict = vanishing_gradients.verdict(trials)
    assert verdict.outcome == "reproduced"
    # Keras's default initializer is the headline; each seed's slope is fitted within the seed (offsets cancel).
    assert verdict.headline.condition == "glorot_uniform" and verdict.headline.effect.mean == pytest.approx(-0.5)
    assert verdict.headline.effect.values == pytest.approx((-0.49, -0.5, -0.51))
    assert verdict.effect == pytest.approx(-0.5)
    # Per initializer: sigmoid vanishes, relu and leaky_relu keep it, sigmoid trains worse (loss 2.3 against 1.3).
    assert len(verdict.checks) == 8 and {c.condition for c in verdict.checks} == {"he_normal", "glorot_uniform"}
    trains = [c for c in verdict.checks if "trains worse" in c.part]
    assert [c.effect.mean for c in trains] == [pytest.approx(1.005)] * 2  # 1.0, plus 0.005 per seed (0, 1, 2)
    assert verdict.checks[0].details["dead units at deepest (init → end)"] == "10.0% → 20.0%"
    assert verdict.checks[0].details["weight-gradient ratio per layer"] == "+0.000"
    assert "The whole claim holds under glorot_uniform, he_normal." in verdict.notes


def test_vanishing_gradients_partly_reproduced_names_where_relu_loses_it():
    # Under "standard" ReLU's weight-gradient ratio is as flat as under he_normal, but its signal dies: a finding.
    trials = _gradient_table({"he_normal": {"sigmoid": VANISHES, **KEEPS}, "standard": {"sigmoid": VANISHES, "relu": [-0.3, -0.32, -0.28]}})
    verdict = vanishing_gradients.verdict(trials)
    assert verdict.outcome == "partly reproduced"
    assert verdict.where("not reproduced") == ["standard: relu keeps it: log10 signal ratio per layer"]
    assert verdict.headline.condition == "he_normal"  # no glorot_uniform: the first initializer
    assert "The whole claim holds under he_normal. Some part does not under standard." in verdict.notes


def test_vanishing_gradients_regions_of_vanishing_and_keeping_are_disjoint():
    # tanh's signal falling by 0.02 decades per layer is neither vanishing (below -0.05) nor a contradiction of it:
    # within ± the smallest effect of 0, it shows no effect; ReLU's -0.02 keeps it.
    trials = _gradient_table({"glorot_uniform": {"sigmoid": VANISHES, "tanh": [-0.02, -0.021, -0.019], "relu": [-0.02, -0.021, -0.019]}})
    verdict = vanishing_gradients.verdict(trials)
    outcomes = {c.part.split(":")[0]: c.outcome for c in verdict.checks}
    assert outcomes == {"sigmoid vanishes": "reproduced", "tanh vanishes": "no effect", "relu keeps it": "reproduced",
                        "sigmoid trains worse at depth 10": "reproduced"}
    # Where no net trains (both at chance), sigmoid is no worse: a loss gap of 0 to 0.01, within ± the smallest
    # effect: no effect, beside what held.
    at_chance = {"relu": 2.3, "leaky_relu": 2.3}
    stuck = vanishing_gradients.verdict(_gradient_table({"standard": {"sigmoid": VANISHES, **KEEPS}}, losses=at_chance))
    assert stuck.where("no effect") == ["standard: sigmoid trains worse at depth 10: final training loss, sigmoid − relu"]


def test_vanishing_gradients_not_reproduced_and_inconclusive():
    wrong = _gradient_table({"glorot_uniform": {"sigmoid": [0.1, 0.12, 0.11], "relu": [-0.3, -0.32, -0.28]}}, losses={"sigmoid": 1.0})
    assert vanishing_gradients.verdict(wrong).outcome == "not reproduced"
    # Two seeds that disagree: every interval straddles its threshold.
    unsure = _gradient_table({"glorot_uniform": {"sigmoid": [-0.6, 0.1], "relu": [-0.2, 0.1]}}, losses={"sigmoid": 1.3})
    unsure.loc[(unsure["activation"] == "sigmoid") & (unsure["seed"] == 1), "final_loss"] = 2.3
    assert vanishing_gradients.verdict(unsure).outcome == "inconclusive"
    no_sigmoid = vanishing_gradients.verdict(_gradient_table({"glorot_uniform": {"relu": [0.0, 0.01]}}))
    assert no_sigmoid.outcome == "inconclusive" and not no_sigmoid.checks and "needs sigmoid" in no_sigmoid.summary
    one_depth = vanishing_gradients.verdict(_gradient_table({"glorot_uniform": {"sigmoid": VANISHES, **KEEPS}}, depths=(5,)))
    assert one_depth.outcome == "inconclusive" and not one_depth.checks
    # Sigmoid's signal ratio not finite anywhere (an output gradient of 0): nothing to judge, and no headline to cite.
    no_ratio = _gradient_table({"glorot_uniform": {"sigmoid": VANISHES, **KEEPS}})
    no_ratio.loc[no_ratio["activation"] == "sigmoid", "init_log10_signal_ratio"] = np.nan
    unmeasured = vanishing_gradients.verdict(no_ratio)
    assert unmeasured.outcome == "inconclusive" and not unmeasured.checks and "with finite signal ratios" in unmeasured.summary


def _collapse_table(accuracy: dict[str, dict[str, list[float]]], deviation: float = 1e-7, depths=(5,)) -> pd.DataFrame:
    """Trials of the three models per task and depth: their validation accuracy per seed, the deep linear net's deviation."""
    rows = []
    for task, by_model in accuracy.items():
        for depth in depths:
            for model, per_seed in by_model.items():
                for seed, value in enumerate(per_seed):
                    relative = deviation if model == "deep_linear" else 0.3 if model == "relu_net" else 0.0
                    rows.append({"data": task, "depth": depth, "model": model, "seed": seed,
                                 "final_val_accuracy": value, "collapse_relative_deviation": relative * (1 + 0.1 * seed)})
    return pd.DataFrame(rows)


LINEAR_TASK = {"logistic": [0.50, 0.52, 0.48], "deep_linear": [0.50, 0.51, 0.49], "relu_net": [0.95, 0.96, 0.94]}
# The same task over eight seeds (the first three as above): deep linear − logistic stays within ±0.01 per seed,
# the ReLU net gains 0.45 on every seed.
LINEAR_TASK_8_SEEDS = {
    "logistic": [0.50, 0.52, 0.48, 0.51, 0.49, 0.50, 0.53, 0.47],
    "deep_linear": [0.50, 0.51, 0.49, 0.50, 0.50, 0.51, 0.52, 0.48],
    "relu_net": [0.95, 0.96, 0.94, 0.95, 0.95, 0.96, 0.97, 0.93],
}


def test_linear_collapse_reproduced_with_three_checks_per_task():
    verdict = linear_collapse.verdict(_collapse_table({"circles": LINEAR_TASK_8_SEEDS, "xor": LINEAR_TASK_8_SEEDS}))
    assert verdict.outcome == "reproduced"
    assert [c.condition for c in verdict.checks] == ["circles"] * 3 + ["xor"] * 3
    assert {c.outcome for c in verdict.checks} == {"reproduced"}
    # The collapse identity holds by construction: a sanity check, never among the claim's.
    assert [c.role for c in verdict.checks[:3]] == ["sanity", "claim", "claim"]
    # The headline: the ReLU net's gain over the deep linear net on the first task, paired by seed.
    assert verdict.headline.part == "ReLU net − deep linear val accuracy" and verdict.effect == pytest.approx(0.45)
    assert verdict.checks[0].details["logistic val acc"] == "0.500 ± 0.020"


def test_linear_collapse_three_seeds_decide_no_accuracy_difference():
    # Accuracy differences are discrete: their median's interval, simultaneous over the two tasks (97.5% each),
    # needs 7 seeds to be bounded at all. With three, every claim check is inconclusive; the exact identity still holds.
    verdict = linear_collapse.verdict(_collapse_table({"circles": LINEAR_TASK, "xor": LINEAR_TASK}))
    assert verdict.outcome == "inconclusive"
    assert {check.outcome for check in verdict.checks if check.role == "claim"} == {"inconclusive"}
    same = verdict.checks[1]
    assert same.level == pytest.approx(0.975) and same.interval == (-1.0, 1.0)
    assert verdict.where("reproduced", role="sanity") == [f"{task}: deep linear = composed map: relative deviation" for task in ("circles", "xor")]


def test_linear_collapse_equal_accuracies_on_every_seed_decide_only_with_enough_seeds():
    # Deep linear and logistic regression often draw the same boundary: the same accuracy on every seed. A t-interval
    # would have zero width and decide with three seeds; the median's decides with eight, and not with three.
    def same_on(seeds: int) -> dict[str, list[float]]:
        return {"logistic": [0.86] * seeds, "deep_linear": [0.86] * seeds, "relu_net": [0.97 + 0.001 * s for s in range(seeds)]}

    three = linear_collapse.verdict(_collapse_table({"moons": same_on(3)}))
    assert three.checks[1].outcome == "inconclusive" and three.checks[1].interval == (-1.0, 1.0)
    eight = linear_collapse.verdict(_collapse_table({"moons": same_on(8)}))
    assert eight.checks[1].interval == (0.0, 0.0) and eight.outcome == "reproduced"


def test_linear_collapse_partly_reproduced_names_the_task_where_deep_linear_wins():
    beats = {**LINEAR_TASK_8_SEEDS, "deep_linear": [acc + 0.2 for acc in LINEAR_TASK_8_SEEDS["logistic"]]}
    verdict = linear_collapse.verdict(_collapse_table({"circles": LINEAR_TASK_8_SEEDS, "xor": beats}))
    assert verdict.outcome == "partly reproduced"
    assert verdict.where("not reproduced") == ["xor: deep linear − logistic val accuracy, within ±3 points"]


def test_linear_collapse_a_badly_trained_deep_linear_net_fails_the_equivalence():
    # Twenty points below logistic regression on every seed: a one-sided "no better" would pass it; "within ±3 points" fails it.
    worse = {**LINEAR_TASK_8_SEEDS, "deep_linear": [acc - 0.2 for acc in LINEAR_TASK_8_SEEDS["logistic"]]}
    verdict = linear_collapse.verdict(_collapse_table({"circles": worse}))
    assert verdict.where("not reproduced") == ["circles: deep linear − logistic val accuracy, within ±3 points"]


def test_linear_collapse_not_reproduced_and_inconclusive():
    # A deep "linear" net far from its composed map, beating logistic regression, beaten by nothing.
    nonlinear = {"logistic": [0.5] * 8, "deep_linear": [0.9 + 0.01 * s for s in range(8)], "relu_net": [0.9 + 0.01 * s for s in range(8)]}
    assert linear_collapse.verdict(_collapse_table({"circles": nonlinear}, deviation=0.2)).outcome == "not reproduced"
    missing = linear_collapse.verdict(_collapse_table({"circles": {k: v for k, v in LINEAR_TASK.items() if k != "logistic"}}))
    assert missing.outcome == "inconclusive" and not missing.checks and "needs" in missing.summary
    # Depths are conditions of their own when the grid has several.
    deep = linear_collapse.verdict(_collapse_table({"moons": LINEAR_TASK}, depths=(2, 10)))
    assert [c.condition for c in deep.checks[::3]] == ["moons, depth=2", "moons, depth=10"]


def _composition_row(activation: str, idempotence: float, range_ratio: float, slope_ratio: float) -> dict:
    return {"activation": activation, "max_k": 3, "seed": 0, "idempotence_error": idempotence,
            "range_width_k1": 1.0, "range_width_kmax": range_ratio, "range_ratio": range_ratio,
            "max_derivative_k1": 0.25, "max_derivative_kmax": 0.25 * slope_ratio, "max_derivative_ratio": slope_ratio,
            "slope_at_x_k1": 0.2, "slope_at_x_kmax": 0.2 * slope_ratio, "slope_at_x_ratio": slope_ratio, "slope_at_0_kmax": 1.0}


def test_activation_composition_judges_the_sigmoid_and_tanh_as_an_extension_away_from_zero():
    rows = []
    for name in ("linear", "relu", "relu6", "sigmoid", "tanh"):
        config = {"activation": name, "max_k": 6, "x_range": 5.0, "points": 2001}
        rows.append({**config, "seed": 0, **activation_composition.trial(config, lambda metrics, step: None)})
    verdict = activation_composition.verdict(pd.DataFrame(rows))
    # The lecture's claim is the sigmoid's: range and largest slope on the interval both fall.
    assert verdict.outcome == "reproduced"
    assert verdict.where("reproduced") == ["sigmoid: range narrows: width of f^6 / f", "sigmoid: slope vanishes: max slope of f^6 / f"]
    # tanh, an extension, is judged where its slope does vanish (x = 1), never at 0, whose unit slope is stated as the exception.
    assert verdict.where("reproduced", role="extension") == [
        "tanh: range narrows: width of f^6 / f", "tanh: slope vanishes: slope of f^6 / f at x = 1",
    ]
    assert "(tanh^6)'(0) = 1" in verdict.notes and "Extensions (beyond the lecture's claim; never decide)" in verdict.summary
    # Idempotence holds by construction: sanity checks, shown and held, never among the claim's checks.
    assert verdict.where("reproduced", role="sanity") == ["linear: f∘f = f: max |f∘f − f|", "relu: f∘f = f: max |f∘f − f|"]
    assert not verdict.sanity_failures
    assert verdict.headline.condition == "sigmoid" and verdict.effect < 1e-2
    assert "relu6 0" in verdict.notes  # idempotent too, reported and not judged


def test_activation_composition_synthetic_outcomes():
    squash = [_composition_row("sigmoid", 0.2, 0.05, 0.06), _composition_row("tanh", 0.1, 0.5, 0.4)]
    assert activation_composition.verdict(pd.DataFrame([_composition_row("relu", 0.0, 1.0, 1.0), *squash])).outcome == "reproduced"
    # No squashing, no idempotence: every check on the wrong side.
    broken = [_composition_row("relu", 0.1, 1.0, 1.0), _composition_row("sigmoid", 0.2, 1.0, 1.2)]
    assert activation_composition.verdict(pd.DataFrame(broken)).outcome == "not reproduced"
    only_relu = activation_composition.verdict(pd.DataFrame([_composition_row("relu", 0.0, 1.0, 1.0)]))
    assert only_relu.outcome == "inconclusive" and not only_relu.checks and "needs relu and sigmoid" in only_relu.summary
    # A failing extension never decides: tanh's slope not falling leaves the sigmoid's claim reproduced.
    flat_tanh = [_composition_row("relu", 0.0, 1.0, 1.0), squash[0], _composition_row("tanh", 0.1, 0.5, 1.3)]
    verdict = activation_composition.verdict(pd.DataFrame(flat_tanh))
    assert verdict.outcome == "reproduced" and verdict.where("not reproduced", role="extension") == ["tanh: slope vanishes: slope of f^3 / f at x = 1"]
    # One composition cannot show squashing: nothing is judged rather than a ratio of 1 read as a failure.
    once = pd.DataFrame([_composition_row("relu", 0.0, 1.0, 1.0), *squash]).assign(max_k=1)
    assert activation_composition.verdict(once).outcome == "inconclusive"
