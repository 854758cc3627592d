"""One study trial: training, cross-validation, NaN losses, and the pruning callback."""

import dataclasses

import keras
import numpy as np
import optuna
import pytest

from ablations.engine.study.data import study_dataset
from ablations.engine.study.space import load_space
from ablations.engine.study.trial import TrialDiverged, augmentation_layer, objective_values, train_trial
from callbacks.pruning import OptunaPruning

CONFIG = {**load_space("tiny").fixed, "activation": "relu", "depth": 1, "width": 8, "learning_rate": 0.02}


class _TestSplitRead(AssertionError):
    pass


@dataclasses.dataclass(frozen=True, eq=False)
class _GuardedData:
    """A data set whose test split raises when read, to show that trials never read it."""

    inner: object

    def __getattr__(self, name):
        if name in ("x_test", "y_test"):
            raise _TestSplitRead(name)
        return getattr(self.inner, name)


def test_a_trial_reports_errors_and_gap_and_never_reads_the_test_split():
    data = _GuardedData(study_dataset("moons", 300))
    score = train_trial(CONFIG, data, seed=0)
    assert score.epochs == 2
    metrics = score.metrics
    assert 0 <= metrics["final_val_error"] <= 1
    assert metrics["final_gap"] == pytest.approx(metrics["final_val_error"] - metrics["final_error"])
    assert objective_values(metrics, "both") == [metrics["final_val_error"], metrics["final_gap"]]


def test_a_trial_repeats_number_for_number_whatever_ran_before():
    # A study with a fixed sampler seed must give the same values in every process: the batch order is seeded too.
    data = study_dataset("moons", 300)
    first = train_trial(CONFIG, data, seed=3).metrics
    keras.random.uniform((5,))  # another draw from Keras's global random state in between
    assert train_trial(CONFIG, data, seed=3).metrics == first
    assert train_trial(CONFIG, data, seed=4).metrics != first


def test_cross_validation_reports_the_mean_over_folds_every_epoch():
    data = _GuardedData(study_dataset("moons", 300))
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, dict(logs)))

    score = train_trial(CONFIG, data, seed=0, cv=2, callbacks=[Record()])
    assert [epoch for epoch, _ in seen] == [0, 1]  # once per epoch, after the last fold
    last = seen[-1][1]
    assert "fold_std/val_error" in last
    assert score.metrics["final_val_error"] == pytest.approx(last["val_error"])


class _NaNOutputBias(keras.callbacks.Callback):
    """Sets the output layer's bias to NaN before training.

    NaN inputs are no way to make a loss NaN: some CPUs' fused MatMul+ReLU
    kernels map them to finite values. A NaN added to every logit after the last
    matmul reaches the softmax and the loss under any kernel.
    """

    def on_train_begin(self, logs=None):
        bias = self.model.get_layer("output").bias
        bias.assign(np.full(bias.shape, np.nan, dtype="float32"))


def test_a_nan_loss_raises_trial_diverged_naming_terminate_on_nan():
    data = study_dataset("moons", 300)
    with pytest.raises(TrialDiverged, match="^TerminateOnNaN: the training loss became nan in epoch 1$"):
        train_trial(CONFIG, data, seed=0, callbacks=[_NaNOutputBias()])


def test_under_cv_a_nan_loss_raises_trial_diverged_too():
    data = study_dataset("moons", 300)
    with pytest.raises(TrialDiverged, match="^TerminateOnNaN: the training loss became nan in epoch 1$"):
        train_trial(CONFIG, data, seed=0, cv=2, callbacks=[_NaNOutputBias()])


def test_augmentation_suits_the_input_layout():
    assert augmentation_layer("none", (2,), 0) is None
    assert isinstance(augmentation_layer("light", (2,), 0), keras.layers.GaussianNoise)
    assert augmentation_layer("strong", (40, 1), 0).__class__.__name__ == "SignalAugmentation"
    assert augmentation_layer("light", (8, 8, 1), 0).name == "image_augmentation"


def _fit_under_study(pruner, monitor="val_error"):
    data = study_dataset("moons", 300)
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    callback = OptunaPruning(trial, monitor=monitor)
    return study, trial, callback, lambda: train_trial(CONFIG, data, seed=0, callbacks=[callback])


def test_pruning_callback_prunes_and_records_the_epoch():
    study, trial, callback, fit = _fit_under_study(optuna.pruners.ThresholdPruner(upper=0.0))
    with pytest.raises(optuna.TrialPruned):
        fit()
    assert callback.pruned_epoch == 0 and callback.epochs_seen == 1
    assert list(study.trials[0].intermediate_values) == [0]


def test_pruning_callback_reports_every_epoch_when_not_pruned():
    study, trial, callback, fit = _fit_under_study(optuna.pruners.NopPruner())
    fit()
    assert sorted(study.trials[0].intermediate_values) == [0, 1]
    assert callback.pruned_epoch is None


def test_pruning_callback_rejects_a_metric_that_is_not_logged():
    # optuna-integration's KerasPruningCallback only warns here and never prunes.
    *_, fit = _fit_under_study(optuna.pruners.NopPruner(), monitor="val_acc")
    with pytest.raises(ValueError, match="monitors 'val_acc', which is not in the epoch logs. Valid choices: .*val_accuracy"):
        fit()


def test_pruning_callback_leaves_non_finite_values_to_terminate_on_nan():
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    trial = study.ask()
    callback = OptunaPruning(trial, monitor="val_loss")
    callback.on_epoch_end(0, {"val_loss": float("nan")})
    assert study.trials[0].intermediate_values == {}


@pytest.mark.parametrize(("kwargs", "message"), [({"monitor": ""}, "`monitor` must be"), ({"interval": 0}, "`interval` must be")])
def test_pruning_callback_validates_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OptunaPruning(optuna.trial.FixedTrial({}), **kwargs)
