"""Fixtures of the data set tests: a scratch registry and a set whose features name their example."""

from __future__ import annotations

import numpy as np
import pytest

from ablations.engine.data import RawData, register_dataset, registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """Lets a test register data sets without leaking them into other tests."""
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))


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
