"""Importers by name, and which tool wrote a file, from its name and first bytes."""

from __future__ import annotations

import pytest

from profiler.importers import IMPORTERS, detect_importer, get_importer, importer_names
from tests.importers._peers import (
    AIPERF_FAULTS,
    AIPERF_OK,
    AIPERF_TRACE,
    GUIDELLM_FAULTS,
    GUIDELLM_OK,
    VLLM_FAULTS,
    VLLM_OK,
)


@pytest.mark.parametrize(("source", "name"), [
    (VLLM_OK, "vllm-bench"), (VLLM_FAULTS, "vllm-bench"), (AIPERF_OK, "aiperf"),
    (AIPERF_FAULTS, "aiperf"), (AIPERF_TRACE, "aiperf"), (GUIDELLM_OK, "guidellm"),
    (GUIDELLM_FAULTS, "guidellm"),
])
def test_each_capture_is_detected_as_its_tool_and_by_no_other(source, name):
    assert detect_importer(source).name == name
    head = source.read_text()[:8192]
    assert [i.name for i in IMPORTERS if i.sniff(source, head)] == [name]


def test_names_and_spellings():
    assert importer_names() == ("vllm-bench", "aiperf", "guidellm")
    assert get_importer("VLLM_bench").name == "vllm-bench"
    assert get_importer(" AIPerf ").name == "aiperf"
    assert {i.definitions for i in IMPORTERS} == {"vllm", "aiperf", "guidellm"}


def test_definitions_name_real_peer_definitions():
    from analyzers.definitions import get_definition

    for importer in IMPORTERS:
        assert get_definition(importer.definitions).name == importer.definitions
