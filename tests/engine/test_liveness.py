"""Trials of dead workers are failed (once) and their MLflow runs closed as FAILED."""

import sqlite3
import subprocess

import optuna
from optuna.trial import TrialState

from ablations.engine.execution import liveness
from ablations.engine.execution.optuna_private import trial_id
from ablations.engine.execution.liveness import (
    HEARTBEAT_GRACE_S,
    HEARTBEAT_INTERVAL_S,
    close_finished_runs,
    fail_stale_trials,
    worker_alive,
    worker_identity,
)
from ablations.engine.storage import open_storage
from ablations.engine.study import loop


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_worker_alive_tells_dead_reused_and_foreign_workers_apart():
    me = worker_identity()
    assert worker_alive(me) is True
    assert worker_alive({**me, "pid": _dead_pid()}) is False
    assert worker_alive({**me, "started": "1"}) is False  # our pid, but not the process that ran the trial
    assert worker_alive({**me, "boot": "otherboot"}) is False  # the machine rebooted since
    assert worker_alive({**me, "host": "elsewhere"}) is None  # only a heartbeat can tell


def test_stale_trials_are_failed_and_their_runs_closed(tracker, monkeypatch):
    study = optuna.create_study(study_name="stale", storage=open_storage(None))
    me = worker_identity()
    owners = [{**me, "pid": _dead_pid()}, me, {**me, "host": "elsewhere", "pid": 1}, None]
    experiment = tracker.experiment_id("study-stale")
    parent = tracker.start_run(experiment, "parent")
    runs = []
    for owner in owners:
        trial = study.ask()
        if owner is not None:
            trial.set_user_attr("worker", owner)
        runs.append(tracker.start_run(experiment, f"trial {trial.number}", tags={"optuna_trial": trial.number}, parent_run_id=parent))
    done = study.ask()  # told by its worker, which died before closing its run
    study.tell(done, 0.5)
    runs.append(tracker.start_run(experiment, "trial 4", tags={"optuna_trial": 4}, parent_run_id=parent))

    assert fail_stale_trials(study) == [0]  # trial 3 has no worker yet, but is younger than the grace period
    monkeypatch.setattr(liveness, "OWNERLESS_GRACE_S", 0)
    assert fail_stale_trials(study) == [3]
    assert fail_stale_trials(study) == []  # failed once, by whoever comes first
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING, TrialState.FAIL, TrialState.COMPLETE]
    assert "worker pid" in study.trials[0].user_attrs["failure_reason"]

    assert close_finished_runs(tracker, experiment, parent, study) == 3
    statuses = [tracker.client.get_run(r).info.status for r in runs]
    assert statuses == ["FAILED", "RUNNING", "RUNNING", "FAILED", "FINISHED"]
    assert tracker.client.get_run(runs[0]).data.tags["failure_reason"].startswith("stale: worker pid")


def _age_heartbeats(database, seconds: int) -> None:
    """Moves every recorded heartbeat ``seconds`` into the past, as if its machine had gone quiet that long."""
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, ?)", (f"-{seconds} seconds",))


def test_on_an_rdb_storage_trials_of_a_dead_machine_fail_by_heartbeat(tracker, tmp_path):
    database = tmp_path / "optuna.db"
    storage = open_storage(f"sqlite:///{database}", heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S)
    study = optuna.create_study(study_name="heartbeat", storage=storage)
    trial = loop.ask(study)
    trial.set_user_attr("worker", {**worker_identity(), "host": "another-machine"})  # no pid to check
    storage.record_heartbeat(trial_id(trial))
    experiment = tracker.experiment_id("study-heartbeat")
    parent = tracker.start_run(experiment, "parent")
    run = tracker.start_run(experiment, "trial 0", tags={"optuna_trial": 0}, parent_run_id=parent)
    _age_heartbeats(database, HEARTBEAT_GRACE_S // 2)
    assert fail_stale_trials(study) == []  # quiet, but for half the grace period only
    _age_heartbeats(database, HEARTBEAT_GRACE_S)
    assert fail_stale_trials(study) == [0]
    assert close_finished_runs(tracker, experiment, parent, study) == 1
    closed = tracker.client.get_run(run)
    assert closed.info.status == "FAILED" and closed.data.tags["failure_reason"].startswith("stale: no heartbeat")
