"""The live view: fields from a Progress, plain log lines when not on a terminal, and the
engine gauges read from a real vLLM-CPU /metrics page (capture made during load)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

from rich.console import Console

from collectors.client.progress import Progress
from collectors.live_gauges import LiveGauges, live_families
from reports.live import LiveView, live_fields
from servescope.engines.base import Signal
from servescope.engines.registry import get_spec

PAGE = Path(__file__).resolve().parents[1] / "data" / "vllm_cpu" / "metrics_during_load.prom"


def _expected(family: str) -> float:
    vals = [float(m) for m in re.findall(rf"^{re.escape(family)}(?:{{[^}}]*}})? (\S+)$",
                                         PAGE.read_text(), re.MULTILINE)]
    assert vals, family
    return sum(vals)


def test_gauges_from_a_real_vllm_page():
    live = LiveGauges(live_families(get_spec("vllm")))
    assert all(math.isnan(v) for v in live.values().values())
    live.update_from_page(PAGE.read_bytes())
    v = live.values()
    assert v[Signal.KV_CACHE_USAGE_FRAC] == _expected("vllm:kv_cache_usage_perc")
    assert v[Signal.REQUESTS_RUNNING] == _expected("vllm:num_requests_running")
    assert v[Signal.REQUESTS_WAITING] == _expected("vllm:num_requests_waiting")
    live.update_from_page(b"# nothing here\n")  # a page without the families keeps the last
    assert live.values()[Signal.REQUESTS_RUNNING] == _expected("vllm:num_requests_running")


def test_fields_percentiles_and_rates():
    p = Progress(done=50, planned=100, in_flight=4, errors=1, output_tokens=6400,
                 recent_ttft_ns=[i * 1_000_000 for i in range(1, 101)],
                 recent_itl_ns=[5_000_000] * 99 + [80_000_000],
                 engine={"kv_cache_usage_frac": 0.25, "requests_running": 4.0,
                         "requests_waiting": 2.0})
    f = live_fields(p, elapsed_s=10.0)
    assert f["done"] == "50/100"
    assert f["req/s"] == "5.0"
    assert f["out tok/s"] == "640"
    # 1..100 ms: p50 at rank 49.5 → 50.5, p99 at rank 98.01 → 99.01 (docs/metrics.md)
    assert f["TTFT p50/p99 ms"] == "50.5/99.0"
    # 99 × 5 ms and one 80 ms: p99 at rank 98.01 → 5 + 0.01·75 = 5.75
    assert f["ITL p50/p99 ms"] == "5.0/5.8"
    assert f["KV cache"] == "25.0%"
    assert f["running/waiting"] == "4/2"
    empty = live_fields(Progress(), elapsed_s=0.0)
    assert empty["TTFT p50/p99 ms"] == "–/–"
    assert "KV cache" not in empty  # no engine metrics: no engine fields


def test_plain_lines_when_not_a_terminal_and_no_markup_from_labels():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=300)
    with LiveView(console, "[bold red]model[/] @ url", log_every_s=0.0) as view:
        view.update(Progress(done=3, in_flight=1))
        view.update(Progress(done=4, in_flight=0))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[bold red]model[/] @ url: done 3, in flight 1, errors 0")


def test_gpu_fields_when_the_gpu_collector_publishes_them():
    gpu = {"gpu_sm_util_frac": 0.123, "gpu_dram_bw_frac": 0.856, "gpu_tensor_frac": 0.4,
           "gpu_util_frac": 1.0, "gpu_power_w": 612.4, "gpu_mem_used_bytes": 70.5 * 2**30}
    f = live_fields(Progress(done=3, engine=gpu), elapsed_s=1.0)
    assert f["SM busy"] == "12%"
    assert f["DRAM of peak"] == "86%"
    assert f["tensor"] == "40%"
    assert f["NVML util"] == "100%"
    assert f["power"] == "612 W"
    assert f["GPU mem"] == "70.5 GiB"
    # a GPU-only engine (transformers serve has no /metrics): no KV-cache fields
    assert "KV cache" not in f
    assert "running/waiting" not in f
    # a key the collector did not publish (no GPM: pre-Hopper) or NaN is not shown
    part = live_fields(Progress(engine={"gpu_util_frac": 0.5, "gpu_sm_util_frac": math.nan,
                                        "kv_cache_usage_frac": 0.25}), elapsed_s=1.0)
    assert part["NVML util"] == "50%"
    assert "SM busy" not in part
    assert "DRAM of peak" not in part
    assert part["KV cache"] == "25.0%"
    line = LiveView(Console(file=io.StringIO(), force_terminal=False), "run").line(
        Progress(engine=gpu))
    assert "SM busy 12%" in line
    assert "power 612 W" in line
