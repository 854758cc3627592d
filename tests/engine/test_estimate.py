"""Sizing a grid before it runs: exact counts, a calibrated time, and a dry run that writes nothing."""

import os
import re
import subprocess
import sys
from dataclasses import replace

import matplotlib.pyplot as plt
import pytest

from ablations.engine.bookkeeping import DEFAULT_RATES as RATES
from ablations.engine.device import GIB, MachineFigures
from ablations.engine.estimate import (
    CONCLUSION_S,
    MIN_SLOPE_S,
    MAX_TIMED_GROUPS,
    Calibration,
    Estimate,
    GridSize,
    calibrate,
    cost_groups,
    duration,
    estimate,
    format_estimate,
    grid_size,
)
from ablations.engine.registry import get_ablation
from ablations.engine.spec import Ablation, Param
from ablations.engine.verdict import Verdict

FIRST_EXTRA_S, FIXED_S, PER_MEMBER_EPOCH_S = 2.0, 3.0, 0.5
FITS = r"; up to \d+ workers? fits? on this machine \([^()]*\)"
"""How many workers fit on the machine the tests run on (`test_the_line_says_how_many_workers_fit_on_this_machine` pins the text)."""


def bookkeeping(packs: int, trials: int, epochs: float = 0, values_per_trial: int = 1) -> float:
    """What the runner adds to training (MLflow runs, Optuna trials, the toy's metric values: one per epoch, one final)."""
    return RATES.pack_s * packs + (RATES.trial_s + RATES.value_s * values_per_trial) * trials + RATES.value_s * epochs


def conclusion(trials: int) -> float:
    """What the conclusion adds once the packs are done (the toy has no test split)."""
    return CONCLUSION_S + RATES.read_s * trials


class FakeClock:
    """Time that moves only when the toy trains: once a first-pack extra, then a fixed cost per pack plus a cost per member and epoch."""

    def __init__(self):
        self.now = 0.0
        self.packs: list[list[dict]] = []

    def __call__(self) -> float:
        return self.now


def toy(
    clock: FakeClock,
    *,
    epochs: bool = True,
    fail: bool = False,
    per_member_epoch_s: float = PER_MEMBER_EPOCH_S,
    depths: list[int] | None = None,
    stops_at: int | None = None,
    fixed_s: float = FIXED_S,
) -> Ablation:
    """A grid over x (3 values here, 6 in full) and seeds, packed by seed; its run only moves ``clock``.

    With ``depths``, depth is an axis too, packed apart, and a member's epoch costs ``per_member_epoch_s`` per layer.
    With ``stops_at``, every member stops training after that many epochs (early stopping).
    """

    def run(configs, context):
        assert len(context.loggers) == len(context.artifact_loggers) == len(configs)
        for log, config in zip(context.loggers, configs):  # one value per epoch trained (once without epochs), kept nowhere
            for epoch in range(min(config["epochs"], stops_at or config["epochs"]) if epochs else 1):
                log({"loss": 1.0}, epoch)
        if fail:
            raise FloatingPointError("diverged")
        clock.now += (0.0 if clock.packs else FIRST_EXTRA_S) + fixed_s
        clock.now += per_member_epoch_s * sum(min(c["epochs"], stops_at or c["epochs"]) * c["depth"] for c in configs) if epochs else 0.0
        clock.packs.append(configs)
        return [{"final_val_loss": 0.0} for _ in configs]

    params = {"x": Param(1, low=0, high=10), "depth": Param(1, low=1, high=100)}
    if epochs:
        params["epochs"] = Param(10, low=1, high=10_000)
    full = {"x": [1, 2, 3, 4, 5, 6], "seeds": 5, **({"epochs": 2000} if epochs else {})}
    return Ablation(
        name="toy_sized",
        claim="c",
        params=params,
        profiles={"smoke": {"x": [1, 2, 3], "seeds": 2, **({"depth": depths} if depths else {})}, "full": full},
        run=run,
        verdict=lambda trials: Verdict([]),
        figures=lambda trials, client: {"toy": plt.figure()},
        pack_key=lambda config: (config["seed"], config["depth"]),
    )


def test_grid_size_counts_trials_packs_and_epochs():
    ablation = toy(FakeClock())
    assert grid_size(ablation, ablation.resolve("smoke")) == GridSize(trials=6, packs=2, epochs=60, epoch_key="epochs")
    # Packs split to fit device memory, as the runner splits them.
    assert grid_size(ablation, ablation.resolve("smoke"), max_members=2).packs == 4
    vanishing = get_ablation("vanishing_gradients")
    config = vanishing.resolve("quick")
    trials = 1
    for values in config.grid.values():
        trials *= len(values)
    size = grid_size(vanishing, config)
    # Every activation and seed of one depth and initializer trains in one pack.
    per_pack = len(config.grid["activation"]) * len(config.grid["seed"])
    assert (size.trials, size.packs, size.epochs) == (trials, trials // per_pack, trials * config.fixed["epochs"])
    # Steps where an ablation counts optimizer steps; nothing where it has no such setting.
    assert grid_size(get_ablation("augmentation"), get_ablation("augmentation").resolve("smoke")).epoch_key == "train_steps"
    assert grid_size(get_ablation("collinearity"), get_ablation("collinearity").resolve("smoke")).epochs is None


def test_calibration_splits_a_first_pack_extra_a_fixed_cost_and_a_cost_per_member_and_epoch():
    clock = FakeClock()
    ablation = toy(clock)
    calibration = calibrate(ablation, ablation.resolve("smoke", {"epochs": "100"}), clock=clock)
    # Three runs of one pack of 3 members, epochs cut from 100 to 1, 1 and 4, give back the toy's costs exactly.
    assert [[c["epochs"] for c in pack] for pack in clock.packs] == [[1] * 3, [1] * 3, [4] * 3]
    assert (calibration.members, calibration.epochs, calibration.seconds) == (3, (1, 4), (4.5, 9.0))
    assert calibration.first_extra_s == pytest.approx(FIRST_EXTRA_S)
    assert calibration.fixed_s == pytest.approx(FIXED_S)
    assert calibration.per_member_epoch_s == pytest.approx(PER_MEMBER_EPOCH_S)
    assert calibration.describe() == "1 pack of 3 trials: 4.5s at 1 and 9.0s at 4 epochs"
    # Each member logged one value per epoch and returned one final metric: MLflow writes both.
    assert (calibration.values_per_member_epoch, calibration.values_per_trial) == (1, 1)
    assert calibration.peak_rss_bytes > 0 and calibration.peak_gpu_bytes is None  # this suite runs on a CPU


def test_a_cheap_epoch_is_timed_over_enough_epochs_to_stand_out_of_the_noise():
    clock = FakeClock()
    ablation = toy(clock, per_member_epoch_s=0.01)  # 3 members: 0.09 s more at 4 epochs than at 1
    calibration = calibrate(ablation, ablation.resolve("smoke", {"epochs": "5000"}), clock=clock)
    # The third run grows fourfold until it takes MIN_SLOPE_S longer than the second (2.55 s more at 256 epochs);
    # the line then puts all 5,000 epochs at 154 s, too dear (WHOLE_PACK_S) to train whole.
    assert [pack[0]["epochs"] for pack in clock.packs] == [1, 1, 4, 16, 64, 256]
    assert calibration.epochs == (1, 256) and calibration.seconds[1] - calibration.seconds[0] >= MIN_SLOPE_S
    assert calibration.fixed_s == pytest.approx(FIXED_S) and calibration.per_member_epoch_s == pytest.approx(0.01)
    # It never trains more than the trials would.
    clock = FakeClock()
    calibration = calibrate(toy(clock, per_member_epoch_s=0.01), ablation.resolve("smoke"), clock=clock)
    assert [pack[0]["epochs"] for pack in clock.packs] == [1, 1, 4, 10] and calibration.epochs == (1, 10)


def test_a_pack_larger_than_the_calibration_limit_is_timed_on_a_spread_of_its_members(monkeypatch):
    clock = FakeClock()
    ablation = toy(clock)
    config = ablation.resolve("smoke", {"x": "0,1,2,3,4,5,6,7,8,9", "epochs": "100"})  # packs of 10 members
    monkeypatch.setattr("ablations.engine.estimate.CALIBRATION_MEMBERS", 4)
    calibration = calibrate(ablation, config, clock=clock)
    # 4 of the 10, first and last included; the cost per member and epoch is the toy's, the fixed cost the sub-pack's.
    assert [[c["x"] for c in pack] for pack in clock.packs] == [[0, 3, 6, 9]] * 3
    assert (calibration.members, calibration.pack_members) == (4, 10)
    assert calibration.per_member_epoch_s == pytest.approx(PER_MEMBER_EPOCH_S) and calibration.fixed_s == pytest.approx(FIXED_S)
    assert calibration.describe() == "4 of a pack of 10 trials: 5.0s at 1 and 11.0s at 4 epochs"
    # Without epochs, the timed sub-pack (its second run) stands for the whole pack in proportion to its members.
    clock = FakeClock()
    whole = calibrate(toy(clock, epochs=False), config, clock=clock)
    assert whole.fixed_s == pytest.approx(FIXED_S * 10 / 4)


def test_a_pack_cheap_enough_is_timed_whole_so_that_members_that_stop_early_count_as_they_stop():
    clock = FakeClock()
    ablation = toy(clock, stops_at=20)
    config = ablation.resolve("smoke", {"epochs": "120"})
    calibration = calibrate(ablation, config, clock=clock)
    # A line through 1 and 4 epochs puts the whole pack at 4.5 + 1.5 x 119 = 183 s: too dear (WHOLE_PACK_S) to train whole.
    assert [pack[0]["epochs"] for pack in clock.packs] == [1, 1, 4]
    assert calibration.per_member_epoch_s == pytest.approx(PER_MEMBER_EPOCH_S)
    # At 0.1 s per member and epoch (a line through 1 and 16 epochs) the whole pack would take 3.3 + 0.3 x 119 = 39 s:
    # the third run is redone with all 120 epochs, in which the members train 20: the estimate is then the real cost.
    clock = FakeClock()
    calibration = calibrate(toy(clock, stops_at=20, per_member_epoch_s=0.1), config, clock=clock)
    assert [pack[0]["epochs"] for pack in clock.packs] == [1, 1, 4, 16, 120] and calibration.epochs == (1, 120)
    assert calibration.seconds[1] == pytest.approx(FIXED_S + 0.1 * 3 * 20)
    assert calibration.values_per_member_epoch == pytest.approx(20 / 120)  # and they log only the epochs they train
    size = grid_size(ablation, config)
    assert calibration.seconds_for(size) == pytest.approx(
        FIRST_EXTRA_S + size.packs * (FIXED_S + 0.1 * 3 * 20) + bookkeeping(size.packs, size.trials, size.epochs / 6), rel=0.02
    )


def test_a_calibration_under_jit_says_so(monkeypatch):
    from ablations.engine.device import JIT_ENV

    monkeypatch.setenv(JIT_ENV, "1")  # what ``ablate run --jit --dry-run`` sets before it calibrates
    clock = FakeClock()
    ablation = toy(clock)
    assert calibrate(ablation, ablation.resolve("smoke"), clock=clock).describe().endswith("at 1 and 18.0s at 10 epochs, XLA-compiled")


def test_the_estimate_extrapolates_the_calibration_and_workers_share_it_up_to_the_cores():
    clock = FakeClock()
    ablation = toy(clock)
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    packs = FIRST_EXTRA_S + 2 * FIXED_S + PER_MEMBER_EPOCH_S * 60 + bookkeeping(2, 6, 60)  # 39.12 s
    seconds = packs + conclusion(6)  # 40.47 s
    assert result.seconds == pytest.approx(seconds)
    line = format_estimate(result)
    assert line == result.line()
    assert re.fullmatch(
        r"toy_sized \[smoke\]: 6 trials in 2 packs, 60 epochs; ~40s with 1 worker on this CPU \(\d+ cores\), "
        r"peak memory ~[\d,]+ MiB per worker \(calibrated: 1 pack of 3 trials: 4\.5s at 1 and 18\.0s at 10 epochs\)" + FITS + r"\.",
        line,
    ), line
    # Workers share the packs; the conclusion is one worker's.
    two = Estimate("toy_sized", "smoke", result.size, result.groups, workers=2, parallel_slots=2, conclusion_s=result.conclusion_s)
    assert two.seconds == pytest.approx(packs / 2 + conclusion(6)) and "~21s with 2 workers" in two.line()
    # Beyond the device's parallel slots, more workers buy nothing.
    eight = Estimate("t", "smoke", result.size, result.groups, workers=8, parallel_slots=2, conclusion_s=result.conclusion_s)
    assert eight.seconds == pytest.approx(packs / 2 + conclusion(6))


def test_packs_that_differ_in_cost_are_timed_apart_and_their_costs_summed():
    clock = FakeClock()
    ablation = toy(clock, depths=[1, 4])  # a depth-4 member's epoch costs four times a depth-1 one's
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    assert [group.shared for group in result.groups] == [{"depth": 1}, {"depth": 4}]
    assert [(g.size.trials, g.size.packs, g.size.epochs) for g in result.groups] == [(6, 2, 60), (6, 2, 60)]
    assert [g.calibration.per_member_epoch_s for g in result.groups] == pytest.approx([PER_MEMBER_EPOCH_S, 4 * PER_MEMBER_EPOCH_S])
    # Exactly what the toy's 4 packs cost in one process: its first-pack extra once, then each pack's own.
    seconds = FIRST_EXTRA_S + 4 * FIXED_S + PER_MEMBER_EPOCH_S * 60 * (1 + 4) + bookkeeping(4, 12, 120) + conclusion(12)
    assert result.seconds == pytest.approx(seconds)
    # Timed as one group by its median pack (a depth-4 one), the same grid would read 35% dearer.
    median_only = FIRST_EXTRA_S + 4 * FIXED_S + 4 * PER_MEMBER_EPOCH_S * 120 + bookkeeping(4, 12, 120) + conclusion(12)
    assert median_only / seconds > 1.35
    assert replace(result, machine=None).line().endswith(
        "(calibrated: depth=1: 1 pack of 3 trials: 4.5s at 1 and 18.0s at 10 epochs; depth=4: 1 pack of 3 trials: 9.0s at 1 and 63.0s at 10 epochs)."
    )


def _points(**axes) -> list[dict]:
    """Every combination of ``axes`` (name -> values), a seed (0 or 1) innermost."""
    points = [{}]
    for name, values in {**axes, "seed": [0, 1]}.items():
        points = [{**point, name: value} for point in points for value in values]
    return points


def test_the_conclusion_adds_a_test_training_per_selection_costed_by_its_group():
    clock = FakeClock()
    ablation = replace(toy(clock, depths=[1, 4]), test=lambda config, guard: {"test_loss": 0.0}, select_within=("depth",))
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    # One test per depth, each a pack of one trained for its 10 epochs at its group's cost.
    tests = (FIXED_S + PER_MEMBER_EPOCH_S * 10) + (FIXED_S + 4 * PER_MEMBER_EPOCH_S * 10)
    assert result.conclusion_s == pytest.approx(conclusion(12) + tests)


def test_cost_groups_split_only_on_settings_that_differ_between_packs():
    # n_train varies inside each pack (packed by data and seed): only the data set splits the packs.
    configs = _points(data=["mnist5k", "digits"], n_train=[100, 300])
    packs = [[i for i, c in enumerate(configs) if (c["data"], c["seed"]) == key] for key in sorted({(c["data"], c["seed"]) for c in configs})]
    groups = cost_groups(configs, packs)
    assert [shared for shared, _ in groups] == [{"data": "digits"}, {"data": "mnist5k"}]
    assert sorted(i for _, group in groups for pack in group for i in pack) == list(range(len(configs)))
    # Packs that differ only in their seed cost alike: one group, sharing nothing.
    assert cost_groups(_points(x=[1, 2]), [[0, 2], [1, 3]]) == [({}, [[0, 2], [1, 3]])]
    # Few packs that differ in any other setting are timed apart, even one no cost axis names.
    assert cost_groups(_points(x=[1, 2]), [[0, 1], [2, 3]]) == [({"x": 1}, [[0, 1]]), ({"x": 2}, [[2, 3]])]


def test_a_pack_that_holds_a_setting_fixed_is_timed_apart_from_one_that_varies_it():
    # linear_collapse: logistic regression trains apart from the deep nets (linear and ReLU) of the same data set.
    configs = _points(data=["moons", "xor"], model=["logistic", "deep_linear", "relu_net"])
    packs = [[i for i, c in enumerate(configs) if c["data"] == data and (c["model"] == "logistic") == alone]
             for data in ("moons", "xor") for alone in (True, False)]
    groups = cost_groups(configs, packs)
    assert [shared for shared, _ in groups] == [
        {"data": "moons", "model": "logistic"}, {"data": "moons"}, {"data": "xor", "model": "logistic"}, {"data": "xor"}
    ]


def test_past_the_most_groups_a_dry_run_times_the_last_cost_settings_stop_splitting():
    configs = _points(data=["a", "b"], n_train=[10, 20], depth=[2, 5, 10])  # 12 combinations, 2 seeds each
    packs = [[i, i + 1] for i in range(0, len(configs), 2)]
    groups = cost_groups(configs, packs)
    assert len(packs) > MAX_TIMED_GROUPS and len(groups) == 4
    assert [shared for shared, _ in groups] == [{"data": d, "n_train": n} for d in "ab" for n in (10, 20)]
    assert [len(group) for _, group in groups] == [3, 3, 3, 3]


def test_a_full_profile_says_how_many_workers_or_machines_bring_it_under_an_hour():
    clock = FakeClock()
    ablation = toy(clock)
    result = estimate(ablation, ablation.resolve("full"), clock=clock)
    seconds = FIRST_EXTRA_S + 5 * FIXED_S + PER_MEMBER_EPOCH_S * 30 * 2000 + bookkeeping(5, 30, 60_000) + conclusion(30)  # about 30,041 s
    assert result.seconds == pytest.approx(seconds)
    assert result.workers_for() == 9
    on_16_cores = Estimate("toy_sized", "full", result.size, result.groups, parallel_slots=16)
    assert on_16_cores.line().endswith(
        "; 9 workers would bring it under an hour (--workers 9; assumes linear speed-up up to this device's 16 cores)."
    )
    on_2_cores = Estimate("toy_sized", "full", result.size, result.groups, parallel_slots=2)
    assert on_2_cores.line().endswith(
        "; 9 workers would bring it under an hour at linear speed-up, more than this device's 2 cores: "
        "5 machines like this one, 2 workers each, sharing one --storage."
    )
    on_1_gpu = Estimate("toy_sized", "full", result.size, result.groups, parallel_slots=1, slot_unit="GPU")
    assert on_1_gpu.line().endswith("more than this device's 1 GPU: 9 machines like this one, 1 worker each, sharing one --storage.")
    (group,) = result.groups
    small = Estimate("a", "full", GridSize(1, 1, 1, "epochs"), (replace(group, size=GridSize(1, 1, 1, "epochs")),))
    assert small.line().endswith("; under an hour with one worker.")


def test_an_ablation_without_epochs_is_timed_as_a_whole_pack():
    clock = FakeClock()
    ablation = toy(clock, epochs=False)
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    # 5 s, under REPEAT_WHOLE_UNDER_S: a second run splits off what only the first pack pays.
    assert len(clock.packs) == 2
    assert re.search(r"\(calibrated: 1 pack of 3 trials in 3\.0s\)" + FITS + r"\.$", result.line()), result.line()
    assert result.seconds == pytest.approx(FIRST_EXTRA_S + 2 * FIXED_S + bookkeeping(2, 6, values_per_trial=2) + conclusion(6))
    assert result.line().startswith("toy_sized [smoke]: 6 trials in 2 packs; ~10s with 1 worker on this CPU")
    # A dear pack runs once (a second run may take minutes): the first-pack extra then counts in every pack.
    clock = FakeClock()
    ablation = toy(clock, epochs=False, fixed_s=12.0)
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    assert len(clock.packs) == 1
    assert result.seconds == pytest.approx(2 * (FIRST_EXTRA_S + 12.0) + bookkeeping(2, 6, values_per_trial=2) + conclusion(6))


def test_a_pack_that_fails_to_train_still_leaves_the_counts():
    clock = FakeClock()
    ablation = toy(clock, fail=True)
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    assert result.seconds is None and result.peak_memory_mb is None
    assert result.line() == (
        "toy_sized [smoke]: 6 trials in 2 packs, 60 epochs; time not estimated (the calibration pack failed: FloatingPointError: diverged)."
    )


def test_the_line_says_how_many_workers_fit_on_this_machine():
    clock = FakeClock()
    ablation = toy(clock)
    result = estimate(ablation, ablation.resolve("smoke"), clock=clock)
    assert result.machine is not None  # read from this machine: cores, GPUs, available memory
    # The calibration's measured peak memory takes the place of the documented bound per worker.
    (group,) = result.groups
    measured = replace(group, calibration=replace(group.calibration, peak_rss_bytes=GIB // 2))
    on_2_cores = replace(result, groups=(measured,), machine=MachineFigures(cores=2, gpus=0, memory_bytes=20 * GIB))
    assert on_2_cores.workers_that_fit.most == 4
    assert on_2_cores.line().endswith(
        "; up to 4 workers fit on this machine (2 cores x 2 workers per core = 4; 20.0 GiB available / 0.5 GiB per worker = 40)."
    )
    tight = replace(on_2_cores, machine=MachineFigures(cores=2, gpus=0, memory_bytes=GIB))
    assert tight.line().endswith("; up to 2 workers fit on this machine (2 cores x 2 workers per core = 4; 1.0 GiB available / 0.5 GiB per worker = 2).")
    lone = replace(on_2_cores, machine=MachineFigures(cores=1, gpus=0, memory_bytes=GIB // 4))
    assert "; up to 1 worker fits on this machine (1 core x 2 workers per core = 2; " in lone.line()
    assert replace(result, machine=None).workers_that_fit is None


@pytest.mark.parametrize(("seconds", "text"), [(42, "42s"), (125, "2m05s"), (3599.4, "59m59s"), (3 * 3600 + 300, "3h05m"), (3 * 3600 + 329, "3h05m")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration(seconds) == text


def test_calibrating_a_real_ablation_writes_nothing(_never_the_real_mlruns):
    results = _never_the_real_mlruns  # ABLATE_RESULTS_DIR and the MLflow database point here
    ablation = get_ablation("vanishing_gradients")
    result = estimate(ablation, ablation.resolve("smoke"))
    # Its smoke grid packs depths 2 and 5 apart: one pack of each timed.
    assert [group.shared for group in result.groups] == [{"depth": 2}, {"depth": 5}] and result.seconds > 0
    for group in result.groups:
        assert isinstance(group.calibration, Calibration)
        assert group.calibration.epochs == (1,)  # the smoke profile trains 1 epoch: nothing to cut
    assert list(results.iterdir()) == []


def test_a_dry_run_prints_one_line_per_ablation_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    env = {**os.environ, "ABLATE_RESULTS_DIR": str(results), "MLFLOW_TRACKING_URI": f"sqlite:///{results}/mlflow.db"}
    command = [sys.executable, "-m", "ablations", "run", "vanishing_gradients", "linear_collapse", "--profile", "smoke", "--dry-run"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"vanishing_gradients \[smoke\]: 4 trials in 2 packs, 4 epochs; ~\d+s with 1 worker on this CPU \(\d+ cores\), "
        r"peak memory ~[\d,]+ MiB per worker \(calibrated: depth=2: 1 pack of 2 trials: [\d.]+s at 1 epochs; "
        r"depth=5: 1 pack of 2 trials: [\d.]+s at 1 epochs; bookkeeping measured at [\d.]+x its documented cost\)" + FITS + r"\.",
        lines[0],
    ), lines[0]
    assert lines[1].startswith("linear_collapse [smoke]: ")
    assert not results.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
