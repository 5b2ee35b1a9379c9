"""benchmarks/gpu_throughput.py: the CPU smoke run covers every row and writes the JSON the docs
read; FLOP counting, peak lookup, knob resolution and batch rounding are right."""

import importlib.util
import json

import pytest
import torch

from vssl_core.nn import Attention

ROW_KEYS = {"workload", "impl", "knobs", "label", "status"}
MEASURED_KEYS = {"batch", "step_ms", "clips_per_s", "train_gflop_per_clip", "fwd_gflop_per_clip"}
META_KEYS = {"device", "torch", "peak_flops", "flop_convention", "trainer_defaults", "rows"}


@pytest.mark.slow
def test_tiny_run_covers_every_row_and_writes_the_expected_json(gpu_throughput, tmp_path, capsys):
    path = tmp_path / "gpu.json"
    argv = ["--tiny", "--warmup", "0", "--steps", "1", "--json", str(path)]
    assert gpu_throughput.main(argv) == 0
    assert "| workload | knobs | batch |" in capsys.readouterr().out
    report = json.loads(path.read_text())
    assert META_KEYS <= set(report) and report["tiny"] is True
    rows = report["rows"]
    assert [(r["workload"], r["label"]) for r in rows] == [
        (w, k.label()) for w, k in gpu_throughput.ROWS
    ]
    has_transformers = importlib.util.find_spec("transformers") is not None
    for row in rows:
        assert ROW_KEYS <= set(row), row
        if row["status"] == "skipped":  # compile or CUDA's allocator on a CPU; = CPU default
            expected = "compile" in row["label"] or "same as the default" in row["reason"]
            expected |= "setting of the CUDA allocator" in row["reason"]
            if row["impl"] == "hf" and not has_transformers:
                expected = "pip install transformers" in row["reason"]
            assert expected, row
            continue
        assert row["status"] == "ok", row
        assert MEASURED_KEYS <= set(row) and row["clips_per_s"] > 0
        assert row["train_gflop_per_clip"] == pytest.approx(3 * row["fwd_gflop_per_clip"])
    default = {r["workload"]: r for r in rows if r["label"] == "default" and r["status"] == "ok"}
    assert set(default) >= set(gpu_throughput.WORKLOADS) - {"hf_videomae_vit_b"}
    if not has_transformers:
        return
    assert "vs_transformers" in default["videomae_vit_b"]
    # the same sizes and mask; the counts differ by exactly the tubelet embedding of the masked
    # tokens, which transformers computes and drops and vssl skips (tiny: 6 of 8 tokens masked,
    # 3 x 2 x 16 x 16 pixels -> 192 wide)
    ours, theirs = default["videomae_vit_b"], default["hf_videomae_vit_b"]
    masked_embedding_gmac = 6 * (3 * 2 * 16 * 16) * 192 / 1e9
    skipped = theirs["fwd_gmac_per_clip"] - ours["fwd_gmac_per_clip"]
    assert skipped == pytest.approx(masked_embedding_gmac, rel=0.01)


def test_fvcore_count_includes_attention_through_the_sdpa_handle(common):
    B, N, D, H = 2, 10, 32, 4
    attn = Attention(D, H)
    macs, skipped = common.fvcore_forward_macs(attn, (torch.randn(B, N, D),))
    linear = B * N * D * 3 * D + B * N * D * D  # qkv and proj
    sdpa = B * H * N * N * (2 * D // H)  # q k^T and attn v
    assert macs == linear + sdpa
    assert "aten::scaled_dot_product_attention" not in skipped


@pytest.mark.parametrize(
    "name, peak",
    [
        ("NVIDIA H100 80GB HBM3", 989.4e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989.4e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("Tesla T4", None),
    ],
)
def test_peak_flops_by_device_name(gpu_throughput, name, peak):
    assert gpu_throughput.peak_for_name(name) == peak


def test_default_knobs_resolve_to_what_the_trainer_does_on_each_device(gpu_throughput):
    g = gpu_throughput
    mae, moco = g.WORKLOADS["videomae_vit_b"], g.WORKLOADS["moco_r2plus1d_18"]
    gpu = g.resolve(g.DEFAULT, mae, torch.device("cuda"))
    assert (gpu.bf16, gpu.fused, gpu.channels_last) == (True, True, False)  # a ViT: NCDHW
    cpu = g.resolve(g.DEFAULT, mae, torch.device("cpu"))
    assert (cpu.bf16, cpu.fused) == (False, False)
    cnn_gpu = g.resolve(g.DEFAULT, moco, torch.device("cuda"))
    assert (cnn_gpu.fused, cnn_gpu.channels_last) == (False, True)  # SGD foreach; NDHWC
    assert g.resolve(g.DEFAULT, moco, torch.device("cpu")).channels_last is False


def test_batch_search_steps_keep_queue_friendly_sizes(gpu_throughput):
    g = gpu_throughput
    assert [g.round_down(b, pow2=True) for b in (1, 7, 8, 200)] == [1, 4, 8, 128]
    assert [g.round_down(b, pow2=False) for b in (5, 15, 16, 203)] == [5, 15, 16, 200]
    assert [g.smaller(b, pow2=True) for b in (128, 1)] == [64, 0]
    assert [g.smaller(b, pow2=False) for b in (200, 16, 5, 2)] == [144, 12, 3, 1]


@pytest.mark.parametrize("fused", [True, False])
def test_the_fused_knob_reaches_every_parameter_group(gpu_throughput, fused):
    g = gpu_throughput
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    for name in ("videomae_vit_b", "moco_r2plus1d_18"):  # AdamW and SGD
        knobs = g.resolve(g.Knobs(fused=fused), g.WORKLOADS[name], torch.device("cpu"))
        optimizer = g.make_optimizer(model, g.WORKLOADS[name], knobs, torch.device("cpu"))
        assert len(optimizer.param_groups) == 2  # decay / no decay kept
        assert all(bool(group["fused"]) is fused for group in optimizer.param_groups), name


@pytest.mark.slow
def test_compiled_rows_and_profile_run_on_a_cpu_when_asked(gpu_throughput, tmp_path):
    """The CUDA-graph row and the compiled-step profile are what the next GPU run measures;
    on a CPU they compile with inductor (CUDA graphs need a GPU, so the mode only compiles)."""
    path = tmp_path / "gpu.json"
    argv = ["--tiny", "--cpu", "--cpu-compile", "--rows", "videomae_vit_b", "--json", str(path)]
    argv += ["--labels", "compile reduce-overhead", "--profile-compiled", "videomae_vit_b"]
    assert gpu_throughput.main(argv) == 0
    (row,) = json.loads(path.read_text())["rows"]
    assert row["label"] == "compile reduce-overhead" and row["status"] == "ok", row
    profile = (tmp_path / "gpu_profile_videomae_vit_b_compile.txt").read_text()
    assert profile.startswith("videomae_vit_b, compile, batch 2") and "Self CPU" in profile


def test_kernel_time_leaves_out_host_waits_and_cpu_ops(gpu_throughput):
    """A profile's "Command Buffer Full" records are the host waiting for room in the launch
    queue (the GPU was busy): counting them as kernel time would hide the GPU's idle time."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def event(key, us, device=DeviceType.CUDA, annotation=False):
        return SimpleNamespace(
            key=key, self_device_time_total=us, device_type=device, is_user_annotation=annotation
        )

    events = [
        event("nvjet_gemm", 3000.0),
        event("triton_poi_fused_gelu", 500.0),
        event("Command Buffer Full", 9000.0),
        event("ProfilerStep", 7000.0, annotation=True),
        event("aten::mm", 3000.0, device=DeviceType.CPU),
    ]
    prof = SimpleNamespace(key_averages=lambda: events)
    assert gpu_throughput.kernel_families(prof) == {"matmul": 3.0, "inductor-fused": 0.5}


@pytest.mark.parametrize(
    "kernel, family",
    [
        ("cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_26", "attention"),
        ("void cudnn::fusion::compute_dot_do_o_specialized<true, 64>", "attention"),
        ("sm80_xmma_wgrad_implicit_gemm_indexed_bf16bf16_bf16f32_f32_nhwckrsc", "convolution"),
        ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_ndhwc_kernel", "convolution"),
        ("void cublasLt::splitKreduce_kernel<32, 16, int, float, __nv_bfloat16>", "matmul"),
        ("triton_poi_fused__scaled_dot_product_efficient_attention_backward_3", "inductor-fused"),
        ("void at::native::_scatter_gather_elementwise_kernel<128, 4>", "other elementwise"),
        ("void implicit_convolveNd_sgemm<__nv_bfloat16, 3, 128, 6, 7, 3, 3, 5", "convolution"),
        ("nvjet_sm90_tst_192x192_64x3_1x2_h_bz_coopB_splitK_NTN", "matmul"),
        ("sm80_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize256x128x8_stage3", "matmul"),
        ("triton_poi_fused_gelu_gelu_backward_view_8", "inductor-fused"),
        ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel", "layernorm"),
        (
            "void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::nat",
            "copy / cast / cat",
        ),
        (
            "void at::native::vectorized_elementwise_kernel<8, at::native::GeluB",
            "other elementwise",
        ),
    ],
)
def test_profiled_kernels_fall_in_the_family_their_name_says(gpu_throughput, kernel, family):
    """Names seen in H200 profiles (benchmarks/results/*_profile_*.txt)."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    event = SimpleNamespace(
        key=kernel, self_device_time_total=1000.0, device_type=DeviceType.CUDA,
        is_user_annotation=False,
    )  # fmt: skip
    prof = SimpleNamespace(key_averages=lambda: [event])
    assert gpu_throughput.kernel_families(prof) == {family: 1.0}


def test_mfu_ceiling_counts_the_flop_kernels_only(gpu_throughput):
    """The compiled VideoMAE step of 2026-11-27 (3 profiled steps): matmul 336.9 ms and attention
    292.3 ms in all, 512 clips of 202.9 GFLOP, 989.4 TFLOP/s peak -> 50.1%."""
    families = {"matmul": 336.9, "attention": 292.3, "inductor-fused": 150.0, "optimizer": 9.0}

    def mfu_of(clips_per_s):
        return clips_per_s * 202.9e9 / 989.4e12

    line = gpu_throughput.mfu_ceiling_line(families, 3, 512, mfu_of)
    assert line == (
        "MFU if only its matmul, attention, convolution kernels ran (209.7 ms): 50.1%\n"
    )
    assert gpu_throughput.mfu_ceiling_line({"other": 5.0}, 3, 512, mfu_of) == ""


@pytest.mark.parametrize(
    "user, calls",
    [
        ("", ["expandable_segments:True", "expandable_segments:False"]),
        ("max_split_size_mb:256", ["max_split_size_mb:256,expandable_segments:True", "max_split_size_mb:256"]),
    ],
)  # fmt: skip
def test_the_expandable_row_keeps_the_users_allocator_settings(gpu_throughput, monkeypatch, user, calls):  # fmt: skip
    """Setting the allocator's options replaces all of them: the row adds expandable segments
    to what the user set, and gives the user's settings back after it, also on an error."""
    seen = []
    monkeypatch.setattr(torch.cuda.memory, "_set_allocator_settings", seen.append)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", user)
    with pytest.raises(RuntimeError, match="row failed"):
        with gpu_throughput.allocator_settings(torch.device("cuda"), True):
            raise RuntimeError("row failed")
    assert seen == calls


def test_the_expandable_row_is_skipped_when_the_user_already_expands(gpu_throughput, monkeypatch):
    g = gpu_throughput
    monkeypatch.setenv("PYTORCH_ALLOC_CONF", "expandable_segments:True")
    knobs = g.Knobs(expandable_segments=True)
    reason = g.skip_reason(g.WORKLOADS["sigma_mlp_vit_b"], knobs, torch.device("cuda"), None)
    assert "already turns expandable segments on" in reason


def test_vssl_is_compared_with_transformers_eager_to_eager_and_compiled_to_compiled(
    gpu_throughput,
):
    def row(workload, label, rate, status="ok"):
        return {"workload": workload, "label": label, "clips_per_s": rate, "status": status}

    rows = [
        row("videomae_vit_b", "default", 1200.0),
        row("hf_videomae_vit_b", "default", 600.0),
        row("videomae_vit_b", "compile", 1600.0),
        row("hf_videomae_vit_b", "compile", 1000.0),
        row("videomae_vit_b", "fp32", 300.0),  # no transformers row with these knobs
        row("sigma_mlp_vit_b", "default", 500.0),
    ]
    ratios = gpu_throughput.add_comparisons(rows)
    assert ratios == {"eager_vs_eager": 2.0, "compiled_vs_compiled": 1.6}
    mine = {r["label"]: r for r in rows if r["workload"] == "videomae_vit_b"}
    assert mine["compile"]["vs_transformers"] == pytest.approx(1600 / 600)  # vs eager, as before
    assert "vs_transformers_same_knobs" not in mine["fp32"]
    assert "vs_transformers" not in rows[-1]
    # a compiled transformers row that did not run: no compiled ratio, the eager one stays
    rows[3]["status"] = "failed"
    assert gpu_throughput.add_comparisons(rows) == {"eager_vs_eager": 2.0}


@pytest.mark.slow
def test_the_compiled_transformers_row_runs_on_a_cpu_when_asked(gpu_throughput, tmp_path, capsys):
    """The fair race's new row at a tiny size: transformers' VideoMAE under torch.compile, with
    the graph breaks it takes (its boolean-mask indexing has a data-dependent size)."""
    path = tmp_path / "gpu.json"
    argv = ["--tiny", "--cpu", "--cpu-compile", "--rows", "hf_videomae_vit_b"]
    argv += ["--labels", "compile", "--json", str(path)]
    assert gpu_throughput.main(argv) == 0
    (row,) = json.loads(path.read_text())["rows"]
    assert (row["impl"], row["label"], row["status"]) == ("hf", "compile", "ok"), row
    assert row["clips_per_s"] > 0 and row["compiled_graphs"] >= 1
    assert bool(row["graph_breaks"]) == bool(row["graph_break_reasons"])
    assert "graph breaks" in capsys.readouterr().out


def test_a_profile_attributes_the_steps_host_time_to_its_phases(gpu_throughput, tmp_path):
    """The profile's timeline (benchmarks/timeline.py): on a CPU, the host time of each phase of
    the step and the host-sync census of an eager step (none in VideoMAE's); on a GPU also the
    device's idle gaps by cause."""
    path = tmp_path / "gpu.json"
    argv = ["--tiny", "--cpu", "--rows", "videomae_vit_b", "--labels", "default"]
    argv += ["--profile", "videomae_vit_b", "--json", str(path)]
    assert gpu_throughput.main(argv) == 0
    times = json.loads((tmp_path / "gpu_profile_videomae_vit_b_timeline.json").read_text())
    phases = times["phases_ms_per_step"]
    steps = ("vssl.data", "vssl.forward", "vssl.backward", "vssl.optimizer", "vssl.after_step")
    assert set(steps) <= set(phases)
    assert sum(phases[p]["host_ms"] for p in steps) <= phases["vssl.step"]["host_ms"]
    assert phases["vssl.forward"]["host_ms"] > 0 and phases["vssl.optimizer"]["host_ms"] > 0
    assert "unavailable" in times["device_timeline"]
    assert times["host_syncs_per_eager_step"] == {}
    text = (tmp_path / "gpu_profile_videomae_vit_b.txt").read_text()
    assert "phases, host / device ms per step: vssl.step" in text


def test_an_objective_knob_reaches_the_objective_and_names_its_row(gpu_throughput, host):
    g = gpu_throughput
    knobs = g.Knobs(compile=True, objective=g.UINT8_INPUT)
    assert knobs.label() == "compile, uint8_input"
    assert g.profile_row("videomae_vit_b=compile, uint8_input") == ("videomae_vit_b", knobs)
    with pytest.raises(SystemExit, match="no such row; labels of 'videomae_vit_b'"):
        g.profile_row("videomae_vit_b=uint8")
    run = g.TrainRun(g.WORKLOADS["videomae_vit_b"], g.Knobs(objective=g.UINT8_INPUT), torch.device("cpu"), 2, host, tiny=True)  # fmt: skip
    assert not run.model.views().normalized
    assert run.make_batch().clips[0].dtype == torch.uint8  # normalized inside the objective
    run.step()
    hf = g.WORKLOADS["hf_videomae_vit_b"]
    assert g.skip_reason(hf, g.Knobs(objective=g.UINT8_INPUT), torch.device("cpu"), None)
