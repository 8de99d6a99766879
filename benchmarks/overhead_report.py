"""The collector-overhead benchmark's summary and Markdown (``collector_overhead.py`` runs
the engine and records; this turns its JSON into the table in docs/benchmarks.md, also via
``collector_overhead.py --render FILE.json``)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["METRICS", "MODES", "SCRAPE_EVERY", "markdown", "summarize_runs"]

MODES = ("scrape", "bare", "get-only", "scrape-10x", "vllm-bench")
SCRAPE_EVERY = {"scrape": 1.0, "scrape-10x": 0.1}  # × --interval


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = [x for x in values if x == x]  # noqa: PLR0124 - drops NaN
    if not v:
        return {}
    return {
        "mean": statistics.fmean(v),
        "sd": statistics.stdev(v) if len(v) > 1 else 0.0,
        "min": min(v),
        "max": max(v),
        "n": len(v),
    }


METRICS = ("output_tok_per_s", "req_per_s", "ttft_p50_ms", "itl_p50_ms")


def usable(r: dict[str, Any], max_other_cores: float) -> bool:
    """Finished cleanly, and nobody else used more than ``max_other_cores`` meanwhile."""
    return r.get("returncode") == 0 and "error" not in r and _other(r) <= max_other_cores


def _other(r: dict[str, Any]) -> float:
    """Other processes' busy cores: over the client's window where known, else its run."""
    return float(r.get("other_cpu_cores_window", r["other_cpu_cores"]))


def summarize_runs(rows: Sequence[dict[str, Any]], max_other_cores: float) -> dict[str, Any]:
    ok = [r for r in rows if usable(r, max_other_cores)]
    per_mode: dict[str, Any] = {}
    for mode in MODES:
        rs = [r for r in ok if r["mode"] == mode]
        if not rs:
            continue
        per_mode[mode] = {m: _stats([float(r[m]) for r in rs]) for m in METRICS}
        per_mode[mode]["api_server_cpu_s"] = _stats(
            [r["engine_cpu_s"].get("api_server", 0) for r in rs]
        )
        per_mode[mode]["other_cpu_cores"] = _stats([_other(r) for r in rs])
        per_mode[mode]["client_cpu_s"] = _stats([r["client_cpu_s"] for r in rs])
    # paired with the bare run of the same rep (close in time): relative change in %
    by = {(r["rep"], r["mode"]): r for r in ok}
    vs_bare: dict[str, Any] = {}
    for mode in ("scrape", "get-only", "scrape-10x"):
        vs_bare[mode] = {}
        for m in METRICS:
            d = [
                100 * (by[(k, mode)][m] / by[(k, "bare")][m] - 1)
                for k in sorted({r["rep"] for r in ok})
                if (k, mode) in by and (k, "bare") in by and by[(k, "bare")][m]
            ]
            vs_bare[mode][m] = _stats(d)
    return {
        "per_mode": per_mode,
        "vs_bare_pct": vs_bare,
        "runs_used": len(ok),
        "runs_left_out": [(r["rep"], r["mode"]) for r in rows if r not in ok],
    }


def _fmt(s: dict[str, float], digits: int = 1) -> str:
    if not s:
        return "–"
    return f"{s['mean']:,.{digits}f} ± {s['sd']:,.{digits}f}"


def _cost_lines(doc: dict[str, Any]) -> list[str]:
    """The CPU one scrape costs: the engine's side (idle calibration) and the scraper's."""
    out = []
    cost = doc["meta"].get("scrape_cost_idle") or {}
    if cost:
        out.append(
            f"Engine side of one scrape (engine idle, {cost['gets']} GETs): "
            f"{cost['api_server_cpu_ms_per_get']:.1f} ms of API-server CPU per "
            f"{cost['page_bytes'] / 1e3:.0f} kB page."
        )
    for mode in SCRAPE_EVERY:
        rs = [r for r in doc["runs"] if r["mode"] == mode and r.get("scrapes_ok")]
        if rs:
            per = [1e3 * r["scraper_cpu_s"] / r["scrapes_ok"] for r in rs]
            ms = statistics.fmean(per)
            how = (
                "parsing each page during the run, as servescope did before 2022a68"
                if ms > 2
                else "the journal write only: fetching is not counted, and parsing (~15 ms "
                "a page) runs when the run is finalized, after the load, since 2022a68"
            )
            out.append(
                f"Scraper side ({mode}, {statistics.fmean(r['scrapes_ok'] for r in rs):.0f} "
                f"scrapes per run): {ms:.1f} ms CPU per scrape as the scraper accounts it "
                f"({how}). The client CPU column holds the scraper process's whole CPU, "
                "start-up and final parse included."
            )
    return out


def markdown(doc: dict[str, Any]) -> str:
    summ, meta = doc["summary"], doc["meta"]
    lines = [
        f"# Collector overhead on vLLM-CPU ({meta['date']})",
        "",
        f"Machine: {meta['machine']['cpu_model']}, {meta['machine']['nproc']} CPUs, "
        f"{meta['machine']['memory_gib']:.0f} GiB; vLLM {meta['vllm_version']}; "
        f"{meta['reps']} reps per mode, order rotated each rep.",
        f"Workload: {meta['workload']}.",
        "",
        "| mode | output tok/s | req/s | TTFT p50 ms | ITL p50 ms | API-server CPU s/run "
        "| client CPU s/run | other load (cores) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, s in summ["per_mode"].items():
        lines.append(
            f"| {mode} | {_fmt(s['output_tok_per_s'])} | {_fmt(s['req_per_s'], 2)} | "
            f"{_fmt(s['ttft_p50_ms'])} | {_fmt(s['itl_p50_ms'], 2)} | "
            f"{_fmt(s['api_server_cpu_s'], 2)} | {_fmt(s['client_cpu_s'], 2)} | "
            f"{_fmt(s['other_cpu_cores'], 2)} |"
        )
    lines += ["", "Paired with the bare run of the same rep (relative change, mean ± sd):", ""]
    for mode, p in summ["vs_bare_pct"].items():
        if any(p.values()):
            lines.append(
                f"- {mode} vs bare: "
                + ", ".join(f"{m} {_fmt(p[m], 2)} %" for m in METRICS if p.get(m))
            )
    lines += ["", *_cost_lines(doc)]
    left = summ["runs_left_out"]
    lines += [
        "",
        f"Runs left out of the means (other load above {meta['settings']['max_other_cores']:g}"
        f" cores, or failed): {', '.join(f'rep {k} {m}' for k, m in left) or 'none'}.",
        "",
        "Mean ± sample standard deviation over reps. Other load: the machine's busy CPU "
        "minus the engine's and the client's, in cores, over the client's measured window "
        "where known (else over the whole run, start-up included). Per run:",
        "",
        "| rep | mode | output tok/s | req/s | TTFT p50 ms | ITL p50 ms | engine CPU s "
        "(api/core/worker) | client CPU s | scrapes | other cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        if "error" in r or r.get("returncode"):
            lines.append(
                f"| {r['rep']} | {r['mode']} | failed: {r.get('error', r['returncode'])}"
                " | | | | | | | |"
            )
            continue
        e = r["engine_cpu_s"]
        lines.append(
            f"| {r['rep']} | {r['mode']} | {r['output_tok_per_s']:,.1f} | {r['req_per_s']:.2f} | "
            f"{r['ttft_p50_ms']:.1f} | {r['itl_p50_ms']:.2f} | {e.get('api_server', 0):.2f}/"
            f"{e.get('engine_core', 0):.2f}/{e.get('worker', 0):.2f} | {r['client_cpu_s']:.2f} "
            f"| {r.get('scrapes_ok') or '–'} | {_other(r):.2f} |"
        )
    lines += [
        "",
        "Commands:",
        "",
        "```",
        meta["commands"]["engine"],
        *(meta["commands"][m] for m in MODES if m in meta["commands"]),
        "```",
        "",
    ]
    return "\n".join(lines)
