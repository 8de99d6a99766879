"""GuideLLM ``benchmarks.json`` (``--output kind=json``) → an :class:`ImportedRun`.

Schema read as GuideLLM 0.8.1 writes it: ``metadata.guidellm_version``, ``config.spec``
(backend, profile), and ``benchmarks[]``, one per strategy (each becomes a sweep step),
with ``requests.{successful,errored,incomplete}[]`` (``info.timings`` in epoch seconds:
``request_start``, ``first_token_iteration``, ``last_token_iteration``, ``request_end``;
``token_iterations``, ``prompt_tokens``, ``output_tokens``, …) and ``metrics`` (GuideLLM's
own distributions). GuideLLM keeps only the first and last token times of a request, so
those are the only events: docs/importers.md says what that means for ITL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiler.importers.base import ImportedRun
from profiler.importers.conversations import ConversationIds
from profiler.importers.fields import Where, load_json, sub
from profiler.importers.guidellm_summary import benchmark_aggregates, step_window
from profiler.importers.outcomes import classify_error, error_text
from profiler.importers.timeconv import spread_chars, timestamp_s_to_ns
from servescope.clock import ClockAnchor
from servescope.records import EventKind, Outcome, RequestRecord

__all__ = ["GuidellmImporter"]

_WHAT = "a GuideLLM benchmarks.json (a JSON object with 'benchmarks')"
_LISTS = (("successful", Outcome.SUCCESS), ("errored", None), ("incomplete", Outcome.CANCELLED))
_OPEN_LOOP = frozenset({"constant", "poisson"})
_STATUS_IN_TEXT = re.compile(r"'(\d{3}) [A-Z]")
_STEP_IDS = 1_000_000_000


@dataclass(slots=True)
class _Tally:
    unrecognized: int = 0
    no_start: int = 0
    outside: int = 0
    conversations: ConversationIds = field(default_factory=ConversationIds)


@dataclass(frozen=True, slots=True)
class _Step:
    index: int
    endpoint: str
    open_loop: bool
    window: tuple[float, float] | None  # GuideLLM's measure window, epoch s


def _ts(w: Where, d: dict[str, Any], key: str) -> int | None:
    value = w.opt_float(d, key)
    return None if value is None else timestamp_s_to_ns(value)


def _outcome(fixed: Outcome | None, info: dict[str, Any],
             tally: _Tally) -> tuple[Outcome, int, str]:
    if fixed is Outcome.SUCCESS:
        return fixed, 200, ""
    raw = str(info.get("error") or "")
    found = _STATUS_IN_TEXT.search(raw)
    status = int(found.group(1)) if found else None
    if fixed is not None:
        return fixed, -1 if status is None else status, error_text(raw or "cancelled")
    outcome, recognized = classify_error(raw, status)
    tally.unrecognized += not recognized
    return outcome, -1 if status is None else status, error_text(raw)


def _events(wt: Where, timings: dict[str, Any], n_tokens: int | None) -> list[tuple[int, int]]:
    """(t_ns, tokens_cum) of the first and last token iterations (one if they are one)."""
    first = _ts(wt, timings, "first_token_iteration")
    last = _ts(wt, timings, "last_token_iteration")
    iterations = wt.opt_int(timings, "token_iterations") or 0
    total = -1 if n_tokens is None else n_tokens
    if first is None:
        return []
    if last is None or iterations <= 1:
        return [(first, total)]
    return [(first, 1 if total >= 1 else -1), (max(last, first), total)]


def _phase(step: _Step, start_s: float | None, end_s: float | None) -> str:
    """GuideLLM counts a request when it overlaps its measure window (and has an end)."""
    if step.window is None or end_s is None:
        return "measure"
    begin = start_s if start_s is not None else end_s
    inside = end_s >= step.window[0] and begin <= step.window[1]
    return "measure" if inside else "warmup"


def _record(rid: int, r: dict[str, Any], w: Where, step: _Step, *, fixed: Outcome | None,
            tally: _Tally) -> RequestRecord | None:
    info = w.dict_(r, "info")
    wt = w.at("info").at("timings")
    timings = w.at("info").dict_(info, "timings")
    start_s, end_s = w.opt_float(r, "request_start_time"), w.opt_float(r, "request_end_time")
    if start_s is None:
        tally.no_start += 1
        return None
    t_start = timestamp_s_to_ns(start_s)
    n_out = w.opt_int(r, "output_tokens")
    events = _events(wt, timings, n_out)
    t_end = timestamp_s_to_ns(end_s) if end_s is not None else (
        events[-1][0] if events else t_start)
    outcome, status, err = _outcome(fixed, info, tally)
    phase = _phase(step, start_s, end_s)
    tally.outside += phase == "warmup"
    out_metrics = r.get("output_metrics")
    chars = out_metrics.get("text_characters") if isinstance(out_metrics, dict) else None
    n_chars = chars if isinstance(chars, int) else -1
    turn = w.at("info").opt_int(info, "turn_index") or 0
    conv = w.at("info").opt_str(info, "conversation_id")
    targeted = _ts(wt, timings, "targeted_start")
    rec = RequestRecord(
        request_id=step.index * _STEP_IDS + rid,
        worker_id=w.at("info").opt_int(info, "scheduler_process_id") or 0, phase=phase,
        step=step.index, turn=turn,
        conversation_id=tally.conversations.of(conv),
        x_request_id=w.opt_str(r, "request_id") or "", endpoint=step.endpoint,
        t_intended_ns=targeted if step.open_loop and targeted is not None else -1,
        t_start_ns=t_start, t_send_ns=t_start, t_end_ns=max(t_end, t_start),
        status=status, outcome=outcome.value, error=err,
        usage_prompt_tokens=_or_unknown(w.opt_int(r, "prompt_tokens")),
        usage_completion_tokens=_or_unknown(n_out), output_chars=n_chars,
    )
    rec.ev_t_ns = [t for t, _ in events]
    rec.ev_kind = [int(EventKind.OUTPUT)] * len(events)
    rec.ev_chars = spread_chars(n_chars, len(events))
    rec.ev_tokens_cum = [c for _, c in events]
    return rec


def _or_unknown(value: int | None) -> int:
    return -1 if value is None or value < 0 else value


def _step(index: int, bench: dict[str, Any], w: Where, endpoint: str) -> _Step:
    strategy = sub(sub(bench, "config"), "strategy")
    return _Step(index, endpoint, str(strategy.get("type_", "")) in _OPEN_LOOP,
                 step_window(bench, w))


def _endpoint(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    backend = sub(spec, "backend")
    fmt = str(backend.get("request_format") or "")
    endpoint = "chat" if "chat" in fmt else ("completions" if fmt else "")
    target = {"url": str(backend.get("target") or ""), "model": str(backend.get("model") or ""),
              # GuideLLM asks for per-chunk usage but keeps none of it
              "endpoint": fmt, "stream": True, "per_chunk_usage": False,
              "backend": str(backend.get("kind") or "")}
    return endpoint, target


def _seed(value: object) -> int:
    """``config.spec.seed``: an integer, or ``{"kind": "static", "value": 42}``."""
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


class GuidellmImporter:
    """GuideLLM ``benchmarks.json``."""

    name = "guidellm"
    tool = "GuideLLM (benchmarks.json)"
    definitions = "guidellm"

    def sniff(self, path: Path, head: str) -> bool:
        text = head.lstrip()
        return path.suffix == ".json" and text.startswith("{") and (
            '"guidellm_version"' in text or (
            '"benchmarks"' in text and "generative_benchmark" in text))

    def read(self, path: Path) -> ImportedRun:
        w = Where(path)
        data = w.obj(load_json(path, _WHAT))
        benches = w.list_(data, "benchmarks")
        if not benches:
            raise w.at("benchmarks").fail("at least one benchmark")
        meta = w.obj(data.get("metadata") or {})
        config = w.obj(data.get("config") or {})
        spec = w.at("config").obj(config.get("spec") or {})
        endpoint, target = _endpoint(spec)
        tally = _Tally()
        records: list[RequestRecord] = []
        steps = []
        for s, raw in enumerate(benches):
            wb = w.at("benchmarks").at(s)
            bench = wb.obj(raw)
            step = _step(s, bench, wb, endpoint)
            steps.append(step)
            reqs = wb.dict_(bench, "requests")
            rid = 0
            for key, fixed in _LISTS:
                for k, r in enumerate(wb.at("requests").list_(reqs, key)):
                    wr = wb.at("requests").at(key).at(k)
                    rec = _record(rid, wr.obj(r), wr, step, fixed=fixed, tally=tally)
                    rid += 1
                    if rec is not None:
                        records.append(rec)
        if not records:
            raise w.at("benchmarks").fail("at least one request with a start time")
        ConversationIds.finish(records)
        first = min(r.t_start_ns for r in records)
        aggregates = [benchmark_aggregates(w.at("benchmarks").at(s).obj(b))
                      for s, b in enumerate(benches)]
        return ImportedRun(
            importer=self.name, tool="GuideLLM", verified_with="GuideLLM 0.8.1",
            version=str(meta.get("guidellm_version", "unknown")), source_file=path,
            records=tuple(records), clock=ClockAnchor(mono_ns=first, wall_ns=first),
            clock_note="times are GuideLLM's time.time() (epoch float seconds, ~0.24 us "
                       "resolution), converted exactly to ns; the anchor is the identity",
            started_wall_ns=first, ended_wall_ns=max(r.t_end_ns for r in records),
            target=target,
            workload={"profile": spec.get("profile"), "data": spec.get("data"),
                      "constraints": spec.get("constraints"),
                      "strategies": [a.get("strategy") for a in aggregates]},
            seed=_seed(spec.get("seed")),
            workers=max((int(a.get("worker_count") or 1) for a in aggregates), default=1),
            host={"python": meta.get("python_version", "unknown"),
                  "os": meta.get("platform", "unknown")},
            reconstructed=_RECONSTRUCTED + (
                ("t_intended_ns = targeted_start (constant / poisson strategies)",)
                if any(st.open_loop for st in steps) else ()),
            warnings=_warnings(tally, aggregates, records),
            aggregates={"benchmarks": aggregates},
            details={"metadata": meta},
        )


_RECONSTRUCTED = (
    "t_send_ns = t_start_ns = request_start_time (GuideLLM stamps it when httpx starts "
    "writing the request headers; resolve_start when that is missing)",
    "events: only two per request, at first_token_iteration (carrying 1 token) and "
    "last_token_iteration (carrying all output_tokens): GuideLLM keeps no other token "
    "times; a request with one token iteration has one event",
    "ev_chars: output_metrics.text_characters spread over those events (at least 1 each)",
    "t_end_ns = request_end_time (request_end, else resolve_end); t_done_ns = -1 "
    "(GuideLLM's last_request_iteration is the last SSE line, not told apart from [DONE])",
    "usage_*_tokens = prompt_tokens / output_tokens (the server's usage when GuideLLM got "
    "it, prefer_response_metrics, else its tokenizer: the file does not say which)",
    "phase: requests outside GuideLLM's measure window (warm-up, cool-down: GuideLLM counts "
    "a request that overlaps the window) are recorded as 'warmup', so analyzers leave them "
    "out as GuideLLM does",
    "each benchmark is a sweep step; request_id = step * 10^9 + position in the "
    "successful, errored, incomplete lists",
)


def _warnings(tally: _Tally, aggregates: list[dict[str, Any]],
              records: list[RequestRecord]) -> tuple[str, ...]:
    out = ["imported from GuideLLM: only the first and last token times of a request are "
           "known; per-event ITL is one gap per request (first to last token) and per-token "
           "ITL spreads it evenly over the tokens, i.e. GuideLLM's per-request mean"]
    for s, agg in enumerate(aggregates):
        totals = agg.get("request_totals")
        listed = sum(r.step == s for r in records)
        if isinstance(totals, dict) and isinstance(totals.get("total"), int) \
                and totals["total"] > listed + tally.no_start:
            out.append(f"benchmark {s}: the file lists {listed} of {totals['total']} requests "
                       "(GuideLLM kept a sample); counts and throughputs cover the sample")
    if tally.no_start:
        out.append(f"{tally.no_start} requests have no start time and were skipped")
    if tally.outside:
        out.append(f"{tally.outside} requests lie outside GuideLLM's measure window "
                   "(recorded as warm-up)")
    if tally.unrecognized:
        out.append(f"{tally.unrecognized} errored requests have an error we do not "
                   "recognize; recorded as invalid_response")
    return tuple(out)
