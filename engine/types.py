"""Plain data passed between the engine and its callers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from common.inference_options import GenerationParams  # noqa: F401 - the engine's sampling type


@dataclass(frozen=True)
class ChatMessage:
    role: str          # "system" | "user" | "assistant"
    content: str


@dataclass
class ReplyStats:
    ttft_s: Optional[float] = None
    prompt_tokens: int = 0         # tokens of the fitted prompt
    prompt_evaluated: int = 0      # of those, how many llama.cpp actually evaluated
    prompt_tps: Optional[float] = None
    gen_tokens: int = 0
    gen_tps: Optional[float] = None
    ctx_used: int = 0
    n_ctx: int = 0
    gpu_layers: int = 0
    stop_reason: str = ""          # "eog" | "stop_string" | "length" | "cancelled" | "error"
    # With stop_reason "length": what ended it, "max_tokens" (the reply's length limit) or
    # "context" (the window had no more room), and how many tokens the reply was allowed.
    limited_by: str = ""
    length_limit: int = 0
    dropped: tuple[int, ...] = ()  # indices into the caller's messages left out of the window
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dropped"] = list(self.dropped)
        return d


@dataclass(frozen=True)
class FitResult:
    """Which part of a conversation goes into the context window.

    ``dropped`` holds indices into the messages the caller passed, oldest first;
    the GUI marks those as "no longer in the model's memory".
    """

    messages: tuple[ChatMessage, ...]
    kept: tuple[int, ...]
    dropped: tuple[int, ...]
    prompt_tokens: int
    reserve: int
    n_ctx: int


def length_note(limited_by: str, length_limit: int) -> str:
    """Why a reply with stop_reason "length" ended, in one sentence for the user."""
    if limited_by == "context":
        return "Reply filled the model's context window."
    if length_limit:
        return f"Reply reached the length limit ({length_limit:,} tokens)."
    return "Reply reached the length limit."
