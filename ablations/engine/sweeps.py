"""A setting swept over a grid, such as the learning rate: each arm at its own best value, and whether the grid brackets it.

Arms compared at one learning rate compare that rate as much as the arms (a
rate that suits one may be too large or too small for the other). So each arm
trains at every value of a grid and is judged at its own best: `best_of_sweep`
picks it per arm and seed; `bracket_check` asks whether the grid brackets the
best values, since one at an edge of the grid may be no optimum at all.

Example:

>>> trials = pd.DataFrame({"arm": ["a", "a", "b", "b"], "learning_rate": [0.01, 0.1, 0.01, 0.1], "epochs": [9, 4, 3, 3]})
>>> best_of_sweep(trials, ["arm"], order=["epochs"], keep={"best_rate": "learning_rate"}).to_dict("list")
{'arm': ['a', 'b'], 'best_rate': [0.1, 0.01], 'values': [2, 2]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ablations.engine.stats import summarize
from ablations.engine.verdict import Check


def best_of_sweep(
    trials: pd.DataFrame,
    sweep: Sequence[str],
    *,
    order: Sequence[str],
    keep: Mapping[str, str],
    counts: Mapping[str, str] | None = None,
    swept: str = "learning_rate",
    total: str = "values",
) -> pd.DataFrame:
    """Per sweep (an arm and seed, say): its best trial, the first when its trials are sorted by ``order``.

    Args:
        trials: One row per trial.
        sweep: The settings one sweep shares (its arm's, its condition's, ``seed``): the result's first columns.
        order: The columns that rank a sweep's trials, lowest first; a tie goes to the next column, and
            last to the smaller ``swept`` value.
        keep: ``{name: column}``: the best trial's values, kept under new names.
        counts: ``{name: column}``: how many of the sweep's trials have ``column`` true.
        swept: The setting swept.
        total: The name of the column that counts the sweep's trials.

    Returns:
        One row per sweep: its ``sweep`` settings, then ``keep``'s, ``counts``' and ``total``'s columns.
    """
    sweep, counts = list(sweep), counts or {}
    rows = []
    for key, group in trials.groupby(sweep):
        best = group.sort_values([*order, swept]).iloc[0]
        counted = {name: int(group[column].sum()) for name, column in counts.items()}
        rows.append({**dict(zip(sweep, key)), **{name: best[column] for name, column in keep.items()}, **counted, total: len(group)})
    return pd.DataFrame(rows)


def bracket_check(condition: str, subject: str, best: pd.Series, grid: Sequence[float], *, shown: str = "best values") -> Check:
    """A sanity check that the grid brackets the best values: how many seeds have theirs at its smallest or largest value.

    A best value at an edge may lie beyond the grid: the check then fails the
    run, which says to widen the grid.

    Args:
        condition: The check's condition.
        subject: Whose best values ("raw arm's best learning rate"); the part reads "{subject} inside the grid".
        best: The best values, one per seed.
        grid: The swept values, sorted.
        shown: The name under which the details list the best values.

    Returns:
        A `Check` with role "sanity": the count at an edge (exact), claimed below 0.5.
    """
    at_edge = summarize([float(best.isin([grid[0], grid[-1]]).sum())], kind="exact")
    details = {shown: ", ".join(f"{v:g}" for v in best), "grid": f"{grid[0]:g} to {grid[-1]:g}"}
    return Check.below(condition, f"{subject} inside the grid: seeds at an edge", at_edge, 0.5, role="sanity", spec=".0f", details=details)
