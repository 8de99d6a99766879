"""A TCP proxy that holds each HTTP request for a fixed delay before forwarding it: a known,
real regression to put in front of a server (``benchmarks/gate_power.py``).

``python -m benchmarks.delay_proxy --listen PORT --upstream HOST:PORT --delay-ms D``

Bytes are forwarded unchanged both ways. A client→server chunk that arrives after the
connection was quiet on the client side for ``--gap-ms`` (default 20 ms; a request's headers
and body arrive together, and a keep-alive connection is quiet between requests) is held for
``D`` ms first: each request starts ``D`` ms later, so its TTFT and E2E grow by ``D`` and a
closed loop's throughput drops. With ``--delay-ms 0`` it is the same path with no delay (the
A/A arm goes through the same proxy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float,
                gap_s: float) -> None:
    last = -1e9
    try:
        while data := await reader.read(65536):
            now = time.monotonic()
            if delay_s > 0 and now - last > gap_s:
                await asyncio.sleep(delay_s)
            last = time.monotonic()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _serve(listen: int, host: str, port: int, delay_s: float, gap_s: float) -> None:
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pipe(cr, uw, delay_s, gap_s), _pipe(ur, cw, 0.0, gap_s))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", required=True, help="HOST:PORT")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--gap-ms", type=float, default=20.0)
    a = p.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(a.listen, host, int(port), a.delay_ms / 1e3, a.gap_ms / 1e3))


if __name__ == "__main__":
    main()
