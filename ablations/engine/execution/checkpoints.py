"""Checkpoints of a pack in training, so that a stopped or killed pack resumes mid-training.

A preempted machine (SIGTERM, then SIGKILL a few seconds later) loses the
pack it was training; with packs of dozens of members over a hundred epochs
that is most of a GPU's hour. So, while a pack trains, each training loop
(`fit_members`, `fit_stack`) writes its whole state every `every_s` seconds:
weights, optimizer slots and step, each member's shuffle generator, its
early-stopping state and the metrics logged so far. A rerun that claims the
same pack (the same trial configurations, in the same order, on the same
grid) continues from the newest checkpoint; the finished numbers are those of
an uninterrupted run, bit for bit on a CPU.

Keras's ``BackupAndRestore`` does this for ``Model.fit``: it saves the model
and optimizer at epoch ends and skips the epochs done. The stacked loops have
no ``Model.fit`` and hold state it does not know (per-member NumPy shuffles,
early-stopping counters, members that left the pack, the metrics to replay to
the new trials' runs), so they write their own, at the same points (epoch
ends), in one ``.npz`` file replaced atomically: a kill while writing leaves
the previous checkpoint whole.

Layout: ``<results>/checkpoints/<grid>/<pack>/segment-<k>.npz``, one file per
training loop the pack's `Ablation.run` calls, in call order (``k`` from 0).
The runner removes the pack's folder once its trials are told, and the
grid's once it is concluded. With many
machines, point ``ABLATE_RESULTS_DIR`` at shared storage so any of them can
resume any pack.

A checkpoint that cannot be read, or that was written for other data or
another net (its signature differs), is discarded with one line, and the loop
starts from epoch 0.

Imports nothing heavy (NumPy, the stop signals' blocks and the spec's error): the command line reads
the interval before TensorFlow loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ablations.engine.execution.stopping import shielded
from ablations.engine.spec import ConfigError

EVERY_ENV = "ABLATE_CHECKPOINT_EVERY"
"""Seconds between a pack's checkpoints (``ablate run --checkpoint-every``); 0 after every epoch, ``off`` never."""
DEFAULT_EVERY_S = 60.0
"""Default seconds between checkpoints: a preemption loses at most about a minute of a pack."""
_META = "__meta__"


def checkpoint_every() -> float | None:
    """Seconds between checkpoints from `EVERY_ENV` (default `DEFAULT_EVERY_S`); None when checkpoints are off."""
    value = os.environ.get(EVERY_ENV, "").strip().lower()
    if value == "off":
        return None
    try:
        seconds = float(value) if value else DEFAULT_EVERY_S
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{EVERY_ENV} must be a number of seconds >= 0, or off; received {value!r}.")
    return seconds


def pack_folder(root: Path, grid: str, configs: list[Mapping]) -> Path:
    """The folder of a pack's checkpoints: one per grid and ordered list of trial configurations."""
    text = json.dumps([dict(config) for config in configs], sort_keys=True, default=str)
    return root / "checkpoints" / grid / hashlib.sha256(text.encode()).hexdigest()[:16]


def remove_grid(root: Path, grid: str) -> None:
    """Deletes what is left of a concluded grid's checkpoints (packs that a rerun packed otherwise, say)."""
    shutil.rmtree(root / "checkpoints" / grid, ignore_errors=True)


def digest(*arrays: object) -> str:
    """A short digest of arrays' shapes, dtypes and bytes: part of a checkpoint's signature."""
    hasher = hashlib.blake2b(digest_size=8)
    for array in arrays:
        array = np.ascontiguousarray(array)
        hasher.update(f"{array.shape}{array.dtype}".encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


@dataclass
class PackCheckpoints:
    """The checkpoints of one pack while its `Ablation.run` trains it.

    Args:
        folder: Where its segments' files live.
        every_s: Seconds between checkpoints of a segment; 0 after every epoch.
        say: Prints a one-line message (resumed, discarded).
    """

    folder: Path
    every_s: float
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    segments: int = 0
    saves: int = 0
    resumed: list[tuple[int, int]] = field(default_factory=list)
    """Per segment that resumed: the epoch it resumed at and its epochs in all."""

    def next_segment(self, signature: Callable[[], Mapping]) -> Segment:
        segment = Segment(self, self.folder / f"segment-{self.segments}.npz", signature)
        self.segments += 1
        return segment

    def remove(self) -> None:
        """Deletes the pack's checkpoints (its trials are told: nothing is left to resume)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in (self.folder.parent, self.folder.parent.parent):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break


class Segment:
    """One training loop's checkpoint: `load` what a killed run left, `due`/`save` as it trains.

    Args:
        pack: The pack's checkpoints.
        path: The segment's file.
        signature: Makes what the loop trains (sizes, data digest, ...): a
            checkpoint with another signature is not this loop's. Called
            once, by `load` before the loop trains (it hashes the data and
            the initial weights).
    """

    def __init__(self, pack: PackCheckpoints, path: Path, signature: Callable[[], Mapping]):
        self.pack, self.path, self._make_signature = pack, path, signature
        self._signature: dict | None = None
        self.saved_at = time.monotonic()

    @property
    def signature(self) -> dict:
        if self._signature is None:  # as JSON reads it back: tuples as lists, other types as text
            self._signature = json.loads(json.dumps(dict(self._make_signature()), default=str))
        return self._signature

    def load(self) -> tuple[dict, dict[str, np.ndarray]] | None:
        """The saved metadata and arrays, or None (no checkpoint; or one discarded with a line, and deleted).

        Called before the loop trains: the signature is made here, from the untrained net.
        """
        signature = self.signature
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
            meta = json.loads(str(arrays.pop(_META)))
            if meta.get("signature") != signature:
                raise ValueError("written for other data or another net")
        except Exception as error:  # any unreadable file: truncated, corrupt, foreign
            reason = " ".join(f"{type(error).__name__}: {error}".split())  # one line, whatever the error says
            self.pack.say(f"checkpoint {self.path} discarded ({reason}); its pack restarts from epoch 0")
            self.path.unlink(missing_ok=True)
            return None
        self.pack.resumed.append((int(meta["epoch"]), int(meta["epochs"])))
        self.pack.say(f"resuming a pack from its checkpoint at epoch {meta['epoch']} of {meta['epochs']} ({self.path.parent.name})")
        return meta, arrays

    def due(self) -> bool:
        """Whether `every_s` seconds have passed since the last save (or the loop's start)."""
        return time.monotonic() - self.saved_at >= self.pack.every_s

    def save(self, epoch: int, epochs: int, meta: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Writes the state after ``epoch`` of ``epochs``, atomically (a kill mid-write keeps the previous file).

        A stop signal waits for the write (`stopping.shielded`): the rerun
        resumes from this epoch, and no half-written file is left behind.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({**meta, "signature": self.signature, "epoch": epoch, "epochs": epochs})
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        with shielded():
            with open(partial, "wb") as file:
                np.savez(file, **arrays, **{_META: np.array(header)})
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, self.path)
            self.saved_at = time.monotonic()
            self.pack.saves += 1


_current: ContextVar[PackCheckpoints | None] = ContextVar("pack_checkpoints", default=None)


@contextmanager
def checkpointing(pack: PackCheckpoints | None) -> Iterator[PackCheckpoints | None]:
    """Within the block, the training loops checkpoint into ``pack`` (None: they do not)."""
    token = _current.set(pack)
    try:
        yield pack
    finally:
        _current.reset(token)


def next_segment(signature: Callable[[], Mapping]) -> Segment | None:
    """The calling training loop's segment of the current pack, or None outside `checkpointing`.

    Args:
        signature: Makes what a checkpoint of this loop must match (see `Segment`).
    """
    pack = _current.get()
    return None if pack is None else pack.next_segment(signature)
