"""Training loop for `models.stacked.StackedMLP`: every member, one graph per epoch.

It records what `callbacks.ProbeStatistics` and `keras.Model.fit` record for a
single model, per member and under the same names, so ablations read the same
metrics whichever way their trials were trained: ``loss``, ``accuracy``,
``val_loss``, ``val_accuracy`` per epoch, and on a fixed probe batch, before the
first step and after every epoch, ``grad_norm/<layer>`` for every kernel
(``dense_i``, ``output``), ``dead_fraction/act_i`` and ``saturated_fraction/act_i``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from callbacks.statistics import SATURATION_THRESHOLD, dead_fraction, saturated_fraction
from models.stacked import StackedMLP

EpochCallback = Callable[[int, list[dict[str, float]]], None]
"""Called with (step, one metrics dict per member); step 0 is initialization."""


@dataclass(frozen=True)
class StackedFitResult:
    """Per-member histories: ``histories[m][metric]`` is a list over steps.

    Probe statistics start at initialization (step 0, then one per epoch);
    loss and accuracy start after the first epoch.
    """

    histories: list[dict[str, list[float]]]


class _FusedAdam:
    """Keras's Adam (same defaults and update) as one fused kernel per variable.

    A deep stack has dozens of variables; Keras's Adam builds several ops per
    variable per step, which dominates tracing and running a small model's
    step. ``ResourceApplyAdam`` computes the same update,
    m = β1 m + (1-β1) g, v = β2 v + (1-β2) g², w -= lr √(1-β2^t)/(1-β1^t) m / (√v + ε),
    in one op (``tests/models/test_stacked.py`` checks it against ``Model.fit``).
    """

    def __init__(self, variables, learning_rate: float, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        self.variables = list(variables)
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.moments = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.velocities = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, gradients) -> None:
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power, beta_2_power = tf.pow(self.beta_1, step), tf.pow(self.beta_2, step)
        for variable, m, v, gradient in zip(self.variables, self.moments, self.velocities, gradients):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=self.learning_rate,
                beta1=self.beta_1,
                beta2=self.beta_2,
                epsilon=self.epsilon,
                grad=gradient,
            )
        self.iterations.assign_add(1)


def _member_losses(stack: StackedMLP, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
    """Mean cross-entropy and accuracy per member, plus the pre-activations."""
    preacts, logits = stack.preactivations(x)
    labels = tf.broadcast_to(y, tf.shape(logits)[:2])
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)
    return tf.reduce_mean(losses, axis=1), tf.reduce_mean(correct, axis=1), preacts


def fit_stacked(
    stack: StackedMLP,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    probe_size: int = 256,
    shuffle: bool = True,
    saturation_threshold: float = SATURATION_THRESHOLD,
    on_epoch: EpochCallback | None = None,
) -> StackedFitResult:
    """Trains every member of ``stack`` with Adam on the same batches.

    Args:
        stack: The stacked members to train.
        x_train, y_train, x_val, y_val: Flat features and integer labels.
        epochs: Passes over the training data.
        batch_size: Examples per step (the last batch of an epoch may be smaller).
        learning_rate: Adam's learning rate (Keras's other Adam defaults).
        seed: Seeds the per-epoch shuffle, so members trained in different
            stacks with the same seed see the same batches.
        probe_size: The first ``probe_size`` training examples form the fixed
            probe batch for gradient norms and unit statistics.
        shuffle: Reshuffle the training data every epoch (as `Model.fit` does).
        saturation_threshold: See `callbacks.statistics.saturated_fraction`.
        on_epoch: Called after initialization (step 0) and every epoch.

    Returns:
        The members' histories.
    """
    x_all = tf.constant(x_train, tf.float32)
    y_all = tf.constant(y_train, tf.int64)
    x_v = tf.constant(x_val, tf.float32)
    y_v = tf.constant(y_val, tf.int64)
    x_probe, y_probe = x_all[:probe_size], y_all[:probe_size]
    n = int(x_all.shape[0])
    steps = -(-n // batch_size)
    variables = stack.trainable_variables
    optimizer = _FusedAdam(variables, learning_rate)
    kernels = stack.kernels
    kernel_names = [f"dense_{i}" for i in range(stack.depth)] + ["output"]

    @tf.function
    def train_epoch(order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        loss_sum = tf.zeros([stack.members])
        correct_sum = tf.zeros([stack.members])
        for step in tf.range(steps):
            index = order[step * batch_size : (step + 1) * batch_size]
            xb, yb = tf.gather(x_all, index), tf.gather(y_all, index)
            with tf.GradientTape() as tape:
                losses, accuracy, _ = _member_losses(stack, xb, yb)
                # Members share no weight, so each one's gradient is its own.
                total = tf.reduce_sum(losses)
            optimizer.apply(tape.gradient(total, variables))
            size = tf.cast(tf.shape(index)[0], tf.float32)
            loss_sum += losses * size
            correct_sum += accuracy * size
        return loss_sum / n, correct_sum / n

    @tf.function
    def evaluate() -> tuple[tf.Tensor, tf.Tensor]:
        losses, accuracy, _ = _member_losses(stack, x_v, y_v)
        return losses, accuracy

    @tf.function
    def probe() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            losses, _, preacts = _member_losses(stack, x_probe, y_probe)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, kernels)
        norms = tf.stack([tf.norm(tf.reshape(g, [stack.members, -1]), axis=1) for g in grads])
        if not preacts:
            empty = tf.zeros([0, stack.members])
            return norms, empty, empty
        derivatives = stack.activation_derivatives(preacts)
        dead = tf.stack([dead_fraction(d) for d in derivatives])
        saturated = tf.stack([saturated_fraction(d, saturation_threshold) for d in derivatives])
        return norms, dead, saturated

    histories: list[dict[str, list[float]]] = [{} for _ in range(stack.members)]

    def record(step: int, values: dict[str, np.ndarray]) -> None:
        norms, dead, saturated = (t.numpy() for t in probe())
        rows = []
        for m in range(stack.members):
            row = {name: float(column[m]) for name, column in values.items()}
            row.update({f"grad_norm/{name}": float(norms[i, m]) for i, name in enumerate(kernel_names)})
            row.update({f"dead_fraction/act_{i}": float(dead[i, m]) for i in range(stack.depth)})
            row.update({f"saturated_fraction/act_{i}": float(saturated[i, m]) for i in range(stack.depth)})
            for key, value in row.items():
                histories[m].setdefault(key, []).append(value)
            rows.append(row)
        if on_epoch is not None:
            on_epoch(step, rows)

    record(0, {})
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        loss, accuracy = train_epoch(tf.constant(order))
        val_loss, val_accuracy = evaluate()
        record(
            epoch + 1,
            {
                "loss": loss.numpy(),
                "accuracy": accuracy.numpy(),
                "val_loss": val_loss.numpy(),
                "val_accuracy": val_accuracy.numpy(),
            },
        )
    return StackedFitResult(histories=histories)


@dataclass(frozen=True)
class PackRun:
    """A trained pack: the stack, and for each configuration its member index and history."""

    stack: StackedMLP
    members: list[int]
    histories: list[dict[str, list[float]]]


def train_pack(configs: list[dict], loggers: list, x_train, y_train, x_val, y_val, num_classes: int) -> PackRun:
    """Trains configurations that differ only in ``activation`` and ``initializer`` as one stack.

    Each configuration reads ``depth``, ``width``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``seed`` and optionally ``probe_size``; ``loggers[i]``
    receives configuration ``i``'s metrics at every step.

    Args:
        configs: The pack's trial configurations.
        loggers: One ``log(metrics, step)`` per configuration.
        x_train, y_train, x_val, y_val: Flat features and integer labels.
        num_classes: Output classes.

    Returns:
        The trained stack and, per configuration, its member and history.
    """
    first = configs[0]
    # Same activations side by side: one activation op per distinct activation.
    order = sorted(range(len(configs)), key=lambda i: (configs[i]["activation"], configs[i].get("initializer", "")))
    member_of = {trial: member for member, trial in enumerate(order)}
    keras.utils.set_random_seed(first["seed"])
    stack = StackedMLP(
        x_train.shape[1],
        num_classes,
        depth=first["depth"],
        width=first["width"],
        activations=[configs[i]["activation"] for i in order],
        initializers=[configs[i].get("initializer", "glorot_uniform") for i in order],
        seed=first["seed"],
    )

    def log(step: int, rows: list[dict[str, float]]) -> None:
        for trial, logger in enumerate(loggers):
            logger(rows[member_of[trial]], step)

    result = fit_stacked(
        stack,
        x_train,
        y_train,
        x_val,
        y_val,
        epochs=first["epochs"],
        batch_size=first["batch_size"],
        learning_rate=first["learning_rate"],
        seed=first["seed"],
        probe_size=first.get("probe_size", 256),
        on_epoch=log,
    )
    members = [member_of[i] for i in range(len(configs))]
    return PackRun(stack, members, [result.histories[m] for m in members])
