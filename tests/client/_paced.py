"""The independent paced SSE server (``benchmarks/paced_server.py``) in a subprocess, with
its own record of when each event was handed to the kernel."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SERVER = Path(__file__).resolve().parents[2] / "benchmarks" / "paced_server.py"


@dataclass
class Paced:
    url: str
    truth_path: Path
    truth: dict[str, dict[str, Any]]


@contextmanager
def paced_server(tmp: Path, *args: str) -> Iterator[Paced]:
    """Yield the running server; its truth (x-request-id → record) is filled on exit."""
    truth = tmp / "truth.jsonl"
    proc = subprocess.Popen([sys.executable, str(_SERVER), "--truth", str(truth), *args],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    handle = Paced(f"http://127.0.0.1:{port}", truth, {})
    try:
        yield handle
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    handle.truth.update({d["x_request_id"]: d for d in
                         map(json.loads, truth.read_text().splitlines())})
