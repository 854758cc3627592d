"""Input normalization: features on one scale train faster and more stably.

The lecture's claim (normalizing the inputs, after Ng): subtract the training
mean and divide by the training standard deviation of every feature, with the
same statistics for every split; on badly scaled features the cost surface is
a long narrow valley, gradient descent zigzags and needs a small learning rate,
while on normalized features it is round and training is faster and more
stable.

Run it:

    ablate run input_normalization --profile quick

Each trial loads MNIST-1D without standardization (``standardize=False``; its
40 features are then of unit scale already) and multiplies feature j by
10^u_j, with the u_j evenly spread over [-decades/2, decades/2] in a fixed
random order: ``decades=4`` puts the features between 0.01x and 100x. The
normalized arm starts the model with a `keras.layers.Normalization` adapted on
the training split; the raw arm feeds the features as they are. The same MLP
is trained with plain SGD (the gradient descent of the lecture's contour
plots) at every learning rate of a grid, because a fixed learning rate favours
one arm or the other: large features act as a larger step.

Logged per trial: epochs until the training loss (running mean over the
epoch, as `fit` reports it) first reaches ``target_loss``, the final training
and held-out (validation) loss, whether the loss diverged (NaN or inf), and the
share of epochs whose training loss rose above the previous epoch's.

The verdict (decided before any run), per badly scaled condition (decades > 0)
and seed, compares each arm at its own best learning rate (fewest epochs to
the target; a run that never reaches it counts as ``epochs + 1``):

1. faster: raw minus normalized epochs to the target, with a 95% interval
   above 0;
2. more stably: how many learning rates of the grid reach the target without
   diverging, normalized minus raw, with a 95% interval above 0.

The ``decades=0`` condition is the control, reported and not judged.

What to expect (SGD, learning rates 0.01, 0.1, 1): on 4 decades of scale the
raw features reach training loss 1.0 only at 0.01, and in 30 epochs only for
one seed of three; at 0.1 and 1 they diverge or stall at chance. The normalized
arm reaches it at 0.1 and 1 (in about 13 epochs at 1): at least 17 epochs
sooner, at 2 learning rates against 0.3: reproduced. At 0 decades (the
control) both arms behave alike (best rate 1 for both, 12 vs 13 epochs).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine.data import load_dataset
from ablations.engine.spec import Ablation, Param, TrialContext, Verdict, pack_all_but
from ablations.engine.stats import summarize

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

SCALE_SEED = 0
"""Fixed, so that every trial scales the same feature by the same factor."""

PARAMS = {
    "data": Param("mnist1d", "data set (flat features)", choices=("mnist1d", "digits")),
    "normalize": Param(True, "start the model with a Normalization layer adapted on the training split"),
    "decades": Param(4.0, "feature scales span 10^(-decades/2) to 10^(decades/2)", low=0.0, high=12.0),
    "optimizer": Param("sgd", "optimizer", choices=("sgd", "adam", "rmsprop")),
    "learning_rate": Param(0.03, "learning rate", low=1e-6, high=10.0),
    "n_train": Param(1000, "training examples", low=50, high=1_000_000),
    "depth": Param(2, "hidden layers", low=1, high=50),
    "width": Param(64, "units per hidden layer", low=1, high=8192),
    "epochs": Param(30, "training epochs", low=1, high=10_000),
    "batch_size": Param(50, "examples per step", low=1, high=65536),
    "target_loss": Param(1.0, "training loss that counts as trained", low=0.0, high=100.0),
}

PROFILES = {
    "smoke": {"data": "digits", "normalize": [False, True], "learning_rate": [0.01, 0.1], "n_train": 200, "width": 16, "epochs": 3, "target_loss": 2.0, "seeds": 1},
    "quick": {
        "normalize": [False, True],
        "decades": [0.0, 4.0],
        "learning_rate": [0.01, 0.1, 1.0],
        "seeds": 3,
    },
    "full": {
        "normalize": [False, True],
        "decades": [0.0, 2.0, 4.0, 6.0],
        "optimizer": ["sgd", "adam"],
        "learning_rate": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
        "epochs": 100,
        "seeds": 5,
    },
}


def feature_scales(num_features: int, decades: float, seed: int = SCALE_SEED) -> np.ndarray:
    """Factors 10^u_j, u_j evenly spaced over [-decades/2, decades/2], in a fixed random order."""
    exponents = np.linspace(-decades / 2, decades / 2, num_features)
    return (10.0 ** exponents[np.random.default_rng(seed).permutation(num_features)]).astype(np.float32)


def badly_scaled(config: dict):
    """The data set without standardization, each feature multiplied by its factor; returns (data, x_train, x_val, x_test)."""
    data = load_dataset(config["data"], n_train=config["n_train"], standardize=False)
    scales = feature_scales(data.x_train.shape[1], config["decades"])
    return data, data.x_train * scales, data.x_val * scales, data.x_test * scales


def _train(config: dict, logger=None):
    import keras

    from ablations.engine.keras_trials import fit_trial
    from models import build_mlp

    data, x_train, x_val, x_test = badly_scaled(config)
    keras.utils.set_random_seed(config["seed"])
    mlp = build_mlp(
        data.input_shape,
        data.num_classes,
        depth=config["depth"],
        width=config["width"],
        activation="relu",
        kernel_initializer="he_normal",
        seed=config["seed"],
    )
    inputs = keras.Input(data.input_shape, name="inputs")
    features = inputs
    if config["normalize"]:
        normalization = keras.layers.Normalization(name="normalization")
        # Statistics from the training split only, as the lecture asks.
        normalization.adapt(x_train)
        features = normalization(features)
    model = keras.Model(inputs, mlp(features), name="normalized_mlp" if config["normalize"] else "raw_mlp")
    fit = fit_trial(
        model,
        x_train,
        data.y_train,
        x_val,
        data.y_val,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        optimizer=config["optimizer"],
        learning_rate=config["learning_rate"],
        seed=config["seed"],
        logger=logger,
    )
    return model, fit, (x_test, data.y_test)


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains one arm (raw or normalized) at one learning rate; measures speed and stability."""
    from ablations.engine.keras_trials import epochs_to_reach

    results = []
    for config, logger in zip(configs, context.loggers):
        _, fit, _ = _train(config, logger)
        metrics = dict(fit.final)
        losses = fit.history["loss"][1:]
        metrics["epochs_to_target"] = epochs_to_reach(fit.history["loss"], config["target_loss"])
        metrics["loss_rise_fraction"] = loss_rise_fraction(losses)
        metrics["reached_target"] = float(math.isfinite(metrics["epochs_to_target"]))
        results.append(metrics)
    return results


def loss_rise_fraction(losses) -> float:
    """Share of epochs (after the first) whose loss is above the previous epoch's; a non-finite loss counts as a rise."""
    values = np.asarray(losses, dtype=float)
    if len(values) < 2:
        return 0.0
    previous, current = values[:-1], values[1:]
    rises = ~np.isfinite(current) | (current > previous)
    return float(np.mean(rises))


def best_learning_rates(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (optimizer, decades, normalize, seed): the learning rate with the fewest epochs to the target.

    A run that never reaches the target counts as ``epochs + 1``; ties go to the
    lower final training loss (NaN last). Also counts the learning rates that
    reach the target without diverging (``usable_rates``).
    """
    frame = trials.copy()
    frame["censored_epochs"] = frame["epochs_to_target"].fillna(frame["epochs"] + 1)
    frame["usable"] = (frame["reached_target"] > 0) & (frame["diverged"] == 0)
    frame["tie_break"] = frame["final_train_loss"].where(np.isfinite(frame["final_train_loss"]), np.inf)
    keys = [k for k in ("data", "optimizer", "decades", "normalize", "seed") if k in frame]
    rows = []
    for key, group in frame.groupby(keys):
        best = group.sort_values(["censored_epochs", "tie_break", "learning_rate"]).iloc[0]
        rows.append(
            {
                **dict(zip(keys, key)),
                "best_learning_rate": best["learning_rate"],
                "best_epochs": best["censored_epochs"],
                "best_reached": bool(best["reached_target"] > 0),
                "best_final_loss": best["final_train_loss"],
                "best_val_loss": best["final_val_loss"],
                "usable_rates": int(group["usable"].sum()),
                "diverged_rates": int((group["diverged"] > 0).sum()),
                "rates": len(group),
            }
        )
    return pd.DataFrame(rows)


def effect_status(summary) -> str:
    """reproduced: 95% interval above 0 (one value: above 0); not reproduced: mean <= 0; else inconclusive."""
    if summary.n == 0:
        return "inconclusive"
    if summary.mean <= 0:
        return "not reproduced"
    return "reproduced" if summary.n == 1 or summary.low > 0 else "inconclusive"


def verdict(trials: pd.DataFrame) -> Verdict:
    """Each arm at its best learning rate: epochs to the target; usable learning rates."""
    best = best_learning_rates(trials)
    if best.empty or best["normalize"].nunique() < 2:
        return Verdict("inconclusive", "The grid needs normalize = False and True.", "epochs saved by normalizing", math.nan, math.nan)
    conditions = [k for k in ("data", "optimizer", "decades") if k in best]
    raw = best[~best["normalize"]].drop(columns="normalize")
    norm = best[best["normalize"]].drop(columns="normalize")
    pairs = raw.merge(norm, on=[*conditions, "seed"], suffixes=("_raw", "_norm"))
    pairs["epochs_saved"] = pairs["best_epochs_raw"] - pairs["best_epochs_norm"]
    pairs["extra_usable"] = pairs["usable_rates_norm"] - pairs["usable_rates_raw"]
    pairs["loss_reduction"] = pairs["best_final_loss_raw"] - pairs["best_final_loss_norm"]

    table, parts, statuses, judged = [], [], [], []
    epochs = int(trials["epochs"].max())
    for key, group in pairs.groupby(conditions):
        key = key if isinstance(key, tuple) else (key,)
        condition = dict(zip(conditions, key))
        saved, usable, loss = summarize(group["epochs_saved"]), summarize(group["extra_usable"]), summarize(group["loss_reduction"])
        faster, stabler = effect_status(saved), effect_status(usable)
        control = condition["decades"] == 0
        never = "" if group["best_reached_raw"].all() else " (raw never reaches it at some seed: a lower bound)"
        table.append(
            {
                **condition,
                "role": "control" if control else "judged",
                "best lr raw": ", ".join(f"{v:g}" for v in group["best_learning_rate_raw"]),
                "best lr normalized": ", ".join(f"{v:g}" for v in group["best_learning_rate_norm"]),
                "epochs to target raw": f"{summarize(group['best_epochs_raw']).mean:.1f}",
                "epochs to target normalized": f"{summarize(group['best_epochs_norm']).mean:.1f}",
                "epochs saved": f"{saved.mean:+.1f} (CI {saved.low:+.1f} to {saved.high:+.1f})",
                "final loss raw": f"{summarize(group['best_final_loss_raw']).mean:.3f}",
                "final loss normalized": f"{summarize(group['best_final_loss_norm']).mean:.3f}",
                "final loss reduction": f"{loss.mean:+.3f} (CI {loss.low:+.3f} to {loss.high:+.3f})",
                "usable lrs raw / normalized": f"{summarize(group['usable_rates_raw']).mean:.1f} / {summarize(group['usable_rates_norm']).mean:.1f} of {int(group['rates_raw'].iloc[0])}",
                "diverged lrs raw / normalized": f"{summarize(group['diverged_rates_raw']).mean:.1f} / {summarize(group['diverged_rates_norm']).mean:.1f}",
            }
        )
        label = ", ".join(f"{k}={v}" for k, v in condition.items())
        text = (
            f"{label}: at its best learning rate the normalized arm reaches training loss {trials['target_loss'].iloc[0]:g} "
            f"{saved.mean:+.1f} epochs sooner (95% CI {saved.low:+.1f} to {saved.high:+.1f}){never}, final training loss "
            f"{summarize(group['best_final_loss_norm']).mean:.3f} vs {summarize(group['best_final_loss_raw']).mean:.3f} raw; "
            f"{summarize(group['usable_rates_norm']).mean:.1f} vs {summarize(group['usable_rates_raw']).mean:.1f} of "
            f"{int(group['rates_raw'].iloc[0])} learning rates reach it without diverging"
        )
        if control:
            parts.append(f"control {text}")
            continue
        parts.append(f"{text} (faster: {faster}; more stably: {stabler})")
        statuses.extend([faster, stabler])
        judged.append(group)
    if not judged:
        return Verdict("inconclusive", "No badly scaled condition (decades > 0) in the grid. " + "; ".join(parts) + ".", "epochs saved by normalizing", math.nan, math.nan, table)
    if "not reproduced" in statuses:
        outcome = "not reproduced"
    elif all(s == "reproduced" for s in statuses):
        outcome = "reproduced"
    else:
        outcome = "inconclusive"
    headline = summarize(pd.concat(judged)["epochs_saved"])
    summary = f"Epochs each arm needs at its best learning rate (of {epochs}): " + "; ".join(parts) + "."
    return Verdict(outcome, summary, "epochs to target saved by normalizing (badly scaled, best lr per arm)", headline.mean, headline.std, table)


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Epochs to target and final loss against learning rate; learning curves at each arm's best rate."""
    return {"speed_vs_learning_rate": _speed_plot(trials), "learning_curves_best_rate": _curves(trials, client)}


def _speed_plot(trials: pd.DataFrame) -> plt.Figure:
    decades = sorted(trials["decades"].unique())
    fig, axes = plt.subplots(2, len(decades), figsize=(5 * len(decades), 7), squeeze=False, sharex=True, constrained_layout=True)
    frame = trials.copy()
    frame["censored_epochs"] = frame["epochs_to_target"].fillna(frame["epochs"] + 1)
    frame["plotted_loss"] = frame["final_loss"].where(np.isfinite(frame["final_loss"]), np.nan)
    epochs = int(trials["epochs"].max())
    for column, decade in enumerate(decades):
        for normalize, group in frame[frame["decades"] == decade].groupby("normalize"):
            label = "normalized" if normalize else "raw"
            for row, metric in enumerate(("censored_epochs", "plotted_loss")):
                stats = group.groupby("learning_rate")[metric].agg(["mean", "std"])
                axes[row][column].errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3, label=label)
            diverged = group[group["diverged"] > 0]
            if len(diverged):
                axes[1][column].plot(diverged["learning_rate"], np.full(len(diverged), np.nanmax(frame["plotted_loss"])), "rx", label=f"{label}: diverged")
        axes[0][column].axhline(epochs + 1, color="gray", ls=":", lw=1)
        axes[0][column].set_title(f"feature scales over {decade:g} decades")
        axes[0][column].set_ylabel(f"epochs to training loss {trials['target_loss'].iloc[0]:g} ({epochs + 1} = never)")
        axes[1][column].set_ylabel("final training loss")
        axes[1][column].set_yscale("log")
        axes[1][column].set_xlabel("learning rate")
        for ax in axes[:, column]:
            ax.set_xscale("log")
        axes[0][column].legend(fontsize=8)
    fig.suptitle("Raw vs normalized inputs across learning rates (mean ± std over seeds)")
    return fig


def _curves(trials: pd.DataFrame, client) -> plt.Figure:
    best = best_learning_rates(trials)
    seed = trials["seed"].min()
    decades = sorted(trials["decades"].unique())
    fig, axes = plt.subplots(1, len(decades), figsize=(5.5 * len(decades), 4), squeeze=False, sharey=True, constrained_layout=True)
    for ax, decade in zip(axes[0], decades):
        for _, row in best[(best["decades"] == decade) & (best["seed"] == seed)].iterrows():
            match = trials[
                (trials["decades"] == decade)
                & (trials["normalize"] == row["normalize"])
                & (trials["seed"] == seed)
                & np.isclose(trials["learning_rate"], row["best_learning_rate"])
                & (trials["optimizer"] == row.get("optimizer", trials["optimizer"].iloc[0]))
            ]
            if match.empty:
                continue
            points = sorted(client.get_metric_history(match["run_id"].iloc[0], "loss"), key=lambda m: m.step)
            points = [(m.step, m.value) for m in points if math.isfinite(m.value)]
            name = "normalized" if row["normalize"] else "raw"
            if points:
                ax.plot(*zip(*points), marker=".", label=f"{name}, lr {row['best_learning_rate']:g}")
        ax.axhline(trials["target_loss"].iloc[0], color="black", ls="--", lw=1, label="target")
        ax.set_title(f"{decade:g} decades: each arm at its best learning rate")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training loss")
    fig.suptitle(f"Training loss curves (seed {seed})")
    return fig


def test(config: dict, guard) -> dict[str, float]:
    """Retrains the configuration selected on validation and scores the test split once."""
    from ablations.engine.keras_trials import score_split

    model, _, (x_test, y_test) = _train(config)
    scores = guard.evaluate(lambda: score_split(model, x_test, y_test))
    return {f"test_{name}": value for name, value in scores.items()}


ABLATION = Ablation(
    name="input_normalization",
    claim="Normalized inputs (training mean and standard deviation per feature) train faster and more stably than badly scaled ones.",
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # One call of `run` trains a pack's trials one after another: the runner clears the
    # Keras session (about 0.7 s) once per pack instead of once per trial.
    pack_key=pack_all_but("learning_rate", "normalize"),
    # A diverged run has a NaN loss but still a (poor) error, so it stays in the study.
    objective="final_val_error",
    test=test,
    # Each scaling of the features is its own problem: normalization and
    # learning rate are selected on validation, and tested once, for each.
    select_within=("data", "decades"),
)
