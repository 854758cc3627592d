"""The ablate command: listing, and bad input that exits 2 with one line and writes nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

from ablations.engine.cli import main


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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nonexistent"], "Unknown ablation 'nonexistent'. Valid choices: "),
        (["run", "vanishing_gradients", "--set", "activation=softsign"], "Unknown activation 'softsign'. Valid choices: linear, sigmoid"),
        (["run", "vanishing_gradients", "--set", "initializer=zeros"], "Unknown initializer 'zeros'. Valid choices: "),
        (["run", "vanishing_gradients", "--set", "data=cifar"], "Unknown data 'cifar'. Valid choices: mnist1d, digits, mnist5k"),
        (["run", "vanishing_gradients", "--set", "colour=red"], "Unknown key 'colour' for vanishing_gradients. Valid keys: "),
        (["run", "vanishing_gradients", "--set", "depth=1000"], "depth=1000 is out of range"),
        (["run", "vanishing_gradients", "--set", "depth"], "--set takes KEY=VALUE"),
        (["run", "vanishing_gradients", "--profile", "huge"], "Unknown profile 'huge'. Valid choices: smoke, quick, full"),
        (["run", "linear_collapse", "--storage", "foo://nowhere"], "Cannot open storage 'foo://nowhere'"),
        (["run", "linear_collapse", "--storage", "sqlite:////no/such/dir/o.db"], "Valid forms: sqlite:///"),
        (["run", "linear_collapse", "--storage", "journal:/no/such/dir/o.log"], "does not exist. Valid forms:"),
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
