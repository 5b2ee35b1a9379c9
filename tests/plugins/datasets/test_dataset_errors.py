"""Layout problems name the file and the fix; quarantine, missing videos and per-class subsets."""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter

import numpy as np
import pytest
from synth_kit import K, N
from test_file_datasets import FACTORIES, open_dataset
from vssl_datasets.files import DatasetLayoutError, read_quarantine, subsample_per_class
from vssl_datasets.synth_disk import SynthSpec, write_layout

# layout -> (its annotation folder, a file in it the dataset cannot do without)
ANNOTATIONS = {
    "ucf101": ("ucfTrainTestlist", "classInd.txt"),
    "hmdb51": ("testTrainMulti_7030_splits", "_test_split1.txt"),
    "kinetics400": ("annotations", "train.csv"),
    "ssv2": ("labels", "labels.json"),
    "gym99": ("annotations", "gym99_train.txt"),
    "charades": ("Charades", "Charades_v1_classes.txt"),
    "ucfrep": ("annotations", "train"),
    "video_list": (".", "train.csv"),
}


@pytest.mark.parametrize("layout", sorted(ANNOTATIONS))
def test_missing_root_names_the_folder_and_its_contents(tmp_path, layout):
    with pytest.raises(DatasetLayoutError, match=f"{tmp_path / 'nowhere'} does not exist") as e:
        FACTORIES[layout](root=str(tmp_path / "nowhere"))
    assert "root holds" in str(e.value) and f"--layout {layout}" in str(e.value)


@pytest.mark.parametrize("layout", sorted(ANNOTATIONS))
def test_missing_annotation_file_is_named(synth, tmp_path, layout):
    """A copy of the layout with its key annotation file removed: the error names that file."""
    folder, needed = ANNOTATIONS[layout]
    root = tmp_path / "copy"
    shutil.copytree(synth(layout).root / folder, root / folder)
    for path in list((root / folder).iterdir()):
        if path.name.endswith(needed):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    videos = {"kinetics400": None, "video_list": None}.get(layout, str(tmp_path))
    kwargs = {"videos": videos} if videos else {}
    if layout == "kinetics400":
        (root / "train").mkdir()
    with pytest.raises(DatasetLayoutError, match=needed.lstrip("_")) as e:
        FACTORIES[layout](root=str(root), **kwargs)
    assert "docs/datasets.md" in str(e.value)


def test_malformed_line_names_file_line_and_format(synth, tmp_path):
    ann = tmp_path / "lists"
    shutil.copytree(synth("ucf101").root / "ucfTrainTestlist", ann)
    with open(ann / "trainlist01.txt", "a") as f:
        f.write("NoSuchClass/v_NoSuchClass_g01_c01.avi 1\n")
    with pytest.raises(DatasetLayoutError, match=r"trainlist01.txt, line \d+: .*classInd.txt"):
        open_dataset(synth, None, "ucf101", annotations=str(ann))


def test_missing_videos_are_an_error_naming_them_or_skipped_with_a_count(synth, tmp_path, caplog):
    ann = tmp_path / "lists"
    shutil.copytree(synth("ucf101").root / "ucfTrainTestlist", ann)
    gone = [f"LineRightFast/v_LineRightFast_g09_c0{k}.avi" for k in (1, 2)]
    with open(ann / "trainlist01.txt", "a") as f:
        f.writelines(f"{g} 1\n" for g in gone)
    with pytest.raises(DatasetLayoutError, match=r"2 of 18 videos .* not on disk") as e:
        open_dataset(synth, None, "ucf101", annotations=str(ann))
    assert gone[0] in str(e.value) and "missing: skip" in str(e.value)
    with caplog.at_level(logging.WARNING):
        ds = open_dataset(synth, None, "ucf101", annotations=str(ann), missing="skip")
    assert len(ds) == 2 * N * K and [os.path.basename(p) for p in ds.missing] == [
        os.path.basename(g) for g in gone
    ]
    assert "2 of 18 videos" in caplog.text and gone[1] in caplog.text


def test_kinetics_skips_missing_videos_by_default_and_finds_class_folders(tmp_path, caplog):
    root = tmp_path / "k400"
    written = write_layout(
        "kinetics400", root, SynthSpec(num_classes=2, videos_per_class=2, frames=8, size=16)
    )
    train = sorted(p for p in written if p.startswith("train/"))
    os.remove(root / train[0])
    moved = root / "train" / "line left fast" / os.path.basename(train[1])  # crawler layout
    moved.parent.mkdir()
    os.rename(root / train[1], moved)
    with caplog.at_level(logging.WARNING):
        ds = FACTORIES["kinetics400"](root=str(root))
    assert len(ds) == 3 and ds.missing == [str(root / train[0])]
    assert "1 of 4 videos" in caplog.text
    assert str(moved) in {ds.video_path(i) for i in range(len(ds))}


def test_quarantine_skips_listed_videos(synth, tmp_path):
    full = open_dataset(synth, None, "ucf101", subset="test")
    root = synth("ucf101").root
    bad = [full.video_path(0), full.video_path(3)]
    qfile = tmp_path / "quarantine.txt"
    qfile.write_text(
        f"# written by vssl data check\n{os.path.relpath(bad[0], root)}  # moov atom not found\n"
        f"\n{bad[1]}\nUCF-101/NotInThisSubset/v_x.avi\n"
    )
    ds = open_dataset(synth, None, "ucf101", subset="test", quarantine=str(qfile))
    assert len(ds) == len(full) - 2 and ds.quarantined == bad
    assert not set(bad) & {ds.video_path(i) for i in range(len(ds))}
    with pytest.raises(DatasetLayoutError, match="vssl data check"):
        open_dataset(synth, None, "ucf101", quarantine=str(tmp_path / "none.txt"))


def test_read_quarantine_resolves_against_the_root(tmp_path):
    qfile = tmp_path / "q.txt"
    qfile.write_text("#c\n a/b.mp4 # why\n/abs/c d.mp4\n\n")
    assert read_quarantine(str(qfile)) == {"a/b.mp4", "/abs/c d.mp4"}
    assert read_quarantine(str(qfile), "/r") == {"/r/a/b.mp4", "/abs/c d.mp4"}


@pytest.mark.parametrize("layout", ["ucf101", "kinetics400", "gym99", "ssv2", "hmdb51"])
def test_per_class_subset_is_exact_and_deterministic(synth, layout):
    def chosen(seed: int) -> list[str]:
        ds = open_dataset(synth, None, layout, per_class=1, subsample_seed=seed)
        assert sorted(Counter(ds.label(i) for i in range(len(ds))).values()) == [1] * K
        return [ds.video_path(i) for i in range(len(ds))]

    assert chosen(0) == chosen(0)
    assert len({tuple(chosen(seed)) for seed in range(8)}) > 1  # the seed matters


def test_subsample_per_class_follows_severe_draw():
    labels = [0, 1, 0, 2, 0, 1, 0, 1, 2, 0]
    got = subsample_per_class(labels, 2, seed=99999)
    rng = np.random.RandomState(99999)
    expected = sorted(
        rng.choice([0, 2, 4, 6, 9], 2, replace=False).tolist()
        + rng.choice([1, 5, 7], 2, replace=False).tolist()
        + [3, 8]  # class 2 has only 2: taken whole, no draw
    )
    assert got == expected
    assert subsample_per_class(labels, 10, seed=1) == list(range(10))
    with pytest.raises(ValueError, match="per_class"):
        subsample_per_class(labels, 0, seed=1)


def test_a_dataset_without_decoder_says_how_to_get_one(synth):
    ds = open_dataset(synth, None, "video_list")
    assert ds.video_path(0).endswith(".mp4")  # paths need no decoder
    with pytest.raises(ValueError, match="data.decoder"):
        ds[0]


def test_bad_arguments_are_refused(synth):
    with pytest.raises(ValueError, match="split must be 1, 2 or 3"):
        open_dataset(synth, None, "ucf101", split=4)
    with pytest.raises(ValueError, match="test.json has no labels"):
        open_dataset(synth, None, "ssv2", subset="test")
    with pytest.raises(DatasetLayoutError, match="num_classes is 3"):
        open_dataset(synth, None, "video_list", num_classes=3)


def test_kinetics_test_csv_without_labels_is_not_a_subset_but_does_no_harm(tmp_path):
    root = tmp_path / "k400"
    write_layout(
        "kinetics400", root, SynthSpec(num_classes=2, videos_per_class=1, frames=8, size=16)
    )
    test_csv = root / "annotations" / "test.csv"
    rows = [line.split(",", 1)[1] for line in test_csv.read_text().splitlines()]
    test_csv.write_text("\n".join(rows) + "\n")  # DeepMind's 2017 test.csv: no label column
    assert FACTORIES["kinetics400"](root=str(root)).classes == ["line left fast", "line right fast"]
    with pytest.raises(DatasetLayoutError, match=r"test.csv has no column label"):
        FACTORIES["kinetics400"](root=str(root), subset="test")
