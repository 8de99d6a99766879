"""Redaction: every form a secret takes in argv, the environment and engine logs is masked,
and the look-alikes engines print all the time (``max_tokens``, ``tokenizer``, ``eos_token``)
are left alone."""

from __future__ import annotations

import base64
import json
import urllib.parse

import pytest

from servescope.redact import (
    REDACTED,
    is_secret_name,
    known_secrets,
    redact_argv,
    redact_known_bytes,
    redact_text,
    register_secrets,
    secrets_in,
)

S = "Qx7-unregistered-9Lm2"  # a value no test registers: only patterns can find it


@pytest.mark.parametrize(("line", "kept"), [
    ('{"event": "config", "api_key": "%s"}', '{"event": "config", "api_key": "'),
    ('{"API_KEY":"%s","port":8000}', '"port":8000'),
    ("api_key=%s", "api_key="),
    ("api_key: %s", "api_key: "),
    ("'api_key': '%s'", "'api_key': '"),
    ("args: Namespace(api_key='%s', port=8000)", ", port=8000)"),
    ("Namespace(api_key=['%s'], model='m')", "model='m'"),
    ("Authorization: Bearer %s", "Authorization: Bearer "),
    ("authorization: token %s", "authorization: token "),
    ("x-api-key: %s", "x-api-key: "),
    ("X-Api-Key=%s&model=m", "&model=m"),
    ("starting with token=%s and more", " and more"),
    ("password = %s", "password = "),
    ("HF_TOKEN=%s vllm serve m", " vllm serve m"),
    ("MY_SERVICE_PASSWORD: %s", "MY_SERVICE_PASSWORD: "),
    ("client_secret: '%s'", "client_secret: '"),
    ("vllm serve m --api-key %s --port 8000", "--port 8000"),
    ("vllm serve m --hf-token=%s", "--hf-token="),
    ("['vllm', 'serve', '--api-key', '%s', '--port', '8000']", "'--port', '8000'"),
    ("curl -H 'Authorization: Bearer %s' http://h/v1", "http://h/v1"),
    ('{\\"api_key\\": \\"%s\\"}', '{\\"api_key\\": \\"'),
    ("postgres://user:%s@db:5432/x", "postgres://user:"),
    ("send Bearer %s now", "send Bearer "),
])
def test_secret_forms_are_masked(line, kept):
    text = line % S
    out = redact_text(text)
    assert S not in out, out
    assert REDACTED in out
    assert kept in out  # the key, the quotes and the rest of the line stay readable


@pytest.mark.parametrize("line", [
    "max_tokens: 128",
    "tokenizer=/models/llama-3/tokenizer.json",
    "num_tokens=5",
    "token_ids=[101, 2023, 102]",
    '{"prompt_tokens": 4, "completion_tokens": 12, "total_tokens": 16}',
    "prompt_token_ids: [1, 2, 3]",
    "eos_token: </s>",
    "Namespace(pad_token='<pad>', bos_token='<s>', tokenizer_mode='auto', api_key=None, "
    "hf_token=None, use_auth_token=True)",
    "--max-num-batched-tokens 2048 --tokenizer /m/tok --max-tokens 64",
    "(APIServer pid=1) INFO 11-22 15:09:30 [loggers.py:123] Engine 000: Avg prompt "
    "throughput: 512.3 tokens/s, Avg generation throughput: 1024.5 tokens/s, Running: 20 reqs",
    'INFO:     127.0.0.1:51234 - "POST /v1/completions HTTP/1.1" 200 OK',
    "Using basic scheduler with key_cache_dtype=auto",
    "monkey: banana; author: me; the api key is set; key: value",
    "api_key_env: OPENAI_API_KEY",
    "TOKENIZERS_PARALLELISM=false",
    "http://127.0.0.1:8000/metrics",
])
def test_look_alikes_are_left_alone(line):
    assert redact_text(line) == line


def test_well_known_key_formats_without_a_key_name():
    keys = ["sk-proj-abcdefghij1234567890", "sk-abcdefghijklmnopqrstuv",
            "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "ghp_" + "a1" * 18,
            "nvapi-" + "x9" * 10, "AKIAIOSFODNN7EXAMPLE"]
    out = redact_text("keys: " + " and ".join(keys))
    for k in keys:
        assert k not in out
    # a word that merely starts like one stays
    assert redact_text("sk-learn and hf_config_path") == "sk-learn and hf_config_path"


@pytest.mark.parametrize(("name", "secret"), [
    ("HF_TOKEN", True), ("HUGGING_FACE_HUB_TOKEN", True), ("OPENAI_API_KEY", True),
    ("x-api-key", True), ("apiKey", True), ("APIKEY", True), ("--api-key", True),
    ("--hf-token", True), ("AWS_SECRET_ACCESS_KEY", True), ("PGPASSWORD", True),
    ("MY_SERVICE_PASSWORD", True), ("Authorization", True), ("access_token", True),
    ("client_secret", True), ("token", True), ("cookie", True),
    ("max_tokens", False), ("tokenizer", False), ("num_tokens", False), ("token_ids", False),
    ("eos_token", False), ("pad_token_id", False), ("api_key_env", False), ("key", False),
    ("monkey", False), ("TOKENIZERS_PARALLELISM", False), ("AWS_ACCESS_KEY_ID", False),
    ("SSH_AUTH_SOCK", False), ("author", False), ("--max-num-batched-tokens", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_redact_argv_every_form():
    argv = ["vllm", "serve", "m", "--api-key", "k-one-111", "--api-key=k-two-222",
            "--hf-token", "k-three-333", "--hf-token=k-four-444", "-H",
            "Authorization: Bearer k-five-555", "--header", "x-api-key: k-six-666",
            "--tokenizer", "/m/tok", "--max-num-batched-tokens", "2048",
            "--api-key-env", "OPENAI_API_KEY", "HF_TOKEN=k-seven-777"]
    out = redact_argv(argv)
    joined = " ".join(out)
    for n in ("one-111", "two-222", "three-333", "four-444", "five-555", "six-666",
              "seven-777"):
        assert n not in joined
    assert out[3:6] == ["--api-key", REDACTED, f"--api-key={REDACTED}"]
    assert out[10] == f"Authorization: Bearer {REDACTED}"
    assert out[13:19] == ["--tokenizer", "/m/tok", "--max-num-batched-tokens", "2048",
                          "--api-key-env", "OPENAI_API_KEY"]
    # a bare --hf-token (vLLM: use the cached login) does not swallow the next flag
    assert redact_argv(["--hf-token", "--model", "m"]) == ["--hf-token", "--model", "m"]


def test_secrets_in_argv_and_environment():
    argv = ["vllm", "serve", "m", "--api-key", "argv-key-1", "--hf-token=argv-tok-2", "-H",
            "Authorization: Bearer argv-bearer-3", "--port", "8000", "--tokenizer", "/m/tok"]
    env = {"HF_TOKEN": "env-token-4", "MY_SERVICE_PASSWORD": "env-pass-5", "PATH": "/usr/bin",
           "TOKENIZERS_PARALLELISM": "falsefalse", "DB_URL": "postgres://u:env-url-6@h/db",
           "SHORT_TOKEN": "abc"}
    assert set(secrets_in(argv, env)) == {"argv-key-1", "argv-tok-2", "argv-bearer-3",
                                          "env-token-4", "env-pass-5", "env-url-6"}


def test_registered_values_are_removed_in_every_form():
    short = "k7x9q2"  # no pattern could know it: the registry does
    odd = 'pa"ss\\w0rd/+?'
    register_secrets([short, odd, "tiny"])
    assert "tiny" not in known_secrets()  # under 6 characters: would mask ordinary words
    # a child process gets the values as given, and derives their other forms itself
    assert {short, odd} <= set(known_secrets())
    assert base64.b64encode(odd.encode()).decode() not in known_secrets()
    forms = [short, odd, json.dumps(odd)[1:-1], urllib.parse.quote(odd, safe=""),
             base64.b64encode(odd.encode()).decode()]
    for form in forms:
        out = redact_text(f"engine says {form} here")
        assert out == f"engine says {REDACTED} here", (form, out)
    assert redact_known_bytes(b"label=" + short.encode()) == b"label=" + REDACTED.encode()


