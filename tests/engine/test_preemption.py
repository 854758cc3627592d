"""Acceptance: a pack killed with SIGKILL mid-training resumes from its checkpoint on rerun, to the same aggregates.

early_stopping's smoke grid is one pack of two members (no stopping, the lecture's
rule), here for 200 epochs, checkpointed after every epoch. The kill waits for a
checkpoint of epoch 5 or later to be on disk (a point of progress, never a
time), which leaves the pack about 195 epochs from its end. The rerun of the
same command continues from that checkpoint, says so, and ends with the
aggregates of an uninterrupted run, to the last bit. A checkpoint cut short
is discarded with one line and the pack trains from epoch 0, to the same
numbers.

Marked slow, not process: it kills once per case at a deterministic point
and races nothing, so CI runs it once (``make test-slow``).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.engine.kills import checkpoint_epochs, kill_when
from ablations.engine.tracking import Tracker

pytestmark = pytest.mark.slow

EPOCHS = 200
KILL_AFTER = 5
SETTINGS = ["early_stopping", "--profile", "smoke", "--set", f"epochs={EPOCHS}", "--no-report", "--checkpoint-every", "0"]


def _ablate() -> list[str]:
    return [sys.executable, "-m", "ablations", "run", *SETTINGS]


def _env(folder: Path, new_store) -> dict[str, str]:
    return {**os.environ, "ABLATE_RESULTS_DIR": str(folder), "MLFLOW_TRACKING_URI": new_store(folder)}


def _aggregates(folder: Path) -> pd.DataFrame:
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db")
    experiment = tracker.client.get_experiment_by_name("early_stopping")
    runs = tracker.client.search_runs([experiment.experiment_id], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("run_kind") == "ablation"]
    assert parent.info.status == "FINISHED"
    assert not [r for r in runs if r.info.status == "RUNNING"]
    return pd.read_csv(tracker.client.download_artifacts(parent.info.run_id, "aggregates.csv", str(folder)))


def _killed_mid_pack(folder: Path, env: dict) -> Path:
    """Runs the grid until a checkpoint of epoch >= KILL_AFTER is on disk, then SIGKILLs it; returns the checkpoint."""
    with (folder / "killed.log").open("w") as output:
        process = subprocess.Popen(_ablate(), env=env, stdout=output, stderr=subprocess.STDOUT)
        kill_when(process, lambda: checkpoint_epochs(folder), lambda epochs: any(e >= KILL_AFTER for e in epochs),
                  f"a checkpoint of epoch {KILL_AFTER} or later")
    (checkpoint,) = (folder / "checkpoints").glob("*/*/segment-0.npz")
    return checkpoint


@pytest.mark.parametrize("checkpoint_state", ["whole", "truncated"])
def test_a_pack_killed_mid_training_resumes_from_its_checkpoint_to_the_same_aggregates(tmp_path, new_store, checkpoint_state):
    reference = tmp_path / "reference"
    env = _env(reference, new_store)
    done = subprocess.run(_ablate(), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    folder = tmp_path / "killed"
    env = _env(folder, new_store)
    checkpoint = _killed_mid_pack(folder, env)
    with np.load(checkpoint) as saved:
        epoch = json.loads(str(saved["__meta__"]))["epoch"]
    assert KILL_AFTER <= epoch < EPOCHS
    if checkpoint_state == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    rerun = subprocess.run(_ablate(), env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    lines = rerun.stderr.splitlines()
    resumed = [line for line in lines if "resuming a pack from its checkpoint" in line]
    discarded = [line for line in lines if "discarded" in line]
    if checkpoint_state == "whole":
        # It continues where the kill left it (the checkpoint read, or a later one written before the kill landed).
        (line,) = resumed
        at = int(line.split(" at epoch ")[1].split(" of ")[0])
        assert at >= epoch and f"of {EPOCHS}" in line and not discarded, rerun.stderr[-3000:]
        assert any(f"(resumed at epoch {at} of {EPOCHS})" in line for line in lines), rerun.stderr[-3000:]
    else:
        assert resumed == [] and len(discarded) == 1, rerun.stderr[-3000:]
        assert discarded[0].endswith("its pack restarts from epoch 0")
    # The pack's checkpoints go once its trials are told.
    assert not list((folder / "checkpoints").glob("*/*/*"))
    pd.testing.assert_frame_equal(_aggregates(folder), _aggregates(reference), check_exact=True)
