"""`GridHelpers`, the processes that train beside ``ablate run --workers N``: stopped, failed, finished."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest

from ablations.engine.grid_workers import GridHelpers
from ablations.engine.registry import get_ablation

pytestmark = pytest.mark.process


def test_helpers_never_handed_a_grid_are_stopped_at_once():
    helpers = GridHelpers(3, progress=False)
    assert len(helpers.processes) == 2 and helpers.threads >= 1
    helpers.close()
    # Terminated while starting up (or waiting for a grid), not left to finish importing TensorFlow.
    assert [p.returncode for p in helpers.processes] == [-signal.SIGTERM, -signal.SIGTERM]


def test_a_helper_that_fails_on_its_grid_is_reported_by_join(tmp_path):
    config = get_ablation("vanishing_gradients").resolve("smoke", {}, None)
    # A grid that is not in the storage: the helper's load_study raises and its process exits 1.
    grid = SimpleNamespace(name="no-such-grid", study=SimpleNamespace(user_attrs={"ablation": "vanishing_gradients"}))
    with GridHelpers(2, progress=False) as helpers:
        helpers.start(config, grid, f"journal:{tmp_path}/optuna.journal")
        with pytest.raises(RuntimeError, match=r"grid worker\(s\) failed: /w1 exited with 1"):
            helpers.join()
    assert helpers.processes[0].returncode == 1


def test_fewer_than_two_workers_need_no_helpers():
    with pytest.raises(ValueError, match="workers >= 2"):
        GridHelpers(1)
