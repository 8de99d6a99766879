"""The engine's processes as a stack sampler sees them (Linux ``/proc``): their titles and
roles, which of them run Python, where py-spy is, and whether ptrace is allowed.

Everything here is cheap (a few small ``/proc`` reads per process) and never raises for a
process that vanished meanwhile.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from servescope.redact import redact_argv

if TYPE_CHECKING:
    from servescope.engines.observability import ProcessRole

__all__ = ["PERMISSION_FIX", "find_py_spy", "is_permission_error", "not_python_reason",
           "ptrace_problem", "ptrace_problem_from", "role_for", "title_of"]

PERMISSION_FIX = ("run servescope as root or grant it CAP_SYS_PTRACE (Docker: --cap-add "
                  "SYS_PTRACE; Kubernetes: securityContext.capabilities.add: [SYS_PTRACE])")
_CAP_SYS_PTRACE = 19
_PYTHON_EXE = re.compile(r"python[\d.]*[dmu]*(?:-dbg)?")
_MAPS_BYTES = 1 << 20  # enough for the interpreter's own mappings, which come first


def find_py_spy() -> str | None:
    """The py-spy executable: beside this interpreter first (the venv servescope runs in),
    then on PATH; None when there is none."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def title_of(pid: int) -> str:
    """``/proc/PID/cmdline`` as the process set it (``setproctitle`` rewrites it), its
    arguments joined by spaces, secrets masked; "" when unreadable (gone, or a kernel
    thread)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read(8192)
    except OSError:
        return ""
    parts = [p.decode(errors="replace") for p in raw.rstrip(b"\0").split(b"\0") if p]
    return " ".join(redact_argv(parts)).strip()


def role_for(title: str, roles: Sequence[ProcessRole], *, first: bool) -> str:
    """The engine spec's role whose title pattern matches, else "main" for the engine's
    first process and "process" for any other."""
    for role in roles:
        if role.matches(title):
            return role.role
    return "main" if first else "process"


def not_python_reason(pid: int) -> str:
    """"" when ``pid`` runs a Python interpreter (its executable is ``python*`` or it maps a
    ``libpython``), else why py-spy cannot sample it (one short phrase)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError as exc:
        if not os.path.exists(f"/proc/{pid}"):
            return "it exited before it was sampled"
        exe = f"? ({exc.strerror})"
    if _PYTHON_EXE.fullmatch(os.path.basename(exe).removesuffix(" (deleted)")):
        return ""
    try:
        with open(f"/proc/{pid}/maps", "rb") as fh:
            if b"libpython" in fh.read(_MAPS_BYTES):
                return ""
    except OSError:
        pass
    return f"not a Python process ({os.path.basename(exe)})"


def is_permission_error(text: str) -> bool:
    """Whether py-spy's error text says ptrace (or reading the memory) was refused."""
    low = text.lower()
    return ("permission denied" in low or "operation not permitted" in low
            or "os error 1)" in low)


def ptrace_problem_from(euid: int, cap_eff: int, ptrace_scope: int,
                        target_uids: Sequence[int]) -> str:
    """Why this process may not ptrace the engine's (py-spy reads their memory with the
    same check), "" when it may: CAP_SYS_PTRACE allows any process under Yama scopes 0–2;
    without it, scope 0 allows processes of our own uid only, scope ≥ 1 allows only our
    descendants (py-spy is not the engine's ancestor)."""
    has_cap = bool(cap_eff >> _CAP_SYS_PTRACE & 1)
    if ptrace_scope >= 3:
        return "kernel.yama.ptrace_scope is 3: ptrace is disabled on this host"
    if has_cap:
        return ""
    if ptrace_scope >= 1:
        return (f"not root and no CAP_SYS_PTRACE, with kernel.yama.ptrace_scope "
                f"{ptrace_scope}")
    others = sorted({u for u in target_uids if u != euid})
    if others:
        return (f"the engine runs as uid {others[0]}, servescope as uid {euid}, without "
                "CAP_SYS_PTRACE")
    return ""


def ptrace_problem(pids: Sequence[int]) -> str:
    """:func:`ptrace_problem_from` for this process and ``pids`` ("" off Linux, or when
    unsure: then py-spy's own error text tells)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return ""
    cap = next((int(line.split()[1], 16) for line in status.splitlines()
                if line.startswith("CapEff:")), -1)
    if cap < 0:
        return ""
    try:
        scope = int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        scope = 0  # no Yama: the classic same-uid rule
    return ptrace_problem_from(os.geteuid(), cap, scope, [u for p in pids
                                                          if (u := _uid(p)) >= 0])


def _uid(pid: int) -> int:
    """The effective uid of ``pid`` (-1 when unreadable)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Uid:"):
                    return int(line.split()[2])
    except (OSError, ValueError, IndexError):
        pass
    return -1
