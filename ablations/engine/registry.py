"""Finds the ablations: every module ``ablations/<name>.py`` defines ``ABLATION``, named ``<name>``.

Names come from the file names, so a typo is answered without importing any
ablation (tests/engine/test_cli.py checks that the files and the names agree).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import ablations
from ablations.engine.spec import Ablation, ConfigError


def ablation_names() -> list[str]:
    """The ablations' names, in file-name order, without importing them."""
    modules = sorted(pkgutil.iter_modules(ablations.__path__), key=lambda m: m.name)
    return [module.name for module in modules if not module.ispkg and not module.name.startswith("_")]


@cache
def all_ablations() -> dict[str, Ablation]:
    """Name -> ablation, in file-name order. Adding an ablation is adding one file."""
    found = {}
    for name in ablation_names():
        ablation = getattr(importlib.import_module(f"ablations.{name}"), "ABLATION", None)
        if isinstance(ablation, Ablation):
            found[ablation.name] = ablation
    return found


def get_ablation(name: str) -> Ablation:
    """The ablation called ``name``, importing only its module; ConfigError naming the valid choices otherwise."""
    names = ablation_names()
    if name not in names:
        raise ConfigError(f"Unknown ablation {name!r}. Valid choices: {', '.join(names)}.")
    return importlib.import_module(f"ablations.{name}").ABLATION
