"""The two private attributes of Optuna the study needs, in one place.

A worker must fail a trial that another (dead) process left RUNNING, and send
the heartbeat of a trial it runs with `Study.ask` instead of `Study.optimize`.
Optuna offers no public way to do either: both go through the study's storage
(`Study._storage`) and the trial's storage id (`Trial._trial_id`,
`FrozenTrial._trial_id`). Keeping them here means an Optuna upgrade that
renames them breaks one module, which its tests cover.
"""

from __future__ import annotations

from typing import Any

import optuna


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes."""
    return study._storage


def trial_id(trial: Any) -> int:
    """The storage id of a `Trial` or `FrozenTrial` (not its number, which counts within the study)."""
    return trial._trial_id
