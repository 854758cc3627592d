"""``ablate run NAME --workers N``: this process and N-1 helper processes on one grid.

This process trains as worker 0; `GridHelpers` starts the other N-1 as soon as
the command line is parsed, so that their start-up (TensorFlow, MLflow, about
5 s each) runs while this process imports TensorFlow and opens the grid instead
of after it. Each helper is a new interpreter whose TensorFlow thread pools are
sized before TensorFlow's first op (`device.threads_per_worker`), as this
process's are (`configure_threads`). A helper then waits on its stdin for one
grid at a time, runs `runner.work_on_grid` on it until no pack is left, and
writes its exit status on its stdout; the worker that takes the conclusion
token, here or in a helper, writes the verdict. Helpers start one at a time and
die with this process, however it dies (`execution.pool`); how many may run is
checked before the first starts (`device.worker_bound`).

Many machines: run the same ``ablate run`` on each, with ``--storage
postgresql://...`` and ``MLFLOW_TRACKING_URI`` set to an MLflow tracking server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from ablations.engine.device import available_cores, configure_threads, threads_per_worker
from ablations.engine.execution.pool import WorkerStartError, die_with_parent, interrupt, pass_stop_on, start_workers, stop
from ablations.engine.execution.stopping import exit_status, handle_stop_signals, interruptible

if TYPE_CHECKING:
    # Not imported at run time here: it loads pandas (a second), and a helper's
    # `main` must reach `die_with_parent` at once.
    from ablations.engine.spec import ResolvedConfig

THREADS_ENV = "ABLATE_GRID_THREADS"


class GridHelpers:
    """The N-1 processes that train beside this one on each grid of ``ablate run --workers N``.

    Start them before this process imports TensorFlow; then, per grid, `start`
    hands them the open grid and `join` waits until they have left it.

    Args:
        workers: Workers in all, this process included (at least 2; `cli` has
            checked them against what the machine holds, `device.worker_bound`).
        progress: Print each helper's progress lines.

    Raises:
        WorkerStartError: A helper could not start; those started are stopped.

    Attributes:
        threads: TensorFlow threads of each worker, this process's included (`configure_threads`).
        processes: The helpers, worker 1 first.
    """

    def __init__(self, workers: int, *, progress: bool = True):
        if workers < 2:
            raise ValueError(f"GridHelpers needs workers >= 2 (this process is one of them); got {workers}.")
        self.workers = workers
        self.threads = threads_per_worker(workers)
        self.progress = progress
        self._started = False
        env = {**os.environ, THREADS_ENV: str(self.threads)}
        # One at a time; if one cannot start, those started are stopped and the launch ends in one line.
        self.processes = tuple(
            start_workers(
                "ablations.engine.grid_workers",
                range(1, workers),
                total=workers,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )

    def start(self, config: ResolvedConfig, grid, storage: str | None) -> None:
        """Hands ``grid`` to every helper.

        Args:
            config: The grid's resolved configuration (handed over as is, not resolved again).
            grid: The open grid (`grid.open_grid`).
            storage: Its Optuna storage URL (None: the default journal file).

        Raises:
            WorkerStartError: A helper exited before it was handed the grid
                (it could not start up); the others are stopped.
        """
        self._stop_if_one_died()
        job = {
            "ablation": grid.study.user_attrs["ablation"],
            "profile": config.profile,
            "fixed": config.fixed,
            "grid": config.grid,
            "study": grid.name,
            "storage": storage,
            "progress": self.progress,
        }
        if self.progress:
            print(
                f"{job['ablation']}: {self.workers} workers, {self.threads} TensorFlow thread(s) each, on {available_cores()} cores",
                file=sys.stderr,
                flush=True,
            )
        self._started = True
        for process in self.processes:
            try:
                process.stdin.write(json.dumps(job) + "\n")
                process.stdin.flush()
            except BrokenPipeError:
                pass  # it died before this grid; `join` says so

    def _stop_if_one_died(self) -> None:
        """Stops the launch when a helper already exited: it never got as far as waiting for a grid."""
        for index, process in enumerate(self.processes, start=1):
            code = process.poll()
            if code is not None:
                stop(self.processes)
                raise WorkerStartError(
                    f"grid helper /w{index} of {self.workers} exited with {code} before it was handed the grid "
                    f"(its own output says why); stopped the other {len(self.processes) - 1}"
                )

    def join(self) -> None:
        """Waits until every helper has left the grid it was handed.

        Raises:
            RuntimeError: A helper crashed (its own output says why).
        """
        failed = {}
        for index, process in enumerate(self.processes, start=1):
            status = process.stdout.readline().strip()
            if status != "0":
                failed[index] = status or f"exited with {process.wait()}"
        if failed:
            raise RuntimeError("grid worker(s) failed: " + "; ".join(f"/w{index} {why}" for index, why in failed.items()))

    def pass_stop_on(self) -> None:
        """Passes a Ctrl-C on to the helpers still running at once, without waiting for them."""
        pass_stop_on(self.processes)

    def interrupt(self) -> None:
        """Passes a Ctrl-C on to the helpers still running and waits for them to stop.

        Their stdin ends first: a helper that has left its grid and waits for the next one has nothing to stop.
        """
        self._end_input()
        interrupt(self.processes)

    def close(self) -> None:
        """Tells the helpers no grid is coming (end of their stdin) and waits for them to exit.

        Helpers never handed a grid hold nothing, so they are stopped at once
        rather than left to finish starting up (a typo on the command line costs
        no more with helpers than without).
        """
        if not self._started:
            for process in self.processes:
                process.terminate()
        self._end_input()
        for process in self.processes:
            process.wait()

    def _end_input(self) -> None:
        """Closes the helpers' stdin: no grid is coming."""
        for process in self.processes:
            if process.stdin and not process.stdin.closed:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass

    def __enter__(self) -> GridHelpers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str]) -> int:
    """A helper: ``python -m ablations.engine.grid_workers INDEX``; one grid per line of stdin, one status per line of stdout."""
    die_with_parent()  # first: a parent killed from here on takes this helper with it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Statuses go to the parent on the original stdout; anything else printed goes to stderr.
    statuses = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    configure_threads(int(os.environ[THREADS_ENV]))
    # Imported once the thread pools are sized: the runner loads Keras.
    import optuna

    from ablations.engine.device import configure_gpus

    configure_gpus()

    from ablations.engine.execution.liveness import HEARTBEAT_GRACE_S, HEARTBEAT_INTERVAL_S
    from ablations.engine.execution.states import PARENT_ATTR
    from ablations.engine.grid import Grid
    from ablations.engine.registry import get_ablation
    from ablations.engine.runner import work_on_grid
    from ablations.engine.spec import ResolvedConfig
    from ablations.engine.storage import open_storage
    from ablations.engine.tracking import Tracker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracker = None
    try:
        while line := _next_grid():
            job = json.loads(line)
            # From here a stop signal fails the pack for a rerun; before, a helper holds nothing and dies at once.
            handle_stop_signals(worker=True)
            ablation = get_ablation(job["ablation"])
            config = ResolvedConfig(profile=job["profile"], fixed=job["fixed"], grid=job["grid"])
            storage = open_storage(job["storage"], heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S)
            study = optuna.load_study(study_name=job["study"], storage=storage)
            grid = Grid(study, study.user_attrs[PARENT_ATTR], config.trials(), resumed=True)
            tracker = tracker or Tracker()
            work_on_grid(ablation, config, grid, tracker, tracker.experiment_id(ablation.name), progress=job["progress"], label=f"/w{argv[0]}")
            statuses.write("0\n")
            statuses.flush()
    except KeyboardInterrupt as stop:
        return exit_status(stop)
    return 0


def _next_grid() -> str:
    """The next grid's line from the parent ("" at the end of its stdin).

    A helper that has left its grid holds nothing, so a stop ends it here at
    once: one that landed while it left (kept for a `check_stop` that no pack
    will call) is raised on entering, and one that lands while it waits
    interrupts the read. Else the parent, waiting for its helpers to stop,
    would wait for ever.
    """
    with interruptible():
        return sys.stdin.readline()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
