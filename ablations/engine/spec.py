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
import sys
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from ablations.engine.lineage import serving
from ablations.engine.verdict import Verdict

PROFILES = ("smoke", "quick", "full")


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
        open_prefix: For names: any value that starts with this prefix and
            goes on is allowed too, besides ``choices`` (``"tfds:"`` admits
            every TFDS set, whose names no list holds). Checked as text only;
            whether such a value exists is for the code that uses it to say.
        more_choices: For names: allowed values known only when checked
            (the data sets installed packages register), besides ``choices``.
    """

    default: Any
    help: str = ""
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    open_prefix: str | None = None
    more_choices: Callable[[], tuple] | None = None

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
        if self.choices is not None and value not in self.all_choices() and not self._opens(name, value):
            valid = ", ".join([*map(str, self.all_choices()), *([f"{self.open_prefix}<name>"] if self.open_prefix else [])])
            raise ConfigError(f"Unknown {name} {value!r}. Valid choices: {valid}.")
        # NaN compares False with every bound, so it would pass any range.
        if kind is float and math.isnan(value):
            raise ConfigError(f"{name}={value!r} is not a number; valid: {self._valid()}.")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ConfigError(f"{name}={value!r} is out of range; valid: {self._valid()}.")
        if kind is float and math.isinf(value) and (self.low is not None or self.high is not None):
            raise ConfigError(f"{name}={value!r} is out of range; valid: {self._valid()}.")
        return value

    def all_choices(self) -> tuple:
        """``choices``, then `more_choices` not among them."""
        more = self.more_choices() if self.more_choices else ()
        return (*self.choices, *(value for value in more if value not in self.choices))

    def _opens(self, name: str, value: Any) -> bool:
        """Whether ``value`` is admitted by `open_prefix`; the prefix alone is an error of its own."""
        if not self.open_prefix or not isinstance(value, str) or not value.startswith(self.open_prefix):
            return False
        if not value[len(self.open_prefix) :].strip():
            raise ConfigError(f"{name}={value!r} needs a name after {self.open_prefix!r}: {name}={self.open_prefix}<name>.")
        return True

    def _valid(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low} to {self.high}"
        if self.low is not None:
            return f"finite numbers from {self.low}"
        if self.high is not None:
            return f"finite numbers up to {self.high}"
        return f"any {self.kind.__name__}"


@runtime_checkable
class ProfileChoice(Protocol):
    """A profile value decided when the profile is resolved, not when its module is imported.

    A full profile may prefer a data set that only some machines hold
    (`ablations.engine.params.PreferTfds`); `Ablation.resolve` asks it for its
    value then, alone or as an item of a grid list, and prints its note once
    on stderr.
    """

    def decide(self, *, download: bool) -> tuple[Any, str | None]:
        """The value, and a one-line note for the user when it is a fallback (None otherwise).

        Args:
            download: Whether missing data will be fetched (``ablate run --download``).
        """
        ...


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
class Reference:
    """The literature measurement a claim rests on, cited as printed, beside this suite's regime.

    Args:
        citation: Authors, year, title and venue.
        short: How the report names it ("Srivastava et al. 2014").
        where: The table, figure or section.
        value: What it reports, quoted as printed; where the source gives no
            number, what it states, and that it gives none.
        regime: What it was measured on: data and size, architecture, optimizer, training length.
        here: The same for this ablation's quick profile (and the full one where it differs).
        checked: How the value was checked, e.g. "read in the paper" or
            "from agreeing secondary quotations, not checked against the paper".
    """

    citation: str
    short: str
    where: str
    value: str
    regime: str
    here: str
    checked: str

    def comparison(self) -> str:
        """One line: the reference's regime against this suite's."""
        return f"{self.short}, {self.where}: {self.regime}; here: {self.here}"


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
        reference: The literature measurement the claim rests on, shown
            beside the verdict (None: the report says none is given).
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
    reference: Reference | None = None

    def resolve(
        self,
        profile: str = "quick",
        overrides: Mapping[str, str] | None = None,
        seeds: int | None = None,
        *,
        download: bool = False,
    ) -> ResolvedConfig:
        """Defaults, then the profile, then ``--set`` overrides; everything validated.

        A `ProfileChoice` left in the profile (not overridden) is decided here;
        its note, if any, goes to stderr once, after everything is validated.

        Args:
            profile: One of `PROFILES`.
            overrides: ``--set`` values as text; "a,b,c" makes a grid axis.
            seeds: Number of seeds; overrides the profile's.
            download: Missing TFDS data will be fetched (``--download``), so a
                `ProfileChoice` may pick a set that is not on disk yet.

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
        notes: list[str] = []
        values = {key: _decided(value, download, notes) for key, value in values.items()}
        if seeds is not None:
            n_seeds = _parse_seeds(str(seeds))
        fixed, grid = {}, {}
        for key, value in values.items():
            if isinstance(value, (list, tuple)):
                grid[key] = [self.params[key].check(key, item) for item in value]
            else:
                fixed[key] = self.params[key].check(key, value)
        grid["seed"] = list(range(n_seeds))
        # Printed last, so that a bad value still ends with one error line.
        for note in dict.fromkeys(notes):
            print(f"{self.name} {profile} profile: {note}", file=sys.stderr)
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


def _decided(value: Any, download: bool, notes: list[str]) -> Any:
    """``value`` with its `ProfileChoice` (alone or items of a grid list) decided; their notes go to ``notes``."""
    if isinstance(value, (list, tuple)):
        return [_decided(item, download, notes) for item in value]
    if isinstance(value, ProfileChoice):
        value, note = value.decide(download=download)
        if note:
            notes.append(note)
    return value


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
        results = []
        for index, (config, log) in enumerate(zip(configs, context.loggers)):
            with serving([index]):  # the data it loads is this trial's alone
                results.append(trial(config, log))
        return results

    run.__doc__ = trial.__doc__
    return run
