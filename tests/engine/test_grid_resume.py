"""Resuming a grid in-process: an interrupted grid continues, a changed setting or --fresh starts a new one."""

import matplotlib.pyplot as plt
import optuna
import pytest

from ablations.engine.grid import CREATOR_ATTR, POINT_ATTR, READY_ATTR, grid_key, pack_points
from ablations.engine.runner import run_ablation
from ablations.engine.spec import Ablation, Param
from ablations.engine.storage import open_storage
from ablations.engine.stats import summarize
from ablations.engine.execution.liveness import worker_identity
from ablations.engine.verdict import Check, SmallestEffect, Verdict

TOY_SMALLEST = SmallestEffect(0.1, "a toy threshold")

TRAINED: list[tuple[int, int]] = []
INTERRUPT_AT: set[int] = set()


def _run(configs, context):
    results = []
    for config in configs:
        if config["x"] in INTERRUPT_AT:
            INTERRUPT_AT.discard(config["x"])
            raise KeyboardInterrupt
        TRAINED.append((config["x"], config["seed"]))
        results.append({"final_val_loss": float(config["x"] * 10 + config["seed"])})
    return results


TOY = Ablation(
    name="toy_grid",
    claim="x is small",
    params={"x": Param(1, low=0, high=10), "y": Param(0, low=0, high=10)},
    profiles={"smoke": {"x": [1, 2, 3], "seeds": 2}},
    run=_run,
    verdict=lambda trials: Verdict([Check.above("all", "loss", summarize(trials["final_val_loss"]), smallest=TOY_SMALLEST)]),
    figures=lambda trials, client: {"toy": plt.figure()},
    objective="final_val_loss",
    pack_key=lambda config: config["x"],
)


@pytest.fixture(autouse=True)
def _reset():
    TRAINED.clear()
    INTERRUPT_AT.clear()


def _interrupted(config, tracker, at: int) -> None:
    INTERRUPT_AT.add(at)
    with pytest.raises(KeyboardInterrupt):
        run_ablation(TOY, config, tracker=tracker, progress=False)


def test_packs_follow_the_pack_key_in_a_stable_order():
    configs = TOY.resolve("smoke").trials()
    assert pack_points(configs, TOY.pack_key) == [[0, 1], [2, 3], [4, 5]]  # x = 1, 2, 3; seeds 0 and 1 together
    assert pack_points(configs, None) == [[i] for i in range(6)]
    # Device memory may cap a pack: it is split in order.
    assert pack_points(configs, lambda config: config["seed"], max_members=2) == [[0, 2], [4], [1, 3], [5]]


def test_the_grid_key_follows_every_setting():
    base = grid_key("toy_grid", TOY.resolve("smoke"))
    assert base == grid_key("toy_grid", TOY.resolve("smoke"))
    assert base != grid_key("toy_grid", TOY.resolve("smoke", {"y": "1"}))
    assert base != grid_key("toy_grid", TOY.resolve("smoke", seeds=3))
    assert base != grid_key("other", TOY.resolve("smoke"))


def test_an_interrupted_grid_resumes_without_training_its_finished_packs_again(tracker, capsys):
    config = TOY.resolve("smoke")
    _interrupted(config, tracker, at=2)  # the x=1 pack finishes, the x=2 pack is interrupted
    assert TRAINED == [(1, 0), (1, 1)]
    first = tracker.client.search_runs([tracker.client.get_experiment_by_name("toy_grid").experiment_id], "tags.run_kind = 'ablation'")
    assert [run.info.status for run in first] == ["KILLED"]

    result = run_ablation(TOY, config, tracker=tracker, progress=False)
    assert "toy_grid: resuming grid toy_grid-smoke-" in capsys.readouterr().err
    assert TRAINED == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]  # x=1 was not trained again
    assert result.parent_run_id == first[0].info.run_id and result.verdict.outcome == "reproduced"
    parent = tracker.client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_finished"] == 6
    assert parent.data.metrics["trials_failed"] == 0  # the interrupted trials were trained again, not counted as failures
    assert sorted(result.trials["final_val_loss"]) == [10, 11, 20, 21, 30, 31]

    # The grid is concluded: the same command starts a new one.
    run_ablation(TOY, config, tracker=tracker, progress=False)
    assert len(TRAINED) == 12


def test_a_changed_setting_starts_a_new_grid_and_says_so(tracker, capsys):
    _interrupted(TOY.resolve("smoke"), tracker, at=1)
    capsys.readouterr()
    run_ablation(TOY, TOY.resolve("smoke", {"y": "4", "x": "1,3"}), tracker=tracker, progress=False)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"toy_grid: settings differ from the unfinished grid toy_grid-smoke-{grid_key('toy_grid', TOY.resolve('smoke'))} (x [1, 2, 3] → [1, 3], y 0 → 4); starting a new grid."]
    assert TRAINED == [(1, 0), (1, 1), (3, 0), (3, 1)]


def test_fresh_starts_a_new_grid_beside_the_unfinished_one(tracker, capsys):
    config = TOY.resolve("smoke")
    _interrupted(config, tracker, at=3)
    capsys.readouterr()
    result = run_ablation(TOY, config, tracker=tracker, progress=False, fresh=True)
    assert "toy_grid: --fresh: starting a new grid; the unfinished toy_grid-smoke-" in capsys.readouterr().err
    assert result.study_name.endswith("-2") and len(TRAINED) == 4 + 6
    # The unfinished grid is still there, to resume.
    run_ablation(TOY, config, tracker=tracker, progress=False)
    assert "resuming grid" in capsys.readouterr().err and len(TRAINED) == 4 + 6 + 2
    assert sorted(s.user_attrs["concluded"] for s in open_storage(None).get_all_studies()) == [True, True]


def test_a_child_run_killed_before_its_params_were_logged_is_not_read_back(tracker):
    from ablations.engine.runner import read_trials

    result = run_ablation(TOY, TOY.resolve("smoke"), tracker=tracker, progress=False)
    # What a SIGKILL between creating a trial's run and logging its params leaves behind.
    tracker.start_run(result.experiment_id, "killed at birth", params={}, tags={"run_kind": "trial"}, parent_run_id=result.parent_run_id)
    trials = read_trials(tracker, TOY, result.experiment_id, result.parent_run_id)
    assert len(tracker.child_runs(result.experiment_id, result.parent_run_id)) == 7
    assert len(trials) == 6 and trials["seed"].tolist() == [0, 1, 0, 1, 0, 1]


def _created_in_part(config, tracker, monkeypatch, points: int) -> optuna.Study:
    """A grid whose creator stopped after enqueueing ``points`` grid points (killed, or still at it)."""
    from ablations.engine import grid as grid_module

    enqueue = grid_module._enqueue
    calls = []

    def stop_after(*args):
        if len(calls) == points:
            raise KeyboardInterrupt
        calls.append(args)
        enqueue(*args)

    monkeypatch.setattr(grid_module, "_enqueue", stop_after)
    with pytest.raises(KeyboardInterrupt):
        run_ablation(TOY, config, tracker=tracker, progress=False)
    monkeypatch.setattr(grid_module, "_enqueue", enqueue)
    (summary,) = open_storage(None).get_all_studies()
    study = optuna.load_study(study_name=summary.study_name, storage=open_storage(None))
    assert not study.user_attrs.get(READY_ATTR) and len(study.trials) == points
    return study


def test_a_grid_whose_creator_died_while_enqueueing_is_finished_by_the_next_run(tracker, monkeypatch, capsys):
    config = TOY.resolve("smoke")
    study = _created_in_part(config, tracker, monkeypatch, points=2)
    study.set_user_attr(CREATOR_ATTR, {**worker_identity(), "boot": "before a reboot"})  # a worker that no longer runs
    capsys.readouterr()
    result = run_ablation(TOY, config, tracker=tracker, progress=False)
    assert f"grid {study.study_name}: its creator died; enqueueing the grid points it lacks." in capsys.readouterr().err
    assert sorted(TRAINED) == [(x, seed) for x in (1, 2, 3) for seed in (0, 1)]  # each point once
    assert result.study_name == study.study_name and result.verdict.outcome == "reproduced" and result.failed == 0


def test_a_run_that_finds_a_grid_being_created_waits_for_its_creator(tracker, monkeypatch, capsys):
    from ablations.engine import grid as grid_module

    config = TOY.resolve("smoke")
    study = _created_in_part(config, tracker, monkeypatch, points=3)  # its creator (this process) still runs
    waits = []

    def creator_finishes(seconds):
        # Called only while the joiner waits: the creator enqueues the rest then, as it would on another machine.
        waits.append(seconds)
        grid_module._Creation(TOY, config, config.trials(), lambda: "unused", None, print).complete(study)

    monkeypatch.setattr(grid_module.time, "sleep", creator_finishes)
    capsys.readouterr()
    result = run_ablation(TOY, config, tracker=tracker, progress=False)
    assert len(waits) == 1 and "creator died" not in capsys.readouterr().err
    # The joiner enqueued nothing of its own: one trial per grid point, each trained once.
    points = [t.user_attrs[POINT_ATTR] for t in optuna.load_study(study_name=study.study_name, storage=open_storage(None)).trials if POINT_ATTR in t.user_attrs]
    assert sorted(points) == list(range(6)) and sorted(TRAINED) == [(x, seed) for x in (1, 2, 3) for seed in (0, 1)]
    assert result.verdict.outcome == "reproduced"


def test_a_second_trial_of_a_finished_grid_point_is_dropped_and_not_counted_as_a_failure(tracker):
    from ablations.engine import grid as grid_module

    config = TOY.resolve("smoke")
    _interrupted(config, tracker, at=2)  # the x=1 pack (points 0 and 1) finishes
    (summary,) = open_storage(None).get_all_studies()
    study = optuna.load_study(study_name=summary.study_name, storage=open_storage(None))
    grid_module._enqueue(study, config, config.trials()[0], 0, 0)  # what two workers repairing at once can leave
    result = run_ablation(TOY, config, tracker=tracker, progress=False)
    assert sorted(TRAINED) == [(x, seed) for x in (1, 2, 3) for seed in (0, 1)]
    (duplicate,) = [t for t in optuna.load_study(study_name=summary.study_name, storage=open_storage(None)).trials if t.state.name == "FAIL" and t.user_attrs.get(POINT_ATTR) == 0]
    assert duplicate.user_attrs["failure_reason"].startswith("duplicate: grid point held by trial id ")
    assert result.failed == 0 and tracker.client.get_run(result.parent_run_id).data.metrics["trials_failed"] == 0
