"""Synthetic datasets written to disk once per test session, in every real dataset's layout."""

from __future__ import annotations

import pytest
from synth_kit import TINY, Synth
from vssl_datasets.synth_disk import write_layout
from vssl_decoders.pyav import PyAVDecoder


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """``synth(layout)``: that layout written with TINY, once per session; do not modify it."""
    base = tmp_path_factory.mktemp("synth")
    cache: dict[str, Synth] = {}

    def get(layout: str) -> Synth:
        if layout not in cache:
            root = base / layout
            cache[layout] = Synth(root, write_layout(layout, root, TINY))
        return cache[layout]

    return get


@pytest.fixture(scope="session")
def decoder() -> PyAVDecoder:
    return PyAVDecoder()
