"""`ablate study` in one process: MLflow parent and child runs, resume, failures, bad input."""

import dataclasses
import json
import os
import signal

import numpy as np
import optuna
import pytest
from mlflow import MlflowClient

from ablations.engine.cli import main
from ablations.engine.storage import open_storage
from ablations.engine.study import loop
from ablations.engine.study import run_study, study_options


def _runs(tracker, study_name):
    experiment = tracker.client.get_experiment_by_name(f"study-{study_name}")
    runs = tracker.client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    children = sorted((r for r in runs if r.data.tags.get("run_kind") == "trial"), key=lambda r: int(r.data.tags["optuna_trial"]))
    assert len(parents) == 1
    return parents[0], children


def _study(name):
    return optuna.load_study(study_name=name, storage=open_storage(None))


def test_a_study_logs_a_parent_with_its_summary_and_one_child_per_trial_and_resumes(tracker):
    options = study_options(space="tiny", data="moons", trials=3, progress=False)
    report = run_study(options, tracker=tracker)
    assert report.complete + report.pruned == 3 and report.running == 0
    parent, children = _runs(tracker, options.study_name)
    assert parent.info.status == "FINISHED"
    assert [c.data.tags["mlflow.parentRunId"] for c in children] == [parent.info.run_id] * 3
    trials = _study(options.study_name).trials
    expected = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}
    assert [c.info.status for c in children] == [expected[t.state.name] for t in trials]
    assert [t.user_attrs["mlflow_run_id"] for t in trials] == [c.info.run_id for c in children]
    assert "final_val_error" in children[0].data.metrics and children[0].data.params["activation"] in ("relu", "tanh")
    best = min(t.value for t in trials if t.state.name == "COMPLETE")
    assert parent.data.metrics["best_val_error"] == pytest.approx(best)
    assert {"best.activation", "best.learning_rate", "best_trial"} <= set(parent.data.tags)
    artifacts = {a.path for a in tracker.client.list_artifacts(parent.info.run_id)}
    figures = {a.path for a in tracker.client.list_artifacts(parent.info.run_id, "figures")}
    assert {"space.json", "importances.json"} <= artifacts
    assert figures == {"figures/optimization_history.png", "figures/param_importances.png", "figures/parallel_coordinate.png"}
    assert any(k.startswith("importance.") for k in parent.data.metrics)

    # The same command again has nothing left to do; a larger budget continues the same study and parent.
    again = run_study(options, tracker=tracker)
    assert again.complete + again.pruned == 3 and again.parent_run_id == report.parent_run_id
    assert len(_study(options.study_name).trials) == 3
    more = run_study(dataclasses.replace(options, trials=4), tracker=tracker)
    assert more.complete + more.pruned == 4 and more.parent_run_id == report.parent_run_id
    parent, children = _runs(tracker, options.study_name)
    assert len(children) == 4 and parent.info.status == "FINISHED"


def test_a_nan_loss_and_an_exception_fail_their_trials_and_the_study_goes_on(tracker, monkeypatch):
    real = loop.train_trial

    def flaky(config, data, *, seed, **kwargs):
        if seed == 1:  # a real NaN: training on NaN features
            data = dataclasses.replace(data, x_train=np.full_like(data.x_train, np.nan))
        if seed == 2:
            raise RuntimeError("boom in trial 2")
        return real(config, data, seed=seed, **kwargs)

    monkeypatch.setattr(loop, "train_trial", flaky)
    options = study_options(space="tiny", data="moons", trials=2, pruner="none", progress=False)
    report = run_study(options, tracker=tracker)
    assert (report.complete, report.failed) == (2, 2)
    _, children = _runs(tracker, options.study_name)
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FAILED", "FINISHED"]
    assert children[1].data.tags["failure_reason"].startswith("TerminateOnNaN: the training loss became nan")
    assert children[2].data.tags["failure_reason"] == "RuntimeError: boom in trial 2"
    trials = _study(options.study_name).trials
    assert trials[2].user_attrs["failure_reason"] == "RuntimeError: boom in trial 2"


def test_two_objectives_on_a_grid_give_a_pareto_front(tracker, tmp_path):
    space = tmp_path / "grid.json"
    space.write_text(json.dumps({"activation": ["relu", "tanh"], "depth": 1, "width": 8, "epochs": 1, "n_train": 200}))
    options = study_options(space=str(space), data="moons", trials=10, sampler="grid", objective="both", progress=False)
    assert (options.trials, options.pruner) == (2, "none")  # capped to the grid; no pruning for two objectives
    report = run_study(options, tracker=tracker)
    assert report.complete == 2
    assert sorted(t.params["activation"] for t in _study(options.study_name).trials) == ["relu", "tanh"]
    parent, _ = _runs(tracker, options.study_name)
    assert {"best_val_error", "best_gap"} <= set(parent.data.metrics)
    front = tracker.load_json(parent.info.run_id, "pareto_front.json")
    assert front and set(front[0]["values"]) == {"val_error", "gap"}


def test_the_timeout_stops_starting_trials(tracker):
    options = study_options(space="tiny", data="moons", trials=5, timeout=1e-9, progress=False)
    report = run_study(options, tracker=tracker)
    assert (report.complete, report.pruned, report.failed, report.best_values) == (0, 0, 0, None)
    parent, children = _runs(tracker, options.study_name)
    assert children == [] and parent.info.status == "FINISHED"


def _space_file(tmp_path, content):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(content))
    return str(path)


BAD_INPUTS = [
    (["--sampler", "cmaes"], "Unknown sampler 'cmaes'. Valid choices: tpe, random, grid."),
    (["--pruner", "asha"], "Unknown pruner 'asha'. Valid choices: median, hyperband, none."),
    (["--objective", "accuracy"], "Unknown objective 'accuracy'. Valid choices: val_error, gap, both."),
    (["--objective", "both", "--pruner", "median"], "with --objective both the valid --pruner is none"),
    (["--space", "huge"], "Unknown space 'huge'. Valid choices: mlp, small, tiny"),
    (["--space", {"colour": ["red"]}], "Unknown space key 'colour'. Valid keys: activation"),
    (["--space", {"keep_prob": {"low": 0.5, "high": 1.5}}], "keep_prob=1.5 is out of range; valid: 0.05 to 1.0"),
    (["--data", "cifar"], "Unknown data set 'cifar'. Valid choices: "),
    (["--trials", "0"], "--trials must be an integer from 1 to 100000"),
    (["--cv", "1"], "--cv must be an integer from 2 to 100"),
    (["--storage", "foo://x"], "Cannot open storage 'foo://x'"),
    (["--storage", "sqlite:////nonexistent/folder/o.db"], "Valid forms: sqlite:///PATH.db"),
    (["--storage", "journal:/nonexistent/folder/o.log"], "Valid forms: sqlite:///PATH.db"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(map(str, a)) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, capsys, tmp_path, _never_the_real_mlruns):
    args = [_space_file(tmp_path, a) if isinstance(a, dict) else a for a in args]
    assert main(["study", "--space", "tiny", "--data", "moons", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ablate: error: ")
    assert message in err
    assert list(_never_the_real_mlruns.iterdir()) == []  # no Optuna journal, no MLflow database


def test_rerunning_a_study_with_another_space_is_refused(capsys, _never_the_real_mlruns):
    storage = open_storage(None)
    study = optuna.create_study(study_name="mine", storage=storage)
    study.set_user_attr("study_config", {"data": "moons", "objective": "val_error", "cv": 0, "space": {}})
    assert main(["study", "--space", "tiny", "--data", "moons", "--study-name", "mine"]) == 2
    err = capsys.readouterr().err
    assert "Study 'mine' already exists with another space" in err
    assert not (_never_the_real_mlruns / "mlflow.db").exists()


def test_a_stop_that_lands_in_an_epochs_write_waits_for_it_then_fails_the_trial_as_interrupted(tracker, monkeypatch, tmp_path, capsys):
    # Training is interruptible, but an epoch's write to the store is not: a stop raised in its middle left the SQLite
    # transaction open, and the write of the trial's fate then failed with "database is locked".
    space = _space_file(tmp_path, {"activation": "relu", "depth": 1, "width": 8, "epochs": 6, "n_train": 200})
    real_log_batch, written = MlflowClient.log_batch, []

    def log_batch(client, run_id, metrics=(), **kwargs):
        steps = {metric.step for metric in metrics}
        if steps == {2}:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # the handler runs here, before the write
        real_log_batch(client, run_id, metrics=metrics, **kwargs)
        written.extend(steps)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    command = ["study", "--space", space, "--data", "moons", "--trials", "1", "--pruner", "none", "--study-name", "cut"]
    assert main(command) == 128 + signal.SIGTERM
    # One line, naming the study its rerun must name.
    resume = [line for line in capsys.readouterr().err.splitlines() if "interrupted: rerun" in line]
    assert resume == ["ablate: interrupted: rerun the same command to resume study 'cut'"]
    assert written == [1, 2]  # the second epoch's write went through; training stopped right after it
    _, children = _runs(tracker, "cut")
    history = tracker.client.get_metric_history(children[0].info.run_id, "loss")
    assert [metric.step for metric in history] == [1, 2]
    assert children[0].info.status == "KILLED" and children[0].data.tags["failure_reason"] == "interrupted (SIGTERM)"
    (trial,) = _study("cut").trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["failure_reason"] == "interrupted (SIGTERM)"
