"""benchmarks/decoder_speed.py: every row of the "Decoders alone" table in docs/performance.md
is measured, and the reads it times return exactly the frames they ask for."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kit.optional import installed

from vssl_core.data.video_writer import read_frame_index

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "decoder_speed.py"
SMALL = {"videos": 2, "seconds": 3.0, "rounds": 2}  # what --small sets


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One --small run in a process of its own: importing decord here would break PyAV's VP9
    encoder for the tests that run after these (see tests/plugins/decoders/decoder_kit.py)."""
    out = tmp_path_factory.mktemp("decoder_speed")
    argv = [sys.executable, str(SCRIPT), "--small", "--data", str(out / "data")]
    argv += ["--json", str(out / "speed.json")]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    return out / "data", json.loads((out / "speed.json").read_text()), run.stdout


def test_every_row_is_measured_on_one_thread_with_positive_numbers(decoder_speed, smoke):
    _, payload, stdout = smoke
    rows = payload["rows"]
    assert list(rows) == list(decoder_speed.ROWS)
    decord_installed = installed("decord")
    for key, row in rows.items():
        if "skipped" in row:  # only decord's, and with the reason printed
            assert key in decoder_speed.DECORD_ROWS and row["skipped"]
            assert f"decord rows: skipped ({row['skipped']})" in stdout
            continue
        assert key not in decoder_speed.DECORD_ROWS or decord_installed
        for clock in ("wall", "cpu", "busy"):
            assert len(row[clock]) == SMALL["rounds"]
            assert all(v > 0 and math.isfinite(v) for v in row[clock]), (key, clock, row)
        assert f"| {row['label']} | " in stdout
    if not decord_installed:
        assert all("skipped" in rows[k] for k in decoder_speed.DECORD_ROWS)
    if "skipped" not in rows["decord_clip"]:
        assert len(payload["ratios"]) == 2
        for ratio in payload["ratios"].values():
            for values in (ratio["wall"], ratio["cpu"]):
                assert len(values) == SMALL["rounds"] and all(v > 0 for v in values)
    assert {v for v in payload["threads"].values() if v is not None} == {1}


def test_timed_reads_return_the_frames_they_ask_for(decoder_speed, smoke, host):
    data, _, _ = smoke
    video = data / "keyint250" / "video_000.mp4"
    written = video.stat().st_mtime_ns
    paths = decoder_speed.make_data(data, SMALL["videos"], SMALL["seconds"])
    assert video.stat().st_mtime_ns == written, "a second run must reuse the test data"
    decoders, skipped = decoder_speed.build_decoders(host.registry, with_decord=False)
    assert skipped == "--no-decord" and set(decoders) == {"pyav", "frames"}
    num_frames = round(SMALL["seconds"] * decoder_speed.FPS)
    last = (
        num_frames - (decoder_speed.CLIP_FRAMES - 1) * decoder_speed.CLIP_STRIDE - 1
    )  # the latest start drawn
    for v in range(SMALL["videos"]):
        for name in ("keyint250", f"keyint{decoder_speed.SHORT_GOP}"):
            whole_THWC = np.stack(decoder_speed.pyav_sequential(paths[name][v]).frames)
            assert [read_frame_index(f) for f in whole_THWC] == list(range(num_frames))
            for start in (0, last // 2, last):
                indices = decoder_speed.clip_indices(start)
                clip_THWC = decoder_speed.open_and_read(
                    decoders["pyav"], paths[name][v], indices
                ).frames
                # vssl's seeking reader and a plain decode from the start: the same pixels
                np.testing.assert_array_equal(clip_THWC, whole_THWC[indices])
                jpeg_THWC = decoder_speed.open_and_read(
                    decoders["frames"], paths["frames"][v], indices
                )
                decoder_speed.check_frames(
                    "frames_clip", paths["frames"][v], jpeg_THWC.frames, indices
                )
    # the warm-up round's check fails on frames one step off
    with pytest.raises(SystemExit, match="returned frames"):
        decoder_speed.check_frames("pyav_clip", paths[name][v], whole_THWC[indices - 1], indices)
