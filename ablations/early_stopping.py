"""Early stopping: stop when the validation error rises, and keep the best weights.

The lecture's claim: split the training data into a training and a validation
set, train on the first only, watch the error on the second, stop as soon as it
rises and keep the weights the net had before ("use os pesos que a rede tinha na
etapa anterior"). Against overlong training, that should leave a net that does
better on unseen data, and in fewer epochs.

Run it:

    ablate run early_stopping --profile quick

Each trial trains an over-parameterized MLP on little data for many epochs.
``stop_fraction`` of the training examples is set aside as the stopping split
(Keras's ``val_*``); the suite's validation split, which no arm sees, judges
them (``final_val_*``, per epoch ``heldout_*``), so a stop does not flatter
its own score. ``label_noise`` replaces that fraction of the training labels
(stopping split included; held-out and test labels stay clean) by random
classes, redrawn per seed with the split: the classic setting where a net
first learns the signal and later memorizes noise. The grid axis ``stopping``:
``none`` trains every epoch (the overlong arm); ``lecture`` is the lecture's
rule (`LECTURE_RULE`); ``patience_K`` is Keras's ``EarlyStopping(patience=K,
restore_best_weights=True)``, a further condition. Rules watch the error
(``monitor=val_accuracy``), as the lecture does; under ``val_loss`` the
cross-entropy of noisy labels can bottom out at epoch 1 or 2 while the error
still falls.

The verdict (fixed before any run) judges the lecture's rule per condition
(data, label noise, monitor): held-out error after overlong training minus
after the rule's restored weights, paired by seed, above 0. Label noise
below `NOISY_LABELS` is a boundary condition and each ``patience_K`` rule an
extension: judged and shown, never deciding. Each row also reads the
overlong arm's regime, how far its held-out error rose above its minimum
(the premise), the epochs saved, what restoring adds over the weights at
the stop, and the regret: the restored net's held-out error minus the
overlong run's lowest, the epoch one would pick in hindsight.

What to expect: with noisy labels the overlong arm's held-out error falls
for a few epochs, then climbs well above its minimum as it memorizes the
noise; the rules stop early and restore a clearly better net, saving most
epochs. With clean labels the held-out error hardly rises: stopping saves
epochs, not accuracy, so the claim is not expected to hold there. A rule
that stops at a noisy bump before the minimum pays for it in regret.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset, load_per_seed
from ablations.engine.effects import beside_control, grid_conditions, select
from ablations.engine.plots import metric_history, panel_grid, plot_history
from ablations.engine.protocol import score_test_split
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import HALF_POINT_OF_ERROR, REGIME, Check, Verdict, regime

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

NO_STOPPING = "none"
LECTURE_RULE = "lecture"
"""The lecture's rule: the stopping split's error looked at every `LECTURE_EVERY` epochs, stop at its first rise (a tie
goes on), keep the weights of the look before ("use os pesos que a rede tinha na etapa anterior")."""
LECTURE_EVERY = 5
PATIENCES = (1, 2, 5, 10, 20, 50)
STOPPING_RULES = (NO_STOPPING, LECTURE_RULE, *(f"patience_{k}" for k in PATIENCES))
CONDITIONS = ("data", "label_noise", "monitor")
"""Settings whose values are separate problems: each stopping rule is judged against overlong training per condition."""
LABEL_NOISE_SEED = 12345
"""With the trial's seed, picks the corrupted labels: the arms of a seed share them, and each seed draws anew."""
NOISY_LABELS = 0.1
"""Below this label noise a condition is a boundary: declared before the run, reported, never deciding. With clean
labels the overlong net's held-out error hardly rises after its minimum (there is little to memorize but the
signal), so the literature expects no gain from stopping there (Prechelt, 1998: gains come with overfitting)."""

PARAMS = {
    "data": params.data("digits"),
    "stopping": Param(LECTURE_RULE, "none (train every epoch), lecture (first rise of the stopping split's error, looked at every 5 epochs), "
                      "or patience_K (Keras: K epochs without improvement)", choices=STOPPING_RULES),
    "monitor": Param("val_accuracy", "what EarlyStopping watches on the stopping split", choices=("val_accuracy", "val_loss")),
    "label_noise": Param(0.0, "fraction of training labels replaced by a random class", low=0.0, high=0.9),
    "n_train": params.n_train(500, low=20, help="training examples, stopping split included"),
    "stop_fraction": Param(0.2, "fraction of the training examples held out as the stopping split", low=0.05, high=0.5),
    "depth": params.depth(3),
    "width": params.width(256),
    "epochs": Param(150, "epochs of the overlong run (the most any trial trains)", low=2, high=100_000),
    "batch_size": params.batch_size(50),
    "learning_rate": params.learning_rate(1e-3),
}

PROFILES = {
    "smoke": {"stopping": [NO_STOPPING, LECTURE_RULE], "n_train": 100, "width": 32, "depth": 2, "epochs": 12, "seeds": 1},
    # 10 seeds, packed: at 3 the 95% interval's lower end sat at 0, so float32 rounding in the 150-epoch overlong
    # runs (which packing changed) moved the verdict between inconclusive and reproduced; at 10 the one-model-per-trial
    # and packed runs agree (+0.092 and +0.091, both reproduced).
    "quick": {"stopping": [NO_STOPPING, LECTURE_RULE, "patience_1", "patience_5", "patience_20"], "label_noise": [0.0, 0.3], "seeds": 10},
    # 280 seeds: 80% power at half a point of error, as the pilot's seed-to-seed spread at 30% noise (sd 0.03) needs 277
    # (README: How many seeds).
    "full": {"data": ["digits", "mnist1d"], "stopping": list(STOPPING_RULES), "label_noise": [0.0, 0.1, 0.3], "epochs": 500, "seeds": 280},
}


def noisy_labels(y: np.ndarray, fraction: float, num_classes: int, seed: int | tuple[int, ...] = LABEL_NOISE_SEED) -> np.ndarray:
    """A copy of ``y`` where a ``fraction`` of the entries (exactly rounded) get a uniformly random class.

    A replaced label may draw its own class again, so about ``fraction * (1 -
    1/num_classes)`` of the labels end up wrong.
    """
    rng = np.random.default_rng(seed)
    noisy = np.array(y, copy=True)
    chosen = rng.permutation(len(y))[: round(fraction * len(y))]
    noisy[chosen] = rng.integers(0, num_classes, len(chosen))
    return noisy


def _data(config: dict):
    # A seed redraws the split and the noisy labels too: the claim is about generalization, not about one sample.
    data = load_dataset(config["data"], n_train=config["n_train"], split_seed=config["seed"])
    y = noisy_labels(data.y_train, config["label_noise"], data.num_classes, seed=(LABEL_NOISE_SEED, config["seed"]))
    # The training subset is class-balanced in every prefix, so its last stop_fraction is a balanced stopping split.
    n_fit = len(y) - max(1, round(config["stop_fraction"] * len(y)))
    return data, (data.x_train[:n_fit], y[:n_fit]), (data.x_train[n_fit:], y[n_fit:])


def stopping_rule(config: dict):
    """The configuration's `MemberStopping` (None: no stopping), watching its ``monitor`` on the stopping split."""
    from ablations.engine.train.members import MemberStopping

    rule = config["stopping"]
    if rule == NO_STOPPING:
        return None
    if rule == LECTURE_RULE:
        return MemberStopping(config["monitor"], 1, every=LECTURE_EVERY, rise_only=True)
    return MemberStopping(config["monitor"], int(rule.removeprefix("patience_")))


def _train(configs: list[dict], loggers=None):
    """Trains the configurations (stopping rules and seeds of one condition) as members of one stack.

    Each member is the net `fit_trial` would train alone (`fit_members`): its
    seed's split, noisy labels, initial weights and batch order, Adam, and its
    stopping rule (`stopping_rule`); a member that stopped leaves the pack.
    """
    from ablations.engine.train.members import MemberOptimizer, fit_members, pack_options, seeded_stack

    data = load_per_seed(configs, _data)
    stack = seeded_stack(configs, data[0][0].input_shape[0], data[0][0].num_classes)
    stopping = [stopping_rule(config) for config in configs]

    def stacked(pick) -> tuple[np.ndarray, np.ndarray]:
        return tuple(np.stack(arrays) for arrays in zip(*(pick(member) for member in data)))

    # The stopping split plays Keras' validation data; the suite's validation split, which
    # neither arm sees, is scored alongside as "heldout".
    splits = {
        "train": stacked(lambda member: member[1]),
        "val": stacked(lambda member: member[2]),
        "heldout": stacked(lambda member: (member[0].x_val, member[0].y_val)),
    }
    optimizers = [MemberOptimizer("adam", config["learning_rate"]) for config in configs]
    fits = fit_members(stack, splits, **pack_options(configs), optimizers=optimizers, stopping=stopping, loggers=loggers)
    return data, stack, fits


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains a pack with and without early stopping; scores the held-out split at the stop and at the restored epoch."""
    _, _, fits = _train(configs, context.loggers)
    return [stop_metrics(fit, restored, config["epochs"]) for fit, restored, config in zip(fits.trials, fits.restored_epochs, configs)]


def stop_metrics(fit, restored_epoch: int | None, epochs: int) -> dict[str, float]:
    """Stop and restored epochs, held-out error and loss at both, epochs saved, from a `TrialFit`.

    Epochs count from 1 (the state after that many epochs; history index =
    epoch). Without a stopper (``restored_epoch`` None) the restored epoch is
    the last one. ``final_val_*`` are the held-out split's (the returned
    weights'); the stopping split's are ``final_stop_*``.
    """
    final, stop_epoch = fit.final, fit.epochs_run
    restored_epoch = stop_epoch if restored_epoch is None else restored_epoch
    heldout_error = 1.0 - np.asarray(fit.history["heldout_accuracy"])
    trained = heldout_error[1 : stop_epoch + 1]
    return {
        **{name: final[name] for name in ("final_loss", "final_train_loss", "final_accuracy", "final_train_error")},
        **{f"final_val_{name}": final[f"final_heldout_{name}"] for name in ("loss", "accuracy", "error")},
        "final_stop_loss": final["final_val_loss"],
        "final_stop_accuracy": final["final_val_accuracy"],
        "stop_epoch": float(stop_epoch),
        "restored_epoch": float(restored_epoch),
        "epochs_saved": float(epochs - stop_epoch),
        "heldout_error_at_stop": float(heldout_error[stop_epoch]),
        "heldout_loss_at_stop": float(fit.history["heldout_loss"][stop_epoch]),
        "heldout_error_restored": final["final_heldout_error"],
        "heldout_loss_restored": final["final_heldout_loss"],
        "min_heldout_error": float(np.nanmin(trained)),
        "min_heldout_error_epoch": float(np.nanargmin(trained) + 1),
    }


def paired_with_no_stopping(trials: pd.DataFrame) -> pd.DataFrame:
    """Every stopped trial beside the overlong trial of its condition and seed (its columns suffixed ``_overlong``).

    Adds ``error_gain`` (held-out error overlong − restored), ``loss_gain``
    (the same for held-out loss), ``restore_gain`` (error at the stop −
    restored) and ``regret`` (restored − the overlong run's lowest held-out
    error: the epoch one would pick in hindsight).
    """
    on = [*(c for c in CONDITIONS if c in trials), "seed"]
    overlong = select(trials, {"stopping": NO_STOPPING})[[*on, "final_val_error", "final_val_loss", "min_heldout_error"]]
    stopped = beside_control(trials[trials["stopping"] != NO_STOPPING], overlong, on, suffixes=("", "_overlong"))
    stopped["error_gain"] = stopped["final_val_error_overlong"] - stopped["heldout_error_restored"]
    stopped["loss_gain"] = stopped["final_val_loss_overlong"] - stopped["heldout_loss_restored"]
    stopped["restore_gain"] = stopped["heldout_error_at_stop"] - stopped["heldout_error_restored"]
    stopped["regret"] = stopped["heldout_error_restored"] - stopped["min_heldout_error_overlong"]
    return stopped


def _conditions(trials: pd.DataFrame) -> list[str]:
    """The settings of `CONDITIONS` that vary in the grid (label noise when none does): each value is its own regime."""
    return grid_conditions(trials, CONDITIONS) or ["label_noise"]


def _label(conditions: list[str], key: tuple) -> str:
    """A condition as the rows and panels name it: "name=value, ..."."""
    return ", ".join(f"{c}={v}" for c, v in zip(conditions, key))


def _rule_order(rule: str) -> tuple[int, int]:
    """The lecture's rule first, then patience values in increasing order."""
    return (0, 0) if rule == LECTURE_RULE else (1, int(rule.removeprefix("patience_")))


def _check(label: str, rule: str, group: pd.DataFrame, overlong: pd.DataFrame, epochs: int) -> Check:
    """One stopping rule in one condition: per seed, held-out error overlong − restored."""
    rise = summarize(overlong["final_val_error"] - overlong["min_heldout_error"])
    regret = summarize(group["regret"])
    details = {
        # The arm without the remedy: every epoch, means over seeds.
        REGIME: regime(float(overlong["final_train_error"].mean()), float(overlong["final_val_error"].mean())),
        "overlong rise above its minimum": f"{rise.mean:+.3f}",
        "epochs saved": f"{summarize(group['epochs_saved']).mean:.0f} of {epochs}",
        "restoring adds": f"{summarize(group['restore_gain']).mean:+.3f}",
        "regret (restored − best in hindsight)": f"{regret.mean:+.3f} [{regret.low:+.3f}, {regret.high:+.3f}]",
    }
    if rule == LECTURE_RULE:
        part = "held-out error, overlong − restored (lecture's rule)"
        role = "claim" if group["label_noise"].iloc[0] >= NOISY_LABELS else "boundary"
    else:
        part = f"held-out error, overlong − restored (Keras, {rule.replace('_', ' ')})"
        role = "extension"
    return Check.above(label, part, summarize(group["error_gain"]), smallest=HALF_POINT_OF_ERROR, role=role, details=details)


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per condition: held-out error after overlong training minus after each rule's restored weights, paired by seed."""
    pairs = paired_with_no_stopping(trials)
    if pairs.empty:
        return Verdict([], notes=f"The grid needs stopping={NO_STOPPING} and at least one stopping rule ({LECTURE_RULE}, patience_K).")
    conditions = _conditions(pairs)
    epochs = int(trials["epochs"].max())
    checks, headline = [], None
    for key, group in pairs.groupby(conditions):
        label = _label(conditions, key)
        overlong = select(trials, {"stopping": NO_STOPPING, **dict(zip(conditions, key))})
        for rule, arm in sorted(group.groupby("stopping"), key=lambda item: _rule_order(item[0])):
            checks.append(_check(label, rule, arm, overlong, epochs))
            # The headline: the lecture's rule where a net first learns the signal and then memorizes the noise.
            if rule == LECTURE_RULE and (headline is None or arm["label_noise"].iloc[0] > headline[0]):
                headline = (arm["label_noise"].iloc[0], checks[-1])
    notes = "Held-out error is the suite's validation split, which neither arm trains or stops on."
    if headline is None:
        notes += f" The grid has no stopping={LECTURE_RULE} arm: the lecture's rule is not judged, and nothing decides."
    return Verdict(checks, headline[1] if headline else None, notes)


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Learning curves of the overlong arm with each rule's stop (x) and restored (o) epoch marked."""
    conditions = _conditions(trials)
    groups = list(trials.groupby(conditions))
    fig, axes = panel_grid(2 * len(groups), (5.5, 3.5), columns=len(groups), sharex=True)
    seed = trials["seed"].min()
    for column, (key, group) in enumerate(groups):
        first = group[group["seed"] == seed]
        overlong = first[first["stopping"] == NO_STOPPING]
        top, bottom = axes[0][column], axes[1][column]
        if not overlong.empty:
            run_id = overlong["run_id"].iloc[0]
            for metric, style in (("heldout_accuracy", {"color": "black", "label": "held-out error, no stopping"}),
                                  ("val_accuracy", {"color": "gray", "ls": "--", "label": "stopping-split error (val_accuracy)"})):
                epochs, accuracy = metric_history(client, run_id, metric, start=1, finite_only=True)
                top.plot(epochs, [1 - value for value in accuracy], **style)
            plot_history(bottom, client, run_id, "val_loss", start=1, finite_only=True, color="black", label="stopping-split loss (val_loss)")
            plot_history(bottom, client, run_id, "train_loss", start=1, finite_only=True, color="gray", ls="--", label="training loss")
        rules = first[first["stopping"] != NO_STOPPING]
        for index, (_, stopped) in enumerate(sorted(rules.iterrows(), key=lambda row: _rule_order(row[1]["stopping"]))):
            color, rule = f"C{index}", stopped["stopping"]
            top.plot(stopped["stop_epoch"], stopped["heldout_error_at_stop"], "x", color=color, ms=9, mew=2, label=f"{rule}: stop")
            top.plot(stopped["restored_epoch"], stopped["heldout_error_restored"], "o", color=color, mfc="none", ms=9, mew=2, label=f"{rule}: restored")
            for ax in (top, bottom):
                ax.axvline(stopped["stop_epoch"], color=color, ls=":", lw=1)
        top.set(title=_label(conditions, key), ylabel="held-out (validation) error")
        bottom.set(ylabel="cross-entropy", yscale="log", xlabel="epoch")
        top.legend(fontsize=7)
        bottom.legend(fontsize=7)
    fig.suptitle(f"Early stopping: overlong learning curves, stop (x) and restored (o) epochs (seed {seed})")
    return {"learning_curves_with_stops": fig}


def test(config: dict, guard) -> dict[str, float]:
    """Retrains the configuration selected on validation (same data, stopping rule and seed) and scores the test split once."""
    from ablations.engine.train.members import scoring_model

    data, stack, _ = _train([config])
    return score_test_split(guard, scoring_model(stack, 0), data[0][0].x_test, data[0][0].y_test)


REFERENCE = Reference(
    citation="Prechelt (1998), Early Stopping - But When?, in Neural Networks: Tricks of the Trade, LNCS 1524",
    short="Prechelt 1998",
    where="abstract (the criteria tables were not read)",
    value='"slower stopping criteria allow for small improvements in generalization (here: about 4% on average), but cost much '
    'more training time (here: about factor 4 longer on average)": slow against fast stopping, not stopping against none',
    regime="Proben1, 12 problems, 24 architectures, 1,296 training runs, RPROP",
    here="digits, 400 training examples, 3x256, Adam, 150 epochs, label noise 0 and 0.3, the lecture's rule and patience 1-20 against none (full: also MNIST-1D, 500 epochs)",
    checked="read in the abstract (a copy of the chapter's text)",
)

ABLATION = Ablation(
    name="early_stopping",
    claim="Stop training when the validation error rises and keep the best weights: the restored net does better on unseen data "
    "than overlong training, in fewer epochs.",
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # A condition's stopping rules and seeds train as members of one stack.
    pack_key=pack_all_but("stopping", "seed"),
    objective="final_val_loss",
    test=test,
    # Noisy and clean labels are different problems: the stopping rule is selected on validation, and tested once, for each.
    select_within=("data", "label_noise"),
    reference=REFERENCE,
)
