"""The optional backends (decord, torchcodec): clear errors when missing, refusals where wrong."""

from __future__ import annotations

import sys

import pytest
from decoder_kit import backend_available
from vssl_decoders import common

from vssl_core.build import build
from vssl_core.interfaces import VideoDecodeError

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)


@pytest.mark.parametrize("name", ["decord", "torchcodec"])
def test_building_without_the_library_names_the_extra(host, monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail as if not installed
    with pytest.raises(
        ImportError, match=rf"needs the {name} package.*pip install 'vssl\[{name}\]'"
    ):
        build(host.registry, "decoder", {"name": name})


@pytest.mark.parametrize("name", ["decord", "torchcodec"])
def test_a_library_that_fails_to_load_is_reported_as_such(host, monkeypatch, name):
    def broken(module: str):
        raise OSError("libnvrtc.so.13: cannot open shared object file")

    monkeypatch.setattr(common.importlib, "import_module", broken)
    with pytest.raises(ImportError, match=rf"{name} is installed but failed to load .*libnvrtc"):
        build(host.registry, "decoder", {"name": name})


@pytest.mark.skipif(not backend_available("decord"), reason="decord not installed")
@pytest.mark.parametrize("container", ["avi", "mpegts_start_1s", "raw_h264"])
def test_decord_refuses_files_it_would_read_wrongly(host, videos, container):
    decoder = build(host.registry, "decoder", {"name": "decord"})
    with pytest.raises(VideoDecodeError, match="decord returns wrong frames .* use decoder pyav"):
        decoder.open(str(videos[container]))
