"""Acceptance: a study killed with SIGKILL three times, at random points, and rerun each time.

In the end it has exactly N trials that count (COMPLETE + PRUNED), no RUNNING
trial, and every MLflow child run is in a terminal state.
"""

import os
import random
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from ablations.engine.runner import open_storage
from tests.engine.test_study_support import mlflow_template, tracker  # noqa: F401 (fixtures)

N = 4
NAME = "killed"
COMMAND = [sys.executable, "-m", "ablations", "study", "--space", "tiny", "--data", "moons", "--trials", str(N), "--study-name", NAME]


def _trials(storage) -> list:
    try:
        return optuna.load_study(study_name=NAME, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def _wait_for_a_new_trial(process, storage, before: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(_trials(storage)) <= before and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_study_killed_three_times_at_random_points_ends_with_exactly_n_trials(tracker, tmp_path):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    storage = open_storage(None)
    log = tmp_path / "study.log"
    kills = []
    with log.open("w") as output:
        for kill in range(3):
            before = len(_trials(storage))
            process = subprocess.Popen(COMMAND, env=os.environ, stdout=output, stderr=subprocess.STDOUT)
            # Anywhere from the first write of a new trial to well into its training
            # (a tiny trial takes one to two seconds), or in the next one's start.
            _wait_for_a_new_trial(process, storage, before)
            time.sleep(rng.uniform(0.0, 2.5))
            kills.append(process.poll() is None)
            process.kill()
            process.wait()
        final = subprocess.run(COMMAND, env=os.environ, stdout=output, stderr=subprocess.STDOUT, timeout=300)
    context = f"(random seed {seed}; output:\n{log.read_text()[-3000:]})"
    assert final.returncode == 0, context
    assert all(kills), f"a run finished before it was killed {context}"

    trials = _trials(storage)
    states = [t.state for t in trials]
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == N, context
    assert TrialState.RUNNING not in states, context
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs["failure_reason"].startswith("stale:"), context

    experiment = tracker.client.get_experiment_by_name(f"study-{NAME}")
    runs = tracker.client.search_runs([experiment.experiment_id])
    children = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    assert parent.info.status == "FINISHED"
    assert all(r.info.status in ("FINISHED", "KILLED", "FAILED") for r in children), context
    # No trial is counted twice: one run per trial, and the counted runs are the counted trials.
    assert len({r.data.tags["optuna_trial"] for r in children}) == len(children)
    counted = {str(t.number) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    assert {r.data.tags["optuna_trial"] for r in children if r.info.status in ("FINISHED", "KILLED")} == counted
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
