"""Prove a converted GGUF is usable before it is called done.

Checks: llama.cpp loads it; its end-of-generation set includes ``<|eot_id|>``; its
chat template renders a two-turn conversation; its tokenizer matches Hugging Face
``tokenizers`` on a fixed corpus (when that package is installed), tokenizing with merges
ignored as Meta's Llama 3 tokenizer does, whatever tokenizer.json's ``ignore_merges`` flag
says (the report says when the file had it off); a short prompt
evaluates to finite logits (for files up to 1 GiB: beyond that, reading every weight
would take the process past its memory target; fidelity is covered by the tests).
"""
from __future__ import annotations

import ctypes
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from common.task import format_parameters
from converters.errors import ConversionError
from converters.tokenizer_meta import llama3_reference_json, recognize_llama3
from converters.verify_corpus import TOKENIZER_CORPUS

FULL_LOAD_MAX_BYTES = 1024 ** 3  # above this, building or evaluating would map more than the memory target
TWO_TURNS = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Italy?"},
]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass
class VerificationReport:
    path: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Optional[Check]:
        return next((c for c in self.checks if c.name == name), None)

    def summary(self) -> str:
        lines = []
        for c in self.checks:
            mark = "skip" if c.skipped else "ok" if c.ok else "FAIL"
            lines.append(f"  [{mark:>4}] {c.name}: {c.detail}")
        return "\n".join(lines)


def render_chat_template(template: str, messages, bos_token: str, eos_token: str) -> str:
    """Render a chat template the way the engine does: the project's one bounded sandbox."""
    from common.jinja_sandbox import render_template

    return render_template(template, messages=messages, bos_token=bos_token,
                           eos_token=eos_token, add_generation_prompt=True)


class _LoadedModel:
    """A model built by llama.cpp from a memory-mapped GGUF without reading its weights."""

    def __init__(self, path: Path, vocab_only: bool):
        import llama_cpp

        self._lib = llama_cpp
        self.vocab_only = vocab_only
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0
        params.use_mmap = True
        params.use_extra_bufts = False  # no repacked weight copies: this must stay cheap in memory
        params.vocab_only = vocab_only
        with _quiet_llama_log():
            self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model) if self.model else None

    def close(self) -> None:
        if self.model:
            with _quiet_llama_log():
                self._lib.llama_model_free(self.model)
            self.model = None

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = True) -> list[int]:
        n = len(text) + 8
        buf = (self._lib.llama_token * n)()
        got = self._lib.llama_tokenize(self.vocab, text, len(text), buf, n, add_bos, special)
        return list(buf[:got])

    def piece(self, token: int) -> str:
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        return buf.raw[:max(0, n)].decode("utf-8", "replace")

    def describe(self) -> str:
        lib = self._lib
        if self.vocab_only:
            return f"llama.cpp read it: {lib.llama_vocab_n_tokens(self.vocab)} tokens"
        desc = ctypes.create_string_buffer(128)
        lib.llama_model_desc(self.model, desc, len(desc))
        return (f"llama.cpp built {model_kind(desc.value.decode(errors='replace'))}: "
                f"{format_parameters(lib.llama_model_n_params(self.model))} parameters, "
                f"{lib.llama_model_n_layer(self.model)} layers, {lib.llama_vocab_n_tokens(self.vocab)} tokens")


def model_kind(desc: str) -> str:
    """llama.cpp's "llama 8B Q4_K - Medium" without its size label ("8B", or "?B" for a
    size it has no name for): the parameter count is said once, by format_parameters."""
    parts = desc.split(" ", 2)
    if len(parts) == 3 and re.fullmatch(r"(\?|\S*\d\S*)[KMBT]", parts[1]):
        return f"{parts[0]} {parts[2]}"
    return desc


class _quiet_llama_log:
    """Keep llama.cpp's loader chatter (forwarded to llama-cpp-python's logger) off the terminal."""

    def __enter__(self):
        import logging

        self._logger = logging.getLogger("llama-cpp-python")
        self._level = self._logger.level
        self._logger.setLevel(max(self._level, logging.ERROR))

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)


def verify_gguf(path: Path, tokenizer_json: Optional[Path] = None, *, threads: Optional[int] = None,
                eot_text: str = "<|eot_id|>") -> VerificationReport:
    report = VerificationReport(Path(path))
    report.checks.append(check_tensor_layout(path))
    if not report.checks[-1].ok:
        return report
    # llama.cpp maps the whole file with MAP_POPULATE when it builds a model, so above the
    # memory target only the header and vocabulary go through it; the layout check above
    # has then compared every tensor with what llama.cpp's llama architecture requires.
    full = Path(path).stat().st_size <= FULL_LOAD_MAX_BYTES
    model = _LoadedModel(path, vocab_only=not full)
    try:
        if not model.model:
            report.checks.append(Check("loads", False, "llama.cpp could not load the file"))
            return report
        how = "" if full else " (header and vocabulary; weights not mapped, to keep memory bounded)"
        report.checks.append(Check("loads", True, model.describe() + how))
        report.checks.append(_check_eog(model, eot_text))
        report.checks.append(_check_template(model))
        report.checks.append(_check_tokenizer(model, tokenizer_json))
        if full:
            report.checks.append(_check_decode(model, threads))
        else:
            size = Path(path).stat().st_size
            report.checks.append(Check("evaluates", True, f"skipped for a {size / 1e9:.1f} GB file to keep "
                                                          f"memory bounded", skipped=True))
    finally:
        model.close()
    return report


def _llama_tensor_shapes(meta: dict) -> dict[str, tuple[int, ...]]:
    """GGUF shapes (innermost dim first) that llama.cpp's llama architecture needs."""
    n_embd, n_ff = meta["llama.embedding_length"], meta["llama.feed_forward_length"]
    n_head, n_kv = meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]
    head_dim = meta.get("llama.attention.key_length", n_embd // n_head)
    n_vocab = meta["n_vocab"]
    shapes = {"token_embd.weight": (n_embd, n_vocab), "output_norm.weight": (n_embd,)}
    for i in range(meta["llama.block_count"]):
        b = f"blk.{i}."
        shapes.update({b + "attn_norm.weight": (n_embd,), b + "attn_q.weight": (n_embd, n_head * head_dim),
                       b + "attn_k.weight": (n_embd, n_kv * head_dim), b + "attn_v.weight": (n_embd, n_kv * head_dim),
                       b + "attn_output.weight": (n_head * head_dim, n_embd), b + "ffn_norm.weight": (n_embd,),
                       b + "ffn_gate.weight": (n_embd, n_ff), b + "ffn_up.weight": (n_embd, n_ff),
                       b + "ffn_down.weight": (n_ff, n_embd)})
    return shapes


def check_tensor_layout(path: Path) -> Check:
    """Every tensor the llama architecture needs is present, shaped right, and inside the file."""
    import gguf

    from common.gguf_header import GGUFArray, read_header

    try:
        layout = read_header(path, data=False)
    except (OSError, ValueError) as e:
        return Check("tensors", False, f"the GGUF header cannot be read: {e}")
    meta = {k: v for k, v in layout.values.items() if k.startswith("llama.")}
    tokens = layout.values.get(gguf.Keys.Tokenizer.LIST)
    meta["n_vocab"] = tokens.count if isinstance(tokens, GGUFArray) else 0
    try:
        expected = _llama_tensor_shapes(meta)
    except KeyError as e:
        return Check("tensors", False, f"the metadata lacks {e}")
    found = {t.name: t for t in layout.tensors}
    for name, shape in expected.items():
        t = found.get(name)
        if t is None:
            return Check("tensors", False, f"{name} is missing")
        if t.shape != shape:
            return Check("tensors", False, f"{name} has shape {list(t.shape)}, expected {list(shape)}")
    end = max(t.offset + t.nbytes for t in layout.tensors)
    if end > layout.file_size:
        return Check("tensors", False, f"tensor data runs past the end of the file "
                                       f"({end} > {layout.file_size} bytes)")
    extra = sorted(set(found) - set(expected) - {"output.weight", "rope_freqs.weight"})
    if extra:
        return Check("tensors", False, f"unexpected tensors: {', '.join(extra[:3])}")
    types = sorted({gguf.GGMLQuantizationType(t.ggml_type).name for t in layout.tensors})
    return Check("tensors", True, f"{len(found)} tensors laid out as llama.cpp expects ({', '.join(types)})")


def _check_eog(model: _LoadedModel, eot_text: str) -> Check:
    lib = model._lib
    ids = model.tokenize(eot_text.encode(), special=True)
    if len(ids) != 1:
        return Check("end_of_generation", False, f"{eot_text} is not a single token in the vocabulary")
    eot, eos = ids[0], lib.llama_vocab_eos(model.vocab)
    if not lib.llama_vocab_is_eog(model.vocab, eot):
        return Check("end_of_generation", False, f"{eot_text} (id {eot}) does not end generation")
    return Check("end_of_generation", True,
                 f"{eot_text} (id {eot}) ends generation; EOS is {model.piece(eos)} (id {eos})")


def _check_template(model: _LoadedModel) -> Check:
    lib = model._lib
    raw = lib.llama_model_chat_template(model.model, None)
    if not raw:
        return Check("chat_template", True, "no chat template in the checkpoint (a base model): chat uses "
                                            "LlamaDesk's built-in Llama 3 format", skipped=True)
    template = raw.decode("utf-8", "replace")
    bos = model.piece(lib.llama_vocab_bos(model.vocab))
    eos = model.piece(lib.llama_vocab_eos(model.vocab))
    try:
        text = render_chat_template(template, TWO_TURNS, bos, eos)
    except Exception as e:  # any template error means the GUI could not chat with this file
        return Check("chat_template", False, f"the chat template does not render: {e}")
    pos = 0
    for m in TWO_TURNS[1:]:
        found = text.find(m["content"], pos)
        if found < 0:
            return Check("chat_template", False, f"the rendered conversation lacks the {m['role']} turn")
        pos = found + len(m["content"])
    n = len(model.tokenize(text.encode(), special=True))
    return Check("chat_template", True, f"renders a two-turn conversation ({n} tokens)")


FLAG_OFF_NOTE = ("tokenizer.json had ignore_merges {state}; converted with Llama 3's tokenizer semantics, "
                 "as Meta trained it")


def _check_tokenizer(model: _LoadedModel, tokenizer_json: Optional[Path]) -> Check:
    """llama.cpp's ids against Hugging Face ``tokenizers`` with merges ignored, as Llama 3 tokenizes
    (whatever the file's own ``ignore_merges`` says; see converters/tokenizer_meta.py)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return Check("tokenizer_parity", True, "the tokenizers package is not installed", skipped=True)
    if tokenizer_json is None or not Path(tokenizer_json).is_file():
        return Check("tokenizer_parity", True, "no tokenizer.json to compare with", skipped=True)
    data = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    try:
        recognized = recognize_llama3(data)
    except ConversionError:
        recognized = None
    hf = Tokenizer.from_str(llama3_reference_json(data))
    merged = Tokenizer.from_str(json.dumps(dict(data, model=dict(data["model"], ignore_merges=False))))
    n_tokens = flag_sensitive = 0
    for text in TOKENIZER_CORPUS:
        ours = model.tokenize(text.encode("utf-8"), special=True)
        theirs = hf.encode(text, add_special_tokens=False).ids
        if list(ours) != list(theirs):
            return Check("tokenizer_parity", False, f"llama.cpp and tokenizers disagree on {text[:40]!r}")
        n_tokens += len(ours)
        flag_sensitive += merged.encode(text, add_special_tokens=False).ids != theirs
    detail = (f"identical ids on {len(TOKENIZER_CORPUS)} texts ({n_tokens} tokens) with merges ignored, "
              f"as Llama 3 tokenizes ({flag_sensitive} of the texts split otherwise with merges applied)")
    if recognized is not None:
        detail += f"; {recognized.describe()}"
        if recognized.flag_overruled:
            detail += "; " + FLAG_OFF_NOTE.format(state="off" if recognized.ignore_merges is False
                                                  else "unset (off)")
    return Check("tokenizer_parity", True, detail)


def _check_decode(model: _LoadedModel, threads: Optional[int]) -> Check:
    """Evaluate a short prompt on the model already built (no second load, no repacking)."""
    import numpy as np

    lib = model._lib
    params = lib.llama_context_default_params()
    params.n_ctx = params.n_batch = params.n_ubatch = 32
    params.n_threads = params.n_threads_batch = threads or os.cpu_count() or 1
    with _quiet_llama_log():
        ctx = lib.llama_init_from_model(model.model, params)
    if not ctx:
        return Check("evaluates", False, "llama.cpp could not create a context for the model")
    try:
        tokens = model.tokenize(b"The capital of France is", add_bos=True, special=False)
        arr = (lib.llama_token * len(tokens))(*tokens)
        if lib.llama_decode(ctx, lib.llama_batch_get_one(arr, len(tokens))) != 0:
            return Check("evaluates", False, "llama.cpp could not evaluate a short prompt")
        n_vocab = lib.llama_vocab_n_tokens(model.vocab)
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(n_vocab,)).copy()
    finally:
        with _quiet_llama_log():   # freeing a context logs its buffer sizes
            lib.llama_free(ctx)
    if not np.all(np.isfinite(logits)):
        return Check("evaluates", False, "a short prompt gives non-finite logits")
    return Check("evaluates", True, f"a {len(tokens)}-token prompt gives finite logits")
