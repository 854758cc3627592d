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
cost is the mean held-out-fold cross-entropy. Each trial also trains its net
once on all 150 examples and scores it on the validation split (a fifth of
the data set), which the selection of λ never sees. The study's selected
configuration (lowest CV cost) is then trained once on all the training data
and scored on the test split, once, through the runner's `TestSplitGuard`.
Every fold of every λ starts from the same initial weights (same seed), so the
λ's differ only in the penalty.

What λ means here. Keras adds each penalized layer's ``L1L2`` penalty,
λ·Σ|w| or λ·Σw² over that kernel, to the data loss, and the data loss is the
MEAN cross-entropy over the examples of the (here: full) batch. The lecture's J
is the SUM over the n examples, and that is the default here: J(θ, b) +
λ·||θ|| has the same minimizer as (1/n)·Σᵢ L(yᵢ, ŷᵢ) + (λ/n)·||θ||, so the λ
handed to Keras is λ/n (n the examples a model trains on). ``--set
data_loss=mean`` passes λ as is, the objective (1/n)·Σᵢ L(yᵢ, ŷᵢ) + λ·||θ||:
there the summed penalty over ~9,000 weights dominates from a few hundredths
on, and most of the lecture's grid is the crushed "λ >> 0" regime (one
predicted class). The gradient of λ·Σw² is 2λw, the lecture's L2 step
θ ← θ − α(∂J/∂θ + 2λθ); that of λ·Σ|w| is λ·sign(w), its L1 step. Training is
full-batch Adam, so "batch mean" is exactly the mean over the training
examples.

The verdict (`ablations.engine.verdict`). Conditions: the penalties, L1 and L2
(with the convention when a grid runs both). Per penalty, each seed's CV
selects the λ of lowest CV cost on its own folds, as one run of the procedure
would, and four checks compare, paired by seed:

- the selected λ's cost on the validation split is lower than λ = 0's;
- its validation-split misclassification is lower: "a well-chosen λ
  generalizes best". The headline is this change for L2, the lecture's main
  penalty. Neither is read on the CV folds: the CV cost at its own argmin is
  lower than at λ = 0 by construction, and the CV error shares that optimism;
- the largest λ raises the training error (high bias), by more than
  `BIAS_RISE` (5 points) for it to count: a rise within ± that is no effect;
- the largest λ shrinks the CV − training cost gap (less variance): the
  lecture's J_cv − J_train; the error gap is shown beside it, not judged.

A fifth check, condition "L1 vs L2": each at the λ its own CV selects (per
seed), more of L1's weights lie within ``zero_tolerance`` of 0 than of L2's,
in the nets trained on all the training data (Adam leaves an L1-pinned weight
oscillating within about one learning rate of 0 rather than at exactly 0,
hence the tolerance). Comparing them at equal λ would compare two scales of
penalty. Where CV selects λ = 0 for both, the two are one net and the check
shows no effect. Each check carries the regime of the unpenalized net (its
training and CV error).

What to expect (quick profile). The unpenalized net overfits: no training
error against about a tenth of CV error. Under the summed J the grid spans the
trade-off: the CV cost falls by about half to a minimum at a middle λ (a few
hundredths for L1, a tenth or two for L2) and rises again; by λ = 10 the
training error of L2 climbs by a tenth or more, and L1 crushes the net to one
predicted class from the top few λ. At their selected λ most of L1's weights
lie near zero against a minority of L2's. On the validation split the selected
λ lowers the cost clearly and the misclassification by a point or so: the
penalty mostly tempers the overconfident probabilities of the unpenalized
net, and a clear cost gain need not come with an error gain. Under ``--set
data_loss=mean`` CV selects the smallest λ > 0 and its error is worse than at
λ = 0 by one to several points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.effects import per_seed, seed_differences
from ablations.engine.plots import plot_history
from ablations.engine.protocol import kfold_indices
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import HALF_POINT_OF_ERROR, REGIME, Check, SmallestEffect, Verdict, regime
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
BIAS_RISE = SmallestEffect(0.05, "five points of training error, from λ = 0 to the largest λ: less is no high bias a reader would see in the curves")
DROP = 0.0
"""A change from λ = 0 reads as "lower" (CV cost, CV error, CV − training cost gap) when it lies below this: any fall."""
SPARSER = 0.0
"""L1's near-zero fraction must exceed L2's by more than this."""
COST_CHANGE = SmallestEffect(0.1, "a tenth of a nat of cross-entropy: the cost of giving the true class a tenth less probability (ln 1.1 ≈ 0.095)")
SHARE_OF_WEIGHTS = SmallestEffect(0.05, "one weight in twenty")

PARAMS = {
    "data": params.data("digits", help="classification set (flat features)"),
    "penalty": Param("l2", "which kernel penalty: l1 (LASSO) or l2 (ridge)", choices=PENALTIES),
    "lambda": Param(0.01, "penalty coefficient λ (the lecture's grid: 0, 0.01, ..., 5.12, 10)", low=0.0, high=1e4),
    "data_loss": Param(
        "sum",
        "J as the lecture's sum over examples (λ/n passed to Keras) or as Keras's mean (λ passed as is)",
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
        "width": 256,
        "epochs": 500,
        "n_train": 300,
        "folds": 5,
        "seeds": 240,  # the pilot: 101 for L1's held-out error at the selected λ (238 on the CV folds; README: How many seeds)
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
    # λ is selected by k-fold CV of the training examples; the validation split, which that selection never
    # sees, scores the selected λ against λ = 0 without the selection's optimism. A seed redraws the split
    # (and so the training examples and their folds): the claim is about generalization, not one sample.
    return load_dataset(config["data"], n_train=config["n_train"], val_fraction=0.2, test_fraction=0.2, split_seed=config["seed"])


def _penalty(config: dict, n_fit: int) -> tuple[float, float]:
    """The (l1, l2) coefficients Keras gets for a net trained on ``n_fit`` examples; λ = 0 under either penalty is (0, 0)."""
    coefficient = keras_lambda(config, n_fit)
    if coefficient == 0:
        return (0.0, 0.0)
    return (coefficient, 0.0) if config["penalty"] == "l1" else (0.0, coefficient)


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
    from ablations.engine.train import StackRecording, StackTraining, fit_stack, member_statistics
    from models.stacked import stack_models

    data = _dataset(configs[0])
    folds = cv_folds(configs[0])
    members = _CvMembers(configs, folds, data.x_train.shape[1], data.num_classes)
    fold_train, fold_val = fold_masks(folds, len(data.y_train))
    train_masks, val_masks = fold_train[members.folds], fold_val[members.folds]

    first = configs[0]
    stack = stack_models(members.models, first["activation"])
    last: dict[str, np.ndarray] = {}

    def record(step: int) -> None:
        last.update(member_statistics(stack, data.x_train, data.y_train, train_masks, val_masks, first["zero_tolerance"]))
        for own, log in zip(members.of_trial, context.loggers):
            log({name: float(np.mean(values[own])) for name, values in last.items()}, step)

    fit_stack(
        stack,
        data.x_train,
        data.y_train,
        train_masks,
        training=StackTraining(epochs=first["epochs"], learning_rate=first["learning_rate"]),
        recording=StackRecording(record_every=first["record_every"], record=record),
    )
    results = [_trial_metrics(config, own, last, stack, members.models, len(folds[0][0])) for config, own in zip(configs, members.of_trial)]
    for metrics, held_out in zip(results, _held_out_scores(configs, data)):
        metrics.update(held_out)
    return results


def _held_out_scores(configs: list[dict], data) -> list[dict[str, float]]:
    """Each trial's net trained on all its training examples, scored on the validation split CV never sees."""
    from ablations.engine.train import member_statistics

    stack, members = _fit_on_all(configs, data)
    everything = np.ones((len(members.models), len(data.y_val)))
    # Scored on the validation split as its "training" examples: every one of them, in inference mode.
    held = member_statistics(stack, data.x_val, data.y_val, everything, None, configs[0]["zero_tolerance"])
    return [
        {
            "final_holdout_loss": float(held["train_loss"][m]),
            "final_holdout_error": float(held["train_error"][m]),
            "final_full_near_zero_fraction": float(held["near_zero_fraction"][m]),
        }
        for (m,) in members.of_trial
    ]


def _fit_on_all(configs: list[dict], data):
    """The distinct nets of ``configs`` (λ = 0 is one net) trained on all the training examples as one stack, from the seed's weights.

    Returns:
        The trained stack and its `_CvMembers` (one "fold": every training example).
    """
    from ablations.engine.train import StackTraining, fit_stack
    from models.stacked import stack_models

    first, n = configs[0], len(data.y_train)
    members = _CvMembers(configs, [(np.arange(n), np.arange(0))], data.x_train.shape[1], data.num_classes)
    stack = stack_models(members.models, first["activation"])
    everything = np.ones((len(members.models), n), np.float32)
    fit_stack(stack, data.x_train, data.y_train, everything, training=StackTraining(epochs=first["epochs"], learning_rate=first["learning_rate"]))
    return stack, members


class _CvMembers:
    """The stack's members: one per (penalty coefficients, fold), shared by trials that need the same net.

    λ = 0 under L1 and under L2 is one net, trained once; every member starts
    from the seed's weights (one `build_member` per penalty, its copy per fold).

    Args:
        configs: The pack's trial configurations.
        folds: The CV folds, ``(train_index, val_index)`` each.
        input_dim: Features.
        num_classes: Output classes.
    """

    def __init__(self, configs: list[dict], folds: list, input_dim: int, num_classes: int):
        index: dict[tuple, int] = {}
        built: dict[tuple[float, float], keras.Model] = {}
        self.models: list[keras.Model] = []
        self.folds: list[int] = []
        self.of_trial: list[list[int]] = []
        for config in configs:
            own = []
            for fold, (train_index, _) in enumerate(folds):
                penalty = _penalty(config, len(train_index))
                if penalty not in built:
                    built[penalty] = build_member(config, input_dim, num_classes, len(train_index))
                if (penalty, fold) not in index:
                    index[(penalty, fold)] = len(self.models)
                    self.models.append(built[penalty])
                    self.folds.append(fold)
                own.append(index[(penalty, fold)])
            self.of_trial.append(own)


def _trial_metrics(config: dict, members: list[int], last: dict[str, np.ndarray], stack, models: list, fold_size: int) -> dict[str, float]:
    """One trial's final metrics, averaged over its folds' members, and its penalty checked against Keras's own."""
    metrics = {f"final_{name}": float(np.mean(values[members])) for name, values in last.items()}
    metrics["final_val_error_fold_std"] = float(np.std(last["val_error"][members]))
    metrics["keras_coefficient"] = keras_lambda(config, fold_size)
    # The logged penalty must be Keras's own: load the first fold's trained
    # weights into its build_mlp model and compare model.losses with λ·Σ.
    model = models[members[0]]
    model.set_weights(stack.member_weights(members[0]))
    keras_penalty = float(sum(float(loss) for loss in model.losses))
    by_hand = penalty_by_hand(model)
    metrics["penalty_keras"] = keras_penalty
    metrics["penalty_by_hand"] = by_hand
    metrics["penalty_mismatch"] = _relative(keras_penalty, by_hand)
    metrics["penalty_stack_mismatch"] = _relative(float(stack.penalties().numpy()[members[0]]), by_hand)
    return metrics


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

    from ablations.engine.train import member_statistics

    data = _dataset(config)
    stack, members = _fit_on_all([config], data)
    model = members.models[0]
    model.set_weights(stack.member_weights(0))
    train = member_statistics(stack, data.x_train, data.y_train, np.ones((1, len(data.y_train))), None, config["zero_tolerance"])

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


_CONVENTIONS = {"sum": "summed J", "mean": "averaged J"}


def _curve(trials: pd.DataFrame, metric: str) -> pd.Series:
    return trials.groupby("lambda")[metric].mean().sort_index()


def _change(trials: pd.DataFrame, metric: str, lam: float) -> np.ndarray:
    """Per seed: ``metric`` at λ = ``lam`` minus at λ = 0."""
    return seed_differences(trials, "lambda", lam, 0.0, metric)


def _means(curve: pd.Series, lam: float, spec: str = ".3f") -> str:
    return f"λ = 0: {curve[0.0]:{spec}}, λ = {lam:g}: {curve[lam]:{spec}}"


def _convention(data_loss: str) -> str:
    if data_loss == "sum":
        return "J summed over the n examples (Keras gets λ/n)"
    return "J averaged over the examples (Keras's mean loss; λ passed as is)"


def selected_lambdas(group: pd.DataFrame) -> pd.Series:
    """Per seed, the λ of lowest CV cost: each seed selects on its own folds, as one run of the procedure would."""
    return group.pivot_table(index="seed", columns="lambda", values="final_val_loss").idxmin(axis=1).dropna()


def _at_selected(group: pd.DataFrame, selected: pd.Series, metric: str) -> np.ndarray:
    """Per seed: ``metric`` at the seed's selected λ minus at λ = 0."""
    table = per_seed(group, "lambda", metric)
    values = [table.at[seed, lam] - table.at[seed, 0.0] for seed, lam in selected.items() if seed in table.index]
    return np.array([value for value in values if np.isfinite(value)])


def _lambdas(selected: pd.Series) -> str:
    """The selected λ's, "0.16 (seed 0), 0.32 (seeds 1, 2)"."""
    seeds: dict[float, list[int]] = {}
    for seed, lam in selected.items():
        seeds.setdefault(float(lam), []).append(int(seed))
    return ", ".join(f"{lam:g} (seed{'s' if len(of) > 1 else ''} {', '.join(map(str, of))})" for lam, of in sorted(seeds.items()))


def _penalty_checks(group: pd.DataFrame, condition: str, reading: str) -> tuple[list[Check], pd.Series, str]:
    """One penalty's four checks, the λ each seed's CV selects, and a note on where it crushes the net.

    The selected λ is scored against λ = 0 on the validation split, which the selection never saw: the CV
    cost at its own argmin is lower by construction, and its CV error shares that optimism.
    """
    selected = selected_lambdas(group)
    train_error, cv_error = _curve(group, "final_train_error"), _curve(group, "final_val_error")
    group = group.assign(cost_gap=group["final_val_loss"] - group["final_train_loss"])
    largest = float(group["lambda"].max())
    at = {"at λ": f"{_lambdas(selected)}, by CV cost", REGIME: reading}

    def at_selected(part: str, metric: str, smallest: SmallestEffect) -> Check:
        change = summarize(_at_selected(group, selected, metric))
        compared = f"λ = 0: {_curve(group, metric)[0.0]:.3f}, selected: {_curve(group, metric)[0.0] + change.mean:.3f}"
        return Check.below(condition, part, change, DROP, smallest=smallest, details={**at, "means compared": compared})

    def at_largest(part: str, metric: str, threshold: float, smallest: SmallestEffect, above: bool, aside: str = "") -> Check:
        details = {"at λ": f"{largest:g}", "means compared": _means(_curve(group, metric), largest) + aside, REGIME: reading}
        build = Check.above if above else Check.below
        return build(condition, part, summarize(_change(group, metric, largest)), threshold, smallest=smallest, details=details)

    # The lecture's gap is J_cv − J_train (costs); the error gap is shown beside it, not judged.
    error_gap = cv_error - train_error
    aside = f" (error gap {error_gap[0.0]:.3f} → {error_gap[largest]:.3f})"
    checks = [
        at_selected("held-out cost lower at the selected λ", "final_holdout_loss", COST_CHANGE),
        at_selected("held-out error lower at the selected λ", "final_holdout_error", HALF_POINT_OF_ERROR),
        at_largest("training error up at the largest λ", "final_train_error", 0.0, BIAS_RISE, True),
        at_largest("CV − training cost gap smaller at the largest λ", "cost_gap", DROP, COST_CHANGE, False, aside),
    ]
    one_class = _curve(group, "final_distinct_predictions") <= 1.5
    crushed = f"; one predicted class from λ = {one_class[one_class].index.min():g}" if one_class.any() else ""
    return checks, selected, f"{condition}: CV selects λ = {_lambdas(selected)}{crushed}"


def _sparsity_check(group: pd.DataFrame, selected: dict[str, pd.Series], condition: str, reading: str) -> Check:
    """Per seed: the near-zero fraction of L1's net at L1's selected λ minus L2's at L2's (nets trained on all the training data)."""
    shares = {}
    for penalty in PENALTIES:
        table = per_seed(group[group["penalty"] == penalty], "lambda", "final_full_near_zero_fraction")
        shares[penalty] = pd.Series({seed: table.at[seed, lam] for seed, lam in selected[penalty].items() if seed in table.index})
    difference = (shares["l1"] - shares["l2"]).dropna().to_numpy()
    tolerance = float(group["zero_tolerance"].iloc[0])
    details = {
        "at λ": f"L1: {_lambdas(selected['l1'])}; L2: {_lambdas(selected['l2'])}",
        "means compared": f"L2: {shares['l2'].mean():.3f}, L1: {shares['l1'].mean():.3f}",
        REGIME: reading,
    }
    part = f"L1 sparser than L2, each at its selected λ (share of |w| < {tolerance:g})"
    return Check.above(condition, part, summarize(difference), SPARSER, smallest=SHARE_OF_WEIGHTS, details=details)


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per penalty: held-out cost and error at each seed's selected λ, bias and gap at the largest λ; L1 sparser than L2.

    Args:
        trials: One row per (penalty, λ, J convention, seed) with the trial's final CV metrics.
    """
    if trials.empty:
        return Verdict([], notes="The grid needs λ = 0 and at least one λ > 0.")
    mismatch = float(trials["penalty_mismatch"].max())
    if not mismatch < PENALTY_TOLERANCE:
        return Verdict([], notes=f"Nothing judged: Keras's penalty differs from its coefficient·Σ over the kernels by {mismatch:.1e}.")
    conventions = sorted(trials["data_loss"].unique())
    checks, notes, headline = [], [], None
    for data_loss in conventions:
        subset = trials[trials["data_loss"] == data_loss]
        suffix = f", {_CONVENTIONS[data_loss]}" if len(conventions) > 1 else ""
        selected = {}
        for penalty, group in subset.groupby("penalty"):
            lambdas = set(group["lambda"])
            if 0.0 not in lambdas or len(lambdas) < 2:
                continue
            # λ = 0 is one net under either penalty: the regime without the remedy.
            reading = regime(_curve(group, "final_train_error")[0.0], _curve(group, "final_val_error")[0.0])
            own, selected[penalty], note = _penalty_checks(group, f"{penalty.upper()}{suffix}", reading)
            checks += own
            notes.append(note)
            if penalty == "l2" and (headline is None or data_loss == PARAMS["data_loss"].default):
                headline = own[1]
        if set(selected) == set(PENALTIES):
            checks.append(_sparsity_check(subset, selected, f"L1 vs L2{suffix}", reading))
    if not checks:
        return Verdict([], notes="The grid needs λ = 0 and at least one λ > 0.")
    meaning = (
        f"λ multiplies Σ|w| or Σw² over every kernel (biases unpenalized; Keras's penalty matched its coefficient·Σ "
        f"by hand to {mismatch:.0e}); {'; '.join(_convention(d) for d in conventions)}."
    )
    return Verdict(checks, headline=headline or checks[0], notes="; ".join(notes) + ". " + meaning)


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
                    if "final_holdout_error" in group:
                        held = group.groupby("lambda")["final_holdout_error"].mean().reindex(lambdas)
                        ax.plot(xs, held, ls=":", marker="x", ms=3, color=color, label=f"{penalty} (validation split)")
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
    reference=REFERENCE,
)
