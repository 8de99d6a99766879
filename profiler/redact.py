"""Remove secrets (API keys, auth headers, tokens) from anything servescope writes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["REDACTED", "Redactor", "known_secrets", "redact_argv", "redact_headers",
           "redact_text", "register_secrets", "secrets_in"]

REDACTED = "***REDACTED***"

_SECRET_FLAG = re.compile(
    r"^--?[\w.-]*(api[-_]?key|token|secret|password|passwd|auth|credential)[\w.-]*$", re.I
)
_SECRET_ASSIGN = re.compile(
    r"(?P<k>[\w.-]*(?:api[-_]?key|token|secret|password|passwd|authorization|credential)"
    r"[\w.-]*\s*[=:]\s*)(?P<v>\"[^\"]*\"|'[^']*'|[^\s,;&]+)",
    re.I,
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_KEY_LIKE = re.compile(r"\b(sk|hf|nvapi|gsk|xai)[-_][A-Za-z0-9_-]{12,}\b")
_SECRET_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}


_MIN_SECRET_CHARS = 6  # shorter values would mask ordinary words
_KNOWN: list[str] = []  # this process's exact secret values, longest first


def register_secrets(values: Iterable[str]) -> None:
    """Remember exact secret values (an API key from the serving command, a token from the
    environment) so that every later :func:`redact_text` in this process removes them, in
    whatever form they appear. Worker processes register the same values at their start."""
    merged = set(_KNOWN) | {v for v in values if len(v) >= _MIN_SECRET_CHARS}
    _KNOWN[:] = sorted(merged, key=len, reverse=True)


def known_secrets() -> list[str]:
    """The values registered so far (to hand to a child process)."""
    return list(_KNOWN)


def redact_text(text: str) -> str:
    """Mask the registered secret values, bearer tokens, well-known key formats and
    ``key=value`` secrets in free text."""
    for s in _KNOWN:
        if s in text:
            text = text.replace(s, REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _KEY_LIKE.sub(REDACTED, text)
    return _SECRET_ASSIGN.sub(lambda m: m.group("k") + REDACTED, text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Mask the value after a secret-looking flag (``--api-key X``, ``--api-key=X``)."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(REDACTED)
            mask_next = False
            continue
        flag, eq, _value = arg.partition("=")
        if _SECRET_FLAG.match(flag):
            if eq:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(arg)
                mask_next = True
            continue
        out.append(redact_text(arg))
    return out


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k: (REDACTED if k.lower() in _SECRET_HEADERS else redact_text(v))
        for k, v in headers.items()
    }


_SECRET_ENV = re.compile(r"(API[_-]?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def secrets_in(argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Values that must never be written: those after secret-looking flags in ``argv`` and
    of secret-looking environment variables (at least 6 characters, to avoid masking noise)."""
    found: list[str] = []
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if _SECRET_FLAG.match(flag):
            v = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            found.append(v)
    for k, v in (env or {}).items():
        if _SECRET_ENV.search(k):
            found.append(v)
    return sorted({v for v in found if len(v) >= 6}, key=len, reverse=True)


class Redactor:
    """Pattern-based redaction plus exact removal of known secret values (an engine that
    logs its own arguments prints the API key in forms no pattern anticipates)."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        return redact_text(text)
