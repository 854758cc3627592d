"""One Keras trial: compile, train with Keras callbacks, return its history and final metrics.

`fit_trial` trains any uncompiled `keras.Model` (from `build_mlp`, `build_cnn`,
...) on in-memory arrays and reports, under Keras' names, what `Model.fit`
reports plus the training split scored in inference mode, which the
generalization gap needs (with dropout or augmentation on, the running training
loss is not the loss of the trained net).

Why not `Model.fit`: on a 2-core CPU its per-epoch Python work (data adapter,
iterators, log conversion) costs 50-100 ms, ten times the arithmetic of the
small nets trained here. Each epoch runs instead as one `tf.function` over
shuffled index batches, and a `keras.callbacks.CallbackList` drives the usual
callbacks around it (`on_train_begin`, `on_epoch_begin`, `on_epoch_end` with the
epoch's logs, `model.stop_training`, `on_train_end`), so `EarlyStopping(...,
restore_best_weights=True)`, `callbacks.ProbeStatistics` and friends work
unchanged. Batch-level hooks are not called. `make bench` times one trial both
ways: this loop against `Model.fit` with `steps_per_execution` of one epoch and
a callback that scores the splits as this loop does.

Per-step logs (step 0 is the initialization, step k the state after k epochs):

- ``loss``, ``accuracy``: the running mean over the epoch's batches, in training
  mode (dropout and augmentation on, penalties in the loss), as `fit` reports;
- ``train_loss``, ``train_accuracy``: the training split at the epoch's end, in
  inference mode, without penalties: comparable with ``val_loss``;
- ``val_loss``, ``val_accuracy``: the validation arrays, in inference mode;
- ``{name}_loss``, ``{name}_accuracy`` for every extra split in ``extra_eval``;
- whatever the callbacks add to the logs (``grad_norm/...`` from ProbeStatistics).

Accuracy is reported for integer targets (classification) only.

Example:

>>> keras.utils.set_random_seed(0)
>>> model = build_mlp(data.input_shape, data.num_classes, depth=2, width=64, keep_prob=0.5, seed=0)
>>> trial = fit_trial(model, data.x_train, data.y_train, data.x_val, data.y_val,
...                   epochs=20, batch_size=64, seed=0, logger=context.loggers[0])
>>> trial.final["final_val_error"], epochs_to_reach(trial.history["loss"], 0.5)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ablations.engine.spec import TrialLogger


@dataclass(frozen=True)
class TrialFit:
    """What `fit_trial` returns.

    Args:
        history: Per metric, its values at steps 0..epochs_run (index = epoch;
            ``loss`` and ``accuracy`` are NaN at step 0, before any batch).
        epochs_run: Epochs trained (fewer than asked when a callback stopped
            training, or when the loss diverged).
        diverged: Whether the training loss became NaN or infinite.
        final: Final metrics of the model as returned (after any weight restore
            by a callback): ``final_loss`` (the last epoch's running loss),
            ``final_train_loss``, ``final_accuracy``, ``final_train_error``,
            ``final_val_loss``, ``final_val_accuracy``, ``final_val_error``,
            ``final_{name}_...`` for extra splits, ``epochs_run``, ``diverged``.
    """

    history: dict[str, list[float]]
    epochs_run: int
    diverged: bool
    final: dict[str, float]


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name ("adam", "sgd", "rmsprop", ...) with the given learning rate."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})


def fit_trial(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    learning_rate: float = 1e-3,
    loss: str | keras.losses.Loss | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    logger: TrialLogger | None = None,
    extra_eval: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    stop_on_divergence: bool = True,
    score_every: int = 1,
) -> TrialFit:
    """Compiles ``model``, trains it for up to ``epochs`` epochs and scores it.

    Args:
        model: An uncompiled Keras model (it is compiled here, so callbacks
            find ``model.optimizer`` and ``model.loss``).
        x_train, y_train: Training arrays.
        x_val, y_val: Validation arrays (``val_*`` logs; what
            ``EarlyStopping(monitor="val_loss")`` watches).
        epochs: Most epochs to train.
        batch_size: Examples per step; the last batch of an epoch may be smaller.
        seed: Seeds the per-epoch shuffle. Seed the model itself with
            ``keras.utils.set_random_seed`` and the builder's ``seed``.
        optimizer: An optimizer name (see `make_optimizer`) or instance.
        learning_rate: Its learning rate, when given by name. Defaults to 1e-3.
        loss: Defaults to sparse categorical cross-entropy on probabilities for
            integer targets, mean squared error otherwise.
        callbacks: Keras callbacks; epoch-level hooks are called.
        logger: Receives each step's logs: ``logger(logs, step)``.
        extra_eval: Further named splits, scored with the others in inference mode.
        stop_on_divergence: Stop once the training loss is NaN or infinite (a
            diverged net stays diverged).
        score_every: Score the splits (and log) every this many epochs, and
            at the last; the epochs between log only the running ``loss`` and
            ``accuracy``. For runs of many short epochs; callbacks that watch
            ``val_*`` need the default 1.

    Returns:
        A `TrialFit`.
    """
    if isinstance(score_every, bool) or not isinstance(score_every, int) or score_every < 1:
        raise ValueError(f"`score_every` must be an integer >= 1. Received: score_every={score_every!r}")
    classification = np.issubdtype(np.asarray(y_train).dtype, np.integer)
    if loss is None:
        loss = "sparse_categorical_crossentropy" if classification else "mean_squared_error"
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, learning_rate)
    model.compile(optimizer=optimizer, loss=loss)
    loss_fn = keras.losses.get(loss)
    # The optimizer's slots are made here, outside the traced epoch.
    optimizer.build(model.trainable_variables)

    x_all, y_all = tf.constant(x_train), tf.constant(y_train)
    splits = {"train": (x_all, y_all), "val": (tf.constant(x_val), tf.constant(y_val))}
    for name, (x, y) in (extra_eval or {}).items():
        splits[name] = (tf.constant(x), tf.constant(y))
    n = len(x_train)
    steps = math.ceil(n / batch_size)

    def batch_metrics(y, predictions):
        if not classification:
            # (n,) targets against (n, 1) predictions would broadcast to (n, n).
            y = tf.reshape(tf.cast(y, predictions.dtype), tf.shape(predictions))
            return tf.reduce_mean(loss_fn(y, predictions)), tf.constant(float("nan"))
        value = tf.reduce_mean(loss_fn(y, predictions))
        labels = tf.cast(tf.reshape(y, [-1]), tf.int64)
        correct = tf.equal(tf.argmax(predictions, axis=-1), labels)
        return value, tf.reduce_mean(tf.cast(correct, tf.float32))

    @tf.function
    def train_epoch(order):
        loss_sum, accuracy_sum = tf.constant(0.0), tf.constant(0.0)
        for step in tf.range(steps):
            index = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = tf.gather(x_all, index), tf.gather(y_all, index)
            with tf.GradientTape() as tape:
                predictions = model(xb, training=True)
                data_loss, accuracy = batch_metrics(yb, predictions)
                # Penalties (kernel_regularizer=...) count, as in `fit`.
                total = data_loss + sum(model.losses)
            grads = tape.gradient(total, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            size = tf.cast(tf.shape(index)[0], tf.float32)
            loss_sum += total * size
            accuracy_sum += accuracy * size
        return loss_sum / n, accuracy_sum / n

    @tf.function
    def score():
        # Whole splits in one pass: the data sets here are small.
        out = {}
        for name, (x, y) in splits.items():
            out[f"{name}_loss"], out[f"{name}_accuracy"] = batch_metrics(y, model(x, training=False))
        return out

    def scores() -> dict[str, float]:
        values = {key: float(value) for key, value in score().items()}
        return values if classification else {k: v for k, v in values.items() if not k.endswith("_accuracy")}

    recorder = _Recorder(logger)
    # Last in the list, so it sees what the other callbacks add to the logs.
    callback_list = keras.callbacks.CallbackList([*callbacks, recorder], model=model, epochs=epochs, steps=steps, verbose=0)
    model.stop_training = False
    rng = np.random.default_rng(seed)
    epochs_run, diverged, logs = 0, False, {}
    with _expected_tracing():
        callback_list.on_train_begin()
        initial = {"loss": math.nan, **({"accuracy": math.nan} if classification else {}), **scores()}
        for callback in callbacks:
            initial.update(getattr(callback, "initial_logs", {}) or {})
        recorder.record(initial, 0)
        for epoch in range(epochs):
            callback_list.on_epoch_begin(epoch)
            running_loss, running_accuracy = train_epoch(tf.constant(rng.permutation(n)))
            logs = {"loss": float(running_loss)}
            if classification:
                logs["accuracy"] = float(running_accuracy)
            epochs_run = epoch + 1
            diverged = not math.isfinite(logs["loss"])
            recorder.forward = epochs_run % score_every == 0 or epochs_run == epochs or (diverged and stop_on_divergence)
            if recorder.forward:
                logs.update(scores())
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training or (diverged and stop_on_divergence):
                break
        callback_list.on_train_end(logs)

    final_scores = scores()
    final = {
        "final_loss": logs.get("loss", math.nan),
        "epochs_run": float(epochs_run),
        "diverged": float(diverged),
    }
    for name in splits:
        prefix = "final" if name == "train" else f"final_{name}"
        final[f"final_{name}_loss"] = final_scores[f"{name}_loss"]
        if classification:
            accuracy = final_scores[f"{name}_accuracy"]
            final[f"{prefix}_accuracy"] = accuracy
            final[f"final_{name}_error"] = 1.0 - accuracy
    return TrialFit(history=recorder.history, epochs_run=epochs_run, diverged=diverged, final=final)


@contextlib.contextmanager
def _expected_tracing():
    """Silences TensorFlow's "frequent retracing" warning for the duration.

    Every trial builds a new model and so traces its own `tf.function`s once;
    after a few trials TensorFlow warns about that, although it is expected
    here and not a sign of changing input shapes.
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


class _Recorder(keras.callbacks.Callback):
    """Keeps every step's logs (NaN where a metric is missing) and forwards the scored ones to the trial's logger."""

    def __init__(self, logger: TrialLogger | None):
        super().__init__()
        self.logger = logger
        self.forward = True
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        self.record(dict(logs or {}), epoch + 1)

    def record(self, logs: dict[str, float], step: int) -> None:
        for key, value in logs.items():
            self.history.setdefault(key, [math.nan] * step).append(float(value))
        for values in self.history.values():
            values.extend([math.nan] * (step + 1 - len(values)))
        if self.logger is not None and self.forward:
            self.logger(logs, step)


def epochs_to_reach(values: Sequence[float], target: float) -> float:
    """The first step (epoch) at which ``values`` is at or below ``target``; NaN if never.

    Steps count from 0 (the initialization), as in `TrialFit.history`. NaN
    entries (a diverged loss) never count as reached.

    Example:

    >>> epochs_to_reach([2.3, 1.1, 0.6, 0.4, 0.5], 0.5)
    3.0
    """
    for step, value in enumerate(values):
        if value <= target:  # False for NaN
            return float(step)
    return math.nan


def score_split(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss (the compiled loss, no penalties) and, for classes, accuracy and error of ``model`` on (x, y).

    For a test hook: ``guard.evaluate(lambda: prefixed(score_split(model, data.x_test, data.y_test), "test"))``.
    """
    predictions = model(tf.constant(x), training=False)
    classification = np.issubdtype(np.asarray(y).dtype, np.integer)
    targets = tf.constant(y) if classification else tf.reshape(tf.constant(y, predictions.dtype), tf.shape(predictions))
    out = {"loss": float(tf.reduce_mean(keras.losses.get(model.loss)(targets, predictions)))}
    if classification:
        accuracy = float(np.mean(np.argmax(keras.ops.convert_to_numpy(predictions), axis=-1) == np.asarray(y)))
        out.update({"accuracy": accuracy, "error": 1.0 - accuracy})
    return out
