"""Llama 3 tokenizer metadata for GGUF, read from tokenizer.json and tokenizer_config.json.

Llama 3's tokenizer is recognised by what tokenizer.json contains, not by one flag:

- a byte-level BPE whose pre-tokenizer splits with Llama 3's regex;
- Llama 3's 256 special tokens right after the BPE vocabulary (Meta: ids
  128000..128255), with ``<|begin_of_text|>``, ``<|end_of_text|>``,
  ``<|start_header_id|>``, ``<|end_header_id|>`` and ``<|eot_id|>`` at their places
  (the reserved ones may carry other names: 3.0, 3.1 and 3.2 differ, and fine-tunes
  rename them);
- a fingerprint: the ids of a fixed multilingual text tokenized the way Meta's
  tokenizer works (a whole piece found in the vocabulary is one token; only other
  pieces go through the merges), hashed as llama.cpp's converter hashes a
  tokenization. Meta's own 128,000-entry vocabulary gives ``META_FINGERPRINT``.

The regex and the special-token layout identify Llama 3's tokenizer, so the GGUF
always gets ``tokenizer.ggml.pre = "llama-bpe"``, llama.cpp's implementation of
those semantics. Hugging Face's ``ignore_merges`` flag only says whether
``tokenizers`` follows them; files in the wild have it on, off, or absent (tools that
re-save a tokenizer drop or reset it), and Llama 3 was trained with Meta's tiktoken
tokenizer, which looks whole pieces up first, whatever the flag says. A vocabulary
that is not Meta's (a retrained or a test one) with the same regex and specials gets
the same semantics; the fingerprint tells the two apart in the verification report.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
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

N_SPECIAL = 256
# Offsets (from the first special token) that every Llama 3 tokenizer keeps.
SPECIAL_ANCHORS = {0: "<|begin_of_text|>", 1: "<|end_of_text|>", 6: "<|start_header_id|>",
                   7: "<|end_header_id|>", 9: "<|eot_id|>"}
META_BPE_SIZE = 128_000

# llama.cpp's pre-tokenizer check text (convert_hf_to_gguf_update.py), then words whose ids
# depend on looking whole pieces up first (with merges applied, " Việt" is 3 tokens, not 101798),
# already split by Llama 3's regex (a test checks the split), so no regex engine is needed here.
FINGERPRINT_PIECES = (
    '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n', '🚀', ' (', 'normal', ')', ' 😶\u200d🌫️',
    ' (', 'multiple', ' emojis', ' concatenated', ')', ' ✅', ' 🦙🦙', ' ', '3', ' ', '33', ' ', '333',
    ' ', '333', '3', ' ', '333', '33', ' ', '333', '333', ' ', '333', '333', '3', ' ', '333', '333',
    '33', ' ', '3', '.', '3', ' ', '3', '..', '3', ' ', '3', '...', '3', ' ក', 'ាន', '់ត', 'ែព',
    'ិស', 'េសអ', 'ាច', '😁', ' ?', '我想在apple工作', '131', '415', '1', '天', '～', ' ------=======',
    ' нещо', ' на', ' Български', ' \'\'\'\'\'\'```````""""......!!!!!!??????', ' I', "'ve",
    ' been', " '", 'told', ' he', "'s", ' there', ',', " '", 'RE', ' you', ' sure', '?', " '", 'M',
    ' not', ' sure', ' I', "'ll", ' make', ' it', ',', " '", 'D', ' you', ' like', ' some', ' tea',
    '?', ' We', "'Ve", ' a', "'lL", ' Việt', ' Nam', ',', ' soubor', ',', ' sektör', ',', ' Merkez',
)
FINGERPRINT_TEXT = "".join(FINGERPRINT_PIECES)
# sha256 of str(ids) for FINGERPRINT_TEXT with Meta's vocabulary (the same for Llama 3, 3.1, 3.2
# and 3.3: they share the 128,000 BPE entries and differ only in special-token names). Computed
# from Llama 3's vocabulary as llama.cpp ships it for its tokenizer tests (its tokenization of the
# check text hashes to llama.cpp's own llama-bpe value, 0ef9807a...) and from Llama 3.2's
# tokenizer.json as published; tests/test_convert_wild.py checks the latter.
META_FINGERPRINT = "0385bf5d44d735d083b4af7668279b87664258d44f6eb4a6a594af5a4cd151a4"


@dataclass(frozen=True)
class Llama3Tokenizer:
    """What recognition found in a tokenizer.json."""

    n_bpe: int                        # BPE vocabulary entries; the special tokens follow
    ignore_merges: Optional[bool]     # the file's flag: True, False, or None when absent
    fingerprint: Optional[str]        # None when not asked for, or the vocabulary cannot tokenize the text

    @property
    def meta_vocabulary(self) -> bool:
        return self.n_bpe == META_BPE_SIZE and self.fingerprint == META_FINGERPRINT

    @property
    def flag_overruled(self) -> bool:
        """The file does not ask ``tokenizers`` for Llama 3's semantics; the GGUF has them anyway."""
        return self.ignore_merges is not True

    def describe(self) -> str:
        if self.meta_vocabulary:
            return "Meta's Llama 3 vocabulary (fingerprint matches)"
        return f"a Llama 3-style vocabulary of {self.n_bpe:,} entries, not Meta's"


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


def _pre_tokenizers(pre) -> list[dict]:
    if not isinstance(pre, dict):
        return []
    if pre.get("type") == "Sequence":
        out = []
        for p in pre.get("pretokenizers") or []:
            out += _pre_tokenizers(p)
        return out
    return [pre]


def _split_regexes(pre) -> list[str]:
    out = []
    for p in _pre_tokenizers(pre):
        if p.get("type") == "Split":
            pattern = p.get("pattern") or {}
            out.append(pattern.get("Regex") or pattern.get("String") or "")
    return out


@lru_cache(maxsize=1)
def _byte_chars() -> tuple[str, ...]:
    """GPT-2's byte-to-character table, as byte-level BPE vocabularies spell bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return tuple(table[b] for b in range(256))


def _merge_pieces(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply the merges to one piece, lowest rank first (leftmost on ties), as BPE does."""
    while len(symbols) > 1:
        best, at = None, -1
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        symbols[at:at + 2] = [symbols[at] + symbols[at + 1]]
    return symbols


def llama3_ids(pieces, vocab: dict[str, int], merges: list) -> Optional[list[int]]:
    """Ids of already split ``pieces`` with Meta's semantics: whole piece first, else the merges.

    None when the vocabulary lacks a symbol the text needs.
    """
    chars = _byte_chars()
    ranks: dict[tuple[str, str], int] = {}
    for i, m in enumerate(merges):
        pair = tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
        if len(pair) == 2:
            ranks.setdefault(pair, i)
    ids: list[int] = []
    for piece in pieces:
        text = "".join(chars[b] for b in piece.encode("utf-8"))
        if text in vocab:
            ids.append(vocab[text])
            continue
        for s in _merge_pieces(list(text), ranks):
            if s not in vocab:
                return None
            ids.append(vocab[s])
    return ids


def fingerprint(vocab: dict[str, int], merges: list) -> Optional[str]:
    ids = llama3_ids(FINGERPRINT_PIECES, vocab, merges)
    return None if ids is None else hashlib.sha256(str(ids).encode()).hexdigest()


def recognize_llama3(tok: dict, *, with_fingerprint: bool = True) -> Llama3Tokenizer:
    """Check that ``tok`` (a parsed tokenizer.json) is Llama 3's tokenizer; see the module docstring.

    The fingerprint (a third of a second for Meta's vocabulary) only names the vocabulary, so
    converting skips it and verification, which reports it, computes it.
    """
    model = tok.get("model") if isinstance(tok.get("model"), dict) else {}
    if model.get("type") != "BPE":
        raise ConversionError(NOT_LLAMA3.format(why=f"it is a {model.get('type') or 'unknown'} tokenizer"))
    pre = tok.get("pre_tokenizer")
    if LLAMA3_PRETOKENIZER_REGEX not in _split_regexes(pre):
        raise ConversionError(NOT_LLAMA3.format(why="its pre-tokenizer does not split like Llama 3's"))
    if not any(p.get("type") == "ByteLevel" for p in _pre_tokenizers(pre)):
        raise ConversionError(NOT_LLAMA3.format(why="its BPE is not byte-level"))
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or sorted(vocab.values()) != list(range(len(vocab))):
        raise ConversionError(NOT_LLAMA3.format(why="its vocabulary is not numbered 0, 1, 2 ..."))
    n_bpe = len(vocab)
    added = {a.get("id"): a.get("content") for a in tok.get("added_tokens") or [] if isinstance(a, dict)}
    missing = [i for i in range(n_bpe, n_bpe + N_SPECIAL) if i not in added]
    if missing:
        raise ConversionError(NOT_LLAMA3.format(
            why=f"it lacks Llama 3's {N_SPECIAL} special tokens after its {n_bpe:,}-entry vocabulary "
                f"(nothing at id {missing[0]})"))
    for offset, name in SPECIAL_ANCHORS.items():
        if added[n_bpe + offset] != name:
            raise ConversionError(NOT_LLAMA3.format(
                why=f"id {n_bpe + offset} is {added[n_bpe + offset]!r} where Llama 3 has {name}"))
    flag = model.get("ignore_merges")
    return Llama3Tokenizer(n_bpe, flag if isinstance(flag, bool) else None,
                           fingerprint(vocab, model.get("merges") or []) if with_fingerprint else None)


def llama3_reference_json(tok: dict) -> str:
    """tokenizer.json text with ``ignore_merges`` on, for a Hugging Face ``tokenizers`` reference
    that tokenizes as Llama 3 does whatever the file's flag says."""
    fixed = dict(tok)
    fixed["model"] = dict(tok.get("model") or {}, ignore_merges=True)
    return json.dumps(fixed, ensure_ascii=False)


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


def _read_optional_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ConversionError(f"{path.name} cannot be read; download it again.") from None
    return data if isinstance(data, dict) else {}


def read_tokenizer(src: Path, vocab_size: int, config: dict) -> TokenizerMeta:
    src = Path(src)
    path = src / "tokenizer.json"
    if not path.is_file():
        raise ConversionError(f"{src} has no tokenizer.json; download the complete model repository.")
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ConversionError("tokenizer.json cannot be read; download it again.") from None
    if not isinstance(tok, dict):
        raise ConversionError("tokenizer.json is not a tokenizer; download it again.")
    recognize_llama3(tok, with_fingerprint=False)
    tok_config = _read_optional_json(src / "tokenizer_config.json")

    vocab: dict[str, int] = dict(tok["model"].get("vocab") or {})
    added = {a["id"]: a for a in tok.get("added_tokens") or []}
    for a in added.values():
        vocab[a["content"]] = a["id"]
    beyond = sorted((i, text) for text, i in vocab.items() if i >= vocab_size)
    if beyond:
        i, text = beyond[0]
        raise ConversionError(
            f"tokenizer.json defines {text} (id {i}) beyond the {vocab_size:,} tokens this model has "
            f"embeddings for (config.json's vocab_size), so it cannot be converted: the tokenizer belongs "
            f"to another model, such as a vision model with an image token, or the download is inconsistent.")
    n = vocab_size
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

    eot = vocab.get("<|eot_id|>")
    bos = _special_id(tok_config.get("bos_token"), vocab, n, None,
                      lambda: [config.get("bos_token_id"),
                               _read_optional_json(src / "generation_config.json").get("bos_token_id")])
    # An instruct model's turn ends with <|eot_id|>: when only a list of ids names the end
    # (config.json or generation_config.json, as Llama 3.1 writes them), that one is preferred.
    eos = _special_id(tok_config.get("eos_token"), vocab, n, eot,
                      lambda: [_read_optional_json(src / "generation_config.json").get("eos_token_id"),
                               config.get("eos_token_id")])
    if bos is None or eos is None:
        raise ConversionError("The tokenizer names no beginning- or end-of-text token; "
                              "download tokenizer_config.json again.")
    return TokenizerMeta(tokens, types, merges, bos, eos, eot, _chat_template(src, tok_config))


def _special_id(named, vocab: dict[str, int], n: int, eot: Optional[int], fallbacks) -> Optional[int]:
    """The id tokenizer_config.json names by text, else the first usable id from ``fallbacks()``
    (each an int or a list of ints; from a list, <|eot_id|> if it is there, else the first)."""
    text = _token_text(named)
    if text is not None and text in vocab:
        return vocab[text]
    for value in fallbacks():
        ids = value if isinstance(value, list) else [value]
        ids = [i for i in ids if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n]
        if ids:
            return eot if eot in ids else ids[0]
    return None
