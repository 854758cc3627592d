"""dropout: the verdict on synthetic trials, the recipes, and a smoke run."""

import math

import numpy as np
import pandas as pd
import pytest

from ablations import dropout
from ablations.engine.curves import converged_level, epochs_to_converge, epochs_to_level
from ablations.engine.runner import run_ablation
from ablations.engine.verdict import REGIME
from tests.ablations.smoke_checks import (
    assert_diagnoses_follow_the_logged_errors,
    assert_selected_on_validation,
    assert_verdict_logged,
)


NONE, KEEP = (1.0, 1.0), (0.5, 1.0)


def _grid(gain, ratio, *, expectation=1.0, sizes=(300, 3000), seeds=(0, 1, 2), jitter=0.002, ratio_spread=0.02, plain_epochs=4.0, extra=()):
    """Synthetic trials: per size and seed, no dropout and keep 0.5 (input keep 1), plus ``extra`` (keep, input keep) arms.

    ``gain`` and ``ratio`` are one number or ``{n_train: number}``: the held-out error without dropout minus
    with it, and its epochs to converge over the plain net's (``plain_epochs``).
    """
    rows = []
    for n in sizes:
        g = gain[n] if isinstance(gain, dict) else gain
        r = ratio[n] if isinstance(ratio, dict) else ratio
        for seed in seeds:
            plain_error = 0.10 + 0.001 * seed
            plain = (*NONE, n, seed, plain_error, 0.0, plain_epochs, 3.0, math.nan)
            treated_epochs = plain_epochs * r * (1 + ratio_spread * (seed - 1))
            treated = (*KEEP, n, seed, plain_error - g + jitter * (seed - 1), 0.01, treated_epochs, 15.0, expectation)
            rows += [plain, treated]
            rows += [(keep, input_keep, n, seed, plain_error - g + 0.01, 0.02, treated_epochs, math.nan, expectation) for keep, input_keep in extra]
    columns = ["keep_prob", "input_keep_prob", "n_train", "seed", "heldout_error", "final_train_error"]
    columns += ["epochs_to_converge", "epochs_to_target", "expectation_rms_ratio"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["epochs"] = frame["epochs_run"] = 40
    # The synthetic nets reach the plain net's converged error when they converge: never, beyond the epochs.
    frame["epochs_to_common_target"] = frame["epochs_to_converge"].where(frame["epochs_to_converge"] <= frame["epochs"])
    frame["final_gap"] = frame["heldout_error"] - frame["final_train_error"]
    frame["unscaled_relative_deviation"] = np.where(frame["keep_prob"] < 1, 0.5, np.nan)
    frame["target_loss"] = 0.1
    return frame


def _outcomes(result):
    return {(check.condition, check.part.split(" ")[0]): check.outcome for check in result.checks}


def test_verdict_reproduced_when_dropout_lowers_the_error_and_doubles_the_epochs_everywhere():
    result = dropout.verdict(_grid(gain=0.02, ratio=2.0))
    assert result.outcome == "reproduced"
    assert set(_outcomes(result).values()) == {"reproduced"} and len(result.checks) == 5
    # The headline: the held-out error gain at the largest size.
    assert result.headline.condition == "n_train=3000" and result.headline.part.startswith("held-out")
    assert result.effect == pytest.approx(0.02, abs=1e-9)
    rows = {(row["condition"], row["part"][:4]): row for row in result.table}
    assert rows[("n_train=300", "held")][REGIME] == "overfits (train 0.000, held-out 0.101)"
    assert rows[("n_train=3000", "epoc")]["epochs to the plain net's converged error, none / keep 0.5"] == "4.0 / 8.0"
    assert rows[("n_train=3000", "epoc")]["masks-on loss to 0.1: epochs ratio (not judged)"] == "x5.00 ± 0.00"
    assert "n_train=300: x5.00" in result.notes


def test_verdict_reproduced_when_dropout_helps_only_at_the_larger_size_and_the_smaller_is_a_boundary():
    # Below REGIME_N_TRAIN examples the error check is a boundary condition, declared before the run: dropout
    # raising the error at n_train=300 is judged and reported, but it never makes the claim fail.
    result = dropout.verdict(_grid(gain={300: -0.02, 3000: 0.02}, ratio=2.0))
    assert 300 < dropout.REGIME_N_TRAIN <= 3000
    assert result.outcome == "reproduced"
    assert _outcomes(result)[("n_train=300", "held-out")] == "not reproduced"
    assert result.where("not reproduced") == []
    assert result.where("not reproduced", role="boundary") == ["n_train=300: held-out error lower with keep 0.5"]
    assert "Failed:" not in result.summary
    assert "Boundary conditions (not expected to hold; never decide): n_train=300: held-out error lower" in result.summary


def test_verdict_partly_reproduced_when_dropout_helps_only_at_the_larger_of_two_claim_sizes():
    # Both sizes at or above REGIME_N_TRAIN: claim conditions, so the error rising at 1000 fails that part there.
    result = dropout.verdict(_grid(gain={1000: -0.02, 3000: 0.02}, ratio=2.0, sizes=(1000, 3000)))
    assert result.outcome == "partly reproduced"
    assert _outcomes(result)[("n_train=1000", "held-out")] == "not reproduced"
    assert result.where("not reproduced") == ["n_train=1000: held-out error lower with keep 0.5"]
    assert result.where("not reproduced", role="boundary") == []
    assert "Failed: n_train=1000: held-out error lower" in result.summary


def test_verdict_not_reproduced_when_nothing_holds():
    # Dropout raises the error, is five times slower, and the mask-averaged z misses z by 3 standard errors.
    result = dropout.verdict(_grid(gain=-0.02, ratio=5.0, expectation=3.0))
    assert result.outcome == "not reproduced"
    assert set(_outcomes(result).values()) == {"not reproduced"}


def test_verdict_inconclusive_when_every_interval_straddles_its_boundary():
    trials = _grid(gain=0.0, ratio=2.0, jitter=0.01, ratio_spread=0.5, expectation=math.nan)
    result = dropout.verdict(trials)
    assert result.outcome == "inconclusive"
    # Without an expectation reading there is no expectation check: four checks, all unclear.
    assert len(result.checks) == 4 and set(_outcomes(result).values()) == {"inconclusive"}


def test_verdict_needs_both_arms():
    trials = _grid(gain=0.02, ratio=2.0)
    result = dropout.verdict(trials[trials["keep_prob"] == 1.0])
    assert result.outcome == "inconclusive" and not result.checks
    assert "keep_prob 0.5 and 1.0" in result.notes


def test_a_dropout_net_that_never_reaches_the_plain_nets_converged_error_gives_a_lower_bound():
    # 4 x 12 = 48 epochs, beyond the 40 trained: each ratio is at least 40 / 4 = 10, wholly above "about double"
    # (8 seeds: identical values are read as a median, whose interval three seeds cannot give).
    slow = dropout.verdict(_grid(gain=0.02, ratio=12.0, seeds=range(8)))
    check = next(c for c in slow.checks if c.condition == "n_train=3000" and c.part.startswith("epochs"))
    assert check.lower_bound and check.outcome == "not reproduced" and check.measured.startswith("≥ ")
    assert check.effect.mean == pytest.approx(10.0)
    row = next(r for r in slow.table if r["condition"] == "n_train=3000" and r["part"].startswith("epochs"))
    assert row["epochs to the plain net's converged error, none / keep 0.5"] == "4.0 / ≥ 40.0"
    # 16 x 2.6 = 42 epochs, beyond the 40: a lower bound of 2.5, inside "about double", bounds it from below only.
    late = dropout.verdict(_grid(gain=0.02, ratio=2.6, plain_epochs=16.0))
    check = next(c for c in late.checks if c.part.startswith("epochs"))
    assert check.lower_bound and check.outcome == "inconclusive"
    # A plain net that never improved gives no ratio at all.
    none = dropout.verdict(_grid(gain=0.02, ratio=1.0, plain_epochs=math.nan))
    assert all(c.effect.n == 0 for c in none.checks if c.part.startswith("epochs"))


def test_masks_on_target_never_reached_is_reported_as_a_lower_bound_and_not_judged():
    trials = _grid(gain=0.02, ratio=2.0)
    trials.loc[trials["keep_prob"] < 1, "epochs_to_target"] = np.nan
    result = dropout.verdict(trials)
    # (40 + 1) / 3 epochs: a lower bound, shown beside the judged checks, which are unchanged.
    assert "n_train=3000: ≥ x13.67 ± 0.00" in result.notes
    assert result.outcome == "reproduced"


def test_the_lecture_input_keep_is_reported_beside_the_checks():
    result = dropout.verdict(_grid(gain=0.02, ratio=2.0, extra=[(0.5, 0.8)]))
    assert len(result.checks) == 5
    row = next(row for row in result.table if row["condition"] == "n_train=3000" and row["part"].startswith("held-out"))
    assert row["input keep 0.8 vs 1: held-out error change (not judged)"] == "+0.010"
    assert row["best (keep, input keep) on validation"] == "0.5, 1"


def test_each_data_set_is_its_own_condition():
    trials = pd.concat([_grid(gain=-0.02, ratio=2.0).assign(data="digits"), _grid(gain=0.02, ratio=2.0).assign(data="mnist5k")])
    result = dropout.verdict(trials)
    gains = {check.condition: check.effect.mean for check in result.checks if check.part.startswith("held-out")}
    # Paired within a data set, never across: each gets exactly its own gain.
    expected = {f"{name}, n_train={n}": gain for name, gain in (("digits", -0.02), ("mnist5k", 0.02)) for n in (300, 3000)}
    assert gains == pytest.approx(expected)
    assert result.outcome == "partly reproduced" and result.headline.condition.endswith("n_train=3000")
    # Any other setting the grid varies is a condition too.
    wide = dropout.verdict(pd.concat([_grid(gain=0.02, ratio=2.0).assign(width=512), _grid(gain=0.01, ratio=2.0).assign(width=1024)]))
    assert {check.condition for check in wide.checks} >= {"n_train=300, width=512", "n_train=3000, width=1024"}
    recipes = dropout.verdict(pd.concat([_grid(gain=0.02, ratio=2.0).assign(recipe=r) for r in ("adam", "srivastava")]))
    assert {check.condition for check in recipes.checks} >= {"n_train=3000, recipe=adam", "n_train=3000, recipe=srivastava"}


def test_smoke_run_logs_trials_verdict_figures_and_one_test_score(tracker):
    ablation = dropout.ABLATION
    config = ablation.resolve("smoke")
    result = run_ablation(ablation, config, tracker=tracker, progress=False)
    children = tracker.child_runs(result.experiment_id, result.parent_run_id)
    assert len(children) == 4
    runs = children.set_index([children["params.n_train"].astype(int), children["params.keep_prob"].astype(float)]).sort_index()
    assert list(runs.index) == [(100, 0.5), (100, 1.0), (200, 0.5), (200, 1.0)]
    epochs, patience = config.fixed["epochs"], config.fixed["patience"]
    curves = {}
    for (n_train, keep), run in runs.iterrows():
        curve = history_at(tracker, run["run_id"], "val_error")
        ran, restored = int(run["metrics.epochs_run"]), int(run["metrics.restored_epoch"])
        # The stopping split, scored at initialization and after every epoch the arm ran: until `patience` epochs
        # brought no lower error (Keras's rule: it restores the first epoch with the lowest), or the cap.
        assert sorted(curve) == list(range(ran + 1))
        errors = curves[n_train, keep] = [curve[step] for step in range(ran + 1)]
        assert restored == 1 + int(np.argmin(errors[1:])) and ran in (epochs, restored + patience)
        assert run["metrics.epochs_to_converge"] == pytest.approx(epochs_to_converge(errors, dropout.CONVERGED_FRACTION), abs=1e-6)
        assert run["metrics.final_val_error"] == pytest.approx(errors[restored], abs=1e-6)  # the restored net
        # digits' 359 validation examples, halved: 180 to stop on (every other from the first), 179 held out.
        assert np.allclose(np.array(errors) * 180, np.round(np.array(errors) * 180), atol=1e-3)
        assert run["metrics.heldout_error"] * 179 == pytest.approx(round(run["metrics.heldout_error"] * 179), abs=1e-3)
        assert run["metrics.heldout_error"] == run["metrics.final_heldout_error"]
        # Errors are 1 - accuracy on the 100 or 200 training examples: multiples of 1/n_train.
        assert run["metrics.final_train_error"] * n_train == pytest.approx(round(run["metrics.final_train_error"] * n_train), abs=1e-4)
    # Paired by seed: with and without dropout, training starts from the same net; both count their epochs to
    # where the plain net converged.
    for n_train in (100, 200):
        assert curves[n_train, 0.5][0] == curves[n_train, 1.0][0]
        level = converged_level(curves[n_train, 1.0], dropout.CONVERGED_FRACTION)
        for keep in (0.5, 1.0):
            logged = runs.loc[(n_train, keep), "metrics.epochs_to_common_target"]
            assert logged == pytest.approx(epochs_to_level(curves[n_train, keep], level), abs=1e-6, nan_ok=True)
    dropped, plain = runs.xs(0.5, level=1), runs.xs(1.0, level=1)
    # The plain net learns and overfits: it fits its training set, and its held-out error is well above that.
    assert (plain["metrics.final_train_error"] < 0.1).all()
    assert (plain["metrics.heldout_error"] > plain["metrics.final_train_error"] + 0.02).all()
    # The expectation check runs on nets with dropout only: within Monte Carlo error of z with the rescale,
    # off by about 1 - keep = 0.5 without it.
    assert (dropped["metrics.expectation_rms_ratio"] < dropout.EXPECTATION_TOLERANCE).all()
    np.testing.assert_allclose(dropped["metrics.unscaled_relative_deviation"], 0.5, atol=0.05)
    assert plain[["metrics.expectation_rms_ratio", "metrics.unscaled_relative_deviation"]].isna().all().all()
    assert_diagnoses_follow_the_logged_errors(children)

    assert_verdict_logged(tracker, result, children)
    checks = {(check.condition, check.part.split(" ")[0]): check for check in result.verdict.checks}
    assert len(checks) == 5
    for n_train in (100, 200):
        gain = checks[(f"n_train={n_train}", "held-out")]
        difference = plain.loc[n_train, "metrics.heldout_error"] - dropped.loc[n_train, "metrics.heldout_error"]
        assert gain.effect.mean == pytest.approx(difference, abs=1e-12)
        speed = checks[(f"n_train={n_train}", "epochs")]
        treated = dropped.loc[n_train, "metrics.epochs_to_common_target"]
        control = plain.loc[n_train, "metrics.epochs_to_common_target"]
        if control > 0:  # a lower bound (the epochs it ran) when the dropout net never got there
            ran = dropped.loc[n_train, "metrics.epochs_run"]
            assert speed.effect.mean == pytest.approx((ran if math.isnan(treated) else treated) / control)
            assert speed.lower_bound == math.isnan(treated)
        else:
            assert speed.effect.n == 0
    # The headline: the held-out error gain at the largest size.
    assert result.verdict.headline is checks[("n_train=200", "held-out")]
    assert checks[("every trained net with dropout", "mask-averaged")].effect.n == 2
    # One selection (lowest validation loss) and one test score per training-set size, never more.
    selections = assert_selected_on_validation(tracker, result, ablation, children)
    assert set(selections) == {"digits/100", "digits/200"}
    tests = {k for k in tracker.client.get_run(result.parent_run_id).data.metrics if k.endswith("test_error")}
    assert tests == {"digits/100/test_error", "digits/200/test_error"}
    figures = {a.path for a in tracker.client.list_artifacts(result.parent_run_id, "figures")}
    assert figures == {"figures/error_and_gap_vs_keep.png", "figures/learning_curves.png"}


def history_at(tracker, run_id, metric):
    """{step: value} of one metric of one run."""
    return {m.step: m.value for m in tracker.client.get_metric_history(run_id, metric)}


def test_the_srivastava_recipe_trains_with_sgd_momentum_under_max_norm():
    from ablations.engine.train.members import MemberOptimizer

    config = dropout.ABLATION.resolve("smoke", {"recipe": "srivastava"})
    pack = [c for c in config.trials() if c["n_train"] == 100]
    assert dropout._optimizer(pack[0]) == MemberOptimizer("sgd", 0.01, momentum=0.95)
    assert dropout._optimizer({**pack[0], "recipe": "adam"}) == MemberOptimizer("adam", pack[0]["learning_rate"])
    assert dropout._max_norm({**pack[0], "max_norm": 2.0}) == 2.0 and dropout._max_norm({**pack[0], "recipe": "adam"}) is None
    # A max-norm below the initial weights' norms (he_normal over digits' 64 inputs: about 1.4), so it must act.
    _, stack, fits = dropout._train([{**config, "max_norm": 0.5} for config in pack])
    assert all(fit.epochs_run >= 1 for fit in fits.trials)
    # Each hidden unit's incoming weights (Keras's MaxNorm: norms over axis 0 of a member's kernel) end on or
    # within it, and some sit on it.
    norms = np.concatenate([np.linalg.norm(k.numpy(), axis=1).ravel() for k in stack.kernels[: stack.depth]])
    assert 0.5 - 1e-3 <= norms.max() <= 0.5 + 1e-4
