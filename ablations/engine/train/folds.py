"""k-fold cross-validation of many nets as one stack: each (net, fold) a member, trained once.

`fit_folds` builds each distinct net once, stacks one member per (net, fold)
that some trial needs (`shared_fits`) and trains them together with
`fit_stack`, each member on its fold's training examples (`fold_masks`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ablations.engine.train.stacked import StackRecording, StackTraining, fit_stack
from models.stacked import stack_models


def fold_masks(folds: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The folds as 0/1 float32 masks ``(k, n)``: row i marks fold i's training examples, and its held-out ones.

    Args:
        folds: ``(train indices, validation indices)`` per fold, as `kfold_indices` gives them.
        n: Number of examples the indices index.
    """
    train, val = np.zeros((len(folds), n), np.float32), np.zeros((len(folds), n), np.float32)
    for i, (train_index, val_index) in enumerate(folds):
        train[i, train_index] = 1.0
        val[i, val_index] = 1.0
    return train, val


def shared_fits(keys: Sequence[Sequence[Hashable]]) -> tuple[list[Hashable], list[list[int]]]:
    """The distinct fits a set of trials needs: trials that need the same fit on the same fold share it.

    Args:
        keys: Per trial, one key per fold naming the fit, e.g. ``(penalty, fold)``
            (λ = 0 under L1 and under L2 is one fit).

    Returns:
        The distinct keys, in first-seen order, and per trial the positions of its keys among them.
    """
    index: dict[Hashable, int] = {}
    of_trial = []
    for trial_keys in keys:
        of_trial.append([index.setdefault(key, len(index)) for key in trial_keys])
    return list(index), of_trial


@dataclass
class StackedFolds:
    """Nets trained as one stack, each member on one fold's training examples: what `fit_folds` returns.

    Attributes:
        stack: The trained `models.stacked.StackedMLP`.
        models: Each member's `keras.Model` as built (``stack.member_weights(m)`` holds its trained weights).
        of_trial: Per trial, its members, one per fold.
        train_masks: ``(members, n)`` 0/1 float32: each member's training examples.
        val_masks: ``(members, n)`` 0/1 float32: its held-out examples.
    """

    stack: Any
    models: list[keras.Model]
    of_trial: list[list[int]]
    train_masks: np.ndarray
    val_masks: np.ndarray


def fit_folds(
    nets: Sequence[Sequence[Hashable]],
    build: Callable[[int, int], keras.Model],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    data: tuple[np.ndarray, np.ndarray],
    activation: str,
    training: StackTraining,
    record: Callable[[StackedFolds, int], None] | None = None,
    record_every: int = 1,
) -> StackedFolds:
    """k-fold cross-validation of many nets as one stack (`models.stack_models`, `fit_stack`): each (net, fold) trained once.

    Trials that train the same net on the same fold share its member (`shared_fits`), and every fold's
    member of a net starts from the same weights: ``build`` runs once per net.

    Args:
        nets: Per trial, one hashable key per fold naming the net it trains there (its penalty, say).
        build: ``build(trial, fold)``: the `keras.Model` of a net, called at its first trial and fold.
        folds: ``(train indices, validation indices)`` per fold (`kfold_indices`); one fold of every example, none
            held out, trains each net on all of them.
        data: ``(x, y)``, the examples the folds index: ``(n, features)`` inputs and ``(n,)`` labels.
        activation: Every member's hidden activation.
        training: How `fit_stack` trains.
        record: ``record(fits, step)`` at step 0, every ``record_every`` steps and after the last (`StackRecording`); None: nothing.
        record_every: Steps between two records.

    Returns:
        The trained stack and its members.
    """
    keys = [[(net, fold) for fold, net in enumerate(trial_nets)] for trial_nets in nets]
    built: dict[Hashable, keras.Model] = {}
    for trial, trial_keys in enumerate(keys):
        for net, fold in trial_keys:
            if net not in built:
                built[net] = build(trial, fold)
    distinct, of_trial = shared_fits(keys)
    models, member_folds = [built[net] for net, _ in distinct], [fold for _, fold in distinct]
    train_masks, val_masks = (masks[member_folds] for masks in fold_masks(folds, len(data[1])))
    fits = StackedFolds(stack_models(models, activation), models, of_trial, train_masks, val_masks)
    recording = StackRecording() if record is None else StackRecording(record_every=record_every, record=lambda step: record(fits, step))
    fit_stack(fits.stack, *data, train_masks, training=training, recording=recording)
    return fits
