"""A pack stopped mid-training resumes from its checkpoint and ends with the numbers of an uninterrupted run, bit for bit."""

import math
import os
import signal

import numpy as np
import pytest

from ablations.engine.execution.checkpoints import EVERY_ENV, PackCheckpoints, checkpoint_every, checkpointing, pack_folder
from ablations.engine.execution.stopping import Stopped, handle_stop_signals, interruptible, restore_stop_signals
from ablations.engine.train import StackRecording, StackTraining, fit_stack
from ablations.engine.train.members import MemberOptimizer, MemberStopping, PackTraining, fit_members
from models.augmentation import AugmentationStrength, scaled_augmentation
from models.stacked import StackedMLP
from models.stacked_cnn import StackedCNN


class Preempted(Exception):
    """Stands for the kill: raised by a logger once a given step is logged."""


def _loggers(members: int, crash_at: int | None):
    logged = [[] for _ in range(members)]

    def logger(m):
        def log(row, step):
            logged[m].append((step, dict(row)))
            if step == crash_at:
                raise Preempted(step)

        return log

    return [logger(m) for m in range(members)], logged


def _run(train, folder, *, crash_at=None, every_s=0.0):
    """``train(loggers)`` inside a pack's checkpoints; returns its result, the logged rows and the pack's record."""
    lines = []
    pack = None if folder is None else PackCheckpoints(folder, every_s, say=lines.append)
    loggers, logged = _loggers(4, crash_at)
    with checkpointing(pack):
        result = train(loggers)
    return result, logged, pack, lines


def _members_pack(classification):
    """Four MLP members: mixed optimizers, dropout, max-norm and early stopping (so the pack shrinks mid-way)."""
    x, y = classification(n=40, seed=1)
    x_val, y_val = classification(n=30, seed=2)
    stack = StackedMLP(
        6, 3, depth=2, width=16, activations=["relu"] * 4, initializers=["he_normal"] * 4, seed=[0, 0, 1, 2],
        keep_prob=[0.5, 1.0, 0.8, 1.0], max_norm=[None, 2.0, None, None],
    )
    optimizers = [MemberOptimizer("sgd", 0.05, momentum=0.9), MemberOptimizer("adam", 3e-2), MemberOptimizer("rmsprop", 1e-2),
                  MemberOptimizer("adam", 3e-2)]
    rules = [None, MemberStopping("val_accuracy", 1), MemberStopping("val_loss", 2), MemberStopping("val_accuracy", 3)]

    def train(loggers):
        fits = fit_members(stack, {"train": (x, y), "val": (x_val, y_val)}, training=PackTraining(12, 8, score_every=2), seeds=[7, 8, 9, 7],
                           optimizers=optimizers, stopping=rules, loggers=loggers)
        return fits, [np.copy(w) for w in stack.trainable_variables]

    return train


def _cnn_pack():
    """Three CNN members, two with their own augmentation (whose random generators a checkpoint must carry)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 20, 8, 8, 1)).astype("float32"), rng.integers(0, 3, (3, 20))
    x_val, y_val = rng.normal(size=(10, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 10)
    strong = AugmentationStrength(shift=0.15, rotation=15, zoom=0.1, noise=0.2)
    strengths, seeds = [strong, AugmentationStrength(), strong], [4, 5, 6]
    stack = StackedCNN((8, 8, 1), 3, seeds=seeds, conv_blocks=1, filters=4, dense_width=8)
    augmentations = [scaled_augmentation(s, (8, 8, 1), seed=seed) for s, seed in zip(strengths, seeds)]

    def train(loggers):
        fits = fit_members(stack, {"train": (x, y), "val": (x_val, y_val)}, training=PackTraining(4, 8), seeds=[0, 1, 2],
                           optimizers=[MemberOptimizer("adam", 1e-2)] * 3, loggers=loggers[:3], augmentations=augmentations)
        return fits, [np.copy(w) for w in stack.trainable_variables]

    return train


def _assert_same_fits(resumed, uninterrupted):
    (fits, weights), (expected_fits, expected_weights) = resumed, uninterrupted
    for actual, expected in zip(weights, expected_weights):
        np.testing.assert_array_equal(actual, expected)
    for trial, expected in zip(fits.trials, expected_fits.trials):
        assert trial.epochs_run == expected.epochs_run and trial.diverged == expected.diverged
        assert trial.history.keys() == expected.history.keys()
        for key in expected.history:
            np.testing.assert_array_equal(trial.history[key], expected.history[key])
        assert trial.final == pytest.approx(expected.final, rel=0, abs=0, nan_ok=True)
    assert fits.restored_epochs == expected_fits.restored_epochs


def _same_rows(actual, expected):
    """Logged rows alike, NaN included (a split left unscored is not logged; a diverged loss is)."""
    return len(actual) == len(expected) and all(
        step == step_e and row.keys() == row_e.keys() and all(v == w or (math.isnan(v) and math.isnan(w)) for v, w in zip(row.values(), row_e.values()))
        for (step, row), (step_e, row_e) in zip(actual, expected)
    )


@pytest.mark.parametrize("pack", ["mlp", "cnn"])
def test_a_pack_stopped_mid_training_resumes_and_ends_as_if_never_stopped(classification, pack, tmp_path):
    make = (lambda: _members_pack(classification)) if pack == "mlp" else _cnn_pack
    uninterrupted, logged, _, _ = _run(make(), None)
    crash_at = 7 if pack == "mlp" else 3
    with pytest.raises(Preempted):
        _run(make(), tmp_path, crash_at=crash_at)
    with np.load(tmp_path / "segment-0.npz") as saved:
        members_at_stop = len(saved["ids"])
    resumed, logged_again, record, lines = _run(make(), tmp_path)
    # Checkpointed after every epoch: the stop came while epoch crash_at was logged, so it resumes after the one before.
    epochs = 12 if pack == "mlp" else 4
    assert record.resumed == [(crash_at - 1, epochs)]
    assert lines == [f"resuming a pack from its checkpoint at epoch {crash_at - 1} of {epochs} ({tmp_path.name})"]
    _assert_same_fits(resumed, uninterrupted)
    # The new runs get every row the stopped ones had logged, then the rest: the same rows as an uninterrupted run.
    assert all(_same_rows(a, e) for a, e in zip(logged_again, logged))
    if pack == "mlp":  # early stopping had shrunk the pack before the stop: the restored pack is the smaller one
        assert members_at_stop < 4


def test_fit_stack_resumes_mini_batch_and_full_batch_training(classification, tmp_path):
    x, y = classification(n=50, seed=3)
    x_val, y_val = classification(n=20, seed=4)

    def mini_batch(loggers):
        stack = StackedMLP(6, 3, depth=3, width=8, activations=["relu", "tanh", "sigmoid", "relu"], initializers=["he_normal"] * 4, seed=1)
        fit = fit_stack(
            stack,
            x,
            y,
            training=StackTraining(epochs=6, learning_rate=1e-2, batch_size=16, seed=[0, 1, 1, 2], optimizer="fused_adam"),
            recording=StackRecording(validation_data=(x_val, y_val), probe_size=16, loggers=loggers),
        )
        return fit.histories, [np.copy(w) for w in stack.trainable_variables]

    def full_batch(loggers):
        stack = StackedMLP(6, 3, depth=1, width=8, activations=["relu"] * 4, initializers=["he_normal"] * 4, seed=2,
                           l2=[0.0, 1e-3, 1e-2, 1e-1])
        weights = np.random.default_rng(0).integers(0, 2, (4, 50)).astype("float32") + 0.5
        fit = fit_stack(stack, x, y, weights, training=StackTraining(epochs=8, learning_rate=1e-2), recording=StackRecording(loggers=loggers))
        return fit.histories, [np.copy(w) for w in stack.trainable_variables]

    for train, crash_at, epochs in ((mini_batch, 4, 6), (full_batch, 5, 8)):
        folder = tmp_path / train.__name__
        (histories, weights), logged, _, _ = _run(train, None)
        with pytest.raises(Preempted):
            _run(train, folder, crash_at=crash_at)
        (histories_again, weights_again), logged_again, record, _ = _run(train, folder)
        assert record.resumed == [(crash_at - 1, epochs)]
        for actual, expected in zip(weights_again, weights):
            np.testing.assert_array_equal(actual, expected)
        assert histories_again == histories
        assert all(_same_rows(a, e) for a, e in zip(logged_again, logged))


def test_a_corrupt_or_foreign_checkpoint_is_discarded_with_one_line_and_the_pack_restarts(classification, tmp_path):
    uninterrupted, _, _, _ = _run(_members_pack(classification), None)
    with pytest.raises(Preempted):
        _run(_members_pack(classification), tmp_path, crash_at=5)
    checkpoint = tmp_path / "segment-0.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])  # a write cut short
    resumed, _, record, lines = _run(_members_pack(classification), tmp_path, every_s=math.inf)
    assert record.resumed == []
    assert len(lines) == 1 and lines[0].startswith(f"checkpoint {checkpoint} discarded (") and lines[0].endswith("its pack restarts from epoch 0")
    assert not checkpoint.exists()  # discarded, and nothing new written (every_s inf)
    _assert_same_fits(resumed, uninterrupted)
    # A checkpoint of other data (here: other validation examples) is not this loop's.
    with pytest.raises(Preempted):
        _run(_members_pack(classification), tmp_path, crash_at=5)
    x_val, y_val = classification(n=30, seed=5)
    stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"], initializers=["he_normal"], seed=0)
    lines = []
    with checkpointing(PackCheckpoints(tmp_path, 0.0, say=lines.append)):
        fit_members(stack, {"train": (x_val, y_val), "val": (x_val, y_val)}, training=PackTraining(1, 8), seeds=[0],
                    optimizers=[MemberOptimizer("adam", 1e-2)])
    assert len(lines) == 1 and "written for other data or another net" in lines[0]


def test_no_checkpoint_outside_a_pack_or_with_a_callers_record(classification, tmp_path):
    x, y = classification(n=20)
    stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"], initializers=["he_normal"], seed=0)
    with checkpointing(PackCheckpoints(tmp_path, 0.0)):
        # record reads the stack: not replayable
        fit_stack(stack, x, y, training=StackTraining(epochs=3, learning_rate=1e-2), recording=StackRecording(record=lambda step: None))
    assert not list(tmp_path.iterdir())
    fit_stack(stack, x, y, training=StackTraining(epochs=3, learning_rate=1e-2))  # no pack: nothing written anywhere
    with checkpointing(PackCheckpoints(tmp_path, 0.0)) as pack:
        fit_stack(stack, x, y, training=StackTraining(epochs=3, learning_rate=1e-2))
        fit_stack(stack, x, y, training=StackTraining(epochs=3, learning_rate=1e-2))
    # One file per loop the pack ran, in call order; none after the last epoch (the pack is done then).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segment-0.npz", "segment-1.npz"]
    assert not list(tmp_path.glob(".*partial"))
    pack.remove()
    assert not tmp_path.exists()


class _SignalsWhenWritten:
    """Weights whose conversion, halfway through a checkpoint's write, sends this process a stop signal."""

    def __init__(self, values: list[float]):
        self.values = values

    def __array__(self, dtype=None, copy=None):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # the handler runs here, in the middle of np.savez
        return np.asarray(self.values, dtype=dtype)


def test_a_stop_signal_waits_for_the_checkpoint_being_written_then_stops_the_training(tmp_path):
    lines = []
    segment = PackCheckpoints(tmp_path, 0.0, say=lines.append).next_segment(lambda: {"net": "mlp"})
    replaced = handle_stop_signals()
    try:
        with pytest.raises(Stopped) as stopped, interruptible():
            segment.save(3, 10, {"recorded": []}, {"variable/0": _SignalsWhenWritten([1.0, 2.0]), "variable/1": np.zeros(2)})
    finally:
        restore_stop_signals(replaced)
    assert stopped.value.signum == signal.SIGTERM
    # Whole, and in place: a rerun resumes from this epoch (a stop raised inside np.savez left a partial file and
    # turned into the ValueError of a zip closed with a member still open).
    meta, arrays = segment.load()
    assert meta["epoch"] == 3 and arrays["variable/0"].tolist() == [1.0, 2.0] and arrays["variable/1"].tolist() == [0.0, 0.0]
    assert not list(tmp_path.glob(".*partial")) and lines == [f"resuming a pack from its checkpoint at epoch 3 of 10 ({tmp_path.name})"]


def test_the_interval_and_the_pack_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(EVERY_ENV, raising=False)
    assert checkpoint_every() == 60.0
    for value, expected in (("0", 0.0), ("12.5", 12.5), ("OFF", None)):
        monkeypatch.setenv(EVERY_ENV, value)
        assert checkpoint_every() == expected
    for value in ("soon", "-1", "inf"):
        monkeypatch.setenv(EVERY_ENV, value)
        with pytest.raises(ValueError, match=f"{EVERY_ENV} must be a number of seconds >= 0, or off; received"):
            checkpoint_every()
    # One folder per grid and ordered list of configurations: the same pack again finds it, another order does not.
    configs = [{"seed": 0, "lr": 0.1}, {"seed": 1, "lr": 0.1}]
    folder = pack_folder(tmp_path, "grid-a", configs)
    assert folder == pack_folder(tmp_path, "grid-a", [dict(reversed(list(c.items()))) for c in configs])
    assert folder.parent == tmp_path / "checkpoints" / "grid-a"
    assert folder != pack_folder(tmp_path, "grid-a", configs[::-1]) and folder != pack_folder(tmp_path, "grid-b", configs)
