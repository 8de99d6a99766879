"""A full disk under ``--out`` stops the run at once, keeps every request already journaled,
ends the manifest ``interrupted`` with the reason, leaves no temporary file, and the run
directory stays readable (issue 8, case 8).

The disk is a 2 MB tmpfs mounted for the test (root only; skipped elsewhere), mostly filled
beforehand so that it runs full within a second or two.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.client.target import Target
from profiler.loadrun import LoadConfig, run_load
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist
from servescope.rundir.reader import load_run
from tests.e2e._support import new_tag, run_servescope
from tests.faults.server import FaultServer

FREE_BYTES = 640 << 10  # left free on the small disk when a test starts


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small disk for the disk-full test")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a 2 MB tmpfs for the disk-full test (needs root or "
                    f"CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        st = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - FREE_BYTES))
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def _config(url: str, out: Path) -> LoadConfig:
    return LoadConfig(
        target=Target(base_url=url, model="m"),
        dataset=DatasetSpec("synthetic", input_len=LengthDist.fixed(4),
                            output_len=LengthDist.fixed(16)),
        arrival=ArrivalSpec("closed", concurrency=2), out_dir=out, duration_s=30)


def _no_tmp_no_reserve(run_dir: Path) -> None:
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert not (run_dir / ".reserve").exists()


def test_disk_full_stops_the_run_and_keeps_what_was_journaled(
        small_disk: Path, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    from profiler.commands import summarize_command

    caplog.set_level(logging.WARNING)
    t0 = time.monotonic()
    with FaultServer() as srv:
        res = run_load(_config(srv.url, small_disk / "run"))
        sent = srv.hits.get("/v1/completions", 0)
    took_s = time.monotonic() - t0
    run = load_run(res.run_dir)
    n = len(run.requests)
    assert res.status == "interrupted"
    assert run.manifest.status == "interrupted"
    journal = res.run_dir / "journal" / "worker-0.jsonl"
    assert res.error == (f"no space left on device writing {journal}: the run stopped; "
                         f"{n} requests kept")
    assert res.error in run.manifest.warnings
    assert res.requests == n > 20
    assert (run.requests["outcome"] == "success").all()
    # stopped at once: besides those kept, only the 2 in flight were sent (not written)
    assert sent <= n + 2, (sent, n)
    assert took_s < 25  # far from the 30 s duration
    _no_tmp_no_reserve(res.run_dir)
    out = capfd.readouterr()
    assert "Traceback" not in out.out + out.err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert summarize_command(res.run_dir, "", None) == 0


def test_no_room_to_start_is_one_error(small_disk: Path) -> None:
    from servescope.rundir.layout import RunDirError

    st = os.statvfs(small_disk)
    (small_disk / "more").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - (64 << 10)))
    with FaultServer() as srv, pytest.raises(RunDirError, match="no space left on device"):
        run_load(_config(srv.url, small_disk / "run"))
    assert srv.hits.get("/v1/completions", 0) == 0
    _no_tmp_no_reserve(small_disk / "run")


def test_the_cli_on_a_full_disk(small_disk: Path) -> None:
    out = small_disk / "run"
    with FaultServer() as srv:
        r = run_servescope(["attach", "--url", srv.url, "--model", "m", "--out", str(out),
                            "--concurrency", "2", "--duration", "30", "--no-metrics",
                            "--input-len", "fixed:4", "--output-len", "fixed:16"],
                           new_tag(), timeout_s=90)
    assert "Traceback" not in r.output
    assert "no space left on device writing" in r.text
    assert r.returncode == 1, r.output[-2000:]
    last = [line for line in r.output.splitlines() if line.strip()][-1]
    assert last.startswith("error: no space left on device writing"), last
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    _no_tmp_no_reserve(out)
    assert len(load_run(out).requests) > 20


def test_disk_full_with_two_worker_processes(small_disk: Path) -> None:
    """Each worker stops at its own failed write; the parent sees records that ended but are
    not in the journals, and stops the run the same way."""
    import dataclasses

    with FaultServer() as srv:
        cfg = dataclasses.replace(_config(srv.url, small_disk / "run"), workers=2)
        res = run_load(cfg)
        sent = srv.hits.get("/v1/completions", 0)
    n = len(load_run(res.run_dir).requests)
    assert res.status == "interrupted"
    assert res.error == (f"no space left on device writing {res.run_dir / 'journal'}: "
                         f"the run stopped; {n} requests kept")
    assert sent <= n + 2 * 2, (sent, n)  # at most each worker's slots in flight
    _no_tmp_no_reserve(res.run_dir)


def test_import_onto_a_full_disk_is_one_error(small_disk: Path) -> None:
    """The importer writes through the same journal writer, which no longer raises: the full
    disk is reported as one RunDirError line, not a partial import that looks whole."""
    from profiler.importers import import_run
    from servescope.rundir.layout import RunDirError
    from tests.importers._peers import VLLM_OK

    (small_disk / "filler").unlink()
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - (12 << 10)))
    with pytest.raises(RunDirError, match=r"no space left on device writing \S*/journal/"):
        import_run(VLLM_OK, small_disk / "imported", "vllm-bench")
    assert not [p for p in (small_disk / "imported").rglob("*.tmp")]
