"""TensorFlow Datasets sets: mock data, missing data, bad names, non-finite values."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from ablations.engine.data import DataError, TfdsNotPreparedError, load_dataset, tfds_data_dir, tfds_prepared


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


def test_tfds_images_are_28x28_pixels_scaled_to_0_1(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=20):
        images = load_dataset("tfds:mnist", data_dir=str(tmp_path), image_shape=True, standardize=False)
    assert images.input_shape == (28, 28, 1)
    pixels = np.concatenate([images.x_train, images.x_val, images.x_test])
    # 8-bit pixels divided by 255: within [0, 1], and not left at 0..255.
    assert pixels.min() >= 0 and 0.5 < pixels.max() <= 1

def test_missing_tfds_data_says_where_and_how_to_get_it(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError) as raised:
        load_dataset("tfds:mnist", data_dir=str(tmp_path))
    message = str(raised.value)
    assert str(tmp_path) in message
    assert "download=True" in message and f"tfds build mnist --data_dir {tmp_path}" in message
    assert "\n" not in message
    # The command line words the same remedy as its flag.
    assert isinstance(raised.value, TfdsNotPreparedError)
    assert "rerun with --download (needs network)" in raised.value.advice("rerun with --download")
    assert str(pickle.loads(pickle.dumps(raised.value))) == message


def test_tfds_prepared_reads_finished_version_folders_from_disk(tmp_path, monkeypatch):
    def prepare(*parts):
        (tmp_path.joinpath(*parts)).mkdir(parents=True)
        (tmp_path.joinpath(*parts) / "dataset_info.json").write_text("{}")

    assert not tfds_prepared("mnist", str(tmp_path))
    prepare("mnist", "incomplete.AB12CD_3.0.1")  # still being prepared
    (tmp_path / "mnist" / "2.0.0").mkdir()  # a version folder without its info
    assert not tfds_prepared("mnist", str(tmp_path))
    prepare("mnist", "3.0.1")
    assert tfds_prepared("mnist", str(tmp_path))
    assert tfds_prepared("mnist:3.0.1", str(tmp_path)) and tfds_prepared("mnist:3.*.*", str(tmp_path))
    assert not tfds_prepared("mnist:2.0.0", str(tmp_path))
    prepare("glue", "cola", "2.0.0")
    assert tfds_prepared("glue/cola", str(tmp_path)) and not tfds_prepared("glue/sst2", str(tmp_path))
    assert not tfds_prepared("glue", str(tmp_path))  # its default config is TFDS's to pick: name it
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert tfds_data_dir() == tmp_path and tfds_prepared("mnist")
    assert "tensorflow_datasets" not in str(tfds_data_dir())

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
