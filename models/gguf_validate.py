"""Structural validation of a GGUF file, in Python, before llama.cpp ever opens it.

llama.cpp's GGUF parser has had heap overflows triggered just by opening a crafted
file, so every GGUF that came from outside is checked here first. The checks are the
header walk itself (``common.gguf_header.parse_header``: bounds, types, names, tensor
shapes and data ranges); this module adds split sets, whose parts must all be there
and agree on the set they belong to.

``validate_gguf(path)`` returns a small summary or raises ``UnsafeGGUFError`` naming
the problem; ``validate_gguf_bytes(buf)`` does the same for a buffer;
``validate_gguf_set(path)`` checks every part of a split set.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from common.gguf_header import (MAX_TENSOR_NAME, Buffer, UnsafeGGUFError, mapped,  # noqa: F401
                                parse_header)
from common.safe_paths import one_line


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


def validate_gguf_bytes(buf: Buffer) -> GGUFSummary:
    try:
        return _validate(buf)
    except UnsafeGGUFError as exc:  # names in the message come from the file: one line, bounded
        raise UnsafeGGUFError(one_line(str(exc))) from None


def _validate(buf) -> GGUFSummary:
    h = parse_header(buf)
    return GGUFSummary(h.version, len(h.tensors), len(h.values), h.alignment, h.data_offset,
                       h.file_size, h.split_count, h.split_no)


def validate_gguf(path: Union[str, Path]) -> GGUFSummary:
    """Validate the file at ``path`` (memory-mapped; only the header is read)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnsafeGGUFError(f"{path.name}: empty file")
        with mapped(path) as m:
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
