"""The registry: the names, unknown names and options, registering further sets."""

from __future__ import annotations

import numpy as np
import pytest

from ablations.engine.data import DataError, RawData, dataset_names, load_dataset, register_dataset


def test_registered_names():
    assert dataset_names() == ("circles", "collinear", "digits", "mnist1d", "mnist5k", "moons", "noisy_1d", "noisy_2d", "xor")

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

    assert "line" in dataset_names()
    ds = load_dataset("line", standardize=False, n_train=20)
    assert ds.num_classes == 0 and ds.y_train.dtype == np.float32 and ds.x_train.shape == (20, 1)
    np.testing.assert_allclose(ds.y_test, 2 * ds.x_test[:, 0], rtol=1e-6)
