"""Killing a process at a point defined by its progress, read from storage: never after a sleep."""

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

POLL_S = 0.02
"""How often the storage is read; only the reaction time depends on it, not what the test sees."""


def kill_when(process, read: Callable[[], list], ready: Callable[[list], bool], what: str, signum: int = signal.SIGKILL) -> list:
    """Sends ``signum`` (SIGKILL) to ``process`` once ``ready(read())`` holds; returns what ``read`` saw then.

    Fails when the process exits before that state, or before the signal lands.
    """
    while True:
        trials = read()
        if ready(trials):
            break
        if process.poll() is not None:
            raise AssertionError(f"{process.args[3:5]} exited with {process.returncode} before {what}")
        time.sleep(POLL_S)
    alive = process.poll() is None
    process.send_signal(signum)
    process.wait(timeout=120)
    assert alive, f"{process.args[3:5]} exited before its kill {what}"
    return trials


def checkpoint_epochs(results: Path) -> list[int]:
    """The epoch of each pack checkpoint under a results folder now (a file being replaced reads as absent).

    A checkpoint on disk means its pack is training: one is written at epoch ends, never after the last, and
    removed once the pack's trials are told.
    """
    epochs = []
    try:
        paths = list((results / "checkpoints").glob("*/*/segment-*.npz"))
    except FileNotFoundError:  # a pack's folder removed (its trials told) while the glob walked it: read again
        return checkpoint_epochs(results)
    for path in paths:
        try:
            with np.load(path) as saved:
                epochs.append(json.loads(str(saved["__meta__"]))["epoch"])
        except (OSError, ValueError, KeyError):
            continue
    return epochs
