"""Per-layer gradient norms and unit statistics on a fixed probe batch."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from callbacks.statistics import SATURATION_THRESHOLD, dead_fraction, saturated_fraction

_ACTIVATION_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
)


class ProbeStatistics(keras.callbacks.Callback):
    """Measures how gradients and units behave, layer by layer, as a model trains.

    On a fixed probe batch, before the first training step and at the end of
    every epoch, it computes:

    - ``grad_norm/<layer>``: the L2 norm of the loss gradient with respect to the
      kernel of every layer that has one (Dense, Conv);
    - ``dead_fraction/<layer>``: for every activation layer, the share of units
      whose derivative is zero on every probe example (dead ReLUs);
    - ``saturated_fraction/<layer>``: the share of (example, unit) pairs whose
      activation derivative is below ``saturation_threshold`` (flat sigmoid and
      tanh tails).

    Epoch values are written into ``logs`` (so `History`, `EarlyStopping` and the
    MLflow logger see them); the values at initialization are in
    ``initial_logs``. The gradient is of the data loss alone: regularization
    penalties are left out so the norms show what backprop carries.

    Args:
        probe_x: Inputs of the probe batch (keep it small: it runs every epoch).
        probe_y: Targets of the probe batch.
        loss: The loss to differentiate. Defaults to the model's compiled loss.
        saturation_threshold: Derivative below which a unit counts as saturated.

    Example:

    >>> probe = ProbeStatistics(x_train[:256], y_train[:256])
    >>> model.fit(x_train, y_train, epochs=5, callbacks=[probe])
    >>> probe.history["grad_norm/dense_0"]  # initialization, then every epoch
    """

    def __init__(
        self,
        probe_x: np.ndarray,
        probe_y: np.ndarray,
        *,
        loss: str | keras.losses.Loss | None = None,
        saturation_threshold: float = SATURATION_THRESHOLD,
    ):
        super().__init__()
        if len(probe_x) == 0 or len(probe_x) != len(probe_y):
            raise ValueError(
                "ProbeStatistics needs a non-empty probe batch with one target per input; "
                f"received {len(probe_x)} inputs and {len(probe_y)} targets."
            )
        if saturation_threshold <= 0:
            raise ValueError(f"saturation_threshold must be > 0; received {saturation_threshold}.")
        self.probe_x = tf.convert_to_tensor(probe_x)
        self.probe_y = tf.convert_to_tensor(probe_y)
        self.loss = loss
        self.saturation_threshold = saturation_threshold
        self.initial_logs: dict[str, float] = {}
        self.history: dict[str, list[float]] = {}
        self._measure = None

    def on_train_begin(self, logs=None):
        self.history = {}
        self._measure = self._build_measure()
        self.initial_logs = self._record()

    def on_epoch_end(self, epoch, logs=None):
        values = self._record()
        if logs is not None:
            logs.update(values)

    def _record(self) -> dict[str, float]:
        values = {key: float(value) for key, value in self._measure().items()}
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        return values

    def _build_measure(self):
        model = self.model
        loss_fn = keras.losses.get(self.loss if self.loss is not None else model.loss)
        kernel_layers = [layer for layer in _flat_layers(model) if getattr(layer, "kernel", None) is not None]
        activation_layers = [layer for layer in _flat_layers(model) if isinstance(layer, _ACTIVATION_LAYERS)]
        # One functional pass exposes every activation layer's input (its pre-activation).
        preact_model = keras.Model(model.inputs, [layer.input for layer in activation_layers]) if activation_layers else None
        x, y = self.probe_x, self.probe_y
        threshold = self.saturation_threshold

        @tf.function
        def measure() -> dict[str, tf.Tensor]:
            kernels = [layer.kernel for layer in kernel_layers]
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(loss_fn(y, model(x, training=False)))
            values = {
                f"grad_norm/{layer.name}": tf.norm(grad)
                for layer, grad in zip(kernel_layers, tape.gradient(loss, kernels))
            }
            if preact_model is None:
                return values
            preacts = preact_model(x, training=False)
            preacts = preacts if isinstance(preacts, (list, tuple)) else [preacts]
            for layer, z in zip(activation_layers, preacts):
                with tf.GradientTape() as inner:
                    inner.watch(z)
                    total = tf.reduce_sum(layer(z))
                derivative = tf.reshape(inner.gradient(total, z), [tf.shape(z)[0], -1])
                values[f"dead_fraction/{layer.name}"] = dead_fraction(derivative)
                values[f"saturated_fraction/{layer.name}"] = saturated_fraction(derivative, threshold)
            return values

        return measure


def _flat_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Layers in call order, looking inside nested models."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layers.extend(_flat_layers(layer))
        else:
            layers.append(layer)
    return layers
