"""L1/L2 weight penalties, with λ = 0 meaning no regularizer at all."""

from __future__ import annotations

import math

import keras


def check_penalty(value: object, arg: str) -> float:
    """Returns `value` as a float if it is a finite number >= 0, else raises.

    Args:
        value: The penalty coefficient λ that was received.
        arg: Name of the argument, used in the error message.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{arg}` must be a number >= 0. Received: {arg}={value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{arg}` must be a finite number >= 0. Received: {arg}={value!r}")
    return float(value)


def make_regularizer(l1: float = 0.0, l2: float = 0.0) -> keras.regularizers.Regularizer | None:
    """Returns the penalty `l1 * sum(|w|) + l2 * sum(w**2)`, or None if both are 0.

    This is Keras' `L1L2`: the coefficients multiply the plain sums, with no 1/2
    and no division by the number of examples, so the lecture's `λ ||θ||_2^2` is
    `l2=λ` and its `λ ||θ||_1` is `l1=λ`. Keras adds the penalty to the loss that
    is minimized (the per-batch mean loss).

    Returning None when both are 0 makes λ = 0 on the lecture's grid exactly the
    unregularized model, not a model with a zero-valued penalty term.

    Args:
        l1: Coefficient of the L1 (LASSO) penalty, >= 0. Defaults to 0.
        l2: Coefficient of the L2 (ridge) penalty, >= 0. Defaults to 0.

    Raises:
        ValueError: if a coefficient is negative, infinite, NaN or not a number.

    Example:

    >>> keras.layers.Dense(8, kernel_regularizer=make_regularizer(l2=0.01))
    """
    l1 = check_penalty(l1, "l1")
    l2 = check_penalty(l2, "l2")
    if l1 == 0.0 and l2 == 0.0:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)
