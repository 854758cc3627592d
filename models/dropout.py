"""Inverted dropout, written out as the lecture (and Andrew Ng's slide) does it."""

from __future__ import annotations

import math

import keras
import numpy as np
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


def expectation_check(model: keras.Model, x: np.ndarray, samples: int) -> dict[str, float]:
    """The next layer's z averaged over dropout masks, against z without dropout: what inverted dropout keeps.

    z = a W + b of the Dense layer that follows the model's first
    `InvertedDropout` with ``keep_prob < 1`` (a: that layer's input, at
    inference). Each example's z is averaged over ``samples`` independent masks.

    Args:
        model: A functional Keras model, such as `models.build_mlp`'s.
        x: A batch of the model's inputs.
        samples: Masks averaged per example.

    Returns:
        ``expectation_rms_ratio``: the RMS of (mean z - z) over its Monte Carlo
        standard error, about 1 when the expectation is kept;
        ``expectation_relative_deviation``: ‖mean z - z‖ / ‖z‖;
        ``unscaled_relative_deviation``: the same without the 1/keep rescale,
        which shrinks E[a W] by the factor keep. All three NaN for a model
        without dropout.
    """
    layers = model.layers
    dropout_index = next((i for i, layer in enumerate(layers) if isinstance(layer, InvertedDropout) and layer.keep_prob < 1), None)
    if dropout_index is None:
        return {"expectation_rms_ratio": math.nan, "expectation_relative_deviation": math.nan, "unscaled_relative_deviation": math.nan}
    dropout = layers[dropout_index]
    dense = next(layer for layer in layers[dropout_index + 1 :] if isinstance(layer, keras.layers.Dense))
    inputs = model.inputs[0]
    a = x if dropout.input is inputs else keras.ops.convert_to_numpy(keras.Model(inputs, dropout.input)(x, training=False))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (dense.kernel, dense.bias))
    z = a @ kernel + bias
    # One call masks every row independently: samples copies of the batch.
    masked = keras.ops.convert_to_numpy(dropout(np.tile(a, (samples, 1)), training=True))
    z_masked = (masked @ kernel + bias).reshape(samples, *z.shape)
    mean = z_masked.mean(axis=0)
    standard_error = z_masked.std(axis=0, ddof=1) / math.sqrt(samples)
    deviation = mean - z
    keep = dropout.keep_prob
    unscaled = keep * (mean - bias) + bias
    norm = max(float(np.linalg.norm(z)), 1e-30)
    return {
        "expectation_rms_ratio": float(np.sqrt(np.mean(deviation**2)) / max(np.sqrt(np.mean(standard_error**2)), 1e-30)),
        "expectation_relative_deviation": float(np.linalg.norm(deviation)) / norm,
        "unscaled_relative_deviation": float(np.linalg.norm(unscaled - z)) / norm,
    }
