"""The runner's bookkeeping costs, scaled to this machine by a toy grid that trains nothing."""

import os

import pytest

from ablations.engine.bookkeeping import DEFAULT_RATES, PROBE_GRID, _scaled_rates, probe_values


class TickClock:
    """Each reading is ``tick`` seconds after the last: every timed grid takes exactly ``tick``."""

    def __init__(self, tick: float):
        self.tick, self.now = tick, 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_probe_counts_its_packs_trials_and_metric_values():
    # 2 packs of 36 trials, each logging 5 steps of 4 values and 5 final ones.
    assert probe_values(PROBE_GRID) == (2, 72, 72 * 25)


@pytest.mark.parametrize("measured_s", [1.0, 14.0])
def test_the_documented_rates_are_scaled_by_what_the_probe_grid_took_against_their_prediction(_never_the_real_mlruns, measured_s):
    results = _never_the_real_mlruns
    predicted = DEFAULT_RATES.seconds(*probe_values(PROBE_GRID))  # 6.98 s
    rates = _scaled_rates(TickClock(measured_s))
    factor = measured_s / predicted
    assert (rates.pack_s, rates.trial_s, rates.value_s, rates.read_s) == pytest.approx(
        (DEFAULT_RATES.pack_s * factor, DEFAULT_RATES.trial_s * factor, DEFAULT_RATES.value_s * factor, DEFAULT_RATES.read_s * factor)
    )
    assert rates.seconds(*probe_values(PROBE_GRID)) == pytest.approx(measured_s)
    assert rates.measured == f"bookkeeping measured at {factor:.2f}x its documented cost"
    # The probe wrote into a temporary folder: nothing in the results, which are pointed at again.
    assert list(results.iterdir()) == [] and os.environ["ABLATE_RESULTS_DIR"] == str(results)
