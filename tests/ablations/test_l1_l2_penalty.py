import keras
import numpy as np
import pandas as pd
import pytest

from ablations import l1_l2_penalty
from ablations.engine.protocol import TestSetAlreadyUsed, TestSplitGuard
from ablations.engine.train import fit_stack, member_statistics
from models.stacked import stack_models
from ablations.engine.runner import run_ablation
from ablations.l1_l2_penalty import (
    ABLATION,
    LAMBDA_GRID,
    PARAMS,
    build_member,
    cv_folds,
    fold_masks,
    keras_lambda,
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
    fit_stack(stack, x, y, np.ones((3, N)), epochs=3, learning_rate=0.05)
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
    fit_stack(stack, x, y, np.ones((1, N)), epochs=4, learning_rate=0.05)
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
    fit_stack(stack, x, y, np.ones((3, N)), epochs=5, learning_rate=0.05)
    logged = member_statistics(stack, x, y, np.ones((3, N)), None, 0.01)["penalty_term"]
    weights = stack.all_member_weights()
    kernels = [np.concatenate([w.ravel() for w in member[0::2]]).astype(np.float64) for member in weights]
    np.testing.assert_allclose(logged[0], 0.3 * np.abs(kernels[0]).sum(), rtol=1e-6)
    np.testing.assert_allclose(logged[1], 0.7 * np.square(kernels[1]).sum(), rtol=1e-6)
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
    fit_stack(stack, x, y, np.ones((2, N)), epochs=5, learning_rate=0.05)
    # The narrow member's padding (units 2..6) never moves off zero.
    assert np.all(stack.kernels[0].numpy()[0, :, 2:] == 0) and np.all(stack.kernels[1].numpy()[0, 2:, :] == 0)
    assert [w.shape for w in stack.member_weights(0)] == [w.shape for w in members[0].get_weights()]


def test_cv_folds_are_disjoint_and_cover_the_training_data():
    cfg = config(n_train=23, folds=4, seed=3)
    folds = cv_folds(cfg)
    assert len(folds) == 4
    held_out = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(held_out), np.arange(23))
    for train, val in folds:
        assert np.intersect1d(train, val).size == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(23))
    train_masks, val_masks = fold_masks(folds, 23)
    np.testing.assert_array_equal(train_masks + val_masks, 1.0)
    np.testing.assert_array_equal(val_masks.sum(axis=0), 1.0)
    # Every λ of a seed is scored on the same folds; another seed reshuffles them.
    same = cv_folds(config(n_train=23, folds=4, seed=3, penalty="l1", **{"lambda": 5.12}))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, same))
    other = cv_folds(config(n_train=23, folds=4, seed=4))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))


def test_held_out_fold_never_enters_a_members_training(batch):
    x, y = batch
    train_masks, _ = fold_masks(cv_folds(config(n_train=N, folds=3, seed=1)), N)
    relabelled = y.copy()
    held_out = train_masks[0] == 0
    relabelled[held_out] = (y[held_out] + 1) % CLASSES
    trained = []
    for labels in (y, relabelled):
        members = [build_member(config(penalty="l2", **{"lambda": 0.01}), FEATURES, CLASSES, N) for _ in range(3)]
        stack = stack_models(members, "relu")
        fit_stack(stack, x, labels, train_masks, epochs=5, learning_rate=0.05)
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
    assert keras_lambda(config(data_loss="mean", **{"lambda": 10.0}), 100) == 10.0
    assert keras_lambda(config(data_loss="sum", **{"lambda": 10.0}), 100) == pytest.approx(0.1)


def test_test_hook_scores_the_test_split_once():
    cfg = config(n_train=40, epochs=3, folds=2, width=8, **{"lambda": 0.01})
    guard = TestSplitGuard()
    metrics = l1_l2_penalty.test(cfg, guard)
    assert 0.0 <= metrics["test_error"] <= 1.0 and metrics["test_loss"] > 0
    with pytest.raises(TestSetAlreadyUsed):
        l1_l2_penalty.test(cfg, guard)


def _trials(cv_loss: dict, train_error: dict, near_zero: dict, seeds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for (penalty, lam), loss in cv_loss.items():
            rows.append(
                {
                    "penalty": penalty, "lambda": lam, "seed": seed, "data_loss": "mean", "zero_tolerance": 0.01,
                    "final_val_loss": loss + 0.01 * seed, "final_train_loss": {0.0: 0.0, 0.01: 0.2, 10.0: 2.25}[lam],
                    "final_train_error": train_error[(penalty, lam)] + 0.001 * seed, "final_val_error": 0.5,
                    "final_near_zero_fraction": near_zero[(penalty, lam)] + 0.01 * seed, "final_weight_l2_norm": 1.0,
                    "final_distinct_predictions": 10.0 if lam < 10 else 1.0, "penalty_mismatch": 1e-8,
                }
            )
    return pd.DataFrame(rows)


def test_verdict_reproduced_and_not_reproduced():
    keys = [(p, lam) for p in ("l1", "l2") for lam in (0.0, 0.01, 10.0)]
    train = {k: {0.0: 0.0, 0.01: 0.05, 10.0: 0.9}[k[1]] for k in keys}
    sparse = {k: {0.0: 0.02, 0.01: 0.9 if k[0] == "l1" else 0.3, 10.0: 1.0}[k[1]] for k in keys}
    helps = {k: {0.0: 0.8, 0.01: 0.4, 10.0: 2.3}[k[1]] for k in keys}
    good = verdict(_trials(helps, train, sparse))
    assert good.outcome == "reproduced"
    assert good.effect == pytest.approx(-0.4)
    assert "λ ≥ 10 crushes the weights" in good.summary and "Keras's mean loss" in good.summary
    no_gain = {k: {0.0: 0.4, 0.01: 0.6, 10.0: 2.3}[k[1]] for k in keys}
    bad = verdict(_trials(no_gain, train, sparse))
    assert bad.outcome == "not reproduced" and "not true that a λ > 0 beats λ = 0 on the CV cost (λ = 0 is best)" in bad.summary
    dense = {k: 0.3 for k in keys}
    assert "L1 is not sparser" in verdict(_trials(helps, train, dense)).summary
    # The right direction but a CI across 0 (two seeds that disagree in size): inconclusive, not a failure.
    noisy = _trials(helps, train, sparse, seeds=(0, 1))
    noisy.loc[(noisy["seed"] == 1) & (noisy["lambda"] == 0.01), "final_val_loss"] = 0.79
    shaky = verdict(noisy)
    assert shaky.outcome == "inconclusive" and "unclear whether a λ > 0 beats λ = 0" in shaky.summary


def test_smoke_run_logs_cv_curves_verdict_figures_and_one_test_score(tracker):
    result = run_ablation(ABLATION, ABLATION.resolve("smoke"), tracker=tracker, progress=False)
    runs = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(runs) == 6
    assert runs["metrics.penalty_mismatch"].max() < 1e-5
    assert runs["metrics.penalty_stack_mismatch"].max() < 1e-5
    runs["diagnosis"] = assert_diagnoses_follow_the_logged_errors(runs)
    by_trial = runs.set_index(["params.penalty", runs["params.lambda"].astype(float)]).sort_index()
    assert list(by_trial.index) == [(p, lam) for p in ("l1", "l2") for lam in (0.0, 0.01, 10.0)]
    # The logged penalty is λ·Σ|w| (L1) or λ·Σw² (L2) of the kernels, and the objective adds it to the data loss.
    # (Metrics are means over the folds, and the mean of ‖w‖² exceeds the square of the mean ‖w‖ a little.)
    l1, l2 = by_trial.loc["l1"], by_trial.loc["l2"]
    np.testing.assert_allclose(l1["metrics.final_penalty_term"], l1.index * l1["metrics.final_weight_l1_norm"], rtol=1e-5)
    np.testing.assert_allclose(l2["metrics.final_penalty_term"], l2.index * l2["metrics.final_weight_l2_norm"] ** 2, rtol=1e-3)
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
    # The verdict's effect: per penalty, the CV cost at the λ that CV selects minus at λ = 0, averaged.
    cv = by_trial["metrics.final_val_loss"]
    gains = [cv[penalty].min() - cv[(penalty, 0.0)] for penalty in ("l1", "l2")]
    assert result.verdict.effect == pytest.approx(np.mean(gains), rel=1e-9)
    selections = assert_selected_on_validation(tracker, result, ABLATION, runs)
    assert set(selections) == {"study"} and "selected_trials" in parent.data.tags
    assert 0.0 <= parent.data.metrics["test_error"] <= 1.0
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/lambda_sweep.png", "figures/training_curves.png"}
