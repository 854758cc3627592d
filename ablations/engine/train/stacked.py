"""The stacked training loop: every member of a `models.stacked.StackedMLP` in one graph.

`fit_stack` trains the members of a stack side by side with Adam, each on its
own objective: its mean cross-entropy (weighted per example, if asked) plus,
for a stack with penalty coefficients, its L1/L2 kernel penalty, as Keras's
``fit`` minimizes for a model with kernel regularizers. Two regimes:

- mini-batches (``batch_size``): each epoch is one `tf.function` over the
  shuffled index batches, as ``Model.fit`` batches; the activation ablations
  train their packs this way (`train_pack`);
- full batch (``batch_size=None``): each epoch is one step on every example,
  per member weighted by ``example_weights`` (0 leaves an example out: a
  member's cross-validation folds); the penalty ablations train this way.

It records, per member and under the names `keras.Model.fit` and
`callbacks.ProbeStatistics` use for a single model, so ablations read the same
metrics whichever way their trials were trained: ``loss`` and ``accuracy`` (the
epoch's running objective and accuracy), ``val_loss`` and ``val_accuracy``, and
on a fixed probe batch, before the first step and after every recorded epoch,
``grad_norm/<layer>`` for every kernel (``dense_i``, ``output``),
``signal_norm/<layer>`` for every pre-activation (``act_i``, ``output``: the
norm of ∂L/∂z, the signal backpropagation carries there), ``dead_fraction/act_i``
and ``saturated_fraction/act_i``.

Example:

>>> stack = StackedMLP(40, 10, depth=3, width=32, activations=["relu", "tanh"],
...                    initializers=["he_normal"] * 2, seed=0)
>>> fit = fit_stack(stack, x_train, y_train, training=StackTraining(epochs=5, learning_rate=1e-3, batch_size=100),
...                 recording=StackRecording(validation_data=(x_val, y_val), probe_size=256))
>>> fit.histories[1]["val_accuracy"][-1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ablations.engine.device import jit_enabled
from ablations.engine.execution.checkpoints import digest, next_segment
from ablations.engine.spec import TrialLogger
from ablations.engine.train.optimizers import OPTIMIZERS, stack_optimizer
from callbacks.statistics import SATURATION_THRESHOLD, dead_fraction, saturated_fraction
from models.stacked import StackedMLP

@dataclass(frozen=True)
class StackedFit:
    """What `fit_stack` returns: per-member histories, ``histories[m][metric]`` a list over recorded steps.

    Probe statistics start at initialization (step 0, then one per recorded
    epoch); the other metrics start after the first recorded epoch.
    """

    histories: list[dict[str, list[float]]]


@dataclass(frozen=True)
class StackTraining:
    """How `fit_stack` trains: its regime, its optimizer and its batch order.

    Args:
        epochs: Passes over the training data (with the full batch: steps).
        learning_rate: Adam's learning rate (Keras's other Adam defaults).
        batch_size: Examples per step (the last batch of an epoch may be
            smaller); None trains on the full batch, one step per epoch.
        seed: Seeds the per-epoch shuffle of the mini-batches, so members
            trained in different stacks with the same seed see the same batches:
            one for every member, or one per member (each member then takes its
            seed's order; members of one seed share it).
        shuffle: Reshuffle the training data every epoch (as `Model.fit` does).
        optimizer: One of `optimizers.OPTIMIZERS`. Defaults to "adam", Keras's Adam.
        jit_compile: Compile the training step with XLA; None follows
            ``ablate run --jit`` (`device.jit_enabled`). XLA fuses and
            reorders the float32 arithmetic, so the numbers agree with the
            plain step to rounding, not bit for bit: weights within rtol 1e-4
            after 4 epochs (measured: at most half of that), final training
            losses within about 1e-7 relative; over 20 epochs of a depth-10
            stack the training losses drift to about 2e-5 relative. On a CPU
            it is no faster (compiling costs more than it saves).
    """

    epochs: int
    learning_rate: float
    batch_size: int | None = None
    seed: int | Sequence[int] = 0
    shuffle: bool = True
    optimizer: str = "adam"
    jit_compile: bool | None = None

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; received {self.optimizer!r}.")

    @property
    def full_batch(self) -> bool:
        return self.batch_size is None


@dataclass(frozen=True)
class StackRecording:
    """What `fit_stack` records, how often, and to whom.

    Args:
        validation_data: ``(x_val, y_val)``: ``val_loss`` (mean cross-entropy)
            and ``val_accuracy`` at every recorded epoch.
        probe_size: The first ``probe_size`` training examples form a fixed
            probe batch for gradient norms (of the mean cross-entropy) of the
            kernels and of the pre-activations, and unit statistics; 0 records none.
        saturation_threshold: See `callbacks.statistics.saturated_fraction`.
        record_every: Record at step 0, every this many epochs and after the
            last; 0 records nothing.
        loggers: One ``log(metrics, step)`` per member, given its metrics at
            every recorded step.
        record: Called with the step after the loggers, for what the caller
            reads from the stack itself (`member_statistics`).
    """

    validation_data: tuple[np.ndarray, np.ndarray] | None = None
    probe_size: int = 0
    saturation_threshold: float = SATURATION_THRESHOLD
    record_every: int = 1
    loggers: Sequence[TrialLogger] | None = None
    record: Callable[[int], None] | None = None


def fit_stack(
    stack: StackedMLP,
    x: np.ndarray,
    y: np.ndarray,
    example_weights: np.ndarray | None = None,
    *,
    training: StackTraining,
    recording: StackRecording = StackRecording(),
) -> StackedFit:
    """Trains every member of ``stack`` with Adam on the same examples.

    Member ``m`` minimizes its mean cross-entropy on the batch, or with
    ``example_weights`` Σᵢ wᵢ·CE(yᵢ, ŷᵢ) with ``w = example_weights[m]``
    normalized to sum 1 (with 0/1 weights: the mean over the examples it trains
    on), plus its penalty when the stack has penalty coefficients: what
    ``model.fit(x, y)`` minimizes for a model with kernel regularizers.

    Inside a pack's `execution.checkpoints.checkpointing` block (the runner
    opens one around each pack) it saves its state at epoch ends every so
    often and, run again after a stop, continues from the newest checkpoint,
    replaying the logged steps to the loggers, to the same numbers bit for bit
    on a CPU. Not with ``recording.record``, whose reads of the stack cannot be replayed.

    Args:
        stack: The members (trained in place).
        x: ``(n, features)`` float32 inputs, every example any member trains on.
        y: ``(n,)`` integer labels.
        example_weights: ``(M, n)`` non-negative, each row with a positive
            sum; full batch only. Defaults to every example weighing the same.
        training: Epochs, learning rate, regime (mini-batch or full batch), optimizer, shuffles.
        recording: What is recorded and logged (validation, probe statistics).

    Returns:
        The members' histories.
    """
    if recording.loggers is not None and len(recording.loggers) != stack.members:
        raise ValueError(f"loggers needs one logger per member ({stack.members}); received {len(recording.loggers)}.")
    if not training.full_batch and example_weights is not None:
        raise ValueError("example_weights needs full-batch training (batch_size=None).")
    variables = stack.trainable_variables
    updater = stack_optimizer(training.optimizer, variables, training.learning_rate)
    x_all, y_all = tf.constant(x, tf.float32), tf.constant(y, tf.int64)
    train_epoch, shuffles = _epoch_function(stack, x_all, y_all, example_weights, training, updater.apply)
    measure = _Measures(stack, x_all, y_all, recording.validation_data, recording.probe_size, recording.saturation_threshold)
    histories: list[dict[str, list[float]]] = [{} for _ in range(stack.members)]
    # A caller's `record` reads the stack at each step, which a checkpoint cannot replay: no checkpoints then.
    segment = None if recording.record is not None else next_segment(lambda: _signature(stack, x, y, example_weights, training, recording))
    recorded: list[tuple[int, dict[str, list[float]]]] = []  # what a checkpoint replays; kept only when checkpointing

    def add_step(step: int, values: dict[str, np.ndarray]) -> None:
        if segment is not None:
            recorded.append((step, {name: np.asarray(column, np.float64).tolist() for name, column in values.items()}))
        for m in range(stack.members):
            row = {name: float(column[m]) for name, column in values.items()}
            for key, value in row.items():
                histories[m].setdefault(key, []).append(value)
            if recording.loggers is not None and row:
                recording.loggers[m](row, step)

    def record_step(step: int, values: dict[str, np.ndarray]) -> None:
        add_step(step, {**values, **measure.validation(step), **measure.probe()})
        if recording.record is not None:
            recording.record(step)

    checkpoint = _Checkpoint(segment, [*variables, *updater.state], shuffles)
    start, epochs, every = checkpoint.restore(add_step), training.epochs, recording.record_every
    if start == 0 and every:
        record_step(0, {})
    for epoch in range(start + 1, epochs + 1):
        loss, accuracy = train_epoch()
        if every and (epoch % every == 0 or epoch == epochs):
            record_step(epoch, {"loss": loss.numpy(), "accuracy": accuracy.numpy()})
        checkpoint.save_if_due(epoch, epochs, recorded)
    return StackedFit(histories=histories)


def _epoch_function(
    stack: StackedMLP, x_all: tf.Tensor, y_all: tf.Tensor, example_weights: np.ndarray | None, training: StackTraining, apply_gradients: Callable
) -> tuple[Callable[[], tuple[tf.Tensor, tf.Tensor]], _Shuffles | None]:
    """One epoch of ``training``'s regime, returning each member's objective and accuracy; and its shuffles (None full batch)."""
    jit_compile = jit_enabled() if training.jit_compile is None else training.jit_compile
    variables = stack.trainable_variables
    if training.full_batch:
        x_members, y_members, w_members = _member_examples(stack.members, x_all.numpy(), y_all.numpy(), example_weights)

        # No Python control flow depends on tensors here: skipping AutoGraph's
        # conversion saves seconds of tracing.
        @tf.function(autograph=False, jit_compile=jit_compile)
        def full_batch_step() -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                losses, correct = _cross_entropy(stack.logits(x_members), y_members)
                objective = tf.reduce_sum(w_members * losses, axis=1)
                if stack.penalized:
                    objective = objective + stack.penalties()
                total = tf.reduce_sum(objective)
            apply_gradients(tape.gradient(total, variables))
            return objective, tf.reduce_sum(w_members * correct, axis=1)

        return full_batch_step, None

    n, batch_size = int(x_all.shape[0]), training.batch_size
    steps = -(-n // batch_size)

    def minibatch_step(xb: tf.Tensor, yb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            losses, correct = _cross_entropy(stack.logits(xb), yb)
            losses, accuracy = tf.reduce_mean(losses, axis=1), tf.reduce_mean(correct, axis=1)
            if stack.penalized:
                losses = losses + stack.penalties()
            # Members share no weight, so each one's gradient is its own.
            total = tf.reduce_sum(losses)
        apply_gradients(tape.gradient(total, variables))
        return losses, accuracy

    # XLA compiles the step, not the epoch: inside a compiled loop a slice
    # keeps a static size, so a ragged last batch would be padded with
    # examples of the one before. A step compiles once per batch shape.
    train_step = tf.function(minibatch_step, jit_compile=True) if jit_compile else minibatch_step

    @tf.function
    def minibatch_epoch(order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # order: (n,) shared by the members, or (M, n), one per member: its batches then gather (M, batch, ...).
        loss_sum = tf.zeros([stack.members])
        correct_sum = tf.zeros([stack.members])
        for step in tf.range(steps):
            index = order[..., step * batch_size : (step + 1) * batch_size]
            losses, accuracy = train_step(tf.gather(x_all, index), tf.gather(y_all, index))
            size = tf.cast(tf.shape(index)[-1], tf.float32)
            loss_sum += losses * size
            correct_sum += accuracy * size
        return loss_sum / n, correct_sum / n

    shuffles = _Shuffles(training.seed, stack.members, n, training.shuffle)
    return lambda: minibatch_epoch(tf.constant(shuffles.next_order())), shuffles


class _Shuffles:
    """Each epoch's batch order: ``default_rng(seed).permutation(n)``, shared, or per member from its own seed."""

    def __init__(self, seed: int | Sequence[int], members: int, n: int, shuffle: bool):
        self.seeds = [int(seed)] * members if np.ndim(seed) == 0 else [int(s) for s in seed]
        if len(self.seeds) != members:
            raise ValueError(f"seed needs one value, or one per member ({members}); received {len(self.seeds)}.")
        self.n, self.shuffle = n, shuffle
        self.rngs = {s: np.random.default_rng(s) for s in self.seeds}

    def states(self) -> dict[str, dict]:
        """Each generator's state, for a checkpoint."""
        return {str(s): rng.bit_generator.state for s, rng in self.rngs.items()}

    def set_states(self, states: dict[str, dict]) -> None:
        for s, rng in self.rngs.items():
            rng.bit_generator.state = states[str(s)]

    def next_order(self) -> np.ndarray:
        """``(n,)`` when the members share a seed (or nothing is shuffled), else ``(M, n)``."""
        if not self.shuffle:
            return np.arange(self.n)
        orders = {s: rng.permutation(self.n) for s, rng in self.rngs.items()}
        return orders[self.seeds[0]] if len(orders) == 1 else np.stack([orders[s] for s in self.seeds])


class _Checkpoint:
    """`fit_stack`'s checkpoint (`execution.checkpoints`): weights and optimizer state, shuffles and the recorded steps.

    Args:
        segment: The loop's segment of the pack's checkpoints, or None (no checkpoints).
        variables: The stack's weights, then the optimizer's state.
        shuffles: The mini-batch shuffles, or None (full batch).
    """

    def __init__(self, segment, variables: list, shuffles: _Shuffles | None):
        self.segment, self.variables, self.shuffles = segment, variables, shuffles

    def restore(self, add_step: Callable[[int, dict], None]) -> int:
        """Loads the segment's checkpoint, if any, replaying its recorded steps to ``add_step``; returns its epoch (0: none)."""
        saved = self.segment.load() if self.segment is not None else None
        if saved is None:
            return 0
        meta, arrays = saved
        for i, variable in enumerate(self.variables):
            variable.assign(arrays[f"variable/{i}"])
        if self.shuffles is not None:
            self.shuffles.set_states(meta["shuffles"])
        # The new trials' runs get the metrics the stopped ones had logged.
        for step, values in meta["recorded"]:
            add_step(step, values)
        return int(meta["epoch"])

    def save_if_due(self, epoch: int, epochs: int, recorded: list) -> None:
        """Saves the state after ``epoch`` when the segment's interval has passed (never after the last)."""
        if self.segment is None or epoch >= epochs or not self.segment.due():
            return
        arrays = {f"variable/{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(self.variables)}
        shuffles = self.shuffles.states() if self.shuffles is not None else None
        self.segment.save(epoch, epochs, {"shuffles": shuffles, "recorded": recorded}, arrays)


def _signature(stack, x, y, example_weights, training: StackTraining, recording: StackRecording) -> dict:
    """What a `fit_stack` checkpoint must match to be resumed: the net, the data and the training's settings."""
    arrays = [x, y] + ([] if example_weights is None else [example_weights]) + list(recording.validation_data or ())
    t = training
    settings = [t.epochs, t.learning_rate, t.batch_size, t.seed, t.shuffle, recording.probe_size, t.optimizer, recording.record_every]
    return {
        "loop": "fit_stack",
        "variables": [list(v.shape) for v in stack.trainable_variables],
        "data": digest(*arrays),
        "initial": digest(*(keras.ops.convert_to_numpy(v) for v in stack.trainable_variables)),
        "settings": [np.asarray(value).tolist() if isinstance(value, (list, tuple, np.ndarray)) else value for value in settings],
    }


def _member_examples(members: int, x: np.ndarray, y: np.ndarray, example_weights: np.ndarray | None):
    """Per member, its own examples and their normalized weights, ``(M, count, ...)`` padded with weight-0 copies."""
    weights = np.ones((members, len(x)), np.float32) if example_weights is None else np.asarray(example_weights, np.float32)
    if weights.shape != (members, len(x)) or np.any(weights < 0) or np.any(weights.sum(axis=1) <= 0):
        raise ValueError(
            f"example_weights must be non-negative, shape ({members}, {len(x)}), with a positive row sum; "
            f"received shape {weights.shape}."
        )
    # Padding to a common count with weight 0: no member pays for the
    # examples it leaves out (its CV fold).
    used = [np.flatnonzero(row) for row in weights]
    count = max(len(index) for index in used)
    index = np.zeros((members, count), np.int64)
    member_weights = np.zeros((members, count), np.float32)
    for m, own in enumerate(used):
        index[m, : len(own)] = own
        member_weights[m, : len(own)] = weights[m, own] / weights[m, own].sum()
    return (
        tf.constant(np.asarray(x, np.float32)[index]),
        tf.constant(np.asarray(y, np.int64)[index]),
        tf.constant(member_weights),
    )


def _cross_entropy(logits: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per member and example, ``(M, n)``: the cross-entropy of the logits, and 1.0 where the argmax is right."""
    labels = tf.broadcast_to(y, tf.shape(logits)[:2])
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)
    return losses, correct


class _Measures:
    """What `fit_stack` measures besides the running loss: validation metrics and probe statistics."""

    def __init__(self, stack, x_all, y_all, validation_data, probe_size: int, saturation_threshold: float):
        self.stack = stack
        self.kernel_names = [f"dense_{i}" for i in range(stack.depth)] + ["output"]
        self.signal_names = [f"act_{i}" for i in range(stack.depth)] + ["output"]
        self.has_validation = validation_data is not None
        self.has_probe = probe_size > 0
        x_val, y_val = validation_data if self.has_validation else (x_all[:0], y_all[:0])
        x_v, y_v = tf.constant(x_val, tf.float32), tf.constant(y_val, tf.int64)
        x_probe, y_probe = x_all[:probe_size], y_all[:probe_size]
        kernels = stack.kernels
        widths = tf.constant(stack.widths, tf.float32)

        @tf.function
        def evaluate() -> tuple[tf.Tensor, tf.Tensor]:
            losses, correct = _cross_entropy(stack.logits(x_v), y_v)
            return tf.reduce_mean(losses, axis=1), tf.reduce_mean(correct, axis=1)

        @tf.function
        def probe() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                preacts, logits = stack.preactivations(x_probe)
                losses, _ = _cross_entropy(logits, y_probe)
                total = tf.reduce_sum(tf.reduce_mean(losses, axis=1))
            # One backward pass: the kernels' gradients and the signal backpropagation carries to each pre-activation.
            grads = tape.gradient(total, [*kernels, *preacts, logits])
            norms = tf.stack([tf.norm(tf.reshape(g, [stack.members, -1]), axis=1) for g in grads[: len(kernels)]])
            signals = tf.stack([tf.norm(tf.reshape(g, [stack.members, -1]), axis=1) for g in grads[len(kernels) :]])
            if not preacts:
                empty = tf.zeros([0, stack.members])
                return norms, signals, empty, empty
            derivatives = stack.activation_derivatives(preacts)
            if stack.unit_masks is None:
                dead = tf.stack([dead_fraction(d) for d in derivatives])
                saturated = tf.stack([saturated_fraction(d, saturation_threshold) for d in derivatives])
            else:
                # Fractions of each member's own units: padded units count for none.
                own = stack.unit_masks[:, 0, :]
                dead = tf.stack(
                    [tf.reduce_sum(tf.cast(tf.reduce_all(tf.equal(d, 0.0), axis=-2), tf.float32) * own, -1) / widths for d in derivatives]
                )
                saturated = tf.stack(
                    [
                        tf.reduce_sum(tf.cast(tf.abs(d) < saturation_threshold, tf.float32) * own[:, None, :], [-2, -1])
                        / (widths * tf.cast(tf.shape(d)[-2], tf.float32))
                        for d in derivatives
                    ]
                )
            return norms, signals, dead, saturated

        self._evaluate, self._probe = evaluate, probe

    def validation(self, step: int) -> dict[str, np.ndarray]:
        if not self.has_validation or step == 0:
            return {}
        val_loss, val_accuracy = self._evaluate()
        return {"val_loss": val_loss.numpy(), "val_accuracy": val_accuracy.numpy()}

    def probe(self) -> dict[str, np.ndarray]:
        if not self.has_probe:
            return {}
        norms, signals, dead, saturated = (t.numpy() for t in self._probe())
        values = {f"grad_norm/{name}": norms[i] for i, name in enumerate(self.kernel_names)}
        values.update({f"signal_norm/{name}": signals[i] for i, name in enumerate(self.signal_names)})
        values.update({f"dead_fraction/act_{i}": dead[i] for i in range(self.stack.depth)})
        values.update({f"saturated_fraction/act_{i}": saturated[i] for i in range(self.stack.depth)})
        return values


def member_statistics(
    stack: StackedMLP,
    x: np.ndarray,
    y: np.ndarray,
    train_mask: np.ndarray,
    val_mask: np.ndarray | None,
    zero_tolerance: float,
) -> dict[str, np.ndarray]:
    """Per member ``(M,)``: losses and errors on its train/validation examples, penalty, weight norms, sparsity.

    Args:
        stack: The members.
        x, y: The examples the masks index.
        train_mask: ``(M, n)`` 0/1: the member's training examples.
        val_mask: ``(M, n)`` 0/1: its held-out examples, or None.
        zero_tolerance: |w| below this counts as a near-zero weight.
    """
    logits = stack.logits(tf.constant(x, tf.float32))
    losses, correct = (t.numpy() for t in _cross_entropy(logits, tf.constant(y, tf.int64)))
    wrong = 1.0 - correct
    predicted = np.argmax(logits.numpy(), axis=-1)

    def mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return (values * mask).sum(axis=1) / mask.sum(axis=1)

    weights = stack.all_member_weights()
    kernels = [np.concatenate([w.ravel() for w in member[0::2]]).astype(np.float64) for member in weights]
    biases = [np.concatenate([w.ravel() for w in member[1::2]]).astype(np.float64) for member in weights]
    penalty = stack.penalties().numpy().astype(np.float64)
    data_loss = mean(losses, train_mask)
    stats = {
        "train_loss": data_loss,
        "penalty_term": penalty,
        "objective": data_loss + penalty,
        "train_error": mean(wrong, train_mask),
        "weight_l2_norm": np.array([np.sqrt(np.sum(k * k)) for k in kernels]),
        "weight_l1_norm": np.array([np.sum(np.abs(k)) for k in kernels]),
        "near_zero_fraction": np.array([np.mean(np.abs(k) < zero_tolerance) for k in kernels]),
        "bias_l2_norm": np.array([np.sqrt(np.sum(b * b)) for b in biases]),
        "distinct_predictions": np.array(
            [len(np.unique(predicted[m][train_mask[m] > 0])) for m in range(stack.members)], dtype=float
        ),
    }
    if val_mask is not None:
        stats["val_loss"] = mean(losses, val_mask)
        stats["val_error"] = mean(wrong, val_mask)
    return stats


@dataclass(frozen=True)
class PackRun:
    """A trained pack: the stack, and for each configuration its member index and history."""

    stack: StackedMLP
    members: list[int]
    histories: list[dict[str, list[float]]]


def train_pack(configs: list[dict], loggers: list, x_train, y_train, x_val, y_val, num_classes: int) -> PackRun:
    """Trains configurations that differ only in ``activation``, ``initializer`` and ``seed`` as one stack.

    Each configuration reads ``depth``, ``width``, ``epochs``, ``batch_size``,
    ``learning_rate``, ``seed`` and optionally ``probe_size``; ``loggers[i]``
    receives configuration ``i``'s metrics at every step. Trained with the
    fused Adam (see `OPTIMIZERS`).

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
        seed=[configs[i]["seed"] for i in order],
    )
    fit = fit_stack(
        stack,
        x_train,
        y_train,
        training=StackTraining(
            epochs=first["epochs"],
            learning_rate=first["learning_rate"],
            batch_size=first["batch_size"],
            seed=[configs[i]["seed"] for i in order],
            optimizer="fused_adam",
        ),
        recording=StackRecording(
            validation_data=(x_val, y_val), probe_size=first.get("probe_size", 256), loggers=[loggers[trial] for trial in order]
        ),
    )
    members = [member_of[i] for i in range(len(configs))]
    return PackRun(stack, members, [fit.histories[m] for m in members])
