"""The options of ``ablate study``, each defined once, as a field of `StudyOptions`.

A field's metadata (`Option`) holds everything about that option: its default,
its command-line flag and help, and its valid values. `study_options` checks
given values against them (nothing is written), and ``ablate``'s ``study``
command builds its arguments from the same fields
(`ablations.engine.cli`), so a new option is one new field.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any

from ablations.engine.spec import ConfigError
from ablations.engine.study.data import OBJECTIVES, study_dataset
from ablations.engine.study.space import SPACES, SearchSpace, load_space, parse_space

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
_OPTION = "option"


@dataclass(frozen=True)
class Option:
    """How one study option is given and checked.

    Args:
        default: Its value when not given, before the checks (``space`` is then
            a name or a file, ``pruner`` None for "the objective's default").
        help: Its line in ``ablate study --help``.
        flag: Its command-line flag; None for ``--<name>``, with dashes.
        parse: Turns the flag's text into the value (argparse's ``type``); None keeps the text.
        metavar: The flag's placeholder in the help.
        choices: The valid values of a named choice.
        low: The smallest valid integer.
        high: The largest valid integer.
        switch: The flag takes no value and turns the option off (``--quiet``).
    """

    default: Any
    help: str
    flag: str | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    switch: bool = False

    def flag_of(self, name: str) -> str:
        return self.flag or f"--{name.replace('_', '-')}"


def _option(default: Any, help: str, **how: Any) -> Any:
    return field(metadata={_OPTION: Option(default, help, **how)})


# In the order ``ablate study --help`` lists them.
@dataclass(frozen=True, kw_only=True)
class StudyOptions:
    """A validated ``ablate study`` command; `study_options` makes one."""

    trials: int = _option(20, "COMPLETE + PRUNED trials to reach (default: 20)", parse=int, metavar="N", low=1, high=100_000)
    timeout: float | None = _option(None, "start no trial after S seconds", parse=float, metavar="S")
    sampler: str = _option("tpe", f"{' | '.join(SAMPLERS)} (default: tpe)", choices=SAMPLERS)
    pruner: str = _option(None, f"{' | '.join(PRUNERS)} (default: median; none for --objective both)", choices=PRUNERS)
    objective: str = _option(
        "val_error", f"{' | '.join(OBJECTIVES)} (both: two objectives) (default: val_error)", choices=tuple(OBJECTIVES)
    )
    space: SearchSpace = _option("mlp", f"{' | '.join(SPACES)}, or a .yaml/.json file (default: mlp)")
    data: str = _option("digits", "a classification data set (default: digits)")
    cv: int = _option(0, "K-fold CV on the training data (default: 0, the validation split)", parse=int, metavar="K", low=2, high=100)
    storage: str | None = _option(None, "Optuna storage URL (default: journal file under mlruns/)")
    study_name: str = _option(None, "default: <data>-<space>-<objective>[-cv<K>]")
    workers: int = _option(1, "worker processes on this machine (default: 1)", parse=int, metavar="N", low=1, high=256)
    seed: int = _option(0, "sampler seed (default: 0)", parse=int, low=0, high=2**31 - 1)
    progress: bool = _option(True, "no line per trial", flag="--quiet", switch=True)

    @property
    def identity(self) -> dict[str, Any]:
        """What a study is: rerunning with other values here would mix incomparable trials."""
        return {"data": self.data, "objective": self.objective, "cv": self.cv, "space": self.space.as_data()}

    def to_json(self) -> str:
        values = asdict(self)
        values["space"] = {"name": self.space.name, "data": self.space.as_data()}
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> StudyOptions:
        values = json.loads(text)
        space = values.pop("space")
        return cls(space=parse_space(space["data"], space["name"]), **values)


def option_table() -> dict[str, Option]:
    """Every study option by name, in the order of the fields."""
    return {f.name: f.metadata[_OPTION] for f in fields(StudyOptions)}


def study_options(**given: Any) -> StudyOptions:
    """Validates a study's options (those not given take their `Option.default`); nothing is written.

    Args:
        **given: Values by option name, as `option_table` lists them. ``space`` is
            a named space (``mlp``, ``small``, ``tiny``) or a YAML/JSON file;
            ``pruner=None`` means median (none for ``objective="both"``);
            ``study_name=None`` means ``<data>-<space>-<objective>[-cv<K>]``, so
            a rerun resumes; ``storage=None`` is a journal file under mlruns/
            (see `ablations.engine.storage.open_storage`).

    Raises:
        ConfigError, UnknownNameError, DataError: with one line naming the valid choices.
        TypeError: a name that is no study option.
    """
    table = option_table()
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise TypeError(f"study_options() got unknown option(s) {', '.join(unknown)}; valid: {', '.join(table)}.")
    values = {name: given.get(name, option.default) for name, option in table.items()}
    for check in _CHECKS:
        check(values, table)
    return StudyOptions(**values)


def _check_choice(name: str, values: dict[str, Any], table: dict[str, Option]) -> None:
    choices = table[name].choices
    if values[name] not in choices:
        raise ConfigError(f"Unknown {name} {values[name]!r}. Valid choices: {', '.join(choices)}.")


def _check_range(name: str, values: dict[str, Any], table: dict[str, Option]) -> None:
    option, value = table[name], values[name]
    if isinstance(value, bool) or not isinstance(value, int) or not option.low <= value <= option.high:
        raise ConfigError(f"{option.flag_of(name)} must be an integer from {option.low} to {option.high}; received {value!r}.")


def _check_pruner(values: dict[str, Any], table: dict[str, Option]) -> None:
    if values["pruner"] is None:
        values["pruner"] = "none" if values["objective"] == "both" else "median"
    _check_choice("pruner", values, table)
    if values["objective"] == "both" and values["pruner"] != "none":
        raise ConfigError("Optuna cannot prune a two-objective study; with --objective both the valid --pruner is none.")


def _check_cv(values: dict[str, Any], table: dict[str, Option]) -> None:
    if values["cv"] != 0:  # 0 scores the validation split
        _check_range("cv", values, table)


def _check_timeout(values: dict[str, Any], table: dict[str, Option]) -> None:
    timeout = values["timeout"]
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        raise ConfigError(f"--timeout must be a finite number of seconds > 0; received {timeout!r}.")


def _load_space(values: dict[str, Any], table: dict[str, Option]) -> None:
    space = load_space(values["space"])
    if values["sampler"] == "grid":
        size = 1
        for choices in space.grid().values():
            size *= len(choices)
        values["trials"] = min(values["trials"], size)
    values["space"] = space


def _check_data(values: dict[str, Any], table: dict[str, Option]) -> None:
    data, cv = values["data"], values["cv"]
    dataset = study_dataset(data, values["space"].fixed["n_train"])
    examples = len(dataset.y_train) + len(dataset.y_val)
    if cv and cv > examples:
        raise ConfigError(f"--cv {cv} needs at least {cv} training examples; {data} has {examples}.")


def _name_study(values: dict[str, Any], table: dict[str, Option]) -> None:
    if values["study_name"] is None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(os.path.basename(values["space"].name))[0])
        values["study_name"] = f"{values['data']}-{stem}-{values['objective']}" + (f"-cv{values['cv']}" if values["cv"] else "")
    if not values["study_name"].strip():
        raise ConfigError("--study-name must not be empty.")


_CHECKS = (
    partial(_check_choice, "sampler"),
    partial(_check_choice, "objective"),
    _check_pruner,
    partial(_check_range, "trials"),
    partial(_check_range, "workers"),
    partial(_check_range, "seed"),
    _check_cv,
    _check_timeout,
    _load_space,
    _check_data,
    _name_study,
)
"""The checks in the order they run, which decides the one mistake a command with several is told
about: the choices first, then the numbers, then what reads a file or loads the data."""
