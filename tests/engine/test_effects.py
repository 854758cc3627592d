"""Effect statistics and the wording the verdicts share."""

import numpy as np
import pandas as pd
import pytest

from ablations.engine.effects import (
    beside_control,
    condition_groups,
    condition_label,
    grid_conditions,
    interval,
    mean_sd,
    per_seed,
    ratio_text,
    seed_differences,
    select,
)
from ablations.engine.stats import summarize


def test_seed_differences_pair_by_seed_and_skip_missing_seeds():
    trials = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1, 2],
            "arm": ["a", "b", "a", "b", "a"],
            "error": [0.30, 0.20, 0.40, 0.25, 0.9],
        }
    )
    np.testing.assert_allclose(seed_differences(trials, "arm", "a", "b", "error"), [0.10, 0.15])
    np.testing.assert_allclose(seed_differences(trials, "arm", "b", "a", "error"), [-0.10, -0.15])
    assert seed_differences(trials, "arm", "a", "c", "error").size == 0
    table = per_seed(trials, "arm", "error")
    assert list(table.index) == [0, 1, 2] and list(table.columns) == ["a", "b"]
    assert np.isnan(table.loc[2, "b"]) and table.loc[2, "a"] == 0.9


def test_wording():
    s = summarize([0.1, 0.2, 0.3])  # mean 0.2, sd 0.1, 95% CI 0.2 ± 4.303 * 0.1 / sqrt(3)
    assert interval(s, "+.3f") == "-0.048 to +0.448" and interval(-s, ".2f") == "-0.45 to 0.05"
    assert mean_sd(s) == "0.2 ± 0.1"
    assert mean_sd(s, "+.3f", ".3f") == "+0.200 ± 0.100"


TRIALS = pd.DataFrame(
    {
        "keep_prob": [1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 0.5],
        "n_train": [300, 300, 300, 300, 3000, 3000, 3000],
        "seed": [0, 0, 1, 1, 0, 0, 1],
        "data": ["mnist5k"] * 7,
        "error": [0.20, 0.15, 0.22, 0.19, 0.10, 0.09, 0.08],
    }
)


def test_select_compares_every_value_exactly():
    assert select(TRIALS, {"keep_prob": 0.5, "n_train": 300})["seed"].tolist() == [0, 1]
    # Close grid values are two arms, never pooled.
    assert select(TRIALS, {"keep_prob": 0.5 + 1e-12}).empty
    assert select(TRIALS, {"data": "mnist5k", "keep_prob": 1.0})["error"].tolist() == [0.20, 0.22, 0.10]
    assert select(TRIALS, {"data": "digits"}).empty


def test_each_treated_trial_sits_beside_the_control_of_its_condition_and_seed():
    pairs = beside_control(select(TRIALS, {"keep_prob": 0.5}), select(TRIALS, {"keep_prob": 1.0}), ["n_train", "seed"])
    # Seed 1 at 3,000 examples has no control: it is left out, not paired with another seed's.
    assert pairs[["n_train", "seed"]].values.tolist() == [[300, 0], [300, 1], [3000, 0]]
    assert (pairs["error_control"] - pairs["error"]).round(3).tolist() == [0.05, 0.03, 0.01]


def test_conditions_are_the_settings_the_grid_varies_besides_the_arms():
    assert grid_conditions(TRIALS, ["data", "keep_prob", "n_train", "width"], exclude=["keep_prob"]) == ["n_train"]
    groups = list(condition_groups(TRIALS, ["data", "keep_prob"], exclude=["keep_prob"], always=("n_train",)))
    # The data set is held fixed, so only the always-split training-set size makes conditions, in sorted order.
    assert [(label, settings) for label, settings, _ in groups] == [("n_train=300", {"n_train": 300}), ("n_train=3000", {"n_train": 3000})]
    assert [len(group) for _, _, group in groups] == [4, 3]
    assert condition_label("data", "mnist5k") == "mnist5k" and condition_label("recipe", "adam") == "recipe=adam"
    assert condition_label("label_noise", 0.1) == "label_noise=0.1"


def test_ratio_text_marks_a_lower_bound_and_an_empty_set():
    assert ratio_text(pd.Series([2.0, 2.0]), pd.Series([False, False])) == "x2.00 ± 0.00"
    assert ratio_text(pd.Series([1.5, 2.5]), pd.Series([False, True])).startswith("≥ x2.00 ± ")
    assert ratio_text(pd.Series([], dtype=float), pd.Series([], dtype=bool)) == "n/a"
