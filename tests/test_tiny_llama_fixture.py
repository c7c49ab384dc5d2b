"""The tiny checkpoint fixture looks like Meta's and is byte-for-byte reproducible."""
from __future__ import annotations

import hashlib
import json

from tests.fixtures.tiny_llama import load_hf_weights, make_tiny_llama


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_layout_matches_meta(tiny_llama):
    files = {f.name for f in tiny_llama.path.iterdir()}
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "model.safetensors.index.json"} <= files
    shards = sorted(f for f in files if f.endswith(".safetensors"))
    assert len(shards) >= 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((tiny_llama.path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    config = json.loads((tiny_llama.path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["torch_dtype"] == "bfloat16"
    assert config["hidden_size"] % 256 == 0
    weights = load_hf_weights(tiny_llama.path)
    assert "lm_head.weight" in weights and weights["model.embed_tokens.weight"].shape == (config["vocab_size"], 256)


def test_tokenizer_has_llama3_specials_and_template(tiny_llama, tiny_tokenizer):
    assert tiny_tokenizer.token_to_id("<|eot_id|>") == tiny_llama.bos_id + 9
    ids = tiny_tokenizer.encode("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>").ids
    assert ids[0] == tiny_llama.bos_id and tiny_llama.eot_id in ids
    tk = json.loads((tiny_llama.path / "tokenizer.json").read_text())
    assert tk["model"]["ignore_merges"] is True
    cfg = json.loads((tiny_llama.path / "tokenizer_config.json").read_text())
    assert cfg["eos_token"] == "<|eot_id|>" and "<|start_header_id|>" in cfg["chat_template"]


def test_variants(tiny_llama_factory):
    tied = tiny_llama_factory("tied", False)
    assert (tied.path / "model.safetensors").exists()
    assert "lm_head.weight" not in load_hf_weights(tied.path)
    rope = json.loads((tiny_llama_factory("rope_scaled").path / "config.json").read_text())
    assert rope["rope_scaling"]["rope_type"] == "llama3" and rope["max_position_embeddings"] == 131072


def test_same_bytes_every_run(tmp_path, tiny_tokenizer):
    from tests.fixtures.tiny_llama import make_tokenizer

    a = make_tiny_llama(tmp_path / "a", tokenizer=tiny_tokenizer)
    b = make_tiny_llama(tmp_path / "b", tokenizer=make_tokenizer(768)[0])
    assert digest(a.path) == digest(b.path)
