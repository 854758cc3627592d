"""``ablate study``: an Optuna study over the suite's model space that resumes, runs in parallel and scales out.

Flow: `study_options` validates everything (space, data, choices) before any
store is touched -> `run_study` opens the Optuna storage and the study, and
claims the study's MLflow parent run -> each worker loops: fail stale trials,
ask a trial, open its nested MLflow run, train (`study_trial.train_trial`),
tell Optuna and close the run -> `study_summary.summarize` puts the best
params and value, importances and figures on the parent run.

Budget: the study runs until it has ``trials`` trials that finished COMPLETE or
PRUNED. FAIL trials (exceptions, NaN losses, trials of dead workers) are kept
and reported but do not count, so a rerun after a crash or a second worker
continues to the same total and no trial is counted twice.

Resume and stale trials: each trial records its worker (host, boot id, pid and
the pid's start time) at its start. At every (re)start and before every trial,
a worker fails the RUNNING trials whose worker is gone from this host, and
closes their MLflow runs as FAILED. With an RDB storage the trials also send a
heartbeat, so trials of a dead machine fail once their heartbeat is older than
`HEARTBEAT_GRACE_S` (`optuna.storages.fail_stale_trials`).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import zlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from ablations.engine.spec import ConfigError
from ablations.engine.study_space import SearchSpace, load_space, parse_space
from ablations.engine.study_stale import (
    HEARTBEAT_GRACE_S,
    HEARTBEAT_INTERVAL_S,
    close_finished_runs,
    fail_stale_trials,
    worker_identity,
)
from ablations.engine.storage import open_storage
from ablations.engine.study_data import OBJECTIVES, study_dataset

# Keras, TensorFlow and MLflow load when a study opens, not when its options are
# checked, so `ablate study` answers a typo in about a second.
if TYPE_CHECKING:
    from ablations.engine.tracking import Tracker

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The states that count towards ``--trials``."""
PARENT_ATTR = "mlflow_parent_run_id"
CONFIG_ATTR = "study_config"


@dataclass(frozen=True)
class StudyOptions:
    """A validated ``ablate study`` command (see `study_options`)."""

    space: SearchSpace
    trials: int = 20
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    study_name: str = ""
    cv: int = 0
    data: str = "digits"
    objective: str = "val_error"
    workers: int = 1
    seed: int = 0
    progress: bool = True

    @property
    def identity(self) -> dict[str, Any]:
        """What a study is: rerunning with other values here would mix incomparable trials."""
        return {"data": self.data, "objective": self.objective, "cv": self.cv, "space": self.space.as_data()}

    def to_json(self) -> str:
        values = asdict(self)
        values["space"] = {"name": self.space.name, "data": self.space.as_data()}
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> StudyOptions:
        values = json.loads(text)
        space = values.pop("space")
        return cls(space=parse_space(space["data"], space["name"]), **values)


def study_options(
    *,
    space: str = "mlp",
    trials: int = 20,
    timeout: float | None = None,
    sampler: str = "tpe",
    pruner: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    cv: int = 0,
    data: str = "digits",
    objective: str = "val_error",
    workers: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> StudyOptions:
    """Validates a study's options; nothing is written.

    Args:
        space: A named space (``mlp``, ``small``, ``tiny``) or a YAML/JSON file.
        trials: COMPLETE + PRUNED trials the study runs to, over all runs and workers.
        timeout: Seconds after which this invocation starts no new trial.
        sampler: tpe | random | grid.
        pruner: median | hyperband | none; None means median (none for ``objective="both"``).
        storage: Optuna storage URL (see `runner.open_storage`); None: journal under mlruns/.
        study_name: Defaults to ``<data>-<space>-<objective>[-cv<K>]``, so a rerun resumes.
        cv: K-fold cross-validation on the training data; 0 scores the validation split.
        data: A classification data set of `ablations.engine.data`.
        objective: val_error | gap | both (two objectives: a Pareto front).
        workers: Worker processes on this machine.
        seed: Seed of the sampler.

    Raises:
        ConfigError, UnknownNameError, DataError: with one line naming the valid choices.
    """
    for name, value, choices in (("sampler", sampler, SAMPLERS), ("objective", objective, tuple(OBJECTIVES))):
        if value not in choices:
            raise ConfigError(f"Unknown {name} {value!r}. Valid choices: {', '.join(choices)}.")
    if pruner is None:
        pruner = "none" if objective == "both" else "median"
    if pruner not in PRUNERS:
        raise ConfigError(f"Unknown pruner {pruner!r}. Valid choices: {', '.join(PRUNERS)}.")
    if objective == "both" and pruner != "none":
        raise ConfigError("Optuna cannot prune a two-objective study; with --objective both the valid --pruner is none.")
    _check_int("trials", trials, 1, 100_000)
    _check_int("workers", workers, 1, 256)
    _check_int("seed", seed, 0, 2**31 - 1)
    if cv != 0:
        _check_int("cv", cv, 2, 100)
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        raise ConfigError(f"--timeout must be a finite number of seconds > 0; received {timeout!r}.")
    search_space = load_space(space)
    if sampler == "grid":
        grid = search_space.grid()
        size = 1
        for values in grid.values():
            size *= len(values)
        trials = min(trials, size)
    dataset = study_dataset(data, search_space.fixed["n_train"])
    if cv and cv > len(dataset.y_train) + len(dataset.y_val):
        raise ConfigError(f"--cv {cv} needs at least {cv} training examples; {data} has {len(dataset.y_train) + len(dataset.y_val)}.")
    if study_name is None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(search_space.name))[0])
        study_name = f"{data}-{stem}-{objective}" + (f"-cv{cv}" if cv else "")
    if not study_name.strip():
        raise ConfigError("--study-name must not be empty.")
    return StudyOptions(
        space=search_space,
        trials=trials,
        timeout=timeout,
        sampler=sampler,
        pruner=pruner,
        storage=storage,
        study_name=study_name,
        cv=cv,
        data=data,
        objective=objective,
        workers=workers,
        seed=seed,
        progress=progress,
    )


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"--{name} must be an integer from {low} to {high}; received {value!r}.")


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


def run_study(options: StudyOptions, *, tracker: Tracker | None = None) -> StudyReport:
    """Runs the study to ``options.trials`` counted trials (or the timeout) and summarizes it on MLflow.

    With ``options.workers > 1`` the trials run in that many fresh processes
    (`study_workers.run_workers`), which share the cores.

    Raises:
        ConfigError: the storage cannot be opened, or the study exists with another space,
            data set, objective or cv.
    """
    from ablations.engine.study_loop import work
    from ablations.engine.study_summary import summarize

    session = open_session(options, tracker=tracker)
    stopped_early = False
    try:
        if options.workers > 1:
            from ablations.engine.study_workers import run_workers

            stopped_early = run_workers(session)
        else:
            stopped_early = work(session)
    except KeyboardInterrupt:
        session.tracker.end_run(session.parent, "KILLED")
        raise
    return summarize(session, stopped_early=stopped_early)


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
    experiment_id = _experiment(tracker, f"study-{options.study_name}")
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

    from ablations.engine.runner import BatchGridSampler

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


def _experiment(tracker: Tracker, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return tracker.experiment_id(name)
    except MlflowException:  # another worker created it first
        return tracker.client.get_experiment_by_name(name).experiment_id


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


def study_command(args) -> int:
    """``ablate study``: validates, runs, prints where the study stands; 1 if trials kept failing."""
    from ablations.engine.tensorflow_quiet import import_tensorflow

    options = study_options(
        space=args.space,
        trials=args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        storage=args.storage,
        study_name=args.study_name,
        cv=args.cv,
        data=args.data,
        objective=args.objective,
        workers=args.workers,
        seed=args.seed,
        progress=not args.quiet,
    )
    open_storage(options.storage)  # a bad URL fails here, before TensorFlow starts
    import_tensorflow()
    try:
        report = run_study(options)
    except KeyboardInterrupt:
        print(f"ablate: interrupted; rerun the same command to resume study {options.study_name!r}", file=sys.stderr)
        return 130
    print(
        f"study {report.study_name}: {report.complete + report.pruned}/{options.trials} trials "
        f"({report.complete} complete, {report.pruned} pruned), {report.failed} failed, {report.running} running"
    )
    if report.best_values is not None:
        names = OBJECTIVES[options.objective]
        values = ", ".join(f"{name} {value:.4f}" for name, value in zip(names, report.best_values))
        params = " ".join(f"{k}={v}" for k, v in report.best_params.items())
        print(f"best: {values}: {params}")
    print(f"MLflow: experiment study-{report.study_name}, parent run {report.parent_run_id}")
    if report.stopped_early:
        print(f"stopped: {MAX_FAILURES_NOTE}", file=sys.stderr)
        return 1
    return 0


MAX_FAILURES_NOTE = "trials kept failing; their failure_reason tags in MLflow say why"
