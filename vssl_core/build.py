"""Build components from validated ``{name: ..., **kwargs}`` mappings."""

from __future__ import annotations

import inspect
from typing import Any

from vssl_core.contracts import check_built
from vssl_core.interfaces import Objective, VideoDataset, VideoDecoder
from vssl_core.registry import Registry


def build(registry: Registry, kind: str, spec: dict, **injected: Any) -> Any:
    """Call the registered factory with the spec's own arguments (never the whole recipe), then
    check what the core relies on of a backbone, head or objective (:mod:`vssl_core.contracts`)."""
    entry = registry.get(kind, spec["name"])
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        obj = entry.factory(**injected, **kwargs)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"building {kind} {spec['name']!r} (plugin {entry.plugin}): {exc}") from exc
    check_built(kind, obj, spec["name"], entry.plugin, entry.mark, injected)
    return obj


def build_objective(registry: Registry, recipe: dict) -> Objective:
    """The backbone, then the objective that owns it."""
    backbone = build(registry, "backbone", recipe["backbone"])
    return build(registry, "objective", recipe["objective"], backbone=backbone)


DEFAULT_DECODER = {"name": "pyav"}


def build_decoder(registry: Registry, recipe: dict) -> VideoDecoder:
    """The recipe's ``data.decoder``, or PyAV when it leaves it empty."""
    return build(registry, "decoder", recipe["data"].get("decoder") or DEFAULT_DECODER)


def build_dataset(registry: Registry, recipe: dict) -> VideoDataset:
    """The dataset; one that reads files (its factory takes ``decoder``) gets the decoder."""
    spec = recipe["data"]["dataset"]
    entry = registry.get("dataset", spec["name"])
    if "decoder" in inspect.signature(entry.factory).parameters:
        return build(registry, "dataset", spec, decoder=build_decoder(registry, recipe))
    return build(registry, "dataset", spec)
