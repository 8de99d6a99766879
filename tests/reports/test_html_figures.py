"""The report's figures checked as data: each plotted number against the run the test built
with chosen timings (tests/reports/_html_runs.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analyzers.compare import compare_runs
from analyzers.report_inputs import gather_run
from reports.html import ab_figures, run_figures
from reports.html.figspec import Figure
from tests.reports._html_runs import GAP_MS, ITL_MS, KV, PREEMPTIONS, TTFT_MS, N, known_run


def _trace(fig: Figure | None, name: str) -> dict[str, Any]:
    assert fig is not None
    found: list[dict[str, Any]] = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    return found[0]


def _vals(xs: list[float | None]) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in xs], dtype=float)


@pytest.fixture(scope="module")
def figs(tmp_path_factory):
    run = known_run(tmp_path_factory.mktemp("fig"))
    return run_figures(gather_run(run, n_resamples=200))


def test_cdf_traces_are_the_exact_ecdfs(figs):
    cdf = figs["cdf"]
    assert [t["name"] for t in cdf["data"]] == ["TTFT", "ITL (per token)", "TPOT", "E2E"]
    ttft = _trace(cdf, "TTFT")
    assert ttft["x"] == pytest.approx(np.sort(TTFT_MS).tolist())
    assert ttft["y"] == pytest.approx((np.arange(1, N + 1) / N).tolist(), rel=1e-3)
    itl = _trace(cdf, "ITL (per token)")
    assert set(itl["x"]) == {ITL_MS}
    e2e = _trace(cdf, "E2E")
    assert e2e["x"] == pytest.approx(np.sort(TTFT_MS + 7 * ITL_MS).tolist())
    tpot = _trace(cdf, "TPOT")
    assert set(tpot["x"]) == {ITL_MS}
    assert "drawn at" not in cdf["note"]  # 40 samples: every step is drawn
    assert cdf["layout"]["xaxis4"]["title"]["text"] == "E2E (ms)"


def _panel_axis(fig: Figure, title: str) -> str:
    for key, ax in fig["layout"].items():
        if key.startswith("yaxis") and ax["title"]["text"] == title:
            return "y" + str(key).removeprefix("yaxis")
    raise AssertionError(f"no panel {title!r}")


def test_timeline_panels_and_their_numbers(figs):
    tl = figs["timeline"]
    titles = [v["title"]["text"] for k, v in sorted(tl["layout"].items())
              if k.startswith("yaxis")]
    assert set(titles) == {"requests/s", "in flight (client)", "TTFT (ms)", "ITL (ms)",
                           "KV cache used", "preemptions"}
    assert all(t["xaxis"] == "x" for t in tl["data"])  # one shared time axis
    width = tl["data"][0]["x"][1] - tl["data"][0]["x"][0]
    sent = _vals(_trace(tl, "sent/s")["y"])
    assert np.nansum(sent) * width == pytest.approx(N)
    done = _vals(_trace(tl, "completed/s")["y"])
    assert np.nansum(done) * width == pytest.approx(N)
    # in flight: its time integral is the requests' total duration
    inflight = _trace(tl, "in flight")
    step = inflight["x"][1] - inflight["x"][0]
    durations_s = (TTFT_MS + 7 * ITL_MS + 0.1 + 0.5).sum() / 1e3
    assert np.nansum(_vals(inflight["y"])) * step == pytest.approx(durations_s, rel=0.01)
    ttft = _trace(tl, "TTFT per request")
    assert ttft["yaxis"] == _panel_axis(tl, "TTFT (ms)")
    assert ttft["customdata"] == list(range(N))
    assert ttft["x"] == pytest.approx((np.arange(N) * GAP_MS / 1e3).tolist())
    assert ttft["y"] == pytest.approx(TTFT_MS.tolist())
    p50 = _vals(_trace(tl, "ITL p50")["y"])
    assert set(p50[~np.isnan(p50)]) == {ITL_MS}
    assert "shown" not in tl["note"]  # nothing sampled


def test_timeline_engine_panels(figs):
    tl = figs["timeline"]
    kv = _trace(tl, "KV cache usage")
    assert kv["yaxis"] == _panel_axis(tl, "KV cache used")
    span = tl["layout"]["xaxis"]["range"][1]
    keep = [i for i in range(len(KV)) if 0.1 * i <= span]
    assert kv["x"] == pytest.approx([0.1 * i for i in keep])
    assert kv["y"] == pytest.approx([KV[i] for i in keep])
    pre = [t for t in tl["data"] if t["name"].startswith("preemptions per")]
    assert len(pre) == 1
    assert np.nansum(_vals(pre[0]["y"])) == PREEMPTIONS[min(keep[-1], len(KV) - 1)]


def test_timeline_without_engine_has_client_panels_only(tmp_path):
    figs = run_figures(gather_run(known_run(tmp_path, engine=False), n_resamples=100))
    tl = figs["timeline"]
    assert tl is not None
    titles = {v["title"]["text"] for k, v in tl["layout"].items()
              if k.startswith("yaxis")}
    assert titles == {"requests/s", "in flight (client)", "TTFT (ms)", "ITL (ms)"}
    assert figs["decomposition"] is None
    assert figs["sweep"] is None


def test_decomposition_parts_add_up_to_the_client_mean(figs):
    d = figs["decomposition"]
    assert d is not None
    total = sum(t["x"][0] for t in d["data"] if t["x"][0] is not None)
    assert d["data"][0]["y"][0] == "TTFT"
    assert total == pytest.approx(float(np.mean(TTFT_MS)), rel=0.2)


def test_ab_figures_show_both_runs_and_the_change(tmp_path):
    a = known_run(tmp_path, "a", engine=False)
    b = known_run(tmp_path, "b", engine=False, scale=3.0)
    c = compare_runs(a.path, b.path)
    figs = ab_figures(gather_run(a, n_resamples=100), gather_run(b, n_resamples=100), c)
    cdf = figs["cdf"]
    assert _trace(cdf, "A · a TTFT")["x"] == pytest.approx(np.sort(TTFT_MS).tolist())
    assert _trace(cdf, "B · b TTFT")["x"] == pytest.approx(np.sort(TTFT_MS * 3).tolist())
    ch = figs["changes"]
    assert ch is not None
    by_label = {y: (t["name"], x) for t in ch["data"] for y, x in zip(t["y"], t["x"],
                                                                      strict=True)}
    verdict, change = by_label["TTFT p50"]
    assert verdict == "regressed"
    assert change == pytest.approx(200.0, rel=0.05)
    assert ch["layout"]["shapes"][0]["x1"] == pytest.approx(5.0)


def test_sweep_curve_marks_the_steps(tmp_path):
    from servescope.rundir.reader import load_run
    from tests.analyzers._gate_runs import edit_manifest, records
    from tests.analyzers._rundir import write_run

    recs = []
    for s, rate in enumerate((10.0, 20.0, 40.0)):
        for r in records(np.full(10, 20.0 * (s + 1) ** 2), np.full(10, 5.0), gap_ms=1000 / rate):
            r.request_id += 100 * s
            r.step = s
            shift = int(s * 1e9)
            r.t_send_ns += shift
            r.t_headers_ns += shift
            r.t_done_ns += shift
            r.t_end_ns += shift
            r.ev_t_ns = [t + shift for t in r.ev_t_ns]
            recs.append(r)
    run = write_run(tmp_path, recs, name="sweep")
    steps = [{"kind": "poisson", "rate_per_s": r, "concurrency": None} for r in (10, 20, 40)]
    edit_manifest(run.path, {"workload": {"steps": steps, "arrival": steps[0]}})
    figs = run_figures(gather_run(load_run(run.path), n_resamples=100))
    sw = figs["sweep"]
    assert sw is not None
    p99 = _trace(sw, "E2E p99")
    assert p99["y"] == pytest.approx([20 + 35, 80 + 35, 180 + 35], rel=0.01)
    assert p99["text"] == ["step 0: 10 req/s", "step 1: 20 req/s", "step 2: 40 req/s"]
