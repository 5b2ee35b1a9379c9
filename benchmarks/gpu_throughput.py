"""Training throughput on one GPU: VideoMAE, SIGMA, MoCo and tubelet-contrast at paper sizes, with
the data already on the device, and the speed knobs the trainer could turn.

Goal on an H100: VideoMAE ViT-B pretraining (16x224x224, tube mask 0.9) at >= 2x the clips/s of
Hugging Face ``transformers``' VideoMAEForPreTraining at the same sizes, mask and precision, and at
>= 45% model FLOPs utilization (MFU). The race is run twice: both eager, and both under
torch.compile (transformers' row compiled as a user would: ``torch.compile`` of its training
forward, which breaks its graph at the boolean-mask indexing); the JSON's ``vs_transformers``
holds the two ratios, eager/eager and compiled/compiled.

Each row times optimizer steps (forward, backward, optimizer step, the objective's after_step)
of one workload with one set of knobs, after warmup steps, on a fixed synthetic uint8 batch that
lives on the device and is normalized in the step, as the trainer does (so the data path is out
of the measurement). The batch is as large as fits: a short probe measures memory per clip, the
largest batch that should fit 90% of the device memory is tried, and the batch shrinks on
out-of-memory (capped by --max-batch; queue-based methods use powers of two so the queue length
stays a multiple of the batch). Knob rows of a workload start from its default row's batch.

Knobs: bf16 autocast (else fp32, matmuls in full fp32: TF32 stays off as PyTorch defaults),
SDPA attention (the dispatcher picks flash / memory-efficient kernels) vs the math backend,
fused optimizer kernels vs the foreach path, torch.compile of the objective, and for the CNNs NDHWC
(channels_last_3d weights and clips: the trainer's default on a GPU) vs NCDHW. The "default" knobs
are the trainer's on a GPU.

FLOPs and MFU, precisely: fvcore counts the objective's forward at batch 2 (everything the step
computes: patch embedding (vssl: of the visible tubelets only), the encoder on the visible
tokens, the decoder on all tokens, heads, and no-grad branches such as targets, MoCo's key
encoder or SIGMA's teacher), one multiply-add = 1 "flop" in fvcore's unit. An SDPA handle is added (fvcore has none).
Model FLOPs per clip = 2 x fvcore count (a multiply-add is 2 FLOPs, the hardware's unit) x 3
(backward = 2 x forward). MFU = clips/s x model FLOPs per clip / dense bf16 peak of the device
(H100 SXM 989.4e12, H100 PCIe 756e12, H200 989.4e12, A100 312e12; --peak-tflops otherwise). For
methods with no-grad branches the x3 over-counts (those branches have no backward); each row
also reports the FLOPs torch's FlopCounterMode measures over one real forward+backward.

    python benchmarks/gpu_throughput.py                      # every row, ~5-8 min on an H100
    python benchmarks/gpu_throughput.py --rows videomae      # rows whose workload matches
    python benchmarks/gpu_throughput.py --tiny               # CPU smoke run (tests use it)
    python benchmarks/gpu_throughput.py --profile videomae_vit_b   # + where a step's time goes
    python benchmarks/gpu_throughput.py --rows videomae --labels default compile \
        --profile-compiled videomae_vit_b                    # + where a compiled step's goes
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import inspect
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.profiler import record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timeline  # noqa: E402
from common import (  # noqa: E402
    HostSyncCounter,
    LossOf,
    describe_device,
    fvcore_forward_macs,
    synthetic_batch,
)

from vssl_core.build import build_objective  # noqa: E402
from vssl_core.data.clips import normalize_on_device, normalize_uint8  # noqa: E402
from vssl_core.engine.optim import build_optimizer  # noqa: E402
from vssl_core.engine.trainer import use_channels_last, wants_channels_last  # noqa: E402
from vssl_core.nn import tube_mask  # noqa: E402
from vssl_core.plugins import load_plugins  # noqa: E402
from vssl_core.schema import OptimSection, TrainSection  # noqa: E402

GOAL_VS_HF = 2.0
GOAL_MFU = 0.45
MEMORY_FRACTION = 0.9  # of the device's memory the batch search aims to fill
EXPANDABLE = "expandable_segments:True"

# dense bf16 tensor-core peaks (spec performance-and-data-path.md §4); first match wins
PEAKS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIe"), 756e12),
    (("H100",), 989.4e12),
    (("H200",), 989.4e12),  # same compute as H100 SXM (spec: unverified)
    (("A100",), 312e12),
)

MAE_OPTIM = dict(name="adamw", lr=1.5e-4, weight_decay=0.05, betas=(0.9, 0.95))  # videomae/sigma
MOCO_OPTIM = dict(name="sgd", lr=0.01, lr_base_batch=32, weight_decay=1e-4)  # moco/tubelet


# ------------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One model + objective at paper size (``recipe``) and at CPU-smoke size (``tiny``)."""

    name: str
    impl: str  # "vssl" or "hf" (transformers' VideoMAEForPreTraining)
    recipe: dict  # {"backbone": {...}, "objective": {...}} (hf: the same keys, read by hf_config)
    tiny: dict
    optim: dict
    grad_clip: float | None = None
    pow2_batch: bool = False  # a key queue needs batch sizes dividing its length
    max_batch: int = 512


VIT_B = {"name": "vit_base", "img_size": 224, "num_frames": 16, "patch_size": 16}
VIT_TINY = {"name": "vit_tiny", "img_size": 32, "num_frames": 4, "patch_size": 16, "depth": 2}
R21D = {"name": "r2plus1d_18", "img_size": 112, "num_frames": 16}
R21D_TINY = {"name": "r2plus1d_18", "img_size": 16, "num_frames": 4}
MAE = {"name": "videomae", "mask_ratio": 0.9, "decoder_depth": 4}
SIGMA = {"name": "sigma", "mask_ratio": 0.9, "decoder_depth": 4, "num_prototypes": 3000}
SIGMA_TINY = {**SIGMA, "decoder_depth": 1, "num_prototypes": 16}

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "videomae_vit_b",
            "vssl",
            {"backbone": VIT_B, "objective": MAE},
            {"backbone": VIT_TINY, "objective": {**MAE, "decoder_depth": 1}},
            MAE_OPTIM,
        ),
        Workload(
            "hf_videomae_vit_b",
            "hf",
            {"backbone": VIT_B, "objective": MAE},
            {"backbone": VIT_TINY, "objective": {**MAE, "decoder_depth": 1}},
            MAE_OPTIM,
        ),
        Workload(
            "sigma_mlp_vit_b",
            "vssl",
            {"backbone": VIT_B, "objective": SIGMA},
            {
                "backbone": VIT_TINY,
                "objective": {**SIGMA_TINY, "projection_hidden": [32], "projection_dim": 16},
            },
            MAE_OPTIM,
        ),
        Workload(
            "sigma_dino_vit_b",  # the published SIGMA target; a random teacher costs the same
            "vssl",
            {
                "backbone": VIT_B,
                "objective": {**SIGMA, "target": "dino", "teacher_random_init": True},
            },
            {
                "backbone": VIT_TINY,
                "objective": {
                    **SIGMA_TINY,
                    "target": "dino",
                    "teacher": "dino_s",
                    "teacher_random_init": True,
                },
            },  # fmt: skip
            MAE_OPTIM,
        ),
        Workload(
            "moco_r2plus1d_18",
            "vssl",
            {"backbone": R21D, "objective": {"name": "moco"}},
            {"backbone": R21D_TINY, "objective": {"name": "moco", "queue_size": 64}},
            MOCO_OPTIM,
            grad_clip=40.0,
            pow2_batch=True,
        ),
        Workload(
            "tubelet_r2plus1d_18",
            "vssl",
            {"backbone": R21D, "objective": {"name": "tubelet"}},
            {"backbone": R21D_TINY, "objective": {"name": "tubelet", "queue_size": 64}},
            MOCO_OPTIM,
            grad_clip=40.0,
            pow2_batch=True,
        ),
    )
}


@dataclass(frozen=True)
class Knobs:
    """Speed settings; the defaults (None) are what the trainer does on the device today."""

    bf16: bool | None = None  # None: the trainer's precision "auto" (bf16 on GPU, fp32 on CPU)
    attention: str = "sdpa"  # "sdpa": PyTorch's dispatcher (flash on H100); "math": reference
    fused: bool | None = None  # None: as vssl's build_optimizer decides (fused AdamW on GPU)
    compile: bool = False
    # torch.compile's mode: "reduce-overhead" adds CUDA graphs (the forward has no graph break
    # and no host sync, see docs/performance.md, so it can be captured whole)
    compile_mode: str = "default"
    channels_last: bool | None = None  # None: the trainer's "auto" (NDHWC for 3-D CNNs on a GPU)
    # the CUDA caching allocator grows segments instead of caching fixed blocks: fewer
    # flush-and-retry stalls when large tensors of changing sizes fill most of the device
    expandable_segments: bool = False
    # objective options of a vssl workload, e.g. (("uint8_input", True),): VideoMAE normalizes
    # the uint8 clip inside its (compiled) forward and takes its target from the integer pixels
    objective: tuple[tuple[str, Any], ...] = ()

    def label(self) -> str:
        parts = {None: [], True: ["bf16"], False: ["fp32"]}[self.bf16]
        parts += ["math attention"] if self.attention == "math" else []
        parts += [] if self.fused is None else ["fused optim" if self.fused else "foreach optim"]
        if self.compile:
            parts += [
                "compile" + ("" if self.compile_mode == "default" else f" {self.compile_mode}")
            ]
        parts += {None: [], True: ["channels-last"], False: ["channels-first"]}[self.channels_last]
        parts += ["expandable segments"] if self.expandable_segments else []
        parts += [k if v is True else f"{k}={v}" for k, v in self.objective]
        return ", ".join(parts) or "default"


DEFAULT = Knobs()
UINT8_INPUT = (("uint8_input", True),)
# The rows the goals and the trainer's defaults rest on come first, so that a run cut short by
# --budget-s still has them: vssl vs transformers eager and compiled, one number per method, and
# the CNNs' default layout (NDHWC on a GPU) against NCDHW. Then the other knobs.
ROWS: tuple[tuple[str, Knobs], ...] = (
    ("videomae_vit_b", DEFAULT),
    ("hf_videomae_vit_b", DEFAULT),
    ("videomae_vit_b", Knobs(compile=True)),
    # the fair race: transformers compiled too (same batch, bf16, SDPA)
    ("hf_videomae_vit_b", Knobs(compile=True)),
    # the compiled step's "other kernels": normalization and target inside the graph, from uint8
    ("videomae_vit_b", Knobs(compile=True, objective=UINT8_INPUT)),
    ("videomae_vit_b", Knobs(objective=UINT8_INPUT)),
    ("sigma_mlp_vit_b", DEFAULT),
    ("moco_r2plus1d_18", DEFAULT),
    ("moco_r2plus1d_18", Knobs(channels_last=False)),
    ("sigma_dino_vit_b", DEFAULT),
    ("tubelet_r2plus1d_18", DEFAULT),
    ("tubelet_r2plus1d_18", Knobs(channels_last=False)),
    ("sigma_mlp_vit_b", Knobs(compile=True)),  # one graph now: inductor fuses the Sinkhorn passes
    # eager SIGMA ran 411 ms of kernels in a 727 ms step at 82% of the H200's memory
    ("sigma_mlp_vit_b", Knobs(expandable_segments=True)),
    ("videomae_vit_b", Knobs(fused=False)),
    ("moco_r2plus1d_18", Knobs(fused=True)),
    ("moco_r2plus1d_18", Knobs(compile=True)),  # compiling took over 95 s on an H200
    # measured on an H200 (docs/performance.md): last, to recheck on other devices
    ("videomae_vit_b", Knobs(bf16=False)),
    ("videomae_vit_b", Knobs(attention="math")),
    ("videomae_vit_b", Knobs(compile=True, compile_mode="reduce-overhead")),
    ("videomae_vit_b", Knobs(bf16=True)),
    # inductor's own matmul templates, autotuned, with GELU / bias / casts fused as epilogues
    # (cuBLAS keeps them separate kernels); compiling takes minutes
    ("videomae_vit_b", Knobs(compile=True, compile_mode="max-autotune-no-cudagraphs")),
)


# ------------------------------------------------------------------------------- one training run


def resolve(knobs: Knobs, workload: Workload, device: torch.device) -> Knobs:
    """The knobs with the trainer's choices filled in for this device."""
    bf16 = device.type == "cuda" if knobs.bf16 is None else knobs.bf16
    fused = knobs.fused
    if fused is None:
        probe = build_optimizer(nn.Linear(1, 1), OptimSection(**workload.optim), 1.0, device)
        fused = bool(probe.defaults.get("fused"))
    channels_last = knobs.channels_last
    if channels_last is None:
        channels_last = auto_channels_last(workload.name, device.type)
    return dataclasses.replace(knobs, bf16=bf16, fused=fused, channels_last=channels_last)


@functools.cache
def auto_channels_last(name: str, device_type: str) -> bool:
    """The trainer's ``channels_last: auto`` for a workload, decided on its tiny twin (the same
    kinds of layers, built in a blink)."""
    workload = WORKLOADS[name]
    if workload.impl != "vssl":
        return False
    model = build_objective(load_plugins().registry, workload.tiny)
    return wants_channels_last("auto", model, torch.device(device_type))


def attention_backend(knobs: Knobs):
    if knobs.attention == "math":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)
    return contextlib.nullcontext()


def make_optimizer(model: nn.Module, workload: Workload, knobs: Knobs, device: torch.device):
    """The trainer's optimizer (vssl's build_optimizer), with the fused/foreach choice forced
    when the knob says so."""
    optimizer = build_optimizer(model, OptimSection(**workload.optim), workload.optim["lr"], device)
    if knobs.fused is None or optimizer.defaults.get("fused") == knobs.fused:
        return optimizer
    accepted = inspect.signature(type(optimizer)).parameters  # defaults hold a few extra keys
    settings = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    settings.update(fused=knobs.fused, foreach=not knobs.fused)
    # each group carries a copy of every default: rebuild them with the decay settings only
    groups = [
        {k: v for k, v in g.items() if k in ("params", "weight_decay", "name")}
        for g in optimizer.param_groups
    ]
    return type(optimizer)(groups, **settings)


class TrainRun:
    """A model, its optimizer and an on-device batch; ``step()`` is one optimizer step."""

    def __init__(self, workload, knobs, device, batch_size, host, tiny: bool) -> None:
        self.workload, self.device = workload, device
        self.knobs = knobs = resolve(knobs, workload, device)
        recipe = workload.tiny if tiny else workload.recipe
        if knobs.objective:
            recipe = {**recipe, "objective": {**recipe["objective"], **dict(knobs.objective)}}
        torch.manual_seed(0)
        if workload.impl == "hf":
            self.model, self.forward_fn, self.make_batch = build_hf(recipe, device, batch_size)
        else:
            self.model, self.forward_fn, self.make_batch = build_vssl(
                recipe, device, batch_size, host, knobs.channels_last
            )
        self.optimizer = make_optimizer(self.model, workload, knobs, device)
        self.steps = 0
        if knobs.compile:
            torch._dynamo.reset()  # every run compiles the same closure code: no recompile limit
            torch._dynamo.utils.counters.clear()  # graph breaks counted per row
            self.forward_fn = torch.compile(self.forward_fn, mode=knobs.compile_mode)

    def step(self) -> None:
        """One optimizer step, its phases marked for the profiler (``PHASES``; a record_function
        costs about a microsecond when no profiler runs)."""
        with record_function("vssl.step"):
            with record_function("vssl.data"):
                batch = self.make_batch()
            if self.knobs.compile and self.knobs.compile_mode == "reduce-overhead":
                # a new training step: the previous step's graph outputs may be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            with record_function("vssl.forward"):
                with torch.autocast(self.device.type, torch.bfloat16, enabled=self.knobs.bf16):
                    with attention_backend(self.knobs):
                        loss = self.forward_fn(batch)
            with record_function("vssl.backward"):
                loss.backward()
            with record_function("vssl.optimizer"):
                if self.workload.grad_clip is not None:
                    params = self.model.parameters()
                    torch.nn.utils.clip_grad_norm_(params, self.workload.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            self.steps += 1
            with record_function("vssl.after_step"):
                if hasattr(self.model, "after_step"):
                    self.model.after_step(self.steps)


Built = tuple[nn.Module, Callable[[Any], torch.Tensor], Callable[[], Any]]


def build_vssl(recipe: dict, device, batch_size: int, host, channels_last: bool) -> Built:
    """A vssl objective, its loss function and a maker of the normalized on-device batch."""
    model = build_objective(host.registry, recipe).to(device)
    fmt = torch.contiguous_format
    if channels_last:  # as the trainer does: NDHWC weights, uint8 clips made NDHWC
        fmt = torch.channels_last_3d
        use_channels_last(model)
    views = model.views()
    batch = synthetic_batch(views, batch_size, device, memory_format=fmt)

    def make_batch():  # normalize_on_device replaces .clips: hand it a shallow copy
        return normalize_on_device(dataclasses.replace(batch), views)

    def loss_of(b):
        return model(b).loss

    return model, loss_of, make_batch


# ------------------------------------------------------------------------------- transformers


def hf_config(recipe: dict):
    """transformers' VideoMAEConfig with the sizes of the vssl recipe (ViT widths by name)."""
    from transformers import VideoMAEConfig

    widths = {"vit_tiny": (192, 12, 3), "vit_small": (384, 12, 6), "vit_base": (768, 12, 12)}
    bb, obj = recipe["backbone"], recipe["objective"]
    width, depth, heads = widths[bb["name"]]
    depth = bb.get("depth", depth)
    dec_width = width // 2
    return VideoMAEConfig(
        image_size=bb["img_size"],
        num_frames=bb["num_frames"],
        patch_size=bb["patch_size"],
        tubelet_size=bb.get("tubelet_size", 2),
        hidden_size=width,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        intermediate_size=4 * width,
        decoder_hidden_size=dec_width,
        decoder_num_hidden_layers=obj["decoder_depth"],
        decoder_num_attention_heads=max(dec_width // 64, 3),
        decoder_intermediate_size=4 * dec_width,
        norm_pix_loss=True,
        layer_norm_eps=1e-6,
    )


def build_hf(recipe: dict, device: torch.device, batch_size: int) -> Built:
    """VideoMAEForPreTraining with the same sizes and the same tube mask (vssl's, keyed by
    sample), fed [B, T, C, H, W] clips (its layout), normalized in the step like vssl's."""
    from transformers import VideoMAEForPreTraining

    config = hf_config(recipe)
    model = VideoMAEForPreTraining(config).to(device)
    T, S, p = config.num_frames, config.image_size, config.patch_size
    grid = (T // config.tubelet_size, S // p, S // p)
    gen = torch.Generator().manual_seed(0)
    clips_BTCHW = torch.randint(0, 256, (batch_size, T, 3, S, S), dtype=torch.uint8, generator=gen)
    clips_BTCHW = clips_BTCHW.to(device)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    keys_B = torch.arange(batch_size, device=device)
    ratio = recipe["objective"]["mask_ratio"]

    def make_batch():
        # the same normalization as vssl's rows (channels on dim 2 in transformers' layout)
        pixels = normalize_uint8(clips_BTCHW, mean, std, channel_dim=2)
        return pixels, tube_mask(keys_B, grid, ratio)

    def forward(batch):
        pixels, mask_BN = batch
        return model(pixels, bool_masked_pos=mask_BN).loss

    return model, forward, make_batch


class HFLoss(nn.Module):
    """(pixels [B, T, C, H, W], mask [B, N]) -> loss, for fvcore's tracer."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor, mask_BN: torch.Tensor) -> torch.Tensor:
        return self.model(pixels, bool_masked_pos=mask_BN).loss


# ------------------------------------------------------------------------------- measurements


class OutOfMemory(Exception):
    pass


def measure(workload, knobs, batch_size, device, host, args) -> dict:
    """Warmup then timed steps; peak memory includes weights, gradients and optimizer state."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with allocator_settings(device, knobs.expandable_segments):
            return _measure(workload, knobs, batch_size, device, host, args)
    except torch.OutOfMemoryError as err:
        raise OutOfMemory(str(err).splitlines()[0]) from None


def user_allocator_settings() -> str:
    """The allocator settings this process started with (setting them replaces them all)."""
    return os.environ.get("PYTORCH_ALLOC_CONF") or os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or ""


@contextlib.contextmanager
def allocator_settings(device: torch.device, expandable_segments: bool):
    """The user's allocator settings plus expandable segments for the row, then the user's
    settings again (cached blocks are released both ways, so the row's every segment is
    expandable and later rows' are not)."""
    if device.type != "cuda" or not expandable_segments:
        yield
        return
    user = user_allocator_settings()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.memory._set_allocator_settings(",".join(filter(None, (user, EXPANDABLE))))
    try:
        yield
    finally:
        torch.cuda.memory._set_allocator_settings(user or "expandable_segments:False")
        gc.collect()
        torch.cuda.empty_cache()


def _measure(workload, knobs, batch_size, device, host, args) -> dict:
    cuda = device.type == "cuda"
    run = TrainRun(workload, knobs, device, batch_size, host, args.tiny)
    for _ in range(args.warmup):
        run.step()
    if cuda:
        torch.cuda.synchronize(device)
    counts = allocator_counts(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        run.step()
    if cuda:
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / args.steps
    counts = {k: v - counts[k] for k, v in allocator_counts(device).items()}
    retries = counts.get("num_alloc_retries", 0)
    row: dict[str, Any] = {"batch": batch_size, "step_ms": seconds * 1e3}
    row["clips_per_s"] = batch_size / seconds
    if cuda:
        peak = torch.cuda.max_memory_allocated(device)
        static = torch.cuda.memory_allocated(device)  # weights, optimizer state, the batch
        row["peak_mem_gib"] = peak / 2**30
        row["act_mem_per_clip_mib"] = (peak - static) / batch_size / 2**20
        # a retry frees the allocator's cached blocks and synchronizes: the GPU idles meanwhile
        row["alloc_retries_timed"] = retries
        row["allocator_timed"] = counts  # device mallocs / frees / all-stream syncs while timed
    if workload.impl == "hf":
        row["attn_implementation"] = getattr(run.model.config, "_attn_implementation", None)
    if knobs.compile:
        row.update(compiled_graphs())
    return row


def compiled_graphs() -> dict[str, Any]:
    """How torch.compile cut the step: graphs captured and graph breaks with their reasons (a
    break leaves the code between two graphs to eager mode, unfused)."""
    counters = torch._dynamo.utils.counters
    reasons = counters["graph_break"]
    return {
        "compiled_graphs": int(counters["stats"].get("unique_graphs", 0)),
        "graph_breaks": int(sum(reasons.values())),
        "graph_break_reasons": sorted({r.splitlines()[0][:120] for r in reasons}),
    }


def alloc_retries(device: torch.device) -> int:
    """cudaMalloc failures the caching allocator recovered from by flushing its cache."""
    return allocator_counts(device).get("num_alloc_retries", 0)


# the caching allocator's counters that mean host time: a cudaMalloc / cudaFree (cudaFree
# synchronizes the device), a flush-and-retry, a wait on every stream
ALLOCATOR_COUNTERS = (
    "num_alloc_retries",
    "num_device_alloc",
    "num_device_free",
    "num_sync_all_streams",
)


def allocator_counts(device: torch.device) -> dict[str, int]:
    if device.type != "cuda":
        return {}
    stats = torch.cuda.memory_stats(device)
    return {k: int(stats.get(k, 0)) for k in ALLOCATOR_COUNTERS}


# kernel families by name, first match wins: inductor's kernels are named after the aten ops
# they fuse, and cuDNN's convolution kernels contain "gemm" too
KERNEL_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("inductor-fused", ("triton_",)),
    ("attention", ("sdpa", "flash", "fmha", "attention", "compute_dot_do_o", "convert_dq")),
    (
        "convolution",
        ("conv", "wgrad", "dgrad", "fprop", "implicit_gemm", "nchwToNhwc", "nhwcToNchw"),
    ),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "splitKreduce")),
    ("layernorm", ("layer_norm", "LayerNorm", "GammaBeta")),
    ("copy / cast / cat", ("copy", "Copy", "CatArray")),
    ("optimizer", ("multi_tensor", "fused_adam", "FusedAdam", "FusedSgd", "sgd")),
    ("reduction", ("reduce", "Reduce", "softmax", "SoftMax")),
    ("other elementwise", ("elementwise", "Elementwise")),
)


COMPUTE_FAMILIES = ("matmul", "attention", "convolution")  # the FLOPs MFU counts run here


def mfu_ceiling_line(families: dict[str, float], steps: int, batch: int, mfu_of) -> str:
    """The MFU a step would reach if only its matmul, attention and convolution kernels ran, as
    fast as they did: what no fusing or overlapping of the other work can beat."""
    compute_ms = sum(families.get(f, 0.0) for f in COMPUTE_FAMILIES) / steps
    if compute_ms <= 0:
        return ""
    ceiling = mfu_of(batch / compute_ms * 1e3)
    return f"MFU if only its {', '.join(COMPUTE_FAMILIES)} kernels ran ({compute_ms:.1f} ms): {ceiling:.1%}\n"


def kernel_families(prof) -> dict[str, float]:
    """ms of device time per kernel family, without the driver's "Command Buffer Full" records
    (time the host waited for room in the launch queue: the GPU was busy then)."""
    from torch.autograd import DeviceType

    families: dict[str, float] = {}
    for e in prof.key_averages():
        if e.device_type != DeviceType.CUDA or e.is_user_annotation:
            continue
        if e.key == "Command Buffer Full":
            continue
        family = next((f for f, keys in KERNEL_FAMILIES if any(k in e.key for k in keys)), "other")
        families[family] = families.get(family, 0.0) + e.self_device_time_total / 1e3
    return families


def free_device_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        # compiled graphs, and the memory pools of "reduce-overhead"'s CUDA graphs, are global:
        # without this, a profile after that row ran out of memory (86 GiB still in its pools)
        torch._dynamo.reset()
        torch.cuda.empty_cache()


def smaller(batch: int, pow2: bool) -> int:
    """The next batch to try after an out-of-memory: half (pow2), else ~3/4 in multiples of 8."""
    if pow2:
        return batch // 2
    nxt = round_down(int(batch * 0.75), pow2=False)
    return nxt if nxt < batch else batch - 1


def round_down(batch: int, pow2: bool) -> int:
    if batch < 1:
        return 1
    if pow2:
        return 1 << (batch.bit_length() - 1)
    return batch // 8 * 8 if batch >= 16 else batch


def first_guess(workload, knobs, device, host, args) -> int:
    """The largest batch expected to fit: a 2-step probe at a small batch gives memory per
    clip above the static memory (weights, optimizer state)."""
    probe = 8
    quick = argparse.Namespace(**{**vars(args), "warmup": 1, "steps": 1})
    try:
        row = measure(workload, knobs, probe, device, host, quick)
    except OutOfMemory:
        return probe // 2  # the search goes down from there
    free_device_memory(device)
    total = torch.cuda.get_device_properties(device).total_memory
    per_clip = row["act_mem_per_clip_mib"] * 2**20
    static = row["peak_mem_gib"] * 2**30 - per_clip * probe
    guess = int((MEMORY_FRACTION * total - static) / max(per_clip, 1.0))
    return round_down(
        min(max(guess, probe), args.max_batch or workload.max_batch), workload.pow2_batch
    )


def fit_batch(workload, knobs, device, host, args, start: int) -> dict:
    """Measure at ``start``, shrinking on out-of-memory."""
    batch, misses = start, []
    while batch >= 1:
        try:
            row = measure(workload, knobs, batch, device, host, args)
            row["oom_batches"] = misses
            return row
        except OutOfMemory:
            misses.append(batch)
        free_device_memory(device)
        batch = smaller(batch, workload.pow2_batch)
    raise OutOfMemory(f"out of memory even at batch 1 (tried {misses})")


def count_flops(workload: Workload, device: torch.device, host, tiny: bool) -> dict:
    """fvcore forward multiply-adds per clip and FlopCounterMode fwd+bwd FLOPs per clip."""
    from torch.utils.flop_counter import FlopCounterMode

    n = 2  # the smallest batch every objective accepts (tubelet pairs samples)
    run = TrainRun(workload, Knobs(bf16=False), device, n, host, tiny)
    batch = run.make_batch()
    if workload.impl == "hf":
        module, inputs = HFLoss(run.model), tuple(batch)
    else:
        module, inputs = LossOf(run.model), (batch.keys, *batch.clips)
    out: dict[str, Any] = {"flop_source": "fvcore"}
    try:
        macs, skipped = fvcore_forward_macs(module, inputs)
        out["fvcore_skipped_ops"] = sorted(skipped)
    except Exception as err:  # fvcore's jit tracer cannot follow every forward
        with FlopCounterMode(display=False) as forward_only, torch.no_grad():
            module(*inputs)
        macs = forward_only.get_total_flops() // 2
        out["flop_source"] = f"torch FlopCounterMode (fvcore failed: {type(err).__name__}: {err})"
    with FlopCounterMode(display=False) as counter:
        run.forward_fn(run.make_batch()).backward()
    del run
    free_device_memory(device)
    fwd = 2 * macs / n
    return {
        **out,
        "fwd_gmac_per_clip": macs / n / 1e9,
        "fwd_gflop_per_clip": fwd / 1e9,
        "train_gflop_per_clip": 3 * fwd / 1e9,
        "measured_train_gflop_per_clip": counter.get_total_flops() / n / 1e9,
    }


def peak_for_name(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a device by its CUDA name, None when unknown."""
    for words, peak in PEAKS:
        if all(w in name for w in words):
            return peak
    return None


def device_peak(device: torch.device, override_tflops: float | None) -> tuple[float | None, str]:
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    if device.type != "cuda":
        return None, "no peak for a CPU: MFU not computed"
    name = torch.cuda.get_device_name(device)
    peak = peak_for_name(name)
    if peak is None:
        return None, f"unknown device {name!r}: pass --peak-tflops for MFU"
    return peak, f"dense bf16 peak of {name} (spec performance-and-data-path.md §4)"


def trainer_defaults(device: torch.device) -> dict:
    """What vssl's trainer does today for each knob (read from the code where possible)."""
    probe = nn.Linear(2, 2)
    fused = build_optimizer(probe, OptimSection(), 1e-3, torch.device("cuda")).defaults["fused"]
    return {
        "precision": f"{TrainSection().precision}: bf16 autocast on GPU, fp32 on CPU",
        "attention": "F.scaled_dot_product_attention (vssl_core/nn/transformer.py)",
        "fused_adamw_on_gpu": bool(fused),
        "sgd": "foreach (not fused)",
        "compile": "train.compile: true (off by default)",
        "channels_last_3d": f"train.channels_last: {TrainSection().channels_last} (NDHWC for 3-D"
        " CNNs on a GPU)",
    }


# ------------------------------------------------------------------------------- the run


@dataclass
class Report:
    meta: dict
    rows: list[dict] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.meta, "rows": self.rows}, indent=2) + "\n")


def selected_rows(args) -> list[tuple[str, Knobs]]:
    rows = [(w, k) for w, k in ROWS if not args.rows or any(s in w for s in args.rows)]
    rows = [(w, k) for w, k in rows if not args.labels or k.label() in args.labels]
    if not rows:
        labels = sorted({k.label() for _, k in ROWS})
        raise SystemExit(
            f"--rows {args.rows} --labels {args.labels} match no row; workloads "
            f"{sorted(WORKLOADS)}, labels {labels}"
        )
    return rows


def skip_reason(workload: Workload, knobs: Knobs, device: torch.device, args) -> str | None:
    if workload.impl == "hf":
        try:
            import transformers  # noqa: F401
        except ImportError:
            return "transformers is not installed: pip install transformers"
    if knobs.compile and device.type != "cuda" and not args.cpu_compile:
        return "torch.compile skipped on CPU (minutes with inductor); --cpu-compile runs it"
    if knobs.expandable_segments and device.type != "cuda":
        return "expandable segments is a setting of the CUDA allocator"
    if knobs.objective and workload.impl != "vssl":
        return "objective options are vssl's"
    if knobs.expandable_segments and EXPANDABLE in user_allocator_settings().replace(" ", ""):
        return "the same as the default: PYTORCH_ALLOC_CONF already turns expandable segments on"
    if knobs != DEFAULT and resolve(knobs, workload, device) == resolve(DEFAULT, workload, device):
        return f"the same as the default on {device.type}"
    return None


def row_head(workload: Workload, knobs: Knobs, device: torch.device) -> dict[str, Any]:
    return {
        "workload": workload.name,
        "impl": workload.impl,
        "knobs": dataclasses.asdict(resolve(knobs, workload, device)),
        "label": knobs.label(),
    }


def run_row(workload, knobs, device, host, args, start_batch, flops, peak) -> dict:
    row = row_head(workload, knobs, device)
    reason = skip_reason(workload, knobs, device, args)
    if reason:
        return {**row, "status": "skipped", "reason": reason}
    try:
        if start_batch is None:
            start_batch = args.batch or (
                first_guess(workload, knobs, device, host, args) if device.type == "cuda" else 2
            )
        row.update(fit_batch(workload, knobs, device, host, args, start_batch))
        row["status"] = "ok"
    except Exception as err:  # one broken knob must not lose the other rows
        free_device_memory(device)
        return {**row, "status": "failed", "reason": f"{type(err).__name__}: {err}"[:500]}
    row.update(flops)
    if peak and "train_gflop_per_clip" in flops:
        row["mfu"] = row["clips_per_s"] * flops["train_gflop_per_clip"] * 1e9 / peak
    return row


def profile_workload(
    name: str, batch: int, device, host, args, knobs: Knobs = DEFAULT, mfu_of=None
) -> Path:
    """Where the time of one step goes: torch.profiler over 3 steps after warmup, the kernels
    (or CPU ops) with the most self time, written beside the JSON. ``mfu_of(clips_per_s)``
    turns a rate into MFU for the ceiling line."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    sort_by = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
        sort_by = "self_device_time_total"
    run = TrainRun(WORKLOADS[name], knobs, device, batch, host, args.tiny)
    for _ in range(max(args.warmup, 1)):
        run.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    steps = 1 if args.tiny else 3
    counts = allocator_counts(device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            run.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall_ms = (time.perf_counter() - start) * 1e3 / steps
    counts = {k: v - counts[k] for k, v in allocator_counts(device).items()}
    table = prof.key_averages().table(sort_by=sort_by, row_limit=80, max_name_column_width=70)
    json_path = Path(args.json)
    suffix = "" if knobs == DEFAULT else "_" + knobs.label().replace(", ", "_").replace(" ", "_")
    path = json_path.with_name(f"{json_path.stem}_profile_{name}{suffix}.txt")
    head = f"{name}, {knobs.label()}, batch {batch}, {steps} steps on {describe_device(device)}\n"
    times = host_timeline(prof, steps)
    times["allocator_counts_profiled"] = counts
    del run
    free_device_memory(device)
    times["host_syncs_per_eager_step"] = host_sync_census(WORKLOADS[name], device, host, args)
    timeline_path = path.with_name(path.stem + "_timeline.json")
    timeline_path.write_text(json.dumps(times, indent=1) + "\n")
    head += "\n".join(timeline.summary_lines(times)) + "\n"
    head += f"allocator while profiled: {counts or 'n/a on a CPU'}; host syncs per eager step "
    head += f"(benchmarks/common.py HostSyncCounter): {times['host_syncs_per_eager_step']}\n"
    if device.type == "cuda":  # where the GPU ran no kernel: host-bound stretches or syncs
        families = kernel_families(prof)
        busy = sum(families.values()) / steps
        head += (
            f"per step: {wall_ms:.1f} ms wall (profiled), {busy:.1f} ms of kernels, "
            f"{wall_ms - busy:.1f} ms with none running; kernels by family, ms per step: "
            + ", ".join(
                f"{f} {ms / steps:.1f}" for f, ms in sorted(families.items(), key=lambda x: -x[1])
            )
            + "\n"
        )
        if mfu_of is not None:
            head += mfu_ceiling_line(families, steps, batch, mfu_of)
    path.write_text(head + table + "\n")
    return path


def host_timeline(prof, steps: int) -> dict[str, Any]:
    """Busy and idle device time of the profiled steps, idle gaps by cause, and the host time of
    each phase of the step (benchmarks/timeline.py), from the profiler's trace."""
    with tempfile.TemporaryDirectory() as tmp:
        trace_path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace_path))
        trace = timeline.read_trace(trace_path)
    window = timeline.window_of_steps(trace, "vssl.step")
    if window is None:
        return {"error": "no vssl.step annotation in the trace"}
    return timeline.analyze(trace, window, steps, phase_prefix="vssl.")


def host_sync_census(workload: Workload, device, host, args) -> dict[str, int]:
    """What in one eager step would block the host on a GPU (tensor reads, host-to-device
    copies of Python data, data-dependent shapes), counted on a batch of 2: the counts do not
    depend on the batch. Eager, because the counter is a TorchFunctionMode (inside a compiled
    graph there are no such reads unless the graph breaks for them)."""
    eager = Knobs(bf16=device.type == "cuda")
    run = TrainRun(workload, eager, device, 2, host, args.tiny)
    run.step()
    with HostSyncCounter() as counter:
        run.step()
    del run
    free_device_memory(device)
    return dict(counter.calls)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    host = load_plugins()
    peak, peak_source = device_peak(device, args.peak_tflops)
    report = Report(meta=metadata(device, peak, peak_source, args))
    started, batches, flop_cache = time.perf_counter(), {}, {}
    print(f"device: {report.meta['device']}; torch {torch.__version__}", flush=True)
    for name, knobs in selected_rows(args):
        workload = WORKLOADS[name]
        if time.perf_counter() - started > args.budget_s:
            skipped = {"status": "skipped", "reason": f"time budget of {args.budget_s} s spent"}
            report.rows.append({**row_head(workload, knobs, device), **skipped})
            continue
        if name not in flop_cache:
            flop_cache[name] = safe_flops(workload, device, host, args.tiny)
        row = run_row(
            workload, knobs, device, host, args, batches.get(name), flop_cache[name], peak
        )
        if row.get("status") == "ok" and knobs == DEFAULT:
            batches[name] = row["batch"]
        report.rows.append(row)
        print(f"[{time.perf_counter() - started:6.1f} s] {one_line(row)}", flush=True)
        report.write(Path(args.json))  # after every row: a timeout keeps what was measured
    report.meta["vs_transformers"] = add_comparisons(report.rows)
    report.write(Path(args.json))
    print(markdown(report))
    compiled = Knobs(compile=True)
    wanted = [(n, DEFAULT) for n in args.profile or ()]
    wanted += [(n, compiled) for n in args.profile_compiled or ()]
    wanted += [profile_row(spec) for spec in args.profile_row or ()]
    for name, knobs in wanted:
        batch = batches.get(name) or args.batch
        if batch is None:
            print(f"profile {name}: no default row measured and no --batch", flush=True)
            continue
        if knobs.compile and device.type != "cuda" and not args.cpu_compile:
            reason = skip_reason(WORKLOADS[name], knobs, device, args)
            print(f"profile {name} [compile]: {reason}", flush=True)
            continue
        gflop = flop_cache.get(name, {}).get("train_gflop_per_clip")
        mfu_of = None if not (peak and gflop) else (lambda rate, g=gflop: rate * g * 1e9 / peak)
        path = profile_workload(name, batch, device, host, args, knobs, mfu_of)
        print(f"profile of {name} [{knobs.label()}]: {path}", flush=True)
    return 0


def profile_row(spec: str) -> tuple[str, Knobs]:
    """``WORKLOAD=LABEL`` -> that row of ROWS (e.g. ``videomae_vit_b=compile, uint8_input``)."""
    name, _, label = spec.partition("=")
    for row_name, knobs in ROWS:
        if row_name == name and knobs.label() == label:
            return row_name, knobs
    labels = sorted(k.label() for n, k in ROWS if n == name)
    raise SystemExit(f"--profile-row {spec!r}: no such row; labels of {name!r}: {labels}")


def safe_flops(workload, device, host, tiny) -> dict:
    try:
        return count_flops(workload, device, host, tiny)
    except Exception as err:  # counting must not stop the timing
        free_device_memory(device)
        return {"flops_error": f"{type(err).__name__}: {err}"[:300]}


def add_comparisons(rows: list[dict]) -> dict[str, float]:
    """Speed relative to the workload's default row; vssl VideoMAE vs transformers' default
    (eager) row, and vs transformers' row with the same knobs (compiled vs compiled). Returns
    the two ratios the goal is judged by: eager/eager and compiled/compiled."""
    for r in rows:  # recomputed from the rows as they are now
        for key in ("vs_default", "vs_transformers", "vs_transformers_same_knobs"):
            r.pop(key, None)
    ok = [r for r in rows if r.get("status") == "ok"]
    default = {r["workload"]: r["clips_per_s"] for r in ok if r["label"] == "default"}
    for r in ok:
        if r["workload"] in default:
            r["vs_default"] = r["clips_per_s"] / default[r["workload"]]
    hf_by_label = {r["label"]: r["clips_per_s"] for r in ok if r["workload"] == "hf_videomae_vit_b"}
    for r in ok:
        if r["workload"] != "videomae_vit_b":
            continue
        if "default" in hf_by_label:
            r["vs_transformers"] = r["clips_per_s"] / hf_by_label["default"]
        if r["label"] in hf_by_label:
            r["vs_transformers_same_knobs"] = r["clips_per_s"] / hf_by_label[r["label"]]
    ratios = {}
    for key, label in (("eager_vs_eager", "default"), ("compiled_vs_compiled", "compile")):
        mine = [r for r in ok if r["workload"] == "videomae_vit_b" and r["label"] == label]
        if mine and "vs_transformers_same_knobs" in mine[0]:
            ratios[key] = mine[0]["vs_transformers_same_knobs"]
    return ratios


def metadata(device, peak, peak_source, args) -> dict:
    try:
        import transformers

        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    return {
        "device": describe_device(device),
        "torch": torch.__version__,
        "transformers": hf_version,
        "tiny": args.tiny,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "peak_flops": peak,
        "peak_source": peak_source,
        "flop_convention": (
            "fvcore forward count at batch 2 (1 multiply-add = 1) x 2 (FLOPs) x 3 "
            "(fwd + bwd = 3 x fwd), per clip; MFU = clips/s x that / peak"
        ),
        "goals": {"vs_transformers": GOAL_VS_HF, "mfu": GOAL_MFU},
        "trainer_defaults": trainer_defaults(device),
    }


def one_line(row: dict) -> str:
    head = f"{row['workload']} [{row['label']}]"
    if row.get("status") != "ok":
        return f"{head}: {row.get('status')} ({row.get('reason')})"
    line = f"{head}: batch {row['batch']}, {row['step_ms']:.1f} ms/step, {row['clips_per_s']:.1f} clips/s"
    retries = row.get("alloc_retries_timed")
    line += f", {retries} allocator retries while timed" if retries else ""
    return line + (f", {row['graph_breaks']} graph breaks" if "graph_breaks" in row else "")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(report: Report) -> str:
    meta = report.meta
    lines = [
        f"Device: {meta['device']}; torch {meta['torch']}; transformers {meta['transformers']}; "
        f"{meta['warmup_steps']} warmup + {meta['timed_steps']} timed steps"
        + ("; TINY sizes (smoke run, not a measurement)" if meta["tiny"] else ""),
        "",
        "| workload | knobs | batch | ms/step | clips/s | x default | peak GiB | act. MiB/clip "
        "| train GFLOP/clip | MFU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.rows:
        if r.get("status") != "ok":
            lines.append(f"| {r['workload']} | {r['label']} | {r['status']}: {r.get('reason')} "
                         "| | | | | | | |")  # fmt: skip
            continue
        mfu = r.get("mfu")
        lines.append(
            f"| {r['workload']} | {r['label']} | {r['batch']} | {r['step_ms']:.1f} "
            f"| {r['clips_per_s']:.1f} | {_fmt(r.get('vs_default'), '.2f')} "
            f"| {_fmt(r.get('peak_mem_gib'), '.1f')} | {_fmt(r.get('act_mem_per_clip_mib'), '.0f')} "
            f"| {_fmt(r.get('train_gflop_per_clip'), '.4g')} "
            f"| {'-' if mfu is None else f'{100 * mfu:.1f}%'} |"
        )
    ratios = meta.get("vs_transformers", {})
    lines += [""] if ratios else []
    races = (("eager_vs_eager", "eager vs eager"), ("compiled_vs_compiled", "compiled vs compiled"))
    for key, words in races:
        ratio = ratios.get(key)
        if ratio is not None:
            lines.append(
                f"vssl VideoMAE ViT-B vs transformers, {words}: {ratio:.2f}x (goal >= {GOAL_VS_HF}x)"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU-sized models (a smoke run)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even with a GPU")
    parser.add_argument("--rows", nargs="+", help="only workloads whose name contains one of these")
    parser.add_argument(
        "--labels", nargs="+", help="only rows with these knob labels ('default', 'compile', ...)"
    )
    parser.add_argument("--batch", type=int, help="fixed batch (no search)")
    parser.add_argument("--max-batch", type=int, help="cap of the batch search (default 512)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compile included)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak for MFU (TFLOP/s)")
    parser.add_argument("--cpu-compile", action="store_true", help="also torch.compile on a CPU")
    parser.add_argument("--budget-s", type=float, default=480.0, help="skip rows after this")
    parser.add_argument("--json", default="gpu_throughput.json", help="results file")
    parser.add_argument(
        "--profile",
        nargs="+",
        choices=sorted(WORKLOADS),
        help="after the rows, profile these workloads' default steps (JSON_profile_NAME.txt)",
    )
    parser.add_argument(
        "--profile-compiled",
        nargs="+",
        choices=sorted(WORKLOADS),
        help="after the rows, profile these workloads' torch.compile'd steps",
    )
    parser.add_argument(
        "--profile-row",
        action="append",
        metavar="WORKLOAD=LABEL",
        help="after the rows, profile this row's step (e.g. 'videomae_vit_b=compile, uint8_input')",
    )
    args = parser.parse_args(argv)
    if args.tiny:
        args.warmup, args.steps = min(args.warmup, 1), min(args.steps, 2)
        args.batch = args.batch or 2
    for name in ("warmup", "steps"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            parser.error(f"--{name} is too small")
    return args


if __name__ == "__main__":
    sys.exit(main())
