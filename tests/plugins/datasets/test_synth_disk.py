"""`vssl data synth`, the MAT-file reader/writer, and file datasets feeding the core's clip loader."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from test_file_datasets import open_dataset
from vssl_datasets import matfile
from vssl_datasets.files import DatasetLayoutError
from vssl_datasets.synth_disk import SynthSpec, class_names, write_layout
from vssl_datasets.ucf101 import ucf101
from vssl_datasets.ucfrep import ucfrep

from vssl_core.cli.main import main
from vssl_core.data.clips import ClipDataset, collate
from vssl_core.interfaces import ViewSpec

SMALL = ["--num-classes", "2", "--videos-per-class", "1", "--frames", "8", "--size", "16"]


def test_cli_writes_a_layout_its_dataset_reads(tmp_path, capsys, decoder):
    out = tmp_path / "ucf"
    assert main(["data", "synth", "--layout", "ucf101", str(out), *SMALL]) == 0
    assert "wrote 6 videos of 2 classes in the ucf101 layout" in capsys.readouterr().out
    ds = ucf101(root=str(out), subset="test", split=3, decoder=decoder)
    assert ds.classes == ["LineRightFast", "LineLeftFast"] and len(ds) == 2
    assert ds[1].video.read(range(8)).shape == (8, 16, 16, 3)


def test_cli_refuses_a_used_folder_and_bad_sizes(tmp_path, capsys):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    assert main(["data", "synth", "--layout", "ssv2", str(tmp_path / "used"), *SMALL]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    bad = ["data", "synth", "--layout", "ssv2", str(tmp_path / "new"), "--size", "33"]
    assert main(bad) == 2
    assert "even" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: an unknown layout lists the choices
        main(["data", "synth", "--layout", "ucf102", str(tmp_path / "x")])


def test_synth_videos_are_deterministic(tmp_path):
    spec = SynthSpec(num_classes=2, videos_per_class=1, frames=8, size=16)
    a = write_layout("video_list", tmp_path / "a", spec)
    b = write_layout("video_list", tmp_path / "b", spec)
    assert a == b
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def files(root) -> dict[str, bytes]:
    return {
        str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()
    }


def test_writer_processes_and_one_subset_write_the_same_files(tmp_path):
    """Encoding in worker processes writes the same files; writing only the train subset (the
    end-to-end benchmark's Kinetics-like set) writes exactly the full layout's train files."""
    spec = SynthSpec(num_classes=3, videos_per_class=2, frames=8, size=16)
    full = write_layout("kinetics400", tmp_path / "full", spec)
    assert write_layout("kinetics400", tmp_path / "par", spec, workers=2) == full
    assert files(tmp_path / "par") == files(tmp_path / "full")
    train = write_layout("kinetics400", tmp_path / "train", spec, subsets=["train"], workers=2)
    assert train == {rel: v for rel, v in full.items() if rel.startswith("train/")}
    want = {k: v for k, v in files(tmp_path / "full").items() if "train" in k}
    assert len(want) == 7 and files(tmp_path / "train") == want  # 6 videos and train.csv
    write_layout("video_list", tmp_path / "val", spec, subsets=["val"])
    names = class_names("video_list", 3)
    videos = [f"videos/val/{n}_{k:03d}.mp4" for n in names for k in (0, 1)]
    assert sorted(files(tmp_path / "val")) == sorted(["classes.txt", "val.csv", *videos])


def test_subsets_and_workers_are_checked(tmp_path, capsys):
    spec = SynthSpec(num_classes=2, videos_per_class=1, frames=8, size=16)
    with pytest.raises(ValueError, match="the ucf101 layout is written whole"):
        write_layout("ucf101", tmp_path / "a", spec, subsets=["train"])
    with pytest.raises(ValueError, match=r"subsets \['training'\]: the kinetics400 layout has train, val, test"):  # fmt: skip
        write_layout("kinetics400", tmp_path / "b", spec, subsets=["training"])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        write_layout("kinetics400", tmp_path / "c", spec, workers=0)
    out = tmp_path / "k400"
    argv = ["data", "synth", "--layout", "kinetics400", str(out), *SMALL]
    assert main([*argv, "--subsets", "train", "--workers", "2"]) == 0
    assert "wrote 2 videos of 2 classes in the kinetics400 layout" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "annotations").iterdir()) == ["train.csv"]


def test_ucfrep_videos_really_repeat(tmp_path, decoder):
    """The frames one cycle apart match, so a counting model has something real to count."""
    spec = SynthSpec(num_classes=2, videos_per_class=1, frames=16, size=32)  # no stamp
    write_layout("ucfrep", tmp_path, spec)
    ds = ucfrep(root=str(tmp_path), subset="val", decoder=decoder)
    for i in range(len(ds)):
        ann, video = ds.annotation(i), ds[i].video
        cycle = int(ann.bounds_N[1] - ann.bounds_N[0])
        frames = video.read([1, 1 + cycle, 1 + cycle // 2]).astype(np.int16)
        same = np.abs(frames[0] - frames[1]).mean()
        other = np.abs(frames[0] - frames[2]).mean()
        assert other > 3 * same, (same, other)  # lossy 4:2:0 coding keeps `same` above 0


@pytest.mark.parametrize(
    ("layout", "subset", "label_dtype"),
    [
        ("ucf101", "train", torch.long),
        ("charades", "train", torch.float32),
        ("ucfrep", "train", torch.float32),
    ],
)
def test_clip_loader_collates_every_task(synth, decoder, layout, subset, label_dtype):
    ds = open_dataset(synth, decoder, layout, subset=subset)
    clips = ClipDataset(ds, ViewSpec(frames=4, crop_size=16, stride=2), seed=0)
    batch = collate([clips[(0, i)] for i in range(3)])
    assert batch.clips[0].shape == (3, 3, 4, 16, 16) and batch.label.dtype == label_dtype
    expected = [ds.label(i) for i in range(3)]
    assert np.allclose(batch.label.numpy(), np.asarray(expected, dtype=np.float64))


# ------------------------------------------------------------------------------ MAT files


def test_mat_roundtrip_compressed_and_plain(tmp_path):
    value = {
        "duration": 120.0,
        "temporal_bound": np.array([[3.0], [40.0], [75.0]]),
        "offsets": np.arange(6.0).reshape(2, 3),
        "name": "v_Foo_g01_c01",
    }
    for compress in (True, False):
        path = tmp_path / f"x{compress}.mat"
        matfile.savemat(str(path), {"label": value, "n": 7.0}, compress=compress)
        got = matfile.loadmat(str(path))
        assert got["n"].shape == (1, 1) and got["label"]["name"] == "v_Foo_g01_c01"
        assert np.array_equal(got["label"]["offsets"], value["offsets"])
        assert got["label"]["temporal_bound"].shape == (3, 1)


def _element(mtype: int, payload: bytes) -> bytes:
    return struct.pack("<II", mtype, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def test_mat_reads_matlab_narrowed_and_small_elements(tmp_path):
    """MATLAB stores integer-valued doubles as uint8 and packs <= 4-byte data into the tag."""
    body = (
        _element(6, struct.pack("<II", 6, 0))  # array flags: double class
        + _element(5, struct.pack("<ii", 1, 3))  # dims 1x3
        + struct.pack("<I", (1 << 16) | 1) + b"x\0\0\0"  # small element: name "x"
        + struct.pack("<I", (3 << 16) | 2) + bytes([2, 3, 250]) + b"\0"  # small: 3 x uint8
    )  # fmt: skip
    packed = zlib.compress(_element(14, body))
    header = b"MATLAB 5.0 MAT-file".ljust(116) + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    path = tmp_path / "m.mat"
    path.write_bytes(header + struct.pack("<II", 15, len(packed)) + packed)
    x = matfile.loadmat(str(path))["x"]
    assert x.dtype == np.float64 and x.tolist() == [[2.0, 3.0, 250.0]]


def test_mat_refuses_hdf5_and_non_mat_files(tmp_path):
    v73 = tmp_path / "v73.mat"
    v73.write_bytes(b"MATLAB 7.3 MAT-file".ljust(128, b" "))
    with pytest.raises(matfile.MatFileError, match="-v7"):
        matfile.loadmat(str(v73))
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"\0" * 200)
    with pytest.raises(matfile.MatFileError, match="not a level-5"):
        matfile.loadmat(str(junk))


def test_ucfrep_annotation_without_label_struct_is_named(tmp_path):
    (tmp_path / "annotations" / "train").mkdir(parents=True)
    (tmp_path / "UCF-101").mkdir()
    bad = tmp_path / "annotations" / "train" / "v_Foo_g01_c01.mat"
    matfile.savemat(str(bad), {"other": 1.0})
    with pytest.raises(DatasetLayoutError, match="v_Foo_g01_c01.mat has no struct 'label'"):
        ucfrep(root=str(tmp_path))


def test_ucfrep_reads_severe_frame_folders(synth, decoder, tmp_path):
    """SEVERE's imgs/<subset>/<Class>/<video>/image_00001.jpg dumps give the same frames."""
    from vssl_decoders.frames import FrameFolderDecoder

    from vssl_core.data.video_writer import read_frame_index, write_frame_folder

    avi = open_dataset(synth, decoder, "ucfrep", subset="val")
    for i in range(len(avi)):
        whole = decoder.open(avi.video_path(i))
        action = os.path.basename(os.path.dirname(avi.video_path(i)))
        folder = tmp_path / "imgs" / "val" / action / avi.records[i].video_id
        write_frame_folder(folder, whole.read(range(whole.num_frames)), "image_{:05d}.jpg")
    frames = FrameFolderDecoder(pattern="image_{:05d}.jpg", start_index=1, source_fps=25.0)
    root = synth("ucfrep").root
    ds = ucfrep(
        root=str(root),
        subset="val",
        video_format="frames",
        videos=str(tmp_path / "imgs"),
        decoder=frames,
    )
    assert [r.segment for r in ds.records] == [r.segment for r in avi.records]
    for i in (0, len(ds) - 1):
        first, last = ds.records[i].segment
        assert os.path.isdir(ds.video_path(i)) and ds[i].video.num_frames == last - first + 1
        assert read_frame_index(ds[i].video.read([0])[0]) == first
