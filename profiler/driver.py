"""Drive a workload from one process: closed-loop slots or an open-loop schedule.

The driver only dispatches and times requests; each finished request goes straight to the
:class:`~collectors.timeline.TimelineRecorder`. Request ids are strided across worker
processes (worker ``w`` of ``W`` uses ``w, w+W, w+2W, …``) so merged runs have unique ids.

When the recorder cannot write (a full disk), the run stops at once: nothing more is
dispatched, requests in flight are cancelled (their records could not be kept either), and
:attr:`DriveStats.write_error` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from collectors.client import timed
from collectors.client.stream import send_request
from collectors.client.target import Target
from collectors.timeline import TimelineRecorder
from profiler.workloads.sessions import Session
from servescope.clock import now_ns
from servescope.records import UNKNOWN, Outcome, RequestRecord
from servescope.rundir.atomic import write_problem

__all__ = ["DriveStats", "Shard", "drive"]

_REFUSED = Outcome.CONNECTION_ERROR.value
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.01, 1.0

_NS = 1_000_000_000


@dataclass(slots=True)
class Shard:
    """What one worker process sends.

    ``offsets_ns`` (open loop) gives each session's intended start relative to ``t0_ns``;
    ``None`` means closed loop with ``concurrency`` slots. ``max_in_flight`` caps an open
    loop (requests wait for a slot; the wait shows up as schedule lag).
    """

    sessions: Sequence[Session]
    t0_ns: int
    offsets_ns: Sequence[int] | None = None
    concurrency: int = 1
    max_in_flight: int | None = None
    stop_at_ns: int | None = None  # stop dispatching at this time (duration limit)
    max_sessions: int | None = None  # closed loop: how many sessions to run (cycles the pool)
    warmup_sessions: int = 0
    warmup_until_ns: int | None = None
    step: int = 0
    worker_id: int = 0
    n_workers: int = 1
    first_index: int = 0  # request-id counter start for this step
    drain_timeout_s: float = 600.0


@dataclass(slots=True)
class DriveStats:
    """Live counters, cheap to update, read by the progress display."""

    sent: int = 0
    done: int = 0
    errors: int = 0
    in_flight: int = 0
    recent_ttft_ns: deque[int] = field(default_factory=lambda: deque(maxlen=512))
    recent_itl_ns: deque[int] = field(default_factory=lambda: deque(maxlen=4096))
    output_tokens: int = 0
    backoffs: int = 0  # closed-loop waits after a connection that got no answer
    outcomes: dict[str, int] = field(default_factory=dict)
    exact_arrival_times: bool = False  # socket-read timestamps (see collectors.client.timed)
    write_error: str = ""  # why the journal could not be written ("" when it could)
    records_lost: int = 0  # requests that ended but could not be written
    chunks_done: int = 0  # stream chunks of requests that ended
    streaming: dict[int, RequestRecord] = field(default_factory=dict)  # in flight, by id

    def chunks(self) -> int:
        """Stream chunks received so far, in flight ones included (read at each progress
        tick, so the per-chunk path pays nothing for it)."""
        return self.chunks_done + sum(len(r.ev_t_ns) for r in list(self.streaming.values()))


class _Dispatcher:
    def __init__(self, *, shard: Shard, target: Target, session: aiohttp.ClientSession,
                 recorder: TimelineRecorder, stats: DriveStats,
                 on_record: Callable[[RequestRecord], None] | None) -> None:
        self.shard = shard
        self.target = target
        self.http = session
        self.recorder = recorder
        self.stats = stats
        self.on_record = on_record
        self.counter = shard.first_index
        self.sessions_started = 0
        self.write_failed = asyncio.Event()

    def _next_id(self) -> int:
        rid = self.counter * self.shard.n_workers + self.shard.worker_id
        self.counter += 1
        return rid

    def _phase(self) -> str:
        s = self.shard
        if self.sessions_started <= s.warmup_sessions:
            return "warmup"
        if s.warmup_until_ns is not None and now_ns() < s.warmup_until_ns:
            return "warmup"
        return "measure"

    async def run_session(self, sess: Session, intended_ns: int) -> bool:
        """Run every turn of ``sess``; True when the last request got no answer at all (the
        connection failed before any response header: the server is not there)."""
        self.sessions_started += 1
        phase = self._phase()
        keep_text = len(sess.turns) > 1
        history: list[dict[str, str]] = []
        prior_text = ""
        for k, turn in enumerate(sess.turns):
            if k and sess.think_time_ns:
                await asyncio.sleep(sess.think_time_ns / _NS)
            rid = self._next_id()
            rec = RequestRecord(
                request_id=rid, worker_id=self.shard.worker_id, phase=phase,
                step=self.shard.step, conversation_id=sess.session_id if keep_text else UNKNOWN,
                turn=k, group_id=sess.group_id, x_request_id=f"ss-{rid}",
                endpoint=self.target.endpoint, prompt_tokens_planned=turn.prompt_tokens,
                max_tokens=turn.max_tokens, t_intended_ns=intended_ns if k == 0 else UNKNOWN,
            )
            if self.target.is_chat:
                history.append({"role": "user", "content": turn.prompt})
                prompt: str | list[dict[str, str]] = list(history)
            else:
                prompt = prior_text + turn.prompt
            body = self.target.body(prompt, turn.max_tokens)
            await self._send(rec, body, keep_text)
            if rec.outcome != Outcome.SUCCESS.value:  # a conversation stops at a failed turn
                return rec.outcome == _REFUSED and rec.t_headers_ns < 0
            answer = rec.output_text or ""
            history.append({"role": "assistant", "content": answer})
            prior_text = prompt + answer if isinstance(prompt, str) else ""
        return False

    async def _send(self, rec: RequestRecord, body: bytes, keep_text: bool) -> None:
        st = self.stats
        st.sent += 1
        st.in_flight += 1
        st.streaming[rec.request_id] = rec
        try:
            await send_request(self.http, self.target, body, rec, keep_text)
        finally:
            st.in_flight -= 1
            del st.streaming[rec.request_id]
            st.chunks_done += len(rec.ev_t_ns)
            st.done += 1
            st.outcomes[rec.outcome] = st.outcomes.get(rec.outcome, 0) + 1
            if rec.outcome != Outcome.SUCCESS.value:
                st.errors += 1
            elif rec.ev_t_ns:
                ev = rec.ev_t_ns
                st.recent_ttft_ns.append(ev[0] - rec.t_send_ns)
                # live view only (the run's ITL is computed from the recorded events)
                st.recent_itl_ns.extend(b - a for a, b in itertools.pairwise(ev[-65:]))
                st.output_tokens += (rec.usage_completion_tokens
                                     if rec.usage_completion_tokens >= 0 else len(ev))
            if not keep_text:
                rec.output_text = None
            if not self.recorder.write(rec):
                self.write_failed.set()
            if self.on_record is not None:
                self.on_record(rec)

    def _until_stop_s(self) -> float:
        stop = self.shard.stop_at_ns
        return math.inf if stop is None else max(0.0, (stop - now_ns()) / _NS)

    def _stopped(self) -> bool:
        stop = self.shard.stop_at_ns
        return self.write_failed.is_set() or (stop is not None and now_ns() >= stop)

    async def closed_loop(self) -> None:
        s = self.shard
        pool = list(s.sessions)
        if not pool:
            return
        limit = s.max_sessions if s.max_sessions is not None else len(pool)
        taken = 0

        async def slot() -> None:
            nonlocal taken
            backoff_s = 0.0
            while taken < limit and not self._stopped():
                sess = pool[taken % len(pool)]
                taken += 1
                if await self.run_session(sess, UNKNOWN):
                    # the server is not there (died, restarting): wait 10 ms, doubling up to
                    # 1 s, rather than flooding the run with failed connections
                    backoff_s = min(_BACKOFF_MAX_S, max(_BACKOFF_MIN_S, 2 * backoff_s))
                    self.stats.backoffs += 1
                    await asyncio.sleep(min(backoff_s, self._until_stop_s()))
                else:
                    backoff_s = 0.0

        await _sleep_until(s.t0_ns)
        await asyncio.gather(*(slot() for _ in range(s.concurrency)))

    async def open_loop(self) -> None:
        s = self.shard
        if s.offsets_ns is None:
            raise ValueError("open loop needs offsets_ns")
        gate = asyncio.Semaphore(s.max_in_flight) if s.max_in_flight else None
        tasks: set[asyncio.Task[None]] = set()

        async def start(sess: Session, intended: int) -> None:
            if gate is None:
                await self.run_session(sess, intended)
                return
            async with gate:
                await self.run_session(sess, intended)

        try:
            for sess, off in zip(s.sessions, s.offsets_ns, strict=True):
                intended = s.t0_ns + off
                await _sleep_until(intended)
                if self._stopped():
                    break
                task = asyncio.create_task(start(sess, intended))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            pending = list(tasks)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise


async def _sleep_until(t_ns: int) -> None:
    """Return at ``t_ns`` or just after, never before: event-loop timers have millisecond
    granularity and can fire early, so the last millisecond is spent yielding."""
    while True:
        remaining = t_ns - now_ns()
        if remaining <= 0:
            return
        await asyncio.sleep(remaining / _NS if remaining > 1_500_000 else 0)


async def _prime(target: Target, trace_configs: list[aiohttp.TraceConfig]) -> None:
    """One throwaway GET before the clock starts: the first request through aiohttp
    imports modules and builds an SSL context (~0.3 s on a small machine), which would
    otherwise stall every stream of the run's first second. Its result does not matter, and
    its connection is never one of the run's (a session of its own that keeps none): a
    server may close it just after answering (transformers serve answers this GET with 500
    and resets the connection, which the run's first request met as ``connection_error``)."""
    url = target.base_url.rstrip("/").removesuffix("/v1") + "/v1/models"
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                         trust_env=False, trace_configs=trace_configs
                                         ) as http, \
                http.get(url, headers=target.headers("servescope-prime"),
                         timeout=aiohttp.ClientTimeout(total=5)) as resp:
            await resp.read()


async def _run_until_stopped(d: _Dispatcher, shard: Shard) -> None:
    """Run the dispatcher until its workload is done, ``stop_at`` + ``drain_timeout`` has
    passed (in-flight requests are then cancelled), or the journal could not be written
    (cancelled at once). Cancelling this coroutine cancels the requests in flight, which
    record themselves as ``cancelled`` before the cancellation propagates."""
    main = asyncio.ensure_future(d.open_loop() if shard.offsets_ns is not None
                                 else d.closed_loop())
    failed = asyncio.ensure_future(d.write_failed.wait())
    timeout = None
    if shard.stop_at_ns is not None:
        timeout = max((shard.stop_at_ns - now_ns()) / _NS + shard.drain_timeout_s, 0.001)
    try:
        await asyncio.wait({main, failed}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        failed.cancel()
        main.cancel()  # no-op when it is done
        await asyncio.gather(main, failed, return_exceptions=True)
    if not main.cancelled():
        main.result()  # its exception, if it raised one


async def drive(shard: Shard, target: Target, recorder: TimelineRecorder,
                stats: DriveStats | None = None,
                on_record: Callable[[RequestRecord], None] | None = None) -> DriveStats:
    """Run one shard to completion. Cancelling this coroutine records in-flight requests
    as ``cancelled`` (they are written before the cancellation propagates)."""
    stats = stats if stats is not None else DriveStats()
    limit = shard.concurrency if shard.offsets_ns is None else (shard.max_in_flight or 0)
    connector = aiohttp.TCPConnector(limit=max(limit, 0), ttl_dns_cache=None,
                                     force_close=False, enable_cleanup_closed=True)
    stats.exact_arrival_times = timed.install(connector, packets=target.packet_timestamps)
    async with aiohttp.ClientSession(connector=connector, read_bufsize=1 << 20,
                                     auto_decompress=False, trust_env=False,
                                     trace_configs=[timed.send_trace()]) as http:
        await _prime(target, [timed.send_trace()])
        if shard.t0_ns <= 0:  # no common start given: start now
            shard.t0_ns = now_ns()
            if shard.stop_at_ns is not None:
                shard.stop_at_ns += shard.t0_ns
            if shard.warmup_until_ns is not None:
                shard.warmup_until_ns += shard.t0_ns
        d = _Dispatcher(shard=shard, target=target, session=http, recorder=recorder,
                        stats=stats, on_record=on_record)
        try:
            await _run_until_stopped(d, shard)
        finally:
            if recorder.error is not None:
                stats.write_error = write_problem(recorder.path, recorder.error)
            stats.records_lost = recorder.lost
    return stats

