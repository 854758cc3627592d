"""Finds the ablations: every module ``ablations/<name>.py`` that defines ``ABLATION``."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import ablations
from ablations.engine.spec import Ablation, ConfigError


@cache
def all_ablations() -> dict[str, Ablation]:
    """Name -> ablation, in file-name order. Adding an ablation is adding one file."""
    found = {}
    for module in sorted(pkgutil.iter_modules(ablations.__path__), key=lambda m: m.name):
        if module.ispkg or module.name.startswith("_"):
            continue
        ablation = getattr(importlib.import_module(f"ablations.{module.name}"), "ABLATION", None)
        if isinstance(ablation, Ablation):
            found[ablation.name] = ablation
    return found


def get_ablation(name: str) -> Ablation:
    """The ablation called ``name``; ConfigError naming the valid choices otherwise."""
    registry = all_ablations()
    if name not in registry:
        raise ConfigError(f"Unknown ablation {name!r}. Valid choices: {', '.join(registry)}.")
    return registry[name]
