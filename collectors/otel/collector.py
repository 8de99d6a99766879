"""The ``otel`` collector: an OTLP receiver the wrapped engine exports its spans to.

Before the engine starts (``run`` only), :meth:`OtelCollector.amend_launch` binds a listening
socket on 127.0.0.1 (an ephemeral port, in servescope's process, so the port is known before
launch; the socket travels to the collector's child, where the receiver serves it) and adds
the engine's endpoint flag (``--otlp-traces-endpoint http://127.0.0.1:PORT/v1/traces`` for
vLLM and SGLang, ``--otlp_traces_endpoint`` for TensorRT-LLM; SGLang also ``--enable-trace``)
and the exporter's variables: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf`` and a short
batch delay (``OTEL_BSP_SCHEDULE_DELAY=200`` ms) with a large queue, so the spans of the last
requests arrive soon after the load ends. Spans the engine exported before the child served
(start-up spans) wait in the socket's backlog.

While the run goes on, spans are journalled to ``otel/spans.jsonl``; at stop the collector
waits until no span arrived for ``settle_s`` (at most ``flush_s``), writes
``otel/spans.parquet`` and ``otel/receiver.json``. Nothing here raises into the run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from socket import socket
from typing import Any

from collectors.base import CollectContext, CollectorStats
from collectors.kernels.launch import LaunchChange
from collectors.otel.receiver import TRACES_PATH, HttpReceiver, SpanJournal, bind_loopback
from servescope.rundir.layout import OTEL_RECEIVER_FILE, OTEL_SPANS_JOURNAL

__all__ = ["OTEL_ENV", "OtelCollector"]

OTEL_ENV: Mapping[str, str] = {
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms between batch exports (default 5000)
    "OTEL_BSP_MAX_QUEUE_SIZE": "65536",  # default 2048: a burst of requests would drop spans
}
_SETTLE_S = 1.0
_FLUSH_S = 8.0


def _tracing(engine: str) -> Any:
    from servescope.engines.registry import get_spec

    try:
        return get_spec(engine).otel
    except ValueError:
        return None


def _has_flag(argv: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


class OtelCollector:
    """The engine's spans, received during the run (module doc)."""

    name = "otel"
    label = "OTLP span receiver"

    def __init__(self) -> None:
        self._sock: socket | None = None
        self._endpoint = ""
        self._notes: list[str] = []
        self._user_endpoint = ""
        self._ctx: CollectContext | None = None
        self._journal: SpanJournal | None = None
        self._receiver: HttpReceiver | None = None
        self._request_span = ""

    # -- in servescope's process
    def validate_environment(self) -> None:
        from collectors.base import CollectorUnavailable

        try:
            import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401
        except ImportError:
            raise CollectorUnavailable(
                "--collect otel needs opentelemetry-proto: pip install 'servescope[otel]'"
            ) from None

    def amend_launch(self, engine: str, argv: Sequence[str], env: Mapping[str, str],
                     run_dir: Path, options: Mapping[str, Any]) -> LaunchChange:
        """The serving command with the engine's OTLP endpoint flag pointing at a socket
        bound here, and the exporter's variables."""
        del options, run_dir  # no options of its own yet
        out = LaunchChange(list(argv), dict(env))
        tracing = _tracing(engine)
        if tracing is None or not tracing.endpoint_flags:
            out.notes.append(f"{engine} exports no OpenTelemetry traces servescope knows of")
            return out
        flag = tracing.endpoint_flags[0]
        if _has_flag(argv, flag):
            self._user_endpoint = flag
            out.notes.append(f"kept the user's {flag}: its spans go there, not to servescope")
            return out
        self._sock = bind_loopback()
        self._endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}{TRACES_PATH}"
        out.argv += [flag, self._endpoint]
        out.notes.append(f"added {flag} {self._endpoint}")
        for extra in tracing.enable_flags:
            if not _has_flag(argv, extra):
                out.argv.append(extra)
                out.notes.append(f"added {extra}")
        for name, value in OTEL_ENV.items():
            if name in env and env[name] != value and name.endswith("PROTOCOL"):
                out.notes.append(f"replaced {name}={env[name]} (the receiver speaks "
                                 f"OTLP/HTTP)")
            elif name in env:
                out.notes.append(f"kept the user's {name}={env[name]}")
                continue
            out.env[name] = value
            out.notes.append(f"set {name}={value}")
        self._notes = list(out.notes)
        return out

    def skip_reason(self, ctx: CollectContext) -> str:
        if self._user_endpoint:
            return (f"the serving command already names {self._user_endpoint}: its spans go "
                    "there")
        if self._sock is None:
            if _tracing(ctx.engine.name) is None:
                return f"{ctx.engine.name} exports no OpenTelemetry traces servescope knows of"
            return ("the OTLP receiver is set up when servescope starts the server (its "
                    "endpoint flag): use `servescope run`")
        return ""

    def stop_bound_s(self, ctx: CollectContext) -> float:
        del ctx
        return _FLUSH_S + 30.0

    # -- in the collector's own process
    def start(self, ctx: CollectContext) -> None:
        assert self._sock is not None  # skip_reason said so otherwise
        self._ctx = ctx
        tracing = _tracing(ctx.engine.name)
        self._request_span = (tracing.request_span or "") if tracing is not None else ""
        self._journal = SpanJournal(ctx.run_dir / OTEL_SPANS_JOURNAL, ctx.anchor)
        self._receiver = HttpReceiver(self._sock, self._journal)
        self._receiver.start()

    def _settle(self) -> None:
        j = self._journal
        assert j is not None
        deadline = time.monotonic() + _FLUSH_S
        last, quiet_since = j.spans, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if j.spans != last:
                last, quiet_since = j.spans, time.monotonic()
            elif time.monotonic() - quiet_since >= _SETTLE_S:
                return

    def stop(self) -> CollectorStats:
        ctx, j, r = self._ctx, self._journal, self._receiver
        if ctx is None or j is None or r is None:
            return CollectorStats()
        stats = CollectorStats()
        self._settle()
        r.stop()
        j.close()
        from collectors.otel.tables import write_spans_table

        try:
            written, torn = write_spans_table(ctx.run_dir)
        except Exception as exc:  # noqa: BLE001 - the journal stays for later
            written, torn = 0, 0
            stats.error = f"otel/spans.parquet not written ({type(exc).__name__}: {exc})"
        request_spans = _count_request_spans(ctx.run_dir, self._request_span)
        stats.counts = {"endpoint": self._endpoint, "exports": j.exports, "spans": j.spans,
                        "spans_written": written, "torn_lines": torn,
                        "request_spans": request_spans, "bad_bodies": j.bad_bodies,
                        "launch": self._notes}
        if j.bad_bodies:
            stats.error = (stats.error + "; " if stats.error else "") + \
                f"{j.bad_bodies} OTLP bodies refused (last: {j.last_error})"
        from servescope.jsonio import write_json
        from servescope.rundir.layout import RunDirError

        try:
            write_json(ctx.run_dir / OTEL_RECEIVER_FILE,
                       {**stats.counts, "request_span": self._request_span})
        except (OSError, RunDirError) as exc:
            stats.error = (stats.error + "; " if stats.error else "") + \
                f"{OTEL_RECEIVER_FILE} not written: {exc}"
        return stats


def _count_request_spans(run_dir: Path, pattern: str) -> int:
    if not pattern:
        return 0
    import orjson

    rx = re.compile(pattern)
    n = 0
    path = run_dir / OTEL_SPANS_JOURNAL
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        for line in fh:
            try:
                if rx.fullmatch(str(orjson.loads(line).get("name", ""))):
                    n += 1
            except orjson.JSONDecodeError:
                continue
    return n
