"""Model builders, custom layers and name registries (what is trained).

The names below load on first use (PEP 562), so that ``models.names`` and
``models.registry`` can be imported without Keras: the ``ablate`` command checks
a configuration against them before TensorFlow starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.activations import LEAKY_RELU_SLOPE, activation_function, activation_layer
    from models.augmentation import AugmentationPipeline, SignalAugmentation, image_augmentation
    from models.cnn import build_cnn
    from models.dropout import InvertedDropout
    from models.initializers import GlorotBengioStandard, get_initializer
    from models.mlp import OUTPUT_ACTIVATIONS, build_mlp
    from models.regularizers import make_regularizer
    from models.stacked import StackedMLP, stack_models

from models.names import ACTIVATIONS, INITIALIZERS
from models.registry import UnknownNameError, resolve

_LAZY = {
    "LEAKY_RELU_SLOPE": "models.activations",
    "activation_function": "models.activations",
    "activation_layer": "models.activations",
    "AugmentationPipeline": "models.augmentation",
    "SignalAugmentation": "models.augmentation",
    "image_augmentation": "models.augmentation",
    "build_cnn": "models.cnn",
    "InvertedDropout": "models.dropout",
    "GlorotBengioStandard": "models.initializers",
    "get_initializer": "models.initializers",
    "OUTPUT_ACTIVATIONS": "models.mlp",
    "build_mlp": "models.mlp",
    "make_regularizer": "models.regularizers",
    "StackedMLP": "models.stacked",
    "stack_models": "models.stacked",
}

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LEAKY_RELU_SLOPE",
    "OUTPUT_ACTIVATIONS",
    "AugmentationPipeline",
    "GlorotBengioStandard",
    "InvertedDropout",
    "SignalAugmentation",
    "StackedMLP",
    "UnknownNameError",
    "activation_function",
    "activation_layer",
    "build_cnn",
    "build_mlp",
    "get_initializer",
    "image_augmentation",
    "make_regularizer",
    "resolve",
    "stack_models",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
