"""Many MLPs of one shape held as stacked weights, so a grid trains as one model.

A grid over activations (or initializers) at a fixed depth is many small MLPs of
the same shape. Trained one by one, each pays Keras's model build and graph
tracing, which dominates their run time on a CPU. Stacking the kernels of the
``M`` members into one ``(M, fan_in, fan_out)`` tensor runs all of them in one
batched matmul per layer and one traced graph. The members stay independent:
no weight is shared, each member's loss only reaches its own slice, and Adam's
update is elementwise, so training the sum of the member losses gives every
member exactly the update it would get alone (``tests/models/test_stacked.py``
checks this against separate ``keras.Model.fit`` runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import keras
import numpy as np
import tensorflow as tf

from models.activations import PRELU_INITIAL_SLOPE, activation_function
from models.initializers import get_initializer
from models.mlp import build_mlp


class StackedMLP(keras.layers.Layer):
    """``M`` independent MLPs with one shape, trained and evaluated in one pass.

    Args:
        input_dim: Number of input features.
        num_classes: Number of output logits of each member.
        depth: Hidden layers of each member (0 gives multinomial logistic regression).
        width: Units of each hidden layer.
        activations: One activation name per member (see `models.activations`).
            "prelu" members get a learnable slope per unit, starting at
            `PRELU_INITIAL_SLOPE` as `models.activations.activation_layer` does.
        initializers: One kernel initializer name per member (biases start at 0).
        seed: Seeds the initializers. Layer ``l`` of every member is drawn from
            ``seed + l``, so members that share an initializer start from the same
            weights and differ only in what is being compared.

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
        width: int,
        activations: Sequence[str],
        initializers: Sequence[str],
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(activations) != len(initializers) or not activations:
            raise ValueError(
                "StackedMLP needs one activation and one initializer per member; "
                f"received {len(activations)} activations and {len(initializers)} initializers."
            )
        if depth < 0 or width < 1:
            raise ValueError(f"depth must be >= 0 and width >= 1; received depth={depth}, width={width}.")
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.depth = int(depth)
        self.width = int(width)
        self.activations = list(activations)
        self.initializers = list(initializers)
        self.seed = int(seed)
        self.members = len(self.activations)
        # Members with the same activation are applied in one op; keeping runs
        # contiguous keeps that to one op per distinct activation.
        self._groups = [(name, len(list(run))) for name, run in groupby(self.activations)]
        self._functions = {
            name: _prelu_placeholder if name == "prelu" else activation_function(name)
            for name, _ in self._groups
        }
        dims = [self.input_dim] + [self.width] * self.depth + [self.num_classes]
        self.kernels = []
        self.biases = []
        self.slopes = []
        for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
            kernel = np.stack(
                [
                    _draw(name, self.seed + layer, (fan_in, fan_out))
                    for name in self.initializers
                ]
            )
            self.kernels.append(
                self.add_weight(
                    shape=kernel.shape,
                    initializer=keras.initializers.Constant(kernel),
                    name=f"kernel_{layer}",
                )
            )
            self.biases.append(
                self.add_weight(shape=(self.members, 1, fan_out), initializer="zeros", name=f"bias_{layer}")
            )
            if layer < self.depth and "prelu" in self._functions:
                self.slopes.append(
                    self.add_weight(
                        shape=(self.members, 1, fan_out),
                        initializer=keras.initializers.Constant(PRELU_INITIAL_SLOPE),
                        name=f"slope_{layer}",
                    )
                )

    def _activate(self, z: tf.Tensor, layer: int) -> tf.Tensor:
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
        return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=0)

    def preactivations(self, inputs: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Runs every member on ``inputs`` of shape ``(batch, input_dim)``.

        Returns:
            The hidden pre-activations, one ``(M, batch, width)`` tensor per
            hidden layer, and the logits of shape ``(M, batch, num_classes)``.
        """
        hidden = tf.broadcast_to(inputs, [self.members, tf.shape(inputs)[0], self.input_dim])
        preacts = []
        for layer, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            z = tf.matmul(hidden, kernel) + bias
            if layer == self.depth:
                return preacts, z
            preacts.append(z)
            hidden = self._activate(z, layer)
        raise AssertionError("unreachable")

    def activation_derivatives(self, preacts: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """Elementwise f'(z) of each member's activation at the given pre-activations."""
        # Detached copies make each layer's term depend on its own z alone, so a
        # single gradient call yields every layer's derivative.
        detached = [tf.stop_gradient(z) for z in preacts]
        with tf.GradientTape() as tape:
            tape.watch(detached)
            total = tf.add_n([tf.reduce_sum(self._activate(z, layer)) for layer, z in enumerate(detached)])
        # f is elementwise, so d(sum f(z))/dz is f'(z) at every entry.
        return tape.gradient(total, detached)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.preactivations(inputs)[1]

    def member_model(self, member: int) -> keras.Model:
        """A plain `models.build_mlp` model holding member ``member``'s current weights."""
        model = build_mlp(
            (self.input_dim,),
            self.num_classes,
            depth=self.depth,
            width=self.width,
            activation=self.activations[member],
            kernel_initializer=self.initializers[member],
            output_activation="linear",
        )
        for layer in range(self.depth + 1):
            dense = model.get_layer("output" if layer == self.depth else f"dense_{layer}")
            dense.set_weights(
                [
                    keras.ops.convert_to_numpy(self.kernels[layer][member]),
                    keras.ops.convert_to_numpy(self.biases[layer][member, 0]),
                ]
            )
            if layer < self.depth and self.activations[member] == "prelu":
                slope = keras.ops.convert_to_numpy(self.slopes[layer][member, 0])
                model.get_layer(f"act_{layer}").set_weights([slope])
        return model

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            num_classes=self.num_classes,
            depth=self.depth,
            width=self.width,
            activations=self.activations,
            initializers=self.initializers,
            seed=self.seed,
        )
        return config


def _draw(initializer: str, seed: int, shape: tuple[int, int]) -> np.ndarray:
    return keras.ops.convert_to_numpy(get_initializer(initializer, seed=seed)(shape, dtype="float32"))


def _prelu_placeholder(x: tf.Tensor) -> tf.Tensor:  # pragma: no cover - replaced in _activate
    raise AssertionError("prelu is applied with its learnable slope")
