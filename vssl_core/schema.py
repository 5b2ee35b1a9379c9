"""The recipe schema: the trainer's own sections (dataclasses) and the component mappings, whose
schema is the signature of the registered factory. Validation reports every problem at once, each
with its full key path, and fills in defaults so the saved recipe states every effective value.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from vssl_core.registry import KINDS, Registry, RegistryError
from vssl_core.schema_ranges import check_finite, check_ranges, check_run_name
from vssl_core.typecheck import check_type, describe, type_name

# Arguments the core passes to a component itself; a recipe may not set them.
INJECTED: dict[str, tuple[str, ...]] = {
    "objective": ("backbone",),
    "dataset": ("decoder",),
    "head": ("in_features", "num_outputs"),
}


@dataclass
class RunSection:
    name: str = "run"  # run directory = output_root/name
    output_root: str = "runs"  # folder holding the run directories
    seed: int = 0  # initial weights, data order, augmentation and masks all follow from it


@dataclass
class DataSection:
    dataset: dict = field(default_factory=dict)  # a component: {name: ..., **kwargs}
    decoder: dict = field(default_factory=dict)  # a component; {}: pyav, for datasets of files
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    pin_memory: bool | None = None  # None: on when training on a GPU
    persistent_workers: bool = True  # keep workers alive across epochs (with num_workers > 0)
    prefetch_factor: int = 2  # batches each worker prepares ahead (with num_workers > 0)
    max_failed_fraction: float = 0.01  # bad videos are logged and replaced; stop past this share
    max_retries: int = 10  # replacements tried for one sample whose video fails to decode
    repeats: int = 1  # clips cut from each decoded video, each with its own augmentation and key
    device_feed: bool | None = None  # next batch fetched in a thread (GPU: copied) ahead; None: GPU


@dataclass
class BatchSection:
    global_size: int = 32  # clips per optimizer step, summed over ranks and accumulation
    per_rank: int | None = None  # clips per forward on one rank; None: global_size / world size


@dataclass
class OptimSection:
    name: Literal["adamw", "sgd"] = "adamw"  # the optimizer
    lr: float = 1e-3  # base learning rate, before scaling by batch size
    lr_scaling: Literal["linear", "sqrt", "none"] = "linear"  # how lr follows the global batch
    lr_base_batch: int = 256  # lr = base lr * scale(global_size / lr_base_batch)
    weight_decay: float = 0.05  # not applied to norms, biases, position embeddings, tokens
    betas: tuple[float, float] | None = None  # adamw only (default 0.9, 0.999)
    eps: float | None = None  # adamw only (default 1e-8)
    momentum: float | None = None  # sgd only (default 0.9)
    nesterov: bool | None = None  # sgd only (default false)


@dataclass
class ScheduleSection:
    warmup_epochs: float = 0.0  # linear warmup from warmup_start_lr to the peak lr
    warmup_start_lr: float = 0.0  # scaled by batch size like lr
    decay: Literal["cosine", "linear", "constant", "multistep"] = "cosine"  # after warmup
    min_lr: float = 0.0  # end of a cosine or linear decay; scaled by batch size like lr
    milestones: list[float] = field(default_factory=list)  # multistep: lr x gamma at these epochs
    gamma: float | None = None  # multistep: the factor at each milestone (None: 0.1)


@dataclass
class TrainSection:
    epochs: int = 1  # passes over the dataset (steps per epoch = samples // global_size)
    max_steps: int | None = (
        None  # train this many steps instead of epochs (the schedule spans them)
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: the GPU of this rank if any
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    grad_clip: float | None = None  # max global gradient norm
    nonfinite_loss: Literal["error", "skip"] = "error"  # skip: drop that update and go on
    find_unused_parameters: bool = False  # DDP: allow parameters that get no gradient in a step
    compile: bool = False  # torch.compile the objective's forward (minutes of compiling first)
    channels_last: bool | Literal["auto"] = "auto"  # NDHWC weights+clips; auto: 3-D CNN on GPU
    collective_timeout_s: float = 600.0  # DDP: a rank stuck this long ends the job, says who


@dataclass
class CheckpointSection:
    every_steps: int | None = 500  # also written at the end and on SIGTERM
    keep_every_steps: int | None = None  # keep a permanent copy every N steps
    keep_previous: bool = True  # keep the one before last.pt as previous.pt: a fallback if corrupt


@dataclass
class LogSection:
    every_steps: int = 10  # metrics.jsonl / TensorBoard / progress-bar cadence
    progress_bar: bool = True  # loss, lr, clips/s and ETA on stderr (rank 0)
    tensorboard: bool = True  # event files in <run dir>/tensorboard
    csv: bool = False  # <run dir>/metrics.csv, one row per logging step (columns grow)
    loggers: list[dict] = field(default_factory=list)  # logger components: [{name: wandb, ...}]


@dataclass
class EvalSection:
    protocol: dict = field(default_factory=dict)  # a component: finetune, linear or knn
    test_dataset: dict = field(default_factory=dict)  # a dataset: the final test videos
    val_dataset: dict = field(default_factory=dict)  # a dataset to select on; {}: test set
    test_clips: int = 10  # temporal clips per test video, evenly spaced
    test_crops: int = 1  # spatial crops per clip: 1 (centre) or 3 (along the long side)
    test_short_side: int | None = None  # short side before cropping; None: the crop size
    aggregate: Literal["auto", "mean", "max"] = "auto"  # over views; auto: max if multilabel
    test_batch_size: int = 4  # videos per test forward on one rank (x clips x crops clips)


@dataclass
class RecipeSchema:
    run: RunSection = field(default_factory=RunSection)
    data: DataSection = field(default_factory=DataSection)
    backbone: dict = field(default_factory=dict)  # a component
    objective: dict = field(default_factory=dict)  # a component
    batch: BatchSection = field(default_factory=BatchSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    train: TrainSection = field(default_factory=TrainSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    log: LogSection = field(default_factory=LogSection)
    resume: bool | str = False  # true: continue last.pt; auto: if there is one; or a path
    init_from: str | None = None  # a new run from these weights (any vssl convert format)
    init_from_format: str = "auto"  # init_from's format (vssl convert --list); auto: detected
    eval: EvalSection = field(default_factory=EvalSection)  # downstream evaluation (vssl eval)
    monitor: dict = field(default_factory=dict)  # a component measured during training; {}: none


# where a component lives in a recipe -> its kind
COMPONENT_PATHS: dict[str, str] = {
    "data.dataset": "dataset",
    "data.decoder": "decoder",
    "backbone": "backbone",
    "objective": "objective",
    "eval.protocol": "protocol",
    "eval.test_dataset": "dataset",
    "eval.val_dataset": "dataset",
    "monitor": "monitor",
}
# where a list of components lives in a recipe -> their kind
COMPONENT_LIST_PATHS: dict[str, str] = {"log.loggers": "logger"}
# component paths a recipe may leave empty ({}: the consumer's default)
OPTIONAL_COMPONENTS = {
    "data.decoder",
    "eval.protocol",
    "eval.test_dataset",
    "eval.val_dataset",
    "monitor",
}
OPTIMIZER_ONLY = {"adamw": ("betas", "eps"), "sgd": ("momentum", "nesterov")}


class RecipeError(Exception):
    """A recipe problem; the message names the key path and the fix."""


class RecipeValidationError(RecipeError):
    def __init__(self, problems: list[str], source: str = "recipe"):
        self.problems = problems
        head = f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


def _closest(key: str, valid: list[str]) -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.4)
    return f"; did you mean {near[0]!r}?" if near else ""


def _unknown(path: str, key: str, valid: list[str], where: str) -> str:
    full = f"{path}.{key}" if path else key
    return f"{full}: unknown key{_closest(key, valid)} ({where} accepts: {', '.join(valid) or 'nothing'})"


SHOWN_UNKNOWN = 10  # unknown keys of one mapping reported one by one (with a suggestion each)


class _UnknownKeys:
    """The unknown keys of one mapping: the first few named with the closest valid key, the
    rest counted (5,000 unknown keys must not cost 5,000 fuzzy matches and pages of output)."""

    def __init__(self, path: str, valid: list[str], where: str):
        self.path, self.valid, self.where, self.count = path, valid, where, 0
        self.problems: list[str] = []

    def add(self, key: Any) -> None:
        self.count += 1
        if self.count <= SHOWN_UNKNOWN:
            if isinstance(key, str):
                self.problems.append(_unknown(self.path, key, self.valid, self.where))
            else:
                where = self.path or "the top level"
                self.problems.append(
                    f"{where}: key {key!r} ({type(key).__name__}) is not a string; recipe keys "
                    "are names"
                )

    def report(self) -> list[str]:
        more = self.count - SHOWN_UNKNOWN
        if more > 0:
            where = f" under {self.path}" if self.path else ""
            return self.problems + [f"... and {more:,} more unknown keys{where}"]
        return self.problems


def component_params(factory: Any, kind: str) -> dict[str, inspect.Parameter]:
    """The recipe-settable parameters of a component factory, with resolved type hints."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    params = {}
    for name, p in sig.parameters.items():
        if name == "self" or name in INJECTED.get(kind, ()):
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params[name] = p.replace(annotation=hints.get(name, p.annotation))
    return params


MISSING = "???"  # omegaconf's mark for a value the recipe leaves to be filled


def _type_problem(path: str, hint: Any, value: Any) -> str:
    if value == MISSING:
        return (
            f"{path}: required, but the recipe leaves it {MISSING}; set it in the recipe or on "
            f"the command line ({path}=VALUE; expected {type_name(hint)})"
        )
    return f"{path}: expected {type_name(hint)}, got {describe(value)}"


def _nested_kind(key: str) -> str | None:
    """The kind of a component given as an argument of another: a kind's own name
    (``objective.head``) or ``*_dataset`` (``monitor.train_dataset``)."""
    if key in KINDS:
        return key
    return "dataset" if key.endswith("_dataset") else None


def validate_component(spec: Any, kind: str, path: str, registry: Registry) -> tuple[dict, list]:
    """Check ``{name, **kwargs}`` against the factory signature; return it with defaults filled."""
    if not isinstance(spec, dict) or "name" not in spec:
        return spec, [
            f"{path}: expected a {kind} mapping with a `name` key (e.g. `{path}: {{name: ...}}`),"
            f" got {describe(spec)}"
        ]
    if not isinstance(spec["name"], str):
        return spec, [
            f"{path}.name: expected the name of a {kind} (a string, see `vssl list {kind}`), "
            f"got {describe(spec['name'])}"
        ]
    try:
        entry = registry.get(kind, spec["name"])
    except RegistryError as exc:
        return spec, [f"{path}.name: {exc}"]
    params = component_params(entry.factory, kind)
    problems, out = [], {"name": spec["name"]}
    where = f"{kind} {spec['name']!r}"
    unknown = _UnknownKeys(path, list(params), where)
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in params:
            if key in INJECTED.get(kind, ()):
                problems.append(f"{path}.{key}: set by vssl itself; remove it from the recipe")
            else:
                unknown.add(key)
            continue
        hint = params[key].annotation
        hint = Any if hint is inspect.Parameter.empty else hint
        if value == MISSING or not check_type(value, hint):
            problems.append(_type_problem(f"{path}.{key}", hint, value))
        elif (nested := _nested_kind(key)) and isinstance(value, dict):  # objective.head
            problems += validate_component(value, nested, f"{path}.{key}", registry)[1]
        out[key] = value
    for key, p in params.items():
        if key in out:
            continue
        if p.default is inspect.Parameter.empty:
            problems.append(f"{path}.{key}: required by {where} but missing")
        else:
            out[key] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out, unknown.report() + problems


def _validate_section(value: Any, cls: type, path: str, registry: Registry) -> tuple[Any, list]:
    if not isinstance(value, dict):
        return value, [f"{path}: expected a mapping, got {describe(value)}"]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    problems, out = [], {}
    unknown = _UnknownKeys(path, names, f"section {path!r}" if path else "a recipe")
    for key, sub in value.items():
        sub_path = f"{path}.{key}" if path else key
        if key not in names:
            unknown.add(key)
        elif sub_path in OPTIONAL_COMPONENTS and sub in ({}, None):
            out[key] = {}
        elif sub_path in COMPONENT_PATHS:
            out[key], errs = validate_component(sub, COMPONENT_PATHS[sub_path], sub_path, registry)
            problems += errs
        elif sub_path in COMPONENT_LIST_PATHS and isinstance(sub, list):
            kind = COMPONENT_LIST_PATHS[sub_path]
            checked = [
                validate_component(s, kind, f"{sub_path}[{i}]", registry) for i, s in enumerate(sub)
            ]
            out[key] = [spec for spec, _ in checked]
            problems += [p for _, errs in checked for p in errs]
        elif dataclasses.is_dataclass(hints[key]):
            out[key], errs = _validate_section(sub, hints[key], sub_path, registry)
            problems += errs
        elif sub == MISSING or not check_type(sub, hints[key]):
            problems.append(_type_problem(sub_path, hints[key], sub))
        else:
            out[key] = sub
    for f in dataclasses.fields(cls):  # fill defaults, so the saved recipe is explicit
        sub_path = f"{path}.{f.name}" if path else f.name
        if f.name in out:
            continue
        if sub_path in OPTIONAL_COMPONENTS:
            out[f.name] = {}
        elif sub_path in COMPONENT_PATHS:
            problems.append(f"{sub_path}: missing; set a {COMPONENT_PATHS[sub_path]} component")
        elif f.name not in value:
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            out[f.name] = (
                dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default
            )
    order = {f.name: i for i, f in enumerate(dataclasses.fields(cls))}
    ordered = dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))
    return ordered, unknown.report() + problems


def _check_optimizer(optim: dict) -> list[str]:
    problems = []
    for other, keys in OPTIMIZER_ONLY.items():
        if other == optim.get("name"):
            continue
        for key in keys:
            if optim.get(key) is not None:
                problems.append(
                    f"optim.{key}: only used by optimizer {other!r}, but optim.name is "
                    f"{optim.get('name')!r}; remove it or change optim.name"
                )
    return problems


def _check_pairing(recipe: dict, registry: Registry) -> list[str]:
    """An objective that needs a backbone capability (e.g. token masking) names the backbones
    that have it, before anything is built."""
    try:
        objective = registry.get("objective", recipe["objective"]["name"])
        backbone = registry.get("backbone", recipe["backbone"]["name"])
    except (KeyError, TypeError, RegistryError):
        return []  # already reported
    missing = objective.mark.requires - backbone.mark.capabilities
    if not missing:
        return []
    fits = registry.providing("backbone", objective.mark.requires)
    return [
        f"backbone.name: objective {objective.name!r} needs a backbone with "
        f"{', '.join(sorted(missing))}, which {backbone.name!r} lacks; backbones that have it: "
        f"{', '.join(fits) or '(none installed)'}"
    ]


def validate_recipe(recipe: dict, registry: Registry, source: str = "recipe") -> dict:
    """Validate a composed recipe; return it with every default filled in, or raise."""
    out, problems = _validate_section(recipe, RecipeSchema, "", registry)
    if isinstance(out.get("optim"), dict):
        problems += _check_optimizer(out["optim"])
    problems += check_ranges(out) + check_finite(out)
    if isinstance(out.get("run"), dict):
        problems += check_run_name(out["run"])
    if not problems:
        problems += _check_pairing(out, registry)
    if not problems:
        from vssl_core.contracts import check_backbone_statically

        broken = check_backbone_statically(registry, out["backbone"])
        problems += [f"backbone: {broken}"] if broken else []
    if problems:
        raise RecipeValidationError(problems, source)
    return out


def to_section(cls: type, values: dict) -> Any:
    """Build a section dataclass from validated values (lists become tuples where hinted)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        v = values.get(f.name)
        if isinstance(v, list) and "tuple" in str(hints[f.name]):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)
