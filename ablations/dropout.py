"""Dropout: drop units at random while training, rescale the survivors, overfit less.

The lecture's claim: inverted dropout zeroes each unit with probability 1 - keep and divides the
survivors by keep, so the expected value of the next layer's z is unchanged and nothing needs
compensating at test time; keep 0.5 for wide hidden layers and 0.8 for the inputs (Ng recommends 1.0
for the inputs); dropout reduces overfitting; and "dropout praticamente dobra o número de iterações
necessárias para convergir" (it about doubles the iterations needed to converge).

Run it: ``ablate run dropout --profile quick``.

Where the claim speaks: a wide ReLU MLP (2x512, `models.InvertedDropout` after each hidden layer) that
overfits real MNIST digits (mnist5k), at a few hundred training examples, where Srivastava et al.
(2014) find no gain (a boundary condition, `REGIME_N_TRAIN`), and at 3,000. ``--set recipe=srivastava``
trains with their recipe (SGD with momentum, max-norm 3), which the full profile runs beside Adam. Each
arm early-stops on half the validation split, its best weights restored; the other half scores it.

The verdict's checks, fixed before any run, per training-set size (and per value of any other setting
the grid varies): 1. "held-out error lower", without dropout minus with hidden keep 0.5 (input keep 1),
paired by seed, above 0, the headline at the largest size; 2. "epochs to converge about double", epochs
to where the seed's net without dropout converged, keep 0.5 over none, within `ABOUT_DOUBLE` (a dropout
net that never gets there counts its epochs: a lower bound); 3. "mask-averaged z matches z" over every
net with dropout (`models.dropout.expectation_check`), a sanity check. Reported, not judged: the plain
net's regime, the epochs until the masks-on loss reaches ``target_loss``, the gap, the best keep
probabilities and, in the full profile, input keep 0.8 against 1.0.

What to expect: the mask-averaged z matches z to Monte Carlo error. Without dropout the wide net fits
its training set and its held-out error is several points higher: both sizes overfit. Keep 0.5 lowers
the held-out error by about a point at 3,000 examples, with a seed-to-seed spread that a few seeds
cannot resolve; to the same error a dropout net needs roughly twice the epochs, and its masks-on loss
falls several times more slowly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.curves import censored_ratios, epochs_to_converge, epochs_to_level, reference_levels
from ablations.engine.data import load_dataset, load_per_seed, sized_for
from ablations.engine.effects import beside_control, condition_groups, ratio_text, select
from ablations.engine.plots import PanelLayout, marked_histories, mean_std_panels
from ablations.engine.protocol import score_test_split
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import HALF_POINT_OF_ERROR, REGIME, Check, SmallestEffect, Verdict, regime

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

ARMS = ("keep_prob", "input_keep_prob")  # what a verdict compares; any other setting the grid varies is a condition
LECTURE_HIDDEN_KEEP, LECTURE_INPUT_KEEP = 0.5, 0.8
PLAIN = {"keep_prob": 1.0, "input_keep_prob": 1.0}
DROPPED = {"keep_prob": LECTURE_HIDDEN_KEEP, "input_keep_prob": 1.0}
LECTURE = {"keep_prob": LECTURE_HIDDEN_KEEP, "input_keep_prob": LECTURE_INPUT_KEEP}
"""The arms: no dropout, the lecture's hidden keep 0.5 (with Ng's input keep 1), and with the lecture's input keep 0.8."""
PAIR = ("n_train", "seed")  # what a treated trial shares with its control within a condition
ABOUT_DOUBLE = (1.5, 3.0)
"""Ratios of epochs to converge read as "about doubles" (decided before any run)."""
CONVERGED_FRACTION = 0.05
"""Converged: within this fraction of its improvement (initialization to best) of its best, 95% of the way; at 3,000
MNIST examples about 4 points of error above the best, clear of a dropout net's epoch-to-epoch noise (decided before any run)."""
SCORE_EVERY = 5
"""Epochs between scorings of the training split (and of the losses logged); the validation error is scored every epoch."""
EXPECTATION_TOLERANCE = 1.5
"""RMS deviation of the mask-averaged z, in Monte Carlo standard errors, still read as "unchanged"."""
SLOWER = SmallestEffect(0.25, "a quarter more epochs: less is not the lecture's 'more iterations to converge'")
REGIME_N_TRAIN = 1000
"""Below this many training examples the error check is a boundary condition, never deciding: Srivastava et al. measured
dropout's gains with tens of thousands; at a few hundred a 2x512 net is limited by data, not by co-adaptation."""
SRIVASTAVA_MOMENTUM, SRIVASTAVA_MAX_NORM = 0.95, 3.0  # Srivastava et al. (2014), Appendix B.1 and Section 5.1: c of 3 to 4

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
    "recipe": Param("adam", "adam (Adam at learning_rate, max_norm as set) or srivastava (SGD with momentum 0.95 at "
                    "srivastava_learning_rate, max-norm 3 unless max_norm is set)", choices=("adam", "srivastava")),
    # A pilot at n_train=3000: at 0.05 the dropout nets trained unstably; at 0.01 every arm fit its training set.
    "srivastava_learning_rate": Param(0.01, "SGD's learning rate in the srivastava recipe", low=1e-6, high=10.0),
    "target_loss": Param(0.1, "training loss (masks on, as optimized) whose epochs are reported", low=0.0, high=100.0),
    "mask_samples": Param(100, "dropout masks averaged in the expectation check", low=2, high=100_000),
}

PROFILES = {
    "smoke": {"data": "digits", "keep_prob": [0.5, 1.0], "n_train": [100, 200], "width": 64, "epochs": 8, "patience": 2,
              "batch_size": 25, "learning_rate": 1e-2, "target_loss": 0.5, "mask_samples": 20, "seeds": 1},
    # The lecture's hidden keep against none, at a few hundred examples (no gain expected) and at all 3,000 of
    # mnist5k (a gain expected).
    "quick": {"keep_prob": [0.5, 1.0], "n_train": [300, 3000], "seeds": 3},
    # The keep probability swept, the lecture's input keep 0.8 beside Ng's 1.0, and a wider net for longer.
    # Full MNIST where TFDS has it (``--download`` fetches it), else the bundled 5,000 images.
    "full": {
        "data": params.PreferTfds("tfds:mnist", "mnist5k"), "keep_prob": [0.3, 0.5, 0.65, 0.8, 1.0], "input_keep_prob": [0.8, 1.0],
        "n_train": [250, 500, 1000, 2000, 3000], "width": 1024, "epochs": 300, "recipe": ["adam", "srivastava"],
        "seeds": 120,  # 80% power at half a point at n_train=3000: a pilot of 10 seeds asks 119 (README: How many seeds)
    },
}

# ------------------------------------------------------------------ trial


def _dataset(config: dict):
    # A seed redraws the split and the training subset too: the claim is about generalization, not about one sample.
    return load_dataset(config["data"], n_train=config["n_train"], split_seed=config["seed"], **sized_for(config["data"], config["n_train"]))


def _with_val_error(logger: Callable | None) -> Callable | None:
    """A trial logger that also logs the validation error, ``1 - val_accuracy``, wherever that is logged."""
    return None if logger is None else lambda logs, step: logger({**logs, "val_error": 1.0 - logs["val_accuracy"]} if "val_accuracy" in logs else logs, step)


def _optimizer(config: dict):
    from ablations.engine.train.members import MemberOptimizer

    if config["recipe"] == "srivastava":
        return MemberOptimizer("sgd", config["srivastava_learning_rate"], momentum=SRIVASTAVA_MOMENTUM)
    return MemberOptimizer("adam", config["learning_rate"])


def _max_norm(config: dict) -> float | None:  # Srivastava et al.'s max-norm comes with their recipe unless max_norm is set
    return config["max_norm"] or (SRIVASTAVA_MAX_NORM if config["recipe"] == "srivastava" else None)


def _train(configs: list[dict], loggers: Sequence[Callable] | None = None):
    """Trains a size's keep probabilities and seeds as members of one stack, each the net `fit_trial` would train
    alone (`fit_members`, tested weight for weight), early-stopped on the stopping split's error with its best weights
    restored (`heldout_half`). Only that split is scored every epoch (it resolves the epochs to converge)."""
    from ablations.engine.train.members import MemberStopping, fit_members, heldout_half, member_splits, pack_options, seeded_stack

    data = load_per_seed(configs, _dataset)
    arms = {name: [config[name] for config in configs] for name in ARMS}
    stack = seeded_stack(configs, data[0].input_shape[0], data[0].num_classes, **arms, max_norm=[_max_norm(c) for c in configs])
    fits = fit_members(
        stack,
        heldout_half(member_splits(data)),
        **pack_options(configs, score_every=SCORE_EVERY),
        optimizers=[_optimizer(config) for config in configs],
        stopping=[MemberStopping("val_accuracy", config["patience"]) for config in configs],
        loggers=None if loggers is None else [_with_val_error(logger) for logger in loggers],
    )
    return data, stack, fits


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains a pack of keep probabilities and seeds of one size and measures, per member: the training and held-out
    error of the restored net, the epochs it ran and the epoch it restored, the epochs to the common target
    (`curves.reference_levels`), to its own convergence and until the masks-on loss reaches ``target_loss``, and E[z]."""
    from ablations.engine.train import epochs_to_reach
    from models.dropout import expectation_check

    data, stack, fits = _train(configs, context.loggers)
    curves = [1.0 - np.asarray(fit.history["val_accuracy"]) for fit in fits.trials]
    # One target per seed, where its plain net converged: "iterations to converge" compares epochs to the same error.
    is_plain = [all(config[name] == value for name, value in PLAIN.items()) for config in configs]
    targets = reference_levels(curves, [config["seed"] for config in configs], is_plain, CONVERGED_FRACTION)
    results = []
    for member, (config, fit, val_errors) in enumerate(zip(configs, fits.trials, curves)):
        metrics = dict(fit.final)
        # The restored net, scored on the half of the validation split that neither stopping nor selection sees.
        metrics["heldout_error"] = metrics["final_heldout_error"]
        metrics["final_gap"] = metrics["final_heldout_error"] - metrics["final_train_error"]
        metrics["final_loss_gap"] = metrics["final_heldout_loss"] - metrics["final_train_loss"]
        metrics["epochs_run"] = float(fit.epochs_run)
        metrics["restored_epoch"] = float(fits.restored_epochs[member])
        metrics["epochs_to_converge"] = epochs_to_converge(val_errors, CONVERGED_FRACTION)
        metrics["epochs_to_common_target"] = epochs_to_level(val_errors, targets[member])
        metrics["epochs_to_target"] = epochs_to_reach(fit.history["loss"], config["target_loss"])
        # The member's net, its dropout layers drawing on from where its training left their streams.
        model = stack.member_model(member, dropout_step=fit.epochs_run * math.ceil(config["n_train"] / config["batch_size"]))
        metrics.update(expectation_check(model, data[member].x_val[:64], config["mask_samples"]))
        results.append(metrics)
    return results


# ------------------------------------------------------------------ verdict


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per size: held-out error lowered by keep 0.5, epochs to converge about doubled; and E[z] kept."""
    target = float(trials["target_loss"].iloc[0])
    error_checks, speed_checks, speed_notes, sizes = [], [], [], []
    for condition, settings, at in condition_groups(trials, PARAMS, exclude=ARMS, always=("n_train",)):
        n_train = int(settings["n_train"])
        if _paired(at, DROPPED).empty:
            continue
        plain = select(at, PLAIN)
        reading = regime(plain["final_train_error"].mean(), plain["heldout_error"].mean())
        on_target = epochs_ratios(at, "epochs_to_target", at["epochs"].max() + 1)
        target_text = ratio_text(on_target["ratio"], on_target["censored"])
        sizes.append(n_train)
        error_checks.append(_error_check(condition, n_train, at, reading))
        speed_checks.append(_speed_check(condition, at, reading, {f"masks-on loss to {target:g}: epochs ratio (not judged)": target_text}))
        speed_notes.append(f"{condition}: {target_text}")
    if not error_checks:
        return Verdict([], notes=f"The grid needs keep_prob {LECTURE_HIDDEN_KEEP:g} and 1.0 with input_keep_prob 1.0, for the same sizes and seeds.")
    expectation = _expectation_check(trials)
    checks = [*error_checks, *speed_checks, *([] if expectation is None else [expectation])]
    notes = f"Reported, not judged: epochs until the training loss with masks on reaches {target:g} nats, keep 0.5 over none ({'; '.join(speed_notes)})."
    # The headline: the largest training set, where the literature expects the gain.
    return Verdict(checks, headline=error_checks[int(np.argmax(sizes))], notes=notes)


def _paired(trials: pd.DataFrame, treated: Mapping[str, float], control: Mapping[str, float] = PLAIN) -> pd.DataFrame:
    """Each ``treated`` trial beside the ``control`` trial of its size and seed (the control's columns end in ``_control``)."""
    return beside_control(select(trials, treated), select(trials, control), PAIR)


def epochs_ratios(trials: pd.DataFrame, metric: str, never: str | float) -> pd.DataFrame:
    """Per (n_train, seed): ``metric``, epochs to a level, keep 0.5 over none (`censored_ratios`); a dropout net that never
    got there counts ``never``, a column (the epochs it ran) or a number: a lower bound."""
    pairs = _paired(trials, DROPPED)
    return censored_ratios(pairs[metric], pairs[f"{metric}_control"], pairs[never] if isinstance(never, str) else never)


def _error_check(condition: str, n_train: int, at: pd.DataFrame, reading: str) -> Check:
    """Held-out error without dropout minus with keep 0.5, paired by seed; a boundary below `REGIME_N_TRAIN`."""
    error, plain, dropped = _paired(at, DROPPED), select(at, PLAIN), select(at, DROPPED)
    gain = summarize(error["heldout_error_control"] - error["heldout_error"])
    details = {
        REGIME: reading,
        "held-out error, none / keep 0.5": f"{error['heldout_error_control'].mean():.3f} / {error['heldout_error'].mean():.3f}",
        "gap, none / keep 0.5": f"{plain['final_gap'].mean():.3f} / {dropped['final_gap'].mean():.3f}",
        **_lecture_input_keep(at),
        "best (keep, input keep) on validation": "{:g}, {:g}".format(*at.groupby(list(ARMS))["heldout_error"].mean().idxmin()),
    }
    role = "claim" if n_train >= REGIME_N_TRAIN else "boundary"
    return Check.above(condition, "held-out error lower with keep 0.5", gain, smallest=HALF_POINT_OF_ERROR, role=role, details=details)


def _speed_check(condition: str, at: pd.DataFrame, reading: str, reported: dict[str, str]) -> Check:
    """Epochs to the plain net's converged error, keep 0.5 over none, within `ABOUT_DOUBLE`; a lower bound when censored."""
    ratios, plain, dropped = epochs_ratios(at, "epochs_to_common_target", "epochs_run"), select(at, PLAIN), select(at, DROPPED)
    censored = bool(ratios["censored"].any())
    details = {
        REGIME: reading,
        "epochs to the plain net's converged error, none / keep 0.5": f"{ratios['control'].mean():.1f} / {'≥ ' if censored else ''}{ratios['treated'].mean():.1f}",
        "epochs to its own convergence, none / keep 0.5 (not judged)": f"{plain['epochs_to_converge'].mean():.1f} / {dropped['epochs_to_converge'].mean():.1f}",
        **reported,
    }
    return Check.within(
        condition, "epochs to converge about double", summarize(ratios["ratio"]), *ABOUT_DOUBLE,
        smallest=SLOWER, null=1.0, spec=".2f", lower_bound=censored, details=details,
    )


def _expectation_check(trials: pd.DataFrame) -> Check | None:
    """E[z] unchanged, over every trained net with dropout; None without one."""
    with_dropout = trials[trials["keep_prob"].lt(1) | trials["input_keep_prob"].lt(1)]
    ratios = with_dropout["expectation_rms_ratio"].dropna()
    if ratios.empty:
        return None
    unscaled = {"z without the 1/keep rescale, off by": f"{with_dropout['unscaled_relative_deviation'].mean():.0%}"}
    part = "mask-averaged z matches z (RMS deviation in Monte Carlo standard errors)"
    # Inverted dropout keeps E[z] by construction: the check guards the layer's code, it is no evidence for the claim.
    return Check.below("every trained net with dropout", part, summarize(ratios), EXPECTATION_TOLERANCE, role="sanity", spec=".2f", details=unscaled)


def _lecture_input_keep(trials: pd.DataFrame) -> dict[str, str]:
    """The lecture's input keep 0.8 against 1.0 under hidden keep 0.5, when the grid has it (reported, not judged)."""
    pairs = _paired(trials, LECTURE, DROPPED)
    if pairs.empty:
        return {}
    change = summarize(pairs["heldout_error"] - pairs["heldout_error_control"])
    return {f"input keep {LECTURE_INPUT_KEEP:g} vs 1: held-out error change (not judged)": f"{change.mean:+.3f}"}


# ------------------------------------------------------------------ figures


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Held-out error and gap against keep probability per training size; learning curves at the largest size."""
    return {"error_and_gap_vs_keep": _error_plot(trials), "learning_curves": _curves(trials, client)}


def _error_plot(trials: pd.DataFrame) -> plt.Figure:
    metrics = [("heldout_error", "held-out error (restored net, half the validation split)"), ("final_gap", "generalization gap (val − train error)")]
    inputs_first = sorted(trials["input_keep_prob"].unique(), reverse=True)
    layout = PanelLayout("input_keep_prob", "n_train", "keep_prob", "hidden keep probability", panel_values=inputs_first, x_marks=[LECTURE_HIDDEN_KEEP])
    return mean_std_panels(
        trials, layout, metrics, title=lambda input_keep: f"input keep {input_keep:g}", label=lambda n_train: f"n_train={n_train}",
        suptitle="Dropout: held-out error and gap\n(mean ± std over seeds)", one_legend=True,
    )[0]


def _curves(trials: pd.DataFrame, client) -> plt.Figure:
    """The first seed's stopping-split error and masks-on training loss per arm, dotted where it converged or reached the target."""
    n_train, target = trials["n_train"].max(), float(trials["target_loss"].iloc[0])
    runs = trials[(trials["n_train"] == n_train) & (trials["seed"] == trials["seed"].min())]
    runs = runs.sort_values(["input_keep_prob", "keep_prob"], ascending=False)
    panels = [("val_error", "epochs_to_converge", False), ("loss", "epochs_to_target", True)]
    fig, axes = marked_histories(client, runs, panels, label=lambda run: f"keep {run['keep_prob']:g} / input {run['input_keep_prob']:g}")
    axes[0].set_title(f"validation error\ndotted: converged ({1 - CONVERGED_FRACTION:.0%} of its improvement)", fontsize=10)
    axes[1].axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    axes[1].set_title("training loss, masks on\ndotted: reaches the target", fontsize=10)
    for ax, ylabel in zip(axes, ["error", "cross-entropy"]):
        ax.set(xlabel="epoch", yscale="log", ylabel=ylabel)
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
    claim="Inverted dropout (drop, then scale survivors by 1/keep) keeps expected activations; keep 0.5 for hidden "
    "units, 0.8 for inputs; it reduces overfitting and about doubles the iterations needed to converge.",
    params=PARAMS, profiles=PROFILES, run=run, verdict=verdict, figures=figures, test=test, reference=REFERENCE,
    # A size's keep probabilities and seeds train as members of one stack.
    pack_key=pack_all_but(*ARMS, "seed"),
    objective="final_val_loss",
    # The training-set size is the problem, not a setting to select: keep probabilities are selected and tested per size.
    select_within=("data", "n_train"),
)
