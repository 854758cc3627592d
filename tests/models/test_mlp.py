import keras
import numpy as np
import pytest

from models.augmentation import SignalAugmentation
from models.dropout import InvertedDropout
from models.initializers import GlorotBengioStandard
from models.mlp import build_mlp
from models.registry import UnknownNameError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 5)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")


def names(model):
    return [layer.name for layer in model.layers]


def kernels(model):
    return [layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def biases(model):
    return [layer.bias.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def regularization(model):
    return float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))


def test_plain_layer_names_and_uncompiled():
    model = build_mlp((5,), 3, depth=2, width=4)
    assert names(model) == ["inputs", "dense_0", "act_0", "dense_1", "act_1", "output"]
    assert model.name == "mlp" and not model.compiled
    assert model.output_shape == (None, 3)
    assert model.get_layer("dense_1").units == 4


def test_hidden_dense_layers_are_linear_and_followed_by_the_activation_layer():
    model = build_mlp((5,), 2, depth=2, width=4, activation="tanh")
    for i in range(2):
        assert model.get_layer(f"dense_{i}").activation is keras.activations.linear
        assert model.get_layer(f"act_{i}").activation is keras.activations.tanh


@pytest.mark.parametrize("name, cls", [("prelu", keras.layers.PReLU), ("leaky_relu", keras.layers.LeakyReLU)])
def test_activation_layers_with_parameters(name, cls):
    model = build_mlp((5,), 2, depth=1, width=4, activation=name)
    assert isinstance(model.get_layer("act_0"), cls)


def test_all_options_give_the_contracted_names_in_order():
    model = build_mlp(
        (8, 8, 1), 10, depth=2, width=6, keep_prob=0.5, input_keep_prob=0.8, batch_norm=True,
        augmentation=SignalAugmentation(name="aug"), seed=0,
    )
    assert names(model) == [
        "inputs", "aug", "flatten", "input_dropout",
        "dense_0", "bn_0", "act_0", "dropout_0",
        "dense_1", "bn_1", "act_1", "dropout_1",
        "output",
    ]
    assert model.get_layer("dropout_0").keep_prob == 0.5
    assert model.get_layer("input_dropout").keep_prob == 0.8
    assert isinstance(model.get_layer("dropout_1"), InvertedDropout)
    # Batch norm's offset replaces the Dense bias it would cancel.
    assert model.get_layer("dense_0").bias is None


def test_no_flatten_for_vectors_and_no_dropout_at_keep_one():
    model = build_mlp((5,), 2, depth=1, width=4, keep_prob=1.0, input_keep_prob=1.0)
    assert not {"flatten", "input_dropout", "dropout_0"} & set(names(model))


def test_depth_zero_is_softmax_regression():
    model = build_mlp((5,), 3, depth=0, width=4, seed=0)
    assert names(model) == ["inputs", "output"]
    (w,), (b,) = kernels(model), biases(model)
    logits = X @ w + b
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model(X), expected, rtol=1e-5)


def test_single_output_is_linear_unless_told_otherwise():
    model = build_mlp((5,), 1, depth=0, width=1, seed=0)
    (w,), (b,) = kernels(model), biases(model)
    np.testing.assert_allclose(model(X), X @ w + b, rtol=1e-5, atol=1e-6)
    sigmoid = build_mlp((5,), 1, depth=0, width=1, seed=0, output_activation="sigmoid")
    np.testing.assert_allclose(sigmoid(X), 1 / (1 + np.exp(-(X @ w + b))), rtol=1e-5)


def test_linear_activations_collapse_to_one_affine_map():
    model = build_mlp((5,), 1, depth=3, width=7, activation="linear", seed=1)
    ws, bs = kernels(model), biases(model)
    w_total, b_total = ws[0], bs[0]
    for w, b in zip(ws[1:], bs[1:]):
        w_total, b_total = w_total @ w, b_total @ w + b
    np.testing.assert_allclose(model(X), X @ w_total + b_total, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_kernel_penalty_equals_the_hand_computed_sum(penalty):
    lam = 0.04
    model = build_mlp((5,), 3, depth=2, width=4, seed=0, **{penalty: lam})
    # Every Dense kernel (output included) carries a penalty; biases do not.
    assert len(model.losses) == 3
    ws = kernels(model)
    expected = lam * sum(np.abs(w).sum() if penalty == "l1" else (w**2).sum() for w in ws)
    assert regularization(model) == pytest.approx(expected, rel=1e-5)


def test_penalty_is_added_to_the_training_loss():
    lam = 0.32
    plain = build_mlp((5,), 2, depth=1, width=4, seed=3)
    ridge = build_mlp((5,), 2, depth=1, width=4, seed=3, l2=lam)
    for model in (plain, ridge):
        model.compile(loss="sparse_categorical_crossentropy")
    gap = ridge.evaluate(X, Y, verbose=0) - plain.evaluate(X, Y, verbose=0)
    assert gap == pytest.approx(lam * sum((w**2).sum() for w in kernels(ridge)), rel=1e-4)


def test_zero_lambda_is_exactly_no_regularizer():
    plain = build_mlp((5,), 2, depth=2, width=4, seed=3)
    zero = build_mlp((5,), 2, depth=2, width=4, seed=3, l1=0.0, l2=0.0, bias_l1=0.0, bias_l2=0.0)
    assert zero.losses == []
    assert all(
        layer.kernel_regularizer is None and layer.bias_regularizer is None
        for layer in zero.layers
        if isinstance(layer, keras.layers.Dense)
    )
    for model in (plain, zero):
        model.compile(loss="sparse_categorical_crossentropy")
    assert zero.evaluate(X, Y, verbose=0) == plain.evaluate(X, Y, verbose=0)


def test_biases_are_not_penalized_unless_asked():
    model = build_mlp((5,), 2, depth=1, width=4, seed=0, l2=0.1)
    before = regularization(model)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.bias.assign(np.full(layer.bias.shape, 3.0, "float32"))
    assert regularization(model) == pytest.approx(before, rel=1e-6)

    asked = build_mlp((5,), 2, depth=1, width=4, seed=0, bias_l1=0.5, bias_l2=0.1)
    for layer in asked.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.bias.assign(np.full(layer.bias.shape, -2.0, "float32"))
    n_biases = 4 + 2
    assert regularization(asked) == pytest.approx(n_biases * (0.5 * 2.0 + 0.1 * 4.0), rel=1e-6)


def test_same_seed_same_weights_different_seed_different_weights():
    a = build_mlp((5,), 3, depth=2, width=4, seed=11)
    b = build_mlp((5,), 3, depth=2, width=4, seed=11)
    c = build_mlp((5,), 3, depth=2, width=4, seed=12)
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.allclose(kernels(a)[0], kernels(c)[0])


def test_each_layer_gets_its_own_seed():
    model = build_mlp((6,), 6, depth=3, width=6, seed=0)
    ws = kernels(model)  # all 6x6
    assert not np.allclose(ws[1], ws[2]) and not np.allclose(ws[0], ws[3])


def test_kernel_initializer_is_used():
    model = build_mlp((50,), 2, depth=1, width=40, kernel_initializer="standard", seed=0)
    assert isinstance(model.get_layer("dense_0").kernel_initializer, GlorotBengioStandard)
    assert np.abs(kernels(model)[0]).max() <= 1 / np.sqrt(50)


def test_dropout_is_active_only_in_training():
    model = build_mlp((5,), 2, depth=1, width=64, keep_prob=0.5, input_keep_prob=0.8, seed=0)
    np.testing.assert_array_equal(model(X), model(X, training=False))
    assert not np.allclose(model(X, training=True), model(X))


def test_full_model_trains_and_round_trips_through_a_file(tmp_path):
    model = build_mlp(
        (5,), 2, depth=2, width=16, activation="prelu", keep_prob=0.8, batch_norm=True, l2=0.01,
        augmentation=SignalAugmentation(max_shift=0, noise_std=0.01, seed=0), seed=0,
    )
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    history = model.fit(X, Y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "mlp.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert names(loaded) == names(model)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"depth": -1}, ValueError, r"`depth` must be an integer >= 0\. Received: depth=-1"),
        ({"width": 0}, ValueError, r"`width` must be an integer >= 1\. Received: width=0"),
        ({"width": 2.5}, ValueError, r"Received: width=2\.5"),
        ({"keep_prob": 0.0}, ValueError, r"`keep_prob` must be in \(0, 1\]\. Received: keep_prob=0\.0"),
        ({"input_keep_prob": 1.2}, ValueError, r"Received: input_keep_prob=1\.2"),
        ({"max_norm": 0.0}, ValueError, r"`max_norm` must be a positive finite number or None\. Received: max_norm=0\.0"),
        ({"l2": -0.01}, ValueError, r"Received: l2=-0\.01"),
        ({"bias_l1": -1}, ValueError, r"Received: bias_l1=-1"),
        ({"seed": 1.0}, ValueError, r"Received: seed=1\.0"),
        ({"augmentation": "flip"}, ValueError, r"`augmentation` must be a keras\.layers\.Layer"),
        ({"activation": "relu7"}, UnknownNameError, r"Unknown activation 'relu7'\. Valid choices: elu, gelu"),
        ({"kernel_initializer": "xavier"}, UnknownNameError, r"Unknown initializer 'xavier'"),
        ({"output_activation": "prelu"}, UnknownNameError, r"Unknown output activation 'prelu'.*softmax"),
        ({"num_classes": 0}, ValueError, r"Received: num_classes=0"),
        ({"input_shape": ()}, ValueError, r"Received: input_shape=\(\)"),
        ({"input_shape": (5, -1)}, ValueError, r"Received: input_shape=\(5, -1\)"),
    ],
)
def test_bad_arguments_say_what_was_received(kwargs, error, message):
    args = {"input_shape": (5,), "num_classes": 2, "depth": 1, "width": 4}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        build_mlp(args.pop("input_shape"), args.pop("num_classes"), **args)
