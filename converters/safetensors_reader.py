"""Validated, memory-mapped access to safetensors files.

The header of every file is checked before any tensor data is touched: offsets
must lie inside the file, each size must equal dtype x shape, and no two tensors
may overlap. Tensor data is read through a read-only memory map in row blocks;
pages are released after each block so resident memory stays bounded however
large the file is.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Iterator

import numpy as np

from common.safe_paths import one_line
from converters.errors import ConversionError

# safetensors dtype -> (numpy dtype used to hold the raw bits, bytes per element)
DTYPES = {
    "BF16": (np.dtype("<u2"), 2),
    "F16": (np.dtype("<f2"), 2),
    "F32": (np.dtype("<f4"), 4),
}
KNOWN_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_DIMS = 8
_PAGE = mmap.ALLOCATIONGRANULARITY


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor's bytes live; ``offset`` is absolute within ``file``."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    offset: int
    nbytes: int

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_bytes(self) -> int:
        return self.nbytes // self.rows if self.rows else 0


def read_header(path: Path) -> dict[str, TensorRef]:
    """Parse and validate one safetensors header; raise ConversionError if it is damaged."""
    try:
        return _read_header(Path(path))
    except ConversionError as exc:  # tensor names come from the file: one line, bounded
        raise ConversionError(one_line(str(exc))) from None


def _read_header(path: Path) -> dict[str, TensorRef]:
    size = path.stat().st_size
    name = path.name
    if size < 8:
        raise ConversionError(f"{name} is truncated ({size} bytes); download it again.")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise ConversionError(
                f"{name} is truncated or is not a safetensors file (its header claims {n} bytes "
                f"but the file has {size}); download it again.")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ConversionError(f"{name} has an unreadable header, so it is damaged or not a "
                              f"safetensors file; download it again.") from None
    if not isinstance(header, dict):
        raise ConversionError(f"{name} has an unreadable header; download it again.")
    base = 8 + n
    data_size = size - base
    refs: dict[str, TensorRef] = {}
    for tname, info in header.items():
        if tname == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = tuple(info["shape"])
            start, end = info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ConversionError(f"{name} is damaged: the entry for tensor {tname[:80]} is malformed; "
                                  f"download it again.") from None
        if not all(type(v) is int for v in (*shape, start, end)):
            raise ConversionError(f"{name} is damaged: the entry for tensor {tname[:80]} has a shape or "
                                  f"offset that is not a whole number; download it again.")
        if not isinstance(dtype, str) or dtype not in KNOWN_DTYPES or len(shape) > MAX_DIMS \
                or any(d < 0 for d in shape):
            raise ConversionError(f"{name} is damaged: tensor {tname[:80]} has an invalid dtype or shape; "
                                  f"download it again.")
        if not 0 <= start <= end:
            raise ConversionError(f"{name} is damaged: tensor {tname[:80]} has invalid data offsets "
                                  f"[{start}, {end}]; download it again.")
        expected = prod(shape) * KNOWN_DTYPES[dtype]
        if end - start != expected:
            raise ConversionError(
                f"{name} is damaged: tensor {tname[:80]} is declared as {dtype} {list(shape)} "
                f"({expected} bytes) but its offsets span {end - start} bytes; download it again.")
        refs[tname] = TensorRef(tname, dtype, shape, path, base + start, end - start)
    _check_layout(name, refs, base, data_size)
    return refs


def _check_layout(name: str, refs: dict[str, TensorRef], base: int, data_size: int) -> None:
    spans = sorted((r.offset - base, r.offset - base + r.nbytes, r.name) for r in refs.values())
    prev_end, prev_name = 0, None
    contiguous = True
    for start, end, tname in spans:
        if start < prev_end and end > start:
            raise ConversionError(f"{name} is damaged: tensors {prev_name[:80]} and {tname[:80]} overlap; "
                                  f"download it again.")
        contiguous &= start == prev_end
        prev_end, prev_name = max(prev_end, end), tname
    if prev_end > data_size:
        if contiguous:
            raise ConversionError(
                f"{name} is truncated: it holds {data_size} bytes of tensor data but its header "
                f"needs {prev_end}; download it again.")
        outside = next(t for s, e, t in spans if e > data_size)
        raise ConversionError(
            f"{name} is damaged: tensor {outside[:80]} points outside the file's data "
            f"(the header's offsets are out of range); download it again.")


class MappedFile:
    """A read-only memory map of one file, releasing pages as blocks are consumed."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._f = open(self.path, "rb")
        size = os.fstat(self._f.fileno()).st_size
        self._mm = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self._view = memoryview(self._mm) if self._mm is not None else memoryview(b"")

    def view(self, offset: int, nbytes: int) -> memoryview:
        return self._view[offset:offset + nbytes]

    def array(self, offset: int, count: int, dtype: np.dtype) -> np.ndarray:
        return np.frombuffer(self._view, dtype=dtype, count=count, offset=offset)

    def release(self, offset: int, nbytes: int) -> None:
        """Drop the pages of a consumed range from this process (they stay in the page cache)."""
        if self._mm is None or not hasattr(mmap, "MADV_DONTNEED") or nbytes <= 0:
            return
        start = (offset // _PAGE) * _PAGE
        end = min(len(self._mm), offset + nbytes)
        # Only whole pages inside the range; the edges are released with the next block.
        end = (end // _PAGE) * _PAGE if end < len(self._mm) else end
        if end > start:
            self._mm.madvise(mmap.MADV_DONTNEED, start, end - start)

    def close(self) -> None:
        try:
            self._view.release()
            if self._mm is not None:
                self._mm.close()
        except BufferError:
            pass  # an array still views the map (e.g. held by a traceback); it closes when freed
        self._f.close()


def row_blocks(ref: TensorRef, max_bytes: int, row_multiple: int = 1) -> Iterator[tuple[int, int]]:
    """Yield (first_row, n_rows) blocks of at most ~max_bytes, each a multiple of row_multiple rows."""
    rows = ref.rows
    per = max(row_multiple, (max(1, max_bytes // max(1, ref.row_bytes)) // row_multiple) * row_multiple)
    for r0 in range(0, rows, per):
        yield r0, min(per, rows - r0)
