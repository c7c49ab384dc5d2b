"""What a GGUF file name says: its quant type and whether it is one part of a set.

Hub GGUF repos name files like ``Llama-3.2-1B-Instruct-Q4_K_M.gguf`` and split
big ones as ``...-Q8_0-00001-of-00002.gguf`` (llama.cpp's gguf-split naming).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

_QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(I?Q[1-8]_(?:K(?:_(?:XL|S|M|L))?|\d(?:_\d)*|XXS|XS|NL|S|M|L)"
    r"|BF16|F16|FP16|F32|MXFP4|TQ[12]_0)(?![A-Za-z0-9])", re.IGNORECASE)
_PART_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def quant_from_name(name: str) -> Optional[str]:
    """``"Q4_K_M"``, ``"BF16"``..., from the last quant-looking token of ``name``."""
    matches = _QUANT_RE.findall(name)
    if not matches:
        return None
    q = matches[-1].upper()
    return "F16" if q == "FP16" else q


def split_part(name: str) -> Optional[tuple[int, int]]:
    """(part, of) for ``...-00001-of-00003.gguf``, else None."""
    m = _PART_RE.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass
class GGUFSet:
    """One downloadable model: a single GGUF or all the parts of a split one."""

    name: str                     # file name, or the set's name without the part suffix
    quant: Optional[str]
    files: list[str] = field(default_factory=list)
    size: int = 0
    parts_expected: int = 1

    @property
    def complete(self) -> bool:
        return len(self.files) == self.parts_expected


def group_gguf_files(files: Iterable[tuple[str, int]]) -> list[GGUFSet]:
    """Group (path, size) pairs into GGUF sets, sorted by quant type then name."""
    sets: dict[str, GGUFSet] = {}
    for path, size in files:
        if not path.lower().endswith(".gguf"):
            continue
        part = split_part(path)
        key = _PART_RE.sub(".gguf", path) if part else path
        s = sets.get(key)
        if s is None:
            s = sets[key] = GGUFSet(key.rsplit("/", 1)[-1], quant_from_name(key),
                                    parts_expected=part[1] if part else 1)
        s.files.append(path)
        s.size += size or 0
    for s in sets.values():
        s.files.sort()
    return sorted(sets.values(), key=lambda s: (s.quant or "~", s.name))
