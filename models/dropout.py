"""Inverted dropout, written out as the lecture (and Andrew Ng's slide) does it."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def check_keep_prob(value: object, arg: str = "keep_prob") -> float:
    """Returns `value` as a float if it is a probability in (0, 1], else raises.

    Args:
        value: The keep probability that was received.
        arg: Name of the argument, used in the error message.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{arg}` must be a number in (0, 1]. Received: {arg}={value!r}")
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"`{arg}` must be in (0, 1]. Received: {arg}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="ablations")
class InvertedDropout(keras.layers.Layer):
    """Zeroes each unit with probability `1 - keep_prob` and rescales survivors.

    During training, every unit of every example is kept independently with
    probability `keep_prob` and the kept ones are divided by `keep_prob`, so the
    expected value of each activation, and hence of the next layer's `z`, is the
    same as without dropout. At inference the layer is the identity: the scaling
    already happened in training, so there is nothing to compensate.

    It computes the same function as `keras.layers.Dropout(rate=1 - keep_prob)`;
    it exists so that the ablation is parameterized, and reads, like the lecture
    (`d = rand(...) < keep_prob; a *= d; a /= keep_prob`).

    Args:
        keep_prob: Probability of keeping a unit, in (0, 1]. 1 is the identity.
            The lecture suggests 0.5 for wide hidden layers, 0.8 for the inputs
            and about 1 for small layers near the output.
        seed: Integer seed of the masks, or None.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: Tensor of any shape.
        training: Python boolean; the masks are applied only when True.

    Example:

    >>> layer = InvertedDropout(keep_prob=0.8, seed=0)
    >>> y = layer(tf.ones((2, 50)), training=True)  # ~40 of 50 units are 1.25
    """

    def __init__(self, keep_prob: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.keep_prob = check_keep_prob(keep_prob)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
        self.seed = seed
        # A SeedGenerator keeps its state in a variable, so a new mask is drawn at
        # every step even inside a compiled tf.function.
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training or self.keep_prob == 1.0:
            return inputs
        uniform = keras.random.uniform(
            keras.ops.shape(inputs), seed=self.seed_generator, dtype="float32"
        )
        keep = keras.ops.cast(uniform < self.keep_prob, inputs.dtype)
        return inputs * keep / keras.ops.cast(self.keep_prob, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "keep_prob": self.keep_prob, "seed": self.seed}
