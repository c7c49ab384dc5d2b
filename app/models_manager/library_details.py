"""How the library tab describes a model: one list line, and a details table."""
from __future__ import annotations

from html import escape

from common.task import format_bytes, format_parameters
from models.bundled import NOT_REMOVABLE

ORIGINS = {"downloaded": "Downloaded from", "converted": "Converted from", "imported": "Imported from"}
SOURCES = {"models": "models folder", "hf-cache": "Hugging Face cache", "folder": "your folder",
           "demo": "comes with LlamaDesk"}


def list_text(entry) -> str:
    """Two lines for the list: the name, then what it is (or why it is refused)."""
    if entry.problem:
        what = "not a valid GGUF" if entry.kind == "gguf" else "cannot be converted"
        return f"✗ {entry.name}\n   refused: {what}"
    if entry.kind == "checkpoint":
        return f"{entry.name}\n   original checkpoint · {format_bytes(entry.size)} · convert it to chat"
    info = entry.info
    bits = [info.quant or "GGUF", format_bytes(entry.size)] if info else ["GGUF", format_bytes(entry.size)]
    if info and info.parameters:
        bits.insert(0, f"{format_parameters(info.parameters)} parameters")
    if entry.kind == "gguf" and entry.quality:
        bits.append(f"{100 * entry.quality['same_top']:.0f}% same next token")
    if entry.source == "demo":
        bits.append("demo model, ready to chat")
    mark = "⚠ " if entry.warnings else ""
    return f"{mark}{entry.name}\n   {' · '.join(bits)}"


def _row(label: str, value: str) -> str:
    return f"<tr><td style='padding-right:14px'><b>{escape(label)}</b></td><td>{value}</td></tr>"


def details_html(entry, reference=None) -> str:
    """The metadata of one library entry as a small HTML table; ``reference`` is the library file
    an unmeasured quantized GGUF could be measured against (``quant_quality.find_reference``)."""
    from app.models_manager.quality_views import quality_html

    rows = []
    info = entry.info
    if entry.kind == "checkpoint":
        rows.append(_row("Kind", "Hugging Face checkpoint (safetensors): convert it to GGUF to chat"))
    elif info is not None:
        rows += [
            _row("Architecture", escape(info.architecture or "?")),
            _row("Parameters", format_parameters(info.parameters)),
            _row("Quantization", escape(info.quant or "?")),
            _row("Size", format_bytes(entry.size)),
            _row("Context length", f"{info.context_length:,} tokens" if info.context_length else "?"),
            _row("Chat template", "yes" if info.has_chat_template else "no (a base model: plain completion)"),
            _row("BOS / EOS / EOT", " / ".join(escape(t or "–") for t in (info.bos, info.eos, info.eot))),
        ]
    else:
        rows.append(_row("Size", format_bytes(entry.size)))
    quality = quality_html(entry, reference) if info is not None and entry.kind == "gguf" else ""
    if quality:
        rows.insert(3, _row("Quality", quality))
    if len(entry.files) > 1 and entry.kind == "gguf":
        rows.append(_row("Files", f"{len(entry.files)} parts"))
    rows.append(_row("Location", f"{escape(str(entry.path))} ({SOURCES.get(entry.source, entry.source)})"))
    prov = entry.provenance or {}
    origin = ORIGINS.get(prov.get("origin", ""))
    if origin:
        where = prov.get("repo") or prov.get("source_path") or "?"
        rev = f" @ {prov['revision'][:10]}" if prov.get("revision") else ""
        rows.append(_row("Origin", f"{origin} {escape(where)}{escape(rev)}"))
    note = f"<p>{escape(NOT_REMOVABLE)}</p>" if entry.source == "demo" else ""
    return f"<p><b>{escape(entry.name)}</b></p><table>{''.join(rows)}</table>{note}"


def warning_text(entry) -> str:
    """What the user must know before chatting with it: a refusal or the metadata warnings."""
    if entry.problem:
        if entry.kind == "checkpoint":
            return f"This checkpoint was refused and will not be converted: {entry.problem}"
        what = "model" if len(entry.files) > 1 else "file"
        return f"This {what} was refused and will not be opened: {entry.problem}"
    return "\n".join(entry.warnings)
