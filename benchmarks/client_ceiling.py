"""Client ingestion ceiling of servescope and its peers, against one loopback reference server.

    python benchmarks/client_ceiling.py --out benchmarks/results/ceiling-DATE.json

For each concurrency and each tool a fresh reference server (``profiler.selftest``: no
truth, TTFT 0, ITL 0, ``--output-tokens`` tokens per request, one token per SSE event)
is started; the tool runs closed-loop at that concurrency for ``--requests`` streaming
``/v1/completions`` requests, and the harness measures the CPU of the tool's whole process
tree and of the server (definitions: ``benchmarks/peers/common.py``). Writes the JSON and a
Markdown table (same name, ``.md``) and prints the table. A tool that fails is recorded
with its error; the others still run. Peers are installed by ``benchmarks/install_peers.sh``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__: list[str] = []


def _launch() -> int:
    """Re-execute under the project venv if needed, then run the matrix."""
    root = Path(__file__).resolve().parents[1]
    venv_python = root / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != venv_python.parents[1].resolve():
        os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])
    sys.path.insert(0, str(root))
    from benchmarks.ceiling import main

    return main()


if __name__ == "__main__":
    raise SystemExit(_launch())
