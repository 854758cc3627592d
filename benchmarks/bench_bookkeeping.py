"""What the runner costs beyond training: the constants a dry run adds (`ablations.engine.estimate`).

A toy ablation that trains nothing (`ablations.engine.bookkeeping.toy_ablation`)
runs through `run_ablation` into a temporary SQLite store and journal file, as
``ablate run`` would with the default results folder. Its members log
``epochs`` steps of ``per_epoch`` metrics and return ``finals`` final metrics;
its conclusion reads the trials back and logs one small figure. Grids that differ in one count at a time put
a line through the wall times:

- per trial: its MLflow run created, tagged and ended, its params logged, its
  Optuna trial enqueued, claimed and told, read back at the conclusion;
- per metric value, whether a step's or a final one (MLflow's batched writes);
- per pack: repair, claim, closing finished runs, the cleared Keras session;
- what is left of a grid of one pack: opening the grid and the conclusion.

Each grid runs ``REPEATS`` times, alternated, and the fit uses the medians.

    python -m benchmarks.bench bookkeeping
"""

from __future__ import annotations

import statistics

from ablations.engine.bookkeeping import PROBE_GRID, probe_values, toy_grid_seconds

REPEATS = 3
BASE = PROBE_GRID
"""The reference grid (per pack: 36 trials), the one a dry run times (`bookkeeping.measure_rates`); each other grid changes one count."""
VARIANTS = {"trials": {"trials": 108}, "values": {"epochs": 155}, "packs": {"packs": 24, "trials": 3}}


def bookkeeping_rows() -> dict[str, float]:
    """Prints and returns the runner's cost per trial, per metric value and per pack, and a grid's remainder."""
    grids = {"base": BASE, **{name: {**BASE, **change} for name, change in VARIANTS.items()}}
    toy_grid_seconds(**{**BASE, "trials": 3})  # warm-up: imports, MLflow's first store
    times: dict[str, list[float]] = {name: [] for name in grids}
    for _ in range(REPEATS):
        for name, grid in grids.items():
            times[name].append(toy_grid_seconds(**grid))
    median = {name: statistics.median(values) for name, values in times.items()}

    def count(grid: dict) -> tuple[int, int]:
        return probe_values(grid)[1:]

    base_trials, base_values = count(grids["base"])
    more_trials, more_trial_values = count(grids["trials"])
    _, more_values = count(grids["values"])
    per_value = (median["values"] - median["base"]) / (more_values - base_values)
    per_trial = (median["trials"] - median["base"] - per_value * (more_trial_values - base_values)) / (more_trials - base_trials)
    # Same trials and values in 24 packs of 3 as in 2 packs of 36: the difference is the packs.
    per_pack = (median["packs"] - median["base"]) / (grids["packs"]["packs"] - BASE["packs"])
    rest = median["base"] - per_trial * base_trials - per_value * base_values - per_pack * BASE["packs"]
    for name, grid in grids.items():
        trials, values = count(grid)
        print(f"  {name:6s} {grid['packs']} packs, {trials} trials, {values:,} metric values: {median[name]:.2f}s (median of {REPEATS})")
    print(f"  per trial {per_trial * 1000:.0f} ms, per metric value {per_value * 1000:.3f} ms, per pack {per_pack * 1000:.0f} ms, rest {rest:.2f}s")
    return {"trial_s": per_trial, "value_s": per_value, "pack_s": per_pack, "rest_s": rest}


if __name__ == "__main__":
    bookkeeping_rows()
