"""The tracker's run lifecycle: what `end_run` leaves in MLflow."""

import pytest


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_end_run_writes_pending_metrics_then_the_status_and_end_time(tracker, status):
    experiment = tracker.experiment_id("lifecycle")
    run_id = tracker.start_run(experiment, "trial", params={"depth": 2})
    for epoch in range(3):
        tracker.log_metrics(run_id, {"val_loss": 1.0 / (epoch + 1)}, step=epoch, synchronous=False)
    tracker.end_run(run_id, status)
    run = tracker.client.get_run(run_id)
    assert run.info.status == status and run.info.end_time >= run.info.start_time
    history = tracker.client.get_metric_history(run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]


def test_every_run_carries_the_commit_in_mlflows_own_source_tag(tracker):
    import subprocess
    from pathlib import Path

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, check=True).stdout.strip()
    run = tracker.client.get_run(tracker.start_run(tracker.experiment_id("lineage"), "trial"))
    assert run.data.tags["mlflow.source.git.commit"] == head == run.data.tags["git_commit"]
    assert (run.data.tags["mlflow.source.name"], run.data.tags["mlflow.source.type"]) == ("ablate", "LOCAL")


def test_a_data_set_another_worker_inserted_meanwhile_is_linked_on_a_second_try(tracker, monkeypatch):
    # Two workers logging the same data set at once: both look it up, miss, and insert; the second insert breaks
    # MLflow's unique key (seen with --workers 2 on a loaded host). Replayed here deterministically: another
    # worker's run logs the data set between this worker's lookup and its insert.
    from mlflow.exceptions import MlflowException

    from ablations.engine.lineage import DataLineage

    experiment = tracker.experiment_id("race")
    mine, theirs = tracker.start_run(experiment, "w0"), tracker.start_run(experiment, "w1")
    data = [DataLineage("digits", "bundled", "0123456789abcdef", {"train": 1, "val": 1, "test": 1}, 0)]
    log_inputs, calls = tracker.client.log_inputs, []

    def racing(run_id, datasets):
        calls.append(run_id)
        if len(calls) == 1:
            log_inputs(theirs, datasets=datasets)  # the other worker wins the insert...
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name")
        return log_inputs(run_id, datasets=datasets)

    monkeypatch.setattr(tracker.client, "log_inputs", racing)
    tracker.log_data(mine, data)
    assert calls == [mine, mine]
    for run_id in (mine, theirs):
        assert [d.dataset.digest for d in tracker.client.get_run(run_id).inputs.dataset_inputs] == ["0123456789abcdef"]
    # Any other store error still surfaces.
    monkeypatch.setattr(tracker.client, "log_inputs", lambda run_id, datasets: (_ for _ in ()).throw(MlflowException("disk full")))
    with pytest.raises(MlflowException, match="disk full"):
        tracker.log_data(mine, data)


def test_an_experiment_another_process_created_meanwhile_is_used_not_created_twice(tracker, monkeypatch):
    # Two machines started at once on one store: both look the experiment up, miss, and create it; the second
    # create breaks MLflow's unique name (seen in the two-machines grid test). Replayed here deterministically.
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    other = MlflowClient(tracker.uri)  # the other machine
    look_up, looks = tracker.client.get_experiment_by_name, []

    def racing(name):
        looks.append(name)
        if len(looks) == 1:
            other.create_experiment(name)  # ...created between this process's look and its create
            return None
        return look_up(name)

    monkeypatch.setattr(tracker.client, "get_experiment_by_name", racing)
    theirs = tracker.experiment_id("shared")
    assert theirs == other.get_experiment_by_name("shared").experiment_id and looks == ["shared", "shared"]
    assert tracker.experiment_id("shared") == theirs
    # Any other store error still surfaces.
    monkeypatch.setattr(tracker.client, "create_experiment", lambda *a, **k: (_ for _ in ()).throw(MlflowException("disk full")))
    with pytest.raises(MlflowException, match="disk full"):
        tracker.experiment_id("new")
