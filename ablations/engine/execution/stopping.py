"""Stop signals: Ctrl-C (SIGINT), a scheduler's SIGTERM and a closed terminal's SIGHUP take one path.

Batch schedulers and preemptible machines (Slurm, Kubernetes, spot instances)
stop a job with SIGTERM, sometimes SIGHUP, and kill it a few seconds later.
`handle_stop_signals` makes each of the three raise `Stopped`, a
`KeyboardInterrupt`: every ``except KeyboardInterrupt`` of the grid and study
wings (the pack's runs end KILLED, its trials fail for a rerun, workers are
told) then serves a scheduler's stop as it serves Ctrl-C. ``ablate`` prints
`RESUME_LINE` and exits with `exit_status`, as a shell reports a process
killed by that signal (130, 143, 129).

Where the exception is raised matters. Raised in the middle of a write to
the MLflow or Optuna store it would leave a transaction open and the database
locked for the cleanup that follows. So a stop is raised at once only inside
an `interruptible` block (training, which writes nothing but buffered metrics)
and outside a `shielded` one within it; anywhere else it is kept and raised by
the next `check_stop`, which the runner calls before each pack and each
logged epoch, and on entering or leaving an `interruptible` block. One that lands in a
finalizer (``__del__``, where Python would print the exception and drop it)
is kept the same way.

A stop, once received, stays: every later `check_stop` raises it again. An
exception raised asynchronously can land where a library does not expect
one: a ``finally`` that then raises an error of its own in its place (NumPy's
``savez`` closing a half-written zip raises ValueError), a C-level finalizer,
a handler that swallows it. Such a stop would be lost, and its worker would
train its pack to the end while its parent waits. So an error that leaves an
`interruptible` block after a stop landed leaves it as the stop (the error
chained), and a stop swallowed in the block is raised when the block ends or
at the next check, at the latest one epoch later.

A second signal while the first is being handled stops the ``ablate``
process at once (the default action). A worker process, whose parent passes
Ctrl-C on to it, ignores a second SIGINT (a terminal's Ctrl-C reaches both)
but still dies of SIGTERM, which is what it gets when its parent dies.

Imports nothing heavy: workers call it before TensorFlow loads.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_INTERRUPTED = 128 + signal.SIGINT
"""Exit status of a process stopped by Ctrl-C (SIGINT), as a shell reports it: ``ablate`` and its workers alike."""
RESUME_LINE = "interrupted: rerun the same command to resume"


_received: int | None = None
"""The stop signal this process received (None: none since `handle_stop_signals`); every `check_stop` raises it."""
_passes: list[Callable[[], None]] = []
"""What `passing_stops_to` blocks pass a stop on with, called by the handler itself."""
_modes: list[bool] = []
"""The `interruptible` (True) and `shielded` (False) blocks this process is in, innermost last."""


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


def handle_stop_signals(*, worker: bool = False) -> dict[int, Any]:
    """Makes SIGINT, SIGTERM and SIGHUP stop this process's main thread with `Stopped`, once.

    Args:
        worker: This process is a worker whose parent passes Ctrl-C on: after
            the first stop it ignores SIGINT (the parent's copy of a terminal's
            Ctrl-C) instead of dying of it mid-cleanup.

    Returns:
        The handlers it replaced, by signal (for `signal.signal` to put back).
    """

    def stop(signum: int, frame) -> None:
        global _received
        for other in STOP_SIGNALS:  # the next one is not caught: it ends the process as the signal would
            signal.signal(other, signal.SIG_IGN if worker and other == signal.SIGINT else signal.SIG_DFL)
        _received = signum  # raised by every later `check_stop`, also when the raise below is lost
        for pass_on in list(_passes):
            pass_on()
        if _modes and _modes[-1] and not _in_finalizer(frame):
            raise Stopped(signum)

    global _received
    _received = None
    return {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}


def restore_stop_signals(replaced: dict[int, Any]) -> None:
    """Puts back the handlers `handle_stop_signals` replaced, and forgets the stop it received (its caller handled it).

    Args:
        replaced: What `handle_stop_signals` returned.
    """
    global _received
    for signum, handler in replaced.items():
        signal.signal(signum, handler)
    _received = None


def check_stop() -> None:
    """Raises `Stopped` once a stop signal has arrived (and again at each call); call it where work can stop."""
    if _received is not None:
        raise Stopped(_received)


@contextmanager
def interruptible() -> Iterator[None]:
    """A block a stop signal interrupts at once (training): `Stopped` is raised wherever it lands.

    A stop that arrived before the block is raised on entering it; one that
    the block swallowed, on leaving it; an error that leaves the block after a
    stop landed leaves it as the stop (a library's cleanup raised it in the
    stop's place).
    """
    check_stop()
    _modes.append(True)
    try:
        yield
    except Exception:
        check_stop()
        raise
    finally:
        _modes.pop()
    check_stop()


@contextmanager
def passing_stops_to(pass_on: Callable[[], None]) -> Iterator[None]:
    """Within the block, a stop signal is passed on by ``pass_on`` as it arrives, from the handler itself.

    Worker processes then stop their packs at once, rather than once this
    process, which may be deep in a store's write or a garbage collection
    where the stop waits, reaches a check and its own cleanup.

    Args:
        pass_on: Sends the stop on (`pool.pass_stop_on` on the workers); signal-safe: it only signals processes.
    """
    _passes.append(pass_on)
    try:
        yield
    finally:
        _passes.remove(pass_on)


@contextmanager
def shielded() -> Iterator[None]:
    """A block of writes a stop signal waits for (within an `interruptible` one); it is raised when the block ends."""
    _modes.append(False)
    try:
        yield
    finally:
        _modes.pop()
    if _modes and _modes[-1]:
        check_stop()


def _in_finalizer(frame) -> bool:
    """Whether the signal interrupted a ``__del__`` (TensorFlow frees its functions there during garbage collection).

    Python ignores an exception that leaves a finalizer ("Exception ignored
    in ..."): the stop would be lost.
    """
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False
