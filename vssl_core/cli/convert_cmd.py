"""`vssl convert`: turn a checkpoint from another code base into a vssl checkpoint, or (with
``--to``) a vssl checkpoint into another code base's layout (:mod:`vssl_core.export`).

The output holds the backbone (``model`` = ``backbone.*``, with the ``format: vssl`` marker), so
an eval recipe's ``checkpoint=`` and :func:`vssl_core.convert.load_backbone_checkpoint` read it
like a checkpoint of our own; where the format reads more (a VideoMAE pretraining decoder), the
objective's modules and spec too. What was dropped, and why, is printed and stored with it. IN
may be a folder holding one weights file and a ``config.json`` (transformers' layout).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from vssl_core.cli.commands import CliCommand
from vssl_core.convert import (
    ConversionError,
    check_fits,
    checkpoint_formats,
    convert_model,
    converted_checkpoint,
    summarize_keys,
)
from vssl_core.engine.checkpoint import save_atomic


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", metavar="IN", help="checkpoint to convert")
    p.add_argument("output", nargs="?", metavar="OUT", help="vssl checkpoint to write")
    p.add_argument(
        "--from",
        dest="fmt",
        default="auto",
        metavar="FORMAT",
        help="format of IN (default: auto, detected from its keys); see --list",
    )
    p.add_argument(
        "--backbone",
        metavar="SPEC",
        help="check that the weights fill this backbone exactly: a name (vit_base) or a YAML "
        "mapping ('{name: vit_small, depth: 6}'); recorded in OUT",
    )
    p.add_argument(
        "--to",
        metavar="FORMAT",
        help="write IN (a vssl checkpoint) in this format instead, into the new folder OUT "
        "(config.json + weights); e.g. videomae_hf",
    )
    p.add_argument("--list", action="store_true", help="list the known formats and exit")


def _backbone_spec(text: str) -> dict:
    spec = yaml.safe_load(text)
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ConversionError(
            f"--backbone {text!r}: give a backbone name (vit_base) or a mapping with a name "
            "('{name: vit_small, img_size: 112}')"
        )
    return spec


def _list(host) -> int:
    for name, fmt in checkpoint_formats(host).items():
        targets = ", ".join(fmt.backbones) if fmt.backbones else "any backbone"
        auto = "" if fmt.detect is not None or name == "vssl" else " (never auto-detected)"
        print(f"{name:<13} {fmt.summary}" + (" (also written: --to)" if fmt.export else ""))
        print(f"{'':<13} backbones: {targets}{auto}")
        for pattern, reason in fmt.drops:
            print(f"{'':<13} drops {pattern}: {reason}")
    return 0


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def source_files(source: Path) -> tuple[Path, dict]:
    """The weights file of IN and its config.json (``{}`` when there is none): IN itself and a
    config.json beside it, or a folder holding both (transformers' save_pretrained layout)."""
    folder = source if source.is_dir() else source.parent
    if source.is_dir():
        found = [source / name for name in WEIGHT_FILES if (source / name).is_file()]
        if not found:
            raise ConversionError(
                f"{source} is a folder without {' or '.join(WEIGHT_FILES)}; give the weights file"
            )
        source = found[0]
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return source, config if isinstance(config, dict) else {}


def _export(args: argparse.Namespace, host, source: Path, output: Path) -> int:
    from vssl_core.export import export_checkpoint

    spec = _backbone_spec(args.backbone) if args.backbone else None
    exported = export_checkpoint(source, args.to, output, spec, args.fmt, host)
    print(
        f"wrote {output}: {exported.architecture} ({len(exported.state)} tensors) and config.json"
    )
    for note in exported.notes:
        print(f"note: {note}")
    return 0


def run(args: argparse.Namespace, host) -> int:
    if args.list:
        return _list(host)
    if not args.source or not args.output:
        raise ConversionError(
            "vssl convert needs IN and OUT: vssl convert [--from FORMAT | --to FORMAT] IN OUT "
            "(or --list to see the formats)"
        )
    source, output = Path(args.source), Path(args.output)
    if source.resolve() == output.resolve():
        raise ConversionError(f"OUT must differ from IN ({source}); converting never overwrites")
    if args.to:
        return _export(args, host, source, output)
    weights, config = source_files(source)
    spec = _backbone_spec(args.backbone) if args.backbone else None
    conversion, part = convert_model(
        args.fmt, weights, spec["name"] if spec else None, host, config
    )
    detected = " (detected)" if args.fmt == "auto" else ""
    print(f"read {weights}: format {conversion.format}{detected}")
    print(conversion.describe())
    if part is not None:
        spec = spec or part.backbone
        print(f"kept the {part.objective['name']} objective's {summarize_keys(list(part.tensors))}")
    if spec is not None:
        from vssl_core.build import build

        backbone = build(host.registry, "backbone", spec)
        check_fits(conversion.state, backbone, conversion)
        print(f"fits backbone {spec['name']} exactly (every key filled, every shape equal)")
    save_atomic(converted_checkpoint(conversion, spec, part), output)
    print(f"wrote {output}")
    return 0


COMMANDS: list[CliCommand] = [
    CliCommand(
        name="convert",
        help="Convert a checkpoint of another code base (VideoMAE, SIGMA, torchvision, ...) into "
        "a vssl checkpoint, or a vssl checkpoint into another format (--to videomae_hf).",
        description="Convert a checkpoint of another code base into a vssl backbone checkpoint. "
        "Every key of IN is mapped onto the backbone or dropped for a stated reason (a decoder, "
        "a classifier, a queue); anything else is an error, never a silent partial load.",
        run=run,
        configure=_configure,
    )
]
