"""The trainer on tiny VideoMAE runs: resume equality, SIGTERM, non-finite losses, logs."""

import math
import subprocess
import sys

import pytest
import torch
from kit import faults
from kit.runs import cli_env, read_metrics

from vssl_core.config import load_config
from vssl_core.engine.checkpoint import load_checkpoint, save_atomic
from vssl_core.engine.trainer import TrainingError, train
from vssl_core.hookspecs import hookimpl
from vssl_core.plugins import load_plugins
from vssl_core.schema import RecipeError


def run(recipe, *overrides, extra=()):
    host = load_plugins(extra=extra)
    return train(load_config(recipe, list(overrides), host), host)


def weights(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_a_run_logs_metrics_and_saves_a_complete_checkpoint(tiny_recipe):
    result = run(tiny_recipe, "log.tensorboard=true")
    assert result.status == "completed" and result.step == 8
    rows = read_metrics(result.run_dir)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert all({"loss", "lr", "clips_per_s"} <= set(r) for r in rows)
    assert (result.run_dir / "recipe.yaml").read_text().count("mask_ratio: 0.75") == 1
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    state = load_checkpoint(result.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 8 and state["data_position"] == {"epoch": 2, "step_in_epoch": 0}
    assert {"model", "optimizer", "scheduler", "rng", "recipe"} <= set(state)


class _BatchRecorder:
    """Records ``what(batch)`` for every batch the objective trains on."""

    def __init__(self, what):
        self.what, self.seen = what, []

    @hookimpl
    def vssl_train_start(self, run):
        model, what, seen = run.model, self.what, self.seen
        forward = model.forward

        def recording(batch):
            seen.append(what(batch))
            return forward(batch)

        model.forward = recording


def test_repeats_train_on_several_clips_of_each_decoded_video(tiny_recipe):
    seen = _BatchRecorder(lambda b: (b.keys.tolist(), b.index.tolist()))
    result = run(tiny_recipe, "data.repeats=2", extra=[("seen", seen)])
    assert result.status == "completed" and result.step == 8
    # 32 videos, 4 per step (8 clips / 2): 8 steps per epoch instead of 4
    assert "8 steps (8 per epoch)" in (result.run_dir / "recipe.yaml").read_text()
    for keys, index in seen.seen:
        assert len(keys) == 8 and len(set(keys)) == 8  # every clip its own key (own mask)
        assert index[0::2] == index[1::2]  # a video's two clips side by side
    with pytest.raises(TrainingError, match="data.repeats=3 must be >= 1 and divide"):
        run(tiny_recipe, "data.repeats=3", "run.name=bad")


class _OwnLoaderShapes:
    """moving_shapes that loads through its own path, as ffcv_video does."""

    def __init__(self, num_samples: int = 32, num_classes: int = 4, size: int = 32):
        from vssl_datasets.moving_shapes import MovingShapes

        self.inner = MovingShapes(num_samples=num_samples, num_classes=num_classes, size=size)
        self.num_classes = self.inner.num_classes

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]

    def make_loader(self, *args, **kwargs):
        raise AssertionError("data.repeats must be refused before the loader is built")


class _OwnLoaderPlugin:
    @hookimpl
    def vssl_register_components(self, registry, plugin):
        from vssl_core.registry import component

        registry.add(component("dataset", name="own_loader_shapes")(_OwnLoaderShapes), plugin)


def test_a_dataset_with_its_own_loader_refuses_repeats(tiny_recipe):
    data = "data.dataset={name: own_loader_shapes, num_samples: 32, num_classes: 4, size: 32}"
    with pytest.raises(TrainingError, match="data.repeats=2: the _OwnLoaderShapes dataset loads"):
        run(tiny_recipe, data, "data.repeats=2", extra=[("own", _OwnLoaderPlugin())])


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights(tiny_recipe):
    eager = run(tiny_recipe, "run.name=eager")
    compiled = run(tiny_recipe, "run.name=compiled", "train.compile=true")
    assert compiled.status == "completed" and compiled.step == 8
    eager_loss = [r["loss"] for r in read_metrics(eager.run_dir)]
    compiled_loss = [r["loss"] for r in read_metrics(compiled.run_dir)]
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-3, abs=1e-4)
    # the checkpoint holds the objective's own names (no "_orig_mod." from the compiled wrapper)
    assert weights(compiled.run_dir).keys() == weights(eager.run_dir).keys()


@pytest.mark.slow
def test_compiled_sigma_training_matches_eager(tiny_recipe):
    """SIGMA compiles as one graph with its Sinkhorn (SIGMA-MLP: 1.42x clips/s on an H200) and
    trains to eager's losses, hard labels included."""
    sigma = "objective={name: sigma, mask_ratio: 0.75, decoder_depth: 1, num_prototypes: 16}"
    eager = run(tiny_recipe, "run.name=eager", sigma)
    compiled = run(tiny_recipe, "run.name=compiled", sigma, "train.compile=true")
    assert compiled.status == "completed" and compiled.step == 8
    eager_loss = [r["loss"] for r in read_metrics(eager.run_dir)]
    compiled_loss = [r["loss"] for r in read_metrics(compiled.run_dir)]
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-3, abs=1e-4)


CNN_ROTATION = (
    "backbone={name: cnn3d_small, img_size: 32, num_frames: 4, width: 8}",
    "objective={name: rotation, sampling_stride: 2}",
    "optim={name: sgd, lr: 0.05, lr_scaling: none}",
)


def test_channels_last_trains_a_cnn_as_the_default_layout_does(tiny_recipe):
    """NDHWC changes strides, not values: the losses match the default layout's, clips and
    saved weights are NDHWC, and a ViT recipe is refused with what to do."""
    default = run(tiny_recipe, "run.name=ncdhw", *CNN_ROTATION)
    layouts = _BatchRecorder(
        lambda b: b.clips[0].is_contiguous(memory_format=torch.channels_last_3d)
    )
    ndhwc = run(
        tiny_recipe,
        "run.name=ndhwc",
        "train.channels_last=true",
        *CNN_ROTATION,
        extra=[("layouts", layouts)],
    )
    assert ndhwc.status == "completed" and ndhwc.step == 8
    assert layouts.seen == [True] * 8  # clips reach the objective in NDHWC
    losses = [r["loss"] for r in read_metrics(default.run_dir)]
    assert [r["loss"] for r in read_metrics(ndhwc.run_dir)] == pytest.approx(losses, rel=1e-4)
    conv_weights = [v for v in weights(ndhwc.run_dir).values() if v.ndim == 5]
    assert conv_weights and all(
        w.is_contiguous(memory_format=torch.channels_last_3d) and not w.is_contiguous()
        for w in conv_weights
    )
    with pytest.raises(TrainingError, match="applies to 3-D CNN backbones.*remove"):
        run(tiny_recipe, "run.name=vit", "train.channels_last=true")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_in_both_layouts_logs_the_same_losses(tiny_recipe):
    """On the device: bf16 autocast, the fused optimizer path and cuDNN's NDHWC kernels (the
    default there) train the CNN recipe to NCDHW's losses (bf16 rounding, so loosely)."""
    cuda = ("train.device=cuda", "train.precision=bf16", *CNN_ROTATION)
    default = run(tiny_recipe, "run.name=cuda_ncdhw", "train.channels_last=false", *cuda)
    ndhwc = run(tiny_recipe, "run.name=cuda_ndhwc", *cuda)
    assert default.status == ndhwc.status == "completed" and ndhwc.step == 8
    losses = [r["loss"] for r in read_metrics(default.run_dir)]
    assert all(math.isfinite(x) for x in losses)
    assert [r["loss"] for r in read_metrics(ndhwc.run_dir)] == pytest.approx(losses, rel=2e-2)


def test_channels_last_auto_means_a_3d_cnn_on_a_gpu():
    """auto: NDHWC where cuDNN's 3-D convolutions gain (1.5x for R(2+1)D on an H200), the
    default layout for a ViT (its embedding is a matmul) and on the CPU; true on a ViT is an
    error that says what to do."""
    from vssl_core.engine.trainer import wants_channels_last

    cnn, vit = torch.nn.Module(), torch.nn.Module()
    cnn.backbone = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3))
    vit.backbone = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3))
    vit.backbone.capabilities = ("token_mask",)
    gpu, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert wants_channels_last("auto", cnn, gpu)
    assert not wants_channels_last("auto", cnn, cpu)
    assert not wants_channels_last("auto", vit, gpu)
    assert wants_channels_last(True, cnn, cpu) and not wants_channels_last(False, cnn, gpu)
    with pytest.raises(TrainingError, match="no 3-D convolution.*remove train.channels_last"):
        wants_channels_last(True, vit, gpu)


def test_channels_last_accepts_true_false_and_auto_only(tiny_recipe):
    with pytest.raises(RecipeError, match="train.channels_last.*'auto'"):
        run(tiny_recipe, "train.channels_last=always")


def test_channels_last_converts_the_5d_tensors_and_leaves_the_others():
    from vssl_core.engine.trainer import use_channels_last

    model = torch.nn.Module()
    model.backbone = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, 3), torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm3d(4)
    )
    use_channels_last(model)  # Module.to(memory_format=channels_last_3d) fails on the Conv2d
    conv3d, conv2d, _ = model.backbone
    assert conv3d.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not conv3d.weight.is_contiguous()
    assert conv2d.weight.is_contiguous() and conv3d.weight.requires_grad


def test_each_step_and_rank_gets_its_own_dropout_seed():
    from vssl_core.engine.trainer import step_seed

    seeds = {step_seed(0, step, rank) for step in range(50) for rank in range(4)}
    assert len(seeds) == 200 and all(0 <= s < 2**63 for s in seeds)
    assert step_seed(0, 7, 1) == step_seed(0, 7, 1) != step_seed(1, 7, 1)


def test_a_resumed_run_with_drop_path_matches_the_uninterrupted_one(tiny_recipe):
    overrides = ("backbone.drop_path_rate=0.5", "backbone.depth=2")
    full = run(tiny_recipe, "run.name=full", *overrides)
    run(tiny_recipe, "run.name=cut", *overrides, extra=[("sigterm", faults.SigtermAt(3))])
    resumed = run(tiny_recipe, "run.name=cut", "resume=true", *overrides)
    assert resumed.step == 8
    for key, value in weights(full.run_dir).items():
        assert torch.equal(value, weights(resumed.run_dir)[key]), key


def test_an_existing_run_is_never_overwritten(tiny_recipe):
    run(tiny_recipe, "train.max_steps=2")
    with pytest.raises(TrainingError, match="already holds a checkpoint.*resume=true"):
        run(tiny_recipe, "train.max_steps=2")


def test_sigterm_saves_and_resume_ends_with_identical_weights(tiny_recipe):
    full = run(tiny_recipe, "run.name=full")
    stopped = run(tiny_recipe, "run.name=split", extra=[("sigterm", faults.SigtermAt(3))])
    # the signal arrives during step 3's hooks; step 4 is in flight, finishes, then the save
    assert stopped.status == "preempted" and stopped.step == 4
    assert load_checkpoint(stopped.run_dir / "checkpoints" / "last.pt")["step"] == 4
    resumed = run(tiny_recipe, "run.name=split", "resume=true")
    assert resumed.status == "completed" and resumed.step == 8
    a, b = weights(full.run_dir), weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    losses_full = [r["loss"] for r in read_metrics(full.run_dir)]
    losses_split = [r["loss"] for r in read_metrics(resumed.run_dir)]
    assert losses_split == losses_full  # metrics.jsonl is appended, one row per step


def test_a_channels_last_run_resumes_to_identical_weights(tiny_recipe):
    """Restoring NDHWC parameters and SGD momentum keeps the layout and the numbers."""
    cnn = (*CNN_ROTATION, "train.channels_last=true")
    full = run(tiny_recipe, "run.name=cl_full", *cnn)
    run(tiny_recipe, "run.name=cl_cut", *cnn, extra=[("sigterm", faults.SigtermAt(3))])
    resumed = run(tiny_recipe, "run.name=cl_cut", "resume=true", *cnn)
    assert resumed.status == "completed" and resumed.step == 8
    a, b = weights(full.run_dir), weights(resumed.run_dir)
    for k in a:
        assert torch.equal(a[k], b[k]), k
        if a[k].ndim == 5:
            assert b[k].is_contiguous(memory_format=torch.channels_last_3d), k


def test_a_run_resumed_in_the_other_layout_keeps_its_numbers_and_moves_adam_state(tiny_recipe):
    """A checkpoint from an NDHWC run resumed in NCDHW (a GPU run resumed on a CPU, where auto
    means NCDHW) or back: the weights and Adam's moments take the new run's layout, and the
    numbers are those of an uninterrupted run."""
    adam = "optim={name: adamw, lr: 0.01, lr_scaling: none}"
    # the classic videos: on the default ones some weights of this tiny network get gradients
    # near zero, whose rounding noise Adam turns into full steps, so the two layouts part by
    # 0.015 in 8 steps even without a resume (5e-6 on these)
    cnn = (*CNN_ROTATION[:2], adam, "data.dataset.style=classic")
    full = run(tiny_recipe, "run.name=full", *cnn, "train.channels_last=true")
    for first, second in (("true", "false"), ("false", "true")):
        name = f"run.name=switch_{first}"
        faults_ = [("sigterm", faults.SigtermAt(3))]
        run(tiny_recipe, name, *cnn, f"train.channels_last={first}", extra=faults_)
        resumed = run(tiny_recipe, name, "resume=true", *cnn, f"train.channels_last={second}")
        assert resumed.status == "completed" and resumed.step == 8
        state = load_checkpoint(resumed.run_dir / "checkpoints" / "last.pt")
        fmt = torch.channels_last_3d if second == "true" else torch.contiguous_format
        conv_weights = [k for k, v in state["model"].items() if v.ndim == 5]
        assert conv_weights and all(
            state["model"][k].is_contiguous(memory_format=fmt) for k in conv_weights
        )
        moments = [
            v
            for per_param in state["optimizer"]["state"].values()
            for k, v in per_param.items()
            if k.startswith("exp_avg") and v.ndim == 5
        ]
        assert moments and all(m.is_contiguous(memory_format=fmt) for m in moments)
        for k, v in weights(full.run_dir).items():
            torch.testing.assert_close(state["model"][k], v, rtol=1e-4, atol=1e-5)  # conv rounding


def test_gradient_accumulation_matches_one_big_batch(tiny_recipe):
    big = run(tiny_recipe, "run.name=big", "batch.per_rank=8")
    accum = run(tiny_recipe, "run.name=accum", "batch.per_rank=2")
    la = [r["loss"] for r in read_metrics(big.run_dir)]
    lb = [r["loss"] for r in read_metrics(accum.run_dir)]
    assert lb == pytest.approx(la, rel=1e-4)


def test_non_finite_loss_stops_with_the_step_or_is_skipped(tiny_recipe):
    extra = [("faults", faults)]
    with pytest.raises(TrainingError, match="non-finite loss .* at step 3"):
        run(tiny_recipe, "objective={name: nan_after, nan_at_call: 3}", extra=extra)
    result = run(
        tiny_recipe,
        "run.name=skip",
        "objective={name: nan_after, nan_at_call: 3}",
        "train.nonfinite_loss=skip",
        extra=extra,
    )
    assert result.status == "completed"
    rows = read_metrics(result.run_dir)
    assert rows[-1]["skipped_steps"] == 1
    assert all(torch.isfinite(v).all() for v in weights(result.run_dir).values())


@pytest.mark.slow
def test_sigterm_to_a_real_process_checkpoints_and_exits_143_not_0(tiny_recipe, tmp_path):
    cmd = [sys.executable, "-m", "vssl_core.cli", "-p", "kit.sigterm3", "train", str(tiny_recipe)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), cwd=tmp_path)
    assert out.returncode == 143, out.stderr  # EXIT_PREEMPTED: saved, but not finished
    assert "preempted at step 4" in out.stdout
    assert "SIGTERM: checkpoint saved at step 4" in out.stderr
    assert load_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "last.pt")["step"] == 4


class Recorder:
    """A logging-style plugin that records every lifecycle hook call."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def vssl_train_start(self, run):
        self.calls.append(("start", run.start_step, run.total_steps, run.layout.global_size))

    @hookimpl
    def vssl_step_end(self, run, step, metrics):
        self.calls.append(("step", step, None if metrics is None else sorted(metrics)))

    @hookimpl
    def vssl_checkpoint_saved(self, run, path, step):
        self.calls.append(("ckpt", path.name, step))

    @hookimpl
    def vssl_train_end(self, run, step, status):
        self.calls.append(("end", step, status))


def test_lifecycle_hooks_reach_plugins(tiny_recipe):
    rec = Recorder()
    run(
        tiny_recipe,
        "train.max_steps=4",
        "log.every_steps=2",
        "checkpoint.every_steps=2",
        extra=[("recorder", rec)],
    )
    assert rec.calls[0] == ("start", 0, 4, 8)
    steps = [c for c in rec.calls if c[0] == "step"]
    assert [s[1] for s in steps] == [1, 2, 3, 4]
    assert steps[0][2] is None and steps[1][2] == ["clips_per_s", "data_wait", "loss", "lr"]
    assert [c for c in rec.calls if c[0] == "ckpt"] == [
        ("ckpt", "last.pt", 2),
        ("ckpt", "last.pt", 4),
    ]
    assert rec.calls[-1] == ("end", 4, "completed")


def test_gradient_clipping_bounds_the_update(tiny_recipe):
    sgd = [
        "optim={name: sgd, lr: 0.5, lr_scaling: none, momentum: 0.0, weight_decay: 0.0}",
        "schedule.warmup_epochs=0",
        "schedule.decay=constant",
        "train.max_steps=1",
    ]
    start = {k: v.clone() for k, v in _initial_weights(tiny_recipe).items()}
    free = weights(run(tiny_recipe, "run.name=free", *sgd).run_dir)
    clipped = weights(run(tiny_recipe, "run.name=clipped", "train.grad_clip=1e-3", *sgd).run_dir)

    def norm(w):
        return sum(float((w[k] - start[k]).pow(2).sum()) for k in start) ** 0.5

    assert norm(free) > 1e-2
    assert norm(clipped) == pytest.approx(0.5 * 1e-3, rel=1e-3)  # lr x max grad norm


def _initial_weights(recipe):
    from vssl_core.build import build_objective

    host = load_plugins()
    config = load_config(recipe, [], host)
    torch.manual_seed(config.run.seed)
    return build_objective(host.registry, config.data).state_dict()


def test_bf16_autocast_runs_on_cpu_when_asked(tiny_recipe):
    result = run(tiny_recipe, "train.precision=bf16", "train.max_steps=2")
    assert result.status == "completed" and result.last_loss == result.last_loss  # not NaN


def test_asking_for_a_missing_gpu_is_a_clear_error(tiny_recipe):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA device is visible; use train.device=cpu"):
        run(tiny_recipe, "train.device=cuda")


def test_resuming_with_a_changed_recipe_names_the_changes(tiny_recipe, caplog):
    run(tiny_recipe, "train.max_steps=2")
    with caplog.at_level("WARNING", logger="vssl.train"):
        run(tiny_recipe, "resume=true", "train.max_steps=3", "log.every_steps=3")
    text = caplog.text
    assert "differs from the checkpoint's: train.max_steps: 2 -> 3" in text
    assert "log.every_steps" not in text


def test_resume_after_a_crash_drops_metrics_logged_past_the_checkpoint(tiny_recipe):
    first = run(tiny_recipe, "train.max_steps=4", "checkpoint.every_steps=2")
    metrics = first.run_dir / "metrics.jsonl"
    ckpt_path = first.run_dir / "checkpoints" / "last.pt"
    state = load_checkpoint(ckpt_path)
    state["step"] = 2  # as if the process died after logging steps 3-4 but before saving them
    save_atomic(state, ckpt_path)  # sealed again: an edit by hand would fail its checksum
    run(tiny_recipe, "resume=true", "train.max_steps=4")
    assert [r["step"] for r in read_metrics(first.run_dir)] == [1, 2, 3, 4]
    log_text = (first.run_dir / "train.log").read_text()
    assert (
        "resumed from" in log_text and "at step 2" in log_text and "completed at step 4" in log_text
    )
    assert metrics.exists()


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_with_loader_workers(tiny_recipe, tmp_path):
    """A cluster signals every process of the job, data-loader workers included."""
    import os
    import signal
    import time

    cmd = [
        sys.executable,
        "-m",
        "vssl_core.cli",
        "train",
        str(tiny_recipe),
        "data.num_workers=2",
        "train.max_steps=100000",
        "log.every_steps=1",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        start_new_session=True,
    )
    metrics = tmp_path / "runs" / "tiny" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (
        metrics.exists() and metrics.read_text().count("\n") >= 3
    ):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)  # the process and its workers, as a scheduler would
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "preempted at step" in out
    step = load_checkpoint(tmp_path / "runs" / "tiny" / "checkpoints" / "last.pt")["step"]
    assert step >= 3


def test_undecodable_videos_are_replaced_counted_and_logged(tiny_recipe):
    result = run(
        tiny_recipe,
        "data.dataset={name: broken_every, every: 4}",
        "data.max_failed_fraction=0.5",
        "train.max_steps=4",
        "log.every_steps=2",
        extra=[("faults", faults)],
    )
    rows = read_metrics(result.run_dir)
    assert result.status == "completed"
    # every 4th of 32 videos is unreadable: 8 of the 32 first loads, plus unlucky replacements
    assert sum(r.get("decode_failures", 0) for r in rows) >= 8


def test_too_many_undecodable_videos_stop_the_run_with_the_fix(tiny_recipe):
    from vssl_core.data.failures import DataLoadingError

    with pytest.raises(DataLoadingError, match="vssl data check"):
        run(
            tiny_recipe,
            "data.dataset={name: broken_every, every: 2}",
            "data.max_failed_fraction=0.0",
            "train.max_steps=2",
            extra=[("faults", faults)],
        )


def test_a_loader_worker_failure_ends_the_process_with_the_error(tiny_recipe, tmp_path):
    """Workers ignore SIGTERM; after a failure the trainer must still stop them, not hang."""
    code = (
        "import sys; from kit import faults; from vssl_core.cli.main import main; "
        "sys.exit(main(['-p', 'kit.faults', 'train', sys.argv[1], "
        "'data.dataset={name: broken_every, every: 2}', 'data.max_failed_fraction=0.0', "
        "'data.num_workers=1', 'train.max_steps=3', 'log.progress_bar=false']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tiny_recipe)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "vssl data check" in proc.stderr
