"""Many small CNNs held as stacked weights, so seeds and arms of a CNN grid train as one model.

`models.StackedMLP` packs MLPs by batching their matmuls. A convolution packs
the same way in one of two forms, both exact (each member's output depends on
its own weights and inputs only):

- **grouped**: the members' channels side by side, ``(batch, H, W, M·C)``, and
  one convolution with ``M`` groups, so group ``m`` sees member ``m``'s
  channels and kernel alone; pooling and the bias act per channel anyway;
- **patches**: each member's ``k × k`` patches as rows, ``(M, batch·H·W,
  k·k·C)``, times its kernel reshaped to ``(M, k·k·C, F)``, one batched matmul
  (what a convolution computes, written as the MLP stack's product).

``python -m benchmarks.bench packing augmentation`` times both against one
Keras model per trial. On a 2-core CPU, for a pack of 30 of augmentation's
CNNs on 28x28 digits, grouped took 169 s, patches 408 s and one model per
trial 260 s: patches copy every pixel nine times, and a 3x3 convolution over
few channels is bound by memory, not arithmetic. Grouped is the default.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from models.cnn import HEAD_SEED_OFFSET, build_cnn
from models.initializers import get_initializer
from models.mlp import check_input_shape, check_int

SCORE_EXAMPLES = 4096
"""Examples, over all members, that one pass scores: whole splits of 28x28 images through a large pack would
hold gigabytes of feature maps, so `fit_members` scores them in chunks of this many."""
CONVOLUTIONS = ("grouped", "patches")
"""How a `StackedCNN` computes its members' convolutions (see the module docstring)."""


class StackedCNN(keras.layers.Layer):
    """``M`` independent `models.build_cnn` nets of one architecture, trained and evaluated in one pass.

    Each member is ``build_cnn(input_shape, num_classes, conv_blocks=...,
    filters=..., kernel_size=..., dense_width=..., seed=seed)`` with ReLU and
    no batch norm, dropout or penalty: conv blocks ("same" convolution,
    ReLU, 2x max-pool), the dense block and the output layer, on logits.
    Signals, ``(L,)`` or ``(L, C)``, are convolved as images of height 1.

    Args:
        input_shape: One example's shape: ``(H, W, C)``, ``(L, C)`` or ``(L,)``.
        num_classes: Output logits of each member.
        seeds: One per member: layer ``i`` of a member is drawn as
            `models.build_cnn` draws it from that seed, so a member starts
            from the weights of ``build_cnn(seed=seed)``.
        conv_blocks: Convolution + pooling blocks.
        filters: Filters of the first block, doubled at each next block.
        kernel_size: Side of the (square) kernels.
        dense_width: Units of the dense layer.
        kernel_initializer: The kernels' initializer (biases start at 0).
        convolution: One of `CONVOLUTIONS`.
        initial_weights: Instead of drawing: per member, its weights in
            `member_weights` order.

    Example:

    >>> stack = StackedCNN((8, 8, 1), 10, seeds=[0, 1, 2], filters=4, dense_width=16)
    >>> stack.logits(np.zeros((3, 5, 8, 8, 1), "float32")).shape
    TensorShape([3, 5, 10])
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        seeds: Sequence[int],
        conv_blocks: int = 2,
        filters: int = 16,
        kernel_size: int = 3,
        dense_width: int = 64,
        kernel_initializer: str = "he_normal",
        convolution: str = "grouped",
        initial_weights: Sequence[Sequence[np.ndarray]] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.example_shape = check_input_shape(input_shape)
        if len(self.example_shape) not in (1, 2, 3):
            raise ValueError(f"StackedCNN takes (H, W, C), (L, C) or (L,) inputs; received {self.example_shape}.")
        if convolution not in CONVOLUTIONS:
            raise ValueError(f"convolution must be one of {', '.join(CONVOLUTIONS)}; received {convolution!r}.")
        self.seeds = [int(seed) for seed in seeds]
        self.members = len(self.seeds)
        if self.members == 0 or (initial_weights is not None and len(initial_weights) != self.members):
            raise ValueError("StackedCNN needs one seed per member (and one list of initial weights each, when given).")
        self.num_classes = check_int(num_classes, "num_classes", 1)
        self.conv_blocks = check_int(conv_blocks, "conv_blocks", 0)
        self.filters = check_int(filters, "filters", 1)
        self.kernel_size = check_int(kernel_size, "kernel_size", 1)
        self.dense_width = check_int(dense_width, "dense_width", 1)
        self.kernel_initializer = kernel_initializer
        self.convolution = convolution
        # A member of one architecture: the widths `fit_members` compares to shrink a pack.
        self.widths = [self.dense_width] * self.members
        self.penalized = False
        self.score_examples = SCORE_EXAMPLES
        self.kernels, self.biases = [], []
        for layer, shape in enumerate(self._kernel_shapes()):
            kernel = np.stack([
                self._initial(member, layer, shape, initial_weights) for member in range(self.members)
            ])
            bias = np.zeros((self.members, shape[-1]), np.float32)
            if initial_weights is not None:
                bias = np.stack([np.asarray(weights[2 * layer + 1], np.float32) for weights in initial_weights])
            self.kernels.append(self.add_weight(shape=kernel.shape, initializer=keras.initializers.Constant(kernel), name=f"kernel_{layer}"))
            self.biases.append(self.add_weight(shape=bias.shape, initializer=keras.initializers.Constant(bias), name=f"bias_{layer}"))

    @property
    def _images(self) -> bool:
        return len(self.example_shape) == 3

    def _kernel_shapes(self) -> list[tuple[int, ...]]:
        """Every layer's kernel shape as Keras holds it: conv blocks, then the dense block and the output."""
        channels = self.example_shape[-1] if len(self.example_shape) > 1 else 1
        spatial = list(self.example_shape[:-1]) if len(self.example_shape) > 1 else [self.example_shape[0]]
        window = (self.kernel_size,) * len(spatial)
        shapes = []
        for block in range(self.conv_blocks):
            shapes.append((*window, channels, self.filters * 2**block))
            channels = self.filters * 2**block
            spatial = [-(-size // 2) for size in spatial]  # "same" pooling: ceil(size / 2)
        shapes.append((int(np.prod(spatial)) * channels, self.dense_width))
        shapes.append((self.dense_width, self.num_classes))
        return shapes

    def _initial(self, member: int, layer: int, shape: tuple[int, ...], initial_weights) -> np.ndarray:
        if initial_weights is not None:
            return np.asarray(initial_weights[member][2 * layer], np.float32)
        # build_cnn's seeds: conv_i from seed + i, the dense block and the output from the head's offsets.
        offset = layer if layer < self.conv_blocks else HEAD_SEED_OFFSET + layer - self.conv_blocks
        draw = get_initializer(self.kernel_initializer, self.seeds[member] + offset)
        return keras.ops.convert_to_numpy(draw(shape, dtype="float32"))

    def logits(self, inputs: tf.Tensor, dropout_step: tf.Tensor | None = None) -> tf.Tensor:
        """``(M, batch, num_classes)`` logits of every member.

        Args:
            inputs: ``(M, batch, *input_shape)``, one batch per member.
            dropout_step: Unused (the members have no dropout); `fit_members` passes it to any stack.
        """
        del dropout_step
        members, batch = self.members, tf.shape(inputs)[1]
        height, width, channels = self._image_shape()
        # Images of height 1 for signals, then the layout of the convolution form (see `_convolve`).
        x = tf.reshape(inputs, [members, batch, height, width, channels])
        if self.convolution == "grouped":
            x = tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]), [batch, height, width, members * channels])
        else:
            x = tf.reshape(x, [members * batch, height, width, channels])
        for block in range(self.conv_blocks):
            x = self._pool(tf.nn.relu(self._convolve(x, block)))
        # Back to one row per member and example, flattened as Keras's Flatten does: (H, W, F) row-major.
        out = self.filters * 2 ** (self.conv_blocks - 1) if self.conv_blocks else channels
        shape = tf.shape(x)
        if self.convolution == "grouped":
            x = tf.transpose(tf.reshape(x, [batch, shape[1], shape[2], members, out]), [3, 0, 1, 2, 4])
        x = tf.reshape(x, [members, batch, -1])
        hidden = tf.nn.relu(tf.matmul(x, self.kernels[self.conv_blocks]) + self.biases[self.conv_blocks][:, None, :])
        return tf.matmul(hidden, self.kernels[-1]) + self.biases[-1][:, None, :]

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.logits(inputs)

    def _image_shape(self) -> list[int]:
        if self._images:
            return list(self.example_shape)
        length = self.example_shape[0]
        return [1, length, self.example_shape[1] if len(self.example_shape) == 2 else 1]

    def _convolve(self, x: tf.Tensor, block: int) -> tf.Tensor:
        """Block ``block``'s "same" convolution plus bias of every member, in the form's layout.

        Grouped: ``(batch, H, W, M·C)`` -> ``(batch, H, W, M·F)``, member ``m``'s
        channels being group ``m``. Patches: ``(M·batch, H, W, C)`` ->
        ``(M·batch, H, W, F)``, member-major.
        """
        kernel, bias = self.kernels[block], self.biases[block]
        if not self._images:  # a signal's (k, C, F) kernel as (1, k, C, F)
            kernel = kernel[:, None]
        members = self.members
        kh, kw, channels, out = kernel.shape[1:]
        if self.convolution == "grouped":
            filters = tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), [kh, kw, channels, members * out])
            return tf.nn.conv2d(x, filters, strides=1, padding="SAME") + tf.reshape(bias, [members * out])
        shape = tf.shape(x)
        patches = tf.image.extract_patches(x, sizes=[1, kh, kw, 1], strides=[1, 1, 1, 1], rates=[1, 1, 1, 1], padding="SAME")
        rows = tf.reshape(patches, [members, -1, kh * kw * channels])
        y = tf.matmul(rows, tf.reshape(kernel, [members, -1, out])) + bias[:, None, :]
        return tf.reshape(y, [shape[0], shape[1], shape[2], out])

    def _pool(self, x: tf.Tensor) -> tf.Tensor:
        """2x max-pooling with "same" padding, channel by channel (a signal's along its length only)."""
        window = [2, 2] if self._images else [1, 2]
        return tf.nn.max_pool2d(x, window, window, "SAME")

    def penalties(self) -> tf.Tensor:
        """``(M,)`` zeros: the members carry no penalty."""
        return tf.zeros([self.members])

    def apply_max_norm(self) -> None:
        """Nothing to enforce: the members carry no max-norm constraint."""

    def all_member_weights(self) -> list[list[np.ndarray]]:
        """Every member's kernels and biases in `models.build_cnn` order: conv_0, ..., dense_0, output."""
        kernels = [keras.ops.convert_to_numpy(k) for k in self.kernels]
        biases = [keras.ops.convert_to_numpy(b) for b in self.biases]
        return [[w for kernel, bias in zip(kernels, biases) for w in (kernel[m], bias[m])] for m in range(self.members)]

    def member_weights(self, member: int) -> list[np.ndarray]:
        """Member ``member``'s kernels and biases (see `all_member_weights`)."""
        return self.all_member_weights()[member]

    def subset(self, members: Sequence[int]) -> StackedCNN:
        """A new stack of the given members (in that order) with their current weights."""
        weights = self.all_member_weights()
        return StackedCNN(
            self.example_shape, self.num_classes, seeds=[self.seeds[m] for m in members], conv_blocks=self.conv_blocks,
            filters=self.filters, kernel_size=self.kernel_size, dense_width=self.dense_width,
            kernel_initializer=self.kernel_initializer, convolution=self.convolution,
            initial_weights=[weights[m] for m in members],
        )

    def member_model(self, member: int, dropout_step: int = 0) -> keras.Model:
        """A plain `models.build_cnn` model (logits out) holding member ``member``'s current weights."""
        del dropout_step
        model = build_cnn(
            self.example_shape, self.num_classes, conv_blocks=self.conv_blocks, filters=self.filters,
            kernel_size=self.kernel_size, dense_width=self.dense_width, kernel_initializer=self.kernel_initializer,
            output_activation="linear", seed=self.seeds[member],
        )
        weights = self.member_weights(member)
        names = [f"conv_{i}" for i in range(self.conv_blocks)] + ["dense_0", "output"]
        for layer, name in enumerate(names):
            model.get_layer(name).set_weights(weights[2 * layer : 2 * layer + 2])
        return model
