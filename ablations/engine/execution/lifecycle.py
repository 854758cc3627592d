"""A trial's life in both stores, for grids and studies alike: its MLflow run opens, Optuna is told, the run ends.

The order of writes is what lets a killed worker's state be repaired by the
next process (`liveness`): the run is created tagged with its parent, its
Optuna study and trial number in one call; its metrics are stored before Optuna
is told; Optuna is told before the run ends. A trial told but whose run is
still open gets its run closed from the trial's state
(`liveness.close_finished_runs`); a trial never told is failed as stale and
its run closed as FAILED.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from ablations.engine.execution.states import REASON_ATTR, Fate, record_fate, run_status

if TYPE_CHECKING:
    from ablations.engine.tracking import Tracker

STOLEN_REASON = "stale: failed by another worker while it still ran"
"""Why a trial this worker finished was already FAIL: its heartbeat stalled for the grace period."""


@dataclass(frozen=True)
class TrialRuns:
    """Opens and ends the MLflow runs of one worker's trials, and tells Optuna how each ended.

    Args:
        study: The Optuna study (a grid's or a study's).
        tracker: The MLflow tracker.
        experiment_id: The MLflow experiment of the runs.
        parent_run_id: The parent run they nest under.
    """

    study: optuna.Study
    tracker: Tracker
    experiment_id: str
    parent_run_id: str

    def open(self, trial: optuna.Trial, name: str, params: dict[str, Any], tags: dict[str, Any]) -> str:
        """Creates the trial's nested run, tagged with its study and trial number in the same call; returns its id."""
        tags = {**tags, "optuna_study": self.study.study_name, "optuna_trial": trial.number}
        return self.tracker.start_run(self.experiment_id, name, params=params, tags=tags, parent_run_id=self.parent_run_id)

    def finish(
        self,
        trial: optuna.Trial,
        run_id: str | None,
        state: TrialState,
        values: Sequence[float] | None = None,
        reason: str | None = None,
        fate: Fate = Fate.OWN,
    ) -> TrialState:
        """Tells Optuna how the trial ended, then ends its run with the matching status; returns the state told.

        A value that is not finite turns the trial into a FAIL of its own. A
        trial another worker failed meanwhile (its heartbeat stalled) keeps
        that state, and its run says so.

        Args:
            trial: The trial.
            run_id: Its MLflow run (None: it never got one).
            state: COMPLETE, PRUNED or FAIL.
            values: The objective values of a COMPLETE trial.
            reason: Why it failed, in words (the trial's and the run's ``failure_reason``).
            fate: Why it failed, as the grid reads it (`Fate`).
        """
        if values is not None and not all(math.isfinite(v) for v in values):
            state, values, reason, fate = TrialState.FAIL, None, f"objective values {list(values)} are not finite", Fate.OWN
        if reason:
            try:
                record_fate(self.study, trial, fate, reason)
            except UpdateFinishedTrialError:
                pass  # failed by another worker: `tell` reads its state
        told = self.study.tell(trial, values=values, state=state, skip_if_finished=True).state
        if told != state:
            reason, state = STOLEN_REASON, told
        if run_id:
            if state != TrialState.COMPLETE or reason:  # a FINISHED run says COMPLETE; one write less per trial
                self.tracker.set_tags(run_id, {"optuna_state": state.name, **({REASON_ATTR: reason} if reason else {})})
            self.tracker.end_run(run_id, run_status(state, fate))
        return state

    def interrupted(self, run_ids: Sequence[str]) -> None:
        """Ends the runs of trials stopped by Ctrl-C as KILLED; their trials are failed for a rerun by the caller."""
        for run_id in run_ids:
            self.tracker.end_run(run_id, "KILLED")
