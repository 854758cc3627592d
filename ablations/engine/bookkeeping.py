"""What the runner costs beyond training, and a probe that measures it on this machine.

Every trial of a grid writes an MLflow run (tags, params, metrics) and an Optuna
trial, and every pack closes runs and clears the Keras session. On a local
SQLite store that cost is set by the disk, which varies between machines (and
on a shared disk, between hours) by a factor of three. `BookkeepingRates` holds
the cost per pack, per trial and per metric value; `measure_rates` scales the
documented rates (`DEFAULT_RATES`) to this machine by running a toy grid that
trains nothing (`toy_ablation`) into a temporary store, as a dry run does once
before it times any pack. ``python -m benchmarks.bench bookkeeping`` fits the
three rates apart, from grids that change one count at a time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache

from ablations.engine.spec import Ablation, Param
from ablations.engine.verdict import Verdict


@dataclass(frozen=True)
class BookkeepingRates:
    """The runner's cost beyond training, in seconds.

    Args:
        pack_s: Per pack: repair, claim, closing finished runs, clearing the Keras session.
        trial_s: Per trial: its MLflow run created, tagged, its params logged,
            ended, read back; its Optuna trial enqueued, claimed and told.
        value_s: Per metric value logged, a step's or a final one (MLflow's batched writes).
        read_s: Per trial, at the conclusion: its run read back, its row aggregated.
        measured: How the rates were obtained, for the dry run's line ("" for the documented ones).
    """

    pack_s: float
    trial_s: float
    value_s: float
    read_s: float
    measured: str = ""

    def seconds(self, packs: int, trials: int, values: float) -> float:
        """The bookkeeping of ``packs`` packs of ``trials`` trials in all, logging ``values`` metric values."""
        return self.pack_s * packs + self.trial_s * trials + self.value_s * values


DEFAULT_RATES = BookkeepingRates(pack_s=0.025, trial_s=0.09, value_s=0.00025, read_s=0.025)
"""Measured with a local SQLite store and journal file by ``python -m benchmarks.bench
bookkeeping`` on a 2-core CPU whose shared disk was slow that day: 25 ms per pack,
64 and 116 ms per trial, 0.17 and 0.33 ms per metric value in two runs (midpoints
used). The conclusion's read-back was fitted to the quick grids' conclusions on
the same machine (1.3 s for 10 trials, 1.9 s for 27, 6.6 s for 216, with
``estimate.CONCLUSION_S``). The same bench on the same machine later gave 35 ms, 30 ms and 0.085 ms:
`measure_rates` scales these to the machine at hand."""

PROBE_GRID = {"trials": 36, "packs": 2, "epochs": 5, "per_epoch": 4, "finals": 5}
"""The toy grid `measure_rates` times (per pack: 36 trials); about 2 s of writes on a 2-core CPU."""

Clock = Callable[[], float]


def toy_ablation(epochs: int, per_epoch: int, finals: int, packs: int) -> Ablation:
    """An ablation whose trials train nothing and log ``epochs`` x ``per_epoch`` step metrics and ``finals`` final ones.

    Its conclusion reads the trials back and logs one small figure, as a real one does.

    Args:
        epochs: Steps each member logs.
        per_epoch: Metric values per step.
        finals: Final metric values per trial (``val_loss`` among them).
        packs: Packs (one per seed); ``trials`` of `toy_grid_seconds` are per pack.
    """

    def run(configs: list[dict], context) -> list[dict[str, float]]:
        for log in context.loggers:
            for epoch in range(epochs):
                log({f"metric_{k}": 0.1 * k + epoch for k in range(per_epoch)}, epoch)
        return [{"val_loss": 0.5, **{f"final_{k}": 0.2 * k for k in range(finals - 1)}} for _ in configs]

    def figures(trials, client) -> dict:
        import matplotlib.pyplot as plt

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


def toy_grid_seconds(trials: int, packs: int, epochs: int, per_epoch: int, finals: int, clock: Clock = time.perf_counter) -> float:
    """Wall seconds of one run of the toy grid (``trials`` per pack) into a fresh temporary store, removed after.

    Args:
        trials: Trials per pack.
        packs: Packs.
        epochs: Steps each member logs.
        per_epoch: Metric values per step.
        finals: Final metric values per trial.
        clock: Seconds, for timing (a test passes a fake one).
    """
    from ablations.engine.runner import run_ablation
    from ablations.engine.tracking import Tracker

    ablation = toy_ablation(epochs, per_epoch, finals, packs)
    config = ablation.resolve("smoke", {"x": ",".join(str(i) for i in range(trials))})
    with tempfile.TemporaryDirectory() as folder, _results_in(folder):
        tracker = Tracker(f"sqlite:///{folder}/mlflow.db")
        tracker.experiment_id(ablation.name)  # the store's creation is not the runner's cost
        started = clock()
        run_ablation(ablation, config, storage=f"journal:{folder}/optuna.journal", tracker=tracker, progress=False)
        return clock() - started


def probe_values(grid: dict[str, int]) -> tuple[int, int, int]:
    """The packs, trials and metric values of a toy grid such as `PROBE_GRID`."""
    trials = grid["trials"] * grid["packs"]
    return grid["packs"], trials, trials * (grid["epochs"] * grid["per_epoch"] + grid["finals"])


@cache
def measure_rates() -> BookkeepingRates:
    """`DEFAULT_RATES` scaled to this machine: the toy `PROBE_GRID` timed against what the rates predict for it.

    The probe writes into a temporary folder (store, journal, artifacts),
    removed after; a warm-up grid of three trials first pays MLflow's and
    Optuna's one-time set-up. Measured once per process.
    """
    return _scaled_rates(time.perf_counter)


def _scaled_rates(clock: Clock) -> BookkeepingRates:
    toy_grid_seconds(**{**PROBE_GRID, "trials": 3}, clock=clock)  # warm-up: imports, the first store
    seconds = toy_grid_seconds(**PROBE_GRID, clock=clock)
    predicted = DEFAULT_RATES.seconds(*probe_values(PROBE_GRID))
    factor = seconds / predicted
    return replace(
        DEFAULT_RATES,
        pack_s=DEFAULT_RATES.pack_s * factor,
        trial_s=DEFAULT_RATES.trial_s * factor,
        value_s=DEFAULT_RATES.value_s * factor,
        read_s=DEFAULT_RATES.read_s * factor,
        measured=f"bookkeeping measured at {factor:.2f}x its documented cost",
    )


@contextmanager
def _results_in(folder: str) -> Iterator[None]:
    """Points ``results_dir()`` at ``folder`` for a while: the probe's checkpoints and artifacts stay out of the user's results."""
    before = os.environ.get("ABLATE_RESULTS_DIR")
    os.environ["ABLATE_RESULTS_DIR"] = folder
    try:
        yield
    finally:
        if before is None:
            del os.environ["ABLATE_RESULTS_DIR"]
        else:
            os.environ["ABLATE_RESULTS_DIR"] = before

