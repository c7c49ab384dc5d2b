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

from common.safe_paths import UnsafePathError, check_name, ensure_inside
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


MAX_JSON_BYTES = 64 << 20   # config.json and the shard index are kilobytes; 405B's index is ~100 KB


def _read_json(path: Path, what: str) -> dict:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ConversionError(f"{path.name} in {path.parent} is {path.stat().st_size} bytes, far too "
                                  f"big to be a real model file; download {what} again.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ConversionError(f"{path.name} in {path.parent} is nested too deeply to be a real "
                              f"model file; download {what} again.") from None
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


# Bounds for config.json values, checked before anything is sized from them. The upper
# limits are well above any Llama (405B: 126 layers, hidden 16384, FFN 53248, 128 heads,
# vocab 128256, 131072 positions); llama.cpp itself stops at 512 layers.
INT_RANGES = {
    "num_hidden_layers": (1, 512),
    "hidden_size": (1, 1 << 16),
    "intermediate_size": (1, 1 << 18),
    "num_attention_heads": (1, 1024),
    "num_key_value_heads": (1, 1024),
    "head_dim": (2, 1024),
    "vocab_size": (1, 1 << 22),
    "max_position_embeddings": (1, 1 << 24),
}
FLOAT_RANGES = {"rope_theta": (1.0, 1e12), "rms_norm_eps": (1e-12, 0.1)}
ROPE_SCALING_FIELDS = {"factor": (1.0, 1024.0), "low_freq_factor": (1e-3, 1e3),
                       "high_freq_factor": (1e-3, 1e3),
                       "original_max_position_embeddings": (1, 1 << 24)}


def _bad(key: str, value, wants: str) -> ConversionError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return ConversionError(f"config.json has {key} = {shown}, but it must be {wants}; this is not a "
                           f"usable Llama 3 config, download the model again.")


def _config_int(cfg: dict, key: str, default=None) -> int:
    value = cfg.get(key)
    if value is None:
        if default is None:
            raise ConversionError(f"config.json lacks a valid {key!r} entry, so the model's shape is "
                                  "unknown; download the model again.")
        return default
    lo, hi = INT_RANGES[key]
    if isinstance(value, float) and value.is_integer() and lo <= value <= hi:
        value = int(value)
    if type(value) is not int or not lo <= value <= hi:
        raise _bad(key, value, f"a whole number from {lo} to {hi}")
    return value


def _number(value, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise _bad(key, value, f"a number from {lo:g} to {hi:g}")
    return float(value)


def _rope_scaling(value) -> Optional[dict]:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise _bad("rope_scaling", value, "an object (or null)")
    kind = value.get("rope_type", value.get("type"))
    if kind != "llama3":
        raise ConversionError(f"rope_scaling of type {kind!r} is not supported: {SUPPORTED}.")
    out = dict(value)
    for key, (lo, hi) in ROPE_SCALING_FIELDS.items():
        if key in value:
            num = _number(value[key], f"rope_scaling.{key}", lo, hi)
            if key == "original_max_position_embeddings":
                if not num.is_integer():
                    raise _bad(f"rope_scaling.{key}", value[key], "a whole number")
                num = int(num)
            out[key] = num
    if out.get("high_freq_factor", 4.0) <= out.get("low_freq_factor", 1.0):
        raise ConversionError("config.json's rope_scaling has high_freq_factor not above "
                              "low_freq_factor; this is not a usable Llama 3 config, download the model again.")
    return out


def parse_config(cfg: dict) -> LlamaConfig:
    """The model's shape from config.json; every value is type- and range-checked first,
    so nothing is ever sized from a hostile number (a billion layers, a negative vocab)."""
    if not isinstance(cfg, dict):
        raise ConversionError("config.json is not a JSON object; download the model again.")
    archs = cfg.get("architectures") or [cfg.get("model_type", "unknown")]
    arch = archs[0] if isinstance(archs, list) and archs else archs
    arch = arch if isinstance(arch, str) else repr(arch)[:40]
    if arch != "LlamaForCausalLM" or cfg.get("model_type", "llama") != "llama":
        raise ConversionError(f"{arch} models are not supported: {SUPPORTED}.")
    if cfg.get("attention_bias") or cfg.get("mlp_bias") or cfg.get("hidden_act", "silu") != "silu":
        raise ConversionError(f"This Llama variant (with biases or a non-SiLU activation) is not "
                              f"supported: {SUPPORTED}.")
    hidden = _config_int(cfg, "hidden_size")
    n_heads = _config_int(cfg, "num_attention_heads")
    n_kv = _config_int(cfg, "num_key_value_heads", n_heads)
    head_dim = _config_int(cfg, "head_dim") if cfg.get("head_dim") is not None else hidden // n_heads
    if head_dim < 2 or head_dim % 2 or n_kv > n_heads or n_heads % n_kv:
        raise ConversionError(f"config.json describes an impossible attention layout; {SUPPORTED}.")
    theta = cfg.get("rope_theta")
    eps = cfg.get("rms_norm_eps")
    tie = cfg.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        raise _bad("tie_word_embeddings", tie, "true or false")
    dtype = cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"
    if not isinstance(dtype, str):
        raise _bad("torch_dtype", dtype, "a type name such as \"bfloat16\"")
    return LlamaConfig(
        hidden_size=hidden,
        intermediate_size=_config_int(cfg, "intermediate_size"),
        n_layers=_config_int(cfg, "num_hidden_layers"),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=head_dim,
        vocab_size=_config_int(cfg, "vocab_size"),
        context_length=_config_int(cfg, "max_position_embeddings", 8192),
        rope_theta=10000.0 if theta is None else _number(theta, "rope_theta", *FLOAT_RANGES["rope_theta"]),
        rms_norm_eps=1e-5 if eps is None else _number(eps, "rms_norm_eps", *FLOAT_RANGES["rms_norm_eps"]),
        tie_word_embeddings=tie,
        rope_scaling=_rope_scaling(cfg.get("rope_scaling")),
        torch_dtype=dtype,
    )


def _shard_files(src: Path) -> tuple[list[Path], Optional[dict]]:
    index = src / "model.safetensors.index.json"
    if index.exists():
        data = _read_json(index, "the model")
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConversionError("model.safetensors.index.json has no weight_map; download the model again.")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
            raise ConversionError("model.safetensors.index.json has a weight_map entry that is not a "
                                  "tensor name and a file name; download the model again.")
        names = sorted(set(weight_map.values()))
        # An HF cache snapshot links its files to the repo's blobs, two folders up.
        root = src.parent.parent if src.parent.name == "snapshots" else src
        for n in names:
            try:
                check_name(n, "shard name", "in model.safetensors.index.json")
                ensure_inside(root, src.joinpath(*n.split("/")), "shard")
            except UnsafePathError as exc:
                raise ConversionError(str(exc)) from None
            if not n.endswith(".safetensors"):
                raise ConversionError(f"Refused the shard name {n!r} in model.safetensors.index.json: "
                                      "a shard is a .safetensors file.")
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
