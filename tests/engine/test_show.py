"""``ablate show``: the latest finished verdict of each ablation, read back from MLflow, one row each."""

import pytest

from ablations.engine.cli import main
from ablations.engine.show import COLUMNS, plain_table, verdict_rows

CHECKS = [
    {"part": "a", "condition": "x", "role": "claim", "outcome": "reproduced"},
    {"part": "a", "condition": "y", "role": "claim", "outcome": "no effect (negligible, real)"},
    {"part": "b", "condition": "x", "role": "claim", "outcome": "not reproduced"},
    {"part": "b", "condition": "y", "role": "claim", "outcome": "inconclusive"},
    {"part": "b", "condition": "z", "role": "boundary", "outcome": "reproduced"},  # never counted for the claim
    {"part": "s", "condition": "x", "role": "sanity", "outcome": "reproduced"},
]


def _concluded(tracker, name: str, outcome: str, measured: str, status: str = "FINISHED") -> None:
    """A parent run as the runner leaves it: tagged, its verdict.json logged, ended."""
    run_id = tracker.start_run(tracker.experiment_id(name), name, tags={"run_kind": "ablation", "profile": "quick"})
    headline = {"part": "a", "condition": "x", "measured": measured}
    tracker.log_json(run_id, {"outcome": outcome, "headline": headline, "checks": CHECKS}, "verdict.json")
    tracker.end_run(run_id, status)


def test_each_row_is_the_newest_finished_verdict_with_its_checks_counted(tracker):
    _concluded(tracker, "dropout", "inconclusive", "+0.010 (95% CI -0.1 to +0.2, n=3)")
    _concluded(tracker, "dropout", "partly reproduced", "+0.030 (95% CI +0.01 to +0.05, n=10)")
    _concluded(tracker, "dropout", "reproduced", "+9 (killed)", status="KILLED")  # not finished: not shown
    rows = verdict_rows(["dropout", "augmentation"], tracker)
    assert rows[0] == {
        "ablation": "dropout",
        "profile": "quick",
        "outcome": "partly reproduced",
        "headline effect (interval)": "a (x): +0.030 (95% CI +0.01 to +0.05, n=10)",
        "held": 1,
        "failed": 1,
        "no effect": 1,
        "unclear": 1,
    }
    assert rows[1]["ablation"] == "augmentation" and rows[1]["outcome"] == "not run yet"
    lines = plain_table(rows).splitlines()
    assert lines[0].split()[:3] == list(COLUMNS[:3]) and lines[1].startswith("dropout ") and "partly reproduced" in lines[1]


def test_show_prints_a_line_per_ablation_then_the_report(tracker, capsys, _never_the_real_mlruns):
    _concluded(tracker, "linear_collapse", "reproduced", "+1.0 (exact)")
    (_never_the_real_mlruns / "report.html").write_text("<html></html>")
    assert main(["show", "linear_collapse", "dropout"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["linear_collapse", "dropout"]
    assert "reproduced" in lines[1] and "not run yet" in lines[2]
    assert lines[-1] == f"report: {_never_the_real_mlruns / 'report.html'}"


def test_show_of_an_unknown_ablation_is_one_line_exit_2(capsys, _never_the_real_mlruns):
    assert main(["show", "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("ablate: error: Unknown ablation 'nosuch'")


@pytest.mark.slow
def test_a_run_of_several_ablations_ends_with_their_table(capsys, _never_the_real_mlruns):
    assert main(["run", "activation_composition", "linear_collapse", "--profile", "smoke", "--quiet", "--no-report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("ablation "))) :]
    assert [line.split()[0] for line in table[1:3]] == ["activation_composition", "linear_collapse"]
    assert all("not run yet" not in line and "no verdict" not in line for line in table[1:3]), table
    assert len(table) == 3  # no report line: --no-report wrote none
