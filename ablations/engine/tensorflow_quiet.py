"""TensorFlow without its start-up noise on the terminal.

TensorFlow's C++ runtime writes a few lines straight to file descriptor 2 while
it loads and when it first looks for devices: before absl logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not hold them back. On a CPU-only machine they
say that there is no GPU, which the user knows. `import_tensorflow` loads
TensorFlow with descriptor 2 pointed at a temporary file, then writes back
every captured line that is not one of the known start-up lines in `NOISE`, so
real warnings (Python's included) still reach the user.

Example:

>>> tf = import_tensorflow()  # before anything else imports tensorflow or keras
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

NOISE: tuple[re.Pattern[str], ...] = (
    # Printed once per TensorFlow shared library that logs before absl is initialised.
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    # Information about the CPU build (oneDNN's rounding, instructions TensorFlow was not built for).
    re.compile(r"\] oneDNN custom operations are on\. "),
    re.compile(r"\] This TensorFlow binary is optimized to use available CPU instructions"),
    re.compile(r"^To enable the following instructions: .* in other operations, rebuild TensorFlow"),
    # No GPU on this machine, or CUDA libraries without a driver: TensorFlow runs on the CPU.
    re.compile(r"\] Could not find cuda drivers on your machine, GPU will not be used\.$"),
    re.compile(r"\] failed call to cuInit: ", re.IGNORECASE),
    # CUDA builds register their kernels twice (TensorFlow and XLA); harmless.
    re.compile(r"\] Unable to register cu(DNN|FFT|BLAS) factory: "),
    re.compile(r"\] TF-TRT Warning: Could not find TensorRT$"),
)
"""The start-up lines `import_tensorflow` drops; anything else it writes back to stderr."""


def is_noise(line: str) -> bool:
    """Whether ``line`` (without its newline) is one of TensorFlow's known start-up lines."""
    return any(pattern.search(line) for pattern in NOISE)


@functools.cache
def import_tensorflow() -> ModuleType:
    """Imports TensorFlow and finds its devices, keeping the known start-up lines off stderr.

    Call it before anything else imports ``tensorflow`` or ``keras`` (later
    imports are then free and silent). It sets no device visibility: a GPU is
    used as usual.

    Returns:
        The ``tensorflow`` module.
    """
    captured: list[str] = []
    try:
        with _stderr_into(captured):
            import tensorflow as tf

            # Devices are looked for on first use, which prints the CUDA lines; do it now.
            tf.config.list_physical_devices()
    finally:  # also when the import fails: what TensorFlow said may be why
        _write_back(captured)
    return tf


def _write_back(lines: list[str]) -> None:
    """Writes the captured lines that are not start-up noise to stderr."""
    for line in lines:
        if not is_noise(line.rstrip("\n")):
            sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def _stderr_into(lines: list[str]) -> Iterator[None]:
    """Points file descriptor 2 at a temporary file; on exit, appends what was written there to ``lines``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", errors="replace").splitlines(keepends=True))
