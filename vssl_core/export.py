"""Checkpoints out: a vssl checkpoint written in another code base's layout (``vssl convert
--to FORMAT IN OUT``), by the format's ``export`` (see :class:`vssl_core.convert.CheckpointFormat`).

OUT is a folder as transformers expects one: ``config.json`` and ``model.safetensors`` (or
``pytorch_model.bin`` without the safetensors package). IN is a vssl training or converted
checkpoint (its recipe says the backbone and objective), or any checkpoint ``vssl convert`` reads
(then only its backbone is written, and ``--backbone`` says which).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vssl_core.build import build
from vssl_core.convert import (
    ConversionError,
    Exported,
    ExportSource,
    checkpoint_formats,
    convert,
    read_checkpoint,
    resolve_format,
    unwrap_state_dict,
)


def _model_and_recipe(
    source: Path, fmt_from: str, backbone: dict | None, host: Any
) -> tuple[dict, dict, dict]:
    """(objective-level state, backbone spec, objective spec) of the checkpoint to export."""
    obj = read_checkpoint(source)
    if isinstance(obj, Mapping) and obj.get("format") == "vssl":
        state, _ = unwrap_state_dict(obj, str(source))
        recipe = obj.get("recipe") or {}
        spec = backbone or recipe.get("backbone")
        objective = dict(recipe.get("objective") or {})
    else:  # another code base's file: its backbone only
        if backbone is None:
            raise ConversionError(
                f"{source} is not a vssl checkpoint: name its backbone with --backbone"
            )
        conversion = convert(fmt_from, source, backbone["name"], host)
        state = {f"backbone.{k}": v for k, v in conversion.state.items()}
        spec, objective = backbone, {}
    if not spec:
        raise ConversionError(
            f"{source} does not say which backbone it holds: name it with --backbone "
            "(e.g. '{name: vit_base, num_frames: 16}')"
        )
    return state, dict(spec), objective


def export_checkpoint(
    source: str | Path,
    fmt: str,
    out: str | Path,
    backbone: dict | None = None,
    fmt_from: str = "auto",
    host: Any = None,
) -> Exported:
    """Write ``source`` in format ``fmt`` into the new folder ``out``; returns what was written."""
    from vssl_core.schema import RecipeValidationError, validate_component

    formats = checkpoint_formats(host)
    target = resolve_format(fmt, formats)
    if target.export is None:
        can = [f.name for f in formats.values() if f.export is not None]
        raise ConversionError(
            f"format {target.name!r} can be read, not written; --to takes {', '.join(can) or '(none)'}"
        )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConversionError(f"{out} exists and is not an empty folder; nothing was overwritten")
    state, spec, objective = _model_and_recipe(Path(source), fmt_from, backbone, host)
    spec, problems = validate_component(spec, "backbone", "backbone", host.registry)
    if problems:
        raise RecipeValidationError(problems, str(source))
    with torch.device("meta"):  # the architecture only: no memory, no init
        module = build(host.registry, "backbone", spec)
    exported = target.export(ExportSource(state, spec, objective, module))
    _write(exported, out)
    return exported


def _write(exported: Exported, out: Path) -> None:
    """config.json and the weights, written in a temporary folder then moved into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(exported.config, indent=2, sort_keys=True))
        try:
            from safetensors.torch import save_file
        except ImportError:
            torch.save(exported.state, tmp / "pytorch_model.bin")
        else:
            save_file(exported.state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        if out.exists():
            out.rmdir()  # empty (checked)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
