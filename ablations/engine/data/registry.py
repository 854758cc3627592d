"""The table of data set loaders: `register_dataset` adds one, `load_dataset` looks them up by name.

A loader takes only keyword options and returns a `RawData` with all the
examples; splitting and standardization are not its job. Sets are added from
their own modules (`bundled`, `synthetic`, or a user's), without editing this one.

An installed package adds its own through the entry-point group
`DATASET_ENTRY_POINTS`: each entry names a module whose `register_dataset`
calls run when it is imported, which happens the first time a data set name
is looked up (`plugin_dataset_names`), before TensorFlow loads.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ablations.engine.data.core import TFDS_PREFIX, DataError, RawData

Loader = Callable[..., RawData]
_LOADERS: dict[str, Loader] = {}
_SOURCES: dict[str, str] = {}
DATASET_ENTRY_POINTS = "activation_ablations.datasets"
"""Entry-point group of installed modules that register data sets (``name = "package.module"``)."""


def dataset_names() -> tuple[str, ...]:
    """The registered names, installed packages' included, sorted (the "tfds:<name>" sets come on top of these)."""
    _load_plugins()
    return tuple(sorted(_LOADERS))


def plugin_dataset_names() -> tuple[str, ...]:
    """The data sets registered outside the suite's own modules (installed packages, `DATASET_ENTRY_POINTS`), sorted."""
    _load_plugins()
    return tuple(sorted(name for name, loader in _LOADERS.items() if not loader.__module__.startswith(__package__ + ".")))


@functools.cache
def _load_plugins() -> None:
    for entry in entry_points(group=DATASET_ENTRY_POINTS):
        entry.load()


def register_dataset(name: str, *, source: str = "registered") -> Callable[[Loader], Loader]:
    """Decorator that makes a loader available to `load_dataset` under `name`.

    The loader takes only keyword options (they become the ``**options`` of
    `load_dataset`, checked against its signature) and returns a `RawData` with
    all the examples; splitting and standardization are done by `load_dataset`.

    Args:
        name: The data set's name; must not start with "tfds:".
        source: Where its examples come from, as its MLflow dataset input
            says (`dataset_source`): "bundled" (files shipped with a package),
            "generated" (drawn by code), or anything that describes it.

    Example:

    >>> @register_dataset("line")
    ... def _line(*, n_samples: int = 100) -> RawData:
    ...     x = np.linspace(-1, 1, n_samples)[:, None]
    ...     return RawData(x=x, y=2 * x[:, 0], num_classes=0)
    """
    if not isinstance(name, str) or not name or name.startswith(TFDS_PREFIX):
        raise ValueError(f"A data set name must be a non-empty string not starting with {TFDS_PREFIX!r}; got {name!r}.")

    def decorator(loader: Loader) -> Loader:
        previous = _LOADERS.get(name)
        # Re-running the same definition (a reloaded module) is harmless; two
        # different loaders under one name would silently shadow each other.
        if previous is not None and _qualified_name(previous) != _qualified_name(loader):
            raise ValueError(f"Data set {name!r} is already registered by {_qualified_name(previous)}.")
        _LOADERS[name] = loader
        _SOURCES[name] = source
        return loader

    return decorator


def dataset_source(name: str) -> str:
    """Where a data set's examples come from: "tfds" for a "tfds:" name, else what its loader was registered with."""
    return "tfds" if name.startswith(TFDS_PREFIX) else _SOURCES.get(name, "registered")


def _qualified_name(function: Callable) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def load_registered(name: str, options: dict[str, Any]) -> RawData:
    """Calls the loader registered as ``name`` with ``options``.

    Raises:
        UnknownNameError: no loader has that name (`models.registry.UnknownNameError`).
        DataError: an option the loader does not take.
    """
    _load_plugins()
    if name not in _LOADERS:
        # Imported here: models/__init__ pulls in Keras, which `ablate list` and
        # the data tests should not pay for.
        from models.registry import UnknownNameError

        names = dataset_names()
        error = UnknownNameError("data set", name, names)
        # The registry sorts its choices; the open-ended tfds:<name> reads best last.
        error.args = (f"Unknown data set {name!r}. Valid choices: {', '.join(names)}, {TFDS_PREFIX}<name>",)
        raise error
    loader = _LOADERS[name]
    _check_options(name, loader, options)
    return loader(**options)


def _check_options(name: str, loader: Loader, options: dict[str, Any]) -> None:
    parameters = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for option in sorted(options):
        if option not in parameters:
            choices = ", ".join(sorted(parameters)) or "(none)"
            raise DataError(f"Unknown option {option!r} for data set {name!r}. Valid choices: {choices}")
