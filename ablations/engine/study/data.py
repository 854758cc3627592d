"""What ``ablate study`` trains on and minimizes, without Keras: checked before TensorFlow loads."""

from __future__ import annotations

import functools

from ablations.engine.data import DataError, Dataset, load_dataset

OBJECTIVES = {"val_error": ("val_error",), "gap": ("gap",), "both": ("val_error", "gap")}
"""``--objective`` -> the metrics minimized (``both`` is a two-objective study)."""


@functools.lru_cache(maxsize=4)
def study_dataset(name: str, n_train: int = 0) -> Dataset:
    """The data set a study trains on, loaded once per process (images keep their shape for augmentation).

    Raises:
        UnknownNameError: an unknown data set name.
        DataError: a regression set (studies classify) or a bad ``n_train``.
    """
    data = load_dataset(name, n_train=n_train or None, image_shape=True)
    if data.num_classes < 2:
        raise DataError(f"ablate study needs a classification data set; {name!r} has regression targets.")
    return data
