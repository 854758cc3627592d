"""Effect statistics the verdicts share: is an effect there, and how to say so.

An effect is a difference paired by seed (same condition, same seed, one arm
against the other), summarized over seeds by `stats.summarize`. Its reading is
fixed before any run: it holds when the 95% interval excludes 0 on the claimed
side (with one seed: when the mean points that way), fails when the mean points
the other way, is 0, or there is nothing to read, and is unclear when the
interval straddles 0.

Example:

>>> gain = summarize(seed_differences(trials, "augment", False, True, "final_val_error"))
>>> effect_status(gain), mean_ci(gain, "+.3f", label="95% CI")
('reproduced', '+0.120 (95% CI +0.080 to +0.160)')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ablations.engine.spec import Outcome
from ablations.engine.stats import Summary, summarize

_STATUS: dict[bool | None, Outcome] = {True: "reproduced", False: "not reproduced", None: "inconclusive"}


def direction(summary: Summary, sign: int = +1) -> bool | None:
    """Whether an effect has the sign ``sign`` (+1 or -1).

    True when its 95% interval lies on that side of 0 (one value: when it
    does); False when there are no values or the mean is 0 or of the other
    sign; None when the interval straddles 0.
    """
    if summary.n == 0 or summary.mean * sign <= 0:
        return False
    if summary.n == 1:
        return True
    return True if (summary.low > 0 if sign > 0 else summary.high < 0) else None


def significant(summary: Summary, sign: int = +1) -> bool:
    """The effect has the sign ``sign`` beyond doubt (see `direction`)."""
    return direction(summary, sign) is True


def effect_status(summary: Summary) -> Outcome:
    """The status of "the effect is positive": reproduced, not reproduced, or inconclusive (also when there are no values)."""
    if summary.n == 0:
        return "inconclusive"
    return _STATUS[direction(summary, +1)]


def outcome_of_parts(statuses: Iterable[str]) -> Outcome:
    """The outcome of a claim whose parts must all hold.

    Not reproduced when any part is not; reproduced when every part is (and
    there is one); inconclusive otherwise. Unlike `spec.combine_outcomes`,
    which reads conditions, where one reproducing one is enough.
    """
    statuses = list(statuses)
    if "not reproduced" in statuses:
        return "not reproduced"
    if statuses and all(status == "reproduced" for status in statuses):
        return "reproduced"
    return "inconclusive"


def judge_checks(failures: list[str], unsure: list[str], reproduced: str, *, too_few: str = "seeds") -> tuple[Outcome, str]:
    """The outcome and the opening of the summary of a verdict made of checks.

    Args:
        failures: What failed, one phrase each: "not reproduced", opening "Not everywhere: ...".
        unsure: What could not be told: "inconclusive", opening "Too few {too_few} to tell: ...".
        reproduced: The opening when nothing failed and nothing is unsure.
        too_few: What more of would tell ("seeds", "trials").
    """
    if failures:
        return "not reproduced", "Not everywhere: " + "; ".join(failures) + ". "
    if unsure:
        return "inconclusive", f"Too few {too_few} to tell: " + "; ".join(unsure) + ". "
    return "reproduced", reproduced


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
