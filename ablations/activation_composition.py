"""Composing activations: ReLU is idempotent, the sigmoid squashes.

The lecture's claim: ReLU is idempotent, f∘f = f, so stacking it does not
change the function; applying the logistic sigmoid again and again "squashes"
its input into an ever narrower range, and the derivative goes to zero with
the number of compositions: another view of the vanishing gradient. The
lecture states the derivative claim for the sigmoid (σ' ≤ 1/4); tanh appears
only as a figure, so here it is an *extension*: judged and shown, it never
decides the claim.

Run it:

    ablate run activation_composition --profile quick

The verdict (`ablations.engine.verdict`). Conditions: the activations, each
composed k = 1..max_k times on a fixed float64 grid over [-x_range, x_range]
(no training, no seeds: each effect is one exact number). The checks, fixed
before any run:

- relu and the identity (the lecture's other example): f∘f = f, i.e.
  max |f∘f − f| below `IDEMPOTENT_TOLERANCE`. It holds by construction
  (max(0, max(0, x)) = max(0, x)): a sanity check, never evidence;
- sigmoid, the claim: f^max_k spans a narrower range than f (width ratio
  below 1 beyond round-off, `SHRINKS`), and its largest slope anywhere on the
  interval falls ("goes to zero everywhere on it"). The headline is the slope;
- tanh, the extension: its range narrows, and its slope at the fixed point
  x = `FIXED_X` falls. At x = 0 it does not: tanh'(0) = 1, so (tanh^k)'(0) = 1
  for every k, the exception the report states.

What to expect: ReLU and the identity compose to themselves exactly. The
sigmoid's slope falls geometrically, by at least 4 per composition (each
factor σ' ≤ 1/4), everywhere on the interval. tanh's slope away from 0 falls
too, but polynomially: the iterates tanh^k(x) shrink like sqrt(3 / 2k), so
the slope's factors approach 1 and, for large k, the product falls like
k^(-3/2). The
figure "slope_decay_rate" shows both against k on log-log axes with those
two rates drawn beside them. Other activations' idempotence (ReLU6 is
idempotent too, Leaky ReLU and the smooth ones are not) is reported, not
judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter
import numpy as np
import pandas as pd

from ablations.engine.plots import metric_history
from ablations.engine.spec import Ablation, Param, Reference, one_by_one
from ablations.engine.stats import summarize
from ablations.engine.verdict import Check, SmallestEffect, Verdict
from models.names import ACTIVATIONS

# TensorFlow and the activations are imported in the functions that use them: they load
# only when a trial runs, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import tensorflow as tf

# PReLU's slope is a learned weight, not a fixed function to compose.
COMPOSABLE = tuple(name for name in ACTIVATIONS if name != "prelu")
SQUASHING = ("sigmoid", "tanh")
IDEMPOTENT = ("linear", "relu")
"""The lecture's idempotent examples in the grid: f(x) = x and ReLU (|x| is not an activation here)."""
IDEMPOTENT_TOLERANCE = 1e-12
"""max |f∘f − f| below this counts as f∘f = f: float64 round-off on the grid, far below any real difference."""
SHRINKS = 1 - 1e-9
"""A width or slope ratio (k = max_k over k = 1) below this has shrunk: below 1 beyond float64 round-off.

The numbers are exact arithmetic, not samples, so the direction is the claim; a ratio of 1 up to
round-off (tanh's slope at 0) has not shrunk.
"""
FIXED_X = 1.0
"""Where tanh's slope is judged: away from 0, its one point of unit slope, and inside every profile's grid."""
SHRINKS_BY = SmallestEffect(0.01, "a ratio within 1% of 1 after max_k compositions is no narrowing a reader could see in the figure")

PARAMS = {
    "activation": Param("relu", "activation to compose", choices=COMPOSABLE),
    "max_k": Param(3, "compose f with itself k = 1..max_k times", low=1, high=100),
    "x_range": Param(5.0, "inputs span [-x_range, x_range]", low=0.1, high=1000.0),
    "points": Param(2001, "grid points on that span", low=11, high=1_000_001),
}

PROFILES = {
    "smoke": {"activation": ["relu", "sigmoid", "tanh"], "seeds": 1},
    "quick": {"activation": list(COMPOSABLE), "max_k": 6, "seeds": 1},
    "full": {"activation": list(COMPOSABLE), "max_k": 20, "x_range": 10.0, "points": 20001, "seeds": 1},
}


def compose(name: str, k: int, x: tf.Tensor) -> tf.Tensor:
    """f^k(x) = f(f(...f(x))) with ``k`` applications of the activation ``name``."""
    from models.activations import activation_function

    f = activation_function(name)
    for _ in range(k):
        x = f(x)
    return x


def composition_profile(name: str, max_k: int, x_range: float, points: int) -> list[dict[str, float]]:
    """For k = 1..max_k: range width, largest and mean derivative of f^k on the grid, and its slope at 0 and `FIXED_X`."""
    import tensorflow as tf

    x = tf.constant(np.concatenate([np.linspace(-x_range, x_range, points), [0.0, FIXED_X]]), tf.float64)
    rows = []
    for k in range(1, max_k + 1):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = compose(name, k, x)
        slope = np.abs(tape.gradient(y, x).numpy())
        values, on_grid = y.numpy()[:points], slope[:points]
        rows.append(
            {
                "range_width": float(values.max() - values.min()),
                "max_derivative": float(on_grid.max()),
                "mean_derivative": float(on_grid.mean()),
                "slope_at_0": float(slope[points]),
                "slope_at_x": float(slope[points + 1]),
            }
        )
    return rows


def idempotence_error(name: str, x_range: float, points: int) -> float:
    """max |f(f(x)) - f(x)| on the grid: exactly 0 for an idempotent f."""
    import tensorflow as tf

    x = tf.constant(np.linspace(-x_range, x_range, points), tf.float64)
    return float(tf.reduce_max(tf.abs(compose(name, 2, x) - compose(name, 1, x))).numpy())


def trial(config: dict, log) -> dict[str, float]:
    """Composes one activation k = 1..max_k times; logs each k's profile, returns the first and last and their ratios."""
    rows = composition_profile(config["activation"], config["max_k"], config["x_range"], config["points"])
    for k, row in enumerate(rows, start=1):
        log(row, k)
    first, last = rows[0], rows[-1]
    return {
        "idempotence_error": idempotence_error(config["activation"], config["x_range"], config["points"]),
        "range_width_k1": first["range_width"],
        "range_width_kmax": last["range_width"],
        "max_derivative_k1": first["max_derivative"],
        "max_derivative_kmax": last["max_derivative"],
        "mean_derivative_k1": first["mean_derivative"],
        "mean_derivative_kmax": last["mean_derivative"],
        "slope_at_0_kmax": last["slope_at_0"],
        "slope_at_x_k1": first["slope_at_x"],
        "slope_at_x_kmax": last["slope_at_x"],
        "range_ratio": _ratio(last["range_width"], first["range_width"]),
        "max_derivative_ratio": _ratio(last["max_derivative"], first["max_derivative"]),
        "slope_at_x_ratio": _ratio(last["slope_at_x"], first["slope_at_x"]),
    }


def _ratio(last: float, first: float) -> float:
    return last / first if first else float("nan")


def verdict(trials: pd.DataFrame) -> Verdict:
    """Checks per activation: relu and the identity idempotent; sigmoid and tanh narrow their range and slope."""
    by_name = {row["activation"]: row for _, row in trials.iterrows()}
    max_k = int(trials["max_k"].min())
    if "relu" not in by_name or "sigmoid" not in by_name or max_k < 2:
        return Verdict([], notes="The grid needs relu and sigmoid (the claim's activations), and max_k of 2 or more.")
    checks = []
    for name in IDEMPOTENT:
        if name in by_name:
            error = summarize([by_name[name]["idempotence_error"]], kind="exact")
            # f∘f = f for these holds by construction (max(0, max(0, x)) = max(0, x)): a bug if it fails, never evidence.
            checks.append(Check.below(name, "f∘f = f: max |f∘f − f|", error, IDEMPOTENT_TOLERANCE, role="sanity", spec=".3g"))
    headline = None
    for name in SQUASHING:
        if name not in by_name:
            continue
        row = by_name[name]
        role = "claim" if name == "sigmoid" else "extension"
        details = {
            "range width k=1 → k=max": f"{row['range_width_k1']:.3g} → {row['range_width_kmax']:.3g}",
            "max f' k=1 → k=max": f"{row['max_derivative_k1']:.3g} → {row['max_derivative_kmax']:.3g}",
            f"f' at x={FIXED_X:g}, k=1 → k=max": f"{row['slope_at_x_k1']:.3g} → {row['slope_at_x_kmax']:.3g}",
        }
        options = {"spec": ".3g", "details": details, "smallest": SHRINKS_BY, "null": 1.0, "role": role}
        ratios = {key: summarize([row[key]], kind="exact") for key in ("range_ratio", "max_derivative_ratio", "slope_at_x_ratio")}
        checks.append(Check.below(name, f"range narrows: width of f^{max_k} / f", ratios["range_ratio"], SHRINKS, **options))
        if name == "sigmoid":  # the lecture's claim: the slope vanishes everywhere on the interval
            slope = Check.below(name, f"slope vanishes: max slope of f^{max_k} / f", ratios["max_derivative_ratio"], SHRINKS, **options)
            headline = slope
        else:  # tanh'(0) = 1 for every k: judged away from 0, where it does vanish
            slope = Check.below(name, f"slope vanishes: slope of f^{max_k} / f at x = {FIXED_X:g}", ratios["slope_at_x_ratio"], SHRINKS, **options)
        checks.append(slope)
    others = [name for name in by_name if name not in (*IDEMPOTENT, *SQUASHING)]
    notes = []
    if "tanh" in by_name:
        notes.append(f"The exception: tanh's slope at 0 stays tanh'(0) = 1, (tanh^{max_k})'(0) = {by_name['tanh']['slope_at_0_kmax']:.6g}.")
    if others:
        notes.append("Not judged, max |f∘f − f|: " + ", ".join(f"{name} {by_name[name]['idempotence_error']:.3g}" for name in others) + ".")
    return Verdict(checks, headline=headline, notes=" ".join(notes))


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """The lecture's plots: f, f∘f, f∘f∘f for sigmoid, tanh and (jittered) ReLU; derivative decay."""
    import tensorflow as tf

    x_range = float(trials["x_range"].iloc[0])
    x = tf.constant(np.linspace(-x_range, x_range, 801), tf.float64)
    shown = [name for name in ("sigmoid", "tanh", "relu") if name in set(trials["activation"])]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.6), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes[0], shown):
        for k in (1, 2, 3):
            # ReLU^k is the same curve for every k: offset each so all three show.
            jitter = 0.08 * (k - 1) if name == "relu" else 0.0
            ax.plot(x.numpy(), compose(name, k, x).numpy() + jitter, label=f"k={k}" + (" (jittered)" if jitter else ""))
        ax.set_title(f"{name} composed k times")
        ax.set_xlabel("x")
        ax.legend(fontsize=8)
    fig_decay, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for _, row in trials.iterrows():
        steps, slopes = metric_history(client, row["run_id"], "max_derivative")
        ax.plot(steps, [max(slope, 1e-12) for slope in slopes], marker="o", label=row["activation"])
    ax.set_yscale("log")
    ax.set_xlabel("k (compositions)")
    ax.set_ylabel("max |d f^k / dx| on the grid")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Largest slope of f^k")
    return {"compositions": fig, "derivative_vs_k": fig_decay, "slope_decay_rate": _decay_rate(trials, client)}


def _decay_rate(trials: pd.DataFrame, client) -> plt.Figure:
    """Slope at `FIXED_X` against k, log-log: the sigmoid's geometric fall beside tanh's polynomial one, with both rates drawn."""
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for _, row in trials[trials["activation"].isin(SQUASHING)].iterrows():
        steps, slopes = (np.asarray(values, float) for values in metric_history(client, row["run_id"], "slope_at_x"))
        if not len(steps):
            continue
        line, = ax.plot(steps, slopes, marker="o", label=row["activation"])
        # Each rate drawn from the curve's first point: geometric (σ' ≤ 1/4 per factor) or k^(-3/2) (tanh's iterates ~ sqrt(3/2k)).
        rate = 0.25 ** (steps - steps[0]) if row["activation"] == "sigmoid" else (steps / steps[0]) ** -1.5
        name = "4^-k (geometric)" if row["activation"] == "sigmoid" else "k^-3/2 (polynomial)"
        ax.plot(steps, slopes[0] * rate, ":", color=line.get_color(), label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("k (compositions), log scale")
    ax.set_ylabel(f"|d f^k / dx| at x = {FIXED_X:g}")
    ax.set_title("How fast the slope vanishes")
    ax.legend(fontsize=8)
    return fig


REFERENCE = Reference(
    citation="Hochreiter and Schmidhuber (1997), Long Short-Term Memory, Neural Computation 9(8)",
    short="Hochreiter & Schmidhuber 1997",
    where="Section 3.1",
    value='"If f_lm is the logistic sigmoid function, then the maximal value of f\'_lm is 0.25"',
    regime="algebra: the derivative of the logistic sigmoid",
    here="float64 grids on [-5, 5], up to 6 compositions (full: [-10, 10], 20)",
    checked="read in the paper",
)

ABLATION = Ablation(
    name="activation_composition",
    claim=(
        "ReLU is idempotent (f∘f = f); composing the logistic sigmoid squashes its input into an ever narrower "
        "range and drives the derivative to zero (tanh, an extension: away from 0)."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=one_by_one(trial),
    verdict=verdict,
    figures=figures,
    objective="range_ratio",
    reference=REFERENCE,
)
