"""How much disk, RAM and VRAM a Llama model needs per quant type, from its shapes.

``LlamaShape`` holds the numbers in a config.json; ``estimate(shape, qtype)`` walks
the tensors llama.cpp would have (the same per-tensor type recipe the converter
uses) to get the file size, then adds the KV cache for a context and llama.cpp's
compute buffer. ``fit(estimate, memory)`` compares it with this computer's
``MachineMemory``, which ``engine.machine.probe_machine().memory()`` measures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from common.inference_options import DEFAULT_N_CTX

RUNTIME_OVERHEAD = 300 * 1000 ** 2   # llama.cpp's own allocations, scratch and the process


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    tied: bool = False

    @classmethod
    def from_config(cls, config: dict) -> "LlamaShape":
        return cls(config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"],
                   config.get("num_key_value_heads", config["num_attention_heads"]),
                   config["intermediate_size"], config["vocab_size"],
                   bool(config.get("tie_word_embeddings", False)))

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """(GGUF name, shape as [out, in]) of every tensor of a dense Llama."""
        kv = self.kv_heads * (self.hidden // self.heads)
        out = [("token_embd.weight", (self.vocab, self.hidden)), ("output_norm.weight", (self.hidden,))]
        if not self.tied:
            out.append(("output.weight", (self.vocab, self.hidden)))
        for i in range(self.layers):
            p = f"blk.{i}."
            out += [(p + "attn_norm.weight", (self.hidden,)), (p + "ffn_norm.weight", (self.hidden,)),
                    (p + "attn_q.weight", (self.hidden, self.hidden)), (p + "attn_k.weight", (kv, self.hidden)),
                    (p + "attn_v.weight", (kv, self.hidden)), (p + "attn_output.weight", (self.hidden, self.hidden)),
                    (p + "ffn_gate.weight", (self.ffn, self.hidden)), (p + "ffn_up.weight", (self.ffn, self.hidden)),
                    (p + "ffn_down.weight", (self.hidden, self.ffn))]
        return out

    @property
    def parameters(self) -> int:
        total = 0
        for _, shape in self.tensors():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total


@dataclass(frozen=True)
class Estimate:
    qtype: str
    file_bytes: int
    kv_bytes: int
    compute_bytes: int
    context: int

    @property
    def memory_bytes(self) -> int:
        """RAM (CPU) or VRAM (full GPU offload) needed to run with ``context`` tokens."""
        return self.file_bytes + self.kv_bytes + self.compute_bytes + RUNTIME_OVERHEAD


def file_bytes(shape: LlamaShape, qtype: str) -> int:
    from converters.quant_types import tensor_bytes, tensor_type

    total = 0
    for name, dims in shape.tensors():
        t = tensor_type(qtype, name, dims, shape.layers, shape.tied)
        total += tensor_bytes(t, dims)
    # Header: tokenizer strings and scores dominate (~16 bytes a token with merges).
    return total + shape.vocab * 16 + len(shape.tensors()) * 96


def estimate(shape: LlamaShape, qtype: str = "q4_k_m", context: int = DEFAULT_N_CTX, n_ubatch: int = 512) -> Estimate:
    kv_dim = shape.kv_heads * (shape.hidden // shape.heads)
    kv = 2 * shape.layers * kv_dim * context * 2          # K and V, F16 cache
    compute = n_ubatch * (shape.vocab + 2 * shape.ffn) * 4
    return Estimate(qtype, file_bytes(shape, qtype), kv, compute, context)


@dataclass(frozen=True)
class MachineMemory:
    ram_total: int
    ram_available: Optional[int]
    vram_total: Optional[int]      # None when llama.cpp has no GPU to offload to


def fit(est: Estimate, mem: MachineMemory) -> str:
    """'gpu' (fits in VRAM), 'cpu' (fits in RAM), 'tight' (only with most RAM free) or 'no'."""
    need = est.memory_bytes
    if mem.vram_total and need <= mem.vram_total * 0.9:
        return "gpu"
    if mem.ram_total and need <= mem.ram_total * 0.7:
        return "cpu"
    if mem.ram_total and need <= mem.ram_total * 0.9:
        return "tight"
    return "no"


FIT_HINTS = {"gpu": "fits your GPU", "cpu": "fits your RAM", "tight": "tight: close other apps",
             "no": "too big for this machine"}
