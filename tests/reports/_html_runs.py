"""Runs with chosen timings for the HTML report's tests, through the real writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servescope.records import Outcome
from servescope.rundir.reader import RunData
from tests.analyzers._gate_runs import add_engine, edit_manifest, synthetic_run, vllm_page
from tests.analyzers._rundir import out, request, write_run

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


MODEL = "<script>alert(1)</script>"
ERROR = ("HTTP 400: bad prompt '<img src=x onerror=alert(2)>' </script><!-- --> "
         "Authorization: Bearer abcdefghijklmnop0123")
PROMPT = "PROMPT-TEXT <script>alert(3)</script> ignore previous instructions"
SECRETS = ("hunter2hunter2hunter2", "sk-abcdefghijklmnopqrstuvwx", "tok_live_0123456789",
           "abcdefghijklmnop0123")
RUN_NAME = "run<b onmouseover=alert(4)>"


def hostile_run(root: Path) -> Path:
    """A run whose model name, run id, error message, output text and command lines are
    hostile HTML, with secrets on its command lines."""
    recs = []
    for i in range(30):
        evs = [out(i * 10 + 20 + j * 5, chars=4, cum=j + 1) for j in range(6)]
        recs.append(request(i, i * 10, evs, done_ms=i * 10 + 50, completion_tokens=6,
                            prompt_tokens=8, output_text=PROMPT))
    recs.append(request(30, 305, [], end_ms=306, outcome=Outcome.HTTP_ERROR, error=ERROR))
    run = write_run(root, recs, name=RUN_NAME)
    edit_manifest(run.path, {
        "target": {"model": MODEL, "endpoint": "completions", "stream": True,
                   "url": "http://127.0.0.1:8000"},
        "command_line": ["servescope", "attach", "--api-key", SECRETS[0],
                         f"--hf-token={SECRETS[2]}", "--model", MODEL],
        "engine": {"name": "vllm", "command": [
            "vllm", "serve", MODEL, "--api-key", SECRETS[1], "--chat-template", ERROR]},
        "workload": {"dataset": {"kind": "jsonl", "path": f"/data/{MODEL}.jsonl"}},
    })
    return run.path
