"""GGUF metadata written for a converted checkpoint: model, tokenizer, chat template, origin."""
from __future__ import annotations

import json
import shutil

import gguf
import pytest

from converters.gguf_metadata import HUB_WEB_URL
from converters.pipeline import convert_checkpoint
from converters.tokenizer_meta import CONTROL, NORMAL
from tests.fixtures.tiny_llama import LLAMA3_CHAT_TEMPLATE


def _fields(path) -> dict:
    reader = gguf.GGUFReader(path)
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


@pytest.fixture(scope="module")
def plain_fields(tiny_gguf_factory):
    return _fields(tiny_gguf_factory("plain", "f16"))


def test_model_keys(plain_fields, tiny_llama):
    f = plain_fields
    assert f["general.architecture"] == "llama"
    assert f["general.file_type"] == int(gguf.LlamaFileType.MOSTLY_F16)
    assert f["general.quantization_version"] == 2
    assert (f["llama.embedding_length"], f["llama.block_count"], f["llama.feed_forward_length"]) == (256, 2, 512)
    assert (f["llama.attention.head_count"], f["llama.attention.head_count_kv"]) == (4, 2)
    assert f["llama.rope.dimension_count"] == 64 and f["llama.rope.freq_base"] == 500000.0
    assert f["llama.context_length"] == 8192 and f["llama.vocab_size"] == tiny_llama.vocab_size
    assert f["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)


def test_tokenizer_keys(plain_fields, tiny_llama):
    f = plain_fields
    assert f["tokenizer.ggml.model"] == "gpt2" and f["tokenizer.ggml.pre"] == "llama-bpe"
    assert len(f["tokenizer.ggml.tokens"]) == tiny_llama.vocab_size
    assert f["tokenizer.ggml.tokens"][tiny_llama.eot_id] == "<|eot_id|>"
    types = f["tokenizer.ggml.token_type"]
    assert types[tiny_llama.eot_id] == CONTROL and types[tiny_llama.bos_id] == CONTROL and types[100] == NORMAL
    assert len(f["tokenizer.ggml.merges"]) > 100 and " " in f["tokenizer.ggml.merges"][0]
    assert f["tokenizer.ggml.bos_token_id"] == tiny_llama.bos_id
    assert f["tokenizer.ggml.eos_token_id"] == tiny_llama.eot_id  # instruct: EOS is <|eot_id|>
    assert f["tokenizer.ggml.add_bos_token"] is True
    assert f["tokenizer.chat_template"] == LLAMA3_CHAT_TEMPLATE


def test_rope_scaled_variant_has_rope_freqs(tiny_gguf_factory):
    path = tiny_gguf_factory("rope_scaled", "f16")
    names = [t.name for t in gguf.GGUFReader(path).tensors]
    assert "rope_freqs.weight" in names and _fields(path)["llama.context_length"] == 131072


def test_chat_template_from_jinja_file_and_hub_origin(tiny_llama, tmp_path):
    """A snapshot folder in the Hugging Face cache layout names the repo and revision;
    a template kept in chat_template.jinja is found there."""
    snap = tmp_path / "hub" / "models--meta-llama--Llama-3.2-1B-Instruct" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_llama.path, snap)
    cfg = json.loads((snap / "tokenizer_config.json").read_text())
    template = cfg.pop("chat_template")
    (snap / "tokenizer_config.json").write_text(json.dumps(cfg))
    (snap / "chat_template.jinja").write_text(template)
    f = _fields(convert_checkpoint(snap, tmp_path / "m.gguf", "f16", threads=2).path)
    assert f["general.name"] == "Llama-3.2-1B-Instruct"
    assert f["general.source.repo_url"] == f"{HUB_WEB_URL}/meta-llama/Llama-3.2-1B-Instruct"
    assert f["general.source.url"].endswith("/tree/0123abcd")
    assert f["tokenizer.chat_template"] == template


def test_base_model_eos_is_end_of_text_and_eot_still_ends_generation(tiny_llama, tmp_path):
    src = tmp_path / "base"
    shutil.copytree(tiny_llama.path, src)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg["eos_token"] = "<|end_of_text|>"
    del cfg["chat_template"]
    (src / "tokenizer_config.json").write_text(json.dumps(cfg))
    res = convert_checkpoint(src, tmp_path / "m.gguf", "f16", threads=2)
    f = _fields(res.path)
    assert f["tokenizer.ggml.eos_token_id"] == tiny_llama.special_ids["<|end_of_text|>"]
    assert "tokenizer.chat_template" not in f
    assert res.verification.ok and res.verification.check("chat_template").skipped
    assert res.verification.check("end_of_generation").ok
