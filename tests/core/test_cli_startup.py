"""Every `vssl` command loads every plugin first: loading them must not import heavy libraries
that only some commands use (torchmetrics took ~1.8 s of each command, with transformers)."""

import subprocess
import sys

HEAVY = ("torchmetrics", "transformers", "matplotlib", "tensorboard", "fvcore.nn")


def test_loading_the_plugins_imports_no_heavy_library():
    code = (
        "import sys; from vssl_core.plugins import load_plugins; load_plugins(); "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
