"""Keras callback that logs every epoch's metrics to an MLflow run in one call."""

from __future__ import annotations

import time

import keras
from mlflow import MlflowClient
from mlflow.entities import Metric


def metrics_batch(values: dict[str, float], step: int) -> list[Metric]:
    """MLflow metrics for one step; NaN and infinite values are kept (MLflow stores them)."""
    now = int(time.time() * 1000)
    return [Metric(key=key, value=float(value), timestamp=now, step=step) for key, value in values.items()]


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs ``logs`` at the end of every epoch as MLflow metrics, in one batched call.

    Step ``k`` is the state after ``k`` epochs; step 0 holds the values measured
    at initialization by the callbacks given in ``initial_from`` (any object with
    an ``initial_logs`` dict, such as `callbacks.ProbeStatistics`). Place this
    callback after the callbacks that add to ``logs``.

    Args:
        client: The MLflow client to log with.
        run_id: The run that receives the metrics.
        initial_from: Callbacks whose ``initial_logs`` are logged at step 0.
        synchronous: Wait for every write; False queues them on MLflow's
            asynchronous logger so training never waits on the store.

    Example:

    >>> probe = ProbeStatistics(x[:256], y[:256])
    >>> logger = MlflowEpochLogger(client, run.info.run_id, initial_from=[probe])
    >>> model.fit(x, y, epochs=5, callbacks=[probe, logger])
    """

    def __init__(self, client: MlflowClient, run_id: str, *, initial_from=(), synchronous: bool = False):
        super().__init__()
        self.client = client
        self.run_id = run_id
        self.initial_from = list(initial_from)
        self.synchronous = synchronous

    def on_train_begin(self, logs=None):
        initial = {}
        for source in self.initial_from:
            initial.update(source.initial_logs)
        if initial:
            self._log(initial, step=0)

    def on_epoch_end(self, epoch, logs=None):
        if logs:
            self._log({key: value for key, value in logs.items() if is_number(value)}, step=epoch + 1)

    def _log(self, values: dict[str, float], step: int) -> None:
        self.client.log_batch(self.run_id, metrics=metrics_batch(values, step), synchronous=self.synchronous)


def is_number(value) -> bool:
    """Whether ``value`` converts to a float: a Keras log entry that can be logged as a metric."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
