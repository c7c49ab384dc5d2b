"""Numerical fidelity and tokenizer parity of converted tiny Llama 3 checkpoints.

llama.cpp's logits for the converted GGUF are compared with an independent float64
numpy forward pass of HF Llama on the original bf16 weights, over a 30+ token prompt.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from converters.pipeline import convert_checkpoint
from converters.verify_corpus import TOKENIZER_CORPUS
from tests.fixtures.reference_llama import forward
from tests.fixtures.tiny_llama import load_hf_weights

PROMPT = ("def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n"
          "The quick brown fox jumps over the lazy dog, and 2024 llamas hum in the Andes.")
FIGURES: dict[str, str] = {}


def _llama_logits(path, tokens):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_batch=64, logits_all=True, type_k=0, type_v=0,
                          n_threads=2, n_threads_batch=2, verbose=False)
    try:
        llm.eval(tokens)
        return np.array(llm.scores[:len(tokens)], dtype=np.float64)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def reference(tiny_llama_factory):
    """(tokens, reference logits) per (variant, sharded), computed once."""
    from tokenizers import Tokenizer

    cache = {}

    def get(variant, sharded):
        key = (variant, sharded)
        if key not in cache:
            ckpt = tiny_llama_factory(variant, sharded)
            tokens = Tokenizer.from_file(str(ckpt.path / "tokenizer.json")).encode(PROMPT).ids
            cfg = json.loads((ckpt.path / "config.json").read_text())
            cache[key] = ckpt, tokens, forward(cfg, load_hf_weights(ckpt.path), tokens)
        return cache[key]

    return get


@pytest.mark.parametrize("variant,sharded", [("plain", True), ("plain", False), ("tied", True),
                                             ("rope_scaled", True), ("rope_scaled", False)])
def test_f32_logits_match_reference(variant, sharded, reference, tmp_path):
    ckpt, tokens, ref = reference(variant, sharded)
    assert len(tokens) >= 30 and tokens[0] == ckpt.bos_id
    out = convert_checkpoint(ckpt.path, tmp_path / "m.gguf", "f32", threads=2).path
    got = _llama_logits(out, tokens)
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    FIGURES[f"F32 {variant} {'sharded' if sharded else 'single'}"] = (
        f"max|diff|/max|logit| = {rel:.2e} over {len(tokens)} tokens")
    assert rel <= 1e-3


@pytest.mark.parametrize("variant", ["plain", "tied", "rope_scaled"])
def test_f16_argmax_matches_reference(variant, reference, tiny_gguf_factory):
    ckpt, tokens, ref = reference(variant, True)
    got = _llama_logits(tiny_gguf_factory(variant, "f16"), tokens)
    agree = float(np.mean(got.argmax(-1) == ref.argmax(-1)))
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    FIGURES[f"F16 {variant}"] = (f"argmax agreement {agree:.0%} over {len(tokens)} positions, "
                                 f"max|diff|/max|logit| = {rel:.2e}")
    assert agree == 1.0


def test_rope_scaling_matters(reference, tmp_path):
    """The rope-scaled variant's logits really differ from the unscaled computation at long range,
    so the rope_freqs tensor is exercised, not ignored."""
    ckpt, tokens, ref = reference("rope_scaled", True)
    cfg = json.loads((ckpt.path / "config.json").read_text())
    cfg["rope_scaling"] = None
    unscaled = forward(cfg, load_hf_weights(ckpt.path), tokens)
    assert np.abs(unscaled - ref).max() / np.abs(ref).max() > 1e-2


def test_tokenizer_parity_on_corpus(tiny_llama, tiny_gguf_factory):
    import llama_cpp
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(tiny_llama.path / "tokenizer.json"))
    llm = llama_cpp.Llama(model_path=str(tiny_gguf_factory("plain", "f16")), vocab_only=True, verbose=False)
    try:
        n_tokens = 0
        for text in TOKENIZER_CORPUS:
            ours = llm.tokenize(text.encode(), add_bos=False, special=True)
            assert ours == hf.encode(text, add_special_tokens=False).ids, text
            if not text.startswith("<|begin_of_text|>"):
                assert llm.tokenize(text.encode(), add_bos=True, special=True) == hf.encode(text).ids, text
            n_tokens += len(ours)
    finally:
        llm.close()
    FIGURES["tokenizer parity"] = f"{len(TOKENIZER_CORPUS)} texts, {n_tokens} tokens: identical"


def teardown_module(module):
    for k, v in FIGURES.items():
        print(f"\n[{k}] {v}", end="")
