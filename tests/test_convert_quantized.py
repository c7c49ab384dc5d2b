"""Quantized output: loads, generates, stops at <|eot_id|>, follows llama.cpp's type recipe."""
from __future__ import annotations

import gguf
import numpy as np
import pytest

from common.task import Cancelled, TaskHandle
from converters.pipeline import QUANT_TYPES, convert_checkpoint, estimate_output_bytes
from converters.quant_types import tensor_type

Q = gguf.GGMLQuantizationType


def _types(path) -> dict[str, Q]:
    return {t.name: Q(t.tensor_type) for t in gguf.GGUFReader(path).tensors}


@pytest.mark.parametrize("qtype", ["q4_k_m", "q4_0"])
def test_quantized_model_generates_and_stops_at_eot(qtype, tiny_llama, tiny_gguf_factory):
    import llama_cpp

    path = tiny_gguf_factory("plain", qtype)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, n_threads=2, verbose=False)
    try:
        eot = tiny_llama.eot_id
        prompt_len = []

        specials = sorted(tiny_llama.special_ids.values())

        def eot_after_five(input_ids, scores):
            # no special token for five steps (a random model might pick one), then <|eot_id|>
            if not prompt_len:
                prompt_len.append(len(input_ids))
            scores = scores.copy()
            if len(input_ids) >= prompt_len[0] + 5:
                scores[eot] = scores.max() + 100.0
            else:
                scores[specials] = -np.inf
            return scores

        reply = llm.create_chat_completion(
            messages=[{"role": "user", "content": "Say hello."}], max_tokens=40, temperature=0.0,
            logits_processor=llama_cpp.LogitsProcessorList([eot_after_five]))
        choice = reply["choices"][0]
        assert choice["finish_reason"] == "stop"
        assert reply["usage"]["completion_tokens"] == 5
        assert "<|eot_id|>" not in choice["message"]["content"]
        # Without the push, a random model runs to max_tokens: generation really happens.
        free = llm.create_completion("The llama", max_tokens=8, temperature=0.0)
        assert free["usage"]["completion_tokens"] >= 1
    finally:
        llm.close()


def test_q4_k_m_tensor_types(tiny_gguf_factory):
    types = _types(tiny_gguf_factory("plain", "q4_k_m"))
    assert types["output.weight"] == Q.Q6_K
    assert types["token_embd.weight"] == Q.Q4_K
    # 2 layers: layer 1 is in the last eighth and gets more bits for attn_v and ffn_down
    assert types["blk.0.attn_v.weight"] == Q.Q4_K and types["blk.1.attn_v.weight"] == Q.Q6_K
    assert types["blk.0.ffn_down.weight"] == Q.Q4_K and types["blk.1.ffn_down.weight"] == Q.Q6_K
    for name in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
        assert types[f"blk.0.{name}.weight"] == Q.Q4_K
    assert types["blk.0.attn_norm.weight"] == Q.F32 and types["output_norm.weight"] == Q.F32


def test_tied_embeddings_quantize_like_the_output_head(tiny_gguf_factory):
    types = _types(tiny_gguf_factory("tied", "q4_k_m"))
    assert "output.weight" not in types
    assert types["token_embd.weight"] == Q.Q6_K


def test_q4_0_tensor_types(tiny_gguf_factory):
    types = _types(tiny_gguf_factory("plain", "q4_0"))
    assert types["output.weight"] == Q.Q6_K
    assert types["token_embd.weight"] == Q.Q4_0
    assert all(t == Q.Q4_0 for n, t in types.items() if n.endswith(("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")))


@pytest.mark.parametrize("qtype", [q for q in QUANT_TYPES])
def test_every_type_follows_the_recipe_and_estimate(qtype, tiny_llama_factory, tmp_path):
    ckpt = tiny_llama_factory("rope_scaled", True)
    res = convert_checkpoint(ckpt.path, tmp_path / "m.gguf", qtype, threads=2)
    assert res.verification.ok and res.qtype == qtype
    for t in gguf.GGUFReader(res.path).tensors:
        shape = tuple(reversed([int(d) for d in t.shape]))  # GGUF lists dims innermost first
        assert Q(t.tensor_type) == tensor_type(qtype, t.name, shape, n_layers=2, tied=False), t.name
    estimate = estimate_output_bytes(ckpt.path, qtype)
    assert abs(estimate - res.output_bytes) / res.output_bytes < 0.02, (estimate, res.output_bytes)


def test_keep_intermediate(tiny_llama, tmp_path):
    res = convert_checkpoint(tiny_llama.path, tmp_path / "m.gguf", "q4_0", keep_intermediate=True, threads=2)
    assert res.intermediate_path == tmp_path / "m.bf16.gguf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bf16.gguf", "m.gguf"]
    reader = gguf.GGUFReader(res.intermediate_path)
    assert reader.fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_BF16)


def test_intermediate_is_removed_by_default(tiny_llama, tmp_path):
    stages = []
    handle = TaskHandle(on_progress=lambda p: stages.append((p.extra.get("stage"), p.done, p.total, p.unit)))
    convert_checkpoint(tiny_llama.path, tmp_path / "m.gguf", "q4_k_m", threads=2, handle=handle)
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]
    conv = [s for s in stages if s[0] == "convert"]
    quant = [s for s in stages if s[0] == "quantize"]
    assert conv[-1][1] == conv[-1][2] and conv[0][3] == "B"
    assert all(a[1] <= b[1] for a, b in zip(conv, conv[1:])), "byte progress went backwards"
    assert quant and quant[0][3] == "tensors" and quant[0][2] == len(gguf.GGUFReader(tmp_path / "m.gguf").tensors)
    assert stages[-1][0] == "verify"


def test_cancel_during_quantization_leaves_nothing(tiny_llama, tmp_path):
    def on_progress(p):
        if p.extra.get("stage") == "quantize":
            handle.cancel()

    handle = TaskHandle(on_progress=on_progress)
    with pytest.raises(Cancelled):
        convert_checkpoint(tiny_llama.path, tmp_path / "m.gguf", "q4_k_m", threads=2, handle=handle)
    assert list(tmp_path.iterdir()) == []


def test_quantized_logits_stay_close(tiny_llama, tiny_gguf_factory):
    """Q4_K_M is lossy but not broken: its logits correlate strongly with F16's."""
    import llama_cpp

    tokens = [tiny_llama.bos_id] + list(range(300, 340))
    out = {}
    for q in ("f16", "q4_k_m"):
        llm = llama_cpp.Llama(model_path=str(tiny_gguf_factory("plain", q)), n_ctx=64, logits_all=True,
                              n_threads=2, verbose=False)
        llm.eval(tokens)
        out[q] = np.array(llm.scores[:len(tokens)])
        llm.close()
    corr = np.corrcoef(out["f16"].ravel(), out["q4_k_m"].ravel())[0, 1]
    assert corr > 0.95, corr


def test_quantizing_in_row_slabs_changes_no_byte(tiny_llama, tmp_path):
    """The quantizer's bounded buffer (rows in slabs) gives the same file as whole tensors."""
    import subprocess
    import sys
    from pathlib import Path

    from converters.quant_types import QUANT_TYPES_INFO

    mid = convert_checkpoint(tiny_llama.path, tmp_path / "m.bf16.gguf", "bf16", threads=2).path
    root = Path(__file__).resolve().parents[1]
    outs = []
    for buffer_bytes in (1 << 30, 64 * 1024):  # whole tensors; a few rows at a time
        out = tmp_path / f"q-{buffer_bytes}.gguf"
        subprocess.run([sys.executable, "-m", "converters.quantize_worker", str(mid), str(out),
                        str(QUANT_TYPES_INFO["q4_k_m"].file_type), "2", str(buffer_bytes)],
                       cwd=root, check=True, capture_output=True, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
