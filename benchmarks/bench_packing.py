"""Benchmark rows: packed grids against one Keras model per trial, in one process.

For early_stopping's, input_normalization's and dropout's quick grids at 10
seeds, and one pack of augmentation's (mnist5k, 300 examples: its three
strengths at 10 seeds), each side trains every trial without tracking:

- **packed**: the ablation's own packs (its ``pack_key``), each through its
  ``_train`` (`fit_members`: seeds and arms as members of one stack); for
  augmentation, once with grouped convolutions and once with patches and a
  batched matmul (`models.StackedCNN`);
- **one model per trial**: what the ablation ran before packing, a
  `models.build_mlp` net per trial through `fit_trial` with Keras's
  ``EarlyStopping``, ``Normalization`` layer or ``InvertedDropout`` layers and
  validation-error callback, the Keras session cleared once per group of trials
  that the old ``pack_key`` packed.

Each row prints both times and their ratio, the useful arithmetic each side
did per second (the FLOPs of the epochs each trial ran and the splits it
scored, the same count for both sides) as a fraction of this machine's float32
matmul peak measured in this process, and the cores each side kept busy (CPU
seconds over wall seconds).

    python -m benchmarks.bench packing [early_stopping] [input_normalization] [dropout] [augmentation]
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

import keras
import tensorflow as tf

from ablations import augmentation, dropout, early_stopping, input_normalization
from ablations.engine.spec import pack_all_but
from ablations.engine.train import TrialTraining, fit_trial
from models.cnn import build_cnn
from models.mlp import build_mlp

SEEDS = 10
PEAK_SIZE = 2048


def matmul_peak_gflops(size: int = PEAK_SIZE, repeats: int = 10) -> float:
    """This machine's float32 matmul rate: the best of ``repeats`` products of two ``size``² matrices."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product()
    best = min(_seconds(product) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def mlp_parameters(features: int, classes: int, depth: int, width: int) -> int:
    """Weights and biases of `build_mlp`'s net."""
    return features * width + width + (depth - 1) * (width * width + width) + width * classes + classes


def trial_flops(parameters: int, epochs_run: int, train: int, scored: int) -> float:
    """A trial's useful FLOPs: 6 per parameter and training example an epoch, 2 per parameter and scored example a scoring.

    Scoring happens at initialization, after every epoch and once at the end, as `fit_trial` and `fit_members` do.
    """
    return 6.0 * parameters * train * epochs_run + 2.0 * parameters * scored * (epochs_run + 2)


def _timed(run: Callable[[], list]) -> tuple[float, float, list]:
    """Wall seconds, CPU seconds of this process, and what ``run`` returns."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result


def _groups(configs: list[dict], key) -> list[list[dict]]:
    ordered = sorted(configs, key=lambda c: repr(key(c)))
    return [list(group) for _, group in groupby(ordered, key=lambda c: repr(key(c)))]


def packed(configs: list[dict], pack_key, train: Callable) -> Callable[[], list]:
    """Every pack of the grid through the ablation's own ``_train``; returns (configuration, its TrialFit) pairs."""

    def run() -> list:
        fitted = []
        for pack in _groups(configs, pack_key):
            fitted += zip(pack, train(pack))
            keras.backend.clear_session()
        return fitted

    return run


def one_per_trial(configs: list[dict], old_pack_key, train_one: Callable) -> Callable[[], list]:
    """Every trial as its own Keras model through ``train_one``, the session cleared per old pack; (configuration, TrialFit) pairs."""

    def run() -> list:
        fitted = []
        for group in _groups(configs, old_pack_key):
            fitted += [(config, train_one(config)) for config in group]
            keras.backend.clear_session()
        return fitted

    return run


def _early_stopping_alone(config: dict):
    """An early_stopping trial as it trained before packing: build_mlp, EarlyStopping, fit_trial."""
    data, (x_fit, y_fit), (x_stop, y_stop) = early_stopping._data(config)
    keras.utils.set_random_seed(config["seed"])
    model = build_mlp(data.input_shape, data.num_classes, depth=config["depth"], width=config["width"], activation="relu",
                      kernel_initializer="he_normal", seed=config["seed"])
    callbacks = []
    rule = early_stopping.stopping_rule(config)
    if rule is not None:
        mode = "max" if rule.maximize else "min"
        callbacks = [keras.callbacks.EarlyStopping(monitor=rule.monitor, mode=mode, patience=rule.patience, restore_best_weights=True)]
    return fit_trial(
        model,
        (x_fit, y_fit),
        (x_stop, y_stop),
        training=TrialTraining(epochs=config["epochs"], batch_size=config["batch_size"], seed=config["seed"], learning_rate=config["learning_rate"]),
        callbacks=callbacks,
        extra_eval={"heldout": (data.x_val, data.y_val)},
    )


def _early_stopping_flops(config: dict, fit) -> float:
    n = config["n_train"]
    fit_size = n - max(1, round(config["stop_fraction"] * n))
    data = early_stopping._data(config)[0]
    parameters = mlp_parameters(data.input_shape[0], data.num_classes, config["depth"], config["width"])
    return trial_flops(parameters, fit.epochs_run, fit_size, n + len(data.x_val))


def _input_normalization_alone(config: dict):
    """An input_normalization trial as it trained before packing: Normalization layer + build_mlp through fit_trial."""
    data, x_train, x_val, _ = input_normalization.badly_scaled(config)
    keras.utils.set_random_seed(config["seed"])
    mlp = build_mlp(data.input_shape, data.num_classes, depth=config["depth"], width=config["width"], activation="relu",
                    kernel_initializer="he_normal", seed=config["seed"])
    inputs = keras.Input(data.input_shape)
    features = inputs
    if config["normalize"]:
        normalization = keras.layers.Normalization()
        normalization.adapt(x_train)
        features = normalization(features)
    model = keras.Model(inputs, mlp(features))
    return fit_trial(
        model,
        (x_train, data.y_train),
        (x_val, data.y_val),
        training=TrialTraining(
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            optimizer=config["optimizer"],
            learning_rate=config["learning_rate"],
        ),
    )


def _input_normalization_flops(config: dict, fit) -> float:
    data = input_normalization.badly_scaled(config)[0]
    parameters = mlp_parameters(data.input_shape[0], data.num_classes, config["depth"], config["width"])
    return trial_flops(parameters, fit.epochs_run, len(data.y_train), len(data.y_train) + len(data.y_val))


class _ValidationErrors(keras.callbacks.Callback):
    """What dropout scored before packing: the validation error, in inference mode, after every epoch."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = tf.constant(x), tf.constant(y)

    def on_train_begin(self, logs=None):
        self._score = tf.function(lambda: tf.reduce_mean(tf.cast(tf.argmax(self.model(self.x, training=False), -1) != self.y, tf.float32)))
        self.errors = [float(self._score())]

    def on_epoch_end(self, epoch, logs=None):
        self.errors.append(float(self._score()))


def _dropout_alone(config: dict):
    """A dropout trial as it trained before packing: build_mlp with InvertedDropout, fit_trial scoring train every few epochs."""
    data = dropout._dataset(config)
    keras.utils.set_random_seed(config["seed"])
    model = build_mlp(data.input_shape, data.num_classes, depth=config["depth"], width=config["width"], activation="relu",
                      kernel_initializer="he_normal", keep_prob=config["keep_prob"], input_keep_prob=config["input_keep_prob"],
                      seed=config["seed"])
    return fit_trial(
        model,
        (data.x_train, data.y_train),
        (data.x_val, data.y_val),
        training=TrialTraining(
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            learning_rate=config["learning_rate"],
            score_every=dropout.SCORE_EVERY,
        ),
        callbacks=[_ValidationErrors(data.x_val, data.y_val)],
    )


def _dropout_flops(config: dict, fit) -> float:
    """Training, the validation split every epoch, the training split every `dropout.SCORE_EVERY` epochs."""
    data = dropout._dataset(config)
    parameters = mlp_parameters(data.input_shape[0], data.num_classes, config["depth"], config["width"])
    epochs, n = fit.epochs_run, len(data.y_train)
    scored = len(data.y_val) * (epochs + 2) + n * (epochs // dropout.SCORE_EVERY + 2)
    return 6.0 * parameters * n * epochs + 2.0 * parameters * scored


def _augmentation_alone(config: dict):
    """An augmentation trial as it trained before packing: build_cnn with its augmentation layer through fit_trial."""
    data = augmentation._dataset(config)
    keras.utils.set_random_seed(config["seed"])
    model = build_cnn(data.input_shape, data.num_classes, conv_blocks=config["conv_blocks"], filters=config["filters"],
                      dense_width=config["dense_width"], augmentation=augmentation.augmentation_layer(config, data.input_shape),
                      seed=config["seed"])
    epochs = augmentation.epochs_for(config)
    return fit_trial(
        model,
        (data.x_train, data.y_train),
        (data.x_val, data.y_val),
        training=TrialTraining(
            epochs=epochs,
            batch_size=config["batch_size"],
            seed=config["seed"],
            learning_rate=config["learning_rate"],
            score_every=augmentation.score_every(config),
        ),
    )


def cnn_forward_flops(input_shape: tuple[int, ...], config: dict, classes: int) -> float:
    """FLOPs of one example's forward pass through `models.build_cnn`'s convolutions and dense head."""
    spatial, channels = list(input_shape[:-1]), input_shape[-1]
    flops = 0.0
    for block in range(config["conv_blocks"]):
        filters = config["filters"] * 2**block
        flops += 2.0 * math.prod(spatial) * 3 ** len(spatial) * channels * filters
        spatial, channels = [-(-size // 2) for size in spatial], filters
    features = math.prod(spatial) * channels
    return flops + 2.0 * (features * config["dense_width"] + config["dense_width"] * classes)


def _augmentation_flops(config: dict, fit) -> float:
    """Training (3 forward passes' worth an example) and the scorings of both splits (`fit_trial`'s score_every)."""
    data = augmentation._dataset(config)
    forward = cnn_forward_flops(data.input_shape, config, data.num_classes)
    epochs, n = fit.epochs_run, len(data.y_train)
    scorings = epochs // augmentation.score_every(config) + 2
    return 3.0 * forward * n * epochs + forward * (n + len(data.y_val)) * scorings


AUGMENTATION_PACK = {"data": "mnist5k", "n_train": 300}
"""The augmentation pack of the bench row: real 28x28 digits, the quick grid's larger size."""


@dataclass(frozen=True)
class Row:
    """One bench row: an ablation's trials trained packed (one or more ways) and one model per trial.

    Args:
        ablation: Whose quick grid (at `SEEDS` seeds) is trained.
        packed: Per label, how a pack of configurations trains: its TrialFits.
        alone: How one configuration trained before packing: its TrialFit.
        old_key: The ``pack_key`` before packing (the Keras session is cleared per such group).
        flops: A trial's useful FLOPs from its configuration and TrialFit.
        target: The speed-up asked for.
        select: Which of the grid's trials the row trains (default: all).
    """

    ablation: object
    packed: dict[str, Callable]
    alone: Callable
    old_key: Callable
    flops: Callable
    target: float
    select: Callable[[dict], bool] = lambda config: True


ROWS = {
    "early_stopping": Row(
        early_stopping.ABLATION,
        {"packed (fit_members)": lambda pack: early_stopping._train(pack)[2].trials},
        _early_stopping_alone,
        pack_all_but("stopping"),
        _early_stopping_flops,
        3.0,
        # Keras's EarlyStopping has no look interval: the lecture's rule has no one-model baseline, so the row times
        # the grid's Keras rules (the 80 trials it timed before that rule was added).
        select=lambda config: config["stopping"] != early_stopping.LECTURE_RULE,
    ),
    "input_normalization": Row(
        input_normalization.ABLATION,
        {"packed (fit_members)": lambda pack: input_normalization._train(pack)[1].trials},
        _input_normalization_alone,
        pack_all_but("learning_rate", "normalize"),
        _input_normalization_flops,
        3.0,
    ),
    "dropout": Row(
        dropout.ABLATION,
        {"packed (fit_members)": lambda pack: dropout._train(pack)[2].trials},
        _dropout_alone,
        pack_all_but(*dropout.ARMS),
        _dropout_flops,
        1.5,
    ),
    "augmentation": Row(
        augmentation.ABLATION,
        {
            f"packed, {convolution} convolutions": lambda pack, convolution=convolution: augmentation._train(pack, convolution=convolution)[2].trials
            for convolution in ("grouped", "patches")
        },
        _augmentation_alone,
        pack_all_but("strength", "n_train"),
        _augmentation_flops,
        1.5,
        select=lambda config: all(config[key] == value for key, value in AUGMENTATION_PACK.items()),
    ),
}


def packing_rows(names: tuple[str, ...] | None = None) -> None:
    """Prints the matmul peak, then each row of ``names`` (default: every row)."""
    names = names or tuple(ROWS)
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak of this machine ({PEAK_SIZE}x{PEAK_SIZE} products, best of 10): {peak:.0f} GFLOP/s")
    for name in names:
        row = ROWS[name]
        configs = [config for config in row.ablation.resolve("quick", seeds=SEEDS).trials() if row.select(config)]
        # Neither side reuses the other's traced functions: each builds its own.
        sides = {label: _timed(packed(configs, row.ablation.pack_key, train)) for label, train in row.packed.items()}
        alone_label = "one model per trial (fit_trial)"
        sides[alone_label] = _timed(one_per_trial(configs, row.old_key, row.alone))
        print(f"{name}'s quick grid at {SEEDS} seeds ({len(configs)} trials):")
        for label, (wall, cpu, fitted) in sides.items():
            useful = sum(row.flops(config, fit) for config, fit in fitted)
            rate = useful / wall / 1e9
            print(
                f"  {label:<44} {wall:8.1f} s  {useful / 1e12:5.2f} TFLOP useful, {rate:6.1f} GFLOP/s = {rate / peak:5.1%} of peak  "
                f"({cpu / wall:.2f} cores busy)"
            )
        for label in row.packed:
            speedup = sides[alone_label][0] / sides[label][0]
            print(f"  speed-up {label} / one per trial: {speedup:.2f}x  (target >= {row.target:g}x)")
