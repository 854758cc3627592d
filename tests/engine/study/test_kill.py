"""Acceptance: a study killed with SIGKILL three times, at points defined by its progress, and rerun each time.

Each kill waits for a state of the study's storage, never for a time: the
first lands once a trial has recorded an epoch, the second once that run has
finished a trial and started the next, the third once it has finished another
trial and its next one has recorded an epoch. The budget (`N`) leaves several
trials to go at every kill, so a process can never finish before its kill.

In the end the study has exactly N trials that count (COMPLETE + PRUNED), no
RUNNING trial, and every MLflow child run is in a terminal state.
"""

import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from ablations.engine.storage import open_storage
from tests.engine.kills import kill_when

pytestmark = pytest.mark.process

N = 8
NAME = "killed"
COMMAND = [sys.executable, "-m", "ablations", "study", "--space", "tiny", "--data", "moons", "--trials", str(N), "--study-name", NAME]
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


def _trials(storage) -> list:
    try:
        return optuna.load_study(study_name=NAME, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def _counted(trials) -> int:
    return sum(t.state in COUNTED for t in trials)


def _running(trials, *, epochs: int = 0) -> bool:
    return any(t.state == TrialState.RUNNING and len(t.intermediate_values) >= epochs for t in trials)


def test_a_study_killed_three_times_at_progress_points_ends_with_exactly_n_trials(tracker, tmp_path):
    storage = open_storage(None)
    log = tmp_path / "study.log"
    seen = []
    with log.open("w") as output:

        def start():
            return subprocess.Popen(COMMAND, env=os.environ, stdout=output, stderr=subprocess.STDOUT)

        seen.append(kill_when(start(), lambda: _trials(storage), lambda ts: _running(ts, epochs=1), "a trial recorded an epoch"))
        base = _counted(seen[-1])
        seen.append(kill_when(start(), lambda: _trials(storage), lambda ts: _counted(ts) > base and _running(ts), "a trial finished and the next began"))
        base = _counted(seen[-1])
        seen.append(kill_when(start(), lambda: _trials(storage), lambda ts: _counted(ts) > base and _running(ts, epochs=1), "another trial finished"))
        final = subprocess.run(COMMAND, env=os.environ, stdout=output, stderr=subprocess.STDOUT, timeout=600)
    context = f"(output:\n{log.read_text()[-3000:]})"
    assert final.returncode == 0, context
    # Every kill left work undone: at most a few trials had counted when it landed.
    assert [_counted(trials) < N for trials in seen] == [True] * 3, context

    trials = _trials(storage)
    states = [t.state for t in trials]
    assert sum(s in COUNTED for s in states) == N, context
    assert TrialState.RUNNING not in states, context
    failed = [t for t in trials if t.state == TrialState.FAIL]
    # A kill fails at most the one trial its process was running, and the rerun says why.
    assert len(failed) <= 3, context
    assert all(t.user_attrs["failure_reason"].startswith("stale:") for t in failed), context

    experiment = tracker.client.get_experiment_by_name(f"study-{NAME}")
    runs = tracker.client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    assert parent.info.status == "FINISHED"
    assert all(r.info.status in ("FINISHED", "KILLED", "FAILED") for r in children), context
    # No trial is counted twice: one run per trial, and the counted runs are the counted trials.
    assert len({r.data.tags["optuna_trial"] for r in children}) == len(children)
    counted = {str(t.number) for t in trials if t.state in COUNTED}
    assert {r.data.tags["optuna_trial"] for r in children if r.info.status in ("FINISHED", "KILLED")} == counted
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
