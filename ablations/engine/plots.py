"""Figures several ablations draw: learning curves read back from MLflow, and mean ± std over seeds.

Example (held-out error and gap against training-set size, one panel column
per data set, one line per arm):

>>> fig, axes = mean_std_panels(
...     trials, panels="data", lines="augment", x="n_train",
...     metrics=[("final_val_error", "held-out (validation) error"), ("final_gap", "gap")],
...     xlabel="training examples", title=str, label=lambda augment: "augmented" if augment else "plain",
...     suptitle="Augmentation against training-set size (mean ± std over seeds)", log_x=True,
... )
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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


def mean_std_panels(
    trials: pd.DataFrame,
    *,
    panels: str,
    lines: str,
    x: str,
    metrics: Sequence[tuple[str, str]],
    xlabel: str,
    title: Callable[[Any], str],
    label: Callable[[Any], str],
    suptitle: str,
    panel_values: Sequence | None = None,
    log_x: bool = False,
    x_marks: Sequence[float] = (),
    one_legend: bool = False,
) -> tuple[plt.Figure, np.ndarray]:
    """A grid of panels of metrics against a setting, each point the mean ± std over seeds.

    One column per value of ``panels``, one row per metric; in each panel one
    line per value of ``lines``, the metric's mean over seeds against ``x``,
    with its standard deviation as error bars.

    Args:
        trials: One row per trial.
        panels: The column whose values get a panel column each.
        lines: The column whose values get a line each.
        x: The column on the horizontal axis.
        metrics: ``(metric, y-axis label)`` per row of panels.
        xlabel: Label of the bottom row's horizontal axes.
        title: Title of a panel column from its value.
        label: Legend label of a line from its value.
        suptitle: Title of the figure.
        panel_values: The panel columns' values in order; default: sorted.
        log_x: Logarithmic horizontal axes.
        x_marks: Values of ``x`` marked by a dotted vertical line in every panel (the lecture's setting, say).
        one_legend: A legend in the first column only (every column has the same lines), not in each.

    Returns:
        The figure and its ``(len(metrics), len(panel_values))`` axes, for
        marks of the ablation's own (a reference line, say).
    """
    values = sorted(trials[panels].unique()) if panel_values is None else list(panel_values)
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
            if log_x:
                axes[row][column].set_xscale("log")
            for mark in x_marks:
                axes[row][column].axvline(mark, color="gray", ls=":", lw=1)
        axes[0][column].set_title(title(value))
        axes[-1][column].set_xlabel(xlabel)
        if column == 0 or not one_legend:
            axes[0][column].legend(fontsize=8)
    fig.suptitle(suptitle)
    return fig, axes
