"""``--workers`` is bounded by the machine, workers start all or none, and no worker outlives its parent.

The bound is computed from figures a test injects (cores, GPUs, memory), never
from the machine the tests run on; only the "far beyond any machine" checks and
the kill tests read this machine.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ablations.engine import cli
from ablations.engine.cli import main
from ablations.engine.device import (
    GIB,
    WORKER_MEMORY_BYTES,
    WORKERS_PER_CORE,
    WORKERS_PER_GPU,
    MachineFigures,
    available_memory_bytes,
    check_workers,
    visible_gpus,
    worker_bound,
    workers_note,
)
from ablations.engine.execution.pool import PARENT_ENV, WorkerStartError, die_with_parent, start_workers

# ------------------------------------------------------------------ the bound, from injected figures


def test_the_documented_multiples_and_memory_bound():
    assert (WORKERS_PER_CORE, WORKERS_PER_GPU, WORKER_MEMORY_BYTES) == (2, 4, 2 * GIB)


def test_on_a_cpu_the_cores_cap_binds_when_memory_is_plenty():
    bound = worker_bound(cores=2, gpus=0, memory_bytes=int(20.1 * GIB))
    assert bound.most == 4
    assert bound.reason == "2 cores x 2 workers per core = 4; 20.1 GiB available / 2 GiB per worker = 10"


def test_memory_binds_when_it_holds_fewer_workers_than_the_cores_cap():
    bound = worker_bound(cores=16, gpus=0, memory_bytes=4 * GIB)
    assert bound.most == 2
    assert bound.reason == "16 cores x 2 workers per core = 32; 4.0 GiB available / 2 GiB per worker = 2"


def test_with_gpus_the_cap_is_per_gpu():
    bound = worker_bound(cores=16, gpus=2, memory_bytes=128 * GIB)
    assert bound.most == 8
    assert bound.reason == "2 GPUs x 4 workers per GPU = 8; 128.0 GiB available / 2 GiB per worker = 64"
    assert worker_bound(cores=64, gpus=1, memory_bytes=None).most == 4


def test_unknown_memory_leaves_the_cores_cap_alone():
    bound = worker_bound(cores=3, gpus=0, memory_bytes=None)
    assert (bound.most, bound.reason) == (6, "3 cores x 2 workers per core = 6; available memory unknown")


def test_one_worker_always_fits():
    assert worker_bound(cores=1, gpus=0, memory_bytes=100 * 2**20).most == 1
    assert worker_bound(cores=0, gpus=0, memory_bytes=0).most == 1


def test_a_measured_peak_replaces_the_documented_bound():
    bound = MachineFigures(cores=8, gpus=0, memory_bytes=8 * GIB).worker_bound(per_worker_bytes=GIB // 2)
    assert (bound.most, bound.reason) == (16, "8 cores x 2 workers per core = 16; 8.0 GiB available / 0.5 GiB per worker = 16")


def test_the_error_names_the_most_that_fit_and_why():
    bound = worker_bound(cores=2, gpus=0, memory_bytes=int(20.1 * GIB))
    assert check_workers(4, bound) is None
    assert check_workers(100000, bound) == (
        "--workers 100000 is more than this machine can hold: at most 4 "
        "(2 cores x 2 workers per core = 4; 20.1 GiB available / 2 GiB per worker = 10)"
    )


def test_more_workers_than_cores_on_a_cpu_get_one_note():
    cpu = worker_bound(cores=2, gpus=0, memory_bytes=20 * GIB)
    assert workers_note(2, cpu) is None
    assert workers_note(3, cpu) == "3 workers on 2 cores share them; more workers than cores do not train faster"
    assert workers_note(3, worker_bound(cores=2, gpus=1, memory_bytes=20 * GIB)) is None  # they share the GPU


def test_the_cli_checks_the_bound_and_notes_workers_beyond_the_cores(monkeypatch, capsys):
    from ablations.engine import device

    monkeypatch.setattr(device, "machine_worker_bound", lambda: worker_bound(cores=2, gpus=0, memory_bytes=20 * GIB))
    assert cli._check_workers(3) is None
    assert capsys.readouterr().err == "ablate: note: 3 workers on 2 cores share them; more workers than cores do not train faster\n"
    assert cli._check_workers(5) == 2
    assert capsys.readouterr().err.startswith("ablate: error: --workers 5 is more than this machine can hold: at most 4 (")


# ------------------------------------------------------------------ this machine's figures, from files a test writes


def _proc(tmp_path: Path, available_kb: int, cgroup: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal:       24683584 kB\nMemFree:         1000000 kB\nMemAvailable:   {available_kb} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    return proc


def test_available_memory_is_lowered_to_a_cgroup_v2_limits_headroom(tmp_path):
    proc = _proc(tmp_path, 20 * 2**20, "0::/job\n")
    group = tmp_path / "cgroup" / "job"
    group.mkdir(parents=True)
    (group / "memory.max").write_text(f"{8 * GIB}\n")
    (group / "memory.current").write_text(f"{3 * GIB}\n")
    (group / "memory.stat").write_text(f"anon 100\ninactive_file {GIB}\n")
    assert available_memory_bytes(proc, tmp_path / "cgroup") == 6 * GIB  # 8 - (3 - 1 reclaimable)
    (group / "memory.max").write_text("max\n")
    assert available_memory_bytes(proc, tmp_path / "cgroup") == 20 * GIB  # no limit: MemAvailable


def test_available_memory_reads_a_cgroup_v1_limit_and_is_none_when_nothing_says(tmp_path):
    proc = _proc(tmp_path, 20 * 2**20, "4:memory:/docker/abc\n0::/\n")
    group = tmp_path / "cgroup" / "memory"  # the container's own group mounted as the root
    group.mkdir(parents=True)
    (group / "memory.limit_in_bytes").write_text(f"{2 * GIB}\n")
    (group / "memory.usage_in_bytes").write_text(f"{GIB}\n")
    assert available_memory_bytes(proc, tmp_path / "cgroup") == GIB
    (group / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert available_memory_bytes(proc, tmp_path / "cgroup") == 20 * GIB
    assert available_memory_bytes(tmp_path / "nothing", tmp_path / "nothing") is None


def test_visible_gpus_are_counted_without_tensorflow(tmp_path):
    driver = tmp_path / "gpus"
    driver.mkdir()
    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (driver / bus).mkdir()
    assert visible_gpus({}, driver) == 2
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, driver) == 1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, driver) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}, driver) == 0
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,-1,1"}, driver) == 1  # CUDA stops at the first invalid entry
    assert visible_gpus({}, tmp_path / "no-driver") == 0


# ------------------------------------------------------------------ refused before any process starts


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "vanishing_gradients", "--workers", "100000"],
        ["run", "vanishing_gradients", "--workers", "100000", "--dry-run"],
        ["study", "--space", "tiny", "--data", "xor", "--workers", "100000"],
    ],
    ids=["run", "dry-run", "study"],
)
def test_workers_far_beyond_the_machine_are_refused_in_one_line_and_start_nothing(argv, monkeypatch, capsys, _never_the_real_mlruns):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: started.append(args) or pytest.fail("a process was started"))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ablate: error: --workers 100000 is more than this machine can hold: at most ")
    assert "workers per " in lines[0] and ("per worker" in lines[0] or "memory unknown" in lines[0])
    assert started == []
    assert list(Path(_never_the_real_mlruns).iterdir()) == []


# ------------------------------------------------------------------ starting: all or none


class FakeProcess:
    """A started worker that records being stopped."""

    def __init__(self, running: bool = True, code: int = 0):
        self.returncode = None if running else code
        self.events: list[str] = []

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.events.append("terminate")
        self.returncode = -signal.SIGTERM

    def wait(self, timeout: float | None = None) -> int:
        self.events.append("wait")
        return self.returncode


def test_a_worker_that_cannot_start_stops_those_already_started(monkeypatch):
    started: list[FakeProcess] = []

    def popen(command, **kwargs):
        assert kwargs["env"][PARENT_ENV] == str(os.getpid())
        if len(started) == 2:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        started.append(FakeProcess())
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(WorkerStartError) as raised:
        start_workers("ablations.engine.grid_workers", range(1, 8), total=8, env={})
    assert str(raised.value) == "could not start worker /w3 of 8: [Errno 11] Resource temporarily unavailable; stopped the 2 already started"
    assert [p.events for p in started] == [["terminate", "wait"], ["terminate", "wait"]]


def test_a_first_worker_that_cannot_start_leaves_none(monkeypatch):
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: (_ for _ in ()).throw(OSError(12, "Cannot allocate memory")))
    with pytest.raises(WorkerStartError, match=r"^could not start worker /w0 of 2: \[Errno 12\] Cannot allocate memory; none had started$"):
        start_workers("ablations.engine.study.workers", range(2), total=2, env={})


def test_a_helper_that_exited_before_its_grid_stops_the_launch(monkeypatch):
    from ablations.engine import grid_workers
    from ablations.engine.registry import get_ablation

    processes = [FakeProcess(), FakeProcess(running=False, code=1)]
    monkeypatch.setattr(grid_workers, "start_workers", lambda *a, **k: processes)
    helpers = grid_workers.GridHelpers(3, progress=False)
    config = get_ablation("vanishing_gradients").resolve("smoke", {}, None)
    grid = SimpleNamespace(name="g", study=SimpleNamespace(user_attrs={"ablation": "vanishing_gradients"}))
    with pytest.raises(WorkerStartError) as raised:
        helpers.start(config, grid, None)
    assert str(raised.value) == (
        "grid helper /w2 of 3 exited with 1 before it was handed the grid (its own output says why); stopped the other 1"
    )
    assert processes[0].events == ["terminate", "wait"]


def test_the_cli_says_a_failed_start_in_one_line(monkeypatch, capsys):
    def refuse(args):
        raise WorkerStartError("could not start worker /w1 of 2: [Errno 11] Resource temporarily unavailable; none had started")

    monkeypatch.setattr(cli, "_dispatch", refuse)
    assert main(["run", "vanishing_gradients", "--workers", "2"]) == cli.EXIT_NOT_STARTED
    assert capsys.readouterr().err == "ablate: error: could not start worker /w1 of 2: [Errno 11] Resource temporarily unavailable; none had started\n"


def test_a_process_started_by_hand_is_not_tied_to_a_parent(monkeypatch):
    monkeypatch.delenv(PARENT_ENV, raising=False)
    die_with_parent()  # nothing to do, and it returns


def test_a_worker_whose_parent_died_before_it_armed_the_signal_exits_at_once():
    env = {**os.environ, PARENT_ENV: "1"}  # not its parent: the parent it was handed is gone
    script = "from ablations.engine.execution.pool import die_with_parent; die_with_parent(); print('survived')"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (1, "")
    env[PARENT_ENV] = str(os.getpid())  # its real parent lives: it carries on
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "survived\n")


# ------------------------------------------------------------------ no orphans: a parent killed with SIGKILL


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(parent: int, module: str) -> list[int]:
    """The processes started by ``parent`` that run ``python -m MODULE``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and module.encode() in command:
            found.append(int(entry.name))
    return sorted(found)


def _lines(stream) -> queue.Queue:
    """The lines of ``stream``, read by a thread as they come (None at its end)."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for_workers(process: subprocess.Popen, lines: queue.Queue, ready: set[str], deadline_s: float) -> list[str]:
    """Reads the command's output until each of ``ready`` appears in a line (each worker is then past
    `die_with_parent`, which its ``main`` calls first, and busy training); returns what it read."""
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s  # only a bound for a failure: the condition is the lines
    while ready and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"the command ended ({process.wait()}) before its workers trained: {''.join(seen)}")
        seen.append(line)
        ready = {marker for marker in ready if marker not in line}
    assert not ready, f"no line with {ready} within {deadline_s}s: {''.join(seen)}"
    return seen


def _kill_and_expect_no_orphans(process: subprocess.Popen, workers: list[int], output: list[str]) -> None:
    assert workers and all(_alive(pid) for pid in workers), output
    process.kill()  # SIGKILL: the parent can neither catch it nor stop its workers itself
    process.wait()
    for _ in range(100):  # up to 10 s of reaction time; the condition is the processes
        if not any(_alive(pid) for pid in workers):
            break
        time.sleep(0.1)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:  # never leave them running past the test
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], f"workers outlived their parent: {survivors}"


def _ablate(args: list[str], tmp_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ABLATE_", "MLFLOW_"))}
    env.update(ABLATE_RESULTS_DIR=str(tmp_path), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "ablations", *args], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.process
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_grid_helpers_die_with_an_ablate_run_killed_with_sigkill(tmp_path):
    # A quick grid has 24 packs: the helper is still training when its parent dies
    # (its stdin closing alone would not stop it before the grid is done).
    process = _ablate(["run", "vanishing_gradients", "--profile", "quick", "--workers", "2", "--no-report"], tmp_path)
    try:
        output = _wait_for_workers(process, _lines(process.stderr), {"vanishing_gradients/w1 "}, deadline_s=300)
        helpers = _children(process.pid, "ablations.engine.grid_workers")
        assert len(helpers) == 1, output
        _kill_and_expect_no_orphans(process, helpers, output)
    finally:
        process.kill()
        process.wait()


@pytest.mark.process
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_study_workers_die_with_an_ablate_study_killed_with_sigkill(tmp_path):
    # Far more trials than the test lets them run: only their parent's death can stop the workers.
    args = ["study", "--space", "tiny", "--data", "xor", "--trials", "100000", "--workers", "2", "--study-name", "orphans"]
    process = _ablate(args, tmp_path)
    try:
        output = _wait_for_workers(process, _lines(process.stderr), {"[orphans/w0] trial", "[orphans/w1] trial"}, deadline_s=300)
        workers = _children(process.pid, "ablations.engine.study.workers")
        assert len(workers) == 2, output
        _kill_and_expect_no_orphans(process, workers, output)
    finally:
        process.kill()
        process.wait()
