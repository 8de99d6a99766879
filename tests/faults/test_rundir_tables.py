"""One malformed journal line never makes a run directory unreadable: it becomes a kept
request row, ``invalid_response`` with the reason and without its events, and a warning
(issue 8, point 5 and case 3); a line that is not a request at all is skipped with a warning
naming file:line (case 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from servescope.records import EventKind, RequestRecord
from servescope.rundir.layout import journal_path
from servescope.rundir.reader import load_run
from servescope.rundir.tables import finalize_tables, read_journals
from tests.analyzers._rundir import T0, out, request, usage, write_run


def _good(rid: int) -> dict[str, Any]:
    rec = request(rid, rid * 10.0, [out(rid * 10.0 + 1, 3, 1), usage(rid * 10.0 + 2, 1)],
                  done_ms=rid * 10.0 + 3, completion_tokens=1, prompt_tokens=4)
    d: dict[str, Any] = orjson.loads(orjson.dumps(rec))
    return d


def _with(rid: int, **changes: Any) -> dict[str, Any]:
    d = _good(rid)
    d.update(changes)
    return d


# request id → (the line, what the reason must say)
BAD_LINES: dict[int, tuple[dict[str, Any], str]] = {
    2: (_with(2, ev_kind=[0, 2]), "event lists of unequal length"),
    3: (_with(3, ev_tokens_cum=[1, 2**31, -1]), "ev_tokens_cum"),
    4: (_with(4, ev_chars=["3", 0, 0]), "ev_chars"),
    5: (_with(5, ev_kind=[0, 1.5, 4]), "ev_kind"),
    6: (_with(6, ev_t_ns="x"), "ev_t_ns is not a list"),
    7: (_with(7, ev_chars=[True, 0, 0]), "ev_chars"),
    8: (_with(8, ev_kind=[0, 99, 4]), "ev_kind"),
    9: (_with(9, status="200"), "status"),
    10: (_with(10, outcome=5), "outcome"),
    11: (_with(11, output_text=7), "output_text"),
    12: (_with(12, usage_completion_tokens=2**63), "usage_completion_tokens"),
    13: (_with(13, t_end_ns=1.5), "t_end_ns"),
    14: (_with(14, ev_t_ns=None, ev_kind=[0], ev_chars=[1], ev_tokens_cum=[1]),
         "event lists of unequal length"),
}
GOOD_IDS = [0, 1, 15, 16]


def _journal(run_dir: Path, lines: list[bytes]) -> None:
    path = journal_path(run_dir, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _bad_run(tmp_path: Path) -> Path:
    run = write_run(tmp_path, [], finalize=False)  # manifest only
    lines = [orjson.dumps(_good(i)) for i in GOOD_IDS[:2]]
    lines += [orjson.dumps(d) for d, _ in BAD_LINES.values()]
    # a time beyond int64 (orjson reads it as an unsigned 64-bit integer)
    lines.append(orjson.dumps(_good(17)).replace(b'"ev_t_ns":[', b'"ev_t_ns":[18446744073709551615,'
                                                  ).replace(b'"ev_kind":[', b'"ev_kind":[0,')
                 .replace(b'"ev_chars":[', b'"ev_chars":[0,')
                 .replace(b'"ev_tokens_cum":[', b'"ev_tokens_cum":[-1,'))
    lines += [orjson.dumps(_good(i)) for i in GOOD_IDS[2:]]
    _journal(run.path, lines)
    return run.path


def _check(requests: Any, events: Any, warnings: list[str]) -> None:
    assert sorted(requests["request_id"]) == sorted([*GOOD_IDS, *BAD_LINES, 17])
    by_id = requests.set_index("request_id")
    for rid in GOOD_IDS:
        row = by_id.loc[rid]
        assert row["outcome"] == "success"
        assert row["n_events"] == 3
        assert list(events[events["request_id"] == rid]["kind"]) == [
            EventKind.OUTPUT, EventKind.USAGE, EventKind.DONE]
        assert events[events["request_id"] == rid]["t_ns"].min() > T0
    for rid, (_, reason) in [*BAD_LINES.items(), (17, ("", "ev_t_ns"))]:
        row = by_id.loc[rid]
        assert row["outcome"] == "invalid_response", rid
        assert reason in row["error"], (rid, row["error"])
        assert row["n_events"] == 0
        assert (events["request_id"] != rid).all()
        assert any(f"request {rid}:" in w for w in warnings), (rid, warnings)
    assert by_id.loc[9, "status"] == -1  # a bad scalar reads as "not known"
    assert by_id.loc[12, "usage_completion_tokens"] == -1
    assert len(events) == requests["n_events"].sum()


def test_bad_lines_become_invalid_rows_when_finalized(tmp_path: Path) -> None:
    run_dir = _bad_run(tmp_path)
    n, warnings = finalize_tables(run_dir)
    assert n == len(GOOD_IDS) + len(BAD_LINES) + 1
    run = load_run(run_dir)
    assert run.source == "parquet"
    _check(run.requests, run.events, warnings)


def test_bad_lines_read_from_the_journal(tmp_path: Path) -> None:
    run = load_run(_bad_run(tmp_path))
    assert run.source == "journal"
    _check(run.requests, run.events, run.warnings)


def test_summarize_reads_it(tmp_path: Path) -> None:
    from profiler.commands import summarize_command

    run_dir = _bad_run(tmp_path)
    finalize_tables(run_dir)
    assert summarize_command(run_dir, "", None) == 0


@pytest.mark.parametrize(("line", "why"), [
    (b"[1, 2, 3]", "not a JSON object"),
    (b"42", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b"null", "not a JSON object"),
    (b'{"outcome": "success"}', "no integer request_id"),
    (b'{"request_id": "7"}', "no integer request_id"),
    (b'{"request_id": true}', "no integer request_id"),
    (b'{"request_id": 1.0}', "no integer request_id"),
    (b'{"request_id": 99999999999999999999}', "no integer request_id"),  # read as a float
    (b'{"request_id": 1, "worker_id": "a"', "incomplete"),
    (b"\xff\xfe", "incomplete"),
])
def test_lines_that_are_not_requests_are_skipped_with_file_and_line(
        tmp_path: Path, line: bytes, why: str) -> None:
    run = write_run(tmp_path, [], finalize=False)
    _journal(run.path, [orjson.dumps(_good(0)), line, orjson.dumps(_good(1))])
    lines, warnings = read_journals(run.path)
    assert [d["request_id"] for d in lines] == [0, 1]
    assert len(warnings) == 1
    assert warnings[0].startswith("worker-0.jsonl:2: ")
    assert why in warnings[0]
    loaded = load_run(run.path)
    assert list(loaded.requests["request_id"]) == [0, 1]


def test_a_good_run_has_no_warnings(tmp_path: Path) -> None:
    recs = [RequestRecord(request_id=i) for i in range(3)]
    run = write_run(tmp_path, recs)
    assert run.warnings == []
    assert list(run.requests["outcome"]) == ["success"] * 3
