"""Comparing two result stores: the same numbers are "same", a changed metric, trial or verdict is named."""

import matplotlib.pyplot as plt
import pytest

from ablations.engine.compare import compare_stores, store_uri
from ablations.engine.runner import run_ablation
from ablations.engine.spec import Ablation, Param, Verdict
from ablations.engine.tracking import Tracker


def _toy(shift: float = 0.0, outcome: str = "reproduced") -> Ablation:
    def run(configs, context):
        return [{"final_val_loss": float(c["x"] + c["seed"]) + (shift if c["x"] == 2 else 0.0)} for c in configs]

    def verdict(trials):
        return Verdict(outcome, "toy", "mean loss", float(trials["final_val_loss"].mean()), 0.0)

    return Ablation(
        name="toy",
        claim="x is small",
        params={"x": Param(1, low=0, high=10)},
        profiles={"smoke": {"x": [1, 2], "seeds": 2}},
        run=run,
        verdict=verdict,
        figures=lambda trials, client: {"toy": plt.figure()},
        objective="final_val_loss",
    )


@pytest.fixture
def store(tmp_path, new_store):
    """Runs an ablation into a new store named ``name``; returns the store's URI."""

    def run(name: str, ablation: Ablation, **resolve) -> str:
        uri = new_store(tmp_path / name)
        assert uri == store_uri(str(tmp_path / name))
        run_ablation(ablation, ablation.resolve("smoke", **resolve), tracker=Tracker(uri), progress=False)
        return uri

    return run


def test_equal_stores_are_the_same(store):
    before, after = store("a", _toy()), store("b", _toy())
    (comparison,) = compare_stores(before, after)
    assert comparison.same and comparison.trials == 4
    assert comparison.line() == "toy: same (4 trials, every metric, aggregates, verdict reproduced)"


def test_a_changed_metric_is_named_with_its_size_and_tolerated_within_rtol(store):
    before, after = store("a", _toy()), store("b", _toy(shift=1e-3))
    (comparison,) = compare_stores(before, after)
    assert not comparison.same
    assert sorted(d[0] for d in comparison.metric_differences) == ["seed=0 x=2", "seed=1 x=2"]
    assert {d[1] for d in comparison.metric_differences} == {"final_val_loss"}
    assert comparison.aggregate_differences  # the mean over seeds of x=2 moved too
    assert "2 metrics differ" in comparison.line() and "verdict" not in comparison.line().split(";")[-1]
    (tolerated,) = compare_stores(before, after, rtol=1e-3)
    assert tolerated.same


def test_missing_trials_and_another_verdict_are_reported(store):
    before = store("a", _toy())
    after = store("b", _toy(outcome="not reproduced"), overrides={"x": "1"})
    (comparison,) = compare_stores(before, after)
    assert (comparison.trials, comparison.only_before, comparison.only_after) == (2, 2, 0)
    assert comparison.verdict_before[0] == "reproduced" and comparison.verdict_after[0] == "not reproduced"
    assert comparison.line().endswith("verdict reproduced -> not reproduced)")


@pytest.mark.parametrize(("location", "uri"), [("sqlite:///x.db", "sqlite:///x.db"), ("http://127.0.0.1:5000", "http://127.0.0.1:5000")])
def test_store_uri_passes_uris_through(location, uri):
    assert store_uri(location) == uri
