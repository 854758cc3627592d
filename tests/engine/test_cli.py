"""The ablate command: listing, and bad input that exits 2 with one line and writes nothing.

Bad input is checked before TensorFlow is imported, so each command below runs
as its own process in about a second; TensorFlow's start-up lines never reach
the terminal.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ablations import linear_collapse
from ablations.engine.cli import main
from ablations.engine.data import RawData, dataset_names, register_dataset, registry
from ablations.engine.registry import ablation_names, all_ablations, get_ablation

from ablations.engine.spec import ConfigError
from ablations.engine.storage import STORAGE_FORMS, open_storage
from ablations.engine.tensorflow_quiet import _stderr_into, _write_back, is_noise


def _run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_names_every_ablation_with_its_claim(capsys):
    code, out, _ = _run(["list"], capsys)
    assert code == 0
    for name in ("linear_collapse", "activation_composition", "vanishing_gradients"):
        assert name in out
    assert "idempotent" in out


def test_every_ablation_file_defines_the_ablation_of_its_name():
    # `ablate` answers an unknown name from the file names alone, without importing any ablation.
    assert list(all_ablations()) == ablation_names()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nonexistent"], "Unknown ablation 'nonexistent'. Valid choices: "),
        (["run", "vanishing_gradients", "--set", "activation=softsign"], "Unknown activation 'softsign'. Valid choices: linear, sigmoid"),
        (["run", "vanishing_gradients", "--set", "initializer=zeros"], "Unknown initializer 'zeros'. Valid choices: "),
        (["run", "vanishing_gradients", "--set", "data=cifar"], "Unknown data 'cifar'. Valid choices: mnist1d, digits, mnist5k, tfds:<name>"),
        (["run", "vanishing_gradients", "--set", "colour=red"], "Unknown key 'colour' for vanishing_gradients. Valid keys: "),
        (["run", "vanishing_gradients", "--set", "depth=1000"], "depth=1000 is out of range"),
        (["run", "vanishing_gradients", "--set", "depth"], "--set takes KEY=VALUE"),
        (["run", "vanishing_gradients", "--profile", "huge"], "Unknown profile 'huge'. Valid choices: smoke, quick, full"),
        (["run", "activation_composition", "--storage", "foo://nowhere"], "Cannot open storage 'foo://nowhere'"),
        (["run", "activation_composition", "--storage", "sqlite:////no/such/dir/o.db"], "Valid forms: sqlite:///"),
        (["run", "activation_composition", "--storage", "journal:/no/such/dir/o.log"], "does not exist. Valid forms:"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, capsys, _never_the_real_mlruns):
    code, out, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ablate: error: ")
    assert message in lines[0]
    assert list(Path(_never_the_real_mlruns).iterdir()) == []  # no MLflow store, no study


def test_module_entry_point_exits_2_on_bad_input(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ablations", "run", "vanishing_gradients", "--set", "activation=nope"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "ABLATE_RESULTS_DIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert "Unknown activation 'nope'" in result.stderr.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ every bad input, as the user runs it

SPACE_FILES = {
    "unclosed.yaml": "activation: [relu, tanh\n",
    "comma.json": '{"depth": 2,}',
    "colour.json": '{"colour": ["red"]}',
    "keep_prob.yaml": "keep_prob: {low: 0.5, high: 1.5}\n",
    "nan.yaml": "learning_rate: .nan\n",
    "list.yaml": "- relu\n- tanh\n",
    "half_range.yaml": "depth: {low: 1}\n",
    "log_step.json": '{"width": {"low": 16, "high": 64, "log": true, "step": 16}}',
}
"""Space files the bad inputs name as ``{tmp}/<file>``."""

ABLATIONS = ", ".join(ablation_names())
SPACE_KEYS = "activation, depth, width, initializer, l1, l2, keep_prob, augmentation, learning_rate, batch_size, epochs, n_train"
STUDY = ["study", "--space", "tiny", "--data", "xor"]  # xor is generated in milliseconds

BAD_INPUTS = [
    # the command line itself
    ([], "a command is required. Valid choices: list, run, show, report, study, compare."),
    (["frob"], "argument command: invalid choice: 'frob' (choose from 'list', 'run', 'show', 'report', 'study', 'compare')"),
    (["run", "--workers", "0"], "argument --workers: must be a whole number of at least 1; received '0'"),
    (["run", "--checkpoint-every", "soon"], "argument --checkpoint-every: must be a number of seconds >= 0, or off; received 'soon'"),
    (["run", "--checkpoint-every", "-1"], "argument --checkpoint-every: must be a number of seconds >= 0, or off; received '-1'"),
    (["run", "--bogus"], "unrecognized arguments: --bogus. Valid options of ablate run: --help, --profile, --seeds, --set, --storage, --download, --workers, --fresh, --dry-run, --jit, --checkpoint-every, --quiet, --no-report."),
    (["list", "extra"], "unrecognized arguments: extra. Valid options of ablate list: --help."),
    (["run", "linear_collapse", "--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    (["run", "linear_collapse", "--seeds", "0"], "seeds must be an integer from 1 to 100; received '0'."),
    # ablate run: names, profiles, --set
    (["run", "nosuch"], f"Unknown ablation 'nosuch'. Valid choices: {ABLATIONS}."),
    (["run", "linear_collapse", "--profile", "huge"], "Unknown profile 'huge'. Valid choices: smoke, quick, full."),
    (["run", "linear_collapse", "--set", "depth"], "--set takes KEY=VALUE; received 'depth'."),
    (["run", "linear_collapse", "--set", "=3"], "--set takes KEY=VALUE; received '=3'."),
    (["run", "linear_collapse", "--set", "depth=2", "--set", "depth=3"], "--set depth is given twice ('2' and '3'); give it once, a comma list for a grid axis."),
    (["run", "linear_collapse", "--set", "colour=red"], "Unknown key 'colour' for linear_collapse. Valid keys: batch_size, data, depth, epochs, learning_rate, model, n_samples, noise, seeds, width."),
    (["run", "--set", "colour=red"], "Unknown key 'colour' for activation_composition. Valid keys: activation, max_k, points, seeds, x_range."),
    (["run", "linear_collapse", "--set", "depth="], "depth needs a value; received ''."),
    (["run", "linear_collapse", "--set", "depth=2,,3"], "depth=2,,3 has an empty item; a grid axis is a comma list without gaps, e.g. depth=2,3."),
    (["run", "linear_collapse", "--set", "model=relu_net,"], "model=relu_net, has an empty item; a grid axis is a comma list without gaps, e.g. model=relu_net."),
    (["run", "linear_collapse", "--set", "depth=three"], "depth='three' is not a valid int."),
    (["run", "linear_collapse", "--set", "depth=1000"], "depth=1000 is out of range; valid: 1 to 100."),
    (["run", "linear_collapse", "--set", "learning_rate=nan"], "learning_rate=nan is not a number; valid: 1e-06 to 1.0."),
    (["run", "linear_collapse", "--set", "learning_rate=inf"], "learning_rate=inf is out of range; valid: 1e-06 to 1.0."),
    (["run", "linear_collapse", "--set", "noise=-inf"], "noise=-inf is out of range; valid: 0.0 to 2.0."),
    (["run", "linear_collapse", "--set", "model=mlp"], "Unknown model 'mlp'. Valid choices: deep_linear, logistic, relu_net."),
    (["run", "vanishing_gradients", "--set", "activation=softsign"], "Unknown activation 'softsign'. Valid choices: linear, sigmoid, tanh, relu, leaky_relu, prelu, elu, relu6, selu, gelu, swish."),
    (["run", "vanishing_gradients", "--set", "data=cifar"], "Unknown data 'cifar'. Valid choices: mnist1d, digits, mnist5k, tfds:<name>."),
    (["run", "dropout", "--set", "data=mnist1d,tfds:"], "data='tfds:' needs a name after 'tfds:': data=tfds:<name>."),
    # ablate run: storage URLs
    (["run", "activation_composition", "--storage", "foo://nowhere"], f"Cannot open storage 'foo://nowhere': Can't load plugin: sqlalchemy.dialects:foo. Valid forms: {STORAGE_FORMS}."),
    (["run", "activation_composition", "--storage", "journal:{tmp}/missing/o.log"], f"Cannot open storage 'journal:{{tmp}}/missing/o.log': folder {{tmp}}/missing does not exist. Valid forms: {STORAGE_FORMS}."),
    (["run", "activation_composition", "--storage", "sqlite:///{tmp}/missing/o.db"], f"Cannot open storage 'sqlite:///{{tmp}}/missing/o.db': (sqlite3.OperationalError) unable to open database file. Valid forms: {STORAGE_FORMS}."),
    # ablate study: options
    ([*STUDY, "--sampler", "cmaes"], "Unknown sampler 'cmaes'. Valid choices: tpe, random, grid."),
    ([*STUDY, "--pruner", "asha"], "Unknown pruner 'asha'. Valid choices: median, hyperband, none."),
    ([*STUDY, "--objective", "accuracy"], "Unknown objective 'accuracy'. Valid choices: val_error, gap, both."),
    ([*STUDY, "--objective", "both", "--pruner", "median"], "Optuna cannot prune a two-objective study; with --objective both the valid --pruner is none."),
    ([*STUDY, "--trials", "0"], "--trials must be an integer from 1 to 100000; received 0."),
    ([*STUDY, "--trials", "x"], "argument --trials: invalid int value: 'x'"),
    ([*STUDY, "--workers", "0"], "--workers must be an integer from 1 to 256; received 0."),
    ([*STUDY, "--cv", "1"], "--cv must be an integer from 2 to 100; received 1."),
    ([*STUDY, "--timeout", "nan"], "--timeout must be a finite number of seconds > 0; received nan."),
    ([*STUDY, "--timeout", "-1"], "--timeout must be a finite number of seconds > 0; received -1.0."),
    ([*STUDY, "--study-name", " "], "--study-name must not be empty."),
    (["study", "--space", "tiny", "--data", "cifar"], f"Unknown data set 'cifar'. Valid choices: {', '.join(dataset_names())}, tfds:<name>"),
    (["study", "--space", "small", "--data", "noisy_1d"], "ablate study needs a classification data set; 'noisy_1d' has regression targets."),
    ([*STUDY, "--storage", "foo://x"], f"Cannot open storage 'foo://x': Can't load plugin: sqlalchemy.dialects:foo. Valid forms: {STORAGE_FORMS}."),
    ([*STUDY, "--storage", "journal:{tmp}/missing/o.log"], f"Cannot open storage 'journal:{{tmp}}/missing/o.log': folder {{tmp}}/missing does not exist. Valid forms: {STORAGE_FORMS}."),
    # ablate study: spaces
    ([*STUDY, "--space", "huge"], "Unknown space 'huge'. Valid choices: mlp, small, tiny, or a .yaml/.yml/.json file."),
    ([*STUDY, "--space", "{tmp}/missing.yaml"], "Cannot read space file '{tmp}/missing.yaml': No such file or directory."),
    ([*STUDY, "--space", "{tmp}/unclosed.yaml"], "Space file '{tmp}/unclosed.yaml' is not valid YAML: while parsing a flow sequence."),
    ([*STUDY, "--space", "{tmp}/comma.json"], "Space file '{tmp}/comma.json' is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 13 (char 12)."),
    ([*STUDY, "--space", "{tmp}/colour.json"], f"Unknown space key 'colour'. Valid keys: {SPACE_KEYS}."),
    ([*STUDY, "--space", "{tmp}/keep_prob.yaml"], "keep_prob=1.5 is out of range; valid: 0.05 to 1.0."),
    ([*STUDY, "--space", "{tmp}/nan.yaml"], "learning_rate=nan is not a number; valid: 1e-06 to 1.0."),
    ([*STUDY, "--space", "{tmp}/list.yaml"], "A space must map keys to choices, ranges or values; {tmp}/list.yaml holds list."),
    ([*STUDY, "--space", "{tmp}/half_range.yaml"], "The range of depth needs low and high; received fields low. Valid fields: low, high, step, log."),
    ([*STUDY, "--space", "{tmp}/log_step.json"], "A log range of width needs low > 0 and no step; received low=16, step=16."),
    # ablate report: output paths
    (["report", "--output", "{tmp}/missing/report.html"], "--output '{tmp}/missing/report.html': folder {tmp}/missing does not exist; name an .html file in an existing folder."),
    (["report", "--output", "{tmp}/report.txt"], "--output must name an .html file; received '{tmp}/report.txt'."),
    (["report", "--output", "{tmp}/folder.html"], "--output '{tmp}/folder.html' is a folder; name an .html file in it."),
    (["report", "--bogus"], "unrecognized arguments: --bogus. Valid options of ablate report: --help, --output."),
    # ablate compare: stores and tolerances
    (["compare", "{tmp}"], "the following arguments are required: AFTER"),
    (["compare", "{tmp}/missing", "{tmp}"], "No MLflow store in '{tmp}/missing': {tmp}/missing/mlflow.db does not exist. Valid: a results folder holding mlflow.db (e.g. mlruns), or a tracking URI."),
    (["compare", "{tmp}", "{tmp}", "--rtol", "x"], "argument --rtol: invalid float value: 'x'"),
    (["compare", "{tmp}", "{tmp}", "--atol", "-1"], "--atol must be a finite number >= 0; received -1.0."),
    (["compare", "{tmp}", "{tmp}", "--rtol", "nan"], "--rtol must be a finite number >= 0; received nan."),
    (["compare", "{tmp}", "{tmp}", "--bogus"], "unrecognized arguments: --bogus. Valid options of ablate compare: --help, --rtol, --atol."),
]


def _ablate(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs ``python -m ablations ARGS`` as a user would, in an empty folder, with results under ``tmp_path/results``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ABLATE_", "MLFLOW_", "TF_CPP_"))}
    env.update(ABLATE_RESULTS_DIR=str(tmp_path / "results"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/results/mlflow.db")
    for folder in ("results", "cwd"):
        (tmp_path / folder).mkdir(exist_ok=True)
    command = [sys.executable, "-m", "ablations", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path / "cwd", timeout=300)


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(args) or "(none)" for args, _ in BAD_INPUTS])
def test_each_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    for name, text in SPACE_FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "folder.html").mkdir()
    tmp = str(tmp_path)
    result = _ablate([arg.replace("{tmp}", tmp) for arg in args], tmp_path)
    assert result.stderr == f"ablate: error: {message.replace('{tmp}', tmp)}\n"
    assert (result.returncode, result.stdout) == (2, "")
    assert list((tmp_path / "results").iterdir()) == [] and list((tmp_path / "cwd").iterdir()) == []


def test_bad_input_is_answered_without_importing_tensorflow(tmp_path):
    bad = [
        ["run", "nosuch"],
        ["run", "--set", "depth=2,,3"],
        ["run", "vanishing_gradients", "--set", "learning_rate=nan"],
        ["run", "linear_collapse", "--storage", "journal:/no/such/folder/o.log"],
        ["study", "--space", "tiny", "--data", "xor", "--sampler", "cmaes"],
        ["study", "--space", "tiny", "--data", "xor", "--storage", "foo://x"],
        ["study", "--space", str(tmp_path / "missing.json")],
        ["report", "--output", str(tmp_path / "missing" / "report.html")],
    ]
    script = (
        "import json, sys\n"
        "from ablations.engine.cli import main\n"
        "codes = [main(argv) for argv in json.loads(sys.argv[1])]\n"
        "print(json.dumps({'codes': codes, 'loaded': [m for m in ('tensorflow', 'keras') if m in sys.modules]}))\n"
    )
    env = {**os.environ, "ABLATE_RESULTS_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(bad)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert json.loads(result.stdout) == {"codes": [2] * len(bad), "loaded": []}
    assert len(result.stderr.splitlines()) == len(bad)



def test_version_names_the_suite_and_its_libraries_without_importing_them():
    script = (
        "import contextlib, io, json, sys\n"
        "from ablations.engine.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    code = main(['--version'])\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'optuna', 'mlflow') if m in sys.modules]\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(), 'loaded': loaded}))\n"
    )
    result = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert result["code"] == 0 and result["loaded"] == []
    line = result["out"].strip()
    assert re.fullmatch(r"ablate \S+ \(tensorflow \S+, keras \S+, optuna \S+, mlflow \S+\)", line), line
    import keras
    import tensorflow as tf

    assert f"tensorflow {tf.__version__}," in line and f"keras {keras.__version__}," in line

# ------------------------------------------------------------------ ablate compare


def test_compare_prints_one_line_per_ablation_and_exits_1_when_a_number_differs(toy_store, capsys):
    before, same, shifted = toy_store("a"), toy_store("b"), toy_store("c", shift=1e-3)
    assert _run(["compare", before, same], capsys) == (0, "toy: same (4 trials, every metric, aggregates, verdict reproduced)\n", "")
    code, out, err = _run(["compare", before, shifted], capsys)
    assert (code, err) == (1, "")
    assert out.startswith("toy: DIFFERENT (4 trials matched; 2 metrics differ, most final_val_loss ") and out.count("\n") == 1
    assert _run(["compare", before, shifted, "--rtol", "1e-3"], capsys)[0] == 0


def test_compare_of_stores_without_an_ablation_in_common_is_one_line_exit_2(tmp_path, new_store, capsys):
    new_store(tmp_path / "a")
    new_store(tmp_path / "b")
    code, out, err = _run(["compare", str(tmp_path / "a"), str(tmp_path / "b")], capsys)
    assert (code, out) == (2, "")
    assert err == f"ablate: error: '{tmp_path}/a' and '{tmp_path}/b' have no ablation in common; run the same ablations into both.\n"


# ------------------------------------------------------------------ data a run or a study would train on


@pytest.fixture
def poisoned(monkeypatch):
    """Registers "poisoned": two moons-like classes with one NaN and one infinite feature."""
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))

    @register_dataset("poisoned")
    def _poisoned() -> RawData:
        x = np.random.default_rng(0).normal(size=(400, 2))
        y = (x[:, 0] > 0).astype(np.int64)
        x[3, 1], x[7, 0] = np.nan, np.inf
        return RawData(x=x, y=y, num_classes=2)

    return "poisoned"


POISONED = "ablate: error: Data set 'poisoned' has 2 non-finite values (NaN or infinite): 2 in its features.\n"


def test_a_study_on_non_finite_data_is_one_line_and_writes_nothing(poisoned, capsys, _never_the_real_mlruns):
    assert main(["study", "--space", "tiny", "--data", poisoned]) == 2
    assert capsys.readouterr().err == POISONED
    assert list(_never_the_real_mlruns.iterdir()) == []


def test_a_run_checks_every_data_set_of_its_grid_before_writing(poisoned, capsys, monkeypatch, _never_the_real_mlruns):
    param = linear_collapse.PARAMS["data"]
    monkeypatch.setitem(linear_collapse.PARAMS, "data", dataclasses.replace(param, choices=(*param.choices, poisoned)))
    assert main(["run", "linear_collapse", "--profile", "smoke", "--set", f"data=moons,{poisoned}"]) == 2
    assert capsys.readouterr().err == POISONED
    assert list(_never_the_real_mlruns.iterdir()) == []


# ------------------------------------------------------------------ TFDS sets: --set data=tfds:<name>, --download

TFDS_ABLATIONS = ("augmentation", "dropout", "early_stopping", "input_normalization", "l1_l2_penalty", "vanishing_gradients")
"""The ablations that train on image or signal data (their ``data`` is `params.data`)."""


@pytest.mark.parametrize("name", TFDS_ABLATIONS)
def test_every_image_or_signal_ablation_takes_a_tfds_set(name):
    assert get_ablation(name).resolve("smoke", {"data": "tfds:mnist"}).fixed["data"] == "tfds:mnist"
    config = get_ablation(name).resolve("smoke", {"data": "digits,tfds:fashion_mnist,tfds:glue/cola"})
    assert config.grid["data"] == ["digits", "tfds:fashion_mnist", "tfds:glue/cola"]


def test_a_missing_tfds_set_is_one_line_naming_download_and_writes_nothing(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    empty = tmp_path / "tfds"
    empty.mkdir()
    monkeypatch.setenv("TFDS_DATA_DIR", str(empty))  # _ablate hands the environment on
    result = _ablate(["run", "dropout", "--profile", "smoke", "--set", "data=tfds:mnist"], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ablate: error: TFDS data set 'mnist' is not prepared in {empty}/mnist/")
    assert lines[0].endswith(f"; rerun with --download (needs network) or run `tfds build mnist --data_dir {empty}` first.")
    assert list((tmp_path / "results").iterdir()) == [] and list((tmp_path / "cwd").iterdir()) == []
    assert list(empty.iterdir()) == []  # nothing fetched, nothing half-written


@pytest.fixture
def loads(monkeypatch):
    """Records each ``load_dataset(name, download=...)`` of the command line, then stops it as a missing set would."""
    from ablations.engine import cli, data
    from ablations.engine.study import data as study_data

    calls = []

    def load_dataset(name, *, download=False, **kwargs):
        calls.append((name, download))
        raise data.TfdsNotPreparedError(name.removeprefix("tfds:"), "/nowhere", "tfds build x")

    monkeypatch.setattr(data, "load_dataset", load_dataset)
    monkeypatch.setattr(study_data, "load_dataset", load_dataset)
    monkeypatch.setattr(cli, "_quiet_tensorflow_for", lambda names: None)  # no TensorFlow for a fake loader
    return calls


@pytest.mark.parametrize("download", [False, True])
def test_download_reaches_the_loader_of_a_run(download, loads, capsys, _never_the_real_mlruns):
    argv = ["run", "dropout", "--profile", "smoke", "--set", "data=tfds:mnist"] + ["--download"] * download
    assert main(argv) == 2
    assert loads == [("tfds:mnist", download)]
    err = capsys.readouterr().err
    assert err == "ablate: error: TFDS data set 'mnist' is not prepared in /nowhere; rerun with --download (needs network) or run `tfds build x` first.\n"
    assert list(_never_the_real_mlruns.iterdir()) == []


def test_a_study_checks_its_options_then_downloads_its_tfds_set(loads, capsys, _never_the_real_mlruns):
    study = ["study", "--space", "tiny", "--data", "tfds:mnist"]
    assert main(study) == 2
    assert capsys.readouterr().err.endswith("rerun with --download (needs network) or run `tfds build x` first.\n")
    assert loads == [("tfds:mnist", False)]
    loads.clear()
    assert main([*study, "--download", "--sampler", "cmaes"]) == 2  # a typo is answered before any download
    assert "Unknown sampler 'cmaes'" in capsys.readouterr().err and loads == []
    assert main([*study, "--download"]) == 2
    assert loads == [("tfds:mnist", False), ("tfds:mnist", True)]  # checked offline, then fetched
    assert list(_never_the_real_mlruns.iterdir()) == []


# ------------------------------------------------------------------ TensorFlow's start-up lines

STARTUP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795869514.133949    8341 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. "
    "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1795869514.135052    8341 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1795870110.026601   12863 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1795869514.135052    8341 cpu_feature_guard.cc:210] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
]
"""Lines TensorFlow 2.21 prints while it loads on a CPU machine (the last two with TF_CPP_MIN_LOG_LEVEL=0)."""


def test_start_up_lines_are_dropped_and_every_other_line_is_kept(capfd):
    captured: list[str] = []
    with _stderr_into(captured):
        os.write(2, "".join(f"{line}\n" for line in STARTUP_LINES).encode())
        os.write(2, b"W0000 00:00:1795869514.1 op_kernel.cc:1] a real warning\n/x.py:1: UserWarning: also real\n")
    _write_back(captured)
    assert capfd.readouterr().err == "W0000 00:00:1795869514.1 op_kernel.cc:1] a real warning\n/x.py:1: UserWarning: also real\n"
    assert not is_noise("E0000 00:00:1795870110.0 cuda_executor.cc:1] out of memory")


def _no_start_up_noise(stderr: str) -> list[str]:
    markers = ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda drivers", "cuInit", "rebuild TensorFlow")
    return [line for line in stderr.splitlines() if is_noise(line) or any(marker in line for marker in markers)]


def test_list_prints_nothing_on_stderr(tmp_path):
    result = _ablate(["list"], tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert "linear_collapse" in result.stdout


def test_a_smoke_run_prints_no_tensorflow_start_up_lines(tmp_path):
    result = _ablate(["run", "activation_composition", "--profile", "smoke", "--quiet", "--no-report"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert _no_start_up_noise(result.stderr) == []


@pytest.mark.slow
def test_a_study_and_its_workers_print_no_tensorflow_start_up_lines(tmp_path):
    result = _ablate(["study", "--space", "tiny", "--data", "xor", "--trials", "2", "--workers", "2", "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert _no_start_up_noise(result.stderr) == []


def test_a_checkpoint_interval_set_by_hand_that_is_not_seconds_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CHECKPOINT_EVERY", "soon")
    env = {**os.environ, "ABLATE_RESULTS_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ablations", "run", "activation_composition", "--profile", "smoke"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr == "ablate: error: ABLATE_CHECKPOINT_EVERY must be a number of seconds >= 0, or off; received 'soon'.\n"
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_default_results_folder_is_made_and_a_named_storage_folder_must_exist(tmp_path, monkeypatch):
    # ABLATE_RESULTS_DIR may name a folder not made yet: the default storage (and MLflow's store) go there.
    monkeypatch.setenv("ABLATE_RESULTS_DIR", str(tmp_path / "new" / "results"))
    storage = open_storage(None)
    assert (tmp_path / "new" / "results").is_dir() and storage.get_all_studies() == []
    # A folder named by hand is not made: a typo there fails instead of scattering results.
    with pytest.raises(ConfigError, match="does not exist"):
        open_storage(f"journal:{tmp_path}/typo/o.log")
    assert not (tmp_path / "typo").exists()
