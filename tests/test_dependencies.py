"""The install is locked: every package the code imports is declared, and what is installed is what requirements.lock pins."""

import ast
import re
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "activation-ablations"
LOCAL = {"ablations", "models", "callbacks", "benchmarks", "tests"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules(*folders: str) -> set[str]:
    """The top-level modules imported anywhere under ``folders`` (absolute imports only)."""
    names = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - LOCAL


def _declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]
    return {_normalized(Requirement(r).name) for r in requirements}


def _undeclared(modules: set[str], declared: set[str]) -> dict[str, list[str]]:
    providers = packages_distributions()
    return {m: providers.get(m, ["?"]) for m in modules if not {_normalized(d) for d in providers.get(m, [])} & declared}


def test_every_package_the_suite_imports_is_declared():
    assert _undeclared(_imported_modules("ablations", "models", "callbacks"), _declared()) == {}


def test_every_package_the_tests_and_benchmarks_import_is_declared_with_the_dev_extra():
    assert _undeclared(_imported_modules("tests", "benchmarks"), _declared("dev")) == {}


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement:
            name, version = requirement.split("==")
            pins[_normalized(name)] = version.strip()
    return pins


def _installed_tree(name: str, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Every distribution ``name`` needs on this interpreter, transitively, with its installed version."""
    seen: dict[str, str] = {}
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        dist = distribution(current)
        for text in dist.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            key = _normalized(requirement.name)
            if key not in seen:
                seen[key] = distribution(requirement.name).version
                pending.append((requirement.name, tuple(requirement.extras)))
    return seen


def test_what_is_installed_is_what_the_lock_pins():
    locked = _locked()
    installed = _installed_tree(PROJECT, ("dev",))
    assert len(installed) > 100  # the whole tree, not only the direct pins
    assert {name: (version, locked.get(name)) for name, version in installed.items() if locked.get(name) != version} == {}
