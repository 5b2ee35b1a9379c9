"""Session fixtures for the decoder tests: the stamped videos, written once."""

from __future__ import annotations

from pathlib import Path

import pytest
from decoder_kit import CONTAINERS, FPS, GOP, stamped_frames

from vssl_core.data.video_writer import write_video


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    frames = stamped_frames()
    paths = {}
    for name, spec in CONTAINERS.items():
        paths[name] = folder / f"{name}{spec['suffix']}"
        write_video(paths[name], frames, FPS, gop=GOP, start_time=spec.get("start_time", 0.0))
    return paths
