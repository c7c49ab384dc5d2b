"""Prove a converted GGUF is usable before it is called done.

Checks: llama.cpp loads it; its end-of-generation set includes ``<|eot_id|>``; its
chat template renders a two-turn conversation; its tokenizer matches Hugging Face
``tokenizers`` on a fixed corpus (when that package is installed); a short prompt
evaluates to finite logits (skipped for very large files to keep it quick).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from converters.verify_corpus import TOKENIZER_CORPUS

SMOKE_DECODE_MAX_BYTES = 16 * 1024 ** 3
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
    """Render a chat template the way llama-cpp-python does: a sandboxed Jinja environment."""
    import datetime

    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    return env.from_string(template).render(messages=messages, bos_token=bos_token,
                                            eos_token=eos_token, add_generation_prompt=True)


def verify_gguf(path: Path, tokenizer_json: Optional[Path] = None, *, threads: Optional[int] = None,
                eot_text: str = "<|eot_id|>") -> VerificationReport:
    import llama_cpp

    report = VerificationReport(Path(path))
    try:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=32, n_batch=32, logits_all=True,
                              n_threads=threads or os.cpu_count() or 1, n_gpu_layers=0, verbose=False)
    except Exception as e:  # llama.cpp reports every load failure as a ValueError/RuntimeError
        report.checks.append(Check("loads", False, f"llama.cpp could not load the file: {e}"))
        return report
    try:
        meta = llm.metadata
        report.checks.append(Check("loads", True, (
            f"{llm.n_vocab()} tokens, {meta.get('llama.block_count', '?')} layers, "
            f"file type {meta.get('general.file_type', '?')}")))
        report.checks.append(_check_eog(llm, eot_text))
        report.checks.append(_check_template(llm))
        report.checks.append(_check_tokenizer(llm, tokenizer_json))
        report.checks.append(_check_decode(llm, path))
    finally:
        llm.close()
    return report


def _check_eog(llm, eot_text: str) -> Check:
    import llama_cpp

    ids = llm.tokenize(eot_text.encode(), add_bos=False, special=True)
    if len(ids) != 1:
        return Check("end_of_generation", False, f"{eot_text} is not a single token in the vocabulary")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    eot = ids[0]
    eos = llama_cpp.llama_vocab_eos(vocab)
    if not llama_cpp.llama_vocab_is_eog(vocab, eot):
        return Check("end_of_generation", False, f"{eot_text} (id {eot}) does not end generation")
    eos_text = llm.detokenize([eos], special=True).decode("utf-8", "replace")
    return Check("end_of_generation", True, f"{eot_text} (id {eot}) ends generation; EOS is {eos_text} (id {eos})")


def _check_template(llm) -> Check:
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return Check("chat_template", True, "no chat template in the checkpoint (a base model)", skipped=True)
    bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
    eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
    try:
        text = render_chat_template(template, TWO_TURNS, bos, eos)
    except Exception as e:
        return Check("chat_template", False, f"the chat template does not render: {e}")
    pos = 0
    for m in TWO_TURNS[1:]:
        found = text.find(m["content"], pos)
        if found < 0:
            return Check("chat_template", False, f"the rendered conversation lacks the {m['role']} turn")
        pos = found + len(m["content"])
    n = len(llm.tokenize(text.encode(), add_bos=False, special=True))
    return Check("chat_template", True, f"renders a two-turn conversation ({n} tokens)")


def _check_tokenizer(llm, tokenizer_json: Optional[Path]) -> Check:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return Check("tokenizer_parity", True, "the tokenizers package is not installed", skipped=True)
    if tokenizer_json is None or not Path(tokenizer_json).is_file():
        return Check("tokenizer_parity", True, "no tokenizer.json to compare with", skipped=True)
    hf = Tokenizer.from_file(str(tokenizer_json))
    n_tokens = 0
    for text in TOKENIZER_CORPUS:
        ours = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        theirs = hf.encode(text, add_special_tokens=False).ids
        if list(ours) != list(theirs):
            return Check("tokenizer_parity", False, f"llama.cpp and tokenizers disagree on {text[:40]!r}")
        n_tokens += len(ours)
    return Check("tokenizer_parity", True,
                 f"identical ids on {len(TOKENIZER_CORPUS)} texts ({n_tokens} tokens)")


def _check_decode(llm, path: Path) -> Check:
    import numpy as np

    if Path(path).stat().st_size > SMOKE_DECODE_MAX_BYTES:
        return Check("evaluates", True, "skipped for a file this large", skipped=True)
    tokens = llm.tokenize(b"The capital of France is", add_bos=True, special=False)
    llm.eval(tokens)
    logits = np.asarray(llm.scores[len(tokens) - 1])
    if not np.all(np.isfinite(logits)):
        return Check("evaluates", False, "a short prompt gives non-finite logits")
    return Check("evaluates", True, f"a {len(tokens)}-token prompt gives finite logits")
