"""Figures several ablations draw: learning curves read back from MLflow, mean ± std or a line per seed over seeds, panels per condition, 1-D fits.

Example (held-out error and gap against training-set size, one panel column
per data set, one line per arm):

>>> fig, axes = mean_std_panels(
...     trials, PanelLayout("data", "augment", "n_train", "training examples", log_x=True),
...     [("final_val_error", "held-out (validation) error"), ("final_gap", "gap")],
...     title=str, label=lambda augment: "augmented" if augment else "plain",
...     suptitle="Augmentation against training-set size (mean ± std over seeds)",
... )
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def metric_history(client, run_id: str, metric: str, *, start: int = 0, finite_only: bool = False) -> tuple[list[int], list[float]]:
    """A run's logged ``metric`` as (steps, values) in step order, from step ``start`` on.

    Args:
        client: The MLflow client the figures get.
        run_id: The trial's run.
        metric: The metric's name.
        start: The first step kept (1 skips the initialization).
        finite_only: Leave out NaN and inf (a plot then joins the points on either side).
    """
    history = sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)
    points = [(m.step, m.value) for m in history if m.step >= start and (math.isfinite(m.value) or not finite_only)]
    return [step for step, _ in points], [value for _, value in points]


def plot_history(ax: plt.Axes, client, run_id: str, metric: str, *, start: int = 0, finite_only: bool = False, **style) -> plt.Line2D:
    """Draws a run's learning curve of ``metric`` on ``ax`` (see `metric_history`); returns the line, drawn even when empty."""
    steps, values = metric_history(client, run_id, metric, start=start, finite_only=finite_only)
    (line,) = ax.plot(steps, values, **style)
    return line


def marked_histories(client, runs: pd.DataFrame, panels: Sequence[tuple[str, str, bool]], *, label: Callable[[pd.Series], str]) -> tuple[plt.Figure, np.ndarray]:
    """One panel per ``(metric, mark, finite_only)``: each run's logged ``metric`` per epoch, dotted in its color at
    the epoch its column ``mark`` holds (where finite); ``finite_only`` leaves out the non-finite values logged."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), constrained_layout=True, squeeze=False)
    for _, run in runs.iterrows():
        for ax, (metric, mark, finite_only) in zip(axes[0], panels):
            line = plot_history(ax, client, run["run_id"], metric, finite_only=finite_only, label=label(run))
            if math.isfinite(run[mark]):
                ax.axvline(run[mark], color=line.get_color(), ls=":", lw=1)
    return fig, axes[0]


@dataclass(frozen=True)
class PanelLayout:
    """Where `mean_std_panels` puts a trial: a column of panels per value of one setting, a line per value of another.

    Args:
        panels: The column whose values get a panel column each.
        lines: The column whose values get a line each.
        x: The column on the horizontal axis.
        xlabel: Label of the bottom row's horizontal axes.
        panel_values: The panel columns' values in order; default: sorted.
        log_x: Logarithmic horizontal axes.
        x_marks: Values of ``x`` marked by a dotted vertical line in every panel (the lecture's setting, say).
    """

    panels: str
    lines: str
    x: str
    xlabel: str
    panel_values: Sequence | None = None
    log_x: bool = False
    x_marks: Sequence[float] = ()


def mean_std_panels(
    trials: pd.DataFrame,
    layout: PanelLayout,
    metrics: Sequence[tuple[str, str]],
    *,
    title: Callable[[Any], str],
    label: Callable[[Any], str],
    suptitle: str,
    one_legend: bool = False,
) -> tuple[plt.Figure, np.ndarray]:
    """A grid of panels of metrics against a setting, each point the mean ± std over seeds.

    One column per value of ``layout.panels``, one row per metric; in each
    panel one line per value of ``layout.lines``, the metric's mean over
    seeds against ``layout.x``, with its standard deviation as error bars.

    Args:
        trials: One row per trial.
        layout: Which settings make the panel columns, the lines and the horizontal axis.
        metrics: ``(metric, y-axis label)`` per row of panels.
        title: Title of a panel column from its value.
        label: Legend label of a line from its value.
        suptitle: Title of the figure.
        one_legend: A legend in the first column only (every column has the same lines), not in each.

    Returns:
        The figure and its ``(len(metrics), len(panel values))`` axes, for
        marks of the ablation's own (a reference line, say).
    """
    panels, lines, x = layout.panels, layout.lines, layout.x
    values = sorted(trials[panels].unique()) if layout.panel_values is None else list(layout.panel_values)
    fig, axes = plt.subplots(
        len(metrics), len(values), figsize=(5 * len(values), 3.5 * len(metrics)), squeeze=False, sharex=True, constrained_layout=True
    )
    for column, value in enumerate(values):
        for line, group in trials[trials[panels] == value].groupby(lines):
            for row, (metric, _) in enumerate(metrics):
                stats = group.groupby(x)[metric].agg(["mean", "std"])
                axes[row][column].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3, label=label(line))
        for row, (_, ylabel) in enumerate(metrics):
            axes[row][column].set_ylabel(ylabel)
            if layout.log_x:
                axes[row][column].set_xscale("log")
            for mark in layout.x_marks:
                axes[row][column].axvline(mark, color="gray", ls=":", lw=1)
        axes[0][column].set_title(title(value))
        axes[-1][column].set_xlabel(layout.xlabel)
        if column == 0 or not one_legend:
            axes[0][column].legend(fontsize=8)
    fig.suptitle(suptitle)
    return fig, axes


def panel_grid(count: int, size: tuple[float, float], *, columns: int | None = None, **options) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ``count`` panels of one size, one per condition, row by row; the panels left over are switched off.

    Args:
        count: The panels drawn on.
        size: ``(width, height)`` of one panel, in inches.
        columns: Panels per row; default: all in one row.
        **options: Passed on to `plt.subplots` (``sharey=True``, say).

    Returns:
        The figure and its ``(rows, columns)`` axes; ``axes.flat[:count]`` are the panels.
    """
    columns = count if columns is None else min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False, constrained_layout=True, **options)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    return fig, axes


def seed_lines(ax: plt.Axes, table: pd.DataFrame, *, color: str, label: str) -> None:
    """A metric against a setting: a thin line per seed and a thick one for the median over seeds, labelled "label (median)".

    Args:
        ax: The panel.
        table: One row per seed, one column per value of the setting (as `effects.per_seed` makes it).
        color: The lines' colour.
        label: The metric's name in the legend.
    """
    for seed in table.index:
        ax.plot(table.columns, table.loc[seed], color=color, alpha=0.25, lw=0.8, marker=".", ms=3)
    ax.plot(table.columns, table.median(), color=color, lw=2, marker="o", ms=4, label=f"{label} (median)")


def fit_panels(x: np.ndarray, y: np.ndarray, grid: np.ndarray, truth: np.ndarray, fits: dict[str, np.ndarray], *, suptitle: str) -> plt.Figure:
    """1-D regression fits side by side, one panel each: the true function (dashed), the fit and the training points.

    Args:
        x, y: The training points.
        grid: Where the curves are drawn.
        truth: The true function on ``grid``.
        fits: ``{panel title: prediction on grid}``, in panel order.
        suptitle: Title of the figure.
    """
    fig, axes = panel_grid(len(fits), (3.8, 3.4))
    low, high = float(y.min()) - 0.5, float(y.max()) + 0.5
    for ax, (title, prediction) in zip(axes[0], fits.items()):
        ax.plot(grid, truth, color="gray", ls="--", lw=1, label="true function")
        ax.plot(grid, prediction, color="tab:red", lw=1.2, label="fit")
        ax.scatter(x, y, s=10, color="tab:blue", label="training points", zorder=3)
        ax.set_ylim(low, high)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x")
        ax.legend(fontsize=7)
    fig.suptitle(suptitle)
    return fig


OUTCOME_COLOURS = {"reproduced": "#2a8c2a", "not reproduced": "#c0392b", "no effect": "#7f7f7f", "inconclusive": "#d4a017"}
"""A check's colour in a forest plot, by its outcome."""


def forest_plot(checks: Sequence[dict[str, Any]], *, width: float = 3.6, row_height: float = 0.17) -> plt.Figure:
    """A claim's checks at a glance: per part a panel, per condition a line with its interval and mean.

    The claimed region is shaded green and the no-effect band (null ± the
    smallest effect) grey; each interval is coloured by its check's outcome,
    and an interval that runs past the panel ends in an arrow. Boundary and
    sanity checks are drawn dashed: shown, but they never decide.

    Args:
        checks: `verdict.Check.numbers` of each check, as the verdict's JSON keeps them.
        width: The figure's width in inches.
        row_height: Inches per condition.
    """
    parts = list(dict.fromkeys(check["part"] for check in checks))
    rows = [sum(check["part"] == part for check in checks) for part in parts]
    height = sum(rows) * row_height + 0.32 * len(parts) + 0.1
    # Constrained: each panel's title and tick labels get their room, so nothing overlaps the panel above.
    fig, axes = plt.subplots(len(parts), 1, figsize=(width, height), squeeze=False, gridspec_kw={"height_ratios": rows}, layout="constrained")
    for ax, part in zip(axes[:, 0], parts):
        _forest_panel(ax, [check for check in checks if check["part"] == part])
        ax.set_title(textwrap.fill(part, 80), fontsize=6, loc="left", pad=2)
    fig.get_layout_engine().set(h_pad=0.01, w_pad=0.01, hspace=0.02)
    return fig


def _forest_panel(ax: plt.Axes, checks: Sequence[dict[str, Any]]) -> None:
    """One part's conditions, top to bottom, on a shared axis."""
    finite = [v for c in checks for v in (c["low"], c["high"], c["mean"], *c["region"], *c["band"]) if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (-1.0, 1.0)
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    region, band = checks[0]["region"], checks[0]["band"]
    ax.axvspan(max(region[0], lo), min(region[1], hi), color="#2a8c2a", alpha=0.12, lw=0)
    if band[1] > band[0]:
        ax.axvspan(band[0], band[1], color="#7f7f7f", alpha=0.25, lw=0)
    for row, check in enumerate(checks):
        y = len(checks) - 1 - row
        colour = OUTCOME_COLOURS.get(check["outcome"], "black")
        style = "--" if check["role"] != "claim" else "-"
        low = check["low"] if math.isfinite(check["low"]) else lo
        high = check["high"] if math.isfinite(check["high"]) else hi
        ax.plot([max(low, lo), min(high, hi)], [y, y], style, color=colour, lw=1.2)
        for end, edge, marker in ((check["low"], lo, "<"), (check["high"], hi, ">")):
            if not math.isfinite(end) or not lo <= end <= hi:
                ax.plot([edge], [y], marker, color=colour, ms=3)
        if math.isfinite(check["mean"]):
            ax.plot([min(max(check["mean"], lo), hi)], [y], "o", color=colour, ms=2.5)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.7, len(checks) - 0.3)
    labels = [c["condition"] + ("" if c["role"] == "claim" else f" ({c['role']})") for c in checks]
    ax.set_yticks(range(len(checks))[::-1], labels, fontsize=5)
    ax.tick_params(axis="x", labelsize=5, length=2, pad=1)
    ax.tick_params(axis="y", length=0)
