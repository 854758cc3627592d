"""The train/validation/test protocol and the seed aggregates."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ablations.engine.protocol import (
    REMEDIES,
    TestSetAlreadyUsed,
    TestSplitGuard,
    at_selection,
    diagnose,
    kfold_indices,
    score_test_probabilities,
    score_test_split,
    select_per_seed,
    selection_text,
    trial_diagnosis,
    with_gaps,
)
from ablations.engine.stats import aggregate, power, summarize, t_interval, tied


def test_kfold_folds_are_disjoint_and_cover_the_training_data():
    folds = kfold_indices(23, 5, seed=1)
    assert len(folds) == 5
    validation = np.concatenate([val for _, val in folds])
    assert sorted(validation.tolist()) == list(range(23))
    for train, val in folds:
        assert not set(train) & set(val)
        assert len(train) + len(val) == 23
    assert [len(val) for _, val in folds] == [5, 5, 5, 4, 4]


def test_kfold_rejects_bad_k():
    with pytest.raises(ValueError, match="k=1, n=10"):
        kfold_indices(10, 1)


def test_each_seed_selects_on_its_own_and_is_read_at_its_selection():
    trials = pd.DataFrame(
        {"seed": [0, 0, 0, 1, 1, 1], "lam": [0.0, 0.1, 1.0] * 2, "cv": [0.5, 0.2, 0.9, 0.5, 0.6, 0.1], "held": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}
    )
    selected = select_per_seed(trials, "lam", "cv")
    assert selected.to_dict() == {0: 0.1, 1: 1.0}
    assert at_selection(trials, "lam", selected, "held").to_dict() == {0: 2.0, 1: 6.0}
    assert selection_text(selected) == "0.1 (seed 0), 1 (seed 1)"
    assert selection_text(pd.Series({0: 0.1, 1: 0.1, 2: 1.0})) == "0.1 (seeds 0, 1), 1 (seed 2)"


def test_score_test_probabilities_scores_the_probabilities_once():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros")])
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), np.array([0, 1])
    guard = TestSplitGuard()
    # Zero weights: both classes at 1/2, so the loss is ln 2 and argmax (class 0) is right once in two.
    assert score_test_probabilities(guard, model, x, y) == pytest.approx({"test_loss": np.log(2), "test_error": 0.5})
    with pytest.raises(TestSetAlreadyUsed):
        score_test_probabilities(guard, model, x, y)


def test_test_split_cannot_be_evaluated_twice():
    guard = TestSplitGuard()
    assert guard.evaluate(lambda: {"test_error": 0.1}) == {"test_error": 0.1}
    with pytest.raises(TestSetAlreadyUsed):
        guard.evaluate(lambda: {"test_error": 0.0})


def test_score_test_split_scores_the_model_once_with_test_names():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax", kernel_initializer="zeros")])
    model.compile(loss="sparse_categorical_crossentropy")
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), np.array([0, 1])
    guard = TestSplitGuard()
    # Zero weights: both classes at 1/2, so the loss is ln 2 and argmax (class 0) is right once in two.
    assert score_test_split(guard, model, x, y) == pytest.approx({"test_loss": np.log(2), "test_accuracy": 0.5, "test_error": 0.5})
    with pytest.raises(TestSetAlreadyUsed):
        score_test_split(guard, model, x, y)


def test_with_gaps_adds_the_generalization_gaps():
    final = {"final_train_error": 0.1, "final_val_error": 0.25, "final_train_loss": 0.3, "final_val_loss": 0.8}
    metrics = with_gaps(final)
    assert metrics == pytest.approx({**final, "final_gap": 0.15, "final_loss_gap": 0.5})
    assert "final_gap" not in final


@pytest.mark.parametrize(
    "train, val, expected",
    [(0.01, 0.03, "balanced"), (0.30, 0.32, "high bias"), (0.01, 0.20, "high variance"), (0.20, 0.60, "high variance"), (0.40, 0.45, "high bias")],
)
def test_diagnosis(train, val, expected):
    assert diagnose(train, val) == expected
    assert expected in REMEDIES


def test_trial_diagnosis_reads_accuracies_or_errors():
    assert trial_diagnosis({"final_accuracy": 0.99, "final_val_accuracy": 0.7}) == "high variance"
    assert trial_diagnosis({"final_train_error": 0.5, "final_val_error": 0.5}) == "high bias"
    assert trial_diagnosis({"loss": 1.0}) is None


def test_summary_matches_a_t_interval():
    values = [1.0, 2.0, 4.0, 5.0]
    summary = summarize(values)
    low, high = scipy_stats.t.interval(0.95, 3, loc=3.0, scale=np.std(values, ddof=1) / 2)
    assert summary.mean == 3.0
    assert summary.low == pytest.approx(low) and summary.high == pytest.approx(high)
    assert summarize([2.0]).std == 0.0 and summarize([np.nan]).n == 0


def test_aggregate_groups_conditions_over_seeds():
    frame = pd.DataFrame({"depth": [2, 2, 5, 5], "seed": [0, 1, 0, 1], "loss": [1.0, 3.0, 5.0, 5.0]})
    table = aggregate(frame, ["depth"], ["loss"])
    assert table["loss_mean"].tolist() == [2.0, 5.0]
    assert table["loss_std"].tolist() == pytest.approx([np.sqrt(2), 0.0])
    assert table["loss_n"].tolist() == [2, 2]
    # Seeds that agree are described by their value (the verdict's intervals treat them apart, below).
    assert (table["loss_ci_low"][1], table["loss_ci_high"][1]) == (5.0, 5.0)


@pytest.mark.parametrize("seeds, expected", [(3, (0.0, 1.0)), (6, (0.0, 1.0)), (7, (0.5, 0.5)), (10, (0.5, 0.5))])
def test_identical_values_of_a_mean_take_the_median_interval_instead_of_a_zero_width_one(seeds, expected):
    # Three seeds at the same accuracy (a discrete quantity) would give a t-interval of zero width, decided;
    # the order-statistic interval at 98.3% is bounded only from 7 seeds on (2 / 2**7 < 1/60).
    summary = summarize([0.5] * seeds, bounds=(0.0, 1.0))
    assert summary.interval(0.05 / 3) == expected
    assert summary.std == 0.0 and summary.kind == "mean"
    # A row with any spread keeps its t-interval, in the same call.
    low, high = t_interval(np.array([[0.5] * seeds, [0.5] * (seeds - 1) + [0.6]]), 0.05 / 3, (0.0, 1.0))
    assert (low[0], high[0]) == expected and 0.0 < low[1] < 0.5 < high[1] < 1.0


def test_values_equal_up_to_float_rounding_count_as_identical():
    # A seed that scales both terms of a ratio cancels in exact arithmetic, not always in float64.
    ratios = [np.log10(5.0 * (1 + 0.02 * s)) - np.log10(0.3 * (1 + 0.02 * s)) for s in range(3)]
    assert len(set(ratios)) > 1 and tied(np.array(ratios))
    assert summarize(ratios).std == 0.0 and summarize(ratios).interval(0.05) == (-np.inf, np.inf)
    assert not tied(np.array([1.0, 1.0 + 1e-9])) and tied(np.array([0.0, 0.0]))


def test_power_of_identical_values_is_the_median_interval_s():
    # No spread: the effect is certain once the interval can be bounded at all, impossible before.
    assert power(0.1, 0.0, 6, 0.05 / 3) == 0.0 and power(0.1, 0.0, 7, 0.05 / 3) == 1.0


def test_negated_summary_mirrors_the_interval():
    summary = summarize([0.1, 0.2, 0.4])
    negated = -summary
    assert (negated.mean, negated.std, negated.low, negated.high, negated.n) == pytest.approx(
        (-summary.mean, summary.std, -summary.high, -summary.low, 3)
    )
    assert negated == summarize([-0.1, -0.2, -0.4])
