"""What the runner costs beyond training: the constants a dry run adds (`ablations.engine.estimate`).

A toy ablation that trains nothing runs through `run_ablation` into a
temporary SQLite store and journal file, as ``ablate run`` would with the
default results folder. Its members log ``epochs`` steps of ``per_epoch``
metrics and return ``finals`` final metrics; its conclusion reads the trials
back and logs one small figure. Grids that differ in one count at a time put
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
import tempfile
import time

import matplotlib.pyplot as plt

from ablations.engine.runner import run_ablation
from ablations.engine.spec import Ablation, Param
from ablations.engine.tracking import Tracker
from ablations.engine.verdict import Verdict

REPEATS = 3
BASE = {"trials": 36, "packs": 2, "epochs": 5, "per_epoch": 4, "finals": 5}
"""The reference grid (per pack: 36 trials); each other grid changes one count."""
VARIANTS = {"trials": {"trials": 108}, "values": {"epochs": 155}, "packs": {"packs": 24, "trials": 3}}


def toy(epochs: int, per_epoch: int, finals: int, packs: int) -> Ablation:
    """An ablation whose trials train nothing and log ``epochs`` x ``per_epoch`` step metrics and ``finals`` final ones."""

    def run(configs: list[dict], context) -> list[dict[str, float]]:
        for log in context.loggers:
            for epoch in range(epochs):
                log({f"metric_{k}": 0.1 * k + epoch for k in range(per_epoch)}, epoch)
        return [{"val_loss": 0.5, **{f"final_{k}": 0.2 * k for k in range(finals - 1)}} for _ in configs]

    def figures(trials, client) -> dict:
        figure, axes = plt.subplots()
        axes.plot([0, 1], [0, 1])
        return {"line": figure}

    return Ablation(
        name="bookkeeping_toy",
        claim="none: it times the runner",
        params={"x": Param(0, low=0, high=1_000_000)},
        profiles={"smoke": {"seeds": packs}},
        run=run,
        verdict=lambda trials: Verdict([]),
        figures=figures,
        pack_key=lambda config: config["seed"],
    )


def grid_seconds(trials: int, packs: int, epochs: int, per_epoch: int, finals: int) -> float:
    """Wall seconds of one run of the toy grid (``trials`` per pack) into a fresh temporary store."""
    ablation = toy(epochs, per_epoch, finals, packs)
    config = ablation.resolve("smoke", {"x": ",".join(str(i) for i in range(trials))})
    with tempfile.TemporaryDirectory() as folder:
        tracker = Tracker(f"sqlite:///{folder}/mlflow.db")
        tracker.experiment_id(ablation.name)  # the store's creation is not the runner's cost
        started = time.perf_counter()
        run_ablation(ablation, config, storage=f"journal:{folder}/optuna.journal", tracker=tracker, progress=False)
        return time.perf_counter() - started


def bookkeeping_rows() -> dict[str, float]:
    """Prints and returns the runner's cost per trial, per metric value and per pack, and a grid's remainder."""
    grids = {"base": BASE, **{name: {**BASE, **change} for name, change in VARIANTS.items()}}
    grid_seconds(**{**BASE, "trials": 3})  # warm-up: imports, MLflow's first store
    times: dict[str, list[float]] = {name: [] for name in grids}
    for _ in range(REPEATS):
        for name, grid in grids.items():
            times[name].append(grid_seconds(**grid))
    median = {name: statistics.median(values) for name, values in times.items()}

    def count(grid: dict) -> tuple[int, int]:
        trials = grid["trials"] * grid["packs"]
        return trials, trials * (grid["epochs"] * grid["per_epoch"] + grid["finals"])

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
