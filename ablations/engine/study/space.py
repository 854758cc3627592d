"""The search space of ``ablate study``, as data: a named space or a YAML/JSON file.

A space maps each searchable key to a list of choices, a range, or one fixed
value; keys it leaves out keep their defaults. Everything is validated (keys,
types, bounds, choices) before a study opens its storage.

    activation: [relu, tanh, elu]                    # choices
    depth: {low: 1, high: 4}                         # integer range
    width: {low: 16, high: 256, log: true}
    learning_rate: {low: 1.0e-4, high: 0.1, log: true}
    keep_prob: {low: 0.5, high: 1.0, step: 0.1}      # float range on a grid
    l1: 0.0                                          # fixed
    epochs: 10                                       # a setting, fixed per study

`--sampler grid` needs every searched key to be a list of choices or a range
with a step (integer ranges have step 1 by default).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ablations.engine.spec import ConfigError, Param
from models.names import ACTIVATIONS, INITIALIZERS

AUGMENTATIONS = ("none", "light", "strong")

SEARCH_KEYS: dict[str, Param] = {
    "activation": Param("relu", "hidden activation", choices=ACTIVATIONS),
    "depth": Param(2, "hidden layers", low=0, high=64),
    "width": Param(64, "units per hidden layer", low=1, high=4096),
    "initializer": Param("glorot_uniform", "kernel initializer", choices=INITIALIZERS),
    "l1": Param(0.0, "L1 penalty on the kernels", low=0.0, high=10.0),
    "l2": Param(0.0, "L2 penalty on the kernels", low=0.0, high=10.0),
    "keep_prob": Param(1.0, "inverted-dropout keep probability after each hidden layer", low=0.05, high=1.0),
    "augmentation": Param("none", "training-time augmentation strength", choices=AUGMENTATIONS),
    "learning_rate": Param(1e-3, "Adam learning rate", low=1e-6, high=1.0),
    "batch_size": Param(64, "examples per step", low=1, high=65536),
}
"""What a study may search, with defaults and valid bounds."""

SETTING_KEYS: dict[str, Param] = {
    "epochs": Param(10, "training epochs per trial (the pruning steps)", low=1, high=1000),
    "n_train": Param(0, "training examples kept (0: all)", low=0, high=10_000_000),
}
"""Fixed per study: a space may set them, never search them."""

RANGE_FIELDS = ("low", "high", "step", "log")

SPACES: dict[str, dict[str, Any]] = {
    "mlp": {
        "activation": ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "selu", "gelu", "swish"],
        "depth": {"low": 1, "high": 6},
        "width": {"low": 16, "high": 512, "log": True},
        "initializer": ["glorot_uniform", "he_normal", "lecun_normal", "standard"],
        "l1": {"low": 1e-7, "high": 1e-2, "log": True},
        "l2": {"low": 1e-7, "high": 1e-1, "log": True},
        "keep_prob": {"low": 0.5, "high": 1.0, "step": 0.05},
        "augmentation": ["none", "light", "strong"],
        "learning_rate": {"low": 1e-4, "high": 3e-2, "log": True},
        "batch_size": [32, 64, 128, 256],
        "epochs": 20,
    },
    "small": {
        "activation": ["relu", "tanh", "sigmoid", "elu"],
        "depth": {"low": 1, "high": 3},
        "width": [16, 32, 64],
        "initializer": ["glorot_uniform", "he_normal"],
        "l1": [0.0, 1e-4],
        "l2": [0.0, 1e-4, 1e-3],
        "keep_prob": [0.8, 1.0],
        "augmentation": ["none", "light"],
        "learning_rate": [1e-3, 3e-3, 1e-2, 3e-2],
        "batch_size": [32, 64],
        "epochs": 8,
    },
    "tiny": {
        "activation": ["relu", "tanh"],
        "depth": {"low": 1, "high": 2},
        "width": [8, 16],
        "learning_rate": {"low": 1e-3, "high": 5e-2, "log": True},
        "batch_size": 64,
        "epochs": 2,
        "n_train": 300,
    },
}
"""Named spaces: ``mlp`` (the default: all ten keys), ``small`` (the benchmark's), ``tiny`` (tests)."""


@dataclass(frozen=True)
class Dimension:
    """One searched key: a list of choices or a numeric range."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        return SEARCH_KEYS[self.name].kind is int

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list:
        if self.choices is not None:
            return list(self.choices)
        if self.is_int and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ConfigError(
                f"--sampler grid needs choices or a step for {self.name}; received a continuous range "
                f"{self.low} to {self.high}. Valid: a list of values or {{low, high, step}}."
            )
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def as_data(self) -> Any:
        if self.choices is not None:
            return list(self.choices)
        spec: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            spec["step"] = self.step
        if self.log:
            spec["log"] = True
        return spec


@dataclass(frozen=True)
class SearchSpace:
    """A validated space: searched dimensions and fixed values (every key has one or the other).

    Args:
        name: The named space or the file it came from.
        dimensions: The searched keys.
        fixed: The value of every key that is not searched, settings included.
    """

    name: str
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]

    def suggest(self, trial) -> dict[str, Any]:
        """One trial's configuration: the searched values from ``trial`` plus the fixed ones."""
        config = dict(self.fixed)
        config.update({d.name: d.suggest(trial) for d in self.dimensions})
        return {key: config[key] for key in (*SEARCH_KEYS, *SETTING_KEYS)}

    def grid(self) -> dict[str, list]:
        """The grid for `optuna.samplers.GridSampler`; ConfigError if a range has no step."""
        return {d.name: d.grid_values() for d in self.dimensions}

    def as_data(self) -> dict[str, Any]:
        """The space as the plain dict a file would hold (round-trips through `parse_space`)."""
        return {**self.fixed, **{d.name: d.as_data() for d in self.dimensions}}


def load_space(name_or_path: str) -> SearchSpace:
    """A named space (`SPACES`) or a ``.yaml`` / ``.yml`` / ``.json`` file, validated.

    Raises:
        ConfigError: an unknown name, an unreadable file, or an invalid space.
    """
    if name_or_path in SPACES:
        return parse_space(SPACES[name_or_path], name_or_path)
    path = Path(name_or_path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"Unknown space {name_or_path!r}. Valid choices: {', '.join(SPACES)}, or a .yaml/.yml/.json file."
        )
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except OSError as error:
        raise ConfigError(f"Cannot read space file {name_or_path!r}: {error.strerror or error}.") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0]
        raise ConfigError(f"Space file {name_or_path!r} is not valid {path.suffix[1:].upper()}: {first}.") from None
    return parse_space(data, str(path))


def parse_space(data: object, name: str = "space") -> SearchSpace:
    """Validates a space given as data (see the module docstring for the forms)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"A space must map keys to choices, ranges or values; {name} holds {type(data).__name__}.")
    valid_keys = (*SEARCH_KEYS, *SETTING_KEYS)
    fixed = {key: param.default for key, param in {**SEARCH_KEYS, **SETTING_KEYS}.items()}
    dimensions = []
    for key, value in data.items():
        if key not in valid_keys:
            raise ConfigError(f"Unknown space key {key!r}. Valid keys: {', '.join(valid_keys)}.")
        if key in SETTING_KEYS:
            if isinstance(value, (list, dict)):
                raise ConfigError(f"{key} is a setting of the whole study and cannot be searched; give one value.")
            fixed[key] = _check(SETTING_KEYS[key], key, value)
        elif isinstance(value, list):
            dimensions.append(_choices(key, value))
        elif isinstance(value, Mapping):
            dimensions.append(_range(key, value))
        else:
            fixed[key] = _check(SEARCH_KEYS[key], key, value)
    for dimension in dimensions:
        fixed.pop(dimension.name)
    return SearchSpace(name=name, dimensions=tuple(dimensions), fixed=fixed)


def _check(param: Param, key: str, value: Any) -> Any:
    # YAML 1.1 reads 1e-4 (no dot) as a string; accept any text a number parses from.
    if isinstance(value, str) and param.kind in (int, float):
        return param.parse(key, value)
    return param.check(key, value)


def _choices(key: str, values: list) -> Dimension:
    if not values:
        raise ConfigError(f"{key} lists no choices; give at least one value.")
    checked = tuple(_check(SEARCH_KEYS[key], key, value) for value in values)
    if len(set(checked)) != len(checked):
        raise ConfigError(f"{key} lists a choice twice: {list(values)}.")
    return Dimension(key, choices=checked)


def _range(key: str, spec: Mapping) -> Dimension:
    param = SEARCH_KEYS[key]
    if param.kind not in (int, float):
        raise ConfigError(f"{key} takes a list of choices, not a range. Valid choices: {', '.join(param.choices)}.")
    unknown = sorted(set(spec) - set(RANGE_FIELDS))
    if unknown or "low" not in spec or "high" not in spec:
        raise ConfigError(
            f"The range of {key} needs low and high; received fields {', '.join(map(str, spec))}. "
            f"Valid fields: {', '.join(RANGE_FIELDS)}."
        )
    low, high = _check(param, key, spec["low"]), _check(param, key, spec["high"])
    if low >= high:
        raise ConfigError(f"The range of {key} needs low < high; received low={low}, high={high}.")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"log of {key} must be true or false; received {log!r}.")
    step = spec.get("step")
    if step is not None:
        step = float(step) if isinstance(step, str) else step
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= high - low:
            raise ConfigError(f"step of {key} must be a number in (0, high - low]; received {spec['step']!r}.")
        if param.kind is int and step != int(step):
            raise ConfigError(f"step of {key} must be a whole number; received {step!r}.")
    if log and (low <= 0 or step is not None):
        raise ConfigError(f"A log range of {key} needs low > 0 and no step; received low={low}, step={step}.")
    return Dimension(key, low=low, high=high, step=step, log=log)
