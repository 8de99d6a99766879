"""Collectors by name: what --collect accepts, the error that lists the valid names, and
validate_environment() before anything starts — with a registry the test makes itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collectors.base import Collector, CollectorUnavailable
from collectors.registry import (
    COLLECTORS,
    CollectorEntry,
    UnknownNameError,
    describe,
    make_collectors,
    parse_collect,
)
from servescope.registry import Registry
from tests.collectors._probe import Probe


def probe_registry(**probe) -> Registry[CollectorEntry]:
    return Registry("collector", [
        ("requests", CollectorEntry("requests", "the client's timing")),
        ("probe", CollectorEntry("probe", "a test probe", lambda: Probe(**probe))),
    ])


def test_todays_collectors_and_nothing_else():
    assert COLLECTORS.names() == ("requests", "metrics", "gpu", "stacks", "kernels", "otel")
    assert COLLECTORS.get("requests").always_on
    assert not any(COLLECTORS.get(n).always_on for n in ("metrics", "gpu", "stacks"))
    assert "metrics (the engine's metrics pages" in describe()
    assert "gpu (NVML and Hopper GPM telemetry" in describe()
    assert "stacks (CPU stacks of every engine process with py-spy" in describe()


def test_names_are_split_trimmed_and_kept_once_in_order():
    assert parse_collect("metrics") == ("metrics",)
    assert parse_collect(" Metrics , requests,metrics,") == ("metrics", "requests")
    assert parse_collect("") == ()
    assert parse_collect(["requests"]) == ("requests",)


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        parse_collect("metrics,warpdrive")
    assert str(err.value) == ("unknown collector 'warpdrive'; valid collectors: requests, "
                              "metrics, gpu, stacks, kernels, otel")
    assert isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match=r"'metric' \(did you mean 'metrics'\?\)"):
        parse_collect("metric")


def test_a_test_registry_is_used_and_the_real_one_left_alone():
    reg = probe_registry()
    assert parse_collect("probe,requests", reg) == ("probe", "requests")
    with pytest.raises(UnknownNameError, match="valid collectors: requests, probe"):
        parse_collect("metrics", reg)
    made = make_collectors(["requests", "probe"], reg)
    assert [c.name for c in made] == ["probe"]  # always-on ones are the client's own
    assert isinstance(made[0], Collector)
    assert "probe" not in COLLECTORS


def test_validate_environment_runs_when_made():
    reg = probe_registry(unavailable="the probe needs probe-tools: pip install probe-tools")
    with pytest.raises(CollectorUnavailable, match=r"^the probe needs probe-tools: pip"):
        make_collectors(["probe"], reg)


def test_the_metrics_collector_is_made_and_validated():
    [metrics] = make_collectors(["metrics"])
    assert metrics.name == "metrics"
    assert metrics.label == "metrics scraper"
    assert isinstance(metrics, Collector)


def test_listing_collectors_imports_none_of_them():
    code = ("import sys\nfrom collectors.registry import COLLECTORS, describe\n"
            "describe(); COLLECTORS.names()\n"
            "print([m for m in ('aiohttp', 'collectors.engine_scrape_process', 'prometheus_client')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- through run and attach


def test_attach_runs_each_chosen_collector_and_records_its_counts(refserver, tmp_path):
    from profiler.cli_workload import WorkloadOptions
    from profiler.engine_run import EngineOptions, attach_engine
    from servescope.rundir.manifest import read_manifest

    opts = EngineOptions(engine="openai", collect="probe,requests", registry=probe_registry())
    assert opts.collectors() == ("probe", "requests")
    out = tmp_path / "run"
    cfg = WorkloadOptions(requests=40, concurrency=2, input_len="fixed:8",
                          output_len="fixed:8").to_config(refserver.url, "ref", out, ["t"])
    res = attach_engine(refserver.url, opts, config=cfg)
    assert res.status == "complete"
    manifest = read_manifest(out)
    counts = manifest.collectors["probe"]  # under its name
    assert counts["ticks"] >= 1
    assert counts["process_cpu_ns"] > 0
    assert (out / "probe.txt").read_text().count("\n") == counts["ticks"]
    assert manifest.engine is not None
    assert manifest.engine.scrapes is None  # metrics was not chosen


def test_an_unavailable_collector_stops_run_before_the_engine_starts(tmp_path):
    from profiler.engine_run import EngineOptions, run_engine

    marker = tmp_path / "engine-started"
    opts = EngineOptions(engine="openai", url="http://127.0.0.1:9", collect="probe",
                         registry=probe_registry(unavailable="probe needs probe-tools: pip "
                                                 "install probe-tools"))
    with pytest.raises(CollectorUnavailable, match="pip install probe-tools"):
        run_engine([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], opts,
                   make_config=lambda *_: None, out=tmp_path / "run",  # type: ignore[arg-type]
                   command_line=["t"])
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


def test_an_unknown_collector_is_refused_with_the_valid_names():
    from profiler.engine_run import EngineOptions

    with pytest.raises(ValueError, match=r"^--collect: unknown collector 'warpdrive'; valid "
                                         r"collectors: requests, metrics, gpu, stacks, kernels, "
                                         r"otel$"):
        EngineOptions(collect="metrics,warpdrive")
    assert EngineOptions(scrape=False).collectors() == ()  # --no-metrics
    assert EngineOptions(collect="requests,metrics", scrape=False).collectors() == ("requests",)
    assert EngineOptions().collectors() == ("metrics",)
