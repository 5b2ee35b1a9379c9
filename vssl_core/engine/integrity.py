"""A content checksum sealed into every checkpoint and verified on every load.

Why: torch.load does not check its zip records' CRCs, so one flipped bit inside a tensor of
``last.pt`` was loaded, trained on and written into every later checkpoint without a word. The
digest covers what the checkpoint holds (every tensor's dtype, shape and bytes; every other
value and key), not the file's bytes, so it is computed from the object being saved, with no
second pass over the file, and a flip that torch.load cannot even read is still reported as a
corrupt file (by the caller) rather than a checksum mismatch.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import torch

KEY = "integrity"  # where a checkpoint holds {"algorithm": ..., "digest": ...}
ALGORITHM = "sha256-content-v1"


class IntegrityError(ValueError):
    """The checkpoint's content does not match the digest it was saved with."""


def content_digest(obj: Any) -> str:
    """A hex digest of ``obj``'s content: dicts in order, lists/tuples, tensors, scalars."""
    h = hashlib.sha256()
    stack = [obj]
    while stack:  # iterative: a checkpoint's nesting is shallow, but never trust that
        node = stack.pop()
        if isinstance(node, torch.Tensor):
            _tensor(h, node)
        elif isinstance(node, dict):
            h.update(b"d%d:" % len(node))
            for key, value in reversed(list(node.items())):  # popped in insertion order
                stack.append(value)
                stack.append(_Key(key))
        elif isinstance(node, list | tuple):
            h.update(b"l%d:" % len(node) if isinstance(node, list) else b"t%d:" % len(node))
            stack.extend(reversed(node))
        elif isinstance(node, _Key):
            _scalar(h, node.key)
        else:
            _scalar(h, node)
    return h.hexdigest()


class _Key:
    __slots__ = ("key",)

    def __init__(self, key: Any):
        self.key = key


def _tensor(h, t: torch.Tensor) -> None:
    t = t.detach().to("cpu")
    header = f"T{t.dtype}{tuple(t.shape)}".encode()
    h.update(struct.pack("<I", len(header)) + header)
    if t.numel():  # the logical content in C order, whatever the strides (NDHWC weights)
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy())


def _scalar(h, value: Any) -> None:
    if isinstance(value, float):
        data = b"f" + struct.pack("<d", value)
    elif isinstance(value, bool | int | type(None)):
        data = b"i" + repr(value).encode()
    elif isinstance(value, str):
        data = b"s" + value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes):
        data = b"b" + value
    else:  # torch.Size, dtypes, devices...: types whose repr is their value
        data = b"r" + f"{type(value).__name__}:{value!r}".encode()
    h.update(struct.pack("<I", len(data)) + data)


def seal(state: dict) -> dict:
    """``state`` with its digest under :data:`KEY` (any digest it held replaced)."""
    body = {k: v for k, v in state.items() if k != KEY}
    return {**body, KEY: {"algorithm": ALGORITHM, "digest": content_digest(body)}}


def verify(state: dict) -> bool:
    """True when ``state`` carries a digest that matches its content; False when it carries
    none (a checkpoint from before checksums); raises :class:`IntegrityError` on a mismatch."""
    seal_ = state.get(KEY)
    if seal_ is None:
        return False
    if not isinstance(seal_, dict) or seal_.get("algorithm") != ALGORITHM:
        raise IntegrityError(f"unknown checksum record {seal_!r}")
    body = {k: v for k, v in state.items() if k != KEY}
    if content_digest(body) != seal_.get("digest"):
        raise IntegrityError("its content does not match the checksum it was saved with")
    return True
