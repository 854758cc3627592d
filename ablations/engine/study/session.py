"""One process's handle on a study: the Optuna study, its MLflow parent run, and what a run reports.

`open_session` opens (or creates) the study in its storage, checks that an
existing study has the same identity (space, data set, objective, cv), sets the
sampler and pruner, claims the study's MLflow parent run (the one recorded on
the study, else a new one) and fails the stale trials of dead workers.
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from ablations.engine.execution.liveness import (
    HEARTBEAT_GRACE_S,
    HEARTBEAT_INTERVAL_S,
    close_finished_runs,
    fail_stale_trials,
    worker_identity,
)
from ablations.engine.execution.states import PARENT_ATTR
from ablations.engine.samplers import BatchGridSampler
from ablations.engine.spec import ConfigError
from ablations.engine.storage import open_storage
from ablations.engine.study.data import OBJECTIVES
from ablations.engine.study.options import StudyOptions

# Keras, TensorFlow and MLflow load when a study opens, not when its options are
# checked, so `ablate study` answers a typo in about a second.
if TYPE_CHECKING:
    from ablations.engine.tracking import Tracker

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The states that count towards ``--trials``."""
CONFIG_ATTR = "study_config"


@dataclass
class StudySession:
    """One process's handle on a study: storage, study, tracker and the MLflow parent run."""

    options: StudyOptions
    study: optuna.Study
    tracker: Tracker
    experiment_id: str
    parent_run_id: str
    created_parent: str | None = None
    worker: str = ""
    identity: dict[str, Any] = field(default_factory=worker_identity)

    @property
    def parent(self) -> str:
        """The parent run, read afresh: two machines that start a study at once agree on one."""
        return self.study.user_attrs.get(PARENT_ATTR, self.parent_run_id)

    def log(self, message: str) -> None:
        if self.options.progress:
            prefix = f"[{self.options.study_name}{self.worker}]"
            print(f"{prefix} {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class StudyReport:
    """Where a study stands after a run (all of it is also in Optuna and MLflow)."""

    study_name: str
    parent_run_id: str
    experiment_id: str
    complete: int
    pruned: int
    failed: int
    running: int
    best_values: list[float] | None
    best_params: dict[str, Any] | None
    stopped_early: bool = False


def open_session(options: StudyOptions, *, tracker: Tracker | None = None, worker: str = "") -> StudySession:
    """Opens (or creates) the study and its MLflow parent run; fails stale trials of dead workers."""
    import tensorflow as tf

    from ablations.engine.tracking import Tracker

    storage = open_storage(options.storage, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["minimize"] * len(OBJECTIVES[options.objective])
    try:
        study = optuna.load_study(study_name=options.study_name, storage=storage)
    except KeyError:
        study = optuna.create_study(
            study_name=options.study_name, storage=storage, directions=directions, load_if_exists=True
        )
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, options.identity)
    elif stored != json.loads(json.dumps(options.identity)):
        differs = ", ".join(k for k in options.identity if stored.get(k) != json.loads(json.dumps(options.identity[k])))
        raise ConfigError(
            f"Study {options.study_name!r} already exists with another {differs}; "
            "rerun it with its own options or choose a new --study-name."
        )
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"Study {options.study_name!r} already exists with other objectives; choose a new --study-name.")
    study.sampler = _sampler(options, n_existing=len(study.get_trials(deepcopy=False)), worker=worker)
    study.pruner = _pruner(options)

    tracker = tracker or Tracker()
    experiment_id = tracker.experiment_id(f"study-{options.study_name}")  # workers race to create it: the tracker allows for that
    # 0 means TensorFlow's default, all cores; --workers sets it per worker.
    identity = {**worker_identity(), "tf_threads": tf.config.threading.get_intra_op_parallelism_threads()}
    session = StudySession(options, study, tracker, experiment_id, parent_run_id="", worker=worker, identity=identity)
    session.parent_run_id, session.created_parent = _claim_parent(session)
    failed = fail_stale_trials(study)
    close_finished_runs(session.tracker, session.experiment_id, session.parent, study)
    if failed:
        session.log(f"failed {len(failed)} stale trial(s) of dead workers: {', '.join(map(str, failed))}")
    return session


def _sampler(options: StudyOptions, *, n_existing: int, worker: str) -> optuna.samplers.BaseSampler:
    # A rerun or another worker with the sampler's seed would replay its random
    # draws; folding in the trials so far and the worker keeps fresh runs reproducible.
    import numpy as np

    seed = int(np.random.SeedSequence([options.seed, n_existing, zlib.crc32(worker.encode())]).generate_state(1)[0])
    if n_existing == 0 and not worker:
        seed = options.seed
    if options.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if options.sampler == "grid":
        return BatchGridSampler(options.space.grid(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, options.trials // 3)))


def _pruner(options: StudyOptions) -> optuna.pruners.BasePruner:
    if options.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if options.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=options.space.fixed["epochs"], reduction_factor=3)
    return optuna.pruners.NopPruner()


def _claim_parent(session: StudySession) -> tuple[str, str | None]:
    """The study's parent run: the one recorded in the study, else a new one (returns it and whether we made it)."""
    study, tracker, options = session.study, session.tracker, session.options
    existing = study.user_attrs.get(PARENT_ATTR)
    if existing:
        if tracker.client.get_run(existing).info.status != "RUNNING":
            tracker.client.update_run(existing, status="RUNNING")
        _parent_tags(session, existing)
        return existing, None
    run_id = tracker.start_run(
        session.experiment_id,
        f"study {options.study_name}",
        params={
            "data": options.data,
            "objective": options.objective,
            "cv": options.cv,
            "space": options.space.name,
            **{f"setting.{k}": options.space.fixed[k] for k in ("epochs", "n_train")},
        },
        tags={"run_kind": "study", "optuna_study": options.study_name},
    )
    study.set_user_attr(PARENT_ATTR, run_id)
    tracker.log_json(run_id, options.space.as_data(), "space.json")
    _parent_tags(session, run_id)
    return study.user_attrs[PARENT_ATTR], run_id


def _parent_tags(session: StudySession, run_id: str) -> None:
    options = session.options
    session.tracker.set_tags(
        run_id,
        {
            "sampler": options.sampler,
            "pruner": options.pruner,
            "trials_target": options.trials,
            "optuna_storage": _redacted(options.storage),
        },
    )


def _redacted(url: str | None) -> str:
    if url is None or url.startswith("journal:"):
        return url or "journal (default, under mlruns/)"
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
