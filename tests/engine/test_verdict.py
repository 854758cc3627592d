"""The one verdict policy: each check's outcome from its interval, the claim's from its checks."""

import math

import pandas as pd
import pytest

from ablations.engine.effects import seed_differences
from ablations.engine.stats import summarize
from ablations.engine.verdict import OUTCOMES, RULE, Check, Verdict, overall_outcome, regime


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.05, 0.06, 0.04], "reproduced"),  # interval wholly above 0
        ([-0.05, -0.06, -0.04], "not reproduced"),  # wholly below
        ([0.05, -0.02], "inconclusive"),  # straddles 0
        ([0.01], "reproduced"),  # one value: its sign
        ([0.0], "not reproduced"),  # exactly 0 is not above 0
        ([-0.01], "not reproduced"),
        ([], "inconclusive"),  # nothing to read
        ([math.nan, math.nan], "inconclusive"),  # NaNs are dropped: nothing to read
    ],
)
def test_a_check_above_zero_reads_its_interval(values, expected):
    assert Check.above("c", "p", summarize(values)).outcome == expected


def test_below_and_thresholds_are_mirrored():
    falls = summarize([-0.05, -0.06, -0.04])
    assert Check.below("c", "p", falls).outcome == "reproduced"
    assert Check.below("c", "p", falls, threshold=-0.1).outcome == "not reproduced"
    assert Check.above("c", "p", falls, threshold=-0.1).outcome == "reproduced"
    # An interval that touches the threshold is not wholly on either side of it... unless it lies on the wrong side.
    assert Check.above("c", "p", summarize([0.0, 0.0])).outcome == "not reproduced"


@pytest.mark.parametrize(
    ("values", "lower_bound", "expected"),
    [
        ([2.0, 2.1, 1.9], False, "reproduced"),  # inside 1.5 to 3
        ([5.0, 5.2, 4.8], False, "not reproduced"),  # wholly above the band
        ([1.1, 1.2, 1.0], False, "not reproduced"),  # wholly below it
        ([1.4, 2.6], False, "inconclusive"),  # straddles its lower end
        ([2.0, 2.1, 1.9], True, "inconclusive"),  # lower bounds: could be anything above
        ([5.0, 5.2, 4.8], True, "not reproduced"),  # even the bound is above the band
    ],
)
def test_a_band_reads_both_ends_and_lower_bounds_have_no_upper_end(values, lower_bound, expected):
    check = Check.within("c", "ratio", summarize(values), 1.5, 3.0, spec=".2f", lower_bound=lower_bound)
    assert check.outcome == expected
    assert check.claimed == "1.5 to 3"
    assert check.measured.startswith("≥ " if lower_bound else f"{sum(values) / len(values):.2f}")


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([("a", "reproduced"), ("a", "reproduced")], "reproduced"),
        ([("a", "reproduced"), ("a", "inconclusive")], "reproduced"),  # part a held somewhere
        ([("a", "reproduced"), ("b", "inconclusive"), ("b", "reproduced")], "reproduced"),
        ([("a", "reproduced"), ("b", "inconclusive")], "inconclusive"),  # part b held nowhere
        ([("a", "reproduced"), ("a", "not reproduced")], "partly reproduced"),
        ([("a", "reproduced"), ("b", "inconclusive"), ("b", "not reproduced")], "partly reproduced"),
        ([("a", "not reproduced"), ("a", "inconclusive")], "not reproduced"),
        ([("a", "not reproduced")], "not reproduced"),
        ([("a", "inconclusive"), ("b", "inconclusive")], "inconclusive"),
        ([], "inconclusive"),
    ],
)
def test_the_rule_over_checks(checks, expected):
    assert overall_outcome(checks) == expected


def _gains(table: dict[str, list[float]]) -> pd.DataFrame:
    """A result table: per condition and seed, the held-out error without and with a remedy (gain = without - with)."""
    rows = []
    for condition, gains in table.items():
        for seed, gain in enumerate(gains):
            rows.append({"condition": condition, "seed": seed, "remedy": False, "error": 0.2})
            rows.append({"condition": condition, "seed": seed, "remedy": True, "error": 0.2 - gain})
    return pd.DataFrame(rows)


def _verdict(trials: pd.DataFrame) -> Verdict:
    """What an ablation's verdict does: one paired-by-seed check per condition."""
    checks = [
        Check.above(condition, "held-out error lower", summarize(seed_differences(group, "remedy", False, True, "error")))
        for condition, group in trials.groupby("condition", sort=False)
    ]
    return Verdict(checks, headline=checks[-1] if checks else None)


@pytest.mark.parametrize(
    ("table", "expected", "held", "failed"),
    [
        ({"small": [0.05, 0.04, 0.06], "large": [0.03, 0.02, 0.04]}, "reproduced", ["small", "large"], []),
        ({"small": [0.01, -0.02, 0.03], "large": [0.03, 0.02, 0.04]}, "reproduced", ["large"], []),
        ({"small": [-0.05, -0.04, -0.06], "large": [0.03, 0.02, 0.04]}, "partly reproduced", ["large"], ["small"]),
        ({"small": [-0.05, -0.04, -0.06], "large": [0.01, -0.02, 0.03]}, "not reproduced", [], ["small"]),
        ({"small": [0.01, -0.02, 0.03], "large": [0.02, -0.01, 0.0]}, "inconclusive", [], []),
    ],
)
def test_synthetic_result_tables_reach_every_outcome(table, expected, held, failed):
    verdict = _verdict(_gains(table))
    assert verdict.outcome == expected
    record = verdict.to_dict()
    assert (record["outcome"], record["held"], record["failed"]) == (expected, held, failed)
    assert record["unclear"] == [c for c in table if c not in held + failed]
    # The summary names each condition under its reading, with its effect and interval.
    for condition in held:
        assert f"{condition}: held-out error lower, +" in verdict.summary.split("Failed:")[0]
    if failed:
        assert verdict.summary.split("Failed: ")[1].startswith(failed[0])
    # The headline is the last condition's effect: its mean and 95% interval.
    gains = table["large"]
    assert record["headline"]["mean"] == pytest.approx(sum(gains) / 3)
    assert record["headline"]["low"] < record["headline"]["mean"] < record["headline"]["high"]


def test_every_outcome_is_one_the_policy_names():
    reached = {_verdict(_gains(t)).outcome for t in ({"a": [1.0]}, {"a": [-1.0]}, {"a": [1.0], "b": [-1.0]}, {"a": [1.0, -1.0]})}
    assert reached == set(OUTCOMES)


def test_table_rows_carry_the_details_and_several_parts_are_named():
    speed = Check.within("n=3000", "epochs ratio", summarize([2.0, 2.2, 2.1]), 1.5, 3.0, spec=".2f")
    error = Check.above("n=3000", "error lower", summarize([-0.02, -0.03, -0.025]), details={"regime": "overfits"})
    verdict = Verdict([error, speed], headline=speed)
    assert verdict.table[0] == {
        "condition": "n=3000",
        "part": "error lower",
        "effect (95% CI)": error.measured,
        "claimed": "> 0",
        "outcome": "not reproduced",
        "regime": "overfits",
    }
    assert verdict.where("reproduced") == ["n=3000: epochs ratio"]
    assert verdict.where("not reproduced") == ["n=3000: error lower"]
    assert verdict.effect == pytest.approx(2.1) and verdict.effect_name == "epochs ratio (n=3000)"
    assert verdict.outcome == "partly reproduced"


def test_a_verdict_without_checks_is_inconclusive_and_says_why():
    verdict = Verdict([], notes="The grid needs keep_prob 1.0.")
    assert verdict.outcome == "inconclusive"
    assert verdict.summary == "The grid needs keep_prob 1.0."
    assert math.isnan(verdict.effect) and verdict.to_dict()["headline"] is None
    assert "reproduced when the interval lies wholly inside it" in RULE


@pytest.mark.parametrize(
    ("train", "heldout", "reading"),
    [
        (0.0, 0.10, "overfits"),
        (0.04, 0.10, "overfits"),
        (0.06, 0.10, "does not overfit"),  # more than half the held-out error
        (0.0, 0.015, "does not overfit"),  # a gap under 0.02
        (0.2, 0.1, "does not overfit"),
    ],
)
def test_regime_reads_training_against_held_out_error(train, heldout, reading):
    assert regime(train, heldout) == f"{reading} (train {train:.3f}, held-out {heldout:.3f})"


def test_lower_bounds_wholly_above_a_one_sided_threshold_are_reproduced():
    assert Check.above("c", "epochs saved", summarize([2.0, 3.0, 4.0]), lower_bound=True).outcome == "reproduced"
    assert Check.above("c", "epochs saved", summarize([-2.0, 3.0]), lower_bound=True).outcome == "inconclusive"
    assert Check.below("c", "epochs saved", summarize([2.0, 3.0, 4.0]), lower_bound=True).outcome == "not reproduced"
