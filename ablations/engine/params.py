"""Parameters several ablations share, and the keyword arguments a trial makes of them.

Each factory returns a `spec.Param` with the suite's usual help text and valid
range; an ablation overrides what differs (a default, a bound, a sharper help):

>>> PARAMS = {
...     "data": params.data("mnist1d"),
...     "n_train": params.n_train(1000),
...     "depth": params.depth(2),
...     "width": params.width(256),
...     "epochs": params.epochs(100),
...     "batch_size": params.batch_size(100),
...     "learning_rate": params.learning_rate(1e-3),
... }

and a trial hands them on as `mlp_options(config)` to `models.build_mlp` (packed
trials: `ablations.engine.train.members.pack_options`). A full profile that
would rather train on a TFDS set names it with `PreferTfds`, which falls back to
a bundled set on machines that do not hold it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ablations.engine.data.core import TFDS_PREFIX
from ablations.engine.data.registry import plugin_dataset_names
from ablations.engine.data.tfds import tfds_data_dir, tfds_prepared
from ablations.engine.spec import Param

FLAT_DATA = ("mnist1d", "digits", "mnist5k")
"""Data sets with flat features (`load_dataset` names), in the order the choices list them."""


def data(default: str, *, choices: tuple[str, ...] | None = None, help: str = "data set (flat features)") -> Param:
    """Which data set: ``default`` first, then the other `FLAT_DATA` sets, unless ``choices`` says otherwise.

    Any TFDS set is valid too, as ``tfds:<name>[/<config>]``: whether it exists
    and is prepared is answered when ``ablate run`` loads it, before any trial.
    So is a set an installed package registers (`plugin_dataset_names`).
    """
    choices = choices or (default, *(name for name in FLAT_DATA if name != default))
    return Param(default, help, choices=choices, open_prefix=TFDS_PREFIX, more_choices=plugin_dataset_names)


@dataclass(frozen=True)
class PreferTfds:
    """A profile's data set: a TFDS set where it is prepared (or ``--download`` fetches it), else a bundled one.

    A `spec.ProfileChoice`: decided when the profile is resolved, from what the
    TFDS data directory holds then (read from disk, without TensorFlow), so a
    full profile runs on every machine; the fallback is announced in one line:

    >>> PROFILES = {"full": {"data": params.PreferTfds("tfds:mnist", "mnist5k"), "seeds": 5}}

    It may also be an item of a grid list: ``["mnist1d", PreferTfds(...)]``.

    Args:
        tfds_name: The preferred set, "tfds:<name>[/<config>]".
        fallback: The bundled set used when it is not prepared, e.g. "mnist5k".
    """

    tfds_name: str
    fallback: str

    def __post_init__(self):
        if not self.tfds_name.startswith(TFDS_PREFIX) or not self.tfds_name[len(TFDS_PREFIX) :]:
            raise ValueError(f"PreferTfds needs a '{TFDS_PREFIX}<name>' set; received {self.tfds_name!r}.")

    def decide(self, *, download: bool) -> tuple[str, str | None]:
        """The TFDS set when it is prepared or will be downloaded; else the fallback and why.

        Args:
            download: Missing TFDS data will be fetched (``ablate run --download``).
        """
        if download or tfds_prepared(self.tfds_name[len(TFDS_PREFIX) :]):
            return self.tfds_name, None
        where = str(tfds_data_dir())
        home = os.path.expanduser("~")
        if where == home or where.startswith(home + os.sep):
            where = "~" + where[len(home) :]
        return self.fallback, (
            f"{self.tfds_name} is not prepared in {where}; using the bundled {self.fallback} "
            "(rerun with --download to fetch it)."
        )


def n_train(default: int, *, low: int = 50, help: str = "training examples") -> Param:
    """How many training examples a trial draws."""
    return Param(default, help, low=low, high=1_000_000)


def depth(default: int, *, high: int = 50, help: str = "hidden layers") -> Param:
    """Hidden layers of an MLP."""
    return Param(default, help, low=1, high=high)


def width(default: int, *, high: int = 8192) -> Param:
    """Units per hidden layer of an MLP."""
    return Param(default, "units per hidden layer", low=1, high=high)


def epochs(default: int, *, high: int = 10_000, help: str = "training epochs") -> Param:
    """Epochs (or full-batch steps) of training."""
    return Param(default, help, low=1, high=high)


def batch_size(default: int) -> Param:
    """Examples per optimizer step."""
    return Param(default, "examples per step", low=1, high=65536)


def learning_rate(default: float, *, high: float = 1.0, help: str = "Adam learning rate") -> Param:
    """The optimizer's learning rate."""
    return Param(default, help, low=1e-6, high=high)


def mlp_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """`models.build_mlp` keywords from a trial's configuration: its depth, width and seed."""
    return {"depth": config["depth"], "width": config["width"], "seed": config["seed"]}
