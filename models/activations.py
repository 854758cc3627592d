"""Activation functions of the lecture, by name, as functions and as layers.

`activation_function` gives the stateless elementwise map (for plots and
composition studies such as f∘f∘f); `activation_layer` gives the layer a model
uses, which for PReLU is the only one with weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from models.names import ACTIVATIONS
from models.registry import check_name

# The lecture's (and Maas et al. 2013's) Leaky ReLU uses 0.01; Keras' LeakyReLU
# layer defaults to 0.3 and keras.activations.leaky_relu to 0.2, neither of which
# is the function the lecture plots.
LEAKY_RELU_SLOPE = 0.01

# He et al. (2015), who introduced PReLU, start every slope at 0.25. Keras starts
# at 0, which makes a fresh PReLU net identical to a ReLU net (same dead units at
# initialization) and hides the difference the ablation is about.
PRELU_INITIAL_SLOPE = 0.25


@keras.saving.register_keras_serializable(package="ablations")
def leaky_relu(x: tf.Tensor) -> tf.Tensor:
    """Leaky ReLU with the lecture's slope: `x` if `x > 0` else `0.01 * x`."""
    return keras.activations.leaky_relu(x, negative_slope=LEAKY_RELU_SLOPE)


def activation_function(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """Returns the elementwise activation function called `name`.

    Args:
        name: One of `ACTIVATIONS` except `"prelu"`, whose slope is a learned
            weight and therefore only exists as a layer (see `activation_layer`).

    Returns:
        A function mapping a tensor to a tensor of the same shape.

    Raises:
        UnknownNameError: if `name` is not in `ACTIVATIONS`.
        ValueError: if `name` is `"prelu"`.

    Example:

    >>> f = activation_function("relu")
    >>> g = lambda x: f(f(x))  # ReLU is idempotent: g == f
    """
    check_name("activation", name, ACTIVATIONS)
    if name == "prelu":
        raise ValueError(
            "Activation 'prelu' has a learnable slope, so it is not a stateless "
            "function; use activation_layer('prelu') instead."
        )
    if name == "leaky_relu":
        return leaky_relu
    return keras.activations.get(name)


def activation_layer(
    name: str,
    *,
    layer_name: str | None = None,
    prelu_shared_axes: Sequence[int] | None = None,
) -> keras.layers.Layer:
    """Returns a new layer that applies the activation called `name`.

    Args:
        name: One of `ACTIVATIONS`.
        layer_name: Name given to the layer (e.g. `"act_0"`); Keras picks one
            when None.
        prelu_shared_axes: Only for `"prelu"`: axes along which one slope is
            shared. None (the default) learns one slope per unit, which is what
            a Dense layer wants; a convolution usually shares the spatial axes
            (`[1, 2]` for images, `[1]` for signals) to learn one per channel.

    Returns:
        `keras.layers.PReLU` for `"prelu"` (slopes initialized to 0.25, as in
        He et al. 2015), `keras.layers.LeakyReLU(negative_slope=0.01)` for
        `"leaky_relu"`, otherwise `keras.layers.Activation(name)`.

    Raises:
        UnknownNameError: if `name` is not in `ACTIVATIONS`.
    """
    check_name("activation", name, ACTIVATIONS)
    if name == "prelu":
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(PRELU_INITIAL_SLOPE),
            shared_axes=None if prelu_shared_axes is None else list(prelu_shared_axes),
            name=layer_name,
        )
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, name=layer_name)
    return keras.layers.Activation(name, name=layer_name)
