"""``ablate run NAME --workers N``: N fresh processes on one grid, sharing this machine's cores.

The parent process has opened the grid (`grid.open_grid`), so each worker only
loads it by name and runs `runner.work_on_grid` until no pack is left; the one
that takes the conclusion token writes the verdict. As for ``ablate study
--workers``, each worker is a new interpreter whose TensorFlow thread pools are
sized before TensorFlow's first op (`study.workers.threads_per_worker`).

Many machines: run the same ``ablate run`` on each, with ``--storage
postgresql://...`` and ``MLFLOW_TRACKING_URI`` set to an MLflow tracking server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from ablations.engine.spec import ResolvedConfig
from ablations.engine.study.workers import available_cores, configure_threads, threads_per_worker

GRID_ENV = "ABLATE_GRID"
THREADS_ENV = "ABLATE_GRID_THREADS"


def run_grid_workers(config: ResolvedConfig, grid, storage: str | None, workers: int, *, progress: bool = True) -> None:
    """Runs ``workers`` processes on ``grid`` to its end.

    Args:
        config: The grid's resolved configuration (handed over as is, not resolved again).
        grid: The open grid.
        storage: Its Optuna storage URL (None: the default journal file).
        workers: Number of processes.
        progress: Print each worker's progress lines.

    Raises:
        RuntimeError: A worker crashed (its own output says why).
    """
    threads = threads_per_worker(workers)
    job = {
        "ablation": grid.study.user_attrs["ablation"],
        "profile": config.profile,
        "fixed": config.fixed,
        "grid": config.grid,
        "study": grid.name,
        "storage": storage,
        "progress": progress,
    }
    env = {**os.environ, GRID_ENV: json.dumps(job), THREADS_ENV: str(threads)}
    if progress:
        print(f"{job['ablation']}: {workers} workers, {threads} TensorFlow thread(s) each, on {available_cores()} cores", file=sys.stderr, flush=True)
    processes = [subprocess.Popen([sys.executable, "-m", "ablations.engine.grid_workers", str(i)], env=env) for i in range(workers)]
    try:
        codes = [process.wait() for process in processes]
    except KeyboardInterrupt:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait()
        raise
    crashed = [index for index, code in enumerate(codes) if code != 0]
    if crashed:
        raise RuntimeError(f"grid worker(s) {', '.join(map(str, crashed))} exited with {[codes[i] for i in crashed]}")


def main(argv: list[str]) -> int:
    """A worker: ``python -m ablations.engine.grid_workers INDEX`` with the job in the environment."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_threads(int(os.environ[THREADS_ENV]))
    # Imported once the thread pools are sized: the runner loads Keras.
    import optuna

    from ablations.engine.device import configure_gpus

    configure_gpus()

    from ablations.engine.grid import PARENT_ATTR, Grid
    from ablations.engine.registry import get_ablation
    from ablations.engine.runner import work_on_grid
    from ablations.engine.storage import open_storage
    from ablations.engine.study.stale import HEARTBEAT_GRACE_S, HEARTBEAT_INTERVAL_S
    from ablations.engine.tracking import Tracker

    job = json.loads(os.environ[GRID_ENV])
    ablation = get_ablation(job["ablation"])
    config = ResolvedConfig(profile=job["profile"], fixed=job["fixed"], grid=job["grid"])
    storage = open_storage(job["storage"], heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=job["study"], storage=storage)
    grid = Grid(study, study.user_attrs[PARENT_ATTR], config.trials(), resumed=True)
    tracker = Tracker()
    try:
        work_on_grid(ablation, config, grid, tracker, tracker.experiment_id(ablation.name), progress=job["progress"], label=f"/w{argv[0]}")
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
