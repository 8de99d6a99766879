"""Opening and closing one profiler window while the load runs.

:class:`SteadyGate` says when the load is steady enough to open it: a request has ended
(the analysis' steady state starts no earlier than the first completion:
:mod:`analyzers.steady_state`) and the requests in flight have been at (three quarters of)
the load's target, with tokens arriving, for ``settle_s`` without a break.
:class:`HttpWindow` drives the engine's own ``/start_profile`` and ``/stop_profile``
(bounded in engine steps where the engine allows it, which ends the window by itself);
:class:`HookWindow` drives servescope's in-process hook through its channel directory
(bounded in time). Both report when the engine acknowledged the start and when the window
ended, and which new trace files appeared; neither raises (errors are returned).
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.base import Activity
from servescope.clock import now_ns
from servescope.engines.observability import HttpCall, ProfilerControl

__all__ = ["TRACE_SUFFIXES", "HookWindow", "HttpWindow", "SteadyGate", "new_trace_files"]

TRACE_SUFFIXES = (".pt.trace.json.gz", ".trace.json.gz", ".json.gz", ".json")
_STABLE_S = 1.0  # a trace file is complete once its size held this long
_POLL_S = 0.1
_LOADED_FRAC = 0.75  # of the target in flight counts as loaded
_TOKEN_FRESH_NS = 1_000_000_000  # tokens arrived within this: the load is moving


class SteadyGate:
    """Fed the load's :class:`Activity` every tick; :meth:`update` is True once the load has
    been loaded (module doc) for ``settle_s``."""

    def __init__(self, target_in_flight: int, settle_s: float) -> None:
        self.need = max(1, math.ceil(_LOADED_FRAC * target_in_flight)) if target_in_flight else 1
        self.settle_ns = int(settle_s * 1e9)
        self.since_ns = 0

    def update(self, a: Activity, now: int) -> bool:
        moving = a.updated_ns > 0 and now - a.last_token_ns <= _TOKEN_FRESH_NS
        ramped = a.completed != 0  # -1: the load does not report completions
        if a.in_flight >= self.need and moving and ramped:
            if self.since_ns == 0:
                self.since_ns = now
            return now - self.since_ns >= self.settle_ns
        self.since_ns = 0
        return False


def new_trace_files(trace_dir: Path, before: set[str]) -> dict[str, int]:
    """Trace files in ``trace_dir`` not in ``before`` (name → size); hidden and partial files
    (a leading dot) are not traces yet."""
    out: dict[str, int] = {}
    try:
        entries = list(os.scandir(trace_dir))
    except OSError:
        return out
    for e in entries:
        if e.name in before or e.name.startswith(".") or not e.name.endswith(TRACE_SUFFIXES):
            continue
        try:
            out[e.name] = e.stat().st_size
        except OSError:
            continue
    return out


def wait_files(trace_dir: Path, before: set[str], deadline_ns: int, *,
               want: int = 1, stop: Any = None) -> dict[str, int]:
    """New trace files once at least ``want`` appeared and none changed size for
    :data:`_STABLE_S` (or at the deadline: what there is). ``stop``: an Event ending it early."""
    last: dict[str, int] = {}
    stable_since = 0
    while now_ns() < deadline_ns:
        files = new_trace_files(trace_dir, before)
        if files != last or len(files) < want:
            last, stable_since = files, now_ns()
        elif now_ns() - stable_since >= _STABLE_S * 1e9:
            return files
        if stop is not None and stop.is_set():
            break
        time.sleep(_POLL_S)
    return new_trace_files(trace_dir, before)


@dataclass(slots=True)
class Opened:
    ok: bool
    t_ns: int  # acknowledged (0 when not)
    error: str = ""


def _call(base_url: str, call: HttpCall, body: Mapping[str, Any] | None,
          headers: Mapping[str, str], timeout_s: float) -> str:
    """One request to the engine's own API: "" on a 2xx answer, else why not (one line)."""
    data = json.dumps(dict(body)).encode() if body is not None else None
    req = urllib.request.Request(base_url.rstrip("/") + call.path, data=data,  # noqa: S310
                                 method=call.method,
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - our URL
            resp.read(1 << 16)
            return ""
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
        hint = " (the server was started without the engine's profiler flag?)" \
            if exc.code == 404 else ""
        return f"{call.method} {call.path}: HTTP {exc.code} {text[:200]}{hint}"
    except (OSError, ValueError) as exc:
        return f"{call.method} {call.path}: {type(exc).__name__}: {exc}"


class HttpWindow:
    """The engine's own window: ``start`` with the step bound and output directory the engine
    takes, ``stop`` when it does not end by itself."""

    def __init__(self, profiler: ProfilerControl, base_url: str, headers: Mapping[str, str],
                 trace_dir: Path, steps: int) -> None:
        self.p, self.base_url, self.headers = profiler, base_url, dict(headers)
        self.trace_dir, self.steps = trace_dir, steps
        self.before: set[str] = set()

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.p.start_body)
        if self.p.steps_field and self.steps > 0:
            body[self.p.steps_field] = self.steps
        if self.p.output_dir_field:
            body[self.p.output_dir_field] = str(self.trace_dir)
        return body

    def open(self, timeout_s: float) -> Opened:
        self.before = set(new_trace_files(self.trace_dir, set()))
        err = _call(self.base_url, self.p.start, self.body(), self.headers, timeout_s)
        return Opened(not err, now_ns() if not err else 0, err)

    def ends_by_itself(self) -> bool:
        return bool(self.p.steps_field and self.steps > 0)

    def close(self, timeout_s: float) -> str:
        """Ask the engine to end the window (a window already ended is not an error)."""
        if self.p.stop is None:
            return ""
        return _call(self.base_url, self.p.stop, None, self.headers, timeout_s)


class HookWindow:
    """servescope's in-process hook (:mod:`servescope_torch_hook`): ``window.json`` opens a
    window in every hooked process, ``stop-<id>`` ends it early, ``status-<pid>-<id>.json``
    says how each process fared."""

    def __init__(self, channel: Path, trace_dir: Path, duration_s: float) -> None:
        self.channel, self.trace_dir, self.duration_s = channel, trace_dir, duration_s
        self.id = 1
        self.before: set[str] = set()

    def hooked(self) -> list[int]:
        """The processes that loaded the hook."""
        pids = []
        for p in self.channel.glob("hello-*.json"):
            try:
                pids.append(int(p.name[6:-5]))
            except ValueError:
                continue
        return sorted(pids)

    def statuses(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for p in self.channel.glob(f"status-*-{self.id}.json"):
            try:
                data = json.loads(p.read_text())
                out[int(p.name.split("-")[1])] = data if isinstance(data, dict) else {}
            except (OSError, ValueError, IndexError):
                continue
        return out

    def open(self, timeout_s: float) -> Opened:
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        self.before = set(new_trace_files(self.trace_dir, set()))
        if not self.hooked():
            return Opened(False, 0, "no process of the engine loaded the hook (is it a "
                                    "Python program started directly by the command?)")
        cmd = {"id": self.id, "duration_s": self.duration_s, "activities": ["cpu", "cuda"],
               "record_shapes": False, "with_stack": False, "trace_dir": str(self.trace_dir)}
        tmp = self.channel / ".window.json.tmp"
        tmp.write_text(json.dumps(cmd))
        os.replace(tmp, self.channel / "window.json")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            st = self.statuses()
            opened = [int(s["t_start_ns"]) for s in st.values() if "t_start_ns" in s]
            if opened:
                return Opened(True, min(opened))
            if st and len(st) >= len(self.hooked()):  # every process answered, none opened
                why = "; ".join(f"pid {pid}: {s.get('reason') or s.get('error') or s}"
                                for pid, s in sorted(st.items()))
                return Opened(False, 0, f"no hooked process opened a window ({why})")
            time.sleep(_POLL_S)
        return Opened(False, 0, f"no hooked process answered within {timeout_s:g} s")

    def close(self) -> None:
        (self.channel / f"stop-{self.id}").touch()

    def finished(self) -> bool:
        """Every process that opened the window is done with it (or failed)."""
        st = self.statuses()
        return bool(st) and all(s.get("state") in ("done", "skipped", "error")
                                for s in st.values())
