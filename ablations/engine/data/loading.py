"""`load_dataset`: a data set by name, checked, split with a fixed seed and standardized."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ablations.engine.data.core import TFDS_PREFIX, DataError, Dataset, RawData, check_finite
from ablations.engine import lineage
from ablations.engine.data.registry import dataset_source, load_registered
from ablations.engine.data.split import check_split_arguments, split_and_standardize
from ablations.engine.data.tfds import load_tfds


T = TypeVar("T")


def load_per_seed(configs: Sequence[Mapping[str, Any]], load: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """``load(config)`` for each configuration, once per seed: a pack's arms of one seed share their data.

    Args:
        configs: Trial configurations that differ in nothing ``load`` reads but the ``seed``.
        load: What one configuration's data is.
    """
    by_seed: dict[int, T] = {}
    for config in configs:
        if config["seed"] not in by_seed:
            with lineage.serving([i for i, other in enumerate(configs) if other["seed"] == config["seed"]]):
                by_seed[config["seed"]] = load(config)
    return [by_seed[config["seed"]] for config in configs]


def load_dataset(
    name: str,
    *,
    n_train: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    standardize: bool = True,
    image_shape: bool = False,
    data_dir: str | None = None,
    download: bool = False,
    **options: Any,
) -> Dataset:
    """Loads a data set, splits it with a fixed seed and standardizes it.

    Classification sets are split stratified, so every split keeps the class
    proportions. A predefined test split (MNIST-1D, TFDS "test") is kept as is;
    validation is then carved from the training examples alone and
    `test_fraction` is not used.

    Args:
        name: One of `dataset_names()` or "tfds:<name>[/<config>]".
        n_train: Keep only this many training examples (stratified, and nested:
            a smaller n_train is a subset of a larger one for the same
            split_seed); None keeps them all.
        val_fraction: Fraction of the examples used for validation (of the
            training examples when the test split is predefined). Default 0.2.
        test_fraction: Fraction of the examples used for testing. Default 0.2.
        split_seed: Seed of the split and of the n_train subsample; keep it
            fixed across the trials of a study. Default 0.
        standardize: Subtract the training mean and divide by the training std
            (per feature for tabular data, global for images and signals).
            Default True.
        image_shape: Give images as (N, H, W, C) and MNIST-1D as (N, L, 1)
            instead of flat vectors; ignored for tabular sets. Default False.
        data_dir: TFDS data directory (TFDS's default when None); only for
            "tfds:" names.
        download: Let TFDS download and prepare missing data (needs network);
            only for "tfds:" names. Default False.
        **options: Options of the data set's loader, e.g. ``n_samples`` and
            ``noise`` for "moons".

    Returns:
        A `Dataset` with float32 features and int64 (classification) or float32
        (regression) targets.

    Raises:
        UnknownNameError: `name` is not a registered data set nor a "tfds:" name
            (`models.registry.UnknownNameError`).
        DataError: bad fractions, sizes or options, or TFDS data that is missing.
    """
    check_split_arguments(n_train=n_train, val_fraction=val_fraction, test_fraction=test_fraction, split_seed=split_seed)
    raw = _load_raw(name, data_dir=data_dir, download=download, options=options)
    check_finite(name, raw)
    dataset = split_and_standardize(
        name,
        raw,
        n_train=n_train,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        standardize=standardize,
        image_shape=image_shape,
    )
    if lineage.is_recording():  # the digest reads every array: only when a runner will log it
        split = {"n_train": n_train, "val_fraction": val_fraction, "test_fraction": test_fraction, "standardize": standardize}
        lineage.record(lineage_of(dataset, split_seed=split_seed, options={**split, **options}))
    return dataset


def lineage_of(dataset: Dataset, *, split_seed: int, options: dict[str, Any]) -> lineage.DataLineage:
    """What `dataset` is, for its MLflow dataset input: source, digest of its splits, their sizes."""
    arrays = (dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val, dataset.x_test, dataset.y_test)
    sizes = {"train": len(dataset.y_train), "val": len(dataset.y_val), "test": len(dataset.y_test)}
    return lineage.DataLineage(dataset.name, dataset_source(dataset.name), lineage.digest(arrays), sizes, split_seed, options)


def _load_raw(name: str, *, data_dir: str | None, download: bool, options: dict[str, Any]) -> RawData:
    if isinstance(name, str) and name.startswith(TFDS_PREFIX):
        if options:
            raise DataError(f"TFDS data sets take no options; got {', '.join(sorted(options))} for {name!r}.")
        return load_tfds(name[len(TFDS_PREFIX) :], data_dir=data_dir, download=download)
    return load_registered(name, options)
