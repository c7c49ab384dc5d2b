"""How measured quantization quality reads in the window (models.quant_quality says what it means)."""
from __future__ import annotations

from html import escape
from typing import Optional

from common.task import format_bytes
from models.quant_quality import UNQUANTIZED, describe, format_kld, verdict


def format_duration(seconds: float) -> str:
    """'40 s', '3 min', '1 h 10 min'."""
    seconds = max(1, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    minutes = int(round(seconds / 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def measure_option_text(seconds: Optional[float]) -> str:
    """The convert tab's check box: what it does and, when known, what it costs."""
    cost = f" (adds about {format_duration(seconds)})" if seconds else ""
    return f"Measure quality against the original{cost}"


def quality_details(q: dict) -> str:
    """The figures behind the sentence, for the details panel."""
    return (f"KLD {q['kld']:.4f} ± {q['kld_ci95']:.4f}, same top token {100 * q['same_top']:.1f}% "
            f"± {100 * q['same_top_ci95']:.1f}%, perplexity {q['ppl_other']:.2f} vs {q['ppl_base']:.2f} "
            f"(×{q['ppl_ratio']:.3f}); against {q['base_name']} ({q.get('base_quant') or '?'}) on "
            f"{q['text_name']}, {q['tokens']:,} tokens")


def quality_html(entry, reference=None) -> str:
    """The library's "Quality" value for a GGUF: measured, or "not measured" and what it could
    be measured against; empty for an unquantized file (it is the original)."""
    info = entry.info
    quant = (info.quant or "").upper() if info else ""
    q = entry.quality
    if q:
        return (f"{escape(describe(q, quant))}<br><span style='color:#6b7280'>{escape(quality_details(q))}"
                f"</span>")
    if not info or quant in UNQUANTIZED:
        return ""
    if reference is not None:
        return f"not measured: it can be measured against {escape(reference.name)}"
    return "not measured (no F16, BF16 or Q8_0 of the same model is in the library to compare it with)"


def conversions_html(entries) -> str:
    """Files already made from the chosen checkpoint, side by side: quant, size, measured quality."""
    if not entries:
        return ""
    rows = []
    for e in entries:
        q = e.quality
        quant = escape((e.info.quant if e.info else None) or e.provenance.get("quant") or "?")
        same = f"{100 * q['same_top']:.0f}%" if q else "not measured"
        kld = format_kld(q["kld"]) if q else "–"
        words = escape(verdict(q["kld"], q.get("other_quant") or quant)) if q else ""
        rows.append(f"<tr><td>{quant}</td><td>{format_bytes(e.size)}</td><td>{same}</td><td>{kld}</td>"
                    f"<td>{words}</td><td>{escape(e.name)}</td></tr>")
    head = ("<tr><th align=left>Quant</th><th align=left>Size</th><th align=left>Same next token</th>"
            "<th align=left>KLD</th><th align=left>Against published figures</th><th align=left>File</th></tr>")
    return (f"<b>Already made from this checkpoint</b><table cellspacing=0 cellpadding=3>{head}"
            f"{''.join(rows)}</table>")
