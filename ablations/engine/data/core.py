"""What every data set is made of, and the checks every loader shares.

`RawData` is what a loader returns (all the examples, before splitting);
`Dataset` is what `load_dataset` returns (split and standardized). `DataError`
is the one error a user can fix. The argument checks (`is_int`, `is_real`) and
the non-finite check live here so that every loader answers alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

TFDS_PREFIX = "tfds:"


class DataError(ValueError):
    """A data problem the user can fix (missing TFDS data, bad sizes or options).

    The message is a single line that says what was received and what to do.
    """


@dataclass(frozen=True)
class RawData:
    """All the examples of a data set, as a loader returns them, before splitting.

    Args:
        x: Features: (N, F) for tabular data, (N, *spatial, channels) when
            `spatial` is true.
        y: Targets, shape (N,): integer classes, or floats for regression.
        num_classes: Number of classes; 0 for regression targets.
        spatial: Whether x has a spatial layout (images, 1-D signals). Such data
            is standardized with one global mean/std (per-pixel statistics would
            erase what convolutions look at) and flattened unless
            ``image_shape=True``.
        x_test: A predefined test split, kept as is (None if there is none).
        y_test: Its targets.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    spatial: bool = False
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


# eq=False: comparing arrays with == is ambiguous, so identity is the only sane equality.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set split into train/validation/test, ready for `model.fit`.

    Args:
        name: The name it was loaded by (e.g. "digits", "tfds:mnist").
        x_train: Training features, float32.
        y_train: Training targets: int64 classes, or float32 for regression.
        x_val: Validation features, standardized with the training statistics.
        y_val: Validation targets.
        x_test: Test features, standardized with the training statistics.
        y_test: Test targets.
        num_classes: Number of classes; 0 for regression targets.
        mean: The mean subtracted from every split: per feature (shape (F,)) for
            tabular data, one scalar (shape ()) for images and signals; zeros
            when loaded with ``standardize=False``.
        std: The divisor applied to every split, same shape as `mean`; ones when
            loaded with ``standardize=False``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: np.ndarray
    std: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, for `keras.Input(shape=...)`."""
        return tuple(self.x_train.shape[1:])


def is_int(value: object, *, minimum: int) -> bool:
    """Whether ``value`` is an integer >= ``minimum`` (a bool is not)."""
    # bool is an Integral, but n_train=True is a mistake, not 1.
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (a bool is not)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def check_finite(name: str, raw: RawData) -> None:
    """Rejects NaN or infinite features or targets: a model trains silently on them.

    Some CPU kernels (a fused MatMul+ReLU, say) turn NaN inputs into finite
    outputs, so a poisoned set would not even show up as a NaN loss.
    """
    parts = {"features": raw.x, "targets": raw.y, "test features": raw.x_test, "test targets": raw.y_test}
    found = {}
    for what, array in parts.items():
        if array is None or np.asarray(array).dtype.kind in "biu":  # integers cannot be NaN
            continue
        array = np.asarray(array)
        count = array.size - np.count_nonzero(np.isfinite(array.astype(np.float64, copy=False)))
        if count:
            found[what] = int(count)
    if found:
        counts = ", ".join(f"{count} in its {what}" for what, count in found.items())
        raise DataError(f"Data set {name!r} has {sum(found.values())} non-finite values (NaN or infinite): {counts}.")


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Freezes arrays that a cache shares with every caller."""
    # An accidental in-place edit becomes an error instead of a silent corruption.
    for array in arrays:
        array.flags.writeable = False
    return arrays
