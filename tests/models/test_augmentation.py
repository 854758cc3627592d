import keras
import numpy as np
import pytest

from models.augmentation import SignalAugmentation, image_augmentation

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
