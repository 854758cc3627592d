"""fit_trial, the Keras path every packed member is tested against: what it scores, what its loss counts, epochs to a level."""

import math

import keras
import numpy as np
import pytest

from ablations.engine.train import TrialTraining, epochs_to_reach, fit_trial
from models import build_mlp


def _probe(seed=0, n=64, features=20):
    return np.random.default_rng(seed).normal(size=(n, features)).astype("float32")


def test_epochs_to_reach_counts_from_initialization_and_ignores_nan():
    assert epochs_to_reach([2.3, 1.1, 0.6, 0.4, 0.5], 0.5) == 3.0
    assert epochs_to_reach([0.3, 0.2], 0.5) == 0.0
    assert math.isnan(epochs_to_reach([math.nan, 2.0, math.nan], 1.0))


def test_fit_trial_scores_the_training_split_without_dropout():
    x = _probe(1, n=200)
    y = (x[:, 0] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = build_mlp((20,), 2, depth=1, width=64, keep_prob=0.3, seed=0)
    fit = fit_trial(model, (x[:150], y[:150]), (x[150:], y[150:]), training=TrialTraining(epochs=5, batch_size=32, seed=0, learning_rate=1e-2))
    assert fit.epochs_run == 5 and len(fit.history["loss"]) == 6 and math.isnan(fit.history["loss"][0])
    probabilities = keras.ops.convert_to_numpy(model(x[:150], training=False))
    clean_loss = float(np.mean(-np.log(probabilities[np.arange(150), y[:150]])))
    # The final "train" numbers are the trained net's in inference mode, not the running mean with masks.
    assert fit.final["final_train_loss"] == pytest.approx(clean_loss, rel=1e-4)
    assert fit.final["final_accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == y[:150]))
    assert fit.final["final_train_error"] == pytest.approx(1 - fit.final["final_accuracy"])
    assert fit.history["train_loss"][-1] == pytest.approx(clean_loss, rel=1e-4)
    assert fit.final["final_loss"] == fit.history["loss"][-1]


def test_fit_trial_counts_weight_penalties_in_the_training_loss():
    x = _probe(2, n=100)
    y = (x[:, 1] > 0).astype("int64")
    losses = {}
    for l2 in (0.0, 10.0):
        keras.utils.set_random_seed(0)
        model = build_mlp((20,), 2, depth=1, width=16, l2=l2, seed=0)
        fit = fit_trial(model, (x, y), (x, y), training=TrialTraining(epochs=1, batch_size=100, seed=0, learning_rate=1e-9))
        losses[l2] = (fit.history["loss"][1], fit.history["train_loss"][1])
    # With a (practically) frozen net, the penalty is the whole difference of the running loss...
    assert losses[10.0][0] - losses[0.0][0] > 1.0
    # ...and the scored training loss leaves it out.
    assert losses[10.0][1] == pytest.approx(losses[0.0][1], rel=1e-4)
