"""The one verdict policy: each check's outcome from its interval, the claim's from its checks, error rates controlled."""

import math

import numpy as np
import pandas as pd
import pytest

from ablations.engine.effects import seed_differences
from ablations.engine.stats import median_rank, summarize
from ablations.engine.verdict import OUTCOMES, RULE, Check, SmallestEffect, Verdict, classify, overall_outcome, regime

SMALL = SmallestEffect(0.01, "a test threshold")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.05, 0.06, 0.04], "reproduced"),  # interval wholly above 0 and beyond the band
        ([-0.05, -0.06, -0.04], "not reproduced"),  # wholly below
        ([0.05, -0.02], "inconclusive"),  # straddles 0
        ([0.001, 0.002, 0.0015], "no effect"),  # wholly within ±0.01: a real but negligible effect
        ([-0.001, 0.001, 0.0], "no effect"),  # within the band on both sides of 0
        ([0.01], "inconclusive"),  # one value decides nothing
        ([], "inconclusive"),  # nothing to read
        ([math.nan, math.nan], "inconclusive"),  # NaNs are dropped: nothing to read
    ],
)
def test_a_check_above_zero_reads_its_interval_against_region_and_band(values, expected):
    assert Check.above("c", "p", summarize(values), smallest=SMALL).outcome == expected


def test_a_real_but_negligible_effect_is_named_and_counts_as_no_effect():
    real = Check.above("c", "p", summarize([0.001, 0.002, 0.0015]), smallest=SMALL)
    around_zero = Check.above("c", "p", summarize([-0.001, 0.001, 0.0]), smallest=SMALL)
    assert real.negligible and not around_zero.negligible
    assert real.row()["outcome"] == "no effect (negligible, real)" and around_zero.row()["outcome"] == "no effect"
    assert Verdict([real]).outcome == "not reproduced (no effect)"


def test_one_value_decides_only_when_exact():
    assert Check.above("c", "p", summarize([0.5]), smallest=SMALL).outcome == "inconclusive"
    assert Check.above("c", "p", summarize([0.5], kind="exact"), smallest=SMALL).outcome == "reproduced"
    assert Check.above("c", "p", summarize([-0.5], kind="exact"), smallest=SMALL).outcome == "not reproduced"
    # An exact quantity's interval is the range of its values: every seed must bear the claim out.
    assert Check.above("c", "p", summarize([0.5, -0.5], kind="exact"), smallest=SMALL).outcome == "inconclusive"
    verdict = Verdict([Check.above("c", "p", summarize([0.5]), smallest=SMALL)])
    assert verdict.outcome == "inconclusive"
    assert "an interval needs at least two seeds" in verdict.summary
    assert Check.above("c", "p", summarize([0.5]), smallest=SMALL).measured == "+0.500 (one value: no interval)"


def test_below_and_thresholds_are_mirrored():
    falls = summarize([-0.05, -0.06, -0.04])
    assert Check.below("c", "p", falls, smallest=SMALL).outcome == "reproduced"
    assert Check.below("c", "p", falls, threshold=-0.1, smallest=SMALL).outcome == "not reproduced"
    assert Check.above("c", "p", falls, threshold=-0.1, smallest=SMALL).outcome == "reproduced"
    # An interval that touches the threshold is not wholly on either side of it... unless it lies on the wrong side.
    assert Check.above("c", "p", summarize([0.0, 0.0], kind="exact"), smallest=SmallestEffect(0.0, "none")).outcome == "not reproduced"


def test_a_region_that_holds_the_null_has_no_no_effect_band():
    # "keeps it: above -0.05" is a non-inferiority claim: an effect of 0 bears it out, it is not "no effect".
    keeps = Check.above("c", "keeps", summarize([0.001, 0.0, -0.001]), threshold=-0.05, smallest=SMALL)
    assert keeps.band == (0.0, 0.0) and keeps.outcome == "reproduced"


@pytest.mark.parametrize(
    ("values", "lower_bound", "expected"),
    [
        ([2.0, 2.1, 1.9], False, "reproduced"),  # inside 1.5 to 3
        ([5.0, 5.2, 4.8], False, "not reproduced"),  # wholly above the band
        ([1.3, 1.35, 1.32], False, "not reproduced"),  # wholly below it, and beyond 1 ± 0.25
        ([1.01, 1.02, 1.0], False, "no effect"),  # a ratio of 1 within ± 0.25: no slowing at all
        ([1.4, 2.6], False, "inconclusive"),  # straddles its lower end
        ([2.0, 2.1, 1.9], True, "inconclusive"),  # lower bounds: could be anything above
        ([5.0, 5.2, 4.8], True, "not reproduced"),  # even the bound is above the band
    ],
)
def test_a_band_reads_both_ends_and_lower_bounds_have_no_upper_end(values, lower_bound, expected):
    check = Check.within(
        "c", "ratio", summarize(values), 1.5, 3.0, smallest=SmallestEffect(0.25, "t"), null=1.0, spec=".2f", lower_bound=lower_bound
    )
    assert check.outcome == expected
    assert check.claimed == "1.5 to 3"
    assert check.measured.startswith("≥ " if lower_bound else f"{sum(values) / len(values):.2f}")


def test_every_check_states_its_smallest_effect_except_sanity_checks():
    with pytest.raises(ValueError, match="needs a smallest effect of interest"):
        Check.above("c", "p", summarize([1.0, 2.0]))
    with pytest.raises(ValueError, match="reason"):
        SmallestEffect(0.1, " ")
    with pytest.raises(ValueError, match="finite and >= 0"):
        SmallestEffect(-0.1, "negative")
    sanity = Check.below("relu", "f∘f = f", summarize([0.0], kind="exact"), 1e-12, role="sanity")
    assert sanity.outcome == "reproduced" and "sanity check" in sanity.smallest.reason


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([("a", "reproduced"), ("a", "reproduced")], "reproduced"),
        ([("a", "reproduced"), ("a", "inconclusive")], "reproduced"),  # part a held somewhere
        ([("a", "reproduced"), ("b", "inconclusive"), ("b", "reproduced")], "reproduced"),
        ([("a", "reproduced"), ("b", "inconclusive")], "inconclusive"),  # part b held nowhere
        ([("a", "reproduced"), ("a", "not reproduced")], "partly reproduced"),
        ([("a", "reproduced"), ("b", "inconclusive"), ("b", "not reproduced")], "partly reproduced"),
        ([("a", "reproduced"), ("b", "no effect")], "partly reproduced"),  # a claimed regime showed none
        ([("a", "not reproduced"), ("a", "inconclusive")], "not reproduced"),
        ([("a", "not reproduced"), ("b", "no effect")], "not reproduced"),
        ([("a", "no effect"), ("b", "inconclusive")], "not reproduced (no effect)"),
        ([("a", "no effect")], "not reproduced (no effect)"),
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


def _verdict(trials: pd.DataFrame, boundary: tuple[str, ...] = (), extension: tuple[str, ...] = ()) -> Verdict:
    """What an ablation's verdict does: one paired-by-seed check per condition."""
    checks = [
        Check.above(
            condition,
            "held-out error lower",
            summarize(seed_differences(group, "remedy", False, True, "error")),
            smallest=SMALL,
            role="boundary" if condition in boundary else "extension" if condition in extension else "claim",
        )
        for condition, group in trials.groupby("condition", sort=False)
    ]
    return Verdict(checks, headline=checks[-1] if checks else None)


@pytest.mark.parametrize(
    ("table", "expected", "held", "failed"),
    [
        ({"small": [0.05, 0.04, 0.06, 0.05], "large": [0.03, 0.02, 0.04, 0.03]}, "reproduced", ["small", "large"], []),
        ({"small": [0.01, -0.02, 0.03, 0.0], "large": [0.03, 0.02, 0.04, 0.03]}, "reproduced", ["large"], []),
        ({"small": [-0.05, -0.04, -0.06, -0.05], "large": [0.03, 0.02, 0.04, 0.03]}, "partly reproduced", ["large"], ["small"]),
        ({"small": [-0.05, -0.04, -0.06, -0.05], "large": [0.01, -0.02, 0.03, 0.0]}, "not reproduced", [], ["small"]),
        ({"small": [0.01, -0.02, 0.03, 0.0], "large": [0.02, -0.01, 0.0, 0.03]}, "inconclusive", [], []),
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
    # The headline is the last condition's effect: its mean and its interval, simultaneous over the two conditions.
    gains = table["large"]
    assert record["headline"]["mean"] == pytest.approx(sum(gains) / 4)
    assert record["headline"]["low"] < record["headline"]["mean"] < record["headline"]["high"]
    assert "97.5% CI" in record["headline"]["measured"]


def test_every_outcome_is_one_the_policy_names():
    tables = (
        {"a": [1.0, 1.1, 0.9]},
        {"a": [-1.0, -1.1, -0.9]},
        {"a": [1.0, 1.1, 0.9], "b": [-1.0, -1.1, -0.9]},
        {"a": [0.001, 0.0, -0.001]},
        {"a": [1.0, -1.0]},
    )
    assert {_verdict(_gains(t)).outcome for t in tables} == set(OUTCOMES)


def test_intervals_of_a_part_are_simultaneous_over_its_claim_conditions():
    gains = [0.05, 0.03, 0.07]
    alone = _verdict(_gains({"a": gains}))
    beside_three = _verdict(_gains({"a": gains, "b": [0.0, 0.1, -0.1], "c": [0.0, 0.1, -0.1], "d": [0.0, 0.1, -0.1]}))
    # Alone, a 95% interval clears 0; as one of four conditions, a 98.75% one does not.
    assert alone.checks[0].outcome == "reproduced" and alone.checks[0].level == pytest.approx(0.95)
    assert beside_three.checks[0].level == pytest.approx(1 - 0.05 / 4)
    assert beside_three.checks[0].outcome == "inconclusive" and beside_three.outcome == "inconclusive"
    # Boundary conditions neither count in the adjustment nor decide the claim.
    with_boundary = _verdict(_gains({"a": gains, "tiny": [-0.05, -0.04, -0.06]}), boundary=("tiny",))
    assert with_boundary.checks[0].level == pytest.approx(0.95) and with_boundary.outcome == "reproduced"
    assert with_boundary.where("not reproduced", role="boundary") == ["tiny"]
    assert "Boundary conditions (not expected to hold; never decide): tiny" in with_boundary.summary
    # Extensions (beyond what the lecture claims) likewise: judged and said, never adjusting nor deciding.
    with_extension = _verdict(_gains({"a": gains, "beyond": [-0.05, -0.04, -0.06]}), extension=("beyond",))
    assert with_extension.checks[0].level == pytest.approx(0.95) and with_extension.outcome == "reproduced"
    assert with_extension.where("not reproduced", role="extension") == ["beyond"]
    assert "Extensions (beyond the lecture's claim; never decide): beyond" in with_extension.summary
    with pytest.raises(ValueError, match="role must be one of claim, boundary, extension, sanity"):
        Check.above("x", "y", summarize([1.0, 2.0]), smallest=SMALL, role="aside")


def test_sanity_checks_are_shown_but_never_make_a_claim_reproduced():
    sanity = Check.below("relu", "f∘f = f", summarize([0.0], kind="exact"), 1e-12, role="sanity")
    assert Verdict([sanity]).outcome == "inconclusive"
    broken = Check.below("relu", "f∘f = f", summarize([1.0], kind="exact"), 1e-12, role="sanity")
    verdict = Verdict([broken])
    assert verdict.sanity_failures == [verdict.checks[0]] and "Sanity checks FAILED (a bug)" in verdict.summary
    # A sampled sanity check that one seed cannot tell has not failed: it shows as unclear.
    share = Check.above("rbf", "training error below held-out", summarize([1.0], kind="median", bounds=(0.0, 1.0)), 0.5, role="sanity")
    unclear = Verdict([share])
    assert share.outcome == "inconclusive" and unclear.sanity_failures == []
    assert "Sanity checks unclear (too few seeds to tell): rbf: training error below held-out" in unclear.summary


def test_a_median_interval_needs_enough_seeds_and_respects_bounds():
    # Three of three seeds positive: a chance of 1/4 under no effect, so no decision at 5%.
    three = summarize([1.0, 1.0, 1.0], kind="median", bounds=(-5.0, 5.0))
    assert three.interval() == (-5.0, 5.0)
    assert Check.above("c", "usable rates", three, smallest=SmallestEffect(1.0, "one rate")).outcome == "inconclusive"
    assert median_rank(6, 0.05) == 1 and median_rank(5, 0.05) == 0
    # A fraction's interval never leaves [0, 1], unlike the t-interval of the same values.
    fractions = [0.9, 1.0, 1.0, 0.8, 1.0, 1.0, 0.9, 1.0]
    low, high = summarize(fractions, kind="median", bounds=(0.0, 1.0)).interval()
    assert 0.0 <= low <= high <= 1.0 and summarize(fractions).high > 1.0


def test_power_and_the_seeds_that_would_reach_it():
    rng = np.random.default_rng(0)
    noisy = Check.above("c", "p", summarize(0.05 + rng.normal(0, 0.02, size=3)), smallest=SmallestEffect(0.02, "t"))
    assert noisy.power < 0.8
    needed = noisy.seeds_needed()
    assert needed is not None and needed > 3
    # At the seeds it names, the same spread gives at least 80% power, and one fewer does not.
    std = noisy.effect.std
    from ablations.engine.stats import power

    assert power(0.02, std, needed, noisy.alpha) >= 0.8 > power(0.02, std, needed - 1, noisy.alpha)


def test_classify_is_vectorized_for_the_simulation():
    codes = classify(np.array([0.1, -0.2, -0.005, -0.1]), np.array([0.2, -0.1, 0.005, 0.1]), (0.0, math.inf), (-0.01, 0.01))
    assert list(codes) == ["reproduced", "not reproduced", "no effect", "inconclusive"]


def test_table_rows_carry_the_details_and_several_parts_are_named():
    speed = Check.within("n=3000", "epochs ratio", summarize([2.0, 2.2, 2.1]), 1.5, 3.0, smallest=SmallestEffect(0.25, "t"), null=1.0, spec=".2f")
    error = Check.above("n=3000", "error lower", summarize([-0.02, -0.03, -0.025]), smallest=SMALL, details={"regime": "overfits"})
    verdict = Verdict([error, speed], headline=speed)
    row = verdict.table[0]
    assert {k: row[k] for k in ("condition", "part", "role", "claimed", "outcome", "regime")} == {
        "condition": "n=3000",
        "part": "error lower",
        "role": "claim",
        "claimed": "> 0",
        "outcome": "not reproduced",
        "regime": "overfits",
    }
    assert row["smallest effect"] == "±0.01 around 0: a test threshold" and row["effect (CI)"] == verdict.checks[0].measured
    assert verdict.where("reproduced") == ["n=3000: epochs ratio"]
    assert verdict.where("not reproduced") == ["n=3000: error lower"]
    assert verdict.effect == pytest.approx(2.1) and verdict.effect_name == "epochs ratio (n=3000)"
    assert verdict.outcome == "partly reproduced"


def test_a_verdict_without_checks_is_inconclusive_and_says_why():
    verdict = Verdict([], notes="The grid needs keep_prob 1.0.")
    assert verdict.outcome == "inconclusive"
    assert verdict.summary == "The grid needs keep_prob 1.0."
    assert math.isnan(verdict.effect) and verdict.to_dict()["headline"] is None
    assert "reproduced when wholly inside the claimed region" in RULE


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
    assert Check.above("c", "epochs saved", summarize([2.0, 3.0, 4.0]), smallest=SMALL, lower_bound=True).outcome == "reproduced"
    assert Check.above("c", "epochs saved", summarize([-2.0, 3.0]), smallest=SMALL, lower_bound=True).outcome == "inconclusive"
    assert Check.below("c", "epochs saved", summarize([2.0, 3.0, 4.0]), smallest=SMALL, lower_bound=True).outcome == "not reproduced"
