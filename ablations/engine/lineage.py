"""Data lineage: which data set each trial trained on, recorded as `load_dataset` hands it out.

`load_dataset` describes every data set it returns (`DataLineage`: name,
source, a digest of the split arrays, the split sizes and seed, the loader's
options) and `record`s it. While the runner trains a pack it is `recording`;
a loader that serves some members only (`load_per_seed`, `one_by_one`) says
which with `serving`, and a load outside it serves the whole pack. The runner
then logs each member's data sets to its MLflow run as dataset inputs, and
the set of them to the parent run.

Imports nothing from the engine: the data and spec modules both use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_records: ContextVar[list[tuple[DataLineage, tuple[int, ...] | None]] | None] = ContextVar("data_records", default=None)
_serving: ContextVar[tuple[int, ...] | None] = ContextVar("data_serving", default=None)


@dataclass(frozen=True)
class DataLineage:
    """What one loaded data set is, as an MLflow dataset input describes it.

    Args:
        name: The name it was loaded by ("digits", "tfds:mnist").
        source: Where its examples come from: "bundled", "generated" or "tfds".
        digest: SHA-256 (first 16 hex digits) of its split arrays, in order.
        sizes: Examples per split: ``{"train": ..., "val": ..., "test": ...}``.
        split_seed: The seed of its split and subsample.
        options: The loader's and the split's other arguments (n_train, noise, ...).
    """

    name: str
    source: str
    digest: str
    sizes: dict[str, int]
    split_seed: int
    options: dict[str, Any] = field(default_factory=dict)

    def profile(self) -> str:
        """The sizes, seed and options as JSON (an MLflow dataset's profile)."""
        return json.dumps({**self.sizes, "split_seed": self.split_seed, **self.options}, sort_keys=True, default=str)


def digest(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 over the arrays' shapes, dtypes and bytes; the first 16 hex digits."""
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.shape}{array.dtype}".encode())
        hasher.update(array.data)
    return hasher.hexdigest()[:16]


def is_recording() -> bool:
    """Whether a runner is `recording` (describing a data set costs a pass over its arrays)."""
    return _records.get() is not None


def record(lineage: DataLineage) -> None:
    """Notes a data set just loaded, for the members being served (all, outside `serving`); nothing when not `recording`."""
    records = _records.get()
    if records is not None:
        records.append((lineage, _serving.get()))


@contextmanager
def recording() -> Iterator[list[tuple[DataLineage, tuple[int, ...] | None]]]:
    """Collects the data sets loaded in the block, each with the members it served (None: all)."""
    records: list[tuple[DataLineage, tuple[int, ...] | None]] = []
    token = _records.set(records)
    try:
        yield records
    finally:
        _records.reset(token)


@contextmanager
def serving(members: Sequence[int]) -> Iterator[None]:
    """Data sets loaded in the block serve these members of the pack only (their indices)."""
    token = _serving.set(tuple(members))
    try:
        yield
    finally:
        _serving.reset(token)


def members_data(records: list[tuple[DataLineage, tuple[int, ...] | None]], members: int) -> list[list[DataLineage]]:
    """Each member's data sets, in the order loaded, each once (by digest)."""
    result: list[list[DataLineage]] = [[] for _ in range(members)]
    for lineage, served in records:
        for index in range(members) if served is None else served:
            if all(seen.digest != lineage.digest for seen in result[index]):
                result[index].append(lineage)
    return result
