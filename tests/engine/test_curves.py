"""Measures of a learning curve: its converged level and the (interpolated) epochs to a level."""

import math

import numpy as np

import pandas as pd
import pytest

from ablations.engine.curves import censored_ratios, converged_level, epochs_to_converge, epochs_to_level, reference_levels


def test_converged_level_is_the_given_fraction_of_the_improvement_above_the_best():
    assert converged_level([0.9, 0.5, 0.1, 0.1], fraction=0.05) == pytest.approx(0.14)
    assert converged_level([0.9, 0.2, 0.3], fraction=0.5) == pytest.approx(0.55)
    # No improvement, a diverged curve, or none at all: no level.
    assert math.isnan(converged_level([0.9, 0.9, 0.95], fraction=0.05))
    assert math.isnan(converged_level([0.9, math.inf, 0.1], fraction=0.05))
    assert math.isnan(converged_level([], fraction=0.05))


def test_epochs_to_converge_interpolates_the_first_crossing_of_95_percent_of_the_improvement():
    # Best 0.1, start 0.9: converged at or below 0.1 + 0.05 * 0.8 = 0.14, crossed between epochs 1 (0.5) and 2 (0.1).
    assert epochs_to_converge([0.9, 0.5, 0.1, 0.1], fraction=0.05) == pytest.approx(1.9)
    # The first crossing counts, even when the curve rises again (a net that then overfits).
    assert epochs_to_converge([0.9, 0.5, 0.1, 0.3, 0.5], fraction=0.05) == pytest.approx(1.9)
    assert epochs_to_converge([0.9, 0.2, 0.3, 0.1], fraction=0.05) == pytest.approx(2.8)
    # A slower curve to the same best converges later.
    assert epochs_to_converge([0.9, 0.7, 0.5, 0.3, 0.1], 0.05) > epochs_to_converge([0.9, 0.5, 0.1, 0.1, 0.1], 0.05)
    # No improvement, or a diverged curve: nothing to count.
    assert math.isnan(epochs_to_converge([0.9, 0.9, 0.95], fraction=0.05))
    assert math.isnan(epochs_to_converge([0.9, math.nan, 0.1], fraction=0.05))
    assert math.isnan(epochs_to_converge([], fraction=0.05))


def test_epochs_to_level_interpolates_between_the_epochs_either_side_of_the_first_crossing():
    plain = [0.9, 0.5, 0.1, 0.1]
    assert epochs_to_level(plain, 0.14) == pytest.approx(epochs_to_converge(plain, 0.05)) == pytest.approx(1.9)
    # A slow curve's own best, 0.12, comes late; 0.14 is crossed between epochs 4 (0.15) and 5 (0.12).
    assert epochs_to_level([0.9, 0.7, 0.5, 0.3, 0.15, 0.12], 0.14) == pytest.approx(4 + (0.15 - 0.14) / (0.15 - 0.12))
    # A noisy curve that never gets back down: never.
    assert math.isnan(epochs_to_level([0.9, 0.2, 0.6, 0.6, 0.6], 0.14))
    # Already there at initialization; no level to reach.
    assert epochs_to_level([0.1, 0.05], 0.14) == 0.0
    assert math.isnan(epochs_to_level(plain, math.nan))


def test_censored_ratios_count_a_bound_for_a_treated_curve_that_never_got_there():
    treated = pd.Series([4.0, math.nan, 3.0, 5.0])
    control = pd.Series([2.0, 2.0, 0.0, math.nan])
    # Per pair the epochs it ran; pairs whose control was there at initialization (0) or never (NaN) are left out.
    ratios = censored_ratios(treated, control, pd.Series([10.0, 8.0, 9.0, 9.0]))
    assert list(ratios.index) == [0, 1]
    assert list(ratios["treated"]) == [4.0, 8.0] and list(ratios["ratio"]) == [2.0, 4.0]
    assert list(ratios["censored"]) == [False, True]
    # One number beyond every run.
    assert list(censored_ratios(treated, control, 41)["ratio"]) == [2.0, 20.5]
    assert censored_ratios(pd.Series([], dtype=float), pd.Series([], dtype=float), 41).empty


def test_both_arms_of_a_group_count_their_epochs_to_where_its_reference_converged():
    plain = [0.9, 0.5, 0.1, 0.1]  # converged at 0.14 (best 0.1 + 5% of 0.8), after 1.9 epochs
    slow = [0.9, 0.7, 0.5, 0.3, 0.15, 0.12]  # its own best, 0.12, is reached late; 0.14 at epoch 4.33
    noisy = [0.9, 0.2, 0.6, 0.6, 0.6]  # its own convergence (at 0.235) comes early; the plain net's level never
    targets = reference_levels([np.array(plain), np.array(slow), np.array(noisy)], [0, 0, 1], [True, False, False], 0.05)
    assert targets[:2] == pytest.approx([0.14, 0.14]) and math.isnan(targets[2])  # seed 1 has no plain net here
    assert epochs_to_level(plain, targets[0]) == pytest.approx(epochs_to_converge(plain, 0.05)) == pytest.approx(1.9)
    assert epochs_to_level(slow, targets[1]) == pytest.approx(4 + (0.15 - 0.14) / (0.15 - 0.12))
    assert epochs_to_converge(noisy, 0.05) < 1 and math.isnan(epochs_to_level(noisy, 0.14))
