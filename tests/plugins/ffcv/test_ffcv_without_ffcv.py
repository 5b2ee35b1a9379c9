"""Without ffcv installed, vssl still loads the plugin; using it names the extra to install."""

import sys

import pytest

from vssl_core.build import build
from vssl_core.cli.main import main

pytestmark = pytest.mark.extras  # CI runs it again with the optional extras (-m extras)


@pytest.fixture
def no_ffcv(monkeypatch):
    for name in [m for m in sys.modules if m == "ffcv" or m.startswith("ffcv.")] + ["ffcv"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import ffcv` now raises ImportError


def test_the_dataset_is_registered_and_building_it_names_the_extra(host, no_ffcv):
    assert host.registry.get("dataset", "ffcv_video").plugin == "ffcv"
    with pytest.raises(ImportError, match=r"needs ffcv.*`ffcv` extra.*libturbojpeg0-dev"):
        build(host.registry, "dataset", {"name": "ffcv_video", "path": "x.beton"})


def test_data_pack_says_how_to_install_ffcv(tmp_path, no_ffcv, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  dataset: {name: moving_shapes, num_samples: 2}\n")
    assert main(["data", "pack", str(recipe), str(tmp_path / "o.beton")]) == 2
    err = capsys.readouterr().err
    assert "vssl data pack needs ffcv" in err and "pip install --no-build-isolation" in err
