"""Reading a GGUF header: the one reader that validation, metadata, GPU sizes and the
converter's layout check all use.

``parse_header(buf)`` walks the header of a GGUF held in a buffer (bytes or an mmap)
and returns a ``GGUFHeader``: the version, every key's value (scalars as numbers,
strings as text, arrays as a ``GGUFArray`` reference that says where the items are),
the tensor table with each tensor's byte size and absolute offset, the alignment and
where the data section starts. ``read_header(path)`` does the same for a file,
memory-mapped so only the header's pages are read; ``mapped(path)`` opens the mapping
for readers that look up array items afterwards (``array_strings``).

Files come from outside, and llama.cpp's GGUF parser has had heap overflows triggered
just by opening a crafted file, so the walk is also the structural check:
magic and version; tensor and key counts within bounds and able to fit in the file;
every string and array length inside the file; known value types (no nested arrays);
unique keys and tensor names; tensor dims positive, at most four, their product
without overflow and rows whole blocks of their type; every tensor's data aligned and
inside the file, with no two tensors overlapping. Nothing trusts a length before
checking it against the bytes that remain, so a hostile file cannot make it allocate,
loop or read beyond its size. A problem raises ``UnsafeGGUFError`` naming it.

Vocabularies (49K to 128K strings) are skipped over by their lengths, never decoded:
gguf-py's GGUFReader builds an object for each of them, which takes seconds a file.
The value types, key names and block sizes are gguf-py's (``GGUFValueType``, ``Keys``,
``GGML_QUANT_SIZES``).
"""
from __future__ import annotations

import mmap
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from gguf.constants import (GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUFValueType,
                            Keys)

from common.errors import UserError

MAGIC = struct.pack("<I", GGUF_MAGIC)          # b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_TENSORS = 1 << 20
MAX_KEYS = 1 << 20
MAX_NAME = 1 << 16            # bytes in a key
MAX_TENSOR_NAME = 63          # llama.cpp's GGML_MAX_NAME is 64 bytes with the final NUL
MAX_SPLITS = 9999             # gguf-split numbers parts with five digits; llama.cpp's own bound
MAX_DIMS = 4
MAX_TEXT = 1 << 20            # string values longer than this are referenced, not decoded
INT64_MAX = (1 << 63) - 1
DEFAULT_ALIGNMENT = GGUF_DEFAULT_ALIGNMENT

# Scalar value types -> (struct format, size in bytes).
SCALARS = {
    GGUFValueType.UINT8: ("<B", 1), GGUFValueType.INT8: ("<b", 1),
    GGUFValueType.UINT16: ("<H", 2), GGUFValueType.INT16: ("<h", 2),
    GGUFValueType.UINT32: ("<I", 4), GGUFValueType.INT32: ("<i", 4),
    GGUFValueType.FLOAT32: ("<f", 4), GGUFValueType.BOOL: ("<?", 1),
    GGUFValueType.UINT64: ("<Q", 8), GGUFValueType.INT64: ("<q", 8),
    GGUFValueType.FLOAT64: ("<d", 8),
}
_UNSIGNED = (GGUFValueType.UINT8, GGUFValueType.UINT16, GGUFValueType.UINT32, GGUFValueType.UINT64)
_BLOCKS = {int(t): (int(b), int(s)) for t, (b, s) in GGML_QUANT_SIZES.items()}
_U64 = struct.Struct("<Q").unpack_from

Buffer = Union[bytes, bytearray, memoryview, mmap.mmap]


class UnsafeGGUFError(UserError, ValueError):
    """The file is not a well-formed GGUF; the message names the problem."""


@dataclass(frozen=True)
class GGUFArray:
    """An array value, not read: its item type, item count and the byte offset of item 0."""
    item_type: int
    count: int
    offset: int


@dataclass(frozen=True)
class GGUFText:
    """A string value longer than ``MAX_TEXT``, not decoded: where its bytes are."""
    offset: int
    nbytes: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]      # GGUF order: innermost dimension first
    ggml_type: int
    offset: int                 # absolute offset of the data in the file
    nbytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    values: dict                # key -> int | float | bool | str | GGUFArray | GGUFText
    value_types: dict           # key -> GGUFValueType
    tensors: tuple[TensorInfo, ...]
    alignment: int
    data_offset: int
    file_size: int

    @property
    def split_count(self) -> int:
        return self.values.get(Keys.Split.LLM_KV_SPLIT_COUNT, 0)

    @property
    def split_no(self) -> int:
        return self.values.get(Keys.Split.LLM_KV_SPLIT_NO, 0)

    @property
    def architecture(self) -> Optional[str]:
        arch = self.values.get(Keys.General.ARCHITECTURE)
        return arch if isinstance(arch, str) else None

    def arch_value(self, key: str, default=None):
        """A ``{arch}.`` key from ``gguf.Keys.LLM``/``Keys.Attention`` (e.g. ``Keys.LLM.BLOCK_COUNT``)."""
        arch = self.architecture
        return self.values.get(key.format(arch=arch), default) if arch else default


class _Cursor:
    def __init__(self, buf, size: int):
        self.buf = buf
        self.size = size
        self.pos = 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise UnsafeGGUFError(f"{what} at byte {self.pos} runs past the end of the file "
                                  f"({n} bytes needed, {self.size - self.pos} left)")

    def unpack(self, fmt: str, n: int, what: str):
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def u32(self, what: str) -> int:
        return self.unpack("<I", 4, what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", 8, what)

    def string(self, what: str, limit: int = None) -> bytes:
        n = self.u64(f"length of {what}")
        if limit is not None and n > limit:
            raise UnsafeGGUFError(f"{what} is {n} bytes long (at most {limit} allowed)")
        self.need(n, what)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw

    def text(self, what: str):
        n = self.u64(f"length of {what}")
        self.need(n, what)
        start = self.pos
        self.pos += n
        if n > MAX_TEXT:
            return GGUFText(start, n)
        return bytes(self.buf[start:self.pos]).decode("utf-8", "replace")


def _name(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeGGUFError(f"{what} is not valid UTF-8") from None


def _skip_strings(buf, pos: int, size: int, count: int, key: str) -> int:
    """Skip ``count`` length-prefixed strings (the hot loop for 128K-token vocabularies)."""
    for _ in range(count):
        if pos + 8 > size:
            raise UnsafeGGUFError(f"a string length in array {key} runs past the end of the file")
        pos += 8 + _U64(buf, pos)[0]
        if pos > size:
            raise UnsafeGGUFError(f"a string in array {key} runs past the end of the file")
    return pos


def _read_value(cur: _Cursor, vtype: int, key: str):
    """Read one value: a number for scalars, text for strings, a ``GGUFArray`` for arrays."""
    if vtype in SCALARS:
        fmt, n = SCALARS[vtype]
        return cur.unpack(fmt, n, f"value of {key}")
    if vtype == GGUFValueType.STRING:
        return cur.text(f"string value of {key}")
    if vtype == GGUFValueType.ARRAY:
        etype = cur.u32(f"array type of {key}")
        count = cur.u64(f"array length of {key}")
        start = cur.pos
        if etype in SCALARS:
            cur.need(count * SCALARS[etype][1], f"array {key} ({count} items)")
            cur.pos += count * SCALARS[etype][1]
        elif etype == GGUFValueType.STRING:
            cur.need(count * 8, f"array {key} ({count} strings)")  # each string has an 8-byte length
            cur.pos = _skip_strings(cur.buf, cur.pos, cur.size, count, key)
        elif etype == GGUFValueType.ARRAY:
            raise UnsafeGGUFError(f"key {key} holds nested arrays, which GGUF does not allow")
        else:
            raise UnsafeGGUFError(f"array {key} has unknown element type {etype}")
        return GGUFArray(etype, count, start)
    raise UnsafeGGUFError(f"key {key} has unknown value type {vtype}")


def parse_header(buf: Buffer, *, data: bool = True) -> GGUFHeader:
    """Walk and check the header in ``buf``; raises ``UnsafeGGUFError`` naming a problem.

    ``data=False`` leaves out the checks of the tensor data against the file (inside it,
    not overlapping), for a caller that reports a cut file in its own words."""
    size = len(buf)
    cur = _Cursor(buf, size)
    cur.need(4, "magic")
    if bytes(buf[:4]) != MAGIC:
        raise UnsafeGGUFError("not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise UnsafeGGUFError(f"unsupported GGUF version {version} (supported: 2 and 3)")
    n_tensors = cur.u64("tensor count")
    n_keys = cur.u64("key count")
    if n_tensors > MAX_TENSORS or n_tensors * 28 > size:   # a tensor entry takes >= 28 bytes
        raise UnsafeGGUFError(f"tensor count {n_tensors} is out of bounds for a {size}-byte file")
    if n_keys > MAX_KEYS or n_keys * 13 > size:           # a key entry takes >= 13 bytes
        raise UnsafeGGUFError(f"key count {n_keys} is out of bounds for a {size}-byte file")

    alignment = DEFAULT_ALIGNMENT
    values: dict = {}
    types: dict = {}
    for i in range(n_keys):
        key = _name(cur.string(f"key #{i}", MAX_NAME), f"key #{i}")
        if not key:
            raise UnsafeGGUFError(f"key #{i} has an empty name")
        if key in values:
            raise UnsafeGGUFError(f"duplicate key {key}")
        vtype = cur.u32(f"type of {key}")
        value = _read_value(cur, vtype, key)
        values[key], types[key] = value, GGUFValueType(vtype)
        if key == Keys.General.ALIGNMENT:
            if vtype != GGUFValueType.UINT32 or not value or value & (value - 1):
                raise UnsafeGGUFError("general.alignment must be a non-zero power of two (uint32)")
            alignment = value
        elif key in (Keys.Split.LLM_KV_SPLIT_COUNT, Keys.Split.LLM_KV_SPLIT_NO):
            if vtype not in _UNSIGNED or value > MAX_SPLITS:
                raise UnsafeGGUFError(f"{key} must be an unsigned integer up to {MAX_SPLITS}")

    entries = []
    names: set[str] = set()
    for i in range(n_tensors):
        name = _name(cur.string(f"name of tensor #{i}", MAX_TENSOR_NAME), f"name of tensor #{i}")
        if not name:
            raise UnsafeGGUFError(f"tensor #{i} has an empty name")
        if name in names:
            raise UnsafeGGUFError(f"duplicate tensor name {name}")
        names.add(name)
        n_dims = cur.u32(f"dimension count of {name}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise UnsafeGGUFError(f"tensor {name} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        dims = tuple(cur.unpack("<q", 8, f"dimension of {name}") for _ in range(n_dims))
        ttype = cur.u32(f"type of {name}")
        offset = cur.u64(f"data offset of {name}")
        if any(d <= 0 for d in dims):
            raise UnsafeGGUFError(f"tensor {name} has a non-positive dimension {list(dims)}")
        count = 1
        for d in dims:
            count *= d
            if count > INT64_MAX:
                raise UnsafeGGUFError(f"tensor {name}: element count {list(dims)} overflows")
        if ttype not in _BLOCKS:
            raise UnsafeGGUFError(f"tensor {name} has unknown type {ttype}")
        block, type_size = _BLOCKS[ttype]
        if dims[0] % block:
            raise UnsafeGGUFError(f"tensor {name}: row of {dims[0]} is not a whole number of "
                                  f"{block}-element blocks")
        if offset % alignment:
            raise UnsafeGGUFError(f"tensor {name} data offset {offset} is not aligned to {alignment}")
        entries.append((name, dims, ttype, offset, count // block * type_size))

    data_offset = -(-cur.pos // alignment) * alignment
    if data and entries and data_offset > size:
        raise UnsafeGGUFError("tensor data section starts past the end of the file")
    end_prev, prev = data_offset, None
    for offset, nbytes, name in sorted((e[3], e[4], e[0]) for e in entries) if data else ():
        start = data_offset + offset
        if start + nbytes > size:
            raise UnsafeGGUFError(f"tensor {name} data [{start}, {start + nbytes}) lies outside the "
                                  f"{size}-byte file")
        if start < end_prev and prev is not None:
            raise UnsafeGGUFError(f"tensors {prev} and {name} overlap")
        end_prev, prev = start + nbytes, name
    tensors = tuple(TensorInfo(name, dims, ttype, data_offset + offset, nbytes)
                    for name, dims, ttype, offset, nbytes in entries)
    return GGUFHeader(version, values, types, tensors, alignment, data_offset, size)


@contextmanager
def mapped(path: Union[str, Path]) -> Iterator[Buffer]:
    """The file memory-mapped read-only (only the pages read are loaded).

    Raises ``UnsafeGGUFError`` for an empty file, ``OSError`` when it cannot be opened."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:       # mmap refuses a zero-length file
            raise UnsafeGGUFError(f"{path.name} is empty, not a GGUF file") from None
        with buf:
            yield buf


def read_header(path: Union[str, Path], *, data: bool = True) -> GGUFHeader:
    """``parse_header`` for the file at ``path``; a problem's message starts with its name."""
    path = Path(path)
    with mapped(path) as buf:
        try:
            return parse_header(buf, data=data)
        except UnsafeGGUFError as exc:
            raise UnsafeGGUFError(f"{path.name}: {exc}") from None


def array_strings(buf: Buffer, array: Optional[GGUFArray], ids: Iterable = (),
                  find: Optional[str] = None) -> tuple[dict, Optional[int]]:
    """({index: text} for the string items ``ids`` of ``array``, the index of the item spelled
    ``find`` or None), in one pass that stops once it has them all (``array`` comes from
    ``parse_header`` of this same buffer, so its items are known to lie inside it)."""
    if array is None or array.item_type != GGUFValueType.STRING:
        return {}, None
    pos, count = array.offset, array.count
    wanted = {i for i in ids if isinstance(i, int) and 0 <= i < count}
    needle = find.encode("utf-8") if find else None
    found, at = {}, None
    for i in range(count):
        if len(found) == len(wanted) and (needle is None or at is not None):
            break
        n = _U64(buf, pos)[0]
        start, pos = pos + 8, pos + 8 + n
        if i in wanted:
            found[i] = bytes(buf[start:pos]).decode("utf-8", "replace")
        if needle is not None and at is None and n == len(needle) and bytes(buf[start:pos]) == needle:
            at = i
    return found, at
