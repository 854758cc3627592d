"""Linear collapse: without a nonlinearity, a deep net is one affine map.

The lecture's claim: with linear activations, L layers compose to a single
affine map W~ x + b~ (W~ = W1 W2 ... WL), so a deep linear net can only fit
(nearly) linear functions: on a nonlinear task it does no better than logistic
regression, while a ReLU net of the same shape does.

Run it:

    ablate run linear_collapse --profile quick

The verdict (`ablations.engine.verdict`). Conditions: the tasks (and the
depth, when a grid runs several). Per condition, three checks over seeds,
fixed before any run:

- the deep linear net collapses: its deviation from the composed map
  W~ x + b~ (largest over a probe batch, relative to the output) is below
  `TOLERANCE` (float32 round-off). This holds by construction (matrix
  products are associative): a sanity check, shown and never evidence;
- it does what logistic regression does: its validation accuracy minus
  logistic regression's, paired by seed, lies within ± `NO_BETTER`, a
  two-sided equivalence. A one-sided "no better" would also pass a deep
  linear net that trained badly; this one fails it;
- a ReLU net of the same shape does better: its validation accuracy minus the
  deep linear net's, paired by seed, is above 0. The headline is this gain on
  the first task in alphabetical order (circles, in the quick profile).

Both differences are of accuracies on one validation set: discrete (steps of
one example in 200), and on moons the deep linear net and logistic regression
draw the same boundary on every seed, so the difference is exactly 0 each
time. A t-interval would have zero width there and decide from three seeds;
the checks read the order-statistic interval of the median difference
(`stats`), which needs 7 seeds to be bounded at all at the quick profile's
98.3% (three tasks): the quick profile runs 8, packed into one stack per task
(logistic regression in a stack of its own).

What to expect: the deep linear net equals its composed affine map to float32
round-off, and on every task its accuracy is about logistic regression's
(within the margin on moons, every seed alike; on circles and XOR, where both
sit near chance, the seeds spread too widely for eight of them to show it):
fair on moons, which a line separates fairly well, and near chance on circles
and XOR. The ReLU net gains about ten points of accuracy on moons and tens of
points on circles and XOR. The figure shows the straight decision boundaries.

A seed redraws the initial weights and the minibatch order; the data split stays
fixed, because the claim is about what functions the net can represent, not
about generalizing from one sample.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.effects import mean_sd, seed_differences
from ablations.engine.spec import Ablation, Param, Reference, TrialContext
from ablations.engine.stats import summarize
from ablations.engine.verdict import Check, SmallestEffect, Verdict

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import keras

MODELS = ("deep_linear", "logistic", "relu_net")
TASKS = ("moons", "circles", "xor")
TOLERANCE = 1e-5
"""Relative deviation under which the deep linear net counts as its composed map (float32 round-off is ~1e-7)."""
NO_BETTER = 0.03
"""The deep linear net does what logistic regression does if their accuracies differ by less than this (3 points), either way."""
EXACT = SmallestEffect(0.0, "exact algebra: any deviation beyond float32 round-off breaks the identity")
ACCURACY_POINT = SmallestEffect(0.01, "one point of validation accuracy: below the seed-to-seed spread of these small tasks")
NONLINEAR_GAIN = SmallestEffect(NO_BETTER, "the margin that reads as 'no better' for the deep linear net: a gain below it is no gain either way")

PARAMS = {
    "data": Param("moons", "nonlinear 2-D task", choices=TASKS),
    "model": Param("deep_linear", "deep_linear | logistic (depth 0) | relu_net", choices=MODELS),
    "depth": params.depth(5, high=100, help="hidden layers of the deep nets"),
    "width": params.width(32, high=4096),
    "epochs": params.epochs(40),
    "batch_size": params.batch_size(32),
    "learning_rate": params.learning_rate(1e-2),
    "n_samples": Param(1000, "examples generated (train, validation and test)", low=30, high=1_000_000),
    "noise": Param(0.15, "label-preserving noise of the generator", low=0.0, high=2.0),
}

PROFILES = {
    "smoke": {"data": ["moons"], "model": list(MODELS), "epochs": 3, "n_samples": 300, "seeds": 1},
    "quick": {"data": list(TASKS), "model": list(MODELS), "seeds": 8},  # a median's 98.3% interval needs 7
    "full": {"data": list(TASKS), "model": list(MODELS), "depth": [2, 5, 10], "epochs": 200, "seeds": 100},  # the pilot: 91 for circles (README: How many seeds)
}


def _as_stack_config(config: dict) -> dict:
    activation = "relu" if config["model"] == "relu_net" else "linear"
    depth = 0 if config["model"] == "logistic" else config["depth"]
    return {**config, "activation": activation, "depth": depth, "initializer": "glorot_uniform"}


def _data(config: dict):
    return load_dataset(config["data"], n_samples=config["n_samples"], noise=config["noise"])


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains the pack (deep linear and ReLU nets share a depth) and checks the collapse identity."""
    from ablations.engine.train import train_pack

    data = _data(configs[0])
    pack = train_pack(
        [_as_stack_config(c) for c in configs],
        context.loggers,
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        data.num_classes,
    )
    probe = np.random.default_rng(0).normal(scale=3.0, size=(512, data.x_train.shape[1])).astype("float32")
    results = []
    for index, (config, member, history) in enumerate(zip(configs, pack.members, pack.histories)):
        model = pack.stack.member_model(member)
        deviation, relative = collapse_deviation(model, probe)
        results.append(
            {
                "final_loss": history["loss"][-1],
                "final_val_loss": history["val_loss"][-1],
                "final_accuracy": history["accuracy"][-1],
                "final_val_accuracy": history["val_accuracy"][-1],
                "collapse_max_deviation": deviation,
                "collapse_relative_deviation": relative,
            }
        )
        if config["seed"] == 0 and context.artifact_loggers:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.keras"
                model.save(path)
                context.artifact_loggers[index](str(path), "model")
    return results


def composed_affine_map(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """W~ and b~ such that a net with linear activations computes x W~ + b~.

    Composes the Dense layers in order: (x W1 + b1) W2 + b2 = x (W1 W2) + (b1 W2 + b2).
    """
    import keras

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    kernel, bias = dense[0].get_weights()
    for layer in dense[1:]:
        w, b = layer.get_weights()
        kernel, bias = kernel @ w, bias @ w + b
    return kernel, bias


def collapse_deviation(model: keras.Model, x: np.ndarray) -> tuple[float, float]:
    """Max |model(x) - (x W~ + b~)|, absolute and relative to max |model(x)|.

    For a linear-activation net both are float round-off; for a ReLU net they
    are large, which is the point of the contrast.
    """
    import keras

    kernel, bias = composed_affine_map(model)
    network = keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float64)
    affine = x.astype(np.float64) @ kernel.astype(np.float64) + bias
    deviation = float(np.max(np.abs(network - affine)))
    return deviation, deviation / max(float(np.max(np.abs(network))), 1e-30)


def _paired_difference(trials: pd.DataFrame, a: str, b: str) -> np.ndarray:
    """Per seed: validation accuracy of model ``a`` minus that of model ``b`` (one condition's trials)."""
    return seed_differences(trials, "model", a, b, "final_val_accuracy")


def _conditions(trials: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The tasks, each with its depths when the grid runs several: (label, trials) per condition."""
    several_depths = trials["depth"].nunique() > 1
    conditions = []
    for (task, depth), group in trials.groupby(["data", "depth"], sort=True):
        conditions.append((f"{task}, depth={depth}" if several_depths else str(task), group))
    return conditions


def verdict(trials: pd.DataFrame) -> Verdict:
    """Checks per task (and depth): the collapse identity (sanity), deep linear within ± `NO_BETTER` of logistic, ReLU > deep linear."""
    if not set(MODELS) <= set(trials["model"]):
        return Verdict([], notes="The grid needs deep_linear, logistic and relu_net trials.")
    checks, headline = [], None
    for condition, group in _conditions(trials):
        of = {model: group[group["model"] == model] for model in MODELS}
        details = {f"{model} val acc": mean_sd(summarize(rows["final_val_accuracy"]), ".3f", ".3f") for model, rows in of.items()}
        details["relu_net deviation"] = f"{of['relu_net']['collapse_relative_deviation'].max():.2g}"
        deviation = summarize(of["deep_linear"]["collapse_relative_deviation"], kind="exact")
        # Accuracy differences on one validation set are discrete (steps of 1/n_val) and
        # often equal on every seed (two nets with the same boundary): a median's interval
        # decides only with enough seeds, where a t-interval would collapse to a point.
        same = summarize(_paired_difference(group, "deep_linear", "logistic"), kind="median", bounds=(-1.0, 1.0))
        gain = summarize(_paired_difference(group, "relu_net", "deep_linear"), kind="median", bounds=(-1.0, 1.0))
        gain_check = Check.above(condition, "ReLU net − deep linear val accuracy", gain, smallest=NONLINEAR_GAIN, details=details)
        identity = Check.below(
            condition, "deep linear = composed map: relative deviation", deviation, TOLERANCE, smallest=EXACT, role="sanity", spec=".1e", details=details
        )
        equivalent = Check.within(condition, "deep linear − logistic val accuracy, within ±3 points", same, -NO_BETTER, NO_BETTER,
                                  smallest=ACCURACY_POINT, details=details)
        checks += [identity, equivalent, gain_check]
        headline = headline or gain_check
    return Verdict(checks, headline=headline)


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Decision boundaries of deep linear, logistic and ReLU nets, from the models kept in MLflow."""
    import keras

    tasks = sorted(trials["data"].unique())
    fig, axes = plt.subplots(len(tasks), len(MODELS), figsize=(3.4 * len(MODELS), 3.2 * len(tasks)), squeeze=False, constrained_layout=True)
    for row, task in enumerate(tasks):
        sample = trials[trials["data"] == task].iloc[0]
        data = _data(sample.to_dict())
        x, y = data.x_val, data.y_val
        lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
        grid = np.c_[gx.ravel(), gy.ravel()].astype("float32")
        for col, model_name in enumerate(MODELS):
            ax = axes[row][col]
            run = trials[(trials["data"] == task) & (trials["model"] == model_name) & (trials["seed"] == 0)]
            ax.scatter(x[:, 0], x[:, 1], c=y, s=6, cmap="coolwarm", edgecolors="none")
            ax.set_title(f"{task}: {model_name}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if run.empty:
                continue
            with tempfile.TemporaryDirectory() as folder:
                path = client.download_artifacts(run["run_id"].iloc[0], "model/model.keras", folder)
                model = keras.saving.load_model(path)
                classes = np.argmax(keras.ops.convert_to_numpy(model(grid, training=False)), axis=1)
            ax.contourf(gx, gy, classes.reshape(gx.shape), alpha=0.25, cmap="coolwarm")
            accuracy = run["final_val_accuracy"].iloc[0]
            ax.text(0.02, 0.02, f"val acc {accuracy:.2f}", transform=ax.transAxes, fontsize=8)
    fig.suptitle("Decision boundaries (validation points, seed 0)")
    return {"decision_boundaries": fig}


REFERENCE = Reference(
    citation="Goodfellow, Bengio and Courville (2016), Deep Learning, MIT Press",
    short="Goodfellow et al. 2016",
    where="Section 6.1, Example: Learning XOR",
    value='"if f(1) were linear, then the feedforward network as a whole would remain a linear function of its input"; '
    "the best linear model outputs 0.5 everywhere on XOR",
    regime="an argument, with XOR's four points as the example",
    here="moons, circles and XOR, 1,000 samples, depth 5 x 32, Adam, 40 epochs (full: depth 2-10, 200 epochs)",
    checked="read in the book",
)

ABLATION = Ablation(
    name="linear_collapse",
    claim=(
        "With linear activations, L layers collapse to one affine map W~ x + b~; "
        "the net only fits (nearly) linear functions, no better than logistic regression."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # The seeds of a task and depth train as one stack (they share the fixed split); logistic regression (depth 0) apart.
    pack_key=lambda c: tuple(sorted((k, v) for k, v in _as_stack_config(c).items() if k not in ("model", "activation", "seed"))),
    objective="final_val_loss",
    reference=REFERENCE,
)
