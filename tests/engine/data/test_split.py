"""Splits and standardization: fixed seeds, stratification, nesting, train-only statistics, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from ablations.engine.data import Dataset, DataError, load_dataset


def split_indices(ds: Dataset) -> list[np.ndarray]:
    return [split[:, 0].astype(np.int64) for split in (ds.x_train, ds.x_val, ds.x_test)]

def test_default_fractions_are_60_20_20():
    ds = load_dataset("moons")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (600, 200, 200)

def test_splits_are_disjoint_cover_everything_and_are_stratified(indexed):
    ds = load_dataset(indexed, standardize=False, val_fraction=0.25, test_fraction=0.15)
    train, val, test = split_indices(ds)
    assert (len(train), len(val), len(test)) == (600, 250, 150)
    everything = np.concatenate([train, val, test])
    np.testing.assert_array_equal(np.sort(everything), np.arange(1000))
    for split, y in ((train, ds.y_train), (val, ds.y_val), (test, ds.y_test)):
        np.testing.assert_array_equal(y, (split >= 600).astype(int) + (split >= 900))
        expected = np.array([0.6, 0.3, 0.1]) * len(split)
        assert np.all(np.abs(np.bincount(y, minlength=3) - expected) <= 1)

def test_predefined_test_split_is_kept_and_the_rest_covered(indexed):
    ds = load_dataset(indexed, standardize=False, predefined_test=True)
    train, val, test = split_indices(ds)
    np.testing.assert_array_equal(test, np.arange(0, 1000, 5))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.setdiff1d(np.arange(1000), test))
    assert len(val) == round(0.2 * 800)

def test_same_split_seed_same_arrays_other_seed_other_split():
    first = load_dataset("digits", split_seed=3)
    again = load_dataset("digits", split_seed=3)
    other = load_dataset("digits", split_seed=4)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.x_test, other.x_test)
    assert not np.array_equal(first.x_train, other.x_train)

def test_tabular_standardization_per_feature_with_train_statistics(indexed):
    ds = load_dataset(indexed)
    raw = load_dataset(indexed, standardize=False)
    assert ds.mean.shape == ds.std.shape == (3,)
    np.testing.assert_allclose(ds.x_train[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train[:, :2].std(axis=0), 1, atol=1e-5)
    # The constant feature has std 0: divided by 1, it becomes 0 instead of NaN.
    assert ds.std[2] == 1 and np.all(ds.x_train[:, 2] == 0)
    np.testing.assert_allclose(ds.mean, raw.x_train.mean(axis=0), rtol=1e-6)
    for split in ("x_val", "x_test"):
        np.testing.assert_allclose(getattr(ds, split), (getattr(raw, split) - ds.mean) / ds.std, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(raw.mean, np.zeros(3))
    np.testing.assert_array_equal(raw.std, np.ones(3))

def test_image_standardization_is_one_global_mean_and_std():
    ds = load_dataset("digits", image_shape=True)
    raw = load_dataset("digits", image_shape=True, standardize=False)
    assert ds.mean.shape == ds.std.shape == ()
    assert abs(ds.x_train.mean()) < 1e-5 and abs(ds.x_train.std() - 1) < 1e-5
    # Fitted on the training split only: not the statistics of all the examples.
    everything = np.concatenate([raw.x_train, raw.x_val, raw.x_test])
    assert ds.mean == pytest.approx(raw.x_train.mean(), rel=1e-5)
    assert ds.mean != pytest.approx(everything.mean(), rel=1e-6)
    for split in ("x_val", "x_test"):
        np.testing.assert_allclose(getattr(ds, split), (getattr(raw, split) - ds.mean) / ds.std, rtol=1e-6, atol=1e-6)
    # Pixels are scaled to [0, 1] even without standardization.
    assert raw.x_train.min() == 0 and raw.x_train.max() == 1

def test_n_train_subsample_count_balance_determinism_and_nesting():
    full = load_dataset("digits", standardize=False)
    small = load_dataset("digits", n_train=100, standardize=False)
    smaller = load_dataset("digits", n_train=40, standardize=False)
    assert small.x_train.shape == (100, 64)
    assert np.all(np.abs(np.bincount(small.y_train, minlength=10) - 10) <= 1)
    # Validation and test do not depend on n_train.
    np.testing.assert_array_equal(small.x_val, full.x_val)
    np.testing.assert_array_equal(small.x_test, full.x_test)
    full_rows = {row.tobytes() for row in full.x_train}
    small_rows = {row.tobytes() for row in small.x_train}
    assert small_rows <= full_rows
    assert {row.tobytes() for row in smaller.x_train} <= small_rows
    np.testing.assert_array_equal(load_dataset("digits", n_train=100, standardize=False).x_train, small.x_train)

def test_n_train_larger_than_the_training_split_is_a_data_error():
    with pytest.raises(DataError, match=r"n_train=5000 exceeds the 600 training examples"):
        load_dataset("moons", n_train=5000)

@pytest.mark.parametrize("n_train", [0, -3, 2.5, True, "100"])
def test_bad_n_train(n_train):
    with pytest.raises(DataError, match=f"got {n_train!r}"):
        load_dataset("moons", n_train=n_train)

@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"), [(0, 0.2), (0.2, 0.0), (-0.1, 0.2), (0.6, 0.5), (0.5, 0.5), (0.2, None)]
)
def test_bad_fractions(val_fraction, test_fraction):
    with pytest.raises(DataError) as raised:
        load_dataset("moons", val_fraction=val_fraction, test_fraction=test_fraction)
    message = str(raised.value)
    assert f"got val_fraction={val_fraction!r}, test_fraction={test_fraction!r}" in message
    assert "\n" not in message

def test_too_few_examples_to_split():
    with pytest.raises(DataError, match=r"too few examples \(2\)"):
        load_dataset("moons", n_samples=2)
