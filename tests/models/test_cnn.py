import keras
import numpy as np
import pytest

from models.augmentation import SignalAugmentation, image_augmentation
from models.cnn import build_cnn
from models.registry import UnknownNameError

RNG = np.random.default_rng(0)


def names(model):
    return [layer.name for layer in model.layers]


def test_images_get_conv2d_blocks_with_doubling_filters():
    model = build_cnn((8, 8, 1), 10, conv_blocks=2, filters=4, dense_width=8, seed=0)
    assert names(model) == [
        "inputs", "conv_0", "conv_act_0", "pool_0", "conv_1", "conv_act_1", "pool_1",
        "flatten", "dense_0", "act_0", "output",
    ]
    assert isinstance(model.get_layer("conv_0"), keras.layers.Conv2D)
    assert [model.get_layer(f"conv_{i}").filters for i in range(2)] == [4, 8]
    assert model.get_layer("flatten").output.shape == (None, 2 * 2 * 8)
    assert model.output_shape == (None, 10) and not model.compiled


@pytest.mark.parametrize("shape", [(40, 1), (40,)])
def test_signals_get_conv1d_blocks(shape):
    model = build_cnn(shape, 10, conv_blocks=2, filters=4, dense_width=8, seed=0)
    assert isinstance(model.get_layer("conv_0"), keras.layers.Conv1D)
    assert ("reshape" in names(model)) == (len(shape) == 1)
    y = keras.ops.convert_to_numpy(model(RNG.normal(size=(3, *shape)).astype("float32")))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_many_blocks_on_a_small_input_still_build():
    model = build_cnn((8, 8, 1), 2, conv_blocks=5, filters=2, dense_width=4)
    assert model.get_layer("pool_4").output.shape[1:3] == (1, 1)


def test_options_add_batch_norm_dropout_augmentation_and_per_channel_prelu():
    model = build_cnn(
        (8, 8, 1), 3, conv_blocks=1, filters=4, dense_width=8, activation="prelu", batch_norm=True,
        keep_prob=0.5, augmentation=image_augmentation(seed=0), seed=0,
    )
    assert names(model) == [
        "inputs", "image_augmentation", "conv_0", "conv_bn_0", "conv_act_0", "pool_0",
        "flatten", "dense_0", "bn_0", "act_0", "dropout_0", "output",
    ]
    model(np.zeros((1, 8, 8, 1), "float32"))
    assert tuple(model.get_layer("conv_act_0").trainable_weights[0].shape) == (1, 1, 4)
    assert tuple(model.get_layer("act_0").trainable_weights[0].shape) == (8,)


def test_l2_penalizes_conv_and_dense_kernels():
    lam = 0.08
    model = build_cnn((40, 1), 2, conv_blocks=2, filters=2, dense_width=4, l2=lam, seed=0)
    kernels = [
        layer.kernel.numpy()
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv1D, keras.layers.Dense))
    ]
    assert len(kernels) == len(model.losses) == 4
    total = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert total == pytest.approx(lam * sum((k**2).sum() for k in kernels), rel=1e-5)
    assert build_cnn((40, 1), 2, conv_blocks=1, filters=2, dense_width=4).losses == []


def test_same_seed_same_weights():
    a = build_cnn((40, 1), 2, filters=2, dense_width=4, seed=5)
    b = build_cnn((40, 1), 2, filters=2, dense_width=4, seed=5)
    c = build_cnn((40, 1), 2, filters=2, dense_width=4, seed=6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.allclose(a.get_layer("conv_0").kernel.numpy(), c.get_layer("conv_0").kernel.numpy())


def test_signal_cnn_trains_with_augmentation():
    x = RNG.normal(size=(32, 40, 1)).astype("float32")
    y = (x[:, :20, 0].mean(axis=1) > 0).astype("int32")
    model = build_cnn((40, 1), 2, conv_blocks=1, filters=4, dense_width=8,
                      augmentation=SignalAugmentation(seed=0), seed=0)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"input_shape": (4, 4, 4, 1)}, ValueError, r"Received: input_shape=\(4, 4, 4, 1\)"),
        ({"conv_blocks": -1}, ValueError, r"Received: conv_blocks=-1"),
        ({"filters": 0}, ValueError, r"Received: filters=0"),
        ({"kernel_size": 0}, ValueError, r"Received: kernel_size=0"),
        ({"keep_prob": 2}, ValueError, r"Received: keep_prob=2"),
        ({"l1": -1.0}, ValueError, r"Received: l1=-1\.0"),
        ({"activation": "soft"}, UnknownNameError, r"Unknown activation 'soft'"),
    ],
)
def test_bad_arguments_say_what_was_received(kwargs, error, message):
    args = {"input_shape": (40, 1), "num_classes": 2}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        build_cnn(args.pop("input_shape"), args.pop("num_classes"), **args)
