"""``ablate study --workers N``: N fresh processes on one study, sharing this machine's cores.

The parent process has already opened the study and its MLflow parent run
(`session.open_session`), so the workers only load them. Each worker is a new
interpreter (``python -m ablations.engine.study.workers INDEX``) whose
TensorFlow thread pools are sized before TensorFlow runs its first op: with C
cores, each of N workers gets max(1, C // N) intra-op and inter-op threads, so
the workers share the cores instead of each spreading over all of them. The
Optuna storage (journal file, or an RDB) keeps them on one study. They start
one at a time and die with the parent, however it dies (`execution.pool`).

Many machines: run the same ``ablate study`` command on each, with
``--storage postgresql://...`` and ``MLFLOW_TRACKING_URI`` set to an MLflow
tracking server; each machine can use ``--workers`` for its own cores.
"""

from __future__ import annotations

import os
import sys

from ablations.engine.device import configure_threads, threads_per_worker
from ablations.engine.execution.pool import die_with_parent, interrupt, pass_stop_on, start_workers
from ablations.engine.execution.stopping import exit_status, handle_stop_signals, interruptible, passing_stops_to

OPTIONS_ENV = "ABLATE_STUDY_OPTIONS"
THREADS_ENV = "ABLATE_STUDY_THREADS"
EXIT_STOPPED = 3
"""A worker's exit code when it stopped because trials kept failing."""


def run_workers(session) -> bool:
    """Runs ``session.options.workers`` worker processes to the study's end; True if one stopped early.

    Raises:
        WorkerStartError: a worker could not start; those started were stopped.
        RuntimeError: a worker crashed (its own output says why).
    """
    options = session.options
    threads = threads_per_worker(options.workers)
    env = {**os.environ, OPTIONS_ENV: options.to_json(), THREADS_ENV: str(threads)}
    session.log(f"{options.workers} workers, {threads} TensorFlow thread(s) each")
    # One at a time; if one cannot start, those started are stopped and the launch ends in one line.
    workers = start_workers("ablations.engine.study.workers", range(options.workers), total=options.workers, env=env)
    try:
        # A stop signal reaches the workers as it arrives, and waiting writes nothing: it lands here at once too.
        with passing_stops_to(lambda: pass_stop_on(workers)), interruptible():
            codes = [worker.wait() for worker in workers]
    except KeyboardInterrupt:
        interrupt(workers)
        raise
    crashed = [index for index, code in enumerate(codes) if code not in (0, EXIT_STOPPED)]
    if crashed:
        raise RuntimeError(f"study worker(s) {', '.join(map(str, crashed))} exited with {[codes[i] for i in crashed]}")
    return EXIT_STOPPED in codes


def main(argv: list[str]) -> int:
    """A worker: ``python -m ablations.engine.study.workers INDEX`` with the options in the environment."""
    die_with_parent()  # first: a parent killed from here on takes this worker with it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure_threads(int(os.environ[THREADS_ENV]))
    # Imported once the thread pools are sized: the loop loads Keras, and TensorFlow
    # must not start before then.
    from ablations.engine.study.loop import work
    from ablations.engine.study.options import StudyOptions
    from ablations.engine.study.session import open_session

    options = StudyOptions.from_json(os.environ[OPTIONS_ENV])
    handle_stop_signals(worker=True)
    try:
        return EXIT_STOPPED if work(open_session(options, worker=f"/w{argv[0]}")) else 0
    except KeyboardInterrupt as stop:
        return exit_status(stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
