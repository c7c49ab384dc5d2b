"""Which GGUF tensors a Llama 3 checkpoint becomes: names, shapes, types, permutations.

HF stores weights as [out, in]; they are written unchanged (GGUF lists the dims
reversed). Q and K rows are permuted from rotate-half RoPE (HF) to llama.cpp's
adjacent pairs. Llama 3.1 rope scaling becomes an extra ``rope_freqs.weight``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from converters.checkpoint import Checkpoint, LlamaConfig
from converters.errors import ConversionError
from converters.safetensors_reader import TensorRef

LAYER_MAP = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
OUT_DTYPES = ("F32", "F16", "BF16")


@dataclass(frozen=True)
class PlannedTensor:
    gguf_name: str
    shape: tuple[int, ...]          # numpy order, [rows, cols]
    out_dtype: str                  # F32, F16 or BF16
    source: Optional[TensorRef]     # None for computed tensors (rope_freqs)
    permute_heads: int = 0          # >0: apply the Q/K permutation with this many heads
    data: Optional[np.ndarray] = None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * (4 if self.out_dtype == "F32" else 2)


def expected_shapes(c: LlamaConfig) -> dict[str, tuple[int, ...]]:
    h, hd = c.hidden_size, c.head_dim
    shapes = {"model.embed_tokens.weight": (c.vocab_size, h)}
    for i in range(c.n_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (c.n_heads * hd, h),
            p + "self_attn.k_proj.weight": (c.n_kv_heads * hd, h),
            p + "self_attn.v_proj.weight": (c.n_kv_heads * hd, h),
            p + "self_attn.o_proj.weight": (h, c.n_heads * hd),
            p + "post_attention_layernorm.weight": (h,),
            p + "mlp.gate_proj.weight": (c.intermediate_size, h),
            p + "mlp.up_proj.weight": (c.intermediate_size, h),
            p + "mlp.down_proj.weight": (h, c.intermediate_size),
        })
    shapes["model.norm.weight"] = (h,)
    if not c.tie_word_embeddings:
        shapes["lm_head.weight"] = (c.vocab_size, h)
    return shapes


def gguf_name(hf_name: str) -> Optional[str]:
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")
    if len(parts) >= 5 and parts[:2] == ["model", "layers"] and parts[-1] == "weight":
        key = ".".join(parts[3:-1])
        if key in LAYER_MAP:
            return f"blk.{int(parts[2])}.{LAYER_MAP[key]}.weight"
    return None


def llama3_rope_factors(c: LlamaConfig) -> np.ndarray:
    """Per-frequency divisors for Llama 3.1's rope scaling (llama.cpp's rope_freqs)."""
    rs = c.rope_scaling or {}
    factor = float(rs.get("factor", 8.0))
    low = float(rs.get("low_freq_factor", 1.0))
    high = float(rs.get("high_freq_factor", 4.0))
    old_ctx = float(rs.get("original_max_position_embeddings", 8192))
    lo_wavelen, hi_wavelen = old_ctx / low, old_ctx / high
    out = []
    for i in range(0, c.head_dim, 2):
        wavelen = 2 * math.pi * c.rope_theta ** (i / c.head_dim)
        if wavelen < hi_wavelen:
            out.append(1.0)
        elif wavelen > lo_wavelen:
            out.append(factor)
        else:
            s = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - s) / factor + s))
    return np.asarray(out, dtype=np.float32)


def plan_tensors(ckpt: Checkpoint, out_dtype: str) -> list[PlannedTensor]:
    """Every GGUF tensor in write order; raises ConversionError on missing or misshapen weights."""
    if out_dtype not in OUT_DTYPES:
        raise ValueError(out_dtype)
    c = ckpt.config
    shapes = expected_shapes(c)
    tensors = dict(ckpt.tensors)
    if c.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)  # some tied repos still carry a copy
    for name, shape in shapes.items():
        ref = tensors.get(name)
        if ref is None:
            raise ConversionError(f"The checkpoint is incomplete: tensor {name} is missing; "
                                  f"download the model again.")
        if ref.shape != shape:
            raise ConversionError(f"Tensor {name} has shape {list(ref.shape)} but config.json implies "
                                  f"{list(shape)}; the download is inconsistent.")
    plan = []
    if c.rope_scaling is not None:
        factors = llama3_rope_factors(c)
        plan.append(PlannedTensor("rope_freqs.weight", factors.shape, "F32", None, data=factors))
    for name in shapes:  # HF's order: embeddings, layer by layer, final norm, head
        ref = tensors[name]
        gname = gguf_name(name)
        heads = c.n_heads if ".attn_q." in gname else c.n_kv_heads if ".attn_k." in gname else 0
        dtype = out_dtype if len(ref.shape) == 2 else "F32"
        plan.append(PlannedTensor(gname, ref.shape, dtype, ref, heads))
    return plan


def permute_qk(rows: np.ndarray, n_heads_in_block: int) -> np.ndarray:
    """Rotate-half row order -> llama.cpp's interleaved pairs, for whole heads."""
    r, cols = rows.shape
    half = r // n_heads_in_block // 2
    return rows.reshape(n_heads_in_block, 2, half, cols).swapaxes(1, 2).reshape(r, cols)
