import os
import shutil
from pathlib import Path

import pytest

# Keep TensorFlow's C++ start-up chatter out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
_NOT_OURS = {".git", ".venv", "__pycache__", ".pytest_cache"}


def _tree_state() -> dict[str, tuple[int, int]]:
    """Every file of the working tree (results under mlruns/ included) with its size and mtime."""
    state = {}
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in _NOT_OURS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder, name)
            stat = path.stat()
            state[str(path.relative_to(ROOT))] = (stat.st_size, stat.st_mtime_ns)
    return state


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the xdist controller, or a plain run
        session.config.stash[_TREE] = _tree_state()


def pytest_sessionfinish(session, exitstatus):
    """Fails the run when a test wrote into the working tree: results belong under a temporary folder."""
    before = session.config.stash.get(_TREE, None)
    if before is None:
        return
    after = _tree_state()
    written = sorted(path for path, state in after.items() if before.get(path) != state)
    if written:
        session.config.get_terminal_writer().line(f"\ntests wrote into the working tree: {', '.join(written[:10])}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_TREE = pytest.StashKey[dict]()


@pytest.fixture(autouse=True, scope="session")
def _generated_data_cache(tmp_path_factory):
    """Generated data sets (MNIST-1D) are kept under the session's temporary folder, not in the user's home."""
    from ablations.engine.data.bundled import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("data-cache"))


@pytest.fixture(autouse=True)
def _never_the_real_mlruns(tmp_path_factory, monkeypatch):
    """Every test writes MLflow runs and Optuna studies under a temporary folder."""
    folder = tmp_path_factory.mktemp("mlruns")
    monkeypatch.setenv("ABLATE_RESULTS_DIR", str(folder))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    return folder


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty, migrated MLflow database: creating one costs about two seconds of migrations, copying it nothing."""
    from ablations.engine.tracking import Tracker

    folder = tmp_path_factory.mktemp("mlflow-template")
    Tracker(f"sqlite:///{folder}/mlflow.db").client.search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def new_store(mlflow_template):
    """Makes a fresh MLflow store in a folder: ``new_store(folder)`` returns its tracking URI."""

    def make(folder: Path) -> str:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(mlflow_template, folder / "mlflow.db")
        return f"sqlite:///{folder}/mlflow.db"

    return make


@pytest.fixture
def tracker(_never_the_real_mlruns, new_store):
    """An MLflow tracker on the test's own temporary store."""
    from ablations.engine.tracking import Tracker

    return Tracker(new_store(_never_the_real_mlruns))
