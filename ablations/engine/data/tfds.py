"""Any TensorFlow Datasets set, as ``tfds:<name>[/<config>]``: offline from a prepared ``data_dir``, or downloaded.

TFDS (and TensorFlow behind it) is imported when such a set is loaded, not when
this module is: it costs seconds that the bundled sets should not pay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablations.engine.data.core import TFDS_PREFIX, DataError, RawData

# Converting a TFDS split to NumPy goes through batches of this size rather than
# `batch_size=-1`: with TFDS's mock data (unknown split sizes) `batch_size=-1`
# aborts the whole process inside TensorFlow.
_TFDS_BATCH = 4096


def load_tfds(spec: str, *, data_dir: str | None, download: bool) -> RawData:
    """Any TFDS set as (image or numeric features, label), e.g. "mnist" or "glue/cola".

    Uses the "train" split, and "test" as the predefined test split when there
    is one; a TFDS "validation" split is not used (validation is carved from
    "train" like for every other set).
    """
    if not spec:
        raise DataError(f"Empty TFDS name in {TFDS_PREFIX!r}; use e.g. '{TFDS_PREFIX}mnist'.")
    import tensorflow_datasets as tfds

    build_command = f"tfds build {spec}" + (f" --data_dir {data_dir}" if data_dir else "")
    builder = _tfds_builder(tfds, spec, data_dir)
    if download:
        try:
            builder.download_and_prepare()
        except Exception as error:  # network, disk and checksum failures come in many types
            raise DataError(
                f"Could not download TFDS data set {spec!r} into {builder.data_dir} "
                f"({type(error).__name__}: {_first_line(error)}); check the network or run `{build_command}`."
            ) from error

    # Split names are only known once the data is prepared (and never under
    # TFDS's mock data); then assume the usual "train" and "test".
    known_splits = set(builder.info.splits)
    if known_splits and "train" not in known_splits:
        raise DataError(
            f"TFDS data set {spec!r} has no 'train' split; it has {', '.join(sorted(known_splits))}."
        )
    has_test = "test" in known_splits or not known_splits

    x, y = _tfds_split(tfds, builder, spec, "train", data_dir, build_command)
    x_test, y_test = _tfds_split(tfds, builder, spec, "test", data_dir, build_command) if has_test else (None, None)

    num_classes = _tfds_num_classes(tfds, builder, y)
    if x.dtype == np.uint8:
        # 8-bit pixels: scale to [0, 1] like the bundled image sets.
        x, x_test = x / 255.0, None if x_test is None else x_test / 255.0
    return RawData(x=x, y=y, num_classes=num_classes, spatial=x.ndim >= 3, x_test=x_test, y_test=y_test)


def _tfds_builder(tfds: Any, spec: str, data_dir: str | None) -> Any:
    try:
        return tfds.builder(spec, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as error:
        raise DataError(
            f"Unknown TFDS data set {spec!r}; see https://www.tensorflow.org/datasets/catalog for valid names."
        ) from error
    except (ValueError, AssertionError) as error:  # bad config or version
        base, _, config = spec.partition("/")
        config = config.partition(":")[0]
        if config:
            choices = [c.name for c in getattr(tfds.builder_cls(base), "BUILDER_CONFIGS", [])]
            if config not in choices:
                raise DataError(
                    f"TFDS data set {base!r} has no config {config!r}. "
                    f"Valid choices: {', '.join(choices) or f'none (use {TFDS_PREFIX}{base})'}"
                ) from error
        # Drop TFDS's 'Failed to construct dataset "x", builder_kwargs "{...}": ' preamble.
        reason = _first_line(error).rpartition('": ')[2]
        raise DataError(f"Cannot open TFDS data set {spec!r}: {reason}") from error


def _tfds_split(
    tfds: Any, builder: Any, spec: str, split: str, data_dir: str | None, build_command: str
) -> tuple[np.ndarray, np.ndarray]:
    try:
        dataset = builder.as_dataset(split=split, as_supervised=True)
    except AssertionError as error:
        # TFDS reports unprepared data with an AssertionError ("could not find data").
        raise DataError(
            f"TFDS data set {spec!r} is not prepared in {builder.data_dir}; "
            f"pass download=True (needs network) or run `{build_command}` first."
        ) from error
    except ValueError as error:
        raise DataError(f"TFDS data set {spec!r} cannot be loaded as (input, label) pairs: {_first_line(error)}") from error

    xs, ys = [], []
    for x, y in tfds.as_numpy(dataset.batch(_TFDS_BATCH)):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"TFDS data set {spec!r} has an empty {split!r} split.")
    x, y = np.concatenate(xs), np.concatenate(ys)
    for what, array in (("inputs", x), ("labels", y)):
        if array.dtype.kind not in "biuf":
            raise DataError(
                f"TFDS data set {spec!r} has non-numeric {what} ({array.dtype}); "
                "only image and numeric-feature sets are supported."
            )
    return x, y


def _tfds_num_classes(tfds: Any, builder: Any, y: np.ndarray) -> int:
    keys = builder.info.supervised_keys
    label_key = keys[1] if isinstance(keys, tuple) and len(keys) == 2 else None
    if isinstance(label_key, str):
        feature = builder.info.features[label_key]
        if isinstance(feature, tfds.features.ClassLabel):
            return int(feature.num_classes)
    # Without a ClassLabel, integer labels are classes and floats are targets.
    return int(y.max()) + 1 if y.dtype.kind in "biu" else 0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
