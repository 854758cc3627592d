"""Weight initializers by name, seeded so that a run can be repeated exactly.

Besides Keras' own, this adds the "standard" initialization that Glorot & Bengio
(2010) used as the baseline their normalized (Glorot/Xavier) scheme improves on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras

from models.names import INITIALIZERS
from models.registry import resolve


def _fan_in(shape: Sequence[int]) -> int:
    """Number of inputs of one unit, as Keras counts it for Dense and Conv kernels."""
    if len(shape) == 0:
        return 1
    if len(shape) == 1:
        return int(shape[0])
    # Conv kernels are (*receptive_field, in_channels, out_channels).
    return int(math.prod(shape[:-1]))


@keras.saving.register_keras_serializable(package="ablations")
class GlorotBengioStandard(keras.initializers.Initializer):
    """Glorot & Bengio's "standard" initialization, U[-1/sqrt(n), 1/sqrt(n)].

    `n` is the fan-in. The variance is 1/(3 n), so the variance of activations
    shrinks by a factor 3 per layer in a linear regime: the paper's example of an
    initialization under which deep sigmoid/tanh nets train badly.

    Args:
        seed: Python integer, or None. With an integer, every call returns the
            same values for the same shape (as Keras' seeded initializers do), so
            give each layer its own seed.

    Example:

    >>> init = GlorotBengioStandard(seed=0)
    >>> layer = keras.layers.Dense(3, kernel_initializer=init)
    """

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(
                f"`seed` must be an integer or None. Received: seed={seed!r}"
            )
        self.seed = seed

    def __call__(self, shape, dtype=None):
        limit = 1.0 / math.sqrt(_fan_in(shape))
        return keras.random.uniform(
            shape, minval=-limit, maxval=limit, dtype=dtype, seed=self.seed
        )

    def get_config(self) -> dict:
        return {"seed": self.seed}


# Every factory takes `seed=` and returns a fresh initializer.
_FACTORIES: dict[str, Callable[..., keras.initializers.Initializer]] = {
    "glorot_uniform": keras.initializers.GlorotUniform,
    "glorot_normal": keras.initializers.GlorotNormal,
    "he_normal": keras.initializers.HeNormal,
    "he_uniform": keras.initializers.HeUniform,
    "lecun_normal": keras.initializers.LecunNormal,
    "lecun_uniform": keras.initializers.LecunUniform,
    "orthogonal": keras.initializers.Orthogonal,
    "standard": GlorotBengioStandard,
}

# The names are listed without Keras in models.names, for the command line's checks.
if tuple(_FACTORIES) != INITIALIZERS:
    raise ImportError(f"models.names.INITIALIZERS {INITIALIZERS} differs from the factories {tuple(_FACTORIES)}.")


def get_initializer(name: str, seed: int | None = None) -> keras.initializers.Initializer:
    """Returns a new initializer instance called `name`.

    Args:
        name: One of `INITIALIZERS`.
        seed: Integer seed, or None for a different draw on every run.

    Returns:
        A `keras.initializers.Initializer`.

    Raises:
        UnknownNameError: if `name` is not in `INITIALIZERS`.

    Example:

    >>> keras.layers.Dense(8, kernel_initializer=get_initializer("he_normal", seed=1))
    """
    return resolve("initializer", name, _FACTORIES)(seed=seed)
