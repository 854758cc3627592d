"""Input normalization: features on one scale train faster and more stably.

The lecture's claim (normalizing the inputs, after Ng): subtract the training
mean and divide by the training standard deviation of every feature, with the
same statistics for every split; on badly scaled features the cost surface is
a long narrow valley, gradient descent zigzags and needs a small learning rate,
while on normalized features it is round and training is faster and more
stable.

Run it:

    ablate run input_normalization --profile quick

Each trial loads MNIST-1D without standardization (its 40 features are then
of unit scale already) and multiplies feature j by 10^u_j, the u_j evenly
spread over [-decades/2, decades/2] in a fixed random order: ``decades=4``
puts the features between 0.01x and 100x. The normalized arm starts the model
with a `keras.layers.Normalization` adapted on the training split; the raw arm
feeds the features as they are. The same MLP is trained with plain SGD (the
gradient descent of the lecture's contour plots) at every learning rate of a
grid, because a fixed learning rate favours one arm or the other: large
features act as a larger step. A seed redraws the initial weights and the
minibatch order; the split and the scaling stay fixed: the claim is about how
fast and how stably the same problem trains. Logged per trial: epochs until
the training loss (as `fit` reports it) first reaches ``target_loss``, the
final losses, whether the loss diverged, and the share of epochs it rose.

The verdict (fixed before any run) makes two checks per badly scaled
condition (decades > 0), each arm at its own best learning rate (fewest epochs
to the target; never reaching it counts as ``epochs + 1``), paired by seed:

1. faster: raw minus normalized epochs to the target, with a 95% interval
   above 0 (a lower bound when the raw arm never got there at some seed);
2. more stably: how many learning rates of the grid reach the target without
   diverging, normalized minus raw, with an interval above 0 (a median's: the
   counts are discrete and bounded by the grid).

A sanity check per arm asks whether the grid brackets its best learning
rates: a best rate at the grid's smallest or largest one fails the run loudly
(widen the grid); an arm that never reaches the target and a grid of fewer
than three rates are noted, not checked. Each row also reads the raw arm's
regime at its best rate. The ``decades=0`` control is reported, not judged.

What to expect: on 4 decades of scale the raw features diverge or stall at
the larger learning rates and reach the target late or not at all at the
smaller ones, so the normalized arm, best at a larger rate, gets there in a
fraction of the epochs (a third or less) and at a few more learning rates.
Even at its best rate the raw arm overfits (training error far from 0, but
well below the held-out error), as an MLP on MNIST-1D's 1000 training
examples does whatever the scaling. At 0 decades both arms behave alike,
within a few epochs of each other.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.effects import beside_control, interval, select
from ablations.engine.plots import PanelLayout, mean_std_panels, metric_history, panel_grid
from ablations.engine.protocol import score_test_split
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.sweeps import best_of_sweep, bracket_check
from ablations.engine.verdict import REGIME, Check, SmallestEffect, Verdict, regime

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

SCALE_SEED = 0
"""Fixed, so that every trial scales the same feature by the same factor."""
EPOCHS_SAVED = SmallestEffect(3.0, "three epochs, a tenth of the default budget of 30: fewer saved is no speed-up a user would notice")
ONE_RATE = SmallestEffect(1.0, "one more learning rate of the grid: the resolution of the count")
ARMS = {False: "raw", True: "normalized"}
"""The arms' names, by their ``normalize`` value."""
BEST = {"best_learning_rate": "learning_rate", "best_epochs": "censored_epochs", "best_reached": "reached", "best_final_loss": "final_train_loss",
        "best_val_loss": "final_val_loss", "best_train_error": "final_train_error", "best_val_error": "final_val_error"}
"""The columns `best_learning_rates` keeps of each arm's best trial, by their new names."""

PARAMS = {
    "data": params.data("mnist1d", choices=("mnist1d", "digits")),
    "normalize": Param(True, "start the model with a Normalization layer adapted on the training split"),
    "decades": Param(4.0, "feature scales span 10^(-decades/2) to 10^(decades/2)", low=0.0, high=12.0),
    "optimizer": Param("sgd", "optimizer", choices=("sgd", "adam", "rmsprop")),
    "learning_rate": params.learning_rate(0.03, high=10.0, help="learning rate"),
    "n_train": params.n_train(1000),
    "depth": params.depth(2),
    "width": params.width(64),
    "epochs": params.epochs(30),
    "batch_size": params.batch_size(50),
    "target_loss": Param(1.0, "training loss that counts as trained", low=0.0, high=100.0),
}

PROFILES = {
    "smoke": {"data": "digits", "normalize": [False, True], "learning_rate": [0.01, 0.1], "n_train": 200, "width": 16, "epochs": 3, "target_loss": 2.0, "seeds": 1},
    # Half decades around both arms' best rates (normalized about 0.3, raw about 0.01): the grid brackets each. 6 seeds: the
    # fewest whose median interval of the usable-rate count can decide at 95% (the pilot asks 7).
    "quick": {"normalize": [False, True], "decades": [0.0, 4.0], "learning_rate": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "seeds": 6},
    # 10 seeds: the pilot asks 7 (README: How many seeds); never fewer than 10.
    "full": {"normalize": [False, True], "decades": [0.0, 2.0, 4.0, 6.0], "optimizer": ["sgd", "adam"],
             "learning_rate": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "epochs": 100, "seeds": 10},
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


def _features(config: dict):
    """The badly scaled split, raw and normalized: (data, {normalize: (x_train, x_val, x_test)})."""
    import keras

    data, x_train, x_val, x_test = badly_scaled(config)
    normalization = keras.layers.Normalization(name="normalization")
    # Statistics from the training split only, as the lecture asks.
    normalization.adapt(x_train)
    normalized = tuple(keras.ops.convert_to_numpy(normalization(x)) for x in (x_train, x_val, x_test))
    return data, {False: (x_train, x_val, x_test), True: normalized}


def _train(configs: list[dict], loggers=None):
    """Trains the configurations (arms, learning rates and seeds of one scaling) as members of one stack.

    Each member is the net `fit_trial` would train alone (`fit_members`): its seed's initial weights and batch
    order, its arm's features (`_features`), its learning rate; a member that diverges leaves the pack.
    """
    from ablations.engine.train.members import MemberOptimizer, fit_members, pack_options, seeded_stack

    data, features = _features(configs[0])
    arms = [features[config["normalize"]] for config in configs]
    stack = seeded_stack(configs, data.input_shape[0], data.num_classes)
    splits = {"train": (np.stack([x for x, _, _ in arms]), data.y_train), "val": (np.stack([x for _, x, _ in arms]), data.y_val)}
    optimizers = [MemberOptimizer(config["optimizer"], config["learning_rate"]) for config in configs]
    fits = fit_members(stack, splits, **pack_options(configs), optimizers=optimizers, loggers=loggers)
    return stack, fits, (arms, data.y_test)


def loss_rise_fraction(losses) -> float:
    """Share of epochs (after the first) whose loss is above the previous epoch's; a non-finite loss counts as a rise."""
    values = np.asarray(losses, dtype=float)
    if len(values) < 2:
        return 0.0
    return float(np.mean(~np.isfinite(values[1:]) | (values[1:] > values[:-1])))


def _speed_metrics(fit, target_loss: float) -> dict[str, float]:
    """`fit_trial`'s final metrics plus epochs to the target loss, the share of epochs the loss rose, and whether it got there."""
    from ablations.engine.train import epochs_to_reach

    losses = fit.history["loss"]
    metrics = dict(fit.final, epochs_to_target=epochs_to_reach(losses, target_loss), loss_rise_fraction=loss_rise_fraction(losses[1:]))
    return metrics | {"reached_target": float(math.isfinite(metrics["epochs_to_target"]))}


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains raw and normalized arms at every learning rate; measures speed and stability."""
    _, fits, _ = _train(configs, context.loggers)
    return [_speed_metrics(fit, config["target_loss"]) for fit, config in zip(fits.trials, configs)]


def _censored_epochs(trials: pd.DataFrame) -> pd.Series:
    """Epochs to the target, a run that never reached it counting as ``epochs + 1``."""
    return trials["epochs_to_target"].fillna(trials["epochs"] + 1)


def best_learning_rates(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (data, optimizer, decades, normalize, seed): the learning rate with the fewest epochs to the target.

    A run that never reaches the target counts as ``epochs + 1``; ties go to the
    lower final training loss (NaN last). Also counts the learning rates that
    reach the target without diverging (``usable_rates``) and those that diverge.
    """
    loss, reached = trials["final_train_loss"], trials["reached_target"] > 0
    frame = trials.assign(censored_epochs=_censored_epochs(trials), tie_break=loss.where(np.isfinite(loss), np.inf), reached=reached,
                          usable=reached & (trials["diverged"] == 0), diverging=trials["diverged"] > 0)
    sweeps = [k for k in ("data", "optimizer", "decades", "normalize", "seed") if k in frame]
    counts = {"usable_rates": "usable", "diverged_rates": "diverging"}
    return best_of_sweep(frame, sweeps, order=["censored_epochs", "tie_break"], keep=BEST, counts=counts, total="rates")


def _pairs(best: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Each seed's raw arm beside its normalized arm, both at their best learning rates, with the paired effects."""
    raw, norm = (select(best, {"normalize": normalize}).drop(columns="normalize") for normalize in ARMS)
    pairs = beside_control(raw, norm, [*conditions, "seed"], suffixes=("_raw", "_norm"))
    pairs["epochs_saved"] = pairs["best_epochs_raw"] - pairs["best_epochs_norm"]
    pairs["extra_usable"] = pairs["usable_rates_norm"] - pairs["usable_rates_raw"]
    return pairs


def _mean(group: pd.DataFrame, column: str, spec: str = ".1f") -> str:
    return f"{group[column].mean():{spec}}"


def _details(group: pd.DataFrame) -> dict[str, str]:
    """Both arms at their best learning rates, means over seeds; the regime is the raw arm's."""
    return {
        REGIME: regime(float(group["best_train_error_raw"].mean()), float(group["best_val_error_raw"].mean())),
        "best lr raw / normalized": " / ".join(", ".join(f"{v:g}" for v in group[f"best_learning_rate_{arm}"]) for arm in ("raw", "norm")),
        "epochs to target raw / normalized": f"{_mean(group, 'best_epochs_raw')} / {_mean(group, 'best_epochs_norm')}",
        "final loss raw / normalized": f"{_mean(group, 'best_final_loss_raw', '.3f')} / {_mean(group, 'best_final_loss_norm', '.3f')}",
        "usable lrs raw / normalized": f"{_mean(group, 'usable_rates_raw')} / {_mean(group, 'usable_rates_norm')} of {int(group['rates_raw'].iloc[0])}",
    }


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per badly scaled condition, each arm at its best learning rate: epochs to the target; usable learning rates."""
    best = best_learning_rates(trials)
    if best.empty or best["normalize"].nunique() < 2:
        return Verdict([], notes="The grid needs normalize = False and True.")
    conditions = [k for k in ("data", "optimizer", "decades") if k in best]
    target, epochs = trials["target_loss"].iloc[0], int(trials["epochs"].max())
    checks, controls = [], []
    for key, group in _pairs(best, conditions).groupby(conditions):
        condition = dict(zip(conditions, key))
        label = ", ".join(f"{k}={v}" for k, v in condition.items())
        saved = summarize(group["epochs_saved"])
        if condition["decades"] == 0:
            controls.append(f"control {label}: normalizing reaches training loss {target:g} {saved.mean:+.1f} epochs sooner (95% CI "
                            f"{interval(saved, '+.1f')}), at {_mean(group, 'usable_rates_norm')} vs {_mean(group, 'usable_rates_raw')} usable learning rates")
            continue
        details = _details(group)
        # A raw arm that never reaches the target counts as epochs + 1: the epochs saved are then a lower bound.
        censored = not group["best_reached_raw"].all() and group["best_reached_norm"].all()
        part = f"epochs to training loss {target:g} saved (raw − normalized, of {epochs})"
        checks.append(Check.above(label, part, saved, smallest=EPOCHS_SAVED, spec="+.1f", lower_bound=censored, details=details))
        # A difference of counts of the grid's rates: discrete and bounded, so its interval is a median's.
        rates = float(group["rates_raw"].iloc[0])
        usable = summarize(group["extra_usable"], kind="median", bounds=(-rates, rates))
        checks.append(Check.above(label, "learning rates usable, normalized − raw", usable, smallest=ONE_RATE, spec="+.2f", details=details))
        bracket_checks, bracket_notes = _bracketed(select(best, condition), label, sorted(trials["learning_rate"].unique()))
        checks += bracket_checks
        controls += bracket_notes
    notes = "; ".join(controls) + "." if controls else ""
    if not checks:
        return Verdict([], notes=f"No badly scaled condition (decades > 0) in the grid. {notes}".strip())
    return Verdict(checks, notes=notes)


def _bracketed(best: pd.DataFrame, label: str, rates: list[float]) -> tuple[list[Check], list[str]]:
    """Per arm: whether the grid brackets the best learning rates of the seeds that reached the target (`bracket_check`)."""
    if len(rates) < 3:
        return [], [f"{label}: a grid of {len(rates)} learning rates cannot bracket a best rate (not checked)"]
    checks, notes = [], []
    for normalize, arm in ARMS.items():
        reached = best[(best["normalize"] == normalize) & best["best_reached"]]["best_learning_rate"]
        if reached.empty:
            notes.append(f"{label}: the {arm} arm never reached the target, so it has no best rate to bracket")
        else:
            checks.append(bracket_check(label, f"{arm} arm's best learning rate", reached, rates, shown="best rates (seeds that reached the target)"))
    return checks, notes


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Epochs to target and final loss against learning rate; learning curves at each arm's best rate."""
    return {"speed_vs_learning_rate": _speed_plot(trials), "learning_curves_best_rate": _curves(trials, client)}


def _speed_plot(trials: pd.DataFrame) -> plt.Figure:
    frame = trials.assign(censored_epochs=_censored_epochs(trials), plotted_loss=trials["final_loss"].where(np.isfinite(trials["final_loss"])))
    epochs = int(trials["epochs"].max())
    metrics = [("censored_epochs", f"epochs to training loss {trials['target_loss'].iloc[0]:g} ({epochs + 1} = never)"), ("plotted_loss", "final training loss")]
    fig, axes = mean_std_panels(
        frame, PanelLayout("decades", "normalize", "learning_rate", "learning rate", log_x=True), metrics,
        title=lambda decades: f"feature scales over {decades:g} decades", label=ARMS.get,
        suptitle="Raw vs normalized inputs across learning rates (mean ± std over seeds)",
    )
    # A diverged run's loss is not plotted: a red x at the top of the panel marks its learning rate.
    top_loss = np.nanmax(frame["plotted_loss"])
    for (top, bottom), decades in zip(axes.T, sorted(frame["decades"].unique())):
        top.axhline(epochs + 1, color="gray", ls=":", lw=1)
        bottom.set_yscale("log")
        for normalize, group in frame[(frame["decades"] == decades) & (frame["diverged"] > 0)].groupby("normalize"):
            bottom.plot(group["learning_rate"], np.full(len(group), top_loss), "rx", label=f"{ARMS[normalize]}: diverged")
    return fig


def _curves(trials: pd.DataFrame, client) -> plt.Figure:
    best, seed = best_learning_rates(trials), trials["seed"].min()
    decades = sorted(trials["decades"].unique())
    fig, axes = panel_grid(len(decades), (5.5, 4), sharey=True)
    for ax, decade in zip(axes[0], decades):
        for _, row in select(best, {"decades": decade, "seed": seed}).iterrows():
            settings = {"normalize": row["normalize"], "learning_rate": row["best_learning_rate"], "optimizer": row.get("optimizer", trials["optimizer"].iloc[0])}
            match = select(trials, {"decades": decade, "seed": seed, **settings})
            if match.empty:
                continue
            steps, losses = metric_history(client, match["run_id"].iloc[0], "loss", finite_only=True)
            if steps:
                ax.plot(steps, losses, marker=".", label=f"{ARMS[row['normalize']]}, lr {row['best_learning_rate']:g}")
        ax.axhline(trials["target_loss"].iloc[0], color="black", ls="--", lw=1, label="target")
        ax.set(title=f"{decade:g} decades: each arm at its best learning rate", xlabel="epoch", yscale="log")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("training loss")
    fig.suptitle(f"Training loss curves (seed {seed})")
    return fig


def test(config: dict, guard) -> dict[str, float]:
    """Retrains the arm and learning rate selected on validation for one scaling; scores its (scaled) test split once."""
    from ablations.engine.train.members import scoring_model

    stack, _, (arms, y_test) = _train([config])
    return score_test_split(guard, scoring_model(stack, 0), arms[0][2], y_test)


REFERENCE = Reference(
    citation="LeCun, Bottou, Orr and Mueller (1998), Efficient BackProp, in Neural Networks: Tricks of the Trade, LNCS 1524",
    short="LeCun et al. 1998",
    where="Section 4.3, Normalizing the Inputs",
    value='"Convergence is usually faster if the average of each input variable over the training set is close to zero"; '
    "it gives no measured value: the argument is analytic",
    regime="an argument for gradient descent on any network, no experiment",
    here="MNIST-1D, 1,000 examples, 2x64, features spread over 4 decades, plain SGD at learning rates 0.01-1, 30 epochs",
    checked="read in the paper",
)

ABLATION = Ablation(
    name="input_normalization",
    claim="Normalized inputs (training mean and standard deviation per feature) train faster and more stably than badly scaled ones.",
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # A scaling's arms, learning rates and seeds train as members of one stack.
    pack_key=pack_all_but("learning_rate", "normalize", "seed"),
    # A diverged run has a NaN loss but still a (poor) error, so it stays in the study.
    objective="final_val_error",
    test=test,
    # Each scaling is its own problem: normalization and learning rate are selected on validation, and tested once, for each.
    select_within=("data", "decades"),
    reference=REFERENCE,
)
