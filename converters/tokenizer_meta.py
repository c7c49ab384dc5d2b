"""Llama 3 tokenizer metadata for GGUF, read from tokenizer.json and tokenizer_config.json.

Llama 3's BPE is recognised from tokenizer.json itself: a byte-level BPE with
``ignore_merges`` whose pre-tokenizer splits with Llama 3's regex. That is what
``tokenizer.ggml.pre = "llama-bpe"`` selects inside llama.cpp.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from converters.errors import ConversionError

LLAMA3_PRETOKENIZER_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5
NOT_LLAMA3 = ("This model's tokenizer is not Llama 3's BPE tokenizer ({why}), so it cannot be "
              "converted: LlamaDesk converts Llama 3, 3.1, 3.2 and 3.3 checkpoints.")


@dataclass
class TokenizerMeta:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    bos_id: int
    eos_id: int
    eot_id: Optional[int]
    chat_template: Optional[str]

    @property
    def eos_token(self) -> str:
        return self.tokens[self.eos_id]

    @property
    def bos_token(self) -> str:
        return self.tokens[self.bos_id]


def _split_regexes(pre) -> list[str]:
    if not isinstance(pre, dict):
        return []
    if pre.get("type") == "Sequence":
        out = []
        for p in pre.get("pretokenizers") or []:
            out += _split_regexes(p)
        return out
    if pre.get("type") == "Split":
        pattern = pre.get("pattern") or {}
        return [pattern.get("Regex") or pattern.get("String") or ""]
    return []


def check_llama3_bpe(tok: dict) -> None:
    model = tok.get("model") or {}
    if model.get("type") != "BPE":
        raise ConversionError(NOT_LLAMA3.format(why=f"it is a {model.get('type') or 'unknown'} tokenizer"))
    if not model.get("ignore_merges", False):
        raise ConversionError(NOT_LLAMA3.format(why="its BPE does not ignore merges"))
    if LLAMA3_PRETOKENIZER_REGEX not in _split_regexes(tok.get("pre_tokenizer")):
        raise ConversionError(NOT_LLAMA3.format(why="its pre-tokenizer does not split like Llama 3's"))


def _token_text(value) -> Optional[str]:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(src: Path, tok_config: dict) -> Optional[str]:
    tmpl = tok_config.get("chat_template")
    if isinstance(tmpl, list):  # [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in tmpl if isinstance(t, dict)}
        tmpl = named.get("default") or next(iter(named.values()), None)
    if not tmpl and (src / "chat_template.jinja").is_file():
        tmpl = (src / "chat_template.jinja").read_text(encoding="utf-8")
    return tmpl or None


def read_tokenizer(src: Path, vocab_size: int, config: dict) -> TokenizerMeta:
    src = Path(src)
    path = src / "tokenizer.json"
    if not path.is_file():
        raise ConversionError(f"{src} has no tokenizer.json; download the complete model repository.")
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ConversionError("tokenizer.json cannot be read; download it again.") from None
    check_llama3_bpe(tok)
    tok_config = {}
    if (src / "tokenizer_config.json").is_file():
        try:
            tok_config = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise ConversionError("tokenizer_config.json cannot be read; download it again.") from None

    vocab: dict[str, int] = dict(tok["model"].get("vocab") or {})
    added = {a["id"]: a for a in tok.get("added_tokens") or []}
    for a in added.values():
        vocab[a["content"]] = a["id"]
    n = max(vocab_size, max(vocab.values(), default=-1) + 1)
    if n > vocab_size:
        raise ConversionError(f"tokenizer.json has ids up to {n - 1} but config.json's vocab_size is "
                              f"{vocab_size}; the download is inconsistent.")
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [UNUSED] * n
    for text, i in vocab.items():
        tokens[i] = text
        if i in added:
            types[i] = CONTROL if added[i].get("special") else USER_DEFINED
        else:
            types[i] = NORMAL

    merges = []
    for m in tok["model"].get("merges") or []:
        merges.append(m if isinstance(m, str) else " ".join(m))

    def token_id(key: str, fallback) -> Optional[int]:
        text = _token_text(tok_config.get(key))
        if text is not None and text in vocab:
            return vocab[text]
        if isinstance(fallback, list):
            fallback = fallback[0] if fallback else None
        return int(fallback) if fallback is not None else None

    bos = token_id("bos_token", config.get("bos_token_id"))
    eos = token_id("eos_token", config.get("eos_token_id"))
    if bos is None or eos is None:
        raise ConversionError("The tokenizer names no beginning- or end-of-text token; "
                              "download tokenizer_config.json again.")
    return TokenizerMeta(tokens, types, merges, bos, eos, vocab.get("<|eot_id|>"), _chat_template(src, tok_config))
