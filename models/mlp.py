"""Fully connected classifiers (and regressors) for the ablations.

The layer names are a contract with the callbacks, which find layers by name:
`flatten`, `input_dropout`, `dense_{i}`, `bn_{i}`, `act_{i}`, `dropout_{i}`,
`output`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from models.activations import ACTIVATIONS, activation_function, activation_layer
from models.dropout import InvertedDropout, check_keep_prob
from models.initializers import INITIALIZERS, get_initializer
from models.registry import check_name
from models.regularizers import check_penalty, make_regularizer

# Names accepted for the output layer's activation: the hidden ones that are plain
# functions, plus softmax, which only makes sense at the output.
OUTPUT_ACTIVATIONS: tuple[str, ...] = tuple(a for a in ACTIVATIONS if a != "prelu") + ("softmax",)

# Offsets added to the user's seed so that initializers and dropout masks of
# different layers never share a random stream (`models.StackedMLP` draws its
# members' masks from the same streams).
DROPOUT_SEED_OFFSET = 1000
INPUT_DROPOUT_SEED_OFFSET = 2000


def derive_seed(seed: int | None, offset: int) -> int | None:
    """Returns `seed + offset`, or None when `seed` is None (unseeded run)."""
    return None if seed is None else seed + offset


def check_int(value: object, arg: str, minimum: int) -> int:
    """Returns `value` if it is an integer >= `minimum`, else raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{arg}` must be an integer >= {minimum}. Received: {arg}={value!r}")
    return value


def check_seed(seed: object) -> int | None:
    """Returns `seed` if it is an integer or None, else raises ValueError."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    return seed


def check_layer_names(activation: str, kernel_initializer: str, output_activation: str | None) -> None:
    """Raises UnknownNameError naming the valid choices for an unknown activation or initializer."""
    check_name("activation", activation, ACTIVATIONS)
    check_name("initializer", kernel_initializer, INITIALIZERS)
    if output_activation is not None:
        check_name("output activation", output_activation, OUTPUT_ACTIVATIONS)


def augmented_inputs(input_shape: tuple[int, ...], augmentation: keras.layers.Layer | None) -> tuple:
    """The model's `inputs` tensor and the tensor after `augmentation` (the same one without it).

    Raises:
        ValueError: `augmentation` is neither a Keras layer nor None.
    """
    if augmentation is not None and not isinstance(augmentation, keras.layers.Layer):
        raise ValueError(
            f"`augmentation` must be a keras.layers.Layer or None. Received: {augmentation!r}"
        )
    inputs = keras.Input(shape=input_shape, name="inputs")
    return inputs, inputs if augmentation is None else augmentation(inputs)


def check_max_norm(value: object) -> float:
    """Returns `value` as a float if it is a positive finite number, else raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
        raise ValueError(f"`max_norm` must be a positive finite number or None. Received: max_norm={value!r}")
    return float(value)


def check_input_shape(input_shape: object) -> tuple[int, ...]:
    """Returns `input_shape` as a tuple of positive integers, else raises ValueError."""
    try:
        shape = tuple(input_shape)  # type: ignore[arg-type]
    except TypeError:
        shape = None
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(
            "`input_shape` must be a non-empty sequence of positive integers, without "
            f"the batch axis. Received: input_shape={input_shape!r}"
        )
    return shape


def output_dense(
    x: keras.KerasTensor,
    num_classes: int,
    *,
    output_activation: str | None,
    kernel_initializer: str,
    kernel_regularizer: keras.regularizers.Regularizer | None,
    bias_regularizer: keras.regularizers.Regularizer | None,
    seed: int | None,
) -> keras.KerasTensor:
    """Applies the `output` Dense layer: softmax over classes, or linear for one unit."""
    if output_activation is None:
        output_activation = "softmax" if num_classes > 1 else "linear"
    out_fn = "softmax" if output_activation == "softmax" else activation_function(output_activation)
    return keras.layers.Dense(
        num_classes,
        activation=out_fn,
        kernel_initializer=get_initializer(kernel_initializer, seed),
        kernel_regularizer=kernel_regularizer,
        bias_regularizer=bias_regularizer,
        name="output",
    )(x)


def dense_block(
    x: keras.KerasTensor,
    index: int,
    *,
    width: int,
    activation: str,
    kernel_initializer: str,
    kernel_regularizer: keras.regularizers.Regularizer | None,
    bias_regularizer: keras.regularizers.Regularizer | None,
    batch_norm: bool,
    keep_prob: float,
    seed: int | None,
    max_norm: float | None = None,
) -> keras.KerasTensor:
    """Applies `dense_{index}` -> (`bn_{index}`) -> `act_{index}` -> (`dropout_{index}`).

    The Dense layer is linear so that callbacks can read its pre-activations `z`
    and the activation's outputs `a` separately. With batch norm the Dense layer
    has no bias: BN subtracts the batch mean, which would cancel it, and its own
    offset (beta) plays its role. ``max_norm`` bounds the norm of each unit's
    incoming weights (``keras.constraints.MaxNorm``), None leaves them free.
    """
    x = keras.layers.Dense(
        width,
        activation=None,
        use_bias=not batch_norm,
        kernel_initializer=get_initializer(kernel_initializer, derive_seed(seed, index)),
        kernel_regularizer=kernel_regularizer,
        bias_regularizer=None if batch_norm else bias_regularizer,
        kernel_constraint=None if max_norm is None else keras.constraints.MaxNorm(max_norm),
        name=f"dense_{index}",
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"bn_{index}")(x)
    x = activation_layer(activation, layer_name=f"act_{index}")(x)
    if keep_prob < 1.0:
        x = InvertedDropout(
            keep_prob,
            seed=derive_seed(seed, DROPOUT_SEED_OFFSET + index),
            name=f"dropout_{index}",
        )(x)
    return x


def build_mlp(
    input_shape: Sequence[int],
    num_classes: int,
    *,
    depth: int,
    width: int,
    activation: str = "relu",
    kernel_initializer: str = "glorot_uniform",
    l1: float = 0.0,
    l2: float = 0.0,
    bias_l1: float = 0.0,
    bias_l2: float = 0.0,
    keep_prob: float = 1.0,
    input_keep_prob: float = 1.0,
    max_norm: float | None = None,
    batch_norm: bool = False,
    augmentation: keras.layers.Layer | None = None,
    output_activation: str | None = None,
    seed: int | None = None,
    name: str = "mlp",
) -> keras.Model:
    """Builds an uncompiled multilayer perceptron.

    Layers, in order: `augmentation` (if given), `flatten` (for inputs of rank >
    1), `input_dropout` (if `input_keep_prob < 1`), then for i in 0..depth-1:
    `dense_i` (linear), `bn_i` (if `batch_norm`), `act_i`, `dropout_i` (if
    `keep_prob < 1`); finally the Dense layer `output`.

    With `depth=0` the model is logistic (softmax) regression, or linear
    regression for `num_classes=1`; with `activation="linear"` it is a deep
    linear net that collapses to one affine map.

    Args:
        input_shape: Shape of one example, without the batch axis.
        num_classes: Units of the output layer, >= 1.
        depth: Number of hidden layers, >= 0.
        width: Units per hidden layer, >= 1.
        activation: Hidden activation, one of `ACTIVATIONS`. Defaults to "relu".
        kernel_initializer: One of `INITIALIZERS`. Defaults to "glorot_uniform".
        l1: L1 penalty on every Dense kernel, output included. Defaults to 0.
        l2: L2 penalty on every Dense kernel, output included. Defaults to 0.
        bias_l1: L1 penalty on the biases. Defaults to 0: as in the lecture,
            biases are not penalized.
        bias_l2: L2 penalty on the biases. Defaults to 0.
        keep_prob: Inverted-dropout keep probability after each hidden layer,
            in (0, 1]. Defaults to 1 (no dropout).
        input_keep_prob: Keep probability for the input features, in (0, 1].
            Defaults to 1 (the lecture mentions 0.8; Ng recommends 1).
        max_norm: Most L2 norm of the weights into each hidden unit, enforced
            after every update (Srivastava et al.'s max-norm, 3 to 4 with
            dropout); None, the default, leaves them free.
        batch_norm: Whether to normalize each hidden layer's pre-activations.
        augmentation: Layer applied to the raw inputs first, e.g.
            `image_augmentation()`; it should be the identity unless training.
        output_activation: Output activation; None means softmax when
            `num_classes > 1` and linear (logits or regression) when it is 1.
            One of `OUTPUT_ACTIVATIONS`.
        seed: Integer seed of all initializers and dropout masks (each layer
            gets its own seed derived from it), or None.
        name: Name of the model. Defaults to "mlp".

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: for an out-of-range argument, naming what was received.
        UnknownNameError: for an unknown activation or initializer name.

    Example:

    >>> model = build_mlp((2,), 2, depth=3, width=16, activation="tanh", l2=0.01, seed=0)
    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    """
    input_shape = check_input_shape(input_shape)
    num_classes = check_int(num_classes, "num_classes", 1)
    depth = check_int(depth, "depth", 0)
    width = check_int(width, "width", 1)
    check_layer_names(activation, kernel_initializer, output_activation)
    l1, l2 = check_penalty(l1, "l1"), check_penalty(l2, "l2")
    bias_l1, bias_l2 = check_penalty(bias_l1, "bias_l1"), check_penalty(bias_l2, "bias_l2")
    keep_prob = check_keep_prob(keep_prob, "keep_prob")
    input_keep_prob = check_keep_prob(input_keep_prob, "input_keep_prob")
    seed = check_seed(seed)
    if max_norm is not None:
        max_norm = check_max_norm(max_norm)

    inputs, x = augmented_inputs(input_shape, augmentation)
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    if input_keep_prob < 1.0:
        x = InvertedDropout(
            input_keep_prob, seed=derive_seed(seed, INPUT_DROPOUT_SEED_OFFSET), name="input_dropout"
        )(x)
    for i in range(depth):
        x = dense_block(
            x,
            i,
            width=width,
            activation=activation,
            kernel_initializer=kernel_initializer,
            # A fresh regularizer per layer: Keras objects are not meant to be shared.
            kernel_regularizer=make_regularizer(l1, l2),
            bias_regularizer=make_regularizer(bias_l1, bias_l2),
            batch_norm=batch_norm,
            keep_prob=keep_prob,
            max_norm=max_norm,
            seed=seed,
        )
    outputs = output_dense(
        x,
        num_classes,
        output_activation=output_activation,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=make_regularizer(l1, l2),
        bias_regularizer=make_regularizer(bias_l1, bias_l2),
        seed=derive_seed(seed, depth),
    )
    return keras.Model(inputs, outputs, name=name)
