"""Keras callback that reports a validation metric to an Optuna trial and prunes it."""

from __future__ import annotations

import math

import optuna
from optuna_integration import KerasPruningCallback


class OptunaPruning(KerasPruningCallback):
    """Reports ``logs[monitor]`` to an Optuna trial every epoch; raises `optuna.TrialPruned` when told to.

    optuna-integration's `KerasPruningCallback` works with Keras 3, but when the
    monitored metric is missing it only warns, nothing is reported, and the trial
    runs to the end unpruned; a typo (``val_acc`` for Keras 3's ``val_accuracy``)
    then silently turns pruning off. This callback raises instead, naming the
    metrics that are in the logs. Values that are not finite are not reported:
    a diverged trial is a failure for `keras.callbacks.TerminateOnNaN`, not a
    bad score for the pruner.

    Step ``k`` is epoch index ``k`` (0-based), as in `KerasPruningCallback`.

    Args:
        trial: The running `optuna.Trial` (a `FixedTrial` reports nothing and never prunes).
        monitor: The metric to report, e.g. "val_loss" or "val_error". Defaults to "val_loss".
        interval: Report every ``interval`` epochs. Defaults to 1.

    Attributes:
        epochs_seen: Epochs completed in the current `fit` (the pruned epoch included).
        pruned_epoch: The 0-based epoch at which the trial was pruned, or None.

    Example:

    >>> pruning = OptunaPruning(trial, monitor="val_loss")
    >>> model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=[pruning])
    """

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str = "val_loss", interval: int = 1):
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"`monitor` must be a metric name. Received: monitor={monitor!r}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"`interval` must be an integer >= 1. Received: interval={interval!r}")
        super().__init__(trial, monitor, interval)
        self.monitor = monitor
        self.epochs_seen = 0
        self.pruned_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self.epochs_seen = 0
        self.pruned_epoch = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs_seen = epoch + 1
        logs = logs or {}
        if self.monitor not in logs:
            available = ", ".join(sorted(logs)) or "(none)"
            raise ValueError(
                f"OptunaPruning monitors {self.monitor!r}, which is not in the epoch logs. "
                f"Valid choices: {available}."
            )
        if not math.isfinite(float(logs[self.monitor])):
            return
        try:
            super().on_epoch_end(epoch, logs)
        except optuna.TrialPruned:
            self.pruned_epoch = epoch
            raise
