"""Fixed-seed, stratified train/validation/test splits and standardization on the training split.

The split depends only on ``split_seed``, so every trial of a study sees the
same split while its own seed varies the model; the standardization statistics
are fitted on the training split alone.
"""

from __future__ import annotations

import numpy as np

from ablations.engine.data.core import DataError, Dataset, RawData, is_int, is_real


def check_split_arguments(*, n_train: object, val_fraction: object, test_fraction: object, split_seed: object) -> None:
    """Rejects bad fractions, ``n_train`` or ``split_seed`` before any data is loaded."""
    _check_fractions(val_fraction, test_fraction)
    if n_train is not None and not is_int(n_train, minimum=1):
        raise DataError(f"n_train must be a positive integer or None; got {n_train!r}.")
    if not is_int(split_seed, minimum=0):
        raise DataError(f"split_seed must be a non-negative integer; got {split_seed!r}.")


def _check_fractions(val_fraction: object, test_fraction: object) -> None:
    valid = (
        is_real(val_fraction)
        and is_real(test_fraction)
        and val_fraction > 0
        and test_fraction > 0
        and val_fraction + test_fraction < 1
    )
    if not valid:
        raise DataError(
            "val_fraction and test_fraction must be numbers > 0 that sum to less than 1; "
            f"got val_fraction={val_fraction!r}, test_fraction={test_fraction!r}."
        )


def split_and_standardize(
    name: str,
    raw: RawData,
    *,
    n_train: int | None,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    standardize: bool,
    image_shape: bool,
) -> Dataset:
    """Splits checked raw data (see `load_dataset` for the arguments) and standardizes it."""
    x, y = _as_features(raw.x), _as_targets(raw.y, raw.num_classes)

    # One balanced order cut into consecutive parts stratifies every part.
    order = _stratified_order(y, raw.num_classes, np.random.default_rng(split_seed))
    if raw.x_test is None:
        n_test, n_val = round(test_fraction * len(y)), round(val_fraction * len(y))
        test_index, val_index = order[:n_test], order[n_test : n_test + n_val]
        train_index = order[n_test + n_val :]
        x_test, y_test = x[test_index], y[test_index]
    else:
        n_val = round(val_fraction * len(y))
        val_index, train_index = order[:n_val], order[n_val:]
        x_test, y_test = _as_features(raw.x_test), _as_targets(raw.y_test, raw.num_classes)
    if min(len(train_index), len(val_index), len(y_test)) == 0:
        raise DataError(
            f"Data set {name!r} has too few examples ({len(y)}) to split with "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}; use more examples or larger fractions."
        )

    if n_train is not None:
        if n_train > len(train_index):
            raise DataError(
                f"n_train={n_train} exceeds the {len(train_index)} training examples of {name!r} "
                f"left after the validation/test split; choose n_train <= {len(train_index)}."
            )
        # A separate stream keeps the subsample independent of the split's draws,
        # and taking a prefix of one balanced order makes the subsets nested.
        subsample_rng = np.random.default_rng([split_seed, 1])
        train_index = train_index[_stratified_order(y[train_index], raw.num_classes, subsample_rng)[:n_train]]

    x_train, y_train = x[train_index], y[train_index]
    x_val, y_val = x[val_index], y[val_index]
    if standardize:
        mean, std = _fit_standardization(x_train, raw.spatial)
    else:
        stat_shape = () if raw.spatial else x_train.shape[1:]
        mean, std = np.zeros(stat_shape, np.float32), np.ones(stat_shape, np.float32)

    def prepare(features: np.ndarray) -> np.ndarray:
        features = ((features - mean) / std).astype(np.float32)
        if raw.spatial and not image_shape:
            return features.reshape(len(features), -1)
        return features

    return Dataset(
        name=name,
        x_train=prepare(x_train),
        y_train=y_train,
        x_val=prepare(x_val),
        y_val=y_val,
        x_test=prepare(x_test),
        y_test=y_test,
        num_classes=raw.num_classes,
        mean=mean,
        std=std,
    )


def _as_features(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:, None] if x.ndim == 1 else x


def _as_targets(y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.asarray(y, dtype=np.int64 if num_classes else np.float32).reshape(-1)


def _stratified_order(y: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(len(y)) whose every prefix is class-balanced.

    Each class's examples are spread evenly over [0, 1) (its r-th of n_c at
    (r + 0.5) / n_c) and the examples sorted by that position, so any prefix of
    length k holds k * n_c / N examples of class c, give or take one. Cutting
    one such order into test, validation and training parts (and taking a
    prefix of the training part for n_train) stratifies all of them, even for
    classes with a single example, where scikit-learn's splitters refuse.

    Args:
        y: Targets, shape (N,).
        num_classes: 0 for regression targets, which get a plain permutation.
        rng: Source of the randomness.
    """
    shuffled = rng.permutation(len(y))
    if num_classes == 0:
        return shuffled
    _, classes = np.unique(y[shuffled], return_inverse=True)
    counts = np.bincount(classes)
    by_class = np.argsort(classes, kind="stable")
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_class] = np.arange(len(y)) - np.repeat(np.cumsum(counts) - counts, counts)
    position = (rank + 0.5) / counts[classes]
    # Equal-size classes tie at every position; a random class priority breaks
    # the tie so that no class is always first.
    tie_break = rng.random(len(counts))[classes]
    return shuffled[np.lexsort((tie_break, position))]


def _fit_standardization(x_train: np.ndarray, spatial: bool) -> tuple[np.ndarray, np.ndarray]:
    axis = None if spatial else 0
    mean = x_train.mean(axis=axis, dtype=np.float64)
    std = x_train.std(axis=axis, dtype=np.float64)
    # A constant feature carries no information; dividing by 1 keeps it finite.
    std = np.where(std == 0, 1.0, std)
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)
