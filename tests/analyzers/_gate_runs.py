"""Synthetic runs with latency distributions the test chooses, written through the real
writer (``tests/analyzers/_rundir.py``), for compare / gate / history tests.

Request ``i`` is sent at ``i * gap_ms``; its first token arrives ``ttft_ms[i]`` later and each
of its other ``tokens - 1`` tokens ``itl_ms[i]`` after the previous one, one token per event
with per-chunk usage. So TTFT, ITL and E2E percentiles, error counts and throughput are known
exactly from the arrays the test passes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from collectors.engine_metrics import ScrapeOutcome, ScrapeResult, parse_body
from servescope.records import Outcome, RequestRecord
from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir, finalize_engine_tables
from servescope.rundir.reader import RunData, load_run
from tests.analyzers._rundir import ns, out, request, write_run


def lognormal_ms(n: int, median_ms: float, sigma: float, seed: int) -> npt.NDArray[np.float64]:
    return median_ms * np.random.default_rng(seed).lognormal(0.0, sigma, n)


def _floats(x: npt.ArrayLike) -> list[float]:
    return [float(v) for v in np.asarray(x, dtype=np.float64).ravel()]


def records(ttft_ms: npt.ArrayLike, itl_ms: npt.ArrayLike, *, tokens: int = 8,
            gap_ms: float = 10.0, failed: Sequence[int] = (),
            lag_ms: npt.ArrayLike | None = None) -> list[RequestRecord]:
    recs = []
    failed_set = set(failed)
    lags = _floats(lag_ms) if lag_ms is not None else None
    for i, (ttft, itl) in enumerate(zip(_floats(ttft_ms), _floats(itl_ms), strict=True)):
        send = i * gap_ms + (lags[i] if lags is not None else 0.0)
        intended = i * gap_ms if lags is not None else None
        if i in failed_set:
            recs.append(request(i, send, [], end_ms=send + 1.0, outcome=Outcome.HTTP_ERROR,
                                intended_ms=intended))
            continue
        evs = [out(send + ttft + j * itl, cum=j + 1) for j in range(tokens)]
        last = evs[-1][0]
        recs.append(request(i, send, evs, done_ms=last + 0.1, completion_tokens=tokens,
                            prompt_tokens=16, intended_ms=intended))
    return recs


def synthetic_run(root: Path, name: str, ttft_ms: npt.ArrayLike,
                  itl_ms: npt.ArrayLike = 5.0, *, tokens: int = 8,
                  gap_ms: float = 10.0, failed: Sequence[int] = (),
                  lag_ms: npt.ArrayLike | None = None, status: str | None = None,
                  manifest: dict[str, Any] | None = None) -> RunData:
    """Write the run ``root/name``; ``manifest`` entries overwrite the manifest's JSON.
    A scalar ``itl_ms`` applies to every request."""
    n = len(_floats(ttft_ms))
    itl = _floats(itl_ms)
    if len(itl) == 1 and n != 1:
        itl = itl * n
    recs = records(ttft_ms, itl, tokens=tokens, gap_ms=gap_ms, failed=failed, lag_ms=lag_ms)
    run = write_run(root, recs, name=name)
    if status is not None or manifest:
        edit_manifest(run.path, {**({"status": status} if status else {}), **(manifest or {})})
        return load_run(run.path)
    return run


def edit_manifest(run_dir: Path, values: dict[str, Any]) -> None:
    path = run_dir / "manifest.json"
    data = json.loads(path.read_text())
    data.update(values)
    path.write_text(json.dumps(data))


def vllm_page(*, ttft_buckets: dict[float, int], kv_usage: float, preemptions: int) -> bytes:
    """A vLLM /metrics page: a TTFT histogram with the given cumulative bucket counts (the
    +Inf bucket equals the largest), a KV-usage gauge and the preemption counter."""
    lines = ["# TYPE vllm:time_to_first_token_seconds histogram"]
    total = max(ttft_buckets.values(), default=0)
    for le, c in sorted(ttft_buckets.items()):
        lines.append(f'vllm:time_to_first_token_seconds_bucket{{le="{le:g}"}} {c}')
    lines += [f'vllm:time_to_first_token_seconds_bucket{{le="+Inf"}} {total}',
              f"vllm:time_to_first_token_seconds_sum {0.05 * total}",
              f"vllm:time_to_first_token_seconds_count {total}",
              "# TYPE vllm:kv_cache_usage_perc gauge",
              f"vllm:kv_cache_usage_perc {kv_usage}",
              "# TYPE vllm:num_preemptions_total counter",
              f"vllm:num_preemptions_total {preemptions}"]
    return ("\n".join(lines) + "\n").encode()


def add_engine(run: RunData, pages: Sequence[tuple[float, bytes]]) -> RunData:
    """Give a run an engine (vLLM adapter) whose scrapes ended at the given times (ms on the
    run's clock, as the requests' times) with the given pages."""
    edit_manifest(run.path, {"engine": {"name": "vllm"}})
    edir = engine_dir(run.path)
    edir.mkdir()
    with (edir / METRICS_JOURNAL).open("wb") as fh:
        for t_ms, body in pages:
            samples, entries = parse_body("prometheus", body)
            t_end = ns(t_ms)
            fh.write(ScrapeResult("http://127.0.0.1:8000/metrics", "prometheus", "",
                                  t_end - 5_000_000, t_end - 5_000_000, t_end, True, 200,
                                  ScrapeOutcome.OK, "", len(body), 0, entries,
                                  tuple(samples)).journal_line())
    finalize_engine_tables(run.path)
    return load_run(run.path)


__all__ = ["add_engine", "edit_manifest", "lognormal_ms", "records", "synthetic_run", "vllm_page"]
