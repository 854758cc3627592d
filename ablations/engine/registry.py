"""Finds the ablations: the suite's own (``ablations/<name>.py`` defines ``ABLATION``, named ``<name>``) and installed ones.

Names come from the file names and from installed packages' entry points
(`ENTRY_POINTS`), so a typo is answered without importing any ablation
(tests/engine/test_cli.py checks that the files and the names agree).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache
from importlib.metadata import EntryPoint, entry_points

import ablations
from ablations.engine.spec import Ablation, ConfigError

ENTRY_POINTS = "activation_ablations.ablations"
"""Entry-point group through which an installed package adds ablations: ``NAME = "package.module"``, a module
that defines ``ABLATION`` named NAME (or ``"package.module:OBJECT"``, the `Ablation` itself)."""


def ablation_names() -> list[str]:
    """The ablations' names, the suite's in file-name order then installed ones sorted, without importing them."""
    modules = sorted(pkgutil.iter_modules(ablations.__path__), key=lambda m: m.name)
    own = [module.name for module in modules if not module.ispkg and not module.name.startswith("_")]
    return own + sorted(name for name in _installed() if name not in own)


@cache
def all_ablations() -> dict[str, Ablation]:
    """Name -> ablation, in `ablation_names` order. Adding an ablation is adding one file, or installing a package."""
    return {name: get_ablation(name) for name in ablation_names()}


def get_ablation(name: str) -> Ablation:
    """The ablation called ``name``, importing only its module; ConfigError naming the valid choices otherwise."""
    names = ablation_names()
    if name not in names:
        raise ConfigError(f"Unknown ablation {name!r}. Valid choices: {', '.join(names)}.")
    entry = _installed().get(name)
    if entry is None or importlib.util.find_spec(f"ablations.{name}") is not None:
        return importlib.import_module(f"ablations.{name}").ABLATION
    loaded = entry.load()
    ablation = loaded if isinstance(loaded, Ablation) else getattr(loaded, "ABLATION", None)
    if not isinstance(ablation, Ablation) or ablation.name != name:
        found = f"an Ablation named {ablation.name!r}" if isinstance(ablation, Ablation) else "no Ablation"
        raise ConfigError(f"Installed ablation {name!r} ({entry.value}, group {ENTRY_POINTS}) gives {found}; it must give ABLATION named {name!r}.")
    return ablation


def _installed() -> dict[str, EntryPoint]:
    """The ablations installed packages add, by name."""
    return {entry.name: entry for entry in entry_points(group=ENTRY_POINTS)}
