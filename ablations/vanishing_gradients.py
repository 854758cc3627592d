"""Vanishing gradients: sigmoid and tanh starve the first layers, ReLU and its variants do not.

The lecture's claim: backpropagation multiplies one activation derivative per
layer ("o produto das derivadas"), and the sigmoid's derivative is at most
1/4, so the signal that reaches the first layers shrinks geometrically with
depth; sigmoids and tanh are poor hidden activations in deep nets. ReLU's
derivative is 0 or 1, so the product need not vanish (dead ReLUs, whose
derivative is 0 everywhere, motivate Leaky ReLU and PReLU).

Run it:

    ablate run vanishing_gradients --profile quick

What is measured is that signal: on a fixed probe batch, the norm of ∂L/∂z at
every layer's pre-activation z (`fit_stack`'s ``signal_norm/act_i``), at
initialization and after every epoch. The weight gradients' norms are logged
beside it but do not decide: each is the backward signal times the forward
activations, and for ReLU-family activations (positively homogeneous) a
too-small initialization shrinks both together, so the first/last ratio of
weight gradients stays nearly flat while the backpropagated signal dies and
the net does not train (He et al. 2015; Glorot & Bengio's "standard" here).
A seed redraws the initial weights and the minibatch order; the data split
stays fixed: the claim is about gradients, not generalization. The
activations and seeds of one depth and initializer train as one stack.

The verdict, per initializer (the conditions), fixed before any run, reads per
seed the slope over the grid's depths of log10 of the first hidden layer's
signal over the output's at initialization (decades per added layer):

- sigmoid's and tanh's slopes are below `KEEPS_SLOPE` (a decade lost over
  twenty layers): the signal vanishes (the headline: sigmoid under Keras's
  default glorot_uniform when the grid has it);
- the slopes of ReLU and each of its variants in the grid (Leaky ReLU, PReLU,
  ReLU6) are above it: they keep the signal. The two regions are disjoint;
- at the deepest net, sigmoid's final training loss exceeds ReLU's by more
  than `TRAINS_WORSE`, paired by seed: what the vanishing costs in training.

Dead and saturated units and the weight gradients' slope are reported beside
each check, not judged; the report names the initializers under which each
part holds. A signal that underflows float32 to 0 reads as a ratio of 1e-300.

What to expect: sigmoid's signal falls by half a decade or more per layer
under every initializer and a depth-20 sigmoid net stays at chance. ReLU and
its variants keep it under he_normal, the initialization made for them; under
glorot_uniform (made for tanh, half He's variance) they lose a little, about
a factor √2 per layer, and under the too-small "standard" several times more:
there neither ReLU nor sigmoid trains at depth 20, so sigmoid is no worse.
tanh vanishes under "standard" only (Glorot & Bengio's "Tanh N" keeps it).
ReLU pays in dead units instead: a sizeable minority at depth 20, often more
after training, against none for Leaky ReLU and PReLU.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset, sized_for
from ablations.engine.effects import per_seed, seed_differences, select
from ablations.engine.plots import panel_grid, plot_history
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import Check, SmallestEffect, Verdict
from models.names import ACTIVATIONS, INITIALIZERS

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

RELU_FAMILY = ("relu", "leaky_relu", "prelu", "relu6")
SIGMOID = "sigmoid"
SATURATING = ("sigmoid", "tanh")
"""The lecture's "sigmóides e tangente hiperbólica": the activations whose signal it says vanishes."""
KEEPS_SLOPE = -0.05
"""The border between vanishing (below) and keeping (above): log10 of the first/last signal ratio falling by this per
added layer, a decade over the quick profile's deepest net of twenty layers (sigmoid's σ' ≤ 1/4 alone allows 0.6)."""
VANISHES = SmallestEffect(-KEEPS_SLOPE, "a decade over twenty layers, the quick profile's deepest net: less is no vanishing a net would feel")
TRAINS_WORSE = SmallestEffect(0.1, "a tenth of a nat of training loss (chance on 10 classes is 2.30): less is no difference in training")

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
    "smoke": {"activation": ["relu", "sigmoid"], "depth": [2, 5], "width": 32, "epochs": 1, "n_train": 500, "seeds": 1},
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
    return load_dataset(config["data"], n_train=config["n_train"], **sized_for(config["data"], config["n_train"]))


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains one pack (same everything, different activations and seeds) as a stacked model: each member its own seed."""
    from ablations.engine.train import train_pack

    data = _dataset(configs[0])
    pack = train_pack(configs, context.loggers, data.x_train, data.y_train, data.x_val, data.y_val, data.num_classes)
    return [_final_metrics(history, config["depth"]) for history, config in zip(pack.histories, configs)]


def _final_metrics(history: dict[str, list[float]], depth: int) -> dict[str, float]:
    metrics = {f"final_{name}": history[name][-1] for name in ("loss", "accuracy", "val_loss", "val_accuracy")}
    metrics |= {
        # The signal backpropagation carries (‖∂L/∂z‖ at the first hidden pre-activation over the output's),
        # and beside it the weight gradients' first/last ratio, which a too-small ReLU initialization hides.
        "init_signal_ratio": _ratio(history["signal_norm/act_0"][0], history["signal_norm/output"][0]),
        "final_signal_ratio": _ratio(history["signal_norm/act_0"][-1], history["signal_norm/output"][-1]),
        "init_grad_ratio": _ratio(history["grad_norm/dense_0"][0], history["grad_norm/output"][0]),
        "final_grad_ratio": _ratio(history["grad_norm/dense_0"][-1], history["grad_norm/output"][-1]),
        "init_dead_fraction": float(np.mean([history[f"dead_fraction/act_{i}"][0] for i in range(depth)])),
        "final_dead_fraction": float(np.mean([history[f"dead_fraction/act_{i}"][-1] for i in range(depth)])),
        "init_saturated_fraction": float(np.mean([history[f"saturated_fraction/act_{i}"][0] for i in range(depth)])),
    }
    metrics["init_log10_signal_ratio"] = math.log10(max(metrics["init_signal_ratio"], 1e-300))
    metrics["init_log10_grad_ratio"] = math.log10(max(metrics["init_grad_ratio"], 1e-300))
    metrics.update({f"init_grad_norm/dense_{i}": history[f"grad_norm/dense_{i}"][0] for i in range(depth)})
    metrics.update({f"init_signal_norm/act_{i}": history[f"signal_norm/act_{i}"][0] for i in range(depth)})
    return metrics


def _ratio(first: float, last: float) -> float:
    return first / last if last > 0 else float("nan")


def _slopes(trials: pd.DataFrame) -> pd.DataFrame:
    """Per initializer, activation and seed: the slopes of log10(first/last ratio) per added layer, fitted within the seed.

    ``slope``: the backpropagated signal's (‖∂L/∂z‖, first hidden pre-activation over output); ``weight_slope``: the weight gradients'.
    """
    rows = []
    for (initializer, activation, seed), group in trials.groupby(["initializer", "activation", "seed"]):
        if group["depth"].nunique() < 2:
            continue
        slope = np.polyfit(group["depth"], group["init_log10_signal_ratio"], 1)[0]
        weight_slope = np.polyfit(group["depth"], group["init_log10_grad_ratio"], 1)[0]
        rows.append({"initializer": initializer, "activation": activation, "seed": seed, "slope": slope, "weight_slope": weight_slope})
    return pd.DataFrame(rows)


def _deepest_details(trials: pd.DataFrame, slopes: pd.DataFrame) -> dict[str, str]:
    """Report cells for one initializer and activation: the weight gradients' slope; at the deepest net, ratio, dead and saturated units."""
    deep = trials[trials["depth"] == trials["depth"].max()]

    def share(metric: str) -> str:
        return f"{deep[metric].mean():.1%}" if metric in deep else "n/a"

    return {
        # The weight gradients' ratio, which the forward and backward signals shrinking together can keep flat.
        "weight-gradient ratio per layer": f"{slopes['weight_slope'].mean():+.3f}",
        "signal ratio at deepest (geometric mean)": f"{10 ** deep['init_log10_signal_ratio'].mean():.2e}",
        "dead units at deepest (init → end)": f"{share('init_dead_fraction')} → {share('final_dead_fraction')}",
        # The callback's saturation: f' < 0.01 per example and unit (ReLU's flat half counts too).
        "flat f' at deepest (init)": share("init_saturated_fraction"),
    }


def verdict(trials: pd.DataFrame) -> Verdict:
    """Checks per initializer: the signal of sigmoid and tanh vanishes, the ReLU family's keeps; sigmoid trains worse than ReLU."""
    slopes = _slopes(trials)
    measured = set(slopes["activation"][np.isfinite(slopes["slope"])]) if not slopes.empty else set()
    if SIGMOID not in measured or "relu" not in measured:
        return Verdict([], notes="The grid needs sigmoid and relu at two or more depths, with finite signal ratios.")
    checks = []
    for initializer, group in slopes.groupby("initializer"):
        runs = select(trials, {"initializer": initializer})
        checks += _signal_checks(initializer, group, runs)
        trainability = _trainability(runs, initializer)
        if trainability is not None:
            checks.append(trainability)
    # The headline: sigmoid's (else tanh's) vanishing under Keras's default initializer, else under the first one.
    vanishing = [check for check in checks if " vanishes: " in check.part]
    headline = next((check for check in vanishing if check.condition == "glorot_uniform"), vanishing[0])
    return Verdict(checks, headline=headline, notes=" ".join(filter(None, (_where_it_holds(checks), _unjudged(slopes, headline.condition)))))


def _signal_checks(initializer: str, slopes: pd.DataFrame, runs: pd.DataFrame) -> list[Check]:
    """Under one initializer: sigmoid's and tanh's slopes below `KEEPS_SLOPE`, the ReLU family's above it."""
    checks = []
    for activation in (*SATURATING, *RELU_FAMILY):
        own = slopes[slopes["activation"] == activation]
        slope = summarize(own["slope"])
        if slope.n == 0:
            continue
        options = {"smallest": VANISHES, "spec": "+.3f", "details": _deepest_details(runs[runs["activation"] == activation], own)}
        if activation in SATURATING:
            checks.append(Check.below(initializer, f"{activation} vanishes: log10 signal ratio per layer", slope, KEEPS_SLOPE, **options))
        else:
            checks.append(Check.above(initializer, f"{activation} keeps it: log10 signal ratio per layer", slope, KEEPS_SLOPE, **options))
    return checks


def _where_it_holds(checks: list[Check]) -> str:
    """The initializers under which every check held, and those under which some did not."""
    outcomes: dict[str, set[str]] = {}
    for check in checks:
        outcomes.setdefault(check.condition, set()).add(check.outcome)
    whole = [name for name, found in outcomes.items() if found == {"reproduced"}]
    partial = [name for name in outcomes if name not in whole]
    held = f"The whole claim holds under {', '.join(whole)}." if whole else "Under no initializer does every part hold."
    return held + (f" Some part does not under {', '.join(partial)}." if partial else "")


def _trainability(runs: pd.DataFrame, initializer: str) -> Check | None:
    """At the deepest net: sigmoid's final training loss minus ReLU's, paired by seed (what the vanishing costs)."""
    deep = runs[runs["depth"] == runs["depth"].max()]
    losses = per_seed(deep, "activation", "final_loss")
    if SIGMOID not in losses or "relu" not in losses:
        return None
    gap = seed_differences(deep, "activation", SIGMOID, "relu", "final_loss")
    details = {"final training loss sigmoid / relu": f"{losses[SIGMOID].mean():.3f} / {losses['relu'].mean():.3f}"}
    part = f"sigmoid trains worse at depth {int(deep['depth'].iloc[0])}: final training loss, sigmoid − relu"
    return Check.above(initializer, part, summarize(gap), smallest=TRAINS_WORSE, spec="+.3f", details=details)


def _unjudged(slopes: pd.DataFrame, initializer: str) -> str:
    """The other activations' mean signal slopes under ``initializer``: reported, not judged."""
    group = slopes[(slopes["initializer"] == initializer) & ~slopes["activation"].isin((*SATURATING, *RELU_FAMILY))]
    means = group.groupby("activation")["slope"].mean()
    if means.empty:
        return ""
    ordered = [a for a in ACTIVATIONS if a in means.index]
    return f"Not judged, log10 signal ratio per layer under {initializer}: " + ", ".join(f"{a} {means[a]:+.3f}" for a in ordered) + "."


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Heatmaps of the init signal norms (layer × depth) per activation, the signal and weight-gradient ratios vs depth, learning curves."""
    activations = [a for a in ACTIVATIONS if a in set(trials["activation"])]
    depths = sorted(trials["depth"].unique())
    initializers = sorted(trials["initializer"].unique())
    out = {f"signal_norm_heatmaps_{name}": _heatmaps(select(trials, {"initializer": name}), activations, depths, name) for name in initializers}
    out["signal_ratio_vs_depth"] = _ratio_plot(
        trials, activations, depths, "init_signal_ratio", "‖∂L/∂z first‖ / ‖∂L/∂z output‖ at init", "Backpropagated signal: first/output ratio against depth"
    )
    out["weight_grad_ratio_vs_depth"] = _ratio_plot(
        trials, activations, depths, "init_grad_ratio", "‖∂L/∂W first‖ / ‖∂L/∂W last‖ at init", "Weight gradients (not judged): first/last ratio against depth"
    )
    out["learning_curves_deepest"] = _learning_curves(trials, activations, client)
    return out


def _heatmaps(trials: pd.DataFrame, activations: list[str], depths: list[int], initializer: str) -> plt.Figure:
    fig, axes = panel_grid(len(activations), (3.2, 2.8), columns=4)
    deepest = max(depths)
    image = None
    for ax, activation in zip(axes.flat, activations):
        grid = np.full((deepest, len(depths)), np.nan)
        for j, depth in enumerate(depths):
            rows = trials[(trials["activation"] == activation) & (trials["depth"] == depth)]
            for layer in range(depth):
                values = rows[f"init_signal_norm/act_{layer}"].to_numpy()
                # A signal that underflowed float32 is 0: drawn at the colour scale's floor.
                grid[layer, j] = np.log10(max(np.mean(values), 1e-30)) if len(values) else np.nan
        image = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis", vmin=-12, vmax=1)
        ax.set(title=activation, xlabel="depth", ylabel="layer")
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
    if image is not None:
        fig.colorbar(image, ax=axes, label="log10 ‖∂L/∂z‖ at init")
    fig.suptitle(f"Backpropagated signal per layer at initialization ({initializer})")
    return fig


def _ratio_plot(trials: pd.DataFrame, activations: list[str], depths: list[int], column: str, ylabel: str, title: str) -> plt.Figure:
    initializers = sorted(trials["initializer"].unique())
    fig, axes = panel_grid(len(initializers), (5, 4), sharey=True)
    span = np.array(depths, dtype=float)
    for ax, initializer in zip(axes[0], initializers):
        sub = trials[trials["initializer"] == initializer]
        for activation in activations:
            means = sub[sub["activation"] == activation].groupby("depth")[column].mean()
            style = "-" if activation in (*RELU_FAMILY, *SATURATING) else ":"
            ax.plot(means.index, means.to_numpy(), style, marker="o", label=activation)
        ax.plot(span, 0.25**span, "k--", label="0.25^depth (σ' ≤ 1/4)")
        ax.set(yscale="log", xlabel="depth (hidden layers)", title=initializer)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    return fig


def _learning_curves(trials: pd.DataFrame, activations: list[str], client) -> plt.Figure:
    deepest = trials["depth"].max()
    initializer = sorted(trials["initializer"].unique())[0]
    sub = trials[(trials["depth"] == deepest) & (trials["initializer"] == initializer) & (trials["seed"] == trials["seed"].min())]
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for activation in activations:
        run = sub[sub["activation"] == activation]
        if not run.empty:
            plot_history(ax, client, run["run_id"].iloc[0], "val_loss", marker=".", label=activation)
    ax.set(xlabel="epoch", ylabel="validation loss", title=f"Learning curves at depth {deepest} ({initializer}, first seed)")
    ax.legend(fontsize=7)
    return fig


REFERENCE = Reference(
    citation="Glorot and Bengio (2010), Understanding the difficulty of training deep feedforward neural networks, AISTATS",
    short="Glorot & Bengio 2010",
    where="Table 1 (test error, 5 hidden layers)",
    value='Shapeset-3x2: sigmoid 82.61%, tanh 27.15%, tanh with normalized initialization ("Tanh N") 15.60%',
    regime="Shapeset-3x2 (an online stream), 5 hidden layers of 1,000 units, SGD on minibatches of 10, learning rate chosen on "
    "validation error after 5 million updates",
    here="MNIST-1D, 4,000 examples, depth 2-20 x 100 units, Adam, the backpropagated signal at initialization, training loss after 5 "
    "epochs (full: depth 2-50, 20 epochs)",
    checked="read in the paper (the AISTATS PDF: Table 1, Section 2.3)",
)

ABLATION = Ablation(
    name="vanishing_gradients",
    claim=(
        "With sigmoid (σ' ≤ 1/4) or tanh the signal backpropagation carries to early layers shrinks geometrically with depth "
        "and a deep sigmoid net does not train; ReLU and its variants keep it (dead ReLUs motivate Leaky ReLU / PReLU)."
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
