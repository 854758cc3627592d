"""StackedMLP trains every member exactly as a separate Keras model would."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ablations.engine.stacked_training import fit_stacked
from models.stacked import StackedMLP

ACTIVATIONS = ["relu", "sigmoid", "tanh", "prelu"]


def _data(n=64, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = rng.integers(0, classes, n).astype("int64")
    return x, y


def test_forward_matches_member_models():
    x, _ = _data()
    stack = StackedMLP(6, 3, depth=3, width=8, activations=ACTIVATIONS, initializers=["glorot_uniform"] * 4, seed=1)
    logits = stack(x).numpy()
    assert logits.shape == (4, 64, 3)
    for member in range(4):
        expected = stack.member_model(member)(x).numpy()
        np.testing.assert_allclose(logits[member], expected, rtol=1e-5, atol=1e-6)


def test_members_sharing_an_initializer_start_from_the_same_weights():
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "tanh", "relu"],
                       initializers=["glorot_uniform", "glorot_uniform", "he_normal"], seed=3)
    kernel = stack.kernels[0].numpy()
    np.testing.assert_array_equal(kernel[0], kernel[1])
    assert not np.allclose(kernel[0], kernel[2])


def test_training_equals_separate_keras_fits():
    """Summed member losses + elementwise Adam = each member trained alone on the same batches."""
    x, y = _data(n=40)
    stack = StackedMLP(6, 3, depth=2, width=8, activations=ACTIVATIONS, initializers=["glorot_uniform"] * 4, seed=2)
    separate = [stack.member_model(m) for m in range(4)]  # copies of the initial weights
    fit_stacked(stack, x, y, x, y, epochs=3, batch_size=8, learning_rate=1e-2, seed=0, shuffle=False)
    for member, model in enumerate(separate):
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        trained = stack.member_model(member)
        for expected, actual in zip(model.get_weights(), trained.get_weights()):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_probe_statistics_match_gradient_tape_per_member():
    x, y = _data(n=32)
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "sigmoid"], initializers=["he_normal"] * 2, seed=4)
    result = fit_stacked(stack, x, y, x, y, epochs=1, batch_size=32, learning_rate=0.0, seed=0, probe_size=32)
    for member in range(2):
        model = stack.member_model(member)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True))
        layers = [model.get_layer("dense_0"), model.get_layer("dense_1"), model.get_layer("output")]
        grads = tape.gradient(loss, [layer.kernel for layer in layers])
        history = result.histories[member]
        for layer, grad in zip(layers, grads):
            assert history[f"grad_norm/{layer.name}"][0] == pytest.approx(float(tf.norm(grad)), rel=1e-4)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="one activation and one initializer per member"):
        StackedMLP(4, 2, depth=1, width=4, activations=["relu"], initializers=[])
    with pytest.raises(ValueError, match="depth=-1"):
        StackedMLP(4, 2, depth=-1, width=4, activations=["relu"], initializers=["he_normal"])
