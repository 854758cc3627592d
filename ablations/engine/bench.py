"""Benchmark: the suite against a plain loop of ``model.fit`` calls on one grid.

The grid is vanishing_gradients' 8 activations × depths 2, 5, 10, 20 × 1 seed,
5 epochs on 4,000 MNIST-1D training examples, width 100, batch 100, Adam 1e-3,
softmax output. The suite runs it with MLflow tracking (a temporary store) and
per-layer gradient norms on; the baseline builds and fits one default Keras
model per configuration with no tracking. Both run in this process, after the
same warm-up, and the ratio of their wall times is printed, with the suite's
peak resident memory after its first and its last pack of trials.

    make bench        # or: python -m ablations.engine.bench
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from ablations.engine.runner import run_ablation  # noqa: E402
from ablations.engine.tracking import Tracker  # noqa: E402
from ablations.vanishing_gradients import ABLATION, _dataset  # noqa: E402
from models.activations import activation_function  # noqa: E402

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "relu6", "selu")
DEPTHS = (2, 5, 10, 20)
SETTINGS = {"width": "100", "epochs": "5", "batch_size": "100", "learning_rate": "0.001", "n_train": "4000", "data": "mnist1d"}


def plain_loop(data) -> float:
    """Seconds to fit every configuration with a default `model.fit`, one after another."""
    started = time.perf_counter()
    for activation in ACTIVATIONS:
        for depth in DEPTHS:
            model = keras.Sequential(
                [keras.Input(data.input_shape)]
                + [keras.layers.Dense(100, activation=activation_function(activation)) for _ in range(depth)]
                + [keras.layers.Dense(data.num_classes, activation="softmax")]
            )
            model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(data.x_train, data.y_train, batch_size=100, epochs=5, validation_data=(data.x_val, data.y_val), verbose=0)
            keras.backend.clear_session()
    return time.perf_counter() - started


def suite(folder: str):
    """Seconds for the suite on the same grid, and its result."""
    overrides = {**SETTINGS, "activation": ",".join(ACTIVATIONS), "depth": ",".join(map(str, DEPTHS)), "initializer": "glorot_uniform"}
    config = ABLATION.resolve("quick", overrides, seeds=1)
    os.environ["ABLATE_RESULTS_DIR"] = folder
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db")
    started = time.perf_counter()
    result = run_ablation(ABLATION, config, storage=f"journal:{folder}/optuna.journal", tracker=tracker, progress=True)
    return time.perf_counter() - started, result


def main() -> None:
    config = ABLATION.resolve("quick", SETTINGS, seeds=1).trials()[0]
    data = _dataset(config)
    assert len(data.x_train) == 4000, len(data.x_train)
    # Warm-up: TensorFlow's first graph pays one-off costs neither side should carry.
    warm = keras.Sequential([keras.Input(data.input_shape), keras.layers.Dense(4), keras.layers.Dense(10, activation="softmax")])
    warm.compile("adam", "sparse_categorical_crossentropy")
    warm.fit(data.x_train[:200], data.y_train[:200], epochs=1, verbose=0)

    with tempfile.TemporaryDirectory() as folder:
        suite_seconds, result = suite(folder)
    plain_seconds = plain_loop(data)
    trials = len(ACTIVATIONS) * len(DEPTHS)
    growth = result.peak_rss_mb_last / result.peak_rss_mb_first - 1
    print(f"grid: {len(ACTIVATIONS)} activations x depths {DEPTHS} x 1 seed = {trials} trials, 5 epochs, 4000 examples")
    print(f"suite (MLflow tracking + gradient norms): {suite_seconds:8.1f} s  ({result.failed} failed)")
    print(f"plain model.fit loop (no tracking):       {plain_seconds:8.1f} s")
    print(f"ratio suite / plain: {suite_seconds / plain_seconds:.3f}  (target <= 0.5)")
    print(
        f"suite peak RSS after first pack {result.peak_rss_mb_first:.0f} MiB, after last {result.peak_rss_mb_last:.0f} MiB "
        f"(growth {growth:+.1%}, target < 20%)"
    )


if __name__ == "__main__":
    main()
