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
