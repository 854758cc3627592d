"""The figures several ablations draw."""

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from ablations.engine.plots import (
    PanelLayout,
    fit_panels,
    forest_plot,
    marked_histories,
    mean_std_panels,
    metric_history,
    panel_grid,
    plot_history,
    seed_lines,
)


class _Client:
    """Stands in for the MLflow client: one run's metric histories, logged out of order."""

    def __init__(self, histories):
        self.histories = histories

    def get_metric_history(self, run_id, metric):
        return [SimpleNamespace(step=step, value=value) for step, value in self.histories[(run_id, metric)]]


CLIENT = _Client({("run", "loss"): [(2, 0.5), (0, math.nan), (1, 1.0), (3, math.inf)]})


def test_metric_history_orders_by_step_and_filters_on_request():
    steps, values = metric_history(CLIENT, "run", "loss")
    assert steps == [0, 1, 2, 3] and values[1:3] == [1.0, 0.5] and math.isnan(values[0]) and math.isinf(values[3])
    assert metric_history(CLIENT, "run", "loss", finite_only=True) == ([1, 2], [1.0, 0.5])
    assert metric_history(CLIENT, "run", "loss", start=2) == ([2, 3], [0.5, math.inf])


def test_plot_history_draws_one_line_even_when_empty():
    fig, ax = plt.subplots()
    line = plot_history(ax, CLIENT, "run", "loss", finite_only=True, label="loss", color="red")
    assert list(line.get_xdata()) == [1, 2] and list(line.get_ydata()) == [1.0, 0.5]
    assert line.get_label() == "loss" and line.get_color() == "red"
    empty = plot_history(ax, _Client({("run", "loss"): []}), "run", "loss")
    assert len(empty.get_xdata()) == 0 and len(ax.lines) == 2
    plt.close(fig)


@pytest.fixture
def trials():
    rows = []
    for data in ("a", "b"):
        for augment in (False, True):
            for n_train in (10, 100):
                for seed in (0, 1):
                    error = 0.5 - 0.1 * augment - 0.001 * n_train + 0.02 * seed + (0.1 if data == "b" else 0.0)
                    rows.append({"data": data, "augment": augment, "n_train": n_train, "seed": seed, "error": error, "gap": error / 2})
    return pd.DataFrame(rows)


def test_mean_std_panels_plot_the_mean_and_std_over_seeds(trials):
    fig, axes = mean_std_panels(
        trials,
        PanelLayout(panels="data", lines="augment", x="n_train", xlabel="training examples", log_x=True),
        [("error", "held-out error"), ("gap", "gap")],
        title=lambda data: f"set {data}",
        label=lambda augment: "augmented" if augment else "plain",
        suptitle="against size",
    )
    assert axes.shape == (2, 2)
    top_b = axes[0][1]
    assert top_b.get_title() == "set b" and axes[1][0].get_xlabel() == "training examples" and axes[1][1].get_ylabel() == "gap"
    assert top_b.get_xscale() == "log" and fig._suptitle.get_text() == "against size"
    plain, augmented = top_b.containers  # one errorbar per line, in group order
    assert [t.get_text() for t in top_b.get_legend().get_texts()] == ["plain", "augmented"]
    line = plain.lines[0]
    assert list(line.get_xdata()) == [10, 100]
    # Mean over the two seeds: 0.5 - 0.001 n + 0.01 + 0.1.
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [0.6, 0.51])
    np.testing.assert_allclose(np.asarray(augmented.lines[0].get_ydata(), float), [0.5, 0.41])
    # Error bars span ± the sample standard deviation over seeds (0.02 / sqrt(2)).
    segments = plain.lines[2][0].get_segments()
    np.testing.assert_allclose([high - low for (_, low), (_, high) in segments], 2 * 0.02 / np.sqrt(2) * np.ones(2))
    plt.close(fig)


def _error_panels(trials, one_legend=False, **layout):
    """One row of panels, the error against n_train per data set, with ``layout``'s options on top."""
    layout = PanelLayout("data", "augment", "n_train", "n", **layout)
    return mean_std_panels(trials, layout, [("error", "error")], title=str, label=str, suptitle="", one_legend=one_legend)


def test_mean_std_panels_can_keep_one_legend(trials):
    fig, axes = _error_panels(trials, one_legend=True, x_marks=[50])
    assert axes[0][0].get_legend() is not None and axes[0][1].get_legend() is None
    # The mark is a vertical line at x = 50 in every panel, left out of the legend.
    marks = [[line for line in ax.lines if list(line.get_xdata()) == [50, 50]] for ax in axes[0]]
    assert [len(found) for found in marks] == [1, 1] and marks[0][0].get_linestyle() == ":"
    assert [t.get_text() for t in axes[0][0].get_legend().get_texts()] == ["False", "True"]
    plt.close(fig)


def test_mean_std_panels_follow_the_given_panel_order(trials):
    fig, axes = _error_panels(trials, panel_values=["b", "a"])
    assert axes.shape == (1, 2) and [ax.get_title() for ax in axes[0]] == ["b", "a"]
    assert axes[0][0].get_legend() is not None and axes[0][1].get_legend() is not None
    assert axes[0][0].get_xscale() == "linear"
    plt.close(fig)


def test_a_forest_plots_labels_and_titles_are_whole_and_overlap_nothing():
    """Long condition names and part titles (dropout's) are drawn whole: inside the saved image, clear of the panel above."""
    def check(part, condition, role="claim"):
        return {"part": part, "condition": condition, "role": role, "outcome": "inconclusive", "low": -0.2, "high": 0.1,
                "mean": -0.05, "region": [0.0, math.inf], "band": [-0.02, 0.02]}

    long_part = "mask-averaged z matches z (RMS deviation in Monte Carlo standard errors)"
    checks = [check("held-out error lower with keep 0.5", f"n_train={n}", "boundary") for n in (100, 200)]
    checks += [check("epochs to converge about double", f"n_train={n}") for n in (100, 200)]
    checks += [check(long_part, "every trained net with dropout", "sanity")]
    fig = forest_plot(checks)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    saved = fig.get_tightbbox(renderer)  # what savefig(bbox_inches="tight") keeps, in inches
    titles = [_left_title(ax) for ax in fig.axes]
    texts = [label for ax in fig.axes for label in ax.get_yticklabels()] + titles
    for text in texts:
        box = text.get_window_extent(renderer).transformed(fig.dpi_scale_trans.inverted())
        assert saved.x0 - 1e-6 <= box.x0 and box.x1 <= saved.x1 + 1e-6, text.get_text()
    for above, title in zip(fig.axes, titles[1:]):
        title = title.get_window_extent(renderer)
        assert all(not title.overlaps(label.get_window_extent(renderer)) for label in above.get_xticklabels() if label.get_text())
    plt.close(fig)


def _left_title(ax):
    """The Text of an axes' left-aligned title."""
    return next(text for text in ax.findobj(matplotlib.text.Text) if text.get_text() and text.get_text() == ax.get_title(loc="left"))


def test_panel_grid_fills_rows_and_switches_off_the_panels_left_over():
    fig, axes = panel_grid(5, (3.0, 2.0), columns=3, sharey=True)
    assert axes.shape == (2, 3) and tuple(fig.get_size_inches()) == (9.0, 4.0)
    assert [ax.axison for ax in axes.flat] == [True] * 5 + [False]
    plt.close(fig)
    fig, axes = panel_grid(2, (4.0, 3.0))
    assert axes.shape == (1, 2) and tuple(fig.get_size_inches()) == (8.0, 3.0)
    plt.close(fig)


def test_seed_lines_draw_each_seed_thin_and_the_median_thick():
    table = pd.DataFrame({1: [1.0, 3.0, 2.0], 4: [0.5, 0.1, 0.3]}, index=[0, 1, 2])
    fig, ax = plt.subplots()
    seed_lines(ax, table, color="tab:red", label="error")
    *seeds, median = ax.get_lines()
    assert [list(line.get_ydata()) for line in seeds] == [[1.0, 0.5], [3.0, 0.1], [2.0, 0.3]]
    assert list(median.get_ydata()) == [2.0, 0.3] and median.get_label() == "error (median)"
    assert median.get_linewidth() > seeds[0].get_linewidth()
    plt.close(fig)


def test_fit_panels_draw_the_truth_the_fit_and_the_points_per_panel():
    x, y = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    grid = np.linspace(0, 1, 5)
    fig = fit_panels(x, y, grid, grid + 1, {"first": grid * 0, "second": grid * 2}, suptitle="fits")
    first, second = fig.axes
    assert [first.get_title(), second.get_title()] == ["first", "second"]
    assert list(second.get_lines()[1].get_ydata()) == list(grid * 2) and first.get_ylim() == (0.5, 2.5)
    assert [line.get_label() for line in first.get_lines()] == ["true function", "fit"] and len(first.collections) == 1
    plt.close(fig)


def test_marked_histories_draw_each_run_per_panel_and_mark_only_finite_epochs():
    client = _Client({("a", "loss"): [(0, math.nan), (1, 1.0), (2, 0.5)], ("b", "loss"): [(0, 2.0), (1, 1.5)],
                      ("a", "error"): [(0, 0.9), (1, 0.4)], ("b", "error"): [(0, 0.8), (1, 0.6)]})
    runs = pd.DataFrame({"run_id": ["a", "b"], "name": ["first", "second"], "converged": [1.5, math.nan], "reached": [2.0, 1.0]})
    fig, axes = marked_histories(client, runs, [("error", "converged", False), ("loss", "reached", True)], label=lambda run: run["name"])
    assert len(axes) == 2 and fig.get_size_inches().tolist() == [11.0, 4.0]
    # Per panel: one line per run, then a dotted mark where its epoch is finite.
    drawn = [[(list(line.get_xdata()), line.get_label()) for line in ax.lines if line.get_linestyle() == "-"] for ax in axes]
    assert drawn[0] == [([0, 1], "first"), ([0, 1], "second")] and drawn[1] == [([1, 2], "first"), ([0, 1], "second")]
    marks = [[line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] for ax in axes]
    assert marks == [[1.5], [2.0, 1.0]]
    plt.close(fig)
