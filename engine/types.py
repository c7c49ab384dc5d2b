"""Plain data passed between the engine and its callers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass(frozen=True)
class ChatMessage:
    role: str          # "system" | "user" | "assistant"
    content: str


@dataclass
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: Optional[int] = None
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


@dataclass
class ReplyStats:
    ttft_s: Optional[float] = None
    prompt_tokens: int = 0
    prompt_tps: Optional[float] = None
    gen_tokens: int = 0
    gen_tps: Optional[float] = None
    ctx_used: int = 0
    n_ctx: int = 0
    gpu_layers: int = 0
    stop_reason: str = ""          # "eog" | "stop_string" | "length" | "cancelled" | "error"
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
