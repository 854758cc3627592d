"""`make ui` and `make dashboard` open the store `ablate` writes: MLFLOW_TRACKING_URI, else ABLATE_RESULTS_DIR, else mlruns/."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from ablations.engine.tracking import tracking_uri

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _planned(target: str, env: dict[str, str]) -> list[str]:
    """The words of ``target``'s last command, as ``make -n`` prints it (nothing runs)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "ABLATE_RESULTS_DIR")}
    done = subprocess.run(["make", "-n", "-s", target], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True)
    return shlex.split(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "env",
    [{}, {"ABLATE_RESULTS_DIR": "/srv/results"}, {"MLFLOW_TRACKING_URI": "postgresql://u:p@db/mlflow", "ABLATE_RESULTS_DIR": "/srv/results"}],
    ids=["default", "results-dir", "tracking-uri"],
)
def test_make_ui_opens_the_store_ablate_writes(env, monkeypatch):
    words = _planned("ui", env)
    uri = words[words.index("--backend-store-uri") + 1]
    monkeypatch.chdir(ROOT)
    for name in ("MLFLOW_TRACKING_URI", "ABLATE_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    written = tracking_uri()
    # ablate resolves the folder; make keeps it as given, relative to the repository root where make runs.
    assert uri == written or (ROOT / uri.removeprefix("sqlite:///")).resolve() == Path(written.removeprefix("sqlite:///")), (uri, written)


def test_make_dashboard_opens_the_journal_in_the_results_folder():
    assert _planned("dashboard", {"ABLATE_RESULTS_DIR": "/srv/results"})[1] == "/srv/results/optuna.journal"
