"""read_gguf_info walks the header itself: it reads what gguf-py's GGUFReader reads, without
building the whole vocabulary, and refuses a cut file."""
from __future__ import annotations

import pytest

from models.gguf_info import read_gguf_info
from models.gguf_validate import UnsafeGGUFError
from tests.fixtures.hub_server import write_llama3_gguf


def _reference(path) -> dict:
    """The same facts through gguf.GGUFReader (slow: it parses every token)."""
    import gguf

    r = gguf.GGUFReader(path)

    def value(key):
        f = r.fields.get(key)
        return f.contents() if f is not None else None

    tokens = r.fields["tokenizer.ggml.tokens"]

    def token(i):
        return tokens.contents(int(i)) if i is not None else None

    eot = value("tokenizer.ggml.eot_token_id")
    if eot is None:
        eot = next((i for i in range(len(tokens.data)) if tokens.contents(i) == "<|eot_id|>"), None)
    arch = value("general.architecture")
    return {"architecture": arch, "name": value("general.name"),
            "parameters": sum(int(t.n_elements) for t in r.tensors),
            "context_length": value(f"{arch}.context_length"),
            "has_chat_template": bool(value("tokenizer.chat_template")),
            "bos": token(value("tokenizer.ggml.bos_token_id")), "eos": token(value("tokenizer.ggml.eos_token_id")),
            "eot": token(eot)}


def _facts(info) -> dict:
    return {k: getattr(info, k) for k in ("architecture", "name", "parameters", "context_length",
                                          "has_chat_template", "bos", "eos", "eot")}


def test_reads_what_gguf_py_reads(smollm2_path, tiny_gguf_factory, tmp_path):
    files = [smollm2_path, tiny_gguf_factory("plain", "f16"), tiny_gguf_factory("tied", "q4_k_m"),
             write_llama3_gguf(tmp_path / "runs-on.gguf", eos="<|end_of_text|>", tensor_bytes=4096),
             write_llama3_gguf(tmp_path / "no-template.gguf", chat_template=None, tensor_bytes=4096)]
    for path in files:
        info = read_gguf_info(path)
        assert _facts(info) == _reference(path), path.name
        assert info.file_size == path.stat().st_size and info.quant
    assert read_gguf_info(smollm2_path).quant == "Q4_1"
    assert read_gguf_info(files[3]).warnings       # the Llama 3 instruct file whose EOS runs on


def test_a_cut_or_empty_file_is_refused(tmp_path):
    good = write_llama3_gguf(tmp_path / "good.gguf", tensor_bytes=4096)
    data = good.read_bytes()
    for name, cut in (("empty.gguf", b""), ("header.gguf", data[:200]), ("magic.gguf", b"GGML" + data[4:])):
        bad = tmp_path / name
        bad.write_bytes(cut)
        with pytest.raises(UnsafeGGUFError):
            read_gguf_info(bad)
