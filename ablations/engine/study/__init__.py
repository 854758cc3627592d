"""``ablate study``: an Optuna study over the suite's model space that resumes, runs in parallel and scales out.

Flow: `study_options` validates everything (space, data, choices) before any
store is touched -> `run_study` opens the Optuna storage and the study, and
claims the study's MLflow parent run (`session`) -> each worker loops: fail
stale trials, ask a trial, open its nested MLflow run, train
(`trial.train_trial`), tell Optuna and close the run (`loop`) ->
`summary.summarize` puts the best params and value, importances and figures on
the parent run.

Budget: the study runs until it has ``trials`` trials that finished COMPLETE or
PRUNED. FAIL trials (exceptions, NaN losses, trials of dead workers) are kept
and reported but do not count, so a rerun after a crash or a second worker
continues to the same total and no trial is counted twice.

Resume and stale trials: each trial records its worker (host, boot id, pid and
the pid's start time) at its start. At every (re)start and before every trial,
a worker fails the RUNNING trials whose worker is gone from this host, and
closes their MLflow runs as FAILED. With an RDB storage the trials also send a
heartbeat, so trials of a dead machine fail once their heartbeat is older than
`execution.liveness.HEARTBEAT_GRACE_S` (`optuna.storages.fail_stale_trials`).

The modules, one job each: `options` (the options, defined once, and their
checks), `space` (the search space), `data` (the data set and objectives),
`session` (study, parent run, report), `trial` (one trial's training), `loop`
(a worker's trials), `workers` (worker processes), `summary` (the parent run's
summary) and `run` (`run_study`). What it shares with ``ablate run`` (a trial's
lifecycle, stale trials of dead workers, the worker pool, Optuna's private
attributes) is `ablations.engine.execution`.

The names below load on first use (PEP 562): a worker process
(``python -m ablations.engine.study.workers``) imports this package before it
sizes TensorFlow's and OpenMP's thread pools, and ``ablate study`` checks its
options before Keras loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ablations.engine.study.options import StudyOptions, option_table, study_options
    from ablations.engine.study.run import run_study
    from ablations.engine.study.session import COUNTED, StudyReport, StudySession, open_session

_LAZY = {
    "StudyOptions": "ablations.engine.study.options",
    "option_table": "ablations.engine.study.options",
    "study_options": "ablations.engine.study.options",
    "run_study": "ablations.engine.study.run",
    "COUNTED": "ablations.engine.study.session",
    "StudyReport": "ablations.engine.study.session",
    "StudySession": "ablations.engine.study.session",
    "open_session": "ablations.engine.study.session",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
