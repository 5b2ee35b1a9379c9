"""``init_from``: start a new run from a checkpoint's weights, with a fresh optimizer, schedule
and step count (``resume`` continues a run instead).

The checkpoint may be in any format the evaluation path reads (``vssl convert --list``). A vssl
checkpoint of the same objective (same modules, e.g. a VideoMAE pretraining checkpoint with its
decoder, also one converted from transformers) fills the whole objective, strictly. Anything
else fills the backbone, strictly, before the objective is built around it, so the objective's
own copies of it (a momentum key encoder) start from the loaded weights too; the objective's
other modules start fresh, and the log says which.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from vssl_core.build import build, build_objective
from vssl_core.convert import load_backbone_checkpoint, read_checkpoint, unwrap_state_dict
from vssl_core.interfaces import Objective

log = logging.getLogger("vssl.train")


def _same_objective(obj: Any, recipe: dict) -> dict[str, torch.Tensor] | None:
    """The checkpoint's objective state when it is a vssl checkpoint of this recipe's objective
    (same name), else None."""
    if not isinstance(obj, Mapping) or obj.get("format") != "vssl":
        return None
    saved = (obj.get("recipe") or {}).get("objective") or {}
    if saved.get("name") != recipe["objective"]["name"]:
        return None
    state, _ = unwrap_state_dict(obj)
    return state


def build_initialized(registry: Any, recipe: dict, host: Any = None) -> tuple[Objective, str]:
    """The recipe's objective, initialized from ``recipe["init_from"]`` when set; returns it
    and a line saying what was loaded (empty without ``init_from``)."""
    path = recipe.get("init_from")
    if not path:
        return build_objective(registry, recipe), ""
    fmt = recipe.get("init_from_format", "auto")
    state = _same_objective(read_checkpoint(path), recipe) if fmt in ("auto", "vssl") else None
    if state is not None:
        model = build_objective(registry, recipe)
        if set(state) == set(model.state_dict()):
            model.load_state_dict(state, strict=True)
            return (
                model,
                f"initialized the whole {recipe['objective']['name']} objective from {path}",
            )
    backbone = build(registry, "backbone", recipe["backbone"])
    report = load_backbone_checkpoint(
        backbone, path, fmt, host, backbone_name=recipe["backbone"]["name"]
    )
    model = build(registry, "objective", recipe["objective"], backbone=backbone)
    fresh = sorted({k.split(".")[0] for k in model.state_dict() if not k.startswith("backbone.")})
    rest = f"; fresh: {', '.join(fresh)}" if fresh else ""
    return model, f"initialized the backbone from {path}: {report.summary()}{rest}"
