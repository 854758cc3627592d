import os

import pytest

# Keep TensorFlow's C++ start-up chatter out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _never_the_real_mlruns(tmp_path_factory, monkeypatch):
    """Every test writes MLflow runs and Optuna studies under a temporary folder."""
    folder = tmp_path_factory.mktemp("mlruns")
    monkeypatch.setenv("ABLATE_RESULTS_DIR", str(folder))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    return folder


@pytest.fixture
def tracker(_never_the_real_mlruns):
    """An MLflow tracker on the test's own temporary store."""
    from ablations.engine.tracking import Tracker

    return Tracker()
