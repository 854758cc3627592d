"""L1 and L2 penalties: λ trades variance for bias, and L1 zeroes weights.

The lecture's claim: minimizing J(θ, b) + λ||θ||₂² (ridge) or J(θ, b) + λ||θ||₁ (LASSO), θ the kernels only
(biases unpenalized), keeps the weights from growing: λ = 0 may overfit, λ >> 0 drives the net into high bias,
and a λ in between, chosen by the validation cost on the lecture's grid 0, 0.01, 0.02, 0.04, ..., 5.12, 10,
generalizes best. L1 gives sparse weights.

Run it: ``ablate run l1_l2_penalty --profile quick``.

Where the claim speaks: an over-parameterized MLP (2 × 64 ReLU units, about 9,000 weights) trained by
full-batch Adam on 150 digits, λ as the lecture means it (`keras_penalty`), scored by k-fold CV of those 150;
each trial's net trained on all of them is scored on the validation split, which the selection never sees.
The verdict (`verdict`), per penalty, each seed's CV selecting its λ: the selected λ's validation cost and
error below λ = 0's (the headline: L2's error); at the largest λ, training error up (high bias) and the
CV − training cost gap down; L1 sparser than L2, each at its selected λ.

What to expect (quick profile): the unpenalized net overfits (no training error, about a tenth of CV error).
The CV cost falls by about half to a minimum at a middle λ (a few hundredths for L1, a tenth or two for L2)
and rises again; by λ = 10 L2's training error climbs by a tenth or more and L1 crushes the net to one
predicted class. At the selected λ most of L1's weights lie near zero, a minority of L2's; on the validation
split it lowers the cost clearly and the error by a point or so (the penalty mostly tempers overconfident
probabilities). Under ``data_loss=mean`` CV selects the smallest λ > 0, one to several points worse than λ = 0.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.effects import grid_conditions, per_seed, seed_differences, select
from ablations.engine.plots import panel_grid, plot_history
from ablations.engine.protocol import at_selection, kfold_indices, score_test_probabilities, select_per_seed, selection_text
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import HALF_POINT_OF_ERROR, REGIME, Check, SmallestEffect, Verdict, regime
from models.linear import kernel_penalty, relative_difference
from models.names import ACTIVATIONS

# Keras loads only in the functions that train, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import keras

    from ablations.engine.train import StackedFolds

LAMBDA_GRID = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.0)  # the lecture's 12 values of λ
PENALTIES = ("l1", "l2")
CONVENTIONS = {  # per data loss: its condition's suffix, its meaning in the notes
    "mean": ("averaged J", "J averaged over the examples (Keras's mean loss; λ passed as is)"),
    "sum": ("summed J", "J summed over the n examples (Keras gets λ/n)"),
}
STACKABLE_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "prelu")
PENALTY_TOLERANCE = 1e-5  # relative float32 round-off allowed between the Keras penalty and λ·Σ computed by hand
BIAS_RISE = SmallestEffect(0.05, "five points of training error, from λ = 0 to the largest λ: less is no high bias a reader would see in the curves")
DROP = 0.0
"""A change from λ = 0 reads as "lower" (CV cost, CV error, CV − training cost gap) when it lies below this: any fall."""
SPARSER = 0.0
"""L1's near-zero fraction must exceed L2's by more than this."""
COST_CHANGE = SmallestEffect(0.1, "a tenth of a nat of cross-entropy: the cost of giving the true class a tenth less probability (ln 1.1 ≈ 0.095)")
SHARE_OF_WEIGHTS = SmallestEffect(0.05, "one weight in twenty")
HELD_OUT = {"final_holdout_loss": "train_loss", "final_holdout_error": "train_error", "final_full_near_zero_fraction": "near_zero_fraction"}

PARAMS = {
    "data": params.data("digits", help="classification set (flat features)"),
    "penalty": Param("l2", "which kernel penalty: l1 (LASSO) or l2 (ridge)", choices=PENALTIES),
    "lambda": Param(0.01, "penalty coefficient λ (the lecture's grid: 0, 0.01, ..., 5.12, 10)", low=0.0, high=1e4),
    "data_loss": Param("sum", "J as the lecture's sum over examples (λ/n passed to Keras) or as Keras's mean (λ passed as is)", choices=tuple(CONVENTIONS)),
    "depth": params.depth(2),
    "width": params.width(64, high=4096),
    "activation": Param("relu", "hidden activation", choices=STACKABLE_ACTIVATIONS),
    "epochs": params.epochs(200, high=100_000, help="full-batch Adam steps"),
    "learning_rate": params.learning_rate(1e-2),
    "n_train": params.n_train(150, low=10, help="training examples (cross-validated; the test split is separate)"),
    "folds": Param(3, "k of the k-fold cross-validation", low=2, high=50),
    "zero_tolerance": Param(1e-2, "a weight counts as near zero when |w| < this (keep it >= learning_rate)", low=0.0, high=1.0),
    "record_every": Param(20, "log the CV curves every this many steps", low=1, high=100_000),
}

PROFILES = {
    "smoke": {"penalty": list(PENALTIES), "lambda": [0.0, 0.01, 10.0], "width": 32, "epochs": 30, "n_train": 60, "folds": 2, "record_every": 10, "seeds": 1},
    "quick": {"penalty": list(PENALTIES), "lambda": list(LAMBDA_GRID), "seeds": 3},
    "full": {
        "penalty": list(PENALTIES), "lambda": list(LAMBDA_GRID), "width": 256, "epochs": 500, "n_train": 300, "folds": 5,
        "seeds": 240,  # the pilot: 101 for L1's held-out error at the selected λ (238 on the CV folds; README: How many seeds)
    },
}


# ------------------------------------------------------------------- the trial


def keras_penalty(config: dict, n_fit: int) -> tuple[float, float]:
    """The (l1, l2) Keras gets for a net trained on ``n_fit`` examples (λ = 0: (0, 0) under either penalty).

    Keras adds λ·Σ|w| or λ·Σw² (gradients λ·sign(w), 2λw: the lecture's steps) to the MEAN cross-entropy; the lecture's J is
    the SUM over the n examples, so Keras gets λ/n. ``data_loss="mean"`` passes λ as is (most of the grid crushes the net).
    """
    coefficient = config["lambda"] / n_fit if config["data_loss"] == "sum" else config["lambda"]
    return (coefficient, 0.0) if config["penalty"] == "l1" else (0.0, coefficient)


def build_member(config: dict, input_dim: int, num_classes: int, n_fit: int) -> keras.Model:
    """The trial's `build_mlp` net with its kernel penalty (λ = 0: no regularizer at all)."""
    from models.mlp import build_mlp

    l1, l2 = keras_penalty(config, n_fit)
    return build_mlp((input_dim,), num_classes, **params.mlp_options(config), activation=config["activation"], l1=l1, l2=l2)


def _dataset(config: dict):
    # A seed redraws the split (its training examples, their folds): the claim is about generalization, not one sample.
    return load_dataset(config["data"], n_train=config["n_train"], val_fraction=0.2, test_fraction=0.2, split_seed=config["seed"])


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """k-fold CV of every (penalty, λ) of the pack on the seed's folds, all in one stack; then each net on all the training data."""
    from ablations.engine.train import member_statistics

    first, last = configs[0], {}
    data, folds = _dataset(first), kfold_indices(first["n_train"], first["folds"], seed=first["seed"])

    def record(cv: StackedFolds, step: int) -> None:
        last.update(member_statistics(cv.stack, data.x_train, data.y_train, cv.train_masks, cv.val_masks, first["zero_tolerance"]))
        for own, log in zip(cv.of_trial, context.loggers):
            log({name: float(np.mean(values[own])) for name, values in last.items()}, step)

    cv = _fit(configs, data, folds, record)
    results = [_trial_metrics(config, own, last, cv, len(folds[0][0])) for config, own in zip(configs, cv.of_trial)]
    # Each trial's net trained on all its training examples, scored on the validation split CV never sees (`HELD_OUT`).
    on_all, held = _fit_on_all(configs, data, data.x_val, data.y_val)
    for metrics, (member,) in zip(results, on_all.of_trial):
        metrics.update({name: float(held[statistic][member]) for name, statistic in HELD_OUT.items()})
    return results


def _fit(configs: list[dict], data, folds: list, record: Callable[[StackedFolds, int], None] | None = None) -> StackedFolds:
    """The nets of ``configs`` on every fold as one stack (`fit_folds`): a net per penalty, λ = 0 under L1 and L2 one."""
    from ablations.engine.train import StackTraining, fit_folds

    first, shape = configs[0], (data.x_train.shape[1], data.num_classes)
    nets = [[keras_penalty(config, len(train)) for train, _ in folds] for config in configs]

    def build(trial: int, fold: int) -> keras.Model:  # every fold of a net starts from the seed's weights
        return build_member(configs[trial], *shape, len(folds[fold][0]))

    training = StackTraining(epochs=first["epochs"], learning_rate=first["learning_rate"])
    return fit_folds(nets, build, folds, (data.x_train, data.y_train), first["activation"], training, record, first["record_every"])


def _fit_on_all(configs: list[dict], data, x: np.ndarray, y: np.ndarray) -> tuple[StackedFolds, dict[str, np.ndarray]]:
    """The nets of ``configs`` trained on all the training examples, and their statistics on every (x, y), in inference mode."""
    from ablations.engine.train import member_statistics

    fits = _fit(configs, data, [(np.arange(len(data.y_train)), np.arange(0))])
    return fits, member_statistics(fits.stack, x, y, np.ones((len(fits.models), len(y))), None, configs[0]["zero_tolerance"])


def _trial_metrics(config: dict, members: list[int], last: dict[str, np.ndarray], cv: StackedFolds, fold_size: int) -> dict[str, float]:
    """One trial's final metrics, averaged over its folds' members, and its penalty checked against Keras's own."""
    metrics = {f"final_{name}": float(np.mean(values[members])) for name, values in last.items()}
    metrics["final_val_error_fold_std"] = float(np.std(last["val_error"][members]))
    metrics["keras_coefficient"] = sum(keras_penalty(config, fold_size))  # its one coefficient (0 at λ = 0)
    # The logged penalty must be Keras's own: the first fold's trained weights in its model, model.losses against λ·Σ.
    model = cv.models[members[0]]
    model.set_weights(cv.stack.member_weights(members[0]))
    from_keras, by_hand = float(sum(float(loss) for loss in model.losses)), penalty_by_hand(model)
    metrics.update(penalty_keras=from_keras, penalty_by_hand=by_hand, penalty_mismatch=relative_difference(from_keras, by_hand))
    metrics["penalty_stack_mismatch"] = relative_difference(float(cv.stack.penalties().numpy()[members[0]]), by_hand)
    return metrics


def penalty_by_hand(model: keras.Model) -> float:
    """λ₁·Σ|w| + λ₂·Σw² over the model's kernels, in float64 NumPy (biases excluded)."""
    from models.stacked import dense_layers, penalty_coefficients

    layers = dense_layers(model)
    return kernel_penalty([layer.kernel.numpy() for layer in layers], [penalty_coefficients(layer.kernel_regularizer) for layer in layers])


def test(config: dict, guard) -> dict[str, float]:
    """Trains the selected (penalty, λ) on all the training data, then scores the test split once."""
    data = _dataset(config)
    fits, train = _fit_on_all([config], data, data.x_train, data.y_train)
    model = fits.models[0]
    model.set_weights(fits.stack.member_weights(0))
    trained = {"selected_train_error": float(train["train_error"][0]), "selected_near_zero_fraction": float(train["near_zero_fraction"][0])}
    return {**trained, **score_test_probabilities(guard, model, data.x_test, data.y_test)}


# ------------------------------------------------------------------ verdict


def _curve(trials: pd.DataFrame, metric: str) -> pd.Series:
    return trials.groupby("lambda")[metric].mean().sort_index()


def _penalty_checks(group: pd.DataFrame, condition: str, reading: str) -> tuple[list[Check], pd.Series, str]:
    """One penalty's four checks, the λ each seed's CV selects, and a note on where it crushes the net."""
    selected, largest = select_per_seed(group, "lambda", "final_val_loss"), float(group["lambda"].max())
    error_gap = _curve(group, "final_val_error") - _curve(group, "final_train_error")
    group = group.assign(cost_gap=group["final_val_loss"] - group["final_train_loss"])

    def at_selected(part: str, metric: str, smallest: SmallestEffect) -> Check:
        change = summarize(at_selection(group, "lambda", selected, metric) - per_seed(group, "lambda", metric)[0.0])
        compared = f"λ = 0: {_curve(group, metric)[0.0]:.3f}, selected: {_curve(group, metric)[0.0] + change.mean:.3f}"
        details = {"at λ": f"{selection_text(selected)}, by CV cost", REGIME: reading, "means compared": compared}
        return Check.below(condition, part, change, DROP, smallest=smallest, details=details)

    def at_largest(part: str, metric: str, smallest: SmallestEffect, claim: Callable[..., Check], threshold: float, aside: str = "") -> Check:
        curve, change = _curve(group, metric), summarize(seed_differences(group, "lambda", largest, 0.0, metric))
        compared = f"λ = 0: {curve[0.0]:.3f}, λ = {largest:g}: {curve[largest]:.3f}{aside}"
        return claim(condition, part, change, threshold, smallest=smallest, details={"at λ": f"{largest:g}", "means compared": compared, REGIME: reading})

    aside = f" (error gap {error_gap[0.0]:.3f} → {error_gap[largest]:.3f})"
    checks = [
        at_selected("held-out cost lower at the selected λ", "final_holdout_loss", COST_CHANGE),
        at_selected("held-out error lower at the selected λ", "final_holdout_error", HALF_POINT_OF_ERROR),
        at_largest("training error up at the largest λ", "final_train_error", BIAS_RISE, Check.above, 0.0),
        # The lecture's gap is J_cv − J_train (costs); the error gap is shown beside it, not judged.
        at_largest("CV − training cost gap smaller at the largest λ", "cost_gap", COST_CHANGE, Check.below, DROP, aside),
    ]
    one_class = _curve(group, "final_distinct_predictions") <= 1.5
    crushed = f"; one predicted class from λ = {one_class[one_class].index.min():g}" if one_class.any() else ""
    return checks, selected, f"{condition}: CV selects λ = {selection_text(selected)}{crushed}"


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per penalty (and J convention), paired by seed, each seed's CV selecting the λ of lowest CV cost on its own folds.

    The selected λ is read on the validation split (its CV cost is lower by construction); "L1 vs L2" compares the
    nets trained on all the training data (Adam leaves an L1-pinned weight within about a learning rate of 0).

    Args:
        trials: One row per (penalty, λ, J convention, seed) with the trial's final CV metrics.
    """
    needs = "The grid needs λ = 0 and at least one λ > 0."
    if trials.empty:
        return Verdict([], notes=needs)
    mismatch = float(trials["penalty_mismatch"].max())
    if not mismatch < PENALTY_TOLERANCE:
        return Verdict([], notes=f"Nothing judged: Keras's penalty differs from its coefficient·Σ over the kernels by {mismatch:.1e}.")
    varied, checks, notes, headline = grid_conditions(trials, ["data_loss"]), [], [], None
    for data_loss, subset in trials.groupby("data_loss"):
        suffix, selected = f", {CONVENTIONS[data_loss][0]}" if varied else "", {}
        for penalty, group in subset.groupby("penalty"):
            if 0.0 not in set(group["lambda"]) or group["lambda"].nunique() < 2:
                continue
            # λ = 0 is one net under either penalty: the regime without the remedy.
            reading = regime(_curve(group, "final_train_error")[0.0], _curve(group, "final_val_error")[0.0])
            own, selected[penalty], note = _penalty_checks(group, f"{penalty.upper()}{suffix}", reading)
            checks, notes = checks + own, notes + [note]
            if penalty == "l2" and (headline is None or data_loss == PARAMS["data_loss"].default):
                headline = own[1]
        if set(selected) == set(PENALTIES):
            shares = {p: at_selection(select(subset, {"penalty": p}), "lambda", selected[p], "final_full_near_zero_fraction") for p in PENALTIES}
            at = f"L1: {selection_text(selected['l1'])}; L2: {selection_text(selected['l2'])}"
            details = {"at λ": at, "means compared": f"L2: {shares['l2'].mean():.3f}, L1: {shares['l1'].mean():.3f}", REGIME: reading}
            part = f"L1 sparser than L2, each at its selected λ (share of |w| < {float(subset['zero_tolerance'].iloc[0]):g})"
            sparser = summarize((shares["l1"] - shares["l2"]).dropna().to_numpy())
            checks.append(Check.above(f"L1 vs L2{suffix}", part, sparser, SPARSER, smallest=SHARE_OF_WEIGHTS, details=details))
    if not checks:
        return Verdict([], notes=needs)
    conventions = "; ".join(CONVENTIONS[data_loss][1] for data_loss in sorted(trials["data_loss"].unique()))
    meaning = f"λ multiplies Σ|w| or Σw² over every kernel (biases unpenalized; Keras's penalty matched its coefficient·Σ by hand to {mismatch:.0e})"
    return Verdict(checks, headline=headline or checks[0], notes=f"{'; '.join(notes)}. {meaning}; {conventions}.")


# ------------------------------------------------------------------ figures


SWEEP_PANELS = (("final_val_loss", "CV cost (held-out-fold cross-entropy)"), ("final_val_error", "error"),
                ("final_weight_l2_norm", "‖θ‖₂ (kernels)"), ("final_near_zero_fraction", "fraction of near-zero weights"))
COLORS = {"l1": "tab:orange", "l2": "tab:blue"}


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """CV and training error, weight norm and near-zero fraction against λ, per penalty; training curves."""
    conventions, lambdas = sorted(trials["data_loss"].unique()), sorted(trials["lambda"].unique())
    fig, axes = panel_grid(len(conventions) * len(SWEEP_PANELS), (4.2, 3.4), columns=len(SWEEP_PANELS))
    for row, data_loss in enumerate(conventions):
        for ax, (metric, label) in zip(axes[row], SWEEP_PANELS):
            for penalty, group in select(trials, {"data_loss": data_loss}).groupby("penalty"):
                _sweep(ax, group, metric, lambdas, penalty)
            ax.set_yscale("log" if metric == "final_weight_l2_norm" else "linear")
            ax.set_xticks(range(len(lambdas)), [f"{lam:g}" for lam in lambdas], rotation=60, fontsize=7)
            ax.set(xlabel="λ (lecture grid)", ylabel=label)
            ax.legend(fontsize=7)
            ax.set_title(f"{label.split(' (')[0]}: J {data_loss}", fontsize=9)
    fig.suptitle("k-fold CV of the training data (dotted: CV-selected λ); the test split is scored once, for the selected λ")
    return {"lambda_sweep": fig, **_training_curves(trials, client)}


def _sweep(ax: plt.Axes, group: pd.DataFrame, metric: str, lambdas: list[float], penalty: str) -> None:
    """One penalty's ``metric`` against λ (mean ± sd over seeds), beside its training and validation-split errors or CV-selected λ."""
    xs, color = list(range(len(lambdas))), COLORS[penalty]
    curve = group.groupby("lambda")[metric].agg(["mean", "std"]).reindex(lambdas)
    label = f"{penalty} (CV)" if metric == "final_val_error" else penalty
    ax.errorbar(xs, curve["mean"], yerr=curve["std"].fillna(0), marker="o", ms=3, color=color, label=label, capsize=2)
    if metric == "final_val_error":
        train = group.groupby("lambda")["final_train_error"].mean().reindex(lambdas)
        ax.plot(xs, train, ls="--", marker=".", color=color, label=f"{penalty} (training)")
        if "final_holdout_error" in group:
            held = group.groupby("lambda")["final_holdout_error"].mean().reindex(lambdas)
            ax.plot(xs, held, ls=":", marker="x", ms=3, color=color, label=f"{penalty} (validation split)")
    if metric == "final_val_loss":
        ax.axvline(lambdas.index(curve["mean"].idxmin()), color=color, ls=":", lw=1)


def _training_curves(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """How the near-zero fraction and the CV cost evolved during training at λ = 0 and the smallest λ > 0 (first seed)."""
    positive = sorted(lam for lam in trials["lambda"].unique() if lam > 0)
    if not positive:
        return {}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for penalty, (lam, style) in product(PENALTIES, ((0.0, ":"), (positive[0], "-"))):
        rows = select(trials, {"penalty": penalty, "lambda": lam, "seed": trials["seed"].min()})
        if rows.empty:
            continue
        for ax, metric in zip(axes, ("val_loss", "near_zero_fraction")):
            plot_history(ax, client, rows["run_id"].iloc[0], metric, ls=style, color=COLORS[penalty], label=f"{penalty} λ={lam:g}")
    for ax, ylabel in zip(axes, ("CV cost", "fraction of near-zero weights")):
        ax.set(xlabel="full-batch step", ylabel=ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(f"Training curves at λ = 0 and λ = {positive[0]:g} (first seed, mean over folds)")
    return {"training_curves": fig}


REFERENCE = Reference(
    citation="Tibshirani (1996), Regression Shrinkage and Selection via the Lasso, JRSS B 58(1):267-288",
    short="Tibshirani 1996",
    where="summary (the prostate-cancer table was not read)",
    value='"it tends to produce some coefficients that are exactly 0 and hence gives interpretable models"; no value is cited here',
    regime="linear regression, e.g. 97 men and 8 predictors in the prostate-cancer example",
    here="digits, 150 examples, an MLP of 2x64 (about 9,000 weights), full-batch Adam, 3-fold cross-validation over 12 values of lambda",
    checked="read in the summary (a copy of the paper's text)",
)

ABLATION = Ablation(
    name="l1_l2_penalty",
    claim="The penalty λ||θ|| (kernels only, biases unpenalized) trades variance for bias; λ is chosen on the grid "
    "0, 0.01, ..., 5.12, 10 by validation; L1 gives sparse weights.",
    params=PARAMS, profiles=PROFILES, run=run, verdict=verdict, figures=figures, test=test,
    pack_key=pack_all_but("penalty", "lambda", "data_loss"), objective="final_val_loss", reference=REFERENCE,
)
