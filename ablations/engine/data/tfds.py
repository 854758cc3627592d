"""Any TensorFlow Datasets set, as ``tfds:<name>[/<config>]``: offline from a prepared ``data_dir``, or downloaded.

TFDS (and TensorFlow behind it) is imported when such a set is loaded, not when
this module is: it costs seconds that the bundled sets should not pay. Whether a
set is prepared (`tfds_prepared`) is read from the disk alone, for the same reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ablations.engine.data.core import TFDS_PREFIX, DataError, RawData

# Converting a TFDS split to NumPy goes through batches of this size rather than
# `batch_size=-1`: with TFDS's mock data (unknown split sizes) `batch_size=-1`
# aborts the whole process inside TensorFlow.
_TFDS_BATCH = 4096

# TFDS prepares a version in a folder named "incomplete.<random>_<version>" and
# renames it to the bare version when done; only the bare name is a finished set.
_VERSION = re.compile(r"\d+\.\d+\.\d+")


class TfdsNotPreparedError(DataError):
    """A TFDS set that is not on disk yet; `advice` words the remedy for where it was asked from.

    Args:
        spec: The TFDS name, without "tfds:".
        location: Where TFDS looked for it.
        build_command: The ``tfds build`` command that prepares it.
    """

    def __init__(self, spec: str, location: str, build_command: str):
        self.spec, self.location, self.build_command = spec, location, build_command
        super().__init__(self.advice("pass download=True"))

    def __reduce__(self):  # picklable although __init__ takes more than the message
        return type(self), (self.spec, self.location, self.build_command)

    def advice(self, how_to_download: str) -> str:
        """The one-line message, ``how_to_download`` (e.g. "rerun with --download") its first remedy."""
        return (
            f"TFDS data set {self.spec!r} is not prepared in {self.location}; "
            f"{how_to_download} (needs network) or run `{self.build_command}` first."
        )


def tfds_data_dir(data_dir: str | None = None) -> Path:
    """Where TFDS keeps prepared sets: ``data_dir``, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (TFDS's own rule)."""
    return Path(data_dir or os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"), "tensorflow_datasets")))


def tfds_prepared(spec: str, data_dir: str | None = None) -> bool:
    """Whether a TFDS set is prepared on this machine, read from the disk without importing TFDS.

    A prepared set is a version folder ``<name>[/<config>]/<x.y.z>`` that holds
    its dataset_info.json. A set whose configs TFDS picks by default (e.g.
    "glue" for "glue/cola") counts only when its config is named.

    Args:
        spec: A TFDS name without "tfds:", e.g. "mnist", "glue/cola" or "mnist:3.0.1".
        data_dir: The TFDS data directory; `tfds_data_dir` when None.
    """
    name, _, version = spec.partition(":")
    folder = tfds_data_dir(data_dir) / name
    if not name or not folder.is_dir():
        return False
    if _VERSION.fullmatch(version):
        versions = [folder / version]
    else:  # no version, or a pattern such as "3.*.*": any finished one
        versions = [path for path in folder.iterdir() if _VERSION.fullmatch(path.name)]
    return any((path / "dataset_info.json").is_file() for path in versions)


def load_tfds(spec: str, *, data_dir: str | None, download: bool) -> RawData:
    """Any TFDS set as (image or numeric features, label), e.g. "mnist" or "glue/cola".

    Uses the "train" split, and "test" as the predefined test split when there
    is one; a TFDS "validation" split is not used (validation is carved from
    "train" like for every other set).
    """
    if not spec:
        raise DataError(f"Empty TFDS name in {TFDS_PREFIX!r}; use e.g. '{TFDS_PREFIX}mnist'.")
    import tensorflow_datasets as tfds

    # The folder spelled out: the user's shell may not see the same $TFDS_DATA_DIR.
    build_command = f"tfds build {spec} --data_dir {tfds_data_dir(data_dir)}"
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
        raise TfdsNotPreparedError(spec, str(builder.data_dir), build_command) from error
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
