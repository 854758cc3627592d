import keras
import numpy as np
import pytest
from scipy.special import erf

from models.activations import (
    ACTIVATIONS,
    LEAKY_RELU_SLOPE,
    activation_function,
    activation_layer,
)
from models.registry import UnknownNameError

X = np.linspace(-8.0, 8.0, 33, dtype="float32")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
REFERENCE = {
    "linear": lambda x: x,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),
    "swish": lambda x: x * _sigmoid(x),
}


def test_every_stateless_activation_has_a_reference():
    assert set(REFERENCE) == set(ACTIVATIONS) - {"prelu"}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_function_matches_its_formula(name):
    got = keras.ops.convert_to_numpy(activation_function(name)(X))
    np.testing.assert_allclose(got, REFERENCE[name](X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_layer_computes_the_same_function(name):
    layer = activation_layer(name, layer_name="act_3")
    assert layer.name == "act_3"
    got = keras.ops.convert_to_numpy(layer(X[None, :]))[0]
    np.testing.assert_allclose(got, REFERENCE[name](X), rtol=1e-5, atol=1e-5)
    assert not layer.trainable_weights


def test_leaky_relu_uses_the_lecture_slope_not_the_keras_default():
    assert LEAKY_RELU_SLOPE == 0.01
    layer = activation_layer("leaky_relu")
    assert isinstance(layer, keras.layers.LeakyReLU)
    assert float(layer(np.array([[-1.0]], "float32"))[0, 0]) == pytest.approx(-0.01)
    assert float(activation_function("leaky_relu")(np.float32(-2.0))) == pytest.approx(-0.02)


def test_prelu_is_a_layer_with_a_learnable_slope_per_unit():
    layer = activation_layer("prelu", layer_name="act_0")
    assert isinstance(layer, keras.layers.PReLU)
    y = keras.ops.convert_to_numpy(layer(np.array([[-2.0, 3.0, -4.0]], "float32")))
    # He et al. (2015) start the slopes at 0.25.
    np.testing.assert_allclose(y, [[-0.5, 3.0, -1.0]])
    (alpha,) = layer.trainable_weights
    assert tuple(alpha.shape) == (3,)


def test_prelu_slopes_can_be_shared_across_axes():
    layer = activation_layer("prelu", prelu_shared_axes=[1, 2])
    layer(np.zeros((1, 4, 4, 5), "float32"))
    (alpha,) = layer.trainable_weights
    assert tuple(alpha.shape) == (1, 1, 5)


def test_prelu_is_not_a_stateless_function():
    with pytest.raises(ValueError, match=r"activation_layer\('prelu'\)"):
        activation_function("prelu")


@pytest.mark.parametrize("factory", [activation_function, activation_layer])
def test_unknown_name_lists_every_choice(factory):
    with pytest.raises(UnknownNameError) as info:
        factory("softplus2")
    message = str(info.value)
    assert message.startswith("Unknown activation 'softplus2'. Valid choices: ")
    assert message.split("Valid choices: ")[1].split(", ") == sorted(ACTIVATIONS)


def test_relu_is_idempotent_and_sigmoid_is_not():
    relu, sigmoid = activation_function("relu"), activation_function("sigmoid")
    np.testing.assert_array_equal(relu(relu(X)), relu(X))
    assert not np.allclose(sigmoid(sigmoid(X)), sigmoid(X))
