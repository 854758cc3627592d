"""Effect statistics the verdicts share: effects paired by seed, and how to say them.

An effect is a difference paired by seed (same condition, same seed, one arm
against the other), summarized over seeds by `stats.summarize`; how it is read
is the one policy of `ablations.engine.verdict`.

Example:

>>> gain = summarize(seed_differences(trials, "strength", "none", "mild", "final_val_error"))
>>> mean_ci(gain, "+.3f", label="95% CI")
'+0.120 (95% CI +0.080 to +0.160)'
"""

from __future__ import annotations

from collections.abc import Mapping
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


# ------------------------------------------------------------------ wording


def interval(summary: Summary, spec: str) -> str:
    """The 95% interval as "low to high", each formatted with ``spec`` (".3f", "+.2f", ...)."""
    return f"{summary.low:{spec}} to {summary.high:{spec}}"


def mean_ci(summary: Summary, spec: str, *, label: str = "CI", one_seed: str | None = None) -> str:
    """"mean (CI low to high)"; with one value and ``one_seed`` given, "mean (one_seed)" instead."""
    if one_seed is not None and summary.n <= 1:
        return f"{summary.mean:{spec}} ({one_seed})"
    return f"{summary.mean:{spec}} ({label} {interval(summary, spec)})"


def mean_sd(summary: Summary, spec: str = ".3g", sd_spec: str = ".2g") -> str:
    """"mean ± standard deviation" over seeds."""
    return f"{summary.mean:{spec}} ± {summary.std:{sd_spec}}"


def mean_sd_cells(rows: pd.DataFrame, columns: Mapping[str, str], spec: str = ".3g", sd_spec: str = ".2g") -> dict[str, str]:
    """Table cells: for each ``{heading: metric}``, the metric's `mean_sd` over ``rows``."""
    return {heading: mean_sd(summarize(rows[metric]), spec, sd_spec) for heading, metric in columns.items()}
