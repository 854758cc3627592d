"""``ablate show``: the latest verdicts, read back from MLflow, as a table in the terminal.

One row per ablation: its outcome, the headline effect with its interval, and
how many of the claim's checks held, failed, showed no effect or could not be
told. On a terminal rich draws the table (rich comes with Keras); piped, it is
plain aligned text. Loads neither TensorFlow nor matplotlib.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ablations.engine.tracking import Tracker

COLUMNS = ("ablation", "profile", "outcome", "headline effect (interval)", "held", "failed", "no effect", "unclear")
CHECK_OUTCOMES = {"reproduced": "held", "not reproduced": "failed", "no effect": "no effect", "inconclusive": "unclear"}
"""A claim check's outcome (`verdict.Check`; "no effect (negligible, real)" counts as no effect) -> its column."""


def latest_run(tracker: Tracker, name: str):
    """The ablation's newest FINISHED parent run, or None."""
    experiment = tracker.client.get_experiment_by_name(name)
    if experiment is None:
        return None
    runs = tracker.client.search_runs(
        [experiment.experiment_id],
        "tags.run_kind = 'ablation' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def load_verdict(tracker: Tracker, run) -> dict | None:
    """The run's ``verdict.json``, or None (a run whose trials all failed has none)."""
    try:
        return tracker.load_json(run.info.run_id, "verdict.json")
    except Exception:
        return None


def verdict_rows(names: Sequence[str], tracker: Tracker | None = None) -> list[dict[str, Any]]:
    """One row per ablation (`COLUMNS`), from its latest finished run.

    Args:
        names: The ablations, in the order of the rows.
        tracker: MLflow tracker; defaults to the configured tracking URI.
    """
    tracker = tracker or Tracker()
    rows = []
    for name in names:
        run = latest_run(tracker, name)
        verdict = load_verdict(tracker, run) if run is not None else None
        row = dict.fromkeys(COLUMNS, "")
        row["ablation"] = name
        if run is None or verdict is None:
            row["outcome"] = "not run yet" if run is None else "no verdict"
            rows.append(row)
            continue
        headline = verdict.get("headline")
        outcomes = [c["outcome"].split(" (")[0] for c in verdict.get("checks", []) if c.get("role") == "claim"]
        counts = Counter(CHECK_OUTCOMES[outcome] for outcome in outcomes)
        row.update({column: counts.get(column, 0) for column in CHECK_OUTCOMES.values()})
        row["profile"] = run.data.tags.get("profile", "")
        row["outcome"] = verdict["outcome"]
        row["headline effect (interval)"] = f"{headline['part']} ({headline['condition']}): {headline['measured']}" if headline else ""
        rows.append(row)
    return rows


def print_verdicts(rows: list[dict[str, Any]], report: Path | None = None) -> None:
    """Prints the rows as a table, then the report's path.

    On a terminal rich draws it to the terminal's width; piped or without
    rich, it is plain text with one line per ablation, for grep and logs.
    """
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        console = None
    else:
        console = Console()
    if console is None or not console.is_terminal:
        print(plain_table(rows))
    else:
        table = Table(title="latest verdicts (MLflow)")
        for column in COLUMNS:
            wraps = column == "headline effect (interval)"
            table.add_column(column, no_wrap=not wraps, ratio=1 if wraps else None, justify="left" if wraps or column in COLUMNS[:3] else "right")
        for row in rows:
            table.add_row(*(str(row[column]) for column in COLUMNS))
        console.print(table)
    if report is not None:
        print(f"report: {report}")


def plain_table(rows: list[dict[str, Any]]) -> str:
    """The rows as text columns padded to their widest cell."""
    cells = [list(COLUMNS)] + [[str(row[column]) for column in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells)
