"""Name registries: turn the strings of a config into Keras objects.

Configs are flat, JSON-serializable dicts of names and numbers (so that MLflow
params and Optuna params are the same thing); the names are resolved here, at the
edge, and an unknown name fails early with one line that lists the valid choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A config named something that no registry knows.

    The message is a single line, e.g.
    ``Unknown activation 'foo'. Valid choices: elu, gelu, linear, ...``,
    so that a command-line user sees at once what to type instead.

    Args:
        kind: What was being looked up ("activation", "initializer", ...).
        name: The name that was received.
        choices: The names that would have been accepted.
    """

    def __init__(self, kind: str, name: object, choices: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.choices = tuple(sorted(choices))
        super().__init__(
            f"Unknown {kind} {name!r}. Valid choices: {', '.join(self.choices)}"
        )


def check_name(kind: str, name: object, choices: Iterable[str]) -> str:
    """Returns `name` if it is one of `choices`, else raises `UnknownNameError`.

    Args:
        kind: What the name designates, used in the error message.
        name: The name to check.
        choices: The accepted names.
    """
    choices = tuple(choices)
    if not isinstance(name, str) or name not in choices:
        raise UnknownNameError(kind, name, choices)
    return name


def resolve(kind: str, name: str, registry: Mapping[str, T]) -> T:
    """Looks `name` up in `registry`.

    Args:
        kind: What the name designates, used in the error message.
        name: The key to look up.
        registry: Mapping from names to objects (or factories).

    Returns:
        `registry[name]`.

    Raises:
        UnknownNameError: if `name` is not a key of `registry`.

    Example:

    >>> resolve("optimizer", "sgd", {"sgd": 1, "adam": 2})
    1
    """
    check_name(kind, name, registry.keys())
    return registry[name]
