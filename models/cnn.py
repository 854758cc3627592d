"""Small convolutional classifiers for images (H, W, C) and 1-D signals (L, C).

Layer names follow `build_mlp`'s contract for the dense head (`dense_0`,
`bn_0`, `act_0`, `dropout_0`, `output`); the convolutional blocks are
`conv_{i}`, `conv_bn_{i}`, `conv_act_{i}`, `pool_{i}`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from models.activations import activation_layer
from models.dropout import check_keep_prob
from models.initializers import get_initializer
from models.mlp import (
    augmented_inputs,
    check_input_shape,
    check_int,
    check_layer_names,
    check_seed,
    dense_block,
    derive_seed,
    output_dense,
)
from models.regularizers import check_penalty, make_regularizer

# Seeds: conv_i uses seed + i, the dense head seed + HEAD_SEED_OFFSET (+1 for
# the output), so no two layers share an initializer stream.
HEAD_SEED_OFFSET = 100


def build_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    conv_blocks: int = 2,
    filters: int = 16,
    kernel_size: int = 3,
    dense_width: int = 64,
    activation: str = "relu",
    kernel_initializer: str = "he_normal",
    l1: float = 0.0,
    l2: float = 0.0,
    keep_prob: float = 1.0,
    batch_norm: bool = False,
    augmentation: keras.layers.Layer | None = None,
    output_activation: str | None = None,
    seed: int | None = None,
    name: str = "cnn",
) -> keras.Model:
    """Builds an uncompiled convolutional classifier.

    Inputs of shape (H, W, C) get Conv2D blocks, (L, C) get Conv1D blocks, and
    (L,) signals (e.g. MNIST-1D's 40 samples) are reshaped to (L, 1) after the
    augmentation. Each block is conv ("same" padding, linear) -> (batch norm) ->
    activation -> 2x max-pool ("same" padding, so small inputs never shrink to
    zero). Then `flatten`, one hidden dense block and the `output` layer, as in
    `build_mlp`. Biases are not penalized.

    Args:
        input_shape: Shape of one example, without the batch axis: (H, W, C),
            (L, C) or (L,).
        num_classes: Units of the output layer, >= 1.
        conv_blocks: Number of convolutional blocks, >= 0. Defaults to 2.
        filters: Filters of the first block, doubled at each next block.
            Defaults to 16.
        kernel_size: Size of the (square) kernels, >= 1. Defaults to 3.
        dense_width: Units of the hidden dense layer `dense_0`. Defaults to 64.
        activation: One of `ACTIVATIONS`. Defaults to "relu". A PReLU after a
            convolution learns one slope per channel.
        kernel_initializer: One of `INITIALIZERS`. Defaults to "he_normal".
        l1: L1 penalty on every kernel (conv and dense). Defaults to 0.
        l2: L2 penalty on every kernel (conv and dense). Defaults to 0.
        keep_prob: Inverted-dropout keep probability after `dense_0`, in (0, 1].
            Defaults to 1 (no dropout).
        batch_norm: Whether to batch-normalize conv and dense pre-activations.
        augmentation: Layer applied to the raw inputs first, e.g.
            `image_augmentation()` or `SignalAugmentation()`.
        output_activation: As in `build_mlp`.
        seed: Integer seed of all initializers and dropout masks, or None.
        name: Name of the model. Defaults to "cnn".

    Returns:
        An uncompiled `keras.Model`: convolutions, then the dense head.

    Raises:
        ValueError: for an out-of-range argument (as `build_mlp`), naming what was received.
        UnknownNameError: for an unknown activation or initializer name.

    Example:

    >>> model = build_cnn((40, 1), 10, conv_blocks=2, filters=8, seed=0)
    """
    input_shape = check_input_shape(input_shape)
    if len(input_shape) not in (1, 2, 3):
        raise ValueError(
            "`input_shape` must be (height, width, channels), (length, channels) or "
            f"(length,). Received: input_shape={input_shape!r}"
        )
    num_classes = check_int(num_classes, "num_classes", 1)
    conv_blocks = check_int(conv_blocks, "conv_blocks", 0)
    filters = check_int(filters, "filters", 1)
    kernel_size = check_int(kernel_size, "kernel_size", 1)
    dense_width = check_int(dense_width, "dense_width", 1)
    check_layer_names(activation, kernel_initializer, output_activation)
    l1, l2 = check_penalty(l1, "l1"), check_penalty(l2, "l2")
    keep_prob = check_keep_prob(keep_prob, "keep_prob")
    seed = check_seed(seed)

    inputs, x = augmented_inputs(input_shape, augmentation)
    if len(input_shape) == 1:
        x = keras.layers.Reshape((input_shape[0], 1), name="reshape")(x)
    for i in range(conv_blocks):
        x = conv_block(
            x,
            i,
            filters=filters * 2**i,
            kernel_size=kernel_size,
            activation=activation,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=make_regularizer(l1, l2),
            batch_norm=batch_norm,
            seed=derive_seed(seed, i),
        )

    x = keras.layers.Flatten(name="flatten")(x)
    x = dense_block(
        x,
        0,
        width=dense_width,
        activation=activation,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=make_regularizer(l1, l2),
        bias_regularizer=None,
        batch_norm=batch_norm,
        keep_prob=keep_prob,
        seed=derive_seed(seed, HEAD_SEED_OFFSET),
    )
    outputs = output_dense(
        x,
        num_classes,
        output_activation=output_activation,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=make_regularizer(l1, l2),
        bias_regularizer=None,
        seed=derive_seed(seed, HEAD_SEED_OFFSET + 1),
    )
    return keras.Model(inputs, outputs, name=name)


def conv_block(
    x: keras.KerasTensor,
    index: int,
    *,
    filters: int,
    kernel_size: int,
    activation: str,
    kernel_initializer: str,
    kernel_regularizer: keras.regularizers.Regularizer | None,
    batch_norm: bool,
    seed: int | None,
) -> keras.KerasTensor:
    """One convolutional block: conv ("same", linear) -> (batch norm) -> activation -> 2x max-pool ("same").

    Conv2D and 2-D pooling on images ``(batch, H, W, C)``, Conv1D and 1-D
    pooling on signals ``(batch, L, C)``. Layers are named ``conv_{index}``,
    ``conv_bn_{index}``, ``conv_act_{index}`` and ``pool_{index}``.

    Args:
        x: The block's input.
        index: The block's position, for its layer names.
        filters: Output channels.
        kernel_size: Size of the (square) kernel.
        activation: One of `ACTIVATIONS`; a PReLU learns one slope per channel.
        kernel_initializer: One of `INITIALIZERS`.
        kernel_regularizer: The kernel's penalty, or None.
        batch_norm: Normalize the pre-activations (the conv then has no bias).
        seed: Seed of the kernel's initializer, or None.
    """
    images = len(x.shape) == 4
    conv = keras.layers.Conv2D if images else keras.layers.Conv1D
    pool = keras.layers.MaxPooling2D if images else keras.layers.MaxPooling1D
    x = conv(
        filters,
        kernel_size,
        padding="same",
        activation=None,
        use_bias=not batch_norm,
        kernel_initializer=get_initializer(kernel_initializer, seed),
        kernel_regularizer=kernel_regularizer,
        name=f"conv_{index}",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"conv_bn_{index}")(x)
    x = activation_layer(activation, layer_name=f"conv_act_{index}", prelu_shared_axes=[1, 2] if images else [1])(x)
    return pool(2, padding="same", name=f"pool_{index}")(x)
