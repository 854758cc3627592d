"""An ablation's grid in Optuna storage: it survives crashes and shares its packs among workers.

A grid is one Optuna study, found again by the hash of its settings (profile,
fixed values, grid axes): rerunning the same ``ablate run`` resumes it, a
changed setting starts a new one. The process that creates it enqueues every
grid point as a WAITING trial, tagged with its pack, plus one more trial, the
conclusion token. Then any number of workers, in one process or many, on one
machine or many (through an RDB storage), repeat:

1. fail the RUNNING trials of dead workers (`execution.liveness`) and enqueue their
   grid points again;
2. claim a pack: move the lowest WAITING trial of a pack that has no RUNNING
   trial to RUNNING. Optuna's storages make that move atomic, so one worker
   wins; the winner then takes the pack's other WAITING trials, which no other
   worker touches once the pack has a RUNNING trial;
3. train it, and tell each trial's outcome.

A process that finds the grid before its creator has enqueued it all waits
until the creator marks it ready, or finishes it if the creator died.

When no grid point is left, the worker that claims the token (atomically, like
a pack) writes the verdict: whichever worker finishes the last pack.

A grid point is done when it has a COMPLETE trial, or a FAIL trial whose
failure is its own (`Fate.OWN`: an exception, a NaN objective). A trial failed
as stale or interrupted (`Fate.retried`) leaves its point to be trained again.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from ablations.engine.execution.liveness import fail_stale_trials, worker_alive, worker_identity
from ablations.engine.execution.optuna_private import storage_of, trial_id
from ablations.engine.execution.states import PARENT_ATTR, WORKER_ATTR, Fate, fail_trial, fate_of
from ablations.engine.spec import Ablation, ResolvedConfig

ABLATION_ATTR = "ablation"
PROFILE_ATTR = "profile"
KEY_ATTR = "grid_key"
SETTINGS_ATTR = "settings"
CONCLUDED_ATTR = "concluded"
CREATED_ATTR = "created"
READY_ATTR = "ready"
MAX_MEMBERS_ATTR = "max_members"
POINT_ATTR = "grid_point"
"""A trial's grid point: its index in the grid's order."""
PACK_ATTR = "pack"
"""A trial's pack: its index in the grid's pack order."""
TOKEN_PACK = -1
"""The pack of the conclusion token."""
CREATOR_ATTR = "creator"
"""The worker that created the grid (`worker_identity`): a joiner finishes the grid of a dead one."""
READY_TIMEOUT_S = 120.0
"""A joiner finishes a grid that is not ready this long after it found it (its creator on another machine died)."""


def grid_settings(config: ResolvedConfig) -> dict[str, Any]:
    """What defines a grid: the profile, the fixed values and the axes (seeds included)."""
    return {"profile": config.profile, "fixed": config.fixed, "grid": config.grid}


def grid_key(name: str, config: ResolvedConfig) -> str:
    """A short hash of the ablation's name and its grid's settings."""
    text = json.dumps({"ablation": name, **grid_settings(config)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def pack_points(configs: list[dict[str, Any]], pack_key: Callable | None, max_members: int | None = None) -> list[list[int]]:
    """Indices of the grid points each pack trains, packs in a stable order.

    Args:
        configs: Every grid point's configuration, in grid order.
        pack_key: Points with the same key train together; None: one by one.
        max_members: Split packs larger than this (to fit device memory); None: no limit.
    """
    groups: dict[Any, list[int]] = {}
    for index, config in enumerate(configs):
        groups.setdefault(pack_key(config) if pack_key else index, []).append(index)
    packs = [groups[key] for key in sorted(groups, key=repr)]
    if max_members is None:
        return packs
    return [pack[start : start + max_members] for pack in packs for start in range(0, len(pack), max_members)]


@dataclass
class Grid:
    """One process's handle on a grid.

    Args:
        study: The grid's Optuna study.
        parent_run_id: Its MLflow parent run.
        configs: Every grid point's configuration, in grid order.
        resumed: Whether it existed before this process opened it.
    """

    study: optuna.Study
    parent_run_id: str
    configs: list[dict[str, Any]]
    resumed: bool
    token: FrozenTrial | None = None
    """The conclusion token, once this process has claimed it."""

    @property
    def name(self) -> str:
        return self.study.study_name

    def trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def done_points(self) -> set[int]:
        """Grid points with a final result: COMPLETE, or failed for a reason of their own."""
        return {t.user_attrs[POINT_ATTR] for t in self.trials() if _is_point(t) and _final(t)}

    def finished(self) -> bool:
        """Every grid point has a final result."""
        return len(self.done_points()) == len(self.configs)

    def running(self) -> bool:
        """Some grid point is being trained (here or by another worker)."""
        return any(_is_point(t) and t.state == TrialState.RUNNING for t in self.trials())


def open_grid(
    ablation: Ablation,
    config: ResolvedConfig,
    storage: optuna.storages.BaseStorage,
    start_parent: Callable[[], str],
    *,
    fresh: bool = False,
    max_members: int | None = None,
    say: Callable[[str], None] | None = None,
) -> Grid:
    """Resumes the unfinished grid of these settings, or creates one.

    Args:
        ablation: The ablation.
        config: Its resolved configuration; its settings find the grid.
        storage: Optuna storage.
        start_parent: Starts the MLflow parent run of a new grid; returns its id.
        fresh: Create a new grid even when an unfinished one matches.
        max_members: Largest pack a new grid makes (device memory); None: packs as ``pack_key`` says.
        say: Prints one line to the user (stderr by default).
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    key = grid_key(ablation.name, config)
    configs = config.trials()
    unfinished = [
        study
        for study in storage.get_all_studies()
        if study.user_attrs.get(ABLATION_ATTR) == ablation.name
        and study.user_attrs.get(PROFILE_ATTR) == config.profile
        and not study.user_attrs.get(CONCLUDED_ATTR)
    ]
    unfinished.sort(key=lambda study: study.user_attrs.get(CREATED_ATTR, 0.0))
    same = [summary for summary in unfinished if summary.user_attrs.get(KEY_ATTR) == key]
    creation = _Creation(ablation, config, configs, start_parent, max_members, say)
    if same and not fresh:
        study = creation.join(optuna.load_study(study_name=same[-1].study_name, storage=storage))
        grid = Grid(study, study.user_attrs[PARENT_ATTR], configs, resumed=True)
        say(f"{ablation.name}: resuming grid {grid.name}: {len(grid.done_points())} of {len(configs)} grid points done.")
        return grid
    if fresh and same:
        say(f"{ablation.name}: --fresh: starting a new grid; the unfinished {same[-1].study_name} stays in storage.")
    elif unfinished:
        changed = _changes(unfinished[-1].user_attrs.get(SETTINGS_ATTR, {}), grid_settings(config))
        say(f"{ablation.name}: settings differ from the unfinished grid {unfinished[-1].study_name} ({changed}); starting a new grid.")
    # The name follows from the settings, so that machines started at once create one grid: one wins, the others join it.
    base = f"{ablation.name}-{config.profile}-{key}"
    earlier = [study for study in storage.get_all_studies() if study.study_name == base or study.study_name.startswith(base + "-")]
    being_created = [study for study in earlier if CONCLUDED_ATTR not in study.user_attrs]
    if being_created and not fresh:  # another process created it a moment ago and has not set its attributes yet
        study = creation.join(optuna.load_study(study_name=being_created[-1].study_name, storage=storage))
        return Grid(study, study.user_attrs[PARENT_ATTR], configs, resumed=True)
    name = base + (f"-{len(earlier) + 1}" if earlier else "")
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    except optuna.exceptions.DuplicatedStudyError:
        study = creation.join(optuna.load_study(study_name=name, storage=storage))
        return Grid(study, study.user_attrs[PARENT_ATTR], configs, resumed=True)
    study.set_user_attr(CREATOR_ATTR, worker_identity())  # first, so that joiners can tell a slow creator from a dead one
    creation.complete(study)
    return Grid(study, study.user_attrs[PARENT_ATTR], configs, resumed=False)


@dataclass
class _Creation:
    """Creates a grid's content in its study; the creator does it at once, a joiner finishes what a dead creator left."""

    ablation: Ablation
    config: ResolvedConfig
    configs: list[dict[str, Any]]
    start_parent: Callable[[], str]
    max_members: int | None
    say: Callable[[str], None]

    def complete(self, study: optuna.Study) -> None:
        """Sets the attributes the study lacks, enqueues the grid points and the token it lacks, then marks it ready."""
        attrs = study.user_attrs
        if PARENT_ATTR not in attrs:
            study.set_user_attr(PARENT_ATTR, self.start_parent())
        for attr, value in {
            ABLATION_ATTR: self.ablation.name,
            PROFILE_ATTR: self.config.profile,
            KEY_ATTR: grid_key(self.ablation.name, self.config),
            SETTINGS_ATTR: json.loads(json.dumps(grid_settings(self.config), default=str)),
            CONCLUDED_ATTR: False,
            CREATED_ATTR: time.time(),
            MAX_MEMBERS_ATTR: self.max_members,
        }.items():
            if attr not in attrs:
                study.set_user_attr(attr, value)
        _enqueue_missing(study, self.config, self.configs, self.ablation.pack_key)
        study.set_user_attr(READY_ATTR, True)

    def join(self, study: optuna.Study, timeout_s: float = READY_TIMEOUT_S) -> optuna.Study:
        """The study once its creator has made it ready; finishes it instead if the creator died or timed out."""
        deadline = time.monotonic() + timeout_s
        while not study.user_attrs.get(READY_ATTR):
            creator = study.user_attrs.get(CREATOR_ATTR)
            dead = creator is not None and worker_alive(creator) is False
            if dead or time.monotonic() > deadline:
                why = "its creator died" if dead else f"it is not ready {timeout_s:g} s after its creation"
                self.say(f"{self.ablation.name}: grid {study.study_name}: {why}; enqueueing the grid points it lacks.")
                self.complete(study)
            else:
                time.sleep(0.2)  # the creator is enqueueing the grid points
            study = optuna.load_study(study_name=study.study_name, storage=storage_of(study))
        return study


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The settings that differ, as "name before → after"."""
    flat = [
        {name: value for part in ("fixed", "grid") for name, value in settings.get(part, {}).items()}
        for settings in (before, json.loads(json.dumps(after, default=str)))
    ]
    names = sorted(set(flat[0]) | set(flat[1]))
    changes = [f"{name} {flat[0].get(name, '-')} → {flat[1].get(name, '-')}" for name in names if flat[0].get(name) != flat[1].get(name)]
    if before.get("profile") != after.get("profile"):
        changes.insert(0, f"profile {before.get('profile')} → {after.get('profile')}")
    return ", ".join(changes) or "another version of the grid"


def _enqueue(study: optuna.Study, config: ResolvedConfig, point_config: dict[str, Any], point: int, pack: int) -> None:
    params = {axis: point_config[axis] for axis in config.grid}
    study.enqueue_trial(params, user_attrs={POINT_ATTR: point, PACK_ATTR: pack})


def _is_point(trial: FrozenTrial) -> bool:
    return POINT_ATTR in trial.user_attrs


def _final(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE or fate_of(trial) == Fate.OWN


def repair(grid: Grid, config: ResolvedConfig, pack_key: Callable | None) -> list[int]:
    """Fails the trials of dead workers and enqueues every grid point that has no trial left; returns those points.

    Two workers repairing at once may enqueue a point twice; `claim_pack` drops
    the later copy.
    """
    fail_stale_trials(grid.study)
    return _enqueue_missing(grid.study, config, grid.configs, pack_key)


def _enqueue_missing(study: optuna.Study, config: ResolvedConfig, configs: list[dict[str, Any]], pack_key: Callable | None) -> list[int]:
    """Enqueues, in pack order, every grid point that has no live or final trial, and the token if none is left; returns the points."""
    trials = study.get_trials(deepcopy=False)
    covered = {
        t.user_attrs[POINT_ATTR]
        for t in trials
        if _is_point(t) and (t.state in (TrialState.WAITING, TrialState.RUNNING) or _final(t))
    }
    lost = []
    for pack, points in enumerate(pack_points(configs, pack_key, study.user_attrs.get(MAX_MEMBERS_ATTR))):
        for point in points:
            if point not in covered:
                _enqueue(study, config, configs[point], point, pack)
                lost.append(point)
    tokens = [t for t in trials if t.user_attrs.get(PACK_ATTR) == TOKEN_PACK]
    if not any(t.state in (TrialState.WAITING, TrialState.RUNNING) or fate_of(t) == Fate.CONCLUDED for t in tokens):
        study.enqueue_trial({}, user_attrs={PACK_ATTR: TOKEN_PACK})  # a new grid, or its concluder died
    return lost


def claim_pack(grid: Grid, axes: dict[str, list]) -> list[optuna.Trial]:
    """Claims the next pack: its trials, RUNNING and recorded as this worker's; [] when no pack is free.

    Args:
        grid: The grid.
        axes: Its axes (`ResolvedConfig.grid`): each trial's params are set within them.
    """
    storage = storage_of(grid.study)
    while True:
        trials = [t for t in grid.trials() if _is_point(t)]
        running = {t.user_attrs[PACK_ATTR] for t in trials if t.state == TrialState.RUNNING}
        waiting: dict[int, list[FrozenTrial]] = {}
        for t in trials:
            if t.state == TrialState.WAITING and t.user_attrs[PACK_ATTR] not in running:
                waiting.setdefault(t.user_attrs[PACK_ATTR], []).append(t)
        if not waiting:
            return []
        pack = min(waiting)
        members = sorted(waiting[pack], key=trial_id)
        if not _take(storage, members[0]):
            continue  # another worker took it first: look again
        claimed = [members[0]] + [t for t in members[1:] if _take(storage, t)]
        kept = _drop_duplicates(grid, claimed, axes)
        if kept:
            return kept
        # Every trial of the pack was a second copy of a point: look for the next pack.


def _take(storage: optuna.storages.BaseStorage, trial: FrozenTrial) -> bool:
    """Moves a WAITING trial to RUNNING, atomically, and records this worker on it; False when another worker moved it first.

    Not `stopping.interruptible`: a stop signal waits for both writes, so a taken trial always names the worker that must fail it.
    """
    try:
        taken = storage.set_trial_state_values(trial_id(trial), state=TrialState.RUNNING)
    except UpdateFinishedTrialError:
        return False
    if taken:
        storage.set_trial_user_attr(trial_id(trial), WORKER_ATTR, worker_identity())
    return taken


def _drop_duplicates(grid: Grid, claimed: list[FrozenTrial], axes: dict[str, list]) -> list[optuna.Trial]:
    """The claimed trials as `optuna.Trial`s with their grid point's params; a point another trial holds is failed instead.

    Of two trials of one point (two workers repaired it at once), the lower id wins.
    """
    storage = storage_of(grid.study)
    holders: dict[int, int] = {}
    for t in grid.trials():
        if _is_point(t) and (t.state in (TrialState.WAITING, TrialState.RUNNING) or _final(t)):
            point = t.user_attrs[POINT_ATTR]
            holders[point] = min(holders.get(point, trial_id(t)), trial_id(t))
    kept = []
    for t in claimed:
        holder = holders.get(t.user_attrs[POINT_ATTR], trial_id(t))
        if holder != trial_id(t):
            fail_trial(grid.study, t, Fate.DUPLICATE, f"duplicate: grid point held by trial id {holder}")
            continue
        trial = optuna.Trial(grid.study, trial_id(t))
        for axis, values in axes.items():
            trial.suggest_categorical(axis, values)  # the enqueued value: a fixed param
        kept.append(trial)
    return kept


def fail_interrupted(grid: Grid, reason: str) -> None:
    """Fails the trials this worker holds (claimed, training or not yet told), so that a rerun trains their points again.

    Read from the storage rather than from the pack in hand: a stop can land
    while a pack is being claimed, before the worker holds it in a variable.
    """
    me = worker_identity()
    for trial in grid.trials():
        if _is_point(trial) and trial.state == TrialState.RUNNING and trial.user_attrs.get(WORKER_ATTR) == me:
            fail_trial(grid.study, trial, Fate.INTERRUPTED, f"stale: {reason}")  # False: told meanwhile


def claim_conclusion(grid: Grid) -> bool:
    """True for the one worker that writes the verdict: the first to take the token once every point is done.

    The token stays RUNNING (with this worker's identity) until `mark_concluded`:
    if this worker dies on the way, the token goes stale and `repair` puts it back.
    """
    if not grid.finished():
        return False
    token = next((t for t in grid.trials() if t.user_attrs.get(PACK_ATTR) == TOKEN_PACK and t.state == TrialState.WAITING), None)
    if token is None or not _take(storage_of(grid.study), token):
        return False
    grid.token = token
    return True


def mark_concluded(grid: Grid) -> None:
    """Records that the verdict is written: the token is spent, and a rerun starts a new grid."""
    fail_trial(grid.study, grid.token, Fate.CONCLUDED, "conclusion token: this worker wrote the verdict")
    grid.study.set_user_attr(CONCLUDED_ATTR, True)


def final_failures(grid: Grid) -> int:
    """Grid points whose trial failed for a reason of its own (an exception, a NaN objective)."""
    return sum(1 for t in grid.trials() if _is_point(t) and t.state == TrialState.FAIL and _final(t))


def selection_order(trial: FrozenTrial) -> tuple[float, int]:
    """Sort key for selecting on validation: the value, ties broken by grid order (not by trial number, which a resume changes)."""
    value = trial.value if trial.value is not None else math.inf
    return value, trial.user_attrs.get(POINT_ATTR, trial.number)
