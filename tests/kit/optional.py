"""Optional extras in tests: a test that needs one skips where it is not installed, and fails
where the environment says it must run (CI sets VSSL_REQUIRE=ffcv,decord), so that a broken
install of an extra is never a silent skip.

Import optional libraries through :func:`import_optional` inside the test module (after any
plain imports), never with a bare module-level ``import``: that stops collection of the whole
suite where the extra is absent (tests/core/test_optional_imports.py checks it).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest

# the module a test imports -> the extra (pyproject.toml) that installs it
EXTRA_OF = {
    "ffcv": "ffcv",
    "cv2": "ffcv",
    "numba": "ffcv",
    "decord": "decord",
    "torchcodec": "torchcodec",
}


def installed(module: str) -> bool:
    """Whether ``module`` is installed, without importing it (importing decord would load its
    FFmpeg into the test process). A namespace package is not an installed library: with
    tests/plugins on sys.path (pytest puts test folders there), the test folder
    tests/plugins/ffcv/ is importable as a namespace package `ffcv`."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def required() -> set[str]:
    """The modules or extras named in VSSL_REQUIRE."""
    return {n.strip() for n in os.environ.get("VSSL_REQUIRE", "").split(",") if n.strip()}


def is_required(module: str) -> bool:
    names = required()
    return module in names or EXTRA_OF.get(module, module) in names


def import_optional(module: str) -> ModuleType:
    """``module``, or skip the calling test module where it is not installed; where VSSL_REQUIRE
    names it (or its extra), an import error fails the test instead."""
    extra = EXTRA_OF.get(module, module)
    if is_required(module) or installed(module):
        return importlib.import_module(module)
    pytest.skip(
        f"the {extra} extra is not installed (pip install 'vssl[{extra}]')",
        allow_module_level=True,
    )
