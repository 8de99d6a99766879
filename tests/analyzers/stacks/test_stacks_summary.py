"""The stacks summary, from stack files written in the collector's schema."""

from __future__ import annotations

from pathlib import Path

from analyzers.stacks_summary import summarize_stacks
from servescope.engines.registry import get_spec
from servescope.records.stacks import HangDump, HotFrame, StackProcess, StackThread
from tests.analyzers.gpu._gpurun import write_stacks


def _proc(pid: int, role: str) -> StackProcess:
    return StackProcess(pid, role, f"title {pid}", f"stacks/{role}-{pid}.speedscope.json",
                        500, 0, 10, "")


def _hot(pid: int, role: str, tid: int, fn: str, self_frac: float,
         total_frac: float) -> HotFrame:
    return HotFrame(pid, role, tid, "MainThread", fn, "x.py", 1, round(self_frac * 100),
                    round(total_frac * 100), self_frac, total_frac)


def _write(tmp: Path) -> None:
    write_stacks(
        tmp, [_proc(10, "frontend"), _proc(20, "engine_core")],
        [StackThread(10, "frontend", 11, "MainThread", 80, 0.16),
         StackThread(10, "frontend", 12, "uvloop", 300, 0.60),
         StackThread(20, "engine_core", 21, "MainThread", 470, 0.94),
         StackThread(20, "engine_core", 22, "Thread-3", 5, 0.01)],
        [_hot(20, "engine_core", 21, "execute_model", 0.10, 0.80),
         _hot(20, "engine_core", 21, "schedule", 0.45, 0.50),
         _hot(20, "engine_core", 21, "run_busy_loop", 0.0, 1.0),
         _hot(10, "frontend", 12, "handle", 0.3, 0.9)],
        [HangDump(5, 12.5, 3, ("stacks/hang-1/engine_core-20.txt",), ())])


def test_roles_busiest_threads_and_hangs(tmp_path: Path) -> None:
    _write(tmp_path)
    s = summarize_stacks(tmp_path, get_spec("vllm"))
    assert s is not None
    assert [r.role for r in s.roles] == ["engine_core", "frontend"]
    core = s.role("engine_core")
    assert core.runs_model
    assert core.pids == (20,)
    assert core.busiest is not None
    assert (core.busiest.tid, core.busiest.active_frac) == (21, 0.94)
    assert [f.function for f in core.busiest.top] == ["schedule", "execute_model",
                                                     "run_busy_loop"]
    front = s.role("frontend")
    assert not front.runs_model
    assert front.busiest is not None
    assert front.busiest.tid == 12
    assert [t.tid for t in front.threads] == [12, 11]
    assert s.hangs[0].stalled_s == 12.5
    assert s.hangs[0].files == ("stacks/hang-1/engine_core-20.txt",)
    assert s.model_thread is not None
    assert s.model_thread.tid == 21
    assert "engine_core" in s.model_thread_why


def test_model_thread_without_a_model_role_is_the_busiest(tmp_path: Path) -> None:
    write_stacks(tmp_path, [_proc(1, "process")],
                 [StackThread(1, "process", 2, "MainThread", 10, 0.05),
                  StackThread(1, "process", 3, "generation-loop", 190, 0.95)],
                 [_hot(1, "process", 3, "_generation_step", 0.2, 0.9)])
    s = summarize_stacks(tmp_path, get_spec("transformers"))
    assert s is not None
    assert s.model_thread is not None
    assert s.model_thread.tid == 3
    assert s.model_thread.top[0].function == "_generation_step"
    assert "busiest thread of every process" in s.model_thread_why


def test_no_stacks_directory_is_none(tmp_path: Path) -> None:
    assert summarize_stacks(tmp_path) is None


def test_unreadable_file_is_a_warning_and_the_rest_is_used(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "stacks" / "processes.json").write_text("{not json")
    (tmp_path / "stacks" / "hot.parquet").write_bytes(b"not parquet")
    s = summarize_stacks(tmp_path, get_spec("vllm"))
    assert s is not None
    assert len(s.warnings) == 2
    assert "processes.json" in s.warnings[0]
    assert "hot.parquet" in s.warnings[1]
    assert s.processes == ()
    assert s.model_thread is not None
    assert s.model_thread.tid == 21
    assert s.model_thread.top == ()
