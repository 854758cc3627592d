"""What every loader shares: a light import, and the rejection of non-finite values."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ablations.engine.data import DataError, RawData, load_dataset, register_dataset


def test_importing_data_does_not_import_tfds_tensorflow_or_sklearn():
    code = (
        "import sys, ablations.engine.data; "
        "print([m for m in ('tensorflow_datasets', 'tensorflow', 'sklearn', 'mlxtend', 'mnist1d') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

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
