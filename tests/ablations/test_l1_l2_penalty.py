import math

import keras
import numpy as np
import pandas as pd
import pytest

from ablations import l1_l2_penalty
from ablations.engine.protocol import TestSetAlreadyUsed, TestSplitGuard, kfold_indices, select_per_seed
from ablations.engine.train.folds import fold_masks
from ablations.engine.train import StackTraining, fit_stack, member_statistics
from models.stacked import stack_models
from ablations.engine.runner import run_ablation
from ablations.engine.verdict import REGIME, regime
from ablations.l1_l2_penalty import (
    ABLATION,
    BIAS_RISE,
    LAMBDA_GRID,
    PARAMS,
    build_member,
    keras_penalty,
    penalty_by_hand,
    verdict,
)
from models.mlp import build_mlp
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)

N, FEATURES, CLASSES = 24, 5, 3


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, FEATURES)).astype("float32"), rng.integers(0, CLASSES, N)


def config(**overrides):
    values = {name: param.default for name, param in PARAMS.items()}
    values.update(width=8, depth=2, seed=0, learning_rate=0.05)
    values.update(overrides)
    return values


def keras_steps(model, x, y, steps, learning_rate):
    """What Keras itself does: compile with Adam and mean cross-entropy, train on the full batch."""
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    return [float(model.train_on_batch(x, y)) for _ in range(steps)]


def test_the_lecture_grid_is_the_quick_profile():
    assert LAMBDA_GRID == (0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10)
    assert ABLATION.resolve("quick").grid["lambda"] == list(LAMBDA_GRID)


def test_lambda_zero_is_no_regularizer(batch):
    x, y = batch
    zero = build_member(config(penalty="l2", **{"lambda": 0.0}), FEATURES, CLASSES, N)
    plain = build_mlp((FEATURES,), CLASSES, depth=2, width=8, activation="relu", seed=0)
    assert all(layer.kernel_regularizer is None for layer in zero.layers if isinstance(layer, keras.layers.Dense))
    assert zero.losses == []
    for a, b in zip(zero.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    loss_zero, loss_plain = keras_steps(zero, x, y, 1, 0.05), keras_steps(plain, x, y, 1, 0.05)
    assert loss_zero == loss_plain
    for a, b in zip(zero.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_lambda_zero_member_of_a_stack_trains_as_the_plain_net(batch):
    x, y = batch
    members = [build_member(config(penalty=p, **{"lambda": lam}), FEATURES, CLASSES, N) for p, lam in (("l2", 0.0), ("l1", 0.5), ("l2", 0.5))]
    stack = stack_models(members, "relu")
    fit_stack(stack, x, y, np.ones((3, N)), training=StackTraining(epochs=3, learning_rate=0.05))
    plain = build_mlp((FEATURES,), CLASSES, depth=2, width=8, activation="relu", seed=0)
    keras_steps(plain, x, y, 3, 0.05)
    for a, b in zip(stack.member_weights(0), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)
    # The penalized members moved elsewhere: the stack does not leak penalties across members.
    assert not np.allclose(stack.member_weights(1)[0], stack.member_weights(0)[0], atol=1e-3)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_stacked_training_matches_keras_fit_with_the_regularizer(batch, penalty):
    x, y = batch
    member = build_member(config(penalty=penalty, **{"lambda": 0.05}), FEATURES, CLASSES, N)
    reference = build_member(config(penalty=penalty, **{"lambda": 0.05}), FEATURES, CLASSES, N)
    stack = stack_models([member], "relu")
    fit_stack(stack, x, y, np.ones((1, N)), training=StackTraining(epochs=4, learning_rate=0.05))
    keras_steps(reference, x, y, 4, 0.05)
    for a, b in zip(stack.member_weights(0), reference.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # Keras reports a step's loss before its update: the 5th is the objective after 4 steps.
    fifth = float(reference.train_on_batch(x, y))
    stats = member_statistics(stack, x, y, np.ones((1, N)), None, 0.01)
    np.testing.assert_allclose(stats["objective"][0], fifth, rtol=1e-5)
    assert stats["penalty_term"][0] > 0


def test_logged_penalties_are_lambda_times_sums_over_kernels_only(batch):
    x, y = batch
    members = [build_member(config(penalty=p, **{"lambda": lam}), FEATURES, CLASSES, N) for p, lam in (("l1", 0.3), ("l2", 0.7), ("l2", 0.0))]
    stack = stack_models(members, "relu")
    fit_stack(stack, x, y, np.ones((3, N)), training=StackTraining(epochs=5, learning_rate=0.05))
    logged = member_statistics(stack, x, y, np.ones((3, N)), None, 0.01)["penalty_term"]
    weights = stack.all_member_weights()
    kernels = [np.concatenate([w.ravel() for w in member[0::2]]).astype(np.float64) for member in weights]
    # The default summed J hands Keras λ/n (n = N examples here).
    np.testing.assert_allclose(logged[0], 0.3 / N * np.abs(kernels[0]).sum(), rtol=1e-6)
    np.testing.assert_allclose(logged[1], 0.7 / N * np.square(kernels[1]).sum(), rtol=1e-6)
    assert logged[2] == 0.0
    for m, model in enumerate(members[:2]):
        model.set_weights(weights[m])
        keras_penalty = sum(float(loss) for loss in model.losses)
        np.testing.assert_allclose(keras_penalty, logged[m], rtol=1e-6)
        np.testing.assert_allclose(penalty_by_hand(model), logged[m], rtol=1e-6)
    # Biases are not penalized: changing them leaves the penalty as it was.
    model = members[1]
    model.set_weights([w + 5.0 if i % 2 else w for i, w in enumerate(weights[1])])
    np.testing.assert_allclose(sum(float(loss) for loss in model.losses), logged[1], rtol=1e-6)


def test_stack_pads_narrow_members_without_changing_them(batch):
    x, y = batch
    members = [build_mlp((FEATURES,), CLASSES, depth=1, width=w, seed=w) for w in (2, 7)]
    stack = stack_models(members, "relu")
    logits = stack.logits(x).numpy()
    for m, model in enumerate(members):
        probabilities = keras.ops.convert_to_numpy(model(x))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits[m])), probabilities, atol=1e-6)
    fit_stack(stack, x, y, np.ones((2, N)), training=StackTraining(epochs=5, learning_rate=0.05))
    # The narrow member's padding (units 2..6) never moves off zero.
    assert np.all(stack.kernels[0].numpy()[0, :, 2:] == 0) and np.all(stack.kernels[1].numpy()[0, 2:, :] == 0)
    assert [w.shape for w in stack.member_weights(0)] == [w.shape for w in members[0].get_weights()]


def test_held_out_fold_never_enters_a_members_training(batch):
    x, y = batch
    train_masks, _ = fold_masks(kfold_indices(N, 3, seed=1), N)
    relabelled = y.copy()
    held_out = train_masks[0] == 0
    relabelled[held_out] = (y[held_out] + 1) % CLASSES
    trained = []
    for labels in (y, relabelled):
        members = [build_member(config(penalty="l2", **{"lambda": 0.01}), FEATURES, CLASSES, N) for _ in range(3)]
        stack = stack_models(members, "relu")
        fit_stack(stack, x, labels, train_masks, training=StackTraining(epochs=5, learning_rate=0.05))
        trained.append(stack.all_member_weights())
    # Fold 0's member is blind to its held-out labels; the others trained on some of them.
    for a, b in zip(trained[0][0], trained[1][0]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(trained[0][1][0], trained[1][1][0])


def test_stack_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="dropout_0"):
        stack_models([build_mlp((FEATURES,), CLASSES, depth=1, width=4, keep_prob=0.5)], "relu")
    with pytest.raises(ValueError, match="penalizes its biases"):
        stack_models([build_mlp((FEATURES,), CLASSES, depth=1, width=4, bias_l2=0.1)], "relu")
    with pytest.raises(ValueError, match="one depth"):
        stack_models([build_mlp((FEATURES,), CLASSES, depth=d, width=4) for d in (1, 2)], "relu")


def test_sum_convention_divides_lambda_by_the_examples_trained_on():
    assert keras_penalty(config(data_loss="mean", penalty="l2", **{"lambda": 10.0}), 100) == (0.0, 10.0)
    l1, l2 = keras_penalty(config(data_loss="sum", penalty="l1", **{"lambda": 10.0}), 100)
    assert l1 == pytest.approx(0.1) and l2 == 0.0
    # λ = 0 is one net under either penalty.
    assert keras_penalty(config(penalty="l1", **{"lambda": 0.0}), 100) == keras_penalty(config(penalty="l2", **{"lambda": 0.0}), 100) == (0.0, 0.0)


def test_the_lectures_summed_j_is_the_default_everywhere():
    assert PARAMS["data_loss"].default == "sum"
    for profile in ("smoke", "quick", "full"):
        resolved = ABLATION.resolve(profile)
        assert resolved.fixed["data_loss"] == "sum" and "data_loss" not in resolved.grid, profile
    # The averaged convention stays one --set away, and both make a grid axis.
    assert ABLATION.resolve("quick", {"data_loss": "mean"}).fixed["data_loss"] == "mean"
    assert ABLATION.resolve("quick", {"data_loss": "mean,sum"}).grid["data_loss"] == ["mean", "sum"]


def test_test_hook_scores_the_test_split_once():
    cfg = config(n_train=40, epochs=3, folds=2, width=8, **{"lambda": 0.01})
    guard = TestSplitGuard()
    metrics = l1_l2_penalty.test(cfg, guard)
    assert 0.0 <= metrics["test_error"] <= 1.0 and metrics["test_loss"] > 0
    with pytest.raises(TestSetAlreadyUsed):
        l1_l2_penalty.test(cfg, guard)


LAMBDAS = (0.0, 0.01, 1.0, 10.0)
# Per metric and λ, the means of a net that bears the whole claim out: it overfits at λ = 0
# (train error 0, CV error 0.10), CV selects λ = 1 (lower cost), which is also better on the
# validation split (held-out cost and error), and λ = 10 adds bias.
HOLDS = {
    "final_val_loss": {0.0: 0.60, 0.01: 0.40, 1.0: 0.30, 10.0: 1.20},
    "final_val_error": {0.0: 0.10, 0.01: 0.09, 1.0: 0.08, 10.0: 0.30},
    "final_holdout_loss": {0.0: 0.55, 0.01: 0.42, 1.0: 0.32, 10.0: 1.10},
    "final_holdout_error": {0.0: 0.11, 0.01: 0.10, 1.0: 0.09, 10.0: 0.31},
    "final_train_error": {0.0: 0.00, 0.01: 0.00, 1.0: 0.01, 10.0: 0.20},
    "final_train_loss": {0.0: 0.00, 0.01: 0.01, 1.0: 0.05, 10.0: 0.90},
    "final_near_zero_fraction": {0.0: 0.04, 0.01: 0.20, 1.0: 0.30, 10.0: 0.50},
    "final_full_near_zero_fraction": {0.0: 0.04, 0.01: 0.20, 1.0: 0.30, 10.0: 0.50},
}
SPARSITY = ("final_near_zero_fraction", "final_full_near_zero_fraction")
L1_SPARSER = 0.4
"""How much more of L1's weights are near zero than L2's at each λ > 0, in ``HOLDS``."""


def _trials(changes=None, seeds=(0, 1, 2), noise=0.002, data_loss="sum", lambdas=LAMBDAS) -> pd.DataFrame:
    """A trial table: ``HOLDS`` with ``changes`` ({(penalty, metric): {λ: mean}}), plus per-seed noise at λ > 0.

    Seed s moves every metric at λ > 0 but the training loss by ``noise * s`` (sparsity: L1's only),
    so effects paired by seed have a spread; a list gives each seed's shift instead.
    """
    changes = changes or {}
    factors = dict(zip(seeds, noise if isinstance(noise, list) else [noise * s for s in seeds]))
    rows = []
    for penalty in ("l1", "l2"):
        for lam in lambdas:
            for seed in seeds:
                row = {
                    "penalty": penalty, "lambda": lam, "seed": seed, "data_loss": data_loss, "zero_tolerance": 0.01,
                    "final_distinct_predictions": 10.0, "penalty_mismatch": 1e-8,
                }
                for metric, curve in HOLDS.items():
                    value = changes.get((penalty, metric), curve)[lam]
                    if metric in SPARSITY and penalty == "l1" and lam > 0:
                        value += L1_SPARSER
                    # The training loss stays put, so the cost gap moves with the CV cost.
                    moved = lam > 0 and metric != "final_train_loss" and (metric not in SPARSITY or penalty == "l1")
                    row[metric] = value + (factors[seed] if moved else 0.0)
                rows.append(row)
    return pd.DataFrame(rows)


def _both(metric, curve) -> dict:
    return {(penalty, metric): curve for penalty in ("l1", "l2")}


def _outcomes(result) -> dict[tuple[str, str], str]:
    return {(check.condition, check.part.split(" (")[0]): check.outcome for check in result.checks}


def test_verdict_reproduced_reads_each_check_where_the_claim_speaks():
    result = verdict(_trials())
    assert result.outcome == "reproduced"
    outcomes = _outcomes(result)
    assert set(outcomes.values()) == {"reproduced"} and len(outcomes) == 9
    assert ("L1 vs L2", "L1 sparser than L2, each at its selected λ") in outcomes
    # The headline: L2's validation-split misclassification at the λ each seed's CV selects (λ = 1) minus at λ = 0.
    assert (result.headline.condition, result.headline.part) == ("L2", "held-out error lower at the selected λ")
    assert result.effect == pytest.approx(0.09 + 0.002 - 0.11)
    rows = {(row["condition"], row["part"]): row for row in result.table}
    selected = rows[("L2", "held-out error lower at the selected λ")]
    assert selected["at λ"] == "1 (seeds 0, 1, 2), by CV cost" and selected["means compared"] == "λ = 0: 0.110, selected: 0.092"
    assert rows[("L1", "training error up at the largest λ")]["at λ"] == "10"
    assert rows[("L1 vs L2", "L1 sparser than L2, each at its selected λ (share of |w| < 0.01)")]["at λ"] == (
        "L1: 1 (seeds 0, 1, 2); L2: 1 (seeds 0, 1, 2)"
    )
    assert all(row[REGIME] == "overfits (train 0.000, held-out 0.100)" for row in result.table)
    assert "L2: CV selects λ = 1 (seeds 0, 1, 2)" in result.summary and "J summed over the n examples" in result.summary


def test_each_seed_selects_its_own_lambda_and_is_scored_where_it_did_not_select():
    # Seed 1's folds favour λ = 0.01; the others λ = 1. Each is scored on the validation split at its own choice.
    trials = _trials()
    trials.loc[(trials["seed"] == 1) & (trials["lambda"] == 0.01), "final_val_loss"] = 0.1
    result = verdict(trials)
    error = next(c for c in result.checks if c.condition == "L2" and c.part == "held-out error lower at the selected λ")
    assert error.details["at λ"] == "0.01 (seed 1), 1 (seeds 0, 2), by CV cost"
    assert sorted(error.effect.values) == pytest.approx(sorted([0.09 - 0.11, 0.10 + 0.002 - 0.11, 0.09 + 0.004 - 0.11]))
    assert select_per_seed(trials[trials["penalty"] == "l1"], "lambda", "final_val_loss").to_dict() == {0: 1.0, 1: 0.01, 2: 1.0}


WORSE = {0.0: 0.10, 0.01: 0.11, 1.0: 0.12, 10.0: 0.30}
"""A CV error that rises at every λ > 0."""


def test_verdict_partly_reproduced_when_the_cost_falls_but_the_error_rises():
    # A λ > 0 lowers the held-out cross-entropy while the held-out misclassification gets worse.
    result = verdict(_trials(_both("final_holdout_error", WORSE)))
    assert result.outcome == "partly reproduced"
    assert result.where("not reproduced") == ["L1: held-out error lower at the selected λ", "L2: held-out error lower at the selected λ"]
    assert result.headline.outcome == "not reproduced" and result.effect == pytest.approx(0.022)
    assert _outcomes(result)[("L2", "held-out cost lower at the selected λ")] == "reproduced"


def test_verdict_not_reproduced_when_no_lambda_beats_zero_and_nothing_trades():
    changes = {
        **_both("final_val_loss", {0.0: 0.30, 0.01: 0.40, 1.0: 0.50, 10.0: 1.20}),  # λ = 0 is best
        **_both("final_train_error", {0.0: 0.00, 0.01: 0.00, 1.0: 0.00, 10.0: 0.01}),  # no bias
        **_both("final_train_loss", {0.0: 0.00, 0.01: 0.00, 1.0: 0.00, 10.0: 0.00}),  # the gap widens
    }
    result = verdict(_trials(changes, seeds=tuple(range(8))))
    # Every seed's CV selects λ = 0, so the held-out cost and error "at the selected λ" compare λ = 0 with itself:
    # a change of exactly 0 on every seed, within ± the smallest effect, reads as no effect (with eight seeds:
    # identical values take a median's interval, which three seeds cannot bound). So does a training error up by one
    # point, within ± five, and L1 against L2 each at λ = 0, one net. A wider gap lies on the wrong side, and with
    # nothing reproduced the claim is not reproduced.
    expected = {
        "held-out cost lower at the selected λ": "no effect",
        "held-out error lower at the selected λ": "no effect",
        "training error up at the largest λ": "no effect",
        "CV − training cost gap smaller at the largest λ": "not reproduced",
        "L1 sparser than L2, each at its selected λ": "no effect",
    }
    for (condition, part), outcome in _outcomes(result).items():
        assert outcome == expected[part.split(" (share")[0]], (condition, part)
    assert result.outcome == "not reproduced"
    assert result.where("not reproduced") == ["L1: CV − training cost gap smaller at the largest λ", "L2: CV − training cost gap smaller at the largest λ"]
    assert "L2: CV selects λ = 0 (seeds 0, 1, 2, 3, 4, 5, 6, 7)" in result.summary
    assert result.effect == 0.0


def test_verdict_inconclusive_when_seeds_disagree_or_the_grid_lacks_arms():
    # Two seeds that move every effect by ±0.3: every interval straddles its boundary.
    shaky = verdict(_trials(seeds=(0, 1), noise=[0.3, -0.3]))
    assert shaky.outcome == "inconclusive" and set(_outcomes(shaky).values()) == {"inconclusive"}
    assert shaky.summary.startswith("Unclear: ")
    # One seed of eight that disagrees on the headline alone: the rest still holds (L1's held-out error carries that part).
    mixed = _trials(seeds=tuple(range(8)))
    mixed.loc[(mixed["seed"] == 1) & (mixed["penalty"] == "l2") & (mixed["lambda"] == 1.0), "final_holdout_error"] = 0.14
    result = verdict(mixed)
    assert result.outcome == "reproduced" and result.where("inconclusive") == ["L2: held-out error lower at the selected λ"]
    # The same disagreement over two seeds: each held-out error interval is simultaneous over L1 and L2 (97.5%, t
    # with one degree of freedom), so even L1's straddles 0 and that part holds nowhere.
    two = _trials(seeds=(0, 1))
    two.loc[(two["seed"] == 1) & (two["penalty"] == "l2") & (two["lambda"] == 1.0), "final_holdout_error"] = 0.14
    few = verdict(two)
    assert few.outcome == "inconclusive"
    assert few.where("inconclusive") == ["L1: held-out error lower at the selected λ", "L2: held-out error lower at the selected λ"]
    no_zero = verdict(_trials(lambdas=(0.01, 1.0, 10.0)))
    assert no_zero.outcome == "inconclusive" and no_zero.checks == () and "needs λ = 0" in no_zero.summary
    broken = _trials()
    broken.loc[0, "penalty_mismatch"] = 1e-3
    assert verdict(broken).outcome == "inconclusive" and "Keras's penalty differs" in verdict(broken).summary


def test_verdict_names_the_convention_when_a_grid_runs_both():
    both = pd.concat([_trials(), _trials(_both("final_holdout_error", WORSE), data_loss="mean")])
    result = verdict(both)
    assert result.outcome == "partly reproduced"
    assert {check.condition for check in result.checks} == {
        f"{name}, {convention}" for name in ("L1", "L2", "L1 vs L2") for convention in ("summed J", "averaged J")
    }
    # The headline is the default (summed) convention's L2 error check.
    assert result.headline.condition == "L2, summed J" and result.headline.outcome == "reproduced"


def test_smoke_run_logs_cv_curves_verdict_figures_and_one_test_score(tracker):
    result = run_ablation(ABLATION, ABLATION.resolve("smoke"), tracker=tracker, progress=False)
    runs = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(runs) == 6
    assert runs["metrics.penalty_mismatch"].max() < 1e-5
    assert runs["metrics.penalty_stack_mismatch"].max() < 1e-5
    runs["diagnosis"] = assert_diagnoses_follow_the_logged_errors(runs)
    by_trial = runs.set_index(["params.penalty", runs["params.lambda"].astype(float)]).sort_index()
    assert list(by_trial.index) == [(p, lam) for p in ("l1", "l2") for lam in (0.0, 0.01, 10.0)]
    # The lecture's summed J by default: Keras gets λ/n, n = 30 examples per fold (60 in 2 folds).
    coefficient = by_trial["metrics.keras_coefficient"]
    np.testing.assert_allclose(coefficient, by_trial.index.get_level_values(1) / 30, rtol=1e-12)
    # The logged penalty is λ/n·Σ|w| (L1) or λ/n·Σw² (L2) of the kernels, and the objective adds it to the data loss.
    # (Metrics are means over the folds, and the mean of ‖w‖² exceeds the square of the mean ‖w‖ a little.)
    l1, l2 = by_trial.loc["l1"], by_trial.loc["l2"]
    np.testing.assert_allclose(l1["metrics.final_penalty_term"], coefficient["l1"] * l1["metrics.final_weight_l1_norm"], rtol=1e-5)
    np.testing.assert_allclose(l2["metrics.final_penalty_term"], coefficient["l2"] * l2["metrics.final_weight_l2_norm"] ** 2, rtol=1e-3)
    np.testing.assert_allclose(by_trial["metrics.final_objective"], by_trial["metrics.final_train_loss"] + by_trial["metrics.final_penalty_term"], rtol=1e-5)
    # λ = 0 under L1 and under L2 is one net: identical CV results.
    lambda_zero = by_trial.xs(0.0, level=1)
    assert (lambda_zero["metrics.final_penalty_term"] == 0.0).all()
    assert lambda_zero["metrics.final_val_loss"].nunique() == 1
    # Without a penalty, 32 units memorize the 30 examples of each fold and miss on the other:
    # high variance. λ = 10 crushes the weights to one predicted class: high bias.
    train, val = by_trial["metrics.final_train_error"], by_trial["metrics.final_val_error"]
    assert (train.xs(0.0, level=1) < 0.05).all() and (val.xs(0.0, level=1) > 2 * train.xs(0.0, level=1)).all()
    assert set(by_trial.xs(0.0, level=1)["diagnosis"]) == {"high variance"}
    crushed = by_trial.xs(10.0, level=1)
    assert (crushed["metrics.final_distinct_predictions"] == 1).all() and (crushed["metrics.final_train_error"] >= 0.5).all()
    assert set(crushed["diagnosis"]) == {"high bias"}
    # Training error rises with λ under both penalties; at the smallest λ > 0, L1 leaves more weights near 0 than L2.
    for penalty in ("l1", "l2"):
        assert train[penalty].is_monotonic_increasing
    near_zero = by_trial.xs(0.01, level=1)["metrics.final_near_zero_fraction"]
    assert near_zero["l1"] > near_zero["l2"]
    history = tracker.client.get_metric_history(runs["run_id"].iloc[0], "val_loss")
    assert sorted(m.step for m in history) == [0, 10, 20, 30]

    parent = assert_verdict_logged(tracker, result, runs)
    # Each check's effect (one seed: one value) is the logged metric at its λ minus at λ = 0; the selected λ (lowest
    # CV cost) is scored on the validation split, by a net trained on all the training examples.
    cost = by_trial["metrics.final_val_loss"]
    gap = cost - by_trial["metrics.final_train_loss"]
    held_loss, held_error = by_trial["metrics.final_holdout_loss"], by_trial["metrics.final_holdout_error"]
    assert (held_error.between(0.0, 1.0)).all() and (held_loss > 0).all()
    assert by_trial.xs(0.0, level=1)["metrics.final_holdout_loss"].nunique() == 1  # λ = 0: one net under either penalty
    checks = {(check.condition, check.part): check for check in result.verdict.checks}
    assert len(checks) == 9
    for penalty in ("l1", "l2"):
        best = cost[penalty].idxmin()
        expected = {
            "held-out cost lower at the selected λ": held_loss[(penalty, best)] - held_loss[(penalty, 0.0)],
            "held-out error lower at the selected λ": held_error[(penalty, best)] - held_error[(penalty, 0.0)],
            "training error up at the largest λ": train[(penalty, 10.0)] - train[(penalty, 0.0)],
            "CV − training cost gap smaller at the largest λ": gap[(penalty, 10.0)] - gap[(penalty, 0.0)],
        }
        for part, value in expected.items():
            check = checks[(penalty.upper(), part)]
            assert check.effect.n == 1 and check.effect.mean == pytest.approx(value, abs=1e-9), (penalty, part)
            assert check.details[REGIME] == regime(train[(penalty, 0.0)], val[(penalty, 0.0)])
            assert check.details[REGIME].startswith("overfits")
        # λ = 10 crushes the net: far more training error, a smaller cost gap (values inside their claimed regions).
        assert checks[(penalty.upper(), "training error up at the largest λ")].effect.mean > BIAS_RISE.size
        assert checks[(penalty.upper(), "CV − training cost gap smaller at the largest λ")].effect.mean < 0
    # One seed: every check is a mean over seeds with one value, so none has an interval and none decides.
    assert {check.outcome for check in checks.values()} == {"inconclusive"}
    assert all(check.interval == (-math.inf, math.inf) for check in checks.values())
    assert result.verdict.outcome == "inconclusive"
    assert "Every check had one value" in result.verdict.summary
    # The headline: L2's validation-split misclassification at its selected λ minus at λ = 0.
    assert result.verdict.headline is checks[("L2", "held-out error lower at the selected λ")]
    # L1 against L2, each at the λ its CV selects: the near-zero shares of the nets trained on all the training data.
    sparsity = checks[("L1 vs L2", "L1 sparser than L2, each at its selected λ (share of |w| < 0.01)")]
    best = {penalty: cost[penalty].idxmin() for penalty in ("l1", "l2")}
    assert sparsity.details["at λ"] == f"L1: {best['l1']:g} (seed 0); L2: {best['l2']:g} (seed 0)"
    near = by_trial["metrics.final_full_near_zero_fraction"]
    assert sparsity.effect.mean == pytest.approx(near[("l1", best["l1"])] - near[("l2", best["l2"])], abs=1e-9)
    selections = assert_selected_on_validation(tracker, result, ABLATION, runs)
    assert set(selections) == {"study"} and "selected_trials" in parent.data.tags
    assert 0.0 <= parent.data.metrics["test_error"] <= 1.0
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/lambda_sweep.png", "figures/training_curves.png"}
