"""Open a Hugging Face Llama 3 checkpoint folder and check that it can be converted.

Reads ``config.json`` and the safetensors shards (single file, or sharded with
``model.safetensors.index.json``), refuses pickle-only folders, checks that every
shard is present with a valid header, and that the architecture is Llama 3's.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from converters.errors import ConversionError
from converters.safetensors_reader import DTYPES, TensorRef, read_header

PICKLE_PATTERNS = ("*.bin", "*.pth", "*.pt", "*.ckpt", "consolidated.*")
SUPPORTED = "LlamaDesk converts Llama 3, 3.1, 3.2 and 3.3 checkpoints (LlamaForCausalLM)"


@dataclass(frozen=True)
class LlamaConfig:
    hidden_size: int
    intermediate_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    context_length: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    rope_scaling: Optional[dict]
    torch_dtype: str


@dataclass
class Checkpoint:
    path: Path
    config: LlamaConfig
    raw_config: dict
    tensors: dict[str, TensorRef]
    repo_id: Optional[str] = None
    revision: Optional[str] = None
    files: list[Path] = field(default_factory=list)

    @property
    def source_dtype(self) -> str:
        """The dtype of the 2-D weights (BF16 for Meta's checkpoints)."""
        dtypes = {r.dtype for r in self.tensors.values() if len(r.shape) == 2}
        for d in ("BF16", "F16", "F32"):
            if d in dtypes:
                return d
        return "F32"

    @property
    def total_bytes(self) -> int:
        return sum(r.nbytes for r in self.tensors.values())

    @property
    def name(self) -> str:
        return self.repo_id.split("/")[-1] if self.repo_id else self.path.name


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path.name} in {path.parent} cannot be read ({e}); "
                              f"download {what} again.") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path.name} in {path.parent} is not a JSON object; download {what} again.")
    return data


def hub_origin(path: Path) -> tuple[Optional[str], Optional[str]]:
    """(repo_id, revision) when ``path`` is a Hugging Face cache snapshot folder."""
    parts = Path(path).resolve().parts
    for i in range(len(parts) - 2):
        m = re.fullmatch(r"models--(.+)", parts[i])
        if m and parts[i + 1] == "snapshots":
            return m.group(1).replace("--", "/"), parts[i + 2]
    return None, None


def parse_config(cfg: dict) -> LlamaConfig:
    archs = cfg.get("architectures") or [cfg.get("model_type", "unknown")]
    arch = archs[0] if isinstance(archs, list) and archs else str(archs)
    if arch != "LlamaForCausalLM" or cfg.get("model_type", "llama") != "llama":
        raise ConversionError(f"{arch} models are not supported: {SUPPORTED}.")
    if cfg.get("attention_bias") or cfg.get("mlp_bias") or cfg.get("hidden_act", "silu") != "silu":
        raise ConversionError(f"This Llama variant (with biases or a non-SiLU activation) is not "
                              f"supported: {SUPPORTED}.")
    try:
        hidden = int(cfg["hidden_size"])
        n_heads = int(cfg["num_attention_heads"])
        c = LlamaConfig(
            hidden_size=hidden,
            intermediate_size=int(cfg["intermediate_size"]),
            n_layers=int(cfg["num_hidden_layers"]),
            n_heads=n_heads,
            n_kv_heads=int(cfg.get("num_key_value_heads") or n_heads),
            head_dim=int(cfg.get("head_dim") or hidden // n_heads),
            vocab_size=int(cfg["vocab_size"]),
            context_length=int(cfg.get("max_position_embeddings") or 8192),
            rope_theta=float(cfg.get("rope_theta") or 10000.0),
            rms_norm_eps=float(cfg.get("rms_norm_eps") or 1e-5),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            rope_scaling=cfg.get("rope_scaling") or None,
            torch_dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(f"config.json lacks a valid {e} entry, so the model's shape is "
                              f"unknown; download the model again.") from None
    if c.rope_scaling is not None:
        kind = c.rope_scaling.get("rope_type") or c.rope_scaling.get("type")
        if kind != "llama3":
            raise ConversionError(f"rope_scaling of type {kind!r} is not supported: {SUPPORTED}.")
    if c.head_dim % 2 or c.n_heads % c.n_kv_heads:
        raise ConversionError(f"config.json describes an impossible attention layout; {SUPPORTED}.")
    return c


def _shard_files(src: Path) -> tuple[list[Path], Optional[dict]]:
    index = src / "model.safetensors.index.json"
    if index.exists():
        data = _read_json(index, "the model")
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConversionError("model.safetensors.index.json has no weight_map; download the model again.")
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (src / n).is_file()]
        if missing:
            raise ConversionError(
                f"The checkpoint is incomplete: {missing[0]} (listed in model.safetensors.index.json) "
                f"is missing from {src}{f' with {len(missing) - 1} more' if len(missing) > 1 else ''}; "
                f"finish the download and try again.")
        return [src / n for n in names], weight_map
    single = src / "model.safetensors"
    if single.is_file():
        return [single], None
    shards = sorted(src.glob("*.safetensors"))
    if shards:
        return shards, None
    pickles = sorted({p.name for pat in PICKLE_PATTERNS for p in src.glob(pat)}
                     | {f"original/{p.name}" for pat in PICKLE_PATTERNS for p in (src / "original").glob(pat)})
    if pickles:
        shown = ", ".join(pickles[:3]) + (" ..." if len(pickles) > 3 else "")
        raise ConversionError(
            f"{src} only has PyTorch pickle weights ({shown}), which can run arbitrary code when "
            f"loaded, so LlamaDesk will not open them; download the model's .safetensors files instead.")
    raise ConversionError(f"{src} has no .safetensors weights; download the complete model repository.")


def open_checkpoint(src_dir) -> Checkpoint:
    """Validate ``src_dir`` as a convertible Llama 3 checkpoint; touches no tensor data."""
    src = Path(src_dir)
    if not src.is_dir():
        raise ConversionError(f"{src} is not a folder; give the folder that holds the model's config.json.")
    if not (src / "config.json").is_file():
        if any(src.glob("*.safetensors")) or any(src.glob(PICKLE_PATTERNS[0])):
            raise ConversionError(f"{src} has weights but no config.json, so the model's shape is unknown; "
                                  f"download the complete model repository.")
        raise ConversionError(f"{src} has no config.json, so it is not a Hugging Face model folder; "
                              f"download the complete model repository and try again.")
    raw = _read_json(src / "config.json", "the model")
    config = parse_config(raw)
    files, weight_map = _shard_files(src)
    tensors: dict[str, TensorRef] = {}
    for f in files:
        for name, ref in read_header(f).items():
            if ref.dtype not in DTYPES:
                raise ConversionError(f"{f.name} stores {name} as {ref.dtype}; LlamaDesk converts "
                                      f"BF16, F16 and F32 checkpoints only.")
            tensors[name] = ref
    for name, shard in (weight_map or {}).items():
        if name not in tensors or tensors[name].file.name != shard:
            raise ConversionError(f"The checkpoint is incomplete: {shard} does not contain {name} as "
                                  f"model.safetensors.index.json says; download that shard again.")
    repo_id, revision = hub_origin(src)
    return Checkpoint(src, config, raw, tensors, repo_id, revision, files)
