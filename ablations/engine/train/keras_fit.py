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
>>> trial = fit_trial(model, (data.x_train, data.y_train), (data.x_val, data.y_val),
...                   training=TrialTraining(epochs=20, batch_size=64, seed=0), logger=context.loggers[0])
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
from ablations.engine.train.optimizers import make_optimizer


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


@dataclass(frozen=True)
class TrialTraining:
    """How `fit_trial` trains one model.

    Args:
        epochs: Most epochs to train.
        batch_size: Examples per step; the last batch of an epoch may be smaller.
        seed: Seeds the per-epoch shuffle. Seed the model itself with
            ``keras.utils.set_random_seed`` and the builder's ``seed``.
        optimizer: An optimizer name (see `optimizers.make_optimizer`) or instance.
        learning_rate: Its learning rate, when given by name. Defaults to 1e-3.
        loss: Defaults to sparse categorical cross-entropy on probabilities for
            integer targets, mean squared error otherwise.
        stop_on_divergence: Stop once the training loss is NaN or infinite (a
            diverged net stays diverged).
        score_every: Score the splits (and log) every this many epochs, and
            at the last; the epochs between log only the running ``loss`` and
            ``accuracy``. For runs of many short epochs; callbacks that watch
            ``val_*`` need the default 1.
    """

    epochs: int
    batch_size: int
    seed: int
    optimizer: str | keras.optimizers.Optimizer = "adam"
    learning_rate: float = 1e-3
    loss: str | keras.losses.Loss | None = None
    stop_on_divergence: bool = True
    score_every: int = 1

    def __post_init__(self):
        check_score_every(self.score_every)


def check_score_every(score_every: int) -> None:
    """Raises ValueError unless ``score_every`` (epochs between two scorings) is an integer >= 1."""
    if isinstance(score_every, bool) or not isinstance(score_every, int) or score_every < 1:
        raise ValueError(f"`score_every` must be an integer >= 1. Received: score_every={score_every!r}")


def fit_trial(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    *,
    training: TrialTraining,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    logger: TrialLogger | None = None,
    extra_eval: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> TrialFit:
    """Compiles ``model``, trains it for up to ``training.epochs`` epochs and scores it.

    Args:
        model: An uncompiled Keras model (it is compiled here, so callbacks
            find ``model.optimizer`` and ``model.loss``).
        train: ``(x_train, y_train)``, the training arrays.
        val: ``(x_val, y_val)``, the validation arrays (``val_*`` logs; what
            ``EarlyStopping(monitor="val_loss")`` watches).
        training: Epochs, batches, shuffle seed, optimizer, loss, scoring interval.
        callbacks: Keras callbacks; epoch-level hooks are called.
        logger: Receives each step's logs: ``logger(logs, step)``.
        extra_eval: Further named splits, scored with the others in inference mode.

    Returns:
        A `TrialFit`.
    """
    steps = _KerasSteps(model, train, {"val": val, **(extra_eval or {})}, training)
    recorder = _Recorder(logger)
    # Last in the list, so it sees what the other callbacks add to the logs.
    callback_list = keras.callbacks.CallbackList([*callbacks, recorder], model=model, epochs=training.epochs, steps=steps.steps, verbose=0)
    model.stop_training = False
    rng = np.random.default_rng(training.seed)
    epochs_run, diverged, logs = 0, False, {}
    with _expected_tracing():
        callback_list.on_train_begin()
        initial = {"loss": math.nan, **({"accuracy": math.nan} if steps.classification else {}), **steps.scores()}
        for callback in callbacks:
            initial.update(getattr(callback, "initial_logs", {}) or {})
        recorder.record(initial, 0)
        for epoch in range(training.epochs):
            callback_list.on_epoch_begin(epoch)
            running_loss, running_accuracy = steps.train_epoch(tf.constant(rng.permutation(steps.n)))
            logs = {"loss": float(running_loss)}
            if steps.classification:
                logs["accuracy"] = float(running_accuracy)
            epochs_run = epoch + 1
            diverged = not math.isfinite(logs["loss"])
            stops = diverged and training.stop_on_divergence
            recorder.forward = epochs_run % training.score_every == 0 or epochs_run == training.epochs or stops
            if recorder.forward:
                logs.update(steps.scores())
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training or stops:
                break
        callback_list.on_train_end(logs)
    final = {"final_loss": logs.get("loss", math.nan), "epochs_run": float(epochs_run), "diverged": float(diverged), **steps.final_scores()}
    return TrialFit(history=recorder.history, epochs_run=epochs_run, diverged=diverged, final=final)


class _KerasSteps:
    """``model`` compiled, and its epoch and scoring as `tf.function`s over in-memory splits.

    Args:
        model: The uncompiled model (compiled here with ``training``'s optimizer and loss).
        train: The training arrays.
        others: The other splits to score, by name (``val`` first).
        training: The training's settings.
    """

    def __init__(self, model: keras.Model, train: tuple, others: Mapping[str, tuple], training: TrialTraining):
        x_train, y_train = train
        self.classification = np.issubdtype(np.asarray(y_train).dtype, np.integer)
        loss = training.loss
        if loss is None:
            loss = "sparse_categorical_crossentropy" if self.classification else "mean_squared_error"
        optimizer = training.optimizer
        if isinstance(optimizer, str):
            optimizer = make_optimizer(optimizer, training.learning_rate)
        model.compile(optimizer=optimizer, loss=loss)
        self.loss_fn = keras.losses.get(loss)
        # The optimizer's slots are made here, outside the traced epoch.
        optimizer.build(model.trainable_variables)
        self.model, self.optimizer = model, optimizer
        self.x_all, self.y_all = tf.constant(x_train), tf.constant(y_train)
        self.splits = {"train": (self.x_all, self.y_all), **{name: (tf.constant(x), tf.constant(y)) for name, (x, y) in others.items()}}
        self.n, self.batch_size = len(x_train), training.batch_size
        self.steps = math.ceil(self.n / self.batch_size)
        self.train_epoch = tf.function(self._train_epoch)
        self._score = tf.function(self._score_all)

    def _metrics(self, y, predictions):
        if not self.classification:
            # (n,) targets against (n, 1) predictions would broadcast to (n, n).
            y = tf.reshape(tf.cast(y, predictions.dtype), tf.shape(predictions))
            return tf.reduce_mean(self.loss_fn(y, predictions)), tf.constant(float("nan"))
        value = tf.reduce_mean(self.loss_fn(y, predictions))
        labels = tf.cast(tf.reshape(y, [-1]), tf.int64)
        correct = tf.equal(tf.argmax(predictions, axis=-1), labels)
        return value, tf.reduce_mean(tf.cast(correct, tf.float32))

    def _train_epoch(self, order):
        model, batch_size = self.model, self.batch_size
        loss_sum, accuracy_sum = tf.constant(0.0), tf.constant(0.0)
        for step in tf.range(self.steps):
            index = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = tf.gather(self.x_all, index), tf.gather(self.y_all, index)
            with tf.GradientTape() as tape:
                predictions = model(xb, training=True)
                data_loss, accuracy = self._metrics(yb, predictions)
                # Penalties (kernel_regularizer=...) count, as in `fit`.
                total = data_loss + sum(model.losses)
            grads = tape.gradient(total, model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            size = tf.cast(tf.shape(index)[0], tf.float32)
            loss_sum += total * size
            accuracy_sum += accuracy * size
        return loss_sum / self.n, accuracy_sum / self.n

    def _score_all(self):
        # Whole splits in one pass: the data sets here are small.
        out = {}
        for name, (x, y) in self.splits.items():
            out[f"{name}_loss"], out[f"{name}_accuracy"] = self._metrics(y, self.model(x, training=False))
        return out

    def scores(self) -> dict[str, float]:
        """Every split scored in inference mode: ``{split}_loss`` and, for classes, ``{split}_accuracy``."""
        values = {key: float(value) for key, value in self._score().items()}
        return values if self.classification else {k: v for k, v in values.items() if not k.endswith("_accuracy")}

    def final_scores(self) -> dict[str, float]:
        """The splits scored once more, under `TrialFit.final`'s names."""
        scores, final = self.scores(), {}
        for name in self.splits:
            prefix = "final" if name == "train" else f"final_{name}"
            final[f"final_{name}_loss"] = scores[f"{name}_loss"]
            if self.classification:
                final[f"{prefix}_accuracy"] = scores[f"{name}_accuracy"]
                final[f"final_{name}_error"] = 1.0 - scores[f"{name}_accuracy"]
        return final


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
