"""NCCL's chosen transport, from its ``NCCL_DEBUG=INFO`` log lines.

NCCL prints one line per channel and peer when it connects, e.g.::

    host:123:456 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read
    host:123:456 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via SHM/direct/direct
    host:123:456 [0] NCCL INFO Channel 00/0 : 1[1] -> 0[0] [send] via NET/IB/0/GDRDMA
    host:123:456 [0] NCCL INFO Channel 00/0 : 1[1] -> 0[0] [receive] via NET/Socket/0

and which network plugin it uses (``NCCL INFO Using network IB`` / ``Socket``), and its
version (``NCCL version 2.21.5+cuda12.4``). :func:`parse_nccl_log` counts the transports
(the part after ``via`` up to the first ``/``, with NET's plugin: ``P2P``, ``SHM``,
``NET/IB``, ``NET/Socket``, ``CollNet``, ``NVLS``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NcclTransports", "parse_nccl_log"]

_VIA = re.compile(r"NCCL INFO Channel \d+/\d+ : \d+\[[^\]]*\] -> \d+\[[^\]]*\]"
                  r"(?: \[(?:send|receive)\])? via (\S+)")
_NET = re.compile(r"NCCL INFO Using network (\S+)")
_VERSION = re.compile(r"NCCL version (\S+)")
_NVLS = re.compile(r"NCCL INFO .*NVLS multicast support is (available|not available)")


@dataclass(frozen=True, slots=True)
class NcclTransports:
    version: str = ""
    network: str = ""  # the net plugin: IB, Socket, ... ("" when not printed)
    transports: dict[str, int] = field(default_factory=dict)  # transport -> channel lines
    nvls: str = ""

    @property
    def summary(self) -> str:
        """The transports used, most channel lines first (``"P2P"``, ``"NET/IB+SHM"``)."""
        return "+".join(t for t, _ in sorted(self.transports.items(), key=lambda kv: -kv[1]))

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "network": self.network,
                "transports": dict(self.transports), "summary": self.summary,
                "nvls": self.nvls}


def _kind(via: str) -> str:
    parts = via.split("/")
    if parts[0] == "NET" and len(parts) > 1:
        return f"NET/{parts[1]}"
    return parts[0]


def parse_nccl_log(lines: Iterable[str]) -> NcclTransports:
    """The transports of an ``NCCL_DEBUG=INFO`` log (any other line is ignored)."""
    counts: Counter[str] = Counter()
    version = network = nvls = ""
    for line in lines:
        if "NCCL" not in line:
            continue
        m = _VIA.search(line)
        if m:
            counts[_kind(m.group(1))] += 1
            continue
        if not network and (m := _NET.search(line)):
            network = m.group(1)
        elif not version and (m := _VERSION.search(line)):
            version = m.group(1)
        elif not nvls and (m := _NVLS.search(line)):
            nvls = m.group(1)
    return NcclTransports(version, network, dict(counts), nvls)
