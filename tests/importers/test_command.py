"""``import_command``: exit codes and what it prints (the CLI wires it as ``servescope import``)."""

from __future__ import annotations

from profiler.commands_import import import_command
from tests.importers._peers import AIPERF_OK, GUIDELLM_OK, VLLM_OK


def test_import_prints_what_was_reconstructed_and_the_tools_own_definitions(tmp_path, capsys):
    assert import_command(AIPERF_OK, tmp_path / "run", None) == 0
    out, err = capsys.readouterr()
    assert "imported 30 requests from AIPerf 0.13.0" in err
    assert "reconstructed" in err
    assert "inter_chunk_latency" in err
    assert "warning:" in err
    assert "under AIPerf's definitions" in out
    assert "time_to_first_token" in out
    assert (tmp_path / "run" / "manifest.json").is_file()


def test_a_version_missing_from_the_file_is_said(tmp_path, capsys):
    assert import_command(VLLM_OK, tmp_path / "run", "vllm-bench") == 0
    _, err = capsys.readouterr()
    assert "vllm bench serve (version not in the file)" in err


def test_bad_input_exits_2_with_one_clear_line_and_no_traceback(tmp_path, capsys):
    cases = [
        (GUIDELLM_OK, tmp_path / "a", "aiperf"),  # wrong tool
        (VLLM_OK, tmp_path / "b", "nonsense"),  # unknown tool
        (tmp_path / "missing.json", tmp_path / "c", None),  # no file
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases.append((empty, tmp_path / "d", None))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    cases.append((VLLM_OK, taken, None))
    for source, out, tool in cases:
        assert import_command(source, out, tool) == 2, (source, tool)
        _, err = capsys.readouterr()
        assert err.startswith("error: "), err
        assert "Traceback" not in err
    assert not any((tmp_path / n).exists() for n in "abcd")
