import numpy as np
import pandas as pd
import pytest

from ablations import capacity_overfitting
from ablations.capacity_overfitting import ABLATION, PARAMS, ROUND_OFF, TASKS, normalized_mse, rise_beyond_minimum, verdict
from ablations.engine.effects import per_seed
from ablations.engine.protocol import TestSetAlreadyUsed, TestSplitGuard
from ablations.engine.runner import run_ablation
from ablations.engine.verdict import REGIME
from models.rbf import fit_rbf, rbf_predict
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)


def config(**overrides):
    values = {name: param.default for name, param in PARAMS.items()}
    values.update(seed=0)
    values.update(overrides)
    return values


def test_normalized_mse_is_the_mse_over_the_scale():
    assert normalized_mse(np.array([1.0, 3.0]), np.array([0.0, 1.0]), 2.0) == pytest.approx(1.25)


def test_training_error_falls_with_capacity_on_noisy_1d():
    cfg = config(task="rbf_1d")
    data = capacity_overfitting._rbf_dataset(cfg)
    errors = []
    for p in (1, 4, 16, 64):
        coefficients, centers, width = fit_rbf(data.x_train, data.y_train, p, 1.0)
        errors.append(normalized_mse(rbf_predict(data.x_train, coefficients, centers, width), data.y_train, 1.0))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-12


def test_rbf_data_split_keeps_the_test_split_apart():
    data = capacity_overfitting._rbf_dataset(config(task="rbf_2d"))
    assert len(data.y_train) == 50 and data.x_train.shape[1] == 2
    assert len(data.y_test) >= 100 and len(data.y_val) >= 100
    train_rows = {tuple(row) for row in data.x_train}
    assert not any(tuple(row) in train_rows for row in data.x_test)


@pytest.mark.parametrize("task", ["rbf_1d", "mlp_digits"])
def test_test_hook_scores_the_test_split_once(task):
    cfg = config(task=task, capacity=8, epochs=5, n_train_digits=50)
    guard = TestSplitGuard()
    metrics = capacity_overfitting.test(cfg, guard)
    assert np.isfinite(metrics["test_error"]) and metrics["test_error"] >= 0
    with pytest.raises(TestSetAlreadyUsed):
        capacity_overfitting.test(cfg, guard)


def _trials(train, held_out, seeds=(0, 1, 2), task="rbf_1d"):
    """Training and held-out errors at p = 2, 4, 8, ...; a seed scales them by a few percent."""
    rows = []
    for seed in seeds:
        for capacity, (t, v) in enumerate(zip(train, held_out), start=1):
            rows.append(
                {"task": task, "capacity": 2**capacity, "seed": seed, "n_train_rbf": 50,
                 "final_train_error": t * (1 + 0.01 * seed), "final_val_error": v * (1 + 0.02 * seed)}
            )
    return pd.DataFrame(rows)


def checks_of(result, task):
    return {check.part.split(" (")[0]: check for check in result.checks if check.condition == task}


EIGHT_SEEDS = tuple(range(8))
"""The fraction check is a median's (a bounded share): its order-statistic interval needs n ≥ 6 seeds at 95%
(n ≥ 8 at 97.5%, two tasks) to be bounded at all; with 3 seeds it is the whole of [0, 1]."""
FRACTION = "fraction of capacities with training error below held-out error"
U = "held-out error rises beyond its minimum: log10 of the largest capacity's error over the minimum's"


def test_verdict_reproduced_with_the_overfitting_regime_of_the_largest_capacity():
    result = verdict(_trials([0.9, 0.5, 0.2, 0.0], [1.0, 0.6, 0.3, 5.0], seeds=EIGHT_SEEDS))
    assert result.outcome == "reproduced"
    assert {check.outcome for check in result.checks} == {"reproduced"}
    checks = checks_of(result, "rbf_1d")
    # Seeds 0-7 scale training errors by 1 + 0.01·seed (1.035 on average), held-out errors by 1 + 0.02·seed.
    assert checks["training error falls"].part == "training error falls (largest − smallest capacity)"
    assert checks["training error falls"].details["capacities compared"] == "falls: p=16 − p=2; largest rise: p=8 → 16"
    assert checks["training error falls"].effect.mean == pytest.approx(-0.9 * 1.035)
    # The step that falls least: 8 → 16, -0.2 at seed 0.
    assert checks["largest mean rise between neighbouring capacities"].details["capacities compared"].endswith("p=8 → 16")
    assert checks["largest mean rise between neighbouring capacities"].effect.mean == pytest.approx(-0.2 * 1.035)
    below = checks["fraction of capacities with training error below held-out error"]
    assert (below.effect.mean, below.effect.n) == (1.0, 8) and below.role == "sanity"
    assert below.interval == (1.0, 1.0)
    # The headline: the U. Every other seed's median curve is lowest at p = 8, so each seed's rise is its error at
    # the largest capacity over its error there, log10(5.0 / 0.3), at a minimum its own noise did not pick.
    rise = checks[U]
    assert result.headline is rise and rise.role == "claim" and rise.effect.n == 8
    assert rise.effect.mean == pytest.approx(np.log10(5.0 / 0.3))
    assert rise.details["capacities compared"] == "p=16 over the other seeds' minimum: p=8 (8 seeds)"
    # The largest capacity's errors, means over seeds: it interpolates the training data.
    assert checks["training error falls"].details[REGIME] == "overfits (train 0, held-out 5.35)"
    assert "held-out error (median over seeds) 0.321 at p=8" in result.summary


def test_verdict_three_seeds_cannot_decide_identical_rises_nor_the_fraction():
    # The table above with 3 seeds: the two training-error checks still decide. Every seed's rise of held-out error
    # is the same (a seed scales a curve, not its shape), and three identical values take a median's interval, all
    # of its range; three of three seeds at a share of 1 are a sign test's 1/4 chance too.
    result = verdict(_trials([0.9, 0.5, 0.2, 0.0], [1.0, 0.6, 0.3, 5.0]))
    assert result.outcome == "inconclusive"
    assert result.where("inconclusive") == [f"rbf_1d: {U}"]
    assert result.where("reproduced") == ["rbf_1d: training error falls (largest − smallest capacity)", "rbf_1d: largest mean rise between neighbouring capacities"]
    below = checks_of(result, "rbf_1d")[FRACTION]
    assert (below.effect.mean, below.effect.n) == (1.0, 3) and below.interval == (0.0, 1.0)
    assert result.where("inconclusive", role="sanity") == [f"rbf_1d: {FRACTION}"]


def test_the_rise_is_read_from_the_minimum_the_other_seeds_put():
    # Seed 0's own curve is lowest at p = 4 (0.2); the others' at p = 8. Read at its own argmin the rise would hold
    # by construction; read at the others' minimum, seed 0's largest capacity shows a fall (0.1 against 9.0).
    frame = _trials([0.9, 0.5, 0.2, 0.0], [1.0, 0.6, 0.3, 5.0], seeds=EIGHT_SEEDS)
    zero = frame["seed"] == 0
    frame.loc[zero, "final_val_error"] = frame.loc[zero, "capacity"].map({2: 1.0, 4: 0.2, 8: 9.0, 16: 0.1}).to_numpy()
    rises, compared = rise_beyond_minimum(per_seed(frame, "capacity", "final_val_error"))
    assert rises[0] == pytest.approx(np.log10(0.1 / 9.0)) and rises[1] == pytest.approx(np.log10(5.0 / 0.3))
    assert compared == "p=16 over the other seeds' minimum: p=8 (8 seeds)"
    # A held-out error that keeps falling has its minimum at the largest capacity: no rise, no U (no effect).
    falling = verdict(_trials([0.9, 0.5, 0.2, 0.1], [1.0, 0.6, 0.3, 0.2], seeds=EIGHT_SEEDS))
    assert falling.where("no effect") == [f"rbf_1d: {U}"]
    assert checks_of(falling, "rbf_1d")[U].details["capacities compared"] == "p=16 over the other seeds' minimum: p=16 (8 seeds)"
    # One seed: nothing to read the capacities off, so no value.
    assert rise_beyond_minimum(per_seed(_trials([0.9, 0.5], [1.0, 2.0], seeds=(0,)), "capacity", "final_val_error"))[0].size == 0


def test_the_mlp_on_digits_is_a_boundary_condition_of_the_u():
    result = verdict(pd.concat([
        _trials([0.9, 0.5, 0.2, 0.0], [1.0, 0.6, 0.3, 5.0], seeds=EIGHT_SEEDS),
        _trials([0.9, 0.5, 0.1, 0.0], [0.9, 0.5, 0.2, 0.1], seeds=EIGHT_SEEDS, task="mlp_digits"),
    ]))
    # The MLP's held-out error keeps falling: no U, as declared; it shows, but the claim still holds.
    assert result.where("no effect", role="boundary") == [f"mlp_digits: {U}"]
    assert result.outcome == "reproduced"


def test_verdict_partly_reproduced_when_one_task_rises_and_not_reproduced_when_all_do():
    good = _trials([0.9, 0.5, 0.2, 0.1], [1.0, 0.6, 0.3, 5.0], seeds=EIGHT_SEEDS)
    rising = _trials([0.9, 0.5, 0.6, 0.1], [1.0, 0.6, 0.7, 5.0], task="rbf_2d", seeds=EIGHT_SEEDS)
    result = verdict(pd.concat([good, rising]))
    assert result.outcome == "partly reproduced"
    assert result.where("not reproduced") == ["rbf_2d: largest mean rise between neighbouring capacities"]
    assert result.where("inconclusive") == [] and result.where("no effect") == []
    alone = verdict(rising)
    assert alone.outcome == "partly reproduced"  # it still falls overall, and its held-out error has a U
    assert alone.where("reproduced") == [f"rbf_2d: {U}", "rbf_2d: training error falls (largest − smallest capacity)"]
    # Training error that falls but lies above the held-out error everywhere: the sanity check fails (a bug), and a
    # held-out error that only falls shows no U.
    above = verdict(_trials([0.9, 0.5, 0.2, 0.1], [0.8, 0.4, 0.1, 0.05], seeds=EIGHT_SEEDS))
    assert above.outcome == "partly reproduced"
    assert above.where("not reproduced", role="sanity") == [f"rbf_1d: {FRACTION}"] and above.where("no effect") == [f"rbf_1d: {U}"]


def test_verdict_not_reproduced_when_training_error_grows_and_overestimates_held_out_error():
    result = verdict(_trials([0.1, 0.2, 0.4, 0.8], [0.4, 0.2, 0.1, 0.05], seeds=EIGHT_SEEDS))
    assert result.outcome == "not reproduced"
    assert result.where("not reproduced") == [
        "rbf_1d: training error falls (largest − smallest capacity)", "rbf_1d: largest mean rise between neighbouring capacities"
    ]
    assert result.where("no effect") == [f"rbf_1d: {U}"] and result.where("not reproduced", role="sanity") == [f"rbf_1d: {FRACTION}"]
    assert result.checks[0].details[REGIME].startswith("does not overfit")


def test_verdict_inconclusive_when_the_seeds_disagree_or_the_grid_has_one_capacity():
    # Below held-out at every capacity for seven seeds, at none for seed 2: at 95% the median's interval over
    # eight seeds runs from the lowest share to the highest, so it straddles a half (eight that agree decide it: above).
    frame = _trials([0.9, 0.5, 0.2, 0.1], [1.0, 0.6, 0.3, 0.2], seeds=EIGHT_SEEDS)
    third = frame["seed"] == 2
    frame.loc[third, "final_val_error"] = frame.loc[third, "final_train_error"] / 2
    below = checks_of(verdict(frame), "rbf_1d")["fraction of capacities with training error below held-out error"]
    assert below.effect.mean == pytest.approx(7 / 8) and below.interval == (0.0, 1.0) and below.outcome == "inconclusive"
    # One seed whose training error rises by a step, two whose does not: unclear, not a failure.
    frame = _trials([0.9, 0.5, 0.2, 0.1], [1.0, 0.6, 0.3, 5.0])
    frame.loc[(frame["seed"] == 0) & (frame["capacity"] == 8), "final_train_error"] = 0.7
    step = checks_of(verdict(frame), "rbf_1d")["largest mean rise between neighbouring capacities"]
    assert step.details["capacities compared"].endswith("p=4 → 8") and step.outcome == "inconclusive"
    one = verdict(_trials([0.9], [1.0]))
    assert one.outcome == "inconclusive" and one.checks == () and "two capacities" in one.summary


def test_smoke_run_logs_errors_per_capacity_verdict_figures_and_one_test_score(tracker):
    result = run_ablation(ABLATION, ABLATION.resolve("smoke"), tracker=tracker, progress=False)
    runs = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(runs) == 9
    runs["diagnosis"] = assert_diagnoses_follow_the_logged_errors(runs)
    by_trial = runs.set_index(["params.task", runs["params.capacity"].astype(int)]).sort_index()
    assert sorted(by_trial.index) == sorted((task, p) for task in TASKS for p in (2, 16, 128))
    train, val = by_trial["metrics.final_train_error"], by_trial["metrics.final_val_error"]
    for task in ("rbf_1d", "rbf_2d"):
        # Least squares on more RBF features fits the training points closer, to round-off past p = n = 50.
        assert train[task].is_monotonic_decreasing and train[(task, 128)] < ROUND_OFF
    mlp = by_trial.loc["mlp_digits"]
    assert mlp["metrics.final_val_error"].between(0, 1).all() and mlp["metrics.final_train_error"].between(0, 1).all()
    # Two features or two hidden units underfit every task; 128 fit the training data and do worse
    # on held-out data by more than twice their training error.
    assert (train.xs(2, level=1) > 0.2).all()
    assert (train.xs(128, level=1) < 0.05).all() and (val.xs(128, level=1) > 2 * train.xs(128, level=1)).all()
    diagnoses = by_trial["diagnosis"]
    assert set(diagnoses.xs(2, level=1)) == {"high bias"} and set(diagnoses.xs(128, level=1)) == {"high variance"}

    parent = assert_verdict_logged(tracker, result, runs)
    # One seed: each check's effect is that seed's value. Training error falls from p = 2 to 128 on every
    # task, and lies below held-out error at every capacity but (for the MLP) where both are near chance.
    verdict_ = result.verdict
    assert len(verdict_.checks) == 12
    # One seed: the U's capacities cannot be read off other seeds, so it has no value and decides nothing.
    assert all(check.effect.n == 0 and check.outcome == "inconclusive" for check in verdict_.checks if check.part == U)
    for task in TASKS:
        checks = {check.part.split(" (")[0]: check for check in verdict_.checks if check.condition == task}
        assert checks["training error falls"].effect.mean == pytest.approx(train[(task, 128)] - train[(task, 2)], abs=1e-12)
        below = checks["fraction of capacities with training error below held-out error"]
        assert below.effect.mean == pytest.approx(float((train[task] < val[task]).mean()), abs=1e-12)
        assert below.effect.n == 1
        # p = 128 fits the training data, not the held-out data: it overfits.
        assert checks["training error falls"].details[REGIME].startswith("overfits")
    assert verdict_.headline.part == U and verdict_.headline.condition == "rbf_1d"
    tasks = set(runs["params.task"])
    assert all(np.isfinite(parent.data.metrics[f"{task}/test_error"]) for task in tasks)
    selections = assert_selected_on_validation(tracker, result, ABLATION, runs)
    assert set(selections) == tasks and all(s["selected"]["task"] == task for task, s in selections.items())
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/capacity_curves.png", "figures/rbf_1d_fits.png"}
