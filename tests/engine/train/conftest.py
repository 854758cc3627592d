import numpy as np
import pytest


@pytest.fixture
def classification():
    """Tiny random classification arrays: ``classification(n=64, features=6, classes=3, seed=0)`` returns (x, y)."""

    def make(n=64, features=6, classes=3, seed=0):
        rng = np.random.default_rng(seed)
        return rng.normal(size=(n, features)).astype("float32"), rng.integers(0, classes, n).astype("int64")

    return make
