"""Bounded-memory streaming: row blocks, page release, and the pieces behind them."""
from __future__ import annotations

import numpy as np
import pytest

from converters import write_gguf
from converters.checkpoint import open_checkpoint
from converters.pipeline import convert_checkpoint
from converters.safetensors_reader import MappedFile, read_header, row_blocks
from converters.tensor_plan import llama3_rope_factors, permute_qk
from tests.fixtures.tiny_llama import load_hf_weights


@pytest.mark.parametrize("qtype", ["f16", "bf16", "f32"])
def test_small_row_blocks_give_identical_files(qtype, tiny_llama_factory, tmp_path, monkeypatch):
    """Splitting every tensor (Q/K by whole heads) into many blocks changes no byte."""
    src = tiny_llama_factory("rope_scaled", True).path
    whole = convert_checkpoint(src, tmp_path / "whole.gguf", qtype, threads=2).path
    monkeypatch.setattr(write_gguf, "BLOCK_BYTES", 8 * 1024)  # 8 KiB: 16-64 rows per block
    blocks = convert_checkpoint(src, tmp_path / "blocks.gguf", qtype, threads=2).path
    assert whole.read_bytes() == blocks.read_bytes()


def test_bf16_output_is_a_byte_copy_except_q_and_k(tiny_llama, tiny_gguf_factory, tmp_path):
    import gguf

    out = convert_checkpoint(tiny_llama.path, tmp_path / "m.gguf", "bf16", threads=2).path
    ckpt = open_checkpoint(tiny_llama.path)
    reader = gguf.GGUFReader(out)
    for t in reader.tensors:
        if t.name == "blk.0.attn_v.weight":
            ref = ckpt.tensors["model.layers.0.self_attn.v_proj.weight"]
            mf = MappedFile(ref.file)
            try:
                assert bytes(t.data.tobytes()) == bytes(mf.view(ref.offset, ref.nbytes))
            finally:
                mf.close()
            break
    else:
        pytest.fail("no attn_v tensor")


def test_permutation_matches_the_definition():
    n_heads, head_dim, cols = 3, 8, 5
    w = np.arange(n_heads * head_dim * cols).reshape(n_heads * head_dim, cols)
    got = permute_qk(w, n_heads)
    half = head_dim // 2
    for h in range(n_heads):
        for i in range(half):
            # llama.cpp pairs (2i, 2i+1) are HF's (i, i + half) within each head
            assert (got[h * head_dim + 2 * i] == w[h * head_dim + i]).all()
            assert (got[h * head_dim + 2 * i + 1] == w[h * head_dim + half + i]).all()


def test_rope_factors_follow_llama31_rules(tiny_llama_factory):
    c = open_checkpoint(tiny_llama_factory("rope_scaled", True).path).config
    f = llama3_rope_factors(c)
    assert f.shape == (c.head_dim // 2,) and f.dtype == np.float32
    assert f[0] == 1.0 and f[-1] == 8.0          # high frequencies unscaled, low ones by the factor
    assert np.all(np.diff(f) >= 0) and np.any((f > 1) & (f < 8))  # smooth band in between


def test_row_blocks_cover_every_row_in_whole_heads(tiny_llama):
    ckpt = open_checkpoint(tiny_llama.path)
    ref = ckpt.tensors["model.layers.0.self_attn.q_proj.weight"]
    blocks = list(row_blocks(ref, 3 * ref.row_bytes, row_multiple=64))
    assert all(n % 64 == 0 for _, n in blocks)
    assert sum(n for _, n in blocks) == ref.rows and blocks[0] == (0, 64)


def test_mapped_reads_match_the_file(tiny_llama):
    weights = load_hf_weights(tiny_llama.path)
    shard = sorted(tiny_llama.path.glob("model-*.safetensors"))[0]
    for name, ref in read_header(shard).items():
        mf = MappedFile(shard)
        try:
            bits = mf.array(ref.offset, ref.nbytes // 2, np.dtype("<u2")).reshape(ref.shape)
            f32 = (bits.astype(np.uint32) << 16).view(np.float32)
            assert np.array_equal(f32, weights[name])
            mf.release(ref.offset, ref.nbytes)
        finally:
            mf.close()
