"""The device trials train on: GPU memory growth, XLA compilation, and what a run records of it.

On a machine with a GPU, TensorFlow would reserve nearly all of its memory in
the first process; with memory growth on, several workers share one GPU and
each takes what its packs need. `--jit` compiles the stacked training step
with XLA (``ABLATE_JIT=1``, inherited by worker processes).
"""

from __future__ import annotations

import os
import shutil
import subprocess

JIT_ENV = "ABLATE_JIT"
PACK_MEMORY_SHARE = 0.8
"""The share of a GPU's free memory one worker's packs may fill; the rest is headroom for TensorFlow's own buffers."""


def jit_enabled() -> bool:
    """Whether ``--jit`` asked for XLA compilation of the stacked training step."""
    return os.environ.get(JIT_ENV, "") == "1"


def configure_gpus() -> int:
    """Turns on memory growth for every GPU, before TensorFlow allocates on them; returns how many there are."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU is initialized already: growth is whatever was set first
            pass
    return len(gpus)


def device_tags() -> dict[str, str]:
    """What a parent run records of the device: kind, GPU name, driver, CUDA and cuDNN versions, XLA."""
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    tags = {"device": "cpu", "jit": str(jit_enabled()).lower()}
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return tags
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", "GPU") for gpu in gpus]
    tags.update(
        {
            "device": "gpu",
            "gpu_name": ", ".join(names),
            "gpu_count": str(len(gpus)),
            "gpu_driver": _driver_version(),
            "cuda_version": str(build.get("cuda_version", "unknown")),
            "cudnn_version": str(build.get("cudnn_version", "unknown")),
        }
    )
    return tags


def _driver_version() -> str:
    if shutil.which("nvidia-smi") is None:
        return "unknown"
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return output.strip().splitlines()[0] if output.strip() else "unknown"


INPUT_FEATURES_BOUND = 3072
"""Input features assumed by `member_bytes` (a 32x32x3 image): more than any bundled set has."""


def member_bytes(config: dict) -> int:
    """A rough upper bound of the memory one stacked MLP member needs while it trains, from its width, depth and batch.

    Weights, gradients and Adam's two moments in float32 (four copies of the
    parameters), and a batch's activations and their gradients in every layer.
    """
    width, depth = int(config.get("width", 256)), int(config.get("depth", 2))
    batch = int(config.get("batch_size") or config.get("n_train", 1000))
    parameters = INPUT_FEATURES_BOUND * width + (depth - 1) * width * width + width * 10
    activations = 2 * batch * width * depth
    return 4 * (4 * parameters + activations)


def members_per_pack(bytes_per_member: int, free_bytes: int | None = None) -> int | None:
    """How many members one pack may stack to fit in device memory; None where there is no limit to respect (CPU).

    Args:
        bytes_per_member: Memory one member needs while it trains (weights,
            optimizer state, activations of a batch).
        free_bytes: The device's free memory (`free_gpu_bytes`), or None on a CPU.
    """
    if free_bytes is None:
        return None
    if bytes_per_member <= 0:
        raise ValueError(f"bytes_per_member must be positive; received {bytes_per_member}.")
    return max(1, int(free_bytes * PACK_MEMORY_SHARE) // bytes_per_member)


def free_gpu_bytes() -> int | None:
    """The first GPU's free memory in bytes (None without a GPU or a way to ask)."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return int(output.strip().splitlines()[0]) * 2**20
