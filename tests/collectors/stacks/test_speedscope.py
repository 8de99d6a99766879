"""Parsing py-spy's speedscope files: the real one recorded on the H200 (a torch loop), and
small ones built to a known shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.stacks.speedscope import (
    SpeedscopeError,
    hot_frames,
    read_speedscope,
    threads_of,
)

REAL = Path(__file__).parents[2] / "data" / "stacks" / "pyspy_torch_loop.speedscope.json"


def test_real_file_one_main_thread() -> None:
    profile = read_speedscope(REAL)
    assert profile.samples == 299
    [thread] = profile.threads
    assert (thread.tid, thread.thread_name) == (498, "MainThread")
    [row] = threads_of(profile, 7, "main", ticks=300)
    assert (row.pid, row.role, row.tid, row.samples) == (7, "main", 498, 299)
    assert row.active_frac == pytest.approx(299 / 300)


def test_real_file_lines_of_one_function_are_one_function() -> None:
    # <module> at lines 5 (280 samples), 4 (12) and 2 (7): one function, at its hottest line
    [hot] = hot_frames(read_speedscope(REAL), 7, "main")
    assert (hot.function, hot.file, hot.line) == ("<module>", "<string>", 5)
    assert (hot.self_samples, hot.total_samples) == (299, 299)
    assert hot.self_frac == hot.total_frac == 1.0


def _write(tmp_path: Path, frames: list[tuple[str, str, int]],
           profiles: dict[str, list[list[int]]]) -> Path:
    data = {"$schema": "https://www.speedscope.app/file-format-schema.json",
            "shared": {"frames": [{"name": n, "file": f, "line": ln, "col": None}
                                  for n, f, ln in frames]},
            "profiles": [{"type": "sampled", "name": name, "unit": "seconds",
                          "startValue": 0.0, "endValue": 0.01 * len(s), "samples": s,
                          "weights": [0.01] * len(s)} for name, s in profiles.items()],
            "exporter": "py-spy@0.4.3", "name": "py-spy profile"}
    path = tmp_path / "p.speedscope.json"
    path.write_text(json.dumps(data))
    return path


def test_total_self_and_recursion_counted_once(tmp_path: Path) -> None:
    frames = [("thread (11): gen", "", 0), ("loop", "a.py", 3), ("step", "a.py", 9),
              ("step", "a.py", 10), ("sleep_ish", "b.py", 1)]
    # 4 samples: loop>step, loop>step>step (recursion), loop>step, loop>sleep_ish;
    # the --threads root frame is not a function
    path = _write(tmp_path, frames, {'Thread 11 "gen"': [[0, 1, 2], [0, 1, 2, 3], [0, 1, 3],
                                                         [0, 1, 4]],
                                     'Thread 0x7f00 "other"': [[1]]})
    profile = read_speedscope(path)
    assert [(t.tid, t.thread_name) for t in profile.threads] == [(11, "gen"), (0x7F00, "other")]
    rows = {(h.tid, h.function): h for h in hot_frames(profile, 1, "worker")}
    assert not any(fn.startswith("thread (") for _, fn in rows)
    step, loop, sleep = rows[11, "step"], rows[11, "loop"], rows[11, "sleep_ish"]
    assert (step.total_samples, step.self_samples, step.total_frac, step.self_frac) == (
        3, 3, 0.75, 0.75)
    assert step.line in (9, 10)
    assert (loop.total_samples, loop.self_samples, loop.total_frac) == (4, 0, 1.0)
    assert (sleep.total_samples, sleep.self_samples) == (1, 1)
    # hottest first by total samples
    assert [h.function for h in hot_frames(profile, 1, "worker") if h.tid == 11] == [
        "loop", "step", "sleep_ish"]


def test_top_keeps_union_of_total_and_self(tmp_path: Path) -> None:
    frames = [("root", "r.py", 1)] + [(f"f{i}", "f.py", i) for i in range(40)]
    samples = [[0, 1 + i] for i in range(40) for _ in range(40 - i)]
    profile = read_speedscope(_write(tmp_path, frames, {'Thread 1 "t"': samples}))
    hot = hot_frames(profile, 1, "main", top=5)
    names = [h.function for h in hot]
    assert names[0] == "root"  # total 100 %, self 0: kept by total
    assert set(names) == {"root", "f0", "f1", "f2", "f3", "f4"}  # top 5 by self


def test_active_frac_never_above_one(tmp_path: Path) -> None:
    profile = read_speedscope(_write(tmp_path, [("f", "f.py", 1)],
                                     {'Thread 1 "t"': [[0]] * 10}))
    [row] = threads_of(profile, 1, "main", ticks=4)  # py-spy fell behind the clock
    assert row.active_frac == 1.0


@pytest.mark.parametrize(("text", "why"), [
    ("{not json", "not JSON"),
    ('{"profiles": []}', "not a speedscope profile"),
    ('{"shared": {"frames": []}, "profiles": [{"name": "Thread 1", "samples": [[3]]}]}',
     "not a speedscope profile"),
])
def test_bad_file_is_one_line_error(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SpeedscopeError, match=why) as err:
        read_speedscope(path)
    assert "\n" not in str(err.value)
    assert str(path) in str(err.value)
