"""Same seed, same numbers: two smoke runs of an ablation log bit-identical metrics on CPU.

Each run goes into its own MLflow store and Optuna journal; the test reads
every child run back (final metrics, every per-epoch history, the diagnosis
tag) and the parent's verdict and metrics, and compares them exactly, NaN
included. Only the parent's peak-memory metrics, which measure the process
rather than the trials, are left out.

One activation ablation (a stacked net with per-layer probe statistics) and one
regularization ablation (Keras models with seeded dropout masks, a Monte Carlo
expectation check and a test-split score) cover both training paths.
"""

import pytest

from ablations import dropout, vanishing_gradients
from ablations.engine.runner import run_ablation
from ablations.engine.tracking import Tracker

PROCESS_METRICS = {"peak_rss_mb_first", "peak_rss_mb_last"}


def _exact(value: float) -> str:
    # float.hex is exact (no rounding in the comparison) and makes NaN equal to NaN.
    return float(value).hex()


def _readable(logged):
    if isinstance(logged, str):
        return repr(float.fromhex(logged))
    return [(step, float.fromhex(value)) for step, value in logged]


def _logged(folder, monkeypatch, new_store, ablation) -> tuple[dict, object]:
    """Runs the smoke profile into a fresh store under ``folder``; returns everything it logged (keyed by trial params) and the result."""
    tracker = Tracker(new_store(folder))
    monkeypatch.setenv("ABLATE_RESULTS_DIR", str(folder))  # the Optuna journal and the artifacts
    result = run_ablation(ablation, ablation.resolve("smoke"), tracker=tracker, progress=False)
    client = tracker.client
    logged = {}
    for run in client.search_runs([result.experiment_id]):
        is_parent = run.info.run_id == result.parent_run_id
        key = "parent" if is_parent else tuple(sorted(run.data.params.items()))
        assert key not in logged, f"two runs with the same parameters: {key}"
        names = set(run.data.metrics) - (PROCESS_METRICS if is_parent else set())
        logged[key] = {
            "status": run.info.status,
            "final": {name: _exact(run.data.metrics[name]) for name in names},
            "history": {
                name: sorted((m.step, _exact(m.value)) for m in client.get_metric_history(run.info.run_id, name))
                for name in names
            },
            "tags": {k: run.data.tags.get(k) for k in ("diagnosis", "verdict", "verdict_summary", "selected_trials")},
        }
    return logged, result


@pytest.mark.parametrize("ablation", [vanishing_gradients.ABLATION, dropout.ABLATION], ids=lambda a: a.name)
def test_two_smoke_runs_with_the_same_seeds_log_identical_numbers(ablation, tmp_path, monkeypatch, new_store):
    first, result = _logged(tmp_path / "first", monkeypatch, new_store, ablation)
    second, _ = _logged(tmp_path / "second", monkeypatch, new_store, ablation)

    trials = [key for key in first if key != "parent"]
    assert len(trials) == len(ablation.resolve("smoke").trials()) and len(result.trials) == len(trials)
    # Not vacuous: every trial logged per-epoch curves, and the parent its verdict.
    assert all(sum(len(h) > 1 for h in first[key]["history"].values()) >= 4 for key in trials)
    assert first["parent"]["tags"]["verdict"] == result.verdict.outcome

    assert first.keys() == second.keys()
    for key in first:
        assert first[key]["status"] == second[key]["status"] == "FINISHED"
        assert first[key]["tags"] == second[key]["tags"], key
        for part in ("final", "history"):
            a, b = first[key][part], second[key][part]
            assert a.keys() == b.keys(), (key, part)
            differing = sorted(name for name in a if a[name] != b[name])
            assert not differing, f"{key}: {part} of {differing[:5]} differ, e.g. {_readable(a[differing[0]])} vs {_readable(b[differing[0]])}"
