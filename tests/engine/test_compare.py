"""Comparing two result stores: the same numbers are "same", a changed metric, trial or verdict is named."""

import pytest

from ablations.engine.compare import compare_stores, store_uri


@pytest.fixture
def store(toy_store):
    """Runs the toy ablation into a new store named ``name``; returns the store's URI."""
    return lambda name, **options: store_uri(toy_store(name, **options))


def test_equal_stores_are_the_same(store):
    before, after = store("a"), store("b")
    (comparison,) = compare_stores(before, after)
    assert comparison.same and comparison.trials == 4
    assert comparison.line() == "toy: same (4 trials, every metric, aggregates, verdict reproduced)"


def test_a_changed_metric_is_named_with_its_size_and_tolerated_within_rtol(store):
    before, after = store("a"), store("b", shift=1e-3)
    (comparison,) = compare_stores(before, after)
    assert not comparison.same
    assert sorted(d[0] for d in comparison.metric_differences) == ["seed=0 x=2", "seed=1 x=2"]
    assert {d[1] for d in comparison.metric_differences} == {"final_val_loss"}
    assert comparison.aggregate_differences  # the mean over seeds of x=2 moved too
    assert "2 metrics differ" in comparison.line() and "verdict" not in comparison.line().split(";")[-1]
    (tolerated,) = compare_stores(before, after, rtol=1e-3)
    assert tolerated.same


def test_missing_trials_and_another_verdict_are_reported(store):
    before = store("a")
    after = store("b", outcome="not reproduced", overrides={"x": "1"})
    (comparison,) = compare_stores(before, after)
    assert (comparison.trials, comparison.only_before, comparison.only_after) == (2, 2, 0)
    assert comparison.verdict_before[0] == "reproduced" and comparison.verdict_after[0] == "not reproduced"
    assert comparison.line().endswith("verdict reproduced -> not reproduced)")


@pytest.mark.parametrize(("location", "uri"), [("sqlite:///x.db", "sqlite:///x.db"), ("http://127.0.0.1:5000", "http://127.0.0.1:5000")])
def test_store_uri_passes_uris_through(location, uri):
    assert store_uri(location) == uri


def test_aggregates_are_matched_by_column_name_not_order():
    import pandas as pd

    from ablations.engine.compare import _frame_differences

    before = pd.DataFrame({"x": [1, 2], "loss_mean": [0.5, 0.25], "acc_mean": [0.9, 0.8]})
    assert _frame_differences(before, before[["acc_mean", "x", "loss_mean"]], rtol=0, atol=0) == []
    changed = before.assign(acc_mean=[0.9, 0.7])[["acc_mean", "loss_mean", "x"]]
    assert _frame_differences(before, changed, rtol=0, atol=0) == [("row 1", "acc_mean", 0.8, 0.7)]
    assert _frame_differences(before, before.drop(columns="x"), rtol=0, atol=0)[0][:2] == ("table", "shape")
