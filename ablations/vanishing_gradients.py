"""Vanishing gradients: sigmoid starves the first layers, ReLU and its variants do not.

The lecture's claim: backpropagation multiplies one activation derivative per
layer, and the sigmoid's derivative is at most 1/4, so the gradient that reaches
the first layer shrinks geometrically with depth; ReLU's derivative is 0 or 1,
so the product need not vanish (dead ReLUs, whose derivative is 0 everywhere,
motivate Leaky ReLU and PReLU).

Run it:

    ablate run vanishing_gradients --profile quick

The verdict (`ablations.engine.verdict`). Conditions: the initializers. The
effect is read at initialization, per seed: the slope, over the depths of the
grid, of log10 of the ratio of first- to last-layer gradient norms (decades
per added layer), a fit within one seed, then summarized over seeds. Per
initializer, fixed before any run:

- sigmoid's slope is below 0: the ratio shrinks geometrically with depth (the
  headline, under Keras's default glorot_uniform when the grid has it);
- the slope of ReLU and of each of its variants in the grid (Leaky ReLU,
  PReLU, ReLU6) is above `KEEPS_SLOPE`: less than a decade lost over twenty
  layers.

Dead and saturated units are reported beside each check, not judged.

What to expect: sigmoid's ratio falls by roughly half a decade to a decade per
added layer under every initializer, far below 1 at depth 20, while ReLU and
its variants stay within about a decade of 1 at every depth (tanh too, and
in the full profile gelu and swish: tanh'(0) = 1, so tanh is not like sigmoid
here). With two seeds
an interval is wide (a t-interval on one degree of freedom), so a ReLU check
can come out inconclusive even with its slope near 0. ReLU pays in dead units
instead: a sizeable minority of its units are dead at depth 20, often more
after training, against none for Leaky ReLU and PReLU.

A seed redraws the initial weights and the minibatch order; the data split stays
fixed, because the claim is about the gradients that backpropagation carries at
initialization and in training, not about generalization. The activations and
seeds of one depth and initializer train as the members of one stack, each
from its own seed's weights and in its own seed's batch order.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.plots import plot_history
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import Check, SmallestEffect, Verdict
from models.names import ACTIVATIONS, INITIALIZERS

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

RELU_FAMILY = ("relu", "leaky_relu", "prelu", "relu6")
SIGMOID = "sigmoid"
KEEPS_SLOPE = -0.05
"""ReLU "keeps" the gradient if log10 of its first/last ratio falls by less than this per added layer.

One decade over twenty layers, the deepest net of the quick profile, where sigmoid's derivative
alone (σ' ≤ 1/4) allows a fall of 0.6 decades per layer.
"""
VANISHES = SmallestEffect(-KEEPS_SLOPE, "a decade over twenty layers, the quick profile's deepest net: less is no vanishing a net would feel")

PARAMS = {
    "data": params.data("mnist1d"),
    "activation": Param("relu", "hidden activation", choices=ACTIVATIONS),
    "depth": params.depth(5, high=200),
    "initializer": Param("glorot_uniform", "kernel initializer", choices=INITIALIZERS),
    "width": params.width(100, high=4096),
    "epochs": params.epochs(5, high=1000),
    "batch_size": params.batch_size(100),
    "learning_rate": params.learning_rate(1e-3),
    "n_train": params.n_train(4000),
    "probe_size": Param(256, "examples in the fixed probe batch", low=8, high=10_000),
}

PROFILES = {
    "smoke": {
        "activation": ["relu", "sigmoid"],
        "depth": [2, 5],
        "width": 32,
        "epochs": 1,
        "n_train": 500,
        "seeds": 1,
    },
    # The claim's activations (sigmoid against the ReLU family) with tanh and the identity beside them; relu6
    # (ReLU itself below 6, the same numbers here) and the smooth ReLU variants (elu, selu, gelu, swish) wait for
    # the full profile, which keeps three seeds of the quick profile in its minutes.
    "quick": {
        "activation": ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "prelu"],
        "depth": [2, 5, 10, 20],
        "initializer": ["glorot_uniform", "he_normal", "standard"],
        "seeds": 3,  # two seeds never decide a 98.33% interval (its t quantile is 38); the pilot asks 3 to 4
    },
    "full": {
        "activation": list(ACTIVATIONS),
        "depth": [2, 5, 10, 20, 30, 50],
        "initializer": ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "standard"],
        "epochs": 20,
        "seeds": 10,  # the pilot asks 4 (README: How many seeds); never fewer than 10
    },
}


def _dataset(config: dict):
    # MNIST-1D makes 4,000 training examples of its default 5,000 only with
    # test and validation carved out of more; generate enough for n_train.
    options = {"num_samples": max(5000, math.ceil(config["n_train"] / 0.6) + 10)} if config["data"] == "mnist1d" else {}
    return load_dataset(config["data"], n_train=config["n_train"], **options)


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains one pack (same everything, different activations and seeds) as a stacked model: each member its own seed."""
    from ablations.engine.train import train_pack

    data = _dataset(configs[0])
    pack = train_pack(configs, context.loggers, data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes)
    return [_final_metrics(history, config["depth"]) for history, config in zip(pack.histories, configs)]


def _final_metrics(history: dict[str, list[float]], depth: int) -> dict[str, float]:
    first, last = "grad_norm/dense_0", "grad_norm/output"
    metrics = {
        "final_loss": history["loss"][-1],
        "final_accuracy": history["accuracy"][-1],
        "final_val_loss": history["val_loss"][-1],
        "final_val_accuracy": history["val_accuracy"][-1],
        "init_grad_ratio": _ratio(history[first][0], history[last][0]),
        "final_grad_ratio": _ratio(history[first][-1], history[last][-1]),
        "init_dead_fraction": float(np.mean([history[f"dead_fraction/act_{i}"][0] for i in range(depth)])),
        "final_dead_fraction": float(np.mean([history[f"dead_fraction/act_{i}"][-1] for i in range(depth)])),
        "init_saturated_fraction": float(np.mean([history[f"saturated_fraction/act_{i}"][0] for i in range(depth)])),
    }
    metrics["init_log10_grad_ratio"] = math.log10(max(metrics["init_grad_ratio"], 1e-300))
    metrics.update({f"init_grad_norm/dense_{i}": history[f"grad_norm/dense_{i}"][0] for i in range(depth)})
    return metrics


def _ratio(first: float, last: float) -> float:
    return first / last if last > 0 else float("nan")


def _slopes(trials: pd.DataFrame) -> pd.DataFrame:
    """Per initializer, activation and seed: the slope of log10(first/last ratio) per added layer, fitted within the seed."""
    rows = []
    for (initializer, activation, seed), group in trials.groupby(["initializer", "activation", "seed"]):
        if group["depth"].nunique() < 2:
            continue
        slope = np.polyfit(group["depth"], group["init_log10_grad_ratio"], 1)[0]
        rows.append({"initializer": initializer, "activation": activation, "seed": seed, "slope": slope})
    return pd.DataFrame(rows)


def _deepest_details(trials: pd.DataFrame) -> dict[str, str]:
    """Report cells for one initializer and activation at the deepest net: ratio, dead and saturated units."""
    deep = trials[trials["depth"] == trials["depth"].max()]

    def share(metric: str) -> str:
        return f"{deep[metric].mean():.1%}" if metric in deep else "n/a"

    return {
        "ratio at deepest (geometric mean)": f"{10 ** deep['init_log10_grad_ratio'].mean():.2e}",
        "dead units at deepest (init → end)": f"{share('init_dead_fraction')} → {share('final_dead_fraction')}",
        # The callback's saturation: f' < 0.01 per example and unit (ReLU's flat half counts too).
        "flat f' at deepest (init)": share("init_saturated_fraction"),
    }


def verdict(trials: pd.DataFrame) -> Verdict:
    """Checks per initializer: sigmoid's slope below 0 (it vanishes), ReLU's and its variants' above `KEEPS_SLOPE`."""
    slopes = _slopes(trials)
    if slopes.empty or SIGMOID not in set(slopes["activation"]) or "relu" not in set(slopes["activation"]):
        return Verdict([], notes="The grid needs sigmoid and relu at two or more depths.")
    checks, headlines = [], {}
    for initializer, group in slopes.groupby("initializer"):
        runs = trials[trials["initializer"] == initializer]
        for activation in (SIGMOID, *RELU_FAMILY):
            slope = summarize(group.loc[group["activation"] == activation, "slope"])
            if slope.n == 0:
                continue
            details = _deepest_details(runs[runs["activation"] == activation])
            if activation == SIGMOID:
                part = f"{activation} vanishes: log10 ratio per layer"
                check = Check.below(initializer, part, slope, smallest=VANISHES, spec="+.3f", details=details)
                headlines[initializer] = check
            else:
                part = f"{activation} keeps it: log10 ratio per layer"
                check = Check.above(initializer, part, slope, KEEPS_SLOPE, smallest=VANISHES, spec="+.3f", details=details)
            checks.append(check)
    headline = headlines.get("glorot_uniform", next(iter(headlines.values())))
    return Verdict(checks, headline=headline, notes=_unjudged(slopes, headline.condition))


def _unjudged(slopes: pd.DataFrame, initializer: str) -> str:
    """The other activations' mean slopes under ``initializer``: reported, not judged."""
    group = slopes[(slopes["initializer"] == initializer) & ~slopes["activation"].isin((SIGMOID, *RELU_FAMILY))]
    means = group.groupby("activation")["slope"].mean()
    if means.empty:
        return ""
    ordered = [a for a in ACTIVATIONS if a in means.index]
    return f"Not judged, log10 ratio per layer under {initializer}: " + ", ".join(f"{a} {means[a]:+.3f}" for a in ordered) + "."


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Heatmaps of init gradient norms (layer × depth) per activation, the ratio vs depth, learning curves."""
    out = {}
    activations = [a for a in ACTIVATIONS if a in set(trials["activation"])]
    depths = sorted(trials["depth"].unique())
    for initializer in sorted(trials["initializer"].unique()):
        sub = trials[trials["initializer"] == initializer]
        out[f"grad_norm_heatmaps_{initializer}"] = _heatmaps(sub, activations, depths, initializer)
    out["grad_ratio_vs_depth"] = _ratio_plot(trials, activations, depths)
    out["learning_curves_deepest"] = _learning_curves(trials, activations, client)
    return out


def _heatmaps(trials: pd.DataFrame, activations: list[str], depths: list[int], initializer: str) -> plt.Figure:
    columns = min(4, len(activations))
    rows = math.ceil(len(activations) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False, constrained_layout=True)
    deepest = max(depths)
    image = None
    for ax, activation in zip(axes.flat, activations):
        grid = np.full((deepest, len(depths)), np.nan)
        for j, depth in enumerate(depths):
            rows_ = trials[(trials["activation"] == activation) & (trials["depth"] == depth)]
            for layer in range(depth):
                values = rows_[f"init_grad_norm/dense_{layer}"].to_numpy()
                grid[layer, j] = np.log10(np.mean(values)) if len(values) else np.nan
        image = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis", vmin=-12, vmax=1)
        ax.set_title(activation)
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("depth")
        ax.set_ylabel("layer")
    for ax in list(axes.flat)[len(activations):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, label="log10 ‖∂L/∂W‖ at init")
    fig.suptitle(f"Gradient norm per layer at initialization ({initializer})")
    return fig


def _ratio_plot(trials: pd.DataFrame, activations: list[str], depths: list[int]) -> plt.Figure:
    initializers = sorted(trials["initializer"].unique())
    fig, axes = plt.subplots(1, len(initializers), figsize=(5 * len(initializers), 4), squeeze=False, sharey=True, constrained_layout=True)
    span = np.array(depths, dtype=float)
    for ax, initializer in zip(axes[0], initializers):
        sub = trials[trials["initializer"] == initializer]
        for activation in activations:
            means = sub[sub["activation"] == activation].groupby("depth")["init_grad_ratio"].mean()
            style = "-" if activation in (*RELU_FAMILY, SIGMOID) else ":"
            ax.plot(means.index, means.to_numpy(), style, marker="o", label=activation)
        ax.plot(span, 0.25**span, "k--", label="0.25^depth (σ' ≤ 1/4)")
        ax.set_yscale("log")
        ax.set_xlabel("depth (hidden layers)")
        ax.set_title(initializer)
    axes[0][0].set_ylabel("‖∂L/∂W first‖ / ‖∂L/∂W last‖ at init")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle("First/last-layer gradient ratio against depth")
    return fig


def _learning_curves(trials: pd.DataFrame, activations: list[str], client) -> plt.Figure:
    deepest = trials["depth"].max()
    initializer = sorted(trials["initializer"].unique())[0]
    sub = trials[(trials["depth"] == deepest) & (trials["initializer"] == initializer) & (trials["seed"] == trials["seed"].min())]
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for activation in activations:
        run = sub[sub["activation"] == activation]
        if run.empty:
            continue
        plot_history(ax, client, run["run_id"].iloc[0], "val_loss", marker=".", label=activation)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(f"Learning curves at depth {deepest} ({initializer}, first seed)")
    ax.legend(fontsize=7)
    return fig


REFERENCE = Reference(
    citation="Glorot and Bengio (2010), Understanding the difficulty of training deep feedforward neural networks, AISTATS",
    short="Glorot & Bengio 2010",
    where="Table 1 (test error, 5 hidden layers)",
    value='Shapeset-3x2: sigmoid 82.61%, tanh 27.15%, tanh with normalized initialization ("Tanh N") 15.60%',
    regime="Shapeset-3x2 (an online stream), 5 hidden layers of 1,000 units, SGD on minibatches of 10, learning rate chosen on "
    "validation error after 5 million updates",
    here="MNIST-1D, 4,000 examples, depth 2-20 x 100 units, Adam, gradient norms at initialization and for 5 epochs (full: depth 2-50, 20 epochs)",
    checked="read in the paper (the AISTATS PDF: Table 1, Section 2.3)",
)

ABLATION = Ablation(
    name="vanishing_gradients",
    claim=(
        "With sigmoid (σ' ≤ 1/4) the gradients reaching early layers shrink geometrically with depth; "
        "ReLU and its variants keep them (dead ReLUs motivate Leaky ReLU / PReLU)."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    pack_key=pack_all_but("activation", "seed"),
    objective="final_val_loss",
    reference=REFERENCE,
)
