"""`vssl extract CHECKPOINT --out F.npz`: the features of every video of a dataset (or of a
folder of videos), with their ids and labels, for analysis outside vssl (retrieval, t-SNE, a
classifier of your own).

Each video is cut into the test views of the evaluation (``--clips`` temporal clips x
``--crops`` spatial crops, ``--stride``; frames and crop size are the backbone's), the backbone
embeds each view, and the file holds:

- ``clip_features`` float32 [N, V, D]: one pooled feature per view;
- ``video_features`` float32 [N, D]: their mean;
- ``ids`` (str [N]), ``labels`` ([N], or [N, K] multi-hot), ``index`` (int [N], the dataset
  index); videos that cannot be decoded are left out and listed in ``failed_ids``.

The videos: ``--videos DIR`` (every video file under DIR, a class per sub-folder), else the
recipe's ``data.dataset`` (``--split test``: its ``eval.test_dataset``), the recipe being
``--recipe`` or, for a vssl training checkpoint, the one it stores. The backbone: ``--backbone``,
else the one a vssl checkpoint stores, else the recipe's.

Shape legend: N videos, V views per video, D features.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from vssl_core.api import load_backbone, stored_backbone_spec
from vssl_core.build import build_dataset
from vssl_core.cli.commands import CliCommand
from vssl_core.config import load_config
from vssl_core.convert import read_checkpoint
from vssl_core.engine.distributed import pick_device
from vssl_core.interfaces import IMAGENET_MEAN, IMAGENET_STD
from vssl_eval.multiview import ViewPlan
from vssl_eval.runner import DistEnv, batch_scores, view_loader

log = logging.getLogger("vssl.eval")


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="weights in any format `vssl convert --list` shows")
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument("--recipe", help="the recipe whose dataset (and backbone) to use")
    p.add_argument("--videos", metavar="DIR", help="every video file under DIR instead")
    p.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="the recipe's data.dataset (train) or eval.test_dataset (test)",
    )
    p.add_argument("--backbone", metavar="SPEC", help="a backbone name or YAML mapping")
    p.add_argument("--format", default="auto", help="the checkpoint's format (default: detected)")
    p.add_argument("--clips", type=int, default=1, help="temporal clips per video (default 1)")
    p.add_argument("--crops", type=int, choices=(1, 3), default=1, help="spatial crops per clip")
    p.add_argument("--stride", type=int, default=1, help="frame stride of a clip (default 1)")
    p.add_argument("--batch-size", type=int, default=4, help="videos per forward (default 4)")
    p.add_argument("--workers", type=int, default=0, help="loader worker processes")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")


def _recipe(args: argparse.Namespace, host, checkpoint: dict) -> dict | None:
    """The resolved recipe to take the dataset (and backbone) from, or None (--videos only)."""
    if args.recipe:
        return load_config(args.recipe, args.overrides, host).data
    stored = checkpoint.get("recipe") if isinstance(checkpoint, dict) else None
    if args.videos:
        return None
    if not stored or not stored.get("data"):
        raise ValueError(
            f"{args.checkpoint} stores no recipe with a dataset: give --recipe RECIPE or "
            "--videos DIR"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(stored, f)  # validated again, as a recipe file would be
    try:
        return load_config(f.name, args.overrides, host).data
    finally:
        Path(f.name).unlink()


def _dataset_spec(args: argparse.Namespace, recipe: dict | None) -> tuple[dict, dict]:
    if args.videos:
        return {"name": "video_folder", "root": args.videos}, (recipe or {}).get("data", {}).get(
            "decoder"
        ) or {}
    spec = recipe["eval"]["test_dataset"] if args.split == "test" else recipe["data"]["dataset"]
    if not spec:
        raise ValueError("the recipe has no eval.test_dataset: use --split train")
    return spec, recipe["data"]["decoder"]


def run_extract(args: argparse.Namespace, host) -> int:
    if args.clips < 1 or args.batch_size < 1 or args.stride < 1:
        raise ValueError("--clips, --stride and --batch-size must be >= 1")
    checkpoint = read_checkpoint(args.checkpoint)
    recipe = _recipe(args, host, checkpoint)
    backbone_spec = (
        yaml.safe_load(args.backbone) if args.backbone else stored_backbone_spec(checkpoint)
    )
    if isinstance(backbone_spec, str):
        backbone_spec = {"name": backbone_spec}
    backbone_spec = backbone_spec or (recipe or {}).get("backbone")
    backbone, report = load_backbone(args.checkpoint, backbone_spec, args.format, host)
    log.info(report.summary())
    env = DistEnv(0, 1, pick_device(args.device, 0))
    backbone.to(env.device)
    dataset_spec, decoder = _dataset_spec(args, recipe)
    dataset = build_dataset(host.registry, {"data": {"dataset": dataset_spec, "decoder": decoder}})
    frames, size, _ = backbone.input_size
    views = ViewPlan(frames, args.stride, size, size, args.clips, args.crops)
    loader = view_loader(dataset, views, env, args.batch_size, args.workers)
    feats, labels, ids, index, failed = [], [], [], [], []
    for batch in loader:
        failed += [f["video_id"] for f in batch.failed]
        if batch.views is None:
            continue
        feats.append(batch_scores(backbone, batch, env, IMAGENET_MEAN, IMAGENET_STD, "fp32").cpu())
        labels.append(batch.labels)
        ids += batch.video_ids
        index += batch.index
    if not feats:
        raise ValueError(f"no video of the dataset could be decoded ({len(failed)} failed)")
    clip_NVD = torch.cat(feats).numpy().astype(np.float32)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        clip_features=clip_NVD,
        video_features=clip_NVD.mean(axis=1),
        ids=np.array(ids),
        labels=torch.cat(labels).numpy(),
        index=np.array(index, dtype=np.int64),
        failed_ids=np.array(failed, dtype=str),
    )
    n, v, d = clip_NVD.shape
    print(f"wrote {out}: {n} videos x {v} views x {d} features ({len(failed)} failed to decode)")
    return 0


COMMAND = CliCommand(
    name="extract",
    help="Write the backbone features of every video of a dataset or folder to an .npz file.",
    description=(
        "Embed every video of a dataset (the recipe's, or --videos DIR) with a checkpoint's "
        "backbone: per-view features [N, V, D], their mean per video, ids and labels in an .npz "
        "file. Example: vssl extract runs/rotation/checkpoints/last.pt --out feats.npz"
    ),
    run=run_extract,
    configure=_configure,
    takes_overrides=True,
)
