"""The device trials train on: cores, threads, memory (host and GPU), pack limits, and what a run records of it.

On a machine with a GPU, TensorFlow would reserve nearly all of its memory in
the first process; with memory growth on, several workers share one GPU and
each takes what its packs need. `--jit` compiles the stacked training step
with XLA (``ABLATE_JIT=1``, inherited by worker processes).

It also says how many worker processes this machine holds (`worker_bound`,
`machine_worker_bound`), from figures read without TensorFlow, so that
``--workers N`` is checked before any process starts or TensorFlow loads, and
how many TensorFlow threads each gets (`threads_per_worker`,
`configure_threads`). The runner, the estimate and the workers read all of
these here.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

JIT_ENV = "ABLATE_JIT"
PACK_MEMORY_SHARE = 0.8
"""The share of a GPU's free memory one worker's packs may fill; the rest is headroom for TensorFlow's own buffers."""
CPU_PACK_BYTES = 4 * 2**30
"""A CPU pack's memory, by `member_bytes`' loose bound (it counts 3,072 input features; the real need is far lower).

Packs of seeds and arms grow with the seeds (early_stopping's full profile asks
1,960 members of one condition); beyond a few dozen members a pack gains
nothing more on a CPU, so the largest are split."""


WORKERS_PER_CORE = 2
"""Most workers per core on a CPU. One per core is what speeds a grid up; a
second per core still overlaps one worker's bookkeeping (MLflow, Optuna, Python
between steps) with another's training, and beyond two they only queue for the
cores while each holds a TensorFlow process's memory."""
WORKERS_PER_GPU = 4
"""Most workers per GPU: with memory growth several workers share a GPU, each
feeding it from its own host threads; more than a few only queue for it."""
WORKER_MEMORY_BYTES = 2 * 2**30
"""Host memory one worker may need (2 GiB): the bound ``--workers`` is checked
against. Measured as the peak RSS (``VmHWM`` in /proc/PID/status, sampled each
second) of the ``ablate`` process and of its helper during ``ablate run
vanishing_gradients --profile quick --workers 2 --no-report`` on a 2-core CPU
(TensorFlow's CPU build): 1.15 GiB (1,205,644 kB) and 1.14 GiB (1,195,436 kB).
The bound leaves about 75% headroom over that for larger data sets and models
and for TensorFlow's GPU build, which maps more; a ``--dry-run`` measures a
grid's own peak and says how many workers fit with it."""
GIB = 2**30


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """TensorFlow threads (intra-op and inter-op each) for one of ``workers`` processes sharing the cores."""
    return max(1, (cores or available_cores()) // workers)


def configure_threads(threads: int) -> None:
    """Sizes TensorFlow's thread pools; must run before TensorFlow's first op in this process."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from ablations.engine.tensorflow_quiet import import_tensorflow

    tf = import_tensorflow()  # finds the devices but runs no op, so the pools can still be sized
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes (macOS reports bytes, Linux KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return peak_rss_bytes() / 2**20


def available_memory_bytes(proc: Path = Path("/proc"), cgroups: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory that new processes may still take: the kernel's MemAvailable, lowered to a cgroup limit's headroom.

    A container's limit is often far below the machine's memory, and
    MemAvailable does not know it: a limit (cgroup v2 ``memory.max``, or v1
    ``memory.limit_in_bytes``) minus what the group uses, less its reclaimable
    page cache (``inactive_file``), is what it still holds.

    Args:
        proc: Where procfs is mounted (a test passes a folder of its own).
        cgroups: Where the cgroup file systems are mounted.

    Returns:
        Bytes, or None where neither figure can be read (not Linux).
    """
    available = _meminfo_available(proc / "meminfo")
    headroom = _cgroup_headroom(proc / "self" / "cgroup", cgroups)
    known = [value for value in (available, headroom) if value is not None]
    return min(known) if known else None


def _meminfo_available(path: Path) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom(self_cgroup: Path, cgroups: Path) -> int | None:
    """A memory limit's headroom: limit - (usage - inactive page cache); None where no limit is set."""
    v2, v1 = [], []
    try:
        for line in self_cgroup.read_text().splitlines():
            number, controllers, path = line.split(":", 2)
            if number == "0":
                v2.append(cgroups / path.lstrip("/"))
            elif "memory" in controllers.split(","):
                v1.append(cgroups / "memory" / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    # In a container the group's own path is often not mounted: its root is the group.
    candidates = [(folder, "memory.max", "memory.current", "inactive_file") for folder in (*v2, cgroups)]
    candidates += [(folder, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file") for folder in (*v1, cgroups / "memory")]
    for folder, limit_file, usage_file, inactive in candidates:
        try:
            limit_text = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= 2**62:  # v2 and v1's ways of saying "no limit"
            return None
        return max(int(limit_text) - usage + _stat(folder / "memory.stat", inactive), 0)
    return None


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def visible_gpus(environ: dict[str, str] | None = None, driver: Path = Path("/proc/driver/nvidia/gpus")) -> int:
    """GPUs the workers would train on, counted without TensorFlow (loading it takes seconds).

    ``CUDA_VISIBLE_DEVICES`` when set ("" or "-1": none), else the GPUs the
    NVIDIA driver lists; 0 when neither says.

    Args:
        environ: The environment (default: this process's).
        driver: The NVIDIA driver's folder of GPUs.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
        # CUDA stops at the first invalid entry, and "-1" is the usual way to hide every GPU.
        count = 0
        for entry in entries:
            if entry.startswith("-"):
                break
            count += 1
        return count
    try:
        return sum(1 for _ in driver.iterdir())
    except OSError:
        return 0


@dataclass(frozen=True)
class WorkerBound:
    """The most worker processes this machine holds, and why.

    Args:
        most: The bound (at least 1: one worker always runs).
        reason: Both limits in words, e.g. "2 cores x 2 workers per core = 4;
            20.1 GiB available / 2 GiB per worker = 10".
        cores: The cores counted.
        gpus: The GPUs counted (0: the workers train on the CPU).
    """

    most: int
    reason: str
    cores: int
    gpus: int


def worker_bound(*, cores: int, gpus: int, memory_bytes: int | None, per_worker_bytes: int = WORKER_MEMORY_BYTES) -> WorkerBound:
    """The most workers a machine with these figures holds: the lower of a cap per core (or GPU) and its memory.

    Args:
        cores: Cores the workers may run on (`available_cores`).
        gpus: GPUs they may train on (`visible_gpus`); with any, the cap is per GPU.
        memory_bytes: Memory still available (`available_memory_bytes`); None: unknown, no memory limit.
        per_worker_bytes: Memory one worker needs (`WORKER_MEMORY_BYTES`, or a dry run's measured peak).
    """
    cores = max(cores, 1)
    if gpus > 0:
        cap = gpus * WORKERS_PER_GPU
        limits = [(cap, f"{_count(gpus, 'GPU')} x {WORKERS_PER_GPU} workers per GPU = {cap}")]
    else:
        cap = cores * WORKERS_PER_CORE
        limits = [(cap, f"{_count(cores, 'core')} x {WORKERS_PER_CORE} workers per core = {cap}")]
    if memory_bytes is not None and per_worker_bytes > 0:
        fit = memory_bytes // per_worker_bytes
        limits.append((fit, f"{memory_bytes / GIB:.1f} GiB available / {_gib(per_worker_bytes)} per worker = {fit}"))
    else:
        limits.append((math.inf, "available memory unknown"))
    most = max(1, int(min(limit for limit, _ in limits)))
    return WorkerBound(most, "; ".join(text for _, text in limits), cores, gpus)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'s' if number != 1 else ''}"


def _gib(size: int) -> str:
    """Bytes as GiB, to two decimals at most: "2 GiB", "1.5 GiB", "0.88 GiB"."""
    return f"{size / GIB:.2f}".rstrip("0").rstrip(".") + " GiB"


@dataclass(frozen=True)
class MachineFigures:
    """What `worker_bound` reads of a machine.

    Args:
        cores: `available_cores`.
        gpus: `visible_gpus`.
        memory_bytes: `available_memory_bytes` (None: unknown).
    """

    cores: int
    gpus: int
    memory_bytes: int | None

    def worker_bound(self, per_worker_bytes: int = WORKER_MEMORY_BYTES) -> WorkerBound:
        """`worker_bound` of these figures, with ``per_worker_bytes`` of memory per worker."""
        return worker_bound(cores=self.cores, gpus=self.gpus, memory_bytes=self.memory_bytes, per_worker_bytes=per_worker_bytes)


def machine_figures() -> MachineFigures:
    """This machine's cores, GPUs and available memory, read without TensorFlow."""
    return MachineFigures(available_cores(), visible_gpus(), available_memory_bytes())


def machine_worker_bound() -> WorkerBound:
    """`worker_bound` for this machine, with the documented memory per worker (`WORKER_MEMORY_BYTES`)."""
    return machine_figures().worker_bound()


def check_workers(workers: int, bound: WorkerBound, option: str = "--workers") -> str | None:
    """The one-line error for ``workers`` beyond ``bound``, or None when they fit.

    Args:
        workers: The workers asked for.
        bound: What the machine holds (`machine_worker_bound`).
        option: How the command line spells the option.
    """
    if workers <= bound.most:
        return None
    return f"{option} {workers} is more than this machine can hold: at most {bound.most} ({bound.reason})"


def workers_note(workers: int, bound: WorkerBound) -> str | None:
    """One line for workers within the bound but more than the cores of a CPU, or None.

    Args:
        workers: The workers asked for.
        bound: What the machine holds (`machine_worker_bound`).
    """
    if bound.gpus > 0 or workers <= bound.cores:
        return None
    return f"{workers} workers on {_count(bound.cores, 'core')} share them; more workers than cores do not train faster"


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
    """A rough upper bound of the memory one stacked member needs while it trains.

    Weights, gradients and Adam's two moments in float32 (four copies of the
    parameters), and a batch's activations and their gradients in every layer:
    an MLP's from its width and depth, a CNN's (a configuration with
    ``filters``) from its feature maps on images of `INPUT_FEATURES_BOUND` values.
    """
    batch = int(config.get("batch_size") or config.get("n_train", 1000))
    if "filters" in config:
        return _cnn_member_bytes(config, batch)
    width, depth = int(config.get("width", 256)), int(config.get("depth", 2))
    parameters = INPUT_FEATURES_BOUND * width + (depth - 1) * width * width + width * 10
    activations = 2 * batch * width * depth
    return 4 * (4 * parameters + activations)


def _cnn_member_bytes(config: dict, batch: int) -> int:
    """`member_bytes` of a `models.build_cnn` member: 3x3 kernels, feature maps halved in each side per block."""
    filters, blocks, dense = int(config["filters"]), int(config.get("conv_blocks", 2)), int(config.get("dense_width", 64))
    channels, maps, parameters = 3, 0, 0
    for block in range(blocks):
        out = filters * 2**block
        parameters += 9 * channels * out + out
        maps += INPUT_FEATURES_BOUND // 4**block * out  # (an overcount: the bound's pixels times each block's channels)
        channels = out
    parameters += INPUT_FEATURES_BOUND // 4**blocks * channels * dense + dense * 10
    # Each map, its pooled copy, the members' channels side by side (grouped convolutions) and the gradients.
    return 4 * (4 * parameters + 4 * batch * maps)


def members_per_pack(bytes_per_member: int, free_bytes: int | None = None) -> int:
    """How many members one pack may stack to fit in device memory.

    Args:
        bytes_per_member: Memory one member needs while it trains (weights,
            optimizer state, activations of a batch).
        free_bytes: The GPU's free memory (`free_gpu_bytes`), of which packs
            take `PACK_MEMORY_SHARE`, or None on a CPU: `CPU_PACK_BYTES`.
    """
    if bytes_per_member <= 0:
        raise ValueError(f"bytes_per_member must be positive; received {bytes_per_member}.")
    budget = CPU_PACK_BYTES if free_bytes is None else int(free_bytes * PACK_MEMORY_SHARE)
    return max(1, budget // bytes_per_member)


def pack_limit(configs: Iterable[dict]) -> int:
    """The most members a pack of these trials stacks on this device (see `members_per_pack`)."""
    return members_per_pack(max(member_bytes(config) for config in configs), free_gpu_bytes())


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


def reset_gpu_peak() -> None:
    """Starts counting the first GPU's peak allocation anew (nothing on a CPU)."""
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")


def gpu_peak_bytes() -> int | None:
    """The first GPU's peak allocation since `reset_gpu_peak` (None on a CPU)."""
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def parallel_slots() -> tuple[int, str]:
    """Workers this device runs side by side at full speed, and what each is: one per GPU, else one per core.

    A worker on a CPU gets ``cores // workers`` TensorFlow threads
    (`threads_per_worker`); the small models here use few, so throughput grows
    about linearly with workers up to the cores. Several workers can share a
    GPU (memory growth is on), but no speed-up is assumed from that.
    """
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    return (gpus, "GPU") if gpus else (available_cores(), "core")


def device_name() -> str:
    """The device trials train on: the first GPU's name (and count), else "CPU (N cores)"."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return name if len(gpus) == 1 else f"{len(gpus)} x {name}"
    return f"CPU ({available_cores()} cores)"
