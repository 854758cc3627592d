"""Data lineage: each member of a pack is credited with the data sets loaded for it, described by their arrays."""

import json

import pytest

from ablations.engine.data import load_dataset, load_per_seed
from ablations.engine.lineage import DataLineage, digest, members_data, recording, serving


def _item(name: str, key: str) -> DataLineage:
    return DataLineage(name, "generated", key, {"train": 1, "val": 1, "test": 1}, 0)


def test_a_load_serves_its_members_and_one_outside_serving_serves_the_pack():
    with recording() as loaded:
        with serving([0, 2]):
            loaded.append((_item("a", "1"), (0, 2)))
        loaded.append((_item("b", "2"), None))
        loaded.append((_item("b", "2"), None))  # loaded twice: credited once
    assert [[i.name for i in member] for member in members_data(loaded, 3)] == [["a", "b"], ["b"], ["a", "b"]]


def test_load_per_seed_credits_each_seeds_split_to_that_seeds_members_only():
    configs = [{"seed": 0}, {"seed": 1}, {"seed": 0}]
    with recording() as loaded:
        data = load_per_seed(configs, lambda c: load_dataset("digits", n_train=50, split_seed=c["seed"]))
    members = members_data(loaded, 3)
    assert [len(m) for m in members] == [1, 1, 1] and members[0] == members[2] != members[1]
    first = members[0][0]
    # The digest is that of the arrays the member trained on; the profile says how they were cut.
    arrays = (data[0].x_train, data[0].y_train, data[0].x_val, data[0].y_val, data[0].x_test, data[0].y_test)
    assert first.digest == digest(arrays) and (first.name, first.source, first.split_seed) == ("digits", "bundled", 0)
    assert json.loads(first.profile())["train"] == 50 == len(data[0].y_train)


def test_no_digest_is_computed_when_no_runner_records(monkeypatch):
    from ablations.engine import lineage

    def refuse(arrays):
        raise AssertionError("a digest was computed outside a recording")

    monkeypatch.setattr(lineage, "digest", refuse)
    assert len(load_dataset("digits", n_train=50).y_train) == 50  # no pass over the arrays
    with recording() as loaded, pytest.raises(AssertionError, match="outside a recording"):
        load_dataset("digits", n_train=50)  # recording: described, so the patched digest runs
    assert loaded == []


def test_the_digest_sees_every_value_shape_and_dtype():
    import numpy as np

    base = np.arange(6, dtype=np.float32)
    assert digest([base]) != digest([base.reshape(2, 3)]) != digest([base.astype(np.float64)])
    changed = base.copy()
    changed[5] = 5.5
    assert digest([base]) != digest([changed]) and digest([base]) == digest([base.copy()])
