"""Tests of the data sets: shapes, splits, standardization, subsampling, TFDS, errors."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from ablations.engine import data
from ablations.engine.data import DataError, RawData, load_dataset, register_dataset

# (name, flat input shape, image_shape=True input shape, number of classes)
BUNDLED = [
    ("digits", (64,), (8, 8, 1), 10),
    ("mnist5k", (784,), (28, 28, 1), 10),
    ("mnist1d", (40,), (40, 1), 10),
    ("moons", (2,), (2,), 2),
    ("circles", (2,), (2,), 2),
    ("xor", (2,), (2,), 2),
]
TOTALS = {"digits": 1797, "mnist5k": 5000, "mnist1d": 5000, "moons": 1000, "circles": 1000, "xor": 1000}


@pytest.fixture
def scratch_registry(monkeypatch):
    """Lets a test register data sets without leaking them into other tests."""
    monkeypatch.setattr(data, "_LOADERS", dict(data._LOADERS))
    monkeypatch.setattr(data, "DATASETS", data.DATASETS)


@pytest.fixture
def indexed(scratch_registry):
    """Registers "indexed": feature 0 is the example's index, classes are 60/30/10 %."""

    @register_dataset("indexed")
    def _indexed(*, n_samples: int = 1000, predefined_test: bool = False) -> RawData:
        index = np.arange(n_samples, dtype=np.float64)
        constant = np.full(n_samples, 3.0)
        x = np.stack([index, np.sin(index), constant], axis=1)
        y = np.zeros(n_samples, dtype=np.int64)
        y[int(0.6 * n_samples) :] = 1
        y[int(0.9 * n_samples) :] = 2
        if predefined_test:
            test = index % 5 == 0
            return RawData(x[~test], y[~test], num_classes=3, x_test=x[test], y_test=y[test])
        return RawData(x, y, num_classes=3)

    return "indexed"


def split_indices(ds: data.Dataset) -> list[np.ndarray]:
    return [split[:, 0].astype(np.int64) for split in (ds.x_train, ds.x_val, ds.x_test)]


def test_importing_data_does_not_import_tfds_tensorflow_or_sklearn():
    code = (
        "import sys, ablations.engine.data; "
        "print([m for m in ('tensorflow_datasets', 'tensorflow', 'sklearn', 'mlxtend', 'mnist1d') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_registered_names():
    assert data.DATASETS == ("circles", "collinear", "digits", "mnist1d", "mnist5k", "moons", "noisy_1d", "noisy_2d", "xor")


@pytest.mark.parametrize(("name", "flat", "image", "num_classes"), BUNDLED)
def test_bundled_shapes_dtypes_and_sizes(name, flat, image, num_classes):
    ds = load_dataset(name)
    assert ds.name == name and ds.num_classes == num_classes
    assert ds.input_shape == flat
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == flat and x.shape[0] == y.shape[0] > 0
        assert np.all(np.isfinite(x))
    assert set(np.unique(ds.y_train)) == set(range(num_classes))
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == TOTALS[name]
    assert load_dataset(name, image_shape=True).input_shape == image


def test_default_fractions_are_60_20_20():
    ds = load_dataset("moons")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (600, 200, 200)


def test_mnist1d_keeps_its_predefined_test_split_and_carves_validation_from_train():
    ds = load_dataset("mnist1d", val_fraction=0.25, standardize=False)
    _, _, x_test, y_test = data._mnist1d_arrays(5000)
    np.testing.assert_array_equal(ds.x_test, x_test.astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert (len(ds.y_train), len(ds.y_val)) == (3000, 1000)


def test_mnist1d_num_samples_option():
    ds = load_dataset("mnist1d", num_samples=1000, standardize=False)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (640, 160, 200)
    with pytest.raises(DataError, match=r"num_samples must be an integer >= 10; got 5"):
        load_dataset("mnist1d", num_samples=5)


def test_mnist1d_restores_global_random_states():
    data._mnist1d_arrays.cache_clear()  # force the generator to run again
    np.random.seed(123)
    random.seed(123)
    numpy_before, python_before = np.random.get_state(), random.getstate()
    load_dataset("mnist1d")
    numpy_after = np.random.get_state()
    assert numpy_after[0] == numpy_before[0]
    np.testing.assert_array_equal(numpy_after[1], numpy_before[1])
    assert numpy_after[2:] == numpy_before[2:]
    assert random.getstate() == python_before


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


def test_synthetic_options_and_data_seed():
    small = load_dataset("circles", n_samples=50, noise=0.0)
    assert len(small.y_train) + len(small.y_val) + len(small.y_test) == 50
    raw = load_dataset("circles", n_samples=50, noise=0.0, standardize=False)
    radii = np.linalg.norm(np.concatenate([raw.x_train, raw.x_val, raw.x_test]), axis=1)
    np.testing.assert_allclose(np.sort(np.unique(radii.round(5))), [0.5, 1.0])
    assert not np.array_equal(load_dataset("moons", data_seed=1).x_train, load_dataset("moons").x_train)


def test_xor_labels_are_the_sign_of_the_product_without_noise():
    ds = load_dataset("xor", noise=0.0, standardize=False)
    np.testing.assert_array_equal(ds.y_train, (ds.x_train[:, 0] * ds.x_train[:, 1] > 0).astype(np.int64))


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


def test_unknown_name_lists_the_choices():
    from models.registry import UnknownNameError

    with pytest.raises(UnknownNameError) as raised:
        load_dataset("foo")
    assert str(raised.value) == (
        "Unknown data set 'foo'. Valid choices: circles, collinear, digits, mnist1d, mnist5k, moons, noisy_1d, noisy_2d, xor, tfds:<name>"
    )
    assert isinstance(raised.value, ValueError)


def test_unknown_and_bad_options():
    with pytest.raises(DataError, match=r"Unknown option 'samples' for data set 'moons'\. Valid choices: data_seed, n_samples, noise$"):
        load_dataset("moons", samples=10)
    with pytest.raises(DataError, match=r"noise must be a number >= 0; got -1"):
        load_dataset("xor", noise=-1)
    with pytest.raises(DataError, match=r"Valid choices: \(none\)"):
        load_dataset("digits", noise=0.1)


def test_register_dataset_rejects_duplicates_and_tfds_names(scratch_registry):
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("moons")(lambda: None)
    with pytest.raises(ValueError, match="tfds:"):
        register_dataset("tfds:mine")


def test_registered_regression_set_gets_float_targets_and_plain_splits(scratch_registry):
    @register_dataset("line")
    def _line(*, n_samples: int = 50) -> RawData:
        x = np.linspace(-1, 1, n_samples)[:, None]
        return RawData(x=x, y=2 * x[:, 0], num_classes=0)

    assert "line" in data.DATASETS
    ds = load_dataset("line", standardize=False, n_train=20)
    assert ds.num_classes == 0 and ds.y_train.dtype == np.float32 and ds.x_train.shape == (20, 1)
    np.testing.assert_allclose(ds.y_test, 2 * ds.x_test[:, 0], rtol=1e-6)


def test_tfds_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        flat = load_dataset("tfds:mnist", data_dir=str(tmp_path))
        images = load_dataset("tfds:mnist", data_dir=str(tmp_path), image_shape=True, download=True)
    assert flat.num_classes == 10 and flat.name == "tfds:mnist"
    # The "test" split is predefined; validation comes out of "train".
    assert (len(flat.y_train), len(flat.y_val), len(flat.y_test)) == (32, 8, 40)
    assert flat.input_shape == (784,) and images.input_shape == (28, 28, 1)
    assert flat.x_train.dtype == np.float32 and flat.y_train.dtype == np.int64
    assert np.all((flat.y_train >= 0) & (flat.y_train < 10))
    assert flat.mean.shape == ()
    assert abs(flat.x_train.mean()) < 1e-4 and abs(flat.x_train.std() - 1) < 1e-4
    np.testing.assert_array_equal(images.x_test.reshape(40, -1), flat.x_test)


def test_missing_tfds_data_says_where_and_how_to_get_it(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError) as raised:
        load_dataset("tfds:mnist", data_dir=str(tmp_path))
    message = str(raised.value)
    assert str(tmp_path) in message
    assert "download=True" in message and "tfds build mnist" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("tfds:no_such_set_xyz", r"Unknown TFDS data set 'no_such_set_xyz'"),
        ("tfds:glue/nope", r"TFDS data set 'glue' has no config 'nope'\. Valid choices: cola, "),
        ("tfds:", r"Empty TFDS name"),
    ],
)
def test_bad_tfds_names(tmp_path, name, pattern):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match=pattern):
        load_dataset(name, data_dir=str(tmp_path))


def test_tfds_takes_no_options():
    with pytest.raises(DataError, match="TFDS data sets take no options; got noise"):
        load_dataset("tfds:mnist", noise=0.1)


@pytest.mark.parametrize(
    ("x_value", "y_value", "message"),
    [
        (np.nan, 0.0, "Data set 'poisoned' has 3 non-finite values (NaN or infinite): 3 in its features."),
        (1.0, np.inf, "Data set 'poisoned' has 3 non-finite values (NaN or infinite): 3 in its targets."),
        (-np.inf, np.nan, "Data set 'poisoned' has 6 non-finite values (NaN or infinite): 3 in its features, 3 in its targets."),
    ],
)
def test_non_finite_features_or_targets_are_rejected_with_the_count(scratch_registry, x_value, y_value, message):
    @register_dataset("poisoned")
    def _poisoned() -> RawData:
        x = np.ones((50, 2))
        y = np.linspace(0, 1, 50)
        x[[3, 10, 40], 1] = x_value
        y[[0, 1, 2]] = y_value
        return RawData(x=x, y=y, num_classes=0)

    with pytest.raises(DataError) as raised:
        load_dataset("poisoned")
    assert str(raised.value) == message


def test_a_non_finite_predefined_test_split_is_rejected(scratch_registry):
    @register_dataset("poisoned_test")
    def _poisoned() -> RawData:
        x_test = np.zeros((10, 2))
        x_test[0, 0] = np.nan
        return RawData(x=np.zeros((40, 2)), y=np.arange(40) % 2, num_classes=2, x_test=x_test, y_test=np.arange(10) % 2)

    with pytest.raises(DataError, match=r"^Data set 'poisoned_test' has 1 non-finite values \(NaN or infinite\): 1 in its test features\.$"):
        load_dataset("poisoned_test")


def test_non_finite_tfds_data_is_rejected(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    def as_dataset(self, *args, **kwargs):
        features = np.ones((30, 4), np.float32)
        features[5, 2] = np.nan
        features[7, 0] = np.inf
        return tf.data.Dataset.from_tensor_slices({"features": features, "label": np.arange(30) % 3})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset), pytest.raises(DataError) as raised:
        load_dataset("tfds:iris", data_dir=str(tmp_path))
    # The mocked "test" split yields the same poisoned examples.
    assert str(raised.value) == "Data set 'tfds:iris' has 4 non-finite values (NaN or infinite): 2 in its features, 2 in its test features."
