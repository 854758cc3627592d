"""Trials packed as members of one stacked model: `fit_trial`'s results, one pass for all.

Seeds and arms of one configuration are natural members of a
`models.stacked.StackedMLP`: they share the architecture and differ in what is
compared. `fit_members` trains them in one graph, each exactly as `fit_trial`
would train the same net alone, and returns one `TrialFit` per member, so an
ablation reads its results as before. Per member:

- its own data: training, validation and extra splits of shape ``(M, n, ...)``
  (a seed's redrawn split, its noisy labels, its normalized or raw features),
  or shared ones of shape ``(n, ...)``;
- its own batch order: ``np.random.default_rng(seeds[m]).permutation(n)`` each
  epoch, `fit_trial`'s shuffle;
- its own optimizer (`MemberOptimizer`: Keras's SGD, with or without momentum,
  RMSprop or Adam, each with its own learning rate), the same update formulas
  applied elementwise to its slice of the stacked weights;
- its own early stopping (`MemberStopping`: what
  ``keras.callbacks.EarlyStopping(monitor, mode, patience,
  restore_best_weights=True)`` decides), and `fit_trial`'s stop once the
  training loss is no longer finite. A member that stopped takes no further
  update; its best weights are restored at the end.

`tests/engine/train/test_members.py` checks each member against `fit_trial` on
the same net, weight for weight.

Members are trained on logits with ``sparse_softmax_cross_entropy_with_logits``
(the stack has no softmax layer); `fit_trial` on a `models.build_mlp` net takes
the cross-entropy of its softmax probabilities. The two agree to float32
rounding.

Example:

>>> stack = StackedMLP(64, 10, depth=3, width=256, activations=["relu"] * 6,
...                    initializers=["he_normal"] * 6, seed=[0, 0, 1, 1, 2, 2])
>>> fits = fit_members(stack, {"train": (x, y), "val": (x_stop, y_stop)},
...                    training=PackTraining(epochs=150, batch_size=50), seeds=[0, 0, 1, 1, 2, 2],
...                    optimizers=[MemberOptimizer("adam", 1e-3)] * 6,
...                    stopping=[None, MemberStopping("val_accuracy", 5)] * 3)
>>> fits.trials[1].epochs_run, fits.restored_epochs[1]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ablations.engine.execution.checkpoints import Segment, digest, next_segment
from ablations.engine.spec import TrialLogger
from ablations.engine.train.keras_fit import TrialFit, check_score_every
from ablations.engine.train.optimizers import MemberOptimizer, PerMemberOptimizer, along_members
from models.stacked import StackedMLP
from models.stacked_cnn import StackedCNN


@dataclass(frozen=True)
class PackTraining:
    """How long a pack trains and when it scores its splits: what its members share (`fit_members`).

    Args:
        epochs: Most epochs to train.
        batch_size: Examples per step; the last batch of an epoch may be smaller.
        score_every: Score the splits every this many epochs, at the last and when a member diverges
            (`TrialTraining`'s ``score_every``; their history is NaN between), except those of ``every_epoch``.
        every_epoch: The splits scored after every epoch whatever ``score_every``: by default ``"val"``,
            which stopping and convergence curves watch.
    """

    epochs: int
    batch_size: int
    score_every: int = 1
    every_epoch: tuple[str, ...] = ("val",)

    def __post_init__(self):
        check_score_every(self.score_every)


@dataclass(frozen=True)
class MemberStopping:
    """One member's early stopping: ``keras.callbacks.EarlyStopping(monitor, mode, patience, restore_best_weights=True)``.

    With ``every`` > 1 or ``rise_only``, a rule Keras's callback has no
    option for, such as the lecture's: look at the validation error every 5
    epochs, stop at its first rise and keep the weights of the look before
    (``MemberStopping("val_accuracy", 1, every=5, rise_only=True)``).

    Args:
        monitor: A logged metric: ``val_loss``, ``val_accuracy``, ``train_loss``, ...
        patience: Looks without improvement before stopping, >= 1 (a look per epoch: Keras's patience).
        mode: "min" or "max"; None watches losses for a fall and the rest for a rise.
        every: Epochs between looks at the monitor: after epochs ``every``, ``2 * every``, ... (from 1).
        rise_only: Only a worse value counts against the net: a look that ties the best is an improvement
            (its weights are kept). Keras counts a tie as no improvement.
    """

    monitor: str
    patience: int
    mode: str | None = None
    every: int = 1
    rise_only: bool = False

    def __post_init__(self):
        if self.patience < 1 or self.every < 1:
            raise ValueError(f"MemberStopping needs patience >= 1 and every >= 1; received patience={self.patience}, every={self.every}.")

    @property
    def maximize(self) -> bool:
        return self.mode == "max" if self.mode else not self.monitor.endswith("loss")


@dataclass(frozen=True)
class PackedFits:
    """What `fit_members` returns.

    Args:
        trials: One `TrialFit` per member, as `fit_trial` returns it.
        restored_epochs: Per member with early stopping, the epoch (from 1)
            whose weights it ended with (Keras's ``best_epoch + 1``); None for
            the members without.
    """

    trials: list[TrialFit]
    restored_epochs: list[int | None]


def fit_members(
    stack: StackedMLP | StackedCNN,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    training: PackTraining,
    seeds: Sequence[int],
    optimizers: Sequence[MemberOptimizer],
    stopping: Sequence[MemberStopping | None] | None = None,
    loggers: Sequence[TrialLogger] | None = None,
    augmentations: Sequence[keras.layers.Layer | None] | None = None,
) -> PackedFits:
    """Trains each member of ``stack`` as `fit_trial` trains one net, all in one graph.

    Members that stop (early stopping, divergence) leave the computation: their
    final weights are kept aside, and once at most half of the members still
    train, those go on in a smaller stack (`StackedMLP.subset`; members of one
    width only), so a pack costs about what its members' own epochs cost.

    Inside a pack's `execution.checkpoints.checkpointing` block (the runner
    opens one around each pack) it saves its state at epoch ends every so
    often: weights, best weights, optimizer slots and step, who still trains,
    the shuffles' and augmentation layers' random states, the stoppers and the
    logged rows. Run again after a stop, it continues from the newest
    checkpoint, replaying the rows to ``loggers``, to the same numbers bit for
    bit on a CPU.

    Args:
        stack: The members (a `StackedMLP` or `StackedCNN`); ends holding
            each member's final weights.
        splits: ``"train"`` (what the members learn from), ``"val"`` (Keras's
            validation data: what early stopping watches) and any further
            named splits, scored alongside (`fit_trial`'s ``extra_eval``).
            Each is ``(x, y)`` with ``x`` of shape ``(n, *example)`` shared by
            the members or ``(M, n, *example)``, one per member, and integer
            labels ``(n,)`` or ``(M, n)``.
        training: Epochs, batch size and when to score the splits, as `PackTraining` says.
        seeds: Per member, the seed of its per-epoch shuffle.
        optimizers: Per member, its `MemberOptimizer`.
        stopping: Per member, its `MemberStopping` or None. Defaults to none.
        loggers: Per member, receives each step's logs: ``log(logs, step)``.
        augmentations: Per member, a Keras augmentation layer (or None)
            applied to each of its training batches in training mode, as the
            first layer of its lone net would be: the same layer, seeded
            alike, draws the same transformations.

    Returns:
        `PackedFits`: per member, its `TrialFit` and restored epoch.
    """
    members = stack.members
    stopping = list(stopping) if stopping is not None else [None] * members
    per_member = {"seeds": seeds, "optimizers": optimizers, "stopping": stopping, "loggers": loggers, "augmentations": augmentations}
    _check_arguments(members, per_member, splits, training)
    epochs, batch_size, score_every, every_epoch = training.epochs, training.batch_size, training.score_every, training.every_epoch
    data = {name: _per_member(members, x, y, name, stack.example_shape) for name, (x, y) in splits.items()}
    n = int(data["train"][0].shape[1])
    optimizer = PerMemberOptimizer(stack.trainable_variables, optimizers)
    pack = _Pack(stack, data, optimizer, batch_size, np.arange(members), augmentations)
    loop = _Loop(stack, seeds, stopping, loggers)
    settings = [epochs, batch_size, list(seeds), [repr(o) for o in optimizers], [repr(s) for s in stopping], score_every, list(every_epoch)]
    segment = next_segment(lambda: _signature(stack, splits, settings))
    saved = segment.load() if segment is not None else None
    if saved is None:
        loop.histories.record({"loss": np.full(members, math.nan), "accuracy": np.full(members, math.nan), **pack.scores()}, pack.ids, 0)
        start = 0
    else:
        pack, start = loop.restore(pack, augmentations, *saved)
    for epoch in range(start, epochs):
        if not loop.running.any():
            break
        # Members that stopped may still sit in the pack until it shrinks: their results are ignored.
        live = loop.running[pack.ids]
        ids = pack.ids[live]
        order = np.stack([loop.rngs[m].permutation(n) if loop.running[m] else np.arange(n) for m in pack.ids])
        loss, accuracy = pack.train_epoch(order)
        scored = (epoch + 1) % score_every == 0 or epoch + 1 == epochs or not np.isfinite(loss[live]).all()
        scores = pack.scores() if scored else pack.scores(tuple(every_epoch))
        logs = {key: values[live] for key, values in {"loss": loss, "accuracy": accuracy, **scores}.items()}
        loop.epochs_run[ids] = epoch + 1
        loop.last_loss[ids] = logs["loss"]
        loop.diverged[ids] = ~np.isfinite(logs["loss"])
        loop.histories.record(logs, ids, epoch + 1)
        improved, stopped = (_spread(mask, live) for mask in loop.stoppers.update(epoch, logs, ids))
        pack.keep_best(improved)
        leaving = stopped | _spread(loop.diverged[ids], live)
        if leaving.any():
            pack.write_final(loop.final_weights, leaving, loop.stoppers.has_best[pack.ids])
            loop.running[pack.ids[leaving]] = False
        if loop.running.any() and loop.running[pack.ids].sum() <= len(pack.ids) // 2 and len(set(stack.widths)) == 1:
            pack = pack.subset(loop.running[pack.ids])
        if segment is not None and segment.due() and epoch + 1 < epochs:
            loop.save(segment, epoch + 1, epochs, pack, augmentations)
    still = loop.running[pack.ids]
    if still.any():
        pack.write_final(loop.final_weights, still, loop.stoppers.has_best[pack.ids])
    for variable, value in zip(stack.trainable_variables, loop.final_weights):
        variable.assign(value)
    final = (pack if pack.stack is stack else _Pack(stack, data, None, batch_size, np.arange(members), None)).scores()
    trials = [
        TrialFit(
            loop.histories.of(m), int(loop.epochs_run[m]), bool(loop.diverged[m]),
            _final(final, m, loop.last_loss[m], loop.epochs_run[m], loop.diverged[m]),
        )
        for m in range(members)
    ]
    return PackedFits(trials, loop.stoppers.restored_epochs())


class _Loop:
    """`fit_members`' per-member bookkeeping, and the checkpoint of it with the pack's weights and optimizer state.

    Args:
        stack: The whole pack's stack (its weights are each member's start).
        seeds: Per member, its shuffle's seed.
        stopping: Per member, its early stopping or None.
        loggers: Per member, its logger, or None.
    """

    def __init__(self, stack, seeds: Sequence[int], stopping: Sequence[MemberStopping | None], loggers: Sequence[TrialLogger] | None):
        members = stack.members
        self.final_weights = [keras.ops.convert_to_numpy(v).copy() for v in stack.trainable_variables]
        self.histories = _Histories(members, loggers)
        self.stoppers = _Stoppers(stopping)
        self.running = np.ones(members, bool)
        self.epochs_run = np.zeros(members, int)
        self.diverged = np.zeros(members, bool)
        self.last_loss = np.full(members, math.nan)
        self.rngs = [np.random.default_rng(seed) for seed in seeds]

    def save(self, segment: Segment, epoch: int, epochs: int, pack: _Pack, augmentations) -> None:
        """Checkpoints the state after ``epoch``: what `restore` needs to go on as if never stopped."""
        arrays = {"ids": pack.ids, "running": self.running, "epochs_run": self.epochs_run, "diverged": self.diverged,
                  "last_loss": self.last_loss, "has_best": self.stoppers.has_best}
        for name, values in (("weights", pack.variables), ("best", pack.best), ("final", self.final_weights)):
            arrays.update({f"{name}/{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(values)})
        for name, slots in pack.optimizer.slots.items():
            arrays.update({f"slot/{name}/{i}": slot.numpy() for i, slot in enumerate(slots)})
        arrays.update({f"augmentation/{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(_random_states(augmentations))})
        meta = {
            "iterations": int(pack.optimizer.iterations.numpy()),
            "rngs": [rng.bit_generator.state for rng in self.rngs],
            "stoppers": {"best": self.stoppers.best, "best_epoch": self.stoppers.best_epoch, "wait": self.stoppers.wait},
            "logged": self.histories.logged,
        }
        segment.save(epoch, epochs, meta, arrays)

    def restore(self, pack: _Pack, augmentations, meta: dict, arrays: dict[str, np.ndarray]) -> tuple[_Pack, int]:
        """The pack and this bookkeeping as `save` left them; returns the pack and the epoch to go on from."""
        for name in ("running", "epochs_run", "diverged", "last_loss"):
            getattr(self, name)[:] = arrays[name]
        self.stoppers.has_best[:] = arrays["has_best"]
        self.stoppers.best, self.stoppers.best_epoch, self.stoppers.wait = (meta["stoppers"][k] for k in ("best", "best_epoch", "wait"))
        for rng, state in zip(self.rngs, meta["rngs"]):
            rng.bit_generator.state = state
        for i, final in enumerate(self.final_weights):
            final[...] = arrays[f"final/{i}"]
        ids = arrays["ids"]
        if len(ids) < len(pack.ids):
            pack = pack.subset(np.isin(pack.ids, ids))
        for name, values in (("weights", pack.variables), ("best", pack.best)):
            for i, variable in enumerate(values):
                variable.assign(arrays[f"{name}/{i}"])
        for name, slots in pack.optimizer.slots.items():
            for i, slot in enumerate(slots):
                slot.assign(arrays[f"slot/{name}/{i}"])
        pack.optimizer.iterations.assign(meta["iterations"])
        for i, variable in enumerate(_random_states(augmentations)):
            variable.assign(arrays[f"augmentation/{i}"])
        # The new trials' runs get the metrics the stopped ones had logged.
        self.histories.replay(meta["logged"])
        return pack, int(meta["epoch"])


def _random_states(augmentations) -> list:
    """The random-generator states of the members' augmentation layers (Keras ``SeedGenerator`` variables)."""
    if augmentations is None:
        return []
    return [v for layer in augmentations if layer is not None for v in layer.non_trainable_variables]


def _signature(stack, splits, settings: list) -> dict:
    """What a `fit_members` checkpoint must match to be resumed: the net, the data and the training's settings."""
    return {
        "loop": "fit_members",
        "variables": [list(v.shape) for v in stack.trainable_variables],
        "data": {name: digest(x, y) for name, (x, y) in splits.items()},
        "initial": digest(*(keras.ops.convert_to_numpy(v) for v in stack.trainable_variables)),
        "settings": settings,
    }


def _check_arguments(members: int, per_member: Mapping[str, Sequence | None], splits: Mapping, training: PackTraining) -> None:
    """Raises ValueError for `fit_members` arguments that do not fit together."""
    for name, values in per_member.items():
        if values is not None and len(values) != members:
            raise ValueError(f"fit_members needs one of {name} per member ({members}); received {len(values)}.")
    if "train" not in splits or "val" not in splits:
        raise ValueError(f"splits needs 'train' and 'val'; received {sorted(splits)}.")
    watched = {rule.monitor for rule in per_member["stopping"] if rule and training.score_every > 1} - {"loss", "accuracy"}
    unscored = sorted(monitor for monitor in watched if monitor.rsplit("_", 1)[0] not in training.every_epoch)
    if unscored:
        raise ValueError(f"Stopping watches {', '.join(unscored)}, which score_every={training.score_every} leaves unscored between epochs.")


def _traced(method):
    """``method`` of one pack as a `tf.function` whose traces TensorFlow counts apart from other packs'.

    TensorFlow keys its "calls triggered tf.function retracing" warning on a
    method's code, which every pack shares: each pack that members leave traces
    its own functions once, for its smaller variables, and that first trace read
    as a retrace of the last pack's. A `functools.partial` has no code of its own,
    so each pack's functions are counted by themselves.
    """
    return tf.function(functools.partial(method), autograph=False)


class _Pack:
    """The members still training: their stack, data and optimizer state, and the compiled epoch and scoring.

    Args:
        stack: The members.
        data: Per split, ``(x, y)`` of every member of the original pack.
        optimizer: Their optimizer (None: scoring only).
        batch_size: Examples per step.
        ids: Each member's index in the original pack.
        augmentations: Per member of the original pack, its augmentation layer or None; None for none at all.
    """

    def __init__(self, stack, data, optimizer: PerMemberOptimizer | None, batch_size: int, ids: np.ndarray, augmentations):
        self.stack, self.optimizer, self.batch_size, self.ids = stack, optimizer, batch_size, ids
        self.all_data, self.all_augmentations = data, augmentations
        self.augmentations = None if augmentations is None else [augmentations[i] for i in ids]
        index = tf.constant(ids)
        self.data = {name: (tf.gather(x, index), tf.gather(y, index)) for name, (x, y) in data.items()}
        self.variables = stack.trainable_variables
        self.best = [tf.Variable(tf.identity(v), trainable=False) for v in self.variables]
        self._score = _traced(self._score_all)
        self._epoch = _traced(self._epoch_all)
        self._keep = _traced(self._keep_best)

    def _epoch_all(self, order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x_train, y_train = self.data["train"]
        members, n = len(self.ids), int(x_train.shape[1])
        steps = math.ceil(n / self.batch_size)

        def step(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            xb, yb = tf.gather(x_train, index, batch_dims=1), tf.gather(y_train, index, batch_dims=1)
            if self.augmentations is not None:
                # Each member's own layer on its own batch: the transformations its lone net would draw.
                xb = tf.stack([xb[i] if layer is None else layer(xb[i], training=True) for i, layer in enumerate(self.augmentations)])
            with tf.GradientTape() as tape:
                # The step's dropout masks are those of the optimizer's step count, as a lone net's would be.
                losses, correct = _scores(self.stack.logits(xb, dropout_step=self.optimizer.iterations), yb)
                if self.stack.penalized:
                    losses = losses + self.stack.penalties()
                # Members share no weight, so each one's gradient is its own.
                total = tf.reduce_sum(losses)
            self.optimizer.apply(tape.gradient(total, self.variables))
            # Keras applies a variable's constraint right after its update.
            self.stack.apply_max_norm()
            return losses, correct

        def body(i, loss_sum, correct_sum):
            start = i * self.batch_size
            index = order[:, start : tf.minimum(start + self.batch_size, n)]
            losses, correct = step(index)
            size = tf.cast(tf.shape(index)[1], tf.float32)
            return i + 1, loss_sum + losses * size, correct_sum + correct * size

        zeros = tf.zeros([members])
        _, loss_sum, correct_sum = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), zeros, zeros))
        return loss_sum / n, correct_sum / n

    def _score_all(self, names: tuple[str, ...] | None) -> dict[str, tf.Tensor]:
        out = {}
        for name, (x, y) in self.data.items():
            if names is None or name in names:
                out[f"{name}_loss"], out[f"{name}_accuracy"] = _scores(self._logits(x), y)
        return out

    def _logits(self, x: tf.Tensor) -> tf.Tensor:
        """The members' logits on a whole split, in chunks where the stack asks for them (`score_examples`)."""
        budget = self.stack.score_examples
        n = int(x.shape[1])
        chunk = n if budget is None else max(1, budget // len(self.ids))
        if chunk >= n:
            return self.stack.logits(x)
        return tf.concat([self.stack.logits(x[:, start : start + chunk]) for start in range(0, n, chunk)], axis=1)

    def _keep_best(self, improved: tf.Tensor) -> None:
        for saved, variable in zip(self.best, self.variables):
            saved.assign(tf.where(along_members(improved, variable), variable, saved))

    def train_epoch(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One epoch in the given per-member batch order: each member's running loss and accuracy."""
        return tuple(t.numpy().astype(np.float64) for t in self._epoch(tf.constant(order)))

    def scores(self, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """``{split}_loss`` and ``{split}_accuracy`` of each member, from its current weights, for the named splits (None: all)."""
        return {key: value.numpy().astype(np.float64) for key, value in self._score(names).items()}

    def keep_best(self, improved: np.ndarray) -> None:
        """Keeps the current weights of the members that improved (Keras's ``best_weights``)."""
        if improved.any():
            self._keep(tf.constant(improved))

    def write_final(self, final: list[np.ndarray], members: np.ndarray, restore: np.ndarray) -> None:
        """Writes the final weights of the masked members into ``final`` (original order): best where restoring."""
        current = [keras.ops.convert_to_numpy(v) for v in self.variables]
        best = [keras.ops.convert_to_numpy(v) for v in self.best]
        for position in np.flatnonzero(members):
            source = best if restore[position] else current
            for target, values in zip(final, source):
                target[self.ids[position]] = values[position]

    def subset(self, keep: np.ndarray) -> _Pack:
        """The members marked in ``keep``, with their weights, best weights and optimizer state, as a new pack."""
        positions = np.flatnonzero(keep)
        stack = self.stack.subset(positions)
        optimizer = self.optimizer.subset(positions, stack.trainable_variables)
        pack = _Pack(stack, self.all_data, optimizer, self.batch_size, self.ids[positions], self.all_augmentations)
        for new, old in zip(pack.best, self.best):
            new.assign(tf.gather(old, positions))
        return pack


def seeded_stack(configs: Sequence[Mapping], input_dim: int, num_classes: int, *, activation: str = "relu",
                 initializer: str = "he_normal", **options) -> StackedMLP:
    """One member per trial configuration: the `models.build_mlp` net of its ``depth``, ``width`` and ``seed``.

    The configurations must share depth and width (a pack's do); ``options``
    go to `StackedMLP` (per-member keep probabilities, max-norm, ...).
    """
    return StackedMLP(
        input_dim,
        num_classes,
        depth=configs[0]["depth"],
        width=configs[0]["width"],
        activations=[activation] * len(configs),
        initializers=[initializer] * len(configs),
        seed=[config["seed"] for config in configs],
        **options,
    )


def member_splits(datasets: Sequence) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`fit_members`' ``"train"`` and ``"val"`` splits from one `ablations.engine.data.Dataset` per member."""
    return {
        name: (np.stack([getattr(d, f"x_{name}") for d in datasets]), np.stack([getattr(d, f"y_{name}") for d in datasets]))
        for name in ("train", "val")
    }


def heldout_half(splits: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``splits`` with the validation split halved: ``val`` keeps every other example from the first (the split that
    stopping and selection see) and ``heldout`` gets the rest, which scores the restored nets and nothing else."""
    x, y = splits["val"]
    return {**splits, "val": (x[:, 0::2], y[:, 0::2]), "heldout": (x[:, 1::2], y[:, 1::2])}


def pack_options(configs: Sequence[Mapping], **training) -> dict:
    """`fit_members` keywords from a pack's configurations: their `PackTraining` (epochs and batch size, which they
    share, and ``training``'s further options) and each member's shuffle seed."""
    return {"training": PackTraining(configs[0]["epochs"], configs[0]["batch_size"], **training), "seeds": [config["seed"] for config in configs]}


def scoring_model(stack: StackedMLP, member: int):
    """Member ``member`` as a `models.build_mlp` net on logits, compiled with its loss, for `score_split`."""
    model = stack.member_model(member)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _spread(values: np.ndarray, live: np.ndarray) -> np.ndarray:
    """A mask over the live positions of a pack, spread over all its positions (False elsewhere)."""
    spread = np.zeros(len(live), bool)
    spread[live] = values
    return spread


def _per_member(members: int, x: np.ndarray, y: np.ndarray, name: str, example: tuple[int, ...]) -> tuple[tf.Tensor, tf.Tensor]:
    """``(M, n, *example)`` float32 inputs and ``(M, n)`` int64 labels, shared arrays repeated per member."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int64)
    if y.ndim == 1:
        y = np.broadcast_to(y, (members, len(y)))
    if x.ndim == len(example) + 1:
        x = np.broadcast_to(x, (members, *x.shape))
    if x.shape[0] != members or y.shape != x.shape[:2] or x.shape[2:] != tuple(example):
        shape = ", ".join(map(str, example))
        raise ValueError(
            f"split {name!r}: x must be (n, {shape}) or ({members}, n, {shape}) and y (n,) or ({members}, n); "
            f"received x {x.shape} and y {y.shape}."
        )
    return tf.constant(x), tf.constant(y)


def _scores(logits: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per member ``(M,)``: the mean cross-entropy of its logits and its accuracy."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=y.dtype), y), tf.float32)
    return tf.reduce_mean(losses, axis=1), tf.reduce_mean(correct, axis=1)


def along_members(mask: tf.Tensor, variable: tf.Variable) -> tf.Tensor:
    """A ``(M,)`` mask shaped to broadcast over a stacked variable ``(M, ...)``."""
    return tf.reshape(mask, [-1] + [1] * (len(variable.shape) - 1))


class _Stoppers:
    """Each member's `MemberStopping`, decided as ``keras.callbacks.EarlyStopping`` decides (min_delta 0, no baseline),
    at its looks (`MemberStopping.every`), a tie counting as an improvement under `MemberStopping.rise_only`."""

    def __init__(self, stopping: Sequence[MemberStopping | None]):
        self.stopping = list(stopping)
        self.best = [None] * len(stopping)
        self.best_epoch = [0] * len(stopping)
        self.wait = [0] * len(stopping)
        self.has_best = np.zeros(len(stopping), bool)

    def update(self, epoch: int, logs: Mapping[str, np.ndarray], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """After ``epoch`` (from 0), for the training members ``ids`` (the order of ``logs``): which improved, which stop."""
        improved = np.zeros(len(ids), bool)
        stopped = np.zeros(len(ids), bool)
        for position, m in enumerate(ids):
            rule = self.stopping[m]
            if rule is None or (epoch + 1) % rule.every:
                continue
            current = float(logs[rule.monitor][position])
            self.has_best[m] = True
            self.wait[m] += 1
            best = self.best[m]
            if best is None or (current > best if rule.maximize else current < best) or (rule.rise_only and current == best):
                self.best[m], self.best_epoch[m], self.wait[m] = current, epoch, 0
                improved[position] = True
            elif self.wait[m] >= rule.patience and epoch > 0:
                stopped[position] = True
        return improved, stopped

    def restored_epochs(self) -> list[int | None]:
        return [self.best_epoch[m] + 1 if self.has_best[m] else None for m in range(len(self.stopping))]


class _Histories:
    """Per member, `fit_trial`'s history (steps 0..epochs_run) and its logger's calls.

    ``logged`` keeps each call as made, ``(member, step, row)``, for a
    checkpoint: replayed, it rebuilds the histories and logs the same rows.
    """

    def __init__(self, members: int, loggers: Sequence[TrialLogger] | None):
        self.histories: list[dict[str, list[float]]] = [{} for _ in range(members)]
        self.loggers = loggers
        self.logged: list[tuple[int, int, dict[str, float]]] = []

    def record(self, logs: Mapping[str, np.ndarray], ids: np.ndarray, step: int) -> None:
        """Appends each training member's logs (``logs`` in the order of ``ids``)."""
        for position, m in enumerate(ids):
            self._add(int(m), step, {key: float(values[position]) for key, values in logs.items()})

    def replay(self, logged: Sequence[tuple[int, int, dict[str, float]]]) -> None:
        """Records and logs again the calls of a checkpoint's ``logged``."""
        for m, step, row in logged:
            self._add(m, step, row)

    def _add(self, m: int, step: int, row: dict[str, float]) -> None:
        history = self.histories[m]
        for key, value in row.items():
            history.setdefault(key, [math.nan] * step).append(value)
        # A split left unscored this step reads NaN, as in `fit_trial`'s history.
        for values in history.values():
            values.extend([math.nan] * (step + 1 - len(values)))
        self.logged.append((m, step, row))
        if self.loggers is not None:
            self.loggers[m](row, step)

    def of(self, member: int) -> dict[str, list[float]]:
        return self.histories[member]


def _final(scores: Mapping[str, np.ndarray], m: int, last_loss: float, epochs_run: int, diverged: bool) -> dict[str, float]:
    """`fit_trial`'s final metrics of member ``m``, scored on the weights it ends with."""
    final = {"final_loss": float(last_loss), "epochs_run": float(epochs_run), "diverged": float(diverged)}
    for key in scores:
        if not key.endswith("_loss"):
            continue
        name = key.removesuffix("_loss")
        accuracy = float(scores[f"{name}_accuracy"][m])
        final[f"final_{name}_loss"] = float(scores[key][m])
        final["final_accuracy" if name == "train" else f"final_{name}_accuracy"] = accuracy
        final[f"final_{name}_error"] = 1.0 - accuracy
    return final
