"""Compares the results of two MLflow stores, ablation by ablation: did a change alter any number?

A refactoring must leave every number alone; a fix that changes numbers
should say which. `compare_stores` matches, for each ablation present in both
stores, the newest finished parent run of each, then their child runs by
their params (seed included), and compares every final metric, the
aggregates over seeds and the verdict.

Example (a redesign, checked on the quick profile):

    git stash; ABLATE_RESULTS_DIR=/tmp/before make ablate; git stash pop
    ABLATE_RESULTS_DIR=/tmp/after make ablate
    ablate compare /tmp/before /tmp/after
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import pandas as pd

from ablations.engine.tracking import Tracker

_IDENTITY_COLUMNS = ("run_id", "status")


@dataclass
class AblationComparison:
    """How one ablation's results differ between two stores.

    Args:
        name: The ablation.
        trials: Child runs matched by their params.
        only_before: Param sets found only in the first store.
        only_after: Param sets found only in the second store.
        metric_differences: ``(trial params, metric, before, after)`` beyond the tolerance.
        aggregate_differences: ``(row, column, before, after)`` of aggregates.csv beyond the tolerance.
        verdict_before: Outcome and summary in the first store.
        verdict_after: Outcome and summary in the second store.
    """

    name: str
    trials: int = 0
    only_before: int = 0
    only_after: int = 0
    metric_differences: list[tuple[str, str, float, float]] = field(default_factory=list)
    aggregate_differences: list[tuple[str, str, float, float]] = field(default_factory=list)
    verdict_before: tuple[str, str] | None = None
    verdict_after: tuple[str, str] | None = None

    @property
    def same(self) -> bool:
        return (
            not self.only_before
            and not self.only_after
            and not self.metric_differences
            and not self.aggregate_differences
            and self.verdict_before == self.verdict_after
        )

    def line(self) -> str:
        """One line: the ablation, what matched, and the largest difference."""
        verdict = self.verdict_after[0] if self.verdict_after else "no verdict"
        if self.same:
            return f"{self.name}: same ({self.trials} trials, every metric, aggregates, verdict {verdict})"
        parts = [f"{self.name}: DIFFERENT ({self.trials} trials matched"]
        if self.only_before or self.only_after:
            parts.append(f"{self.only_before} only before, {self.only_after} only after")
        for label, differences in (("metrics", self.metric_differences), ("aggregates", self.aggregate_differences)):
            if differences:
                where, name, before, after = max(differences, key=lambda d: _gap(d[2], d[3]))
                parts.append(f"{len(differences)} {label} differ, most {name} {before!r} -> {after!r} at {where}")
        if self.verdict_before != self.verdict_after:
            before = self.verdict_before[0] if self.verdict_before else "no verdict"
            parts.append(f"verdict {before} -> {verdict}")
        return "; ".join(parts) + ")"


def store_uri(location: str) -> str:
    """A results folder (holding mlflow.db) or a tracking URI, as a tracking URI."""
    if "://" in location:
        return location
    return f"sqlite:///{Path(location).resolve() / 'mlflow.db'}"


def compare_stores(before: str, after: str, *, rtol: float = 0.0, atol: float = 0.0) -> list[AblationComparison]:
    """Compares every ablation found in both stores (see the module doc).

    Args:
        before: Tracking URI of the reference store.
        after: Tracking URI of the store to check.
        rtol: Relative tolerance of a metric; 0 asks for equality.
        atol: Absolute tolerance of a metric.
    """
    trackers = Tracker(before), Tracker(after)
    parents = [_parents(tracker) for tracker in trackers]
    comparisons = []
    for name in sorted(set(parents[0]) & set(parents[1])):
        comparison = AblationComparison(name)
        runs = [_children(tracker, parent[name]) for tracker, parent in zip(trackers, parents)]
        _compare_trials(comparison, *runs, rtol=rtol, atol=atol)
        frames = [_artifact_frame(tracker, parent[name].info.run_id, "aggregates.csv") for tracker, parent in zip(trackers, parents)]
        comparison.aggregate_differences = _frame_differences(*frames, rtol=rtol, atol=atol)
        comparison.verdict_before, comparison.verdict_after = (
            _verdict(parent[name]) for parent in parents
        )
        comparisons.append(comparison)
    return comparisons


def _parents(tracker: Tracker) -> dict[str, object]:
    """Ablation name -> its newest finished parent run."""
    found = {}
    for experiment in tracker.client.search_experiments():
        runs = tracker.client.search_runs(
            [experiment.experiment_id],
            "tags.run_kind = 'ablation' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            found[runs[0].data.tags["ablation"]] = runs[0]
    return found


def _children(tracker: Tracker, parent) -> pd.DataFrame:
    frame = tracker.child_runs(parent.info.experiment_id, parent.info.run_id)
    if frame.empty:
        return frame
    frame = frame[frame["status"] == "FINISHED"]
    params = sorted(c for c in frame.columns if c.startswith("params."))
    frame = frame.assign(key=[" ".join(f"{p[7:]}={row[p]}" for p in params) for _, row in frame.iterrows()])
    return frame.set_index("key")


def _compare_trials(comparison: AblationComparison, before: pd.DataFrame, after: pd.DataFrame, *, rtol: float, atol: float) -> None:
    keys_before = set(before.index) if len(before) else set()
    keys_after = set(after.index) if len(after) else set()
    common = sorted(keys_before & keys_after)
    comparison.trials = len(common)
    comparison.only_before, comparison.only_after = len(keys_before - keys_after), len(keys_after - keys_before)
    metrics = sorted(c for c in set(before.columns) | set(after.columns) if c.startswith("metrics."))
    for key in common:
        for metric in metrics:
            a = before.at[key, metric] if metric in before else math.nan
            b = after.at[key, metric] if metric in after else math.nan
            if not _close(a, b, rtol, atol):
                comparison.metric_differences.append((key, metric.removeprefix("metrics."), float(a), float(b)))


def _artifact_frame(tracker: Tracker, run_id: str, path: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        try:
            return pd.read_csv(tracker.client.download_artifacts(run_id, path, folder))
        except Exception:  # no such artifact: nothing to compare
            return pd.DataFrame()


def _frame_differences(before: pd.DataFrame, after: pd.DataFrame, *, rtol: float, atol: float) -> list[tuple[str, str, float, float]]:
    # Columns are matched by name: their order says nothing about the numbers.
    if set(before.columns) != set(after.columns) or len(before) != len(after):
        return [("table", "shape", float(before.size), float(after.size))]
    after = after[list(before.columns)]
    differences = []
    for index in range(len(before)):
        for column in before.columns:
            a, b = before.iloc[index][column], after.iloc[index][column]
            numeric = isinstance(a, Real) and isinstance(b, Real)
            if (numeric and not _close(a, b, rtol, atol)) or (not numeric and a != b):
                differences.append((f"row {index}", column, a, b))
    return differences


def _verdict(parent) -> tuple[str, str] | None:
    tags = parent.data.tags
    return (tags["verdict"], tags.get("verdict_summary", "")) if "verdict" in tags else None


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if isinstance(a, Real) and isinstance(b, Real) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b or abs(a - b) <= atol + rtol * abs(a))


def _gap(a, b) -> float:
    try:
        return abs(float(a) - float(b))
    except (TypeError, ValueError):
        return math.inf
