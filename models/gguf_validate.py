"""Structural validation of a GGUF file, in Python, before llama.cpp ever opens it.

llama.cpp's GGUF parser has had heap overflows triggered just by opening a crafted
file, so every GGUF that came from outside is checked here first: magic and
version; tensor and key counts within bounds and able to fit in the file; every
string and array length inside the file; known value types (no nested arrays);
unique keys and tensor names; tensor dims positive, at most four, their product
without overflow and rows whole blocks of their type; every tensor's data aligned
and inside the file, with no two tensors overlapping. Nothing here trusts a length
before checking it against the bytes that remain, so a hostile file cannot make it
allocate, loop or read beyond its size.

``validate_gguf(path)`` returns a small summary or raises ``UnsafeGGUFError`` naming
the problem; ``validate_gguf_bytes(buf)`` does the same for a buffer.
"""
from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from common.safe_paths import one_line

from common.errors import UserError

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_TENSORS = 1 << 20
MAX_KEYS = 1 << 20
MAX_NAME = 1 << 16            # bytes in a key
MAX_TENSOR_NAME = 63          # llama.cpp's GGML_MAX_NAME is 64 bytes with the final NUL
MAX_SPLITS = 9999             # gguf-split numbers parts with five digits; llama.cpp's own bound
MAX_DIMS = 4
INT64_MAX = (1 << 63) - 1
DEFAULT_ALIGNMENT = 32

# GGUF value types -> (struct format, size); 8 = string, 9 = array.
_SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
            6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
_STRING, _ARRAY = 8, 9


class UnsafeGGUFError(UserError, ValueError):
    """The file is not a well-formed GGUF; the message names the problem."""


@dataclass(frozen=True)
class GGUFSummary:
    version: int
    n_tensors: int
    n_keys: int
    alignment: int
    data_offset: int
    file_size: int
    split_count: int = 0      # split.count when the file says it is one part of a set
    split_no: int = 0         # split.no (0 for the first part)


def _block_sizes() -> dict[int, tuple[int, int]]:
    from gguf.constants import GGML_QUANT_SIZES

    return {int(t): (int(b), int(s)) for t, (b, s) in GGML_QUANT_SIZES.items()}


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

    def skip_string(self, what: str) -> None:
        n = self.u64(f"length of {what}")
        self.need(n, what)
        self.pos += n


def _name(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeGGUFError(f"{what} is not valid UTF-8") from None


_U64 = struct.Struct("<Q").unpack_from


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
    """Read one value; returns it for scalars, None for strings and arrays (skipped)."""
    if vtype in _SCALARS:
        fmt, n = _SCALARS[vtype]
        return cur.unpack(fmt, n, f"value of {key}")
    if vtype == _STRING:
        cur.skip_string(f"string value of {key}")
        return None
    if vtype == _ARRAY:
        etype = cur.u32(f"array type of {key}")
        count = cur.u64(f"array length of {key}")
        if etype in _SCALARS:
            cur.need(count * _SCALARS[etype][1], f"array {key} ({count} items)")
            cur.pos += count * _SCALARS[etype][1]
        elif etype == _STRING:
            cur.need(count * 8, f"array {key} ({count} strings)")  # each string has an 8-byte length
            cur.pos = _skip_strings(cur.buf, cur.pos, cur.size, count, key)
        elif etype == _ARRAY:
            raise UnsafeGGUFError(f"key {key} holds nested arrays, which GGUF does not allow")
        else:
            raise UnsafeGGUFError(f"array {key} has unknown element type {etype}")
        return None
    raise UnsafeGGUFError(f"key {key} has unknown value type {vtype}")


def validate_gguf_bytes(buf: Union[bytes, bytearray, memoryview, mmap.mmap]) -> GGUFSummary:
    try:
        return _validate(buf)
    except UnsafeGGUFError as exc:  # names in the message come from the file: one line, bounded
        raise UnsafeGGUFError(one_line(str(exc))) from None


def _validate(buf) -> GGUFSummary:
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
    split = {}
    keys: set[str] = set()
    for i in range(n_keys):
        key = _name(cur.string(f"key #{i}", MAX_NAME), f"key #{i}")
        if not key:
            raise UnsafeGGUFError(f"key #{i} has an empty name")
        if key in keys:
            raise UnsafeGGUFError(f"duplicate key {key}")
        keys.add(key)
        vtype = cur.u32(f"type of {key}")
        value = _read_value(cur, vtype, key)
        if key == "general.alignment":
            if vtype != 4 or not value or value & (value - 1):
                raise UnsafeGGUFError("general.alignment must be a non-zero power of two (uint32)")
            alignment = value
        elif key in ("split.count", "split.no"):
            if vtype not in (0, 2, 4, 10) or value is None or value > MAX_SPLITS:
                raise UnsafeGGUFError(f"{key} must be an unsigned integer up to {MAX_SPLITS}")
            split[key] = value

    blocks = _block_sizes()
    tensors = []
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
        dims = [cur.unpack("<q", 8, f"dimension of {name}") for _ in range(n_dims)]
        ttype = cur.u32(f"type of {name}")
        offset = cur.u64(f"data offset of {name}")
        if any(d <= 0 for d in dims):
            raise UnsafeGGUFError(f"tensor {name} has a non-positive dimension {dims}")
        count = 1
        for d in dims:
            count *= d
            if count > INT64_MAX:
                raise UnsafeGGUFError(f"tensor {name}: element count {dims} overflows")
        if ttype not in blocks:
            raise UnsafeGGUFError(f"tensor {name} has unknown type {ttype}")
        block, type_size = blocks[ttype]
        if dims[0] % block:
            raise UnsafeGGUFError(f"tensor {name}: row of {dims[0]} is not a whole number of "
                                  f"{block}-element blocks")
        nbytes = count // block * type_size
        if offset % alignment:
            raise UnsafeGGUFError(f"tensor {name} data offset {offset} is not aligned to {alignment}")
        tensors.append((offset, nbytes, name))

    data_offset = -(-cur.pos // alignment) * alignment
    if tensors and data_offset > size:
        raise UnsafeGGUFError("tensor data section starts past the end of the file")
    end_prev, prev = data_offset, None
    for offset, nbytes, name in sorted(tensors):
        start = data_offset + offset
        if start + nbytes > size:
            raise UnsafeGGUFError(f"tensor {name} data [{start}, {start + nbytes}) lies outside the "
                                  f"{size}-byte file")
        if start < end_prev and prev is not None:
            raise UnsafeGGUFError(f"tensors {prev} and {name} overlap")
        end_prev, prev = start + nbytes, name
    return GGUFSummary(version, n_tensors, n_keys, alignment, data_offset, size,
                       split.get("split.count", 0), split.get("split.no", 0))


def validate_gguf(path: Union[str, Path]) -> GGUFSummary:
    """Validate the file at ``path`` (memory-mapped; only the header is read)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            if size == 0:
                raise UnsafeGGUFError(f"{path.name}: empty file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                try:
                    return validate_gguf_bytes(m)
                except UnsafeGGUFError as exc:
                    raise UnsafeGGUFError(f"{one_line(path.name, 200)}: {exc}") from None
    except OSError as exc:
        raise UnsafeGGUFError(f"{path.name}: cannot read ({exc.strerror or exc})") from None


_PART_RE = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def split_set_paths(path: Union[str, Path], count: int = 0) -> list[Path]:
    """Every file llama.cpp opens for ``path``: itself, and for the first part of a split
    set (``...-00001-of-00003.gguf``) the other parts, named as llama.cpp names them.
    ``count`` is the first part's ``split.count`` when known (llama.cpp goes by it)."""
    path = Path(path)
    m = _PART_RE.match(path.name)
    if not m or int(m.group(2)) != 1:
        return [path]
    n = count or int(m.group(3))
    return [path.with_name(f"{m.group(1)}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]


def validate_gguf_set(path: Union[str, Path]) -> list[GGUFSummary]:
    """Validate ``path`` and, when it is the first part of a split set, every other part.

    Raises ``UnsafeGGUFError`` naming the part ("part 2 of 3 (file): problem") when a part
    is missing, malformed, or does not say it is that part of that set."""
    path = Path(path)
    first = validate_gguf(path)
    m = _PART_RE.match(path.name)
    named = int(m.group(3)) if m and int(m.group(2)) == 1 else 0
    if first.split_count > 1 and named and first.split_count != named:
        raise UnsafeGGUFError(f"{path.name}: the file says its set has {first.split_count} parts but "
                              f"its name says {named}")
    parts = split_set_paths(path, first.split_count if named else 0)
    out = [first]
    for i, part in enumerate(parts[1:], start=2):
        where = f"part {i} of {len(parts)} ({part.name})"
        if not part.is_file():
            raise UnsafeGGUFError(f"{where} is missing")
        try:
            summary = validate_gguf(part)
        except UnsafeGGUFError as exc:
            raise UnsafeGGUFError(f"{where}: {str(exc).removeprefix(part.name + ': ')}") from None
        if summary.split_count and (summary.split_count != len(parts) or summary.split_no != i - 1):
            raise UnsafeGGUFError(f"{where}: it says it is part {summary.split_no + 1} of "
                                  f"{summary.split_count}")
        out.append(summary)
    return out
