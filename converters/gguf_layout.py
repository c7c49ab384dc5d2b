"""Read a GGUF's scalar metadata and tensor table quickly, without touching tensor data.

gguf-py's GGUFReader builds an array view for every vocabulary string, which takes
seconds for a 128K-token vocabulary; verification only needs the scalar keys, the
number of tokens and the tensor table, so this reader skips arrays by their lengths.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import gguf

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorEntry:
    name: str
    shape: tuple[int, ...]      # GGUF order: innermost dimension first
    ggml_type: int
    offset: int                 # absolute offset in the file
    nbytes: int


@dataclass(frozen=True)
class GGUFLayout:
    metadata: dict              # scalar and string keys; arrays as their length
    tensors: list[TensorEntry]
    file_size: int


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> str:
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n]
        if len(s) != n:
            raise ValueError("truncated string")
        self.pos += n
        return s.decode("utf-8", "replace")

    def skip_array(self) -> int:
        item_type, n = self.take("<I"), self.take("<Q")
        if item_type == _STRING:
            for _ in range(n):
                self.pos += 8 + struct.unpack_from("<Q", self.data, self.pos)[0]
        elif item_type in _SCALARS:
            self.pos += n * struct.calcsize(_SCALARS[item_type])
        else:
            raise ValueError(f"unsupported array item type {item_type}")
        return n


def read_layout(path: Path) -> GGUFLayout:
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24 or head[:4] != b"GGUF":
            raise ValueError("not a GGUF file")
        f.seek(0)
        # The header (metadata + tensor table) is small next to the weights; read in growing steps.
        want = 1 << 24
        while True:
            data = f.read(want) if want < size else (f.seek(0) or f.read())
            try:
                return _parse(data, size)
            except (struct.error, ValueError, IndexError):
                if len(data) >= size:
                    raise ValueError("the GGUF header is truncated or malformed") from None
                f.seek(0)
                want *= 4


def _parse(data: bytes, size: int) -> GGUFLayout:
    c = _Cursor(data)
    c.pos = 8
    n_tensors, n_kv = c.take("<Q"), c.take("<Q")
    meta: dict = {}
    for _ in range(n_kv):
        key, vtype = c.string(), c.take("<I")
        if vtype == _STRING:
            meta[key] = c.string()
        elif vtype == _ARRAY:
            meta[key] = c.skip_array()
        elif vtype in _SCALARS:
            meta[key] = c.take(_SCALARS[vtype])
        else:
            raise ValueError(f"unknown metadata type {vtype}")
    infos = []
    for _ in range(n_tensors):
        name, n_dims = c.string(), c.take("<I")
        dims = tuple(c.take("<Q") for _ in range(n_dims))
        infos.append((name, dims, c.take("<I"), c.take("<Q")))
    if c.pos > len(data):
        raise ValueError("truncated")
    align = int(meta.get("general.alignment", 32))
    start = (c.pos + align - 1) // align * align
    tensors = []
    for name, dims, t, off in infos:
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(t)]
        n = 1
        for d in dims:
            n *= d
        tensors.append(TensorEntry(name, dims, t, start + off, n // block * type_size))
    return GGUFLayout(meta, tensors, size)
