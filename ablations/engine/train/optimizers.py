"""The optimizers of the stacked loops: every member's update on its slice of each stacked variable.

- `fit_members` gives each member its own `MemberOptimizer` (Keras's SGD,
  with or without momentum, RMSprop or Adam, at its own learning rate), applied
  by `PerMemberOptimizer`;
- `fit_stack` trains every member with one Adam (`OPTIMIZERS`): Keras's own
  (`KerasAdam`) or the same update as one fused kernel per variable (`FusedAdam`);
- `fit_trial` trains one Keras model with the optimizer `make_optimizer` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name ("adam", "sgd", "rmsprop", ...) with the given learning rate."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})


KINDS = ("sgd", "rmsprop", "adam")
"""The optimizers a member may use, with Keras's defaults for everything but the learning rate and momentum."""

_ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
_RMSPROP = {"rho": 0.9, "epsilon": 1e-7}


@dataclass(frozen=True)
class MemberOptimizer:
    """One member's optimizer: the update of ``keras.optimizers.{SGD, RMSprop, Adam}(learning_rate)``.

    Args:
        kind: One of `KINDS`.
        learning_rate: Its learning rate.
        momentum: SGD's momentum (Keras's, not Nesterov's); 0 for plain SGD.
    """

    kind: str
    learning_rate: float
    momentum: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"optimizer kind must be one of {', '.join(KINDS)}; received {self.kind!r}.")
        if self.momentum and self.kind != "sgd":
            raise ValueError(f"momentum is SGD's; received momentum={self.momentum} for {self.kind!r}.")


OPTIMIZERS = ("adam", "fused_adam")
"""`fit_stack`'s optimizers: Keras's Adam, or the same update as one fused kernel per variable.

Both follow Keras's Adam (its defaults, its formula), but they round
differently in the last bits (Keras rounds 1 - β₁ from float64, the kernel
computes it in float32), so an ablation keeps the one its numbers were made
with: the activation packs (`train_pack`) the fused kernel, the penalty
ablations Keras's Adam, the default. ``make bench`` times the two in this loop,
mini-batch and full batch; the fused kernel is the faster one.
"""


class FusedAdam:
    """Keras's Adam (same defaults and update) as one fused kernel per variable.

    A deep stack has dozens of variables; Keras's Adam builds several ops per
    variable per step, which dominates tracing and running a small model's
    step. ``ResourceApplyAdam`` computes the same update,
    m = β1 m + (1-β1) g, v = β2 v + (1-β2) g², w -= lr √(1-β2^t)/(1-β1^t) m / (√v + ε),
    in one op (``tests/engine/train/test_stacked.py`` checks it against ``Model.fit``).
    """

    def __init__(self, variables, learning_rate: float, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7):
        self.variables = list(variables)
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.moments = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.velocities = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)

    @property
    def state(self) -> list[tf.Variable]:
        """Its state: moments, velocities and step."""
        return [*self.moments, *self.velocities, self.iterations]

    def apply(self, gradients) -> None:
        step = tf.cast(self.iterations + 1, tf.float32)
        beta_1_power, beta_2_power = tf.pow(self.beta_1, step), tf.pow(self.beta_2, step)
        for variable, m, v, gradient in zip(self.variables, self.moments, self.velocities, gradients):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=self.learning_rate,
                beta1=self.beta_1,
                beta2=self.beta_2,
                epsilon=self.epsilon,
                grad=gradient,
            )
        self.iterations.assign_add(1)


class KerasAdam:
    """Keras's Adam on ``variables``, with the `FusedAdam` interface: ``apply(gradients)`` and its ``state``."""

    def __init__(self, variables, learning_rate: float):
        self.targets = list(variables)
        self.optimizer = keras.optimizers.Adam(learning_rate)
        # The optimizer's slots are made here, outside the traced step.
        self.optimizer.build(self.targets)
        self.state = list(self.optimizer.variables)

    def apply(self, gradients) -> None:
        self.optimizer.apply_gradients(zip(gradients, self.targets))


def stack_optimizer(name: str, variables, learning_rate: float) -> FusedAdam | KerasAdam:
    """Optimizer ``name`` for ``variables``: ``apply(gradients)``, and its variables in ``state``."""
    return FusedAdam(variables, learning_rate) if name == "fused_adam" else KerasAdam(variables, learning_rate)


def along_members(mask: tf.Tensor, variable: tf.Variable) -> tf.Tensor:
    """A ``(M,)`` mask shaped to broadcast over a stacked variable ``(M, ...)``."""
    return tf.reshape(mask, [-1] + [1] * (len(variable.shape) - 1))


class PerMemberOptimizer:
    """Each member's own Keras update (SGD, RMSprop or Adam at its learning rate) on its slice of every variable.

    The formulas are Keras's (``keras.optimizers``' ``update_step``). Where
    every member shares one optimizer and learning rate, TensorFlow's fused
    kernel applies it in one op per variable (``ResourceApplyAdam``, ...; they
    round some constants in float32 where Keras rounds them in float64);
    otherwise each kind present is computed elementwise and chosen per member.
    """

    def __init__(self, variables: Sequence[tf.Variable], optimizers: Sequence[MemberOptimizer], state: dict | None = None):
        self.variables = list(variables)
        self.optimizers = list(optimizers)
        kinds = np.array([o.kind for o in optimizers])
        self.kinds = [kind for kind in KINDS if (kinds == kind).any()]
        self.fused = len(set(self.optimizers)) == 1
        self.is_kind = {kind: tf.constant(kinds == kind) for kind in self.kinds}
        self.learning_rate = tf.constant([o.learning_rate for o in optimizers], tf.float32)
        self.momentum = tf.constant([o.momentum for o in optimizers], tf.float32)
        state = state or {}
        self.iterations = tf.Variable(state.get("iterations", 0), dtype=tf.int64, trainable=False)
        # RMSprop's fused kernel also keeps a momentum slot; with momentum 0 it stays the last increment.
        names = {"sgd": ["sgd_m"], "rmsprop": ["rmsprop_v", "rmsprop_mom"], "adam": ["adam_m", "adam_v"]}
        self.slots = {
            name: [tf.Variable(state[name][i] if name in state else tf.zeros_like(v), trainable=False) for i, v in enumerate(self.variables)]
            for kind in self.kinds
            for name in names[kind]
        }

    def subset(self, positions: np.ndarray, variables: Sequence[tf.Variable]) -> PerMemberOptimizer:
        """The optimizer of the members at ``positions``, now held in ``variables``, its state carried over."""
        index = tf.constant(positions)
        state = {name: [tf.gather(slot, index) for slot in slots] for name, slots in self.slots.items()}
        state["iterations"] = int(self.iterations.numpy())
        return PerMemberOptimizer(variables, [self.optimizers[p] for p in positions], state)

    def apply(self, gradients: Sequence[tf.Tensor]) -> None:
        step = tf.cast(self.iterations + 1, tf.float32)
        for index, (variable, gradient) in enumerate(zip(self.variables, gradients)):
            if self.fused:
                self._fused(index, variable, gradient)
                continue
            lr = along_members(self.learning_rate, variable)
            updated = None
            for kind in self.kinds:
                new = getattr(self, f"_{kind}")(index, variable, gradient, lr, step)
                updated = new if updated is None else tf.where(along_members(self.is_kind[kind], variable), new, updated)
            variable.assign(updated)
        self.iterations.assign_add(1)

    def _fused(self, index: int, variable, gradient: tf.Tensor) -> None:
        spec = self.optimizers[0]
        lr = tf.constant(spec.learning_rate, tf.float32)
        if spec.kind == "adam":
            step = tf.cast(self.iterations + 1, tf.float32)
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=self.slots["adam_m"][index].handle, v=self.slots["adam_v"][index].handle,
                beta1_power=tf.pow(_ADAM["beta_1"], step), beta2_power=tf.pow(_ADAM["beta_2"], step), lr=lr,
                beta1=_ADAM["beta_1"], beta2=_ADAM["beta_2"], epsilon=_ADAM["epsilon"], grad=gradient,
            )
        elif spec.kind == "rmsprop":
            # With momentum 0 its moment is lr·g/√(ms+ε), subtracted: Keras's update.
            tf.raw_ops.ResourceApplyRMSProp(
                var=variable.handle, ms=self.slots["rmsprop_v"][index].handle, mom=self.slots["rmsprop_mom"][index].handle, lr=lr,
                rho=_RMSPROP["rho"], momentum=0.0, epsilon=_RMSPROP["epsilon"], grad=gradient,
            )
        elif spec.momentum:
            tf.raw_ops.ResourceApplyKerasMomentum(
                var=variable.handle, accum=self.slots["sgd_m"][index].handle, lr=lr, grad=gradient, momentum=spec.momentum
            )
        else:
            tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=lr, delta=gradient)

    def _sgd(self, index, variable, gradient, lr, step) -> tf.Tensor:
        # Keras: m = m·μ − g·lr; w += m. With μ = 0 this is w + (−g·lr), bit for bit Keras's w − g·lr.
        velocity = self.slots["sgd_m"][index]
        velocity.assign(velocity * along_members(self.momentum, variable) - gradient * lr)
        return variable + velocity

    def _rmsprop(self, index, variable, gradient, lr, step) -> tf.Tensor:
        rho, epsilon = _RMSPROP["rho"], _RMSPROP["epsilon"]
        velocity = self.slots["rmsprop_v"][index]
        velocity.assign(rho * velocity + (1 - rho) * tf.square(gradient))
        return variable - (lr * gradient) / tf.sqrt(velocity + epsilon)

    def _adam(self, index, variable, gradient, lr, step) -> tf.Tensor:
        beta_1, beta_2, epsilon = _ADAM["beta_1"], _ADAM["beta_2"], _ADAM["epsilon"]
        m, v = self.slots["adam_m"][index], self.slots["adam_v"][index]
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        m.assign_add((gradient - m) * (1 - beta_1))
        v.assign_add((tf.square(gradient) - v) * (1 - beta_2))
        return variable - (m * alpha) / (tf.sqrt(v) + epsilon)
