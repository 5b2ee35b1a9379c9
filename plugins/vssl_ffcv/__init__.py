"""vssl's fast data path on ffcv: pack a dataset into a .beton of JPEG frames
(``vssl data pack``), then train from it with the ``ffcv_video`` dataset.

Importing this package (and registering its components) never needs ffcv, so vssl works without
it; building an ffcv component without ffcv installed raises :class:`FfcvNotInstalledError`.
"""

from __future__ import annotations

INSTALL_HINT = (
    "install the `ffcv` extra: `apt-get install -y pkg-config libopencv-dev libturbojpeg0-dev` "
    "(ffcv 1.0.2 compiles against OpenCV and libjpeg-turbo), then "
    "`pip install --no-build-isolation 'vssl[ffcv]'` (or `pip install -e \".[ffcv]\"` in a checkout)"
)


class FfcvNotInstalledError(ImportError, ValueError):
    """ffcv (or numba / OpenCV) cannot be imported; the message says how to install them.

    A ValueError too, so that the CLI prints it as a one-line error rather than a traceback."""


def require_ffcv(what: str) -> None:
    """Raise :class:`FfcvNotInstalledError` naming ``what`` needed ffcv, unless it imports."""
    import torch

    threads = torch.get_num_threads()
    try:
        import cv2  # noqa: F401
        import ffcv.pipeline.compiler  # noqa: F401
        import numba  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: a shared library ffcv links is missing
        raise FfcvNotInstalledError(
            f"{what} needs ffcv, which cannot be imported ({exc}); {INSTALL_HINT}"
        ) from exc
    finally:
        torch.set_num_threads(threads)  # importing ffcv sets torch's thread count to 1
