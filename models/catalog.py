"""The curated Llama 3 catalog (``catalog.json``) with sizes and fit hints computed from shapes.

Each entry names the original (gated, convert path) repo and well-known GGUF
repos (direct path). ``entries()`` attaches, per quant type, the estimated file
size and RAM/VRAM need from ``models.hardware``; nothing numeric is hand-typed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

from common.inference_options import DEFAULT_N_CTX
from models.hardware import Estimate, LlamaShape, MachineMemory, estimate, fit

CATALOG_FILE = Path(__file__).with_name("catalog.json")


@dataclass(frozen=True)
class GGUFSource:
    repo: str
    file_prefix: str

    def file_for(self, quant_label: str) -> str:
        """The usual file name for a quant in this repo (``...-Q4_K_M.gguf``)."""
        return f"{self.file_prefix}{quant_label}.gguf"


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    version: str
    shape: LlamaShape
    context: int
    original: str
    gguf: tuple[GGUFSource, ...]
    estimates: dict = field(default_factory=dict)     # qtype -> Estimate at a default context

    @property
    def parameters(self) -> int:
        return self.shape.parameters

    def hint(self, qtype: str, mem: MachineMemory) -> str:
        return fit(self.estimates[qtype], mem)


@lru_cache(maxsize=1)
def _load() -> dict:
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


def entries(context: Optional[int] = DEFAULT_N_CTX) -> list[CatalogEntry]:
    data = _load()
    out = []
    for m in data["models"]:
        shape = LlamaShape(**data["shapes"][m["shape"]])
        ctx = min(context or m["context"], m["context"])
        est: dict[str, Estimate] = {q: estimate(shape, q, ctx) for q in data["quants"]}
        out.append(CatalogEntry(m["id"], m["name"], m["version"], shape, m["context"], m["original"],
                                tuple(GGUFSource(**g) for g in m["gguf"]), est))
    return out


def find(entry_id: str) -> CatalogEntry:
    for e in entries():
        if e.id == entry_id:
            return e
    raise KeyError(entry_id)
