"""Benchmark rows: packed grids against one Keras model per trial, in one process.

For early_stopping's and input_normalization's quick grids at 10 seeds, each
side trains every trial of the grid without tracking:

- **packed**: the ablation's own packs (its ``pack_key``), each through its
  ``_train`` (`fit_members`: seeds and arms as members of one stack);
- **one model per trial**: what the ablation ran before packing, a
  `models.build_mlp` net per trial through `fit_trial` with Keras's
  ``EarlyStopping`` or ``Normalization`` layer, the Keras session cleared once
  per group of trials that the old ``pack_key`` packed.

Each row prints both times and their ratio, the useful arithmetic each side
did per second (the FLOPs of the epochs each trial ran and the splits it
scored, the same count for both sides) as a fraction of this machine's float32
matmul peak measured in this process, and the cores each side kept busy (CPU
seconds over wall seconds).

    python -m benchmarks.bench packing [early_stopping] [input_normalization]
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from itertools import groupby

import keras
import tensorflow as tf

from ablations import early_stopping, input_normalization
from ablations.engine.spec import pack_all_but
from ablations.engine.train import fit_trial
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
    if config["patience"]:
        mode = "min" if config["monitor"].endswith("loss") else "max"
        callbacks = [keras.callbacks.EarlyStopping(monitor=config["monitor"], mode=mode, patience=config["patience"], restore_best_weights=True)]
    return fit_trial(model, x_fit, y_fit, x_stop, y_stop, epochs=config["epochs"], batch_size=config["batch_size"],
                     seed=config["seed"], learning_rate=config["learning_rate"], callbacks=callbacks,
                     extra_eval={"heldout": (data.x_val, data.y_val)})


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
    return fit_trial(model, x_train, data.y_train, x_val, data.y_val, epochs=config["epochs"], batch_size=config["batch_size"],
                     seed=config["seed"], optimizer=config["optimizer"], learning_rate=config["learning_rate"])


def _input_normalization_flops(config: dict, fit) -> float:
    data = input_normalization.badly_scaled(config)[0]
    parameters = mlp_parameters(data.input_shape[0], data.num_classes, config["depth"], config["width"])
    return trial_flops(parameters, fit.epochs_run, len(data.y_train), len(data.y_train) + len(data.y_val))


ROWS = {
    "early_stopping": (
        early_stopping.ABLATION,
        lambda pack: early_stopping._train(pack)[2].trials,
        _early_stopping_alone,
        pack_all_but("patience"),
        _early_stopping_flops,
        3.0,
    ),
    "input_normalization": (
        input_normalization.ABLATION,
        lambda pack: input_normalization._train(pack)[1].trials,
        _input_normalization_alone,
        pack_all_but("learning_rate", "normalize"),
        _input_normalization_flops,
        3.0,
    ),
}


def packing_rows(names: tuple[str, ...] | None = None) -> None:
    """Prints the matmul peak, then each row of ``names`` (default: every row)."""
    names = names or tuple(ROWS)
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak of this machine ({PEAK_SIZE}x{PEAK_SIZE} products, best of 10): {peak:.0f} GFLOP/s")
    for name in names:
        ablation, train, alone, old_key, flops, target = ROWS[name]
        configs = ablation.resolve("quick", seeds=SEEDS).trials()
        # Neither side reuses the other's traced functions: each builds its own.
        sides = {
            "packed (fit_members)": _timed(packed(configs, ablation.pack_key, train)),
            "one model per trial (fit_trial)": _timed(one_per_trial(configs, old_key, alone)),
        }
        print(f"{name}'s quick grid at {SEEDS} seeds ({len(configs)} trials):")
        for label, (wall, cpu, fitted) in sides.items():
            useful = sum(flops(config, fit) for config, fit in fitted)
            rate = useful / wall / 1e9
            print(
                f"  {label:<44} {wall:8.1f} s  {useful / 1e12:5.2f} TFLOP useful, {rate:6.1f} GFLOP/s = {rate / peak:5.1%} of peak  "
                f"({cpu / wall:.2f} cores busy)"
            )
        speedup = sides["one model per trial (fit_trial)"][0] / sides["packed (fit_members)"][0]
        print(f"  speed-up packed / one per trial: {speedup:.2f}x  (target >= {target:g}x)")
