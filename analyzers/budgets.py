"""The gate's budgets file: TOML, read with the standard library's ``tomllib``.

::

    # budgets.toml
    [budgets]
    ttft_p99 = "+10%"            # at most 10 % above the baseline's
    e2e_p50 = "+10%"
    output_throughput = "-5%"    # at most 5 % below the baseline's
    error_rate = "<= 0.1%"       # an absolute limit on the candidate
    goodput_frac = ">= 95%"      # a floor (needs [slo])
    ttft_p90 = ["+10%", "<= 800 ms"]   # several constraints on one metric

    [slo]                        # goodput objectives, in ms
    ttft_ms = 500

    [validity]                   # a run failing these is invalid: exit code 2
    min_requests = 50
    max_error_rate = "5%"
    max_schedule_lag_p99_ms = 10
    require_complete = true

    [settings]
    confidence = 0.95
    n_resamples = 1000
    seed = 0
    pair_rounds = true           # interleaved repeats: judge the per-round differences

**Relative budgets** (``"+10%"``, ``"-5%"``, or ``"10%"``: the worsening allowed) are for
metrics compared as ratios (latency percentiles, throughputs). The sign must point the bad way
(``+`` for lower-is-better metrics, ``−`` for higher-is-better); the other sign would demand an
improvement and is an error. **Noise budgets** (``"3x noise"``, ``"-2x noise"``) allow ``k``
times the run-to-run spread measured from repeats (``analyzers.gate``). **Absolute limits**
(``"<= X"``, ``">= X"``) are in the metric's unit: latencies need ``ms``, ``s`` or ``us``;
fractions take ``%`` or a number in [0, 1]; throughputs a number (``tok/s`` or ``req/s`` may
follow). Any error names the file, the line
and what is valid: an unknown metric lists the metric names.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from analyzers.goodput import SLO
from analyzers.metric_catalog import Direction, MetricSpec, UnknownMetricError, get_metric
from analyzers.summary import DEFAULT_LAG_WARN_MS

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetFile",
    "BudgetKind",
    "GateSettings",
    "Validity",
    "load_budgets",
    "parse_budgets",
]

_TABLES = ("budgets", "slo", "validity", "settings")
_RELATIVE = re.compile(r"^([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*%$")
_NOISE = re.compile(r"^([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:x|×|\*)\s*noise$", re.IGNORECASE)
_ABSOLUTE = re.compile(r"^(<=|>=)\s*(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)\s*([A-Za-zµ%/]*)$")
_TIME_UNITS = {"ms": 1e6, "s": 1e9, "us": 1e3, "µs": 1e3, "ns": 1.0}
_RATE_UNITS = {"tok/s": ("tok/s",), "req/s": ("req/s",)}


class BudgetError(ValueError):
    """An invalid budgets file; the message names the file and line."""


class BudgetKind(StrEnum):
    RELATIVE = "relative"  # limit: the worsening allowed, as a fraction (0.05 = 5 % worse)
    MAX = "max"  # candidate <= limit (metric unit)
    MIN = "min"  # candidate >= limit (metric unit)
    NOISE = "noise"  # limit: k, the worsening allowed in units of the run-to-run spread


@dataclass(frozen=True, slots=True)
class Budget:
    metric: str
    kind: BudgetKind
    limit: float
    text: str  # as written in the file
    line: int

    @property
    def spec(self) -> MetricSpec:
        return get_metric(self.metric)

    def describe(self) -> str:
        return f"{self.metric} {self.text}"


@dataclass(frozen=True, slots=True)
class Validity:
    """When a run is too broken to judge (exit code 2)."""

    min_requests: int = 20
    max_error_rate_frac: float = 0.05
    max_schedule_lag_p99_ms: float = DEFAULT_LAG_WARN_MS
    require_complete: bool = True


@dataclass(frozen=True, slots=True)
class GateSettings:
    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    pair_rounds: bool = True  # interleaved rounds judged paired (analyzers.compare_groups)


@dataclass(frozen=True, slots=True)
class BudgetFile:
    path: str
    budgets: tuple[Budget, ...]
    slo: SLO | None = None
    validity: Validity = field(default_factory=Validity)
    settings: GateSettings = field(default_factory=GateSettings)


def load_budgets(path: str | Path) -> BudgetFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetError(f"cannot read the budgets file {p}: {exc}") from exc
    return parse_budgets(text, str(p))


def parse_budgets(text: str, path: str = "<budgets>") -> BudgetFile:
    """Parse and check a budgets file (module doc); BudgetError on any mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: not valid TOML: {exc}") from exc
    lines = _key_lines(text)

    def where(table: str, key: str | None = None) -> str:
        line = lines.get((table, key)) if key is not None else lines.get((table, None))
        return f"{path}:{line}" if line else path

    for table in data:
        if table not in _TABLES:
            raise BudgetError(f"{where(table)}: unknown section [{table}]; valid sections: "
                              f"{', '.join(f'[{t}]' for t in _TABLES)}")
    for table in _TABLES:
        if table in data and not isinstance(data[table], dict):
            raise BudgetError(f"{where(table, table)}: {table} must be a [{table}] section")
    slo = _slo(data.get("slo", {}), where)
    budgets: list[Budget] = []
    for metric, value in data.get("budgets", {}).items():
        budgets.extend(_budget(metric, value, lines.get(("budgets", metric), 0), where, slo))
    if not budgets:
        raise BudgetError(f"{path}: no budgets: add a [budgets] section, e.g. "
                          '[budgets] ttft_p99 = "+10%"')
    return BudgetFile(path, tuple(budgets), slo, _validity(data.get("validity", {}), where),
                      _settings(data.get("settings", {}), where))


def _key_lines(text: str) -> dict[tuple[str, str | None], int]:
    """(table, key) → 1-based line, for messages; (table, None) is the table's header."""
    out: dict[tuple[str, str | None], int] = {}
    table = ""
    header = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
    keyline = re.compile(r"""^\s*(["']?)([A-Za-z0-9_.-]+)\1\s*=""")
    for i, line in enumerate(text.splitlines(), start=1):
        if m := header.match(line):
            table = m.group(1)
            out.setdefault((table, None), i)
        elif m := keyline.match(line):
            key = m.group(2)
            if not table and "." in key:
                t, k = key.split(".", 1)
                out.setdefault((t, k), i)
                out.setdefault((t, None), i)
            out.setdefault((table, key), i)
    return out


Where = Any  # the ``where(table, key)`` callable of parse_budgets


def _budget(metric: str, value: Any, line: int, where: Where, slo: SLO | None) -> list[Budget]:
    at = where("budgets", metric)
    try:
        spec = get_metric(metric)
    except UnknownMetricError as exc:
        raise BudgetError(f"{at}: {exc}") from None
    if spec.needs_slo and slo is None:
        raise BudgetError(f"{at}: {metric} needs goodput objectives: add an [slo] section "
                          "(e.g. ttft_ms = 500)")
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        raise BudgetError(f'{at}: {metric} = {value!r}: give a string like "+10%" or '
                          '"<= 500 ms", or a list of them')
    return [_one(spec, str(v).strip(), line, at) for v in items]


def _one(spec: MetricSpec, text: str, line: int, at: str) -> Budget:
    if m := _RELATIVE.match(text):
        return _relative(spec, m.group(1), float(m.group(2)), text=text, line=line, at=at)
    if m := _NOISE.match(text):
        bad = "+" if spec.direction is Direction.LOWER else "-"
        if m.group(1) and m.group(1) != bad:
            raise BudgetError(f'{at}: {spec.name} = "{text}" would demand an improvement: a '
                              f'noise budget is the worsening allowed, like "{bad}3x noise"')
        rel = _relative(spec, "", float(m.group(2)) * 100.0, text=text, line=line, at=at)
        if not rel.limit > 0:
            raise BudgetError(f'{at}: {spec.name} = "{text}": k must be above 0')
        return Budget(spec.name, BudgetKind.NOISE, rel.limit, text, line)
    if m := _ABSOLUTE.match(text):
        kind = BudgetKind.MAX if m.group(1) == "<=" else BudgetKind.MIN
        limit = _in_unit(spec, float(m.group(2)), m.group(3), text, at)
        return Budget(spec.name, kind, limit, text, line)
    raise BudgetError(f'{at}: {spec.name} = "{text}": expected a relative budget like "+10%" '
                      f'or "-5%", a noise budget like "3x noise", or an absolute limit like '
                      f'"<= 500 ms" or ">= 95%"')


def _relative(spec: MetricSpec, sign: str, pct: float, *, text: str, line: int,
              at: str) -> Budget:
    if not spec.relative:
        example = "<= 1%" if spec.unit == "frac" else "<= 0"
        raise BudgetError(f'{at}: {spec.name} is compared as a difference, not a ratio: give '
                          f'an absolute limit like "{example}"')
    bad = "+" if spec.direction is Direction.LOWER else "-"
    if sign and sign != bad:
        better = "lower" if spec.direction is Direction.LOWER else "higher"
        raise BudgetError(f'{at}: {spec.name} = "{text}" would demand an improvement: '
                          f"{better} is better for {spec.name}, so its budget is the worsening "
                          f'allowed, like "{bad}{pct:g}%"')
    return Budget(spec.name, BudgetKind.RELATIVE, pct / 100.0, text, line)


def _in_unit(spec: MetricSpec, number: float, unit: str, text: str, at: str) -> float:
    if spec.unit == "ns":
        if unit not in _TIME_UNITS:
            raise BudgetError(f'{at}: {spec.name} = "{text}": give a time unit (ms, s or us), '
                              'e.g. "<= 500 ms"')
        return number * _TIME_UNITS[unit]
    if spec.unit == "frac":
        if unit == "%":
            return number / 100.0
        if unit or number > 1:
            raise BudgetError(f'{at}: {spec.name} = "{text}": a fraction is a percentage '
                              'like "0.5%" or a number in [0, 1]')
        return number
    if unit and unit not in (*_RATE_UNITS.get(spec.unit, ()), "/s"):
        raise BudgetError(f'{at}: {spec.name} = "{text}": {spec.name} is in {spec.unit}')
    return number


def _slo(table: Mapping[str, Any], where: Where) -> SLO | None:
    if not table:
        return None
    valid = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")
    values: dict[str, float] = {}
    for k, v in table.items():
        if k not in valid:
            raise BudgetError(f"{where('slo', k)}: unknown SLO {k!r}; valid: {', '.join(valid)}")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise BudgetError(f"{where('slo', k)}: {k} must be a number of milliseconds")
        values[k] = float(v)
    try:
        return SLO(**values)
    except ValueError as exc:
        raise BudgetError(f"{where('slo')}: {exc}") from None


def _fraction(v: Any, key: str, at: str) -> float:
    if isinstance(v, str) and (m := re.match(r"^\s*(\d+(?:\.\d*)?)\s*%\s*$", v)):
        return float(m.group(1)) / 100.0
    if not isinstance(v, bool) and isinstance(v, int | float) and 0 <= v <= 1:
        return float(v)
    raise BudgetError(f'{at}: {key} must be a percentage like "5%" or a number in [0, 1]')


def _validity(table: Mapping[str, Any], where: Where) -> Validity:
    d = Validity()
    out: dict[str, Any] = {}
    keys = {"min_requests": "min_requests", "max_error_rate": "max_error_rate_frac",
            "max_schedule_lag_p99_ms": "max_schedule_lag_p99_ms",
            "require_complete": "require_complete"}
    for k, v in table.items():
        at = where("validity", k)
        if k not in keys:
            raise BudgetError(f"{at}: unknown validity check {k!r}; valid: {', '.join(keys)}")
        if k == "max_error_rate":
            out[keys[k]] = _fraction(v, k, at)
        elif k == "require_complete":
            if not isinstance(v, bool):
                raise BudgetError(f"{at}: require_complete must be true or false")
            out[keys[k]] = v
        elif k == "min_requests":
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise BudgetError(f"{at}: min_requests must be a positive integer")
            out[keys[k]] = v
        else:
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise BudgetError(f"{at}: {k} must be a number of ms >= 0")
            out[keys[k]] = float(v)
    return Validity(**{**{f: getattr(d, f) for f in keys.values()}, **out})


def _settings(table: Mapping[str, Any], where: Where) -> GateSettings:
    valid = ("confidence", "n_resamples", "seed", "pair_rounds")
    out: dict[str, Any] = {}
    for k, v in table.items():
        at = where("settings", k)
        if k not in valid:
            raise BudgetError(f"{at}: unknown setting {k!r}; valid: {', '.join(valid)}")
        if k == "confidence":
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.5 <= v < 1:
                raise BudgetError(f"{at}: confidence must be in [0.5, 1), e.g. 0.95")
            out[k] = float(v)
        elif k == "pair_rounds":
            if not isinstance(v, bool):
                raise BudgetError(f"{at}: pair_rounds must be true or false")
            out[k] = v
        elif isinstance(v, bool) or not isinstance(v, int) or v < (100 if k == "n_resamples"
                                                                 else 0):
            raise BudgetError(f"{at}: {k} must be an integer" +
                              (" >= 100" if k == "n_resamples" else " >= 0"))
        else:
            out[k] = v
    return GateSettings(**out)
