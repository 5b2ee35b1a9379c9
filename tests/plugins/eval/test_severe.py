"""`vssl severe`: choosing settings, dataset roots and overrides, the checkpoint's backbone,
resuming, and the report (published numbers with their sources, a PNG chart)."""

import argparse
import json
from pathlib import Path

import pytest
import torch
from vssl_eval import report, severe
from vssl_eval.severe import BENCHMARK, BY_KEY, Outcome, Plan

from vssl_core.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def args(**kwargs) -> argparse.Namespace:
    base = {"checkpoint": "none", "settings": None, "synthetic": True, "root": [], "out": None,
            "format": None, "recipes": None, "overrides": []}  # fmt: skip
    return argparse.Namespace(**{**base, **kwargs})


# ---------------------------------------------------------------------------- arguments


def test_the_default_is_severes_eight_settings_in_the_papers_order():
    assert [s.key for s in severe.parse_settings(None, False)] == list(BENCHMARK) == [
        "ssv2", "gym99", "ucf101_1k", "gym99_1k", "fx_s1", "ub_s1", "ucf_rc", "charades"
    ]  # fmt: skip
    assert [s.key for s in severe.parse_settings("ucf101, ucf_rc,ucf101", False)] == [
        "ucf101",
        "ucf_rc",
    ]


@pytest.mark.parametrize(
    ("text", "synthetic", "message"),
    [
        ("ucf10k", False, "unknown ucf10k; choose from ssv2"),
        ("hmdb51", True, "hmdb51 have no miniature"),
    ],
)
def test_unknown_settings_list_the_choices(text, synthetic, message):
    with pytest.raises(ValueError, match=message):
        severe.parse_settings(text, synthetic)


def test_roots_are_per_dataset_and_overrides_per_setting():
    assert severe.parse_roots(["ucf101=/d/ucf", "gym99=/d/gym"]) == {
        "ucf101": "/d/ucf",
        "gym99": "/d/gym",
    }
    with pytest.raises(ValueError, match="DATASET one of charades, gym99"):
        severe.parse_roots(["kinetics=/d/k"])
    chosen = severe.parse_settings("ucf101_1k,ucf_rc", False)
    common, own = severe.split_overrides(
        ["train.epochs=3", "ucf_rc:train.epochs=5", "eval.aggregate=mean"], chosen
    )
    assert common == ["train.epochs=3", "eval.aggregate=mean"]
    assert own == {"ucf101_1k": [], "ucf_rc": ["train.epochs=5"]}
    with pytest.raises(ValueError, match="'gym99' is not a chosen setting"):
        severe.split_overrides(["gym99:train.epochs=5"], chosen)


def test_real_settings_name_the_missing_dataset_folders():
    with pytest.raises(ValueError, match="--root ucf101=PATH --root ucfrep=PATH"):
        severe.make_plan(args(synthetic=False, settings="ucf101_1k,ucf_rc,ucf101"))


def test_the_plan_sets_output_checkpoint_and_root_then_the_users_overrides(tmp_path):
    ckpt = tmp_path / "w.pt"
    torch.save({"stem.0.weight": torch.zeros(1)}, ckpt)  # a bare state dict: no backbone spec
    plan = severe.make_plan(
        args(
            checkpoint=str(ckpt),
            synthetic=False,
            settings="ucf101_1k,ucf_rc",
            root=["ucf101=/d/ucf", "ucfrep=/d/rep"],
            out=str(tmp_path / "o"),
            format="pyvrl",
            overrides=["train.epochs=2", "ucf_rc:train.epochs=7"],
        )  # fmt: skip
    )
    ucf_rc = BY_KEY["ucf_rc"]
    assert plan.overrides(ucf_rc, resume=True) == [
        f"run.output_root={tmp_path / 'o'}",
        "run.name=ucf_rc",
        f"objective.backbone_checkpoint={ckpt.resolve()}",
        "objective.checkpoint_format=pyvrl",
        "data.dataset.root=/d/rep",
        "resume=true",
        "train.epochs=2",
        "train.epochs=7",
    ]
    assert plan.recipes["ucf_rc"].parts[-3:] == ("recipes", "severe", "ucf_rc.yaml")


def test_a_vssl_checkpoint_brings_the_backbone_it_was_trained_with(tmp_path):
    spec = {"name": "vit_tiny", "img_size": 64, "num_frames": 16, "patch_size": 8}
    ckpt = tmp_path / "last.pt"
    torch.save({"format": "vssl", "model": {"backbone.x": torch.zeros(1)},
                "recipe": {"backbone": spec}}, ckpt)  # fmt: skip
    plan = severe.make_plan(args(checkpoint=str(ckpt), settings="ssv2"))
    assert f"backbone={json.dumps(spec)}" in plan.base["ssv2"]
    assert severe.default_out("runs/rotation/checkpoints/last.pt", True) == Path(
        "runs/severe/rotation-synthetic"
    )
    assert severe.default_out("none", False) == Path("runs/severe/scratch")


# ---------------------------------------------------------------------------- report


def test_the_published_file_cites_a_source_for_every_number():
    rows = report.load_published()
    assert len(rows) >= 50
    for row in rows:
        assert "spec " in row.source and row.protocol in ("severe", "finetune"), row.name
        for key, value in row.results.items():
            setting = BY_KEY[key]  # a KeyError names an unknown setting
            low, high = (0.0, 1.0) if setting.metric == "mae" else (1.0, 100.0)
            assert low < value <= high, f"{row.name}: {key} {value}"
    a = [r for r in rows if r.source.endswith("seed-tables.md §A")]
    assert {r.name: r.results.get("ucf_rc") for r in a}["MoCo"] == 0.220
    assert "ucf_rc" not in next(r for r in a if r.name.startswith("None")).results  # unreadable


def test_the_zoo_results_files_share_the_format():
    for path in sorted((ROOT / "recipes" / "zoo" / "results").glob("*.yaml")):
        if path.name != "settings.yaml":
            assert report.load_published(path), path.name


def fake_run(tmp_path: Path, synthetic: bool) -> tuple[Plan, list[Outcome]]:
    chosen = [BY_KEY[k] for k in ("ucf101_1k", "ucf_rc", "charades")]
    plan = Plan(tmp_path, None if synthetic else "/w/ckpt.pt", synthetic, chosen, {}, {}, {})
    metrics = {"ucf101_1k": {"top1": 71.25, "top5": 90.0}, "ucf_rc": {"mae": 0.1234}}
    outcomes = [Outcome(s, tmp_path / s.key, "completed", metrics.get(s.key, {})) for s in chosen]
    outcomes[-1].status, outcomes[-1].error = "failed", "charades: folder /x not found"
    return plan, outcomes


@pytest.mark.slow  # matplotlib: about 2 s
def test_the_report_puts_this_checkpoint_beside_the_published_numbers(tmp_path):
    plan, outcomes = fake_run(tmp_path, synthetic=False)
    out = report.write_report(plan, outcomes)
    text = out.markdown.read_text()
    lines = text.splitlines()
    assert "|  | UCF 10^3 | UCF-RC ↓ | Charades |" in lines
    assert "| **this checkpoint** | **71.2** | **0.123** | – |" in lines
    assert "| GDT [1] | 77.8 | 0.137 | 8.5 |" in lines  # ECCV'22 table
    assert "| None (random init) [1] | 43.1 | – | 7.9 |" in lines  # an unreadable cell stays empty
    assert "| SIGMA-DINO (ViT-B) [3] | 86.0 | 0.169 | 23.3 |" in lines
    assert "1. Thoker et al., ECCV 2022 (SEVERE), benchmark table" in text
    assert (
        "4. SEVERE++ (arXiv 2504.05706)" in text
        and "(a secondary source, not authoritative)" in text
    )
    assert "charades: folder /x not found" in text  # the failure is reported
    assert "UCF101" not in lines[6]  # columns only for the settings that ran
    assert out.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.chart.stat().st_size > 5000
    saved = json.loads(out.results.read_text())
    assert saved["settings"]["ucf_rc"] == {
        "status": "completed", "metric": "mae", "value": 0.1234, "metrics": {"mae": 0.1234},
        "run_dir": str(tmp_path / "ucf_rc"), "error": "",
    }  # fmt: skip


def test_a_synthetic_report_keeps_the_real_numbers_apart(tmp_path):
    plan, outcomes = fake_run(tmp_path, synthetic=True)
    text = report.render_markdown(plan, outcomes, report.load_published())
    mine, published = text.split("## Published numbers of the real benchmark (reference)")
    assert "**not comparable**" in mine and "| **this checkpoint** (miniature) |" in mine
    assert "GDT [1]" not in mine and "| GDT [1] | 77.8 | 0.137 | 8.5 |" in published


# ---------------------------------------------------------------------------- end to end

TINY = [
    "train.max_steps=1",
    "data.num_workers=0",
    "data.dataset.size=32",
    "backbone.img_size=32",
    "eval.test_dataset.num_samples=4",
    "eval.test_clips=1",
    "log.progress_bar=false",
    "log.tensorboard=false",
]


@pytest.mark.slow
def test_synthetic_severe_end_to_end_then_resume_and_skip(tmp_path, capsys):
    out = tmp_path / "severe"
    assert main(["severe", "--synthetic", "--out", str(out), "none", *TINY]) == 0
    printed = capsys.readouterr().out
    for key in BENCHMARK:
        done = json.loads((out / key / "metrics.json").read_text())
        assert done["checkpoint"] is None and BY_KEY[key].metric in done["metrics"]
        assert f"{key:<10} {BY_KEY[key].metric}" in printed
    text = (out / "report.md").read_text()
    assert "| **this checkpoint** (miniature) |" in text and "GDT [1]" in text
    # chance on these test videos: 1 / classes (10, 20, 10, 20, 8, 8); all 4 counting videos
    # count 1 (a constant 1 is exact); 2 labels of 10 per multi-label video
    assert "| chance | 10.0 | 5.0 | 10.0 | 5.0 | 12.5 | 12.5 | 0.000 | 20.0 |" in text
    assert (out / "report.png").stat().st_size > 5000
    first = json.loads((out / "results.json").read_text())["settings"]

    # an interrupted setting: its training checkpoint is there, its results are not
    stamps = {k: (out / k / "metrics.json").stat().st_mtime_ns for k in BENCHMARK}
    (out / "ucf_rc" / "metrics.json").unlink()
    assert main(["severe", "--synthetic", "--out", str(out), "none", *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(skipped)") == 7 and "ucf_rc     mae" in printed
    assert "resumed from" in (out / "ucf_rc" / "train.log").read_text()
    for key in set(BENCHMARK) - {"ucf_rc"}:
        assert (out / key / "metrics.json").stat().st_mtime_ns == stamps[key], key
    again = json.loads((out / "results.json").read_text())["settings"]
    assert again["ssv2"]["metrics"] == first["ssv2"]["metrics"]

    # the same folder for another checkpoint: refused before anything runs
    other = tmp_path / "w.pt"
    torch.save({"format": "vssl", "model": {"backbone.x": torch.zeros(1)}}, other)
    assert main(["severe", "--synthetic", "--out", str(out), str(other), *TINY]) == 2
    assert "give another --out" in capsys.readouterr().err


def test_a_preempted_severe_run_exits_143_without_a_report(tmp_path, capsys):
    out = tmp_path / "severe"
    argv = ["-p", "kit.sigterm3", "severe", "--synthetic", "--settings", "ucf101_1k"]
    code = main([*argv, "--out", str(out), "none", *TINY, "train.max_steps=5"])
    assert code == 143, capsys.readouterr().err
    assert "preempted during ucf101_1k" in capsys.readouterr().out
    assert not (out / "report.md").exists() and not (out / "ucf101_1k" / "metrics.json").exists()


def test_a_sigterm_while_a_setting_ends_stops_before_the_next_setting(tmp_path, capsys):
    """The signal arrives after the trainer's last stop check (during the test pass): the
    setting is finished and kept, the next one does not start, and the command says so."""
    out = tmp_path / "severe"
    argv = ["-p", "kit.sigterm_at_end", "severe", "--synthetic", "--settings", "ucf101_1k,ssv2"]
    code = main([*argv, "--out", str(out), "none", *TINY])
    printed = capsys.readouterr().out
    assert code == 143, printed
    assert "SIGTERM" in printed and "run the same command again" in printed
    assert (out / "ucf101_1k" / "metrics.json").is_file() and not (out / "ssv2").exists()
    assert not (out / "report.md").exists()
