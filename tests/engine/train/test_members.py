"""fit_members: every member of a pack ends as fit_trial leaves the same net trained alone."""

import keras
import numpy as np
import pytest

from ablations.engine.train import TrialTraining, fit_trial
from ablations.engine.train.members import MemberOptimizer, MemberStopping, PackTraining, fit_members, heldout_half, pack_options
from models.augmentation import AugmentationStrength, scaled_augmentation
from models.cnn import build_cnn
from models.stacked import StackedMLP
from models.stacked_cnn import CONVOLUTIONS, StackedCNN

OPTIMIZERS = [
    MemberOptimizer("sgd", 0.05),
    MemberOptimizer("sgd", 0.02, momentum=0.9),
    MemberOptimizer("rmsprop", 3e-3),
    MemberOptimizer("adam", 1e-2),
]


def keras_optimizer(spec: MemberOptimizer) -> keras.optimizers.Optimizer:
    if spec.kind == "sgd":
        return keras.optimizers.SGD(spec.learning_rate, momentum=spec.momentum)
    return {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}[spec.kind](spec.learning_rate)


def alone(model, splits, member, *, epochs, batch_size, seed, optimizer, stopping):
    """The member's net through fit_trial: its own data, shuffle seed, optimizer and EarlyStopping."""
    (x, y), (x_val, y_val) = (_member(splits[name], member) for name in ("train", "val"))
    extra = {name: _member(split, member) for name, split in splits.items() if name not in ("train", "val")}
    callbacks = []
    if stopping is not None:
        mode = "max" if stopping.maximize else "min"
        callbacks = [keras.callbacks.EarlyStopping(monitor=stopping.monitor, mode=mode, patience=stopping.patience, restore_best_weights=True)]
    fit = fit_trial(
        model,
        (x, y),
        (x_val, y_val),
        training=TrialTraining(
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            optimizer=keras_optimizer(optimizer),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ),
        callbacks=callbacks,
        extra_eval=extra,
    )
    return fit, (callbacks[0].best_epoch + 1 if callbacks else None)


def _member(split, member):
    x, y = split
    return (x[member] if x.ndim == 3 else x), (y[member] if y.ndim == 2 else y)


def assert_same_net(stack, member, model, rtol=1e-4, atol=1e-5):
    for expected, actual in zip(model.get_weights(), stack.member_weights(member)):
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def test_each_member_trains_as_fit_trial_with_its_own_optimizer_data_and_shuffle(classification):
    """Four optimizers, four data sets (one per member), four shuffle seeds: each member is its net trained alone."""
    members = len(OPTIMIZERS)
    data = [classification(n=48, seed=s) for s in range(members)]
    x, y = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    x_val, y_val = classification(n=20, seed=9)
    splits = {"train": (x, y), "val": (x_val, y_val), "heldout": (x[:, :10], y[:, :10])}
    stack = StackedMLP(6, 3, depth=2, width=8, activations=["relu"] * members, initializers=["he_normal"] * members, seed=[3, 3, 4, 5])
    separate = [stack.member_model(m) for m in range(members)]
    seeds = [0, 1, 2, 0]
    fits = fit_members(stack, splits, training=PackTraining(3, 10), seeds=seeds, optimizers=OPTIMIZERS)
    for m, model in enumerate(separate):
        fit, _ = alone(model, splits, m, epochs=3, batch_size=10, seed=seeds[m], optimizer=OPTIMIZERS[m], stopping=None)
        assert_same_net(stack, m, model)
        packed = fits.trials[m]
        assert packed.epochs_run == fit.epochs_run == 3
        assert set(packed.history) == set(fit.history)
        for key in ("loss", "val_loss", "heldout_accuracy", "train_loss"):
            np.testing.assert_allclose(packed.history[key], fit.history[key], rtol=1e-4, equal_nan=True)
        assert set(packed.final) == set(fit.final)
        for key, value in fit.final.items():
            np.testing.assert_allclose(packed.final[key], value, rtol=1e-4, atol=1e-6, err_msg=key)


def test_members_stop_early_and_restore_their_best_weights_as_keras_early_stopping_does(classification, monkeypatch):
    """Members with and without EarlyStopping in one pack: same stop epoch, restored epoch and weights as alone."""
    subsets = []
    original = StackedMLP.subset
    monkeypatch.setattr(StackedMLP, "subset", lambda self, members: subsets.append(list(members)) or original(self, members))
    x, y = classification(n=40, seed=1)
    # Random labels on the validation split: its error wanders, so the stoppers stop at different epochs.
    x_val, y_val = classification(n=30, seed=2)
    rules = [None, MemberStopping("val_accuracy", 1), MemberStopping("val_loss", 2), MemberStopping("val_accuracy", 4)]
    members = len(rules)
    stack = StackedMLP(6, 3, depth=2, width=16, activations=["relu"] * members, initializers=["he_normal"] * members, seed=[0, 0, 1, 2])
    separate = [stack.member_model(m) for m in range(members)]
    optimizer = MemberOptimizer("adam", 3e-2)
    fits = fit_members(
        stack, {"train": (x, y), "val": (x_val, y_val)}, training=PackTraining(25, 8), seeds=[7] * members,
        optimizers=[optimizer] * members, stopping=rules,
    )
    stops = []
    for m, model in enumerate(separate):
        fit, restored = alone(model, {"train": (x, y), "val": (x_val, y_val)}, m, epochs=25, batch_size=8, seed=7, optimizer=optimizer, stopping=rules[m])
        assert fits.trials[m].epochs_run == fit.epochs_run
        assert fits.restored_epochs[m] == restored
        assert len(fits.trials[m].history["val_accuracy"]) == fit.epochs_run + 1
        assert_same_net(stack, m, model)
        stops.append(fit.epochs_run)
    # The pack really mixed stopping epochs: the member without a stopper ran every epoch, some stopper far fewer.
    assert stops[0] == 25 and min(stops[1:]) < 25 and len(set(stops)) > 1
    # Once half had stopped, the rest trained on in a smaller stack, and still ended as alone.
    assert subsets and len(subsets[0]) <= members // 2


def test_a_diverged_member_stops_and_leaves_the_others_untouched(classification):
    """A member whose loss overflows stops as fit_trial stops; its neighbours train on as alone."""
    x, y = classification(n=32)
    x = x * np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1e4], np.float32)  # one huge feature: SGD at lr 10 overflows
    stack = StackedMLP(6, 3, depth=1, width=8, activations=["relu"] * 2, initializers=["he_normal"] * 2, seed=0)
    model = stack.member_model(1)
    optimizers = [MemberOptimizer("sgd", 10.0), MemberOptimizer("sgd", 1e-6)]
    fits = fit_members(stack, {"train": (x, y), "val": (x, y)}, training=PackTraining(6, 8), seeds=[0, 0], optimizers=optimizers)
    diverged = fits.trials[0]
    assert diverged.diverged and diverged.epochs_run < 6
    assert not np.isfinite(diverged.final["final_loss"])
    fit, _ = alone(model, {"train": (x, y), "val": (x, y)}, 1, epochs=6, batch_size=8, seed=0, optimizer=optimizers[1], stopping=None)
    assert fits.trials[1].epochs_run == fit.epochs_run == 6 and not fits.trials[1].diverged
    assert_same_net(stack, 1, model)


def test_each_member_draws_its_lone_nets_dropout_masks_and_keeps_its_max_norm(classification):
    """Dropout on inputs and hidden units, per-member keep probabilities, widths and max-norm: each member is its net alone.

    The batches do not divide the data (the last is smaller), so the masks of every batch shape are covered.
    """
    x, y = classification(n=30, seed=1)
    x_val, y_val = classification(n=12, seed=2)
    splits = {"train": (x, y), "val": (x_val, y_val)}
    keep, input_keep, max_norm = [0.5, 1.0, 0.6, 1.0], [1.0, 0.8, 0.7, 1.0], [None, None, 0.4, 0.9]
    stack = StackedMLP(
        6, 3, depth=2, width=[8, 8, 12, 12], activations=["relu"] * 4, initializers=["he_normal"] * 4, seed=[3, 4, 5, 6],
        keep_prob=keep, input_keep_prob=input_keep, max_norm=max_norm,
    )
    separate = [stack.member_model(m) for m in range(4)]
    optimizer = MemberOptimizer("adam", 3e-2)
    fits = fit_members(stack, splits, training=PackTraining(4, 8, score_every=2), seeds=[0, 1, 2, 3], optimizers=[optimizer] * 4)
    for m, model in enumerate(separate):
        fit, _ = alone(model, splits, m, epochs=4, batch_size=8, seed=m, optimizer=optimizer, stopping=None)
        assert_same_net(stack, m, model)
        np.testing.assert_allclose(fits.trials[m].history["loss"], fit.history["loss"], rtol=1e-4, equal_nan=True)
        # Scored every second epoch: NaN between, as in fit_trial's history.
        assert np.isnan(fits.trials[m].history["train_loss"][1]) and np.isfinite(fits.trials[m].history["train_loss"][2])
    # The masks mattered: without them, member 0 trains to other weights.
    plain = StackedMLP(6, 3, depth=2, width=8, activations=["relu"], initializers=["he_normal"], seed=3)
    fit_members(plain, splits, training=PackTraining(4, 8), seeds=[0], optimizers=[optimizer])
    assert np.abs(plain.member_weights(0)[0] - stack.member_weights(0)[0]).max() > 1e-3
    # Max-norm held: every hidden unit of member 2 has incoming weights of norm at most 0.4, and member 3's at most 0.9.
    for m, limit in ((2, 0.4), (3, 0.9)):
        for kernel in stack.member_weights(m)[0:4:2]:
            assert np.linalg.norm(kernel, axis=0).max() <= limit * (1 + 1e-5)
    # A member model continues the mask stream: at step 16 (4 epochs of 4 batches) it draws what the lone net draws next.
    steps = 4 * 4
    continued, trained = stack.member_model(0, dropout_step=steps), separate[0]
    batch = np.ones((5, 8), np.float32)
    np.testing.assert_array_equal(continued.get_layer("dropout_0")(batch, training=True), trained.get_layer("dropout_0")(batch, training=True))


STRONG = AugmentationStrength(shift=0.15, rotation=15, zoom=0.1, noise=0.2)


def _cnn_layers(model: keras.Model, blocks: int) -> list[np.ndarray]:
    return [w for name in [f"conv_{i}" for i in range(blocks)] + ["dense_0", "output"] for w in model.get_layer(name).get_weights()]


@pytest.mark.parametrize("convolution", CONVOLUTIONS)
@pytest.mark.parametrize("example", [(8, 8, 1), (24,)], ids=["images", "signals"])
def test_each_cnn_member_trains_on_its_own_augmented_batches_as_build_cnn_alone(convolution, example):
    """Stacked CNNs, each with its own data, seed and augmentation (one without), against build_cnn through fit_trial."""
    members, n = 3, 20
    rng = np.random.default_rng(0)
    x = rng.normal(size=(members, n, *example)).astype("float32")
    y = rng.integers(0, 3, (members, n))
    x_val, y_val = rng.normal(size=(10, *example)).astype("float32"), rng.integers(0, 3, 10)
    seeds, strengths = [4, 5, 6], [STRONG, AugmentationStrength(), STRONG]
    options = {"conv_blocks": 2, "filters": 4, "dense_width": 8}
    stack = StackedCNN(example, 3, seeds=seeds, convolution=convolution, **options)
    fits = fit_members(
        stack, {"train": (x, y), "val": (x_val, y_val)}, training=PackTraining(2, 8), seeds=[0, 1, 2],
        optimizers=[MemberOptimizer("adam", 1e-2)] * members,
        augmentations=[scaled_augmentation(strength, example, seed=seed) for strength, seed in zip(strengths, seeds)],
    )
    for m in range(members):
        model = build_cnn(example, 3, augmentation=scaled_augmentation(strengths[m], example, seed=seeds[m]), seed=seeds[m],
                          output_activation="linear", **options)
        if m == 0:  # the stack starts from build_cnn's weights
            for expected, actual in zip(_cnn_layers(model, 2), StackedCNN(example, 3, seeds=seeds, **options).member_weights(0)):
                np.testing.assert_array_equal(actual, expected)
        fit = fit_trial(
            model,
            (x[m], y[m]),
            (x_val, y_val),
            training=TrialTraining(
                epochs=2,
                batch_size=8,
                seed=m,
                optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            ),
        )
        for expected, actual in zip(_cnn_layers(model, 2), stack.member_weights(m)):
            np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fits.trials[m].history["loss"], fit.history["loss"], rtol=1e-4, equal_nan=True)
        np.testing.assert_allclose(stack.member_model(m)(x_val).numpy(), model(x_val).numpy(), rtol=1e-4, atol=1e-4)
    # The augmentation mattered: member 0 without it ends elsewhere.
    plain = StackedCNN(example, 3, seeds=seeds[:1], convolution=convolution, **options)
    fit_members(plain, {"train": (x[:1], y[:1]), "val": (x_val, y_val)}, training=PackTraining(2, 8), seeds=[0],
                optimizers=[MemberOptimizer("adam", 1e-2)])
    assert np.abs(plain.member_weights(0)[0] - stack.member_weights(0)[0]).max() > 1e-3


def test_loggers_get_each_members_steps_until_it_stops(classification):
    x, y = classification(n=24)
    logged = [[], []]
    stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"] * 2, initializers=["he_normal"] * 2, seed=0)
    fits = fit_members(
        stack, {"train": (x, y), "val": (x, y)}, training=PackTraining(5, 8), seeds=[0, 1],
        optimizers=[MemberOptimizer("adam", 1e-3)] * 2, stopping=[None, MemberStopping("val_loss", 1, mode="max")],
        loggers=[lambda logs, step, m=m: logged[m].append(step) for m in range(2)],
    )
    # mode="max" on a falling loss: no improvement after the first epoch, so patience 1 stops at the second.
    assert logged[0] == [0, 1, 2, 3, 4, 5]
    assert logged[1] == [0, 1, 2] and fits.trials[1].epochs_run == 2 and fits.restored_epochs == [None, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seeds": [0]}, "one of seeds per member"),
        ({"optimizers": [MemberOptimizer("adam", 1e-3)]}, "one of optimizers per member"),
        ({"splits": {"train": None}}, "needs 'train' and 'val'"),
        ({"splits": {"train": (np.zeros((3, 5, 6)), np.zeros(5)), "val": (np.zeros((5, 6)), np.zeros(5))}}, "split 'train'"),
        ({"training": PackTraining(1, 5, score_every=2), "stopping": [None, MemberStopping("train_loss", 2)]},
         "Stopping watches train_loss, which score_every=2"),
        ({"augmentations": [None]}, "one of augmentations per member"),
    ],
)
def test_bad_arguments_are_rejected(classification, kwargs, message):
    x, y = classification(n=10)
    stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"] * 2, initializers=["he_normal"] * 2, seed=0)
    arguments = {"splits": {"train": (x, y), "val": (x, y)}, "training": PackTraining(1, 5), "seeds": [0, 0],
                 "optimizers": [MemberOptimizer("adam", 1e-3)] * 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_members(stack, **arguments)


def test_a_pack_scores_at_least_every_epoch_it_is_told():
    for score_every in (0, 1.5, True):
        with pytest.raises(ValueError, match="score_every` must be an integer >= 1"):
            PackTraining(epochs=1, batch_size=5, score_every=score_every)


def test_pack_options_read_the_shared_settings_and_each_members_seed():
    configs = [{"epochs": 7, "batch_size": 16, "seed": seed} for seed in (3, 4)]
    assert pack_options(configs, score_every=5) == {"training": PackTraining(7, 16, score_every=5), "seeds": [3, 4]}


def test_optimizer_specs_are_validated():
    with pytest.raises(ValueError, match="must be one of"):
        MemberOptimizer("adagrad", 0.1)
    with pytest.raises(ValueError, match="momentum is SGD's"):
        MemberOptimizer("adam", 0.1, momentum=0.9)


def test_heldout_half_splits_the_validation_split_into_every_other_example():
    x_val, y_val = np.arange(2 * 5 * 3).reshape(2, 5, 3), np.arange(10).reshape(2, 5)
    splits = heldout_half({"train": ("x", "y"), "val": (x_val, y_val)})
    assert splits["train"] == ("x", "y")
    assert splits["val"][1].tolist() == [[0, 2, 4], [5, 7, 9]] and splits["heldout"][1].tolist() == [[1, 3], [6, 8]]
    # Together the halves hold each member's validation examples once.
    assert sorted(np.concatenate([splits["val"][0], splits["heldout"][0]], axis=1).ravel().tolist()) == list(range(30))


def test_packs_trained_one_after_another_trigger_no_retracing_warning(classification, caplog):
    x, y = classification(n=24)
    # A grid's packs, and the smaller packs its members leave behind, each trace their own functions once.
    for pack in range(4):
        stack = StackedMLP(6, 3, depth=1, width=4, activations=["relu"] * 4, initializers=["he_normal"] * 4, seed=pack)
        fits = fit_members(
            stack, {"train": (x, y), "val": (x, y)}, training=PackTraining(3, 8), seeds=list(range(4)),
            optimizers=[MemberOptimizer("adam", 1e-3)] * 4, stopping=[None, *[MemberStopping("val_loss", 1, mode="max")] * 3],
        )
        assert [trial.epochs_run for trial in fits.trials] == [3, 2, 2, 2]
    # TensorFlow would count those first traces as one function retracing, and say so on the user's terminal.
    assert [record.getMessage() for record in caplog.records if "retracing" in record.getMessage()] == []
