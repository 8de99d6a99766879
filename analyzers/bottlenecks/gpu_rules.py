"""Rules over the GPU's own figures (NVML and GPM) and the engine's CPU stacks, joined with
the client's view. Each is silent without GPU data; thresholds are module constants (their
reasons beside them), documented in docs/analysis.md. They judge the rules' window (steady
state when found) through :attr:`RuleContext.gpu` (:mod:`analyzers.gpu.window`).
"""

from __future__ import annotations

import math

import numpy as np

from analyzers.bottlenecks.context import RuleContext
from analyzers.bottlenecks.request_rules import client_behind
from analyzers.findings import Evidence, Finding, Severity
from analyzers.gpu.figures import POWER_BITS, THERMAL_BITS, GpuWindowFigures
from servescope.engines.base import Knob, Signal

__all__ = ["gpu_compute_bound_prefill", "gpu_idle_client_limited", "gpu_launch_bound",
           "gpu_memory_bound_decode", "gpu_memory_pressure", "gpu_throttling", "in_flight_share"]

# launch/CPU-bound: with a batch in flight a GPU whose SMs are busy < 40 % of the time is
# waiting on the host between kernels (a decode step of a small model that is compute- or
# memory-bound keeps SM_UTIL well above half on an H200)
SM_BUSY_LOW_FRAC = 0.40
SM_BUSY_CRITICAL_FRAC = 0.20
CLIENT_BUSY_FRAC = 0.80  # ≥ 1 request in flight during at least 80 % of the window
# NVML's "a kernel was running" exceeds SM busy by ≥ 15 points: many tiny kernels, gaps. A
# loop of tiny kernels on the H200 read 18-23 % NVML at 0.0 % SM busy (the recording in
# tests/analyzers/gpu/data/h200_phases); a tight decode loop reads near 100 %
NVML_GAP_FRAC = 0.15
HOT_THREAD_FRAC = 0.80  # the model thread on-CPU ≥ 80 % of the samples: the loop is hot
# SMs busy < 20 % (SM_BUSY_CRITICAL_FRAC) with requests in flight and a punctual client is
# host-bound on its own: nothing else keeps a loaded GPU that idle. The stacks then say where
# the host's time goes; a model thread on-CPU ≥ 50 % of the time makes it critical
# (transformers serve on the H200: generation loop 75-84 % on-CPU at SM busy 2-4 %,
# docs/benchmarks.md; the rest of its time it waits for the GIL the HTTP thread holds)
HOT_SUPPORT_FRAC = 0.50
# memory-bound decode: DRAM bandwidth ≥ 70 % of peak (reachable HBM bandwidth is ~90 % of
# the spec sheet's) while tensor pipes are mostly idle
DRAM_BOUND_FRAC = 0.70
TENSOR_LOW_FRAC = 0.30
# compute-bound prefill: tensor pipes active ≥ 60 % during the periods with the most prompt
# tokens in prefill
TENSOR_HIGH_FRAC = 0.60
# throttling: a power/thermal/slowdown reason set ≥ 10 % of the window's samples and the SM
# clock's median ≤ 90 % of the device's max
THROTTLE_FRAC = 0.10
CLOCK_DROP_FRAC = 0.90
CLOCK_CRITICAL_FRAC = 0.70
MEM_PRESSURE_FRAC = 0.95  # memory used ≥ 95 % of the GPU's
KV_FULL_FRAC = 0.85  # as engine_rules: KV usage at or above this is nearly full
GPU_IDLE_FRAC = 0.10  # SMs busy < 10 %: the GPU is mostly idle


def _gpu(ctx: RuleContext) -> GpuWindowFigures | None:
    return ctx.gpu.combined if ctx.gpu is not None and ctx.gpu.gpus else None


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0%}"


def in_flight_share(ctx: RuleContext) -> float:
    """Share of the window with at least one measured request in flight (send .. last)."""
    m = ctx.measured
    a = np.clip(m["t_send_ns"].to_numpy(np.int64), ctx.start_ns, ctx.end_ns)
    b = np.clip(m["t_last_ns"].to_numpy(np.int64), ctx.start_ns, ctx.end_ns)
    keep = b > a
    if ctx.end_ns <= ctx.start_ns:
        return math.nan
    if not keep.any():
        return 0.0
    a, b = a[keep], b[keep]
    order = np.argsort(a, kind="stable")
    a, b = a[order], np.maximum.accumulate(b[order])
    new = np.ones(a.size, dtype=np.bool_)
    new[1:] = a[1:] > b[:-1]
    idx = np.flatnonzero(new)
    covered = (np.maximum.reduceat(b, idx) - a[idx]).sum()
    return float(covered / (ctx.end_ns - ctx.start_ns))


def _window_of(ctx: RuleContext, rule: str, severity: Severity, title: str, summary: str, *,
               evidence: list[Evidence], actions: tuple[str, ...]) -> Finding:
    n = len(ctx.window.steady_ids) or int(ctx.window.measured_requests)
    return Finding(rule=rule, severity=severity, title=title, summary=summary,
                   evidence=tuple(evidence), window_start_ns=ctx.start_ns,
                   window_end_ns=ctx.end_ns, requests_affected=n,
                   request_ids=tuple(int(i) for i in ctx.window.steady_ids[:20]),
                   actions=actions)


def _hot_thread_evidence(ctx: RuleContext) -> tuple[float, list[Evidence], str]:
    """(the model thread's active share or NaN, its evidence, a phrase for the summary)."""
    th = ctx.stacks.model_thread if ctx.stacks is not None else None
    if th is None:
        return math.nan, [], ""
    ev = [Evidence("model_thread_active_frac", th.active_frac,
                   f"thread {th.thread_name!r} (tid {th.tid}) of {th.role} pid {th.pid}")]
    for i, f in enumerate(th.top[:3], 1):
        ev.append(Evidence(f"hot_frame_{i}_self_frac", f.self_frac,
                           f"{f.function} ({f.file}:{f.line}), on the stack in "
                           f"{f.total_frac:.0%} of samples"))
    names = ", ".join(f.function for f in th.top[:3])
    return th.active_frac, ev, (f"the engine's {th.role} thread {th.thread_name!r} was on-CPU "
                                f"{th.active_frac:.0%} of the time" +
                                (f" (hottest: {names})" if names else ""))


def gpu_launch_bound(ctx: RuleContext) -> Finding | None:
    """Requests are in flight, yet the SMs are mostly idle: the GPU waits for the host to
    launch the next kernels (a Python loop launching small kernels one by one). Confirmed by
    NVML's utilization reading far above SM busy (kernels running, SMs idle: many tiny
    kernels with gaps), the engine's model thread hot in the stacks, or SMs nearly idle
    (< 20 %) on their own while the client kept up."""
    g = _gpu(ctx)
    if g is None or math.isnan(g.sm_busy_frac) or g.sm_busy_frac >= SM_BUSY_LOW_FRAC:
        return None
    busy = in_flight_share(ctx)
    if not busy >= CLIENT_BUSY_FRAC:
        return None
    gap = g.nvml_util_frac - g.sm_busy_frac
    hot, hot_ev, hot_text = _hot_thread_evidence(ctx)
    nvml_says = gap >= NVML_GAP_FRAC
    stacks_say = hot >= HOT_THREAD_FRAC
    idle_says = g.sm_busy_frac < SM_BUSY_CRITICAL_FRAC and client_behind(ctx) is None
    if not (nvml_says or stacks_say or idle_says):
        return None
    severity = (Severity.CRITICAL if g.sm_busy_frac < SM_BUSY_CRITICAL_FRAC
                and (nvml_says or hot >= HOT_SUPPORT_FRAC) else Severity.WARNING)
    why = []
    if nvml_says:
        why.append(f"NVML reports a kernel running {_pct(g.nvml_util_frac)} of the time")
    elif idle_says:
        why.append(f"a kernel ran only {_pct(g.nvml_util_frac)} of the time (NVML)")
    if hot_text:
        why.append(hot_text)
    elif ctx.stacks is None:
        why.append("no stacks were recorded to say where the host's time goes "
                   "(--collect stacks)")
    return _window_of(
        ctx, "gpu_launch_bound", severity, "The engine is launch/CPU-bound: SMs mostly idle",
        (f"With requests in flight {busy:.0%} of the window, the SMs were busy only "
         f"{_pct(g.sm_busy_frac)} of the time (occupancy {_pct(g.sm_occupancy_frac)}), "
         f"while {' and '.join(why)}: the GPU waits for the host between kernels."),
        evidence=[Evidence("sm_busy_frac", g.sm_busy_frac, "GPM SM_UTIL, time-weighted"),
         Evidence("nvml_util_frac", g.nvml_util_frac, "NVML: a kernel was running"),
         Evidence("nvml_minus_sm_busy_frac", gap),
         Evidence("sm_occupancy_frac", g.sm_occupancy_frac),
         Evidence("tensor_active_frac", g.tensor_active_frac),
         Evidence("in_flight_frac", busy, "window time with ≥ 1 request in flight"),
         *hot_ev],
        actions=(ctx.action(Knob.CUDA_GRAPHS),
         ctx.action(Knob.MAX_BATCH) + " (more sequences per step: the same launches do "
         "more work)",
         ctx.action(Knob.ASYNC_SCHEDULING)))


def gpu_memory_bound_decode(ctx: RuleContext) -> Finding | None:
    """DRAM bandwidth near the device's peak with the tensor pipes mostly idle: each decode
    step reads the weights and the KV cache and does little math per byte. Expected for
    decode; the lever is fewer bytes per token."""
    g = _gpu(ctx)
    if g is None or not g.dram_bw_peak_frac >= DRAM_BOUND_FRAC:
        return None
    if not g.tensor_active_frac < TENSOR_LOW_FRAC:
        return None
    _, kv = ctx.gauge(Signal.KV_CACHE_USAGE_FRAC)
    kv_max = float(kv.max()) if kv.size else math.nan
    kv_room = not math.isnan(kv_max) and kv_max < KV_FULL_FRAC
    actions = [ctx.action(Knob.QUANTIZATION)]
    if kv_room:
        actions.append(ctx.action(Knob.MAX_BATCH) + f" (the KV cache peaked at {kv_max:.0%}: "
                       "a larger batch reads the weights once for more tokens)")
    else:
        actions.append("a larger batch amortizes the weight reads, but only with KV-cache "
                       "room to spare" + ("" if math.isnan(kv_max)
                                          else f" (it peaked at {kv_max:.0%})"))
    return _window_of(
        ctx, "gpu_memory_bound_decode", Severity.INFO, "Decode is memory-bandwidth-bound",
        (f"DRAM bandwidth averaged {g.dram_bw_bytes_per_s / 1e9:.0f} GB/s, "
         f"{_pct(g.dram_bw_peak_frac)} of the device's peak, while the tensor pipes were "
         f"active {_pct(g.tensor_active_frac)} of the time: decode steps are limited by "
         f"reading weights and KV cache, as decode usually is."),
        evidence=[Evidence("dram_bw_bytes_per_s", g.dram_bw_bytes_per_s),
         Evidence("dram_bw_peak_frac", g.dram_bw_peak_frac, "GPM DRAM_BW_UTIL"),
         Evidence("peak_dram_bytes_per_s", g.peak_dram_bytes_per_s),
         Evidence("tensor_active_frac", g.tensor_active_frac, "GPM ANY_TENSOR_UTIL"),
         Evidence("sm_busy_frac", g.sm_busy_frac),
         Evidence("kv_usage_max_frac", kv_max)],
        actions=tuple(actions))


def _prefill_density(ctx: RuleContext, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray,
                                                                                float]:
    """Prompt tokens per second in prefill during each window [a, b] (each request's prompt
    spread evenly over its send .. first token), and the median prompt length."""
    m = ctx.measured
    send = m["t_send_ns"].to_numpy(np.int64)
    first = m["t_first_output_ns"].to_numpy(np.int64)
    prompt = m["input_tokens"].to_numpy(np.float64)
    has = (send >= 0) & (first > send) & (prompt > 0)
    if not has.any():
        return np.zeros(a.size), math.nan
    send, first, prompt = send[has], first[has], prompt[has]
    rate = prompt / (first - send)  # tokens per ns
    out = np.zeros(a.size)
    for i in range(0, a.size, 256):  # windows × requests, a block at a time
        lo = np.maximum(a[i:i + 256, None], send[None, :])
        hi = np.minimum(b[i:i + 256, None], first[None, :])
        out[i:i + 256] = (np.clip(hi - lo, 0, None) * rate[None, :]).sum(axis=1)
    return out / ((b - a) / 1e9), float(np.median(prompt))


def gpu_compute_bound_prefill(ctx: RuleContext) -> Finding | None:
    """The tensor pipes are busy (≥ :data:`TENSOR_HIGH_FRAC`) in the GPM windows with the
    most prompt tokens in prefill (the upper half by prefill tokens/s): prefill is bound by
    math, so long prompts hold the step for everyone running."""
    t = ctx.gpu_tables
    if t is None or _gpu(ctx) is None or t.gpm.empty:
        return None
    g = t.gpm
    g = g[(g["metric"].to_numpy() == "any_tensor_util") & g["mig_gpu_instance"].isna()]
    a = np.maximum(g["t_start_ns"].to_numpy(np.int64), ctx.start_ns)
    b = np.minimum(g["t_end_ns"].to_numpy(np.int64), ctx.end_ns)
    keep = b > a
    a, b, v = a[keep], b[keep], g["value"].to_numpy(np.float64)[keep] / 100
    if a.size < 4:
        return None
    dens, med_prompt = _prefill_density(ctx, a, b)
    if not (dens > 0).any():
        return None
    heavy = (dens >= np.median(dens)) & (dens > 0)
    w = (b - a).astype(np.float64)
    tensor_heavy = float((v[heavy] * w[heavy]).sum() / w[heavy].sum())
    light = ~heavy
    tensor_light = (float((v[light] * w[light]).sum() / w[light].sum()) if light.any()
                    else math.nan)
    if tensor_heavy < TENSOR_HIGH_FRAC:
        return None
    ttft = ctx.ok["ttft_ns"].to_numpy(np.float64)
    ttft_ms = float(np.nanmean(ttft)) / 1e6 if ttft.size else math.nan
    return _window_of(
        ctx, "gpu_compute_bound_prefill", Severity.WARNING, "Prefill is compute-bound",
        (f"In the GPM windows with the most prompt tokens in prefill "
         f"({float(np.mean(dens[heavy])):.0f} tokens/s), the tensor pipes were active "
         f"{tensor_heavy:.0%} of the time (against {_pct(tensor_light)} in the others): "
         f"prefill of the {med_prompt:.0f}-token median prompt is limited by math; the mean "
         f"TTFT was {ttft_ms:.0f} ms."),
        evidence=[Evidence("tensor_active_prefill_heavy_frac", tensor_heavy,
                  "GPM ANY_TENSOR_UTIL in windows with ≥ median prefill tokens/s"),
         Evidence("tensor_active_other_frac", tensor_light),
         Evidence("prefill_tokens_per_s_heavy", float(np.mean(dens[heavy]))),
         Evidence("prefill_heavy_windows", float(heavy.sum())),
         Evidence("prompt_median_tokens", med_prompt),
         Evidence("client_ttft_mean_ms", ttft_ms)],
        actions=(ctx.action(Knob.PREFILL_CHUNK) + " (decodes then share each step with a bounded "
         "slice of prefill)",
         "or serve long-prompt traffic on separate replicas (prefill/decode disaggregation)"))


def gpu_throttling(ctx: RuleContext) -> Finding | None:
    """The GPU ran below its clock because of its power or thermal limits (or a hardware
    slowdown) during part of the window: the same work takes longer."""
    g = _gpu(ctx)
    if g is None or not g.throttled_frac >= THROTTLE_FRAC:
        return None
    if not g.sm_clock_max_frac <= CLOCK_DROP_FRAC:
        return None
    shares = {s.reason: s.time_frac for s in g.throttle}
    power = max((s.time_frac for s in g.throttle if s.bit & POWER_BITS), default=0.0)
    thermal = max((s.time_frac for s in g.throttle if s.bit & THERMAL_BITS), default=0.0)
    reasons = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if k != "gpu_idle")
    actions = []
    if power > 0:
        actions.append("power cap: check the board's limit (nvidia-smi -q -d POWER) and raise "
                       "it (nvidia-smi -pl) where the hardware allows, or expect these clocks")
    if thermal > 0:
        actions.append("thermal: check the GPU's cooling and inlet temperature "
                       "(nvidia-smi -q -d TEMPERATURE)")
    if "hw_slowdown" in shares:
        actions.append("hardware slowdown: check the power supply and the board's events "
                       "(nvidia-smi -q -d PERFORMANCE)")
    return _window_of(
        ctx, "gpu_throttling",
        Severity.CRITICAL if g.sm_clock_max_frac < CLOCK_CRITICAL_FRAC else Severity.WARNING,
        "The GPU is throttled",
        (f"A power, thermal or slowdown reason held the clocks down {g.throttled_frac:.0%} of "
         f"the window ({reasons}); the SM clock's median was {g.sm_clock_median_mhz:.0f} MHz, "
         f"{g.sm_clock_max_frac:.0%} of the {g.max_sm_clock_mhz:.0f} MHz maximum."),
        evidence=[Evidence("throttled_frac", g.throttled_frac,
                           "samples with a power/thermal/slowdown reason set"),
         Evidence("power_cap_frac", power), Evidence("thermal_frac", thermal),
         Evidence("sm_clock_median_mhz", g.sm_clock_median_mhz),
         Evidence("max_sm_clock_mhz", g.max_sm_clock_mhz),
         Evidence("sm_clock_max_frac", g.sm_clock_max_frac),
         Evidence("power_mean_w", g.power_mean_w)],
        actions=tuple(actions))


def gpu_memory_pressure(ctx: RuleContext) -> Finding | None:
    """GPU memory (nearly) full. Engines reserve most of the memory up front (vLLM's
    --gpu-memory-utilization, SGLang's --mem-fraction-static; transformers serve's paged
    cache), so this alone is information; with the engine preempting or its KV cache at the
    cap it is pressure."""
    g = _gpu(ctx)
    if g is None or not g.mem_used_max_frac >= MEM_PRESSURE_FRAC:
        return None
    _, kv = ctx.gauge(Signal.KV_CACHE_USAGE_FRAC)
    _, pre = ctx.counter_steps(Signal.PREEMPTIONS_TOTAL)
    kv_max = float(kv.max()) if kv.size else math.nan
    preemptions = float(pre.sum()) if pre.size else (0.0 if ctx.engine is not None
                                                     else math.nan)
    pressed = preemptions > 0 or kv_max >= KV_FULL_FRAC
    engine = ("" if ctx.engine is not None else " The engine's metrics were not recorded, so "
              "whether its KV cache was full is unknown.")
    summary = (f"GPU memory use peaked at {g.mem_used_max_frac:.0%} of "
               f"{g.mem_total_bytes / 2**30:.0f} GiB"
               + (f", the KV cache at {kv_max:.0%} and the engine preempted "
                  f"{preemptions:.0f} times: memory limits the batch." if pressed else
                  ": engines reserve memory up front, so this alone is not a bottleneck."
                  + engine))
    return _window_of(
        ctx, "gpu_memory_pressure", Severity.WARNING if pressed else Severity.INFO,
        "GPU memory is full" + (" and limits the batch" if pressed else " (reserved)"),
        summary,
        evidence=[Evidence("mem_used_max_frac", g.mem_used_max_frac),
         Evidence("mem_used_max_bytes", g.mem_used_max_bytes),
         Evidence("mem_total_bytes", g.mem_total_bytes),
         Evidence("kv_usage_max_frac", kv_max), Evidence("preemptions", preemptions)],
        actions=(ctx.action(Knob.KV_CACHE_SIZE), ctx.action(Knob.QUANTIZATION)) if pressed else
        ("nothing to change for this workload; watch preemptions if the load grows",))


def gpu_idle_client_limited(ctx: RuleContext) -> Finding | None:
    """The GPU was mostly idle while the load generator was the limit (the client-behind
    rule fired): the run measured the client, not the engine."""
    g = _gpu(ctx)
    if g is None or math.isnan(g.sm_busy_frac) or g.sm_busy_frac >= GPU_IDLE_FRAC:
        return None
    behind = client_behind(ctx)
    if behind is None:
        return None
    lag = behind.value("schedule_lag_p99_ms")
    cpu = behind.value("client_cpu_busy_frac")
    return _window_of(
        ctx, "gpu_idle_client_limited", Severity.WARNING,
        "The GPU waits for the load generator",
        (f"The SMs were busy {_pct(g.sm_busy_frac)} of the window (NVML: a kernel running "
         f"{_pct(g.nvml_util_frac)}) while the client fell behind its schedule (lag p99 "
         f"{lag:.1f} ms, worker CPU {_pct(cpu)}): the engine had room; the run measured "
         f"the client."),
        evidence=[Evidence("sm_busy_frac", g.sm_busy_frac),
                  Evidence("nvml_util_frac", g.nvml_util_frac),
         Evidence("schedule_lag_p99_ms", lag), Evidence("client_cpu_busy_frac", cpu),
         Evidence("in_flight_frac", in_flight_share(ctx))],
        actions=behind.actions)
