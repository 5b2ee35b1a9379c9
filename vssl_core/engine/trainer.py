"""The trainer: a plain PyTorch loop that knows no method.

Per optimizer step: ``accum_steps`` micro-batches forward/backward (DDP gradient sync only on the
last), one finiteness + stop-request check (one small all-reduce), optional clipping, the
optimizer and scheduler step, the objective's ``after_step`` hook, then logging and checkpoints.
Everything method-specific happens inside ``objective(batch)``.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from vssl_core.build import build, build_dataset, build_objective
from vssl_core.config import Config
from vssl_core.data.clips import ClipDataset, normalize_on_device
from vssl_core.data.device_feed import DeviceFeed, wants_device_feed
from vssl_core.data.loader import build_loader, worker_death
from vssl_core.data.sampler import BatchLayout, StepBatchSampler, videos_per_batch
from vssl_core.engine import checkpoint as ckpt
from vssl_core.engine.distributed import (
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown,
)
from vssl_core.engine.errors import TrainingError
from vssl_core.engine.init_from import build_initialized
from vssl_core.engine.logging import CsvLogger, MetricsFileLogger, TensorBoardLogger
from vssl_core.engine.optim import (
    build_optimizer,
    build_scheduler,
    lr_multiplier_schedule,
    match_state_layouts,
    scale_lr,
    warmup_steps,
)
from vssl_core.engine.precision import LossScaling
from vssl_core.engine.progress import ProgressBar, gpu_sized_on_cpu
from vssl_core.engine.run import RunContext
from vssl_core.engine.rundir import lock_run_dir, resolve_run_dir
from vssl_core.engine.signals import StopRequest
from vssl_core.engine.watchdog import NoWatch, backend_timeout, watch_ranks
from vssl_core.engine.writes import RunLogFile, writing
from vssl_core.interfaces import RunInfo
from vssl_core.plugins import PluginHost
from vssl_core.recipe import dump_yaml

log = logging.getLogger("vssl.train")

# The exit status of a command whose run was pre-empted (checkpoint saved, not finished): the
# shell's status for a process ended by SIGTERM, so `vssl train R && vssl eval ...` and job
# drivers never take a pre-empted run for a finished one.
EXIT_PREEMPTED = 128 + signal.SIGTERM


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    status: str  # completed | preempted
    last_loss: float | None
    exit_code: int = 0  # preempted: 128 + the signal (143 SIGTERM, 130 SIGINT)


# keys that may change between a run and its resume without changing what is trained
_RESUME_FREE = (
    "resume",
    "log.",
    "checkpoint.",
    "data.num_workers",
    "data.pin_memory",
    "data.persistent_workers",
    "data.prefetch_factor",
)


def recipe_changes(before: dict, after: dict, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every training-relevant key that differs between two recipes."""
    out = []
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}{key}"
        a, b = before.get(key), after.get(key)
        if path.startswith(_RESUME_FREE) or a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += recipe_changes(a, b, path + ".")
        else:
            out.append(f"{path}: {a!r} -> {b!r}")
    return out


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global torch RNG's seed for one optimizer step on one rank. Dropout and drop-path
    masks then differ across ranks, which see different samples (one seed for all ranks would
    draw the same masks everywhere), and a resumed run draws what the uninterrupted one did.
    Randomness that must agree across ranks is drawn on rank 0 and broadcast (shuffle-BN)."""
    state = np.random.SeedSequence([seed, step, rank, 0x57E9]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1  # < 2**63


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def is_3d_cnn(model: torch.nn.Module) -> bool:
    """A model with a 3-D convolution whose backbone does not take token masks (a ViT embeds its
    tubelets with a matmul over the flattened Conv3d weight, which NDHWC would only make copy
    every step)."""
    backbone = getattr(model, "backbone", None)
    has_conv3d = any(isinstance(m, torch.nn.Conv3d) for m in model.modules())
    return has_conv3d and "token_mask" not in getattr(backbone, "capabilities", ())


def wants_channels_last(setting: bool | str, model: torch.nn.Module, device: torch.device) -> bool:
    """Resolve ``train.channels_last``: "auto" turns NDHWC on for a 3-D CNN on a GPU, where cuDNN
    runs its 3-D convolutions 1.5x faster in it; ``true`` on a model without one is an error."""
    if setting == "auto":
        return device.type == "cuda" and is_3d_cnn(model)
    if setting and not is_3d_cnn(model):
        backbone = getattr(model, "backbone", None)
        raise TrainingError(
            f"train.channels_last=true applies to 3-D CNN backbones (r3d_18, r2plus1d_18, "
            f"cnn3d_*); the {type(backbone or model).__name__} backbone has no 3-D convolution "
            "to run in NDHWC: remove train.channels_last"
        )
    return bool(setting)


def use_channels_last(model: torch.nn.Module) -> None:
    """Put every 5-D weight in NDHWC (``torch.channels_last_3d``), where cuDNN picks faster 3-D
    convolution kernels."""
    wants_channels_last(True, model, torch.device("cpu"))  # refuses a model without Conv3d
    with torch.no_grad():  # 5-D tensors only: Module.to(memory_format=) fails on a 4-D one
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.ndim == 5:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last_3d)


def clips_channels_last(clips: list[torch.Tensor]) -> list[torch.Tensor]:
    """5-D clips [B, C, T, H, W] in NDHWC; cheapest while still uint8, before normalizing (the
    float ops keep the layout)."""
    fmt = torch.channels_last_3d
    return [c.contiguous(memory_format=fmt) if c.ndim == 5 else c for c in clips]


def keep_freed_cpu_memory() -> bool:
    """Ask glibc malloc to keep freed memory for reuse instead of returning it to the OS.

    A step frees and re-allocates the same large tensors every time. By default glibc hands a
    freed block at the top of the heap, or any block above its mmap threshold, back to the OS,
    and the next step page-faults it in again, zero-filled: on the MoCo CPU recipe that was
    ~12k page faults and 10-25% more CPU time per step than a plain loop whose variables happened
    to keep the blocks alive (benchmarks/overhead.py). This does on the CPU what PyTorch's
    caching allocator does on a GPU; the process keeps its peak memory. False where it does not
    apply (not Linux/glibc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another libc
        return False
    kept = libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    # a fixed mmap threshold also ends glibc's dynamic one; older glibc caps it at 32 MiB
    mapped = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 29) or libc.mallopt(_M_MMAP_THRESHOLD, 1 << 25)
    return bool(kept and mapped)


class Trainer:
    def __init__(self, config: Config, host: PluginHost):
        self.config, self.host = config, host
        self.decode_failures = 0  # videos this rank's loader replaced (from batch.extra)
        self.loggers = []
        self._log_file: RunLogFile | None = None
        self.run_lock = None
        self.progress = NoWatch()

    # ------------------------------------------------------------------------------- set-up
    def _setup(self) -> None:
        cfg = self.config
        # logger components (W&B, MLflow, ...) first: a missing package stops before any work
        self.logger_components = [
            (f"vssl.logger.{spec['name']}", build(self.host.registry, "logger", spec))
            for spec in cfg.log.loggers
        ]
        timeout_s = cfg.train.collective_timeout_s
        self.dist = init_distributed(cfg.train.device, backend_timeout(timeout_s))
        self.progress = watch_ranks(self.dist, timeout_s)  # a stalled rank ends the job, named
        if self.dist.device.type == "cpu":
            keep_freed_cpu_memory()  # no page faults re-allocating each step's tensors
        self.run_lock = lock_run_dir(cfg, self.dist)  # one writer per run directory
        self.run_dir, resume_from = resolve_run_dir(cfg)
        torch.manual_seed(cfg.run.seed)  # identical initial weights on every rank
        ckpt.seed_host_rngs(cfg.run.seed)  # saved in checkpoints: identical runs, identical files

        self.dataset = build_dataset(self.host.registry, cfg.data)
        if resume_from is None:  # a resume restores its own weights: init_from is not read
            self.model, loaded = build_initialized(self.host.registry, cfg.data, self.host)
        else:
            self.model, loaded = build_objective(self.host.registry, cfg.data), ""
        self.model = self.model.to(self.dist.device)
        self.views = self.model.views()
        self.layout = BatchLayout.from_recipe(
            cfg.batch.global_size, cfg.batch.per_rank, self.dist.world_size
        )
        self.repeats = cfg.loader.repeats
        try:
            videos_per_step = videos_per_batch(
                self.layout.global_size, self.repeats, "batch.global_size"
            )
            videos_per_batch(self.layout.per_rank, self.repeats, "batch.per_rank")
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        self.steps_per_epoch = len(self.dataset) // videos_per_step
        if self.steps_per_epoch < 1:
            raise TrainingError(
                f"the dataset has {len(self.dataset)} samples, fewer than one global batch "
                f"({videos_per_step} videos); lower batch.global_size or add samples"
            )
        # sections read in every step are built once: each Config access rebuilds a dataclass
        # (~0.2 ms, 1% of a 20 ms step; benchmarks/overhead.py)
        self.train_cfg = tr = cfg.train
        self.channels_last = wants_channels_last(tr.channels_last, self.model, self.dist.device)
        if self.channels_last:
            use_channels_last(self.model)
        self.total_steps = (
            tr.max_steps if tr.max_steps is not None else tr.epochs * self.steps_per_epoch
        )
        self.lr = scale_lr(cfg.optim, cfg.schedule, self.layout.global_size)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.lr.peak, self.dist.device)
        warmup, self.warmup_note = warmup_steps(
            cfg.schedule.warmup_epochs, tr.epochs, self.steps_per_epoch, self.total_steps
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            lr_multiplier_schedule(
                cfg.schedule, self.lr, warmup, self.total_steps, self.steps_per_epoch
            ),
            self.total_steps,
        )
        self.precision = LossScaling(self.dist.device, tr.precision)
        if self.dist.is_main:  # only now: a recipe that fails to build leaves no run folder
            self._open_log_file()
            if loaded:
                log.info("%s", loaded)
        self.start_step = 0
        if resume_from is not None:
            self.start_step = self._restore(resume_from)
        # the objective learns the run's length and position itself (before DDP and compile)
        self.model.begin_run(RunInfo(self.total_steps, self.steps_per_epoch, self.start_step))

        self.ddp = self.model
        if self.dist.distributed:
            self.ddp = DistributedDataParallel(
                self.model,
                device_ids=[self.dist.device.index] if self.dist.device.type == "cuda" else None,
                find_unused_parameters=tr.find_unused_parameters,
            )
        if tr.compile:  # after DDP, so its bucketing sees the compiled graph's gradients
            self.ddp = torch.compile(self.ddp)
        self._write_run_files(warmup)
        spec = cfg.data.get("monitor") or {}
        self.monitor = build(self.host.registry, "monitor", spec) if spec else None
        every = getattr(self.monitor, "every_steps", None)
        if spec and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise TrainingError(
                f"monitor {spec.get('name')!r} must set every_steps to an int >= 1, got {every!r}"
            )
        self.ctx = RunContext(
            recipe=cfg.data,
            run_dir=self.run_dir,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            layout=self.layout,
            start_step=self.start_step,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            model=self.model,
        )
        if self.monitor is not None:
            self.monitor.setup(self.ctx, self.host.registry)

    def _open_log_file(self) -> None:
        """Events (start, resume, warnings, pre-emption, end) also go to <run dir>/train.log."""
        self._log_file = RunLogFile(self.run_dir / "train.log", log)
        self._log_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.setLevel(logging.INFO)

    def _close_log_file(self, summary: str, reason: str = "") -> None:
        """The run's last line, on the console and in train.log; train.log also gets the reason
        of a failure (the command prints it as its error)."""
        file, self._log_file = self._log_file, None
        if file is not None:
            log.removeHandler(file)
        dist = getattr(self, "dist", None)
        if dist is None or not dist.is_main or (file is None and not self.loggers):
            return  # failed before the run directory was made: the command's error says it all
        level = logging.ERROR if reason else logging.INFO
        log.log(level, "%s", summary)
        if file is not None:
            full = f"{summary}: {reason}" if reason else summary
            file.handle(log.makeRecord(log.name, level, __file__, 0, "%s", (full,), None))
            file.close()

    def _loader(self):
        data = self.config.loader
        sampler = StepBatchSampler(
            len(self.dataset),
            self.layout,
            self.dist.rank,
            self.config.run.seed,
            self.start_step,
            self.total_steps,
            repeats=self.repeats,
        )
        pin = data.pin_memory if data.pin_memory is not None else self.dist.device.type == "cuda"
        make_loader = getattr(self.dataset, "make_loader", None)
        if make_loader is not None:  # a dataset with its own loading path (e.g. ffcv_video)
            if self.repeats != 1:
                raise TrainingError(
                    f"data.repeats={self.repeats}: the {type(self.dataset).__name__} dataset loads "
                    "through its own path, which cuts one clip set per video; set data.repeats=1"
                )
            return make_loader(
                self.views, sampler, self.config.run.seed, data.num_workers, pin_memory=pin
            )
        clips = ClipDataset(
            self.dataset,
            self.views,
            self.config.run.seed,
            max_failed_fraction=data.max_failed_fraction,
            max_retries=data.max_retries,
            repeats=self.repeats,
        )
        return build_loader(
            clips, sampler, data.num_workers, pin, data.persistent_workers, data.prefetch_factor
        )

    def _write_run_files(self, warmup_steps: int) -> None:
        cfg = self.config
        layout_text = self.layout.describe()
        lr_text = self.lr.describe(cfg.optim.lr, self.layout.global_size, cfg.optim.lr_base_batch)
        summary = (
            f"{layout_text}; {lr_text}; {self.total_steps} steps ({self.steps_per_epoch} per epoch),"
            f" warmup {warmup_steps} steps{self.warmup_note}; device {self.dist.device}"
            + ("; NDHWC (channels_last_3d)" if self.channels_last else "")
        )
        if self.dist.is_main:
            with writing(self.run_dir / "recipe.yaml"):
                (self.run_dir / "recipe.yaml").write_text(
                    f"# resolved from {cfg.path}\n# {summary}\n" + dump_yaml(cfg.data)
                )
            log.info("run %s: %s", self.run_dir, summary)
            if sized_for_gpus := gpu_sized_on_cpu(self.dist.device, self.layout, self.model):
                log.warning(sized_for_gpus)
        barrier(self.dist)

    def _restore(self, path: Path) -> int:
        # the run's own last.pt, corrupt or gone, falls back to its newest intact checkpoint
        own = path == self.run_dir / "checkpoints" / ckpt.LAST
        state, path = ckpt.load_resumable(path, fallback=own, set_aside=self.dist.is_main)
        changed = recipe_changes(state.get("recipe", {}), self.config.data)
        if changed and self.dist.is_main:
            log.warning(
                "resuming %s with a recipe that differs from the checkpoint's: %s",
                path,
                "; ".join(changed),
            )
        ckpt.load_states(state, path, changed, model=self.model, optimizer=self.optimizer)
        match_state_layouts(self.optimizer)  # the checkpoint may be in the other memory layout
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state.get("scaler"))
        ckpt.set_rng_state(state["rng"])
        if self.dist.is_main:
            log.info("resumed from %s at step %d", path, state["step"])
        return int(state["step"])

    # ------------------------------------------------------------------------------- steps
    def _forward_backward(self, micro_batches: list) -> tuple[torch.Tensor, dict]:
        """One optimizer step's worth of forward/backward; returns the summed (averaged) loss."""
        accum = len(micro_batches)
        loss_sum = torch.zeros((), device=self.dist.device)
        metric_sums: dict[str, torch.Tensor] = {}
        for i, batch in enumerate(micro_batches):
            self.decode_failures += int(batch.extra.get("decode_failures", 0))  # host int
            batch = batch.to(self.dist.device, non_blocking=True)
            if self.channels_last:
                batch.clips = clips_channels_last(batch.clips)
            batch = normalize_on_device(batch, self.views)
            sync = i == accum - 1 or not self.dist.distributed
            with contextlib.nullcontext() if sync else self.ddp.no_sync():
                with self.precision.autocast():
                    out = self.ddp(batch)
                self.precision.backward(out.loss / accum)  # scaled with fp16
            loss_sum += out.loss.detach().float() / accum
            for k, v in out.metrics.items():
                metric_sums[k] = metric_sums.get(k, 0) + v.detach().float() / accum
        return loss_sum, metric_sums

    def _check_step(
        self, loss: torch.Tensor, metrics: dict[str, torch.Tensor], stop: StopRequest
    ) -> tuple[bool, bool, float, dict[str, float]]:
        """(finite on every rank, stop requested on any rank, this rank's loss and metrics as
        host floats): one tiny all-reduce and the step's only host sync. It comes before the
        optimizer step is queued, so a GPU is never drained twice in a step."""
        nonfinite = (~torch.isfinite(loss)).float()
        flags = torch.stack([nonfinite, torch.full_like(nonfinite, float(stop.requested))])
        flags = all_reduce_sum(flags, self.dist)
        values = torch.cat(
            [
                flags,
                loss.float().view(1),
                *(v.float().view(1).to(flags.device) for v in metrics.values()),
            ]
        )
        values = values.tolist()
        return values[0] == 0, values[1] > 0, values[2], dict(zip(metrics, values[3:], strict=True))

    def _optimizer_step(self) -> None:
        if self.train_cfg.grad_clip is not None:
            self.precision.unscale_(self.optimizer)  # clip the true gradients
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train_cfg.grad_clip)
        self.precision.step(self.optimizer)  # fp16: skipped if a gradient overflowed
        self.scheduler.step()

    # ------------------------------------------------------------------------------- loop
    def fit(self) -> TrainResult:
        with StopRequest() as stop:  # a signal during set-up stops it at once, with a message
            try:
                self._start(stop)
                return self._fit(stop)
            except RuntimeError as exc:  # a collective failed: name the rank that stalled
                failure = self.progress.failure(exc)
                if failure is None:
                    raise
                raise failure from exc
            finally:
                self.progress.stop()
                if self.run_lock is not None:
                    self.run_lock.release()

    def _start(self, stop: StopRequest) -> None:
        try:
            self._setup()
        except BaseException as exc:
            self._close_log_file("failed before the first step", _reason(exc))
            raise
        stop.start_training()  # from here: finish the step, save, then stop

    def _fit(self, stop: StopRequest) -> TrainResult:
        hook = self.host.hook
        for name, plugin in self._logger_plugins():
            self.host.pm.register(plugin, name=name)
            self.loggers.append(plugin)
        status, step, last_loss, failure = "failed", self.start_step, None, ""
        self.step = self.start_step
        try:
            hook.vssl_train_start(run=self.ctx)
            step, last_loss, status = self._loop(stop)
        except BaseException as exc:
            failure = _reason(exc)
            raise
        finally:
            step = max(step, self.step)
            hook.vssl_train_end(run=self.ctx, step=step, status=status)
            for plugin in self.loggers:
                self.host.pm.unregister(plugin)
            self._close_log_file(f"{status} at step {step}", failure)
            shutdown(self.dist)
        stop.honoured = status == "preempted"
        exit_code = stop.exit_code if status == "preempted" else 0
        return TrainResult(self.run_dir, step, status, last_loss, exit_code)

    def _logger_plugins(self) -> list[tuple[str, object]]:
        lg = self.config.log
        plugins: list[tuple[str, object]] = [("vssl.metrics_file", MetricsFileLogger())]
        if lg.tensorboard:
            plugins.append(("vssl.tensorboard", TensorBoardLogger()))
        if lg.csv:
            plugins.append(("vssl.csv", CsvLogger()))
        plugins += self.logger_components  # log.loggers (W&B, MLflow, ...), built in _setup
        if lg.progress_bar:
            plugins.append(("vssl.progress", ProgressBar()))
        return plugins

    def _loop(self, stop: StopRequest) -> tuple[int, float | None, str]:
        batches = iter(self._loader())
        feed = None
        if wants_device_feed(self.config.loader.device_feed, self.dist.device):
            feed = DeviceFeed(batches, self.dist.device)  # next batch fetched and copied ahead
        try:
            return self._steps(feed or batches, stop)
        except RuntimeError as exc:  # a loader worker killed (the OOM killer) is not a bug
            death = worker_death(exc, self.ctx.checkpoint_dir)
            if death is None:
                raise
            raise death from exc
        finally:
            if feed is not None:
                feed.close()
            _close_loader(batches)

    def _steps(self, batches, stop: StopRequest) -> tuple[int, float | None, str]:
        cfg, hook = self.config, self.host.hook
        every_ckpt, keep_every = cfg.checkpoint.every_steps, cfg.checkpoint.keep_every_steps
        log_every = cfg.log.every_steps
        self.model.train()
        step, last_loss, skipped = self.start_step, None, 0
        if self.monitor is not None and step == 0:  # the untrained model: the baseline
            hook.vssl_step_end(run=self.ctx, step=0, metrics=self._measure(0))
        window = _Window()
        micro: list = []
        t_wait = time.perf_counter()
        self.progress.enter("first step", step)  # not timed by the watchdog: it may compile
        for batch in batches:
            window.data_wait += time.perf_counter() - t_wait  # time the step waited for data
            micro.append(batch)
            if len(micro) < self.layout.accum_steps:
                t_wait = time.perf_counter()
                continue
            torch.manual_seed(step_seed(cfg.run.seed, step, self.dist.rank))
            if step > self.start_step:
                self.progress.enter("compute", step)
            self.model.set_run_step(step)  # in place: a compiled forward does not recompile
            loss, metrics = self._forward_backward(micro)
            micro = []
            finite, stop_now, loss_value, metric_values = self._check_step(loss, metrics, stop)
            if finite:
                self._optimizer_step()
                window.add(loss_value, metric_values)
            else:
                skipped += 1
                self._non_finite(loss_value, step + 1, skipped)
            self.optimizer.zero_grad(set_to_none=True)
            self.model.after_step(step + 1)
            step += 1
            self.step = step  # for the end-of-run log line, also when a later step fails
            self.progress.enter("after step", step)  # logging, hooks, checkpoints: not timed
            logged = None
            monitor_due = (  # not when pre-empted: the checkpoint must not wait for it
                self.monitor is not None
                and not stop_now
                and (step % self.monitor.every_steps == 0 or step == self.total_steps)
            )
            if step % log_every == 0 or step == self.total_steps or monitor_due:
                logged = self._window_metrics(window, skipped)
                last_loss = logged.get("loss", last_loss)
                window = _Window(decode_failures_before=self.decode_failures)
            if monitor_due:
                logged.update(self._measure(step))
                window.start = time.perf_counter()  # clips/s counts training time only
            hook.vssl_step_end(run=self.ctx, step=step, metrics=logged)
            if keep_every and step % keep_every == 0:
                self._save(step, keep=True)
            if stop_now:
                self._save(step)
                log.warning(
                    "%s: checkpoint saved at step %d; continue with resume=true", stop.name, step
                )
                return step, last_loss, "preempted"
            if every_ckpt and step % every_ckpt == 0 and step != self.total_steps:
                self._save(step)
            t_wait = time.perf_counter()
            self.progress.enter("data", step)  # timed: train.collective_timeout_s
        self._save(step)
        return step, last_loss, "completed"

    def _measure(self, step: int) -> dict[str, float]:
        """The monitor's values at this step (every rank), with the model back in training mode
        and the training RNG untouched (the next step reseeds it anyway)."""
        t0 = time.perf_counter()
        values = self.monitor.measure(self.ctx, step)
        self.model.train()
        if self.dist.is_main:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
            log.info("step %d: monitor %s (%.1f s)", step, shown, time.perf_counter() - t0)
        return {k: float(v) for k, v in values.items()}

    def _non_finite(self, loss: float, step: int, skipped: int) -> None:
        if self.config.train.nonfinite_loss != "skip":
            raise TrainingError(
                f"non-finite loss ({loss}) at step {step}; the last checkpoint is in "
                f"{self.ctx.checkpoint_dir}. Lower optim.lr, set train.grad_clip, or set "
                "train.nonfinite_loss=skip to skip such steps."
            )
        self.scheduler.step()  # keep the schedule aligned with the step count
        log.warning("step %d: non-finite loss, update skipped (%d so far)", step, skipped)

    def _window_metrics(self, window: _Window, skipped: int) -> dict:
        """Averages since the last log over steps and ranks (one all-reduce, one sync)."""
        names = list(window.metrics)
        failures = self.decode_failures - window.decode_failures_before
        vals = [window.loss, window.steps, window.data_wait, failures, *window.metrics.values()]
        if self.dist.distributed:  # one process has its sums on the host already: no sync
            summed = all_reduce_sum(
                torch.tensor(vals, dtype=torch.float64, device=self.dist.device), self.dist
            )
            vals = summed.cpu().tolist()
        n = max(vals[1], 1.0)
        elapsed = max(time.perf_counter() - window.start, 1e-9)
        out = {"loss": vals[0] / n} if vals[1] > 0 else {}
        out.update({k: vals[4 + i] / n for i, k in enumerate(names)})
        out["lr"] = self.optimizer.param_groups[0]["lr"]
        out["clips_per_s"] = window.steps * self.layout.global_size / elapsed
        out["data_wait"] = vals[2] / self.dist.world_size / elapsed  # fraction of wall time
        if skipped:
            out["skipped_steps"] = skipped
        if vals[3]:  # videos that failed to decode and were replaced (all ranks, this window)
            out["decode_failures"] = int(vals[3])
        return out

    def _save(self, step: int, keep: bool = False) -> None:
        if not self.dist.is_main:
            barrier(self.dist)
            return
        epoch, in_epoch = divmod(step, self.steps_per_epoch)
        state = {
            "format": "vssl",
            "version": ckpt.FORMAT_VERSION,
            "step": step,
            "data_position": {"epoch": epoch, "step_in_epoch": in_epoch},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.state_dict(),  # fp16's loss scale (None otherwise)
            "rng": ckpt.rng_state(),
            "recipe": self.config.data,
            "world_size": self.dist.world_size,
        }
        path = self.ctx.checkpoint_dir / (ckpt.LAST if not keep else f"step_{step:08d}.pt")
        ckpt.save_atomic(
            state, path, keep_previous=not keep and self.config.checkpoint.keep_previous
        )
        self.host.hook.vssl_checkpoint_saved(run=self.ctx, path=path, step=step)
        barrier(self.dist)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _close_loader(batches) -> None:
    """Stop the loader's workers now, also after an error. They ignore SIGTERM (a pre-emption
    is the training process's to handle, see data/loader.py), so a worker left to interpreter
    exit after a failure could keep the process from exiting."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    for worker in getattr(batches, "_workers", []):
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=5)


@dataclass
class _Window:
    """Running sums between two logging steps (host floats: the step already synced)."""

    loss: float = 0.0
    steps: int = 0
    data_wait: float = 0.0
    decode_failures_before: int = 0  # the trainer's running count when the window opened
    metrics: dict[str, float] = field(default_factory=dict)
    start: float = field(default_factory=time.perf_counter)

    def add(self, loss: float, metrics: dict[str, float]) -> None:
        self.loss += loss
        self.steps += 1
        for k, v in metrics.items():
            self.metrics[k] = self.metrics.get(k, 0.0) + v


# Trainers of multi-process runs, kept until the rank exits (vssl_core.cli.main._exit_rank):
# freeing DDP's reducer frees its gloo process group, whose destructor joins a work thread with
# the GIL held, while that thread may wait for the GIL to free a finished collective's tensors
# (a rank that completed its run and never exited, seen under load).
_DISTRIBUTED_TRAINERS: list[Trainer] = []


def train(config: Config, host: PluginHost) -> TrainResult:
    trainer = Trainer(config, host)
    result = trainer.fit()
    if trainer.dist.distributed:
        _DISTRIBUTED_TRAINERS.append(trainer)
    return result
