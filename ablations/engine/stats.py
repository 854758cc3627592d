"""Aggregates over seeds, and intervals valid for the kind of quantity they describe.

Three kinds of quantity, each with its own interval (`interval`):

- ``"mean"``: a continuous effect (a paired difference of errors, a log ratio):
  the t-interval of its mean. It needs two values at least; with one it is
  unbounded, so one noisy number never decides. Where every seed gives the
  same value (an error rate of 0 at every seed, two nets with the same
  accuracy), the quantity is discrete in effect and a t-interval would have
  zero width: such a row takes the ``"median"`` interval instead, which
  decides only with enough seeds.
- ``"median"``: a bounded or discrete effect (a fraction, a count, a rank): the
  distribution-free interval of its median, from order statistics (the sign
  test inverted). It stays inside the values seen, so it respects their bounds,
  and it does not collapse for identical values: with too few seeds for the
  level it is the whole range the quantity can take (three of three seeds
  positive decide nothing at 5%: a chance of 1/4).
- ``"exact"``: deterministic algebra (a composed map's deviation, f∘f − f):
  no sampling error, so the interval is the range of the values.

The functions take arrays of shape ``(..., n)`` so that `verdict` and the
simulation of its error rates (`verdict_rates`) run the very same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["mean", "median", "exact"]
KINDS: tuple[Kind, ...] = ("mean", "median", "exact")
LEVEL = 0.95
"""The coverage of a plain (unadjusted) interval."""


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation and 95% interval of one metric over seeds, with the values behind them.

    Args:
        mean: The mean of the finite values.
        std: Their sample standard deviation (0 with one value).
        low: The 95% interval's low end, by ``kind`` (the value itself when
            there is one value and the kind is "mean": a description, not a test).
        high: Its high end.
        n: How many finite values.
        values: The values, so that an interval at another level can be drawn (`interval`).
        kind: "mean", "median" or "exact" (see the module).
        bounds: The range the quantity can take, e.g. (0, 1) for a fraction.
    """

    mean: float
    std: float
    low: float
    high: float
    n: int
    values: tuple[float, ...] = ()
    kind: Kind = "mean"
    bounds: tuple[float, float] = (-math.inf, math.inf)

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.std:.2g} (95% CI {self.low:.4g} to {self.high:.4g}, n={self.n})"

    def __neg__(self) -> Summary:
        """The summary of the negated values: a gain read as a change, say."""
        return replace(
            self,
            mean=-self.mean,
            low=-self.high,
            high=-self.low,
            values=tuple(-v for v in self.values),
            bounds=(-self.bounds[1], -self.bounds[0]),
        )

    def interval(self, alpha: float = 1 - LEVEL) -> tuple[float, float]:
        """The two-sided ``1 - alpha`` interval of this kind; unbounded (or the bounds) where the values cannot decide."""
        if self.n == 0:
            return math.nan, math.nan
        low, high = interval(np.asarray(self.values, dtype=float), self.kind, alpha, self.bounds)
        return float(low), float(high)


def summarize(values: Sequence[float], kind: Kind = "mean", bounds: tuple[float, float] = (-math.inf, math.inf)) -> Summary:
    """Summarizes finite values; the interval is that of ``kind`` (see the module).

    Args:
        values: One value per seed; NaN and infinite values are dropped.
        kind: "mean" (continuous), "median" (bounded or discrete) or "exact" (algebra).
        bounds: The range the quantity can take (a fraction: (0, 1)).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    n = len(array)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, math.nan, 0, (), kind, bounds)
    mean = float(array.mean())
    # Identical values have no spread, exactly (NumPy's mean can leave a rounding residue of 1e-17).
    std = float(array.std(ddof=1)) if n > 1 and not tied(array) else 0.0
    if n == 1 and kind == "mean":
        low = high = mean  # a description of one value; `Summary.interval` says it cannot decide
    else:
        low, high = (float(end) for end in interval(array, kind, 1 - LEVEL, bounds))
    return Summary(mean, std, low, high, n, tuple(float(v) for v in array), kind, bounds)


def interval(values: np.ndarray, kind: Kind, alpha: float, bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[np.ndarray, np.ndarray]:
    """The two-sided ``1 - alpha`` interval of each row of ``values`` (shape ``(..., n)``), by ``kind``.

    Args:
        values: Finite values, one row per effect.
        kind: "mean", "median" or "exact".
        alpha: One minus the coverage (already divided by the number of
            conditions when intervals are simultaneous).
        bounds: The range the quantity can take; an interval that cannot
            decide is this range.
    """
    values = np.asarray(values, dtype=float)
    if kind == "exact":
        return values.min(axis=-1), values.max(axis=-1)
    if kind == "median":
        return median_interval(values, alpha, bounds)
    return t_interval(values, alpha, bounds)


def t_interval(values: np.ndarray, alpha: float, bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[np.ndarray, np.ndarray]:
    """The t-interval of each row's mean; with fewer than two values per row, ``bounds``.

    A row of identical values has no spread to draw a t-interval from: it
    takes `median_interval` (``bounds`` with too few seeds for the level).
    """
    from scipy import stats  # half a second that `ablate`'s checks need not wait for

    n = values.shape[-1]
    if n < 2:
        shape = values.shape[:-1]
        return np.full(shape, bounds[0]), np.full(shape, bounds[1])
    mean = values.mean(axis=-1)
    half = stats.t.ppf(1 - alpha / 2, n - 1) * values.std(axis=-1, ddof=1) / math.sqrt(n)
    same = tied(values)
    if not np.any(same):
        return mean - half, mean + half
    low, high = median_interval(values, alpha, bounds)
    return np.where(same, low, mean - half), np.where(same, high, mean + half)


TIE_TOLERANCE = 1e-12
"""Values that differ by less than this, relative to the largest of them, are the same value: what float64
rounding leaves of a difference that cancels exactly (a seed that scales both terms of a ratio)."""


def tied(values: np.ndarray) -> np.ndarray:
    """Whether each row of ``values`` (shape ``(..., n)``) holds one value, up to float64 rounding (`TIE_TOLERANCE`)."""
    values = np.asarray(values, dtype=float)
    spread = values.max(axis=-1) - values.min(axis=-1)
    return spread <= TIE_TOLERANCE * np.abs(values).max(axis=-1)


def median_rank(n: int, alpha: float) -> int:
    """The largest k with P(Binomial(n, 1/2) ≤ k - 1) ≤ alpha / 2, so that [x_(k), x_(n+1-k)] covers the median; 0 if none."""
    from scipy import stats

    k = 0
    while k < n and stats.binom.cdf(k, n, 0.5) <= alpha / 2:
        k += 1
    return k


def power(distance: float, std: float, n: int, alpha: float, kind: Kind = "mean") -> float:
    """The chance that an interval's near end clears a boundary ``distance`` away from the true effect.

    For "mean", a one-sided t-test at ``alpha / 2`` (the interval's one tail)
    against a true effect ``distance`` beyond the boundary, with spread ``std``
    (the noncentral t). For "median", the same with the sign test's asymptotic
    efficiency against the t-test on normal data (2/π of the seeds), and 0
    where ``n`` seeds can never give a bounded interval at this level. "exact":
    1 when the effect is beyond the boundary at all.

    Args:
        distance: How far beyond the boundary the true effect lies (> 0).
        std: The spread of one seed's value.
        n: Seeds.
        alpha: One minus the interval's coverage.
        kind: The interval's kind.
    """
    from scipy import stats

    if kind == "exact":
        return 1.0 if distance > 0 else 0.0
    if n < 2 or ((kind == "median" or std <= 0) and median_rank(n, alpha) == 0):
        return 0.0  # no bounded interval at this level (identical values take the median's, `t_interval`)
    if std <= 0:
        return 1.0 if distance > 0 else 0.0
    effective = n * 2 / math.pi if kind == "median" else n
    critical = stats.t.ppf(1 - alpha / 2, n - 1)
    noncentrality = distance * math.sqrt(effective) / std
    chance = float(stats.nct.sf(critical, n - 1, noncentrality))
    # SciPy's noncentral t gives NaN far out in its tail (a spread of 1e-26 against a distance of 0.01).
    return chance if math.isfinite(chance) else float(noncentrality > critical)


def seeds_for_power(distance: float, std: float, alpha: float, kind: Kind = "mean", target: float = 0.8, most: int = 1000) -> int | None:
    """The fewest seeds whose `power` reaches ``target``; None beyond ``most`` (or when nothing can be detected)."""
    if kind == "exact" or distance <= 0:
        return None
    for n in range(2, most + 1):
        if power(distance, std, n, alpha, kind) >= target:
            return n
    return None


def median_interval(values: np.ndarray, alpha: float, bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[np.ndarray, np.ndarray]:
    """The order-statistic interval of each row's median (coverage ≥ 1 - alpha, ties included); ``bounds`` when n is too small."""
    n = values.shape[-1]
    k = median_rank(n, alpha) if n else 0
    if k == 0:
        shape = values.shape[:-1]
        return np.full(shape, bounds[0]), np.full(shape, bounds[1])
    ordered = np.sort(values, axis=-1)
    return ordered[..., k - 1], ordered[..., n - k]


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
            # A description, not a test: a metric every seed agrees on (an epoch count) is that value, not unbounded.
            low, high = (summary.values[0], summary.values[0]) if summary.n and summary.std == 0 else (summary.low, summary.high)
            row.update(
                {
                    f"{metric}_mean": summary.mean,
                    f"{metric}_std": summary.std,
                    f"{metric}_ci_low": low,
                    f"{metric}_ci_high": high,
                    f"{metric}_n": summary.n,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)
