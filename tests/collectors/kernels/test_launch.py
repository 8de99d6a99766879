"""The serving command ``--collect kernels`` starts: vLLM's profiler flag with servescope's
cheap settings, the user's own flag kept, the hook on PYTHONPATH (tested against the
engine specs' data, with the command lists as the user would type them)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from collectors.kernels.launch import (
    HOOK_ENV,
    HOOK_PATH,
    amend_for_hook,
    amend_for_profiler,
    user_trace_dir,
)
from servescope.engines.observability import ProfilerControl
from servescope.engines.registry import get_spec

VLLM = ["vllm", "serve", "/m", "--port", "8000"]


def _vllm_profiler() -> ProfilerControl:
    p = get_spec("vllm").profiler
    assert p is not None
    return p


def test_vllm_gets_a_cheap_profiler_config_writing_into_the_run(tmp_path: Path) -> None:
    ch = amend_for_profiler(VLLM, {"PATH": "/bin"}, _vllm_profiler(), tmp_path / "raw")
    assert ch.argv[:5] == VLLM
    assert ch.argv[5] == "--profiler-config"
    cfg = json.loads(ch.argv[6])
    assert cfg == {"profiler": "torch", "torch_profiler_with_stack": False,
                   "torch_profiler_record_shapes": False, "ignore_frontend": True,
                   "torch_profiler_dir": str(tmp_path / "raw")}
    assert ch.trace_dir == tmp_path / "raw"
    assert ch.env["VLLM_RPC_TIMEOUT"] == "1200000"
    assert ch.env["VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS"] == "1200"
    assert ch.env["PATH"] == "/bin"


def test_the_users_own_settings_are_kept(tmp_path: Path) -> None:
    mine = json.dumps({"profiler": "torch", "torch_profiler_dir": "/data/tr"})
    argv = [*VLLM, "--profiler-config", mine]
    ch = amend_for_profiler(argv, {"VLLM_RPC_TIMEOUT": "5"}, _vllm_profiler(), tmp_path)
    assert ch.argv == argv  # nothing added
    assert ch.trace_dir == Path("/data/tr")
    assert ch.env["VLLM_RPC_TIMEOUT"] == "5"
    assert any("kept the user's --profiler-config" in n for n in ch.notes)
    assert any("kept the user's VLLM_RPC_TIMEOUT=5" in n for n in ch.notes)


def test_trace_dir_of_every_flag_form() -> None:
    p = _vllm_profiler()
    assert user_trace_dir([*VLLM, "--profiler-config.torch_profiler_dir=/a"], p) == Path("/a")
    assert user_trace_dir([*VLLM, "--profiler-config.torch_profiler_dir", "/b"], p) == Path("/b")
    assert user_trace_dir([*VLLM, '--profiler-config={"torch_profiler_dir": "/c"}'], p) \
        == Path("/c")
    assert user_trace_dir([*VLLM, "--profiler-config", "{not json"], p) is None
    assert user_trace_dir(VLLM, p) is None


def test_engines_whose_window_is_always_there_get_nothing_added(tmp_path: Path) -> None:
    for name in ("sglang", "trtllm"):
        p = get_spec(name).profiler
        assert p is not None
        argv = ["python", "-m", "x"]
        ch = amend_for_profiler(argv, {}, p, tmp_path)
        assert ch.argv == argv
        assert ch.env == {}
        assert ch.trace_dir == tmp_path


def test_hook_goes_first_on_pythonpath_with_a_private_channel(tmp_path: Path) -> None:
    argv = ["transformers", "serve", "/m"]
    ch = amend_for_hook(argv, {"PYTHONPATH": "/mine"}, tmp_path / "kernels" / "hook")
    assert ch.argv == argv
    assert ch.env["PYTHONPATH"] == f"{HOOK_PATH}{os.pathsep}/mine"
    channel = Path(ch.env[HOOK_ENV])
    assert channel == tmp_path / "kernels" / "hook"
    assert stat.S_IMODE(channel.stat().st_mode) == 0o700
    assert ch.trace_dir == tmp_path / "kernels" / "raw"
    assert (HOOK_PATH / "sitecustomize.py").is_file()
    assert sorted(p.name for p in HOOK_PATH.glob("*.py")) == ["servescope_torch_hook.py",
                                                              "sitecustomize.py"]
