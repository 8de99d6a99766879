"""Bad input: a clear ImportFormatError naming the file, line or key and what was expected;
nothing written; an existing non-empty --out is never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profiler.importers import ImportFormatError, UnknownImporterError, import_run
from servescope.rundir.layout import RunDirError
from tests.importers._peers import AIPERF_OK, GUIDELLM_OK, VLLM_OK, imported, load

_ALL = [(VLLM_OK, "vllm-bench"), (AIPERF_OK, "aiperf"), (GUIDELLM_OK, "guidellm")]
_IDS = ["vllm-bench", "aiperf", "guidellm"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _fails(source: Path, tmp_path: Path, tool: str | None = None) -> str:
    out = tmp_path / "out"
    with pytest.raises(ImportFormatError) as info:
        import_run(source, out, tool)
    assert not out.exists()  # nothing written
    return str(info.value)


@pytest.mark.parametrize(("source", "tool"), _ALL, ids=_IDS)
def test_an_empty_file_is_refused(source, tool, tmp_path):
    empty = _write(tmp_path, source.name, "")
    assert "empty file" in _fails(empty, tmp_path, tool)
    assert "empty file" in _fails(empty, tmp_path)  # detection says so too


@pytest.mark.parametrize(("source", "tool"), [_ALL[0], _ALL[2]], ids=["vllm-bench", "guidellm"])
def test_a_truncated_json_file_names_where_it_ends(source, tool, tmp_path):
    text = source.read_text()
    cut = _write(tmp_path, source.name, text[: len(text) // 2])
    msg = _fails(cut, tmp_path, tool)
    assert str(cut) in msg
    assert "truncated?" in msg
    assert "line 1, column" in msg


def test_an_aiperf_file_cut_mid_record_keeps_the_records_before_it(tmp_path):
    """AIPerf appends records; a file cut in its last record (a crash) loses that one."""
    text = AIPERF_OK.read_text()
    cut = _write(tmp_path, "profile_export.jsonl", text[: len(text) - 200])
    run = imported(cut, tmp_path)
    assert len(run.requests) == 29
    assert any("line 30" in w and "cut short" in w for w in run.manifest.warnings)


def test_an_aiperf_line_broken_in_the_middle_is_an_error(tmp_path):
    lines = AIPERF_OK.read_text().splitlines()
    lines[4] = lines[4][:100]
    bad = _write(tmp_path, "profile_export.jsonl", "\n".join(lines) + "\n")
    msg = _fails(bad, tmp_path, "aiperf")
    assert "line 5, column" in msg
    assert "AIPerf profile_export.jsonl record" in msg


def test_the_wrong_tool_is_named_and_the_right_one_suggested(tmp_path):
    msg = _fails(VLLM_OK, tmp_path, "aiperf")
    assert "looks like vllm bench serve" in msg
    assert "--tool vllm-bench" in msg
    msg = _fails(GUIDELLM_OK, tmp_path, "vllm-bench")
    assert "--tool guidellm" in msg


def test_an_unknown_tool_lists_the_valid_ones(tmp_path):
    with pytest.raises(UnknownImporterError, match="valid tools: vllm-bench, aiperf, guidellm"):
        import_run(VLLM_OK, tmp_path / "out", "guidelm")
    with pytest.raises(UnknownImporterError, match="did you mean 'guidellm'"):
        import_run(VLLM_OK, tmp_path / "out", "guidelm")


def test_an_unrecognized_file_lists_the_known_tools(tmp_path):
    other = _write(tmp_path, "results.json", json.dumps({"hello": [1, 2, 3]}))
    msg = _fails(other, tmp_path)
    assert "vllm-bench" in msg
    assert "aiperf" in msg
    assert "guidellm" in msg
    assert "--tool" in msg


def test_a_missing_file_says_so(tmp_path):
    assert "no such file" in _fails(tmp_path / "nope.json", tmp_path)
    assert "no such file" in _fails(tmp_path / "nope.json", tmp_path, "guidellm")


def test_vllm_result_without_details_asks_for_save_detailed(tmp_path):
    data = load(VLLM_OK)
    for key in ("ttfts", "itls", "start_times", "generated_texts", "errors"):
        del data[key]
    src = _write(tmp_path, "plain.json", json.dumps(data))
    msg = _fails(src, tmp_path, "vllm-bench")
    assert "key 'ttfts'" in msg
    assert "--save-detailed" in msg


@pytest.mark.parametrize(("mutate", "where", "expected"), [
    (lambda d: d.pop("itls"), "key 'itls'", "this key to be present"),
    (lambda d: d["ttfts"].__setitem__(4, "fast"), "key 'ttfts[4]'", "expected a number"),
    (lambda d: d["itls"][2].append(None), "key 'itls[2][7]'", "expected a number"),
    (lambda d: d["output_lens"].pop(), "key 'output_lens'", "30 entries"),
    (lambda d: d["errors"].__setitem__(0, 5), "key 'errors[0]'", "expected a string"),
], ids=["missing", "string-ttft", "null-itl", "short-list", "error-not-text"])
def test_vllm_fields_are_checked_by_key(mutate, where, expected, tmp_path):
    data = load(VLLM_OK)
    mutate(data)
    msg = _fails(_write(tmp_path, "r.json", json.dumps(data)), tmp_path, "vllm-bench")
    assert where in msg
    assert expected in msg


def test_aiperf_fields_are_checked_by_line_and_key(tmp_path):
    lines = [json.loads(x) for x in AIPERF_OK.read_text().splitlines()]
    del lines[2]["metadata"]["request_start_ns"]
    lines[5]["metrics"]["time_to_first_token"]["unit"] = "furlongs"
    src = _write(tmp_path, "profile_export.jsonl", "\n".join(map(json.dumps, lines)) + "\n")
    msg = _fails(src, tmp_path, "aiperf")
    assert "line 3, key 'metadata.request_start_ns'" in msg
    del lines[2]
    src.write_text("\n".join(map(json.dumps, lines)) + "\n")
    msg = _fails(src, tmp_path, "aiperf")
    assert "line 5, key 'metrics.time_to_first_token.unit'" in msg
    assert "a time unit" in msg
    assert "'furlongs'" in msg


def test_guidellm_fields_are_checked_by_key_path(tmp_path):
    doc = load(GUIDELLM_OK)
    del doc["benchmarks"][0]["requests"]["successful"][3]["info"]["timings"]
    msg = _fails(_write(tmp_path, "b.json", json.dumps(doc)), tmp_path, "guidellm")
    assert "key 'benchmarks[0].requests.successful[3].info.timings'" in msg
    doc["benchmarks"] = []
    msg = _fails(_write(tmp_path, "b.json", json.dumps(doc)), tmp_path, "guidellm")
    assert "key 'benchmarks'" in msg
    assert "at least one benchmark" in msg


def test_a_non_empty_output_directory_is_never_overwritten(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        import_run(VLLM_OK, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"


def test_an_existing_empty_directory_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    import_run(VLLM_OK, out)
    assert (out / "manifest.json").is_file()
    assert (out / "requests.parquet").is_file()
    assert not (out / "journal").exists()
