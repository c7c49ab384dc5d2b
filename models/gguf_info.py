"""What a GGUF file is, read from its header with gguf.GGUFReader (no weights loaded).

``read_gguf_info(path)`` gives architecture, name, parameter count, quant type,
size, context length, chat template presence and the BOS/EOS/EOT tokens, plus
warnings such as the Llama 3 instruct file whose EOS is ``<|end_of_text|>``: such a
model never emits that token at the end of a turn, so a chat would run on.
Call ``gguf_validate.validate_gguf`` first on files from outside.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

EOS_WARNING = ("EOS is <|end_of_text|> but this is a Llama 3 instruct model, whose turns end with "
               "<|eot_id|>: replies may run on past the end of the answer. Use a GGUF whose EOS is "
               "<|eot_id|> (re-convert it with LlamaDesk).")


@dataclass
class GGUFInfo:
    architecture: Optional[str]
    name: Optional[str]
    parameters: int
    quant: Optional[str]
    file_size: int
    context_length: Optional[int]
    has_chat_template: bool
    bos: Optional[str]
    eos: Optional[str]
    eot: Optional[str]
    is_instruct: bool
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GGUFInfo":
        return cls(**d)


def _value(reader, key: str):
    f = reader.fields.get(key)
    if f is None:
        return None
    try:
        return f.contents()
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _token(reader, token_id) -> Optional[str]:
    f = reader.fields.get("tokenizer.ggml.tokens")
    if f is None or token_id is None or not 0 <= int(token_id) < len(f.data):
        return None
    return f.contents(int(token_id))


def _find_token(reader, text: str) -> Optional[int]:
    f = reader.fields.get("tokenizer.ggml.tokens")
    if f is None:
        return None
    needle = text.encode()
    for i, idx in enumerate(f.data):
        if f.parts[idx].tobytes() == needle:
            return i
    return None


def quant_name(file_type) -> Optional[str]:
    import gguf

    try:
        name = gguf.LlamaFileType(int(file_type)).name
    except (TypeError, ValueError):
        return None
    return name.replace("MOSTLY_", "").replace("ALL_", "")


def read_gguf_info(path, *, total_size: Optional[int] = None) -> GGUFInfo:
    import gguf

    path = Path(path)
    reader = gguf.GGUFReader(path)
    try:
        arch = _value(reader, "general.architecture")
        name = _value(reader, "general.name")
        template = _value(reader, "tokenizer.chat_template")
        bos = _token(reader, _value(reader, "tokenizer.ggml.bos_token_id"))
        eos = _token(reader, _value(reader, "tokenizer.ggml.eos_token_id"))
        eot_id = _value(reader, "tokenizer.ggml.eot_token_id")
        if eot_id is None:
            eot_id = _find_token(reader, "<|eot_id|>")
        eot = _token(reader, eot_id)
        params = sum(int(t.n_elements) for t in reader.tensors)
        ctx = _value(reader, f"{arch}.context_length") if arch else None
        info = GGUFInfo(
            architecture=arch, name=name, parameters=params,
            quant=quant_name(_value(reader, "general.file_type")),
            file_size=total_size or path.stat().st_size,
            context_length=int(ctx) if ctx is not None else None,
            has_chat_template=bool(template), bos=bos, eos=eos, eot=eot,
            is_instruct=bool(template) or "instruct" in (name or "").lower())
    finally:
        del reader
    llama3 = info.architecture == "llama" and info.eot == "<|eot_id|>"
    if llama3 and info.is_instruct and info.eos == "<|end_of_text|>":
        info.warnings.append(EOS_WARNING)
    return info
