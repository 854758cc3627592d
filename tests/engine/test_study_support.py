"""Fixtures of the study tests (no tests here): an MLflow store that starts migrated.

Creating a fresh MLflow SQLite database costs about two seconds of migrations;
the study tests copy one made once per session instead.
"""

import shutil

import pytest


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    from ablations.engine.tracking import Tracker

    folder = tmp_path_factory.mktemp("mlflow-template")
    Tracker(f"sqlite:///{folder}/mlflow.db").client.search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def tracker(_never_the_real_mlruns, mlflow_template):
    """An MLflow tracker on the test's own temporary store (overrides the conftest's, same store)."""
    from ablations.engine.tracking import Tracker

    shutil.copy(mlflow_template, _never_the_real_mlruns / "mlflow.db")
    return Tracker()
