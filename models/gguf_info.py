"""What a GGUF file is, read from its header (no weights loaded).

``read_gguf_info(path)`` gives architecture, name, parameter count, quant type,
size, context length, chat template presence and the BOS/EOS/EOT tokens, plus
warnings such as the Llama 3 instruct file whose EOS is ``<|end_of_text|>``: such a
model never emits that token at the end of a turn, so a chat would run on.
Call ``gguf_validate.validate_gguf`` first on files from outside.

The header is read by ``common.gguf_header`` (the same walk that validates it): the
vocabulary (49K to 128K strings) is skipped over, and only the few tokens named by
id are read. gguf.GGUFReader builds an object for every one of those strings, which
took 3 to 30 seconds a file on a busy 2-core machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import gguf
from gguf.constants import Keys

from common.gguf_header import array_strings, mapped, parse_header

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


def quant_name(file_type) -> Optional[str]:
    try:
        name = gguf.LlamaFileType(int(file_type)).name
    except (TypeError, ValueError):
        return None
    return name.replace("MOSTLY_", "").replace("ALL_", "")


def read_gguf_info(path, *, total_size: Optional[int] = None) -> GGUFInfo:
    path = Path(path)
    with mapped(path) as buf:
        head = parse_header(buf)
        v = head.values
        ids = {"bos": v.get(Keys.Tokenizer.BOS_ID), "eos": v.get(Keys.Tokenizer.EOS_ID),
               "eot": v.get(Keys.Tokenizer.EOT_ID)}
        texts, eot_found = array_strings(buf, v.get(Keys.Tokenizer.LIST), ids.values(),
                                         "<|eot_id|>" if ids["eot"] is None else None)
    if ids["eot"] is None and eot_found is not None:
        ids["eot"], texts[eot_found] = eot_found, "<|eot_id|>"
    arch, name = head.architecture, v.get(Keys.General.NAME)
    template = v.get(Keys.Tokenizer.CHAT_TEMPLATE)
    ctx = head.arch_value(Keys.LLM.CONTEXT_LENGTH)

    def token(i):
        return texts.get(i) if isinstance(i, int) else None

    info = GGUFInfo(
        architecture=arch, name=name if isinstance(name, str) else None,
        parameters=sum(t.n_elements for t in head.tensors),
        quant=quant_name(v.get(Keys.General.FILE_TYPE)),
        file_size=total_size or path.stat().st_size,
        context_length=int(ctx) if isinstance(ctx, (int, float)) else None,
        has_chat_template=bool(template), bos=token(ids["bos"]), eos=token(ids["eos"]),
        eot=token(ids["eot"]),
        is_instruct=bool(template) or "instruct" in (name if isinstance(name, str) else "").lower())
    llama3 = info.architecture == "llama" and info.eot == "<|eot_id|>"
    if llama3 and info.is_instruct and info.eos == "<|end_of_text|>":
        info.warnings.append(EOS_WARNING)
    return info
