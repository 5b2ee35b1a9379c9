"""Where a GPU idles during profiled training steps, and what the host was doing meanwhile: a
reading of torch.profiler's Chrome trace (``prof.export_chrome_trace``).

Kernel time per family (gpu_throughput.py) says what the device computed; it cannot say why a
step's wall time is longer than its kernels. This module walks the trace's device timeline
(kernels, copies, memsets on any stream) and cuts the profiled window into busy time and idle
gaps. Each gap is explained by the host side of the trace:

- ``host sync``: a blocking runtime call (stream/device/event synchronize, a synchronous
  ``cudaMemcpy``) returned inside the gap: the host waited for the device to drain, so the
  device then waited for the host. Attributed to the operator that made the call (``aten::item``,
  ``aten::_local_scalar_dense``, ``aten::copy_`` ...).
- ``allocator``: ``cudaMalloc``/``cudaFree`` (``cudaFree`` synchronizes the device) or a pinned
  host allocation overlapped the gap: the caching allocator missed or flushed.
- ``host late``: the work that ended the gap was launched after the device had gone idle: the
  host was busy elsewhere (Python, the optimizer's launches, data preparation). Attributed to the
  launching operator and the outermost annotation around the launch (the step's phase).
- ``queued``: the work was already launched when the device went idle (a stream waiting on an
  event, launch latency).
- ``between kernels``: gaps shorter than ``min_gap_us`` (launch-to-launch latency of
  back-to-back kernels), summed, not explained one by one.

Only Chrome-trace fields torch's profiler writes are used: ``cat``, ``name``, ``ts``/``dur``
(microseconds), ``tid`` and ``args.correlation`` (which links a launch to the device work it
queued). On a CPU-only trace there is no device timeline; the phase host times still are
reported.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEVICE_CATS = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})
LAUNCH_CATS = frozenset({"cuda_runtime", "cuda_driver"})
HOST_OP_CATS = frozenset({"cpu_op", "user_annotation"})
# runtime / driver calls that block the host until queued device work is done
BLOCKING_CALLS = frozenset(
    {
        "cudaStreamSynchronize",
        "cudaDeviceSynchronize",
        "cudaEventSynchronize",
        "cudaMemcpy",
        "cudaMemcpy2D",
        "cuStreamSynchronize",
        "cuCtxSynchronize",
        "cuEventSynchronize",
        "cuMemcpyDtoH_v2",
        "cuMemcpyHtoD_v2",
    }
)
ALLOCATOR_CALLS = frozenset(
    {
        "cudaMalloc",
        "cudaFree",
        "cudaHostAlloc",
        "cudaMallocHost",
        "cudaFreeHost",
        "cuMemAlloc_v2",
        "cuMemFree_v2",
        "cuMemCreate",
        "cuMemMap",
        "cuMemUnmap",
    }
)
HOST_WAIT = "Command Buffer Full"  # CUPTI's record of a launch blocked on a full queue
GAP_KINDS = ("host sync", "allocator", "host late", "queued", "between kernels", "window edge")


@dataclass(frozen=True)
class Span:
    """One complete ("X") trace event; times in microseconds."""

    name: str
    cat: str
    start: float
    end: float
    tid: Any = None
    correlation: int | None = None


@dataclass
class Trace:
    device: list[Span]  # kernels, copies and memsets, any stream
    launches: dict[int, Span]  # runtime / driver calls by correlation id
    calls: list[Span]  # every runtime / driver call
    host: dict[Any, list[Span]]  # host operators and annotations per thread, by start
    annotations: list[Span]  # user annotations (record_function), any thread


def read_trace(source: str | Path | dict) -> Trace:
    """The spans of a Chrome trace written by torch.profiler (a path or the loaded JSON)."""
    data = source if isinstance(source, dict) else json.loads(Path(source).read_text())
    device, calls, annotations = [], [], []
    host: dict[Any, list[Span]] = defaultdict(list)
    for e in data.get("traceEvents", []):
        if e.get("ph") != "X" or "dur" not in e:
            continue
        cat = str(e.get("cat", "")).lower()
        args = e.get("args") or {}
        corr = args.get("correlation")
        span = Span(
            str(e.get("name", "")),
            cat,
            float(e["ts"]),
            float(e["ts"]) + float(e["dur"]),
            e.get("tid"),
            int(corr) if corr is not None else None,
        )
        if cat in DEVICE_CATS:
            if span.name != HOST_WAIT:  # the host waiting for room in the launch queue
                device.append(span)
        elif cat in LAUNCH_CATS:
            calls.append(span)
        elif cat in HOST_OP_CATS:
            host[span.tid].append(span)
            if cat == "user_annotation":
                annotations.append(span)
    launches = {c.correlation: c for c in calls if c.correlation is not None}
    for spans in host.values():
        spans.sort(key=lambda s: (s.start, -s.end))
    device.sort(key=lambda s: s.start)
    return Trace(device, launches, calls, dict(host), annotations)


def innermost(spans: list[Span], t: float) -> Span | None:
    """The latest-starting span of one thread that contains ``t`` (host spans nest)."""
    i = bisect.bisect_right([s.start for s in spans], t)
    for s in reversed(spans[:i]):
        if s.end >= t:
            return s
    return None


def phase_at(trace: Trace, t: float, prefix: str = "", outermost: bool = False) -> str:
    """The name of the shortest (``outermost``: longest) annotation of any thread containing
    ``t`` whose name starts with ``prefix``: the step's phase the host was in."""
    found = [a for a in trace.annotations if a.start <= t <= a.end and a.name.startswith(prefix)]
    if not found:
        return "(no annotation)"
    pick = max if outermost else min
    return pick(found, key=lambda a: a.end - a.start).name


def merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _caller(trace: Trace, call: Span) -> str:
    op = innermost(trace.host.get(call.tid, []), call.start)
    return op.name if op is not None else "(no operator)"


def analyze(
    trace: Trace,
    window: tuple[float, float],
    steps: int,
    min_gap_us: float = 10.0,
    top: int = 12,
    phase_prefix: str = "",
) -> dict[str, Any]:
    """Busy and idle device time in ``window`` (microseconds, trace clock) per step, the idle
    gaps by kind, by phase and by launching operator, and the blocking and allocator calls."""
    w0, w1 = window
    steps = max(steps, 1)
    per_step = 1e-3 / steps  # microseconds in the window -> ms per step
    out: dict[str, Any] = {"window_ms_per_step": (w1 - w0) * per_step}
    if not trace.device:
        out["device_timeline"] = "none in the trace (a CPU run): GPU busy time unavailable"
    else:
        inside = [(max(s.start, w0), min(s.end, w1)) for s in trace.device]
        busy = merged([(a, b) for a, b in inside if b > a])
        busy_us = sum(b - a for a, b in busy)
        out["busy_ms_per_step"] = busy_us * per_step
        out["busy_fraction"] = busy_us / (w1 - w0) if w1 > w0 else 0.0
        out.update(_gaps(trace, busy, window, min_gap_us, top, per_step, phase_prefix))
        copies: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        for s in trace.device:
            if s.cat == "gpu_memcpy" and s.end > w0 and s.start < w1:
                kind = s.name.split("(")[0].replace("Memcpy", "").strip() or s.name
                copies[kind][0] += 1
                copies[kind][1] += (min(s.end, w1) - max(s.start, w0)) * per_step
        out["copies_per_step"] = {
            k: {"count": c / steps, "ms": ms} for k, (c, ms) in copies.items()
        }
    out["blocking_calls_per_step"] = _calls(trace, BLOCKING_CALLS, window, steps, per_step)
    out["allocator_calls_per_step"] = _calls(trace, ALLOCATOR_CALLS, window, steps, per_step)
    out["phases_ms_per_step"] = _phases(trace, window, per_step, phase_prefix)
    return out


def _gaps(trace, busy, window, min_gap_us, top, per_step, phase_prefix) -> dict[str, Any]:
    w0, w1 = window
    edges = [w0] + [x for a, b in busy for x in (a, b)] + [w1]
    gaps = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2) if edges[i + 1] > edges[i]]
    starts = [s.start for s in trace.device]
    blocking = [c for c in trace.calls if c.name in BLOCKING_CALLS]
    allocating = [c for c in trace.calls if c.name in ALLOCATOR_CALLS]
    by_kind: dict[str, float] = dict.fromkeys(GAP_KINDS, 0.0)
    by_phase: dict[str, float] = defaultdict(float)
    by_op: dict[str, float] = defaultdict(float)
    for g0, g1 in gaps:
        length = g1 - g0
        i = bisect.bisect_left(starts, g1)
        if g1 >= w1 or i == len(starts):  # after the window's last device work
            by_kind["window edge"] += length
            continue
        if length < min_gap_us:
            by_kind["between kernels"] += length
            continue
        sync = next((c for c in blocking if g0 - min_gap_us <= c.end <= g1), None)
        alloc = next((c for c in allocating if c.start < g1 and c.end > g0), None)
        nxt = trace.device[i]  # the work that ended the gap
        launch = trace.launches.get(nxt.correlation)
        if sync is not None:
            kind, op, when = "host sync", f"{sync.name} in {_caller(trace, sync)}", sync.end
        elif alloc is not None:
            kind, op, when = "allocator", f"{alloc.name} in {_caller(trace, alloc)}", alloc.start
        elif launch is not None and launch.start > g0:
            kind, op, when = "host late", _caller(trace, launch), launch.start
        else:
            kind, when, op = "queued", g1, f"launched before idle: {nxt.name[:60]}"
        by_kind[kind] += length
        by_phase[phase_at(trace, when, phase_prefix)] += length
        by_op[f"{kind}: {op}"] += length
    ranked = sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
    return {
        "idle_ms_per_step": sum(g1 - g0 for g0, g1 in gaps) * per_step,
        "idle_by_kind_ms_per_step": {k: v * per_step for k, v in by_kind.items() if v},
        "idle_by_phase_ms_per_step": {
            k: v * per_step for k, v in sorted(by_phase.items(), key=lambda kv: -kv[1])
        },
        "idle_by_cause_ms_per_step": {k: v * per_step for k, v in ranked},
    }


def _calls(trace, names, window, steps, per_step) -> dict[str, dict[str, float]]:
    w0, w1 = window
    found: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for c in trace.calls:
        if c.name in names and w0 <= c.start <= w1:
            key = f"{c.name} in {_caller(trace, c)}"
            found[key][0] += 1
            found[key][1] += (c.end - c.start) * per_step
    return {k: {"count": n / steps, "ms": ms} for k, (n, ms) in found.items()}


def _phases(trace, window, per_step, prefix) -> dict[str, dict[str, float]]:
    """Per annotation name (``prefix``ed): host time inside it, and device time of the work
    launched inside it (kernels queued by the optimizer's step, the forward, ...)."""
    w0, w1 = window
    spans = [a for a in trace.annotations if a.name.startswith(prefix) and w0 <= a.start <= w1]
    if not prefix:  # without a prefix only the outermost annotations are phases
        spans = [a for a in spans if phase_at(trace, a.start, outermost=True) == a.name]
    out: dict[str, dict[str, float]] = {}
    for a in spans:
        entry = out.setdefault(a.name, {"host_ms": 0.0, "device_ms": 0.0})
        entry["host_ms"] += (a.end - a.start) * per_step
    if trace.device and spans:
        nested = sorted(spans, key=lambda a: (a.start, -a.end))  # an inner span after its outer
        for d in trace.device:
            launch = trace.launches.get(d.correlation)
            phase = innermost(nested, launch.start) if launch is not None else None
            if phase is not None:
                out[phase.name]["device_ms"] += (d.end - d.start) * per_step
    return out


def window_between(trace: Trace, name: str) -> tuple[float, float] | None:
    """From the start of the first to the end of the last annotation called ``name`` (e.g. the
    markers a profiling hook put at step ends), or None when there are fewer than two."""
    marks = sorted((a for a in trace.annotations if a.name == name), key=lambda a: a.start)
    return (marks[0].start, marks[-1].end) if len(marks) >= 2 else None


def window_of_steps(trace: Trace, name: str) -> tuple[float, float] | None:
    """From the first ``name`` annotation's start to the later of the last one's end and the end
    of the device work launched inside the annotations (the device lags the host)."""
    marks = [a for a in trace.annotations if a.name == name]
    if not marks:
        return None
    w0, w1 = min(a.start for a in marks), max(a.end for a in marks)
    launched = [
        d.end for d in trace.device if (c := trace.launches.get(d.correlation)) and c.start >= w0
    ]
    return w0, max([w1, *launched])


def summary_lines(result: dict[str, Any]) -> list[str]:
    """A few readable lines of :func:`analyze`'s result."""

    def top(d: dict, n: int = 5, key: str | None = None) -> str:
        items = sorted(d.items(), key=lambda kv: -(kv[1][key] if key else kv[1]))[:n]
        return ", ".join(f"{k} {v[key] if key else v:.2f}" for k, v in items) or "none"

    lines = [f"window: {result['window_ms_per_step']:.1f} ms per step"]
    if "busy_fraction" in result:
        lines[0] += (
            f"; device busy {result['busy_ms_per_step']:.1f} ms ({result['busy_fraction']:.1%}),"
            f" idle {result['idle_ms_per_step']:.1f} ms"
        )
        lines.append("idle by kind, ms per step: " + top(result["idle_by_kind_ms_per_step"], 9))
        lines.append("idle by phase, ms per step: " + top(result["idle_by_phase_ms_per_step"]))
        lines.append("idle by cause, ms per step: " + top(result["idle_by_cause_ms_per_step"], 8))
        lines.append("copies per step, ms: " + top(result["copies_per_step"], key="ms"))
    else:
        lines.append(result["device_timeline"])
    lines.append("blocking calls per step, ms: " + top(result["blocking_calls_per_step"], key="ms"))
    allocator = top(result["allocator_calls_per_step"], key="ms")
    lines.append("allocator calls per step, ms: " + allocator)
    phases = result["phases_ms_per_step"]
    lines.append(
        "phases, host / device ms per step: "
        + (
            ", ".join(f"{k} {v['host_ms']:.2f} / {v['device_ms']:.2f}" for k, v in phases.items())
            or "none"
        )
    )
    return lines
