"""A plain-TCP asyncio transport that reads with ``recvmsg`` and the kernel's receive time.

The event loop's own transports (asyncio's selector transport, uvloop's C transport) read
with ``recv`` and never see the kernel's timestamps. :class:`StampedTransport` owns the
connected socket itself, turns on ``SO_TIMESTAMPNS`` and reads it from a ``loop.add_reader``
callback, so it works the same on asyncio's loop and on uvloop. Before each
``data_received`` it hands the protocol (``set_kernel_time``) the time the kernel received
the last packet of that read, on the monotonic clock:

    kernel_mono = kernel_realtime − (time_ns() − monotonic_ns())

with the two clocks read back to back at that read, so the conversion's error is the
~0.1 µs between those reads, unless the wall clock steps between the packet's arrival and
the read (an NTP step; slewing moves both clocks alike).

**The limit.** A packet that arrives while an earlier one of the same connection is still
unread is merged into it by the kernel's receive queue, which keeps the newer packet's
time (verified on this kernel). So each event's time is exact while the client reads a
stream before that stream's next event arrives (its lag below the stream's event gap, e.g.
10 ms at 100 events/s); beyond that, the earlier events read together get the later
arrival's time, an upper bound that shows as a zero gap and as a lag above the gap. Never
earlier than the truth, and never the client's own processing time.

:func:`hook_connector` makes an aiohttp ``TCPConnector`` open its plain-HTTP connections
with it (the connection set-up, its timeout and its errors are aiohttp's own); TLS
connections, a platform without ``recvmsg``/``SO_TIMESTAMPNS`` or an aiohttp without the
internals it needs keep the loop's transport (and socket-read times).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from collectors.client.wire_tap import WireTap, open_tap, wire_stamps_asked
from servescope.clock import now_ns

__all__ = ["StampedTransport", "hook_connector", "kernel_stamps_supported"]

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux (asm-generic and x86)
_CMSG_SPACE = 64  # room for one struct timespec control message
_TIMESPEC = struct.Struct("@qq")
_NS = 1_000_000_000
_MAX_READ = 256 * 1024  # what asyncio's selector transport reads at most per call
_wall_ns = time.time_ns


class _StampedProtocol(Protocol):
    def set_kernel_time(self, t_ns: int) -> None: ...


def kernel_stamps_supported() -> bool:
    """Whether this platform gives TCP receive timestamps (Linux ``SO_TIMESTAMPNS``), and
    they were not turned off (``SERVESCOPE_KERNEL_STAMPS=0``, for A/B measurements)."""
    return (sys.platform.startswith("linux") and hasattr(socket.socket, "recvmsg")
            and os.environ.get("SERVESCOPE_KERNEL_STAMPS", "1") != "0")


class StampedTransport(asyncio.Transport):
    """asyncio's transport contract over one connected, non-TLS TCP socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol: asyncio.Protocol, tap: WireTap | None = None) -> None:
        peer, local = sock.getpeername(), sock.getsockname()
        super().__init__({"socket": sock, "peername": peer, "sockname": local})
        self._tap = tap
        self._key = (int(peer[1]), int(local[1]))
        if tap is not None:
            tap.register(self._key)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self._loop, self._sock, self._fd, self._protocol = loop, sock, sock.fileno(), protocol
        self._stamp = getattr(protocol, "set_kernel_time", None)
        self._wbuf = bytearray()
        self._high, self._low = 64 * 1024, 16 * 1024
        self._closing = self._lost = self._reading = self._write_paused = False
        protocol.connection_made(self)
        self.resume_reading()

    @property
    def packet_stamps(self) -> bool:
        """Whether reads are still delivered per packet (:mod:`collectors.client.wire_tap`)."""
        return self._tap is not None

    # --- reading
    def _read_ready(self) -> None:
        try:
            data, anc, _flags, _addr = self._sock.recvmsg(_MAX_READ, _CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        if not data:
            self._eof()
            return
        tk = -1
        if anc:
            sec, nsec = _TIMESPEC.unpack_from(anc[0][2])
            tk = sec * _NS + nsec - (_wall_ns() - now_ns())
        if self._tap is not None:
            parts = self._tap.split(self._key, len(data))
            if parts is None:
                self._tap = None  # the packets did not cover this read: TCP stamps from now
            else:
                pos = 0
                for n, t in parts:
                    if not self._deliver(data[pos:pos + n], t):
                        return
                    pos += n
                return
        self._deliver(data, tk)

    def _deliver(self, data: bytes, tk: int) -> bool:
        if self._stamp is not None and tk >= 0:
            self._stamp(tk)
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - as asyncio does: fatal to this transport
            self._force_close(exc)
            return False
        return True

    def _eof(self) -> None:
        self.pause_reading()
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - as asyncio does
            self._force_close(exc)
            return
        if not keep_open:
            self.close()

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._loop.add_reader(self._fd, self._read_ready)
            self._reading = True

    def is_reading(self) -> bool:
        return self._reading

    # --- writing
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        if not self._wbuf:
            try:
                n = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as exc:
                self._force_close(exc)
                return
            if n == len(data):
                return
            data = memoryview(data)[n:]
            self._loop.add_writer(self._fd, self._write_ready)
        self._wbuf += data
        if not self._write_paused and len(self._wbuf) > self._high:
            self._write_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        try:
            n = self._sock.send(self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del self._wbuf[:n]
        if self._write_paused and len(self._wbuf) <= self._low:
            self._write_paused = False
            self._protocol.resume_writing()
        if not self._wbuf:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._lost = True
                self._loop.call_soon(self._finish, None)

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return len(self._wbuf)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    # --- closing
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.pause_reading()
        if not self._wbuf:
            self._lost = True
            self._loop.call_soon(self._finish, None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._closing = self._lost = True
        self.pause_reading()
        if self._wbuf:
            self._wbuf.clear()
            self._loop.remove_writer(self._fd)
        self._loop.call_soon(self._finish, exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self._tap is not None:
            self._tap.forget(self._key)
        try:
            self._protocol.connection_lost(exc if isinstance(exc, Exception) else None)
        finally:
            self._sock.close()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]
        self._stamp = getattr(protocol, "set_kernel_time", None)

    def __del__(self) -> None:
        if self._sock.fileno() >= 0 and not self._lost:
            self._sock.close()


def _close_taps(taps: dict[int, WireTap | None]) -> None:
    for tap in taps.values():
        if tap is not None:
            tap.close()


_NEEDED = ("_wrap_create_connection", "_loop", "_local_addr_infos", "_happy_eyeballs_delay",
           "_interleave", "_socket_factory")


def hook_connector(connector: Any, *, packets: bool = False) -> bool:
    """Open ``connector``'s plain-HTTP connections on :class:`StampedTransport`; False (the
    connector untouched) where the platform or this aiohttp cannot. ``packets`` (or
    ``SERVESCOPE_WIRE_STAMPS=1``): split reads per packet where a packet socket opens."""
    if not kernel_stamps_supported() or not all(hasattr(connector, a) for a in _NEEDED):
        return False
    import aiohappyeyeballs
    from aiohttp.client_exceptions import ClientConnectorError
    from aiohttp.helpers import ceil_timeout

    original: Callable[..., Awaitable[tuple[asyncio.Transport, Any]]] = (
        connector._wrap_create_connection)
    taps: dict[int, WireTap | None] = {}  # server port -> this process's tap (None: refused)
    weakref.finalize(connector, _close_taps, taps)  # the packet sockets go with the connector

    async def create(*args: Any, addr_infos: Any, req: Any, timeout: Any,  # noqa: ASYNC109
                     client_error: type[Exception] = ClientConnectorError, **kwargs: Any
                     ) -> tuple[asyncio.Transport, Any]:
        if kwargs.get("ssl"):
            return await original(*args, addr_infos=addr_infos, req=req, timeout=timeout,
                                  client_error=client_error, **kwargs)
        c = connector
        try:
            async with ceil_timeout(timeout.sock_connect,
                                    ceil_threshold=timeout.ceil_threshold):
                sock = await aiohappyeyeballs.start_connection(
                    addr_infos=addr_infos, local_addr_infos=c._local_addr_infos,
                    happy_eyeballs_delay=c._happy_eyeballs_delay, interleave=c._interleave,
                    loop=c._loop, socket_factory=c._socket_factory)
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc
        proto = args[0]()
        tap = None
        if (packets or wire_stamps_asked()) and sock.family == socket.AF_INET:
            host, port = sock.getpeername()[:2]
            if port not in taps:
                taps[port] = open_tap(port, "lo" if host.startswith("127.") else None)[0]
            tap = taps[port]
        try:
            transport = StampedTransport(c._loop, sock, proto, tap)
        except OSError as exc:
            sock.close()
            raise client_error(req.connection_key, exc) from exc
        return transport, proto

    connector._wrap_create_connection = create
    return True
