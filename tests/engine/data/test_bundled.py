"""The bundled sets: shapes, dtypes and sizes, MNIST-1D's own test split, options and seeds."""

from __future__ import annotations

import random
from importlib.metadata import version

import numpy as np
import pytest

from ablations.engine.data import DataError, bundled, load_dataset, sized_for

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

def test_mnist1d_keeps_its_predefined_test_split_and_carves_validation_from_train():
    ds = load_dataset("mnist1d", val_fraction=0.25, standardize=False)
    _, _, x_test, y_test = bundled.mnist1d_arrays(5000)
    np.testing.assert_array_equal(ds.x_test, x_test.astype(np.float32))
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert (len(ds.y_train), len(ds.y_val)) == (3000, 1000)

def test_mnist1d_num_samples_option():
    ds = load_dataset("mnist1d", num_samples=1000, standardize=False)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (640, 160, 200)
    with pytest.raises(DataError, match=r"num_samples must be an integer >= 10; got 5"):
        load_dataset("mnist1d", num_samples=5)

def test_mnist1d_restores_global_random_states(tmp_path, monkeypatch):
    monkeypatch.setenv(bundled.CACHE_ENV, str(tmp_path))  # an empty cache: the generator runs
    bundled.mnist1d_arrays.cache_clear()
    np.random.seed(123)
    random.seed(123)
    numpy_before, python_before = np.random.get_state(), random.getstate()
    load_dataset("mnist1d")
    numpy_after = np.random.get_state()
    assert numpy_after[0] == numpy_before[0]
    np.testing.assert_array_equal(numpy_after[1], numpy_before[1])
    assert numpy_after[2:] == numpy_before[2:]
    assert random.getstate() == python_before

def _generate_mnist1d(num_samples: int) -> tuple[np.ndarray, ...]:
    bundled.mnist1d_arrays.cache_clear()  # a new process: only the disk cache is left
    return bundled.mnist1d_arrays(num_samples)


def test_mnist1d_is_generated_once_then_read_back_from_the_cache(tmp_path, monkeypatch):
    import mnist1d.data

    monkeypatch.setenv(bundled.CACHE_ENV, str(tmp_path))
    generated = _generate_mnist1d(200)
    assert [p.name for p in tmp_path.iterdir()] == [f"mnist1d-{version('mnist1d')}-200.npz"]

    def no_generation(args):
        raise AssertionError("generated again instead of read from the cache")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
    for stored, fresh in zip(_generate_mnist1d(200), generated, strict=True):
        np.testing.assert_array_equal(stored, fresh)
        assert stored.dtype == fresh.dtype and not stored.flags.writeable


def test_a_damaged_cache_file_is_generated_again(tmp_path, monkeypatch):
    monkeypatch.setenv(bundled.CACHE_ENV, str(tmp_path))
    generated = _generate_mnist1d(200)
    (path,) = tmp_path.iterdir()
    path.write_bytes(path.read_bytes()[:100])  # cut short, as by a full disk
    for again, first in zip(_generate_mnist1d(200), generated, strict=True):
        np.testing.assert_array_equal(again, first)
    with np.load(path) as repaired:
        np.testing.assert_array_equal(repaired["x"], generated[0])


def test_a_cache_that_cannot_be_written_only_costs_the_generation(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(bundled.CACHE_ENV, str(blocker / "cache"))
    x, y, x_test, y_test = _generate_mnist1d(200)
    assert (len(y), len(y_test)) == (160, 40) and x.shape == (160, 40)
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]


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


@pytest.mark.parametrize(("n_train", "samples"), [(2000, 5000), (3000, 5010), (4000, 6677)])
def test_sized_for_leaves_n_train_training_examples_of_mnist1d_and_changes_no_other_set(n_train, samples):
    # 5,000 samples hold 3,200 training examples (80% train, 20% of that for validation): beyond, more are generated.
    options = sized_for("mnist1d", n_train)
    assert options == {"num_samples": samples}
    assert len(load_dataset("mnist1d", n_train=n_train, **options).y_train) == n_train
    assert sized_for("digits", n_train) == {} and sized_for("mnist5k", n_train) == {}
