"""What an ablation is: its claim, its parameters, its profiles, its trials, its verdict.

Configuration is data. An ablation declares its parameters with defaults and
valid ranges; a profile (smoke, quick, full) overrides some of them, and a list
value makes that parameter a grid axis. The resolved configuration of one trial
is a flat dict of names and numbers, logged as MLflow params and used as Optuna
params alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

PROFILES = ("smoke", "quick", "full")
OUTCOMES = ("reproduced", "not reproduced", "inconclusive")
Outcome = Literal["reproduced", "not reproduced", "inconclusive"]


class ConfigError(ValueError):
    """A user-caused configuration problem; its message is one line naming the valid choices."""


@dataclass(frozen=True)
class Param:
    """One configurable setting of an ablation.

    Args:
        default: The value when neither profile nor user sets it; its type
            (bool, int, float or str) is the parameter's type.
        help: What the parameter controls.
        choices: The allowed values, for names.
        low: Smallest allowed value, for numbers.
        high: Largest allowed value, for numbers.
    """

    default: Any
    help: str = ""
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    def parse(self, name: str, text: str) -> Any:
        """Converts the text of ``--set name=text`` (one value) to the parameter's type."""
        kind = self.kind
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = lowered in ("true", "1", "yes")
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            else:
                value = text.strip()
        except ValueError:
            raise ConfigError(f"{name}={text!r} is not a valid {kind.__name__}.") from None
        return self.check(name, value)

    def check(self, name: str, value: Any) -> Any:
        """Validates one value, returning it in the parameter's type."""
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{name} must be a {kind.__name__}; received {value!r}.")
        if self.choices is not None and value not in self.choices:
            valid = ", ".join(map(str, self.choices))
            raise ConfigError(f"Unknown {name} {value!r}. Valid choices: {valid}.")
        # NaN compares False with every bound, so it would pass any range.
        if kind is float and math.isnan(value):
            raise ConfigError(f"{name}={value!r} is not a number; valid: {self._valid()}.")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ConfigError(f"{name}={value!r} is out of range; valid: {self._valid()}.")
        if kind is float and math.isinf(value) and (self.low is not None or self.high is not None):
            raise ConfigError(f"{name}={value!r} is out of range; valid: {self._valid()}.")
        return value

    def _valid(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low} to {self.high}"
        if self.low is not None:
            return f"finite numbers from {self.low}"
        if self.high is not None:
            return f"finite numbers up to {self.high}"
        return f"any {self.kind.__name__}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of an ablation, computed from its logged metrics.

    Args:
        outcome: "reproduced", "not reproduced" or "inconclusive".
        summary: One or two sentences: what held, where, and what did not.
        effect_name: What ``effect`` measures.
        effect: The headline effect size (mean over seeds).
        spread: Its standard deviation over seeds.
        table: Rows of evidence (one per condition) for the report.
    """

    outcome: Outcome
    summary: str
    effect_name: str
    effect: float
    spread: float
    table: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}; received {self.outcome!r}.")


TrialLogger = Callable[[dict[str, float], int], None]
"""Logs one step's metrics of one trial: ``log(metrics, step)``."""

ArtifactLogger = Callable[[str, str | None], None]
"""Stores a local file with one trial's run: ``log_artifact(local_path, artifact_dir)``."""


@dataclass
class TrialContext:
    """What a pack of trials gets from the runner besides its configurations.

    Args:
        loggers: One per configuration, in the same order: per-epoch metrics.
        profile: The profile being run.
        artifact_loggers: One per configuration: files (a trained model, say)
            kept with the trial's run, for figures drawn later from MLflow.
    """

    loggers: list[TrialLogger]
    profile: str
    artifact_loggers: list[ArtifactLogger] = field(default_factory=list)


RunFn = Callable[[list[dict[str, Any]], TrialContext], list[dict[str, float]]]
VerdictFn = Callable[[pd.DataFrame], Verdict]
FiguresFn = Callable[[pd.DataFrame, Any], dict[str, Any]]


@dataclass(frozen=True)
class Ablation:
    """One claim of the lecture, as an experiment.

    Args:
        name: Its command-line name.
        claim: The lecture's claim, in one or two sentences.
        params: Every setting a trial reads, with defaults and valid ranges.
        profiles: Per profile, values that override the defaults. A list value
            makes that parameter a grid axis; ``seeds`` is the number of seeds.
        run: Runs a pack of trial configurations and returns one dict of final
            metrics per configuration.
        verdict: Computes the verdict from the trials' logged metrics.
        figures: Draws the figures from the trials' logged metrics; gets the
            MLflow client for per-epoch histories.
        pack_key: Trials whose configurations share a key are run together in
            one call of ``run`` (stacked training); None runs them one by one.
        objective: The final metric each trial reports to Optuna (minimized).
        test: The lecture's last step: given the configuration selected on
            validation (lowest objective) and the study's `TestSplitGuard`,
            trains it on the training data and scores the test split once,
            inside ``guard.evaluate``. None when the claim needs no test score.
        select_within: Parameters whose values are separate problems (tasks
            with their own data and error measure): a configuration is selected
            and tested once per value, each with its own guard, its test
            metrics prefixed by the value.
    """

    name: str
    claim: str
    params: Mapping[str, Param]
    profiles: Mapping[str, Mapping[str, Any]]
    run: RunFn
    verdict: VerdictFn
    figures: FiguresFn
    pack_key: Callable[[dict[str, Any]], Hashable] | None = None
    objective: str = "val_loss"
    test: Callable[[dict[str, Any], Any], dict[str, float]] | None = None
    select_within: tuple[str, ...] = ()

    def resolve(
        self,
        profile: str = "quick",
        overrides: Mapping[str, str] | None = None,
        seeds: int | None = None,
    ) -> ResolvedConfig:
        """Defaults, then the profile, then ``--set`` overrides; everything validated.

        Args:
            profile: One of `PROFILES`.
            overrides: ``--set`` values as text; "a,b,c" makes a grid axis.
            seeds: Number of seeds; overrides the profile's.

        Raises:
            ConfigError: An unknown profile, key or value.
        """
        if profile not in PROFILES:
            raise ConfigError(f"Unknown profile {profile!r}. Valid choices: {', '.join(PROFILES)}.")
        values: dict[str, Any] = {name: param.default for name, param in self.params.items()}
        profile_values = dict(self.profiles.get(profile, {}))
        n_seeds = int(profile_values.pop("seeds", 1))
        values.update(profile_values)
        for key, text in (overrides or {}).items():
            if key == "seeds":
                n_seeds = _parse_seeds(text)
                continue
            if key not in self.params:
                valid = ", ".join(sorted([*self.params, "seeds"]))
                raise ConfigError(f"Unknown key {key!r} for {self.name}. Valid keys: {valid}.")
            parts = [part.strip() for part in str(text).split(",")]
            if not any(parts):
                raise ConfigError(f"{key} needs a value; received {text!r}.")
            if not all(parts):
                given = ",".join(part for part in parts if part)
                raise ConfigError(f"{key}={text} has an empty item; a grid axis is a comma list without gaps, e.g. {key}={given}.")
            parsed = [self.params[key].parse(key, part) for part in parts]
            values[key] = parsed if len(parsed) > 1 else parsed[0]
        if seeds is not None:
            n_seeds = _parse_seeds(str(seeds))
        fixed, grid = {}, {}
        for key, value in values.items():
            if isinstance(value, (list, tuple)):
                grid[key] = [self.params[key].check(key, item) for item in value]
            else:
                fixed[key] = self.params[key].check(key, value)
        grid["seed"] = list(range(n_seeds))
        return ResolvedConfig(profile=profile, fixed=fixed, grid=grid)


@dataclass(frozen=True)
class ResolvedConfig:
    """A validated configuration: fixed values and grid axes (seed included)."""

    profile: str
    fixed: dict[str, Any]
    grid: dict[str, list]

    @property
    def axes(self) -> list[str]:
        """Grid axes that define a condition (every axis but the seed)."""
        return [axis for axis in self.grid if axis != "seed"]

    def trials(self) -> list[dict[str, Any]]:
        """Every trial configuration of the grid, in grid order."""
        names = list(self.grid)
        return [
            {**self.fixed, **dict(zip(names, combo))}
            for combo in itertools.product(*(self.grid[name] for name in names))
        ]


def _parse_seeds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise ConfigError(f"seeds must be an integer from 1 to 100; received {text!r}.")
    return value


def pack_all_but(*names: str) -> Callable[[dict[str, Any]], Hashable]:
    """A ``pack_key`` that packs trials whose configurations agree on everything but ``names``.

    Example: ``pack_key=pack_all_but("activation")`` trains every activation of
    one depth, initializer and seed together.
    """
    return lambda config: tuple(sorted((key, value) for key, value in config.items() if key not in names))


def one_by_one(trial: Callable[[dict[str, Any], TrialLogger], dict[str, float]]) -> RunFn:
    """A ``run`` that trains a pack's trials one after another: ``trial(config, log)`` returns one's final metrics.

    Packing such trials still pays (``pack_key``): the runner clears the Keras
    session (about 0.7 s) once per pack instead of once per trial.
    """

    def run(configs: list[dict[str, Any]], context: TrialContext) -> list[dict[str, float]]:
        return [trial(config, log) for config, log in zip(configs, context.loggers)]

    run.__doc__ = trial.__doc__
    return run


def combine_outcomes(outcomes: list[str]) -> Outcome:
    """The overall outcome of per-condition outcomes, the suite's policy.

    Reproduced where any condition reproduces the claim (the summary names the
    conditions where it does not); not reproduced where none does; else inconclusive.
    """
    if "reproduced" in outcomes:
        return "reproduced"
    if outcomes and all(outcome == "not reproduced" for outcome in outcomes):
        return "not reproduced"
    return "inconclusive"
