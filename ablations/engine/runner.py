"""Runs an ablation: a grid in Optuna storage whose trials become nested MLflow runs.

CLI -> `Ablation.resolve` (validated config) -> `run_ablation`: open the Optuna
storage -> resume or create the grid (`grid.open_grid`: MLflow parent run,
Optuna study, every grid point enqueued) -> here or in worker processes, until
no pack is left: claim a pack, child runs, `Ablation.run`, final metrics,
`study.tell` -> the worker that takes the conclusion token reads the child runs
back from MLflow -> aggregates over seeds, verdict, figures on the parent run.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from ablations.engine.device import device_tags, pack_limit, peak_rss_mb  # noqa: E402
from ablations.engine.execution.checkpoints import PackCheckpoints, checkpoint_every, checkpointing, pack_folder, remove_grid  # noqa: E402
from ablations.engine.execution.lifecycle import TrialRuns  # noqa: E402
from ablations.engine.execution.liveness import HEARTBEAT_GRACE_S, HEARTBEAT_INTERVAL_S, close_finished_runs, heartbeat  # noqa: E402
from ablations.engine.execution.optuna_private import storage_of  # noqa: E402
from ablations.engine.execution.states import failure_reason  # noqa: E402
from ablations.engine.execution.stopping import check_stop, interruptible, passing_stops_to, shielded, stop_cause  # noqa: E402
from ablations.engine.lineage import DataLineage, members_data, recording  # noqa: E402
from ablations.engine.progress import Progress  # noqa: E402
from ablations.engine.protocol import REMEDIES, TestSplitGuard, trial_diagnosis  # noqa: E402
from ablations.engine.grid import (  # noqa: E402
    CONCLUDED_ATTR,
    Grid,
    claim_conclusion,
    claim_pack,
    fail_interrupted,
    final_failures,
    mark_concluded,
    open_grid,
    repair,
    selection_order,
)
from ablations.engine.spec import Ablation, ResolvedConfig, TrialContext  # noqa: E402
from ablations.engine.stats import aggregate  # noqa: E402
from ablations.engine.storage import open_storage, results_dir  # noqa: E402
from ablations.engine.tracking import Tracker  # noqa: E402
from ablations.engine.verdict import Verdict  # noqa: E402


class Helpers(Protocol):
    """Processes that train beside this one on a grid (`grid_workers.GridHelpers`, which imports this module)."""

    def start(self, config: ResolvedConfig, grid: Grid, storage: str | None) -> None:
        """Hands them the open grid."""

    def join(self) -> None:
        """Waits until they have left it; raises RuntimeError if one failed."""

    def pass_stop_on(self) -> None:
        """Passes a stop on to them at once, without waiting."""

    def interrupt(self) -> None:
        """Stops them (their packs are failed for a rerun)."""


@dataclass(frozen=True)
class AblationResult:
    """What one invocation produced (all of it is also in MLflow)."""

    parent_run_id: str
    experiment_id: str
    study_name: str
    verdict: Verdict | None
    trials: pd.DataFrame
    aggregates: pd.DataFrame
    failed: int
    peak_rss_mb_first: float
    peak_rss_mb_last: float
    concluded: bool = True
    """Whether the grid is concluded (False: another worker writes the verdict when it finishes the last pack)."""


POLL_S = 0.5
"""Seconds between looks at the storage while other workers finish the last packs."""


def run_ablation(
    ablation: Ablation,
    config: ResolvedConfig,
    *,
    storage: str | None = None,
    tracker: Tracker | None = None,
    progress: bool = True,
    fresh: bool = False,
    helpers: Helpers | None = None,
) -> AblationResult:
    """Runs (or resumes) the grid of ``config``; the worker that finishes it logs aggregates, verdict and figures.

    Args:
        ablation: What to run.
        config: Its validated configuration (`Ablation.resolve`).
        storage: Optuna storage URL (see `open_storage`).
        tracker: MLflow tracker; defaults to the configured tracking URI.
        progress: Print a line per pack of trials with the time left.
        fresh: Start a new grid even if an unfinished one has these settings.
        helpers: Processes that train beside this one on the grid
            (``--workers N``: N-1 of them); None: this process alone.

    Raises:
        ConfigError: The storage cannot be opened (nothing is written then).
    """
    optuna_storage = open_storage(storage, heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=HEARTBEAT_GRACE_S)
    tracker = tracker or Tracker()
    experiment_id = tracker.experiment_id(ablation.name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Packs are split to fit the memory of the device (a GPU's free memory, a fixed budget on a CPU).
    max_members = pack_limit(config.trials())
    start_parent = lambda: _start_parent(tracker, experiment_id, ablation, config)  # noqa: E731
    grid = open_grid(ablation, config, optuna_storage, start_parent, fresh=fresh, max_members=max_members)
    tracker.set_tags(grid.parent_run_id, {"optuna_study": grid.name})
    if grid.resumed and tracker.client.get_run(grid.parent_run_id).info.status != "RUNNING":
        tracker.client.update_run(grid.parent_run_id, status="RUNNING")
    if helpers is None:
        return work_on_grid(ablation, config, grid, tracker, experiment_id, progress=progress)
    helpers.start(config, grid, storage)
    try:
        # A stop signal reaches the helpers as it arrives here, wherever it lands: they stop their packs at once.
        with passing_stops_to(helpers.pass_stop_on):
            result = work_on_grid(ablation, config, grid, tracker, experiment_id, progress=progress, label="/w0")
            # Waiting for the helpers writes nothing: a stop lands here at once.
            with interruptible():
                helpers.join()
    except BaseException:
        # Stopped here (Ctrl-C, or a pack that raised and would raise again): the
        # helpers stop too, their packs failed for a rerun to train again.
        helpers.interrupt()
        raise
    # A helper finished the last pack and wrote the verdict: read it back.
    return result if result.concluded else _read_result(ablation, grid, tracker, experiment_id)


def _start_parent(tracker: Tracker, experiment_id: str, ablation: Ablation, config: ResolvedConfig) -> str:
    return tracker.start_run(
        experiment_id,
        f"{ablation.name}-{config.profile}",
        params={**config.fixed, **{f"grid.{k}": v for k, v in config.grid.items()}},
        tags={"ablation": ablation.name, "profile": config.profile, "run_kind": "ablation", "claim": ablation.claim, **device_tags()},
    )


@dataclass(frozen=True)
class GridJob:
    """One worker's share of a grid: what each of its packs, and its conclusion, need.

    Args:
        ablation: What to run.
        config: Its resolved configuration.
        grid: The grid (`grid.open_grid`).
        tracker: MLflow tracker.
        experiment_id: The ablation's MLflow experiment.
    """

    ablation: Ablation
    config: ResolvedConfig
    grid: Grid
    tracker: Tracker
    experiment_id: str
    data_logged: set[str] = field(default_factory=set)
    """Digests of the data sets this worker has logged to the parent run."""

    @property
    def parent(self) -> str:
        """The grid's MLflow parent run."""
        return self.grid.parent_run_id

    def runs(self) -> TrialRuns:
        """The lifecycle of the grid's trial runs."""
        return TrialRuns(self.grid.study, self.tracker, self.experiment_id, self.parent)

    def close_finished_runs(self) -> None:
        """Ends the runs of trials that were told but whose worker died before ending them."""
        close_finished_runs(self.tracker, self.experiment_id, self.parent, self.grid.study)

    def fail_parent(self, error: BaseException) -> None:
        """The parent run's one failure path: the reason tagged, ended KILLED (Ctrl-C) or FAILED."""
        self.tracker.set_tags(self.parent, {"failure_reason": failure_reason(error)})
        self.tracker.end_run(self.parent, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")


def work_on_grid(
    ablation: Ablation,
    config: ResolvedConfig,
    grid: Grid,
    tracker: Tracker,
    experiment_id: str,
    *,
    progress: bool = True,
    label: str = "",
) -> AblationResult:
    """One worker's share of a grid: claims and trains packs until none is left; concludes if it takes the token.

    Args:
        ablation: What to run.
        config: Its resolved configuration.
        grid: The grid (`grid.open_grid`).
        tracker: MLflow tracker.
        experiment_id: The ablation's MLflow experiment.
        progress: Print a line per pack.
        label: Names this worker in progress lines ("/w1").
    """
    job = GridJob(ablation, config, grid, tracker, experiment_id)
    bar = Progress(len(grid.configs), ablation.name + label, enabled=progress, done=len(grid.done_points()))
    try:
        return _work(job, bar)
    except BaseException as error:
        # Stopped (Ctrl-C, a scheduler's signal) or broken, wherever it lands: what this worker
        # holds stays for a rerun, its runs end, and the parent run does not stay RUNNING.
        fail_interrupted(grid, f"interrupted by {stop_cause(error)} while its pack ran")
        tracker.flush()
        job.close_finished_runs()
        job.fail_parent(error)
        raise


def _work(job: GridJob, bar: Progress) -> AblationResult:
    """`work_on_grid` once its failure path is in place: the packs, then the conclusion if this worker takes it."""
    grid, tracker, experiment_id = job.grid, job.tracker, job.experiment_id
    rss = _train_packs(job, bar)
    tracker.flush()
    if not claim_conclusion(grid):
        bar.close("no pack left here; the worker that finishes the last pack writes the verdict")
        empty = pd.DataFrame()
        return AblationResult(job.parent, experiment_id, grid.name, None, empty, empty, final_failures(grid), *rss, concluded=False)
    # The runs of trials other workers have just told, ended here if those workers have not yet.
    job.close_finished_runs()
    finished, aggregates, verdict = _conclude(job)
    mark_concluded(grid)
    remove_grid(results_dir(), grid.name)
    failed = final_failures(grid)
    metrics = {"trials_failed": failed, "trials_finished": len(finished), "peak_rss_mb_first": rss[0], "peak_rss_mb_last": rss[1]}
    tracker.log_metrics(job.parent, metrics)
    tracker.end_run(job.parent, "FINISHED" if len(finished) else "FAILED")
    bar.close(verdict.outcome if verdict else "no trial finished")
    return AblationResult(job.parent, experiment_id, grid.name, verdict, finished, aggregates, failed, *rss)


def _train_packs(job: GridJob, bar: Progress) -> tuple[float, float]:
    """The claim loop: repairs, claims and trains packs until none is left; returns the peak RSS (MiB) after the first and last."""
    grid = job.grid
    rss_first = rss_last = 0.0
    while True:
        check_stop()
        repair(grid, job.config, job.ablation.pack_key)
        job.close_finished_runs()
        pack = claim_pack(grid, job.config.grid)
        if not pack:
            if not grid.running():
                return rss_first, rss_last
            time.sleep(POLL_S)  # other workers hold the last packs; a dead one is failed by the next repair
            continue
        with heartbeat(grid.study, pack[0]):
            _train_pack(job, pack, bar)
        # Drop the pack's graphs so memory stays flat across packs (clear_session
        # also runs the garbage collector). What survives is long-lived (TensorFlow,
        # Keras, MLflow, the data): frozen, the next pack's collection skips it
        # instead of spending ~0.3 s walking it.
        keras.backend.clear_session(free_memory=True)
        gc.freeze()
        rss_last = peak_rss_mb()
        rss_first = rss_first or rss_last


def _read_result(ablation: Ablation, grid: Grid, tracker: Tracker, experiment_id: str) -> AblationResult:
    """The result of a grid that worker processes ran, read back from MLflow (the verdict recomputed, not logged again)."""
    trials = read_trials(tracker, ablation, experiment_id, grid.parent_run_id)
    finished = trials[trials["status"] == "FINISHED"] if len(trials) else trials
    concluded = bool(optuna.load_study(study_name=grid.name, storage=storage_of(grid.study)).user_attrs.get(CONCLUDED_ATTR))
    verdict = ablation.verdict(finished) if concluded and len(finished) else None
    metrics = tracker.client.get_run(grid.parent_run_id).data.metrics
    return AblationResult(
        grid.parent_run_id,
        experiment_id,
        grid.name,
        verdict,
        finished,
        pd.DataFrame(),
        final_failures(grid),
        metrics.get("peak_rss_mb_first", math.nan),
        metrics.get("peak_rss_mb_last", math.nan),
        concluded=concluded,
    )


class SanityCheckError(RuntimeError):
    """A sanity check of a verdict failed: something that holds by construction did not (the code is wrong), or the
    grid cannot show the claim (a learning-rate grid that does not bracket an arm's best rate, say)."""


def _conclude(job: GridJob) -> tuple[pd.DataFrame, pd.DataFrame, Verdict | None]:
    """Reads the trials back from MLflow; logs aggregates, verdict, the test score and figures."""
    ablation, config, tracker, parent = job.ablation, job.config, job.tracker, job.parent
    experiment_id, study = job.experiment_id, job.grid.study
    trials = read_trials(tracker, ablation, experiment_id, parent)
    finished = trials[trials["status"] == "FINISHED"] if len(trials) else trials
    if not len(finished):
        return finished, pd.DataFrame(), None
    # Sorted: the columns MLflow returns follow the order its runs were written, which workers change.
    metric_names = sorted(c for c in finished.columns if c not in ablation.params and c not in ("seed", "run_id", "status"))
    aggregates = aggregate(finished, config.axes, metric_names)
    tracker.log_frame(parent, finished, "trials.csv")
    tracker.log_frame(parent, aggregates, "aggregates.csv")
    verdict = ablation.verdict(finished)
    record = verdict.to_dict()
    tracker.log_json(parent, record, "verdict.json")
    tracker.set_tags(parent, {"verdict": verdict.outcome, "verdict_summary": verdict.summary})
    headline = record["headline"] or {"mean": math.nan, "low": math.nan, "high": math.nan}
    # A lower bound's interval has no upper end: logged as NaN, not as MLflow's stand-in for infinity.
    ends = {name: value if math.isfinite(value) else math.nan for name, value in (("verdict_ci_low", headline["low"]), ("verdict_ci_high", headline["high"]))}
    tracker.log_metrics(parent, {"verdict_effect": headline["mean"], **ends})
    if ablation.test is not None:
        _evaluate_test_once(ablation, study, config, tracker, parent)
    for name, figure in ablation.figures(finished, tracker.client).items():
        tracker.log_figure(parent, figure, f"figures/{name}.png")
        plt.close(figure)
    if verdict.sanity_failures:
        # Logged first (verdict, figures), so the failed run shows what broke.
        failed = "; ".join(f"{check.condition}: {check.part} = {check.measured}, claimed {check.claimed}" for check in verdict.sanity_failures)
        raise SanityCheckError(f"a sanity check failed (a bug, or a grid the claim cannot be read from; not a finding): {failed}")
    return finished, aggregates, verdict


def _evaluate_test_once(ablation: Ablation, study: optuna.Study, config: ResolvedConfig, tracker: Tracker, parent: str) -> None:
    """Scores the configuration selected on validation on the test split, once per study (or per task)."""
    groups: dict[tuple, list] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = tuple({**config.fixed, **trial.params}[name] for name in ablation.select_within)
        groups.setdefault(key, []).append(trial)
    selections = {}
    for key, trials in sorted(groups.items(), key=lambda item: repr(item[0])):
        best = min(trials, key=selection_order)
        selected = {**config.fixed, **best.params}
        prefix = "".join(f"{value}/" for value in key)
        metrics = {f"{prefix}{name}": value for name, value in ablation.test(selected, TestSplitGuard()).items()}
        tracker.log_metrics(parent, metrics)
        selections[prefix.rstrip("/") or "study"] = {
            "trial": best.number,
            "selected": selected,
            "selected_on": ablation.objective,
            "test": metrics,
        }
    if selections:
        tracker.set_tags(parent, {"selected_trials": ", ".join(f"{k}: {v['trial']}" for k, v in selections.items())})
        tracker.log_json(parent, selections, "test.json")


def _train_pack(job: GridJob, pack: list[optuna.Trial], bar: Progress) -> int:
    """Trains one pack under its trials' runs; a failure fails its trials (recorded) but not the ablation. Returns the failures."""
    started = time.perf_counter()
    configs = [{**job.config.fixed, **trial.params} for trial in pack]
    runs = job.runs()
    tags = {"ablation": job.ablation.name, "profile": job.config.profile, "run_kind": "trial"}
    run_ids = [
        runs.open(trial, _trial_name(config, job.config), config, {**tags, "seed": config.get("seed", 0)})
        for trial, config in zip(pack, configs)
    ]
    every_s = checkpoint_every()
    checkpoints = None if every_s is None else PackCheckpoints(pack_folder(results_dir(), job.grid.name, configs), every_s, bar.note)
    try:
        with checkpointing(checkpoints):
            results, data = _run_members(job, configs, run_ids)
    except KeyboardInterrupt:  # its checkpoints stay, for the rerun that claims the pack again
        runs.interrupted(run_ids)
        raise
    except Exception as error:  # recorded on every trial of the pack, then the ablation goes on
        reason = failure_reason(error)
        for trial, run_id in zip(pack, run_ids):
            runs.finish(trial, run_id, TrialState.FAIL, reason=reason)
        bar.advance(len(pack), f"FAILED {reason}", time.perf_counter() - started)
        _remove(checkpoints)
        return len(pack)
    _log_data(job, run_ids, data)
    failed = _tell_results(job, runs, pack, run_ids, results)
    _remove(checkpoints)
    varying = {axis for axis in job.config.grid if len({config[axis] for config in configs}) > 1}
    label = _trial_name(configs[0], job.config, skip=varying)
    if checkpoints is not None and checkpoints.resumed:
        label += " (resumed at epoch " + ", ".join(f"{epoch} of {epochs}" for epoch, epochs in checkpoints.resumed) + ")"
    bar.advance(len(pack), label, time.perf_counter() - started)
    return failed


def _remove(checkpoints: PackCheckpoints | None) -> None:
    """Deletes a pack's checkpoints once its trials are told."""
    if checkpoints is not None:
        with shielded():
            checkpoints.remove()


def _run_members(job: GridJob, configs: list[dict], run_ids: list[str]) -> tuple[list[dict[str, float]], list[list[DataLineage]]]:
    """The ablation's results for one pack, each member logging to its own run, and each member's data sets."""
    ablation, tracker = job.ablation, job.tracker
    loggers = [_StepLogger(tracker, run_id, set(ablation.params)) for run_id in run_ids]
    context = TrialContext(
        loggers=loggers,
        profile=job.config.profile,
        artifact_loggers=[_artifact_logger(tracker, run_id) for run_id in run_ids],
    )
    try:
        with interruptible(), recording() as loaded:  # a stop signal lands here at once; elsewhere it waits for the store's writes
            results = ablation.run(configs, context)
    finally:  # what was measured is kept, also when the pack fails
        for logger in loggers:
            logger.write()
    if len(results) != len(configs):
        raise RuntimeError(f"{ablation.name}.run returned {len(results)} results for {len(configs)} trials")
    clashes = sorted({name for metrics in results for name in metrics} & set(ablation.params))
    if clashes:  # read-back would mistake the metric for the parameter
        raise RuntimeError(f"{ablation.name}.run returned metrics named like parameters: {', '.join(clashes)}")
    return results, members_data(loaded, len(configs))


def _log_data(job: GridJob, run_ids: list[str], data: list[list[DataLineage]]) -> None:
    """Each member's data sets as its run's dataset inputs; those new to this worker also as the parent run's."""
    for run_id, member in zip(run_ids, data):
        job.tracker.log_data(run_id, member)
    new = {item.digest: item for member in data for item in member if item.digest not in job.data_logged}
    job.tracker.log_data(job.parent, list(new.values()))
    job.data_logged.update(new)


def _tell_results(job: GridJob, runs: TrialRuns, pack: list[optuna.Trial], run_ids: list[str], results: list[dict]) -> int:
    """Logs each member's final metrics, then tells Optuna and ends its run; returns how many diverged (NaN objective)."""
    objective = job.ablation.objective
    values = [metrics.get(objective, math.nan) for metrics in results]
    nan_reason = f"objective {objective} is NaN"
    for run_id, metrics, value in zip(run_ids, results, values):
        diagnosis = None if math.isnan(value) else trial_diagnosis(metrics)
        tags = {"diagnosis": diagnosis, "remedy": REMEDIES[diagnosis]} if diagnosis else {}
        if math.isnan(value):  # a diverged trial has no value to compare
            tags = {"failure_reason": nan_reason}
        job.tracker.log_metrics(run_id, metrics, tags=tags, synchronous=False)
    # Every metric is stored before Optuna hears of it: whichever worker concludes reads them back.
    job.tracker.flush()
    for trial, run_id, value in zip(pack, run_ids, values):
        if math.isnan(value):
            runs.finish(trial, run_id, TrialState.FAIL, reason=nan_reason)
        else:
            runs.finish(trial, run_id, TrialState.COMPLETE, [value])
    return sum(math.isnan(value) for value in values)


class _StepLogger:
    """A trial's per-step metrics, written to its run in batches of many steps.

    A pack logs every member's every epoch within seconds; one MLflow write
    per step (a SQLite transaction, about 9 ms here) would then take longer
    than the training. Steps are buffered and written, asynchronously, once
    `MAX_BATCH_METRICS` are waiting or `WRITE_EVERY_S` have passed, and at the
    end of the pack (`write`).
    """

    MAX_BATCH_METRICS = 1000  # what MLflow takes in one batch
    WRITE_EVERY_S = 10.0

    def __init__(self, tracker: Tracker, run_id: str, params: set[str]):
        self.tracker, self.run_id, self.params = tracker, run_id, params
        self.steps: list[tuple[dict[str, float], int]] = []
        self.waiting = 0
        self.written_at = time.monotonic()

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        check_stop()
        if self.params.intersection(metrics):  # read-back would mistake the metric for the parameter
            raise RuntimeError(f"metrics named like parameters: {', '.join(sorted(self.params.intersection(metrics)))}")
        if self.waiting + len(metrics) > self.MAX_BATCH_METRICS:
            self.write()
        self.steps.append((dict(metrics), step))
        self.waiting += len(metrics)
        if time.monotonic() - self.written_at >= self.WRITE_EVERY_S:
            self.write()

    def write(self) -> None:
        """Sends the buffered steps (asynchronously: `Tracker.flush` waits for them)."""
        if self.steps:
            with shielded():
                self.tracker.log_steps(self.run_id, self.steps)
        self.steps, self.waiting, self.written_at = [], 0, time.monotonic()


def _artifact_logger(tracker: Tracker, run_id: str):
    def log_artifact(local_path: str, artifact_dir: str | None = None) -> None:
        with shielded():
            tracker.client.log_artifact(run_id, local_path, artifact_dir)

    return log_artifact


def _trial_name(trial_config: dict, config: ResolvedConfig, skip: set[str] = frozenset()) -> str:
    return " ".join(f"{axis}={trial_config[axis]}" for axis in config.grid if axis not in skip)


def read_trials(tracker: Tracker, ablation: Ablation, experiment_id: str, parent_run_id: str) -> pd.DataFrame:
    """The child runs of ``parent_run_id`` as typed columns: params, final metrics, run_id, status."""
    raw = tracker.child_runs(experiment_id, parent_run_id)
    params = [column for column in raw.columns if column.startswith("params.")]
    if params:
        # A run killed while it was being created has no params, and no result either.
        raw = raw[raw[params].notna().any(axis=1)]
    if raw.empty:
        return raw
    columns = {"run_id": raw["run_id"], "status": raw["status"]}
    for column in raw.columns:
        if column.startswith("params."):
            name = column.removeprefix("params.")
            param = ablation.params.get(name)
            columns[name] = [param.parse(name, v) if param and v is not None else v for v in raw[column]]
        elif column.startswith("metrics."):
            columns[column.removeprefix("metrics.")] = raw[column].astype(float)
    frame = pd.DataFrame(columns)
    if "seed" in frame:
        frame["seed"] = frame["seed"].astype(int)
    return frame.sort_values([c for c in frame.columns if c in ablation.params or c == "seed"]).reset_index(drop=True)
