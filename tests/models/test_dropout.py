import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.dropout import InvertedDropout, expectation_check
from models.mlp import build_mlp

ONES = np.ones((1000, 500), dtype="float32")


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_training_keeps_about_keep_prob_and_rescales_survivors(keep_prob):
    y = keras.ops.convert_to_numpy(InvertedDropout(keep_prob, seed=0)(ONES, training=True))
    n = ONES.size
    kept = y != 0
    # Survivors are exactly 1/keep_prob (the lecture's 1/0.8 = 1.25), the rest 0.
    np.testing.assert_allclose(y[kept], 1.0 / keep_prob, rtol=1e-6)
    assert kept.mean() == pytest.approx(keep_prob, abs=5 * np.sqrt(keep_prob * (1 - keep_prob) / n))
    # ... so the expected activation is unchanged, within sampling error.
    assert y.mean() == pytest.approx(1.0, abs=5 * np.sqrt((1 - keep_prob) / keep_prob / n))


def test_masks_are_independent_per_unit_and_example():
    y = keras.ops.convert_to_numpy(InvertedDropout(0.5, seed=1)(ONES[:200, :200], training=True))
    assert len({row.tobytes() for row in y != 0}) == 200
    assert len({col.tobytes() for col in (y != 0).T}) == 200


def test_inference_is_the_identity():
    x = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    layer = InvertedDropout(0.3, seed=0)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_keep_prob_one_is_the_identity_even_in_training():
    x = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    np.testing.assert_array_equal(InvertedDropout(1.0)(x, training=True), x)


def test_new_mask_at_every_step_inside_tf_function():
    layer = InvertedDropout(0.5, seed=2)
    step = tf.function(lambda x: layer(x, training=True))
    first, second = step(ONES[:50, :50]).numpy(), step(ONES[:50, :50]).numpy()
    assert not np.array_equal(first, second)


def test_same_seed_same_first_mask():
    a = InvertedDropout(0.5, seed=3)(ONES[:20, :20], training=True)
    b = InvertedDropout(0.5, seed=3)(ONES[:20, :20], training=True)
    np.testing.assert_array_equal(a, b)


def test_gradient_flows_only_through_survivors():
    layer = InvertedDropout(0.5, seed=4)
    x = tf.Variable(ONES[:10, :10])
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    grad = tape.gradient(total, x).numpy()
    np.testing.assert_array_equal(grad, y.numpy())


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.5, float("nan"), "0.5", True, None])
def test_keep_prob_outside_zero_one_is_rejected(bad):
    with pytest.raises(ValueError, match=r"`keep_prob` must be .*Received: keep_prob="):
        InvertedDropout(bad)


def test_config_round_trip():
    layer = InvertedDropout(0.8, seed=5, name="dropout_0")
    config = layer.get_config()
    assert config["keep_prob"] == 0.8 and config["seed"] == 5 and config["name"] == "dropout_0"
    clone = InvertedDropout.from_config(config)
    assert clone.get_config() == config
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, InvertedDropout) and restored.keep_prob == 0.8


def test_model_with_inverted_dropout_saves_and_loads(tmp_path):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), InvertedDropout(0.5, seed=0, name="drop"), keras.layers.Dense(2)]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("drop"), InvertedDropout)
    assert loaded.get_layer("drop").keep_prob == 0.5
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def _probe(seed=0, n=64, features=20):
    return np.random.default_rng(seed).normal(size=(n, features)).astype("float32")


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_inverted_dropout_keeps_the_expected_next_layer_z(keep_prob):
    model = build_mlp((20,), 3, depth=2, width=64, keep_prob=keep_prob, seed=0)
    check = expectation_check(model, _probe(), samples=400)
    # Pure Monte Carlo noise gives a ratio near 1; a biased mean would give hundreds.
    assert 0.7 < check["expectation_rms_ratio"] < 1.5
    # Without the 1/keep rescale, E[a W] shrinks by keep: the biases start at 0, so z is off by 1 - keep.
    assert check["unscaled_relative_deviation"] == pytest.approx(1 - keep_prob, abs=0.03)
    assert check["expectation_relative_deviation"] < 0.1 * (1 - keep_prob) + 0.05


def test_expectation_check_finds_input_dropout_and_skips_nets_without_dropout():
    with_input = build_mlp((20,), 3, depth=1, width=32, input_keep_prob=0.8, seed=0)
    assert expectation_check(with_input, _probe(), samples=200)["unscaled_relative_deviation"] == pytest.approx(0.2, abs=0.03)
    plain = build_mlp((20,), 3, depth=1, width=32, seed=0)
    assert all(math.isnan(v) for v in expectation_check(plain, _probe(), samples=10).values())
