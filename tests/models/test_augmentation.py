import keras
import numpy as np
import pytest

from models.augmentation import (
    AugmentationStrength,
    RandomAffine,
    SignalAugmentation,
    image_augmentation,
    scaled_augmentation,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.random((6, 12, 12, 1)).astype("float32")


def test_image_pipeline_has_the_three_keras_layers_in_order():
    pipeline = image_augmentation(seed=0)
    assert isinstance(pipeline, keras.Sequential)
    assert [type(layer) for layer in pipeline.layers] == [
        keras.layers.RandomTranslation,
        keras.layers.RandomRotation,
        keras.layers.RandomZoom,
    ]


def test_image_augmentation_changes_training_inputs_only():
    pipeline = image_augmentation(translation=0.2, rotation=0.1, zoom=0.2, seed=0)
    augmented = keras.ops.convert_to_numpy(pipeline(IMAGES, training=True))
    assert augmented.shape == IMAGES.shape
    assert not np.allclose(augmented, IMAGES)
    np.testing.assert_array_equal(pipeline(IMAGES, training=False), IMAGES)
    # Without a training flag it is inference, unlike bare Keras random layers.
    np.testing.assert_array_equal(pipeline(IMAGES), IMAGES)


def test_image_augmentation_inside_a_model_is_identity_at_inference():
    inputs = keras.Input((12, 12, 1))
    model = keras.Model(inputs, image_augmentation(seed=1)(inputs))
    np.testing.assert_array_equal(model(IMAGES), IMAGES)
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), IMAGES)
    assert not np.allclose(model(IMAGES, training=True), IMAGES)


def test_zero_factors_leave_layers_out():
    assert [type(layer) for layer in image_augmentation(translation=0.1, rotation=0, zoom=0).layers] == [
        keras.layers.RandomTranslation
    ]
    identity = image_augmentation(translation=0, rotation=0, zoom=0)
    np.testing.assert_array_equal(identity(IMAGES, training=True), IMAGES)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"translation": -0.1}, r"`translation` must be in \[0, 1.0\)\. Received: translation=-0\.1"),
        ({"zoom": 1.0}, r"Received: zoom=1\.0"),
        ({"rotation": 0.5}, r"Received: rotation=0\.5"),
        ({"seed": "1"}, r"Received: seed='1'"),
    ],
)
def test_image_augmentation_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        image_augmentation(**kwargs)


SIGNAL = np.tile(np.arange(1.0, 21.0, dtype="float32"), (64, 1))  # (64, 20)


def _shifted(row, shift, padding):
    fill_left = row[0] if padding == "edge" else 0.0
    fill_right = row[-1] if padding == "edge" else 0.0
    out = np.roll(row, shift)
    if shift > 0:
        out[:shift] = fill_left
    elif shift < 0:
        out[shift:] = fill_right
    return out


@pytest.mark.parametrize("padding", ["edge", "zeros"])
def test_shift_is_not_circular_and_pads_as_asked(padding):
    layer = SignalAugmentation(max_shift=3, scale_range=(1.0, 1.0), noise_std=0.0, padding=padding, seed=0)
    out = keras.ops.convert_to_numpy(layer(SIGNAL, training=True))
    shifts = []
    for row_in, row_out in zip(SIGNAL, out):
        matches = [s for s in range(-3, 4) if np.array_equal(row_out, _shifted(row_in, s, padding))]
        assert len(matches) == 1, row_out
        shifts.extend(matches)
    # Every shift in [-3, 3] occurs among 64 examples: each example draws its own.
    assert set(shifts) == set(range(-3, 4))


def test_scale_is_one_factor_per_example_within_range():
    layer = SignalAugmentation(max_shift=0, scale_range=(0.5, 2.0), noise_std=0.0, seed=1)
    ratio = keras.ops.convert_to_numpy(layer(SIGNAL, training=True)) / SIGNAL
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-5)
    assert ratio.min() >= 0.5 and ratio.max() <= 2.0
    assert np.unique(ratio[:, 0].round(5)).size == 64


def test_noise_has_the_requested_std():
    layer = SignalAugmentation(max_shift=0, scale_range=(1.0, 1.0), noise_std=0.3, seed=2)
    noise = keras.ops.convert_to_numpy(layer(SIGNAL, training=True)) - SIGNAL
    assert noise.std() == pytest.approx(0.3, rel=0.05)
    assert abs(noise.mean()) < 0.03


@pytest.mark.parametrize("shape", [(8, 40), (8, 40, 1), (8, 40, 3)])
def test_signal_augmentation_identity_at_inference_and_shape_preserved(shape):
    x = RNG.normal(size=shape).astype("float32")
    layer = SignalAugmentation(seed=3)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert y.shape == shape
    assert not np.allclose(y, x)


def test_channels_are_shifted_together():
    x = np.stack([SIGNAL, -SIGNAL], axis=-1)
    layer = SignalAugmentation(max_shift=3, scale_range=(1.0, 1.0), noise_std=0.0, seed=4)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_array_equal(y[..., 1], -y[..., 0])


def test_signal_augmentation_rejects_other_ranks():
    with pytest.raises(ValueError, match=r"\(batch, length\).*Received: shape=\(2, 4, 4, 1\)"):
        SignalAugmentation()(np.zeros((2, 4, 4, 1), "float32"), training=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_shift": -1}, r"Received: max_shift=-1"),
        ({"max_shift": 1.5}, r"Received: max_shift=1\.5"),
        ({"scale_range": (1.1, 0.9)}, r"0 < low <= high\. Received: scale_range=\(1\.1, 0\.9\)"),
        ({"scale_range": (0.0, 1.0)}, r"Received: scale_range=\(0\.0, 1\.0\)"),
        ({"scale_range": 0.9}, r"pair \(low, high\)"),
        ({"noise_std": -0.1}, r"Received: noise_std=-0\.1"),
        ({"padding": "reflect"}, r"`padding` must be one of edge, zeros\. Received: padding='reflect'"),
    ],
)
def test_signal_augmentation_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SignalAugmentation(**kwargs)


def test_signal_augmentation_config_round_trip():
    layer = SignalAugmentation(max_shift=4, scale_range=(0.8, 1.2), noise_std=0.05, padding="zeros", seed=9, name="aug")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, SignalAugmentation)
    assert clone.get_config() == layer.get_config()
    assert clone.scale_range == (0.8, 1.2) and clone.padding == "zeros"


# ------------------------------------------------------------------ strengths relative to the size

STRONG = AugmentationStrength(shift=0.1, rotation=15.0, zoom=0.1, noise=0.05)


def test_a_strength_gives_one_affine_layer_with_the_same_relative_limits_on_small_and_large_images():
    for shape in [(8, 8, 1), (28, 28, 1)]:
        layer = scaled_augmentation(STRONG, shape, seed=0)
        assert isinstance(layer, RandomAffine) and layer.name == "random_affine"
        assert (layer.shift, layer.rotation, layer.zoom, layer.seed) == (0.1, 15.0, 0.1, 0)


def _blobs(side: int, *, spread_x: float, spread_y: float, count: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``count`` copies of a centred Gaussian blob (std a fraction of the side along each axis), and the pixel grid."""
    grid = np.arange(side) - (side - 1) / 2
    blob = np.exp(-(grid[None, :] ** 2) / (2 * (spread_x * side) ** 2) - grid[:, None] ** 2 / (2 * (spread_y * side) ** 2))
    return np.repeat(blob[None, :, :, None], count, axis=0).astype("float32"), grid


def _moments(images: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per image: centre of mass (x, y) and the second moments (xx, yy, xy) about it, in pixels."""
    mass = images.sum(axis=(1, 2))
    x = (images * grid[None, None, :]).sum(axis=(1, 2)) / mass
    y = (images * grid[None, :, None]).sum(axis=(1, 2)) / mass
    dx, dy = grid[None, None, :] - x[:, None, None], grid[None, :, None] - y[:, None, None]
    xx, yy, xy = ((images * m).sum(axis=(1, 2)) / mass for m in (dx**2, dy**2, dx * dy))
    return x, y, xx, yy, xy


def _dot_offsets(side: int, shift: float) -> np.ndarray:
    """How far a shift-only augmentation moves the centre of mass of a centred blob, as fractions of the side."""
    images, grid = _blobs(side, spread_x=1 / 8, spread_y=1 / 8)
    layer = scaled_augmentation(AugmentationStrength(shift=shift), (side, side, 1), seed=5)
    x, *_ = _moments(keras.ops.convert_to_numpy(layer(images, training=True))[..., 0], grid)
    return x / side


def test_shifts_are_a_fraction_of_the_side_whatever_its_size():
    small, large = _dot_offsets(8, 0.25), _dot_offsets(32, 0.25)
    for offsets in (small, large):
        # Up to a quarter of the side either way (a little less: pixels leave the frame), spread over it.
        assert np.abs(offsets).max() <= 0.25 + 1e-3
        assert np.abs(offsets).max() > 0.15 and offsets.min() < -0.1 and offsets.max() > 0.1
    # The same spread in fractions of the side, so four times the pixels on the larger image.
    assert np.abs(small).mean() == pytest.approx(np.abs(large).mean(), rel=0.25)


def test_rotation_turns_an_elongated_blob_by_up_to_the_angle_about_the_centre():
    images, grid = _blobs(64, spread_x=0.12, spread_y=0.04)
    turned = keras.ops.convert_to_numpy(RandomAffine(shift=0, rotation=30, zoom=0, seed=1)(images, training=True))[..., 0]
    x, y, xx, yy, xy = _moments(turned, grid)
    np.testing.assert_allclose([x, y], 0, atol=0.05)
    angles = np.degrees(0.5 * np.arctan2(2 * xy, xx - yy))
    assert np.abs(angles).max() <= 30.5 and angles.min() < -20 and angles.max() > 20
    # One angle per example, drawn uniformly: the std of U(-30, 30) is 17.3 degrees.
    assert angles.std() == pytest.approx(30 / np.sqrt(3), rel=0.15)


def test_zoom_scales_a_blob_by_up_to_the_fraction():
    images, grid = _blobs(64, spread_x=0.08, spread_y=0.08)
    zoomed = keras.ops.convert_to_numpy(RandomAffine(shift=0, rotation=0, zoom=0.2, seed=2)(images, training=True))[..., 0]
    _, _, xx, yy, xy = _moments(zoomed, grid)
    _, _, xx0, _, _ = _moments(images[:1, ..., 0], grid)
    ratio = np.sqrt(xx / xx0)
    np.testing.assert_allclose(ratio, np.sqrt(yy / xx0), rtol=1e-3)
    np.testing.assert_allclose(xy, 0, atol=1e-2)
    assert ratio.min() >= 0.8 - 0.01 and ratio.max() <= 1.2 + 0.01
    assert ratio.min() < 0.85 and ratio.max() > 1.15


def test_random_affine_changes_training_inputs_only_and_resamples_once():
    layer = RandomAffine(seed=3)
    np.testing.assert_array_equal(layer(IMAGES), IMAGES)
    np.testing.assert_array_equal(layer(IMAGES, training=False), IMAGES)
    augmented = keras.ops.convert_to_numpy(layer(IMAGES, training=True))
    assert augmented.shape == IMAGES.shape and not np.allclose(augmented, IMAGES)
    # With every limit 0 the single resampling lands on the pixels: no blur at all.
    np.testing.assert_allclose(RandomAffine(0, 0, 0, seed=0)(IMAGES, training=True), IMAGES, atol=1e-6)


def test_random_affine_validates_and_round_trips_its_config():
    with pytest.raises(ValueError, match=r"`rotation` must be in \[0, 180.0\)\. Received: rotation=200"):
        RandomAffine(rotation=200)
    with pytest.raises(ValueError, match=r"\(batch, height, width, channels\)\. Received: shape=\(2, 8\)"):
        RandomAffine()(np.zeros((2, 8), "float32"), training=True)
    layer = RandomAffine(0.05, 5.0, 0.05, seed=7, name="aug")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, RandomAffine) and clone.get_config() == layer.get_config()


def test_signals_shift_by_the_fraction_of_their_length_in_whole_samples():
    layer = scaled_augmentation(STRONG, (40, 1), seed=0)
    assert isinstance(layer, SignalAugmentation)
    assert layer.max_shift == 4 and layer.scale_range == (0.9, 1.1) and layer.noise_std == 0.05
    assert scaled_augmentation(STRONG, (100,), seed=0).max_shift == 10
    # Rounded: 5% of 8 samples is 0.4, no shift at all.
    assert scaled_augmentation(AugmentationStrength(shift=0.05, noise=0.1), (8,), seed=0).max_shift == 0


def test_no_strength_means_no_layer():
    assert AugmentationStrength().is_identity and not STRONG.is_identity
    assert scaled_augmentation(AugmentationStrength(), (8, 8, 1)) is None
    assert scaled_augmentation(AugmentationStrength(), (40, 1)) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"shift": -0.1}, r"`shift` must be in \[0, 1.0\)\. Received: shift=-0\.1"),
        ({"rotation": 180.0}, r"`rotation` must be in \[0, 180.0\)\. Received: rotation=180\.0"),
        ({"zoom": 1}, r"Received: zoom=1"),
        ({"noise": -1.0}, r"`noise` must be a number >= 0\. Received: noise=-1\.0"),
        ({"noise": True}, r"Received: noise=True"),
    ],
)
def test_augmentation_strength_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentationStrength(**kwargs)


def test_scaled_augmentation_validates():
    with pytest.raises(ValueError, match=r"must be an AugmentationStrength\. Received: strength=0\.1"):
        scaled_augmentation(0.1, (8, 8, 1))
    with pytest.raises(ValueError, match=r"Received: input_shape=\(2, 8, 8, 1\)"):
        scaled_augmentation(STRONG, (2, 8, 8, 1))
