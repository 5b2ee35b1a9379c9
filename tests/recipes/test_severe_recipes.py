"""recipes/severe: one recipe per SEVERE setting (plus UCF101 and HMDB51), faithful to the spec's
schedules (contrastive-and-severe.md §6.4-6.7); the dataset root is the only thing to set. And
the synthetic miniature, recipes/severe/synthetic: the four SEVERE factors on moving_shapes."""

from pathlib import Path

import numpy as np
import pytest
from vssl_datasets.synth_disk import SynthSpec, write_layout
from vssl_eval.session import prepare
from vssl_eval.severe import BENCHMARK, BY_KEY, SETTINGS

from vssl_core.config import load_config
from vssl_core.recipe import compose_recipe
from vssl_core.schema import RecipeError

SEVERE = Path(__file__).resolve().parents[2] / "recipes" / "severe"
REAL = sorted(SEVERE.glob("*.yaml"))
MINI = sorted(p for p in (SEVERE / "synthetic").glob("*.yaml") if p.name != "base.yaml")
FRAGMENTS = [SEVERE / "base" / "finetune_r2plus1d.yaml", SEVERE / "synthetic" / "base.yaml"]

# setting: vssl epochs, milestones, select every (= SEVERE's clips per video), select clips,
# per-class subset, SEVERE's epochs and milestones (spec §6.4's table)
SCHEDULES = {
    "ssv2": (44, [24, 34, 40], 2, 1, None, 22, [12, 17, 20]),
    "gym99": (160, [60, 100, 140], 10, 3, None, 16, [6, 10, 14]),
    "ucf101_1k": (160, [60, 100, 140], 10, 5, 10, 16, [6, 10, 14]),
    "gym99_1k": (160, [60, 100, 140], 10, 3, 11, 16, [6, 10, 14]),
    "fx_s1": (180, [70, 120, 160], 10, 5, None, 18, [7, 12, 16]),
    "ub_s1": (180, [70, 120, 160], 10, 3, None, 18, [7, 12, 16]),
    "ucf101": (160, [60, 100, 140], 10, 5, None, 16, [6, 10, 14]),
    "hmdb51": (160, [60, 100, 140], 10, 5, None, 16, [6, 10, 14]),
}


def load(path: Path, host, root="/data/somewhere", extra=()) -> dict:
    return load_config(path, [f"data.dataset.root={root}", *extra], host).data


def test_one_recipe_per_setting_and_every_fragment_composes(host):
    assert [p.stem for p in REAL] == sorted(s.key for s in SETTINGS)
    assert [p.stem for p in MINI] == sorted(BENCHMARK)
    for path in FRAGMENTS:
        assert compose_recipe(path, search_paths=host.recipe_search_paths()).data


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_the_dataset_root_is_required_and_the_only_thing_to_set(path, host):
    with pytest.raises(RecipeError, match=r"Missing mandatory value: data\.dataset\.root"):
        load_config(path, [], host)
    recipe = load(path, host, "/data/x")
    dataset, test = recipe["data"]["dataset"], recipe["eval"]["test_dataset"]
    assert dataset["name"] == test["name"] == BY_KEY[path.stem].dataset
    assert dataset["root"] == test["root"] == "/data/x"
    assert dataset["subset"] == "train" and test["subset"] != "train"
    header = path.read_text().split("\nrun:")[0].split("\ndefaults:")[0]
    assert f"vssl eval recipes/severe/{path.name} checkpoint=PATH data.dataset.root=" in header
    assert "§6." in header and "severe_published.yaml" in header


@pytest.mark.parametrize("key", list(SCHEDULES))
def test_action_recognition_recipes_follow_severe_finetuning(key, host):
    epochs, milestones, every, clips, per_class, severe_epochs, severe_ms = SCHEDULES[key]
    r = load(SEVERE / f"{key}.yaml", host)
    # SEVERE's epoch is clips_per_video passes: vssl epochs and milestones are SEVERE's x that
    assert r["train"]["epochs"] == severe_epochs * every == epochs
    assert r["schedule"]["milestones"] == [m * every for m in severe_ms] == milestones
    assert r["schedule"]["decay"] == "multistep" and r["schedule"]["gamma"] == 0.3
    assert r["eval"]["protocol"] == {
        "name": "finetune",
        "select": "best",
        "select_every_epochs": every,
        "select_clips": clips,
        "select_metric": None,
    }
    assert r["data"]["dataset"].get("per_class") == per_class
    if per_class:
        assert r["data"]["dataset"]["subsample_seed"] == 99999
    assert r["data"]["decoder"] == {
        "name": "pyav",
        "fps": 16,
        "threads": 1,
        "num_frames_from": "header",
    }
    assert r["backbone"]["name"] == "r2plus1d_18"
    o = r["objective"]
    assert (o["frames"], o["crop_size"], o["sampling_stride"]) == (32, 112, 1)
    assert o["augmentation"] == "random_resized_crop" and o["crop_scale"] == [0.08, 1.0]
    assert o["flip"] and o["color_jitter"] == [0.4, 0.4, 0.4, 0.2] and o["pad"] == "loop"
    assert o["head"] == {"name": "linear_head"}  # its defaults: PyTorch init, no dropout
    assert not o["freeze_backbone"] and o["backbone_checkpoint"] is None
    assert r["batch"]["global_size"] == 32
    opt = r["optim"]
    assert (opt["name"], opt["lr"], opt["lr_scaling"], opt["weight_decay"]) == (
        "adamw",
        1e-4,
        "none",
        0.0,
    )
    assert r["schedule"]["warmup_epochs"] == 0
    e = r["eval"]
    assert (e["test_clips"], e["test_crops"], e["test_short_side"]) == (10, 1, 128)
    assert e["aggregate"] == "mean" and r["run"]["seed"] == 100


def test_fine_grained_recipes_use_the_gym99_label_subsets(host):
    for key, label_set in (("fx_s1", "fx_s1"), ("ub_s1", "ub_s1"), ("gym99", "gym99")):
        r = load(SEVERE / f"{key}.yaml", host)
        assert r["data"]["dataset"]["label_set"] == r["eval"]["test_dataset"]["label_set"]
        assert r["data"]["dataset"]["label_set"] == label_set
    assert load(SEVERE / "ssv2.yaml", host)["eval"]["test_dataset"]["subset"] == "val"


def test_charades_follows_the_slowfast_recipe(host):
    r = load(SEVERE / "charades.yaml", host)
    o, opt, s, e = r["objective"], r["optim"], r["schedule"], r["eval"]
    assert (o["frames"], o["sampling_stride"], o["crop_size"]) == (32, 8, 112)
    assert o["head"]["dropout"] == 0.5 and o["head"]["init"] == "normal"
    assert o["mean"] == [0.45] * 3 and o["std"] == [0.225] * 3
    assert r["data"]["decoder"]["fps"] == 24
    assert (opt["name"], opt["lr"], opt["momentum"], opt["weight_decay"]) == (
        "sgd",
        0.0375,
        0.9,
        1e-4,
    )
    assert r["batch"]["global_size"] == 16 and r["train"]["epochs"] == 57
    assert (s["warmup_epochs"], s["warmup_start_lr"]) == (4, 1e-4)
    assert (s["decay"], s["milestones"], s["gamma"]) == ("multistep", [41, 49], 0.1)
    assert (e["test_clips"], e["test_crops"], e["test_short_side"]) == (10, 3, 112)
    assert e["aggregate"] == "max" and e["protocol"]["select"] == "last"


def test_ucf_rc_counts_over_the_whole_video_with_severes_optimiser(host):
    r = load(SEVERE / "ucf_rc.yaml", host)
    o, opt = r["objective"], r["optim"]
    assert o["temporal"] == "segments" and o["frames"] == 32 and o["crop_size"] == 112
    assert (opt["lr"], opt["weight_decay"], r["batch"]["global_size"]) == (5e-5, 1e-3, 32)
    assert r["schedule"]["decay"] == "constant" and r["train"]["epochs"] == 100
    assert r["eval"]["test_dataset"]["subset"] == "val"
    assert r["eval"]["protocol"]["select"] == "best"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """Every dataset layout the SEVERE recipes read, written small by `vssl data synth`."""
    base = tmp_path_factory.mktemp("severe_data")
    spec = SynthSpec(num_classes=4, videos_per_class=2, frames=16, size=32)
    names = {s.dataset for s in SETTINGS}
    return {name: write_layout(name, base / name, spec) and base / name for name in names}


@pytest.mark.slow
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.stem)
def test_every_recipe_builds_its_datasets_from_the_real_layout(path, host, layouts):
    """What `vssl eval` does before training: the train and test sets, task and classes."""
    setting = BY_KEY[path.stem]
    config = load_config(path, [f"data.dataset.root={layouts[setting.dataset]}"], host)
    _, data = prepare(config, host)
    want_classes = {"gym99": 99, "fx_s1": 11, "ub_s1": 15, "gym99_1k": 99}.get(path.stem)
    if want_classes:
        assert data.num_classes == want_classes
    task = {"ucf_rc": "counting", "charades": "multilabel"}.get(path.stem, "classification")
    assert data.task == task and config.data["objective"]["task"] == task
    assert len(data.train) > 0 and len(data.test) > 0


# ---------------------------------------------------------------------------- the miniature


def mini(key: str, host) -> tuple[dict, object, object]:
    from vssl_core.build import build_dataset

    config = load_config(SEVERE / "synthetic" / f"{key}.yaml", [], host)
    train = build_dataset(host.registry, config.data)
    test_spec = {"data": {"dataset": config.data["eval"]["test_dataset"], "decoder": {}}}
    return config.data, train, build_dataset(host.registry, test_spec)


@pytest.mark.parametrize("key", BENCHMARK)
def test_miniature_recipes_test_on_other_videos_of_the_same_task(key, host):
    recipe, train, test = mini(key, host)
    assert recipe["run"]["name"] == f"severe_mini_{key}"
    assert train.classes == test.classes and train.task == test.task
    assert (train.style, train.num_frames, train.size) == (test.style, test.num_frames, test.size)
    assert train.seed != test.seed, "the test videos are other videos"
    assert recipe["objective"]["name"] == "supervised" and recipe["backbone"]["name"]


def test_miniature_factors(host):
    pretrain = load_config(SEVERE.parents[1] / "recipes" / "rotation.yaml", [], host).data
    look = pretrain["data"]["dataset"]["style"]
    _, ssv2, _ = mini("ssv2", host)
    _, gym, _ = mini("gym99", host)
    assert ssv2.style != look and gym.style != look, "domain shift: another look"
    _, ucf, _ = mini("ucf101_1k", host)
    counts = np.bincount([ucf.label(i) for i in range(len(ucf))])
    assert set(counts) == {10}, "samples: 10 training videos per class"
    _, gym1k, _ = mini("gym99_1k", host)
    assert gym1k.classes == gym.classes and len(gym1k) == 10 * gym.num_classes
    for key, differ in (("fx_s1", "speed"), ("ub_s1", "path")):
        _, ds, _ = mini(key, host)
        assert set(ds.classes) <= set(gym.classes), "a subset of the Gym-99 miniature"
        for a, b in zip(ds.motions[::2], ds.motions[1::2], strict=True):
            fields = [f for f in ("path", "direction", "speed") if getattr(a, f) != getattr(b, f)]
            assert fields == [differ], f"{key}: {a.name} vs {b.name}"
    assert mini("ucf_rc", host)[1].task == "counting"
    assert mini("charades", host)[1].task == "multilabel"
