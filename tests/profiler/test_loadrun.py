"""run_load end to end against the real reference server: schedules, phases, steps,
several worker processes on one clock, multi-turn sessions."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collectors.client.target import Target
from profiler.loadrun import LoadConfig, run_load
from profiler.selftest.process import RefServerHandle
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist, WorkloadError
from servescope.rundir.layout import RunDirError
from servescope.rundir.reader import load_run


def cfg(url: str, out: Path, *, ref: dict[str, Any] | None = None, chat: bool = False,
        **kw: Any) -> LoadConfig:
    base: dict[str, Any] = {
        "target": Target(base_url=url, model="ref", endpoint="chat" if chat else "completions",
                         extra_body={"servescope_ref": ref} if ref else {}),
        "dataset": DatasetSpec("synthetic", input_len=LengthDist.fixed(8),
                               output_len=LengthDist.fixed(8)),
        "arrival": ArrivalSpec("closed", concurrency=4),
        "out_dir": out, "num_requests": 20,
    }
    base.update(kw)
    return LoadConfig(**base)


def test_closed_loop_complete_run_directory(refserver: RefServerHandle, tmp_path: Path
                                            ) -> None:
    res = run_load(cfg(refserver.url, tmp_path / "r", warmup_requests=4))
    assert res.status == "complete"
    assert res.error == ""
    assert not (res.run_dir / ".reserve").exists()  # kept only while the run goes on
    run = load_run(res.run_dir)
    assert run.source == "parquet"
    assert run.manifest.status == "complete"
    req = run.requests
    assert len(req) == 24
    assert req["request_id"].is_unique
    assert (req["phase"] == "warmup").sum() == 4
    assert (req["outcome"] == "success").all()
    assert (req["t_intended_ns"] == -1).all()  # closed loop has no schedule
    assert run.manifest.ended_wall_ns > run.manifest.started_wall_ns
    assert not (res.run_dir / "journal").exists()
    # never more than 4 in flight: at any send time, fewer than 4 others are open
    sends, ends = req["t_send_ns"].to_numpy(), req["t_end_ns"].to_numpy()
    assert max(int(((sends <= t) & (ends > t)).sum()) for t in sends) <= 4


def test_open_loop_constant_rate_follows_schedule(refserver: RefServerHandle,
                                                  tmp_path: Path) -> None:
    res = run_load(cfg(refserver.url, tmp_path / "r",
                       arrival=ArrivalSpec("constant", rate_per_s=50.0), num_requests=25))
    req = load_run(res.run_dir).requests.sort_values("t_intended_ns")
    intended = req["t_intended_ns"].to_numpy()
    assert np.allclose(np.diff(intended), 20e6, atol=1)  # exactly 1/50 s apart
    lag = req["t_send_ns"].to_numpy() - intended
    assert (lag >= 0).all()
    assert np.percentile(lag, 50) < 5e6


def test_coordinated_omission_is_visible(refserver: RefServerHandle, tmp_path: Path) -> None:
    # 100 req/s offered, but only 1 in flight and each takes ~50 ms: the client falls behind
    res = run_load(cfg(refserver.url, tmp_path / "r", ref={"ttft_ms": 40, "itl_ms": 1},
                       arrival=ArrivalSpec("constant", rate_per_s=100.0, concurrency=1),
                       num_requests=12))
    req = load_run(res.run_dir).requests.sort_values("t_intended_ns")
    lag_ms = (req["t_send_ns"] - req["t_intended_ns"]).to_numpy() / 1e6
    assert lag_ms[-1] > 300  # the last request waited ~11 × (50 − 10) ms for its slot
    assert np.all(np.diff(lag_ms) > 0)


def test_duration_stops_dispatching(refserver: RefServerHandle, tmp_path: Path) -> None:
    res = run_load(cfg(refserver.url, tmp_path / "r", num_requests=None, duration_s=1.0))
    req = load_run(res.run_dir).requests
    span_s = (req["t_send_ns"].max() - req["t_send_ns"].min()) / 1e9
    assert 0.8 < span_s <= 1.05
    assert len(req) > 20


def test_sweep_steps_are_separate(refserver: RefServerHandle, tmp_path: Path) -> None:
    res = run_load(cfg(refserver.url, tmp_path / "r", sweep=(1.0, 3.0), num_requests=6))
    req = load_run(res.run_dir).requests
    assert sorted(req["step"].unique()) == [0, 1]
    assert req["request_id"].is_unique
    assert res.run_dir.joinpath("manifest.json").read_text().count('"concurrency": 3') >= 1


def test_two_worker_processes_one_run_one_clock(refserver: RefServerHandle,
                                                tmp_path: Path) -> None:
    res = run_load(cfg(refserver.url, tmp_path / "r", workers=2, num_requests=30,
                       arrival=ArrivalSpec("constant", rate_per_s=100.0)))
    assert res.status == "complete"
    req = load_run(res.run_dir).requests
    assert len(req) == 30
    assert req["request_id"].is_unique
    assert set(req["worker_id"]) == {0, 1}
    # one schedule across both processes: merged intended times are 10 ms apart
    intended = np.sort(req["t_intended_ns"].to_numpy())
    assert np.allclose(np.diff(intended), 10e6, atol=1)
    truth = {t["request_id"]: t for t in refserver.truth()}
    # one clock: every worker's send precedes the server's receipt, shortly
    gaps = [truth[x]["t_recv_ns"] - s for x, s in zip(req["x_request_id"], req["t_send_ns"],
                                                       strict=True)]
    assert min(gaps) > 0
    assert max(gaps) < 0.2e9


def test_multi_turn_sends_history(refserver: RefServerHandle, tmp_path: Path) -> None:
    ds = DatasetSpec("multi_turn", input_len=LengthDist.fixed(6), output_len=LengthDist.fixed(4),
                     turns=LengthDist.fixed(3))
    res = run_load(cfg(refserver.url, tmp_path / "r", chat=True, dataset=ds, num_requests=2,
                       arrival=ArrivalSpec("closed", concurrency=2)))
    req = load_run(res.run_dir).requests
    assert len(req) == 6
    assert sorted(req.groupby("conversation_id")["turn"].apply(list).tolist()) == [
        [0, 1, 2], [0, 1, 2]]
    truth = {t["request_id"]: t for t in refserver.truth()}
    for _, conv in req.groupby("conversation_id"):
        prompts = [truth[x]["prompt_tokens"] for x in conv.sort_values("turn")["x_request_id"]]
        assert prompts[0] < prompts[1] < prompts[2]  # each turn carries the history


def test_refuses_existing_directory(refserver: RefServerHandle, tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "something").write_text("x")
    with pytest.raises(RunDirError, match="not empty"):
        run_load(cfg(refserver.url, out))


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="--requests"):
        cfg("http://127.0.0.1:9", tmp_path, num_requests=None)
    with pytest.raises(WorkloadError, match="workers"):
        dataclasses.replace(cfg("http://127.0.0.1:9", tmp_path), workers=0)


def test_fewer_closed_loop_streams_than_workers_is_refused(tmp_path: Path) -> None:
    """Two workers and one stream: the second worker had no slot, so its half of
    ``--requests`` was silently never sent while the run said ``complete``."""
    one = ArrivalSpec("closed", concurrency=1)
    with pytest.raises(WorkloadError, match=r"1 stream.*2 workers"):
        cfg("http://127.0.0.1:9", tmp_path, arrival=one, workers=2)
    with pytest.raises(WorkloadError, match=r"2 stream.*3 workers"):
        cfg("http://127.0.0.1:9", tmp_path, workers=3, sweep=(2.0, 4.0))
    assert cfg("http://127.0.0.1:9", tmp_path, arrival=one, workers=1).workers == 1
    assert cfg("http://127.0.0.1:9", tmp_path, workers=4).workers == 4


def test_closed_loop_backs_off_when_the_server_is_gone(tmp_path: Path) -> None:
    """Nothing listens: each slot waits 10 ms, doubling up to 1 s, after a refused connection
    instead of flooding the run (without it: thousands of connection errors a second)."""
    c = cfg("http://127.0.0.1:9", tmp_path / "run", num_requests=None, duration_s=2.0,
            arrival=ArrivalSpec("closed", concurrency=2))
    res = run_load(c)
    req = load_run(res.run_dir).requests
    assert set(req["outcome"]) == {"connection_error"}
    # per slot in 2 s: waits of 0.01+0.02+...+0.64 (1.27 s) then 1 s: at most ~9 attempts
    assert 2 <= len(req) <= 2 * 10
