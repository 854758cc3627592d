"""Capacity and overfitting: training error falls with capacity and underestimates test error.

The lecture's claim (slides borrowed from Gonzalez and Perez): generic
features such as Gaussian radial basis functions φ_i(x) = exp(-||x - μ_i||² / λ)
increase a model's expressivity; the more of them, the lower the training
error, and "training error typically under estimates test error".

Run it:

    ablate run capacity_overfitting --profile quick

Three tasks, one capacity axis p: ``rbf_1d`` / ``rbf_2d``, least squares on p
Gaussian RBF features plus an intercept (`models.rbf`, minimum norm beyond
p = n) on 50 noisy samples of a smooth 1-D or 2-D function, the error the MSE
over the training targets' variance; ``mlp_digits``, a one-hidden-layer ReLU
MLP of width p on 300 of scikit-learn's 8x8 digits (full-batch Adam), the
error the misclassification rate. A seed draws the RBF sample, or the MLP's
initial weights. "Held-out" is each task's validation split; the test split is
scored once, for the configuration selected on it (`TestSplitGuard`).

The verdict (fixed before any run), per task and over seeds (n = seeds: a
seed's capacities share its draw): training error falls from the smallest
capacity to the largest and never rises on average between neighbours
(`ROUND_OFF`); held-out error rises beyond its minimum, the slide's U
(`rise_beyond_minimum`), not expected of the MLP on digits (`U_BOUNDARY`:
judged, never deciding); and a sanity check, true in expectation by
construction: training error is below held-out error at more than
`BELOW_FRACTION` ("typically") of a seed's capacities. Each row also reads the
regime of the largest capacity (training against held-out error).

What to expect: training error falls with p on every task, from near 1 at the
smallest p to round-off (RBF, once p reaches n) or 0 (MLP, from a handful of
units on), below the held-out error at all but the smallest capacities. The
RBF held-out error is lowest at a few to a few dozen features, climbs by
orders of magnitude as the fit interpolates the noise, peaks just past p = n
and eases for p >> n, where the minimum-norm fit is smoother ("double
descent"). The MLP's keeps falling with width: on digits, overfitting shows in
the gap, not in a U.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.engine import params
from ablations.engine.data import load_dataset, synthetic
from ablations.engine.effects import per_seed, select
from ablations.engine.plots import fit_panels, panel_grid, seed_lines
from ablations.engine.spec import Ablation, Param, Reference, TrialContext, one_by_one, pack_all_but
from ablations.engine.stats import summarize
from ablations.engine.verdict import REGIME, Check, SmallestEffect, Verdict, regime
from models.rbf import fit_rbf, rbf_design, rbf_predict

# Keras and the models are imported in the functions that train: they load only when a
# trial runs, so `ablate` validates a typo in about a second.

TASKS = ("rbf_1d", "rbf_2d", "mlp_digits")
RBF_DATA = {"rbf_1d": ("noisy_1d", 1), "rbf_2d": ("noisy_2d", 2)}
CAPACITIES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ROUND_OFF = 1e-9
"""Rises of a training error smaller than this are float round-off (interpolating fits sit at ~1e-29)."""
BELOW_FRACTION = 0.5
"""Training error "typically" underestimates held-out error: below it at more than half the capacities of a seed."""
ERROR_CHANGE = SmallestEffect(0.01, "a hundredth of the error rate (or of var(y) for the RBF tasks): less is invisible on the figure's log axes")
FALL = SmallestEffect(
    0.1, "a tenth of var(y) (ten points of error rate for the MLP) over the whole capacity grid: less is no steady fall like the lecture's figure"
)
ONE_IN_TEN = SmallestEffect(0.1, "one capacity in ten of the grid")
RISE = SmallestEffect(0.1, "a tenth of a decade of held-out error (a quarter more): less is no U a reader would see on the log axes")
U_BOUNDARY = ("mlp_digits",)
"""Tasks where the U is not expected, declared before any run: a wide net trained to zero training error keeps
improving with width (Belkin et al. 2019, the "modern" regime beyond interpolation); judged, never deciding."""
ERROR_FLOOR = 1e-12
"""Held-out errors below this count as this in log10 (an interpolating RBF fit's MSE never gets there)."""
U_PART = "held-out error rises beyond its minimum: log10 of the largest capacity's error over the minimum's"
BELOW_PART = "fraction of capacities with training error below held-out error"
_FLOOR = 1e-4
"""Errors below this are drawn at this value on the figure's log axes (interpolating fits reach ~1e-28)."""

PARAMS = {
    "task": Param("rbf_1d", "rbf_1d | rbf_2d (RBF least squares) | mlp_digits (MLP width)", choices=TASKS),
    "capacity": Param(16, "number of RBF features, or hidden units of the MLP", low=1, high=100_000),
    "n_train_rbf": Param(50, "training examples of the RBF tasks", low=5, high=1_000_000),
    "noise": Param(0.3, "noise standard deviation of the RBF tasks' targets", low=0.0, high=10.0),
    "bandwidth": Param(1.0, "RBF width in units of the center spacing 2/p^(1/d): λ = (bandwidth·spacing)²", low=1e-3, high=100.0),
    "n_train_digits": Param(300, "training digits of the MLP task", low=10, high=1000),
    "epochs": params.epochs(300, high=100_000, help="full-batch Adam steps of the MLP"),
    "learning_rate": params.learning_rate(1e-2, help="Adam learning rate of the MLP"),
}

PROFILES = {
    "smoke": {"task": list(TASKS), "capacity": [2, 16, 128], "epochs": 40, "n_train_digits": 100, "seeds": 1},
    # 8 seeds: the sanity share (a median) is bounded only from 7 seeds on at 98.33%, and the U needs two or more.
    "quick": {"task": list(TASKS), "capacity": list(CAPACITIES), "seeds": 8},
    "full": {"task": list(TASKS), "capacity": [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 48, 56, 64, 96, 128, 192, 256, 384, 512], "epochs": 1000,
             "seeds": 460},  # the pilot's 452 for rbf_1d's U at 80% power at a tenth of a decade (README: How many seeds)
}


# ------------------------------------------------------------------ trial: RBF least squares, MLP widths


def normalized_mse(prediction: np.ndarray, target: np.ndarray, scale: float) -> float:
    """Mean squared error over ``scale`` (the variance of the training targets)."""
    return float(np.mean((prediction - target) ** 2) / scale)


def _rbf_dataset(config: dict):
    name, _ = RBF_DATA[config["task"]]
    n_train = config["n_train_rbf"]
    # Validation and test splits (20% each) large next to n_train: held-out errors not dominated by few points.
    n_samples = max(500, math.ceil(n_train / 0.6) + 2)
    return load_dataset(
        name, n_train=n_train, standardize=False, split_seed=config["seed"], n_samples=n_samples, noise=config["noise"], data_seed=config["seed"]
    )


def _fit_rbf_task(config: dict):
    """The task's data, the variance of its training targets (the errors' scale), the fit at its capacity."""
    data = _rbf_dataset(config)
    return data, float(np.var(data.y_train)), fit_rbf(data.x_train, data.y_train, config["capacity"], config["bandwidth"])


def _rbf_trial(config: dict, log) -> dict[str, float]:
    data, scale, (coefficients, centers, width) = _fit_rbf_task(config)
    design = rbf_design(data.x_train.astype(np.float64), centers, width)
    train = normalized_mse(design @ coefficients, data.y_train, scale)
    val = normalized_mse(rbf_predict(data.x_val, coefficients, centers, width), data.y_val, scale)
    log({"train_error": train, "val_error": val}, config["capacity"])
    fit = {"coefficient_norm": float(np.linalg.norm(coefficients[1:])), "design_rank": float(np.linalg.matrix_rank(design)), "rbf_width": width}
    return {"final_train_error": train, "final_val_error": val, "final_train_mse": train * scale, "final_val_mse": val * scale, **fit}


def _fit_mlps(configs: list[dict], data, weights: np.ndarray) -> Callable[..., dict[str, np.ndarray]]:
    """All widths in one stack (narrower members zero-padded and masked) on one full batch: one graph, not one per width.

    Returns ``scores(x, y, mask)``: per member, its loss and error rate on ``(x, y)`` (``train_loss``,
    ``train_error``) and its weight norm (``weight_l2_norm``).
    """
    from ablations.engine.train import StackTraining, fit_stack, member_statistics
    from models.mlp import build_mlp
    from models.stacked import stack_models

    shape = (data.x_train.shape[1],)
    members = [build_mlp(shape, data.num_classes, depth=1, width=c["capacity"], activation="relu", seed=c["seed"]) for c in configs]
    stack = stack_models(members, "relu")
    first = configs[0]
    fit_stack(stack, data.x_train, data.y_train, weights, training=StackTraining(epochs=first["epochs"], learning_rate=first["learning_rate"]))
    return lambda x, y, mask: member_statistics(stack, x, y, mask, None, 0.0)


def _run_mlp(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    # Seeds change the initial weights only: every member shares the split.
    data = load_dataset("digits", n_train=configs[0]["n_train_digits"], split_seed=0)
    ones = np.ones((len(configs), len(data.y_train)), np.float32)
    scores = _fit_mlps(configs, data, ones)
    train, held_out = scores(data.x_train, data.y_train, ones), scores(data.x_val, data.y_val, np.ones((len(configs), len(data.y_val))))
    results = []
    for m, (config, log) in enumerate(zip(configs, context.loggers)):
        errors = {"final_train_error": float(train["train_error"][m]), "final_val_error": float(held_out["train_error"][m])}
        log({"train_error": errors["final_train_error"], "val_error": errors["final_val_error"]}, config["capacity"])
        losses = {"final_train_loss": float(train["train_loss"][m]), "final_val_loss": float(held_out["train_loss"][m])}
        results.append({**errors, **losses, "coefficient_norm": float(train["weight_l2_norm"][m])})
    return results


def run(configs: list[dict], context: TrialContext) -> list[dict[str, float]]:
    """One task per pack: every capacity and seed of it."""
    if configs[0]["task"] in RBF_DATA:
        return one_by_one(_rbf_trial)(configs, context)
    return _run_mlp(configs, context)


# ------------------------------------------------------------------ verdict


def _tasks(trials: pd.DataFrame) -> list[str]:
    return [t for t in TASKS if t in set(trials["task"])]


def _curves(group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and held-out error of one task: one row per seed, one column per capacity."""
    return per_seed(group, "capacity", "final_train_error"), per_seed(group, "capacity", "final_val_error")


def _checks(task: str, group: pd.DataFrame) -> list[Check]:
    """The four checks of one task, each over seeds (n = seeds; a seed's capacities share its data)."""
    train, held_out = _curves(group)
    capacities = sorted(train.columns)
    smallest, largest = capacities[0], capacities[-1]
    # The capacity without the remedy (a smaller model): the largest, means over seeds.
    details = {REGIME: regime(float(train[largest].mean()), float(held_out[largest].mean()), ".3g")}
    falls = summarize((train[largest] - train[smallest]).dropna())
    steps = {(a, b): summarize((train[b] - train[a]).dropna()) for a, b in zip(capacities, capacities[1:])}
    (a, b), worst = max(steps.items(), key=lambda item: item[1].mean)
    # The capacities go in the row, not the part's name: one part across tasks is one family of conditions.
    details["capacities compared"] = f"falls: p={largest} − p={smallest}; largest rise: p={a} → {b}"
    # Per seed, the share of its capacities whose training error is below the held-out error.
    below = summarize((train < held_out).where(train.notna() & held_out.notna()).mean(axis=1).dropna(), kind="median", bounds=(0.0, 1.0))
    rise, compared = rise_beyond_minimum(held_out)
    role = "boundary" if task in U_BOUNDARY else "claim"
    return [
        Check.above(task, U_PART, summarize(rise), smallest=RISE, spec="+.3g", role=role, details={**details, "capacities compared": compared}),
        Check.below(task, "training error falls (largest − smallest capacity)", falls, smallest=FALL, spec="+.3g", details=details),
        Check.below(task, "largest mean rise between neighbouring capacities", worst, ROUND_OFF, smallest=ERROR_CHANGE, spec="+.3g", details=details),
        # Sanity: the training error's optimism puts it below the held-out error in expectation, by construction.
        Check.above(
            task, BELOW_PART, below, BELOW_FRACTION, smallest=ONE_IN_TEN, null=BELOW_FRACTION, spec=".2f", role="sanity", details=details
        ),
    ]


def rise_beyond_minimum(held_out: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Per seed, log10 of its held-out error at the largest capacity over its error at the minimum; and which capacities.

    The minimum is read off the other seeds' median curve: the argmin of a seed's own noisy curve would make
    a rise hold by construction. The largest capacity is fixed by the grid, not the peak, whose height near
    the interpolation threshold varies over decades between seeds: the largest model's error is the right
    arm of the U. A seed whose other seeds have their minimum at the largest capacity has no rise: 0.

    Args:
        held_out: Held-out error, one row per seed, one column per capacity.
    """
    logs = np.log10(held_out.clip(lower=ERROR_FLOOR))
    if len(logs.index) < 2:
        return np.array([]), "needs two seeds: one seed's minimum is read off the others"
    largest = max(logs.columns)
    rises, lows = [], []
    for seed in logs.index:
        low = logs.drop(index=seed).median().idxmin()
        rises.append(logs.at[seed, largest] - logs.at[seed, low])
        lows.append(f"p={low}")
    counts = pd.Series(lows).value_counts()
    minima = ", ".join(f"{low} ({count} seed{'s' if count > 1 else ''})" for low, count in counts.items())
    return np.array([r for r in rises if np.isfinite(r)]), f"p={largest} over the other seeds' minimum: {minima}"


def _note(task: str, group: pd.DataFrame) -> str:
    """Where the held-out error is lowest and highest (medians over seeds): reported, not judged."""
    train, held_out = _curves(group)
    median = held_out.median()
    capacities = sorted(train.columns)
    unit = "error rate" if task == "mlp_digits" else "MSE/var(y)"
    shown = dict.fromkeys([int(median.idxmin()), int(median.idxmax()), capacities[-1]])
    return (
        f"{task} ({unit}): training error {train[capacities[0]].mean():.3g} at p={capacities[0]} → "
        f"{train[capacities[-1]].mean():.3g} at p={capacities[-1]}; held-out error (median over seeds) "
        + ", ".join(f"{median[p]:.3g} at p={p}" for p in shown)
        + f" (lowest at p={int(median.idxmin())})"
    )


def verdict(trials: pd.DataFrame) -> Verdict:
    """Per task, the four checks of the module's docstring, each over seeds; the headline: the U of the first task."""
    if trials.empty or trials["capacity"].nunique() < 2:
        return Verdict([], notes="The grid needs at least two capacities.")
    tasks = _tasks(trials)
    checks = [check for task in tasks for check in _checks(task, select(trials, {"task": task}))]
    headline = next(c for c in checks if c.part == U_PART)
    return Verdict(checks, headline, "; ".join(_note(task, select(trials, {"task": task})) for task in tasks) + ".")


# ------------------------------------------------------------------ figures


def figures(trials: pd.DataFrame, client) -> dict[str, plt.Figure]:
    """Training and held-out error against capacity, one panel per task; the RBF fits themselves."""
    tasks = _tasks(trials)
    fig, axes = panel_grid(len(tasks), (4.6, 3.8))
    for ax, task in zip(axes[0], tasks):
        _capacity_panel(ax, task, select(trials, {"task": task}))
    fig.suptitle("Training error vs held-out error as capacity grows (thin lines: seeds)")
    result = {"capacity_curves": fig}
    if "rbf_1d" in tasks:
        result["rbf_1d_fits"] = _rbf_fits(select(trials, {"task": "rbf_1d"}))
    return result


def _capacity_panel(ax: plt.Axes, task: str, group: pd.DataFrame) -> None:
    """One task's training and held-out error against capacity: a thin line per seed, a thick one for the median."""
    rbf = task in RBF_DATA
    labels = ("number of Gaussian RBF features p", f"MSE / var(y)  (floored at {_FLOOR:g})") if rbf else ("hidden units", "misclassification rate")
    for metric, label, color in (("final_train_error", "training error", "tab:blue"), ("final_val_error", "held-out (validation) error", "tab:red")):
        table = per_seed(group, "capacity", metric)
        seed_lines(ax, table.clip(lower=_FLOOR) if rbf else table, color=color, label=label)
    ax.set_xscale("log", base=2)
    if rbf:
        ax.set_yscale("log")
        n_train = int(group["n_train_rbf"].iloc[0])
        ax.axvline(n_train, color="gray", ls=":", lw=1)
        ax.text(n_train, ax.get_ylim()[1], " p = n", va="top", fontsize=7, color="gray")
    ax.set(xlabel=labels[0], ylabel=labels[1], title=task)
    ax.legend(fontsize=7)


def _rbf_fits(group: pd.DataFrame) -> plt.Figure:
    """The 1-D fits of the first seed at the smallest, the held-out-best, the held-out-worst and the largest p."""
    config = group.iloc[0].to_dict()
    config["seed"] = int(group["seed"].min())
    data = _rbf_dataset(config)
    held_out = group[group["seed"] == config["seed"]].set_index("capacity")["final_val_error"]
    shown = sorted({int(held_out.index.min()), int(held_out.idxmin()), int(held_out.idxmax()), int(held_out.index.max())})
    grid, bandwidth = np.linspace(-1, 1, 600)[:, None], float(config["bandwidth"])
    fits = {f"p = {p}: held-out error {held_out[p]:.3g}": rbf_predict(grid, *fit_rbf(data.x_train, data.y_train, p, bandwidth)) for p in shown}
    title = "Least squares on p Gaussian RBF features (noisy_1d, first seed)"
    return fit_panels(data.x_train[:, 0], data.y_train, grid[:, 0], synthetic.noisy_1d_function(grid), fits, suptitle=title)


def test(config: dict, guard) -> dict[str, float]:
    """Refits the configuration selected on validation error and scores the test split once."""
    if config["task"] in RBF_DATA:
        data, scale, (coefficients, centers, width) = _fit_rbf_task(config)
        return guard.evaluate(lambda: {"test_error": normalized_mse(rbf_predict(data.x_test, coefficients, centers, width), data.y_test, scale)})
    data = load_dataset("digits", n_train=config["n_train_digits"], split_seed=0)
    scores = _fit_mlps([config], data, np.ones((1, len(data.y_train))))
    return guard.evaluate(lambda: {"test_error": float(scores(data.x_test, data.y_test, np.ones((1, len(data.y_test))))["train_error"][0])})


REFERENCE = Reference(
    citation="Belkin, Hsu, Ma and Mandal (2019), Reconciling modern machine-learning practice and the classical bias-variance trade-off, PNAS 116(32)",
    short="Belkin et al. 2019",
    where="Figure 2 and its section, Random Fourier Features",
    value='"for small values of N, the test risk shows the classical U-shaped curve", with a peak at the interpolation '
    "threshold N = n; the figure prints no values",
    regime="random Fourier features on a subset of MNIST (n = 10,000, 10 classes), minimum-norm least squares",
    here="Gaussian RBF least squares on 50 noisy 1-D and 2-D points, 1-256 features, minimum norm; an MLP of width p on 300 digits",
    checked="read in the paper (the PNAS PDF: Figure 2's caption and text)",
)

ABLATION = Ablation(
    name="capacity_overfitting",
    claim="Training error falls as capacity grows (Gaussian RBF features, hidden units) and underestimates test error.",
    params=PARAMS,
    profiles=PROFILES,
    run=run,
    verdict=verdict,
    figures=figures,
    # One pack per task: every capacity and seed of the MLP trains in one stack.
    pack_key=pack_all_but("capacity", "seed"),
    objective="final_val_error",
    test=test,
    # Each task has its own data and error measure: select and test per task.
    select_within=("task",),
    reference=REFERENCE,
)
