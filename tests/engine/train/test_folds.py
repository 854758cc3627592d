"""k-fold cross-validation of many nets as one stack: the folds as masks, the fits trials share, one training."""

import numpy as np

from ablations.engine.protocol import kfold_indices
from ablations.engine.train.folds import fit_folds, fold_masks, shared_fits


def test_fold_masks_mark_each_folds_training_and_held_out_examples():
    folds = kfold_indices(23, 4, seed=3)
    train, val = fold_masks(folds, 23)
    assert train.shape == val.shape == (4, 23) and train.dtype == val.dtype == np.float32
    np.testing.assert_array_equal(train + val, 1.0)
    np.testing.assert_array_equal(val.sum(axis=0), 1.0)  # every example is held out exactly once
    for (train_index, val_index), row in zip(folds, val):
        np.testing.assert_array_equal(np.flatnonzero(row), val_index)
    # Another seed reshuffles the folds.
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold_indices(23, 4, seed=4)))


def test_shared_fits_trains_each_distinct_fit_once_in_first_seen_order():
    keys = [[("a", 0), ("a", 1)], [("b", 0), ("b", 1)], [("a", 0), ("a", 1)]]
    distinct, of_trial = shared_fits(keys)
    assert distinct == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert of_trial == [[0, 1], [2, 3], [0, 1]]


def test_fit_folds_trains_each_distinct_net_on_its_folds_as_one_stack():
    from ablations.engine.train import StackTraining
    from models.mlp import build_mlp

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)).astype("float32"), rng.integers(0, 2, 12)
    folds, built, recorded = kfold_indices(12, 2, seed=0), [], []

    def build(trial: int, fold: int):
        built.append((trial, fold))
        return build_mlp((3,), 2, depth=1, width=4, seed=trial)

    # Trials 0 and 2 train the same net: they share its members; one build per net, at its first trial and fold.
    nets = [["a", "a"], ["b", "b"], ["a", "a"]]
    fits = fit_folds(nets, build, folds, (x, y), "relu", StackTraining(epochs=2, learning_rate=0.01), lambda fits, step: recorded.append(step), 1)
    assert built == [(0, 0), (1, 0)] and fits.of_trial == [[0, 1], [2, 3], [0, 1]]
    assert fits.models[0] is fits.models[1] and len(fits.models) == 4
    np.testing.assert_array_equal(fits.train_masks, fold_masks(folds, 12)[0][[0, 1, 0, 1]])
    np.testing.assert_array_equal(fits.val_masks, fold_masks(folds, 12)[1][[0, 1, 0, 1]])
    assert recorded == [0, 1, 2]
    # A net's folds start from its one set of weights and train apart.
    assert not np.allclose(fits.stack.member_weights(0)[0], fits.stack.member_weights(1)[0])


