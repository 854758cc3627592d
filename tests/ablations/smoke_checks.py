"""Checks every smoke run shares: what the runner logged agrees with the numbers the trials produced.

Each smoke test calls these on the child runs it reads back from MLflow, then
asserts the values its own tiny run must produce.
"""

import json
import math

import pandas as pd
import pytest

from ablations.engine.protocol import REMEDIES, trial_diagnosis
from ablations.engine.verdict import overall_outcome


def logged_finals(child: pd.Series) -> dict[str, float]:
    """A child run's logged metrics (latest value of each), as ``{name: value}``."""
    return {k.removeprefix("metrics."): float(v) for k, v in child.items() if k.startswith("metrics.") and pd.notna(v)}


def assert_diagnoses_follow_the_logged_errors(children: pd.DataFrame) -> pd.Series:
    """Every child's diagnosis (and remedy) tag is the one its own logged train and validation errors give.

    Returns the diagnoses, indexed like ``children``.
    """
    diagnoses = {}
    for index, child in children.iterrows():
        expected = trial_diagnosis(logged_finals(child))
        assert expected is not None, f"run {child['run_id']} logged no train/validation errors"
        assert child.get("tags.diagnosis") == expected, (child["run_id"], child.get("tags.diagnosis"), expected)
        assert child.get("tags.remedy") == REMEDIES[expected]
        diagnoses[index] = expected
    return pd.Series(diagnoses)


def assert_data_lineage(tracker, parent, children: pd.DataFrame, *, loads_data: bool = True) -> None:
    """Every child run names the data it trained on as MLflow dataset inputs; the parent names the set of them."""
    digests = set()
    for run_id in children["run_id"]:
        inputs = tracker.client.get_run(run_id).inputs.dataset_inputs
        assert bool(inputs) == loads_data, (run_id, inputs)
        for item in inputs:
            profile = json.loads(item.dataset.profile)
            assert item.dataset.source_type in ("bundled", "generated", "tfds") and profile["train"] > 0 and "split_seed" in profile
            assert [(tag.key, tag.value) for tag in item.tags] == [("mlflow.data.context", "train")]
            digests.add(item.dataset.digest)
    assert {item.dataset.digest for item in parent.inputs.dataset_inputs} == digests


def assert_verdict_logged(tracker, result, children: pd.DataFrame, *, loads_data: bool = True):
    """The parent run carries the verdict the runner returned, counts every child as finished, and the data lineage; returns the parent."""
    parent = tracker.client.get_run(result.parent_run_id)
    assert_data_lineage(tracker, parent, children, loads_data=loads_data)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["verdict"] == result.verdict.outcome
    assert parent.data.tags["verdict_summary"] == result.verdict.summary
    effect = parent.data.metrics["verdict_effect"]
    assert (math.isnan(effect) and math.isnan(result.verdict.effect)) or effect == result.verdict.effect
    # The verdict follows from its checks by the one policy, and says so in verdict.json.
    record = tracker.load_json(result.parent_run_id, "verdict.json")
    assert record["outcome"] == overall_outcome((row["part"], row["outcome"]) for row in record["table"]) == result.verdict.outcome
    assert len(record["table"]) == len(result.verdict.checks)
    assert parent.data.metrics["trials_finished"] == len(children) and parent.data.metrics["trials_failed"] == 0
    assert set(children["status"]) == {"FINISHED"}
    return parent


def assert_selected_on_validation(tracker, result, ablation, children: pd.DataFrame) -> dict:
    """Each test score belongs to the trial with the lowest objective of its group (ties: the first trial).

    Returns the selections logged in ``test.json``, keyed like it.
    """
    selections = tracker.load_json(result.parent_run_id, "test.json")
    groups = children.groupby([f"params.{name}" for name in ablation.select_within]) if ablation.select_within else [((), children)]
    assert len(selections) == len(groups)
    metrics = tracker.client.get_run(result.parent_run_id).data.metrics
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        name = "/".join(str(v) for v in key) or "study"
        order = group.assign(trial=group["tags.optuna_trial"].astype(int)).sort_values([f"metrics.{ablation.objective}", "trial"])
        assert selections[name]["trial"] == order["trial"].iloc[0], name
        prefix = f"{name}/" if key else ""
        if f"{prefix}test_accuracy" in metrics:
            assert metrics[f"{prefix}test_error"] == pytest.approx(1 - metrics[f"{prefix}test_accuracy"], abs=1e-12)
            assert 0 <= metrics[f"{prefix}test_error"] <= 1
    return selections
