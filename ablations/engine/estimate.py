"""Sizing a run before it runs: ``ablate run ... --dry-run``.

Counts are exact: trials (grid points), packs (trials trained together, by the
ablation's ``pack_key``, split to fit device memory as the runner splits them) and
epochs (each trial's ``epochs`` setting, or ``train_steps`` where an ablation
counts optimizer steps, summed over trials; the configured count, so an upper
bound where trials stop early).

The time is calibrated on this device (`calibrate`). Packs that differ in what
makes a pack dear (`COST_AXES`: the data set or task, the training-set size, depth,
width) are timed apart, one group of alike packs at a time (`cost_groups`). One
pack of each group, the one of median size (or `CALIBRATION_MEMBERS` of its
members, spread over it), is trained three times with its epochs cut, with
loggers that keep nothing: nothing is logged, nothing is
written. The first run (at the
fewest epochs) pays what only a process's first pack pays (loading data,
TensorFlow's lazy set-up); the second (same epochs) and the third (enough epochs
more to take `MIN_SLOPE_S` longer) put a line through time against epochs, whose
intercept is a pack's fixed cost (building the models, tracing the step) and
whose slope is the cost of an epoch. Where that line puts the whole pack under
`WHOLE_PACK_S`, the third run is redone with all the epochs, so that members
that stop early cost what they will. The cost model is then::

    seconds = first-pack extra + packs x (fixed + per pack)
              + trials x (per trial + values once x per value)
              + (member epochs) x (per-member-epoch + values per epoch x per value)

summed over the groups, where the per-member-epoch cost is the slope divided by
the pack's members. It assumes every pack of a group costs about what its
median one does (packs that differ in an initializer or a seed do), so the
estimate is rough and a real run is what checks it. An ablation without an
epoch setting is timed as one whole pack and multiplied by the packs: twice
where that is cheap (`REPEAT_WHOLE_UNDER_S`), to split off the first-pack
extra, else once, the extra then counted in every pack (an overestimate, by
seconds per pack).

The MLflow and Optuna bookkeeping (per pack, per trial, per metric value) is
what the calibration cannot time, since it writes nothing: it is added at
`bookkeeping.BookkeepingRates`, applied to the metric values the calibration's
members logged (counted, not kept). ``ablate run --dry-run`` first scales the
documented rates to this machine's disk (`bookkeeping.measure_rates`: a toy
grid that trains nothing, written into a temporary folder and removed); a
remote tracking server costs more. The conclusion (reading the trials back,
the verdict, figures) adds `CONCLUSION_S` and a read-back per trial,
and a test score one net's training per selection (`conclusion_seconds`).

Peak memory is measured around the calibration: this process's peak resident
memory (which a worker reaches too), and on a GPU the device's peak allocation;
where only some of a pack's members were timed (`CALIBRATION_MEMBERS`), what
the timing added is scaled to the whole pack.
The workers that fit on this machine (`device.worker_bound`) are counted with
that peak resident memory per worker in place of the documented bound that
``--workers`` is checked against (`device.WORKER_MEMORY_BYTES`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ablations.engine.bookkeeping import DEFAULT_RATES, BookkeepingRates
from ablations.engine.device import (
    MachineFigures,
    WorkerBound,
    configure_gpus,
    device_name,
    gpu_peak_bytes,
    jit_enabled,
    machine_figures,
    member_bytes,
    pack_limit,
    parallel_slots,
    peak_rss_bytes,
    reset_gpu_peak,
)
from ablations.engine.grid import pack_points
from ablations.engine.progress import duration
from ablations.engine.spec import Ablation, ResolvedConfig, TrialContext

EPOCH_KEYS = ("epochs", "train_steps")
"""The settings that say how long a trial trains, in the order they are looked for."""
EXTRA_EPOCHS = 3
"""Epochs the third calibration run first trains beyond the first two (fewer when the trials train fewer)."""
MIN_SLOPE_S = 2.0
"""The third calibration run trains more epochs (four times more each try, up to
the trials' own count) until it takes this much longer than the second: a cost
per epoch read off a smaller difference is mostly timing noise (a pack of small
models trains a step in milliseconds)."""
COST_AXES = ("data", "task", "n_train", "depth", "width")
"""Settings that change what a pack costs (an epoch's examples, a step's work):
packs that differ in them are timed apart."""
WHOLE_PACK_S = 120.0
"""A timed pack whose whole run the cut timings put under this many seconds is
then trained whole, all its epochs: its members that stop early (early
stopping) then cost what they will cost, where a line through a few epochs
would count every member for every epoch. It bounds what this costs a dry run:
at most two minutes per timed group, on grids whose packs take about that long.
At one minute, dropout's quick pack of 3,000 examples (a line to 150 epochs:
75 s) was charged every epoch, where its early-stopped arms train a fraction of
them: the estimate read four times the run."""
CONCLUSION_S = 1.2
"""The conclusion, once the last pack is told: the trials read back, aggregates,
verdict and figures logged, about ``CONCLUSION_S`` plus the read-back per trial
(`bookkeeping.BookkeepingRates.read_s`), fitted to the quick grids' conclusions
on a 2-core CPU. A test score adds one net's training per selection
(`Ablation.select_within`), estimated from the calibration."""
REPEAT_WHOLE_UNDER_S = 10.0
"""An ablation without an epoch setting is timed whole; under this many seconds,
twice, so that what only a process's first pack pays is not counted in every pack."""
CALIBRATION_MEMBERS = 32
"""Most members a calibration trains: a larger pack is timed on this many of its
members, spread over it, and its per-member cost scaled to the whole (the full
profile's packs of a hundred deep nets would otherwise keep a dry run busy for
many minutes). The fixed cost, mostly tracing, is taken as the sub-pack's."""
MAX_TIMED_GROUPS = 6
"""Most groups a dry run times; past it the last of `COST_AXES` stop splitting packs."""
HOUR_S = 3600.0

Clock = Callable[[], float]


@dataclass(frozen=True)
class GridSize:
    """What a grid holds.

    Args:
        trials: Grid points.
        packs: Groups of trials trained together.
        epochs: Epochs (or steps) over all trials; None when the trials have no such setting.
        epoch_key: The setting counted ("epochs" or "train_steps"), or None.
    """

    trials: int
    packs: int
    epochs: int | None
    epoch_key: str | None


def epoch_key(ablation: Ablation) -> str | None:
    """The setting that says how long one of ``ablation``'s trials trains, or None."""
    return next((name for name in EPOCH_KEYS if name in ablation.params), None)


def grid_size(ablation: Ablation, config: ResolvedConfig, max_members: int | None = None) -> GridSize:
    """Counts the trials, packs and epochs of ``config``'s grid.

    Args:
        ablation: The ablation.
        config: Its resolved configuration.
        max_members: Largest pack (device memory, `device.members_per_pack`);
            None packs as the ablation's ``pack_key`` says.
    """
    configs = config.trials()
    return _size_of(configs, pack_points(configs, ablation.pack_key, max_members), epoch_key(ablation))


def cost_groups(configs: list[dict[str, Any]], packs: list[list[int]]) -> list[tuple[dict[str, Any], list[list[int]]]]:
    """The packs grouped by the `COST_AXES` in which they differ, each group with what its packs share.

    Packs are first told apart by every setting they hold fixed, but a seed:
    where that makes at most `MAX_TIMED_GROUPS` groups, those are the groups,
    each sharing the settings that set it apart. Packs may differ in what no
    cost axis names (linear_collapse's logistic regression beside its deep
    nets, collinearity's feature counts). Otherwise an axis of `COST_AXES`
    counts when it differs between packs and never within one; while there
    would be more than `MAX_TIMED_GROUPS` groups, the last counted axis is
    dropped (one group, sharing nothing, when none is left).

    Args:
        configs: Every grid point's configuration, in grid order.
        packs: The grid points of each pack (`grid.pack_points`).
    """

    def values(axis: str, points: list[int]) -> set[str]:
        return {repr(configs[i].get(axis)) for i in points}

    fixed = [{name: value for name, value in configs[pack[0]].items() if name != "seed" and len(values(name, pack)) == 1} for pack in packs]
    common = {name: value for name, value in fixed[0].items() if all(name in f and repr(f[name]) == repr(value) for f in fixed)}
    apart: dict[str, tuple[dict[str, Any], list[list[int]]]] = {}
    for pack, settings in zip(packs, fixed):
        own = {name: value for name, value in settings.items() if name not in common}
        apart.setdefault(repr(sorted(own.items())), (own, []))[1].append(pack)
    if len(apart) <= MAX_TIMED_GROUPS:
        return list(apart.values())
    axes = [
        axis
        for axis in COST_AXES
        if len(values(axis, [pack[0] for pack in packs])) > 1 and all(len(values(axis, pack)) == 1 for pack in packs)
    ]
    while True:
        groups: dict[str, tuple[dict[str, Any], list[list[int]]]] = {}
        for pack in packs:
            shared = {axis: configs[pack[0]][axis] for axis in axes}
            groups.setdefault(repr(shared), (shared, []))[1].append(pack)
        if len(groups) <= MAX_TIMED_GROUPS or not axes:
            try:  # in the order of their settings (depth 2 before 10), where those compare
                return sorted(groups.values(), key=lambda group: tuple(group[0].values()))
            except TypeError:
                return list(groups.values())
        axes.pop()


def _size_of(configs: list[dict[str, Any]], packs: list[list[int]], key: str | None) -> GridSize:
    points = [i for pack in packs for i in pack]
    return GridSize(len(points), len(packs), sum(int(configs[i][key]) for i in points) if key else None, key)


@dataclass(frozen=True)
class Calibration:
    """One pack timed on this device, and the cost model drawn from it.

    Args:
        members: Trials in the timed pack.
        pack_members: Trials in the pack it stands for (more than ``members``
            when only a spread of them was timed, `CALIBRATION_MEMBERS`).
        epoch_key: The setting cut down for the timing, or None (the pack ran whole, once).
        epochs: The epoch counts of the timed runs after the first (one or two; none without an epoch setting).
        seconds: Their wall times (without an epoch setting: the whole pack's).
        first_extra_s: What the first pack of a process costs beyond the others.
        fixed_s: A pack's cost that does not grow with epochs (building, tracing);
            the whole pack's time when there is no epoch setting.
        per_member_epoch_s: The cost of one member's epoch (0 without an epoch setting).
        peak_rss_bytes: This process's peak resident memory after the timing.
        rss_growth_bytes: How much the timing raised that peak (0 if an earlier
            step of the process had reached higher).
        peak_gpu_bytes: The first GPU's peak allocation during the timing; None on a CPU.
        device: "CPU (N cores)" or the GPU's name.
        jit: Whether the stacked step was XLA-compiled (``--jit``), as the run would compile it.
        values_per_member_epoch: Metric values a member logs per epoch (what MLflow will write).
        values_per_trial: Metric values a trial logs once (its final metrics; all of them without an epoch setting).
    """

    members: int
    epoch_key: str | None
    epochs: tuple[int, ...]
    seconds: tuple[float, ...]
    first_extra_s: float
    fixed_s: float
    per_member_epoch_s: float
    peak_rss_bytes: int
    rss_growth_bytes: int
    peak_gpu_bytes: int | None
    device: str
    jit: bool = False
    pack_members: int | None = None
    values_per_member_epoch: float = 0.0
    values_per_trial: float = 0.0

    def seconds_for(self, size: GridSize, rates: BookkeepingRates = DEFAULT_RATES) -> float:
        """Estimated wall time of a grid of ``size`` with one worker on this device.

        Args:
            size: The grid's counts.
            rates: The runner's bookkeeping costs on this machine.
        """
        values = self.values_per_trial * size.trials
        seconds = self.first_extra_s + self.fixed_s * size.packs
        if size.epochs is not None and self.epoch_key is not None:
            seconds += self.per_member_epoch_s * size.epochs
            values += self.values_per_member_epoch * size.epochs
        return seconds + rates.seconds(size.packs, size.trials, values)

    def describe(self) -> str:
        """What was timed, in words: "1 pack of 7 trials: 2.1s at 1 and 3.7s at 4 epochs"."""
        trials = f"1 pack of {self.members} trial{'s' if self.members != 1 else ''}"
        if self.pack_members and self.pack_members > self.members:
            trials = f"{self.members} of a pack of {self.pack_members} trials"
        xla = ", XLA-compiled" if self.jit else ""
        if self.epoch_key is None:
            return f"{trials} in {self.seconds[0]:.1f}s{xla}"
        unit = self.epoch_key.replace("_", " ")
        timings = " and ".join(f"{s:.1f}s at {e}" for e, s in zip(self.epochs, self.seconds))
        note = "; the per-epoch cost is below the timing noise" if len(self.epochs) > 1 and self.per_member_epoch_s == 0 else ""
        return f"{trials}: {timings} {unit}{xla}{note}"


def calibrate(
    ablation: Ablation,
    config: ResolvedConfig,
    *,
    max_members: int | None = None,
    packs: list[list[int]] | None = None,
    clock: Clock = time.perf_counter,
) -> Calibration:
    """Times one pack of ``config``'s grid on this device, with its epochs cut to a few; writes nothing.

    The pack is the one of median size (`device.member_bytes` summed over its
    members). It runs with loggers and artifact loggers that keep nothing, so
    no MLflow run, no Optuna trial and no results folder comes of it.

    Args:
        ablation: The ablation.
        config: Its resolved configuration.
        max_members: Largest pack, as the runner would split them (None: no limit).
        packs: The packs to choose from (grid point indices, `cost_groups`); None: every pack of the grid.
        clock: Seconds, for timing (a test passes a fake one).
    """
    configure_gpus()  # before anything initializes the GPUs; a no-op on a CPU or when done already
    configs = config.trials()
    packs = packs or pack_points(configs, ablation.pack_key, max_members)
    # The median pack by size: the grid order puts the cheapest or the dearest first.
    by_size = sorted(packs, key=lambda points: (sum(member_bytes(configs[i]) for i in points), points))
    median = by_size[len(by_size) // 2]
    pack = [configs[i] for i in _spread(median, CALIBRATION_MEMBERS)]
    key = epoch_key(ablation)
    rss_before = peak_rss_bytes()
    reset_gpu_peak()
    if key is None:
        timings = _time_whole(ablation, config, pack, len(median) / len(pack), clock)
    else:
        timings = _time_epochs(ablation, config, pack, key, clock)
    # What the last run logged, per member and epoch (steps) and per member (its final metrics).
    last, trained = timings.last, (timings.epochs[-1] if timings.epochs else 0)
    step_values = last.step_values / (len(pack) * trained) if trained else 0.0
    trial_values = (last.final_values + (0 if trained else last.step_values)) / len(pack)
    # Memory grows with the members: a sub-pack's growth is scaled to the whole pack's.
    scale = len(median) / len(pack)
    growth = max(peak_rss_bytes() - rss_before, 0) * scale
    gpu_peak = gpu_peak_bytes()
    return Calibration(
        members=len(pack),
        pack_members=len(median),
        epoch_key=key,
        epochs=timings.epochs,
        seconds=timings.seconds,
        first_extra_s=timings.first_extra,
        fixed_s=timings.fixed,
        per_member_epoch_s=timings.per_epoch / len(pack),
        peak_rss_bytes=max(peak_rss_bytes(), int(rss_before + growth)),
        rss_growth_bytes=int(growth),
        peak_gpu_bytes=None if gpu_peak is None else int(gpu_peak * scale),
        device=device_name(),
        jit=jit_enabled(),
        values_per_member_epoch=step_values,
        values_per_trial=trial_values,
    )


@dataclass(frozen=True)
class _Timings:
    """What the timed runs of one pack gave: `Calibration`'s costs, for the whole pack (not per member)."""

    first_extra: float
    fixed: float
    per_epoch: float
    epochs: tuple[int, ...]
    seconds: tuple[float, ...]
    last: _PackRun


def _time_whole(ablation: Ablation, config: ResolvedConfig, pack: list[dict[str, Any]], scale: float, clock: Clock) -> _Timings:
    """Times ``pack`` whole, with nothing to cut; its time, times ``scale``, is a pack's fixed cost.

    A second run, where the first took under `REPEAT_WHOLE_UNDER_S`, separates
    what only a process's first pack pays; past it (a second run could cost
    minutes) that extra is counted in every pack, an overestimate.
    """
    last = _time_pack(ablation, config, pack, clock)
    if last.seconds > REPEAT_WHOLE_UNDER_S:
        return _Timings(0.0, last.seconds * scale, 0.0, (), (last.seconds,), last)
    first, last = last, _time_pack(ablation, config, pack, clock)
    return _Timings(max(first.seconds - last.seconds, 0.0), last.seconds * scale, 0.0, (), (last.seconds,), last)


def _time_epochs(ablation: Ablation, config: ResolvedConfig, pack: list[dict[str, Any]], key: str, clock: Clock) -> _Timings:
    """Times ``pack`` at a few values of ``key`` (see the module's docstring) and puts a line through them."""

    def run(epochs: int) -> _PackRun:
        return _time_pack(ablation, config, [{**c, key: epochs} for c in pack], clock)

    budget = min(int(c[key]) for c in pack)
    low = min(budget, max(1, int(ablation.params[key].low or 1)))  # the setting's own lower bound, if it has one
    high = min(budget, low + EXTRA_EPOCHS)
    first = run(low).seconds
    last = run(low)
    at_low = last.seconds
    extra = max(first - at_low, 0.0)
    if high == low:  # the trials train that few epochs: nothing to split, so all of it counts per epoch
        return _Timings(extra, 0.0, at_low / low, (low,), (at_low,), last)
    last = run(high)
    while last.seconds - at_low < MIN_SLOPE_S and high < budget:
        high = min(budget, high * 4)
        last = run(high)
    per_epoch = max((last.seconds - at_low) / (high - low), 0.0)  # noise can tip a flat line below 0
    if high < budget and at_low + per_epoch * (budget - low) <= WHOLE_PACK_S:
        # Cheap enough to train as the run will: members that stop early then count as they stop.
        high = budget
        last = run(high)
        per_epoch = max((last.seconds - at_low) / (high - low), 0.0)
    return _Timings(extra, max(at_low - per_epoch * low, 0.0), per_epoch, (low, high), (at_low, last.seconds), last)


@dataclass(frozen=True)
class TimedGroup:
    """Packs that cost alike, and the timing of one of them.

    Args:
        shared: The `COST_AXES` settings its packs share ({} when the grid is timed as one group).
        size: Its counts.
        calibration: One of its packs timed.
    """

    shared: dict[str, Any]
    size: GridSize
    calibration: Calibration

    def describe(self) -> str:
        """What was timed: "depth=20: 1 pack of 7 trials: ..." (no prefix for a grid timed as one group)."""
        prefix = ", ".join(f"{axis}={value}" for axis, value in self.shared.items())
        return f"{prefix}: {self.calibration.describe()}" if prefix else self.calibration.describe()


@dataclass(frozen=True)
class Estimate:
    """A grid's size and its expected cost on this device.

    Args:
        name: The ablation.
        profile: The profile.
        size: The grid's counts.
        groups: Its packs in groups that cost alike, each timed (`cost_groups`); () when a pack could not be timed.
        workers: Processes the run would use on this machine (``--workers``).
        parallel_slots: Workers this device runs side by side at full speed:
            one per core on a CPU, one per GPU on a GPU machine (`parallel_slots`).
        slot_unit: What a slot is, for the printed line: "core" or "GPU".
        error: Why the pack could not be timed (the calibration's exception), or None.
        machine: This machine's cores, GPUs and available memory (`device.machine_figures`);
            None: the line does not say how many workers fit.
        conclusion_s: The conclusion's estimated seconds (`conclusion_seconds`).
        rates: The runner's bookkeeping costs on this machine (`bookkeeping.measure_rates`).
    """

    name: str
    profile: str
    size: GridSize
    groups: tuple[TimedGroup, ...]
    workers: int = 1
    parallel_slots: int = 1
    slot_unit: str = "core"
    error: str | None = None
    machine: MachineFigures | None = None
    conclusion_s: float = 0.0
    rates: BookkeepingRates = DEFAULT_RATES

    @property
    def seconds_one_worker(self) -> float | None:
        """Estimated wall time with one worker: its packs, then the conclusion."""
        return self._training_s() + self.conclusion_s if self.groups else None

    @property
    def seconds(self) -> float | None:
        """Estimated wall time with `workers` workers: linear speed-up of the packs up to `parallel_slots`, none beyond."""
        if not self.groups:
            return None
        return self._training_s() / max(1, min(self.workers, self.parallel_slots)) + self.conclusion_s

    def _training_s(self) -> float:
        return sum(group.calibration.seconds_for(group.size, self.rates) for group in self.groups)

    @property
    def peak_rss_bytes(self) -> int | None:
        """This process's peak resident memory after the timings (a worker reaches it too)."""
        return max(group.calibration.peak_rss_bytes for group in self.groups) if self.groups else None

    @property
    def peak_gpu_bytes(self) -> int | None:
        """The first GPU's peak allocation over the timings; None on a CPU."""
        peaks = [group.calibration.peak_gpu_bytes for group in self.groups if group.calibration.peak_gpu_bytes is not None]
        return max(peaks) if peaks else None

    @property
    def peak_memory_mb(self) -> float | None:
        """Peak memory of one worker (MiB): the GPU's peak allocation on a GPU, else the process's peak RSS."""
        if not self.groups:
            return None
        return (self.peak_gpu_bytes if self.peak_gpu_bytes is not None else self.peak_rss_bytes) / 2**20

    @property
    def workers_that_fit(self) -> WorkerBound | None:
        """How many workers fit on this machine, each needing the measured peak resident memory (None: not timed).

        The host's memory is what runs out as workers are added, on a GPU too
        (the GPU's own memory is shared under memory growth and capped per GPU).
        """
        if self.machine is None or not self.groups:
            return None
        return self.machine.worker_bound(per_worker_bytes=self.peak_rss_bytes)

    def workers_for(self, seconds: float = HOUR_S) -> int | None:
        """Workers that bring the run under ``seconds``, if throughput grows linearly with them (None: not timed)."""
        one = self.seconds_one_worker
        return None if one is None else max(1, math.ceil(one / seconds))

    def line(self) -> str:
        """The dry run's line for this grid (`format_estimate`)."""
        return format_estimate(self)


def estimate(
    ablation: Ablation,
    config: ResolvedConfig,
    *,
    workers: int = 1,
    rates: BookkeepingRates = DEFAULT_RATES,
    clock: Clock = time.perf_counter,
) -> Estimate:
    """Sizes ``config``'s grid and times one pack of each group of alike packs on this device; writes nothing.

    A pack that fails to train is reported in the estimate (`Estimate.error`),
    not raised: the counts still stand.

    Args:
        ablation: The ablation.
        config: Its resolved configuration.
        workers: Processes that would share the grid on this machine (``--workers``).
        rates: The runner's bookkeeping costs (`bookkeeping.measure_rates` for this machine's).
        clock: Seconds, for timing (a test passes a fake one).
    """
    limit = pack_limit(config.trials())
    configs = config.trials()
    packs = pack_points(configs, ablation.pack_key, limit)
    key = epoch_key(ablation)
    size = _size_of(configs, packs, key)
    machine = machine_figures()  # before the timings, whose memory this process then holds
    groups: tuple[TimedGroup, ...] = ()
    error = None
    try:
        groups = tuple(
            TimedGroup(shared, _size_of(configs, alike, key), calibrate(ablation, config, max_members=limit, packs=alike, clock=clock))
            for shared, alike in cost_groups(configs, packs)
        )
    except Exception as exception:  # a dry run still prints the counts
        error = f"{type(exception).__name__}: {exception}".splitlines()[0][:200]
    slots, unit = parallel_slots()
    conclusion = conclusion_seconds(ablation, configs, groups, rates) if groups else 0.0
    return Estimate(ablation.name, config.profile, size, groups, workers, slots, unit, error, machine, conclusion, rates)


def conclusion_seconds(
    ablation: Ablation, configs: list[dict[str, Any]], groups: tuple[TimedGroup, ...], rates: BookkeepingRates = DEFAULT_RATES
) -> float:
    """The conclusion's cost: `CONCLUSION_S` and each trial read back, plus a test's training per selection.

    A test retrains the selected configuration alone: a pack of one, costed
    with the calibration of the group whose shared settings it has.

    Args:
        ablation: The ablation.
        configs: Its grid's trial configurations.
        groups: Its packs' timed groups.
        rates: The runner's bookkeeping costs on this machine.
    """
    seconds = CONCLUSION_S + rates.read_s * len(configs)
    if ablation.test is None:
        return seconds
    selections = {tuple(config.get(axis) for axis in ablation.select_within): config for config in configs}
    for config in selections.values():
        group = next((g for g in groups if all(config.get(axis) == value for axis, value in g.shared.items())), groups[0])
        calibration = group.calibration
        epochs = int(config[calibration.epoch_key]) if calibration.epoch_key else 0
        per_pack = calibration.fixed_s if epochs else calibration.fixed_s / (calibration.pack_members or calibration.members)
        seconds += per_pack + calibration.per_member_epoch_s * epochs
    return seconds


def format_estimate(result: Estimate) -> str:
    """The line ``--dry-run`` prints for one grid.

    Example: ``vanishing_gradients [quick]: 168 trials in 24 packs, 840
    epochs; ~2m with 1 worker on this CPU (2 cores), peak memory ~888 MiB per
    worker (calibrated: 1 pack of 7 trials: 2.1s at 1 and 3.7s at 4 epochs).``
    Then how many workers fit on this machine (`Estimate.workers_that_fit`):
    ``; up to 4 workers fit on this machine (2 cores x 2 workers per core = 4;
    20.1 GiB available / 0.87 GiB per worker = 23)``. A full profile adds the
    workers (or machines) that would bring it under an hour, and the speed-up
    that assumes.

    Args:
        result: An `estimate`.
    """
    size = result.size
    epochs = f", {size.epochs:,} {size.epoch_key.replace('_', ' ')}" if size.epochs is not None else ""
    text = f"{result.name} [{result.profile}]: {size.trials:,} trials in {size.packs:,} packs{epochs}; "
    if not result.groups:
        return text + f"time not estimated (the calibration pack failed: {result.error})."
    workers = f"{result.workers} worker{'s' if result.workers != 1 else ''}"
    if result.peak_gpu_bytes is None:
        memory = f"peak memory ~{result.peak_rss_bytes / 2**20:,.0f} MiB per worker"
    else:
        memory = f"peak GPU memory ~{result.peak_gpu_bytes / 2**20:,.0f} MiB, host ~{result.peak_rss_bytes / 2**20:,.0f} MiB per worker"
    timed = "; ".join([group.describe() for group in result.groups] + ([result.rates.measured] if result.rates.measured else []))
    device = result.groups[0].calibration.device
    text += f"~{duration(result.seconds)} with {workers} on this {device}, {memory} (calibrated: {timed})"
    fit = result.workers_that_fit
    if fit is not None:
        text += f"; up to {fit.most} worker{'s fit' if fit.most != 1 else ' fits'} on this machine ({fit.reason})"
    if result.profile == "full":
        text += "; " + _under_an_hour(result)
    return text + "."


def _under_an_hour(result: Estimate) -> str:
    """What would bring a full run under an hour, with the scaling it assumes."""
    needed = result.workers_for()
    slots = result.parallel_slots
    if needed == 1:
        return "under an hour with one worker"
    unit = f"{slots} {result.slot_unit}{'s' if slots != 1 else ''}"
    if needed <= slots:
        return f"{needed} workers would bring it under an hour (--workers {needed}; assumes linear speed-up up to this device's {unit})"
    machines = math.ceil(needed / slots)
    return (
        f"{needed} workers would bring it under an hour at linear speed-up, more than this device's {unit}: "
        f"{machines} machines like this one, {slots} worker{'s' if slots != 1 else ''} each, sharing one --storage"
    )


@dataclass(frozen=True)
class _PackRun:
    """One timed run of a pack: its seconds, and the metric values its members logged (steps) and returned (final)."""

    seconds: float
    step_values: int
    final_values: int


class _Count:
    """A logger that keeps nothing (a dry run writes nothing) but counts the metric values it is given."""

    def __init__(self) -> None:
        self.values = 0

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        self.values += len(metrics)


def _time_pack(ablation: Ablation, config: ResolvedConfig, pack: list[dict[str, Any]], clock: Clock) -> _PackRun:
    """Trains ``pack`` with loggers that keep nothing, from a clear Keras session as the runner does: its time and metric counts."""
    import keras
    import tensorflow as tf

    count = _Count()
    context = TrialContext(loggers=[count] * len(pack), profile=config.profile, artifact_loggers=[_discard] * len(pack))
    keras.backend.clear_session(free_memory=True)
    # Every run traces its step anew, as every pack of a real run does: TensorFlow's
    # "frequent retracing" warning says nothing here.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        started = clock()
        results = ablation.run(pack, context)
        seconds = clock() - started
    finally:
        logger.setLevel(level)
    return _PackRun(seconds, count.values, sum(len(metrics) for metrics in results))


def _spread(points: list[int], most: int) -> list[int]:
    """At most ``most`` of ``points``, evenly spread over them (first and last included)."""
    if len(points) <= most:
        return points
    return [points[round(i * (len(points) - 1) / (most - 1))] for i in range(most)]


def _discard(*args: Any) -> None:
    """A logger that keeps nothing: a dry run writes nothing."""
