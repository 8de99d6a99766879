"""Process discovery, roles, ptrace rules and the collector's checks before it starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collectors.base import CollectContext, CollectorUnavailable, EngineFacts
from collectors.stacks import procs
from collectors.stacks.collector import StackCollector
from collectors.stacks.procs import (
    is_permission_error,
    not_python_reason,
    ptrace_problem_from,
    role_for,
    title_of,
)
from collectors.stacks.pyspy import error_text
from servescope.clock import take_anchor
from servescope.engines.registry import ENGINES

CAP_SYS_PTRACE = 1 << 19
ROOT_CAPS = 0x1FFFEFFFFFF  # CapEff of root in this container (read from /proc/self/status)


def test_roles_from_the_engine_specs_own_titles() -> None:
    vllm = ENGINES.get("vllm").process_roles
    assert role_for("VLLM::EngineCore", vllm, first=False) == "engine_core"
    assert role_for("VLLM::Worker_TP1", vllm, first=False) == "worker"
    assert role_for("python -m vllm.entrypoints.openai.api_server", vllm, first=True) == "main"
    assert role_for("python -c pass", vllm, first=False) == "process"
    sglang = ENGINES.get("sglang").process_roles
    examples = [(r.role, e) for r in sglang for e in r.examples]
    assert examples  # every example title of the spec labels as its role
    for role, title in examples:
        assert role_for(title, sglang, first=False) == role


def test_title_and_python_detection_of_real_processes() -> None:
    py = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                           "--api-key", "sk-secret-123"])
    sh = subprocess.Popen(["sleep", "30"])
    try:
        title = title_of(py.pid)
        assert title.endswith("time.sleep(30) --api-key ***REDACTED***")
        assert "sk-secret" not in title
        assert not_python_reason(py.pid) == ""
        assert not_python_reason(sh.pid) == "not a Python process (sleep)"
    finally:
        for p in (py, sh):
            p.kill()
            p.wait()
    assert not_python_reason(py.pid) == "it exited before it was sampled"
    assert title_of(py.pid) == ""


@pytest.mark.parametrize(("euid", "caps", "scope", "uids", "expect"), [
    (0, ROOT_CAPS, 0, [0], ""),
    (0, ROOT_CAPS, 1, [0, 1000], ""),  # CAP_SYS_PTRACE: any process, scopes 0-2
    (0, ROOT_CAPS & ~CAP_SYS_PTRACE, 1, [0], "no CAP_SYS_PTRACE"),  # dropped (Docker)
    (1000, 0, 0, [1000], ""),  # classic rule: our own uid
    (1000, 0, 0, [0], "the engine runs as uid 0"),
    (1000, 0, 1, [1000], "ptrace_scope 1"),  # only descendants; py-spy is not the parent
    (1000, CAP_SYS_PTRACE, 2, [0], ""),
    (0, ROOT_CAPS, 3, [0], "ptrace is disabled"),
])
def test_ptrace_rules(euid: int, caps: int, scope: int, uids: list[int], expect: str) -> None:
    got = ptrace_problem_from(euid, caps, scope, uids)
    assert (expect in got and got) if expect else got == ""


def test_pyspy_error_text_in_one_line() -> None:
    text = ("py-spy> Sampling process 50 times a second. Press Control-C to exit.\n\n"
            "Error: Failed to get process executable name. Check that the process is running.\n"
            "\nCaused by:\n    0: Permission denied (os error 13)\n\nStack backtrace:\n"
            "   0: anyhow::error\n")
    one = error_text(text)
    assert one == ("Error: Failed to get process executable name. Check that the process is "
                   "running. Caused by:")
    assert is_permission_error(text)
    assert not is_permission_error(one)
    assert is_permission_error("Permission Denied: Try running again with elevated permissions")
    assert not is_permission_error("Error: Failed to find python version from target process")


def _ctx(tmp_path: Path, pid: int | None, **opts: object) -> CollectContext:
    return CollectContext(tmp_path, "http://127.0.0.1:1", EngineFacts("openai", pid=pid),
                          take_anchor(), options={"stacks": opts})


def test_missing_py_spy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/bin/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert procs.find_py_spy() is None
    from collectors.stacks import collector

    monkeypatch.setattr(collector, "find_py_spy", procs.find_py_spy)
    with pytest.raises(CollectorUnavailable, match=r"pip install 'servescope\[profiling\]'"):
        StackCollector().validate_environment()


def test_checks_before_start(tmp_path: Path) -> None:
    c = StackCollector()
    assert "unknown" in c.skip_reason(_ctx(tmp_path, None))
    assert c.skip_reason(_ctx(tmp_path, 1)) == ""
    assert c.stop_bound_s(_ctx(tmp_path, 1, rate_hz=50, blocking=False, hang_after_s=30)) > 30
    for bad, why in (({"rate_hz": 0}, "rate_hz"), ({"hang_after_s": 0}, "hang_after_s"),
                     ({"nope": 1}, "unknown stacks option")):
        with pytest.raises(ValueError, match=why):
            c.stop_bound_s(_ctx(tmp_path, 1, **bad))
    never = c.stop()  # never started: zero counts
    assert never.counts["processes"] == 0
    assert never.counts["hang_dumps"] == 0
    assert never.error == ""


def test_registry_makes_it_by_name() -> None:
    from collectors.base import Collector
    from collectors.registry import make_collectors

    [c] = make_collectors(["stacks"])
    assert isinstance(c, StackCollector)
    assert isinstance(c, Collector)
    assert (c.name, c.label) == ("stacks", "stack sampler")
    assert c.py_spy is not None  # validate_environment found it
