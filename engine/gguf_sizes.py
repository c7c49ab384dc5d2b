"""What the GPU planner needs from a GGUF header: shape keys and per-tensor byte sizes.

A small reader of its own: gguf-py's GGUFReader decodes every vocabulary string
into Python objects (seconds for a 128K vocabulary); this one skips arrays and
reads only scalars and tensor infos.
"""
from __future__ import annotations

import struct
from pathlib import Path

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class _Buf:
    def __init__(self, f):
        self.f = f
        self.data = b""
        self.pos = 0

    def need(self, n: int) -> None:
        if self.pos + n > len(self.data):
            self.data = self.data[self.pos:] + self.f.read(max(n, 1 << 20))
            self.pos = 0
            if len(self.data) < n:
                raise ValueError("truncated GGUF header")

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        self.need(size)
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out[0] if len(out) == 1 else out

    def string(self) -> str:
        n = self.unpack("Q")
        self.need(n)
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8", errors="replace")

    def skip_value(self, vtype: int) -> None:
        if vtype == _STRING:
            n = self.unpack("Q")
            self.need(n)
            self.pos += n
        elif vtype == _ARRAY:
            etype, count = self.unpack("I"), self.unpack("Q")
            if etype == _STRING:
                for _ in range(count):
                    self.skip_value(_STRING)
            else:
                size = struct.calcsize(_SCALAR[etype]) * count
                self.need(size)
                self.pos += size
        else:
            self.unpack(_SCALAR[vtype])


def read_gguf_layout(path: Path) -> tuple[dict, dict[str, int]]:
    """(scalar and string metadata, {tensor name: bytes})."""
    meta: dict = {}
    tensors: dict[str, int] = {}
    with open(path, "rb") as f:
        b = _Buf(f)
        if b.unpack("4s") != b"GGUF":
            raise ValueError(f"{Path(path).name} is not a GGUF file")
        b.unpack("I")  # version
        n_tensors, n_kv = b.unpack("Q"), b.unpack("Q")
        for _ in range(n_kv):
            key = b.string()
            vtype = b.unpack("I")
            if vtype in _SCALAR:
                meta[key] = b.unpack(_SCALAR[vtype])
            elif vtype == _STRING and not key.startswith("tokenizer."):
                meta[key] = b.string()
            else:
                b.skip_value(vtype)
        for _ in range(n_tensors):
            name = b.string()
            n_dims = b.unpack("I")
            dims = [b.unpack("Q") for _ in range(n_dims)]
            ttype = b.unpack("I")
            b.unpack("Q")  # offset
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            count = 1
            for d in dims:
                count *= d
            tensors[name] = count // block * type_size
            if name == "token_embd.weight":
                meta["token_embd.dims"] = tuple(dims)
    return meta, tensors
