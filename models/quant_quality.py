"""What a quantized file's measured quality means, in words, against published figures.

A measurement (``engine.quality.QualityReport.to_dict()``, stored with the file by
``models.library.record_quality``) says how often the file picks the same next token
as its original and how far its predictions drift (mean KL divergence). This module
puts that next to llama.cpp's published figures for Llama 3 8B (the data file
``quality_reference.json`` beside it) and finds, for an unmeasured file, a file in
the library it can be measured against (an F32/F16/BF16 or Q8_0 of the same model).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Optional

REFERENCE_FILE = Path(__file__).with_name("quality_reference.json")
# Files good enough to be "the original", best first.
REFERENCE_QUANTS = ("F32", "BF16", "F16", "Q8_0")
UNQUANTIZED = ("F32", "BF16", "F16")
TYPICAL_FACTOR = 2.0      # within this factor of the published KLD counts as typical


@lru_cache(maxsize=1)
def reference_table() -> dict:
    """The published figures: {"model", "base", "rows": [{"quant", "kld", "same_top", "ppl"}]}."""
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


def reference_row(quant: Optional[str]) -> Optional[dict]:
    quant = (quant or "").upper()
    return next((r for r in reference_table()["rows"] if r["quant"] == quant), None)


def format_kld(kld: float) -> str:
    """Two significant figures: 0.031, 0.0014, 0.45."""
    if kld <= 0 or kld < 5e-6:
        return "0"
    return f"{kld:.2g}" if kld < 1 else f"{kld:.2f}"


def verdict(kld: float, quant: Optional[str]) -> str:
    """'typical for Q4_K_M', or which published quant the loss is closest to."""
    rows = [r for r in reference_table()["rows"] if r.get("kld")]
    own = reference_row(quant)
    model = reference_table()["model"]
    if own and own.get("kld") and kld > 0 and 1 / TYPICAL_FACTOR <= kld / own["kld"] <= TYPICAL_FACTOR:
        return f"typical for {own['quant']}"
    if kld <= 0:
        return "no measurable loss"
    nearest = min(rows, key=lambda r: abs(math.log(kld / r["kld"])))
    if own and own.get("kld"):
        more = "more" if kld > own["kld"] else "less"
        return (f"{more} loss than a typical {own['quant']} (KLD {format_kld(own['kld'])} on {model}), "
                f"about what {nearest['quant']} gives")
    return f"about what {nearest['quant']} gives on {model}"


def describe(quality: dict, quant: Optional[str] = None) -> str:
    """'agrees with the original on 92% of next tokens (KLD 0.031), typical for Q4_K_M'."""
    base = quality.get("base_quant")
    against = "the original" if not base or base.upper() in UNQUANTIZED else base.upper()
    pct = 100 * float(quality["same_top"])
    pct_text = f"{pct:.0f}%" if pct < 99.5 or pct == 100 else f"{pct:.1f}%"
    kld = float(quality["kld"])
    quant = quant or quality.get("other_quant")
    return (f"agrees with {against} on {pct_text} of next tokens (KLD {format_kld(kld)}), "
            f"{verdict(kld, quant)}")


def short(quality: dict) -> str:
    """'92% same next token · KLD 0.031' for tight spaces."""
    return f"{100 * float(quality['same_top']):.0f}% same next token · KLD {format_kld(float(quality['kld']))}"


def find_reference(entry, entries) -> Optional[object]:
    """A library entry ``entry`` can be measured against: the same model (name, architecture,
    parameter count) at F32/BF16/F16 or Q8_0, better than ``entry`` itself; None if there is none."""
    info = getattr(entry, "info", None)
    if info is None or getattr(entry, "kind", "gguf") != "gguf" or (info.quant or "").upper() in UNQUANTIZED:
        return None
    own_rank = REFERENCE_QUANTS.index(info.quant.upper()) if (info.quant or "").upper() in REFERENCE_QUANTS else 99
    best, best_rank = None, own_rank
    for e in entries:
        other = getattr(e, "info", None)
        if e is entry or other is None or e.kind != "gguf" or not e.usable or e.path == entry.path:
            continue
        if (other.architecture, other.parameters) != (info.architecture, info.parameters):
            continue
        if info.name and other.name and info.name != other.name:
            continue
        q = (other.quant or "").upper()
        if q in REFERENCE_QUANTS and REFERENCE_QUANTS.index(q) < best_rank:
            best, best_rank = e, REFERENCE_QUANTS.index(q)
    return best


def conversions_of(entries, *, source_path=None, repo_id: Optional[str] = None) -> list:
    """The library's GGUFs converted from this checkpoint folder or Hub repo, smallest first."""
    source = str(Path(source_path).expanduser().resolve()) if source_path else None
    found = []
    for e in entries:
        prov = getattr(e, "provenance", None) or {}
        if getattr(e, "kind", "") != "gguf" or prov.get("origin") != "converted":
            continue
        if (source and prov.get("source_path") == source) or (repo_id and prov.get("repo") == repo_id):
            found.append(e)
    return sorted(found, key=lambda e: e.size)
