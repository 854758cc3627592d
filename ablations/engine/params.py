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

and a trial hands them on as `mlp_options(config)` to `models.build_mlp` and
`fit_options(config)` to `ablations.engine.train.fit_trial`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ablations.engine.spec import Param

FLAT_DATA = ("mnist1d", "digits", "mnist5k")
"""Data sets with flat features (`load_dataset` names), in the order the choices list them."""


def data(default: str, *, choices: tuple[str, ...] | None = None, help: str = "data set (flat features)") -> Param:
    """Which data set: ``default`` first, then the other `FLAT_DATA` sets, unless ``choices`` says otherwise."""
    return Param(default, help, choices=choices or (default, *(name for name in FLAT_DATA if name != default)))


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


def fit_options(config: Mapping[str, Any], *, epochs: int | None = None) -> dict[str, Any]:
    """`fit_trial` keywords from a trial's configuration: epochs (its own unless given), batch size, learning rate, seed."""
    return {
        "epochs": config["epochs"] if epochs is None else epochs,
        "batch_size": config["batch_size"],
        "learning_rate": config["learning_rate"],
        "seed": config["seed"],
    }
