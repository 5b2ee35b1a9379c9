"""benchmarks/timeline.py: a profiled window's device idle time is cut into gaps and each gap
explained by the host side of the trace (a sync, the allocator, a late launch, queued work)."""

import pytest


def op(name, start, end, tid=1, cat="cpu_op", corr=None):
    event = {"ph": "X", "cat": cat, "name": name, "ts": start, "dur": end - start, "tid": tid}
    if corr is not None:
        event["args"] = {"correlation": corr}
    return event


def launch(start, corr, name="cudaLaunchKernel"):
    return op(name, start, start + 1, cat="cuda_runtime", corr=corr)


def kernel(name, start, end, corr, cat="kernel"):
    return op(name, start, end, tid=7, cat=cat, corr=corr)


TRACE = {
    "traceEvents": [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "python"}},
        op("vssl.step", 0, 200, cat="user_annotation"),
        op("vssl.forward", 0, 70, cat="user_annotation"),
        op("vssl.optimizer", 70, 200, cat="user_annotation"),
        op("aten::mm", 1, 4),
        launch(2, 1),
        kernel("gemm_a", 5, 60, 1),
        launch(50, 4),  # queued early, runs late
        launch(52, 5),
        op("aten::add", 70, 78),
        launch(75, 2),  # the device idled from 60: the host was late
        kernel("add_b", 80, 95, 2),
        op("aten::item", 95, 111),
        op("cudaStreamSynchronize", 96, 110, cat="cuda_runtime"),  # drained the device
        op("aten::mul", 111.5, 114),
        launch(112, 3),
        kernel("mul_c", 115, 125, 3),
        kernel("gemm_d", 128, 135, 4),  # 3 us after mul_c: back to back
        kernel("gemm_e", 150, 160, 5),  # launched at 52: queued
        kernel("Command Buffer Full", 140, 149, 9),  # the host waiting: not device work
        op("aten::empty", 164, 181),
        op("cudaFree", 165, 180, cat="cuda_runtime"),
        op("aten::relu", 181.5, 184),
        launch(182, 6),
        kernel("relu_f", 185, 190, 6),
        launch(186, 7, "cudaMemcpyAsync"),
        kernel("Memcpy HtoD (Pageable -> Device)", 190, 194, 7, cat="gpu_memcpy"),
    ]
}


def test_idle_gaps_are_explained_by_what_the_host_did(timeline):
    trace = timeline.read_trace(TRACE)
    window = timeline.window_of_steps(trace, "vssl.step")
    assert window == (0, 200)
    out = timeline.analyze(trace, window, steps=1, phase_prefix="vssl.")
    assert out["busy_ms_per_step"] == pytest.approx(0.106)
    assert out["busy_fraction"] == pytest.approx(106 / 200)
    assert out["idle_ms_per_step"] == pytest.approx(0.094)
    kinds = {k: round(v * 1e3, 6) for k, v in out["idle_by_kind_ms_per_step"].items()}
    assert kinds == {
        "host sync": 20, "allocator": 25, "host late": 20, "queued": 15,
        "between kernels": 8, "window edge": 6,
    }  # fmt: skip
    causes = {k: round(v * 1e3, 6) for k, v in out["idle_by_cause_ms_per_step"].items()}
    assert causes == {
        "allocator: cudaFree in aten::empty": 25,
        "host sync: cudaStreamSynchronize in aten::item": 20,
        "host late: aten::add": 20,
        "queued: launched before idle: gemm_e": 15,
    }
    phases = {k: round(v * 1e3, 6) for k, v in out["idle_by_phase_ms_per_step"].items()}
    assert phases == {"vssl.optimizer": 80}  # each gap where it ended or its launch was late
    assert out["phases_ms_per_step"]["vssl.forward"] == pytest.approx(
        {"host_ms": 0.070, "device_ms": 0.072}  # gemm_a, gemm_d and gemm_e were launched in it
    )
    assert out["phases_ms_per_step"]["vssl.optimizer"]["device_ms"] == pytest.approx(0.034)
    assert out["blocking_calls_per_step"] == {
        "cudaStreamSynchronize in aten::item": {"count": 1, "ms": pytest.approx(0.014)}
    }
    assert out["allocator_calls_per_step"] == {
        "cudaFree in aten::empty": {"count": 1, "ms": pytest.approx(0.015)}
    }
    assert out["copies_per_step"] == {"HtoD": {"count": 1, "ms": pytest.approx(0.004)}}
    assert any("device busy" in line for line in timeline.summary_lines(out))


def test_a_cpu_trace_reports_phase_times_without_a_device_timeline(timeline):
    events = [e for e in TRACE["traceEvents"] if e.get("cat") in ("cpu_op", "user_annotation")]
    trace = timeline.read_trace({"traceEvents": events})
    out = timeline.analyze(
        trace, timeline.window_of_steps(trace, "vssl.step"), 2, phase_prefix="vssl."
    )
    assert "busy_fraction" not in out and "unavailable" in out["device_timeline"]
    assert out["phases_ms_per_step"]["vssl.optimizer"] == {"host_ms": 0.065, "device_ms": 0.0}
    assert out["window_ms_per_step"] == pytest.approx(0.1)


def test_markers_bound_a_window_of_training_steps(timeline):
    events = [op("vssl.bench.step_end", t, t + 0.5, cat="user_annotation") for t in (10, 50, 90)]
    trace = timeline.read_trace({"traceEvents": events})
    assert timeline.window_between(trace, "vssl.bench.step_end") == (10, 90.5)
    assert (
        timeline.window_between(
            timeline.read_trace({"traceEvents": events[:1]}), "vssl.bench.step_end"
        )
        is None
    )
