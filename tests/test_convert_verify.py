"""Verification of converted files: what it checks, and that a failing file is not kept."""
from __future__ import annotations

import json
import shutil

import pytest

from converters import verify
from converters.errors import ConversionError
from converters.pipeline import convert_checkpoint
from converters.verify import verify_gguf


def test_good_file_passes_every_check(tiny_llama, tiny_gguf_factory):
    report = verify_gguf(tiny_gguf_factory("plain", "q4_k_m"), tiny_llama.path / "tokenizer.json")
    assert report.ok
    assert [c.name for c in report.checks] == ["tensors", "loads", "end_of_generation", "chat_template",
                                               "tokenizer_parity", "evaluates"]
    assert not any(c.skipped for c in report.checks)
    assert "Q6_K" in report.check("tensors").detail
    assert f"(id {tiny_llama.eot_id})" in report.check("end_of_generation").detail


def test_truncated_file_fails(tiny_gguf_factory, tmp_path):
    src = tiny_gguf_factory("plain", "f16")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(src.read_bytes()[:-100_000])
    report = verify_gguf(cut)
    assert not report.ok and report.failed()[0].name == "tensors"
    assert "past the end" in report.failed()[0].detail


def test_large_files_are_checked_without_mapping_weights(tiny_llama, tiny_gguf_factory, monkeypatch):
    monkeypatch.setattr(verify, "FULL_LOAD_MAX_BYTES", 0)
    report = verify_gguf(tiny_gguf_factory("plain", "f16"), tiny_llama.path / "tokenizer.json")
    assert report.ok
    assert "weights not mapped" in report.check("loads").detail
    assert report.check("evaluates").skipped


def test_failed_verification_keeps_no_file(tiny_llama, tmp_path):
    """A chat template that cannot render a conversation converts, but fails verification.
    (A tokenizer whose <|eot_id|> lost its name is no longer Llama 3's, refused before converting.)"""
    src = tmp_path / "ckpt"
    shutil.copytree(tiny_llama.path, src)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{{ raise_exception('only one message, please') }}"
    (src / "tokenizer_config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(src, out / "m.gguf", "f16", threads=2)
    assert "failed verification (chat_template" in str(err.value)
    assert list(out.iterdir()) == []
