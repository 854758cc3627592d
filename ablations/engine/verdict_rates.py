"""How often the verdict policy is wrong: simulated claims of every shape the ablations use.

A claim's shape is its parts, each with its number of claim conditions and the
kind of its interval, and its seeds. Per-seed effects are drawn from a normal
distribution (in units of their standard deviation) and pushed through the
policy's own code: `stats.interval` for each condition's interval,
`verdict.classify` for each check and `verdict.overall_outcome` for the claim.

- **False reproduced** (the error the policy controls): one part has no
  effect under any of its conditions, the true effect sitting on the claimed
  region's edge, while every other part is taken as held, the worst case for a
  claim that needs all its parts. The rate is the largest over the parts.
- **Power**: every condition of every part has a true effect of the smallest
  size of interest, `SMALLEST_SD` beyond the edge.
- **No effect**: how often a part whose true effect is 0 is shown to have
  none (an equivalence within ± `SMALLEST_SD`).

The old policy (before the smallest effects and the adjustment: 95% intervals
per condition, one value deciding, t-intervals for every kind, no equivalence
outcome) is simulated beside it with the same draws.

Run ``make verdict-rates`` (``python -m ablations.engine.verdict_rates``) for the table.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ablations.engine.stats import Kind, interval
from ablations.engine.verdict import FAMILY_ALPHA, classify, overall_outcome

SMALLEST_SD = 0.5
"""The smallest effect of interest in the simulation, in standard deviations of one seed's effect."""
REGION = (0.0, math.inf)
"""Every simulated part claims an effect above 0; claims below 0 mirror it, and a band's edges each behave as one."""


@dataclass(frozen=True)
class PartShape:
    """One part of a claim: how many claim conditions can each make it hold, and its interval's kind."""

    conditions: int
    kind: Kind = "mean"


@dataclass(frozen=True)
class ClaimShape:
    """A claim as the verdict sees it: its parts and its seeds.

    Args:
        name: What it is, e.g. "dropout [quick]".
        parts: Its parts.
        seeds: Values per check.
    """

    name: str
    parts: tuple[PartShape, ...]
    seeds: int

    def describe(self) -> str:
        """"2 parts × 3 conditions" and the like."""
        counts = sorted({part.conditions for part in self.parts})
        conditions = "/".join(str(count) for count in counts)
        return f"{len(self.parts)} × {conditions}"


@dataclass(frozen=True)
class Policy:
    """A verdict policy's choices, for the simulation.

    Args:
        name: "old" or "new".
        adjusted: Intervals simultaneous over a part's conditions (Bonferroni).
        one_value_decides: One seed's value is its own interval.
        kinds: Each part's interval is of its kind (else a t-interval for all).
        equivalence: The "no effect" outcome within ± `SMALLEST_SD`.
    """

    name: str
    adjusted: bool
    one_value_decides: bool
    kinds: bool
    equivalence: bool


OLD = Policy("old", adjusted=False, one_value_decides=True, kinds=False, equivalence=False)
NEW = Policy("new", adjusted=True, one_value_decides=False, kinds=True, equivalence=True)


def _codes(values: np.ndarray, part: PartShape, policy: Policy) -> np.ndarray:
    """Each simulated check's outcome: ``values`` has shape (claims, conditions, seeds)."""
    alpha = FAMILY_ALPHA / part.conditions if policy.adjusted else FAMILY_ALPHA
    kind = part.kind if policy.kinds else "mean"
    if values.shape[-1] == 1 and policy.one_value_decides:
        low = high = values[..., 0]
    else:
        low, high = interval(values, kind, alpha)
    band = (-SMALLEST_SD, SMALLEST_SD) if policy.equivalence and kind != "exact" else (0.0, 0.0)
    return classify(low, high, REGION, band)


def _draw(rng: np.random.Generator, claims: int, part: PartShape, seeds: int, effect: float) -> np.ndarray:
    """Per-seed effects of one part: exact quantities carry no noise."""
    if part.kind == "exact":
        return np.full((claims, part.conditions, seeds), effect)
    return rng.normal(effect, 1.0, size=(claims, part.conditions, seeds))


def _claim_outcomes(codes_by_part: list[np.ndarray]) -> list[str]:
    """The claim rule (`overall_outcome`) on each simulated claim."""
    claims = codes_by_part[0].shape[0]
    outcomes = []
    for index in range(claims):
        checks = [(str(part), str(code)) for part, codes in enumerate(codes_by_part) for code in codes[index]]
        outcomes.append(overall_outcome(checks))
    return outcomes


def false_reproduced(shape: ClaimShape, policy: Policy, claims: int, rng: np.random.Generator) -> float:
    """The largest rate, over the parts, of *reproduced* when that part has no effect and the others hold."""
    worst = 0.0
    for null_part in shape.parts:
        codes = _codes(_draw(rng, claims, null_part, shape.seeds, 0.0), null_part, policy)
        held = np.full((claims, 1), "reproduced")
        rates = _claim_outcomes([codes] + [held] * (len(shape.parts) - 1))
        worst = max(worst, float(np.mean([outcome == "reproduced" for outcome in rates])))
    return worst


def power(shape: ClaimShape, policy: Policy, claims: int, rng: np.random.Generator) -> float:
    """The rate of *reproduced* when every condition of every part has an effect of `SMALLEST_SD`."""
    codes = [_codes(_draw(rng, claims, part, shape.seeds, SMALLEST_SD), part, policy) for part in shape.parts]
    return float(np.mean([outcome == "reproduced" for outcome in _claim_outcomes(codes)]))


def no_effect_rate(shape: ClaimShape, policy: Policy, claims: int, rng: np.random.Generator) -> float:
    """How often the first sampled part, with a true effect of 0 everywhere, shows no effect under some condition."""
    part = next((p for p in shape.parts if p.kind != "exact"), shape.parts[0])
    codes = _codes(_draw(rng, claims, part, shape.seeds, 0.0), part, policy)
    return float(np.mean((codes == "no effect").any(axis=-1)))


GENERIC = (
    ClaimShape("1 × 1, 3 seeds", (PartShape(1),), 3),
    ClaimShape("1 × 4, 3 seeds", (PartShape(4),), 3),
    ClaimShape("1 × 8, 3 seeds", (PartShape(8),), 3),
    ClaimShape("1 × 4, 10 seeds", (PartShape(4),), 10),
    ClaimShape("1 × 1, 1 seed", (PartShape(1),), 1),
)
"""The shapes the issue that introduced this policy measured the old one on."""

_ABLATION_PARTS: dict[str, dict[str, tuple[PartShape, ...]]] = {
    # parts per profile, as each ablation's verdict builds them from that profile's grid
    "linear_collapse": {  # the collapse identity is a sanity check; equivalence to logistic and the ReLU gain decide (accuracy differences: medians)
        "quick": (PartShape(3, "median"), PartShape(3, "median")),
        "full": (PartShape(9, "median"), PartShape(9, "median")),
    },
    "activation_composition": {"quick": (PartShape(1, "exact"),) * 2, "full": (PartShape(1, "exact"),) * 2},  # tanh: an extension
    # sigmoid and tanh vanish, the ReLU family keeps it (3 in quick, 4 in full), sigmoid trains worse: per initializer
    "vanishing_gradients": {"quick": (PartShape(3),) * 6, "full": (PartShape(6),) * 7},
    # training error falls and never rises (3 tasks); the U of held-out error (the RBF tasks; the MLP is a boundary)
    "capacity_overfitting": {"quick": (PartShape(3), PartShape(3), PartShape(2)), "full": (PartShape(3), PartShape(3), PartShape(2))},
    "collinearity": {"quick": (PartShape(4),) * 4, "full": (PartShape(6),) * 4},  # ridge ≤ OLS: a sanity check
    "l1_l2_penalty": {"quick": (PartShape(2),) * 4 + (PartShape(1),), "full": (PartShape(2),) * 4 + (PartShape(1),)},
    # held-out error at sizes from 1,000 on, epochs at every size; full: per recipe (Adam, Srivastava et al.'s SGD)
    "dropout": {"quick": (PartShape(1), PartShape(2)), "full": (PartShape(6), PartShape(10))},
    "augmentation": {"quick": (PartShape(4),), "full": (PartShape(6),)},
    "early_stopping": {"quick": (PartShape(1),), "full": (PartShape(4),)},  # clean labels are boundary conditions
    "input_normalization": {"quick": (PartShape(1), PartShape(1, "median")), "full": (PartShape(6), PartShape(6, "median"))},
}


def ablation_shapes(profiles: Iterable[str] = ("quick", "full")) -> list[ClaimShape]:
    """The claim shape of every ablation in each profile, its seeds read from the ablation's profile."""
    from ablations.engine.registry import get_ablation

    shapes = []
    for name, by_profile in _ABLATION_PARTS.items():
        ablation = get_ablation(name)
        for profile in profiles:
            seeds = int(ablation.profiles[profile].get("seeds", 1))
            shapes.append(ClaimShape(f"{name} [{profile}]", by_profile[profile], seeds))
    return shapes


def rates_table(shapes: Iterable[ClaimShape], claims: int = 2000, seed: int = 0) -> list[dict[str, object]]:
    """One row per shape: false *reproduced* and power under the old and the new policy, and the new "no effect" rate."""
    rows = []
    for shape in shapes:
        row: dict[str, object] = {"shape": shape.name, "parts × conditions": shape.describe(), "seeds": shape.seeds}
        for policy in (OLD, NEW):
            # The same draws for both policies: their difference is the policy's, not the luck's.
            row[f"{policy.name}: false reproduced"] = false_reproduced(shape, policy, claims, np.random.default_rng(seed))
            row[f"{policy.name}: power at {SMALLEST_SD:g} sd"] = power(shape, policy, claims, np.random.default_rng(seed + 1))
        row["new: no effect at 0"] = no_effect_rate(shape, NEW, claims, np.random.default_rng(seed + 2))
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    """Prints the table as Markdown: ``python -m ablations.engine.verdict_rates [CLAIMS]``."""
    claims = int(argv[0]) if argv else 4000
    rows = rates_table([*GENERIC, *ablation_shapes()], claims=claims)
    columns = list(rows[0])
    print(f"{claims:,} simulated claims per shape and policy; effects in units of one seed's standard deviation.\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{value:.1%}" if isinstance(value, float) else str(value) for value in row.values()]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
