"""Runs with chosen timings for the HTML report's tests, through the real writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from profiler.rundir.reader import RunData
from tests.analyzers._gate_runs import add_engine, synthetic_run, vllm_page

N = 40
GAP_MS = 10.0
ITL_MS = 5.0
TOKENS = 8
TTFT_MS = 20.0 + (np.arange(N) % 7) * 3.0  # 20..38 ms, known exactly
KV = (0.1, 0.5, 0.9, 0.5, 0.2)  # at 0, 100, 200, 300, 400 ms
PREEMPTIONS = (0, 0, 2, 3, 3)


def known_run(root: Path, name: str = "known", *, engine: bool = True,
              scale: float = 1.0) -> RunData:
    """``N`` requests sent every ``GAP_MS``; TTFT ``TTFT_MS * scale``, then ``TOKENS - 1``
    tokens ``ITL_MS`` apart; with ``engine``, vLLM scrapes at 0..400 ms with ``KV`` usage and
    the ``PREEMPTIONS`` counter."""
    run = synthetic_run(root, name, TTFT_MS * scale, ITL_MS, tokens=TOKENS, gap_ms=GAP_MS)
    if not engine:
        return run
    buckets = {0.05: N}
    pages = [(100.0 * i, vllm_page(ttft_buckets=buckets if i else {0.05: 0}, kv_usage=kv,
                                   preemptions=p))
             for i, (kv, p) in enumerate(zip(KV, PREEMPTIONS, strict=True))]
    return add_engine(run, pages)
