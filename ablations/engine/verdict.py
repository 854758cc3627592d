"""The suite's one verdict policy: checks per condition, one rule for the whole claim.

An ablation states its claim as checks, each fixed in code before any run:

- a **condition**: where the check is made ("digits, strong", "n_train=3000");
- a **part**: which part of the claim it tests ("held-out error lower");
- an **effect**: a `stats.Summary` over seeds (mean and 95% interval), usually
  a difference paired by seed;
- a **claimed region**: the values that bear the claim out, an open interval,
  e.g. above 0 (`Check.above`), below 0 (`Check.below`) or a band such as
  "about doubles" (`Check.within`).

A check's outcome compares its 95% interval with the claimed region:

- *reproduced*: the interval lies wholly inside the region;
- *not reproduced*: the interval lies wholly outside it (on the wrong side);
- *inconclusive*: it straddles a boundary, or there is nothing to read.

With one value (one seed, or a number with no spread) the interval is that value.

The verdict of the claim follows from its checks by one rule:

- *reproduced*: every part of the claim held under at least one condition, and
  no check is not reproduced;
- *partly reproduced*: some checks reproduced and some not reproduced;
- *not reproduced*: no check reproduced and at least one not reproduced;
- *inconclusive*: otherwise: nothing contradicts the claim, but some part of it
  held nowhere (or there is no check at all).

So *reproduced* never stands beside a check whose interval lies wholly on the
wrong side, nor rests on one part while another could not be told; and the
summary names the conditions where the claim held, where it failed and where
it could not be told.

Example:

>>> gain = summarize([0.05, 0.06, 0.04])
>>> Verdict([Check.above("digits", "held-out error lower", gain)]).outcome
'reproduced'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ablations.engine.stats import Summary

OUTCOMES = ("reproduced", "partly reproduced", "not reproduced", "inconclusive")
Outcome = Literal["reproduced", "partly reproduced", "not reproduced", "inconclusive"]
CheckOutcome = Literal["reproduced", "not reproduced", "inconclusive"]

RULE = (
    "Each check compares the 95% interval of an effect (over seeds) with the region the claim predicts, fixed before "
    "the run: reproduced when the interval lies wholly inside it, not reproduced when wholly outside, inconclusive "
    "otherwise. The claim is reproduced when every part of it is reproduced under at least one condition and no check "
    "is not reproduced; partly reproduced when some checks are reproduced and some are not; not reproduced when none "
    "is reproduced and some are not; inconclusive otherwise (nothing contradicts it, but some part held nowhere)."
)
"""The policy in one paragraph, for the README and the report."""

REGIME = "regime without the remedy"
"""The `Check.details` column that says whether the net overfits without the remedy (see `regime`)."""
OVERFIT_GAP = 0.02
"""The least gap between held-out and training error read as overfitting (see `regime`)."""


def regime(train_error: float, heldout_error: float, spec: str = ".3f") -> str:
    """Whether a net overfits: its training error well below its held-out error, in words.

    "overfits" when the training error is at most half the held-out error and
    at least `OVERFIT_GAP` below it (errors as rates, or MSE over the target's
    variance); "does not overfit" otherwise. The errors follow in brackets.
    """
    gap = heldout_error - train_error
    overfits = gap >= OVERFIT_GAP and train_error <= heldout_error / 2
    reading = "overfits" if overfits else "does not overfit"
    return f"{reading} (train {train_error:{spec}}, held-out {heldout_error:{spec}})"


@dataclass(frozen=True)
class Check:
    """One part of a claim, tested under one condition.

    Args:
        condition: Where the check is made, e.g. "digits, strong" or "n_train=3000".
        part: The part of the claim it tests, e.g. "held-out error lower".
        effect: The measured effect over seeds (`stats.summarize`).
        region: The open interval ``(low, high)`` of effects that bear the
            claim out; an infinite end for one-sided claims.
        spec: Format of the effect's numbers, e.g. "+.3f" or ".2f".
        lower_bound: The effect's values are lower bounds (a run that never
            got there counts as its budget), so its interval has no upper end.
        details: Further cells for this condition's row of the report's table,
            e.g. the training and held-out error without the remedy.
    """

    condition: str
    part: str
    effect: Summary
    region: tuple[float, float] = (0.0, math.inf)
    spec: str = "+.3f"
    lower_bound: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def above(cls, condition: str, part: str, effect: Summary, threshold: float = 0.0, **options: Any) -> Check:
        """The claim: the effect is above ``threshold``."""
        return cls(condition, part, effect, (threshold, math.inf), **options)

    @classmethod
    def below(cls, condition: str, part: str, effect: Summary, threshold: float = 0.0, **options: Any) -> Check:
        """The claim: the effect is below ``threshold``."""
        return cls(condition, part, effect, (-math.inf, threshold), **options)

    @classmethod
    def within(cls, condition: str, part: str, effect: Summary, low: float, high: float, **options: Any) -> Check:
        """The claim: the effect lies between ``low`` and ``high`` ("about doubles": 1.5 to 3)."""
        return cls(condition, part, effect, (low, high), **options)

    @property
    def interval(self) -> tuple[float, float]:
        """The effect's 95% interval; with one value, that value; unbounded above for lower bounds."""
        return self.effect.low, math.inf if self.lower_bound else self.effect.high

    @property
    def outcome(self) -> CheckOutcome:
        """Reproduced, not reproduced or inconclusive, by the module's rule."""
        if self.effect.n == 0 or math.isnan(self.effect.mean):
            return "inconclusive"
        low, high = self.interval
        region_low, region_high = self.region
        # An unbounded region holds any high end, even the unknown one of a lower bound.
        if region_low < low and (high < region_high or math.isinf(region_high)):
            return "reproduced"
        if high <= region_low or low >= region_high:
            return "not reproduced"
        return "inconclusive"

    @property
    def claimed(self) -> str:
        """The claimed region in words: "> 0", "< -0.01", "1.5 to 3"."""
        low, high = self.region
        if math.isinf(high):
            return f"> {low:g}"
        if math.isinf(low):
            return f"< {high:g}"
        return f"{low:g} to {high:g}"

    @property
    def measured(self) -> str:
        """The effect and its 95% interval in words ("n/a" when there is none)."""
        if self.effect.n == 0:
            return "n/a"
        bound = "≥ " if self.lower_bound else ""
        mean = f"{bound}{self.effect.mean:{self.spec}}"
        if self.effect.n == 1:
            return f"{mean} (one value)"
        low, high = self.interval
        upper = "…" if math.isinf(high) else f"{high:{self.spec}}"
        return f"{mean} (95% CI {low:{self.spec}} to {upper}, n={self.effect.n})"

    def row(self) -> dict[str, Any]:
        """This check as a row of the report's per-condition table."""
        return {
            "condition": self.condition,
            "part": self.part,
            "effect (95% CI)": self.measured,
            "claimed": self.claimed,
            "outcome": self.outcome,
            **self.details,
        }


def overall_outcome(checks: Iterable[tuple[str, str]]) -> Outcome:
    """The claim's outcome from its checks, as ``(part, outcome)`` pairs, by the module's rule."""
    checks = list(checks)
    outcomes = {outcome for _, outcome in checks}
    held = "reproduced" in outcomes
    failed = "not reproduced" in outcomes
    if held and failed:
        return "partly reproduced"
    if failed:
        return "not reproduced"
    parts_held = {part for part, outcome in checks if outcome == "reproduced"}
    if held and parts_held == {part for part, _ in checks}:
        return "reproduced"
    return "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """The outcome of an ablation: its checks, and what follows from them by the one rule.

    Args:
        checks: Every check of the claim, in the order the report lists them.
        headline: The effect a reader cites: one of ``checks`` (default: the
            first), shown with its 95% interval in the report's summary table.
        notes: What is reported but not judged, or why nothing could be
            judged (a grid without the arms a check needs, say).
    """

    checks: Sequence[Check]
    headline: Check | None = None
    notes: str = ""

    def __post_init__(self):
        object.__setattr__(self, "checks", tuple(self.checks))
        if self.headline is None and self.checks:
            object.__setattr__(self, "headline", self.checks[0])

    @property
    def outcome(self) -> Outcome:
        """The claim's outcome (`overall_outcome` of the checks)."""
        return overall_outcome((check.part, check.outcome) for check in self.checks)

    def where(self, outcome: CheckOutcome) -> list[str]:
        """The conditions (with the part, when the claim has several) whose check has ``outcome``."""
        several_parts = len({check.part for check in self.checks}) > 1
        labels = [f"{check.condition}: {check.part}" if several_parts else check.condition for check in self.checks if check.outcome == outcome]
        return list(dict.fromkeys(labels))

    @property
    def summary(self) -> str:
        """Where the claim held, failed and could not be told, each with its effect; then the notes."""
        sentences = []
        for outcome, opening in (("reproduced", "Held"), ("not reproduced", "Failed"), ("inconclusive", "Unclear")):
            checks = [check for check in self.checks if check.outcome == outcome]
            if checks:
                sentences.append(f"{opening}: " + "; ".join(f"{c.condition}: {c.part}, {c.measured}" for c in checks) + ".")
        if self.notes:
            sentences.append(self.notes)
        return " ".join(sentences) or "Nothing to judge."

    @property
    def effect(self) -> float:
        """The headline effect's mean (NaN without a headline)."""
        return self.headline.effect.mean if self.headline else math.nan

    @property
    def effect_name(self) -> str:
        """What the headline effect measures, and where."""
        return f"{self.headline.part} ({self.headline.condition})" if self.headline else "no effect measured"

    @property
    def table(self) -> list[dict[str, Any]]:
        """The per-condition table: one row per check."""
        return [check.row() for check in self.checks]

    def to_dict(self) -> dict[str, Any]:
        """Everything the report and `ablate compare` read back, as JSON-ready data."""
        headline = self.headline
        return {
            "outcome": self.outcome,
            "summary": self.summary,
            "rule": RULE,
            "effect_name": self.effect_name,
            "headline": None
            if headline is None
            else {
                "condition": headline.condition,
                "part": headline.part,
                "mean": headline.effect.mean,
                "low": headline.interval[0],
                "high": headline.interval[1],
                "n": headline.effect.n,
                "measured": headline.measured,
            },
            "held": self.where("reproduced"),
            "failed": self.where("not reproduced"),
            "unclear": self.where("inconclusive"),
            "notes": self.notes,
            "table": self.table,
        }
