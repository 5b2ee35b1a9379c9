"""`vssl data check`: every kind of bad file is found and classified, the quarantine list is
written in the agreed format, a crashing decoder is isolated, exit codes say clean or not.

This module is also the plugin the CLI tests load (``-p <this module>``): a dataset of listed
files and a minimal PyAV decoder, so the check is tested on real encoded files without
depending on the built-in decoder's choices."""

import os
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from vssl_core import component, hookimpl
from vssl_core.cli.main import main
from vssl_core.data.check import check_videos, summary_table, write_quarantine
from vssl_core.data.video_writer import write_video
from vssl_core.interfaces import VideoDecodeError, VideoSample

# ----------------------------------------------------------------------------- test plugin


class _AvVideo:
    """Frame count from the container header; frames decoded from the start on every read."""

    def __init__(self, path: str):
        self.path = path
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                self.num_frames, self.fps = stream.frames, float(stream.average_rate or 25)
        except (av.error.FFmpegError, IndexError) as exc:
            raise VideoDecodeError(f"{path}: {exc}") from exc

    def read(self, indices):
        if Path(self.path).name.startswith("crash"):
            os._exit(3)  # a decoder that takes its process down (as a segfault would)
        want, got = set(indices), {}
        try:
            with av.open(self.path) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i in want:
                        got[i] = frame.to_ndarray(format="rgb24")
                    if i >= max(indices):
                        break
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"{self.path}: {exc}") from exc
        if want - got.keys():
            raise VideoDecodeError(f"{self.path}: frame {min(want - got.keys())} does not decode")
        return np.stack([got[i] for i in indices])


@component("decoder")
class check_test_decoder:
    """PyAV, the simplest way (for tests)."""

    def open(self, path: str) -> _AvVideo:
        return _AvVideo(path)


@component("dataset")
class check_test_files:
    """The files listed in ``files`` under ``root`` (for tests)."""

    def __init__(self, root: str, files: list[str], decoder=None):
        self.root, self.files, self.decoder, self.num_classes = root, files, decoder, 1

    def __len__(self):
        return len(self.files)

    def video_path(self, index: int) -> str:
        return os.path.join(self.root, self.files[index])

    def __getitem__(self, index: int) -> VideoSample:
        return VideoSample(self.decoder.open(self.video_path(index)), 0, index)


@hookimpl
def vssl_register_components(registry, plugin):
    import sys

    registry.add_module(sys.modules[__name__], plugin)


# ----------------------------------------------------------------------------- bad files


def _frames(t: int) -> np.ndarray:
    return (
        np.repeat(np.linspace(0, 250, t, dtype=np.uint8)[:, None, None, None], 32, 1)
        .repeat(32, 2)
        .repeat(3, 3)
    )


def _write_faststart(path: Path, t: int) -> None:
    """An mp4 with its index (moov) before the data, so a cut file still promises t frames."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for frame_HWC in _frames(t):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame_HWC, format="rgb24")))
        container.mux(stream.encode(None))


# file -> expected problem (None: a good video)
EXPECTED = {
    "good.mp4": None,
    "short.mp4": "too_short",
    "missing.mp4": "missing",
    "zero.mp4": "empty",
    "garbage.mp4": "unreadable",
    "no_index.mp4": "unreadable",  # Kinetics' "moov atom not found"
    "cut.mp4": "truncated",
    "sub/good2.mp4": None,
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "good.mp4", _frames(48), fps=25)
    write_video(root / "sub" / "good2.mp4", _frames(40), fps=25)
    write_video(root / "short.mp4", _frames(8), fps=25)
    (root / "zero.mp4").write_bytes(b"")
    (root / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    data = (root / "good.mp4").read_bytes()  # moov at the end: cutting it loses the index
    (root / "no_index.mp4").write_bytes(data[: len(data) // 2])
    _write_faststart(root / "full.mp4", 48)
    data = (root / "full.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    return root


def test_check_classifies_each_kind_of_bad_file(videos):
    paths = [str(videos / name) for name in EXPECTED]
    reports = check_videos(paths, check_test_decoder(), workers=1, min_frames=16)
    assert {Path(r.path).relative_to(videos).as_posix(): r.problem for r in reports} == EXPECTED
    cut = reports[list(EXPECTED).index("cut.mp4")]
    assert 0 < cut.frames < 48 and f"{cut.frames} of 48 frames decode" in cut.detail
    table = summary_table(reports)
    assert "truncated          1" in table and "ok                 2" in table


def test_a_crashing_decoder_is_isolated_in_parallel_runs(videos, tmp_path):
    crash = tmp_path / "crash.mp4"
    crash.write_bytes((videos / "good.mp4").read_bytes())
    paths = [str(videos / "good.mp4"), str(crash), str(videos / "garbage.mp4")] * 2
    reports = check_videos(paths, check_test_decoder(), workers=2)
    assert [r.problem for r in reports] == [None, "unreadable", "unreadable"] * 2
    assert "crashed" in reports[1].detail and "exit code 3" in reports[1].detail


def test_quarantine_list_format(videos, tmp_path):
    paths = [str(videos / n) for n in ("good.mp4", "zero.mp4", "sub/good2.mp4")]
    reports = check_videos(paths, check_test_decoder())
    outside = check_videos(["/nowhere/x.mp4"], check_test_decoder())
    out = tmp_path / "q.txt"
    assert write_quarantine(out, reports + outside, root=videos, header="made by a test") == 2
    lines = out.read_text().splitlines()
    entries = [line for line in lines if line and not line.startswith("#")]
    assert entries == ["zero.mp4", "/nowhere/x.mp4"]  # relative to the root, else absolute
    assert "# empty: 0-byte file" in lines and lines[0] == "# made by a test"


def _recipe(tmp_path: Path, dataset: dict) -> Path:
    recipe = {"data": {"dataset": dataset, "decoder": {"name": "check_test_decoder"}}}
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.slow
def test_cli_writes_the_quarantine_list_and_exits_1(videos, tmp_path, capsys):
    recipe = _recipe(
        tmp_path, {"name": "check_test_files", "root": str(videos), "files": list(EXPECTED)}
    )
    out = tmp_path / "quarantine.txt"
    argv = ["-p", __name__, "data", "check", str(recipe), "--workers", "2", "--out", str(out)]
    assert main([*argv, "--min-frames", "16"]) == 1
    text = capsys.readouterr().out
    assert "checking 8 videos" in text and "unreadable         2" in text
    entries = [x for x in out.read_text().splitlines() if x and not x.startswith("#")]
    assert sorted(entries) == sorted(n for n, p in EXPECTED.items() if p)
    clean = [n for n, p in EXPECTED.items() if p is None]
    assert main([*argv[:4], str(recipe), f"data.dataset.files={clean}", "--workers", "1"]) == 0
    assert "ok                 2" in capsys.readouterr().out


def test_cli_on_a_dataset_without_files_says_there_is_nothing_to_check(tmp_path, capsys):
    path = tmp_path / "shapes.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": {"name": "moving_shapes"}}}))
    assert main(["data", "check", str(path)]) == 0
    assert "nothing to check" in capsys.readouterr().out


def test_cli_reports_a_bad_data_section(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": {"name": "moving_shapes", "sise": 3}}}))
    assert main(["data", "check", str(path)]) == 2
    assert "data.dataset.sise: unknown key; did you mean 'size'?" in capsys.readouterr().err


def test_the_builtin_pyav_decoder_gets_the_same_classes(videos, host):
    """The same files through the default decoder (loose on the cut file: a decoder may stop
    at the damage or refuse the file whole)."""
    decoder = host.registry.get("decoder", "pyav").factory()
    paths = [str(videos / name) for name in EXPECTED]
    got = {
        Path(r.path).relative_to(videos).as_posix(): r.problem
        for r in check_videos(paths, decoder, min_frames=16)
    }
    assert got.pop("cut.mp4") in ("truncated", "unreadable")
    assert got == {k: v for k, v in EXPECTED.items() if k != "cut.mp4"}


def test_data_check_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "vssl data check" in text and "--min-frames" in text and "quarantine" in text


def test_training_replaces_the_real_bad_files(videos, host):
    """The files the check flags, met by the loader instead: replaced, counted, named."""
    from vssl_core.data.clips import ClipDataset, collate
    from vssl_core.interfaces import ViewSpec

    decoder = host.registry.get("decoder", "pyav").factory()
    files = ["good.mp4", "garbage.mp4", "zero.mp4", "cut.mp4", "sub/good2.mp4"]
    dataset = check_test_files(str(videos), files, decoder)
    clips = ClipDataset(
        dataset, ViewSpec(frames=4, crop_size=16, stride=8), seed=0, max_failed_fraction=1.0
    )
    batch = collate([clips[(0, i)] for i in range(5)])
    assert set(batch.index.tolist()) <= {0, 4, 3}  # cut.mp4 may still give early clips
    assert batch.extra["decode_failures"] >= 2
    assert {"garbage.mp4", "zero.mp4"} <= {Path(p).name for p in batch.extra["decode_failed_paths"]}
