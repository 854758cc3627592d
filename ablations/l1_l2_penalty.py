"""L1 and L2 penalties: λ trades variance for bias, and L1 zeroes weights.

The lecture's claim: minimizing J(θ, b) + λ||θ||₂² (ridge) or J(θ, b) + λ||θ||₁
(LASSO), with θ the kernels only (the biases b are not penalized), keeps the
weights from growing: λ = 0 is the unpenalized net, which may overfit; λ >> 0
drives the weights to zero and the net into high bias; a well-chosen λ in
between generalizes best. λ is chosen on the lecture's 12-value grid 0, 0.01,
0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10 by the validation
cost. L1 gives sparse weights.

Run it:

    ablate run l1_l2_penalty --profile quick

Protocol. An over-parameterized MLP (`models.build_mlp` with ``l1=λ`` or
``l2=λ``: 2 hidden layers of 64 ReLU units, about 9,000 weights) is trained on
150 digits. Each λ is scored by k-fold cross-validation of those 150 training
examples only (`ablations.engine.protocol.kfold_indices`): the CV (validation)
cost is the mean held-out-fold cross-entropy. The study's selected
configuration (lowest CV cost) is then trained once on all the training data
and scored on the test split, once, through the runner's `TestSplitGuard`.
Every fold of every λ starts from the same initial weights (same seed), so the
λ's differ only in the penalty.

What λ means here. Keras adds each penalized layer's ``L1L2`` penalty,
λ·Σ|w| or λ·Σw² over that kernel, to the data loss, and the data loss is the
MEAN cross-entropy over the examples of the (here: full) batch. So the
objective is (1/n)·Σᵢ L(yᵢ, ŷᵢ) + λ·||θ||: the lecture's formula with J an
average. Were J the lecture's sum over the n examples, the same minimizer would
need λ/n here; ``--set data_loss=sum`` runs that convention (the λ handed to
Keras is then λ/n, n the examples a model trains on). The gradient of λ·Σw² is
2λw, the lecture's L2 step θ ← θ − α(∂J/∂θ + 2λθ); that of λ·Σ|w| is λ·sign(w),
its L1 step. Training is full-batch Adam, so "batch mean" is exactly the mean
over the training examples.

What to expect (quick profile, averaged J, 3 seeds): CV selects λ = 0.01
for both penalties: the CV cost falls from 0.62 (λ = 0) to 0.39 (L2) and 0.51
(L1), but the CV misclassification rate does not improve (0.10 at λ = 0,
0.11 for L2, 0.16 for L1): the penalty mostly tempers the overconfident
probabilities of the unpenalized net. The summed penalty over ~9,000 weights
then dominates fast: from λ = 0.04 (L1) and λ = 0.16 (L2) up to 10 the net
predicts a single class, training error sits at 0.87 and CV error at 0.95:
most of the lecture's grid is the "λ >> 0, high bias" regime for a mean-loss
net. At λ = 0.01, 98% of L1's weights are within 0.01 of zero against 32% of
L2's (Adam leaves an L1-pinned weight oscillating within about one learning
rate of 0 rather than at exactly 0, hence the tolerance). The selected
(L2, λ = 0.01) net scores about 0.11 test error. With ``--set
data_loss=sum`` the same grid spans the whole trade-off (a 2-seed run: L2's CV
cost 0.65 at λ = 0, 0.31 at λ = 0.16, 1.2 at λ = 10 where the training error
reaches 0.16; L1 is best at λ = 0.04 and crushed from λ = 5.12).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.effects import direction, interval, judge_checks, mean_sd_cells, seed_differences
from ablations.engine.plots import plot_history
from ablations.engine.protocol import kfold_indices
from ablations.engine.spec import Ablation, Param, TrialContext, Verdict, pack_all_but
from ablations.engine.stats import summarize
from models.names import ACTIVATIONS

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import keras

LAMBDA_GRID = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.0)
"""The lecture's 12 values of λ."""
PENALTIES = ("l1", "l2")
DATA_LOSSES = ("mean", "sum")
STACKABLE_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "prelu")
PENALTY_TOLERANCE = 1e-5
"""Relative float32 round-off allowed between the Keras penalty and λ·Σ computed by hand."""
TABLE_COLUMNS = {
    "CV cost": "final_val_loss",
    "CV error": "final_val_error",
    "train error": "final_train_error",
    "‖θ‖₂": "final_weight_l2_norm",
    "near-zero weights": "final_near_zero_fraction",
}
"""The verdict table's columns (mean ± sd over seeds per penalty, J and λ)."""

PARAMS = {
    "data": params.data("digits", help="classification set (flat features)"),
    "penalty": Param("l2", "which kernel penalty: l1 (LASSO) or l2 (ridge)", choices=PENALTIES),
    "lambda": Param(0.01, "penalty coefficient λ (the lecture's grid: 0, 0.01, ..., 5.12, 10)", low=0.0, high=1e4),
    "data_loss": Param(
        "mean",
        "J as Keras computes it (mean over examples; λ passed as is) or the lecture's sum (λ/n passed to Keras)",
        choices=DATA_LOSSES,
    ),
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
    "smoke": {
        "penalty": list(PENALTIES),
        "lambda": [0.0, 0.01, 10.0],
        "width": 32,
        "epochs": 30,
        "n_train": 60,
        "folds": 2,
        "record_every": 10,
        "seeds": 1,
    },
    "quick": {"penalty": list(PENALTIES), "lambda": list(LAMBDA_GRID), "seeds": 3},
    "full": {
        "penalty": list(PENALTIES),
        "lambda": list(LAMBDA_GRID),
        "data_loss": list(DATA_LOSSES),
        "width": 256,
        "epochs": 500,
        "n_train": 300,
        "folds": 5,
        "seeds": 5,
    },
}


# ------------------------------------------------------------------- the trial


def keras_lambda(config: dict, n_fit: int) -> float:
    """The coefficient handed to Keras: λ for a mean data loss, λ/n for the lecture's summed J."""
    return config["lambda"] / n_fit if config["data_loss"] == "sum" else config["lambda"]


def build_member(config: dict, input_dim: int, num_classes: int, n_fit: int) -> keras.Model:
    """The trial's `build_mlp` net with its kernel penalty (λ = 0: no regularizer at all)."""
    from models.mlp import build_mlp

    coefficient = keras_lambda(config, n_fit)
    return build_mlp(
        (input_dim,),
        num_classes,
        **params.mlp_options(config),
        activation=config["activation"],
        l1=coefficient if config["penalty"] == "l1" else 0.0,
        l2=coefficient if config["penalty"] == "l2" else 0.0,
    )


def _dataset(config: dict):
    # Selection is by k-fold CV of the training examples, so the loader's
    # validation split is not used; a small one leaves more data to draw from.
    return load_dataset(config["data"], n_train=config["n_train"], val_fraction=0.05, test_fraction=0.2, split_seed=0)


def cv_folds(config: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """The trial's k folds of its training examples (shuffled by the trial's seed)."""
    return kfold_indices(config["n_train"], config["folds"], seed=config["seed"])


def fold_masks(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 masks ``(k, n)``: row i marks fold i's training examples, and its held-out ones."""
    train, val = np.zeros((len(folds), n), np.float32), np.zeros((len(folds), n), np.float32)
    for i, (train_index, val_index) in enumerate(folds):
        train[i, train_index] = 1.0
        val[i, val_index] = 1.0
    return train, val


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """k-fold CV of every (penalty, λ) of the pack, all folds of all λ in one stack."""
    import keras

    from ablations.engine.train import fit_stack, member_statistics
    from models.stacked import stack_models

    data = _dataset(configs[0])
    n, num_classes = len(data.y_train), data.num_classes
    folds = cv_folds(configs[0])

    # Members are (penalty coefficients, fold). λ = 0 under L1 and under L2 is
    # one net, trained once; every member starts from the seed's weights.
    member_index: dict[tuple, int] = {}
    member_models: list[keras.Model] = []
    models: dict[tuple[float, float], keras.Model] = {}
    member_folds: list[int] = []
    trial_members: list[list[int]] = []
    for config in configs:
        members = []
        for fold, (train_index, val_index) in enumerate(folds):
            coefficient = keras_lambda(config, len(train_index))
            penalty = (coefficient, 0.0) if config["penalty"] == "l1" else (0.0, coefficient)
            penalty = (0.0, 0.0) if coefficient == 0 else penalty
            if penalty not in models:
                models[penalty] = build_member(config, data.x_train.shape[1], num_classes, len(train_index))
            key = (penalty, fold)
            if key not in member_index:
                member_index[key] = len(member_models)
                member_models.append(models[penalty])
                member_folds.append(fold)
            members.append(member_index[key])
        trial_members.append(members)
    fold_train, fold_val = fold_masks(folds, n)
    train_masks, val_masks = fold_train[member_folds], fold_val[member_folds]

    first = configs[0]
    stack = stack_models(member_models, first["activation"])
    last: dict[str, np.ndarray] = {}

    def record(step: int) -> None:
        last.update(member_statistics(stack, data.x_train, data.y_train, train_masks, val_masks, first["zero_tolerance"]))
        for members, log in zip(trial_members, context.loggers):
            log({name: float(np.mean(values[members])) for name, values in last.items()}, step)

    fit_stack(
        stack,
        data.x_train,
        data.y_train,
        train_masks,
        epochs=first["epochs"],
        learning_rate=first["learning_rate"],
        record_every=first["record_every"],
        record=record,
    )

    results = []
    for config, members in zip(configs, trial_members):
        metrics = {f"final_{name}": float(np.mean(values[members])) for name, values in last.items()}
        metrics["final_val_error_fold_std"] = float(np.std(last["val_error"][members]))
        metrics["keras_coefficient"] = keras_lambda(config, len(folds[0][0]))
        # The logged penalty must be Keras's own: load the first fold's trained
        # weights into its build_mlp model and compare model.losses with λ·Σ.
        model = member_models[members[0]]
        model.set_weights(stack.member_weights(members[0]))
        keras_penalty = float(sum(float(loss) for loss in model.losses))
        by_hand = penalty_by_hand(model)
        metrics["penalty_keras"] = keras_penalty
        metrics["penalty_by_hand"] = by_hand
        metrics["penalty_mismatch"] = _relative(keras_penalty, by_hand)
        metrics["penalty_stack_mismatch"] = _relative(float(stack.penalties().numpy()[members[0]]), by_hand)
        results.append(metrics)
    return results


def _relative(value: float, reference: float) -> float:
    return 0.0 if value == reference else abs(value - reference) / max(abs(reference), 1e-30)


def penalty_by_hand(model: keras.Model) -> float:
    """λ₁·Σ|w| + λ₂·Σw² over the model's kernels, in float64 NumPy (biases excluded)."""
    from models.stacked import dense_layers, penalty_coefficients

    total = 0.0
    for layer in dense_layers(model):
        l1, l2 = penalty_coefficients(layer.kernel_regularizer)
        kernel = layer.kernel.numpy().astype(np.float64)
        total += l1 * np.abs(kernel).sum() + l2 * np.square(kernel).sum()
    return float(total)


def test(config: dict, guard) -> dict[str, float]:
    """Trains the selected (penalty, λ) on all the training data, then scores the test split once."""
    import keras

    from ablations.engine.train import fit_stack, member_statistics
    from models.stacked import stack_models

    data = _dataset(config)
    n = len(data.y_train)
    model = build_member(config, data.x_train.shape[1], data.num_classes, n)
    stack = stack_models([model], config["activation"])
    fit_stack(stack, data.x_train, data.y_train, np.ones((1, n)), epochs=config["epochs"], learning_rate=config["learning_rate"])
    model.set_weights(stack.member_weights(0))
    train = member_statistics(stack, data.x_train, data.y_train, np.ones((1, n)), None, config["zero_tolerance"])

    def score() -> dict[str, float]:
        probabilities = keras.ops.convert_to_numpy(model(data.x_test, training=False))
        loss = float(np.mean(-np.log(np.clip(probabilities[np.arange(len(data.y_test)), data.y_test], 1e-7, 1.0))))
        return {"test_loss": loss, "test_error": float(np.mean(np.argmax(probabilities, axis=1) != data.y_test))}

    return {
        "selected_train_error": float(train["train_error"][0]),
        "selected_near_zero_fraction": float(train["near_zero_fraction"][0]),
        **guard.evaluate(score),
    }


# ------------------------------------------------------------------ verdict


def _curve(trials: pd.DataFrame, metric: str) -> pd.Series:
    return trials.groupby("lambda")[metric].mean().sort_index()


def _paired(trials: pd.DataFrame, metric: str, lam_a: float, lam_b: float) -> np.ndarray:
    """Per seed: metric at λ = lam_a minus metric at λ = lam_b."""
    return seed_differences(trials, "lambda", lam_a, lam_b, metric)


def _ci(summary) -> str:
    return f"{summary.mean:+.2f}, " + (f"CI {interval(summary, '+.2f')}" if summary.n > 1 else "one seed")


def _convention(data_loss: str) -> str:
    if data_loss == "sum":
        return "J summed over the n examples (Keras gets λ/n)"
    return "J averaged over the examples (Keras's mean loss; λ passed as is)"


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per penalty: the trade (bias up, gap down, with λ), a λ > 0 that beats λ = 0 on CV, L1 sparser than L2."""
    if trials.empty or trials["lambda"].nunique() < 2 or 0.0 not in set(trials["lambda"]):
        return Verdict("inconclusive", "The grid needs λ = 0 and at least one λ > 0.", "CV loss gain of the selected λ", math.nan, math.nan)
    table, failures, unsure, notes, gains = [], [], [], [], []
    penalty_ok = float(trials["penalty_mismatch"].max()) < PENALTY_TOLERANCE
    for (data_loss, penalty), group in trials.groupby(["data_loss", "penalty"]):
        lambdas = sorted(group["lambda"].unique())
        cv = _curve(group, "final_val_loss")
        best = float(cv.idxmin())
        largest = lambdas[-1]
        gain = summarize(_paired(group, "final_val_loss", best, 0.0)) if best > 0 else summarize([0.0])
        bias = summarize(_paired(group, "final_train_error", largest, 0.0))
        group = group.assign(gap=group["final_val_loss"] - group["final_train_loss"])
        gap = summarize(_paired(group, "gap", largest, 0.0))
        crushed = [lam for lam in lambdas if _curve(group, "final_distinct_predictions")[lam] <= 1.5]
        label = f"{penalty} ({data_loss} J)"
        for holds, text in (
            (direction(bias, +1), f"training error rises from λ = 0 to λ = {largest:g} ({_ci(bias)})"),
            (direction(gap, -1), f"the CV − training cost gap shrinks from λ = 0 to λ = {largest:g} ({_ci(gap)})"),
            (
                direction(gain, -1) if best > 0 else False,
                f"a λ > 0 beats λ = 0 on the CV cost ({f'best λ = {best:g}: {_ci(gain)}' if best > 0 else 'λ = 0 is best'})",
            ),
        ):
            if holds is None:
                unsure.append(f"{label}: unclear whether {text}")
            elif not holds:
                failures.append(f"{label}: not true that {text}")
        gains.extend(_paired(group, "final_val_loss", best, 0.0) if best > 0 else [0.0])
        cv_error = _curve(group, "final_val_error")
        crushed_text = (
            f"; λ ≥ {min(crushed):g} crushes the weights (one predicted class, CV error {cv_error[min(crushed)]:.2f})" if crushed else ""
        )
        notes.append(
            f"{label}: CV selects λ = {best:g} (CV cost {cv[best]:.3f} vs {cv[0.0]:.3f} at λ = 0; "
            f"CV misclassification {cv_error[best]:.3f} vs {cv_error[0.0]:.3f})"
            + crushed_text
        )
        for lam in lambdas:
            rows = group[group["lambda"] == lam]
            row = {"penalty": penalty, "J": data_loss, "λ": lam, **mean_sd_cells(rows, TABLE_COLUMNS)}
            row["classes predicted"] = f"{rows['final_distinct_predictions'].mean():.1f}"
            row["selected by CV"] = lam == best
            table.append(row)

    sparsity_text = ""
    for data_loss, group in trials.groupby("data_loss"):
        positive = sorted(lam for lam in group["lambda"].unique() if lam > 0)
        if not positive or set(group["penalty"]) != set(PENALTIES):
            continue
        lam = positive[0]
        at = group[group["lambda"] == lam].pivot_table(index="seed", columns="penalty", values="final_near_zero_fraction")
        difference = summarize((at["l1"] - at["l2"]).dropna().to_numpy())
        sparse = direction(difference, +1)
        tolerance = float(group["zero_tolerance"].iloc[0])
        sparsity_text += (
            f" At λ = {lam:g} ({data_loss} J) {at['l1'].mean():.0%} of L1's weights are within {tolerance:g} of 0 vs "
            f"{at['l2'].mean():.0%} of L2's (difference {_ci(difference)})."
        )
        if sparse is None:
            unsure.append(f"unclear whether L1 is sparser than L2 at λ = {lam:g} ({data_loss} J)")
        elif not sparse:
            failures.append(f"L1 is not sparser than L2 at λ = {lam:g} ({data_loss} J)")
    if not penalty_ok:
        failures.append(f"the Keras penalty differs from λ·Σ over the kernels by {trials['penalty_mismatch'].max():.1e}")

    conventions = "; ".join(_convention(d) for d in sorted(trials["data_loss"].unique()))
    effect = summarize(gains)
    meaning = (
        f"λ multiplies Σ|w| or Σw² summed over every kernel (biases unpenalized: Keras's penalty matched λ·Σ by hand to "
        f"{trials['penalty_mismatch'].max():.0e}); {conventions}; the L2 gradient is 2λθ as in the lecture."
    )
    reproduced = "Raising λ trades variance for bias and a λ > 0 beats λ = 0 on k-fold CV; L1 gives sparse weights. "
    outcome, summary = judge_checks(failures, unsure, reproduced)
    summary += "; ".join(notes) + "." + sparsity_text + " " + meaning
    return Verdict(outcome, summary, "CV cost at the selected λ minus at λ = 0 (per seed)", effect.mean, effect.std, table)


# ------------------------------------------------------------------ figures


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """CV and training error, weight norm and near-zero fraction against λ, per penalty."""
    panels = [
        ("final_val_loss", "CV cost (held-out-fold cross-entropy)"),
        ("final_val_error", "error"),
        ("final_weight_l2_norm", "‖θ‖₂ (kernels)"),
        ("final_near_zero_fraction", "fraction of near-zero weights"),
    ]
    conventions = sorted(trials["data_loss"].unique())
    fig, axes = plt.subplots(
        len(conventions), len(panels), figsize=(4.2 * len(panels), 3.4 * len(conventions)), squeeze=False, constrained_layout=True
    )
    lambdas = sorted(trials["lambda"].unique())
    positions = {lam: i for i, lam in enumerate(lambdas)}
    for row, data_loss in enumerate(conventions):
        subset = trials[trials["data_loss"] == data_loss]
        for col, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            for penalty, color in zip(PENALTIES, ("tab:orange", "tab:blue")):
                group = subset[subset["penalty"] == penalty]
                if group.empty:
                    continue
                curve = group.groupby("lambda")[metric].agg(["mean", "std"]).reindex(lambdas)
                xs = [positions[lam] for lam in curve.index]
                suffix = " (CV)" if metric == "final_val_error" else ""
                ax.errorbar(
                    xs, curve["mean"], yerr=curve["std"].fillna(0), marker="o", ms=3, color=color, label=f"{penalty}{suffix}", capsize=2
                )
                if metric == "final_val_error":
                    train = group.groupby("lambda")["final_train_error"].mean().reindex(lambdas)
                    ax.plot(xs, train, ls="--", marker=".", color=color, label=f"{penalty} (training)")
                if metric == "final_val_loss":
                    best = curve["mean"].idxmin()
                    ax.axvline(positions[best], color=color, ls=":", lw=1)
            if metric == "final_weight_l2_norm":
                ax.set_yscale("log")
            ax.set_xticks(range(len(lambdas)))
            ax.set_xticklabels([f"{lam:g}" for lam in lambdas], rotation=60, fontsize=7)
            ax.set_xlabel("λ (lecture grid)")
            ax.set_ylabel(label)
            ax.legend(fontsize=7)
            ax.set_title(f"{label.split(' (')[0]}: J {data_loss}", fontsize=9)
    fig.suptitle("k-fold CV of the training data (dotted: CV-selected λ); the test split is scored once, for the selected λ")
    return {"lambda_sweep": fig, **_weight_histograms(trials, client)}


def _weight_histograms(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """How the near-zero fraction and the CV cost evolved during training at the smallest λ > 0 (seed 0)."""
    positive = sorted(lam for lam in trials["lambda"].unique() if lam > 0)
    if not positive:
        return {}
    lam = positive[0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for penalty, color in zip(PENALTIES, ("tab:orange", "tab:blue")):
        for lam_shown, style in ((0.0, ":"), (lam, "-")):
            rows = trials[(trials["penalty"] == penalty) & (trials["lambda"] == lam_shown) & (trials["seed"] == trials["seed"].min())]
            if rows.empty:
                continue
            run_id = rows["run_id"].iloc[0]
            for ax, metric in zip(axes, ("val_loss", "near_zero_fraction")):
                plot_history(ax, client, run_id, metric, ls=style, color=color, label=f"{penalty} λ={lam_shown:g}")
    axes[0].set_ylabel("CV cost")
    axes[1].set_ylabel("fraction of near-zero weights")
    for ax in axes:
        ax.set_xlabel("full-batch step")
        ax.legend(fontsize=7)
    fig.suptitle(f"Training curves at λ = 0 and λ = {lam:g} (first seed, mean over folds)")
    return {"training_curves": fig}


ABLATION = Ablation(
    name="l1_l2_penalty",
    claim=(
        "The penalty λ||θ|| (kernels only, biases unpenalized) trades variance for bias; λ is chosen on the grid "
        "0, 0.01, ..., 5.12, 10 by validation; L1 gives sparse weights."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    pack_key=pack_all_but("penalty", "lambda", "data_loss"),
    objective="final_val_loss",
    test=test,
)
