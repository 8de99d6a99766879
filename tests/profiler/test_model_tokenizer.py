"""``servescope run`` counts prompt tokens with the served model's own tokenizer when the
serving command names a local model directory."""

from __future__ import annotations

from pathlib import Path

from profiler.commands import model_tokenizer


def test_finds_the_model_directory_positional_or_flag(tmp_path: Path):
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "tokenizer.json").write_text("{}")
    assert model_tokenizer(["vllm", "serve", str(model), "--port", "1"]) == \
        model / "tokenizer.json"
    assert model_tokenizer(["python", "-m", "sglang.launch_server", "--model-path",
                            str(model)]) == model / "tokenizer.json"
    assert model_tokenizer(["trtllm-serve", f"--tokenizer={model}"]) == model / "tokenizer.json"
    # env wrappers and paths without a tokenizer are ignored
    assert model_tokenizer(["env", f"TMPDIR={tmp_path}", "/usr/bin/vllm", "serve",
                            str(model)]) == model / "tokenizer.json"


def test_explicit_tokenizer_hub_names_and_ambiguity(tmp_path: Path):
    assert model_tokenizer(["vllm", "serve", "meta-llama/Llama-3.1-8B"]) is None
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "tokenizer.json").write_text("{}")
    # the engine's own --tokenizer wins over the model directory; a hub name is not local
    assert model_tokenizer(["vllm", "serve", str(a), "--tokenizer", str(b)]) == \
        b / "tokenizer.json"
    assert model_tokenizer(["vllm", "serve", str(a), "--tokenizer", "org/tok"]) is None
    # two local model directories and no --tokenizer: ambiguous
    assert model_tokenizer(["x", str(a), str(b)]) is None
