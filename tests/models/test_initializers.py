import keras
import numpy as np
import pytest

from models.initializers import INITIALIZERS, GlorotBengioStandard, get_initializer
from models.registry import UnknownNameError


def test_standard_samples_lie_in_the_bound_with_variance_one_third_over_fan_in():
    fan_in = 400
    w = keras.ops.convert_to_numpy(GlorotBengioStandard(seed=0)((fan_in, 300)))
    bound = 1.0 / np.sqrt(fan_in)
    assert w.min() >= -bound and w.max() <= bound
    # Uniform on [-b, b] fills the interval: the extremes come close to it.
    assert w.min() < -0.99 * bound and w.max() > 0.99 * bound
    assert w.var() == pytest.approx(1.0 / (3 * fan_in), rel=0.02)
    assert abs(w.mean()) < 3 * np.sqrt(1.0 / (3 * fan_in) / w.size)


def test_standard_counts_the_receptive_field_in_a_conv_fan_in():
    w = keras.ops.convert_to_numpy(GlorotBengioStandard(seed=1)((3, 3, 16, 64)))
    bound = 1.0 / np.sqrt(3 * 3 * 16)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound


def test_standard_is_reproducible_and_serializable():
    init = GlorotBengioStandard(seed=7)
    np.testing.assert_array_equal(init((5, 4)), GlorotBengioStandard(seed=7)((5, 4)))
    assert not np.allclose(init((5, 4)), GlorotBengioStandard(seed=8)((5, 4)))
    restored = keras.initializers.deserialize(keras.initializers.serialize(init))
    assert isinstance(restored, GlorotBengioStandard)
    assert restored.get_config() == {"seed": 7}


def test_standard_rejects_a_non_integer_seed():
    with pytest.raises(ValueError, match=r"Received: seed=1\.5"):
        GlorotBengioStandard(seed=1.5)


def test_registry_has_the_promised_names():
    assert {
        "glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
        "lecun_normal", "lecun_uniform", "standard", "orthogonal",
    } <= set(INITIALIZERS)


@pytest.mark.parametrize("name", INITIALIZERS)
def test_seeded_initializers_are_reproducible(name):
    first = get_initializer(name, seed=3)
    assert isinstance(first, keras.initializers.Initializer)
    a = keras.ops.convert_to_numpy(first((6, 6)))
    b = keras.ops.convert_to_numpy(get_initializer(name, seed=3)((6, 6)))
    c = keras.ops.convert_to_numpy(get_initializer(name, seed=4)((6, 6)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_he_normal_has_the_he_variance():
    w = keras.ops.convert_to_numpy(get_initializer("he_normal", seed=0)((500, 200)))
    # Keras truncates at 2 std, which shrinks the variance to exactly 2/fan_in.
    assert w.var() == pytest.approx(2.0 / 500, rel=0.05)


def test_standard_name_gives_the_glorot_bengio_class():
    assert isinstance(get_initializer("standard", seed=0), GlorotBengioStandard)


def test_unknown_initializer():
    with pytest.raises(UnknownNameError, match=r"Unknown initializer 'xavier'\. Valid choices: .*glorot_normal"):
        get_initializer("xavier")
