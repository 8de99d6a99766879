"""Datasets read from files: ``jsonl`` prompts and ``sharegpt`` conversations.

The whole file is parsed and checked first (a malformed line or entry is a
:class:`WorkloadError` naming the file and the line or entry), then entries are visited in
seeded random order (or file order) and tokenized only until ``n`` usable ones are found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from profiler.workloads.errors import WorkloadError
from profiler.workloads.sessions import Session, Turn
from profiler.workloads.spec import DatasetSpec
from profiler.workloads.tokenizer import Tokenizer

__all__ = ["build_jsonl", "build_sharegpt", "read_jsonl_prompts", "read_sharegpt"]

_NS_PER_S = 1_000_000_000
USER_ROLES = frozenset({"human", "user"})
ASSISTANT_ROLES = frozenset({"gpt", "assistant", "chatgpt", "bing", "bard", "model"})
OTHER_ROLES = frozenset({"system"})


def read_bytes(path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise WorkloadError(f"{path}: cannot read: {exc.strerror or exc}") from exc


@dataclass(frozen=True, slots=True)
class PromptEntry:
    """One ``jsonl`` line: the prompt and its own ``max_tokens`` if it gave one."""

    line: int
    prompt: str
    max_tokens: int | None


def _content_text(content: object, where: str) -> str:
    """A chat message's content: a string, or a list of parts whose text parts are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if texts and all(isinstance(t, str) for t in texts):
            return "\n".join(t for t in texts if isinstance(t, str))
    raise WorkloadError(f"{where}: message content must be a string or a list of text parts")


def _prompt_of(obj: dict[str, Any], where: str) -> str:
    for key in ("prompt", "text"):
        if key in obj:
            value = obj[key]
            if not isinstance(value, str):
                raise WorkloadError(f"{where}: {key!r} must be a string")
            return value
    messages = obj.get("messages")
    if messages is None:
        raise WorkloadError(f"{where}: no prompt field (expected 'prompt', 'text' or 'messages')")
    if not isinstance(messages, list):
        raise WorkloadError(f"{where}: 'messages' must be a list")
    for msg in reversed(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise WorkloadError(f"{where}: each message must be an object with a 'role'")
        if msg["role"] == "user":
            return _content_text(msg.get("content"), where)
    raise WorkloadError(f"{where}: 'messages' has no user message")


def _max_tokens_of(obj: dict[str, Any], where: str) -> int | None:
    for key in ("max_tokens", "output_len"):
        if key in obj:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WorkloadError(f"{where}: {key!r} must be an integer >= 1, got {value!r}")
            return value
    return None


def read_jsonl_prompts(path: str) -> list[PromptEntry]:
    """Every prompt of a JSONL file: one object per line with ``prompt``, ``text`` or chat
    ``messages`` (the last user message is taken) and optional ``max_tokens``/``output_len``.
    Blank lines are skipped."""
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkloadError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    entries = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise WorkloadError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise WorkloadError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        prompt = _prompt_of(obj, where)
        if not prompt.strip():
            raise WorkloadError(f"{where}: empty prompt")
        entries.append(PromptEntry(line_no, prompt, _max_tokens_of(obj, where)))
    if not entries:
        raise WorkloadError(f"{path}: no prompts (empty file)")
    return entries


Message = tuple[str, str]  # ("user" | "assistant" | "system", text)


def read_sharegpt(path: str) -> list[list[Message]]:
    """Every conversation of a ShareGPT file: a JSON list of
    ``{"conversations": [{"from": "human"|"gpt"|…, "value": text}, …]}``."""
    try:
        data = orjson.loads(read_bytes(path))
    except orjson.JSONDecodeError as exc:
        raise WorkloadError(
            f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    if not isinstance(data, list):
        raise WorkloadError(f"{path}: expected a JSON list of conversations")
    roles = sorted(USER_ROLES | ASSISTANT_ROLES | OTHER_ROLES)
    convs = []
    for idx, item in enumerate(data):
        where = f"{path}: entry {idx}"
        conv = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(conv, list):
            raise WorkloadError(f"{where}: expected an object with a 'conversations' list")
        msgs: list[Message] = []
        for j, msg in enumerate(conv):
            src = msg.get("from") if isinstance(msg, dict) else None
            value = msg.get("value") if isinstance(msg, dict) else None
            if not isinstance(src, str) or not isinstance(value, str):
                raise WorkloadError(f"{where}, message {j}: needs string 'from' and 'value'")
            role = src.lower()
            if role not in roles:
                raise WorkloadError(
                    f"{where}, message {j}: unknown 'from' {src!r}; known: {', '.join(roles)}"
                )
            if role in USER_ROLES:
                role = "user"
            elif role in ASSISTANT_ROLES:
                role = "assistant"
            msgs.append((role, value))
        convs.append(msgs)
    if not convs:
        raise WorkloadError(f"{path}: no conversations (empty list)")
    return convs


def _visit_order(count: int, spec: DatasetSpec, rng: np.random.Generator) -> Iterator[int]:
    if spec.shuffle:
        return (int(i) for i in rng.permutation(count))
    return iter(range(count))


def _collect(
    count: int,
    n: int,
    spec: DatasetSpec,
    rng: np.random.Generator,
    make: Callable[[int, int], Session | None],
) -> list[Session]:
    """Visit entries in order, keeping the first ``n`` that ``make`` turns into sessions."""
    out: list[Session] = []
    for idx in _visit_order(count, spec, rng):
        sess = make(idx, len(out))
        if sess is not None:
            out.append(sess)
            if len(out) == n:
                return out
    raise WorkloadError(
        f"{spec.path}: only {len(out)} usable entries of {count} "
        f"(after max_input_tokens/answer filters), {n} asked for"
    )


def build_jsonl(
    spec: DatasetSpec, n: int, tok: Tokenizer, rng: np.random.Generator
) -> list[Session]:
    """Single-turn sessions from a JSONL prompt file (see :func:`read_jsonl_prompts`)."""
    path = spec.path or ""
    entries = read_jsonl_prompts(path)

    def make(idx: int, sid: int) -> Session | None:
        e = entries[idx]
        count = len(tok.encode(e.prompt))
        if spec.max_input_tokens is not None and count > spec.max_input_tokens:
            return None
        if spec.output_len is None and e.max_tokens is not None:
            max_tokens = e.max_tokens
        else:
            max_tokens = spec.output_len_or_default().sample(rng, 1)[0]
        return Session(sid, (Turn(e.prompt, count, max_tokens),), prompt_tokens_source=tok.source)

    return _collect(len(entries), n, spec, rng, make)


def _sharegpt_turns(
    msgs: list[Message], spec: DatasetSpec, tok: Tokenizer, rng: np.random.Generator
) -> list[Turn]:
    """The user turns of one conversation with their answers' lengths as ``max_tokens``.

    A user message with no assistant answer right after it is dropped unless ``output_len``
    is given; so is an empty one. Single-turn mode stops after the first kept turn."""
    turns: list[Turn] = []
    for j, (role, text) in enumerate(msgs):
        if role != "user" or not text.strip():
            continue
        if spec.output_len is not None:
            max_tokens = spec.output_len.sample(rng, 1)[0]
        else:
            nxt = msgs[j + 1] if j + 1 < len(msgs) else None
            if nxt is None or nxt[0] != "assistant":
                continue
            max_tokens = len(tok.encode(nxt[1]))
            if max_tokens < 1:
                continue
        turns.append(Turn(text, len(tok.encode(text)), max_tokens))
        if not spec.multi_turn:
            break
    return turns


def build_sharegpt(
    spec: DatasetSpec, n: int, tok: Tokenizer, rng: np.random.Generator
) -> list[Session]:
    """Sessions from a ShareGPT file: the first human turn of each conversation (its answer's
    token count as ``max_tokens`` unless ``output_len`` is given), or with ``multi_turn``
    every human turn of it, ``think_time_s`` apart."""
    convs = read_sharegpt(spec.path or "")
    think_ns = round(spec.think_time_s * _NS_PER_S) if spec.multi_turn else 0

    def make(idx: int, sid: int) -> Session | None:
        turns = _sharegpt_turns(convs[idx], spec, tok, rng)
        if not turns:
            return None
        cap = spec.max_input_tokens
        if cap is not None and any(t.prompt_tokens > cap for t in turns):
            return None
        return Session(
            sid, tuple(turns), think_time_ns=think_ns, prompt_tokens_source=tok.source
        )

    return _collect(len(convs), n, spec, rng, make)
