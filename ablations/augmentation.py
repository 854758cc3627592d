"""Data augmentation: random label-preserving changes of the training data regularize.

The lecture's claim: among the ways to regularize (with L2, L1, dropout and
early stopping) is data augmentation: train on randomly transformed copies of
the examples (shifted, rotated, zoomed digits), so the net cannot memorize the
few it has. It should lower the held-out error, most of all when the training
set is small.

Run it:

    ablate run augmentation --profile quick

Each trial trains a small CNN (`models.build_cnn`) with or without a random
augmentation layer first (`models.augmentation.scaled_augmentation`); it is
active only in training, so validation and test data are seen unchanged. How
much they change an example is the grid axis ``strength``, defined relative
to the example's size (`STRENGTHS`, fixed before any run), so that one
strength is the same relative change on 28x28 MNIST digits (mnist5k: 5,000
real MNIST images), on scikit-learn's 8x8 digits and on MNIST-1D's 40-sample
signals:

- none: the examples as they are;
- mild: shifts of up to 5% of the side (1.4 pixels of a 28x28 digit, 0.4 of an
  8x8 one, 2 samples of a signal), rotations of up to 5°, zooms (signals:
  amplitude changes) of up to 5%, and signal noise of 0.025 std;
- strong, the usual MNIST augmentation: shifts of up to 10% of the side (2.8
  pixels of 28, 0.8 of 8, 4 samples), rotations of up to 15°, zooms of up to
  10%, and signal noise of 0.05 std.

Images are shifted, rotated and zoomed in one bilinear resampling
(`RandomAffine`), so on 8x8 digits every change is sub-pixel and partly a
blur (see the figure of augmented examples; a digit that fills its 8x8 frame
also loses its edges to a shift). Every trial takes the same number of
optimizer steps (``train_steps``), so small training sets are seen for more
epochs and no size is under-trained.

Logged per trial: training and held-out (validation) error in inference mode,
their difference (the generalization gap), and the losses. The verdict pairs
each augmented trial with the one without augmentation of the same data set,
size and seed. One check per data set and strength (mild, strong): "held-out
error lower than without augmentation", the paired difference (none minus the
strength) pooled over the training-set sizes, claimed above 0. Each check's
row gives the gain per size and whether the net without augmentation
overfits there (`verdict.regime`). The headline is mnist5k, strong: real 28x28
digits under the augmentation the claim speaks of. Whether the gain is
largest at the smallest size is reported in the notes, not judged (the
lecture does not say it).

What to expect: on mnist5k, where the CNN without augmentation overfits a few
hundred examples (no training error, well over twice as much held-out),
augmentation lowers the held-out error by several points, roughly a third to
a half of it, strong at least as much as mild and most at the smallest size.
On the 8x8 digits, already centred, size-normalized and filling their frame,
it changes the held-out error by about a point either way: mild a little
lower, strong no lower. Transformations sized for large images (a
whole-pixel shift, chained resamplings) and too few steps for the augmented
nets make it clearly worse there. On MNIST-1D (full profile), whose examples
differ by exactly such shifts, scalings and noise, it lowers the held-out
error by several points. The quick profile's 500 steps leave the augmented
nets short of their plateau (strong augmentation of the 8x8 digits most),
which counts against augmentation: its gains there are a lower bound.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset, load_per_seed
from ablations.engine.effects import beside_control, select
from ablations.engine.plots import PanelLayout, mean_std_panels
from ablations.engine.protocol import score_test_split, with_gaps
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import HALF_POINT_OF_ERROR, REGIME, Check, Verdict, regime

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.
if TYPE_CHECKING:
    import keras

SIGNAL_SETS = ("mnist1d",)
"""Data sets of 1-D signals; every other set, TFDS ones included, is images."""
DATA_SETS = ("mnist5k", "digits", "mnist1d")
"""The data sets, in the order the verdict lists them."""

STRENGTHS: dict[str, dict[str, float]] = {
    "none": {},
    "mild": {"shift": 0.05, "rotation": 5.0, "zoom": 0.05, "noise": 0.025},
    "strong": {"shift": 0.10, "rotation": 15.0, "zoom": 0.10, "noise": 0.05},
}
"""`models.AugmentationStrength` fields per strength: shift as a fraction of the side (or length), rotation in
degrees, zoom (signals: amplitude change) as a fraction, noise (signals only) in units of their std. "strong" is the
usual MNIST augmentation; "mild" is half of it in shift and zoom, a third in rotation."""
AUGMENTED = ("mild", "strong")
"""The strengths compared with "none", one check each per data set."""

HEADLINE = ("mnist5k", "strong")
"""The check a reader cites: real 28x28 digits under the augmentation the lecture speaks of (full MNIST from TFDS
takes its place where the grid has it)."""
PART = "held-out error lower than without augmentation"

SCORE_STEPS = 50
"""Optimizer steps between held-out scorings (and MLflow logging points): 10 in the quick profile's 500 steps. Fixed
in steps, not as a share of a trial, so that a dry run's shortened calibration packs score as often per step as the
real ones (runs of small sets have hundreds of short epochs)."""
DRAWS = 5
"""Augmented draws of one example per row of the examples figure."""

PARAMS = {
    "data": params.data("mnist5k", choices=DATA_SETS, help="data set: images (mnist5k 28x28, digits 8x8) or 1-D signals (mnist1d)"),
    "strength": Param("strong", "augmentation strength relative to the example's size (STRENGTHS)", choices=tuple(STRENGTHS)),
    "n_train": params.n_train(300, low=20),
    "train_steps": Param(400, "optimizer steps per trial, whatever the training-set size", low=1, high=10_000_000),
    "batch_size": params.batch_size(64),
    "learning_rate": params.learning_rate(1e-3),
    "conv_blocks": Param(2, "convolution + pooling blocks", low=0, high=6),
    "filters": Param(16, "filters of the first block (doubling per block)", low=1, high=1024),
    "dense_width": Param(64, "units of the dense layer", low=1, high=8192),
}

PROFILES = {
    "smoke": {"data": "digits", "strength": list(STRENGTHS), "n_train": 100, "train_steps": 20, "filters": 4, "dense_width": 16, "seeds": 1},
    # 500 steps keep the quick profile of all ten under 10 minutes on 2 cores; the augmented nets' held-out error
    # levels off only by about 1,000 (strong augmentation of 8x8 digits is still half-trained at 500), which the
    # full profile's 5,000 steps leave behind.
    "quick": {"data": ["mnist5k", "digits"], "strength": list(STRENGTHS), "n_train": [100, 300], "train_steps": 500, "seeds": 3},
    # Full MNIST's 28x28 digits where TFDS has them (``--download`` fetches them), else the bundled 5,000.
    # 80 seeds: the pilot's 79 for strong augmentation of digits (README: How many seeds).
    "full": {"data": [params.PreferTfds("tfds:mnist", "mnist5k"), "digits", "mnist1d"], "strength": list(STRENGTHS),
             "n_train": [50, 100, 300, 1000, 3000], "train_steps": 5000, "seeds": 80},
}


def _dataset(config: dict):
    # Images keep their [0, 1] pixels: the augmentation fills pixels moved in
    # from outside with 0, which is the background only before standardizing.
    # Signals are standardized (their augmentation pads with edge values).
    image = config["data"] not in SIGNAL_SETS
    # A seed redraws the split and the training subset too: the claim is about generalization, not about one sample.
    return load_dataset(config["data"], n_train=config["n_train"], image_shape=True, standardize=not image, split_seed=config["seed"])


def augmentation_layer(config: dict, input_shape: tuple[int, ...]) -> keras.layers.Layer | None:
    """The layer of the configuration's strength for inputs of ``input_shape``, or None for "none"."""
    from models.augmentation import AugmentationStrength, scaled_augmentation

    return scaled_augmentation(AugmentationStrength(**STRENGTHS[config["strength"]]), input_shape, seed=config["seed"])


def epochs_for(config: dict) -> int:
    """Epochs that make ``train_steps`` optimizer steps (at least one epoch)."""
    steps_per_epoch = math.ceil(config["n_train"] / config["batch_size"])
    return max(1, math.ceil(config["train_steps"] / steps_per_epoch))


def score_every(config: dict) -> int:
    """Epochs between held-out scorings: `SCORE_STEPS` optimizer steps, at least one epoch."""
    return max(1, round(SCORE_STEPS / math.ceil(config["n_train"] / config["batch_size"])))


def _train(configs: list[dict], loggers=None, convolution: str = "grouped"):
    """Trains the configurations (strengths and seeds of one data set and size) as members of one stacked CNN.

    Each member is the `models.build_cnn` net `fit_trial` would train alone
    (`fit_members`, tested weight for weight): its seed's split and training
    subset, initial weights and batch order, and its own augmentation layer,
    seeded as the lone net's, on each of its batches. ``convolution`` is
    `models.StackedCNN`'s (grouped, the faster on a CPU: ``make bench``).
    """
    from ablations.engine.train.members import MemberOptimizer, PackTraining, fit_members, member_splits
    from models.stacked_cnn import StackedCNN

    data, first, seeds = load_per_seed(configs, _dataset), configs[0], [config["seed"] for config in configs]
    architecture = {key: first[key] for key in ("conv_blocks", "filters", "dense_width")}
    stack = StackedCNN(data[0].input_shape, data[0].num_classes, seeds=seeds, **architecture, convolution=convolution)
    optimizers = [MemberOptimizer("adam", config["learning_rate"]) for config in configs]
    augmentations = [augmentation_layer(config, d.input_shape) for config, d in zip(configs, data)]
    training = PackTraining(epochs_for(first), first["batch_size"], score_every=score_every(first), every_epoch=())
    fits = fit_members(stack, member_splits(data), training=training, seeds=seeds, optimizers=optimizers, loggers=loggers, augmentations=augmentations)
    return data, stack, fits


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """Trains a pack of strengths and seeds; reports each member's training and held-out error and their gap."""
    _, _, fits = _train(configs, context.loggers)
    return [with_gaps(fit.final) for fit in fits.trials]


def paired_gains(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (data, strength, n_train, seed): the trial without augmentation against the one at ``strength``.

    ``error_gain`` and ``gap_gain`` are the held-out error and the gap without
    augmentation minus with it (positive: augmentation helps); the errors
    without it are kept as ``final_train_error_none`` and ``final_val_error_none``.
    """
    keys = ["data", "n_train", "seed"]
    columns = [*keys, "final_val_error", "final_train_error", "final_gap"]
    plain = select(trials, {"strength": "none"})[columns]
    pairs = pd.concat(
        [beside_control(plain, select(trials, {"strength": s})[columns], keys, suffixes=("_none", "_augmented")).assign(strength=s) for s in AUGMENTED],
        ignore_index=True,
    )
    pairs["error_gain"] = pairs["final_val_error_none"] - pairs["final_val_error_augmented"]
    pairs["gap_gain"] = pairs["final_gap_none"] - pairs["final_gap_augmented"]
    return pairs


def _order(values) -> list:
    """Data sets in `DATA_SETS` order (any other after them, sorted)."""
    return sorted(set(values), key=lambda value: (DATA_SETS.index(value) if value in DATA_SETS else len(DATA_SETS), str(value)))


def _check(data_name: str, strength: str, group: pd.DataFrame) -> Check:
    """One data set and strength: per seed, the paired gain averaged over sizes; per size, the gain and the regime without augmentation.

    A seed's sizes share its augmentation draws and initial weights, so they
    are averaged within the seed (n = seeds), not counted as independent values.
    """
    by_size = group.groupby("n_train")
    means = by_size[["error_gain", "gap_gain", "final_train_error_none", "final_val_error_none"]].mean()
    details = {
        "gain per size": "; ".join(f"n_train={n}: {row.error_gain:+.3f}" for n, row in means.iterrows()),
        "gap change per size": "; ".join(f"n_train={n}: {-row.gap_gain:+.3f}" for n, row in means.iterrows()),
        REGIME: "; ".join(f"n_train={n}: {regime(row.final_train_error_none, row.final_val_error_none)}" for n, row in means.iterrows()),
    }
    gains = group.groupby("seed")["error_gain"].mean()
    return Check.above(f"{data_name}, {strength}", PART, summarize(gains), smallest=HALF_POINT_OF_ERROR, details=details)


def _size_trend(condition: str, group: pd.DataFrame) -> str | None:
    """Whether a positive gain is largest at the smallest size, in words; None with one size or no gain."""
    by_size = group.groupby("n_train")["error_gain"].mean()
    if len(by_size) < 2 or by_size.mean() <= 0:
        return None
    smallest, largest = by_size.index.min(), by_size.index.max()
    where = "largest at the smallest size" if by_size.loc[smallest] >= by_size.max() - 1e-12 else "not largest at the smallest size"
    return f"{condition}: {by_size.loc[smallest]:+.3f} at n_train={smallest}, {by_size.loc[largest]:+.3f} at n_train={largest} ({where})"


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per data set and strength: held-out error without minus with augmentation, paired by seed and averaged over sizes."""
    pairs = paired_gains(trials)
    if pairs.empty:
        return Verdict([], notes="The grid needs strength=none and mild or strong, for the same data set, size and seed.")
    checks, trends = [], []
    for data_name in _order(pairs["data"]):
        for strength in AUGMENTED:
            group = select(pairs, {"data": data_name, "strength": strength})
            if group.empty:
                continue
            checks.append(_check(data_name, strength, group))
            trends.append(_size_trend(checks[-1].condition, group))
    preferred = [f"tfds:mnist, {HEADLINE[1]}", ", ".join(HEADLINE)]
    headline = next((check for name in preferred for check in checks if check.condition == name), None)
    trends = [trend for trend in trends if trend]
    notes = f"Where augmentation helps, the gain by size (reported, not judged): {'; '.join(trends)}." if trends else ""
    return Verdict(checks, headline=headline, notes=notes)


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Held-out error and gap against training-set size per strength; example augmented inputs per strength."""
    return {"error_and_gap_vs_n_train": _size_plot(trials), "augmented_examples": _examples(trials)}


def _size_plot(trials: pd.DataFrame) -> plt.Figure:
    metrics = [("final_val_error", "held-out (validation) error"), ("final_gap", "gap (validation − training error)")]
    layout = PanelLayout("data", "strength", "n_train", "training examples", panel_values=_order(trials["data"]), log_x=True)
    fig, _ = mean_std_panels(
        trials, layout, metrics, title=str, label=lambda strength: f"augmentation: {strength}",
        suptitle="Augmentation against training-set size (mean ± std over seeds)",
    )
    return fig


def _examples(trials: pd.DataFrame) -> plt.Figure:
    """One training example of each data set and augmented draws of it at each strength (what `fit` sees)."""
    import keras

    rows = [(data_name, strength) for data_name in _order(trials["data"]) for strength in AUGMENTED]
    fig, axes = plt.subplots(len(rows), DRAWS + 1, figsize=(2 * (DRAWS + 1), 2.1 * len(rows)), squeeze=False, constrained_layout=True)
    for (data_name, strength), row in zip(rows, axes):
        config = {"data": data_name, "strength": strength, "seed": 0, "n_train": 20}
        data = _dataset(config)
        layer = augmentation_layer(config, data.input_shape)
        x = data.x_train[:1]
        draws = [x[0]] + [keras.ops.convert_to_numpy(layer(x, training=True))[0] for _ in range(DRAWS)]
        for column, (ax, example) in enumerate(zip(row, draws)):
            if data_name not in SIGNAL_SETS:
                ax.imshow(example[..., 0], cmap="gray_r", vmin=0.0, vmax=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                if column:
                    ax.plot(draws[0][..., 0], color="gray", lw=0.8, alpha=0.6)
                ax.plot(example[..., 0])
            ax.set_title(f"{data_name}: original" if column == 0 else f"{data_name}, {strength} {column}", fontsize=8)
    fig.suptitle("What the augmentation layers feed the net in training, per strength")
    return fig


def test(config: dict, guard) -> dict[str, float]:
    """Retrains the strength selected on validation for one data set and size; scores the test split once."""
    from ablations.engine.train.members import scoring_model

    data, stack, _ = _train([config])
    return score_test_split(guard, scoring_model(stack, 0), data[0].x_test, data[0].y_test)


REFERENCE = Reference(
    citation="Krizhevsky, Sutskever and Hinton (2012), ImageNet Classification with Deep Convolutional Neural Networks, NIPS",
    short="Krizhevsky et al. 2012",
    where="Section 4.1 (data augmentation)",
    value='"Without this scheme, our network suffers from substantial overfitting"; PCA colour augmentation '
    '"reduces the top-1 error rate by over 1%"',
    regime="ImageNet, 1.2 million images, a 60-million-parameter CNN, SGD with momentum",
    here="mnist5k and digits, 100 and 300 examples, 2 conv blocks and a dense layer, Adam, 500 steps, shifts, rotations and zooms",
    checked="read in the paper",
)

ABLATION = Ablation(
    name="augmentation",
    claim="Augmenting the training data (random shifts, rotations, zooms; for signals shifts, scalings, noise) regularizes: a lower held-out error, most at small training sizes.",
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # A data set and size's strengths and seeds train as members of one stacked CNN.
    pack_key=pack_all_but("strength", "seed"),
    objective="final_val_loss",
    test=test,
    # Each data set and training-set size is its own problem: the strength is
    # selected on validation, and tested once, for each.
    select_within=("data", "n_train"),
    reference=REFERENCE,
)
