"""`vssl data pack` on a recipe's dataset, and `vssl train` from the packed .beton."""

import json

import pytest
import yaml
from kit.optional import import_optional

import_optional("ffcv")

from vssl_ffcv.dataset import FfcvVideoDataset  # noqa: E402

from vssl_core.cli.main import main  # noqa: E402

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)

SHAPES = {
    "name": "moving_shapes",
    "num_samples": 16,
    "num_classes": 4,
    "num_frames": 12,
    "size": 32,
}


@pytest.fixture(scope="module")
def beton(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pack")
    recipe = folder / "shapes.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"dataset": SHAPES}}))
    out = folder / "shapes.beton"
    code = main(
        [
            "data",
            "pack",
            str(recipe),
            str(out),
            "data.dataset.seed=3",
            "--workers",
            "1",
            "--short-side",
            "32",
        ]
    )
    return code, out


def test_data_pack_writes_the_recipes_dataset(beton, capsys):
    code, out = beton
    assert code == 0 and out.exists() and not out.with_name(out.name + ".failed.txt").exists()
    ds = FfcvVideoDataset(str(out))
    assert (len(ds), ds.num_classes, ds.short_side) == (16, 4, 32)
    assert [ds[i].label for i in range(4)] == [0, 1, 2, 3]  # moving_shapes labels index % classes


def test_data_pack_reports_recipe_mistakes(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"data": {"dataset": {**SHAPES, "num_sample": 3}}}))
    assert main(["data", "pack", str(recipe), str(tmp_path / "x.beton")]) == 2
    err = capsys.readouterr().err
    assert "data.dataset.num_sample: unknown key; did you mean 'num_samples'?" in err
    assert not (tmp_path / "x.beton").exists()


def train_from_beton(beton, tmp_path, name: str, *overrides: str) -> list[float]:
    recipe = {
        "run": {"name": "ffcv", "output_root": str(tmp_path)},
        "data": {"dataset": {"name": "ffcv_video", "path": str(beton[1])}, "num_workers": 1},
        "backbone": {"name": "cnn3d_small", "img_size": 32, "num_frames": 4, "width": 4},
        "objective": {"name": "rotation", "sampling_stride": 2, "augmentation": "multiscale_crop"},
        "batch": {"global_size": 4},
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "train": {"max_steps": 3},
        "log": {"every_steps": 1, "progress_bar": False, "tensorboard": False},
    }
    path = tmp_path / "ffcv.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), f"run.name={name}", *overrides]) == 0
    lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


@pytest.mark.slow  # compiles the loader and trains 3 steps
def test_train_from_a_beton(beton, tmp_path):
    losses = train_from_beton(beton, tmp_path, "ffcv")
    assert len(losses) == 3 and all(0 < x < 5 for x in losses)


@pytest.mark.slow
def test_the_device_feed_runs_the_ffcv_loader_in_its_thread_to_the_same_losses(beton, tmp_path):
    """The feed's thread drives ffcv's generator (and its decoding thread), and closes it."""
    plain = train_from_beton(beton, tmp_path, "plain", "data.device_feed=false")
    assert train_from_beton(beton, tmp_path, "fed", "data.device_feed=true") == plain
