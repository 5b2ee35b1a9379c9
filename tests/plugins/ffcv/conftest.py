"""Session fixtures for the ffcv tests: the stamped dataset (ffcv_kit), packed once."""

from __future__ import annotations

import pytest
from ffcv_kit import SIZE, StampedDataset
from kit.optional import import_optional


@pytest.fixture(scope="session")
def packed(tmp_path_factory):
    """(path of the .beton, PackReport) for the stamped dataset, short side = SIZE."""
    import_optional("ffcv")
    from vssl_ffcv.pack import pack_dataset

    out = tmp_path_factory.mktemp("ffcv") / "stamped.beton"
    report = pack_dataset(StampedDataset(), out, short_side=SIZE, quality=90, workers=2)
    return out, report
