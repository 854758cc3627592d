"""Model builders, custom layers and name registries (what is trained)."""

from models.activations import (
    ACTIVATIONS,
    LEAKY_RELU_SLOPE,
    activation_function,
    activation_layer,
)
from models.augmentation import AugmentationPipeline, SignalAugmentation, image_augmentation
from models.cnn import build_cnn
from models.dropout import InvertedDropout
from models.initializers import INITIALIZERS, GlorotBengioStandard, get_initializer
from models.mlp import OUTPUT_ACTIVATIONS, build_mlp
from models.registry import UnknownNameError, resolve
from models.regularizers import make_regularizer

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LEAKY_RELU_SLOPE",
    "OUTPUT_ACTIVATIONS",
    "AugmentationPipeline",
    "GlorotBengioStandard",
    "InvertedDropout",
    "SignalAugmentation",
    "UnknownNameError",
    "activation_function",
    "activation_layer",
    "build_cnn",
    "build_mlp",
    "get_initializer",
    "image_augmentation",
    "make_regularizer",
    "resolve",
]
