"""An independent paced SSE server: the ground truth for the client's timing error.

    python benchmarks/paced_server.py --port 0 --truth truth.jsonl [--ttft-ms 50 --itl-ms 10
        --events 64 --tokens-per-event 1 --burst | --zero-cost]

Written apart from servescope (no asyncio, no aiohttp, none of the reference server's code):
one thread, ``selectors`` and non-blocking sockets, HTTP/1.1 keep-alive with chunked SSE
answers to ``POST /v1/completions`` (``GET /v1/models`` answers a model list). For each
request it records

- ``t_req_ns``: the kernel's receive time of the request's last bytes (``SO_TIMESTAMPNS``
  on the accepted socket, CLOCK_REALTIME converted to CLOCK_MONOTONIC with a pair of clock
  reads at that read), the start of the request's schedule;
- ``t_ev_ns``: for every SSE event, CLOCK_MONOTONIC just before the ``send`` that handed it to
  the kernel, and ``t_ev_after_ns`` just after it;
- ``t_ev_wire_ns``: when the event's bytes really left, the kernel's software transmit
  timestamp of the packet that carried its last byte (``SO_TIMESTAMPING`` with ``OPT_ID``,
  read from the error queue; ``-1`` if none came). It differs from ``t_ev_ns`` when the
  kernel holds a small write back (TCP autocorking while the previous packet is still
  queued, which a busy machine's deferred softirq work makes common): the bytes then leave
  with the next write, and no client can see them earlier.

Schedule: the first event ``--ttft-ms`` after ``t_req_ns``, then one every ``--itl-ms``;
``--burst`` moves each event to the next multiple of ``--itl-ms`` of the monotonic clock, so
every stream's event leaves in the same pass of the loop (a batched decode step);
``--zero-cost`` sends the whole answer at once (the first event in a ``send`` of its own,
the rest in one more). Each event carries
``--tokens-per-event`` words " the" (one token each for byte-level BPE tokenizers) and no
per-chunk usage; a final usage-only event carries ``completion_tokens``. Truth lines are
written, one JSON object per request, when the server gets SIGTERM or SIGINT. The port is
printed on stdout once listening.
"""

from __future__ import annotations

import argparse
import heapq
import json
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["main"]

_SO_TIMESTAMPNS = 35
_SO_TIMESTAMPING = 37
# TX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY: a software transmit stamp per send, keyed by
# the byte offset of its last byte, without the packet's payload
_TS_FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11)
_EXT_ERR = struct.Struct("@IBBBBII")  # struct sock_extended_err; ee_data is the key
_TS = struct.Struct("@qq")


def _mono_of_realtime(sec: int, nsec: int) -> int:
    return sec * 1_000_000_000 + nsec - (time.time_ns() - time.monotonic_ns())


@dataclass
class _Req:
    rid: str
    t_req_ns: int
    n_events: int
    t_ev_ns: list[int] = field(default_factory=list)
    t_ev_after_ns: list[int] = field(default_factory=list)
    t_ev_wire_ns: list[int] = field(default_factory=list)


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytes = b""
    t_last_rx_ns: int = -1
    req: _Req | None = None
    sent: int = 0  # bytes sent on this connection
    # (key of the event's last byte, request, event index) awaiting a transmit stamp
    pending: list[tuple[int, _Req, int]] = field(default_factory=list)


class PacedServer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.sel = selectors.DefaultSelector()
        self.heap: list[tuple[int, int, _Conn, int]] = []
        self.seq = 0
        self.done: list[_Req] = []
        self.waiting: set[int] = set()  # fds of connections with events awaiting a stamp
        self.conns: dict[int, _Conn] = {}
        self.stop = False
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", args.port))
        self.lsock.listen(1024)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        words = " the" * args.tokens_per_event
        self.ev_payload = (b'data: {"id":"x","object":"text_completion","model":"paced",'
                           b'"choices":[{"index":0,"text":"' + words.encode()
                           + b'","finish_reason":null}]}\n\n')

    @property
    def port(self) -> int:
        return int(self.lsock.getsockname()[1])

    def run(self) -> None:
        while not self.stop:
            timeout = None
            if self.heap:
                due = self.heap[0][0]
                if self.a.spin and due - time.monotonic_ns() < 2_000_000:
                    while time.monotonic_ns() < due:  # epoll's ms timeout would be late
                        pass
                timeout = max(0.0, (due - time.monotonic_ns()) / 1e9 - 0.002 * self.a.spin)
            for key, _ev in self.sel.select(min(timeout, 0.5) if timeout is not None else 0.5):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.data)
            now = time.monotonic_ns()
            while self.heap and self.heap[0][0] <= now:
                _t, _s, conn, i = heapq.heappop(self.heap)
                self._send_event(conn, i)
            for fd in list(self.waiting):
                self._tx_stamps(self.conns[fd])

    def _tx_stamps(self, c: _Conn) -> None:
        """Give pending events the transmit time of the packet that carried their end."""
        while c.pending:
            try:
                _d, anc, _f, _a = c.sock.recvmsg(0, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                break
            ts = key = -1
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPING:
                    ts = _mono_of_realtime(*_TS.unpack_from(data))
                elif len(data) >= _EXT_ERR.size:
                    key = _EXT_ERR.unpack_from(data)[6]
            while c.pending and key >= 0 and ts >= 0 and c.pending[0][0] <= key:
                _k, req, i = c.pending.pop(0)
                req.t_ev_wire_ns[i] = ts
        self.waiting.discard(c.sock.fileno())

    def _accept(self) -> None:
        try:
            s, _ = self.lsock.accept()
        except BlockingIOError:
            return
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPING, _TS_FLAGS)
        c = _Conn(s)
        self.conns[s.fileno()] = c
        self.sel.register(s, selectors.EVENT_READ, c)

    def _close(self, c: _Conn) -> None:
        self._tx_stamps(c)
        self.waiting.discard(c.sock.fileno())
        self.conns.pop(c.sock.fileno(), None)
        self.sel.unregister(c.sock)
        c.sock.close()

    def _read(self, c: _Conn) -> None:
        try:
            data, anc, _f, _a = c.sock.recvmsg(1 << 16, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(c)
            return
        if not data:
            self._close(c)
            return
        c.t_last_rx_ns = (_mono_of_realtime(*_TS.unpack_from(anc[0][2])) if anc
                          else time.monotonic_ns())
        c.buf += data
        self._parse(c)

    def _parse(self, c: _Conn) -> None:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = c.buf[:end].decode("latin-1").split("\r\n")
        hdr = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        n = int(hdr.get("content-length", "0"))
        if len(c.buf) < end + 4 + n:
            return
        c.buf = c.buf[end + 4 + n:]
        method = head[0].split(" ")[0]
        if method == "GET":
            body = b'{"object":"list","data":[{"id":"paced","object":"model"}]}'
            self._send(c, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            return
        req = _Req(hdr.get("x-request-id", ""), c.t_last_rx_ns, self.a.events)
        req.t_ev_wire_ns = [-1] * req.n_events
        c.req = req
        self._send(c, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
        if self.a.zero_cost:
            self._send_all(c)
            return
        itl = int(self.a.itl_ms * 1e6)
        for i in range(req.n_events):
            t = req.t_req_ns + int(self.a.ttft_ms * 1e6) + i * itl
            if self.a.burst:
                t = -(-t // itl) * itl
            self.seq += 1
            heapq.heappush(self.heap, (t, self.seq, c, i))

    def _tail(self, req: _Req) -> bytes:
        usage = json.dumps({"id": "x", "object": "text_completion", "model": "paced",
                            "choices": [], "usage": {
                                "prompt_tokens": 4,
                                "completion_tokens": req.n_events * self.a.tokens_per_event,
                            }}).encode()
        return (b'data: {"id":"x","choices":[{"index":0,"text":"","finish_reason":"length"}]}'
                b"\n\n" + b"data: " + usage + b"\n\ndata: [DONE]\n\n")

    @staticmethod
    def _chunk(payload: bytes) -> bytes:
        return b"%x\r\n" % len(payload) + payload + b"\r\n"

    def _send(self, c: _Conn, data: bytes, event: tuple[_Req, int] | None = None) -> bool:
        try:
            c.sock.sendall(data)
        except OSError:
            return False
        c.sent += len(data)
        if event is not None:
            c.pending.append((c.sent - 1, *event))
            self.waiting.add(c.sock.fileno())
        return True

    def _send_event(self, c: _Conn, i: int) -> None:
        req = c.req
        if req is None:
            return
        last = i == req.n_events - 1
        data = self._chunk(self.ev_payload + (self._tail(req) if last else b""))
        if last:
            data += b"0\r\n\r\n"
        t0 = time.monotonic_ns()
        ok = self._send(c, data, (req, i))
        req.t_ev_ns.append(t0)
        req.t_ev_after_ns.append(time.monotonic_ns())
        if last or not ok:
            self.done.append(req)
            c.req = None

    def _send_all(self, c: _Conn) -> None:
        req = c.req
        if req is None:
            return
        # the first event in a send of its own, so its wire time is its own transmit stamp
        # (a send is stamped at its last byte, which leaves once the client's window lets it)
        rest = b"".join(self._chunk(self.ev_payload) for _ in range(req.n_events - 1))
        t0 = time.monotonic_ns()
        self._send(c, self._chunk(self.ev_payload), (req, 0))
        self._send(c, rest + self._chunk(self._tail(req)) + b"0\r\n\r\n",
                   (req, req.n_events - 1))
        t1 = time.monotonic_ns()
        req.t_ev_ns = [t0] * req.n_events
        req.t_ev_after_ns = [t1] * req.n_events
        self.done.append(req)
        c.req = None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=10.0)
    p.add_argument("--events", type=int, default=64)
    p.add_argument("--tokens-per-event", type=int, default=1)
    p.add_argument("--burst", action="store_true")
    p.add_argument("--zero-cost", action="store_true")
    p.add_argument("--spin", action="store_true",
                   help="busy-wait the last 2 ms before each send (exact gaps, one core)")
    a = p.parse_args(argv)
    srv = PacedServer(a)

    def _stop(_sig: int, _frame: object) -> None:
        srv.stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(srv.port, flush=True)
    srv.run()
    for c in list(srv.conns.values()):
        srv._tx_stamps(c)
    with a.truth.open("w") as f:
        for r in srv.done:
            if a.zero_cost:  # one send carried every later event: its last byte's stamp,
                # an upper bound (zero-cost runs compare TTFT only)
                r.t_ev_wire_ns = [r.t_ev_wire_ns[0]] + [r.t_ev_wire_ns[-1]] * (r.n_events - 1)
            f.write(json.dumps({"x_request_id": r.rid, "t_req_ns": r.t_req_ns,
                                "t_ev_ns": r.t_ev_ns, "t_ev_after_ns": r.t_ev_after_ns,
                                "t_ev_wire_ns": r.t_ev_wire_ns}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
