"""Framework overhead: vssl's trainer against a minimal hand-written PyTorch loop doing the same work.

Goal: vssl's time per optimizer step within 3% of the plain loop (ratio <= 1.03), for VideoMAE on a
small video ViT and MoCo on a small 3D CNN (the CPU recipes in recipes/).

What is compared, and why it is fair
- Same work: both sides build the objective from the same resolved recipe after the same
  ``torch.manual_seed``, step the same optimizer (``vssl_core.engine.optim.build_optimizer``, the
  recipe's optimizer and parameter groups), the same lr schedule, gradient clipping and precision,
  and call the objective's ``after_step`` (MoCo's momentum update and queue). After every round
  the two models' weights are compared: on a CPU they must be bit-identical, which proves the
  plain loop does neither less nor more than the trainer.
- Same data: one batch collated once from the recipe's own dataset and views, kept in memory and
  handed out for every step by both sides (the trainer gets it through its ``_loader``), so data
  loading, which the trainer does not own, is out of the comparison.
- The trainer as a user gets it: the recipe's logging cadence, metrics.jsonl, TensorBoard and
  the progress bar (as the recipe sets them), lifecycle hooks, the per-step finiteness/SIGTERM
  check. Checkpoints: the timed steps contain none; the time of one save is measured and
  amortized over the recipe's ``checkpoint.every_steps`` in a second ratio.
- Same heap: on a CPU the trainer tells glibc to keep freed memory (``keep_freed_cpu_memory``,
  process-wide); the benchmark does so before the first round, so both sides run under the same
  allocator settings. Without it, glibc returned each step's freed tensors to the OS and the
  trainer, whose step frees its input earlier than a flat loop does, paid ~12k page faults and
  10-25% more CPU time per step on the MoCo recipe.
- Interleaved: rounds alternate which side runs first (plain-vssl, vssl-plain, ...) so drift
  on a shared machine hits both; the ratio is taken per round, then median and IQR.

Also reported: host syncs per step (``.item()``, ``float(t)``, ``.tolist()``...) counted on any
device. On a GPU each one stalls the host until the device drains its queue; on a CPU they are
free, so this count, not the CPU ratio, is the evidence about GPU-side overhead.

    python benchmarks/overhead.py                       # both cases, 7 rounds x (3 + 20) steps
    python benchmarks/overhead.py --cases moco --rounds 11 --steps 40
    python benchmarks/overhead.py --device cuda         # on a GPU machine
    python benchmarks/overhead.py --profile             # where the trainer's own time goes
    python benchmarks/overhead.py --quick               # a seconds-long smoke run (tests use it)
    python benchmarks/overhead.py --quick --rounds 9 --steps 40   # the fixed cost per step
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import io
import json
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    HostSyncCounter,
    StepClock,
    describe_device,
    pick_device,
    spread,
)

from vssl_core.build import build_dataset, build_objective  # noqa: E402
from vssl_core.config import Config, load_config  # noqa: E402
from vssl_core.data.clips import ClipDataset, collate, normalize_on_device  # noqa: E402
from vssl_core.engine.optim import (  # noqa: E402
    build_optimizer,
    lr_multiplier_schedule,
    scale_lr,
    warmup_steps,
)
from vssl_core.engine.trainer import Trainer, keep_freed_cpu_memory  # noqa: E402
from vssl_core.interfaces import Batch  # noqa: E402
from vssl_core.plugins import PluginHost, load_plugins  # noqa: E402

GOAL_RATIO = 1.03


@dataclass(frozen=True)
class Case:
    recipe: str  # relative to the repository root
    overrides: tuple[str, ...]  # applied to both sides
    quick: tuple[str, ...]  # added by --quick: a much smaller model and batch


SMALL_CNN = (  # --quick for the cnn3d_small recipes
    "backbone.img_size=32",
    "backbone.num_frames=4",
    "backbone.width=4",
    "batch.global_size=8",
)
CASES: dict[str, Case] = {
    "videomae": Case(
        "recipes/videomae.yaml",
        ("backbone.num_frames=8",),  # vit_tiny (depth 4) at 8x64x64, batch 16
        (
            "backbone.img_size=32",
            "backbone.num_frames=4",
            "backbone.depth=1",
            "objective.decoder_depth=1",
            "batch.global_size=4",
        ),
    ),
    "moco": Case(
        "recipes/moco.yaml",
        (),  # cnn3d_small (width 16) at 8x64x64, two views, batch 32
        SMALL_CNN,
    ),
    # the other methods, for the host-sync census of every built-in objective (not run by
    # default: the overhead goal names VideoMAE and MoCo)
    "sigma": Case(
        "recipes/sigma.yaml",
        ("backbone.num_frames=8",),
        (
            "backbone.img_size=32",
            "backbone.num_frames=4",
            "backbone.depth=1",
            "objective.decoder_depth=1",
            "objective.projection_hidden=[32]",
            "objective.projection_dim=16",
            "objective.num_prototypes=16",
            "batch.global_size=4",
        ),
    ),
    # dropout off: the trainer seeds each step's dropout, the plain loop does not
    "rotation": Case("recipes/rotation.yaml", ("objective.dropout=0.0",), SMALL_CNN),
    "clip_order": Case("recipes/clip_order.yaml", ("objective.dropout=0.0",), SMALL_CNN),
    "tubelet": Case("recipes/tubelet.yaml", (), SMALL_CNN),
}
DEFAULT_CASES = ("moco", "videomae")


@dataclass
class Args:
    """The parsed command line (a dataclass, so a census can run with other step counts)."""

    cases: list[str]
    rounds: int
    steps: int
    warmup: int
    device: str
    threads: int
    quick: bool
    profile: bool
    json: str | None
    override: list[str]
    clock: str
    device_resolved: str


# ------------------------------------------------------------------------------- the two sides


class FixedBatches:
    """The trainer's data source here: the same in-memory batch for every step, with the step
    clock read each time the trainer asks for the next batch (i.e. after the previous step's
    logging, hooks and checkpoint)."""

    def __init__(self, batch: Batch, clock: StepClock) -> None:
        self.batch, self.clock = batch, clock

    def __iter__(self):
        for step in range(self.clock.steps):
            self.clock.mark(step)
            yield self.batch
        self.clock.mark(self.clock.steps)


class BenchTrainer(Trainer):
    """vssl's trainer, unchanged except that the data comes from memory and saves are timed."""

    def __init__(self, config: Config, host: PluginHost, batches: FixedBatches) -> None:
        super().__init__(config, host)
        self.batches = batches
        self.save_seconds: list[float] = []

    def _loader(self):
        return self.batches

    def _save(self, step: int, keep: bool = False) -> None:
        start = time.perf_counter()
        super()._save(step, keep)
        self.save_seconds.append(time.perf_counter() - start)


@dataclass
class Side:
    seconds_per_step: dict[str, float]  # clock ("wall", "cpu") -> seconds
    state: dict[str, torch.Tensor]  # final weights, for the same-work check
    save_seconds: float | None = None  # vssl only: one checkpoint save


def run_vssl(config: Config, host: PluginHost, batch: Batch, clock: StepClock) -> Side:
    trainer = BenchTrainer(config, host, FixedBatches(batch, clock))
    result = trainer.fit()
    if result.step != clock.steps:
        raise RuntimeError(f"the trainer stopped at step {result.step} of {clock.steps}")
    return Side(per_step(clock), trainer.model.state_dict(), trainer.save_seconds[-1])


def per_step(clock: StepClock) -> dict[str, float]:
    return {c: clock.per_step(c) for c in ("wall", "cpu")}


def build_model(config: Config, host: PluginHost, device: torch.device):
    """The objective exactly as the trainer builds it (same seed, same order of construction)."""
    torch.manual_seed(config.run.seed)
    dataset = build_dataset(host.registry, config.data)
    return dataset, build_objective(host.registry, config.data).to(device)


def run_plain(config: Config, host: PluginHost, batch: Batch, clock: StepClock) -> Side:
    """A minimal loop in the style of nanoGPT: set the lr, forward, backward, clip, step."""
    device = clock.device
    dataset, model = build_model(config, host, device)
    views, B, total = model.views(), config.batch.global_size, clock.steps
    lr = scale_lr(config.optim, config.schedule, B)
    per_epoch = len(dataset) // B
    warmup, _ = warmup_steps(config.schedule.warmup_epochs, config.train.epochs, per_epoch, total)
    lr_at = lr_multiplier_schedule(config.schedule, lr, warmup, total, per_epoch)
    optimizer = build_optimizer(model, config.optim, lr.peak, device)
    clip = config.train.grad_clip
    bf16 = config.train.precision == "bf16" or (
        config.train.precision == "auto" and device.type == "cuda"
    )
    model.train()
    for step in range(total):
        clock.mark(step)
        for group in optimizer.param_groups:
            group["lr"] = lr.peak * lr_at(min(step / total, 1 - 1e-9))
        b = normalize_on_device(batch.to(device, non_blocking=True), views)
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            out = model(b)
        out.loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.after_step(step + 1)
    clock.mark(total)
    return Side(per_step(clock), model.state_dict())


# ------------------------------------------------------------------------------- one case


@dataclass
class CaseResult:
    name: str
    recipe: str
    overrides: list[str]
    batch_shape: list[list[int]]
    clock: str  # the clock the verdict uses
    plain_s: dict[str, list[float]] = field(default_factory=lambda: {"wall": [], "cpu": []})
    vssl_s: dict[str, list[float]] = field(default_factory=lambda: {"wall": [], "cpu": []})
    save_s: list[float] = field(default_factory=list)
    max_weight_diff: float = 0.0
    checkpoint_every: int | None = None
    syncs_per_step: dict[str, float] = field(default_factory=dict)


def configure(case: Case, args: Args, host: PluginHost, out: Path, name: str):
    overrides = [
        *case.overrides,
        *(case.quick if args.quick else ()),
        f"train.max_steps={args.warmup + args.steps}",
        f"train.device={args.device}",
        "data.num_workers=0",
        f"run.output_root={out}",
        f"run.name={name}",
        *args.override,
    ]
    return load_config(ROOT / case.recipe, overrides, host), overrides


def fixed_batch(config: Config, host: PluginHost, device: torch.device) -> Batch:
    """The first global batch of epoch 0, decoded, cropped and collated once (uint8, in host
    memory, pinned for a GPU as the trainer's loader pins it)."""
    dataset, model = build_model(config, host, torch.device("cpu"))
    clips = ClipDataset(dataset, model.views(), config.run.seed)
    batch = collate([clips[(0, i)] for i in range(config.batch.global_size)])
    return batch.pin_memory() if device.type == "cuda" else batch


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    if a.keys() != b.keys():
        raise RuntimeError("the plain loop and the trainer built different models")
    diffs = [(a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel()]
    return max(diffs, default=0.0)


def run_case(name: str, args: Args, host: PluginHost, out: Path) -> CaseResult:
    case = CASES[name]
    device = torch.device(args.device_resolved)
    config, overrides = configure(case, args, host, out, f"{name}-probe")
    batch = fixed_batch(config, host, torch.device(args.device_resolved))
    shown = [o for o in overrides if not o.startswith(("run.", "train.max_steps", "train.device"))]
    shapes = [list(c.shape) for c in batch.clips]
    result = CaseResult(name, case.recipe, shown, shapes, args.clock)
    result.checkpoint_every = config.checkpoint.every_steps
    for r in range(args.rounds):
        config, _ = configure(case, args, host, out, f"{name}-{r}")
        order = ("plain", "vssl") if r % 2 == 0 else ("vssl", "plain")
        sides = {}
        for side in order:
            clock = StepClock(device, args.warmup, args.warmup + args.steps)
            runner = run_plain if side == "plain" else run_vssl
            sides[side] = runner(config, host, batch, clock)
        plain, vssl = sides["plain"], sides["vssl"]
        for clock in ("wall", "cpu"):
            result.plain_s[clock].append(plain.seconds_per_step[clock])
            result.vssl_s[clock].append(vssl.seconds_per_step[clock])
        result.save_s.append(vssl.save_seconds)
        diff = max_abs_diff(plain.state, vssl.state)
        result.max_weight_diff = max(result.max_weight_diff, diff)
        p, v = plain.seconds_per_step[args.clock], vssl.seconds_per_step[args.clock]
        print(
            f"  round {r + 1}/{args.rounds} ({order[0]} first, {args.clock} clock): plain "
            f"{p * 1e3:.2f} ms, vssl {v * 1e3:.2f} ms, ratio {v / p:.4f}",
            flush=True,
        )
    result.syncs_per_step = sync_census(name, args, host, out, batch)
    return result


class CensusClock(StepClock):
    """A step clock that counts host syncs in the timed steps only (not set-up or teardown)."""

    def __init__(self, device: torch.device, warmup: int, steps: int) -> None:
        super().__init__(device, warmup, steps)
        self.counter = HostSyncCounter()

    def mark(self, boundary: int) -> None:
        super().mark(boundary)
        if boundary == self.warmup:
            self.counter.__enter__()
        elif boundary == self.steps:
            self.counter.__exit__(None, None, None)


def sync_census(name: str, args: Args, host: PluginHost, out: Path, batch: Batch) -> dict:
    """Host syncs per step of each side, over one logging period after a first step (untimed:
    counting slows every torch call)."""
    census, case = {}, CASES[name]
    device = torch.device(args.device_resolved)
    steps = 1 + configure(case, args, host, out, "probe")[0].log.every_steps
    census_args = dataclasses.replace(args, warmup=0, steps=steps)
    for side, runner in (("plain", run_plain), ("vssl", run_vssl)):
        config, _ = configure(case, census_args, host, out, f"{name}-census-{side}")
        clock = CensusClock(device, 1, steps)
        runner(config, host, batch, clock)
        census[side] = clock.counter.total / (steps - 1)
    return census


# ------------------------------------------------------------------------------- report


def ratios(result: CaseResult, clock: str, extra_vssl: float = 0.0) -> list[float]:
    pairs = zip(result.vssl_s[clock], result.plain_s[clock], strict=True)
    return [(v + extra_vssl) / p for v, p in pairs]


def report(result: CaseResult) -> dict:
    clock = result.clock
    plain, vssl = spread(result.plain_s[clock]), spread(result.vssl_s[clock])
    ratio = spread(ratios(result, clock))
    other = "wall" if clock == "cpu" else "cpu"
    save = spread(result.save_s).median
    every = result.checkpoint_every
    amortized = save / every if every else 0.0
    with_ckpt = spread(ratios(result, clock, amortized))
    verdict = "PASS" if ratio.median <= GOAL_RATIO else "FAIL"
    print(f"{result.name}: {result.recipe} + {' '.join(result.overrides)}")
    print(f"  batch: {' + '.join('x'.join(map(str, s)) for s in result.batch_shape)} (uint8)")
    print(f"  plain loop : {plain.describe('.2f', 1e3)} ms/step ({clock} clock)")
    print(f"  vssl       : {vssl.describe('.2f', 1e3)} ms/step ({clock} clock)")
    print(f"  ratio vssl/plain: {ratio.describe('.4f')}  goal <= {GOAL_RATIO}: {verdict}")
    print(f"  ratio on the {other} clock: {spread(ratios(result, other)).describe('.4f')}")
    print(
        f"  checkpoint: {save * 1e3:.1f} ms per save, every {every} steps = "
        f"+{amortized * 1e3:.3f} ms/step -> ratio with checkpoints {with_ckpt.median:.4f}"
    )
    print(
        f"  host syncs per step (each blocks the host on a GPU): plain "
        f"{result.syncs_per_step['plain']:.2f}, vssl {result.syncs_per_step['vssl']:.2f}"
    )
    same = "bit-identical" if result.max_weight_diff == 0 else f"{result.max_weight_diff:.3g}"
    print(f"  same work: max |w_vssl - w_plain| after each round = {same}")
    return {
        "case": result.name,
        "recipe": result.recipe,
        "overrides": result.overrides,
        "batch_shape": result.batch_shape,
        "clock": clock,
        "plain_ms_per_step": {c: [s * 1e3 for s in v] for c, v in result.plain_s.items()},
        "vssl_ms_per_step": {c: [s * 1e3 for s in v] for c, v in result.vssl_s.items()},
        "ratio": dataclasses.asdict(ratio),
        "ratio_other_clock": dataclasses.asdict(spread(ratios(result, other))),
        "ratio_with_checkpoints": dataclasses.asdict(with_ckpt),
        "checkpoint_save_ms": save * 1e3,
        "checkpoint_every_steps": every,
        "host_syncs_per_step": result.syncs_per_step,
        "max_weight_diff": result.max_weight_diff,
        "verdict": verdict,
    }


def profile_trainer(args, host: PluginHost, out: Path) -> None:
    """cProfile of one vssl run per case: the framework functions (trainer, logging, hooks,
    schedule) with the most cumulative time, per step."""
    frameworks = ("vssl_core/engine", "pluggy", "tqdm", "tensorboard", "param_scheduler")
    for name in args.cases:
        case = CASES[name]
        config, _ = configure(case, args, host, out, f"{name}-profile")
        batch = fixed_batch(config, host, torch.device(args.device_resolved))
        steps = args.warmup + args.steps
        profiler = cProfile.Profile()
        profiler.enable()
        run_vssl(config, host, batch, StepClock(torch.device(args.device_resolved), 0, steps))
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).sort_stats("cumulative")
        stats.print_stats("|".join(frameworks), 25)
        print(f"--- profile of one vssl run ({name}, {steps} steps; cumulative seconds) ---")
        print(text.getvalue())


# ------------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=sorted(CASES),
        default=list(DEFAULT_CASES),
        help="moco and videomae by default; every built-in method is a case",
    )
    parser.add_argument("--rounds", type=int, help="interleaved plain/vssl rounds (7; quick 2)")
    parser.add_argument("--steps", type=int, help="timed steps per round and side (20; quick 4)")
    parser.add_argument("--warmup", type=int, help="untimed steps first, each run (3; quick 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny models (a step of ~10 ms: the trainer's fixed cost per step shows), and by "
        "default 2 rounds x 4 steps",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one vssl run per case")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--override", action="append", default=[], help="extra recipe override for both sides"
    )
    parser.add_argument(
        "--clock",
        choices=("auto", "cpu", "wall"),
        default="auto",
        help="clock the verdict uses; auto: process CPU time on a CPU (other jobs on a shared "
        "machine inflate it far less than wall time), wall time on a GPU",
    )
    ns = parser.parse_args(argv)
    defaults = (2, 4, 1) if ns.quick else (7, 20, 3)
    for name, default in zip(("rounds", "steps", "warmup"), defaults, strict=True):
        if getattr(ns, name) is None:
            setattr(ns, name, default)
    for name in ("rounds", "steps", "threads"):
        if getattr(ns, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if ns.warmup < 0:
        parser.error("--warmup must be >= 0")
    device = pick_device(ns.device)
    if ns.clock == "auto":
        ns.clock = "cpu" if device.type == "cpu" else "wall"
    return Args(**vars(ns), device_resolved=str(device))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    host = load_plugins()
    device = torch.device(args.device_resolved)
    if device.type == "cpu":  # the trainer does this process-wide on a CPU: same heap for both
        keep_freed_cpu_memory()
    print(
        f"vssl trainer vs plain loop on {describe_device(device)}, torch {torch.__version__}; "
        f"{args.rounds} rounds x {args.steps} timed steps (+{args.warmup} warmup) per side"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="vssl-overhead-") as tmp:
        out = Path(tmp)
        if args.profile:
            profile_trainer(args, host, out)
        for name in args.cases:
            print(f"{name}:", flush=True)
            results.append(report(run_case(name, args, host, out)))
    if args.json:
        payload = {
            "device": describe_device(device),
            "torch": torch.__version__,
            "rounds": args.rounds,
            "steps": args.steps,
            "warmup": args.warmup,
            "goal_ratio": GOAL_RATIO,
            "cases": results,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    if args.quick:  # a smoke run is too short to judge
        return 0
    return 0 if all(r["verdict"] == "PASS" for r in results) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
