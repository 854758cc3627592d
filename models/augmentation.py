"""Data augmentation layers, active only in training.

They go first in a model (see `build_mlp(..., augmentation=...)`), so that
`fit` sees a new random variant of each example at every epoch while
`evaluate`, `predict` and a plain `model(x)` see the data unchanged.

`AugmentationStrength` says how much to change an example relative to its
size (a shift as a fraction of the side, a rotation in degrees, a zoom in
percent), and `scaled_augmentation` turns it into the layer for one input
shape (`RandomAffine` for images, `SignalAugmentation` for signals), so that
one strength means the same relative change on 8x8 and 28x28 images, or on
1-D signals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
class RandomAffine(keras.layers.Layer):
    """Random shift, rotation and zoom of images in one resampling.

    Each image independently is rotated about its centre by an angle drawn
    uniformly from [-rotation, rotation] degrees, scaled by a factor drawn from
    [1 - zoom, 1 + zoom], and shifted by fractions of its height and width
    drawn from [-shift, shift]. The three make one affine map, so the image is
    resampled (bilinearly) once: chained Keras layers resample once each, and
    on a small image every sub-pixel resampling blurs it again. Pixels moved in
    from outside are filled with 0 (the background of digits).

    Args:
        shift: Largest shift, a fraction of each side, in [0, 1).
        rotation: Largest rotation in degrees, in [0, 180).
        zoom: Largest change of scale, a fraction, in [0, 1).
        seed: Integer seed, or None.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: Images of shape (batch, height, width, channels).
        training: Python boolean; the input is returned unchanged unless True.

    Example:

    >>> aug = RandomAffine(shift=0.1, rotation=15, zoom=0.1, seed=0)
    >>> model = build_cnn((28, 28, 1), 10, augmentation=aug)
    """

    def __init__(
        self,
        shift: float = 0.1,
        rotation: float = 15.0,
        zoom: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.shift = _check_fraction(shift, "shift")
        self.rotation = _check_fraction(rotation, "rotation", upper=180.0)
        self.zoom = _check_fraction(zoom, "zoom")
        self.seed = _check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training:
            return inputs
        if len(inputs.shape) != 4:
            raise ValueError(
                "RandomAffine expects images of shape (batch, height, width, channels). "
                f"Received: shape={inputs.shape}"
            )
        shape = keras.ops.shape(inputs)
        height = keras.ops.cast(shape[1], "float32")
        width = keras.ops.cast(shape[2], "float32")
        per_example = (shape[0],)

        def draw(limit: float) -> tf.Tensor:
            return keras.random.uniform(per_example, -limit, limit, seed=self.seed_generator)

        angle = draw(self.rotation * math.pi / 180.0)
        scale = 1.0 + draw(self.zoom)
        dx, dy = draw(self.shift) * width, draw(self.shift) * height
        # The output pixel p samples the input at c + M (p - c - t), the inverse
        # of "rotate by angle and scale about the centre c, then shift by t".
        cos, sin = keras.ops.cos(angle) / scale, keras.ops.sin(angle) / scale
        cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        x0, y0 = cx + dx, cy + dy
        zeros = keras.ops.zeros_like(angle)
        transform = keras.ops.stack(
            [cos, sin, cx - cos * x0 - sin * y0, -sin, cos, cy + sin * x0 - cos * y0, zeros, zeros], axis=1
        )
        outputs = keras.ops.image.affine_transform(
            keras.ops.cast(inputs, "float32"), transform, interpolation="bilinear", fill_mode="constant",
            fill_value=0, data_format="channels_last",
        )
        return keras.ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "shift": self.shift,
            "rotation": self.rotation,
            "zoom": self.zoom,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class AugmentationStrength:
    """How much a random augmentation changes an example, relative to its size.

    Args:
        shift: Largest translation, as a fraction of each side of an image or
            of the length of a signal, in [0, 1). On an 8x8 image 0.05 is 0.4
            pixel (a sub-pixel shift: with bilinear resampling, a slight blur);
            on a 28x28 one, 1.4 pixels.
        rotation: Largest rotation of an image, in degrees, in [0, 180).
            Signals are not rotated.
        zoom: Largest zoom in or out of an image, as a fraction of its size, in
            [0, 1); for a signal, the largest change of its amplitude.
        noise: Standard deviation of the Gaussian noise added to a signal, in
            units of the data (standardized signals: of their std), >= 0.
            Images get no noise.

    The default, all zero, leaves examples unchanged (`scaled_augmentation`
    returns None for it).
    """

    shift: float = 0.0
    rotation: float = 0.0
    zoom: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        _check_fraction(self.shift, "shift")
        _check_fraction(self.rotation, "rotation", upper=180.0)
        _check_fraction(self.zoom, "zoom")
        noise = self.noise
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"`noise` must be a number >= 0. Received: noise={noise!r}")

    @property
    def is_identity(self) -> bool:
        """Whether this strength changes nothing."""
        return not (self.shift or self.rotation or self.zoom or self.noise)


def scaled_augmentation(
    strength: AugmentationStrength, input_shape: Sequence[int], *, seed: int | None = None
) -> keras.layers.Layer | None:
    """Returns the augmentation layer of ``strength`` for inputs of ``input_shape``.

    Images, (height, width, channels), get `RandomAffine`: the shift as a
    fraction of the side (continuous: sub-pixel shifts are resampled
    bilinearly), the rotation in degrees and the zoom, in one resampling.
    Signals, (length,) or
    (length, channels), get `SignalAugmentation` with a shift of
    ``round(shift * length)`` whole samples, an amplitude factor in
    [1 - zoom, 1 + zoom] and Gaussian noise of std ``noise``.

    Args:
        strength: The relative strength; all zero gives None.
        input_shape: Shape of one example, without the batch axis.
        seed: Integer seed, or None.

    Returns:
        A layer that changes its inputs only in training, or None for a
        strength that changes nothing.

    Example:

    >>> mild = AugmentationStrength(shift=0.05, rotation=5, zoom=0.05)
    >>> scaled_augmentation(mild, (28, 28, 1), seed=0).name
    'random_affine'
    """
    if not isinstance(strength, AugmentationStrength):
        raise ValueError(
            f"`strength` must be an AugmentationStrength. Received: strength={strength!r}"
        )
    shape = tuple(input_shape)
    if len(shape) not in (1, 2, 3):
        raise ValueError(
            "`input_shape` must be (height, width, channels), (length, channels) or (length,). "
            f"Received: input_shape={shape}"
        )
    if strength.is_identity:
        return None
    if len(shape) == 3:
        return RandomAffine(strength.shift, strength.rotation, strength.zoom, seed=seed, name="random_affine")
    return SignalAugmentation(
        max_shift=round(strength.shift * shape[0]),
        scale_range=(1.0 - strength.zoom, 1.0 + strength.zoom),
        noise_std=strength.noise,
        seed=seed,
    )


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
