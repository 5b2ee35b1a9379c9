"""init_from: a new run from a checkpoint's weights, with a fresh optimizer and schedule."""

import pytest
import torch
from kit.runs import read_metrics

from vssl_core.config import load_config
from vssl_core.convert import ConversionError
from vssl_core.engine.checkpoint import load_checkpoint
from vssl_core.engine.trainer import train
from vssl_core.plugins import load_plugins

MOCO = (
    "objective={name: moco, dim: 16, queue_size: 32}",
    "backbone={name: cnn3d_small, img_size: 32, num_frames: 4, width: 4}",
)


def run(recipe, *overrides):
    host = load_plugins()
    return train(load_config(recipe, list(overrides), host), host)


def state(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def test_the_same_objective_continues_from_all_its_weights_with_a_fresh_schedule(
    tiny_recipe, caplog
):
    first = run(tiny_recipe, "run.name=first", "train.max_steps=2")
    ckpt = first.run_dir / "checkpoints" / "last.pt"
    caplog.set_level("INFO", logger="vssl.train")
    second = run(tiny_recipe, "run.name=second", f"init_from={ckpt}", "train.max_steps=2")
    assert "initialized the whole videomae objective from" in caplog.text
    assert second.step == 2 and state(second.run_dir)["step"] == 2  # a new run: step 0 again
    rows = read_metrics(second.run_dir)
    fresh = read_metrics(run(tiny_recipe, "run.name=third", "train.max_steps=2").run_dir)
    assert rows[0]["lr"] == fresh[0]["lr"]  # the schedule starts over
    assert rows[0]["loss"] != fresh[0]["loss"]  # but from the trained weights
    # a fresh optimizer: its state counts the new run's 2 steps only
    assert state(second.run_dir)["optimizer"]["state"][0]["step"] == 2


def test_another_objective_takes_the_backbone_and_its_copies(tiny_recipe, caplog):
    cnn = "backbone={name: cnn3d_small, img_size: 32, num_frames: 4, width: 4}"
    rotation = run(
        tiny_recipe, "run.name=rot", cnn, "objective={name: rotation}", "train.max_steps=2"
    )
    ckpt = rotation.run_dir / "checkpoints" / "last.pt"
    caplog.set_level("INFO", logger="vssl.train")
    host = load_plugins()
    from vssl_core.engine.init_from import build_initialized

    config = load_config(tiny_recipe, [*MOCO, f"init_from={ckpt}"], host)
    model, line = build_initialized(host.registry, config.data, host)
    assert line.startswith(f"initialized the backbone from {ckpt}: loaded ")
    assert "fresh: key_backbone, key_projector, projector, queue" in line
    saved = state(rotation.run_dir)["model"]
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, saved[f"backbone.{k}"]), k
        assert torch.equal(model.key_backbone.state_dict()[k], v), k  # the twin copied it


def test_a_foreign_format_and_a_bad_file_are_handled(tiny_recipe, tmp_path, host):
    from vssl_core.build import build
    from vssl_core.engine.init_from import build_initialized

    backbone = build(host.registry, "backbone", load_config(tiny_recipe, [], host).data["backbone"])
    official = {"model": {f"encoder.{k}": v for k, v in backbone.state_dict().items()}}
    torch.save(official, tmp_path / "checkpoint-799.pth")  # the official VideoMAE layout
    config = load_config(tiny_recipe, [f"init_from={tmp_path / 'checkpoint-799.pth'}"], host)
    model, line = build_initialized(host.registry, config.data, host)
    assert "(videomae)" in line and "fresh: decoder, encoder_to_decoder, mask_token" in line
    for k, v in backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    with pytest.raises(ConversionError, match="does not exist"):
        run(tiny_recipe, f"init_from={tmp_path / 'missing.pt'}")


def test_a_resume_does_not_read_init_from(tiny_recipe, tmp_path):
    from kit import faults

    host = load_plugins(extra=[("sigterm", faults.SigtermAt(1))])
    first = run(tiny_recipe, "run.name=src", "train.max_steps=1")
    init = f"init_from={first.run_dir / 'checkpoints' / 'last.pt'}"
    cut = train(load_config(tiny_recipe, ["run.name=cut", init], host), host)
    assert cut.status == "preempted"
    (first.run_dir / "checkpoints" / "last.pt").unlink()  # gone: a resume must not need it
    resumed = run(tiny_recipe, "run.name=cut", init, "resume=true")
    assert resumed.status == "completed" and resumed.step == 8
