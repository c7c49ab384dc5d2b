"""Planning GPU offload: how many layers fit, and the plan said in words.

llama.cpp counts ``n_gpu_layers`` over the repeating blocks plus the output layer
(an 8B model has 32 blocks, so "all 33 layers"). The input embedding always stays
on the CPU. A block on the GPU brings its weights and its share of the KV cache
for ``n_ctx``; the GPU also needs a compute buffer, reserved up front.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from engine.machine import DeviceInfo

GIB = 1024 ** 3
MIB = 1024 ** 2
BASE_COMPUTE_RESERVE = 320 * MIB
SAFETY_FRACTION = 0.05  # of the device's total memory, left for the driver and the desktop


@dataclass(frozen=True)
class ModelSizes:
    n_layer: int
    layer_bytes: tuple[int, ...]   # weights of each repeating block
    output_bytes: int              # output head + final norm (the "+1" layer)
    embd_bytes: int                # token embedding, kept on the CPU
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_ctx_train: int = 0

    def kv_bytes_per_layer(self, n_ctx: int, bytes_per_value: int = 2) -> int:
        return n_ctx * self.n_head_kv * (self.head_dim_k + self.head_dim_v) * bytes_per_value

    @property
    def total_layers(self) -> int:
        return self.n_layer + 1


@dataclass(frozen=True)
class OffloadPlan:
    gpu_layers: int
    total_layers: int
    weights_bytes: int     # weights that go to the GPU
    cache_bytes: int       # KV cache that goes to the GPU
    device: Optional[DeviceInfo]
    text: str
    manual: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def compute_reserve(sizes: ModelSizes, n_batch: int = 512) -> int:
    """Compute buffer on the GPU: a fixed part plus the logits of one batch."""
    return BASE_COMPUTE_RESERVE + n_batch * sizes.n_vocab * 4


def _gb(n: int) -> str:
    return f"{n / GIB:.1f} GB"


def _device_label(d: DeviceInfo) -> str:
    return f"{d.name} ({round(d.total_bytes / GIB)} GB)" if d.total_bytes else d.name


def usage_for(sizes: ModelSizes, layers: int, n_ctx: int) -> tuple[int, int]:
    """(weight bytes, cache bytes) on the GPU with ``layers`` offloaded."""
    blocks = min(layers, sizes.n_layer)
    weights = sum(sizes.layer_bytes[sizes.n_layer - blocks:])  # llama.cpp offloads the last blocks
    if layers > sizes.n_layer:
        weights += sizes.output_bytes
    return weights, blocks * sizes.kv_bytes_per_layer(n_ctx)


def plan_offload(sizes: ModelSizes, device: Optional[DeviceInfo], n_ctx: int,
                 manual: Union[int, str, None] = "auto", n_batch: int = 512) -> OffloadPlan:
    total = sizes.total_layers
    gpu = device is not None and device.kind != "cpu"
    if manual not in (None, "auto"):
        layers = int(manual)
        layers = total if layers < 0 or layers > total else layers
        if not gpu:
            return OffloadPlan(0, total, 0, 0, device,
                               "CPU only: this llama.cpp build has no GPU support"
                               + (f" ({layers} GPU layers were asked for)." if layers else "."),
                               manual=True)
        w, c = usage_for(sizes, layers, n_ctx)
        what = "all" if layers == total else f"{layers} of"
        text = (f"{what} {total} layers on {_device_label(device)} (set by hand): "
                f"weights {_gb(w)}, cache {_gb(c)}" if layers else "CPU only (set by hand).")
        return OffloadPlan(layers, total, w, c, device, text, manual=True)
    if not gpu:
        return OffloadPlan(0, total, 0, 0, device, "CPU only: this llama.cpp build has no GPU support.")
    free = device.free_bytes if device.free_bytes else device.total_bytes
    budget = free - compute_reserve(sizes, n_batch) - int(SAFETY_FRACTION * device.total_bytes)
    layers = 0
    for n in range(total, 0, -1):
        w, c = usage_for(sizes, n, n_ctx)
        if w + c <= budget:
            layers = n
            break
    if layers == 0:
        return OffloadPlan(0, total, 0, 0, device,
                           f"CPU only: {_device_label(device)} has {_gb(free)} free, "
                           "not enough for one layer.")
    w, c = usage_for(sizes, layers, n_ctx)
    if layers == total:
        text = f"all {total} layers on {_device_label(device)}: weights {_gb(w)}, cache {_gb(c)}"
    else:
        text = (f"{layers} of {total} layers on {_device_label(device)}: weights {_gb(w)}, "
                f"cache {_gb(c)}; the other {total - layers} run on the CPU "
                f"({_gb(free)} free is not enough for all)")
    return OffloadPlan(layers, total, w, c, device, text)


_BLOCK = re.compile(r"^blk\.(\d+)\.")


def model_sizes_from_gguf(path: Path) -> ModelSizes:
    from gguf.constants import Keys

    from common.gguf_header import read_header

    head = read_header(Path(path))
    meta = head.values
    arch = head.architecture or "llama"
    g = lambda key, default=0: meta.get(key.format(arch=arch), default)  # noqa: E731
    n_layer = int(g(Keys.LLM.BLOCK_COUNT))
    n_embd = int(g(Keys.LLM.EMBEDDING_LENGTH))
    n_head = int(g(Keys.Attention.HEAD_COUNT, 1)) or 1
    n_head_kv = int(g(Keys.Attention.HEAD_COUNT_KV, n_head)) or n_head
    head_k = int(g(Keys.Attention.KEY_LENGTH, n_embd // n_head))
    head_v = int(g(Keys.Attention.VALUE_LENGTH, n_embd // n_head))
    tensors = {t.name: t.nbytes for t in head.tensors}
    embd_dims = next((t.shape for t in head.tensors if t.name == "token_embd.weight"), (0, 0))
    layer = [0] * n_layer
    output = embd = 0
    for name, nbytes in tensors.items():
        m = _BLOCK.match(name)
        if m and int(m.group(1)) < n_layer:
            layer[int(m.group(1))] += nbytes
        elif name.startswith("token_embd."):
            embd += nbytes
        else:
            output += nbytes
    if "output.weight" not in tensors:  # tied embeddings: llama.cpp duplicates them as the head
        output += tensors.get("token_embd.weight", 0)
    n_vocab = int(g(Keys.LLM.VOCAB_SIZE, 0)) or embd_dims[-1]
    return ModelSizes(n_layer, tuple(layer), output, embd, n_head_kv, head_k, head_v,
                      int(n_vocab), int(g(Keys.LLM.CONTEXT_LENGTH, 0)))
