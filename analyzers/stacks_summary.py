"""The engine's CPU stacks, summarized: the hottest functions per role and thread, the
busiest thread per role, the hang dumps, and the thread that runs the model
(:func:`summarize_stacks`, :class:`StacksSummary`).

Reads what the stack collector wrote (``stacks/processes.json``, ``stacks/threads.parquet``,
``stacks/hot.parquet``, ``stacks/hangs.json``; servescope/records/stacks.py). A run without
``--collect stacks`` has none of them: :func:`summarize_stacks` returns None. A file that
cannot be read is left out, named in :attr:`StacksSummary.warnings`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servescope.records.stacks import HangDump, HotFrame, StackProcess, StackThread
from servescope.rundir.layout import (
    HANGS_FILE,
    STACK_HOT_FILE,
    STACK_PROCESSES_FILE,
    STACK_THREADS_FILE,
    STACKS_DIR,
    RunDirError,
)

if TYPE_CHECKING:
    import pandas as pd

    from servescope.engines.spec import EngineSpec

__all__ = ["HotFunction", "RoleSummary", "StacksSummary", "ThreadSummary", "summarize_stacks"]

TOP_FUNCTIONS = 10  # hottest functions kept per thread


@dataclass(frozen=True, slots=True)
class HotFunction:
    """One function's share of one thread's samples (from ``stacks/hot.parquet``)."""

    function: str
    file: str
    line: int
    self_frac: float  # samples with it innermost / the thread's samples
    total_frac: float  # samples with it anywhere on the stack / the thread's samples
    self_samples: int
    total_samples: int


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One sampled thread: how busy it was and where its time went."""

    pid: int
    role: str
    tid: int
    thread_name: str
    samples: int
    active_frac: float  # samples / the process's sampling ticks
    top: tuple[HotFunction, ...]  # by self_frac, then total_frac; at most TOP_FUNCTIONS


@dataclass(frozen=True, slots=True)
class RoleSummary:
    """Every sampled process of one role (``engine_core``, ``scheduler``, ...)."""

    role: str
    pids: tuple[int, ...]
    runs_model: bool  # the engine spec says the GPU-side Python runs in this role
    busiest: ThreadSummary | None  # the thread with the highest active_frac
    threads: tuple[ThreadSummary, ...]  # by active_frac, busiest first


@dataclass(frozen=True, slots=True)
class StacksSummary:
    processes: tuple[StackProcess, ...]
    roles: tuple[RoleSummary, ...]
    hangs: tuple[HangDump, ...]
    # the thread that drives the model (scheduler / model runner / generation loop): the
    # busiest thread of a runs_model role, else of the whole engine; None without samples
    model_thread: ThreadSummary | None
    model_thread_why: str  # how it was picked, one sentence
    warnings: tuple[str, ...] = ()  # stack files that could not be read, one sentence each

    def role(self, name: str) -> RoleSummary:
        for r in self.roles:
            if r.role == name:
                return r
        raise KeyError(f"no role {name!r}; the run sampled "
                       f"{', '.join(r.role for r in self.roles) or 'none'}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _json_list(path: Path, key: str) -> list[dict[str, Any]]:
    import orjson

    if not path.is_file():
        return []
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    items = raw.get(key, []) if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise RunDirError(f"{path}: expected a list of {key}")
    return items


def _record(cls: type[Any], d: dict[str, Any]) -> Any:
    kw = {}
    for f in dataclasses.fields(cls):
        v = d.get(f.name)
        if f.name in ("files", "errors"):
            v = tuple(v or ())
        elif v is None:
            v = "" if f.type == "str" else 0
        kw[f.name] = v
    return cls(**kw)


def _table(path: Path, record: type) -> pd.DataFrame:
    import pandas as pd

    cols = [f.name for f in dataclasses.fields(record)]
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    try:
        import pyarrow.parquet as pq

        df: pd.DataFrame = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    for c in cols:
        if c not in df.columns:
            df[c] = 0 if c.endswith(("samples", "line", "tid", "pid", "_frac")) else ""
    return df


def _threads(threads: pd.DataFrame, hot: pd.DataFrame) -> list[ThreadSummary]:
    out = []
    by_thread = {key: rows for key, rows in hot.groupby(["pid", "tid"], sort=False)}
    for t in threads.to_dict("records"):
        rows = by_thread.get((t["pid"], t["tid"]))
        top: tuple[HotFunction, ...] = ()
        if rows is not None:
            rows = rows.sort_values(["self_frac", "total_frac"], ascending=False,
                                    kind="stable").head(TOP_FUNCTIONS)
            top = tuple(HotFunction(str(r["function"]), str(r["file"]), int(r["line"]),
                                    float(r["self_frac"]), float(r["total_frac"]),
                                    int(r["self_samples"]), int(r["total_samples"]))
                        for r in rows.to_dict("records"))
        out.append(ThreadSummary(int(t["pid"]), str(t["role"]), int(t["tid"]),
                                 str(t["thread_name"]), int(t["samples"]),
                                 float(t["active_frac"]), top))
    return sorted(out, key=lambda th: (-th.active_frac, th.pid, th.tid))


def _model_roles(spec: EngineSpec | None) -> set[str]:
    return {r.role for r in spec.process_roles if r.runs_model} if spec is not None else set()


def summarize_stacks(run_dir: str | Path, spec: EngineSpec | None = None) -> StacksSummary | None:
    """The stacks summary of a run; None when it sampled no stacks (no ``stacks/``).

    ``spec`` names the roles that run the model (``ProcessRole.runs_model``); the model
    thread is the busiest thread of those roles, else (no spec, or none of its roles was
    sampled: a single-process engine such as ``transformers serve``) the busiest thread of
    every process sampled.
    """
    run_dir = Path(run_dir)
    if not (run_dir / STACKS_DIR).is_dir():
        return None
    warnings: list[str] = []

    def left_out(exc: RunDirError) -> None:
        warnings.append(f"{exc}: left out")

    procs: tuple[StackProcess, ...] = ()
    hangs: tuple[HangDump, ...] = ()
    try:
        procs = tuple(_record(StackProcess, d)
                      for d in _json_list(run_dir / STACK_PROCESSES_FILE, "processes"))
    except RunDirError as exc:
        left_out(exc)
    try:
        hangs = tuple(_record(HangDump, d) for d in _json_list(run_dir / HANGS_FILE, "hangs"))
    except RunDirError as exc:
        left_out(exc)
    tables = []
    for name, record in ((STACK_THREADS_FILE, StackThread), (STACK_HOT_FILE, HotFrame)):
        try:
            tables.append(_table(run_dir / name, record))
        except RunDirError as exc:
            left_out(exc)
            tables.append(_table(run_dir / STACKS_DIR / "-", record))  # no file: no rows
    threads = _threads(*tables)
    model_roles = _model_roles(spec)
    role_names = sorted({p.role for p in procs} | {t.role for t in threads})
    roles = []
    for name in role_names:
        mine = tuple(t for t in threads if t.role == name)
        pids = tuple(sorted({p.pid for p in procs if p.role == name} | {t.pid for t in mine}))
        roles.append(RoleSummary(name, pids, name in model_roles, mine[0] if mine else None,
                                 mine))
    model = [t for t in threads if t.role in model_roles]
    if model:
        why = (f"the busiest thread of the roles that run the model "
               f"({', '.join(sorted(model_roles))}, from the {spec.name if spec else ''} spec)")
        pick: ThreadSummary | None = model[0]
    else:
        pick = threads[0] if threads else None
        why = ("the busiest thread of every process sampled (no role of the engine's spec "
               "runs the model here)" if pick else "no thread was sampled")
    return StacksSummary(procs, tuple(roles), hangs, pick, why, tuple(warnings))
