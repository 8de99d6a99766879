"""perftest's ``ib_write_bw`` / ``ib_read_bw``: run (when installed) and parse.

The client measures and prints, after its connection block, a table::

     #bytes     #iterations    BW peak[MiB/sec]    BW average[MiB/sec]   MsgRate[Mpps]
     65536      5000             11030.78            11030.45            0.176487

in MiB/s (2^20 bytes; perftest before 4.5 printed the same numbers as ``MB/sec``) or, with
``--report_gbits``, Gb/s (1e9 bits). Lines in between (warnings such as "Conflicting CPU
frequency values") are skipped. ``Link type`` in the header says IB or Ethernet (RoCE).
perftest reports an average over its iterations, not repeats: a sample has one "repeat",
the time per message implied by the average (bytes / average bandwidth).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from kernels_bench.results import BenchRun, make_sample

__all__ = ["PerftestResult", "PerftestRow", "parse_perftest", "port_rate_bytes_per_s",
           "run_perftest"]

_HEADER = re.compile(r"#bytes\s+#iterations\s+BW peak\[(\w+)/sec\]\s+BW average\[(\w+)/sec\]")
_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")
_LINK = re.compile(r"Link type\s*:\s*(\w+)")
_DEVICE = re.compile(r"Device\s*:\s*(\S+)")
_UNIT_BYTES = {"MiB": float(1 << 20), "MB": float(1 << 20), "Gb": 1e9 / 8, "GB": 1e9}
_TOOLS = {"ib_write_bw": "ib_write", "ib_read_bw": "ib_read"}


@dataclass(frozen=True, slots=True)
class PerftestRow:
    size_bytes: int
    iterations: int
    peak_bytes_per_s: float
    average_bytes_per_s: float
    msg_rate_per_s: float


@dataclass(frozen=True, slots=True)
class PerftestResult:
    rows: tuple[PerftestRow, ...]
    unit: str  # as printed: MiB, MB or Gb
    link_type: str  # IB, Ethernet, "" when not printed
    device: str


def parse_perftest(text: str) -> PerftestResult:
    """The bandwidth table of a perftest BW client's output; ValueError when there is none."""
    unit = ""
    rows: list[PerftestRow] = []
    for line in text.splitlines():
        h = _HEADER.search(line)
        if h:
            if h.group(1) not in _UNIT_BYTES:
                raise ValueError(f"perftest: unknown unit {h.group(1)}/sec")
            unit = h.group(1)
            continue
        m = _ROW.match(line) if unit else None
        if m:
            k = _UNIT_BYTES[unit]
            rows.append(PerftestRow(int(m.group(1)), int(m.group(2)), float(m.group(3)) * k,
                                    float(m.group(4)) * k, float(m.group(5)) * 1e6))
    if not rows:
        raise ValueError("perftest output has no bandwidth table (#bytes ... BW average)")
    link = _LINK.search(text)
    dev = _DEVICE.search(text)
    return PerftestResult(tuple(rows), unit, link.group(1) if link else "",
                          dev.group(1) if dev else "")


def port_rate_bytes_per_s(device: str, port: int = 1,
                          root: Path = Path("/sys/class/infiniband")) -> float | None:
    """The port's signalling rate from sysfs (``400 Gb/sec (4X NDR)``) in bytes/s."""
    try:
        text = (root / device / "ports" / str(port) / "rate").read_text()
    except OSError:
        return None
    m = re.match(r"\s*([\d.]+)\s*Gb/sec", text)
    return float(m.group(1)) * 1e9 / 8 if m else None


def run_perftest(tool: str, server: str | None, size_bytes: int,
                 extra: Sequence[str] = (), timeout_s: float = 300.0) -> BenchRun | None:
    """Run ``tool`` as the client of ``server`` (None: as the server, returning None) and
    parse its table into a run. ValueError when perftest is not installed."""
    if tool not in _TOOLS:
        raise ValueError(f"--tool {tool!r}: use {' or '.join(_TOOLS)}")
    exe = shutil.which(tool)
    if exe is None:
        raise ValueError(f"{tool} is not installed (perftest: apt install perftest)")
    cmd = [exe, "-s", str(size_bytes), *extra, *([server] if server else [])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise ValueError(f"{tool} exited with {done.returncode}: "
                         f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    if server is None:
        return None
    res = parse_perftest(done.stdout)
    rate = port_rate_bytes_per_s(res.device) if res.device else None
    run = BenchRun("net", environment={"perftest": {"command": cmd, "unit": res.unit,
                                                    "link_type": res.link_type,
                                                    "device": res.device,
                                                    "port_rate_bytes_per_s": rate}})
    for r in res.rows:
        t = max(round(r.size_bytes / r.average_bytes_per_s * 1e9), 1)
        s = make_sample(_TOOLS[tool], "perftest", size_bytes=r.size_bytes,
                        moved_bytes=r.size_bytes, times_ns=[t], peaks=None, dtype="uint8",
                        transport=res.link_type or "rdma", device=res.device or "rdma")
        run.add(replace(s, peak_datasheet_bytes_per_s=rate,
                        peak_datasheet_source="sysfs port rate" if rate else ""), [t])
    return run
