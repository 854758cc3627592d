"""Benchmark row: what checkpointing packs costs the quick profile.

Every pack of every quick-profile grid (as the runner packs it on this
device) is trained through its ablation's ``run``, without tracking, once with
checkpoints at the default interval (`DEFAULT_EVERY_S`) and once with none;
the two sides alternate pack by pack, and which goes first alternates too, so
that a drift in this machine's speed falls on both. Before an ablation's packs
are timed, its first pack trains once untimed (its data loads, TensorFlow
warms up).

Printed: each ablation's training seconds with and without, and the profile's
total ratio (target: at most 1.05), with the checkpoints written and their
largest file. The ratio is of training time alone: the runner's MLflow and
Optuna work, which checkpointing does not touch, would add the same seconds to
both sides and bring it closer to 1. A second row trains dropout's quick grid
(the largest weights per pack) with a checkpoint after every epoch, the worst
case, against none.

    python -m benchmarks.bench checkpoints [ABLATION ...]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ablations.engine.device import pack_limit
from ablations.engine.execution.checkpoints import DEFAULT_EVERY_S, PackCheckpoints, checkpointing
from ablations.engine.grid import pack_points
from ablations.engine.registry import all_ablations
from ablations.engine.spec import Ablation, ResolvedConfig, TrialContext


def _discard(*args) -> None:
    """A logger that keeps nothing."""


class _Written:
    """What a side's checkpoints wrote: how many saves, and the largest file."""

    def __init__(self) -> None:
        self.saves = 0
        self.largest = 0

    def add(self, checkpoints: PackCheckpoints | None) -> None:
        if checkpoints is not None:
            self.saves += checkpoints.saves
            self.largest = max([self.largest, *(path.stat().st_size for path in checkpoints.folder.rglob("*.npz"))])


def _train(ablation: Ablation, config: ResolvedConfig, pack: list[dict], every_s: float | None, written: _Written) -> float:
    """Seconds to train ``pack`` as the runner would, with checkpoints every ``every_s`` seconds (None: none)."""
    import keras

    context = TrialContext(loggers=[_discard] * len(pack), profile=config.profile, artifact_loggers=[_discard] * len(pack))
    keras.backend.clear_session(free_memory=True)
    with tempfile.TemporaryDirectory() as folder:
        checkpoints = None if every_s is None else PackCheckpoints(Path(folder), every_s, say=lambda line: None)
        started = time.perf_counter()
        with checkpointing(checkpoints):
            ablation.run(pack, context)
        seconds = time.perf_counter() - started
        written.add(checkpoints)
    return seconds


def _packs(ablation: Ablation) -> tuple[ResolvedConfig, list[list[dict]]]:
    config = ablation.resolve("quick", {})
    configs = config.trials()
    return config, [[configs[i] for i in points] for points in pack_points(configs, ablation.pack_key, pack_limit(configs))]


def _compare(ablation: Ablation, sides: tuple[float | None, float | None]) -> tuple[list[float], list[_Written]]:
    """Total seconds of each side over the ablation's quick packs, alternating, and what each side wrote."""
    config, packs = _packs(ablation)
    _train(ablation, config, packs[0], None, _Written())  # warm-up
    totals, written = [0.0, 0.0], [_Written(), _Written()]
    for index, pack in enumerate(packs):
        order = (0, 1) if index % 2 == 0 else (1, 0)
        for side in order:
            totals[side] += _train(ablation, config, pack, sides[side], written[side])
    return totals, written


def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB"


def checkpoint_rows(names: tuple[str, ...] | None = None) -> None:
    """Prints the quick profile's training time with checkpoints at the default interval and without, then the worst case."""
    ablations = all_ablations()
    chosen = names or tuple(ablations)
    print(f"quick profile, every pack trained with checkpoints every {DEFAULT_EVERY_S:g} s and with none (training time, no tracking):")
    totals = [0.0, 0.0]
    for name in chosen:
        (with_, without), (written, _) = _compare(ablations[name], (DEFAULT_EVERY_S, None))
        totals[0] += with_
        totals[1] += without
        print(f"  {name:<24} {with_:8.1f} s with, {without:8.1f} s without  ({written.saves} checkpoints written, "
              f"largest {_kib(written.largest)})")
    print(f"  {'all':<24} {totals[0]:8.1f} s with, {totals[1]:8.1f} s without")
    print(f"  ratio with / without: {totals[0] / totals[1]:.3f}  (target <= 1.05)")
    if names is None or "dropout" in names:
        (every, without), (written, _) = _compare(ablations["dropout"], (0.0, None))
        print("dropout's quick grid, a checkpoint after every epoch (the worst case) against none:")
        print(f"  {every:8.1f} s with, {without:8.1f} s without  ({written.saves} checkpoints written, largest {_kib(written.largest)})")
        print(f"  ratio with / without: {every / without:.3f}")
