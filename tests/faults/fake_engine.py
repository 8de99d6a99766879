"""A fake serving engine for fault tests: ``python -m tests.faults.fake_engine --port P …``.

It serves :class:`tests.faults.server.FaultServer`'s well-behaved routes (streams paced by
``--itl-ms``) and misbehaves as asked:

- ``--exit-at-once CODE``: print a start-up error to stderr and exit with CODE at once;
- ``--exit-after S``: serve for S seconds, then exit with code 3;
- ``--ready-after S``: listen only after S seconds (an engine loading its weights);
- ``--ignore-signals``: ignore SIGINT, SIGTERM and SIGHUP (only SIGKILL ends it);
- ``--daemon``: double-fork a grandchild into a new session (``setsid``) that sleeps; its pid
  is printed as ``daemon pid N`` on stdout;
- ``--child``: start an ordinary child process (an engine is a process tree);
- ``--api-key K``: answer 401 to ``/v1/*`` without ``Authorization: Bearer K`` (as vLLM does);
- ``--log-secret S``: print S in the log as a JSON field, a YAML line and a key=value pair.

Every process it starts inherits its environment, so a test's tag finds them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from tests.faults.server import FaultServer, RawRequest, head, token_chunk, write


def _daemonize() -> None:
    """Double fork: the grandchild is in a new session and no longer our descendant."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    print(f"daemon pid {os.getpid()}", flush=True)
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)"])


def _stream(itl_s: float):
    async def h(req: RawRequest, w: asyncio.StreamWriter) -> None:
        chat = req.path.endswith("/chat/completions")
        n = int(req.json().get("max_tokens") or 8)
        await write(w, head(200, "text/event-stream"))
        for i in range(n):
            await asyncio.sleep(itl_s)
            chunk = token_chunk(chat, f" t{i}", i + 1, "length" if i == n - 1 else None)
            await write(w, b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await write(w, b"data: [DONE]\n\n")
    return h


def _guarded(key: str, inner):
    async def h(req: RawRequest, w: asyncio.StreamWriter) -> None:
        if req.headers.get("authorization") != f"Bearer {key}":
            await write(w, head(401) + b'{"error": "Unauthorized"}')
            return
        await inner(req, w)
    return h


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--exit-at-once", type=int, default=None)
    ap.add_argument("--exit-after", type=float, default=None)
    ap.add_argument("--ready-after", type=float, default=0.0)
    ap.add_argument("--ignore-signals", action="store_true")
    ap.add_argument("--daemon", action="store_true")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--log-secret", default=None)
    ap.add_argument("--itl-ms", type=float, default=2.0)
    args = ap.parse_args(argv)

    if args.log_secret:
        s = args.log_secret
        print(json.dumps({"event": "config", "api_key": s}), flush=True)
        print(f"api_key: {s}", flush=True)
        print(f"starting with token={s} and password = {s}", flush=True)
        print(f"args: Namespace(api_key='{s}')", file=sys.stderr, flush=True)
    if args.exit_at_once is not None:
        print("RuntimeError: fake engine failed to start (as asked)", file=sys.stderr,
              flush=True)
        sys.exit(args.exit_at_once)
    if args.ignore_signals:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    if args.child:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    if args.daemon:
        _daemonize()
    print("fake engine loading", file=sys.stderr, flush=True)
    time.sleep(args.ready_after)

    stream = _stream(args.itl_ms / 1000)
    routes = {"/v1/completions": stream, "/v1/chat/completions": stream}
    server = FaultServer(routes, host=args.host, port=args.port)
    if args.api_key:
        server.routes = {p: (_guarded(args.api_key, h) if p.startswith("/v1/") else h)
                         for p, h in server.routes.items()}
    server.start()
    print(f"fake engine listening on {server.url}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    while True:
        time.sleep(0.1)
        if args.exit_after is not None and time.monotonic() - t0 > args.exit_after:
            print("RuntimeError: fake engine died (as asked)", file=sys.stderr, flush=True)
            os._exit(3)


if __name__ == "__main__":
    main()
