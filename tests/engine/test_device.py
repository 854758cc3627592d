"""The device: memory growth, what a run records of it, and packs sized to device memory."""

import pytest

from ablations.engine.device import CPU_PACK_BYTES, JIT_ENV, PACK_MEMORY_SHARE, configure_gpus, device_tags, member_bytes, members_per_pack


def test_on_a_cpu_there_is_no_gpu_to_configure_and_the_tags_say_cpu(monkeypatch):
    monkeypatch.delenv(JIT_ENV, raising=False)
    assert configure_gpus() == 0
    assert device_tags() == {"device": "cpu", "jit": "false"}
    monkeypatch.setenv(JIT_ENV, "1")
    assert device_tags()["jit"] == "true"


def test_packs_fit_a_share_of_the_free_device_memory():
    assert members_per_pack(2**20, None) == CPU_PACK_BYTES // 2**20  # CPU: a fixed budget
    assert members_per_pack(100, 1000) == int(1000 * PACK_MEMORY_SHARE) // 100 == 8
    assert members_per_pack(10_000, 1000) == 1  # a member too large still trains alone
    with pytest.raises(ValueError, match="bytes_per_member must be positive"):
        members_per_pack(0, 1000)


class _FakeGpus:
    """TensorFlow's device queries as a two-GPU machine answers them, for the GPU branch on a CPU."""

    def __init__(self, monkeypatch, *, initialized: bool = False):
        import tensorflow as tf

        self.grown: list[str] = []
        gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]

        def set_memory_growth(device, enable):
            if initialized:
                raise RuntimeError("Physical devices cannot be modified after being initialized")
            self.grown.append(device.name)

        monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
        monkeypatch.setattr(tf.config.experimental, "set_memory_growth", set_memory_growth)
        monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: {"device_name": "NVIDIA H200"})
        monkeypatch.setattr(tf.sysconfig, "get_build_info", lambda: {"cuda_version": "12.5.1", "cudnn_version": "9"})


def test_on_a_gpu_machine_growth_is_on_for_every_gpu_and_the_tags_name_them(monkeypatch):
    import ablations.engine.device as device

    fake = _FakeGpus(monkeypatch)
    monkeypatch.setattr(device, "_driver_version", lambda: "560.35.03")
    monkeypatch.delenv(JIT_ENV, raising=False)
    assert configure_gpus() == 2
    assert fake.grown == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert device_tags() == {
        "device": "gpu",
        "jit": "false",
        "gpu_name": "NVIDIA H200, NVIDIA H200",
        "gpu_count": "2",
        "gpu_driver": "560.35.03",
        "cuda_version": "12.5.1",
        "cudnn_version": "9",
    }


def test_growth_set_too_late_is_left_as_it_was(monkeypatch):
    _FakeGpus(monkeypatch, initialized=True)
    assert configure_gpus() == 2  # TensorFlow had started on the GPUs: no error, nothing changed


def test_without_nvidia_smi_the_driver_and_free_memory_are_unknown(monkeypatch):
    import ablations.engine.device as device

    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    assert device._driver_version() == "unknown"
    assert device.free_gpu_bytes() is None  # on this CPU there is no GPU to ask about anyway


def test_a_member_needs_its_weights_four_times_over_and_a_batch_of_activations():
    # 3072 inputs, width 32, depth 2, batch 100: weights, gradients and Adam's two moments, plus activations and their gradients.
    parameters = 3072 * 32 + 32 * 32 + 32 * 10
    assert member_bytes({"width": 32, "depth": 2, "batch_size": 100}) == 4 * (4 * parameters + 2 * 100 * 32 * 2)
    # Deeper members need more, so a pack of them is split sooner.
    deep = member_bytes({"width": 256, "depth": 50, "batch_size": 128})
    assert deep > member_bytes({"width": 256, "depth": 2, "batch_size": 128})
    assert members_per_pack(deep, 16 * 2**30) == int(16 * 2**30 * PACK_MEMORY_SHARE) // deep


def test_a_cnn_member_is_bounded_by_its_feature_maps():
    # One block of 4 filters on a 3072-value image, a dense layer of 8, batch 10: weights four times over, maps (with
    # their pooled copies, grouped copies and gradients) four times over.
    parameters = (9 * 3 * 4 + 4) + 3072 // 4 * 4 * 8 + 8 * 10
    config = {"filters": 4, "conv_blocks": 1, "dense_width": 8, "batch_size": 10}
    assert member_bytes(config) == 4 * (4 * parameters + 4 * 10 * 3072 * 4)
    # The maps dominate: a CNN member of augmentation's quick grid needs far more than its weights.
    quick = member_bytes({"filters": 16, "conv_blocks": 2, "dense_width": 64, "batch_size": 64})
    assert quick > 10 * member_bytes({**config, "batch_size": 1}) and members_per_pack(quick) < 100
