"""Many `build_mlp` classifiers of one depth, each with its own L1/L2 penalty, trained as one graph.

Used where a grid varies penalties, widths or folds of small MLPs (l1_l2_penalty,
capacity_overfitting): one traced graph instead of one Keras model per trial.
Members are independent, so each gets the update it would get alone
(``tests/ablations/test_l1_l2_penalty.py`` checks it against Keras's own
``train_on_batch``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from models.activations import activation_function


@dataclass
class PenalizedStack:
    """Many same-depth `build_mlp` classifiers held as stacked weights, each with its own penalty.

    Member ``m``'s kernel of layer ``l`` is ``kernels[l][m]``, zero-padded to
    the widest member; its hidden units beyond its own width are masked out,
    so they never change (their gradients are exactly 0). The penalty of
    member ``m`` is ``Σ_l l1[l, m]·Σ|K_l[m]| + l2[l, m]·Σ K_l[m]²``: Keras's
    ``L1L2`` on every kernel, read from the members' own regularizers.
    Members share no weight and Adam's update is elementwise, so training the
    sum of the members' objectives gives each member exactly the update it
    would get alone; the stack only saves Keras's per-model build and trace.

    Args:
        kernels: Per layer, an ``(M, fan_in, fan_out)`` variable.
        biases: Per layer, an ``(M, fan_out)`` variable.
        unit_masks: Per hidden layer, ``(M, width)``: 1 for a member's own units.
        l1: ``(layers, M)`` L1 coefficients of the kernels.
        l2: ``(layers, M)`` L2 coefficients of the kernels.
        widths: Each member's hidden width.
        activation: The hidden activation's name (shared by the members).
    """

    kernels: list[tf.Variable]
    biases: list[tf.Variable]
    unit_masks: list[tf.Tensor]
    l1: tf.Tensor
    l2: tf.Tensor
    widths: list[int]
    activation: str

    @property
    def members(self) -> int:
        return len(self.widths)

    @property
    def depth(self) -> int:
        return len(self.kernels) - 1

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        """``(M, n, classes)`` logits of every member on ``x``: ``(n, features)`` shared, or ``(M, n, features)``."""
        act = activation_function(self.activation)
        if len(x.shape) == 2:
            x = tf.broadcast_to(x, [self.members, *x.shape])
        hidden = tf.matmul(x, self.kernels[0]) + self.biases[0][:, None, :]
        for layer in range(1, len(self.kernels)):
            hidden = act(hidden) * self.unit_masks[layer - 1][:, None, :]
            hidden = tf.matmul(hidden, self.kernels[layer]) + self.biases[layer][:, None, :]
        return hidden

    def penalties(self) -> tf.Tensor:
        """``(M,)``: each member's Keras penalty Σ_layers (l1·Σ|K| + l2·ΣK²); biases are not penalized."""
        l1_sums = tf.stack([tf.reduce_sum(tf.abs(k), axis=[1, 2]) for k in self.kernels])
        l2_sums = tf.stack([tf.reduce_sum(tf.square(k), axis=[1, 2]) for k in self.kernels])
        return tf.reduce_sum(self.l1 * l1_sums + self.l2 * l2_sums, axis=0)

    def member_weights(self, member: int) -> list[np.ndarray]:
        """Member ``member``'s weights in `build_mlp` order: kernel, bias of dense_0, ..., output."""
        return self.all_member_weights()[member]

    def all_member_weights(self) -> list[list[np.ndarray]]:
        """Every member's weights, unpadded, in `build_mlp` order (one read of the variables)."""
        kernels = [k.numpy() for k in self.kernels]
        biases = [b.numpy() for b in self.biases]
        result = []
        for member, width in enumerate(self.widths):
            weights = []
            for layer, (kernel, bias) in enumerate(zip(kernels, biases)):
                fan_in = kernel.shape[1] if layer == 0 else width
                fan_out = bias.shape[1] if layer == self.depth else width
                weights += [kernel[member, :fan_in, :fan_out], bias[member, :fan_out]]
            result.append(weights)
        return result


# build_mlp's layer names without batch norm, dropout or augmentation.
_STACKABLE_LAYER = re.compile(r"inputs|dense_\d+|act_\d+|output")


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    depth = sum(1 for layer in model.layers if layer.name.startswith("dense_"))
    return [model.get_layer(f"dense_{i}") for i in range(depth)] + [model.get_layer("output")]


def penalty_coefficients(regularizer) -> tuple[float, float]:
    if regularizer is None:
        return 0.0, 0.0
    if not isinstance(regularizer, keras.regularizers.L1L2):
        raise ValueError(f"Stacked training handles L1L2 kernel penalties only; received {regularizer!r}.")
    return float(regularizer.l1), float(regularizer.l2)


def stack_models(models: Sequence[keras.Model], activation: str) -> PenalizedStack:
    """Stacks `build_mlp` models of one depth (widths may differ) with their current weights.

    Args:
        models: Models from `models.build_mlp` with the same input size, depth
            and number of classes; no batch norm, dropout or bias penalty.
        activation: Their hidden activation (any but "prelu").

    Raises:
        ValueError: for models the stack cannot represent.
    """
    if not models:
        raise ValueError("stack_models needs at least one model.")
    layers = [dense_layers(model) for model in models]
    depths = {len(member) - 1 for member in layers}
    if len(depths) != 1:
        raise ValueError(f"Stacked members need one depth; received depths {sorted(depths)}.")
    for model in models:
        extra = [layer.name for layer in model.layers if not _STACKABLE_LAYER.fullmatch(layer.name)]
        if extra:
            raise ValueError(f"Model {model.name!r} has layers the stack does not apply: {', '.join(extra)}.")
        if any(layer.bias_regularizer is not None for layer in dense_layers(model)):
            raise ValueError(f"Model {model.name!r} penalizes its biases; the lecture (and this stack) does not.")
    depth = depths.pop()
    widths = [member[0].units for member in layers] if depth else [0] * len(models)
    width = max(widths) if depth else 0
    fan_in = layers[0][0].kernel.shape[0]
    classes = layers[0][-1].units
    dims = [fan_in] + [width] * depth + [classes]
    kernels, biases, l1, l2 = [], [], [], []
    for index in range(depth + 1):
        kernel = np.zeros((len(models), dims[index], dims[index + 1]), np.float32)
        bias = np.zeros((len(models), dims[index + 1]), np.float32)
        for m, member in enumerate(layers):
            k, b = member[index].get_weights()
            kernel[m, : k.shape[0], : k.shape[1]] = k
            bias[m, : b.shape[0]] = b
        kernels.append(tf.Variable(kernel, name=f"kernel_{index}"))
        biases.append(tf.Variable(bias, name=f"bias_{index}"))
        coefficients = [penalty_coefficients(member[index].kernel_regularizer) for member in layers]
        l1.append([c[0] for c in coefficients])
        l2.append([c[1] for c in coefficients])
    masks = [
        tf.constant((np.arange(width)[None, :] < np.array(widths)[:, None]).astype(np.float32)) for _ in range(depth)
    ]
    return PenalizedStack(
        kernels=kernels,
        biases=biases,
        unit_masks=masks,
        l1=tf.constant(l1, tf.float32),
        l2=tf.constant(l2, tf.float32),
        widths=widths,
        activation=activation,
    )


def _cross_entropy(stack: PenalizedStack, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per member and example: cross-entropy ``(M, n)`` and 0/1 error ``(M, n)``."""
    return _cross_entropy_from_logits(stack.logits(x), y)


def _cross_entropy_from_logits(logits: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    labels = tf.broadcast_to(y, tf.shape(logits)[:2])
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    wrong = tf.cast(tf.not_equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)
    return losses, wrong


def fit_stack(
    stack: PenalizedStack,
    x: np.ndarray,
    y: np.ndarray,
    example_weights: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    record_every: int = 0,
    record: Callable[[int], None] | None = None,
) -> None:
    """Full-batch Adam on every member's mean data loss plus its penalty, as Keras's ``fit`` does.

    Member ``m`` minimizes Σᵢ wᵢ·CE(yᵢ, ŷᵢ) + penalty_m with ``w = example_weights[m]``
    normalized to sum 1: with 0/1 weights, the mean cross-entropy over the
    examples it trains on (its cross-validation folds), which is what
    ``model.fit(x, y, batch_size=len(x))`` minimizes for a model with kernel
    regularizers.

    Args:
        stack: The members (trained in place).
        x: ``(n, features)`` float32 inputs, every example any member trains on.
        y: ``(n,)`` integer labels.
        example_weights: ``(M, n)`` non-negative; 0 leaves an example out of a member's loss.
        epochs: Full-batch steps.
        learning_rate: Adam's learning rate (Keras's other Adam defaults).
        record_every: Call ``record(step)`` at step 0, every this many steps
            and after the last step; 0 records nothing.
        record: Called with the step number.
    """
    weights = np.asarray(example_weights, np.float32)
    if weights.shape != (stack.members, len(x)) or np.any(weights < 0) or np.any(weights.sum(axis=1) <= 0):
        raise ValueError(
            f"example_weights must be non-negative, shape ({stack.members}, {len(x)}), with a positive row sum; "
            f"received shape {weights.shape}."
        )
    # Each member's own examples, padded with weight-0 copies to a common
    # count: no member pays for the examples it leaves out (its CV fold).
    used = [np.flatnonzero(row) for row in weights]
    count = max(len(index) for index in used)
    index = np.zeros((stack.members, count), np.int64)
    member_weights = np.zeros((stack.members, count), np.float32)
    for m, own in enumerate(used):
        index[m, : len(own)] = own
        member_weights[m, : len(own)] = weights[m, own] / weights[m, own].sum()
    x_members = tf.constant(np.asarray(x, np.float32)[index])
    y_members = tf.constant(np.asarray(y, np.int64)[index])
    w_members = tf.constant(member_weights)
    variables = [*stack.kernels, *stack.biases]
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)

    # No Python control flow depends on tensors here: skipping AutoGraph's
    # conversion saves seconds of tracing.
    @tf.function(autograph=False)
    def step() -> None:
        with tf.GradientTape() as tape:
            losses, _ = _cross_entropy(stack, x_members, y_members)
            objective = tf.reduce_sum(tf.reduce_sum(w_members * losses, axis=1) + stack.penalties())
        optimizer.apply_gradients(zip(tape.gradient(objective, variables), variables))

    if record is not None and record_every:
        record(0)
    for epoch in range(1, epochs + 1):
        step()
        if record is not None and record_every and (epoch % record_every == 0 or epoch == epochs):
            record(epoch)


def member_statistics(
    stack: PenalizedStack,
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
    losses, wrong = (t.numpy() for t in _cross_entropy_from_logits(logits, tf.constant(y, tf.int64)))
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
