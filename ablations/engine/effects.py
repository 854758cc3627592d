"""Effect statistics the verdicts share: effects paired by seed, and how to say them.

An effect is a difference paired by seed (same condition, same seed, one arm
against the other), summarized over seeds by `stats.summarize`; how it is read
is the one policy of `ablations.engine.verdict`. The arms of a pair are
`select`-ed from the grid, paired `beside_control`, within the conditions
`grid_conditions` finds.

Example:

>>> gain = summarize(seed_differences(trials, "strength", "none", "mild", "final_val_error"))
>>> interval(gain, "+.3f")
'+0.080 to +0.160'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablations.engine.stats import Summary, summarize

# ------------------------------------------------------------------ effects paired by seed


def per_seed(trials: pd.DataFrame, column: str, metric: str) -> pd.DataFrame:
    """``metric`` as a table: one row per seed, one column per value of ``column`` (means of repeats)."""
    return trials.pivot_table(index="seed", columns=column, values=metric)


def seed_differences(trials: pd.DataFrame, column: str, a: Any, b: Any, metric: str) -> np.ndarray:
    """Per seed: ``metric`` where ``column`` is ``a`` minus where it is ``b``; empty when either is missing."""
    table = per_seed(trials, column, metric)
    if a not in table or b not in table:
        return np.array([])
    return (table[a] - table[b]).dropna().to_numpy()


def select(trials: pd.DataFrame, settings: Mapping[str, Any]) -> pd.DataFrame:
    """The trials at exactly these settings, an arm (grid values read back from MLflow parse to the values given).

    Exact, also for floats: two grid values however close (a correlation of
    0.99998 beside 0.99999) are two arms, never pooled.
    """
    mask = np.ones(len(trials), dtype=bool)
    for name, value in settings.items():
        mask &= (trials[name] == value).to_numpy()
    return trials[mask]


def beside_control(treated: pd.DataFrame, control: pd.DataFrame, on: Sequence[str], *, suffixes: tuple[str, str] = ("", "_control")) -> pd.DataFrame:
    """Each treated trial beside the control trial of its condition and seed: the rows of effects paired by seed.

    Args:
        treated: The trials of the arm (or arms) under test.
        control: The trials they are compared with, one per value of ``on``.
        on: The settings a pair shares: the condition's and ``seed``.
        suffixes: Added to the names of the columns both frames have, besides ``on``.

    Returns:
        One row per treated trial that has a control, in the treated trials' order.
    """
    return treated.merge(control, on=list(on), suffixes=suffixes)


def grid_conditions(trials: pd.DataFrame, names: Iterable[str], *, exclude: Iterable[str] = ()) -> list[str]:
    """The settings among ``names`` (less ``exclude``, the arms) that the grid varies: each value is a condition of its own."""
    excluded = set(exclude)
    return [name for name in names if name not in excluded and name in trials and trials[name].nunique() > 1]


def condition_groups(trials: pd.DataFrame, names: Iterable[str], *, exclude: Iterable[str] = (), always: Sequence[str] = ()) -> Iterator[tuple[str, dict[str, Any], pd.DataFrame]]:
    """Per condition: its label, its settings and its trials, grouped by the `grid_conditions` and by ``always``.

    Args:
        trials: One row per trial.
        names: The settings that may make conditions, in the order the label gives them.
        exclude: The arms: settings a condition compares, never splits by.
        always: Settings that make conditions even when the grid holds them fixed (the training-set size, say).
    """
    varied = grid_conditions(trials, names, exclude=exclude)
    keys = [*varied, *(name for name in always if name not in varied)]
    for values, group in trials.groupby(keys, sort=True):
        settings = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        yield ", ".join(condition_label(name, value) for name, value in settings.items()), settings, group


def condition_label(name: str, value: Any) -> str:
    """A condition's value as the report writes it: ``name=value`` (a data set by its name alone)."""
    if name == "data":
        return str(value)
    return f"{name}={value:g}" if isinstance(value, (int, float)) else f"{name}={value}"


# ------------------------------------------------------------------ wording


def interval(summary: Summary, spec: str) -> str:
    """The 95% interval as "low to high", each formatted with ``spec`` (".3f", "+.2f", ...)."""
    return f"{summary.low:{spec}} to {summary.high:{spec}}"


def mean_sd(summary: Summary, spec: str = ".3g", sd_spec: str = ".2g") -> str:
    """"mean ± standard deviation" over seeds."""
    return f"{summary.mean:{spec}} ± {summary.std:{sd_spec}}"


def ratio_text(ratios: pd.Series, censored: pd.Series) -> str:
    """Ratios over seeds as "x mean ± sd", after "≥ " when any is a lower bound (``censored``); "n/a" without one."""
    if ratios.empty:
        return "n/a"
    return f"{'≥ ' if censored.any() else ''}x{mean_sd(summarize(ratios), '.2f', '.2f')}"
