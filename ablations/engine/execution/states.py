"""How a trial ended and what that means for its grid point, as typed values rather than text.

A FAIL trial carries its `Fate` in a system attribute (`FATE_ATTR`): whether
its grid point has a result (`Fate.OWN`) or is trained again (`Fate.retried`)
is read from there, never parsed from the human-readable reason
(`REASON_ATTR`), which is for people. A FAIL trial without a fate was failed
by Optuna's own heartbeat check: its worker died, so it is retried too.
"""

from __future__ import annotations

import enum

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ablations.engine.execution.optuna_private import storage_of, trial_id

FATE_ATTR = "fate"
"""System attribute of a FAIL trial: its `Fate`'s value."""
REASON_ATTR = "failure_reason"
"""User attribute (and MLflow tag) with the reason in words."""
WORKER_ATTR = "worker"
"""User attribute: the worker that runs the trial (`liveness.worker_identity`)."""
RUN_ATTR = "mlflow_run_id"
"""User attribute of a study trial: its MLflow run."""
PARENT_ATTR = "mlflow_parent_run_id"
"""Study user attribute: the MLflow parent run of a grid or a study."""
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
"""The MLflow status of a trial's run, by the trial's final state."""


class Fate(str, enum.Enum):
    """Why a trial is FAIL."""

    OWN = "own"
    """It failed for a reason of its own (an exception, a NaN objective): that is its grid point's result."""
    STALE = "stale"
    """Its worker died while it ran."""
    INTERRUPTED = "interrupted"
    """Its worker was stopped (Ctrl-C, a scheduler's signal) or its pack raised before it was told."""
    DUPLICATE = "duplicate"
    """A second trial of one grid point (two workers repaired at once): the other trial holds the point."""
    SURPLUS = "surplus"
    """A study trial asked beyond the budget by a worker racing another: it never ran."""
    CONCLUDED = "concluded"
    """The grid's conclusion token, spent: its worker wrote the verdict."""

    @property
    def retried(self) -> bool:
        """Whether the trial's grid point is trained again."""
        return self in (Fate.STALE, Fate.INTERRUPTED)


def run_status(state: TrialState, fate: Fate | None = None) -> str:
    """The MLflow status of a finished trial's run: KILLED for one that was stopped (`Fate.INTERRUPTED`), else `RUN_STATUS`."""
    return "KILLED" if fate is Fate.INTERRUPTED else RUN_STATUS[state]


def fate_of(trial: FrozenTrial) -> Fate | None:
    """The fate of a FAIL trial; `Fate.STALE` when it has none (Optuna's heartbeat failed it); None if not FAIL."""
    if trial.state != TrialState.FAIL:
        return None
    return Fate(trial.system_attrs.get(FATE_ATTR, Fate.STALE.value))


def record_fate(study: optuna.Study, trial: FrozenTrial | optuna.Trial, fate: Fate, reason: str) -> None:
    """Records why a trial is about to fail (before `optuna.Study.tell` or a move to FAIL).

    Raises:
        UpdateFinishedTrialError: The trial has already finished.
    """
    storage, number = storage_of(study), trial_id(trial)
    storage.set_trial_system_attr(number, FATE_ATTR, fate.value)
    storage.set_trial_user_attr(number, REASON_ATTR, reason)


def fail_trial(study: optuna.Study, trial: FrozenTrial | optuna.Trial, fate: Fate, reason: str) -> bool:
    """Records ``fate`` and ``reason`` on a trial and moves it to FAIL; False when it had already finished.

    Safe when another worker finishes the trial at the same moment: only one move to FAIL succeeds.
    """
    try:
        record_fate(study, trial, fate, reason)
        return storage_of(study).set_trial_state_values(trial_id(trial), state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def failure_reason(error: BaseException) -> str:
    """One line, at most 500 characters, naming the exception: what runs and tags carry as ``failure_reason``."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]
