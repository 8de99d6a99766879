"""``--otlp-endpoint URL`` on ``run`` and ``attach``: the run's request spans and client
metrics sent to an OTLP backend by the run itself (:mod:`reports.otlp` builds and ships them).

The export happens once the run directory is complete (the engine stopped, requests, events
and the engine spans of ``--collect otel`` written), in a **child process** bounded in time:
the client's hot path never loads OpenTelemetry and never waits on a backend, and whatever
the backend does (refuses, hangs, answers as something that is not OTLP), the run ends as it
would have, with **one warning line** in its warnings. What was sent is recorded in the
manifest's ``collectors`` section under ``otlp_export``.

A failure is explained by a probe made only then: nothing listening (connection refused), no
answer in time, or an HTTP server that answered ``POST /v1/traces`` with an empty OTLP request
(``/v1/metrics`` when only the metrics failed) by something other than 200 (not an
OTLP/HTTP receiver of that signal).

**Live** (:class:`LiveExport`, started by ``run``/``attach`` around the load): while the load
runs, a second child process at low priority (:mod:`profiler.otlp_tail`) tails the client's
journals and sends each finished request's client span and the client metrics as they
accumulate, every ``interval_s``; it records what the endpoint took in
``RUN/otel/exported.json``. The end-of-run export then sends only the rest (the client spans
not yet sent, every engine span of ``--collect otel``, which arrive only at the end, and the
whole run's cumulative metrics on the live series' start times), so each request's span goes
out exactly once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servescope.redact import redact_text
from servescope.rundir.layout import RunDirError
from servescope.rundir.manifest import read_manifest, write_manifest

__all__ = ["MANIFEST_KEY", "LiveExport", "check_endpoint", "export_after_run",
           "failure_reason"]

MANIFEST_KEY = "otlp_export"
_NEEDS = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http.trace_exporter")


def check_endpoint(url: str) -> str:
    """The endpoint as given, or ``ValueError`` (one line) for one that is not an OTLP URL or
    when opentelemetry-sdk and its OTLP exporters are not installed (before anything
    starts)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "grpc") or not parts.hostname:
        raise ValueError(f"--otlp-endpoint must look like http://HOST:4318 or "
                         f"grpc://HOST:4317, got {url!r}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"--otlp-endpoint has a bad port: {url!r}") from None
    needs = (*_NEEDS, "grpc") if parts.scheme == "grpc" else _NEEDS
    for mod in needs:
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise ValueError("--otlp-endpoint needs opentelemetry-sdk and its OTLP exporters: "
                             "pip install 'servescope[otel]'")
    return url


def failure_reason(url: str, signal: str = "traces", timeout_s: float = 2.0) -> str:
    """Why an export of ``signal`` (traces | metrics) to ``url`` failed, as a short phrase
    (probes the endpoint once)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 4317 if parts.scheme == "grpc"
                          else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        return f"connection refused: nothing listens on {host}:{port}"
    except TimeoutError:
        return f"no answer from {host}:{port} in {timeout_s:g} s"
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc.strerror or type(exc).__name__})"
    if parts.scheme == "grpc":
        return (f"{host}:{port} accepts connections but did not take the OTLP/gRPC {signal} "
                "export")
    path = f"/v1/{signal}"
    base = url.rstrip("/").removesuffix("/v1/traces")
    req = urllib.request.Request(  # noqa: S310 - the scheme is http(s), checked above
        f"{base}{path}", data=b"", method="POST",
        headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as answer:  # noqa: S310 - http(s)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{host}:{port} accepts connections but no HTTP answer came ({type(exc).__name__})"
    if status != 200:
        return (f"{host}:{port} answered HTTP {status} to an empty OTLP request on {path}: "
                f"not an OTLP/HTTP {signal} receiver")
    return (f"{host}:{port} takes an empty OTLP request but did not take the run's export "
            "(refused or too slow)")


def _warning(url: str, res: dict[str, Any], live: dict[str, Any] | None = None) -> str | None:
    """One line for what was not sent (by the live export and the end-of-run one together),
    or None."""
    lost = [w for w, ok in (("spans", res["spans_sent"]), ("metrics", res["metrics_sent"]))
            if not ok]
    k = int(live["spans"]) if live else 0
    if not lost:
        if live and (live["span_failures"] or live["metric_failures"]):
            n = int(live["span_failures"]) + int(live["metric_failures"])
            return (f"OTLP export to {url}: the live export failed {n} time(s) "
                    f"({live['reason']}); what it missed went out at the end of the run")
        return None
    signal = "metrics" if lost == ["metrics"] else "traces"
    reason = failure_reason(url, signal)
    if k and "spans" in lost:
        n = int(res.get("requests", 0))
        what = f"{max(n - k, 0)} of {n} request spans" + (
            " and the final metrics" if len(lost) == 2 else "")
        return f"OTLP export to {url}: {what} not exported ({reason}); {k} went out live"
    what = "nothing exported" if len(lost) == 2 else f"{lost[0]} not exported"
    return f"OTLP export to {url}: {what} ({reason})"


def _record(run_dir: Path, entry: dict[str, Any], warnings: list[str]) -> None:
    try:
        manifest = read_manifest(run_dir)
        manifest.collectors[MANIFEST_KEY] = entry
        manifest.warnings.extend(w for w in warnings if w not in manifest.warnings)
        write_manifest(run_dir, manifest)
    except RunDirError as exc:  # a full disk: the run is recorded; this is a detail
        warnings.append(f"OTLP export not recorded in the manifest: {exc}")


def export_after_run(run_dir: Path, url: str, warnings: list[str],
                     say: Callable[[str], None] | None = None, *, timeout_s: float = 5.0,
                     bound_s: float = 120.0,
                     live: dict[str, Any] | None = None) -> dict[str, Any]:
    """Export the finished run in a child process (at most ``bound_s``); a failure is one
    line appended to ``warnings`` and to the manifest's warnings. Never raises for the
    endpoint, the run directory or the child. ``live``: what :meth:`LiveExport.stop`
    returned; the client spans it sent (``RUN/otel/exported.json``) are not sent again.
    Returns what the manifest records."""
    shown = redact_text(url)
    entry: dict[str, Any] = {"endpoint": shown, "spans": 0, "engine_spans": 0,
                             "metric_points": 0, "spans_sent": False, "metrics_sent": False}
    if live is not None:
        entry["live"] = {k: v for k, v in live.items() if k != "series_start_ns"}
    line: str | None = None
    cmd = [sys.executable, "-m", "profiler.otlp_live", str(run_dir), url, str(timeout_s),
           *(["--after-live"] if live is not None else [])]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=bound_s, check=False,
                              stdin=subprocess.DEVNULL)
        out = done.stdout.decode("utf-8", "replace").strip().splitlines()
        res = json.loads(out[-1]) if done.returncode == 0 and out else None
    except subprocess.TimeoutExpired:
        res, line = None, f"OTLP export to {shown}: stopped after {bound_s:g} s, not finished"
    except (OSError, ValueError) as exc:
        res, line = None, f"OTLP export to {shown}: not done ({type(exc).__name__})"
    if res is None and line is None:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = tail[-1][:200] if tail else f"exit code {done.returncode}"
        line = f"OTLP export to {shown}: not done ({why})"
    if res is not None:
        entry.update({k: res[k] for k in entry if k in res and k not in ("endpoint", "live")})
        line = res.get("error") or _warning(shown, res, live)
    if line is not None:
        warnings.append(redact_text(line))
    elif say is not None:
        early = f" ({live['spans']:,} client spans live, the rest now)" if live else ""
        say(f"exported {entry['spans'] + (live['spans'] if live else 0):,} spans{early} and "
            f"{entry['metric_points']} metric series to {shown}")
    _record(run_dir, entry, warnings)
    return entry


class LiveExport:
    """The live export's child process (:mod:`profiler.otlp_tail`): :meth:`start` before
    the load, :meth:`stop` after it (at most ``bound_s``). Never raises; whatever goes wrong
    is in what :meth:`stop` returns, and the end-of-run export sends what was not sent."""

    def __init__(self, run_dir: Path, url: str, *, interval_s: float = 2.0,
                 timeout_s: float = 5.0, bound_s: float = 30.0) -> None:
        self.run_dir, self.url, self.bound_s = run_dir, url, bound_s
        self.cmd = [sys.executable, "-m", "profiler.otlp_tail", str(run_dir), url,
                    str(timeout_s), str(interval_s)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.problem: str | None = None

    def start(self) -> LiveExport:
        try:  # its own session: a Ctrl-C at the terminal is the run's, not this child's
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=self.out,
                                         stderr=self.err, start_new_session=True)
        except OSError as exc:
            self.problem = f"not started ({type(exc).__name__})"
        return self

    def stop(self) -> dict[str, Any]:
        """Close the child's stdin (its signal to finish), wait for its record."""
        res: dict[str, Any] = {"requests": 0, "spans": 0, "batches": 0, "metric_exports": 0,
                               "span_failures": 0, "metric_failures": 0, "reason": None,
                               "first_batch_wall_ns": -1}
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                proc.wait(self.bound_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.problem = f"stopped after {self.bound_s:g} s"
            self.out.seek(0)
            lines = self.out.read().decode("utf-8", "replace").strip().splitlines()
            try:
                res.update(json.loads(lines[-1]) if lines else {})
            except ValueError:
                lines = []
            if not lines and self.problem is None:
                self.err.seek(0)
                tail = self.err.read().decode("utf-8", "replace").strip().splitlines()
                self.problem = tail[-1][:200] if tail else f"exit code {proc.returncode}"
        self.out.close()
        self.err.close()
        if self.problem is not None:
            res["reason"] = f"live export {self.problem}"
            res["span_failures"] = max(int(res["span_failures"]), 1)
        return res


def _child(argv: list[str]) -> int:
    """``python -m profiler.otlp_live RUN URL TIMEOUT_S``: one JSON line on stdout."""
    from reports.otlp import export_otlp

    run_dir, url, timeout_s = Path(argv[0]), argv[1], float(argv[2])
    sent: frozenset[str] = frozenset()
    starts: dict[str, int] = {}
    if "--after-live" in argv[3:]:
        from profiler.otlp_tail import EXPORTED_FILE

        try:
            done = json.loads((run_dir / EXPORTED_FILE).read_bytes())
            sent = frozenset(str(x) for x in done["x_request_ids"])
            starts = {str(k): int(v) for k, v in done["series_start_ns"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no record of the live export: everything goes out now
    try:
        res: dict[str, Any] = asdict(export_otlp(run_dir, url, timeout_s, sent=sent,
                                                 series_starts=starts))
    except (RunDirError, OSError, ValueError, KeyError) as exc:
        res = {"error": f"OTLP export to {redact_text(url)}: the run could not be read "
                        f"({type(exc).__name__}: {str(exc)[:160]})",
               "spans_sent": False, "metrics_sent": False}
    sys.stdout.write(json.dumps(res, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1:]))
