"""`vssl eval RECIPE checkpoint=PATH [key=value ...]`: evaluate pretrained weights downstream.

An evaluation recipe is a training recipe (the ``supervised`` objective, its data, schedule...)
plus an ``eval`` section naming a protocol component (``eval.protocol: {name: finetune}``), the
test set and the test-time views. ``checkpoint=PATH`` sets ``objective.backbone_checkpoint``:
the pretrained backbone weights. The backbone is the one a vssl checkpoint was trained with (its
saved recipe's, as ``vssl severe`` does) unless the command line sets ``backbone=``. The
protocol (``build(...).run(config, host)``) trains if it needs to, tests, and writes
``metrics.json`` and ``predictions.jsonl`` into the run directory; it returns an object with
``run_dir``, ``status`` and ``metrics``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from vssl_core.cli.commands import CliCommand

log = logging.getLogger("vssl.eval")

CHECKPOINT_KEY = "objective.backbone_checkpoint"


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "recipe", help="evaluation recipe (a path, or a name found in the plugins' recipe folders)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help=f"recipe overrides; checkpoint=PATH is short for {CHECKPOINT_KEY}=PATH",
    )


def expand_checkpoint(overrides: list[str]) -> list[str]:
    """``checkpoint=PATH`` -> ``objective.backbone_checkpoint=PATH`` (``checkpoint.*`` keys of
    the trainer's checkpoint section pass through unchanged)."""
    return [
        f"{CHECKPOINT_KEY}={o.split('=', 1)[1]}" if o.startswith("checkpoint=") else o
        for o in overrides
    ]


def with_checkpoint_backbone(recipe: str, overrides: list[str], host) -> tuple[list[str], str]:
    """The overrides with the backbone the checkpoint was trained with put first (a vssl
    checkpoint stores it in its recipe), so that the weights fit; the command line's own
    ``backbone=`` / ``backbone.*`` still apply after it. Also the sentence that says which
    backbone is used and why."""
    from vssl_core.config import compose
    from vssl_core.convert import stored_backbone

    checkpoint = (
        compose(recipe, overrides, host).data.get("objective", {}).get("backbone_checkpoint")
    )
    if not checkpoint:
        return overrides, ""
    spec = stored_backbone(checkpoint) if Path(checkpoint).is_file() else None
    given = [o for o in overrides if o.split("=", 1)[0].split(".")[0] == "backbone"]
    if spec is None:
        return overrides, (
            f"backbone from the {'command line' if given else 'recipe'}: {checkpoint} stores no "
            "backbone spec (not a vssl checkpoint), so the weights must fit it"
        )
    shown = f"{spec['name']} {json.dumps({k: v for k, v in spec.items() if k != 'name'})}"
    first = [f"backbone={json.dumps(spec)}", *overrides]
    if any(o.startswith("backbone=") for o in given):
        return first, f"backbone from the command line; the checkpoint's recipe has {shown}"
    if given:
        return first, f"backbone from the checkpoint's recipe, {shown}, with {' '.join(given)}"
    return first, (
        f"backbone from the checkpoint's recipe: {shown} (give backbone=... to choose another)"
    )


def cmd_eval(args: argparse.Namespace, host) -> int:
    from vssl_core.build import build
    from vssl_core.config import load_config
    from vssl_core.engine.trainer import EXIT_PREEMPTED
    from vssl_core.schema import RecipeError

    overrides, which = with_checkpoint_backbone(
        args.recipe, expand_checkpoint(args.overrides), host
    )
    if which and int(os.environ.get("RANK", "0")) == 0:
        log.info(which)
    config = load_config(args.recipe, overrides, host)
    spec = config.data["eval"]["protocol"]
    if not spec:
        raise RecipeError(
            f"{config.path} has no eval.protocol, so it is not an evaluation recipe; set "
            "eval.protocol: {name: finetune | linear | knn} (examples: recipes/eval/)"
        )
    result = build(host.registry, "protocol", spec).run(config, host)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if result.status != "completed":  # pre-empted: the checkpoint is saved, nothing measured
        if main_rank:
            print(f"{result.status}; continue with resume=true. Run directory {result.run_dir}")
        return EXIT_PREEMPTED
    if not main_rank:
        return 0
    for name, value in result.metrics.items():
        print(f"{name:<18} {value:.4f}")
    print(f"metrics.json and predictions.jsonl in {result.run_dir}")
    return 0


COMMANDS: list[CliCommand] = [
    CliCommand(
        name="eval",
        help="Evaluate a checkpoint downstream: fine-tune, linear probe or kNN, then test.",
        run=cmd_eval,
        configure=_configure,
        description=(
            "Evaluate pretrained weights with the recipe's protocol (eval.protocol): train a head "
            "(and the backbone, for fine-tuning) if the protocol needs it, keep the best or last "
            "model, test with several clips and crops per video, and write metrics.json and "
            "predictions.jsonl. Example: vssl eval recipes/eval/synthetic_linear.yaml "
            "checkpoint=runs/rotation/checkpoints/last.pt"
        ),
    )
]
