"""vssl from Python (a notebook, a script, a test harness): the same recipes, components and
checkpoints as the command line, without reaching into the builders.

    import vssl_core.api as vssl

    config = vssl.load_recipe("recipes/rotation.yaml", {"backbone.width": 8})
    model = vssl.build_model(config)                 # the objective, owning its backbone
    batch = vssl.make_batch(config, model.views(), size=4)
    out = vssl.train_step(model, batch, torch.optim.SGD(model.parameters(), lr=0.01))
    result = vssl.train(config)                      # what `vssl train` does
    backbone, report = vssl.load_backbone(result.run_dir / "checkpoints" / "last.pt")
    features = vssl.clip_features(backbone, batch.clips[0])   # [4, num_features]

Plugins are loaded once per process (:func:`plugin_host`); every function takes ``host=`` to
use another set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vssl_core.build import build, build_dataset, build_objective
from vssl_core.config import Config, load_config
from vssl_core.convert import LoadReport, load_backbone_checkpoint, read_checkpoint
from vssl_core.data.clips import ClipDataset, collate, normalize_on_device, normalize_uint8
from vssl_core.interfaces import IMAGENET_MEAN, IMAGENET_STD, Batch, Objective, ObjectiveOutput
from vssl_core.plugins import PluginHost, load_plugins

__all__ = [
    "plugin_host",
    "load_recipe",
    "build_model",
    "build_backbone",
    "load_backbone",
    "make_batch",
    "clip_features",
    "train_step",
    "train",
]

Overrides = Sequence[str] | Mapping[str, Any] | None
_HOST: PluginHost | None = None


def plugin_host(reload: bool = False) -> PluginHost:
    """The installed plugins, loaded once per process (``reload``: load them again, e.g. after
    installing one)."""
    global _HOST
    if _HOST is None or reload:
        _HOST = load_plugins()
    return _HOST


def _override_list(overrides: Overrides) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):  # JSON is YAML: any value survives the round trip
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return list(overrides)


def load_recipe(
    recipe: str | Path, overrides: Overrides = None, host: PluginHost | None = None
) -> Config:
    """A recipe (a path, or a name in the plugins' recipe folders) composed with its defaults,
    the ``overrides`` (``["train.epochs=3"]`` or ``{"train.epochs": 3}``) and validated, every
    default filled in (``config.data`` is the dict ``vssl train`` would save)."""
    return load_config(recipe, _override_list(overrides), host or plugin_host())


def _config(recipe: Config | str | Path, overrides: Overrides, host: PluginHost) -> Config:
    if isinstance(recipe, Config):
        if overrides:
            raise ValueError("pass overrides to load_recipe, or a recipe path here, not both")
        return recipe
    return load_recipe(recipe, overrides, host)


def build_model(
    recipe: Config | str | Path,
    overrides: Overrides = None,
    host: PluginHost | None = None,
    device: str | torch.device = "cpu",
) -> Objective:
    """The recipe's objective with its backbone, initialized as ``vssl train`` initializes it
    (seeded with ``run.seed``), on ``device``."""
    host = host or plugin_host()
    config = _config(recipe, overrides, host)
    torch.manual_seed(config.run.seed)
    return build_objective(host.registry, config.data).to(device)


def build_backbone(spec: str | Mapping[str, Any], host: PluginHost | None = None) -> nn.Module:
    """A backbone from its name (``"vit_small"``) or a recipe mapping
    (``{"name": "vit_small", "img_size": 112}``), its arguments checked as in a recipe."""
    from vssl_core.schema import RecipeValidationError, validate_component

    host = host or plugin_host()
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    spec, problems = validate_component(spec, "backbone", "backbone", host.registry)
    if problems:
        raise RecipeValidationError(problems, "backbone")
    return build(host.registry, "backbone", spec)


def load_backbone(
    checkpoint: str | Path,
    backbone: str | Mapping[str, Any] | nn.Module | None = None,
    fmt: str = "auto",
    host: PluginHost | None = None,
) -> tuple[nn.Module, LoadReport]:
    """A backbone holding the weights of ``checkpoint`` in any format ``vssl convert --list``
    shows (a vssl training or converted checkpoint, VideoMAE, SIGMA, transformers, ...),
    loaded strictly (every key used or dropped for a stated reason), in eval mode.

    ``backbone``: the backbone to build (a name or mapping) or fill (a module); None takes the
    spec a vssl checkpoint stores in its recipe (``recipe.backbone``)."""
    host = host or plugin_host()
    if backbone is None:
        backbone = stored_backbone_spec(read_checkpoint(checkpoint))
        if backbone is None:
            raise ValueError(
                f"{checkpoint} does not say which backbone it holds (it is not a vssl checkpoint "
                "with a recipe); pass backbone= (e.g. 'vit_base' or {'name': 'vit_small', "
                "'img_size': 112})"
            )
    module = backbone if isinstance(backbone, nn.Module) else build_backbone(backbone, host)
    name = None if isinstance(backbone, nn.Module) else _name(backbone)
    report = load_backbone_checkpoint(module, checkpoint, fmt, host, backbone_name=name)
    return module.eval(), report


def _name(spec: str | Mapping[str, Any]) -> str:
    return spec if isinstance(spec, str) else spec["name"]


def stored_backbone_spec(state: Any) -> dict | None:
    """The ``{name: ..., **kwargs}`` backbone a vssl checkpoint (training or converted) stores
    in its recipe; None for other checkpoints."""
    if not isinstance(state, Mapping) or state.get("format") != "vssl":
        return None
    spec = (state.get("recipe") or {}).get("backbone")
    return dict(spec) if isinstance(spec, Mapping) and spec.get("name") else None


def make_batch(
    recipe: Config | str | Path,
    views: Any,
    size: int = 4,
    start: int = 0,
    epoch: int = 0,
    host: PluginHost | None = None,
    normalize: bool = True,
) -> Batch:
    """Samples ``start .. start + size - 1`` of the recipe's training dataset, cut into
    ``views`` (a :class:`ViewSpec`, e.g. ``model.views()``) exactly as the training loader cuts
    them in epoch ``epoch`` (same keys, crops and augmentations), collated into a
    :class:`Batch`; ``normalize``: float clips normalized as the objective receives them
    (else uint8, as the loader gives them)."""
    host = host or plugin_host()
    config = _config(recipe, None, host)
    dataset = build_dataset(host.registry, config.data)
    if start < 0 or size < 1 or start + size > len(dataset):
        raise ValueError(
            f"make_batch: samples {start}..{start + size - 1} are not all in the dataset of "
            f"{len(dataset)} samples; lower start or size"
        )
    clips = ClipDataset(dataset, views, config.run.seed)
    batch = collate([clips[(epoch, i)] for i in range(start, start + size)])
    return normalize_on_device(batch, views) if normalize else batch


def clip_features(
    backbone: nn.Module,
    clips: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    batch_size: int = 16,
) -> torch.Tensor:
    """Pooled features [N, num_features] of clips [N, C, T, H, W]: uint8 clips are normalized
    with ``mean``/``std`` (per channel, of [0, 1] pixels) first, float clips are taken as
    normalized. Runs in eval mode without gradients on the backbone's device, ``batch_size``
    clips at a time; the backbone's mode is restored."""
    if clips.ndim != 5 or clips.shape[1] != 3:
        raise ValueError(f"clips must be [N, 3, T, H, W], got {list(clips.shape)}")
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()
    out = []
    try:
        with torch.no_grad():
            for chunk in clips.split(batch_size):
                chunk = chunk.to(device)
                if chunk.dtype == torch.uint8:
                    chunk = normalize_uint8(chunk, mean, std)
                out.append(backbone(chunk).float().cpu())
    finally:
        backbone.train(was_training)
    return torch.cat(out)


def train_step(model: Objective, batch: Batch, optimizer: torch.optim.Optimizer) -> ObjectiveOutput:
    """One optimizer step as the trainer takes it: forward in training mode, backward, the
    optimizer step, ``after_step`` (momentum encoders, queues) and the run position advanced.
    A uint8 batch is normalized with the objective's views first. An objective whose schedule
    needs the run's length needs ``model.begin_run(RunInfo(...))`` before the first step."""
    device = next(model.parameters()).device
    batch = normalize_on_device(batch.to(device), model.views())
    step = int(model.run_step)
    model.train()
    out = model(batch)
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.after_step(step + 1)
    model.set_run_step(step + 1)
    return out


def train(
    recipe: Config | str | Path, overrides: Overrides = None, host: PluginHost | None = None
) -> Any:
    """Train the recipe as ``vssl train`` does (run directory, checkpoints, resume with
    ``resume=true``); returns the result (``run_dir``, ``step``, ``status``, ``last_loss``)."""
    from vssl_core.engine.trainer import train as run_trainer

    host = host or plugin_host()
    return run_trainer(_config(recipe, overrides, host), host)
