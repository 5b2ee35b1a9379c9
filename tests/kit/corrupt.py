"""Damage files the way disks and kills do: a flipped bit inside a tensor, a torn last line."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path


def tensor_records(path: Path) -> list[tuple[str, int, int]]:
    """(name, data offset, size) of each tensor record of a torch.save zip file."""
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            if "/data/" not in info.filename or info.file_size == 0:
                continue
            f.seek(info.header_offset + 26)
            name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
            start = info.header_offset + 30 + name_len + extra_len
            out.append((info.filename, start, info.file_size))
    return out


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def flip_bit_in_a_tensor(path: Path, seed: int = 0) -> str:
    """Flip one bit inside the largest tensor record; returns the record's name."""
    name, start, size = max(tensor_records(path), key=lambda r: r[2])
    rng = random.Random(seed)
    flip_bit(path, start + rng.randrange(size), rng.randrange(8))
    return name


def flip_random_bit(path: Path, rng: random.Random) -> int:
    """Flip one bit anywhere in the file; returns its offset."""
    offset = rng.randrange(path.stat().st_size)
    flip_bit(path, offset, rng.randrange(8))
    return offset
