"""Per-packet arrival times from a packet socket, for the client's plain-HTTP reads.

The TCP receive timestamp (``SO_TIMESTAMPNS``, :mod:`collectors.client.kernel_transport`)
is one time per read: when the client has not read a stream before its next packet
arrives, the kernel merges the two in the receive queue and keeps the newer time. A packet
socket (``AF_PACKET``, Linux, needs ``CAP_NET_RAW``) gets its own copy of every packet,
each with the kernel's receive time and never merged. :class:`WireTap` opens one per
client process, filtered in the kernel (classic BPF: IPv4 TCP from the server's port,
headers only), and :meth:`WireTap.split` tells a connection's read which bytes came in
which packet, so each part of the read is delivered with its own packet's time.

Bytes map to packets by TCP sequence number: a connection's first payload packet from the
server fixes its start, and from there each read of ``k`` bytes takes the next ``k`` bytes
of the queued packets (retransmitted bytes already taken are skipped). Loopback shows each
packet twice (outgoing, then incoming): the incoming copy (``PACKET_HOST``) is the one
kept, as the TCP socket's own stamp is. Where the packets do not cover a read (a gap, a
queue overflow) that connection falls back to the read's TCP stamp for good, counted in
:attr:`WireTap.fallbacks`.

Opt in with ``SERVESCOPE_WIRE_STAMPS=1``; without the privilege, or on another platform,
:func:`open_tap` returns None with the reason and the client keeps the TCP stamps.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys
import time
from collections import deque

from servescope.clock import now_ns

__all__ = ["ENV", "WireTap", "open_tap", "tcp_src_port_filter"]

ENV = "SERVESCOPE_WIRE_STAMPS"
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_ETH_P_IP = 0x0800
_PACKET_HOST = 0
_SNAP = 128  # Ethernet + IPv4 + TCP headers with options fit
_RCVBUF = 64 << 20
_NS = 1_000_000_000
_TIMESPEC = struct.Struct("@qq")
_SEQ = 1 << 32
_wall_ns = time.time_ns

Key = tuple[int, int]  # (server port, client port)


def tcp_src_port_filter(port: int, snap: int = _SNAP) -> bytes:
    """Classic BPF (``tcpdump -dd 'inbound and ip and tcp src port PORT'``, accepting ``snap``
    bytes) as the ``struct sock_filter`` array: loopback's outgoing copy of each packet is
    dropped in the kernel."""
    prog = [(0x28, 0, 0, 0xFFFFF004), (0x15, 10, 0, 4),  # skb->pkt_type == OUTGOING: drop
            (0x28, 0, 0, 12), (0x15, 0, 8, _ETH_P_IP), (0x30, 0, 0, 23), (0x15, 0, 6, 6),
            (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF), (0xB1, 0, 0, 14), (0x48, 0, 0, 14),
            (0x15, 0, 1, port), (0x06, 0, 0, snap), (0x06, 0, 0, 0)]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog)


class WireTap:
    """One packet socket for the connections of one client process to ``server_port``."""

    def __init__(self, sock: socket.socket, server_port: int) -> None:
        self._sock = sock
        self.server_port = server_port
        self._queues: dict[Key, deque[list[int]]] = {}  # [seq, length, t_mono_ns]
        self._next: dict[Key, int] = {}
        self.fallbacks = 0  # connections that fell back to the TCP stamp
        self.packets = 0

    def register(self, key: Key) -> None:
        """Keep packets of this connection from now on (others are dropped)."""
        self._queues[key] = deque()

    def forget(self, key: Key) -> None:
        self._queues.pop(key, None)
        self._next.pop(key, None)

    def drain(self) -> None:
        """File every packet queued on the socket under its connection."""
        sock, queues = self._sock, self._queues
        offset = _wall_ns() - now_ns()
        while True:
            try:
                data, anc, _flags, addr = sock.recvmsg(_SNAP, 64, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if addr[2] != _PACKET_HOST or not anc or len(data) < 54:
                continue
            ihl = (data[14] & 0x0F) * 4
            total = (data[16] << 8) | data[17]
            t = 14 + ihl
            if len(data) < t + 14:
                continue
            sport, dport, seq = struct.unpack_from("!HHI", data, t)
            payload = total - ihl - (data[t + 12] >> 4) * 4
            q = queues.get((sport, dport))
            if payload <= 0 or q is None:
                continue
            sec, nsec = _TIMESPEC.unpack_from(anc[0][2])
            q.append([seq, payload, sec * _NS + nsec - offset])
            self.packets += 1

    def split(self, key: Key, nbytes: int) -> list[tuple[int, int]] | None:
        """The next ``nbytes`` of connection ``key`` as ``(bytes, arrival ns)`` per packet, in
        order; None where the queued packets do not cover them (the connection then stays on
        its TCP stamps)."""
        q = self._queues.get(key)
        if q is None:
            return None
        self.drain()
        nxt = self._next.get(key)
        if nxt is None:
            if not q:
                self._give_up(key)
                return None
            nxt = q[0][0]
        out: list[tuple[int, int]] = []
        need = nbytes
        while need > 0:
            if not q:
                self._give_up(key)
                return None
            pkt = q[0]
            off = (nxt - pkt[0]) % _SEQ
            if off >= _SEQ // 2:  # the packet starts after the next byte: bytes missing
                self._give_up(key)
                return None
            if off >= pkt[1]:  # already taken (a retransmission)
                q.popleft()
                continue
            take = min(pkt[1] - off, need)
            out.append((take, pkt[2]))
            nxt = (nxt + take) % _SEQ
            need -= take
            if off + take == pkt[1]:
                q.popleft()
        self._next[key] = nxt
        return out

    def _give_up(self, key: Key) -> None:
        self.forget(key)
        self.fallbacks += 1

    def close(self) -> None:
        self._sock.close()


def open_tap(server_port: int, interface: str | None = "lo") -> tuple[WireTap | None, str]:
    """A tap on ``interface`` (None: every interface) for packets from ``server_port``, or
    (None, why not)."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "AF_PACKET"):
        return None, "packet sockets are Linux-only"
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_IP))
    except PermissionError:
        return None, "a packet socket needs CAP_NET_RAW (run as root or grant the capability)"
    except OSError as exc:
        return None, f"no packet socket: {exc}"
    try:
        prog = tcp_src_port_filter(server_port)
        buf = ctypes.create_string_buffer(prog)
        fprog = struct.pack("HL", len(prog) // 8, ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        if interface:
            sock.bind((interface, 0))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        return None, f"packet socket set-up failed: {exc}"
    return WireTap(sock, server_port), ""


def wire_stamps_asked() -> bool:
    return os.environ.get(ENV, "0") == "1"
