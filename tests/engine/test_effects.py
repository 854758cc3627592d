"""Effect statistics and the wording the verdicts share."""

import numpy as np
import pandas as pd
import pytest

from ablations.engine.effects import (
    interval,
    mean_ci,
    mean_sd,
    mean_sd_cells,
    per_seed,
    seed_differences,
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
    assert interval(s, "+.3f") == "-0.048 to +0.448"
    assert mean_ci(s, "+.3f") == "+0.200 (CI -0.048 to +0.448)"
    assert mean_ci(s, ".2f", label="95% CI") == "0.20 (95% CI -0.05 to 0.45)"
    assert mean_ci(-s, "+.3f", label="95% CI") == "-0.200 (95% CI -0.448 to +0.048)"
    assert mean_ci(s, ".3g", one_seed="one seed") == "0.2 (CI -0.0484 to 0.448)"
    assert mean_ci(summarize([1.04]), ".3g", one_seed="one seed") == "1.04 (one seed)"
    assert mean_ci(summarize([1.04]), ".3g") == "1.04 (CI 1.04 to 1.04)"
    assert mean_sd(s) == "0.2 ± 0.1"
    assert mean_sd(s, "+.3f", ".3f") == "+0.200 ± 0.100"


def test_mean_sd_cells_read_each_column():
    rows = pd.DataFrame({"a": [1.0, 3.0], "b": [0.5, 0.5]})
    assert mean_sd_cells(rows, {"first": "a", "second": "b"}) == {"first": "2 ± 1.4", "second": "0.5 ± 0"}
