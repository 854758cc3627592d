"""The suite's one verdict policy: checks per condition, one rule for the whole claim, error rates controlled.

An ablation states its claim as checks, each fixed in code before any run:

- a **condition**: where the check is made ("digits, strong", "n_train=3000");
- a **part**: which part of the claim it tests ("held-out error lower");
- an **effect**: a `stats.Summary` over seeds, usually a difference paired by
  seed, of a kind ("mean", "median" for bounded or discrete quantities,
  "exact" for algebra) that sets how its interval is drawn;
- a **claimed region**: the values that bear the claim out, an open interval,
  e.g. above 0 (`Check.above`), below 0 (`Check.below`) or a band such as
  "about doubles" (`Check.within`);
- a **smallest effect of interest** (`SmallestEffect`), with a one-line reason:
  effects within ± it of the null value (no effect) are negligible;
- a **role**: a *claim* condition, where the claim is expected to hold; a
  *boundary* condition, declared where the literature does not expect it to
  hold (reported and judged, but it never makes the claim hold nor fail); an
  *extension*, a condition beyond what the lecture claims (tanh where the
  lecture speaks of the sigmoid: judged and shown, it never decides either);
  or a *sanity* check, which holds by construction, or checks that the grid
  can show the claim at all (a learning-rate grid that brackets each arm's
  best rate): shown, never evidence, and a failure fails the run.

A check's outcome compares its interval with the claimed region and the band
± the smallest effect around the null:

- *no effect*: the interval lies wholly within the band (an equivalence test,
  TOST at the interval's level). An interval also wholly inside the claimed
  region is a real but negligible effect: it counts as no effect, and says so;
- *reproduced*: the interval lies wholly inside the claimed region;
- *not reproduced*: the interval lies wholly on the wrong side;
- *inconclusive*: otherwise, or when it has fewer than two values and is not exact.

Error rates are controlled. The intervals of one part are simultaneous over
the m claim conditions that can each make it hold (Bonferroni: each at level
1 - 0.05/m), so a false *reproduced* of that part has a chance of at most
2.5% (one tail) whatever the grid's size; a claim needs every part, so a false
*reproduced* of the whole claim stays at or below that too (`verdict_rates`
simulates every claim shape the ablations use).

The verdict of the claim follows from its claim checks by one rule:

- *reproduced*: every part held under at least one condition, and no claim
  check is not reproduced or shows no effect;
- *partly reproduced*: some checks reproduced and some not reproduced or no effect;
- *not reproduced*: none reproduced and at least one not reproduced;
- *not reproduced (no effect)*: none reproduced, none on the wrong side, and
  at least one part shown to have no effect;
- *inconclusive*: otherwise: nothing contradicts the claim, but some part of it
  held nowhere (or there is no check at all).

Example:

>>> gain = summarize([0.05, 0.06, 0.04])
>>> Verdict([Check.above("digits", "held-out error lower", gain, smallest=SmallestEffect(0.005, "half a point"))]).outcome
'reproduced'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ablations.engine.stats import Summary, power, seeds_for_power

OUTCOMES = ("reproduced", "partly reproduced", "not reproduced", "not reproduced (no effect)", "inconclusive")
Outcome = Literal["reproduced", "partly reproduced", "not reproduced", "not reproduced (no effect)", "inconclusive"]
CheckOutcome = Literal["reproduced", "not reproduced", "no effect", "inconclusive"]
CHECK_OUTCOMES: tuple[CheckOutcome, ...] = ("reproduced", "not reproduced", "no effect", "inconclusive")
Role = Literal["claim", "boundary", "extension", "sanity"]
ROLES = ("claim", "boundary", "extension", "sanity")
FAMILY_ALPHA = 0.05
"""One minus the simultaneous coverage of a part's intervals: each tail, and so a false *reproduced*, at most half of it."""
TARGET_POWER = 0.8
"""The power each claim check should have at its smallest effect; below it the summary says how many seeds would reach it."""

RULE = (
    "Each check states before the run the region its effect must lie in, the null value (no effect) and a smallest "
    "effect of interest. Its interval over seeds is read against them: no effect when the interval lies wholly "
    "within ± the smallest effect around the null (an equivalence test; a real effect that small counts as no "
    "effect and is named negligible), reproduced when wholly inside the claimed region, not reproduced when wholly "
    "on the wrong side, inconclusive otherwise. Intervals are 95% t-intervals of a mean, order-statistic intervals "
    "of a median for bounded or discrete quantities and for means whose seeds all agree (they cannot decide with "
    "too few seeds), or the range of exact "
    "algebraic values; a check with one seed decides nothing unless it is exact. The intervals of a part are "
    "simultaneous over the conditions that can each make it hold (Bonferroni), so a false reproduced stays at or "
    "below 2.5% whatever the grid's size. Boundary conditions, declared where the claim is not expected to hold, and "
    "sanity checks, which hold by construction, are shown but never decide. The claim is reproduced when every part "
    "is reproduced under at least one condition and no claim check is not reproduced or shows no effect; partly "
    "reproduced when some checks are reproduced and some are not (or show no effect); not reproduced when none is "
    "reproduced and some are not; not reproduced (no effect) when the parts that could be told show no effect; "
    "inconclusive otherwise."
)
"""The policy in one paragraph, for the README and the report."""


@dataclass(frozen=True)
class SmallestEffect:
    """The smallest effect a check cares about, fixed before the run, with the reason for its size.

    Args:
        size: Effects within ± ``size`` of the check's null value are negligible (0: any effect counts).
        reason: One line: a literature value, or a practical threshold such as "half a point of error".
    """

    size: float
    reason: str

    def __post_init__(self):
        if not (self.size >= 0 and math.isfinite(self.size)):
            raise ValueError(f"SmallestEffect.size must be finite and >= 0; received {self.size!r}.")
        if not self.reason.strip():
            raise ValueError("SmallestEffect needs a one-line reason for its size.")


SANITY = SmallestEffect(0.0, "a sanity check: it holds by construction, so no size of effect makes it evidence")
HALF_POINT_OF_ERROR = SmallestEffect(
    0.005, "half a point of held-out error: the order of dropout's gain on MNIST in Srivastava et al. (2014), and less than a reader would act on"
)
"""The smallest effect of interest the regularization ablations share for a change of held-out error rate."""


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
        effect: The measured effect over seeds (`stats.summarize`, of its kind).
        region: The open interval ``(low, high)`` of effects that bear the
            claim out; an infinite end for one-sided claims.
        smallest: The smallest effect of interest, with its reason.
        null: The effect that means "no effect" (0 for a difference, 1 for a ratio).
        role: "claim", "boundary" (not expected to hold: judged, never
            decides), "extension" (beyond the lecture's claim: judged, never
            decides) or "sanity" (holds by construction: shown, never evidence).
        alpha: One minus the interval's coverage; `Verdict` sets it to
            `FAMILY_ALPHA` over the number of claim conditions of the part.
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
    smallest: SmallestEffect | None = None
    null: float = 0.0
    role: Role = "claim"
    alpha: float = FAMILY_ALPHA
    spec: str = "+.3f"
    lower_bound: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.smallest is None:
            if self.role != "sanity":
                raise ValueError(f"check {self.condition!r}: {self.part!r} needs a smallest effect of interest (SmallestEffect).")
            object.__setattr__(self, "smallest", SANITY)
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}; received {self.role!r}.")

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
    def level(self) -> float:
        """The interval's coverage, e.g. 0.95, or 0.9875 when simultaneous over four conditions."""
        return 1 - self.alpha

    @property
    def interval(self) -> tuple[float, float]:
        """The effect's interval at `level`, of its kind; unbounded above for lower bounds."""
        low, high = self.effect.interval(self.alpha)
        return low, math.inf if self.lower_bound else high

    @property
    def band(self) -> tuple[float, float]:
        """The effects read as no effect: the null ± the smallest effect of interest.

        Empty where the claimed region holds the null: a claim of no harm
        ("keeps it: above -0.05", "prediction spread within 1/1.25 to 1.25")
        is borne out by no effect, so no effect cannot contradict it.
        """
        low, high = self.region
        if low < self.null < high:
            return self.null, self.null
        return self.null - self.smallest.size, self.null + self.smallest.size

    @property
    def outcome(self) -> CheckOutcome:
        """No effect, reproduced, not reproduced or inconclusive, by the module's rule."""
        if self.effect.n == 0 or math.isnan(self.effect.mean):
            return "inconclusive"
        return classify(*self.interval, self.region, self.band)

    @property
    def negligible(self) -> bool:
        """A real effect, wholly in the claimed region, but within ± the smallest effect: counted as no effect."""
        return self.outcome == "no effect" and classify(*self.interval, self.region, (0.0, 0.0)) == "reproduced"

    @property
    def power(self) -> float | None:
        """The chance of *reproduced* if the true effect were the smallest of interest beyond the claimed region, at this spread and n.

        For a claim of no harm (the region holds the null) the true effect is
        the null itself; for a band ("1.5 to 3") its middle. None where the
        spread is unknown (fewer than two values of a sampled kind).
        """
        if self.effect.kind != "exact" and self.effect.n < 2:
            return None
        ends = [power(distance, self.effect.std, self.effect.n, self.alpha, self.effect.kind) for distance in self._distances()]
        return max(0.0, sum(ends) - (len(ends) - 1))

    def seeds_needed(self, target: float = TARGET_POWER) -> int | None:
        """Seeds that would give `power` ``target`` at the spread seen (None: exact, unknown spread, or beyond 1,000)."""
        if self.effect.kind == "exact" or self.effect.n < 2:
            return None
        distances = self._distances()
        # A band's two ends need the nearer one's seeds, and a little more; the nearer one bounds it well enough here.
        return seeds_for_power(min(distances), self.effect.std, self.alpha, self.effect.kind, target)

    def _distances(self) -> list[float]:
        """How far the assumed true effect lies inside each finite end of the region."""
        low, high = self.region
        if low < self.null < high:
            truth = self.null
        elif math.isinf(low) or math.isinf(high):
            truth = low + self.smallest.size if math.isfinite(low) else high - self.smallest.size
        else:
            truth = (low + high) / 2
        return [distance for distance in (truth - low, high - truth) if math.isfinite(distance)]

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
        """The effect and its interval in words ("n/a" when there is none)."""
        if self.effect.n == 0:
            return "n/a"
        bound = "≥ " if self.lower_bound else ""
        centre = "median " if self.effect.kind == "median" else ""
        value = float(sorted(self.effect.values)[len(self.effect.values) // 2]) if centre and self.effect.values else self.effect.mean
        mean = f"{centre}{bound}{value:{self.spec}}"
        if self.effect.kind == "exact":
            return f"{mean} (exact, n={self.effect.n})"
        if self.effect.n == 1:
            return f"{mean} (one value: no interval)"
        low, high = self.interval
        ends = [("…" if math.isinf(end) else f"{end:{self.spec}}") for end in (low, high)]
        return f"{mean} ({100 * self.level:.4g}% CI {ends[0]} to {ends[1]}, n={self.effect.n})"

    def row(self) -> dict[str, Any]:
        """This check as a row of the report's per-condition table."""
        power_now = self.power
        return {
            "condition": self.condition,
            "part": self.part,
            "role": self.role,
            "effect (CI)": self.measured,
            "claimed": self.claimed,
            "smallest effect": f"±{self.smallest.size:g} around {self.null:g}: {self.smallest.reason}",
            "power": "n/a" if power_now is None else f"{power_now:.2f}",
            "seeds for 80% power": self._seeds_text(),
            "outcome": "no effect (negligible, real)" if self.negligible else self.outcome,
            **self.details,
        }

    def _seeds_text(self) -> str:
        """The seeds that would give `TARGET_POWER`, in words for the table."""
        if self.effect.kind == "exact":
            return "n/a (exact)"
        if self.effect.n < 2:
            return "n/a (one value)"
        needed = self.seeds_needed()
        return "> 1,000" if needed is None else str(needed)

    def numbers(self) -> dict[str, Any]:
        """What a forest plot draws of this check: the interval, the region and the band."""
        low, high = self.interval
        return {
            "condition": self.condition,
            "part": self.part,
            "role": self.role,
            "mean": self.effect.mean,
            "low": low,
            "high": high,
            "region": list(self.region),
            "band": list(self.band),
            "outcome": self.outcome,
        }


def classify(low: Any, high: Any, region: tuple[float, float], band: tuple[float, float]) -> Any:
    """The check rule on an interval (scalars, or arrays for the simulation in `verdict_rates`).

    Args:
        low: The interval's low ends.
        high: Its high ends (inf for lower bounds).
        region: The claimed open region.
        band: The open no-effect band; an empty one (low == high) never holds.
    """
    import numpy as np

    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    region_low, region_high = region
    # An open band: an effect of exactly the smallest size is of interest (a count's +1 is an effect).
    no_effect = (band[0] < band[1]) & (band[0] < low) & (high < band[1])
    # An unbounded region holds any high end, even the unknown one of a lower bound.
    inside = (region_low < low) & ((high < region_high) | np.isinf(region_high))
    outside = (high <= region_low) | (low >= region_high)
    codes = np.select([no_effect, inside, outside], ["no effect", "reproduced", "not reproduced"], "inconclusive")
    return str(codes) if codes.ndim == 0 else codes


def overall_outcome(checks: Iterable[tuple[str, str]]) -> Outcome:
    """The claim's outcome from its claim checks, as ``(part, outcome)`` pairs, by the module's rule."""
    checks = list(checks)
    outcomes = {outcome for _, outcome in checks}
    held = "reproduced" in outcomes
    failed = "not reproduced" in outcomes
    none_shown = "no effect" in outcomes
    if held and (failed or none_shown):
        return "partly reproduced"
    if failed:
        return "not reproduced"
    if none_shown:
        return "not reproduced (no effect)"
    parts_held = {part for part, outcome in checks if outcome == "reproduced"}
    if held and parts_held == {part for part, _ in checks}:
        return "reproduced"
    return "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """The outcome of an ablation: its checks, and what follows from them by the one rule.

    The checks' intervals are made simultaneous per part here: each check of a
    part gets ``alpha = FAMILY_ALPHA / m``, m the part's claim conditions.

    Args:
        checks: Every check of the claim, in the order the report lists them.
        headline: The effect a reader cites: one of ``checks`` (default: the
            first claim check), shown with its interval in the report's summary table.
        notes: What is reported but not judged, or why nothing could be
            judged (a grid without the arms a check needs, say).
    """

    checks: Sequence[Check]
    headline: Check | None = None
    notes: str = ""

    def __post_init__(self):
        claims = Counter(check.part for check in self.checks if check.role == "claim")
        adjusted = tuple(
            replace(check, alpha=FAMILY_ALPHA / max(1, claims[check.part])) if check.role != "sanity" else check for check in self.checks
        )
        headline = self.headline
        if headline is not None:
            headline = adjusted[self.checks.index(headline)] if headline in self.checks else headline
        elif adjusted:
            headline = next((check for check in adjusted if check.role == "claim"), adjusted[0])
        object.__setattr__(self, "checks", adjusted)
        object.__setattr__(self, "headline", headline)

    @property
    def claim_checks(self) -> tuple[Check, ...]:
        """The checks that decide: no boundary, extension or sanity check."""
        return tuple(check for check in self.checks if check.role == "claim")

    @property
    def outcome(self) -> Outcome:
        """The claim's outcome (`overall_outcome` of the claim checks)."""
        return overall_outcome((check.part, check.outcome) for check in self.claim_checks)

    @property
    def sanity_failures(self) -> list[Check]:
        """Sanity checks that did not hold: each is a bug, not a finding.

        One that too few seeds cannot tell (inconclusive: a share over one seed) has not failed; the summary
        shows it as unclear.
        """
        return [check for check in self.checks if check.role == "sanity" and check.outcome not in ("reproduced", "inconclusive")]

    def where(self, outcome: CheckOutcome, role: Role = "claim") -> list[str]:
        """The conditions (with the part, when the claim has several) whose check of ``role`` has ``outcome``."""
        several_parts = len({check.part for check in self.checks}) > 1
        labels = [
            f"{check.condition}: {check.part}" if several_parts else check.condition
            for check in self.checks
            if check.outcome == outcome and check.role == role
        ]
        return list(dict.fromkeys(labels))

    @property
    def summary(self) -> str:
        """Where the claim held, failed, showed no effect and could not be told, each with its effect; then the notes."""
        sentences = []
        openings = (("reproduced", "Held"), ("not reproduced", "Failed"), ("no effect", "No effect"), ("inconclusive", "Unclear"))
        for outcome, opening in openings:
            checks = [check for check in self.claim_checks if check.outcome == outcome]
            if checks:
                sentences.append(f"{opening}: " + "; ".join(_said(check) for check in checks) + ".")
        boundary = [check for check in self.checks if check.role == "boundary"]
        if boundary:
            sentences.append("Boundary conditions (not expected to hold; never decide): " + "; ".join(f"{_said(c)}: {c.outcome}" for c in boundary) + ".")
        extensions = [check for check in self.checks if check.role == "extension"]
        if extensions:
            sentences.append("Extensions (beyond the lecture's claim; never decide): " + "; ".join(f"{_said(c)}: {c.outcome}" for c in extensions) + ".")
        if self.sanity_failures:
            sentences.append("Sanity checks FAILED (a bug): " + "; ".join(_said(c) for c in self.sanity_failures) + ".")
        unclear = [check for check in self.checks if check.role == "sanity" and check.outcome == "inconclusive"]
        if unclear:
            sentences.append("Sanity checks unclear (too few seeds to tell): " + "; ".join(_said(c) for c in unclear) + ".")
        if self.claim_checks and all(c.effect.n < 2 and c.effect.kind != "exact" for c in self.claim_checks):
            sentences.append("Every check had one value: an interval needs at least two seeds (exact quantities excepted).")
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
            "family_alpha": FAMILY_ALPHA,
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
            "no_effect": self.where("no effect"),
            "unclear": self.where("inconclusive"),
            "notes": self.notes,
            "table": self.table,
            "checks": [check.numbers() for check in self.checks],
        }


def _said(check: Check) -> str:
    """A check in a sentence: where, what, the effect; for an undecided claim check, the seeds that would decide it."""
    text = f"{check.condition}: {check.part}, {check.measured}"
    if check.role == "claim" and check.outcome == "inconclusive":
        power_now, needed = check.power, check.seeds_needed()
        if power_now is not None and power_now < TARGET_POWER:
            text += f" (power {power_now:.2f} at the smallest effect; {needed or '> 1,000'} seeds would give {TARGET_POWER:.0%})"
    return text
