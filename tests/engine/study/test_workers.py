"""Acceptance: two workers on one study finish exactly N trials, on a journal file and on PostgreSQL; a stop
signal to their parent stops both in training.

The PostgreSQL test reads the server's URL from ``ABLATE_TEST_POSTGRES_URL``
(`.ci/run` starts a local server and sets it). Without a reachable server it is
skipped, except under ``CI=true``, where a missing server is a failure.
"""

import json
import os
import re
import signal
import subprocess
import sys
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from ablations.engine.cli import main
from ablations.engine.storage import open_storage
from ablations.engine.device import threads_per_worker
from ablations.engine.execution.states import FATE_ATTR, Fate
from tests.engine.kills import kill_when

pytestmark = pytest.mark.process

N = 4
POSTGRES_ENV = "ABLATE_TEST_POSTGRES_URL"


def _check_study(storage, name: str, tracker, output: str, workers: int = 2) -> list:
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == N, output
    assert TrialState.RUNNING not in states, output
    # The only failure allowed: a trial asked in the same instant as another for the last slot.
    assert all(t.user_attrs["failure_reason"].startswith("surplus") for t in trials if t.state == TrialState.FAIL)
    # Both workers worked on this one study. Which of them got how many trials
    # is the scheduler's business (a slow start can leave one with none), but
    # together they asked exactly the trials the study holds.
    asked = [int(n) for n in re.findall(r"\] worker done: (\d+) trial\(s\) asked here", output)]
    assert len(asked) == workers and sum(asked) == len(trials), output
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) <= workers
    for marker in ("Traceback", "database is locked", "OperationalError"):
        assert marker not in output
    experiment = tracker.client.get_experiment_by_name(f"study-{name}")
    runs = tracker.client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    children = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    assert len(children) == N  # a surplus trial never opens a run
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    return trials


def test_threads_are_shared_between_workers():
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(2, cores=16) == 8
    assert threads_per_worker(4, cores=2) == 1


def test_two_workers_on_a_journal_file(tracker, capfd):
    args = ["study", "--space", "tiny", "--data", "moons", "--trials", str(N), "--workers", "2", "--study-name", "journal2"]
    assert main(args) == 0
    output = "".join(capfd.readouterr())
    assert "2 workers, 1 TensorFlow thread(s) each" in output or os.cpu_count() != 2
    trials = _check_study(open_storage(None), "journal2", tracker, output)
    # Each worker sized TensorFlow's thread pools before its first op.
    assert {t.user_attrs["worker"]["tf_threads"] for t in trials} == {threads_per_worker(2)}


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    in_ci = os.environ.get("CI", "").lower() == "true"
    reason = f"{POSTGRES_ENV} is not set" if not url else None
    if url:
        try:
            open_storage(url)
        except Exception as error:  # noqa: BLE001 - any failure means no usable server
            reason = f"cannot open {url}: {error}"
    if reason:
        if in_ci:
            pytest.fail(f"CI=true needs a PostgreSQL server: {reason}")
        pytest.skip(reason)
    return url


@pytest.mark.postgres
def test_two_machines_on_postgresql(tracker, tmp_path):
    url = _postgres_url()
    name = f"pg-{uuid.uuid4().hex[:8]}"
    tracker.client.search_experiments()  # the shared MLflow store exists before both "machines" start
    command = [sys.executable, "-m", "ablations", "study", "--space", "tiny", "--data", "moons"]
    command += ["--trials", str(N), "--storage", url, "--study-name", name]
    logs = [tmp_path / f"machine{i}.log" for i in range(2)]
    # Two independent commands started at once, as on two machines: they race to create the study.
    processes = [subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    codes = [process.wait(timeout=300) for process in processes]
    output = "\n".join(log.read_text() for log in logs)
    assert codes == [0, 0], output
    try:
        _check_study(open_storage(url), name, tracker, output)
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(url))


def test_a_stop_signal_to_the_parent_stops_both_workers_in_training_and_leaves_nothing_running(tracker, tmp_path):
    # Trials of 100 epochs, each logged to MLflow as it ends: the signal goes to the parent alone (as a scheduler
    # sends it) once both workers' trials have logged an epoch and have at least 70 to go, so it must reach the
    # workers from the parent, in training, for both trials to end interrupted rather than complete.
    space = tmp_path / "long.json"
    space.write_text(json.dumps({"activation": ["relu", "tanh"], "width": 8, "depth": 1, "epochs": 100, "n_train": 300}))
    name = "stopped"
    command = [sys.executable, "-m", "ablations", "study", "--space", str(space), "--data", "moons"]
    process = subprocess.Popen([*command, "--trials", "2", "--workers", "2", "--study-name", name], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    storage = open_storage(None)

    def trials() -> list:
        try:
            return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        except KeyError:  # not created yet
            return []

    def both_in_training(seen: list) -> bool:
        epochs = [len(t.intermediate_values) for t in seen if t.state == TrialState.RUNNING]
        return len(epochs) == 2 and all(1 <= epoch <= 30 for epoch in epochs)

    kill_when(process, trials, both_in_training, "both workers' trials logged an epoch", signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 128 + signal.SIGTERM, err[-3000:]
    # One line says how to resume, naming the study (it was printed twice, the second time without the name).
    assert [line for line in lines if "interrupted: rerun" in line] == [f"ablate: interrupted: rerun the same command to resume study {name!r}"], err
    assert lines[-1].endswith(f"study {name!r}"), err[-3000:]
    assert "Traceback" not in err + out, err[-3000:]
    ended = trials()
    # Both trials stopped in training: failed as interrupted (a rerun asks new ones), none RUNNING, none COMPLETE.
    # The parent passes any stop on as a Ctrl-C (`pool.pass_stop_on`), which a worker that the scheduler's signal
    # reached too then ignores instead of dying of a second SIGTERM mid-cleanup.
    assert [(t.state, t.system_attrs.get(FATE_ATTR), t.user_attrs.get("failure_reason")) for t in ended] == [
        (TrialState.FAIL, Fate.INTERRUPTED.value, "interrupted (SIGINT)")
    ] * 2, (out, err[-3000:])
    experiment = tracker.client.get_experiment_by_name(f"study-{name}")
    runs = tracker.client.search_runs([experiment.experiment_id])
    (parent,) = [r.info.status for r in runs if r.data.tags.get("run_kind") == "study"]
    children = [r.info.status for r in runs if r.data.tags.get("run_kind") == "trial"]
    assert parent == "KILLED" and children == ["KILLED", "KILLED"], (parent, children)
