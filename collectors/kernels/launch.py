"""What ``--collect kernels`` changes in the serving command before it starts, so that a
profiler window can be opened later: the engine's own launch flag (vLLM's
``--profiler-config``, with servescope's cheap settings and a trace directory inside the run
directory), the timeouts a window's export can exceed, or, when the user asked for it
(``--kernels-hook``), servescope's in-process torch.profiler hook on the command's
``PYTHONPATH`` with a private channel directory. Never a shell; the argv stays a list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from servescope.engines.observability import ProfilerControl

__all__ = ["HOOK_ENV", "HOOK_PATH", "LaunchChange", "amend_for_hook", "amend_for_profiler",
           "user_trace_dir"]

HOOK_ENV = "SERVESCOPE_TORCH_HOOK"
HOOK_PATH = Path(__file__).resolve().parent / "hook_path"  # sitecustomize + the hook


@dataclass(slots=True)
class LaunchChange:
    """The command and environment to start, what changed (lines for the run's notes), and
    where the engine will write its traces (None: unknown)."""

    argv: list[str]
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)
    trace_dir: Path | None = None


def _flag_value(argv: Sequence[str], flag: str) -> tuple[int, str | None] | None:
    """Where ``flag`` (or ``flag=…``, or a dotted ``flag.key=…``) is in ``argv``, and its value
    when it is the whole-JSON form; None when absent."""
    for i, arg in enumerate(argv):
        if arg == flag:
            return i, argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith(flag + "="):
            return i, arg.split("=", 1)[1]
        if arg.startswith(flag + "."):
            return i, None
    return None


def user_trace_dir(argv: Sequence[str], profiler: ProfilerControl) -> Path | None:
    """The trace directory of a launch flag the user already gave (JSON or dotted form)."""
    if not profiler.launch_flags or profiler.launch_dir_key is None:
        return None
    flag, key = profiler.launch_flags[0], profiler.launch_dir_key
    for i, arg in enumerate(argv):
        dotted = f"{flag}.{key}"
        if arg.startswith(dotted + "="):
            return Path(arg.split("=", 1)[1])
        if arg == dotted and i + 1 < len(argv):
            return Path(argv[i + 1])
    found = _flag_value(argv, flag)
    if found is None or found[1] is None:
        return None
    try:
        value = json.loads(found[1])
    except ValueError:
        return None
    d = value.get(key) if isinstance(value, dict) else None
    return Path(d) if isinstance(d, str) and d else None


def _set_env(env: dict[str, str], wanted: Mapping[str, str], notes: list[str]) -> None:
    for name, value in wanted.items():
        if name in env:
            notes.append(f"kept the user's {name}={env[name]}")
        else:
            env[name] = value
            notes.append(f"set {name}={value}")


def amend_for_profiler(argv: Sequence[str], env: Mapping[str, str],
                       profiler: ProfilerControl, trace_dir: Path) -> LaunchChange:
    """The engine's own profiler enabled at launch, writing to ``trace_dir``. A launch flag the
    user already gave is kept as it is (their settings, their directory: its traces are read
    from there when it is known)."""
    out = LaunchChange(list(argv), dict(env))
    if not profiler.launch_flags:  # always there (SGLang, TensorRT-LLM): nothing to add
        out.trace_dir = trace_dir
        return out
    flag = profiler.launch_flags[0]
    if _flag_value(argv, flag) is not None:
        out.trace_dir = user_trace_dir(argv, profiler)
        where = str(out.trace_dir) if out.trace_dir else "an unknown directory"
        out.notes.append(f"kept the user's {flag} (its settings apply; traces read from "
                         f"{where})")
    else:
        settings = dict(profiler.launch_settings)
        if profiler.launch_dir_key is not None:
            settings[profiler.launch_dir_key] = str(trace_dir)
        value = json.dumps(settings, separators=(",", ":"))
        out.argv += [flag, value]
        out.trace_dir = trace_dir
        out.notes.append(f"added {flag} {value}")
    _set_env(out.env, profiler.launch_env, out.notes)
    return out


def amend_for_hook(argv: Sequence[str], env: Mapping[str, str], channel: Path) -> LaunchChange:
    """servescope's hook first on ``PYTHONPATH``, the channel directory (made here, mode
    0700) in :data:`HOOK_ENV`."""
    channel.mkdir(parents=True, exist_ok=True)
    os.chmod(channel, 0o700)
    out = LaunchChange(list(argv), dict(env), trace_dir=channel.parent / "raw")
    old = out.env.get("PYTHONPATH", "")
    out.env["PYTHONPATH"] = str(HOOK_PATH) + (os.pathsep + old if old else "")
    out.env[HOOK_ENV] = str(channel)
    out.notes.append(f"in-process torch.profiler hook: PYTHONPATH starts with {HOOK_PATH}, "
                     f"channel {channel}")
    return out
