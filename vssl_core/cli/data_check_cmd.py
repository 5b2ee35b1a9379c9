"""`vssl data check`: decode every video of a recipe's dataset and write a quarantine list."""

from __future__ import annotations

import argparse
import os
import sys
import time

from vssl_core.cli.commands import CliCommand

SHOWN = 20  # problems listed on the terminal (all of them go to --out)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="a recipe with a data section (other sections are not needed)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides")
    p.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        metavar="N",
        help="decode in N processes (default: min(8, CPUs))",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write the videos with problems to FILE as a quarantine list; train with "
        "data.dataset.quarantine=FILE to skip them",
    )
    p.add_argument(
        "--min-frames",
        default="1",
        metavar="N|span",
        help="report videos with fewer decodable frames as too_short; 'span': the frames the "
        "recipe's objective needs per sample (builds the model)",
    )


def _load_data(args, host) -> tuple[str, dict]:
    """(recipe path, validated data section); only the `data` section must be valid."""
    from vssl_core.config import compose
    from vssl_core.recipe import display_path
    from vssl_core.schema import DataSection, RecipeValidationError, _validate_section

    composed = compose(args.recipe, args.overrides, host)
    source = display_path(composed.path)
    data, problems = _validate_section(
        composed.data.get("data", {}), DataSection, "data", host.registry
    )
    if problems:
        raise RecipeValidationError(problems, source)
    return source, data


def _listing_missing(data: dict, host) -> dict:
    """The data section with ``missing: skip`` for a dataset that takes it: a deleted video is
    then reported ``missing`` with the others, instead of stopping the check before it starts
    (``missing: error``) or vanishing from the report (``skip``)."""
    from vssl_core.schema import component_params

    spec = data["dataset"]
    factory = host.registry.get("dataset", spec["name"]).factory
    if "missing" not in component_params(factory, "dataset"):
        return data
    return {**data, "dataset": {**spec, "missing": "skip"}}


def _min_frames(value: str, args, host) -> int:
    if value == "span":
        from vssl_core.build import build_objective
        from vssl_core.config import load_config

        config = load_config(args.recipe, args.overrides, host)
        views = build_objective(host.registry, config.data).views()
        return views.frames_needed
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError(f"--min-frames {value!r}: give a frame count >= 0 or 'span'")
    return n


def _progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"  {done}/{total} videos checked", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, host) -> int:
    from vssl_core.build import build_dataset, build_decoder
    from vssl_core.data.check import (
        check_videos,
        missing_reports,
        summary_table,
        write_quarantine,
    )

    if args.workers < 1:
        raise ValueError(f"--workers {args.workers}: use 1 or more processes")
    source, data = _load_data(args, host)
    name = data["dataset"]["name"]
    dataset = build_dataset(host.registry, {"data": _listing_missing(data, host)})
    if not callable(getattr(dataset, "video_path", None)):
        print(
            f"dataset {name!r} reads no video files (it has no video_path): nothing to check; "
            "its videos are made in memory"
        )
        return 0
    min_frames = _min_frames(args.min_frames, args, host)
    decoder = build_decoder(host.registry, {"data": data})
    paths = list(dict.fromkeys(str(dataset.video_path(i)) for i in range(len(dataset))))
    gone = [str(p) for p in getattr(dataset, "missing", [])]  # listed, not on disk
    print(
        f"checking {len(paths) + len(gone)} videos of dataset {name!r} ({source}), {args.workers} worker{'s' * (args.workers > 1)}"
    )
    start = time.perf_counter()
    reports = missing_reports(gone) + check_videos(
        paths, decoder, args.workers, min_frames, _progress
    )
    print(f"decoded in {time.perf_counter() - start:.1f} s\n{summary_table(reports)}")
    bad = [r for r in reports if r.problem]
    for r in bad[:SHOWN]:
        print(f"  {r.line()}")
    if len(bad) > SHOWN:
        print(f"  ... and {len(bad) - SHOWN} more")
    if args.out:
        header = f"vssl data check {source}: dataset {name!r}, min frames {min_frames}"
        write_quarantine(args.out, reports, getattr(dataset, "root", None), header)
        print(
            f"wrote {len(bad)} videos to {args.out}; train with data.dataset.quarantine={args.out}"
        )
    elif bad:
        print("pass --out FILE to write them as a quarantine list (data.dataset.quarantine=FILE)")
    return 1 if bad else 0


COMMANDS: list[CliCommand] = [
    CliCommand(
        name="data check",
        help="Decode every video of a recipe's dataset; list and quarantine the bad ones.",
        description="Decode every video of the recipe's dataset once, in parallel, and report "
        "the ones that are missing, empty, unreadable, truncated or too short. With --out, "
        "write them as a quarantine list that datasets skip (data.dataset.quarantine=FILE). "
        "Exit code 0 when every video is fine, 1 when some are not.",
        run=run,
        configure=_configure,
        takes_overrides=True,
    )
]
