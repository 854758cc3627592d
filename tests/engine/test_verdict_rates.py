"""The policy's error rates, simulated through its own code for every claim shape the ablations use."""

import math

import numpy as np
import pytest

from ablations.engine.verdict_rates import GENERIC, NEW, OLD, ClaimShape, PartShape, ablation_shapes, false_reproduced, power, rates_table

CLAIMS = 1500
# Three Monte Carlo standard errors above 5%: a rate at or below 5% passes whatever the draws.
CEILING = 0.05 + 3 * math.sqrt(0.05 * 0.95 / CLAIMS)


@pytest.fixture(scope="module")
def table():
    return {row["shape"]: row for row in rates_table([*GENERIC, *ablation_shapes()], claims=CLAIMS)}


def test_every_shape_of_every_ablation_is_simulated(table):
    names = {name.split(" [")[0] for name in table if "[" in name}
    assert len(names) == 10 and {f"{n} [{p}]" for n in names for p in ("quick", "full")} <= set(table)


def test_a_false_reproduced_stays_at_or_below_five_percent_whatever_the_shape(table):
    rates = {name: row["new: false reproduced"] for name, row in table.items()}
    assert max(rates.values()) <= CEILING, rates


def test_the_old_policy_broke_that_bound_as_grids_grew(table):
    # The same simulation finds the old policy's failures: it could fail for the new one too.
    assert table["1 × 8, 3 seeds"]["old: false reproduced"] > 0.10
    assert table["1 × 1, 1 seed"]["old: false reproduced"] > 0.40
    assert table["1 × 1, 1 seed"]["new: false reproduced"] == 0.0  # one value decides nothing now


def test_power_grows_with_seeds_and_exact_claims_need_one():
    rng = np.random.default_rng
    few, many = (ClaimShape("s", (PartShape(4),), seeds) for seeds in (3, 30))
    assert power(few, NEW, 800, rng(1)) < 0.2 < 0.8 < power(many, NEW, 800, rng(1))
    exact = ClaimShape("algebra", (PartShape(2, "exact"),), 1)
    assert power(exact, NEW, 100, rng(1)) == 1.0 and false_reproduced(exact, NEW, 100, rng(1)) == 0.0


def test_a_median_part_cannot_be_reproduced_by_three_seeds():
    three = ClaimShape("count", (PartShape(1, "median"),), 3)
    assert power(three, NEW, 400, np.random.default_rng(2)) == 0.0
    assert power(three, OLD, 400, np.random.default_rng(2)) > 0.0  # the old t-interval decided on three identical counts
