"""Many MLPs held as stacked weights, so a grid of small nets trains as one model.

A grid over activations, initializers, widths or penalties at a fixed depth is
many small MLPs. Trained one by one, each pays Keras's model build and graph
tracing, which dominates their run time on a CPU. Stacking the kernels of the
``M`` members into one ``(M, fan_in, fan_out)`` tensor runs all of them in one
batched matmul per layer and one traced graph. The members stay independent:
no weight is shared, each member's loss only reaches its own slice, and Adam's
update is elementwise, so training the sum of the member objectives gives every
member exactly the update it would get alone (``tests/engine/train/test_stacked.py``
checks this against separate ``keras.Model.fit`` runs).

The training loop is `ablations.engine.train.fit_stack`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import groupby

import keras
import numpy as np
import tensorflow as tf

from models.activations import PRELU_INITIAL_SLOPE, activation_function
from models.dropout import InvertedDropout, check_keep_prob
from models.initializers import get_initializer
from models.mlp import DROPOUT_SEED_OFFSET, INPUT_DROPOUT_SEED_OFFSET, build_mlp, check_max_norm


class StackedMLP(keras.layers.Layer):
    """``M`` independent MLPs of one depth, trained and evaluated in one pass.

    Members may differ in activation, kernel initializer, hidden width, L1/L2
    kernel penalty, dropout keep probabilities and max-norm constraint. A
    narrower member's kernels are zero-padded to the widest member and its
    extra hidden units are masked out, so they never change (their gradients
    are exactly 0).

    Dropout is `models.InvertedDropout`'s, member by member: at training step
    ``t`` a member of seed ``s`` draws the masks that ``build_mlp(seed=s)``'s
    dropout layers draw at their ``t``-th training call (the same stateless
    uniform numbers), so a member sees the masks its lone twin would.

    Args:
        input_dim: Number of input features.
        num_classes: Number of output logits of each member.
        depth: Hidden layers of each member (0 gives multinomial logistic regression).
        width: Units of each hidden layer: one for every member, or one per member.
        activations: One activation name per member (see `models.activations`).
            "prelu" members get a learnable slope per unit, starting at
            `PRELU_INITIAL_SLOPE` as `models.activations.activation_layer` does.
        initializers: One kernel initializer name per member (biases start at 0).
        l1: L1 coefficient of every kernel of a member (Keras's ``L1L2``: the
            plain sum, biases not penalized): one for every member, one per
            member, or an array ``(depth + 1, M)`` per layer and member.
            Defaults to None: no penalty term at all.
        l2: The same for the L2 coefficient.
        seed: Seeds the initializers: one for every member, or one per member.
            Layer ``l`` of a member is drawn from its ``seed + l``, as
            `models.build_mlp` draws it, so a member starts from the weights
            ``build_mlp(seed=seed)`` would, and members that share a seed, an
            initializer and a width start alike and differ only in what is
            compared.
        initial_weights: Instead of ``initializers``: per member, its kernels
            and biases in `member_weights` order.
        keep_prob: Keep probability of the hidden units (the dropout after
            each hidden layer): one for every member, or one per member.
            Defaults to 1 (no dropout).
        input_keep_prob: The same for the input features. Defaults to 1.
        max_norm: Most L2 norm of the weights into each hidden unit, enforced
            after every update as ``keras.constraints.MaxNorm`` enforces it:
            one for every member, or one per member (None or inf: that member
            is unconstrained). Defaults to None.

    Example:

    >>> stack = StackedMLP(40, 10, depth=3, width=32,
    ...                    activations=["relu", "sigmoid"],
    ...                    initializers=["glorot_uniform"] * 2, seed=0)
    >>> stack(np.zeros((5, 40), "float32")).shape
    TensorShape([2, 5, 10])
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        *,
        depth: int,
        width: int | Sequence[int],
        activations: Sequence[str],
        initializers: Sequence[str] | None = None,
        l1: float | Sequence[float] | np.ndarray | None = None,
        l2: float | Sequence[float] | np.ndarray | None = None,
        seed: int | Sequence[int] = 0,
        initial_weights: Sequence[Sequence[np.ndarray]] | None = None,
        keep_prob: float | Sequence[float] = 1.0,
        input_keep_prob: float | Sequence[float] = 1.0,
        max_norm: float | Sequence[float | None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        members = len(activations)
        if (initializers is None) == (initial_weights is None):
            raise ValueError("StackedMLP needs either initializers or initial_weights, not both.")
        if members == 0 or len(initializers if initial_weights is None else initial_weights) != members:
            what = "initializer" if initial_weights is None else "list of initial weights"
            received = len(initializers if initial_weights is None else initial_weights)
            raise ValueError(
                f"StackedMLP needs one activation and one {what} per member; "
                f"received {members} activations and {received} {what}s."
            )
        widths = [width] * members if np.ndim(width) == 0 else list(width)
        if len(widths) != members:
            raise ValueError(f"StackedMLP needs one width, or one per member ({members}); received {len(widths)} widths.")
        if depth < 0 or min(widths) < 1:
            raise ValueError(f"depth must be >= 0 and every width >= 1; received depth={depth}, width={width}.")
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.depth = int(depth)
        self.widths = [int(w) for w in widths]
        self.activations = list(activations)
        self.initializers = None if initializers is None else list(initializers)
        seeds = [seed] * members if np.ndim(seed) == 0 else [int(s) for s in seed]
        if len(seeds) != members:
            raise ValueError(f"StackedMLP needs one seed, or one per member ({members}); received {len(seeds)} seeds.")
        self.seed = int(seed) if np.ndim(seed) == 0 else seeds
        self.seeds = seeds
        self.members = members
        self.keep_probs = _per_member(keep_prob, "keep_prob", members, check_keep_prob)
        self.input_keep_probs = _per_member(input_keep_prob, "input_keep_prob", members, check_keep_prob)
        self.max_norms = None if max_norm is None else _per_member(max_norm, "max_norm", members, _check_max_norm)
        # Penalty coefficients per layer and member; None: no penalty term.
        self.l1 = None if l1 is None and l2 is None else _coefficients(l1, "l1", self.depth + 1, members)
        self.l2 = None if self.l1 is None else _coefficients(l2, "l2", self.depth + 1, members)
        # Members with the same activation are applied in one op; keeping runs
        # contiguous keeps that to one op per distinct activation.
        self._groups = [(name, len(list(run))) for name, run in groupby(self.activations)]
        self._functions = {
            name: _prelu_placeholder if name == "prelu" else activation_function(name)
            for name, _ in self._groups
        }
        width = max(self.widths)
        # Only narrower members need masking; with one width nothing is padded.
        self.unit_masks = (
            None
            if len(set(self.widths)) == 1
            else tf.constant((np.arange(width)[None, None, :] < np.array(self.widths)[:, None, None]).astype(np.float32))
        )
        dims = [self.input_dim] + [width] * self.depth + [self.num_classes]
        self.kernels, self.biases, self.slopes = [], [], []
        for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            kernel, bias = self._initial_layer(layer, fan_in, fan_out, initial_weights)
            self.kernels.append(self.add_weight(shape=kernel.shape, initializer=keras.initializers.Constant(kernel), name=f"kernel_{layer}"))
            self.biases.append(self.add_weight(shape=bias.shape, initializer=keras.initializers.Constant(bias), name=f"bias_{layer}"))
            if layer < self.depth and "prelu" in self._functions:
                slope = keras.initializers.Constant(PRELU_INITIAL_SLOPE)
                self.slopes.append(self.add_weight(shape=(members, 1, fan_out), initializer=slope, name=f"slope_{layer}"))

    def _initial_layer(self, layer: int, fan_in: int, fan_out: int, initial_weights) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``layer``'s padded ``(M, fan_in, fan_out)`` kernel and ``(M, 1, fan_out)`` bias: drawn, or the given weights."""
        kernel = np.zeros((self.members, fan_in, fan_out), np.float32)
        bias = np.zeros((self.members, 1, fan_out), np.float32)
        for member in range(self.members):
            rows, columns = self._member_shape(member, layer)
            if initial_weights is None:
                kernel[member, :rows, :columns] = _draw(self.initializers[member], self.seeds[member] + layer, (rows, columns))
            else:
                kernel[member, :rows, :columns] = initial_weights[member][2 * layer]
                bias[member, 0, :columns] = initial_weights[member][2 * layer + 1]
        return kernel, bias

    score_examples: int | None = None
    """Examples per scoring pass over all members (`fit_members`); None: a whole split at once (an MLP's are small)."""

    @property
    def example_shape(self) -> tuple[int]:
        """One example's shape: ``(input_dim,)``."""
        return (self.input_dim,)

    @property
    def penalized(self) -> bool:
        """Whether the members' objectives include their kernel penalties (coefficients were given)."""
        return self.l1 is not None

    def _member_shape(self, member: int, layer: int) -> tuple[int, int]:
        width = self.widths[member]
        fan_in = self.input_dim if layer == 0 else width
        fan_out = self.num_classes if layer == self.depth else width
        return fan_in, fan_out

    def _activate(self, z: tf.Tensor, layer: int) -> tf.Tensor:
        if len(self._groups) == 1 and self.activations[0] != "prelu":
            hidden = self._functions[self.activations[0]](z)
        else:
            parts = tf.split(z, [size for _, size in self._groups], axis=0)
            outputs = []
            start = 0
            for (name, size), part in zip(self._groups, parts):
                if name == "prelu":
                    slope = self.slopes[layer][start : start + size]
                    outputs.append(tf.nn.relu(part) - slope * tf.nn.relu(-part))
                else:
                    outputs.append(self._functions[name](part))
                start += size
            hidden = outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=0)
        return hidden if self.unit_masks is None else hidden * self.unit_masks

    def preactivations(self, inputs: tf.Tensor, dropout_step: tf.Tensor | None = None) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Runs every member on ``inputs``.

        Args:
            inputs: ``(batch, input_dim)``, shared by the members, or
                ``(M, batch, input_dim)``, one batch per member.
            dropout_step: None for inference (no dropout); in training, the
                step (from 0) whose dropout masks to apply.

        Returns:
            The hidden pre-activations, one ``(M, batch, width)`` tensor per
            hidden layer, and the logits of shape ``(M, batch, num_classes)``.
        """
        if len(inputs.shape) == 2:
            inputs = tf.broadcast_to(inputs, [self.members, tf.shape(inputs)[0], self.input_dim])
        hidden = self._dropout(inputs, None, dropout_step)
        preacts = []
        for layer, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            z = tf.matmul(hidden, kernel) + bias
            if layer == self.depth:
                return preacts, z
            preacts.append(z)
            hidden = self._dropout(self._activate(z, layer), layer, dropout_step)
        raise AssertionError("unreachable")

    def logits(self, inputs: tf.Tensor, dropout_step: tf.Tensor | None = None) -> tf.Tensor:
        """``(M, batch, num_classes)`` logits of every member (see `preactivations` for the arguments)."""
        return self.preactivations(inputs, dropout_step)[1]

    def _dropout(self, x: tf.Tensor, layer: int | None, step: tf.Tensor | None) -> tf.Tensor:
        """Each member's inverted dropout after hidden layer ``layer`` (None: on the inputs) at training step ``step``.

        Member ``m`` keeps a unit where ``InvertedDropout(keep, seed)`` would at
        its ``step``-th call: the stateless uniform numbers of seed state
        ``[seed, step]``, drawn over the member's own (unpadded) units.
        """
        keep = self.input_keep_probs if layer is None else self.keep_probs
        if step is None or np.all(keep == 1.0):
            return x
        offset = INPUT_DROPOUT_SEED_OFFSET if layer is None else DROPOUT_SEED_OFFSET + layer
        batch, units = tf.shape(x)[1], x.shape[2]
        masks = []
        for member in range(self.members):
            if keep[member] == 1.0:
                masks.append(tf.ones([batch, units], x.dtype))
                continue
            member_units = units if layer is None else self.widths[member]
            uniform = tf.random.stateless_uniform(
                [batch, member_units], seed=_keras_seed(self.seeds[member] + offset, step), minval=tf.constant(0.0), maxval=tf.constant(1.0)
            )
            mask = tf.cast(uniform < keep[member], x.dtype)
            masks.append(mask if member_units == units else tf.pad(mask, [[0, 0], [0, units - member_units]]))
        # InvertedDropout's formula, a * d / keep; a member that keeps all is a * 1 / 1, unchanged.
        return x * tf.stack(masks) / tf.constant(keep[:, None, None], x.dtype)

    def apply_max_norm(self) -> None:
        """Enforces each constrained member's max-norm on its hidden kernels, as ``keras.constraints.MaxNorm`` would."""
        if self.max_norms is None:
            return
        constrained = tf.constant(np.isfinite(self.max_norms)[:, None, None])
        limit = tf.constant(np.where(np.isfinite(self.max_norms), self.max_norms, 0.0)[:, None, None], tf.float32)
        for kernel in self.kernels[: self.depth]:
            # Norms over each unit's incoming weights (Keras's axis 0 of a Dense kernel); padding adds zeros.
            norms = tf.sqrt(tf.reduce_sum(tf.square(kernel), axis=1, keepdims=True))
            desired = tf.clip_by_value(norms, 0.0, limit)
            kernel.assign(tf.where(constrained, kernel * (desired / (keras.config.epsilon() + norms)), kernel))

    def activation_derivatives(self, preacts: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """Elementwise f'(z) of each member's activation at the given pre-activations (0 on padded units)."""
        # Detached copies make each layer's term depend on its own z alone, so a
        # single gradient call yields every layer's derivative.
        detached = [tf.stop_gradient(z) for z in preacts]
        with tf.GradientTape() as tape:
            tape.watch(detached)
            total = tf.add_n([tf.reduce_sum(self._activate(z, layer)) for layer, z in enumerate(detached)])
        # f is elementwise, so d(sum f(z))/dz is f'(z) at every entry.
        return tape.gradient(total, detached)

    def penalties(self) -> tf.Tensor:
        """``(M,)``: each member's Keras penalty Σ_layers (l1·Σ|K| + l2·ΣK²); biases are not penalized."""
        if self.l1 is None:
            return tf.zeros([self.members])
        l1_sums = tf.stack([tf.reduce_sum(tf.abs(k), axis=[1, 2]) for k in self.kernels])
        l2_sums = tf.stack([tf.reduce_sum(tf.square(k), axis=[1, 2]) for k in self.kernels])
        return tf.reduce_sum(self.l1 * l1_sums + self.l2 * l2_sums, axis=0)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.logits(inputs)

    def member_weights(self, member: int) -> list[np.ndarray]:
        """Member ``member``'s kernels and biases, unpadded, in `build_mlp` order: dense_0, ..., output."""
        return self.all_member_weights()[member]

    def all_member_weights(self) -> list[list[np.ndarray]]:
        """Every member's kernels and biases, unpadded, in `build_mlp` order (one read of the variables)."""
        kernels = [keras.ops.convert_to_numpy(k) for k in self.kernels]
        biases = [keras.ops.convert_to_numpy(b) for b in self.biases]
        result = []
        for member in range(self.members):
            weights = []
            for layer, (kernel, bias) in enumerate(zip(kernels, biases)):
                fan_in, fan_out = self._member_shape(member, layer)
                weights += [kernel[member, :fan_in, :fan_out], bias[member, 0, :fan_out]]
            result.append(weights)
        return result

    def subset(self, members: Sequence[int]) -> StackedMLP:
        """A new stack of the given members (in that order) with their current weights, slopes and penalties.

        Args:
            members: Indices of the members to keep; they must share one width,
                so that the new stack pads as this one does.
        """
        members = [int(m) for m in members]
        if len({self.widths[m] for m in members}) != 1 or len(set(self.widths)) != 1:
            raise ValueError("StackedMLP.subset keeps the padding of one shared width; this stack's members differ in width.")
        weights = self.all_member_weights()
        stack = StackedMLP(
            self.input_dim,
            self.num_classes,
            depth=self.depth,
            width=self.widths[members[0]],
            activations=[self.activations[m] for m in members],
            initial_weights=[weights[m] for m in members],
            l1=None if self.l1 is None else self.l1.numpy()[:, members],
            l2=None if self.l2 is None else self.l2.numpy()[:, members],
            seed=[self.seeds[m] for m in members],
            keep_prob=self.keep_probs[members],
            input_keep_prob=self.input_keep_probs[members],
            max_norm=None if self.max_norms is None else self.max_norms[members],
        )
        for new, old in zip(stack.slopes, self.slopes):
            new.assign(tf.gather(old, members))
        return stack

    def member_model(self, member: int, dropout_step: int = 0) -> keras.Model:
        """A plain `models.build_mlp` model (logits out) holding member ``member``'s current weights and settings.

        Args:
            member: Which member.
            dropout_step: Training steps the member took: its dropout layers
                draw next the masks of that step, as those of a net trained
                alone for that many steps would.
        """
        l1, l2 = (np.zeros(1), np.zeros(1)) if self.l1 is None else (self.l1.numpy()[:, member], self.l2.numpy()[:, member])
        if np.ptp(l1) or np.ptp(l2):
            raise ValueError(f"Member {member} has per-layer penalties; build_mlp takes one l1 and l2 for every kernel.")
        model = build_mlp(
            (self.input_dim,),
            self.num_classes,
            depth=self.depth,
            width=self.widths[member],
            activation=self.activations[member],
            kernel_initializer="glorot_uniform" if self.initializers is None else self.initializers[member],
            l1=float(l1[0]),
            l2=float(l2[0]),
            keep_prob=float(self.keep_probs[member]),
            input_keep_prob=float(self.input_keep_probs[member]),
            max_norm=None if self.max_norms is None or math.isinf(self.max_norms[member]) else float(self.max_norms[member]),
            output_activation="linear",
            seed=self.seeds[member],
        )
        for layer in model.layers:
            if isinstance(layer, InvertedDropout):
                layer.seed_generator.state.assign([layer.seed, dropout_step])
        weights = self.member_weights(member)
        for layer in range(self.depth + 1):
            dense = model.get_layer("output" if layer == self.depth else f"dense_{layer}")
            dense.set_weights(weights[2 * layer : 2 * layer + 2])
            if layer < self.depth and self.activations[member] == "prelu":
                slope = keras.ops.convert_to_numpy(self.slopes[layer][member, 0, : self.widths[member]])
                model.get_layer(f"act_{layer}").set_weights([slope])
        return model

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            num_classes=self.num_classes,
            depth=self.depth,
            width=self.widths,
            activations=self.activations,
            initializers=self.initializers,
            l1=None if self.l1 is None else self.l1.numpy().tolist(),
            l2=None if self.l2 is None else self.l2.numpy().tolist(),
            seed=self.seed,
            keep_prob=self.keep_probs.tolist(),
            input_keep_prob=self.input_keep_probs.tolist(),
            max_norm=None if self.max_norms is None else [None if math.isinf(c) else c for c in self.max_norms],
        )
        return config


# build_mlp's layer names without batch norm, dropout or augmentation.
_STACKABLE_LAYER = re.compile(r"inputs|dense_\d+|act_\d+|output")


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    """A `build_mlp` model's Dense layers in order: dense_0, ..., output."""
    depth = sum(1 for layer in model.layers if layer.name.startswith("dense_"))
    return [model.get_layer(f"dense_{i}") for i in range(depth)] + [model.get_layer("output")]


def penalty_coefficients(regularizer) -> tuple[float, float]:
    """(l1, l2) of a kernel regularizer: (0, 0) for None; only Keras's ``L1L2`` is understood."""
    if regularizer is None:
        return 0.0, 0.0
    if not isinstance(regularizer, keras.regularizers.L1L2):
        raise ValueError(f"Stacked training handles L1L2 kernel penalties only; received {regularizer!r}.")
    return float(regularizer.l1), float(regularizer.l2)


def stack_models(models: Sequence[keras.Model], activation: str) -> StackedMLP:
    """Stacks `build_mlp` models of one depth (widths and penalties may differ) with their current weights.

    The stack's objective includes every member's kernel penalty, read from its
    regularizers (0 where it has none).

    Args:
        models: Models from `models.build_mlp` with the same input size, depth
            and number of classes; no batch norm, dropout or bias penalty.
        activation: Their hidden activation (any but "prelu").

    Raises:
        ValueError: for models the stack cannot represent.

    Example:

    >>> stack = stack_models([build_mlp((4,), 3, depth=1, width=w, l2=0.01) for w in (2, 8)], "relu")
    >>> stack.widths
    [2, 8]
    """
    if not models:
        raise ValueError("stack_models needs at least one model.")
    if activation == "prelu":
        raise ValueError("stack_models does not stack prelu models (their slopes are not read).")
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
    coefficients = [[penalty_coefficients(member[layer].kernel_regularizer) for member in layers] for layer in range(depth + 1)]
    return StackedMLP(
        layers[0][0].kernel.shape[0],
        layers[0][-1].units,
        depth=depth,
        width=[member[0].units for member in layers] if depth else 1,
        activations=[activation] * len(models),
        l1=[[c[0] for c in row] for row in coefficients],
        l2=[[c[1] for c in row] for row in coefficients],
        initial_weights=[[w for layer in member for w in layer.get_weights()] for member in layers],
    )


def _coefficients(values, name: str, layers: int, members: int) -> tf.Tensor:
    """``(layers, members)`` float32 penalty coefficients from a scalar, one per member, or the full array."""
    array = np.zeros(()) if values is None else np.asarray(values, np.float64)
    if array.ndim == 1:
        array = np.broadcast_to(array, (layers, members)) if len(array) == members else array
    array = np.broadcast_to(array, (layers, members)) if array.ndim == 0 else array
    if array.shape != (layers, members) or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(
            f"{name} must be finite and >= 0: one value, one per member ({members}) or ({layers}, {members}) "
            f"per layer and member; received {values!r}."
        )
    return tf.constant(array, tf.float32)


def _per_member(value, name: str, members: int, check) -> np.ndarray:
    """``(M,)`` float64 values from one for every member or one per member, each passed through ``check(value, name)``."""
    values = [value] * members if np.ndim(value) == 0 else list(value)
    if len(values) != members:
        raise ValueError(f"StackedMLP needs one {name}, or one per member ({members}); received {len(values)}.")
    return np.array([check(v.item() if isinstance(v, np.generic) else v, name) for v in values], np.float64)


def _check_max_norm(value, name: str) -> float:
    return math.inf if value is None or value == math.inf else check_max_norm(value)


def _keras_seed(seed: int, step: tf.Tensor) -> tf.Tensor:
    """A Keras ``SeedGenerator(seed)``'s draw at call ``step``, as the TensorFlow backend hands it to a stateless op."""
    state = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
    return tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)


def _draw(initializer: str, seed: int, shape: tuple[int, int]) -> np.ndarray:
    return keras.ops.convert_to_numpy(get_initializer(initializer, seed=seed)(shape, dtype="float32"))


def _prelu_placeholder(x: tf.Tensor) -> tf.Tensor:  # pragma: no cover - replaced in _activate
    raise AssertionError("prelu is applied with its learnable slope")
