"""Remove secrets (API keys, auth headers, tokens, passwords) from anything servescope writes
or prints.

Two layers, both in :func:`redact_text`:

1. A process-wide registry of exact values (:func:`register_secrets`): the API key of the
   serving command, secret-looking environment variables, the target's API key. They are
   removed first, in whatever form they appear (also JSON-escaped, URL-encoded or base64):
   an engine that prints its own arguments writes them in forms no pattern anticipates, and a
   short key no pattern could recognize is still caught. Worker processes register the same
   values at their start (:func:`known_secrets` hands them over).
2. Patterns, for what nobody registered: a value whose key names a secret, in the forms logs
   use (``"api_key": "…"``, ``'api_key': '…'``, ``api_key=…``, ``api_key='…'`` as an argparse
   ``Namespace`` prints it, ``api_key: …``, ``Authorization: Bearer …``, ``x-api-key: …``,
   ``--api-key …``), bearer tokens, well-known key formats (``sk-…``, ``hf_…``, ``ghp_…``)
   and passwords in URLs.

A key names a secret (:func:`is_secret_name`) when its last word is one: ``api_key``,
``x-api-key``, ``HF_TOKEN``, ``access_token``, ``password``, ``client_secret``,
``Authorization``, ``cookie``; not ``max_tokens``, ``tokenizer``, ``num_tokens``,
``token_ids``, ``eos_token`` or ``api_key_env``. Each pattern runs only on lines holding one
of its words (plain substring tests on a lowercased copy): ~5-20 µs per 200-character engine
log line on a 2-vCPU VM, where the previous case-insensitive patterns took ~50-160 µs.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence

__all__ = ["REDACTED", "is_secret_name", "known_secrets", "redact_argv",
           "redact_known_bytes", "redact_text", "register_secrets",
           "secrets_in"]

REDACTED = "***REDACTED***"

# ---------------------------------------------------------------------------- key names

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[^a-z0-9]+")
_SECRET_LAST = frozenset({"authorization", "auth", "cookie", "credential", "credentials",
                          "bearer", "secret", "secrets", "passphrase"})
_SECRET_SUFFIX = ("password", "passwd", "apikey", "secret")
_KEY_QUALIFIERS = frozenset({"api", "access", "private", "secret", "signing", "encryption",
                             "master", "subscription", "service", "client", "license"})
# "<word>_token" keys that name a vocabulary token, not a credential
_VOCAB_TOKEN = frozenset({"eos", "bos", "pad", "unk", "sep", "cls", "mask", "start", "end",
                          "stop", "special", "image", "audio", "video", "vision", "placeholder",
                          "num", "max", "min", "total", "first", "last", "added", "new",
                          "prompt", "output", "input", "sos", "think", "tool", "reasoning",
                          "boi", "eoi", "img", "im", "default", "next", "decoder", "eot"})


def is_secret_name(name: str) -> bool:
    """Whether a flag, key, header or environment variable name names a secret value."""
    words = [w for w in _WORDS.split(_CAMEL.sub("_", name).lower()) if w]
    if not words:
        return False
    last, prev = words[-1], (words[-2] if len(words) > 1 else "")
    if last in {"key", "keys"}:
        return prev in _KEY_QUALIFIERS
    if last in _SECRET_LAST or last.endswith(_SECRET_SUFFIX):
        return True
    return last.endswith("token") and prev not in _VOCAB_TOKEN


# ---------------------------------------------------------------------------- patterns
# They are matched on an ASCII-lowercased copy of the text (same length, so the positions hold
# for the original): re.IGNORECASE made every pattern about ten times slower.

_VOCAB = ("key", "token", "passw", "passphrase", "secret", "auth", "cookie", "credential",
          "bearer")
# the end of a key that ends in a secret word, then its value after ``:``/``=`` (or, after a
# ``--flag``, a space or a Python list's ``', '``): quoted, escaped-quoted, a list, or bare;
# the key's start is found by scanning back (a pattern starting with the key was 5x slower)
_PAIR = re.compile(
    r"""(?:key|token|passw(?:or)?d|passphrase|secrets?|auth(?:orization)?|cookie"""
    r"""|credentials?|bearer)(?![\w.-])"""
    r"""(?P<sep>(?:\\?["'])?[ \t]*[:=][ \t]*|(?:["'],)?[ \t]+)"""
    r"""(?P<scheme>(?:bearer|basic|token|digest|negotiate|apikey)[ \t]+)?"""
    r"""(?P<v>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|\\"(?:(?!\\").)*\\"|\[[^\]\n]*\]"""
    r"""|[^\s,;&"'<>(){}\[\]]+)""")
_BEARER = re.compile(r"(?<![\w-])bearer\s+(?P<v>[a-z0-9._~+/=-]{6,})")
_BASIC = re.compile(r"(?<![\w-])basic\s+(?P<v>(?=[a-z]*[0-9+/=])[a-z0-9+/]{8,}=*)")
_KEY_PREFIXES = ("sk-", "hf_", "nvapi-", "gsk_", "xai-", "ghp_", "gho_", "ghs_", "ghu_",
                 "ghr_", "github_pat_", "glpat-", "xox", "akia")
_KEY_LIKE = re.compile(
    r"(?<![\w-])(?P<v>(?:sk-(?:proj-|ant-)?|nvapi-|gsk_|xai-)[a-z0-9_-]{12,}"
    r"|hf_[a-z0-9]{30,}|gh[pousr]_[a-z0-9]{30,}|github_pat_[a-z0-9_]{30,}"
    r"|glpat-[a-z0-9_-]{20,}|xox[abprs]-[a-z0-9-]{10,}|akia[0-9a-z]{16})(?![\w-])")
_URL_PASSWORD = re.compile(r"(?<=://)[^/\s:@]*:(?P<v>[^/\s@]+)@")
_EMPTY = frozenset({"", "none", "null", "true", "false", "~", "''", '""', "[]", "nil",
                    "undefined", "<none>", "***redacted***"})
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def _lower(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _mask(value: str) -> str:
    """The value with its content masked, its quotes or brackets kept."""
    for opener, closer in (('\\"', '\\"'), ('"', '"'), ("'", "'"), ("[", "]")):
        if len(value) >= 2 * len(opener) and value.startswith(opener) and value.endswith(closer):
            return opener + REDACTED + closer
    return REDACTED


def _key_start(low: str, end: int) -> int:
    j = end
    while j > 0 and low[j - 1] in _KEY_CHARS:
        j -= 1
    return j


def _pair(m: re.Match[str], text: str, low: str) -> tuple[int, str] | None:
    """(start of the key, secret value) of a key/value match, or None when it is none."""
    start = _key_start(low, m.start())
    key, sep = text[start:m.start("sep")], m["sep"]
    value = text[m.start("v"):m.end("v")]
    if not is_secret_name(key):
        return None
    if not (":" in sep or "=" in sep) and not key.startswith("-"):
        return None  # "the api key abc": a space separates only a --flag from its value
    if value.startswith("-") or value.strip("\"'[]\\").lower() in _EMPTY:
        return None
    return start, value


def _pair_spans(text: str, low: str) -> Iterator[tuple[int, int, str]]:
    for m in _PAIR.finditer(low):
        if (found := _pair(m, text, low)) is not None:
            start, value = found
            yield start, m.end(), text[start:m.end("scheme") if m["scheme"] else
                                       m.end("sep")] + _mask(value)


def _value_spans(pattern: re.Pattern[str], low: str
                 ) -> Iterator[tuple[int, int, str]]:
    for m in pattern.finditer(low):
        yield m.start("v"), m.end("v"), REDACTED


def _apply(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    out: list[str] = []
    pos = 0
    for start, end, repl in spans:
        if start < pos:
            continue
        out += (text[pos:start], repl)
        pos = end
    return "".join((*out, text[pos:])) if out else text


# ---------------------------------------------------------------------------- the registry

_MIN_SECRET_CHARS = 6  # shorter values would mask ordinary words
_VALUES: list[str] = []  # the values registered in this process, as given
_KNOWN: list[str] = []  # those values and their other forms, longest first
_KNOWN_B: list[bytes] = []


def _forms(value: str) -> set[str]:
    """The value as it may appear elsewhere: itself, JSON-escaped, URL-encoded, base64."""
    forms = {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""),
             urllib.parse.quote_plus(value, safe=""), base64.b64encode(value.encode()).decode()}
    return {f for f in forms if len(f) >= _MIN_SECRET_CHARS}


def register_secrets(values: Iterable[str]) -> None:
    """Remember exact secret values (an API key from the serving command, a token from the
    environment) so that every later :func:`redact_text` in this process removes them, in
    whatever form they appear. Worker processes register the same values at their start."""
    fresh = {v for v in values
             if isinstance(v, str) and len(v) >= _MIN_SECRET_CHARS and v not in _VALUES}
    if not fresh:
        return
    _VALUES.extend(sorted(fresh))
    forms = set(_KNOWN).union(*(_forms(v) for v in fresh))
    _KNOWN[:] = sorted(forms, key=len, reverse=True)
    _KNOWN_B[:] = [f.encode() for f in _KNOWN]


def known_secrets() -> list[str]:
    """The values registered so far, as given (to hand to a child process)."""
    return list(_VALUES)


def redact_known_bytes(data: bytes) -> bytes:
    """``data`` with the registered values removed (only those: cheap on a large page)."""
    for s in _KNOWN_B:
        if s in data:
            data = data.replace(s, REDACTED.encode())
    return data


def redact_text(text: str) -> str:
    """Mask the registered secret values, then secret key/value pairs, bearer tokens,
    well-known key formats and URL passwords in free text."""
    for s in _KNOWN:
        if s in text:
            text = text.replace(s, REDACTED)
    low = _lower(text)
    if "bearer" in low:
        text = _apply(text, _value_spans(_BEARER, low))
        low = _lower(text)
    if "basic" in low:
        text = _apply(text, _value_spans(_BASIC, low))
        low = _lower(text)
    if any(w in low for w in _VOCAB):
        text = _apply(text, _pair_spans(text, low))
        low = _lower(text)
    if any(w in low for w in _KEY_PREFIXES):
        text = _apply(text, _value_spans(_KEY_LIKE, low))
        low = _lower(text)
    if "://" in low and "@" in low:
        text = _apply(text, _value_spans(_URL_PASSWORD, low))
    return text


def _values_in_text(text: str) -> Iterator[str]:
    """The secret values :func:`redact_text`'s patterns would mask in ``text``."""
    low = _lower(text)
    for m in _PAIR.finditer(low):
        if (found := _pair(m, text, low)) is not None:
            yield found[1].strip("\"'[]\\")
    for pattern in (_BEARER, _BASIC, _KEY_LIKE, _URL_PASSWORD):
        yield from (text[m.start("v"):m.end("v")] for m in pattern.finditer(low))


# ---------------------------------------------------------------------------- argv, env


def _flag_value(argv: Sequence[str], i: int) -> tuple[str, bool]:
    """(the value of a secret-looking flag at ``argv[i]``, whether it is the next item)."""
    _flag, eq, value = argv[i].partition("=")
    if eq:
        return value, False
    nxt = argv[i + 1] if i + 1 < len(argv) else ""
    return ("", False) if nxt.startswith("-") else (nxt, True)


def _is_secret_flag(arg: str) -> bool:
    flag = arg.partition("=")[0]
    return flag.startswith("-") and not flag.startswith("---") and is_secret_name(flag)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Mask the value of a secret-looking flag (``--api-key X``, ``--api-key=X``,
    ``--hf-token X``) and secrets inside other items (``-H 'Authorization: Bearer X'``,
    ``HF_TOKEN=x`` before a command)."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            out.append(REDACTED)
            skip = False
        elif _is_secret_flag(arg):
            value, skip = _flag_value(argv, i)
            out.append(f"{arg.partition('=')[0]}={REDACTED}" if "=" in arg and value else arg)
        else:
            out.append(redact_text(arg))
    return out


def secrets_in(argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Values that must never be written, to :func:`register_secrets`: those of
    secret-looking flags and of secrets inside other items of ``argv``, and of secret-looking
    environment variables (and passwords in URLs among the others); at least 6 characters."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        if _is_secret_flag(arg):
            found.append(_flag_value(argv, i)[0])
        else:
            found.extend(_values_in_text(arg))
    for k, v in (env or {}).items():
        if is_secret_name(k):
            found.append(v)
        elif "://" in v:
            found.extend(_values_in_text(v))
    return sorted({v for v in found if len(v) >= _MIN_SECRET_CHARS and REDACTED not in v},
                  key=len, reverse=True)

