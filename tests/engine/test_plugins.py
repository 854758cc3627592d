"""Your own ablations and data sets: the README's guide, installed as a package of its own, runs as the suite's do.

A tiny package is built from the guide's exact text (copied out of README.md)
and a module that registers a data set, with the two entry-point groups in its
pyproject.toml, and installed with pip into a temporary folder. ``ablate``
started with that folder on its path then lists the ablation, runs it on the
smoke profile into MLflow, and accepts the data set in ``--set data=NAME``
before TensorFlow loads. It starts processes but races nothing, so it is not
marked ``process`` (which CI repeats).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DATASETS = '''
import numpy as np

from ablations.engine.data import RawData, register_dataset


@register_dataset("blobs3", source="generated")
def _blobs3(*, n_samples: int = 300) -> RawData:
    """Three Gaussian blobs in ten dimensions."""
    rng = np.random.default_rng(0)
    y = np.arange(n_samples) % 3
    return RawData(x=rng.normal(size=(n_samples, 10)) + y[:, None], y=y, num_classes=3)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-ablation-plugin"
version = "0.1"

[project.entry-points."activation_ablations.ablations"]
hidden_nonlinearity = "tiny_plugin.hidden_nonlinearity"

[project.entry-points."activation_ablations.datasets"]
sets = "tiny_plugin.datasets"

[tool.setuptools]
packages = ["tiny_plugin"]
'''


def guide_ablation() -> str:
    """The ablation of the README's "Writing an ablation" section, as written there."""
    section = (ROOT / "README.md").read_text().split("## Writing an ablation", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return code


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The plugin package, installed with pip into a folder of its own; returns the folder."""
    source = tmp_path_factory.mktemp("plugin")
    (source / "tiny_plugin").mkdir()
    (source / "tiny_plugin" / "__init__.py").write_text("")
    (source / "tiny_plugin" / "hidden_nonlinearity.py").write_text(guide_ablation())
    (source / "tiny_plugin" / "datasets.py").write_text(DATASETS)
    (source / "pyproject.toml").write_text(PYPROJECT)
    target = tmp_path_factory.mktemp("site")
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)]
    subprocess.run(install, check=True, capture_output=True, text=True)
    return target


def _ablate(installed: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ABLATE_", "MLFLOW_"))}
    env.update(PYTHONPATH=str(installed), ABLATE_RESULTS_DIR=str(tmp_path), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db")
    return subprocess.run([sys.executable, "-m", "ablations", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_the_guides_ablation_installed_as_a_package_runs_like_the_suites_own(installed, tmp_path):
    listed = _ablate(installed, tmp_path, "list")
    assert listed.returncode == 0 and "hidden_nonlinearity\n    A hidden layer without a nonlinearity" in listed.stdout
    done = _ablate(installed, tmp_path, "run", "hidden_nonlinearity", "--profile", "smoke", "--quiet", "--no-report")
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^hidden_nonlinearity \[smoke\] (inconclusive|reproduced|not reproduced)", done.stdout, flags=re.M), done.stdout
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("hidden_nonlinearity")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags.get("run_kind") == "trial"]
    assert sorted((r.data.params["activation"], r.data.params["seed"]) for r in trials) == [("linear", "0"), ("linear", "1"), ("relu", "0"), ("relu", "1")]
    assert {r.info.status for r in runs} == {"FINISHED"} and all(r.inputs.dataset_inputs for r in trials)


def test_a_data_set_an_installed_package_registers_is_a_valid_data_choice_before_tensorflow_loads(installed, tmp_path):
    script = (
        "import json, sys\n"
        "from ablations.engine.registry import get_ablation\n"
        "from ablations.engine.spec import ConfigError\n"
        "ablation = get_ablation('vanishing_gradients')\n"
        "chosen = ablation.resolve('smoke', {'data': 'blobs3'}).fixed['data']\n"
        "try:\n"
        "    ablation.resolve('smoke', {'data': 'blobz'})\n"
        "except ConfigError as error:\n"
        "    message = str(error)\n"
        "print(json.dumps({'chosen': chosen, 'message': message, 'tensorflow': 'tensorflow' in sys.modules}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = json.loads(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout)
    assert result["chosen"] == "blobs3" and not result["tensorflow"]
    assert result["message"] == "Unknown data 'blobz'. Valid choices: mnist1d, digits, mnist5k, blobs3, tfds:<name>."
