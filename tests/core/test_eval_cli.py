"""`vssl eval RECIPE checkpoint=PATH`, in-process, on tiny versions of the synthetic recipes."""

import json
from pathlib import Path

import pytest
import torch

from vssl_core.cli.eval_cmd import expand_checkpoint
from vssl_core.cli.main import main
from vssl_core.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BACKBONE = {"name": "cnn3d_small", "img_size": 32, "num_frames": 4, "width": 4}


def tiny(tmp_path: Path, test_samples: int = 6) -> list[str]:
    return [
        f"run.output_root={tmp_path / 'runs'}",
        "data.num_workers=0",
        "data.dataset={name: moving_shapes, num_samples: 16, num_classes: 4, num_frames: 8, size: 32}",
        f"eval.test_dataset={{name: moving_shapes, num_samples: {test_samples}, num_classes: 4, num_frames: 8, size: 32, seed: 1}}",
        "backbone.img_size=32",
        "backbone.num_frames=4",
        "backbone.width=4",
        "batch.global_size=8",
        "eval.test_clips=2",
        "log.progress_bar=false",
        "log.tensorboard=false",
    ]


@pytest.fixture
def pretrained(host, tmp_path) -> Path:
    """A vssl checkpoint whose objective holds a cnn3d_small under ``backbone.``."""
    torch.manual_seed(123)
    factory = host.registry.get("backbone", "cnn3d_small").factory
    backbone = factory(**{k: v for k, v in BACKBONE.items() if k != "name"})
    path = tmp_path / "pretrained.pt"
    model = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    torch.save(
        {"format": "vssl", "step": 7, "model": model, "recipe": {"backbone": BACKBONE}}, path
    )
    return path


def test_checkpoint_shorthand_sets_the_backbone_checkpoint_only():
    out = expand_checkpoint(["checkpoint=a/b.pt", "checkpoint.every_steps=5", "train.epochs=1"])
    assert out == [
        "objective.backbone_checkpoint=a/b.pt",
        "checkpoint.every_steps=5",
        "train.epochs=1",
    ]


def test_a_recipe_without_a_protocol_is_refused_with_the_fix(tiny_recipe, capsys):
    assert main(["eval", str(tiny_recipe)]) == 2
    assert "has no eval.protocol" in capsys.readouterr().err


@pytest.mark.slow
def test_linear_eval_end_to_end(pretrained, tmp_path, capsys):
    recipe = ROOT / "recipes" / "eval" / "synthetic_linear.yaml"
    code = main(
        ["eval", str(recipe), f"checkpoint={pretrained}", "train.epochs=2", *tiny(tmp_path)]
    )
    assert code == 0, capsys.readouterr().err
    assert "top1" in capsys.readouterr().out
    run_dir = tmp_path / "runs" / "eval_linear"
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["protocol"] == "linear" and result["checkpoint"] == str(pretrained)
    assert result["selected"]["rule"] == "best" and result["selected"]["step"] in (2, 4)
    assert set(result["metrics"]) == {"top1", "top5", "mean_class_top1", "mean_class_top5"}
    assert result["views"]["clips"] == 2 and result["num_videos"] == 6 and result["num_failed"] == 0
    rows = [json.loads(li) for li in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(6))
    assert [r["label"] for r in rows] == [i % 4 for i in range(6)]
    assert all(
        len(r["scores"]) == 4 and r["prediction"] == max(range(4), key=r["scores"].__getitem__)
        for r in rows
    )
    val = [json.loads(li) for li in (run_dir / "val_metrics.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [2, 4]  # one selection pass per epoch
    resolved = (run_dir / "recipe.yaml").read_text()
    assert "num_classes: 4" in resolved and "task: classification" in resolved
    # the frozen backbone of the evaluated model is the checkpoint's, bit for bit
    pre = torch.load(pretrained, weights_only=True)["model"]
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(last[k], v) for k, v in pre.items())


@pytest.mark.slow
def test_knn_of_the_training_set_against_itself_is_perfect(tmp_path, capsys):
    recipe = ROOT / "recipes" / "eval" / "synthetic_knn.yaml"
    same = "eval.test_dataset={name: moving_shapes, num_samples: 16, num_classes: 4, num_frames: 8, size: 32, seed: 0}"
    code = main(["eval", str(recipe), *tiny(tmp_path), same, "eval.protocol.k=1"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "runs" / "eval_knn" / "metrics.json").read_text())
    assert result["k"] == 1 and result["num_train_videos"] == 16
    assert result["metrics"]["top1"] == pytest.approx(100.0)  # each video finds itself
    assert main(["eval", str(recipe), *tiny(tmp_path), same]) == 2  # never overwritten
    assert "already holds an evaluation" in capsys.readouterr().err


@pytest.mark.slow
def test_finetune_keeps_the_last_model_when_asked(pretrained, tmp_path, capsys):
    recipe = ROOT / "recipes" / "eval" / "synthetic_finetune.yaml"
    args = [
        "eval",
        str(recipe),
        f"checkpoint={pretrained}",
        "train.max_steps=2",
        *tiny(tmp_path, 4),
    ]
    assert main([*args, "eval.protocol.select=last"]) == 2  # the recipe's select_every_epochs
    assert "select_every_epochs only apply with select: best" in capsys.readouterr().err
    code = main([*args, "eval.protocol.select=last", "eval.protocol.select_every_epochs=null"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "runs" / "eval_finetune"
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["selected"] == {"rule": "last", "step": 2}
    assert not (run_dir / "checkpoints" / "best.pt").exists()
    pre = torch.load(pretrained, weights_only=True)["model"]
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    assert any(not torch.equal(last[k], v) for k, v in pre.items() if v.is_floating_point())


@pytest.mark.slow
def test_a_preempted_evaluation_resumes_with_its_best_model(pretrained, tmp_path):
    from kit.faults import SigtermAt

    from vssl_core.build import build
    from vssl_core.config import load_config
    from vssl_core.plugins import load_plugins

    recipe = ROOT / "recipes" / "eval" / "synthetic_linear.yaml"
    args = [f"objective.backbone_checkpoint={pretrained}", "train.epochs=2", *tiny(tmp_path)]

    def evaluate(host, *extra):
        config = load_config(recipe, [*args, *extra], host)
        return build(host.registry, "protocol", config.data["eval"]["protocol"]).run(config, host)

    stopped = evaluate(load_plugins(extra=[("sigterm", SigtermAt(2))]))
    run_dir = tmp_path / "runs" / "eval_linear"
    assert stopped.status == "preempted" and not (run_dir / "metrics.json").exists()
    assert (run_dir / "checkpoints" / "best.pt").is_file()  # kept at the end of epoch 1
    resumed = evaluate(load_plugins(), "resume=true")
    assert resumed.status == "completed" and set(resumed.metrics) >= {"top1"}
    val = [json.loads(li) for li in (run_dir / "val_metrics.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [2, 4]
    selected = json.loads((run_dir / "metrics.json").read_text())["selected"]
    best = max(val, key=lambda v: v["top1"])  # the first of equals wins: strictly better only
    assert selected["step"] == best["step"] and selected["value"] == best["top1"]


def test_a_preempted_eval_command_exits_143_so_drivers_do_not_take_it_for_finished(
    pretrained, tmp_path, capsys
):
    recipe = ROOT / "recipes" / "eval" / "synthetic_linear.yaml"
    argv = ["-p", "kit.sigterm3", "eval", str(recipe), f"checkpoint={pretrained}"]
    code = main([*argv, "train.epochs=2", *tiny(tmp_path)])
    assert code == 143, capsys.readouterr().err
    assert "preempted; continue with resume=true" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "eval_linear" / "metrics.json").exists()


def test_eval_builds_the_backbone_the_checkpoint_was_trained_with(pretrained, tmp_path, caplog):
    """synthetic_knn.yaml's backbone is a cnn3d_small of width 16; the checkpoint's has width 4:
    its stored recipe decides (as in vssl severe), and the command says so."""
    recipe = ROOT / "recipes" / "eval" / "synthetic_knn.yaml"
    data = [a for a in tiny(tmp_path) if not a.startswith("backbone.")]
    with caplog.at_level("INFO", logger="vssl.eval"):
        assert main(["eval", str(recipe), f"checkpoint={pretrained}", *data]) == 0
    assert "backbone from the checkpoint's recipe: cnn3d_small" in caplog.text
    resolved = (tmp_path / "runs" / "eval_knn" / "recipe.yaml").read_text()
    assert "width: 4" in resolved


def test_an_explicit_backbone_still_wins_and_is_named(pretrained, host):
    from vssl_core.cli.eval_cmd import with_checkpoint_backbone

    recipe = str(ROOT / "recipes" / "eval" / "synthetic_knn.yaml")
    given = [f"objective.backbone_checkpoint={pretrained}", "backbone={name: r3d_18}"]
    overrides, which = with_checkpoint_backbone(recipe, given, host)
    assert overrides[0].startswith("backbone=") and overrides[1:] == given  # the user's last
    assert which.startswith("backbone from the command line; the checkpoint's recipe has")
    partial = [f"objective.backbone_checkpoint={pretrained}", "backbone.width=8"]
    assert "with backbone.width=8" in with_checkpoint_backbone(recipe, partial, host)[1]
    bare = Path(pretrained).with_name("bare.pt")
    torch.save({"conv.weight": torch.zeros(1)}, bare)  # not a vssl checkpoint: the recipe's
    assert (
        "stores no backbone spec"
        in with_checkpoint_backbone(recipe, [f"objective.backbone_checkpoint={bare}"], host)[1]
    )
