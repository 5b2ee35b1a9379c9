"""`vssl extract`: features of a dataset's or a folder's videos, with ids and labels."""

import numpy as np
import pytest
import torch

import vssl_core.api as vssl
from vssl_core.cli.main import main
from vssl_core.data.video_writer import write_video


@pytest.fixture
def trained(tiny_recipe):
    """A 2-step tiny run whose checkpoint stores its recipe."""
    result = vssl.train(tiny_recipe, {"train.max_steps": 2})
    return tiny_recipe.parent, result.run_dir / "checkpoints" / "last.pt"


def test_a_training_checkpoint_extracts_its_own_dataset(trained, capsys):
    root, ckpt = trained
    out = root / "feats.npz"
    args = ["extract", str(ckpt), "--out", str(out), "--clips", "2", "--crops", "3"]
    assert main([*args, "data.dataset.num_samples=6"]) == 0
    assert "6 videos x 6 views x 192 features (0 failed" in capsys.readouterr().out
    f = np.load(out)
    assert f["clip_features"].shape == (6, 6, 192) and f["video_features"].shape == (6, 192)
    np.testing.assert_allclose(f["video_features"], f["clip_features"].mean(axis=1), rtol=1e-6)
    assert list(f["ids"]) == [f"moving_shapes_{i:06d}" for i in range(6)]
    assert list(f["index"]) == list(range(6)) and f["labels"].shape == (6,)
    # the same numbers as the Python API gives for the same test views of video 0
    from vssl_eval.multiview import MultiViewClips, ViewPlan

    from vssl_core.build import build_dataset

    config = vssl.load_recipe(root / "tiny.yaml", {"data.dataset.num_samples": 6})
    dataset = build_dataset(vssl.plugin_host().registry, config.data)
    views_VCTHW = MultiViewClips(dataset, [0], ViewPlan(4, 1, 32, 32, 2, 3))[0]["views"]
    backbone, _ = vssl.load_backbone(ckpt)
    expected = vssl.clip_features(backbone, views_VCTHW).numpy()
    np.testing.assert_allclose(f["clip_features"][0], expected, rtol=1e-5, atol=1e-5)


def test_a_folder_of_videos_gets_a_class_per_sub_folder(trained, tmp_path, capsys):
    _, ckpt = trained
    rng = np.random.default_rng(0)
    for name in ("cats/a.mp4", "cats/b.mp4", "dogs/c.mp4"):
        (tmp_path / "videos" / name).parent.mkdir(parents=True, exist_ok=True)
        frames = rng.integers(0, 255, (8, 40, 48, 3), dtype=np.uint8)
        write_video(tmp_path / "videos" / name, frames, fps=10)
    out = tmp_path / "f.npz"
    assert (
        main(["extract", str(ckpt), "--videos", str(tmp_path / "videos"), "--out", str(out)]) == 0
    )
    f = np.load(out)
    assert list(f["ids"]) == ["cats/a.mp4", "cats/b.mp4", "dogs/c.mp4"]
    assert list(f["labels"]) == [0, 0, 1] and f["clip_features"].shape == (3, 1, 192)
    assert not torch.equal(
        torch.from_numpy(f["video_features"][0]), torch.from_numpy(f["video_features"][2])
    )


def test_a_foreign_checkpoint_without_a_recipe_says_what_to_give(trained, tmp_path, capsys):
    _, ckpt = trained
    weights = {
        k[len("backbone.") :]: v
        for k, v in torch.load(ckpt)["model"].items()
        if k.startswith("backbone.")
    }
    torch.save(
        {"model": {f"encoder.{k}": v for k, v in weights.items()}}, tmp_path / "official.pth"
    )
    assert main(["extract", str(tmp_path / "official.pth"), "--out", str(tmp_path / "f.npz")]) == 2
    assert (
        "stores no recipe with a dataset: give --recipe RECIPE or --videos DIR"
        in capsys.readouterr().err
    )
