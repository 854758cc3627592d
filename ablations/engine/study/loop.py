"""A study worker's loop: ask a trial, train it under its MLflow run, tell Optuna, repeat.

Order of writes in a trial, chosen so that a kill at any point leaves a state
the next process can repair (`execution.liveness`): ask -> start the heartbeat
(RDB storages) -> record the worker on the trial -> create the MLflow run,
tagged with the trial number in the same call -> record the run on the trial ->
train -> log final metrics -> tell Optuna -> close the MLflow run
(`execution.lifecycle`). A trial told but not closed gets its run closed from
its state; a trial not told is failed as stale and its run closed as FAILED.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import keras
import optuna
from optuna.trial import TrialState

from ablations.engine.execution.lifecycle import TrialRuns
from ablations.engine.execution.liveness import close_finished_runs, fail_stale_trials, heartbeat
from ablations.engine.execution.states import RUN_ATTR, WORKER_ATTR, Fate, failure_reason, record_fate
from ablations.engine.execution.stopping import check_stop, interruptible, shielded, stop_cause
from ablations.engine.study.data import OBJECTIVES, study_dataset
from ablations.engine.study.session import COUNTED, StudySession
from ablations.engine.study.trial import TrialDiverged, objective_values, train_trial
from callbacks.mlflow_logger import MlflowEpochLogger
from callbacks.pruning import OptunaPruning

MAX_CONSECUTIVE_FAILURES = 5
"""A worker stops after this many failed trials in a row: the space or the data is broken."""
_POLL_S = 1.0


class ShieldedCallbacks(keras.callbacks.Callback):
    """Callbacks that write to the stores once per epoch (its metrics, a pruning report); a stop signal waits for them.

    Training is `interruptible`: a stop raised in the middle of such a write
    would leave the store's transaction open and the SQLite database locked,
    and the writes that record the trial's fate would then fail. Only the
    train- and epoch-level hooks are passed on, so batches cost nothing more;
    callbacks that act per batch, or add to the logs, do not belong here.

    Args:
        callbacks: The callbacks, in order.
    """

    def __init__(self, callbacks: list[keras.callbacks.Callback]):
        super().__init__()
        self.callbacks = list(callbacks)

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def on_train_begin(self, logs=None):
        self._each("on_train_begin", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._each("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._each("on_epoch_end", epoch, logs)

    def on_train_end(self, logs=None):
        self._each("on_train_end", logs)

    def _each(self, hook: str, *args) -> None:
        with shielded():
            for callback in self.callbacks:
                getattr(callback, hook)(*args)


def counts(study: optuna.Study) -> tuple[int, int]:
    """(trials counted towards the budget, trials running)."""
    trials = study.get_trials(deepcopy=False, states=(*COUNTED, TrialState.RUNNING))
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return len(trials) - running, running


def work(session: StudySession) -> bool:
    """Runs trials until the study has its budget, the timeout passes or trials keep failing.

    Returns:
        True when the worker stopped because `MAX_CONSECUTIVE_FAILURES` trials failed in a row.
    """
    options, study = session.options, session.study
    started = time.monotonic()
    failures_in_a_row = asked = 0
    stopped = False
    while options.timeout is None or time.monotonic() - started < options.timeout:
        check_stop()
        if fail_stale_trials(study):
            close_finished_runs(session.tracker, session.experiment_id, session.parent, study)
        finished, running = counts(study)
        if finished >= options.trials:
            break
        if finished + running >= options.trials:
            time.sleep(_POLL_S)  # the last trials run in other workers, and may still fail
            continue
        asked += 1
        state = run_trial(session)
        failures_in_a_row = failures_in_a_row + 1 if state == TrialState.FAIL else 0
        if failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
            session.log(f"stopping: {failures_in_a_row} trials in a row failed")
            stopped = True
            break
    # Also tells that a worker found the study already done.
    session.log(f"worker done: {asked} trial(s) asked here")
    return stopped


def run_trial(session: StudySession) -> TrialState | None:
    """Runs one trial end to end; returns its final state (None for a surplus trial)."""
    trial = ask(session.study)
    # The heartbeat first, then the worker: a trial that lacks both for a while is stale.
    with heartbeat(session.study, trial):
        return _run(session, trial)


def _run(session: StudySession, trial: optuna.Trial) -> TrialState | None:
    options, study, tracker = session.options, session.study, session.tracker
    trial.set_user_attr(WORKER_ATTR, session.identity)
    if _surplus(study, trial, options.trials):
        # Another worker asked at the same moment for the last slot; this trial never ran.
        record_fate(study, trial, Fate.SURPLUS, f"surplus: {options.trials} trials were already finished or running")
        study.tell(trial, state=TrialState.FAIL)
        return None
    started = time.perf_counter()
    runs = TrialRuns(study, tracker, session.experiment_id, session.parent)
    state, values, reason, metrics, run_id, pruning = TrialState.COMPLETE, None, None, {}, None, None
    try:
        config = options.space.suggest(trial)
        run_id = child_run(session, runs, trial, config)
        if len(OBJECTIVES[options.objective]) == 1:  # Optuna prunes single-objective studies only
            pruning = OptunaPruning(trial, monitor=OBJECTIVES[options.objective][0])
        callbacks = [ShieldedCallbacks([MlflowEpochLogger(tracker.client, run_id, synchronous=True), *([pruning] if pruning else [])])]
        data = study_dataset(options.data, options.space.fixed["n_train"])
        with interruptible():  # a stop signal lands here at once; elsewhere it waits for the store's writes
            score = train_trial(config, data, seed=trial.number, cv=options.cv, callbacks=callbacks)
        values = objective_values(score.metrics, options.objective)
        metrics = {**score.metrics, "epochs_trained": score.epochs}
    except optuna.TrialPruned:
        state = TrialState.PRUNED
        metrics = {"epochs_trained": pruning.epochs_seen, "pruned_at_epoch": pruning.epochs_seen}
    except TrialDiverged as error:
        state, reason = TrialState.FAIL, str(error)
    except KeyboardInterrupt as stop:
        runs.finish(trial, run_id, TrialState.FAIL, reason=f"interrupted ({stop_cause(stop)})", fate=Fate.INTERRUPTED)
        raise
    except Exception as error:  # recorded on the trial; the study goes on
        state, reason = TrialState.FAIL, failure_reason(error)
    finally:
        # Without the full garbage collection (about half a second on a TensorFlow
        # heap), which Python's own collector does in time anyway.
        keras.backend.clear_session(free_memory=False)
    metrics["trial_seconds"] = time.perf_counter() - started
    if run_id:
        tracker.log_metrics(run_id, metrics, step=int(metrics.get("epochs_trained", 0)))
    state = runs.finish(trial, run_id, state, values, reason)
    finished, _ = counts(study)
    shown = ", ".join(f"{name}={v:.4f}" for name, v in zip(OBJECTIVES[options.objective], values or ()))
    detail = shown or reason or f"at epoch {metrics.get('pruned_at_epoch')}"
    session.log(f"trial {trial.number} {state.name} {detail} ({metrics['trial_seconds']:.1f} s); {finished}/{options.trials} finished")
    return state


def _surplus(study: optuna.Study, trial: optuna.Trial, budget: int) -> bool:
    ahead = study.get_trials(deepcopy=False, states=(*COUNTED, TrialState.RUNNING))
    return sum(t.number < trial.number for t in ahead) >= budget


def ask(study: optuna.Study) -> optuna.Trial:
    """`Study.ask`, without the warning that heartbeats are meant for `Study.optimize` (we send our own)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


def child_run(session: StudySession, runs: TrialRuns, trial: optuna.Trial, config: dict[str, Any]) -> str:
    """Opens the trial's nested MLflow run (tagged with its worker) and records it on the trial."""
    tags = {"run_kind": "trial", "worker_host": session.identity["host"], "worker_pid": session.identity["pid"]}
    params = {**config, "seed": trial.number, "data": session.options.data, "cv": session.options.cv}
    run_id = runs.open(trial, f"trial {trial.number}", params, tags)
    trial.set_user_attr(RUN_ATTR, run_id)
    return run_id
