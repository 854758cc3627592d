"""A self-contained HTML report, read back from MLflow (not from a running process)."""

from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path

from ablations.engine.plots import forest_plot
from ablations.engine.protocol import REMEDIES
from ablations.engine.registry import all_ablations
from ablations.engine.show import latest_run, load_verdict
from ablations.engine.spec import Ablation, Reference
from ablations.engine.tracking import Tracker, results_dir
from ablations.engine.verdict import RULE

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
.claim { font-style: italic; }
.outcome { font-weight: bold; padding: .1em .5em; border-radius: .3em; }
.reproduced { background: #d4f4d4; } .partly-reproduced { background: #e4f0c0; }
.not-reproduced { background: #f8d4d4; } .inconclusive { background: #f4ecc4; }
.not-reproduced-no-effect { background: #e4e4e4; }
img.forest { border: none; margin: 0; max-width: 420px; }
.rule { background: #f6f6f6; padding: .5em .8em; font-size: .9em; }
table { border-collapse: collapse; font-size: .85em; margin: .8em 0; }
td, th { border: 1px solid #ddd; padding: .25em .5em; text-align: left; }
img { max-width: 100%; margin: .5em 0; border: 1px solid #eee; }
.meta { color: #666; font-size: .85em; }
.literature { background: #f4f6fb; padding: .4em .8em; font-size: .9em; }
"""


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _diagnoses(tracker: Tracker, run) -> str:
    """How many trials read as high bias / high variance / balanced, with the lecture's remedy."""
    children = tracker.child_runs(run.info.experiment_id, run.info.run_id)
    if "tags.diagnosis" not in children:
        return ""
    counts = children["tags.diagnosis"].value_counts()
    rows = [{"diagnosis": name, "trials": int(counts.get(name, 0)), "the lecture's remedy": REMEDIES[name]} for name in REMEDIES]
    return "<p>Bias / variance diagnosis of the trials (training vs validation error):</p>" + _table(rows)


def _outcome_badge(outcome: str) -> str:
    css = outcome.replace(" (", "-").replace(")", "").replace(" ", "-")
    return f"<span class='outcome {css}'>{html.escape(outcome)}</span>"


def _png(figure) -> str:
    """A figure as a base64 PNG, closed once encoded."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # Tight: long condition names and part titles stay whole instead of being cut at the figure's edge.
    figure.savefig(buffer, format="png", dpi=130, bbox_inches="tight", pad_inches=0.02)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _forest(verdict: dict) -> str:
    """The claim's compact forest plot: each check's interval against its region and no-effect band."""
    checks = verdict.get("checks") or []
    if not checks:
        return ""
    return f"<img class='forest' alt='checks of the claim' src='data:image/png;base64,{_png(forest_plot(checks))}'>"


def _one_line(claim: str) -> str:
    """The claim's first sentence."""
    first, dot, _ = claim.partition(". ")
    return first + ("." if dot else "")


def _summary_row(ablation: Ablation, run, verdict: dict | None) -> str:
    """One row of the summary table: the claim, its outcome, the headline effect, the checks, the literature."""
    link = f"<a href='#{html.escape(ablation.name)}'>{html.escape(ablation.name)}</a>"
    literature = _literature_cell(ablation.reference)
    if run is None or verdict is None:
        cells = [link, html.escape(_one_line(ablation.claim)), "not run yet" if run is None else "no verdict", "", "", literature]
    else:
        headline = verdict.get("headline")
        effect = f"{headline['part']} ({headline['condition']}): {headline['measured']}" if headline else ""
        cells = [
            link,
            html.escape(_one_line(ablation.claim)),
            _outcome_badge(verdict["outcome"]),
            html.escape(effect),
            _forest(verdict),
            literature,
        ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _literature_cell(reference: Reference | None) -> str:
    if reference is None:
        return "none given"
    return f"{html.escape(reference.short)}, {html.escape(reference.where)}: {html.escape(reference.value)}"


def _literature(reference: Reference | None) -> str:
    """The section's paragraph: the reference measurement, how it was checked, and its regime against this one."""
    if reference is None:
        return "<p class='literature'>Literature: no reference measurement is given for this claim.</p>"
    return (
        f"<p class='literature'>Literature: {html.escape(reference.citation)}, {html.escape(reference.where)}: "
        f"{html.escape(reference.value)} <span class='meta'>({html.escape(reference.checked)})</span><br>"
        f"Regimes: {html.escape(reference.comparison())}</p>"
    )


def _summary_table(rows: list[str]) -> str:
    columns = (
        "ablation",
        "claim",
        "outcome",
        "headline effect (CI)",
        "checks: interval, claimed region (green), no effect (grey)",
        "literature",
    )
    head = "".join(f"<th>{c}</th>" for c in columns)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _where(verdict: dict) -> str:
    """The conditions under each reading of the claim checks, as a short list."""
    readings = (("held", "held under"), ("failed", "failed under"), ("no_effect", "no effect under"), ("unclear", "could not be told under"))
    items = [f"<li>{label}: {html.escape('; '.join(verdict[key]))}</li>" for key, label in readings if verdict.get(key)]
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _section(tracker: Tracker, ablation: Ablation, run, verdict: dict | None) -> str:
    name, claim = ablation.name, ablation.claim
    anchor = f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>"
    if run is None:
        return f"{anchor}<p class='claim'>{html.escape(claim)}</p>{_literature(ablation.reference)}<p>Not run yet.</p>"
    run_id = run.info.run_id
    parts = [anchor, f"<p class='claim'>Claim: {html.escape(claim)}</p>", _literature(ablation.reference)]
    tags = run.data.tags
    parts.append(
        f"<p class='meta'>run {run_id} · profile {html.escape(tags.get('profile', '?'))} · "
        f"commit {html.escape(tags.get('git_commit', '?')[:10])} · "
        f"{int(run.data.metrics.get('trials_finished', 0))} trials finished, "
        f"{int(run.data.metrics.get('trials_failed', 0))} failed</p>"
    )
    if verdict:
        parts.append(f"<p>{_outcome_badge(verdict['outcome'])} {html.escape(verdict['summary'])}</p>")
        parts.append(_where(verdict))
        parts.append("<p>Per condition:</p>" + _table(verdict.get("table", [])))
    parts.append(_diagnoses(tracker, run))
    with tempfile.TemporaryDirectory() as folder:
        for artifact in tracker.client.list_artifacts(run_id, "figures"):
            if not artifact.path.endswith(".png"):
                continue
            local = tracker.client.download_artifacts(run_id, artifact.path, folder)
            encoded = base64.b64encode(Path(local).read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(artifact.path)}' src='data:image/png;base64,{encoded}'>")
    return "\n".join(parts)


def write_report(output: str | Path | None = None, tracker: Tracker | None = None) -> Path:
    """Writes the report of every ablation's latest finished run; returns its path.

    Args:
        output: Where to write; defaults to ``report.html`` under `results_dir`.
        tracker: MLflow tracker; defaults to the configured tracking URI.
    """
    tracker = tracker or Tracker()
    path = Path(output) if output else results_dir() / "report.html"
    rows, sections = [], []
    for name, ablation in all_ablations().items():
        run = latest_run(tracker, name)
        verdict = load_verdict(tracker, run) if run is not None else None
        rows.append(_summary_row(ablation, run, verdict))
        sections.append(_section(tracker, ablation, run, verdict))
    document = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Ablation report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Activations and regularization: ablation report</h1>"
        f"<p class='meta'>Read from MLflow at {html.escape(tracker.uri)}.</p>"
        + _summary_table(rows)
        + f"<p class='rule'>How a verdict is reached: {html.escape(RULE)}</p>"
        + "\n".join(sections)
        + "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a failure never leaves half a report.
    partial = path.with_suffix(".html.partial")
    partial.write_text(document, encoding="utf-8")
    partial.replace(path)
    return path
