"""Aggregates over seeds: mean, standard deviation and a 95% t-interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and 95% confidence interval of one metric."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g} (95% CI {self.low:.4g} to {self.high:.4g}, n={self.n})"

    def __neg__(self) -> Summary:
        """The summary of the negated values: a gain read as a change, say."""
        return Summary(-self.mean, self.std, -self.high, -self.low, self.n)


def summarize(values: Sequence[float]) -> Summary:
    """Summarizes finite values; with one value the interval is that value (no spread known)."""
    # Imported here: SciPy's stats take half a second that `ablate`'s checks need not wait for.
    from scipy import stats

    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    n = len(array)
    if n == 0:
        return Summary(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    mean = float(array.mean())
    if n == 1:
        return Summary(mean, 0.0, mean, mean, 1)
    std = float(array.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))
    return Summary(mean, std, mean - half, mean + half, n)


def aggregate(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per condition (``by``) with mean, std, ci_low, ci_high and n of each metric."""
    rows = []
    groups = frame.groupby(list(by), sort=True, dropna=False) if by else [((), frame)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        for metric in metrics:
            if metric not in group:
                continue
            summary = summarize(group[metric].to_numpy())
            row.update(
                {
                    f"{metric}_mean": summary.mean,
                    f"{metric}_std": summary.std,
                    f"{metric}_ci_low": summary.low,
                    f"{metric}_ci_high": summary.high,
                    f"{metric}_n": summary.n,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)
