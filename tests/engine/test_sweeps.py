"""A setting swept over a grid: each arm's best value, and whether the grid brackets it."""

import doctest

import pandas as pd

from ablations.engine import sweeps
from ablations.engine.sweeps import best_of_sweep, bracket_check


def test_the_module_example_holds():
    result = doctest.testmod(sweeps)
    assert result.attempted > 0 and result.failed == 0


def _sweep():
    """Two arms and two seeds, each over three learning rates: epochs to a target (9 = never) and a final loss."""
    rows = []
    for arm, epochs in (("raw", (9, 6, 9)), ("normalized", (5, 2, 2))):
        for seed in (0, 1):
            for rate, value in zip((0.01, 0.1, 1.0), epochs):
                rows.append((arm, seed, rate, value + seed, value < 9, 0.5 if value < 9 else float("nan")))
    return pd.DataFrame(rows, columns=["arm", "seed", "learning_rate", "epochs", "reached", "loss"])


def test_best_of_sweep_picks_the_first_by_order_then_the_smaller_swept_value():
    best = best_of_sweep(_sweep(), ["arm", "seed"], order=["epochs"], keep={"best_rate": "learning_rate", "best_epochs": "epochs"},
                         counts={"reached_rates": "reached"}, total="rates")
    assert list(best.columns) == ["arm", "seed", "best_rate", "best_epochs", "reached_rates", "rates"]
    # Groups in sorted order: normalized before raw.
    assert best.to_dict("list") == {
        "arm": ["normalized", "normalized", "raw", "raw"],
        "seed": [0, 1, 0, 1],
        "best_rate": [0.1, 0.1, 0.1, 0.1],  # normalized ties at 0.1 and 1.0: the smaller rate wins
        "best_epochs": [2, 3, 6, 7],
        "reached_rates": [3, 3, 1, 1],
        "rates": [3, 3, 3, 3],
    }


def test_best_of_sweep_breaks_ties_by_the_next_column_of_order_before_the_swept_value():
    trials = _sweep().assign(tie_break=lambda frame: -frame["learning_rate"])
    best = best_of_sweep(trials, ["arm", "seed"], order=["epochs", "tie_break"], keep={"best_rate": "learning_rate"})
    assert best["best_rate"].tolist() == [1.0, 1.0, 0.1, 0.1] and best["values"].tolist() == [3, 3, 3, 3]


def test_bracket_check_counts_the_best_values_at_an_edge_of_the_grid():
    grid = [0.01, 0.1, 1.0]
    inside = bracket_check("decades=4", "raw arm's best learning rate", pd.Series([0.1, 0.1]), grid)
    assert inside.outcome == "reproduced" and inside.role == "sanity" and inside.effect.mean == 0
    assert inside.part == "raw arm's best learning rate inside the grid: seeds at an edge"
    assert inside.details == {"best values": "0.1, 0.1", "grid": "0.01 to 1"}
    edge = bracket_check("decades=4", "raw arm's best learning rate", pd.Series([0.01, 0.1, 1.0]), grid, shown="best rates")
    assert edge.outcome == "not reproduced" and edge.effect.mean == 2 and edge.details["best rates"] == "0.01, 0.1, 1"
