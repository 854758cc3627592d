"""Trials left RUNNING by dead workers: find them, fail them, close their MLflow runs.

Optuna's heartbeat (`fail_stale_trials`) exists only for RDB storages; the
default storage is a journal file, for one machine. So every trial records its
worker at its start (`worker_identity`: host, boot id, pid and the pid's start
time, so a reused pid or a reboot is not mistaken for the worker), and any
process on the same host fails the RUNNING trials whose worker is gone. On an
RDB storage the heartbeat covers the other machines as well.

A trial also has an MLflow run, which the dead worker left RUNNING: it is
closed as FAILED with the reason as a tag. Runs whose trial finished but whose
worker died before closing them get the status of their trial.

While a trial runs, `heartbeat` records its heartbeat (RDB storages), for grids
and studies alike.
"""

from __future__ import annotations

import os
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ablations.engine.execution.optuna_private import storage_of, trial_id
from ablations.engine.execution.states import REASON_ATTR, WORKER_ATTR, Fate, fail_trial, fate_of, run_status

HEARTBEAT_INTERVAL_S = 10
HEARTBEAT_GRACE_S = 60
"""RDB storages: a trial without a heartbeat for this long belongs to a dead worker."""
OWNERLESS_GRACE_S = 60
"""A RUNNING trial that has recorded no worker this long after its start lost it between ask and record."""


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "unknown"


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" if unknown), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def worker_identity() -> dict[str, Any]:
    """This process, as recorded on the trials it runs."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(), "started": _process_start(os.getpid())}


def worker_alive(worker: dict[str, Any]) -> bool | None:
    """Whether a recorded worker still runs; None when it ran on another host (ask its heartbeat)."""
    if worker.get("host") != socket.gethostname():
        return None
    if worker.get("boot") != _boot_id():
        return False
    pid = int(worker.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = _process_start(pid)
    return not started or not worker.get("started") or started == worker["started"]


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fails the RUNNING trials of dead workers; returns their numbers.

    Safe to call from many workers at once: a trial is failed by one of them.
    """
    numbers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        before = {trial_id(t) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)  # heartbeats; a no-op on journal storage
    now = datetime.now()
    for trial in study.get_trials(deepcopy=False):
        if trial_id(trial) in before and trial.state == TrialState.FAIL:
            numbers.append(trial.number)  # failed by the heartbeat check just now
            continue
        if trial.state != TrialState.RUNNING:
            continue
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker is None:
            age = (now - trial.datetime_start).total_seconds() if trial.datetime_start else 0.0
            if age < OWNERLESS_GRACE_S:
                continue
            reason = "stale: its worker died before recording itself on the trial"
        elif worker_alive(worker) is False:
            reason = f"stale: worker pid {worker.get('pid')} on {worker.get('host')} died while the trial ran"
        else:
            continue
        if fail_trial(study, trial, Fate.STALE, reason):  # False: another worker failed it first
            numbers.append(trial.number)
    return numbers


def close_finished_runs(tracker, experiment_id: str, parent_run_id: str, study: optuna.Study) -> int:
    """Gives every RUNNING child run whose trial has finished its trial's status; returns how many.

    A FAIL trial's run gets the trial's ``failure_reason`` (or the heartbeat's) as a tag.
    """
    runs = tracker.client.search_runs(
        [experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'",
        max_results=10_000,
    )
    if not runs:
        return 0
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    closed = 0
    for run in runs:
        trial = by_number.get(int(run.data.tags.get("optuna_trial", -1)))
        if trial is None or trial.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        status = run_status(trial.state, fate_of(trial))
        tags = {"optuna_state": trial.state.name}
        if trial.state == TrialState.FAIL:
            tags[REASON_ATTR] = trial.user_attrs.get(
                REASON_ATTR, f"stale: no heartbeat for {HEARTBEAT_GRACE_S} s (its worker or machine died)"
            )
        tracker.set_tags(run.info.run_id, tags)
        tracker.end_run(run.info.run_id, status)
        closed += 1
    return closed



@contextmanager
def heartbeat(study: optuna.Study, trial: Any) -> Iterator[None]:
    """Records the trial's heartbeat every interval of the storage while it runs (RDB storages only)."""
    storage = storage_of(study)
    # Only RDB storages (and Optuna's cache around them) have heartbeats.
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id(trial))
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
