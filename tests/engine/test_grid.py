"""Acceptance: an ablation's grid killed twice with SIGKILL and rerun; stopped by a signal; two workers on one grid.

Each kill waits for a state of the grid's storage, never for a time: the first
lands once a pack has finished and the next one is training, the second once
the rerun has finished another pack and is training the next. The grid has
four packs, so every kill leaves work undone.

In the end every grid point has exactly one FINISHED MLflow run, no trial or
run is RUNNING, and the aggregates over seeds equal those of an uninterrupted
run of the same settings in another store, to the last bit.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from ablations.engine.grid import POINT_ATTR
from ablations.engine.storage import open_storage
from tests.engine.kills import checkpoint_epochs, kill_when
from ablations.engine.tracking import Tracker

pytestmark = pytest.mark.process

# vanishing_gradients' smoke grid over four depths: 8 trials in 4 packs of 2 (relu and sigmoid train together).
SETTINGS = ["vanishing_gradients", "--profile", "smoke", "--set", "depth=2,3,4,5", "--no-report", "--quiet"]
POINTS = 8


def _ablate(*extra: str) -> list[str]:
    return [sys.executable, "-m", "ablations", "run", *SETTINGS, *extra]


def _points(storage) -> list:
    studies = [s for s in storage.get_all_studies() if s.user_attrs.get("ablation") == "vanishing_gradients"]
    if not studies:
        return []
    study = optuna.load_study(study_name=studies[-1].study_name, storage=storage)
    return [t for t in study.get_trials(deepcopy=False) if POINT_ATTR in t.user_attrs]


def _complete(trials) -> int:
    return sum(t.state == TrialState.COMPLETE for t in trials)


def _training(trials) -> bool:
    return any(t.state == TrialState.RUNNING for t in trials)


def _aggregates(folder: Path) -> tuple[pd.DataFrame, list]:
    """The concluded parent run's aggregates and the grid's child runs, from the store in ``folder``."""
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db")
    experiment = tracker.client.get_experiment_by_name("vanishing_gradients")
    runs = tracker.client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "ablation"]
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    frame = pd.read_csv(tracker.client.download_artifacts(parent.info.run_id, "aggregates.csv", str(folder)))
    return frame, children


def _reference(tmp_path: Path, new_store, *extra: str) -> Path:
    """An uninterrupted run of the same settings into its own store."""
    folder = tmp_path / ("reference" + "".join(extra).replace("-", ""))
    env = {**os.environ, "ABLATE_RESULTS_DIR": str(folder), "MLFLOW_TRACKING_URI": new_store(folder)}
    done = subprocess.run(_ablate(*extra), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def test_a_grid_killed_twice_at_progress_points_resumes_to_the_same_aggregates(tracker, tmp_path, new_store):
    storage = open_storage(None)
    log = tmp_path / "run.log"
    seen = []
    with log.open("w") as output:

        def start():
            return subprocess.Popen(_ablate(), env=os.environ, stdout=output, stderr=subprocess.STDOUT)

        seen.append(kill_when(start(), lambda: _points(storage), lambda ts: _complete(ts) >= 2 and _training(ts), "a pack finished and the next began"))
        base = _complete(_points(storage))
        seen.append(kill_when(start(), lambda: _points(storage), lambda ts: _complete(ts) > base and _training(ts), "the rerun finished a pack"))
        final = subprocess.run(_ablate(), env=os.environ, stdout=output, stderr=subprocess.STDOUT, timeout=600)
    context = f"(output:\n{log.read_text()[-3000:]})"
    assert final.returncode == 0, context
    assert [_complete(trials) < POINTS for trials in seen] == [True, True], context
    # Each rerun said it resumed the grid rather than starting a new one.
    assert log.read_text().count("vanishing_gradients: resuming grid vanishing_gradients-smoke-") == 2, context

    trials = _points(storage)
    assert TrialState.RUNNING not in {t.state for t in trials} and TrialState.WAITING not in {t.state for t in trials}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs[POINT_ATTR] for t in complete) == list(range(POINTS)), context
    failed = [t for t in trials if t.state == TrialState.FAIL]
    # A kill fails at most the pack its process was training (2 trials; none if that pack finished between the
    # test's look and the kill), and the rerun says why.
    assert len(failed) <= 4 and all(t.user_attrs["failure_reason"].startswith("stale: ") for t in failed), context

    aggregates, children = _aggregates(Path(os.environ["ABLATE_RESULTS_DIR"]))
    assert all(r.info.status in ("FINISHED", "FAILED", "KILLED") for r in children), context
    finished = [r for r in children if r.info.status == "FINISHED"]
    # Every grid point finished exactly once.
    points = [(r.data.params["activation"], r.data.params["depth"]) for r in finished]
    assert len(points) == POINTS and len(set(points)) == POINTS
    reference, _ = _aggregates(_reference(tmp_path, new_store))
    pd.testing.assert_frame_equal(aggregates, reference, check_exact=True)


@pytest.mark.parametrize(("signum", "workers"), [(signal.SIGTERM, "1"), (signal.SIGINT, "2")], ids=["sigterm", "sigint-2-workers"])
def test_a_stop_signal_mid_grid_exits_with_one_line_and_leaves_nothing_running(tracker, signum, workers):
    storage = open_storage(None)
    # Packs of 300 epochs, checkpointed after each: the signal is sent once two trials are done and a pack's
    # checkpoint says it has at least two thirds of its epochs to go, so the stop lands in training, not between
    # packs. With two workers the signal reaches this process, which passes it on to its helper from the handler;
    # a garbage collection in progress here can hold the handler back for a fraction of a second, in which a
    # helper trains a few dozen of its 200 remaining epochs.
    command = _ablate("--workers", workers, "--set", "epochs=300", "--checkpoint-every", "0")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = Path(os.environ["ABLATE_RESULTS_DIR"])
    seen = kill_when(process, lambda: (_points(storage), checkpoint_epochs(results)),
              lambda seen: _complete(seen[0]) >= 2 and any(epoch <= 100 for epoch in seen[1]), "a pack was a third through training", signum)
    out, err = process.communicate()
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 128 + signum, err[-3000:]
    assert lines[-1] == "ablate: interrupted: rerun the same command to resume" and "Traceback" not in err, err[-3000:]
    trials = _points(storage)
    assert [t.user_attrs for t in trials if t.state == TrialState.RUNNING] == [], err[-3000:]
    failed = [t.user_attrs["failure_reason"] for t in trials if t.state == TrialState.FAIL]
    states = [(t.number, t.state.name, t.user_attrs.get("failure_reason")) for t in trials]
    assert failed and all(reason.startswith(f"stale: interrupted by {signum.name}") for reason in failed), (states, seen, err[-4000:])
    experiment = tracker.client.get_experiment_by_name("vanishing_gradients")
    runs = tracker.client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r.info.status for r in runs if r.data.tags.get("run_kind") == "ablation"]
    children = [r.info.status for r in runs if r.data.tags.get("run_kind") == "trial"]
    # The stopped pack's runs (those it had opened when the signal landed) end KILLED; none FAILED, none RUNNING.
    assert parent == "KILLED" and set(children) <= {"FINISHED", "KILLED"}, children
    assert children.count("FINISHED") == sum(t.state == TrialState.COMPLETE for t in trials), children


def test_two_workers_share_a_grid_and_give_the_same_aggregates_as_one(tmp_path, new_store):
    two = _reference(tmp_path, new_store, "--workers", "2")
    one = _reference(tmp_path, new_store)
    aggregates_two, children = _aggregates(two)
    aggregates_one, _ = _aggregates(one)
    pd.testing.assert_frame_equal(aggregates_two, aggregates_one, check_exact=True)
    # Each grid point trained once, and both workers trained some (the first claims one pack, not the grid).
    points = [(r.data.params["activation"], r.data.params["depth"]) for r in children if r.info.status == "FINISHED"]
    assert len(children) == POINTS and sorted(set(points)) == sorted(points)
    storage = open_storage(f"journal:{two}/optuna.journal")
    (study,) = storage.get_all_studies()
    token = [t for t in optuna.load_study(study_name=study.study_name, storage=storage).trials if t.user_attrs.get("pack") == -1]
    assert [t.user_attrs["failure_reason"] for t in token] == ["conclusion token: this worker wrote the verdict"]


@pytest.mark.postgres
def test_two_machines_started_at_once_share_one_grid_on_postgresql(tracker, tmp_path):
    from tests.engine.study.test_workers import _postgres_url

    url = _postgres_url()
    tracker.client.search_experiments()  # the shared MLflow store exists before both "machines" start
    logs = [tmp_path / f"machine{i}.log" for i in range(2)]
    # Two independent commands started at once, as on two machines: they race to create the grid.
    started = time.time()
    processes = [subprocess.Popen(_ablate("--storage", url), stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    codes = [process.wait(timeout=600) for process in processes]
    output = "\n".join(log.read_text() for log in logs)
    storage = open_storage(url)
    studies = [s for s in storage.get_all_studies() if s.user_attrs.get("ablation") == "vanishing_gradients"]
    try:
        assert codes == [0, 0], output
        (study,) = [s for s in studies if s.user_attrs.get("created", 0) > started]  # one grid, not two
        trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
        complete = [t.user_attrs[POINT_ATTR] for t in trials if t.state == TrialState.COMPLETE]
        assert sorted(complete) == list(range(POINTS)), output
        assert TrialState.RUNNING not in {t.state for t in trials} and TrialState.WAITING not in {t.state for t in trials}
        # One of the two wrote the verdict; the other said it would not.
        assert output.count("is concluded by the worker that finishes its last pack") == 1, output
        _, children = _aggregates(Path(os.environ["ABLATE_RESULTS_DIR"]))
        finished = [(r.data.params["activation"], r.data.params["depth"]) for r in children if r.info.status == "FINISHED"]
        assert len(finished) == POINTS and len(set(finished)) == POINTS
    finally:
        for study in studies:
            optuna.delete_study(study_name=study.study_name, storage=storage)
