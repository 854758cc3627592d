"""Resuming a grid in-process: an interrupted grid continues, a changed setting or --fresh starts a new one."""

import matplotlib.pyplot as plt
import pytest

from ablations.engine.grid import grid_key, pack_points
from ablations.engine.runner import run_ablation
from ablations.engine.spec import Ablation, Param
from ablations.engine.storage import open_storage
from ablations.engine.stats import summarize
from ablations.engine.verdict import Check, Verdict

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
    verdict=lambda trials: Verdict([Check.above("all", "loss", summarize(trials["final_val_loss"]))]),
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
