"""Data augmentation layers, active only in training.

They go first in a model (see `build_mlp(..., augmentation=...)`), so that
`fit` sees a new random variant of each example at every epoch while
`evaluate`, `predict` and a plain `model(x)` see the data unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf


def _check_fraction(value: object, arg: str, *, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{arg}` must be a number in [0, {upper}). Received: {arg}={value!r}")
    if not (math.isfinite(value) and 0.0 <= value < upper):
        raise ValueError(f"`{arg}` must be in [0, {upper}). Received: {arg}={value!r}")
    return float(value)


def _check_seed(seed: object) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    return seed


@keras.saving.register_keras_serializable(package="ablations")
class AugmentationPipeline(keras.Sequential):
    """A `keras.Sequential` of random layers that is the identity unless training.

    Keras' random preprocessing layers default to `training=True`, so a bare
    `model(x)` (no `training` argument, as in a quick check or a figure) would
    augment test data. Defaulting to False here makes every path except `fit`
    (which passes `training=True`) see the data as it is.
    """

    def call(self, inputs, training=False, mask=None, **kwargs):
        return super().call(inputs, training=training, mask=mask, **kwargs)


def image_augmentation(
    *,
    translation: float = 0.1,
    rotation: float = 0.05,
    zoom: float = 0.1,
    seed: int | None = None,
) -> keras.Sequential:
    """Returns random translation, rotation and zoom for (height, width, channels) images.

    Args:
        translation: Maximum shift, as a fraction of height and of width, in
            [0, 1). Defaults to 0.1.
        rotation: Maximum rotation, as a fraction of a full turn, in [0, 0.5)
            (0.05 is ±18 degrees). Defaults to 0.05.
        zoom: Maximum zoom in or out, as a fraction of the size, in [0, 1).
            Defaults to 0.1.
        seed: Integer seed, or None. Each layer gets its own seed derived from it.

    A factor of 0 leaves its layer out; with all three at 0 the pipeline is the
    identity (useful as the "no augmentation" arm of a grid). Images must have a
    channel axis: reshape (28, 28) digits to (28, 28, 1) first. Pixels moved in
    from outside the image are filled with zeros (the background of digits).

    Returns:
        An `AugmentationPipeline` (a `keras.Sequential`) that changes its inputs
        only when called with `training=True`.

    Example:

    >>> model = build_mlp((8, 8, 1), 10, depth=1, width=32,
    ...                   augmentation=image_augmentation(seed=0))
    """
    translation = _check_fraction(translation, "translation")
    rotation = _check_fraction(rotation, "rotation", upper=0.5)
    zoom = _check_fraction(zoom, "zoom")
    seed = _check_seed(seed)

    def layer_seed(offset: int) -> int | None:
        # Distinct seeds, so that the three transformations are not drawn from
        # the same random stream.
        return None if seed is None else seed + offset

    layers: list[keras.layers.Layer] = []
    if translation > 0:
        layers.append(
            keras.layers.RandomTranslation(
                translation, translation, fill_mode="constant", seed=layer_seed(0),
                name="random_translation",
            )
        )
    if rotation > 0:
        layers.append(
            keras.layers.RandomRotation(
                rotation, fill_mode="constant", seed=layer_seed(1), name="random_rotation"
            )
        )
    if zoom > 0:
        layers.append(
            keras.layers.RandomZoom(
                zoom, zoom, fill_mode="constant", seed=layer_seed(2), name="random_zoom"
            )
        )
    if not layers:
        layers.append(keras.layers.Identity(name="identity"))
    return AugmentationPipeline(layers, name="image_augmentation")


@keras.saving.register_keras_serializable(package="ablations")
class SignalAugmentation(keras.layers.Layer):
    """Random shift, amplitude scaling and Gaussian noise for 1-D signals.

    For signals such as MNIST-1D, shaped (batch, length) or (batch, length,
    channels). Each example independently is

    1. shifted by an integer number of samples drawn uniformly from
       [-max_shift, max_shift]; the shift is not circular: samples pushed out of
       the window are dropped and the vacated end is filled according to
       `padding` ("edge" repeats the first/last value, "zeros" fills with 0);
    2. multiplied by a factor drawn uniformly from `scale_range`;
    3. added i.i.d. Gaussian noise of standard deviation `noise_std`.

    Args:
        max_shift: Largest shift in samples, an integer >= 0. Defaults to 2.
        scale_range: (low, high) with 0 < low <= high. Defaults to (0.9, 1.1).
        noise_std: Noise standard deviation, >= 0. Defaults to 0.01.
        padding: "edge" (default) or "zeros".
        seed: Integer seed, or None.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: Tensor of shape (batch, length) or (batch, length, channels).
        training: Python boolean; the input is returned unchanged unless True.

    Example:

    >>> aug = SignalAugmentation(max_shift=3, noise_std=0.05, seed=0)
    >>> model = build_cnn((40, 1), 10, augmentation=aug)
    """

    PADDINGS = ("edge", "zeros")

    def __init__(
        self,
        max_shift: int = 2,
        scale_range: Sequence[float] = (0.9, 1.1),
        noise_std: float = 0.01,
        padding: str = "edge",
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(
                f"`max_shift` must be an integer >= 0. Received: max_shift={max_shift!r}"
            )
        try:
            low, high = (float(v) for v in scale_range)
        except (TypeError, ValueError):
            raise ValueError(
                f"`scale_range` must be a pair (low, high) of numbers. "
                f"Received: scale_range={scale_range!r}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and 0.0 < low <= high):
            raise ValueError(
                f"`scale_range` must satisfy 0 < low <= high. Received: scale_range={scale_range!r}"
            )
        if (
            isinstance(noise_std, bool)
            or not isinstance(noise_std, (int, float))
            or not math.isfinite(noise_std)
            or noise_std < 0
        ):
            raise ValueError(f"`noise_std` must be a number >= 0. Received: noise_std={noise_std!r}")
        if padding not in self.PADDINGS:
            raise ValueError(
                f"`padding` must be one of {', '.join(self.PADDINGS)}. Received: padding={padding!r}"
            )
        self.max_shift = max_shift
        self.scale_range = (low, high)
        self.noise_std = float(noise_std)
        self.padding = padding
        self.seed = _check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training:
            return inputs
        rank = len(inputs.shape)
        if rank not in (2, 3):
            raise ValueError(
                "SignalAugmentation expects inputs of shape (batch, length) or "
                f"(batch, length, channels). Received: shape={inputs.shape}"
            )
        outputs = self._shift(inputs) if self.max_shift > 0 else inputs
        # Per-example factors broadcast over the length (and channel) axes.
        per_example = (keras.ops.shape(inputs)[0],) + (1,) * (rank - 1)
        low, high = self.scale_range
        if low != high or low != 1.0:
            outputs = outputs * keras.random.uniform(
                per_example, minval=low, maxval=high, dtype=inputs.dtype, seed=self.seed_generator
            )
        if self.noise_std > 0:
            outputs = outputs + keras.random.normal(
                keras.ops.shape(inputs), stddev=self.noise_std, dtype=inputs.dtype,
                seed=self.seed_generator,
            )
        return outputs

    def _shift(self, inputs: tf.Tensor) -> tf.Tensor:
        """Moves each example by its own random offset along the length axis."""
        shape = keras.ops.shape(inputs)
        batch, length = shape[0], shape[1]
        shifts = keras.random.randint(
            (batch, 1), -self.max_shift, self.max_shift + 1, seed=self.seed_generator
        )
        # outputs[:, t] = inputs[:, t - shift]; out-of-range sources are padded.
        sources = keras.ops.arange(length, dtype="int32")[None, :] - shifts
        clipped = keras.ops.clip(sources, 0, length - 1)
        inside = keras.ops.logical_and(sources >= 0, sources < length)
        if len(inputs.shape) == 3:
            clipped = keras.ops.broadcast_to(clipped[:, :, None], shape)
            inside = keras.ops.broadcast_to(inside[:, :, None], shape)
        outputs = keras.ops.take_along_axis(inputs, clipped, axis=1)
        if self.padding == "zeros":
            outputs = keras.ops.where(inside, outputs, keras.ops.zeros_like(outputs))
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "max_shift": self.max_shift,
            "scale_range": list(self.scale_range),
            "noise_std": self.noise_std,
            "padding": self.padding,
            "seed": self.seed,
        }
