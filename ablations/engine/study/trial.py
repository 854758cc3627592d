"""One trial of ``ablate study``: data, model, training, and the values it scores.

A trial's configuration (a dict from `SearchSpace.suggest`) is resolved to Keras
objects here, at the edge: an MLP from `models.build_mlp` with the augmentation
that suits the data (image, 1-D signal or tabular), Adam at the trial's learning
rate, and these callbacks in this order: `ErrorMetrics` (adds ``error``,
``val_error`` and ``gap`` to the logs), `keras.callbacks.TerminateOnNaN`, then
the caller's (pruning, MLflow logging), which see the added metrics.

With ``cv=K`` the validation split is folded back into the training split and
the K folds train in lockstep, one epoch at a time, so that every epoch reports
the mean over folds (to the pruner and to MLflow). The test split is never read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ablations.engine.data import Dataset
from ablations.engine.protocol import kfold_indices
from ablations.engine.study.data import OBJECTIVES
from callbacks.mlflow_logger import is_number
from models import SignalAugmentation, build_mlp, image_augmentation

_AUGMENTATION_STRENGTH = {"light": 0.5, "strong": 1.0}


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite (`TerminateOnNaN` stopped the fit)."""


@dataclass(frozen=True)
class TrialScore:
    """What a finished trial measured: final metrics (means over folds with CV) and epochs run."""

    metrics: dict[str, float]
    epochs: int


class ErrorMetrics(keras.callbacks.Callback):
    """Adds ``error`` = 1 - accuracy, ``val_error`` and ``gap`` = val_error - error to the epoch logs.

    ``error`` is Keras' running training accuracy over the epoch (with dropout
    and augmentation active), so ``gap`` is the lecture's train/validation gap
    as training sees it. Place it before callbacks that read these metrics.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "accuracy" not in logs:
            return
        logs["error"] = 1.0 - float(logs["accuracy"])
        if "val_accuracy" in logs:
            logs["val_error"] = 1.0 - float(logs["val_accuracy"])
            logs["gap"] = logs["val_error"] - logs["error"]


class FoldMean(keras.callbacks.Callback):
    """Collects one fold's epoch logs; on the last fold, replaces the logs with the mean over folds.

    Args:
        store: Shared between the folds of one trial: fold index -> its logs.
        fold: This fold's index.
        folds: How many folds there are.
    """

    def __init__(self, store: dict[int, dict[str, float]], fold: int, folds: int):
        super().__init__()
        self.store, self.fold, self.folds = store, fold, folds

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        self.store[self.fold] = {k: float(v) for k, v in logs.items() if is_number(v)}
        if self.fold == self.folds - 1 and len(self.store) == self.folds:
            for key in self.store[self.fold]:
                values = [self.store[f].get(key, math.nan) for f in range(self.folds)]
                logs[key] = float(np.mean(values))
                logs[f"fold_std/{key}"] = float(np.std(values))


def augmentation_layer(strength: str, input_shape: tuple[int, ...], seed: int | None) -> keras.layers.Layer | None:
    """The augmentation for ``strength`` ("none", "light", "strong") that suits the input's layout."""
    if strength == "none":
        return None
    scale = _AUGMENTATION_STRENGTH[strength]
    if len(input_shape) == 3:  # images
        return image_augmentation(translation=0.1 * scale, rotation=0.05 * scale, zoom=0.1 * scale, seed=seed)
    if len(input_shape) == 2:  # 1-D signals
        return SignalAugmentation(max_shift=round(3 * scale), noise_std=0.05 * scale, seed=seed)
    # Standardized tabular features: additive noise is the augmentation they allow.
    return keras.layers.GaussianNoise(0.15 * scale, seed=seed, name="gaussian_noise")


def build_trial_model(config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, seed: int) -> keras.Model:
    """The compiled MLP of one trial configuration."""
    model = build_mlp(
        input_shape,
        num_classes,
        depth=config["depth"],
        width=config["width"],
        activation=config["activation"],
        kernel_initializer=config["initializer"],
        l1=config["l1"],
        l2=config["l2"],
        keep_prob=config["keep_prob"],
        augmentation=augmentation_layer(config["augmentation"], input_shape, seed),
        seed=seed,
    )
    model.compile(
        keras.optimizers.Adam(config["learning_rate"]),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_trial(
    config: dict[str, Any],
    data: Dataset,
    *,
    seed: int,
    cv: int = 0,
    callbacks: list[keras.callbacks.Callback] = (),
) -> TrialScore:
    """Trains one configuration and returns its final metrics.

    Args:
        config: A configuration from `SearchSpace.suggest`.
        data: The study's data set; its test split is not read.
        seed: Seed of the model's initializers, dropout and augmentation.
        cv: Number of folds; 0 trains on the training split and scores the validation split.
        callbacks: Called after `ErrorMetrics` and `TerminateOnNaN` every epoch (on the
            last fold, with the mean over folds, under CV).

    Raises:
        TrialDiverged: the loss became NaN or infinite.
        optuna.TrialPruned: raised by a pruning callback.
    """
    # Keras' shuffling of each epoch's batches draws from the global seed: without it, the same trial
    # trains on other batch orders in every process, and a study's values do not repeat.
    keras.utils.set_random_seed(seed)
    if cv >= 2:
        x = np.concatenate([data.x_train, data.x_val])
        y = np.concatenate([data.y_train, data.y_val])
        folds = [(x[train], y[train], x[val], y[val]) for train, val in kfold_indices(len(y), cv, seed=0)]
    else:
        folds = [(data.x_train, data.y_train, data.x_val, data.y_val)]
    models = [build_trial_model(config, data.input_shape, data.num_classes, seed + 7919 * i) for i in range(len(folds))]
    store: dict[int, dict[str, float]] = {}
    logs: dict[str, float] = {}
    if len(folds) == 1:
        history = models[0].fit(
            folds[0][0],
            folds[0][1],
            validation_data=folds[0][2:],
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            callbacks=[ErrorMetrics(), keras.callbacks.TerminateOnNaN(), *callbacks],
            verbose=0,
        )
        logs = {key: values[-1] for key, values in history.history.items()}
        epochs = len(history.history.get("loss", []))
    else:
        for epoch in range(config["epochs"]):
            for i, (model, (x_fit, y_fit, x_val, y_val)) in enumerate(zip(models, folds)):
                last = i == len(folds) - 1
                history = model.fit(
                    x_fit,
                    y_fit,
                    validation_data=(x_val, y_val),
                    initial_epoch=epoch,
                    epochs=epoch + 1,
                    batch_size=config["batch_size"],
                    callbacks=[ErrorMetrics(), keras.callbacks.TerminateOnNaN(), FoldMean(store, i, len(folds)), *(callbacks if last else ())],
                    verbose=0,
                )
                _raise_if_diverged(history.history, epoch)
            logs = {key: values[-1] for key, values in history.history.items()}
        epochs = config["epochs"]
    _raise_if_diverged({key: [value] for key, value in logs.items()}, epochs - 1)
    wanted = ("loss", "val_loss", "error", "val_error", "gap")
    metrics = {f"final_{key}": float(logs[key]) for key in wanted if key in logs}
    return TrialScore(metrics=metrics, epochs=epochs)


def _raise_if_diverged(history: dict[str, list], epoch: int) -> None:
    losses = history.get("loss", [])
    if losses and not math.isfinite(float(losses[-1])):
        raise TrialDiverged(f"TerminateOnNaN: the training loss became {float(losses[-1])} in epoch {epoch + 1}")


def objective_values(metrics: dict[str, float], objective: str) -> list[float]:
    """The values an Optuna trial is told, in the order of ``OBJECTIVES[objective]``."""
    return [metrics[f"final_{name}"] for name in OBJECTIVES[objective]]

