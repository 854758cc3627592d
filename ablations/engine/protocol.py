"""The lecture's train / validation / test protocol.

1. Design, train and tune on the training data only: select on a validation
   split or on k-fold cross-validation of the training data (`kfold_indices`;
   `select_per_seed` picks
   each seed's setting as one run would, `at_selection` reads a metric there).
2. Commit to one configuration.
3. Evaluate it on the test data once. `TestSplitGuard` enforces the "once".

Each trial also gets a bias / variance diagnosis from its training and
validation errors, with the lecture's remedy for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from ablations.engine.effects import per_seed

Diagnosis = Literal["high bias", "high variance", "balanced"]

REMEDIES: dict[str, str] = {
    "high bias": "a bigger network (more units or layers), longer training, less regularization",
    "high variance": "more training data, regularization (L2, L1, dropout, data augmentation), early stopping, a smaller network",
    "balanced": "keep the configuration; confirm it once on the test set",
}

TARGET_ERROR = 0.05
"""Training error above this reads as high bias (the lecture's "desired performance")."""
GAP_TOLERANCE = 0.05
"""Validation error exceeding training error by more than this reads as high variance."""


class TestSetAlreadyUsed(RuntimeError):
    """The test split was already evaluated; looking again would turn it into a validation set."""

    __test__ = False  # a domain name, not a pytest class


class TestSplitGuard:
    """Lets a study look at its test split exactly once.

    The runner makes one guard per study and hands it to the ablation's
    ``test`` hook with the selected configuration; the hook scores the test
    split inside `evaluate`. Trials never get a guard, so they select on
    validation data alone.

    Example:

    >>> guard = TestSplitGuard()
    >>> guard.evaluate(lambda: {"test_error": error(model, data.x_test, data.y_test)})
    >>> guard.evaluate(...)  # raises TestSetAlreadyUsed
    """

    __test__ = False  # a domain name, not a pytest class

    def __init__(self):
        self.used = False

    def evaluate(self, score: Callable[[], dict[str, float]]) -> dict[str, float]:
        """Runs ``score()`` (which reads the test split); a second call raises `TestSetAlreadyUsed`."""
        if self.used:
            raise TestSetAlreadyUsed("The test split was already evaluated once for this study; select on validation data.")
        self.used = True
        return score()


def score_test_split(guard: TestSplitGuard, model, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """A Keras test hook's last step: scores ``model`` on the test split once, through ``guard``.

    Returns ``test_loss`` and, for classes, ``test_accuracy`` and ``test_error``.
    """
    from ablations.engine.train import score_split

    scores = guard.evaluate(lambda: score_split(model, x_test, y_test))
    return {f"test_{name}": value for name, value in scores.items()}


def score_test_probabilities(guard: TestSplitGuard, model, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """A test hook's last step for a classifier: its predicted probabilities scored on the test split once, through ``guard``.

    Returns ``test_loss``, the mean cross-entropy (each true class's probability clipped at 1e-7, computed in
    NumPy from the probabilities, not by the compiled loss), and ``test_error``.
    """
    import keras

    def score() -> dict[str, float]:
        probabilities = keras.ops.convert_to_numpy(model(x_test, training=False))
        loss = float(np.mean(-np.log(np.clip(probabilities[np.arange(len(y_test)), y_test], 1e-7, 1.0))))
        return {"test_loss": loss, "test_error": float(np.mean(np.argmax(probabilities, axis=1) != y_test))}

    return guard.evaluate(score)


def with_gaps(final: dict[str, float]) -> dict[str, float]:
    """Final metrics plus the generalization gaps: ``final_gap`` (validation − training error) and ``final_loss_gap``."""
    metrics = dict(final)
    metrics["final_gap"] = metrics["final_val_error"] - metrics["final_train_error"]
    metrics["final_loss_gap"] = metrics["final_val_loss"] - metrics["final_train_loss"]
    return metrics


def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold splits of ``range(n)``: disjoint validation folds that cover every index.

    Args:
        n: Number of training examples.
        k: Number of folds, 2 <= k <= n.
        seed: Seed of the shuffle.

    Returns:
        ``k`` pairs (train indices, validation indices).
    """
    if not 2 <= k <= n:
        raise ValueError(f"k-fold needs 2 <= k <= n; received k={k}, n={n}.")
    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1 :])), np.sort(fold)) for i, fold in enumerate(folds)]


def select_per_seed(trials: pd.DataFrame, setting: str, metric: str) -> pd.Series:
    """Per seed, the value of ``setting`` of lowest ``metric``: what one run of the selection picks on its own data.

    Args:
        trials: One row per trial, with ``seed``, ``setting`` and ``metric`` (a validation or CV cost).
        setting: The setting selected (a penalty strength, say).
        metric: What the selection minimizes; repeats of a seed and setting are averaged.

    Returns:
        The selected value, indexed by seed (seeds without any value left out).
    """
    return per_seed(trials, setting, metric).idxmin(axis=1).dropna()


def at_selection(trials: pd.DataFrame, setting: str, selected: pd.Series, metric: str) -> pd.Series:
    """Per seed, ``metric`` where ``setting`` is the seed's selected value (`select_per_seed`), indexed by seed."""
    table = per_seed(trials, setting, metric)
    return pd.Series({seed: table.at[seed, value] for seed, value in selected.items() if seed in table.index}, dtype=float)


def selection_text(selected: pd.Series) -> str:
    """The selected values with the seeds that chose each: "0.16 (seed 0), 0.32 (seeds 1, 2)"."""
    seeds: dict[float, list[int]] = {}
    for seed, value in selected.items():
        seeds.setdefault(float(value), []).append(int(seed))
    return ", ".join(f"{value:g} (seed{'s' if len(of) > 1 else ''} {', '.join(map(str, of))})" for value, of in sorted(seeds.items()))


def diagnose(
    train_error: float,
    val_error: float,
    *,
    target_error: float = TARGET_ERROR,
    gap_tolerance: float = GAP_TOLERANCE,
) -> Diagnosis:
    """The lecture's bias / variance reading of a trial.

    High bias: the model does not even fit its training data (training error
    above ``target_error``). High variance: it fits the training data much
    better than unseen data (a gap above ``gap_tolerance``). When both hold,
    the larger excess names the first thing to fix.

    Args:
        train_error: Error on the training data (1 - accuracy, or a loss).
        val_error: Error on the validation data, same measure.
        target_error: Acceptable training error.
        gap_tolerance: Acceptable validation-minus-training gap.
    """
    bias_excess = train_error - target_error
    variance_excess = (val_error - train_error) - gap_tolerance
    if bias_excess <= 0 and variance_excess <= 0:
        return "balanced"
    return "high bias" if bias_excess >= variance_excess else "high variance"


def trial_diagnosis(metrics: dict[str, Any]) -> Diagnosis | None:
    """Diagnoses a trial from its final metrics, if it logged train and validation errors.

    Reads ``final_train_error`` / ``final_val_error`` when present, else
    ``final_accuracy`` / ``final_val_accuracy`` as 1 - accuracy.
    """
    if "final_train_error" in metrics and "final_val_error" in metrics:
        return diagnose(metrics["final_train_error"], metrics["final_val_error"])
    if "final_accuracy" in metrics and "final_val_accuracy" in metrics:
        return diagnose(1 - metrics["final_accuracy"], 1 - metrics["final_val_accuracy"])
    return None
