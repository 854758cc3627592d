"""Unit statistics shared by the probe callback and the stacked trainer."""

from __future__ import annotations

import tensorflow as tf

SATURATION_THRESHOLD = 0.01
"""f'(z) below this counts as saturated: |z| > 4.6 for sigmoid, |z| > 3.0 for tanh."""


def dead_fraction(derivatives: tf.Tensor) -> tf.Tensor:
    """Share of units whose activation derivative is zero on every probe example.

    Args:
        derivatives: f'(z) of shape ``(..., batch, units)``.

    Returns:
        The fraction over units, of shape ``(...)``. A unit with f'(z) = 0 on the
        whole probe batch passes no gradient at all: a dead ReLU.
    """
    dead = tf.reduce_all(tf.equal(derivatives, 0.0), axis=-2)
    return tf.reduce_mean(tf.cast(dead, tf.float32), axis=-1)


def saturated_fraction(derivatives: tf.Tensor, threshold: float = SATURATION_THRESHOLD) -> tf.Tensor:
    """Share of (example, unit) pairs where f'(z) < ``threshold``.

    For sigmoid and tanh these are the flat tails that starve backprop; for the
    piecewise-linear activations it is the zero-slope region.

    Args:
        derivatives: f'(z) of shape ``(..., batch, units)``.
        threshold: The derivative below which a unit counts as saturated.

    Returns:
        The fraction of shape ``(...)``.
    """
    saturated = tf.cast(tf.abs(derivatives) < threshold, tf.float32)
    return tf.reduce_mean(saturated, axis=[-2, -1])
