"""ProbeStatistics against hand computations; MlflowEpochLogger's batching."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from callbacks import MlflowEpochLogger, ProbeStatistics, dead_fraction, saturated_fraction
from models import build_mlp


def _tiny_model(activation="relu", seed=0):
    model = build_mlp((3,), 2, depth=2, width=4, activation=activation, seed=seed)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(16, 3)).astype("float32"), rng.integers(0, 2, 16)


def _tape_norms(model, x, y):
    kernels = {layer.name: layer.kernel for layer in model.layers if getattr(layer, "kernel", None) is not None}
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x)))
    grads = tape.gradient(loss, list(kernels.values()))
    return {name: float(tf.norm(g)) for name, g in zip(kernels, grads)}


def test_gradient_norms_match_a_hand_written_gradient_tape():
    x, y = _data()
    model = _tiny_model()
    at_init = _tape_norms(model, x, y)
    probe = ProbeStatistics(x, y)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[probe])
    after = _tape_norms(model, x, y)
    assert set(at_init) == {"dense_0", "dense_1", "output"}
    for name in at_init:
        assert probe.initial_logs[f"grad_norm/{name}"] == pytest.approx(at_init[name], rel=1e-5)
        assert probe.history[f"grad_norm/{name}"][0] == pytest.approx(at_init[name], rel=1e-5)
        # The epoch-end value is written into logs, so History (and MLflow) see it.
        assert history.history[f"grad_norm/{name}"][-1] == pytest.approx(after[name], rel=1e-5)
    assert len(probe.history["grad_norm/dense_0"]) == 3  # init + 2 epochs


def test_dead_and_saturated_fractions_on_hand_set_weights():
    x = np.array([[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [2.0, 0.1, 1.0], [1.0, 0.5, 1.0]], "float32")  # all positive
    y = np.array([0, 1, 0, 1])
    model = _tiny_model("relu")
    dense = model.get_layer("dense_0")
    kernel = np.zeros((3, 4), "float32")
    kernel[:, 0] = 1.0  # unit 0: z > 0 on every example: alive
    kernel[:, 1] = -1.0  # unit 1: z < 0 on every example: dead
    kernel[0, 2], kernel[1, 2] = 1.0, -1.0  # unit 2: sign varies: alive
    kernel[:, 3] = -5.0  # unit 3: dead
    dense.set_weights([kernel, np.zeros(4, "float32")])
    probe = ProbeStatistics(x, y)
    probe.set_model(model)
    probe.on_train_begin()
    assert probe.initial_logs["dead_fraction/act_0"] == pytest.approx(0.5)
    # Unit 2 is negative on examples 1 and 0 (1-2, 0.5-1 < 0): 2 zero slopes + units 1, 3 everywhere.
    expected_zero_slopes = (2 + 4 + 4) / 16
    assert probe.initial_logs["saturated_fraction/act_0"] == pytest.approx(expected_zero_slopes)


def test_saturation_of_sigmoid_units():
    x = np.array([[10.0, 0.0, 0.0], [0.1, 0.0, 0.0]], "float32")
    model = _tiny_model("sigmoid")
    kernel = np.zeros((3, 4), "float32")
    kernel[0, :] = [1.0, 1.0, 0.0, 0.0]  # units 0, 1: z = 10 (σ' ≈ 4.5e-5) and z = 0.1
    model.get_layer("dense_0").set_weights([kernel, np.zeros(4, "float32")])
    probe = ProbeStatistics(x, np.array([0, 1]))
    probe.set_model(model)
    probe.on_train_begin()
    # Only (example 0, units 0 and 1) are saturated; σ' never reaches exactly 0, so nothing is dead.
    assert probe.initial_logs["saturated_fraction/act_0"] == pytest.approx(2 / 8)
    assert probe.initial_logs["dead_fraction/act_0"] == 0.0


def test_fraction_functions_on_stacked_shapes():
    derivatives = tf.constant([[[0.0, 1.0], [0.0, 0.5]], [[0.001, 0.0], [1.0, 0.0]]])  # (members, batch, units)
    np.testing.assert_allclose(dead_fraction(derivatives).numpy(), [0.5, 0.5])
    np.testing.assert_allclose(saturated_fraction(derivatives, 0.01).numpy(), [0.5, 0.75])


def test_probe_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="received 3 inputs and 2 targets"):
        ProbeStatistics(np.zeros((3, 2)), np.zeros(2))


class _RecordingClient:
    def __init__(self):
        self.calls = []

    def log_batch(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        self.calls.append((run_id, list(metrics)))


def test_mlflow_logger_makes_one_batched_call_per_epoch():
    x, y = _data()
    model = _tiny_model()
    client = _RecordingClient()
    probe = ProbeStatistics(x, y)
    logger = MlflowEpochLogger(client, "run-1", initial_from=[probe], synchronous=True)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[probe, logger])
    assert len(client.calls) == 4  # initialization + 3 epochs
    steps = [{m.step for m in metrics} for _, metrics in client.calls]
    assert steps == [{0}, {1}, {2}, {3}]
    first_epoch = {m.key for m in client.calls[1][1]}
    assert {"loss", "grad_norm/dense_0", "dead_fraction/act_0"} <= first_epoch
    init_keys = {m.key for m in client.calls[0][1]}
    assert "loss" not in init_keys and "grad_norm/output" in init_keys
