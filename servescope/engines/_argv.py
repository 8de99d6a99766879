"""Reading a serving command as argv (no shell): wrappers, launchers, flags and addresses.

A command is recognized in two passes. First the common wrappers are peeled off exactly
(``env X=Y``, ``uv run``, ``conda run -n E``, ``nohup``, ``numactl ...``, ``sh -c "..."``);
then, if the head is still not a known launcher, argv is scanned for one at any position, which
covers wrappers with options we cannot parse (``nsys profile ...``, ``mpirun ...``,
``trtllm-llmapi-launch``). Each engine supplies a ``Matcher``: given argv and a position, the
index where the engine's own arguments start, or None.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Launch",
    "Matcher",
    "base_url",
    "connect_host",
    "find_launch",
    "flag_value",
    "has_flag",
    "is_python",
    "parse_port",
    "python_module",
    "strip_wrappers",
    "switch_value",
    "url_host",
    "url_scheme",
]

Matcher = Callable[[Sequence[str], int], "int | None"]

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})  # noqa: S104 - names, not binds
_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SHELLS = frozenset({"sh", "bash", "zsh", "dash"})

# Wrappers whose options take a value as the next token (when not written ``--opt=value``).
_RUNNERS: dict[str, frozenset[str]] = {
    "uv": frozenset({"--with", "--with-editable", "--with-requirements", "--python", "-p",
                     "--directory", "--project", "--package", "--extra", "--group",
                     "--only-group", "--env-file", "--index", "--default-index",
                     "--index-url", "--extra-index-url", "-f", "--find-links", "--cache-dir",
                     "--config-file", "-w"}),
    "conda": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "poetry": frozenset({"-C", "--directory", "-P", "--project"}),
    "pipenv": frozenset(),
    "pdm": frozenset({"-p", "--project"}),
    "hatch": frozenset({"-e", "--env"}),
    "pixi": frozenset({"-e", "--environment", "--manifest-path"}),
}
_RUNNERS["mamba"] = _RUNNERS["micromamba"] = _RUNNERS["conda"]
_UVX_VALUE = _RUNNERS["uv"] | {"--from"}
# Prefix commands: value-taking options, and how many positional arguments precede the
# wrapped command (taskset MASK, timeout DURATION, chrt PRIORITY).
_PREFIX: dict[str, tuple[frozenset[str], int]] = {
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "--class", "--classdata"}), 0),
    "numactl": (frozenset({"-N", "-m", "-C", "-i", "-p", "--cpunodebind", "--membind",
                           "--physcpubind", "--interleave", "--preferred"}), 0),
    "taskset": (frozenset(), 1),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "chrt": (frozenset(), 1),
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}), 0),
}


@dataclass(frozen=True, slots=True)
class Launch:
    """Where an engine's launcher was found: ``argv[index:args_from]`` named the program
    (``vllm serve``, ``python -m sglang.launch_server``), ``args`` are the engine's own."""

    index: int
    args: tuple[str, ...]


def _base(token: str) -> str:
    return os.path.basename(token)


def is_python(token: str) -> bool:
    return bool(_PYTHON.match(_base(token)))


def python_module(argv: Sequence[str], i: int) -> tuple[str, int] | None:
    """If ``argv[i]`` is a Python interpreter run with ``-m MODULE``: (MODULE, index after it).

    Interpreter options before ``-m`` are skipped (``-u``, ``-O``, ``-X dev``, ``-W ignore``).
    """
    if i >= len(argv) or not is_python(argv[i]):
        return None
    j = i + 1
    while j < len(argv) and argv[j].startswith("-"):
        tok = argv[j]
        if tok == "-m":
            return (argv[j + 1], j + 2) if j + 1 < len(argv) else None
        if tok.startswith("-m") and not tok.startswith("--"):
            return tok[2:], j + 1
        if tok in ("-c", "-"):
            return None
        j += 2 if tok in ("-X", "-W", "-Q") else 1
    return None


def _skip_options(argv: Sequence[str], j: int, value_opts: frozenset[str]) -> int:
    while j < len(argv) and argv[j].startswith("-"):
        tok = argv[j]
        if tok == "--":
            return j + 1
        j += 2 if tok in value_opts else 1
    return j


def _skip_env(argv: Sequence[str], j: int) -> int:
    while j < len(argv):
        tok = argv[j]
        if tok in ("-u", "--unset", "-C", "--chdir", "-S", "--split-string"):
            j += 2
        elif tok == "--":
            j += 1
            break
        elif tok.startswith("-") or _ASSIGN.match(tok):
            j += 1
        else:
            break
    return j


def strip_wrappers(argv: Sequence[str]) -> list[str]:
    """argv with leading wrappers removed (``env``, ``uv run``, ``nohup``, ``sh -c`` ...)."""
    args = list(argv)
    i = 0
    while i < len(args):
        tok, base = args[i], _base(args[i])
        nxt = args[i + 1] if i + 1 < len(args) else ""
        if _ASSIGN.match(tok):  # VAR=value prefixes, as a launcher script would pass them
            i += 1
        elif base == "env":
            i = _skip_env(args, i + 1)
        elif base in _SHELLS and nxt in ("-c", "-lc", "-ec") and i + 2 < len(args):
            try:
                return strip_wrappers(shlex.split(args[i + 2]))
            except ValueError:
                return args[i:]
        elif base in _RUNNERS and nxt == "run":
            j = i + 2
            while j < len(args) and args[j].startswith("-"):
                if args[j] in ("-m", "--module") and base == "uv" and j + 1 < len(args):
                    return ["python", "-m", *args[j + 1:]]
                if args[j] == "--":
                    j += 1
                    break
                j += 2 if args[j] in _RUNNERS[base] else 1
            i = j
        elif base == "uvx":
            i = _skip_options(args, i + 1, _UVX_VALUE)
        elif base in _PREFIX:
            value_opts, positionals = _PREFIX[base]
            i = _skip_options(args, i + 1, value_opts) + positionals
        else:
            break
    return args[i:]


def find_launch(argv: Sequence[str], match: Matcher) -> Launch | None:
    """Where ``match`` recognizes a launcher: at the head once wrappers are removed, else at
    the first position of the (unwrapped) command where it does. ``index`` counts positions in
    the unwrapped command, so a lower index means the launcher comes first."""
    args = strip_wrappers(argv)
    for i in range(len(args)):
        start = match(args, i)
        if start is not None:
            return Launch(index=i, args=tuple(args[start:]))
    return None


def flag_value(args: Sequence[str], *names: str) -> str | None:
    """Value of the last ``--name value`` or ``--name=value`` among ``names`` (argparse and
    click both let a later flag win); None when absent or missing its value."""
    found: str | None = None
    for k, tok in enumerate(args):
        flag, eq, value = tok.partition("=")
        if flag not in names:
            continue
        if eq:
            found = value
        elif k + 1 < len(args) and not args[k + 1].startswith("--"):
            found = args[k + 1]
    return found


def has_flag(args: Sequence[str], *names: str) -> bool:
    return any(tok.partition("=")[0] in names for tok in args)


_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})


def switch_value(args: Sequence[str], name: str, default: bool) -> bool:
    """A boolean option written ``--name``, ``--name=false`` or ``--name false`` (Triton's
    style); the last occurrence wins."""
    result = default
    for k, tok in enumerate(args):
        flag, eq, value = tok.partition("=")
        if flag != name:
            continue
        if eq:
            result = value.lower() not in _FALSE
        elif k + 1 < len(args) and args[k + 1].lower() in _TRUE | _FALSE:
            result = args[k + 1].lower() in _TRUE
        else:
            result = True
    return result


def parse_port(value: str | None, flag: str, default: int) -> int:
    if value is None:
        return default
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{flag} {port} is outside 1..65535")
    return port


def connect_host(host: str | None) -> str:
    """The host to connect to for a bind host: wildcards (all interfaces) become loopback."""
    if host is None or host.strip() in WILDCARD_HOSTS:
        return "127.0.0.1"
    return host.strip().strip("[]")


def base_url(host: str, port: int, scheme: str = "http") -> str:
    h = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{h}:{port}"


def url_host(url: str) -> str:
    """The host part of ``scheme://host:port/...`` (IPv6 brackets kept), without user info."""
    rest = url.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[2]
    if rest.startswith("["):
        return rest[: rest.index("]") + 1]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def url_scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "http"
