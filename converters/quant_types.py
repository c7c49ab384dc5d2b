"""The output types LlamaDesk offers, their llama.cpp file types, and size estimates.

``tensor_types`` follows llama.cpp's Q4_K_M / Q4_K_S / Q5_K_M recipes for the
Llama architecture (more bits for the output head and for attn_v / ffn_down in
the first and last eighth of layers and every third layer between), so sizes can
be estimated before anything is written and quantized files can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import gguf

Q = gguf.GGMLQuantizationType


@dataclass(frozen=True)
class QuantType:
    key: str
    label: str
    file_type: int                 # llama.cpp's LlamaFileType (not a GGMLQuantizationType)
    base: Q                        # type of most 2-D weights
    description: str


QUANT_TYPES_INFO: dict[str, QuantType] = {q.key: q for q in (
    QuantType("q4_k_m", "Q4_K_M", int(gguf.LlamaFileType.MOSTLY_Q4_K_M), Q.Q4_K,
              "4-bit, recommended: small with little quality loss"),
    QuantType("q4_k_s", "Q4_K_S", int(gguf.LlamaFileType.MOSTLY_Q4_K_S), Q.Q4_K, "4-bit, slightly smaller"),
    QuantType("q4_0", "Q4_0", int(gguf.LlamaFileType.MOSTLY_Q4_0), Q.Q4_0, "4-bit, legacy format"),
    QuantType("q5_k_m", "Q5_K_M", int(gguf.LlamaFileType.MOSTLY_Q5_K_M), Q.Q5_K, "5-bit"),
    QuantType("q6_k", "Q6_K", int(gguf.LlamaFileType.MOSTLY_Q6_K), Q.Q6_K, "6-bit"),
    QuantType("q8_0", "Q8_0", int(gguf.LlamaFileType.MOSTLY_Q8_0), Q.Q8_0, "8-bit, near lossless"),
    QuantType("f16", "F16", int(gguf.LlamaFileType.MOSTLY_F16), Q.F16, "16-bit float"),
    QuantType("bf16", "BF16", int(gguf.LlamaFileType.MOSTLY_BF16), Q.BF16, "16-bit bfloat, lossless from bf16"),
    QuantType("f32", "F32", int(gguf.LlamaFileType.ALL_F32), Q.F32, "32-bit float, lossless"),
)}
QUANT_TYPES: tuple[str, ...] = tuple(QUANT_TYPES_INFO)
DEFAULT_QUANT_TYPE = "q4_k_m"
UNQUANTIZED = ("f16", "bf16", "f32")


def is_quantized(qtype: str) -> bool:
    return qtype not in UNQUANTIZED


def _more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(qtype: str, gguf_name: str, shape: tuple[int, ...], n_layers: int,
                tied: bool) -> Q:
    """The type llama.cpp gives one tensor when quantizing to ``qtype`` (dense Llama models)."""
    info = QUANT_TYPES_INFO[qtype]
    if len(shape) < 2:
        return Q.F32
    if not is_quantized(qtype):
        return info.base
    base = info.base
    cols = shape[-1]
    is_output = gguf_name == "output.weight" or (tied and gguf_name == "token_embd.weight")
    if is_output:
        block = gguf.GGML_QUANT_SIZES[base][0]
        if cols % block:
            return Q.Q8_0
        return base if base == Q.Q8_0 else Q.Q6_K
    layer: Optional[int] = int(gguf_name.split(".")[1]) if gguf_name.startswith("blk.") else None
    t = base
    if layer is not None and ".attn_v." in gguf_name:
        if qtype in ("q4_k_m", "q5_k_m") and _more_bits(layer, n_layers):
            t = Q.Q6_K
        elif qtype == "q4_k_s" and layer < 4:
            t = Q.Q5_K
        if n_layers == 80 and t in (Q.Q3_K, Q.Q4_K):  # llama.cpp's 70B rule: GQA makes attn_v cheap
            t = Q.Q5_K
    elif layer is not None and ".ffn_down." in gguf_name:
        if qtype in ("q4_k_m", "q5_k_m") and _more_bits(layer, n_layers):
            t = Q.Q6_K
        elif qtype == "q4_k_s" and layer < n_layers // 8:
            t = Q.Q5_K
    block = gguf.GGML_QUANT_SIZES[t][0]
    if cols % block:  # llama.cpp falls back to a legacy type for rows that do not fit
        return Q.Q8_0 if t in (Q.Q6_K, Q.Q8_0) else Q.Q5_0 if t == Q.Q5_K else Q.Q4_0 if cols % 32 == 0 else Q.F16
    return t


def tensor_bytes(t: Q, shape: tuple[int, ...]) -> int:
    block, size = gguf.GGML_QUANT_SIZES[t]
    n = 1
    for d in shape:
        n *= d
    return n // block * size
