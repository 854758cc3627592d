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

What is measured, per trial (an MLP with `models.InvertedDropout` after every
hidden layer and optionally on the inputs): the training and held-out
(validation) error of the trained net in inference mode and their difference,
the generalization gap; the epochs until the training loss, as the optimizer
sees it (masks on), first reaches ``target_loss``; and, on the trained net, the
mean of the next layer's z over many dropout masks against z without dropout.

The verdict judges three parts, a priori:

1. expectation: the mask-averaged z matches the inference z to within its
   Monte Carlo error (RMS deviation / MC standard error <= 1.5, where pure
   noise gives about 1) for every trial with dropout; without the 1/keep
   rescale z would shrink by the factor keep, which is shown alongside;
2. overfitting: hidden keep 0.5 (input keep 1.0, Ng's advice) against no
   dropout, paired by seed, pooled over training-set sizes: lower held-out
   error, with a 95% interval above 0 (per size in the table);
3. iterations: the ratio of epochs to reach ``target_loss`` (keep 0.5 over no
   dropout) lies in [1.5, 3] ("about doubles"); a net that never reaches the
   target counts as ``epochs + 1``, a lower bound.

The lecture's 0.8 input keep (against Ng's 1.0) and the keep that validation
selects at each size are reported, not judged: the lecture gives both input
values.

What to expect on MNIST-1D (quick: an MLP of two 256-unit layers, 100 epochs,
200 / 400 / 800 examples, two seeds): the expectation check holds to Monte Carlo
error (ratio at most about 1.06; without the rescale z would be off by 1 - keep).
Hidden keep 0.5 shrinks the generalization gap (by 0.03 to 0.12) but lowers the
held-out error only at 800 examples (by about 0.02) and not at 200 or 400, so
the pooled interval includes 0: inconclusive. It slows training far more than
"about double": its training loss (masks on) does not reach 1.0 nat in 100
epochs, which the plain net does in about 9 (at least x10; keep 0.8, in the
full grid, about x2.4). Input keep 0.8 raises the held-out error of these
40-sample signals by 0.01 to 0.05. Verdict: not reproduced, because of the
iterations; the summary gives each part.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset
from ablations.engine.effects import effect_status, interval, mean_ci, mean_sd, outcome_of_parts
from ablations.engine.plots import mean_std_panels, plot_history
from ablations.engine.protocol import score_test_split, with_gaps
from ablations.engine.spec import Ablation, Param, Verdict, one_by_one, pack_all_but
from ablations.engine.stats import summarize

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import keras

LECTURE_HIDDEN_KEEP = 0.5
LECTURE_INPUT_KEEP = 0.8
ABOUT_DOUBLE = (1.5, 3.0)
"""Epoch ratios read as "about doubles" (decided before any run)."""
SCORE_EVERY = 4
"""Epochs between scorings of the training and validation splits (and MLflow writes)."""
EXPECTATION_TOLERANCE = 1.5
"""RMS deviation of the mask-averaged z, in Monte Carlo standard errors, still read as "unchanged"."""

PARAMS = {
    "data": params.data("mnist1d"),
    "keep_prob": Param(0.5, "keep probability of every hidden unit (1 = no dropout)", low=0.05, high=1.0),
    "input_keep_prob": Param(1.0, "keep probability of every input feature (1 = no input dropout)", low=0.05, high=1.0),
    "n_train": params.n_train(1000),
    "depth": params.depth(2),
    "width": params.width(256),
    "epochs": params.epochs(100),
    "batch_size": params.batch_size(100),
    "learning_rate": params.learning_rate(1e-3),
    "target_loss": Param(1.0, "training loss (masks on, as optimized) that counts as converged", low=0.0, high=100.0),
    "mask_samples": Param(100, "dropout masks averaged in the expectation check", low=2, high=100_000),
}

PROFILES = {
    "smoke": {
        "data": "digits",
        "keep_prob": [0.5, 1.0],
        "n_train": [100, 200],
        "width": 32,
        "epochs": 4,
        "target_loss": 2.0,
        "mask_samples": 20,
        "seeds": 1,
    },
    # The lecture's values only (hidden 0.5, inputs 0.8, against none); the
    # full profile sweeps the keep probability.
    "quick": {
        "keep_prob": [0.5, 1.0],
        "input_keep_prob": [0.8, 1.0],
        "n_train": [200, 400, 800],
        "seeds": 2,
    },
    "full": {
        "keep_prob": [0.3, 0.5, 0.65, 0.8, 1.0],
        "input_keep_prob": [0.8, 1.0],
        "n_train": [250, 500, 1000, 2000, 3000],
        "epochs": 300,
        "seeds": 5,
    },
}


def _dataset(config: dict):
    # MNIST-1D keeps 60% of its samples for training here; generate enough.
    options = {"num_samples": max(5000, math.ceil(config["n_train"] / 0.6) + 10)} if config["data"] == "mnist1d" else {}
    return load_dataset(config["data"], n_train=config["n_train"], **options)


def _train(config: dict, logger=None):
    import keras

    from ablations.engine.train import fit_trial
    from models import build_mlp

    data = _dataset(config)
    keras.utils.set_random_seed(config["seed"])
    model = build_mlp(
        data.input_shape,
        data.num_classes,
        **params.mlp_options(config),
        activation="relu",
        kernel_initializer="he_normal",
        keep_prob=config["keep_prob"],
        input_keep_prob=config["input_keep_prob"],
    )
    # Every epoch's running loss is kept for epochs_to_target; scoring the
    # splits (and writing to MLflow) every few epochs saves a third of the time.
    fit = fit_trial(
        model, data.x_train, data.y_train, data.x_val, data.y_val, **params.fit_options(config), logger=logger, score_every=SCORE_EVERY
    )
    return model, fit, data


def trial(config: dict, log) -> dict[str, float]:
    """Trains one MLP with the configuration's keep probabilities and measures gap, speed and E[z]."""
    from ablations.engine.train import epochs_to_reach

    model, fit, data = _train(config, log)
    metrics = with_gaps(fit.final)
    metrics["epochs_to_target"] = epochs_to_reach(fit.history["loss"], config["target_loss"])
    # The training split is scored every SCORE_EVERY epochs, so this one is a multiple of it.
    metrics["epochs_to_target_clean"] = epochs_to_reach(fit.history["train_loss"], config["target_loss"])
    metrics.update(expectation_check(model, data.x_val[:64], config["mask_samples"]))
    return metrics


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


def _arm(trials: pd.DataFrame, keep: float, input_keep: float) -> pd.DataFrame:
    return trials[np.isclose(trials["keep_prob"], keep) & np.isclose(trials["input_keep_prob"], input_keep)]


def paired(trials: pd.DataFrame, treated: tuple[float, float], control: tuple[float, float], value) -> pd.DataFrame:
    """Per (n_train, seed): ``value(control) - value(treated)`` and both values.

    ``value`` maps a frame of trials to a Series (a column name works too).
    """
    get = (lambda frame: frame[value]) if isinstance(value, str) else value
    a, b = _arm(trials, *treated).copy(), _arm(trials, *control).copy()
    a["value"], b["value"] = get(a).astype(float), get(b).astype(float)
    merged = a[["n_train", "seed", "value"]].merge(b[["n_train", "seed", "value"]], on=["n_train", "seed"], suffixes=("_treated", "_control"))
    merged["difference"] = merged["value_control"] - merged["value_treated"]
    return merged


def iterations_status(ratio, lower_bound: bool) -> str:
    """Status of "about doubles" from a `Summary` of epoch ratios.

    reproduced: the mean ratio is in `ABOUT_DOUBLE` and its interval above 1;
    not reproduced: the mean is outside the band (for a lower bound, when even
    the bound is above it); inconclusive otherwise. ``lower_bound`` says that
    some dropout net never reached the target, so the ratio is at least this.
    """
    low, high = ABOUT_DOUBLE
    if ratio.n == 0:
        return "inconclusive"
    if ratio.mean > high or (ratio.mean < low and not lower_bound):
        return "not reproduced"
    if lower_bound:
        return "inconclusive"
    return "reproduced" if ratio.mean >= low and (ratio.n == 1 or ratio.low > 1) else "inconclusive"


def epoch_ratios(trials: pd.DataFrame, treated: tuple[float, float]) -> pd.DataFrame:
    """Per (n_train, seed): epochs to target of ``treated`` over those of no dropout.

    A ratio needs the no-dropout net to reach the target; a treated net that
    never does counts as ``epochs + 1``, and its ratio is flagged ``censored``
    (a lower bound).
    """
    epochs = paired(trials, treated, (1.0, 1.0), "epochs_to_target")
    epochs = epochs[epochs["value_control"].notna()].copy()
    epochs["censored"] = epochs["value_treated"].isna()
    epochs["ratio"] = epochs["value_treated"].fillna(trials["epochs"].max() + 1) / epochs["value_control"]
    return epochs


def verdict(trials: pd.DataFrame) -> Verdict:
    """Expectation kept, held-out error lowered by keep 0.5, epochs to target about doubled."""
    dropout, none = (LECTURE_HIDDEN_KEEP, 1.0), (1.0, 1.0)
    error = paired(trials, dropout, none, "final_val_error")
    if error.empty:
        return Verdict("inconclusive", "The grid needs keep_prob 0.5 and 1.0 with input_keep_prob 1.0.", "held-out error reduction", math.nan, math.nan)
    gap = paired(trials, dropout, none, "final_gap")
    epochs = epoch_ratios(trials, dropout)

    table, parts = [], {}
    expectation = trials[trials["keep_prob"].lt(1) | trials["input_keep_prob"].lt(1)]["expectation_rms_ratio"].dropna()
    if len(expectation):
        parts["expectation"] = "reproduced" if float(expectation.max()) <= EXPECTATION_TOLERANCE else "not reproduced"
        unscaled = trials["unscaled_relative_deviation"].dropna()
        expectation_text = (
            f"mask-averaged z within {float(expectation.max()):.2f} Monte Carlo standard errors of z "
            f"(without the 1/keep rescale it would be off by {float(unscaled.mean()):.0%})"
        )
    else:
        parts["expectation"] = "inconclusive"
        expectation_text = "no trial with dropout"

    mild = epoch_ratios(trials, (0.8, 1.0))
    for n_train in sorted(error["n_train"].unique()):
        e = summarize(error.loc[error["n_train"] == n_train, "difference"])
        g = summarize(gap.loc[gap["n_train"] == n_train, "difference"])
        r, m = epochs[epochs["n_train"] == n_train], mild[mild["n_train"] == n_train]
        lecture = paired(trials[trials["n_train"] == n_train], (LECTURE_HIDDEN_KEEP, LECTURE_INPUT_KEEP), dropout, "final_val_error")
        sizes = trials[trials["n_train"] == n_train]
        best = sizes.groupby(["keep_prob", "input_keep_prob"])["final_val_error"].mean().idxmin()
        table.append(
            {
                "n_train": int(n_train),
                "held-out error, no dropout": f"{summarize(error.loc[error['n_train'] == n_train, 'value_control']).mean:.3f}",
                f"held-out error, keep {LECTURE_HIDDEN_KEEP:g}": f"{summarize(error.loc[error['n_train'] == n_train, 'value_treated']).mean:.3f}",
                "error reduction": mean_ci(e, "+.3f"),
                "gap reduction": f"{g.mean:+.3f}",
                f"epochs ratio, keep {LECTURE_HIDDEN_KEEP:g}": _ratio_text(r["ratio"], r["censored"]),
                "epochs ratio, keep 0.8": _ratio_text(m["ratio"], m["censored"]),
                "input keep 0.8 vs 1.0: error change": f"{-summarize(lecture['difference']).mean:+.3f}" if len(lecture) else "n/a",
                "best (keep, input keep) on validation": f"{best[0]:g}, {best[1]:g}",
            }
        )
    pooled_error = summarize(error["difference"])
    parts["overfitting"] = effect_status(pooled_error)
    helps = [int(n) for n in sorted(error["n_train"].unique()) if error.loc[error["n_train"] == n, "difference"].mean() > 0]
    fails = [int(n) for n in sorted(error["n_train"].unique()) if int(n) not in helps]

    ratio = summarize(epochs["ratio"])
    lower_bound = bool(epochs["censored"].any())
    parts["iterations"] = iterations_status(ratio, lower_bound)
    target = f"{trials['target_loss'].iloc[0]:g}"
    if ratio.n:
        iterations_text = (
            f"epochs to reach training loss {target} grow {'at least ' if lower_bound else ''}x{ratio.mean:.2f} "
            f"(CI {interval(ratio, '.2f')}; 'about doubles' is {ABOUT_DOUBLE[0]:g} to {ABOUT_DOUBLE[1]:g})"
        )
        if len(mild):
            iterations_text += f"; at keep 0.8 {'at least ' if mild['censored'].any() else ''}x{mild['ratio'].mean():.2f}"
    else:
        iterations_text = f"the net without dropout never reached training loss {target}, so there is no ratio"
    pooled_gap = summarize(gap["difference"])

    lecture_input = paired(trials, (LECTURE_HIDDEN_KEEP, LECTURE_INPUT_KEEP), dropout, "final_val_error")
    input_change = summarize(-lecture_input["difference"]) if len(lecture_input) else None
    error_change = -pooled_error
    summary = (
        f"Expectation: {parts['expectation']} ({expectation_text}). "
        f"Overfitting: {parts['overfitting']}: hidden keep 0.5 changes the held-out (validation) error by "
        f"{error_change.mean:+.3f} (95% CI {interval(error_change, '+.3f')}, pooled over sizes"
        + (f"; it does not help at n_train={', '.join(map(str, fails))}" if fails else "")
        + f") and the generalization gap by {-pooled_gap.mean:+.3f}. Iterations: {parts['iterations']}: {iterations_text}."
        + (
            f" Input keep 0.8 on top changes the held-out error by {input_change.mean:+.3f} (reported, not judged)."
            if input_change is not None and input_change.n
            else ""
        )
    )
    return Verdict(
        outcome_of_parts(parts.values()),
        summary,
        "held-out error reduction, keep 0.5 vs none (pooled over n_train)",
        pooled_error.mean,
        pooled_error.std,
        table,
    )


def _ratio_text(ratios: pd.Series, censored: pd.Series) -> str:
    if ratios.empty:
        return "n/a"
    return f"{'≥' if censored.any() else ''}x{mean_sd(summarize(ratios), '.2f', '.2f')}"


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Held-out error and gap against keep probability per training size; learning curves at one size."""
    return {"error_and_gap_vs_keep": _error_plot(trials), "training_loss_curves": _curves(trials, client)}


def _error_plot(trials: pd.DataFrame) -> plt.Figure:
    fig, _ = mean_std_panels(
        trials,
        panels="input_keep_prob",
        panel_values=sorted(trials["input_keep_prob"].unique(), reverse=True),
        lines="n_train",
        x="keep_prob",
        metrics=[("final_val_error", "held-out (validation) error"), ("final_gap", "generalization gap (val − train error)")],
        xlabel="hidden keep probability",
        title=lambda input_keep: f"input keep {input_keep:g}",
        label=lambda n_train: f"n_train={n_train}",
        suptitle="Dropout: held-out error and generalization gap (mean ± std over seeds)",
        x_marks=[LECTURE_HIDDEN_KEEP],
        one_legend=True,
    )
    return fig


def _curves(trials: pd.DataFrame, client) -> plt.Figure:
    n_train = trials["n_train"].max()
    sub = trials[(trials["n_train"] == n_train) & (trials["seed"] == trials["seed"].min())]
    target = float(trials["target_loss"].iloc[0])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, constrained_layout=True)
    for _, arm in sub.sort_values(["input_keep_prob", "keep_prob"], ascending=False).iterrows():
        label = f"keep {arm['keep_prob']:g} / input {arm['input_keep_prob']:g}"
        for ax, metric in zip(axes, ("loss", "val_loss")):
            line = plot_history(ax, client, arm["run_id"], metric, finite_only=True, label=label)
            if metric == "loss" and math.isfinite(arm["epochs_to_target"]):
                ax.axvline(arm["epochs_to_target"], color=line.get_color(), ls=":", lw=1)
    axes[0].axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    axes[0].set_title("training loss (masks on); dotted: epoch it reaches the target")
    axes[1].set_title("held-out (validation) loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    axes[0].set_ylabel("cross-entropy")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Learning curves at n_train={n_train} (first seed)")
    return fig


def test(config: dict, guard) -> dict[str, float]:
    """Retrains the keep probabilities selected on validation at one training-set size; scores the test split once."""
    model, _, data = _train(config)
    return score_test_split(guard, model, data.x_test, data.y_test)


ABLATION = Ablation(
    name="dropout",
    claim=(
        "Inverted dropout (drop, then scale survivors by 1/keep) keeps expected activations; keep 0.5 for hidden "
        "units, 0.8 for inputs; it reduces overfitting and about doubles the iterations needed to converge."
    ),
    params=PARAMS,
    profiles=PROFILES,
    run=one_by_one(trial),
    verdict=verdict,
    figures=figures,
    pack_key=pack_all_but("keep_prob", "input_keep_prob"),
    objective="final_val_loss",
    test=test,
    # The training-set size is the problem, not a setting to select: the keep
    # probabilities are selected on validation, and tested once, per size.
    select_within=("data", "n_train"),
)
