"""The in-process half of servescope's opt-in torch.profiler hook (standard library only: it
runs inside the wrapped server's own Python, whatever its environment).

The channel is the directory named by ``SERVESCOPE_TORCH_HOOK``, made by servescope inside the
run directory with mode 0700 (no network port, nothing another user can write). Files:

- ``hello-<pid>.json`` (this process): the hook is installed here. No command line is written
  (it may hold a key).
- ``window.json`` (servescope): open a window: ``{"id", "duration_s", "activities" (subset of
  "cpu", "cuda"), "record_shapes", "with_stack", "trace_dir"}``. Each process opens each id once.
- ``stop-<id>`` (servescope): close window ``id`` now (before ``duration_s``).
- ``status-<pid>-<id>.json`` (this process): ``state`` ``open`` (``t_start_ns``), ``done``
  (``t_start_ns``, ``t_stop_ns``, ``file``, ``export_s``, ``all_threads``), ``skipped`` (no
  torch in this process) or ``error``; times on ``time.monotonic_ns()``, servescope's clock.

The profiler records every thread (torch's ``profile_all_threads``, where this torch has it:
the serving loop usually runs on a thread other than this watcher's) with stacks and shapes
off, CPU activity and CUDA where the process has a GPU. Nothing here raises into the server:
a failure becomes an ``error`` status.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

ENV = "SERVESCOPE_TORCH_HOOK"
POLL_S = 0.05
_installed_pid: int | None = None


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def install() -> None:
    """Start the watcher thread in this process (once; again in a forked child)."""
    global _installed_pid  # noqa: PLW0603 - one watcher per process
    channel = os.environ.get(ENV, "")
    if not channel or not os.path.isdir(channel) or _installed_pid == os.getpid():
        return
    _installed_pid = os.getpid()
    _write_json(os.path.join(channel, f"hello-{os.getpid()}.json"),
                {"pid": os.getpid(), "ppid": os.getppid(), "t_ns": time.monotonic_ns(),
                 "python": sys.version.split()[0],
                 "executable": os.path.basename(sys.executable)})
    threading.Thread(target=_watch, args=(channel,), daemon=True,
                     name="servescope-torch-hook").start()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=install)


def _watch(channel: str) -> None:
    seen: set[int] = set()
    while True:
        time.sleep(POLL_S)
        cmd = _read_json(os.path.join(channel, "window.json"))
        if cmd is None or not isinstance(cmd.get("id"), int) or cmd["id"] in seen:
            continue
        seen.add(cmd["id"])
        status = os.path.join(channel, f"status-{os.getpid()}-{cmd['id']}.json")
        try:
            _window(channel, cmd, status)
        except Exception as exc:  # noqa: BLE001 - never raise into the server
            _write_json(status, {"state": "error", "error": f"{type(exc).__name__}: {exc}"[:500]})


def _window(channel: str, cmd: dict[str, Any], status: str) -> None:
    torch = sys.modules.get("torch")
    if torch is None:
        _write_json(status, {"state": "skipped", "reason": "torch is not imported here"})
        return
    from torch.profiler import ProfilerActivity, profile

    wanted = set(cmd.get("activities") or ["cpu", "cuda"])
    acts = [ProfilerActivity.CPU] if "cpu" in wanted else []
    if "cuda" in wanted and torch.cuda.is_available():
        acts.append(ProfilerActivity.CUDA)
    kw: dict[str, Any] = {}
    try:
        from torch._C._profiler import _ExperimentalConfig

        kw["experimental_config"] = _ExperimentalConfig(profile_all_threads=True)
    except (ImportError, TypeError):
        pass  # an older torch: the watcher's thread only, and the GPU's kernels
    prof = profile(activities=acts, record_shapes=bool(cmd.get("record_shapes")),
                   with_stack=bool(cmd.get("with_stack")), **kw)
    prof.start()
    t_start = time.monotonic_ns()
    _write_json(status, {"state": "open", "t_start_ns": t_start})
    deadline = t_start + int(float(cmd.get("duration_s", 2.0)) * 1e9)
    stop_file = os.path.join(channel, f"stop-{cmd['id']}")
    while time.monotonic_ns() < deadline and not os.path.exists(stop_file):
        time.sleep(POLL_S)
    t_stop = time.monotonic_ns()
    prof.stop()
    trace_dir = str(cmd.get("trace_dir") or channel)
    name = f"hook_pid{os.getpid()}.{cmd['id']}.pt.trace.json.gz"
    tmp = os.path.join(trace_dir, f".{name}.part.json.gz")  # torch gzips a .gz path
    t_export = time.monotonic()
    prof.export_chrome_trace(tmp)
    os.replace(tmp, os.path.join(trace_dir, name))
    _write_json(status, {"state": "done", "t_start_ns": t_start, "t_stop_ns": t_stop,
                         "file": name, "export_s": round(time.monotonic() - t_export, 3),
                         "all_threads": "experimental_config" in kw,
                         "activities": sorted(str(a).rsplit(".", 1)[-1].lower()
                                              for a in acts)})
