"""The stack collector against a real Python process the test starts (its threads have known
names and spin or wait in known functions), through the real ChildRunner and real py-spy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.base import ActivityBoard, CollectContext, CollectorStats, EngineFacts
from collectors.child import ChildRunner
from collectors.stacks.collector import StackCollector
from collectors.stacks.procs import PERMISSION_FIX, find_py_spy, ptrace_problem
from servescope.clock import take_anchor
from servescope.engines.observability import ProcessRole
from servescope.jsonio import loads
from servescope.rundir.layout import (
    HANGS_FILE,
    STACK_HOT_FILE,
    STACK_PROCESSES_FILE,
    STACK_THREADS_FILE,
)

ENGINE = Path(__file__).with_name("fake_engine.py")
PY_SPY = find_py_spy()
HANG_AFTER_S = 1.5
ROLES = (ProcessRole("worker", r"fake::Worker", True, ()),)  # its title, set after a while

pytestmark = pytest.mark.skipif(PY_SPY is None or not sys.platform.startswith("linux"),
                                reason="needs py-spy (the profiling extra) on Linux")


@dataclass
class Engine:
    proc: subprocess.Popen[str]
    sleeper: int
    worker: int = -1


def _start_engine() -> Engine:
    proc = subprocess.Popen([sys.executable, str(ENGINE), "engine"], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    word, pid = proc.stdout.readline().split()
    assert word == "ready"
    return Engine(proc, int(pid))


def _end_engine(engine: Engine) -> None:
    os.killpg(engine.proc.pid, 9)
    engine.proc.wait()


def _need_ptrace(pid: int) -> None:
    """Skip (with the reason) where py-spy may not read a child: a container without
    CAP_SYS_PTRACE."""
    assert PY_SPY is not None
    if problem := ptrace_problem([pid]):  # the collector is no ancestor of the engine
        pytest.skip(f"no ptrace permission for the collector's py-spy: {problem}")
    out = subprocess.run([PY_SPY, "dump", "--pid", str(pid)], capture_output=True, text=True,
                         timeout=30, check=False)
    text = out.stdout + out.stderr
    if out.returncode and "ermission" in text:
        pytest.skip(f"py-spy dump of a child process was refused (no ptrace permission): "
                    f"{text.strip().splitlines()[0]}")
    assert out.returncode == 0, text


def _ctx(run_dir: Path, pid: int, board: ActivityBoard | None) -> CollectContext:
    return CollectContext(run_dir, "http://127.0.0.1:1",
                          EngineFacts("openai", pid=pid, process_roles=ROLES), take_anchor(),
                          options={"stacks": {"rate_hz": 50, "blocking": False,
                                              "hang_after_s": HANG_AFTER_S}},
                          activity=board)


@dataclass
class Run:
    engine: Engine
    run_dir: Path
    stats: CollectorStats


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One collection of ~6 s: two stalls of the load (each longer than hang_after_s, a chunk
    between them), the worker appearing after the first scan."""
    engine = _start_engine()
    try:
        _need_ptrace(engine.proc.pid)
        run_dir = tmp_path_factory.mktemp("run")
        board = ActivityBoard()
        runner = ChildRunner(StackCollector(), _ctx(run_dir, engine.proc.pid, board))
        assert runner.start(), runner.error
        assert engine.proc.stdout is not None
        engine.worker = int(engine.proc.stdout.readline().split()[1])
        board.write(time.monotonic_ns(), 4, 1)  # requests in flight, a chunk arrived
        for chunks in (1, 1, 2, 2):  # stall, stall, a chunk (re-arms), stall
            time.sleep(HANG_AFTER_S + 0.1 if chunks == 1 else 0.2)
            board.write(time.monotonic_ns(), 4, chunks)
        deadline = time.monotonic() + 15  # the second stall is dumped
        while not (run_dir / "stacks" / "hang-2").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        stats = runner.stop()
        yield Run(engine, run_dir, stats)
    finally:
        _end_engine(engine)


def test_every_process_labelled_and_sampled(run: Run) -> None:
    procs = {p["pid"]: p for p in loads((run.run_dir / STACK_PROCESSES_FILE).read_bytes())}
    main, worker = procs[run.engine.proc.pid], procs[run.engine.worker]
    assert main["role"] == "main"
    assert "fake_engine.py engine" in main["title"]
    # started after the engine, titled "fake::Worker" 3.5 s later: labelled by its last title
    assert worker["role"] == "worker"
    assert worker["title"] == "fake::Worker"
    for p in (main, worker):
        assert p["error"] == ""
        assert p["speedscope_file"] == f"stacks/{p['role']}-{p['pid']}.speedscope.json"
        assert (run.run_dir / p["speedscope_file"]).stat().st_size > 0
        assert 0 < p["t_start_ns"] < p["t_end_ns"]
    assert main["samples"] > 50
    sleeper = procs[run.engine.sleeper]  # not Python: listed once, not sampled, no error
    assert sleeper["speedscope_file"] == ""
    assert "not a Python process (sleep)" in sleeper["error"]
    assert run.stats.counts["processes"] == 2
    assert run.stats.counts["skipped"] == 1
    assert run.stats.counts["errors"] == 0
    assert run.stats.counts["rate_hz"] == 50
    assert run.stats.counts["blocking"] is False
    assert run.stats.process_cpu_ns > 0


def test_threads_named_and_busy_as_they_were(run: Run) -> None:
    import pandas as pd

    threads = pd.read_parquet(run.run_dir / STACK_THREADS_FILE)
    main = threads[threads.pid == run.engine.proc.pid]
    busy = dict(zip(main.thread_name, main.active_frac, strict=True))
    assert {"generation_loop", "light_worker"} <= set(busy)
    # ~0.9 and ~0.1 on an idle host (they share the GIL; a thread waiting for it is idle);
    # py-spy falling behind on a loaded host lowers both
    assert busy["generation_loop"] > 0.4, busy
    assert busy["generation_loop"] > 2 * busy["light_worker"], busy
    # always waiting: (almost) never sampled without --idle (py-spy's idle detection is a
    # heuristic: a thread caught while a hang dump stops the process can count once)
    assert busy.get("batch_waiter", 0.0) < 0.05, busy
    assert run.stats.counts["threads"] == len(threads)
    assert run.stats.counts["samples"] == threads.samples.sum()


def test_hot_frames_rank_the_busy_function(run: Run) -> None:
    import pandas as pd

    hot = pd.read_parquet(run.run_dir / STACK_HOT_FILE)
    assert list(hot.columns) == ["pid", "role", "tid", "thread_name", "function", "file",
                                 "line", "self_samples", "total_samples", "self_frac",
                                 "total_frac"]
    gen = hot[(hot.pid == run.engine.proc.pid) & (hot.thread_name == "generation_loop")]
    top_self = gen.sort_values("self_samples", ascending=False).iloc[0]
    assert top_self.function == "busy_decode_step"
    assert top_self.file.endswith("fake_engine.py")
    assert top_self.total_frac > 0.5
    assert top_self.role == "main"
    light = hot[hot.thread_name == "light_worker"]
    assert "light_tokenize" in set(light.function)


def test_stalls_dump_every_process_once_per_episode(run: Run) -> None:
    hangs = loads((run.run_dir / HANGS_FILE).read_bytes())
    assert len(hangs) == 2
    assert run.stats.counts["hang_dumps"] == 2
    for n, hang in enumerate(hangs, 1):
        assert hang["stalled_s"] >= HANG_AFTER_S
        assert hang["in_flight"] == 4
        assert f"stacks/hang-{n}/main-{run.engine.proc.pid}.txt" in hang["files"]
        assert not any("sleep" in f for f in hang["files"])  # not Python: not dumped
    dump = (run.run_dir / hangs[1]["files"][0]).read_text()
    assert "busy_decode_step" in dump
    assert "wait_for_batch" in dump
    assert f"-{run.engine.worker}.txt" in " ".join(hangs[1]["files"])  # (role at that time)
    # the run's warning says where the dumps are
    assert "stacks/hang-1/" in run.stats.error
    assert HANGS_FILE in run.stats.error


def _fake_denied(tmp_path: Path) -> str:
    """A py-spy that fails as the real one does without ptrace permission (its text
    recorded from py-spy 0.4.3 run as an unprivileged user)."""
    fake = tmp_path / "py-spy"
    fake.write_text("#!/bin/sh\necho \"Permission Denied: Try running again with elevated "
                    "permissions by going 'sudo env \\\"PATH=\\$PATH\\\" !!'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    return str(fake)


def _real_denied(tmp_path: Path) -> str:
    """The real py-spy run as user nobody (root and setpriv needed)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run py-spy as an unprivileged user")
    wrapper = tmp_path / "py-spy-nobody"
    wrapper.write_text(f"#!/bin/sh\nexec {setpriv} --reuid=65534 --regid=65534 "
                       f"--clear-groups {PY_SPY} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize("make", [_fake_denied, _real_denied], ids=["fake", "real-nobody"])
def test_no_ptrace_permission_is_one_warning(tmp_path: Path, make: object) -> None:
    assert callable(make)
    py_spy = make(tmp_path)
    engine = _start_engine()
    try:
        runner = ChildRunner(StackCollector(py_spy), _ctx(tmp_path, engine.proc.pid, None))
        assert runner.start(), runner.error
        # until py-spy has said why it cannot read the engine (seconds on a loaded machine)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
                p.stat().st_size for p in (tmp_path / "stacks").glob("*.py-spy.log")):
            time.sleep(0.1)
        time.sleep(0.3)
        stats = runner.stop()
    finally:
        _end_engine(engine)
    assert "\n" not in stats.error
    assert stats.error.startswith("py-spy may not read the engine's processes")
    assert PERMISSION_FIX in stats.error
    procs = loads((tmp_path / STACK_PROCESSES_FILE).read_bytes())
    main = next(p for p in procs if p["pid"] == engine.proc.pid)
    assert main["speedscope_file"] == ""
    if not ptrace_problem([engine.proc.pid]):  # else found before py-spy ran (also right)
        assert "Permission Denied" in stats.error
        assert "Permission Denied" in main["error"]


def _children(ppid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        if name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
            out.append(int(name))
    return out


def _running(pid: int) -> bool:
    """Alive and not a zombie: an orphan py-spy that exited stays a zombie when a test before
    this one made the test process a child subreaper (``servescope run`` does), until reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_killed_collector_leaves_no_py_spy_running(tmp_path: Path) -> None:
    """The runner kills a collector past its stop bound; on an attached engine that goes on,
    its py-spy must not sample forever: each gets SIGINT and writes its file."""
    from collectors.stacks.speedscope import read_speedscope

    engine = _start_engine()
    try:
        _need_ptrace(engine.proc.pid)
        runner = ChildRunner(StackCollector(), _ctx(tmp_path, engine.proc.pid, None))
        assert runner.start(), runner.error
        assert runner.pid is not None
        deadline = time.monotonic() + 15  # py-spy starts in seconds on a loaded machine
        while not (spies := _children(runner.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spies  # one py-spy record (the engine's main process; the worker comes later)
        time.sleep(1.0)  # let it take samples
        os.kill(runner.pid, 9)
        deadline = time.monotonic() + 10
        while any(_running(p) for p in spies) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in spies if _running(p)]
        runner.stop()
    finally:
        _end_engine(engine)
    assert engine.proc.returncode is not None
    profile = read_speedscope(tmp_path / "stacks" / f"main-{engine.proc.pid}.speedscope.json")
    assert profile.samples > 0


def test_stops_when_started_as_servescope_starts_it(tmp_path: Path) -> None:
    """servescope starts collectors from a thread with the terminal's signals blocked, and
    the child ignores SIGINT: py-spy must still get the stop's SIGINT and write its file, not
    be killed at the bound (test_pyspy.py checks what py-spy inherits)."""
    import signal
    import threading

    engine = _start_engine()
    runners: list[ChildRunner] = []

    def shielded() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        runner = ChildRunner(StackCollector(), _ctx(tmp_path, engine.proc.pid, None))
        if runner.start():
            runners.append(runner)

    try:
        _need_ptrace(engine.proc.pid)
        t = threading.Thread(target=shielded)
        t.start()
        t.join()
        assert runners
        time.sleep(1.0)
        t0 = time.monotonic()
        stats = runners[0].stop()
        took_s = time.monotonic() - t0
    finally:
        _end_engine(engine)
    assert stats.error == ""
    assert took_s < 5  # py-spy wrote at SIGINT; the 8 s kill bound was not reached
    assert stats.counts["samples"] > 0
