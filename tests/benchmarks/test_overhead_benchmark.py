"""benchmarks/overhead.py: the trainer-vs-plain-loop comparison runs, does the same work on both
sides, and its helpers (statistics, host-sync census, the CPU heap setting) are right."""

import json
import resource
import sys

import pytest
import torch

from vssl_core.engine.trainer import keep_freed_cpu_memory


@pytest.mark.slow
def test_quick_run_prints_a_ratio_for_both_cases_and_both_sides_do_the_same_work(
    overhead, tmp_path, capsys
):
    out = tmp_path / "overhead.json"
    assert overhead.main(["--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("ratio vssl/plain:") == 2
    result = json.loads(out.read_text())
    assert [c["case"] for c in result["cases"]] == ["moco", "videomae"]
    for case in result["cases"]:
        assert case["ratio"]["median"] > 0 and case["ratio"]["q1"] <= case["ratio"]["q3"]
        assert len(case["plain_ms_per_step"]["cpu"]) == result["rounds"] == 2
        # same init, batch, optimizer and schedule: a CPU run must end with identical weights
        assert case["max_weight_diff"] == 0.0
        # neither model reads a device value on the host (the ViT is told its visible count,
        # MoCo's queue keeps a host copy of its pointer); the trainer reads the step's flags,
        # loss and metrics once per step, and nothing more when it logs; no step copies host
        # data to the device (a GPU would wait for the queue at each copy)
        assert case["host_syncs_per_step"] == {"plain": 0.0, "vssl": 1.0}


@pytest.mark.slow
def test_every_built_in_method_reads_the_device_once_per_step(overhead, tmp_path):
    """The census of the other built-in objectives: the trainer's one read, nothing from the
    model, except tubelet contrast's two eager jitter reads (its subset path, by choice)."""
    out = tmp_path / "census.json"
    cases = ["sigma", "rotation", "clip_order", "tubelet"]
    assert overhead.main(["--quick", "--cases", *cases, "--json", str(out)]) == 0
    result = {c["case"]: c for c in json.loads(out.read_text())["cases"]}
    assert list(result) == cases
    for name, case in result.items():
        assert case["max_weight_diff"] == 0.0, name  # both sides did the same work
        expected = {"plain": 2.0, "vssl": 3.0} if name == "tubelet" else {"plain": 0.0, "vssl": 1.0}
        assert case["host_syncs_per_step"] == expected, name


def test_spread_gives_median_and_quartiles(common):
    s = common.spread([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (s.median, s.q1, s.q3, s.n) == (3.0, 2.0, 4.0, 5)
    assert common.spread([7.0]) == common.Spread(7.0, 7.0, 7.0, 1)
    with pytest.raises(ValueError, match="at least one"):
        common.spread([])


def test_host_sync_counter_counts_reads_in_user_code_not_inside_torch(common):
    w = torch.ones(4, requires_grad=True)
    optimizer = torch.optim.AdamW([w])  # its non-fused step reads a CPU step counter: not counted
    with common.HostSyncCounter() as counter:
        loss = w.square().sum()
        loss.backward()
        optimizer.step()
        float(loss.detach())
        if torch.isfinite(loss):  # __bool__
            loss.detach().tolist()
    assert dict(counter.calls) == {"__float__": 1, "__bool__": 1, "tolist": 1}


def test_host_sync_counter_counts_host_data_copied_to_a_device(common):
    """On a GPU ``torch.tensor(values, device=cuda)`` waits for the queued kernels; the census
    counts such copies on any device (a tensor's own conversion or a host tensor is not one)."""
    x = torch.ones(3)
    with common.HostSyncCounter() as counter:
        torch.tensor((0.5, 0.25), device=x.device)
        torch.as_tensor([1, 2], device="cpu")
        torch.tensor((0.5, 0.25))  # stays on the host
        torch.as_tensor(x, device=x.device)  # already a tensor
    assert dict(counter.calls) == {
        "tensor(host data, device=)": 1,
        "as_tensor(host data, device=)": 1,
    }


def test_host_sync_counter_counts_ops_whose_output_size_depends_on_values(common):
    x = torch.arange(6.0)
    with common.HostSyncCounter() as counter:
        x.nonzero()
        torch.unique(x)
        x[x > 2]
        x[1:3]  # a slice: no read
        x[torch.tensor([0, 1])]  # integer indices: the size is known
    assert dict(counter.calls) == {"nonzero": 1, "unique": 1, "x[bool mask]": 1}


def test_step_clock_times_only_the_steps_after_warmup(common):
    clock = common.StepClock(torch.device("cpu"), warmup=1, steps=3)
    for boundary in range(4):
        clock.mark(boundary)
    assert clock.per_step("wall") >= 0 and clock.per_step("cpu") >= 0
    with pytest.raises(ValueError, match="warmup < steps"):
        common.StepClock(torch.device("cpu"), warmup=3, steps=3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_keep_freed_cpu_memory_stops_page_faults_on_reallocation():
    if not keep_freed_cpu_memory():
        pytest.skip("not glibc")
    n = 48 * 2**20 // 4  # 48 MiB of float32: 12k pages if faulted in afresh
    for _ in range(16):  # glibc grows the heap a few times before freed blocks coalesce for reuse
        torch.empty(n).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.empty(n).fill_(1.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # glibc's default mmaps a 48 MiB block and unmaps it on free: 12k faults every time
    assert faults < 1000, f"{faults} page faults re-allocating a freed 48 MiB tensor 5 times"
