"""Runs an ablation: an Optuna grid study whose trials become nested MLflow runs.

CLI -> `Ablation.resolve` (validated config) -> `run_ablation`: open the Optuna
storage -> MLflow parent run -> GridSampler study -> for each pack of trials:
child runs, `Ablation.run`, final metrics, `study.tell` -> read the child runs
back from MLflow -> aggregates over seeds, verdict, figures on the parent run.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from optuna.distributions import CategoricalDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from ablations.engine.progress import Progress  # noqa: E402
from ablations.engine.protocol import REMEDIES, TestSplitGuard, trial_diagnosis  # noqa: E402
from ablations.engine.samplers import BatchGridSampler  # noqa: E402
from ablations.engine.spec import Ablation, ResolvedConfig, TrialContext, Verdict  # noqa: E402
from ablations.engine.stats import aggregate  # noqa: E402
from ablations.engine.storage import open_storage  # noqa: E402
from ablations.engine.tracking import Tracker  # noqa: E402


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


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ablation(
    ablation: Ablation,
    config: ResolvedConfig,
    *,
    storage: str | None = None,
    tracker: Tracker | None = None,
    progress: bool = True,
) -> AblationResult:
    """Runs every trial of ``config`` and logs trials, aggregates, verdict and figures.

    Args:
        ablation: What to run.
        config: Its validated configuration (`Ablation.resolve`).
        storage: Optuna storage URL (see `open_storage`).
        tracker: MLflow tracker; defaults to the configured tracking URI.
        progress: Print a line per pack of trials with the time left.

    Raises:
        ConfigError: The storage cannot be opened (nothing is written then).
    """
    optuna_storage = open_storage(storage)
    tracker = tracker or Tracker()
    experiment_id = tracker.experiment_id(ablation.name)
    trials_config = config.trials()
    parent = tracker.start_run(
        experiment_id,
        f"{ablation.name}-{config.profile}",
        params={**config.fixed, **{f"grid.{k}": v for k, v in config.grid.items()}},
        tags={"ablation": ablation.name, "profile": config.profile, "run_kind": "ablation", "claim": ablation.claim},
    )
    study_name = f"{ablation.name}-{config.profile}-{parent[:8]}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=optuna_storage,
        sampler=BatchGridSampler(config.grid, seed=0),
        direction="minimize",
    )
    study.set_user_attr("mlflow_parent_run_id", parent)
    study.set_user_attr("ablation", ablation.name)
    tracker.set_tags(parent, {"optuna_study": study_name})
    distributions = {axis: CategoricalDistribution(values) for axis, values in config.grid.items()}
    asked = [study.ask(distributions) for _ in trials_config]
    packs = _packs(asked, config, ablation.pack_key)

    bar = Progress(len(asked), ablation.name, enabled=progress)
    try:
        failed, rss_first, rss_last = _run_packs(ablation, config, packs, study, tracker, experiment_id, parent, study_name, bar)
        tracker.flush()
        finished, aggregates, verdict = _conclude(ablation, config, study, tracker, experiment_id, parent)
    except BaseException as error:
        # Interrupted or broken: close what is open so no trial or run stays RUNNING.
        for trial in asked:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        tracker.flush()
        tracker.set_tags(parent, {"failure_reason": f"{type(error).__name__}: {error}".splitlines()[0][:500]})
        tracker.end_run(parent, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    tracker.log_metrics(
        parent,
        {"trials_failed": failed, "trials_finished": len(finished), "peak_rss_mb_first": rss_first, "peak_rss_mb_last": rss_last},
    )
    tracker.end_run(parent, "FINISHED" if len(finished) else "FAILED")
    bar.close(verdict.outcome if verdict else "no trial finished")
    return AblationResult(parent, experiment_id, study_name, verdict, finished, aggregates, failed, rss_first, rss_last)


def _run_packs(ablation, config, packs, study, tracker, experiment_id, parent, study_name, bar) -> tuple[int, float, float]:
    """Runs every pack; returns the failed-trial count and peak memory after the first and last pack."""
    failed = 0
    rss_first = rss_last = 0.0
    for pack_index, pack in enumerate(packs):
        failed += _run_pack(ablation, config, pack, study, tracker, experiment_id, parent, study_name, bar)
        # Drop the pack's graphs so memory stays flat across packs (clear_session
        # also runs the garbage collector).
        keras.backend.clear_session(free_memory=True)
        rss_last = peak_rss_mb()
        if pack_index == 0:
            rss_first = rss_last
    return failed, rss_first, rss_last


def _conclude(ablation, config, study, tracker, experiment_id, parent) -> tuple[pd.DataFrame, pd.DataFrame, Verdict | None]:
    """Reads the trials back from MLflow; logs aggregates, verdict, the test score and figures."""
    trials = read_trials(tracker, ablation, experiment_id, parent)
    finished = trials[trials["status"] == "FINISHED"] if len(trials) else trials
    if not len(finished):
        return finished, pd.DataFrame(), None
    metric_names = [c for c in finished.columns if c not in ablation.params and c not in ("seed", "run_id", "status")]
    aggregates = aggregate(finished, config.axes, metric_names)
    tracker.log_frame(parent, finished, "trials.csv")
    tracker.log_frame(parent, aggregates, "aggregates.csv")
    verdict = ablation.verdict(finished)
    tracker.log_json(parent, verdict.__dict__, "verdict.json")
    tracker.set_tags(parent, {"verdict": verdict.outcome, "verdict_summary": verdict.summary})
    tracker.log_metrics(parent, {"verdict_effect": verdict.effect, "verdict_spread": verdict.spread})
    if ablation.test is not None:
        _evaluate_test_once(ablation, study, config, tracker, parent)
    for name, figure in ablation.figures(finished, tracker.client).items():
        tracker.log_figure(parent, figure, f"figures/{name}.png")
        plt.close(figure)
    return finished, aggregates, verdict


def _evaluate_test_once(ablation: Ablation, study: optuna.Study, config: ResolvedConfig, tracker: Tracker, parent: str) -> None:
    """Scores the configuration selected on validation on the test split, once per study (or per task)."""
    groups: dict[tuple, list] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = tuple({**config.fixed, **trial.params}[name] for name in ablation.select_within)
        groups.setdefault(key, []).append(trial)
    selections = {}
    for key, trials in sorted(groups.items(), key=lambda item: repr(item[0])):
        best = min(trials, key=lambda t: t.value)
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


def _packs(asked: list[optuna.Trial], config: ResolvedConfig, pack_key: Callable | None) -> list[list[tuple[optuna.Trial, dict]]]:
    """Groups trials that can train together, in a stable order."""
    groups: dict[Any, list] = {}
    for trial in asked:
        trial_config = {**config.fixed, **trial.params}
        key = pack_key(trial_config) if pack_key else trial.number
        groups.setdefault(key, []).append((trial, trial_config))
    return [groups[key] for key in sorted(groups, key=repr)]


def _run_pack(ablation, config, pack, study, tracker, experiment_id, parent, study_name, bar) -> int:
    """Runs one pack; a failure fails its trials (recorded) but not the ablation."""
    started = time.perf_counter()
    run_ids = [
        tracker.start_run(
            experiment_id,
            _trial_name(trial_config, config),
            params=trial_config,
            tags={
                "ablation": ablation.name,
                "profile": config.profile,
                "seed": trial_config.get("seed", 0),
                "optuna_study": study_name,
                "optuna_trial": trial.number,
                "run_kind": "trial",
            },
            parent_run_id=parent,
        )
        for trial, trial_config in pack
    ]
    loggers = [_logger(tracker, run_id, set(ablation.params)) for run_id in run_ids]
    try:
        context = TrialContext(
            loggers=loggers,
            profile=config.profile,
            artifact_loggers=[_artifact_logger(tracker, run_id) for run_id in run_ids],
        )
        results = ablation.run([c for _, c in pack], context)
        if len(results) != len(pack):
            raise RuntimeError(f"{ablation.name}.run returned {len(results)} results for {len(pack)} trials")
        clashes = sorted({name for metrics in results for name in metrics} & set(ablation.params))
        if clashes:  # read-back would mistake the metric for the parameter
            raise RuntimeError(f"{ablation.name}.run returned metrics named like parameters: {', '.join(clashes)}")
    except KeyboardInterrupt:
        for run_id in run_ids:
            tracker.end_run(run_id, "KILLED")
        raise
    except Exception as error:  # recorded on every trial of the pack, then the ablation goes on
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        for (trial, _), run_id in zip(pack, run_ids):
            tracker.set_tags(run_id, {"failure_reason": reason})
            tracker.end_run(run_id, "FAILED")
            study.tell(trial, state=TrialState.FAIL)
        bar.advance(len(pack), f"FAILED {reason}", time.perf_counter() - started)
        return len(pack)
    failed = 0
    for (trial, trial_config), run_id, metrics in zip(pack, run_ids, results):
        objective = metrics.get(ablation.objective, float("nan"))
        if objective != objective:  # NaN: a diverged trial has no value to compare
            tracker.log_metrics(run_id, metrics, tags={"failure_reason": f"objective {ablation.objective} is NaN"})
            tracker.end_run(run_id, "FAILED")
            study.tell(trial, state=TrialState.FAIL)
            failed += 1
            continue
        diagnosis = trial_diagnosis(metrics)
        tags = {"diagnosis": diagnosis, "remedy": REMEDIES[diagnosis]} if diagnosis else {}
        tracker.log_metrics(run_id, metrics, tags=tags, synchronous=False)
        tracker.end_run(run_id, "FINISHED")
        study.tell(trial, objective)
    varying = {axis for axis in config.grid if len({c[axis] for _, c in pack}) > 1}
    bar.advance(len(pack), _trial_name(pack[0][1], config, skip=varying), time.perf_counter() - started)
    return failed


def _logger(tracker: Tracker, run_id: str, params: set[str]):
    def log(metrics: dict[str, float], step: int) -> None:
        if params.intersection(metrics):  # read-back would mistake the metric for the parameter
            raise RuntimeError(f"metrics named like parameters: {', '.join(sorted(params.intersection(metrics)))}")
        tracker.log_metrics(run_id, metrics, step, synchronous=False)

    return log


def _artifact_logger(tracker: Tracker, run_id: str):
    def log_artifact(local_path: str, artifact_dir: str | None = None) -> None:
        tracker.client.log_artifact(run_id, local_path, artifact_dir)

    return log_artifact


def _trial_name(trial_config: dict, config: ResolvedConfig, skip: set[str] = frozenset()) -> str:
    return " ".join(f"{axis}={trial_config[axis]}" for axis in config.grid if axis not in skip)


def read_trials(tracker: Tracker, ablation: Ablation, experiment_id: str, parent_run_id: str) -> pd.DataFrame:
    """The child runs of ``parent_run_id`` as typed columns: params, final metrics, run_id, status."""
    raw = tracker.child_runs(experiment_id, parent_run_id)
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
