"""The names the model registries accept, without Keras.

The command line validates a configuration against these before TensorFlow
loads (seconds), so a typo is answered at once; `models.activations` and
`models.initializers` resolve the same names to Keras objects.
"""

ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "relu6",
    "selu",
    "gelu",
    "swish",
)

INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "standard",
)
