"""fit_stack trains every member exactly as a separate Keras model would."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ablations.engine.train import OPTIMIZERS, StackRecording, StackTraining, fit_stack, member_statistics, train_pack
from models.stacked import StackedMLP

ACTIVATIONS = ["relu", "sigmoid", "tanh", "prelu"]


def keras_fit(model, x, y, *, epochs, batch_size, learning_rate):
    """What Keras itself does with the member: Adam and mean cross-entropy (plus its penalties), batches in order."""
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model


def assert_members_match(stack, models, rtol=1e-4, atol=1e-5):
    for member, model in enumerate(models):
        trained = stack.member_model(member)
        for expected, actual in zip(model.get_weights(), trained.get_weights()):
            np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_training_equals_separate_keras_fits(classification, optimizer):
    """Summed member losses + elementwise Adam = each member trained alone on the same batches."""
    x, y = classification(n=40)
    stack = StackedMLP(6, 3, depth=2, width=8, activations=ACTIVATIONS, initializers=["glorot_uniform"] * 4, seed=2)
    separate = [stack.member_model(m) for m in range(4)]  # copies of the initial weights
    fit_stack(stack, x, y, training=StackTraining(epochs=3, learning_rate=1e-2, batch_size=8, shuffle=False, optimizer=optimizer))
    assert_members_match(stack, [keras_fit(m, x, y, epochs=3, batch_size=8, learning_rate=1e-2) for m in separate])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_penalties_and_widths_train_as_separate_keras_fits(classification, optimizer):
    """Per-member widths (zero-padded, masked) and L1/L2 kernel penalties: each member still trains as alone."""
    x, y = classification(n=40)
    stack = StackedMLP(
        6, 3, depth=2, width=[3, 8, 5], activations=["relu", "tanh", "relu"],
        initializers=["he_normal", "glorot_uniform", "glorot_uniform"], l1=[0.01, 0.0, 0.0], l2=[0.0, 0.02, 0.0], seed=1,
    )
    separate = [stack.member_model(m) for m in range(3)]
    assert [len(model.losses) for model in separate] == [3, 3, 0]
    fit_stack(stack, x, y, training=StackTraining(epochs=3, learning_rate=1e-2, batch_size=8, shuffle=False, optimizer=optimizer))
    assert_members_match(stack, [keras_fit(m, x, y, epochs=3, batch_size=8, learning_rate=1e-2) for m in separate])
    # The padding of the narrow members never moves off zero.
    kernels = [keras.ops.convert_to_numpy(k) for k in stack.kernels]
    assert np.all(kernels[0][0, :, 3:] == 0) and np.all(kernels[1][0, 3:, :] == 0) and np.all(kernels[2][2, 5:, :] == 0)


def test_example_weights_train_each_member_on_its_own_examples(classification):
    """Full batch with 0/1 example weights: member m is the model fit on its rows alone (its CV folds)."""
    x, y = classification(n=30)
    stack = StackedMLP(6, 3, depth=1, width=[4, 6], activations=["relu", "relu"], initializers=["he_normal"] * 2, l2=0.01, seed=0)
    separate = [stack.member_model(m) for m in range(2)]
    weights = np.ones((2, 30), np.float32)
    weights[0, :10] = 0.0
    weights[1, 20:] = 0.0
    result = fit_stack(stack, x, y, weights, training=StackTraining(epochs=4, learning_rate=0.05), recording=StackRecording(record_every=2))
    for model, row in zip(separate, weights):
        own = row > 0
        keras_fit(model, x[own], y[own], epochs=4, batch_size=int(own.sum()), learning_rate=0.05)
    assert_members_match(stack, separate)
    # Recorded after steps 2 and 4: the objective (data loss plus penalty) the step before minimized.
    assert len(result.histories[0]["loss"]) == 2


def test_members_of_several_seeds_in_one_stack_train_as_in_a_stack_per_seed(classification):
    """Per-member seeds: initial weights and batch order follow each member's seed, as if each seed had its own stack."""
    x, y = classification(n=40)
    together = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "relu", "tanh"], initializers=["he_normal"] * 3, seed=[0, 1, 1])
    fit_stack(together, x, y, training=StackTraining(epochs=3, learning_rate=1e-2, batch_size=8, seed=[0, 1, 1], optimizer="fused_adam"))
    for seed, members in ((0, [0]), (1, [1, 2])):
        alone = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "relu", "tanh"][members[0] : members[-1] + 1],
                           initializers=["he_normal"] * len(members), seed=seed)
        fit_stack(alone, x, y, training=StackTraining(epochs=3, learning_rate=1e-2, batch_size=8, seed=seed, optimizer="fused_adam"))
        for own, member in enumerate(members):
            for ours, its in zip(together.member_weights(member), alone.member_weights(own)):
                np.testing.assert_allclose(ours, its, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="one per member"):
        fit_stack(together, x, y, training=StackTraining(epochs=1, learning_rate=1e-2, batch_size=8, seed=[0, 1]))


def test_probe_statistics_match_gradient_tape_per_member(classification):
    x, y = classification(n=32)
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "sigmoid"], initializers=["he_normal"] * 2, seed=4)
    result = fit_stack(
        stack,
        x,
        y,
        training=StackTraining(epochs=1, learning_rate=0.0, batch_size=32),
        recording=StackRecording(validation_data=(x, y), probe_size=32),
    )
    for member in range(2):
        model = stack.member_model(member)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True))
        layers = [model.get_layer("dense_0"), model.get_layer("dense_1"), model.get_layer("output")]
        grads = tape.gradient(loss, [layer.kernel for layer in layers])
        history = result.histories[member]
        for layer, grad in zip(layers, grads):
            assert history[f"grad_norm/{layer.name}"][0] == pytest.approx(float(tf.norm(grad)), rel=1e-4)
        # learning_rate 0: the validation loss after the epoch is the initial loss on the same examples.
        assert history["val_loss"] == [pytest.approx(float(loss), rel=1e-5)]
        # The backpropagated signal ‖∂L/∂z‖ at each pre-activation, from a forward pass written out by hand.
        w0, b0, w1, b1, wo, bo = (tf.constant(w) for w in stack.member_weights(member))
        f = {"relu": tf.nn.relu, "sigmoid": tf.sigmoid}[stack.activations[member]]
        with tf.GradientTape(persistent=True) as tape:
            z0 = tf.constant(x) @ w0 + b0
            tape.watch(z0)
            z1 = f(z0) @ w1 + b1
            tape.watch(z1)
            logits = f(z1) @ wo + bo
            tape.watch(logits)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        for name, z in (("act_0", z0), ("act_1", z1), ("output", logits)):
            assert history[f"signal_norm/{name}"][0] == pytest.approx(float(tf.norm(tape.gradient(loss, z))), rel=1e-4)


def test_unit_statistics_count_only_a_members_own_units(classification):
    x, y = classification(n=32)
    wide = StackedMLP(6, 3, depth=1, width=8, activations=["relu"], initializers=["he_normal"], seed=5)
    mixed = StackedMLP(6, 3, depth=1, width=[8, 2], activations=["relu", "relu"], initializers=["he_normal"] * 2, seed=5)
    alone = fit_stack(wide, x, y, training=StackTraining(epochs=1, learning_rate=0.0, batch_size=32), recording=StackRecording(probe_size=32)).histories[0]
    together = fit_stack(mixed, x, y, training=StackTraining(epochs=1, learning_rate=0.0, batch_size=32), recording=StackRecording(probe_size=32)).histories[0]
    for key in ("dead_fraction/act_0", "saturated_fraction/act_0", "grad_norm/dense_0"):
        assert together[key] == pytest.approx(alone[key], rel=1e-6)


def test_member_statistics_read_each_members_split(classification):
    x, y = classification(n=20)
    stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"] * 2, initializers=["he_normal"] * 2, l1=[0.0, 0.5], seed=0)
    train = np.zeros((2, 20))
    train[0, :10] = train[1, 10:] = 1
    stats = member_statistics(stack, x, y, train, 1 - train, 0.01)
    logits = keras.ops.convert_to_numpy(stack(x))
    errors = np.argmax(logits, axis=-1) != y
    np.testing.assert_allclose(stats["train_error"], [errors[0, :10].mean(), errors[1, 10:].mean()])
    np.testing.assert_allclose(stats["val_error"], [errors[0, 10:].mean(), errors[1, :10].mean()])
    kernels = [w for w in stack.member_weights(1)[0::2]]
    assert stats["penalty_term"][0] == 0.0
    np.testing.assert_allclose(stats["penalty_term"][1], 0.5 * sum(np.abs(k).sum() for k in kernels), rtol=1e-6)


def test_train_pack_logs_each_configuration_under_its_own_member(classification):
    x, y = classification(n=48, features=5, classes=2)
    configs = [
        {"activation": a, "initializer": "he_normal", "depth": 2, "width": 4, "epochs": 2, "batch_size": 16,
         "learning_rate": 1e-2, "seed": 0, "probe_size": 16}
        for a in ("tanh", "relu", "sigmoid")
    ]
    logged = [[] for _ in configs]
    pack = train_pack(configs, [lambda m, s, i=i: logged[i].append((s, m)) for i in range(3)], x, y, x, y, 2)
    assert [pack.stack.activations[m] for m in pack.members] == ["tanh", "relu", "sigmoid"]
    for history, steps in zip(pack.histories, logged):
        assert [s for s, _ in steps] == [0, 1, 2]
        assert history["val_loss"] == [metrics["val_loss"] for _, metrics in steps[1:]]


def test_bad_arguments_are_rejected(classification):
    x, y = classification(n=8)
    stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"], initializers=["he_normal"])
    with pytest.raises(ValueError, match="optimizer must be one of adam, fused_adam; received 'sgd'"):
        fit_stack(stack, x, y, training=StackTraining(epochs=1, learning_rate=0.1, optimizer="sgd"))
    with pytest.raises(ValueError, match="example_weights needs full-batch training"):
        fit_stack(stack, x, y, np.ones((1, 8)), training=StackTraining(epochs=1, learning_rate=0.1, batch_size=4))
    with pytest.raises(ValueError, match=r"shape \(1, 8\).*received shape \(2, 8\)"):
        fit_stack(stack, x, y, np.ones((2, 8)), training=StackTraining(epochs=1, learning_rate=0.1))
    with pytest.raises(ValueError, match="one logger per member"):
        fit_stack(stack, x, y, training=StackTraining(epochs=1, learning_rate=0.1), recording=StackRecording(loggers=[print, print]))


JIT_RTOL = 1e-4
"""XLA fuses and reorders float32 arithmetic: after a few epochs the weights agree to this relative tolerance."""


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [8, None])  # mini-batches (a ragged last batch) and the full batch
def test_xla_compiled_training_gives_the_same_numbers_within_tolerance(classification, optimizer, batch_size):
    x, y = classification(n=44)
    stacks = [
        StackedMLP(6, 3, depth=2, width=8, activations=ACTIVATIONS, initializers=["glorot_uniform"] * 4, seed=3) for _ in range(2)
    ]
    fits = [
        fit_stack(stack, x, y, training=StackTraining(epochs=4, learning_rate=1e-2, batch_size=batch_size, optimizer=optimizer, jit_compile=jit))
        for stack, jit in zip(stacks, (False, True))
    ]
    for plain, compiled in zip(*(s.trainable_variables for s in stacks)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(compiled), keras.ops.convert_to_numpy(plain), rtol=JIT_RTOL, atol=1e-6)
    np.testing.assert_allclose([h["loss"] for h in fits[1].histories], [h["loss"] for h in fits[0].histories], rtol=JIT_RTOL)
    assert not np.array_equal(x, 0)  # the data trained on is real


def test_the_jit_flag_reaches_fit_stack_through_the_environment(monkeypatch):
    from ablations.engine.device import JIT_ENV, jit_enabled

    monkeypatch.delenv(JIT_ENV, raising=False)
    assert jit_enabled() is False
    monkeypatch.setenv(JIT_ENV, "1")
    assert jit_enabled() is True
