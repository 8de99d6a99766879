"""No planted secret survives anywhere (fast tier, the real CLI in a subprocess).

``servescope run`` wraps a fake engine (tests/faults/fake_engine.py, behind a wrapper in this
module that also takes ``-H`` and ``--hf-token`` as an engine would) started with an API key,
an ``-H 'Authorization: Bearer …'`` header and ``--hf-token=…``, which it logs as a Python
list and bare; the environment carries ``HF_TOKEN`` and ``MY_SERVICE_PASSWORD`` (which the
engine prints bare: only servescope's registry of known values can find them) and
``OPENAI_API_KEY`` (the client's key). One more secret reaches the engine by a way servescope
cannot see (as from a config file: an environment variable with an ordinary name), and the
engine prints it as JSON, YAML, ``key=value`` and an argparse ``Namespace``: only the patterns
can find that one. Once the run succeeds, once the engine
fails at start. Then every byte of every file of the run directory (parquet files decoded),
and the terminal output, is searched for each secret, raw, base64-encoded and URL-encoded.

Run as ``python -m tests.faults.test_secrets_e2e ARGS`` this module is that engine wrapper.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


_UNSEEN = "SECRETS_E2E_LOG_VALUE"  # an ordinary name: servescope cannot know it is a secret


def _secret(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}Zq"


@pytest.fixture
def tracker() -> Iterator[object]:
    from tests.e2e._support import Tracker

    t = Tracker()
    yield t
    t.kill()


@pytest.fixture
def planted() -> dict[str, str]:
    return {"api_key": _secret("Ak"), "bearer": _secret("Bh"), "hf_token_flag": _secret("Hf"),
            "log_secret": _secret("Ls"), "hf_token_env": _secret("Te"),
            "password_env": _secret("Pw")}


def _forms(value: str) -> dict[str, bytes]:
    return {"raw": value.encode(), "base64": base64.b64encode(value.encode()),
            "url": urllib.parse.quote(value, safe="").encode()}


def _run_dir_texts(run_dir: Path) -> dict[str, bytes]:
    """Every file's bytes; parquet files also as their decoded rows (they are compressed)."""
    import pyarrow.parquet as pq

    texts: dict[str, bytes] = {}
    for f in sorted(run_dir.rglob("*")):
        if not f.is_file():
            continue
        rel = str(f.relative_to(run_dir))
        texts[rel] = f.read_bytes()
        if f.suffix == ".parquet":
            texts[rel + " (decoded)"] = repr(pq.read_table(f).to_pylist()).encode()
    return texts


def _leaks(planted: dict[str, str], texts: dict[str, bytes]) -> list[str]:
    return [f"{name} ({form}) in {where}"
            for name, value in planted.items()
            for form, needle in _forms(value).items()
            for where, data in texts.items() if needle in data]


def _servescope(tmp_path: Path, tracker, planted: dict[str, str], *engine_extra: str):
    from tests.collectors._server import free_port
    from tests.e2e._support import run_servescope

    port = free_port()
    out = tmp_path / "run"
    engine = [sys.executable, "-m", "tests.faults.test_secrets_e2e", "--port", str(port),
              "--api-key", planted["api_key"], "-H", f"Authorization: Bearer {planted['bearer']}",
              f"--hf-token={planted['hf_token_flag']}", *engine_extra]
    env = {"HF_TOKEN": planted["hf_token_env"], "MY_SERVICE_PASSWORD": planted["password_env"],
           "OPENAI_API_KEY": planted["api_key"], _UNSEEN: planted["log_secret"]}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # run_servescope passes os.environ on (with the test's tag)
    try:
        res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url",
                              f"http://127.0.0.1:{port}", "--requests", "4", "--input-len",
                              "fixed:8", "--output-len", "fixed:4", "--ready-timeout", "60",
                              "--metrics-interval", "0.5", "--", *engine], tracker.tag,
                             timeout_s=100)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return res, out


def test_no_secret_in_a_successful_run(tmp_path, tracker, planted):
    from tests.e2e._support import manifest_json

    res, out = _servescope(tmp_path, tracker, planted)
    assert res.returncode == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    m = manifest_json(out)
    assert m["status"] == "complete"
    assert m["engine"]["processes"]  # the process list was recorded (and checked)
    log = (out / "engine" / "stdout.log").read_text()
    assert "REDACTED" in log  # the engine did print its secrets, masked
    assert (out / "requests.parquet").is_file()
    assert (out / "report.html").is_file()
    texts = _run_dir_texts(out)
    texts["terminal output"] = res.output.encode()
    assert _leaks(planted, texts) == []
    assert tracker.live() == {}


def test_no_secret_when_the_engine_fails_at_start(tmp_path, tracker, planted):
    from tests.e2e._support import manifest_json

    res, out = _servescope(tmp_path, tracker, planted, "--exit-at-once", "3")
    assert res.returncode == 1, res.output[-3000:]
    assert "Traceback" not in res.output
    assert "the engine exited with code 3" in res.text
    assert "REDACTED" in res.output  # the log tail with the engine's secrets, masked
    err = manifest_json(out)["engine"]["error"]
    assert "REDACTED" in err["log_tail"]
    texts = _run_dir_texts(out)
    texts["terminal output"] = res.output.encode()
    assert _leaks(planted, texts) == []
    assert tracker.live() == {}


# ---------------------------------------------------------------------------- the engine


def _engine(argv: list[str]) -> None:
    """The fake engine, plus ``-H`` and ``--hf-token`` (ignored) and the log lines of an
    engine that prints its arguments and its environment's secrets; ``--log-secret`` comes
    from the environment, out of servescope's sight."""
    from tests.faults import fake_engine

    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("-H", "--header", action="append", default=[])
    ap.add_argument("--hf-token", default=None)
    ap.add_argument("--api-key", default=None)
    known, rest = ap.parse_known_args(argv)
    print(f"non-default args: {argv}", flush=True)  # as vLLM logs them: a Python list
    print(f"serving with key {known.api_key}", flush=True)  # bare: only the registry knows
    print(f"hub login with {os.environ.get('HF_TOKEN')} and {known.hf_token}", flush=True)
    print(f"db password is {os.environ.get('MY_SERVICE_PASSWORD')}", file=sys.stderr,
          flush=True)
    print(f"extra headers: {known.header}", file=sys.stderr, flush=True)
    fake_engine.main([*rest, *(["--api-key", known.api_key] if known.api_key else []),
                      "--log-secret", os.environ[_UNSEEN]])


if __name__ == "__main__":
    _engine(sys.argv[1:])
