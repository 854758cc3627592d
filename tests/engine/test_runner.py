"""The runner on a toy ablation: runs, failures, the test split, read-back, report."""

import html
import math

import matplotlib.pyplot as plt
import optuna
import pytest

from ablations.engine.execution.states import Fate, fate_of
from ablations.engine.protocol import TestSetAlreadyUsed
from ablations.engine.report import write_report
from ablations.engine.runner import SanityCheckError, open_storage, run_ablation
from ablations.engine.spec import Ablation, ConfigError, Param
from ablations.engine.stats import summarize
from ablations.engine.verdict import RULE, Check, SmallestEffect, Verdict

TOY_SMALLEST = SmallestEffect(0.1, "a toy threshold")


def _run(configs, context):
    results = []
    for config, log in zip(configs, context.loggers):
        if config["x"] == 3:
            raise RuntimeError("x = 3 explodes")
        for step in (1, 2):
            log({"val_loss": config["x"] * step}, step)
        loss = math.nan if config["x"] == 4 else float(config["x"] + config["seed"])
        results.append({"final_val_loss": loss, "final_accuracy": 0.99, "final_val_accuracy": 0.70})
    return results


def _verdict(trials):
    return Verdict([Check.above("all x", "mean x", summarize(trials["x"]), smallest=TOY_SMALLEST, details={"n": len(trials)})])


def _figures(trials, client):
    fig, ax = plt.subplots()
    ax.plot(trials["x"], trials["final_val_loss"])
    return {"toy": fig}


TEST_CALLS = []


def _test(config, guard):
    TEST_CALLS.append(config)
    metrics = guard.evaluate(lambda: {"test_loss": float(config["x"])})
    with pytest.raises(TestSetAlreadyUsed):
        guard.evaluate(lambda: {"test_loss": 0.0})
    return metrics


TOY = Ablation(
    name="toy",
    claim="x is small",
    params={"x": Param(1, low=0, high=10)},
    profiles={"smoke": {"x": [1, 2, 3, 4], "seeds": 2}},
    run=_run,
    verdict=_verdict,
    figures=_figures,
    objective="final_val_loss",
    test=_test,
)


def test_runner_logs_trials_fails_what_fails_and_tests_once(tracker, monkeypatch):
    TEST_CALLS.clear()
    monkeypatch.setattr("ablations.engine.report.all_ablations", lambda: {"toy": TOY})
    result = run_ablation(TOY, TOY.resolve("smoke"), tracker=tracker, progress=False)

    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 8
    failed = children[children["status"] == "FAILED"]
    assert sorted(failed["params.x"]) == ["3", "3", "4", "4"]
    assert set(failed[failed["params.x"] == "3"]["tags.failure_reason"]) == {"RuntimeError: x = 3 explodes"}
    assert set(failed[failed["params.x"] == "4"]["tags.failure_reason"]) == {"objective final_val_loss is NaN"}
    finished = children[children["status"] == "FINISHED"]
    assert set(finished["tags.diagnosis"]) == {"high variance"}  # train 0.01 error, validation 0.30
    assert result.failed == 4 and len(result.trials) == 4

    # Per-step metrics of a trial, and the typed read-back the verdict saw.
    run_id = finished[finished["params.x"] == "2"]["run_id"].iloc[0]
    assert [m.value for m in sorted(tracker.client.get_metric_history(run_id, "val_loss"), key=lambda m: m.step)] == [2, 4]
    assert result.trials["x"].tolist() == [1, 1, 2, 2] and result.trials["seed"].tolist() == [0, 1, 0, 1]
    assert result.aggregates["final_val_loss_mean"].tolist() == [1.5, 2.5]

    # The selected configuration (lowest objective: x = 1, seed 0) is tested exactly once.
    assert TEST_CALLS == [{"x": 1, "seed": 0}]
    parent = tracker.client.get_run(result.parent_run_id)
    assert parent.data.metrics["test_loss"] == 1.0
    assert parent.data.tags["verdict"] == "reproduced"  # x of the four finished trials: 1, 1, 2, 2; its interval is above 0
    assert parent.data.metrics["trials_failed"] == 4

    study = optuna.load_study(study_name=result.study_name, storage=open_storage(None))
    states = [t.state for t in study.trials if "grid_point" in t.user_attrs]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4 and states.count(optuna.trial.TrialState.FAIL) == 4
    # Failures of their own are final (a rerun does not retrain them), and the spent conclusion token says who concluded.
    reasons = sorted(t.user_attrs["failure_reason"] for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert reasons == ["RuntimeError: x = 3 explodes"] * 2 + ["conclusion token: this worker wrote the verdict"] + ["objective final_val_loss is NaN"] * 2
    # What a rerun does with them is read from their typed fate, not from those words.
    fates = sorted(fate_of(t).value for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert fates == ["concluded"] + ["own"] * 4
    assert study.user_attrs["concluded"] is True

    report = write_report(tracker=tracker).read_text()
    assert "x is small" in report and "data:image/png;base64," in report
    # The summary table opens the report: a linked row per ablation with outcome, headline effect and its forest plot.
    summary, sections = report.split("<p class='rule'>")
    measured = "+1.500 (95% CI +0.581 to +2.419, n=4)"
    assert "<td><a href='#toy'>toy</a></td><td>x is small</td>" in summary
    assert f"<span class='outcome reproduced'>reproduced</span></td><td>mean x (all x): {measured}</td><td><img class='forest'" in summary
    assert html.escape(RULE) in sections and "<h2 id='toy'>toy</h2>" in sections
    # The toy cites no literature, and the report says so rather than leaving the column blank.
    assert "<td>none given</td></tr>" in summary and "no reference measurement is given for this claim" in sections
    # The condition names moved from the summary into the section, under their reading.
    assert "<ul><li>held under: all x</li></ul>" in sections
    # The section's per-condition table: one row per check, with its smallest effect, power and details.
    row = f"<td>all x</td><td>mean x</td><td>claim</td><td>{measured}</td><td>&gt; 0</td><td>±0.1 around 0: a toy threshold</td>"
    assert row in sections and "<td>reproduced</td><td>4</td>" in sections


def test_unopenable_storage_is_a_config_error():
    with pytest.raises(ConfigError, match="Cannot open storage 'mysql://nobody@127.0.0.1:1/none'"):
        open_storage("mysql://nobody@127.0.0.1:1/none")


def _interrupt(configs, context):
    raise KeyboardInterrupt


def test_an_interrupt_leaves_no_run_or_trial_running(tracker):
    interrupted = Ablation(
        name="toy_interrupted",
        claim="c",
        params={"x": Param(1, low=0, high=10)},
        profiles={"smoke": {"x": [1, 2]}},
        run=_interrupt,
        verdict=_verdict,
        figures=_figures,
    )
    with pytest.raises(KeyboardInterrupt):
        run_ablation(interrupted, interrupted.resolve("smoke"), tracker=tracker, progress=False)
    experiment = tracker.client.get_experiment_by_name("toy_interrupted")
    runs = tracker.client.search_runs([experiment.experiment_id])
    assert {run.data.tags["run_kind"]: run.info.status for run in runs} == {"ablation": "KILLED", "trial": "KILLED"}
    study_name = next(run.data.tags["optuna_study"] for run in runs if run.data.tags["run_kind"] == "ablation")
    study = optuna.load_study(study_name=study_name, storage=open_storage(None))
    # The interrupted pack's trials are failed so that a rerun trains them again; the rest wait for it.
    points = {t.user_attrs["grid_point"]: t for t in study.trials if "grid_point" in t.user_attrs}  # x=1, then x=2
    assert points[0].state == optuna.trial.TrialState.FAIL and points[1].state == optuna.trial.TrialState.WAITING
    assert points[0].user_attrs["failure_reason"] == "stale: interrupted by KeyboardInterrupt while its pack ran"
    assert fate_of(points[0]) == Fate.INTERRUPTED and fate_of(points[0]).retried
    assert study.user_attrs["concluded"] is False


def test_a_broken_verdict_fails_the_parent_run(tracker):
    def broken(trials):
        raise ZeroDivisionError("no verdict")

    toy = Ablation(
        name="toy_broken",
        claim="c",
        params={"x": Param(1, low=0, high=10)},
        profiles={"smoke": {"x": [1]}},
        run=_run,
        verdict=broken,
        figures=_figures,
        objective="final_val_loss",
    )
    with pytest.raises(ZeroDivisionError):
        run_ablation(toy, toy.resolve("smoke"), tracker=tracker, progress=False)
    experiment = tracker.client.get_experiment_by_name("toy_broken")
    parent = tracker.client.search_runs([experiment.experiment_id], "tags.run_kind = 'ablation'")[0]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure_reason"] == "ZeroDivisionError: no verdict"


def test_a_failed_sanity_check_fails_the_parent_run_loudly(tracker):
    def verdict(trials):
        # Holds by construction, yet fails: a bug. The claim check beside it cannot hide that.
        sanity = Check.below("all x", "x − x", summarize([1.0], kind="exact"), 1e-12, role="sanity")
        return Verdict([Check.above("all x", "mean x", summarize(trials["x"], kind="exact"), smallest=TOY_SMALLEST), sanity])

    toy = Ablation(
        name="toy_insane",
        claim="c",
        params={"x": Param(1, low=0, high=10)},
        profiles={"smoke": {"x": [1]}},
        run=_run,
        verdict=verdict,
        figures=_figures,
        objective="final_val_loss",
    )
    with pytest.raises(SanityCheckError, match=r"a sanity check failed \(a bug, or a grid the claim cannot be read from; not a finding\): all x: x − x = \+1\.000 \(exact"):
        run_ablation(toy, toy.resolve("smoke"), tracker=tracker, progress=False)
    experiment = tracker.client.get_experiment_by_name("toy_insane")
    parent = tracker.client.search_runs([experiment.experiment_id], "tags.run_kind = 'ablation'")[0]
    assert parent.info.status == "FAILED" and parent.data.tags["failure_reason"].startswith("SanityCheckError: a sanity check failed")
    # The verdict is still logged, naming the failure.
    assert "Sanity checks FAILED (a bug): all x: x − x" in tracker.load_json(parent.info.run_id, "verdict.json")["summary"]


def _log_then_fail(configs, context):
    for step in range(1, 4):
        context.loggers[0]({"val_loss": float(step)}, step)
    raise RuntimeError("the pack fails after three epochs")


def test_a_failed_pack_keeps_the_steps_it_logged(tracker):
    ablation = Ablation(
        name="fails_late", claim="-", params={"x": Param(1, low=0, high=10)}, profiles={"smoke": {"seeds": 1}},
        run=_log_then_fail, verdict=_verdict, figures=_figures,
    )
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    run_id = tracker.child_runs(result.experiment_id, result.parent_run_id)["run_id"].iloc[0]
    history = sorted(tracker.client.get_metric_history(run_id, "val_loss"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0), (3, 3.0)]


def test_step_logs_are_written_in_batches_that_mlflow_accepts(tracker, monkeypatch):
    """300 steps of 7 metrics (2,100 values): every value arrives, in batches of at most 1,000, not one write per step."""
    from ablations.engine.runner import _StepLogger

    experiment = tracker.experiment_id("batching")
    run_id = tracker.start_run(experiment, "trial")
    batches = []
    original = tracker.log_steps
    monkeypatch.setattr(tracker, "log_steps", lambda run, steps: (batches.append(sum(len(v) for v, _ in steps)), original(run, steps)))
    monkeypatch.setattr(_StepLogger, "WRITE_EVERY_S", math.inf)  # batches by size alone, whatever the machine's speed
    log = _StepLogger(tracker, run_id, params={"x"})
    for step in range(300):
        log({f"m{i}": step + i / 10 for i in range(7)}, step)
    log.write()
    tracker.flush()
    assert sum(batches) == 2100 and max(batches) <= 1000 and len(batches) == 3
    for i in range(7):
        history = sorted(tracker.client.get_metric_history(run_id, f"m{i}"), key=lambda m: m.step)
        assert [m.value for m in history] == pytest.approx([step + i / 10 for step in range(300)])
    with pytest.raises(RuntimeError, match="named like parameters: x"):
        log({"x": 1.0}, 0)


CRASH_AT = {"step": None}


def _train_packed(configs, context):
    """Trains the pack's seeds as members of one stack; a logger raises KeyboardInterrupt at ``CRASH_AT['step']``."""
    import numpy as np

    from ablations.engine.train.members import MemberOptimizer, PackTraining, fit_members
    from models.stacked import StackedMLP

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 3, 40)
    seeds = [config["seed"] for config in configs]
    stack = StackedMLP(6, 3, depth=1, width=8, activations=["relu"] * len(configs), initializers=["he_normal"] * len(configs), seed=seeds)

    def logging(log):
        def step_log(row, step):
            if step == CRASH_AT["step"]:
                raise KeyboardInterrupt
            log(row, step)

        return step_log

    fits = fit_members(stack, {"train": (x[:30], y[:30]), "val": (x[30:], y[30:])}, training=PackTraining(6, 8), seeds=seeds,
                       optimizers=[MemberOptimizer("adam", config["x"] / 100) for config in configs],
                       loggers=[logging(log) for log in context.loggers])
    return [{"final_val_loss": trial.final["final_val_loss"]} for trial in fits.trials]


def test_a_pack_interrupted_mid_training_resumes_from_its_checkpoint_on_rerun(tracker, monkeypatch, capsys):
    from ablations.engine.storage import results_dir
    from ablations.engine.spec import pack_all_but

    packed = Ablation(
        name="toy_packed", claim="c", params={"x": Param(1, low=0, high=10)}, profiles={"smoke": {"x": [1], "seeds": 3}},
        run=_train_packed, verdict=_verdict, figures=_figures, objective="final_val_loss", pack_key=pack_all_but("seed"),
    )
    config = packed.resolve("smoke")
    CRASH_AT["step"] = None
    expected = [metrics["final_val_loss"] for metrics in _train_packed(config.trials(), _silent_context(3))]
    monkeypatch.setenv("ABLATE_CHECKPOINT_EVERY", "0")
    CRASH_AT["step"] = 4
    with pytest.raises(KeyboardInterrupt):
        run_ablation(packed, config, tracker=tracker, progress=False)
    (checkpoint,) = (results_dir() / "checkpoints").glob("toy_packed-*/*/segment-0.npz")
    CRASH_AT["step"] = None
    result = run_ablation(packed, config, tracker=tracker, progress=True)
    err = capsys.readouterr().err
    assert f"toy_packed: resuming a pack from its checkpoint at epoch 3 of 6 ({checkpoint.parent.name})" in err
    assert "(resumed at epoch 3 of 6)" in err
    assert sorted(result.trials["final_val_loss"]) == sorted(expected)
    assert not (results_dir() / "checkpoints" / checkpoint.parent.parent.name).exists()  # removed with the pack, and the grid
    # The new runs hold every epoch's metrics, those logged before the stop included.
    finished = [run for run in tracker.client.search_runs([result.experiment_id]) if run.data.tags["run_kind"] == "trial"
                and run.info.status == "FINISHED"]
    assert len(finished) == 3
    for run in finished:
        assert [m.step for m in tracker.client.get_metric_history(run.info.run_id, "val_loss")] == list(range(7))


def _silent_context(members):
    from ablations.engine.spec import TrialContext

    return TrialContext(loggers=[lambda row, step: None] * members, profile="smoke", artifact_loggers=[lambda *a: None] * members)
