"""The GPU series (analyzers/gpu_series.py) and the GPU panels of the report's timeline,
checked as data against the two-phase GPU run the test writes (tests/reports/_gpu_runs.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzers.gpu_series import gpu_series, series_of, throttle_reasons
from analyzers.report_inputs import gather_run
from reports.html import run_figures
from reports.html.figspec import Figure
from servescope.rundir.layout import GPM_FILE, GPU_SAMPLES_FILE
from tests.analyzers._rundir import T0
from tests.reports import _gpu_runs as G
from tests.reports._html_runs import known_run


def _trace(fig: Figure, name: str) -> dict[str, Any]:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert len(found) == 1, [t.get("name") for t in fig["data"]]
    trace: dict[str, Any] = found[0]
    return trace


def _timeline(figs: dict[str, Any]) -> dict[str, Any]:
    tl: dict[str, Any] | None = figs["timeline"]
    assert tl is not None
    return tl


def _axis(fig: Figure, title: str) -> tuple[str, list[float]]:
    for key, ax in fig["layout"].items():
        if key.startswith("yaxis") and ax["title"]["text"] == title:
            return "y" + key.removeprefix("yaxis"), ax["domain"]
    raise AssertionError(f"no panel {title!r}")


def _phase_values(tr: dict[str, Any], split_s: float) -> tuple[set[float], set[float]]:
    x, y = np.array(tr["x"], dtype=float), np.array(tr["y"], dtype=float)
    return set(y[x < split_s - 0.02].tolist()), set(y[x > split_s + 0.02].tolist())


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    r = gather_run(G.gpu_run(tmp_path_factory.mktemp("gpu")), n_resamples=100)
    return r, _timeline(run_figures(r))


def test_series_are_every_sample_in_the_window_on_the_report_clock(one):
    r, _ = one
    g = r.gpu
    assert g is not None
    assert g.warnings == ()
    split_s = (G.SPLIT_MS - (r.origin_ns - T0) / 1e6) / 1e3
    sm = g.get("sm_busy_frac", 0)
    assert sm is not None
    assert sm.bin_s == 0.0
    # the window is [origin, last end]: samples before the first send are left out
    assert sm.t_s.min() >= 0.0
    assert sm.t_s.max() <= (r.measured["t_last_ns"].max() - r.origin_ns) / 1e9
    # GPM windows are placed at their middle: (t + PERIOD/2) ms from T0
    t_ms = G.sample_times_ms() + G.PERIOD_MS / 2
    expect_t = (t_ms - (r.origin_ns - T0) / 1e6) / 1e3
    keep = (expect_t >= 0) & (expect_t <= sm.t_s.max() + 1e-9)
    assert sm.t_s == pytest.approx(expect_t[keep])
    assert set(sm.value[sm.t_s < split_s - 0.02]) == {G.SM_UTIL[0] / 100}
    assert set(sm.value[sm.t_s > split_s + 0.02]) == {G.SM_UTIL[1] / 100}
    dram = g.get("dram_bw_bytes_per_s", 0)
    assert dram is not None
    assert dram.value.max() == pytest.approx(G.DRAM_UTIL[1] / 100 * G.PEAK_BYTES_PER_S)
    assert g.sample_period_s == {0: pytest.approx(G.PERIOD_MS / 1e3)}
    assert g.gpm_period_s == {0: pytest.approx(G.PERIOD_MS / 1e3)}


def test_throttle_spans_are_the_capped_samples_only(one):
    r, _ = one
    g = r.gpu
    assert g is not None
    (span,) = g.throttle  # the idle bit of phase 1 is not a throttle
    origin_ms = (r.origin_ns - T0) / 1e6
    assert span.start_s == pytest.approx((G.CAP_MS[0] - origin_ms) / 1e3)
    assert span.end_s == pytest.approx((G.CAP_MS[1] - origin_ms) / 1e3)
    assert span.reasons == ("SW power cap",)
    # pynvml's nvmlClocksEventReason* bits: idle, application clocks, sync boost and the
    # display clock are not throttles; the report and the analysis agree on which are
    assert throttle_reasons(0x1 | 0x2 | 0x10 | 0x100) == ()
    assert throttle_reasons(0xE8) == ("HW slowdown", "SW thermal", "HW thermal",
                                       "HW power brake")
    from analyzers.gpu.figures import THROTTLE_BITS
    from analyzers.gpu_series import THROTTLE_MASK

    assert THROTTLE_MASK == THROTTLE_BITS


def test_gpu_panels_traces_axes_and_spans(one):
    r, tl = one
    titles = [v["title"]["text"] for k, v in tl["layout"].items() if k.startswith("yaxis")]
    assert titles[-6:] == ["SM busy / occupancy", "DRAM BW (GB/s)", "tensor active",
                           "power (W)", "SM clock (MHz)", "GPU memory (GiB)"]
    assert all(t["xaxis"] == "x" for t in tl["data"])  # the shared time axis
    origin_s = (r.origin_ns - T0) / 1e9
    split = G.SPLIT_MS / 1e3 - origin_s
    sm_axis, _ = _axis(tl, "SM busy / occupancy")
    for name, vals, dash in (("SM busy", G.SM_UTIL, "solid"),
                             ("SM occupancy", G.SM_OCC, "dash")):
        tr = _trace(tl, name)
        assert tr["yaxis"] == sm_axis
        assert tr["line"]["dash"] == dash
        assert _phase_values(tr, split) == ({vals[0] / 100}, {vals[1] / 100})
    nvml = _trace(tl, "NVML util")
    assert nvml["line"]["dash"] == "dot"
    assert nvml["yaxis"] == sm_axis
    assert tl["layout"]["yaxis" + sm_axis[1:]]["tickformat"] == ".1~%"
    dram = _trace(tl, "DRAM BW")
    assert _phase_values(dram, split) == ({G.DRAM_UTIL[0] / 100 * 4800},
                                          {G.DRAM_UTIL[1] / 100 * 4800})
    peak = _trace(tl, "peak 4,800 GB/s")
    assert peak["y"] == [4800.0, 4800.0]
    assert peak["line"]["dash"] == "dash"
    assert _phase_values(_trace(tl, "tensor active"), split) == (
        {G.TENSOR[0] / 100}, {G.TENSOR[1] / 100})
    assert _phase_values(_trace(tl, "power"), split) == (set(G.POWER_W[:1]),
                                                          set(G.POWER_W[1:]))
    assert _phase_values(_trace(tl, "SM clock"), split) == ({1980.0}, {1500.0})
    assert _phase_values(_trace(tl, "memory used"), split) == ({40.0}, {60.0})
    # the throttled period: shaded inside the power and the clock panels only
    red = [s for s in tl["layout"]["shapes"] if s["fillcolor"] == "#d62728"]
    doms = sorted([_axis(tl, "power (W)")[1], _axis(tl, "SM clock (MHz)")[1]])
    assert sorted([s["y0"], s["y1"]] for s in red) == [pytest.approx(d, abs=1e-3)
                                                       for d in doms]
    for s in red:
        assert (s["x0"], s["x1"]) == (pytest.approx(G.CAP_MS[0] / 1e3 - origin_s, abs=1e-3),
                                      pytest.approx(G.CAP_MS[1] / 1e3 - origin_s, abs=1e-3))
    mark = _trace(tl, "throttled (power/thermal cap)")
    assert mark["text"] == ["GPU 0 throttled 0.4 s: SW power cap"]
    # the steady-state window is shaded across every panel, GPU ones included
    steady = [s for s in tl["layout"]["shapes"] if s["fillcolor"] != "#d62728"]
    assert len(steady) == 1
    assert (steady[0]["y0"], steady[0]["y1"]) == (0, 1)
    assert "NVML samples: GPU 0 every 10 ms (median spacing)" in tl["note"]


def test_one_trace_per_gpu(tmp_path):
    r = gather_run(G.gpu_run(tmp_path, gpus=2, stacks=False), n_resamples=50)
    tl = _timeline(run_figures(r))
    split = G.SPLIT_MS / 1e3 - (r.origin_ns - T0) / 1e9
    a, b = _trace(tl, "GPU 0 SM busy"), _trace(tl, "GPU 1 SM busy")
    assert a["line"]["color"] != b["line"]["color"]
    assert _phase_values(b, split) == ({G.SM_UTIL[0] / 200}, {G.SM_UTIL[1] / 200})
    assert {t["name"] for t in tl["data"] if "SM clock" in t["name"]} == {
        "GPU 0 SM clock", "GPU 1 SM clock"}
    # both GPUs capped over the same period: shaded once per panel
    assert len([s for s in tl["layout"]["shapes"] if s["fillcolor"] == "#d62728"]) == 2


def test_long_series_are_reduced_to_bounded_bin_means(tmp_path):
    n = 5000
    t = np.arange(n, dtype=np.int64) * 1_000_000  # 1 ms apart, 5 s
    power = np.where(np.arange(n) % 2 == 0, 100.0, 300.0)  # mean 200 in every bin
    mem = (np.arange(n) % 10).astype(np.int64) * 2**30  # largest 9 GiB in every bin
    samples = pd.DataFrame({"t_ns": t, "gpu_index": 0, "mig_gpu_instance": None,
                            "util_gpu_frac": 1.0, "power_w": power, "sm_clock_mhz": 1980,
                            "mem_used_bytes": mem, "clock_event_reasons": 0})
    g = series_of((), samples, None, origin_ns=0, t0_ns=0, t1_ns=int(t[-1]), max_points=100)
    assert g is not None
    p, m = g.get("power_w", 0), g.get("mem_used_bytes", 0)
    assert p is not None
    assert m is not None
    assert p.t_s.size == 100
    assert p.samples == n
    assert p.bin_s == pytest.approx(t[-1] / 1e9 / 100)
    assert p.value == pytest.approx(np.full(100, 200.0), abs=2.0)
    assert set(m.value) == {9 * 2**30}  # memory: the peak per bin, never averaged away
    assert g.get("sm_busy_frac", 0) is None  # no GPM rows: no GPM series


def test_run_without_gpu_has_no_gpu_panels(tmp_path):
    r = gather_run(known_run(tmp_path, engine=False), n_resamples=50)
    assert r.gpu is None
    tl = _timeline(run_figures(r))
    assert not any(t["name"].startswith(("SM", "DRAM", "power")) for t in tl["data"])
    assert not [s for s in tl["layout"]["shapes"] if s["fillcolor"] == "#d62728"]


def test_unreadable_file_is_a_warning_and_the_rest_is_drawn(tmp_path):
    run = G.gpu_run(tmp_path, stacks=False)
    (run.path / GPM_FILE).write_bytes(b"not parquet")
    g = gpu_series(run.path, T0, T0, T0 + 2 * 10**9)
    assert g is not None
    assert len(g.warnings) == 1
    assert GPM_FILE in g.warnings[0]
    assert g.get("sm_busy_frac", 0) is None
    assert g.get("power_w", 0) is not None
    (run.path / GPU_SAMPLES_FILE).unlink()
    (run.path / GPM_FILE).unlink()
    assert gpu_series(run.path, 0, 0, 1) is None
