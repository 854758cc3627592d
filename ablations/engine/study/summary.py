"""What a study's MLflow parent run carries: counts, best params and value, importances, figures.

Written at the end of every ``ablate study`` invocation, so a resumed or
parallel study keeps its parent up to date: counts and the best value are
metrics (stepped by the number of counted trials), the best params are tags
(``best.<key>``; params cannot change once logged), the importances are
metrics ``importance.<key>`` and ``importances.json``, and the Optuna figures
(optimization history, importances, parallel coordinates; the Pareto front
for two objectives) are PNG artifacts under ``figures/``.
"""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from ablations.engine.study.data import OBJECTIVES  # noqa: E402
from ablations.engine.study.session import StudyReport, StudySession  # noqa: E402
from ablations.engine.execution.liveness import close_finished_runs, fail_stale_trials  # noqa: E402


def summarize(session: StudySession, *, stopped_early: bool = False) -> StudyReport:
    """Repairs what dead workers left, updates the parent run, and ends it once no trial runs."""
    study, tracker = session.study, session.tracker
    fail_stale_trials(study)
    parent = session.parent
    _adopt_orphans(session, parent)
    close_finished_runs(tracker, session.experiment_id, parent, study)
    trials = study.get_trials(deepcopy=False)
    by_state = {state: sum(t.state == state for t in trials) for state in TrialState}
    complete, pruned = by_state[TrialState.COMPLETE], by_state[TrialState.PRUNED]
    names = OBJECTIVES[session.options.objective]
    step = complete + pruned
    tracker.log_metrics(
        parent,
        {
            "trials_complete": complete,
            "trials_pruned": pruned,
            "trials_failed": by_state[TrialState.FAIL],
            "trials_counted": step,
            "epochs_trained_total": sum(len(t.intermediate_values) for t in trials),
        },
        step=step,
    )
    best_values, best_params = _best(session, names, step)
    target, target_name = (None, names[0]) if len(names) == 1 else ((lambda t: t.values[0]), names[0])
    if complete:
        _importances(session, target, step)
        _figures(session, target, target_name)
    running = by_state[TrialState.RUNNING]
    if running == 0:
        tracker.end_run(parent, "FINISHED")
    return StudyReport(
        study_name=session.options.study_name,
        parent_run_id=parent,
        experiment_id=session.experiment_id,
        complete=complete,
        pruned=pruned,
        failed=by_state[TrialState.FAIL],
        running=running,
        best_values=best_values,
        best_params=best_params,
        stopped_early=stopped_early,
    )


def _best(session: StudySession, names: tuple[str, ...], step: int) -> tuple[list[float] | None, dict | None]:
    study, tracker, parent = session.study, session.tracker, session.parent
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None, None
    if len(names) == 1:
        best = study.best_trial
        tracker.log_metrics(parent, {f"best_{names[0]}": best.value}, step=step)
        tracker.set_tags(parent, {"best_trial": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
        return [best.value], best.params
    front = sorted(study.best_trials, key=lambda t: t.values)
    tracker.log_json(parent, [{"trial": t.number, "values": dict(zip(names, t.values)), "params": t.params} for t in front], "pareto_front.json")
    tracker.log_metrics(parent, {f"best_{name}": min(t.values[i] for t in front) for i, name in enumerate(names)}, step=step)
    tracker.set_tags(parent, {"pareto_trials": ",".join(str(t.number) for t in front)})
    first = front[0]
    tracker.set_tags(parent, {"best_trial": first.number, **{f"best.{k}": v for k, v in first.params.items()}})
    return list(first.values), first.params


def _importances(session: StudySession, target, step: int) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(session.study, target=target)
    except (ValueError, RuntimeError, ZeroDivisionError):
        return  # too few complete trials, or a single searched value
    if not importances:
        return
    session.tracker.log_metrics(session.parent, {f"importance.{k}": float(v) for k, v in importances.items()}, step=step)
    session.tracker.log_json(session.parent, {k: float(v) for k, v in importances.items()}, "importances.json")


def _figures(session: StudySession, target, target_name: str) -> None:
    from optuna.visualization import matplotlib as plots

    figures: dict[str, Any] = {
        "optimization_history": lambda: plots.plot_optimization_history(session.study, target=target, target_name=target_name),
        "param_importances": lambda: plots.plot_param_importances(session.study, target=target, target_name=target_name),
        "parallel_coordinate": lambda: plots.plot_parallel_coordinate(session.study, target=target, target_name=target_name),
    }
    if target is not None:
        figures["pareto_front"] = lambda: plots.plot_pareto_front(session.study, target_names=list(OBJECTIVES[session.options.objective]))
    for name, draw in figures.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw()
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError, KeyError):
            continue  # not enough finished trials for this figure yet
        figure = _figure_of(axes)
        if figure is None:
            continue
        figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
        figure.tight_layout()
        session.tracker.log_figure(session.parent, figure, f"figures/{name}.png")
        plt.close(figure)


def _figure_of(axes):
    if hasattr(axes, "figure"):
        return axes.figure
    try:
        return axes.flat[0].figure
    except (AttributeError, IndexError):
        return None


def _adopt_orphans(session: StudySession, parent: str) -> None:
    """If two machines created a parent run at once, moves this one's children to the recorded one."""
    mine = session.created_parent
    if not mine or mine == parent:
        return
    tracker = session.tracker
    for run in tracker.client.search_runs([session.experiment_id], f"tags.`mlflow.parentRunId` = '{mine}'", max_results=10_000):
        tracker.set_tags(run.info.run_id, {"mlflow.parentRunId": parent})
    tracker.client.delete_run(mine)
    session.created_parent = None
