"""A small reader and writer of MATLAB level-5 MAT-files (what ``save`` writes by default, v7).

Why: UCFRep's annotations are .mat files, and this is all the MAT support vssl needs (numeric
arrays, character arrays, structs, cells; zlib-compressed or not), so SciPy does not become a
dependency. Format: MathWorks, "MAT-File Format" (level 5). HDF5-based v7.3 files, sparse
arrays and objects are refused with a message.

Reading returns numeric arrays with their MATLAB shape (at least 2-D, column-major data put in
place), strings for character row vectors, dicts for 1x1 structs, and lists (column-major
order) for cells and struct arrays.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

MI = {  # data-element types -> numpy dtype (little-endian here; byte order is fixed on read)
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
    16: "u1",  # utf-8
}
MI_INT8, MI_UINT32, MI_INT32, MI_DOUBLE, MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 1, 6, 5, 9, 14, 15, 16
MX_CELL, MX_STRUCT, MX_CHAR, MX_DOUBLE = 1, 2, 4, 6
MX_NUMERIC = {
    6: "f8",
    7: "f4",
    8: "i1",
    9: "u1",
    10: "i2",
    11: "u2",
    12: "i4",
    13: "u4",
    14: "i8",
    15: "u8",
}


class MatFileError(ValueError):
    """A file that is not a level-5 MAT-file, or holds something this reader does not handle."""


# ------------------------------------------------------------------------------ reading


def loadmat(path: str) -> dict[str, Any]:
    """The variables of a MAT-file by name."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 128:
        raise MatFileError(f"{path}: too short to be a MAT-file ({len(data)} bytes)")
    if data[:19] == b"MATLAB 7.3 MAT-file" or data[512:516] == b"\x89HDF":
        raise MatFileError(f"{path}: a v7.3 (HDF5) MAT-file; re-save it in MATLAB with -v7")
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise MatFileError(f"{path}: not a level-5 MAT-file (no endian indicator at byte 126)")
    reader = _Reader(order, path)
    out, pos = {}, 128
    while pos + 8 <= len(data):
        mtype, body, pos = reader.element(data, pos)
        if mtype == MI_COMPRESSED:
            mtype, body, _ = reader.element(zlib.decompress(body), 0)
        if mtype != MI_MATRIX:
            raise MatFileError(f"{path}: top-level element of type {mtype}, expected a matrix")
        name, value = reader.matrix(body)
        out[name] = value
    return out


class _Reader:
    def __init__(self, order: str, path: str) -> None:
        self.order, self.path = order, path

    def element(self, buf: bytes, pos: int) -> tuple[int, bytes, int]:
        """(type, payload, position after the element, padding included)."""
        (word,) = struct.unpack_from(self.order + "I", buf, pos)
        if word >> 16:  # small data element: size and type packed in 4 bytes, data in the next 4
            size, mtype = word >> 16, word & 0xFFFF
            return mtype, buf[pos + 4 : pos + 4 + size], pos + 8
        mtype, size = struct.unpack_from(self.order + "II", buf, pos)
        start = pos + 8
        end = start + size
        if end > len(buf):
            raise MatFileError(f"{self.path}: truncated (an element runs past the end)")
        padded = end if mtype == MI_COMPRESSED else start + (size + 7) // 8 * 8
        return mtype, buf[start:end], padded

    def numbers(self, mtype: int, body: bytes) -> np.ndarray:
        if mtype not in MI:
            raise MatFileError(f"{self.path}: unsupported data type {mtype}")
        return np.frombuffer(body, dtype=np.dtype(MI[mtype]).newbyteorder(self.order))

    def matrix(self, body: bytes) -> tuple[str, Any]:
        if not body:  # an empty matrix element (e.g. an unset struct field)
            return "", np.zeros((0, 0))
        _, flags_b, pos = self.element(body, 0)
        flags = self.numbers(MI_UINT32, flags_b)
        mx_class, complex_, logical = (
            int(flags[0] & 0xFF),
            bool(flags[0] & 0x800),
            bool(flags[0] & 0x200),
        )
        _, dims_b, pos = self.element(body, pos)
        shape = tuple(int(d) for d in self.numbers(MI_INT32, dims_b))
        _, name_b, pos = self.element(body, pos)
        name = name_b.decode("ascii")
        if mx_class in MX_NUMERIC:
            mtype, real_b, pos = self.element(body, pos)
            values = self.numbers(mtype, real_b).astype(MX_NUMERIC[mx_class])
            if complex_:
                mtype, imag_b, pos = self.element(body, pos)
                values = values + 1j * self.numbers(mtype, imag_b)
            array = values.reshape(shape, order="F")
            return name, array.astype(bool) if logical else array
        if mx_class == MX_CHAR:
            mtype, text_b, pos = self.element(body, pos)
            codes = self.numbers(mtype, text_b)
            if mtype == MI_UTF8:
                return name, bytes(codes).decode("utf-8")
            chars = np.array([chr(c) for c in codes]).reshape(shape, order="F")
            return name, "".join(chars.ravel()) if chars.ndim == 2 and shape[0] == 1 else chars
        if mx_class == MX_CELL:
            return name, self._children(body, pos, int(np.prod(shape)))
        if mx_class == MX_STRUCT:
            _, len_b, pos = self.element(body, pos)
            width = int(self.numbers(MI_INT32, len_b)[0])
            _, names_b, pos = self.element(body, pos)
            fields = [
                names_b[i : i + width].split(b"\0")[0].decode("ascii")
                for i in range(0, len(names_b), width)
            ]
            count = int(np.prod(shape))
            values = self._children(body, pos, count * len(fields))
            items = [
                dict(zip(fields, values[i * len(fields) : (i + 1) * len(fields)], strict=True))
                for i in range(count)
            ]
            return name, items[0] if count == 1 else items
        raise MatFileError(
            f"{self.path}: variable {name!r} is of MATLAB class {mx_class}, "
            "which this reader does not handle (sparse, object, function)"
        )

    def _children(self, body: bytes, pos: int, count: int) -> list[Any]:
        out = []
        for _ in range(count):
            mtype, child, pos = self.element(body, pos)
            if mtype != MI_MATRIX:
                raise MatFileError(
                    f"{self.path}: a cell or field of type {mtype}, expected a matrix"
                )
            out.append(self.matrix(child)[1])
        return out


# ------------------------------------------------------------------------------ writing


def _element(mtype: int, payload: bytes) -> bytes:
    pad = b"\0" * (-len(payload) % 8)
    return struct.pack("<II", mtype, len(payload)) + payload + pad


def _matrix(value: Any, name: str = "") -> bytes:
    """A miMATRIX element for a number/array (stored as double), a str, or a dict (1x1 struct)."""
    if isinstance(value, dict):
        fields = list(value)
        width = max(len(f) for f in fields) + 1
        names = b"".join(f.encode("ascii").ljust(width, b"\0") for f in fields)
        body = (
            _element(MI_UINT32, struct.pack("<II", MX_STRUCT, 0))
            + _element(MI_INT32, struct.pack("<ii", 1, 1))
            + _element(MI_INT8, name.encode("ascii"))
            + _element(MI_INT32, struct.pack("<i", width))
            + _element(MI_INT8, names)
            + b"".join(_matrix(value[f]) for f in fields)
        )
        return _element(MI_MATRIX, body)
    if isinstance(value, str):
        codes = np.array([ord(c) for c in value], "<u2")
        dims, mx, data = (1, len(value)), MX_CHAR, _element(4, codes.tobytes())
    else:
        array = np.atleast_2d(np.asarray(value, dtype="<f8"))
        dims, mx, data = array.shape, MX_DOUBLE, _element(MI_DOUBLE, array.tobytes(order="F"))
    body = (
        _element(MI_UINT32, struct.pack("<II", mx, 0))
        + _element(MI_INT32, struct.pack(f"<{len(dims)}i", *dims))
        + _element(MI_INT8, name.encode("ascii"))
        + data
    )
    return _element(MI_MATRIX, body)


def savemat(path: str, variables: dict[str, Any], compress: bool = True) -> None:
    """Write ``variables`` (numbers/arrays as double, str, dicts as 1x1 structs) as MATLAB's
    ``save`` does: a 128-byte header then one (zlib-compressed, as in v7) element per variable."""
    text = b"MATLAB 5.0 MAT-file, written by vssl"
    header = text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    parts = [header]
    for name, value in variables.items():
        element = _matrix(value, name)
        if compress:
            packed = zlib.compress(element)
            element = struct.pack("<II", MI_COMPRESSED, len(packed)) + packed
        parts.append(element)
    with open(path, "wb") as f:
        f.write(b"".join(parts))
