"""Benchmark: the suite against plain Keras, and each training shortcut against the Keras way.

Rows, each timed in this process after the same warm-up:

1. **suite / plain model.fit loop** on one grid: vanishing_gradients' 8
   activations × depths 2, 5, 10, 20 × 1 seed, 5 epochs on 4,000 MNIST-1D
   training examples, width 100, batch 100, Adam 1e-3, softmax output. The
   suite runs it with MLflow tracking (a temporary store) and per-layer
   gradient norms on; the baseline builds and fits one default Keras model per
   configuration with no tracking. One run each (minutes); printed with the
   suite's peak resident memory after its first and its last pack of trials.
2. **fused Adam / Keras Adam in the stacked loop, mini-batch**: one pack of that
   grid (8 activations, depth 10) through `fit_stack` as `train_pack` runs it,
   with ``optimizer="fused_adam"`` against ``optimizer="adam"``
   (`keras.optimizers.Adam`).
3. **fused Adam / Keras Adam in the stacked loop, full batch**: an
   l1_l2_penalty pack (23 penalties × 3 folds = 69 members, depth 2, width 64,
   200 steps on 150 digits, per-member example weights and penalties).
4. **fit_trial / Model.fit**: one dropout trial (MNIST-1D, 1,000 examples,
   depth 2, width 256, keep_prob 0.5, 30 epochs of batch 100) through
   `fit_trial` (an epoch as one compiled function) against ``Model.fit`` with
   ``steps_per_execution`` = one epoch and a callback that scores the training
   and validation splits in inference mode after every epoch, as `fit_trial`
   logs them.

5. **packed / one model per trial**: early_stopping's and input_normalization's
   quick grids at 10 seeds, each trial a member of its pack (`fit_members`)
   against its own Keras model through `fit_trial`, with the useful GFLOP/s
   as a fraction of this machine's matmul peak and the cores kept busy
   (`benchmarks.bench_packing`; ``python -m benchmarks.bench packing`` runs
   these rows alone).
6. **2 workers / 1 worker on one grid**: the quick grid of vanishing_gradients
   (168 trials) run as ``ablate run vanishing_gradients --workers N`` in a
   fresh process and store each, on this machine's cores. Printed as the
   throughput ratio of the fastest of two alternated runs of each side
   (target: at least 1.6 on 2 cores), with the cores each kept busy (CPU
   seconds over wall seconds). Minutes: ``python -m benchmarks.bench workers``
   runs this row alone.

7. **checkpoints / none**: every pack of the quick profile trained with
   checkpoints at the default interval and without, alternating pack by pack
   (target: at most 5% more), and dropout's grid with a checkpoint after every
   epoch, the worst case (`benchmarks.bench_checkpoints`; ``python -m
   benchmarks.bench checkpoints`` runs these rows alone, about twice the
   profile's training time).

``python -m benchmarks.bench headline`` runs row 1 alone (a few minutes).
``python -m benchmarks.bench bookkeeping`` (not in a plain run) measures what
the runner costs beyond training, per pack, trial and metric value: the
constants a dry run adds (`benchmarks.bench_bookkeeping`).

Rows 2-4 run each side once to warm up, then alternate them ``REPEATS`` times
and print the median times and their ratio (below 1: the first is faster).
A shortcut earns its place by its row; where both must stay because their
numbers differ in the last bits (Keras's Adam and the fused kernel), the row
says what the choice costs.

    make bench        # or: python -m benchmarks.bench
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ablations.engine.data import load_dataset  # noqa: E402
from benchmarks.bench_bookkeeping import bookkeeping_rows  # noqa: E402
from benchmarks.bench_checkpoints import checkpoint_rows  # noqa: E402
from benchmarks.bench_packing import packing_rows  # noqa: E402
from ablations.engine.runner import run_ablation  # noqa: E402
from ablations.engine.tracking import Tracker  # noqa: E402
from ablations.engine.train import StackRecording, StackTraining, TrialTraining, fit_stack, fit_trial  # noqa: E402
from ablations.vanishing_gradients import ABLATION  # noqa: E402
from models.activations import activation_function  # noqa: E402
from models.mlp import build_mlp  # noqa: E402
from models.stacked import StackedMLP  # noqa: E402

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "relu6", "selu")
DEPTHS = (2, 5, 10, 20)
SETTINGS = {"width": "100", "epochs": "5", "batch_size": "100", "learning_rate": "0.001", "n_train": "4000", "data": "mnist1d"}
REPEATS = 3
N_TRAIN = 4000


def grid_data():
    """The grid's MNIST-1D split, as vanishing_gradients loads it: enough examples generated for 4,000 training ones."""
    data = load_dataset("mnist1d", n_train=N_TRAIN, num_samples=max(5000, math.ceil(N_TRAIN / 0.6) + 10))
    assert len(data.x_train) == N_TRAIN, len(data.x_train)
    return data


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


def compare(first: Callable[[], None], second: Callable[[], None]) -> tuple[float, float]:
    """Median seconds of ``first`` and ``second`` over `REPEATS` alternating runs, after one warm-up run of each."""
    times: tuple[list[float], list[float]] = ([], [])
    for repeat in range(REPEATS + 1):
        for side, run in enumerate((first, second)):
            keras.backend.clear_session()
            started = time.perf_counter()
            run()
            if repeat:
                times[side].append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def print_row(title: str, first: str, second: str, seconds: tuple[float, float]) -> None:
    print(title)
    print(f"  {first:<44} {seconds[0]:8.2f} s")
    print(f"  {second:<44} {seconds[1]:8.2f} s")
    print(f"  ratio: {seconds[0] / seconds[1]:.3f}  (median of {REPEATS})")


def minibatch_pack(data, optimizer: str) -> Callable[[], None]:
    """One pack of the grid through the stacked loop, as `train_pack` trains it."""

    def run() -> None:
        stack = StackedMLP(
            data.x_train.shape[1], data.num_classes, depth=10, width=100,
            activations=sorted(ACTIVATIONS), initializers=["glorot_uniform"] * len(ACTIVATIONS), seed=0,
        )
        fit_stack(
            stack,
            data.x_train,
            data.y_train,
            training=StackTraining(epochs=5, learning_rate=1e-3, batch_size=100, seed=0, optimizer=optimizer),
            recording=StackRecording(validation_data=(data.x_val, data.y_val), probe_size=256),
        )

    return run


def full_batch_pack(optimizer: str) -> Callable[[], None]:
    """An l1_l2_penalty pack: every (penalty, λ) × fold a member, its own examples and penalty, full-batch steps."""
    data = load_dataset("digits", n_train=150, val_fraction=0.05, test_fraction=0.2, split_seed=0)
    lambdas = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.0)
    penalties = [(0.0, 0.0)] + [(lam, 0.0) for lam in lambdas] + [(0.0, lam) for lam in lambdas]
    folds = 3
    n = len(data.y_train)
    weights = np.ones((folds, n), np.float32)
    for fold in range(folds):
        weights[fold, fold::folds] = 0.0
    members = [(penalty, fold) for penalty in penalties for fold in range(folds)]

    def run() -> None:
        stack = StackedMLP(
            data.x_train.shape[1], data.num_classes, depth=2, width=64,
            activations=["relu"] * len(members), initializers=["glorot_uniform"] * len(members),
            l1=[penalty[0] for penalty, _ in members], l2=[penalty[1] for penalty, _ in members], seed=0,
        )
        fit_stack(
            stack,
            data.x_train,
            data.y_train,
            weights[[fold for _, fold in members]],
            training=StackTraining(epochs=200, learning_rate=1e-2, optimizer=optimizer),
            recording=StackRecording(record_every=0),
        )

    return run


class _Scores(keras.callbacks.Callback):
    """Adds the training and validation splits' loss and accuracy, in inference mode, to every epoch's logs."""

    def __init__(self, splits: dict[str, tuple[np.ndarray, np.ndarray]]):
        super().__init__()
        self.splits = {name: (tf.constant(x), tf.constant(y)) for name, (x, y) in splits.items()}
        self._score = None

    def on_train_begin(self, logs=None):
        model, splits = self.model, self.splits

        @tf.function
        def score():
            out = {}
            for name, (x, y) in splits.items():
                predictions = model(x, training=False)
                out[f"{name}_loss"] = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, predictions))
                correct = tf.equal(tf.argmax(predictions, axis=-1), tf.cast(y, tf.int64))
                out[f"{name}_accuracy"] = tf.reduce_mean(tf.cast(correct, tf.float32))
            return out

        self._score = score

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({key: float(value) for key, value in self._score().items()})


def keras_trial(data, use_fit_trial: bool) -> Callable[[], None]:
    """One dropout trial, through `fit_trial` or through ``Model.fit`` with a scoring callback."""
    epochs, batch_size = 30, 100
    steps = math.ceil(len(data.x_train) / batch_size)

    def run() -> None:
        model = build_mlp(data.input_shape, data.num_classes, depth=2, width=256, keep_prob=0.5, seed=0)
        if use_fit_trial:
            fit_trial(
                model,
                (data.x_train, data.y_train),
                (data.x_val, data.y_val),
                training=TrialTraining(epochs=epochs, batch_size=batch_size, seed=0),
            )
            return
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=steps)
        scores = _Scores({"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val)})
        model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, callbacks=[scores], verbose=0)

    return run


def grid_with_workers(workers: int) -> tuple[float, float]:
    """Wall and CPU seconds (all processes) of ``ablate run vanishing_gradients --profile quick --workers N`` in a fresh store."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "ABLATE_RESULTS_DIR": folder, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
        command = [sys.executable, "-m", "ablations", "run", "vanishing_gradients", "--profile", "quick", "--workers", str(workers)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([*command, "--no-report", "--quiet"], env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


WORKER_REPEATS = 2
"""Runs of each side of the workers row, alternated: one run of a side varies by about 10% on a shared machine."""


def workers_row() -> None:
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(WORKER_REPEATS):
        for workers in runs:
            runs[workers].append(grid_with_workers(workers))
    # The fastest run of each side: noise only ever adds time.
    (one, one_cpu), (two, two_cpu) = min(runs[1]), min(runs[2])
    print(f"quick grid of vanishing_gradients (168 trials), 1 worker vs 2 workers on {os.cpu_count()} cores, fastest of {WORKER_REPEATS}:")
    # Cores kept busy on average: where one worker already fills the cores, more workers have nothing to add.
    for label, (wall, cpu), all_runs in (("--workers 1", (one, one_cpu), runs[1]), ("--workers 2", (two, two_cpu), runs[2])):
        others = ", ".join(f"{w:.1f}" for w, _ in all_runs)
        print(f"  {label:<44} {wall:8.1f} s  ({cpu / wall:.2f} cores busy; runs: {others} s)")
    print(f"  throughput 2 workers / 1 worker: {one / two:.2f}x  (target >= 1.6x)")


def headline_row(data) -> None:
    """Row 1: the suite against the plain model.fit loop on the grid, after a warm-up neither side carries."""
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


def main() -> None:
    if sys.argv[1:] == ["workers"]:
        workers_row()
        return
    if sys.argv[1:] == ["bookkeeping"]:
        print("runner bookkeeping (a toy grid that trains nothing, temporary SQLite store and journal):")
        bookkeeping_rows()
        return
    if sys.argv[1:2] == ["packing"]:
        packing_rows(tuple(sys.argv[2:]) or None)
        return
    if sys.argv[1:2] == ["checkpoints"]:
        checkpoint_rows(tuple(sys.argv[2:]) or None)
        return
    if sys.argv[1:] == ["headline"]:
        headline_row(grid_data())
        return
    data = grid_data()
    headline_row(data)
    print_row(
        "stacked loop, mini-batch (8 activations, depth 10, width 100, 5 epochs, probe on):",
        "fit_stack(optimizer='fused_adam')",
        "fit_stack(optimizer='adam')  (keras Adam)",
        compare(minibatch_pack(data, "fused_adam"), minibatch_pack(data, "adam")),
    )
    print_row(
        "stacked loop, full batch (69 members with L1/L2 and CV folds, depth 2, width 64, 200 steps):",
        "fit_stack(optimizer='fused_adam')",
        "fit_stack(optimizer='adam')  (keras Adam)",
        compare(full_batch_pack("fused_adam"), full_batch_pack("adam")),
    )
    trial_data = load_dataset("mnist1d", n_train=1000)
    print_row(
        "one Keras trial (depth 2, width 256, dropout 0.5, 30 epochs of 10 batches, both splits scored every epoch):",
        "fit_trial (an epoch per compiled call)",
        "Model.fit(steps_per_execution=10) + callback",
        compare(keras_trial(trial_data, True), keras_trial(trial_data, False)),
    )
    packing_rows()
    workers_row()
    checkpoint_rows()


if __name__ == "__main__":
    main()
