"""The worker pool of grids and studies: starting worker processes, stopping them, and never outliving their parent.

`start_workers` starts them one at a time and, when one fails to start (the
machine is out of processes or memory), stops those already started before it
says so in one line: a launch either starts every worker or leaves none behind.
`interrupt` passes a Ctrl-C on to them; `stop` terminates them.

`die_with_parent` is the first thing a worker's ``main`` calls. A worker's
parent that is killed (even with SIGKILL, which it cannot catch) takes its
workers with it: on Linux the kernel sends them SIGKILL when it dies
(``PR_SET_PDEATHSIG``); elsewhere a thread of each worker watches for it.
SIGKILL, not SIGTERM: a worker handles SIGTERM as a stop (`stopping`) and
would first close what it holds, which an orphan must not take its time over;
what it held is repaired as stale by the next run.

Imports nothing heavy: the workers call it before TensorFlow loads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

PARENT_ENV = "ABLATE_WORKER_PARENT"
"""The pid of the process that started a worker: the worker compares its parent with it."""
PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 0.5
"""How often a worker without ``PR_SET_PDEATHSIG`` (not Linux) checks that its parent lives."""


class WorkerStartError(RuntimeError):
    """A worker process could not start, or died before it was handed its work; the others are stopped.

    Its message is one line, fit for ``ablate: error: ...``.
    """


def start_workers(
    module: str,
    indices: Sequence[int],
    *,
    total: int,
    env: Mapping[str, str],
    **popen: Any,
) -> list[subprocess.Popen]:
    """Starts ``python -m MODULE INDEX`` for each index, one at a time; all of them or none.

    Args:
        module: The worker's module (its ``main`` calls `die_with_parent` first).
        indices: The workers' indices (``/wINDEX`` in messages).
        total: Workers in all, for messages ("worker /w3 of 8").
        env: The workers' environment; the parent's pid is added (`PARENT_ENV`).
        **popen: More arguments of `subprocess.Popen` (stdin, stdout, text, ...).

    Raises:
        WorkerStartError: One could not start; those already started were stopped and waited for.
    """
    env = {**env, PARENT_ENV: str(os.getpid())}
    started: list[subprocess.Popen] = []
    for index in indices:
        try:
            started.append(subprocess.Popen([sys.executable, "-m", module, str(index)], env=env, **popen))
        except (OSError, subprocess.SubprocessError) as error:
            stop(started)
            already = f"stopped the {len(started)} already started" if started else "none had started"
            raise WorkerStartError(f"could not start worker /w{index} of {total}: {error}; {already}") from error
    return started


def stop(processes: Sequence[subprocess.Popen]) -> None:
    """Terminates the processes still running and waits for every one (no zombie, no orphan).

    Args:
        processes: Worker processes (`start_workers`).
    """
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait()


def pass_stop_on(processes: Sequence[subprocess.Popen]) -> None:
    """Passes a Ctrl-C on to the processes still running, without waiting (a second one is ignored by them).

    Args:
        processes: Worker processes (`start_workers`).
    """
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)


def interrupt(processes: Sequence[subprocess.Popen]) -> None:
    """Passes a Ctrl-C on to the processes still running and waits for every one to stop.

    Each fails what it was training for a rerun (`states.Fate.INTERRUPTED`) and exits.

    Args:
        processes: Worker processes (`start_workers`).
    """
    pass_stop_on(processes)
    for process in processes:
        process.wait()


def die_with_parent() -> None:
    """Makes this worker exit when the process that started it dies, however it dies.

    Call it first in a worker's ``main``. Without `PARENT_ENV` (a worker
    started by hand) it does nothing.
    """
    expected = os.environ.get(PARENT_ENV)
    if not expected:
        return
    parent = int(expected)
    if sys.platform.startswith("linux") and _set_parent_death_signal(signal.SIGKILL):
        # The parent may have died before the signal was armed: then this process
        # was already handed to another parent, and nothing would ever signal it.
        if os.getppid() != parent:
            os._exit(1)
        return
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


def _set_parent_death_signal(signum: int) -> bool:
    """Asks Linux to send ``signum`` to this process when its parent thread ends; False where it cannot.

    The kernel sends it when the thread that started this process ends; the
    ``ablate`` process starts its workers from its main thread, which ends only
    with the process.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """Exits this process once its parent is gone (it is then handed to another parent)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)
