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


def recipe_datasets(recipe: dict) -> list[tuple[str, dict]]:
    """(key path, spec) of every dataset a validated recipe names: the training data, the
    evaluation's test and validation sets, and a monitor's datasets."""
    found = [("data.dataset", recipe["data"]["dataset"])]
    found += [
        (f"eval.{k}", v) for k, v in (recipe.get("eval") or {}).items() if k.endswith("_dataset")
    ]
    found += [
        (f"monitor.{k}", v)
        for k, v in (recipe.get("monitor") or {}).items()
        if k.endswith("_dataset")
    ]
    return [(where, spec) for where, spec in found if isinstance(spec, dict) and spec.get("name")]


def dataset_problems(registry: Registry, recipe: dict) -> list[str]:
    """Build every dataset of a validated recipe (annotation files are read, no video is
    decoded) and return what went wrong, one line per dataset: a root that does not exist, a
    missing annotation file, an empty subset..."""
    problems = []
    for where, spec in recipe_datasets(recipe):
        try:
            build_dataset(
                registry, {"data": {"dataset": spec, "decoder": recipe["data"]["decoder"]}}
            )
        except Exception as exc:  # whatever the dataset raises is this recipe's problem to fix
            problems.append(f"{where}: {exc}")
    return problems
