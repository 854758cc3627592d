"""StackedMLP holds its members exactly as separate `build_mlp` models (training: tests/engine/train)."""

import keras
import numpy as np
import pytest

from models.mlp import build_mlp
from models.stacked import StackedMLP, stack_models

ACTIVATIONS = ["relu", "sigmoid", "tanh", "prelu"]


def _data(n=64, features=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, features)).astype("float32")


def test_forward_matches_member_models():
    x = _data()
    stack = StackedMLP(6, 3, depth=3, width=8, activations=ACTIVATIONS, initializers=["glorot_uniform"] * 4, seed=1)
    logits = stack(x).numpy()
    assert logits.shape == (4, 64, 3)
    for member in range(4):
        expected = stack.member_model(member)(x).numpy()
        np.testing.assert_allclose(logits[member], expected, rtol=1e-5, atol=1e-6)


def test_members_of_different_widths_compute_their_own_nets():
    x = _data()
    stack = StackedMLP(6, 3, depth=2, width=[2, 8, 5], activations=["prelu", "relu", "tanh"],
                       initializers=["he_normal"] * 3, seed=1)
    logits = stack(x).numpy()
    for member, width in enumerate([2, 8, 5]):
        model = stack.member_model(member)
        assert model.get_layer("dense_1").units == width
        np.testing.assert_allclose(logits[member], model(x).numpy(), rtol=1e-5, atol=1e-6)
    # A member's own slices are drawn as if it were alone.
    alone = StackedMLP(6, 3, depth=2, width=5, activations=["tanh"], initializers=["he_normal"], seed=1)
    for ours, its in zip(stack.member_weights(2), alone.member_weights(0)):
        np.testing.assert_array_equal(ours, its)


def test_members_sharing_an_initializer_start_from_the_same_weights():
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "tanh", "relu"],
                       initializers=["glorot_uniform", "glorot_uniform", "he_normal"], seed=3)
    kernel = stack.kernels[0].numpy()
    np.testing.assert_array_equal(kernel[0], kernel[1])
    assert not np.allclose(kernel[0], kernel[2])


def test_a_member_seed_draws_the_weights_build_mlp_starts_from():
    """Per-member seeds: each member starts where `build_mlp(seed=...)` does, so a packed seed is that seed's net."""
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu"] * 3, initializers=["he_normal"] * 3, seed=[4, 7, 4])
    for member, seed in enumerate([4, 7, 4]):
        model = build_mlp((6,), 3, depth=2, width=8, kernel_initializer="he_normal", seed=seed)
        for ours, its in zip(stack.member_weights(member), model.get_weights()):
            np.testing.assert_array_equal(ours, its)
    with pytest.raises(ValueError, match="one seed, or one per member"):
        StackedMLP(6, 3, depth=1, width=4, activations=["relu"] * 2, initializers=["he_normal"] * 2, seed=[1, 2, 3])


def test_a_subset_keeps_its_members_weights_slopes_and_penalties():
    x = _data()
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu", "prelu", "prelu", "tanh"], initializers=["he_normal"] * 4,
                       l2=[0.0, 0.1, 0.2, 0.3], seed=[0, 1, 2, 3])
    stack.slopes[0].assign(stack.slopes[0] + np.arange(4, dtype="float32")[:, None, None])  # slopes that differ per member
    subset = stack.subset([2, 3])
    np.testing.assert_array_equal(subset(x).numpy(), stack(x).numpy()[[2, 3]])
    np.testing.assert_allclose(subset.penalties().numpy(), stack.penalties().numpy()[[2, 3]], rtol=1e-6)
    assert subset.seeds == [2, 3] and subset.activations == ["prelu", "tanh"]
    dropped = StackedMLP(6, 3, depth=1, width=8, activations=["relu"] * 3, initializers=["he_normal"] * 3,
                         keep_prob=[0.5, 0.6, 0.7], input_keep_prob=[1.0, 0.8, 0.9], max_norm=[None, 2.0, 3.0]).subset([2, 0])
    assert dropped.keep_probs.tolist() == [0.7, 0.5] and dropped.input_keep_probs.tolist() == [0.9, 1.0]
    assert dropped.max_norms.tolist() == [3.0, np.inf]
    with pytest.raises(ValueError, match="one shared width"):
        StackedMLP(6, 3, depth=1, width=[4, 5], activations=["relu"] * 2, initializers=["he_normal"] * 2).subset([0])


def test_penalties_are_keras_kernel_regularizers():
    stack = StackedMLP(6, 3, depth=2, width=[4, 7, 7], activations=["relu"] * 3, initializers=["he_normal"] * 3,
                       l1=[0.3, 0.0, 0.0], l2=[0.0, 0.7, 0.0], seed=0)
    penalties = stack.penalties().numpy()
    for member in range(3):
        keras_penalty = sum(float(loss) for loss in stack.member_model(member).losses)
        np.testing.assert_allclose(penalties[member], keras_penalty, rtol=1e-6)
    assert penalties[2] == 0.0 and stack.penalized
    unpenalized = StackedMLP(6, 3, depth=1, width=4, activations=["relu"], initializers=["he_normal"])
    assert not unpenalized.penalized and unpenalized.penalties().numpy().tolist() == [0.0]


def test_stack_models_holds_the_models_weights_and_penalties():
    x = _data()
    models = [build_mlp((6,), 3, depth=2, width=w, l2=l2, seed=w) for w, l2 in ((3, 0.0), (9, 0.05))]
    stack = stack_models(models, "relu")
    assert stack.widths == [3, 9]
    np.testing.assert_allclose(stack.l2.numpy(), [[0.0, 0.05]] * 3)
    for member, model in enumerate(models):
        for ours, its in zip(stack.member_weights(member), model.get_weights()):
            np.testing.assert_array_equal(ours, its)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(stack(x)[member]))
        np.testing.assert_allclose(probabilities, keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    np.testing.assert_allclose(stack.penalties().numpy()[1], float(sum(models[1].losses)), rtol=1e-6)


def test_stack_models_rejects_what_it_cannot_represent():
    with pytest.raises(ValueError, match="one depth; received depths \\[1, 2\\]"):
        stack_models([build_mlp((4,), 2, depth=d, width=3) for d in (1, 2)], "relu")
    with pytest.raises(ValueError, match="layers the stack does not apply: dropout_0"):
        stack_models([build_mlp((4,), 2, depth=1, width=3, keep_prob=0.5)], "relu")
    with pytest.raises(ValueError, match="penalizes its biases"):
        stack_models([build_mlp((4,), 2, depth=1, width=3, bias_l2=0.1)], "relu")


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="one activation and one initializer per member"):
        StackedMLP(4, 2, depth=1, width=4, activations=["relu"], initializers=[])
    with pytest.raises(ValueError, match="depth=-1"):
        StackedMLP(4, 2, depth=-1, width=4, activations=["relu"], initializers=["he_normal"])
    with pytest.raises(ValueError, match="one width, or one per member \\(2\\); received 3 widths"):
        StackedMLP(4, 2, depth=1, width=[4, 4, 4], activations=["relu"] * 2, initializers=["he_normal"] * 2)
    with pytest.raises(ValueError, match="one keep_prob, or one per member \\(1\\); received 2"):
        StackedMLP(4, 2, depth=1, width=4, activations=["relu"], initializers=["he_normal"], keep_prob=[0.5, 0.5])
    with pytest.raises(ValueError, match="`input_keep_prob` must be in"):
        StackedMLP(4, 2, depth=1, width=4, activations=["relu"], initializers=["he_normal"], input_keep_prob=0.0)
    with pytest.raises(ValueError, match="`max_norm` must be a positive"):
        StackedMLP(4, 2, depth=1, width=4, activations=["relu"], initializers=["he_normal"], max_norm=-1.0)
    with pytest.raises(ValueError, match="l2 must be finite and >= 0"):
        StackedMLP(4, 2, depth=1, width=4, activations=["relu"], initializers=["he_normal"], l2=-1.0)
