"""Stop signals: Ctrl-C (SIGINT), a scheduler's SIGTERM and a closed terminal's SIGHUP take one path.

Batch schedulers and preemptible machines (Slurm, Kubernetes, spot instances)
stop a job with SIGTERM, sometimes SIGHUP, and kill it a few seconds later.
`handle_stop_signals` makes each of the three raise `Stopped`, a
`KeyboardInterrupt`: every ``except KeyboardInterrupt`` of the grid and study
wings (the pack's runs end KILLED, its trials fail for a rerun, workers are
told) then serves a scheduler's stop as it serves Ctrl-C. ``ablate`` prints
`RESUME_LINE` and exits with `exit_status`, as a shell reports a process
killed by that signal (130, 143, 129).

A second signal while the first is being handled stops the ``ablate``
process at once (the default action). A worker process, whose parent passes
Ctrl-C on to it, ignores a second SIGINT (a terminal's Ctrl-C reaches both)
but still dies of SIGTERM, which is what it gets when its parent dies.

Imports nothing heavy: workers call it before TensorFlow loads.
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_INTERRUPTED = 128 + signal.SIGINT
"""Exit status of a process stopped by Ctrl-C (SIGINT), as a shell reports it: ``ablate`` and its workers alike."""
RESUME_LINE = "interrupted: rerun the same command to resume"


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by a stop signal (`handle_stop_signals`).

    Args:
        signum: The signal that asked for the stop.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(stop: KeyboardInterrupt) -> int:
    """128 + the signal's number (130 for a plain Ctrl-C): what a shell reports for a process that signal killed."""
    return 128 + stop.signum if isinstance(stop, Stopped) else EXIT_INTERRUPTED


def stop_cause(error: BaseException) -> str:
    """What stopped the work, for a failed trial's reason: the signal's name, else the exception's type."""
    return str(error) if isinstance(error, Stopped) else type(error).__name__


def handle_stop_signals(*, worker: bool = False) -> None:
    """Makes SIGINT, SIGTERM and SIGHUP raise `Stopped` in this process's main thread, once.

    Args:
        worker: This process is a worker whose parent passes Ctrl-C on: after
            the first stop it ignores SIGINT (the parent's copy of a terminal's
            Ctrl-C) instead of dying of it mid-cleanup.
    """

    def stop(signum: int, frame) -> None:
        for other in STOP_SIGNALS:  # the next one is not caught: it ends the process as the signal would
            signal.signal(other, signal.SIG_IGN if worker and other == signal.SIGINT else signal.SIG_DFL)
        raise Stopped(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
